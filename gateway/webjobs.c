/*
 * The main thread's half of the web server: the jobs handler threads queue
 * (operator actions through command.c, walk tests, configuration edits
 * through siteedit.c and the reload, probes and scans on the bus pollers),
 * the walk test's list of detectors seen, and the live state and events
 * handed to the streams. Everything here runs in web_poll() or web_event(),
 * between two turns of the main loop, so it may use the engine and the
 * config freely; only the queue, the answers and what streams read are
 * shared, under w->mu.
 */
#include "webjobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "gateway.h"
#include "probe.h"
#include "util.h"
#include "web.h"

/* A page that has not read the state for this long is no longer looking. */
#define VIEWER_GONE_MS 60000

static int64_t iso_or_null(cJSON *o, const char *key, int64_t wall)
{
    if (wall <= 0) {
        cJSON_AddNullToObject(o, key);
        return 0;
    }
    char buf[40];
    format_utc_ms(wall, buf, sizeof(buf));
    cJSON_AddStringToObject(o, key, buf);
    return wall;
}

/* Text of a cJSON object, which is deleted. */
char *webjob_text(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s ? s : xstrdup("{}");
}

char *webjob_error(const char *field, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    if (field && *field)
        cJSON_AddStringToObject(o, "field", field);
    return webjob_text(o);
}

char *webjob_ok(const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddTrueToObject(o, "ok");
    if (msg)
        cJSON_AddStringToObject(o, "message", msg);
    return webjob_text(o);
}

void webjob_free(struct job *j)
{
    if (!j)
        return;
    free(j->text);
    free(j->result);
    free(j->channels);
    free(j->answer);
    free(j);
}

void webjob_finish(struct web *w, struct job *j, int status, char *json)
{
    pthread_mutex_lock(&w->mu);
    if (j->abandoned) {
        pthread_mutex_unlock(&w->mu);
        free(json);
        webjob_free(j);
        return;
    }
    j->status = status;
    j->answer = json;
    j->done = true;
    pthread_cond_broadcast(&w->job_cond);
    pthread_mutex_unlock(&w->mu);
}

static long find_zone(const struct cfg *cfg, const char *id)
{
    for (size_t z = 0; z < cfg->nzones; z++)
        if (strcmp(cfg->zones[z].id, id) == 0)
            return (long)z;
    return -1;
}

static const char *after_prefix(const char *reply)
{
    if (strncmp(reply, "ok ", 3) == 0)
        return reply + 3;
    if (strncmp(reply, "error: ", 7) == 0)
        return reply + 7;
    return reply;
}

/* Run an operator command line for j's user; 0 or -1, the reply in reply. */
static int execute(struct gateway *gw, const struct job *j, char *reply, size_t len)
{
    int rc =
        command_execute(gw->engine, gw->cfg, j->text, j->origin, gw_now(), &gw->events, reply, len);
    const char *msg = after_prefix(reply);
    log_notice("web: %s by %s: %s", j->text, j->origin, rc == 0 ? "done" : msg);
    evlog_add_command(gw->evlog, wall_ms(), j->origin, j->text, rc == 0 ? "done" : msg);
    /* The command's events go out now, not at the next turn. */
    delivery_dispatch(gw);
    return rc;
}

