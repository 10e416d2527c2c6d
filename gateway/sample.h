/*
 * What a bus poller hands to the alarm engine: one reading per detector per
 * poll, and the times it was taken. Plain data, no behaviour.
 */
#ifndef FIREGW_SAMPLE_H
#define FIREGW_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* A point in time on both clocks: monotonic for timers, wall for timestamps. */
struct ev_time {
    int64_t mono_ms;
    int64_t wall_ms;
};

#define ROLE_BIT(r) (1u << (r))

/* One detector's decoded reading. */
struct reading {
    size_t detector;       /* index into cfg.detectors */
    bool has_value;        /* the profile has a ROLE_VALUE point */
    bool value_ok;         /* decoded and plausible */
    double value;          /* engineering units, valid when value_ok */
    char value_err[96];    /* why not value_ok, e.g. "obscuration 655.35 %/m outside 0..20" */
    unsigned bits_present; /* ROLE_BIT(role) for each status bit the profile has */
    unsigned bits;         /* ROLE_BIT(role) for each status bit that is set */
};

/* Everything read from one device in one poll. */
struct device_sample {
    size_t device; /* index into cfg.devices */
    struct ev_time t;
    bool has_lifecheck;
    uint32_t lifecheck;
    size_t nreadings;
    struct reading *readings; /* owned by the sample */
};

#endif
