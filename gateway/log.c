/*
 * The process-wide logger: one mutex-protected stderr writer. Lines carry a
 * syslog priority prefix so journald keeps the level; nothing else is global.
 */

#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level max_level = LOG_LVL_INFO;
static const char *log_ident = "firegw";

void log_set_level(enum log_level lvl)
{
    max_level = lvl;
}

void log_set_ident(const char *ident)
{
    log_ident = ident;
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level lvl;
    } names[] = {{"error", LOG_LVL_ERR},
                 {"warning", LOG_LVL_WARN},
                 {"notice", LOG_LVL_NOTICE},
                 {"info", LOG_LVL_INFO},
                 {"debug", LOG_LVL_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].lvl;
            return 0;
        }
    }
    return -1;
}

static void vlog(enum log_level lvl, const char *suffix, const char *fmt, va_list ap)
{
    char line[1024];
    if (lvl > max_level)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "<%d>%s: %s%s\n", (int)lvl, log_ident, line, suffix ? suffix : "");
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, NULL, fmt, ap);
    va_end(ap);
}

void log_limited(struct log_limit *rl, int64_t now_ms, enum log_level lvl, const char *fmt, ...)
{
    int64_t interval = rl->interval_ms > 0 ? rl->interval_ms : 60000;
    if (rl->used && now_ms - rl->last_ms < interval) {
        rl->suppressed++;
        return;
    }
    char suffix[64] = "";
    if (rl->suppressed)
        snprintf(suffix, sizeof(suffix), " (%u similar messages suppressed)", rl->suppressed);
    rl->used = 1;
    rl->last_ms = now_ms;
    rl->suppressed = 0;
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, suffix, fmt, ap);
    va_end(ap);
}

void log_limit_reset(struct log_limit *rl)
{
    rl->used = 0;
    rl->suppressed = 0;
}
