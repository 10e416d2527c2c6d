/*
 * The local event log: every event, operator command and delivery outcome in
 * an SQLite database (WAL) under the state directory, with retention limits,
 * and the "firegw events" command that reads it. The log is a record, never a
 * gate: every write is cheap, gives up quickly when the database is busy or
 * broken, and reports failure only by its return value and a rate-limited log
 * line, so an alarm is never held back by it. See docs/event-log.md.
 */
#ifndef FIREGW_EVLOG_H
#define FIREGW_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "event.h"

/* File name of the log inside the state directory. */
#define EVLOG_FILE_NAME "events.db"
/* Schema version written to PRAGMA user_version. */
#define EVLOG_SCHEMA_VERSION 1

/* Retention and timing limits; a zero field takes its default. */
struct evlog_limits {
    int64_t max_age_ms;      /* rows older than this are deleted; default 365 days */
    int64_t max_events;      /* default 1,000,000 */
    int64_t max_commands;    /* default 100,000 */
    int64_t max_deliveries;  /* default 4,000,000 (several outcomes per event and uplink) */
    int busy_timeout_ms;     /* longest wait for a lock; default 50 ms */
    int prune_batch;         /* rows deleted per statement; default 500 */
    int64_t prune_budget_ms; /* evlog_prune stops starting new work after this; default 50 ms */
};

struct evlog;

/*
 * Open or create the log at path for writing (WAL, synchronous=NORMAL) and
 * create or migrate its schema; lim may be NULL for the defaults. A corrupt
 * file, or one from a newer firegw, is renamed aside and a new log started:
 * the handle is returned and err says what happened (err is "" otherwise).
 * NULL with err when the log cannot be opened at all. Caller evlog_close()s.
 */
struct evlog *evlog_open(const char *path, const struct evlog_limits *lim, char *err,
                         size_t errlen);
/* Close the log (checkpointing the WAL); NULL is fine. */
void evlog_close(struct evlog *l);

/*
 * Store a dispatched event and its JSON payload (json may be NULL). 0, or -1
 * when the row was dropped (busy, disk full, broken log; logged, rate-limited).
 * l may be NULL (no log), which returns -1 at once.
 */
int evlog_add_event(struct evlog *l, const struct cfg *cfg, const struct event *ev,
                    const char *json);
/*
 * Store an operator command: origin such as "local:root" or "uplink:district",
 * the command line, and its result ("done" or the error). 0 or -1 as above.
 */
int evlog_add_command(struct evlog *l, int64_t ts_ms, const char *origin, const char *command,
                      const char *result);
/*
 * Store what happened to an event on one uplink: outcome "accepted",
 * "delivered", "acknowledged", "resent" or "failed"; detail may be NULL.
 * 0 or -1 as above.
 */
int evlog_add_delivery(struct evlog *l, int64_t ts_ms, const char *event_id, const char *uplink,
                       const char *outcome, const char *detail);

/*
 * Apply the retention limits a batch at a time, oldest first, then checkpoint
 * the WAL; call while idle (about once a second). Stops within about
 * prune_budget_ms. Real fire alarms younger than max_age_ms are deleted for
 * the count limit only when nothing else is left. Returns rows deleted, or -1.
 */
long evlog_prune(struct evlog *l, int64_t now_ms);

enum evlog_order { EVLOG_NEWEST_FIRST, EVLOG_OLDEST_FIRST };

#define EVLOG_MAX_KINDS 16

/* What to read. Zero-initialised means everything, newest first. */
struct evlog_filter {
    bool has_since;
    int64_t since_ms; /* ts_ms >= since_ms (inclusive) */
    bool has_until;
    int64_t until_ms;                   /* ts_ms < until_ms (exclusive) */
    const char *kinds[EVLOG_MAX_KINDS]; /* events: kind is one of these; none: any */
    size_t nkinds;
    const char *zone;     /* events: zone id, NULL: any */
    const char *detector; /* events: detector id, NULL: any */
    const char *event_id; /* deliveries: of this event, NULL: any */
    long limit;           /* at most this many rows; 0: no limit */
    enum evlog_order order;
};

/* One stored event; strings are NULL when the column is empty, valid during the callback. */
struct evlog_event_row {
    int64_t id; /* row id, increasing in insert order */
    uint64_t seq;
    const char *event_id;
    int64_t ts_ms;
    const char *kind;
    const char *source;
    const char *detector;
    const char *device;
    const char *bus;
    const char *zone;
    bool has_floor;
    int floor;
    bool test;
    const char *fault;
    const char *rule;
    bool has_value;
    double value;
    bool has_level;
    double level;
    const char *user;
    const char *detail;
    const char *json;
};

struct evlog_command_row {
    int64_t id;
    int64_t ts_ms;
    const char *origin;
    const char *command;
    const char *result;
};

struct evlog_delivery_row {
    int64_t id;
    int64_t ts_ms;
    const char *event_id;
    const char *uplink;
    const char *outcome;
    const char *detail;
};

/* Row callbacks: return 0 to go on, nonzero to stop the query (not an error). */
typedef int (*evlog_event_cb)(void *arg, const struct evlog_event_row *row);
typedef int (*evlog_command_cb)(void *arg, const struct evlog_command_row *row);
typedef int (*evlog_delivery_cb)(void *arg, const struct evlog_delivery_row *row);

/* Call cb for each event matching f (NULL: all). Rows read, or -1 with err. */
long evlog_query(struct evlog *l, const struct evlog_filter *f, evlog_event_cb cb, void *arg,
                 char *err, size_t errlen);
/* Commands matching f's time range, limit and order. Rows read, or -1 with err. */
long evlog_query_commands(struct evlog *l, const struct evlog_filter *f, evlog_command_cb cb,
                          void *arg, char *err, size_t errlen);
/* Delivery outcomes matching f's time range, event_id, limit and order. Rows, or -1 with err. */
long evlog_query_deliveries(struct evlog *l, const struct evlog_filter *f, evlog_delivery_cb cb,
                            void *arg, char *err, size_t errlen);

/*
 * Open an existing log read-only, beside a running daemon (for the CLI and
 * the web UI). NULL with err when it is missing, unreadable or not a log.
 */
struct evlog *evlog_open_readonly(const char *path, char *err, size_t errlen);

/*
 * "firegw events ...": argv[0] is "events". Prints to stdout, errors to
 * stderr. Returns the exit status: 0, 1 (log missing or unreadable), 2 (bad
 * arguments).
 */
int evlog_cli(int argc, char **argv);

/*
 * Parse a time for --since/--until: ISO 8601 UTC "2026-11-23T05:04:03Z"
 * (fraction optional), a date "2026-11-23" (midnight UTC), or an age such as
 * "90s", "15min", "2h", "7d" meaning that long before now_ms. 0 or -1.
 */
int evlog_parse_time(const char *s, int64_t now_ms, int64_t *out);

#endif
