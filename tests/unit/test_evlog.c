/*
 * Unit tests for the event log: events round-trip with every field, filters
 * (inclusive since, exclusive until, kinds, zone, detector, limit, order),
 * commands and deliveries, retention by age and by count with real fire
 * alarms kept last, persistence across reopen, corrupt and newer files moved
 * aside, a locked database dropping the row quickly instead of blocking,
 * time parsing, and "firegw events": argument errors, exit codes and the
 * text, JSON and CSV outputs. Also prints the cost of an insert.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cfg.h"
#include "event.h"
#include "evlog.h"
#include "util.h"

/* 2026-11-23T05:04:03.123Z */
#define T0 1795410243123LL
#define MIN_MS 60000LL
#define DAY_MS (24 * 3600 * 1000LL)

struct fx {
    char dir[64];
    char path[128];
    struct cfg cfg;
    struct cfg_zone zones[2];
    struct cfg_detector dets[2];
    struct cfg_device devs[1];
    struct cfg_bus buses[1];
};

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    strlcpy_fg(f->dir, "/tmp/firegw-test-evlog-XXXXXX", sizeof(f->dir));
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, EVLOG_FILE_NAME);
    f->zones[0] = (struct cfg_zone){.id = "Z1", .name = "Lobby", .floor = 1};
    f->zones[1] = (struct cfg_zone){.id = "Z3", .name = "Third floor", .floor = 3};
    f->dets[0] = (struct cfg_detector){.id = "F1-SMK-1", .zone = 0, .floor = 1, .type = DET_SMOKE};
    f->dets[1] = (struct cfg_detector){.id = "F3-HEAT-2", .zone = 1, .floor = 4, .type = DET_HEAT};
    f->devs[0] = (struct cfg_device){.id = "panel-1", .bus = 0, .unit = 7};
    f->buses[0] = (struct cfg_bus){.id = "rs485-a"};
    f->cfg.site.id = "tayho-1";
    f->cfg.zones = f->zones;
    f->cfg.nzones = 2;
    f->cfg.detectors = f->dets;
    f->cfg.ndetectors = 2;
    f->cfg.devices = f->devs;
    f->cfg.ndevices = 1;
    f->cfg.buses = f->buses;
    f->cfg.nbuses = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct event mkev(enum ev_kind k, long det, int64_t ts, uint64_t seq)
{
    struct event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = k;
    ev.source = det >= 0 ? SRC_DETECTOR : SRC_GATEWAY;
    ev.detector = det;
    ev.device = -1;
    ev.bus = -1;
    ev.t.wall_ms = ts;
    ev.seq = seq;
    snprintf(ev.id, sizeof(ev.id), "00000000-0000-4000-8000-%012" PRIu64, seq);
    return ev;
}

static struct evlog *open_ok(const char *path, const struct evlog_limits *lim)
{
    char err[1024] = "x";
    struct evlog *l = evlog_open(path, lim, err, sizeof(err));
    if (!l)
        fail_msg("evlog_open: %s", err);
    assert_string_equal(err, "");
    return l;
}

struct rows {
    size_t n;
    uint64_t seq[64];
    int64_t ts[64];
    char kind[64][24];
};

static int collect(void *arg, const struct evlog_event_row *r)
{
    struct rows *rs = arg;
    if (rs->n < 64) {
        rs->seq[rs->n] = r->seq;
        rs->ts[rs->n] = r->ts_ms;
        strlcpy_fg(rs->kind[rs->n], r->kind, sizeof(rs->kind[0]));
    }
    rs->n++;
    return 0;
}

static struct rows query(struct evlog *l, const struct evlog_filter *flt)
{
    struct rows rs = {0};
    char err[256];
    long n = evlog_query(l, flt, collect, &rs, err, sizeof(err));
    if (n < 0)
        fail_msg("evlog_query: %s", err);
    assert_int_equal((size_t)n, rs.n);
    return rs;
}

static void add(struct evlog *l, struct fx *f, enum ev_kind k, long det, int64_t ts, uint64_t seq)
{
    struct event ev = mkev(k, det, ts, seq);
    assert_int_equal(evlog_add_event(l, &f->cfg, &ev, NULL), 0);
}

struct full_row {
    int calls;
    struct evlog_event_row r;
    char strs[14][200];
};

static const char *keep(struct full_row *fr, int i, const char *s)
{
    if (!s)
        return NULL;
    strlcpy_fg(fr->strs[i], s, sizeof(fr->strs[i]));
    return fr->strs[i];
}

static int copy_row(void *arg, const struct evlog_event_row *r)
{
    struct full_row *fr = arg;
    fr->calls++;
    fr->r = *r;
    fr->r.event_id = keep(fr, 0, r->event_id);
    fr->r.kind = keep(fr, 1, r->kind);
    fr->r.source = keep(fr, 2, r->source);
    fr->r.detector = keep(fr, 3, r->detector);
    fr->r.device = keep(fr, 4, r->device);
    fr->r.bus = keep(fr, 5, r->bus);
    fr->r.zone = keep(fr, 6, r->zone);
    fr->r.fault = keep(fr, 7, r->fault);
    fr->r.rule = keep(fr, 8, r->rule);
    fr->r.user = keep(fr, 9, r->user);
    fr->r.detail = keep(fr, 10, r->detail);
    fr->r.json = keep(fr, 11, r->json);
    return 1; /* the first row only */
}

