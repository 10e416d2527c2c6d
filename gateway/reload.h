/*
 * Configuration reload rules: which buses keep polling, what needs a
 * restart, and how indexes of an older config map onto the current one.
 */
#ifndef FIREGW_RELOAD_H
#define FIREGW_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "cfg.h"
#include "engine.h"

/*
 * Whether bus ba of a and bus bb of b are polled exactly alike: connection
 * and timing settings, devices (unit, profile, timeouts) and the detectors
 * read from them, in order.
 */
bool reload_bus_unchanged(const struct cfg *a, size_t ba, const struct cfg *b, size_t bb);

/*
 * 0 when nw may replace old while running (engine e holds old's state);
 * -1 with the reason (e.g. an uplink's broker changed, or a detector in fire
 * alarm would disappear).
 */
int reload_check(const struct cfg *old, const struct cfg *nw, const struct engine *e, char *err,
                 size_t errlen);

/* Indexes of config `from` mapped by id onto another config; -1 where gone. */
struct reload_map {
    const struct cfg *from;
    long *bus;
    long *device;
    long *detector;
};

struct reload_map *reload_map_new(const struct cfg *from, const struct cfg *to);
void reload_map_free(struct reload_map *m);

#endif
