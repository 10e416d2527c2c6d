/*
 * The event log in SQLite: schema and its migrations, the prepared statements
 * of the write path, retention, queries and the "firegw events" command.
 *
 * Durability: WAL with synchronous=NORMAL. A commit appends to the WAL
 * without an fsync, so an insert costs tens of microseconds instead of an SD
 * card's fsync (milliseconds, sometimes far more), and the database stays
 * consistent on power loss. What a power cut can lose is the commits since
 * the last checkpoint; evlog_prune checkpoints (and so fsyncs) whenever it
 * runs, which the daemon does while idle, so that window is about a second.
 * The authoritative record of an alarm is at the receiving centre; this log
 * must never be the reason one is late.
 *
 * Automatic checkpoints are replaced by our WAL hook: the checkpoint happens
 * in evlog_prune, off the dispatch path, and only a WAL grown past a backstop
 * (prune not being called) is checkpointed from a write.
 */
#include "evlog.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define DAY_MS (24LL * 3600 * 1000)
#define DEFAULT_MAX_AGE_MS (365 * DAY_MS)
#define DEFAULT_MAX_EVENTS 1000000
#define DEFAULT_MAX_COMMANDS 100000
#define DEFAULT_MAX_DELIVERIES 4000000
#define DEFAULT_BUSY_TIMEOUT_MS 50
#define DEFAULT_PRUNE_BATCH 500
#define DEFAULT_PRUNE_BUDGET_MS 50
/* About 40 MB of 4 KiB pages: only reached when evlog_prune is not being called. */
#define WAL_BACKSTOP_FRAMES 10000
#define JOURNAL_SIZE_LIMIT "4194304"
#define QUERY_CACHE 8
#define ASIDE_TRIES 100
/* The buildings this gateway serves are in Vietnam: UTC+7 all year, no DST. */
#define LOCAL_OFFSET_MS (7 * 3600 * 1000LL)
#define LOCAL_OFFSET_TEXT "+07:00"
#define DEFAULT_STATE_DIR "/var/lib/firegw"

enum table { T_EVENTS, T_COMMANDS, T_DELIVERIES, T__COUNT };
static const char *const table_names[T__COUNT] = {"events", "commands", "deliveries"};

struct cached_stmt {
    char *sql;
    sqlite3_stmt *st;
};

struct evlog {
    sqlite3 *db;
    char *path;
    bool readonly;
    struct evlog_limits lim;
    sqlite3_stmt *ins_event;
    sqlite3_stmt *ins_command;
    sqlite3_stmt *ins_delivery;
    sqlite3_stmt *count[T__COUNT];
    sqlite3_stmt *del_age[T__COUNT];
    sqlite3_stmt *del_oldest[T__COUNT];
    sqlite3_stmt *del_unprotected; /* oldest events that are not real fire alarms */
    struct cached_stmt cache[QUERY_CACHE];
    size_t cache_next;
    bool wal_dirty;
    struct log_limit write_limit;
    struct log_limit prune_limit;
    bool age_base_set; /* the wall and monotonic time of the first prune */
    int64_t age_base_wall, age_base_mono;
};

/*
 * Schema migrations: migrations[i] takes user_version i to i + 1. Append
 * only; a shipped step is never edited.
 */
static const char *const migrations[EVLOG_SCHEMA_VERSION] = {
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " seq INTEGER NOT NULL,"
    " event_id TEXT UNIQUE,"
    " ts_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " detector TEXT, device TEXT, bus TEXT, zone TEXT, floor INTEGER,"
    " test INTEGER NOT NULL,"
    " fault TEXT, rule TEXT, value REAL, level REAL, user TEXT, detail TEXT, json TEXT);"
    "CREATE INDEX events_ts ON events(ts_ms);"
    "CREATE INDEX events_zone_ts ON events(zone, ts_ms);"
    "CREATE INDEX events_detector_ts ON events(detector, ts_ms);"
    "CREATE TABLE commands ("
    " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, origin TEXT NOT NULL,"
    " command TEXT NOT NULL, result TEXT);"
    "CREATE INDEX commands_ts ON commands(ts_ms);"
    "CREATE TABLE deliveries ("
    " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, event_id TEXT, uplink TEXT NOT NULL,"
    " outcome TEXT NOT NULL, detail TEXT);"
    "CREATE INDEX deliveries_ts ON deliveries(ts_ms);"
    "CREATE INDEX deliveries_event ON deliveries(event_id);"
    /* Kept by triggers so the count limit costs a lookup, not a scan of a million rows. */
    "CREATE TABLE row_counts (tbl TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO row_counts VALUES ('events', 0), ('commands', 0), ('deliveries', 0);"
    "CREATE TRIGGER events_ins AFTER INSERT ON events"
    " BEGIN UPDATE row_counts SET n = n + 1 WHERE tbl = 'events'; END;"
    "CREATE TRIGGER events_del AFTER DELETE ON events"
    " BEGIN UPDATE row_counts SET n = n - 1 WHERE tbl = 'events'; END;"
    "CREATE TRIGGER commands_ins AFTER INSERT ON commands"
    " BEGIN UPDATE row_counts SET n = n + 1 WHERE tbl = 'commands'; END;"
    "CREATE TRIGGER commands_del AFTER DELETE ON commands"
    " BEGIN UPDATE row_counts SET n = n - 1 WHERE tbl = 'commands'; END;"
    "CREATE TRIGGER deliveries_ins AFTER INSERT ON deliveries"
    " BEGIN UPDATE row_counts SET n = n + 1 WHERE tbl = 'deliveries'; END;"
    "CREATE TRIGGER deliveries_del AFTER DELETE ON deliveries"
    " BEGIN UPDATE row_counts SET n = n - 1 WHERE tbl = 'deliveries'; END;",
};

#define EVENT_COLUMNS                                                                              \
    "id, seq, event_id, ts_ms, kind, source, detector, device, bus, zone, floor, test, fault, "    \
    "rule, value, level, user, detail, json"

/* OPEN_CORRUPT and OPEN_NEWER: the file is kept aside and a new log started. */
enum open_result { OPEN_OK, OPEN_FAILED, OPEN_CORRUPT, OPEN_NEWER };

