/*
 * firegw: the daemon's entry point and main loop. It owns the order in which
 * modules start and stop, the signal flags, and the one place where data
 * changes hands: bus pollers -> queue -> engine -> events -> console and
 * uplinks. Everything that blocks (Modbus, MQTT) runs on other threads.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <systemd/sd-daemon.h>

#include "acktrack.h"
#include "bus.h"
#include "cfg.h"
#include "command.h"
#include "control.h"
#include "engine.h"
#include "event.h"
#include "evlog.h"
#include "log.h"
#include "payload.h"
#include "queue.h"
#include "remote.h"
#include "uplink.h"
#include "util.h"

#define MAX_OVERRIDES 64
#define ERRBUF 16384
/* Longest wait for new samples before the timers are looked at again. */
#define LOOP_WAIT_MS 100
/* Samples taken from the queue in one batch, so one batch's events are sorted together. */
#define BATCH_MAX 256

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

struct options {
    const char *config;
    const char *check_config;
    const char *overrides[MAX_OVERRIDES];
    size_t noverrides;
    const char *log_level;
    const char *state_dir;
    const char *control;
};

/* What the last published retained state of a detector on one uplink was. */
struct published {
    bool done;
    struct det_status st; /* value and times are not compared */
};

struct gateway {
    struct cfg *cfg;
    struct engine *engine;
    struct queue *queue;
    struct bus_poller **pollers;
    struct uplink **uplinks;
    struct published *published; /* nuplinks x ndetectors */
    bool *answered;              /* per detector: has answered at least once */
    unsigned *seen_connects;     /* per uplink: uplink_connections when states were last sent */
    bool *bus_up;
    int lock_fd; /* held for the life of the process */
    struct event_seq seq;
    struct log_limit seq_limit;
    char seq_recovered[320]; /* why numbering restarted, for the start event */
    bool seq_open;
    uint64_t last_seq;
    int64_t started_wall;
    int64_t started_mono;
    int64_t *next_heartbeat; /* per uplink, monotonic */
    struct control *control;
    struct queue *inbox;    /* messages from the brokers (struct uplink_msg) */
    struct acktrack **acks; /* per uplink; NULL where no acknowledgement is expected */
    bool *tx_fault;         /* per uplink: transmission fault raised */
    struct remote *remote;  /* validates remote commands, remembers their ids */
    bool *bus_seen;         /* per bus: something was heard from its poller */
    bool ready;             /* READY=1 sent to the service manager */
    int64_t watchdog_ms;    /* keep-alive interval; 0 when no watchdog is asked for */
    int64_t next_watchdog;  /* monotonic */
    bool stuck_logged;
    struct evlog *evlog; /* NULL when the log cannot be opened: alarms flow anyway */
    int64_t next_prune;  /* monotonic */
    struct evlist events;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: firegw --config FILE [--set SECTION[.ID].KEY=VALUE]... [options]\n"
            "       firegw --check-config FILE [--set ...]\n"
            "       firegw ctl [--state-dir DIR | --control PATH] COMMAND...\n"
            "       firegw events [--state-dir DIR] [filters]  (see firegw events --help)\n"
            "\n"
            "Polls smoke and heat detectors and fire panel modules over Modbus, evaluates\n"
            "alarm rules and reports alarms, faults and heartbeats over MQTT.\n"
            "\n"
            "  -c, --config FILE        site configuration (see docs/config.md)\n"
            "  -n, --check-config FILE  validate FILE and its profiles, print a summary, exit\n"
            "  -s, --set KEY=VALUE      override a config value, e.g. bus.rs485-a.baud=19200\n"
            "  -l, --log-level LEVEL    error, warning, notice, info or debug\n"
            "      --state-dir DIR      where durable state lives (overrides gateway.state_dir)\n"
            "      --control PATH       control socket (default STATE_DIR/control.sock)\n"
            "  -V, --version            print the version\n"
            "  -h, --help               this text\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, 'n'},
        {"set", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 'S'},
        {"control", required_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:n:s:l:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'n':
            o->check_config = optarg;
            break;
        case 's':
            if (o->noverrides == MAX_OVERRIDES) {
                fprintf(stderr, "firegw: at most %d --set options\n", MAX_OVERRIDES);
                return 2;
            }
            o->overrides[o->noverrides++] = optarg;
            break;
        case 'l':
            o->log_level = optarg;
            break;
        case 'S':
            o->state_dir = optarg;
            break;
        case 'C':
            o->control = optarg;
            break;
        case 'V':
            printf("firegw %s\n", FIREGW_VERSION);
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
        fprintf(stderr, "firegw: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!o->config && !o->check_config) {
        fprintf(stderr, "firegw: --config FILE or --check-config FILE is required\n");
        usage(stderr);
        return 2;
    }
    return -1;
}

static struct cfg *load_config(const char *path, const struct options *o)
{
    char *err = xcalloc(1, ERRBUF);
    struct cfg *cfg = cfg_load_ex(path, o->overrides, o->noverrides, err, ERRBUF);
    if (!cfg)
        fprintf(stderr, "%s", err);
    free(err);
    return cfg;
}

static int check_config(const struct options *o)
{
    struct cfg *cfg = load_config(o->check_config, o);
    if (!cfg) {
        fprintf(stderr, "%s: configuration has errors\n", o->check_config);
        return 1;
    }
    printf("%s: configuration OK: building \"%s\", %zu buses, %zu devices, %zu zones, "
           "%zu detectors, %zu profiles, %zu uplinks\n",
           o->check_config, cfg->site.id, cfg->nbuses, cfg->ndevices, cfg->nzones, cfg->ndetectors,
           cfg->profiles.count, cfg->nuplinks);
    cfg_free(cfg);
    return 0;
}

/* mkdir -p for the state directory. */
static int make_dirs(const char *path, char *err, size_t errlen)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        char saved = *s;
        if (saved != '/' && saved != '\0')
            continue;
        *s = '\0';
        if (mkdir(p, 0750) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create state directory %s: %s", p, strerror(errno));
            rc = -1;
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    free(p);
    return rc;
}

/*
 * One daemon per state directory: a second one would poll the same RS-485
 * line and hand out the same sequence numbers. The lock lives as long as the
 * process (the descriptor is never closed), and the kernel drops it on exit.
 */
static int lock_state_dir(const char *dir, char *err, size_t errlen)
{
    char *path = xasprintf("%s/firegw.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = read(fd, pid, sizeof(pid) - 1);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen,
                 "another firegw (pid %s) is already running with state directory %s; "
                 "stop it first",
                 *pid ? pid : "unknown", dir);
        close(fd);
        free(path);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, pid, (size_t)len) != len)
        log_warn("cannot write the pid into %s: %s", path, strerror(errno));
    free(path);
    return fd;
}

