/*
 * Bus pollers: one thread per configured bus (an RS-485 line or a Modbus TCP
 * endpoint), so a dead or slow bus never delays another. Devices on a bus share
 * its one connection and are polled in turn (on TCP, with up to the bus's
 * max_in_flight requests sent before their replies are read). A failing
 * device is retried, then reported down and skipped with an exponential
 * backoff; a failing bus reconnects forever with backoff. Results go to the
 * queue as struct bus_msg.
 */
#ifndef FIREGW_BUS_H
#define FIREGW_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "plan.h"
#include "queue.h"
#include "sample.h"

enum bus_msg_type {
    BUS_MSG_SAMPLE,       /* a device answered: sample is set */
    BUS_MSG_DEVICE_STATE, /* a device went down (after fail_after failed polls) or came back */
    BUS_MSG_BUS_STATE,    /* the bus connection was lost or established */
    BUS_MSG_WAKE,         /* nothing from a bus: wakes the main loop for work queued elsewhere */
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
/* Wake the main loop waiting on q (a BUS_MSG_WAKE message; it carries nothing). */
void bus_wake(struct queue *q);

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

/*
 * Probes: reading a device's registers, or finding which unit ids answer, on
 * request (the installer's `firegw probe` and `firegw scan`, the web UI). On a
 * running poller they run on its thread and connection between poll cycles,
 * one Modbus request at a time, so RS-485 timing stays serialised and polling
 * keeps its schedule: a request is started only when it fits before the next
 * cycle is due, except one per cycle when none fitted (a busy bus still makes
 * progress, and a cycle is delayed by at most one probe request).
 */
#define BUS_PROBE_MAX_BLOCKS 32
#define BUS_PROBE_MAX_PENDING 8
#define BUS_PROBE_MAX_TIMEOUT_MS 2000
#define BUS_UNIT_NOT_TRIED (-1)

enum bus_probe_kind {
    BUS_PROBE_READ, /* read blocks of registers of one unit */
    BUS_PROBE_SCAN, /* one small read of every unit id in a range */
};

/* A block of registers: one Modbus read request. */
struct bus_block {
    enum reg_table table;
    uint16_t address;
    uint16_t count; /* 1..PLAN_MAX_REGS */
};

struct bus_probe_req {
    enum bus_probe_kind kind;
    unsigned long id;   /* the caller's; echoed in the reply */
    int64_t timeout_ms; /* per request, 10..BUS_PROBE_MAX_TIMEOUT_MS; 0: the bus's (capped) */
    /* READ */
    int unit;
    int retries; /* extra tries per block, 0..5 */
    size_t nblocks;
    struct bus_block blocks[BUS_PROBE_MAX_BLOCKS];
    /* SCAN: units from..to (1..247 on RTU, 0..255 on TCP), each asked for scan_read */
    int from, to;
    struct bus_block scan_read; /* count is taken as 1 */
};

/*
 * The outcome. Errors are libmodbus errno values: ETIMEDOUT (no answer),
 * EMBXILFUN.. EMBXGTAR (the device answered with that exception), EMBBADCRC
 * (garbled), ...; probe.h turns them into words.
 */
struct bus_probe_reply {
    unsigned long id;
    enum bus_probe_kind kind;
    size_t bus; /* index in the poller's config */
    char bus_id[65];
    int rc; /* 0: ran to its end (outcomes below); -1: not run or cut short, see err */
    char err[240];
    int unit;       /* READ */
    size_t nblocks; /* READ: as requested */
    struct bus_block blocks[BUS_PROBE_MAX_BLOCKS];
    int block_err[BUS_PROBE_MAX_BLOCKS]; /* 0: read; else the last try's errno; -1: not tried */
    uint16_t regs[BUS_PROBE_MAX_BLOCKS][PLAN_MAX_REGS];
    int from, to; /* SCAN */
    struct bus_block scan_read;
    int unit_err[256]; /* 0: answered with registers; else errno; BUS_UNIT_NOT_TRIED */
    uint16_t unit_value[256];
};

/*
 * Queue req on the running poller p. Exactly one struct bus_probe_reply
 * (free with free()) arrives on reply_q later: when done, when the bus is not
 * connected, when cancelled, or when the poller stops. reply_q must outlive
 * the poller. -1 with err when req is invalid or BUS_PROBE_MAX_PENDING probes
 * are already waiting.
 */
int bus_probe_submit(struct bus_poller *p, const struct bus_probe_req *req, struct queue *reply_q,
                     char *err, size_t errlen);
/* Cut short the probe with this id (waiting or running): its reply says "cancelled". */
void bus_probe_cancel(struct bus_poller *p, unsigned long id);

/* Whether unit is a unit id a request may address on bus b: 1..247 on RTU; 0..247 or 255 on TCP. */
bool bus_unit_valid(const struct cfg_bus *b, int unit);

/*
 * A connection of its own to a bus, for the command line when no daemon owns
 * the bus: opened exactly as the poller opens its connection.
 */
struct bus_link;

/* Connect to bus b (which must outlive the link). NULL with err. */
struct bus_link *bus_link_open(const struct cfg_bus *b, char *err, size_t errlen);
/* "host:port" or "device (baud, 8N1)", for messages. */
const char *bus_link_endpoint(const struct bus_link *l);
/*
 * Run req to its end on l, blocking, exactly as a poller runs it. The reply
 * is the caller's (free()); NULL with err when req is invalid.
 */
struct bus_probe_reply *bus_link_run(struct bus_link *l, const struct bus_probe_req *req, char *err,
                                     size_t errlen);
/* Close and free. NULL safe. */
void bus_link_close(struct bus_link *l);

#endif
