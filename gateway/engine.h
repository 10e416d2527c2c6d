/*
 * The alarm engine, first version: fixed pre-alarm and alarm levels with
 * hysteresis for smoke and heat values, the detectors' own alarm/fault/
 * maintenance bits, panel zone status bits, no-response and LifeCheck faults,
 * device and bus faults. A pure module: samples and time in, events out; it
 * does no I/O and reads no clock.
 */
#ifndef FIREGW_ENGINE_H
#define FIREGW_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "event.h"
#include "sample.h"

enum det_level { LEVEL_NORMAL, LEVEL_PRE_ALARM, LEVEL_FIRE_ALARM };

/* The live state of one detector, as shown in its retained MQTT state. */
struct det_status {
    enum det_level level;
    unsigned faults;  /* bit (1u << fault_code) for each active fault */
    bool disabled;    /* panel zone disabled at the panel */
    bool has_value;
    double value;     /* last plausible value */
    int64_t last_reading_mono; /* when the detector last answered */
    int64_t changed_wall;      /* wall time of the last state change */
};

struct engine;

/*
 * Create an engine for cfg (which must outlive it). `now` starts the
 * no-response and LifeCheck timers, so nothing is reported silent before a
 * full no-response period has passed.
 */
struct engine *engine_new(const struct cfg *cfg, struct ev_time now);
void engine_free(struct engine *e);

/* A device answered: evaluate its readings. Appends events to out. */
void engine_sample(struct engine *e, const struct device_sample *s, struct evlist *out);
/* A device went down (up=false) or came back. why is shown in the event. */
void engine_device_state(struct engine *e, size_t device, bool up, const char *why,
                         struct ev_time now, struct evlist *out);
/* A bus connection was lost or established. */
void engine_bus_state(struct engine *e, size_t bus, bool up, const char *why, struct ev_time now,
                      struct evlist *out);
/* Advance time: no-response and LifeCheck timers. Call at least once a second. */
void engine_tick(struct engine *e, struct ev_time now, struct evlist *out);

/* Current state of detector det (index into cfg.detectors). */
const struct det_status *engine_detector(const struct engine *e, size_t det);

const char *det_level_name(enum det_level l); /* "normal", "pre_alarm", "fire_alarm" */
/* The single word summarising st: "fire_alarm", "pre_alarm", "fault", "disabled", "normal". */
const char *det_status_word(const struct det_status *st);

#endif
