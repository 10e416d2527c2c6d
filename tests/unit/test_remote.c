/*
 * Unit tests for gateway/remote.c and gateway/cmdset.c: remote command
 * messages checked (every rejection class with its reason code), mapped to
 * command lines that a real engine accepts, authorised per uplink from the
 * `commands` key, limited in time (boundaries included), refused when
 * replayed (within and after the window, and past the table's capacity), and
 * answered with a response. When FIREGW_PAYLOAD_OUT names a directory, the
 * accepted commands and every response are written there as
 * command-<label>.json and command_response-<label>.json for
 * tests/check_schemas.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdset.h"
#include "command.h"
#include "log.h"
#include "remote.h"
#include "util.h"

static const char *SITE = "[site]\n"
                          "id = remote-test\n"
                          "name = Remote test\n"
                          "[gateway]\n"
                          "profile_dir = ../../sensors/profiles\n"
                          "[bus b]\n"
                          "type = tcp\n"
                          "host = 127.0.0.1\n"
                          "[zone Z1]\n"
                          "name = Zone 1\n"
                          "floor = 1\n"
                          "[zone Z2]\n"
                          "name = Zone 2\n"
                          "floor = 2\n"
                          "[detector S1]\n"
                          "bus = b\n"
                          "unit = 1\n"
                          "profile = optical-smoke-485\n"
                          "zone = Z1\n"
                          "[detector S2]\n"
                          "bus = b\n"
                          "unit = 2\n"
                          "profile = optical-smoke-485\n"
                          "zone = Z2\n"
                          "[uplink police]\n"
                          "role = fire_police\n"
                          "host = 127.0.0.1\n"
                          "[uplink owner]\n"
                          "role = owner\n"
                          "host = 127.0.0.1\n"
                          "[uplink watch]\n"
                          "role = other\n"
                          "host = 127.0.0.1\n"
                          "[uplink service]\n"
                          "role = other\n"
                          "host = 127.0.0.1\n"
                          "commands = disable, enable ,test_on,test_off\n"
                          "[uplink mute]\n"
                          "role = fire_police\n"
                          "host = 127.0.0.1\n"
                          "commands = none\n";

/* 2026-11-23T05:04:03.123Z */
#define NOW 1795410243123LL
#define MIN 60000LL
#define ISSUED "2026-11-23T05:04:00.000Z"
#define EXPIRES "2026-11-23T05:09:00.000Z"
#define HEAD "{\"schema\":1,\"type\":\"command\",\"id\":\"c-1\","
#define TAIL "\"issued\":\"" ISSUED "\",\"expires\":\"" EXPIRES "\",\"user\":\"duty\"}"
#define RESET_Z1 "\"command\":\"reset\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},"

static struct cfg *cfg;

static int group_setup(void **state)
{
    (void)state;
    char err[2048] = "";
    cfg = cfg_load_string(SITE, "tests/fixtures/remote-test.conf", err, sizeof(err));
    if (!cfg)
        fail_msg("config: %s", err);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cfg_free(cfg);
    return 0;
}

