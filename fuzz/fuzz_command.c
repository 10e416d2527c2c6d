/*
 * Fuzz target: the text operator commands (gateway/command.c), as typed after
 * `firegw ctl`, applied to a fresh alarm engine of the test site for each
 * input, so that sequences (disable, test mode, reset while alarms are on)
 * are explored and every input replays the same way.
 *
 * Input: lines. A line starting with '!' drives the building instead of
 * being a command: "!a N" puts detector N (index in the test site) into
 * alarm, "!n N" back to normal, "!t MS" lets MS milliseconds pass, "!r LEN"
 * sets the reply buffer's size, "!u NAME" the user. Any other line goes to
 * command_execute.
 *
 * Promises checked: the reply is terminated, "ok ..." exactly when 0 is
 * returned and "error: ..." otherwise; a refused command raises no event; no
 * real fire alarm ever comes from a detector that is disabled or in test
 * mode, and a test alarm is always a test event.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "engine.h"
#include "fuzz.h"
#include "util.h"

#define T0_WALL 1795410243000LL
#define MAX_LINES 64
#define MAX_DETECTORS 64
#define REPLY_MAX 65536

struct run {
    const struct cfg *cfg;
    struct engine *e;
    struct ev_time now;
    bool alarm[MAX_DETECTORS];
    size_t replylen;
    char user[64];
    char *reply;
};

static void check_events(const struct run *r, const struct evlist *out, size_t from)
{
    for (size_t i = from; i < out->count; i++) {
        const struct event *ev = &out->items[i];
        FUZZ_ASSERT(ev->kind >= EV_FIRE_ALARM && ev->kind < EV__COUNT, "event kind %d",
                    (int)ev->kind);
        FUZZ_ASSERT(ev->kind != EV_TEST_ALARM || ev->test, "a test alarm sent as real");
        FUZZ_ASSERT(memchr(ev->detail, '\0', sizeof(ev->detail)) &&
                        memchr(ev->user, '\0', sizeof(ev->user)),
                    "unterminated detail or user in a %s event", ev_kind_name(ev->kind));
        if (ev->kind != EV_FIRE_ALARM || ev->test || ev->detector < 0)
            continue;
        FUZZ_ASSERT((size_t)ev->detector < r->cfg->ndetectors, "detector %ld", ev->detector);
        const struct det_status *st = engine_detector(r->e, (size_t)ev->detector);
        FUZZ_ASSERT(!st->disabled && !st->test_mode,
                    "real fire alarm from detector %s, which is %s",
                    r->cfg->detectors[ev->detector].id, st->disabled ? "disabled" : "in test mode");
    }
}

/* A reading of every detector on the device of detector det, from the alarm flags. */
static void sample(struct run *r, size_t det, struct evlist *out)
{
    const struct cfg *cfg = r->cfg;
    size_t dev = cfg->detectors[det].device;
    struct reading readings[MAX_DETECTORS];
    size_t n = 0;
    for (size_t i = 0; i < cfg->ndetectors; i++) {
        if (cfg->detectors[i].device != dev)
            continue;
        struct reading *rd = &readings[n++];
        memset(rd, 0, sizeof(*rd));
        rd->detector = i;
        switch (cfg->detectors[i].type) {
        case DET_SMOKE:
            rd->has_value = rd->value_ok = true;
            rd->value = r->alarm[i] ? 3.0 : 0.1;
            break;
        case DET_HEAT:
            rd->has_value = rd->value_ok = true;
            rd->value = r->alarm[i] ? 80 : 25;
            break;
        case DET_PANEL_ZONE:
            rd->bits_present = ROLE_BIT(ROLE_ALARM) | ROLE_BIT(ROLE_FAULT);
            rd->bits = r->alarm[i] ? ROLE_BIT(ROLE_ALARM) : 0;
            break;
        }
    }
    struct device_sample s = {.device = dev, .t = r->now, .nreadings = n, .readings = readings};
    size_t from = out->count;
    engine_sample(r->e, &s, out);
    check_events(r, out, from);
}

static void action(struct run *r, const char *line, struct evlist *out)
{
    long long n = 0;
    const char *arg = line[1] && line[2] == ' ' ? line + 3 : "";
    switch (line[1]) {
    case 'a':
    case 'n':
        if (parse_int(arg, 0, (long long)r->cfg->ndetectors - 1, &n) == 0) {
            r->alarm[n] = line[1] == 'a';
            sample(r, (size_t)n, out);
        }
        break;
    case 't':
        if (parse_int(arg, 0, 7LL * 24 * 3600 * 1000, &n) == 0) {
            r->now.mono_ms += n;
            r->now.wall_ms += n;
            size_t from = out->count;
            engine_tick(r->e, r->now, out);
            check_events(r, out, from);
        }
        break;
    case 'r':
        if (parse_int(arg, 1, REPLY_MAX, &n) == 0)
            r->replylen = (size_t)n;
        break;
    case 'u':
        strlcpy_fg(r->user, arg, sizeof(r->user));
        break;
    default:
        break;
    }
}

static void command(struct run *r, const char *line, struct evlist *out)
{
    size_t from = out->count;
    memset(r->reply, 0x55, r->replylen);
    int rc = command_execute(r->e, r->cfg, line, r->user[0] ? r->user : NULL, r->now, out, r->reply,
                             r->replylen);
    FUZZ_ASSERT(rc == 0 || rc == -1, "command_execute returned %d", rc);
    FUZZ_ASSERT(memchr(r->reply, '\0', r->replylen) != NULL, "the reply to \"%s\" is unterminated",
                line);
    if (r->replylen >= 8)
        FUZZ_ASSERT(strncmp(r->reply, rc == 0 ? "ok" : "error: ", rc == 0 ? 2 : 7) == 0,
                    "\"%s\" returned %d with the reply \"%s\"", line, rc, r->reply);
    if (rc < 0)
        FUZZ_ASSERT(out->count == from, "\"%s\" was refused but raised %zu events", line,
                    out->count - from);
    check_events(r, out, from);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run r = {.cfg = fuzz_site(), .now = {1000, T0_WALL}, .replylen = 4096};
    FUZZ_ASSERT(r.cfg->ndetectors <= MAX_DETECTORS, "the test site grew past %d detectors",
                MAX_DETECTORS);
    r.e = engine_new(r.cfg, r.now);
    r.reply = xmalloc(REPLY_MAX);
    char *text = fuzz_text(data, size);
    struct evlist out = {0};
    char *line = text;
    for (int i = 0; i < MAX_LINES && line; i++) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '!')
            action(&r, line, &out);
        else
            command(&r, line, &out);
        evlist_clear(&out);
        line = next;
    }
    evlist_free(&out);
    free(text);
    free(r.reply);
    engine_free(r.e);
    return 0;
}
