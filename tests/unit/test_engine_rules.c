/*
 * Unit tests for the fire-panel rules of the alarm engine: alarm
 * verification, coincidence, positive alarm sequence, acknowledge, silence
 * and reset, disablement and test mode with expiry, the heat spike filter and
 * rate-of-rise, stuck values, zone and building status, the EN 54-5 class
 * table and its config keys, and the cost of a tick with nothing due. Every
 * timer is checked one millisecond before its limit and at it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine.h"
#include "util.h"

enum { ZV, ZC, ZH, ZP, ZN, NZONE };
enum { V1, V2, VH, C1, C2, HS, HS2, HH, P1, P2, N1, NH, NDET };

#define T0_MONO 1000
#define T0_WALL 1767225600000LL
#define NO_RESPONSE_MS 3600000 /* out of the way of the timers tested here */
#define RETARD_MS 30000
#define WINDOW_MS 60000
#define COINC_MS 120000
#define PAS_ACK_MS 15000
#define PAS_INV_MS 180000
#define STUCK_MS 60000
#define NONE (-1)

struct fixture {
    struct cfg cfg;
    struct cfg_bus bus;
    struct cfg_device devices[NDET];
    struct cfg_zone zones[NZONE];
    struct cfg_detector dets[NDET];
    struct engine *e;
    struct evlist out;
    char err[256];
};

static const struct cfg_thresholds smoke_th = {1.5, 2.0, 0.3};
static const struct cfg_thresholds heat_th = {50.0, 58.0, 3.0};