static struct ev_time now_both(void)
{
    struct ev_time t = {mono_ms(), wall_ms()};
    return t;
}

static const char *event_subject(const struct cfg *cfg, const struct event *ev)
{
    if (ev->detector >= 0)
        return cfg->detectors[ev->detector].id;
    if (ev->device >= 0)
        return cfg->devices[ev->device].id;
    if (ev->bus >= 0)
        return cfg->buses[ev->bus].id;
    return cfg->site.id;
}

/* One readable console line per event; fire alarms at the highest priority. */
static void log_event(const struct cfg *cfg, const struct event *ev)
{
    char where[256] = "";
    char value[96] = "";
    enum log_level lvl = LOG_LVL_NOTICE;
    if (ev->kind == EV_FIRE_ALARM)
        lvl = LOG_LVL_ERR;
    else if (ev->kind == EV_FAULT || ev->kind == EV_PRE_ALARM)
        lvl = LOG_LVL_WARN;
    if (ev->detector >= 0) {
        const struct cfg_detector *d = &cfg->detectors[ev->detector];
        snprintf(where, sizeof(where), " (%s, floor %d, zone %s%s%s)", detector_type_name(d->type),
                 d->floor, cfg->zones[d->zone].id, d->location && *d->location ? ", " : "",
                 d->location ? d->location : "");
        if (ev->has_value && ev->has_level)
            snprintf(value, sizeof(value), " %.2f %s, level %.2f", ev->value,
                     detector_unit(d->type), ev->level);
        else if (ev->has_value)
            snprintf(value, sizeof(value), " %.2f %s", ev->value, detector_unit(d->type));
    }
    char kind[64];
    snprintf(kind, sizeof(kind), "%s%s%s", ev_kind_name(ev->kind),
             ev->fault != FAULT_NONE ? "/" : "",
             ev->fault != FAULT_NONE ? fault_code_name(ev->fault) : "");
    log_msg(lvl, "event #%llu %s%s %s %s [%s]%s%s", (unsigned long long)ev->seq,
            ev->test ? "TEST " : "", kind, ev_source_name(ev->source), event_subject(cfg, ev),
            ev->rule ? ev->rule : "", where, value);
    if (ev->detail[0])
        log_msg(lvl, "event #%llu detail: %s", (unsigned long long)ev->seq, ev->detail);
}

