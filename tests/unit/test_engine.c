/*
 * Unit tests for the alarm engine against a small hand-built site: two
 * buses, a smoke and a heat detector, a fire panel with two zones, and a
 * second smoke detector. Covers threshold and hysteresis edges with latching
 * and reset, value versus bits, implausible values, no-response and LifeCheck
 * timers, device and bus state, panel zones with disablement, and the order
 * of events in one call. The zone rules (verification, coincidence, positive
 * alarm sequence, disablement and test mode, heat classes) are in
 * test_engine_rules.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "util.h"

enum { SMOKE, HEAT, ZONE1, ZONE2, SMOKE2, NDET };
enum { DEV_SMOKE, DEV_HEAT, DEV_PANEL, DEV_SMOKE2, NDEV };

#define T0_MONO 1000
#define T0_WALL 1767225600000LL
#define NO_RESPONSE_MS 30000
#define LIFECHECK_MS 20000
#define NONE (-1)

#define DET_BITS                                                                                   \
    (ROLE_BIT(ROLE_ALARM) | ROLE_BIT(ROLE_PREALARM) | ROLE_BIT(ROLE_FAULT) |                       \
     ROLE_BIT(ROLE_MAINTENANCE))
#define ZONE_BITS                                                                                  \
    (ROLE_BIT(ROLE_ALARM) | ROLE_BIT(ROLE_PREALARM) | ROLE_BIT(ROLE_FAULT) |                       \
     ROLE_BIT(ROLE_DISABLED))

struct fixture {
    struct cfg cfg;
    struct cfg_bus buses[2];
    struct cfg_device devices[NDEV];
    struct cfg_zone zones[2];
    struct cfg_detector dets[NDET];
    struct engine *e;
    struct evlist out;
};

static const struct cfg_thresholds smoke_th = {1.5, 2.0, 0.3};
static const struct cfg_thresholds heat_th = {50.0, 58.0, 3.0};

static void add_det(struct fixture *f, size_t i, const char *id, size_t dev, int channel,
                    size_t zone, enum detector_type type)
{
    struct cfg_detector *d = &f->dets[i];
    d->id = (char *)id;
    d->device = dev;
    d->channel = channel;
    d->zone = zone;
    d->floor = (int)zone + 1;
    d->location = (char *)"test room";
    d->type = type;
    if (type == DET_SMOKE)
        d->thresholds = smoke_th;
    else if (type == DET_HEAT)
        d->thresholds = heat_th;
    d->no_response_ms = NO_RESPONSE_MS;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    f->buses[0].id = (char *)"tcp1";
    f->buses[0].type = BUS_TCP;
    f->buses[1].id = (char *)"rtu1";
    f->buses[1].type = BUS_RTU;
    static const char *dev_ids[NDEV] = {"tcp1/1", "tcp1/2", "panel", "rtu1/1"};
    static const size_t dev_bus[NDEV] = {0, 0, 1, 1};
    for (size_t i = 0; i < NDEV; i++) {
        f->devices[i].id = (char *)dev_ids[i];
        f->devices[i].bus = dev_bus[i];
        f->devices[i].unit = (int)i + 1;
    }
    f->zones[0].id = (char *)"Z1";
    f->zones[1].id = (char *)"Z2";
    add_det(f, SMOKE, "S1", DEV_SMOKE, 1, 0, DET_SMOKE);
    add_det(f, HEAT, "H1", DEV_HEAT, 1, 0, DET_HEAT);
    add_det(f, ZONE1, "P-Z1", DEV_PANEL, 1, 1, DET_PANEL_ZONE);
    add_det(f, ZONE2, "P-Z2", DEV_PANEL, 2, 1, DET_PANEL_ZONE);
    add_det(f, SMOKE2, "S2", DEV_SMOKE2, 1, 1, DET_SMOKE);
    f->cfg.buses = f->buses;
    f->cfg.nbuses = 2;
    f->cfg.devices = f->devices;
    f->cfg.ndevices = NDEV;
    f->cfg.zones = f->zones;
    f->cfg.nzones = 2;
    f->cfg.detectors = f->dets;
    f->cfg.ndetectors = NDET;
    f->cfg.defaults.smoke = smoke_th;
    f->cfg.defaults.heat = heat_th;
    f->cfg.defaults.no_response_ms = NO_RESPONSE_MS;
    f->cfg.defaults.lifecheck_ms = LIFECHECK_MS;
    f->e = engine_new(&f->cfg, (struct ev_time){T0_MONO, T0_WALL});
    *state = f;
    return f->e ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    engine_free(f->e);
    evlist_free(&f->out);
    free(f);
    return 0;
}

/* Time ms after the engine started, on both clocks. */
static struct ev_time at(int64_t ms)
{
    return (struct ev_time){T0_MONO + ms, T0_WALL + ms};
}

static struct reading value_reading(size_t det, double v, unsigned bits)
{
    struct reading r;
    memset(&r, 0, sizeof(r));
    r.detector = det;
    r.has_value = true;
    r.value_ok = true;
    r.value = v;
    r.bits_present = DET_BITS;
    r.bits = bits;
    return r;
}

static struct reading bad_value(size_t det, const char *why)
{
    struct reading r = value_reading(det, 655.35, 0);
    r.value_ok = false;
    strlcpy_fg(r.value_err, why, sizeof(r.value_err));
    return r;
}

static struct reading zone_reading(size_t det, unsigned bits)
{
    struct reading r;
    memset(&r, 0, sizeof(r));
    r.detector = det;
    r.bits_present = ZONE_BITS;
    r.bits = bits;
    return r;
}

