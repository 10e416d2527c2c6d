/*
 * Request planning: turns the register spans one device needs into as few
 * Modbus read requests as the 125-register limit and the allowed gap permit.
 * Each request covers one table; a bus round trip costs far more than reading
 * a few unused registers, which is why small gaps are read rather than split.
 */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>

#include "util.h"

static int span_cmp(const void *a, const void *b)
{
    const struct plan_span *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    if (x->address != y->address)
        return x->address < y->address ? -1 : 1;
    /* The longer span first, so the shorter ones it covers merge into it. */
    return x->count > y->count ? -1 : x->count < y->count;
}

int plan_build(const struct plan_span *spans, size_t nspans, unsigned max_gap, struct plan *out)
{
    out->requests = NULL;
    out->count = 0;
    for (size_t i = 0; i < nspans; i++) {
        if (spans[i].count == 0 || spans[i].count > PLAN_MAX_REGS ||
            (uint32_t)spans[i].address + spans[i].count > 65536u) {
            errno = EINVAL;
            return -1;
        }
    }
    if (nspans == 0)
        return 0;

    struct plan_span *sorted = xmalloc(nspans * sizeof(*sorted));
    for (size_t i = 0; i < nspans; i++)
        sorted[i] = spans[i];
    qsort(sorted, nspans, sizeof(*sorted), span_cmp);

    /* Greedy in address order is optimal here: a span that cannot join the
     * current request could not have joined an earlier one either. */
    struct plan_request *req = xmalloc(nspans * sizeof(*req));
    size_t n = 0;
    uint32_t start = 0, end = 0;
    enum reg_table table = REG_HOLDING;
    for (size_t i = 0; i < nspans; i++) {
        uint32_t a = sorted[i].address, e = a + sorted[i].count;
        if (i > 0 && sorted[i].table == table && a <= end + (uint32_t)max_gap &&
            (e > end ? e : end) - start <= PLAN_MAX_REGS) {
            if (e > end)
                end = e;
            continue;
        }
        if (i > 0)
            req[n++] = (struct plan_request){table, (uint16_t)start, (uint16_t)(end - start)};
        table = sorted[i].table;
        start = a;
        end = e;
    }
    req[n++] = (struct plan_request){table, (uint16_t)start, (uint16_t)(end - start)};
    free(sorted);
    out->requests = xrealloc(req, n * sizeof(*req));
    out->count = n;
    return 0;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    free(p->requests);
    p->requests = NULL;
    p->count = 0;
}

int plan_locate(const struct plan *p, enum reg_table table, uint16_t address, uint16_t count,
                uint16_t *offset)
{
    uint32_t end = (uint32_t)address + count;
    for (size_t i = 0; i < p->count; i++) {
        const struct plan_request *r = &p->requests[i];
        if (r->table == table && address >= r->address && end <= (uint32_t)r->address + r->count) {
            if (offset)
                *offset = (uint16_t)(address - r->address);
            return (int)i;
        }
    }
    return -1;
}
