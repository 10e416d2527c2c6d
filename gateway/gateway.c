/*
 * The gateway's life: start (state directory and its lock, sequence numbers,
 * event log, uplinks, control socket, one poller per bus), one turn of the
 * main loop (samples -> engine -> events -> delivery), the service manager's
 * READY and watchdog, and the orderly stop. Everything that blocks (Modbus,
 * MQTT) runs on other threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "command.h"
#include "gateway.h"
#include "outbox.h"
#include "payload.h"
#include "util.h"

struct ev_time gw_now(void)
{
    struct ev_time t = {mono_ms(), wall_ms()};
    return t;
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

/*
 * A message from a poller that runs on since an earlier config: its indexes
 * are turned into the current config's. False when what it is about is gone.
 */
static bool remap_msg(struct gateway *gw, struct bus_msg *m)
{
    const struct reload_map *map = NULL;
    for (size_t i = 0; i < gw->nretired && !map; i++)
        if (gw->maps[i]->from == m->cfg)
            map = gw->maps[i];
    if (!map || map->bus[m->bus] < 0 ||
        (m->type != BUS_MSG_BUS_STATE && map->device[m->device] < 0))
        return false;
    m->bus = (size_t)map->bus[m->bus];
    if (m->type == BUS_MSG_BUS_STATE)
        return true;
    m->device = (size_t)map->device[m->device];
    m->sample.device = m->device;
    size_t kept = 0;
    for (size_t i = 0; i < m->sample.nreadings; i++) {
        long d = map->detector[m->sample.readings[i].detector];
        if (d < 0)
            continue;
        m->sample.readings[kept] = m->sample.readings[i];
        m->sample.readings[kept++].detector = (size_t)d;
    }
    m->sample.nreadings = kept;
    m->cfg = gw->cfg;
    return true;
}

static void handle_msg(struct gateway *gw, struct bus_msg *m)
{
    if (m->type == BUS_MSG_WAKE)
        return;
    if (m->cfg && m->cfg != gw->cfg && !remap_msg(gw, m))
        return;
    gw->bus_seen[m->bus] = true;
    switch (m->type) {
    case BUS_MSG_SAMPLE:
        engine_sample(gw->engine, &m->sample, &gw->events);
        for (size_t i = 0; i < m->sample.nreadings; i++) {
            size_t d = m->sample.readings[i].detector;
            gw->states_dirty |= !gw->answered[d];
            gw->answered[d] = true;
        }
        break;
    case BUS_MSG_DEVICE_STATE:
        engine_device_state(gw->engine, m->device, m->up, m->why, m->t, &gw->events);
        break;
    case BUS_MSG_BUS_STATE:
        gw->bus_up[m->bus] = m->up;
        engine_bus_state(gw->engine, m->bus, m->up, m->why, m->t, &gw->events);
        break;
    case BUS_MSG_WAKE:
        break;
    }
}

/* A command from the local control socket: applied and its events sent at once. */
static void on_control(void *arg, const char *line, const char *user, char *reply, size_t replylen)
{
    struct gateway *gw = arg;
    int rc =
        command_execute(gw->engine, gw->cfg, line, user, gw_now(), &gw->events, reply, replylen);
    if (strncmp(line, "status", 6) != 0) {
        log_notice("control: %s by %s: %s", line, user, rc == 0 ? "done" : reply);
        evlog_add_command(gw->evlog, wall_ms(), user, line, rc == 0 ? "done" : reply);
    }
    delivery_dispatch(gw);
}

/*
 * On a Paho thread or the control socket's: a receipt, an inbound message or a
 * local command is waiting for the main loop.
 */
static void wake_main(void *queue)
{
    bus_wake(queue);
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
        if (!gw->pollers[b])
            continue;
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

/*
 * On the way out: stop the pollers, then evaluate and send what they had
 * already read, so an alarm sampled just before SIGTERM still goes out.
 */
void gateway_drain(struct gateway *gw)
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
    delivery_dispatch(gw);
}

