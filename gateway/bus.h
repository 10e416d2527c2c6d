/*
 * Bus pollers: one thread per configured bus (an RS-485 line or a Modbus TCP
 * endpoint), so a dead or slow bus never delays another. Devices on a bus share
 * its one connection and are polled in turn. A failing device is retried, then
 * reported down and skipped with an exponential backoff; a failing bus
 * reconnects forever with backoff. Results go to the queue as struct bus_msg.
 */
#ifndef FIREGW_BUS_H
#define FIREGW_BUS_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"
#include "queue.h"
#include "sample.h"

enum bus_msg_type {
    BUS_MSG_SAMPLE,       /* a device answered: sample is set */
    BUS_MSG_DEVICE_STATE, /* a device went down (after fail_after failed polls) or came back */
    BUS_MSG_BUS_STATE,    /* the bus connection was lost or established */
};

struct bus_msg {
    enum bus_msg_type type;
    const struct cfg *cfg; /* the poller's config: indexes below are into it */
    size_t bus;
    size_t device; /* DEVICE_STATE and SAMPLE */
    bool up;       /* DEVICE_STATE and BUS_STATE */
    struct ev_time t;
    char why[200];               /* for down: the library's message and what was tried */
    struct device_sample sample; /* SAMPLE only */
};

void bus_msg_free(void *msg);

struct bus_poller;

/*
 * Start polling bus index `bus` of cfg in a new thread, posting to q. cfg and
 * q must outlive the poller. NULL with err on failure to start the thread.
 */
struct bus_poller *bus_start(const struct cfg *cfg, size_t bus, struct queue *q, char *err,
                             size_t errlen);
/* Stop the thread (it finishes the request in flight), close the bus, free. NULL safe. */
void bus_stop(struct bus_poller *p);

/* Counters for the heartbeat, read without locking (approximate). */
struct bus_stats {
    unsigned long polls_ok;
    unsigned long polls_failed;
    unsigned long requests;
    bool connected;
    int64_t alive_mono;     /* last time the poller came round its loop (monotonic) */
    int64_t stall_limit_ms; /* a poller quiet for longer than this is stuck */
};
void bus_get_stats(const struct bus_poller *p, struct bus_stats *out);

#endif
