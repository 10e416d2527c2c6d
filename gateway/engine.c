/*
 * The alarm engine (docs/alarm-rules.md). It owns the live state of every
 * detector, zone, device and bus and turns samples, operator commands and the
 * passing of time into events.
 *
 * Per detector it keeps the raw alarm condition (what the value and the bits
 * say now, with hysteresis), and apart from it the panel state built on top:
 * latched fire alarm, held (pending) alarm, test alarm, disablement. Keeping
 * the two apart is what lets a reset re-alarm at once when the condition is
 * still there, and lets a fire alarm stay when the reading falls.
 *
 * Zones own the processes that span detectors: alarm verification, positive
 * alarm sequence, coincidence, and zone-wide disablement and test mode.
 *
 * Timers are not scanned on every tick: e->next_due is a lower bound of every
 * deadline, lowered whenever a timer is armed, and a tick before it returns at
 * once. Readings only push deadlines later, so the bound stays valid.
 */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Rate-of-rise history: enough samples, taken every window/ROR_STEPS, to span the window. */
#define ROR_STEPS 16
#define ROR_RING 24
#define NEVER INT64_MAX

struct ror_sample {
    int64_t t;
    double v;
};

struct det_state {
    struct det_status st;
    enum det_level static_level; /* what the filtered value says, with hysteresis */
    bool ror_active;             /* rate-of-rise condition met by the last reading */
    enum det_level bits_level;   /* what the last reading's alarm bits say */
    enum det_level peak;         /* highest level since the detector left normal */
    int64_t fire_mono;           /* when it entered fire alarm (coincidence) */
    int64_t heard_mono;          /* last reading, or the engine's start */
    bool answered;
    bool panel_disabled;
    bool own_disabled; /* disabled at the gateway */
    int64_t disabled_until;
    bool own_test;
    int64_t test_until;
    /* spike filter: the last raw values, newest first */
    double recent[2];
    int nrecent;
    struct ror_sample *ring; /* rate-of-rise detectors only */
    int ring_head, ring_n;
    /* stuck value */
    bool stuck_ref;
    double stuck_value;
    int64_t stuck_since;
};

enum pas_phase { PAS_IDLE, PAS_ACK_WAIT, PAS_INVESTIGATE };

struct zone_state {
    size_t *dets;
    size_t ndets;
    bool disabled;
    int64_t disabled_until;
    bool test;
    int64_t test_until;
    bool verifying;
    size_t verify_det;
    int64_t verify_start;
    enum pas_phase pas;
    int64_t pas_deadline;
    bool confirmed;
    bool acknowledged;
    bool silenced;
};

struct dev_state {
    bool down;
    bool lc_known; /* a LifeCheck value has been read */
    uint32_t lc_value;
    int64_t lc_changed_mono; /* when the counter was first read or last moved */
    bool lc_fault;
};

struct engine {
    const struct cfg *cfg;
    struct det_state *dets;
    struct zone_state *zones;
    struct dev_state *devs;
    bool *bus_down;
    int64_t next_due; /* no timer is due before this */
};

static void schedule(struct engine *e, int64_t when)
{
    if (when < e->next_due)
        e->next_due = when;
}

struct engine *engine_new(const struct cfg *cfg, struct ev_time now)
{
    if (!cfg)
        return NULL;
    struct engine *e = xcalloc(1, sizeof(*e));
    e->cfg = cfg;
    e->dets = xcalloc(cfg->ndetectors, sizeof(*e->dets));
    e->zones = xcalloc(cfg->nzones, sizeof(*e->zones));
    e->devs = xcalloc(cfg->ndevices, sizeof(*e->devs));
    e->bus_down = xcalloc(cfg->nbuses, sizeof(*e->bus_down));
    for (size_t i = 0; i < cfg->ndetectors; i++) {
        struct det_state *d = &e->dets[i];
        d->heard_mono = now.mono_ms;
        d->st.changed_wall = now.wall_ms;
        if (cfg->detectors[i].type == DET_HEAT && cfg->detectors[i].rate_of_rise)
            d->ring = xcalloc(ROR_RING, sizeof(*d->ring));
        size_t z = cfg->detectors[i].zone;
        if (z < cfg->nzones) {
            struct zone_state *zs = &e->zones[z];
            zs->dets = xrealloc(zs->dets, (zs->ndets + 1) * sizeof(*zs->dets));
            zs->dets[zs->ndets++] = i;
        }
    }
    e->next_due = now.mono_ms;
    return e;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->cfg->ndetectors; i++)
        free(e->dets[i].ring);
    for (size_t i = 0; i < e->cfg->nzones; i++)
        free(e->zones[i].dets);
    free(e->dets);
    free(e->zones);
    free(e->devs);
    free(e->bus_down);
    free(e);
}

static long find_zone(const struct cfg *cfg, const char *id)
{
    for (size_t i = 0; id && i < cfg->nzones; i++)
        if (strcmp(cfg->zones[i].id, id) == 0)
            return (long)i;
    return -1;
}

void engine_adopt(struct engine *e, const struct engine *old, struct ev_time now)
{
    const struct cfg *oc = old->cfg, *nc = e->cfg;
    for (size_t i = 0; i < nc->ndetectors; i++) {
        long o = cfg_find_detector(oc, nc->detectors[i].id);
        if (o < 0)
            continue;
        struct det_state *d = &e->dets[i];
        struct ror_sample *ring = d->ring;
        *d = old->dets[o];
        d->ring = ring;
        /* a rate-of-rise history only means something for the same element */
        if (ring && old->dets[o].ring)
            memcpy(ring, old->dets[o].ring, ROR_RING * sizeof(*ring));
        else
            d->ring_head = d->ring_n = 0;
    }
    for (size_t z = 0; z < nc->nzones; z++) {
        long o = find_zone(oc, nc->zones[z].id);
        if (o < 0)
            continue;
        struct zone_state *zs = &e->zones[z];
        const struct zone_state *os = &old->zones[o];
        size_t *dets = zs->dets, ndets = zs->ndets;
        *zs = *os;
        zs->dets = dets;
        zs->ndets = ndets;
        if (os->verifying) {
            long v = cfg_find_detector(nc, oc->detectors[os->verify_det].id);
            zs->verifying = v >= 0 && nc->detectors[v].zone == z;
            zs->verify_det = v >= 0 ? (size_t)v : 0;
        }
    }
    for (size_t i = 0; i < nc->ndevices; i++) {
        long o = cfg_find_device(oc, nc->devices[i].id);
        if (o >= 0)
            e->devs[i] = old->devs[o];
    }
    for (size_t i = 0; i < nc->nbuses; i++) {
        long o = cfg_find_bus(oc, nc->buses[i].id);
        if (o >= 0)
            e->bus_down[i] = old->bus_down[o];
    }
    /* every timer is looked at again on the next tick */
    e->next_due = now.mono_ms;
}

const struct det_status *engine_detector(const struct engine *e, size_t det)
{
    if (!e || det >= e->cfg->ndetectors)
        return NULL;
    return &e->dets[det].st;
}

const char *det_level_name(enum det_level l)
{
    switch (l) {
    case LEVEL_NORMAL:
        return "normal";
    case LEVEL_PRE_ALARM:
        return "pre_alarm";
    case LEVEL_FIRE_ALARM:
        return "fire_alarm";
    }
    return "unknown";
}

const char *det_status_word(const struct det_status *st)
{
    if (st->level == LEVEL_FIRE_ALARM)
        return "fire_alarm";
    if (st->level == LEVEL_PRE_ALARM)
        return "pre_alarm";
    if (st->faults)
        return "fault";
    if (st->test_mode)
        return "test";
    if (st->disabled)
        return "disabled";
    return "normal";
}

const char *area_status_word(const struct area_status *a)
{
    if (a->fire_alarm)
        return "fire_alarm";
    if (a->pre_alarm || a->pending)
        return "pre_alarm";
    if (a->fault)
        return "fault";
    if (a->test || a->zone_test_mode)
        return "test";
    if (a->zone_disabled || (a->detectors && a->disabled == a->detectors))
        return "disabled";
    return "normal";
}

