/*
 * Unit tests for gateway/command.c: the text commands of `firegw ctl` parsed,
 * checked and applied to a real engine built from a small site config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "log.h"
#include "util.h"

static const char *SITE = "[site]\n"
                          "id = cmd-test\n"
                          "name = Command test\n"
                          "[gateway]\n"
                          "profile_dir = ../../sensors/profiles\n"
                          "[bus b]\n"
                          "type = tcp\n"
                          "host = 127.0.0.1\n"
                          "[zone Z1]\n"
                          "name = Zone 1\n"
                          "floor = 1\n"
                          "[detector S1]\n"
                          "bus = b\n"
                          "unit = 1\n"
                          "profile = optical-smoke-485\n"
                          "zone = Z1\n"
                          "[uplink u]\n"
                          "role = fire_police\n"
                          "host = 127.0.0.1\n";

struct fx {
    struct cfg *cfg;
    struct engine *e;
    struct evlist ev;
    char reply[4096];
};

static struct ev_time at(int64_t ms)
{
    struct ev_time t = {ms, 1795410243000LL + ms};
    return t;
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    char err[2048] = "";
    f->cfg = cfg_load_string(SITE, "tests/fixtures/command-test.conf", err, sizeof(err));
    if (!f->cfg)
        fail_msg("config: %s", err);
    f->e = engine_new(f->cfg, at(0));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    evlist_free(&f->ev);
    engine_free(f->e);
    cfg_free(f->cfg);
    free(f);
    return 0;
}

/* Feed S1 a smoke reading at time ms. */
static void smoke(struct fx *f, double value, int64_t ms)
{
    struct reading r = {.detector = 0, .has_value = true, .value_ok = true, .value = value};
    struct device_sample s = {.device = 0, .t = at(ms), .nreadings = 1, .readings = &r};
    engine_sample(f->e, &s, &f->ev);
}

static int run(struct fx *f, const char *line, int64_t ms)
{
    evlist_clear(&f->ev);
    return command_execute(f->e, f->cfg, line, "local:tester", at(ms), &f->ev, f->reply,
                           sizeof(f->reply));
}

static bool has_event(struct fx *f, enum ev_kind k)
{
    for (size_t i = 0; i < f->ev.count; i++)
        if (f->ev.items[i].kind == k)
            return true;
    return false;
}

static void test_reset_clears_latched_alarm_and_names_user(void **state)
{
    struct fx *f = *state;
    smoke(f, 3.0, 1000);
    smoke(f, 0.1, 2000);
    assert_int_equal(engine_detector(f->e, 0)->level, LEVEL_FIRE_ALARM);
    assert_int_equal(run(f, "reset zone Z1", 3000), 0);
    assert_string_equal(f->reply, "ok reset zone Z1");
    assert_true(has_event(f, EV_RESET));
    bool named = false;
    for (size_t i = 0; i < f->ev.count; i++)
        named |= strcmp(f->ev.items[i].user, "local:tester") == 0;
    assert_true(named);
    assert_int_equal(engine_detector(f->e, 0)->level, LEVEL_NORMAL);
}

static void test_acknowledge_and_silence_do_not_clear(void **state)
{
    struct fx *f = *state;
    smoke(f, 3.0, 1000);
    assert_int_equal(run(f, "acknowledge all", 2000), 0);
    assert_true(has_event(f, EV_ACKNOWLEDGED));
    assert_int_equal(run(f, "silence zone Z1", 2500), 0);
    assert_true(has_event(f, EV_SILENCED));
    assert_int_equal(engine_detector(f->e, 0)->level, LEVEL_FIRE_ALARM);
}

static void test_test_mode_makes_test_events(void **state)
{
    struct fx *f = *state;
    assert_int_equal(run(f, "test on detector S1 30min", 1000), 0);
    assert_true(has_event(f, EV_TEST_MODE_ON));
    evlist_clear(&f->ev);
    smoke(f, 3.0, 2000);
    assert_false(has_event(f, EV_FIRE_ALARM));
    assert_true(has_event(f, EV_TEST_ALARM));
    for (size_t i = 0; i < f->ev.count; i++)
        if (f->ev.items[i].kind == EV_TEST_ALARM)
            assert_true(f->ev.items[i].test);
    smoke(f, 0.1, 3000);
    assert_int_equal(run(f, "test off detector S1", 4000), 0);
    assert_true(has_event(f, EV_TEST_MODE_OFF));
}

static void test_disable_for_a_period_then_expires(void **state)
{
    struct fx *f = *state;
    assert_int_equal(run(f, "disable detector S1 10s", 1000), 0);
    assert_true(has_event(f, EV_DISABLED));
    evlist_clear(&f->ev);
    smoke(f, 3.0, 2000);
    assert_false(has_event(f, EV_FIRE_ALARM));
    engine_tick(f->e, at(11000), &f->ev);
    assert_true(has_event(f, EV_ENABLED));
}

static void test_bad_commands_are_rejected_with_reason(void **state)
{
    struct fx *f = *state;
    const struct {
        const char *line;
        const char *reason;
    } bad[] = {
        {"", "expected a command"},
        {"fire", "unknown command \"fire\""},
        {"reset", "expected \"all\""},
        {"reset zone", "expected \"all\""},
        {"reset zone NOPE", "NOPE"},
        {"reset zone Z1 now", "unexpected words"},
        {"disable detector S1", "expected a period"},
        {"disable detector S1 10", "got \"10\""},
        {"disable detector S1 30d", "got \"30d\""},
        {"disable all 1h", "expected \"zone ID\""},
        {"test maybe zone Z1", "test on TARGET PERIOD"},
        {"test on zone Z1", "expected a period"},
        {"test off zone Z1 1h", "unexpected words"},
        {"a b c d e f g h i j", "expected a command"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(run(f, bad[i].line, 1000), -1);
        if (!strstr(f->reply, bad[i].reason))
            fail_msg("\"%s\" -> \"%s\", expected to mention \"%s\"", bad[i].line, f->reply,
                     bad[i].reason);
        assert_int_equal(strncmp(f->reply, "error: ", 7), 0);
        assert_int_equal(f->ev.count, 0);
    }
    char longline[2048];
    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    assert_int_equal(run(f, longline, 1000), -1);
    assert_non_null(strstr(f->reply, "longer than"));
}

static void test_status_summarises_building_and_zones(void **state)
{
    struct fx *f = *state;
    smoke(f, 3.0, 1000);
    assert_int_equal(run(f, "status", 1500), 0);
    assert_non_null(strstr(f->reply, "\"building\":\"cmd-test\""));
    assert_non_null(strstr(f->reply, "\"state\":\"fire_alarm\""));
    assert_non_null(strstr(f->reply, "{\"id\":\"Z1\""));
}

int main(void)
{
    log_set_level(LOG_LVL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_clears_latched_alarm_and_names_user, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_acknowledge_and_silence_do_not_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_mode_makes_test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_for_a_period_then_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_commands_are_rejected_with_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_summarises_building_and_zones, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
