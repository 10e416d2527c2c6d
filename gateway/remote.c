/*
 * Remote command messages: a strict reader of the command JSON, the
 * authorisation, validity-window and replay checks, and the response JSON.
 *
 * Replay memory: per uplink, the ids of accepted commands with their expiry,
 * up to the capacity given to remote_new. An id is forgotten only once its
 * command has expired, so it cannot be replayed while it could be valid.
 * When the table is full of live ids the one issued first is evicted, and
 * from then on, until the last evicted command has expired, any command
 * issued no later than it is refused as a possible replay: a flood can make
 * the gateway refuse old commands, never accept a replayed one.
 *
 * Every text taken from a message into a reason is cut short and reduced to
 * printable ASCII, so a reason is always safe in a log line and in JSON.
 */
#include "remote.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Longest piece of message text quoted in a reason. */
#define QUOTE_MAX 40

struct seen {
    char id[REMOTE_ID_MAX + 1];
    int64_t issued_ms, expires_ms;
};

/* The replay memory of one uplink. */
struct book {
    char *uplink;
    struct seen *items;
    size_t n;
    bool floor;           /* a live command was evicted */
    int64_t floor_issued; /* latest "issued" of the evicted live commands */
    int64_t floor_until;  /* latest "expires" of the evicted live commands */
};

struct remote {
    size_t cap;
    struct book *books;
    size_t nbooks;
};

struct remote *remote_new(size_t replay_capacity)
{
    if (replay_capacity == 0) {
        errno = EINVAL;
        return NULL;
    }
    struct remote *r = xcalloc(1, sizeof(*r));
    r->cap = replay_capacity;
    return r;
}

void remote_free(struct remote *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nbooks; i++) {
        free(r->books[i].uplink);
        free(r->books[i].items);
    }
    free(r->books);
    free(r);
}

/* s cut to QUOTE_MAX bytes with every byte outside printable ASCII shown as '?'. */
static const char *quote(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; i < QUOTE_MAX && i + 4 < len && s[i]; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (i + 3 < len && s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* Characters in s if it is valid UTF-8 without control characters, else -1. */
static long text_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long chars = 0;
    size_t avail = strlen(s);
    while (*p) {
        size_t n = utf8_seq_len(p, avail);
        if (n == 0 || *p < 0x20 || *p == 0x7f)
            return -1;
        p += n;
        avail -= n;
        chars++;
    }
    return chars;
}

/* A copy of s with each byte that starts no valid UTF-8 sequence replaced by U+FFFD. */
static char *utf8_fixed(const char *s)
{
    char *fixed = utf8_repaired(s);
    return fixed ? fixed : xstrdup(s);
}

static bool valid_id(const char *s, size_t max, bool colon)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.' || (colon && *s == ':')))
            return false;
    return true;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Parse exactly "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into ms since the epoch. 0 or -1. */
static int parse_utc_ms(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != '.' || s[23] != 'Z')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), sec = digits(s + 17, 2), ms = digits(s + 20, 3);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || sec < 0 || sec > 59 || ms < 0)
        return -1;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return -1;
    *out = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms;
    return 0;
}

/* "12 min", "90 s", "250 ms": a span for people. */
static void span(int64_t ms, char *buf, size_t len)
{
    if (ms >= 120000)
        snprintf(buf, len, "%" PRId64 " min", ms / 60000);
    else if (ms >= 1000)
        snprintf(buf, len, "%" PRId64 " s", ms / 1000);
    else
        snprintf(buf, len, "%" PRId64 " ms", ms);
}

static const char *const fields[] = {"schema",   "type",   "id",      "command", "target",
                                     "period_s", "issued", "expires", "user"};

/* The member key of o if it appears exactly once, else NULL. */
static const cJSON *member(const cJSON *o, const char *key)
{
    const cJSON *found = NULL;
    for (const cJSON *m = o->child; m; m = m->next) {
        if (strcmp(m->string, key) != 0)
            continue;
        if (found)
            return NULL;
        found = m;
    }
    return found;
}