static char *walk_json(const struct web *w, const struct cfg *cfg)
{
    const struct walk *wk = &w->walk;
    cJSON *o = cJSON_CreateObject();
    long z = wk->zone[0] ? find_zone(cfg, wk->zone) : -1;
    if (wk->zone[0])
        cJSON_AddStringToObject(o, "zone", wk->zone);
    else
        cJSON_AddNullToObject(o, "zone");
    if (z >= 0)
        cJSON_AddStringToObject(o, "name", cfg->zones[z].name);
    cJSON_AddBoolToObject(o, "active", wk->active);
    iso_or_null(o, "started", wk->started_wall);
    iso_or_null(o, "until", wk->until_wall);
    cJSON *list = cJSON_AddArrayToObject(o, "detectors");
    size_t tested = 0, total = 0;
    for (size_t d = 0; z >= 0 && d < cfg->ndetectors; d++) {
        if (cfg->detectors[d].zone != (size_t)z)
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", cfg->detectors[d].id);
        cJSON_AddStringToObject(e, "location",
                                cfg->detectors[d].location ? cfg->detectors[d].location : "");
        cJSON_AddStringToObject(e, "type", detector_type_name(cfg->detectors[d].type));
        int64_t at = 0;
        for (size_t i = 0; i < wk->nhits; i++)
            if (strcmp(wk->hits[i].id, cfg->detectors[d].id) == 0)
                at = wk->hits[i].at;
        tested += iso_or_null(e, "tested_at", at) > 0;
        total++;
        cJSON_AddItemToArray(list, e);
    }
    cJSON_AddNumberToObject(o, "tested", (double)tested);
    cJSON_AddNumberToObject(o, "total", (double)total);
    return webjob_text(o);
}

static void run_action(struct web *w, struct gateway *gw, struct job *j)
{
    const struct cfg *cfg = gw->cfg;
    if (strcmp(j->scope, "zone") == 0 && find_zone(cfg, j->id) < 0) {
        char *msg = xasprintf("no zone \"%s\" in this building", j->id);
        webjob_finish(w, j, 404, webjob_error("id", msg));
        free(msg);
        return;
    }
    if (strcmp(j->scope, "detector") == 0 && cfg_find_detector(cfg, j->id) < 0) {
        char *msg = xasprintf("no detector \"%s\" in this building", j->id);
        webjob_finish(w, j, 404, webjob_error("id", msg));
        free(msg);
        return;
    }
    char reply[1024];
    int rc = execute(gw, j, reply, sizeof(reply));
    webjob_finish(w, j, rc == 0 ? 200 : 409,
                  rc == 0 ? webjob_ok(after_prefix(reply))
                          : webjob_error(NULL, after_prefix(reply)));
}

static void run_walk(struct web *w, struct gateway *gw, struct job *j)
{
    struct walk *wk = &w->walk;
    char reply[1024];
    if (j->kind == JOB_WALK_GET) {
        webjob_finish(w, j, 200, walk_json(w, gw->cfg));
        return;
    }
    if (j->kind == JOB_WALK_STOP) {
        if (!wk->active) {
            webjob_finish(w, j, 409, webjob_error(NULL, "no walk test is running"));
            return;
        }
        free(j->text);
        j->text = xasprintf("test off zone %s", wk->zone);
        int rc = execute(gw, j, reply, sizeof(reply));
        wk->active = false;
        webjob_finish(w, j, rc == 0 ? 200 : 409,
                      rc == 0 ? walk_json(w, gw->cfg) : webjob_error(NULL, after_prefix(reply)));
        return;
    }
    if (find_zone(gw->cfg, j->id) < 0) {
        char *msg = xasprintf("no zone \"%s\" in this building", j->id);
        webjob_finish(w, j, 404, webjob_error("zone", msg));
        free(msg);
        return;
    }
    if (wk->active && strcmp(wk->zone, j->id) != 0) {
        char *msg = xasprintf("a walk test of zone %s is running; end it first", wk->zone);
        webjob_finish(w, j, 409, webjob_error("zone", msg));
        free(msg);
        return;
    }
    int rc = execute(gw, j, reply, sizeof(reply));
    if (rc < 0) {
        webjob_finish(w, j, 409, webjob_error(NULL, after_prefix(reply)));
        return;
    }
    int64_t now = wall_ms();
    wk->active = true;
    strlcpy_fg(wk->zone, j->id, sizeof(wk->zone));
    wk->started_wall = now;
    wk->until_wall = now + j->ms;
    wk->nhits = 0;
    webjob_finish(w, j, 200, walk_json(w, gw->cfg));
}

static void run_config(struct web *w, struct gateway *gw, struct job *j)
{
    struct siteedit_result res = {0};
    char *text = siteedit_read(gw->cfg->path, &res);
    if (!text) {
        webjob_finish(w, j, 500, webjob_text(siteedit_result_json(&res)));
    } else {
        webjob_finish(w, j, 200, webjob_text(siteedit_entities(text, gw->cfg)));
        free(text);
    }
    siteedit_result_free(&res);
}