static unsigned mask_of(const char *uplink)
{
    for (size_t i = 0; i < cfg->nuplinks; i++)
        if (strcmp(cfg->uplinks[i].id, uplink) == 0)
            return cfg->uplinks[i].commands;
    fail_msg("no uplink %s", uplink);
    return 0;
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
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* A command message; extra holds the command, target and period members, each ending in ','. */
static char *message(const char *id, const char *extra, int64_t issued, int64_t expires,
                     const char *user)
{
    char a[40], b[40];
    format_utc_ms(issued, a, sizeof(a));
    format_utc_ms(expires, b, sizeof(b));
    return xasprintf("{\"schema\":1,\"type\":\"command\",\"id\":\"%s\",%s\"issued\":\"%s\","
                     "\"expires\":\"%s\",\"user\":\"%s\"}",
                     id, extra, a, b, user);
}

static int parse_text(struct remote *r, const char *uplink, const char *text, int64_t now,
                      struct remote_cmd *out, char *reason, size_t reasonlen)
{
    return remote_parse(r, uplink, mask_of(uplink), text, strlen(text), now, out, reason,
                        reasonlen);
}

/* Parse a message built by message(), and free it. */
static int parse_msg(struct remote *r, const char *uplink, char *text, int64_t now,
                     struct remote_cmd *out)
{
    char reason[512];
    int rc = parse_text(r, uplink, text, now, out, reason, sizeof(reason));
    free(text);
    return rc;
}

static struct ev_time at(int64_t ms)
{
    struct ev_time t = {ms, NOW + ms};
    return t;
}

static void smoke(struct engine *e, size_t det, double value, int64_t ms, struct evlist *ev)
{
    struct reading rd = {.detector = det, .has_value = true, .value_ok = true, .value = value};
    struct device_sample s = {.device = det, .t = at(ms), .nreadings = 1, .readings = &rd};
    engine_sample(e, &s, ev);
}

static void test_cmdset_names_and_lists(void **state)
{
    (void)state;
    for (int i = 0; i < RCMD__COUNT; i++)
        assert_int_equal(cmdset_lookup(cmdset_name((enum remote_command)i)), i);
    assert_string_equal(cmdset_name(RCMD_TEST_ON), "test_on");
    assert_null(cmdset_name(RCMD__COUNT));
    assert_int_equal(cmdset_lookup("status"), -1);

    char err[256], buf[128];
    unsigned m = 99;
    assert_int_equal(cmdset_parse(" acknowledge ,state", &m, err, sizeof(err)), 0);
    assert_int_equal(m, CMDSET_BIT(RCMD_ACKNOWLEDGE) | CMDSET_BIT(RCMD_STATE));
    assert_int_equal(cmdset_parse("none", &m, err, sizeof(err)), 0);
    assert_int_equal(m, 0);
    cmdset_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "none");
    cmdset_format(CMDSET_ALL, buf, sizeof(buf));
    assert_string_equal(buf, "acknowledge,silence,reset,disable,enable,test_on,test_off,state");
    assert_int_equal(cmdset_parse(buf, &m, err, sizeof(err)), 0);
    assert_int_equal(m, CMDSET_ALL);

    const struct {
        const char *list, *err;
    } bad[] = {
        {"", "empty command name in \"\""},
        {"reset,,state", "empty command name in \"reset,,state\""},
        {"reset,", "empty command name in \"reset,\""},
        {"reset, launch",
         "unknown command \"launch\" (expected acknowledge, silence, reset, disable, enable, "
         "test_on, test_off, state, or none alone)"},
        {"test", "unknown command \"test\""},
        {"Reset", "unknown command \"Reset\""},
        {"state,state", "command \"state\" is listed twice"},
        {"none,state", "\"none\" cannot be combined with command names"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        m = 12345;
        assert_int_equal(cmdset_parse(bad[i].list, &m, err, sizeof(err)), -1);
        assert_int_equal(m, 12345);
        if (strncmp(err, bad[i].err, strlen(bad[i].err)) != 0)
            fail_msg("\"%s\": got \"%s\", expected \"%s\"", bad[i].list, err, bad[i].err);
    }
}

static void test_config_commands_key(void **state)
{
    (void)state;
    const unsigned police = CMDSET_BIT(RCMD_ACKNOWLEDGE) | CMDSET_BIT(RCMD_SILENCE) |
                            CMDSET_BIT(RCMD_RESET) | CMDSET_BIT(RCMD_STATE);
    assert_int_equal(mask_of("police"), police);
    assert_int_equal(mask_of("owner"), CMDSET_BIT(RCMD_ACKNOWLEDGE) | CMDSET_BIT(RCMD_STATE));
    assert_int_equal(mask_of("watch"), CMDSET_BIT(RCMD_STATE));
    assert_int_equal(mask_of("service"), CMDSET_BIT(RCMD_DISABLE) | CMDSET_BIT(RCMD_ENABLE) |
                                             CMDSET_BIT(RCMD_TEST_ON) | CMDSET_BIT(RCMD_TEST_OFF));
    assert_int_equal(mask_of("mute"), 0);
    assert_int_equal(cmdset_default(UPLINK_FIRE_POLICE), police);

    /* The error names the file and the line of the key. */
    char *text = xasprintf("%s[uplink extra]\nrole = owner\nhost = 127.0.0.1\n"
                           "commands = acknowledge, launch\n",
                           SITE);
    char err[2048] = "";
    struct cfg *bad = cfg_load_string(text, "tests/fixtures/remote-test.conf", err, sizeof(err));
    assert_null(bad);
    int line = 1;
    for (const char *p = text; *p; p++)
        line += *p == '\n';
    char *want = xasprintf("tests/fixtures/remote-test.conf:%d: uplink \"extra\": commands: "
                           "unknown command \"launch\" (expected acknowledge, silence, reset, "
                           "disable, enable, test_on, test_off, state, or none alone)\n",
                           line - 1);
    assert_string_equal(err, want);
    free(want);
    free(text);
}

/* Every command maps to the line that command_execute takes, and the engine carries it out. */
static void test_mapping_to_command_lines(void **state)
{
    (void)state;
    const struct {
        const char *label, *extra, *line, *before;
        bool alarm;
    } rows[] = {
        {"acknowledge-all", "\"command\":\"acknowledge\",\"target\":{\"scope\":\"all\"},",
         "acknowledge all", NULL, true},
        {"acknowledge-zone",
         "\"command\":\"acknowledge\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},",
         "acknowledge zone Z1", NULL, true},
        {"silence-all", "\"command\":\"silence\",\"target\":{\"scope\":\"all\"},", "silence all",
         NULL, true},
        {"silence-zone", "\"command\":\"silence\",\"target\":{\"id\":\"Z1\",\"scope\":\"zone\"},",
         "silence zone Z1", NULL, true},
        {"reset-all", "\"command\":\"reset\",\"target\":{\"scope\":\"all\"},", "reset all", NULL,
         true},
        {"reset-zone", RESET_Z1, "reset zone Z1", NULL, true},
        {"disable-zone",
         "\"command\":\"disable\",\"target\":{\"scope\":\"zone\",\"id\":\"Z2\"},\"period_s\":3600,",
         "disable zone Z2 3600s", NULL, false},
        {"disable-detector",
         "\"period_s\":604800,\"command\":\"disable\",\"target\":{\"scope\":\"detector\",\"id\":"
         "\"S1\"},",
         "disable detector S1 604800s", NULL, false},
        {"enable-zone", "\"command\":\"enable\",\"target\":{\"scope\":\"zone\",\"id\":\"Z2\"},",
         "enable zone Z2", "disable zone Z2 60s", false},
        {"enable-detector",
         "\"command\":\"enable\",\"target\":{\"scope\":\"detector\",\"id\":\"S1\"},",
         "enable detector S1", "disable detector S1 60s", false},
        {"test-on-zone",
         "\"command\":\"test_on\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},\"period_s\":1800,",
         "test on zone Z1 1800s", NULL, false},
        {"test-on-detector",
         "\"command\":\"test_on\",\"target\":{\"scope\":\"detector\",\"id\":\"S2\"},\"period_s\":"
         "1,",
         "test on detector S2 1s", NULL, false},
        {"test-off-zone", "\"command\":\"test_off\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},",
         "test off zone Z1", "test on zone Z1 60s", false},
        {"test-off-detector",
         "\"command\":\"test_off\",\"target\":{\"scope\":\"detector\",\"id\":\"S2\"},",
         "test off detector S2", "test on detector S2 60s", false},
        {"state", "\"command\":\"state\",", "status", NULL, false},
    };
    struct remote *r = remote_new(REMOTE_DEFAULT_REPLAY);
    assert_non_null(r);
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        char id[32], reason[512], reply[4096], name[64];
        snprintf(id, sizeof(id), "map-%zu", i);
        char *text = message(id, rows[i].extra, NOW - 1000, NOW + 5 * MIN, "Nguyễn Văn An");
        snprintf(name, sizeof(name), "command-%s", rows[i].label);
        save(name, text);
        struct remote_cmd c;
        int rc = remote_parse(r, "service", CMDSET_ALL, text, strlen(text), NOW, &c, reason,
                              sizeof(reason));
        free(text);
        if (rc != REMOTE_OK)
            fail_msg("%s: rejected: %s", rows[i].label, reason);
        assert_string_equal(c.id, id);
        assert_string_equal(c.line, rows[i].line);
        assert_string_equal(c.user, "uplink:service:Nguyễn Văn An");
        assert_int_equal(c.issued_ms, NOW - 1000);
        assert_int_equal(c.expires_ms, NOW + 5 * MIN);
        const char *named = strstr(rows[i].extra, "\"command\":\"") + 11;
        assert_int_equal(strncmp(named, cmdset_name(c.command), strlen(cmdset_name(c.command))), 0);
        assert_int_equal(named[strlen(cmdset_name(c.command))], '"');

        struct engine *e = engine_new(cfg, at(0));
        struct evlist ev = {0};
        if (rows[i].alarm)
            smoke(e, 0, 3.0, 1000, &ev);
        if (rows[i].before)
            assert_int_equal(command_execute(e, cfg, rows[i].before, "local:t", at(1500), &ev,
                                             reply, sizeof(reply)),
                             0);
        evlist_clear(&ev);
        rc = command_execute(e, cfg, c.line, c.user, at(2000), &ev, reply, sizeof(reply));
        if (rc != 0)
            fail_msg("%s: \"%s\" -> %s", rows[i].label, c.line, reply);
        assert_int_equal(strncmp(reply, "ok ", 3), 0);
        if (c.command == RCMD_STATE) {
            assert_int_equal(ev.count, 0);
            char *resp = remote_response(cfg, c.id, "done", NULL, "", NOW, reply);
            assert_non_null(resp);
            save("command_response-state", resp);
            cJSON *j = cJSON_Parse(resp);
            assert_non_null(j);
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "state");
            assert_true(cJSON_IsObject(st));
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(st, "building")->valuestring,
                                "remote-test");
            assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st, "zones")), 2);
            cJSON_Delete(j);
            free(resp);
        } else {
            assert_string_equal(reply + 3, c.line);
            assert_true(ev.count > 0);
            /* The operator's event names the remote user (cut to the event's field). */
            bool by_user = false;
            for (size_t k = 0; k < ev.count; k++)
                by_user |= strncmp(ev.items[k].user, "uplink:service:", 15) == 0;
            if (!by_user)
                fail_msg("%s: no event names the remote user", rows[i].label);
            char *resp = remote_response(cfg, c.id, "done", NULL, reply + 3, NOW, NULL);
            snprintf(name, sizeof(name), "command_response-done-%s", rows[i].label);
            save(name, resp);
            free(resp);
        }
        evlist_free(&ev);
        engine_free(e);
    }
    remote_free(r);
}

