/*
 * Modbus slaves of the simulated building. It owns the listening sockets, the
 * TCP client connections, the pseudo-terminals and their symlinks, and the
 * request counters. libmodbus does all framing, CRC checks and replies
 * (including ILLEGAL DATA ADDRESS for registers a device does not have).
 *
 * RTU needs care: libmodbus 3.1.6 ignores a request addressed to a slave other
 * than the context's, and then expects the absent slave's reply and swallows
 * the next frame. So the pty is read here, frames are cut at the line's
 * silence as on a real RS-485 bus, and each frame is handed to libmodbus
 * through a socketpair with the context's slave set to the frame's unit.
 *
 * A pty delivers bytes at once, whatever the baud rate. With wire-time pacing
 * (srv_new's rtu_wire_time) the RTU side behaves like a half-duplex line at the
 * bus's baud rate: a request occupies the line for its bytes' wire time, a frame
 * ends 3.5 characters after its last byte, the reply is handed to the master
 * only when its last byte would have arrived, and the line stays silent for 3.5
 * characters after it; a request written earlier is taken as starting when the
 * line is free. Times are modelled in microseconds from when each phase was due,
 * so the loop's own wake-up delays do not add up over many frames.
 */
#include "server.h"

#include <arpa/inet.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "wire.h"

#define MAX_CLIENTS 32
#define MAX_LISTEN 2
#define RTU_MAX_ADU 256
#define BYTE_TIMEOUT_US 200000 /* a client stalling mid-frame holds the loop this long at most */

struct client {
    int fd;
    bool dead;
};

struct port {
    const struct cfg_bus *cfg;
    size_t index;
    modbus_t *ctx;
    char endpoint[300];
    uint64_t requests[256];
    uint64_t total, answered;
    int64_t first_us, last_us; /* monotonic times of the first and the latest request */
    struct log_limit rl;
    /* TCP */
    int lfd[MAX_LISTEN];
    size_t nlfd;
    struct client clients[MAX_CLIENTS];
    size_t nclients;
    /* RTU */
    int master, slave, sp[2];
    char pty[64];
    bool linked;
    bool stalled;   /* "stall": its fds are left unread, so requests pile up unanswered */
    bool unplugged; /* "unplug": the pty and its link are gone until "plug" */
    uint8_t rx[RTU_MAX_ADU];
    size_t rxlen;
    bool overflow;
    int64_t last_rx_us;
    int64_t gap_us; /* silence that ends a frame */
    /* RTU wire-time model; all times monotonic microseconds */
    bool paced;
    int64_t char_us;        /* one character: start, data, parity and stop bits */
    int64_t frame_start_us; /* when the request being received started on the line */
    int64_t line_free_us;   /* from here the line may carry the next frame */
    uint8_t tx[RTU_MAX_ADU];
    size_t txlen;       /* a reply waiting for its wire time */
    int64_t tx_due_us;  /* when its last byte reaches the master */
    int64_t tx_sent_us; /* when the last reply was handed over; 0 once the master answered */
    /* the master's turnaround: reply handed over -> first byte of its next request */
    int64_t turn_n, turn_sum_us, turn_max_us;
};

enum slot_kind { SLOT_LISTEN, SLOT_CLIENT, SLOT_PTY };

struct slot {
    enum slot_kind kind;
    struct port *port;
    size_t idx;
};

struct srv {
    const struct cfg *cfg;
    struct bld *bld;
    struct port *ports;
    size_t nports;
    struct slot *slots;
    size_t capslots;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) ==
               127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    return false;
}

static bool host_is_loopback(const char *h)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!h)
        return false;
    if (strcmp(h, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, h, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static int open_tcp(struct port *p, char *err, size_t errlen)
{
    const struct cfg_bus *b = p->cfg;
    snprintf(p->endpoint, sizeof(p->endpoint), "%s:%d", b->host ? b->host : "", b->port);
    if (!host_is_loopback(b->host)) {
        snprintf(err, errlen,
                 "bus %s: host '%s' is not a loopback address; the simulator listens only on "
                 "127.0.0.1, ::1 or localhost (try --set bus.%s.host=127.0.0.1)",
                 b->id, b->host ? b->host : "", b->id);
        return -1;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", b->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int gai = getaddrinfo(b->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "bus %s: cannot resolve %s: %s", b->id, b->host, gai_strerror(gai));
        return -1;
    }
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai && p->nlfd < MAX_LISTEN; ai = ai->ai_next) {
        if (!addr_is_loopback(ai->ai_addr))
            continue;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
            last_errno = errno;
            close(fd);
            continue;
        }
        p->lfd[p->nlfd++] = fd;
    }
    freeaddrinfo(res);
    if (p->nlfd == 0) {
        snprintf(err, errlen, "bus %s: cannot listen on %s: %s", b->id, p->endpoint,
                 last_errno ? strerror(last_errno) : "no loopback address");
        return -1;
    }
    p->ctx = modbus_new_tcp("127.0.0.1", b->port);
    return 0;
}

