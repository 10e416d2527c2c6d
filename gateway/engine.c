/*
 * The alarm engine, first version (docs/alarm-rules.md). It owns the live
 * state of every detector, device and bus and turns samples and the passing
 * of time into events. Levels are non-latching: a detector follows its value
 * and bits, with hysteresis on the way down.
 *
 * Per detector it keeps the level the value alone asks for (so bits can come
 * and go without losing the hysteresis state), the highest level since it
 * last left normal (named in the restore event), and when it last answered.
 * Each public call appends its events and then puts its alarms ahead of the
 * rest, so a fault found in the same poll never delays a fire alarm.
 */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct det_state {
    struct det_status st;
    enum det_level value_level; /* what the value alone says, with hysteresis */
    enum det_level peak;        /* highest level since the detector left normal */
    int64_t heard_mono;         /* last reading, or the engine's start */
    bool answered;              /* at least one reading since the start */
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
    struct dev_state *devs;
    bool *bus_down;
};

struct engine *engine_new(const struct cfg *cfg, struct ev_time now)
{
    if (!cfg)
        return NULL;
    struct engine *e = xcalloc(1, sizeof(*e));
    e->cfg = cfg;
    e->dets = xcalloc(cfg->ndetectors, sizeof(*e->dets));
    e->devs = xcalloc(cfg->ndevices, sizeof(*e->devs));
    e->bus_down = xcalloc(cfg->nbuses, sizeof(*e->bus_down));
    for (size_t i = 0; i < cfg->ndetectors; i++) {
        e->dets[i].heard_mono = now.mono_ms;
        e->dets[i].st.changed_wall = now.wall_ms;
    }
    return e;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    free(e->dets);
    free(e->devs);
    free(e->bus_down);
    free(e);
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
    if (st->disabled)
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
    ev.test = false;
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

/* Put the alarms among the events appended since start ahead of the rest, keeping order. */
static void alarms_first(struct evlist *out, size_t start)
{
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
    case FAULT_NONE:
    case FAULT__COUNT:
        break;
    }
    return "fault";
}

/* Raise or clear one fault of a detector; an event only when it changes. */
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
    ev.fault = f;
    strlcpy_fg(ev.detail, detail, sizeof(ev.detail));
    evlist_push(out, &ev);
}

static const char *alarm_rule(enum detector_type type, enum det_level lvl, bool by_value)
{
    bool fire = lvl == LEVEL_FIRE_ALARM;
    if (type == DET_PANEL_ZONE)
        return fire ? "panel_zone_alarm" : "panel_zone_prealarm";
    if (!by_value)
        return fire ? "detector_alarm_bit" : "detector_prealarm_bit";
    if (type == DET_SMOKE)
        return fire ? "smoke_alarm_level" : "smoke_prealarm_level";
    return fire ? "heat_alarm_level" : "heat_prealarm_level";
}

static const char *restore_rule(enum detector_type type)
{
    switch (type) {
    case DET_SMOKE:
        return "smoke_restore";
    case DET_HEAT:
        return "heat_restore";
    case DET_PANEL_ZONE:
        return "panel_zone_restore";
    }
    return "restore";
}

/*
 * Move a detector to level `to` and report it. Rising emits the alarm of the
 * new level (straight to fire alarm: one fire_alarm, no pre_alarm first).
 * Falling to normal emits one restore naming the highest level of the episode.
 * Fire alarm -> pre-alarm emits nothing: the alarm already reported stays the
 * open one until the restore, so a receiver never reads a step down as an
 * all-clear. `fresh` says whether this reading carried a plausible value.
 */
static void set_level(struct engine *e, size_t det, enum det_level to, bool fresh, const char *why,
                      struct ev_time t, struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    const struct cfg_detector *cd = &e->cfg->detectors[det];
    enum det_level from = d->st.level;
    if (to == from)
        return;
    d->st.level = to;
    d->st.changed_wall = t.wall_ms;

    if (to > from) {
        bool by_value = has_thresholds(cd->type) && d->value_level >= to;
        struct event ev = det_event(e, det, to == LEVEL_FIRE_ALARM ? EV_FIRE_ALARM : EV_PRE_ALARM,
                                    alarm_rule(cd->type, to, by_value), t);
        ev.has_value = fresh;
        ev.value = d->st.value;
        const char *unit = detector_unit(cd->type);
        if (by_value) {
            ev.has_level = true;
            ev.level = to == LEVEL_FIRE_ALARM ? cd->thresholds.alarm : cd->thresholds.prealarm;
            snprintf(ev.detail, sizeof(ev.detail), "%s value %.2f %s reached the %s level %.2f %s",
                     detector_type_name(cd->type), ev.value, unit,
                     to == LEVEL_FIRE_ALARM ? "alarm" : "pre-alarm", ev.level, unit);
        } else {
            strlcpy_fg(ev.detail, why, sizeof(ev.detail));
        }
        if (to > d->peak)
            d->peak = to;
        evlist_push(out, &ev);
        return;
    }
    if (to != LEVEL_NORMAL)
        return;
    struct event ev = det_event(e, det, EV_RESTORE, restore_rule(cd->type), t);
    ev.has_value = fresh;
    ev.value = d->st.value;
    if (from != d->peak)
        snprintf(ev.detail, sizeof(ev.detail), "back to normal from %s (last %s)%s%s",
                 det_level_name(d->peak), det_level_name(from), *why ? ": " : "", why);
    else
        snprintf(ev.detail, sizeof(ev.detail), "back to normal from %s%s%s",
                 det_level_name(d->peak), *why ? ": " : "", why);
    d->peak = LEVEL_NORMAL;
    evlist_push(out, &ev);
}

