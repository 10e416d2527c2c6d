/*
 * The running gateway: everything the daemon holds while it runs, shared by
 * gateway.c (start, the main loop's turn, stop), delivery.c (what goes out
 * to the uplinks and what comes back from them) and main.c (options and
 * signals). Only the main thread touches it; pollers and brokers hand data
 * over through queues.
 */
#ifndef FIREGW_GATEWAY_H
#define FIREGW_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include "acktrack.h"
#include "bus.h"
#include "cfg.h"
#include "control.h"
#include "engine.h"
#include "event.h"
#include "evlog.h"
#include "log.h"
#include "queue.h"
#include "reload.h"
#include "remote.h"
#include "uplink.h"
#include "web.h"

/* Events handed to one uplink's broker and not yet confirmed by it. */
#define FLIGHT_MAX 32
/* An event the broker has not confirmed this long after it was sent is sent again. */
#define FLIGHT_TIMEOUT_MS 30000

struct in_flight {
    int64_t id[FLIGHT_MAX]; /* outbox row ids */
    int64_t sent_mono[FLIGHT_MAX];
    char *event_id[FLIGHT_MAX];
    size_t n;
    unsigned connects; /* uplink_connections when last looked at */
    bool drained;      /* everything stored for the uplink is in flight: nothing to query */
};

/* Samples or inbound messages taken in one batch, so one batch's events are sorted together. */
#define GW_BATCH_MAX 256

/* What the last published retained state of a detector on one uplink was. */
struct published {
    bool done;
    struct det_status st; /* value and times are not compared */
};

struct gateway {
    struct cfg *cfg;              /* the current configuration */
    const char *config_path;      /* where it was read from, for reloads */
    const char *const *overrides; /* --set options, applied again on reload */
    size_t noverrides;
    struct cfg **retired;     /* older configs still used by a poller or by the uplinks */
    struct reload_map **maps; /* per retired config: its indexes onto the current one */
    size_t nretired;
    const struct cfg *uplink_cfg; /* the config the uplinks were made with */
    struct engine *engine;
    struct queue *queue;
    struct bus_poller **pollers;   /* per bus; NULL where it could not be started on a reload */
    const struct cfg **poller_cfg; /* per bus: the config its poller was started with */
    struct uplink **uplinks;
    struct published *published; /* nuplinks x ndetectors */
    bool *answered;              /* per detector: has answered at least once */
    unsigned *seen_connects;     /* per uplink: uplink_connections when states were last sent */
    bool *bus_up;
    int lock_fd; /* held for the life of the process */
    struct event_seq seq;
    struct log_limit seq_limit;
    char seq_recovered[320]; /* why numbering restarted, for the start event */
    bool seq_open;
    uint64_t last_seq;
    int64_t started_wall;
    int64_t started_mono;
    int64_t *next_heartbeat; /* per uplink, monotonic */
    struct control *control;
    struct queue *inbox;    /* messages from the brokers (struct uplink_msg) */
    struct acktrack **acks; /* per uplink; NULL where no acknowledgement is expected */
    bool *tx_fault;         /* per uplink: transmission fault raised */
    struct remote *remote;  /* validates remote commands, remembers their ids */
    bool *bus_seen;         /* per bus: something was heard from its poller */
    bool ready;             /* READY=1 sent to the service manager */
    int64_t watchdog_ms;    /* keep-alive interval; 0 when no watchdog is asked for */
    int64_t next_watchdog;  /* monotonic */
    bool stuck_logged;
    struct evlog *evlog; /* NULL when the log cannot be opened: alarms flow anyway */
    int64_t next_prune;  /* monotonic */
    struct evlist events;
    /* The web server; NULL when web.listen is off or it could not start. */
    struct web *web;
    struct outbox *outbox; /* NULL when it cannot be opened: events wait in memory */
    struct log_limit outbox_limit;
    struct queue *delivered;   /* struct uplink_done from the brokers */
    struct in_flight *flight;  /* per uplink */
    bool storage_fault;        /* the outbox or event log refuses writes (fault raised) */
    unsigned long store_tries; /* events offered to the outbox */
    unsigned long store_ok;    /* ... and stored */
    bool states_dirty;         /* retained states may differ from what was published */
    int64_t next_states;       /* monotonic: states are compared at least this often */
};

/* Now on both clocks. */
struct ev_time gw_now(void);

/*
 * Open the state directory (state_dir, or the config's), the event log, the
 * control socket (control_path, or STATE_DIR/control.sock), the uplinks, and
 * start one poller per bus. -1 after logging why; call gateway_free anyway.
 */
int gateway_start(struct gateway *gw, const char *state_dir, const char *control_path);
/* One turn of the main loop: waits up to wait_ms for samples, then handles everything due. */
void gateway_step(struct gateway *gw, int wait_ms);
/*
 * How long the next turn may wait: until the earliest timer (engine,
 * states, heartbeats, pruning, watchdog), at most idle_ms, or busy_ms while
 * starting up. Samples, receipts, inbound messages, web requests, control
 * socket commands and stop and reload signals wake it anyway.
 */
int gateway_wait_ms(const struct gateway *gw, int idle_ms, int busy_ms, int64_t now_mono);
/*
 * Read the config file again and apply it without a restart: buses whose
 * polling is unchanged keep their pollers, others are restarted, and alarm
 * states, latches, acknowledgements, disablements and test modes carry over.
 * An invalid config, or one that changes what needs a restart, is refused
 * with the reason in err and the running one kept. user is recorded.
 */
int gateway_reload(struct gateway *gw, const char *user, char *err, size_t errlen);
/* Stop the pollers and send what they had already read. */
void gateway_drain(struct gateway *gw);
/* Release everything gateway_start made, the config included. */
void gateway_free(struct gateway *gw);

/* Stamp, log, store and send the events waiting in gw->events; then the retained states. */
void delivery_dispatch(struct gateway *gw);
/* Hand uplink's stored events to its broker, most urgent first, while it is connected. */
void delivery_flush(struct gateway *gw, size_t up);
/* Take the brokers' receipts: delivered events leave the outbox. */
void delivery_receipts(struct gateway *gw);
/* Handle acknowledgements and remote commands that arrived from the brokers. */
void delivery_inbound(struct gateway *gw);
/* Send again the fire alarms not acknowledged in time; raise the transmission fault. */
void delivery_check_acks(struct gateway *gw, int64_t now_mono);
/* Heartbeats that are due, on every uplink. */
void delivery_heartbeats(struct gateway *gw, int64_t now_mono);

#endif
