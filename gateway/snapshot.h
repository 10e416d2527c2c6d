/*
 * The live picture of the building for the web UI (GET /api/state and the
 * stream's "state" messages, docs/http-api.md): building, zones, detectors,
 * buses, devices and uplinks as JSON, made on the main thread from struct
 * gateway. Also decides, cheaply, when the picture has changed: a hash of
 * every state flag is compared at each check, readings alone count as a
 * change only every few seconds.
 */
#ifndef FIREGW_SNAPSHOT_H
#define FIREGW_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"

struct gateway;
struct cfg;

/* Shortest time between two checks for a change. */
#define SNAPSHOT_CHECK_MS 250
/* Changed readings alone make a new picture at most this often. */
#define SNAPSHOT_VALUES_MS 5000

struct snapshot;

struct snapshot *snapshot_new(void);
void snapshot_free(struct snapshot *s);

/* Follow a dispatched event: devices going down and coming back. Main thread. */
void snapshot_observe(struct snapshot *s, const struct cfg *cfg, const struct event *ev);

/*
 * Whether a new picture should be made now: something shown changed (at
 * most one check every SNAPSHOT_CHECK_MS), or only readings changed, the
 * last picture is SNAPSHOT_VALUES_MS old and values_wanted (someone is
 * looking). The first call is always true.
 */
bool snapshot_due(struct snapshot *s, const struct gateway *gw, int64_t now_mono,
                  bool values_wanted);

/* The picture as JSON text; caller frees. Also records it as the last one made. */
char *snapshot_json(struct snapshot *s, const struct gateway *gw, struct ev_time now);

#endif
