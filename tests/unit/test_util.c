/*
 * Unit tests for gateway/util.c: checked number, duration and boolean parsing
 * at their exact boundaries, timestamp formatting, and the growing string
 * with its JSON writers (escapes, numbers that read back exactly).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

static void test_parse_int_bounds(void **state)
{
    (void)state;
    long long v = 0;
    assert_int_equal(parse_int("247", 1, 247, &v), 0);
    assert_int_equal(v, 247);
    assert_int_equal(parse_int("1", 1, 247, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(parse_int("248", 1, 247, &v), -1);
    assert_int_equal(parse_int("0", 1, 247, &v), -1);
    assert_int_equal(parse_int("-3", -5, 5, &v), 0);
    assert_int_equal(v, -3);
}

static void test_parse_int_rejects_garbage(void **state)
{
    (void)state;
    long long v = 42;
    const char *bad[] = {"", "12a", "a12", "1.5", " ", "0x10", "99999999999999999999999"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        assert_int_equal(parse_int(bad[i], -1000, 1000, &v), -1);
    assert_int_equal(parse_int(NULL, 0, 1, &v), -1);
    assert_int_equal(v, 42);
}

static void test_parse_double(void **state)
{
    (void)state;
    double d = 0;
    assert_int_equal(parse_double("2.0", 0, 20, &d), 0);
    assert_true(d == 2.0);
    assert_int_equal(parse_double("-0.5", -1, 1, &d), 0);
    assert_true(d == -0.5);
    assert_int_equal(parse_double("20.0001", 0, 20, &d), -1);
    assert_int_equal(parse_double("nan", -1e9, 1e9, &d), -1);
    assert_int_equal(parse_double("inf", -1e300, 1e300, &d), -1);
    assert_int_equal(parse_double("1e999", -1e300, 1e300, &d), -1);
    assert_int_equal(parse_double("3,5", 0, 10, &d), -1);
}

static void test_parse_duration(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(parse_duration_ms("250ms", 0, 1000000, &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(parse_duration_ms("30s", 0, 1000000, &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(parse_duration_ms("1.5s", 0, 1000000, &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(parse_duration_ms("5min", 0, 1000000, &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(parse_duration_ms("2h", 0, 10000000, &ms), 0);
    assert_int_equal(ms, 7200000);
    /* exact limits are accepted, one past is not */
    assert_int_equal(parse_duration_ms("100s", 1000, 100000, &ms), 0);
    assert_int_equal(parse_duration_ms("100.001s", 1000, 100000, &ms), -1);
    assert_int_equal(parse_duration_ms("999ms", 1000, 100000, &ms), -1);
    /* a unit is mandatory, and must be one we know */
    assert_int_equal(parse_duration_ms("30", 0, 1000000, &ms), -1);
    assert_int_equal(parse_duration_ms("30 s", 0, 1000000, &ms), -1);
    assert_int_equal(parse_duration_ms("30sec", 0, 1000000, &ms), -1);
    assert_int_equal(parse_duration_ms("-1s", -10000, 1000000, &ms), -1);
    assert_int_equal(parse_duration_ms("s", 0, 1000000, &ms), -1);
}

static void test_parse_bool(void **state)
{
    (void)state;
    bool b = false;
    assert_int_equal(parse_bool("yes", &b), 0);
    assert_true(b);
    assert_int_equal(parse_bool("OFF", &b), 0);
    assert_false(b);
    assert_int_equal(parse_bool("1", &b), 0);
    assert_true(b);
    assert_int_equal(parse_bool("maybe", &b), -1);
    assert_int_equal(parse_bool("", &b), -1);
}