/* Forget retired configs no poller uses any more; map the others onto the current one. */
static void prune_retired(struct gateway *gw, const struct cfg **in_use, size_t nin_use)
{
    size_t kept = 0;
    for (size_t i = 0; i < gw->nretired; i++) {
        struct cfg *c = gw->retired[i];
        bool used = c == gw->uplink_cfg;
        for (size_t k = 0; k < nin_use && !used; k++)
            used = in_use[k] == c;
        reload_map_free(gw->maps[i]);
        if (!used) {
            cfg_free(c);
            continue;
        }
        gw->retired[kept] = c;
        gw->maps[kept++] = reload_map_new(c, gw->cfg);
    }
    gw->nretired = kept;
}

/* Remove the retained state of detectors the new config no longer has. */
static void clear_removed_states(struct gateway *gw, const struct cfg *old)
{
    for (size_t d = 0; d < old->ndetectors; d++) {
        if (cfg_find_detector(gw->cfg, old->detectors[d].id) >= 0)
            continue;
        char *topic = xasprintf("detector/%s/state", old->detectors[d].id);
        for (size_t up = 0; up < gw->cfg->nuplinks; up++)
            uplink_publish_live(gw->uplinks[up], topic, "", 1, true);
        free(topic);
    }
}

static bool *remap_bools(const bool *old, const long *map, size_t nold, size_t nnew)
{
    bool *out = xcalloc(nnew ? nnew : 1, sizeof(bool));
    for (size_t i = 0; i < nold; i++)
        if (map[i] >= 0)
            out[map[i]] = old[i];
    return out;
}

