/*
 * Fuzz target: the register decoder, that is the request plan (gateway/plan.c)
 * that says where a point's registers are in a reply, and the codec
 * (gateway/codec.c) that turns them into an engineering value.
 *
 * Input, little endian: type, word order, bit, flags (bit 0: a plausible
 * range), scale, offset, min, max (IEEE doubles, any bits), two register
 * words; then max_gap and spans of 5 bytes (table, address, count) for the
 * planner. Whatever the registers hold, a decoded value is finite and in
 * range, a refusal says why, and what is decoded encodes back to the same
 * value; every plan request holds at most 125 registers and every valid span
 * is found in one.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz.h"
#include "plan.h"
#include "util.h"

#define MAX_SPANS 256

struct reader {
    const uint8_t *p;
    size_t left;
};

static uint64_t take(struct reader *r, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = 0;
        if (r->left) {
            b = *r->p++;
            r->left--;
        }
        v |= (uint64_t)b << (8 * i);
    }
    return v;
}

static double take_double(struct reader *r)
{
    uint64_t u = take(r, 8);
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static bool sane_scale(const struct profile_point *pt)
{
    double s = fabs(pt->scale);
    return isfinite(pt->scale) && s >= 1e-3 && s <= 1e3 && isfinite(pt->offset) &&
           fabs(pt->offset) <= 1e4;
}

static void check_codec(const struct profile_point *pt, const uint16_t *words)
{
    double v = NAN;
    char err[96] = "";
    int rc = codec_decode(pt, words, &v, err, sizeof(err));
    if (rc < 0) {
        FUZZ_ASSERT(err[0] != '\0', "a refusal without a reason");
        return;
    }
    FUZZ_ASSERT(isfinite(v), "decoded %g", v);
    if (pt->has_range && pt->type != RT_BIT)
        FUZZ_ASSERT(v >= pt->min && v <= pt->max, "decoded %g outside %g..%g", v, pt->min, pt->max);
    if (pt->type == RT_BIT) {
        FUZZ_ASSERT(v == ((words[0] >> (pt->bit & 15)) & 1u), "bit %d of %#x read as %g", pt->bit,
                    words[0], v);
        return;
    }
    /* Back the other way, as the simulator writes registers. */
    uint16_t back[2] = {0, 0};
    int erc = codec_encode(pt, v, back);
    if (pt->scale == 0 || !isfinite(pt->scale)) {
        FUZZ_ASSERT(erc < 0, "encoded with scale %g", pt->scale);
        return;
    }
    bool exact_float = pt->type == RT_FLOAT32 && pt->scale == 1 && pt->offset == 0;
    if (erc < 0 || (pt->type == RT_FLOAT32 && !exact_float) ||
        (pt->type != RT_FLOAT32 && !sane_scale(pt)))
        return;
    double again = NAN;
    char err2[96] = "";
    FUZZ_ASSERT(codec_decode(pt, back, &again, err2, sizeof(err2)) == 0,
                "%g encoded as %#x %#x does not decode: %s", v, back[0], back[1], err2);
    FUZZ_ASSERT(again == v, "%g encoded as %#x %#x decodes to %g", v, back[0], back[1], again);
}

static void check_plan(struct reader *r)
{
    unsigned max_gap = (unsigned)take(r, 1);
    struct plan_span spans[MAX_SPANS];
    size_t n = 0;
    bool valid = true;
    while (r->left >= 5 && n < MAX_SPANS) {
        struct plan_span s;
        s.table = (take(r, 1) & 1) ? REG_INPUT : REG_HOLDING;
        s.address = (uint16_t)take(r, 2);
        s.count = (uint16_t)take(r, 2);
        if (s.count == 0 || s.count > PLAN_MAX_REGS || (uint32_t)s.address + s.count > 65536u)
            valid = false;
        spans[n++] = s;
    }
    struct plan plan;
    errno = 0;
    int rc = plan_build(spans, n, max_gap, &plan);
    if (!valid) {
        FUZZ_ASSERT(rc < 0 && errno == EINVAL, "invalid spans planned (rc %d)", rc);
        return;
    }
    FUZZ_ASSERT(rc == 0, "valid spans refused");
    FUZZ_ASSERT(plan.count <= n, "%zu requests for %zu spans", plan.count, n);
    for (size_t i = 0; i < plan.count; i++) {
        const struct plan_request *q = &plan.requests[i];
        FUZZ_ASSERT(q->count >= 1 && q->count <= PLAN_MAX_REGS &&
                        (uint32_t)q->address + q->count <= 65536u,
                    "request %zu: %u registers at %u", i, q->count, q->address);
        /* Requests start in (table, address) order; they overlap only where spans do. */
        if (i > 0) {
            const struct plan_request *o = &plan.requests[i - 1];
            FUZZ_ASSERT(o->table < q->table || (o->table == q->table && o->address < q->address),
                        "requests %zu and %zu out of order", i - 1, i);
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t off = 0;
        int q = plan_locate(&plan, spans[i].table, spans[i].address, spans[i].count, &off);
        FUZZ_ASSERT(q >= 0, "span %zu (%u at %u) not planned", i, spans[i].count, spans[i].address);
        FUZZ_ASSERT(plan.requests[q].table == spans[i].table &&
                        plan.requests[q].address + off == spans[i].address &&
                        off + spans[i].count <= plan.requests[q].count,
                    "span %zu located at the wrong place", i);
    }
    plan_free(&plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    struct profile_point pt = {.name = "fuzz", .unit = "u"};
    pt.type = (enum reg_type)(take(&r, 1) % 6);
    pt.order = (enum word_order)(take(&r, 1) % 4);
    pt.bit = (int)take(&r, 1);
    pt.has_range = take(&r, 1) & 1;
    pt.scale = take_double(&r);
    pt.offset = take_double(&r);
    pt.min = take_double(&r);
    pt.max = take_double(&r);
    /* A loaded profile's range is finite and not empty (profile.c checks it). */
    if (!isfinite(pt.min) || !isfinite(pt.max) || pt.min >= pt.max)
        pt.has_range = false;
    uint16_t words[2];
    words[0] = (uint16_t)take(&r, 2);
    words[1] = (uint16_t)take(&r, 2);
    check_codec(&pt, words);
    check_plan(&r);
    return 0;
}
