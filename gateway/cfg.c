/*
 * Site config loading (docs/config.md). Every key lives in one table, options[]:
 * name, type, range, default and description. The table drives conversion,
 * range checks and defaults, and cfg_reference_markdown() prints it for the
 * reference docs, so code and docs cannot drift apart. The code after the
 * table only resolves cross references and checks rules that span keys.
 *
 * Loading runs in three passes: tokenize and sort lines into sections (with
 * --set overrides merged in), convert every value by the table, then build
 * struct cfg. Every problem is collected as "path:line: message" before
 * giving up; the config is all or nothing.
 */
#include "cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdset.h"
#include "event.h"
#include "ini.h"
#include "util.h"

#define ID_MAX 64
#define MSG_MAX 512
/* The installed profiles; the Makefile passes PREFIX/share/firegw/profiles. */
#ifndef FIREGW_PROFILE_DIR
#define FIREGW_PROFILE_DIR "/usr/share/firegw/profiles"
#endif

enum opt_type { T_TEXT, T_INT, T_NUM, T_DUR, T_BOOL, T_ENUM };
enum {
    F_REQ = 1u << 0,    /* required (for F_TCP/F_RTU keys: on that bus type) */
    F_REPEAT = 1u << 1, /* may appear more than once */
    F_TCP = 1u << 2,    /* only on type = tcp buses */
    F_RTU = 1u << 3,    /* only on type = rtu buses */
};

struct opt {
    const char *section;
    const char *key;
    enum opt_type type;
    unsigned flags;
    double min, max;     /* T_INT, T_NUM; T_DUR in ms; T_TEXT: max bytes */
    const char *choices; /* T_ENUM names, or the only allowed T_INT values, '|'-separated */
    const char *what;    /* what a T_INT with choices is, for messages */
    const char *def;     /* default as written in a config; NULL: none or computed */
    const char *def_doc; /* computed default, for the docs */
    const char *help;
};

#define HOUR 3600000.0
#define MINUTE 60000.0
#define HEAT_CLASSES "A1|A1R|A1S|A2|A2R|A2S|B|BR|BS|C|CR|CS|D|DR|DS|E|ER|ES|F|FR|FS|G|GR|GS"
#define STD_BAUDS "1200|2400|4800|9600|19200|38400|57600|115200"