/*
 * Readings are decimal numbers scaled from integers (raw * 0.01), so a value
 * the installer reads as exactly 1.70 may sit a few ulps either side of
 * 2.0 - 0.3. Treat those as equal, so that "equal to the level" means what
 * the documentation says.
 */
static bool at_least(double v, double edge)
{
    return v >= edge - 1e-9 * fmax(1.0, fabs(edge));
}

/* The level the value asks for, given the level it held: rising at the levels, falling below
 * level - hysteresis. */
static enum det_level level_for_value(const struct cfg_thresholds *th, enum det_level cur, double v)
{
    if (at_least(v, th->alarm) ||
        (cur == LEVEL_FIRE_ALARM && at_least(v, th->alarm - th->hysteresis)))
        return LEVEL_FIRE_ALARM;
    if (at_least(v, th->prealarm) ||
        (cur >= LEVEL_PRE_ALARM && at_least(v, th->prealarm - th->hysteresis)))
        return LEVEL_PRE_ALARM;
    return LEVEL_NORMAL;
}

static bool has_thresholds(enum detector_type t)
{
    return t == DET_SMOKE || t == DET_HEAT;
}

static bool bit_present(const struct reading *r, enum point_role role)
{
    return (r->bits_present & ROLE_BIT(role)) != 0;
}

static bool bit_set(const struct reading *r, enum point_role role)
{
    return (r->bits_present & r->bits & ROLE_BIT(role)) != 0;
}

static enum det_level max_level(enum det_level a, enum det_level b)
{
    return a > b ? a : b;
}

/* What the detector's readings say now, before latching, holding, test or disablement. */
static enum det_level condition(const struct det_state *d)
{
    return max_level(d->ror_active ? LEVEL_FIRE_ALARM : d->static_level, d->bits_level);
}

static bool is_disabled(const struct engine *e, size_t det)
{
    const struct det_state *d = &e->dets[det];
    return d->panel_disabled || d->own_disabled || e->zones[e->cfg->detectors[det].zone].disabled;
}

static bool in_test(const struct engine *e, size_t det)
{
    return e->dets[det].own_test || e->zones[e->cfg->detectors[det].zone].test;
}

static struct event base_event(enum ev_kind kind, enum ev_source src, const char *rule,
                               struct ev_time t)
{
    struct event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.source = src;
    ev.detector = -1;
    ev.device = -1;
    ev.bus = -1;
    ev.fault = FAULT_NONE;
    ev.rule = rule;
    ev.t = t;
    return ev;
}

static struct event det_event(const struct engine *e, size_t det, enum ev_kind kind,
                              const char *rule, struct ev_time t)
{
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    struct event ev = base_event(kind, SRC_DETECTOR, rule, t);
    ev.detector = (long)det;
    ev.device = (long)cd->device;
    ev.bus = (long)e->cfg->devices[cd->device].bus;
    ev.has_zone = true;
    ev.zone = cd->zone;
    ev.test = in_test(e, det);
    return ev;
}

static struct event dev_event(const struct engine *e, size_t dev, enum ev_kind kind,
                              const char *rule, struct ev_time t)
{
    struct event ev = base_event(kind, SRC_DEVICE, rule, t);
    ev.device = (long)dev;
    ev.bus = (long)e->cfg->devices[dev].bus;
    return ev;
}

/* An event about a zone, or about the building when zone is -1. */
static struct event area_event(long zone, enum ev_kind kind, const char *rule, const char *user,
                               struct ev_time t)
{
    struct event ev = base_event(kind, zone >= 0 ? SRC_ZONE : SRC_BUILDING, rule, t);
    ev.has_zone = zone >= 0;
    ev.zone = zone >= 0 ? (size_t)zone : 0;
    strlcpy_fg(ev.user, user ? user : "", sizeof(ev.user));
    return ev;
}

/* Put the alarms among the events appended since start ahead of the rest, keeping order. */
static void alarms_first(struct evlist *out, size_t start)
{
    if (out->count <= start)
        return; /* nothing new; also keeps NULL + 0 (an empty list) out of the arithmetic */
    struct evlist view = {out->items + start, out->count - start, out->count - start};
    evlist_sort_priority(&view);
}

static const char *fault_rule(enum fault_code f, bool zone)
{
    switch (f) {
    case FAULT_DETECTOR_BIT:
        return zone ? "panel_zone_fault" : "detector_fault_bit";
    case FAULT_MAINTENANCE:
        return zone ? "panel_zone_maintenance" : "detector_maintenance_bit";
    case FAULT_IMPLAUSIBLE:
        return "implausible_value";
    case FAULT_NO_RESPONSE:
        return "no_response";
    case FAULT_LIFECHECK:
        return "lifecheck_stopped";
    case FAULT_DEVICE_DOWN:
        return "device_down";
    case FAULT_BUS_DOWN:
        return "bus_down";
    case FAULT_STUCK:
        return "value_stuck";
    case FAULT_TRANSMISSION:
        return "ack_timeout";
    case FAULT_STORAGE:
        return "storage";
    case FAULT_NONE:
    case FAULT__COUNT:
        break;
    }
    return "fault";
}

/* Raise or clear one fault of a detector; an event only when it changes. Faults are never test
 * events: a broken detector in test mode is still broken. */
static void set_fault(struct engine *e, size_t det, enum fault_code f, bool on, const char *detail,
                      struct ev_time t, struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    unsigned bit = 1u << f;
    if (on == ((d->st.faults & bit) != 0))
        return;
    d->st.faults ^= bit;
    d->st.changed_wall = t.wall_ms;
    bool zone = e->cfg->detectors[det].type == DET_PANEL_ZONE;
    struct event ev = det_event(e, det, on ? EV_FAULT : EV_FAULT_RESTORE, fault_rule(f, zone), t);
    ev.test = false;
    ev.fault = f;
    strlcpy_fg(ev.detail, detail, sizeof(ev.detail));
    evlist_push(out, &ev);
}

/* The rule that names what the readings say: value (static level or rate of rise) or bits. */
static const char *cause_rule(const struct engine *e, size_t det, enum det_level lvl)
{
    const struct det_state *d = &e->dets[det];
    enum detector_type type = e->cfg->detectors[det].type;
    bool fire = lvl == LEVEL_FIRE_ALARM;
    if (type == DET_PANEL_ZONE)
        return fire ? "panel_zone_alarm" : "panel_zone_prealarm";
    if (d->static_level >= lvl)
        return type == DET_SMOKE ? (fire ? "smoke_alarm_level" : "smoke_prealarm_level")
                                 : (fire ? "heat_alarm_level" : "heat_prealarm_level");
    if (fire && d->ror_active)
        return "heat_rate_of_rise";
    return fire ? "detector_alarm_bit" : "detector_prealarm_bit";
}

/* Value, level crossed and a line of text for an event caused by the readings at level lvl. */
static void describe_cause(const struct engine *e, size_t det, enum det_level lvl, struct event *ev)
{
    const struct det_state *d = &e->dets[det];
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    const char *unit = detector_unit(cd->type);
    ev->has_value = d->st.has_value && has_thresholds(cd->type);
    ev->value = d->st.value;
    if (has_thresholds(cd->type) && d->static_level >= lvl) {
        ev->has_level = true;
        ev->level = lvl == LEVEL_FIRE_ALARM ? cd->thresholds.alarm : cd->thresholds.prealarm;
        /* The spike filter holds a level for one reading: say so rather than quote a value
         * below the level as if it had reached it. */
        if (ev->value >= ev->level)
            snprintf(ev->detail, sizeof(ev->detail),
                     "%s value %.2f %s reached the %s level %.2f %s", detector_type_name(cd->type),
                     ev->value, unit, lvl == LEVEL_FIRE_ALARM ? "alarm" : "pre-alarm", ev->level,
                     unit);
        else
            snprintf(ev->detail, sizeof(ev->detail),
                     "%s readings reached the %s level %.2f %s and have not yet stayed below it "
                     "(last value %.2f %s)",
                     detector_type_name(cd->type), lvl == LEVEL_FIRE_ALARM ? "alarm" : "pre-alarm",
                     ev->level, unit, ev->value, unit);
    } else if (lvl == LEVEL_FIRE_ALARM && d->ror_active) {
        snprintf(ev->detail, sizeof(ev->detail),
                 "temperature %.2f degC rising at %.1f degC/min or more for %.0f s", ev->value,
                 e->cfg->defaults.ror_degc_per_min,
                 (double)e->cfg->defaults.ror_window_ms / 1000.0);
    } else if (cd->type == DET_PANEL_ZONE) {
        snprintf(ev->detail, sizeof(ev->detail), "the panel reports the zone in %s",
                 lvl == LEVEL_FIRE_ALARM ? "fire alarm" : "pre-alarm");
    } else {
        snprintf(ev->detail, sizeof(ev->detail), "the detector reports %s",
                 lvl == LEVEL_FIRE_ALARM ? "alarm" : "pre-alarm");
    }
}

