/*
 * Unit tests for gateway/acktrack.c: alarms wait for their acknowledgement by
 * event id, are due again exactly at the timeout, and the path is overdue
 * while any alarm waits longer than the timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "acktrack.h"

static void test_ack_forgets_the_alarm(void **state)
{
    (void)state;
    struct acktrack *t = acktrack_new(100000);
    acktrack_sent(t, "id-1", 1, "{\"n\":1}", 0);
    acktrack_sent(t, "id-2", 2, "{\"n\":2}", 10);
    assert_int_equal(acktrack_waiting(t), 2);
    assert_int_equal(acktrack_ack(t, "id-1"), 1);
    assert_int_equal(acktrack_ack(t, "id-1"), 0); /* repeated ack */
    assert_int_equal(acktrack_ack(t, "nope"), 0);
    assert_int_equal(acktrack_waiting(t), 1);
    assert_int_equal(acktrack_ack(t, "id-2"), 1);
    assert_int_equal(acktrack_waiting(t), 0);
    acktrack_free(t);
}

static void test_due_exactly_at_timeout_and_again_after(void **state)
{
    (void)state;
    struct acktrack *t = acktrack_new(100000);
    const struct ack_pending *due[4];
    acktrack_sent(t, "id-1", 7, "{\"n\":1}", 1000);
    assert_int_equal(acktrack_due(t, 100999, due, 4), 0);
    assert_false(acktrack_overdue(t, 100999));
    assert_int_equal(acktrack_due(t, 101000, due, 4), 1);
    assert_string_equal(due[0]->event_id, "id-1");
    assert_string_equal(due[0]->json, "{\"n\":1}");
    assert_int_equal(due[0]->seq, 7);
    assert_int_equal(due[0]->resends, 1);
    assert_true(acktrack_overdue(t, 101000));
    /* returned once per timeout, not on every call */
    assert_int_equal(acktrack_due(t, 101001, due, 4), 0);
    assert_int_equal(acktrack_due(t, 201000, due, 4), 1);
    assert_int_equal(due[0]->resends, 2);
    assert_int_equal(acktrack_ack(t, "id-1"), 1);
    assert_false(acktrack_overdue(t, 301000));
    acktrack_free(t);
}

static void test_due_oldest_first_and_bounded(void **state)
{
    (void)state;
    struct acktrack *t = acktrack_new(50);
    const struct ack_pending *due[2];
    acktrack_sent(t, "a", 1, "{}", 0);
    acktrack_sent(t, "b", 2, "{}", 1);
    acktrack_sent(t, "c", 3, "{}", 2);
    assert_int_equal(acktrack_due(t, 100, due, 2), 2);
    assert_string_equal(due[0]->event_id, "a");
    assert_string_equal(due[1]->event_id, "b");
    /* the one left out is due on the next call */
    assert_int_equal(acktrack_due(t, 100, due, 2), 1);
    assert_string_equal(due[0]->event_id, "c");
    acktrack_free(t);
    acktrack_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_forgets_the_alarm),
        cmocka_unit_test(test_due_exactly_at_timeout_and_again_after),
        cmocka_unit_test(test_due_oldest_first_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