static const struct opt options[] = {
    {"site", "id", T_TEXT, F_REQ, 0, ID_MAX, NULL, NULL, NULL, NULL,
     "building id used in MQTT topics and payloads: 1-64 of A-Z a-z 0-9 _ -"},
    {"site", "name", T_TEXT, F_REQ, 1, 200, NULL, NULL, NULL, NULL, "building name for people"},
    {"site", "address", T_TEXT, 0, 0, 200, NULL, NULL, NULL, "", "street address"},
    {"site", "district", T_TEXT, 0, 0, 100, NULL, NULL, NULL, "", "district (quận/huyện)"},
    {"site", "latitude", T_NUM, 0, -90, 90, NULL, NULL, "0", NULL, "WGS84 latitude, degrees"},
    {"site", "longitude", T_NUM, 0, -180, 180, NULL, NULL, "0", NULL, "WGS84 longitude, degrees"},

    {"gateway", "state_dir", T_TEXT, 0, 1, 4096, NULL, NULL, "/var/lib/firegw", NULL,
     "directory for sequence numbers, the lock and the control socket (relative: to this file)"},
    {"gateway", "profile_dir", T_TEXT, F_REPEAT, 1, 4096, NULL, NULL, NULL,
     "`<config dir>/profiles`, `/etc/firegw/profiles`, then the installed ones: "
     "`/usr/share/firegw/profiles` (package) or `/usr/local/share/firegw/profiles` (`make "
     "install`); missing ones skipped",
     "directory searched for NAME.profile, in the order given; may repeat; relative to the "
     "config file's directory; must exist"},
    {"gateway", "log_level", T_ENUM, 0, 0, 0, "error|warning|notice|info|debug", NULL, "info", NULL,
     "messages above this level are not logged"},
    {"gateway", "heartbeat", T_DUR, 0, 1000, 24 * HOUR, NULL, NULL, "60s", NULL,
     "interval of heartbeat messages on every uplink"},

    {"defaults", "smoke_prealarm", T_NUM, 0, 0.01, 20, NULL, NULL, "1.5", NULL,
     "smoke pre-alarm level, %/m obscuration"},
    {"defaults", "smoke_alarm", T_NUM, 0, 0.01, 20, NULL, NULL, "2.0", NULL,
     "smoke fire alarm level, %/m (EN 54-7 detectors respond at about 1.8-2.4)"},
    {"defaults", "smoke_hysteresis", T_NUM, 0, 0.01, 20, NULL, NULL, "0.3", NULL,
     "a smoke level clears below level - hysteresis; 0 < hysteresis < prealarm"},
    {"defaults", "heat_prealarm", T_NUM, 0, 1, 200, NULL, NULL, "50", NULL,
     "heat pre-alarm level, degC"},
    {"defaults", "heat_alarm", T_NUM, 0, 1, 200, NULL, NULL, "58", NULL,
     "heat fire alarm level, degC (EN 54-5 class A1 responds at 54-65)"},
    {"defaults", "heat_hysteresis", T_NUM, 0, 0.1, 200, NULL, NULL, "3", NULL,
     "a heat level clears below level - hysteresis; 0 < hysteresis < prealarm"},
    {"defaults", "no_response", T_DUR, 0, 1000, 100000, NULL, NULL, "30s", NULL,
     "a detector silent this long is faulted (EN 54 allows at most 100 s)"},
    {"defaults", "lifecheck_timeout", T_DUR, 0, 1000, 100000, NULL, NULL, "30s", NULL,
     "a panel whose LifeCheck counter stands still this long is faulted"},
    {"defaults", "rate_of_rise", T_NUM, 0, 1, 60, NULL, NULL, "9", NULL,
     "heat rise in degC per minute that counts as a fire, for detectors with rate_of_rise"},
    {"defaults", "rate_of_rise_window", T_DUR, 0, 10000, 10 * MINUTE, NULL, NULL, "60s", NULL,
     "the rise must be sustained over this window"},
    {"defaults", "stuck_after", T_DUR, 0, 0, 7 * 24 * HOUR, NULL, NULL, "0s", NULL,
     "a value that has not changed at all for this long is a fault; 0s: off; else at least 1min"},

    {"bus", "type", T_ENUM, F_REQ, 0, 0, "tcp|rtu", NULL, NULL, NULL,
     "tcp: Modbus TCP (or a TCP/RS-485 converter); rtu: Modbus RTU on a serial port"},
    {"bus", "host", T_TEXT, F_REQ | F_TCP, 1, 253, NULL, NULL, NULL, NULL,
     "tcp: address or host name of the Modbus TCP server"},
    {"bus", "port", T_INT, F_TCP, 1, 65535, NULL, NULL, "502", NULL, "tcp: TCP port"},
    {"bus", "device", T_TEXT, F_REQ | F_RTU, 1, 255, NULL, NULL, NULL, NULL,
     "rtu: serial device, e.g. /dev/ttyUSB0"},
    {"bus", "baud", T_INT, F_RTU, 1200, 115200, STD_BAUDS, "a standard rate", "9600", NULL,
     "rtu: bit rate"},
    {"bus", "parity", T_ENUM, F_RTU, 0, 0, "none|even|odd", NULL, "none", NULL, "rtu: parity"},
    {"bus", "data_bits", T_INT, F_RTU, 7, 8, "7|8", "a data bit count", "8", NULL,
     "rtu: data bits"},
    {"bus", "stop_bits", T_INT, F_RTU, 1, 2, "1|2", "a stop bit count", "1", NULL,
     "rtu: stop bits"},
    {"bus", "rs485", T_BOOL, F_RTU, 0, 0, NULL, NULL, "no", NULL,
     "rtu: switch the port to RS-485 mode (for UARTs with a driver-enable line)"},
    {"bus", "poll_interval", T_DUR, 0, 100, HOUR, NULL, NULL, "200ms", NULL,
     "time between two polls of every device on the bus"},
    {"bus", "timeout", T_DUR, 0, 10, 10000, NULL, NULL, "500ms", NULL,
     "time a device has to answer one request, whole reply included (on rtu, plus the "
     "reply's time on the wire at the bus's baud rate); devices may override"},
    {"bus", "retries", T_INT, 0, 0, 5, NULL, NULL, "1", NULL,
     "extra tries of a failed request (devices may override)"},
    {"bus", "backoff_min", T_DUR, 0, 100, HOUR, NULL, NULL, "5s", NULL,
     "first skip period of a failing device, so it cannot stall the bus"},
    {"bus", "backoff_max", T_DUR, 0, 100, HOUR, NULL, NULL, "60s", NULL,
     "longest skip period of a failing device; >= backoff_min"},
    {"bus", "reconnect_min", T_DUR, 0, 100, HOUR, NULL, NULL, "1s", NULL,
     "first wait before reconnecting a lost bus"},
    {"bus", "reconnect_max", T_DUR, 0, 100, HOUR, NULL, NULL, "30s", NULL,
     "longest wait before reconnecting; >= reconnect_min"},
    {"bus", "max_gap", T_INT, 0, 0, 125, NULL, NULL, "8", NULL,
     "unused registers one read may span to merge two reads"},
    {"bus", "max_in_flight", T_INT, F_TCP, 1, BUS_MAX_IN_FLIGHT, NULL, NULL, "1", NULL,
     "tcp: requests sent before their replies are read, so one wake-up serves many replies "
     "(less CPU per read); 1: one at a time. At most 32: a TCP/RS-485 gateway answers queued "
     "requests one by one, each waiting for those before it. A reply that does not fit its "
     "request (or none) sends the rest of that poll cycle back to one at a time"},

    {"device", "bus", T_TEXT, F_REQ, 1, ID_MAX, NULL, NULL, NULL, NULL, "id of a [bus]"},
    {"device", "unit", T_INT, F_REQ, 0, 255, NULL, NULL, NULL, NULL,
     "Modbus unit id: 1..247 on rtu buses, 0..255 on tcp buses"},
    {"device", "profile", T_TEXT, F_REQ, 1, 128, NULL, NULL, NULL, NULL,
     "profile name: NAME.profile in a profile directory"},
    {"device", "timeout", T_DUR, 0, 10, 10000, NULL, NULL, NULL, "the bus's timeout",
     "time this device has to answer one request, as the bus's timeout"},
    {"device", "retries", T_INT, 0, 0, 5, NULL, NULL, NULL, "the bus's retries",
     "extra tries of a failed request"},
    {"device", "fail_after", T_INT, 0, 1, 100, NULL, NULL, "3", NULL,
     "consecutive failed polls before the device is faulted and backed off"},

    {"zone", "name", T_TEXT, F_REQ, 1, 200, NULL, NULL, NULL, NULL, "zone name for people"},
    {"zone", "floor", T_INT, F_REQ, -5, 200, NULL, NULL, NULL, NULL,
     "floor number (negative: basement levels)"},
    {"zone", "verification", T_BOOL, 0, 0, 0, NULL, NULL, "no", NULL,
     "alarm verification of the zone's smoke detectors (never heat detectors or panel zones)"},
    {"zone", "verification_retard", T_DUR, 0, 0, MINUTE, NULL, NULL, "30s", NULL,
     "first alarm-level reading -> wait this long before looking again (at most 60 s)"},
    {"zone", "verification_window", T_DUR, 0, MINUTE, 10 * MINUTE, NULL, NULL, "60s", NULL,
     "then an alarm-level reading within this window confirms (at least 60 s)"},
    {"zone", "coincidence", T_ENUM, 0, 0, 0, "none|two_detectors|smoke_and_heat", NULL, "none",
     NULL, "what confirms a fire in the zone (fire_confirmed) after the first fire alarm"},
    {"zone", "coincidence_window", T_DUR, 0, 1000, 8 * MINUTE, NULL, NULL, "5min", NULL,
     "the confirming alarm must come within this time of the first"},
    {"zone", "positive_alarm_sequence", T_BOOL, 0, 0, 0, NULL, NULL, "no", NULL,
     "hold the zone's first automatic alarm for acknowledgement and investigation"},
    {"zone", "pas_acknowledge", T_DUR, 0, 1000, 15000, NULL, NULL, "15s", NULL,
     "positive alarm sequence: not acknowledged within this -> the alarm goes out"},
    {"zone", "pas_investigation", T_DUR, 0, 1000, 3 * MINUTE, NULL, NULL, "180s", NULL,
     "positive alarm sequence: after acknowledgement, the alarm goes out after this"},

    {"detector", "device", T_TEXT, 0, 1, ID_MAX, NULL, NULL, NULL, NULL,
     "id of a [device]; or give bus, unit and profile instead"},
    {"detector", "bus", T_TEXT, 0, 1, ID_MAX, NULL, NULL, NULL, NULL,
     "shorthand: id of a [bus]; with unit and profile it creates (or shares) device <bus>/<unit>"},
    {"detector", "unit", T_INT, 0, 0, 255, NULL, NULL, NULL, NULL,
     "shorthand: Modbus unit id (1..247 on rtu buses)"},
    {"detector", "profile", T_TEXT, 0, 1, 128, NULL, NULL, NULL, NULL,
     "shorthand: profile name; every detector on one bus and unit names the same"},
    {"detector", "channel", T_INT, 0, 1, 512, NULL, NULL, "1", NULL,
     "channel of the device (a panel's zone number); up to the profile's channels"},
    {"detector", "zone", T_TEXT, F_REQ, 1, ID_MAX, NULL, NULL, NULL, NULL, "id of a [zone]"},
    {"detector", "floor", T_INT, 0, -5, 200, NULL, NULL, NULL, "the zone's floor", "floor number"},
    {"detector", "location", T_TEXT, 0, 0, 200, NULL, NULL, NULL, "",
     "where it is, for people on site"},
    {"detector", "prealarm", T_NUM, 0, 0.01, 200, NULL, NULL, NULL, "[defaults] for the type",
     "smoke and heat only: pre-alarm level; below alarm"},
    {"detector", "alarm", T_NUM, 0, 0.01, 200, NULL, NULL, NULL, "[defaults] for the type",
     "smoke and heat only: fire alarm level; within the profile's value range"},
    {"detector", "hysteresis", T_NUM, 0, 0.01, 200, NULL, NULL, NULL, "[defaults] for the type",
     "smoke and heat only: 0 < hysteresis < prealarm"},
    {"detector", "no_response", T_DUR, 0, 1000, 100000, NULL, NULL, NULL, "[defaults] no_response",
     "silent this long -> fault"},
    {"detector", "heat_class", T_ENUM, 0, 0, 0, HEAT_CLASSES, NULL, NULL, "none",
     "heat only: EN 54-5 class; sets prealarm and alarm from the class table (not with them); "
     "suffix R turns rate_of_rise on, S keeps it off"},
    {"detector", "rate_of_rise", T_BOOL, 0, 0, 0, NULL, NULL, NULL,
     "yes for class suffix R, else no",
     "heat only: also alarm on a sustained rise of [defaults] rate_of_rise"},
    {"detector", "stuck_after", T_DUR, 0, 0, 7 * 24 * HOUR, NULL, NULL, NULL,
     "[defaults] stuck_after", "smoke and heat only: unchanged value this long -> fault; 0s: off"},

    {"uplink", "role", T_ENUM, F_REQ, 0, 0, "fire_police|owner|other", NULL, NULL, NULL,
     "who listens: the fire police, the building owner, or other"},
    {"uplink", "host", T_TEXT, F_REQ, 1, 253, NULL, NULL, NULL, NULL, "MQTT broker address"},
    {"uplink", "port", T_INT, 0, 1, 65535, NULL, NULL, "1883", NULL, "MQTT broker port"},
    {"uplink", "client_id", T_TEXT, 0, 1, 128, NULL, NULL, NULL, "`firegw-<site id>-<uplink id>`",
     "MQTT client id; unique per broker"},
    {"uplink", "username", T_TEXT, 0, 1, 255, NULL, NULL, NULL, "none", "MQTT user name"},
    {"uplink", "password", T_TEXT, 0, 1, 255, NULL, NULL, NULL, "none", "MQTT password"},
    {"uplink", "topic_prefix", T_TEXT, 0, 1, 128, NULL, NULL, NULL, "`firegw/<site id>`",
     "prefix of every topic; no '+', '#' or trailing '/'"},
    {"uplink", "keepalive", T_DUR, 0, 1000, HOUR, NULL, NULL, "30s", NULL, "MQTT keep-alive"},
    {"uplink", "heartbeat", T_DUR, 0, 1000, 24 * HOUR, NULL, NULL, NULL, "[gateway] heartbeat",
     "heartbeat interval on this uplink"},
    {"uplink", "max_buffered", T_INT, 0, 100, 1000000, NULL, NULL, "100000", NULL,
     "messages kept while the broker is unreachable"},
    {"uplink", "failover", T_TEXT, 0, 1, 1024, NULL, NULL, NULL, "none",
     "further nodes of a clustered broker, tried in turn when one fails: host:port, ..."},
    {"uplink", "tls", T_BOOL, 0, 0, 0, NULL, NULL, "no", NULL,
     "connect with TLS (the broker's certificate is checked)"},
    {"uplink", "ca_file", T_TEXT, 0, 1, 4096, NULL, NULL, NULL, "the system's CAs",
     "PEM file of the CA that signed the broker's certificate (relative: to this file)"},
    {"uplink", "cert_file", T_TEXT, 0, 1, 4096, NULL, NULL, NULL, "none",
     "PEM client certificate, with key_file, for brokers that require one"},
    {"uplink", "key_file", T_TEXT, 0, 1, 4096, NULL, NULL, NULL, "none",
     "PEM private key of cert_file"},
    {"uplink", "verify_hostname", T_BOOL, 0, 0, 0, NULL, NULL, "yes", NULL,
     "check that the broker's certificate names the host connected to"},
    {"uplink", "ack_timeout", T_DUR, 0, 0, HOUR, NULL, NULL, NULL,
     "100s for fire_police, 0s otherwise",
     "fire alarms not acknowledged by the receiving centre within this are sent again and "
     "raise a transmission fault (EN 54-21 type 1: 100 s); 0s: no acknowledgement expected"},
    {"uplink", "events", T_TEXT, 0, 1, 400, NULL, NULL, NULL, "every kind",
     "only these event kinds, comma-separated (fire_police must keep fire_alarm and fault)"},
    {"uplink", "zones", T_TEXT, 0, 1, 1000, NULL, NULL, NULL, "every zone",
     "only events of these zones, comma-separated; events of no zone (buses, devices, the "
     "gateway) always go"},
    {"uplink", "test_events", T_BOOL, 0, 0, 0, NULL, NULL, "yes", NULL,
     "send test events (always marked test, never real)"},
    {"uplink", "cap", T_BOOL, 0, 0, 0, NULL, NULL, "no", NULL,
     "also publish fire alarms, confirmed fires and test alarms as OASIS CAP 1.2 XML on "
     "`<prefix>/cap` (docs/cap.md)"},
    {"uplink", "commands", T_TEXT, 0, 1, 200, NULL, NULL, NULL,
     "fire_police: `acknowledge,silence,reset,state`; owner: `acknowledge,state`; other: `state`",
     "remote commands accepted on `<prefix>/command`: comma-separated acknowledge, silence, "
     "reset, disable, enable, test_on, test_off, state; or none"},

    {"web", "listen", T_TEXT, 0, 1, 64, NULL, NULL, "127.0.0.1:8080", NULL,
     "address and port of the web UI: `127.0.0.1:8080` (this board only), `0.0.0.0:8080` (the "
     "LAN), `[::]:8080` (IPv6), or `off`; numeric addresses only"},
    {"web", "root", T_TEXT, 0, 1, 4096, NULL, NULL, NULL,
     "`web-ui` beside the profile directories, else `./web-ui`",
     "directory of the web UI's files (relative: to this file)"},
    {"web", "https_cert", T_TEXT, 0, 1, 4096, NULL, NULL, NULL, "none: plain HTTP",
     "PEM certificate (chain); with https_key the UI is served over HTTPS only"},
    {"web", "https_key", T_TEXT, 0, 1, 4096, NULL, NULL, NULL, "none",
     "PEM private key of https_cert; keep it readable by firegw only"},
    {"web", "session_timeout", T_DUR, 0, MINUTE, 7 * 24 * HOUR, NULL, NULL, "8h", NULL,
     "a login ends after this long without a request"},
    {"web", "users_file", T_TEXT, 0, 1, 4096, NULL, NULL, NULL, "`<state dir>/users.json`",
     "web accounts and their password hashes, written with mode 0600 (relative: to this file)"},
};

struct section_def {
    const char *name;
    bool named;
    const char *help;
};

static const struct section_def sections[] = {
    {"site", false, "the building"},
    {"gateway", false, "this gateway"},
    {"defaults", false, "alarm levels and fault times for every detector"},
    {"bus", true, "one Modbus TCP connection or RS-485 line"},
    {"device", true, "one Modbus unit on a bus and its profile"},
    {"zone", true, "a detection zone (usually one floor)"},
    {"detector", true, "one smoke or heat detector, or one fire panel zone"},
    {"uplink", true, "one MQTT broker the gateway reports to"},
    {"web", false, "the web UI and its HTTP API (docs/http-api.md)"},
};

/* One key as written (or defaulted), with its converted value. */
struct kv {
    const struct opt *opt;
    char *value;
    int line; /* 0 for defaults and overrides */
    int src;  /* 0: the file, N: --set N, -1: the table's default */
    bool ok;  /* converted without error */
    union {
        long long i;
        double d;
        int64_t ms;
        bool b;
        int e;
    } v;
};