static void test_round_trip_every_field(void **state)
{
    struct fx *f = *state;
    struct evlog *l = open_ok(f->path, NULL);
    struct event ev = mkev(EV_FIRE_ALARM, 1, T0, 42);
    ev.device = 0;
    ev.bus = 0;
    ev.has_zone = true;
    ev.zone = 1;
    ev.fault = FAULT_DETECTOR_BIT;
    ev.rule = "heat_alarm_level";
    ev.test = true;
    ev.has_value = true;
    ev.value = 61.25;
    ev.has_level = true;
    ev.level = 58;
    strlcpy_fg(ev.user, "root", sizeof(ev.user));
    /* A detail filling its array with no terminator must be stored cut, not overrun. */
    memset(ev.detail, 'd', sizeof(ev.detail));
    assert_int_equal(evlog_add_event(l, &f->cfg, &ev, "{\"type\":\"event\"}"), 0);

    struct full_row fr = {0};
    char err[256];
    assert_int_equal(evlog_query(l, NULL, copy_row, &fr, err, sizeof(err)), 1);
    assert_int_equal(fr.calls, 1);
    assert_int_equal(fr.r.seq, 42);
    assert_string_equal(fr.r.event_id, ev.id);
    assert_int_equal(fr.r.ts_ms, T0);
    assert_string_equal(fr.r.kind, "fire_alarm");
    assert_string_equal(fr.r.source, "detector");
    assert_string_equal(fr.r.detector, "F3-HEAT-2");
    assert_string_equal(fr.r.device, "panel-1");
    assert_string_equal(fr.r.bus, "rs485-a");
    assert_string_equal(fr.r.zone, "Z3");
    assert_true(fr.r.has_floor);
    assert_int_equal(fr.r.floor, 4); /* the detector's own floor, not its zone's */
    assert_true(fr.r.test);
    assert_string_equal(fr.r.fault, "detector_bit");
    assert_string_equal(fr.r.rule, "heat_alarm_level");
    assert_true(fr.r.has_value);
    assert_true(fr.r.value == 61.25);
    assert_true(fr.r.has_level);
    assert_true(fr.r.level == 58);
    assert_string_equal(fr.r.user, "root");
    assert_int_equal(strlen(fr.r.detail), sizeof(ev.detail));
    assert_string_equal(fr.r.json, "{\"type\":\"event\"}");

    /* A gateway event: everything optional is absent, and reads back as absent. */
    struct event g = mkev(EV_GATEWAY_START, -1, T0 + 1, 43);
    assert_int_equal(evlog_add_event(l, &f->cfg, &g, NULL), 0);
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(evlog_query(l, NULL, copy_row, &fr, err, sizeof(err)), 1);
    assert_int_equal(fr.r.seq, 43);
    assert_string_equal(fr.r.source, "gateway");
    assert_null(fr.r.detector);
    assert_null(fr.r.device);
    assert_null(fr.r.bus);
    assert_null(fr.r.zone);
    assert_false(fr.r.has_floor);
    assert_false(fr.r.test);
    assert_null(fr.r.fault);
    assert_null(fr.r.rule);
    assert_false(fr.r.has_value);
    assert_false(fr.r.has_level);
    assert_null(fr.r.user);
    assert_null(fr.r.detail);
    assert_null(fr.r.json);

    /* A zone event without a detector takes the zone's floor. */
    struct event z = mkev(EV_RESET, -1, T0 + 2, 44);
    z.source = SRC_ZONE;
    z.has_zone = true;
    z.zone = 0;
    assert_int_equal(evlog_add_event(l, &f->cfg, &z, NULL), 0);
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(evlog_query(l, NULL, copy_row, &fr, err, sizeof(err)), 1);
    assert_string_equal(fr.r.zone, "Z1");
    assert_int_equal(fr.r.floor, 1);

    /* The same event id twice is refused (logged), an event without an id is kept. */
    assert_int_equal(evlog_add_event(l, &f->cfg, &ev, NULL), -1);
    struct event noid = mkev(EV_FAULT, 0, T0 + 3, 45);
    noid.id[0] = '\0';
    assert_int_equal(evlog_add_event(l, &f->cfg, &noid, NULL), 0);
    noid.seq = 46;
    assert_int_equal(evlog_add_event(l, &f->cfg, &noid, NULL), 0);
    assert_int_equal(query(l, NULL).n, 5);

    /* Indices outside the config are stored as absent, not read out of bounds. */
    struct event bad = mkev(EV_FAULT, 99, T0 + 4, 47);
    bad.device = 5;
    bad.bus = 5;
    bad.has_zone = true;
    bad.zone = 9;
    assert_int_equal(evlog_add_event(l, &f->cfg, &bad, NULL), 0);
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(evlog_query(l, NULL, copy_row, &fr, err, sizeof(err)), 1);
    assert_int_equal(fr.r.seq, 47);
    assert_null(fr.r.detector);
    assert_null(fr.r.zone);
    assert_null(fr.r.device);
    evlog_close(l);
}

