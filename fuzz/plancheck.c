/*
 * The read plan of one device, built the way a bus poller builds it, and the
 * promises a loaded profile makes to the poller: every point of every channel
 * in use fits the register space, plan_build accepts the spans, each point is
 * found inside one request, and whatever the registers hold decodes to a
 * finite value or a clear error.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz.h"
#include "plan.h"
#include "util.h"

void fuzz_check_plan(const struct profile *p, const int *channels, size_t nchannels,
                     unsigned max_gap, const uint16_t *words, size_t nwords)
{
    if (nchannels == 0 || p->npoints == 0)
        return;
    struct plan_span *spans = xcalloc(nchannels * p->npoints, sizeof(*spans));
    size_t n = 0;
    for (size_t k = 0; k < nchannels; k++) {
        for (size_t j = 0; j < p->npoints; j++) {
            const struct profile_point *pt = &p->points[j];
            if (!pt->per_channel && k > 0)
                continue;
            long addr = pt->address;
            if (pt->per_channel && channels[k] > 1)
                addr += (long)(channels[k] - 1) * p->channel_stride;
            int width = reg_type_width(pt->type);
            FUZZ_ASSERT(addr + width <= 65536,
                        "profile %s: point %s of channel %d lies past register 65535 (at %ld)",
                        p->name, pt->name, channels[k], addr);
            FUZZ_ASSERT(profile_point_address(p, pt, channels[k]) == addr,
                        "profile %s: point %s of channel %d: address %u, expected %ld", p->name,
                        pt->name, channels[k], profile_point_address(p, pt, channels[k]), addr);
            spans[n++] = (struct plan_span){pt->table, (uint16_t)addr, (uint16_t)width};
        }
    }
    struct plan plan;
    FUZZ_ASSERT(plan_build(spans, n, max_gap, &plan) == 0,
                "profile %s: plan_build refused %zu spans", p->name, n);
    for (size_t i = 0; i < plan.count; i++)
        FUZZ_ASSERT(plan.requests[i].count >= 1 && plan.requests[i].count <= PLAN_MAX_REGS &&
                        (uint32_t)plan.requests[i].address + plan.requests[i].count <= 65536u,
                    "request %zu: %u registers at %u", i, plan.requests[i].count,
                    plan.requests[i].address);
    /* One register image per request, filled from the input. */
    uint16_t **regs = xcalloc(plan.count ? plan.count : 1, sizeof(*regs));
    size_t w = 0;
    for (size_t i = 0; i < plan.count; i++) {
        regs[i] = xcalloc(plan.requests[i].count, sizeof(uint16_t));
        for (size_t r = 0; r < plan.requests[i].count && nwords; r++)
            regs[i][r] = words[w++ % nwords];
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t off = 0;
        int q = plan_locate(&plan, spans[i].table, spans[i].address, spans[i].count, &off);
        FUZZ_ASSERT(q >= 0, "span %zu (%u registers at %u) is in no request", i, spans[i].count,
                    spans[i].address);
        FUZZ_ASSERT((size_t)off + spans[i].count <= plan.requests[q].count,
                    "span %zu runs past the end of request %d", i, q);
    }
    for (size_t k = 0; k < nchannels; k++) {
        for (size_t j = 0; j < p->npoints; j++) {
            const struct profile_point *pt = &p->points[j];
            uint16_t addr = profile_point_address(p, pt, channels[k]);
            uint16_t off = 0;
            int q = plan_locate(&plan, pt->table, addr, (uint16_t)reg_type_width(pt->type), &off);
            FUZZ_ASSERT(q >= 0, "point %s of channel %d is in no request", pt->name, channels[k]);
            double v = NAN;
            char err[96] = "";
            if (codec_decode(pt, regs[q] + off, &v, err, sizeof(err)) == 0)
                FUZZ_ASSERT(isfinite(v), "point %s decoded to %g", pt->name, v);
            else
                FUZZ_ASSERT(err[0] != '\0', "point %s: a refusal without a reason", pt->name);
        }
    }
    for (size_t i = 0; i < plan.count; i++)
        free(regs[i]);
    free(regs);
    plan_free(&plan);
    free(spans);
}