/* Feed one device's readings at time ms; out holds only this call's events. */
static size_t feed_dev(struct fixture *f, size_t dev, int64_t ms, struct reading *r, size_t n)
{
    struct device_sample s;
    memset(&s, 0, sizeof(s));
    s.device = dev;
    s.t = at(ms);
    s.nreadings = n;
    s.readings = r;
    evlist_clear(&f->out);
    engine_sample(f->e, &s, &f->out);
    return f->out.count;
}

static size_t feed(struct fixture *f, int64_t ms, struct reading r)
{
    return feed_dev(f, f->dets[r.detector].device, ms, &r, 1);
}

static size_t feed_lifecheck(struct fixture *f, int64_t ms, uint32_t counter)
{
    struct reading r[2] = {zone_reading(ZONE1, 0), zone_reading(ZONE2, 0)};
    struct device_sample s;
    memset(&s, 0, sizeof(s));
    s.device = DEV_PANEL;
    s.t = at(ms);
    s.has_lifecheck = true;
    s.lifecheck = counter;
    s.nreadings = 2;
    s.readings = r;
    evlist_clear(&f->out);
    engine_sample(f->e, &s, &f->out);
    return f->out.count;
}

static size_t tick(struct fixture *f, int64_t ms)
{
    evlist_clear(&f->out);
    engine_tick(f->e, at(ms), &f->out);
    return f->out.count;
}

static const struct det_status *st(struct fixture *f, size_t det)
{
    return engine_detector(f->e, det);
}

/* Number of this call's events of kind k (and fault fc unless FAULT_NONE) for det (or NONE). */
static size_t count(struct fixture *f, enum ev_kind k, enum fault_code fc, long det)
{
    size_t n = 0;
    for (size_t i = 0; i < f->out.count; i++) {
        const struct event *ev = &f->out.items[i];
        if (ev->kind == k && (fc == FAULT_NONE || ev->fault == fc) &&
            (det == NONE || ev->detector == det))
            n++;
    }
    return n;
}

struct step {
    double value; /* RESET: an operator reset of the detector's zone */
    enum det_level level;
    int kind; /* event expected, or NONE */
    const char *rule;
};

#define RESET (-1.0)

static void reset_zone(struct fixture *f, size_t det, int64_t ms)
{
    struct engine_op op = {SCOPE_ZONE, f->zones[f->dets[det].zone].id, "tester", at(ms)};
    char err[200];
    evlist_clear(&f->out);
    assert_int_equal(engine_reset(f->e, &op, &f->out, err, sizeof(err)), 0);
}

/*
 * Heat readings pass a spike filter: a value counts once it is read twice in
 * a row, so each heat step is fed twice and only the second may report.
 */
static void run_steps(struct fixture *f, size_t det, const struct step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t ms = 100 * (int64_t)(i + 1);
        double v = steps[i].value;
        size_t got;
        if (v == RESET) {
            reset_zone(f, det, ms);
            v = st(f, det)->value;
            if (count(f, EV_RESET, FAULT_NONE, NONE) != 1)
                fail_msg("step %zu: no reset event", i);
            for (size_t j = 0; j < f->out.count; j++)
                if (f->out.items[j].kind == EV_RESET)
                    f->out.items[j--] = f->out.items[--f->out.count];
            got = f->out.count;
        } else {
            struct evlist first = {0};
            /* the first of two heat readings reports only what the one before already said */
            if (f->dets[det].type == DET_HEAT) {
                feed(f, ms - 50, value_reading(det, v, 0));
                for (size_t j = 0; j < f->out.count; j++)
                    evlist_push(&first, &f->out.items[j]);
            }
            got = feed(f, ms, value_reading(det, v, 0));
            if (first.count && got)
                fail_msg("step %zu (value %.2f): events on both readings", i, v);
            if (first.count) {
                ms -= 50;
                evlist_clear(&f->out);
                for (size_t j = 0; j < first.count; j++)
                    evlist_push(&f->out, &first.items[j]);
                got = f->out.count;
            }
            evlist_free(&first);
        }
        if (steps[i].level != st(f, det)->level)
            fail_msg("step %zu (value %.2f): level %s, want %s", i, v,
                     det_level_name(st(f, det)->level), det_level_name(steps[i].level));
        if (steps[i].kind == NONE) {
            if (got != 0)
                fail_msg("step %zu (value %.2f): unexpected %s", i, v,
                         ev_kind_name(f->out.items[0].kind));
            continue;
        }
        if (got != 1 || (int)f->out.items[0].kind != steps[i].kind)
            fail_msg("step %zu (value %.2f): want one %s, got %zu events", i, v,
                     ev_kind_name((enum ev_kind)steps[i].kind), got);
        const struct event *ev = &f->out.items[0];
        assert_string_equal(ev->rule, steps[i].rule);
        assert_int_equal(ev->source, SRC_DETECTOR);
        assert_int_equal(ev->detector, det);
        assert_int_equal(ev->device, f->dets[det].device);
        assert_int_equal(ev->bus, f->devices[f->dets[det].device].bus);
        assert_true(ev->has_zone);
        assert_int_equal(ev->zone, f->dets[det].zone);
        assert_false(ev->test);
        assert_true(ev->has_value);
        assert_true(ev->value == v);
        assert_int_equal(ev->t.mono_ms, T0_MONO + ms);
        assert_int_equal(ev->t.wall_ms, T0_WALL + ms);
        assert_int_equal(st(f, det)->changed_wall, T0_WALL + ms);
        if (ev->kind == EV_FIRE_ALARM || ev->kind == EV_PRE_ALARM) {
            const struct cfg_thresholds *th = &f->dets[det].thresholds;
            assert_true(ev->has_level);
            assert_true(ev->level == (ev->kind == EV_FIRE_ALARM ? th->alarm : th->prealarm));
        }
    }
}