static void test_filters(void **state)
{
    struct fx *f = *state;
    struct evlog *l = open_ok(f->path, NULL);
    /* seq i at T0 + i minutes; detectors alternate, so zones alternate. */
    static const enum ev_kind kinds[] = {EV_PRE_ALARM,  EV_FIRE_ALARM, EV_FAULT, EV_FAULT_RESTORE,
                                         EV_FIRE_ALARM, EV_RESTORE,    EV_FAULT, EV_PRE_ALARM};
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        add(l, f, kinds[i], (long)(i % 2), T0 + (int64_t)i * MIN_MS, i + 1);

    struct rows rs = query(l, NULL);
    assert_int_equal(rs.n, 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(rs.seq[i], 8 - i); /* newest first by default */

    struct evlog_filter flt = {.order = EVLOG_OLDEST_FIRST};
    rs = query(l, &flt);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(rs.seq[i], i + 1);

    /* since is inclusive, until exclusive: [T0+2min, T0+5min) holds seq 3, 4, 5. */
    flt.has_since = true;
    flt.since_ms = T0 + 2 * MIN_MS;
    flt.has_until = true;
    flt.until_ms = T0 + 5 * MIN_MS;
    rs = query(l, &flt);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.seq[0], 3);
    assert_int_equal(rs.seq[2], 5);
    assert_int_equal(rs.ts[0], flt.since_ms);

    flt = (struct evlog_filter){.kinds = {"fire_alarm", "pre_alarm"}, .nkinds = 2};
    rs = query(l, &flt);
    assert_int_equal(rs.n, 4);
    assert_int_equal(rs.seq[0], 8);
    assert_int_equal(rs.seq[1], 5);
    assert_int_equal(rs.seq[2], 2);
    assert_int_equal(rs.seq[3], 1);

    flt = (struct evlog_filter){.zone = "Z3"};
    rs = query(l, &flt);
    assert_int_equal(rs.n, 4);
    for (size_t i = 0; i < rs.n; i++)
        assert_int_equal(rs.seq[i] % 2, 0); /* detector 1, zone Z3: even seqs */

    flt = (struct evlog_filter){.detector = "F1-SMK-1", .kinds = {"fault"}, .nkinds = 1};
    rs = query(l, &flt);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.seq[0], 7);
    assert_int_equal(rs.seq[1], 3);

    flt = (struct evlog_filter){.limit = 3};
    rs = query(l, &flt);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.seq[0], 8);
    flt.order = EVLOG_OLDEST_FIRST;
    rs = query(l, &flt);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.seq[2], 3);

    flt = (struct evlog_filter){.zone = "nowhere"};
    assert_int_equal(query(l, &flt).n, 0);
    evlog_close(l);
}

struct cmd_rows {
    size_t n;
    char text[8][128];
};

static int collect_cmd(void *arg, const struct evlog_command_row *r)
{
    struct cmd_rows *c = arg;
    if (c->n < 8)
        snprintf(c->text[c->n], sizeof(c->text[0]), "%" PRId64 "|%s|%s|%s", r->ts_ms, r->origin,
                 r->command, r->result ? r->result : "(null)");
    c->n++;
    return 0;
}

static int collect_del(void *arg, const struct evlog_delivery_row *r)
{
    struct cmd_rows *c = arg;
    if (c->n < 8)
        snprintf(c->text[c->n], sizeof(c->text[0]), "%" PRId64 "|%s|%s|%s|%s", r->ts_ms,
                 r->event_id ? r->event_id : "(null)", r->uplink, r->outcome,
                 r->detail ? r->detail : "(null)");
    c->n++;
    return 0;
}

static void test_commands_and_deliveries(void **state)
{
    struct fx *f = *state;
    struct evlog *l = open_ok(f->path, NULL);
    assert_int_equal(evlog_add_command(l, T0, "local:root", "silence all", "done"), 0);
    assert_int_equal(evlog_add_command(l, T0 + 1000, "uplink:district", "reset zone Z9",
                                       "error: no zone \"Z9\""),
                     0);
    assert_int_equal(evlog_add_command(l, T0 + 2000, "local:root", "status", NULL), 0);
    assert_int_equal(evlog_add_command(l, T0, NULL, "x", "y"), -1);

    struct cmd_rows c = {0};
    char err[256];
    struct evlog_filter flt = {
        .order = EVLOG_OLDEST_FIRST, .has_until = true, .until_ms = T0 + 2000};
    assert_int_equal(evlog_query_commands(l, &flt, collect_cmd, &c, err, sizeof(err)), 2);
    assert_string_equal(c.text[0], "1795410243123|local:root|silence all|done");
    assert_string_equal(c.text[1],
                        "1795410244123|uplink:district|reset zone Z9|error: no zone \"Z9\"");

    const char *a = "00000000-0000-4000-8000-000000000001";
    const char *b = "00000000-0000-4000-8000-000000000002";
    assert_int_equal(evlog_add_delivery(l, T0, a, "district", "accepted", NULL), 0);
    assert_int_equal(evlog_add_delivery(l, T0 + 10, a, "owner", "accepted", NULL), 0);
    assert_int_equal(evlog_add_delivery(l, T0 + 20, b, "district", "accepted", NULL), 0);
    assert_int_equal(evlog_add_delivery(l, T0 + 30, a, "district", "acknowledged", "by FP-HN"), 0);
    assert_int_equal(evlog_add_delivery(l, T0 + 40, a, "owner", "failed", "no ack in 100 s"), 0);
    assert_int_equal(evlog_add_delivery(l, T0, a, NULL, "failed", NULL), -1);

    memset(&c, 0, sizeof(c));
    flt = (struct evlog_filter){.event_id = a};
    assert_int_equal(evlog_query_deliveries(l, &flt, collect_del, &c, err, sizeof(err)), 4);
    assert_string_equal(c.text[0], "1795410243163|00000000-0000-4000-8000-000000000001|owner|"
                                   "failed|no ack in 100 s");
    assert_string_equal(c.text[1], "1795410243153|00000000-0000-4000-8000-000000000001|district|"
                                   "acknowledged|by FP-HN");
    assert_string_equal(c.text[3], "1795410243123|00000000-0000-4000-8000-000000000001|district|"
                                   "accepted|(null)");
    memset(&c, 0, sizeof(c));
    assert_int_equal(evlog_query_deliveries(l, NULL, collect_del, &c, err, sizeof(err)), 5);
    evlog_close(l);
}