static void add_det(struct fixture *f, size_t i, const char *id, size_t zone,
                    enum detector_type type)
{
    f->devices[i].id = (char *)id;
    f->devices[i].unit = (int)i + 1;
    struct cfg_detector *d = &f->dets[i];
    d->id = (char *)id;
    d->device = i;
    d->channel = 1;
    d->zone = zone;
    d->location = (char *)"test room";
    d->type = type;
    d->thresholds = type == DET_SMOKE ? smoke_th : heat_th;
    d->no_response_ms = NO_RESPONSE_MS;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    static const char *zone_ids[NZONE] = {"ZV", "ZC", "ZH", "ZP", "ZN"};
    for (size_t z = 0; z < NZONE; z++) {
        f->zones[z].id = (char *)zone_ids[z];
        f->zones[z].name = (char *)zone_ids[z];
        f->zones[z].coincidence_window_ms = COINC_MS;
    }
    f->zones[ZV].verification = true;
    f->zones[ZV].verify_retard_ms = RETARD_MS;
    f->zones[ZV].verify_window_ms = WINDOW_MS;
    f->zones[ZC].coincidence = COINC_TWO_DETECTORS;
    f->zones[ZH].coincidence = COINC_SMOKE_AND_HEAT;
    f->zones[ZP].pas = true;
    f->zones[ZP].pas_ack_ms = PAS_ACK_MS;
    f->zones[ZP].pas_investigation_ms = PAS_INV_MS;
    add_det(f, V1, "V1", ZV, DET_SMOKE);
    add_det(f, V2, "V2", ZV, DET_SMOKE);
    add_det(f, VH, "VH", ZV, DET_HEAT);
    add_det(f, C1, "C1", ZC, DET_SMOKE);
    add_det(f, C2, "C2", ZC, DET_SMOKE);
    add_det(f, HS, "HS", ZH, DET_SMOKE);
    add_det(f, HS2, "HS2", ZH, DET_SMOKE);
    add_det(f, HH, "HH", ZH, DET_HEAT);
    add_det(f, P1, "P1", ZP, DET_SMOKE);
    add_det(f, P2, "P2", ZP, DET_SMOKE);
    add_det(f, N1, "N1", ZN, DET_SMOKE);
    add_det(f, NH, "NH", ZN, DET_HEAT);
    f->dets[N1].stuck_after_ms = STUCK_MS;
    f->dets[NH].rate_of_rise = true;
    f->bus.id = (char *)"tcp1";
    f->cfg.buses = &f->bus;
    f->cfg.nbuses = 1;
    f->cfg.devices = f->devices;
    f->cfg.ndevices = NDET;
    f->cfg.zones = f->zones;
    f->cfg.nzones = NZONE;
    f->cfg.detectors = f->dets;
    f->cfg.ndetectors = NDET;
    f->cfg.defaults.smoke = smoke_th;
    f->cfg.defaults.heat = heat_th;
    f->cfg.defaults.no_response_ms = NO_RESPONSE_MS;
    f->cfg.defaults.lifecheck_ms = 30000;
    f->cfg.defaults.ror_degc_per_min = 9.0;
    f->cfg.defaults.ror_window_ms = 60000;
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

static struct ev_time at(int64_t ms)
{
    return (struct ev_time){T0_MONO + ms, T0_WALL + ms};
}

/* One reading of det's value at time ms; out holds only this call's events. */
static size_t feed(struct fixture *f, int64_t ms, size_t det, double v)
{
    struct reading r;
    memset(&r, 0, sizeof(r));
    r.detector = det;
    r.has_value = true;
    r.value_ok = true;
    r.value = v;
    struct device_sample s;
    memset(&s, 0, sizeof(s));
    s.device = f->dets[det].device;
    s.t = at(ms);
    s.nreadings = 1;
    s.readings = &r;
    evlist_clear(&f->out);
    engine_sample(f->e, &s, &f->out);
    return f->out.count;
}

/* Heat values count once read twice in a row (spike filter): two readings 1 ms apart. */
static size_t feed2(struct fixture *f, int64_t ms, size_t det, double v)
{
    feed(f, ms - 1, det, v);
    return feed(f, ms, det, v);
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

static size_t count(struct fixture *f, enum ev_kind k, long det)
{
    size_t n = 0;
    for (size_t i = 0; i < f->out.count; i++)
        if (f->out.items[i].kind == k && (det == NONE || f->out.items[i].detector == det))
            n++;
    return n;
}

/* The one event of kind k (for det, or any), failing unless there is exactly one. */
static const struct event *one(struct fixture *f, enum ev_kind k, long det)
{
    const struct event *found = NULL;
    for (size_t i = 0; i < f->out.count; i++) {
        const struct event *ev = &f->out.items[i];
        if (ev->kind != k || (det != NONE && ev->detector != det))
            continue;
        if (found)
            fail_msg("two %s events", ev_kind_name(k));
        found = ev;
    }
    if (!found)
        fail_msg("no %s event (of %zu)", ev_kind_name(k), f->out.count);
    return found;
}

typedef int (*zone_cmd)(struct engine *, const struct engine_op *, struct evlist *, char *, size_t);

static int zone_op(struct fixture *f, zone_cmd cmd, enum engine_scope scope, const char *id,
                   int64_t ms)
{
    struct engine_op op = {scope, id, "le.thi.hoa", at(ms)};
    evlist_clear(&f->out);
    f->err[0] = '\0';
    return cmd(f->e, &op, &f->out, f->err, sizeof(f->err));
}

static int disable(struct fixture *f, enum engine_scope scope, const char *id, int64_t ms,
                   int64_t for_ms)
{
    struct engine_op op = {scope, id, "le.thi.hoa", at(ms)};
    evlist_clear(&f->out);
    return engine_disable(f->e, &op, T0_MONO + ms + for_ms, &f->out, f->err, sizeof(f->err));
}

static int test_mode(struct fixture *f, enum engine_scope scope, const char *id, bool on,
                     int64_t ms, int64_t for_ms)
{
    struct engine_op op = {scope, id, "le.thi.hoa", at(ms)};
    evlist_clear(&f->out);
    return engine_test_mode(f->e, &op, on, T0_MONO + ms + for_ms, &f->out, f->err, sizeof(f->err));
}

/* Verification: the held alarm is confirmed by the same detector only inside the window. */
static void test_verification_window_edges(void **state)
{
    static const struct {
        int64_t again;  /* ms after the first reading: alarm-level reading again */
        bool confirmed; /* fire alarm at that reading */
    } rows[] = {
        {1000, false},                     /* retard: ignored */
        {RETARD_MS - 1, false},            /* one ms before the window opens */
        {RETARD_MS, true},                 /* the window opens */
        {RETARD_MS + WINDOW_MS - 1, true}, /* last ms of the window */
        {RETARD_MS + WINDOW_MS, false},    /* window closed: not a confirmation */
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct fixture *f = *state;
        teardown(state);
        setup(state);
        f = *state;
        assert_int_equal(feed(f, 1000, V1, 2.4), 1);
        const struct event *ev = one(f, EV_ALARM_PENDING, V1);
        assert_string_equal(ev->rule, "alarm_verification");
        assert_false(ev->test);
        assert_true(st(f, V1)->pending);
        assert_int_equal(st(f, V1)->level, LEVEL_PRE_ALARM);
        assert_int_equal(count(f, EV_FIRE_ALARM, NONE), 0);
        feed(f, 1000 + rows[i].again, V1, 2.4);
        if (rows[i].confirmed) {
            ev = one(f, EV_FIRE_ALARM, V1);
            assert_string_equal(ev->rule, "alarm_verification_confirmed");
            assert_int_equal(st(f, V1)->level, LEVEL_FIRE_ALARM);
            assert_true(st(f, V1)->latched);
            assert_false(st(f, V1)->pending);
        } else {
            if (count(f, EV_FIRE_ALARM, NONE) != 0)
                fail_msg("row %zu: fire alarm %lld ms after the first reading", i,
                         (long long)rows[i].again);
            assert_true(st(f, V1)->pending);
        }
    }
}

static void test_verification_expiry(void **state)
{
    struct fixture *f = *state;
    feed(f, 1000, V1, 2.1);
    feed(f, 2000, V1, 0.3);
    assert_int_equal(tick(f, 1000 + RETARD_MS + WINDOW_MS - 1), 0);
    assert_int_equal(tick(f, 1000 + RETARD_MS + WINDOW_MS), 1);
    const struct event *ev = one(f, EV_RESTORE, V1);
    assert_string_equal(ev->rule, "alarm_verification_expired");
    assert_non_null(strstr(ev->detail, "held alarm"));
    assert_int_equal(st(f, V1)->level, LEVEL_NORMAL);
    assert_false(st(f, V1)->pending);
    /* a new alarm-level reading starts a new verification */
    feed(f, 100000, V1, 2.1);
    assert_string_equal(one(f, EV_ALARM_PENDING, V1)->rule, "alarm_verification");
}

/* A second detector confirms at once, during the retard or the window; heat is never verified. */
static void test_verification_second_detector(void **state)
{
    static const int64_t when[] = {1, RETARD_MS - 1, RETARD_MS, RETARD_MS + WINDOW_MS - 1};
    for (size_t i = 0; i < ARRAY_LEN(when); i++) {
        teardown(state);
        setup(state);
        struct fixture *f = *state;
        feed(f, 1000, V1, 2.2);
        feed(f, 2000, V1, 0.2); /* the first detector's smoke has gone meanwhile */
        assert_int_equal(feed(f, 1000 + when[i], V2, 2.0), 2);
        assert_string_equal(one(f, EV_FIRE_ALARM, V1)->rule, "alarm_verification_second_detector");
        assert_string_equal(one(f, EV_FIRE_ALARM, V2)->rule, "smoke_alarm_level");
        assert_int_equal(st(f, V1)->level, LEVEL_FIRE_ALARM);
        assert_int_equal(st(f, V2)->level, LEVEL_FIRE_ALARM);
        struct area_status z;
        assert_int_equal(engine_zone(f->e, ZV, &z), 0);
        assert_false(z.verifying);
        assert_int_equal(z.fire_alarm, 2);
    }
    struct fixture *f = *state;
    assert_int_equal(zone_op(f, engine_reset, SCOPE_ZONE, "ZV", 200000), 0);
    feed(f, 201000, VH, 70.0);
    assert_int_equal(feed(f, 201001, VH, 70.0), 1);
    assert_string_equal(one(f, EV_FIRE_ALARM, VH)->rule, "heat_alarm_level");
}

/* Coincidence type C: fire at once, confirmed when the second comes inside the window. */
static void test_coincidence_window(void **state)
{
    static const struct {
        int64_t gap;
        bool confirmed;
    } rows[] = {{0, true}, {COINC_MS - 1, true}, {COINC_MS, false}};
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        teardown(state);
        setup(state);
        struct fixture *f = *state;
        assert_int_equal(feed(f, 1000, C1, 2.0), 1);
        assert_string_equal(one(f, EV_FIRE_ALARM, C1)->rule, "smoke_alarm_level");
        feed(f, 1000 + rows[i].gap, C2, 2.0);
        assert_int_equal(count(f, EV_FIRE_ALARM, C2), 1);
        assert_int_equal(count(f, EV_FIRE_CONFIRMED, NONE), rows[i].confirmed);
        struct area_status z;
        engine_zone(f->e, ZC, &z);
        assert_int_equal(z.fire_confirmed, rows[i].confirmed);
        if (!rows[i].confirmed)
            continue;
        const struct event *ev = one(f, EV_FIRE_CONFIRMED, NONE);
        assert_string_equal(ev->rule, "coincidence_two_detectors");
        assert_int_equal(ev->source, SRC_ZONE);
        assert_true(ev->has_zone);
        assert_int_equal(ev->zone, ZC);
        assert_int_equal(ev->detector, C2);
        assert_int_equal(ev_priority(ev->kind), 0);
        /* the fire alarm sorts ahead of its confirmation */
        assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);
    }
}