/* Whether two states look the same to a person (readings and times aside). */
static bool same_state(const struct det_status *a, const struct det_status *b)
{
    return a->level == b->level && a->faults == b->faults && a->disabled == b->disabled &&
           a->test_mode == b->test_mode && a->test_alarm == b->test_alarm &&
           a->pending == b->pending && a->latched == b->latched &&
           a->acknowledged == b->acknowledged && a->silenced == b->silenced;
}

static void publish_detector_state(struct gateway *gw, size_t up, size_t det, int64_t now_wall)
{
    const struct det_status *st = engine_detector(gw->engine, det);
    struct published *p = &gw->published[up * gw->cfg->ndetectors + det];
    /* Before its first answer a detector's state is unknown, not "normal". */
    if (!gw->answered[det] && st->faults == 0)
        return;
    if (p->done && same_state(&p->st, st))
        return;
    char *json = payload_detector_state(gw->cfg, det, st, now_wall);
    char *topic = xasprintf("detector/%s/state", gw->cfg->detectors[det].id);
    /* Only sent while connected; a (re)connect sends every state again. */
    if (uplink_publish_live(gw->uplinks[up], topic, json, 1, true) == 0) {
        p->done = true;
        p->st = *st;
    }
    free(topic);
    free(json);
}

/* Retained states follow the engine, whatever caused a change, on every uplink. */
static void publish_states(struct gateway *gw)
{
    int64_t now_wall = wall_ms();
    size_t n = gw->cfg->ndetectors;
    for (size_t up = 0; up < gw->cfg->nuplinks; up++) {
        unsigned connects = uplink_connections(gw->uplinks[up]);
        if (connects != gw->seen_connects[up]) {
            gw->seen_connects[up] = connects;
            memset(&gw->published[up * n], 0, n * sizeof(*gw->published));
        }
        if (!uplink_connected(gw->uplinks[up]))
            continue;
        for (size_t d = 0; d < n; d++)
            publish_detector_state(gw, up, d, now_wall);
    }
}

/*
 * Send a batch of events: most urgent first, each stamped, logged and
 * published before any retained state, so telemetry never delays an alarm.
 */
static void dispatch(struct gateway *gw)
{
    struct evlist *l = &gw->events;
    evlist_sort_priority(l);
    for (size_t i = 0; i < l->count; i++) {
        struct event *ev = &l->items[i];
        if (event_stamp(ev, &gw->seq) < 0)
            log_limited(&gw->seq_limit, mono_ms(), LOG_LVL_ERR,
                        "event sequence numbers cannot be saved in %s: %s; events keep their "
                        "numbers, which may repeat if the gateway crashes before this is fixed",
                        gw->seq.path, strerror(errno));
        if (ev->seq > gw->last_seq)
            gw->last_seq = ev->seq;
        log_event(gw->cfg, ev);
        char *json = payload_event(gw->cfg, ev);
        bool needs_ack = !ev->test && (ev->kind == EV_FIRE_ALARM || ev->kind == EV_FIRE_CONFIRMED);
        long zone = ev->has_zone        ? (long)ev->zone
                    : ev->detector >= 0 ? (long)gw->cfg->detectors[ev->detector].zone
                                        : -1;
        for (size_t up = 0; up < gw->cfg->nuplinks; up++) {
            if (!cfg_uplink_wants(gw->cfg, up, ev->kind, zone >= 0, (size_t)(zone < 0 ? 0 : zone),
                                  ev->test))
                continue;
            int rc = uplink_publish(gw->uplinks[up], "event", json, 1, false);
            evlog_add_delivery(gw->evlog, ev->t.wall_ms, ev->id, gw->cfg->uplinks[up].id,
                               rc == 0 ? "accepted" : "failed", NULL);
            if (rc < 0)
                log_err("uplink %s: event #%llu (%s) was NOT accepted for delivery%s",
                        gw->cfg->uplinks[up].id, (unsigned long long)ev->seq,
                        ev_kind_name(ev->kind), needs_ack ? "; it will be sent again" : "");
            /* Refused or not, an alarm waits for its acknowledgement and is sent again. */
            if (needs_ack && gw->acks[up])
                acktrack_sent(gw->acks[up], ev->id, ev->seq, json, mono_ms());
        }
        evlog_add_event(gw->evlog, gw->cfg, ev, json);
        free(json);
    }
    evlist_clear(l);
    /*
     * States after events: telemetry never delays an alarm. A few thousand
     * comparisons per batch cost microseconds.
     */
    publish_states(gw);
}

