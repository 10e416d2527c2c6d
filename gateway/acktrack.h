/*
 * End-to-end acknowledgement of alarms by a receiving centre (EN 54-21): for
 * one uplink, the alarms sent and not yet acknowledged by event id, when each
 * is due to be sent again, and whether the transmission path is in fault
 * because an acknowledgement is overdue. Pure: times are passed in, the
 * caller publishes and raises the events.
 */
#ifndef FIREGW_ACKTRACK_H
#define FIREGW_ACKTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acktrack;

/* One alarm waiting for its acknowledgement. */
struct ack_pending {
    char event_id[37];
    uint64_t seq;
    char *json;        /* the event as published, sent again unchanged */
    int64_t sent_mono; /* first sent */
    int64_t due_mono;  /* next resend */
    unsigned resends;
};

/* Track alarms, resending each after timeout_ms without acknowledgement. */
struct acktrack *acktrack_new(int64_t timeout_ms);
void acktrack_free(struct acktrack *t);

/* An alarm was sent: wait for its acknowledgement (json is copied). */
void acktrack_sent(struct acktrack *t, const char *event_id, uint64_t seq, const char *json,
                   int64_t now_mono);

/*
 * An acknowledgement arrived. Returns 1 if it acknowledged a waiting alarm
 * (which is forgotten), 0 for an unknown or repeated id.
 */
int acktrack_ack(struct acktrack *t, const char *event_id);

/*
 * Alarms due to be sent again at now, oldest first: each is returned once per
 * timeout (its next due time moves on). Returns how many were written to out
 * (at most max). The pointers stay valid until the next call that changes t.
 */
size_t acktrack_due(struct acktrack *t, int64_t now_mono, const struct ack_pending **out,
                    size_t max);

/* Alarms still waiting. */
size_t acktrack_waiting(const struct acktrack *t);
/* Waiting alarm i (0 .. waiting - 1), oldest first; NULL past the end. Valid until t changes. */
const struct ack_pending *acktrack_get(const struct acktrack *t, size_t i);
/* The oldest waiting alarm has been waiting longer than the timeout. */
bool acktrack_overdue(const struct acktrack *t, int64_t now_mono);

#endif
