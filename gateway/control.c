/*
 * The local control socket, both ends. The daemon's side runs inside the main
 * loop without a thread: control_poll accepts what is waiting, reads one line
 * with a short timeout so a stuck client cannot hold the loop for long, and
 * answers. Commands themselves are interpreted by the caller's control_fn.
 */
#include "control.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Longest a client may take to send its line or read the reply. */
#define CLIENT_TIMEOUT_MS 200
/* Connections served per control_poll call, so a flood cannot starve the loop. */
#define MAX_PER_POLL 8

struct control {
    int fd;
    char *path;
};

static int make_addr(const char *path, struct sockaddr_un *sa, char *err, size_t errlen)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) {
        snprintf(err, errlen, "control socket path %.200s is longer than %zu bytes", path,
                 sizeof(sa->sun_path) - 1);
        return -1;
    }
    strlcpy_fg(sa->sun_path, path, sizeof(sa->sun_path));
    return 0;
}

/* True when a daemon answers on the socket at path. */
static bool socket_alive(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool alive = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return alive;
}

struct control *control_open(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (make_addr(path, &sa, err, errlen) < 0)
        return NULL;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket; not replacing it", path);
            return NULL;
        }
        if (socket_alive(&sa)) {
            snprintf(err, errlen, "another process is listening on control socket %s", path);
            return NULL;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create control socket: %s", strerror(errno));
        return NULL;
    }
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0) {
        snprintf(err, errlen, "cannot listen on control socket %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    struct control *c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->path = xstrdup(path);
    return c;
}

static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = CLIENT_TIMEOUT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* "name" of the connecting user from the kernel's credentials, or "uid N". */
static void peer_user(int fd, char *user, size_t len)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
        strlcpy_fg(user, "unknown", len);
        return;
    }
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) == 0 && res)
        snprintf(user, len, "local:%s", res->pw_name);
    else
        snprintf(user, len, "local:uid %u", (unsigned)cred.uid);
}

/* Read one line (without its newline) into line. 0, or -1 on timeout, EOF or overflow. */
static int read_line(int fd, char *line, size_t len)
{
    size_t n = 0;
    while (n < len - 1) {
        ssize_t r = read(fd, line + n, len - 1 - n);
        if (r <= 0)
            return n > 0 && r == 0 ? (line[n] = '\0', 0) : -1;
        n += (size_t)r;
        line[n] = '\0';
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            if (nl > line && nl[-1] == '\r')
                nl[-1] = '\0';
            return 0;
        }
    }
    return -1;
}

static void serve(int fd, control_fn fn, void *arg)
{
    char line[CONTROL_LINE_MAX];
    char reply[65536];
    char user[96];
    set_timeouts(fd);
    if (read_line(fd, line, sizeof(line)) < 0) {
        snprintf(reply, sizeof(reply), "error: expected one command line of at most %d bytes\n",
                 CONTROL_LINE_MAX - 2);
    } else {
        peer_user(fd, user, sizeof(user));
        reply[0] = '\0';
        fn(arg, line, user, reply, sizeof(reply) - 1);
        strcat(reply, "\n");
    }
    size_t len = strlen(reply);
    if (write(fd, reply, len) != (ssize_t)len)
        log_debug("control: a client left before reading its reply");
}

void control_poll(struct control *c, control_fn fn, void *arg)
{
    if (!c)
        return;
    /* accept4 sets up a socket before it finds nobody waiting; poll is cheaper. */
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0)
        return;
    for (int i = 0; i < MAX_PER_POLL; i++) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return;
        serve(fd, fn, arg);
        close(fd);
    }
}

void control_close(struct control *c)
{
    if (!c)
        return;
    close(c->fd);
    unlink(c->path);
    free(c->path);
    free(c);
}

int control_request(const char *path, const char *line, char *reply, size_t replylen, char *err,
                    size_t errlen)
{
    struct sockaddr_un sa;
    if (make_addr(path, &sa, err, errlen) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen,
                 "cannot reach the gateway at %s: %s (is firegw running, and may "
                 "you use its control socket?)",
                 path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char *msg = xasprintf("%s\n", line);
    size_t len = strlen(msg);
    bool sent = write(fd, msg, len) == (ssize_t)len;
    free(msg);
    if (!sent || read_line(fd, reply, replylen) < 0) {
        snprintf(err, errlen, "no answer from the gateway at %s", path);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}
