/*
 * Unit tests for gateway/siteedit.c: each kind of edit gives exactly the
 * expected file text (every other byte, comments included, unchanged), bad
 * requests are refused naming the field, the real loader's errors are pinned
 * to "kind.ID.key" and the line, and saving is atomic: version checked, the
 * previous file kept as .bak, nothing changed and nothing left behind when a
 * write fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "siteedit.h"
#include "util.h"

#define FIXTURE "tests/fixtures/siteedit/site.conf"

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s", path);
    char *buf = xmalloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

/* text with the first occurrence of from replaced by to (which must be there). */
static char *with(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at)
        fail_msg("\"%s\" not in the text", from);
    return xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

/* 1-based number of the first line that starts with prefix. */
static int line_of(const char *text, const char *prefix)
{
    int n = 1;
    for (const char *p = text; *p; n++) {
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            return n;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    fail_msg("no line starts with \"%s\"", prefix);
    return 0;
}

static cJSON *json(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    if (!j)
        fail_msg("bad JSON in the test: %s", s);
    return j;
}

/* Apply an edit given as JSON, expecting success; the new text (caller frees). */
static char *apply_ok(const char *text, enum siteedit_kind kind, enum siteedit_op op,
                      const char *id, const char *body)
{
    cJSON *b = body ? json(body) : NULL;
    struct siteedit_result res = {0};
    char *out = siteedit_apply(text, kind, op, id, b, &res);
    if (!out)
        fail_msg("edit refused (%d): %s", res.status, res.message);
    assert_int_equal(res.status, SITEEDIT_OK);
    cJSON_Delete(b);
    siteedit_result_free(&res);
    return out;
}

/* Apply an edit expecting it refused with status and field; the message is kept in msg. */
static void apply_refused(const char *text, enum siteedit_kind kind, enum siteedit_op op,
                          const char *id, const char *body, enum siteedit_status status,
                          const char *field, const char *msg_part)
{
    cJSON *b = body ? json(body) : NULL;
    struct siteedit_result res = {0};
    char *out = siteedit_apply(text, kind, op, id, b, &res);
    if (out)
        fail_msg("edit accepted, expected status %d:\n%s", status, out);
    assert_int_equal(res.status, status);
    assert_string_equal(res.field, field);
    if (!strstr(res.message, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", res.message, msg_part);
    cJSON_Delete(b);
    siteedit_result_free(&res);
}

static void validate_ok(const char *text)
{
    struct siteedit_result res = {0};
    if (siteedit_validate(text, FIXTURE, &res) != 0)
        fail_msg("does not load: %s", res.message);
    siteedit_result_free(&res);
}

static void test_version(void **state)
{
    (void)state;
    char v[SITEEDIT_VERSION_LEN];
    siteedit_version("abc", v);
    assert_string_equal(v, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    siteedit_version("", v);
    assert_string_equal(v, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_kind_parse(void **state)
{
    (void)state;
    enum siteedit_kind k;
    assert_int_equal(siteedit_kind_parse("device", &k), 0);
    assert_int_equal(k, SITEEDIT_DEVICE);
    assert_int_equal(siteedit_kind_parse("detector", &k), 0);
    assert_int_equal(k, SITEEDIT_DETECTOR);
    assert_int_equal(siteedit_kind_parse("zone", &k), -1);
    assert_int_equal(siteedit_kind_parse(NULL, &k), -1);
}

static void test_entities(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    char err[4096];
    struct cfg *cfg = cfg_load(FIXTURE, err, sizeof(err));
    if (!cfg)
        fail_msg("fixture does not load: %s", err);
    cJSON *j = siteedit_entities(text, cfg);
    char *s = cJSON_PrintUnformatted(j);
    char v[SITEEDIT_VERSION_LEN];
    siteedit_version(text, v);
    char *want = xasprintf(
        "{\"version\":\"%s\","
        "\"buses\":[{\"id\":\"a\",\"type\":\"rtu\",\"device\":\"/dev/ttyS9\",\"baud\":\"9600\"},"
        "{\"id\":\"tcp\",\"type\":\"tcp\",\"host\":\"127.0.0.1\"}],"
        "\"devices\":[{\"id\":\"panel\",\"bus\":\"tcp\",\"unit\":\"100\","
        "\"profile\":\"panel-zone-module\"}],"
        "\"detectors\":[{\"id\":\"D1\",\"bus\":\"a\",\"unit\":\"1\",\"profile\":\"optical-smoke-"
        "485\",\"zone\":\"Z1\",\"location\":\"Hành lang\"},"
        "{\"id\":\"P1\",\"device\":\"panel\",\"channel\":\"1\",\"zone\":\"Z2\"}],"
        "\"zones\":[{\"id\":\"Z1\",\"name\":\"Tầng 1\",\"floor\":\"1\"},"
        "{\"id\":\"Z2\",\"name\":\"Tầng 2\",\"floor\":\"2\"}],"
        "\"profiles\":[\"heat-485\",\"heat-485-float\",\"optical-smoke-485\","
        "\"panel-zone-module\"]}",
        v);
    assert_string_equal(s, want);
    free(want);
    free(s);
    cJSON_Delete(j);
    /* A profile found in two directories is listed once. */
    char *twice = with(text, "profile_dir = ../../../sensors/profiles\n",
                       "profile_dir = ../../../sensors/profiles\nprofile_dir = ../../../sensors/"
                       "profiles\n");
    struct cfg *cfg2 = cfg_load_string(twice, FIXTURE, err, sizeof(err));
    if (!cfg2)
        fail_msg("does not load: %s", err);
    assert_int_equal(cfg2->gateway.nprofile_dirs, 2);
    j = siteedit_entities(twice, cfg2);
    s = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "profiles"));
    assert_string_equal(
        s, "[\"heat-485\",\"heat-485-float\",\"optical-smoke-485\",\"panel-zone-module\"]");
    free(s);
    cJSON_Delete(j);
    cfg_free(cfg2);
    free(twice);
    /* Without a config there are no profile directories to list. */
    j = siteedit_entities(text, NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "profiles")), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "detectors")), 2);
    cJSON_Delete(j);
    cfg_free(cfg);
    free(text);
}

