/*
 * Probe results in words, shared by `firegw probe` / `firegw scan` and the web
 * UI: the reads a profile needs, what each point of a device reads (through
 * the same profile and codec the pollers decode with), which unit ids a scan
 * found and how they answered, and libmodbus errors named for installers.
 * Pure functions on the structs of bus.h; no I/O.
 */
#ifndef FIREGW_PROBE_H
#define FIREGW_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "profile.h"

/*
 * Make req a READ of every point of prof for the given channels (1-based;
 * points of the whole device once), merged as a poller merges them (max_gap).
 * The caller sets unit, timeout and retries. 0, or -1 with err.
 */
int probe_plan(const struct profile *prof, const int *channels, size_t nchannels, unsigned max_gap,
               struct bus_probe_req *req, char *err, size_t errlen);

/* One point of one channel as read. */
struct probe_value {
    const struct profile_point *pt;
    int channel; /* 1-based; 0 for a point of the whole device */
    enum reg_table table;
    uint16_t address;
    int width;    /* registers: 1 or 2 */
    int read_err; /* 0: read; else the errno of its read; -1: not read */
    uint16_t words[2];
    bool ok;      /* read, decoded and plausible */
    double value; /* when ok: engineering units, or 0/1 for a bit */
    char err[96]; /* read but not ok: why (e.g. outside the plausible range) */
};

/* How many values probe_decode writes for prof and nchannels channels. */
size_t probe_value_count(const struct profile *prof, size_t nchannels);
/*
 * Decode the reply of the READ that probe_plan made for the same prof and
 * channels into out (probe_value_count entries): the whole device's points
 * first, then each channel's in turn. Returns how many values were written.
 */
size_t probe_decode(const struct profile *prof, const int *channels, size_t nchannels,
                    const struct bus_probe_reply *rep, struct probe_value *out);

/* The Modbus name of exception code 1..11, e.g. "ILLEGAL DATA ADDRESS"; NULL if none. */
const char *probe_exception_name(int code);
/*
 * A libmodbus errno of a probe in words for an installer, e.g. "no answer
 * within 200 ms (timeout)" or "exception 2 ILLEGAL DATA ADDRESS (...)".
 */
void probe_error_text(int err, int64_t timeout_ms, char *buf, size_t len);

enum probe_presence {
    PROBE_ABSENT,  /* no answer, or a TCP gateway saying the unit did not answer */
    PROBE_PRESENT, /* registers or a Modbus exception: a device is there */
    PROBE_GARBLED, /* something answered, unreadably (CRC, wrong unit id, ...) */
};
/* What a scan's unit_err says about the unit. */
enum probe_presence probe_unit_presence(int err);
/*
 * How unit answered a scan, in words: "answered: holding register 0 = ...",
 * "answered with exception 2 ILLEGAL DATA ADDRESS: a device is there", ...
 */
void probe_scan_text(const struct bus_probe_reply *rep, int unit, int64_t timeout_ms, char *buf,
                     size_t len);

/* "0x000A (10)", "0x0003 bit 1", "0x0000 0x41AC", or "-" when not read. */
void probe_raw_text(const struct probe_value *v, char *buf, size_t len);
/* "0.1 %/m", "set", "clear", or why there is no value. */
void probe_value_text(const struct probe_value *v, int64_t timeout_ms, char *buf, size_t len);

/*
 * JSON of a device probe, as the web API serves it: {"device", "bus", "unit",
 * "profile", "ok", "error"?, "reads": [...], "registers": [{"name", "role",
 * "channel", "table", "address", "bit"?, "raw", "raw_hex", "value", "unit",
 * "text", "error"?}]}. Caller frees.
 */
char *probe_read_json(const char *device, const struct profile *prof,
                      const struct bus_probe_reply *rep, const struct probe_value *v, size_t n,
                      int64_t timeout_ms);
/*
 * JSON of a scan: {"bus", "from", "to", "read": {"table", "address"}, "ok",
 * "error"?, "units": [ids present], "answers": [{"unit", "answer", "detail",
 * "value"?}] (present and garbled units)}. Caller frees.
 */
char *probe_scan_json(const struct bus_probe_reply *rep, int64_t timeout_ms);

#endif
