/*
 * The alarm engine: a fire panel's logic for the detectors the gateway polls
 * (docs/alarm-rules.md). Levels with hysteresis, EN 54-5 heat classes with
 * rate-of-rise and a spike filter, latching fire alarms that only a reset
 * clears, alarm verification, coincidence and positive alarm sequence per
 * zone, faults (silence, bits, implausible and stuck values, LifeCheck,
 * devices and buses), and disablement and test mode with expiry. A pure
 * module: samples, operator commands and time in, events out; it does no I/O
 * and reads no clock.
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
    unsigned faults; /* bit (1u << fault_code) for each active fault */
    bool disabled;   /* panel zone disabled at the panel */
    bool has_value;
    double value;              /* last plausible value */
    int64_t last_reading_mono; /* when the detector last answered */
    int64_t changed_wall;      /* wall time of the last state change */
    bool test_mode;            /* in test mode (its own or its zone's): alarms are test events */
    bool test_alarm;           /* in test mode with its alarm condition present */
    bool pending;      /* alarm held by verification or positive alarm sequence (level pre_alarm) */
    bool latched;      /* fire alarm held until a reset, whatever the readings do */
    bool acknowledged; /* its fire alarm or held alarm was acknowledged */
    bool silenced;     /* the sounders for its fire alarm were silenced */
};

/* The state of a zone or of the whole building, aggregated from its detectors. */
struct area_status {
    size_t detectors;
    size_t fire_alarm, pre_alarm, pending, fault, disabled, test; /* detectors in each */
    bool fire_confirmed; /* coincidence met (building: in any zone) */
    bool acknowledged;   /* something to acknowledge, and it was */
    bool silenced;
    bool zone_disabled;  /* zone disabled at the gateway (building: any zone) */
    bool zone_test_mode; /* zone in test mode (building: any zone) */
    bool verifying;      /* alarm verification running (building: in any zone) */
    bool pas_running;    /* positive alarm sequence running (building: in any zone) */
};

/* Who an operator command is for. */
enum engine_scope { SCOPE_ALL, SCOPE_ZONE, SCOPE_DETECTOR };

/* One operator command: its target, who gave it, and when. */
struct engine_op {
    enum engine_scope scope;
    const char *id;   /* zone or detector id; ignored for SCOPE_ALL */
    const char *user; /* named in the event; may be NULL */
    struct ev_time now;
};

struct engine;

/*
 * Create an engine for cfg (which must outlive it). `now` starts the
 * no-response and LifeCheck timers, so nothing is reported silent before a
 * full no-response period has passed.
 */
struct engine *engine_new(const struct cfg *cfg, struct ev_time now);
void engine_free(struct engine *e);
/*
 * Carry the state of old (made from the previous config) into e (made from
 * the new one), matching detectors, zones, devices and buses by id: latched
 * alarms, acknowledgements, disablements and test modes, faults, timers.
 * Points only in the new config start fresh. old is left as it was.
 */
void engine_adopt(struct engine *e, const struct engine *old, struct ev_time now);

/* A device answered: evaluate its readings. Appends events to out. */
void engine_sample(struct engine *e, const struct device_sample *s, struct evlist *out);
/* A device went down (up=false) or came back. why is shown in the event. */
void engine_device_state(struct engine *e, size_t device, bool up, const char *why,
                         struct ev_time now, struct evlist *out);
/* A bus connection was lost or established. */
void engine_bus_state(struct engine *e, size_t bus, bool up, const char *why, struct ev_time now,
                      struct evlist *out);
/*
 * Advance time: no-response, stuck-value, LifeCheck, verification, positive
 * alarm sequence, disablement and test-mode timers. Call at least once a
 * second; a call with nothing due costs a comparison.
 */
void engine_tick(struct engine *e, struct ev_time now, struct evlist *out);
/* No timer of the engine is due before this monotonic time (INT64_MAX: none armed). */
int64_t engine_next_due(const struct engine *e);

/*
 * Operator commands. Each returns 0 and appends its events, or -1 with the
 * reason in err (unknown target, wrong scope, nothing to act on) and no change.
 */
/* Acknowledge the fire and held alarms of a zone or of all zones (SCOPE_ALL, SCOPE_ZONE). */
int engine_acknowledge(struct engine *e, const struct engine_op *op, struct evlist *out, char *err,
                       size_t errlen);
/* Silence the sounders for the fire alarms of a zone or of all zones; no alarm is cleared. */
int engine_silence(struct engine *e, const struct engine_op *op, struct evlist *out, char *err,
                   size_t errlen);
/*
 * Reset a zone or all zones: the only way out of a latched fire alarm. A
 * detector whose alarm condition is still present alarms again at once.
 */
int engine_reset(struct engine *e, const struct engine_op *op, struct evlist *out, char *err,
                 size_t errlen);
/* Disable a detector or zone until until_mono (> now): its alarms are not reported. */
int engine_disable(struct engine *e, const struct engine_op *op, int64_t until_mono,
                   struct evlist *out, char *err, size_t errlen);
/* End a disablement made with engine_disable (not the panel's own). */
int engine_enable(struct engine *e, const struct engine_op *op, struct evlist *out, char *err,
                  size_t errlen);
/*
 * Put a detector or zone in test mode until until_mono (> now), or end it (on
 * false, until_mono ignored). Refused for a point in fire alarm or held alarm.
 */
int engine_test_mode(struct engine *e, const struct engine_op *op, bool on, int64_t until_mono,
                     struct evlist *out, char *err, size_t errlen);

/* Aggregate state of zone (index into cfg.zones). 0, or -1 if there is no such zone. */
int engine_zone(const struct engine *e, size_t zone, struct area_status *out);
/* Aggregate state of the whole building. */
void engine_building(const struct engine *e, struct area_status *out);
/* The single word for a zone or building: as det_status_word, over its detectors. */
const char *area_status_word(const struct area_status *a);

/* Current state of detector det (index into cfg.detectors). */
const struct det_status *engine_detector(const struct engine *e, size_t det);

const char *det_level_name(enum det_level l); /* "normal", "pre_alarm", "fire_alarm" */
/*
 * The single word summarising st: "fire_alarm", "pre_alarm", "fault", "test",
 * "disabled", "normal", most urgent first.
 */
const char *det_status_word(const struct det_status *st);

#endif
