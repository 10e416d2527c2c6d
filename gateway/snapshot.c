/*
 * The web UI's live picture. Everything is read from struct gateway on the
 * main thread each time, never kept across calls, because a config reload
 * replaces the config, the engine and the per-bus arrays. The one thing the
 * gateway does not keep is whether each device answers; that is followed
 * here from the device_down fault events, by device id so it survives a
 * reload.
 */
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gateway.h"
#include "payload.h"
#include "util.h"

struct snapshot {
    char **down; /* ids of devices in device_down fault */
    size_t ndown;
    bool made;
    uint64_t state_hash, value_hash;
    int64_t next_check, made_mono;
};

struct snapshot *snapshot_new(void)
{
    return xcalloc(1, sizeof(struct snapshot));
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ndown; i++)
        free(s->down[i]);
    free(s->down);
    free(s);
}

static long down_index(const struct snapshot *s, const char *id)
{
    for (size_t i = 0; i < s->ndown; i++)
        if (strcmp(s->down[i], id) == 0)
            return (long)i;
    return -1;
}

void snapshot_observe(struct snapshot *s, const struct cfg *cfg, const struct event *ev)
{
    if (!s || ev->fault != FAULT_DEVICE_DOWN || ev->device < 0 ||
        (size_t)ev->device >= cfg->ndevices)
        return;
    const char *id = cfg->devices[ev->device].id;
    long i = down_index(s, id);
    if (ev->kind == EV_FAULT && i < 0) {
        s->down = xrealloc(s->down, (s->ndown + 1) * sizeof(*s->down));
        s->down[s->ndown++] = xstrdup(id);
    } else if (ev->kind == EV_FAULT_RESTORE && i >= 0) {
        free(s->down[i]);
        s->down[i] = s->down[--s->ndown];
    }
}

/* FNV-1a, 64 bits: a change detector, not a security measure. */
static void mix(uint64_t *h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        *h ^= p[i];
        *h *= 0x100000001b3ULL;
    }
}

static void mix_bool(uint64_t *h, bool b)
{
    unsigned char c = b;
    mix(h, &c, 1);
}

static void hashes(const struct snapshot *s, const struct gateway *gw, uint64_t *state,
                   uint64_t *values)
{
    const struct cfg *cfg = gw->cfg;
    uint64_t h = 0xcbf29ce484222325ULL, v = 0xcbf29ce484222325ULL;
    mix(&h, &cfg, sizeof(cfg)); /* a reload is a change */
    mix(&h, &gw->last_seq, sizeof(gw->last_seq));
    for (size_t d = 0; d < cfg->ndetectors; d++) {
        const struct det_status *st = engine_detector(gw->engine, d);
        unsigned flags = (unsigned)st->level | st->disabled << 2 | st->test_mode << 3 |
                         st->test_alarm << 4 | st->pending << 5 | st->latched << 6 |
                         st->acknowledged << 7 | st->silenced << 8 | gw->answered[d] << 9 |
                         st->has_value << 10;
        mix(&h, &flags, sizeof(flags));
        mix(&h, &st->faults, sizeof(st->faults));
        if (st->has_value)
            mix(&v, &st->value, sizeof(st->value));
    }
    for (size_t b = 0; b < cfg->nbuses; b++) {
        mix_bool(&h, gw->bus_up[b]);
        struct bus_stats bs = {0};
        if (gw->pollers && gw->pollers[b])
            bus_get_stats(gw->pollers[b], &bs);
        mix(&v, &bs.polls_ok, sizeof(bs.polls_ok));
        mix(&v, &bs.polls_failed, sizeof(bs.polls_failed));
    }
    for (size_t u = 0; u < cfg->nuplinks; u++) {
        mix_bool(&h, gw->uplinks && gw->uplinks[u] && uplink_connected(gw->uplinks[u]));
        mix_bool(&h, gw->tx_fault && gw->tx_fault[u]);
        size_t waiting = gw->acks && gw->acks[u] ? acktrack_waiting(gw->acks[u]) : 0;
        mix(&h, &waiting, sizeof(waiting));
    }
    for (size_t i = 0; i < s->ndown; i++)
        mix(&h, s->down[i], strlen(s->down[i]) + 1);
    *state = h;
    *values = v;
}

bool snapshot_due(struct snapshot *s, const struct gateway *gw, int64_t now_mono,
                  bool values_wanted)
{
    if (!s->made)
        return true;
    if (now_mono < s->next_check)
        return false;
    s->next_check = now_mono + SNAPSHOT_CHECK_MS;
    uint64_t h, v;
    hashes(s, gw, &h, &v);
    return h != s->state_hash ||
           (values_wanted && v != s->value_hash && now_mono - s->made_mono >= SNAPSHOT_VALUES_MS);
}

