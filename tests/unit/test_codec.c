/*
 * Unit tests for the register codec: known byte patterns in every word order,
 * type boundaries, scale and offset, NaN/inf rejection, the plausible range
 * and its message, and encode as the exact inverse of decode.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

/* cmocka's float comparison works in single precision; values here need double. */
#define assert_near(a, b, eps) assert_near_at((a), (b), (eps), __FILE__, __LINE__)

static void assert_near_at(double a, double b, double eps, const char *file, int line)
{
    if (!(fabs(a - b) <= eps))
        fail_msg("%s:%d: %.17g is not within %g of %.17g", file, line, a, eps, b);
}

static struct profile_point point(enum reg_type type, enum word_order order, double scale,
                                  double offset)
{
    struct profile_point pt = {0};
    pt.name = "value";
    pt.type = type;
    pt.order = order;
    pt.scale = scale;
    pt.offset = offset;
    return pt;
}

struct row {
    enum reg_type type;
    enum word_order order;
    uint16_t w0, w1;
    double value;
};

/* Raw values with scale 1: every row must decode to value and encode back to its words. */
static const struct row rows[] = {
    {RT_FLOAT32, WO_ABCD, 0x41AC, 0x0000, 21.5},
    {RT_FLOAT32, WO_CDAB, 0x0000, 0x41AC, 21.5},
    {RT_FLOAT32, WO_BADC, 0xAC41, 0x0000, 21.5},
    {RT_FLOAT32, WO_DCBA, 0x0000, 0xAC41, 21.5},
    {RT_FLOAT32, WO_ABCD, 0xBFC0, 0x0000, -1.5},
    {RT_FLOAT32, WO_DCBA, 0x0000, 0xC0BF, -1.5},
    {RT_UINT32, WO_ABCD, 0x1234, 0x5678, 305419896.0},
    {RT_UINT32, WO_CDAB, 0x5678, 0x1234, 305419896.0},
    {RT_UINT32, WO_BADC, 0x3412, 0x7856, 305419896.0},
    {RT_UINT32, WO_DCBA, 0x7856, 0x3412, 305419896.0},
    {RT_UINT32, WO_ABCD, 0xFFFF, 0xFFFF, 4294967295.0},
    {RT_UINT32, WO_ABCD, 0x0000, 0x0000, 0.0},
    {RT_INT32, WO_ABCD, 0xFFFF, 0xFFFE, -2.0},
    {RT_INT32, WO_CDAB, 0xFFFE, 0xFFFF, -2.0},
    {RT_INT32, WO_BADC, 0xFFFF, 0xFEFF, -2.0},
    {RT_INT32, WO_DCBA, 0xFEFF, 0xFFFF, -2.0},
    {RT_INT32, WO_ABCD, 0x8000, 0x0000, -2147483648.0},
    {RT_INT32, WO_ABCD, 0x7FFF, 0xFFFF, 2147483647.0},
    {RT_INT32, WO_CDAB, 0x0000, 0x8000, -2147483648.0},
    {RT_INT16, WO_ABCD, 0x8000, 0, -32768.0},
    {RT_INT16, WO_ABCD, 0x7FFF, 0, 32767.0},
    {RT_INT16, WO_ABCD, 0xFFFF, 0, -1.0},
    {RT_UINT16, WO_ABCD, 0xFFFF, 0, 65535.0},
    {RT_UINT16, WO_ABCD, 0x0000, 0, 0.0},
};

static void test_table_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct profile_point pt = point(rows[i].type, rows[i].order, 1, 0);
        uint16_t w[2] = {rows[i].w0, rows[i].w1};
        double v = -12345;
        char err[96] = "";
        if (codec_decode(&pt, w, &v, err, sizeof(err)) != 0 || v != rows[i].value)
            fail_msg("row %zu: decoded %.17g (%s), want %.17g", i, v, err, rows[i].value);
    }
}

static void test_table_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct profile_point pt = point(rows[i].type, rows[i].order, 1, 0);
        uint16_t w[2] = {0xDEAD, 0xBEEF};
        /* a 16-bit point leaves the next register alone */
        uint16_t want1 = reg_type_width(rows[i].type) == 2 ? rows[i].w1 : 0xBEEF;
        if (codec_encode(&pt, rows[i].value, w) != 0 || w[0] != rows[i].w0 || w[1] != want1)
            fail_msg("row %zu: encoded %04X %04X, want %04X %04X", i, w[0], w[1], rows[i].w0,
                     want1);
    }
}

