/*
 * JSON payloads of every MQTT message (docs/mqtt-api.md, docs/schema/). Pure
 * functions from the model to text; each returns a string the caller frees.
 */
#ifndef FIREGW_PAYLOAD_H
#define FIREGW_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "engine.h"
#include "event.h"

#define FIREGW_VERSION "0.1.0"
#define FIREGW_SCHEMA_VERSION 1

/* One event (topic <prefix>/event). */
char *payload_event(const struct cfg *cfg, const struct event *ev);
/* Retained state of detector det (topic <prefix>/detector/<id>/state). */
char *payload_detector_state(const struct cfg *cfg, size_t det, const struct det_status *st,
                             int64_t wall_ms);
/* Retained gateway status (topic <prefix>/status), also used as the last will. */
char *payload_status(const struct cfg *cfg, bool online, int64_t wall_ms, int64_t started_wall_ms);

struct heartbeat_info {
    int64_t wall_ms;
    int64_t uptime_ms;
    uint64_t last_seq;
    size_t detectors_total;
    size_t in_fire_alarm;
    size_t in_pre_alarm;
    size_t in_fault;
    size_t buses_total;
    size_t buses_up;
    int64_t interval_ms; /* this uplink's heartbeat interval */
};
/* Periodic heartbeat (topic <prefix>/heartbeat). */
char *payload_heartbeat(const struct cfg *cfg, const struct heartbeat_info *hb);

#endif
