/*
 * Unit tests for the hand-over queue: FIFO order across ring growth and
 * wrap-around, timed and non-blocking pops, a consumer woken by a producer,
 * several producers at once (nothing lost, each producer's order kept), and
 * queue_free handing leftovers to the free function.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "queue.h"
#include "util.h"

/* Items are small integers smuggled in pointers; 0 would read as "no item". */
#define ITEM(n) ((void *)(uintptr_t)(n))
#define VAL(p) ((uintptr_t)(p))

static void test_fifo_growth_wrap(void **state)
{
    (void)state;
    struct queue *q = queue_new();
    uintptr_t next_in = 1, next_out = 1;
    /* move the head well into the ring, then overfill it so growth must unwrap */
    for (int i = 0; i < 50; i++)
        queue_push(q, ITEM(next_in++));
    for (int i = 0; i < 40; i++)
        assert_int_equal(VAL(queue_pop(q, 0)), next_out++);
    for (int i = 0; i < 1000; i++)
        queue_push(q, ITEM(next_in++));
    assert_int_equal(queue_length(q), 1010);
    for (int i = 0; i < 500; i++)
        assert_int_equal(VAL(queue_pop(q, 0)), next_out++);
    for (int i = 0; i < 300; i++)
        queue_push(q, ITEM(next_in++));
    while (next_out < next_in)
        assert_int_equal(VAL(queue_pop(q, 0)), next_out++);
    assert_int_equal(queue_length(q), 0);
    assert_null(queue_pop(q, 0));
    queue_free(q, NULL);
}

static void test_timeout(void **state)
{
    (void)state;
    struct queue *q = queue_new();
    int64_t t0 = mono_ms();
    assert_null(queue_pop(q, 0));
    assert_null(queue_pop(q, -5));
    assert_true(mono_ms() - t0 < 5000);
    t0 = mono_ms();
    assert_null(queue_pop(q, 120));
    int64_t took = mono_ms() - t0;
    assert_true(took >= 119);
    assert_true(took < 2000);
    /* an item already there is returned at once, however long the timeout */
    queue_push(q, ITEM(7));
    t0 = mono_ms();
    assert_int_equal(VAL(queue_pop(q, 10000)), 7);
    assert_true(mono_ms() - t0 < 5000);
    queue_free(q, NULL);
}

struct late_push {
    struct queue *q;
    struct queue *go;
};

static void *push_when_told(void *arg)
{
    struct late_push *lp = arg;
    /* wait until the consumer says it is about to block */
    for (int i = 0; i < 200 && !queue_pop(lp->go, 100); i++)
        ;
    queue_push(lp->q, ITEM(99));
    return NULL;
}

static void test_wakes_consumer(void **state)
{
    (void)state;
    struct late_push lp = {queue_new(), queue_new()};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, push_when_told, &lp), 0);
    int64_t t0 = mono_ms();
    queue_push(lp.go, ITEM(1));
    assert_int_equal(VAL(queue_pop(lp.q, 20000)), 99);
    /* woken by the push, long before the timeout */
    assert_true(mono_ms() - t0 < 10000);
    pthread_join(t, NULL);
    queue_free(lp.q, NULL);
    queue_free(lp.go, NULL);
}

struct quiet_push {
    struct queue *q;
    int consumer_blocked; /* the consumer was seen waiting before the quiet push */
    int still_waiting;    /* ...and still waiting, the item untaken, 300 ms after it */
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *push_quietly_then_kick(void *arg)
{
    struct quiet_push *qp = arg;
    /* wait (at most 20 s) until the consumer is blocked inside queue_pop */
    for (int i = 0; i < 20000 && queue_waiters(qp->q) == 0; i++)
        sleep_ms(1);
    qp->consumer_blocked = queue_waiters(qp->q) == 1;
    queue_push_quiet(qp->q, ITEM(5));
    /* a quiet push does not wake it: the item is still queued a while later */
    sleep_ms(300);
    qp->still_waiting = queue_waiters(qp->q) == 1 && queue_length(qp->q) == 1;
    queue_push_quiet(qp->q, ITEM(6));
    queue_kick(qp->q);
    return NULL;
}

static void test_quiet_push_waits_for_the_kick(void **state)
{
    (void)state;
    struct quiet_push qp = {queue_new(), 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, push_quietly_then_kick, &qp), 0);
    int64_t t0 = mono_ms();
    /* woken by the kick, not by the first quiet push, not by the timeout; in order */
    assert_int_equal(VAL(queue_pop(qp.q, 20000)), 5);
    assert_true(mono_ms() - t0 < 15000);
    pthread_join(t, NULL);
    assert_true(qp.consumer_blocked);
    assert_true(qp.still_waiting);
    assert_int_equal(VAL(queue_pop(qp.q, 0)), 6);
    assert_int_equal(queue_waiters(qp.q), 0);
    /* a quiet item is still there for a consumer's own timeout */
    queue_push_quiet(qp.q, ITEM(8));
    assert_int_equal(VAL(queue_pop(qp.q, 20)), 8);
    queue_free(qp.q, NULL);
}

#define PRODUCERS 4
#define PER_PRODUCER 20000

struct producer {
    struct queue *q;
    uintptr_t id;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (uintptr_t i = 0; i < PER_PRODUCER; i++)
        queue_push(p->q, ITEM((p->id << 20) | (i + 1)));
    return NULL;
}

static void test_multi_producer(void **state)
{
    (void)state;
    struct queue *q = queue_new();
    pthread_t threads[PRODUCERS];
    struct producer prod[PRODUCERS];
    for (uintptr_t i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct producer){q, i + 1};
        assert_int_equal(pthread_create(&threads[i], NULL, produce, &prod[i]), 0);
    }
    uintptr_t last[PRODUCERS + 1] = {0};
    size_t got = 0;
    /* bounded: each pop waits at most 5 s, and only while items are missing */
    while (got < PRODUCERS * PER_PRODUCER) {
        void *item = queue_pop(q, 5000);
        assert_non_null(item);
        uintptr_t id = VAL(item) >> 20, seq = VAL(item) & 0xFFFFF;
        assert_true(id >= 1 && id <= PRODUCERS);
        assert_int_equal(seq, last[id] + 1); /* each producer's order is kept */
        last[id] = seq;
        got++;
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(threads[i], NULL);
    assert_null(queue_pop(q, 0));
    queue_free(q, NULL);
}

static size_t freed;

static void count_free(void *item)
{
    freed += VAL(item);
}

static void test_free_leftovers(void **state)
{
    (void)state;
    struct queue *q = queue_new();
    for (uintptr_t i = 1; i <= 100; i++)
        queue_push(q, ITEM(i));
    assert_int_equal(VAL(queue_pop(q, 0)), 1);
    freed = 0;
    queue_free(q, count_free);
    assert_int_equal(freed, 100 * 101 / 2 - 1);
    queue_free(NULL, count_free);

    /* real allocations: the sanitizer build checks nothing leaks */
    q = queue_new();
    for (int i = 0; i < 10; i++)
        queue_push(q, xmalloc(16));
    queue_free(q, free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_growth_wrap),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_wakes_consumer),
        cmocka_unit_test(test_multi_producer),
        cmocka_unit_test(test_free_leftovers),
        cmocka_unit_test(test_quiet_push_waits_for_the_kick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
