/*
 * Unit tests for gateway/cfg.c: the example site loads with every reference
 * resolved, defaults come from the option table, every class of bad config is
 * refused with its exact "file:line: message" (all of them, not just the
 * first), --set overrides apply and fail like file lines, and the reference
 * table in docs/config.md matches the code.
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
#include "util.h"

#define FIX "tests/fixtures/"
#define EXAMPLE "config/tayho-apartment.conf"
#define ERRLEN 16384

static char err[ERRLEN];

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("missing line \"%s\" in:\n%s", line, text);
}

/* Load path (with overrides) expecting failure with exactly the lines in want. */
static void expect_errors(const char *path, const char *const *sets, size_t nsets,
                          const char *const *want, size_t nwant)
{
    struct cfg *cfg = cfg_load_ex(path, sets, nsets, err, sizeof(err));
    if (cfg) {
        cfg_free(cfg);
        fail_msg("%s loaded, expected %zu errors", path, nwant);
    }
    for (size_t i = 0; i < nwant; i++)
        assert_line(err, want[i]);
    if (count_lines(err) != nwant)
        fail_msg("expected %zu error lines, got:\n%s", nwant, err);
}

static struct cfg *load_ok(const char *path, const char *const *sets, size_t nsets)
{
    struct cfg *cfg = cfg_load_ex(path, sets, nsets, err, sizeof(err));
    if (!cfg)
        fail_msg("%s did not load:\n%s", path, err);
    assert_string_equal(err, "");
    return cfg;
}

static const struct cfg_detector *det(const struct cfg *cfg, const char *id)
{
    long i = cfg_find_detector(cfg, id);
    if (i < 0)
        fail_msg("no detector %s", id);
    return &cfg->detectors[i];
}

static void test_example_site(void **state)
{
    (void)state;
    struct cfg *cfg = load_ok(EXAMPLE, NULL, 0);
    assert_string_equal(cfg->site.id, "tayho-hoasen-01");
    assert_string_equal(cfg->site.district, "Tây Hồ");
    assert_non_null(strstr(cfg->site.address, "Lạc Long Quân"));
    assert_true(cfg->site.latitude > 21.0 && cfg->site.latitude < 21.1);
    assert_true(cfg->site.longitude > 105.8 && cfg->site.longitude < 105.9);
    assert_int_equal(cfg->nbuses, 2);
    assert_int_equal(cfg->nzones, 11);
    assert_int_equal(cfg->ndetectors, 60);
    /* the panel plus one implicit device per point detector */
    assert_int_equal(cfg->ndevices, 57);
    assert_int_equal(cfg->profiles.count, 4);
    assert_int_equal(cfg->nuplinks, 2);
    assert_int_equal(cfg->gateway.nprofile_dirs, 1);
    size_t dl = strlen(cfg->gateway.profile_dirs[0]);
    assert_true(dl > 17 &&
                strcmp(cfg->gateway.profile_dirs[0] + dl - 17, "/sensors/profiles") == 0);

    const struct cfg_bus *a = &cfg->buses[cfg_find_bus(cfg, "rs485-a")];
    assert_int_equal(a->type, BUS_RTU);
    assert_string_equal(a->device, "/dev/ttyUSB0");
    assert_int_equal(a->baud, 9600);
    assert_int_equal(a->parity, 'N');
    assert_int_equal(a->data_bits, 8);
    assert_int_equal(a->stop_bits, 1);
    assert_true(a->rs485);
    assert_int_equal(a->timeout_ms, 300);
    const struct cfg_bus *b = &cfg->buses[cfg_find_bus(cfg, "tcp-b")];
    assert_int_equal(b->type, BUS_TCP);
    assert_string_equal(b->host, "192.168.10.20");
    assert_int_equal(b->port, 502);

    const struct cfg_device *panel = &cfg->devices[cfg_find_device(cfg, "panel")];
    assert_int_equal(panel->unit, 100);
    assert_int_equal(panel->timeout_ms, 1000);
    assert_string_equal(panel->profile->name, "panel-zone-module");

    const struct cfg_detector *d = det(cfg, "F3-LIFT");
    assert_string_equal(cfg->devices[d->device].id, "rs485-a/33");
    assert_int_equal(cfg->devices[d->device].timeout_ms, 300);
    assert_int_equal(d->type, DET_SMOKE);
    assert_int_equal(d->floor, 3);
    assert_string_equal(cfg->zones[d->zone].id, "F3");
    assert_true(d->thresholds.prealarm == 1.5 && d->thresholds.alarm == 2.0 &&
                d->thresholds.hysteresis == 0.3);

    d = det(cfg, "F1-GEN");
    assert_int_equal(d->type, DET_HEAT);
    assert_string_equal(cfg->devices[d->device].profile->name, "heat-485-float");
    assert_true(d->thresholds.prealarm == 60 && d->thresholds.alarm == 68 &&
                d->thresholds.hysteresis == 3);

    d = det(cfg, "F7-REFUSE");
    assert_int_equal(d->type, DET_HEAT);
    assert_string_equal(cfg->devices[d->device].id, "tcp-b/76");
    assert_true(d->thresholds.alarm == 58);
    assert_int_equal(d->no_response_ms, 30000);

    d = det(cfg, "P-SHOP-L");
    assert_int_equal(d->type, DET_PANEL_ZONE);
    assert_int_equal(d->channel, 3);
    assert_ptr_equal(&cfg->devices[d->device], panel);
    assert_string_equal(cfg->zones[d->zone].id, "SHOPS");
    assert_int_equal(d->floor, 1);
    assert_int_equal(det(cfg, "P-B1A")->floor, -1);

    const struct cfg_uplink *u = &cfg->uplinks[0];
    assert_string_equal(u->id, "district");
    assert_int_equal(u->role, UPLINK_FIRE_POLICE);
    assert_string_equal(u->client_id, "firegw-tayho-hoasen-01-district");
    assert_string_equal(u->topic_prefix, "firegw/tayho-hoasen-01");
    assert_string_equal(u->password, "change-me #district");
    u = &cfg->uplinks[1];
    assert_int_equal(u->role, UPLINK_OWNER);
    assert_null(u->username);
    assert_int_equal(u->heartbeat_ms, cfg->gateway.heartbeat_ms);
    cfg_free(cfg);
}

