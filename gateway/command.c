/*
 * Text operator commands: a small, strict parser in front of the engine's
 * operator functions. Every rejection says what was expected; nothing is
 * applied unless the whole line is valid.
 */
#include "command.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

#define MAX_WORDS 8

static size_t split(char *line, char **words)
{
    size_t n = 0;
    for (char *tok = strtok(line, " \t"); tok; tok = strtok(NULL, " \t")) {
        if (n == MAX_WORDS)
            return MAX_WORDS + 1;
        words[n++] = tok;
    }
    return n;
}

/* Parse "all", "zone ID" or "detector ID" at words[0..]; returns words used, -1 on error. */
static int parse_target(char **words, size_t n, bool allow_all, struct engine_op *op, char *reply,
                        size_t replylen)
{
    if (n >= 1 && allow_all && strcmp(words[0], "all") == 0) {
        op->scope = SCOPE_ALL;
        op->id = NULL;
        return 1;
    }
    if (n >= 2 && strcmp(words[0], "zone") == 0) {
        op->scope = SCOPE_ZONE;
        op->id = words[1];
        return 2;
    }
    if (n >= 2 && strcmp(words[0], "detector") == 0) {
        op->scope = SCOPE_DETECTOR;
        op->id = words[1];
        return 2;
    }
    snprintf(reply, replylen, "error: expected %s\"zone ID\" or \"detector ID\"",
             allow_all ? "\"all\", " : "");
    return -1;
}

static int parse_period(const char *word, int64_t *ms, char *reply, size_t replylen)
{
    if (!word || parse_duration_ms(word, 1000, COMMAND_MAX_PERIOD_MS, ms) < 0) {
        snprintf(reply, replylen,
                 "error: expected a period between 1s and 7d with its unit, e.g. 30min or 2h%s%s%s",
                 word ? " (got \"" : "", word ? word : "", word ? "\")" : "");
        return -1;
    }
    return 0;
}

static void status(const struct engine *e, const struct cfg *cfg, char *reply, size_t replylen)
{
    struct area_status b;
    engine_building(e, &b);
    size_t len = (size_t)snprintf(
        reply, replylen,
        "ok {\"building\":\"%s\",\"state\":\"%s\",\"detectors\":%zu,\"fire_alarm\":%zu,"
        "\"pre_alarm\":%zu,\"fault\":%zu,\"disabled\":%zu,\"test\":%zu,\"zones\":[",
        cfg->site.id, area_status_word(&b), b.detectors, b.fire_alarm, b.pre_alarm, b.fault,
        b.disabled, b.test);
    for (size_t z = 0; z < cfg->nzones && len < replylen; z++) {
        struct area_status a;
        if (engine_zone(e, z, &a) < 0)
            continue;
        len += (size_t)snprintf(reply + len, replylen - len,
                                "%s{\"id\":\"%s\",\"state\":\"%s\",\"fire_alarm\":%zu,"
                                "\"fault\":%zu,\"acknowledged\":%s,\"silenced\":%s}",
                                z ? "," : "", cfg->zones[z].id, area_status_word(&a), a.fire_alarm,
                                a.fault, a.acknowledged ? "true" : "false",
                                a.silenced ? "true" : "false");
    }
    if (len < replylen)
        snprintf(reply + len, replylen - len, "]}");
}

int command_execute(struct engine *e, const struct cfg *cfg, const char *line, const char *user,
                    struct ev_time now, struct evlist *out, char *reply, size_t replylen)
{
    char buf[1024];
    char *w[MAX_WORDS + 1];
    char err[256] = "";
    if (strlen(line) >= sizeof(buf)) {
        snprintf(reply, replylen, "error: command longer than %zu bytes", sizeof(buf) - 1);
        return -1;
    }
    strlcpy_fg(buf, line, sizeof(buf));
    size_t n = split(buf, w);
    if (n == 0 || n > MAX_WORDS) {
        snprintf(reply, replylen,
                 "error: expected a command: acknowledge, silence, reset, "
                 "disable, enable, test or status");
        return -1;
    }
    struct engine_op op = {.user = user, .now = now};
    int used, rc;
    const char *verb = w[0];
    if (strcmp(verb, "status") == 0 && n == 1) {
        status(e, cfg, reply, replylen);
        return 0;
    }
    if (strcmp(verb, "acknowledge") == 0 || strcmp(verb, "silence") == 0 ||
        strcmp(verb, "reset") == 0 || strcmp(verb, "enable") == 0) {
        bool enable = strcmp(verb, "enable") == 0;
        used = parse_target(w + 1, n - 1, !enable, &op, reply, replylen);
        if (used < 0)
            return -1;
        if ((size_t)used + 1 != n)
            goto extra;
        if (verb[0] == 'a')
            rc = engine_acknowledge(e, &op, out, err, sizeof(err));
        else if (verb[0] == 's')
            rc = engine_silence(e, &op, out, err, sizeof(err));
        else if (verb[0] == 'r')
            rc = engine_reset(e, &op, out, err, sizeof(err));
        else
            rc = engine_enable(e, &op, out, err, sizeof(err));
    } else if (strcmp(verb, "disable") == 0) {
        int64_t ms;
        used = parse_target(w + 1, n - 1, false, &op, reply, replylen);
        if (used < 0 ||
            parse_period((size_t)used + 1 < n ? w[used + 1] : NULL, &ms, reply, replylen) < 0)
            return -1;
        if ((size_t)used + 2 != n)
            goto extra;
        rc = engine_disable(e, &op, now.mono_ms + ms, out, err, sizeof(err));
    } else if (strcmp(verb, "test") == 0) {
        bool on = n > 1 && strcmp(w[1], "on") == 0;
        if (n < 2 || (!on && strcmp(w[1], "off") != 0)) {
            snprintf(reply, replylen,
                     "error: expected \"test on TARGET PERIOD\" or "
                     "\"test off TARGET\"");
            return -1;
        }
        used = parse_target(w + 2, n - 2, false, &op, reply, replylen);
        if (used < 0)
            return -1;
        int64_t ms = 0;
        if (on && parse_period((size_t)used + 2 < n ? w[used + 2] : NULL, &ms, reply, replylen) < 0)
            return -1;
        if ((size_t)used + 2 + (on ? 1 : 0) != n)
            goto extra;
        rc = engine_test_mode(e, &op, on, now.mono_ms + ms, out, err, sizeof(err));
    } else {
        snprintf(reply, replylen,
                 "error: unknown command \"%s\" (acknowledge, silence, reset, "
                 "disable, enable, test, status)",
                 verb);
        return -1;
    }
    if (rc < 0) {
        snprintf(reply, replylen, "error: %s", err);
        return -1;
    }
    snprintf(reply, replylen, "ok %s", line);
    return 0;
extra:
    snprintf(reply, replylen, "error: unexpected words after the target in \"%s\"", line);
    return -1;
}
