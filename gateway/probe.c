/*
 * Probe results in words. It owns the installer's reading of a probe: which
 * reads a profile needs (merged exactly as a poller merges them), what every
 * point of every channel decodes to through codec.c, whether a unit that a
 * scan asked is there, and the names of Modbus exceptions and libmodbus
 * errors. The command line prints these words; the web API sends the JSON.
 */
#include "probe.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "util.h"

int probe_plan(const struct profile *prof, const int *channels, size_t nchannels, unsigned max_gap,
               struct bus_probe_req *req, char *err, size_t errlen)
{
    if (nchannels == 0) {
        snprintf(err, errlen, "profile %s: no channel to probe", prof->name);
        return -1;
    }
    for (size_t c = 0; c < nchannels; c++) {
        if (channels[c] < 1 || channels[c] > prof->channels) {
            snprintf(err, errlen, "profile %s has channels 1..%d, not %d", prof->name,
                     prof->channels, channels[c]);
            return -1;
        }
    }
    struct plan_span *spans = xcalloc(probe_value_count(prof, nchannels) + 1, sizeof(*spans));
    size_t n = 0;
    for (size_t j = 0; j < prof->npoints; j++) {
        const struct profile_point *pt = &prof->points[j];
        for (size_t c = 0; c < (pt->per_channel ? nchannels : 1); c++) {
            int width = reg_type_width(pt->type);
            long addr = pt->address;
            if (pt->per_channel)
                addr += (long)(channels[c] - 1) * prof->channel_stride;
            if (addr + width > 65536) {
                snprintf(err, errlen, "profile %s: point %s of channel %d lies past register 65535",
                         prof->name, pt->name, channels[c]);
                free(spans);
                return -1;
            }
            spans[n++] = (struct plan_span){pt->table, (uint16_t)addr, (uint16_t)width};
        }
    }
    if (n == 0) {
        snprintf(err, errlen, "profile %s has no points to read", prof->name);
        free(spans);
        return -1;
    }
    struct plan plan;
    int rc = plan_build(spans, n, max_gap, &plan);
    free(spans);
    if (rc < 0) {
        snprintf(err, errlen, "profile %s: cannot plan its reads: %s", prof->name, strerror(errno));
        return -1;
    }
    if (plan.count > BUS_PROBE_MAX_BLOCKS) {
        snprintf(err, errlen,
                 "profile %s needs %zu read requests for these channels; a probe makes at most "
                 "%d (probe fewer channels)",
                 prof->name, plan.count, BUS_PROBE_MAX_BLOCKS);
        plan_free(&plan);
        return -1;
    }
    req->kind = BUS_PROBE_READ;
    req->nblocks = plan.count;
    for (size_t i = 0; i < plan.count; i++)
        req->blocks[i] = (struct bus_block){plan.requests[i].table, plan.requests[i].address,
                                            plan.requests[i].count};
    plan_free(&plan);
    return 0;
}

size_t probe_value_count(const struct profile *prof, size_t nchannels)
{
    size_t n = 0;
    for (size_t j = 0; j < prof->npoints; j++)
        n += prof->points[j].per_channel ? nchannels : 1;
    return n;
}

/* The block of rep holding [address, address + width) of table, or -1. */
static int locate(const struct bus_probe_reply *rep, enum reg_table table, uint16_t address,
                  int width)
{
    for (size_t i = 0; i < rep->nblocks && i < BUS_PROBE_MAX_BLOCKS; i++) {
        const struct bus_block *b = &rep->blocks[i];
        if (b->table == table && address >= b->address &&
            (long)address + width <= (long)b->address + b->count)
            return (int)i;
    }
    return -1;
}

static void decode_one(const struct bus_probe_reply *rep, struct probe_value *v)
{
    int i = locate(rep, v->table, v->address, v->width);
    v->read_err = i < 0 ? -1 : rep->block_err[i];
    if (v->read_err != 0)
        return;
    const uint16_t *w = rep->regs[i] + (v->address - rep->blocks[i].address);
    v->words[0] = w[0];
    v->words[1] = v->width > 1 ? w[1] : 0;
    v->ok = codec_decode(v->pt, v->words, &v->value, v->err, sizeof(v->err)) == 0;
}

