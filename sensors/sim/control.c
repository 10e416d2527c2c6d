/*
 * Control socket: owns the listening UNIX socket, its file, and each client's
 * line buffer. Lines may arrive in pieces or several at once; a line longer
 * than CTL_LINE_MAX is answered with an error and skipped up to its newline,
 * and a client that does not read its answers is dropped, so no client can
 * stall the simulator or make it grow without bound.
 */
#include "control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MAX_CONNS 16
#define SEND_WAIT_MS 1000

struct conn {
    int fd;
    char buf[CTL_LINE_MAX + 1];
    size_t len;
    bool skipping; /* inside an over-long line, until its newline */
    bool dead;
};

struct ctl {
    int lfd;
    char *path;
    ctl_handler *handler;
    void *arg;
    struct conn conns[MAX_CONNS];
    size_t nconns;
    size_t npolled; /* connections in the last ctl_pollfds */
};

/* A socket file nobody answers on is left over from a killed simulator. */
static int clear_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "control socket %s: exists and is not a socket; not replacing it",
                 path);
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_fg(sa.sun_path, path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        snprintf(err, errlen, "control socket %s: another process is listening there", path);
        return -1;
    }
    if (fd >= 0)
        close(fd);
    if (unlink(path) < 0) {
        snprintf(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

struct ctl *ctl_new(const char *path, ctl_handler *handler, void *arg, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "control socket %.200s: path longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return NULL;
    }
    err[0] = '\0';
    if (clear_path(path, err, errlen) < 0) {
        if (!err[0])
            snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        return NULL;
    }
    strlcpy_fg(sa.sun_path, path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct ctl *c = xcalloc(1, sizeof(*c));
    c->lfd = fd;
    c->path = xstrdup(path);
    c->handler = handler;
    c->arg = arg;
    return c;
}

void ctl_free(struct ctl *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nconns; i++)
        close(c->conns[i].fd);
    close(c->lfd);
    unlink(c->path);
    free(c->path);
    free(c);
}

size_t ctl_pollfds(struct ctl *c, struct pollfd *fds, size_t max)
{
    size_t n = 0;
    c->npolled = 0;
    if (max == 0)
        return 0;
    fds[n++] = (struct pollfd){.fd = c->lfd, .events = POLLIN};
    for (size_t i = 0; i < c->nconns && n < max; i++, c->npolled++)
        fds[n++] = (struct pollfd){.fd = c->conns[i].fd, .events = POLLIN};
    return n;
}

/* Blocking for at most SEND_WAIT_MS in total: a client that stops reading is dropped. */
static void send_all(struct conn *cn, const char *data, size_t len)
{
    int64_t deadline = mono_ms() + SEND_WAIT_MS;
    while (len > 0 && !cn->dead) {
        ssize_t n = send(cn->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        int64_t left = deadline - mono_ms();
        if (n < 0 && (errno == EAGAIN || errno == EINTR) && left > 0) {
            struct pollfd p = {.fd = cn->fd, .events = POLLOUT};
            poll(&p, 1, (int)left);
            continue;
        }
        cn->dead = true;
    }
}

static void answer(struct ctl *c, struct conn *cn, const char *line)
{
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    if (!f) {
        cn->dead = true;
        return;
    }
    c->handler(c->arg, line, f);
    fputc('\n', f);
    fclose(f);
    send_all(cn, out, outlen);
    free(out);
}

static void take_lines(struct ctl *c, struct conn *cn)
{
    size_t start = 0;
    for (size_t i = 0; i < cn->len; i++) {
        if (cn->buf[i] != '\n')
            continue;
        cn->buf[i] = '\0';
        if (!cn->skipping)
            answer(c, cn, cn->buf + start);
        cn->skipping = false;
        start = i + 1;
    }
    memmove(cn->buf, cn->buf + start, cn->len - start);
    cn->len -= start;
    if (cn->len == CTL_LINE_MAX + 1 || (cn->skipping && cn->len)) {
        if (!cn->skipping) {
            char msg[64];
            snprintf(msg, sizeof(msg), "error: line longer than %d bytes\n", CTL_LINE_MAX);
            send_all(cn, msg, strlen(msg));
        }
        cn->skipping = true;
        cn->len = 0;
    }
}

static void serve(struct ctl *c, struct conn *cn)
{
    ssize_t n = read(cn->fd, cn->buf + cn->len, sizeof(cn->buf) - cn->len);
    if (n > 0) {
        cn->len += (size_t)n;
        take_lines(c, cn);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* End of input: a last line without its newline still counts. */
    if (n == 0 && cn->len && !cn->skipping) {
        cn->buf[cn->len] = '\0';
        answer(c, cn, cn->buf);
    }
    cn->dead = true;
}

void ctl_handle(struct ctl *c, const struct pollfd *fds, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < c->npolled && i + 1 < n; i++)
        if (fds[i + 1].revents)
            serve(c, &c->conns[i]);
    size_t k = 0;
    for (size_t i = 0; i < c->nconns; i++) {
        if (c->conns[i].dead)
            close(c->conns[i].fd);
        else
            c->conns[k++] = c->conns[i];
    }
    c->nconns = k;
    if (fds[0].revents & POLLIN) {
        int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        if (c->nconns == MAX_CONNS) {
            static const char busy[] = "error: too many control connections\n";
            if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                log_debug("control: %s", strerror(errno));
            close(fd);
            return;
        }
        struct conn *cn = &c->conns[c->nconns++];
        memset(cn, 0, sizeof(*cn));
        cn->fd = fd;
    }
}