struct reject {
    const char *label;
    const char *text;
    const char *uplink;
    int rc;
    const char *id; /* the id the response carries; NULL for null */
    const char *reason;
};

/* Check one rejection, and that its response names the id and the reason code. */
static void check_reject(struct remote *r, const struct reject *x)
{
    struct remote_cmd c;
    char reason[512];
    int rc = parse_text(r, x->uplink, x->text, NOW, &c, reason, sizeof(reason));
    if (rc != x->rc)
        fail_msg("%s: result %d (%s), expected %d", x->label, rc, reason, x->rc);
    if (!strstr(reason, x->reason))
        fail_msg("%s: reason \"%s\" does not say \"%s\"", x->label, reason, x->reason);
    assert_string_equal(c.id, x->id ? x->id : "");
    assert_string_equal(c.line, "");
    assert_string_equal(c.user, "");
    for (const char *p = reason; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);

    char *resp = remote_response(cfg, c.id, "rejected", remote_reason_code(rc), reason, NOW, NULL);
    assert_non_null(resp);
    char name[96];
    snprintf(name, sizeof(name), "command_response-rejected-%s", x->label);
    save(name, resp);
    cJSON *j = cJSON_Parse(resp);
    assert_non_null(j);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (x->id)
        assert_string_equal(id->valuestring, x->id);
    else
        assert_true(cJSON_IsNull(id));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "rejected");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "reason")->valuestring,
                        remote_reason_code(rc));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "detail")->valuestring, reason);
    cJSON_Delete(j);
    free(resp);
}