static void test_smoke_levels_and_hysteresis(void **state)
{
    struct fixture *f = *state;
    static const struct step steps[] = {
        {1.49, LEVEL_NORMAL, NONE, NULL},
        {1.50, LEVEL_PRE_ALARM, EV_PRE_ALARM, "smoke_prealarm_level"},
        {1.99, LEVEL_PRE_ALARM, NONE, NULL},
        {2.00, LEVEL_FIRE_ALARM, EV_FIRE_ALARM, "smoke_alarm_level"},
        {1.70, LEVEL_FIRE_ALARM, NONE, NULL},
        {0.10, LEVEL_FIRE_ALARM, NONE, NULL}, /* latched: the reading falls, the alarm stays */
        {2.50, LEVEL_FIRE_ALARM, NONE, NULL}, /* and is not reported twice */
        {RESET, LEVEL_FIRE_ALARM, EV_FIRE_ALARM, "smoke_alarm_level"}, /* still there */
        {1.70, LEVEL_FIRE_ALARM, NONE, NULL},
        {RESET, LEVEL_FIRE_ALARM, EV_FIRE_ALARM, "smoke_alarm_level"}, /* alarm - hysteresis */
        {1.69, LEVEL_FIRE_ALARM, NONE, NULL},
        {RESET, LEVEL_NORMAL, EV_RESTORE, "operator_reset"}, /* pre-alarm range: restore... */
        {1.69, LEVEL_PRE_ALARM, EV_PRE_ALARM, "smoke_prealarm_level"}, /* ...then pre-alarm */
        {1.20, LEVEL_PRE_ALARM, NONE, NULL}, /* prealarm - hysteresis: still pre-alarm */
        {1.19, LEVEL_NORMAL, EV_RESTORE, "smoke_restore"},
        {1.49, LEVEL_NORMAL, NONE, NULL},
        {1.50, LEVEL_PRE_ALARM, EV_PRE_ALARM, "smoke_prealarm_level"},
        {1.20, LEVEL_PRE_ALARM, NONE, NULL},
        {1.19, LEVEL_NORMAL, EV_RESTORE, "smoke_restore"},
        {RESET, LEVEL_NORMAL, NONE, NULL}, /* nothing latched: only the reset event */
    };
    run_steps(f, SMOKE, steps, ARRAY_LEN(steps));
    assert_true(st(f, SMOKE)->has_value);
    assert_true(st(f, SMOKE)->value == 1.19);
}

static void test_heat_levels_and_hysteresis(void **state)
{
    struct fixture *f = *state;
    static const struct step steps[] = {
        {49.9, LEVEL_NORMAL, NONE, NULL},
        {50.0, LEVEL_PRE_ALARM, EV_PRE_ALARM, "heat_prealarm_level"},
        {57.9, LEVEL_PRE_ALARM, NONE, NULL},
        {58.0, LEVEL_FIRE_ALARM, EV_FIRE_ALARM, "heat_alarm_level"},
        {55.0, LEVEL_FIRE_ALARM, NONE, NULL},
        {20.0, LEVEL_FIRE_ALARM, NONE, NULL},
        {RESET, LEVEL_NORMAL, EV_RESTORE, "operator_reset"},
        {49.9, LEVEL_NORMAL, NONE, NULL},
        {71.5, LEVEL_FIRE_ALARM, EV_FIRE_ALARM, "heat_alarm_level"},
        {RESET, LEVEL_FIRE_ALARM, EV_FIRE_ALARM, "heat_alarm_level"},
        {54.9, LEVEL_FIRE_ALARM, NONE, NULL},
        {RESET, LEVEL_NORMAL, EV_RESTORE, "operator_reset"},
        /* the filter still holds 54.9 from before the reset: pre-alarm on the first reading */
        {47.0, LEVEL_PRE_ALARM, EV_PRE_ALARM, "heat_prealarm_level"},
        {46.9, LEVEL_NORMAL, EV_RESTORE, "heat_restore"},
    };
    run_steps(f, HEAT, steps, ARRAY_LEN(steps));
}

/* Levels whose differences are not exact in binary: equal to the edge still counts as equal. */
static void test_inexact_decimal_edges(void **state)
{
    struct fixture *f = *state;
    f->dets[SMOKE2].thresholds = (struct cfg_thresholds){1.1, 2.1, 0.4};
    static const struct step steps[] = {
        {2.1, LEVEL_FIRE_ALARM, EV_FIRE_ALARM, "smoke_alarm_level"},
        {1.7, LEVEL_FIRE_ALARM, NONE, NULL}, /* 2.1 - 0.4 */
        {RESET, LEVEL_FIRE_ALARM, EV_FIRE_ALARM, "smoke_alarm_level"},
        {1.69, LEVEL_FIRE_ALARM, NONE, NULL},
        {RESET, LEVEL_NORMAL, EV_RESTORE, "operator_reset"},
        {0.7, LEVEL_PRE_ALARM, EV_PRE_ALARM, "smoke_prealarm_level"}, /* 1.1 - 0.4 */
        {0.69, LEVEL_NORMAL, EV_RESTORE, "smoke_restore"},
        {1.1, LEVEL_PRE_ALARM, EV_PRE_ALARM, "smoke_prealarm_level"},
    };
    run_steps(f, SMOKE2, steps, ARRAY_LEN(steps));
}