static void test_add_detector(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    char *out = apply_ok(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, NULL,
                         "{\"version\": \"x\", \"location\": \"Sảnh # thang máy\", \"zone\": "
                         "\"Z1\", \"unit\": 2, \"id\": \"D2\", \"bus\": \"a\", \"profile\": "
                         "\"optical-smoke-485\", \"floor\": null, \"prealarm\": 1.25}");
    /* After the last detector's last key; keys in the option table's order; '#' quoted. */
    char *want = with(text, "channel = 1\nzone = Z2\n",
                      "channel = 1\nzone = Z2\n\n[detector D2]\nbus = a\nunit = 2\n"
                      "profile = optical-smoke-485\nzone = Z1\nlocation = \"Sảnh # thang máy\"\n"
                      "prealarm = 1.25\n");
    assert_string_equal(out, want);
    validate_ok(out);
    free(want);
    free(out);
    free(text);
}

static void test_add_bus_and_device(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    char *out = apply_ok(text, SITEEDIT_BUS, SITEEDIT_ADD, "b",
                         "{\"type\": \"tcp\", \"host\": \"10.0.0.7\", \"port\": 1502}");
    /* After the last bus's last key, before the blank line and comment that follow it. */
    char *want = with(text, "host = 127.0.0.1\n\n# The fire",
                      "host = 127.0.0.1\n\n[bus b]\ntype = tcp\nhost = 10.0.0.7\nport = 1502\n"
                      "\n# The fire");
    assert_string_equal(out, want);
    char *out2 = apply_ok(out, SITEEDIT_DEVICE, SITEEDIT_ADD, NULL,
                          "{\"id\": \"m2\", \"bus\": \"b\", \"unit\": 3, \"profile\": "
                          "\"heat-485\", \"fail_after\": \"5\"}");
    char *want2 = with(want, "profile = panel-zone-module\n",
                       "profile = panel-zone-module\n\n[device m2]\nbus = b\nunit = 3\n"
                       "profile = heat-485\nfail_after = 5\n");
    assert_string_equal(out2, want2);
    validate_ok(out2);
    free(want2);
    free(out2);
    free(want);
    free(out);
    free(text);
}

static void test_add_first_of_its_kind(void **state)
{
    (void)state;
    /* No [device] yet: the first one follows the buses; into an empty file, it is the file. */
    const char *text = "[bus a]\ntype = rtu\ndevice = /dev/ttyS1\n[zone Z]\nname = Z\n";
    char *out = apply_ok(text, SITEEDIT_DEVICE, SITEEDIT_ADD, "d",
                         "{\"bus\": \"a\", \"unit\": 1, \"profile\": \"heat-485\"}");
    assert_string_equal(out, "[bus a]\ntype = rtu\ndevice = /dev/ttyS1\n\n[device d]\nbus = a\n"
                             "unit = 1\nprofile = heat-485\n\n[zone Z]\nname = Z\n");
    free(out);
    out = apply_ok("", SITEEDIT_BUS, SITEEDIT_ADD, "a", "{\"type\": \"rtu\"}");
    assert_string_equal(out, "[bus a]\ntype = rtu\n");
    free(out);
}

static void test_replace_keeps_comments(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    /* Only the zone changes: its line keeps its spacing and comment, the rest is untouched. */
    char *out = apply_ok(text, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D1",
                         "{\"id\": \"D1\", \"bus\": \"a\", \"unit\": \"1\", \"profile\": "
                         "\"optical-smoke-485\", \"zone\": \"Z2\", \"location\": \"Hành lang\"}");
    char *want = with(text, "zone = Z1          # first floor", "zone = Z2          # first floor");
    assert_string_equal(out, want);
    validate_ok(out);
    free(want);
    free(out);
    /* The same fields as written: the very same text. */
    out = apply_ok(text, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D1",
                   "{\"bus\": \"a\", \"unit\": 1, \"profile\": \"optical-smoke-485\", "
                   "\"zone\": \"Z1\", \"location\": \"Hành lang\"}");
    assert_string_equal(out, text);
    free(out);
    free(text);
}

