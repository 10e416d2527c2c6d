/*
 * Spoiled replies. The right reply is built by libmodbus into a socketpair of
 * this module (the simulator is single-threaded, so one pair serves every
 * bus), taken back, spoiled, and written where libmodbus would have written
 * it; exceptions are libmodbus's own. Garbage is pseudo-random but can never
 * pass for a reply: its RTU CRC is wrong on purpose and its TCP transaction
 * id is not the request's.
 */
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ADU 300
#define RTU_HEADER 1 /* unit */
#define TCP_HEADER 7 /* transaction, protocol, length, unit */

static int tap[2] = {-1, -1};
static uint64_t garbage_state = 0x243F6A8885A308D3ull;

uint16_t wire_crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

static void put_crc(uint8_t *frame, size_t n_without_crc)
{
    uint16_t crc = wire_crc16(frame, n_without_crc);
    frame[n_without_crc] = (uint8_t)(crc & 0xFF);
    frame[n_without_crc + 1] = (uint8_t)(crc >> 8);
}

/* splitmix64, as for the building's noise. */
static uint64_t next_garbage(void)
{
    uint64_t z = (garbage_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t garbage(bool rtu, const uint8_t *req, uint8_t *out)
{
    size_t n = 5 + next_garbage() % 12;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)next_garbage();
    if (rtu) {
        out[0] = req[0];
        put_crc(out, n - 2);
        out[n - 1] ^= 0x5A;
    } else {
        out[0] = req[0] ^ 0xFF;
        out[1] = req[1] ^ 0xFF;
    }
    return n;
}

/* The reply libmodbus would send from map, captured instead of sent. */
static int capture(modbus_t *ctx, const uint8_t *req, int len, modbus_mapping_t *map, uint8_t *out,
                   size_t cap, size_t *n)
{
    if (tap[0] < 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, tap) < 0)
        return -1;
    int fd = modbus_get_socket(ctx);
    modbus_set_socket(ctx, tap[0]);
    int rc = modbus_reply(ctx, req, len, map);
    int saved = errno;
    modbus_set_socket(ctx, fd);
    ssize_t got = recv(tap[1], out, cap, 0);
    uint8_t junk[64];
    while (recv(tap[1], junk, sizeof(junk), 0) > 0) {
    }
    if (rc < 0 || got <= 0) {
        errno = rc < 0 ? saved : EIO;
        return -1;
    }
    *n = (size_t)got;
    return 0;
}

/* Two data bytes fewer than the byte count promised, in an otherwise proper frame. */
static size_t shorten(bool rtu, uint8_t *f, size_t n)
{
    size_t h = rtu ? RTU_HEADER : TCP_HEADER;
    size_t tail = rtu ? 2 : 0;
    if (n < h + 2 + tail || (f[h] != 3 && f[h] != 4) || f[h + 1] < 2)
        return n; /* an exception or another function: nothing to cut */
    f[h + 1] = (uint8_t)(f[h + 1] - 2);
    n -= 2;
    if (rtu) {
        put_crc(f, n - 2);
    } else {
        unsigned mbap = (unsigned)(f[4] << 8 | f[5]) - 2;
        f[4] = (uint8_t)(mbap >> 8);
        f[5] = (uint8_t)mbap;
    }
    return n;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int wire_reply(modbus_t *ctx, bool rtu, enum scn_reply mode, int code, const uint8_t *req, int len,
               modbus_mapping_t *map)
{
    uint8_t f[MAX_ADU];
    size_t n = 0;
    switch (mode) {
    case SCN_REPLY_NORMAL:
        return modbus_reply(ctx, req, len, map);
    case SCN_REPLY_EXCEPTION:
        return modbus_reply_exception(ctx, req, (unsigned)code);
    case SCN_REPLY_GARBAGE:
        n = garbage(rtu, req, f);
        break;
    case SCN_REPLY_SHORT:
    case SCN_REPLY_CRC:
        if (capture(ctx, req, len, map, f, sizeof(f), &n) < 0)
            return -1;
        if (mode == SCN_REPLY_SHORT)
            n = shorten(rtu, f, n);
        else if (rtu && n > 0)
            f[n - 1] ^= 0xFF;
        break;
    }
    return send_all(modbus_get_socket(ctx), f, n);
}