static void eval_disabled(struct engine *e, size_t det, const struct reading *r, struct ev_time t,
                          struct evlist *out)
{
    struct det_state *d = &e->dets[det];
    if (!bit_present(r, ROLE_DISABLED))
        return;
    bool disabled = bit_set(r, ROLE_DISABLED);
    if (disabled == d->st.disabled)
        return;
    d->st.disabled = disabled;
    d->st.changed_wall = t.wall_ms;
    struct event ev = det_event(e, det, disabled ? EV_DISABLED : EV_ENABLED,
                                disabled ? "panel_zone_disabled" : "panel_zone_enabled", t);
    strlcpy_fg(ev.detail,
               disabled ? "disabled at the panel: its alarms are not reported until it is enabled"
                        : "enabled again at the panel",
               sizeof(ev.detail));
    evlist_push(out, &ev);
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
    set_fault(e, det, FAULT_NO_RESPONSE, false, "answering again", t, out);

    /* an implausible value is a fault, never a reading: the level keeps what it had */
    bool fresh = false;
    if (has_thresholds(cd->type) && r->has_value) {
        if (r->value_ok) {
            d->value_level = level_for_value(&cd->thresholds, d->value_level, r->value);
            d->st.has_value = true;
            d->st.value = r->value;
            fresh = true;
        }
        set_fault(e, det, FAULT_IMPLAUSIBLE, !r->value_ok,
                  r->value_ok ? "value plausible again" : r->value_err, t, out);
    }

    eval_disabled(e, det, r, t, out);

    enum det_level bits_level = LEVEL_NORMAL;
    const char *why = "";
    if (bit_set(r, ROLE_ALARM)) {
        bits_level = LEVEL_FIRE_ALARM;
        why = zone ? "the panel reports the zone in fire alarm" : "the detector reports alarm";
    } else if (bit_set(r, ROLE_PREALARM)) {
        bits_level = LEVEL_PRE_ALARM;
        why = zone ? "the panel reports the zone in pre-alarm" : "the detector reports pre-alarm";
    }
    enum det_level to = d->value_level > bits_level ? d->value_level : bits_level;
    if (d->st.disabled) {
        to = LEVEL_NORMAL;
        why = "disabled at the panel";
    } else if (to == LEVEL_NORMAL) {
        why = "";
    }
    set_level(e, det, to, fresh, why, t, out);

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
        d->st.changed_wall = t.wall_ms;
    }
}

static void eval_lifecheck(struct engine *e, const struct device_sample *s, struct evlist *out)
{
    struct dev_state *dv = &e->devs[s->device];
    if (!s->has_lifecheck)
        return;
    if (!dv->lc_known) {
        dv->lc_known = true;
        dv->lc_value = s->lifecheck;
        dv->lc_changed_mono = s->t.mono_ms;
        return;
    }
    if (s->lifecheck == dv->lc_value)
        return;
    dv->lc_value = s->lifecheck;
    dv->lc_changed_mono = s->t.mono_ms;
    if (!dv->lc_fault)
        return;
    dv->lc_fault = false;
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
    if (up && dv->down)
        dv->lc_changed_mono = now.mono_ms;
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

void engine_tick(struct engine *e, struct ev_time now, struct evlist *out)
{
    if (!e || !out)
        return;
    size_t start = out->count;
    const struct cfg *cfg = e->cfg;
    unsigned silent = 1u << FAULT_NO_RESPONSE;
    for (size_t i = 0; i < cfg->ndetectors; i++) {
        struct det_state *d = &e->dets[i];
        int64_t quiet = now.mono_ms - d->heard_mono;
        if ((d->st.faults & silent) || quiet < cfg->detectors[i].no_response_ms)
            continue;
        char detail[128];
        if (d->answered)
            snprintf(detail, sizeof(detail), "no answer for %.1f s (limit %.1f s)",
                     (double)quiet / 1000.0, (double)cfg->detectors[i].no_response_ms / 1000.0);
        else
            snprintf(detail, sizeof(detail), "no answer since the gateway started %.1f s ago",
                     (double)quiet / 1000.0);
        set_fault(e, i, FAULT_NO_RESPONSE, true, detail, now, out);
    }
    for (size_t i = 0; i < cfg->ndevices; i++) {
        struct dev_state *dv = &e->devs[i];
        if (!dv->lc_known || dv->down || dv->lc_fault ||
            now.mono_ms - dv->lc_changed_mono < cfg->defaults.lifecheck_ms)
            continue;
        dv->lc_fault = true;
        mark_lifecheck(e, i, true, now);
        struct event ev = dev_event(e, i, EV_FAULT, "lifecheck_stopped", now);
        ev.fault = FAULT_LIFECHECK;
        snprintf(ev.detail, sizeof(ev.detail),
                 "LifeCheck counter stuck at %lu for %.1f s: the panel may have stopped",
                 (unsigned long)dv->lc_value, (double)(now.mono_ms - dv->lc_changed_mono) / 1000.0);
        evlist_push(out, &ev);
    }
    alarms_first(out, start);
}