static void test_replace_drops_and_adds_keys(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    char *out = apply_ok(text, SITEEDIT_BUS, SITEEDIT_REPLACE, "a",
                         "{\"type\": \"rtu\", \"device\": \"/dev/ttyUSB1\", \"parity\": "
                         "\"even\", \"rs485\": true}");
    char *want = with(text,
                      "[bus a]            # the gateway's own port\ntype = rtu\n"
                      "device = /dev/ttyS9\nbaud   =   9600    # aligned on purpose\n",
                      "[bus a]            # the gateway's own port\ntype = rtu\n"
                      "device = /dev/ttyUSB1\nparity = even\nrs485 = yes\n");
    assert_string_equal(out, want);
    validate_ok(out);
    free(want);
    free(out);
    free(text);
}

static void test_rename(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    char *out = apply_ok(text, SITEEDIT_BUS, SITEEDIT_REPLACE, "a",
                         "{\"id\": \"a2\", \"type\": \"rtu\", \"device\": \"/dev/ttyS9\", "
                         "\"baud\": 9600}");
    char *want = with(text, "[bus a]            #", "[bus a2]            #");
    assert_string_equal(out, want);
    /* D1 still names bus a: the loader's complaint is pinned to D1's bus line. */
    struct siteedit_result res = {0};
    assert_int_equal(siteedit_validate(out, FIXTURE, &res), -1);
    assert_int_equal(res.status, SITEEDIT_INVALID);
    assert_int_equal(res.nerrors, 1);
    assert_string_equal(res.errors[0].field, "detector.D1.bus");
    assert_int_equal(res.errors[0].line, line_of(out, "bus = a\n"));
    assert_int_equal(res.errors[0].line, 36);
    assert_string_equal(res.errors[0].message,
                        "detector \"D1\": bus \"a\" is not a declared [bus]");
    siteedit_result_free(&res);
    free(want);
    free(out);
    apply_refused(text, SITEEDIT_BUS, SITEEDIT_REPLACE, "a",
                  "{\"id\": \"tcp\", \"type\": \"tcp\", \"host\": \"h\"}", SITEEDIT_CONFLICT, "id",
                  "cannot rename bus \"a\" to \"tcp\": that bus exists (line 16)");
    apply_refused(text, SITEEDIT_BUS, SITEEDIT_REPLACE, "a", "{\"id\": \"a]\\n[x\"}",
                  SITEEDIT_BAD_REQUEST, "id", "is not 1-64 of");
    free(text);
}

static void test_remove(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    /* Header to last key go, with one of the two blank lines around it. */
    char *out = apply_ok(text, SITEEDIT_DETECTOR, SITEEDIT_REMOVE, "P1", NULL);
    char *want = with(text, "[detector P1]\ndevice = panel\nchannel = 1\nzone = Z2\n\n", "");
    assert_string_equal(out, want);
    validate_ok(out);
    /* Now nothing uses the panel module, then nothing uses bus tcp. */
    char *out2 = apply_ok(out, SITEEDIT_DEVICE, SITEEDIT_REMOVE, "panel", NULL);
    char *want2 =
        with(want, "[device panel]\nbus = tcp\nunit = 100\nprofile = panel-zone-module\n", "");
    assert_string_equal(out2, want2);
    char *out3 = apply_ok(out2, SITEEDIT_BUS, SITEEDIT_REMOVE, "tcp", NULL);
    char *want3 = with(want2, "[bus tcp]\ntype = tcp\nhost = 127.0.0.1\n\n", "");
    assert_string_equal(out3, want3);
    validate_ok(out3);
    /* A comment inside the section goes with it; the one above the header stays. */
    char *out4 = apply_ok(text, SITEEDIT_DETECTOR, SITEEDIT_REMOVE, "D1", NULL);
    char *want4 = with(text,
                       "[detector D1]\nbus = a\nunit = 1\nprofile = optical-smoke-485\n"
                       "zone = Z1          # first floor\n# a comment inside the section\n"
                       "location = Hành lang\n",
                       "");
    assert_string_equal(out4, want4);
    assert_non_null(strstr(out4, "# Floor 1.\n\n[detector P1]\n"));
    free(want4);
    free(out4);
    free(want3);
    free(out3);
    free(want2);
    free(out2);
    free(want);
    free(out);
    free(text);
}