/* Every member known and present once. 0 or -1 with the reason. */
static int check_members(const cJSON *o, const char *const *known, size_t nknown, const char *where,
                         char *reason, size_t reasonlen)
{
    char q[64];
    for (const cJSON *m = o->child; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; i < nknown && !ok; i++)
            ok = strcmp(m->string, known[i]) == 0;
        if (!ok) {
            snprintf(reason, reasonlen, "unknown field \"%s\"%s", quote(m->string, q, sizeof(q)),
                     where);
            return -1;
        }
        for (const cJSON *p = o->child; p != m; p = p->next) {
            if (strcmp(p->string, m->string) == 0) {
                snprintf(reason, reasonlen, "field \"%s\"%s appears twice", m->string, where);
                return -1;
            }
        }
    }
    return 0;
}

/* The string member key, or NULL with the reason (missing, or not a string). */
static const char *get_string(const cJSON *o, const char *key, const char *where, char *reason,
                              size_t reasonlen)
{
    const cJSON *m = member(o, key);
    if (!m) {
        snprintf(reason, reasonlen, "missing field \"%s\"%s", key, where);
        return NULL;
    }
    if (!cJSON_IsString(m) || !m->valuestring) {
        snprintf(reason, reasonlen, "field \"%s\"%s must be a string", key, where);
        return NULL;
    }
    return m->valuestring;
}

static int get_time(const cJSON *o, const char *key, int64_t *ms, char *reason, size_t reasonlen)
{
    char q[64];
    const char *s = get_string(o, key, "", reason, reasonlen);
    if (!s)
        return -1;
    if (parse_utc_ms(s, ms) < 0) {
        snprintf(reason, reasonlen,
                 "field \"%s\" must be a UTC time like 2026-11-23T05:04:03.123Z (got \"%s\")", key,
                 quote(s, q, sizeof(q)));
        return -1;
    }
    return 0;
}

/* "zone F3", "detector X" or "all" from the target object into buf. */
static int read_target(const cJSON *t, enum remote_command c, char *buf, size_t len, char *reason,
                       size_t reasonlen)
{
    static const char *const known[] = {"scope", "id"};
    char q[64];
    const char *name = cmdset_name(c);
    if (!t) {
        snprintf(reason, reasonlen, "missing field \"target\" (\"%s\" needs one)", name);
        return -1;
    }
    if (!cJSON_IsObject(t)) {
        snprintf(reason, reasonlen, "field \"target\" must be an object");
        return -1;
    }
    if (check_members(t, known, ARRAY_LEN(known), " in target", reason, reasonlen) < 0)
        return -1;
    const char *scope = get_string(t, "scope", " in target", reason, reasonlen);
    if (!scope)
        return -1;
    bool all = strcmp(scope, "all") == 0;
    if (!all && strcmp(scope, "zone") != 0 && strcmp(scope, "detector") != 0) {
        snprintf(reason, reasonlen,
                 "target scope must be \"all\", \"zone\" or \"detector\" (got "
                 "\"%s\")",
                 quote(scope, q, sizeof(q)));
        return -1;
    }
    /* As on a fire panel: alarms are handled per zone, points are disabled and tested. */
    bool panel_op = c == RCMD_ACKNOWLEDGE || c == RCMD_SILENCE || c == RCMD_RESET;
    if (all && !panel_op) {
        snprintf(reason, reasonlen, "\"%s\" needs a zone or detector target, not \"all\"", name);
        return -1;
    }
    if (panel_op && strcmp(scope, "detector") == 0) {
        snprintf(reason, reasonlen, "\"%s\" applies to \"all\" or a zone, not a detector", name);
        return -1;
    }
    if (all) {
        if (member(t, "id")) {
            snprintf(reason, reasonlen, "target scope \"all\" takes no id");
            return -1;
        }
        snprintf(buf, len, "all");
        return 0;
    }
    const char *id = get_string(t, "id", " in target", reason, reasonlen);
    if (!id)
        return -1;
    if (!valid_id(id, 64, false)) {
        snprintf(reason, reasonlen, "target id must be 1-64 of A-Z a-z 0-9 _ - . (got \"%s\")",
                 quote(id, q, sizeof(q)));
        return -1;
    }
    snprintf(buf, len, "%s %s", scope, id);
    return 0;
}

