/*
 * The simulated building's state: for every device of the site config a
 * register image laid out by its profile, and for every detector the value
 * it shows (baseline, set point, ramp, noise). Commands from scenarios and the
 * control socket change it; bld_tick advances it in simulated time.
 */
#ifndef FIREGW_SIM_BUILDING_H
#define FIREGW_SIM_BUILDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <modbus.h>

#include "cfg.h"
#include "scenario.h"

struct bld;

/*
 * Build the register images for every device of cfg (which must outlive the
 * result). seed makes baselines and noise repeatable. NULL with err on failure.
 */
struct bld *bld_new(const struct cfg *cfg, uint64_t seed, char *err, size_t errlen);
void bld_free(struct bld *b);

/*
 * Check that a command's detector, device, point, bit or bus exists (and that
 * the fault fits the bus type). 0, or -1 with err.
 */
int bld_check(const struct bld *b, const struct scn_cmd *cmd, char *err, size_t errlen);
/*
 * Apply a building command (not end, loop, status or quit; stall, unplug and
 * plug belong to the server and change nothing here) at simulated time
 * now_ms. 0, or -1 with the reason in err and nothing changed.
 */
int bld_apply(struct bld *b, const struct scn_cmd *cmd, int64_t now_ms, char *err, size_t errlen);
/* Advance ramps, noise and the LifeCheck counters to simulated time now_ms. */
void bld_tick(struct bld *b, int64_t now_ms);

/*
 * The registers that answer for unit on bus (index into cfg.buses), or NULL
 * when no device has that unit or the device is silent. Owned by b.
 */
modbus_mapping_t *bld_registers(struct bld *b, size_t bus, int unit);

/*
 * How unit on bus answers: SCN_REPLY_NORMAL unless a "reply" command set a
 * fault; *code is the exception code for SCN_REPLY_EXCEPTION.
 */
enum scn_reply bld_reply(const struct bld *b, size_t bus, int unit, int *code);

/* Write the detectors' and devices' state as JSON members ("key":value,...) to out. */
void bld_status(const struct bld *b, FILE *out);

#endif