static void test_defaults_from_table(void **state)
{
    (void)state;
    struct cfg *cfg = load_ok(FIX "good-minimal.conf", NULL, 0);
    assert_string_equal(cfg->site.address, "");
    assert_string_equal(cfg->gateway.state_dir, "/var/lib/firegw");
    assert_string_equal(cfg->gateway.log_level, "info");
    assert_int_equal(cfg->gateway.heartbeat_ms, 60000);
    assert_true(cfg->defaults.smoke.prealarm == 1.5 && cfg->defaults.smoke.alarm == 2.0 &&
                cfg->defaults.smoke.hysteresis == 0.3);
    assert_true(cfg->defaults.heat.prealarm == 50 && cfg->defaults.heat.alarm == 58 &&
                cfg->defaults.heat.hysteresis == 3);
    assert_int_equal(cfg->defaults.no_response_ms, 30000);
    assert_int_equal(cfg->defaults.lifecheck_ms, 30000);
    const struct cfg_bus *b = &cfg->buses[0];
    assert_int_equal(b->baud, 9600);
    assert_int_equal(b->parity, 'N');
    assert_int_equal(b->data_bits, 8);
    assert_int_equal(b->stop_bits, 1);
    assert_false(b->rs485);
    assert_int_equal(b->poll_interval_ms, 200);
    assert_int_equal(b->timeout_ms, 500);
    assert_int_equal(b->retries, 1);
    assert_int_equal(b->backoff_min_ms, 5000);
    assert_int_equal(b->backoff_max_ms, 60000);
    assert_int_equal(b->reconnect_min_ms, 1000);
    assert_int_equal(b->reconnect_max_ms, 30000);
    assert_int_equal(b->max_gap, 8);
    assert_int_equal(b->max_in_flight, 1); /* rtu: one at a time */
    assert_null(b->host);
    const struct cfg_device *dev = &cfg->devices[0];
    assert_string_equal(dev->id, "a/1");
    assert_int_equal(dev->fail_after, 3);
    assert_int_equal(dev->timeout_ms, 500);
    assert_int_equal(dev->retries, 1);
    const struct cfg_detector *d = &cfg->detectors[0];
    assert_int_equal(d->channel, 1);
    assert_int_equal(d->floor, 1);
    assert_string_equal(d->location, "");
    assert_int_equal(d->no_response_ms, 30000);
    const struct cfg_uplink *u = &cfg->uplinks[0];
    assert_int_equal(u->port, 1883);
    assert_int_equal(u->keepalive_ms, 30000);
    assert_int_equal(u->heartbeat_ms, 60000);
    assert_int_equal(u->max_buffered, 100000);
    assert_string_equal(u->client_id, "firegw-fx-min-u");
    cfg_free(cfg);
}