static int count_rows(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_retention_by_age(void **state)
{
    struct fx *f = *state;
    struct evlog_limits lim = {
        .max_age_ms = 30 * DAY_MS, .prune_batch = 2, .prune_budget_ms = 10000};
    struct evlog *l = open_ok(f->path, &lim);
    int64_t now = T0;
    /* Ages 40, 35, 31 days (deleted, fire alarm included), 30 days exactly and 1 day (kept). */
    add(l, f, EV_FIRE_ALARM, 0, now - 40 * DAY_MS, 1);
    add(l, f, EV_FAULT, 0, now - 35 * DAY_MS, 2);
    add(l, f, EV_PRE_ALARM, 1, now - 31 * DAY_MS, 3);
    add(l, f, EV_FAULT, 1, now - 30 * DAY_MS, 4);
    add(l, f, EV_FIRE_ALARM, 1, now - DAY_MS, 5);
    assert_int_equal(evlog_add_command(l, now - 31 * DAY_MS, "local:root", "reset all", "done"), 0);
    assert_int_equal(evlog_add_command(l, now, "local:root", "reset all", "done"), 0);
    assert_int_equal(evlog_add_delivery(l, now - 31 * DAY_MS, "x", "district", "accepted", NULL),
                     0);
    assert_int_equal(evlog_add_delivery(l, now, "y", "district", "accepted", NULL), 0);

    assert_int_equal(evlog_prune(l, now), 5);
    struct rows rs = query(l, NULL);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.seq[0], 5);
    assert_int_equal(rs.seq[1], 4);
    assert_int_equal(evlog_prune(l, now), 0);
    evlog_close(l);
    assert_int_equal(count_rows(f->path, "SELECT count(*) FROM commands"), 1);
    assert_int_equal(count_rows(f->path, "SELECT count(*) FROM deliveries"), 1);
    /* The trigger-kept counts agree with the tables. */
    assert_int_equal(count_rows(f->path, "SELECT n FROM row_counts WHERE tbl = 'events'"), 2);
    assert_int_equal(count_rows(f->path, "SELECT n FROM row_counts WHERE tbl = 'commands'"), 1);
}

/* A wall clock that jumps years ahead must not make the whole log look old (fault injection). */
static void test_retention_by_age_ignores_clock_jumps(void **state)
{
    struct fx *f = *state;
    struct evlog_limits lim = {
        .max_age_ms = 30 * DAY_MS, .prune_batch = 2, .prune_budget_ms = 10000};
    struct evlog *l = open_ok(f->path, &lim);
    add(l, f, EV_FAULT, 0, T0 - 40 * DAY_MS, 1);
    add(l, f, EV_FIRE_ALARM, 0, T0 - DAY_MS, 2);
    /* Age still works: the 40-day-old fault goes. */
    assert_int_equal(evlog_prune(l, T0), 1);
    /* The clock jumps 400 days ahead, then 400 days back: the alarm of yesterday stays. */
    assert_int_equal(evlog_prune(l, T0 + 400 * DAY_MS), 0);
    assert_int_equal(evlog_prune(l, T0 - 400 * DAY_MS), 0);
    struct rows rs = query(l, NULL);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.seq[0], 2);
    evlog_close(l);
}

static void test_retention_by_count_keeps_fire_alarms(void **state)
{
    struct fx *f = *state;
    struct evlog_limits lim = {.max_events = 4,
                               .max_commands = 2,
                               .max_deliveries = 3,
                               .prune_batch = 2,
                               .prune_budget_ms = 10000};
    struct evlog *l = open_ok(f->path, &lim);
    /* Oldest first: a real fire alarm, a test fire alarm (not protected), then the rest. */
    add(l, f, EV_FIRE_ALARM, 0, T0 + 1, 1);
    struct event tst = mkev(EV_FIRE_ALARM, 0, T0 + 2, 2);
    tst.test = true;
    assert_int_equal(evlog_add_event(l, &f->cfg, &tst, NULL), 0);
    add(l, f, EV_FIRE_CONFIRMED, 1, T0 + 3, 3);
    add(l, f, EV_FAULT, 1, T0 + 4, 4);
    add(l, f, EV_PRE_ALARM, 0, T0 + 5, 5);
    add(l, f, EV_RESTORE, 0, T0 + 6, 6);
    add(l, f, EV_FAULT_RESTORE, 1, T0 + 7, 7);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(evlog_add_command(l, T0 + i, "local:root", "status", "ok"), 0);
        assert_int_equal(evlog_add_delivery(l, T0 + i, "x", "owner", "accepted", NULL), 0);
    }

    /* 7 events, limit 4: the three oldest that are not real fire alarms go (2, 4, 5). */
    assert_int_equal(evlog_prune(l, T0 + 10), 3 + 3 + 2);
    struct evlog_filter oldest = {.order = EVLOG_OLDEST_FIRST};
    struct rows rs = query(l, &oldest);
    assert_int_equal(rs.n, 4);
    assert_int_equal(rs.seq[0], 1);
    assert_int_equal(rs.seq[1], 3);
    assert_int_equal(rs.seq[2], 6);
    assert_int_equal(rs.seq[3], 7);

    /* Nothing but fire alarms beyond the limit: the count limit still holds, oldest first. */
    for (uint64_t s = 8; s < 12; s++)
        add(l, f, EV_FIRE_ALARM, 0, T0 + (int64_t)s, s);
    assert_int_equal(evlog_prune(l, T0 + 20), 4);
    rs = query(l, &oldest);
    assert_int_equal(rs.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(rs.kind[i], "fire_alarm");
        assert_int_equal(rs.seq[i], 8 + i);
    }
    evlog_close(l);
    assert_int_equal(count_rows(f->path, "SELECT count(*) FROM commands"), 2);
    assert_int_equal(count_rows(f->path, "SELECT min(ts_ms) - 1795410243123 FROM commands"), 3);
    assert_int_equal(count_rows(f->path, "SELECT count(*) FROM deliveries"), 3);
}

