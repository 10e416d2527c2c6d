/*
 * Unit tests for gateway/webreq.c: request bodies are refused unless they are
 * exactly one JSON object of known, typed, unrepeated fields in valid UTF-8,
 * each refusal naming the field; actions become the operator command they
 * stand for, and nothing in a body can add a word to that command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util.h"
#include "webreq.h"

static int action(const char *body, struct webreq_action *a, struct webreq_error *e)
{
    return webreq_action(body, strlen(body), a, e);
}

static void expect_refused(const char *body, const char *field, const char *words)
{
    struct webreq_action a;
    struct webreq_error e;
    if (action(body, &a, &e) == 0)
        fail_msg("accepted %s as \"%s\"", body, a.line);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.field, field);
    if (!strstr(e.message, words))
        fail_msg("message for %s: \"%s\" lacks \"%s\"", body, e.message, words);
}

static void test_actions_become_commands(void **state)
{
    (void)state;
    struct webreq_action a;
    struct webreq_error e;
    assert_int_equal(action("{\"action\":\"acknowledge\",\"scope\":\"all\"}", &a, &e), 0);
    assert_string_equal(a.line, "acknowledge all");
    assert_int_equal(a.need, WEB_MANAGER);
    assert_string_equal(a.scope, "all");
    assert_string_equal(a.id, "");
    assert_int_equal(action(" {\"scope\":\"zone\",\"id\":\"F3\",\"action\":\"reset\"}\n", &a, &e),
                     0);
    assert_string_equal(a.line, "reset zone F3");
    assert_int_equal(
        action("{\"action\":\"disable\",\"scope\":\"detector\",\"id\":\"F3-LIFT\",\"duration\":"
               "\"2h\"}",
               &a, &e),
        0);
    assert_string_equal(a.line, "disable detector F3-LIFT 2h");
    assert_int_equal(a.need, WEB_INSTALLER);
    assert_int_equal(a.period_ms, 7200000);
    assert_int_equal(
        action("{\"action\":\"test_on\",\"scope\":\"zone\",\"id\":\"Z1\",\"duration\":\"30min\"}",
               &a, &e),
        0);
    assert_string_equal(a.line, "test on zone Z1 30min");
    assert_int_equal(action("{\"action\":\"test_off\",\"scope\":\"zone\",\"id\":\"Z1\"}", &a, &e),
                     0);
    assert_string_equal(a.line, "test off zone Z1");
    assert_int_equal(
        action("{\"action\":\"enable\",\"scope\":\"detector\",\"id\":\"a.b_c-1\"}", &a, &e), 0);
    assert_string_equal(a.line, "enable detector a.b_c-1");
}

static void test_action_values_checked(void **state)
{
    (void)state;
    expect_refused("{\"action\":\"launch\",\"scope\":\"all\"}", "action", "not one of");
    expect_refused("{\"action\":\"reset\",\"scope\":\"floor\"}", "scope", "not one of");
    expect_refused("{\"action\":\"disable\",\"scope\":\"all\",\"duration\":\"1h\"}", "scope",
                   "zone or detector");
    expect_refused("{\"action\":\"reset\",\"scope\":\"all\",\"id\":\"F3\"}", "id", "not used");
    expect_refused("{\"action\":\"reset\",\"scope\":\"zone\"}", "id", "missing");
    expect_refused("{\"action\":\"disable\",\"scope\":\"zone\",\"id\":\"F3\"}", "duration",
                   "needs a duration");
    expect_refused("{\"action\":\"reset\",\"scope\":\"zone\",\"id\":\"F3\",\"duration\":\"1h\"}",
                   "duration", "only used");
    /* Words that would reach the command line. */
    expect_refused("{\"action\":\"reset\",\"scope\":\"zone\",\"id\":\"F3 all\"}", "id",
                   "is not 1-64");
    expect_refused("{\"action\":\"reset\",\"scope\":\"zone\",\"id\":\"F3\\nreset\"}", "id",
                   "is not 1-64");
    expect_refused("{\"action\":\"reset\",\"scope\":\"zone\",\"id\":\"\"}", "id", "is not 1-64");
    expect_refused(
        "{\"action\":\"disable\",\"scope\":\"zone\",\"id\":\"F3\",\"duration\":\"1h zone F4\"}",
        "duration", "not a period");
    expect_refused("{\"action\":\"disable\",\"scope\":\"zone\",\"id\":\"F3\",\"duration\":\"8d\"}",
                   "duration", "not a period");
    expect_refused(
        "{\"action\":\"disable\",\"scope\":\"zone\",\"id\":\"F3\",\"duration\":\"169h\"}",
        "duration", "not a period");
    expect_refused(
        "{\"action\":\"disable\",\"scope\":\"zone\",\"id\":\"F3\",\"duration\":\"1e3s\"}",
        "duration", "not a period");
    expect_refused(
        "{\"action\":\"disable\",\"scope\":\"zone\",\"id\":\"F3\",\"duration\":\"500ms\"}",
        "duration", "not a period");
}

