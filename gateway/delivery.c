/*
 * Delivery: events stamped with their sequence numbers, logged, stored in the
 * event log and handed to every uplink that wants them, most urgent first;
 * retained detector states after them; acknowledgements from receiving
 * centres and the resending of fire alarms they have not acknowledged;
 * remote commands and their responses; heartbeats.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cap.h"
#include "command.h"
#include "gateway.h"
#include "outbox.h"
#include "payload.h"
#include "util.h"

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
    /*
     * Only sent while connected, and at QoS 0: a (re)connect sends every state
     * again, so a state lost with a dropped connection is replaced at once.
     * QoS 1 stays for what must arrive (events), which keeps the number of
     * QoS 1 messages Paho has on the wire when a broker goes away small
     * (docs/mqtt-api.md, "Known library fault").
     */
    if (uplink_publish_live(gw->uplinks[up], topic, json, 0, true) == 0) {
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
 * Store an event's message (subtopic "event", or "cap" for its CAP document)
 * for one uplink in the durable outbox; without an outbox (it could not be
 * opened or the disk refuses), hand it straight to Paho's memory queue rather
 * than lose it. 0, or -1 when neither took it.
 */
static int enqueue(struct gateway *gw, size_t up, int prio, uint64_t seq, const char *event_id,
                   const char *subtopic, const char *json)
{
    gw->store_tries++;
    const struct cfg_uplink *uc = &gw->cfg->uplinks[up];
    char err[512];
    bool dropped = false;
    if (gw->outbox && outbox_put(gw->outbox, uc->id, (size_t)uc->max_buffered, prio, seq, event_id,
                                 subtopic, json, &dropped, err, sizeof(err)) == 0) {
        if (dropped)
            log_limited(&gw->outbox_limit, mono_ms(), LOG_LVL_WARN,
                        "uplink %s: the outbox holds max_buffered = %d events; the oldest "
                        "least urgent one was dropped to make room",
                        uc->id, uc->max_buffered);
        gw->store_ok++;
        gw->flight[up].drained = false;
        return 0;
    }
    if (gw->outbox)
        log_limited(&gw->outbox_limit, mono_ms(), LOG_LVL_ERR,
                    "%s; event #%llu (%s) waits in memory only", err, (unsigned long long)seq,
                    subtopic);
    return uplink_publish(gw->uplinks[up], subtopic, json, 1, false);
}

static void forget_in_flight(struct gateway *gw, size_t up, size_t k)
{
    struct in_flight *f = &gw->flight[up];
    free(f->event_id[k]);
    f->n--;
    f->id[k] = f->id[f->n];
    f->sent_mono[k] = f->sent_mono[f->n];
    f->event_id[k] = f->event_id[f->n];
}

void delivery_flush(struct gateway *gw, size_t up)
{
    struct in_flight *f = &gw->flight[up];
    if (!gw->outbox || !uplink_connected(gw->uplinks[up]))
        return;
    int64_t now = mono_ms();
    /*
     * After a reconnect, or when the broker never answered, send again what
     * was in flight: at least once, receivers deduplicate by event_id.
     */
    unsigned connects = uplink_connections(gw->uplinks[up]);
    bool resend_all = connects != f->connects;
    f->connects = connects;
    if (resend_all)
        uplink_untrack_all(gw->uplinks[up]);
    for (size_t k = f->n; k-- > 0;)
        if (resend_all || now - f->sent_mono[k] > FLIGHT_TIMEOUT_MS) {
            forget_in_flight(gw, up, k);
            f->drained = false;
        }
    /* Nothing stored that is not already with the broker: no query on every loop turn. */
    if (f->n >= FLIGHT_MAX || f->drained)
        return;
    struct outbox_item items[FLIGHT_MAX];
    size_t want = FLIGHT_MAX - f->n;
    int n = outbox_next(gw->outbox, gw->cfg->uplinks[up].id, f->id, f->n, items, want);
    f->drained = n >= 0 && (size_t)n < want;
    for (int i = 0; i < n; i++) {
        if (uplink_publish_tracked(gw->uplinks[up], items[i].subtopic, items[i].payload,
                                   items[i].id, gw->delivered) == 0) {
            f->id[f->n] = items[i].id;
            f->sent_mono[f->n] = now;
            /* The event log records the event's delivery, not its CAP copy's as well. */
            bool cap = strcmp(items[i].subtopic, "cap") == 0;
            f->event_id[f->n++] = cap ? NULL : items[i].event_id;
            if (!cap)
                items[i].event_id = NULL;
        } else {
            f->drained = false; /* not handed over: try again on the next turn */
        }
        outbox_item_clear(&items[i]);
    }
}

/* The brokers' receipts: delivered messages leave the outbox, failed ones are sent again. */
void delivery_receipts(struct gateway *gw)
{
    struct uplink_done *d;
    for (int n = 0; n < GW_BATCH_MAX && (d = queue_pop(gw->delivered, 0)) != NULL; n++) {
        struct in_flight *f = &gw->flight[d->uplink];
        for (size_t k = 0; k < f->n; k++) {
            if (f->id[k] != d->tag)
                continue;
            if (!d->ok)
                f->drained = false; /* still stored: sent again */
            if (d->ok) {
                outbox_done(gw->outbox, d->tag);
                if (f->event_id[k])
                    evlog_add_delivery(gw->evlog, wall_ms(), f->event_id[k],
                                       gw->cfg->uplinks[d->uplink].id, "delivered", NULL);
            }
            forget_in_flight(gw, d->uplink, k);
            break;
        }
        free(d);
    }
}

/*
 * The outbox or the event log refused a write (disk full, failing card) or
 * took one again: a storage fault, raised and restored on every uplink, so
 * the fire police know events are held only in memory.
 */
static void storage_state(struct gateway *gw, bool failed, bool succeeded)
{
    bool bad = failed ? true : succeeded ? false : gw->storage_fault;
    if (bad == gw->storage_fault)
        return;
    gw->storage_fault = bad;
    struct event ev = {.kind = bad ? EV_FAULT : EV_FAULT_RESTORE,
                       .source = SRC_GATEWAY,
                       .detector = -1,
                       .device = -1,
                       .bus = -1,
                       .fault = FAULT_STORAGE,
                       .rule = "storage",
                       .t = gw_now()};
    snprintf(ev.detail, sizeof(ev.detail), "%s",
             bad ? "events cannot be written to the state directory (outbox or event log): they "
                   "are sent from memory and would be lost in a power cut"
                 : "events are written to the state directory again");
    log_msg(bad ? LOG_LVL_ERR : LOG_LVL_NOTICE, "storage: %s", ev.detail);
    evlist_push(&gw->events, &ev);
}

/*
 * Send a batch of events: most urgent first, each stamped, logged and
 * published before any retained state, so telemetry never delays an alarm.
 */
void delivery_dispatch(struct gateway *gw)
{
    struct evlist *l = &gw->events;
    if (l->count)
        gw->states_dirty = true;
    unsigned long tries0 = gw->store_tries, ok0 = gw->store_ok;
    bool log_failed = false, log_ok = false;
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
        char *cap = NULL; /* made for the first uplink that asks for it */
        bool needs_ack = !ev->test && (ev->kind == EV_FIRE_ALARM || ev->kind == EV_FIRE_CONFIRMED);
        long zone = ev->has_zone        ? (long)ev->zone
                    : ev->detector >= 0 ? (long)gw->cfg->detectors[ev->detector].zone
                                        : -1;
        for (size_t up = 0; up < gw->cfg->nuplinks; up++) {
            if (!cfg_uplink_wants(gw->cfg, up, ev->kind, zone >= 0, (size_t)(zone < 0 ? 0 : zone),
                                  ev->test))
                continue;
            int prio = ev_priority(ev->kind);
            int rc = enqueue(gw, up, prio, ev->seq, ev->id, "event", json);
            evlog_add_delivery(gw->evlog, ev->t.wall_ms, ev->id, gw->cfg->uplinks[up].id,
                               rc == 0 ? "queued" : "failed", NULL);
            if (rc < 0)
                log_err("uplink %s: event #%llu (%s) was NOT accepted for delivery%s",
                        gw->cfg->uplinks[up].id, (unsigned long long)ev->seq,
                        ev_kind_name(ev->kind), needs_ack ? "; it will be sent again" : "");
            /* Refused or not, an alarm waits for its acknowledgement and is sent again. */
            if (needs_ack && gw->acks[up]) {
                acktrack_sent(gw->acks[up], ev->id, ev->seq, json, mono_ms());
                outbox_ack_wait(gw->outbox, gw->cfg->uplinks[up].id, ev->id, ev->seq, json);
            }
            /* Its CAP document follows it through the same outbox, at the same priority. */
            if (gw->cfg->uplinks[up].cap && cap_wanted(ev)) {
                if (!cap)
                    cap = cap_alert(gw->cfg, ev);
                if (enqueue(gw, up, prio, ev->seq, ev->id, "cap", cap) < 0)
                    log_err("uplink %s: the CAP document of event #%llu was NOT accepted for "
                            "delivery",
                            gw->cfg->uplinks[up].id, (unsigned long long)ev->seq);
            }
            /* A fire alarm goes to the broker before the rest of the batch is even stored. */
            if (prio == 0)
                delivery_flush(gw, up);
        }
        if (gw->evlog) {
            bool logged = evlog_add_event(gw->evlog, gw->cfg, ev, json) == 0;
            log_failed |= !logged;
            log_ok |= logged;
        }
        web_event(gw->web, gw->cfg, ev, json);
        free(json);
        free(cap);
    }
    evlist_clear(l);
    unsigned long stored = gw->store_ok - ok0;
    bool failed = gw->store_tries - tries0 > stored || log_failed || !gw->outbox || !gw->evlog;
    storage_state(gw, failed, !failed && (stored > 0 || log_ok));
    if (l->count)
        delivery_dispatch(gw); /* the storage fault itself, at once */
    for (size_t up = 0; up < gw->cfg->nuplinks; up++)
        delivery_flush(gw, up);
    /*
     * States after events: telemetry never delays an alarm. They are compared
     * only when something could have changed them (an event, a detector's
     * first answer, a reconnect), and once a second whatever happened.
     */
    int64_t now = mono_ms();
    bool reconnected = false;
    for (size_t up = 0; up < gw->cfg->nuplinks; up++)
        reconnected |= uplink_connections(gw->uplinks[up]) != gw->seen_connects[up];
    if (gw->states_dirty || reconnected || now >= gw->next_states) {
        gw->states_dirty = false;
        gw->next_states = now + 1000;
        publish_states(gw);
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
                       .t = gw_now()};
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
        outbox_ack_done(gw->outbox, uid, id->valuestring);
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
        int done = command_execute(gw->engine, gw->cfg, cmd.line, cmd.user, gw_now(), &gw->events,
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
        delivery_dispatch(gw); /* the command's events go out before its response */
    }
    if (json)
        uplink_publish(gw->uplinks[m->uplink], "command/response", json, 1, false);
    free(json);
}

void delivery_inbound(struct gateway *gw)
{
    struct uplink_msg *m;
    for (int n = 0; n < GW_BATCH_MAX && (m = queue_pop(gw->inbox, 0)) != NULL; n++) {
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
void delivery_check_acks(struct gateway *gw, int64_t now_mono)
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
            int rc = enqueue(gw, up, 0, due[i]->seq, due[i]->event_id, "event", due[i]->json);
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

void delivery_heartbeats(struct gateway *gw, int64_t now_mono)
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
        uplink_publish_live(gw->uplinks[i], "heartbeat", json, 0, false);
    }
    free(json);
}