static int read_period(const cJSON *p, enum remote_command c, long long *s, char *reason,
                       size_t reasonlen)
{
    const char *name = cmdset_name(c);
    if (!p) {
        snprintf(reason, reasonlen, "missing field \"period_s\" (\"%s\" needs one)", name);
        return -1;
    }
    double v = cJSON_IsNumber(p) ? p->valuedouble : -1;
    if (!cJSON_IsNumber(p) || !(v >= 1 && v <= REMOTE_MAX_PERIOD_S) || v != (double)(long long)v) {
        snprintf(reason, reasonlen, "field \"period_s\" must be a whole number of seconds in 1..%d",
                 REMOTE_MAX_PERIOD_S);
        return -1;
    }
    *s = (long long)v;
    return 0;
}

/* Everything the message says, checked for form; REMOTE_OK or REMOTE_MALFORMED. */
static int read_command(const cJSON *o, const char *uplink_id, struct remote_cmd *out, char *reason,
                        size_t reasonlen)
{
    char q[64], target[96] = "";
    const cJSON *m = member(o, "id");
    if (m && cJSON_IsString(m) && m->valuestring && valid_id(m->valuestring, REMOTE_ID_MAX, true))
        strlcpy_fg(out->id, m->valuestring, sizeof(out->id));
    if (check_members(o, fields, ARRAY_LEN(fields), "", reason, reasonlen) < 0)
        return REMOTE_MALFORMED;
    m = member(o, "schema");
    if (!m || !cJSON_IsNumber(m) || m->valuedouble != 1) {
        snprintf(reason, reasonlen, "%s",
                 m ? "field \"schema\" must be 1" : "missing field \"schema\"");
        return REMOTE_MALFORMED;
    }
    const char *s = get_string(o, "type", "", reason, reasonlen);
    if (!s)
        return REMOTE_MALFORMED;
    if (strcmp(s, "command") != 0) {
        snprintf(reason, reasonlen, "field \"type\" must be \"command\" (got \"%s\")",
                 quote(s, q, sizeof(q)));
        return REMOTE_MALFORMED;
    }
    if (!(s = get_string(o, "id", "", reason, reasonlen)))
        return REMOTE_MALFORMED;
    if (!out->id[0]) {
        snprintf(reason, reasonlen, "field \"id\" must be 1-%d of A-Z a-z 0-9 _ . : - (got \"%s\")",
                 REMOTE_ID_MAX, quote(s, q, sizeof(q)));
        return REMOTE_MALFORMED;
    }
    if (!(s = get_string(o, "command", "", reason, reasonlen)))
        return REMOTE_MALFORMED;
    int c = cmdset_lookup(s);
    if (c < 0) {
        snprintf(reason, reasonlen,
                 "unknown command \"%s\" (expected acknowledge, silence, reset, disable, enable, "
                 "test_on, test_off or state)",
                 quote(s, q, sizeof(q)));
        return REMOTE_MALFORMED;
    }
    out->command = (enum remote_command)c;
    const cJSON *t = member(o, "target"), *p = member(o, "period_s");
    if (c == RCMD_STATE) {
        if (t) {
            snprintf(reason, reasonlen, "\"state\" takes no target");
            return REMOTE_MALFORMED;
        }
    } else if (read_target(t, out->command, target, sizeof(target), reason, reasonlen) < 0) {
        return REMOTE_MALFORMED;
    }
    long long period = 0;
    if (c == RCMD_DISABLE || c == RCMD_TEST_ON) {
        if (read_period(p, out->command, &period, reason, reasonlen) < 0)
            return REMOTE_MALFORMED;
    } else if (p) {
        snprintf(reason, reasonlen, "\"%s\" takes no period_s", cmdset_name(out->command));
        return REMOTE_MALFORMED;
    }
    if (get_time(o, "issued", &out->issued_ms, reason, reasonlen) < 0 ||
        get_time(o, "expires", &out->expires_ms, reason, reasonlen) < 0)
        return REMOTE_MALFORMED;
    if (out->expires_ms < out->issued_ms) {
        snprintf(reason, reasonlen, "field \"expires\" is before \"issued\"");
        return REMOTE_MALFORMED;
    }
    if (!(s = get_string(o, "user", "", reason, reasonlen)))
        return REMOTE_MALFORMED;
    long chars = text_chars(s);
    if (chars < 1 || chars > REMOTE_USER_MAX) {
        snprintf(reason, reasonlen,
                 "field \"user\" must be 1-%d characters of UTF-8 text without control characters",
                 REMOTE_USER_MAX);
        return REMOTE_MALFORMED;
    }
    snprintf(out->user, sizeof(out->user), "uplink:%s:%s", uplink_id, s);
    switch (out->command) {
    case RCMD_ACKNOWLEDGE:
    case RCMD_SILENCE:
    case RCMD_RESET:
    case RCMD_ENABLE:
        snprintf(out->line, sizeof(out->line), "%s %s", cmdset_name(out->command), target);
        break;
    case RCMD_DISABLE:
        snprintf(out->line, sizeof(out->line), "disable %s %llds", target, period);
        break;
    case RCMD_TEST_ON:
        snprintf(out->line, sizeof(out->line), "test on %s %llds", target, period);
        break;
    case RCMD_TEST_OFF:
        snprintf(out->line, sizeof(out->line), "test off %s", target);
        break;
    case RCMD_STATE:
    case RCMD__COUNT:
        snprintf(out->line, sizeof(out->line), "status");
        break;
    }
    return REMOTE_OK;
}

