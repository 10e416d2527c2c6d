/*
 * Unit tests for events: the priority sort (order and stability), names on
 * the wire, the durable sequence (increasing across clean and unclean
 * restarts and block boundaries, corrupt files recovered without reusing
 * numbers, failure to reserve flagged) and event ids (well-formed
 * UUID v4, unique).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "event.h"
#include "util.h"

struct tmpdir {
    char dir[64];
    char path[128];
};

static int setup_dir(void **state)
{
    struct tmpdir *t = xcalloc(1, sizeof(*t));
    strlcpy_fg(t->dir, "/tmp/firegw-test-event-XXXXXX", sizeof(t->dir));
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    snprintf(t->path, sizeof(t->path), "%s/event-seq", t->dir);
    *state = t;
    return 0;
}

static int teardown_dir(void **state)
{
    struct tmpdir *t = *state;
    char p[160];
    unlink(t->path);
    snprintf(p, sizeof(p), "%s.new", t->path);
    unlink(p);
    rmdir(t->dir);
    free(t);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static uint64_t file_number(const char *path)
{
    char buf[64];
    read_file(path, buf, sizeof(buf));
    return strtoull(buf, NULL, 10);
}

static struct event ev_of(enum ev_kind k, long tag)
{
    struct event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = k;
    ev.detector = tag;
    return ev;
}

static void test_priority_values(void **state)
{
    (void)state;
    assert_true(ev_priority(EV_FIRE_ALARM) < ev_priority(EV_PRE_ALARM));
    assert_true(ev_priority(EV_PRE_ALARM) < ev_priority(EV_FAULT));
    assert_int_equal(ev_priority(EV_FIRE_CONFIRMED), ev_priority(EV_FIRE_ALARM));
    assert_int_equal(ev_priority(EV_ALARM_PENDING), ev_priority(EV_PRE_ALARM));
    enum ev_kind rest[] = {EV_RESTORE,       EV_FAULT_RESTORE, EV_DISABLED,     EV_ENABLED,
                           EV_GATEWAY_START, EV_ACKNOWLEDGED,  EV_SILENCED,     EV_RESET,
                           EV_TEST_ALARM,    EV_TEST_MODE_ON,  EV_TEST_MODE_OFF};
    for (size_t i = 0; i < ARRAY_LEN(rest); i++)
        assert_true(ev_priority(EV_FAULT) < ev_priority(rest[i]));
}

static void test_sort_small_stable(void **state)
{
    (void)state;
    static const enum ev_kind in[] = {EV_FAULT_RESTORE, EV_FAULT,   EV_PRE_ALARM,  EV_FIRE_ALARM,
                                      EV_RESTORE,       EV_FAULT,   EV_FIRE_ALARM, EV_GATEWAY_START,
                                      EV_PRE_ALARM,     EV_DISABLED};
    /* expected tags (input positions) after the sort */
    static const long want[] = {3, 6, 2, 8, 1, 5, 0, 4, 7, 9};
    struct evlist l = {0};
    for (size_t i = 0; i < ARRAY_LEN(in); i++) {
        struct event ev = ev_of(in[i], (long)i);
        evlist_push(&l, &ev);
    }
    evlist_sort_priority(&l);
    assert_int_equal(l.count, ARRAY_LEN(in));
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        assert_int_equal(l.items[i].detector, want[i]);
    evlist_free(&l);
    assert_null(l.items);
    assert_int_equal(l.count, 0);
}

static void test_sort_large_stable(void **state)
{
    (void)state;
    struct evlist l = {0};
    uint32_t x = 12345;
    for (long i = 0; i < 5000; i++) {
        x = x * 1103515245u + 12345u;
        struct event ev = ev_of((enum ev_kind)((x >> 16) % EV__COUNT), i);
        evlist_push(&l, &ev);
    }
    assert_int_equal(l.count, 5000);
    assert_true(l.cap >= 5000);
    evlist_sort_priority(&l);
    assert_int_equal(l.count, 5000);
    for (size_t i = 1; i < l.count; i++) {
        int pa = ev_priority(l.items[i - 1].kind), pb = ev_priority(l.items[i].kind);
        assert_true(pa <= pb);
        if (pa == pb)
            assert_true(l.items[i - 1].detector < l.items[i].detector);
    }
    evlist_clear(&l);
    assert_int_equal(l.count, 0);
    evlist_sort_priority(&l);
    evlist_free(&l);
}