struct sec {
    const struct section_def *def;
    char *name;
    int line;
    int src;
    struct kv *kv;
    size_t nkv;
};

/* One error, kept until the end so the report reads in file order. */
struct msg {
    int src;    /* 0: the file, N: --set N */
    int line;   /* sort key: whole-file errors (no line) come last */
    size_t seq; /* order of discovery, to break ties */
    char *text; /* whole lines, each ending in '\n' */
};

struct ctx {
    const char *path;
    char *dir; /* the config file's directory */
    struct msg *msgs;
    size_t nmsgs;
    bool dirs_bad;                 /* a profile_dir failed: missing profiles are its consequence */
    bool saw_detector, saw_uplink; /* headers written, even if rejected */
    struct sec *secs;
    size_t nsecs, secs_cap;
    /* Open addressing over secs by type and id: index + 1, 0 empty; a power of two long. */
    size_t *sec_slots;
    size_t nslots;
    char **failed_profiles;
    size_t nfailed;
};

static void verr(struct ctx *c, int src, int line, const char *fmt, va_list ap)
{
    char msg[MSG_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    c->msgs = xrealloc(c->msgs, (c->nmsgs + 1) * sizeof(*c->msgs));
    struct msg *m = &c->msgs[c->nmsgs++];
    *m = (struct msg){src > 0 ? src : 0, src > 0 ? 0 : line > 0 ? line : INT_MAX, c->nmsgs, NULL};
    if (src > 0)
        m->text = xasprintf("--set %d: %s\n", src, msg);
    else if (line > 0)
        m->text = xasprintf("%s:%d: %s\n", c->path, line, msg);
    else
        m->text = xasprintf("%s: %s\n", c->path, msg);
}

/* Add lines that belong to the last error (a profile's own errors). */
static void append_to_last(struct ctx *c, const char *text)
{
    struct msg *m = &c->msgs[c->nmsgs - 1];
    char *t = xasprintf("%s%s", m->text, text);
    free(m->text);
    m->text = t;
}

/* File errors by line, then --set errors by number; ties keep their order. */
static int cmp_msg(const void *a, const void *b)
{
    const struct msg *x = a, *y = b;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void __attribute__((format(printf, 4, 5)))
fail(struct ctx *c, int src, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(c, src, line, fmt, ap);
    va_end(ap);
}

/* "bus \"rs485-a\"" or "site": how messages name a section. */
static const char *sec_label(const struct sec *s, char *buf, size_t len)
{
    if (s->name)
        snprintf(buf, len, "%s \"%s\"", s->def->name, s->name);
    else
        snprintf(buf, len, "%s", s->def->name);
    return buf;
}

/* An error about section s, at its header line, prefixed with its label. */
static void __attribute__((format(printf, 3, 4)))
sec_fail(struct ctx *c, const struct sec *s, const char *fmt, ...)
{
    char label[96], msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fail(c, s->src, s->line, "%s: %s", sec_label(s, label, sizeof(label)), msg);
}

/* An error about one key, at its line (or its --set, or the section for defaults). */
static void __attribute__((format(printf, 4, 5)))
kv_fail(struct ctx *c, const struct sec *s, const struct kv *kv, const char *fmt, ...)
{
    char label[96], msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int src = kv->src > 0 ? kv->src : s->src;
    int line = kv->src == 0 ? kv->line : s->line;
    fail(c, src, line, "%s: %s", sec_label(s, label, sizeof(label)), msg);
}

static const struct section_def *find_section_def(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(sections); i++)
        if (strcmp(sections[i].name, name) == 0)
            return &sections[i];
    return NULL;
}

static const struct opt *find_opt(const char *section, const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (strcmp(options[i].section, section) == 0 && strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

static void keys_of(const char *section, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(options) && used < len; i++)
        if (strcmp(options[i].section, section) == 0)
            used +=
                (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", options[i].key);
}

/* "a|b|c" -> "a, b, c" */
static void choices_list(const char *choices, char *buf, size_t len)
{
    size_t j = 0;
    for (const char *p = choices; *p && j + 3 < len; p++) {
        if (*p == '|') {
            buf[j++] = ',';
            buf[j++] = ' ';
        } else {
            buf[j++] = *p;
        }
    }
    buf[j] = '\0';
}

/* Index of word in a '|'-separated list, or -1. */
static int choice_index(const char *choices, const char *word)
{
    size_t wl = strlen(word);
    int idx = 0;
    for (const char *p = choices;; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == wl && strncmp(p, word, n) == 0)
            return idx;
        if (!bar)
            return -1;
        p = bar + 1;
    }
}

static void fmt_ms(double ms, char *buf, size_t len)
{
    long long v = (long long)ms;
    if (v % 3600000 == 0 && v)
        snprintf(buf, len, "%lldh", v / 3600000);
    else if (v % 60000 == 0 && v)
        snprintf(buf, len, "%lldmin", v / 60000);
    else if (v % 1000 == 0 && v)
        snprintf(buf, len, "%llds", v / 1000);
    else
        snprintf(buf, len, "%lldms", v);
}

/* Convert kv->value by its option; 0 or -1 with the expectation in why. */
static int convert(struct kv *kv, char *why, size_t whylen)
{
    const struct opt *o = kv->opt;
    const char *s = kv->value;
    char a[32], b[32], list[160];
    switch (o->type) {
    case T_TEXT: {
        size_t n = strlen(s);
        if (n < (size_t)o->min || n > (size_t)o->max) {
            if (o->min > 0 && n == 0)
                snprintf(why, whylen, "is empty");
            else
                snprintf(why, whylen, "is longer than %.0f bytes", o->max);
            return -1;
        }
        return 0;
    }
    case T_INT:
        if (parse_int(s, (long long)o->min, (long long)o->max, &kv->v.i) < 0) {
            if (o->choices) {
                choices_list(o->choices, list, sizeof(list));
                snprintf(why, whylen, "is not %s (%s)", o->what, list);
            } else {
                snprintf(why, whylen, "is not an integer in %.0f..%.0f", o->min, o->max);
            }
            return -1;
        }
        if (o->choices) {
            snprintf(a, sizeof(a), "%lld", kv->v.i);
            if (choice_index(o->choices, a) < 0) {
                choices_list(o->choices, list, sizeof(list));
                snprintf(why, whylen, "is not %s (%s)", o->what, list);
                return -1;
            }
        }
        return 0;
    case T_NUM:
        if (parse_double(s, o->min, o->max, &kv->v.d) < 0) {
            snprintf(why, whylen, "is not a number in %g..%g", o->min, o->max);
            return -1;
        }
        return 0;
    case T_DUR:
        if (parse_duration_ms(s, (int64_t)o->min, (int64_t)o->max, &kv->v.ms) < 0) {
            fmt_ms(o->min, a, sizeof(a));
            fmt_ms(o->max, b, sizeof(b));
            snprintf(why, whylen, "is not a duration in %s..%s (with a unit: ms, s, min, h)", a, b);
            return -1;
        }
        return 0;
    case T_BOOL:
        if (parse_bool(s, &kv->v.b) < 0) {
            snprintf(why, whylen, "is not yes or no");
            return -1;
        }
        return 0;
    case T_ENUM:
        kv->v.e = choice_index(o->choices, s);
        if (kv->v.e < 0) {
            choices_list(o->choices, list, sizeof(list));
            snprintf(why, whylen, "is not one of %s", list);
            return -1;
        }
        return 0;
    }
    return -1;
}

/*
 * Sections are found by type and id through a hash table, so a building of
 * thousands of detectors loads in linear time. FNV-1a over "type\0id".
 */
static size_t sec_hash(const char *type, const char *name)
{
    uint64_t h = fnv1a(FNV1A_INIT, type, strlen(type) + 1);
    if (name)
        h = fnv1a(h, name, strlen(name));
    return (size_t)(h ^ (h >> 32));
}

static bool sec_is(const struct sec *s, const char *type, const char *name)
{
    return strcmp(s->def->name, type) == 0 &&
           (name ? s->name && strcmp(s->name, name) == 0 : !s->name);
}

static struct sec *find_sec(struct ctx *c, const char *type, const char *name)
{
    if (!c->nslots)
        return NULL;
    for (size_t k = sec_hash(type, name) & (c->nslots - 1);; k = (k + 1) & (c->nslots - 1)) {
        if (!c->sec_slots[k])
            return NULL;
        struct sec *s = &c->secs[c->sec_slots[k] - 1];
        if (sec_is(s, type, name))
            return s;
    }
}

static void slot_in(struct ctx *c, size_t i)
{
    const struct sec *s = &c->secs[i];
    size_t k = sec_hash(s->def->name, s->name) & (c->nslots - 1);
    while (c->sec_slots[k])
        k = (k + 1) & (c->nslots - 1);
    c->sec_slots[k] = i + 1;
}

/* A new section; (def, name) must not be there yet (find_sec first). */
static struct sec *add_sec(struct ctx *c, const struct section_def *def, const char *name, int line,
                           int src)
{
    if (c->nsecs == c->secs_cap) {
        c->secs_cap = c->secs_cap ? 2 * c->secs_cap : 64;
        c->secs = xrealloc(c->secs, c->secs_cap * sizeof(*c->secs));
    }
    struct sec *s = &c->secs[c->nsecs++];
    *s = (struct sec){def, name ? xstrdup(name) : NULL, line, src, NULL, 0};
    /* At most half full: grow and put every section in again. */
    if (2 * c->nsecs > c->nslots) {
        free(c->sec_slots);
        c->nslots = c->nslots ? 2 * c->nslots : 128;
        c->sec_slots = xcalloc(c->nslots, sizeof(*c->sec_slots));
        for (size_t i = 0; i + 1 < c->nsecs; i++)
            slot_in(c, i);
    }
    slot_in(c, c->nsecs - 1);
    return s;
}

static struct kv *get(const struct sec *s, const char *key)
{
    if (!s)
        return NULL;
    for (size_t i = s->nkv; i-- > 0;)
        if (strcmp(s->kv[i].opt->key, key) == 0)
            return &s->kv[i];
    return NULL;
}

/* Set by the user (not a default) and valid. */
static const struct kv *given(const struct sec *s, const char *key)
{
    const struct kv *kv = get(s, key);
    return kv && kv->src >= 0 && kv->ok ? kv : NULL;
}

static long long get_int(const struct sec *s, const char *key)
{
    const struct kv *kv = get(s, key);
    return kv && kv->ok ? kv->v.i : 0;
}

static double get_num(const struct sec *s, const char *key)
{
    const struct kv *kv = get(s, key);
    return kv && kv->ok ? kv->v.d : 0;
}

static int64_t get_ms(const struct sec *s, const char *key)
{
    const struct kv *kv = get(s, key);
    return kv && kv->ok ? kv->v.ms : 0;
}

static bool get_bool(const struct sec *s, const char *key)
{
    const struct kv *kv = get(s, key);
    return kv && kv->ok && kv->v.b;
}

static int get_enum(const struct sec *s, const char *key)
{
    const struct kv *kv = get(s, key);
    return kv && kv->ok ? kv->v.e : -1;
}

static const char *get_str(const struct sec *s, const char *key)
{
    const struct kv *kv = get(s, key);
    return kv && kv->ok ? kv->value : NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* Add key=value to s; src 0 from the file (at line), N for --set N. */
static void add_kv(struct ctx *c, struct sec *s, const char *key, const char *value, int line,
                   int src)
{
    char label[96], list[600];
    const struct opt *o = find_opt(s->def->name, key);
    if (!o) {
        keys_of(s->def->name, list, sizeof(list));
        fail(c, src, line, "%s: unknown key \"%s\" (expected one of: %s)",
             sec_label(s, label, sizeof(label)), key, list);
        return;
    }
    if (src == 0) {
        const struct kv *prev = get(s, key);
        if (prev && !(o->flags & F_REPEAT)) {
            fail(c, 0, line, "%s: duplicate key \"%s\" (first on line %d)",
                 sec_label(s, label, sizeof(label)), key, prev->line);
            return;
        }
    } else {
        /* An override replaces what the file says; repeated overrides of a repeatable key add. */
        bool keep = (o->flags & F_REPEAT) && get(s, key) && get(s, key)->src > 0;
        size_t j = 0;
        for (size_t i = 0; i < s->nkv; i++) {
            if (!keep && s->kv[i].opt == o)
                free(s->kv[i].value);
            else
                s->kv[j++] = s->kv[i];
        }
        s->nkv = j;
    }
    s->kv = xrealloc(s->kv, (s->nkv + 1) * sizeof(*s->kv));
    s->kv[s->nkv++] = (struct kv){.opt = o, .value = xstrdup(value), .line = line, .src = src};
}

static bool valid_id(const char *s, bool dots)
{
    size_t n = strlen(s);
    if (n == 0 || n > ID_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || (dots && *s == '.')))
            return false;
    return true;
}

/* Pass 1: sort the file's lines into sections. */
static void collect(struct ctx *c, const struct ini_file *f)
{
    struct sec *cur = NULL;
    bool skipping = false;
    for (size_t i = 0; i < f->count; i++) {
        const struct ini_item *it = &f->items[i];
        if (it->kind == INI_KEY) {
            if (cur)
                add_kv(c, cur, it->name, it->value, it->line, 0);
            else if (!skipping)
                fail(c, 0, it->line, "key \"%s\" outside any section", it->name);
            continue;
        }
        cur = NULL;
        skipping = true;
        if (it->kind == INI_BAD_SECTION)
            continue;
        const struct section_def *def = find_section_def(it->name);
        if (!def) {
            fail(c, 0, it->line,
                 "unknown section [%s] (expected site, gateway, defaults, bus, device, zone, "
                 "detector, uplink or web)",
                 it->name);
            continue;
        }
        c->saw_detector |= strcmp(def->name, "detector") == 0;
        c->saw_uplink |= strcmp(def->name, "uplink") == 0;
        if (def->named && !it->value) {
            fail(c, 0, it->line, "section [%s] needs an id, as in [%s ID]", def->name, def->name);
            continue;
        }
        if (!def->named && it->value) {
            fail(c, 0, it->line, "section [%s] takes no id", def->name);
            continue;
        }
        if (def->named && !valid_id(it->value, true)) {
            fail(c, 0, it->line, "%s id \"%s\" is not 1-%d of A-Z a-z 0-9 _ - .", def->name,
                 it->value, ID_MAX);
            continue;
        }
        const struct sec *prev = find_sec(c, def->name, it->value);
        if (prev) {
            if (def->named)
                fail(c, 0, it->line, "%s \"%s\" is already defined on line %d", def->name,
                     it->value, prev->line);
            else
                fail(c, 0, it->line, "second [%s] section (first on line %d)", def->name,
                     prev->line);
            continue;
        }
        cur = add_sec(c, def, it->value, it->line, 0);
        skipping = false;
    }
}

/* Merge one "section[.id].key=value" override, number n (1-based). */
static void apply_override(struct ctx *c, const char *ov, int n)
{
    const char *eq = strchr(ov, '=');
    const char *dot1 = strchr(ov, '.');
    if (!eq || !dot1 || dot1 > eq) {
        fail(c, n, 0, "expected SECTION.KEY=VALUE or SECTION.ID.KEY=VALUE, got \"%s\"", ov);
        return;
    }
    char *lhs = xmalloc((size_t)(eq - ov) + 1);
    memcpy(lhs, ov, (size_t)(eq - ov));
    lhs[eq - ov] = '\0';
    char *dot = strchr(lhs, '.');
    char *last = strrchr(lhs, '.');
    *dot = '\0';
    *last = '\0';
    const char *section = lhs, *key = last + 1, *id = dot == last ? NULL : dot + 1;
    const struct section_def *def = find_section_def(section);
    struct sec *s = NULL;
    if (!def) {
        fail(c, n, 0, "unknown section \"%s\" in \"%s\"", section, ov);
    } else if (def->named && !id) {
        fail(c, n, 0, "[%s] sections have ids: write %s.ID.%s=VALUE", section, section, key);
    } else if (!def->named && id) {
        fail(c, n, 0, "[%s] has no id: write %s.KEY=VALUE", section, section);
    } else if (!(s = find_sec(c, section, id)) && def->named) {
        fail(c, n, 0, "no [%s %s] section in %s", section, id, c->path);
    } else {
        if (!s)
            s = add_sec(c, def, NULL, 0, n);
        add_kv(c, s, key, eq + 1, 0, n);
    }
    free(lhs);
}

static bool opt_applies(const struct opt *o, int bus_type)
{
    if (o->flags & F_TCP)
        return bus_type == BUS_TCP;
    if (o->flags & F_RTU)
        return bus_type == BUS_RTU;
    return true;
}

/* Pass 2: convert every value, add defaults, report missing and misplaced keys. */
static void convert_all(struct ctx *c)
{
    char why[256];
    for (size_t i = 0; i < c->nsecs; i++) {
        struct sec *s = &c->secs[i];
        for (size_t j = 0; j < s->nkv; j++) {
            struct kv *kv = &s->kv[j];
            kv->ok = convert(kv, why, sizeof(why)) == 0;
            if (!kv->ok)
                kv_fail(c, s, kv, "%s \"%s\" %s", kv->opt->key, kv->value, why);
        }
        int bus_type = -1;
        if (strcmp(s->def->name, "bus") == 0) {
            bus_type = get_enum(s, "type");
            static const char *const names[] = {"tcp", "rtu"};
            for (size_t j = 0; bus_type >= 0 && j < s->nkv; j++) {
                struct kv *kv = &s->kv[j];
                if (!opt_applies(kv->opt, bus_type)) {
                    kv_fail(c, s, kv, "%s applies to %s buses only; this bus is %s", kv->opt->key,
                            (kv->opt->flags & F_TCP) ? "tcp" : "rtu", names[bus_type]);
                    kv->ok = false;
                }
            }
        }
        for (size_t k = 0; k < ARRAY_LEN(options); k++) {
            const struct opt *o = &options[k];
            if (strcmp(o->section, s->def->name) != 0 || get(s, o->key))
                continue;
            bool typed = o->flags & (F_TCP | F_RTU);
            if (typed && (bus_type < 0 || !opt_applies(o, bus_type)))
                continue;
            if (o->flags & F_REQ) {
                sec_fail(c, s, "missing required key \"%s\"", o->key);
            } else if (o->def) {
                s->kv = xrealloc(s->kv, (s->nkv + 1) * sizeof(*s->kv));
                struct kv *kv = &s->kv[s->nkv++];
                *kv = (struct kv){.opt = o, .value = xstrdup(o->def), .src = -1};
                kv->ok = convert(kv, why, sizeof(why)) == 0;
            }
        }
    }
}

static char *join_dir(const char *dir, const char *rel)
{
    if (rel[0] == '/')
        return xstrdup(rel);
    return xasprintf("%s/%s", dir, rel);
}

/* 0 if path is a directory, else why not (an errno value). */
static int dir_error(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static void add_profile_dir(struct cfg_gateway *g, const char *path)
{
    char *real = realpath(path, NULL);
    g->profile_dirs = xrealloc(g->profile_dirs, (g->nprofile_dirs + 1) * sizeof(char *));
    g->profile_dirs[g->nprofile_dirs++] = real ? real : xstrdup(path);
}

static void build_site_gateway(struct ctx *c, struct cfg *cfg)
{
    struct sec *site = find_sec(c, "site", NULL);
    if (!site)
        fail(c, 0, 0, "no [site] section; it names the building (id and name are required)");
    const char *id = get_str(site, "id");
    if (id && !valid_id(id, false))
        kv_fail(c, site, get(site, "id"), "id \"%s\" is not 1-%d of A-Z a-z 0-9 _ -", id, ID_MAX);
    cfg->site.id = xstrdup(id);
    cfg->site.name = xstrdup(get_str(site, "name"));
    cfg->site.address = xstrdup(get_str(site, "address"));
    cfg->site.district = xstrdup(get_str(site, "district"));
    cfg->site.latitude = site ? get_num(site, "latitude") : 0;
    cfg->site.longitude = site ? get_num(site, "longitude") : 0;

    const struct sec *gw = find_sec(c, "gateway", NULL);
    struct cfg_gateway *g = &cfg->gateway;
    /* Relative paths in the file are relative to the file, like profile_dir. An invalid
     * value (e.g. empty) is already reported and the config refused: NULL will do. */
    const char *state_dir = get_str(gw, "state_dir");
    g->state_dir = state_dir ? join_dir(c->dir, state_dir) : NULL;
    g->log_level = xstrdup(get_str(gw, "log_level"));
    g->heartbeat_ms = get_ms(gw, "heartbeat");
    bool any = false;
    for (size_t i = 0; i < gw->nkv; i++) {
        const struct kv *kv = &gw->kv[i];
        if (strcmp(kv->opt->key, "profile_dir") != 0 || !kv->ok)
            continue;
        any = true;
        char *path = join_dir(c->dir, kv->value);
        int why = dir_error(path);
        if (why == 0) {
            add_profile_dir(g, path);
        } else {
            c->dirs_bad = true;
            kv_fail(c, gw, kv, "profile_dir \"%s\" (%s) is not a directory: %s", kv->value, path,
                    strerror(why));
        }
        free(path);
    }
    if (!any) {
        char *local = join_dir(c->dir, "profiles");
        const char *defaults[] = {local, "/etc/firegw/profiles", FIREGW_PROFILE_DIR};
        for (size_t i = 0; i < ARRAY_LEN(defaults); i++)
            if (dir_error(defaults[i]) == 0)
                add_profile_dir(g, defaults[i]);
        free(local);
    }
}

/* Of two keys, the one written last (an override beats the file); NULL if neither given. */
/* Both keys hold valid values, given or default. */
static bool both_valid(const struct sec *s, const char *a, const char *b)
{
    const struct kv *x = get(s, a), *y = get(s, b);
    return x && x->ok && y && y->ok;
}

static const struct kv *later(const struct kv *a, const struct kv *b)
{
    if (!a || !b)
        return a ? a : b;
    if (a->src != b->src)
        return a->src > b->src ? a : b;
    return a->line > b->line ? a : b;
}

/*
 * Check prealarm < alarm and 0 < hysteresis < prealarm, blaming the key written
 * last among those involved. Keys not given come from elsewhere ([defaults],
 * checked on its own), so a rule none of whose keys were given is not reported.
 */
static void check_thresholds(struct ctx *c, const struct sec *s, const struct cfg_thresholds *t,
                             const char *const names[3])
{
    const struct kv *pre = given(s, names[0]), *al = given(s, names[1]), *hy = given(s, names[2]);
    const struct kv *at = later(pre, al);
    if (t->prealarm >= t->alarm && at)
        kv_fail(c, s, at, "%s %g is not below %s %g", names[0], t->prealarm, names[1], t->alarm);
    at = later(hy, pre);
    if ((t->hysteresis <= 0 || t->hysteresis >= t->prealarm) && at)
        kv_fail(c, s, at, "%s %g is not between 0 and %s %g", names[2], t->hysteresis, names[0],
                t->prealarm);
}

/* A value that may legitimately stand still for seconds must not be called stuck that soon. */
static void check_stuck(struct ctx *c, const struct sec *s, int64_t ms)
{
    const struct kv *kv = given(s, "stuck_after");
    if (kv && ms > 0 && ms < (int64_t)MINUTE)
        kv_fail(c, s, kv,
                "stuck_after %s is below 1min; a steady room reads the same value for seconds "
                "(0s turns the check off)",
                kv->value);
}

static void build_defaults(struct ctx *c, struct cfg *cfg)
{
    const struct sec *s = find_sec(c, "defaults", NULL);
    struct cfg_defaults *d = &cfg->defaults;
    d->smoke = (struct cfg_thresholds){get_num(s, "smoke_prealarm"), get_num(s, "smoke_alarm"),
                                       get_num(s, "smoke_hysteresis")};
    d->heat = (struct cfg_thresholds){get_num(s, "heat_prealarm"), get_num(s, "heat_alarm"),
                                      get_num(s, "heat_hysteresis")};
    d->no_response_ms = get_ms(s, "no_response");
    d->lifecheck_ms = get_ms(s, "lifecheck_timeout");
    d->ror_degc_per_min = get_num(s, "rate_of_rise");
    d->ror_window_ms = get_ms(s, "rate_of_rise_window");
    d->stuck_after_ms = get_ms(s, "stuck_after");
    check_stuck(c, s, d->stuck_after_ms);
    static const char *const smoke[3] = {"smoke_prealarm", "smoke_alarm", "smoke_hysteresis"};
    static const char *const heat[3] = {"heat_prealarm", "heat_alarm", "heat_hysteresis"};
    check_thresholds(c, s, &d->smoke, smoke);
    check_thresholds(c, s, &d->heat, heat);
}

static void build_buses(struct ctx *c, struct cfg *cfg)
{
    for (size_t i = 0; i < c->nsecs; i++) {
        struct sec *s = &c->secs[i];
        if (strcmp(s->def->name, "bus") != 0)
            continue;
        cfg->buses = xrealloc(cfg->buses, (cfg->nbuses + 1) * sizeof(*cfg->buses));
        struct cfg_bus *b = &cfg->buses[cfg->nbuses++];
        int type = get_enum(s, "type");
        /* 0 where refused (rtu, out of range): one at a time */
        long long in_flight = get_int(s, "max_in_flight");
        *b = (struct cfg_bus){
            .id = xstrdup(s->name),
            .type = type == 1 ? BUS_RTU : BUS_TCP,
            .host = dup_or_null(get_str(s, "host")),
            .port = (int)get_int(s, "port"),
            .device = dup_or_null(get_str(s, "device")),
            .baud = (int)get_int(s, "baud"),
            .parity = "NEO"[get_enum(s, "parity") < 0 ? 0 : get_enum(s, "parity")],
            .data_bits = (int)get_int(s, "data_bits"),
            .stop_bits = (int)get_int(s, "stop_bits"),
            .rs485 = get(s, "rs485") && get(s, "rs485")->ok && get(s, "rs485")->v.b,
            .poll_interval_ms = get_ms(s, "poll_interval"),
            .timeout_ms = get_ms(s, "timeout"),
            .retries = (int)get_int(s, "retries"),
            .backoff_min_ms = get_ms(s, "backoff_min"),
            .backoff_max_ms = get_ms(s, "backoff_max"),
            .reconnect_min_ms = get_ms(s, "reconnect_min"),
            .reconnect_max_ms = get_ms(s, "reconnect_max"),
            .max_gap = (unsigned)get_int(s, "max_gap"),
            .max_in_flight = in_flight > 1 ? (int)in_flight : 1,
            .line = s->line,
        };
        /* Blame whichever of the pair was written last; both defaulted cannot clash. A value
         * that is itself invalid is reported on its own and reads as 0 here: no pair rule. */
        if (both_valid(s, "backoff_max", "backoff_min") && b->backoff_max_ms < b->backoff_min_ms)
            kv_fail(c, s, later(given(s, "backoff_max"), given(s, "backoff_min")),
                    "backoff_max %s is below backoff_min %s", get(s, "backoff_max")->value,
                    get(s, "backoff_min")->value);
        if (both_valid(s, "reconnect_max", "reconnect_min") &&
            b->reconnect_max_ms < b->reconnect_min_ms)
            kv_fail(c, s, later(given(s, "reconnect_max"), given(s, "reconnect_min")),
                    "reconnect_max %s is below reconnect_min %s", get(s, "reconnect_max")->value,
                    get(s, "reconnect_min")->value);
    }
}

static bool valid_profile_name(const char *s)
{
    if (s[0] == '.')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* The profile named by kv, loaded once from the profile dirs; NULL with errors. */
static const struct profile *use_profile(struct ctx *c, struct cfg *cfg, const struct sec *s,
                                         const struct kv *kv)
{
    const char *name = kv->value;
    if (!valid_profile_name(name)) {
        kv_fail(c, s, kv, "profile \"%s\" is not a profile name (A-Z a-z 0-9 _ - .)", name);
        return NULL;
    }
    const struct profile *p = profile_set_find(&cfg->profiles, name);
    if (p)
        return p;
    for (size_t i = 0; i < c->nfailed; i++)
        if (strcmp(c->failed_profiles[i], name) == 0)
            return NULL;
    const struct cfg_gateway *g = &cfg->gateway;
    bool found = false;
    for (size_t i = 0; i < g->nprofile_dirs && !found; i++) {
        char *path = xasprintf("%s/%s.profile", g->profile_dirs[i], name);
        if (access(path, F_OK) != 0) {
            free(path);
            continue;
        }
        found = true;
        char *perr = xcalloc(1, 8192);
        struct profile *np = profile_load(path, perr, 8192);
        if (np) {
            cfg->profiles.items =
                xrealloc(cfg->profiles.items, (cfg->profiles.count + 1) * sizeof(np));
            cfg->profiles.items[cfg->profiles.count++] = np;
        } else {
            kv_fail(c, s, kv, "profile \"%s\" (%s) does not load:", name, path);
            append_to_last(c, perr);
        }
        free(perr);
        free(path);
        if (np)
            return np;
    }
    if (!found && !c->dirs_bad) {
        char dirs[1024];
        size_t used = 0;
        dirs[0] = '\0';
        for (size_t i = 0; i < g->nprofile_dirs && used < sizeof(dirs); i++)
            used += (size_t)snprintf(dirs + used, sizeof(dirs) - used, "%s%s", i ? ", " : "",
                                     g->profile_dirs[i]);
        kv_fail(c, s, kv, "profile \"%s\" not found: no %s.profile in %s", name, name,
                g->nprofile_dirs ? dirs : "any profile directory");
    }
    c->failed_profiles =
        xrealloc(c->failed_profiles, (c->nfailed + 1) * sizeof(*c->failed_profiles));
    c->failed_profiles[c->nfailed++] = xstrdup(name);
    return NULL;
}

/* Per-device facts needed while building, not kept in struct cfg. */
struct devinfo {
    bool ok;          /* bus and profile resolved */
    bool implicit;    /* created by a detector's bus/unit/profile shorthand */
    size_t first_det; /* implicit: the detector that created it */
};

/* Unit id range depends on the bus: RTU reserves 0 (broadcast) and 248..255. */
static bool unit_fits(const struct cfg_bus *b, const struct sec *s, const struct kv *kv,
                      struct ctx *c)
{
    if (b->type == BUS_RTU && (kv->v.i < 1 || kv->v.i > 247)) {
        kv_fail(c, s, kv, "unit \"%s\" is not in 1..247 (bus \"%s\" is rtu)", kv->value, b->id);
        return false;
    }
    return true;
}

static long bus_ref(struct ctx *c, const struct cfg *cfg, const struct sec *s)
{
    const struct kv *kv = get(s, "bus");
    if (!kv || !kv->ok)
        return -1;
    long b = cfg_find_bus(cfg, kv->value);
    if (b < 0)
        kv_fail(c, s, kv, "bus \"%s\" is not a declared [bus]", kv->value);
    return b;
}

static void build_devices(struct ctx *c, struct cfg *cfg, struct devinfo **info)
{
    for (size_t i = 0; i < c->nsecs; i++) {
        const struct sec *s = &c->secs[i];
        if (strcmp(s->def->name, "device") != 0)
            continue;
        long b = bus_ref(c, cfg, s);
        const struct kv *unit = get(s, "unit");
        const struct kv *prof = get(s, "profile");
        bool ok = b >= 0 && unit && unit->ok && unit_fits(&cfg->buses[b], s, unit, c);
        const struct profile *p = prof && prof->ok ? use_profile(c, cfg, s, prof) : NULL;
        ok = ok && p;
        const struct cfg_bus *bus = b >= 0 ? &cfg->buses[b] : NULL;
        for (size_t j = 0; ok && j < cfg->ndevices; j++)
            if ((long)cfg->devices[j].bus == b && cfg->devices[j].unit == unit->v.i) {
                kv_fail(c, s, unit, "bus \"%s\" unit %lld is already device \"%s\" (line %d)",
                        bus->id, unit->v.i, cfg->devices[j].id, cfg->devices[j].line);
                ok = false;
            }
        const struct kv *to = given(s, "timeout"), *re = given(s, "retries");
        cfg->devices = xrealloc(cfg->devices, (cfg->ndevices + 1) * sizeof(*cfg->devices));
        *info = xrealloc(*info, (cfg->ndevices + 1) * sizeof(**info));
        (*info)[cfg->ndevices] = (struct devinfo){ok, false, 0};
        cfg->devices[cfg->ndevices++] = (struct cfg_device){
            .id = xstrdup(s->name),
            .bus = b >= 0 ? (size_t)b : 0,
            .unit = unit && unit->ok ? (int)unit->v.i : 0,
            .profile = p,
            .timeout_ms = to    ? to->v.ms
                          : bus ? bus->timeout_ms
                                : 0,
            .retries = re    ? (int)re->v.i
                       : bus ? bus->retries
                             : 0,
            .fail_after = (int)get_int(s, "fail_after"),
            .line = s->line,
        };
    }
}

static void build_zones(struct ctx *c, struct cfg *cfg)
{
    for (size_t i = 0; i < c->nsecs; i++) {
        const struct sec *s = &c->secs[i];
        if (strcmp(s->def->name, "zone") != 0)
            continue;
        cfg->zones = xrealloc(cfg->zones, (cfg->nzones + 1) * sizeof(*cfg->zones));
        int coinc = get_enum(s, "coincidence");
        cfg->zones[cfg->nzones++] = (struct cfg_zone){
            .id = xstrdup(s->name),
            .name = xstrdup(get_str(s, "name")),
            .floor = (int)get_int(s, "floor"),
            .verification = get_bool(s, "verification"),
            .verify_retard_ms = get_ms(s, "verification_retard"),
            .verify_window_ms = get_ms(s, "verification_window"),
            .coincidence = coinc == 1   ? COINC_TWO_DETECTORS
                           : coinc == 2 ? COINC_SMOKE_AND_HEAT
                                        : COINC_NONE,
            .coincidence_window_ms = get_ms(s, "coincidence_window"),
            .pas = get_bool(s, "positive_alarm_sequence"),
            .pas_ack_ms = get_ms(s, "pas_acknowledge"),
            .pas_investigation_ms = get_ms(s, "pas_investigation"),
            .line = s->line,
        };
        /* Both would hold the same alarm twice over, past the limits each one promises. */
        const struct cfg_zone *z = &cfg->zones[cfg->nzones - 1];
        if (z->verification && z->pas)
            kv_fail(c, s, later(given(s, "verification"), given(s, "positive_alarm_sequence")),
                    "verification and positive_alarm_sequence cannot both be on in one zone; "
                    "together they would delay an alarm beyond what either allows");
    }
}

/* Resolve a detector's device from "device" or the bus/unit/profile shorthand; -1 if none. */
static long detector_device(struct ctx *c, struct cfg *cfg, struct devinfo **info,
                            const struct sec *s)
{
    const struct kv *dev = get(s, "device"), *bus = get(s, "bus"), *unit = get(s, "unit"),
                    *prof = get(s, "profile");
    if (dev && (bus || unit || prof)) {
        kv_fail(c, s,
                bus    ? bus
                : unit ? unit
                       : prof,
                "give either device, or bus, unit and profile; not both");
        return -1;
    }
    if (dev) {
        if (!dev->ok)
            return -1;
        long d = cfg_find_device(cfg, dev->value);
        if (d < 0 || (*info)[d].implicit) {
            kv_fail(c, s, dev, "device \"%s\" is not a declared [device]", dev->value);
            return -1;
        }
        return (*info)[d].ok ? d : -1;
    }
    if (!bus || !unit || !prof) {
        sec_fail(c, s, "missing %s: give device = ID, or bus, unit and profile",
                 !bus && !unit && !prof ? "\"device\""
                 : !bus                 ? "\"bus\""
                 : !unit                ? "\"unit\""
                                        : "\"profile\"");
        return -1;
    }
    long b = bus_ref(c, cfg, s);
    if (b < 0 || !unit->ok || !prof->ok || !unit_fits(&cfg->buses[b], s, unit, c))
        return -1;
    const struct cfg_bus *cb = &cfg->buses[b];
    for (size_t j = 0; j < cfg->ndevices; j++) {
        const struct cfg_device *d = &cfg->devices[j];
        if ((long)d->bus != b || d->unit != unit->v.i)
            continue;
        if (!(*info)[j].implicit) {
            kv_fail(c, s, unit,
                    "bus \"%s\" unit %lld is device \"%s\" (line %d); write device = %s", cb->id,
                    unit->v.i, d->id, d->line, d->id);
            return -1;
        }
        if (!(*info)[j].ok)
            return -1;
        if (strcmp(d->profile->name, prof->value) != 0) {
            const struct cfg_detector *first = &cfg->detectors[(*info)[j].first_det];
            kv_fail(c, s, prof,
                    "profile \"%s\" differs from profile \"%s\" of detector \"%s\" (line %d) on "
                    "the same bus \"%s\" unit %lld",
                    prof->value, d->profile->name, first->id, first->line, cb->id, unit->v.i);
            return -1;
        }
        return (long)j;
    }
    const struct profile *p = use_profile(c, cfg, s, prof);
    if (!p)
        return -1;
    cfg->devices = xrealloc(cfg->devices, (cfg->ndevices + 1) * sizeof(*cfg->devices));
    *info = xrealloc(*info, (cfg->ndevices + 1) * sizeof(**info));
    (*info)[cfg->ndevices] = (struct devinfo){true, true, cfg->ndetectors};
    const struct opt *fail_after = find_opt("device", "fail_after");
    long long fa = 3;
    parse_int(fail_after->def, (long long)fail_after->min, (long long)fail_after->max, &fa);
    cfg->devices[cfg->ndevices++] = (struct cfg_device){
        .id = xasprintf("%s/%lld", cb->id, unit->v.i),
        .bus = (size_t)b,
        .unit = (int)unit->v.i,
        .profile = p,
        .timeout_ms = cb->timeout_ms,
        .retries = cb->retries,
        .fail_after = (int)fa,
        .line = s->line,
    };
    return (long)cfg->ndevices - 1;
}

/* Heat class, rate-of-rise and stuck-value settings of one detector. */
static void detector_heat(struct ctx *c, const struct cfg *cfg, const struct sec *s,
                          struct cfg_detector *d)
{
    const struct kv *cls = given(s, "heat_class"), *ror = given(s, "rate_of_rise");
    const struct kv *stuck = given(s, "stuck_after");
    d->stuck_after_ms = stuck ? stuck->v.ms : cfg->defaults.stuck_after_ms;
    check_stuck(c, s, d->stuck_after_ms);
    if (d->type != DET_HEAT) {
        if (cls || ror)
            kv_fail(c, s, cls ? cls : ror, "%s applies to heat detectors only",
                    cls ? "heat_class" : "rate_of_rise");
        return;
    }
    if (cls) {
        const struct kv *lvl = given(s, "prealarm") ? given(s, "prealarm") : given(s, "alarm");
        if (lvl)
            kv_fail(c, s, later(cls, lvl),
                    "give either heat_class or prealarm/alarm levels, not both (the class "
                    "sets the levels)");
        d->heat_class = (enum heat_class)(cls->v.e / 3 + 1);
        d->heat_suffix = "\0RS"[cls->v.e % 3];
        const struct heat_class_info *hc = heat_class_info(d->heat_class);
        d->thresholds.prealarm = hc->max_application;
        d->thresholds.alarm = hc->static_min;
    }
    d->rate_of_rise = ror ? ror->v.b : d->heat_suffix == 'R';
    if (d->heat_suffix == 'S' && d->rate_of_rise)
        kv_fail(c, s, later(cls, ror),
                "rate_of_rise cannot be on for class %s: suffix S means it never responds "
                "below its static temperature, even on a fast rise",
                cls->value);
}

static void detector_thresholds(struct ctx *c, const struct cfg *cfg, const struct sec *s,
                                struct cfg_detector *d, const struct profile *p)
{
    static const char *const keys[] = {"prealarm", "alarm", "hysteresis"};
    if (d->type == DET_PANEL_ZONE) {
        static const char *const value_keys[] = {"prealarm",   "alarm",        "hysteresis",
                                                 "heat_class", "rate_of_rise", "stuck_after"};
        for (size_t k = 0; k < ARRAY_LEN(value_keys); k++)
            if (given(s, value_keys[k]))
                kv_fail(c, s, given(s, value_keys[k]),
                        "%s applies to smoke and heat detectors only; profile \"%s\" is a panel",
                        value_keys[k], p->name);
        return;
    }
    d->thresholds = d->type == DET_SMOKE ? cfg->defaults.smoke : cfg->defaults.heat;
    const struct kv *pre = given(s, "prealarm"), *al = given(s, "alarm"),
                    *hy = given(s, "hysteresis");
    detector_heat(c, cfg, s, d);
    if (pre)
        d->thresholds.prealarm = pre->v.d;
    if (al)
        d->thresholds.alarm = al->v.d;
    if (hy)
        d->thresholds.hysteresis = hy->v.d;
    check_thresholds(c, s, &d->thresholds, keys);
    /* A level the detector can never report would leave it unable to raise a fire alarm. */
    const struct profile_point *v = profile_point_by_role(p, ROLE_VALUE);
    if (v && v->has_range && d->thresholds.alarm > v->max) {
        if (al)
            kv_fail(c, s, al,
                    "alarm %g is above %g %s, the highest value profile \"%s\" reports; the "
                    "detector could never raise a fire alarm",
                    d->thresholds.alarm, v->max, v->unit, p->name);
        else
            sec_fail(c, s,
                     "alarm %g (from [defaults]) is above %g %s, the highest value profile "
                     "\"%s\" reports; the detector could never raise a fire alarm",
                     d->thresholds.alarm, v->max, v->unit, p->name);
    }
}

static void build_detectors(struct ctx *c, struct cfg *cfg, struct devinfo **info)
{
    /*
     * Per device, per channel: index + 1 of the first detector placed there,
     * 0 none. Devices named by a detector alone are added as they come.
     */
    size_t **owner = NULL;
    size_t nowner = 0;
    for (size_t i = 0; i < c->nsecs; i++) {
        const struct sec *s = &c->secs[i];
        if (strcmp(s->def->name, "detector") != 0)
            continue;
        long dev = detector_device(c, cfg, info, s);
        cfg->detectors = xrealloc(cfg->detectors, (cfg->ndetectors + 1) * sizeof(*cfg->detectors));
        struct cfg_detector *d = &cfg->detectors[cfg->ndetectors++];
        *d = (struct cfg_detector){
            .id = xstrdup(s->name),
            .device = dev >= 0 ? (size_t)dev : 0,
            .channel = (int)get_int(s, "channel"),
            .location = xstrdup(get_str(s, "location")),
            .no_response_ms =
                given(s, "no_response") ? get_ms(s, "no_response") : cfg->defaults.no_response_ms,
            .line = s->line,
        };
        const struct kv *zone = get(s, "zone");
        long z = -1;
        if (zone && zone->ok) {
            for (size_t j = 0; j < cfg->nzones && z < 0; j++)
                if (strcmp(cfg->zones[j].id, zone->value) == 0)
                    z = (long)j;
            if (z < 0)
                kv_fail(c, s, zone, "zone \"%s\" is not a declared [zone]", zone->value);
        }
        d->zone = z >= 0 ? (size_t)z : 0;
        const struct kv *floor = given(s, "floor");
        d->floor = floor ? (int)floor->v.i : z >= 0 ? cfg->zones[z].floor : 0;
        if (dev < 0)
            continue;
        const struct profile *p = cfg->devices[dev].profile;
        d->type = p->kind == PROFILE_SMOKE  ? DET_SMOKE
                  : p->kind == PROFILE_HEAT ? DET_HEAT
                                            : DET_PANEL_ZONE;
        const struct kv *ch = get(s, "channel");
        if (ch && ch->ok && d->channel > p->channels) {
            if (ch->src >= 0)
                kv_fail(c, s, ch, "channel %d is beyond the %d channel%s of profile \"%s\"",
                        d->channel, p->channels, p->channels == 1 ? "" : "s", p->name);
            continue;
        }
        if (d->channel >= 1 && d->channel <= p->channels) {
            if ((size_t)dev >= nowner) {
                owner = xrealloc(owner, cfg->ndevices * sizeof(*owner));
                memset(owner + nowner, 0, (cfg->ndevices - nowner) * sizeof(*owner));
                nowner = cfg->ndevices;
            }
            if (!owner[dev])
                owner[dev] = xcalloc((size_t)p->channels + 1, sizeof(**owner));
            size_t *first = &owner[dev][d->channel];
            if (*first) {
                const struct cfg_detector *o = &cfg->detectors[*first - 1];
                sec_fail(c, s, "device \"%s\" channel %d is already detector \"%s\" (line %d)",
                         cfg->devices[dev].id, d->channel, o->id, o->line);
            } else {
                *first = cfg->ndetectors;
            }
        }
        detector_thresholds(c, cfg, s, d, p);
    }
    for (size_t i = 0; i < nowner; i++)
        free(owner[i]);
    free(owner);
}

/* Which events an uplink gets: kinds, zones, test events. */
static void uplink_filter(struct ctx *c, const struct sec *s, const struct cfg *cfg,
                          struct cfg_uplink *u)
{
    u->kinds = (1u << EV__COUNT) - 1;
    u->test_events = given(s, "test_events") ? get_bool(s, "test_events") : true;
    u->cap = get_bool(s, "cap");
    const char *kinds = get_str(s, "events");
    if (kinds) {
        u->kinds = 0;
        char *copy = xstrdup(kinds), *save = NULL;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
            int k = 0;
            while (k < EV__COUNT && strcmp(ev_kind_name((enum ev_kind)k), t) != 0)
                k++;
            if (k == EV__COUNT)
                kv_fail(c, s, get(s, "events"), "events: unknown event kind \"%s\"", t);
            else
                u->kinds |= 1u << k;
        }
        free(copy);
        unsigned must = (1u << EV_FIRE_ALARM) | (1u << EV_FAULT);
        if (u->role == UPLINK_FIRE_POLICE && (u->kinds & must) != must)
            kv_fail(c, s, get(s, "events"),
                    "events: a fire_police uplink must get fire_alarm and fault");
    }
    const char *zones = get_str(s, "zones");
    if (!zones)
        return;
    char *copy = xstrdup(zones), *save = NULL;
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        size_t z = 0;
        while (z < cfg->nzones && strcmp(cfg->zones[z].id, t) != 0)
            z++;
        if (z == cfg->nzones) {
            kv_fail(c, s, get(s, "zones"), "zones: no [zone %s] in this file", t);
            continue;
        }
        u->zones = xrealloc(u->zones, (u->nzones + 1) * sizeof(*u->zones));
        u->zones[u->nzones++] = z;
    }
    free(copy);
}

/* A readable file, or an error naming the key; relative paths are relative to the config. */
static char *file_key(struct ctx *c, const struct sec *s, const char *key)
{
    const char *v = get_str(s, key);
    if (!v)
        return NULL;
    char *path = join_dir(c->dir, v);
    if (access(path, R_OK) != 0)
        kv_fail(c, s, get(s, key), "%s \"%s\" (%s) cannot be read: %s", key, v, path,
                strerror(errno));
    return path;
}

static void uplink_tls_and_failover(struct ctx *c, const struct sec *s, struct cfg_uplink *u)
{
    u->ca_file = file_key(c, s, "ca_file");
    u->cert_file = file_key(c, s, "cert_file");
    u->key_file = file_key(c, s, "key_file");
    static const char *tls_keys[] = {"ca_file", "cert_file", "key_file", "verify_hostname"};
    for (size_t i = 0; i < ARRAY_LEN(tls_keys) && !u->tls; i++)
        if (given(s, tls_keys[i]))
            kv_fail(c, s, get(s, tls_keys[i]), "%s needs \"tls = yes\"", tls_keys[i]);
    if (!u->cert_file != !u->key_file)
        sec_fail(c, s, "cert_file and key_file go together: give both or neither");
    const char *list = get_str(s, "failover");
    if (!list)
        return;
    char *copy = xstrdup(list);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *colon = strrchr(tok, ':');
        long long port = 0;
        if (!colon || colon == tok || parse_int(colon + 1, 1, 65535, &port) < 0) {
            kv_fail(c, s, get(s, "failover"),
                    "failover entry \"%s\" is not host:port with a port from 1 to 65535", tok);
            continue;
        }
        u->failover = xrealloc(u->failover, (u->nfailover + 1) * sizeof(*u->failover));
        u->failover[u->nfailover++] = xstrdup(tok);
    }
    free(copy);
}

static void build_uplinks(struct ctx *c, struct cfg *cfg)
{
    for (size_t i = 0; i < c->nsecs; i++) {
        const struct sec *s = &c->secs[i];
        if (strcmp(s->def->name, "uplink") != 0)
            continue;
        cfg->uplinks = xrealloc(cfg->uplinks, (cfg->nuplinks + 1) * sizeof(*cfg->uplinks));
        struct cfg_uplink *u = &cfg->uplinks[cfg->nuplinks++];
        int role = get_enum(s, "role");
        const char *cid = get_str(s, "client_id"), *prefix = get_str(s, "topic_prefix");
        *u = (struct cfg_uplink){
            .id = xstrdup(s->name),
            .role = role == 0   ? UPLINK_FIRE_POLICE
                    : role == 1 ? UPLINK_OWNER
                                : UPLINK_OTHER,
            .host = xstrdup(get_str(s, "host")),
            .port = (int)get_int(s, "port"),
            .client_id = cid ? xstrdup(cid) : xasprintf("firegw-%s-%s", cfg->site.id, s->name),
            .username = dup_or_null(get_str(s, "username")),
            .password = dup_or_null(get_str(s, "password")),
            .topic_prefix = prefix ? xstrdup(prefix) : xasprintf("firegw/%s", cfg->site.id),
            .keepalive_ms = get_ms(s, "keepalive"),
            .heartbeat_ms =
                given(s, "heartbeat") ? get_ms(s, "heartbeat") : cfg->gateway.heartbeat_ms,
            .max_buffered = (int)get_int(s, "max_buffered"),
            .tls = get_bool(s, "tls"),
            .verify_hostname = given(s, "verify_hostname") ? get_bool(s, "verify_hostname") : true,
            .ack_timeout_ms = given(s, "ack_timeout") ? get_ms(s, "ack_timeout")
                              : role == 0             ? 100000
                                                      : 0,
            .line = s->line,
        };
        uplink_tls_and_failover(c, s, u);
        uplink_filter(c, s, cfg, u);
        u->commands = cmdset_default(u->role);
        const struct kv *cmds = given(s, "commands");
        char why[MSG_MAX];
        if (cmds && cmdset_parse(cmds->value, &u->commands, why, sizeof(why)) < 0)
            kv_fail(c, s, cmds, "commands: %s", why);
        if (prefix && (strpbrk(prefix, "+#") || prefix[strlen(prefix) - 1] == '/'))
            kv_fail(c, s, get(s, "topic_prefix"),
                    "topic_prefix \"%s\" must not contain '+' or '#' nor end with '/'", prefix);
        /* Two connections with one client id on one broker would keep kicking each other off. */
        for (size_t j = 0; j + 1 < cfg->nuplinks; j++) {
            const struct cfg_uplink *o = &cfg->uplinks[j];
            if (o->port == u->port && strcmp(o->host, u->host) == 0 &&
                strcmp(o->client_id, u->client_id) == 0)
                sec_fail(c, s,
                         "client_id \"%s\" is already used by uplink \"%s\" (line %d) on "
                         "the same broker %s:%d",
                         u->client_id, o->id, o->line, u->host, u->port);
        }
    }
}

/* "off", "IPV4:PORT" or "[IPV6]:PORT" into w; 0 or -1. */
static int parse_listen(const char *v, struct cfg_web *w)
{
    if (strcmp(v, "off") == 0) {
        w->enabled = false;
        return 0;
    }
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return -1;
    char host[64];
    size_t n = (size_t)(colon - v);
    bool v6 = v[0] == '[';
    if (v6 && (n < 3 || v[n - 1] != ']'))
        return -1;
    if (n - (v6 ? 2 : 0) >= sizeof(host))
        return -1;
    memcpy(host, v + (v6 ? 1 : 0), n - (v6 ? 2 : 0));
    host[n - (v6 ? 2 : 0)] = '\0';
    unsigned char addr[sizeof(struct in6_addr)];
    long long port;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1 ||
        parse_int(colon + 1, 1, 65535, &port) < 0)
        return -1;
    w->enabled = true;
    w->listen_host = xstrdup(host);
    w->listen_ipv6 = v6;
    w->listen_port = (int)port;
    return 0;
}