/* A handler has saved an edit of the site file: apply it now. */
static void run_reload(struct web *w, struct gateway *gw, struct job *j)
{
    char err[2048];
    if (gateway_reload(gw, j->origin, err, sizeof(err)) < 0) {
        char *result = xasprintf("not applied: %s", err);
        evlog_add_command(gw->evlog, wall_ms(), j->origin, j->text, result);
        free(result);
        webjob_finish(w, j, 409, webjob_error(NULL, err));
        return;
    }
    log_notice("web: %s by %s: saved and applied", j->text, j->origin);
    evlog_add_command(gw->evlog, wall_ms(), j->origin, j->text, "done");
    webjob_finish(w, j, 200, webjob_ok(NULL));
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Probes and scans are in the event log too: they put traffic on a live bus. */
static void record_probe(struct gateway *gw, const struct job *j, const char *result)
{
    char what[160];
    if (j->kind == JOB_SCAN)
        snprintf(what, sizeof(what), "scan bus %s units %d..%d", j->id, j->from, j->to);
    else
        snprintf(what, sizeof(what), "probe device %s", j->id);
    evlog_add_command(gw->evlog, wall_ms(), j->origin, what, result);
}

/* Start a probe or scan on its bus's poller; the answer comes with the reply. */
static void run_probe(struct web *w, struct gateway *gw, struct job *j)
{
    const struct cfg *cfg = gw->cfg;
    struct bus_probe_req req;
    memset(&req, 0, sizeof(req));
    char err[256];
    long bus;
    if (j->kind == JOB_PROBE) {
        long d = cfg_find_device(cfg, j->id);
        if (d < 0) {
            char *msg = xasprintf("no device \"%s\" in this building", j->id);
            webjob_finish(w, j, 404, webjob_error("device", msg));
            free(msg);
            return;
        }
        const struct cfg_device *dv = &cfg->devices[d];
        bus = (long)dv->bus;
        j->channels = xcalloc(cfg->ndetectors + 1, sizeof(int));
        for (size_t i = 0; i < cfg->ndetectors; i++) {
            bool seen = false;
            for (size_t k = 0; k < j->nchannels; k++)
                seen = seen || j->channels[k] == cfg->detectors[i].channel;
            if (cfg->detectors[i].device == (size_t)d && !seen)
                j->channels[j->nchannels++] = cfg->detectors[i].channel;
        }
        if (!j->nchannels)
            j->channels[j->nchannels++] = 1;
        qsort(j->channels, j->nchannels, sizeof(int), cmp_int);
        strlcpy_fg(j->profile, dv->profile->name, sizeof(j->profile));
        if (probe_plan(dv->profile, j->channels, j->nchannels, cfg->buses[bus].max_gap, &req, err,
                       sizeof(err)) < 0) {
            webjob_finish(w, j, 500, webjob_error(NULL, err));
            return;
        }
        req.kind = BUS_PROBE_READ;
        req.unit = dv->unit;
        req.retries = dv->retries;
        j->timeout_ms = dv->timeout_ms;
    } else {
        bus = cfg_find_bus(cfg, j->id);
        if (bus < 0) {
            char *msg = xasprintf("no bus \"%s\" in this building", j->id);
            webjob_finish(w, j, 404, webjob_error("bus", msg));
            free(msg);
            return;
        }
        const struct cfg_bus *b = &cfg->buses[bus];
        if (!bus_unit_valid(b, j->from) || !bus_unit_valid(b, j->to)) {
            webjob_finish(w, j, 400,
                          webjob_error(bus_unit_valid(b, j->from) ? "to" : "from",
                                       b->type == BUS_RTU
                                           ? "unit ids on an RS-485 bus are 1..247"
                                           : "unit ids on a TCP bus are 0..247 or 255"));
            return;
        }
        req.kind = BUS_PROBE_SCAN;
        req.from = j->from;
        req.to = j->to;
        req.scan_read = (struct bus_block){REG_HOLDING, 0, 1};
        /* Ask for a register the bus's devices have, so a real device answers with data. */
        for (size_t i = 0; i < cfg->ndevices; i++) {
            const struct profile *p = cfg->devices[i].profile;
            if (cfg->devices[i].bus == (size_t)bus && p && p->npoints) {
                req.scan_read = (struct bus_block){p->points[0].table, p->points[0].address, 1};
                break;
            }
        }
        j->timeout_ms = j->ms ? j->ms : b->timeout_ms;
    }
    if (j->timeout_ms > BUS_PROBE_MAX_TIMEOUT_MS)
        j->timeout_ms = BUS_PROBE_MAX_TIMEOUT_MS;
    req.timeout_ms = j->timeout_ms;
    req.id = ++w->probe_seq;
    strlcpy_fg(j->bus_id, cfg->buses[bus].id, sizeof(j->bus_id));
    struct bus_poller *p = gw->pollers ? gw->pollers[bus] : NULL;
    if (!p) {
        char *msg = xasprintf("bus %s is not being polled", j->bus_id);
        webjob_finish(w, j, 503, webjob_error(NULL, msg));
        free(msg);
        return;
    }
    if (bus_probe_submit(p, &req, w->probe_q, err, sizeof(err)) < 0) {
        record_probe(gw, j, err);
        webjob_finish(w, j, 503, webjob_error(NULL, err));
        return;
    }
    j->probe_id = req.id;
    long requests = j->kind == JOB_SCAN ? j->to - j->from + 1 : (long)req.nblocks;
    pthread_mutex_lock(&w->mu);
    j->wait_ms = WEB_ANSWER_MS + requests * (j->timeout_ms + 100) * (req.retries + 1);
    j->next = w->inflight;
    w->inflight = j;
    pthread_mutex_unlock(&w->mu);
}

/* A probe's reply came back from its poller. */
static void probe_done(struct web *w, struct gateway *gw, struct bus_probe_reply *rep)
{
    pthread_mutex_lock(&w->mu);
    struct job *j = NULL;
    for (struct job **p = &w->inflight; *p; p = &(*p)->next) {
        if ((*p)->probe_id == rep->id) {
            j = *p;
            *p = j->next;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (!j)
        return;
    record_probe(gw, j, rep->rc == 0 ? "done" : rep->err);
    if (j->kind == JOB_SCAN) {
        char *json = probe_scan_json(rep, j->timeout_ms);
        webjob_finish(w, j, 200, json ? json : webjob_error(NULL, "out of memory"));
        return;
    }
    long d = cfg_find_device(gw->cfg, j->id);
    const struct profile *prof = d >= 0 ? gw->cfg->devices[d].profile : NULL;
    if (!prof || strcmp(prof->name, j->profile) != 0) {
        webjob_finish(w, j, 409,
                      webjob_error(NULL, "the configuration changed during the probe; probe "
                                         "again"));
        return;
    }
    size_t n = probe_value_count(prof, j->nchannels);
    struct probe_value *v = xcalloc(n ? n : 1, sizeof(*v));
    n = probe_decode(prof, j->channels, j->nchannels, rep, v);
    char *json = probe_read_json(j->id, prof, rep, v, n, j->timeout_ms);
    free(v);
    webjob_finish(w, j, 200, json ? json : webjob_error(NULL, "out of memory"));
}

/* Probes whose requester gave up are cancelled on their poller. */
static void cancel_abandoned(struct web *w, struct gateway *gw)
{
    pthread_mutex_lock(&w->mu);
    for (struct job *j = w->inflight; j; j = j->next) {
        if (!j->abandoned || j->cancelled)
            continue;
        long b = cfg_find_bus(gw->cfg, j->bus_id);
        if (b >= 0 && gw->pollers && gw->pollers[b])
            bus_probe_cancel(gw->pollers[b], j->probe_id);
        j->cancelled = true; /* its reply still comes, and frees it */
    }
    pthread_mutex_unlock(&w->mu);
}

static void run(struct web *w, struct gateway *gw, struct job *j)
{
    switch (j->kind) {
    case JOB_RECORD:
        log_info("web: %s by %s: %s", j->text, j->origin, j->result);
        evlog_add_command(gw->evlog, wall_ms(), j->origin, j->text, j->result);
        webjob_free(j);
        break;
    case JOB_ACTION:
        run_action(w, gw, j);
        break;
    case JOB_WALK_START:
    case JOB_WALK_GET:
    case JOB_WALK_STOP:
        run_walk(w, gw, j);
        break;
    case JOB_CONFIG_GET:
        run_config(w, gw, j);
        break;
    case JOB_RELOAD:
        run_reload(w, gw, j);
        break;
    case JOB_PROBE:
    case JOB_SCAN:
        run_probe(w, gw, j);
        break;
    }
}

void web_poll(struct web *w, struct gateway *gw)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    struct job *jobs = w->queue;
    w->queue = NULL;
    w->queue_tail = &w->queue;
    w->queued = 0;
    unsigned long dropped = w->records_dropped;
    w->records_dropped = 0;
    for (struct job *j = jobs; j; j = j->next)
        j->started = true;
    pthread_mutex_unlock(&w->mu);
    if (dropped)
        log_warn("web: %lu records of web requests were not written to the event log: too many "
                 "requests at once",
                 dropped);
    for (struct job *j = jobs, *next; j; j = next) {
        next = j->next;
        run(w, gw, j);
    }
    struct bus_probe_reply *rep;
    for (int n = 0; n < 16 && (rep = queue_pop(w->probe_q, 0)) != NULL; n++) {
        probe_done(w, gw, rep);
        free(rep);
    }
    cancel_abandoned(w, gw);
    struct ev_time now = gw_now();
    if (w->walk.active && now.wall_ms >= w->walk.until_wall + 5000)
        w->walk.active = false; /* its test_mode_off event was missed */
    /* Fresh readings only for someone looking: a building nobody views costs nothing. */
    pthread_mutex_lock(&w->mu);
    bool viewed = w->last_read_mono && now.mono_ms - w->last_read_mono < VIEWER_GONE_MS;
    pthread_mutex_unlock(&w->mu);
    if (snapshot_due(w->snap, gw, now.mono_ms, viewed)) {
        char *state = snapshot_json(w->snap, gw, now);
        if (state) {
            pthread_mutex_lock(&w->mu);
            free(w->state);
            w->state = state;
            w->state_ver++;
            pthread_cond_broadcast(&w->feed_cond);
            pthread_mutex_unlock(&w->mu);
        }
    }
}

void web_event(struct web *w, const struct cfg *cfg, const struct event *ev, const char *json)
{
    if (!w || !json)
        return;
    snapshot_observe(w->snap, cfg, ev);
    struct walk *wk = &w->walk;
    if (wk->active && ev->kind == EV_TEST_ALARM && ev->detector >= 0 &&
        (size_t)ev->detector < cfg->ndetectors &&
        strcmp(cfg->zones[cfg->detectors[ev->detector].zone].id, wk->zone) == 0) {
        const char *id = cfg->detectors[ev->detector].id;
        bool seen = false;
        for (size_t i = 0; i < wk->nhits && !seen; i++)
            seen = strcmp(wk->hits[i].id, id) == 0;
        if (!seen) {
            wk->hits = xrealloc(wk->hits, (wk->nhits + 1) * sizeof(*wk->hits));
            strlcpy_fg(wk->hits[wk->nhits].id, id, sizeof(wk->hits[0].id));
            wk->hits[wk->nhits++].at = ev->t.wall_ms;
        }
    }
    if (wk->active && ev->kind == EV_TEST_MODE_OFF && ev->source == SRC_ZONE && ev->has_zone &&
        ev->zone < cfg->nzones && strcmp(cfg->zones[ev->zone].id, wk->zone) == 0)
        wk->active = false;
    pthread_mutex_lock(&w->mu);
    free(w->ring[w->ev_next % EVENT_RING]);
    w->ring[w->ev_next % EVENT_RING] = xstrdup(json);
    w->ev_next++;
    pthread_cond_broadcast(&w->feed_cond);
    pthread_mutex_unlock(&w->mu);
}