static int check_window(const struct remote_cmd *c, int64_t now, char *reason, size_t reasonlen)
{
    char ts[32], a[32];
    if (now > c->expires_ms) {
        format_utc_ms(c->expires_ms, ts, sizeof(ts));
        span(now - c->expires_ms, a, sizeof(a));
        snprintf(reason, reasonlen, "expired at %s, %s ago by the gateway's clock", ts, a);
        return REMOTE_EXPIRED;
    }
    if (c->issued_ms > now + REMOTE_SKEW_MS) {
        span(c->issued_ms - now, a, sizeof(a));
        snprintf(reason, reasonlen,
                 "issued %s ahead of the gateway's clock; at most %d min is allowed for clock "
                 "differences",
                 a, REMOTE_SKEW_MS / 60000);
        return REMOTE_EXPIRED;
    }
    if (c->expires_ms - c->issued_ms > REMOTE_LIFETIME_MS) {
        span(c->expires_ms - c->issued_ms, a, sizeof(a));
        snprintf(reason, reasonlen,
                 "valid for %s from issued to expires; a command may be valid for at most %d min",
                 a, REMOTE_LIFETIME_MS / 60000);
        return REMOTE_EXPIRED;
    }
    return REMOTE_OK;
}

static struct book *book_of(struct remote *r, const char *uplink)
{
    for (size_t i = 0; i < r->nbooks; i++)
        if (strcmp(r->books[i].uplink, uplink) == 0)
            return &r->books[i];
    r->books = xrealloc(r->books, (r->nbooks + 1) * sizeof(*r->books));
    struct book *b = &r->books[r->nbooks++];
    *b = (struct book){.uplink = xstrdup(uplink)};
    return b;
}

/* Forget what can no longer be valid at now. */
static void prune(struct book *b, int64_t now)
{
    size_t j = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].expires_ms >= now)
            b->items[j++] = b->items[i];
    b->n = j;
    if (b->floor && now > b->floor_until)
        b->floor = false;
}