static void test_unknown_keys_and_sections(void **state)
{
    (void)state;
    const char *want[] = {
        FIX "bad-unknown-key.conf:5: site: unknown key \"colour\" (expected one of: id, name, "
            "address, district, latitude, longitude)",
        FIX "bad-unknown-key.conf:13: bus \"a\": baud applies to rtu buses only; this bus is tcp",
        FIX "bad-unknown-key.conf:15: unknown section [floor] (expected site, gateway, defaults, "
            "bus, device, zone, detector, uplink or web)",
    };
    expect_errors(FIX "bad-unknown-key.conf", NULL, 0, want, ARRAY_LEN(want));
}

static void test_unit_and_serial_ranges(void **state)
{
    (void)state;
    const char *want[] = {
        FIX "bad-unit-range.conf:12: bus \"rs485-a\": baud \"9601\" is not a standard rate (1200, "
            "2400, 4800, 9600, 19200, 38400, 57600, 115200)",
        FIX "bad-unit-range.conf:13: bus \"rs485-a\": parity \"mark\" is not one of none, even, "
            "odd",
        FIX "bad-unit-range.conf:14: bus \"rs485-a\": data_bits \"9\" is not a data bit count (7, "
            "8)",
        FIX "bad-unit-range.conf:22: detector \"D1\": unit \"0\" is not in 1..247 (bus "
            "\"rs485-a\" is rtu)",
        FIX "bad-unit-range.conf:28: detector \"D2\": unit \"248\" is not in 1..247 (bus "
            "\"rs485-a\" is rtu)",
        FIX "bad-unit-range.conf:34: detector \"D3\": unit \"256\" is not an integer in 0..255",
    };
    expect_errors(FIX "bad-unit-range.conf", NULL, 0, want, ARRAY_LEN(want));
}

static void test_duplicates(void **state)
{
    (void)state;
    const char *want[] = {
        FIX "bad-dup-detector.conf:24: detector \"D2\": device \"a/1\" channel 1 is already "
            "detector \"D1\" (line 18)",
        FIX "bad-dup-detector.conf:33: detector \"D3\": profile \"heat-485\" differs from profile "
            "\"optical-smoke-485\" of detector \"D1\" (line 18) on the same bus \"a\" unit 1",
        FIX "bad-dup-detector.conf:36: zone \"Z1\" is already defined on line 14",
        FIX "bad-dup-detector.conf:44: uplink \"u\": duplicate key \"port\" (first on line 43)",
    };
    expect_errors(FIX "bad-dup-detector.conf", NULL, 0, want, ARRAY_LEN(want));
}

static void test_missing_required(void **state)
{
    (void)state;
    const char *want[] = {
        FIX "bad-missing-required.conf:2: site: missing required key \"id\"",
        FIX "bad-missing-required.conf:8: bus \"a\": missing required key \"type\"",
        FIX "bad-missing-required.conf:11: bus \"b\": missing required key \"host\"",
        FIX "bad-missing-required.conf:14: zone \"Z1\": missing required key \"floor\"",
        FIX "bad-missing-required.conf:17: detector \"D1\": missing \"profile\": give device = ID, "
            "or bus, unit and profile",
        FIX "bad-missing-required.conf:22: detector \"D2\": missing \"device\": give device = ID, "
            "or bus, unit and profile",
        FIX "bad-missing-required.conf:25: uplink \"u\": missing required key \"role\"",
    };
    expect_errors(FIX "bad-missing-required.conf", NULL, 0, want, ARRAY_LEN(want));
}

