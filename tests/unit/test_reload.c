/*
 * Unit tests for gateway/reload.c: which buses keep their pollers across a
 * reload, what a reload must refuse, how old indexes map onto the new
 * config, and that engine_adopt carries latches and disablements over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "engine.h"
#include "ini.h"
#include "reload.h"
#include "util.h"

#define SITE "tests/integration/site-small.conf"
#define ERRLEN 16384

static char err[ERRLEN];
static char *site_text;

static int setup(void **state)
{
    (void)state;
    struct ini_errors e;
    ini_errors_init(&e, err, sizeof(err));
    site_text = ini_read_file(SITE, &e);
    return site_text ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(site_text);
    return 0;
}

/* The small site with text appended (later keys of a section override earlier ones). */
static struct cfg *load(const char *extra)
{
    char *text = xasprintf("%s\n%s", site_text, extra);
    struct cfg *c = cfg_load_string(text, SITE, err, sizeof(err));
    free(text);
    if (!c)
        fail_msg("config does not load:\n%s", err);
    return c;
}

static struct cfg *load_set(const char *set)
{
    struct cfg *c = cfg_load_ex(SITE, &set, 1, err, sizeof(err));
    if (!c)
        fail_msg("config with %s does not load:\n%s", set, err);
    return c;
}

static bool bus_kept(const struct cfg *a, const struct cfg *b, const char *bus)
{
    long ia = cfg_find_bus(a, bus), ib = cfg_find_bus(b, bus);
    assert_true(ia >= 0 && ib >= 0);
    return reload_bus_unchanged(a, (size_t)ia, b, (size_t)ib);
}

static void test_what_restarts_a_bus(void **state)
{
    (void)state;
    struct cfg *base = load("");
    struct cfg *same = load("");
    assert_true(bus_kept(base, same, "tcp1"));
    assert_true(bus_kept(base, same, "rtu1"));

    /* Alarm levels are the engine's business: no restart. */
    struct cfg *slower = load_set("defaults.smoke_alarm=2.5");
    assert_true(bus_kept(base, slower, "tcp1"));
    cfg_free(slower);

    struct cfg *t = load_set("bus.tcp1.timeout=300ms");
    assert_false(bus_kept(base, t, "tcp1"));
    assert_true(bus_kept(base, t, "rtu1"));
    cfg_free(t);

    /* Pipelining is the poller's way of reading: a change restarts the bus. */
    struct cfg *pl = load_set("bus.tcp1.max_in_flight=8");
    assert_false(bus_kept(base, pl, "tcp1"));
    assert_true(bus_kept(base, pl, "rtu1"));
    cfg_free(pl);

    struct cfg *more = load("[detector T-S3]\nbus = tcp1\nunit = 4\nprofile = optical-smoke-485\n"
                            "zone = Z1\n");
    assert_false(bus_kept(base, more, "tcp1"));
    assert_true(bus_kept(base, more, "rtu1"));
    cfg_free(more);

    const char *const profile[] = {"detector.R-H1.profile=heat-485"};
    struct cfg *p = cfg_load_ex(SITE, profile, 1, err, sizeof(err));
    assert_non_null(p);
    assert_false(bus_kept(base, p, "rtu1"));
    cfg_free(p);

    cfg_free(same);
    cfg_free(base);
}

static void test_refusals(void **state)
{
    (void)state;
    struct cfg *base = load("");
    struct ev_time t0 = {1000, 1700000000000};
    struct engine *e = engine_new(base, t0);

    struct cfg *ok = load_set("defaults.smoke_alarm=2.5");
    assert_int_equal(reload_check(base, ok, e, err, sizeof(err)), 0);
    cfg_free(ok);

    const char *const ka[] = {"uplink.district.keepalive=5s"};
    struct cfg *up = cfg_load_ex(SITE, ka, 1, err, sizeof(err));
    assert_non_null(up);
    assert_int_equal(reload_check(base, up, e, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "uplink \"district\" changed"));
    cfg_free(up);

    const char *const name[] = {"site.name=Another"};
    struct cfg *site = cfg_load_ex(SITE, name, 1, err, sizeof(err));
    assert_non_null(site);
    assert_int_equal(reload_check(base, site, e, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "[site]"));
    cfg_free(site);

    /* Removing a detector in fire alarm is refused; removing a quiet one is fine. */
    char *text = xstrdup(site_text);
    char *sec = strstr(text, "[detector T-S1]");
    assert_non_null(sec);
    memcpy(sec, "[detector T-SX]", 15);
    struct cfg *renamed = cfg_load_string(text, SITE, err, sizeof(err));
    free(text);
    assert_non_null(renamed);
    assert_int_equal(reload_check(base, renamed, e, err, sizeof(err)), 0);

    struct reading r = {.detector = (size_t)cfg_find_detector(base, "T-S1"),
                        .has_value = true,
                        .value_ok = true,
                        .value = 3.0};
    struct device_sample s = {
        .device = base->detectors[r.detector].device, .t = t0, .nreadings = 1, .readings = &r};
    struct evlist out = {0};
    engine_sample(e, &s, &out);
    s.t.mono_ms += 1000;
    engine_sample(e, &s, &out);
    assert_int_equal(engine_detector(e, r.detector)->level, LEVEL_FIRE_ALARM);
    assert_int_equal(reload_check(base, renamed, e, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "detector \"T-S1\" is in fire alarm"));
    evlist_free(&out);
    cfg_free(renamed);
    engine_free(e);
    cfg_free(base);
}

