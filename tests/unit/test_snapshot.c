/*
 * Unit tests for gateway/snapshot.c on the integration tests' small site: the
 * live state shows each detector as the engine sees it ("unknown" before its
 * first answer, fire alarm with latch and counts after), devices follow their
 * device_down events by id, and a new picture is due at once for a state
 * change but only every SNAPSHOT_VALUES_MS for changed readings alone, never
 * more often than every SNAPSHOT_CHECK_MS. Pollers and uplinks are absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gateway.h"
#include "snapshot.h"
#include "util.h"

#define SITE "tests/integration/site-small.conf"
#define T0 100000

struct fixture {
    struct gateway gw;
    struct snapshot *s;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    char err[4096];
    f->gw.cfg = cfg_load(SITE, err, sizeof(err));
    if (!f->gw.cfg)
        fail_msg("%s", err);
    struct ev_time t = {T0, 1767225600000LL};
    f->gw.engine = engine_new(f->gw.cfg, t);
    f->gw.answered = xcalloc(f->gw.cfg->ndetectors, sizeof(bool));
    f->gw.bus_up = xcalloc(f->gw.cfg->nbuses, sizeof(bool));
    f->gw.started_wall = t.wall_ms;
    f->s = snapshot_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    snapshot_free(f->s);
    engine_free(f->gw.engine);
    free(f->gw.answered);
    free(f->gw.bus_up);
    cfg_free(f->gw.cfg);
    free(f);
    return 0;
}

/* T-S1 (smoke, device tcp1/1) reads value at time t. */
static void smoke(struct fixture *f, double value, int64_t t)
{
    const struct cfg *cfg = f->gw.cfg;
    long d = cfg_find_detector(cfg, "T-S1");
    assert_true(d >= 0);
    struct reading r = {.detector = (size_t)d, .has_value = true, .value_ok = true, .value = value};
    struct device_sample s = {.device = cfg->detectors[d].device,
                              .t = {t, 1767225600000LL + t - T0},
                              .nreadings = 1,
                              .readings = &r};
    struct evlist out = {0};
    engine_sample(f->gw.engine, &s, &out);
    for (size_t i = 0; i < out.count; i++)
        f->gw.last_seq++;
    evlist_free(&out);
    f->gw.answered[d] = true;
}

static cJSON *picture(struct fixture *f, int64_t t)
{
    struct ev_time now = {t, 1767225600000LL + t - T0};
    char *text = snapshot_json(f->s, &f->gw, now);
    assert_non_null(text);
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    free(text);
    return o;
}

static const cJSON *find(const cJSON *root, const char *list, const char *id)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(root, list))
    {
        if (strcmp(cJSON_GetObjectItem(item, "id")->valuestring, id) == 0)
            return item;
    }
    fail_msg("no %s \"%s\" in the picture", list, id);
    return NULL;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static void test_picture_follows_the_engine(void **state)
{
    struct fixture *f = *state;
    cJSON *o = picture(f, T0);
    assert_string_equal(str(cJSON_GetObjectItem(o, "building"), "id"), "it-building");
    const cJSON *ts1 = find(o, "detectors", "T-S1");
    assert_string_equal(str(ts1, "state"), "unknown");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(ts1, "value")));
    assert_string_equal(str(ts1, "zone"), "Z1");
    assert_string_equal(str(ts1, "unit"), "%/m");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "buses")), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "uplinks")), 1);
    cJSON_Delete(o);

    smoke(f, 0.2, T0 + 100);
    smoke(f, 3.0, T0 + 200);
    o = picture(f, T0 + 300);
    ts1 = find(o, "detectors", "T-S1");
    assert_string_equal(str(ts1, "state"), "fire_alarm");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ts1, "latched")));
    assert_true(cJSON_GetObjectItem(ts1, "value")->valuedouble > 2.9);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(ts1, "since")));
    const cJSON *z1 = find(o, "zones", "Z1");
    assert_string_equal(str(z1, "state"), "fire_alarm");
    assert_int_equal(cJSON_GetObjectItem(z1, "fire_alarm")->valueint, 1);
    const cJSON *b = cJSON_GetObjectItem(o, "building");
    assert_string_equal(str(b, "state"), "fire_alarm");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "counts"), "fire_alarm")->valueint,
                     1);
    assert_int_equal(cJSON_GetObjectItem(o, "seq")->valueint, (int)f->gw.last_seq);
    cJSON_Delete(o);
}

