/*
 * Unit tests for the bus poller against a real libmodbus TCP server on
 * 127.0.0.1, run in a thread of this program: decoded samples, merged
 * requests, a silent unit reported down and backed off while its neighbours
 * keep their interval, a server that goes away and comes back, a refused
 * first connection, and a prompt stop; probes run by a poller between its
 * cycles (reads, a scan that must not starve polling, cancel, stop, limits)
 * and on a link of their own; pipelined polling (max_in_flight): several
 * requests really in flight, every device's own values, faulty devices
 * reported exactly as one request at a time reports them, late replies never
 * taken for another's, a hang-up mid-window. Every wait is bounded in time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus.h"
#include "log.h"
#include "util.h"

#define DEAD_UNIT 9
#define MAX_LOG 4096

struct req_log {
    uint8_t unit, fc;
    uint16_t addr, count;
    int64_t at_ms;
};

/* How the test server answers a unit: only with answer[unit] set and a map. */
enum unit_mode {
    MODE_NORMAL,    /* its registers */
    MODE_EXCEPTION, /* exception 4, server failure */
    MODE_SHORT,     /* a well-formed reply with one register fewer than asked */
    MODE_LATE,      /* its registers, but LATE_MS later, answering others meanwhile */
    MODE_HANGUP,    /* the server closes the connection when it reads the request */
};

#define LATE_MS 700
#define MAX_LATE 64
#define READ_REQ_LEN 12 /* a Modbus TCP read request: MBAP header, function, address, count */

struct late_reply {
    int64_t due;
    uint8_t buf[MODBUS_TCP_MAX_ADU_LENGTH];
    size_t len;
};