static void build_web(struct ctx *c, struct cfg *cfg)
{
    const struct sec *s = find_sec(c, "web", NULL);
    struct cfg_web *w = &cfg->web;
    const struct kv *listen = get(s, "listen");
    if (listen && listen->ok && parse_listen(listen->value, w) < 0)
        kv_fail(c, s, listen,
                "listen \"%s\" is not off or ADDRESS:PORT with a numeric address, e.g. "
                "127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080",
                listen->value);
    const char *paths[] = {"root", "https_cert", "https_key", "users_file"};
    char **out[] = {&w->root, &w->https_cert, &w->https_key, &w->users_file};
    for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
        const char *v = get_str(s, paths[i]);
        *out[i] = v ? join_dir(c->dir, v) : NULL;
    }
    if (!w->https_cert != !w->https_key)
        kv_fail(c, s, given(s, w->https_cert ? "https_cert" : "https_key"),
                "https_cert and https_key go together: give both for HTTPS, or neither");
    w->session_timeout_ms = get_ms(s, "session_timeout");
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    char *d = xmalloc((size_t)(slash - path) + 1);
    memcpy(d, path, (size_t)(slash - path));
    d[slash - path] = '\0';
    return d;
}

static void ctx_free(struct ctx *c)
{
    for (size_t i = 0; i < c->nsecs; i++) {
        for (size_t j = 0; j < c->secs[i].nkv; j++)
            free(c->secs[i].kv[j].value);
        free(c->secs[i].kv);
        free(c->secs[i].name);
    }
    free(c->secs);
    free(c->sec_slots);
    for (size_t i = 0; i < c->nfailed; i++)
        free(c->failed_profiles[i]);
    free(c->failed_profiles);
    for (size_t i = 0; i < c->nmsgs; i++)
        free(c->msgs[i].text);
    free(c->msgs);
    free(c->dir);
}