static void test_straight_to_fire_alarm_then_down(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(feed(f, 100, value_reading(SMOKE, 0.5, 0)), 0);
    assert_int_equal(feed(f, 200, value_reading(SMOKE, 3.0, 0)), 1);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    assert_string_equal(f->out.items[0].rule, "smoke_alarm_level");
    assert_non_null(strstr(f->out.items[0].detail, "alarm level 2.00"));
    assert_string_equal(det_status_word(st(f, SMOKE)), "fire_alarm");

    /* falling: nothing, the alarm is latched; the reset's restore names the fire alarm */
    assert_int_equal(feed(f, 300, value_reading(SMOKE, 1.5, 0)), 0);
    assert_int_equal(feed(f, 400, value_reading(SMOKE, 0.2, 0)), 0);
    assert_int_equal(st(f, SMOKE)->level, LEVEL_FIRE_ALARM);
    assert_true(st(f, SMOKE)->latched);
    reset_zone(f, SMOKE, 450);
    assert_int_equal(count(f, EV_RESTORE, FAULT_NONE, SMOKE), 1);
    assert_int_equal(f->out.items[0].kind, EV_RESET);
    assert_string_equal(f->out.items[0].user, "tester");
    assert_int_equal(f->out.items[0].source, SRC_ZONE);
    assert_non_null(strstr(f->out.items[1].detail, "back to normal from fire_alarm"));
    assert_false(st(f, SMOKE)->latched);

    /* a pre-alarm episode is not latched and names pre-alarm */
    feed(f, 500, value_reading(SMOKE, 1.6, 0));
    assert_int_equal(feed(f, 600, value_reading(SMOKE, 0.2, 0)), 1);
    assert_string_equal(f->out.items[0].detail, "back to normal from pre_alarm");
}

static void test_bits_and_values(void **state)
{
    struct fixture *f = *state;
    unsigned alarm = ROLE_BIT(ROLE_ALARM), pre = ROLE_BIT(ROLE_PREALARM);

    /* the alarm bit alone: fire alarm by the bit rule, carrying the reading */
    assert_int_equal(feed(f, 100, value_reading(SMOKE, 0.4, alarm)), 1);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    assert_string_equal(f->out.items[0].rule, "detector_alarm_bit");
    assert_false(f->out.items[0].has_level);
    assert_true(f->out.items[0].has_value);
    /* the bit clears: latched all the same */
    assert_int_equal(feed(f, 200, value_reading(SMOKE, 1.8, 0)), 0);
    assert_int_equal(st(f, SMOKE)->level, LEVEL_FIRE_ALARM);
    /* reset with the bit set again: re-alarm at once, by the bit */
    feed(f, 250, value_reading(SMOKE, 0.4, alarm));
    reset_zone(f, SMOKE, 260);
    assert_int_equal(count(f, EV_FIRE_ALARM, FAULT_NONE, SMOKE), 1);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    assert_string_equal(f->out.items[0].rule, "detector_alarm_bit");
    assert_non_null(strstr(f->out.items[0].detail, "still in alarm after the reset"));
    feed(f, 300, value_reading(SMOKE, 0.4, 0));
    reset_zone(f, SMOKE, 310);
    assert_int_equal(st(f, SMOKE)->level, LEVEL_NORMAL);

    /* pre-alarm bit with an alarm-level value: the higher wins, by the value rule */
    assert_int_equal(feed(f, 400, value_reading(SMOKE, 2.5, pre)), 1);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    assert_string_equal(f->out.items[0].rule, "smoke_alarm_level");
    /* bits come and go: the value's hysteresis state is kept */
    assert_int_equal(feed(f, 500, value_reading(SMOKE, 1.8, alarm)), 0);
    assert_int_equal(feed(f, 600, value_reading(SMOKE, 1.8, 0)), 0);
    reset_zone(f, SMOKE, 650); /* 1.8 >= 2.0 - 0.3: the value alone is still fire alarm */
    assert_int_equal(count(f, EV_FIRE_ALARM, FAULT_NONE, SMOKE), 1);
    assert_string_equal(f->out.items[0].rule, "smoke_alarm_level");
    feed(f, 700, value_reading(SMOKE, 0.1, 0));
    reset_zone(f, SMOKE, 750);
    assert_int_equal(count(f, EV_RESTORE, FAULT_NONE, SMOKE), 1);

    /* pre-alarm bit alone from normal */
    assert_int_equal(feed(f, 900, value_reading(SMOKE, 0.1, pre)), 1);
    assert_int_equal(f->out.items[0].kind, EV_PRE_ALARM);
    assert_string_equal(f->out.items[0].rule, "detector_prealarm_bit");
    /* then the alarm bit: pre-alarm -> fire alarm */
    assert_int_equal(feed(f, 1000, value_reading(SMOKE, 0.1, pre | alarm)), 1);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    assert_string_equal(f->out.items[0].rule, "detector_alarm_bit");
}

static void test_fault_and_maintenance_bits(void **state)
{
    struct fixture *f = *state;
    unsigned fault = ROLE_BIT(ROLE_FAULT), maint = ROLE_BIT(ROLE_MAINTENANCE);
    unsigned fbit = 1u << FAULT_DETECTOR_BIT, mbit = 1u << FAULT_MAINTENANCE;

    assert_int_equal(feed(f, 100, value_reading(HEAT, 21.0, fault)), 1);
    assert_int_equal(count(f, EV_FAULT, FAULT_DETECTOR_BIT, HEAT), 1);
    assert_string_equal(f->out.items[0].rule, "detector_fault_bit");
    assert_int_equal(st(f, HEAT)->faults, fbit);
    assert_string_equal(det_status_word(st(f, HEAT)), "fault");
    assert_int_equal(feed(f, 200, value_reading(HEAT, 21.0, fault)), 0);
    assert_int_equal(feed(f, 300, value_reading(HEAT, 21.0, fault | maint)), 1);
    assert_int_equal(count(f, EV_FAULT, FAULT_MAINTENANCE, HEAT), 1);
    assert_int_equal(st(f, HEAT)->faults, fbit | mbit);
    assert_int_equal(feed(f, 400, value_reading(HEAT, 21.0, maint)), 1);
    assert_int_equal(count(f, EV_FAULT_RESTORE, FAULT_DETECTOR_BIT, HEAT), 1);
    assert_int_equal(st(f, HEAT)->faults, mbit);
    assert_int_equal(feed(f, 500, value_reading(HEAT, 21.0, 0)), 1);
    assert_int_equal(count(f, EV_FAULT_RESTORE, FAULT_MAINTENANCE, HEAT), 1);
    assert_int_equal(st(f, HEAT)->faults, 0);
    assert_string_equal(det_status_word(st(f, HEAT)), "normal");

    /* a fault never hides a fire alarm (heat: the second reading at the level counts) */
    assert_int_equal(feed(f, 550, value_reading(HEAT, 60.0, fault)), 1);
    assert_int_equal(count(f, EV_FAULT, FAULT_DETECTOR_BIT, HEAT), 1);
    feed(f, 600, value_reading(HEAT, 60.0, fault));
    assert_int_equal(count(f, EV_FIRE_ALARM, FAULT_NONE, HEAT), 1);
    assert_string_equal(det_status_word(st(f, HEAT)), "fire_alarm");
}