/* An existing link may be replaced only if it is ours in kind: dangling or to a pty. */
static int check_link_path(const struct cfg_bus *b, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(b->device, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "bus %s: cannot check %s: %s", b->id, b->device, strerror(errno));
        return -1;
    }
    if (!S_ISLNK(st.st_mode)) {
        snprintf(err, errlen,
                 "bus %s: %s exists and is not a symlink; refusing to replace it (a real serial "
                 "port?) - point the bus elsewhere with --set bus.%s.device=PATH",
                 b->id, b->device, b->id);
        return -1;
    }
    char target[PATH_MAX];
    ssize_t n = readlink(b->device, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    struct stat tst;
    bool dangling = stat(b->device, &tst) < 0;
    if (!dangling && strncmp(target, "/dev/pts/", 9) != 0) {
        snprintf(err, errlen,
                 "bus %s: %s is a symlink to %s, not to a pseudo-terminal; refusing to replace it",
                 b->id, b->device, target);
        return -1;
    }
    if (unlink(b->device) < 0) {
        snprintf(err, errlen, "bus %s: cannot remove the old link %s: %s", b->id, b->device,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* A raw pseudo-terminal for an RTU bus: p->master, p->slave and its name in p->pty. */
static int new_pty(struct port *p, char *err, size_t errlen)
{
    const struct cfg_bus *b = p->cfg;
    p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (p->master < 0 || grantpt(p->master) < 0 || unlockpt(p->master) < 0 ||
        ptsname_r(p->master, p->pty, sizeof(p->pty)) != 0) {
        snprintf(err, errlen, "bus %s: cannot create a pseudo-terminal: %s", b->id,
                 strerror(errno));
        return -1;
    }
    /* Held open so the master never sees EIO while the gateway closes and reopens the port. */
    p->slave = open(p->pty, O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct termios tio;
    if (p->slave < 0 || tcgetattr(p->slave, &tio) < 0) {
        snprintf(err, errlen, "bus %s: cannot open %s: %s", b->id, p->pty, strerror(errno));
        return -1;
    }
    cfmakeraw(&tio);
    if (tcsetattr(p->slave, TCSANOW, &tio) < 0 || set_nonblock(p->master) < 0) {
        snprintf(err, errlen, "bus %s: cannot set %s to raw mode: %s", b->id, p->pty,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int open_rtu(struct port *p, bool wire_time, char *err, size_t errlen)
{
    const struct cfg_bus *b = p->cfg;
    snprintf(p->endpoint, sizeof(p->endpoint), "%s", b->device ? b->device : "");
    if (!b->device || !*b->device) {
        snprintf(err, errlen, "bus %s: no device path for the pty link", b->id);
        return -1;
    }
    /* Device nodes belong to udev and real hardware; the simulator never adds links there. */
    if (strncmp(b->device, "/dev/", 5) == 0) {
        snprintf(err, errlen,
                 "bus %s: refusing to create a pty link under /dev (%s); point the bus elsewhere "
                 "with --set bus.%s.device=PATH",
                 b->id, b->device, b->id);
        return -1;
    }
    if (check_link_path(b, err, errlen) < 0)
        return -1;
    if (new_pty(p, err, errlen) < 0)
        return -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->sp) < 0 ||
        set_nonblock(p->sp[0]) < 0) {
        snprintf(err, errlen, "bus %s: socketpair: %s", b->id, strerror(errno));
        return -1;
    }
    p->ctx = modbus_new_rtu(b->device, b->baud, b->parity, b->data_bits, b->stop_bits);
    if (!p->ctx) {
        snprintf(err, errlen, "bus %s: %s", b->id, modbus_strerror(errno));
        return -1;
    }
    if (symlink(p->pty, b->device) < 0) {
        snprintf(err, errlen, "bus %s: cannot link %s to %s: %s", b->id, b->device, p->pty,
                 strerror(errno));
        return -1;
    }
    p->linked = true;
    if (wire_time) {
        /* The line's own framing, and 3.5 characters exactly, as the Modbus RTU spec says. */
        int bits = 1 + b->data_bits + (b->parity != 'N') + b->stop_bits;
        p->paced = true;
        p->char_us = ((int64_t)bits * 1000000 + b->baud / 2) / b->baud;
        p->gap_us = (p->char_us * 7 + 1) / 2;
        return 0;
    }
    /* 3.5 character times of silence end a frame (11 bits a character). */
    int gap = (int)((3.5 * 11 * 1000 + b->baud - 1) / b->baud);
    p->gap_us = (gap < 2 ? 2 : gap) * 1000;
    return 0;
}

static void close_port(struct port *p)
{
    for (size_t i = 0; i < p->nlfd; i++)
        close(p->lfd[i]);
    for (size_t i = 0; i < p->nclients; i++)
        close(p->clients[i].fd);
    if (p->linked) {
        char target[PATH_MAX];
        ssize_t n = readlink(p->cfg->device, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, p->pty) == 0)
                unlink(p->cfg->device);
        }
    }
    int fds[] = {p->master, p->slave, p->sp[0], p->sp[1]};
    for (size_t i = 0; i < ARRAY_LEN(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (p->ctx)
        modbus_free(p->ctx);
}

struct srv *srv_new(const struct cfg *cfg, struct bld *b, bool rtu_wire_time, char *err,
                    size_t errlen)
{
    struct srv *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->bld = b;
    s->ports = xcalloc(cfg->nbuses, sizeof(*s->ports));
    for (size_t i = 0; i < cfg->nbuses; i++) {
        struct port *p = &s->ports[i];
        p->cfg = &cfg->buses[i];
        p->index = i;
        p->master = p->slave = p->sp[0] = p->sp[1] = -1;
        p->rl.interval_ms = 10000;
        s->nports++;
        int rc = p->cfg->type == BUS_TCP ? open_tcp(p, err, errlen)
                                         : open_rtu(p, rtu_wire_time, err, errlen);
        if (rc == 0 && !p->ctx) {
            snprintf(err, errlen, "bus %s: %s", p->cfg->id, modbus_strerror(errno));
            rc = -1;
        }
        if (rc < 0)
            goto fail;
        modbus_set_byte_timeout(p->ctx, 0, BYTE_TIMEOUT_US);
        modbus_set_indication_timeout(p->ctx, 0, BYTE_TIMEOUT_US);
        if (p->cfg->type == BUS_TCP)
            log_info("bus %s: Modbus TCP on %s", p->cfg->id, p->endpoint);
        else
            log_info("bus %s: Modbus RTU on %s -> %s%s", p->cfg->id, p->endpoint, p->pty,
                     p->paced ? ", paced at the wire time of its baud rate" : "");
    }
    return s;
fail:
    srv_free(s);
    return NULL;
}

void srv_free(struct srv *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nports; i++)
        close_port(&s->ports[i]);
    free(s->ports);
    free(s->slots);
    free(s);
}

static void add_slot(struct srv *s, struct pollfd *fds, size_t *n, size_t max, int fd,
                     enum slot_kind kind, struct port *p, size_t idx)
{
    if (*n >= max)
        return;
    if (*n >= s->capslots) {
        s->capslots = s->capslots ? s->capslots * 2 : 16;
        s->slots = xrealloc(s->slots, s->capslots * sizeof(*s->slots));
    }
    fds[*n] = (struct pollfd){.fd = fd, .events = POLLIN};
    s->slots[*n] = (struct slot){.kind = kind, .port = p, .idx = idx};
    (*n)++;
}

size_t srv_pollfds(struct srv *s, struct pollfd *fds, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nports; i++) {
        struct port *p = &s->ports[i];
        if (p->stalled || p->unplugged)
            continue;
        for (size_t k = 0; k < p->nlfd; k++)
            add_slot(s, fds, &n, max, p->lfd[k], SLOT_LISTEN, p, k);
        for (size_t k = 0; k < p->nclients; k++)
            add_slot(s, fds, &n, max, p->clients[k].fd, SLOT_CLIENT, p, k);
        if (p->master >= 0)
            add_slot(s, fds, &n, max, p->master, SLOT_PTY, p, 0);
    }
    return n;
}

static void accept_client(struct port *p, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (p->nclients == MAX_CLIENTS) {
        log_limited(&p->rl, mono_ms(), LOG_LVL_WARN, "bus %s: already %d clients; refusing another",
                    p->cfg->id, MAX_CLIENTS);
        close(fd);
        return;
    }
    p->clients[p->nclients++] = (struct client){.fd = fd};
    log_debug("bus %s: client connected (%zu now)", p->cfg->id, p->nclients);
}

static void count(struct port *p, int unit)
{
    p->last_us = mono_us();
    if (!p->first_us)
        p->first_us = p->last_us;
    p->total++;
    p->requests[unit & 0xFF]++;
}

static void reply(struct srv *s, struct port *p, const uint8_t *req, int len, int unit, int64_t now)
{
    count(p, unit);
    modbus_mapping_t *map = bld_registers(s->bld, p->index, unit);
    if (!map) {
        log_debug("bus %s: unit %d absent or silent; no answer", p->cfg->id, unit);
        return;
    }
    int code;
    enum scn_reply mode = bld_reply(s->bld, p->index, unit, &code);
    if (wire_reply(p->ctx, p->cfg->type == BUS_RTU, mode, code, req, len, map) < 0) {
        log_limited(&p->rl, now, LOG_LVL_WARN, "bus %s: unit %d: cannot send the reply: %s",
                    p->cfg->id, unit, modbus_strerror(errno));
        return;
    }
    p->answered++;
}

static void serve_client(struct srv *s, struct port *p, struct client *c, short revents,
                         int64_t now)
{
    uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
    if (!(revents & POLLIN)) {
        c->dead = true;
        return;
    }
    modbus_set_socket(p->ctx, c->fd);
    int rc = modbus_receive(p->ctx, req);
    if (rc <= 0) {
        if (errno != ECONNRESET)
            log_debug("bus %s: dropping a client after a bad frame: %s", p->cfg->id,
                      modbus_strerror(errno));
        c->dead = true;
        return;
    }
    reply(s, p, req, rc, req[modbus_get_header_length(p->ctx) - 1], now);
}

static void read_pty(struct port *p, int64_t now_us)
{
    for (;;) {
        uint8_t buf[512];
        ssize_t n = read(p->master, buf, sizeof(buf));
        if (n <= 0)
            break;
        size_t room = sizeof(p->rx) - p->rxlen;
        if ((size_t)n > room) {
            p->overflow = true;
            n = (ssize_t)room;
        }
        if (p->rxlen == 0) {
            p->frame_start_us = max64(now_us, p->line_free_us);
            if (p->tx_sent_us) {
                int64_t turn = now_us - p->tx_sent_us;
                p->turn_n++;
                p->turn_sum_us += turn;
                p->turn_max_us = max64(p->turn_max_us, turn);
                p->tx_sent_us = 0;
            }
        }
        memcpy(p->rx + p->rxlen, buf, (size_t)n);
        p->rxlen += (size_t)n;
        p->last_rx_us = now_us;
    }
}

/* When the frame being received ends: silence after its last byte, on the modelled line too. */
static int64_t frame_end_us(const struct port *p)
{
    int64_t end = p->last_rx_us + p->gap_us;
    if (p->paced)
        end = max64(end, p->frame_start_us + (int64_t)p->rxlen * p->char_us + p->gap_us);
    return end;
}

/* Take the reply libmodbus wrote into the socketpair; it goes out when its wire time is over. */
static void hold_reply(struct port *p, int64_t end_us)
{
    ssize_t n = recv(p->sp[1], p->tx, sizeof(p->tx), MSG_DONTWAIT);
    p->txlen = n > 0 ? (size_t)n : 0;
    p->tx_due_us = end_us + (int64_t)p->txlen * p->char_us;
    p->line_free_us = p->tx_due_us + (p->txlen ? p->gap_us : 0);
}

static void send_reply(struct port *p, int64_t now)
{
    ssize_t n = write(p->master, p->tx, p->txlen);
    if (n != (ssize_t)p->txlen)
        log_limited(&p->rl, now, LOG_LVL_WARN, "bus %s: cannot send the reply: %s", p->cfg->id,
                    n < 0 ? strerror(errno) : "short write");
    p->txlen = 0;
    p->tx_sent_us = mono_us();
}

static void drain(int fd)
{
    uint8_t junk[512];
    while (read(fd, junk, sizeof(junk)) > 0) {
    }
}

/* One frame ended by silence: let libmodbus check it as addressed to its own unit. */
static void serve_frame(struct srv *s, struct port *p, int64_t now)
{
    size_t len = p->rxlen;
    bool overflow = p->overflow;
    int64_t end_us = frame_end_us(p);
    p->line_free_us = end_us;
    p->rxlen = 0;
    p->overflow = false;
    if (overflow || len < 4) {
        log_debug("bus %s: dropped %zu bytes that are no Modbus RTU frame", p->cfg->id, len);
        return;
    }
    int unit = p->rx[0];
    if (!bld_registers(s->bld, p->index, unit) || unit < 1 || unit > 247) {
        count(p, unit);
        log_debug("bus %s: unit %d absent or silent; no answer", p->cfg->id, unit);
        return;
    }
    if (write(p->sp[1], p->rx, len) != (ssize_t)len) {
        log_limited(&p->rl, now, LOG_LVL_WARN, "bus %s: socketpair write: %s", p->cfg->id,
                    strerror(errno));
        return;
    }
    uint8_t req[MODBUS_RTU_MAX_ADU_LENGTH];
    modbus_set_socket(p->ctx, p->sp[0]);
    modbus_set_slave(p->ctx, unit);
    int rc = modbus_receive(p->ctx, req);
    int saved = errno;
    drain(p->sp[0]);
    if (rc <= 0) {
        count(p, unit);
        log_debug("bus %s: unit %d: frame rejected: %s", p->cfg->id, unit, modbus_strerror(saved));
        return;
    }
    modbus_set_socket(p->ctx, p->paced ? p->sp[0] : p->master);
    reply(s, p, req, rc, unit, now);
    if (p->paced)
        hold_reply(p, end_us);
}

void srv_handle(struct srv *s, const struct pollfd *fds, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        if (!fds[i].revents)
            continue;
        struct slot *sl = &s->slots[i];
        struct port *p = sl->port;
        switch (sl->kind) {
        case SLOT_LISTEN:
            accept_client(p, p->lfd[sl->idx]);
            break;
        case SLOT_CLIENT:
            serve_client(s, p, &p->clients[sl->idx], fds[i].revents, now);
            break;
        case SLOT_PTY:
            read_pty(p, mono_us());
            break;
        }
    }
    for (size_t i = 0; i < s->nports; i++) {
        struct port *p = &s->ports[i];
        size_t k = 0;
        for (size_t j = 0; j < p->nclients; j++) {
            if (p->clients[j].dead)
                close(p->clients[j].fd);
            else
                p->clients[k++] = p->clients[j];
        }
        if (k != p->nclients)
            log_debug("bus %s: %zu clients", p->cfg->id, k);
        p->nclients = k;
        if (p->stalled || p->unplugged)
            continue;
        int64_t now_us = mono_us();
        if (p->txlen && now_us >= p->tx_due_us)
            send_reply(p, now);
        if (!p->txlen && (p->rxlen || p->overflow) && now_us >= frame_end_us(p))
            serve_frame(s, p, now);
    }
}

int64_t srv_timeout_us(const struct srv *s)
{
    int64_t best = -1, now_us = mono_us();
    for (size_t i = 0; i < s->nports; i++) {
        const struct port *p = &s->ports[i];
        int64_t due;
        if (p->stalled || p->unplugged)
            continue;
        if (p->txlen)
            due = p->tx_due_us;
        else if (p->rxlen || p->overflow)
            due = frame_end_us(p);
        else
            continue;
        int64_t left = due > now_us ? due - now_us : 0;
        if (best < 0 || left < best)
            best = left;
    }
    return best;
}

void srv_status(const struct srv *s, FILE *out)
{
    fputs("\"buses\":{", out);
    for (size_t i = 0; i < s->nports; i++) {
        const struct port *p = &s->ports[i];
        fprintf(out, "%s\"%s\":{\"type\":\"%s\",\"endpoint\":\"%s\"", i ? "," : "", p->cfg->id,
                p->cfg->type == BUS_TCP ? "tcp" : "rtu", p->endpoint);
        if (p->cfg->type == BUS_TCP)
            fprintf(out, ",\"clients\":%zu", p->nclients);
        else
            fprintf(out, ",\"pty\":\"%s\"", p->unplugged ? "" : p->pty);
        if (p->stalled || p->unplugged)
            fprintf(out, ",\"%s\":true", p->stalled ? "stalled" : "unplugged");
        if (p->paced)
            fprintf(out,
                    ",\"wire_time\":{\"char_us\":%lld,\"silence_us\":%lld,\"turnarounds\":%lld,"
                    "\"turnaround_sum_us\":%lld,\"turnaround_max_us\":%lld}",
                    (long long)p->char_us, (long long)p->gap_us, (long long)p->turn_n,
                    (long long)p->turn_sum_us, (long long)p->turn_max_us);
        fprintf(out,
                ",\"requests\":%llu,\"answered\":%llu,\"first_request_mono_us\":%lld,"
                "\"last_request_mono_us\":%lld",
                (unsigned long long)p->total, (unsigned long long)p->answered,
                (long long)p->first_us, (long long)p->last_us);
        fputs(",\"units\":{", out);
        bool first = true;
        for (int u = 0; u < 256; u++) {
            if (!p->requests[u])
                continue;
            fprintf(out, "%s\"%d\":%llu", first ? "" : ",", u, (unsigned long long)p->requests[u]);
            first = false;
        }
        fputs("}}", out);
    }
    fputc('}', out);
}

/* The serial device goes away: the pty closes under the gateway and its link disappears. */
static void unplug(struct port *p)
{
    if (p->linked) {
        char target[PATH_MAX];
        ssize_t n = readlink(p->cfg->device, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, p->pty) == 0)
                unlink(p->cfg->device);
        }
        p->linked = false;
    }
    close(p->master);
    close(p->slave);
    p->master = p->slave = -1;
    p->rxlen = p->txlen = 0;
    p->overflow = false;
    p->unplugged = true;
    log_info("bus %s: unplugged; %s is gone", p->cfg->id, p->cfg->device);
}

