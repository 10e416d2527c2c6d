/*
 * Request planning: from the points a device must read, build the fewest Modbus
 * read requests (one table each, at most 125 registers), merging contiguous
 * points and points separated by a gap of at most max_gap unused registers.
 */
#ifndef FIREGW_PLAN_H
#define FIREGW_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

#define PLAN_MAX_REGS 125

struct plan_span {
    enum reg_table table;
    uint16_t address;
    uint16_t count;
};

struct plan_request {
    enum reg_table table;
    uint16_t address;
    uint16_t count; /* 1..PLAN_MAX_REGS */
};

struct plan {
    struct plan_request *requests;
    size_t count;
};

/*
 * Merge spans into requests. Spans may overlap and come in any order. A gap
 * of up to max_gap registers between spans is read rather than split.
 * Returns 0, -1 with errno EINVAL on a span of 0 or > PLAN_MAX_REGS registers,
 * or one that passes address 65535. Caller frees with plan_free.
 */
int plan_build(const struct plan_span *spans, size_t nspans, unsigned max_gap, struct plan *out);
void plan_free(struct plan *p);

/*
 * Find the request holding [address, address + count) of table; writes the
 * offset of address inside it. Returns the request index or -1.
 */
int plan_locate(const struct plan *p, enum reg_table table, uint16_t address, uint16_t count,
                uint16_t *offset);

#endif