/* "note; detail", cut to fit: the note says why now, the detail what the readings are. */
static void prefix_detail(struct event *ev, const char *note)
{
    char cause[sizeof(ev->detail)];
    memcpy(cause, ev->detail, sizeof(cause));
    size_t n = strlcpy_fg(ev->detail, note, sizeof(ev->detail));
    if (n + 2 >= sizeof(ev->detail))
        return;
    memcpy(ev->detail + n, "; ", 3);
    strlcpy_fg(ev->detail + n + 2, cause, sizeof(ev->detail) - n - 2);
}

static void touch(struct det_state *d, struct ev_time t)
{
    d->st.changed_wall = t.wall_ms;
}

/* Back to normal with one restore naming the highest level of the episode. */
static void restore(struct engine *e, size_t det, const char *rule, const char *why,
                    struct ev_time t, struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    enum det_level from = d->st.level;
    bool was_pending = d->st.pending;
    d->st.level = LEVEL_NORMAL;
    d->st.latched = false;
    d->st.pending = false;
    d->st.acknowledged = false;
    d->st.silenced = false;
    touch(d, t);
    struct event ev = det_event(e, det, EV_RESTORE, rule, t);
    ev.has_value = d->st.has_value;
    ev.value = d->st.value;
    const char *peak = was_pending ? "held alarm" : det_level_name(d->peak);
    if (!was_pending && from != d->peak)
        snprintf(ev.detail, sizeof(ev.detail), "back to normal from %s (last %s)%s%s", peak,
                 det_level_name(from), *why ? ": " : "", why);
    else
        snprintf(ev.detail, sizeof(ev.detail), "back to normal from %s%s%s", peak, *why ? ": " : "",
                 why);
    d->peak = LEVEL_NORMAL;
    evlist_push(out, &ev);
}

/* Coincidence: does b confirm a's fire in zone mode m? */
static bool confirms(enum coincidence_mode m, enum detector_type a, enum detector_type b)
{
    if (m == COINC_TWO_DETECTORS)
        return true;
    if (m == COINC_SMOKE_AND_HEAT)
        return (a == DET_SMOKE && b == DET_HEAT) || (a == DET_HEAT && b == DET_SMOKE);
    return false;
}

static void check_coincidence(struct engine *e, size_t det, struct ev_time t, struct evlist *out)
{
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    const struct cfg_zone *cz = &e->cfg->zones[cd->zone];
    struct zone_state *z = &e->zones[cd->zone];
    if (cz->coincidence == COINC_NONE || z->confirmed)
        return;
    for (size_t i = 0; i < z->ndets; i++) {
        size_t o = z->dets[i];
        const struct det_state *od = &e->dets[o];
        if (o == det || od->st.level != LEVEL_FIRE_ALARM ||
            t.mono_ms - od->fire_mono >= cz->coincidence_window_ms ||
            !confirms(cz->coincidence, cd->type, e->cfg->detectors[o].type))
            continue;
        z->confirmed = true;
        struct event ev =
            area_event((long)cd->zone, EV_FIRE_CONFIRMED,
                       cz->coincidence == COINC_TWO_DETECTORS ? "coincidence_two_detectors"
                                                              : "coincidence_smoke_and_heat",
                       NULL, t);
        ev.detector = (long)det;
        ev.device = (long)cd->device;
        ev.bus = (long)e->cfg->devices[cd->device].bus;
        snprintf(ev.detail, sizeof(ev.detail), "fire confirmed: %s after %s, %.1f s apart", cd->id,
                 e->cfg->detectors[o].id, (double)(t.mono_ms - od->fire_mono) / 1000.0);
        evlist_push(out, &ev);
        return;
    }
}

/*
 * Enter the fire alarm state: latched (except panel zones, which the panel
 * latches), a fire_alarm event named by rule (NULL: by the readings), a new
 * alarm for the zone's acknowledge and silence, and the coincidence check.
 */
static void go_fire(struct engine *e, size_t det, const char *rule, const char *note,
                    struct ev_time t, struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    struct zone_state *z = &e->zones[cd->zone];
    d->st.level = LEVEL_FIRE_ALARM;
    d->st.pending = false;
    d->st.latched = cd->type != DET_PANEL_ZONE;
    d->st.acknowledged = false;
    d->st.silenced = false;
    d->peak = LEVEL_FIRE_ALARM;
    d->fire_mono = t.mono_ms;
    touch(d, t);
    z->acknowledged = false;
    z->silenced = false;
    struct event ev =
        det_event(e, det, EV_FIRE_ALARM, rule ? rule : cause_rule(e, det, LEVEL_FIRE_ALARM), t);
    describe_cause(e, det, LEVEL_FIRE_ALARM, &ev);
    if (note) {
        prefix_detail(&ev, note);
    }
    evlist_push(out, &ev);
    check_coincidence(e, det, t, out);
}

/* Hold a detector's alarm (verification or positive alarm sequence). */
static void hold(struct engine *e, size_t det, const char *rule, const char *note, struct ev_time t,
                 struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    d->st.level = LEVEL_PRE_ALARM;
    d->st.pending = true;
    d->st.acknowledged = false;
    if (d->peak < LEVEL_PRE_ALARM)
        d->peak = LEVEL_PRE_ALARM;
    touch(d, t);
    struct event ev = det_event(e, det, EV_ALARM_PENDING, rule, t);
    describe_cause(e, det, LEVEL_FIRE_ALARM, &ev);
    prefix_detail(&ev, note);
    evlist_push(out, &ev);
}

/* Send every alarm the zone's positive alarm sequence holds. */
static void pas_release(struct engine *e, size_t zone, const char *rule, const char *note,
                        struct ev_time t, struct evlist *out)
{
    struct zone_state *z = &e->zones[zone];
    z->pas = PAS_IDLE;
    for (size_t i = 0; i < z->ndets; i++)
        if (e->dets[z->dets[i]].st.pending)
            go_fire(e, z->dets[i], rule, note, t, out);
}

static void verify_confirm(struct engine *e, size_t zone, const char *rule, const char *note,
                           struct ev_time t, struct evlist *out)
{
    struct zone_state *z = &e->zones[zone];
    z->verifying = false;
    if (e->dets[z->verify_det].st.pending)
        go_fire(e, z->verify_det, rule, note, t, out);
}

