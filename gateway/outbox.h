/*
 * The durable outbox: every event for every uplink is written here, and
 * synced to disk, before it is handed to MQTT, and stays until that uplink's
 * broker has acknowledged it (QoS 1 PUBACK). It survives a crash or a power
 * cut at any moment, is sent most urgent first (fire alarms, then pre-alarms,
 * then faults, then the rest; in event order within each), and is bounded:
 * when an uplink's share is full, its oldest least urgent events are dropped
 * to make room, never a fire alarm or a fault (docs/mqtt-api.md, Delivery).
 *
 * It also remembers which fire alarms still wait for the receiving centre's
 * acknowledgement, so a restart does not forget them.
 *
 * One SQLite database (WAL, synchronous=FULL), used by the main thread only.
 */
#ifndef FIREGW_OUTBOX_H
#define FIREGW_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OUTBOX_FILE_NAME "outbox.db"

struct outbox;

struct outbox_item {
    int64_t id; /* row id, to mark it done */
    int priority;
    uint64_t seq;
    char *event_id;
    char *subtopic;
    char *payload;
};

/* Open (or create) the outbox at path. NULL with err. */
struct outbox *outbox_open(const char *path, char *err, size_t errlen);
void outbox_close(struct outbox *o);

/*
 * Store one message for uplink, durable when this returns 0. When the
 * uplink has max rows (0: 100000), the oldest row of the least urgent droppable class
 * (priority 3, then 1) makes room and *dropped says so; fire alarms (0) and
 * faults (2) are never dropped, and are stored over the bound if nothing
 * else can go. -1 with err when the disk refuses.
 */
int outbox_put(struct outbox *o, const char *uplink, size_t max, int priority, uint64_t seq,
               const char *event_id, const char *subtopic, const char *payload, bool *dropped,
               char *err, size_t errlen);

/*
 * Up to max stored messages for uplink, most urgent first, skipping the row
 * ids in skip (those already handed to MQTT). Returns how many were filled
 * into out (free each with outbox_item_clear), or -1.
 */
int outbox_next(struct outbox *o, const char *uplink, const int64_t *skip, size_t nskip,
                struct outbox_item *out, size_t max);
void outbox_item_clear(struct outbox_item *it);

/* The broker has message id: forget it. 0 or -1. */
int outbox_done(struct outbox *o, int64_t id);
/* Messages stored for uplink. */
size_t outbox_count(struct outbox *o, const char *uplink);

/* A fire alarm sent on uplink now waits for the receiving centre's acknowledgement. */
int outbox_ack_wait(struct outbox *o, const char *uplink, const char *event_id, uint64_t seq,
                    const char *payload);
/* Acknowledged: forget it. */
int outbox_ack_done(struct outbox *o, const char *uplink, const char *event_id);
/* Every alarm still waiting on uplink, oldest first, through fn. Returns the count or -1. */
int outbox_ack_each(struct outbox *o, const char *uplink,
                    void (*fn)(void *arg, const char *event_id, uint64_t seq, const char *payload),
                    void *arg);

#endif
