/*
 * Unit tests for the MQTT payloads: each message is parsed back with cJSON and
 * its fields checked (ids, names, null versus object, real/test, millisecond
 * UTC timestamps, exact large integers, escaping, Vietnamese text kept as
 * UTF-8, broken UTF-8 repaired, NaN and infinity sent as null). When
 * FIREGW_PAYLOAD_OUT names a directory, every payload built here is also
 * written there as <schema>-<label>.json so tests/check_schemas.py can
 * validate the real output against docs/schema/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <math.h>

#include "cfg.h"
#include "engine.h"
#include "event.h"
#include "payload.h"

/* 2026-11-23T05:04:03.123Z */
#define T_WALL 1795410243123LL
#define T_WALL_TEXT "2026-11-23T05:04:03.123Z"
#define UUID "3f2b8c1e-6a4d-4e2f-9b1a-0c5d7e8f9a10"

static struct cfg_bus buses[] = {
    {.id = "tcp1", .type = BUS_TCP, .host = "127.0.0.1", .port = 502},
    {.id = "rs485-a", .type = BUS_RTU, .device = "/dev/ttyUSB0", .baud = 9600},
};
static struct cfg_device devices[] = {
    {.id = "smoke-1", .bus = 0, .unit = 1},
    {.id = "rs485-a/3", .bus = 1, .unit = 3},
    {.id = "panel", .bus = 0, .unit = 247},
};
static struct cfg_zone zones[] = {
    {.id = "Z1", .name = "Tầng 1 – sảnh", .floor = 1},
    {.id = "Z2", .name = "Hầm \"B1\"", .floor = -1},
};
static struct cfg_detector detectors[] = {
    {.id = "T-S1",
     .device = 0,
     .channel = 1,
     .zone = 0,
     .floor = 1,
     .location = "Hành lang phía Bắc",
     .type = DET_SMOKE},
    {.id = "R-H1",
     .device = 1,
     .channel = 1,
     .zone = 1,
     .floor = -1,
     .location = "Bếp\tnhà ăn\n(cửa \\ sau)",
     .type = DET_HEAT},
    {.id = "P-Z1",
     .device = 2,
     .channel = 1,
     .zone = 0,
     .floor = 1,
     .location = NULL,
     .type = DET_PANEL_ZONE},
};

static struct cfg make_cfg(void)
{
    struct cfg c = {0};
    c.site.id = "tayho-01";
    c.site.name = "Chung cư Tây Hồ";
    c.site.address = "12 Đường \"Lạc Long Quân\", Quận Tây Hồ";
    c.site.district = "Tây Hồ";
    c.site.latitude = 21.0678;
    c.site.longitude = 105.8183;
    c.buses = buses;
    c.nbuses = 2;
    c.devices = devices;
    c.ndevices = 3;
    c.zones = zones;
    c.nzones = 2;
    c.detectors = detectors;
    c.ndetectors = 3;
    return c;
}

static struct event detector_event(enum ev_kind kind, long det, uint64_t seq)
{
    struct event ev = {0};
    ev.kind = kind;
    ev.source = SRC_DETECTOR;
    ev.detector = det;
    ev.device = det >= 0 ? (long)detectors[det].device : -1;
    ev.bus = ev.device >= 0 ? (long)devices[ev.device].bus : -1;
    ev.fault = FAULT_NONE;
    ev.rule = "smoke_alarm_level";
    ev.t.wall_ms = T_WALL;
    ev.t.mono_ms = 5000;
    ev.seq = seq;
    strcpy(ev.id, UUID);
    return ev;
}