static void handle_msg(struct gateway *gw, struct bus_msg *m)
{
    gw->bus_seen[m->bus] = true;
    switch (m->type) {
    case BUS_MSG_SAMPLE:
        engine_sample(gw->engine, &m->sample, &gw->events);
        for (size_t i = 0; i < m->sample.nreadings; i++)
            gw->answered[m->sample.readings[i].detector] = true;
        break;
    case BUS_MSG_DEVICE_STATE:
        engine_device_state(gw->engine, m->device, m->up, m->why, m->t, &gw->events);
        break;
    case BUS_MSG_BUS_STATE:
        gw->bus_up[m->bus] = m->up;
        engine_bus_state(gw->engine, m->bus, m->up, m->why, m->t, &gw->events);
        break;
    }
}

static void transmission_event(struct gateway *gw, size_t up, bool fault, const char *detail)
{
    struct event ev = {.kind = fault ? EV_FAULT : EV_FAULT_RESTORE,
                       .source = SRC_GATEWAY,
                       .detector = -1,
                       .device = -1,
                       .bus = -1,
                       .fault = FAULT_TRANSMISSION,
                       .rule = "ack_timeout",
                       .t = now_both()};
    snprintf(ev.detail, sizeof(ev.detail), "uplink %s: %s", gw->cfg->uplinks[up].id, detail);
    gw->tx_fault[up] = fault;
    evlist_push(&gw->events, &ev);
}

/* An acknowledgement from a receiving centre: {"event_id": ...}. */
static void handle_ack(struct gateway *gw, const struct uplink_msg *m)
{
    const char *uid = gw->cfg->uplinks[m->uplink].id;
    struct acktrack *t = gw->acks[m->uplink];
    cJSON *root = cJSON_ParseWithLength(m->payload, m->len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "event_id");
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(root, "receiver");
    if (!cJSON_IsString(id)) {
        log_warn("uplink %s: ignored an acknowledgement without an event_id string (%zu bytes)",
                 uid, m->len);
    } else if (t && acktrack_ack(t, id->valuestring)) {
        log_info("uplink %s: event %s acknowledged by %s", uid, id->valuestring,
                 cJSON_IsString(who) ? who->valuestring : "the receiving centre");
        evlog_add_delivery(gw->evlog, wall_ms(), id->valuestring, uid, "acknowledged",
                           cJSON_IsString(who) ? who->valuestring : NULL);
        if (gw->tx_fault[m->uplink] && !acktrack_overdue(t, mono_ms()))
            transmission_event(gw, m->uplink, false, "every fire alarm is acknowledged again");
    } else {
        log_debug("uplink %s: acknowledgement for unknown or already acknowledged event %s", uid,
                  id->valuestring);
    }
    cJSON_Delete(root);
}

/*
 * A command from a receiving centre: checked (format, authorisation, expiry,
 * replay), applied like a local one, and answered on <prefix>/command/response.
 */
static void handle_command(struct gateway *gw, const struct uplink_msg *m)
{
    struct remote_cmd cmd;
    char reason[256] = "";
    int64_t now_wall = wall_ms();
    int rc = remote_parse(gw->remote, gw->cfg->uplinks[m->uplink].id,
                          gw->cfg->uplinks[m->uplink].commands, m->payload, m->len, now_wall, &cmd,
                          reason, sizeof(reason));
    char *json;
    if (rc != REMOTE_OK) {
        char *origin = xasprintf("uplink:%s", gw->cfg->uplinks[m->uplink].id);
        char *result = xasprintf("rejected: %s: %s", remote_reason_code(rc), reason);
        evlog_add_command(gw->evlog, now_wall, origin, cmd.id[0] ? cmd.id : "(no id)", result);
        free(origin);
        free(result);
        json = remote_response(gw->cfg, cmd.id[0] ? cmd.id : NULL, "rejected",
                               remote_reason_code(rc), reason, now_wall, NULL);
    } else {
        char *reply = xmalloc(65536);
        int done = command_execute(gw->engine, gw->cfg, cmd.line, cmd.user, now_both(), &gw->events,
                                   reply, 65536);
        log_notice("uplink %s: command %s \"%s\" by %s: %s", gw->cfg->uplinks[m->uplink].id, cmd.id,
                   cmd.line, cmd.user, done == 0 ? "done" : reply);
        bool state = strcmp(cmd.line, "status") == 0;
        json = done == 0 ? remote_response(gw->cfg, cmd.id, "done", NULL, NULL, now_wall,
                                           state ? reply : NULL)
                         : remote_response(gw->cfg, cmd.id, "failed", "invalid_target",
                                           reply + (strncmp(reply, "error: ", 7) ? 0 : 7), now_wall,
                                           NULL);
        free(reply);
        dispatch(gw); /* the command's events go out before its response */
    }
    if (json)
        uplink_publish(gw->uplinks[m->uplink], "command/response", json, 1, false);
    free(json);
}

