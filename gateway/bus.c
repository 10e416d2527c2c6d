/*
 * Bus pollers. Each configured bus gets one thread and one libmodbus context;
 * the thread owns the context, the per-device request plans and failure state,
 * and talks to the rest of the gateway only through the queue. It owns the
 * policy that keeps one bad device or line from hiding the others: a device
 * that keeps failing is reported down and skipped with a growing backoff, and
 * a lost connection is reported once and re-established forever. Between
 * poll cycles the thread also runs probe requests (bus.h) on the same
 * connection; struct bus_link runs the same requests on a connection of its
 * own for the command line. On a TCP bus with max_in_flight > 1 a cycle keeps
 * several requests in flight (poll_pipelined).
 */
#include "bus.h"

#include <errno.h>
#include <math.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "codec.h"
#include "log.h"
#include "plan.h"
#include "util.h"

/* Where a device stands in a pipelined poll cycle (max_in_flight > 1). */
enum pipe_state {
    PIPE_IDLE,  /* not asked in this cycle (yet) */
    PIPE_ASKED, /* its requests are out, not all answered yet */
    PIPE_DONE,  /* every request answered and the sample posted */
    PIPE_REDO,  /* to be polled one request at a time after the window */
};

struct device {
    size_t index; /* into cfg.devices */
    const struct cfg_device *cfg;
    size_t *dets; /* indexes into cfg.detectors of the detectors on this device */
    size_t ndets;
    struct plan plan;
    uint16_t **regs; /* one buffer per plan request */
    int fails;       /* consecutive failed polls */
    bool down;       /* reported down, not yet back */
    int64_t backoff_ms;
    int64_t skip_until;         /* monotonic; not polled before this */
    struct log_limit rl;        /* the device's failures */
    struct log_limit decode_rl; /* status points that do not decode */
    struct reading *last;       /* the readings last posted, to tell news from repeats */
    bool has_last;
    bool last_lc_known;
    uint32_t last_lc;
    enum pipe_state pipe;
    size_t piped; /* requests answered in this pipelined cycle */
};

enum reported { REP_NONE, REP_DOWN, REP_UP };

/* A probe request on its way through a poller or a link. */
struct probe_job {
    struct bus_probe_req req;
    struct queue *reply_q;
    struct bus_probe_reply *rep; /* filled as the job runs */
    int next;                    /* READ: next block; SCAN: next unit id */
    atomic_bool cancelled;
    struct probe_job *next_job;
};

struct bus_poller {
    const struct cfg *cfg;
    bool quiet_pending; /* samples queued without waking the main loop this cycle */
    size_t bus;
    const struct cfg_bus *b;
    struct queue *q;
    char endpoint[160];
    modbus_t *ctx;
    bool connected;
    enum reported reported;
    int64_t reconnect_ms; /* next reconnect delay; reset only by a healthy poll cycle */
    int64_t reconnect_at; /* monotonic; no connect attempt before this */
    int silent_cycles;    /* TCP: consecutive cycles in which no asked device answered */
    uint16_t tid;         /* transaction id of the next pipelined request */
    struct log_limit rl;
    struct log_limit pipe_rl; /* pipelined cycles that fell back to one request at a time */
    struct device *devs;
    size_t ndevs;

    pthread_t thread;
    pthread_mutex_t lock; /* with wake: lets bus_stop interrupt any wait at once */
    pthread_cond_t wake;
    atomic_bool stop;

    atomic_ulong polls_ok;
    atomic_ulong polls_failed;
    atomic_ulong requests;
    atomic_bool up;
    atomic_llong alive_mono; /* last time the thread came round its loop */
    int64_t stall_limit_ms;  /* longer than any legitimate pause of the loop */

    /* Probes waiting or running, oldest first; the list and kicks under lock. */
    struct probe_job *jobs;
    size_t njobs;
    unsigned kicks;     /* bumped by each submission, to end a nap early */
    int probe_steps;    /* probe requests run since the last poll cycle */
    char down_why[200]; /* why the bus is down, for probes refused meanwhile */
};

void bus_msg_free(void *msg)
{
    struct bus_msg *m = msg;
    if (!m)
        return;
    free(m->sample.readings);
    free(m);
}

void bus_wake(struct queue *q)
{
    struct bus_msg *m = xcalloc(1, sizeof(*m));
    m->type = BUS_MSG_WAKE;
    queue_push(q, m);
}