static void test_prune_is_bounded(void **state)
{
    struct fx *f = *state;
    struct evlog_limits lim = {.max_events = 10, .prune_batch = 5, .prune_budget_ms = 1};
    struct evlog *l = open_ok(f->path, &lim);
    for (uint64_t s = 1; s <= 3000; s++)
        add(l, f, EV_FAULT, 0, T0 + (int64_t)s, s);
    /* With a 1 ms budget a call stops early; repeated calls finish the job. */
    long first = evlog_prune(l, T0);
    assert_true(first >= 0);
    assert_true(first < 2990);
    long total = first;
    for (int i = 0; i < 10000 && total < 2990; i++) {
        long n = evlog_prune(l, T0);
        assert_true(n >= 0);
        total += n;
    }
    assert_int_equal(total, 2990);
    struct rows rs = query(l, NULL);
    assert_int_equal(rs.n, 10);
    assert_int_equal(rs.seq[9], 2991);
    evlog_close(l);
}

static void test_reopen_persists(void **state)
{
    struct fx *f = *state;
    struct evlog *l = open_ok(f->path, NULL);
    add(l, f, EV_FIRE_ALARM, 0, T0, 1);
    assert_int_equal(evlog_add_command(l, T0, "local:root", "ack all", "done"), 0);
    evlog_close(l);
    l = open_ok(f->path, NULL);
    add(l, f, EV_RESTORE, 0, T0 + 1, 2);
    struct rows rs = query(l, NULL);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.seq[1], 1);
    evlog_close(l);
    assert_int_equal(count_rows(f->path, "PRAGMA user_version"), EVLOG_SCHEMA_VERSION);
    assert_int_equal(count_rows(f->path, "SELECT count(*) FROM commands"), 1);

    char err[512];
    l = evlog_open_readonly(f->path, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(query(l, NULL).n, 2);
    struct event ev = mkev(EV_FAULT, 0, T0, 3);
    assert_int_equal(evlog_add_event(l, &f->cfg, &ev, NULL), -1); /* read-only */
    assert_int_equal(evlog_prune(l, T0), -1);
    evlog_close(l);

    assert_int_equal(evlog_add_event(NULL, &f->cfg, &ev, NULL), -1);
    assert_int_equal(evlog_add_command(NULL, T0, "a", "b", "c"), -1);
    assert_int_equal(evlog_add_delivery(NULL, T0, "a", "b", "c", NULL), -1);
    assert_int_equal(evlog_prune(NULL, T0), -1);
    evlog_close(NULL);
}

/* Names in dir that start with prefix; the first into out. */
static int find_aside(const char *dir, const char *prefix, char *out, size_t outlen)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && !strstr(e->d_name, "-wal") &&
            !strstr(e->d_name, "-shm")) {
            if (n++ == 0)
                snprintf(out, outlen, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    return n;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void test_corrupt_file_moved_aside(void **state)
{
    struct fx *f = *state;
    const char *garbage = "this is not an SQLite database, but it is long enough to have a header "
                          "that SQLite will look at and reject................................";
    write_file(f->path, garbage);
    char err[1024] = "";
    struct evlog *l = evlog_open(f->path, NULL, err, sizeof(err));
    assert_non_null(l);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "not a database"));
    assert_non_null(strstr(err, "moved it aside to"));
    assert_non_null(strstr(err, "started a new event log"));
    char aside[512];
    assert_int_equal(find_aside(f->dir, EVLOG_FILE_NAME ".corrupt-", aside, sizeof(aside)), 1);
    assert_non_null(strstr(err, aside));
    char buf[512] = "";
    FILE *fp = fopen(aside, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    assert_string_equal(buf, garbage); /* kept as it was, for whoever investigates */

    add(l, f, EV_FIRE_ALARM, 0, T0, 1);
    assert_int_equal(query(l, NULL).n, 1);
    evlog_close(l);
}

static void test_newer_schema_moved_aside(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    char err[1024];
    struct evlog *ro = evlog_open_readonly(f->path, err, sizeof(err));
    assert_null(ro);
    assert_non_null(strstr(err, "schema version 99"));

    struct evlog *l = evlog_open(f->path, NULL, err, sizeof(err));
    assert_non_null(l);
    assert_non_null(strstr(err, "schema version 99, newer than this firegw's 1"));
    char aside[512];
    assert_int_equal(find_aside(f->dir, EVLOG_FILE_NAME ".newer-", aside, sizeof(aside)), 1);
    assert_int_equal(count_rows(aside, "PRAGMA user_version"), 99);
    add(l, f, EV_FAULT, 0, T0, 1);
    evlog_close(l);
}

/* Damage the events table's pages under an open log: the next insert moves it aside. */
static void test_corruption_while_running(void **state)
{
    struct fx *f = *state;
    struct evlog *l = open_ok(f->path, NULL);
    for (uint64_t s = 1; s <= 200; s++)
        add(l, f, EV_FAULT, 0, T0 + (int64_t)s, s);
    evlog_prune(l, T0); /* checkpoint: the pages are in the main file now */
    evlog_close(l);
    l = open_ok(f->path, NULL);

    int fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    char junk[4096];
    memset(junk, 0xA5, sizeof(junk));
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    for (off_t off = 4096; off < sb.st_size; off += 4096)
        assert_int_equal(pwrite(fd, junk, sizeof(junk), off), (ssize_t)sizeof(junk));
    close(fd);

    /* Whatever SQLite noticed, the event is stored: in the new log if the old one broke. */
    add(l, f, EV_FIRE_ALARM, 1, T0 + 1000, 999);
    char aside[512];
    assert_int_equal(find_aside(f->dir, EVLOG_FILE_NAME ".corrupt-", aside, sizeof(aside)), 1);
    struct rows rs = query(l, NULL);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.seq[0], 999);
    evlog_close(l);
}