static void test_coincidence_smoke_and_heat(void **state)
{
    struct fixture *f = *state;
    feed(f, 1000, HS, 2.5);
    feed(f, 2000, HS2, 2.5); /* two smoke detectors are not smoke and heat */
    assert_int_equal(count(f, EV_FIRE_CONFIRMED, NONE), 0);
    feed(f, 3000, HH, 60);
    assert_int_equal(feed(f, 3001, HH, 60), 2);
    assert_string_equal(one(f, EV_FIRE_CONFIRMED, NONE)->rule, "coincidence_smoke_and_heat");
    /* once per episode; a reset starts over, and re-alarms confirm again */
    assert_int_equal(zone_op(f, engine_reset, SCOPE_ZONE, "ZH", 4000), 0);
    assert_int_equal(count(f, EV_FIRE_ALARM, NONE), 3);
    assert_int_equal(count(f, EV_FIRE_CONFIRMED, NONE), 1);
    assert_int_equal(count(f, EV_RESET, NONE), 1);
}

static void test_pas_not_acknowledged(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(feed(f, 1000, P1, 2.0), 1);
    assert_string_equal(one(f, EV_ALARM_PENDING, P1)->rule, "positive_alarm_sequence");
    feed(f, 2000, P1, 0.1); /* the reading falls: the held alarm still goes out */
    assert_int_equal(tick(f, 1000 + PAS_ACK_MS - 1), 0);
    assert_int_equal(tick(f, 1000 + PAS_ACK_MS), 1);
    assert_string_equal(one(f, EV_FIRE_ALARM, P1)->rule, "pas_not_acknowledged");
    assert_true(st(f, P1)->latched);
}