static void test_thresholds(void **state)
{
    (void)state;
    const char *want[] = {
        FIX "bad-thresholds.conf:11: defaults: heat_prealarm 60 is not below heat_alarm 58",
        FIX "bad-thresholds.conf:32: detector \"S1\": prealarm 2.5 is not below alarm 2",
        FIX "bad-thresholds.conf:39: detector \"S2\": hysteresis 1.5 is not between 0 and "
            "prealarm 1.5",
        FIX "bad-thresholds.conf:47: detector \"S3\": alarm 22 is above 20 %/m, the highest value "
            "profile \"optical-smoke-485\" reports; the detector could never raise a fire alarm",
        FIX "bad-thresholds.conf:51: detector \"P1\": channel 17 is beyond the 16 channels of "
            "profile \"panel-zone-module\"",
        FIX "bad-thresholds.conf:58: detector \"P2\": alarm applies to smoke and heat detectors "
            "only; profile \"panel-zone-module\" is a panel",
    };
    expect_errors(FIX "bad-thresholds.conf", NULL, 0, want, ARRAY_LEN(want));
}

static void test_references(void **state)
{
    (void)state;
    struct cfg *cfg = cfg_load(FIX "bad-refs.conf", err, sizeof(err));
    assert_null(cfg);
    assert_line(err,
                FIX "bad-refs.conf:14: device \"m1\": bus \"nowhere\" is not a declared [bus]");
    const char *nf = FIX "bad-refs.conf:25: detector \"D1\": profile \"no-such-model\" not found: "
                         "no no-such-model.profile in /";
    assert_non_null(strstr(err, nf));
    assert_line(err, FIX "bad-refs.conf:32: detector \"D2\": zone \"Z9\" is not a declared [zone]");
    assert_line(err, FIX "bad-refs.conf:35: detector \"D3\": device \"m2\" is not a declared "
                         "[device]");
    assert_line(err, FIX "bad-refs.conf:40: detector \"D4\": give either device, or bus, unit and "
                         "profile; not both");
    assert_line(err, FIX "bad-refs.conf:44: uplink \"u\": role \"police\" is not one of "
                         "fire_police, owner, other");
    assert_line(err, FIX "bad-refs.conf:46: uplink \"u\": topic_prefix \"firegw/+/x\" must not "
                         "contain '+' or '#' nor end with '/'");
    assert_int_equal(count_lines(err), 7);
}

static void test_syntax_errors_in_file_order(void **state)
{
    (void)state;
    const char *want[] = {
        FIX "bad-syntax.conf:5: expected \"key = value\", \"[section]\" or \"# comment\", found "
            "\"this line has no equals sign\"",
        FIX "bad-syntax.conf:6: quoted value without a closing '\"'",
        FIX "bad-syntax.conf:7: section header without a closing ']'",
        FIX "bad-syntax.conf:8: only \\\" and \\\\ are escapes in a quoted value",
        FIX "bad-syntax.conf: no [detector] section; a gateway that watches nothing would report "
            "\"all normal\"",
        FIX "bad-syntax.conf: no [uplink] section; at least one MQTT uplink is required",
    };
    expect_errors(FIX "bad-syntax.conf", NULL, 0, want, ARRAY_LEN(want));
    /* Sorted by line, whole-file problems last. */
    assert_true(strncmp(err, want[0], strlen(want[0])) == 0);
}

static void test_bad_profile_reported_once(void **state)
{
    (void)state;
    assert_null(cfg_load(FIX "bad-uses-bad-profile.conf", err, sizeof(err)));
    assert_non_null(strstr(err, FIX "bad-uses-bad-profile.conf:21: detector \"D1\": profile "
                                    "\"bad-profile-no-value\" ("));
    assert_non_null(strstr(err, "/tests/fixtures/bad-profile-no-value.profile: a smoke profile "
                                "needs a point with role value\n"));
    /* D2 uses the same broken profile: no second report. */
    assert_int_equal(count_lines(err), 2);
}