/* The CLI reads while the daemon writes; neither waits for the other. */
static void test_reader_beside_writer(void **state)
{
    struct fx *f = *state;
    struct evlog *w = open_ok(f->path, NULL);
    add(w, f, EV_FIRE_ALARM, 0, T0, 1);
    char err[512];
    struct evlog *r = evlog_open_readonly(f->path, err, sizeof(err));
    if (!r)
        fail_msg("evlog_open_readonly: %s", err);
    assert_int_equal(query(r, NULL).n, 1);
    add(w, f, EV_RESTORE, 0, T0 + 1, 2);
    assert_true(evlog_prune(w, T0) >= 0);
    struct rows rs = query(r, NULL);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.seq[0], 2);
    evlog_close(r);
    evlog_close(w);
}

static void test_open_failures(void **state)
{
    struct fx *f = *state;
    char err[512];
    char p[256];
    snprintf(p, sizeof(p), "%s/missing-dir/%s", f->dir, EVLOG_FILE_NAME);
    assert_null(evlog_open(p, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, p));
    assert_null(evlog_open("", NULL, err, sizeof(err)));
    assert_null(evlog_open_readonly(p, err, sizeof(err)));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_null(evlog_open_readonly(f->dir, err, sizeof(err)));
    assert_non_null(strstr(err, "not a regular file"));

    /* An SQLite file that is not ours. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE other (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(evlog_open_readonly(f->path, err, sizeof(err)));
    assert_non_null(strstr(err, "is not a firegw event log"));
}

static void test_locked_database_drops_quickly(void **state)
{
    struct fx *f = *state;
    struct evlog_limits lim = {.busy_timeout_ms = 20};
    struct evlog *l = open_ok(f->path, &lim);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    struct event ev = mkev(EV_FIRE_ALARM, 0, T0, 1);
    int64_t start = mono_ms();
    assert_int_equal(evlog_add_event(l, &f->cfg, &ev, NULL), -1);
    int64_t took = mono_ms() - start;
    assert_true(took >= 15);
    assert_true(took < 1000);
    assert_int_equal(evlog_add_command(l, T0, "local:root", "x", NULL), -1);

    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(evlog_add_event(l, &f->cfg, &ev, NULL), 0);
    evlog_close(l);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(evlog_parse_time("2026-11-23T05:04:03Z", 0, &t), 0);
    assert_int_equal(t, T0 - 123);
    assert_int_equal(evlog_parse_time("2026-11-23T05:04:03.123Z", 0, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(evlog_parse_time("2026-11-23T05:04:03.5Z", 0, &t), 0);
    assert_int_equal(t, T0 - 123 + 500);
    assert_int_equal(evlog_parse_time("2026-11-23T12:04:03+07:00", 0, &t), 0);
    assert_int_equal(t, T0 - 123);
    assert_int_equal(evlog_parse_time("2026-11-23T05:04Z", 0, &t), 0);
    assert_int_equal(t, T0 - 123 - 3000);
    assert_int_equal(evlog_parse_time("2026-11-23", 0, &t), 0);
    assert_int_equal(t, T0 - 123 - (5 * 3600 + 4 * 60 + 3) * 1000LL);
    assert_int_equal(evlog_parse_time("2024-02-29", 0, &t), 0);
    assert_int_equal(evlog_parse_time("15min", T0, &t), 0);
    assert_int_equal(t, T0 - 15 * MIN_MS);
    assert_int_equal(evlog_parse_time("2h", T0, &t), 0);
    assert_int_equal(t, T0 - 2 * 60 * MIN_MS);
    assert_int_equal(evlog_parse_time("7d", T0, &t), 0);
    assert_int_equal(t, T0 - 7 * DAY_MS);
    assert_int_equal(evlog_parse_time("90s", T0, &t), 0);
    assert_int_equal(t, T0 - 90000);
    assert_int_equal(evlog_parse_time("now", T0, &t), 0);
    assert_int_equal(t, T0);

    static const char *bad[] = {"",
                                "yesterday",
                                "7",
                                "7days",
                                "-2h",
                                "d",
                                "2026-11-23T05:04:03",
                                "2026-02-29",
                                "2026-13-01",
                                "2026-11-31",
                                "2026-11-23T24:00Z",
                                "2026-11-23T05:60Z",
                                "2026-11-23T05:04:03.Z",
                                "2026-11-23Z",
                                "2026-11-23T05:04:03Zjunk",
                                "2026-1-23",
                                "1969-12-31"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        t = 12345;
        if (evlog_parse_time(bad[i], T0, &t) == 0)
            fail_msg("\"%s\" was accepted as %" PRId64, bad[i], t);
        assert_int_equal(t, 12345);
    }
}

struct captured {
    int rc;
    char out[16384];
    char err[4096];
};

static void slurp(int fd, char *buf, size_t len)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
}

/* Run evlog_cli with stdout and stderr captured in temp files. */
static void run_cli(struct fx *f, struct captured *c, int argc, char **argv)
{
    char po[128], pe[128];
    snprintf(po, sizeof(po), "%s/cli-out", f->dir);
    snprintf(pe, sizeof(pe), "%s/cli-err", f->dir);
    int fo = open(po, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int fe = open(pe, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fo >= 0 && fe >= 0);
    fflush(stdout);
    fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    c->rc = evlog_cli(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(save_out, 1);
    dup2(save_err, 2);
    close(save_out);
    close(save_err);
    slurp(fo, c->out, sizeof(c->out));
    slurp(fe, c->err, sizeof(c->err));
    close(fo);
    close(fe);
    unlink(po);
    unlink(pe);
}

#define CLI(f, c, ...)                                                                             \
    do {                                                                                           \
        char *argv_[] = {"events", __VA_ARGS__};                                                   \
        run_cli((f), (c), (int)ARRAY_LEN(argv_), argv_);                                           \
    } while (0)

static void test_cli_argument_errors(void **state)
{
    struct fx *f = *state;
    struct captured c;
    struct evlog *l = open_ok(f->path, NULL);
    evlog_close(l);
    char *db = f->path;

    static const struct {
        const char *opt;
        const char *val;
        const char *msg;
    } bad[] = {
        {"--since", "yesterday", "--since \"yesterday\" is not a time"},
        {"--until", "2026-11-23T05:04:03", "--until \"2026-11-23T05:04:03\" is not a time"},
        {"--kind", "fire_alarm,fire", "unknown event kind \"fire\"; kinds are: fire_alarm, "},
        {"--kind", ",", "--kind needs at least one kind"},
        {"--limit", "0", "--limit \"0\" is not a number from 1 to 100000000"},
        {"--limit", "ten", "--limit \"ten\" is not a number"},
        {"--zone", "", "--zone needs a value"},
        {"--frobnicate", "1", "unknown option \"--frobnicate\""},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        CLI(f, &c, "--db", db, (char *)bad[i].opt, (char *)bad[i].val);
        if (c.rc != 2 || !strstr(c.err, bad[i].msg))
            fail_msg("%s %s: exit %d, stderr \"%s\"", bad[i].opt, bad[i].val, c.rc, c.err);
        assert_string_equal(c.out, "");
    }
    CLI(f, &c, "--db", db, "--since", "1h", "--until", "2h");
    assert_int_equal(c.rc, 2);
    assert_non_null(strstr(c.err, "--since 1h is not before --until 2h"));
    CLI(f, &c, "--db", db, "--json", "--csv");
    assert_int_equal(c.rc, 2);
    assert_non_null(strstr(c.err, "--json and --csv cannot be combined"));
    CLI(f, &c, "--db", db, "--state-dir", f->dir);
    assert_int_equal(c.rc, 2);
    CLI(f, &c, "--db", db, "--commands", "--zone", "Z1");
    assert_int_equal(c.rc, 2);
    assert_non_null(strstr(c.err, "apply to events only"));
    CLI(f, &c, "--db", db, "--event", "abc");
    assert_int_equal(c.rc, 2);
    CLI(f, &c, "--db", db, "--commands", "--deliveries");
    assert_int_equal(c.rc, 2);
    CLI(f, &c, "--db", db, "stray");
    assert_int_equal(c.rc, 2);
    assert_non_null(strstr(c.err, "unexpected argument \"stray\""));
    CLI(f, &c, "--db");
    assert_int_equal(c.rc, 2);
    assert_non_null(strstr(c.err, "--db needs a value"));

    CLI(f, &c, "--help");
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.out, "Usage: firegw events"));

    /* A missing or unreadable log is exit 1, naming the file. */
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/nope.db", f->dir);
    CLI(f, &c, "--db", missing);
    assert_int_equal(c.rc, 1);
    assert_non_null(strstr(c.err, missing));
    assert_non_null(strstr(c.err, "No such file or directory"));
    char notdb[256];
    snprintf(notdb, sizeof(notdb), "%s/garbage.db", f->dir);
    write_file(notdb, "garbage garbage garbage garbage garbage garbage garbage garbage garbage "
                      "garbage garbage garbage garbage garbage garbage garbage garbage garbage");
    CLI(f, &c, "--db", notdb);
    assert_int_equal(c.rc, 1);
    assert_non_null(strstr(c.err, "cannot read event log"));
    /* The state directory form finds events.db in it. */
    CLI(f, &c, "--state-dir", f->dir);
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.out, "");
}