/* snprintf for messages that may be cut short on purpose: a truncated reason beats none. */
static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static struct ev_time now_both(void)
{
    return (struct ev_time){mono_ms(), wall_ms()};
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static bool stopping(struct bus_poller *p)
{
    return atomic_load(&p->stop);
}

static void post(struct bus_poller *p, enum bus_msg_type type, size_t device, bool up,
                 const char *why)
{
    struct bus_msg *m = xcalloc(1, sizeof(*m));
    m->type = type;
    m->cfg = p->cfg;
    m->bus = p->bus;
    m->device = device;
    m->up = up;
    m->t = now_both();
    strlcpy_fg(m->why, why ? why : "", sizeof(m->why));
    queue_push(p->q, m);
}

static void set_timeout(modbus_t *ctx, int64_t ms)
{
    modbus_set_response_timeout(ctx, (uint32_t)(ms / 1000), (uint32_t)(ms % 1000) * 1000u);
    /*
     * No byte timeout: the response timeout then bounds the whole reply. With
     * one, each further byte may take up to it, and a device that drips or
     * chatters holds the whole line for minutes.
     */
    modbus_set_byte_timeout(ctx, 0, 0);
}

/*
 * A reply of count registers takes this long on the wire of bus b (RTU:
 * address, function, byte count, data and CRC at the line's character
 * size; TCP: nothing worth counting), rounded up.
 */
static int64_t wire_ms(const struct cfg_bus *b, unsigned count)
{
    if (b->type != BUS_RTU || b->baud <= 0)
        return 0;
    int64_t bits = 1 + b->data_bits + (b->parity != 'N') + b->stop_bits;
    int64_t bytes = 5 + 2 * (int64_t)count;
    return (bytes * bits * 1000 + b->baud - 1) / b->baud;
}

/*
 * Whether errno e from a request means the line itself is gone rather than
 * one device failing to answer. A timeout is never a link error: on RS-485 it
 * is the normal sign of a silent device, and on TCP a gateway may time out
 * for one unit while serving the others.
 */
static bool link_error(const struct cfg_bus *b, int e)
{
    if (b->type == BUS_TCP)
        return e == ECONNRESET || e == EPIPE || e == EBADF || e == ENOTCONN || e == ECONNABORTED ||
               e == ECONNREFUSED || e == ENETDOWN || e == ENETUNREACH || e == EHOSTUNREACH;
    return e == EIO || e == ENXIO || e == EBADF || e == ENODEV;
}

static void bus_down(struct bus_poller *p, const char *why)
{
    int64_t now = mono_ms();
    atomic_store(&p->up, false);
    strlcpy_fg(p->down_why, why, sizeof(p->down_why));
    if (p->reported != REP_DOWN) {
        p->reported = REP_DOWN;
        log_limit_reset(&p->rl);
        log_limited(&p->rl, now, LOG_LVL_WARN, "bus %s down: %s", p->b->id, why);
        post(p, BUS_MSG_BUS_STATE, 0, false, why);
    } else {
        log_limited(&p->rl, now, LOG_LVL_WARN, "bus %s still down: %s", p->b->id, why);
    }
}

/* A libmodbus context for bus b, not yet connected. NULL with err. */
static modbus_t *new_context(const struct cfg_bus *b, const char *endpoint, char *err,
                             size_t errlen)
{
    modbus_t *ctx;
    if (b->type == BUS_TCP) {
        char port[16];
        snprintf(port, sizeof(port), "%d", b->port);
        ctx = modbus_new_tcp_pi(b->host, port);
    } else {
        ctx = modbus_new_rtu(b->device, b->baud, b->parity, b->data_bits, b->stop_bits);
    }
    if (!ctx)
        snprintf(err, errlen, "cannot set up Modbus for %s: %s", endpoint, modbus_strerror(errno));
    return ctx;
}

/* Connect ctx as bus b wants it (RS-485 mode where asked). 0, or -1 with why. */
static int open_context(modbus_t *ctx, const struct cfg_bus *b, const char *endpoint, char *why,
                        size_t whylen)
{
    set_timeout(ctx, b->timeout_ms);
    if (modbus_connect(ctx) == -1) {
        say(why, whylen, "cannot connect to %s: %s", endpoint, modbus_strerror(errno));
        return -1;
    }
    if (b->type == BUS_RTU && b->rs485 && modbus_rtu_set_serial_mode(ctx, MODBUS_RTU_RS485) == -1)
        log_warn("bus %s: %s refuses RS-485 mode (%s); continuing in its current mode", b->id,
                 endpoint, modbus_strerror(errno));
    return 0;
}

static int connect_bus(struct bus_poller *p)
{
    char why[200];
    if (open_context(p->ctx, p->b, p->endpoint, why, sizeof(why)) < 0) {
        bus_down(p, why);
        return -1;
    }
    p->connected = true;
    log_debug("bus %s: connected to %s", p->b->id, p->endpoint);
    return 0;
}

/*
 * The bus is reported up only after a whole poll cycle without losing the
 * line: a peer that accepts connections and drops them at once (a broken
 * converter) must not flap the bus state, flood the log or reset the backoff.
 */
static void bus_healthy(struct bus_poller *p)
{
    p->reconnect_ms = p->b->reconnect_min_ms;
    atomic_store(&p->up, true);
    if (p->reported != REP_UP) {
        p->reported = REP_UP;
        log_limit_reset(&p->rl);
        log_notice("bus %s up: connected to %s", p->b->id, p->endpoint);
        post(p, BUS_MSG_BUS_STATE, 0, true, "");
    }
}

/* Wait reconnect_ms before the next attempt, doubling it up to reconnect_max. */
static void schedule_reconnect(struct bus_poller *p)
{
    int64_t wait = p->reconnect_ms > 0 ? p->reconnect_ms : p->b->reconnect_min_ms;
    p->reconnect_at = mono_ms() + wait;
    p->reconnect_ms = min64(wait * 2, p->b->reconnect_max_ms);
}

static void disconnect(struct bus_poller *p, const char *why)
{
    modbus_close(p->ctx);
    p->connected = false;
    atomic_store(&p->up, false);
    bus_down(p, why);
    schedule_reconnect(p);
}

static const char *table_name(enum reg_table t)
{
    return t == REG_INPUT ? "input" : "holding";
}

/* A reply the device garbled, or a late one to an earlier request: worth asking again. */
static bool garbled(int e)
{
    return e == EMBBADCRC || e == EMBBADDATA || e == EMBBADSLAVE || e == EMBMDATA ||
           e == EMBBADEXC || e == EMBUNKEXC;
}

/*
 * After a reply that is not the answer to a request on TCP (a late one to an
 * earlier request, or garbage), the answer may still be on its way: flushed at
 * once, it would be read as the reply to the next request, found wrong too,
 * and so on down the bus, every device failing. So whatever arrives until the
 * answer's deadline is thrown away, as libmodbus's own protocol error recovery
 * does (it sleeps a response timeout, then flushes).
 */
static bool discard_until(struct bus_poller *p, int64_t deadline)
{
    int fd = modbus_get_socket(p->ctx);
    bool arrived = modbus_flush(p->ctx) > 0;
    for (int64_t left = deadline - mono_ms(); left > 0 && !stopping(p);
         left = deadline - mono_ms()) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
        if (poll(&pfd, 1, (int)min64(left, 100)) < 0 ||
            (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)))
            return arrived; /* the next request finds out what became of the line */
        if (pfd.revents & POLLIN)
            arrived = modbus_flush(p->ctx) > 0 || arrived;
    }
    return arrived;
}

/*
 * Run every request of d. 0 when all answered; -1 with why filled, and
 * *lost set when the failure was the line rather than the device.
 */
static int read_device(struct bus_poller *p, struct device *d, bool *lost, char *why, size_t whylen)
{
    const struct cfg_device *dc = d->cfg;
    int tries = 1 + dc->retries;
    modbus_set_slave(p->ctx, dc->unit);
    for (size_t i = 0; i < d->plan.count; i++) {
        const struct plan_request *r = &d->plan.requests[i];
        int e = 0, t = 0;
        bool ok = false;
        while (!ok && t < tries) {
            t++;
            atomic_fetch_add_explicit(&p->requests, 1, memory_order_relaxed);
            int64_t timeout = dc->timeout_ms + wire_ms(p->b, r->count);
            int64_t deadline = mono_ms() + timeout;
            set_timeout(p->ctx, timeout);
            int rc = r->table == REG_INPUT
                         ? modbus_read_input_registers(p->ctx, r->address, r->count, d->regs[i])
                         : modbus_read_registers(p->ctx, r->address, r->count, d->regs[i]);
            if (rc == r->count) {
                ok = true;
                break;
            }
            e = rc < 0 ? errno : EMBBADDATA;
            if (link_error(p->b, e)) {
                *lost = true;
                say(why, whylen, "connection to %s lost while reading unit %d: %s", p->endpoint,
                    dc->unit, modbus_strerror(e));
                return -1;
            }
            /* A late reply to this request must not be taken as the answer to the next one. */
            if (p->b->type == BUS_TCP && garbled(e))
                discard_until(p, deadline);
            else
                modbus_flush(p->ctx);
            if (stopping(p))
                break;
        }
        if (!ok) {
            say(why, whylen, "device %s unit %d: reading %u %s registers at %u failed (%d %s): %s",
                dc->id, dc->unit, r->count, table_name(r->table), r->address, t,
                t == 1 ? "try" : "tries", modbus_strerror(e));
            return -1;
        }
    }
    return 0;
}

static const uint16_t *point_words(const struct device *d, const struct profile_point *pt,
                                   uint16_t addr)
{
    uint16_t off;
    int i = plan_locate(&d->plan, pt->table, addr, (uint16_t)reg_type_width(pt->type), &off);
    return i < 0 ? NULL : d->regs[i] + off;
}

