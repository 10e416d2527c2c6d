/*
 * The simulator's Modbus side: a loopback TCP listener per TCP bus and a
 * pseudo-terminal behind the configured device path per RTU bus, answering
 * from the building's registers by unit id. Driven by the caller's poll loop.
 */
#ifndef FIREGW_SIM_SERVER_H
#define FIREGW_SIM_SERVER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "building.h"
#include "cfg.h"
#include "scenario.h"

struct srv;

/*
 * Open every bus of cfg: TCP buses listen on their loopback host:port (any
 * other host is refused), RTU buses get a pty linked from their device path
 * (which must be absent or a symlink). rtu_wire_time paces the RTU buses at
 * the wire time of their baud rate and framing. NULL with err on failure,
 * nothing left behind. cfg and b must outlive the result.
 */
struct srv *srv_new(const struct cfg *cfg, struct bld *b, bool rtu_wire_time, char *err,
                    size_t errlen);
/* Close everything and remove the RTU symlinks. NULL is fine. */
void srv_free(struct srv *s);

/* Fill up to max pollfds for the next poll; returns how many. */
size_t srv_pollfds(struct srv *s, struct pollfd *fds, size_t max);
/* Serve what the last poll reported on the n fds srv_pollfds gave; now is monotonic ms. */
void srv_handle(struct srv *s, const struct pollfd *fds, size_t n, int64_t now);
/* Microseconds until srv_handle must run even without events (-1: no deadline). */
int64_t srv_timeout_us(const struct srv *s);

/*
 * A fault of a whole line, cmd->target naming the bus: stall on|off (the bus
 * stops reading requests, then answers what piled up), unplug and plug (an
 * RTU bus's pty and link go away, then come back at the same path, to
 * another pty). 0, or -1 with err.
 */
int srv_line(struct srv *s, const struct scn_cmd *cmd, char *err, size_t errlen);

/* Write the buses' state as a JSON member ("buses":{...}) to out. */
void srv_status(const struct srv *s, FILE *out);

#endif