static void test_names(void **state)
{
    (void)state;
    static const char *kinds[EV__COUNT] = {
        "fire_alarm",     "pre_alarm",     "fault",        "restore",
        "fault_restore",  "disabled",      "enabled",      "gateway_start",
        "fire_confirmed", "alarm_pending", "acknowledged", "silenced",
        "reset",          "test_alarm",    "test_mode_on", "test_mode_off"};
    for (int k = 0; k < EV__COUNT; k++)
        assert_string_equal(ev_kind_name((enum ev_kind)k), kinds[k]);
    assert_string_equal(ev_kind_name(EV__COUNT), "unknown");
    static const char *faults[FAULT__COUNT] = {"none",
                                               "no_response",
                                               "detector_bit",
                                               "maintenance",
                                               "implausible_value",
                                               "lifecheck_stopped",
                                               "device_down",
                                               "bus_down",
                                               "value_stuck",
                                               "transmission",
                                               "storage"};
    for (int f = 0; f < FAULT__COUNT; f++)
        assert_string_equal(fault_code_name((enum fault_code)f), faults[f]);
    assert_string_equal(fault_code_name(FAULT__COUNT), "unknown");
    assert_string_equal(ev_source_name(SRC_DETECTOR), "detector");
    assert_string_equal(ev_source_name(SRC_DEVICE), "device");
    assert_string_equal(ev_source_name(SRC_BUS), "bus");
    assert_string_equal(ev_source_name(SRC_GATEWAY), "gateway");
    assert_string_equal(ev_source_name(SRC_ZONE), "zone");
    assert_string_equal(ev_source_name(SRC_BUILDING), "building");
}

static void test_seq_new_file_reserves_block(void **state)
{
    struct tmpdir *t = *state;
    struct event_seq s;
    char err[512] = "";
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    /* reserved on disk before the first number is handed out */
    assert_int_equal(file_number(t->path), 1001);
    assert_int_equal(event_seq_next(&s), 1);
    assert_int_equal(event_seq_next(&s), 2);
    event_seq_close(&s);
    assert_null(s.path);
    struct stat st;
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.new", t->path);
    assert_int_equal(stat(tmp, &st), -1);
}

static void test_seq_restart_clean_and_crash(void **state)
{
    struct tmpdir *t = *state;
    struct event_seq s;
    char err[512] = "";
    uint64_t last = 0;

    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    for (int i = 0; i < 5; i++) {
        uint64_t n = event_seq_next(&s);
        assert_true(n > last);
        last = n;
    }
    event_seq_close(&s);
    /* clean restart: continues without a gap */
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    assert_int_equal(event_seq_next(&s), last + 1);
    last++;
    for (int i = 0; i < 3; i++)
        last = event_seq_next(&s);
    uint64_t reserved = s.reserved_until;
    /* crash: the process dies without closing, the file keeps the reservation */
    free(s.path);
    assert_int_equal(file_number(t->path), reserved);

    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    uint64_t n = event_seq_next(&s);
    assert_true(n > last);
    assert_int_equal(n, reserved);
    event_seq_close(&s);
}

static void test_seq_block_boundaries(void **state)
{
    struct tmpdir *t = *state;
    struct event_seq s;
    char err[512] = "";
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    uint64_t prev = 0;
    for (int i = 0; i < 2600; i++) {
        uint64_t n = event_seq_next(&s);
        assert_int_equal(n, prev + 1);
        prev = n;
        /* whatever has been handed out is always below what the file says */
        assert_true(file_number(t->path) > n);
    }
    assert_int_equal(file_number(t->path), 3001);
    free(s.path); /* crash after crossing two block boundaries */
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    assert_int_equal(event_seq_next(&s), 3001);
    event_seq_close(&s);
}

static void test_seq_corrupt_recovered(void **state)
{
    struct tmpdir *t = *state;
    static const char *bad[] = {"",
                                "\n",
                                "abc\n",
                                "12x\n",
                                "-5\n",
                                "0\n",
                                " 12\n",
                                "99999999999999999999999\n",
                                "18446744073709551615\n",
                                "1111111111111111111111111111111111111111111111111111111111111111"
                                "11111111\n"};
    /* numbers from the clock: above anything a file could have counted to by now */
    uint64_t floor = (uint64_t)wall_ms() * 1000u;
    char aside[256];
    snprintf(aside, sizeof(aside), "%s.corrupt", t->path);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        write_file(t->path, bad[i]);
        struct event_seq s;
        char err[512] = "";
        /* a corrupt file never stops the gateway: it starts with numbers that cannot repeat */
        assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 1);
        assert_non_null(strstr(err, t->path));
        assert_non_null(strstr(err, "corrupt"));
        assert_non_null(strstr(err, "numbering restarts at"));
        uint64_t n = event_seq_next(&s);
        assert_true(n >= floor);
        assert_true(n < (1ULL << 53)); /* exact in every JSON consumer */
        assert_non_null(s.path);
        event_seq_close(&s);
        /* the bad file is kept aside for whoever investigates, the new one is valid */
        char kept[128];
        read_file(aside, kept, sizeof(kept));
        assert_string_equal(kept, bad[i]);
        assert_int_equal(file_number(t->path), n + 1);
        unlink(aside);
    }
    write_file(t->path, "41\n");
    struct event_seq s;
    char err[512] = "";
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    assert_int_equal(event_seq_next(&s), 41);
    event_seq_close(&s);
    write_file(t->path, "77"); /* no newline is fine */
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    assert_int_equal(event_seq_next(&s), 77);
    event_seq_close(&s);
}