/* A detector's readings reached fire alarm level: the zone decides what happens. */
static void raise_fire(struct engine *e, size_t det, struct ev_time t, struct evlist *out)
{
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    const struct cfg_zone *cz = &e->cfg->zones[cd->zone];
    struct zone_state *z = &e->zones[cd->zone];
    if (z->verifying) {
        verify_confirm(e, cd->zone, "alarm_verification_second_detector",
                       "confirmed by a second detector in the zone", t, out);
        go_fire(e, det, NULL, "second detector during alarm verification", t, out);
        return;
    }
    if (z->pas != PAS_IDLE) {
        pas_release(e, cd->zone, "pas_second_detector",
                    "a second detector alarmed during the positive alarm sequence", t, out);
        go_fire(e, det, NULL, "second detector during the positive alarm sequence", t, out);
        return;
    }
    if (cz->verification && cd->type == DET_SMOKE) {
        z->verifying = true;
        z->verify_det = det;
        z->verify_start = t.mono_ms;
        schedule(e, t.mono_ms + cz->verify_retard_ms + cz->verify_window_ms);
        char note[96];
        snprintf(note, sizeof(note), "alarm verification: retard %.0f s, then confirmation %.0f s",
                 (double)cz->verify_retard_ms / 1000.0, (double)cz->verify_window_ms / 1000.0);
        hold(e, det, "alarm_verification", note, t, out);
        return;
    }
    if (cz->pas && cd->type != DET_PANEL_ZONE) {
        z->pas = PAS_ACK_WAIT;
        z->pas_deadline = t.mono_ms + cz->pas_ack_ms;
        z->acknowledged = false;
        schedule(e, z->pas_deadline);
        char note[96];
        snprintf(note, sizeof(note), "positive alarm sequence: acknowledge within %.0f s",
                 (double)cz->pas_ack_ms / 1000.0);
        hold(e, det, "positive_alarm_sequence", note, t, out);
        return;
    }
    go_fire(e, det, NULL, NULL, t, out);
}

/* A held detector read alarm level again: within the confirmation window that confirms it. */
static void verify_reading(struct engine *e, size_t det, struct ev_time t, struct evlist *out)
{
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    const struct cfg_zone *cz = &e->cfg->zones[cd->zone];
    struct zone_state *z = &e->zones[cd->zone];
    if (!z->verifying || z->verify_det != det)
        return;
    int64_t open = z->verify_start + cz->verify_retard_ms;
    if (t.mono_ms < open || t.mono_ms >= open + cz->verify_window_ms)
        return;
    verify_confirm(e, cd->zone, "alarm_verification_confirmed",
                   "still in alarm after the retard period", t, out);
}

/*
 * Bring a detector's panel state in line with its condition. Fire alarms
 * latch and held alarms wait for their zone, so only rising matters for
 * them; pre-alarm follows the readings.
 */
static void evaluate(struct engine *e, size_t det, struct ev_time t, struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    enum det_level cond = condition(d);
    if (is_disabled(e, det))
        return;
    if (in_test(e, det)) {
        bool on = cond == LEVEL_FIRE_ALARM;
        if (on == d->st.test_alarm)
            return;
        d->st.test_alarm = on;
        touch(d, t);
        struct event ev = det_event(e, det, on ? EV_TEST_ALARM : EV_RESTORE,
                                    on ? cause_rule(e, det, LEVEL_FIRE_ALARM) : "test_restore", t);
        if (on) {
            describe_cause(e, det, LEVEL_FIRE_ALARM, &ev);
        } else {
            ev.has_value = d->st.has_value;
            ev.value = d->st.value;
            strlcpy_fg(ev.detail, "test alarm ended", sizeof(ev.detail));
        }
        evlist_push(out, &ev);
        return;
    }
    if (d->st.pending) {
        if (cond == LEVEL_FIRE_ALARM)
            verify_reading(e, det, t, out);
        return;
    }
    if (d->st.level == LEVEL_FIRE_ALARM) {
        /* the panel latches its zones and clears the alarm bit on its own reset */
        if (cd->type != DET_PANEL_ZONE || cond == LEVEL_FIRE_ALARM)
            return;
        if (cond == LEVEL_PRE_ALARM) {
            d->st.level = LEVEL_PRE_ALARM;
            touch(d, t);
            return;
        }
        restore(e, det, "panel_zone_restore", "", t, out);
        return;
    }
    if (cond == LEVEL_FIRE_ALARM) {
        raise_fire(e, det, t, out);
        return;
    }
    if (cond == d->st.level)
        return;
    if (cond == LEVEL_PRE_ALARM) {
        d->st.level = LEVEL_PRE_ALARM;
        d->peak = max_level(d->peak, LEVEL_PRE_ALARM);
        touch(d, t);
        struct event ev = det_event(e, det, EV_PRE_ALARM, cause_rule(e, det, LEVEL_PRE_ALARM), t);
        describe_cause(e, det, LEVEL_PRE_ALARM, &ev);
        evlist_push(out, &ev);
        return;
    }
    static const char *const rules[] = {[DET_SMOKE] = "smoke_restore",
                                        [DET_HEAT] = "heat_restore",
                                        [DET_PANEL_ZONE] = "panel_zone_restore"};
    restore(e, det, rules[cd->type], "", t, out);
}

/*
 * The detector stops taking part (disabled, or entering test mode): whatever
 * alarm it shows ends with a restore naming why; a process of its zone that
 * waited on it stops.
 */
static void leave_alarm(struct engine *e, size_t det, const char *rule, const char *why,
                        struct ev_time t, struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    struct zone_state *z = &e->zones[e->cfg->detectors[det].zone];
    if (z->verifying && z->verify_det == det)
        z->verifying = false;
    if (d->st.level != LEVEL_NORMAL || d->st.pending)
        restore(e, det, rule, why, t, out);
    bool held = false;
    for (size_t i = 0; i < z->ndets; i++)
        held |= e->dets[z->dets[i]].st.pending;
    if (!held)
        z->pas = PAS_IDLE;
}

/* Median of the last three raw values (fewer at first): one wild sample never decides. */
static bool spike_filter(struct det_state *d, double v, double *out)
{
    double a = d->recent[0], b = d->recent[1];
    int n = d->nrecent;
    d->recent[1] = a;
    d->recent[0] = v;
    if (d->nrecent < 2)
        d->nrecent++;
    if (n == 0)
        return false;
    if (n == 1) {
        *out = fmin(a, v);
        return true;
    }
    *out = fmax(fmin(a, b), fmin(fmax(a, b), v));
    return true;
}

/* Rate of rise over the window, from filtered values; also records v in the history. */
static bool rate_of_rise(const struct engine *e, struct det_state *d, int64_t t, double v)
{
    int64_t win = e->cfg->defaults.ror_window_ms;
    bool met = false;
    for (int i = 0; i < d->ring_n; i++) {
        const struct ror_sample *s = &d->ring[(d->ring_head - 1 - i + ROR_RING) % ROR_RING];
        if (t - s->t < win)
            continue;
        double need = e->cfg->defaults.ror_degc_per_min * (double)(t - s->t) / 60000.0;
        met = at_least(v - s->v, need);
        break;
    }
    const struct ror_sample *last =
        d->ring_n ? &d->ring[(d->ring_head - 1 + ROR_RING) % ROR_RING] : NULL;
    if (!last || t - last->t >= win / ROR_STEPS) {
        d->ring[d->ring_head] = (struct ror_sample){t, v};
        d->ring_head = (d->ring_head + 1) % ROR_RING;
        if (d->ring_n < ROR_RING)
            d->ring_n++;
    }
    return met;
}

static void track_stuck(struct engine *e, size_t det, double v, struct ev_time t,
                        struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    int64_t after = e->cfg->detectors[det].stuck_after_ms;
    if (after <= 0)
        return;
    if (d->stuck_ref && v == d->stuck_value)
        return;
    d->stuck_ref = true;
    d->stuck_value = v;
    d->stuck_since = t.mono_ms;
    schedule(e, t.mono_ms + after);
    set_fault(e, det, FAULT_STUCK, false, "value changing again", t, out);
}

/* A new plausible value: filters, levels, rate of rise. */
static void take_value(struct engine *e, size_t det, double v, struct ev_time t, struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    d->st.has_value = true;
    d->st.value = v;
    track_stuck(e, det, v, t, out);
    double f = v;
    /* Heat: a single-sample spike must not alarm; smoke has alarm verification for that. */
    if (cd->type == DET_HEAT && !spike_filter(d, v, &f))
        return;
    d->static_level = level_for_value(&cd->thresholds, d->static_level, f);
    if (d->ring)
        d->ror_active = rate_of_rise(e, d, t.mono_ms, f);
}