static void test_implausible_value(void **state)
{
    struct fixture *f = *state;
    unsigned ibit = 1u << FAULT_IMPLAUSIBLE;

    /* from normal: a wild value is a fault, never an alarm */
    assert_int_equal(feed(f, 100, bad_value(SMOKE, "obscuration 655.35 %/m outside 0..20")), 1);
    assert_int_equal(f->out.items[0].kind, EV_FAULT);
    assert_int_equal(f->out.items[0].fault, FAULT_IMPLAUSIBLE);
    assert_string_equal(f->out.items[0].rule, "implausible_value");
    assert_string_equal(f->out.items[0].detail, "obscuration 655.35 %/m outside 0..20");
    assert_int_equal(st(f, SMOKE)->level, LEVEL_NORMAL);
    assert_false(st(f, SMOKE)->has_value);
    assert_int_equal(st(f, SMOKE)->faults, ibit);
    assert_int_equal(feed(f, 200, bad_value(SMOKE, "again")), 0);
    assert_int_equal(feed(f, 300, value_reading(SMOKE, 0.3, 0)), 1);
    assert_int_equal(f->out.items[0].kind, EV_FAULT_RESTORE);
    assert_int_equal(f->out.items[0].fault, FAULT_IMPLAUSIBLE);
    assert_int_equal(st(f, SMOKE)->faults, 0);

    /* in pre-alarm: the level and the last plausible value are kept */
    feed(f, 400, value_reading(SMOKE, 1.8, 0));
    assert_int_equal(st(f, SMOKE)->level, LEVEL_PRE_ALARM);
    assert_int_equal(feed(f, 500, bad_value(SMOKE, "NaN")), 1);
    assert_int_equal(st(f, SMOKE)->level, LEVEL_PRE_ALARM);
    assert_true(st(f, SMOKE)->value == 1.8);
    /* fault restored and the new plausible value evaluated in the same reading */
    assert_int_equal(feed(f, 600, value_reading(SMOKE, 2.1, 0)), 2);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    assert_int_equal(f->out.items[1].kind, EV_FAULT_RESTORE);
}

static void test_no_response_timer(void **state)
{
    struct fixture *f = *state;
    /* silent since the start: not one millisecond early */
    assert_int_equal(tick(f, NO_RESPONSE_MS - 1), 0);
    assert_int_equal(tick(f, NO_RESPONSE_MS), NDET);
    for (long d = 0; d < NDET; d++)
        assert_int_equal(count(f, EV_FAULT, FAULT_NO_RESPONSE, d), 1);
    const struct event *ev = &f->out.items[0];
    assert_string_equal(ev->rule, "no_response");
    assert_int_equal(ev->source, SRC_DETECTOR);
    assert_int_equal(ev->t.mono_ms, T0_MONO + NO_RESPONSE_MS);
    assert_non_null(strstr(ev->detail, "since the gateway started"));
    assert_int_equal(tick(f, NO_RESPONSE_MS + 1000), 0);

    /* the next sample restores it */
    assert_int_equal(feed(f, 40000, value_reading(SMOKE, 0.1, 0)), 1);
    assert_int_equal(count(f, EV_FAULT_RESTORE, FAULT_NO_RESPONSE, SMOKE), 1);
    assert_int_equal(st(f, SMOKE)->faults, 0);
    assert_int_equal(st(f, SMOKE)->last_reading_mono, T0_MONO + 40000);

    /* silent again: reported at the first tick at or after the limit */
    assert_int_equal(tick(f, 40000 + NO_RESPONSE_MS - 1), 0);
    assert_int_equal(tick(f, 40000 + NO_RESPONSE_MS + 700), 1);
    assert_int_equal(count(f, EV_FAULT, FAULT_NO_RESPONSE, SMOKE), 1);
    assert_non_null(strstr(f->out.items[0].detail, "no answer for 30.7 s"));
    assert_int_equal(f->out.items[0].t.wall_ms, T0_WALL + 40000 + NO_RESPONSE_MS + 700);
}

static void test_fire_alarm_kept_while_silent(void **state)
{
    struct fixture *f = *state;
    feed(f, 100, value_reading(SMOKE2, 2.4, 0));
    assert_int_equal(st(f, SMOKE2)->level, LEVEL_FIRE_ALARM);
    tick(f, 100 + NO_RESPONSE_MS);
    assert_int_equal(count(f, EV_FAULT, FAULT_NO_RESPONSE, SMOKE2), 1);
    assert_int_equal(count(f, EV_RESTORE, FAULT_NONE, NONE), 0);
    assert_int_equal(st(f, SMOKE2)->level, LEVEL_FIRE_ALARM);
    assert_int_equal(st(f, SMOKE2)->faults, 1u << FAULT_NO_RESPONSE);
    assert_string_equal(det_status_word(st(f, SMOKE2)), "fire_alarm");
    /* the device also goes down: still in fire alarm */
    evlist_clear(&f->out);
    engine_device_state(f->e, DEV_SMOKE2, false, "timeout", at(40000), &f->out);
    assert_int_equal(st(f, SMOKE2)->level, LEVEL_FIRE_ALARM);
}

