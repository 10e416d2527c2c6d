/*
 * The site configuration: one human-editable file per building (see
 * docs/config.md and config/tayho-apartment.conf). It owns the in-memory model
 * of the site that every other module reads: site, gateway settings, buses,
 * devices, zones, detectors and MQTT uplinks. Profiles are loaded on demand
 * from the profile directories the config names.
 *
 * Syntax: "# comment" lines (and " # comment" after a value), "[section]" or
 * "[section name]" headers, and "key = value" lines. Values may be quoted with
 * double quotes to keep '#' or surrounding blanks. Durations need a unit:
 * 250ms, 30s, 5min, 2h. Unknown sections and keys are errors.
 *
 * After cfg_load succeeds every cross reference is resolved to an index and
 * every value is within range, so consumers never re-validate.
 */
#ifndef FIREGW_CFG_H
#define FIREGW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

enum bus_type { BUS_TCP, BUS_RTU };

/* The most Modbus TCP requests a poller keeps outstanding on one connection (max_in_flight). */
#define BUS_MAX_IN_FLIGHT 32

struct cfg_site {
    char *id; /* building id, [A-Za-z0-9_-]{1,64}; used in MQTT topics */
    char *name;
    char *address;
    char *district;
    double latitude;  /* -90..90 */
    double longitude; /* -180..180 */
};

struct cfg_gateway {
    char *state_dir;     /* default /var/lib/firegw */
    char **profile_dirs; /* searched in order; default <config dir>/profiles, /etc/firegw/profiles,
                            /usr/share/firegw/profiles */
    size_t nprofile_dirs;
    char *log_level;      /* "info" by default */
    int64_t heartbeat_ms; /* default 60 s */
};

/* Alarm thresholds for one value-bearing detector type or one detector. */
struct cfg_thresholds {
    double prealarm;   /* pre-alarm level, < alarm */
    double alarm;      /* fire alarm level */
    double hysteresis; /* a level clears when the value is below level - hysteresis */
};

struct cfg_defaults {
    struct cfg_thresholds smoke; /* %/m; default 1.5 / 2.0 / 0.3 */
    struct cfg_thresholds heat;  /* degC; default 50 / 58 / 3 (EN 54-5 A1) */
    int64_t no_response_ms;      /* detector silent -> fault; default 30 s, max 100 s */
    int64_t lifecheck_ms;        /* panel LifeCheck unchanged -> fault; default 30 s */
    double ror_degc_per_min;     /* heat rate-of-rise that counts as fire; default 9 degC/min */
    int64_t ror_window_ms;       /* the rise must be sustained this long; default 60 s */
    int64_t stuck_after_ms;      /* value unchanged this long -> fault; 0 (default): off */
};

struct cfg_bus {
    char *id;
    enum bus_type type;
    /* TCP */
    char *host;
    int port; /* default 502 */
    /* RTU */
    char *device;  /* e.g. /dev/ttyUSB0 */
    int baud;      /* default 9600 */
    char parity;   /* 'N', 'E' or 'O'; default 'N' */
    int data_bits; /* 7 or 8; default 8 */
    int stop_bits; /* 1 or 2; default 1 */
    bool rs485;    /* switch the port to RS-485 mode (TIOCSRS485); default no */
    /* polling, defaults for the bus's devices */
    int64_t poll_interval_ms; /* default 200 ms */
    int64_t timeout_ms;       /* response timeout; default 500 ms */
    int retries;              /* extra tries per request; default 1 */
    int64_t backoff_min_ms;   /* first skip period of a failing device; default 5 s */
    int64_t backoff_max_ms;   /* longest skip period; default 60 s */
    int64_t reconnect_min_ms; /* bus reconnect backoff; default 1 s */
    int64_t reconnect_max_ms; /* default 30 s */
    unsigned max_gap;         /* registers merged across a gap; default 8 */
    int max_in_flight;        /* tcp: requests in flight at once; default 1 */
    int line;
};

