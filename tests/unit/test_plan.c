/*
 * Unit tests for request planning: the 125-register limit, the gap rule at
 * max_gap and max_gap + 1, overlapping, duplicate and unsorted spans, the top
 * of the address space, separate tables, invalid spans and plan_locate.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "plan.h"

#define H REG_HOLDING
#define I REG_INPUT

static void expect_req(const struct plan *p, size_t i, enum reg_table t, uint16_t addr,
                       uint16_t count)
{
    assert_true(i < p->count);
    assert_int_equal(p->requests[i].table, t);
    assert_int_equal(p->requests[i].address, addr);
    assert_int_equal(p->requests[i].count, count);
}

static void test_empty(void **state)
{
    (void)state;
    struct plan_request dummy;
    struct plan p = {&dummy, 99}; /* overwritten, not freed */
    assert_int_equal(plan_build(NULL, 0, 8, &p), 0);
    assert_int_equal(p.count, 0);
    assert_null(p.requests);
    assert_int_equal(plan_locate(&p, H, 0, 1, NULL), -1);
    plan_free(&p);
    plan_free(NULL);
}

static void test_contiguous_and_gap(void **state)
{
    (void)state;
    struct plan p;
    /* 0..1, then 2: contiguous, merged even with max_gap 0 */
    const struct plan_span a[] = {{H, 0, 2}, {H, 2, 1}};
    assert_int_equal(plan_build(a, 2, 0, &p), 0);
    assert_int_equal(p.count, 1);
    expect_req(&p, 0, H, 0, 3);
    plan_free(&p);

    /* gap of exactly 4 unused registers (1..4): merged at max_gap 4 */
    const struct plan_span b[] = {{H, 0, 1}, {H, 5, 1}};
    assert_int_equal(plan_build(b, 2, 4, &p), 0);
    assert_int_equal(p.count, 1);
    expect_req(&p, 0, H, 0, 6);
    plan_free(&p);
    /* the same gap is split at max_gap 3 */
    assert_int_equal(plan_build(b, 2, 3, &p), 0);
    assert_int_equal(p.count, 2);
    expect_req(&p, 0, H, 0, 1);
    expect_req(&p, 1, H, 5, 1);
    plan_free(&p);
    /* max_gap 0 splits any gap */
    const struct plan_span c[] = {{I, 10, 2}, {I, 13, 2}};
    assert_int_equal(plan_build(c, 2, 0, &p), 0);
    assert_int_equal(p.count, 2);
    plan_free(&p);
}

static void test_limit_125(void **state)
{
    (void)state;
    struct plan p;
    /* exactly 125 after merging: one request */
    const struct plan_span a[] = {{H, 0, 100}, {H, 100, 25}};
    assert_int_equal(plan_build(a, 2, 8, &p), 0);
    assert_int_equal(p.count, 1);
    expect_req(&p, 0, H, 0, 125);
    plan_free(&p);
    /* 126: split */
    const struct plan_span b[] = {{H, 0, 100}, {H, 100, 26}};
    assert_int_equal(plan_build(b, 2, 8, &p), 0);
    assert_int_equal(p.count, 2);
    expect_req(&p, 0, H, 0, 100);
    expect_req(&p, 1, H, 100, 26);
    plan_free(&p);
    /* a gap that would push the request to 126 is not bridged */
    const struct plan_span c[] = {{H, 0, 120}, {H, 125, 1}};
    assert_int_equal(plan_build(c, 2, 8, &p), 0);
    assert_int_equal(p.count, 2);
    plan_free(&p);
    const struct plan_span d[] = {{H, 0, 120}, {H, 124, 1}};
    assert_int_equal(plan_build(d, 2, 8, &p), 0);
    assert_int_equal(p.count, 1);
    expect_req(&p, 0, H, 0, 125);
    plan_free(&p);
    /* one register per point over 300 registers: 125 + 125 + 50 */
    struct plan_span many[300];
    for (int i = 0; i < 300; i++)
        many[i] = (struct plan_span){I, (uint16_t)(1000 + i), 1};
    assert_int_equal(plan_build(many, 300, 0, &p), 0);
    assert_int_equal(p.count, 3);
    expect_req(&p, 0, I, 1000, 125);
    expect_req(&p, 1, I, 1125, 125);
    expect_req(&p, 2, I, 1250, 50);
    plan_free(&p);
}