static void test_overrides_apply(void **state)
{
    (void)state;
    const char *sets[] = {
        "bus.rs485-a.device=/tmp/demo/ttyA",
        "bus.tcp-b.host=127.0.0.1",
        "bus.tcp-b.port=15020",
        "uplink.district.host=127.0.0.1",
        "uplink.district.port=18830",
        "gateway.state_dir=/tmp/firegw-state",
        "detector.F1-GEN.alarm=70",
        "site.name=Tòa nhà thử",
        "defaults.no_response=5s",
        "gateway.heartbeat=2s",
    };
    struct cfg *cfg = load_ok(EXAMPLE, sets, ARRAY_LEN(sets));
    assert_string_equal(cfg->buses[0].device, "/tmp/demo/ttyA");
    assert_string_equal(cfg->buses[1].host, "127.0.0.1");
    assert_int_equal(cfg->buses[1].port, 15020);
    assert_string_equal(cfg->uplinks[0].host, "127.0.0.1");
    assert_int_equal(cfg->uplinks[0].port, 18830);
    assert_string_equal(cfg->gateway.state_dir, "/tmp/firegw-state");
    assert_true(det(cfg, "F1-GEN")->thresholds.alarm == 70);
    assert_string_equal(cfg->site.name, "Tòa nhà thử");
    assert_int_equal(det(cfg, "F2-LIFT")->no_response_ms, 5000);
    /* district sets its own heartbeat; owner follows the gateway's */
    assert_int_equal(cfg->uplinks[0].heartbeat_ms, 60000);
    assert_int_equal(cfg->uplinks[1].heartbeat_ms, 2000);
    cfg_free(cfg);
}

static void test_override_ids_with_dots(void **state)
{
    (void)state;
    const char *text = "[site]\nid = s\nname = S\n[gateway]\nprofile_dir = ../../sensors/profiles\n"
                       "[bus b.1]\ntype = tcp\nhost = 10.0.0.1\n[zone z]\nname = Z\nfloor = 0\n"
                       "[detector hall.north.2]\nbus = b.1\nunit = 0\nprofile = heat-485\n"
                       "zone = z\n[uplink u]\nrole = other\nhost = h\n";
    struct cfg *cfg = cfg_load_string(text, FIX "inline.conf", err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->devices[0].id, "b.1/0");
    cfg_free(cfg);
    /* overrides need a file; the example has no dotted ids, so check the split on it */
    const char *sets[] = {"detector.F1-GEN.location=Phòng máy", "detector.F1.GEN.location=x"};
    expect_errors(EXAMPLE, sets, 2,
                  (const char *[]){"--set 2: no [detector F1.GEN] section in " EXAMPLE}, 1);
}

static void test_override_errors(void **state)
{
    (void)state;
    const char *sets[] = {
        "bus.no-such-bus.port=1",
        "bus.tcp-b.baud=9600",
        "uplink.owner.port=abc",
        "site.colour=red",
        "nonsense",
        "zone.F1=3",
        "site.x.id=3",
        "bus.rs485-a.baud=9601",
        "detector.F2-LIFT.alarm=25",
    };
    const char *want[] = {
        "--set 1: no [bus no-such-bus] section in " EXAMPLE,
        "--set 2: bus \"tcp-b\": baud applies to rtu buses only; this bus is tcp",
        "--set 3: uplink \"owner\": port \"abc\" is not an integer in 1..65535",
        "--set 4: site: unknown key \"colour\" (expected one of: id, name, address, district, "
        "latitude, longitude)",
        "--set 5: expected SECTION.KEY=VALUE or SECTION.ID.KEY=VALUE, got \"nonsense\"",
        "--set 6: [zone] sections have ids: write zone.ID.F1=VALUE",
        "--set 7: [site] has no id: write site.KEY=VALUE",
        "--set 8: bus \"rs485-a\": baud \"9601\" is not a standard rate (1200, 2400, 4800, 9600, "
        "19200, 38400, 57600, 115200)",
        "--set 9: detector \"F2-LIFT\": alarm 25 is above 20 %/m, the highest value profile "
        "\"optical-smoke-485\" reports; the detector could never raise a fire alarm",
    };
    expect_errors(EXAMPLE, sets, ARRAY_LEN(sets), want, ARRAY_LEN(want));
}

