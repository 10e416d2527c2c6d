# firegw — build, test and run the gateway, the simulator and their tests.
#
#   make          build the gateway and the simulator
#   make demo     run the gateway against the simulated building (installs what is missing)
#   make test     unit tests, the same under ASan+UBSan, integration tests
#   make bench    speed and size against Node-RED (docs/performance.md; not part of make test)
#   make bench-district  500 gateways against one broker (docs/deployment.md; not in make test)
#   make soak     30 minutes of fires and faults at a high poll rate (docs/performance.md)
#   make install  install under PREFIX (default /usr/local) and DESTDIR; make uninstall
#   make deb      Debian package in build/ (with CROSS: build/TRIPLET/, for that board)
#   make test-cross  unit tests of the arm64 and armhf builds under qemu-user
#
# Variables: CROSS (toolchain prefix, e.g. aarch64-linux-gnu), CC, BUILD, SAN=1 (sanitizers),
# PREFIX, DESTDIR (docs/service.md).

CROSS ?=
ifneq ($(CROSS),)
# The target's libraries and headers: a sysroot of its Debian packages (make cross-deps).
SYSROOT ?= build/sysroot/$(CROSS)
CC := $(CROSS)-gcc --sysroot=$(abspath $(SYSROOT))
PKG_CONFIG ?= PKG_CONFIG_SYSROOT_DIR=$(abspath $(SYSROOT)) \
	PKG_CONFIG_LIBDIR=$(abspath $(SYSROOT))/usr/lib/$(CROSS)/pkgconfig:$(abspath $(SYSROOT))/usr/share/pkgconfig \
	pkg-config
endif
PKG_CONFIG ?= pkg-config
# One build tree per target: build/ for this machine, build/TRIPLET/ for CROSS=TRIPLET.
BUILD_TOP := build$(if $(CROSS),/$(CROSS))

SAN ?=
ifeq ($(SAN),1)
BUILD ?= $(BUILD_TOP)/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= $(BUILD_TOP)
SANFLAGS :=
endif

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -D_GNU_SOURCE -Igateway -Isensors/sim
# 64-bit file offsets and inode numbers on 32-bit boards (armhf): without it readdir()
# fails with EOVERFLOW on file systems with 64-bit inodes. No change on 64-bit targets.
CPPFLAGS += -D_FILE_OFFSET_BITS=64
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SANFLAGS) -MMD -MP
MODBUS_CFLAGS := $(shell $(PKG_CONFIG) --cflags libmodbus 2>/dev/null)
MODBUS_LIBS := $(shell $(PKG_CONFIG) --libs libmodbus 2>/dev/null || echo -lmodbus)
CPPFLAGS += $(MODBUS_CFLAGS)
LDLIBS_COMMON := -lpthread -lm
LDFLAGS += $(SANFLAGS)

# Modules of gateway/ by name; each is gateway/NAME.c.
MOD_BASE   := util log model
MOD_PARSE  := ini profile cmdset event cfg
MOD_GW     := $(MOD_BASE) $(MOD_PARSE) codec plan queue bus event engine payload uplink \
	gateway delivery ctl reload outbox \
	command control acktrack remote evlog probe installer \
	web webjobs webauth webreq snapshot siteedit cap
GW_LIBS    := $(MODBUS_LIBS) -lpaho-mqtt3as -lcjson -lsqlite3 -lsystemd -lmicrohttpd -lsodium \
	$(LDLIBS_COMMON)

obj = $(patsubst %,$(BUILD)/gateway/%.o,$(1))