/* A Modbus TCP server with one register map per unit id; a unit without a map gets no answer. */
struct server {
    int port;
    pthread_t thread;
    atomic_bool stop;
    int listen_fd;
    int client_fd;
    modbus_t *ctx;
    pthread_mutex_t lock; /* maps, answer, mode, log and the late replies */
    modbus_mapping_t *maps[256];
    bool answer[256];
    enum unit_mode mode[256];
    struct req_log log[MAX_LOG];
    size_t nlog;
    int max_waiting; /* most requests found waiting at once, the one just read included */
    struct late_reply late[MAX_LATE];
    size_t nlate;
    size_t late_sent;
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The reply to read request req with the unit's registers, nregs of them; its length. */
static size_t build_reply(struct server *s, const uint8_t *req, unsigned nregs, uint8_t *out)
{
    const modbus_mapping_t *map = s->maps[req[6]];
    unsigned addr = (unsigned)(req[8] << 8 | req[9]);
    const uint16_t *tab =
        req[7] == MODBUS_FC_READ_INPUT_REGISTERS ? map->tab_input_registers : map->tab_registers;
    memcpy(out, req, 4); /* transaction and protocol ids */
    out[4] = 0;
    out[5] = (uint8_t)(3 + 2 * nregs);
    out[6] = req[6];
    out[7] = req[7];
    out[8] = (uint8_t)(2 * nregs);
    for (unsigned i = 0; i < nregs; i++) {
        out[9 + 2 * i] = (uint8_t)(tab[addr + i] >> 8);
        out[10 + 2 * i] = (uint8_t)tab[addr + i];
    }
    return 9 + 2 * (size_t)nregs;
}

/* Answer one request as the unit's mode says. True when the connection is to be closed. */
static bool handle(struct server *s, uint8_t *req, int len)
{
    uint8_t unit = req[6];
    unsigned count = (unsigned)(req[10] << 8 | req[11]);
    bool hangup = false;
    uint8_t buf[MODBUS_TCP_MAX_ADU_LENGTH];
    pthread_mutex_lock(&s->lock);
    if (s->nlog < MAX_LOG)
        s->log[s->nlog++] = (struct req_log){unit, req[7], (uint16_t)(req[8] << 8 | req[9]),
                                             (uint16_t)count, mono_ms()};
    if (s->answer[unit] && s->maps[unit]) {
        switch (s->mode[unit]) {
        case MODE_NORMAL:
            modbus_reply(s->ctx, req, len, s->maps[unit]);
            break;
        case MODE_EXCEPTION:
            modbus_reply_exception(s->ctx, req, MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE);
            break;
        case MODE_SHORT: {
            size_t n = build_reply(s, req, count - 1, buf);
            if (send(s->client_fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
                hangup = true;
            break;
        }
        case MODE_LATE:
            if (s->nlate < MAX_LATE) {
                struct late_reply *l = &s->late[s->nlate++];
                l->len = build_reply(s, req, count, l->buf);
                l->due = mono_ms() + LATE_MS;
            }
            break;
        case MODE_HANGUP:
            hangup = true;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return hangup;
}

/* Send the late replies that are due, oldest first. */
static void send_late(struct server *s)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&s->lock);
    size_t kept = 0;
    for (size_t i = 0; i < s->nlate; i++) {
        struct late_reply *l = &s->late[i];
        if (l->due > now)
            s->late[kept++] = *l;
        else if (s->client_fd >= 0 && send(s->client_fd, l->buf, l->len, MSG_NOSIGNAL) > 0)
            s->late_sent++;
    }
    s->nlate = kept;
    pthread_mutex_unlock(&s->lock);
}

/* One request read from fd: note how many were waiting (it and those queued behind it). */
static void note_waiting(struct server *s, int fd)
{
    int queued = 0;
    if (ioctl(fd, FIONREAD, &queued) < 0)
        queued = 0;
    pthread_mutex_lock(&s->lock);
    int waiting = 1 + queued / READ_REQ_LEN;
    if (waiting > s->max_waiting)
        s->max_waiting = waiting;
    pthread_mutex_unlock(&s->lock);
}

static void *serve(void *arg)
{
    struct server *s = arg;
    uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!atomic_load(&s->stop)) {
        struct pollfd fds[2] = {{s->listen_fd, POLLIN, 0}, {s->client_fd, POLLIN, 0}};
        int rc = poll(fds, s->client_fd >= 0 ? 2 : 1, s->nlate ? 2 : 20);
        send_late(s);
        if (rc <= 0)
            continue;
        if (fds[0].revents & POLLIN) {
            int fd = accept(s->listen_fd, NULL, NULL);
            if (fd >= 0) {
                if (s->client_fd >= 0)
                    close(s->client_fd);
                s->client_fd = fd;
                pthread_mutex_lock(&s->lock);
                s->nlate = 0; /* they were the old connection's */
                pthread_mutex_unlock(&s->lock);
            }
            continue;
        }
        if (s->client_fd >= 0 && fds[1].revents) {
            modbus_set_socket(s->ctx, s->client_fd);
            rc = modbus_receive(s->ctx, req);
            if (rc > 0)
                note_waiting(s, s->client_fd);
            if (rc > 0 && handle(s, req, rc)) {
                close(s->client_fd);
                s->client_fd = -1;
            } else if (rc < 0) {
                close(s->client_fd);
                s->client_fd = -1;
            }
        }
    }
    return NULL;
}

static void server_start(struct server *s)
{
    char host[] = "127.0.0.1";
    s->ctx = modbus_new_tcp(host, s->port);
    assert_non_null(s->ctx);
    s->listen_fd = modbus_tcp_listen(s->ctx, 4);
    assert_true(s->listen_fd >= 0);
    s->client_fd = -1;
    s->nlate = 0;
    atomic_store(&s->stop, false);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

/* Stop serving and close every socket, as if the device's process died. */
static void server_kill(struct server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    if (s->client_fd >= 0)
        close(s->client_fd);
    close(s->listen_fd);
    modbus_free(s->ctx);
    s->ctx = NULL;
}

static void set_reg(struct server *s, int unit, bool input, int addr, uint16_t v)
{
    pthread_mutex_lock(&s->lock);
    (input ? s->maps[unit]->tab_input_registers : s->maps[unit]->tab_registers)[addr] = v;
    pthread_mutex_unlock(&s->lock);
}

static void set_answer(struct server *s, int unit, bool on)
{
    pthread_mutex_lock(&s->lock);
    s->answer[unit] = on;
    pthread_mutex_unlock(&s->lock);
}

static void set_mode(struct server *s, int unit, enum unit_mode mode)
{
    pthread_mutex_lock(&s->lock);
    s->mode[unit] = mode;
    pthread_mutex_unlock(&s->lock);
}

/* The most requests the server found waiting at once since the last call. */
static int take_max_waiting(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->max_waiting;
    s->max_waiting = 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static size_t count_reqs(struct server *s, int unit)
{
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nlog; i++)
        n += s->log[i].unit == unit;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* The site under test, built by hand so this test needs no config parser. */
struct site {
    struct profile smoke, panel, heat;
    struct profile_point smoke_pts[3], panel_pts[4], heat_pts[2];
    struct cfg_bus bus;
    struct cfg_device devices[4];
    struct cfg_detector detectors[5];
    struct cfg cfg;
};

static struct profile_point pt(const char *name, enum point_role role, enum reg_table table,
                               uint16_t addr, enum reg_type type)
{
    struct profile_point p = {0};
    p.name = (char *)name;
    p.role = role;
    p.table = table;
    p.address = addr;
    p.type = type;
    p.scale = 1;
    return p;
}

static void site_init(struct site *s, int port, bool with_dead)
{
    memset(s, 0, sizeof(*s));
    /* smoke: obscuration in 0.01 %/m at input 0, status bits at input 2 */
    s->smoke_pts[0] = pt("obscuration", ROLE_VALUE, REG_INPUT, 0, RT_UINT16);
    s->smoke_pts[0].scale = 0.01;
    s->smoke_pts[0].has_range = true;
    s->smoke_pts[0].max = 20;
    strcpy(s->smoke_pts[0].unit, "%/m");
    s->smoke_pts[1] = pt("alarm", ROLE_ALARM, REG_INPUT, 2, RT_BIT);
    s->smoke_pts[2] = pt("fault", ROLE_FAULT, REG_INPUT, 2, RT_BIT);
    s->smoke_pts[2].bit = 1;
    s->smoke = (struct profile){.name = "test-smoke",
                                .kind = PROFILE_SMOKE,
                                .channels = 1,
                                .points = s->smoke_pts,
                                .npoints = 3};
    /* panel: 32-bit LifeCheck at holding 0, one status word per zone from holding 10 */
    s->panel_pts[0] = pt("lifecheck", ROLE_LIFECHECK, REG_HOLDING, 0, RT_UINT32);
    s->panel_pts[1] = pt("zone_alarm", ROLE_ALARM, REG_HOLDING, 10, RT_BIT);
    s->panel_pts[2] = pt("zone_fault", ROLE_FAULT, REG_HOLDING, 10, RT_BIT);
    s->panel_pts[2].bit = 1;
    s->panel_pts[3] = pt("zone_disabled", ROLE_DISABLED, REG_HOLDING, 10, RT_BIT);
    s->panel_pts[3].bit = 3;
    for (int i = 1; i < 4; i++)
        s->panel_pts[i].per_channel = true;
    s->panel = (struct profile){.name = "test-panel",
                                .kind = PROFILE_PANEL,
                                .channels = 8,
                                .channel_stride = 1,
                                .points = s->panel_pts,
                                .npoints = 4};
    /* heat: float temperature, word-swapped, at input 100 */
    s->heat_pts[0] = pt("temperature", ROLE_VALUE, REG_INPUT, 100, RT_FLOAT32);
    s->heat_pts[0].order = WO_CDAB;
    s->heat_pts[0].has_range = true;
    s->heat_pts[0].min = -20;
    s->heat_pts[0].max = 150;
    strcpy(s->heat_pts[0].unit, "degC");
    s->heat = (struct profile){.name = "test-heat",
                               .kind = PROFILE_HEAT,
                               .channels = 1,
                               .points = s->heat_pts,
                               .npoints = 1};

    s->bus = (struct cfg_bus){.id = "tcp-test",
                              .type = BUS_TCP,
                              .host = "127.0.0.1",
                              .port = port,
                              .poll_interval_ms = 100,
                              .timeout_ms = 100,
                              .retries = 1,
                              .backoff_min_ms = 600,
                              .backoff_max_ms = 1200,
                              .reconnect_min_ms = 50,
                              .reconnect_max_ms = 200,
                              .max_gap = 7};
    const struct {
        const char *id;
        int unit;
        const struct profile *prof;
    } devs[] = {{"smoke-1", 1, &s->smoke},
                {"panel", 100, &s->panel},
                {"heat-3", 3, &s->heat},
                {"silent-9", DEAD_UNIT, &s->smoke}};
    for (size_t i = 0; i < 4; i++)
        s->devices[i] = (struct cfg_device){.id = (char *)devs[i].id,
                                            .unit = devs[i].unit,
                                            .profile = devs[i].prof,
                                            .timeout_ms = 100,
                                            .retries = 1,
                                            .fail_after = 2};
    const struct {
        const char *id;
        size_t device;
        int channel;
    } dets[] = {{"S1", 0, 1}, {"Z1", 1, 1}, {"Z3", 1, 3}, {"H1", 2, 1}, {"S9", 3, 1}};
    for (size_t i = 0; i < 5; i++)
        s->detectors[i] = (struct cfg_detector){
            .id = (char *)dets[i].id, .device = dets[i].device, .channel = dets[i].channel};
    s->cfg.buses = &s->bus;
    s->cfg.nbuses = 1;
    s->cfg.devices = s->devices;
    s->cfg.ndevices = with_dead ? 4 : 3;
    s->cfg.detectors = s->detectors;
    s->cfg.ndetectors = with_dead ? 5 : 4;
}

/*
 * A bus of many devices for the pipelining tests: NDEV devices from unit
 * FIRST_UNIT on, every fourth a panel (two requests: LifeCheck, zone status),
 * the others smoke detectors (one request), each with values of its own, so
 * that a reply taken for another device's shows.
 */
#define NDEV 12
#define FIRST_UNIT 11

struct many {
    struct site base; /* profiles and bus */
    struct cfg_device devices[NDEV];
    struct cfg_detector detectors[NDEV];
    char ids[NDEV][2][16];
};

static bool is_panel(size_t dev)
{
    return dev % 4 == 3;
}

static int unit_of(size_t dev)
{
    return FIRST_UNIT + (int)dev;
}

struct fixture {
    struct server srv;
    struct site site;
    struct many many;
    struct queue *q;
    struct bus_poller *bus;
};

static void server_setup(struct server *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->port = free_port();
    int units[] = {1, 100, 3, DEAD_UNIT};
    for (size_t i = 0; i < ARRAY_LEN(units); i++) {
        s->maps[units[i]] = modbus_mapping_new(0, 0, 200, 200);
        assert_non_null(s->maps[units[i]]);
        s->answer[units[i]] = units[i] != DEAD_UNIT;
    }
    /* smoke: 1.50 %/m, alarm bit set, fault bit clear */
    s->maps[1]->tab_input_registers[0] = 150;
    s->maps[1]->tab_input_registers[2] = 0x0001;
    s->maps[DEAD_UNIT]->tab_input_registers[0] = 42;
    /* panel: LifeCheck 0x00010002; zone 1 alarm; zone 3 fault and disabled; zone 2 unused */
    s->maps[100]->tab_registers[0] = 0x0001;
    s->maps[100]->tab_registers[1] = 0x0002;
    s->maps[100]->tab_registers[10] = 0x0001;
    s->maps[100]->tab_registers[11] = 0xFFFF;
    s->maps[100]->tab_registers[12] = 0x000A;
    /* heat: 21.5 degC = 0x41AC0000, low word first */
    s->maps[3]->tab_input_registers[100] = 0x0000;
    s->maps[3]->tab_input_registers[101] = 0x41AC;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    server_setup(&f->srv);
    f->q = queue_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    bus_stop(f->bus);
    if (f->srv.ctx)
        server_kill(&f->srv);
    for (size_t i = 0; i < 256; i++)
        modbus_mapping_free(f->srv.maps[i]);
    pthread_mutex_destroy(&f->srv.lock);
    queue_free(f->q, bus_msg_free);
    free(f);
    return 0;
}

static void start_bus(struct fixture *f)
{
    char err[256] = "";
    f->bus = bus_start(&f->site.cfg, 0, f->q, err, sizeof(err));
    if (!f->bus)
        fail_msg("bus_start: %s", err);
}

/* Wait for a message of type (and device, unless -1); others are dropped. NULL on timeout. */
static struct bus_msg *wait_for(struct queue *q, enum bus_msg_type type, long device,
                                int64_t timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (int64_t now = mono_ms(); now < deadline; now = mono_ms()) {
        struct bus_msg *m = queue_pop(q, deadline - now);
        if (!m)
            break;
        if (m->type == type && (device < 0 || m->device == (size_t)device))
            return m;
        bus_msg_free(m);
    }
    return NULL;
}

/*
 * Start the bus and return once device 0 has sent its first sample and the bus
 * has been reported up, which it is after its first whole cycle: it is being
 * polled, and the next bus state a test sees is a change.
 */
static void start_polling(struct fixture *f)
{
    start_bus(f);
    struct bus_msg *m = wait_for(f->q, BUS_MSG_SAMPLE, 0, 5000);
    assert_non_null(m);
    bus_msg_free(m);
    m = wait_for(f->q, BUS_MSG_BUS_STATE, -1, 5000);
    assert_non_null(m);
    assert_true(m->up);
    bus_msg_free(m);
}

static const struct reading *reading_of(const struct bus_msg *m, size_t det)
{
    for (size_t i = 0; i < m->sample.nreadings; i++)
        if (m->sample.readings[i].detector == det)
            return &m->sample.readings[i];
    fail_msg("no reading for detector %zu", det);
    return NULL;
}

static void test_samples_decoded(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    site_init(&f->site, f->srv.port, false);
    start_bus(f);

    struct bus_msg *m = wait_for(f->q, BUS_MSG_BUS_STATE, -1, 5000);
    assert_non_null(m);
    assert_true(m->up);
    assert_int_equal(m->bus, 0);
    bus_msg_free(m);

    m = wait_for(f->q, BUS_MSG_SAMPLE, 0, 5000);
    assert_non_null(m);
    assert_int_equal(m->sample.device, 0);
    assert_int_equal(m->sample.nreadings, 1);
    assert_true(m->t.mono_ms > 0 && m->t.wall_ms > 1600000000000);
    assert_true(m->sample.t.mono_ms == m->t.mono_ms);
    const struct reading *r = reading_of(m, 0);
    assert_true(r->has_value && r->value_ok);
    assert_true(r->value > 1.499 && r->value < 1.501);
    assert_int_equal(r->bits_present, ROLE_BIT(ROLE_ALARM) | ROLE_BIT(ROLE_FAULT));
    assert_int_equal(r->bits, ROLE_BIT(ROLE_ALARM));
    assert_false(m->sample.has_lifecheck);
    bus_msg_free(m);

    m = wait_for(f->q, BUS_MSG_SAMPLE, 1, 5000);
    assert_non_null(m);
    assert_int_equal(m->sample.nreadings, 2);
    assert_true(m->sample.has_lifecheck);
    assert_int_equal(m->sample.lifecheck, 0x00010002);
    r = reading_of(m, 1);
    assert_false(r->has_value);
    assert_int_equal(r->bits_present,
                     ROLE_BIT(ROLE_ALARM) | ROLE_BIT(ROLE_FAULT) | ROLE_BIT(ROLE_DISABLED));
    assert_int_equal(r->bits, ROLE_BIT(ROLE_ALARM));
    r = reading_of(m, 2);
    assert_int_equal(r->bits, ROLE_BIT(ROLE_FAULT) | ROLE_BIT(ROLE_DISABLED));
    bus_msg_free(m);

    m = wait_for(f->q, BUS_MSG_SAMPLE, 2, 5000);
    assert_non_null(m);
    r = reading_of(m, 3);
    assert_true(r->value_ok);
    assert_true(r->value == 21.5);
    bus_msg_free(m);

    /* an implausible value is reported as such, never as a reading */
    set_reg(&f->srv, 1, true, 0, 65535);
    bool seen = false;
    for (int i = 0; i < 50 && !seen; i++) {
        m = wait_for(f->q, BUS_MSG_SAMPLE, 0, 5000);
        assert_non_null(m);
        r = reading_of(m, 0);
        if (!r->value_ok) {
            assert_true(r->has_value);
            assert_string_equal(r->value_err, "obscuration 655.35 %/m outside 0..20");
            seen = true;
        }
        bus_msg_free(m);
    }
    assert_true(seen);

    /* only configured registers, in merged requests: one per device and table block */
    pthread_mutex_lock(&f->srv.lock);
    size_t n1 = 0, n100 = 0, n3 = 0;
    for (size_t i = 0; i < f->srv.nlog; i++) {
        const struct req_log *l = &f->srv.log[i];
        if (l->unit == 1) {
            n1++;
            assert_int_equal(l->fc, 4);
            assert_int_equal(l->addr, 0);
            assert_int_equal(l->count, 3);
        } else if (l->unit == 100) {
            n100++;
            assert_int_equal(l->fc, 3);
            assert_true((l->addr == 0 && l->count == 2) || (l->addr == 10 && l->count == 3));
        } else if (l->unit == 3) {
            n3++;
            assert_int_equal(l->fc, 4);
            assert_int_equal(l->addr, 100);
            assert_int_equal(l->count, 2);
        } else {
            fail_msg("request to unexpected unit %u", l->unit);
        }
    }
    pthread_mutex_unlock(&f->srv.lock);
    /* every poll: one request to each single-block device, two to the panel */
    assert_true(n1 >= 2);
    assert_true(n100 >= 2 * n1 - 2 && n100 <= 2 * n1 + 2);
    assert_true(n3 + 1 >= n1 && n3 <= n1 + 1);

    struct bus_stats st;
    bus_get_stats(f->bus, &st);
    assert_true(st.connected);
    assert_true(st.polls_ok >= 3 * (n1 - 1));
    assert_int_equal(st.polls_failed, 0);
    assert_true(st.requests >= n1 + n100 + n3 - 1);
}

static void test_silent_unit_backed_off(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    site_init(&f->site, f->srv.port, true);
    start_bus(f);

    struct bus_msg *m = wait_for(f->q, BUS_MSG_DEVICE_STATE, 3, 10000);
    assert_non_null(m);
    int64_t down_at = mono_ms();
    assert_false(m->up);
    assert_int_equal(m->device, 3);
    assert_non_null(strstr(m->why, "unit 9"));
    assert_non_null(strstr(m->why, "silent-9"));
    assert_non_null(strstr(m->why, modbus_strerror(ETIMEDOUT)));
    bus_msg_free(m);
    /* fail_after 2 polls, each one try plus one retry */
    assert_int_equal(count_reqs(&f->srv, DEAD_UNIT), 4);

    /* during the backoff the neighbours keep their 100 ms interval */
    int64_t last = 0, worst = 0;
    int samples = 0;
    while (mono_ms() - down_at < 400) {
        m = wait_for(f->q, BUS_MSG_SAMPLE, 0, 2000);
        assert_non_null(m);
        int64_t t = m->t.mono_ms;
        if (last && t - last > worst)
            worst = t - last;
        last = t;
        samples++;
        bus_msg_free(m);
    }
    assert_true(samples >= 3);
    assert_true(worst < 250);
    assert_int_equal(count_reqs(&f->srv, DEAD_UNIT), 4);

    /* the backoff expires: one more poll (2 tries), then twice the backoff */
    struct bus_stats st;
    int64_t deadline = mono_ms() + 5000;
    do {
        m = wait_for(f->q, BUS_MSG_SAMPLE, 0, 1000);
        bus_msg_free(m);
        bus_get_stats(f->bus, &st);
    } while (st.polls_failed < 4 && mono_ms() < deadline);
    assert_int_equal(st.polls_failed, 4);
    assert_int_equal(count_reqs(&f->srv, DEAD_UNIT), 8);
    pthread_mutex_lock(&f->srv.lock);
    int64_t t[8];
    size_t k = 0;
    for (size_t i = 0; i < f->srv.nlog && k < 8; i++)
        if (f->srv.log[i].unit == DEAD_UNIT)
            t[k++] = f->srv.log[i].at_ms;
    pthread_mutex_unlock(&f->srv.lock);
    int64_t first_gap = t[4] - t[3], second_gap = t[6] - t[5];
    print_message("backoff gaps: %lld ms, %lld ms\n", (long long)first_gap, (long long)second_gap);
    assert_true(first_gap >= 550 && first_gap < 2000);
    assert_true(second_gap >= 1150 && second_gap < 3000);

    /* it answers again: up, then its samples */
    set_answer(&f->srv, DEAD_UNIT, true);
    m = wait_for(f->q, BUS_MSG_DEVICE_STATE, 3, 5000);
    assert_non_null(m);
    assert_true(m->up);
    bus_msg_free(m);
    m = wait_for(f->q, BUS_MSG_SAMPLE, 3, 5000);
    assert_non_null(m);
    const struct reading *r = reading_of(m, 4);
    assert_true(r->value_ok);
    assert_true(r->value > 0.419 && r->value < 0.421);
    bus_msg_free(m);
}

static void test_server_goes_away_and_returns(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    site_init(&f->site, f->srv.port, false);
    start_polling(f);

    server_kill(&f->srv);
    struct bus_msg *m = wait_for(f->q, BUS_MSG_BUS_STATE, -1, 5000);
    assert_non_null(m);
    assert_false(m->up);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", f->srv.port);
    assert_non_null(strstr(m->why, endpoint));
    bus_msg_free(m);
    struct bus_stats st;
    bus_get_stats(f->bus, &st);
    assert_false(st.connected);
    /* reported once, although reconnecting keeps failing; no device is blamed */
    int64_t until = mono_ms() + 500;
    while (mono_ms() < until) {
        m = queue_pop(f->q, until - mono_ms());
        if (m) {
            assert_true(m->type == BUS_MSG_SAMPLE);
            bus_msg_free(m);
        }
    }

    server_start(&f->srv);
    m = wait_for(f->q, BUS_MSG_BUS_STATE, -1, 5000);
    assert_non_null(m);
    assert_true(m->up);
    bus_msg_free(m);
    m = wait_for(f->q, BUS_MSG_SAMPLE, 0, 5000);
    assert_non_null(m);
    assert_true(reading_of(m, 0)->value_ok);
    bus_msg_free(m);
    bus_get_stats(f->bus, &st);
    assert_true(st.connected);
    assert_int_equal(st.polls_failed, 0);
}

static void test_refused_then_stop_promptly(void **state)
{
    struct fixture *f = *state;
    site_init(&f->site, f->srv.port, false); /* nobody listens there */
    f->site.bus.reconnect_min_ms = 10000;
    f->site.bus.reconnect_max_ms = 10000;
    start_bus(f);
    struct bus_msg *m = wait_for(f->q, BUS_MSG_BUS_STATE, -1, 5000);
    assert_non_null(m);
    assert_false(m->up);
    assert_non_null(strstr(m->why, "cannot connect to 127.0.0.1:"));
    assert_non_null(strstr(m->why, modbus_strerror(ECONNREFUSED)));
    bus_msg_free(m);
    assert_null(queue_pop(f->q, 200));

    /* the poller is in its 10 s reconnect wait; stopping must not wait for it */
    int64_t t0 = mono_ms();
    bus_stop(f->bus);
    f->bus = NULL;
    assert_true(mono_ms() - t0 < 5000);
}

static void test_unreadable_status_is_a_fault(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    site_init(&f->site, f->srv.port, false);
    /* an alarm flag held in a whole register that may only be 0 or 1 */
    f->site.heat_pts[1] = pt("alarm_flag", ROLE_ALARM, REG_INPUT, 102, RT_UINT16);
    f->site.heat_pts[1].has_range = true;
    f->site.heat_pts[1].max = 1;
    f->site.heat.npoints = 2;
    set_reg(&f->srv, 3, true, 102, 1);
    start_bus(f);
    struct bus_msg *m = wait_for(f->q, BUS_MSG_SAMPLE, 2, 5000);
    assert_non_null(m);
    const struct reading *r = reading_of(m, 3);
    assert_int_equal(r->bits_present, ROLE_BIT(ROLE_ALARM));
    assert_int_equal(r->bits, ROLE_BIT(ROLE_ALARM));
    bus_msg_free(m);

    set_reg(&f->srv, 3, true, 102, 7);
    bool seen = false;
    for (int i = 0; i < 50 && !seen; i++) {
        m = wait_for(f->q, BUS_MSG_SAMPLE, 2, 5000);
        assert_non_null(m);
        r = reading_of(m, 3);
        if (!(r->bits & ROLE_BIT(ROLE_ALARM))) {
            assert_int_equal(r->bits_present, ROLE_BIT(ROLE_ALARM) | ROLE_BIT(ROLE_FAULT));
            assert_int_equal(r->bits, ROLE_BIT(ROLE_FAULT));
            assert_true(r->value_ok); /* the temperature itself is still good */
            seen = true;
        }
        bus_msg_free(m);
    }
    assert_true(seen);
}

static void test_start_errors(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    site_init(&f->site, f->srv.port, false);
    assert_null(bus_start(&f->site.cfg, 1, f->q, err, sizeof(err)));
    assert_non_null(strstr(err, "no bus 1"));
    /* a zone whose register would lie past 65535 is refused with the point named */
    f->site.panel_pts[1].address = 65530;
    f->site.detectors[2].channel = 8;
    err[0] = '\0';
    assert_null(bus_start(&f->site.cfg, 0, f->q, err, sizeof(err)));
    assert_non_null(strstr(err, "zone_alarm"));
    assert_non_null(strstr(err, "panel"));
    bus_stop(NULL);
    bus_msg_free(NULL);
}

/*
 * A peer that accepts a connection, reads one request and hangs up, forever;
 * or, with swallow, keeps the connection and never answers (a dead link).
 */
struct flapper {
    int fd;
    bool swallow;
    atomic_int accepts;
    atomic_bool stop;
    pthread_t thread;
};

static void *flap(void *arg)
{
    struct flapper *fl = arg;
    while (!atomic_load(&fl->stop)) {
        struct pollfd pfd = {.fd = fl->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(fl->fd, NULL, NULL);
        if (c < 0)
            continue;
        atomic_fetch_add(&fl->accepts, 1);
        char buf[256];
        struct pollfd cp = {.fd = c, .events = POLLIN};
        if (fl->swallow) {
            /* read and ignore until the client gives up on this connection */
            while (!atomic_load(&fl->stop) && poll(&cp, 1, 50) >= 0) {
                if ((cp.revents & (POLLIN | POLLHUP)) && read(c, buf, sizeof(buf)) <= 0)
                    break;
                if (poll(&pfd, 1, 0) > 0)
                    break; /* a new connection is waiting: this one was dropped */
            }
        } else if (poll(&cp, 1, 500) > 0 && read(c, buf, sizeof(buf)) < 0) {
            buf[0] = 0;
        }
        close(c);
    }
    return NULL;
}

static void flapper_start(struct flapper *fl, const struct sockaddr_in *a)
{
    int one = 1;
    setsockopt(fl->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fl->fd, (const struct sockaddr *)a, sizeof(*a)), 0);
    assert_int_equal(listen(fl->fd, 16), 0);
    assert_int_equal(pthread_create(&fl->thread, NULL, flap, fl), 0);
}

static void flapper_stop(struct flapper *fl)
{
    atomic_store(&fl->stop, true);
    pthread_join(fl->thread, NULL);
    close(fl->fd);
}

static void test_flapping_peer_is_backed_off(void **state)
{
    struct fixture *f = *state;
    struct flapper fl = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)f->srv.port)};
    flapper_start(&fl, &a);

    site_init(&f->site, f->srv.port, false);
    f->site.bus.reconnect_min_ms = 100;
    f->site.bus.reconnect_max_ms = 400;
    start_bus(f);
    /* 1.5 s: with 100, 200, 400, 400 ms waits that is about 6 connections, not thousands */
    int downs = 0, ups = 0;
    int64_t until = mono_ms() + 1500;
    for (int64_t now = mono_ms(); now < until; now = mono_ms()) {
        struct bus_msg *m = queue_pop(f->q, until - now);
        if (!m)
            continue;
        if (m->type == BUS_MSG_BUS_STATE)
            m->up ? ups++ : downs++;
        bus_msg_free(m);
    }
    bus_stop(f->bus);
    f->bus = NULL;
    flapper_stop(&fl);
    int accepts = atomic_load(&fl.accepts);
    assert_true(accepts >= 2);
    assert_true(accepts <= 12);
    /* never reported up (no poll ever succeeded), reported down once */
    assert_int_equal(ups, 0);
    assert_int_equal(downs, 1);
}

static void test_dead_link_is_reconnected_quietly(void **state)
{
    struct fixture *f = *state;
    struct flapper fl = {.fd = socket(AF_INET, SOCK_STREAM, 0), .swallow = true};
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)f->srv.port)};
    flapper_start(&fl, &a);

    site_init(&f->site, f->srv.port, false);
    f->site.bus.poll_interval_ms = 100;
    f->site.bus.reconnect_min_ms = 100;
    for (size_t i = 0; i < 3; i++) {
        f->site.devices[i].timeout_ms = 30;
        f->site.devices[i].retries = 0;
        f->site.devices[i].fail_after = 100; /* never backed off in this test */
    }
    start_bus(f);
    int downs = 0;
    int64_t until = mono_ms() + 2500;
    while (mono_ms() < until && atomic_load(&fl.accepts) < 2) {
        struct bus_msg *m = queue_pop(f->q, 50);
        if (m && m->type == BUS_MSG_BUS_STATE && !m->up)
            downs++;
        bus_msg_free(m);
    }
    bus_stop(f->bus);
    f->bus = NULL;
    flapper_stop(&fl);
    /* every request timed out: the connection was made anew, without a bus fault */
    assert_true(atomic_load(&fl.accepts) >= 2);
    assert_int_equal(downs, 0);
}