size_t probe_decode(const struct profile *prof, const int *channels, size_t nchannels,
                    const struct bus_probe_reply *rep, struct probe_value *out)
{
    size_t n = 0;
    /* Device-wide points first: they are read once, whatever the channels. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t c = 0; c < (pass ? nchannels : 1); c++) {
            for (size_t j = 0; j < prof->npoints; j++) {
                const struct profile_point *pt = &prof->points[j];
                if (pt->per_channel != (pass == 1))
                    continue;
                struct probe_value *v = &out[n++];
                memset(v, 0, sizeof(*v));
                v->pt = pt;
                v->channel = pass ? channels[c] : 0;
                v->table = pt->table;
                v->address = pass ? profile_point_address(prof, pt, channels[c]) : pt->address;
                v->width = reg_type_width(pt->type);
                decode_one(rep, v);
            }
        }
    }
    return n;
}

const char *probe_exception_name(int code)
{
    static const char *const names[] = {
        NULL,
        "ILLEGAL FUNCTION",
        "ILLEGAL DATA ADDRESS",
        "ILLEGAL DATA VALUE",
        "SERVER DEVICE FAILURE",
        "ACKNOWLEDGE",
        "SERVER DEVICE BUSY",
        "NEGATIVE ACKNOWLEDGE",
        "MEMORY PARITY ERROR",
        NULL,
        "GATEWAY PATH UNAVAILABLE",
        "GATEWAY TARGET DEVICE FAILED TO RESPOND",
    };
    if (code <= 0 || code >= (int)ARRAY_LEN(names))
        return NULL;
    return names[code];
}

/* What an installer should make of an exception. */
static const char *exception_hint(int code)
{
    switch (code) {
    case MODBUS_EXCEPTION_ILLEGAL_FUNCTION:
        return "the device does not support this read function: check the profile's table";
    case MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS:
        return "the device has no such register: check the profile against the device";
    case MODBUS_EXCEPTION_GATEWAY_PATH:
    case MODBUS_EXCEPTION_GATEWAY_TARGET:
        return "the Modbus TCP gateway got no answer from this unit id on its serial side";
    default:
        return "the device is there, but refused the read";
    }
}

void probe_error_text(int err, int64_t timeout_ms, char *buf, size_t len)
{
    if (err == 0) {
        snprintf(buf, len, "answered");
    } else if (err < 0) {
        snprintf(buf, len, "not read");
    } else if (err == ETIMEDOUT) {
        snprintf(buf, len, "no answer within %lld ms (timeout)", (long long)timeout_ms);
    } else if (err >= EMBXILFUN && err <= EMBXGTAR) {
        int code = err - MODBUS_ENOBASE;
        const char *name = probe_exception_name(code);
        snprintf(buf, len, "exception %d %s (%s)", code, name ? name : "UNKNOWN",
                 exception_hint(code));
    } else if (err == EMBBADCRC) {
        snprintf(buf, len,
                 "garbled reply: CRC error (check wiring, termination, baud rate and parity)");
    } else if (err == EMBBADSLAVE) {
        snprintf(buf, len, "reply from another unit id (two devices with one id, or a late reply)");
    } else if (err == EMBBADDATA || err == EMBMDATA) {
        snprintf(buf, len, "garbled reply: %s", modbus_strerror(err));
    } else if (err == EMBBADEXC || err == EMBUNKEXC) {
        snprintf(buf, len, "garbled exception reply: %s", modbus_strerror(err));
    } else {
        snprintf(buf, len, "%s", modbus_strerror(err));
    }
}

void probe_scan_text(const struct bus_probe_reply *rep, int unit, int64_t timeout_ms, char *buf,
                     size_t len)
{
    int e = unit >= 0 && unit < 256 ? rep->unit_err[unit] : BUS_UNIT_NOT_TRIED;
    char why[200];
    switch (probe_unit_presence(e)) {
    case PROBE_PRESENT:
        if (e == 0) {
            snprintf(buf, len, "answered: %s register %u = 0x%04X (%u)",
                     rep->scan_read.table == REG_INPUT ? "input" : "holding",
                     rep->scan_read.address, rep->unit_value[unit], rep->unit_value[unit]);
        } else {
            int code = e - MODBUS_ENOBASE;
            const char *name = probe_exception_name(code);
            snprintf(buf, len, "answered with exception %d %s: a device is there", code,
                     name ? name : "UNKNOWN");
        }
        break;
    case PROBE_GARBLED:
        probe_error_text(e, timeout_ms, why, sizeof(why));
        snprintf(buf, len, "something answered, unreadably: %s", why);
        break;
    case PROBE_ABSENT:
        if (e == BUS_UNIT_NOT_TRIED)
            snprintf(buf, len, "not asked");
        else
            probe_error_text(e, timeout_ms, buf, len);
        break;
    }
}

enum probe_presence probe_unit_presence(int err)
{
    if (err == 0)
        return PROBE_PRESENT;
    if (err == EMBXGPATH || err == EMBXGTAR)
        return PROBE_ABSENT;
    if (err >= EMBXILFUN && err < EMBXGPATH)
        return PROBE_PRESENT;
    if (err == EMBBADCRC || err == EMBBADDATA || err == EMBBADSLAVE || err == EMBMDATA ||
        err == EMBBADEXC || err == EMBUNKEXC)
        return PROBE_GARBLED;
    return PROBE_ABSENT;
}

void probe_raw_text(const struct probe_value *v, char *buf, size_t len)
{
    if (v->read_err != 0)
        snprintf(buf, len, "-");
    else if (v->pt->type == RT_BIT)
        snprintf(buf, len, "0x%04X bit %d", v->words[0], v->pt->bit);
    else if (v->width == 2)
        snprintf(buf, len, "0x%04X 0x%04X", v->words[0], v->words[1]);
    else if (v->pt->type == RT_INT16)
        snprintf(buf, len, "0x%04X (%d)", v->words[0], (int16_t)v->words[0]);
    else
        snprintf(buf, len, "0x%04X (%u)", v->words[0], v->words[0]);
}

void probe_value_text(const struct probe_value *v, int64_t timeout_ms, char *buf, size_t len)
{
    if (v->read_err != 0) {
        char why[200];
        probe_error_text(v->read_err, timeout_ms, why, sizeof(why));
        snprintf(buf, len, "not read: %s", why);
    } else if (!v->ok) {
        snprintf(buf, len, "not usable: %s", v->err);
    } else if (v->pt->type == RT_BIT) {
        snprintf(buf, len, "%s", v->value != 0 ? "set" : "clear");
    } else {
        snprintf(buf, len, "%.7g%s%s", v->value, v->pt->unit[0] ? " " : "", v->pt->unit);
    }
}

/* cJSON returns NULL when out of memory; one flag per document remembers it. */
static void *need(bool *ok, void *item)
{
    if (!item)
        *ok = false;
    return item;
}

static void add_str(bool *ok, cJSON *o, const char *key, const char *s)
{
    char *fixed = utf8_repaired(s);
    need(ok, cJSON_AddStringToObject(o, key, fixed ? fixed : s));
    free(fixed);
}

static void add_num_item(bool *ok, cJSON *array, double v)
{
    cJSON *item = need(ok, cJSON_CreateNumber(v));
    if (item)
        cJSON_AddItemToArray(array, item);
}

static const char *table_word(enum reg_table t)
{
    return t == REG_INPUT ? "input" : "holding";
}

static char *finish_json(cJSON *root, bool ok)
{
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return NULL;
    /* Hand out memory the caller frees with free(), whatever cJSON's allocator is. */
    char *copy = xstrdup(text);
    cJSON_free(text);
    return copy;
}

char *probe_read_json(const char *device, const struct profile *prof,
                      const struct bus_probe_reply *rep, const struct probe_value *v, size_t n,
                      int64_t timeout_ms)
{
    bool ok = true, all = rep->rc == 0;
    char text[256];
    cJSON *root = need(&ok, cJSON_CreateObject());
    if (!root)
        return NULL;
    add_str(&ok, root, "device", device);
    add_str(&ok, root, "bus", rep->bus_id);
    need(&ok, cJSON_AddNumberToObject(root, "unit", rep->unit));
    add_str(&ok, root, "profile", prof->name);
    if (rep->rc != 0)
        add_str(&ok, root, "error", rep->err);
    cJSON *reads = need(&ok, cJSON_AddArrayToObject(root, "reads"));
    for (size_t i = 0; reads && i < rep->nblocks && i < BUS_PROBE_MAX_BLOCKS; i++) {
        cJSON *r = need(&ok, cJSON_CreateObject());
        if (!r)
            break;
        cJSON_AddItemToArray(reads, r);
        add_str(&ok, r, "table", table_word(rep->blocks[i].table));
        need(&ok, cJSON_AddNumberToObject(r, "address", rep->blocks[i].address));
        need(&ok, cJSON_AddNumberToObject(r, "count", rep->blocks[i].count));
        probe_error_text(rep->block_err[i], timeout_ms, text, sizeof(text));
        add_str(&ok, r, "result", text);
        need(&ok, cJSON_AddBoolToObject(r, "ok", rep->block_err[i] == 0));
    }
    cJSON *regs = need(&ok, cJSON_AddArrayToObject(root, "registers"));
    for (size_t i = 0; regs && i < n; i++) {
        cJSON *r = need(&ok, cJSON_CreateObject());
        if (!r)
            break;
        cJSON_AddItemToArray(regs, r);
        all = all && v[i].ok;
        add_str(&ok, r, "name", v[i].pt->name);
        add_str(&ok, r, "role", point_role_name(v[i].pt->role));
        need(&ok, cJSON_AddNumberToObject(r, "channel", v[i].channel));
        add_str(&ok, r, "table", table_word(v[i].table));
        need(&ok, cJSON_AddNumberToObject(r, "address", v[i].address));
        if (v[i].pt->type == RT_BIT)
            need(&ok, cJSON_AddNumberToObject(r, "bit", v[i].pt->bit));
        if (v[i].read_err == 0) {
            cJSON *raw = need(&ok, cJSON_AddArrayToObject(r, "raw"));
            for (int w = 0; raw && w < v[i].width; w++)
                add_num_item(&ok, raw, v[i].words[w]);
        } else {
            need(&ok, cJSON_AddNullToObject(r, "raw"));
        }
        probe_raw_text(&v[i], text, sizeof(text));
        add_str(&ok, r, "raw_hex", text);
        if (v[i].ok && isfinite(v[i].value))
            need(&ok, cJSON_AddNumberToObject(r, "value", v[i].value));
        else
            need(&ok, cJSON_AddNullToObject(r, "value"));
        add_str(&ok, r, "unit", v[i].pt->unit);
        probe_value_text(&v[i], timeout_ms, text, sizeof(text));
        add_str(&ok, r, "text", text);
        if (!v[i].ok)
            add_str(&ok, r, "error", text);
    }
    need(&ok, cJSON_AddBoolToObject(root, "ok", all));
    return finish_json(root, ok);
}

char *probe_scan_json(const struct bus_probe_reply *rep, int64_t timeout_ms)
{
    bool ok = true;
    char text[256];
    cJSON *root = need(&ok, cJSON_CreateObject());
    if (!root)
        return NULL;
    add_str(&ok, root, "bus", rep->bus_id);
    need(&ok, cJSON_AddNumberToObject(root, "from", rep->from));
    need(&ok, cJSON_AddNumberToObject(root, "to", rep->to));
    cJSON *rd = need(&ok, cJSON_AddObjectToObject(root, "read"));
    if (rd) {
        add_str(&ok, rd, "table", table_word(rep->scan_read.table));
        need(&ok, cJSON_AddNumberToObject(rd, "address", rep->scan_read.address));
    }
    need(&ok, cJSON_AddBoolToObject(root, "ok", rep->rc == 0));
    if (rep->rc != 0)
        add_str(&ok, root, "error", rep->err);
    cJSON *units = need(&ok, cJSON_AddArrayToObject(root, "units"));
    cJSON *answers = need(&ok, cJSON_AddArrayToObject(root, "answers"));
    for (int u = 0; units && answers && u < 256; u++) {
        int e = rep->unit_err[u];
        if (e == BUS_UNIT_NOT_TRIED)
            continue;
        enum probe_presence pr = probe_unit_presence(e);
        if (pr == PROBE_ABSENT)
            continue;
        if (pr == PROBE_PRESENT)
            add_num_item(&ok, units, u);
        cJSON *a = need(&ok, cJSON_CreateObject());
        if (!a)
            break;
        cJSON_AddItemToArray(answers, a);
        need(&ok, cJSON_AddNumberToObject(a, "unit", u));
        add_str(&ok, a, "answer",
                pr == PROBE_GARBLED ? "garbled"
                : e == 0            ? "registers"
                                    : "exception");
        probe_scan_text(rep, u, timeout_ms, text, sizeof(text));
        add_str(&ok, a, "detail", text);
        if (e == 0)
            need(&ok, cJSON_AddNumberToObject(a, "value", rep->unit_value[u]));
    }
    return finish_json(root, ok);
}