SIM_SRCS := $(wildcard sensors/sim/*.c)
SIM_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(SIM_SRCS))
SIM_MODS := $(MOD_BASE) $(MOD_PARSE) codec

# Unit tests: tests/unit/test_NAME.c links the gateway modules in T_NAME, the other
# object files in TX_NAME (e.g. $(BUILD)/sensors/sim/scenario.o) and libraries in T_LIBS_NAME.
T_util    := util
T_queue   := util queue
T_codec   := util model codec
T_plan    := util plan
T_profile := $(MOD_BASE) ini profile
T_cfg     := $(MOD_BASE) $(MOD_PARSE)
T_ini     := util log ini
T_event   := util log event
T_engine  := $(MOD_BASE) event engine
T_reload  := $(MOD_BASE) $(MOD_PARSE) engine reload
T_engine_rules := $(MOD_BASE) event engine
T_engine_cfg := $(MOD_BASE) $(MOD_PARSE)
T_payload := $(MOD_BASE) event engine payload
T_bus     := $(MOD_BASE) codec plan queue bus
T_command := $(MOD_BASE) $(MOD_PARSE) event engine command
T_remote  := $(MOD_BASE) $(MOD_PARSE) event engine command remote
T_LIBS_remote := -lcjson
T_acktrack := util acktrack
T_evlog   := $(MOD_BASE) event evlog
T_LIBS_evlog := -lsqlite3 -lcjson
T_LIBS_payload := -lcjson
T_uplink  := $(MOD_BASE) event engine payload uplink queue
T_LIBS_uplink := -lpaho-mqtt3as -lcjson
T_LIBS_bus := $(MODBUS_LIBS)
T_probe   := $(MOD_BASE) ini profile codec plan probe
T_LIBS_probe := $(MODBUS_LIBS) -lcjson
T_scenario := $(MOD_BASE)
TX_scenario = $(BUILD)/sensors/sim/scenario.o
T_wire    :=
TX_wire = $(BUILD)/sensors/sim/wire.o
T_LIBS_wire := $(MODBUS_LIBS)
T_siteedit := $(MOD_BASE) $(MOD_PARSE) siteedit
T_LIBS_siteedit := -lcjson -lsodium
T_webauth := util log webauth
T_LIBS_webauth := -lcjson -lsodium
T_webreq  := util log webreq
T_LIBS_webreq := -lcjson
T_snapshot := $(MOD_BASE) $(MOD_PARSE) codec plan queue bus engine uplink payload acktrack snapshot
T_LIBS_snapshot := $(MODBUS_LIBS) -lpaho-mqtt3as -lcjson
T_webcfg  := $(MOD_BASE) $(MOD_PARSE)
T_cap     := util log model event cap
T_control := util log control
T_mainloop := $(MOD_GW)
T_LIBS_mainloop := $(GW_LIBS)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_NAMES := $(patsubst tests/unit/test_%.c,%,$(UNIT_SRCS))
UNIT_BINS := $(patsubst %,$(BUILD)/tests/test_%,$(UNIT_NAMES))

.PHONY: all deps demo test test-unit unit-bins clean format lint check-config fuzz fuzz-bins \
	browser-deps

all: $(BUILD)/firegw $(BUILD)/firegw-sim $(BUILD)/firegw-watch

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/firegw: $(BUILD)/gateway/main.o $(call obj,$(MOD_GW))
	$(CC) $(LDFLAGS) -o $@ $^ $(GW_LIBS)

$(BUILD)/firegw-sim: $(SIM_OBJS) $(call obj,$(SIM_MODS))
	$(CC) $(LDFLAGS) -o $@ $^ $(MODBUS_LIBS) $(LDLIBS_COMMON)

# The reference receiver (docs/firegw-watch.md).
$(BUILD)/firegw-watch: $(BUILD)/gateway/watch.o $(call obj,util log)
	$(CC) $(LDFLAGS) -o $@ $^ -lpaho-mqtt3a -lcjson $(LDLIBS_COMMON)

.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $$(call obj,$$(T_$$*)) $$(TX_$$*)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(T_LIBS_$*) $(LDLIBS_COMMON)

# Packages a fresh Debian 12 machine needs; apt-get runs only for missing ones.
DEB_PKGS := gcc make pkg-config libc6-dev libmodbus-dev libpaho-mqtt-dev libcjson-dev \
	libcmocka-dev libsqlite3-dev libsystemd-dev libsodium-dev libmicrohttpd-dev mosquitto mosquitto-clients python3 python3-paho-mqtt python3-jsonschema \
	cppcheck clang-format openssl systemd clang-14 libclang-rt-14-dev libfaketime \
	dpkg-dev man-db
# xmllint checks the CAP documents against their schema in the tests (docs/cap.md).
DEB_PKGS += libxml2-utils
# The web UI's browser tests drive Debian's Chromium (tests/browser/, with the machine's
# Node.js and npm); the test tools never download a browser of their own.
DEB_PKGS += chromium
deps:
	@sh packaging/apt-missing.sh $(DEB_PKGS)

test: deps
	$(MAKE) --no-print-directory all unit-bins
	$(MAKE) --no-print-directory SAN=1 all unit-bins
	$(MAKE) --no-print-directory FUZZ_BUILD=build/fuzz fuzz-bins
	$(MAKE) --no-print-directory browser-deps
	/usr/bin/python3 tests/run.py --build build --san-build build/san --fuzz-build build/fuzz

unit-bins: $(UNIT_BINS)

# playwright-core for the browser tests, from tests/browser/package-lock.json, once.
browser-deps:
	@[ -d tests/browser/node_modules/playwright-core ] || \
	  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)

# libFuzzer targets fuzz/fuzz_NAME.c (docs/robustness.md), built with clang, ASan and UBSan.
# A new target is its file plus FZ_NAME (gateway modules linked), FZX_NAME (other fuzz/
# files) and FZ_LIBS_NAME (libraries) lines here.
FUZZ_CC ?= clang-14
FUZZ_BUILD ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
# clang also flags vsnprintf in helpers that gcc knows take a checked format.
FUZZ_WARN := $(WARN) -Wno-format-nonliteral
FZ_cfg     := $(MOD_BASE) $(MOD_PARSE) codec plan engine
FZX_cfg    := plancheck
FZ_profile := $(MOD_BASE) ini profile codec plan
FZX_profile := plancheck
FZ_codec   := util log model codec plan
FZ_remote  := $(MOD_BASE) $(MOD_PARSE) engine command remote
FZX_remote := site
FZ_LIBS_remote := -lcjson
FZ_command := $(MOD_BASE) $(MOD_PARSE) engine command
FZX_command := site
FZ_http    := $(MOD_BASE) $(MOD_PARSE) engine command webreq webauth siteedit
FZX_http   := site
FZ_LIBS_http := -lcjson -lsodium
fzobj = $(patsubst %,$(FUZZ_BUILD)/obj/gateway/%.o,$(1)) \
	$(patsubst %,$(FUZZ_BUILD)/obj/fuzz/%.o,common $(2))

# Objects are shared by the targets; keep them although only pattern rules name them.
.PRECIOUS: $(FUZZ_BUILD)/obj/%.o
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -Ifuzz -DFUZZ_ROOT='"$(CURDIR)"' -std=c11 $(FUZZ_WARN) $(FUZZ_FLAGS) \
	  -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz/fuzz_%.o $$(call fzobj,$$(FZ_$$*),$$(FZX_$$*))
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(FZ_LIBS_$*) $(LDLIBS_COMMON)

fuzz-bins: $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))

# Each target for FUZZ_SECONDS; new inputs join fuzz/corpus/NAME/, crashes stay in
# FUZZ_BUILD/artifacts/NAME/ (fix, then keep the input in fuzz/regressions/NAME/).
fuzz: deps
	$(MAKE) --no-print-directory fuzz-bins
	/usr/bin/python3 fuzz/runner.py --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS) --keep

test-unit: deps
	$(MAKE) --no-print-directory unit-bins
	/usr/bin/python3 tests/run.py --build $(BUILD) --unit-only

# Sub-makes, so that flags from pkg-config are read after deps installed it.
demo: deps
	$(MAKE) --no-print-directory all
	/usr/bin/python3 tests/demo.py --build $(BUILD)

check-config: all
	$(BUILD)/firegw --check-config config/tayho-apartment.conf

# bench/run.py installs Node-RED into bench/node-red with npm; Debian's npm is installed
# only when the machine has none (never over another one). Options: BENCH_ARGS="--rounds 1".
.PHONY: bench
bench: deps
	@command -v npm >/dev/null || $(MAKE) --no-print-directory deps DEB_PKGS=npm
	$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/run.py --build $(BUILD) $(BENCH_ARGS)

# District scale (docs/deployment.md): 500 gateways and their simulators against one
# Mosquitto, two firegw-watch in an MQTT 5 share group. Options: DISTRICT_ARGS="--n 100".
.PHONY: bench-district
bench-district: deps
	$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/district/run.py --build $(BUILD) $(DISTRICT_ARGS)

# Accelerated soak (docs/performance.md): the example building polled every 100 ms for
# 30 minutes with fires and faults injected; RSS and file descriptors must stay flat.
# Options: SOAK_ARGS="--minutes 60".
.PHONY: soak
soak: deps
	$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/soak/run.py --build $(BUILD) $(SOAK_ARGS)

# Installing (docs/service.md). Programs, profiles, man pages and docs follow PREFIX;
# the site config stays in /etc and the state in /var/lib, where the unit looks for them.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
DATADIR     ?= $(PREFIX)/share/firegw
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/firegw
SYSCONFDIR  ?= /etc
STATEDIR    ?= /var/lib/firegw
# Debian 12 keeps units in /lib/systemd/system; other prefixes keep them under PREFIX.
UNITDIR     ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
PROFILE_DIR := $(DATADIR)/profiles

# The daemon finds the installed profiles with no profile_dir in the site config
# (gateway/cfg.c); cfg.o is rebuilt when the directory changes.
$(BUILD)/gateway/cfg.o: CPPFLAGS += -DFIREGW_PROFILE_DIR='"$(PROFILE_DIR)"'
$(BUILD)/gateway/cfg.o: $(BUILD)/profile-dir
$(BUILD)/profile-dir: FORCE
	@mkdir -p $(dir $@)
	@[ "$$(cat $@ 2>/dev/null)" = '$(PROFILE_DIR)' ] || echo '$(PROFILE_DIR)' >$@
FORCE:

INST_PROFILES  := $(notdir $(wildcard sensors/profiles/*.profile))
INST_SCENARIOS := $(notdir $(wildcard sensors/scenarios/*.scn))
INST_MAN       := firegw.8 firegw.conf.5 firegw-watch.1 firegw-sim.1
INST_DOCS      := README.md $(notdir $(wildcard docs/*.md))
INST_SCHEMAS   := $(notdir $(wildcard docs/schema/*.json))
# The web UI's files, beside the profiles, where the daemon looks for them.
INST_WEB       := $(patsubst web-ui/%,%,$(shell find web-ui -type f 2>/dev/null | sort))
man_path = $(MANDIR)/man$(subst .,,$(suffix $(1)))/$(1)
# Every file install puts; uninstall removes exactly these (never site.conf or the state).
INSTALLED := $(SBINDIR)/firegw $(BINDIR)/firegw-watch $(BINDIR)/firegw-sim \
	$(addprefix $(PROFILE_DIR)/,$(INST_PROFILES)) \
	$(addprefix $(DATADIR)/scenarios/,$(INST_SCENARIOS)) \
	$(foreach m,$(INST_MAN),$(call man_path,$(m))) \
	$(addprefix $(DOCDIR)/,$(INST_DOCS)) $(addprefix $(DOCDIR)/schema/,$(INST_SCHEMAS)) \
	$(addprefix $(DATADIR)/web-ui/,$(INST_WEB)) \
	$(UNITDIR)/firegw.service $(SYSUSERSDIR)/firegw.conf $(SYSCONFDIR)/firegw/site.conf.example
# Directories only firegw uses, removed by uninstall when empty (deepest first).
INSTALLED_DIRS := $(PROFILE_DIR) $(DATADIR)/scenarios $(DATADIR)/web-ui $(DATADIR) \
	$(DOCDIR)/schema $(DOCDIR) $(SYSCONFDIR)/firegw

.PHONY: install uninstall deb cross-deps test-cross FORCE

# The unit gets the installed paths; the example site loses its profile_dir, which points
# into the source tree, so that it finds the installed profiles.
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(PROFILE_DIR) \
	  $(DESTDIR)$(DATADIR)/scenarios $(DESTDIR)$(DOCDIR)/schema $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/firegw \
	  $(sort $(foreach m,$(INST_MAN),$(DESTDIR)$(dir $(call man_path,$(m)))))
	install -d -m 0750 $(DESTDIR)$(STATEDIR)
	install -m 0755 $(BUILD)/firegw $(DESTDIR)$(SBINDIR)/firegw
	install -m 0755 $(BUILD)/firegw-watch $(BUILD)/firegw-sim $(DESTDIR)$(BINDIR)/
	install -m 0644 $(addprefix sensors/profiles/,$(INST_PROFILES)) $(DESTDIR)$(PROFILE_DIR)/
	install -m 0644 $(addprefix sensors/scenarios/,$(INST_SCENARIOS)) $(DESTDIR)$(DATADIR)/scenarios/
	$(foreach m,$(INST_MAN),install -m 0644 man/$(m) $(DESTDIR)$(call man_path,$(m))$(nl))
	install -m 0644 README.md $(addprefix docs/,$(filter-out README.md,$(INST_DOCS))) $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(addprefix docs/schema/,$(INST_SCHEMAS)) $(DESTDIR)$(DOCDIR)/schema/
	$(foreach f,$(INST_WEB),install -D -m 0644 web-ui/$(f) $(DESTDIR)$(DATADIR)/web-ui/$(f)$(nl))
	sed -e 's|^ExecStart=/usr/sbin/firegw --config /etc/firegw/|ExecStart=$(SBINDIR)/firegw --config $(SYSCONFDIR)/firegw/|' \
	  systemd/firegw.service >$(DESTDIR)$(UNITDIR)/firegw.service.tmp
	grep -q '^ExecStart=$(SBINDIR)/firegw --config $(SYSCONFDIR)/firegw/site.conf ' \
	  $(DESTDIR)$(UNITDIR)/firegw.service.tmp
	mv $(DESTDIR)$(UNITDIR)/firegw.service.tmp $(DESTDIR)$(UNITDIR)/firegw.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/firegw.service
	install -m 0644 systemd/firegw.sysusers $(DESTDIR)$(SYSUSERSDIR)/firegw.conf
	sed -e 's|^profile_dir = \.\./sensors/profiles$$|# profile_dir = DIR   (none: <this dir>/profiles, /etc/firegw/profiles, $(PROFILE_DIR))|' \
	  -e 's|^# This gateway\. Profiles are looked up next to this file in \.\./sensors/profiles$$|# This gateway. Profiles are looked up in $(SYSCONFDIR)/firegw/profiles (a site'"'"'s own),|' \
	  -e 's|^# (an installed gateway keeps them in /etc/firegw/profiles)\.$$|# then in $(PROFILE_DIR) (installed with firegw).|' \
	  -e 's|firegw --check-config config/tayho-apartment\.conf|firegw --check-config $(SYSCONFDIR)/firegw/site.conf|' \
	  config/tayho-apartment.conf >$(DESTDIR)$(SYSCONFDIR)/firegw/site.conf.example.tmp
	! grep -q '^profile_dir' $(DESTDIR)$(SYSCONFDIR)/firegw/site.conf.example.tmp
	mv $(DESTDIR)$(SYSCONFDIR)/firegw/site.conf.example.tmp $(DESTDIR)$(SYSCONFDIR)/firegw/site.conf.example
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/firegw/site.conf.example
	@echo "Installed. As a service: systemd-sysusers; write $(SYSCONFDIR)/firegw/site.conf" \
	  "(from site.conf.example); systemctl daemon-reload; systemctl enable --now firegw"

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@[ ! -d $(DESTDIR)$(DATADIR)/web-ui ] || \
	  find $(DESTDIR)$(DATADIR)/web-ui -mindepth 1 -depth -type d -empty -delete
	@for d in $(addprefix $(DESTDIR),$(INSTALLED_DIRS)); do \
	  [ ! -d "$$d" ] || rmdir --ignore-fail-on-non-empty "$$d"; \
	done

define nl


endef

# The Debian package for this machine, or for CROSS's board: a PREFIX=/usr build of its
# own, installed into a staging tree that packaging/build-deb.sh finishes.
DEB_VERSION = $(shell sed -n 's/^\#define FIREGW_VERSION "\(.*\)"$$/\1/p' gateway/payload.h)
DEB_ARCH = $(shell dpkg-architecture -qDEB_HOST_ARCH $(if $(CROSS),-t$(CROSS)) 2>/dev/null)
DEB_DIR ?= $(BUILD_TOP)
DEB_STAGE = $(DEB_DIR)/deb
STRIP ?= $(if $(CROSS),$(CROSS)-strip,strip)
deb:
	$(MAKE) --no-print-directory SAN= BUILD=$(DEB_STAGE) PREFIX=/usr all
	rm -rf $(DEB_STAGE)/root
	$(MAKE) --no-print-directory SAN= BUILD=$(DEB_STAGE) PREFIX=/usr \
	  DESTDIR=$(abspath $(DEB_STAGE)/root) install
	STRIP=$(STRIP) SHLIBS_TREES="$(if $(CROSS),$(wildcard $(abspath $(SYSROOT)).debs/*))" \
	  packaging/build-deb.sh $(DEB_STAGE)/root \
	  $(DEB_DIR)/firegw_$(DEB_VERSION)_$(DEB_ARCH).deb $(DEB_ARCH) $(DEB_VERSION)

# Cross-builds for the boards: Debian's cross compilers, and for each target a sysroot
# of its Debian library packages (packaging/cross-sysroot.sh, with apt state of its own:
# this machine's dpkg never gets the target architecture); test-cross runs every unit
# test of both under qemu-user, which takes the target's loader and libraries from the
# sysroot (binfmt_misc is not needed).
CROSS_TRIPLETS := aarch64-linux-gnu arm-linux-gnueabihf
CROSS_HOST_PKGS := qemu-user $(addprefix gcc-,$(CROSS_TRIPLETS))
# The target's libraries are this machine's: the lib*-dev packages of DEB_PKGS (not the
# fuzzers' clang run-time).
CROSS_TARGET_PKGS = $(sort libc6-dev $(filter-out libclang-%,$(filter lib%-dev,$(DEB_PKGS))))
cross-deps:
	@sh packaging/apt-missing.sh $(CROSS_HOST_PKGS) || exit 1; \
	want='$(CROSS_TARGET_PKGS)'; pids=; \
	for t in $(CROSS_TRIPLETS); do \
	  [ "$$(cat build/sysroot/$$t/.requested 2>/dev/null)" = "$$want" ] || \
	    { packaging/cross-sysroot.sh $$t build/sysroot/$$t $$want & pids="$$pids $$!"; }; \
	done; \
	for p in $$pids; do wait $$p || exit 1; done

ifneq ($(CROSS),)
ifneq ($(shell cat $(SYSROOT)/.requested 2>/dev/null),$(CROSS_TARGET_PKGS))
$(warning $(SYSROOT) is missing or lacks libraries DEB_PKGS names: make cross-deps makes it)
endif
endif

test-cross: deps cross-deps
	@rc=0; for t in $(CROSS_TRIPLETS); do \
	  case $$t in aarch64-*) qemu=qemu-aarch64;; *) qemu=qemu-arm;; esac; \
	  $(MAKE) --no-print-directory CROSS=$$t BUILD=build/$$t all unit-bins && \
	  /usr/bin/python3 tests/run.py --unit-only --no-lint --build build/$$t \
	    --exec "$$qemu -L $(CURDIR)/build/sysroot/$$t" || rc=1; \
	done; exit $$rc

format:
	clang-format -i gateway/*.[ch] sensors/sim/*.[ch] tests/unit/*.[ch] fuzz/*.[ch]

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -D_GNU_SOURCE -Igateway gateway sensors/sim

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
-include $(shell find $(FUZZ_BUILD) -name '*.d' -type f 2>/dev/null)