/* It comes back: a new pty (another /dev/pts/N, as after a USB adapter is replugged). */
static int plug(struct port *p, char *err, size_t errlen)
{
    if (check_link_path(p->cfg, err, errlen) < 0 || new_pty(p, err, errlen) < 0)
        goto fail;
    if (symlink(p->pty, p->cfg->device) < 0) {
        snprintf(err, errlen, "bus %s: cannot link %s to %s: %s", p->cfg->id, p->cfg->device,
                 p->pty, strerror(errno));
        goto fail;
    }
    p->linked = true;
    p->unplugged = false;
    log_info("bus %s: plugged in again: %s -> %s", p->cfg->id, p->cfg->device, p->pty);
    return 0;
fail:
    if (p->master >= 0)
        close(p->master);
    if (p->slave >= 0)
        close(p->slave);
    p->master = p->slave = -1;
    return -1;
}

int srv_line(struct srv *s, const struct scn_cmd *cmd, char *err, size_t errlen)
{
    struct port *p = NULL;
    for (size_t i = 0; i < s->nports && !p; i++)
        if (strcmp(s->ports[i].cfg->id, cmd->target) == 0)
            p = &s->ports[i];
    if (!p) {
        snprintf(err, errlen, "no bus '%s'", cmd->target);
        return -1;
    }
    switch (cmd->op) {
    case SCN_STALL:
        p->stalled = cmd->on;
        log_info("bus %s: %s", p->cfg->id,
                 cmd->on ? "stalled: requests pile up unanswered" : "answering again");
        return 0;
    case SCN_UNPLUG:
    case SCN_PLUG:
        if (p->cfg->type != BUS_RTU) {
            snprintf(err, errlen, "bus %s is Modbus TCP; %s is for RTU buses", p->cfg->id,
                     scn_op_name(cmd->op));
            return -1;
        }
        if (cmd->op == SCN_PLUG)
            return p->unplugged ? plug(p, err, errlen) : 0;
        if (!p->unplugged)
            unplug(p);
        return 0;
    default:
        snprintf(err, errlen, "'%s' is not a line fault", scn_op_name(cmd->op));
        return -1;
    }
}