static void test_rejections_with_reason_codes(void **state)
{
    (void)state;
    const int M = REMOTE_MALFORMED;
    const struct reject rows[] = {
        {"not-json", "{\"schema\":1,", "police", M, NULL, "not valid JSON"},
        {"empty", "", "police", M, NULL, "not valid JSON"},
        {"array", "[1,2]", "police", M, NULL, "not a JSON object"},
        {"garbage-after", HEAD RESET_Z1 TAIL " x", "police", M, NULL, "not valid JSON (at byte"},
        {"unknown-field", HEAD RESET_Z1 "\"urgent\":true," TAIL, "police", M, "c-1",
         "unknown field \"urgent\""},
        {"duplicate-field", HEAD RESET_Z1 "\"command\":\"reset\"," TAIL, "police", M, "c-1",
         "field \"command\" appears twice"},
        {"duplicate-id", HEAD "\"id\":\"c-2\"," RESET_Z1 TAIL, "police", M, NULL,
         "field \"id\" appears twice"},
        {"schema-2", "{\"schema\":2,\"type\":\"command\",\"id\":\"c-1\"," RESET_Z1 TAIL, "police",
         M, "c-1", "field \"schema\" must be 1"},
        {"schema-text", "{\"schema\":\"1\",\"type\":\"command\",\"id\":\"c-1\"," RESET_Z1 TAIL,
         "police", M, "c-1", "field \"schema\" must be 1"},
        {"no-schema", "{\"type\":\"command\",\"id\":\"c-1\"," RESET_Z1 TAIL, "police", M, "c-1",
         "missing field \"schema\""},
        {"type-event", "{\"schema\":1,\"type\":\"event\",\"id\":\"c-1\"," RESET_Z1 TAIL, "police",
         M, "c-1", "field \"type\" must be \"command\" (got \"event\")"},
        {"no-id", "{\"schema\":1,\"type\":\"command\"," RESET_Z1 TAIL, "police", M, NULL,
         "missing field \"id\""},
        {"id-number", "{\"schema\":1,\"type\":\"command\",\"id\":7," RESET_Z1 TAIL, "police", M,
         NULL, "field \"id\" must be a string"},
        {"id-space", "{\"schema\":1,\"type\":\"command\",\"id\":\"c 1\"," RESET_Z1 TAIL, "police",
         M, NULL, "field \"id\" must be 1-64 of"},
        {"id-65",
         "{\"schema\":1,\"type\":\"command\",\"id\":\""
         "0123456789012345678901234567890123456789012345678901234567890123"
         "4\"," RESET_Z1 TAIL,
         "police", M, NULL, "field \"id\" must be 1-64 of"},
        {"id-control", "{\"schema\":1,\"type\":\"command\",\"id\":\"a\\nb\"," RESET_Z1 TAIL,
         "police", M, NULL, "(got \"a?b\")"},
        {"unknown-command", HEAD "\"command\":\"evacuate\"," TAIL, "police", M, "c-1",
         "unknown command \"evacuate\""},
        {"no-target", HEAD "\"command\":\"reset\"," TAIL, "police", M, "c-1",
         "missing field \"target\" (\"reset\" needs one)"},
        {"state-target", HEAD "\"command\":\"state\",\"target\":{\"scope\":\"all\"}," TAIL,
         "police", M, "c-1", "\"state\" takes no target"},
        {"target-text", HEAD "\"command\":\"reset\",\"target\":\"Z1\"," TAIL, "police", M, "c-1",
         "field \"target\" must be an object"},
        {"scope-floor",
         HEAD "\"command\":\"reset\",\"target\":{\"scope\":\"floor\",\"id\":\"1\"}," TAIL, "police",
         M, "c-1", "target scope must be \"all\", \"zone\" or \"detector\""},
        {"reset-detector",
         HEAD "\"command\":\"reset\",\"target\":{\"scope\":\"detector\",\"id\":\"S1\"}," TAIL,
         "police", M, "c-1", "\"reset\" applies to \"all\" or a zone, not a detector"},
        {"disable-all",
         HEAD "\"command\":\"disable\",\"target\":{\"scope\":\"all\"},"
              "\"period_s\":60," TAIL,
         "service", M, "c-1", "\"disable\" needs a zone or detector target, not \"all\""},
        {"all-with-id",
         HEAD "\"command\":\"reset\",\"target\":{\"scope\":\"all\",\"id\":\"Z1\"}," TAIL, "police",
         M, "c-1", "target scope \"all\" takes no id"},
        {"zone-without-id", HEAD "\"command\":\"reset\",\"target\":{\"scope\":\"zone\"}," TAIL,
         "police", M, "c-1", "missing field \"id\" in target"},
        {"target-id-space",
         HEAD "\"command\":\"reset\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1 now\"}," TAIL,
         "police", M, "c-1", "target id must be 1-64 of A-Z a-z 0-9 _ - . (got \"Z1 now\")"},
        {"target-extra",
         HEAD "\"command\":\"reset\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\",\"x\":1}," TAIL,
         "police", M, "c-1", "unknown field \"x\" in target"},
        {"no-period",
         HEAD "\"command\":\"disable\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"}," TAIL,
         "service", M, "c-1", "missing field \"period_s\" (\"disable\" needs one)"},
        {"period-on-reset", HEAD RESET_Z1 "\"period_s\":60," TAIL, "police", M, "c-1",
         "\"reset\" takes no period_s"},
        {"period-0",
         HEAD "\"command\":\"test_on\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},"
              "\"period_s\":0," TAIL,
         "service", M, "c-1", "field \"period_s\" must be a whole number of seconds in 1..604800"},
        {"period-7d-1s",
         HEAD "\"command\":\"disable\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},"
              "\"period_s\":604801," TAIL,
         "service", M, "c-1", "in 1..604800"},
        {"period-fraction",
         HEAD "\"command\":\"disable\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},"
              "\"period_s\":1.5," TAIL,
         "service", M, "c-1", "in 1..604800"},
        {"period-text",
         HEAD "\"command\":\"disable\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},"
              "\"period_s\":\"60\"," TAIL,
         "service", M, "c-1", "in 1..604800"},
        {"issued-no-ms",
         HEAD RESET_Z1 "\"issued\":\"2026-11-23T05:04:00Z\",\"expires\":\"" EXPIRES
                       "\",\"user\":\"duty\"}",
         "police", M, "c-1",
         "field \"issued\" must be a UTC time like 2026-11-23T05:04:03.123Z (got "
         "\"2026-11-23T05:04:00Z\")"},
        {"issued-offset",
         HEAD RESET_Z1 "\"issued\":\"2026-11-23T12:04:00.000+07\",\"expires\":\"" EXPIRES
                       "\",\"user\":\"duty\"}",
         "police", M, "c-1", "field \"issued\" must be a UTC"},
        {"expires-feb-29",
         HEAD RESET_Z1 "\"issued\":\"" ISSUED "\",\"expires\":"
                       "\"2026-02-29T00:00:00.000Z\",\"user\":\"duty\"}",
         "police", M, "c-1", "field \"expires\" must be a UTC"},
        {"expires-hour-24",
         HEAD RESET_Z1 "\"issued\":\"" ISSUED "\",\"expires\":"
                       "\"2026-11-23T24:00:00.000Z\",\"user\":\"duty\"}",
         "police", M, "c-1", "field \"expires\" must be a UTC"},
        {"expires-before-issued",
         HEAD RESET_Z1 "\"issued\":\"" EXPIRES "\",\"expires\":\"" ISSUED "\",\"user\":\"duty\"}",
         "police", M, "c-1", "field \"expires\" is before \"issued\""},
        {"no-user", HEAD RESET_Z1 "\"issued\":\"" ISSUED "\",\"expires\":\"" EXPIRES "\"}",
         "police", M, "c-1", "missing field \"user\""},
        {"user-empty",
         HEAD RESET_Z1 "\"issued\":\"" ISSUED "\",\"expires\":\"" EXPIRES "\",\"user\":\"\"}",
         "police", M, "c-1", "field \"user\" must be 1-64 characters"},
        {"user-65",
         HEAD RESET_Z1
         "\"issued\":\"" ISSUED "\",\"expires\":\"" EXPIRES
         "\",\"user\":\"ăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăăă\"}",
         "police", M, "c-1", "field \"user\" must be 1-64 characters"},
        {"user-newline",
         HEAD RESET_Z1 "\"issued\":\"" ISSUED "\",\"expires\":\"" EXPIRES
                       "\",\"user\":\"duty\\nofficer\"}",
         "police", M, "c-1", "without control characters"},
        {"user-bad-utf8",
         HEAD RESET_Z1 "\"issued\":\"" ISSUED "\",\"expires\":\"" EXPIRES
                       "\",\"user\":\"du\xC3ty\"}",
         "police", M, "c-1", "of UTF-8 text"},
        {"unknown-field-binary", HEAD RESET_Z1 "\"\xFF\x01\":1," TAIL, "police", M, "c-1",
         "unknown field \"??\""},
        {"owner-reset", HEAD RESET_Z1 TAIL, "owner", REMOTE_UNAUTHORISED, "c-1",
         "uplink \"owner\" may not give \"reset\" (its commands: acknowledge,state)"},
        {"mute-state", HEAD "\"command\":\"state\"," TAIL, "mute", REMOTE_UNAUTHORISED, "c-1",
         "uplink \"mute\" may not give \"state\" (its commands: none)"},
        {"unauthorised-before-expired",
         HEAD RESET_Z1 "\"issued\":\"2026-11-23T04:00:00.000Z\",\"expires\":"
                       "\"2026-11-23T04:05:00.000Z\",\"user\":\"duty\"}",
         "watch", REMOTE_UNAUTHORISED, "c-1", "may not give \"reset\""},
        {"expired",
         HEAD RESET_Z1 "\"issued\":\"2026-11-23T04:00:00.000Z\",\"expires\":"
                       "\"2026-11-23T04:05:00.000Z\",\"user\":\"duty\"}",
         "police", REMOTE_EXPIRED, "c-1",
         "expired at 2026-11-23T04:05:00.000Z, 59 min ago by the gateway's clock"},
        {"issued-ahead",
         HEAD RESET_Z1 "\"issued\":\"2026-11-23T05:10:00.000Z\",\"expires\":"
                       "\"2026-11-23T05:15:00.000Z\",\"user\":\"duty\"}",
         "police", REMOTE_EXPIRED, "c-1",
         "issued 5 min ahead of the gateway's clock; at most 5 min is allowed"},
        {"lifetime-2h",
         HEAD RESET_Z1 "\"issued\":\"" ISSUED "\",\"expires\":"
                       "\"2026-11-23T07:04:00.000Z\",\"user\":\"duty\"}",
         "police", REMOTE_EXPIRED, "c-1",
         "valid for 120 min from issued to expires; a command may be valid for at most 60 min"},
    };
    struct remote *r = remote_new(8);
    log_set_level(LOG_LVL_ERR); /* the rejections are logged; see test_rejection_is_logged */
    for (size_t i = 0; i < ARRAY_LEN(rows); i++)
        check_reject(r, &rows[i]);

    /* Lengths the text rows cannot express: a NUL inside, and too long. */
    struct remote_cmd c;
    char reason[512];
    const char nul[] =
        HEAD RESET_Z1 "\"issued\":\"" ISSUED "\",\"expires\":\"" EXPIRES "\",\"user\":\"du\0ty\"}";
    assert_int_equal(remote_parse(r, "police", CMDSET_ALL, nul, sizeof(nul) - 1, NOW, &c, reason,
                                  sizeof(reason)),
                     REMOTE_MALFORMED);
    assert_string_equal(reason, "not valid JSON: contains a NUL byte");
    char *big = xmalloc(REMOTE_MAX_BYTES + 2);
    memset(big, ' ', REMOTE_MAX_BYTES + 1);
    big[REMOTE_MAX_BYTES + 1] = '\0';
    memcpy(big, HEAD RESET_Z1 TAIL, strlen(HEAD RESET_Z1 TAIL));
    assert_int_equal(parse_text(r, "police", big, NOW, &c, reason, sizeof(reason)),
                     REMOTE_MALFORMED);
    assert_string_equal(reason, "message of 4097 bytes; at most 4096 are accepted");
    big[REMOTE_MAX_BYTES] = '\0';
    assert_int_equal(parse_text(r, "police", big, NOW, &c, reason, sizeof(reason)), REMOTE_OK);
    free(big);
    /* 64 characters of user are fine, however many bytes they take. */
    char user64[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(user64, "ă");
    assert_int_equal(
        parse_msg(r, "police", message("u-64", RESET_Z1, NOW, NOW + MIN, user64), NOW, &c),
        REMOTE_OK);
    assert_int_equal(strlen(c.user), strlen("uplink:police:") + 128);
    /* A short reason buffer is cut, never overrun. */
    char small[8];
    memset(small, 'x', sizeof(small));
    assert_int_equal(parse_text(r, "police", "[]", NOW, &c, small, sizeof(small)),
                     REMOTE_MALFORMED);
    assert_string_equal(small, "not a J");
    log_set_level(LOG_LVL_INFO);
    remote_free(r);
}

