/*
 * Unit tests for gateway_wait_ms (gateway/gateway.c): how long the main loop
 * may sleep. It sleeps until the earliest of its timers (the engine's, the
 * state comparison, heartbeats, pruning, the watchdog), at most the idle
 * wait, and only the short wait while starting. Samples, messages, commands
 * and signals wake it anyway, so nothing here may wait longer than a timer
 * allows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "gateway.h"
#include "util.h"

#define SITE "tests/integration/site-small.conf"
#define T0 1000000
#define IDLE 1000
#define BUSY 250
#define FAR (T0 + 3600000)

static int setup(void **state)
{
    struct gateway *gw = xcalloc(1, sizeof(*gw));
    char err[4096];
    gw->cfg = cfg_load(SITE, err, sizeof(err));
    if (!gw->cfg)
        fail_msg("%s", err);
    struct ev_time t = {T0, 1767225600000LL};
    gw->engine = engine_new(gw->cfg, t);
    struct evlist out = {0};
    engine_tick(gw->engine, t, &out); /* arms the no-answer timers */
    evlist_free(&out);
    gw->next_heartbeat = xcalloc(gw->cfg->nuplinks, sizeof(int64_t));
    for (size_t i = 0; i < gw->cfg->nuplinks; i++)
        gw->next_heartbeat[i] = FAR;
    gw->next_states = FAR;
    gw->next_prune = FAR;
    gw->ready = true;
    *state = gw;
    return 0;
}

static int teardown(void **state)
{
    struct gateway *gw = *state;
    engine_free(gw->engine);
    free(gw->next_heartbeat);
    cfg_free(gw->cfg);
    free(gw);
    return 0;
}

static void test_idle_loop_sleeps_the_idle_wait(void **state)
{
    struct gateway *gw = *state;
    assert_true(engine_next_due(gw->engine) > T0 + IDLE);
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), IDLE);
}

static void test_each_timer_shortens_the_wait(void **state)
{
    struct gateway *gw = *state;
    /* The engine's first timer: a detector that has not answered. */
    int64_t due = engine_next_due(gw->engine);
    assert_true(due < FAR);
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, due - 400), 400);
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, due), 0);
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, due + 5000), 0);

    gw->next_states = T0 + 700;
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), 700);
    gw->next_prune = T0 + 600;
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), 600);
    gw->next_heartbeat[gw->cfg->nuplinks - 1] = T0 + 500;
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), 500);
    /* The watchdog's keep-alive counts only when a watchdog is asked for. */
    gw->next_watchdog = T0 + 100;
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), 500);
    gw->watchdog_ms = 2000;
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), 100);
}

static void test_start_keeps_the_short_wait(void **state)
{
    struct gateway *gw = *state;
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), IDLE);
    gw->ready = false;
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), BUSY);
    /* A timer sooner than the short wait still wins. */
    gw->next_states = T0 + 40;
    assert_int_equal(gateway_wait_ms(gw, IDLE, BUSY, T0), 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_loop_sleeps_the_idle_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_timer_shortens_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_keeps_the_short_wait, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
