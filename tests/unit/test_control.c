/*
 * Unit tests for the control socket's daemon side (gateway/control.c): a
 * command is read on the control thread, which wakes the main loop through
 * its callback; the command then runs in control_poll and its reply reaches
 * the client. A client that never finishes its line, or sends it a byte at a
 * time, is answered with an error on the control thread alone; one that leaves
 * before its reply costs nothing (no SIGPIPE); one still waiting when the
 * socket closes is told the gateway is stopping. A reply cut short is no answer.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.h"
#include "util.h"

/* What the wake callback saw: counted under a lock, waited for with a bound. */
struct waker {
    pthread_mutex_t mu;
    int wakes;
};

static void on_wake(void *arg)
{
    struct waker *w = arg;
    pthread_mutex_lock(&w->mu);
    w->wakes++;
    pthread_mutex_unlock(&w->mu);
}

static int wakes_now(struct waker *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->wakes;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Wait (at most 20 s) until the callback has been called n times in all; the count. */
static int wait_wakes(struct waker *w, int n)
{
    int64_t deadline = mono_ms() + 20000;
    pthread_mutex_lock(&w->mu);
    while (w->wakes < n && mono_ms() < deadline) {
        pthread_mutex_unlock(&w->mu);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&w->mu);
    }
    int got = w->wakes;
    pthread_mutex_unlock(&w->mu);
    return got;
}

struct fixture {
    char dir[64];
    char path[128];
    struct waker w;
    struct control *c;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    strlcpy_fg(f->dir, "/tmp/firegw-control-XXXXXX", sizeof(f->dir));
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
    pthread_mutex_init(&f->w.mu, NULL);
    char err[256];
    f->c = control_open(f->path, on_wake, &f->w, err, sizeof(err));
    if (!f->c) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    control_close(f->c);
    pthread_mutex_destroy(&f->w.mu);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A client on its own thread: sends line (as is) and keeps the reply. */
struct client {
    const char *path;
    const char *line;
    char reply[256];
    int rc;
    pthread_t t;
};

static void *client_run(void *arg)
{
    struct client *cl = arg;
    char err[256];
    cl->rc = control_request(cl->path, cl->line, cl->reply, sizeof(cl->reply), err, sizeof(err));
    if (cl->rc < 0)
        strlcpy_fg(cl->reply, err, sizeof(cl->reply));
    return NULL;
}

static void client_start(struct client *cl, const char *path, const char *line)
{
    memset(cl, 0, sizeof(*cl));
    cl->path = path;
    cl->line = line;
    assert_int_equal(pthread_create(&cl->t, NULL, client_run, cl), 0);
}

static int runs;

static void echo(void *arg, const char *line, const char *user, char *reply, size_t len)
{
    (void)arg;
    runs++;
    snprintf(reply, len, "ok %s from %s", line, strncmp(user, "local:", 6) == 0 ? "local" : user);
}

/*
 * A client sends line; the control thread must wake the loop before anyone polls, and the
 * command, run once by control_poll, answers the client with want.
 */
static void command_served(struct fixture *f, const char *line, const char *want)
{
    int wakes = wakes_now(&f->w);
    int ran = runs;
    struct client cl;
    client_start(&cl, f->path, line);
    assert_int_equal(wait_wakes(&f->w, wakes + 1), wakes + 1);
    control_poll(f->c, echo, NULL);
    assert_int_equal(runs, ran + 1);
    pthread_join(cl.t, NULL);
    assert_int_equal(cl.rc, 0);
    assert_string_equal(cl.reply, want);
}

static void test_command_wakes_the_loop_and_gets_its_reply(void **state)
{
    struct fixture *f = *state;
    runs = 0;
    /* nothing waiting: control_poll returns without running anything */
    control_poll(f->c, echo, NULL);
    assert_int_equal(runs, 0);

    command_served(f, "status", "ok status from local");
    /* answered once: another poll runs nothing */
    control_poll(f->c, echo, NULL);
    assert_int_equal(runs, 1);
}

/* A raw client connection to path, reads timing out after 20 s. */
static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_fg(sa.sun_path, path, sizeof(sa.sun_path));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void test_unfinished_line_is_refused_without_the_loop(void **state)
{
    struct fixture *f = *state;
    runs = 0;
    int fd = connect_to(f->path);
    assert_int_equal(write(fd, "sta", 3), 3);
    /* no newline: the control thread answers by itself once the client's time is up */
    char buf[256] = {0};
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "error: expected one command line"));
    assert_int_equal(wakes_now(&f->w), 0);
    control_poll(f->c, echo, NULL);
    assert_int_equal(runs, 0);

    /* and the next client is served as usual */
    command_served(f, "silence all", "ok silence all from local");
}