static void test_pas_investigation(void **state)
{
    static const int64_t ack_at[] = {0, PAS_ACK_MS - 1};
    for (size_t i = 0; i < ARRAY_LEN(ack_at); i++) {
        teardown(state);
        setup(state);
        struct fixture *f = *state;
        feed(f, 1000, P1, 2.0);
        int64_t ack = 1000 + ack_at[i];
        assert_int_equal(zone_op(f, engine_acknowledge, SCOPE_ZONE, "ZP", ack), 0);
        const struct event *ev = one(f, EV_ACKNOWLEDGED, NONE);
        assert_string_equal(ev->user, "le.thi.hoa");
        assert_int_equal(ev->source, SRC_ZONE);
        assert_true(st(f, P1)->acknowledged);
        assert_int_equal(tick(f, 1000 + PAS_ACK_MS), 0); /* acknowledged: held on */
        assert_int_equal(tick(f, ack + PAS_INV_MS - 1), 0);
        assert_int_equal(tick(f, ack + PAS_INV_MS), 1);
        assert_string_equal(one(f, EV_FIRE_ALARM, P1)->rule, "pas_investigation_expired");
    }
}

static void test_pas_second_detector_and_reset(void **state)
{
    struct fixture *f = *state;
    feed(f, 1000, P1, 2.0);
    zone_op(f, engine_acknowledge, SCOPE_ZONE, "ZP", 2000);
    assert_int_equal(feed(f, 3000, P2, 2.2), 2);
    assert_string_equal(one(f, EV_FIRE_ALARM, P1)->rule, "pas_second_detector");
    assert_string_equal(one(f, EV_FIRE_ALARM, P2)->rule, "smoke_alarm_level");
    assert_int_equal(tick(f, 1000 + PAS_INV_MS + 5000), 0);

    /* reset during the investigation: nothing goes out if the smoke has gone */
    zone_op(f, engine_reset, SCOPE_ZONE, "ZP", 10000); /* P1 2.0 and P2 2.2: re-alarm */
    assert_int_equal(count(f, EV_FIRE_ALARM, NONE), 2);
    feed(f, 11000, P1, 0.1);
    feed(f, 11000, P2, 0.1);
    zone_op(f, engine_reset, SCOPE_ZONE, "ZP", 12000);
    assert_int_equal(count(f, EV_RESTORE, NONE), 2);
    feed(f, 20000, P1, 2.0);
    zone_op(f, engine_acknowledge, SCOPE_ZONE, "ZP", 21000);
    feed(f, 22000, P1, 0.1);
    assert_int_equal(zone_op(f, engine_reset, SCOPE_ZONE, "ZP", 23000), 0);
    assert_string_equal(one(f, EV_RESTORE, P1)->rule, "operator_reset");
    assert_int_equal(tick(f, 21000 + PAS_INV_MS), 0);
    assert_int_equal(st(f, P1)->level, LEVEL_NORMAL);
}