static void decode_reading(struct bus_poller *p, struct device *d, size_t k,
                           struct device_sample *s, int64_t now)
{
    const struct profile *prof = d->cfg->profile;
    const struct cfg_detector *det = &p->cfg->detectors[d->dets[k]];
    struct reading *r = &s->readings[k];
    r->detector = d->dets[k];
    for (size_t j = 0; j < prof->npoints; j++) {
        const struct profile_point *pt = &prof->points[j];
        uint16_t addr = profile_point_address(prof, pt, det->channel);
        const uint16_t *w = point_words(d, pt, addr);
        char err[96] = "";
        double v = 0;
        int rc = w ? codec_decode(pt, w, &v, err, sizeof(err)) : -1;
        if (!w)
            snprintf(err, sizeof(err), "%s: register %u was not read", pt->name, addr);
        switch (pt->role) {
        case ROLE_VALUE:
            r->has_value = true;
            r->value_ok = rc == 0;
            if (rc == 0)
                r->value = v;
            else
                strlcpy_fg(r->value_err, err, sizeof(r->value_err));
            break;
        case ROLE_ALARM:
        case ROLE_PREALARM:
        case ROLE_FAULT:
        case ROLE_MAINTENANCE:
        case ROLE_DISABLED:
            r->bits_present |= ROLE_BIT(pt->role);
            if (rc == 0 && v != 0) {
                r->bits |= ROLE_BIT(pt->role);
            } else if (rc != 0) {
                /* A status we cannot read must not pass for "all clear": show it as a fault. */
                r->bits_present |= ROLE_BIT(ROLE_FAULT);
                r->bits |= ROLE_BIT(ROLE_FAULT);
                log_limited(&d->decode_rl, now, LOG_LVL_WARN, "device %s detector %s: status %s",
                            d->cfg->id, det->id, err);
            }
            break;
        case ROLE_LIFECHECK:
            if (rc == 0 && fabs(v) < 9e15) {
                s->has_lifecheck = true;
                s->lifecheck = (uint32_t)(int64_t)llround(v);
            }
            break;
        case ROLE_INFO:
        case ROLE__COUNT:
            break;
        }
    }
}

static bool same_reading(const struct reading *a, const struct reading *b)
{
    return a->has_value == b->has_value && a->value_ok == b->value_ok &&
           (!a->value_ok || a->value == b->value) && a->bits_present == b->bits_present &&
           a->bits == b->bits;
}

static void post_sample(struct bus_poller *p, struct device *d)
{
    struct bus_msg *m = xcalloc(1, sizeof(*m));
    m->type = BUS_MSG_SAMPLE;
    m->cfg = p->cfg;
    m->bus = p->bus;
    m->device = d->index;
    m->up = true;
    m->t = now_both();
    m->sample.device = d->index;
    m->sample.t = m->t;
    m->sample.nreadings = d->ndets;
    m->sample.readings = xcalloc(d->ndets, sizeof(*m->sample.readings));
    for (size_t k = 0; k < d->ndets; k++)
        decode_reading(p, d, k, &m->sample, m->t.mono_ms);
    /*
     * News wakes the main loop at once: every change, so every alarm. A
     * sample that repeats the device's last one waits for the end of the poll
     * cycle (queue_kick in run), so an idle building wakes the main loop once
     * per cycle instead of once per device.
     */
    bool same = d->has_last && m->sample.has_lifecheck == d->last_lc_known &&
                (!d->last_lc_known || m->sample.lifecheck == d->last_lc);
    for (size_t k = 0; same && k < d->ndets; k++)
        same = same_reading(&d->last[k], &m->sample.readings[k]);
    if (!d->last)
        d->last = xcalloc(d->ndets ? d->ndets : 1, sizeof(*d->last));
    memcpy(d->last, m->sample.readings, d->ndets * sizeof(*d->last));
    d->has_last = true;
    d->last_lc_known = m->sample.has_lifecheck;
    d->last_lc = m->sample.lifecheck;
    if (same) {
        queue_push_quiet(p->q, m);
        p->quiet_pending = true;
    } else {
        queue_push(p->q, m);
    }
}

static void device_ok(struct bus_poller *p, struct device *d)
{
    atomic_fetch_add_explicit(&p->polls_ok, 1, memory_order_relaxed);
    if (d->down) {
        log_notice("bus %s: device %s (unit %d) answers again", p->b->id, d->cfg->id, d->cfg->unit);
        post(p, BUS_MSG_DEVICE_STATE, d->index, true, "");
    }
    d->down = false;
    d->fails = 0;
    d->backoff_ms = 0;
    d->skip_until = 0;
    log_limit_reset(&d->rl);
    post_sample(p, d);
}

static void device_failed(struct bus_poller *p, struct device *d, const char *why, int64_t now)
{
    const struct cfg_bus *b = p->b;
    atomic_fetch_add_explicit(&p->polls_failed, 1, memory_order_relaxed);
    if (d->fails < d->cfg->fail_after)
        d->fails++;
    if (d->down) {
        d->backoff_ms = min64(d->backoff_ms * 2, b->backoff_max_ms);
        d->skip_until = now + d->backoff_ms;
        log_limited(&d->rl, now, LOG_LVL_WARN, "bus %s: %s; still down, next try in %lld ms", b->id,
                    why, (long long)d->backoff_ms);
        return;
    }
    if (d->fails < d->cfg->fail_after) {
        log_limited(&d->rl, now, LOG_LVL_INFO, "bus %s: %s (failed poll %d of %d)", b->id, why,
                    d->fails, d->cfg->fail_after);
        return;
    }
    d->down = true;
    d->backoff_ms = b->backoff_min_ms;
    d->skip_until = now + d->backoff_ms;
    log_limit_reset(&d->rl);
    log_limited(&d->rl, now, LOG_LVL_WARN,
                "bus %s: %s; device down after %d failed polls, next try in %lld ms", b->id, why,
                d->fails, (long long)d->backoff_ms);
    post(p, BUS_MSG_DEVICE_STATE, d->index, false, why);
}

/*
 * A TCP connection can die without a word (a converter power-cycled, a cable
 * pulled): requests then only time out, on every device. After this many
 * cycles in which devices were asked and none answered, the connection is
 * made anew, quietly: the devices' own faults already tell the story.
 */
#define SILENT_CYCLES_RECONNECT 3

static bool due(const struct device *d, int64_t now)
{
    return !d->skip_until || now >= d->skip_until;
}

/* Poll d one request at a time and report how it went. False when the line was lost. */
static bool poll_device(struct bus_poller *p, struct device *d, size_t *answered)
{
    char why[200] = "";
    bool lost = false;
    if (read_device(p, d, &lost, why, sizeof(why)) == 0) {
        (*answered)++;
        device_ok(p, d);
    } else if (lost) {
        disconnect(p, why);
        return false;
    } else if (!stopping(p)) {
        device_failed(p, d, why, mono_ms());
    }
    return true;
}

