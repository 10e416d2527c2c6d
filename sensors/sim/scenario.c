/*
 * Scenario and control-command parser. It owns the command language (words,
 * argument order, ranges) and the file rules (every step timed with "at",
 * times never go backwards, nothing after end or loop). Every problem of a
 * file is reported, not just the first, so an author fixes them in one go.
 */
#include "scenario.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_WORDS 12
#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_AT_MS (7LL * 24 * 3600 * 1000)
#define MAX_RAMP_MS (24LL * 3600 * 1000)
#define VALUE_LIMIT 1e9

static const struct {
    const char *name;
    enum scn_op op;
    bool control_only;
} ops[] = {
    {"noise", SCN_NOISE, false}, {"set", SCN_SET, false},       {"ramp", SCN_RAMP, false},
    {"bit", SCN_BIT, false},     {"silent", SCN_SILENT, false}, {"lifecheck", SCN_LIFECHECK, false},
    {"raw", SCN_RAW, false},     {"reset", SCN_RESET, false},   {"end", SCN_END, false},
    {"loop", SCN_LOOP, false},   {"status", SCN_STATUS, true},  {"quit", SCN_QUIT, true},
    {"reply", SCN_REPLY, false}, {"stall", SCN_STALL, false},   {"unplug", SCN_UNPLUG, false},
    {"plug", SCN_PLUG, false},
};

static const char *const reply_names[] = {[SCN_REPLY_NORMAL] = "normal",
                                          [SCN_REPLY_GARBAGE] = "garbage",
                                          [SCN_REPLY_SHORT] = "short",
                                          [SCN_REPLY_CRC] = "crc",
                                          [SCN_REPLY_EXCEPTION] = "exception"};

static const enum point_role bit_roles[] = {ROLE_ALARM, ROLE_PREALARM, ROLE_FAULT, ROLE_MAINTENANCE,
                                            ROLE_DISABLED};

const char *scn_reply_name(enum scn_reply r)
{
    return (size_t)r < ARRAY_LEN(reply_names) ? reply_names[r] : "unknown";
}

const char *scn_op_name(enum scn_op op)
{
    for (size_t i = 0; i < ARRAY_LEN(ops); i++)
        if (ops[i].op == op)
            return ops[i].name;
    return "unknown";
}

/* Splits s in place on blanks, stopping at '#'. Returns the word count, or -1 if too many. */
static int split_words(char *s, char **words, int max)
{
    int n = 0;
    char *save = NULL;
    char *hash = strchr(s, '#');
    if (hash)
        *hash = '\0';
    for (char *tok = strtok_r(s, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == max)
            return -1;
        words[n++] = tok;
    }
    return n;
}

/* Ids as the site config allows them for detectors and devices ("bus/unit" included). */
static int parse_id(const char *s, char *out, char *err, size_t errlen)
{
    size_t len = strlen(s);
    if (len == 0 || len > SCN_NAME_MAX) {
        snprintf(err, errlen, "'%s' is not a valid id (1 to %d characters)", s, SCN_NAME_MAX);
        return -1;
    }
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-' || c == '/';
        if (!ok) {
            snprintf(err, errlen, "'%s' is not a valid id (letters, digits, _ . - /)", s);
            return -1;
        }
    }
    memcpy(out, s, len + 1);
    return 0;
}

static int parse_on_off(const char *s, const char *yes, const char *no, bool *out, char *err,
                        size_t errlen)
{
    if (strcmp(s, yes) == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, no) == 0) {
        *out = false;
        return 0;
    }
    snprintf(err, errlen, "expected %s or %s, got '%s'", yes, no, s);
    return -1;
}

static int parse_value(const char *s, double *out, char *err, size_t errlen)
{
    if (parse_double(s, -VALUE_LIMIT, VALUE_LIMIT, out) < 0) {
        snprintf(err, errlen, "'%s' is not a number between %g and %g", s, -VALUE_LIMIT,
                 VALUE_LIMIT);
        return -1;
    }
    return 0;
}

static int parse_duration(const char *s, int64_t max_ms, int64_t *out, char *err, size_t errlen)
{
    if (parse_duration_ms(s, 0, max_ms, out) < 0) {
        snprintf(err, errlen,
                 "'%s' is not a duration from 0 to %lld s (give a unit: 250ms, 1.5s, 2min, 1h)", s,
                 (long long)(max_ms / 1000));
        return -1;
    }
    return 0;
}

/* Raw register contents: decimal or 0x hex, as signed or unsigned 32-bit. */
static int parse_raw(const char *s, int64_t *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < INT32_MIN || v > (long long)UINT32_MAX) {
        snprintf(err, errlen, "'%s' is not a raw register value (%ld..%lu, or 0x hex)", s,
                 (long)INT32_MIN, (unsigned long)UINT32_MAX);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_role(const char *s, enum point_role *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_LEN(bit_roles); i++) {
        if (strcmp(s, point_role_name(bit_roles[i])) == 0) {
            *out = bit_roles[i];
            return 0;
        }
    }
    snprintf(err, errlen,
             "unknown status bit '%s' (expected alarm, prealarm, fault, maintenance or disabled)",
             s);
    return -1;
}

