/*
 * Inside the web server: what web.c (the libmicrohttpd handler threads) and
 * webjobs.c (the main thread's half) share. A request that must touch the
 * engine or the config becomes a struct job, queued on struct web under its
 * mutex; web_poll() runs it on the main thread and answers it with
 * webjob_finish(). Not for use outside these two files.
 */
#ifndef FIREGW_WEBJOBS_H
#define FIREGW_WEBJOBS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "queue.h"
#include "siteedit.h"
#include "snapshot.h"
#include "webauth.h"

/* Events kept for streams that fall behind; older ones are skipped. */
#define EVENT_RING 256
/* Jobs waiting for the main thread; beyond this requests get 503 and records are dropped. */
#define WEB_QUEUE_MAX 256

enum job_kind {
    JOB_RECORD, /* write a line to the event log; nobody waits */
    JOB_ACTION,
    JOB_WALK_START,
    JOB_WALK_GET,
    JOB_WALK_STOP,
    JOB_CONFIG_GET,
    JOB_RELOAD, /* apply the site file a handler has just edited */
    JOB_PROBE,
    JOB_SCAN,
};

struct job {
    struct job *next;
    enum job_kind kind;
    char origin[48]; /* "web:NAME": the user, as events and the event log name it */
    char *text;      /* RECORD, RELOAD: what was done; ACTION, WALK_*: the command line */
    char *result;    /* RECORD: how it went */
    char id[72];     /* zone, detector, device or bus id */
    char scope[16];  /* ACTION: all, zone or detector */
    int64_t ms;      /* WALK_START: the period; SCAN: per-unit timeout (0: the bus's) */
    int from, to;    /* SCAN */
    /* Probes in flight (main thread only). */
    unsigned long probe_id;
    char bus_id[72];
    char profile[130];
    int *channels;
    size_t nchannels;
    int64_t timeout_ms;
    /* Under w->mu. */
    bool started, done, abandoned, cancelled;
    int64_t wait_ms; /* the handler waits this long once started (probes) */
    int status;
    char *answer; /* JSON text */
};

struct walk {
    bool active;
    char zone[72];
    int64_t started_wall, until_wall;
    struct walk_hit {
        char id[72];
        int64_t at;
    } * hits;
    size_t nhits;
};

struct web {
    struct MHD_Daemon *daemon;
    struct webauth *auth;
    char *root; /* real path of the UI files; NULL: none found */
    char *events_db;
    char *site_id;
    char url[96];
    bool https;
    char *cert_pem, *key_pem;
    char *cfg_path;          /* the site file */
    pthread_mutex_t edit_mu; /* one edit of the site file at a time */

    pthread_mutex_t mu;
    pthread_cond_t job_cond;  /* a job was answered */
    pthread_cond_t feed_cond; /* new state or event for the streams, or stopping */
    bool stopping;
    struct job *queue, **queue_tail;
    size_t queued;
    unsigned long records_dropped; /* event log records refused while the queue was full */
    char *state;                   /* the live state JSON; NULL until the first is made */
    uint64_t state_ver;
    struct queue *waker;    /* the main loop's queue: a queued job wakes it (bus_wake) */
    int64_t last_read_mono; /* when a page last read the state (API or stream); under mu */
    char *ring[EVENT_RING];
    uint64_t ev_next; /* events published so far */

    /* Main thread only. */
    struct snapshot *snap;
    struct walk walk;
    struct job *inflight; /* probes waiting for their bus */
    struct queue *probe_q;
    unsigned long probe_seq;
};

/* Free a job and all it holds; NULL is fine. */
void webjob_free(struct job *j);
/* Main thread: answer job j with status and json (taken); frees j if its requester gave up. */
void webjob_finish(struct web *w, struct job *j, int status, char *json);
/* The text of o, which is deleted ("{}" if it cannot be printed). Caller frees. */
char *webjob_text(cJSON *o);
/* {"error": msg, "field": field (when not empty)}. Caller frees. */
char *webjob_error(const char *field, const char *msg);
/* {"ok": true, "message": msg (when not NULL)}. Caller frees. */
char *webjob_ok(const char *msg);

#endif
