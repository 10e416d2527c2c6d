/*
 * Event values and the lists they travel in, their names on the wire, and
 * the two things that make an event identifiable at the receiving centre: a
 * sequence number that never goes backwards, even across power loss, and a
 * random UUID. The sequence file holds the first number not yet handed out
 * by any run; it is advanced a block at a time, so after a crash numbering
 * skips ahead rather than repeating.
 */
#include "event.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SEQ_BLOCK 1000
#define SEQ_FILE_MAX 64
#define EVLIST_INITIAL_CAP 16
#define NPRIO 4

void evlist_push(struct evlist *l, const struct event *ev)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : EVLIST_INITIAL_CAP;
        l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->count++] = *ev;
}

void evlist_clear(struct evlist *l)
{
    l->count = 0;
}

void evlist_free(struct evlist *l)
{
    free(l->items);
    l->items = NULL;
    l->count = 0;
    l->cap = 0;
}

int ev_priority(enum ev_kind k)
{
    switch (k) {
    case EV_FIRE_ALARM:
    case EV_FIRE_CONFIRMED:
        return 0;
    case EV_PRE_ALARM:
    case EV_ALARM_PENDING:
        return 1;
    case EV_FAULT:
        return 2;
    default:
        return 3;
    }
}

/*
 * A counting sort by priority: stable by construction and linear, so a burst
 * of hundreds of faults (every detector silent after a bus loss) cannot delay
 * the fire alarm that sorts ahead of them.
 */
void evlist_sort_priority(struct evlist *l)
{
    size_t start[NPRIO + 1] = {0};
    bool sorted = true;
    for (size_t i = 0; i < l->count; i++) {
        int p = ev_priority(l->items[i].kind);
        start[p + 1]++;
        if (i > 0 && p < ev_priority(l->items[i - 1].kind))
            sorted = false;
    }
    if (sorted)
        return;
    for (int p = 1; p <= NPRIO; p++)
        start[p] += start[p - 1];
    struct event *tmp = xmalloc(l->count * sizeof(*tmp));
    for (size_t i = 0; i < l->count; i++)
        tmp[start[ev_priority(l->items[i].kind)]++] = l->items[i];
    memcpy(l->items, tmp, l->count * sizeof(*tmp));
    free(tmp);
}

const char *ev_kind_name(enum ev_kind k)
{
    static const char *names[EV__COUNT] = {
        [EV_FIRE_ALARM] = "fire_alarm",
        [EV_PRE_ALARM] = "pre_alarm",
        [EV_FAULT] = "fault",
        [EV_RESTORE] = "restore",
        [EV_FAULT_RESTORE] = "fault_restore",
        [EV_DISABLED] = "disabled",
        [EV_ENABLED] = "enabled",
        [EV_GATEWAY_START] = "gateway_start",
        [EV_FIRE_CONFIRMED] = "fire_confirmed",
        [EV_ALARM_PENDING] = "alarm_pending",
        [EV_ACKNOWLEDGED] = "acknowledged",
        [EV_SILENCED] = "silenced",
        [EV_RESET] = "reset",
        [EV_TEST_ALARM] = "test_alarm",
        [EV_TEST_MODE_ON] = "test_mode_on",
        [EV_TEST_MODE_OFF] = "test_mode_off",
    };
    return (unsigned)k < EV__COUNT ? names[k] : "unknown";
}

const char *ev_source_name(enum ev_source s)
{
    switch (s) {
    case SRC_DETECTOR:
        return "detector";
    case SRC_DEVICE:
        return "device";
    case SRC_BUS:
        return "bus";
    case SRC_GATEWAY:
        return "gateway";
    case SRC_ZONE:
        return "zone";
    case SRC_BUILDING:
        return "building";
    }
    return "unknown";
}