static void test_remove_in_use_refused(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    apply_refused(text, SITEEDIT_BUS, SITEEDIT_REMOVE, "tcp", NULL, SITEEDIT_CONFLICT, "id",
                  "bus \"tcp\" is still used by device \"panel\" (line 21); move or remove it "
                  "first");
    apply_refused(text, SITEEDIT_BUS, SITEEDIT_REMOVE, "a", NULL, SITEEDIT_CONFLICT, "id",
                  "bus \"a\" is still used by detector \"D1\" (line 35)");
    apply_refused(text, SITEEDIT_DEVICE, SITEEDIT_REMOVE, "panel", NULL, SITEEDIT_CONFLICT, "id",
                  "device \"panel\" is still used by detector \"P1\" (line 43)");
    /* Many users: five named, the rest counted. */
    char *many = xstrdup(text);
    for (int i = 2; i <= 8; i++) {
        char *body = xasprintf("{\"bus\": \"a\", \"unit\": %d, \"profile\": "
                               "\"optical-smoke-485\", \"zone\": \"Z1\"}",
                               i);
        char *id = xasprintf("D%d", i);
        char *next = apply_ok(many, SITEEDIT_DETECTOR, SITEEDIT_ADD, id, body);
        free(many);
        many = next;
        free(id);
        free(body);
    }
    apply_refused(many, SITEEDIT_BUS, SITEEDIT_REMOVE, "a", NULL, SITEEDIT_CONFLICT, "id",
                  "(line 66) and 3 more; move or remove them first");
    free(many);
    free(text);
}