static void test_bits(void **state)
{
    (void)state;
    struct profile_point pt = point(RT_BIT, WO_ABCD, 1, 0);
    char err[96];
    double v;
    for (int bit = 0; bit < 16; bit++) {
        pt.bit = bit;
        uint16_t set = (uint16_t)(1u << bit);
        uint16_t others = (uint16_t)~set;
        assert_int_equal(codec_decode(&pt, &set, &v, err, sizeof(err)), 0);
        assert_true(v == 1.0);
        assert_int_equal(codec_decode(&pt, &others, &v, err, sizeof(err)), 0);
        assert_true(v == 0.0);
    }
    /* encode touches only its bit */
    pt.bit = 3;
    uint16_t w = 0xA5A0;
    assert_int_equal(codec_encode(&pt, 1, &w), 0);
    assert_int_equal(w, 0xA5A8);
    assert_int_equal(codec_encode(&pt, 0, &w), 0);
    assert_int_equal(w, 0xA5A0);
    pt.bit = 15;
    assert_int_equal(codec_encode(&pt, 0, &w), 0);
    assert_int_equal(w, 0x25A0);
    /* a bit is 0 or 1 whatever the scale says */
    pt.scale = 10;
    pt.offset = 3;
    w = 0x8000;
    assert_int_equal(codec_decode(&pt, &w, &v, err, sizeof(err)), 0);
    assert_true(v == 1.0);
}

static void test_scale_offset(void **state)
{
    (void)state;
    char err[96];
    double v;
    /* temperature in 0.1 degC, signed */
    struct profile_point t = point(RT_INT16, WO_ABCD, 0.1, 0);
    uint16_t w = 215;
    assert_int_equal(codec_decode(&t, &w, &v, err, sizeof(err)), 0);
    assert_near(v, 21.5, 1e-9);
    w = (uint16_t)-105;
    assert_int_equal(codec_decode(&t, &w, &v, err, sizeof(err)), 0);
    assert_near(v, -10.5, 1e-9);
    assert_int_equal(codec_encode(&t, -10.5, &w), 0);
    assert_int_equal((int16_t)w, -105);
    /* rounding to the nearest raw step */
    assert_int_equal(codec_encode(&t, 21.54, &w), 0);
    assert_int_equal(w, 215);
    assert_int_equal(codec_encode(&t, 21.56, &w), 0);
    assert_int_equal(w, 216);

    /* offset: raw 0..1000 is -40..60 degC */
    struct profile_point o = point(RT_UINT16, WO_ABCD, 0.1, -40);
    w = 0;
    assert_int_equal(codec_decode(&o, &w, &v, err, sizeof(err)), 0);
    assert_near(v, -40.0, 1e-9);
    w = 1000;
    assert_int_equal(codec_decode(&o, &w, &v, err, sizeof(err)), 0);
    assert_near(v, 60.0, 1e-9);
    assert_int_equal(codec_encode(&o, 25.0, &w), 0);
    assert_int_equal(w, 650);

    /* 32-bit scaled, word-swapped */
    struct profile_point u = point(RT_UINT32, WO_CDAB, 0.001, 0);
    uint16_t w2[2];
    assert_int_equal(codec_encode(&u, 70000.5, w2), 0);
    assert_int_equal(w2[0], 70000500u & 0xFFFF);
    assert_int_equal(w2[1], 70000500u >> 16);
    assert_int_equal(codec_decode(&u, w2, &v, err, sizeof(err)), 0);
    assert_near(v, 70000.5, 1e-6);
}

static void test_clamping(void **state)
{
    (void)state;
    uint16_t w[2];
    struct profile_point s16 = point(RT_INT16, WO_ABCD, 1, 0);
    assert_int_equal(codec_encode(&s16, 1e9, w), 0);
    assert_int_equal(w[0], 0x7FFF);
    assert_int_equal(codec_encode(&s16, -1e9, w), 0);
    assert_int_equal(w[0], 0x8000);
    struct profile_point u16 = point(RT_UINT16, WO_ABCD, 1, 0);
    assert_int_equal(codec_encode(&u16, -5, w), 0);
    assert_int_equal(w[0], 0);
    assert_int_equal(codec_encode(&u16, 65535.4, w), 0);
    assert_int_equal(w[0], 65535);
    assert_int_equal(codec_encode(&u16, 70000, w), 0);
    assert_int_equal(w[0], 65535);
    struct profile_point s32 = point(RT_INT32, WO_ABCD, 1, 0);
    assert_int_equal(codec_encode(&s32, -1e12, w), 0);
    assert_int_equal(w[0], 0x8000);
    assert_int_equal(w[1], 0x0000);
    struct profile_point u32 = point(RT_UINT32, WO_ABCD, 1, 0);
    assert_int_equal(codec_encode(&u32, 1e12, w), 0);
    assert_int_equal(w[0], 0xFFFF);
    assert_int_equal(w[1], 0xFFFF);
    assert_int_equal(codec_encode(&u32, -1, w), 0);
    assert_int_equal(w[0], 0);
    assert_int_equal(w[1], 0);
    /* a float beyond FLT_MAX is clamped, not turned into infinity */
    struct profile_point f = point(RT_FLOAT32, WO_ABCD, 1, 0);
    assert_int_equal(codec_encode(&f, 1e300, w), 0);
    assert_int_equal(w[0], 0x7F7F);
    assert_int_equal(w[1], 0xFFFF);
}