static bool is_bad_file(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

static int64_t pick(int64_t v, int64_t dflt)
{
    return v > 0 ? v : dflt;
}

static void finalize_all(struct evlog *l)
{
    sqlite3_finalize(l->ins_event);
    sqlite3_finalize(l->ins_command);
    sqlite3_finalize(l->ins_delivery);
    sqlite3_finalize(l->del_unprotected);
    l->ins_event = l->ins_command = l->ins_delivery = l->del_unprotected = NULL;
    for (size_t t = 0; t < T__COUNT; t++) {
        sqlite3_finalize(l->count[t]);
        sqlite3_finalize(l->del_age[t]);
        sqlite3_finalize(l->del_oldest[t]);
        l->count[t] = l->del_age[t] = l->del_oldest[t] = NULL;
    }
    for (size_t i = 0; i < QUERY_CACHE; i++) {
        sqlite3_finalize(l->cache[i].st);
        free(l->cache[i].sql);
        l->cache[i].st = NULL;
        l->cache[i].sql = NULL;
    }
}

static void close_db(struct evlog *l)
{
    finalize_all(l);
    if (l->db)
        sqlite3_close(l->db);
    l->db = NULL;
}

/*
 * Checkpointing is ours (see the top of the file). The hook only records
 * that the WAL holds work and steps in when it has grown past the backstop.
 */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct evlog *l = arg;
    l->wal_dirty = true;
    if (frames >= WAL_BACKSTOP_FRAMES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

/* Run one statement that may return a single text or integer row; its text into out. */
static int exec_scalar(sqlite3 *db, const char *sql, char *out, size_t outlen, int *rc_out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            if (out)
                strlcpy_fg(out, t ? (const char *)t : "", outlen);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            if (out && outlen)
                out[0] = '\0';
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    *rc_out = rc;
    return rc == SQLITE_OK ? 0 : -1;
}

static int migrate(struct evlog *l, long from, char *err, size_t errlen, int *rc_out)
{
    int rc = sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (long v = from; rc == SQLITE_OK && v < EVLOG_SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(l->db, migrations[v], NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            char sql[64];
            snprintf(sql, sizeof(sql), "PRAGMA user_version = %ld", v + 1);
            rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
        }
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "event log %s: cannot create its tables (schema %ld to %d): %s",
                 l->path, from, EVLOG_SCHEMA_VERSION, sqlite3_errmsg(l->db));
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    }
    *rc_out = rc;
    return rc == SQLITE_OK ? 0 : -1;
}

static int prepare(struct evlog *l, sqlite3_stmt **st, const char *sql)
{
    return sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

static int prepare_writes(struct evlog *l)
{
    int rc = prepare(l, &l->ins_event,
                     "INSERT INTO events (seq, event_id, ts_ms, kind, source, detector, device, "
                     "bus, zone, floor, test, fault, rule, value, level, user, detail, json) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                     "?16, ?17, ?18)");
    if (rc == SQLITE_OK)
        rc = prepare(
            l, &l->ins_command,
            "INSERT INTO commands (ts_ms, origin, command, result) VALUES (?1, ?2, ?3, ?4)");
    if (rc == SQLITE_OK)
        rc = prepare(l, &l->ins_delivery,
                     "INSERT INTO deliveries (ts_ms, event_id, uplink, outcome, detail) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (rc == SQLITE_OK)
        rc = prepare(l, &l->del_unprotected,
                     "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE NOT (kind IN "
                     "('fire_alarm', 'fire_confirmed') AND test = 0) ORDER BY ts_ms, id LIMIT ?1)");
    for (size_t t = 0; t < T__COUNT && rc == SQLITE_OK; t++) {
        char sql[256];
        const char *n = table_names[t];
        rc = prepare(l, &l->count[t], "SELECT n FROM row_counts WHERE tbl = ?1");
        if (rc == SQLITE_OK) {
            snprintf(sql, sizeof(sql),
                     "DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE ts_ms < ?1 "
                     "ORDER BY ts_ms, id LIMIT ?2)",
                     n, n);
            rc = prepare(l, &l->del_age[t], sql);
        }
        if (rc == SQLITE_OK) {
            snprintf(sql, sizeof(sql),
                     "DELETE FROM %s WHERE id IN (SELECT id FROM %s ORDER BY ts_ms, id LIMIT ?1)",
                     n, n);
            rc = prepare(l, &l->del_oldest[t], sql);
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(l->count[t], 1, n, -1, SQLITE_STATIC);
    }
    return rc;
}

/* Open l->path for writing and bring its schema up to date. */
static enum open_result open_rw(struct evlog *l, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(l->path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open event log %s: %s", l->path,
                 l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
        close_db(l);
        return OPEN_FAILED;
    }
    sqlite3_busy_timeout(l->db, l->lim.busy_timeout_ms);
    char mode[32];
    char version[32];
    const char *step = "switch it to WAL mode";
    if (exec_scalar(l->db, "PRAGMA journal_mode = WAL", mode, sizeof(mode), &rc) == 0) {
        step = "set its sync mode";
        if (strcmp(mode, "wal") != 0)
            log_warn("event log %s: journal mode is \"%s\", not WAL; writes may block readers",
                     l->path, mode);
        if (exec_scalar(l->db, "PRAGMA synchronous = NORMAL", NULL, 0, &rc) == 0 &&
            exec_scalar(l->db, "PRAGMA journal_size_limit = " JOURNAL_SIZE_LIMIT, NULL, 0, &rc) ==
                0) {
            step = "read its schema version";
            exec_scalar(l->db, "PRAGMA user_version", version, sizeof(version), &rc);
        }
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "event log %s: cannot %s: %s", l->path, step, sqlite3_errmsg(l->db));
        close_db(l);
        return is_bad_file(rc) ? OPEN_CORRUPT : OPEN_FAILED;
    }
    long long v = 0;
    if (parse_int(version, 0, INT32_MAX, &v) < 0 || v > EVLOG_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "event log %s has schema version %s, newer than this firegw's %d (was the "
                 "gateway downgraded?)",
                 l->path, version, EVLOG_SCHEMA_VERSION);
        close_db(l);
        return OPEN_NEWER;
    }
    if (v < EVLOG_SCHEMA_VERSION && migrate(l, (long)v, err, errlen, &rc) < 0) {
        close_db(l);
        return is_bad_file(rc) ? OPEN_CORRUPT : OPEN_FAILED;
    }
    rc = prepare_writes(l);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "event log %s: cannot prepare its statements: %s", l->path,
                 sqlite3_errmsg(l->db));
        close_db(l);
        return is_bad_file(rc) ? OPEN_CORRUPT : OPEN_FAILED;
    }
    sqlite3_wal_hook(l->db, on_wal_commit, l);
    return OPEN_OK;
}

static int rename_if_present(const char *from, const char *to)
{
    if (rename(from, to) == 0 || errno == ENOENT)
        return 0;
    return -1;
}

/*
 * Move the database and its WAL aside as path.TAG-YYYYMMDDTHHMMSSZ (kept for
 * whoever investigates), and drop the shared-memory index. The WAL must go
 * too: SQLite would replay a stale WAL into the new, empty database.
 */