static struct bus_probe_reply *wait_reply(struct queue *q, int64_t timeout_ms)
{
    struct bus_probe_reply *r = queue_pop(q, timeout_ms);
    if (!r)
        fail_msg("no probe reply within %lld ms", (long long)timeout_ms);
    return r;
}

static void test_probe_read_on_running_poller(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    site_init(&f->site, f->srv.port, false);
    start_polling(f);

    struct queue *rq = queue_new();
    struct bus_probe_req req = {
        .kind = BUS_PROBE_READ, .id = 7, .unit = 3, .nblocks = 2, .timeout_ms = 100};
    req.blocks[0] = (struct bus_block){REG_INPUT, 100, 2};
    /* past the end of the unit's 200 registers: the device answers with an exception */
    req.blocks[1] = (struct bus_block){REG_HOLDING, 500, 1};
    char err[256] = "";
    assert_int_equal(bus_probe_submit(f->bus, &req, rq, err, sizeof(err)), 0);
    struct bus_probe_reply *r = wait_reply(rq, 5000);
    assert_int_equal(r->id, 7);
    assert_int_equal(r->kind, BUS_PROBE_READ);
    assert_int_equal(r->rc, 0);
    assert_string_equal(r->bus_id, "tcp-test");
    assert_int_equal(r->unit, 3);
    assert_int_equal(r->nblocks, 2);
    assert_int_equal(r->block_err[0], 0);
    assert_int_equal(r->regs[0][0], 0x0000);
    assert_int_equal(r->regs[0][1], 0x41AC);
    assert_int_equal(r->block_err[1], EMBXILADD);
    free(r);

    /* a unit that never answers: a timeout after 1 + retries tries, and no device fault */
    size_t before = count_reqs(&f->srv, 42);
    req = (struct bus_probe_req){
        .kind = BUS_PROBE_READ, .id = 8, .unit = 42, .nblocks = 1, .retries = 1, .timeout_ms = 50};
    req.blocks[0] = (struct bus_block){REG_INPUT, 0, 1};
    assert_int_equal(bus_probe_submit(f->bus, &req, rq, err, sizeof(err)), 0);
    r = wait_reply(rq, 5000);
    assert_int_equal(r->id, 8);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->block_err[0], ETIMEDOUT);
    assert_int_equal(count_reqs(&f->srv, 42) - before, 2);
    free(r);
    /* the probe's failures are its own: no device or bus was reported down; and each
     * answer woke the main loop */
    struct bus_msg *m;
    int wakes = 0;
    /* The second wake-up follows its answer: it may still be on its way. */
    int64_t until = mono_ms() + 5000;
    while (mono_ms() < until && (m = queue_pop(f->q, wakes < 2 ? 1000 : 0)) != NULL) {
        assert_int_not_equal(m->type, BUS_MSG_DEVICE_STATE);
        if (m->type == BUS_MSG_WAKE)
            wakes++;
        else
            assert_true(m->up);
        bus_msg_free(m);
    }
    assert_int_equal(wakes, 2);
    bus_stop(f->bus);
    f->bus = NULL;
    queue_free(rq, free);
}

