/*
 * The local control socket, both ends. On the daemon's side a thread of its
 * own accepts a connection, reads its line (with a short timeout), hands it
 * to the main loop, wakes the loop, waits for the answer and writes it. A
 * client that connects and says nothing, or a flood of them, holds only that
 * thread: the main loop never waits for a client, so it never delays an
 * alarm. Commands themselves are interpreted by the caller's control_fn,
 * on the main loop, in control_poll.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

/* Longest a client may take to send its whole line, and to read its whole reply. */
#define CLIENT_TIMEOUT_MS 200
#define REPLY_TIMEOUT_MS 1000
#define REPLY_MAX 65536

struct control {
    int fd;      /* the listening socket */
    int stop[2]; /* a pipe: written by control_close to end the thread */
    char *path;
    control_wake_fn wake;
    void *wake_arg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t answered;
    /* The one request handed to the main loop; line and user are the thread's until
       pending is set, reply is the main loop's until it clears pending. */
    bool pending;
    bool closing;
    char line[CONTROL_LINE_MAX];
    char user[96];
    char reply[REPLY_MAX];
};

static void *serve_thread(void *arg);

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

struct control *control_open(const char *path, control_wake_fn wake, void *wake_arg, char *err,
                             size_t errlen)
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
    c->wake = wake;
    c->wake_arg = wake_arg;
    if (pipe2(c->stop, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot make the control socket's stop pipe: %s", strerror(errno));
        close(fd);
        unlink(path);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->answered, NULL);
    c->path = xstrdup(path);
    int e = pthread_create(&c->thread, NULL, serve_thread, c);
    if (e == 0)
        pthread_setname_np(c->thread, "control");
    if (e != 0) {
        snprintf(err, errlen, "cannot start the control socket's thread: %s", strerror(e));
        close(c->stop[0]);
        close(c->stop[1]);
        c->stop[0] = c->stop[1] = -1;
        control_close(c);
        return NULL;
    }
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

/* How read_line ended. */
enum line_end {
    LINE_OK = 0,
    LINE_BAD = -1,    /* timeout, error, overflow, or (when one is needed) no newline */
    LINE_SILENT = -2, /* the peer closed without a byte (a liveness probe) */
};

/*
 * Read one line (without its newline) into line, by the monotonic deadline
 * (0: none but the socket's own timeout). End of file also ends a line unless
 * need_newline: a reply cut short must not pass for a whole one.
 */
static enum line_end read_line(int fd, char *line, size_t len, int64_t deadline, bool need_newline)
{
    size_t n = 0;
    while (n < len - 1) {
        if (deadline) {
            /* Whole line by the deadline: a client sending a byte at a time cannot last. */
            int64_t left = deadline - mono_ms();
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
                return LINE_BAD;
        }
        ssize_t r = read(fd, line + n, len - 1 - n);
        if (r == 0 && n == 0)
            return LINE_SILENT;
        if (r == 0 && !need_newline) {
            line[n] = '\0';
            return LINE_OK;
        }
        if (r <= 0)
            return LINE_BAD;
        n += (size_t)r;
        line[n] = '\0';
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            if (nl > line && nl[-1] == '\r')
                nl[-1] = '\0';
            return LINE_OK;
        }
    }
    return LINE_BAD;
}

/* Hand line to the main loop and wait for its answer in reply (REPLY_MAX bytes). */
static void ask_main_loop(struct control *c, const char *line, const char *user, char *reply)
{
    bool answered = false;
    pthread_mutex_lock(&c->mu);
    if (!c->closing) {
        strlcpy_fg(c->line, line, sizeof(c->line));
        strlcpy_fg(c->user, user, sizeof(c->user));
        c->reply[0] = '\0';
        c->pending = true;
        pthread_mutex_unlock(&c->mu);
        c->wake(c->wake_arg);
        pthread_mutex_lock(&c->mu);
        while (c->pending && !c->closing)
            pthread_cond_wait(&c->answered, &c->mu);
        answered = !c->pending;
        c->pending = false;
    }
    if (answered)
        strlcpy_fg(reply, c->reply, REPLY_MAX);
    else
        strlcpy_fg(reply, "error: the gateway is stopping; command not carried out", REPLY_MAX);
    pthread_mutex_unlock(&c->mu);
}

static void serve(struct control *c, int fd, char *reply)
{
    char line[CONTROL_LINE_MAX];
    char user[96];
    set_timeouts(fd);
    enum line_end end = read_line(fd, line, sizeof(line), mono_ms() + CLIENT_TIMEOUT_MS, false);
    if (end == LINE_SILENT)
        return;
    if (end != LINE_OK) {
        snprintf(reply, REPLY_MAX, "error: expected one command line of at most %d bytes",
                 CONTROL_LINE_MAX - 2);
    } else {
        peer_user(fd, user, sizeof(user));
        ask_main_loop(c, line, user, reply);
    }
    size_t len = strlen(reply);
    reply[len++] = '\n';
    if (send_all_by(fd, reply, len, mono_ms() + REPLY_TIMEOUT_MS) != 0)
        log_notice("control: a client left, or read too slowly, before it had its whole reply");
}

/* One connection at a time: the others wait in the listen backlog. */
static void *serve_thread(void *arg)
{
    struct control *c = arg;
    struct log_limit accept_limit = {0};
    char *reply = xmalloc(REPLY_MAX + 1);
    for (;;) {
        struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
                                {.fd = c->stop[0], .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_err("control socket: poll: %s; local commands are no longer served",
                    strerror(errno));
            break;
        }
        if (pfd[1].revents)
            break;
        int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            /* Out of descriptors or memory: the connection stays queued, so wait a little
               rather than spin. (EAGAIN, ECONNABORTED: the client gave up; go on.) */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_limited(&accept_limit, mono_ms(), LOG_LVL_ERR,
                            "control socket: cannot accept a connection: %s", strerror(errno));
                poll(&pfd[1], 1, 1000);
            }
            continue;
        }
        serve(c, fd, reply);
        close(fd);
    }
    free(reply);
    return NULL;
}

void control_poll(struct control *c, control_fn fn, void *arg)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    bool pending = c->pending;
    pthread_mutex_unlock(&c->mu);
    if (!pending)
        return;
    /* The thread waits, touching neither line, user nor reply, until pending is cleared. */
    fn(arg, c->line, c->user, c->reply, sizeof(c->reply) - 1);
    pthread_mutex_lock(&c->mu);
    c->pending = false;
    pthread_cond_signal(&c->answered);
    pthread_mutex_unlock(&c->mu);
}

void control_close(struct control *c)
{
    if (!c)
        return;
    if (c->stop[1] >= 0) {
        pthread_mutex_lock(&c->mu);
        c->closing = true;
        pthread_cond_signal(&c->answered);
        pthread_mutex_unlock(&c->mu);
        while (write(c->stop[1], "x", 1) < 0 && errno == EINTR)
            ;
        pthread_join(c->thread, NULL);
        close(c->stop[0]);
        close(c->stop[1]);
    }
    pthread_cond_destroy(&c->answered);
    pthread_mutex_destroy(&c->mu);
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
    bool sent = send_all_by(fd, msg, strlen(msg), mono_ms() + 10000) == 0;
    free(msg);
    if (!sent || read_line(fd, reply, replylen, 0, true) != LINE_OK) {
        snprintf(err, errlen, "no answer from the gateway at %s", path);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}