static void test_seq_unreadable_and_unwritable(void **state)
{
    struct tmpdir *t = *state;
    struct event_seq s;
    char err[512] = "";
    /* a directory where the file should be: open works, read fails */
    assert_int_equal(mkdir(t->path, 0755), 0);
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot read event sequence file"));
    assert_non_null(strstr(err, t->path));
    assert_non_null(strstr(err, strerror(EISDIR)));
    assert_int_equal(rmdir(t->path), 0);

    char missing[160];
    snprintf(missing, sizeof(missing), "%s/no-such-dir/event-seq", t->dir);
    assert_int_equal(event_seq_open(&s, missing, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot create event sequence file"));
    assert_non_null(strstr(err, missing));
}

static void test_seq_reserve_failure(void **state)
{
    struct tmpdir *t = *state;
    char sub[160], path[192];
    snprintf(sub, sizeof(sub), "%s/sub", t->dir);
    snprintf(path, sizeof(path), "%s/event-seq", sub);
    assert_int_equal(mkdir(sub, 0755), 0);
    struct event_seq s;
    char err[512] = "";
    assert_int_equal(event_seq_open(&s, path, err, sizeof(err)), 0);
    /* the state directory disappears: the reserved block is still usable */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(sub), 0);
    for (uint64_t i = 1; i <= 1000; i++)
        assert_int_equal(event_seq_next(&s), i);
    assert_false(s.unsaved);
    /* no new block can be saved: numbering goes on (an alarm needs a number), flagged */
    errno = 0;
    assert_int_equal(event_seq_next(&s), 1001);
    assert_true(s.unsaved);
    assert_int_equal(errno, ENOENT);
    struct event ev = ev_of(EV_FIRE_ALARM, 0);
    assert_int_equal(event_stamp(&ev, &s), -1);
    assert_int_equal(ev.seq, 1002);
    assert_int_equal(strlen(ev.id), 36);
    /* once the directory is back, the next number is saved again */
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(event_seq_next(&s), 1003);
    assert_false(s.unsaved);
    event_seq_close(&s);
    assert_int_equal(file_number(path), 1004);
    unlink(path);
    rmdir(sub);
}

static bool is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_stamp_ids(void **state)
{
    struct tmpdir *t = *state;
    struct event_seq s;
    char err[512] = "";
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    enum { N = 3000 };
    char(*ids)[37] = xcalloc(N, sizeof(*ids));
    uint64_t prev = 0;
    for (int i = 0; i < N; i++) {
        struct event ev = ev_of(EV_FAULT, i);
        assert_int_equal(event_stamp(&ev, &s), 0);
        assert_true(ev.seq > prev);
        prev = ev.seq;
        assert_int_equal(strlen(ev.id), 36);
        for (int j = 0; j < 36; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                assert_int_equal(ev.id[j], '-');
            else
                assert_true(is_hex_lower(ev.id[j]));
        }
        assert_int_equal(ev.id[14], '4');
        assert_non_null(strchr("89ab", ev.id[19]));
        memcpy(ids[i], ev.id, sizeof(ev.id));
    }
    qsort(ids, N, sizeof(*ids), cmp_id);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
    event_seq_close(&s);
}

static void test_seq_reserve_ahead_while_idle(void **state)
{
    struct tmpdir *t = *state;
    struct event_seq s;
    char err[512] = "";
    assert_int_equal(event_seq_open(&s, t->path, err, sizeof(err)), 0);
    assert_int_equal(file_number(t->path), 1001);
    /* plenty left: nothing written */
    for (int i = 0; i < 700; i++)
        event_seq_next(&s);
    assert_int_equal(event_seq_reserve_ahead(&s), 0);
    assert_int_equal(file_number(t->path), 1001);
    /* less than a fifth left: the next block is saved now, not when an event needs it */
    for (int i = 0; i < 101; i++)
        event_seq_next(&s);
    assert_int_equal(event_seq_reserve_ahead(&s), 0);
    assert_int_equal(file_number(t->path), 802 + 1000);
    assert_int_equal(event_seq_next(&s), 802);
    event_seq_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_values),
        cmocka_unit_test(test_sort_small_stable),
        cmocka_unit_test(test_sort_large_stable),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_seq_new_file_reserves_block, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_seq_restart_clean_and_crash, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_seq_block_boundaries, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_seq_corrupt_recovered, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_seq_reserve_ahead_while_idle, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_seq_unreadable_and_unwritable, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_seq_reserve_failure, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_stamp_ids, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
