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
#include <unistd.h>

#include "log.h"
#include "util.h"

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
    uint8_t rx[RTU_MAX_ADU];
    size_t rxlen;
    bool overflow;
    int64_t last_rx;
    int gap_ms;
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

static int open_rtu(struct port *p, char *err, size_t errlen)
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
    /* 3.5 character times of silence end a frame (11 bits a character). */
    int gap = (int)((3.5 * 11 * 1000 + b->baud - 1) / b->baud);
    p->gap_ms = gap < 2 ? 2 : gap;
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

struct srv *srv_new(const struct cfg *cfg, struct bld *b, char *err, size_t errlen)
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
        int rc = p->cfg->type == BUS_TCP ? open_tcp(p, err, errlen) : open_rtu(p, err, errlen);
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
            log_info("bus %s: Modbus RTU on %s -> %s", p->cfg->id, p->endpoint, p->pty);
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
    if (modbus_reply(p->ctx, req, len, map) < 0) {
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

static void read_pty(struct port *p, int64_t now)
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
        memcpy(p->rx + p->rxlen, buf, (size_t)n);
        p->rxlen += (size_t)n;
        p->last_rx = now;
    }
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
    modbus_set_socket(p->ctx, p->master);
    reply(s, p, req, rc, unit, now);
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
            read_pty(p, now);
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
        if ((p->rxlen || p->overflow) && now - p->last_rx >= p->gap_ms)
            serve_frame(s, p, now);
    }
}

int srv_timeout(const struct srv *s, int64_t now)
{
    int best = -1;
    for (size_t i = 0; i < s->nports; i++) {
        const struct port *p = &s->ports[i];
        if (!p->rxlen && !p->overflow)
            continue;
        int64_t left = p->last_rx + p->gap_ms - now;
        int t = left < 0 ? 0 : (int)left;
        if (best < 0 || t < best)
            best = t;
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
            fprintf(out, ",\"pty\":\"%s\"", p->pty);
        fprintf(out, ",\"requests\":%llu,\"answered\":%llu,\"units\":{",
                (unsigned long long)p->total, (unsigned long long)p->answered);
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
