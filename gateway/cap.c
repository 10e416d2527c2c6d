/*
 * CAP 1.2 documents of fire alarms (cap.h, docs/cap.md). Element names, their
 * order and the enumerated values follow the data dictionary of OASIS CAP 1.2;
 * the tests validate every document against tests/fixtures/cap/cap-1.2.xsd.
 *
 * Names, addresses and locations come from the site file and are free text:
 * they are escaped for XML, bytes that are not UTF-8 become U+FFFD, and so do
 * the few characters XML 1.0 cannot carry even escaped (most control
 * characters, U+FFFE, U+FFFF), so a document is always well formed.
 */
#include "cap.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define CAP_NS "urn:oasis:names:tc:emergency:cap:1.2"
/* Vietnam has kept UTC+07:00, without daylight saving time, since 1975. */
#define VN_OFFSET_S (7 * 3600)
#define REPLACEMENT "\xEF\xBF\xBD"

/* A growing text; allocation cannot fail (xrealloc aborts). */
struct xb {
    char *s;
    size_t len;
    size_t cap;
};

static void put_n(struct xb *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 2048;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void put(struct xb *b, const char *s)
{
    put_n(b, s, strlen(s));
}

static void put_fmt(struct xb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(struct xb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "firegw: out of memory\n");
        abort();
    }
    put_n(b, s, (size_t)n);
    free(s);
}

/* Whether the 3-byte sequence at p is U+FFFE or U+FFFF, which XML 1.0 does not allow. */
static bool non_character(const unsigned char *p)
{
    return p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF);
}

/* s as XML character data, valid in element content and in attribute values alike. */
static void put_text(struct xb *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0) {
            put(b, REPLACEMENT);
            i++;
            continue;
        }
        if (n > 1) {
            if (n == 3 && non_character(p + i))
                put(b, REPLACEMENT);
            else
                put_n(b, s + i, n);
            i += n;
            continue;
        }
        switch (p[i]) {
        case '&':
            put(b, "&amp;");
            break;
        case '<':
            put(b, "&lt;");
            break;
        case '>':
            put(b, "&gt;");
            break;
        case '"':
            put(b, "&quot;");
            break;
        case '\'':
            put(b, "&apos;");
            break;
        case '\r': /* a parser would turn a raw CR into LF */
            put(b, "&#13;");
            break;
        case '\t':
        case '\n':
            put_n(b, s + i, 1);
            break;
        default:
            if (p[i] < 0x20)
                put(b, REPLACEMENT);
            else
                put_n(b, s + i, 1);
        }
        i++;
    }
}

static void indent(struct xb *b, int depth)
{
    for (int i = 0; i < depth; i++)
        put(b, "  ");
}

/* <name>text</name> on its own line. */
static void put_elem(struct xb *b, int depth, const char *name, const char *text)
{
    indent(b, depth);
    put_fmt(b, "<%s>", name);
    put_text(b, text);
    put_fmt(b, "</%s>\n", name);
}

static void put_open(struct xb *b, int depth, const char *name)
{
    indent(b, depth);
    put_fmt(b, "<%s>\n", name);
}

static void put_close(struct xb *b, int depth, const char *name)
{
    indent(b, depth);
    put_fmt(b, "</%s>\n", name);
}

/* A CAP <parameter>: a name and its value. */
static void put_param(struct xb *b, const char *name, const char *value)
{
    put_open(b, 2, "parameter");
    put_elem(b, 3, "valueName", name);
    put_elem(b, 3, "value", value);
    put_close(b, 2, "parameter");
}

