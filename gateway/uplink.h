/*
 * One MQTT uplink (a broker the gateway reports to), built on Paho MQTTAsync.
 * Connects in the background and reconnects by itself. Events are sent from
 * the daemon's durable outbox with uplink_publish_tracked; other messages
 * published while offline wait in Paho's memory queue up to max_buffered. On connect it
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
/* The fate of a message sent with uplink_publish_tracked. */
struct uplink_done {
    size_t uplink; /* index into cfg.uplinks */
    int64_t tag;   /* as given */
    bool ok;       /* the broker has it (QoS 1 PUBACK); false: Paho gave up on it */
};

/*
 * Publish at QoS 1 only if connected now, and push a struct uplink_done
 * (free with free()) to done_q when the broker has it or Paho gives up. At
 * most 256 may be outstanding. 0 handed to Paho, -1 not (offline, full, or
 * refused: logged).
 */
int uplink_publish_tracked(struct uplink *u, const char *subtopic, const char *payload, int64_t tag,
                           struct queue *done_q);
/*
 * wake(arg) is called on a Paho thread after a connect, and after a receipt
 * or an inbound message was pushed to its queue, so the main loop handles it
 * at once rather than at its next turn.
 */
void uplink_set_wake(struct uplink *u, void (*wake)(void *arg), void *arg);
/* Forget every outstanding tracked message (they will be sent again from the outbox). */
void uplink_untrack_all(struct uplink *u);

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