static int move_aside(const char *path, const char *tag, char *aside, size_t asidelen)
{
    time_t now = (time_t)(wall_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    struct stat sb;
    for (int i = 1; i <= ASIDE_TRIES; i++) {
        if (i == 1)
            snprintf(aside, asidelen, "%s.%s-%s", path, tag, stamp);
        else
            snprintf(aside, asidelen, "%s.%s-%s-%d", path, tag, stamp, i);
        if (lstat(aside, &sb) == 0)
            continue;
        if (rename(path, aside) < 0)
            return -1;
        char *from = xasprintf("%s-wal", path);
        char *to = xasprintf("%s-wal", aside);
        int rc = rename_if_present(from, to);
        free(from);
        free(to);
        char *shm = xasprintf("%s-shm", path);
        unlink(shm);
        free(shm);
        return rc;
    }
    errno = EEXIST;
    return -1;
}

/*
 * The file cannot be used: move it aside and start a new log. why is the
 * complaint about the old file; err gets the whole story.
 */
static enum open_result restart_log(struct evlog *l, const char *tag, const char *why, char *err,
                                    size_t errlen)
{
    char aside[4096];
    if (move_aside(l->path, tag, aside, sizeof(aside)) < 0) {
        snprintf(err, errlen, "%s; it cannot be moved aside: %s", why, strerror(errno));
        return OPEN_FAILED;
    }
    char why2[1024];
    strlcpy_fg(why2, why, sizeof(why2));
    char err2[512] = "";
    enum open_result r = open_rw(l, err2, sizeof(err2));
    if (r == OPEN_OK)
        snprintf(err, errlen, "%s; moved it aside to %s and started a new event log", why2, aside);
    else
        snprintf(err, errlen, "%s; moved it aside to %s, but a new log cannot be started: %s", why2,
                 aside, err2);
    return r;
}

static void set_limits(struct evlog_limits *dst, const struct evlog_limits *src)
{
    struct evlog_limits z = {0};
    if (!src)
        src = &z;
    dst->max_age_ms = pick(src->max_age_ms, DEFAULT_MAX_AGE_MS);
    dst->max_events = pick(src->max_events, DEFAULT_MAX_EVENTS);
    dst->max_commands = pick(src->max_commands, DEFAULT_MAX_COMMANDS);
    dst->max_deliveries = pick(src->max_deliveries, DEFAULT_MAX_DELIVERIES);
    dst->busy_timeout_ms = (int)pick(src->busy_timeout_ms, DEFAULT_BUSY_TIMEOUT_MS);
    dst->prune_batch = (int)pick(src->prune_batch, DEFAULT_PRUNE_BATCH);
    dst->prune_budget_ms = pick(src->prune_budget_ms, DEFAULT_PRUNE_BUDGET_MS);
}

struct evlog *evlog_open(const char *path, const struct evlog_limits *lim, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!path || !*path) {
        snprintf(err, errlen, "event log: no path given");
        return NULL;
    }
    struct evlog *l = xcalloc(1, sizeof(*l));
    l->path = xstrdup(path);
    set_limits(&l->lim, lim);
    l->write_limit.interval_ms = 60000;
    l->prune_limit.interval_ms = 60000;
    char why[1024] = "";
    enum open_result r = open_rw(l, why, sizeof(why));
    if (r == OPEN_CORRUPT || r == OPEN_NEWER)
        r = restart_log(l, r == OPEN_CORRUPT ? "corrupt" : "newer", why, err, errlen);
    else if (r == OPEN_FAILED)
        strlcpy_fg(err, why, errlen);
    if (r != OPEN_OK) {
        free(l->path);
        free(l);
        return NULL;
    }
    return l;
}

struct evlog *evlog_open_readonly(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) < 0) {
        snprintf(err, errlen, "cannot open event log %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "cannot open event log %s: not a regular file", path);
        return NULL;
    }
    struct evlog *l = xcalloc(1, sizeof(*l));
    l->path = xstrdup(path);
    l->readonly = true;
    set_limits(&l->lim, NULL);
    int rc = sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READONLY, NULL);
    char version[32] = "";
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(l->db, l->lim.busy_timeout_ms);
        exec_scalar(l->db, "PRAGMA user_version", version, sizeof(version), &rc);
    }
    long long v = 0;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot read event log %s: %s", path,
                 l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
    } else if (parse_int(version, 0, INT32_MAX, &v) < 0 || v == 0) {
        snprintf(err, errlen, "%s is not a firegw event log (no schema version)", path);
        rc = SQLITE_ERROR;
    } else if (v > EVLOG_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "event log %s has schema version %lld, newer than this firegw's %d; read it "
                 "with the firegw that wrote it",
                 path, v, EVLOG_SCHEMA_VERSION);
        rc = SQLITE_ERROR;
    }
    if (rc != SQLITE_OK) {
        evlog_close(l);
        return NULL;
    }
    return l;
}

void evlog_close(struct evlog *l)
{
    if (!l)
        return;
    close_db(l);
    free(l->path);
    free(l);
}

static void write_failed(struct evlog *l, int rc, const char *what)
{
    const char *msg = sqlite3_errmsg(l->db);
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        log_limited(&l->write_limit, mono_ms(), LOG_LVL_ERR,
                    "event log %s: %s NOT stored: the database stayed locked for %d ms (%s); "
                    "the row was dropped so that alarms are not delayed",
                    l->path, what, l->lim.busy_timeout_ms, msg);
    else
        log_limited(&l->write_limit, mono_ms(), LOG_LVL_ERR, "event log %s: %s NOT stored: %s",
                    l->path, what, msg);
}

/*
 * The file went bad under a running daemon: move it aside and carry on in a
 * new one, so one bad page does not end logging until the next restart.
 */