/* The decimal number s starts with (a line number), 0 if none. */
static int leading_number(const char *s)
{
    int n = 0;
    for (; *s >= '0' && *s <= '9' && n < 100000000; s++)
        n = n * 10 + (*s - '0');
    return n;
}

/* Re-file the tokenizer's "path:line: ..." lines so they sort with the others. */
static void syntax_errors(struct ctx *c, const char *text)
{
    size_t plen = strlen(c->path);
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) + 1 : strlen(text);
        int line = 0;
        if (strncmp(text, c->path, plen) == 0 && text[plen] == ':')
            line = leading_number(text + plen + 1);
        c->msgs = xrealloc(c->msgs, (c->nmsgs + 1) * sizeof(*c->msgs));
        char *t = xmalloc(len + 2);
        memcpy(t, text, len);
        t[len] = '\0';
        if (len == 0 || t[len - 1] != '\n')
            strcat(t, "\n");
        c->msgs[c->nmsgs] = (struct msg){0, line > 0 ? line : INT_MAX, c->nmsgs, t};
        c->nmsgs++;
        text += len;
    }
}

static struct cfg *load_text(const char *text, const char *path, const char *const *overrides,
                             size_t noverrides, char *err, size_t errlen)
{
    struct ctx c = {.path = path, .dir = dir_of(path)};
    struct ini_file f;
    char *serr = xcalloc(1, MSG_MAX * 16);
    struct ini_errors se;
    ini_errors_init(&se, serr, MSG_MAX * 16);
    ini_parse(text, path, &f, &se);
    syntax_errors(&c, serr);
    free(serr);
    collect(&c, &f);
    ini_free(&f);
    for (size_t i = 0; i < noverrides; i++)
        apply_override(&c, overrides[i], (int)i + 1);
    /* Sections that may be left out still get their defaults. */
    if (!find_sec(&c, "gateway", NULL))
        add_sec(&c, find_section_def("gateway"), NULL, 0, 0);
    if (!find_sec(&c, "defaults", NULL))
        add_sec(&c, find_section_def("defaults"), NULL, 0, 0);
    if (!find_sec(&c, "web", NULL))
        add_sec(&c, find_section_def("web"), NULL, 0, 0);
    convert_all(&c);

    struct cfg *cfg = xcalloc(1, sizeof(*cfg));
    struct devinfo *info = NULL;
    cfg->path = xstrdup(path);
    build_site_gateway(&c, cfg);
    build_defaults(&c, cfg);
    build_buses(&c, cfg);
    build_zones(&c, cfg);
    build_devices(&c, cfg, &info);
    build_detectors(&c, cfg, &info);
    build_uplinks(&c, cfg);
    build_web(&c, cfg);
    if (!c.saw_detector)
        fail(&c, 0, 0,
             "no [detector] section; a gateway that watches nothing would report "
             "\"all normal\"");
    if (!c.saw_uplink)
        fail(&c, 0, 0, "no [uplink] section; at least one MQTT uplink is required");
    free(info);
    if (c.nmsgs)
        qsort(c.msgs, c.nmsgs, sizeof(*c.msgs), cmp_msg);
    if (err && errlen)
        err[0] = '\0';
    for (size_t i = 0; i < c.nmsgs && err && errlen; i++) {
        size_t used = strnlen(err, errlen);
        if (used + 1 < errlen)
            strlcpy_fg(err + used, c.msgs[i].text, errlen - used);
    }
    size_t errors = c.nmsgs;
    ctx_free(&c);
    if (errors) {
        cfg_free(cfg);
        return NULL;
    }
    return cfg;
}

