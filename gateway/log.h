/*
 * Logging to stderr with syslog priority prefixes ("<3>..."), which journald
 * turns into priorities. Thread-safe. Repeats of the same complaint (a device
 * that stays down) go through a struct log_limit so they cannot flood the log.
 */
#ifndef FIREGW_LOG_H
#define FIREGW_LOG_H

#include <stdint.h>

enum log_level {
    LOG_LVL_ERR = 3,
    LOG_LVL_WARN = 4,
    LOG_LVL_NOTICE = 5,
    LOG_LVL_INFO = 6,
    LOG_LVL_DEBUG = 7
};

/* Messages above this level are dropped. Default LOG_LVL_INFO. */
void log_set_level(enum log_level lvl);
/* Parse "error", "warning", "notice", "info", "debug". 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
/* Prefix every line with the program name (default "firegw"). Not copied. */
void log_set_ident(const char *ident);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Rate limit for one repeating complaint: at most one line per interval; the
 * next line that gets through says how many were suppressed. Zero-initialise,
 * or set interval_ms (default 60 s). Owned by the caller, one per subject.
 */
struct log_limit {
    int64_t interval_ms;
    int64_t last_ms;
    unsigned suppressed;
    int used;
};

/* Log through a rate limit; now_ms is a monotonic time. */
void log_limited(struct log_limit *rl, int64_t now_ms, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Forget the limit's history (the complaint stopped), so the next one shows at once. */
void log_limit_reset(struct log_limit *rl);

#endif
