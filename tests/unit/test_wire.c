/*
 * Unit tests for sensors/sim/wire.c, the simulator's spoiled replies: each
 * mode is sent through a socketpair and the frame that comes out is checked
 * byte by byte (RTU CRC, byte count, MBAP length, exception code), so the
 * fault-injection tests know what the gateway really receives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <modbus.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

struct fx {
    modbus_t *ctx;
    modbus_mapping_t *map;
    int sp[2];
    bool rtu;
};

static int setup(struct fx *f, bool rtu)
{
    f->rtu = rtu;
    f->ctx = rtu ? modbus_new_rtu("/nonexistent/tty", 19200, 'N', 8, 1)
                 : modbus_new_tcp("127.0.0.1", 1502);
    f->map = modbus_mapping_new(0, 0, 10, 10);
    if (!f->ctx || !f->map || socketpair(AF_UNIX, SOCK_STREAM, 0, f->sp) < 0)
        return -1;
    for (int i = 0; i < 10; i++)
        f->map->tab_input_registers[i] = (uint16_t)(0x0100 + i);
    modbus_set_slave(f->ctx, 7);
    modbus_set_socket(f->ctx, f->sp[0]);
    return 0;
}

static void teardown(struct fx *f)
{
    close(f->sp[0]);
    close(f->sp[1]);
    modbus_mapping_free(f->map);
    modbus_free(f->ctx);
}

/* A read of 4 input registers at 2 from unit 7, framed as modbus_receive returns it. */
static int request(const struct fx *f, uint8_t *req)
{
    if (f->rtu) {
        const uint8_t r[] = {7, 4, 0, 2, 0, 4};
        memcpy(req, r, sizeof(r));
        uint16_t crc = wire_crc16(req, 6);
        req[6] = (uint8_t)crc;
        req[7] = (uint8_t)(crc >> 8);
        return 8;
    }
    const uint8_t r[] = {0x12, 0x34, 0, 0, 0, 6, 7, 4, 0, 2, 0, 4};
    memcpy(req, r, sizeof(r));
    return (int)sizeof(r);
}

static size_t answer(struct fx *f, enum scn_reply mode, int code, uint8_t *out)
{
    uint8_t req[16];
    int len = request(f, req);
    assert_int_equal(wire_reply(f->ctx, f->rtu, mode, code, req, len, f->map) < 0, 0);
    ssize_t n = recv(f->sp[1], out, 300, MSG_DONTWAIT);
    assert_true(n > 0);
    return (size_t)n;
}

static bool crc_ok(const uint8_t *p, size_t n)
{
    uint16_t crc = wire_crc16(p, n - 2);
    return p[n - 2] == (uint8_t)crc && p[n - 1] == (uint8_t)(crc >> 8);
}

static void crc_matches_the_modbus_reference(void **state)
{
    (void)state;
    /* The specification's example: 01 03 00 00 00 0A has CRC C5 CD (low byte first). */
    const uint8_t frame[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x0A};
    assert_int_equal(wire_crc16(frame, sizeof(frame)), 0xCDC5);
}

static void rtu_modes(void **state)
{
    (void)state;
    struct fx f;
    uint8_t out[300];
    assert_int_equal(setup(&f, true), 0);

    size_t n = answer(&f, SCN_REPLY_NORMAL, 0, out);
    assert_int_equal(n, 3 + 8 + 2);
    assert_int_equal(out[2], 8);
    assert_int_equal(out[3] << 8 | out[4], 0x0102);
    assert_true(crc_ok(out, n));

    n = answer(&f, SCN_REPLY_CRC, 0, out);
    assert_int_equal(n, 13);
    assert_int_equal(out[3] << 8 | out[4], 0x0102);
    assert_false(crc_ok(out, n));

    n = answer(&f, SCN_REPLY_SHORT, 0, out);
    assert_int_equal(n, 11);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[1], 4);
    assert_int_equal(out[2], 6); /* three registers for the four asked */
    assert_true(crc_ok(out, n));

    n = answer(&f, SCN_REPLY_EXCEPTION, 4, out);
    assert_int_equal(n, 5);
    assert_int_equal(out[1], 0x84);
    assert_int_equal(out[2], 4);
    assert_true(crc_ok(out, n));

    for (int i = 0; i < 50; i++) {
        n = answer(&f, SCN_REPLY_GARBAGE, 0, out);
        assert_true(n >= 5 && n <= 16);
        assert_int_equal(out[0], 7);
        assert_false(crc_ok(out, n));
    }
    teardown(&f);
}

static void tcp_modes(void **state)
{
    (void)state;
    struct fx f;
    uint8_t out[300];
    assert_int_equal(setup(&f, false), 0);

    size_t n = answer(&f, SCN_REPLY_NORMAL, 0, out);
    assert_int_equal(n, 9 + 8);
    assert_int_equal(out[5], 3 + 8); /* MBAP length: unit, function, count, data */

    n = answer(&f, SCN_REPLY_SHORT, 0, out);
    assert_int_equal(n, 9 + 6);
    assert_int_equal(out[0] << 8 | out[1], 0x1234);
    assert_int_equal(out[5], 3 + 6);
    assert_int_equal(out[8], 6);

    n = answer(&f, SCN_REPLY_EXCEPTION, 6, out);
    assert_int_equal(n, 9);
    assert_int_equal(out[7], 0x84);
    assert_int_equal(out[8], 6);

    for (int i = 0; i < 50; i++) {
        n = answer(&f, SCN_REPLY_GARBAGE, 0, out);
        assert_true(n >= 5 && n <= 16);
        /* Never the request's transaction: it cannot pass for the answer. */
        assert_false(out[0] == 0x12 && out[1] == 0x34);
    }
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc_matches_the_modbus_reference),
        cmocka_unit_test(rtu_modes),
        cmocka_unit_test(tcp_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
