/*
 * Operator commands in text form, as typed after `firegw ctl` (and later as
 * carried by remote command messages): parse one line, check it against the
 * site, and apply it to the engine. No I/O; the caller sends the events.
 *
 *   acknowledge|silence|reset  all | zone ID | detector ID
 *   disable                    zone ID | detector ID  DURATION
 *   enable                     zone ID | detector ID
 *   test on                    zone ID | detector ID  DURATION
 *   test off                   zone ID | detector ID
 *   status                     building and zone summary (JSON)
 */
#ifndef FIREGW_COMMAND_H
#define FIREGW_COMMAND_H

#include <stddef.h>

#include "cfg.h"
#include "engine.h"
#include "event.h"

/* Longest disablement or test period a command may ask for. */
#define COMMAND_MAX_PERIOD_MS (7LL * 24 * 3600 * 1000)

/*
 * Execute line for user at now. Writes "ok ..." or "error: ..." into reply
 * and returns 0 or -1 accordingly; events go to out.
 */
int command_execute(struct engine *e, const struct cfg *cfg, const char *line, const char *user,
                    struct ev_time now, struct evlist *out, char *reply, size_t replylen);

#endif
