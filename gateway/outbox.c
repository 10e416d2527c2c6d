/*
 * The durable outbox (outbox.h). Why our own and not Paho's file store: Paho
 * writes its files without fsync, so a power cut can lose what it had just
 * accepted; it sends strictly in the order given, so after an outage the
 * backlog would go out oldest first instead of fire alarms first; and its
 * only bound refuses new messages, alarms included. Here every row is
 * committed with synchronous=FULL before MQTT sees it.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "util.h"

#define DEFAULT_MAX 100000
#define BUSY_TIMEOUT_MS 5000

struct outbox {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *put, *next, *done, *count, *drop, *ack_put, *ack_del, *ack_each;
    struct log_limit limit;
};

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS outbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " uplink TEXT NOT NULL, priority INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " event_id TEXT NOT NULL, subtopic TEXT NOT NULL, payload TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS outbox_order ON outbox (uplink, priority, seq, id);"
    "CREATE TABLE IF NOT EXISTS awaiting_ack ("
    " uplink TEXT NOT NULL, event_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " payload TEXT NOT NULL, PRIMARY KEY (uplink, event_id));";

static int prepare(struct outbox *o, sqlite3_stmt **st, const char *sql, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(o->db, sql, -1, st, NULL) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "outbox %s: %s", o->path, sqlite3_errmsg(o->db));
    return -1;
}

struct outbox *outbox_open(const char *path, char *err, size_t errlen)
{
    struct outbox *o = xcalloc(1, sizeof(*o));
    o->path = xstrdup(path);
    o->limit.interval_ms = 10000;
    if (sqlite3_open_v2(path, &o->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open the outbox %s: %s", path,
                 o->db ? sqlite3_errmsg(o->db) : "out of memory");
        outbox_close(o);
        return NULL;
    }
    sqlite3_busy_timeout(o->db, BUSY_TIMEOUT_MS);
    char *msg = NULL;
    /* FULL: a committed row is on the disk before MQTT is given the message. */
    if (sqlite3_exec(o->db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                     "PRAGMA foreign_keys = OFF;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(o->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot prepare the outbox %s: %s", path,
                 msg ? msg : sqlite3_errmsg(o->db));
        sqlite3_free(msg);
        outbox_close(o);
        return NULL;
    }
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&o->put, "INSERT INTO outbox (uplink, priority, seq, event_id, subtopic, payload) "
                  "VALUES (?, ?, ?, ?, ?, ?)"},
        {&o->next, "SELECT id, priority, seq, event_id, subtopic, payload FROM outbox "
                   "WHERE uplink = ? ORDER BY priority, seq, id LIMIT ?"},
        {&o->done, "DELETE FROM outbox WHERE id = ?"},
        {&o->count, "SELECT count(*) FROM outbox WHERE uplink = ?"},
        /* the least urgent droppable class first, its oldest row */
        {&o->drop, "DELETE FROM outbox WHERE id = (SELECT id FROM outbox WHERE uplink = ? AND "
                   "priority IN (1, 3) ORDER BY priority DESC, seq, id LIMIT 1)"},
        {&o->ack_put, "INSERT OR REPLACE INTO awaiting_ack (uplink, event_id, seq, payload) "
                      "VALUES (?, ?, ?, ?)"},
        {&o->ack_del, "DELETE FROM awaiting_ack WHERE uplink = ? AND event_id = ?"},
        {&o->ack_each,
         "SELECT event_id, seq, payload FROM awaiting_ack WHERE uplink = ? ORDER BY seq"},
    };
    for (size_t i = 0; i < ARRAY_LEN(stmts); i++) {
        if (prepare(o, stmts[i].st, stmts[i].sql, err, errlen) < 0) {
            outbox_close(o);
            return NULL;
        }
    }
    return o;
}