/* A command is valid from issued - 5 min to expires, both included, for at most 1 h. */
static void test_expiry_boundaries(void **state)
{
    (void)state;
    struct remote *r = remote_new(64);
    struct remote_cmd c;
    const char *reset = RESET_Z1;
    log_set_level(LOG_LVL_ERR);
    assert_int_equal(parse_msg(r, "police", message("b1", reset, NOW - MIN, NOW, "d"), NOW, &c),
                     REMOTE_OK);
    assert_int_equal(parse_msg(r, "police", message("b2", reset, NOW - MIN, NOW - 1, "d"), NOW, &c),
                     REMOTE_EXPIRED);
    assert_int_equal(
        parse_msg(r, "police", message("b3", reset, NOW + 5 * MIN, NOW + 6 * MIN, "d"), NOW, &c),
        REMOTE_OK);
    assert_int_equal(parse_msg(r, "police",
                               message("b4", reset, NOW + 5 * MIN + 1, NOW + 6 * MIN, "d"), NOW,
                               &c),
                     REMOTE_EXPIRED);
    assert_int_equal(
        parse_msg(r, "police", message("b5", reset, NOW - MIN, NOW - MIN + 60 * MIN, "d"), NOW, &c),
        REMOTE_OK);
    assert_int_equal(parse_msg(r, "police",
                               message("b6", reset, NOW - MIN, NOW - MIN + 60 * MIN + 1, "d"), NOW,
                               &c),
                     REMOTE_EXPIRED);
    /* issued == expires is a valid (if short) window. */
    assert_int_equal(parse_msg(r, "police", message("b7", reset, NOW, NOW, "d"), NOW, &c),
                     REMOTE_OK);
    log_set_level(LOG_LVL_INFO);
    remote_free(r);
}

