/*
 * Events: what the engine produces and what the event log, the uplinks and the
 * console consume. Also the per-gateway sequence number (durable across
 * restarts) and event ids. Events are plain values, copied freely.
 */
#ifndef FIREGW_EVENT_H
#define FIREGW_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

enum ev_kind {
    EV_FIRE_ALARM,     /* detector or panel zone in fire alarm */
    EV_PRE_ALARM,      /* detector or panel zone in pre-alarm */
    EV_FAULT,          /* a fault began (detector, device, bus or gateway) */
    EV_RESTORE,        /* detector back to normal from pre-alarm or fire alarm */
    EV_FAULT_RESTORE,  /* a fault ended */
    EV_DISABLED,       /* a point was disabled (panel zone disabled bit) */
    EV_ENABLED,        /* a disablement ended */
    EV_GATEWAY_START,  /* the gateway started */
    EV_FIRE_CONFIRMED, /* a zone's fire alarm confirmed by coincidence */
    EV_ALARM_PENDING,  /* an alarm held by alarm verification or positive alarm sequence */
    EV_ACKNOWLEDGED,   /* an operator acknowledged a zone's (or every) alarm */
    EV_SILENCED,       /* an operator silenced the sounders */
    EV_RESET,          /* an operator reset a zone (or every zone) */
    EV_TEST_ALARM,     /* a point in test mode alarmed; always a test event */
    EV_TEST_MODE_ON,   /* a point or zone entered test mode */
    EV_TEST_MODE_OFF,  /* test mode ended (by an operator or at its expiry) */
    EV__COUNT
};

enum ev_source { SRC_DETECTOR, SRC_DEVICE, SRC_BUS, SRC_GATEWAY, SRC_ZONE, SRC_BUILDING };

enum fault_code {
    FAULT_NONE,
    FAULT_NO_RESPONSE,  /* detector has not answered for no_response time */
    FAULT_DETECTOR_BIT, /* detector/zone reports its own fault bit */
    FAULT_MAINTENANCE,  /* maintenance / dirty chamber bit */
    FAULT_IMPLAUSIBLE,  /* value not a number or outside the plausible range */
    FAULT_LIFECHECK,    /* panel LifeCheck counter stopped */
    FAULT_DEVICE_DOWN,  /* device stopped answering on its bus */
    FAULT_BUS_DOWN,     /* bus connection lost */
    FAULT_STUCK,        /* value has not changed for the detector's stuck_after time */
    FAULT_TRANSMISSION, /* an uplink's receiving centre has not acknowledged a fire alarm */
    FAULT_STORAGE,      /* the outbox or the event log cannot write: events only in memory */
    FAULT__COUNT
};

struct event {
    enum ev_kind kind;
    enum ev_source source;
    long detector;         /* index into cfg.detectors, -1 if none */
    long device;           /* index into cfg.devices, -1 if none */
    long bus;              /* index into cfg.buses, -1 if none */
    bool has_zone;         /* zone is set (zone and operator events, and detectors' events) */
    size_t zone;           /* index into cfg.zones */
    enum fault_code fault; /* EV_FAULT / EV_FAULT_RESTORE */
    const char *rule;      /* static name of the rule that fired, e.g. "smoke_alarm_level" */
    bool test;             /* a test event, never a real alarm */
    bool has_value;
    double value; /* the reading, in the detector type's unit */
    bool has_level;
    double level; /* the threshold crossed */
    struct ev_time t;
    char detail[160]; /* human text, e.g. the library's error */
    char user[48];    /* operator who acknowledged, silenced, reset, ...; "" if none */
    /* set by event_stamp() when the event is dispatched */
    uint64_t seq;
    char id[37];
};

/* A growable list of events. Zero-initialise; evlist_free when done. */
struct evlist {
    struct event *items;
    size_t count;
    size_t cap;
};

void evlist_push(struct evlist *l, const struct event *ev);
void evlist_clear(struct evlist *l);
void evlist_free(struct evlist *l);
/* Stable sort: fire alarms first, then pre-alarms, faults, the rest (EN 54-21 7.4.1). */
void evlist_sort_priority(struct evlist *l);
/* Lower is more urgent. */
int ev_priority(enum ev_kind k);

const char *ev_kind_name(enum ev_kind k); /* "fire_alarm", "pre_alarm", ... */
/* "detector", "device", "bus", "gateway", "zone", "building" */
const char *ev_source_name(enum ev_source s);
const char *fault_code_name(enum fault_code f); /* "no_response", ... */

/*
 * Durable sequence numbers: strictly increasing across restarts and power
 * loss. Reserves blocks in a small file (write, fsync, rename), so the file is
 * written once per block, not once per event.
 */
struct event_seq {
    char *path;
    uint64_t next;
    uint64_t reserved_until; /* numbers below this are reserved on disk */
    bool unsaved;            /* the last number handed out was not reserved on disk */
};

/*
 * Open or create the sequence file at path. 0; 1 when the file was corrupt
 * and numbering restarted from the clock (err says so, the bad file is kept
 * as path.corrupt); -1 with err when the file cannot be read or written.
 */
int event_seq_open(struct event_seq *s, const char *path, char *err, size_t errlen);
/*
 * The next number. Never fails for lack of disk: when a new block cannot be
 * saved it numbers on and sets s->unsaved (errno tells why). 0 only for a
 * closed sequence or at the end of the number space.
 */
uint64_t event_seq_next(struct event_seq *s);
/*
 * Save the next block early (when a fifth of the current one is left), so
 * the write and its fsync happen while idle, not while an alarm is waiting.
 * 0, or -1 with errno.
 */
int event_seq_reserve_ahead(struct event_seq *s);
void event_seq_close(struct event_seq *s);

/*
 * Give ev its sequence number and a fresh random UUID v4 as id. 0, or -1 when
 * the number could not be saved durably (ev->seq is still set when nonzero).
 */
int event_stamp(struct event *ev, struct event_seq *s);

#endif