int gateway_reload(struct gateway *gw, const char *user, char *err, size_t errlen)
{
    char *cerr = xcalloc(1, 16384);
    struct cfg *nc = cfg_load_ex(gw->config_path, gw->overrides, gw->noverrides, cerr, 16384);
    if (!nc) {
        snprintf(err, errlen, "the new configuration has errors; the running one is kept:\n%s",
                 cerr);
        free(cerr);
        log_err("reload by %s refused: %s", user, err);
        evlog_add_command(gw->evlog, wall_ms(), user, "reload", "refused: configuration errors");
        return -1;
    }
    free(cerr);
    char why[512];
    if (reload_check(gw->cfg, nc, gw->engine, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "reload refused, the running configuration is kept: %s", why);
        log_err("reload by %s: %s", user, err);
        evlog_add_command(gw->evlog, wall_ms(), user, "reload", err);
        cfg_free(nc);
        return -1;
    }
    struct cfg *oc = gw->cfg;
    /* Pollers of buses polled exactly alike run on; the others stop now. */
    struct bus_poller **pollers = xcalloc(nc->nbuses ? nc->nbuses : 1, sizeof(*pollers));
    const struct cfg **pcfg = xcalloc(nc->nbuses ? nc->nbuses : 1, sizeof(*pcfg));
    size_t kept = 0, restarted = 0;
    for (size_t b = 0; b < oc->nbuses; b++) {
        long nb = cfg_find_bus(nc, oc->buses[b].id);
        if (nb >= 0 && reload_bus_unchanged(oc, b, nc, (size_t)nb)) {
            pollers[nb] = gw->pollers[b];
            pcfg[nb] = gw->poller_cfg[b];
            kept++;
        } else {
            bus_stop(gw->pollers[b]);
        }
        gw->pollers[b] = NULL;
    }
    /* What the pollers read so far is judged under the old config. */
    struct bus_msg *m;
    while ((m = queue_pop(gw->queue, 0)) != NULL) {
        handle_msg(gw, m);
        bus_msg_free(m);
    }
    struct ev_time now = gw_now();
    engine_tick(gw->engine, now, &gw->events);
    delivery_dispatch(gw);

    struct engine *ne = engine_new(nc, now);
    engine_adopt(ne, gw->engine, now);
    struct reload_map *map = reload_map_new(oc, nc);
    bool *answered = remap_bools(gw->answered, map->detector, oc->ndetectors, nc->ndetectors);
    bool *bus_up = remap_bools(gw->bus_up, map->bus, oc->nbuses, nc->nbuses);
    bool *bus_seen = remap_bools(gw->bus_seen, map->bus, oc->nbuses, nc->nbuses);
    reload_map_free(map);
    engine_free(gw->engine);
    gw->engine = ne;
    free(gw->answered);
    gw->answered = answered;
    free(gw->bus_up);
    gw->bus_up = bus_up;
    free(gw->bus_seen);
    gw->bus_seen = bus_seen;
    free(gw->published);
    gw->published = xcalloc(nc->ndetectors * nc->nuplinks + 1, sizeof(*gw->published));
    gw->states_dirty = true;
    free(gw->pollers);
    gw->pollers = pollers;
    free(gw->poller_cfg);
    gw->poller_cfg = pcfg;

    gw->cfg = nc;
    clear_removed_states(gw, oc);
    gw->retired = xrealloc(gw->retired, (gw->nretired + 1) * sizeof(*gw->retired));
    gw->maps = xrealloc(gw->maps, (gw->nretired + 1) * sizeof(*gw->maps));
    gw->retired[gw->nretired] = oc;
    gw->maps[gw->nretired++] = NULL;
    prune_retired(gw, pcfg, nc->nbuses);

    int rc = 0;
    for (size_t b = 0; b < nc->nbuses; b++) {
        if (pollers[b])
            continue;
        char berr[512];
        pollers[b] = bus_start(nc, b, gw->queue, berr, sizeof(berr));
        pcfg[b] = nc;
        restarted++;
        if (!pollers[b]) {
            /* The config was valid; a poller that cannot start is reported like a dead bus. */
            log_err("bus \"%s\": %s", nc->buses[b].id, berr);
            engine_bus_state(gw->engine, b, false, berr, now, &gw->events);
            rc = -1;
        }
    }
    char *summary = xasprintf("applied: %zu buses kept polling, %zu (re)started; %zu detectors",
                              kept, restarted, nc->ndetectors);
    log_notice("configuration reloaded by %s: %s", user, summary);
    evlog_add_command(gw->evlog, now.wall_ms, user, "reload", summary);
    free(summary);
    delivery_dispatch(gw);
    if (rc < 0)
        snprintf(err, errlen, "the configuration was applied but a bus could not be started");
    return rc;
}

void gateway_free(struct gateway *gw)
{
    /* First: its thread wakes the main loop through the queue freed below, and a client
       still waiting is told at once that the gateway is stopping. */
    control_close(gw->control);
    gw->control = NULL;
    if (gw->pollers) {
        for (size_t i = 0; i < gw->cfg->nbuses; i++)
            bus_stop(gw->pollers[i]);
        free(gw->pollers);
    }
    /* After the pollers: a probe's reply queue must outlive them. */
    web_free(gw->web);
    gw->web = NULL;
    if (gw->uplinks) {
        for (size_t i = 0; i < gw->cfg->nuplinks; i++)
            uplink_free(gw->uplinks[i], 2000);
        free(gw->uplinks);
    }
    if (gw->queue)
        queue_free(gw->queue, bus_msg_free);
    if (gw->inbox)
        queue_free(gw->inbox, uplink_msg_free);
    if (gw->delivered)
        queue_free(gw->delivered, free);
    if (gw->flight)
        for (size_t i = 0; i < gw->cfg->nuplinks; i++)
            for (size_t k = 0; k < gw->flight[i].n; k++)
                free(gw->flight[i].event_id[k]);
    free(gw->flight);
    outbox_close(gw->outbox);
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
    free(gw->poller_cfg);
    for (size_t i = 0; i < gw->nretired; i++) {
        reload_map_free(gw->maps[i]);
        cfg_free(gw->retired[i]);
    }
    free(gw->maps);
    free(gw->retired);
    cfg_free(gw->cfg);
    if (gw->lock_fd >= 0)
        close(gw->lock_fd);
}

