/*
 * Remote operator commands over MQTT (docs/mqtt-api.md, "Commands"): checks
 * one command message from an uplink's `<prefix>/command` topic and turns it
 * into the text line command_execute applies, and builds the response
 * message for `<prefix>/command/response`. Pure: no I/O besides a log line
 * per rejection, and no clock of its own; the wall time is passed in.
 *
 * A message is checked in this order, and the first failure is the answer:
 * malformed (not exactly the documented JSON), unauthorised (the command is
 * not in the uplink's `commands`), expired (outside its validity window),
 * replayed (its id was already accepted on this uplink and could still be
 * valid). Only an accepted message is remembered for replay detection.
 */
#ifndef FIREGW_REMOTE_H
#define FIREGW_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "cmdset.h"

/* Results of remote_parse. */
enum {
    REMOTE_OK,
    REMOTE_MALFORMED,
    REMOTE_UNAUTHORISED,
    REMOTE_EXPIRED,
    REMOTE_REPLAYED,
};

#define REMOTE_ID_MAX 64           /* command id: 1-64 of A-Z a-z 0-9 _ . : - */
#define REMOTE_USER_MAX 64         /* "user": 1-64 characters (UTF-8) */
#define REMOTE_MAX_BYTES 4096      /* longer messages are malformed */
#define REMOTE_SKEW_MS (5 * 60000) /* "issued" may be this far ahead of the gateway's clock */
#define REMOTE_LIFETIME_MS 3600000 /* longest "expires" - "issued" */
#define REMOTE_MAX_PERIOD_S 604800 /* "period_s": 1 s .. 7 days */
#define REMOTE_DEFAULT_REPLAY 256  /* a sensible replay_capacity */

/* One accepted (or partly read) command. */
struct remote_cmd {
    char id[REMOTE_ID_MAX + 1];                          /* "" when no valid id could be read */
    enum remote_command command;                         /* RCMD__COUNT until the command is read */
    char line[160];                                      /* e.g. "disable detector F3-S1 3600s" */
    char user[16 + REMOTE_ID_MAX + 4 * REMOTE_USER_MAX]; /* "uplink:<uplink id>:<user>" */
    int64_t issued_ms, expires_ms;                       /* wall clock, ms since the epoch */
};

struct remote;

/*
 * A command checker that remembers up to replay_capacity accepted ids per
 * uplink. NULL (errno EINVAL) if replay_capacity is 0. Free with remote_free.
 */
struct remote *remote_new(size_t replay_capacity);
/* Free r and everything it remembers; NULL is fine. */
void remote_free(struct remote *r);

/*
 * Check the command message payload (len bytes, need not be terminated)
 * received on uplink uplink_id, which may give the commands in allowed_mask
 * (CMDSET_BIT set), at wall time now_wall_ms. Returns REMOTE_OK with out
 * filled, or another REMOTE_* with a sentence for people in reason; out->id
 * is then the message's id if it could be read, for the response. A message
 * is valid from "issued" - REMOTE_SKEW_MS up to and including "expires".
 */
int remote_parse(struct remote *r, const char *uplink_id, unsigned allowed_mask,
                 const char *payload, size_t len, int64_t now_wall_ms, struct remote_cmd *out,
                 char *reason, size_t reasonlen);

/* The response reason code of a remote_parse result ("malformed", ...); NULL for REMOTE_OK. */
const char *remote_reason_code(int result);

/*
 * The response message, a string the caller frees. id NULL or "" (or not a
 * valid id) gives "id": null. status is "done", "rejected" or "failed";
 * reason_code is NULL for "done", else e.g. "malformed", "invalid_target".
 * detail may be NULL. state_json is NULL, or for the state command the JSON
 * object of command_execute's status reply, with or without its "ok " prefix;
 * when it is not a JSON object the response says "failed" with reason
 * "state_unavailable" rather than claim a state it cannot give. NULL (errno
 * EINVAL) if status is not one of the three.
 */
char *remote_response(const struct cfg *cfg, const char *id, const char *status,
                      const char *reason_code, const char *detail, int64_t now_wall_ms,
                      const char *state_json);

#endif