static void test_bad_requests(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, "D9",
                  "{\"zone\": \"Z1\", \"colour\": \"red\"}", SITEEDIT_BAD_REQUEST, "colour",
                  "unknown field \"colour\" for a [detector] section (expected one of: device, "
                  "bus, unit,");
    /* A key of another section is just as unknown here. */
    apply_refused(text, SITEEDIT_BUS, SITEEDIT_REPLACE, "a",
                  "{\"type\": \"rtu\", \"zone\": \"Z1\"}", SITEEDIT_BAD_REQUEST, "zone",
                  "unknown field \"zone\" for a [bus] section");
    /* A line break would smuggle a line of its own into the file. */
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D1",
                  "{\"zone\": \"Z1\\n[uplink evil]\"}", SITEEDIT_BAD_REQUEST, "zone",
                  "field \"zone\": control character 0x0a in the value");
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, "D9", "{\"zone\": {\"a\": 1}}",
                  SITEEDIT_BAD_REQUEST, "zone", "expected a string, a number or true/false");
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, "D9",
                  "{\"zone\": \"Z1\", \"zone\": \"Z2\"}", SITEEDIT_BAD_REQUEST, "zone",
                  "field \"zone\" is given twice");
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, NULL, "{\"zone\": \"Z1\"}",
                  SITEEDIT_BAD_REQUEST, "id", "the detector's id is missing");
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, NULL, "{\"id\": 7}", SITEEDIT_BAD_REQUEST,
                  "id", "field \"id\": expected a string");
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, "D 9", "{}", SITEEDIT_BAD_REQUEST, "id",
                  "id \"D 9\" is not 1-64 of A-Z a-z 0-9 _ - .");
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, "D9", "{\"id\": \"D8\"}",
                  SITEEDIT_BAD_REQUEST, "id", "differs from the new detector's id \"D9\"");
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, "D9", "[1]", SITEEDIT_BAD_REQUEST, "",
                  "the detector's fields must be a JSON object");
    /* Invalid UTF-8 never reaches the file. */
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "location", "bad \xc3\x28 byte");
    struct siteedit_result res = {0};
    assert_null(siteedit_apply(text, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D1", b, &res));
    assert_int_equal(res.status, SITEEDIT_BAD_REQUEST);
    assert_string_equal(res.message, "field \"location\": the value is not valid UTF-8 (byte 5)");
    cJSON_Delete(b);
    free(text);
}

static void test_duplicate_and_missing(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, "D1", "{\"zone\": \"Z1\"}",
                  SITEEDIT_CONFLICT, "id", "detector \"D1\" already exists (line 35)");
    /* Ids are per kind: a device may be called like a bus. */
    char *out = apply_ok(text, SITEEDIT_DEVICE, SITEEDIT_ADD, "a",
                         "{\"bus\": \"a\", \"unit\": 9, \"profile\": \"heat-485\"}");
    free(out);
    apply_refused(text, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D7", "{\"zone\": \"Z1\"}",
                  SITEEDIT_NOT_FOUND, "id", "no [detector D7] section in the site file");
    apply_refused(text, SITEEDIT_BUS, SITEEDIT_REMOVE, "nope", NULL, SITEEDIT_NOT_FOUND, "id",
                  "no [bus nope] section");
    free(text);
}

static void test_errors_pinned_to_fields(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    char *out = apply_ok(text, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D1",
                         "{\"bus\": \"a\", \"unit\": 300, \"profile\": \"optical-smoke-485\", "
                         "\"zone\": \"Z9\", \"location\": \"Hành lang\"}");
    struct siteedit_result res = {0};
    assert_int_equal(siteedit_validate(out, FIXTURE, &res), -1);
    assert_int_equal(res.status, SITEEDIT_INVALID);
    assert_int_equal(siteedit_http_status(&res), 422);
    assert_int_equal(res.nerrors, 2);
    assert_string_equal(res.errors[0].field, "detector.D1.unit");
    assert_int_equal(res.errors[0].line, line_of(out, "unit = 300"));
    assert_string_equal(res.errors[0].message,
                        "detector \"D1\": unit \"300\" is not an integer in 0..255");
    assert_string_equal(res.errors[1].field, "detector.D1.zone");
    assert_int_equal(res.errors[1].line, line_of(out, "zone = Z9"));
    assert_int_equal(res.errors[1].line, 39);
    assert_string_equal(res.errors[1].message,
                        "detector \"D1\": zone \"Z9\" is not a declared [zone]");
    assert_non_null(strstr(res.message, "site.conf would not load after this change (2 problems); "
                                        "nothing was saved: detector \"D1\": unit"));
    cJSON *j = siteedit_result_json(&res);
    char *s = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(s, "\"errors\":[{\"field\":\"detector.D1.unit\",\"line\":37,"
                              "\"message\":\"detector \\\"D1\\\": unit \\\"300\\\" is not an "
                              "integer in 0..255\"},{\"field\":\"detector.D1.zone\",\"line\":39,"));
    free(s);
    cJSON_Delete(j);
    siteedit_result_free(&res);
    free(out);

    /* A missing key is reported at the header; the field is the key that is missing. */
    out = apply_ok(text, SITEEDIT_BUS, SITEEDIT_ADD, "c", "{\"port\": \"70000\"}");
    assert_int_equal(siteedit_validate(out, FIXTURE, &res), -1);
    assert_int_equal(res.nerrors, 2);
    assert_string_equal(res.errors[0].field, "bus.c.type");
    assert_int_equal(res.errors[0].line, line_of(out, "[bus c]"));
    assert_string_equal(res.errors[0].message, "bus \"c\": missing required key \"type\"");
    assert_string_equal(res.errors[1].field, "bus.c.port");
    siteedit_result_free(&res);
    free(out);

    /* A detector with neither device nor bus: the field is the missing "device". */
    out = apply_ok(text, SITEEDIT_DETECTOR, SITEEDIT_ADD, "D5", "{\"zone\": \"Z1\"}");
    assert_int_equal(siteedit_validate(out, FIXTURE, &res), -1);
    assert_int_equal(res.nerrors, 1);
    assert_string_equal(res.errors[0].field, "detector.D5.device");
    siteedit_result_free(&res);
    free(out);

    /* Changing a bus's type makes a key elsewhere in the section wrong: that key is named. */
    out = apply_ok(text, SITEEDIT_BUS, SITEEDIT_REPLACE, "tcp",
                   "{\"type\": \"tcp\", \"host\": \"127.0.0.1\", \"baud\": 9600}");
    assert_int_equal(siteedit_validate(out, FIXTURE, &res), -1);
    assert_string_equal(res.errors[0].field, "bus.tcp.baud");
    assert_string_equal(res.errors[0].message,
                        "bus \"tcp\": baud applies to rtu buses only; this bus is tcp");
    siteedit_result_free(&res);
    free(out);

    /* Removing the last detector: the problem is the whole file's. */
    out = apply_ok(text, SITEEDIT_DETECTOR, SITEEDIT_REMOVE, "D1", NULL);
    char *out2 = apply_ok(out, SITEEDIT_DETECTOR, SITEEDIT_REMOVE, "P1", NULL);
    assert_int_equal(siteedit_validate(out2, FIXTURE, &res), -1);
    assert_int_equal(res.nerrors, 1);
    assert_string_equal(res.errors[0].field, "");
    assert_int_equal(res.errors[0].line, 0);
    assert_non_null(strstr(res.errors[0].message, "no [detector] section"));
    siteedit_result_free(&res);
    free(out2);
    free(out);
    free(text);
}

/* Write value as a detector's location and read it back through the tokenizer. */
static void roundtrip(const char *text, const char *value)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "zone", "Z1");
    cJSON_AddStringToObject(b, "bus", "a");
    cJSON_AddStringToObject(b, "unit", "1");
    cJSON_AddStringToObject(b, "profile", "optical-smoke-485");
    cJSON_AddStringToObject(b, "location", value);
    struct siteedit_result res = {0};
    char *out = siteedit_apply(text, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D1", b, &res);
    assert_non_null(out);
    validate_ok(out);
    cJSON *j = siteedit_entities(out, NULL);
    const cJSON *d1 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "detectors"), 0);
    const cJSON *loc = cJSON_GetObjectItem(d1, "location");
    assert_non_null(loc);
    if (strcmp(loc->valuestring, value) != 0)
        fail_msg("wrote \"%s\", read back \"%s\" from:\n%s", value, loc->valuestring, out);
    /* The comment after the zone survives every rewrite of another line. */
    assert_non_null(strstr(out, "zone = Z1          # first floor\n"));
    cJSON_Delete(j);
    cJSON_Delete(b);
    free(out);
}