/*
 * Pipelined polling, for TCP buses with max_in_flight > 1: the cycle's
 * requests go out up to max_in_flight at a time, in device order, and the
 * replies are read as they come, most of them already waiting in the socket
 * buffer, so one wake-up serves many replies. A device whose reply is anything
 * but its registers is polled again by read_device(), one request at a time,
 * so its tries, messages and fault handling are exactly those of a bus
 * without pipelining.
 *
 * Every request carries a transaction id of the poller's own, and a reply is
 * taken only with the id, unit, function and size of the request at the head
 * of the window (replies on one connection come in order). A reply with an id
 * of no request in flight is a late one to a request given up on, and is
 * dropped; any other mismatch, or no reply in time, ends the window: what is
 * still on its way is let come and thrown away, and the rest of the cycle is
 * polled one request at a time. libmodbus 3.1.6's modbus_send_raw_request()
 * sends every request with transaction id 0, which cannot tell a late reply
 * from the awaited one, so the MBAP header is written here and the requests
 * go out on the context's socket, a batch in one send(); the replies are read
 * with modbus_receive_confirmation().
 */
#define PIPE_ADU 12 /* MBAP header (7), function, address, count */

struct inflight {
    struct device *d;
    size_t req; /* index into d->plan.requests */
    uint16_t tid;
};

struct window {
    struct inflight slot[BUS_MAX_IN_FLIGHT]; /* a ring: n requests from head, oldest first */
    size_t head, n, cap;
    size_t dev, req; /* the next request to send: request req of p->devs[dev] */
    bool broken;     /* a reply went wrong: nothing more is sent in this cycle */
};

enum reply { REPLY_OK, REPLY_EXCEPTION, REPLY_WRONG, REPLY_LOST };

static int read_function(enum reg_table t)
{
    return t == REG_INPUT ? MODBUS_FC_READ_INPUT_REGISTERS : MODBUS_FC_READ_HOLDING_REGISTERS;
}

static void put_u16(uint8_t *at, unsigned v)
{
    at[0] = (uint8_t)(v >> 8);
    at[1] = (uint8_t)v;
}

static unsigned get_u16(const uint8_t *at)
{
    return (unsigned)at[0] << 8 | at[1];
}

/* The whole Modbus TCP request for r to unit, with transaction id tid. */
static void put_request(uint8_t *out, uint16_t tid, int unit, const struct plan_request *r)
{
    put_u16(out, tid);
    put_u16(out + 2, 0); /* protocol: Modbus */
    put_u16(out + 4, PIPE_ADU - 6);
    out[6] = (uint8_t)unit;
    out[7] = (uint8_t)read_function(r->table);
    put_u16(out + 8, r->address);
    put_u16(out + 10, r->count);
}

/*
 * Top the window up to w->cap requests, in device order, skipping devices in
 * their backoff and the rest of one to be polled again, and send them. 0, or
 * -1 with why when they could not be sent: part of a request may have gone,
 * so the connection is of no further use.
 */
static int fill_window(struct bus_poller *p, struct window *w, size_t *asked, char *why,
                       size_t whylen)
{
    uint8_t buf[BUS_MAX_IN_FLIGHT * PIPE_ADU];
    size_t len = 0;
    int64_t now = mono_ms(), timeout = 0;
    int unit = -1;
    while (w->n < w->cap && w->dev < p->ndevs) {
        struct device *d = &p->devs[w->dev];
        if (w->req == 0 && d->pipe == PIPE_IDLE) {
            if (!due(d, now)) {
                w->dev++;
                continue;
            }
            d->pipe = PIPE_ASKED;
            d->piped = 0;
            (*asked)++;
        }
        if (d->pipe != PIPE_ASKED || w->req >= d->plan.count) {
            w->dev++;
            w->req = 0;
            continue;
        }
        struct inflight *f = &w->slot[(w->head + w->n++) % BUS_MAX_IN_FLIGHT];
        *f = (struct inflight){d, w->req++, p->tid};
        /* Pipelined ids stay in the upper half, whatever libmodbus's own counter does. */
        p->tid = (uint16_t)(0x8000u | (p->tid + 1u));
        put_request(buf + len, f->tid, d->cfg->unit, &d->plan.requests[f->req]);
        len += PIPE_ADU;
        timeout = max64(timeout, d->cfg->timeout_ms);
        if (unit < 0)
            unit = d->cfg->unit;
        atomic_fetch_add_explicit(&p->requests, 1, memory_order_relaxed);
    }
    /* libmodbus's socket does not block: send_all_by waits for room in the kernel. */
    int e = len ? send_all_by(modbus_get_socket(p->ctx), buf, len, mono_ms() + timeout) : 0;
    if (e == 0) {
        /*
         * Acknowledge the replies at once rather than after Linux's delayed-ACK
         * timer (40 ms): a server whose TCP holds small segments until the last
         * one is acknowledged (Nagle's algorithm, on unless the server turns it
         * off; firegw-sim leaves it on) would otherwise send the second reply of
         * every batch 40 ms late. Sending puts the socket back into delayed
         * ACKs, so this follows each batch.
         */
        int one = 1;
        if (len)
            setsockopt(modbus_get_socket(p->ctx), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        return 0;
    }
    if (link_error(p->b, e))
        say(why, whylen, "connection to %s lost while reading unit %d: %s", p->endpoint, unit,
            modbus_strerror(e));
    else
        say(why, whylen, "cannot send requests to %s (units from %d on): %s", p->endpoint, unit,
            modbus_strerror(e));
    return -1;
}

static bool in_window(const struct window *w, unsigned tid)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->slot[(w->head + i) % BUS_MAX_IN_FLIGHT].tid == tid)
            return true;
    return false;
}

/*
 * The next reply that may be the window's, into rsp, within timeout_ms. One
 * whose transaction id is none of the window's is a late answer to a request
 * given up on before (or garbage) and is dropped. Its length, or -1 with errno.
 */
