/*
 * A thread-safe FIFO of pointers: the one hand-over point between the bus
 * poller threads and the main loop. Producers never block; the consumer waits
 * with a timeout. The queue does not own what it carries.
 */
#ifndef FIREGW_QUEUE_H
#define FIREGW_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct queue;

struct queue *queue_new(void);
/* Free the queue; items still in it are passed to free_item (may be NULL). */
void queue_free(struct queue *q, void (*free_item)(void *));
/* Append an item; never blocks, never fails. */
void queue_push(struct queue *q, void *item);
/*
 * Append without waking a waiting consumer: for items that can wait for the
 * producer's next queue_push or queue_kick (or the consumer's own timeout).
 */
void queue_push_quiet(struct queue *q, void *item);
/* Wake a waiting consumer for the items pushed quietly. */
void queue_kick(struct queue *q);
/* Take the oldest item, waiting up to timeout_ms (0: don't wait). NULL if none. */
void *queue_pop(struct queue *q, int64_t timeout_ms);
size_t queue_length(struct queue *q);
/* Consumers blocked in queue_pop right now (for tests and diagnostics). */
size_t queue_waiters(struct queue *q);

#endif
