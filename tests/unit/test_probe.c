/*
 * Unit tests for the probe words: the reads planned for a panel profile and
 * chosen channels (merged, refused past the limits), decoding a reply point by
 * point (values, bits, 32-bit word order, implausible values, failed reads),
 * libmodbus errors and Modbus exceptions in words, what a scan's answers say
 * about a unit, and the JSON the web API serves.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <modbus.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probe.h"
#include "util.h"

static struct profile_point pt(const char *name, enum point_role role, enum reg_table table,
                               uint16_t addr, enum reg_type type)
{
    struct profile_point p = {0};
    p.name = (char *)name;
    p.role = role;
    p.table = table;
    p.address = addr;
    p.type = type;
    p.scale = 1;
    return p;
}

/* A panel: 32-bit LifeCheck (word-swapped) at holding 0, a status word per zone from 100. */
struct panel {
    struct profile_point pts[4];
    struct profile prof;
};

static void panel_init(struct panel *p)
{
    p->pts[0] = pt("lifecheck", ROLE_LIFECHECK, REG_HOLDING, 0, RT_UINT32);
    p->pts[0].order = WO_CDAB;
    p->pts[1] = pt("zone_alarm", ROLE_ALARM, REG_HOLDING, 100, RT_BIT);
    p->pts[2] = pt("zone_fault", ROLE_FAULT, REG_HOLDING, 100, RT_BIT);
    p->pts[2].bit = 2;
    p->pts[3] = pt("zone_level", ROLE_VALUE, REG_HOLDING, 200, RT_INT16);
    p->pts[3].scale = 0.1;
    p->pts[3].has_range = true;
    p->pts[3].min = -10;
    p->pts[3].max = 50;
    strcpy(p->pts[3].unit, "degC");
    for (int i = 1; i < 4; i++)
        p->pts[i].per_channel = true;
    p->prof = (struct profile){.name = "test-panel",
                               .kind = PROFILE_PANEL,
                               .channels = 16,
                               .channel_stride = 1,
                               .points = p->pts,
                               .npoints = 4};
}

static void test_plan_merges_channels(void **state)
{
    (void)state;
    struct panel p;
    panel_init(&p);
    struct bus_probe_req req = {0};
    char err[256] = "";
    int channels[] = {1, 3};
    assert_int_equal(probe_plan(&p.prof, channels, 2, 8, &req, err, sizeof(err)), 0);
    assert_int_equal(req.kind, BUS_PROBE_READ);
    /* lifecheck 0..1; zones 1 and 3 at 100 and 102 (gap 1); levels at 200 and 202 */
    assert_int_equal(req.nblocks, 3);
    assert_int_equal(req.blocks[0].table, REG_HOLDING);
    assert_int_equal(req.blocks[0].address, 0);
    assert_int_equal(req.blocks[0].count, 2);
    assert_int_equal(req.blocks[1].address, 100);
    assert_int_equal(req.blocks[1].count, 3);
    assert_int_equal(req.blocks[2].address, 200);
    assert_int_equal(req.blocks[2].count, 3);
    assert_int_equal(probe_value_count(&p.prof, 2), 1 + 2 * 3);

    /* no gap allowed: each zone word on its own */
    memset(&req, 0, sizeof(req));
    assert_int_equal(probe_plan(&p.prof, channels, 2, 0, &req, err, sizeof(err)), 0);
    assert_int_equal(req.nblocks, 5);
}

