/*
 * Small helpers shared by the daemon, the simulator and the tools:
 * allocation that cannot return NULL, checked number parsing, clocks.
 */
#ifndef FIREGW_UTIL_H
#define FIREGW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocate or abort the process with a message; never returns NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Like asprintf, but aborts on allocation failure. Caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy src into dst of size n, always NUL-terminated; returns strlen(src). */
size_t strlcpy_fg(char *dst, const char *src, size_t n);

/* Parse a whole string as a base-10 integer within [min, max]. 0 or -1. */
int parse_int(const char *s, long long min, long long max, long long *out);
/* Parse a whole string as a finite double within [min, max]. 0 or -1. */
int parse_double(const char *s, double min, double max, double *out);
/*
 * Parse a duration with a mandatory unit: "250ms", "30s", "5min", "2h".
 * Result in milliseconds, within [min_ms, max_ms]. 0 or -1.
 */
int parse_duration_ms(const char *s, int64_t min_ms, int64_t max_ms, int64_t *out);
/* Parse yes/no/true/false/on/off/1/0. 0 or -1. */
int parse_bool(const char *s, bool *out);

/* Length (1..4) of the valid UTF-8 sequence at s, of at most avail bytes; 0 if invalid. */
size_t utf8_seq_len(const unsigned char *s, size_t avail);
/*
 * A copy of s in which every byte that starts no valid UTF-8 sequence is
 * replaced by U+FFFD, or NULL when s is valid as it is (the common case).
 */
char *utf8_repaired(const char *s);

/* A growing string; a zeroed one is empty. p stays NUL-terminated once anything was added. */
struct sbuf {
    char *p;
    size_t len, cap;
};
void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_str(struct sbuf *b, const char *s);
void sb_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string built so far ("" when nothing was added), handed to the caller; b is empty again. */
char *sb_take(struct sbuf *b);
/* JSON values: s quoted and escaped (null for NULL); v as a number (null unless finite). */
void sb_json_str(struct sbuf *b, const char *s);
void sb_json_num(struct sbuf *b, double v);

/* FNV-1a, 64 bits, over len bytes, continuing from h (start with FNV1A_INIT). For change
 * detection and hash tables, not for security. */
#define FNV1A_INIT 0xcbf29ce484222325ULL
uint64_t fnv1a(uint64_t h, const void *data, size_t len);

/* The MQTT 3.1.1 CONNACK refusal code 1..5 in words, or NULL for any other code. */
const char *mqtt_connack_text(int code);

/* Monotonic clock in milliseconds (for timers). */
int64_t mono_ms(void);
/*
 * Send all len bytes on socket fd by the monotonic deadline (ms), blocking or
 * not, without SIGPIPE. 0, or an errno value (ETIMEDOUT when time ran out, EPIPE
 * when the peer went away).
 */
int send_all_by(int fd, const void *buf, size_t len, int64_t deadline);
/* Wall clock in milliseconds since the Unix epoch (for timestamps). */
int64_t wall_ms(void);
/* Format a wall time as "2026-11-23T05:04:03.123Z" into buf (>= 25 bytes). */
void format_utc_ms(int64_t wall_ms, char *buf, size_t len);

#endif