static void test_strict_json(void **state)
{
    (void)state;
    expect_refused("{\"action\":\"reset\",\"scope\":\"all\",\"scpoe\":\"all\"}", "scpoe",
                   "unknown field");
    expect_refused("{\"action\":\"reset\",\"scope\":\"all\",\"action\":\"silence\"}", "action",
                   "twice");
    expect_refused("{\"action\":1,\"scope\":\"all\"}", "action", "must be a string");
    expect_refused("{\"action\":\"reset\",\"scope\":null}", "scope", "must be a string");
    expect_refused("{\"action\":\"reset\"}", "scope", "missing field");
    expect_refused("{\"action\":\"reset\",\"scope\":\"all\"} {}", "", "after the JSON object");
    expect_refused("{\"action\":\"reset\",\"scope\":\"all\"", "", "malformed JSON");
    expect_refused("[{\"action\":\"reset\",\"scope\":\"all\"}]", "", "must be a JSON object");
    expect_refused("", "", "needs a JSON object");
    expect_refused("{\"action\":\"re\xffset\",\"scope\":\"all\"}", "", "not valid UTF-8");

    /* A NUL inside the given length is not text. */
    struct webreq_action a;
    struct webreq_error e;
    const char nul[] = "{\"action\":\"reset\",\"scope\":\"all\"}\0garbage";
    assert_int_equal(webreq_action(nul, sizeof(nul) - 1, &a, &e), -1);
    assert_non_null(strstr(e.message, "UTF-8"));
    /* Without the NUL the same bytes pass: the length, not a terminator, bounds the body. */
    assert_int_equal(webreq_action(nul, strlen(nul), &a, &e), 0);
}

static void test_parse_field_types(void **state)
{
    (void)state;
    static const struct webreq_field f[] = {
        {"bus", WR_STRING, true}, {"from", WR_INT, false}, {"on", WR_BOOL, false}};
    struct webreq_error e;
    const char *ok = "{\"bus\":\"tcp1\",\"from\":3,\"on\":true}";
    cJSON *o = webreq_parse(ok, strlen(ok), f, ARRAY_LEN(f), &e);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "from")->valueint, 3);
    cJSON_Delete(o);
    const char *frac = "{\"bus\":\"tcp1\",\"from\":3.5}";
    assert_null(webreq_parse(frac, strlen(frac), f, ARRAY_LEN(f), &e));
    assert_string_equal(e.field, "from");
    assert_non_null(strstr(e.message, "an integer"));
    const char *big = "{\"bus\":\"tcp1\",\"from\":1e300}";
    assert_null(webreq_parse(big, strlen(big), f, ARRAY_LEN(f), &e));
    assert_string_equal(e.field, "from");
    const char *boolean = "{\"bus\":\"tcp1\",\"on\":\"yes\"}";
    assert_null(webreq_parse(boolean, strlen(boolean), f, ARRAY_LEN(f), &e));
    assert_string_equal(e.field, "on");
    /* Any field names, still no duplicates. */
    const char *any = "{\"zone\":\"F3\",\"floor\":2}";
    o = webreq_parse(any, strlen(any), NULL, 0, &e);
    assert_non_null(o);
    cJSON_Delete(o);
    const char *dup = "{\"zone\":\"F3\",\"zone\":\"F4\"}";
    assert_null(webreq_parse(dup, strlen(dup), NULL, 0, &e));
    assert_string_equal(e.field, "zone");
}

static void test_valid_id(void **state)
{
    (void)state;
    assert_true(webreq_valid_id("F3-01.a_b"));
    assert_false(webreq_valid_id("F3/01"));
    assert_false(webreq_valid_id(""));
    assert_false(webreq_valid_id(NULL));
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    assert_false(webreq_valid_id(long_id));
    long_id[64] = '\0';
    assert_true(webreq_valid_id(long_id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions_become_commands),
        cmocka_unit_test(test_action_values_checked),
        cmocka_unit_test(test_strict_json),
        cmocka_unit_test(test_parse_field_types),
        cmocka_unit_test(test_valid_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