/* Acknowledge and silence are recorded, never clear an alarm; bad targets say why. */
static void test_acknowledge_silence_errors(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(zone_op(f, engine_acknowledge, SCOPE_ALL, NULL, 500), -1);
    assert_non_null(strstr(f->err, "no unacknowledged"));
    assert_int_equal(f->out.count, 0);
    feed(f, 1000, N1, 3.0);
    assert_int_equal(zone_op(f, engine_acknowledge, SCOPE_ZONE, "nowhere", 1100), -1);
    assert_non_null(strstr(f->err, "no zone \"nowhere\""));
    assert_int_equal(zone_op(f, engine_acknowledge, SCOPE_DETECTOR, "N1", 1100), -1);
    assert_non_null(strstr(f->err, "does not apply to a detector"));
    assert_int_equal(zone_op(f, engine_reset, SCOPE_DETECTOR, "N1", 1100), -1);
    assert_int_equal(st(f, N1)->level, LEVEL_FIRE_ALARM);

    assert_int_equal(zone_op(f, engine_acknowledge, SCOPE_ALL, NULL, 1200), 0);
    assert_int_equal(one(f, EV_ACKNOWLEDGED, NONE)->source, SRC_BUILDING);
    assert_false(one(f, EV_ACKNOWLEDGED, NONE)->has_zone);
    assert_int_equal(zone_op(f, engine_acknowledge, SCOPE_ZONE, "ZN", 1300), -1);
    assert_int_equal(zone_op(f, engine_silence, SCOPE_ZONE, "ZN", 1400), 0);
    assert_string_equal(one(f, EV_SILENCED, NONE)->rule, "operator_silence");
    assert_int_equal(zone_op(f, engine_silence, SCOPE_ZONE, "ZN", 1500), -1);
    assert_true(st(f, N1)->acknowledged);
    assert_true(st(f, N1)->silenced);
    assert_int_equal(st(f, N1)->level, LEVEL_FIRE_ALARM);
    assert_true(st(f, N1)->latched);
    feed(f, 1600, N1, 0.0);
    assert_int_equal(st(f, N1)->level, LEVEL_FIRE_ALARM);

    /* a new alarm in the zone sounds again and needs a new acknowledgement */
    feed2(f, 2000, NH, 70.0);
    struct area_status z;
    engine_zone(f->e, ZN, &z);
    assert_false(z.silenced);
    assert_false(z.acknowledged);
    assert_int_equal(z.fire_alarm, 2);
    assert_string_equal(area_status_word(&z), "fire_alarm");
    struct area_status b;
    engine_building(f->e, &b);
    assert_int_equal(b.fire_alarm, 2);
    assert_int_equal(b.detectors, NDET);
    assert_false(b.acknowledged);
}