struct cfg_device {
    char *id;                      /* explicit [device] name, or "<bus>/<unit>" when implicit */
    size_t bus;                    /* index into cfg.buses */
    int unit;                      /* Modbus unit id 1..247 (TCP also 0 and 255) */
    const struct profile *profile; /* owned by cfg.profiles */
    int64_t timeout_ms;
    int retries;
    int fail_after; /* consecutive failed polls before the device is faulted and backed off; default
                       3 */
    int line;
};

enum coincidence_mode {
    COINC_NONE,           /* one detector in fire alarm is the zone's fire alarm */
    COINC_TWO_DETECTORS,  /* a second detector confirms the fire */
    COINC_SMOKE_AND_HEAT, /* a smoke and a heat detector confirm the fire */
};

struct cfg_zone {
    char *id;
    char *name;
    int floor;
    bool verification;        /* alarm verification of smoke detectors; default no */
    int64_t verify_retard_ms; /* default 30 s, at most 60 s */
    int64_t verify_window_ms; /* confirmation window; default 60 s, at least 60 s */
    enum coincidence_mode coincidence;
    int64_t coincidence_window_ms; /* default 5 min */
    bool pas;                      /* positive alarm sequence; default no */
    int64_t pas_ack_ms;            /* acknowledge within; default 15 s, at most 15 s */
    int64_t pas_investigation_ms;  /* default 180 s, at most 180 s */
    int line;
};

/* EN 54-5 heat detector classes; HEAT_CLASS_NONE: levels set by hand. */
enum heat_class {
    HEAT_CLASS_NONE,
    HEAT_A1,
    HEAT_A2,
    HEAT_B,
    HEAT_C,
    HEAT_D,
    HEAT_E,
    HEAT_F,
    HEAT_G,
    HEAT_CLASS__COUNT
};

/* What EN 54-5 says about one class, in degC. */
struct heat_class_info {
    const char *name; /* "A1" ... "G" */
    double typical;   /* typical application temperature */
    double max_application;
    double static_min; /* static response temperature range */
    double static_max;
};

enum detector_type { DET_SMOKE, DET_HEAT, DET_PANEL_ZONE };

struct cfg_detector {
    char *id;                         /* unique, [A-Za-z0-9_.-]{1,64} */
    size_t device;                    /* index into cfg.devices */
    int channel;                      /* 1-based; panel zone number for a panel */
    size_t zone;                      /* index into cfg.zones */
    int floor;                        /* -5..200; defaults to the zone's floor */
    char *location;                   /* free text for people on site */
    enum detector_type type;          /* from the device's profile kind */
    struct cfg_thresholds thresholds; /* defaults for the type, or overrides */
    int64_t no_response_ms;
    enum heat_class heat_class; /* heat only; HEAT_CLASS_NONE if levels were given */
    char heat_suffix;           /* 'R', 'S' or 0 */
    bool rate_of_rise;          /* heat only: rate-of-rise element active */
    int64_t stuck_after_ms;     /* 0: off */
    int line;
};

enum uplink_role { UPLINK_FIRE_POLICE, UPLINK_OWNER, UPLINK_OTHER };