static void test_two_detectors_interleaving(void **state)
{
    struct fixture *f = *state;
    static const struct {
        size_t det;
        double v;
        enum det_level l1, l2; /* SMOKE and SMOKE2 afterwards */
        int kind;
    } steps[] = {
        {SMOKE, 1.6, LEVEL_PRE_ALARM, LEVEL_NORMAL, EV_PRE_ALARM},
        {SMOKE2, 2.2, LEVEL_PRE_ALARM, LEVEL_FIRE_ALARM, EV_FIRE_ALARM},
        {SMOKE, 1.3, LEVEL_PRE_ALARM, LEVEL_FIRE_ALARM, NONE},
        {SMOKE2, 1.0, LEVEL_PRE_ALARM, LEVEL_FIRE_ALARM, NONE},
        {SMOKE, 2.0, LEVEL_FIRE_ALARM, LEVEL_FIRE_ALARM, EV_FIRE_ALARM},
        {SMOKE2, 0.0, LEVEL_FIRE_ALARM, LEVEL_FIRE_ALARM, NONE},
        {SMOKE, 0.0, LEVEL_FIRE_ALARM, LEVEL_FIRE_ALARM, NONE},
    };
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        size_t n = feed(f, 100 * (int64_t)(i + 1), value_reading(steps[i].det, steps[i].v, 0));
        assert_int_equal(st(f, SMOKE)->level, steps[i].l1);
        assert_int_equal(st(f, SMOKE2)->level, steps[i].l2);
        if (steps[i].kind == NONE) {
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(n, 1);
            assert_int_equal(f->out.items[0].kind, steps[i].kind);
            assert_int_equal(f->out.items[0].detector, steps[i].det);
        }
    }
    /* a reset of one zone leaves the other zone's alarm alone */
    reset_zone(f, SMOKE2, 1000);
    assert_int_equal(count(f, EV_RESTORE, FAULT_NONE, SMOKE2), 1);
    assert_int_equal(count(f, EV_RESTORE, FAULT_NONE, SMOKE), 0);
    assert_int_equal(st(f, SMOKE)->level, LEVEL_FIRE_ALARM);
    assert_int_equal(st(f, SMOKE2)->level, LEVEL_NORMAL);
}

static void test_device_and_bus_state(void **state)
{
    struct fixture *f = *state;
    struct evlist *o = &f->out;
    /* up while never down: nothing */
    engine_device_state(f->e, DEV_HEAT, true, "", at(10), o);
    engine_bus_state(f->e, 0, true, "", at(10), o);
    assert_int_equal(o->count, 0);

    engine_device_state(f->e, DEV_HEAT, false, "Connection timed out", at(100), o);
    assert_int_equal(o->count, 1);
    const struct event *ev = &o->items[0];
    assert_int_equal(ev->kind, EV_FAULT);
    assert_int_equal(ev->source, SRC_DEVICE);
    assert_int_equal(ev->fault, FAULT_DEVICE_DOWN);
    assert_int_equal(ev->device, DEV_HEAT);
    assert_int_equal(ev->bus, 0);
    assert_int_equal(ev->detector, -1);
    assert_string_equal(ev->detail, "Connection timed out");
    assert_int_equal(ev->t.wall_ms, T0_WALL + 100);
    assert_false(ev->test);
    engine_device_state(f->e, DEV_HEAT, false, "Connection timed out", at(200), o);
    assert_int_equal(o->count, 1);
    engine_device_state(f->e, DEV_HEAT, true, NULL, at(300), o);
    assert_int_equal(o->count, 2);
    assert_int_equal(o->items[1].kind, EV_FAULT_RESTORE);
    assert_int_equal(o->items[1].fault, FAULT_DEVICE_DOWN);
    assert_int_equal(o->items[1].device, DEV_HEAT);
    assert_true(o->items[1].detail[0] != '\0');
    engine_device_state(f->e, DEV_HEAT, true, "", at(400), o);
    assert_int_equal(o->count, 2);

    evlist_clear(o);
    engine_bus_state(f->e, 1, false, "Broken pipe", at(500), o);
    engine_bus_state(f->e, 1, false, "Broken pipe", at(600), o);
    assert_int_equal(o->count, 1);
    assert_int_equal(o->items[0].source, SRC_BUS);
    assert_int_equal(o->items[0].fault, FAULT_BUS_DOWN);
    assert_int_equal(o->items[0].bus, 1);
    assert_int_equal(o->items[0].device, -1);
    assert_int_equal(o->items[0].detector, -1);
    assert_string_equal(o->items[0].rule, "bus_down");
    assert_string_equal(o->items[0].detail, "Broken pipe");
    engine_bus_state(f->e, 1, true, "connected", at(700), o);
    engine_bus_state(f->e, 1, true, "connected", at(800), o);
    assert_int_equal(o->count, 2);
    assert_int_equal(o->items[1].kind, EV_FAULT_RESTORE);
    assert_int_equal(o->items[1].fault, FAULT_BUS_DOWN);

    /* out-of-range indices are ignored, not a crash */
    engine_device_state(f->e, NDEV, false, "x", at(900), o);
    engine_bus_state(f->e, 2, false, "x", at(900), o);
    assert_int_equal(o->count, 2);
}