static void test_override_replaces_profile_dir(void **state)
{
    (void)state;
    /* The file's profile_dir is replaced, not added to: only the override is checked. */
    const char *bad[] = {"gateway.profile_dir=/nonexistent-firegw"};
    const char *want[] = {"--set 1: gateway: profile_dir \"/nonexistent-firegw\" "
                          "(/nonexistent-firegw) is not a directory: No such file or directory"};
    /* and the missing profiles are not reported again as "not found" */
    expect_errors(FIX "good-minimal.conf", bad, 1, want, 1);
    const char *two[] = {"gateway.profile_dir=../../tests/fixtures",
                         "gateway.profile_dir=../../sensors/profiles"};
    struct cfg *cfg = load_ok(FIX "good-minimal.conf", two, 2);
    assert_int_equal(cfg->gateway.nprofile_dirs, 2);
    size_t n = strlen(cfg->gateway.profile_dirs[0]);
    assert_string_equal(cfg->gateway.profile_dirs[0] + n - 15, "/tests/fixtures");
    cfg_free(cfg);
}

static void test_default_profile_dir(void **state)
{
    (void)state;
    /* No profile_dir: <config dir>/profiles, here sensors/profiles. */
    const char *text =
        "[site]\nid = s\nname = S\n[bus b]\ntype = tcp\nhost = h\n"
        "[zone z]\nname = Z\nfloor = 0\n[detector d]\nbus = b\nunit = 255\n"
        "profile = optical-smoke-485\nzone = z\n[uplink u]\nrole = other\nhost = h\n";
    struct cfg *cfg = cfg_load_string(text, "sensors/site.conf", err, sizeof(err));
    if (!cfg)
        fail_msg("%s", err);
    assert_true(cfg->gateway.nprofile_dirs >= 1);
    size_t n = strlen(cfg->gateway.profile_dirs[0]);
    assert_string_equal(cfg->gateway.profile_dirs[0] + n - 17, "/sensors/profiles");
    assert_int_equal(cfg->devices[0].unit, 255);
    cfg_free(cfg);
}

static void test_string_configs(void **state)
{
    (void)state;
    const char *base = "[site]\nid = s\nname = S\n[gateway]\nprofile_dir = ../../sensors/profiles\n"
                       "[bus b]\ntype = rtu\ndevice = /dev/ttyS1\n[zone z]\nname = Z\nfloor = 2\n";
    const char *up = "[uplink u]\nrole = other\nhost = h\n";
    struct {
        const char *extra;
        const char *error;
    } cases[] = {
        {"[detector d]\nbus = b\nunit = 1\nprofile = heat-485\nzone = z\nfloor = -6\n",
         FIX "x.conf:17: detector \"d\": floor \"-6\" is not an integer in -5..200"},
        {"[detector d]\nbus = b\nunit = 1\nprofile = ../heat-485\nzone = z\n", FIX
         "x.conf:15: detector \"d\": profile \"../heat-485\" is not a profile name (A-Z a-z 0-9 _ "
         "- .)"},
        {"[detector d]\nbus = b\nunit = 1\nprofile = heat-485\nzone = z\nno_response = 101s\n", FIX
         "x.conf:17: detector \"d\": no_response \"101s\" is not a duration in 1s..100s (with a "
         "unit: ms, s, min, h)"},
        {"[detector d]\nbus = b\nunit = 1\nprofile = heat-485\nzone = z\nno_response = 30\n",
         FIX "x.conf:17: detector \"d\": no_response \"30\" is not a duration in 1s..100s (with a "
             "unit: ms, s, min, h)"},
        {"[device m]\nbus = b\nunit = 1\nprofile = heat-485\n[detector d]\nbus = b\nunit = 1\n"
         "profile = heat-485\nzone = z\n",
         FIX
         "x.conf:18: detector \"d\": bus \"b\" unit 1 is device \"m\" (line 12); write device = m"},
        {"[device m]\nbus = b\nunit = 1\nprofile = heat-485\n[device n]\nbus = b\nunit = 1\n"
         "profile = heat-485\n[detector d]\ndevice = m\nzone = z\n",
         FIX "x.conf:18: device \"n\": bus \"b\" unit 1 is already device \"m\" (line 12)"},
        {"[detector d]\nbus = b\nunit = 1\nprofile = heat-485\nzone = z\n[uplink v]\nrole = "
         "owner\nhost = h\nclient_id = firegw-s-u\n",
         FIX
         "x.conf:20: uplink \"v\": client_id \"firegw-s-u\" is already used by uplink \"u\" (line "
         "12) on the same broker h:1883"},
        {"[detector d]\nbus = b\nunit = 1\nprofile = heat-485\nzone = z\n[bus c]\ntype = tcp\n"
         "host = h\nbackoff_min = 10s\nbackoff_max = 5s\n",
         FIX "x.conf:21: bus \"c\": backoff_max 5s is below backoff_min 10s"},
        {"[detector d]\nbus = b\nunit = 1\nprofile = heat-485\nzone = z\n[site]\nid = t\n",
         FIX "x.conf:17: second [site] section (first on line 1)"},
        {"[detector bad/id]\nbus = b\nunit = 1\nprofile = heat-485\nzone = z\n",
         FIX "x.conf:12: detector id \"bad/id\" is not 1-64 of A-Z a-z 0-9 _ - ."},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        /* u comes first where the case adds a second uplink that clashes with it */
        bool up_first = strstr(cases[i].extra, "[uplink") != NULL;
        char *text = up_first ? xasprintf("%s%s%s", base, up, cases[i].extra)
                              : xasprintf("%s%s%s", base, cases[i].extra, up);
        struct cfg *cfg = cfg_load_string(text, FIX "x.conf", err, sizeof(err));
        if (cfg)
            fail_msg("case %zu loaded", i);
        if (strcmp(err, "") == 0 || count_lines(err) != 1)
            fail_msg("case %zu: expected one line, got:\n%s", i, err);
        assert_line(err, cases[i].error);
        free(text);
    }
}