static void test_replay_within_and_after_window(void **state)
{
    (void)state;
    struct remote *r = remote_new(16);
    struct remote_cmd c;
    char reason[512];
    log_set_level(LOG_LVL_ERR);
    const char *reset = RESET_Z1;
    const char *state_cmd = "\"command\":\"state\",";
    assert_int_equal(
        parse_msg(r, "police", message("r-1", reset, NOW - MIN, NOW + 4 * MIN, "d"), NOW, &c),
        REMOTE_OK);
    /* The same message again (a QoS 1 duplicate or a replay). */
    char *text = message("r-1", reset, NOW - MIN, NOW + 4 * MIN, "d");
    assert_int_equal(parse_text(r, "police", text, NOW + 1000, &c, reason, sizeof(reason)),
                     REMOTE_REPLAYED);
    free(text);
    assert_string_equal(c.id, "r-1");
    assert_string_equal(reason, "a command with id \"r-1\" was already accepted on this uplink and "
                                "is valid until 2026-11-23T05:08:03.123Z; send a new command "
                                "with a new id");
    /* The id is what counts, whatever the rest says. */
    assert_int_equal(
        parse_msg(r, "police", message("r-1", state_cmd, NOW, NOW + MIN, "e"), NOW + 2000, &c),
        REMOTE_REPLAYED);
    /* Up to its expiry included; another uplink keeps its own ids. */
    assert_int_equal(parse_msg(r, "police", message("r-1", state_cmd, NOW, NOW + 5 * MIN, "e"),
                               NOW + 4 * MIN, &c),
                     REMOTE_REPLAYED);
    assert_int_equal(
        parse_msg(r, "owner", message("r-1", state_cmd, NOW, NOW + MIN, "e"), NOW + 2000, &c),
        REMOTE_OK);
    /* Once the first could no longer be valid, the id is free again. */
    assert_int_equal(parse_msg(r, "police",
                               message("r-1", state_cmd, NOW + 4 * MIN, NOW + 9 * MIN, "e"),
                               NOW + 4 * MIN + 1, &c),
                     REMOTE_OK);
    /* A rejected message does not take its id. */
    assert_int_equal(
        parse_msg(r, "owner", message("r-2", reset, NOW, NOW + MIN, "e"), NOW + 3000, &c),
        REMOTE_UNAUTHORISED);
    assert_int_equal(parse_msg(r, "owner",
                               message("r-2",
                                       "\"command\":\"acknowledge\",\"target\""
                                       ":{\"scope\":\"all\"},",
                                       NOW, NOW + MIN, "e"),
                               NOW + 3000, &c),
                     REMOTE_OK);
    /* An expired replay is reported as expired. */
    assert_int_equal(
        parse_msg(r, "owner", message("r-2", state_cmd, NOW, NOW + MIN, "e"), NOW + MIN + 1, &c),
        REMOTE_EXPIRED);
    log_set_level(LOG_LVL_INFO);
    remote_free(r);
}

