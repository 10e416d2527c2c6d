/*
 * The JSON text of every MQTT message the gateway publishes. The field names
 * and types here are the public API described in docs/mqtt-api.md and checked
 * by the JSON Schemas in docs/schema/; change the three together. Everything is built with
 * cJSON and printed unformatted. Two guarantees matter to consumers: numbers
 * are always valid JSON (a NaN or infinity becomes null, with a log line), and
 * strings are always valid UTF-8 (a detail cut in the middle of a character
 * gets U+FFFD instead of breaking the consumer's decoder).
 */

#include "payload.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Tracks whether every cJSON allocation of one message succeeded. */
struct jb {
    bool ok;
};

static cJSON *check(struct jb *b, cJSON *item)
{
    if (!item)
        b->ok = false;
    return item;
}

/* A string member; NULL becomes JSON null. */
static void put_str(struct jb *b, cJSON *o, const char *key, const char *s)
{
    if (!s) {
        check(b, cJSON_AddNullToObject(o, key));
        return;
    }
    char *fixed = utf8_repaired(s);
    check(b, cJSON_AddStringToObject(o, key, fixed ? fixed : s));
    free(fixed);
}

/* A string from a fixed-size array of an event, which is never trusted to be terminated. */
static void put_fixed(struct jb *b, cJSON *o, const char *key, const char *field, size_t size)
{
    size_t len = strnlen(field, size);
    char *s = xmalloc(len + 1);
    memcpy(s, field, len);
    s[len] = '\0';
    put_str(b, o, key, s);
    free(s);
}

static void put_null(struct jb *b, cJSON *o, const char *key)
{
    check(b, cJSON_AddNullToObject(o, key));
}

static void put_bool(struct jb *b, cJSON *o, const char *key, bool v)
{
    check(b, cJSON_AddBoolToObject(o, key, v));
}

/* A number the caller has checked is finite. */
static void put_num(struct jb *b, cJSON *o, const char *key, double v)
{
    check(b, cJSON_AddNumberToObject(o, key, v));
}

/* Integers go out as exact decimal text: a double would round above 2^53. */
static void put_u64(struct jb *b, cJSON *o, const char *key, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    check(b, cJSON_AddRawToObject(o, key, text));
}

static void put_i64(struct jb *b, cJSON *o, const char *key, int64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRId64, v);
    check(b, cJSON_AddRawToObject(o, key, text));
}

static void put_finite_or_null(struct jb *b, cJSON *o, const char *key, double v, const char *what)
{
    if (isfinite(v)) {
        put_num(b, o, key, v);
        return;
    }
    log_warn("payload: %s is not a finite number (%f); sent as null", what, v);
    put_null(b, o, key);
}

static void put_ts(struct jb *b, cJSON *o, const char *key, int64_t wall)
{
    char ts[40];
    format_utc_ms(wall, ts, sizeof(ts));
    put_str(b, o, key, ts);
}

static cJSON *put_obj(struct jb *b, cJSON *o, const char *key)
{
    return check(b, cJSON_AddObjectToObject(o, key));
}

/*
 * {"value": v, "unit": u}, or null when the number is not finite or the
 * detector type has no unit (a panel zone reports states, not readings).
 */
static void put_quantity(struct jb *b, cJSON *o, const char *key, double v, const char *unit,
                         const char *what)
{
    if (!isfinite(v)) {
        log_warn("payload: %s %s is not a finite number (%f); sent as null", what, key, v);
        put_null(b, o, key);
        return;
    }
    if (!unit || !*unit) {
        log_warn("payload: %s has a %s but no unit to give it; sent as null", what, key);
        put_null(b, o, key);
        return;
    }
    cJSON *q = put_obj(b, o, key);
    put_num(b, q, "value", v);
    put_str(b, q, "unit", unit);
}

static void put_detector(struct jb *b, cJSON *o, const struct cfg *cfg,
                         const struct cfg_detector *d)
{
    cJSON *j = put_obj(b, o, "detector");
    put_str(b, j, "id", d->id);
    put_str(b, j, "type", detector_type_name(d->type));
    put_i64(b, j, "floor", d->floor);
    if (d->zone < cfg->nzones) {
        cJSON *z = put_obj(b, j, "zone");
        put_str(b, z, "id", cfg->zones[d->zone].id);
        put_str(b, z, "name", cfg->zones[d->zone].name ? cfg->zones[d->zone].name : "");
    } else {
        log_err("payload: detector %s refers to zone index %zu of %zu; zone sent as null", d->id,
                d->zone, cfg->nzones);
        put_null(b, j, "zone");
    }
    put_str(b, j, "location", d->location ? d->location : "");
}