static void handle_inbound(struct gateway *gw)
{
    struct uplink_msg *m;
    for (int n = 0; n < BATCH_MAX && (m = queue_pop(gw->inbox, 0)) != NULL; n++) {
        if (strcmp(m->subtopic, "ack") == 0)
            handle_ack(gw, m);
        else if (strcmp(m->subtopic, "command") == 0)
            handle_command(gw, m);
        else
            log_warn("uplink %s: ignored a message on %s", gw->cfg->uplinks[m->uplink].id,
                     m->subtopic);
        uplink_msg_free(m);
    }
}

/*
 * Fire alarms the receiving centre has not acknowledged in time: send them
 * again, and report the path in fault on every uplink (EN 54-21).
 */
static void check_acks(struct gateway *gw, int64_t now_mono)
{
    for (size_t up = 0; up < gw->cfg->nuplinks; up++) {
        struct acktrack *t = gw->acks[up];
        if (!t)
            continue;
        const struct ack_pending *due[32];
        size_t n = acktrack_due(t, now_mono, due, ARRAY_LEN(due));
        for (size_t i = 0; i < n; i++) {
            log_warn("uplink %s: fire alarm #%llu (%s) not acknowledged after %lld s; "
                     "sending it again (%u)",
                     gw->cfg->uplinks[up].id, (unsigned long long)due[i]->seq, due[i]->event_id,
                     (long long)((now_mono - due[i]->sent_mono) / 1000), due[i]->resends);
            int rc = uplink_publish(gw->uplinks[up], "event", due[i]->json, 1, false);
            evlog_add_delivery(gw->evlog, wall_ms(), due[i]->event_id, gw->cfg->uplinks[up].id,
                               rc == 0 ? "resent" : "failed", "not acknowledged in time");
        }
        if (!gw->tx_fault[up] && acktrack_overdue(t, now_mono)) {
            char detail[128];
            snprintf(detail, sizeof(detail),
                     "%zu fire alarm(s) not acknowledged within %lld s; sending again",
                     acktrack_waiting(t), (long long)(gw->cfg->uplinks[up].ack_timeout_ms / 1000));
            transmission_event(gw, up, true, detail);
        }
    }
}

/* A command from the local control socket: applied and its events sent at once. */
static void on_control(void *arg, const char *line, const char *user, char *reply, size_t replylen)
{
    struct gateway *gw = arg;
    int rc =
        command_execute(gw->engine, gw->cfg, line, user, now_both(), &gw->events, reply, replylen);
    if (strncmp(line, "status", 6) != 0) {
        log_notice("control: %s by %s: %s", line, user, rc == 0 ? "done" : reply);
        evlog_add_command(gw->evlog, wall_ms(), user, line, rc == 0 ? "done" : reply);
    }
    dispatch(gw);
}

static void send_heartbeats(struct gateway *gw, int64_t now_mono)
{
    char *json = NULL;
    for (size_t i = 0; i < gw->cfg->nuplinks; i++) {
        if (now_mono < gw->next_heartbeat[i])
            continue;
        gw->next_heartbeat[i] = now_mono + gw->cfg->uplinks[i].heartbeat_ms;
        if (!json) {
            struct heartbeat_info hb = {0};
            hb.wall_ms = wall_ms();
            hb.uptime_ms = now_mono - gw->started_mono;
            hb.last_seq = gw->last_seq;
            hb.detectors_total = gw->cfg->ndetectors;
            hb.buses_total = gw->cfg->nbuses;
            for (size_t d = 0; d < gw->cfg->ndetectors; d++) {
                const struct det_status *st = engine_detector(gw->engine, d);
                hb.in_fire_alarm += st->level == LEVEL_FIRE_ALARM;
                hb.in_pre_alarm += st->level == LEVEL_PRE_ALARM;
                hb.in_fault += st->faults != 0;
            }
            for (size_t b = 0; b < gw->cfg->nbuses; b++)
                hb.buses_up += gw->bus_up[b];
            hb.interval_ms = gw->cfg->uplinks[i].heartbeat_ms;
            json = payload_heartbeat(gw->cfg, &hb);
        }
        uplink_publish_live(gw->uplinks[i], "heartbeat", json, 1, false);
    }
    free(json);
}

/* Longest wait for every bus's first poll before telling systemd we are ready anyway. */
#define READY_LIMIT_MS 30000

/*
 * The service manager: READY=1 once every bus has been polled (or tried),
 * and watchdog keep-alives only while the main loop turns and no poller is
 * stuck, so a hung bus thread gets the daemon restarted.
 */