static void test_lifecheck(void **state)
{
    struct fixture *f = *state;
    unsigned lbit = 1u << FAULT_LIFECHECK;
    assert_int_equal(feed_lifecheck(f, 100, 5), 0);
    assert_int_equal(feed_lifecheck(f, 1000, 6), 0);
    for (int64_t ms = 2000; ms < 1000 + LIFECHECK_MS; ms += 5000)
        feed_lifecheck(f, ms, 6);
    assert_int_equal(tick(f, 1000 + LIFECHECK_MS - 1), 0);
    assert_int_equal(tick(f, 1000 + LIFECHECK_MS), 1);
    const struct event *ev = &f->out.items[0];
    assert_int_equal(ev->kind, EV_FAULT);
    assert_int_equal(ev->fault, FAULT_LIFECHECK);
    assert_int_equal(ev->source, SRC_DEVICE);
    assert_int_equal(ev->device, DEV_PANEL);
    assert_int_equal(ev->bus, 1);
    assert_int_equal(ev->detector, -1);
    assert_non_null(strstr(ev->detail, "stuck at 6"));
    /* one event for the device; its zones carry the fault bit */
    assert_int_equal(st(f, ZONE1)->faults, lbit);
    assert_int_equal(st(f, ZONE2)->faults, lbit);
    assert_int_equal(st(f, ZONE1)->changed_wall, T0_WALL + 1000 + LIFECHECK_MS);
    assert_int_equal(st(f, SMOKE)->faults & lbit, 0);
    assert_string_equal(det_status_word(st(f, ZONE1)), "fault");
    assert_int_equal(tick(f, 1000 + LIFECHECK_MS + 5000), 0);
    assert_int_equal(feed_lifecheck(f, 1000 + LIFECHECK_MS + 6000, 6), 0);

    /* an alarm still gets through while the LifeCheck is faulted */
    struct reading r = zone_reading(ZONE2, ROLE_BIT(ROLE_ALARM));
    assert_int_equal(feed_dev(f, DEV_PANEL, 1000 + LIFECHECK_MS + 6500, &r, 1), 1);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);

    /* the counter moves: restored, bits cleared */
    assert_int_equal(feed_lifecheck(f, 30000, 7), 2);
    assert_int_equal(count(f, EV_FAULT_RESTORE, FAULT_LIFECHECK, NONE), 1);
    assert_int_equal(f->out.items[1].source, SRC_DEVICE);
    assert_int_equal(st(f, ZONE1)->faults, 0);
    assert_int_equal(st(f, ZONE2)->faults, 0);
}

static void test_lifecheck_paused_while_device_down(void **state)
{
    struct fixture *f = *state;
    feed_lifecheck(f, 100, 1);
    evlist_clear(&f->out);
    engine_device_state(f->e, DEV_PANEL, false, "timeout", at(5000), &f->out);
    assert_int_equal(tick(f, 100 + LIFECHECK_MS + 10000), NDET); /* only no_response */
    assert_int_equal(count(f, EV_FAULT, FAULT_LIFECHECK, NONE), 0);
    evlist_clear(&f->out);
    engine_device_state(f->e, DEV_PANEL, true, "answering", at(60000), &f->out);
    /* a full period from coming back */
    assert_int_equal(tick(f, 60000 + LIFECHECK_MS - 1), 0);
    tick(f, 60000 + LIFECHECK_MS);
    assert_int_equal(count(f, EV_FAULT, FAULT_LIFECHECK, NONE), 1);
}

static void test_panel_zones(void **state)
{
    struct fixture *f = *state;
    unsigned alarm = ROLE_BIT(ROLE_ALARM), pre = ROLE_BIT(ROLE_PREALARM);
    unsigned fault = ROLE_BIT(ROLE_FAULT), dis = ROLE_BIT(ROLE_DISABLED);
    static const struct {
        unsigned bits;
        enum det_level level;
        const char *word;
        int kind;
        const char *rule;
    } steps[] = {
        {0, LEVEL_NORMAL, "normal", NONE, NULL},
        {ROLE_BIT(ROLE_PREALARM), LEVEL_PRE_ALARM, "pre_alarm", EV_PRE_ALARM,
         "panel_zone_prealarm"},
        {ROLE_BIT(ROLE_ALARM) | ROLE_BIT(ROLE_PREALARM), LEVEL_FIRE_ALARM, "fire_alarm",
         EV_FIRE_ALARM, "panel_zone_alarm"},
        {ROLE_BIT(ROLE_PREALARM), LEVEL_PRE_ALARM, "pre_alarm", NONE, NULL},
        {0, LEVEL_NORMAL, "normal", EV_RESTORE, "panel_zone_restore"},
        {ROLE_BIT(ROLE_FAULT), LEVEL_NORMAL, "fault", EV_FAULT, "panel_zone_fault"},
        {0, LEVEL_NORMAL, "normal", EV_FAULT_RESTORE, "panel_zone_fault"},
        {ROLE_BIT(ROLE_DISABLED), LEVEL_NORMAL, "disabled", EV_DISABLED, "panel_zone_disabled"},
        {ROLE_BIT(ROLE_DISABLED) | ROLE_BIT(ROLE_ALARM), LEVEL_NORMAL, "disabled", NONE, NULL},
        {ROLE_BIT(ROLE_DISABLED) | ROLE_BIT(ROLE_PREALARM), LEVEL_NORMAL, "disabled", NONE, NULL},
        {ROLE_BIT(ROLE_DISABLED), LEVEL_NORMAL, "disabled", NONE, NULL},
        {0, LEVEL_NORMAL, "normal", EV_ENABLED, "panel_zone_enabled"},
    };
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        size_t n = feed(f, 100 * (int64_t)(i + 1), zone_reading(ZONE1, steps[i].bits));
        assert_int_equal(st(f, ZONE1)->level, steps[i].level);
        assert_string_equal(det_status_word(st(f, ZONE1)), steps[i].word);
        assert_int_equal(st(f, ZONE1)->disabled, (steps[i].bits & dis) != 0);
        if (steps[i].kind == NONE) {
            assert_int_equal(n, 0);
            continue;
        }
        assert_int_equal(n, 1);
        assert_int_equal(f->out.items[0].kind, steps[i].kind);
        assert_string_equal(f->out.items[0].rule, steps[i].rule);
        assert_int_equal(f->out.items[0].detector, ZONE1);
        assert_false(f->out.items[0].has_value);
        if (steps[i].kind == EV_FAULT || steps[i].kind == EV_FAULT_RESTORE)
            assert_int_equal(f->out.items[0].fault, FAULT_DETECTOR_BIT);
    }

    /* enabled while the alarm bit is on: the alarm is reported, ahead of the enablement */
    feed(f, 2000, zone_reading(ZONE1, dis | alarm));
    assert_int_equal(f->out.count, 1);
    assert_int_equal(f->out.items[0].kind, EV_DISABLED);
    assert_int_equal(feed(f, 2100, zone_reading(ZONE1, alarm)), 2);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    assert_int_equal(f->out.items[1].kind, EV_ENABLED);

    /* disabled while in fire alarm: restored, then disabled; no alarm while disabled */
    assert_int_equal(feed(f, 2200, zone_reading(ZONE1, dis | alarm | pre | fault)), 3);
    assert_int_equal(f->out.items[0].kind, EV_FAULT);
    assert_int_equal(f->out.items[1].kind, EV_DISABLED);
    assert_int_equal(f->out.items[2].kind, EV_RESTORE);
    assert_non_null(strstr(f->out.items[2].detail, "disabled at the panel"));
    /* faults of a disabled zone still show */
    assert_string_equal(det_status_word(st(f, ZONE1)), "fault");
}