static void test_disable_and_expiry(void **state)
{
    struct fixture *f = *state;
    feed(f, 1000, N1, 2.5);
    assert_int_equal(disable(f, SCOPE_DETECTOR, "N1", 2000, 60000), 0);
    assert_string_equal(one(f, EV_DISABLED, N1)->rule, "detector_disabled");
    assert_string_equal(one(f, EV_DISABLED, N1)->user, "le.thi.hoa");
    assert_int_equal(count(f, EV_RESTORE, N1), 1);
    assert_true(st(f, N1)->disabled);
    assert_string_equal(det_status_word(st(f, N1)), "disabled");
    assert_int_equal(feed(f, 3000, N1, 4.0), 0);
    assert_int_equal(st(f, N1)->level, LEVEL_NORMAL);
    assert_int_equal(tick(f, 2000 + 60000 - 1), 0);
    assert_int_equal(tick(f, 2000 + 60000), 2);
    assert_string_equal(one(f, EV_ENABLED, N1)->rule, "disablement_expired");
    assert_string_equal(one(f, EV_FIRE_ALARM, N1)->rule, "smoke_alarm_level");
    assert_int_equal(f->out.items[0].kind, EV_FIRE_ALARM);

    /* by hand, and the mistakes an operator can make */
    zone_op(f, engine_reset, SCOPE_ALL, NULL, 70000);
    assert_int_equal(disable(f, SCOPE_ALL, NULL, 70000, 1000), -1);
    assert_int_equal(disable(f, SCOPE_DETECTOR, "N9", 70000, 1000), -1);
    assert_non_null(strstr(f->err, "no detector \"N9\""));
    assert_int_equal(disable(f, SCOPE_DETECTOR, "N1", 70000, 0), -1);
    assert_non_null(strstr(f->err, "past"));
    assert_int_equal(zone_op(f, engine_enable, SCOPE_DETECTOR, "N1", 70000), -1);
    assert_non_null(strstr(f->err, "not disabled"));
    assert_int_equal(disable(f, SCOPE_ZONE, "ZN", 71000, 600000), 0);
    assert_int_equal(one(f, EV_DISABLED, NONE)->source, SRC_ZONE);
    assert_int_equal(count(f, EV_RESTORE, N1), 1);
    feed2(f, 72000, NH, 90);
    assert_int_equal(count(f, EV_FIRE_ALARM, NONE), 0);
    struct area_status z;
    engine_zone(f->e, ZN, &z);
    assert_true(z.zone_disabled);
    assert_string_equal(area_status_word(&z), "disabled");
    assert_int_equal(zone_op(f, engine_enable, SCOPE_ZONE, "ZN", 73000), 0);
    assert_string_equal(one(f, EV_ENABLED, NONE)->rule, "operator_enable");
    assert_int_equal(count(f, EV_FIRE_ALARM, NONE), 2); /* N1 2.5 and NH 90 still there */
    tick(f, 71000 + 600000); /* the expiry was cancelled (N1's value has been stuck meanwhile) */
    assert_int_equal(count(f, EV_ENABLED, NONE), 0);
    assert_int_equal(one(f, EV_FAULT, N1)->fault, FAULT_STUCK);
}

