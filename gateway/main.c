/*
 * firegw: the command line (options, the `ctl`, `events`, `scan`, `probe` and
 * `status` subcommands),
 * signals, and the main loop that turns the gateway (gateway.c) until it is
 * asked to stop.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "bus.h"
#include "cfg.h"
#include "ctl.h"
#include "evlog.h"
#include "gateway.h"
#include "installer.h"
#include "log.h"
#include "payload.h"
#include "util.h"

#define MAX_OVERRIDES 64
#define ERRBUF 16384
/*
 * Longest wait of the main loop. News from a bus, a receipt or message from
 * a broker, a web request, a command on the control socket and a stop or
 * reload signal wake it at once, and it wakes for its next timer
 * (gateway_wait_ms); LOOP_BUSY_MS while starting. Fewer turns of an idle
 * loop are most of the daemon's own CPU time in a small building.
 */
#define LOOP_IDLE_MS 1000
#define LOOP_BUSY_MS 250

static atomic_int stop_requested;
static atomic_int reload_requested;

/*
 * SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken here with
 * sigwait, so the main loop can be woken through its queue (no handler could
 * do that safely). The thread ends with the first stop signal.
 */
struct signal_taker {
    sigset_t set;
    struct queue *wake;
    pthread_t thread;
};

static void *take_signals(void *arg)
{
    struct signal_taker *st = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&st->set, &sig) != 0)
            continue;
        if (sig == SIGHUP)
            atomic_store(&reload_requested, 1);
        else
            atomic_store(&stop_requested, 1);
        bus_wake(st->wake);
        if (sig != SIGHUP)
            return NULL;
    }
}

