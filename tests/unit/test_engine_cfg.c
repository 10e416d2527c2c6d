/*
 * Unit tests for the config keys of the alarm engine's rules: the EN 54-5
 * heat class table and heat_class, rate_of_rise, stuck_after, and the zone
 * keys for verification, coincidence and positive alarm sequence, with their
 * defaults, limits and the errors that name file and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg.h"
#include "util.h"

#define NAME "config/inline.conf"

static const char base[] = "[site]\nid = t\nname = T\n"
                           "[gateway]\nprofile_dir = ../sensors/profiles\n"
                           "[bus b]\ntype = tcp\nhost = 127.0.0.1\n"
                           "[uplink u]\nrole = owner\nhost = 127.0.0.1\n"
                           "[zone Z]\nname = Z\nfloor = 1\n";

/* Load base + extra; NULL and the errors in err on failure. */
static struct cfg *load(const char *extra, char *err, size_t errlen)
{
    char *text = xasprintf("%s%s", base, extra);
    struct cfg *c = cfg_load_string(text, NAME, err, errlen);
    free(text);
    return c;
}

static void test_class_table(void **state)
{
    (void)state;
    static const struct {
        enum heat_class c;
        const char *name;
        double typical, max_app, smin, smax;
    } rows[] = {
        {HEAT_A1, "A1", 25, 50, 54, 65},   {HEAT_A2, "A2", 25, 50, 54, 70},
        {HEAT_B, "B", 40, 65, 69, 85},     {HEAT_C, "C", 55, 80, 84, 100},
        {HEAT_D, "D", 70, 95, 99, 115},    {HEAT_E, "E", 85, 110, 114, 130},
        {HEAT_F, "F", 100, 125, 129, 145}, {HEAT_G, "G", 115, 140, 144, 160},
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        const struct heat_class_info *h = heat_class_info(rows[i].c);
        assert_non_null(h);
        assert_string_equal(h->name, rows[i].name);
        assert_true(h->typical == rows[i].typical && h->max_application == rows[i].max_app);
        assert_true(h->static_min == rows[i].smin && h->static_max == rows[i].smax);
    }
    assert_null(heat_class_info(HEAT_CLASS_NONE));
    assert_null(heat_class_info(HEAT_CLASS__COUNT));
}

static void test_heat_class_sets_levels(void **state)
{
    (void)state;
    static const struct {
        const char *cls;
        double pre, alarm;
        bool ror;
    } rows[] = {
        {"A1", 50, 54, false}, {"A1R", 50, 54, true}, {"BS", 65, 69, false}, {"CR", 80, 84, true}};
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        char err[2048], extra[256];
        snprintf(extra, sizeof(extra),
                 "[detector H]\nbus = b\nunit = 1\nprofile = heat-485\nzone = Z\nheat_class = %s\n",
                 rows[i].cls);
        struct cfg *c = load(extra, err, sizeof(err));
        if (!c)
            fail_msg("%s: %s", rows[i].cls, err);
        const struct cfg_detector *d = &c->detectors[0];
        assert_true(d->thresholds.prealarm == rows[i].pre);
        assert_true(d->thresholds.alarm == rows[i].alarm);
        assert_int_equal(d->rate_of_rise, rows[i].ror);
        assert_int_equal(d->stuck_after_ms, 0);
        cfg_free(c);
    }
}

static void test_zone_keys_and_defaults(void **state)
{
    (void)state;
    char err[2048];
    struct cfg *c = load("[zone V]\nname = V\nfloor = 2\nverification = yes\n"
                         "coincidence = smoke_and_heat\ncoincidence_window = 2min\n"
                         "[zone P]\nname = P\nfloor = 3\npositive_alarm_sequence = yes\n"
                         "[defaults]\nstuck_after = 6h\n"
                         "[detector S]\nbus = b\nunit = 2\nprofile = optical-smoke-485\nzone = V\n",
                         err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    const struct cfg_zone *z = &c->zones[0], *v = &c->zones[1], *p = &c->zones[2];
    assert_false(z->verification);
    assert_int_equal(z->coincidence, COINC_NONE);
    assert_false(z->pas);
    assert_true(v->verification);
    assert_int_equal(v->verify_retard_ms, 30000);
    assert_int_equal(v->verify_window_ms, 60000);
    assert_int_equal(v->coincidence, COINC_SMOKE_AND_HEAT);
    assert_int_equal(v->coincidence_window_ms, 120000);
    assert_true(p->pas);
    assert_int_equal(p->pas_ack_ms, 15000);
    assert_int_equal(p->pas_investigation_ms, 180000);
    assert_int_equal(c->defaults.stuck_after_ms, 6 * 3600000LL);
    assert_int_equal(c->detectors[0].stuck_after_ms, 6 * 3600000LL);
    assert_true(c->defaults.ror_degc_per_min == 9.0);
    assert_int_equal(c->defaults.ror_window_ms, 60000);
    assert_string_equal(coincidence_mode_name(v->coincidence), "smoke_and_heat");
    cfg_free(c);
}

/* Each bad setting is reported at its line: the base text has 14 lines. */
static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *extra;
        const char *want;
    } rows[] = {
        {"verification_retard = 61s\n",
         NAME ":15: zone \"Z\": verification_retard \"61s\" is not a "
              "duration in 0ms..1min"},
        {"verification_window = 59s\n", NAME ":15: zone \"Z\": verification_window \"59s\""},
        {"pas_acknowledge = 16s\n", NAME ":15: zone \"Z\": pas_acknowledge \"16s\""},
        {"pas_investigation = 181s\n", NAME ":15: zone \"Z\": pas_investigation \"181s\""},
        {"coincidence_window = 9min\n", NAME ":15: zone \"Z\": coincidence_window \"9min\""},
        {"verification = yes\npositive_alarm_sequence = yes\n",
         NAME ":16: zone \"Z\": verification and positive_alarm_sequence cannot both be on"},
        {"[detector H]\nbus = b\nunit = 1\nprofile = heat-485\nzone = Z\nheat_class = A1\n"
         "alarm = 60\n",
         NAME ":21: detector \"H\": give either heat_class or prealarm/alarm levels"},
        {"[detector H]\nbus = b\nunit = 1\nprofile = heat-485\nzone = Z\nheat_class = A2S\n"
         "rate_of_rise = yes\n",
         NAME ":21: detector \"H\": rate_of_rise cannot be on for class A2S"},
        {"[detector S]\nbus = b\nunit = 1\nprofile = optical-smoke-485\nzone = Z\n"
         "heat_class = A1\n",
         NAME ":20: detector \"S\": heat_class applies to heat detectors only"},
        {"[detector S]\nbus = b\nunit = 1\nprofile = optical-smoke-485\nzone = Z\n"
         "stuck_after = 30s\n",
         NAME ":20: detector \"S\": stuck_after 30s is below 1min"},
        {"[detector H]\nbus = b\nunit = 1\nprofile = heat-485\nzone = Z\nheat_class = Q\n",
         NAME ":20: detector \"H\": heat_class \"Q\" is not one of A1, A1R"},
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        char err[4096];
        struct cfg *c = load(rows[i].extra, err, sizeof(err));
        assert_null(c);
        if (!strstr(err, rows[i].want))
            fail_msg("row %zu: want \"%s\" in:\n%s", i, rows[i].want, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_class_table),
        cmocka_unit_test(test_heat_class_sets_levels),
        cmocka_unit_test(test_zone_keys_and_defaults),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