static void add_time(cJSON *o, const char *key, int64_t wall)
{
    if (wall <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    char buf[40];
    format_utc_ms(wall, buf, sizeof(buf));
    cJSON_AddStringToObject(o, key, buf);
}

static void add_str(cJSON *o, const char *key, const char *s)
{
    if (s)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

static void add_counts(cJSON *o, const struct area_status *a)
{
    cJSON_AddNumberToObject(o, "detectors", (double)a->detectors);
    cJSON_AddNumberToObject(o, "fire_alarm", (double)a->fire_alarm);
    cJSON_AddNumberToObject(o, "pre_alarm", (double)a->pre_alarm);
    cJSON_AddNumberToObject(o, "pending", (double)a->pending);
    cJSON_AddNumberToObject(o, "fault", (double)a->fault);
    cJSON_AddNumberToObject(o, "disabled", (double)a->disabled);
    cJSON_AddNumberToObject(o, "test", (double)a->test);
}

static void add_flags(cJSON *o, const struct area_status *a)
{
    cJSON_AddBoolToObject(o, "fire_confirmed", a->fire_confirmed);
    cJSON_AddBoolToObject(o, "acknowledged", a->acknowledged);
    cJSON_AddBoolToObject(o, "silenced", a->silenced);
    cJSON_AddBoolToObject(o, "zone_disabled", a->zone_disabled);
    cJSON_AddBoolToObject(o, "test_mode", a->zone_test_mode);
    cJSON_AddBoolToObject(o, "verifying", a->verifying);
    cJSON_AddBoolToObject(o, "pas_running", a->pas_running);
}

static cJSON *building(const struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    struct area_status a;
    engine_building(gw->engine, &a);
    cJSON *b = cJSON_CreateObject();
    add_str(b, "id", cfg->site.id);
    add_str(b, "name", cfg->site.name);
    add_str(b, "address", cfg->site.address);
    add_str(b, "district", cfg->site.district);
    add_str(b, "state", area_status_word(&a));
    add_counts(cJSON_AddObjectToObject(b, "counts"), &a);
    add_flags(b, &a);
    return b;
}

static cJSON *zones(const struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    cJSON *list = cJSON_CreateArray();
    for (size_t z = 0; z < cfg->nzones; z++) {
        struct area_status a;
        if (engine_zone(gw->engine, z, &a) < 0)
            continue;
        cJSON *o = cJSON_CreateObject();
        add_str(o, "id", cfg->zones[z].id);
        add_str(o, "name", cfg->zones[z].name);
        cJSON_AddNumberToObject(o, "floor", cfg->zones[z].floor);
        add_str(o, "state", area_status_word(&a));
        add_counts(o, &a);
        add_flags(o, &a);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

static cJSON *detectors(const struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    cJSON *list = cJSON_CreateArray();
    for (size_t d = 0; d < cfg->ndetectors; d++) {
        const struct cfg_detector *cd = &cfg->detectors[d];
        const struct det_status *st = engine_detector(gw->engine, d);
        cJSON *o = cJSON_CreateObject();
        add_str(o, "id", cd->id);
        add_str(o, "type", detector_type_name(cd->type));
        cJSON_AddNumberToObject(o, "floor", cd->floor);
        add_str(o, "zone", cfg->zones[cd->zone].id);
        add_str(o, "location", cd->location ? cd->location : "");
        add_str(o, "device", cfg->devices[cd->device].id);
        /* Before its first answer a detector's state is unknown, not "normal". */
        bool known = gw->answered[d] || st->faults;
        add_str(o, "state", known ? det_status_word(st) : "unknown");
        if (st->has_value)
            cJSON_AddNumberToObject(o, "value", st->value);
        else
            cJSON_AddNullToObject(o, "value");
        add_str(o, "unit", detector_unit(cd->type));
        cJSON *faults = cJSON_AddArrayToObject(o, "faults");
        for (int f = 1; f < FAULT__COUNT; f++)
            if (st->faults & (1u << f))
                cJSON_AddItemToArray(faults, cJSON_CreateString(fault_code_name(f)));
        cJSON_AddBoolToObject(o, "acknowledged", st->acknowledged);
        cJSON_AddBoolToObject(o, "silenced", st->silenced);
        cJSON_AddBoolToObject(o, "latched", st->latched);
        cJSON_AddBoolToObject(o, "disabled", st->disabled);
        cJSON_AddBoolToObject(o, "test_mode", st->test_mode);
        cJSON_AddBoolToObject(o, "test_alarm", st->test_alarm);
        cJSON_AddBoolToObject(o, "pending", st->pending);
        add_time(o, "since", st->changed_wall);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

static cJSON *buses_and_devices(const struct snapshot *s, const struct gateway *gw, cJSON **devices)
{
    const struct cfg *cfg = gw->cfg;
    cJSON *list = cJSON_CreateArray();
    for (size_t b = 0; b < cfg->nbuses; b++) {
        struct bus_stats bs = {0};
        if (gw->pollers && gw->pollers[b])
            bus_get_stats(gw->pollers[b], &bs);
        cJSON *o = cJSON_CreateObject();
        add_str(o, "id", cfg->buses[b].id);
        add_str(o, "type", cfg->buses[b].type == BUS_TCP ? "tcp" : "rtu");
        cJSON_AddBoolToObject(o, "up", gw->bus_up[b]);
        cJSON_AddNumberToObject(o, "polls_ok", (double)bs.polls_ok);
        cJSON_AddNumberToObject(o, "polls_failed", (double)bs.polls_failed);
        cJSON_AddItemToArray(list, o);
    }
    *devices = cJSON_CreateArray();
    for (size_t i = 0; i < cfg->ndevices; i++) {
        const struct cfg_device *dv = &cfg->devices[i];
        bool answered = false;
        for (size_t d = 0; d < cfg->ndetectors && !answered; d++)
            answered = cfg->detectors[d].device == i && gw->answered[d];
        cJSON *o = cJSON_CreateObject();
        add_str(o, "id", dv->id);
        add_str(o, "bus", cfg->buses[dv->bus].id);
        cJSON_AddNumberToObject(o, "unit", dv->unit);
        add_str(o, "profile", dv->profile ? dv->profile->name : NULL);
        cJSON_AddBoolToObject(o, "up", answered && down_index(s, dv->id) < 0);
        cJSON_AddItemToArray(*devices, o);
    }
    return list;
}

static cJSON *uplinks(const struct gateway *gw, struct ev_time now)
{
    const struct cfg *cfg = gw->cfg;
    cJSON *list = cJSON_CreateArray();
    for (size_t u = 0; u < cfg->nuplinks; u++) {
        cJSON *o = cJSON_CreateObject();
        add_str(o, "id", cfg->uplinks[u].id);
        cJSON_AddBoolToObject(o, "connected",
                              gw->uplinks && gw->uplinks[u] && uplink_connected(gw->uplinks[u]));
        cJSON *un = cJSON_AddArrayToObject(o, "unacknowledged");
        const struct acktrack *t = gw->acks ? gw->acks[u] : NULL;
        const struct ack_pending *p;
        for (size_t i = 0; t && (p = acktrack_get(t, i)) != NULL; i++) {
            cJSON *a = cJSON_CreateObject();
            add_str(a, "event_id", p->event_id);
            char seq[24];
            snprintf(seq, sizeof(seq), "%llu", (unsigned long long)p->seq);
            cJSON_AddRawToObject(a, "seq", seq);
            add_time(a, "since", now.wall_ms - (now.mono_ms - p->sent_mono));
            cJSON_AddItemToArray(un, a);
        }
        cJSON_AddBoolToObject(o, "transmission_fault", gw->tx_fault && gw->tx_fault[u]);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

char *snapshot_json(struct snapshot *s, const struct gateway *gw, struct ev_time now)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "building", building(gw));
    cJSON_AddItemToObject(root, "zones", zones(gw));
    cJSON_AddItemToObject(root, "detectors", detectors(gw));
    cJSON *devices;
    cJSON_AddItemToObject(root, "buses", buses_and_devices(s, gw, &devices));
    cJSON_AddItemToObject(root, "devices", devices);
    cJSON_AddItemToObject(root, "uplinks", uplinks(gw, now));
    cJSON *g = cJSON_AddObjectToObject(root, "gateway");
    add_str(g, "version", FIREGW_VERSION);
    add_time(g, "started", gw->started_wall);
    char seq[24];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)gw->last_seq);
    cJSON_AddRawToObject(root, "seq", seq);
    add_time(root, "ts", now.wall_ms);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        log_err("web: out of memory making the live state");
        return NULL;
    }
    hashes(s, gw, &s->state_hash, &s->value_hash);
    s->made = true;
    s->made_mono = now.mono_ms;
    s->next_check = now.mono_ms + SNAPSHOT_CHECK_MS;
    return text;
}
