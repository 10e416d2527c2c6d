/*
 * Wrong answers on the wire, on purpose: a device of the simulated building
 * that answers with garbage, with the wrong byte count, with a bad CRC or
 * with a Modbus exception (the scenario command "reply"), so that the
 * gateway's handling of each is tested against real frames.
 */
#ifndef FIREGW_SIM_WIRE_H
#define FIREGW_SIM_WIRE_H

#include <stdbool.h>

#include <modbus.h>

#include "scenario.h"

/*
 * Answer the request req (len bytes, as modbus_receive gave it) the way mode
 * says, on ctx's current socket: the reply libmodbus would send from map,
 * spoiled, or an exception with code. rtu tells the framing. 0, or -1 with
 * errno when nothing could be sent.
 */
int wire_reply(modbus_t *ctx, bool rtu, enum scn_reply mode, int code, const uint8_t *req, int len,
               modbus_mapping_t *map);

/* The Modbus RTU CRC of n bytes (sent low byte first). */
uint16_t wire_crc16(const uint8_t *p, size_t n);

#endif
