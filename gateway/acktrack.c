/*
 * Alarms awaiting acknowledgement, kept in the order they were sent. A
 * receiving centre acknowledges within seconds, so the list stays short; a
 * linear scan by id is simpler than an index and fast enough for thousands.
 */
#include "acktrack.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct acktrack {
    int64_t timeout_ms;
    struct ack_pending *items;
    size_t count, cap;
};

struct acktrack *acktrack_new(int64_t timeout_ms)
{
    struct acktrack *t = xcalloc(1, sizeof(*t));
    t->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    return t;
}

void acktrack_free(struct acktrack *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->count; i++)
        free(t->items[i].json);
    free(t->items);
    free(t);
}

void acktrack_sent(struct acktrack *t, const char *event_id, uint64_t seq, const char *json,
                   int64_t now_mono)
{
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->items = xrealloc(t->items, t->cap * sizeof(*t->items));
    }
    struct ack_pending *p = &t->items[t->count++];
    memset(p, 0, sizeof(*p));
    strlcpy_fg(p->event_id, event_id, sizeof(p->event_id));
    p->seq = seq;
    p->json = xstrdup(json);
    p->sent_mono = now_mono;
    p->due_mono = now_mono + t->timeout_ms;
}

int acktrack_ack(struct acktrack *t, const char *event_id)
{
    for (size_t i = 0; i < t->count; i++) {
        if (strcmp(t->items[i].event_id, event_id) == 0) {
            free(t->items[i].json);
            memmove(&t->items[i], &t->items[i + 1], (t->count - i - 1) * sizeof(*t->items));
            t->count--;
            return 1;
        }
    }
    return 0;
}

size_t acktrack_due(struct acktrack *t, int64_t now_mono, const struct ack_pending **out,
                    size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < t->count && n < max; i++) {
        struct ack_pending *p = &t->items[i];
        if (now_mono < p->due_mono)
            continue;
        p->due_mono = now_mono + t->timeout_ms;
        p->resends++;
        out[n++] = p;
    }
    return n;
}

size_t acktrack_waiting(const struct acktrack *t)
{
    return t->count;
}

const struct ack_pending *acktrack_get(const struct acktrack *t, size_t i)
{
    return i < t->count ? &t->items[i] : NULL;
}

bool acktrack_overdue(const struct acktrack *t, int64_t now_mono)
{
    return t->count > 0 && now_mono - t->items[0].sent_mono >= t->timeout_ms;
}
