/*
 * Unit tests for the CAP 1.2 rendering: every document made here is
 * validated with xmllint against tests/fixtures/cap/cap-1.2.xsd and read back
 * with XPath (so escaping is checked by a real XML parser, not by string
 * matching): Vietnam's time with +07:00 and whole seconds, Actual only for a
 * real alarm, Test for every test, severity, parameters, area and circle,
 * free text with XML's special characters, broken UTF-8 and control
 * characters. The schema itself is shown to reject a wrong status, a time
 * without offset (or with Z or fractions) and a missing identifier. The
 * documents of a fire alarm and of a test alarm must equal the samples in
 * tests/fixtures/cap/, and the first is the example in docs/cap.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cap.h"
#include "cfg.h"
#include "event.h"
#include "util.h"

#define SCHEMA "tests/fixtures/cap/cap-1.2.xsd"
#define SAMPLES "tests/fixtures/cap/"
/* 2026-11-23T05:04:03.123Z, 12:04:03 in Hanoi */
#define T_WALL 1795410243123LL
#define UUID "3f2b8c1e-6a4d-4e2f-9b1a-0c5d7e8f9a10"

static struct cfg_bus buses[] = {{.id = "tcp1", .type = BUS_TCP, .host = "127.0.0.1", .port = 502}};
static struct cfg_device devices[] = {
    {.id = "smoke-1", .bus = 0, .unit = 1},
    {.id = "heat-1", .bus = 0, .unit = 2},
    {.id = "panel", .bus = 0, .unit = 247},
};
static struct cfg_zone zones[] = {
    {.id = "F3", .name = "Tầng 3 – hành lang", .floor = 3},
    {.id = "B1", .name = "Hầm B1", .floor = -1},
};
static struct cfg_detector detectors[] = {
    {.id = "F3-S1",
     .device = 0,
     .channel = 1,
     .zone = 0,
     .floor = 3,
     .location = "Hành lang phía Bắc",
     .type = DET_SMOKE},
    {.id = "B1-H1", .device = 1, .channel = 1, .zone = 1, .floor = -1, .type = DET_HEAT},
    {.id = "B1-P1", .device = 2, .channel = 1, .zone = 1, .floor = -1, .type = DET_PANEL_ZONE},
};

static struct cfg make_cfg(void)
{
    struct cfg c = {0};
    c.site.id = "tayho-hoasen-01";
    c.site.name = "Chung cư Hoa Sen";
    c.site.address = "12 Lạc Long Quân, Tây Hồ, Hà Nội";
    c.site.district = "Tây Hồ";
    c.site.latitude = 21.0678;
    c.site.longitude = 105.8183;
    c.buses = buses;
    c.nbuses = ARRAY_LEN(buses);
    c.devices = devices;
    c.ndevices = ARRAY_LEN(devices);
    c.zones = zones;
    c.nzones = ARRAY_LEN(zones);
    c.detectors = detectors;
    c.ndetectors = ARRAY_LEN(detectors);
    return c;
}

/* A smoke detector's fire alarm as the engine makes it, stamped. */
static struct event fire_alarm(void)
{
    struct event ev = {.kind = EV_FIRE_ALARM,
                       .source = SRC_DETECTOR,
                       .detector = 0,
                       .device = 0,
                       .bus = 0,
                       .has_zone = true,
                       .zone = 0,
                       .rule = "smoke_alarm_level",
                       .has_value = true,
                       .value = 2.6,
                       .has_level = true,
                       .level = 2.0,
                       .t = {.mono_ms = 1000, .wall_ms = T_WALL},
                       .seq = 42};
    snprintf(ev.detail, sizeof(ev.detail),
             "smoke value 2.60 %%/m reached the alarm level 2.00 %%/m");
    memcpy(ev.id, UUID, sizeof(UUID));
    return ev;
}

/* Run argv; its stdout and stderr into out (NUL-terminated, cut to outlen). Exit status. */
static int run(char *const argv[], char *out, size_t outlen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s\n", argv[0]);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    char sink[512];
    while ((got = read(fds[0], n + 1 < outlen ? out + n : sink,
                       n + 1 < outlen ? outlen - n - 1 : sizeof(sink))) > 0)
        if (n + 1 < outlen)
            n += (size_t)got;
    close(fds[0]);
    out[n] = '\0';
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* xml in a temporary file whose name is written to path (>= 64 bytes). */
static void to_file(const char *xml, char *path)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, 64, "%s/test_cap-XXXXXX", dir && strlen(dir) < 40 ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(xml);
    assert_int_equal(write(fd, xml, len), (ssize_t)len);
    close(fd);
}