static void test_scan_keeps_polling_on_time(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    site_init(&f->site, f->srv.port, false);
    start_polling(f);

    /* Steps of 40 ms (two tries: 100 ms with slack) never fit the ~100 ms between
     * cycles, so exactly one runs per cycle: each cycle is late by at most 40 ms. */
    struct queue *rq = queue_new();
    struct bus_probe_req req = {.kind = BUS_PROBE_SCAN,
                                .id = 1,
                                .from = 1,
                                .to = 12,
                                .timeout_ms = 40,
                                .scan_read = {REG_HOLDING, 0, 1}};
    char err[256] = "";
    assert_int_equal(bus_probe_submit(f->bus, &req, rq, err, sizeof(err)), 0);
    int64_t t0 = mono_ms(), last = 0, worst = 0;
    int samples = 0;
    struct bus_probe_reply *r = NULL;
    while (!r && mono_ms() - t0 < 10000) {
        struct bus_msg *m = queue_pop(f->q, 50);
        if (m && m->type == BUS_MSG_SAMPLE && m->device == 0) {
            if (last && m->t.mono_ms - last > worst)
                worst = m->t.mono_ms - last;
            last = m->t.mono_ms;
            samples++;
        }
        bus_msg_free(m);
        r = queue_pop(rq, 0);
    }
    assert_non_null(r);
    int64_t took = mono_ms() - t0;
    print_message("scan of 12 units: %lld ms, %d samples, worst gap %lld ms\n", (long long)took,
                  samples, (long long)worst);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->kind, BUS_PROBE_SCAN);
    assert_int_equal(r->unit_err[1], 0);
    assert_int_equal(r->unit_err[3], 0);
    for (int u = 4; u <= 12; u++)
        assert_int_equal(r->unit_err[u], ETIMEDOUT);
    assert_int_equal(r->unit_err[2], ETIMEDOUT);
    assert_int_equal(r->unit_err[0], BUS_UNIT_NOT_TRIED);
    assert_int_equal(r->unit_err[13], BUS_UNIT_NOT_TRIED);
    assert_int_equal(r->unit_err[100], BUS_UNIT_NOT_TRIED);
    free(r);
    assert_true(samples >= 8);
    assert_true(worst < 230);
    assert_true(took < 12 * 250);
    bus_stop(f->bus);
    f->bus = NULL;
    queue_free(rq, free);
}