static cJSON *new_message(struct jb *b, const char *type)
{
    cJSON *root = check(b, cJSON_CreateObject());
    put_i64(b, root, "schema", FIREGW_SCHEMA_VERSION);
    put_str(b, root, "type", type);
    return root;
}

/* Print and free root; NULL (logged) if any allocation along the way failed. */
static char *finish(struct jb *b, cJSON *root, const char *what)
{
    char *text = b->ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        log_err("payload: out of memory building the %s message", what);
    return text;
}

/* Event indices are -1 for "none"; anything else outside the table is a bug upstream. */
static bool index_ok(long idx, size_t count)
{
    return idx >= 0 && (unsigned long)idx < count;
}

char *payload_event(const struct cfg *cfg, const struct event *ev)
{
    struct jb b = {true};
    char what[64];
    snprintf(what, sizeof(what), "event #%" PRIu64, ev->seq);

    cJSON *root = new_message(&b, "event");
    put_fixed(&b, root, "event_id", ev->id, sizeof(ev->id));
    put_u64(&b, root, "seq", ev->seq);
    put_ts(&b, root, "ts", ev->t.wall_ms);
    put_str(&b, root, "building", cfg->site.id);
    put_str(&b, root, "kind", ev_kind_name(ev->kind));
    put_bool(&b, root, "real", !ev->test);
    put_bool(&b, root, "test", ev->test);
    put_str(&b, root, "source", ev_source_name(ev->source));

    const struct cfg_detector *det = NULL;
    if (index_ok(ev->detector, cfg->ndetectors)) {
        det = &cfg->detectors[ev->detector];
        put_detector(&b, root, cfg, det);
    } else {
        if (ev->detector != -1)
            log_err("payload: %s names detector index %ld of %zu; detector sent as null", what,
                    ev->detector, cfg->ndetectors);
        put_null(&b, root, "detector");
    }

    if (index_ok(ev->device, cfg->ndevices)) {
        const struct cfg_device *dev = &cfg->devices[ev->device];
        cJSON *j = put_obj(&b, root, "device");
        put_str(&b, j, "id", dev->id);
        put_i64(&b, j, "unit", dev->unit);
    } else {
        if (ev->device != -1)
            log_err("payload: %s names device index %ld of %zu; device sent as null", what,
                    ev->device, cfg->ndevices);
        put_null(&b, root, "device");
    }

    if (index_ok(ev->bus, cfg->nbuses)) {
        cJSON *j = put_obj(&b, root, "bus");
        put_str(&b, j, "id", cfg->buses[ev->bus].id);
    } else {
        if (ev->bus != -1)
            log_err("payload: %s names bus index %ld of %zu; bus sent as null", what, ev->bus,
                    cfg->nbuses);
        put_null(&b, root, "bus");
    }

    if (ev->has_zone && ev->zone < cfg->nzones) {
        cJSON *z = put_obj(&b, root, "zone");
        put_str(&b, z, "id", cfg->zones[ev->zone].id);
        put_str(&b, z, "name", cfg->zones[ev->zone].name ? cfg->zones[ev->zone].name : "");
    } else {
        if (ev->has_zone)
            log_err("payload: %s names zone index %zu of %zu; zone sent as null", what, ev->zone,
                    cfg->nzones);
        put_null(&b, root, "zone");
    }
    if (strnlen(ev->user, sizeof(ev->user)) > 0)
        put_fixed(&b, root, "user", ev->user, sizeof(ev->user));
    else
        put_null(&b, root, "user");

    if (ev->fault != FAULT_NONE)
        put_str(&b, root, "fault", fault_code_name(ev->fault));
    else
        put_null(&b, root, "fault");
    put_str(&b, root, "rule", ev->rule ? ev->rule : "");

    const char *unit = det ? detector_unit(det->type) : NULL;
    if (ev->has_value)
        put_quantity(&b, root, "value", ev->value, unit, what);
    else
        put_null(&b, root, "value");
    if (ev->has_level)
        put_quantity(&b, root, "level", ev->level, unit, what);
    else
        put_null(&b, root, "level");

    put_fixed(&b, root, "detail", ev->detail, sizeof(ev->detail));
    put_i64(&b, root, "priority", ev_priority(ev->kind));
    return finish(&b, root, "event");
}