static void test_plan_refusals(void **state)
{
    (void)state;
    struct panel p;
    panel_init(&p);
    struct bus_probe_req req = {0};
    char err[256] = "";
    int bad[] = {17};
    assert_int_equal(probe_plan(&p.prof, bad, 1, 8, &req, err, sizeof(err)), -1);
    assert_string_equal(err, "profile test-panel has channels 1..16, not 17");
    assert_int_equal(probe_plan(&p.prof, bad, 0, 8, &req, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no channel"));

    /* every channel with no merging is more reads than one probe makes */
    int all[16];
    for (int i = 0; i < 16; i++)
        all[i] = i + 1;
    p.prof.channel_stride = 20;
    p.pts[3].address = 5000;
    assert_int_equal(probe_plan(&p.prof, all, 16, 0, &req, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "needs 33 read requests"));
    assert_non_null(strstr(err, "at most 32"));

    /* a channel whose register would lie past 65535 */
    p.pts[3].address = 65535;
    p.prof.channel_stride = 1;
    int two[] = {2};
    assert_int_equal(probe_plan(&p.prof, two, 1, 8, &req, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "zone_level of channel 2 lies past register 65535"));
}

/* A reply as a poller would give it for the plan of channels 1 and 3. */
static void fill_reply(struct bus_probe_reply *rep, const struct bus_probe_req *req)
{
    memset(rep, 0, sizeof(*rep));
    rep->kind = BUS_PROBE_READ;
    strcpy(rep->bus_id, "rtu-a");
    rep->unit = 7;
    rep->nblocks = req->nblocks;
    memcpy(rep->blocks, req->blocks, sizeof(rep->blocks));
    /* LifeCheck 0x00010002, low word first */
    rep->regs[0][0] = 0x0002;
    rep->regs[0][1] = 0x0001;
    /* zone 1: alarm; zone 3: fault */
    rep->regs[1][0] = 0x0001;
    rep->regs[1][2] = 0x0004;
    /* zone 1: 21.5 degC; zone 3: 99.9 degC, which is outside -10..50 */
    rep->regs[2][0] = 215;
    rep->regs[2][2] = 999;
}

/* The panel's channels that the read tests ask for. */
static const int read_channels[] = {1, 3};

/* The panel, and fill_reply's answer to its plan for read_channels; the caller frees it. */
static struct bus_probe_reply *panel_read(struct panel *p)
{
    panel_init(p);
    struct bus_probe_req req = {0};
    char err[256] = "";
    assert_int_equal(
        probe_plan(&p->prof, read_channels, ARRAY_LEN(read_channels), 8, &req, err, sizeof(err)),
        0);
    struct bus_probe_reply *rep = xcalloc(1, sizeof(*rep));
    fill_reply(rep, &req);
    return rep;
}

static void test_decode(void **state)
{
    (void)state;
    struct panel p;
    struct bus_probe_reply *rep = panel_read(&p);
    char text[256];
    struct probe_value v[7];
    assert_int_equal(probe_decode(&p.prof, read_channels, ARRAY_LEN(read_channels), rep, v), 7);

    /* the device's own point first */
    assert_string_equal(v[0].pt->name, "lifecheck");
    assert_int_equal(v[0].channel, 0);
    assert_true(v[0].ok);
    assert_true(v[0].value == 65538.0);
    probe_raw_text(&v[0], text, sizeof(text));
    assert_string_equal(text, "0x0002 0x0001");

    /* then channel 1, then channel 3, in profile order */
    assert_int_equal(v[1].channel, 1);
    assert_string_equal(v[1].pt->name, "zone_alarm");
    assert_true(v[1].ok && v[1].value == 1);
    probe_value_text(&v[1], 200, text, sizeof(text));
    assert_string_equal(text, "set");
    assert_true(v[2].ok && v[2].value == 0);
    probe_value_text(&v[2], 200, text, sizeof(text));
    assert_string_equal(text, "clear");
    assert_int_equal(v[3].address, 200);
    probe_value_text(&v[3], 200, text, sizeof(text));
    assert_string_equal(text, "21.5 degC");
    probe_raw_text(&v[3], text, sizeof(text));
    assert_string_equal(text, "0x00D7 (215)");

    assert_int_equal(v[4].channel, 3);
    assert_int_equal(v[4].address, 102);
    assert_true(v[4].ok && v[4].value == 0);
    assert_true(v[5].ok && v[5].value == 1);
    probe_raw_text(&v[5], text, sizeof(text));
    assert_string_equal(text, "0x0004 bit 2");
    /* an implausible value is read, shown raw, and never passed off as a reading */
    assert_int_equal(v[6].read_err, 0);
    assert_false(v[6].ok);
    probe_value_text(&v[6], 200, text, sizeof(text));
    assert_string_equal(text, "not usable: zone_level 99.9 degC outside -10..50");

    /* a zone block that timed out: its points say so, the others still decode */
    rep->block_err[1] = ETIMEDOUT;
    assert_int_equal(probe_decode(&p.prof, read_channels, ARRAY_LEN(read_channels), rep, v), 7);
    assert_true(v[0].ok);
    assert_int_equal(v[1].read_err, ETIMEDOUT);
    assert_false(v[1].ok);
    probe_raw_text(&v[1], text, sizeof(text));
    assert_string_equal(text, "-");
    probe_value_text(&v[1], 200, text, sizeof(text));
    assert_string_equal(text, "not read: no answer within 200 ms (timeout)");
    assert_true(v[3].ok);

    /* a reply without the block a point needs: not read, not zero */
    rep->nblocks = 1;
    assert_int_equal(probe_decode(&p.prof, read_channels, ARRAY_LEN(read_channels), rep, v), 7);
    assert_int_equal(v[3].read_err, -1);
    assert_false(v[3].ok);
    free(rep);
}

static void test_error_words(void **state)
{
    (void)state;
    char text[256];
    probe_error_text(ETIMEDOUT, 150, text, sizeof(text));
    assert_string_equal(text, "no answer within 150 ms (timeout)");
    probe_error_text(EMBXILADD, 150, text, sizeof(text));
    assert_non_null(strstr(text, "exception 2 ILLEGAL DATA ADDRESS"));
    assert_non_null(strstr(text, "no such register"));
    probe_error_text(EMBXILFUN, 150, text, sizeof(text));
    assert_non_null(strstr(text, "exception 1 ILLEGAL FUNCTION"));
    probe_error_text(EMBXGTAR, 150, text, sizeof(text));
    assert_non_null(strstr(text, "exception 11 GATEWAY TARGET DEVICE FAILED TO RESPOND"));
    probe_error_text(EMBXSBUSY, 150, text, sizeof(text));
    assert_non_null(strstr(text, "exception 6 SERVER DEVICE BUSY"));
    probe_error_text(EMBBADCRC, 150, text, sizeof(text));
    assert_non_null(strstr(text, "CRC error"));
    probe_error_text(EMBBADSLAVE, 150, text, sizeof(text));
    assert_non_null(strstr(text, "another unit id"));
    probe_error_text(ECONNRESET, 150, text, sizeof(text));
    assert_string_equal(text, modbus_strerror(ECONNRESET));
    probe_error_text(0, 150, text, sizeof(text));
    assert_string_equal(text, "answered");

    assert_null(probe_exception_name(0));
    assert_null(probe_exception_name(9));
    assert_null(probe_exception_name(12));
    assert_string_equal(probe_exception_name(4), "SERVER DEVICE FAILURE");

    assert_int_equal(probe_unit_presence(0), PROBE_PRESENT);
    assert_int_equal(probe_unit_presence(EMBXILADD), PROBE_PRESENT);
    assert_int_equal(probe_unit_presence(EMBXILFUN), PROBE_PRESENT);
    /* a TCP gateway answering for a unit that did not answer it: nobody is there */
    assert_int_equal(probe_unit_presence(EMBXGPATH), PROBE_ABSENT);
    assert_int_equal(probe_unit_presence(EMBXGTAR), PROBE_ABSENT);
    assert_int_equal(probe_unit_presence(ETIMEDOUT), PROBE_ABSENT);
    assert_int_equal(probe_unit_presence(BUS_UNIT_NOT_TRIED), PROBE_ABSENT);
    assert_int_equal(probe_unit_presence(EMBBADCRC), PROBE_GARBLED);
    assert_int_equal(probe_unit_presence(EMBBADSLAVE), PROBE_GARBLED);
}

static const cJSON *item(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        fail_msg("no \"%s\" in the JSON", key);
    return v;
}

static void test_read_json(void **state)
{
    (void)state;
    struct panel p;
    struct bus_probe_reply *rep = panel_read(&p);
    struct probe_value v[7];
    size_t n = probe_decode(&p.prof, read_channels, ARRAY_LEN(read_channels), rep, v);
    char *text = probe_read_json("panel-b1", &p.prof, rep, v, n, 200);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    assert_string_equal(item(root, "device")->valuestring, "panel-b1");
    assert_string_equal(item(root, "bus")->valuestring, "rtu-a");
    assert_int_equal(item(root, "unit")->valueint, 7);
    assert_string_equal(item(root, "profile")->valuestring, "test-panel");
    assert_true(cJSON_IsFalse(item(root, "ok"))); /* zone 3's level is implausible */
    assert_int_equal(cJSON_GetArraySize(item(root, "reads")), 3);
    const cJSON *regs = item(root, "registers");
    assert_int_equal(cJSON_GetArraySize(regs), 7);
    const cJSON *life = cJSON_GetArrayItem(regs, 0);
    assert_string_equal(item(life, "name")->valuestring, "lifecheck");
    assert_int_equal(item(life, "address")->valueint, 0);
    assert_int_equal(cJSON_GetArraySize(item(life, "raw")), 2);
    assert_int_equal(cJSON_GetArrayItem(item(life, "raw"), 0)->valueint, 2);
    assert_true(item(life, "value")->valuedouble == 65538.0);
    const cJSON *level = cJSON_GetArrayItem(regs, 3);
    assert_string_equal(item(level, "unit")->valuestring, "degC");
    assert_true(item(level, "value")->valuedouble == 21.5);
    assert_int_equal(item(level, "channel")->valueint, 1);
    const cJSON *bad = cJSON_GetArrayItem(regs, 6);
    assert_true(cJSON_IsNull(item(bad, "value")));
    assert_non_null(strstr(item(bad, "error")->valuestring, "outside -10..50"));
    const cJSON *fault = cJSON_GetArrayItem(regs, 5);
    assert_int_equal(item(fault, "bit")->valueint, 2);
    assert_string_equal(item(fault, "role")->valuestring, "fault");
    cJSON_Delete(root);
    free(text);

    /* a probe cut short says why */
    rep->rc = -1;
    strcpy(rep->err, "bus rtu-a is not connected");
    text = probe_read_json("panel-b1", &p.prof, rep, v, n, 200);
    root = cJSON_Parse(text);
    assert_non_null(root);
    assert_string_equal(item(root, "error")->valuestring, "bus rtu-a is not connected");
    cJSON_Delete(root);
    free(text);
    free(rep);
}

static void test_scan_words_and_json(void **state)
{
    (void)state;
    struct bus_probe_reply *rep = xcalloc(1, sizeof(*rep));
    rep->kind = BUS_PROBE_SCAN;
    strcpy(rep->bus_id, "tcp-b");
    rep->from = 1;
    rep->to = 6;
    rep->scan_read = (struct bus_block){REG_INPUT, 3, 1};
    for (int u = 0; u < 256; u++)
        rep->unit_err[u] = BUS_UNIT_NOT_TRIED;
    rep->unit_err[1] = 0;
    rep->unit_value[1] = 42;
    rep->unit_err[2] = ETIMEDOUT;
    rep->unit_err[3] = EMBXILADD;
    rep->unit_err[4] = EMBXGTAR;
    rep->unit_err[5] = EMBBADCRC;
    rep->unit_err[6] = ETIMEDOUT;
    char text[256];
    probe_scan_text(rep, 1, 100, text, sizeof(text));
    assert_string_equal(text, "answered: input register 3 = 0x002A (42)");
    probe_scan_text(rep, 3, 100, text, sizeof(text));
    assert_string_equal(text, "answered with exception 2 ILLEGAL DATA ADDRESS: a device is there");
    probe_scan_text(rep, 5, 100, text, sizeof(text));
    assert_non_null(strstr(text, "something answered, unreadably: garbled reply: CRC error"));
    probe_scan_text(rep, 2, 100, text, sizeof(text));
    assert_string_equal(text, "no answer within 100 ms (timeout)");
    probe_scan_text(rep, 9, 100, text, sizeof(text));
    assert_string_equal(text, "not asked");

    char *json = probe_scan_json(rep, 100);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    assert_string_equal(item(root, "bus")->valuestring, "tcp-b");
    assert_true(cJSON_IsTrue(item(root, "ok")));
    assert_string_equal(item(item(root, "read"), "table")->valuestring, "input");
    const cJSON *units = item(root, "units");
    assert_int_equal(cJSON_GetArraySize(units), 2);
    assert_int_equal(cJSON_GetArrayItem(units, 0)->valueint, 1);
    assert_int_equal(cJSON_GetArrayItem(units, 1)->valueint, 3);
    const cJSON *answers = item(root, "answers");
    assert_int_equal(cJSON_GetArraySize(answers), 3);
    assert_string_equal(item(cJSON_GetArrayItem(answers, 0), "answer")->valuestring, "registers");
    assert_int_equal(item(cJSON_GetArrayItem(answers, 0), "value")->valueint, 42);
    assert_string_equal(item(cJSON_GetArrayItem(answers, 1), "answer")->valuestring, "exception");
    assert_int_equal(item(cJSON_GetArrayItem(answers, 2), "unit")->valueint, 5);
    assert_string_equal(item(cJSON_GetArrayItem(answers, 2), "answer")->valuestring, "garbled");
    cJSON_Delete(root);
    free(json);
    free(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_merges_channels),
        cmocka_unit_test(test_plan_refusals),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_error_words),
        cmocka_unit_test(test_read_json),
        cmocka_unit_test(test_scan_words_and_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