static void test_detector_floor_and_quotes(void **state)
{
    (void)state;
    const char *text = "[site]\nid = s\nname = \"  Tòa # 1  \"   # kept blanks and '#'\n"
                       "[gateway]\nprofile_dir = ../../sensors/profiles\nlog_level = debug\n"
                       "[bus b]\ntype = tcp\nhost = h\n[device m]\nbus = b\nunit = 9\n"
                       "profile = optical-smoke-485\ntimeout = 2s\nretries = 0\n"
                       "[zone z]\nname = Z\nfloor = 2\n"
                       "[detector d]\ndevice = m\nzone = z\nfloor = 3\nprealarm = 1.0\n"
                       "alarm = 1.2\nhysteresis = 0.1\n"
                       "[uplink u]\nrole = fire_police\nhost = h\nusername = a\n"
                       "topic_prefix = pccc/tayho\n";
    struct cfg *cfg = cfg_load_string(text, FIX "q.conf", err, sizeof(err));
    if (!cfg)
        fail_msg("%s", err);
    assert_string_equal(cfg->site.name, "  Tòa # 1  ");
    assert_string_equal(cfg->gateway.log_level, "debug");
    assert_int_equal(cfg->detectors[0].floor, 3);
    assert_true(cfg->detectors[0].thresholds.alarm == 1.2);
    assert_int_equal(cfg->devices[0].timeout_ms, 2000);
    assert_int_equal(cfg->devices[0].retries, 0);
    assert_string_equal(cfg->uplinks[0].topic_prefix, "pccc/tayho");
    assert_string_equal(cfg->uplinks[0].username, "a");
    cfg_free(cfg);
}