struct cfg_uplink {
    char *id;
    enum uplink_role role;
    char *host;             /* broker host; loopback in tests and the demo */
    int port;               /* default 1883 */
    char *client_id;        /* default "firegw-<site.id>-<uplink id>" */
    char *username;         /* optional */
    char *password;         /* optional */
    char *topic_prefix;     /* default "firegw/<site.id>" */
    int64_t keepalive_ms;   /* default 30 s */
    int64_t heartbeat_ms;   /* default gateway.heartbeat */
    int max_buffered;       /* messages buffered while offline; default 100000 */
    int64_t ack_timeout_ms; /* fire alarm acknowledgement limit; 0: none expected */
    unsigned commands;      /* remote commands it may give: CMDSET_BIT set (cmdset.h) */
    char **failover;        /* further broker nodes, "host:port" each */
    size_t nfailover;
    bool tls;
    char *ca_file;   /* NULL: the system's CAs */
    char *cert_file; /* client certificate, with key_file; NULL: none */
    char *key_file;
    bool verify_hostname;
    unsigned kinds; /* bit (1u << ev_kind) for each event kind sent */
    size_t *zones;  /* indexes into cfg.zones; none: every zone */
    size_t nzones;
    bool test_events; /* send test events */
    bool cap;         /* also publish fire alarms as CAP 1.2 XML on <prefix>/cap (cap.h) */
    int line;
};

/* The web UI ([web]); paths are absolute or NULL when not given. */
struct cfg_web {
    bool enabled;      /* listen is not "off" */
    char *listen_host; /* numeric IPv4 or IPv6 address */
    bool listen_ipv6;
    int listen_port;
    char *root;       /* NULL: the default search (web.c) */
    char *https_cert; /* both or neither: HTTPS */
    char *https_key;
    int64_t session_timeout_ms; /* idle logins end; default 8 h */
    char *users_file;           /* NULL: STATE_DIR/users.json */
};

struct cfg {
    char *path;
    struct cfg_site site;
    struct cfg_gateway gateway;
    struct cfg_defaults defaults;
    struct cfg_bus *buses;
    size_t nbuses;
    struct cfg_device *devices;
    size_t ndevices;
    struct cfg_zone *zones;
    size_t nzones;
    struct cfg_detector *detectors;
    size_t ndetectors;
    struct cfg_uplink *uplinks;
    size_t nuplinks;
    struct profile_set profiles; /* the profiles this config uses */
    struct cfg_web web;
};

/* Whether uplink u of cfg sends an event of this kind, zone (or none) and test flag. */
bool cfg_uplink_wants(const struct cfg *cfg, size_t u, int kind, bool has_zone, size_t zone,
                      bool test);

/*
 * Parse and validate a site config. On success returns a config the caller
 * owns (cfg_free). On failure returns NULL and writes every problem found, one
 * "path:line: message" per line, into err (size errlen, truncated if full).
 */
struct cfg *cfg_load(const char *path, char *err, size_t errlen);
/* Same from a string; name is used in messages and to resolve relative paths. */
struct cfg *cfg_load_string(const char *text, const char *name, char *err, size_t errlen);
/*
 * cfg_load with overrides applied as if they were written at the end of their
 * section: each is "section.key=value" or "section.name.key=value", e.g.
 * "bus.rs485-a.device=/tmp/demo/ttyA" or "uplink.district.port=18830". The
 * section must exist (except site and gateway). Errors name "--set N".
 */
struct cfg *cfg_load_ex(const char *path, const char *const *overrides, size_t noverrides,
                        char *err, size_t errlen);
void cfg_free(struct cfg *cfg);
/* Reference table of every config key (Markdown, as in docs/config.md); caller frees. */
char *cfg_reference_markdown(void);
/* Key i (0-based, in table order) of a section type such as "bus"; NULL past the last. */
const char *cfg_section_key(const char *section, size_t i);

/* Lookups by id; -1 if absent. */
long cfg_find_bus(const struct cfg *cfg, const char *id);
long cfg_find_device(const struct cfg *cfg, const char *id);
long cfg_find_detector(const struct cfg *cfg, const char *id);

const char *detector_type_name(enum detector_type t);
/* The EN 54-5 table row of class c, NULL for HEAT_CLASS_NONE or out of range. */
const struct heat_class_info *heat_class_info(enum heat_class c);
const char *coincidence_mode_name(enum coincidence_mode m); /* "none", "two_detectors", ... */
/* "%/m", "degC" or "" for panel zones. */
const char *detector_unit(enum detector_type t);

#endif