static void test_devices_follow_their_events(void **state)
{
    struct fixture *f = *state;
    const struct cfg *cfg = f->gw.cfg;
    smoke(f, 0.2, T0 + 100);
    long dev = cfg_find_device(cfg, "tcp1/1");
    assert_true(dev >= 0);
    cJSON *o = picture(f, T0 + 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(find(o, "devices", "tcp1/1"), "up")));
    /* tcp1/2 never answered: not up. */
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(find(o, "devices", "tcp1/2"), "up")));
    cJSON_Delete(o);
    struct event ev = {.kind = EV_FAULT, .fault = FAULT_DEVICE_DOWN, .device = dev, .detector = -1};
    snapshot_observe(f->s, cfg, &ev);
    o = picture(f, T0 + 300);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(find(o, "devices", "tcp1/1"), "up")));
    cJSON_Delete(o);
    ev.kind = EV_FAULT_RESTORE;
    snapshot_observe(f->s, cfg, &ev);
    o = picture(f, T0 + 400);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(find(o, "devices", "tcp1/1"), "up")));
    cJSON_Delete(o);
}

static void test_due_on_change_values_rate_limited(void **state)
{
    struct fixture *f = *state;
    assert_true(snapshot_due(f->s, &f->gw, T0, true)); /* nothing made yet */
    smoke(f, 0.2, T0);
    free(snapshot_json(f->s, &f->gw, (struct ev_time){T0, 1}));
    assert_false(snapshot_due(f->s, &f->gw, T0 + SNAPSHOT_CHECK_MS, true));

    /* A reading alone: not before SNAPSHOT_VALUES_MS after the last picture. */
    smoke(f, 0.3, T0 + 300);
    assert_false(snapshot_due(f->s, &f->gw, T0 + 2 * SNAPSHOT_CHECK_MS, true));
    assert_false(snapshot_due(f->s, &f->gw, T0 + SNAPSHOT_VALUES_MS - 1, true));
    int64_t t = T0 + SNAPSHOT_VALUES_MS - 1 + SNAPSHOT_CHECK_MS;
    assert_true(snapshot_due(f->s, &f->gw, t, true));
    free(snapshot_json(f->s, &f->gw, (struct ev_time){t, 1}));

    /* A state change: at the next check, not sooner. */
    smoke(f, 3.0, t + 10);
    assert_false(snapshot_due(f->s, &f->gw, t + SNAPSHOT_CHECK_MS - 1, true));
    assert_true(snapshot_due(f->s, &f->gw, t + SNAPSHOT_CHECK_MS, true));
    free(snapshot_json(f->s, &f->gw, (struct ev_time){t + SNAPSHOT_CHECK_MS, 1}));
    assert_false(snapshot_due(f->s, &f->gw, t + 2 * SNAPSHOT_CHECK_MS, true));

    /* Readings alone are not worth a picture while nobody looks; changes still are. */
    smoke(f, 0.4, t + 3 * SNAPSHOT_CHECK_MS);
    assert_false(snapshot_due(f->s, &f->gw, t + SNAPSHOT_VALUES_MS * 3, false));
    assert_true(snapshot_due(f->s, &f->gw, t + SNAPSHOT_VALUES_MS * 3 + SNAPSHOT_CHECK_MS, true));
    free(snapshot_json(f->s, &f->gw, (struct ev_time){t + SNAPSHOT_VALUES_MS * 3, 1}));
    t += SNAPSHOT_VALUES_MS * 3;

    /* A bus coming up is a change too. */
    f->gw.bus_up[0] = true;
    assert_true(snapshot_due(f->s, &f->gw, t + 3 * SNAPSHOT_CHECK_MS, true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_picture_follows_the_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices_follow_their_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_on_change_values_rate_limited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
