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

static void mix(uint64_t *h, const void *data, size_t len)
{
    *h = fnv1a(*h, data, len);
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
    uint64_t h = FNV1A_INIT, v = FNV1A_INIT;
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

/*
 * The picture is written straight into one growing string, without a JSON
 * tree: at 5,000 detectors a tree took several times the memory of the text
 * it printed, on every rebuild.
 */

/* "key": at the start of a member; first tells whether a comma goes before. */
static void key(struct sbuf *b, bool *first, const char *k)
{
    if (!*first)
        sb_add(b, ",", 1);
    *first = false;
    sb_json_str(b, k);
    sb_add(b, ":", 1);
}

static void put_str(struct sbuf *b, bool *first, const char *k, const char *v)
{
    key(b, first, k);
    sb_json_str(b, v);
}

static void put_bool(struct sbuf *b, bool *first, const char *k, bool v)
{
    key(b, first, k);
    sb_str(b, v ? "true" : "false");
}

static void put_int(struct sbuf *b, bool *first, const char *k, long long v)
{
    key(b, first, k);
    sb_fmt(b, "%lld", v);
}

static void put_u64(struct sbuf *b, bool *first, const char *k, uint64_t v)
{
    key(b, first, k);
    sb_fmt(b, "%llu", (unsigned long long)v);
}

static void put_time(struct sbuf *b, bool *first, const char *k, int64_t wall)
{
    if (wall <= 0) {
        put_str(b, first, k, NULL);
        return;
    }
    char buf[40];
    format_utc_ms(wall, buf, sizeof(buf));
    put_str(b, first, k, buf);
}

/* An element of an array: a comma before all but the first. */
static void next_item(struct sbuf *b, size_t i)
{
    if (i > 0)
        sb_add(b, ",", 1);
}

static void put_counts(struct sbuf *b, bool *first, const struct area_status *a)
{
    put_int(b, first, "detectors", (long long)a->detectors);
    put_int(b, first, "fire_alarm", (long long)a->fire_alarm);
    put_int(b, first, "pre_alarm", (long long)a->pre_alarm);
    put_int(b, first, "pending", (long long)a->pending);
    put_int(b, first, "fault", (long long)a->fault);
    put_int(b, first, "disabled", (long long)a->disabled);
    put_int(b, first, "test", (long long)a->test);
}

static void put_flags(struct sbuf *b, bool *first, const struct area_status *a)
{
    put_bool(b, first, "fire_confirmed", a->fire_confirmed);
    put_bool(b, first, "acknowledged", a->acknowledged);
    put_bool(b, first, "silenced", a->silenced);
    put_bool(b, first, "zone_disabled", a->zone_disabled);
    put_bool(b, first, "test_mode", a->zone_test_mode);
    put_bool(b, first, "verifying", a->verifying);
    put_bool(b, first, "pas_running", a->pas_running);
}

static void building(struct sbuf *b, const struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    struct area_status a;
    engine_building(gw->engine, &a);
    bool first = true;
    sb_add(b, "{", 1);
    put_str(b, &first, "id", cfg->site.id);
    put_str(b, &first, "name", cfg->site.name);
    put_str(b, &first, "address", cfg->site.address);
    put_str(b, &first, "district", cfg->site.district);
    put_str(b, &first, "state", area_status_word(&a));
    key(b, &first, "counts");
    bool cfirst = true;
    sb_add(b, "{", 1);
    put_counts(b, &cfirst, &a);
    sb_add(b, "}", 1);
    put_flags(b, &first, &a);
    sb_add(b, "}", 1);
}

static void zones(struct sbuf *b, const struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    sb_add(b, "[", 1);
    size_t n = 0;
    for (size_t z = 0; z < cfg->nzones; z++) {
        struct area_status a;
        if (engine_zone(gw->engine, z, &a) < 0)
            continue;
        next_item(b, n++);
        bool first = true;
        sb_add(b, "{", 1);
        put_str(b, &first, "id", cfg->zones[z].id);
        put_str(b, &first, "name", cfg->zones[z].name);
        put_int(b, &first, "floor", cfg->zones[z].floor);
        put_str(b, &first, "state", area_status_word(&a));
        put_counts(b, &first, &a);
        put_flags(b, &first, &a);
        sb_add(b, "}", 1);
    }
    sb_add(b, "]", 1);
}

static void detectors(struct sbuf *b, const struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    sb_add(b, "[", 1);
    for (size_t d = 0; d < cfg->ndetectors; d++) {
        const struct cfg_detector *cd = &cfg->detectors[d];
        const struct det_status *st = engine_detector(gw->engine, d);
        next_item(b, d);
        bool first = true;
        sb_add(b, "{", 1);
        put_str(b, &first, "id", cd->id);
        put_str(b, &first, "type", detector_type_name(cd->type));
        put_int(b, &first, "floor", cd->floor);
        put_str(b, &first, "zone", cfg->zones[cd->zone].id);
        put_str(b, &first, "location", cd->location ? cd->location : "");
        put_str(b, &first, "device", cfg->devices[cd->device].id);
        /* Before its first answer a detector's state is unknown, not "normal". */
        bool known = gw->answered[d] || st->faults;
        put_str(b, &first, "state", known ? det_status_word(st) : "unknown");
        key(b, &first, "value");
        if (st->has_value)
            sb_json_num(b, st->value);
        else
            sb_str(b, "null");
        put_str(b, &first, "unit", detector_unit(cd->type));
        key(b, &first, "faults");
        sb_add(b, "[", 1);
        size_t nf = 0;
        for (int f = 1; f < FAULT__COUNT; f++)
            if (st->faults & (1u << f)) {
                next_item(b, nf++);
                sb_json_str(b, fault_code_name(f));
            }
        sb_add(b, "]", 1);
        put_bool(b, &first, "acknowledged", st->acknowledged);
        put_bool(b, &first, "silenced", st->silenced);
        put_bool(b, &first, "latched", st->latched);
        put_bool(b, &first, "disabled", st->disabled);
        put_bool(b, &first, "test_mode", st->test_mode);
        put_bool(b, &first, "test_alarm", st->test_alarm);
        put_bool(b, &first, "pending", st->pending);
        put_time(b, &first, "since", st->changed_wall);
        sb_add(b, "}", 1);
    }
    sb_add(b, "]", 1);
}

static void buses(struct sbuf *b, const struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    sb_add(b, "[", 1);
    for (size_t i = 0; i < cfg->nbuses; i++) {
        struct bus_stats bs = {0};
        if (gw->pollers && gw->pollers[i])
            bus_get_stats(gw->pollers[i], &bs);
        next_item(b, i);
        bool first = true;
        sb_add(b, "{", 1);
        put_str(b, &first, "id", cfg->buses[i].id);
        put_str(b, &first, "type", cfg->buses[i].type == BUS_TCP ? "tcp" : "rtu");
        put_bool(b, &first, "up", gw->bus_up[i]);
        put_u64(b, &first, "polls_ok", (uint64_t)bs.polls_ok);
        put_u64(b, &first, "polls_failed", (uint64_t)bs.polls_failed);
        sb_add(b, "}", 1);
    }
    sb_add(b, "]", 1);
}

static void devices(struct sbuf *b, const struct snapshot *s, const struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    /* A device has answered when any of its detectors has: one pass over the detectors. */
    bool *answered = xcalloc(cfg->ndevices ? cfg->ndevices : 1, sizeof(*answered));
    for (size_t d = 0; d < cfg->ndetectors; d++)
        if (gw->answered[d] && cfg->detectors[d].device < cfg->ndevices)
            answered[cfg->detectors[d].device] = true;
    sb_add(b, "[", 1);
    for (size_t i = 0; i < cfg->ndevices; i++) {
        const struct cfg_device *dv = &cfg->devices[i];
        next_item(b, i);
        bool first = true;
        sb_add(b, "{", 1);
        put_str(b, &first, "id", dv->id);
        put_str(b, &first, "bus", cfg->buses[dv->bus].id);
        put_int(b, &first, "unit", dv->unit);
        put_str(b, &first, "profile", dv->profile ? dv->profile->name : NULL);
        put_bool(b, &first, "up", answered[i] && down_index(s, dv->id) < 0);
        sb_add(b, "}", 1);
    }
    sb_add(b, "]", 1);
    free(answered);
}

static void uplinks(struct sbuf *b, const struct gateway *gw, struct ev_time now)
{
    const struct cfg *cfg = gw->cfg;
    sb_add(b, "[", 1);
    for (size_t u = 0; u < cfg->nuplinks; u++) {
        next_item(b, u);
        bool first = true;
        sb_add(b, "{", 1);
        put_str(b, &first, "id", cfg->uplinks[u].id);
        put_bool(b, &first, "connected",
                 gw->uplinks && gw->uplinks[u] && uplink_connected(gw->uplinks[u]));
        key(b, &first, "unacknowledged");
        sb_add(b, "[", 1);
        const struct acktrack *t = gw->acks ? gw->acks[u] : NULL;
        const struct ack_pending *p;
        for (size_t i = 0; t && (p = acktrack_get(t, i)) != NULL; i++) {
            next_item(b, i);
            bool afirst = true;
            sb_add(b, "{", 1);
            put_str(b, &afirst, "event_id", p->event_id);
            put_u64(b, &afirst, "seq", p->seq);
            put_time(b, &afirst, "since", now.wall_ms - (now.mono_ms - p->sent_mono));
            sb_add(b, "}", 1);
        }
        sb_add(b, "]", 1);
        put_bool(b, &first, "transmission_fault", gw->tx_fault && gw->tx_fault[u]);
        sb_add(b, "}", 1);
    }
    sb_add(b, "]", 1);
}

char *snapshot_json(struct snapshot *s, const struct gateway *gw, struct ev_time now)
{
    struct sbuf b = {0};
    bool first = true;
    sb_add(&b, "{", 1);
    key(&b, &first, "building");
    building(&b, gw);
    key(&b, &first, "zones");
    zones(&b, gw);
    key(&b, &first, "detectors");
    detectors(&b, gw);
    key(&b, &first, "buses");
    buses(&b, gw);
    key(&b, &first, "devices");
    devices(&b, s, gw);
    key(&b, &first, "uplinks");
    uplinks(&b, gw, now);
    key(&b, &first, "gateway");
    bool gfirst = true;
    sb_add(&b, "{", 1);
    put_str(&b, &gfirst, "version", FIREGW_VERSION);
    put_time(&b, &gfirst, "started", gw->started_wall);
    sb_add(&b, "}", 1);
    put_u64(&b, &first, "seq", gw->last_seq);
    put_time(&b, &first, "ts", now.wall_ms);
    sb_add(&b, "}", 1);
    hashes(s, gw, &s->state_hash, &s->value_hash);
    s->made = true;
    s->made_mono = now.mono_ms;
    s->next_check = now.mono_ms + SNAPSHOT_CHECK_MS;
    return sb_take(&b);
}