/* "normal", "garbage", "short", "crc", or "exception" and its code (words w[0], w[1]). */
static int parse_reply(char **w, int n, struct scn_cmd *cmd, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_LEN(reply_names); i++) {
        if (strcmp(w[0], reply_names[i]) != 0)
            continue;
        cmd->reply = (enum scn_reply)i;
        if ((cmd->reply == SCN_REPLY_EXCEPTION) != (n == 2))
            break;
        if (cmd->reply != SCN_REPLY_EXCEPTION)
            return 0;
        long long code;
        /* libmodbus sends the codes of the Modbus spec, 1 to 11. */
        if (parse_int(w[1], 1, 11, &code) < 0) {
            snprintf(err, errlen, "'%s' is not a Modbus exception code (1 to 11)", w[1]);
            return -1;
        }
        cmd->code = (int)code;
        return 0;
    }
    snprintf(err, errlen, "usage: reply DEVICE|DETECTOR normal|garbage|short|crc|exception CODE");
    return -1;
}

static int usage(const char *form, char *err, size_t errlen)
{
    snprintf(err, errlen, "usage: %s", form);
    return -1;
}

static int parse_words(char **w, int n, bool control, struct scn_cmd *cmd, char *err, size_t errlen)
{
    memset(cmd, 0, sizeof(*cmd));
    if (n == 0) {
        snprintf(err, errlen, "empty command");
        return -1;
    }
    size_t i;
    for (i = 0; i < ARRAY_LEN(ops); i++)
        if (strcmp(w[0], ops[i].name) == 0)
            break;
    if (i == ARRAY_LEN(ops)) {
        snprintf(err, errlen,
                 "unknown command '%s' (expected noise, set, ramp, bit, silent, lifecheck, raw, "
                 "reply, stall, unplug, plug, reset, end or loop%s)",
                 w[0], control ? ", status, quit" : "");
        return -1;
    }
    if (ops[i].control_only && !control) {
        snprintf(err, errlen, "'%s' is a control socket command, not a scenario step", w[0]);
        return -1;
    }
    cmd->op = ops[i].op;

    switch (cmd->op) {
    case SCN_NOISE:
        if (n != 2)
            return usage("noise on|off", err, errlen);
        return parse_on_off(w[1], "on", "off", &cmd->on, err, errlen);
    case SCN_SET:
        if (n != 4 || strcmp(w[2], "value") != 0)
            return usage("set DETECTOR value NUMBER", err, errlen);
        if (parse_id(w[1], cmd->target, err, errlen) < 0)
            return -1;
        return parse_value(w[3], &cmd->value, err, errlen);
    case SCN_RAMP:
        if (n != 6 || strcmp(w[2], "value") != 0 || strcmp(w[4], "over") != 0)
            return usage("ramp DETECTOR value NUMBER over DURATION", err, errlen);
        if (parse_id(w[1], cmd->target, err, errlen) < 0 ||
            parse_value(w[3], &cmd->value, err, errlen) < 0)
            return -1;
        return parse_duration(w[5], MAX_RAMP_MS, &cmd->duration_ms, err, errlen);
    case SCN_BIT:
        if (n != 4)
            return usage("bit DETECTOR alarm|prealarm|fault|maintenance|disabled on|off", err,
                         errlen);
        if (parse_id(w[1], cmd->target, err, errlen) < 0 ||
            parse_role(w[2], &cmd->role, err, errlen) < 0)
            return -1;
        return parse_on_off(w[3], "on", "off", &cmd->on, err, errlen);
    case SCN_SILENT:
        if (n != 3)
            return usage("silent DETECTOR|DEVICE on|off", err, errlen);
        if (parse_id(w[1], cmd->target, err, errlen) < 0)
            return -1;
        return parse_on_off(w[2], "on", "off", &cmd->on, err, errlen);
    case SCN_LIFECHECK:
        if (n != 3)
            return usage("lifecheck DEVICE|DETECTOR stop|start", err, errlen);
        if (parse_id(w[1], cmd->target, err, errlen) < 0)
            return -1;
        return parse_on_off(w[2], "start", "stop", &cmd->on, err, errlen);
    case SCN_RAW:
        if (n != 4)
            return usage("raw DETECTOR|DEVICE POINT RAW", err, errlen);
        if (parse_id(w[1], cmd->target, err, errlen) < 0 ||
            parse_id(w[2], cmd->point, err, errlen) < 0)
            return -1;
        return parse_raw(w[3], &cmd->raw, err, errlen);
    case SCN_REPLY:
        if (n < 3 || n > 4)
            return usage("reply DEVICE|DETECTOR normal|garbage|short|crc|exception CODE", err,
                         errlen);
        if (parse_id(w[1], cmd->target, err, errlen) < 0)
            return -1;
        return parse_reply(w + 2, n - 2, cmd, err, errlen);
    case SCN_STALL:
        if (n != 3)
            return usage("stall BUS on|off", err, errlen);
        if (parse_id(w[1], cmd->target, err, errlen) < 0)
            return -1;
        return parse_on_off(w[2], "on", "off", &cmd->on, err, errlen);
    case SCN_UNPLUG:
    case SCN_PLUG:
        if (n != 2) {
            snprintf(err, errlen, "usage: %s BUS", w[0]);
            return -1;
        }
        return parse_id(w[1], cmd->target, err, errlen);
    case SCN_RESET:
    case SCN_END:
    case SCN_LOOP:
    case SCN_STATUS:
    case SCN_QUIT:
        if (n != 1) {
            snprintf(err, errlen, "'%s' takes no arguments", w[0]);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown command '%s'", w[0]);
    return -1;
}

int scn_parse_command(const char *line, bool control, struct scn_cmd *cmd, char *err, size_t errlen)
{
    char *copy = xstrdup(line);
    char *w[MAX_WORDS];
    int n = split_words(copy, w, MAX_WORDS);
    int rc;
    if (n < 0) {
        snprintf(err, errlen, "too many words (at most %d)", MAX_WORDS);
        rc = -1;
    } else {
        rc = parse_words(w, n, control, cmd, err, errlen);
    }
    free(copy);
    return rc;
}

static void appendf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void appendf(char *err, size_t errlen, const char *fmt, ...)
{
    size_t used = strnlen(err, errlen);
    if (errlen == 0 || used >= errlen - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
}

struct parse_state {
    const char *name;
    struct scenario *s;
    size_t cap;
    int64_t last_at;
    int closed_line; /* line of end/loop, 0 while open */
    int errors;
    char *err;
    size_t errlen;
};

static void parse_line(struct parse_state *st, char *text, int lineno)
{
    char *w[MAX_WORDS + 2];
    char msg[256];
    int n = split_words(text, w, MAX_WORDS + 2);
    if (n == 0)
        return;
    if (n < 0) {
        snprintf(msg, sizeof(msg), "too many words (at most %d)", MAX_WORDS + 2);
        goto bad;
    }
    if (strcmp(w[0], "at") != 0 || n < 3) {
        snprintf(msg, sizeof(msg), "a step is 'at TIME COMMAND ...', e.g. 'at 5s noise on'");
        goto bad;
    }
    struct scn_step step = {.line = lineno};
    if (parse_duration(w[1], MAX_AT_MS, &step.at_ms, msg, sizeof(msg)) < 0)
        goto bad;
    if (parse_words(w + 2, n - 2, false, &step.cmd, msg, sizeof(msg)) < 0)
        goto bad;
    if (st->closed_line) {
        snprintf(msg, sizeof(msg), "step after the scenario's end or loop (line %d) never runs",
                 st->closed_line);
        goto bad;
    }
    if (step.at_ms < st->last_at) {
        snprintf(msg, sizeof(msg),
                 "time %s is before the previous step's (%lld ms); "
                 "steps must be in time order",
                 w[1], (long long)st->last_at);
        goto bad;
    }
    if (step.cmd.op == SCN_LOOP && step.at_ms == 0) {
        snprintf(msg, sizeof(msg), "loop at 0s would repeat forever without time passing");
        goto bad;
    }
    if (step.cmd.op == SCN_END || step.cmd.op == SCN_LOOP)
        st->closed_line = lineno;
    st->last_at = step.at_ms;
    if (st->s->nsteps == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->s->steps = xrealloc(st->s->steps, st->cap * sizeof(*st->s->steps));
    }
    st->s->steps[st->s->nsteps++] = step;
    return;
bad:
    st->errors++;
    appendf(st->err, st->errlen, "%s:%d: %s\n", st->name, lineno, msg);
}

struct scenario *scn_load_string(const char *text, const char *name, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    struct parse_state st = {.name = name, .err = err, .errlen = errlen};
    st.s = xcalloc(1, sizeof(*st.s));
    st.s->path = xstrdup(name);
    const char *p = text;
    for (int lineno = 1; *p; lineno++) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char *line = xmalloc(len + 1);
        memcpy(line, p, len);
        line[len] = '\0';
        parse_line(&st, line, lineno);
        free(line);
        p += len + (eol ? 1 : 0);
    }
    if (st.errors) {
        scn_free(st.s);
        return NULL;
    }
    return st.s;
}

struct scenario *scn_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open scenario: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = xmalloc(MAX_FILE_BYTES + 1);
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int read_err = ferror(f);
    fclose(f);
    struct scenario *s = NULL;
    if (read_err)
        snprintf(err, errlen, "%s: cannot read scenario\n", path);
    else if (n > MAX_FILE_BYTES)
        snprintf(err, errlen, "%s: scenario larger than %d bytes\n", path, MAX_FILE_BYTES);
    else if (memchr(buf, '\0', n))
        snprintf(err, errlen, "%s: scenario contains a NUL byte (not a text file?)\n", path);
    else {
        buf[n] = '\0';
        s = scn_load_string(buf, path, err, errlen);
    }
    free(buf);
    return s;
}

void scn_free(struct scenario *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->steps);
    free(s);
}
