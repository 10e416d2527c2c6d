/*
 * Unit tests for gateway/profile.c: the shipped profiles load with the
 * register maps the simulator and the docs promise, and every class of
 * broken profile is refused with its exact "file:line: message".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile.h"
#include "util.h"

#define FIX "tests/fixtures/"
#define SHIPPED "sensors/profiles/"

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* err must hold exactly this line. */
static void assert_line(const char *err, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = err; (p = strstr(p, line)) != NULL; p++)
        if ((p == err || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("missing line \"%s\" in:\n%s", line, err);
}

static const struct profile_point *point(const struct profile *p, const char *name)
{
    for (size_t i = 0; i < p->npoints; i++)
        if (strcmp(p->points[i].name, name) == 0)
            return &p->points[i];
    fail_msg("no point %s in %s", name, p->name);
    return NULL;
}

static struct profile *load_ok(const char *path)
{
    char err[4096] = "";
    struct profile *p = profile_load(path, err, sizeof(err));
    if (!p)
        fail_msg("%s did not load:\n%s", path, err);
    assert_string_equal(err, "");
    return p;
}

/* Load a profile that must fail; err gets the messages. */
static void load_bad(const char *path, char *err, size_t errlen)
{
    err[0] = '\0';
    assert_null(profile_load(path, err, errlen));
}

static void test_optical_smoke(void **state)
{
    (void)state;
    struct profile *p = load_ok(SHIPPED "optical-smoke-485.profile");
    assert_string_equal(p->name, "optical-smoke-485");
    assert_int_equal(p->kind, PROFILE_SMOKE);
    assert_int_equal(p->channels, 1);
    const struct profile_point *v = profile_point_by_role(p, ROLE_VALUE);
    assert_non_null(v);
    assert_int_equal(v->table, REG_INPUT);
    assert_int_equal(v->address, 0);
    assert_int_equal(v->type, RT_UINT16);
    assert_true(v->scale == 0.01);
    assert_true(v->has_range && v->min == 0 && v->max == 20);
    assert_string_equal(v->unit, "%/m");
    const enum point_role bits[] = {ROLE_ALARM, ROLE_FAULT, ROLE_MAINTENANCE};
    for (int i = 0; i < 3; i++) {
        const struct profile_point *b = profile_point_by_role(p, bits[i]);
        assert_non_null(b);
        assert_int_equal(b->type, RT_BIT);
        assert_int_equal(b->address, 1);
        assert_int_equal(b->bit, i);
    }
    assert_int_equal(point(p, "contamination")->role, ROLE_INFO);
    assert_int_equal(point(p, "contamination")->address, 2);
    profile_free(p);
}

static void test_heat_int16_and_float(void **state)
{
    (void)state;
    struct profile *p = load_ok(SHIPPED "heat-485.profile");
    const struct profile_point *v = profile_point_by_role(p, ROLE_VALUE);
    assert_int_equal(p->kind, PROFILE_HEAT);
    assert_int_equal(v->type, RT_INT16);
    assert_true(v->scale == 0.1);
    assert_true(v->min == -40 && v->max == 150);
    assert_string_equal(v->unit, "degC");
    assert_int_equal(profile_point_by_role(p, ROLE_FAULT)->bit, 1);
    profile_free(p);

    p = load_ok(SHIPPED "heat-485-float.profile");
    v = profile_point_by_role(p, ROLE_VALUE);
    assert_int_equal(v->type, RT_FLOAT32);
    assert_int_equal(v->order, WO_CDAB);
    assert_int_equal(v->address, 10);
    assert_int_equal(reg_type_width(v->type), 2);
    assert_true(v->scale == 1 && v->offset == 0);
    profile_free(p);
}

static void test_panel_module(void **state)
{
    (void)state;
    struct profile *p = load_ok(SHIPPED "panel-zone-module.profile");
    assert_int_equal(p->kind, PROFILE_PANEL);
    assert_int_equal(p->channels, 16);
    assert_int_equal(p->channel_stride, 1);
    assert_null(profile_point_by_role(p, ROLE_VALUE));
    const struct profile_point *life = profile_point_by_role(p, ROLE_LIFECHECK);
    assert_int_equal(life->table, REG_HOLDING);
    assert_int_equal(life->address, 0);
    assert_false(life->per_channel);
    assert_int_equal(point(p, "datachange")->address, 1);
    const enum point_role roles[] = {ROLE_ALARM, ROLE_PREALARM, ROLE_FAULT, ROLE_DISABLED};
    for (int i = 0; i < 4; i++) {
        const struct profile_point *z = profile_point_by_role(p, roles[i]);
        assert_true(z->per_channel);
        assert_int_equal(z->bit, i);
        assert_int_equal(profile_point_address(p, z, 1), 100);
        assert_int_equal(profile_point_address(p, z, 16), 115);
    }
    profile_free(p);
}

static void test_quoting_and_defaults(void **state)
{
    (void)state;
    struct profile *p = load_ok(FIX "good-quoting.profile");
    assert_string_equal(p->vendor, "Hãng \"Sao Đỏ\" # 1");
    assert_string_equal(p->model, "SD#2");
    assert_string_equal(p->description, "  padded  ");
    const struct profile_point *v = point(p, "v");
    assert_int_equal(v->address, 65534);
    assert_int_equal(v->order, WO_DCBA);
    assert_true(v->scale == 2.5 && v->offset == -1);
    assert_int_equal(p->channels, 1);
    assert_false(v->per_channel);
    profile_free(p);
}

static void test_bad_keys(void **state)
{
    (void)state;
    char err[4096];
    load_bad(FIX "bad-profile-keys.profile", err, sizeof(err));
    const char *want[] = {
        FIX "bad-profile-keys.profile:6: profile: unknown key \"colour\" (expected one of vendor, "
            "model, description, kind, channels, channel_stride)",
        FIX "bad-profile-keys.profile:10: point \"temp\": table \"coil\" is not one of holding, "
            "input",
        FIX "bad-profile-keys.profile:11: point \"temp\": address \"65536\" is not an integer in "
            "0..65535",
        FIX "bad-profile-keys.profile:13: point \"temp\": order applies only to 32-bit types "
            "(int32, uint32, float32), not int16",
        FIX "bad-profile-keys.profile:14: point \"temp\": unit \"degrees Celsius!\" is longer "
            "than 15 bytes",
        FIX "bad-profile-keys.profile:15: point \"temp\": give both min and max, or neither",
        FIX "bad-profile-keys.profile:17: point \"status\": type bit needs a \"bit\" key (0..15)",
        FIX "bad-profile-keys.profile:28: point \"fault\": bit applies only to type bit, this "
            "point is uint16",
        FIX "bad-profile-keys.profile:29: point \"fault\": scale must not be 0",
        FIX "bad-profile-keys.profile:37: point \"ratio\": min 5 is not below max 5",
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        assert_line(err, want[i]);
    assert_int_equal(count_lines(err), ARRAY_LEN(want));
}

static void test_bad_roles(void **state)
{
    (void)state;
    char err[4096];
    load_bad(FIX "bad-profile-no-value.profile", err, sizeof(err));
    assert_string_equal(err, FIX "bad-profile-no-value.profile: a smoke profile needs a point "
                                 "with role value\n");
    load_bad(FIX "bad-profile-roles.profile", err, sizeof(err));
    assert_line(err, FIX "bad-profile-roles.profile:16: point \"a2\": role alarm is already taken "
                         "by point \"a1\" (line 8); only info may repeat");
    assert_line(err, FIX "bad-profile-roles.profile:24: point \"level\": a panel profile reports "
                         "status bits only; role value is for smoke and heat profiles");
    /* i1 and i2 share role info, which is allowed. */
    assert_int_equal(count_lines(err), 2);
}

static void test_bad_register_space(void **state)
{
    (void)state;
    char err[4096];
    load_bad(FIX "bad-profile-range.profile", err, sizeof(err));
    assert_line(err, FIX "bad-profile-range.profile:9: point \"zone\": for channel 512 it ends at "
                         "register 65611, past 65535");
    assert_line(err, FIX "bad-profile-range.profile:17: point \"counter\": a uint32 at address "
                         "65535 runs past register 65535");
    assert_line(err, FIX "bad-profile-range.profile:23: point \"wide\": channel_stride 1 is "
                         "smaller than its 2 registers, so channels would overlap");
    assert_int_equal(count_lines(err), 3);
}

static void test_bad_syntax(void **state)
{
    (void)state;
    char err[4096];
    load_bad(FIX "bad-profile-syntax.profile", err, sizeof(err));
    assert_line(err,
                FIX "bad-profile-syntax.profile:1: key \"vendor\" before the [profile] section");
    assert_line(err, FIX "bad-profile-syntax.profile:6: a point is named [point NAME], NAME being "
                         "1..31 of A-Z a-z 0-9 _ -");
    assert_line(err, FIX "bad-profile-syntax.profile:12: point \"v\": duplicate key \"role\" "
                         "(first on line 8)");
    assert_line(err, FIX "bad-profile-syntax.profile:13: unknown section [widget]; a profile has "
                         "[profile] and [point NAME] sections");
    assert_int_equal(count_lines(err), 4);
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/firegw-test-profile-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* Write a panel profile whose per-channel alarm starts at address; return its path. */
static char *panel_at(long address, int channels, int stride)
{
    char *path = xasprintf("%s/edge-%ld-%d-%d.profile", tmpdir, address, channels, stride);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "[profile]\nvendor = T\nmodel = E\nkind = panel\nchannels = %d\nchannel_stride = %d\n"
            "[point z]\nrole = alarm\ntable = holding\naddress = %ld\ntype = bit\nbit = 0\n"
            "per_channel = yes\n",
            channels, stride, address);
    fclose(f);
    return path;
}

static void test_last_channel_boundary(void **state)
{
    (void)state;
    char err[1024] = "";
    /* 16 zones, stride 1: zone 16 of a point at 65520 is register 65535, the last one. */
    char *path = panel_at(65520, 16, 1);
    struct profile *p = profile_load(path, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(profile_point_address(p, &p->points[0], 16), 65535);
    profile_free(p);
    free(path);
    path = panel_at(65521, 16, 1);
    assert_null(profile_load(path, err, sizeof(err)));
    char *want = xasprintf("%s:7: point \"z\": for channel 16 it ends at register 65536, past "
                           "65535\n",
                           path);
    assert_string_equal(err, want);
    free(want);
    free(path);
    /* channels and stride limits */
    err[0] = '\0';
    path = panel_at(0, 513, 1);
    assert_null(profile_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, ":5: profile: channels \"513\" is not an integer in 1..512\n"));
    free(path);
}

static void test_errors_append_and_truncate(void **state)
{
    (void)state;
    char err[4096] = "earlier line\n";
    assert_null(profile_load(FIX "bad-profile-no-value.profile", err, sizeof(err)));
    assert_true(strncmp(err, "earlier line\n" FIX "bad-profile-no-value.profile: ", 13 + 44) == 0);
    char small[24];
    memset(small, 'x', sizeof(small));
    small[0] = '\0';
    assert_null(profile_load(FIX "bad-profile-keys.profile", small, sizeof(small)));
    assert_true(strlen(small) < sizeof(small));
    assert_null(profile_load(FIX "no-such-file.profile", err, 0));
    err[0] = '\0';
    assert_null(profile_load(FIX "no-such-file.profile", err, sizeof(err)));
    assert_string_equal(err, FIX "no-such-file.profile: cannot open: No such file or directory\n");
}

static void test_set_load_dir(void **state)
{
    (void)state;
    struct profile_set set = {0};
    char err[8192] = "";
    assert_int_equal(profile_set_load_dir(&set, "sensors/profiles", err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(set.count, 4);
    /* by file name: "heat-485-float.profile" sorts before "heat-485.profile" */
    const char *names[] = {"heat-485-float", "heat-485", "optical-smoke-485", "panel-zone-module"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        assert_string_equal(set.items[i]->name, names[i]);
        assert_ptr_equal(profile_set_find(&set, names[i]), set.items[i]);
    }
    assert_null(profile_set_find(&set, "heat"));
    /* The fixtures hold good and bad profiles: the good one is added, the bad reported. */
    assert_int_equal(profile_set_load_dir(&set, "tests/fixtures", err, sizeof(err)), -1);
    assert_non_null(profile_set_find(&set, "good-quoting"));
    assert_null(profile_set_find(&set, "bad-profile-keys"));
    assert_int_equal(set.count, 5);
    assert_non_null(strstr(err, "bad-profile-roles.profile:16: "));
    assert_non_null(strstr(err, "bad-profile-syntax.profile:1: "));
    err[0] = '\0';
    assert_int_equal(profile_set_load_dir(&set, "tests/no-such-dir", err, sizeof(err)), -1);
    assert_string_equal(err, "tests/no-such-dir: cannot open the profile directory: No such file "
                             "or directory\n");
    profile_set_free(&set);
    assert_int_equal(set.count, 0);
    profile_set_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optical_smoke),
        cmocka_unit_test(test_heat_int16_and_float),
        cmocka_unit_test(test_panel_module),
        cmocka_unit_test(test_quoting_and_defaults),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_bad_roles),
        cmocka_unit_test(test_bad_register_space),
        cmocka_unit_test(test_bad_syntax),
        cmocka_unit_test(test_last_channel_boundary),
        cmocka_unit_test(test_errors_append_and_truncate),
        cmocka_unit_test(test_set_load_dir),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
