/*
 * firegw-watch, the reference receiver: subscribes to the events, status and
 * heartbeats of one or many gateways, prints them for a person (or as JSON
 * lines for a program), and acknowledges alarms on <prefix>/ack
 * (docs/firegw-watch.md, docs/mqtt-api.md). It owns its options, the MQTT
 * client and its reconnects, the per-building bookkeeping (sequence numbers,
 * online state, heartbeat supervision) and the window of event ids it
 * deduplicates with.
 *
 * Messages are handled inside Paho's message callback, under the watcher's
 * lock. Paho PUBACKs a QoS 1 message as it arrives, before the callback runs,
 * so MQTT alone cannot tell a gateway that an alarm was seen: the
 * acknowledgement on <prefix>/ack can, and it is sent only after the event
 * was written out. The lock is never held across a Paho call: the callbacks
 * and the main loop decide under it and call Paho after releasing it, so
 * Paho's own locking can never wait on ours.
 *
 * With --share several watchers form one MQTT 5 shared subscription group:
 * the broker hands each event to one member, which shows and acknowledges
 * it. Status and heartbeats stay unshared so that every member supervises
 * every gateway; sequence checks need every event, so members skip them.
 */

#include <MQTTAsync.h>
#include <MQTTProperties.h>
#include <MQTTReasonCodes.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "payload.h"
#include "util.h"

#define DEFAULT_PATTERN "firegw/+"
#define MAX_PATTERNS 32
#define MAX_TOPIC 512
#define MAX_BUILDINGS 10000
#define ID_MAX 64
#define DEDUPE_DEFAULT 10000
#define DEDUPE_MAX 1000000
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000
#define KEEPALIVE_S 20
#define CONNECT_TIMEOUT_S 10
/* Acknowledgements still in flight get this long to reach the broker at exit. */
#define DISCONNECT_FLUSH_MS 2000
#define DISCONNECT_WAIT_MS 5000
#define LOOP_WAIT_MS 200
/* A heartbeat is overdue after this many intervals of silence. */
#define HB_MISSED 3
/* Events older than this when they arrive were queued somewhere; say so. */
#define LATE_MS 30000
/* "2026-11-23 12:04:03.123 +07:00" with room for any year. */
#define LOCAL_TIME_LEN 64
/* 2^53: larger integers are not exact in cJSON's doubles. */
#define EXACT_MAX 9007199254740992.0
/* MQTT 5 session expiry: this value means the session never expires. */
#define EXPIRY_NEVER 4294967295LL
#define SHARE_MAX 64

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct options {
    const char *host;
    int port;
    const char *user;
    const char *password_file;
    const char *client_id;
    const char *receiver;
    const char *patterns[MAX_PATTERNS];
    size_t npatterns;
    bool no_ack;
    bool ack_all;
    bool json;
    bool verbose;
    long long dedupe;
    int utc_offset_min;
    bool mqtt5;
    const char *share;  /* shared subscription group of the events, or NULL */
    long long expiry_s; /* MQTT 5 session expiry; -1 until chosen */
};

enum gw_state { GW_UNKNOWN, GW_ONLINE, GW_OFFLINE };

/* What the watcher remembers of one gateway, keyed by its building (site) id. */
struct building {
    char id[ID_MAX + 1];
    char *name;
    enum gw_state state;
    bool have_seq;
    uint64_t last_seq;
    uint64_t hb_gap_seq; /* last_seq of the heartbeat whose gap was reported */
    bool have_hb;
    double hb_interval_s;
    int64_t last_hb_mono;
    bool hb_overdue;
};

/*
 * The last cap event ids, oldest overwritten first: a ring of ids chained
 * into hash buckets by index, so lookups stay O(1) for a window of 10^6.
 */
struct dedupe {
    size_t cap;
    size_t count;
    size_t oldest;
    char (*ids)[ID_MAX + 1];
    int32_t *next;
    int32_t *buckets;
    size_t nbuckets;
};

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_UP };

struct watch {
    struct options o;
    char *uri;
    char *password;
    MQTTAsync client;
    char **topics;
    int *qos;
    int ntopics;
    bool color;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum conn_state conn;
    int64_t next_attempt_mono;
    int64_t backoff_ms;
    bool disconnected;
    bool fatal; /* standard output is gone: nobody sees the alarms */
    struct log_limit conn_limit;
    struct log_limit disc_limit; /* the broker's reasons for closing (MQTT 5) */
    struct building *b;
    size_t nb;
    bool buildings_full_told;
    struct dedupe dd;
    unsigned long long shown, duplicates, acks, gaps, bad;
};

/* An acknowledgement decided under the lock and sent after it is released. */
struct pending_ack {
    char *topic;
    char *payload;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: firegw-watch [--host H] [--port P] [--user U --password-file F]\n"
            "                    [--client-id ID] [--prefix PATTERN]... [--receiver NAME]\n"
            "                    [--no-ack | --ack-all] [--json] [--dedupe N] [-v]\n"
            "                    [--mqtt5] [--share GROUP] [--session-expiry S]\n"
            "\n"
            "Receives the events, status and heartbeats of firegw gateways over MQTT, prints\n"
            "them and acknowledges fire alarms and faults on <prefix>/ack.\n"
            "\n"
            "  -H, --host H             broker host (default 127.0.0.1)\n"
            "  -p, --port P             broker port (default 1883)\n"
            "  -u, --user U             user name\n"
            "  -P, --password-file F    file whose first line is the password\n"
            "  -i, --client-id ID       MQTT client id; keep it stable so that events queued\n"
            "                           while away are delivered (default firegw-watch-HOST)\n"
            "  -t, --prefix PATTERN     gateway topic prefix, MQTT '+' allowed (default\n"
            "                           firegw/+); repeatable\n"
            "  -r, --receiver NAME      name put in acknowledgements (default: the client id)\n"
            "      --no-ack             never acknowledge\n"
            "      --ack-all            acknowledge every event, not only alarms and faults\n"
            "  -j, --json               print each event as one JSON line\n"
            "      --dedupe N           remember the last N event ids (default 10000, 0 off)\n"
            "      --utc-offset +HH:MM  local time of the display (default +07:00)\n"
            "      --mqtt5              connect with MQTT 5 (default 3.1.1)\n"
            "      --share GROUP        MQTT 5 shared subscription: the watchers of GROUP split\n"
            "                           the events between them (implies --mqtt5)\n"
            "      --session-expiry S   MQTT 5: seconds the broker keeps the session while\n"
            "                           away, or 'never' (default never; 0 with --share)\n"
            "  -v, --verbose            also print heartbeats and repeated events\n"
            "  -V, --version            print the version\n"
            "  -h, --help               this text\n");
}

/* "+07:00", "-03:30", "+0": minutes east of UTC. */
static int parse_offset(const char *s, int *out)
{
    if (!s || (*s != '+' && *s != '-'))
        return -1;
    int sign = *s == '-' ? -1 : 1;
    char hh[3] = {0};
    const char *colon = strchr(s + 1, ':');
    size_t hlen = colon ? (size_t)(colon - (s + 1)) : strlen(s + 1);
    if (hlen < 1 || hlen > 2)
        return -1;
    memcpy(hh, s + 1, hlen);
    long long h, m = 0;
    if (parse_int(hh, 0, 14, &h) < 0)
        return -1;
    if (colon && (strlen(colon + 1) != 2 || parse_int(colon + 1, 0, 59, &m) < 0))
        return -1;
    *out = sign * (int)(h * 60 + m);
    return 0;
}

/* A gateway prefix we can append "/event" to: no '#', '+' only as a whole level. */
static int check_pattern(const char *p, char *err, size_t errlen)
{
    size_t len = strlen(p);
    if (len == 0 || len > MAX_TOPIC - 16) {
        snprintf(err, errlen, "--prefix \"%s\": must be 1 to %d characters", p, MAX_TOPIC - 16);
        return -1;
    }
    if (p[len - 1] == '/') {
        snprintf(err, errlen, "--prefix \"%s\": must not end with '/'", p);
        return -1;
    }
    if (strchr(p, '#')) {
        snprintf(err, errlen,
                 "--prefix \"%s\": '#' cannot be used, the watcher appends /event, /status and "
                 "/heartbeat; use '+' for one level",
                 p);
        return -1;
    }
    for (const char *c = p; *c; c++) {
        if (*c == '+' && ((c > p && c[-1] != '/') || (c[1] && c[1] != '/'))) {
            snprintf(err, errlen, "--prefix \"%s\": '+' must stand alone as a whole level", p);
            return -1;
        }
    }
    return 0;
}

/*
 * A share group name: MQTT 5 forbids '/', '+' and '#' in it; we also keep it
 * to characters that read the same in every log and ACL file.
 */