struct options {
    const char *config;
    const char *check_config;
    const char *overrides[MAX_OVERRIDES];
    size_t noverrides;
    const char *log_level;
    const char *state_dir;
    const char *control;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: firegw --config FILE [--set SECTION[.ID].KEY=VALUE]... [options]\n"
            "       firegw --check-config FILE [--set ...]\n"
            "       firegw ctl [--state-dir DIR | --control PATH] COMMAND...\n"
            "       firegw events [--state-dir DIR] [filters]  (see firegw events --help)\n"
            "       firegw status [--state-dir DIR] [--json]\n"
            "       firegw scan --config FILE --bus ID [--from N --to N] [--timeout DURATION]\n"
            "       firegw probe --config FILE --device ID  (see firegw probe --help)\n"
            "\n"
            "Polls smoke and heat detectors and fire panel modules over Modbus, evaluates\n"
            "alarm rules and reports alarms, faults and heartbeats over MQTT.\n"
            "\n"
            "  -c, --config FILE        site configuration (see docs/config.md)\n"
            "  -n, --check-config FILE  validate FILE and its profiles, print a summary, exit\n"
            "  -s, --set KEY=VALUE      override a config value, e.g. bus.rs485-a.baud=19200\n"
            "  -l, --log-level LEVEL    error, warning, notice, info or debug\n"
            "      --state-dir DIR      where durable state lives (overrides gateway.state_dir)\n"
            "      --control PATH       control socket (default STATE_DIR/control.sock)\n"
            "  -V, --version            print the version\n"
            "  -h, --help               this text\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, 'n'},
        {"set", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 'S'},
        {"control", required_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:n:s:l:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'n':
            o->check_config = optarg;
            break;
        case 's':
            if (o->noverrides == MAX_OVERRIDES) {
                fprintf(stderr, "firegw: at most %d --set options\n", MAX_OVERRIDES);
                return 2;
            }
            o->overrides[o->noverrides++] = optarg;
            break;
        case 'l':
            o->log_level = optarg;
            break;
        case 'S':
            o->state_dir = optarg;
            break;
        case 'C':
            o->control = optarg;
            break;
        case 'V':
            printf("firegw %s\n", FIREGW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firegw: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!o->config && !o->check_config) {
        fprintf(stderr, "firegw: --config FILE or --check-config FILE is required\n");
        usage(stderr);
        return 2;
    }
    return -1;
}

static struct cfg *load_config(const char *path, const struct options *o)
{
    char *err = xcalloc(1, ERRBUF);
    struct cfg *cfg = cfg_load_ex(path, o->overrides, o->noverrides, err, ERRBUF);
    if (!cfg)
        fprintf(stderr, "%s", err);
    free(err);
    return cfg;
}

static int check_config(const struct options *o)
{
    struct cfg *cfg = load_config(o->check_config, o);
    if (!cfg) {
        fprintf(stderr, "%s: configuration has errors\n", o->check_config);
        return 1;
    }
    printf("%s: configuration OK: building \"%s\", %zu buses, %zu devices, %zu zones, "
           "%zu detectors, %zu profiles, %zu uplinks\n",
           o->check_config, cfg->site.id, cfg->nbuses, cfg->ndevices, cfg->nzones, cfg->ndetectors,
           cfg->profiles.count, cfg->nuplinks);
    cfg_free(cfg);
    return 0;
}

static int run(struct gateway *gw)
{
    while (!atomic_load(&stop_requested)) {
        if (atomic_exchange(&reload_requested, 0)) {
            char err[16384];
            sd_notify(0, "RELOADING=1");
            gateway_reload(gw, "SIGHUP", err, sizeof(err));
            sd_notifyf(0, "READY=1\nSTATUS=polling %zu buses, %zu detectors", gw->cfg->nbuses,
                       gw->cfg->ndetectors);
        }
        gateway_step(gw, gateway_wait_ms(gw, LOOP_IDLE_MS, LOOP_BUSY_MS, mono_ms()));
    }
    sd_notify(0, "STOPPING=1");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return ctl_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "events") == 0)
        return evlog_cli(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return installer_status(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "scan") == 0)
        return installer_scan(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "probe") == 0)
        return installer_probe(argc - 1, argv + 1);
    struct options o = {0};
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.log_level) {
        enum log_level lvl;
        if (log_level_parse(o.log_level, &lvl) < 0) {
            fprintf(stderr,
                    "firegw: unknown log level \"%s\" (error, warning, notice, info, "
                    "debug)\n",
                    o.log_level);
            return 2;
        }
        log_set_level(lvl);
    }
    if (o.check_config)
        return check_config(&o);

    struct gateway gw = {.lock_fd = -1};
    gw.cfg = load_config(o.config, &o);
    gw.config_path = o.config;
    gw.overrides = o.overrides;
    gw.noverrides = o.noverrides;
    if (!gw.cfg)
        return 1;
    if (!o.log_level && gw.cfg->gateway.log_level) {
        enum log_level lvl;
        if (log_level_parse(gw.cfg->gateway.log_level, &lvl) == 0)
            log_set_level(lvl);
    }

    /* Before any thread starts, so that all of them inherit the mask. */
    struct signal_taker st = {0};
    sigemptyset(&st.set);
    sigaddset(&st.set, SIGINT);
    sigaddset(&st.set, SIGTERM);
    sigaddset(&st.set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &st.set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit (LimitFSIZE=, ulimit -f) must be a write error, not the end of the daemon.
     */
    signal(SIGXFSZ, SIG_IGN);

    log_notice("firegw %s starting: building \"%s\" (%s), %zu buses, %zu devices, %zu detectors, "
               "%zu uplinks",
               FIREGW_VERSION, gw.cfg->site.id, gw.cfg->site.name, gw.cfg->nbuses, gw.cfg->ndevices,
               gw.cfg->ndetectors, gw.cfg->nuplinks);
    if (gateway_start(&gw, o.state_dir, o.control) == 0) {
        /* A signal that came while starting is pending and taken now. */
        st.wake = gw.queue;
        int e = pthread_create(&st.thread, NULL, take_signals, &st);
        if (e == 0)
            pthread_setname_np(st.thread, "signals");
        if (e != 0) {
            log_err("cannot start the signal thread: %s", strerror(e));
            rc = 1;
        } else {
            rc = run(&gw);
            pthread_join(st.thread, NULL);
            log_notice("firegw stopping");
            gateway_drain(&gw);
        }
    } else {
        rc = 1;
    }
    gateway_free(&gw);
    return rc;
}