static void fill_for_cli(struct fx *f)
{
    struct evlog *l = open_ok(f->path, NULL);
    struct event a = mkev(EV_FIRE_ALARM, 1, T0, 7);
    a.has_zone = true;
    a.zone = 1;
    a.rule = "heat_alarm_level";
    a.has_value = true;
    a.value = 61.25;
    a.has_level = true;
    a.level = 58;
    assert_int_equal(evlog_add_event(l, &f->cfg, &a, "{\"type\":\"event\",\"seq\":7}"), 0);
    struct event b = mkev(EV_ACKNOWLEDGED, -1, T0 + MIN_MS, 8);
    b.source = SRC_ZONE;
    b.has_zone = true;
    b.zone = 1;
    strlcpy_fg(b.user, "guard", sizeof(b.user));
    strlcpy_fg(b.detail, "seen, \"on my way\"\nline two", sizeof(b.detail));
    assert_int_equal(evlog_add_event(l, &f->cfg, &b, NULL), 0);
    struct event c = mkev(EV_FAULT, -1, T0 + 2 * MIN_MS, 9);
    c.source = SRC_BUS;
    c.bus = 0;
    c.fault = FAULT_BUS_DOWN;
    c.test = true;
    assert_int_equal(evlog_add_event(l, &f->cfg, &c, NULL), 0);
    assert_int_equal(evlog_add_command(l, T0 + 30000, "local:guard", "acknowledge zone Z3", "done"),
                     0);
    assert_int_equal(evlog_add_delivery(l, T0 + 5, a.id, "district", "acknowledged", "by FP"), 0);
    evlog_close(l);
}