struct ack_restore {
    struct acktrack *t;
    int64_t now_mono;
};

static void restore_ack(void *arg, const char *event_id, uint64_t seq, const char *payload)
{
    struct ack_restore *r = arg;
    acktrack_sent(r->t, event_id, seq, payload, r->now_mono);
}

int gateway_start(struct gateway *gw, const char *state_dir_opt, const char *control_opt)
{
    char err[512];
    const char *state_dir = state_dir_opt ? state_dir_opt : gw->cfg->gateway.state_dir;
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

    struct ev_time now = gw_now();
    gw->started_wall = now.wall_ms;
    gw->started_mono = now.mono_ms;
    gw->engine = engine_new(gw->cfg, now);
    gw->published = xcalloc(gw->cfg->ndetectors * gw->cfg->nuplinks, sizeof(*gw->published));
    gw->seen_connects = xcalloc(gw->cfg->nuplinks, sizeof(unsigned));
    gw->answered = xcalloc(gw->cfg->ndetectors, sizeof(bool));
    gw->bus_up = xcalloc(gw->cfg->nbuses, sizeof(bool));
    gw->next_heartbeat = xcalloc(gw->cfg->nuplinks, sizeof(int64_t));

    /* The main loop's queue: samples from the pollers, and wake-ups from uplinks and web. */
    gw->queue = queue_new();
    gw->uplink_cfg = gw->cfg;
    gw->uplinks = xcalloc(gw->cfg->nuplinks, sizeof(*gw->uplinks));
    /* The durable outbox: events survive a restart or a power cut while a broker is away. */
    char *outbox = xasprintf("%s/%s", state_dir, OUTBOX_FILE_NAME);
    gw->outbox = outbox_open(outbox, err, sizeof(err));
    if (!gw->outbox)
        log_err("%s; events wait in memory only until this is fixed", err);
    free(outbox);
    gw->outbox_limit.interval_ms = 10000;
    gw->delivered = queue_new();
    gw->flight = xcalloc(gw->cfg->nuplinks ? gw->cfg->nuplinks : 1, sizeof(*gw->flight));
    gw->inbox = queue_new();
    gw->remote = remote_new(REMOTE_DEFAULT_REPLAY);
    gw->acks = xcalloc(gw->cfg->nuplinks, sizeof(*gw->acks));
    gw->tx_fault = xcalloc(gw->cfg->nuplinks, sizeof(bool));
    for (size_t i = 0; i < gw->cfg->nuplinks; i++) {
        gw->uplinks[i] = uplink_new(gw->cfg, i, gw->started_wall, err, sizeof(err));
        uplink_set_wake(gw->uplinks[i], wake_main, gw->queue);
        if (gw->uplinks[i] && gw->cfg->uplinks[i].ack_timeout_ms > 0) {
            gw->acks[i] = acktrack_new(gw->cfg->uplinks[i].ack_timeout_ms);
            /* Alarms that waited for their acknowledgement before a restart wait again. */
            struct ack_restore r = {gw->acks[i], now.mono_ms};
            int n = outbox_ack_each(gw->outbox, gw->cfg->uplinks[i].id, restore_ack, &r);
            if (n > 0)
                log_warn("uplink %s: %d fire alarm(s) from before the restart still wait for "
                         "their acknowledgement",
                         gw->cfg->uplinks[i].id, n);
            uplink_subscribe(gw->uplinks[i], "ack", gw->inbox);
        }
        if (gw->uplinks[i] && gw->cfg->uplinks[i].commands)
            uplink_subscribe(gw->uplinks[i], "command", gw->inbox);
        if (!gw->uplinks[i] || uplink_start(gw->uplinks[i], err, sizeof(err)) < 0) {
            log_err("uplink \"%s\": %s", gw->cfg->uplinks[i].id, err);
            return -1;
        }
        gw->next_heartbeat[i] = now.mono_ms;
    }

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

    char *control_path =
        control_opt ? xstrdup(control_opt) : xasprintf("%s/control.sock", state_dir);
    gw->control = control_open(control_path, wake_main, gw->queue, err, sizeof(err));
    free(control_path);
    if (!gw->control) {
        log_err("%s", err);
        return -1;
    }
    /* The web UI is a convenience: without it the gateway still monitors and reports. */
    gw->web = web_start(gw->cfg, state_dir, err, sizeof(err));
    if (!gw->web && err[0])
        log_err("web: %s; running without the web UI", err);

    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0)
        gw->watchdog_ms = (int64_t)(wd_usec / 1000);
    gw->bus_seen = xcalloc(gw->cfg->nbuses ? gw->cfg->nbuses : 1, sizeof(bool));
    web_set_waker(gw->web, gw->queue);
    gw->pollers = xcalloc(gw->cfg->nbuses ? gw->cfg->nbuses : 1, sizeof(*gw->pollers));
    gw->poller_cfg = xcalloc(gw->cfg->nbuses ? gw->cfg->nbuses : 1, sizeof(*gw->poller_cfg));
    for (size_t i = 0; i < gw->cfg->nbuses; i++) {
        gw->poller_cfg[i] = gw->cfg;
        gw->pollers[i] = bus_start(gw->cfg, i, gw->queue, err, sizeof(err));
        if (!gw->pollers[i]) {
            log_err("bus \"%s\": %s", gw->cfg->buses[i].id, err);
            return -1;
        }
    }
    return 0;
}