static void test_adopt_keeps_latch_and_disablement(void **state)
{
    (void)state;
    struct cfg *base = load("");
    struct ev_time t = {1000, 1700000000000};
    struct engine *e = engine_new(base, t);
    size_t det = (size_t)cfg_find_detector(base, "T-S1");
    struct reading r = {.detector = det, .has_value = true, .value_ok = true, .value = 3.0};
    struct device_sample s = {
        .device = base->detectors[det].device, .t = t, .nreadings = 1, .readings = &r};
    struct evlist out = {0};
    engine_sample(e, &s, &out);
    s.t.mono_ms += 1000;
    engine_sample(e, &s, &out);
    struct engine_op op = {.scope = SCOPE_DETECTOR, .id = "T-S2", .user = "test", .now = s.t};
    assert_int_equal(engine_disable(e, &op, s.t.mono_ms + 600000, &out, err, sizeof(err)), 0);

    /* The new config puts a detector before T-S1, so every index moves. */
    char *text = xasprintf("%s", site_text);
    char *first = strstr(text, "[detector T-S1]");
    assert_non_null(first);
    *first = '\0';
    char *moved = xasprintf("%s[detector A-NEW]\nbus = tcp1\nunit = 5\nprofile = heat-485\n"
                            "zone = Z1\n\n[detector T-S1]%s",
                            text, first + strlen("[detector T-S1]"));
    struct cfg *nc = cfg_load_string(moved, SITE, err, sizeof(err));
    free(text);
    free(moved);
    assert_non_null(nc);
    struct engine *ne = engine_new(nc, s.t);
    engine_adopt(ne, e, s.t);
    size_t nd = (size_t)cfg_find_detector(nc, "T-S1");
    assert_int_not_equal(nd, det);
    const struct det_status *st = engine_detector(ne, nd);
    assert_int_equal(st->level, LEVEL_FIRE_ALARM);
    assert_true(st->latched);

    /* Clear air does not end the latch; the disablement still holds. */
    struct reading r2 = {.detector = nd, .has_value = true, .value_ok = true, .value = 0.1};
    struct device_sample s2 = {
        .device = nc->detectors[nd].device, .t = s.t, .nreadings = 1, .readings = &r2};
    s2.t.mono_ms += 1000;
    size_t before = out.count;
    engine_sample(ne, &s2, &out);
    engine_tick(ne, s2.t, &out);
    for (size_t i = before; i < out.count; i++)
        assert_int_not_equal(out.items[i].kind, EV_RESTORE);
    assert_int_equal(engine_detector(ne, nd)->level, LEVEL_FIRE_ALARM);
    size_t d2 = (size_t)cfg_find_detector(nc, "T-S2");
    struct reading r3 = {.detector = d2, .has_value = true, .value_ok = true, .value = 5.0};
    struct device_sample s3 = {
        .device = nc->detectors[d2].device, .t = s2.t, .nreadings = 1, .readings = &r3};
    for (int i = 0; i < 3; i++) {
        s3.t.mono_ms += 1000;
        engine_sample(ne, &s3, &out);
    }
    assert_int_not_equal(engine_detector(ne, d2)->level, LEVEL_FIRE_ALARM);
    /* The new detector starts fresh. */
    assert_int_equal(engine_detector(ne, (size_t)cfg_find_detector(nc, "A-NEW"))->level,
                     LEVEL_NORMAL);

    struct reload_map *m = reload_map_new(base, nc);
    assert_int_equal(m->detector[det], (long)nd);
    assert_int_equal(m->bus[cfg_find_bus(base, "rtu1")], cfg_find_bus(nc, "rtu1"));
    reload_map_free(m);
    evlist_free(&out);
    engine_free(ne);
    engine_free(e);
    cfg_free(nc);
    cfg_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_restarts_a_bus),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_adopt_keeps_latch_and_disablement),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