static void test_values_round_trip(void **state)
{
    (void)state;
    char *text = slurp(FIXTURE);
    const char *values[] = {
        "",       " leading",        "trailing ",   "\"quoted\"",    "a#b",    "a # b",
        "#first", "back\\slash",     "tab\tinside", "say \"hi\"",    "Hà Nội", "x\\",
        "\\\"",   "ends in quote\"", "=",           "[not a header]"};
    for (size_t i = 0; i < ARRAY_LEN(values); i++)
        roundtrip(text, values[i]);
    /* Quoted old values are compared unquoted: the same value keeps its line as written. */
    char *q = with(text, "location = Hành lang", "location = \"Hành lang\"   # quoted");
    char *out = apply_ok(q, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D1",
                         "{\"bus\": \"a\", \"unit\": 1, \"profile\": \"optical-smoke-485\", "
                         "\"zone\": \"Z1\", \"location\": \"Hành lang\"}");
    assert_string_equal(out, q);
    free(out);
    out = apply_ok(q, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D1",
                   "{\"bus\": \"a\", \"unit\": 1, \"profile\": \"optical-smoke-485\", "
                   "\"zone\": \"Z1\", \"location\": \"Sảnh\"}");
    char *want = with(q, "location = \"Hành lang\"   # quoted", "location = Sảnh   # quoted");
    assert_string_equal(out, want);
    free(want);
    free(out);
    free(q);
    free(text);
}

static void test_line_endings(void **state)
{
    (void)state;
    /* CRLF files get CRLF lines; a last line without a line ending gets one before new lines. */
    const char *crlf = "[bus a]\r\ntype = rtu\r\ndevice = /dev/x # c\r\n";
    char *out =
        apply_ok(crlf, SITEEDIT_BUS, SITEEDIT_ADD, "b", "{\"type\": \"tcp\", \"host\": \"h\"}");
    assert_string_equal(out, "[bus a]\r\ntype = rtu\r\ndevice = /dev/x # c\r\n\r\n[bus b]\r\n"
                             "type = tcp\r\nhost = h\r\n");
    free(out);
    out = apply_ok(crlf, SITEEDIT_BUS, SITEEDIT_REPLACE, "a",
                   "{\"type\": \"rtu\", \"device\": \"/dev/y\", \"baud\": 19200}");
    assert_string_equal(out, "[bus a]\r\ntype = rtu\r\ndevice = /dev/y # c\r\nbaud = 19200\r\n");
    free(out);
    const char *open_end = "[bus a]\ntype = rtu\ndevice=/dev/x";
    char *out2;
    out = apply_ok(open_end, SITEEDIT_BUS, SITEEDIT_REPLACE, "a",
                   "{\"type\": \"rtu\", \"device\": \"/dev/z\", \"rs485\": false}");
    assert_string_equal(out, "[bus a]\ntype = rtu\ndevice=/dev/z\nrs485 = no\n");
    out2 = apply_ok("[bus a]\ndevice =\n", SITEEDIT_BUS, SITEEDIT_REPLACE, "a",
                    "{\"device\": \"/dev/z\"}");
    assert_string_equal(out2, "[bus a]\ndevice = /dev/z\n");
    free(out2);
    free(out);
    out = apply_ok(open_end, SITEEDIT_BUS, SITEEDIT_REMOVE, "a", NULL);
    assert_string_equal(out, "");
    free(out);
}

/* A scratch directory for files, removed with everything in it. */
struct scratch {
    char dir[64];
    char path[128];
};

static int scratch_setup(void **state)
{
    struct scratch *s = xcalloc(1, sizeof(*s));
    strcpy(s->dir, "/tmp/firegw-siteedit-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    snprintf(s->path, sizeof(s->path), "%s/site.conf", s->dir);
    *state = s;
    return 0;
}

static int scratch_teardown(void **state)
{
    struct scratch *s = *state;
    chmod(s->dir, 0700);
    DIR *d = opendir(s->dir);
    const struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = xasprintf("%s/%s", s->dir, de->d_name);
        if (unlink(p) != 0)
            rmdir(p);
        free(p);
    }
    if (d)
        closedir(d);
    rmdir(s->dir);
    free(s);
    return 0;
}

/* The names in the scratch directory, sorted, space-separated. */
static char *listing(const struct scratch *s)
{
    char *names[16];
    size_t n = 0;
    DIR *d = opendir(s->dir);
    assert_non_null(d);
    const struct dirent *de;
    while ((de = readdir(d)) != NULL && n < ARRAY_LEN(names))
        if (de->d_name[0] != '.')
            names[n++] = xstrdup(de->d_name);
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    char *out = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char *next = xasprintf("%s%s%s", out, i ? " " : "", names[i]);
        free(out);
        free(names[i]);
        out = next;
    }
    return out;
}

