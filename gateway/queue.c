/*
 * The hand-over queue between bus pollers and the main loop: a growing ring
 * of pointers under one mutex, and a condition variable on the monotonic
 * clock so a wall-clock step (NTP, RTC set at boot) cannot stretch or cut a
 * consumer's wait. Pushing never blocks: a poller must never wait for the
 * main loop, or a slow publish could delay reading a detector.
 */
#include "queue.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

#define QUEUE_INITIAL_CAP 64

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    void **items;
    size_t cap;
    size_t head; /* index of the oldest item */
    size_t len;
    size_t waiters; /* consumers inside pthread_cond_timedwait */
};

struct queue *queue_new(void)
{
    struct queue *q = xcalloc(1, sizeof(*q));
    pthread_condattr_t attr;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->nonempty, &attr);
    pthread_condattr_destroy(&attr);
    q->cap = QUEUE_INITIAL_CAP;
    q->items = xmalloc(q->cap * sizeof(*q->items));
    return q;
}

void queue_free(struct queue *q, void (*free_item)(void *))
{
    if (!q)
        return;
    if (free_item)
        for (size_t i = 0; i < q->len; i++)
            free_item(q->items[(q->head + i) % q->cap]);
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->lock);
    free(q->items);
    free(q);
}

/* Double the ring, moving the items so the oldest is at index 0. */
static void grow(struct queue *q)
{
    size_t ncap = q->cap * 2;
    void **items = xmalloc(ncap * sizeof(*items));
    for (size_t i = 0; i < q->len; i++)
        items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->cap = ncap;
    q->head = 0;
}

static void append(struct queue *q, void *item, bool wake)
{
    pthread_mutex_lock(&q->lock);
    if (q->len == q->cap)
        grow(q);
    q->items[(q->head + q->len) % q->cap] = item;
    q->len++;
    if (wake)
        pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

void queue_push(struct queue *q, void *item)
{
    append(q, item, true);
}

void queue_push_quiet(struct queue *q, void *item)
{
    append(q, item, false);
}

void queue_kick(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    if (q->len > 0)
        pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

void *queue_pop(struct queue *q, int64_t timeout_ms)
{
    void *item = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->len == 0 && timeout_ms > 0) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += (time_t)(timeout_ms / 1000);
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        /* Loop: wake-ups can be spurious, or another consumer may win the item. */
        q->waiters++;
        while (q->len == 0)
            if (pthread_cond_timedwait(&q->nonempty, &q->lock, &deadline) == ETIMEDOUT)
                break;
        q->waiters--;
    }
    if (q->len > 0) {
        item = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    pthread_mutex_unlock(&q->lock);
    return item;
}

size_t queue_length(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->len;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t queue_waiters(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->waiters;
    pthread_mutex_unlock(&q->lock);
    return n;
}