static int receive_reply(struct bus_poller *p, const struct window *w, int64_t timeout_ms,
                         uint8_t *rsp)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        set_timeout(p->ctx, timeout_ms);
        int len = modbus_receive_confirmation(p->ctx, rsp);
        if (len < 2 || in_window(w, get_u16(rsp)))
            return len;
        log_debug("bus %s: dropped a reply with transaction id %u, which no request in flight has",
                  p->b->id, get_u16(rsp));
        timeout_ms = deadline - mono_ms();
        if (timeout_ms <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

/*
 * Read the reply to the oldest request in window w into its device's
 * registers. REPLY_EXCEPTION: the device refused (the stream is still in
 * step); REPLY_WRONG: no reply in time, or one that is not that request's
 * (out of order, garbled); REPLY_LOST: the line failed. *e is the errno value
 * libmodbus would have given.
 */
static enum reply read_reply(struct bus_poller *p, const struct window *w, int *e)
{
    const struct inflight *f = &w->slot[w->head];
    const struct device *d = f->d;
    const struct plan_request *r = &d->plan.requests[f->req];
    uint8_t rsp[MODBUS_TCP_MAX_ADU_LENGTH];
    /* From the previous reply: a TCP/RS-485 gateway answers queued requests in turn. */
    int len = receive_reply(p, w, d->cfg->timeout_ms + wire_ms(p->b, r->count), rsp);
    if (len < 0) {
        *e = errno;
        return link_error(p->b, *e) ? REPLY_LOST : REPLY_WRONG;
    }
    *e = EMBBADDATA;
    int fc = read_function(r->table);
    unsigned bytes = 2u * r->count;
    if (len < 9 || get_u16(rsp) != f->tid || get_u16(rsp + 2) != 0 ||
        rsp[6] != (uint8_t)d->cfg->unit)
        return REPLY_WRONG;
    if (rsp[7] == (fc | 0x80)) {
        if (len != 9 || get_u16(rsp + 4) != 3)
            return REPLY_WRONG;
        *e = rsp[8] > 0 && rsp[8] < MODBUS_EXCEPTION_MAX ? MODBUS_ENOBASE + rsp[8] : EMBBADEXC;
        return REPLY_EXCEPTION;
    }
    if (rsp[7] != fc || rsp[8] != bytes || (unsigned)len != 9 + bytes ||
        get_u16(rsp + 4) != 3 + bytes)
        return REPLY_WRONG;
    for (unsigned i = 0; i < r->count; i++)
        d->regs[f->req][i] = (uint16_t)get_u16(rsp + 9 + 2 * i);
    return REPLY_OK;
}

/*
 * Give up on the window after a reply went wrong: what is still on its way
 * may come late, or never. Drop what has arrived, and hand every device asked
 * and not done to the one-at-a-time pass; the devices not asked yet go there
 * too, where libmodbus's own transaction ids keep late replies out.
 */
static void abandon_window(struct bus_poller *p, struct window *w, const struct inflight *f, int e)
{
    log_limited(&p->pipe_rl, mono_ms(), LOG_LVL_INFO,
                "bus %s: pipelined reply from unit %d (device %s) did not come or does not fit "
                "its request (%s); polling the rest of this cycle one request at a time",
                p->b->id, f->d->cfg->unit, f->d->cfg->id, modbus_strerror(e));
    /*
     * The replies still on their way would each cost a device a try, or worse
     * meet a one-at-a-time read with the same transaction id: let them come.
     * A converter answers queued requests in turn, so wait until the line has
     * been quiet for a timeout, at most one timeout per request in flight.
     */
    int64_t timeout = f->d->cfg->timeout_ms;
    for (size_t i = 0; i < w->n; i++)
        timeout = max64(timeout, w->slot[(w->head + i) % BUS_MAX_IN_FLIGHT].d->cfg->timeout_ms);
    if (e == ETIMEDOUT && w->n == 0) {
        modbus_flush(p->ctx);
    } else {
        int64_t end = mono_ms() + timeout * (int64_t)(w->n + 1);
        while (discard_until(p, min64(mono_ms() + timeout, end)) && mono_ms() < end)
            ;
    }
    for (size_t i = 0; i < p->ndevs; i++)
        if (p->devs[i].pipe == PIPE_ASKED)
            p->devs[i].pipe = PIPE_REDO;
    w->n = 0;
    w->broken = true;
}

/* One pipelined pass over the bus's devices. False when the line was lost. */
static bool poll_pipelined(struct bus_poller *p, size_t *asked, size_t *answered)
{
    struct window w = {.cap = (size_t)p->b->max_in_flight};
    if (w.cap > BUS_MAX_IN_FLIGHT)
        w.cap = BUS_MAX_IN_FLIGHT;
    for (size_t i = 0; i < p->ndevs; i++)
        p->devs[i].pipe = PIPE_IDLE;
    char why[200];
    /* Refilled when half empty: one send() per batch, and replies still waiting meanwhile. */
    while (!stopping(p)) {
        if (!w.broken && w.dev < p->ndevs && w.n <= w.cap / 2 &&
            fill_window(p, &w, asked, why, sizeof(why)) < 0) {
            disconnect(p, why);
            return false;
        }
        if (w.n == 0)
            break;
        int e = 0;
        enum reply rc = read_reply(p, &w, &e);
        struct inflight f = w.slot[w.head];
        struct device *d = f.d;
        w.head = (w.head + 1) % BUS_MAX_IN_FLIGHT;
        w.n--;
        switch (rc) {
        case REPLY_OK:
            if (d->pipe == PIPE_ASKED && ++d->piped == d->plan.count) {
                d->pipe = PIPE_DONE;
                (*answered)++;
                device_ok(p, d);
            }
            break;
        case REPLY_EXCEPTION:
            log_debug("bus %s: unit %d refused a pipelined read (%s); asking again one request "
                      "at a time",
                      p->b->id, d->cfg->unit, modbus_strerror(e));
            d->pipe = PIPE_REDO;
            break;
        case REPLY_WRONG:
            abandon_window(p, &w, &f, e);
            break;
        case REPLY_LOST:
            say(why, sizeof(why), "connection to %s lost while reading unit %d: %s", p->endpoint,
                d->cfg->unit, modbus_strerror(e));
            disconnect(p, why);
            return false;
        }
    }
    for (size_t i = 0; i < p->ndevs && !stopping(p); i++) {
        struct device *d = &p->devs[i];
        if (d->pipe == PIPE_DONE || (d->pipe == PIPE_IDLE && !due(d, mono_ms())))
            continue;
        if (d->pipe == PIPE_IDLE)
            (*asked)++;
        if (!poll_device(p, d, answered))
            return false;
    }
    return true;
}

/* One pass over the bus's devices. */
static void poll_cycle(struct bus_poller *p)
{
    size_t asked = 0, answered = 0;
    bool connected = true;
    if (p->b->type == BUS_TCP && p->b->max_in_flight > 1) {
        connected = poll_pipelined(p, &asked, &answered);
    } else {
        for (size_t i = 0; i < p->ndevs && connected && !stopping(p); i++) {
            struct device *d = &p->devs[i];
            if (!due(d, mono_ms()))
                continue;
            asked++;
            connected = poll_device(p, d, &answered);
        }
    }
    if (!connected || p->b->type != BUS_TCP || asked == 0 || stopping(p))
        return;
    p->silent_cycles = answered ? 0 : p->silent_cycles + 1;
    if (p->silent_cycles >= SILENT_CYCLES_RECONNECT) {
        log_notice("bus %s: no device answered in %d poll cycles; connecting to %s again in "
                   "case the connection died silently",
                   p->b->id, SILENT_CYCLES_RECONNECT, p->endpoint);
        modbus_close(p->ctx);
        p->connected = false;
        p->silent_cycles = 0;
        p->reconnect_at = mono_ms() + p->b->reconnect_min_ms;
    }
}

/*
 * Probe requests. A job advances one Modbus request per step, so a poller can
 * put steps between its cycles and a link can run them back to back.
 */
enum step { STEP_MORE, STEP_DONE, STEP_LOST };

bool bus_unit_valid(const struct cfg_bus *b, int unit)
{
    if (b->type == BUS_RTU)
        return unit >= 1 && unit <= 247;
    return (unit >= 0 && unit <= 247) || unit == 255;
}

static bool is_exception(int e)
{
    return e >= EMBXILFUN && e <= EMBXGTAR;
}

static int64_t probe_timeout(const struct cfg_bus *b, const struct bus_probe_req *req)
{
    int64_t t = req->timeout_ms > 0 ? req->timeout_ms : b->timeout_ms;
    return min64(max64(t, 10), BUS_PROBE_MAX_TIMEOUT_MS);
}

/* The longest the job's next step can take: every try timing out, and a little slack. */
static int64_t step_cost(const struct cfg_bus *b, const struct probe_job *j)
{
    bool read = j->req.kind == BUS_PROBE_READ;
    int tries = read ? 1 + j->req.retries : 2;
    unsigned count = 1;
    if (read && j->next >= 0 && (size_t)j->next < j->req.nblocks)
        count = j->req.blocks[j->next].count;
    return (probe_timeout(b, &j->req) + wire_ms(b, count)) * tries + 20;
}

static int check_block(const struct bus_block *blk, const char *what, char *err, size_t errlen)
{
    if (blk->table != REG_HOLDING && blk->table != REG_INPUT) {
        snprintf(err, errlen, "%s: unknown register table %d", what, (int)blk->table);
        return -1;
    }
    if (blk->count < 1 || blk->count > PLAN_MAX_REGS || (long)blk->address + blk->count > 65536) {
        snprintf(err, errlen,
                 "%s: %u registers at %u is not a valid read (1..%d registers, at most up to "
                 "65535)",
                 what, blk->count, blk->address, PLAN_MAX_REGS);
        return -1;
    }
    return 0;
}

static int check_req(const struct cfg_bus *b, const struct bus_probe_req *req, char *err,
                     size_t errlen)
{
    const char *units = b->type == BUS_RTU ? "1..247" : "0..247 or 255";
    if (req->timeout_ms < 0 || req->timeout_ms > BUS_PROBE_MAX_TIMEOUT_MS) {
        snprintf(err, errlen, "probe timeout %lld ms is outside 0..%d ms",
                 (long long)req->timeout_ms, BUS_PROBE_MAX_TIMEOUT_MS);
        return -1;
    }
    if (req->kind == BUS_PROBE_READ) {
        if (!bus_unit_valid(b, req->unit)) {
            snprintf(err, errlen, "unit id %d is not valid on bus %s (%s)", req->unit, b->id,
                     units);
            return -1;
        }
        if (req->retries < 0 || req->retries > 5) {
            snprintf(err, errlen, "probe retries %d is outside 0..5", req->retries);
            return -1;
        }
        if (req->nblocks < 1 || req->nblocks > BUS_PROBE_MAX_BLOCKS) {
            snprintf(err, errlen, "a probe reads 1..%d blocks of registers, not %zu",
                     BUS_PROBE_MAX_BLOCKS, req->nblocks);
            return -1;
        }
        for (size_t i = 0; i < req->nblocks; i++) {
            char what[32];
            snprintf(what, sizeof(what), "block %zu", i + 1);
            if (check_block(&req->blocks[i], what, err, errlen) < 0)
                return -1;
        }
        return 0;
    }
    if (req->kind == BUS_PROBE_SCAN) {
        if (req->from > req->to || !bus_unit_valid(b, req->from) || !bus_unit_valid(b, req->to)) {
            snprintf(err, errlen, "scan range %d..%d is not valid on bus %s (unit ids %s)",
                     req->from, req->to, b->id, units);
            return -1;
        }
        struct bus_block one = req->scan_read;
        one.count = 1;
        return check_block(&one, "scan read", err, errlen);
    }
    snprintf(err, errlen, "unknown probe kind %d", (int)req->kind);
    return -1;
}

static struct probe_job *new_job(const struct cfg_bus *b, size_t bus,
                                 const struct bus_probe_req *req, struct queue *reply_q)
{
    struct probe_job *j = xcalloc(1, sizeof(*j));
    j->req = *req;
    j->reply_q = reply_q;
    atomic_init(&j->cancelled, false);
    struct bus_probe_reply *r = j->rep = xcalloc(1, sizeof(*r));
    r->id = req->id;
    r->kind = req->kind;
    r->bus = bus;
    strlcpy_fg(r->bus_id, b->id, sizeof(r->bus_id));
    r->unit = req->unit;
    r->nblocks = req->kind == BUS_PROBE_READ ? req->nblocks : 0;
    memcpy(r->blocks, req->blocks, sizeof(r->blocks));
    for (size_t i = 0; i < BUS_PROBE_MAX_BLOCKS; i++)
        r->block_err[i] = -1;
    r->from = req->from;
    r->to = req->to;
    r->scan_read = req->scan_read;
    r->scan_read.count = 1;
    for (size_t u = 0; u < ARRAY_LEN(r->unit_err); u++)
        r->unit_err[u] = BUS_UNIT_NOT_TRIED;
    j->next = req->kind == BUS_PROBE_READ ? 0 : req->from;
    return j;
}

static int read_block(modbus_t *ctx, const struct bus_block *blk, uint16_t *regs)
{
    int rc = blk->table == REG_INPUT
                 ? modbus_read_input_registers(ctx, blk->address, blk->count, regs)
                 : modbus_read_registers(ctx, blk->address, blk->count, regs);
    return rc == blk->count ? 0 : rc < 0 ? errno : EMBBADDATA;
}

/*
 * One request of job j (with its tries) on ctx. STEP_LOST with why filled
 * when the line itself failed; the job's reply then says so too.
 */
static enum step run_step(modbus_t *ctx, const struct cfg_bus *b, const char *endpoint,
                          struct probe_job *j, char *why, size_t whylen)
{
    struct bus_probe_reply *r = j->rep;
    bool scan = j->req.kind == BUS_PROBE_SCAN;
    /* Unit ids 248..254 do not exist on TCP either; a scan steps over them. */
    if (scan && j->next > 247 && j->next < 255)
        j->next = 255;
    int unit = scan ? j->next : r->unit;
    int index = j->next++;
    const struct bus_block *blk = scan ? &r->scan_read : &r->blocks[index];
    uint16_t *regs = scan ? &r->unit_value[unit] : r->regs[index];
    int tries = scan ? 2 : 1 + j->req.retries;
    int e = 0;
    modbus_set_slave(ctx, unit);
    set_timeout(ctx, probe_timeout(b, &j->req) + wire_ms(b, blk->count));
    for (int t = 0; t < tries; t++) {
        e = read_block(ctx, blk, regs);
        if (e == 0)
            break;
        if (link_error(b, e)) {
            say(why, whylen, "connection to %s lost while probing unit %d: %s", endpoint, unit,
                modbus_strerror(e));
            strlcpy_fg(r->err, why, sizeof(r->err));
            return STEP_LOST;
        }
        /* A late reply to this request must not be taken as the answer to the next one. */
        modbus_flush(ctx);
        /* A scan asks again only after a garbled reply; a device that refuses refuses again. */
        if ((scan && !garbled(e)) || is_exception(e))
            break;
    }
    if (scan)
        r->unit_err[unit] = e;
    else
        r->block_err[index] = e;
    if (scan)
        return unit >= r->to ? STEP_DONE : STEP_MORE;
    return (size_t)j->next >= r->nblocks ? STEP_DONE : STEP_MORE;
}

/* Hand the reply over and free the job. */
static void finish_job(struct probe_job *j, int rc, const char *why)
{
    j->rep->rc = rc;
    if (why)
        strlcpy_fg(j->rep->err, why, sizeof(j->rep->err));
    queue_push(j->reply_q, j->rep);
    free(j);
}

static struct probe_job *first_job(struct bus_poller *p, unsigned *kicks)
{
    pthread_mutex_lock(&p->lock);
    struct probe_job *j = p->jobs;
    *kicks = p->kicks;
    pthread_mutex_unlock(&p->lock);
    return j;
}

/* Take job j (the oldest) off the list and answer it. */
static void drop_job(struct bus_poller *p, struct probe_job *j, int rc, const char *why)
{
    pthread_mutex_lock(&p->lock);
    for (struct probe_job **pp = &p->jobs; *pp; pp = &(*pp)->next_job) {
        if (*pp == j) {
            *pp = j->next_job;
            p->njobs--;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    finish_job(j, rc, why);
    bus_wake(p->q); /* the main loop hands the answer over at once */
}

/* Sleep until deadline, a stop, or a submission after kicks was read. */
static void nap(struct bus_poller *p, int64_t deadline_ms, unsigned kicks)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    pthread_mutex_lock(&p->lock);
    while (!atomic_load(&p->stop) && p->kicks == kicks && mono_ms() < deadline_ms)
        if (pthread_cond_timedwait(&p->wake, &p->lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&p->lock);
}

static void probe_step(struct bus_poller *p, struct probe_job *j)
{
    char why[200] = "";
    enum step s = run_step(p->ctx, p->b, p->endpoint, j, why, sizeof(why));
    if (s == STEP_LOST) {
        drop_job(p, j, -1, why);
        disconnect(p, why);
    } else if (s == STEP_DONE) {
        drop_job(p, j, 0, NULL);
    }
}

/*
 * The poller's time before its next cycle or reconnect attempt: run waiting
 * probe steps while each fits before deadline (one anyway at the deadline
 * when none has run since the last cycle), else sleep. False on a stop.
 */
static bool idle_until(struct bus_poller *p, int64_t deadline)
{
    bool was_connected = p->connected;
    for (;;) {
        if (stopping(p))
            return false;
        if (was_connected && !p->connected)
            return true; /* a probe lost the line: on to reconnecting */
        unsigned kicks;
        struct probe_job *j = first_job(p, &kicks);
        if (j && atomic_load(&j->cancelled)) {
            drop_job(p, j, -1, "cancelled");
            continue;
        }
        if (j && !p->connected) {
            char why[240];
            say(why, sizeof(why), "bus %s is not connected (%s); nothing was sent", p->b->id,
                p->down_why[0] ? p->down_why : "not yet connected");
            drop_job(p, j, -1, why);
            continue;
        }
        int64_t now = mono_ms();
        if (j &&
            (now + step_cost(p->b, j) <= deadline || (now >= deadline && p->probe_steps == 0))) {
            probe_step(p, j);
            p->probe_steps++;
            atomic_store(&p->alive_mono, mono_ms());
            continue;
        }
        if (now >= deadline)
            return true;
        nap(p, deadline, kicks);
    }
}

static void *run(void *arg)
{
    struct bus_poller *p = arg;
    int64_t next = mono_ms();
    while (!stopping(p)) {
        atomic_store(&p->alive_mono, mono_ms());
        if (!p->connected) {
            if (!idle_until(p, p->reconnect_at))
                break;
            if (connect_bus(p) < 0) {
                schedule_reconnect(p);
                continue;
            }
            next = mono_ms();
        }
        if (!idle_until(p, next))
            break;
        if (!p->connected)
            continue;
        poll_cycle(p);
        if (p->quiet_pending) {
            p->quiet_pending = false;
            queue_kick(p->q);
        }
        p->probe_steps = 0;
        if (p->connected)
            bus_healthy(p);
        /* Drift-free: the next cycle is due one interval after this one was due;
         * after an overrun it starts at once, and missed cycles are not made up. */
        next += p->b->poll_interval_ms;
        int64_t now = mono_ms();
        if (next < now)
            next = now;
    }
    if (p->connected)
        modbus_close(p->ctx);
    p->connected = false;
    atomic_store(&p->up, false);
    return NULL;
}

static void free_devices(struct bus_poller *p)
{
    for (size_t i = 0; i < p->ndevs; i++) {
        struct device *d = &p->devs[i];
        for (size_t r = 0; r < d->plan.count; r++)
            free(d->regs[r]);
        free(d->regs);
        plan_free(&d->plan);
        free(d->dets);
        free(d->last);
    }
    free(p->devs);
    p->devs = NULL;
    p->ndevs = 0;
}

/*
 * Plan the reads of device dev: every point of its profile for each detector
 * configured on it, per-channel points at the detector's channel. 0 or -1.
 */
static int plan_device(struct bus_poller *p, size_t dev, struct device *d, char *err, size_t errlen)
{
    const struct cfg *cfg = p->cfg;
    const struct cfg_device *dc = &cfg->devices[dev];
    const struct profile *prof = dc->profile;
    d->index = dev;
    d->cfg = dc;
    size_t count = 0;
    for (size_t i = 0; i < cfg->ndetectors; i++)
        count += cfg->detectors[i].device == dev;
    if (count == 0)
        return 0;
    d->dets = xcalloc(count, sizeof(*d->dets));
    for (size_t i = 0; i < cfg->ndetectors; i++)
        if (cfg->detectors[i].device == dev)
            d->dets[d->ndets++] = i;

    struct plan_span *spans = xcalloc(d->ndets * prof->npoints, sizeof(*spans));
    size_t n = 0;
    for (size_t k = 0; k < d->ndets; k++) {
        int channel = cfg->detectors[d->dets[k]].channel;
        for (size_t j = 0; j < prof->npoints; j++) {
            const struct profile_point *pt = &prof->points[j];
            if (!pt->per_channel && k > 0)
                continue;
            long addr = pt->address;
            if (pt->per_channel && channel > 1)
                addr += (long)(channel - 1) * prof->channel_stride;
            int width = reg_type_width(pt->type);
            if (addr + width > 65536) {
                snprintf(err, errlen,
                         "device %s: point %s of profile %s for channel %d lies past "
                         "register 65535",
                         dc->id, pt->name, prof->name, channel);
                free(spans);
                return -1;
            }
            spans[n++] = (struct plan_span){pt->table, profile_point_address(prof, pt, channel),
                                            (uint16_t)width};
        }
    }
    int rc = plan_build(spans, n, p->b->max_gap, &d->plan);
    free(spans);
    if (rc < 0) {
        snprintf(err, errlen, "device %s: cannot plan the reads of profile %s: %s", dc->id,
                 prof->name, strerror(errno));
        return -1;
    }
    d->regs = xcalloc(d->plan.count, sizeof(*d->regs));
    for (size_t r = 0; r < d->plan.count; r++)
        d->regs[r] = xcalloc(d->plan.requests[r].count, sizeof(uint16_t));
    return 0;
}

static void describe_endpoint(const struct cfg_bus *b, char *buf, size_t len)
{
    if (b->type == BUS_TCP)
        snprintf(buf, len, strchr(b->host, ':') ? "[%s]:%d" : "%s:%d", b->host, b->port);
    else
        snprintf(buf, len, "%s (%d baud, %d%c%d)", b->device, b->baud, b->data_bits, b->parity,
                 b->stop_bits);
}

struct bus_poller *bus_start(const struct cfg *cfg, size_t bus, struct queue *q, char *err,
                             size_t errlen)
{
    if (bus >= cfg->nbuses) {
        snprintf(err, errlen, "no bus %zu in the configuration (%zu buses)", bus, cfg->nbuses);
        return NULL;
    }
    struct bus_poller *p = xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    p->bus = bus;
    p->b = &cfg->buses[bus];
    p->q = q;
    p->reported = REP_NONE;
    p->reconnect_ms = p->b->reconnect_min_ms;
    /* The upper half of the ids: libmodbus's one-at-a-time reads count up from 1. */
    p->tid = 0x8000;
    atomic_init(&p->stop, false);
    atomic_init(&p->up, false);
    atomic_init(&p->polls_ok, 0);
    atomic_init(&p->polls_failed, 0);
    atomic_init(&p->requests, 0);
    describe_endpoint(p->b, p->endpoint, sizeof(p->endpoint));

    p->devs = xcalloc(cfg->ndevices ? cfg->ndevices : 1, sizeof(*p->devs));
    for (size_t i = 0; i < cfg->ndevices; i++) {
        if (cfg->devices[i].bus != bus)
            continue;
        struct device *d = &p->devs[p->ndevs++];
        if (plan_device(p, i, d, err, errlen) < 0)
            goto fail;
        if (d->ndets == 0) {
            log_info("bus %s: device %s has no detectors configured; not polled", p->b->id,
                     cfg->devices[i].id);
            free(d->dets);
            memset(d, 0, sizeof(*d));
            p->ndevs--;
        }
    }

    p->ctx = new_context(p->b, p->endpoint, err, errlen);
    if (!p->ctx)
        goto fail;

    /*
     * The longest the loop may legitimately stay away: a reconnect wait or a
     * poll interval, a connect, and a cycle in which every request of every
     * device times out on every try (with a flush after each), plus margin.
     */
    int64_t cycle = 0, longest = 0;
    for (size_t i = 0; i < p->ndevs; i++) {
        longest = max64(longest, p->devs[i].cfg->timeout_ms);
        for (size_t r = 0; r < p->devs[i].plan.count; r++)
            cycle +=
                (p->devs[i].cfg->timeout_ms + wire_ms(p->b, p->devs[i].plan.requests[r].count)) *
                (1 + p->devs[i].cfg->retries) * 2;
    }
    /* A pipelined cycle waits for a reply and then for the rest of its window, at most a
     * timeout per request in flight, before it goes on one request at a time. */
    if (p->b->max_in_flight > 1)
        cycle += (p->b->max_in_flight + 2) * longest;
    p->stall_limit_ms =
        max64(p->b->reconnect_max_ms, p->b->poll_interval_ms) + p->b->timeout_ms + cycle + 10000;
    atomic_store(&p->alive_mono, mono_ms());

    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p->lock, NULL);

    /* Signals are the signal thread's (main.c); the poller inherits a fully blocked mask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->thread, NULL, run, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the poller thread: %s", strerror(rc));
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        goto fail;
    }
    /* "poll <bus id>" in top -H, ps -L and the watchdog test; the kernel keeps 15 bytes. */
    char name[16] = "poll ";
    strlcpy_fg(name + 5, p->b->id, sizeof(name) - 5);
    pthread_setname_np(p->thread, name);
    return p;

fail:
    if (p->ctx)
        modbus_free(p->ctx);
    free_devices(p);
    free(p);
    return NULL;
}

void bus_stop(struct bus_poller *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    while (p->jobs) {
        struct probe_job *j = p->jobs;
        p->jobs = j->next_job;
        char why[240];
        say(why, sizeof(why), "the poller of bus %s stopped before the probe was done", p->b->id);
        finish_job(j, -1, why);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    modbus_free(p->ctx);
    free_devices(p);
    free(p);
}

void bus_get_stats(const struct bus_poller *p, struct bus_stats *out)
{
    out->polls_ok = atomic_load_explicit(&p->polls_ok, memory_order_relaxed);
    out->polls_failed = atomic_load_explicit(&p->polls_failed, memory_order_relaxed);
    out->requests = atomic_load_explicit(&p->requests, memory_order_relaxed);
    out->connected = atomic_load_explicit(&p->up, memory_order_relaxed);
    out->alive_mono = atomic_load_explicit(&p->alive_mono, memory_order_relaxed);
    out->stall_limit_ms = p->stall_limit_ms;
}

int bus_probe_submit(struct bus_poller *p, const struct bus_probe_req *req, struct queue *reply_q,
                     char *err, size_t errlen)
{
    if (check_req(p->b, req, err, errlen) < 0)
        return -1;
    struct probe_job *j = new_job(p->b, p->bus, req, reply_q);
    pthread_mutex_lock(&p->lock);
    if (atomic_load(&p->stop) || p->njobs >= BUS_PROBE_MAX_PENDING) {
        bool stop = atomic_load(&p->stop);
        pthread_mutex_unlock(&p->lock);
        if (stop)
            snprintf(err, errlen, "the poller of bus %s is stopping", p->b->id);
        else
            snprintf(err, errlen,
                     "bus %s already has %d probes waiting; try again when they are done", p->b->id,
                     BUS_PROBE_MAX_PENDING);
        free(j->rep);
        free(j);
        return -1;
    }
    struct probe_job **pp = &p->jobs;
    while (*pp)
        pp = &(*pp)->next_job;
    *pp = j;
    p->njobs++;
    p->kicks++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void bus_probe_cancel(struct bus_poller *p, unsigned long id)
{
    pthread_mutex_lock(&p->lock);
    for (struct probe_job *j = p->jobs; j; j = j->next_job)
        if (j->req.id == id)
            atomic_store(&j->cancelled, true);
    p->kicks++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

struct bus_link {
    const struct cfg_bus *b;
    modbus_t *ctx;
    bool connected;
    char lost[200]; /* why the connection was lost, once it was */
    char endpoint[160];
};

struct bus_link *bus_link_open(const struct cfg_bus *b, char *err, size_t errlen)
{
    struct bus_link *l = xcalloc(1, sizeof(*l));
    l->b = b;
    describe_endpoint(b, l->endpoint, sizeof(l->endpoint));
    l->ctx = new_context(b, l->endpoint, err, errlen);
    if (!l->ctx || open_context(l->ctx, b, l->endpoint, err, errlen) < 0) {
        bus_link_close(l);
        return NULL;
    }
    l->connected = true;
    return l;
}

const char *bus_link_endpoint(const struct bus_link *l)
{
    return l->endpoint;
}

struct bus_probe_reply *bus_link_run(struct bus_link *l, const struct bus_probe_req *req, char *err,
                                     size_t errlen)
{
    if (check_req(l->b, req, err, errlen) < 0)
        return NULL;
    struct probe_job *j = new_job(l->b, 0, req, NULL);
    struct bus_probe_reply *r = j->rep;
    enum step s = STEP_MORE;
    if (!l->connected) {
        r->rc = -1;
        strlcpy_fg(r->err, l->lost, sizeof(r->err));
        s = STEP_DONE;
    }
    while (s == STEP_MORE)
        s = run_step(l->ctx, l->b, l->endpoint, j, l->lost, sizeof(l->lost));
    if (s == STEP_LOST) {
        modbus_close(l->ctx);
        l->connected = false;
        r->rc = -1;
    }
    free(j);
    return r;
}

void bus_link_close(struct bus_link *l)
{
    if (!l)
        return;
    if (l->ctx) {
        if (l->connected)
            modbus_close(l->ctx);
        modbus_free(l->ctx);
    }
    free(l);
}