static void test_overlap_duplicate_unsorted(void **state)
{
    (void)state;
    struct plan p;
    const struct plan_span a[] = {{H, 40, 2}, {H, 10, 2}, {H, 10, 2}, {H, 11, 2},
                                  {H, 5, 10}, {H, 40, 1}, {H, 20, 1}};
    assert_int_equal(plan_build(a, sizeof(a) / sizeof(a[0]), 5, &p), 0);
    /* 5..14 and 20 merge (gap 5); 40..41 is 19 away */
    assert_int_equal(p.count, 2);
    expect_req(&p, 0, H, 5, 16);
    expect_req(&p, 1, H, 40, 2);
    plan_free(&p);
    /* a span contained in another adds nothing */
    const struct plan_span b[] = {{I, 3, 1}, {I, 0, 125}};
    assert_int_equal(plan_build(b, 2, 0, &p), 0);
    assert_int_equal(p.count, 1);
    expect_req(&p, 0, I, 0, 125);
    plan_free(&p);
}

static void test_tables_separate(void **state)
{
    (void)state;
    struct plan p;
    const struct plan_span a[] = {{I, 0, 1}, {H, 1, 1}, {I, 1, 1}, {H, 0, 1}};
    assert_int_equal(plan_build(a, 4, 8, &p), 0);
    assert_int_equal(p.count, 2);
    expect_req(&p, 0, H, 0, 2);
    expect_req(&p, 1, I, 0, 2);
    plan_free(&p);
}

static void test_top_of_address_space(void **state)
{
    (void)state;
    struct plan p;
    const struct plan_span a[] = {{H, 65535, 1}, {H, 65533, 1}};
    assert_int_equal(plan_build(a, 2, 1, &p), 0);
    assert_int_equal(p.count, 1);
    expect_req(&p, 0, H, 65533, 3);
    uint16_t off = 0;
    assert_int_equal(plan_locate(&p, H, 65535, 1, &off), 0);
    assert_int_equal(off, 2);
    plan_free(&p);
    const struct plan_span b[] = {{H, 65411, 125}};
    assert_int_equal(plan_build(b, 1, 0, &p), 0);
    expect_req(&p, 0, H, 65411, 125);
    plan_free(&p);
}

static void test_invalid(void **state)
{
    (void)state;
    struct plan p;
    const struct plan_span zero[] = {{H, 0, 1}, {H, 5, 0}};
    const struct plan_span big[] = {{H, 0, 126}};
    const struct plan_span past[] = {{H, 65535, 2}};
    const struct plan_span past2[] = {{H, 65412, 125}};
    errno = 0;
    assert_int_equal(plan_build(zero, 2, 8, &p), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(p.requests);
    errno = 0;
    assert_int_equal(plan_build(big, 1, 8, &p), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(plan_build(past, 1, 8, &p), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(plan_build(past2, 1, 8, &p), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_locate(void **state)
{
    (void)state;
    struct plan p;
    const struct plan_span a[] = {{H, 10, 2}, {H, 14, 2}, {I, 10, 2}, {H, 100, 2}};
    assert_int_equal(plan_build(a, 4, 2, &p), 0);
    assert_int_equal(p.count, 3);
    uint16_t off = 999;
    int i = plan_locate(&p, H, 15, 1, &off);
    assert_true(i >= 0);
    expect_req(&p, (size_t)i, H, 10, 6);
    assert_int_equal(off, 5);
    i = plan_locate(&p, I, 10, 2, &off);
    assert_true(i >= 0);
    expect_req(&p, (size_t)i, I, 10, 2);
    assert_int_equal(off, 0);
    /* inside the gap read across is found too */
    assert_true(plan_locate(&p, H, 12, 2, &off) >= 0);
    assert_int_equal(off, 2);
    /* straddling the end of a request, a wrong table, or not read at all */
    assert_int_equal(plan_locate(&p, H, 15, 2, &off), -1);
    assert_int_equal(plan_locate(&p, I, 11, 2, &off), -1);
    assert_int_equal(plan_locate(&p, H, 50, 1, &off), -1);
    assert_int_equal(plan_locate(&p, I, 100, 1, &off), -1);
    plan_free(&p);
    assert_null(p.requests);
    assert_int_equal(p.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_contiguous_and_gap),
        cmocka_unit_test(test_limit_125),       cmocka_unit_test(test_overlap_duplicate_unsorted),
        cmocka_unit_test(test_tables_separate), cmocka_unit_test(test_top_of_address_space),
        cmocka_unit_test(test_invalid),         cmocka_unit_test(test_locate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