const char *fault_code_name(enum fault_code f)
{
    static const char *names[FAULT__COUNT] = {
        [FAULT_NONE] = "none",
        [FAULT_NO_RESPONSE] = "no_response",
        [FAULT_DETECTOR_BIT] = "detector_bit",
        [FAULT_MAINTENANCE] = "maintenance",
        [FAULT_IMPLAUSIBLE] = "implausible_value",
        [FAULT_LIFECHECK] = "lifecheck_stopped",
        [FAULT_DEVICE_DOWN] = "device_down",
        [FAULT_BUS_DOWN] = "bus_down",
        [FAULT_STUCK] = "value_stuck",
        [FAULT_TRANSMISSION] = "transmission",
        [FAULT_STORAGE] = "storage",
    };
    return (unsigned)f < FAULT__COUNT ? names[f] : "unknown";
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Make the rename itself durable: without this a power cut can undo it. */
static int fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Durably replace the file's content with value: temp file, fsync, rename, fsync dir. */
static int write_seq_file(const char *path, uint64_t value)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)value);
    char *tmp = xasprintf("%s.new", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    int rc = write_all(fd, buf, (size_t)len);
    if (rc == 0)
        rc = fsync(fd);
    int saved = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -1;
        saved = errno;
    }
    if (rc < 0) {
        unlink(tmp);
        free(tmp);
        errno = saved;
        return -1;
    }
    free(tmp);
    return fsync_parent_dir(path);
}

/*
 * Read the stored next number. 1 and *exists=false if there is no file; -1
 * with err when it cannot be read or does not hold a plain number.
 */
static int read_seq_file(const char *path, uint64_t *out, bool *exists, char *err, size_t errlen)
{
    static const char *advice =
        "the gateway will not restart event numbering on its own, because the receiving "
        "centre would see old numbers again; write a number larger than the last event "
        "number it received (see the event log) on a line of its own into this file, "
        "then start the gateway again";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *exists = false;
            *out = 1;
            return 0;
        }
        snprintf(err, errlen, "cannot open event sequence file %s: %s; %s", path, strerror(errno),
                 advice);
        return -1;
    }
    char buf[SEQ_FILE_MAX + 1];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read event sequence file %s: %s; %s", path,
                     strerror(errno), advice);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *exists = true;

    if (len == sizeof(buf) - 1) {
        snprintf(err, errlen, "event sequence file %s is corrupt (longer than %d bytes)", path,
                 SEQ_FILE_MAX);
        return -2;
    }
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    bool digits = len > 0 && len <= 20;
    for (size_t i = 0; i < len && digits; i++)
        digits = buf[i] >= '0' && buf[i] <= '9';
    errno = 0;
    unsigned long long v = digits ? strtoull(buf, NULL, 10) : 0;
    if (!digits || errno || v == 0 || v > UINT64_MAX - 2 * (uint64_t)SEQ_BLOCK) {
        snprintf(err, errlen,
                 "event sequence file %s is corrupt (%s, expected one number from 1 to %llu)", path,
                 len == 0 ? "it is empty" : "it does not hold a valid number",
                 (unsigned long long)(UINT64_MAX - 2 * (uint64_t)SEQ_BLOCK));
        return -2;
    }
    *out = v;
    return 0;
}

/*
 * A number no earlier run can have reached: microseconds of wall time. Used
 * only when the file is lost, so that alarms keep flowing with numbers that
 * cannot repeat (a receiver sees a jump, never a reuse). Stays below 2^53,
 * which JSON consumers hold exactly, until the 23rd century.
 */