static void set_panel_disabled(struct engine *e, size_t det, bool disabled, struct ev_time t,
                               struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    if (disabled == d->panel_disabled)
        return;
    bool was = is_disabled(e, det);
    struct event ev = det_event(e, det, disabled ? EV_DISABLED : EV_ENABLED,
                                disabled ? "panel_zone_disabled" : "panel_zone_enabled", t);
    ev.test = false;
    strlcpy_fg(ev.detail,
               disabled ? "disabled at the panel: its alarms are not reported until it is enabled"
                        : "enabled again at the panel",
               sizeof(ev.detail));
    evlist_push(out, &ev);
    if (disabled && !was)
        leave_alarm(e, det, "panel_zone_restore", "disabled at the panel", t, out);
    d->panel_disabled = disabled;
    d->st.disabled = is_disabled(e, det);
    touch(d, t);
}

static void eval_reading(struct engine *e, const struct reading *r, struct ev_time t,
                         struct evlist *out)
{
    size_t det = r->detector;
    struct det_state *d = &e->dets[det];
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    bool zone = cd->type == DET_PANEL_ZONE;

    d->heard_mono = t.mono_ms;
    d->answered = true;
    d->st.last_reading_mono = t.mono_ms;
    if (d->st.faults & (1u << FAULT_NO_RESPONSE))
        schedule(e, t.mono_ms + cd->no_response_ms);
    set_fault(e, det, FAULT_NO_RESPONSE, false, "answering again", t, out);

    /* an implausible value is a fault, never a reading: the level keeps what it had */
    if (has_thresholds(cd->type) && r->has_value) {
        if (r->value_ok)
            take_value(e, det, r->value, t, out);
        set_fault(e, det, FAULT_IMPLAUSIBLE, !r->value_ok,
                  r->value_ok ? "value plausible again" : r->value_err, t, out);
    }
    if (bit_present(r, ROLE_DISABLED))
        set_panel_disabled(e, det, bit_set(r, ROLE_DISABLED), t, out);

    d->bits_level = bit_set(r, ROLE_ALARM)      ? LEVEL_FIRE_ALARM
                    : bit_set(r, ROLE_PREALARM) ? LEVEL_PRE_ALARM
                                                : LEVEL_NORMAL;
    evaluate(e, det, t, out);

    if (bit_present(r, ROLE_FAULT))
        set_fault(e, det, FAULT_DETECTOR_BIT, bit_set(r, ROLE_FAULT),
                  bit_set(r, ROLE_FAULT) ? (zone ? "the panel reports a fault on the zone"
                                                 : "the detector reports a fault")
                                         : "fault bit cleared",
                  t, out);
    if (bit_present(r, ROLE_MAINTENANCE))
        set_fault(e, det, FAULT_MAINTENANCE, bit_set(r, ROLE_MAINTENANCE),
                  bit_set(r, ROLE_MAINTENANCE) ? "maintenance needed (e.g. dirty chamber)"
                                               : "maintenance bit cleared",
                  t, out);
}

/* Set or clear the LifeCheck fault bit on every detector of a device, without events. */
static void mark_lifecheck(struct engine *e, size_t dev, bool on, struct ev_time t)
{
    unsigned bit = 1u << FAULT_LIFECHECK;
    for (size_t i = 0; i < e->cfg->ndetectors; i++) {
        struct det_state *d = &e->dets[i];
        if (e->cfg->detectors[i].device != dev || on == ((d->st.faults & bit) != 0))
            continue;
        d->st.faults ^= bit;
        touch(d, t);
    }
}

static void eval_lifecheck(struct engine *e, const struct device_sample *s, struct evlist *out)
{
    struct dev_state *dv = &e->devs[s->device];
    if (!s->has_lifecheck)
        return;
    if (!dv->lc_known || s->lifecheck != dv->lc_value) {
        if (!dv->lc_known)
            schedule(e, s->t.mono_ms + e->cfg->defaults.lifecheck_ms);
        dv->lc_known = true;
        dv->lc_value = s->lifecheck;
        dv->lc_changed_mono = s->t.mono_ms;
    } else {
        return;
    }
    if (!dv->lc_fault)
        return;
    dv->lc_fault = false;
    schedule(e, s->t.mono_ms + e->cfg->defaults.lifecheck_ms);
    mark_lifecheck(e, s->device, false, s->t);
    struct event ev = dev_event(e, s->device, EV_FAULT_RESTORE, "lifecheck_stopped", s->t);
    ev.fault = FAULT_LIFECHECK;
    snprintf(ev.detail, sizeof(ev.detail), "LifeCheck counter moving again (now %lu)",
             (unsigned long)s->lifecheck);
    evlist_push(out, &ev);
}

void engine_sample(struct engine *e, const struct device_sample *s, struct evlist *out)
{
    if (!e || !s || !out || s->device >= e->cfg->ndevices)
        return;
    size_t start = out->count;
    for (size_t i = 0; i < s->nreadings; i++)
        if (s->readings[i].detector < e->cfg->ndetectors)
            eval_reading(e, &s->readings[i], s->t, out);
    eval_lifecheck(e, s, out);
    alarms_first(out, start);
}

/* One fault event for a device or bus changing state; nothing if it is not a change. */
static void link_state(bool *down, struct event ev, bool up, const char *why, struct evlist *out)
{
    if (up != *down)
        return;
    *down = !up;
    if (up)
        ev.kind = EV_FAULT_RESTORE;
    strlcpy_fg(ev.detail, why && *why ? why : (up ? "answering again" : "not answering"),
               sizeof(ev.detail));
    evlist_push(out, &ev);
}

void engine_device_state(struct engine *e, size_t device, bool up, const char *why,
                         struct ev_time now, struct evlist *out)
{
    if (!e || !out || device >= e->cfg->ndevices)
        return;
    struct dev_state *dv = &e->devs[device];
    /* the counter could not be watched while the device was down: give it a full period */
    if (up && dv->down) {
        dv->lc_changed_mono = now.mono_ms;
        schedule(e, now.mono_ms + e->cfg->defaults.lifecheck_ms);
    }
    struct event ev = dev_event(e, device, EV_FAULT, "device_down", now);
    ev.fault = FAULT_DEVICE_DOWN;
    link_state(&dv->down, ev, up, why, out);
}

void engine_bus_state(struct engine *e, size_t bus, bool up, const char *why, struct ev_time now,
                      struct evlist *out)
{
    if (!e || !out || bus >= e->cfg->nbuses)
        return;
    struct event ev = base_event(EV_FAULT, SRC_BUS, "bus_down", now);
    ev.bus = (long)bus;
    ev.fault = FAULT_BUS_DOWN;
    link_state(&e->bus_down[bus], ev, up, why, out);
}

/* A due timer of one detector, or its next deadline (NEVER if none). */
static int64_t det_timers(struct engine *e, size_t i, struct ev_time now, struct evlist *out);
static int64_t zone_timers(struct engine *e, size_t z, struct ev_time now, struct evlist *out);
static void end_disable(struct engine *e, long zone, size_t det, const char *rule, const char *user,
                        struct ev_time t, struct evlist *out);
static void end_test(struct engine *e, long zone, size_t det, const char *rule, const char *user,
                     struct ev_time t, struct evlist *out);

static int64_t dev_timers(struct engine *e, size_t i, struct ev_time now, struct evlist *out)
{
    struct dev_state *dv = &e->devs[i];
    if (!dv->lc_known || dv->down || dv->lc_fault)
        return NEVER;
    int64_t due = dv->lc_changed_mono + e->cfg->defaults.lifecheck_ms;
    if (now.mono_ms < due)
        return due;
    dv->lc_fault = true;
    mark_lifecheck(e, i, true, now);
    struct event ev = dev_event(e, i, EV_FAULT, "lifecheck_stopped", now);
    ev.fault = FAULT_LIFECHECK;
    snprintf(ev.detail, sizeof(ev.detail),
             "LifeCheck counter stuck at %lu for %.1f s: the panel may have stopped",
             (unsigned long)dv->lc_value, (double)(now.mono_ms - dv->lc_changed_mono) / 1000.0);
    evlist_push(out, &ev);
    return NEVER;
}