struct cfg *cfg_load_string(const char *text, const char *name, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    return load_text(text, name, NULL, 0, err, errlen);
}

struct cfg *cfg_load_ex(const char *path, const char *const *overrides, size_t noverrides,
                        char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    struct ini_errors e;
    ini_errors_init(&e, err, errlen);
    char *text = ini_read_file(path, &e);
    if (!text)
        return NULL;
    struct cfg *cfg = load_text(text, path, overrides, noverrides, err, errlen);
    free(text);
    return cfg;
}

struct cfg *cfg_load(const char *path, char *err, size_t errlen)
{
    return cfg_load_ex(path, NULL, 0, err, errlen);
}

void cfg_free(struct cfg *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->site.id);
    free(cfg->site.name);
    free(cfg->site.address);
    free(cfg->site.district);
    free(cfg->gateway.state_dir);
    for (size_t i = 0; i < cfg->gateway.nprofile_dirs; i++)
        free(cfg->gateway.profile_dirs[i]);
    free(cfg->gateway.profile_dirs);
    free(cfg->gateway.log_level);
    for (size_t i = 0; i < cfg->nbuses; i++) {
        free(cfg->buses[i].id);
        free(cfg->buses[i].host);
        free(cfg->buses[i].device);
    }
    free(cfg->buses);
    for (size_t i = 0; i < cfg->ndevices; i++)
        free(cfg->devices[i].id);
    free(cfg->devices);
    for (size_t i = 0; i < cfg->nzones; i++) {
        free(cfg->zones[i].id);
        free(cfg->zones[i].name);
    }
    free(cfg->zones);
    for (size_t i = 0; i < cfg->ndetectors; i++) {
        free(cfg->detectors[i].id);
        free(cfg->detectors[i].location);
    }
    free(cfg->detectors);
    for (size_t i = 0; i < cfg->nuplinks; i++) {
        struct cfg_uplink *u = &cfg->uplinks[i];
        free(u->id);
        free(u->host);
        free(u->client_id);
        free(u->username);
        free(u->password);
        free(u->topic_prefix);
        for (size_t j = 0; j < u->nfailover; j++)
            free(u->failover[j]);
        free(u->failover);
        free(u->ca_file);
        free(u->zones);
        free(u->cert_file);
        free(u->key_file);
    }
    free(cfg->uplinks);
    free(cfg->web.listen_host);
    free(cfg->web.root);
    free(cfg->web.https_cert);
    free(cfg->web.https_key);
    free(cfg->web.users_file);
    profile_set_free(&cfg->profiles);
    free(cfg);
}