static uint64_t recovery_floor(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int event_seq_open(struct event_seq *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    uint64_t next;
    bool exists;
    int rc = read_seq_file(path, &next, &exists, err, errlen);
    if (rc == -1)
        return -1;
    if (rc == -2) {
        /* Keep the bad file for whoever investigates; never block alarms on it. */
        char *aside = xasprintf("%s.corrupt", path);
        bool kept = rename(path, aside) == 0;
        next = recovery_floor();
        size_t len = strlen(err);
        snprintf(err + len, errlen > len ? errlen - len : 0,
                 "; %s; numbering restarts at %llu so that no number can repeat",
                 kept ? "kept it as " : "could not keep a copy", (unsigned long long)next);
        if (kept) {
            len = strlen(err);
            snprintf(err + len, errlen > len ? errlen - len : 0, " (copy: %s)", aside);
        }
        free(aside);
        exists = false;
    }
    /* reserve before handing anything out, so a crash right after open cannot reuse numbers */
    if (write_seq_file(path, next + SEQ_BLOCK) < 0) {
        snprintf(err, errlen,
                 "cannot %s event sequence file %s: %s; check that the state directory exists, "
                 "is writable by the gateway and the disk is not full",
                 exists ? "update" : "create", path, strerror(errno));
        return -1;
    }
    s->path = xstrdup(path);
    s->next = next;
    s->reserved_until = next + SEQ_BLOCK;
    return rc == -2 ? 1 : 0;
}

uint64_t event_seq_next(struct event_seq *s)
{
    if (!s || !s->path) {
        errno = EINVAL;
        return 0;
    }
    if (s->next == UINT64_MAX) {
        errno = EOVERFLOW;
        return 0;
    }
    s->unsaved = false;
    if (s->next >= s->reserved_until) {
        /*
         * The block on disk is used up and a new one cannot be saved (disk
         * full, read-only): number on anyway. An alarm without a number is
         * worse than a number that might repeat after a crash on a broken disk.
         */
        if (s->next <= UINT64_MAX - SEQ_BLOCK && write_seq_file(s->path, s->next + SEQ_BLOCK) == 0)
            s->reserved_until = s->next + SEQ_BLOCK;
        else
            s->unsaved = true;
    }
    return s->next++;
}

int event_seq_reserve_ahead(struct event_seq *s)
{
    if (!s || !s->path || s->next > UINT64_MAX - 2 * (uint64_t)SEQ_BLOCK)
        return 0;
    if (s->reserved_until - s->next >= SEQ_BLOCK / 5)
        return 0;
    if (write_seq_file(s->path, s->next + SEQ_BLOCK) < 0)
        return -1;
    s->reserved_until = s->next + SEQ_BLOCK;
    return 0;
}

void event_seq_close(struct event_seq *s)
{
    if (!s || !s->path)
        return;
    /* give back the unused part of the block so a clean restart continues without a gap */
    if (s->next < s->reserved_until && write_seq_file(s->path, s->next) < 0)
        log_warn("cannot write event sequence file %s: %s; the next start skips to %llu", s->path,
                 strerror(errno), (unsigned long long)s->reserved_until);
    free(s->path);
    memset(s, 0, sizeof(*s));
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * Ids need uniqueness, not secrecy, and an alarm must never wait for the
 * kernel's entropy pool early at boot: never block, and if the kernel has no
 * random bytes to give, derive them from the (unique) sequence number and
 * the clocks.
 */
static void random_bytes(unsigned char *buf, size_t len, uint64_t seq)
{
    static const unsigned flags[] = {GRND_NONBLOCK, GRND_INSECURE};
    for (size_t f = 0; f < ARRAY_LEN(flags); f++) {
        ssize_t n;
        do
            n = getrandom(buf, len, flags[f]);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)len)
            return;
    }
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    uint64_t x = seq ^ ((uint64_t)getpid() << 40) ^ (uint64_t)real.tv_sec * 1000000007ULL ^
                 (uint64_t)real.tv_nsec ^ ((uint64_t)mono.tv_nsec << 20);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = splitmix64(&x);
        for (size_t j = 0; j < 8 && i + j < len; j++)
            buf[i + j] = (unsigned char)(r >> (8 * j));
    }
}

int event_stamp(struct event *ev, struct event_seq *s)
{
    ev->seq = event_seq_next(s);
    int saved = errno;
    unsigned char u[16];
    random_bytes(u, sizeof(u), ev->seq);
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = ev->id;
    for (size_t i = 0; i < sizeof(u); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        p += sprintf(p, "%02x", u[i]);
    }
    errno = saved;
    return ev->seq && !s->unsaved ? 0 : -1;
}