static int64_t earlier(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t det_timers(struct engine *e, size_t i, struct ev_time now, struct evlist *out)
{
    struct det_state *d = &e->dets[i];
    const struct cfg_detector *cd = &e->cfg->detectors[i];
    int64_t next = NEVER;
    char detail[128];
    if (!(d->st.faults & (1u << FAULT_NO_RESPONSE))) {
        int64_t quiet = now.mono_ms - d->heard_mono;
        if (quiet < cd->no_response_ms) {
            next = earlier(next, d->heard_mono + cd->no_response_ms);
        } else {
            if (d->answered)
                snprintf(detail, sizeof(detail), "no answer for %.1f s (limit %.1f s)",
                         (double)quiet / 1000.0, (double)cd->no_response_ms / 1000.0);
            else
                snprintf(detail, sizeof(detail), "no answer since the gateway started %.1f s ago",
                         (double)quiet / 1000.0);
            set_fault(e, i, FAULT_NO_RESPONSE, true, detail, now, out);
        }
    }
    if (cd->stuck_after_ms > 0 && d->stuck_ref && !(d->st.faults & (1u << FAULT_STUCK))) {
        int64_t due = d->stuck_since + cd->stuck_after_ms;
        if (now.mono_ms < due) {
            next = earlier(next, due);
        } else {
            snprintf(detail, sizeof(detail), "value %.2f %s unchanged for %.0f s", d->stuck_value,
                     detector_unit(cd->type), (double)(now.mono_ms - d->stuck_since) / 1000.0);
            set_fault(e, i, FAULT_STUCK, true, detail, now, out);
        }
    }
    if (d->own_disabled) {
        if (now.mono_ms < d->disabled_until)
            next = earlier(next, d->disabled_until);
        else
            end_disable(e, -1, i, "disablement_expired", NULL, now, out);
    }
    if (d->own_test) {
        if (now.mono_ms < d->test_until)
            next = earlier(next, d->test_until);
        else
            end_test(e, -1, i, "test_mode_expired", NULL, now, out);
    }
    return next;
}

static int64_t zone_timers(struct engine *e, size_t zi, struct ev_time now, struct evlist *out)
{
    struct zone_state *z = &e->zones[zi];
    const struct cfg_zone *cz = &e->cfg->zones[zi];
    int64_t next = NEVER;
    if (z->verifying) {
        int64_t end = z->verify_start + cz->verify_retard_ms + cz->verify_window_ms;
        if (now.mono_ms < end) {
            next = earlier(next, end);
        } else {
            z->verifying = false;
            restore(e, z->verify_det, "alarm_verification_expired",
                    "no alarm-level reading in the confirmation window", now, out);
        }
    }
    if (z->pas != PAS_IDLE) {
        if (now.mono_ms < z->pas_deadline)
            next = earlier(next, z->pas_deadline);
        else if (z->pas == PAS_ACK_WAIT)
            pas_release(e, zi, "pas_not_acknowledged",
                        "not acknowledged in time: positive alarm sequence over", now, out);
        else
            pas_release(e, zi, "pas_investigation_expired",
                        "investigation time over without a reset", now, out);
    }
    if (z->disabled) {
        if (now.mono_ms < z->disabled_until)
            next = earlier(next, z->disabled_until);
        else
            end_disable(e, (long)zi, 0, "disablement_expired", NULL, now, out);
    }
    if (z->test) {
        if (now.mono_ms < z->test_until)
            next = earlier(next, z->test_until);
        else
            end_test(e, (long)zi, 0, "test_mode_expired", NULL, now, out);
    }
    return next;
}

int64_t engine_next_due(const struct engine *e)
{
    return e ? e->next_due : NEVER;
}

void engine_tick(struct engine *e, struct ev_time now, struct evlist *out)
{
    if (!e || !out || now.mono_ms < e->next_due)
        return;
    size_t start = out->count;
    const struct cfg *cfg = e->cfg;
    int64_t next = NEVER;
    /* timers armed while the scan runs (an enable that starts a verification) lower this */
    e->next_due = NEVER;
    /* zones first: a held alarm going out must not wait behind a scan of every detector */
    for (size_t i = 0; i < cfg->nzones; i++)
        next = earlier(next, zone_timers(e, i, now, out));
    for (size_t i = 0; i < cfg->ndetectors; i++)
        next = earlier(next, det_timers(e, i, now, out));
    for (size_t i = 0; i < cfg->ndevices; i++)
        next = earlier(next, dev_timers(e, i, now, out));
    e->next_due = earlier(next, e->next_due);
    alarms_first(out, start);
}

/*
 * Resolve op's target: *zone (-1 for all) and *det (-1 unless a detector).
 * allowed is a bit set of (1 << scope). 0, or -1 with err.
 */
static int target(const struct engine *e, const struct engine_op *op, unsigned allowed,
                  const char *what, long *zone, long *det, char *err, size_t errlen)
{
    *zone = -1;
    *det = -1;
    if (!e || !op) {
        snprintf(err, errlen, "%s: no engine or no command", what);
        return -1;
    }
    static const char *const scopes[] = {"the whole building", "a zone", "a detector"};
    if ((unsigned)op->scope > SCOPE_DETECTOR || !(allowed & (1u << op->scope))) {
        snprintf(err, errlen, "%s does not apply to %s", what,
                 (unsigned)op->scope <= SCOPE_DETECTOR ? scopes[op->scope] : "that target");
        return -1;
    }
    if (op->scope == SCOPE_ZONE) {
        *zone = find_zone(e->cfg, op->id);
        if (*zone < 0) {
            snprintf(err, errlen, "%s: no zone \"%s\" in %s", what, op->id ? op->id : "",
                     e->cfg->path ? e->cfg->path : "the site config");
            return -1;
        }
    } else if (op->scope == SCOPE_DETECTOR) {
        *det = op->id ? cfg_find_detector(e->cfg, op->id) : -1;
        if (*det < 0) {
            snprintf(err, errlen, "%s: no detector \"%s\" in %s", what, op->id ? op->id : "",
                     e->cfg->path ? e->cfg->path : "the site config");
            return -1;
        }
        *zone = (long)e->cfg->detectors[*det].zone;
    }
    return 0;
}

static bool in_scope(long zone, size_t z)
{
    return zone < 0 || (size_t)zone == z;
}

/* Does zone z hold a fire alarm (or, with held, a held alarm)? */
static bool zone_has_alarm(const struct engine *e, size_t z, bool held)
{
    const struct zone_state *zs = &e->zones[z];
    for (size_t i = 0; i < zs->ndets; i++) {
        const struct det_status *st = &e->dets[zs->dets[i]].st;
        if (st->level == LEVEL_FIRE_ALARM || (held && st->pending))
            return true;
    }
    return false;
}

static void op_detail(struct event *ev, const char *verb, const struct engine *e, long zone,
                      const char *user)
{
    snprintf(ev->detail, sizeof(ev->detail), "%s %s%s%s%s", verb,
             zone >= 0 ? "zone " : "every zone", zone >= 0 ? e->cfg->zones[zone].id : "",
             user && *user ? " by " : "", user && *user ? user : "");
}

int engine_acknowledge(struct engine *e, const struct engine_op *op, struct evlist *out, char *err,
                       size_t errlen)
{
    long zone, det;
    if (target(e, op, 1u << SCOPE_ALL | 1u << SCOPE_ZONE, "acknowledge", &zone, &det, err, errlen) <
        0)
        return -1;
    bool any = false;
    for (size_t z = 0; z < e->cfg->nzones; z++)
        any |= in_scope(zone, z) && zone_has_alarm(e, z, true) && !e->zones[z].acknowledged;
    if (!any) {
        snprintf(err, errlen, "acknowledge: %s%s has no unacknowledged fire alarm or held alarm",
                 zone >= 0 ? "zone " : "the building", zone >= 0 ? e->cfg->zones[zone].id : "");
        return -1;
    }
    size_t start = out->count;
    struct event ev = area_event(zone, EV_ACKNOWLEDGED, "operator_acknowledge", op->user, op->now);
    op_detail(&ev, "acknowledged", e, zone, op->user);
    evlist_push(out, &ev);
    for (size_t z = 0; z < e->cfg->nzones; z++) {
        struct zone_state *zs = &e->zones[z];
        if (!in_scope(zone, z) || !zone_has_alarm(e, z, true))
            continue;
        zs->acknowledged = true;
        for (size_t i = 0; i < zs->ndets; i++) {
            struct det_state *d = &e->dets[zs->dets[i]];
            if (d->st.level == LEVEL_FIRE_ALARM || d->st.pending) {
                d->st.acknowledged = true;
                touch(d, op->now);
            }
        }
        /* acknowledged in time: the investigation starts; late is too late (tick sent it) */
        if (zs->pas == PAS_ACK_WAIT && op->now.mono_ms < zs->pas_deadline) {
            zs->pas = PAS_INVESTIGATE;
            zs->pas_deadline = op->now.mono_ms + e->cfg->zones[z].pas_investigation_ms;
            schedule(e, zs->pas_deadline);
        }
    }
    alarms_first(out, start);
    return 0;
}

int engine_silence(struct engine *e, const struct engine_op *op, struct evlist *out, char *err,
                   size_t errlen)
{
    long zone, det;
    if (target(e, op, 1u << SCOPE_ALL | 1u << SCOPE_ZONE, "silence", &zone, &det, err, errlen) < 0)
        return -1;
    bool any = false;
    for (size_t z = 0; z < e->cfg->nzones; z++)
        any |= in_scope(zone, z) && zone_has_alarm(e, z, false) && !e->zones[z].silenced;
    if (!any) {
        snprintf(err, errlen, "silence: %s%s has no fire alarm sounding",
                 zone >= 0 ? "zone " : "the building", zone >= 0 ? e->cfg->zones[zone].id : "");
        return -1;
    }
    struct event ev = area_event(zone, EV_SILENCED, "operator_silence", op->user, op->now);
    op_detail(&ev, "sounders silenced for", e, zone, op->user);
    evlist_push(out, &ev);
    for (size_t z = 0; z < e->cfg->nzones; z++) {
        struct zone_state *zs = &e->zones[z];
        if (!in_scope(zone, z) || !zone_has_alarm(e, z, false))
            continue;
        zs->silenced = true;
        for (size_t i = 0; i < zs->ndets; i++) {
            struct det_state *d = &e->dets[zs->dets[i]];
            if (d->st.level == LEVEL_FIRE_ALARM) {
                d->st.silenced = true;
                touch(d, op->now);
            }
        }
    }
    return 0;
}

int engine_reset(struct engine *e, const struct engine_op *op, struct evlist *out, char *err,
                 size_t errlen)
{
    long zone, det;
    if (target(e, op, 1u << SCOPE_ALL | 1u << SCOPE_ZONE, "reset", &zone, &det, err, errlen) < 0)
        return -1;
    size_t start = out->count;
    struct event ev = area_event(zone, EV_RESET, "operator_reset", op->user, op->now);
    op_detail(&ev, "reset", e, zone, op->user);
    evlist_push(out, &ev);
    for (size_t z = 0; z < e->cfg->nzones; z++) {
        struct zone_state *zs = &e->zones[z];
        if (!in_scope(zone, z))
            continue;
        zs->verifying = false;
        zs->pas = PAS_IDLE;
        zs->confirmed = false;
        zs->acknowledged = false;
        zs->silenced = false;
        for (size_t i = 0; i < zs->ndets; i++) {
            size_t d = zs->dets[i];
            struct det_state *ds = &e->dets[d];
            if (ds->st.level != LEVEL_FIRE_ALARM && !ds->st.pending)
                continue;
            /* the condition was verified or held once already: no second delay */
            if (condition(ds) == LEVEL_FIRE_ALARM && !is_disabled(e, d) && !in_test(e, d))
                go_fire(e, d, NULL, "still in alarm after the reset", op->now, out);
            else
                restore(e, d, "operator_reset", "reset", op->now, out);
        }
    }
    alarms_first(out, start);
    return 0;
}

/* After a point's disablement or test mode changed: refresh flags and re-judge it. */
static void rejoin(struct engine *e, size_t det, struct ev_time t, struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    d->st.disabled = is_disabled(e, det);
    d->st.test_mode = in_test(e, det) && !d->st.disabled;
    if (!d->st.test_mode)
        d->st.test_alarm = false;
    touch(d, t);
    evaluate(e, det, t, out);
}

/* The detectors a command on (zone, det) concerns: det alone, or every detector of the zone. */
static size_t target_dets(const struct engine *e, long zone, long det, size_t *one,
                          const size_t **list)
{
    if (det >= 0) {
        *one = (size_t)det;
        *list = one;
        return 1;
    }
    *list = e->zones[zone].dets;
    return e->zones[zone].ndets;
}

/* A disablement or test-mode event for detector det (>= 0) or zone, naming who asked. */
static struct event mode_event(struct engine *e, long zone, long det, enum ev_kind kind,
                               const char *rule, const char *user, struct ev_time t)
{
    struct event ev =
        det >= 0 ? det_event(e, (size_t)det, kind, rule, t) : area_event(zone, kind, rule, user, t);
    ev.test = false;
    strlcpy_fg(ev.user, user ? user : "", sizeof(ev.user));
    return ev;
}

/* Judge every detector of the target again under its new mode. */
static void rejoin_targets(struct engine *e, long zone, long det, struct ev_time t,
                           struct evlist *out)
{
    size_t one;
    const size_t *list;
    size_t n = target_dets(e, zone, det, &one, &list);
    for (size_t k = 0; k < n; k++)
        rejoin(e, list[k], t, out);
}

static void end_disable(struct engine *e, long zone, size_t det, const char *rule, const char *user,
                        struct ev_time t, struct evlist *out)
{
    long d = zone >= 0 ? -1 : (long)det;
    long z = zone >= 0 ? zone : (long)e->cfg->detectors[det].zone;
    struct event ev = mode_event(e, zone, d, EV_ENABLED, rule, user, t);
    snprintf(ev.detail, sizeof(ev.detail), "%s %s", zone >= 0 ? "zone" : "detector",
             strcmp(rule, "disablement_expired") == 0 ? "disablement expired: enabled again"
                                                      : "enabled again");
    evlist_push(out, &ev);
    if (zone >= 0)
        e->zones[zone].disabled = false;
    else
        e->dets[det].own_disabled = false;
    rejoin_targets(e, z, d, t, out);
}

static void end_test(struct engine *e, long zone, size_t det, const char *rule, const char *user,
                     struct ev_time t, struct evlist *out)
{
    long d = zone >= 0 ? -1 : (long)det;
    long z = zone >= 0 ? zone : (long)e->cfg->detectors[det].zone;
    struct event ev = mode_event(e, zone, d, EV_TEST_MODE_OFF, rule, user, t);
    snprintf(ev.detail, sizeof(ev.detail), "%s test mode %s", zone >= 0 ? "zone" : "detector",
             strcmp(rule, "test_mode_expired") == 0 ? "expired" : "ended");
    evlist_push(out, &ev);
    if (zone >= 0)
        e->zones[zone].test = false;
    else
        e->dets[det].own_test = false;
    size_t one;
    const size_t *list;
    size_t n = target_dets(e, z, d, &one, &list);
    for (size_t k = 0; k < n; k++) {
        size_t i = list[k];
        struct det_state *ds = &e->dets[i];
        if (ds->st.test_alarm && !in_test(e, i)) {
            /* close the open test alarm; a condition still present is then judged for real */
            ds->st.test_alarm = false;
            struct event r = det_event(e, i, EV_RESTORE, "test_restore", t);
            r.test = true;
            strlcpy_fg(r.detail, "test alarm closed: test mode ended", sizeof(r.detail));
            evlist_push(out, &r);
        }
        rejoin(e, i, t, out);
    }
}

static int check_until(const struct engine_op *op, int64_t until_mono, const char *what, char *err,
                       size_t errlen)
{
    if (until_mono > op->now.mono_ms)
        return 0;
    snprintf(err, errlen, "%s: the expiry time is %.1f s in the past; give a time after now", what,
             (double)(op->now.mono_ms - until_mono) / 1000.0);
    return -1;
}

int engine_disable(struct engine *e, const struct engine_op *op, int64_t until_mono,
                   struct evlist *out, char *err, size_t errlen)
{
    long zone, det;
    if (target(e, op, 1u << SCOPE_ZONE | 1u << SCOPE_DETECTOR, "disable", &zone, &det, err,
               errlen) < 0 ||
        check_until(op, until_mono, "disable", err, errlen) < 0)
        return -1;
    size_t start = out->count;
    struct event ev =
        mode_event(e, zone, det, EV_DISABLED, det >= 0 ? "detector_disabled" : "zone_disabled",
                   op->user, op->now);
    snprintf(ev.detail, sizeof(ev.detail),
             "disabled at the gateway for %.0f s: its alarms are not reported until it is enabled",
             (double)(until_mono - op->now.mono_ms) / 1000.0);
    evlist_push(out, &ev);
    size_t one;
    const size_t *list;
    size_t n = target_dets(e, zone, det, &one, &list);
    for (size_t k = 0; k < n; k++) {
        size_t i = list[k];
        if (!is_disabled(e, i))
            leave_alarm(e, i, det >= 0 ? "detector_disabled" : "zone_disabled",
                        "disabled at the gateway", op->now, out);
    }
    if (det >= 0) {
        e->dets[det].own_disabled = true;
        e->dets[det].disabled_until = until_mono;
    } else {
        e->zones[zone].disabled = true;
        e->zones[zone].disabled_until = until_mono;
        e->zones[zone].verifying = false;
        e->zones[zone].pas = PAS_IDLE;
    }
    schedule(e, until_mono);
    rejoin_targets(e, zone, det, op->now, out);
    alarms_first(out, start);
    return 0;
}

int engine_enable(struct engine *e, const struct engine_op *op, struct evlist *out, char *err,
                  size_t errlen)
{
    long zone, det;
    if (target(e, op, 1u << SCOPE_ZONE | 1u << SCOPE_DETECTOR, "enable", &zone, &det, err, errlen) <
        0)
        return -1;
    if (det >= 0 ? !e->dets[det].own_disabled : !e->zones[zone].disabled) {
        snprintf(err, errlen, "enable: %s \"%s\" is not disabled at the gateway%s",
                 det >= 0 ? "detector" : "zone", op->id,
                 det >= 0 && e->dets[det].panel_disabled ? " (it is disabled at the panel)" : "");
        return -1;
    }
    size_t start = out->count;
    end_disable(e, det >= 0 ? -1 : zone, det >= 0 ? (size_t)det : 0, "operator_enable", op->user,
                op->now, out);
    alarms_first(out, start);
    return 0;
}

int engine_test_mode(struct engine *e, const struct engine_op *op, bool on, int64_t until_mono,
                     struct evlist *out, char *err, size_t errlen)
{
    long zone, det;
    if (target(e, op, 1u << SCOPE_ZONE | 1u << SCOPE_DETECTOR, "test mode", &zone, &det, err,
               errlen) < 0)
        return -1;
    size_t start = out->count;
    if (!on) {
        if (det >= 0 ? !e->dets[det].own_test : !e->zones[zone].test) {
            snprintf(err, errlen, "test mode: %s \"%s\" is not in test mode",
                     det >= 0 ? "detector" : "zone", op->id);
            return -1;
        }
        end_test(e, det >= 0 ? -1 : zone, det >= 0 ? (size_t)det : 0, "operator_test_mode_off",
                 op->user, op->now, out);
        alarms_first(out, start);
        return 0;
    }
    if (check_until(op, until_mono, "test mode", err, errlen) < 0)
        return -1;
    /* testing must never be a way to make a real alarm disappear */
    size_t one;
    const size_t *list;
    size_t n = target_dets(e, zone, det, &one, &list);
    for (size_t k = 0; k < n; k++) {
        size_t i = list[k];
        const struct det_status *st = &e->dets[i].st;
        if ((st->level == LEVEL_FIRE_ALARM || st->pending) && !is_disabled(e, i)) {
            snprintf(err, errlen, "test mode: detector \"%s\" is in %s; reset it before testing",
                     e->cfg->detectors[i].id, st->pending ? "a held alarm" : "fire alarm");
            return -1;
        }
    }
    struct event ev =
        mode_event(e, zone, det, EV_TEST_MODE_ON,
                   det >= 0 ? "detector_test_mode" : "zone_test_mode", op->user, op->now);
    snprintf(ev.detail, sizeof(ev.detail),
             "test mode for %.0f s: alarms are test events, never sent as real",
             (double)(until_mono - op->now.mono_ms) / 1000.0);
    evlist_push(out, &ev);
    n = target_dets(e, zone, det, &one, &list);
    for (size_t k = 0; k < n; k++) {
        size_t i = list[k];
        if (!is_disabled(e, i) && e->dets[i].st.level != LEVEL_NORMAL)
            leave_alarm(e, i, "test_mode_on", "entering test mode", op->now, out);
    }
    if (det >= 0) {
        e->dets[det].own_test = true;
        e->dets[det].test_until = until_mono;
    } else {
        e->zones[zone].test = true;
        e->zones[zone].test_until = until_mono;
    }
    schedule(e, until_mono);
    rejoin_targets(e, zone, det, op->now, out);
    alarms_first(out, start);
    return 0;
}

static void add_det(struct area_status *a, const struct det_status *st)
{
    a->detectors++;
    a->fire_alarm += st->level == LEVEL_FIRE_ALARM;
    a->pre_alarm += st->level == LEVEL_PRE_ALARM && !st->pending;
    a->pending += st->pending;
    a->fault += st->faults != 0;
    a->disabled += st->disabled;
    a->test += st->test_mode;
}

int engine_zone(const struct engine *e, size_t zone, struct area_status *out)
{
    if (!e || !out || zone >= e->cfg->nzones)
        return -1;
    memset(out, 0, sizeof(*out));
    const struct zone_state *z = &e->zones[zone];
    for (size_t i = 0; i < z->ndets; i++)
        add_det(out, &e->dets[z->dets[i]].st);
    out->fire_confirmed = z->confirmed;
    out->acknowledged = z->acknowledged;
    out->silenced = z->silenced;
    out->zone_disabled = z->disabled;
    out->zone_test_mode = z->test;
    out->verifying = z->verifying;
    out->pas_running = z->pas != PAS_IDLE;
    return 0;
}

void engine_building(const struct engine *e, struct area_status *out)
{
    memset(out, 0, sizeof(*out));
    if (!e)
        return;
    bool all_acked = true, all_silenced = true, any_alarm = false;
    for (size_t z = 0; z < e->cfg->nzones; z++) {
        struct area_status a;
        engine_zone(e, z, &a);
        out->detectors += a.detectors;
        out->fire_alarm += a.fire_alarm;
        out->pre_alarm += a.pre_alarm;
        out->pending += a.pending;
        out->fault += a.fault;
        out->disabled += a.disabled;
        out->test += a.test;
        out->fire_confirmed |= a.fire_confirmed;
        out->zone_disabled |= a.zone_disabled;
        out->zone_test_mode |= a.zone_test_mode;
        out->verifying |= a.verifying;
        out->pas_running |= a.pas_running;
        if (a.fire_alarm || a.pending) {
            any_alarm = true;
            all_acked &= a.acknowledged;
            all_silenced &= a.silenced;
        }
    }
    out->acknowledged = any_alarm && all_acked;
    out->silenced = any_alarm && all_silenced;
}