static void assert_listing(const struct scratch *s, const char *want)
{
    char *got = listing(s);
    assert_string_equal(got, want);
    free(got);
}

static void assert_file(const char *path, const char *want)
{
    char *got = slurp(path);
    assert_string_equal(got, want);
    free(got);
}

static void test_save(void **state)
{
    struct scratch *s = *state;
    spit(s->path, "old text\n");
    assert_int_equal(chmod(s->path, 0640), 0);
    char *bak = xasprintf("%s.bak", s->path);
    spit(bak, "older text\n");
    char v[SITEEDIT_VERSION_LEN], v2[SITEEDIT_VERSION_LEN];
    siteedit_version("old text\n", v);
    siteedit_version("new text\n", v2);
    struct siteedit_result res = {0};
    assert_int_equal(siteedit_save(s->path, "new text\n", v, &res), 0);
    assert_int_equal(res.status, SITEEDIT_OK);
    assert_string_equal(res.version, v2);
    assert_file(s->path, "new text\n");
    assert_file(bak, "old text\n");
    struct stat st;
    assert_int_equal(stat(s->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(stat(bak, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_listing(s, "site.conf site.conf.bak");
    cJSON *j = siteedit_result_json(&res);
    char *js = cJSON_PrintUnformatted(j);
    char *want = xasprintf("{\"version\":\"%s\"}", v2);
    assert_string_equal(js, want);
    free(want);
    free(js);
    cJSON_Delete(j);

    /* The old version again: someone else's change came first. */
    assert_int_equal(siteedit_save(s->path, "third\n", v, &res), -1);
    assert_int_equal(res.status, SITEEDIT_STALE);
    assert_int_equal(siteedit_http_status(&res), 409);
    assert_string_equal(res.field, "version");
    assert_non_null(strstr(res.message, "changed since it was read"));
    assert_file(s->path, "new text\n");
    assert_file(bak, "old text\n");
    assert_listing(s, "site.conf site.conf.bak");
    free(bak);
}

static void test_save_through_symlink(void **state)
{
    struct scratch *s = *state;
    spit(s->path, "one\n");
    char *link = xasprintf("%s/link.conf", s->dir);
    assert_int_equal(symlink("site.conf", link), 0);
    struct siteedit_result res = {0};
    assert_int_equal(siteedit_save(link, "two\n", NULL, &res), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_file(s->path, "two\n");
    assert_listing(s, "link.conf site.conf site.conf.bak");
    free(link);
}

static void test_write_failure_keeps_old_file(void **state)
{
    struct scratch *s = *state;
    spit(s->path, "precious\n");
    char v[SITEEDIT_VERSION_LEN];
    siteedit_version("precious\n", v);
    /* A full disk, as root can have it too: files may not grow past 16 bytes. */
    char big[4096];
    memset(big, 'x', sizeof(big) - 2);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {16, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    struct siteedit_result res = {0};
    int rc = siteedit_save(s->path, big, v, &res);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, -1);
    assert_int_equal(res.status, SITEEDIT_IO);
    assert_int_equal(siteedit_http_status(&res), 500);
    if (!strstr(res.message, "cannot write") || !strstr(res.message, "File too large"))
        fail_msg("unexpected message: %s", res.message);
    assert_file(s->path, "precious\n");
    assert_listing(s, "site.conf");

    /* The .bak cannot be replaced (a directory is in the way): nothing changes either. */
    char *bak = xasprintf("%s.bak", s->path);
    assert_int_equal(mkdir(bak, 0700), 0);
    assert_int_equal(siteedit_save(s->path, "new\n", v, &res), -1);
    assert_int_equal(res.status, SITEEDIT_IO);
    assert_non_null(strstr(res.message, "cannot keep the previous file as"));
    assert_file(s->path, "precious\n");
    assert_listing(s, "site.conf site.conf.bak");
    assert_int_equal(rmdir(bak), 0);
    free(bak);

    /* A read-only directory (root writes anyway, so only checked as another user). */
    if (geteuid() != 0) {
        assert_int_equal(chmod(s->dir, 0500), 0);
        assert_int_equal(siteedit_save(s->path, "new\n", v, &res), -1);
        assert_int_equal(res.status, SITEEDIT_IO);
        assert_non_null(strstr(res.message, "cannot create a temporary file beside"));
        assert_int_equal(chmod(s->dir, 0700), 0);
        assert_file(s->path, "precious\n");
        assert_listing(s, "site.conf");
    }

    /* No file at all. */
    char *gone = xasprintf("%s/absent.conf", s->dir);
    assert_int_equal(siteedit_save(gone, "x\n", NULL, &res), -1);
    assert_int_equal(res.status, SITEEDIT_IO);
    assert_non_null(strstr(res.message, "No such file or directory"));
    free(gone);
}

/* The fixture as a file in the scratch directory, its profile_dir made absolute. */
static char *scratch_site(const struct scratch *s)
{
    char *text = slurp(FIXTURE);
    char *profiles = realpath("sensors/profiles", NULL);
    assert_non_null(profiles);
    char *line = xasprintf("profile_dir = %s", profiles);
    char *site = with(text, "profile_dir = ../../../sensors/profiles", line);
    spit(s->path, site);
    free(line);
    free(profiles);
    free(text);
    return site;
}

static void test_edit(void **state)
{
    struct scratch *s = *state;
    char *site = scratch_site(s);
    char v[SITEEDIT_VERSION_LEN];
    siteedit_version(site, v);
    cJSON *body = json("{\"id\": \"D2\", \"bus\": \"a\", \"unit\": 2, \"profile\": "
                       "\"heat-485\", \"zone\": \"Z2\", \"heat_class\": \"A1R\"}");
    struct siteedit_result res = {0};
    assert_int_equal(siteedit_edit(s->path, SITEEDIT_DETECTOR, SITEEDIT_ADD, NULL, body, v, &res),
                     0);
    char *want = with(site, "channel = 1\nzone = Z2\n",
                      "channel = 1\nzone = Z2\n\n[detector D2]\nbus = a\nunit = 2\n"
                      "profile = heat-485\nzone = Z2\nheat_class = A1R\n");
    assert_file(s->path, want);
    char *bak = xasprintf("%s.bak", s->path);
    assert_file(bak, site);
    char v2[SITEEDIT_VERSION_LEN];
    siteedit_version(want, v2);
    assert_string_equal(res.version, v2);
    char err[2048];
    struct cfg *cfg = cfg_load(s->path, err, sizeof(err));
    if (!cfg)
        fail_msg("saved file does not load: %s", err);
    assert_int_equal(cfg->ndetectors, 3);
    cfg_free(cfg);

    /* The version read before that change is stale now. */
    assert_int_equal(
        siteedit_edit(s->path, SITEEDIT_DETECTOR, SITEEDIT_REMOVE, "D2", NULL, v, &res), -1);
    assert_int_equal(res.status, SITEEDIT_STALE);
    assert_file(s->path, want);

    /* An invalid change is not saved, and its errors come back. */
    cJSON *bad = json("{\"bus\": \"a\", \"unit\": 2, \"profile\": \"heat-485\", \"zone\": "
                      "\"Z2\", \"heat_class\": \"Z9\"}");
    assert_int_equal(
        siteedit_edit(s->path, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D2", bad, v2, &res), -1);
    assert_int_equal(res.status, SITEEDIT_INVALID);
    assert_int_equal(res.nerrors, 1);
    assert_string_equal(res.errors[0].field, "detector.D2.heat_class");
    assert_file(s->path, want);
    assert_file(bak, site);
    siteedit_result_free(&res);
    siteedit_result_free(&res);

    /* No change: nothing is written, not even the .bak. */
    assert_int_equal(unlink(bak), 0);
    assert_int_equal(
        siteedit_edit(s->path, SITEEDIT_DETECTOR, SITEEDIT_REPLACE, "D2", body, v2, &res), 0);
    assert_string_equal(res.version, v2);
    assert_listing(s, "site.conf");

    /* Refusals of the edit itself come through unchanged. */
    assert_int_equal(siteedit_edit(s->path, SITEEDIT_BUS, SITEEDIT_REMOVE, "a", NULL, v2, &res),
                     -1);
    assert_int_equal(res.status, SITEEDIT_CONFLICT);
    assert_int_equal(siteedit_edit(s->path, SITEEDIT_BUS, SITEEDIT_REMOVE, "a", NULL, NULL, &res),
                     -1);
    assert_int_equal(res.status, SITEEDIT_BAD_REQUEST);
    assert_string_equal(res.field, "version");
    cJSON *j = siteedit_result_json(&res);
    char *js = cJSON_PrintUnformatted(j);
    assert_string_equal(js, "{\"error\":\"the file's version is required (as GET /api/config "
                            "gives it)\",\"field\":\"version\"}");
    free(js);
    cJSON_Delete(j);
    assert_file(s->path, want);
    assert_listing(s, "site.conf");

    cJSON_Delete(bad);
    cJSON_Delete(body);
    free(bak);
    free(want);
    free(site);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_kind_parse),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_add_detector),
        cmocka_unit_test(test_add_bus_and_device),
        cmocka_unit_test(test_add_first_of_its_kind),
        cmocka_unit_test(test_replace_keeps_comments),
        cmocka_unit_test(test_replace_drops_and_adds_keys),
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_remove_in_use_refused),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_duplicate_and_missing),
        cmocka_unit_test(test_errors_pinned_to_fields),
        cmocka_unit_test(test_values_round_trip),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test_setup_teardown(test_save, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_save_through_symlink, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_keeps_old_file, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_edit, scratch_setup, scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