static void service_manager(struct gateway *gw, int64_t now_mono)
{
    if (!gw->ready) {
        bool all = true;
        for (size_t b = 0; b < gw->cfg->nbuses; b++)
            all = all && gw->bus_seen[b];
        if (all || now_mono - gw->started_mono >= READY_LIMIT_MS) {
            gw->ready = true;
            sd_notifyf(0, "READY=1\nSTATUS=polling %zu buses, %zu detectors", gw->cfg->nbuses,
                       gw->cfg->ndetectors);
            log_info("ready: %s", all ? "every bus has been polled"
                                      : "not every bus answered within 30 s; running anyway");
        }
    }
    if (!gw->watchdog_ms || now_mono < gw->next_watchdog)
        return;
    gw->next_watchdog = now_mono + gw->watchdog_ms / 2;
    for (size_t b = 0; b < gw->cfg->nbuses; b++) {
        struct bus_stats st;
        bus_get_stats(gw->pollers[b], &st);
        if (now_mono - st.alive_mono > st.stall_limit_ms) {
            if (!gw->stuck_logged)
                log_err("bus %s: its poller has not come round for %lld s; withholding the "
                        "watchdog keep-alive so the service is restarted",
                        gw->cfg->buses[b].id, (long long)((now_mono - st.alive_mono) / 1000));
            gw->stuck_logged = true;
            return;
        }
    }
    sd_notify(0, "WATCHDOG=1");
}

static int run(struct gateway *gw)
{
    while (!stop_requested) {
        if (reload_requested) {
            reload_requested = 0;
            log_warn("SIGHUP: configuration reload is not supported in this version; "
                     "restart the service to apply a new configuration");
        }
        struct bus_msg *m = queue_pop(gw->queue, LOOP_WAIT_MS);
        for (int n = 0; m && n < BATCH_MAX; n++) {
            handle_msg(gw, m);
            bus_msg_free(m);
            m = n + 1 < BATCH_MAX ? queue_pop(gw->queue, 0) : NULL;
        }
        struct ev_time now = now_both();
        engine_tick(gw->engine, now, &gw->events);
        handle_inbound(gw);
        check_acks(gw, now.mono_ms);
        dispatch(gw);
        control_poll(gw->control, on_control, gw);
        if (now.mono_ms >= gw->next_prune) {
            gw->next_prune = now.mono_ms + 1000;
            evlog_prune(gw->evlog, now.wall_ms);
        }
        if (event_seq_reserve_ahead(&gw->seq) < 0)
            log_limited(&gw->seq_limit, now.mono_ms, LOG_LVL_ERR,
                        "cannot save event sequence numbers in %s: %s", gw->seq.path,
                        strerror(errno));
        for (size_t i = 0; i < gw->cfg->nuplinks; i++)
            uplink_tick(gw->uplinks[i], now.mono_ms);
        send_heartbeats(gw, now.mono_ms);
        service_manager(gw, now.mono_ms);
    }
    sd_notify(0, "STOPPING=1");
    return 0;
}

/*
 * On the way out: stop the pollers, then evaluate and send what they had
 * already read, so an alarm sampled just before SIGTERM still goes out.
 */
static void gateway_drain(struct gateway *gw)
{
    if (gw->pollers) {
        for (size_t i = 0; i < gw->cfg->nbuses; i++) {
            bus_stop(gw->pollers[i]);
            gw->pollers[i] = NULL;
        }
    }
    if (!gw->queue || !gw->engine)
        return;
    struct bus_msg *m;
    while ((m = queue_pop(gw->queue, 0)) != NULL) {
        handle_msg(gw, m);
        bus_msg_free(m);
    }
    dispatch(gw);
}

static void gateway_free(struct gateway *gw)
{
    if (gw->pollers) {
        for (size_t i = 0; i < gw->cfg->nbuses; i++)
            bus_stop(gw->pollers[i]);
        free(gw->pollers);
    }
    if (gw->uplinks) {
        for (size_t i = 0; i < gw->cfg->nuplinks; i++)
            uplink_free(gw->uplinks[i], 2000);
        free(gw->uplinks);
    }
    if (gw->queue)
        queue_free(gw->queue, bus_msg_free);
    control_close(gw->control);
    if (gw->inbox)
        queue_free(gw->inbox, uplink_msg_free);
    if (gw->acks)
        for (size_t i = 0; i < gw->cfg->nuplinks; i++)
            acktrack_free(gw->acks[i]);
    free(gw->acks);
    free(gw->tx_fault);
    free(gw->bus_seen);
    remote_free(gw->remote);
    evlog_close(gw->evlog);
    engine_free(gw->engine);
    if (gw->seq_open)
        event_seq_close(&gw->seq);
    evlist_free(&gw->events);
    free(gw->published);
    free(gw->answered);
    free(gw->seen_connects);
    free(gw->bus_up);
    free(gw->next_heartbeat);
    cfg_free(gw->cfg);
    if (gw->lock_fd >= 0)
        close(gw->lock_fd);
}