/* xmllint's verdict on a document: 0 valid, 3 invalid, 1 not well formed. */
static int validate_file(const char *path, char *why, size_t whylen)
{
    char *argv[] = {"xmllint", "--noout", "--nonet", "--schema", SCHEMA, (char *)path, NULL};
    return run(argv, why, whylen);
}

static int validate(const char *xml, char *why, size_t whylen)
{
    char path[64];
    to_file(xml, path);
    int rc = validate_file(path, why, whylen);
    unlink(path);
    return rc;
}

static void assert_valid(const char *xml)
{
    assert_non_null(xml);
    char why[4096];
    int rc = validate(xml, why, sizeof(why));
    if (rc != 0)
        fail_msg("not valid against " SCHEMA " (xmllint exit %d): %s\n%s", rc, why, xml);
}

/*
 * The string value of the CAP element named by path, e.g. "info/senderName"
 * (each step matched by local name, in the CAP namespace), read by xmllint.
 * Caller frees.
 */
static char *xpath(const char *xml, const char *path)
{
    char expr[512] = "string(/*[local-name()='alert']";
    char *copy = xstrdup(path), *save = NULL;
    for (char *step = strtok_r(copy, "/", &save); step; step = strtok_r(NULL, "/", &save)) {
        char *pred = strchr(step, '[');
        size_t len = pred ? (size_t)(pred - step) : strlen(step);
        size_t at = strlen(expr);
        snprintf(expr + at, sizeof(expr) - at,
                 "/*[local-name()='%.*s' and "
                 "namespace-uri()='urn:oasis:names:tc:emergency:cap:1.2']%s",
                 (int)len, step, pred ? pred : "");
    }
    free(copy);
    strncat(expr, ")", sizeof(expr) - strlen(expr) - 1);
    char file[64];
    to_file(xml, file);
    char *out = xmalloc(65536);
    char *argv[] = {"xmllint", "--nonet", "--xpath", expr, file, NULL};
    int rc = run(argv, out, 65536);
    unlink(file);
    if (rc != 0)
        fail_msg("xmllint --xpath %s failed (%d): %s", expr, rc, out);
    size_t n = strlen(out);
    if (n > 0 && out[n - 1] == '\n')
        out[n - 1] = '\0';
    return out;
}

static void assert_field(const char *xml, const char *path, const char *want)
{
    char *got = xpath(xml, path);
    if (strcmp(got, want) != 0)
        fail_msg("%s is \"%s\", expected \"%s\" in:\n%s", path, got, want, xml);
    free(got);
}

