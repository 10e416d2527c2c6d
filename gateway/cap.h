/*
 * OASIS CAP 1.2 (Common Alerting Protocol) rendering of fire alarms, for
 * receiving centres that feed public alerting systems (docs/cap.md). Pure
 * functions from the model and one event to an XML document; the delivery
 * decides which uplinks get it and stores it in the outbox like the event.
 */
#ifndef FIREGW_CAP_H
#define FIREGW_CAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "event.h"

/* Length of a CAP time, "2026-11-23T12:04:03+07:00", with its terminating NUL. */
#define CAP_TIME_LEN 26

/* Whether ev has a CAP rendering: fire_alarm, fire_confirmed and test_alarm do. */
bool cap_wanted(const struct event *ev);

/*
 * The CAP 1.2 <alert> document of ev (UTF-8 XML with its declaration), status
 * Test for every test event and Actual only for a real fire alarm. Caller
 * frees. NULL when ev has no CAP rendering (cap_wanted is false).
 */
char *cap_alert(const struct cfg *cfg, const struct event *ev);

/*
 * wall_ms (milliseconds since the epoch) as CAP's dateTime in Vietnam's time
 * (Asia/Ho_Chi_Minh, UTC+07:00 all year): whole seconds, explicit offset, e.g.
 * "2026-11-23T12:04:03+07:00". buf holds at least CAP_TIME_LEN bytes.
 */
void cap_format_time(int64_t wall_ms, char *buf, size_t len);

#endif