static void test_whole_line_within_its_time(void **state)
{
    struct fixture *f = *state;
    runs = 0;
    int fd = connect_to(f->path);
    /* a byte every 20 ms, each well within a per-read timeout: cut off after 200 ms for the
       whole line, long before the 100 bytes are sent */
    char buf[256] = {0};
    int sent = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (sent < 100 && poll(&pfd, 1, 20) == 0)
        if (send(fd, "s", 1, MSG_NOSIGNAL) == 1)
            sent++;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "error: expected one command line"));
    assert_true(sent < 100);
    assert_int_equal(wakes_now(&f->w), 0);
}

static void test_client_gone_before_its_reply(void **state)
{
    struct fixture *f = *state;
    runs = 0;
    /* a liveness probe: connects and leaves without a word, and gets nothing */
    for (int i = 0; i < 5; i++)
        close(connect_to(f->path));
    /* a client that leaves before its reply: writing it must not raise SIGPIPE, which this
       process does not ignore */
    int fd = connect_to(f->path);
    assert_int_equal(write(fd, "status\n", 7), 7);
    assert_int_equal(wait_wakes(&f->w, 1), 1);
    close(fd);
    control_poll(f->c, echo, NULL);
    assert_int_equal(runs, 1);
    command_served(f, "status", "ok status from local");
}

/* A fake daemon that answers any line with "ok cut" and closes, without a newline. */
static void *answer_without_newline(void *arg)
{
    int lfd = *(int *)arg;
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0) {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof(buf));
        (void)n;
        n = write(fd, "ok cut", 6);
        (void)n;
        close(fd);
    }
    return NULL;
}

static void test_reply_cut_short_is_no_answer(void **state)
{
    struct fixture *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/fake.sock", f->dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_fg(sa.sun_path, path, sizeof(sa.sun_path));
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, answer_without_newline, &lfd), 0);
    char reply[64] = "", err[256] = "";
    int rc = control_request(path, "status", reply, sizeof(reply), err, sizeof(err));
    pthread_join(t, NULL);
    close(lfd);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "no answer from the gateway"));
}

static void test_close_answers_a_waiting_client(void **state)
{
    struct fixture *f = *state;
    runs = 0;
    struct client cl;
    client_start(&cl, f->path, "reset all");
    assert_int_equal(wait_wakes(&f->w, 1), 1);
    /* the gateway stops before its loop ran the command */
    control_close(f->c);
    f->c = NULL;
    pthread_join(cl.t, NULL);
    assert_int_equal(cl.rc, 0);
    assert_string_equal(cl.reply, "error: the gateway is stopping; command not carried out");
    assert_int_equal(runs, 0);
    assert_int_equal(access(f->path, F_OK), -1);
}

static void test_second_daemon_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_null(control_open(f->path, on_wake, &f->w, err, sizeof(err)));
    assert_non_null(strstr(err, "another process is listening on control socket"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_command_wakes_the_loop_and_gets_its_reply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unfinished_line_is_refused_without_the_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_whole_line_within_its_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_before_its_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_cut_short_is_no_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_answers_a_waiting_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_daemon_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
