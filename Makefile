# firegw — build, test and run the gateway, the simulator and their tests.
#
#   make          build the gateway and the simulator
#   make demo     run the gateway against the simulated building (installs what is missing)
#   make test     unit tests, the same under ASan+UBSan, integration tests
#
# Variables: CROSS (toolchain prefix), CC, BUILD, SAN=1 (sanitizers).

CROSS ?=
ifneq ($(CROSS),)
CC := $(CROSS)-gcc
endif
PKG_CONFIG ?= pkg-config

SAN ?=
ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SANFLAGS :=
endif

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -D_GNU_SOURCE -Igateway -Isensors/sim
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
	command control acktrack remote evlog
GW_LIBS    := $(MODBUS_LIBS) -lpaho-mqtt3as -lcjson -lsqlite3 -lsystemd $(LDLIBS_COMMON)

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
T_scenario := $(MOD_BASE)
TX_scenario = $(BUILD)/sensors/sim/scenario.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_NAMES := $(patsubst tests/unit/test_%.c,%,$(UNIT_SRCS))
UNIT_BINS := $(patsubst %,$(BUILD)/tests/test_%,$(UNIT_NAMES))

.PHONY: all deps demo test test-unit unit-bins clean format lint check-config

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
	libcmocka-dev libsqlite3-dev libsystemd-dev mosquitto mosquitto-clients python3 python3-paho-mqtt python3-jsonschema \
	cppcheck clang-format openssl systemd
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing \
	    </dev/null; \
	fi

test: deps
	$(MAKE) --no-print-directory all unit-bins
	$(MAKE) --no-print-directory SAN=1 all unit-bins
	/usr/bin/python3 tests/run.py --build build --san-build build/san

unit-bins: $(UNIT_BINS)

test-unit: deps
	$(MAKE) --no-print-directory unit-bins
	/usr/bin/python3 tests/run.py --build $(BUILD) --unit-only

# Sub-makes, so that flags from pkg-config are read after deps installed it.
demo: deps
	$(MAKE) --no-print-directory all
	/usr/bin/python3 tests/demo.py --build $(BUILD)

check-config: all
	$(BUILD)/firegw --check-config config/tayho-apartment.conf

format:
	clang-format -i gateway/*.[ch] sensors/sim/*.[ch] tests/unit/*.[ch]

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -D_GNU_SOURCE -Igateway gateway sensors/sim

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
