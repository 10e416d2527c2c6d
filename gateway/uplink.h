/*
 * One MQTT uplink (a broker the gateway reports to), built on Paho MQTTAsync.
 * Connects in the background and reconnects by itself; messages published
 * while offline are buffered by Paho up to max_buffered. On connect it
 * publishes a retained "online" status; its last will is the retained
 * "offline" status.
 */
#ifndef FIREGW_UPLINK_H
#define FIREGW_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "queue.h"

struct uplink;

/* Create uplink index idx of cfg (cfg must outlive it). NULL with err. */
struct uplink *uplink_new(const struct cfg *cfg, size_t idx, int64_t started_wall_ms, char *err,
                          size_t errlen);
/*
 * The same, keeping QoS 1 messages on disk under persist_dir (created by the
 * caller) until the broker has them, and restoring them on the next start.
 */
struct uplink *uplink_new_persistent(const struct cfg *cfg, size_t idx, int64_t started_wall_ms,
                                     const char *persist_dir, char *err, size_t errlen);
/* Start connecting (non-blocking). 0, or -1 with err. */
int uplink_start(struct uplink *u, char *err, size_t errlen);
/*
 * Publish payload on "<topic_prefix>/<subtopic>". Never blocks on the network;
 * queued by Paho while offline. 0, or -1 (logged, with the Paho reason).
 */
int uplink_publish(struct uplink *u, const char *subtopic, const char *payload, int qos,
                   bool retained);
/*
 * Called from the main loop about every 100 ms: retries the first connect
 * while the broker has never been reached (Paho's automatic reconnect only
 * covers connections that once succeeded). Never blocks.
 */
void uplink_tick(struct uplink *u, int64_t now_mono_ms);
/* A message that arrived on a subscribed topic, for the main loop. */
struct uplink_msg {
    size_t uplink;  /* index into cfg.uplinks */
    char *subtopic; /* the topic without "<topic_prefix>/", e.g. "ack" */
    char *payload;  /* NUL-terminated copy */
    size_t len;
};
void uplink_msg_free(void *msg);

/*
 * Subscribe (QoS 1) to "<topic_prefix>/<subtopic>" on every connect; what
 * arrives is pushed to inbox as struct uplink_msg. Before uplink_start only.
 * 0, or -1 (too many, or already started).
 */
int uplink_subscribe(struct uplink *u, const char *subtopic, struct queue *inbox);

/*
 * Publish only if connected now: for telemetry and retained states, which
 * must not fill the offline buffer that events need (states are sent again
 * after each connect instead). 0 sent, 1 skipped (offline), -1 refused.
 */
int uplink_publish_live(struct uplink *u, const char *subtopic, const char *payload, int qos,
                        bool retained);
/* Successful connections so far; a change means the broker needs the full state again. */
unsigned uplink_connections(const struct uplink *u);
bool uplink_connected(const struct uplink *u);
const char *uplink_id(const struct uplink *u);
/*
 * Publish the retained "offline" status, wait up to timeout_ms for messages
 * in flight, disconnect and free. NULL safe.
 */
void uplink_free(struct uplink *u, int64_t timeout_ms);

#endif