/* max_in_flight: 1 unless given, 1..32 on tcp buses, refused on rtu buses where it is written. */
static void test_max_in_flight(void **state)
{
    (void)state;
    const char *head = "[site]\nid = s\nname = S\n[gateway]\nprofile_dir = ../../sensors/profiles\n"
                       "[zone z]\nname = Z\nfloor = 2\n"
                       "[detector d]\nbus = t\nunit = 1\nprofile = heat-485\nzone = z\n"
                       "[bus r]\ntype = rtu\ndevice = /dev/ttyS1\n";
    const struct {
        const char *tcp, *rtu; /* extra lines of bus t (tcp) and bus r */
        int want;              /* t's max_in_flight, or 0: refused with error */
        const char *error;
    } cases[] = {
        {"", "", 1, NULL},
        {"max_in_flight = 8\n", "", 8, NULL},
        {"max_in_flight = 1\n", "", 1, NULL},
        {"max_in_flight = 32\n", "", 32, NULL},
        {"max_in_flight = 0\n", "", 0,
         FIX "x.conf:20: bus \"t\": max_in_flight \"0\" is not an integer in 1..32"},
        {"max_in_flight = 33\n", "", 0,
         FIX "x.conf:20: bus \"t\": max_in_flight \"33\" is not an integer in 1..32"},
        {"max_in_flight = four\n", "", 0,
         FIX "x.conf:20: bus \"t\": max_in_flight \"four\" is not an integer in 1..32"},
        {"", "baud = 19200\nmax_in_flight = 4\n", 0,
         FIX "x.conf:18: bus \"r\": max_in_flight applies to tcp buses only; this bus is rtu"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *text = xasprintf("%s%s[bus t]\ntype = tcp\nhost = h\n%s[uplink u]\nrole = other\n"
                               "host = h\n",
                               head, cases[i].rtu, cases[i].tcp);
        struct cfg *cfg = cfg_load_string(text, FIX "x.conf", err, sizeof(err));
        free(text);
        if (!cases[i].error) {
            if (!cfg)
                fail_msg("case %zu did not load:\n%s", i, err);
            assert_int_equal(cfg->buses[cfg_find_bus(cfg, "t")].max_in_flight, cases[i].want);
            assert_int_equal(cfg->buses[cfg_find_bus(cfg, "r")].max_in_flight, 1);
            cfg_free(cfg);
            continue;
        }
        if (cfg)
            fail_msg("case %zu loaded", i);
        if (count_lines(err) != 1)
            fail_msg("case %zu: expected one line, got:\n%s", i, err);
        assert_line(err, cases[i].error);
    }
}

static void test_file_and_buffer_limits(void **state)
{
    (void)state;
    assert_null(cfg_load(FIX "no-such.conf", err, sizeof(err)));
    assert_string_equal(err, FIX "no-such.conf: cannot open: No such file or directory\n");
    char small[40];
    memset(small, 'x', sizeof(small));
    assert_null(cfg_load(FIX "bad-unit-range.conf", small, sizeof(small)));
    assert_true(memchr(small, '\0', sizeof(small)) != NULL);
    assert_null(cfg_load(FIX "bad-unit-range.conf", NULL, 0));
    cfg_free(NULL);
}

static void test_reference_docs_in_sync(void **state)
{
    (void)state;
    char *ref = cfg_reference_markdown();
    FILE *f = fopen("docs/config.md", "r");
    assert_non_null(f);
    char *doc = xcalloc(1, 1 << 20);
    size_t n = fread(doc, 1, (1 << 20) - 1, f);
    fclose(f);
    doc[n] = '\0';
    if (!strstr(doc, ref))
        fail_msg("docs/config.md does not contain the reference table cfg.c generates; "
                 "paste this between the markers:\n%s",
                 ref);
    /* Every option appears as a table row. */
    assert_non_null(strstr(ref, "| `baud` | integer | 1200, 2400, 4800, 9600, 19200, 38400, "
                                "57600, 115200 | `9600` |"));
    free(doc);
    free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_site),
        cmocka_unit_test(test_defaults_from_table),
        cmocka_unit_test(test_unknown_keys_and_sections),
        cmocka_unit_test(test_unit_and_serial_ranges),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_syntax_errors_in_file_order),
        cmocka_unit_test(test_bad_profile_reported_once),
        cmocka_unit_test(test_overrides_apply),
        cmocka_unit_test(test_override_ids_with_dots),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_override_replaces_profile_dir),
        cmocka_unit_test(test_default_profile_dir),
        cmocka_unit_test(test_string_configs),
        cmocka_unit_test(test_detector_floor_and_quotes),
        cmocka_unit_test(test_max_in_flight),
        cmocka_unit_test(test_file_and_buffer_limits),
        cmocka_unit_test(test_reference_docs_in_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