/*
 * Past the capacity the command issued first is forgotten, but neither it nor
 * anything issued before it is accepted until it has expired.
 */
static void test_capacity_eviction(void **state)
{
    (void)state;
    struct remote *r = remote_new(3);
    struct remote_cmd c;
    char reason[512];
    const char *st = "\"command\":\"state\",";
    log_set_level(LOG_LVL_ERR);
    for (int i = 1; i <= 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "k-%d", i);
        assert_int_equal(parse_msg(r, "watch", message(id, st, NOW + i * 1000, NOW + 10 * MIN, "d"),
                                   NOW + 10000, &c),
                         REMOTE_OK);
    }
    /* A fourth evicts k-1 (issued first). */
    assert_int_equal(
        parse_msg(r, "watch", message("k-4", st, NOW + 4000, NOW + 10 * MIN, "d"), NOW + 10000, &c),
        REMOTE_OK);
    char *text = message("k-1", st, NOW + 1000, NOW + 10 * MIN, "d");
    assert_int_equal(parse_text(r, "watch", text, NOW + 11000, &c, reason, sizeof(reason)),
                     REMOTE_REPLAYED);
    free(text);
    assert_non_null(strstr(reason, "cannot be told apart from a replay"));
    assert_non_null(strstr(reason, "2026-11-23T05:04:04.123Z"));
    /* k-2 is still remembered by id; a new id issued before the evicted one is refused too. */
    assert_int_equal(
        parse_msg(r, "watch", message("k-2", st, NOW + 9000, NOW + 10 * MIN, "d"), NOW + 11000, &c),
        REMOTE_REPLAYED);
    assert_int_equal(
        parse_msg(r, "watch", message("k-0", st, NOW + 500, NOW + 10 * MIN, "d"), NOW + 11000, &c),
        REMOTE_REPLAYED);
    /* A new command issued later is accepted (and evicts k-2, the first issued left). */
    assert_int_equal(
        parse_msg(r, "watch", message("k-5", st, NOW + 5000, NOW + 10 * MIN, "d"), NOW + 11000, &c),
        REMOTE_OK);
    assert_int_equal(
        parse_msg(r, "watch", message("k-2", st, NOW + 2000, NOW + 10 * MIN, "d"), NOW + 11000, &c),
        REMOTE_REPLAYED);
    /* Other uplinks are not affected by this one's floods. */
    assert_int_equal(
        parse_msg(r, "police", message("k-0", st, NOW + 500, NOW + 10 * MIN, "d"), NOW + 11000, &c),
        REMOTE_OK);
    /* After every evicted command has expired, old issue times are fine again. */
    assert_int_equal(parse_msg(r, "watch", message("k-1", st, NOW + 10 * MIN, NOW + 20 * MIN, "d"),
                               NOW + 10 * MIN + 1, &c),
                     REMOTE_OK);
    assert_int_equal(parse_msg(r, "watch",
                               message("k-6", st, NOW + 10 * MIN - 2000, NOW + 20 * MIN, "d"),
                               NOW + 10 * MIN + 1, &c),
                     REMOTE_OK);
    log_set_level(LOG_LVL_INFO);
    remote_free(r);
}

static void test_authorisation_per_uplink(void **state)
{
    (void)state;
    const char *extra[RCMD__COUNT] = {
        [RCMD_ACKNOWLEDGE] = "\"command\":\"acknowledge\",\"target\":{\"scope\":\"all\"},",
        [RCMD_SILENCE] = "\"command\":\"silence\",\"target\":{\"scope\":\"all\"},",
        [RCMD_RESET] = "\"command\":\"reset\",\"target\":{\"scope\":\"all\"},",
        [RCMD_DISABLE] = "\"command\":\"disable\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},"
                         "\"period_s\":60,",
        [RCMD_ENABLE] = "\"command\":\"enable\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},",
        [RCMD_TEST_ON] = "\"command\":\"test_on\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},"
                         "\"period_s\":60,",
        [RCMD_TEST_OFF] = "\"command\":\"test_off\",\"target\":{\"scope\":\"zone\",\"id\":\"Z1\"},",
        [RCMD_STATE] = "\"command\":\"state\",",
    };
    const char *uplinks[] = {"police", "owner", "watch", "service", "mute"};
    struct remote *r = remote_new(64);
    log_set_level(LOG_LVL_ERR);
    for (size_t u = 0; u < ARRAY_LEN(uplinks); u++) {
        unsigned mask = mask_of(uplinks[u]);
        for (int k = 0; k < RCMD__COUNT; k++) {
            char id[32];
            snprintf(id, sizeof(id), "a-%zu-%d", u, k);
            struct remote_cmd c;
            int rc = parse_msg(r, uplinks[u], message(id, extra[k], NOW, NOW + MIN, "d"), NOW, &c);
            int want = mask & CMDSET_BIT(k) ? REMOTE_OK : REMOTE_UNAUTHORISED;
            if (rc != want)
                fail_msg("uplink %s, %s: %d, expected %d", uplinks[u],
                         cmdset_name((enum remote_command)k), rc, want);
            if (rc == REMOTE_OK)
                assert_int_equal(strncmp(c.user, "uplink:", 7), 0);
        }
    }
    log_set_level(LOG_LVL_INFO);
    remote_free(r);
}

static cJSON *response_json(const char *name, char *text)
{
    assert_non_null(text);
    assert_null(strchr(text, '\n'));
    save(name, text);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    free(text);
    return j;
}