static void test_format_utc_ms(void **state)
{
    (void)state;
    char buf[32];
    format_utc_ms(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    /* 2026-11-23T05:04:03.007Z */
    format_utc_ms(1795410243007LL, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-23T05:04:03.007Z");
    format_utc_ms(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
}

static void test_clocks_move_forward(void **state)
{
    (void)state;
    int64_t a = mono_ms();
    int64_t b = mono_ms();
    assert_true(b >= a);
    /* after 2020-01-01 */
    assert_true(wall_ms() > 1577836800000LL);
}

static void test_strlcpy_truncates_and_terminates(void **state)
{
    (void)state;
    char buf[4];
    assert_int_equal(strlcpy_fg(buf, "abcdef", sizeof(buf)), 6);
    assert_string_equal(buf, "abc");
    assert_int_equal(strlcpy_fg(buf, "ab", sizeof(buf)), 2);
    assert_string_equal(buf, "ab");
}

static void test_xasprintf(void **state)
{
    (void)state;
    char *s = xasprintf("%s/%d", "detector", 7);
    assert_string_equal(s, "detector/7");
    free(s);
}

static void test_utf8(void **state)
{
    (void)state;
    const unsigned char *viet = (const unsigned char *)"\xe1\xba\xa7"; /* "ầ" */
    assert_int_equal(utf8_seq_len(viet, 3), 3);
    assert_int_equal(utf8_seq_len(viet, 2), 0);                                  /* cut short */
    assert_int_equal(utf8_seq_len((const unsigned char *)"\xc0\xaf", 2), 0);     /* overlong */
    assert_int_equal(utf8_seq_len((const unsigned char *)"\xed\xa0\x80", 3), 0); /* surrogate */
    assert_int_equal(utf8_seq_len((const unsigned char *)"A", 1), 1);
    assert_null(utf8_repaired("Tầng 3"));
    char *fixed = utf8_repaired("T\xff\xe1\xba");
    assert_string_equal(fixed, "T\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    free(fixed);
}

static void test_sbuf_grows_and_formats(void **state)
{
    (void)state;
    struct sbuf b = {0};
    char *empty = sb_take(&b);
    assert_string_equal(empty, "");
    free(empty);
    for (int i = 0; i < 1000; i++)
        sb_fmt(&b, "%d,", i);
    sb_str(&b, "end");
    /* Longer than any fixed buffer: nothing truncated. */
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sb_fmt(&b, "[%s]", big);
    assert_int_equal(b.len, strlen(b.p));
    assert_memory_equal(b.p, "0,1,2,", 6);
    assert_non_null(strstr(b.p, ",999,end["));
    assert_int_equal(b.p[b.len - 1], ']');
    assert_int_equal(b.len, 3890 + 3 + 2 + 1999);
    char *s = sb_take(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    free(s);
}

static void test_sb_json_str_escapes(void **state)
{
    (void)state;
    struct sbuf b = {0};
    sb_json_str(&b, "plain Tầng 1");
    sb_add(&b, " ", 1);
    sb_json_str(&b, "q\"b\\n\nr\rt\tc\x01\x1f.");
    sb_add(&b, " ", 1);
    sb_json_str(&b, NULL);
    sb_add(&b, " ", 1);
    sb_json_str(&b, "");
    assert_string_equal(b.p,
                        "\"plain Tầng 1\" \"q\\\"b\\\\n\\nr\\rt\\tc\\u0001\\u001f.\" null \"\"");
    free(sb_take(&b));
}

static void test_sb_json_num_reads_back(void **state)
{
    (void)state;
    const double values[] = {0, 1, -2.5, 3.0, 0.1, 1.0 / 3.0, 123456789012345.0, 1e-300, -0.0};
    for (size_t i = 0; i < ARRAY_LEN(values); i++) {
        struct sbuf b = {0};
        sb_json_num(&b, values[i]);
        assert_true(strtod(b.p, NULL) == values[i]);
        free(sb_take(&b));
    }
    struct sbuf b = {0};
    sb_json_num(&b, 3.0);
    sb_add(&b, ",", 1);
    sb_json_num(&b, NAN);
    sb_add(&b, ",", 1);
    sb_json_num(&b, INFINITY);
    assert_string_equal(b.p, "3,null,null");
    free(sb_take(&b));
}

static void test_fnv1a_known_values(void **state)
{
    (void)state;
    /* The published FNV-1a 64 test vectors, and a hash continued over two pieces. */
    assert_true(fnv1a(FNV1A_INIT, "", 0) == 0xcbf29ce484222325ULL);
    assert_true(fnv1a(FNV1A_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(fnv1a(FNV1A_INIT, "foobar", 6) == 0x85944171f73967e8ULL);
    assert_true(fnv1a(fnv1a(FNV1A_INIT, "foo", 3), "bar", 3) == fnv1a(FNV1A_INIT, "foobar", 6));
}

static void test_send_all_by(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    /* everything arrives, in order */
    assert_int_equal(send_all_by(sv[0], "hello\n", 6, mono_ms() + 1000), 0);
    char buf[8] = {0};
    assert_int_equal(read(sv[1], buf, sizeof(buf)), 6);
    assert_string_equal(buf, "hello\n");
    /* a peer that reads nothing: the buffer fills and the deadline ends the wait */
    static char big[1 << 20];
    int64_t t0 = mono_ms();
    assert_int_equal(send_all_by(sv[0], big, sizeof(big), t0 + 100), ETIMEDOUT);
    assert_true(mono_ms() - t0 >= 100);
    /* a peer gone: EPIPE, and no SIGPIPE, which this process does not ignore */
    close(sv[1]);
    assert_int_equal(send_all_by(sv[0], "x", 1, mono_ms() + 1000), EPIPE);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_int_bounds),
        cmocka_unit_test(test_parse_int_rejects_garbage),
        cmocka_unit_test(test_parse_double),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_format_utc_ms),
        cmocka_unit_test(test_clocks_move_forward),
        cmocka_unit_test(test_strlcpy_truncates_and_terminates),
        cmocka_unit_test(test_xasprintf),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_sbuf_grows_and_formats),
        cmocka_unit_test(test_sb_json_str_escapes),
        cmocka_unit_test(test_sb_json_num_reads_back),
        cmocka_unit_test(test_fnv1a_known_values),
        cmocka_unit_test(test_send_all_by),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
