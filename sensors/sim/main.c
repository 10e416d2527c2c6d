/*
 * firegw-sim: emulates a whole building for the gateway from the same site
 * config. It owns start-up (options, config, scenario checks), the single
 * poll loop that serves every bus and the control socket, the scenario clock
 * (scaled by --speed), the ready file, and a clean exit on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "building.h"
#include "cfg.h"
#include "control.h"
#include "log.h"
#include "scenario.h"
#include "server.h"
#include "util.h"

#define MAX_SETS 64
#define MAX_FDS 1024
#define TICK_MS 50 /* how often ramps, noise and counters move */

struct sim {
    struct cfg *cfg;
    struct bld *bld;
    struct srv *srv;
    struct ctl *ctl;
    struct scenario *scn;
    size_t next_step;
    int64_t scn_t0; /* simulated time the scenario (re)started */
    bool scn_done;
    double speed;
    int64_t start_mono;
    bool quit;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int64_t sim_now(const struct sim *s)
{
    return (int64_t)((double)(mono_ms() - s->start_mono) * s->speed);
}

static void usage(FILE *f)
{
    fputs("usage: firegw-sim --config SITE.conf [--set SECTION[.ID].KEY=VALUE ...]\n"
          "                  [--scenario FILE] [--control SOCKET] [--seed N] [--speed X]\n"
          "                  [--ready-file PATH] [--rtu-wire-time] [-v]\n"
          "Emulates every bus and device of the site config as Modbus slaves on loopback\n"
          "(TCP) and pseudo-terminals (RTU). See docs/simulator.md.\n",
          f);
}

/* Line faults go to the server, everything else to the building. */
static int apply(struct sim *s, const struct scn_cmd *c, int64_t now, char *err, size_t errlen)
{
    if (c->op == SCN_STALL || c->op == SCN_UNPLUG || c->op == SCN_PLUG)
        return srv_line(s->srv, c, err, errlen);
    return bld_apply(s->bld, c, now, err, errlen);
}

static void run_scenario(struct sim *s, int64_t now)
{
    char err[256];
    while (s->scn && !s->scn_done && s->next_step < s->scn->nsteps) {
        const struct scn_step *st = &s->scn->steps[s->next_step];
        int64_t due = s->scn_t0 + st->at_ms;
        if (due > now)
            return;
        s->next_step++;
        if (st->cmd.op == SCN_END) {
            log_info("scenario %s:%d: end", s->scn->path, st->line);
            s->scn_done = true;
            return;
        }
        if (st->cmd.op == SCN_LOOP) {
            log_info("scenario %s:%d: loop", s->scn->path, st->line);
            s->scn_t0 = due;
            s->next_step = 0;
            return; /* the next round starts on the next tick, never in a tight loop */
        }
        if (apply(s, &st->cmd, due, err, sizeof(err)) < 0)
            log_warn("scenario %s:%d: %s", s->scn->path, st->line, err);
        else
            log_info("scenario %s:%d: %s %s", s->scn->path, st->line, scn_op_name(st->cmd.op),
                     st->cmd.target);
    }
    if (s->scn && !s->scn_done && s->next_step >= s->scn->nsteps) {
        log_info("scenario %s: all steps played", s->scn->path);
        s->scn_done = true;
    }
}

static void write_status(struct sim *s, FILE *out)
{
    fprintf(out, "{\"pid\":%ld,\"uptime_ms\":%lld,\"speed\":%g,", (long)getpid(),
            (long long)(mono_ms() - s->start_mono), s->speed);
    if (s->scn)
        fprintf(out, "\"scenario\":{\"path\":\"%s\",\"next_step\":%zu,\"steps\":%zu,\"done\":%s},",
                s->scn->path, s->next_step, s->scn->nsteps, s->scn_done ? "true" : "false");
    bld_status(s->bld, out);
    fputc(',', out);
    srv_status(s->srv, out);
    fputc('}', out);
}

static void on_command(void *arg, const char *line, FILE *reply)
{
    struct sim *s = arg;
    struct scn_cmd c;
    char err[256];
    if (scn_parse_command(line, true, &c, err, sizeof(err)) < 0) {
        fprintf(reply, "error: %s", err);
        return;
    }
    int64_t now = sim_now(s);
    switch (c.op) {
    case SCN_STATUS:
        write_status(s, reply);
        return;
    case SCN_QUIT:
        s->quit = true;
        break;
    case SCN_END:
        s->scn_done = true;
        break;
    case SCN_LOOP:
        if (!s->scn) {
            fputs("error: no scenario was given (--scenario)", reply);
            return;
        }
        s->scn_t0 = now;
        s->next_step = 0;
        s->scn_done = false;
        break;
    default:
        if (bld_check(s->bld, &c, err, sizeof(err)) < 0 ||
            apply(s, &c, now, err, sizeof(err)) < 0) {
            fprintf(reply, "error: %s", err);
            return;
        }
        break;
    }
    log_info("control: %s", line);
    fputs("ok", reply);
}

/* Every name a scenario uses must exist in this building, checked before anything runs. */
static int check_scenario(const struct sim *s, char *err, size_t errlen)
{
    int bad = 0;
    size_t used = 0;
    err[0] = '\0';
    for (size_t i = 0; i < s->scn->nsteps; i++) {
        char msg[256];
        const struct scn_step *st = &s->scn->steps[i];
        if (bld_check(s->bld, &st->cmd, msg, sizeof(msg)) == 0)
            continue;
        bad++;
        if (used < errlen) {
            int n = snprintf(err + used, errlen - used, "%s:%d: %s\n", s->scn->path, st->line, msg);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    return bad ? -1 : 0;
}

/* Written to PATH.tmp, synced, then renamed, so a reader never sees half a file. */
static int write_ready_file(const char *path)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = -1;
    if (fd >= 0) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
        if (write(fd, buf, (size_t)n) == n && fsync(fd) == 0)
            rc = 0;
        if (close(fd) < 0)
            rc = -1;
        if (rc == 0 && rename(tmp, path) < 0)
            rc = -1;
    }
    if (rc < 0) {
        log_err("cannot write the ready file %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static int serve(struct sim *s)
{
    static struct pollfd fds[MAX_FDS];
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    /* Blocked except inside ppoll, so a signal can never slip in between check and wait. */
    sigprocmask(SIG_BLOCK, &block, &old);
    while (!stop_signal && !s->quit) {
        int64_t now = sim_now(s);
        run_scenario(s, now);
        bld_tick(s->bld, now);
        size_t n1 = srv_pollfds(s->srv, fds, MAX_FDS);
        size_t n2 = s->ctl ? ctl_pollfds(s->ctl, fds + n1, MAX_FDS - n1) : 0;
        int64_t timeout_us = TICK_MS * 1000;
        int64_t t = srv_timeout_us(s->srv);
        if (t >= 0 && t < timeout_us)
            timeout_us = t;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)timeout_us * 1000L};
        int rc = ppoll(fds, n1 + n2, &ts, &old);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_err("poll: %s", strerror(errno));
            sigprocmask(SIG_SETMASK, &old, NULL);
            return -1;
        }
        srv_handle(s->srv, fds, n1, mono_ms());
        if (s->ctl)
            ctl_handle(s->ctl, fds + n1, n2);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (stop_signal)
        log_info("stopping on signal %d", (int)stop_signal);
    else
        log_info("stopping on the quit command");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"scenario", required_argument, NULL, 'S'},
        {"control", required_argument, NULL, 'C'},
        {"seed", required_argument, NULL, 'e'},
        {"speed", required_argument, NULL, 'x'},
        {"ready-file", required_argument, NULL, 'r'},
        {"rtu-wire-time", no_argument, NULL, 'w'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *scenario = NULL, *control = NULL, *ready = NULL;
    const char *sets[MAX_SETS];
    size_t nsets = 0;
    long long seed = 1;
    double speed = 1.0;
    bool wire_time = false;
    int opt;

    log_set_ident("firegw-sim");
    while ((opt = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 's':
            if (nsets == MAX_SETS) {
                log_err("at most %d --set options", MAX_SETS);
                return 2;
            }
            sets[nsets++] = optarg;
            break;
        case 'S':
            scenario = optarg;
            break;
        case 'C':
            control = optarg;
            break;
        case 'e':
            if (parse_int(optarg, 0, INT64_MAX, &seed) < 0) {
                log_err("--seed %s: expected an integer from 0", optarg);
                return 2;
            }
            break;
        case 'x':
            if (parse_double(optarg, 0.01, 1000, &speed) < 0) {
                log_err("--speed %s: expected a number from 0.01 to 1000", optarg);
                return 2;
            }
            break;
        case 'r':
            ready = optarg;
            break;
        case 'w':
            wire_time = true;
            break;
        case 'v':
            log_set_level(LOG_LVL_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static char err[8192];
    struct sim s = {.speed = speed, .start_mono = mono_ms()};
    int status = 1;
    bool ready_written = false;
    s.cfg = cfg_load_ex(config, sets, nsets, err, sizeof(err));
    if (!s.cfg) {
        fprintf(stderr, "%s", err);
        log_err("configuration has errors");
        return 1;
    }
    s.bld = bld_new(s.cfg, (uint64_t)seed, err, sizeof(err));
    if (!s.bld) {
        log_err("%s", err);
        goto out;
    }
    if (scenario) {
        s.scn = scn_load(scenario, err, sizeof(err));
        if (!s.scn || check_scenario(&s, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s", err);
            log_err("scenario %s has errors", scenario);
            goto out;
        }
    }
    s.srv = srv_new(s.cfg, s.bld, wire_time, err, sizeof(err));
    if (!s.srv) {
        log_err("%s", err);
        goto out;
    }
    if (control) {
        s.ctl = ctl_new(control, on_command, &s, err, sizeof(err));
        if (!s.ctl) {
            log_err("%s", err);
            goto out;
        }
    }
    if (ready) {
        if (write_ready_file(ready) < 0)
            goto out;
        ready_written = true;
    }
    log_info("ready: %zu buses, %zu devices, %zu detectors%s%s, speed %g, seed %lld", s.cfg->nbuses,
             s.cfg->ndevices, s.cfg->ndetectors, scenario ? ", scenario " : "",
             scenario ? scenario : "", speed, seed);
    s.start_mono = mono_ms();
    status = serve(&s) < 0 ? 1 : 0;
out:
    if (ready_written)
        unlink(ready);
    ctl_free(s.ctl);
    srv_free(s.srv);
    scn_free(s.scn);
    bld_free(s.bld);
    cfg_free(s.cfg);
    return status;
}