static void test_alarms_first_in_one_call(void **state)
{
    struct fixture *f = *state;
    struct event earlier;
    memset(&earlier, 0, sizeof(earlier));
    earlier.kind = EV_FAULT_RESTORE;
    earlier.detector = 99;
    struct reading r[2] = {zone_reading(ZONE1, ROLE_BIT(ROLE_FAULT)),
                           zone_reading(ZONE2, ROLE_BIT(ROLE_ALARM))};
    struct device_sample s;
    memset(&s, 0, sizeof(s));
    s.device = DEV_PANEL;
    s.t = at(100);
    s.nreadings = 2;
    s.readings = r;
    evlist_clear(&f->out);
    evlist_push(&f->out, &earlier);
    engine_sample(f->e, &s, &f->out);
    assert_int_equal(f->out.count, 3);
    /* what the caller already had stays first; this call's fire alarm beats its fault */
    assert_int_equal(f->out.items[0].detector, 99);
    assert_int_equal(f->out.items[1].kind, EV_FIRE_ALARM);
    assert_int_equal(f->out.items[1].detector, ZONE2);
    assert_int_equal(f->out.items[2].kind, EV_FAULT);
    assert_int_equal(f->out.items[2].detector, ZONE1);

    /* a smoke reading with a fault bit and an alarm value: alarm first */
    assert_int_equal(feed(f, 200, value_reading(SMOKE, 2.0, ROLE_BIT(ROLE_FAULT))), 2);
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    assert_int_equal(f->out.items[1].kind, EV_FAULT);
}

static void test_bad_input_and_status_word(void **state)
{
    struct fixture *f = *state;
    engine_free(NULL);
    assert_null(engine_new(NULL, at(0)));
    assert_null(engine_detector(f->e, NDET));
    struct reading r = value_reading(SMOKE, 3.0, 0);
    r.detector = NDET + 7;
    assert_int_equal(feed_dev(f, DEV_SMOKE, 100, &r, 1), 0);
    r.detector = SMOKE;
    assert_int_equal(feed_dev(f, NDEV + 1, 100, &r, 1), 0);
    engine_sample(f->e, NULL, &f->out);
    assert_int_equal(st(f, SMOKE)->level, LEVEL_NORMAL);

    static const struct {
        struct det_status s;
        const char *word;
    } words[] = {
        {{.level = LEVEL_FIRE_ALARM, .faults = 1u << FAULT_NO_RESPONSE, .disabled = true},
         "fire_alarm"},
        {{.level = LEVEL_PRE_ALARM, .faults = 1u << FAULT_DETECTOR_BIT}, "pre_alarm"},
        {{.level = LEVEL_NORMAL, .faults = 1u << FAULT_MAINTENANCE, .disabled = true}, "fault"},
        {{.level = LEVEL_NORMAL, .faults = 1u << FAULT_STUCK, .test_mode = true}, "fault"},
        {{.level = LEVEL_NORMAL, .disabled = true, .test_mode = true}, "test"},
        {{.level = LEVEL_NORMAL, .disabled = true}, "disabled"},
        {{.level = LEVEL_NORMAL}, "normal"},
    };
    for (size_t i = 0; i < ARRAY_LEN(words); i++)
        assert_string_equal(det_status_word(&words[i].s), words[i].word);
    assert_string_equal(det_level_name(LEVEL_NORMAL), "normal");
    assert_string_equal(det_level_name(LEVEL_PRE_ALARM), "pre_alarm");
    assert_string_equal(det_level_name(LEVEL_FIRE_ALARM), "fire_alarm");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_smoke_levels_and_hysteresis),
        T(test_heat_levels_and_hysteresis),
        T(test_inexact_decimal_edges),
        T(test_straight_to_fire_alarm_then_down),
        T(test_bits_and_values),
        T(test_fault_and_maintenance_bits),
        T(test_implausible_value),
        T(test_no_response_timer),
        T(test_fire_alarm_kept_while_silent),
        T(test_two_detectors_interleaving),
        T(test_device_and_bus_state),
        T(test_lifecheck),
        T(test_lifecheck_paused_while_device_down),
        T(test_panel_zones),
        T(test_alarms_first_in_one_call),
        T(test_bad_input_and_status_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