static void test_not_a_number(void **state)
{
    (void)state;
    struct profile_point pt = point(RT_FLOAT32, WO_ABCD, 1, 0);
    pt.name = "temperature";
    const uint16_t bad[][2] = {{0x7FC0, 0}, {0x7F80, 0}, {0xFF80, 0}, {0x7F80, 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[96] = "";
        double v = 42;
        assert_int_equal(codec_decode(&pt, bad[i], &v, err, sizeof(err)), -1);
        assert_true(v == 42); /* untouched on failure */
        assert_non_null(strstr(err, "temperature"));
    }
    char err[96];
    double v;
    codec_decode(&pt, bad[0], &v, err, sizeof(err));
    assert_non_null(strstr(err, "NaN"));
    codec_decode(&pt, bad[1], &v, err, sizeof(err));
    assert_non_null(strstr(err, "infinity"));

    uint16_t w[2] = {1, 2};
    assert_int_equal(codec_encode(&pt, NAN, w), -1);
    assert_int_equal(codec_encode(&pt, INFINITY, w), -1);
    assert_int_equal(w[0], 1);
    assert_int_equal(w[1], 2);
    struct profile_point bit = point(RT_BIT, WO_ABCD, 1, 0);
    assert_int_equal(codec_encode(&bit, NAN, w), -1);
}

static void test_range(void **state)
{
    (void)state;
    struct profile_point pt = point(RT_UINT16, WO_ABCD, 0.01, 0);
    pt.name = "obscuration";
    pt.has_range = true;
    pt.min = 0;
    pt.max = 20;
    strcpy(pt.unit, "%/m");
    char err[96] = "";
    double v = -1;
    uint16_t w = 2000; /* exactly max */
    assert_int_equal(codec_decode(&pt, &w, &v, err, sizeof(err)), 0);
    assert_near(v, 20.0, 1e-9);
    w = 0; /* exactly min */
    assert_int_equal(codec_decode(&pt, &w, &v, err, sizeof(err)), 0);
    assert_true(v == 0.0);
    w = 2001;
    assert_int_equal(codec_decode(&pt, &w, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "obscuration 20.01 %/m outside 0..20");
    w = 65535;
    assert_int_equal(codec_decode(&pt, &w, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "obscuration 655.35 %/m outside 0..20");

    /* below a negative minimum, signed */
    struct profile_point t = point(RT_INT16, WO_ABCD, 0.1, 0);
    t.name = "temperature";
    t.has_range = true;
    t.min = -20;
    t.max = 120;
    strcpy(t.unit, "degC");
    w = (uint16_t)-200;
    assert_int_equal(codec_decode(&t, &w, &v, err, sizeof(err)), 0);
    assert_near(v, -20.0, 1e-9);
    w = (uint16_t)-201;
    assert_int_equal(codec_decode(&t, &w, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "temperature -20.1 degC outside -20..120");

    /* no unit: no dangling space; a small buffer truncates safely */
    t.unit[0] = '\0';
    assert_int_equal(codec_decode(&t, &w, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "temperature -20.1 outside -20..120");
    char small[8];
    assert_int_equal(codec_decode(&t, &w, &v, small, sizeof(small)), -1);
    assert_string_equal(small, "tempera");
}

static void test_round_trip(void **state)
{
    (void)state;
    const enum reg_type types[] = {RT_INT16, RT_UINT16, RT_INT32, RT_UINT32, RT_FLOAT32};
    const double values[] = {0, 1.25, 17.5, 58.3, 99.9, 250.0};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        for (int o = WO_ABCD; o <= WO_DCBA; o++) {
            struct profile_point pt = point(types[t], (enum word_order)o, 0.05, -10);
            for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                uint16_t w[2] = {0, 0};
                double back;
                char err[96];
                assert_int_equal(codec_encode(&pt, values[i], w), 0);
                assert_int_equal(codec_decode(&pt, w, &back, err, sizeof(err)), 0);
                /* integers are exact to one raw step; floats to float precision */
                assert_near(back, values[i], types[t] == RT_FLOAT32 ? 1e-4 : 0.025 + 1e-9);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_decode), cmocka_unit_test(test_table_encode),
        cmocka_unit_test(test_bits),         cmocka_unit_test(test_scale_offset),
        cmocka_unit_test(test_clamping),     cmocka_unit_test(test_not_a_number),
        cmocka_unit_test(test_range),        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