static int check_replay(const struct book *b, const struct remote_cmd *c, char *reason,
                        size_t reasonlen)
{
    char ts[32];
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->items[i].id, c->id) == 0) {
            format_utc_ms(b->items[i].expires_ms, ts, sizeof(ts));
            snprintf(reason, reasonlen,
                     "a command with id \"%s\" was already accepted on this uplink and is valid "
                     "until %s; send a new command with a new id",
                     c->id, ts);
            return REMOTE_REPLAYED;
        }
    }
    if (b->floor && c->issued_ms <= b->floor_issued) {
        format_utc_ms(b->floor_issued, ts, sizeof(ts));
        snprintf(reason, reasonlen,
                 "too many commands on this uplink to remember them all: a command issued at or "
                 "before %s cannot be told apart from a replay; send a new command",
                 ts);
        return REMOTE_REPLAYED;
    }
    return REMOTE_OK;
}

static void remember(struct book *b, size_t cap, const struct remote_cmd *c)
{
    if (b->n == cap) {
        size_t first = 0;
        for (size_t i = 1; i < b->n; i++)
            if (b->items[i].issued_ms < b->items[first].issued_ms)
                first = i;
        const struct seen *e = &b->items[first];
        if (!b->floor || e->issued_ms > b->floor_issued)
            b->floor_issued = e->issued_ms;
        if (!b->floor || e->expires_ms > b->floor_until)
            b->floor_until = e->expires_ms;
        b->floor = true;
        b->items[first] = b->items[--b->n];
    }
    if (!b->items)
        b->items = xcalloc(cap, sizeof(*b->items));
    struct seen *s = &b->items[b->n++];
    strlcpy_fg(s->id, c->id, sizeof(s->id));
    s->issued_ms = c->issued_ms;
    s->expires_ms = c->expires_ms;
}