static int gateway_start(struct gateway *gw, const struct options *o)
{
    char err[512];
    const char *state_dir = o->state_dir ? o->state_dir : gw->cfg->gateway.state_dir;
    if (!*state_dir) {
        log_err("the state directory must not be empty");
        return -1;
    }
    if (make_dirs(state_dir, err, sizeof(err)) < 0 ||
        (gw->lock_fd = lock_state_dir(state_dir, err, sizeof(err))) < 0) {
        log_err("%s", err);
        return -1;
    }
    char *seq_path = xasprintf("%s/event-seq", state_dir);
    int rc = event_seq_open(&gw->seq, seq_path, err, sizeof(err));
    free(seq_path);
    if (rc < 0) {
        log_err("%s", err);
        return -1;
    }
    if (rc == 1) {
        log_err("%s", err);
        strlcpy_fg(gw->seq_recovered, err, sizeof(gw->seq_recovered));
    }
    gw->seq_open = true;

    struct ev_time now = now_both();
    gw->started_wall = now.wall_ms;
    gw->started_mono = now.mono_ms;
    gw->engine = engine_new(gw->cfg, now);
    gw->published = xcalloc(gw->cfg->ndetectors * gw->cfg->nuplinks, sizeof(*gw->published));
    gw->seen_connects = xcalloc(gw->cfg->nuplinks, sizeof(unsigned));
    gw->answered = xcalloc(gw->cfg->ndetectors, sizeof(bool));
    gw->bus_up = xcalloc(gw->cfg->nbuses, sizeof(bool));
    gw->next_heartbeat = xcalloc(gw->cfg->nuplinks, sizeof(int64_t));

    gw->uplinks = xcalloc(gw->cfg->nuplinks, sizeof(*gw->uplinks));
    /* Paho's message store: events survive a restart while a broker is away. */
    char *outbox = xasprintf("%s/outbox", state_dir);
    if (make_dirs(outbox, err, sizeof(err)) < 0) {
        log_err("%s", err);
        free(outbox);
        return -1;
    }
    gw->inbox = queue_new();
    gw->remote = remote_new(REMOTE_DEFAULT_REPLAY);
    gw->acks = xcalloc(gw->cfg->nuplinks, sizeof(*gw->acks));
    gw->tx_fault = xcalloc(gw->cfg->nuplinks, sizeof(bool));
    for (size_t i = 0; i < gw->cfg->nuplinks; i++) {
        gw->uplinks[i] =
            uplink_new_persistent(gw->cfg, i, gw->started_wall, outbox, err, sizeof(err));
        if (gw->uplinks[i] && gw->cfg->uplinks[i].ack_timeout_ms > 0) {
            gw->acks[i] = acktrack_new(gw->cfg->uplinks[i].ack_timeout_ms);
            uplink_subscribe(gw->uplinks[i], "ack", gw->inbox);
        }
        if (gw->uplinks[i] && gw->cfg->uplinks[i].commands)
            uplink_subscribe(gw->uplinks[i], "command", gw->inbox);
        if (!gw->uplinks[i] || uplink_start(gw->uplinks[i], err, sizeof(err)) < 0) {
            log_err("uplink \"%s\": %s", gw->cfg->uplinks[i].id, err);
            free(outbox);
            return -1;
        }
        gw->next_heartbeat[i] = now.mono_ms;
    }
    free(outbox);

    struct event start = {.kind = EV_GATEWAY_START,
                          .source = SRC_GATEWAY,
                          .detector = -1,
                          .device = -1,
                          .bus = -1,
                          .rule = "gateway_start",
                          .t = now};
    snprintf(start.detail, sizeof(start.detail), "firegw %s started: %zu buses, %zu detectors%s",
             FIREGW_VERSION, gw->cfg->nbuses, gw->cfg->ndetectors,
             gw->seq_recovered[0] ? "; event sequence file was corrupt, numbering restarted" : "");
    evlist_push(&gw->events, &start);

    char *db = xasprintf("%s/%s", state_dir, EVLOG_FILE_NAME);
    err[0] = '\0';
    gw->evlog = evlog_open(db, NULL, err, sizeof(err));
    if (err[0])
        log_err("event log %s: %s%s", db, err,
                gw->evlog ? "" : "; running without an event log, alarms are sent as usual");
    free(db);

    char *control_path = o->control ? xstrdup(o->control) : xasprintf("%s/control.sock", state_dir);
    gw->control = control_open(control_path, err, sizeof(err));
    free(control_path);
    if (!gw->control) {
        log_err("%s", err);
        return -1;
    }

    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0)
        gw->watchdog_ms = (int64_t)(wd_usec / 1000);
    gw->bus_seen = xcalloc(gw->cfg->nbuses ? gw->cfg->nbuses : 1, sizeof(bool));
    gw->queue = queue_new();
    gw->pollers = xcalloc(gw->cfg->nbuses, sizeof(*gw->pollers));
    for (size_t i = 0; i < gw->cfg->nbuses; i++) {
        gw->pollers[i] = bus_start(gw->cfg, i, gw->queue, err, sizeof(err));
        if (!gw->pollers[i]) {
            log_err("bus \"%s\": %s", gw->cfg->buses[i].id, err);
            return -1;
        }
    }
    return 0;
}