static void test_test_mode(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(test_mode(f, SCOPE_DETECTOR, "N1", true, 1000, 30000), 0);
    assert_false(one(f, EV_TEST_MODE_ON, N1)->test);
    assert_true(st(f, N1)->test_mode);
    assert_string_equal(det_status_word(st(f, N1)), "test");
    assert_int_equal(feed(f, 2000, N1, 3.0), 1);
    const struct event *ev = one(f, EV_TEST_ALARM, N1);
    assert_true(ev->test);
    assert_string_equal(ev->rule, "smoke_alarm_level");
    assert_int_equal(st(f, N1)->level, LEVEL_NORMAL);
    assert_true(st(f, N1)->test_alarm);
    assert_int_equal(feed(f, 3000, N1, 3.0), 0);
    assert_int_equal(feed(f, 4000, N1, 0.1), 1);
    assert_true(one(f, EV_RESTORE, N1)->test);
    assert_string_equal(one(f, EV_RESTORE, N1)->rule, "test_restore");
    feed(f, 5000, N1, 3.0); /* left in alarm when the test mode expires: judged for real */
    assert_int_equal(tick(f, 1000 + 30000 - 1), 0);
    assert_int_equal(tick(f, 1000 + 30000), 3);
    assert_string_equal(one(f, EV_TEST_MODE_OFF, N1)->rule, "test_mode_expired");
    assert_true(one(f, EV_RESTORE, N1)->test);
    assert_false(one(f, EV_FIRE_ALARM, N1)->test);

    /* a point in fire alarm cannot be put in test mode */
    assert_int_equal(test_mode(f, SCOPE_ZONE, "ZN", true, 40000, 30000), -1);
    assert_non_null(strstr(f->err, "\"N1\" is in fire alarm"));
    zone_op(f, engine_reset, SCOPE_ZONE, "ZN", 41000);
    feed(f, 41500, N1, 0.1);
    zone_op(f, engine_reset, SCOPE_ZONE, "ZN", 42000);
    assert_int_equal(test_mode(f, SCOPE_ZONE, "ZN", true, 43000, 30000), 0);
    assert_int_equal(one(f, EV_TEST_MODE_ON, NONE)->source, SRC_ZONE);
    feed2(f, 44000, NH, 80);
    assert_true(one(f, EV_TEST_ALARM, NH)->test);
    assert_int_equal(test_mode(f, SCOPE_ZONE, "ZN", false, 45000, 0), 0);
    assert_string_equal(one(f, EV_TEST_MODE_OFF, NONE)->rule, "operator_test_mode_off");
    assert_int_equal(count(f, EV_FIRE_ALARM, NH), 1);
    assert_int_equal(test_mode(f, SCOPE_ZONE, "ZN", false, 46000, 0), -1);
}

/* Heat: one wild sample never alarms (two of the last three must reach a level), a real rise
 * is late by one reading at most. */
static void test_heat_spike_filter(void **state)
{
    struct fixture *f = *state;
    static const struct {
        double v;
        int kind;
    } steps[] = {
        {25, NONE}, {25, NONE}, {80, NONE}, {25, NONE}, {25, NONE},
        {85, NONE}, {20, NONE}, {25, NONE}, {60, NONE}, {60, EV_FIRE_ALARM},
    };
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        size_t n = feed(f, 1000 * (int64_t)(i + 1), NH, steps[i].v);
        if (steps[i].kind == NONE && n)
            fail_msg("step %zu (%.1f): unexpected %s", i, steps[i].v,
                     ev_kind_name(f->out.items[0].kind));
        if (steps[i].kind != NONE)
            assert_string_equal(one(f, (enum ev_kind)steps[i].kind, NH)->rule, "heat_alarm_level");
    }
}

/* Rate of rise: exactly the configured rate over the window alarms; a little less never. */
static void test_rate_of_rise(void **state)
{
    static const struct {
        double per_s;
        int64_t fire_at; /* ms, or 0 for never in 120 s */
    } rows[] = {{0.15, 61000}, {0.148, 0}};
    for (size_t r = 0; r < ARRAY_LEN(rows); r++) {
        teardown(state);
        setup(state);
        struct fixture *f = *state;
        int64_t fired = 0;
        for (int k = 0; k <= 120 && !fired; k++) {
            feed(f, 1000 * (int64_t)k, NH, 25.0 + rows[r].per_s * k);
            if (count(f, EV_FIRE_ALARM, NH)) {
                fired = 1000 * (int64_t)k;
                assert_string_equal(one(f, EV_FIRE_ALARM, NH)->rule, "heat_rate_of_rise");
            }
        }
        assert_int_equal(fired, rows[r].fire_at);
    }
    /* without rate_of_rise (class S or not asked for) only the static level counts */
    teardown(state);
    setup(state);
    struct fixture *f = *state;
    f->dets[VH].rate_of_rise = false;
    for (int k = 0; k <= 120; k++)
        assert_int_equal(feed(f, 1000 * (int64_t)k, VH, 25.0 + 0.2 * k), 0);
}