static int parse(struct remote *r, const char *uplink_id, unsigned allowed_mask,
                 const char *payload, size_t len, int64_t now, struct remote_cmd *out, char *reason,
                 size_t reasonlen)
{
    if (len > REMOTE_MAX_BYTES) {
        snprintf(reason, reasonlen, "message of %zu bytes; at most %d are accepted", len,
                 REMOTE_MAX_BYTES);
        return REMOTE_MALFORMED;
    }
    if (!payload || memchr(payload, '\0', len)) {
        snprintf(reason, reasonlen, "not valid JSON: %s",
                 payload ? "contains a NUL byte" : "empty");
        return REMOTE_MALFORMED;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(payload, len, &end, false);
    if (o && end)
        while (end < payload + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
    if (!o || !end || end != payload + len) {
        if (end && end >= payload && end <= payload + len)
            snprintf(reason, reasonlen, "not valid JSON (at byte %td)", end - payload);
        else
            snprintf(reason, reasonlen, "not valid JSON");
        cJSON_Delete(o);
        return REMOTE_MALFORMED;
    }
    if (!cJSON_IsObject(o)) {
        snprintf(reason, reasonlen, "not a JSON object");
        cJSON_Delete(o);
        return REMOTE_MALFORMED;
    }
    int rc = read_command(o, uplink_id, out, reason, reasonlen);
    cJSON_Delete(o);
    if (rc != REMOTE_OK)
        return rc;
    if (!(allowed_mask & CMDSET_BIT(out->command))) {
        char allowed[128];
        cmdset_format(allowed_mask, allowed, sizeof(allowed));
        snprintf(reason, reasonlen, "uplink \"%s\" may not give \"%s\" (its commands: %s)",
                 uplink_id, cmdset_name(out->command), allowed);
        return REMOTE_UNAUTHORISED;
    }
    if ((rc = check_window(out, now, reason, reasonlen)) != REMOTE_OK)
        return rc;
    struct book *b = book_of(r, uplink_id);
    prune(b, now);
    if ((rc = check_replay(b, out, reason, reasonlen)) != REMOTE_OK)
        return rc;
    remember(b, r->cap, out);
    return REMOTE_OK;
}

int remote_parse(struct remote *r, const char *uplink_id, unsigned allowed_mask,
                 const char *payload, size_t len, int64_t now_wall_ms, struct remote_cmd *out,
                 char *reason, size_t reasonlen)
{
    char why[512] = "";
    if (!r || !uplink_id || !out) {
        errno = EINVAL;
        return REMOTE_MALFORMED;
    }
    memset(out, 0, sizeof(*out));
    out->command = RCMD__COUNT;
    int rc = parse(r, uplink_id, allowed_mask, payload, len, now_wall_ms, out, why, sizeof(why));
    if (rc != REMOTE_OK) {
        log_warn("remote command %s%s%s on uplink %s rejected, %s: %s", out->id[0] ? "\"" : "",
                 out->id[0] ? out->id : "without a readable id", out->id[0] ? "\"" : "", uplink_id,
                 remote_reason_code(rc), why);
        out->line[0] = '\0';
        out->user[0] = '\0';
    }
    if (reasonlen)
        strlcpy_fg(reason, why, reasonlen);
    return rc;
}

const char *remote_reason_code(int result)
{
    switch (result) {
    case REMOTE_MALFORMED:
        return "malformed";
    case REMOTE_UNAUTHORISED:
        return "unauthorised";
    case REMOTE_EXPIRED:
        return "expired";
    case REMOTE_REPLAYED:
        return "replayed";
    }
    return NULL;
}

static bool valid_code(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
            return false;
    return true;
}

/* The state object in state_json ("ok {...}" or "{...}"), or NULL. */
static cJSON *state_object(const char *state_json)
{
    if (strncmp(state_json, "ok ", 3) == 0)
        state_json += 3;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(state_json, &end, true);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool add_text(cJSON *o, const char *key, const char *s)
{
    if (!s)
        return cJSON_AddNullToObject(o, key) != NULL;
    char *fixed = utf8_fixed(s);
    bool ok = cJSON_AddStringToObject(o, key, fixed) != NULL;
    free(fixed);
    return ok;
}

char *remote_response(const struct cfg *cfg, const char *id, const char *status,
                      const char *reason_code, const char *detail, int64_t now_wall_ms,
                      const char *state_json)
{
    bool done = status && strcmp(status, "done") == 0;
    if (!cfg || !status ||
        (!done && strcmp(status, "rejected") != 0 && strcmp(status, "failed") != 0) ||
        (done ? reason_code != NULL : !reason_code || !valid_code(reason_code))) {
        errno = EINVAL;
        return NULL;
    }
    cJSON *state = NULL;
    char why[160];
    if (state_json && !(state = state_object(state_json))) {
        log_warn("remote command %s: the state to send is not a JSON object; answered failed",
                 id && *id ? id : "without id");
        status = "failed";
        reason_code = "state_unavailable";
        snprintf(why, sizeof(why), "the gateway could not put together its state");
        detail = why;
        done = false;
    }
    char ts[40];
    format_utc_ms(now_wall_ms, ts, sizeof(ts));
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "schema", 1) &&
              cJSON_AddStringToObject(o, "type", "command_response") &&
              add_text(o, "id", id && valid_id(id, REMOTE_ID_MAX, true) ? id : NULL) &&
              add_text(o, "building", cfg->site.id) && add_text(o, "ts", ts) &&
              add_text(o, "status", status) && add_text(o, "reason", done ? NULL : reason_code) &&
              add_text(o, "detail", detail ? detail : "");
    if (ok && state) {
        ok = cJSON_AddItemToObject(o, "state", state);
        if (ok)
            state = NULL;
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "state") != NULL;
    }
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(state);
    cJSON_Delete(o);
    if (!text) {
        log_err("remote command response: out of memory");
        return NULL;
    }
    char *out = xstrdup(text);
    cJSON_free(text);
    return out;
}