char *payload_detector_state(const struct cfg *cfg, size_t det, const struct det_status *st,
                             int64_t wall_ms)
{
    if (det >= cfg->ndetectors || !st) {
        log_err("payload: no state message for detector index %zu of %zu%s", det, cfg->ndetectors,
                st ? "" : " (no state given)");
        return NULL;
    }
    const struct cfg_detector *d = &cfg->detectors[det];
    struct jb b = {true};
    char what[96];
    snprintf(what, sizeof(what), "state of detector %s", d->id);

    cJSON *root = new_message(&b, "detector_state");
    put_ts(&b, root, "ts", wall_ms);
    put_str(&b, root, "building", cfg->site.id);
    put_detector(&b, root, cfg, d);
    put_str(&b, root, "state", det_status_word(st));
    put_str(&b, root, "level", det_level_name(st->level));
    cJSON *faults = check(&b, cJSON_AddArrayToObject(root, "faults"));
    for (int f = FAULT_NONE + 1; f < FAULT__COUNT; f++) {
        if (st->faults & (1u << f)) {
            cJSON *name = check(&b, cJSON_CreateString(fault_code_name((enum fault_code)f)));
            if (name && !cJSON_AddItemToArray(faults, name)) {
                cJSON_Delete(name);
                b.ok = false;
            }
        }
    }
    put_bool(&b, root, "disabled", st->disabled);
    put_bool(&b, root, "test_mode", st->test_mode);
    put_bool(&b, root, "test_alarm", st->test_alarm);
    put_bool(&b, root, "pending", st->pending);
    put_bool(&b, root, "latched", st->latched);
    put_bool(&b, root, "acknowledged", st->acknowledged);
    put_bool(&b, root, "silenced", st->silenced);
    if (st->has_value)
        put_quantity(&b, root, "value", st->value, detector_unit(d->type), what);
    else
        put_null(&b, root, "value");
    return finish(&b, root, "detector state");
}

char *payload_status(const struct cfg *cfg, bool online, int64_t wall_ms, int64_t started_wall_ms)
{
    struct jb b = {true};
    cJSON *root = new_message(&b, "status");
    cJSON *bld = put_obj(&b, root, "building");
    put_str(&b, bld, "id", cfg->site.id);
    put_str(&b, bld, "name", cfg->site.name);
    put_str(&b, bld, "address", cfg->site.address);
    put_str(&b, bld, "district", cfg->site.district);
    put_finite_or_null(&b, bld, "lat", cfg->site.latitude, "site latitude");
    put_finite_or_null(&b, bld, "lon", cfg->site.longitude, "site longitude");
    put_str(&b, root, "state", online ? "online" : "offline");
    put_ts(&b, root, "ts", wall_ms);
    put_ts(&b, root, "started", started_wall_ms);
    put_str(&b, root, "version", FIREGW_VERSION);
    return finish(&b, root, "status");
}

char *payload_heartbeat(const struct cfg *cfg, const struct heartbeat_info *hb)
{
    struct jb b = {true};
    cJSON *root = new_message(&b, "heartbeat");
    put_ts(&b, root, "ts", hb->wall_ms);
    put_str(&b, root, "building", cfg->site.id);
    put_i64(&b, root, "uptime_s", hb->uptime_ms > 0 ? hb->uptime_ms / 1000 : 0);
    put_u64(&b, root, "last_seq", hb->last_seq);
    cJSON *d = put_obj(&b, root, "detectors");
    put_u64(&b, d, "total", hb->detectors_total);
    put_u64(&b, d, "fire_alarm", hb->in_fire_alarm);
    put_u64(&b, d, "pre_alarm", hb->in_pre_alarm);
    put_u64(&b, d, "fault", hb->in_fault);
    cJSON *bus = put_obj(&b, root, "buses");
    put_u64(&b, bus, "total", hb->buses_total);
    put_u64(&b, bus, "up", hb->buses_up);
    put_num(&b, root, "interval_s", hb->interval_ms > 0 ? (double)hb->interval_ms / 1000.0 : 0.0);
    return finish(&b, root, "heartbeat");
}