static void ctl_usage(FILE *out)
{
    fprintf(out, "Usage: firegw ctl [--state-dir DIR | --control PATH] COMMAND...\n"
                 "\n"
                 "Sends one command to the running gateway through its control socket\n"
                 "(default /var/lib/firegw/control.sock). Commands:\n"
                 "  status                                  building and zone summary\n"
                 "  acknowledge all|zone ID|detector ID     someone has seen the alarm\n"
                 "  silence     all|zone ID|detector ID     stop the sounders; the alarm stays\n"
                 "  reset       all|zone ID|detector ID     clear latched alarms\n"
                 "  disable     zone ID|detector ID PERIOD  e.g. disable detector F3-LIFT 2h\n"
                 "  enable      zone ID|detector ID\n"
                 "  test on     zone ID|detector ID PERIOD  walk test: alarms become test events\n"
                 "  test off    zone ID|detector ID\n"
                 "Who may send commands is decided by the socket's permissions; the user is\n"
                 "recorded with every event a command causes.\n");
}

static int ctl_main(int argc, char **argv)
{
    const char *state_dir = "/var/lib/firegw";
    const char *path = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ctl_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "firegw ctl: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--state-dir") == 0) {
            state_dir = argv[++i];
        } else if (strcmp(argv[i], "--control") == 0) {
            path = argv[++i];
        } else {
            fprintf(stderr, "firegw ctl: unknown option \"%s\"\n", argv[i]);
            ctl_usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        ctl_usage(stderr);
        return 2;
    }
    char line[CONTROL_LINE_MAX] = "";
    size_t len = 0;
    for (; i < argc; i++) {
        int n = snprintf(line + len, sizeof(line) - len, "%s%s", len ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof(line) - len) {
            fprintf(stderr, "firegw ctl: command too long\n");
            return 2;
        }
        len += (size_t)n;
    }
    char *sock = path ? xstrdup(path) : xasprintf("%s/control.sock", state_dir);
    char *reply = xmalloc(65536);
    char err[512];
    int rc = control_request(sock, line, reply, 65536, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "firegw ctl: %s\n", err);
    else
        printf("%s\n", reply);
    int status = rc < 0 ? 1 : strncmp(reply, "ok", 2) == 0 ? 0 : 1;
    free(reply);
    free(sock);
    return status;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return ctl_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "events") == 0)
        return evlog_cli(argc - 1, argv + 1);
    struct options o = {0};
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.log_level) {
        enum log_level lvl;
        if (log_level_parse(o.log_level, &lvl) < 0) {
            fprintf(stderr,
                    "firegw: unknown log level \"%s\" (error, warning, notice, info, "
                    "debug)\n",
                    o.log_level);
            return 2;
        }
        log_set_level(lvl);
    }
    if (o.check_config)
        return check_config(&o);

    struct gateway gw = {.lock_fd = -1};
    gw.cfg = load_config(o.config, &o);
    if (!gw.cfg)
        return 1;
    if (!o.log_level && gw.cfg->gateway.log_level) {
        enum log_level lvl;
        if (log_level_parse(gw.cfg->gateway.log_level, &lvl) == 0)
            log_set_level(lvl);
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_notice("firegw %s starting: building \"%s\" (%s), %zu buses, %zu devices, %zu detectors, "
               "%zu uplinks",
               FIREGW_VERSION, gw.cfg->site.id, gw.cfg->site.name, gw.cfg->nbuses, gw.cfg->ndevices,
               gw.cfg->ndetectors, gw.cfg->nuplinks);
    if (gateway_start(&gw, &o) == 0) {
        rc = run(&gw);
        log_notice("firegw stopping");
        gateway_drain(&gw);
    } else {
        rc = 1;
    }
    gateway_free(&gw);
    return rc;
}