static const char *str_of(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static void test_responses(void **state)
{
    (void)state;
    /* A failed command: the engine's reason, Vietnamese and escapes kept. */
    cJSON *j = response_json("command_response-failed",
                             remote_response(cfg, "cmd-9", "failed", "invalid_target",
                                             "reset: no zone \"Z9\" in tầng 9\\", NOW, NULL));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "schema")->valueint, 1);
    assert_string_equal(str_of(j, "type"), "command_response");
    assert_string_equal(str_of(j, "id"), "cmd-9");
    assert_string_equal(str_of(j, "building"), "remote-test");
    assert_string_equal(str_of(j, "ts"), "2026-11-23T05:04:03.123Z");
    assert_string_equal(str_of(j, "status"), "failed");
    assert_string_equal(str_of(j, "reason"), "invalid_target");
    assert_string_equal(str_of(j, "detail"), "reset: no zone \"Z9\" in tầng 9\\");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "state")));
    assert_int_equal(cJSON_GetArraySize(j), 9);
    cJSON_Delete(j);

    /* done: reason null; a NULL detail is empty; an id that is not one becomes null. */
    j = response_json("command_response-done-plain",
                      remote_response(cfg, "bad id", "done", NULL, NULL, NOW, NULL));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "id")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "reason")));
    assert_string_equal(str_of(j, "detail"), "");
    cJSON_Delete(j);

    /* Broken UTF-8 in a detail is repaired, so the message always decodes. */
    j = response_json("command_response-bad-utf8",
                      remote_response(cfg, "", "rejected", "malformed", "cut \xE1\xBA", NOW, NULL));
    assert_string_equal(str_of(j, "detail"), "cut \xEF\xBF\xBD\xEF\xBF\xBD");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "id")));
    cJSON_Delete(j);

    /* A state that is not a JSON object (a cut reply) is never passed off as done. */
    log_set_level(LOG_LVL_ERR);
    j = response_json("command_response-state-unavailable",
                      remote_response(cfg, "s-1", "done", NULL, "", NOW, "ok {\"building\":\"rem"));
    assert_string_equal(str_of(j, "status"), "failed");
    assert_string_equal(str_of(j, "reason"), "state_unavailable");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "state")));
    cJSON_Delete(j);
    j = response_json("command_response-state-array",
                      remote_response(cfg, "s-2", "done", NULL, "", NOW, "[1]"));
    log_set_level(LOG_LVL_INFO);
    assert_string_equal(str_of(j, "reason"), "state_unavailable");
    cJSON_Delete(j);

    /* Arguments that break the contract. */
    errno = 0;
    assert_null(remote_response(cfg, "x", "ok", NULL, "", NOW, NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(remote_response(cfg, "x", "done", "malformed", "", NOW, NULL));
    assert_null(remote_response(cfg, "x", "rejected", NULL, "", NOW, NULL));
    assert_null(remote_response(cfg, "x", "failed", "Bad Code", "", NOW, NULL));
    assert_null(remote_response(NULL, "x", "done", NULL, "", NOW, NULL));

    for (int rc = REMOTE_MALFORMED; rc <= REMOTE_REPLAYED; rc++)
        assert_non_null(remote_reason_code(rc));
    assert_string_equal(remote_reason_code(REMOTE_UNAUTHORISED), "unauthorised");
    assert_null(remote_reason_code(REMOTE_OK));
}

/* Each rejection leaves one log line naming the uplink, the id and the reason. */
static void test_rejection_is_logged(void **state)
{
    (void)state;
    struct remote *r = remote_new(4);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    struct remote_cmd c;
    char reason[256];
    int rc1 = parse_text(r, "owner", HEAD RESET_Z1 TAIL, NOW, &c, reason, sizeof(reason));
    int rc2 = parse_text(r, "owner", "nonsense", NOW, &c, reason, sizeof(reason));
    int rc3 =
        parse_text(r, "owner", HEAD "\"command\":\"state\"," TAIL, NOW, &c, reason, sizeof(reason));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc1, REMOTE_UNAUTHORISED);
    assert_int_equal(rc2, REMOTE_MALFORMED);
    assert_int_equal(rc3, REMOTE_OK);
    char log[2048] = "";
    rewind(tmp);
    size_t n = fread(log, 1, sizeof(log) - 1, tmp);
    log[n] = '\0';
    fclose(tmp);
    assert_non_null(strstr(log, "remote command \"c-1\" on uplink owner rejected, unauthorised: "
                                "uplink \"owner\" may not give \"reset\""));
    assert_non_null(strstr(log, "remote command without a readable id on uplink owner rejected, "
                                "malformed: not valid JSON"));
    int lines = 0;
    for (const char *p = log; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    remote_free(r);
}

static void test_new_and_free(void **state)
{
    (void)state;
    errno = 0;
    assert_null(remote_new(0));
    assert_int_equal(errno, EINVAL);
    remote_free(NULL);
    struct remote_cmd c;
    char reason[64];
    assert_int_equal(remote_parse(NULL, "u", CMDSET_ALL, "{}", 2, NOW, &c, reason, sizeof(reason)),
                     REMOTE_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmdset_names_and_lists),
        cmocka_unit_test(test_config_commands_key),
        cmocka_unit_test(test_mapping_to_command_lines),
        cmocka_unit_test(test_rejections_with_reason_codes),
        cmocka_unit_test(test_expiry_boundaries),
        cmocka_unit_test(test_replay_within_and_after_window),
        cmocka_unit_test(test_capacity_eviction),
        cmocka_unit_test(test_authorisation_per_uplink),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_rejection_is_logged),
        cmocka_unit_test(test_new_and_free),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