static void assert_field_contains(const char *xml, const char *path, const char *part)
{
    char *got = xpath(xml, path);
    if (!strstr(got, part))
        fail_msg("%s \"%s\" lacks \"%s\"", path, got, part);
    free(got);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = xcalloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/*
 * xml must equal the sample SAMPLES name, which docs/cap.md shows. After a
 * deliberate change of the rendering, FIREGW_CAP_SAMPLES_UPDATE=1 rewrites
 * the samples (run from the top directory, then review the diff).
 */
static void check_sample(const char *name, const char *xml)
{
    char path[128];
    snprintf(path, sizeof(path), SAMPLES "%s", name);
    if (getenv("FIREGW_CAP_SAMPLES_UPDATE")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(xml, f);
        assert_int_equal(fclose(f), 0);
        return;
    }
    char *sample = read_text(path);
    if (strcmp(sample, xml) != 0)
        fail_msg("%s differs from the rendering (FIREGW_CAP_SAMPLES_UPDATE=1 rewrites it)", path);
    free(sample);
}

/* The first occurrence of from in s replaced by to; caller frees. */
static char *replaced(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    return xasprintf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

static void test_time_is_vietnam_local_whole_seconds(void **state)
{
    (void)state;
    char buf[CAP_TIME_LEN];
    cap_format_time(T_WALL, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-23T12:04:03+07:00");
    /* the local date turns at 17:00 UTC, the year too */
    cap_format_time(1798738200999LL, buf, sizeof(buf)); /* 2026-12-31T17:30:00.999Z */
    assert_string_equal(buf, "2027-01-01T00:30:00+07:00");
    cap_format_time(1798736399000LL, buf, sizeof(buf)); /* 2026-12-31T16:59:59Z */
    assert_string_equal(buf, "2026-12-31T23:59:59+07:00");
    /* seconds are cut, never rounded up into the next second */
    cap_format_time(T_WALL - 123 + 999, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-23T12:04:03+07:00");
    cap_format_time(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T07:00:00+07:00");
    /* a broken clock still gives the form the schema wants */
    cap_format_time(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T06:59:59+07:00");
    cap_format_time(INT64_MIN, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00+07:00");
    cap_format_time(INT64_MAX, buf, sizeof(buf));
    assert_int_equal(strlen(buf), CAP_TIME_LEN - 1);
    assert_string_equal(buf + 19, "+07:00");
    /* a short buffer is cut, never overrun */
    char small[8];
    cap_format_time(T_WALL, small, sizeof(small));
    assert_string_equal(small, "2026-11");
}

static void test_fire_alarm_document(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = fire_alarm();
    assert_true(cap_wanted(&ev));
    char *xml = cap_alert(&c, &ev);
    assert_valid(xml);
    assert_true(strncmp(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 39) == 0);
    assert_non_null(strstr(xml, "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">"));
    assert_field(xml, "identifier", UUID);
    assert_field(xml, "sender", "firegw@tayho-hoasen-01");
    assert_field(xml, "sent", "2026-11-23T12:04:03+07:00");
    assert_field(xml, "status", "Actual");
    assert_field(xml, "msgType", "Alert");
    assert_field(xml, "scope", "Restricted");
    /* scope Restricted needs a restriction (a rule XML Schema 1.0 cannot state) */
    assert_field_contains(xml, "restriction", "fire police and building management");
    assert_field(xml, "note", "");
    assert_int_equal(count(xml, "<info>"), 1);
    assert_field(xml, "info/language", "vi-VN");
    assert_field(xml, "info/category", "Fire");
    assert_field(xml, "info/event", "Báo cháy (fire alarm)");
    assert_field(xml, "info/urgency", "Immediate");
    assert_field(xml, "info/severity", "Severe");
    assert_field(xml, "info/certainty", "Observed");
    assert_field(xml, "info/senderName", "Chung cư Hoa Sen");
    assert_field(xml, "info/headline",
                 "BÁO CHÁY (FIRE ALARM) – Chung cư Hoa Sen, tầng (floor) 3, vùng (zone) F3");
    char *desc = xpath(xml, "info/description");
    assert_non_null(strstr(desc, "Đầu báo khói (smoke detector) F3-S1, tầng (floor) 3, vùng "
                                 "(zone) F3 “Tầng 3 – hành lang”, vị trí (location): Hành lang "
                                 "phía Bắc."));
    assert_non_null(strstr(desc, "Giá trị (value) 2.60 %/m, ngưỡng (level) 2.00 %/m."));
    assert_non_null(strstr(desc, "Quy tắc (rule): smoke_alarm_level."));
    assert_non_null(strstr(desc, "Chi tiết (detail): smoke value 2.60 %/m reached"));
    assert_null(strstr(desc, "TEST"));
    free(desc);
    assert_field(xml, "info/parameter[1]/valueName", "seq");
    assert_field(xml, "info/parameter[1]/value", "42");
    assert_field(xml, "info/parameter[2]/valueName", "detector");
    assert_field(xml, "info/parameter[2]/value", "F3-S1");
    assert_field(xml, "info/parameter[3]/valueName", "zone");
    assert_field(xml, "info/parameter[3]/value", "F3");
    assert_field(xml, "info/parameter[4]/valueName", "rule");
    assert_field(xml, "info/parameter[4]/value", "smoke_alarm_level");
    assert_field(xml, "info/area/areaDesc", "12 Lạc Long Quân, Tây Hồ, Hà Nội");
    assert_field(xml, "info/area/circle", "21.0678,105.8183 0");

    /* the sample in tests/fixtures/cap/ (and docs/cap.md) is this very document */
    check_sample("fire-alarm.xml", xml);
    char *doc = read_text("docs/cap.md");
    if (!strstr(doc, xml))
        fail_msg("the example in docs/cap.md is not " SAMPLES "fire-alarm.xml");
    free(doc);
    free(xml);
}

static void test_test_alarm_is_never_actual(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = fire_alarm();
    ev.kind = EV_TEST_ALARM;
    ev.test = true;
    char *xml = cap_alert(&c, &ev);
    assert_valid(xml);
    assert_field(xml, "status", "Test");
    assert_null(strstr(xml, "Actual"));
    assert_field_contains(xml, "note", "not a real fire");
    assert_field(xml, "info/event", "Báo cháy thử nghiệm (test alarm)");
    assert_field_contains(xml, "info/headline", "(TEST, NOT A REAL FIRE)");
    assert_field_contains(xml, "info/description", "(TEST – NOT A REAL FIRE)");
    check_sample("test-alarm.xml", xml);
    free(xml);

    /* a fire alarm or confirmed fire flagged test, and a test alarm missing its flag */
    enum ev_kind kinds[] = {EV_FIRE_ALARM, EV_FIRE_CONFIRMED, EV_TEST_ALARM};
    bool flags[] = {true, true, false};
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        ev.kind = kinds[i];
        ev.test = flags[i];
        xml = cap_alert(&c, &ev);
        assert_valid(xml);
        assert_field(xml, "status", "Test");
        assert_null(strstr(xml, "Actual"));
        assert_field_contains(xml, "info/headline", "TEST");
        free(xml);
    }
}

static void test_fire_confirmed_is_extreme(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = fire_alarm();
    ev.kind = EV_FIRE_CONFIRMED;
    ev.source = SRC_ZONE;
    ev.rule = "coincidence_two_detectors";
    ev.has_value = ev.has_level = false;
    snprintf(ev.detail, sizeof(ev.detail), "fire confirmed: F3-S1 after F3-S2, 4.0 s apart");
    char *xml = cap_alert(&c, &ev);
    assert_valid(xml);
    assert_field(xml, "status", "Actual");
    assert_field(xml, "info/severity", "Extreme");
    assert_field(xml, "info/event", "Cháy đã xác nhận (fire confirmed)");
    assert_field_contains(xml, "info/headline", "CHÁY ĐÃ XÁC NHẬN (FIRE CONFIRMED)");
    assert_field_contains(xml, "info/description", "fire confirmed: F3-S1 after F3-S2");
    assert_field(xml, "info/parameter[4]/value", "coincidence_two_detectors");
    free(xml);
}

static void test_only_alarms_are_rendered(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = fire_alarm();
    for (int k = 0; k < EV__COUNT; k++) {
        ev.kind = (enum ev_kind)k;
        bool want = k == EV_FIRE_ALARM || k == EV_FIRE_CONFIRMED || k == EV_TEST_ALARM;
        assert_int_equal(cap_wanted(&ev), want);
        char *xml = cap_alert(&c, &ev);
        assert_int_equal(xml != NULL, want);
        free(xml);
    }
    assert_false(cap_wanted(NULL));
    ev.kind = EV_FIRE_ALARM;
    assert_null(cap_alert(NULL, &ev));
}

static void test_free_text_is_escaped(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    c.site.name = "Nhà \"A&B\" <Tây> 'Hồ' ]]> \xff end";
    c.site.address = "Số 1 & 2 <ngõ> \x01\r\ntab\there \xef\xbf\xbf";
    struct cfg_zone z[] = {{.id = "F3", .name = "</name><status>Actual</status>", .floor = 3}};
    struct cfg_detector d[] = {detectors[0]};
    d[0].location = "Cửa \"sau\" & <kho> 'B'";
    c.zones = z;
    c.nzones = 1;
    c.detectors = d;
    c.ndetectors = 1;
    struct event ev = fire_alarm();
    ev.kind = EV_TEST_ALARM;
    ev.test = true;
    /* a detail filling its array with no terminating NUL */
    memset(ev.detail, '<', sizeof(ev.detail));
    char *xml = cap_alert(&c, &ev);
    assert_valid(xml);
    /* read back by a parser: exactly the text, with U+FFFD for what XML cannot carry */
    assert_field(xml, "info/senderName", "Nhà \"A&B\" <Tây> 'Hồ' ]]> \xef\xbf\xbd end");
    assert_field(xml, "info/area/areaDesc",
                 "Số 1 & 2 <ngõ> \xef\xbf\xbd\r\ntab\there \xef\xbf\xbd");
    assert_field(xml, "status", "Test");
    assert_field_contains(xml, "info/description", "Cửa \"sau\" & <kho> 'B'");
    assert_field_contains(xml, "info/description", "</name><status>Actual</status>");
    char detail[sizeof(ev.detail) + 1];
    memset(detail, '<', sizeof(ev.detail));
    detail[sizeof(ev.detail)] = '\0';
    assert_field_contains(xml, "info/description", detail);
    assert_int_equal(count(xml, "<status>"), 1);
    free(xml);
}

static void test_missing_parts_still_valid(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    c.site.latitude = 0;
    c.site.longitude = 0;
    c.site.address = "";
    struct event ev = fire_alarm();
    /* a panel zone: no reading, no location */
    ev.detector = 2;
    ev.zone = 1;
    ev.has_value = ev.has_level = false;
    ev.rule = "panel_zone_alarm";
    char *xml = cap_alert(&c, &ev);
    assert_valid(xml);
    assert_null(strstr(xml, "<circle>"));
    assert_field(xml, "info/area/areaDesc", "Chung cư Hoa Sen");
    assert_field_contains(xml, "info/headline", "tầng (floor) -1, vùng (zone) B1");
    assert_field_contains(xml, "info/description", "Kênh tủ báo cháy (panel zone) B1-P1");
    char *desc = xpath(xml, "info/description");
    assert_null(strstr(desc, "Giá trị"));
    assert_null(strstr(desc, "vị trí"));
    free(desc);
    free(xml);

    /* a heat reading is in degrees Celsius; only a level, no value */
    ev.detector = 1;
    ev.has_level = true;
    ev.level = 58;
    c.site.latitude = -0.5;
    c.site.longitude = 0.0000004;
    xml = cap_alert(&c, &ev);
    assert_valid(xml);
    assert_field_contains(xml, "info/description", "Ngưỡng (level) 58.00 °C.");
    assert_field(xml, "info/area/circle", "-0.5,0 0");
    free(xml);

    /* broken indexes, no rule, no detail, not stamped: named by site and number, valid */
    ev.detector = 99;
    ev.zone = 7;
    ev.rule = NULL;
    ev.detail[0] = '\0';
    ev.id[0] = '\0';
    c.site.name = NULL;
    xml = cap_alert(&c, &ev);
    assert_valid(xml);
    assert_field(xml, "identifier", "tayho-hoasen-01-42");
    assert_field(xml, "info/senderName", "tayho-hoasen-01");
    assert_int_equal(count(xml, "<parameter>"), 1);
    free(xml);
}

/* The schema is strict where CAP is: these must fail as invalid, not as broken XML. */
static void test_schema_rejects_broken_documents(void **state)
{
    (void)state;
    struct cfg c = make_cfg();
    struct event ev = fire_alarm();
    char *good = cap_alert(&c, &ev);
    assert_valid(good);
    static const char *const cases[][2] = {
        {"<status>Actual</status>", "<status>Real</status>"},
        {"<status>Actual</status>", "<status>actual</status>"},
        {"2026-11-23T12:04:03+07:00", "2026-11-23T12:04:03"},
        {"2026-11-23T12:04:03+07:00", "2026-11-23T05:04:03Z"},
        {"2026-11-23T12:04:03+07:00", "2026-11-23T12:04:03.123+07:00"},
        {"<identifier>" UUID "</identifier>\n", ""},
        {"<identifier>" UUID, "<identifier>two words"},
        {"<sender>firegw@tayho-hoasen-01", "<sender>firegw,tayho"},
        {"<msgType>Alert</msgType>", "<msgType>Alarm</msgType>"},
        {"<category>Fire</category>", "<category>Blaze</category>"},
        {"<severity>Severe</severity>", "<severity>High</severity>"},
        {"21.0678,105.8183 0", "21.0678 105.8183"},
        /* out of the order the data dictionary gives */
        {"<msgType>Alert</msgType>\n  <scope>Restricted</scope>",
         "<scope>Restricted</scope>\n  <msgType>Alert</msgType>"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *bad = replaced(good, cases[i][0], cases[i][1]);
        char why[4096];
        int rc = validate(bad, why, sizeof(why));
        if (rc != 3)
            fail_msg("case %zu (%s -> %s): xmllint exit %d, expected 3 (invalid): %s", i,
                     cases[i][0], cases[i][1], rc, why);
        free(bad);
    }
    free(good);

    /* the sample documents: good-* and the samples pass, bad-* fail as invalid */
    static const char *const files[][2] = {
        {"fire-alarm.xml", "0"},         {"test-alarm.xml", "0"},        {"bad-status.xml", "3"},
        {"bad-sent-no-offset.xml", "3"}, {"bad-no-identifier.xml", "3"}, {"bad-sent-zulu.xml", "3"},
    };
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        char why[4096], path[128];
        snprintf(path, sizeof(path), SAMPLES "%s", files[i][0]);
        int rc = validate_file(path, why, sizeof(why));
        if (rc != atoi(files[i][1]))
            fail_msg("%s: xmllint exit %d, expected %s: %s", path, rc, files[i][1], why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_is_vietnam_local_whole_seconds),
        cmocka_unit_test(test_fire_alarm_document),
        cmocka_unit_test(test_test_alarm_is_never_actual),
        cmocka_unit_test(test_fire_confirmed_is_extreme),
        cmocka_unit_test(test_only_alarms_are_rendered),
        cmocka_unit_test(test_free_text_is_escaped),
        cmocka_unit_test(test_missing_parts_still_valid),
        cmocka_unit_test(test_schema_rejects_broken_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