static void test_probe_cancel_stop_and_limits(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct queue *rq = queue_new();
    /* nobody listens: a probe is answered at once, with why */
    site_init(&f->site, f->srv.port, false);
    f->site.bus.reconnect_min_ms = 10000;
    f->site.bus.reconnect_max_ms = 10000;
    start_bus(f);
    struct bus_msg *m = wait_for(f->q, BUS_MSG_BUS_STATE, -1, 5000);
    assert_non_null(m);
    bus_msg_free(m);
    struct bus_probe_req rd = {.kind = BUS_PROBE_READ, .id = 1, .unit = 1, .nblocks = 1};
    rd.blocks[0] = (struct bus_block){REG_INPUT, 0, 3};
    assert_int_equal(bus_probe_submit(f->bus, &rd, rq, err, sizeof(err)), 0);
    struct bus_probe_reply *r = wait_reply(rq, 500);
    assert_int_equal(r->rc, -1);
    assert_non_null(strstr(r->err, "bus tcp-test is not connected (cannot connect to 127.0.0.1:"));
    free(r);
    bus_stop(f->bus);
    f->bus = NULL;

    server_start(&f->srv);
    start_polling(f);

    /* requests that cannot be run are refused at once, saying what is wrong */
    struct bus_probe_req bad = rd;
    bad.unit = 250;
    assert_int_equal(bus_probe_submit(f->bus, &bad, rq, err, sizeof(err)), -1);
    assert_string_equal(err, "unit id 250 is not valid on bus tcp-test (0..247 or 255)");
    bad = rd;
    bad.blocks[0].count = 126;
    assert_int_equal(bus_probe_submit(f->bus, &bad, rq, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "block 1: 126 registers at 0 is not a valid read"));
    bad.nblocks = 0;
    assert_int_equal(bus_probe_submit(f->bus, &bad, rq, err, sizeof(err)), -1);
    struct bus_probe_req scan = {.kind = BUS_PROBE_SCAN,
                                 .id = 10,
                                 .from = 5,
                                 .to = 2,
                                 .timeout_ms = 50,
                                 .scan_read = {REG_HOLDING, 0, 1}};
    assert_int_equal(bus_probe_submit(f->bus, &scan, rq, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "scan range 5..2"));

    /* a long scan is cancelled; the read queued behind it then runs */
    scan.from = 1;
    scan.to = 200;
    assert_int_equal(bus_probe_submit(f->bus, &scan, rq, err, sizeof(err)), 0);
    rd.id = 11;
    assert_int_equal(bus_probe_submit(f->bus, &rd, rq, err, sizeof(err)), 0);
    bus_probe_cancel(f->bus, 10);
    r = wait_reply(rq, 1000);
    assert_int_equal(r->id, 10);
    assert_int_equal(r->rc, -1);
    assert_string_equal(r->err, "cancelled");
    free(r);
    r = wait_reply(rq, 2000);
    assert_int_equal(r->id, 11);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->block_err[0], 0);
    assert_int_equal(r->regs[0][0], 150);
    free(r);

    /* at most BUS_PROBE_MAX_PENDING wait; a stop answers every one of them */
    for (int i = 0; i < BUS_PROBE_MAX_PENDING; i++) {
        scan.id = 20 + (unsigned long)i;
        assert_int_equal(bus_probe_submit(f->bus, &scan, rq, err, sizeof(err)), 0);
    }
    assert_int_equal(bus_probe_submit(f->bus, &scan, rq, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already has 8 probes waiting"));
    int64_t t0 = mono_ms();
    bus_stop(f->bus);
    f->bus = NULL;
    assert_true(mono_ms() - t0 < 5000);
    for (int i = 0; i < BUS_PROBE_MAX_PENDING; i++) {
        r = wait_reply(rq, 0);
        assert_int_equal(r->id, 20 + (unsigned long)i);
        assert_int_equal(r->rc, -1);
        assert_non_null(strstr(r->err, "stopped"));
        free(r);
    }
    assert_null(queue_pop(rq, 0));
    queue_free(rq, free);
}

static void test_link_runs_probes(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    site_init(&f->site, f->srv.port, false);
    assert_null(bus_link_open(&f->site.bus, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot connect to 127.0.0.1:"));
    assert_non_null(strstr(err, modbus_strerror(ECONNREFUSED)));

    server_start(&f->srv);
    struct bus_link *l = bus_link_open(&f->site.bus, err, sizeof(err));
    if (!l)
        fail_msg("bus_link_open: %s", err);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", f->srv.port);
    assert_string_equal(bus_link_endpoint(l), endpoint);

    struct bus_probe_req rd = {.kind = BUS_PROBE_READ, .id = 5, .unit = 1, .nblocks = 1};
    rd.blocks[0] = (struct bus_block){REG_INPUT, 0, 3};
    struct bus_probe_reply *r = bus_link_run(l, &rd, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(r->id, 5);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->regs[0][0], 150);
    assert_int_equal(r->regs[0][2], 0x0001);
    free(r);

    struct bus_probe_req scan = {.kind = BUS_PROBE_SCAN,
                                 .from = 1,
                                 .to = 4,
                                 .timeout_ms = 50,
                                 .scan_read = {REG_INPUT, 100, 1}};
    r = bus_link_run(l, &scan, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->unit_err[1], 0);
    assert_int_equal(r->unit_err[2], ETIMEDOUT);
    assert_int_equal(r->unit_err[3], 0);
    assert_int_equal(r->unit_value[3], 0x0000);
    assert_int_equal(r->unit_err[4], ETIMEDOUT);
    free(r);

    scan.to = 300;
    assert_null(bus_link_run(l, &scan, err, sizeof(err)));
    assert_non_null(strstr(err, "scan range 1..300"));

    /* the far end goes away: the probe says the line was lost, and so does the next */
    server_kill(&f->srv);
    r = bus_link_run(l, &rd, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(r->rc, -1);
    assert_non_null(strstr(r->err, "connection to 127.0.0.1:"));
    assert_non_null(strstr(r->err, "lost while probing unit 1"));
    free(r);
    r = bus_link_run(l, &rd, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(r->rc, -1);
    assert_non_null(strstr(r->err, "lost while probing unit 1"));
    free(r);
    bus_link_close(l);
    bus_link_close(NULL);
}

/* Give unit its own register map: the values the many-device bus expects of it. */
static void server_add_unit(struct server *s, int unit)
{
    pthread_mutex_lock(&s->lock);
    if (!s->maps[unit])
        s->maps[unit] = modbus_mapping_new(0, 0, 200, 200);
    assert_non_null(s->maps[unit]);
    s->answer[unit] = true;
    s->mode[unit] = MODE_NORMAL;
    s->maps[unit]->tab_input_registers[0] = (uint16_t)(unit * 10); /* unit / 10 %/m */
    s->maps[unit]->tab_registers[0] = (uint16_t)unit;              /* LifeCheck high word */
    s->maps[unit]->tab_registers[1] = (uint16_t)(unit * 3);
    pthread_mutex_unlock(&s->lock);
}

/* The many-device bus with max_in_flight, its units served normally; not started. */
static void many_init(struct fixture *f, int max_in_flight)
{
    struct many *m = &f->many;
    site_init(&m->base, f->srv.port, false);
    m->base.bus.max_in_flight = max_in_flight;
    for (size_t i = 0; i < NDEV; i++) {
        int unit = unit_of(i);
        snprintf(m->ids[i][0], sizeof(m->ids[i][0]), "dev-%d", unit);
        snprintf(m->ids[i][1], sizeof(m->ids[i][1]), "D%d", unit);
        m->devices[i] =
            (struct cfg_device){.id = m->ids[i][0],
                                .unit = unit,
                                .profile = is_panel(i) ? &m->base.panel : &m->base.smoke,
                                .timeout_ms = 100,
                                .retries = 2,
                                .fail_after = 3};
        m->detectors[i] = (struct cfg_detector){.id = m->ids[i][1], .device = i, .channel = 1};
        server_add_unit(&f->srv, unit);
    }
    m->base.cfg.devices = m->devices;
    m->base.cfg.ndevices = NDEV;
    m->base.cfg.detectors = m->detectors;
    m->base.cfg.ndetectors = NDEV;
}

static void many_start(struct fixture *f)
{
    char err[256] = "";
    f->bus = bus_start(&f->many.base.cfg, 0, f->q, err, sizeof(err));
    if (!f->bus)
        fail_msg("bus_start: %s", err);
}

/* What a run of the many-device bus posted. */
struct tally {
    int samples[NDEV];
    int downs[NDEV];
    char why[NDEV][200]; /* each device's first "down" */
    int bus_downs, bus_ups;
    char bus_why[200];
};

/* Sample m must carry its own device's values: a reply given to the wrong device fails here. */
static void check_many_sample(const struct bus_msg *m)
{
    size_t dev = m->device;
    assert_true(dev < NDEV);
    int unit = unit_of(dev);
    assert_int_equal(m->sample.nreadings, 1);
    const struct reading *r = &m->sample.readings[0];
    assert_int_equal(r->detector, dev);
    if (is_panel(dev)) {
        assert_true(m->sample.has_lifecheck);
        assert_int_equal(m->sample.lifecheck, (uint32_t)unit << 16 | (uint32_t)(unit * 3));
        assert_int_equal(r->bits, 0);
    } else {
        assert_true(r->value_ok);
        if (r->value < unit * 0.1 - 1e-6 || r->value > unit * 0.1 + 1e-6)
            fail_msg("device %zu (unit %d) read %g, not %g", dev, unit, r->value, unit * 0.1);
    }
}

static void tally_msg(struct tally *t, const struct bus_msg *m)
{
    switch (m->type) {
    case BUS_MSG_SAMPLE:
        check_many_sample(m);
        t->samples[m->device]++;
        break;
    case BUS_MSG_DEVICE_STATE:
        assert_true(m->device < NDEV);
        if (!m->up && t->downs[m->device]++ == 0)
            strlcpy_fg(t->why[m->device], m->why, sizeof(t->why[m->device]));
        break;
    case BUS_MSG_BUS_STATE:
        if (m->up) {
            t->bus_ups++;
        } else if (t->bus_downs++ == 0) {
            strlcpy_fg(t->bus_why, m->why, sizeof(t->bus_why));
        }
        break;
    case BUS_MSG_WAKE:
        break;
    }
}

/* Tally the bus's messages until done says so; false if that took over timeout_ms. */
static bool tally_until(struct fixture *f, struct tally *t, bool (*done)(const struct tally *),
                        int64_t timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (!done(t)) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return false;
        struct bus_msg *m = queue_pop(f->q, left);
        if (m)
            tally_msg(t, m);
        bus_msg_free(m);
    }
    return true;
}

static bool every_device_thrice(const struct tally *t)
{
    for (size_t i = 0; i < NDEV; i++)
        if (t->samples[i] < 3)
            return false;
    return true;
}

static bool every_device_answered(const struct tally *t)
{
    for (size_t i = 0; i < NDEV; i++)
        if (t->samples[i] < 1)
            return false;
    return true;
}

static bool bus_went_down(const struct tally *t)
{
    return t->bus_downs > 0;
}

static bool back_up_and_answered(const struct tally *t)
{
    return t->bus_ups > 0 && every_device_answered(t);
}

static void stop_bus(struct fixture *f)
{
    bus_stop(f->bus);
    f->bus = NULL;
    /* What the stopped poller left queued must not count toward the next run. */
    for (struct bus_msg *m; (m = queue_pop(f->q, 0)) != NULL;)
        bus_msg_free(m);
}

/*
 * With max_in_flight 4 every device's own values arrive, and the server finds
 * four requests waiting at once; with 1 it never finds more than the one.
 */
static void test_pipelined_reads_every_device(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    const int inflight[] = {4, 1};
    for (size_t k = 0; k < ARRAY_LEN(inflight); k++) {
        many_init(f, inflight[k]);
        take_max_waiting(&f->srv);
        many_start(f);
        struct tally t = {0};
        assert_true(tally_until(f, &t, every_device_thrice, 5000));
        for (size_t i = 0; i < NDEV; i++)
            assert_int_equal(t.downs[i], 0);
        assert_int_equal(t.bus_downs, 0);
        struct bus_stats st;
        bus_get_stats(f->bus, &st);
        assert_int_equal(st.polls_failed, 0);
        stop_bus(f);
        int waiting = take_max_waiting(&f->srv);
        print_message("max_in_flight %d: the server found up to %d requests waiting at once\n",
                      inflight[k], waiting);
        assert_int_equal(waiting, inflight[k]);
    }
}

static bool faulty_down_and_others_polled(const struct tally *t)
{
    static const size_t faulty[] = {2, 5, 8, 11};
    for (size_t i = 0; i < ARRAY_LEN(faulty); i++)
        if (!t->downs[faulty[i]])
            return false;
    for (size_t i = 0; i < NDEV; i++)
        if (i % 3 != 2 && t->samples[i] < 15)
            return false;
    return true;
}

/*
 * Among answering devices, one refuses (exception), one is silent, one gives a
 * reply one register short and one answers too late (while the server answers
 * the others): each is reported down with exactly the message of the
 * one-at-a-time path; the others keep their own readings throughout, late
 * replies arriving meanwhile included. (A late reply can still cost a device
 * read one request at a time a try; so the others report down only after
 * three failed polls, which never come.)
 */
static void test_pipelined_faults_as_one_at_a_time(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    struct {
        size_t dev;
        enum unit_mode mode;
        bool silent;
        const char *what; /* the failing read */
        int err;
    } faults[] = {
        {2, MODE_EXCEPTION, false, "3 input registers at 0", EMBXSFAIL},
        {5, MODE_NORMAL, true, "3 input registers at 0", ETIMEDOUT},
        {8, MODE_SHORT, false, "3 input registers at 0", EMBBADDATA},
        {11, MODE_LATE, false, "2 holding registers at 0", ETIMEDOUT},
    };
    const int inflight[] = {1, 4};
    for (size_t k = 0; k < ARRAY_LEN(inflight); k++) {
        many_init(f, inflight[k]);
        for (size_t i = 0; i < ARRAY_LEN(faults); i++) {
            set_mode(&f->srv, unit_of(faults[i].dev), faults[i].mode);
            set_answer(&f->srv, unit_of(faults[i].dev), !faults[i].silent);
            f->many.devices[faults[i].dev].fail_after = 1; /* its first message is the one */
        }
        pthread_mutex_lock(&f->srv.lock);
        f->srv.late_sent = 0;
        pthread_mutex_unlock(&f->srv.lock);
        take_max_waiting(&f->srv);
        many_start(f);
        struct tally t = {0};
        assert_true(tally_until(f, &t, faulty_down_and_others_polled, 10000));
        stop_bus(f);
        pthread_mutex_lock(&f->srv.lock);
        size_t late = f->srv.late_sent;
        pthread_mutex_unlock(&f->srv.lock);
        int waiting = take_max_waiting(&f->srv);
        print_message("max_in_flight %d: %zu late replies, up to %d requests waiting\n",
                      inflight[k], late, waiting);
        assert_true(late >= 2);
        assert_int_equal(waiting, inflight[k]);
        assert_int_equal(t.bus_downs, 0);
        for (size_t i = 0; i < ARRAY_LEN(faults); i++) {
            char want[200];
            int unit = unit_of(faults[i].dev);
            snprintf(want, sizeof(want), "device dev-%d unit %d: reading %s failed (3 tries): %s",
                     unit, unit, faults[i].what, modbus_strerror(faults[i].err));
            assert_string_equal(t.why[faults[i].dev], want);
            assert_int_equal(t.samples[faults[i].dev], 0);
        }
        for (size_t i = 0; i < NDEV; i++)
            if (i % 3 != 2)
                assert_int_equal(t.downs[i], 0);
    }
}

/* The server hangs up while requests are in flight: the bus goes down, and comes back. */
static void test_pipelined_hangup_reconnects(void **state)
{
    struct fixture *f = *state;
    server_start(&f->srv);
    many_init(f, 4);
    many_start(f);
    struct tally t = {0};
    assert_true(tally_until(f, &t, every_device_answered, 5000));

    set_mode(&f->srv, unit_of(6), MODE_HANGUP);
    assert_true(tally_until(f, &t, bus_went_down, 5000));
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "connection to 127.0.0.1:%d lost while reading unit ",
             f->srv.port);
    if (!strstr(t.bus_why, endpoint))
        fail_msg("unexpected reason: %s", t.bus_why);
    struct bus_stats st;
    bus_get_stats(f->bus, &st);
    assert_false(st.connected);

    set_mode(&f->srv, unit_of(6), MODE_NORMAL);
    memset(t.samples, 0, sizeof(t.samples));
    t.bus_ups = 0;
    assert_true(tally_until(f, &t, back_up_and_answered, 5000));
    assert_int_equal(t.bus_downs, 1);
    for (size_t i = 0; i < NDEV; i++)
        assert_int_equal(t.downs[i], 0);
    bus_get_stats(f->bus, &st);
    assert_true(st.connected);
}

int main(void)
{
    log_set_level(LOG_LVL_NOTICE);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_samples_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_unit_backed_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_goes_away_and_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_stop_promptly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_status_is_a_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flapping_peer_is_backed_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_link_is_reconnected_quietly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_read_on_running_poller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_keeps_polling_on_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_cancel_stop_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_runs_probes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_reads_every_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_faults_as_one_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_hangup_reconnects, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