static void test_stuck_value(void **state)
{
    struct fixture *f = *state;
    for (int64_t ms = 1000; ms < 1000 + STUCK_MS; ms += 1000)
        assert_int_equal(feed(f, ms, N1, 0.10), 0);
    assert_int_equal(tick(f, 1000 + STUCK_MS - 1), 0);
    assert_int_equal(tick(f, 1000 + STUCK_MS), 1);
    const struct event *ev = one(f, EV_FAULT, N1);
    assert_int_equal(ev->fault, FAULT_STUCK);
    assert_string_equal(ev->rule, "value_stuck");
    assert_string_equal(det_status_word(st(f, N1)), "fault");
    assert_int_equal(feed(f, 70000, N1, 0.11), 1);
    assert_int_equal(one(f, EV_FAULT_RESTORE, N1)->fault, FAULT_STUCK);
    /* a stuck detector still alarms */
    assert_int_equal(feed(f, 71000, N1, 2.2), 1);
    assert_int_equal(count(f, EV_FIRE_ALARM, N1), 1);
    /* detectors without stuck_after are never stuck */
    assert_int_equal(st(f, C1)->faults & (1u << FAULT_STUCK), 0);
}

/* Many detectors, nothing due: a tick is a comparison, and due scans are rare. */
static void test_tick_cost(void **state)
{
    (void)state;
    enum { N = 5000, TICKS = 100000 };
    struct cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct cfg_bus bus = {.id = (char *)"b"};
    struct cfg_zone zone = {.id = (char *)"z", .name = (char *)"z"};
    struct cfg_device dev = {.id = (char *)"d"};
    struct cfg_detector *dets = xcalloc(N, sizeof(*dets));
    for (size_t i = 0; i < N; i++) {
        dets[i].id = (char *)"x";
        dets[i].type = DET_SMOKE;
        dets[i].thresholds = smoke_th;
        dets[i].no_response_ms = NO_RESPONSE_MS;
    }
    cfg.buses = &bus;
    cfg.nbuses = 1;
    cfg.zones = &zone;
    cfg.nzones = 1;
    cfg.devices = &dev;
    cfg.ndevices = 1;
    cfg.detectors = dets;
    cfg.ndetectors = N;
    struct engine *e = engine_new(&cfg, at(0));
    struct evlist out = {0};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int64_t i = 0; i < TICKS; i++)
        engine_tick(e, at(i / 10), &out); /* 10 s of 1 ms steps: before any no-response */
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / TICKS;
    printf("engine_tick with %d detectors, nothing due: %.1f ns per tick\n", N, ns);
    assert_int_equal(out.count, 0);
    /* a scan over 5000 detectors takes tens of microseconds: 2 us means it did not scan */
    assert_true(ns < 2000.0);
    engine_tick(e, at(NO_RESPONSE_MS), &out);
    assert_int_equal(out.count, N);
    evlist_free(&out);
    engine_free(e);
    free(dets);
}

static void test_status_words(void **state)
{
    struct fixture *f = *state;
    struct area_status z;
    assert_int_equal(engine_zone(f->e, NZONE, &z), -1);
    engine_zone(f->e, ZV, &z);
    assert_int_equal(z.detectors, 3);
    assert_string_equal(area_status_word(&z), "normal");
    feed(f, 1000, V1, 2.2);
    engine_zone(f->e, ZV, &z);
    assert_true(z.verifying);
    assert_int_equal(z.pending, 1);
    assert_string_equal(area_status_word(&z), "pre_alarm");
    struct area_status b;
    engine_building(f->e, &b);
    assert_true(b.verifying);
    assert_string_equal(area_status_word(&b), "pre_alarm");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_verification_window_edges),
        T(test_verification_expiry),
        T(test_verification_second_detector),
        T(test_coincidence_window),
        T(test_coincidence_smoke_and_heat),
        T(test_pas_not_acknowledged),
        T(test_pas_investigation),
        T(test_pas_second_detector_and_reset),
        T(test_acknowledge_silence_errors),
        T(test_disable_and_expiry),
        T(test_test_mode),
        T(test_heat_spike_filter),
        T(test_rate_of_rise),
        T(test_stuck_value),
        cmocka_unit_test(test_tick_cost),
        T(test_status_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