static int check_share(const char *g, char *err, size_t errlen)
{
    size_t len = strlen(g);
    if (len == 0 || len > SHARE_MAX ||
        strspn(g, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != len) {
        snprintf(err, errlen,
                 "--share \"%s\": a group name is 1 to %d of A-Z a-z 0-9 _ . - (no '/', '+' or "
                 "'#')",
                 g, SHARE_MAX);
        return -1;
    }
    return 0;
}

/* 0 to run, or the exit code (0 for --help and --version, 2 for a usage error). */
static int parse_options(int argc, char **argv, struct options *o)
{
    enum {
        OPT_NO_ACK = 256,
        OPT_ACK_ALL,
        OPT_DEDUPE,
        OPT_UTC_OFFSET,
        OPT_MQTT5,
        OPT_SHARE,
        OPT_EXPIRY
    };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"user", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'P'},
        {"client-id", required_argument, NULL, 'i'},
        {"prefix", required_argument, NULL, 't'},
        {"receiver", required_argument, NULL, 'r'},
        {"no-ack", no_argument, NULL, OPT_NO_ACK},
        {"ack-all", no_argument, NULL, OPT_ACK_ALL},
        {"json", no_argument, NULL, 'j'},
        {"dedupe", required_argument, NULL, OPT_DEDUPE},
        {"utc-offset", required_argument, NULL, OPT_UTC_OFFSET},
        {"mqtt5", no_argument, NULL, OPT_MQTT5},
        {"share", required_argument, NULL, OPT_SHARE},
        {"session-expiry", required_argument, NULL, OPT_EXPIRY},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[MAX_TOPIC + 128];
    long long n;
    int c;
    while ((c = getopt_long(argc, argv, "H:p:u:P:i:t:r:jvVh", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            if (parse_int(optarg, 1, 65535, &n) < 0) {
                fprintf(stderr, "firegw-watch: --port \"%s\": must be a number from 1 to 65535\n",
                        optarg);
                return 2;
            }
            o->port = (int)n;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'P':
            o->password_file = optarg;
            break;
        case 'i':
            o->client_id = optarg;
            break;
        case 't':
            if (o->npatterns == MAX_PATTERNS) {
                fprintf(stderr, "firegw-watch: at most %d --prefix options\n", MAX_PATTERNS);
                return 2;
            }
            if (check_pattern(optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "firegw-watch: %s\n", err);
                return 2;
            }
            o->patterns[o->npatterns++] = optarg;
            break;
        case 'r':
            o->receiver = optarg;
            break;
        case OPT_NO_ACK:
            o->no_ack = true;
            break;
        case OPT_ACK_ALL:
            o->ack_all = true;
            break;
        case 'j':
            o->json = true;
            break;
        case OPT_DEDUPE:
            if (parse_int(optarg, 0, DEDUPE_MAX, &o->dedupe) < 0) {
                fprintf(stderr, "firegw-watch: --dedupe \"%s\": must be a number from 0 to %d\n",
                        optarg, DEDUPE_MAX);
                return 2;
            }
            break;
        case OPT_UTC_OFFSET:
            if (parse_offset(optarg, &o->utc_offset_min) < 0) {
                fprintf(stderr,
                        "firegw-watch: --utc-offset \"%s\": must look like +07:00 (hours 0 to "
                        "14)\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_MQTT5:
            o->mqtt5 = true;
            break;
        case OPT_SHARE:
            if (check_share(optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "firegw-watch: %s\n", err);
                return 2;
            }
            o->share = optarg;
            o->mqtt5 = true;
            break;
        case OPT_EXPIRY:
            if (strcmp(optarg, "never") == 0) {
                o->expiry_s = EXPIRY_NEVER;
            } else if (parse_int(optarg, 0, EXPIRY_NEVER - 1, &o->expiry_s) < 0) {
                fprintf(stderr,
                        "firegw-watch: --session-expiry \"%s\": must be a number of seconds from "
                        "0 to %lld, or never\n",
                        optarg, EXPIRY_NEVER - 1);
                return 2;
            }
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'V':
            printf("firegw-watch %s\n", FIREGW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firegw-watch: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (o->no_ack && o->ack_all) {
        fprintf(stderr, "firegw-watch: --no-ack and --ack-all contradict each other\n");
        return 2;
    }
    if (o->password_file && !o->user) {
        fprintf(stderr, "firegw-watch: --password-file needs --user\n");
        return 2;
    }
    if (o->receiver && (!*o->receiver || strlen(o->receiver) > 128)) {
        fprintf(stderr, "firegw-watch: --receiver must be 1 to 128 characters\n");
        return 2;
    }
    if (o->client_id && (!*o->client_id || strlen(o->client_id) > 128)) {
        fprintf(stderr, "firegw-watch: --client-id must be 1 to 128 characters\n");
        return 2;
    }
    if (o->expiry_s >= 0 && !o->mqtt5) {
        fprintf(stderr, "firegw-watch: --session-expiry needs --mqtt5 or --share (MQTT 3.1.1 "
                        "sessions do not expire)\n");
        return 2;
    }
    /*
     * A member's kept session would still be handed its share of the events
     * while it is away (Mosquitto does so), holding alarms back from the
     * members that are up: by default a member's session ends with its
     * connection.
     */
    if (o->expiry_s < 0)
        o->expiry_s = o->share ? 0 : EXPIRY_NEVER;
    if (o->npatterns == 0)
        o->patterns[o->npatterns++] = DEFAULT_PATTERN;
    return -1;
}

/* The first line of path, without its line end; NULL with err filled. Caller frees. */
static char *read_password(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open the password file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        log_warn("password file %s can be read by other users (mode %03o); chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
    char line[1024];
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    if (!got) {
        snprintf(err, errlen, "the password file %s is empty", path);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    if (!*line) {
        snprintf(err, errlen, "the first line of the password file %s is empty", path);
        return NULL;
    }
    char *pw = xstrdup(line);
    explicit_bzero(line, sizeof(line));
    return pw;
}

static void dedupe_init(struct dedupe *d, size_t cap)
{
    memset(d, 0, sizeof(*d));
    d->cap = cap;
    if (cap == 0)
        return;
    d->ids = xcalloc(cap, sizeof(*d->ids));
    d->next = xcalloc(cap, sizeof(*d->next));
    d->nbuckets = 1;
    while (d->nbuckets < cap * 2)
        d->nbuckets <<= 1;
    d->buckets = xmalloc(d->nbuckets * sizeof(*d->buckets));
    for (size_t i = 0; i < d->nbuckets; i++)
        d->buckets[i] = -1;
}

static void dedupe_free(struct dedupe *d)
{
    free(d->ids);
    free(d->next);
    free(d->buckets);
    memset(d, 0, sizeof(*d));
}

static size_t bucket_of(const struct dedupe *d, const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h & (d->nbuckets - 1));
}

static bool dedupe_seen(const struct dedupe *d, const char *id)
{
    if (d->cap == 0)
        return false;
    for (int32_t i = d->buckets[bucket_of(d, id)]; i >= 0; i = d->next[i])
        if (strcmp(d->ids[i], id) == 0)
            return true;
    return false;
}

static void dedupe_add(struct dedupe *d, const char *id)
{
    if (d->cap == 0)
        return;
    size_t slot;
    if (d->count < d->cap) {
        slot = d->count++;
    } else {
        slot = d->oldest;
        d->oldest = (d->oldest + 1) % d->cap;
        int32_t *link = &d->buckets[bucket_of(d, d->ids[slot])];
        while (*link != (int32_t)slot)
            link = &d->next[*link];
        *link = d->next[slot];
    }
    strlcpy_fg(d->ids[slot], id, sizeof(d->ids[slot]));
    size_t b = bucket_of(d, id);
    d->next[slot] = d->buckets[b];
    d->buckets[b] = (int32_t)slot;
}

static struct building *find_building(struct watch *w, const char *id)
{
    for (size_t i = 0; i < w->nb; i++)
        if (strcmp(w->b[i].id, id) == 0)
            return &w->b[i];
    if (w->nb == MAX_BUILDINGS) {
        if (!w->buildings_full_told)
            log_warn("more than %d buildings: sequence and heartbeat checks only for the first %d",
                     MAX_BUILDINGS, MAX_BUILDINGS);
        w->buildings_full_told = true;
        return NULL;
    }
    if (w->nb % 64 == 0)
        w->b = xrealloc(w->b, (w->nb + 64) * sizeof(*w->b));
    struct building *b = &w->b[w->nb++];
    memset(b, 0, sizeof(*b));
    strlcpy_fg(b->id, id, sizeof(b->id));
    return b;
}

/* Strict "2026-11-23T05:04:03.123Z" to milliseconds since the epoch; -1 if malformed. */
static int64_t parse_utc_ms(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof(shape) - 1)
        return -1;
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return -1;
    }
    struct tm tm = {0};
    int ms;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* "2026-11-23 12:04:03.123 +07:00" in the display's local time. */
static void format_local(const struct watch *w, int64_t utc_ms, char *buf, size_t len)
{
    int64_t local = utc_ms + (int64_t)w->o.utc_offset_min * 60000;
    time_t secs = (time_t)(local / 1000);
    int frac = (int)(local % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    int off = w->o.utc_offset_min;
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%03d %c%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac, off < 0 ? '-' : '+',
             abs(off) / 60, abs(off) % 60);
}

/* Text from a payload onto a terminal: control characters (C0, DEL, C1) become '?'. */
static void put_clean(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fputc('?', out);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fputc('?', out);
            p++;
        } else {
            fputc(*p, out);
        }
    }
}

static void paint(const struct watch *w, FILE *out, const char *sgr)
{
    if (w->color)
        fprintf(out, "\033[%sm", sgr);
}

static void unpaint(const struct watch *w, FILE *out)
{
    if (w->color)
        fputs("\033[0m", out);
}

/* The end of a write to stdout: if it failed, nothing more can be shown, so stop. */
static void flush_out(struct watch *w)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (!w->fatal)
            log_err("cannot write to standard output: %s; stopping, since alarms could not be "
                    "seen (unacknowledged alarms will be sent again by the gateways)",
                    strerror(errno));
        w->fatal = true;
    }
}

/*
 * A line about the watcher's own findings (status changes, gaps, overdue
 * heartbeats): on stdout for a person, on stderr in --json mode so that
 * stdout carries only events.
 */
static void note(struct watch *w, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(struct watch *w, enum log_level lvl, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (w->o.json) {
        log_msg(lvl, "%s", text);
        return;
    }
    char now[LOCAL_TIME_LEN];
    format_local(w, wall_ms(), now, sizeof(now));
    printf("%s  ", now);
    if (lvl <= LOG_LVL_WARN)
        paint(w, stdout, "1;33");
    put_clean(stdout, text);
    if (lvl <= LOG_LVL_WARN)
        unpaint(w, stdout);
    putchar('\n');
    flush_out(w);
}

static const char *bname(const struct building *b, const char *id, char *buf, size_t len)
{
    if (b && b->name && *b->name)
        snprintf(buf, len, "%s (%s)", b->name, id);
    else
        snprintf(buf, len, "%s", id);
    return buf;
}

/* Field checks against the shapes in docs/schema/: types, required, no others. */
enum ftype {
    F_STRING,
    F_NAME, /* non-empty string */
    F_STRING_OR_NULL,
    F_NAME_OR_NULL,
    F_UINT,
    F_INT,
    F_BOOL,
    F_NUMBER,
    F_NUMBER_OR_NULL,
    F_OBJECT,
    F_OBJECT_OR_NULL
};

struct shape;

struct field {
    const char *name;
    enum ftype type;
    const struct shape *sub;
};

struct shape {
    const struct field *fields;
    size_t n;
};

static const struct field zone_fields[] = {{"id", F_NAME, NULL}, {"name", F_STRING, NULL}};
static const struct shape zone_shape = {zone_fields, ARRAY_LEN(zone_fields)};
static const struct field detector_fields[] = {{"id", F_NAME, NULL},
                                               {"type", F_NAME, NULL},
                                               {"floor", F_INT, NULL},
                                               {"zone", F_OBJECT_OR_NULL, &zone_shape},
                                               {"location", F_STRING, NULL}};
static const struct shape detector_shape = {detector_fields, ARRAY_LEN(detector_fields)};
static const struct field device_fields[] = {{"id", F_NAME, NULL}, {"unit", F_UINT, NULL}};
static const struct shape device_shape = {device_fields, ARRAY_LEN(device_fields)};
static const struct field bus_fields[] = {{"id", F_NAME, NULL}};
static const struct shape bus_shape = {bus_fields, ARRAY_LEN(bus_fields)};
static const struct field quantity_fields[] = {{"value", F_NUMBER, NULL}, {"unit", F_NAME, NULL}};
static const struct shape quantity_shape = {quantity_fields, ARRAY_LEN(quantity_fields)};
static const struct field event_fields[] = {
    {"schema", F_UINT, NULL},
    {"type", F_NAME, NULL},
    {"event_id", F_NAME, NULL},
    {"seq", F_UINT, NULL},
    {"ts", F_NAME, NULL},
    {"building", F_NAME, NULL},
    {"kind", F_NAME, NULL},
    {"real", F_BOOL, NULL},
    {"test", F_BOOL, NULL},
    {"source", F_NAME, NULL},
    {"detector", F_OBJECT_OR_NULL, &detector_shape},
    {"device", F_OBJECT_OR_NULL, &device_shape},
    {"bus", F_OBJECT_OR_NULL, &bus_shape},
    {"zone", F_OBJECT_OR_NULL, &zone_shape},
    {"user", F_NAME_OR_NULL, NULL},
    {"fault", F_NAME_OR_NULL, NULL},
    {"rule", F_STRING, NULL},
    {"value", F_OBJECT_OR_NULL, &quantity_shape},
    {"level", F_OBJECT_OR_NULL, &quantity_shape},
    {"detail", F_STRING, NULL},
    {"priority", F_UINT, NULL},
};
static const struct shape event_shape = {event_fields, ARRAY_LEN(event_fields)};
static const struct field site_fields[] = {{"id", F_NAME, NULL},
                                           {"name", F_STRING_OR_NULL, NULL},
                                           {"address", F_STRING_OR_NULL, NULL},
                                           {"district", F_STRING_OR_NULL, NULL},
                                           {"lat", F_NUMBER_OR_NULL, NULL},
                                           {"lon", F_NUMBER_OR_NULL, NULL}};
static const struct shape site_shape = {site_fields, ARRAY_LEN(site_fields)};
static const struct field status_fields[] = {
    {"schema", F_UINT, NULL}, {"type", F_NAME, NULL}, {"building", F_OBJECT, &site_shape},
    {"state", F_NAME, NULL},  {"ts", F_NAME, NULL},   {"started", F_NAME, NULL},
    {"version", F_NAME, NULL}};
static const struct shape status_shape = {status_fields, ARRAY_LEN(status_fields)};
static const struct field detcount_fields[] = {{"total", F_UINT, NULL},
                                               {"fire_alarm", F_UINT, NULL},
                                               {"pre_alarm", F_UINT, NULL},
                                               {"fault", F_UINT, NULL}};
static const struct shape detcount_shape = {detcount_fields, ARRAY_LEN(detcount_fields)};
static const struct field buscount_fields[] = {{"total", F_UINT, NULL}, {"up", F_UINT, NULL}};
static const struct shape buscount_shape = {buscount_fields, ARRAY_LEN(buscount_fields)};
static const struct field heartbeat_fields[] = {{"schema", F_UINT, NULL},
                                                {"type", F_NAME, NULL},
                                                {"ts", F_NAME, NULL},
                                                {"building", F_NAME, NULL},
                                                {"uptime_s", F_UINT, NULL},
                                                {"last_seq", F_UINT, NULL},
                                                {"detectors", F_OBJECT, &detcount_shape},
                                                {"buses", F_OBJECT, &buscount_shape},
                                                {"interval_s", F_NUMBER, NULL}};
static const struct shape heartbeat_shape = {heartbeat_fields, ARRAY_LEN(heartbeat_fields)};

static bool is_integer(const cJSON *j)
{
    return cJSON_IsNumber(j) && isfinite(j->valuedouble) && floor(j->valuedouble) == j->valuedouble;
}

static bool type_ok(const cJSON *j, enum ftype t)
{
    switch (t) {
    case F_STRING:
        return cJSON_IsString(j);
    case F_NAME:
        return cJSON_IsString(j) && *j->valuestring;
    case F_STRING_OR_NULL:
        return cJSON_IsNull(j) || cJSON_IsString(j);
    case F_NAME_OR_NULL:
        return cJSON_IsNull(j) || (cJSON_IsString(j) && *j->valuestring);
    case F_UINT:
        return is_integer(j) && j->valuedouble >= 0;
    case F_INT:
        return is_integer(j);
    case F_BOOL:
        return cJSON_IsBool(j);
    case F_NUMBER:
        return cJSON_IsNumber(j) && isfinite(j->valuedouble);
    case F_NUMBER_OR_NULL:
        return cJSON_IsNull(j) || (cJSON_IsNumber(j) && isfinite(j->valuedouble));
    case F_OBJECT:
        return cJSON_IsObject(j);
    case F_OBJECT_OR_NULL:
        return cJSON_IsNull(j) || cJSON_IsObject(j);
    }
    return false;
}

static const char *type_text(enum ftype t)
{
    switch (t) {
    case F_STRING:
        return "a string";
    case F_NAME:
        return "a non-empty string";
    case F_STRING_OR_NULL:
        return "a string or null";
    case F_NAME_OR_NULL:
        return "a non-empty string or null";
    case F_UINT:
        return "an integer >= 0";
    case F_INT:
        return "an integer";
    case F_BOOL:
        return "true or false";
    case F_NUMBER:
        return "a finite number";
    case F_NUMBER_OR_NULL:
        return "a number or null";
    case F_OBJECT:
        return "an object";
    case F_OBJECT_OR_NULL:
        return "an object or null";
    }
    return "?";
}

/* 0 if obj has exactly the fields of s, each of its type (recursively); else -1 and why. */
static int check_shape(const cJSON *obj, const struct shape *s, const char *path, char *err,
                       size_t errlen)
{
    for (const cJSON *m = obj->child; m; m = m->next) {
        size_t i;
        for (i = 0; i < s->n; i++)
            if (strcmp(m->string, s->fields[i].name) == 0)
                break;
        if (i == s->n) {
            snprintf(err, errlen, "%s%s: unknown field", path, m->string);
            return -1;
        }
        for (const cJSON *o = m->next; o; o = o->next) {
            if (strcmp(o->string, m->string) == 0) {
                snprintf(err, errlen, "%s%s: appears twice", path, m->string);
                return -1;
            }
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct field *f = &s->fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        if (!v) {
            snprintf(err, errlen, "%s%s: missing", path, f->name);
            return -1;
        }
        if (!type_ok(v, f->type)) {
            snprintf(err, errlen, "%s%s: must be %s", path, f->name, type_text(f->type));
            return -1;
        }
        if (f->sub && cJSON_IsObject(v)) {
            char sub[128];
            snprintf(sub, sizeof(sub), "%s%s.", path, f->name);
            if (check_shape(v, f->sub, sub, err, errlen) < 0)
                return -1;
        }
    }
    return 0;
}

static bool one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static const char *const KINDS[] = {
    "fire_alarm", "pre_alarm",     "fault",          "restore",       "fault_restore", "disabled",
    "enabled",    "gateway_start", "fire_confirmed", "alarm_pending", "acknowledged",  "silenced",
    "reset",      "test_alarm",    "test_mode_on",   "test_mode_off"};
static const char *const KIND_TITLES[] = {
    "FIRE ALARM", "PRE-ALARM",     "FAULT",          "RESTORED",     "FAULT CLEARED", "DISABLED",
    "ENABLED",    "GATEWAY START", "FIRE CONFIRMED", "ALARM HELD",   "ACKNOWLEDGED",  "SILENCED",
    "RESET",      "TEST ALARM",    "TEST MODE ON",   "TEST MODE OFF"};
_Static_assert(ARRAY_LEN(KINDS) == ARRAY_LEN(KIND_TITLES), "a title for every kind");
static const char *const SOURCES[] = {"detector", "device", "bus", "gateway", "zone", "building"};
static const char *const FAULTS[] = {
    "no_response", "detector_bit", "maintenance", "implausible_value", "lifecheck_stopped",
    "device_down", "bus_down",     "value_stuck", "transmission",      "storage"};
static const char *const DETECTOR_TYPES[] = {"smoke", "heat", "panel_zone"};
static const char *const UNITS[] = {"%/m", "degC"};

static bool uuid_v4(const char *s)
{
    static const char shape[] = "hhhhhhhh-hhhh-4hhh-Vhhh-hhhhhhhhhhhh";
    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++) {
        char c = s[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if ((shape[i] == 'h' && !hex) || (shape[i] == 'V' && !strchr("89ab", c)) ||
            (shape[i] != 'h' && shape[i] != 'V' && c != shape[i]))
            return false;
    }
    return true;
}

static bool site_id_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= ID_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_-") == n;
}

static bool quantity_ok(const cJSON *q)
{
    if (cJSON_IsNull(q))
        return true;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(q, "unit");
    return one_of(u->valuestring, UNITS, ARRAY_LEN(UNITS));
}

/* The fields of an event that the display and the acknowledgement use. */
struct event_view {
    const char *event_id;
    uint64_t seq;
    bool seq_exact;
    const char *building;
    const char *kind;
    int kind_idx; /* index in KINDS, -1 if unknown */
    bool test;
    int64_t ts_ms; /* -1 if malformed */
    const cJSON *root;
};

static const cJSON *item(const cJSON *o, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* seq as decimal text; beyond 2^53 the nearest double, the best cJSON can give. */
static const char *seq_text(const struct event_view *ev, char *buf, size_t len)
{
    if (ev->seq_exact)
        snprintf(buf, len, "%" PRIu64, ev->seq);
    else
        snprintf(buf, len, "%.0f", item(ev->root, "seq")->valuedouble);
    return buf;
}

static const char *str_or(const cJSON *o, const char *name, const char *dflt)
{
    const cJSON *v = item(o, name);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/*
 * Reads what is needed to show and acknowledge an event. -1 (err says why)
 * when that is missing: the event cannot be shown. Otherwise 0, or 1 when
 * the rest breaks docs/schema/event.json (err says where): shown anyway,
 * since a malformed detail must not hide a fire alarm.
 */
static int read_event(const cJSON *root, struct event_view *ev, char *err, size_t errlen)
{
    memset(ev, 0, sizeof(*ev));
    ev->root = root;
    const cJSON *id = item(root, "event_id"), *seq = item(root, "seq");
    const cJSON *kind = item(root, "kind"), *b = item(root, "building");
    if (!cJSON_IsString(id) || !*id->valuestring || strlen(id->valuestring) > ID_MAX) {
        snprintf(err, errlen, "event_id: must be a string of 1 to %d characters", ID_MAX);
        return -1;
    }
    if (!type_ok(seq, F_UINT)) {
        snprintf(err, errlen, "seq: must be an integer >= 0");
        return -1;
    }
    if (!cJSON_IsString(b) || !site_id_ok(b->valuestring)) {
        snprintf(err, errlen, "building: must be a site id (letters, digits, '_', '-'; 1 to %d)",
                 ID_MAX);
        return -1;
    }
    if (!cJSON_IsString(kind) || !*kind->valuestring) {
        snprintf(err, errlen, "kind: must be a non-empty string");
        return -1;
    }
    ev->event_id = id->valuestring;
    ev->seq_exact = seq->valuedouble <= EXACT_MAX;
    ev->seq = ev->seq_exact ? (uint64_t)seq->valuedouble : UINT64_MAX;
    ev->building = b->valuestring;
    ev->kind = kind->valuestring;
    ev->kind_idx = -1;
    for (size_t i = 0; i < ARRAY_LEN(KINDS); i++)
        if (strcmp(ev->kind, KINDS[i]) == 0)
            ev->kind_idx = (int)i;
    /* Contradicting flags are shown as real: an ignored real fire is the worse mistake. */
    const cJSON *real = item(root, "real"), *test = item(root, "test");
    ev->test = cJSON_IsTrue(test) && cJSON_IsFalse(real);
    const cJSON *ts = item(root, "ts");
    ev->ts_ms = cJSON_IsString(ts) ? parse_utc_ms(ts->valuestring) : -1;

    if (check_shape(root, &event_shape, "", err, errlen) < 0)
        return 1;
    if (!uuid_v4(ev->event_id)) {
        snprintf(err, errlen, "event_id: not a lower-case UUID version 4");
        return 1;
    }
    if (ev->ts_ms < 0) {
        snprintf(err, errlen, "ts: not a UTC time like 2026-11-23T05:04:03.123Z");
        return 1;
    }
    if (ev->kind_idx < 0) {
        snprintf(err, errlen, "kind: unknown kind \"%s\"", ev->kind);
        return 1;
    }
    if (cJSON_IsTrue(real) == cJSON_IsTrue(test)) {
        snprintf(err, errlen, "real and test must be opposite; shown as a real event");
        return 1;
    }
    if (strcmp(ev->kind, "test_alarm") == 0 && !ev->test) {
        snprintf(err, errlen, "a test_alarm must have test true");
        return 1;
    }
    if (!one_of(str_or(root, "source", ""), SOURCES, ARRAY_LEN(SOURCES))) {
        snprintf(err, errlen, "source: unknown source \"%s\"", str_or(root, "source", ""));
        return 1;
    }
    const char *fault = str_or(root, "fault", NULL);
    bool fault_kind = strcmp(ev->kind, "fault") == 0 || strcmp(ev->kind, "fault_restore") == 0;
    if ((fault && !one_of(fault, FAULTS, ARRAY_LEN(FAULTS))) || (fault_kind && !fault)) {
        snprintf(err, errlen, "fault: \"%s\" is not a known fault code", fault ? fault : "null");
        return 1;
    }
    const cJSON *det = item(root, "detector");
    if (cJSON_IsObject(det)) {
        const cJSON *floor_ = item(det, "floor");
        if (!one_of(str_or(det, "type", ""), DETECTOR_TYPES, ARRAY_LEN(DETECTOR_TYPES)) ||
            floor_->valuedouble < -5 || floor_->valuedouble > 200) {
            snprintf(err, errlen,
                     "detector: type must be smoke, heat or panel_zone and floor "
                     "from -5 to 200");
            return 1;
        }
    }
    if (!quantity_ok(item(root, "value")) || !quantity_ok(item(root, "level"))) {
        snprintf(err, errlen, "value/level: unit must be %%/m or degC");
        return 1;
    }
    if (item(root, "schema")->valuedouble != FIREGW_SCHEMA_VERSION ||
        strcmp(str_or(root, "type", ""), "event") != 0) {
        snprintf(err, errlen, "schema must be %d and type \"event\"", FIREGW_SCHEMA_VERSION);
        return 1;
    }
    return 0;
}

/* Alarms and faults always; with --ack-all every event; never with --no-ack. */
static bool wants_ack(const struct watch *w, const struct event_view *ev)
{
    if (w->o.no_ack)
        return false;
    if (w->o.ack_all)
        return true;
    return strcmp(ev->kind, "fire_alarm") == 0 || strcmp(ev->kind, "fire_confirmed") == 0 ||
           strcmp(ev->kind, "fault") == 0;
}

/* The acknowledgement of ev, to be published on the prefix of the topic it came on. */
static void make_ack(const struct watch *w, const char *topic, const struct event_view *ev,
                     struct pending_ack *out)
{
    size_t plen = strlen(topic) - strlen("/event");
    out->topic = xasprintf("%.*s/ack", (int)plen, topic);
    char ts[32], seq[32];
    format_utc_ms(wall_ms(), ts, sizeof(ts));
    seq_text(ev, seq, sizeof(seq));
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "schema", FIREGW_SCHEMA_VERSION);
    cJSON_AddStringToObject(a, "type", "ack");
    cJSON_AddStringToObject(a, "event_id", ev->event_id);
    cJSON_AddRawToObject(a, "seq", seq);
    cJSON_AddStringToObject(a, "receiver", w->o.receiver);
    cJSON_AddStringToObject(a, "ts", ts);
    out->payload = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    if (!out->payload) {
        fprintf(stderr, "firegw-watch: out of memory\n");
        abort();
    }
}

static void on_ack_failure(void *context, MQTTAsync_failureData *resp)
{
    (void)context;
    log_warn("an acknowledgement was not delivered: %s (code %d); the gateway will send the "
             "alarm again and it is acknowledged then",
             resp && resp->message ? resp->message : MQTTAsync_strerror(resp ? resp->code : -1),
             resp ? resp->code : 0);
}

/* MQTT 5 brokers say why they refused a publish (not authorised by the ACL, quota...). */
static void on_ack_failure5(void *context, MQTTAsync_failureData5 *resp)
{
    (void)context;
    if (resp && resp->reasonCode >= 0x80)
        log_warn("an acknowledgement was refused by the broker: %s (reason code 0x%02x); the "
                 "gateway will send the alarm again",
                 MQTTReasonCode_toString(resp->reasonCode), (unsigned)resp->reasonCode);
    else
        log_warn("an acknowledgement was not delivered: %s (code %d); the gateway will send the "
                 "alarm again and it is acknowledged then",
                 resp && resp->message ? resp->message : MQTTAsync_strerror(resp ? resp->code : -1),
                 resp ? resp->code : 0);
}

static void send_ack(struct watch *w, struct pending_ack *a)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = a->payload;
    msg.payloadlen = (int)strlen(a->payload);
    msg.qos = 1;
    msg.retained = 0;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    if (w->o.mqtt5)
        ro.onFailure5 = on_ack_failure5;
    else
        ro.onFailure = on_ack_failure;
    ro.context = w;
    int rc = MQTTAsync_sendMessage(w->client, a->topic, &msg, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        log_err("cannot publish the acknowledgement %s on %s: %s (code %d)", a->payload, a->topic,
                MQTTAsync_strerror(rc), rc);
    else
        log_debug("acknowledged on %s: %s", a->topic, a->payload);
    free(a->topic);
    free(a->payload);
    a->topic = a->payload = NULL;
}

/* "45 s", "12 min", "3.5 h", "2.0 days": how long ago, for a person. */
static const char *duration_text(int64_t ms, char *buf, size_t len)
{
    double s = (double)ms / 1000.0;
    if (s < 120)
        snprintf(buf, len, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, len, "%.0f min", s / 60);
    else if (s < 172800)
        snprintf(buf, len, "%.1f h", s / 3600);
    else
        snprintf(buf, len, "%.1f days", s / 86400);
    return buf;
}

static void print_quantity(const char *label, const cJSON *q)
{
    if (!cJSON_IsObject(q))
        return;
    const cJSON *v = item(q, "value");
    printf(", %s %g ", label, cJSON_IsNumber(v) ? v->valuedouble : NAN);
    put_clean(stdout, str_or(q, "unit", ""));
}

/* Where the event is: the detector, else the device, bus or zone it names. */
static void print_where(const cJSON *root)
{
    const cJSON *det = item(root, "detector"), *dev = item(root, "device");
    const cJSON *bus = item(root, "bus"), *zone = item(root, "zone");
    if (cJSON_IsObject(det)) {
        const cJSON *fl = item(det, "floor");
        const cJSON *dz = item(det, "zone");
        printf("    detector ");
        put_clean(stdout, str_or(det, "id", "?"));
        printf(" (");
        put_clean(stdout, str_or(det, "type", "?"));
        printf(")");
        if (cJSON_IsObject(dz)) {
            printf(", zone ");
            put_clean(stdout, str_or(dz, "id", "?"));
            printf(" ");
            put_clean(stdout, str_or(dz, "name", ""));
        }
        if (cJSON_IsNumber(fl))
            printf(", floor %.0f", fl->valuedouble);
        const char *loc = str_or(det, "location", "");
        if (*loc) {
            printf(", ");
            put_clean(stdout, loc);
        }
        putchar('\n');
        return;
    }
    if (!cJSON_IsObject(dev) && !cJSON_IsObject(bus) && !cJSON_IsObject(zone))
        return;
    printf("   ");
    if (cJSON_IsObject(zone)) {
        printf(" zone ");
        put_clean(stdout, str_or(zone, "id", "?"));
        printf(" ");
        put_clean(stdout, str_or(zone, "name", ""));
    }
    if (cJSON_IsObject(dev)) {
        const cJSON *unit = item(dev, "unit");
        printf(" device ");
        put_clean(stdout, str_or(dev, "id", "?"));
        if (cJSON_IsNumber(unit))
            printf(" (unit %.0f)", unit->valuedouble);
    }
    if (cJSON_IsObject(bus)) {
        printf(" bus ");
        put_clean(stdout, str_or(bus, "id", "?"));
    }
    putchar('\n');
}

static void show_event(struct watch *w, const struct building *b, const struct event_view *ev,
                       bool acked)
{
    const cJSON *root = ev->root;
    char when[LOCAL_TIME_LEN], name[256];
    if (ev->ts_ms >= 0)
        format_local(w, ev->ts_ms, when, sizeof(when));
    else
        snprintf(when, sizeof(when), "(time unreadable)       ");
    bool alarm = ev->kind_idx >= 0 &&
                 (strcmp(ev->kind, "fire_alarm") == 0 || strcmp(ev->kind, "fire_confirmed") == 0);
    char title[80];
    if (ev->kind_idx >= 0)
        snprintf(title, sizeof(title), "%s", KIND_TITLES[ev->kind_idx]);
    else
        snprintf(title, sizeof(title), "%s (unknown kind)", ev->kind);

    printf("%s  ", when);
    if (ev->test) {
        paint(w, stdout, "1;44;97");
        printf("TEST - %s - not a real event", title);
    } else if (alarm) {
        paint(w, stdout, "1;41;97");
        printf("*** %s ***", title);
    } else {
        paint(w, stdout, strcmp(ev->kind, "fault") == 0 ? "1;35" : "1");
        printf("%s", title);
    }
    unpaint(w, stdout);
    printf("  ");
    put_clean(stdout, bname(b, ev->building, name, sizeof(name)));
    char seq[32];
    printf("  seq %s\n", seq_text(ev, seq, sizeof(seq)));

    print_where(root);
    printf("   ");
    const char *fault = str_or(root, "fault", NULL);
    if (fault) {
        printf(" fault ");
        put_clean(stdout, fault);
        printf(",");
    }
    printf(" rule ");
    put_clean(stdout, *str_or(root, "rule", "") ? str_or(root, "rule", "") : "-");
    print_quantity("value", item(root, "value"));
    print_quantity("level", item(root, "level"));
    const char *user = str_or(root, "user", NULL);
    if (user) {
        printf(", user ");
        put_clean(stdout, user);
    }
    int64_t late = ev->ts_ms >= 0 ? wall_ms() - ev->ts_ms : 0;
    if (late > LATE_MS) {
        char dur[32];
        printf(", received %s after it happened", duration_text(late, dur, sizeof(dur)));
    }
    printf(acked ? ", acknowledged\n" : "\n");
    const char *detail = str_or(root, "detail", "");
    if (*detail) {
        printf("    ");
        put_clean(stdout, detail);
        putchar('\n');
    }
}

/* The event as one JSON line: as received when it is one clean line, else re-printed. */
static void show_event_json(const char *payload, size_t len, const cJSON *root)
{
    bool clean = true;
    for (size_t i = 0; i < len && clean; i++)
        clean = (unsigned char)payload[i] >= 0x20 && payload[i] != 0x7f;
    if (clean) {
        fwrite(payload, 1, len, stdout);
        putchar('\n');
        return;
    }
    char *text = cJSON_PrintUnformatted(root);
    if (text)
        puts(text);
    free(text);
}

static void track_seq(struct watch *w, struct building *b, const struct event_view *ev)
{
    char name[256];
    if (!b || !ev->seq_exact)
        return;
    if (b->have_seq && ev->seq > b->last_seq + 1) {
        w->gaps++;
        note(w, LOG_LVL_WARN,
             "SEQUENCE GAP  %s: seq jumped from %" PRIu64 " to %" PRIu64
             ": possible lost events (%" PRIu64 " missing)",
             bname(b, b->id, name, sizeof(name)), b->last_seq, ev->seq, ev->seq - b->last_seq - 1);
    } else if (b->have_seq && ev->seq <= b->last_seq) {
        note(w, LOG_LVL_NOTICE,
             "%s: event seq %" PRIu64 " arrived after seq %" PRIu64
             " (late, out of order, or the gateway's numbering was reset)",
             bname(b, b->id, name, sizeof(name)), ev->seq, b->last_seq);
        return;
    }
    b->have_seq = true;
    b->last_seq = ev->seq;
}

static void bad_message(struct watch *w, const char *topic, const char *why)
{
    w->bad++;
    char t[MAX_TOPIC];
    snprintf(t, sizeof(t), "%s", topic);
    for (char *p = t; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    log_warn("%s: %s", t, why);
}

/* Parse one payload into a JSON object; NULL with a warning naming the topic. */
static cJSON *parse_payload(struct watch *w, const char *topic, const char *payload, size_t len)
{
    char why[160];
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
    if (!root) {
        size_t at = end && end >= payload ? (size_t)(end - payload) : 0;
        snprintf(why, sizeof(why), "not valid JSON (%zu bytes, error near byte %zu); ignored", len,
                 at);
        bad_message(w, topic, why);
        return NULL;
    }
    while (end && (size_t)(end - payload) < len && strchr(" \t\r\n", *end) && *end)
        end++;
    if (end && (size_t)(end - payload) < len) {
        snprintf(why, sizeof(why), "bytes after the JSON value (at byte %zu); ignored",
                 (size_t)(end - payload));
        bad_message(w, topic, why);
        cJSON_Delete(root);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        bad_message(w, topic, "not a JSON object; ignored");
        cJSON_Delete(root);
        return NULL;
    }
    const cJSON *schema = item(root, "schema");
    if (!cJSON_IsNumber(schema) || schema->valuedouble != FIREGW_SCHEMA_VERSION) {
        snprintf(why, sizeof(why),
                 "payload schema version is not %d (this firegw-watch knows only %d); ignored",
                 FIREGW_SCHEMA_VERSION, FIREGW_SCHEMA_VERSION);
        bad_message(w, topic, why);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static void handle_event(struct watch *w, const char *topic, const char *payload, size_t len,
                         struct pending_ack *ack)
{
    cJSON *root = parse_payload(w, topic, payload, len);
    if (!root)
        return;
    struct event_view ev;
    char err[256], why[400];
    int rc = read_event(root, &ev, err, sizeof(err));
    if (rc < 0) {
        snprintf(why, sizeof(why), "event cannot be read: %s; not shown", err);
        bad_message(w, topic, why);
        cJSON_Delete(root);
        return;
    }
    char seq[32];
    seq_text(&ev, seq, sizeof(seq));
    if (rc > 0) {
        snprintf(why, sizeof(why), "event seq %s breaks docs/schema/event.json: %s; shown anyway",
                 seq, err);
        bad_message(w, topic, why);
    }
    struct building *b = find_building(w, ev.building);
    bool ackit = wants_ack(w, &ev);
    if (ackit)
        make_ack(w, topic, &ev, ack);
    if (dedupe_seen(&w->dd, ev.event_id)) {
        /* Acknowledged again: the gateway resends an alarm whose acknowledgement it missed. */
        w->duplicates++;
        if (w->o.verbose)
            note(w, LOG_LVL_INFO, "%s: event %s (seq %s) received again%s", ev.building,
                 ev.event_id, seq, ackit ? ", acknowledged again" : "");
        cJSON_Delete(root);
        return;
    }
    dedupe_add(&w->dd, ev.event_id);
    /* A share group member sees only some of a building's events: every gap would be false. */
    if (!w->o.share)
        track_seq(w, b, &ev);
    if (w->o.json)
        show_event_json(payload, len, root);
    else
        show_event(w, b, &ev, ackit);
    flush_out(w);
    w->shown++;
    cJSON_Delete(root);
}

static void handle_status(struct watch *w, const char *topic, const char *payload, size_t len,
                          bool retained)
{
    cJSON *root = parse_payload(w, topic, payload, len);
    if (!root)
        return;
    char err[256] = "", why[400], name[256], started[LOCAL_TIME_LEN];
    if (check_shape(root, &status_shape, "", err, sizeof(err)) < 0 ||
        strcmp(str_or(root, "type", ""), "status") != 0) {
        snprintf(why, sizeof(why), "status breaks docs/schema/status.json: %s; ignored",
                 strcmp(str_or(root, "type", ""), "status") ? "type must be \"status\"" : err);
        bad_message(w, topic, why);
        cJSON_Delete(root);
        return;
    }
    const cJSON *site = item(root, "building");
    const char *id = str_or(site, "id", "");
    const char *state = str_or(root, "state", "");
    enum gw_state st = strcmp(state, "online") == 0    ? GW_ONLINE
                       : strcmp(state, "offline") == 0 ? GW_OFFLINE
                                                       : GW_UNKNOWN;
    if (!site_id_ok(id) || st == GW_UNKNOWN) {
        bad_message(w, topic, "status needs a site id and state online or offline; ignored");
        cJSON_Delete(root);
        return;
    }
    struct building *b = find_building(w, id);
    if (b) {
        const char *n = str_or(site, "name", NULL);
        if (n && (!b->name || strcmp(b->name, n) != 0)) {
            free(b->name);
            b->name = xstrdup(n);
        }
        if (b->state == st) {
            cJSON_Delete(root);
            return;
        }
        b->state = st;
        /* Back online: its heartbeats start again from now. */
        if (st == GW_ONLINE && b->have_hb) {
            b->last_hb_mono = mono_ms();
            b->hb_overdue = false;
        }
    }
    int64_t started_ms = parse_utc_ms(str_or(root, "started", ""));
    if (started_ms >= 0)
        format_local(w, started_ms, started, sizeof(started));
    else
        snprintf(started, sizeof(started), "?");
    bname(b, id, name, sizeof(name));
    if (st == GW_ONLINE)
        note(w, LOG_LVL_NOTICE, "ONLINE   %s  gateway %s, running since %s%s", name,
             str_or(root, "version", "?"), started, retained ? " (last reported state)" : "");
    else
        note(w, LOG_LVL_WARN,
             "OFFLINE  %s  the gateway stopped or lost its connection to the broker%s", name,
             retained ? " (last reported state)" : "");
    cJSON_Delete(root);
}

static void handle_heartbeat(struct watch *w, const char *topic, const char *payload, size_t len)
{
    cJSON *root = parse_payload(w, topic, payload, len);
    if (!root)
        return;
    char err[256] = "", why[400], name[256];
    const char *id = str_or(root, "building", "");
    if (check_shape(root, &heartbeat_shape, "", err, sizeof(err)) < 0 || !site_id_ok(id) ||
        strcmp(str_or(root, "type", ""), "heartbeat") != 0 ||
        item(root, "interval_s")->valuedouble < 0) {
        snprintf(why, sizeof(why), "heartbeat breaks docs/schema/heartbeat.json%s%s; ignored",
                 *err ? ": " : "", err);
        bad_message(w, topic, why);
        cJSON_Delete(root);
        return;
    }
    struct building *b = find_building(w, id);
    double last_seq = item(root, "last_seq")->valuedouble;
    int64_t now = mono_ms();
    if (b) {
        if (b->hb_overdue)
            note(w, LOG_LVL_NOTICE, "heartbeat from %s again after %" PRId64 " s",
                 bname(b, id, name, sizeof(name)), (now - b->last_hb_mono) / 1000);
        b->have_hb = true;
        b->hb_overdue = false;
        b->last_hb_mono = now;
        b->hb_interval_s = item(root, "interval_s")->valuedouble;
        if (!w->o.share && b->have_seq && last_seq <= EXACT_MAX &&
            (uint64_t)last_seq > b->last_seq && (uint64_t)last_seq != b->hb_gap_seq) {
            b->hb_gap_seq = (uint64_t)last_seq;
            w->gaps++;
            note(w, LOG_LVL_WARN,
                 "SEQUENCE GAP  %s: heartbeat says the last event was seq %.0f, the last "
                 "received is seq %" PRIu64 ": possible lost events",
                 bname(b, id, name, sizeof(name)), last_seq, b->last_seq);
        }
    }
    if (w->o.verbose) {
        const cJSON *d = item(root, "detectors"), *bus = item(root, "buses");
        note(w, LOG_LVL_INFO,
             "heartbeat  %s  uptime %.0f s, last seq %.0f, detectors %.0f (%.0f fire alarm, "
             "%.0f pre-alarm, %.0f fault), buses %.0f of %.0f up, every %g s",
             bname(b, id, name, sizeof(name)), item(root, "uptime_s")->valuedouble, last_seq,
             item(d, "total")->valuedouble, item(d, "fire_alarm")->valuedouble,
             item(d, "pre_alarm")->valuedouble, item(d, "fault")->valuedouble,
             item(bus, "up")->valuedouble, item(bus, "total")->valuedouble,
             item(root, "interval_s")->valuedouble);
    }
    cJSON_Delete(root);
}

/* Overdue heartbeats, once per silence; a gateway known to be offline was already reported. */
static void supervise(struct watch *w, int64_t now)
{
    char name[256];
    for (size_t i = 0; i < w->nb; i++) {
        struct building *b = &w->b[i];
        if (!b->have_hb || b->hb_overdue || b->hb_interval_s <= 0 || b->state == GW_OFFLINE)
            continue;
        int64_t silent = now - b->last_hb_mono;
        if ((double)silent <= HB_MISSED * b->hb_interval_s * 1000.0)
            continue;
        b->hb_overdue = true;
        note(w, LOG_LVL_WARN,
             "HEARTBEAT OVERDUE  %s: none for %.1f s (interval %g s): the transmission path may "
             "be down",
             bname(b, b->id, name, sizeof(name)), (double)silent / 1000.0, b->hb_interval_s);
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct watch *w = context;
    (void)topic_len;
    struct pending_ack ack = {0};
    pthread_mutex_lock(&w->lock);
    const char *payload = msg->payload ? msg->payload : "";
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    if (ends_with(topic, "/event"))
        handle_event(w, topic, payload, len, &ack);
    else if (ends_with(topic, "/status"))
        handle_status(w, topic, payload, len, msg->retained != 0);
    else if (ends_with(topic, "/heartbeat"))
        handle_heartbeat(w, topic, payload, len);
    else
        bad_message(w, topic, "a topic this watcher did not subscribe to; ignored");
    bool fatal = w->fatal;
    pthread_mutex_unlock(&w->lock);
    if (ack.topic && !fatal) {
        send_ack(w, &ack);
        pthread_mutex_lock(&w->lock);
        w->acks++;
        pthread_mutex_unlock(&w->lock);
    }
    free(ack.topic);
    free(ack.payload);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* What the broker granted for topic i: a QoS 0..2, or an MQTT 5 reason code >= 0x80. */
static void report_granted(const struct watch *w, int i, int granted)
{
    if (granted < 0x80)
        log_info("subscribed to %s (QoS %d)", w->topics[i], granted);
    else if (granted == MQTTREASONCODE_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)
        log_err("the broker refused the subscription to %s: it has no shared subscriptions; "
                "this watcher receives no events (run it without --share)",
                w->topics[i]);
    else if (granted == 0x80 && !w->o.mqtt5)
        log_err("the broker refused the subscription to %s (not authorised by its ACL?)",
                w->topics[i]);
    else
        log_err("the broker refused the subscription to %s: %s (reason code 0x%02x)", w->topics[i],
                MQTTReasonCode_toString((enum MQTTReasonCodes)granted), granted);
}

static void on_subscribed(void *context, MQTTAsync_successData *resp)
{
    struct watch *w = context;
    for (int i = 0; i < w->ntopics; i++)
        report_granted(w, i, w->ntopics == 1 ? resp->alt.qos : resp->alt.qosList[i]);
}

static void on_subscribed5(void *context, MQTTAsync_successData5 *resp)
{
    struct watch *w = context;
    int n = resp->alt.sub.reasonCodeCount;
    for (int i = 0; i < w->ntopics; i++) {
        int granted = n > 1 && i < n ? (int)resp->alt.sub.reasonCodes[i] : (int)resp->reasonCode;
        report_granted(w, i, granted);
    }
}

static void on_subscribe_failed(void *context, MQTTAsync_failureData *resp)
{
    (void)context;
    log_err("cannot subscribe: %s (code %d); no events will arrive until the next connection",
            resp && resp->message ? resp->message : MQTTAsync_strerror(resp ? resp->code : -1),
            resp ? resp->code : 0);
}

static void on_subscribe_failed5(void *context, MQTTAsync_failureData5 *resp)
{
    (void)context;
    if (resp && resp->reasonCode >= 0x80)
        log_err("cannot subscribe: the broker answered %s (reason code 0x%02x); no events will "
                "arrive until the next connection",
                MQTTReasonCode_toString(resp->reasonCode), (unsigned)resp->reasonCode);
    else
        log_err("cannot subscribe: %s (code %d); no events will arrive until the next connection",
                resp && resp->message ? resp->message : MQTTAsync_strerror(resp ? resp->code : -1),
                resp ? resp->code : 0);
}

/* Connected (either protocol): note it, then subscribe to every topic at once. */
static void connected(struct watch *w, bool kept)
{
    pthread_mutex_lock(&w->lock);
    w->conn = CONN_UP;
    w->backoff_ms = RETRY_MIN_MS;
    log_limit_reset(&w->conn_limit);
    pthread_mutex_unlock(&w->lock);
    log_notice("connected to %s as %s (MQTT %s); %s", w->uri, w->o.client_id,
               w->o.mqtt5 ? "5" : "3.1.1",
               kept            ? "session kept: events queued while away follow"
               : w->o.expiry_s ? "new session: events sent while away were not kept"
                               : "new session (it ends with the connection)");
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    if (w->o.mqtt5) {
        ro.onSuccess5 = on_subscribed5;
        ro.onFailure5 = on_subscribe_failed5;
    } else {
        ro.onSuccess = on_subscribed;
        ro.onFailure = on_subscribe_failed;
    }
    ro.context = w;
    int rc = MQTTAsync_subscribeMany(w->client, w->ntopics, w->topics, w->qos, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        log_err("cannot subscribe: %s (code %d)", MQTTAsync_strerror(rc), rc);
}

static void on_connected(void *context, MQTTAsync_successData *resp)
{
    connected(context, resp && resp->alt.connect.sessionPresent);
}

static void on_connected5(void *context, MQTTAsync_successData5 *resp)
{
    struct watch *w = context;
    /* Absent means available (MQTT 5, 3.2.2.3.17). */
    if (w->o.share && resp &&
        MQTTProperties_hasProperty(&resp->properties,
                                   MQTTPROPERTY_CODE_SHARED_SUBSCRIPTION_AVAILABLE) &&
        MQTTProperties_getNumericValue(&resp->properties,
                                       MQTTPROPERTY_CODE_SHARED_SUBSCRIPTION_AVAILABLE) == 0)
        log_err("the broker %s says it has no shared subscriptions: --share \"%s\" will receive "
                "no events",
                w->uri, w->o.share);
    connected(w, resp && resp->alt.connect.sessionPresent);
}

/* A failed attempt: log it (at most once a minute) and schedule the next with backoff. */
static void connect_failed(struct watch *w, const char *why, int code)
{
    pthread_mutex_lock(&w->lock);
    w->conn = CONN_IDLE;
    w->next_attempt_mono = mono_ms() + w->backoff_ms;
    log_limited(&w->conn_limit, mono_ms(), LOG_LVL_WARN,
                "cannot connect to %s: %s (code %d); trying again in %" PRId64 " s", w->uri, why,
                code, w->backoff_ms / 1000);
    w->backoff_ms = w->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->backoff_ms * 2;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void on_connect_failed(void *context, MQTTAsync_failureData *resp)
{
    const char *why = resp ? mqtt_connack_text(resp->code) : NULL;
    if (!why)
        why = resp && resp->message ? resp->message : MQTTAsync_strerror(resp ? resp->code : -1);
    connect_failed(context, why, resp ? resp->code : 0);
}

static void on_connect_failed5(void *context, MQTTAsync_failureData5 *resp)
{
    char why[160];
    /* Paho passes a refusing CONNACK's reason code (0x80 and up) as the code. */
    int reason = !resp                      ? 0
                 : resp->reasonCode >= 0x80 ? (int)resp->reasonCode
                 : resp->code >= 0x80       ? resp->code
                                            : 0;
    if (reason) {
        snprintf(why, sizeof(why), "broker refused the connection: %s (reason code 0x%02x)",
                 MQTTReasonCode_toString((enum MQTTReasonCodes)reason), (unsigned)reason);
        connect_failed(context, why, reason);
        return;
    }
    snprintf(why, sizeof(why), "%s",
             resp && resp->message ? resp->message : MQTTAsync_strerror(resp ? resp->code : -1));
    connect_failed(context, why, resp ? resp->code : 0);
}

/* MQTT 5 lets the broker say why it closes a connection: session taken over, shutting down... */
static void on_server_disconnect(void *context, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    struct watch *w = context;
    (void)props;
    pthread_mutex_lock(&w->lock);
    log_limited(&w->disc_limit, mono_ms(), LOG_LVL_WARN,
                "the broker %s closed the connection: %s (reason code 0x%02x)%s", w->uri,
                MQTTReasonCode_toString(rc), (unsigned)rc,
                rc == MQTTREASONCODE_SESSION_TAKEN_OVER
                    ? "; another client connected with the same client id"
                    : "");
    pthread_mutex_unlock(&w->lock);
}

static void on_connection_lost(void *context, char *cause)
{
    struct watch *w = context;
    pthread_mutex_lock(&w->lock);
    w->conn = CONN_IDLE;
    w->next_attempt_mono = mono_ms() + RETRY_MIN_MS;
    log_limited(&w->conn_limit, mono_ms(), LOG_LVL_WARN, "connection to %s lost: %s; reconnecting",
                w->uri, cause && *cause ? cause : "no reason given");
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void on_disconnected(void *context, MQTTAsync_successData *resp)
{
    (void)resp;
    struct watch *w = context;
    pthread_mutex_lock(&w->lock);
    w->disconnected = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void on_disconnect_failed(void *context, MQTTAsync_failureData *resp)
{
    (void)resp;
    on_disconnected(context, NULL);
}

static void on_disconnected5(void *context, MQTTAsync_successData5 *resp)
{
    (void)resp;
    on_disconnected(context, NULL);
}

static void on_disconnect_failed5(void *context, MQTTAsync_failureData5 *resp)
{
    (void)resp;
    on_disconnected(context, NULL);
}

/* Start one connection attempt; its outcome arrives in on_connected(5) or on_connect_failed(5). */
static void start_connect(struct watch *w)
{
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions opts5 = MQTTAsync_connectOptions_initializer5;
    MQTTProperties props = MQTTProperties_initializer;
    if (w->o.mqtt5) {
        opts = opts5;
        /* The session outlives the connection by the expiry; cleanstart 0 resumes it. */
        opts.cleanstart = 0;
        MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
        expiry.value.integer4 = (unsigned int)w->o.expiry_s;
        MQTTProperties_add(&props, &expiry);
        opts.connectProperties = &props;
        opts.onSuccess5 = on_connected5;
        opts.onFailure5 = on_connect_failed5;
    } else {
        opts.cleansession = 0;
        opts.MQTTVersion = MQTTVERSION_3_1_1;
        opts.onSuccess = on_connected;
        opts.onFailure = on_connect_failed;
    }
    opts.keepAliveInterval = KEEPALIVE_S;
    opts.connectTimeout = CONNECT_TIMEOUT_S;
    opts.username = w->o.user;
    opts.password = w->password;
    opts.automaticReconnect = 0;
    opts.context = w;
    int rc = MQTTAsync_connect(w->client, &opts);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS)
        connect_failed(w, MQTTAsync_strerror(rc), rc);
}

static int watch_setup(struct watch *w, char *err, size_t errlen)
{
    const struct options *o = &w->o;
    w->uri = strchr(o->host, ':') ? xasprintf("tcp://[%s]:%d", o->host, o->port)
                                  : xasprintf("tcp://%s:%d", o->host, o->port);
    if (o->password_file) {
        w->password = read_password(o->password_file, err, errlen);
        if (!w->password)
            return -1;
    }
    w->ntopics = (int)o->npatterns * 3;
    w->topics = xcalloc((size_t)w->ntopics, sizeof(*w->topics));
    w->qos = xcalloc((size_t)w->ntopics, sizeof(*w->qos));
    static const char *const levels[] = {"event", "status", "heartbeat"};
    for (size_t i = 0; i < o->npatterns; i++) {
        for (size_t k = 0; k < 3; k++) {
            /* Only events are shared: every member supervises status and heartbeats. */
            if (o->share && k == 0)
                w->topics[i * 3 + k] =
                    xasprintf("$share/%s/%s/%s", o->share, o->patterns[i], levels[k]);
            else
                w->topics[i * 3 + k] = xasprintf("%s/%s", o->patterns[i], levels[k]);
            w->qos[i * 3 + k] = 1;
        }
    }
    dedupe_init(&w->dd, (size_t)o->dedupe);
    w->backoff_ms = RETRY_MIN_MS;
    w->conn_limit.interval_ms = 60000;
    w->disc_limit.interval_ms = 60000;

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    /* An acknowledgement made just as the connection drops waits for the reconnect. */
    co.sendWhileDisconnected = 1;
    co.maxBufferedMessages = 10000;
    co.MQTTVersion = o->mqtt5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    int rc = MQTTAsync_createWithOptions(&w->client, w->uri, o->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "cannot create an MQTT client for %s: %s (code %d)", w->uri,
                 MQTTAsync_strerror(rc), rc);
        w->client = NULL;
        return -1;
    }
    rc = MQTTAsync_setCallbacks(w->client, w, on_connection_lost, on_message, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "cannot set the MQTT callbacks: %s (code %d)", MQTTAsync_strerror(rc),
                 rc);
        return -1;
    }
    if (o->mqtt5 &&
        MQTTAsync_setDisconnected(w->client, w, on_server_disconnect) != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "cannot set the MQTT disconnect callback");
        return -1;
    }
    return 0;
}

static void watch_teardown(struct watch *w)
{
    if (w->client)
        MQTTAsync_destroy(&w->client);
    for (int i = 0; i < w->ntopics; i++)
        free(w->topics[i]);
    free(w->topics);
    free(w->qos);
    for (size_t i = 0; i < w->nb; i++)
        free(w->b[i].name);
    free(w->b);
    dedupe_free(&w->dd);
    if (w->password)
        explicit_bzero(w->password, strlen(w->password));
    free(w->password);
    free(w->uri);
}

static void cond_wait_ms(struct watch *w, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->cond, &w->lock, &ts);
}

/* Runs until a signal, or until standard output fails. Returns the exit code. */
static int watch_run(struct watch *w)
{
    pthread_mutex_lock(&w->lock);
    while (!stop_requested && !w->fatal) {
        int64_t now = mono_ms();
        supervise(w, now);
        bool connect = w->conn == CONN_IDLE && now >= w->next_attempt_mono;
        if (connect) {
            w->conn = CONN_CONNECTING;
            pthread_mutex_unlock(&w->lock);
            start_connect(w);
            pthread_mutex_lock(&w->lock);
        }
        cond_wait_ms(w, LOOP_WAIT_MS);
    }
    int code = w->fatal ? 1 : 0;
    bool up = w->conn == CONN_UP;
    pthread_mutex_unlock(&w->lock);

    if (up) {
        MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer;
        MQTTAsync_disconnectOptions dopts5 = MQTTAsync_disconnectOptions_initializer5;
        if (w->o.mqtt5) {
            dopts = dopts5;
            dopts.onSuccess5 = on_disconnected5;
            dopts.onFailure5 = on_disconnect_failed5;
        } else {
            dopts.onSuccess = on_disconnected;
            dopts.onFailure = on_disconnect_failed;
        }
        dopts.timeout = DISCONNECT_FLUSH_MS;
        dopts.context = w;
        if (MQTTAsync_disconnect(w->client, &dopts) == MQTTASYNC_SUCCESS) {
            int64_t deadline = mono_ms() + DISCONNECT_WAIT_MS;
            pthread_mutex_lock(&w->lock);
            while (!w->disconnected && mono_ms() < deadline)
                cond_wait_ms(w, LOOP_WAIT_MS);
            pthread_mutex_unlock(&w->lock);
        }
    }
    return code;
}

static char *default_client_id(void)
{
    char host[65] = "";
    if (gethostname(host, sizeof(host) - 1) < 0 || !*host)
        snprintf(host, sizeof(host), "unknown");
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            *p = '-';
    return xasprintf("firegw-watch-%s", host);
}

int main(int argc, char **argv)
{
    struct watch w = {0};
    w.o.host = "127.0.0.1";
    w.o.port = 1883;
    w.o.dedupe = DEDUPE_DEFAULT;
    w.o.utc_offset_min = 7 * 60;
    w.o.expiry_s = -1;
    log_set_ident("firegw-watch");
    int rc = parse_options(argc, argv, &w.o);
    if (rc >= 0)
        return rc;
    char *client_id = w.o.client_id ? NULL : default_client_id();
    if (client_id)
        w.o.client_id = client_id;
    if (!w.o.receiver)
        w.o.receiver = w.o.client_id;
    if (w.o.verbose)
        log_set_level(LOG_LVL_DEBUG);
    w.color = !w.o.json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    setvbuf(stdout, NULL, _IOLBF, 0);

    pthread_mutex_init(&w.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cond, &ca);
    pthread_condattr_destroy(&ca);

    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    int code = 1;
    if (watch_setup(&w, err, sizeof(err)) < 0) {
        log_err("%s", err);
    } else {
        log_info("watching %s%s on %s as %s; acknowledging %s as \"%s\"", w.o.patterns[0],
                 w.o.npatterns > 1 ? " and more" : "", w.uri, w.o.client_id,
                 w.o.no_ack    ? "nothing"
                 : w.o.ack_all ? "every event"
                               : "fire alarms and faults",
                 w.o.receiver);
        if (w.o.share)
            log_info("share group \"%s\": the broker gives each event to one watcher of the "
                     "group; sequence gap checks are off (they need every event)",
                     w.o.share);
        if (w.o.share && w.o.expiry_s > 0)
            log_warn("--share with --session-expiry %lld: while this watcher is away the broker "
                     "may keep its share of the events for it (Mosquitto does) instead of giving "
                     "them to the members that are up",
                     w.o.expiry_s);
        code = watch_run(&w);
        log_notice("stopped: %llu events shown, %llu repeated ones ignored, %llu acknowledgements "
                   "sent, %llu sequence gaps, %llu bad messages",
                   w.shown, w.duplicates, w.acks, w.gaps, w.bad);
    }
    watch_teardown(&w);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    free(client_id);
    return code;
}