void cap_format_time(int64_t wall_ms, char *buf, size_t len)
{
    int64_t secs = wall_ms / 1000 - (wall_ms % 1000 < 0);
    secs += VN_OFFSET_S;
    /* CAP's form has a four-digit year; a clock outside 1970..9999 (or time_t) is broken. */
    int64_t hi = sizeof(time_t) < 8 ? INT32_MAX : 253402300799;
    if (secs < 0)
        secs = 0;
    if (secs > hi)
        secs = hi;
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = 70;
        tm.tm_mday = 1;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d+07:00", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

bool cap_wanted(const struct event *ev)
{
    return ev && (ev->kind == EV_FIRE_ALARM || ev->kind == EV_FIRE_CONFIRMED ||
                  ev->kind == EV_TEST_ALARM);
}

/* A WGS84 degree with at most 6 decimals (about 0.1 m) and no trailing zeros. */
static void format_degrees(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%.6f", v);
    char *end = buf + strlen(buf);
    while (end > buf && end[-1] == '0')
        *--end = '\0';
    if (end > buf && end[-1] == '.')
        *--end = '\0';
}

/* Vietnamese first, then the English words the district's application looks for. */
static const char *detector_words(enum detector_type t)
{
    switch (t) {
    case DET_SMOKE:
        return "Đầu báo khói (smoke detector)";
    case DET_HEAT:
        return "Đầu báo nhiệt (heat detector)";
    case DET_PANEL_ZONE:
        return "Kênh tủ báo cháy (panel zone)";
    }
    return "Đầu báo (detector)";
}

static const char *unit_words(enum detector_type t)
{
    return t == DET_HEAT ? "°C" : t == DET_SMOKE ? "%/m" : "";
}

static const char *event_words(const struct event *ev)
{
    if (ev->kind == EV_FIRE_CONFIRMED)
        return ev->test ? "Thử nghiệm xác nhận cháy (test fire confirmed)"
                        : "Cháy đã xác nhận (fire confirmed)";
    if (ev->kind == EV_FIRE_ALARM && !ev->test)
        return "Báo cháy (fire alarm)";
    return "Báo cháy thử nghiệm (test alarm)";
}

static const char *headline_words(const struct event *ev)
{
    if (ev->test || ev->kind == EV_TEST_ALARM)
        return "THỬ NGHIỆM, KHÔNG PHẢI CHÁY THẬT (TEST, NOT A REAL FIRE)";
    return ev->kind == EV_FIRE_CONFIRMED ? "CHÁY ĐÃ XÁC NHẬN (FIRE CONFIRMED)"
                                         : "BÁO CHÁY (FIRE ALARM)";
}

/* What one alarm is about, resolved from the event's indexes (checked). */
struct subject {
    const struct cfg_detector *det; /* NULL when none */
    const struct cfg_zone *zone;    /* NULL when none */
};

static struct subject find_subject(const struct cfg *cfg, const struct event *ev)
{
    struct subject s = {NULL, NULL};
    if (ev->detector >= 0 && (unsigned long)ev->detector < cfg->ndetectors)
        s.det = &cfg->detectors[ev->detector];
    else if (ev->detector != -1)
        log_err("cap: event #%" PRIu64 " names detector index %ld of %zu; left out", ev->seq,
                ev->detector, cfg->ndetectors);
    size_t z = ev->has_zone ? ev->zone : s.det ? s.det->zone : cfg->nzones;
    if (z < cfg->nzones)
        s.zone = &cfg->zones[z];
    else if (ev->has_zone || s.det)
        log_err("cap: event #%" PRIu64 " names zone index %zu of %zu; left out", ev->seq, z,
                cfg->nzones);
    return s;
}

static const char *nonnull(const char *s)
{
    return s ? s : "";
}

/* The building's name for people, or its id when the name is empty. */
static const char *site_name(const struct cfg *cfg)
{
    return cfg->site.name && *cfg->site.name ? cfg->site.name : nonnull(cfg->site.id);
}

/* The short line for phones and small displays: what, which building, where in it. */
static char *headline(const struct cfg *cfg, const struct event *ev, const struct subject *s)
{
    struct xb b = {0};
    put_fmt(&b, "%s – %s", headline_words(ev), site_name(cfg));
    int floor = s->det ? s->det->floor : s->zone ? s->zone->floor : 0;
    if (s->det || s->zone)
        put_fmt(&b, ", tầng (floor) %d", floor);
    if (s->zone)
        put_fmt(&b, ", vùng (zone) %s", s->zone->id);
    return b.s;
}

/* Everything a person needs to act on, a few short lines. */
static char *description(const struct cfg *cfg, const struct event *ev, const struct subject *s)
{
    struct xb b = {0};
    if (ev->test || ev->kind == EV_TEST_ALARM)
        put(&b, "THỬ NGHIỆM – KHÔNG PHẢI CHÁY THẬT (TEST – NOT A REAL FIRE).\n");
    if (ev->kind == EV_FIRE_CONFIRMED && s->zone)
        put_fmt(&b, "Vùng (zone) %s “%s”: cháy đã xác nhận bởi hai tín hiệu (fire confirmed).\n",
                s->zone->id, nonnull(s->zone->name));
    if (s->det) {
        put_fmt(&b, "%s %s, tầng (floor) %d", detector_words(s->det->type), s->det->id,
                s->det->floor);
        if (s->zone)
            put_fmt(&b, ", vùng (zone) %s “%s”", s->zone->id, nonnull(s->zone->name));
        if (s->det->location && *s->det->location)
            put_fmt(&b, ", vị trí (location): %s", s->det->location);
        put(&b, ".\n");
        const char *unit = unit_words(s->det->type);
        bool value = ev->has_value && isfinite(ev->value) && *unit;
        bool level = ev->has_level && isfinite(ev->level) && *unit;
        if (value)
            put_fmt(&b, "Giá trị (value) %.2f %s", ev->value, unit);
        if (level)
            put_fmt(&b, "%s (level) %.2f %s", value ? ", ngưỡng" : "Ngưỡng", ev->level, unit);
        if (value || level)
            put(&b, ".\n");
    }
    if (ev->rule && *ev->rule)
        put_fmt(&b, "Quy tắc (rule): %s.\n", ev->rule);
    size_t dlen = strnlen(ev->detail, sizeof(ev->detail));
    if (dlen > 0)
        put_fmt(&b, "Chi tiết (detail): %.*s\n", (int)dlen, ev->detail);
    put_fmt(&b, "Tòa nhà (building): %s", site_name(cfg));
    if (cfg->site.address && *cfg->site.address)
        put_fmt(&b, ", %s", cfg->site.address);
    put(&b, ".");
    return b.s;
}

static void put_area(struct xb *b, const struct cfg *cfg)
{
    const struct cfg_site *site = &cfg->site;
    const char *where = site->address && *site->address ? site->address : site_name(cfg);
    put_open(b, 2, "area");
    put_elem(b, 3, "areaDesc", where);
    /* 0,0 is the default of an unset [site] latitude and longitude, not a place in Vietnam. */
    if (isfinite(site->latitude) && isfinite(site->longitude) &&
        (site->latitude != 0 || site->longitude != 0)) {
        char lat[32], lon[32];
        format_degrees(site->latitude, lat, sizeof(lat));
        format_degrees(site->longitude, lon, sizeof(lon));
        indent(b, 3);
        put_fmt(b, "<circle>%s,%s 0</circle>\n", lat, lon);
    }
    put_close(b, 2, "area");
}

char *cap_alert(const struct cfg *cfg, const struct event *ev)
{
    if (!cfg || !cap_wanted(ev))
        return NULL;
    struct subject s = find_subject(cfg, ev);
    /* A test is never Actual, whatever its kind. */
    bool test = ev->test || ev->kind == EV_TEST_ALARM;
    char sent[CAP_TIME_LEN];
    cap_format_time(ev->t.wall_ms, sent, sizeof(sent));
    char id[sizeof(ev->id) + 1];
    size_t idlen = strnlen(ev->id, sizeof(ev->id));
    memcpy(id, ev->id, idlen);
    id[idlen] = '\0';
    char seq[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, ev->seq);

    struct xb b = {0};
    put(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"" CAP_NS "\">\n");
    if (idlen > 0) {
        put_elem(&b, 1, "identifier", id);
    } else {
        /* Never sent unstamped; if it were, the site and number still name it once. */
        indent(&b, 1);
        put(&b, "<identifier>");
        put_text(&b, nonnull(cfg->site.id));
        put_fmt(&b, "-%s</identifier>\n", seq);
    }
    indent(&b, 1);
    put(&b, "<sender>firegw@");
    put_text(&b, nonnull(cfg->site.id));
    put(&b, "</sender>\n");
    put_elem(&b, 1, "sent", sent);
    put_elem(&b, 1, "status", test ? "Test" : "Actual");
    put_elem(&b, 1, "msgType", "Alert");
    put_elem(&b, 1, "scope", "Restricted");
    put_elem(&b, 1, "restriction",
             "Chỉ dành cho cảnh sát PCCC và ban quản lý tòa nhà "
             "(fire police and building management only)");
    if (test)
        put_elem(&b, 1, "note",
                 "Thử nghiệm tại tòa nhà, không phải cháy thật (test at the building, not a "
                 "real fire)");

    put_open(&b, 1, "info");
    put_elem(&b, 2, "language", "vi-VN");
    put_elem(&b, 2, "category", "Fire");
    put_elem(&b, 2, "event", event_words(ev));
    put_elem(&b, 2, "urgency", "Immediate");
    /* Two detectors (or smoke and heat) agreeing is the strongest evidence a panel has. */
    put_elem(&b, 2, "severity", ev->kind == EV_FIRE_CONFIRMED ? "Extreme" : "Severe");
    put_elem(&b, 2, "certainty", "Observed");
    put_elem(&b, 2, "senderName", site_name(cfg));
    char *text = headline(cfg, ev, &s);
    put_elem(&b, 2, "headline", text);
    free(text);
    text = description(cfg, ev, &s);
    put_elem(&b, 2, "description", text);
    free(text);
    put_param(&b, "seq", seq);
    if (s.det)
        put_param(&b, "detector", s.det->id);
    if (s.zone)
        put_param(&b, "zone", s.zone->id);
    if (ev->rule && *ev->rule)
        put_param(&b, "rule", ev->rule);
    put_area(&b, cfg);
    put_close(&b, 1, "info");
    put(&b, "</alert>\n");
    return b.s;
}