const struct heat_class_info *heat_class_info(enum heat_class c)
{
    /* EN 54-5 table 1: typical and maximum application, static response range, degC */
    static const struct heat_class_info table[HEAT_CLASS__COUNT] = {
        [HEAT_A1] = {"A1", 25, 50, 54, 65},   [HEAT_A2] = {"A2", 25, 50, 54, 70},
        [HEAT_B] = {"B", 40, 65, 69, 85},     [HEAT_C] = {"C", 55, 80, 84, 100},
        [HEAT_D] = {"D", 70, 95, 99, 115},    [HEAT_E] = {"E", 85, 110, 114, 130},
        [HEAT_F] = {"F", 100, 125, 129, 145}, [HEAT_G] = {"G", 115, 140, 144, 160},
    };
    if (c <= HEAT_CLASS_NONE || c >= HEAT_CLASS__COUNT)
        return NULL;
    return &table[c];
}

const char *coincidence_mode_name(enum coincidence_mode m)
{
    switch (m) {
    case COINC_NONE:
        return "none";
    case COINC_TWO_DETECTORS:
        return "two_detectors";
    case COINC_SMOKE_AND_HEAT:
        return "smoke_and_heat";
    }
    return "unknown";
}

static const char *type_doc(const struct opt *o)
{
    switch (o->type) {
    case T_TEXT:
        return "text";
    case T_INT:
        return "integer";
    case T_NUM:
        return "number";
    case T_DUR:
        return "duration";
    case T_BOOL:
        return "yes/no";
    case T_ENUM:
        return "choice";
    }
    return "";
}