static void test_cli_text(void **state)
{
    struct fx *f = *state;
    struct captured c;
    fill_for_cli(f);
    CLI(f, &c, "--db", f->path);
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.err, "");
    assert_string_equal(c.out,
                        "2026-11-23 12:06:03.123 +07:00 #9 fault TEST bus=rs485-a fault=bus_down\n"
                        "2026-11-23 12:05:03.123 +07:00 #8 acknowledged zone=Z3 user=guard "
                        "\"seen, \"on my way\"?line two\"\n"
                        "2026-11-23 12:04:03.123 +07:00 #7 fire_alarm detector=F3-HEAT-2 zone=Z3 "
                        "value=61.25 level=58.00 rule=heat_alarm_level\n");

    CLI(f, &c, "--db", f->path, "--kind=fire_alarm,fault", "--oldest-first", "--limit", "1");
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.out, "#7 fire_alarm"));
    assert_null(strstr(c.out, "#9"));

    /* since inclusive, until exclusive, in ISO form and with an offset. */
    CLI(f, &c, "--db", f->path, "--since", "2026-11-23T05:05:03.123Z", "--until",
        "2026-11-23T12:06:03.123+07:00");
    assert_int_equal(c.rc, 0);
    assert_null(strstr(c.out, "#7"));
    assert_non_null(strstr(c.out, "#8"));
    assert_null(strstr(c.out, "#9"));

    CLI(f, &c, "--db", f->path, "--detector", "F3-HEAT-2");
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.out, "#7"));
    assert_null(strstr(c.out, "#8"));
    CLI(f, &c, "--db", f->path, "--zone", "Z3", "--since", "2026-11-24");
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.out, "");

    CLI(f, &c, "--db", f->path, "--commands");
    assert_int_equal(c.rc, 0);
    assert_string_equal(
        c.out, "2026-11-23 12:04:33.123 +07:00 local:guard \"acknowledge zone Z3\": done\n");
    CLI(f, &c, "--db", f->path, "--deliveries", "--event", "00000000-0000-4000-8000-000000000007");
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.out, "2026-11-23 12:04:03.128 +07:00 event=00000000-0000-4000-8000-"
                               "000000000007 uplink=district acknowledged \"by FP\"\n");
}

static void test_cli_json_and_csv(void **state)
{
    struct fx *f = *state;
    struct captured c;
    fill_for_cli(f);
    CLI(f, &c, "--db", f->path, "--json", "--oldest-first");
    assert_int_equal(c.rc, 0);
    /* Stored payloads verbatim; rows stored without one are built from the columns. */
    const char *want_first = "{\"type\":\"event\",\"seq\":7}\n";
    assert_memory_equal(c.out, want_first, strlen(want_first));
    const char *second = c.out + strlen(want_first);
    assert_non_null(strstr(second, "\"event_id\":\"00000000-0000-4000-8000-000000000008\""));
    assert_non_null(strstr(second, "\"ts\":\"2026-11-23T05:05:03.123Z\""));
    assert_non_null(strstr(second, "\"detail\":\"seen, \\\"on my way\\\"\\nline two\""));
    assert_non_null(strstr(second, "\"user\":\"guard\""));
    int lines = 0;
    for (const char *p = c.out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);

    CLI(f, &c, "--db", f->path, "--csv", "--oldest-first");
    assert_int_equal(c.rc, 0);
    assert_string_equal(
        c.out,
        "seq,event_id,time_utc,ts_ms,kind,test,source,detector,device,bus,zone,floor,fault,rule,"
        "value,level,user,detail\n"
        "7,00000000-0000-4000-8000-000000000007,2026-11-23T05:04:03.123Z,1795410243123,"
        "fire_alarm,0,detector,F3-HEAT-2,,,Z3,4,,heat_alarm_level,61.25,58,,\n"
        "8,00000000-0000-4000-8000-000000000008,2026-11-23T05:05:03.123Z,1795410303123,"
        "acknowledged,0,zone,,,,Z3,3,,,,,guard,\"seen, \"\"on my way\"\"\nline two\"\n"
        "9,00000000-0000-4000-8000-000000000009,2026-11-23T05:06:03.123Z,1795410363123,fault,1,"
        "bus,,,rs485-a,,,bus_down,,,,,\n");

    CLI(f, &c, "--db", f->path, "--commands", "--csv");
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.out, "time_utc,ts_ms,origin,command,result\n"
                               "2026-11-23T05:04:33.123Z,1795410273123,local:guard,acknowledge "
                               "zone Z3,done\n");
    CLI(f, &c, "--db", f->path, "--deliveries", "--json");
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.out, "{\"ts\":\"2026-11-23T05:04:03.128Z\",\"ts_ms\":1795410243128,"
                               "\"event_id\":\"00000000-0000-4000-8000-000000000007\","
                               "\"uplink\":\"district\",\"outcome\":\"acknowledged\","
                               "\"detail\":\"by FP\"}\n");
}

/* The cost the daemon pays per event in its dispatch path. */
static void test_insert_cost(void **state)
{
    struct fx *f = *state;
    struct evlog *l = open_ok(f->path, NULL);
    const int n = 10000;
    const char *json = "{\"type\":\"event\",\"schema\":1,\"kind\":\"fault\",\"building\":"
                       "\"tayho-1\",\"detail\":\"detector did not answer for 30 s\"}";
    int64_t start = mono_ms();
    int64_t worst = 0;
    for (int i = 0; i < n; i++) {
        struct event ev =
            mkev(i % 10 == 0 ? EV_FIRE_ALARM : EV_FAULT, i % 2, T0 + i, (uint64_t)i + 1);
        ev.has_value = true;
        ev.value = i * 0.01;
        ev.rule = "no_response";
        int64_t t = mono_ms();
        assert_int_equal(evlog_add_event(l, &f->cfg, &ev, json), 0);
        if (mono_ms() - t > worst)
            worst = mono_ms() - t;
        if (i % 1000 == 999)
            evlog_prune(l, T0 + i); /* as the idle daemon would: checkpoints the WAL */
    }
    int64_t took = mono_ms() - start;
    print_message("event log: %d inserts in %" PRId64 " ms (%.1f us each, slowest %" PRId64
                  " ms, including a prune and checkpoint every 1000)\n",
                  n, took, took * 1000.0 / n, worst);
    assert_int_equal(query(l, NULL).n, (size_t)n);
    /* Generous: this also runs under sanitizers and valgrind. */
    assert_true(took < 60000);
    evlog_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands_and_deliveries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_age_ignores_clock_jumps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_count_keeps_fire_alarms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_beside_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_database_drops_quickly, setup, teardown),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test_setup_teardown(test_cli_argument_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_json_and_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