static int64_t earliest(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int gateway_wait_ms(const struct gateway *gw, int idle_ms, int busy_ms, int64_t now_mono)
{
    int64_t until = now_mono + idle_ms;
    until = earliest(until, engine_next_due(gw->engine));
    until = earliest(until, gw->next_states);
    until = earliest(until, gw->next_prune);
    for (size_t i = 0; i < gw->cfg->nuplinks; i++)
        until = earliest(until, gw->next_heartbeat[i]);
    if (gw->watchdog_ms)
        until = earliest(until, gw->next_watchdog);
    if (!gw->ready)
        until = earliest(until, now_mono + busy_ms);
    return until <= now_mono ? 0 : (int)(until - now_mono);
}

void gateway_step(struct gateway *gw, int wait_ms)
{
    struct bus_msg *m = queue_pop(gw->queue, wait_ms);
    for (int n = 0; m && n < GW_BATCH_MAX; n++) {
        handle_msg(gw, m);
        bus_msg_free(m);
        m = n + 1 < GW_BATCH_MAX ? queue_pop(gw->queue, 0) : NULL;
    }
    struct ev_time now = gw_now();
    engine_tick(gw->engine, now, &gw->events);
    delivery_receipts(gw);
    delivery_inbound(gw);
    delivery_check_acks(gw, now.mono_ms);
    delivery_dispatch(gw);
    control_poll(gw->control, on_control, gw);
    web_poll(gw->web, gw);
    if (now.mono_ms >= gw->next_prune) {
        /* Again in a second while there is work, else every ten. */
        gw->next_prune = now.mono_ms + (evlog_prune(gw->evlog, now.wall_ms) > 0 ? 1000 : 10000);
    }
    if (event_seq_reserve_ahead(&gw->seq) < 0)
        log_limited(&gw->seq_limit, now.mono_ms, LOG_LVL_ERR,
                    "cannot save event sequence numbers in %s: %s", gw->seq.path, strerror(errno));
    for (size_t i = 0; i < gw->cfg->nuplinks; i++)
        uplink_tick(gw->uplinks[i], now.mono_ms);
    delivery_heartbeats(gw, now.mono_ms);
    service_manager(gw, now.mono_ms);
}