static void range_doc(const struct opt *o, char *buf, size_t len)
{
    char a[32], b[32];
    switch (o->type) {
    case T_TEXT:
        snprintf(buf, len, "up to %.0f bytes", o->max);
        break;
    case T_INT:
        if (o->choices)
            choices_list(o->choices, buf, len);
        else
            snprintf(buf, len, "%.0f..%.0f", o->min, o->max);
        break;
    case T_NUM:
        snprintf(buf, len, "%g..%g", o->min, o->max);
        break;
    case T_DUR:
        fmt_ms(o->min, a, sizeof(a));
        fmt_ms(o->max, b, sizeof(b));
        snprintf(buf, len, "%s..%s", a, b);
        break;
    case T_BOOL:
        snprintf(buf, len, "yes, no");
        break;
    case T_ENUM:
        choices_list(o->choices, buf, len);
        break;
    }
}

char *cfg_reference_markdown(void)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < ARRAY_LEN(sections); i++) {
        const struct section_def *sd = &sections[i];
        char *next = xasprintf("%s%s### [%s%s]\n\n%c%s.\n\n| key | type | range | default | "
                               "description |\n| --- | --- | --- | --- | --- |\n",
                               out, i ? "\n" : "", sd->name, sd->named ? " ID" : "",
                               sd->help[0] - 'a' + 'A', sd->help + 1);
        free(out);
        out = next;
        for (size_t k = 0; k < ARRAY_LEN(options); k++) {
            const struct opt *o = &options[k];
            if (strcmp(o->section, sd->name) != 0)
                continue;
            char range[200], def[200];
            range_doc(o, range, sizeof(range));
            if (o->flags & F_REQ)
                snprintf(def, sizeof(def), "required%s",
                         o->flags & F_TCP   ? " (tcp)"
                         : o->flags & F_RTU ? " (rtu)"
                                            : "");
            else if (o->def)
                snprintf(def, sizeof(def), "`%s`", o->def);
            else
                snprintf(def, sizeof(def), "%s", o->def_doc ? o->def_doc : "");
            next = xasprintf("%s| `%s`%s | %s | %s | %s | %s |\n", out, o->key,
                             o->flags & F_REPEAT ? " (repeatable)" : "", type_doc(o), range, def,
                             o->help);
            free(out);
            out = next;
        }
    }
    return out;
}

const char *cfg_section_key(const char *section, size_t i)
{
    for (size_t k = 0; k < ARRAY_LEN(options); k++)
        if (strcmp(options[k].section, section) == 0 && i-- == 0)
            return options[k].key;
    return NULL;
}