/* Write text to $FIREGW_PAYLOAD_OUT/<name>.json when the runner asks for it. */
static void save(const char *name, const char *text)
{
    const char *dir = getenv("FIREGW_PAYLOAD_OUT");
    if (!dir || !*dir)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.json", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Parse text (which must be one unformatted line) and save it under name. */
static cJSON *parse_saved(const char *name, const char *text)
{
    assert_non_null(text);
    assert_null(strchr(text, '\n'));
    save(name, text);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static cJSON *get(const cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        fail_msg("member \"%s\" missing", key);
    return v;
}

static const char *get_str(const cJSON *o, const char *key)
{
    cJSON *v = get(o, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static double get_num(const cJSON *o, const char *key)
{
    cJSON *v = get(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static bool get_bool(const cJSON *o, const char *key)
{
    cJSON *v = get(o, key);
    assert_true(cJSON_IsBool(v));
    return cJSON_IsTrue(v);
}

static void assert_null_member(const cJSON *o, const char *key)
{
    assert_true(cJSON_IsNull(get(o, key)));
}

static void test_fire_alarm_event_fields(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = detector_event(EV_FIRE_ALARM, 0, 42);
    ev.has_value = true;
    ev.value = 2.6;
    ev.has_level = true;
    ev.level = 2.0;
    strcpy(ev.detail, "obscuration 2.6 %/m at or above 2.0");
    char *text = payload_event(&c, &ev);
    cJSON *j = parse_saved("event-fire_alarm-smoke", text);

    assert_int_equal((int)get_num(j, "schema"), 1);
    assert_string_equal(get_str(j, "type"), "event");
    assert_string_equal(get_str(j, "event_id"), UUID);
    assert_int_equal((int)get_num(j, "seq"), 42);
    assert_string_equal(get_str(j, "ts"), T_WALL_TEXT);
    assert_string_equal(get_str(j, "building"), "tayho-01");
    assert_string_equal(get_str(j, "kind"), "fire_alarm");
    assert_true(get_bool(j, "real"));
    assert_false(get_bool(j, "test"));
    assert_string_equal(get_str(j, "source"), "detector");
    assert_string_equal(get_str(j, "rule"), "smoke_alarm_level");
    assert_int_equal((int)get_num(j, "priority"), ev_priority(EV_FIRE_ALARM));
    assert_null_member(j, "fault");

    cJSON *det = get(j, "detector");
    assert_true(cJSON_IsObject(det));
    assert_string_equal(get_str(det, "id"), "T-S1");
    assert_string_equal(get_str(det, "type"), "smoke");
    assert_int_equal((int)get_num(det, "floor"), 1);
    assert_string_equal(get_str(det, "location"), "Hành lang phía Bắc");
    cJSON *zone = get(det, "zone");
    assert_string_equal(get_str(zone, "id"), "Z1");
    assert_string_equal(get_str(zone, "name"), "Tầng 1 – sảnh");

    cJSON *dev = get(j, "device");
    assert_string_equal(get_str(dev, "id"), "smoke-1");
    assert_int_equal((int)get_num(dev, "unit"), 1);
    assert_string_equal(get_str(get(j, "bus"), "id"), "tcp1");

    cJSON *value = get(j, "value");
    assert_float_equal(get_num(value, "value"), 2.6, 1e-12);
    assert_string_equal(get_str(value, "unit"), "%/m");
    cJSON *level = get(j, "level");
    assert_float_equal(get_num(level, "value"), 2.0, 1e-12);
    assert_string_equal(get_str(level, "unit"), "%/m");
    assert_string_equal(get_str(j, "detail"), "obscuration 2.6 %/m at or above 2.0");
    /* the reading is printed as written, not as 2.6000000000000001 */
    assert_non_null(strstr(text, "\"value\":2.6,"));
    cJSON_Delete(j);
    free(text);
}

/* Zone processes and operator commands name their zone and operator; others send null. */
static void test_zone_and_user(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = detector_event(EV_ACKNOWLEDGED, -1, 30);
    ev.source = SRC_ZONE;
    ev.rule = "operator_acknowledge";
    ev.has_zone = true;
    ev.zone = 1;
    strcpy(ev.user, "nguyen.van.an");
    char *text = payload_event(&c, &ev);
    cJSON *j = parse_saved("event-acknowledged-zone-user", text);
    assert_string_equal(get_str(j, "source"), "zone");
    assert_string_equal(get_str(get(j, "zone"), "id"), c.zones[1].id);
    assert_string_equal(get_str(j, "user"), "nguyen.van.an");
    assert_null_member(j, "detector");
    cJSON_Delete(j);
    free(text);

    ev = detector_event(EV_FIRE_CONFIRMED, 0, 31);
    ev.source = SRC_ZONE;
    ev.has_zone = true;
    ev.zone = detectors[0].zone;
    text = payload_event(&c, &ev);
    j = parse_saved("event-fire_confirmed-zone", text);
    assert_int_equal((int)get_num(j, "priority"), 0);
    assert_string_equal(get_str(get(j, "zone"), "id"), c.zones[detectors[0].zone].id);
    assert_null_member(j, "user");
    cJSON_Delete(j);
    free(text);

    ev = detector_event(EV_RESET, -1, 32);
    ev.source = SRC_BUILDING;
    text = payload_event(&c, &ev);
    j = parse_saved("event-reset-building", text);
    assert_string_equal(get_str(j, "source"), "building");
    assert_null_member(j, "zone");
    assert_null_member(j, "user");
    cJSON_Delete(j);
    free(text);
}

static void test_test_event_is_not_real(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = detector_event(EV_FIRE_ALARM, 1, 7);
    ev.test = true;
    ev.rule = "heat_alarm_level";
    ev.has_value = true;
    ev.value = 71.5;
    ev.has_level = true;
    ev.level = 58;
    char *text = payload_event(&c, &ev);
    cJSON *j = parse_saved("event-fire_alarm-heat-test", text);
    assert_false(get_bool(j, "real"));
    assert_true(get_bool(j, "test"));
    assert_string_equal(get_str(get(j, "detector"), "type"), "heat");
    assert_string_equal(get_str(get(j, "value"), "unit"), "degC");
    assert_float_equal(get_num(get(j, "value"), "value"), 71.5, 1e-12);
    assert_int_equal((int)get_num(get(j, "detector"), "floor"), -1);
    assert_string_equal(get_str(get(get(j, "detector"), "zone"), "name"), "Hầm \"B1\"");
    cJSON_Delete(j);
    free(text);
}

static void test_every_kind_and_source(void **state)
{
    (void)state;
    static const char *kinds[EV__COUNT] = {
        [EV_FIRE_ALARM] = "fire_alarm",
        [EV_PRE_ALARM] = "pre_alarm",
        [EV_FAULT] = "fault",
        [EV_RESTORE] = "restore",
        [EV_FAULT_RESTORE] = "fault_restore",
        [EV_DISABLED] = "disabled",
        [EV_ENABLED] = "enabled",
        [EV_GATEWAY_START] = "gateway_start",
        [EV_FIRE_CONFIRMED] = "fire_confirmed",
        [EV_ALARM_PENDING] = "alarm_pending",
        [EV_ACKNOWLEDGED] = "acknowledged",
        [EV_SILENCED] = "silenced",
        [EV_RESET] = "reset",
        [EV_TEST_ALARM] = "test_alarm",
        [EV_TEST_MODE_ON] = "test_mode_on",
        [EV_TEST_MODE_OFF] = "test_mode_off",
    };
    static const struct {
        enum ev_source src;
        const char *name;
        long det, dev, bus;
        enum fault_code fault;
    } sources[] = {
        {SRC_DETECTOR, "detector", 0, 0, 0, FAULT_NO_RESPONSE},
        {SRC_DEVICE, "device", -1, 1, 1, FAULT_DEVICE_DOWN},
        {SRC_BUS, "bus", -1, -1, 0, FAULT_BUS_DOWN},
        {SRC_GATEWAY, "gateway", -1, -1, -1, FAULT_NONE},
    };
    struct cfg c = make_cfg();
    for (int k = 0; k < EV__COUNT; k++) {
        for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
            bool faulty = k == EV_FAULT || k == EV_FAULT_RESTORE;
            /* no gateway fault has a code yet, and a fault event always names one */
            if (faulty && sources[s].fault == FAULT_NONE)
                continue;
            struct event ev = detector_event((enum ev_kind)k, sources[s].det, 100 + k);
            ev.source = sources[s].src;
            ev.device = sources[s].dev;
            ev.bus = sources[s].bus;
            ev.fault = faulty ? sources[s].fault : FAULT_NONE;
            ev.rule = "test_rule";
            ev.test = k == EV_TEST_ALARM;
            /* half of them carry a reading, so both shapes reach the schema check */
            if (sources[s].det >= 0 && (k % 2 == 0)) {
                ev.has_value = true;
                ev.value = 0.25 * k;
            }
            char name[96];
            snprintf(name, sizeof(name), "event-%s-%s", kinds[k], sources[s].name);
            char *text = payload_event(&c, &ev);
            cJSON *j = parse_saved(name, text);
            assert_string_equal(get_str(j, "kind"), kinds[k]);
            assert_string_equal(get_str(j, "source"), sources[s].name);
            assert_int_equal((int)get_num(j, "priority"), ev_priority((enum ev_kind)k));
            assert_int_equal(cJSON_IsObject(get(j, "detector")), sources[s].det >= 0);
            assert_int_equal(cJSON_IsObject(get(j, "device")), sources[s].dev >= 0);
            assert_int_equal(cJSON_IsObject(get(j, "bus")), sources[s].bus >= 0);
            assert_int_equal(cJSON_IsObject(get(j, "value")), ev.has_value);
            if (ev.fault != FAULT_NONE)
                assert_string_equal(get_str(j, "fault"), fault_code_name(ev.fault));
            else
                assert_null_member(j, "fault");
            cJSON_Delete(j);
            free(text);
        }
    }
}

static void test_fault_names_are_the_public_ones(void **state)
{
    (void)state;
    static const struct {
        enum fault_code f;
        const char *name;
    } want[] = {
        {FAULT_NO_RESPONSE, "no_response"},     {FAULT_DETECTOR_BIT, "detector_bit"},
        {FAULT_MAINTENANCE, "maintenance"},     {FAULT_IMPLAUSIBLE, "implausible_value"},
        {FAULT_LIFECHECK, "lifecheck_stopped"}, {FAULT_DEVICE_DOWN, "device_down"},
        {FAULT_BUS_DOWN, "bus_down"},
    };
    struct cfg c = make_cfg();
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct event ev = detector_event(EV_FAULT, 2, 300 + i);
        ev.fault = want[i].f;
        char name[64];
        snprintf(name, sizeof(name), "event-fault-%s", want[i].name);
        char *text = payload_event(&c, &ev);
        cJSON *j = parse_saved(name, text);
        assert_string_equal(get_str(j, "fault"), want[i].name);
        cJSON_Delete(j);
        free(text);
    }
}

static void test_escaping_and_utf8(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = detector_event(EV_FAULT, 1, 9);
    ev.fault = FAULT_DETECTOR_BIT;
    const char *detail = "lỗi \"đầu báo\" C:\\dev\\ttyUSB0\nline 2\ttab \x01 end";
    strcpy(ev.detail, detail);
    char *text = payload_event(&c, &ev);
    cJSON *j = parse_saved("event-fault-escaping", text);
    assert_string_equal(get_str(j, "detail"), detail);
    assert_string_equal(get_str(get(j, "detector"), "location"), "Bếp\tnhà ăn\n(cửa \\ sau)");
    /* Vietnamese goes out as UTF-8, not as \u escapes; controls are escaped */
    assert_non_null(strstr(text, "lỗi \\\"đầu báo\\\""));
    assert_non_null(strstr(text, "\\n"));
    assert_non_null(strstr(text, "\\u0001"));
    assert_null(strchr(text, '\t'));
    cJSON_Delete(j);
    free(text);
}

static void test_broken_utf8_is_repaired(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = detector_event(EV_FAULT, -1, 10);
    ev.source = SRC_BUS;
    ev.bus = 1;
    ev.fault = FAULT_BUS_DOWN;
    /* a detail cut inside "ệ" (E1 BB 87), then a stray continuation byte and an overlong NUL */
    strcpy(ev.detail, "Nhi\xE1\xBB");
    char *text = payload_event(&c, &ev);
    cJSON *j = parse_saved("event-fault-broken-utf8", text);
    assert_string_equal(get_str(j, "detail"), "Nhi\xEF\xBF\xBD\xEF\xBF\xBD");
    cJSON_Delete(j);
    free(text);

    strcpy(ev.detail, "a\x80"
                      "b\xC0\x80"
                      "c\xED\xA0\x80"
                      "d ệ");
    text = payload_event(&c, &ev);
    j = parse_saved("event-fault-broken-utf8-2", text);
    assert_string_equal(get_str(j, "detail"), "a\xEF\xBF\xBD"
                                              "b\xEF\xBF\xBD\xEF\xBF\xBD"
                                              "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                                              "d ệ");
    cJSON_Delete(j);
    free(text);

    /* a detail filling the whole array without a terminator is cut, not overrun */
    memset(ev.detail, 'x', sizeof(ev.detail));
    text = payload_event(&c, &ev);
    j = parse_saved("event-fault-full-detail", text);
    assert_int_equal(strlen(get_str(j, "detail")), sizeof(ev.detail));
    cJSON_Delete(j);
    free(text);
}

static void test_non_finite_numbers_become_null(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = detector_event(EV_PRE_ALARM, 0, 11);
    ev.has_value = true;
    ev.value = NAN;
    ev.has_level = true;
    ev.level = INFINITY;
    char *text = payload_event(&c, &ev);
    cJSON *j = parse_saved("event-pre_alarm-nan", text);
    assert_null_member(j, "value");
    assert_null_member(j, "level");
    assert_null(strstr(text, "nan"));
    assert_null(strstr(text, "inf"));
    cJSON_Delete(j);
    free(text);

    c.site.latitude = NAN;
    c.site.longitude = -INFINITY;
    text = payload_status(&c, true, T_WALL, T_WALL);
    j = parse_saved("status-nan-position", text);
    assert_null_member(get(j, "building"), "lat");
    assert_null_member(get(j, "building"), "lon");
    cJSON_Delete(j);
    free(text);
}

static void test_value_without_unit_and_bad_indices(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    /* a panel zone has no unit: a reading there cannot be stated, so it is null */
    struct event ev = detector_event(EV_FIRE_ALARM, 2, 12);
    ev.has_value = true;
    ev.value = 1;
    char *text = payload_event(&c, &ev);
    cJSON *j = parse_saved("event-fire_alarm-panel-zone", text);
    assert_null_member(j, "value");
    assert_string_equal(get_str(get(j, "detector"), "type"), "panel_zone");
    assert_string_equal(get_str(get(j, "detector"), "location"), "");
    cJSON_Delete(j);
    free(text);

    /* indices outside the configuration give null, never a read out of bounds */
    ev = detector_event(EV_FAULT, -1, 13);
    ev.detector = 3;
    ev.device = 99;
    ev.bus = -7;
    ev.fault = FAULT_NO_RESPONSE;
    ev.rule = NULL;
    text = payload_event(&c, &ev);
    j = parse_saved("event-fault-bad-indices", text);
    assert_null_member(j, "detector");
    assert_null_member(j, "device");
    assert_null_member(j, "bus");
    assert_string_equal(get_str(j, "rule"), "");
    cJSON_Delete(j);
    free(text);
}

static void test_large_integers_are_exact(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = detector_event(EV_GATEWAY_START, -1, 9007199254740993ULL);
    ev.source = SRC_GATEWAY;
    char *text = payload_event(&c, &ev);
    cJSON *j = parse_saved("event-gateway_start-big-seq", text);
    assert_non_null(strstr(text, "\"seq\":9007199254740993,"));
    cJSON_Delete(j);
    free(text);

    struct heartbeat_info hb = {.wall_ms = T_WALL, .last_seq = 18446744073709551615ULL};
    text = payload_heartbeat(&c, &hb);
    j = parse_saved("heartbeat-max-seq", text);
    assert_non_null(strstr(text, "\"last_seq\":18446744073709551615,"));
    cJSON_Delete(j);
    free(text);
}

static void test_timestamps_have_milliseconds(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    static const struct {
        int64_t wall;
        const char *text;
    } cases[] = {
        {T_WALL, T_WALL_TEXT},
        {1795410243000LL, "2026-11-23T05:04:03.000Z"},
        {1795410243007LL, "2026-11-23T05:04:03.007Z"},
        {0, "1970-01-01T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct event ev = detector_event(EV_RESTORE, 0, 20 + i);
        ev.t.wall_ms = cases[i].wall;
        char *text = payload_event(&c, &ev);
        cJSON *j = cJSON_Parse(text);
        assert_non_null(j);
        assert_string_equal(get_str(j, "ts"), cases[i].text);
        cJSON_Delete(j);
        free(text);
    }
}

static void test_detector_state(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct det_status st = {.level = LEVEL_NORMAL, .has_value = true, .value = 0.12};
    char *text = payload_detector_state(&c, 0, &st, T_WALL);
    cJSON *j = parse_saved("detector_state-normal", text);
    assert_int_equal((int)get_num(j, "schema"), 1);
    assert_string_equal(get_str(j, "type"), "detector_state");
    assert_string_equal(get_str(j, "ts"), T_WALL_TEXT);
    assert_string_equal(get_str(j, "building"), "tayho-01");
    assert_string_equal(get_str(get(j, "detector"), "id"), "T-S1");
    assert_string_equal(get_str(j, "state"), "normal");
    assert_string_equal(get_str(j, "level"), "normal");
    assert_true(cJSON_IsArray(get(j, "faults")));
    assert_int_equal(cJSON_GetArraySize(get(j, "faults")), 0);
    assert_false(get_bool(j, "disabled"));
    assert_float_equal(get_num(get(j, "value"), "value"), 0.12, 1e-12);
    assert_string_equal(get_str(get(j, "value"), "unit"), "%/m");
    cJSON_Delete(j);
    free(text);

    st = (struct det_status){.level = LEVEL_NORMAL,
                             .faults = (1u << FAULT_NO_RESPONSE) | (1u << FAULT_MAINTENANCE)};
    text = payload_detector_state(&c, 1, &st, T_WALL);
    j = parse_saved("detector_state-fault", text);
    assert_string_equal(get_str(j, "state"), "fault");
    cJSON *faults = get(j, "faults");
    assert_int_equal(cJSON_GetArraySize(faults), 2);
    assert_string_equal(cJSON_GetArrayItem(faults, 0)->valuestring, "no_response");
    assert_string_equal(cJSON_GetArrayItem(faults, 1)->valuestring, "maintenance");
    assert_null_member(j, "value");
    cJSON_Delete(j);
    free(text);

    st = (struct det_status){.level = LEVEL_FIRE_ALARM, .has_value = true, .value = 71.5};
    text = payload_detector_state(&c, 1, &st, T_WALL);
    j = parse_saved("detector_state-fire_alarm", text);
    assert_string_equal(get_str(j, "state"), "fire_alarm");
    assert_string_equal(get_str(j, "level"), "fire_alarm");
    assert_string_equal(get_str(get(j, "value"), "unit"), "degC");
    cJSON_Delete(j);
    free(text);

    st = (struct det_status){.level = LEVEL_NORMAL, .disabled = true};
    text = payload_detector_state(&c, 2, &st, T_WALL);
    j = parse_saved("detector_state-disabled", text);
    assert_string_equal(get_str(j, "state"), "disabled");
    assert_true(get_bool(j, "disabled"));
    cJSON_Delete(j);
    free(text);

    st = (struct det_status){.level = LEVEL_PRE_ALARM, .has_value = true, .value = NAN};
    text = payload_detector_state(&c, 0, &st, T_WALL);
    j = parse_saved("detector_state-pre_alarm-nan", text);
    assert_string_equal(get_str(j, "level"), "pre_alarm");
    assert_null_member(j, "value");
    cJSON_Delete(j);
    free(text);

    assert_null(payload_detector_state(&c, 3, &st, T_WALL));
    assert_null(payload_detector_state(&c, 0, NULL, T_WALL));
}

static void test_status(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    char *text = payload_status(&c, true, T_WALL, T_WALL - 3600000);
    cJSON *j = parse_saved("status-online", text);
    assert_string_equal(get_str(j, "type"), "status");
    assert_string_equal(get_str(j, "state"), "online");
    assert_string_equal(get_str(j, "ts"), T_WALL_TEXT);
    assert_string_equal(get_str(j, "started"), "2026-11-23T04:04:03.123Z");
    assert_string_equal(get_str(j, "version"), FIREGW_VERSION);
    cJSON *b = get(j, "building");
    assert_string_equal(get_str(b, "id"), "tayho-01");
    assert_string_equal(get_str(b, "name"), "Chung cư Tây Hồ");
    assert_string_equal(get_str(b, "address"), "12 Đường \"Lạc Long Quân\", Quận Tây Hồ");
    assert_string_equal(get_str(b, "district"), "Tây Hồ");
    assert_float_equal(get_num(b, "lat"), 21.0678, 1e-9);
    assert_float_equal(get_num(b, "lon"), 105.8183, 1e-9);
    cJSON_Delete(j);
    free(text);

    c.site.address = NULL;
    c.site.district = NULL;
    text = payload_status(&c, false, T_WALL, T_WALL);
    j = parse_saved("status-offline", text);
    assert_string_equal(get_str(j, "state"), "offline");
    assert_null_member(get(j, "building"), "address");
    assert_null_member(get(j, "building"), "district");
    cJSON_Delete(j);
    free(text);
}

static void test_heartbeat(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct heartbeat_info hb = {
        .wall_ms = T_WALL,
        .uptime_ms = 3723999,
        .last_seq = 512,
        .detectors_total = 3,
        .in_fire_alarm = 1,
        .in_pre_alarm = 0,
        .in_fault = 2,
        .buses_total = 2,
        .buses_up = 1,
        .interval_ms = 1500,
    };
    char *text = payload_heartbeat(&c, &hb);
    cJSON *j = parse_saved("heartbeat-normal", text);
    assert_string_equal(get_str(j, "type"), "heartbeat");
    assert_string_equal(get_str(j, "ts"), T_WALL_TEXT);
    assert_string_equal(get_str(j, "building"), "tayho-01");
    assert_int_equal((int)get_num(j, "uptime_s"), 3723);
    assert_int_equal((int)get_num(j, "last_seq"), 512);
    cJSON *d = get(j, "detectors");
    assert_int_equal((int)get_num(d, "total"), 3);
    assert_int_equal((int)get_num(d, "fire_alarm"), 1);
    assert_int_equal((int)get_num(d, "pre_alarm"), 0);
    assert_int_equal((int)get_num(d, "fault"), 2);
    cJSON *b = get(j, "buses");
    assert_int_equal((int)get_num(b, "total"), 2);
    assert_int_equal((int)get_num(b, "up"), 1);
    assert_float_equal(get_num(j, "interval_s"), 1.5, 1e-12);
    cJSON_Delete(j);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fire_alarm_event_fields),
        cmocka_unit_test(test_zone_and_user),
        cmocka_unit_test(test_test_event_is_not_real),
        cmocka_unit_test(test_every_kind_and_source),
        cmocka_unit_test(test_fault_names_are_the_public_ones),
        cmocka_unit_test(test_escaping_and_utf8),
        cmocka_unit_test(test_broken_utf8_is_repaired),
        cmocka_unit_test(test_non_finite_numbers_become_null),
        cmocka_unit_test(test_value_without_unit_and_bad_indices),
        cmocka_unit_test(test_large_integers_are_exact),
        cmocka_unit_test(test_timestamps_have_milliseconds),
        cmocka_unit_test(test_detector_state),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_heartbeat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