static int recover(struct evlog *l, int rc)
{
    char why[1024];
    char err[2048];
    snprintf(why, sizeof(why), "event log %s is corrupt (%s)", l->path,
             l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
    close_db(l);
    enum open_result r = restart_log(l, "corrupt", why, err, sizeof(err));
    log_err("%s", err);
    log_limit_reset(&l->write_limit);
    return r == OPEN_OK ? 0 : -1;
}

/* Step a bound insert once; the statement is reset and its bindings cleared. */
static int step_write(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
    if (s && *s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* A fixed-size field of an event, which is never trusted to be terminated. */
static void bind_fixed(sqlite3_stmt *st, int i, const char *field, size_t size)
{
    size_t len = strnlen(field, size);
    if (len)
        sqlite3_bind_text(st, i, field, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static bool index_ok(long i, size_t n)
{
    return i >= 0 && (size_t)i < n;
}

static void bind_event(sqlite3_stmt *st, const struct cfg *cfg, const struct event *ev,
                       const char *json)
{
    const struct cfg_detector *det = NULL;
    const struct cfg_zone *zone = NULL;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)ev->seq);
    bind_fixed(st, 2, ev->id, sizeof(ev->id));
    sqlite3_bind_int64(st, 3, ev->t.wall_ms);
    sqlite3_bind_text(st, 4, ev_kind_name(ev->kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, ev_source_name(ev->source), -1, SQLITE_STATIC);
    if (cfg) {
        if (index_ok(ev->detector, cfg->ndetectors))
            det = &cfg->detectors[ev->detector];
        if (ev->has_zone && ev->zone < cfg->nzones)
            zone = &cfg->zones[ev->zone];
        else if (det && det->zone < cfg->nzones)
            zone = &cfg->zones[det->zone];
        bind_str(st, 6, det ? det->id : NULL);
        bind_str(st, 7, index_ok(ev->device, cfg->ndevices) ? cfg->devices[ev->device].id : NULL);
        bind_str(st, 8, index_ok(ev->bus, cfg->nbuses) ? cfg->buses[ev->bus].id : NULL);
        bind_str(st, 9, zone ? zone->id : NULL);
    }
    if (det)
        sqlite3_bind_int(st, 10, det->floor);
    else if (zone)
        sqlite3_bind_int(st, 10, zone->floor);
    sqlite3_bind_int(st, 11, ev->test ? 1 : 0);
    if (ev->fault != FAULT_NONE)
        sqlite3_bind_text(st, 12, fault_code_name(ev->fault), -1, SQLITE_STATIC);
    bind_str(st, 13, ev->rule);
    if (ev->has_value)
        sqlite3_bind_double(st, 14, ev->value);
    if (ev->has_level)
        sqlite3_bind_double(st, 15, ev->level);
    bind_fixed(st, 16, ev->user, sizeof(ev->user));
    bind_fixed(st, 17, ev->detail, sizeof(ev->detail));
    bind_str(st, 18, json);
}

static bool writable(const struct evlog *l)
{
    return l && l->db && !l->readonly;
}

int evlog_add_event(struct evlog *l, const struct cfg *cfg, const struct event *ev,
                    const char *json)
{
    if (!writable(l) || !ev)
        return -1;
    for (int attempt = 0;; attempt++) {
        bind_event(l->ins_event, cfg, ev, json);
        int rc = step_write(l->ins_event);
        if (rc == SQLITE_OK)
            return 0;
        if (attempt == 0 && is_bad_file(rc) && recover(l, rc) == 0)
            continue;
        char what[96];
        snprintf(what, sizeof(what), "event #%" PRIu64 " (%s)", ev->seq, ev_kind_name(ev->kind));
        if (l->db)
            write_failed(l, rc, what);
        return -1;
    }
}

int evlog_add_command(struct evlog *l, int64_t ts_ms, const char *origin, const char *command,
                      const char *result)
{
    if (!writable(l) || !origin || !command)
        return -1;
    for (int attempt = 0;; attempt++) {
        sqlite3_stmt *st = l->ins_command;
        sqlite3_bind_int64(st, 1, ts_ms);
        sqlite3_bind_text(st, 2, origin, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, command, -1, SQLITE_STATIC);
        bind_str(st, 4, result);
        int rc = step_write(st);
        if (rc == SQLITE_OK)
            return 0;
        if (attempt == 0 && is_bad_file(rc) && recover(l, rc) == 0)
            continue;
        if (l->db)
            write_failed(l, rc, "command");
        return -1;
    }
}

int evlog_add_delivery(struct evlog *l, int64_t ts_ms, const char *event_id, const char *uplink,
                       const char *outcome, const char *detail)
{
    if (!writable(l) || !uplink || !outcome)
        return -1;
    for (int attempt = 0;; attempt++) {
        sqlite3_stmt *st = l->ins_delivery;
        sqlite3_bind_int64(st, 1, ts_ms);
        bind_str(st, 2, event_id);
        sqlite3_bind_text(st, 3, uplink, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, outcome, -1, SQLITE_STATIC);
        bind_str(st, 5, detail);
        int rc = step_write(st);
        if (rc == SQLITE_OK)
            return 0;
        if (attempt == 0 && is_bad_file(rc) && recover(l, rc) == 0)
            continue;
        if (l->db)
            write_failed(l, rc, "delivery outcome");
        return -1;
    }
}

/* Run one bound DELETE; rows deleted, or -1 (logged). */
static long delete_batch(struct evlog *l, sqlite3_stmt *st)
{
    int rc = step_write(st);
    if (rc != SQLITE_OK) {
        log_limited(&l->prune_limit, mono_ms(), LOG_LVL_WARN,
                    "event log %s: retention paused, will retry: %s", l->path,
                    sqlite3_errmsg(l->db));
        return -1;
    }
    return sqlite3_changes(l->db);
}

static int64_t row_count(struct evlog *l, enum table t)
{
    sqlite3_stmt *st = l->count[t];
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        log_limited(&l->prune_limit, mono_ms(), LOG_LVL_WARN, "event log %s: cannot count %s: %s",
                    l->path, table_names[t], sqlite3_errmsg(l->db));
    sqlite3_reset(st);
    return n;
}

static int64_t table_max(const struct evlog *l, enum table t)
{
    switch (t) {
    case T_EVENTS:
        return l->lim.max_events;
    case T_COMMANDS:
        return l->lim.max_commands;
    default:
        return l->lim.max_deliveries;
    }
}

/* One table's retention within the deadline; rows deleted, or -1. */
static long prune_table(struct evlog *l, enum table t, int64_t cutoff, int64_t deadline)
{
    long total = 0;
    long batch = l->lim.prune_batch;
    while (mono_ms() < deadline) {
        sqlite3_bind_int64(l->del_age[t], 1, cutoff);
        sqlite3_bind_int64(l->del_age[t], 2, batch);
        long n = delete_batch(l, l->del_age[t]);
        if (n < 0)
            return -1;
        total += n;
        if (n < batch)
            break;
    }
    while (mono_ms() < deadline) {
        int64_t count = row_count(l, t);
        if (count < 0)
            return -1;
        int64_t excess = count - table_max(l, t);
        if (excess <= 0)
            break;
        if (excess > batch)
            excess = batch;
        long n = 0;
        if (t == T_EVENTS) {
            sqlite3_bind_int64(l->del_unprotected, 1, excess);
            n = delete_batch(l, l->del_unprotected);
            if (n < 0)
                return -1;
        }
        if (n == 0) {
            /* Only real fire alarms are left: the count limit still caps the disk. */
            sqlite3_bind_int64(l->del_oldest[t], 1, excess);
            n = delete_batch(l, l->del_oldest[t]);
            if (n < 0)
                return -1;
            if (n > 0 && t == T_EVENTS)
                log_limited(&l->prune_limit, mono_ms(), LOG_LVL_WARN,
                            "event log %s: holds more than %" PRId64
                            " fire alarms; the oldest are deleted to respect the count limit",
                            l->path, l->lim.max_events);
        }
        total += n;
        if (n == 0)
            break;
    }
    return total;
}

long evlog_prune(struct evlog *l, int64_t now_ms)
{
    if (l && !l->readonly && !l->db) {
        /* Recovery from a corrupt file failed earlier (disk full?): try again while idle. */
        char err[1024];
        if (open_rw(l, err, sizeof(err)) != OPEN_OK) {
            log_limited(&l->write_limit, mono_ms(), LOG_LVL_ERR, "%s; events are not logged", err);
            return -1;
        }
        log_notice("event log %s: open again, logging resumed", l->path);
    }
    if (!writable(l))
        return -1;
    int64_t deadline = mono_ms() + l->lim.prune_budget_ms;
    /*
     * Age runs on elapsed time since the first prune, never ahead of the wall
     * clock: a clock set far ahead (a bad time server, a dead RTC) must not make
     * the whole log, fire alarms included, look old enough to delete at once.
     */
    if (!l->age_base_set) {
        l->age_base_set = true;
        l->age_base_wall = now_ms;
        l->age_base_mono = mono_ms();
    }
    int64_t aged_now = l->age_base_wall + (mono_ms() - l->age_base_mono);
    int64_t cutoff = (now_ms < aged_now ? now_ms : aged_now) - l->lim.max_age_ms;
    long total = 0;
    for (size_t t = 0; t < T__COUNT; t++) {
        long n = prune_table(l, (enum table)t, cutoff, deadline);
        if (n < 0)
            return -1;
        total += n;
    }
    if (l->wal_dirty) {
        int frames = 0;
        int done = 0;
        int rc = sqlite3_wal_checkpoint_v2(l->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
        /* A reader in the way (the CLI) leaves frames behind; the next call finishes them. */
        if (rc == SQLITE_OK && done == frames)
            l->wal_dirty = false;
    }
    return total;
}

/* A prepared query by its text, from the handle's small cache. */
static sqlite3_stmt *cached_query(struct evlog *l, const char *sql, char *err, size_t errlen)
{
    for (size_t i = 0; i < QUERY_CACHE; i++) {
        if (l->cache[i].sql && strcmp(l->cache[i].sql, sql) == 0) {
            sqlite3_reset(l->cache[i].st);
            sqlite3_clear_bindings(l->cache[i].st);
            return l->cache[i].st;
        }
    }
    sqlite3_stmt *st = NULL;
    if (prepare(l, &st, sql) != SQLITE_OK) {
        snprintf(err, errlen, "event log %s: cannot query: %s", l->path, sqlite3_errmsg(l->db));
        return NULL;
    }
    struct cached_stmt *c = &l->cache[l->cache_next];
    l->cache_next = (l->cache_next + 1) % QUERY_CACHE;
    sqlite3_finalize(c->st);
    free(c->sql);
    c->sql = xstrdup(sql);
    c->st = st;
    return st;
}

struct qbuild {
    char sql[1024];
    size_t len;
    int nparams;
};

static void qadd(struct qbuild *q, const char *text)
{
    q->len += strlcpy_fg(q->sql + q->len, text, sizeof(q->sql) - q->len);
    if (q->len >= sizeof(q->sql))
        q->len = sizeof(q->sql) - 1;
}

/* The WHERE clause shared by the three queries; the caller binds in the same order. */
static void qwhere(struct qbuild *q, const struct evlog_filter *f, bool events, bool deliveries)
{
    qadd(q, " WHERE 1");
    if (f->has_since)
        qadd(q, " AND ts_ms >= ?");
    if (f->has_until)
        qadd(q, " AND ts_ms < ?");
    if (events && f->nkinds > 0) {
        qadd(q, " AND kind IN (?");
        for (size_t i = 1; i < f->nkinds; i++)
            qadd(q, ", ?");
        qadd(q, ")");
    }
    if (events && f->zone)
        qadd(q, " AND zone = ?");
    if (events && f->detector)
        qadd(q, " AND detector = ?");
    if (deliveries && f->event_id)
        qadd(q, " AND event_id = ?");
    qadd(q,
         f->order == EVLOG_OLDEST_FIRST ? " ORDER BY ts_ms, id" : " ORDER BY ts_ms DESC, id DESC");
    if (f->limit > 0)
        qadd(q, " LIMIT ?");
}

static void qbind(sqlite3_stmt *st, const struct evlog_filter *f, bool events, bool deliveries)
{
    int i = 1;
    if (f->has_since)
        sqlite3_bind_int64(st, i++, f->since_ms);
    if (f->has_until)
        sqlite3_bind_int64(st, i++, f->until_ms);
    if (events) {
        for (size_t k = 0; k < f->nkinds; k++)
            sqlite3_bind_text(st, i++, f->kinds[k], -1, SQLITE_STATIC);
        if (f->zone)
            sqlite3_bind_text(st, i++, f->zone, -1, SQLITE_STATIC);
        if (f->detector)
            sqlite3_bind_text(st, i++, f->detector, -1, SQLITE_STATIC);
    }
    if (deliveries && f->event_id)
        sqlite3_bind_text(st, i++, f->event_id, -1, SQLITE_STATIC);
    if (f->limit > 0)
        sqlite3_bind_int64(st, i++, f->limit);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static bool col_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL;
}

enum qkind { Q_EVENTS, Q_COMMANDS, Q_DELIVERIES };

struct qcb {
    evlog_event_cb ev;
    evlog_command_cb cmd;
    evlog_delivery_cb del;
    void *arg;
};

static int row_callback(sqlite3_stmt *st, enum qkind k, const struct qcb *cb)
{
    if (k == Q_EVENTS) {
        struct evlog_event_row r = {
            .id = sqlite3_column_int64(st, 0),
            .seq = (uint64_t)sqlite3_column_int64(st, 1),
            .event_id = col_text(st, 2),
            .ts_ms = sqlite3_column_int64(st, 3),
            .kind = col_text(st, 4),
            .source = col_text(st, 5),
            .detector = col_text(st, 6),
            .device = col_text(st, 7),
            .bus = col_text(st, 8),
            .zone = col_text(st, 9),
            .has_floor = !col_null(st, 10),
            .floor = sqlite3_column_int(st, 10),
            .test = sqlite3_column_int(st, 11) != 0,
            .fault = col_text(st, 12),
            .rule = col_text(st, 13),
            .has_value = !col_null(st, 14),
            .value = sqlite3_column_double(st, 14),
            .has_level = !col_null(st, 15),
            .level = sqlite3_column_double(st, 15),
            .user = col_text(st, 16),
            .detail = col_text(st, 17),
            .json = col_text(st, 18),
        };
        return cb->ev(cb->arg, &r);
    }
    if (k == Q_COMMANDS) {
        struct evlog_command_row r = {
            .id = sqlite3_column_int64(st, 0),
            .ts_ms = sqlite3_column_int64(st, 1),
            .origin = col_text(st, 2),
            .command = col_text(st, 3),
            .result = col_text(st, 4),
        };
        return cb->cmd(cb->arg, &r);
    }
    struct evlog_delivery_row r = {
        .id = sqlite3_column_int64(st, 0),
        .ts_ms = sqlite3_column_int64(st, 1),
        .event_id = col_text(st, 2),
        .uplink = col_text(st, 3),
        .outcome = col_text(st, 4),
        .detail = col_text(st, 5),
    };
    return cb->del(cb->arg, &r);
}

static long run_query(struct evlog *l, const struct evlog_filter *f, enum qkind k,
                      const struct qcb *cb, char *err, size_t errlen)
{
    static const struct evlog_filter all = {0};
    if (!l || !l->db) {
        snprintf(err, errlen, "event log is not open");
        return -1;
    }
    if (!f)
        f = &all;
    if (f->nkinds > EVLOG_MAX_KINDS) {
        snprintf(err, errlen, "at most %d kinds in one query", EVLOG_MAX_KINDS);
        return -1;
    }
    struct qbuild q = {.len = 0};
    if (k == Q_EVENTS)
        qadd(&q, "SELECT " EVENT_COLUMNS " FROM events");
    else if (k == Q_COMMANDS)
        qadd(&q, "SELECT id, ts_ms, origin, command, result FROM commands");
    else
        qadd(&q, "SELECT id, ts_ms, event_id, uplink, outcome, detail FROM deliveries");
    qwhere(&q, f, k == Q_EVENTS, k == Q_DELIVERIES);
    sqlite3_stmt *st = cached_query(l, q.sql, err, errlen);
    if (!st)
        return -1;
    qbind(st, f, k == Q_EVENTS, k == Q_DELIVERIES);
    long rows = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        if (row_callback(st, k, cb) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "event log %s: query failed: %s", l->path, sqlite3_errmsg(l->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? rows : -1;
}

long evlog_query(struct evlog *l, const struct evlog_filter *f, evlog_event_cb cb, void *arg,
                 char *err, size_t errlen)
{
    struct qcb c = {.ev = cb, .arg = arg};
    return run_query(l, f, Q_EVENTS, &c, err, errlen);
}

long evlog_query_commands(struct evlog *l, const struct evlog_filter *f, evlog_command_cb cb,
                          void *arg, char *err, size_t errlen)
{
    struct qcb c = {.cmd = cb, .arg = arg};
    return run_query(l, f, Q_COMMANDS, &c, err, errlen);
}

long evlog_query_deliveries(struct evlog *l, const struct evlog_filter *f, evlog_delivery_cb cb,
                            void *arg, char *err, size_t errlen)
{
    struct qcb c = {.del = cb, .arg = arg};
    return run_query(l, f, Q_DELIVERIES, &c, err, errlen);
}

/* Exactly n digits at *p, advancing it. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int parse_iso(const char *s, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        digits(&p, 2, &d) < 0)
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0))
        return -1;
    int64_t offset_ms = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0)
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) < 0)
                return -1;
            if (*p == '.') {
                p++;
                int scale = 100;
                if (*p < '0' || *p > '9')
                    return -1;
                for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
                    ms += (*p - '0') * scale;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1;
            int oh, om;
            if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0 || oh > 14 ||
                om > 59)
                return -1;
            offset_ms = sign * ((int64_t)oh * 3600000 + (int64_t)om * 60000);
        } else {
            return -1; /* a time of day needs its zone: Z or +07:00 */
        }
    }
    if (*p)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    *out = (int64_t)t * 1000 + ms - offset_ms;
    return 0;
}

int evlog_parse_time(const char *s, int64_t now_ms, int64_t *out)
{
    if (!s || !*s)
        return -1;
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return 0;
    }
    if (s[0] >= '0' && s[0] <= '9' && strlen(s) >= 10 && s[4] == '-')
        return parse_iso(s, out);
    int64_t age;
    size_t n = strlen(s);
    if (s[n - 1] == 'd') {
        char num[32];
        double days;
        if (n >= sizeof(num))
            return -1;
        memcpy(num, s, n - 1);
        num[n - 1] = '\0';
        if (parse_double(num, 0, 36600, &days) < 0)
            return -1;
        age = (int64_t)(days * (double)DAY_MS);
    } else if (parse_duration_ms(s, 0, 36600 * DAY_MS, &age) < 0) {
        return -1;
    }
    *out = now_ms - age;
    return 0;
}

enum out_format { OUT_TEXT, OUT_JSON, OUT_CSV };

struct printer {
    FILE *out;
    enum out_format fmt;
};

/* Text for a terminal: control characters (a newline in a library's message) become '?'. */
static void put_clean(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static void put_local_time(FILE *out, int64_t ts_ms)
{
    int64_t local = ts_ms + LOCAL_OFFSET_MS;
    time_t secs = (time_t)(local / 1000);
    int frac = (int)(local % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    fprintf(out, "%04d-%02d-%02d %02d:%02d:%02d.%03d %s", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac, LOCAL_OFFSET_TEXT);
}

static void put_field(FILE *out, const char *key, const char *v)
{
    if (!v)
        return;
    fprintf(out, " %s=", key);
    put_clean(out, v);
}

/* One CSV field (RFC 4180): quoted when it holds a separator, a quote or a line break. */
static void put_csv(FILE *out, const char *v, bool last)
{
    if (v && strpbrk(v, ",\"\r\n")) {
        fputc('"', out);
        for (; *v; v++) {
            if (*v == '"')
                fputc('"', out);
            fputc(*v, out);
        }
        fputc('"', out);
    } else if (v) {
        fputs(v, out);
    }
    fputc(last ? '\n' : ',', out);
}

/* The two leading columns of every CSV row: UTC time, and milliseconds since the epoch. */
static void put_csv_time(FILE *out, int64_t ts_ms)
{
    char ts[40], num[32];
    format_utc_ms(ts_ms, ts, sizeof(ts));
    put_csv(out, ts, false);
    snprintf(num, sizeof(num), "%" PRId64, ts_ms);
    put_csv(out, num, false);
}

static void put_csv_num(FILE *out, bool has, double v)
{
    char buf[40] = "";
    if (has)
        snprintf(buf, sizeof(buf), "%.10g", v);
    put_csv(out, buf, false);
}

static void put_json_line(FILE *out, cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        fprintf(out, "%s\n", s);
    else
        fprintf(stderr, "firegw events: out of memory formatting a row\n");
    free(s);
    cJSON_Delete(o);
}

static void json_str(cJSON *o, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static void json_ts(cJSON *o, int64_t ts_ms)
{
    char ts[40];
    format_utc_ms(ts_ms, ts, sizeof(ts));
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddNumberToObject(o, "ts_ms", (double)ts_ms);
}

static void print_event_text(FILE *out, const struct evlog_event_row *r)
{
    put_local_time(out, r->ts_ms);
    fprintf(out, " #%" PRIu64 " %s%s", r->seq, r->kind ? r->kind : "?", r->test ? " TEST" : "");
    if (r->detector)
        put_field(out, "detector", r->detector);
    else if (r->device)
        put_field(out, "device", r->device);
    else if (r->bus)
        put_field(out, "bus", r->bus);
    else if (!r->zone)
        put_field(out, "source", r->source);
    put_field(out, "zone", r->zone);
    if (r->has_value)
        fprintf(out, " value=%.2f", r->value);
    if (r->has_level)
        fprintf(out, " level=%.2f", r->level);
    put_field(out, "fault", r->fault);
    put_field(out, "rule", r->rule);
    put_field(out, "user", r->user);
    if (r->detail) {
        fputs(" \"", out);
        put_clean(out, r->detail);
        fputc('"', out);
    }
    fputc('\n', out);
}

/* A JSON object from the columns, for a row stored without its payload. */
static void print_event_json_columns(FILE *out, const struct evlog_event_row *r)
{
    cJSON *o = cJSON_CreateObject();
    json_str(o, "event_id", r->event_id);
    cJSON_AddNumberToObject(o, "seq", (double)r->seq);
    json_ts(o, r->ts_ms);
    json_str(o, "kind", r->kind);
    cJSON_AddBoolToObject(o, "test", r->test);
    json_str(o, "source", r->source);
    json_str(o, "detector", r->detector);
    json_str(o, "device", r->device);
    json_str(o, "bus", r->bus);
    json_str(o, "zone", r->zone);
    json_str(o, "fault", r->fault);
    json_str(o, "rule", r->rule);
    if (r->has_value)
        cJSON_AddNumberToObject(o, "value", r->value);
    if (r->has_level)
        cJSON_AddNumberToObject(o, "level", r->level);
    json_str(o, "user", r->user);
    json_str(o, "detail", r->detail);
    put_json_line(out, o);
}

static int print_event(void *arg, const struct evlog_event_row *r)
{
    struct printer *p = arg;
    char num[32] = "";
    switch (p->fmt) {
    case OUT_TEXT:
        print_event_text(p->out, r);
        break;
    case OUT_JSON:
        if (r->json)
            fprintf(p->out, "%s\n", r->json);
        else
            print_event_json_columns(p->out, r);
        break;
    case OUT_CSV:
        snprintf(num, sizeof(num), "%" PRIu64, r->seq);
        put_csv(p->out, num, false);
        put_csv(p->out, r->event_id, false);
        put_csv_time(p->out, r->ts_ms);
        put_csv(p->out, r->kind, false);
        put_csv(p->out, r->test ? "1" : "0", false);
        put_csv(p->out, r->source, false);
        put_csv(p->out, r->detector, false);
        put_csv(p->out, r->device, false);
        put_csv(p->out, r->bus, false);
        put_csv(p->out, r->zone, false);
        num[0] = '\0';
        if (r->has_floor)
            snprintf(num, sizeof(num), "%d", r->floor);
        put_csv(p->out, num, false);
        put_csv(p->out, r->fault, false);
        put_csv(p->out, r->rule, false);
        put_csv_num(p->out, r->has_value, r->value);
        put_csv_num(p->out, r->has_level, r->level);
        put_csv(p->out, r->user, false);
        put_csv(p->out, r->detail, true);
        break;
    }
    return ferror(p->out) ? 1 : 0;
}

static int print_command(void *arg, const struct evlog_command_row *r)
{
    struct printer *p = arg;
    cJSON *o;
    switch (p->fmt) {
    case OUT_TEXT:
        put_local_time(p->out, r->ts_ms);
        fputc(' ', p->out);
        put_clean(p->out, r->origin ? r->origin : "?");
        fputs(" \"", p->out);
        put_clean(p->out, r->command ? r->command : "");
        fputs("\": ", p->out);
        put_clean(p->out, r->result ? r->result : "-");
        fputc('\n', p->out);
        break;
    case OUT_JSON:
        o = cJSON_CreateObject();
        json_ts(o, r->ts_ms);
        json_str(o, "origin", r->origin);
        json_str(o, "command", r->command);
        json_str(o, "result", r->result);
        put_json_line(p->out, o);
        break;
    case OUT_CSV:
        put_csv_time(p->out, r->ts_ms);
        put_csv(p->out, r->origin, false);
        put_csv(p->out, r->command, false);
        put_csv(p->out, r->result, true);
        break;
    }
    return ferror(p->out) ? 1 : 0;
}

static int print_delivery(void *arg, const struct evlog_delivery_row *r)
{
    struct printer *p = arg;
    cJSON *o;
    switch (p->fmt) {
    case OUT_TEXT:
        put_local_time(p->out, r->ts_ms);
        put_field(p->out, "event", r->event_id ? r->event_id : "-");
        put_field(p->out, "uplink", r->uplink);
        fputc(' ', p->out);
        put_clean(p->out, r->outcome ? r->outcome : "?");
        if (r->detail) {
            fputs(" \"", p->out);
            put_clean(p->out, r->detail);
            fputc('"', p->out);
        }
        fputc('\n', p->out);
        break;
    case OUT_JSON:
        o = cJSON_CreateObject();
        json_ts(o, r->ts_ms);
        json_str(o, "event_id", r->event_id);
        json_str(o, "uplink", r->uplink);
        json_str(o, "outcome", r->outcome);
        json_str(o, "detail", r->detail);
        put_json_line(p->out, o);
        break;
    case OUT_CSV:
        put_csv_time(p->out, r->ts_ms);
        put_csv(p->out, r->event_id, false);
        put_csv(p->out, r->uplink, false);
        put_csv(p->out, r->outcome, false);
        put_csv(p->out, r->detail, true);
        break;
    }
    return ferror(p->out) ? 1 : 0;
}

static void cli_usage(FILE *out)
{
    fprintf(out,
            "Usage: firegw events [--db PATH | --state-dir DIR] [filters] [--json | --csv]\n"
            "       firegw events --commands [...]\n"
            "       firegw events --deliveries [--event ID] [...]\n"
            "\n"
            "Reads the local event log (read-only; safe while the gateway runs).\n"
            "\n"
            "  --db PATH          the log file (default " DEFAULT_STATE_DIR "/" EVLOG_FILE_NAME
            ")\n"
            "  --state-dir DIR    the log is DIR/" EVLOG_FILE_NAME "\n"
            "  --since TIME       from TIME on (inclusive)\n"
            "  --until TIME       before TIME (exclusive)\n"
            "  --kind K[,K...]    events of these kinds, e.g. fire_alarm,fault\n"
            "  --zone ID          events of one zone\n"
            "  --detector ID      events of one detector\n"
            "  --event ID         deliveries of one event\n"
            "  --limit N          at most N rows\n"
            "  --oldest-first     oldest first (default newest first)\n"
            "  --json             one JSON object per line (events: the MQTT payload)\n"
            "  --csv              CSV with a header line, times in UTC\n"
            "  --commands         operator commands instead of events\n"
            "  --deliveries       delivery outcomes per uplink instead of events\n"
            "\n"
            "TIME is ISO 8601, \"2026-11-23T05:04:03Z\", \"2026-11-23T12:04+07:00\" or a date\n"
            "\"2026-11-23\" (midnight UTC), or an age: \"90s\", \"15min\", \"2h\", \"7d\" ago.\n"
            "Text output shows local time (UTC+7).\n");
}

struct cli {
    const char *db;
    const char *state_dir;
    const char *since;
    const char *until;
    char *kinds; /* owned copy, split in place */
    struct evlog_filter f;
    enum out_format fmt;
    enum qkind what;
    bool fmt_set;
    bool what_set;
};

static int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("firegw events: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see firegw events --help)\n", stderr);
    va_end(ap);
    return 2;
}

static bool known_kind(const char *k)
{
    for (int i = 0; i < EV__COUNT; i++)
        if (strcmp(k, ev_kind_name((enum ev_kind)i)) == 0)
            return true;
    return false;
}

static int cli_kinds(struct cli *c, const char *arg)
{
    free(c->kinds);
    c->kinds = xstrdup(arg);
    c->f.nkinds = 0;
    char *save = NULL;
    for (char *k = strtok_r(c->kinds, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        if (!known_kind(k)) {
            char names[512] = "";
            size_t len = 0;
            for (int i = 0; i < EV__COUNT && len < sizeof(names); i++)
                len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
                                        ev_kind_name((enum ev_kind)i));
            return cli_error("unknown event kind \"%s\"; kinds are: %s", k, names);
        }
        if (c->f.nkinds == EVLOG_MAX_KINDS)
            return cli_error("--kind takes at most %d kinds", EVLOG_MAX_KINDS);
        c->f.kinds[c->f.nkinds++] = k;
    }
    if (c->f.nkinds == 0)
        return cli_error("--kind needs at least one kind");
    return 0;
}

static int cli_set_format(struct cli *c, enum out_format fmt)
{
    if (c->fmt_set && c->fmt != fmt)
        return cli_error("--json and --csv cannot be combined");
    c->fmt = fmt;
    c->fmt_set = true;
    return 0;
}

static int cli_set_what(struct cli *c, enum qkind what)
{
    if (c->what_set && c->what != what)
        return cli_error("--commands and --deliveries cannot be combined");
    c->what = what;
    c->what_set = true;
    return 0;
}

/* "--opt VALUE" or "--opt=VALUE": the value, or NULL when this is not opt. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt, int *rc)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *rc = cli_error("%s needs a value", opt);
        return NULL;
    }
    return argv[++*i];
}

static int cli_parse(struct cli *c, int argc, char **argv)
{
    static const char *const valued[] = {"--db",   "--state-dir", "--since", "--until", "--kind",
                                         "--zone", "--detector",  "--event", "--limit"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        size_t o;
        int rc = 0;
        for (o = 0; o < ARRAY_LEN(valued); o++) {
            v = opt_value(argc, argv, &i, valued[o], &rc);
            if (v || rc)
                break;
        }
        if (rc)
            return rc;
        if (v && !*v)
            return cli_error("%s needs a value", valued[o]);
        if (v) {
            switch (o) {
            case 0:
                c->db = v;
                break;
            case 1:
                c->state_dir = v;
                break;
            case 2:
                c->since = v;
                break;
            case 3:
                c->until = v;
                break;
            case 4:
                if ((rc = cli_kinds(c, v)) != 0)
                    return rc;
                break;
            case 5:
                c->f.zone = v;
                break;
            case 6:
                c->f.detector = v;
                break;
            case 7:
                c->f.event_id = v;
                break;
            default: {
                long long n;
                if (parse_int(v, 1, 100000000, &n) < 0)
                    return cli_error("--limit \"%s\" is not a number from 1 to 100000000", v);
                c->f.limit = (long)n;
                break;
            }
            }
            continue;
        }
        if (strcmp(a, "--json") == 0)
            rc = cli_set_format(c, OUT_JSON);
        else if (strcmp(a, "--csv") == 0)
            rc = cli_set_format(c, OUT_CSV);
        else if (strcmp(a, "--commands") == 0)
            rc = cli_set_what(c, Q_COMMANDS);
        else if (strcmp(a, "--deliveries") == 0)
            rc = cli_set_what(c, Q_DELIVERIES);
        else if (strcmp(a, "--oldest-first") == 0)
            c->f.order = EVLOG_OLDEST_FIRST;
        else if (a[0] == '-')
            rc = cli_error("unknown option \"%s\"", a);
        else
            rc = cli_error("unexpected argument \"%s\"", a);
        if (rc)
            return rc;
    }
    return 0;
}

/* Cross-checks after parsing, and the times resolved against the clock. */
static int cli_check(struct cli *c, int64_t now)
{
    if (c->db && c->state_dir)
        return cli_error("--db and --state-dir cannot be combined");
    if (c->what != Q_EVENTS && (c->f.nkinds || c->f.zone || c->f.detector))
        return cli_error("--kind, --zone and --detector apply to events only");
    if (c->what != Q_DELIVERIES && c->f.event_id)
        return cli_error("--event applies to --deliveries only");
    if (c->since) {
        if (evlog_parse_time(c->since, now, &c->f.since_ms) < 0)
            return cli_error("--since \"%s\" is not a time (2026-11-23T05:04:03Z, 2026-11-23, "
                             "15min, 2h, 7d)",
                             c->since);
        c->f.has_since = true;
    }
    if (c->until) {
        if (evlog_parse_time(c->until, now, &c->f.until_ms) < 0)
            return cli_error("--until \"%s\" is not a time (2026-11-23T05:04:03Z, 2026-11-23, "
                             "15min, 2h, 7d)",
                             c->until);
        c->f.has_until = true;
    }
    if (c->f.has_since && c->f.has_until && c->f.since_ms >= c->f.until_ms)
        return cli_error("--since %s is not before --until %s", c->since, c->until);
    return 0;
}

static void print_csv_header(FILE *out, enum qkind what)
{
    if (what == Q_EVENTS)
        fputs("seq,event_id,time_utc,ts_ms,kind,test,source,detector,device,bus,zone,floor,"
              "fault,rule,value,level,user,detail\n",
              out);
    else if (what == Q_COMMANDS)
        fputs("time_utc,ts_ms,origin,command,result\n", out);
    else
        fputs("time_utc,ts_ms,event_id,uplink,outcome,detail\n", out);
}

int evlog_cli(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_usage(stdout);
            return 0;
        }
    }
    struct cli c = {.fmt = OUT_TEXT, .what = Q_EVENTS};
    int rc = cli_parse(&c, argc, argv);
    if (rc == 0)
        rc = cli_check(&c, wall_ms());
    char *path = NULL;
    struct evlog *l = NULL;
    char err[1024];
    if (rc == 0) {
        path = c.db ? xstrdup(c.db)
                    : xasprintf("%s/%s", c.state_dir ? c.state_dir : DEFAULT_STATE_DIR,
                                EVLOG_FILE_NAME);
        l = evlog_open_readonly(path, err, sizeof(err));
        if (!l) {
            fprintf(stderr, "firegw events: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0) {
        struct printer p = {stdout, c.fmt};
        long n;
        if (c.fmt == OUT_CSV)
            print_csv_header(stdout, c.what);
        if (c.what == Q_EVENTS)
            n = evlog_query(l, &c.f, print_event, &p, err, sizeof(err));
        else if (c.what == Q_COMMANDS)
            n = evlog_query_commands(l, &c.f, print_command, &p, err, sizeof(err));
        else
            n = evlog_query_deliveries(l, &c.f, print_delivery, &p, err, sizeof(err));
        if (n < 0) {
            fprintf(stderr, "firegw events: %s\n", err);
            rc = 1;
        } else if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "firegw events: cannot write the output: %s\n", strerror(errno));
            rc = 1;
        }
    }
    evlog_close(l);
    free(path);
    free(c.kinds);
    return rc;
}