void outbox_close(struct outbox *o)
{
    if (!o)
        return;
    sqlite3_stmt *all[] = {o->put,  o->next,    o->done,    o->count,
                           o->drop, o->ack_put, o->ack_del, o->ack_each};
    for (size_t i = 0; i < ARRAY_LEN(all); i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(o->db);
    free(o->path);
    free(o);
}

/* Run a prepared statement that returns no rows; 0 or -1 (logged, rate-limited). */
static int run(struct outbox *o, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return 0;
    log_limited(&o->limit, mono_ms(), LOG_LVL_ERR, "outbox %s: cannot %s: %s", o->path, what,
                sqlite3_errmsg(o->db));
    return -1;
}

size_t outbox_count(struct outbox *o, const char *uplink)
{
    if (!o)
        return 0;
    sqlite3_bind_text(o->count, 1, uplink, -1, SQLITE_STATIC);
    size_t n = sqlite3_step(o->count) == SQLITE_ROW ? (size_t)sqlite3_column_int64(o->count, 0) : 0;
    sqlite3_reset(o->count);
    sqlite3_clear_bindings(o->count);
    return n;
}

int outbox_put(struct outbox *o, const char *uplink, size_t max, int priority, uint64_t seq,
               const char *event_id, const char *subtopic, const char *payload, bool *dropped,
               char *err, size_t errlen)
{
    *dropped = false;
    if (!o) {
        snprintf(err, errlen, "no outbox");
        return -1;
    }
    sqlite3_exec(o->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (outbox_count(o, uplink) >= (max ? max : DEFAULT_MAX)) {
        sqlite3_bind_text(o->drop, 1, uplink, -1, SQLITE_STATIC);
        if (run(o, o->drop, "make room") == 0 && sqlite3_changes(o->db) > 0)
            *dropped = true;
    }
    sqlite3_bind_text(o->put, 1, uplink, -1, SQLITE_STATIC);
    sqlite3_bind_int(o->put, 2, priority);
    sqlite3_bind_int64(o->put, 3, (sqlite3_int64)seq);
    sqlite3_bind_text(o->put, 4, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(o->put, 5, subtopic, -1, SQLITE_STATIC);
    sqlite3_bind_text(o->put, 6, payload, -1, SQLITE_STATIC);
    int rc = sqlite3_step(o->put);
    sqlite3_reset(o->put);
    sqlite3_clear_bindings(o->put);
    if (rc != SQLITE_DONE || sqlite3_exec(o->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "outbox %s: cannot store event %s: %s", o->path, event_id,
                 sqlite3_errmsg(o->db));
        sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
        *dropped = false;
        return -1;
    }
    return 0;
}

static bool skipped(int64_t id, const int64_t *skip, size_t nskip)
{
    for (size_t i = 0; i < nskip; i++)
        if (skip[i] == id)
            return true;
    return false;
}

static char *column_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return xstrdup(t ? (const char *)t : "");
}

int outbox_next(struct outbox *o, const char *uplink, const int64_t *skip, size_t nskip,
                struct outbox_item *out, size_t max)
{
    if (!o)
        return -1;
    sqlite3_bind_text(o->next, 1, uplink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(o->next, 2, (sqlite3_int64)(max + nskip));
    size_t n = 0;
    int rc;
    while (n < max && (rc = sqlite3_step(o->next)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(o->next, 0);
        if (skipped(id, skip, nskip))
            continue;
        out[n] = (struct outbox_item){
            .id = id,
            .priority = sqlite3_column_int(o->next, 1),
            .seq = (uint64_t)sqlite3_column_int64(o->next, 2),
            .event_id = column_text(o->next, 3),
            .subtopic = column_text(o->next, 4),
            .payload = column_text(o->next, 5),
        };
        n++;
    }
    sqlite3_reset(o->next);
    sqlite3_clear_bindings(o->next);
    return (int)n;
}

void outbox_item_clear(struct outbox_item *it)
{
    free(it->event_id);
    free(it->subtopic);
    free(it->payload);
    memset(it, 0, sizeof(*it));
}

int outbox_done(struct outbox *o, int64_t id)
{
    if (!o)
        return -1;
    sqlite3_bind_int64(o->done, 1, id);
    return run(o, o->done, "remove a delivered message");
}

int outbox_ack_wait(struct outbox *o, const char *uplink, const char *event_id, uint64_t seq,
                    const char *payload)
{
    if (!o)
        return -1;
    sqlite3_bind_text(o->ack_put, 1, uplink, -1, SQLITE_STATIC);
    sqlite3_bind_text(o->ack_put, 2, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(o->ack_put, 3, (sqlite3_int64)seq);
    sqlite3_bind_text(o->ack_put, 4, payload, -1, SQLITE_STATIC);
    return run(o, o->ack_put, "remember an alarm waiting for its acknowledgement");
}

int outbox_ack_done(struct outbox *o, const char *uplink, const char *event_id)
{
    if (!o)
        return -1;
    sqlite3_bind_text(o->ack_del, 1, uplink, -1, SQLITE_STATIC);
    sqlite3_bind_text(o->ack_del, 2, event_id, -1, SQLITE_STATIC);
    return run(o, o->ack_del, "forget an acknowledged alarm");
}

int outbox_ack_each(struct outbox *o, const char *uplink,
                    void (*fn)(void *arg, const char *event_id, uint64_t seq, const char *payload),
                    void *arg)
{
    if (!o)
        return -1;
    sqlite3_bind_text(o->ack_each, 1, uplink, -1, SQLITE_STATIC);
    int n = 0, rc;
    while ((rc = sqlite3_step(o->ack_each)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(o->ack_each, 0);
        const char *payload = (const char *)sqlite3_column_text(o->ack_each, 2);
        fn(arg, id ? id : "", (uint64_t)sqlite3_column_int64(o->ack_each, 1),
           payload ? payload : "");
        n++;
    }
    sqlite3_reset(o->ack_each);
    sqlite3_clear_bindings(o->ack_each);
    return rc == SQLITE_DONE ? n : -1;
}
