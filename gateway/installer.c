/*
 * `firegw scan`, `firegw probe` and `firegw status`: the installer's tools at
 * the gateway. Scan and probe open the bus themselves, exactly as a poller
 * does (bus_link), but only after making sure no running daemon owns that
 * RS-485 line: two masters on one line garble each other's frames, and the
 * daemon's polls are the fire alarms. Status asks the running daemon through
 * its control socket and prints the answer for people.
 */
#include "installer.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "bus.h"
#include "cfg.h"
#include "control.h"
#include "probe.h"
#include "util.h"

#define ERRBUF 16384
#define MAX_SETS 64
#define MAX_CHANNELS 256
#define DEFAULT_STATE_DIR "/var/lib/firegw"
#define SCAN_DEFAULT_TIMEOUT_MS 200
#define REPLY_MAX 65536

enum {
    OPT_CONFIG = 'c',
    OPT_SET = 's',
    OPT_HELP = 'h',
    OPT_STATE_DIR = 256,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_BUS,
    OPT_FROM,
    OPT_TO,
    OPT_REGISTER,
    OPT_PROFILE,
    OPT_DEVICE,
    OPT_UNIT,
    OPT_CHANNEL,
    OPT_RETRIES,
    OPT_CONTROL,
};

/* Options scan and probe share. */
struct common {
    const char *prog; /* "scan" or "probe", for messages */
    const char *config;
    const char *sets[MAX_SETS];
    size_t nsets;
    const char *state_dir;
    int64_t timeout_ms; /* 0: the default */
    bool json;
};

static void scan_usage(FILE *out)
{
    fprintf(out,
            "Usage: firegw scan --config FILE --bus ID [--from N] [--to N] [--timeout DURATION]\n"
            "                   [--register TABLE:ADDRESS | --profile NAME] [--json]\n"
            "\n"
            "Asks every unit id of a bus for one register and lists the ones that answer,\n"
            "with how they answered (registers, or a Modbus exception, which also proves a\n"
            "device is there). Refuses an RS-485 bus that the running daemon owns.\n"
            "\n"
            "  -c, --config FILE       site configuration; the bus is opened as configured\n"
            "  -s, --set KEY=VALUE     override a config value, as for the daemon\n"
            "      --bus ID            the [bus] to scan\n"
            "      --from N, --to N    unit ids (default 1..247; TCP also 0 and 255)\n"
            "      --timeout DURATION  wait per unit id (default 200ms, at most 2s)\n"
            "      --register T:A      the register asked: holding:0 (default) or input:N\n"
            "      --profile NAME      ask the first register of this profile instead\n"
            "      --state-dir DIR     the daemon's state directory (default: the config's)\n"
            "      --json              one JSON document instead of text\n"
            "  -h, --help              this text\n"
            "\n"
            "Exit status: 0 some unit answered, 1 none did or the bus failed, 2 usage or\n"
            "configuration error, 3 refused because the running daemon owns the bus.\n");
}

static void probe_usage(FILE *out)
{
    fprintf(out,
            "Usage: firegw probe --config FILE --device ID [options]\n"
            "       firegw probe --config FILE --bus ID --unit N --profile NAME [--channel N]...\n"
            "\n"
            "Reads every register of a device's profile and prints, point by point, the raw\n"
            "words and what they mean (values with their units, status bits), or why a read\n"
            "failed (timeout, Modbus exception by name, garbled reply). Refuses an RS-485\n"
            "bus that the running daemon owns.\n"
            "\n"
            "  -c, --config FILE       site configuration\n"
            "  -s, --set KEY=VALUE     override a config value, as for the daemon\n"
            "      --device ID         a configured [device] (or an implicit one, BUS/UNIT)\n"
            "      --bus ID --unit N   any unit id on a configured bus, read with\n"
            "      --profile NAME      this profile (from the config's profile directories)\n"
            "      --channel N         only this channel (repeatable; default: the device's\n"
            "                          detectors, or every channel of the profile)\n"
            "      --timeout DURATION  wait per read (default the device's, at most 2s)\n"
            "      --retries N         extra tries per read (default the device's)\n"
            "      --state-dir DIR     the daemon's state directory (default: the config's)\n"
            "      --json              one JSON document instead of text\n"
            "  -h, --help              this text\n"
            "\n"
            "Exit status: 0 every read answered and every value is plausible, 1 otherwise\n"
            "or the bus failed, 2 usage or configuration error, 3 refused because the\n"
            "running daemon owns the bus.\n");
}

static void status_usage(FILE *out)
{
    fprintf(out, "Usage: firegw status [--state-dir DIR | --control PATH] [--json]\n"
                 "\n"
                 "The running daemon's live state (building, detectors, zones), as\n"
                 "`firegw ctl status` gives it, printed for people; --json prints the\n"
                 "daemon's JSON as it is.\n"
                 "\n"
                 "      --state-dir DIR  the daemon's state directory (default /var/lib/firegw)\n"
                 "      --control PATH   its control socket (default STATE_DIR/control.sock)\n"
                 "      --json           the raw JSON reply\n"
                 "  -h, --help           this text\n"
                 "\n"
                 "Exit status: 0 the daemon answered, 1 it could not be reached or refused,\n"
                 "2 usage error.\n");
}

/* Handle an option scan and probe share: 1 taken, 0 not one of them, -1 bad value. */
static int common_option(struct common *co, int c, const char *arg)
{
    switch (c) {
    case OPT_CONFIG:
        co->config = arg;
        return 1;
    case OPT_SET:
        if (co->nsets == MAX_SETS) {
            fprintf(stderr, "firegw %s: at most %d --set options\n", co->prog, MAX_SETS);
            return -1;
        }
        co->sets[co->nsets++] = arg;
        return 1;
    case OPT_STATE_DIR:
        co->state_dir = arg;
        return 1;
    case OPT_TIMEOUT:
        if (parse_duration_ms(arg, 10, BUS_PROBE_MAX_TIMEOUT_MS, &co->timeout_ms) < 0) {
            fprintf(stderr, "firegw %s: --timeout \"%s\": expected 10ms..%ds with its unit\n",
                    co->prog, arg, BUS_PROBE_MAX_TIMEOUT_MS / 1000);
            return -1;
        }
        return 1;
    case OPT_JSON:
        co->json = true;
        return 1;
    default:
        return 0;
    }
}

static int bad_option(const char *prog, int argc, char **argv, void (*usage)(FILE *))
{
    const char *what = optind - 1 < argc ? argv[optind - 1] : "?";
    fprintf(stderr, "firegw %s: unknown option, or a value missing, at \"%s\"\n", prog, what);
    usage(stderr);
    return INSTALLER_EXIT_USAGE;
}

static int number_option(const char *prog, const char *name, const char *arg, long long min,
                         long long max, long long *out)
{
    if (parse_int(arg, min, max, out) < 0) {
        fprintf(stderr, "firegw %s: --%s \"%s\": expected a whole number %lld..%lld\n", prog, name,
                arg, min, max);
        return -1;
    }
    return 0;
}

static struct cfg *load_config(const struct common *co)
{
    if (!co->config) {
        fprintf(stderr, "firegw %s: --config FILE is required\n", co->prog);
        return NULL;
    }
    char *err = xcalloc(1, ERRBUF);
    struct cfg *cfg = cfg_load_ex(co->config, co->sets, co->nsets, err, ERRBUF);
    if (!cfg)
        fprintf(stderr, "%s%s: configuration has errors\n", err, co->config);
    free(err);
    return cfg;
}

static const struct cfg_bus *find_bus(const struct cfg *cfg, const char *prog, const char *id)
{
    long i = cfg_find_bus(cfg, id);
    if (i >= 0)
        return &cfg->buses[i];
    char list[512] = "";
    size_t len = 0;
    for (size_t b = 0; b < cfg->nbuses && len < sizeof(list); b++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", b ? ", " : "",
                                cfg->buses[b].id);
    fprintf(stderr, "firegw %s: %s has no bus \"%s\" (buses: %s)\n", prog, cfg->path, id,
            cfg->nbuses ? list : "none");
    return NULL;
}

/* What holds the state directory's lock. */
enum owner { OWNER_NONE, OWNER_DAEMON, OWNER_UNKNOWN };

/*
 * Whether a daemon holds the lock of state_dir (gateway.c takes it for its
 * whole life): its pid goes to pid. The lock is only tested, never kept.
 */
static enum owner daemon_lock(const char *state_dir, char *pid, size_t pidlen, char *why,
                              size_t whylen)
{
    char *path = xasprintf("%s/firegw.lock", state_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    enum owner o = OWNER_NONE;
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
            snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
            o = OWNER_UNKNOWN;
        }
    } else if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
    } else if (errno == EWOULDBLOCK) {
        o = OWNER_DAEMON;
        ssize_t n = read(fd, pid, pidlen - 1);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (!*pid)
            strlcpy_fg(pid, "unknown", pidlen);
    } else {
        snprintf(why, whylen, "cannot test the lock %s: %s", path, strerror(errno));
        o = OWNER_UNKNOWN;
    }
    if (fd >= 0)
        close(fd);
    free(path);
    return o;
}

static bool all_digits(const char *s)
{
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Whether process pid has the file real open (as far as this user may see). */
static bool has_open(const char *pid, const char *real)
{
    char dir[300];
    snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char link[600], target[PATH_MAX];
        if (!all_digits(e->d_name))
            continue;
        snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        found = strcmp(target, real) == 0;
    }
    closedir(d);
    return found;
}

/*
 * Other processes that have the serial port open: the first firegw daemon
 * (its pid in daemon_pid) and the first other program (pid and name in
 * other_*). Only what this user may see in /proc; root sees everything.
 */
static void port_users(const char *device, long *daemon_pid, long *other_pid, char *other_name,
                       size_t namelen)
{
    char real[PATH_MAX];
    *daemon_pid = *other_pid = 0;
    if (!realpath(device, real))
        return;
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    struct dirent *e;
    while ((e = readdir(proc)) != NULL) {
        if (!all_digits(e->d_name) || atol(e->d_name) == (long)getpid() ||
            !has_open(e->d_name, real))
            continue;
        char path[300], name[64] = "";
        snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(name, sizeof(name), f))
                name[0] = '\0';
            fclose(f);
        }
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, "firegw") == 0) {
            if (!*daemon_pid)
                *daemon_pid = atol(e->d_name);
        } else if (!*other_pid) {
            *other_pid = atol(e->d_name);
            strlcpy_fg(other_name, *name ? name : "another program", namelen);
        }
    }
    closedir(proc);
}

/*
 * Whether this command may open bus b. A running daemon (its state
 * directory's lock held, or a firegw process with the port open) owns an
 * RS-485 line: refused, with what to do instead. A TCP device or gateway
 * normally takes several connections, so there it is only a note.
 */
static int may_open(const struct common *co, const struct cfg *cfg, const struct cfg_bus *b,
                    const char *endpoint)
{
    const char *state_dir = co->state_dir ? co->state_dir : cfg->gateway.state_dir;
    char pid[32] = "", why[512] = "";
    enum owner o = daemon_lock(state_dir, pid, sizeof(pid), why, sizeof(why));
    if (b->type == BUS_TCP) {
        if (o == OWNER_DAEMON)
            fprintf(stderr,
                    "firegw %s: note: the daemon (pid %s) is running and polls %s too; this "
                    "opens a second connection (most Modbus TCP devices and gateways accept "
                    "several)\n",
                    co->prog, pid, endpoint);
        return 0;
    }
    long daemon_pid, other_pid;
    char other[64] = "";
    port_users(b->device, &daemon_pid, &other_pid, other, sizeof(other));
    if (o != OWNER_DAEMON && daemon_pid)
        snprintf(pid, sizeof(pid), "%ld", daemon_pid);
    if (o == OWNER_DAEMON || daemon_pid) {
        fprintf(stderr,
                "firegw %s: refused: the firegw daemon (pid %s) is running and owns bus %s "
                "(%s)%s%s. A second master on the same RS-485 line would garble its frames "
                "and delay the polling that carries the fire alarms.\n"
                "  Use the daemon instead: the web UI's installer page probes and scans through "
                "it, and `firegw status` shows its live state.\n"
                "  Or stop it for the time of this work (systemctl stop firegw) and start it "
                "again afterwards.\n",
                co->prog, pid, b->id, endpoint, o == OWNER_DAEMON ? " with state directory " : "",
                o == OWNER_DAEMON ? state_dir : "");
        return INSTALLER_EXIT_REFUSED;
    }
    if (o == OWNER_UNKNOWN) {
        fprintf(stderr,
                "firegw %s: refused: cannot tell whether the firegw daemon owns bus %s (%s): "
                "%s. Run this as root or as the firegw user, or name the daemon's state "
                "directory with --state-dir.\n",
                co->prog, b->id, endpoint, why);
        return INSTALLER_EXIT_REFUSED;
    }
    if (other_pid)
        fprintf(stderr,
                "firegw %s: warning: %s is also open in %s (pid %ld); its traffic may garble "
                "the replies\n",
                co->prog, b->device, other, other_pid);
    return 0;
}

/*
 * Open bus b for co->prog once may_open allows it. Returns the link with
 * *status 0, or NULL with *status the exit code, the reason printed.
 */
static struct bus_link *open_bus(const struct common *co, const struct cfg *cfg,
                                 const struct cfg_bus *b, int *status)
{
    char endpoint[200], err[1024];
    if (b->type == BUS_TCP)
        snprintf(endpoint, sizeof(endpoint), strchr(b->host, ':') ? "[%s]:%d" : "%s:%d", b->host,
                 b->port);
    else
        snprintf(endpoint, sizeof(endpoint), "%s", b->device);
    if ((*status = may_open(co, cfg, b, endpoint)) != 0)
        return NULL;
    struct bus_link *link = bus_link_open(b, err, sizeof(err));
    if (!link) {
        fprintf(stderr, "firegw %s: bus %s: %s\n", co->prog, b->id, err);
        *status = INSTALLER_EXIT_FAILED;
    }
    return link;
}

static const char *table_word(enum reg_table t)
{
    return t == REG_INPUT ? "input" : "holding";
}

/* "holding:0", "input:12" (also "holding:0x10"). 0 or -1. */
static int parse_register(const char *s, struct bus_block *out)
{
    const char *colon = strchr(s, ':');
    if (!colon)
        return -1;
    size_t n = (size_t)(colon - s);
    if (n == 7 && strncmp(s, "holding", 7) == 0)
        out->table = REG_HOLDING;
    else if (n == 5 && strncmp(s, "input", 5) == 0)
        out->table = REG_INPUT;
    else
        return -1;
    char *end;
    errno = 0;
    long a = strtol(colon + 1, &end, 0);
    if (errno || end == colon + 1 || *end || a < 0 || a > 65535)
        return -1;
    out->address = (uint16_t)a;
    out->count = 1;
    return 0;
}

/*
 * The profile called name: one the config uses, else NAME.profile from the
 * config's profile directories (then *loaded is the caller's to free).
 */
static const struct profile *find_profile(const struct cfg *cfg, const char *prog, const char *name,
                                          struct profile **loaded)
{
    const struct profile *p = profile_set_find(&cfg->profiles, name);
    if (p)
        return p;
    for (size_t i = 0; i < cfg->gateway.nprofile_dirs; i++) {
        char *path = xasprintf("%s/%s.profile", cfg->gateway.profile_dirs[i], name);
        if (access(path, F_OK) == 0) {
            char *err = xcalloc(1, ERRBUF);
            *loaded = profile_load(path, err, ERRBUF);
            if (!*loaded)
                fprintf(stderr, "%s%s: profile has errors\n", err, path);
            free(err);
            free(path);
            return *loaded;
        }
        free(path);
    }
    fprintf(stderr, "firegw %s: no profile \"%s\" in the profile directories of %s\n", prog, name,
            cfg->path);
    return NULL;
}

/* Show progress of a long scan, on a terminal only (a pipe gets just the results). */
static void progress(bool on, int unit, int from, int to)
{
    if (on)
        fprintf(stderr, "\rscanning unit %d (%d..%d)...", unit, from, to);
}

static void progress_clear(bool on)
{
    if (on)
        fprintf(stderr, "\r%40s\r", "");
}

int installer_scan(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"set", required_argument, NULL, OPT_SET},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"bus", required_argument, NULL, OPT_BUS},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"register", required_argument, NULL, OPT_REGISTER},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct common co = {.prog = "scan"};
    const char *bus_id = NULL, *reg = NULL, *profile_name = NULL;
    long long from = -1, to = -1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
        int r = common_option(&co, c, optarg);
        if (r < 0)
            return INSTALLER_EXIT_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case OPT_BUS:
            bus_id = optarg;
            break;
        case OPT_FROM:
        case OPT_TO:
            if (number_option("scan", c == OPT_FROM ? "from" : "to", optarg, 0, 255,
                              c == OPT_FROM ? &from : &to) < 0)
                return INSTALLER_EXIT_USAGE;
            break;
        case OPT_REGISTER:
            reg = optarg;
            break;
        case OPT_PROFILE:
            profile_name = optarg;
            break;
        case OPT_HELP:
            scan_usage(stdout);
            return INSTALLER_EXIT_OK;
        default:
            return bad_option("scan", argc, argv, scan_usage);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firegw scan: unexpected argument \"%s\"\n", argv[optind]);
        return INSTALLER_EXIT_USAGE;
    }
    if (!bus_id || (reg && profile_name)) {
        fprintf(stderr, "firegw scan: %s\n",
                !bus_id ? "--bus ID is required" : "--register and --profile exclude each other");
        scan_usage(stderr);
        return INSTALLER_EXIT_USAGE;
    }
    struct bus_block what = {REG_HOLDING, 0, 1};
    if (reg && parse_register(reg, &what) < 0) {
        fprintf(stderr,
                "firegw scan: --register \"%s\": expected holding:ADDRESS or input:ADDRESS "
                "(0..65535)\n",
                reg);
        return INSTALLER_EXIT_USAGE;
    }
    struct cfg *cfg = load_config(&co);
    if (!cfg)
        return INSTALLER_EXIT_USAGE;
    int status = INSTALLER_EXIT_USAGE;
    struct profile *loaded = NULL;
    struct bus_link *link = NULL;
    struct bus_probe_reply *all = NULL;
    const struct cfg_bus *b = find_bus(cfg, "scan", bus_id);
    if (!b)
        goto out;
    if (profile_name) {
        const struct profile *prof = find_profile(cfg, "scan", profile_name, &loaded);
        if (!prof)
            goto out;
        what = (struct bus_block){prof->points[0].table, prof->points[0].address, 1};
    }
    if (from < 0)
        from = 1;
    if (to < 0)
        to = 247;
    if (from > to || !bus_unit_valid(b, (int)from) || !bus_unit_valid(b, (int)to)) {
        fprintf(stderr, "firegw scan: unit ids %lld..%lld are not valid on bus %s (%s)\n", from, to,
                b->id, b->type == BUS_RTU ? "1..247" : "0..247 and 255");
        goto out;
    }
    int64_t timeout = co.timeout_ms ? co.timeout_ms : SCAN_DEFAULT_TIMEOUT_MS;
    char err[512];
    if (!(link = open_bus(&co, cfg, b, &status)))
        goto out;
    if (!co.json)
        printf("Scanning bus %s (%s): unit ids %lld..%lld, asking %s register %u, %lld ms "
               "timeout\n",
               b->id, bus_link_endpoint(link), from, to, table_word(what.table), what.address,
               (long long)timeout);
    fflush(stdout);
    bool tty = !co.json && isatty(STDERR_FILENO);
    struct bus_probe_req req = {.kind = BUS_PROBE_SCAN, .timeout_ms = timeout, .scan_read = what};
    int present = 0, garbled = 0;
    int64_t t0 = mono_ms();
    for (int u = (int)from; u <= (int)to; u++) {
        if (!bus_unit_valid(b, u))
            continue;
        progress(tty, u, (int)from, (int)to);
        req.from = req.to = u;
        struct bus_probe_reply *rep = bus_link_run(link, &req, err, sizeof(err));
        if (!rep) {
            progress_clear(tty);
            fprintf(stderr, "firegw scan: %s\n", err);
            status = INSTALLER_EXIT_FAILED;
            goto out;
        }
        if (!all)
            all = xcalloc(1, sizeof(*all));
        if (u == from) {
            *all = *rep;
            all->from = (int)from;
            all->to = (int)to;
        }
        all->unit_err[u] = rep->unit_err[u];
        all->unit_value[u] = rep->unit_value[u];
        all->rc = rep->rc;
        strlcpy_fg(all->err, rep->err, sizeof(all->err));
        free(rep);
        if (all->rc != 0)
            break;
        enum probe_presence pr = probe_unit_presence(all->unit_err[u]);
        present += pr == PROBE_PRESENT;
        garbled += pr == PROBE_GARBLED;
        if (pr == PROBE_ABSENT || co.json)
            continue;
        char text[256];
        probe_scan_text(all, u, timeout, text, sizeof(text));
        progress_clear(tty);
        printf("unit %3d  %s\n", u, text);
        fflush(stdout);
    }
    progress_clear(tty);
    if (!all)
        all = xcalloc(1, sizeof(*all));
    if (co.json) {
        char *json = probe_scan_json(all, timeout);
        printf("%s\n", json ? json : "{}");
        free(json);
    } else if (all->rc == 0) {
        printf("%d unit%s answered%s on bus %s in %.1f s\n", present, present == 1 ? "" : "s",
               garbled ? " (and some garbled)" : "", b->id, (double)(mono_ms() - t0) / 1000.0);
    }
    if (all->rc != 0) {
        fprintf(stderr, "firegw scan: %s\n", all->err);
        status = INSTALLER_EXIT_FAILED;
    } else if (present == 0) {
        if (!co.json)
            fprintf(stderr,
                    "firegw scan: no unit answered on bus %s: check the wiring, baud rate and "
                    "parity, and the unit ids\n",
                    b->id);
        status = INSTALLER_EXIT_FAILED;
    } else {
        status = INSTALLER_EXIT_OK;
    }
out:
    free(all);
    bus_link_close(link);
    profile_free(loaded);
    cfg_free(cfg);
    return status;
}

/* What a probe reads: unit, profile and channels, with a label for each channel. */
struct target {
    const struct cfg_bus *bus;
    const char *device; /* the device's id, or "BUS/UNIT" */
    int unit;
    const struct profile *prof;
    int64_t timeout_ms;
    int retries;
    int channels[MAX_CHANNELS];
    const char *labels[MAX_CHANNELS]; /* detector ids, NULL where none */
    size_t nchannels;
};

static void add_channel(struct target *t, int ch, const char *label)
{
    for (size_t i = 0; i < t->nchannels; i++)
        if (t->channels[i] == ch)
            return;
    if (t->nchannels < MAX_CHANNELS) {
        t->labels[t->nchannels] = label;
        t->channels[t->nchannels++] = ch;
    }
}

/* The detector ids on channel ch of device dev, for labels: the first one. */
static const char *detector_on(const struct cfg *cfg, long dev, int ch)
{
    for (size_t i = 0; dev >= 0 && i < cfg->ndetectors; i++)
        if (cfg->detectors[i].device == (size_t)dev && cfg->detectors[i].channel == ch)
            return cfg->detectors[i].id;
    return NULL;
}

static void print_probe(const struct target *t, const struct bus_probe_reply *rep,
                        const struct probe_value *v, size_t n, const struct cfg *cfg, long dev)
{
    char raw[64], text[300];
    printf("\nReads:\n");
    for (size_t i = 0; i < rep->nblocks; i++) {
        const struct bus_block *b = &rep->blocks[i];
        probe_error_text(rep->block_err[i], t->timeout_ms, text, sizeof(text));
        char span[48];
        snprintf(span, sizeof(span), "%s %u..%u", table_word(b->table), b->address,
                 b->address + b->count - 1u);
        printf("  %-20s %s\n", span, text);
    }
    int last = -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i].channel != last) {
            last = v[i].channel;
            /* A point detector's points are all the device's: name its detector there. */
            bool single = last == 0 && t->prof->channels == 1;
            if (last == 0 && !single) {
                printf("\nThe device:\n");
            } else {
                const char *det = detector_on(cfg, dev, single ? 1 : last);
                long di = det ? cfg_find_detector(cfg, det) : -1;
                const char *loc = di >= 0 ? cfg->detectors[di].location : NULL;
                char head[32];
                snprintf(head, sizeof(head), single ? "The device" : "Channel %d", last);
                if (di >= 0)
                    printf("\n%s: detector %s (zone %s%s%s):\n", head, det,
                           cfg->zones[cfg->detectors[di].zone].id, loc && *loc ? ", " : "",
                           loc && *loc ? loc : "");
                else
                    printf("\n%s:\n", head);
            }
        }
        char where[32];
        snprintf(where, sizeof(where), "%s %u", table_word(v[i].table), v[i].address);
        probe_raw_text(&v[i], raw, sizeof(raw));
        probe_value_text(&v[i], t->timeout_ms, text, sizeof(text));
        printf("  %-16s %-12s %-14s %-18s %s\n", v[i].pt->name, point_role_name(v[i].pt->role),
               where, raw, text);
    }
}

int installer_probe(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"set", required_argument, NULL, OPT_SET},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"bus", required_argument, NULL, OPT_BUS},
        {"unit", required_argument, NULL, OPT_UNIT},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"channel", required_argument, NULL, OPT_CHANNEL},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct common co = {.prog = "probe"};
    const char *device = NULL, *bus_id = NULL, *profile_name = NULL;
    long long unit = -1, retries = -1, ch;
    int chosen[MAX_CHANNELS];
    size_t nchosen = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
        int r = common_option(&co, c, optarg);
        if (r < 0)
            return INSTALLER_EXIT_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case OPT_DEVICE:
            device = optarg;
            break;
        case OPT_BUS:
            bus_id = optarg;
            break;
        case OPT_UNIT:
            if (number_option("probe", "unit", optarg, 0, 255, &unit) < 0)
                return INSTALLER_EXIT_USAGE;
            break;
        case OPT_PROFILE:
            profile_name = optarg;
            break;
        case OPT_CHANNEL:
            if (number_option("probe", "channel", optarg, 1, MAX_CHANNELS, &ch) < 0)
                return INSTALLER_EXIT_USAGE;
            if (nchosen < MAX_CHANNELS)
                chosen[nchosen++] = (int)ch;
            break;
        case OPT_RETRIES:
            if (number_option("probe", "retries", optarg, 0, 5, &retries) < 0)
                return INSTALLER_EXIT_USAGE;
            break;
        case OPT_HELP:
            probe_usage(stdout);
            return INSTALLER_EXIT_OK;
        default:
            return bad_option("probe", argc, argv, probe_usage);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firegw probe: unexpected argument \"%s\"\n", argv[optind]);
        return INSTALLER_EXIT_USAGE;
    }
    bool by_device = device && !bus_id && unit < 0 && !profile_name;
    bool by_unit = !device && bus_id && unit >= 0 && profile_name;
    if (!by_device && !by_unit) {
        fprintf(stderr, "firegw probe: give either --device ID, or --bus ID --unit N --profile "
                        "NAME\n");
        probe_usage(stderr);
        return INSTALLER_EXIT_USAGE;
    }
    struct cfg *cfg = load_config(&co);
    if (!cfg)
        return INSTALLER_EXIT_USAGE;
    int status = INSTALLER_EXIT_USAGE;
    struct profile *loaded = NULL;
    struct bus_link *link = NULL;
    struct bus_probe_reply *rep = NULL;
    struct probe_value *values = NULL;
    struct target *t = xcalloc(1, sizeof(*t));
    char err[1024], name[96];
    long dev = -1;
    if (by_device) {
        dev = cfg_find_device(cfg, device);
        if (dev < 0) {
            fprintf(stderr, "firegw probe: %s has no device \"%s\" (a [device] id, or BUS/UNIT)\n",
                    cfg->path, device);
            goto out;
        }
        const struct cfg_device *d = &cfg->devices[dev];
        t->bus = &cfg->buses[d->bus];
        t->device = d->id;
        t->unit = d->unit;
        t->prof = d->profile;
        t->timeout_ms = d->timeout_ms;
        t->retries = d->retries;
        for (size_t i = 0; i < cfg->ndetectors; i++)
            if (cfg->detectors[i].device == (size_t)dev)
                add_channel(t, cfg->detectors[i].channel, cfg->detectors[i].id);
    } else {
        t->bus = find_bus(cfg, "probe", bus_id);
        if (!t->bus || !(t->prof = find_profile(cfg, "probe", profile_name, &loaded)))
            goto out;
        if (!bus_unit_valid(t->bus, (int)unit)) {
            fprintf(stderr, "firegw probe: unit id %lld is not valid on bus %s (%s)\n", unit,
                    t->bus->id, t->bus->type == BUS_RTU ? "1..247" : "0..247 or 255");
            goto out;
        }
        snprintf(name, sizeof(name), "%s/%lld", t->bus->id, unit);
        t->device = name;
        t->unit = (int)unit;
        t->timeout_ms = t->bus->timeout_ms;
        t->retries = t->bus->retries;
        dev = cfg_find_device(cfg, name);
    }
    if (nchosen) {
        t->nchannels = 0;
        for (size_t i = 0; i < nchosen; i++)
            add_channel(t, chosen[i], NULL);
    } else if (t->nchannels == 0) {
        for (int i = 1; i <= t->prof->channels && i <= MAX_CHANNELS; i++)
            add_channel(t, i, NULL);
    }
    if (co.timeout_ms)
        t->timeout_ms = co.timeout_ms;
    if (t->timeout_ms > BUS_PROBE_MAX_TIMEOUT_MS)
        t->timeout_ms = BUS_PROBE_MAX_TIMEOUT_MS;
    if (retries >= 0)
        t->retries = (int)retries;

    struct bus_probe_req req = {0};
    if (probe_plan(t->prof, t->channels, t->nchannels, t->bus->max_gap, &req, err, sizeof(err)) <
        0) {
        fprintf(stderr, "firegw probe: %s\n", err);
        goto out;
    }
    req.unit = t->unit;
    req.timeout_ms = t->timeout_ms;
    req.retries = t->retries;
    if (!(link = open_bus(&co, cfg, t->bus, &status)))
        goto out;
    if (!co.json)
        printf("Probing %s: unit %d on bus %s (%s), profile %s (%s %s, %s)\n"
               "%lld ms timeout, %d %s per read\n",
               t->device, t->unit, t->bus->id, bus_link_endpoint(link), t->prof->name,
               t->prof->vendor ? t->prof->vendor : "", t->prof->model ? t->prof->model : "",
               profile_kind_name(t->prof->kind), (long long)t->timeout_ms, 1 + t->retries,
               t->retries ? "tries" : "try");
    fflush(stdout);
    rep = bus_link_run(link, &req, err, sizeof(err));
    if (!rep) {
        fprintf(stderr, "firegw probe: %s\n", err);
        status = INSTALLER_EXIT_FAILED;
        goto out;
    }
    values = xcalloc(probe_value_count(t->prof, t->nchannels) + 1, sizeof(*values));
    size_t n = probe_decode(t->prof, t->channels, t->nchannels, rep, values);
    size_t failed_reads = 0, bad = 0;
    for (size_t i = 0; i < rep->nblocks; i++)
        failed_reads += rep->block_err[i] != 0;
    for (size_t i = 0; i < n; i++)
        bad += !values[i].ok;
    if (co.json) {
        char *json = probe_read_json(t->device, t->prof, rep, values, n, t->timeout_ms);
        printf("%s\n", json ? json : "{}");
        free(json);
    } else {
        print_probe(t, rep, values, n, cfg, dev);
        if (rep->rc != 0)
            printf("\nResult: %s\n", rep->err);
        else if (failed_reads || bad)
            printf("\nResult: %zu of %zu reads failed; %zu of %zu points have no usable "
                   "value.\n",
                   failed_reads, rep->nblocks, bad, n);
        else
            printf("\nResult: every read answered and every point decoded.\n");
    }
    status = rep->rc == 0 && !failed_reads && !bad ? INSTALLER_EXIT_OK : INSTALLER_EXIT_FAILED;
out:
    free(values);
    free(rep);
    free(t);
    bus_link_close(link);
    profile_free(loaded);
    cfg_free(cfg);
    return status;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static const char *yes_no(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key)) ? "yes" : "no";
}

static void print_status(const cJSON *root)
{
    printf("Building %s: %s\n", str(root, "building"), str(root, "state"));
    printf("Detectors: %.0f (fire alarm %.0f, pre-alarm %.0f, fault %.0f, disabled %.0f, "
           "test %.0f)\n",
           num(root, "detectors"), num(root, "fire_alarm"), num(root, "pre_alarm"),
           num(root, "fault"), num(root, "disabled"), num(root, "test"));
    const cJSON *zones = cJSON_GetObjectItemCaseSensitive(root, "zones");
    if (!cJSON_IsArray(zones) || cJSON_GetArraySize(zones) == 0)
        return;
    int idw = 4, stw = 5;
    const cJSON *z;
    cJSON_ArrayForEach(z, zones)
    {
        int a = (int)strlen(str(z, "id")), b = (int)strlen(str(z, "state"));
        idw = a > idw ? a : idw;
        stw = b > stw ? b : stw;
    }
    printf("Zones:\n  %-*s  %-*s  %10s  %6s  %-12s  %s\n", idw, "ZONE", stw, "STATE", "FIRE ALARM",
           "FAULT", "ACKNOWLEDGED", "SILENCED");
    cJSON_ArrayForEach(z, zones)
    {
        printf("  %-*s  %-*s  %10.0f  %6.0f  %-12s  %s\n", idw, str(z, "id"), stw, str(z, "state"),
               num(z, "fire_alarm"), num(z, "fault"), yes_no(z, "acknowledged"),
               yes_no(z, "silenced"));
    }
}

int installer_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *state_dir = DEFAULT_STATE_DIR, *control = NULL;
    bool json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_STATE_DIR:
            state_dir = optarg;
            break;
        case OPT_CONTROL:
            control = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_HELP:
            status_usage(stdout);
            return INSTALLER_EXIT_OK;
        default:
            return bad_option("status", argc, argv, status_usage);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firegw status: unexpected argument \"%s\"\n", argv[optind]);
        return INSTALLER_EXIT_USAGE;
    }
    char *sock = control ? xstrdup(control) : xasprintf("%s/control.sock", state_dir);
    char *reply = xmalloc(REPLY_MAX);
    char err[512];
    int status = INSTALLER_EXIT_FAILED;
    if (control_request(sock, "status", reply, REPLY_MAX, err, sizeof(err)) < 0) {
        fprintf(stderr, "firegw status: %s\n", err);
    } else if (strncmp(reply, "ok ", 3) != 0) {
        fprintf(stderr, "firegw status: the gateway answered: %s\n", reply);
    } else if (json) {
        printf("%s\n", reply + 3);
        status = INSTALLER_EXIT_OK;
    } else {
        cJSON *root = cJSON_Parse(reply + 3);
        if (!root) {
            fprintf(stderr, "firegw status: the gateway's answer is not JSON: %s\n", reply + 3);
        } else {
            print_status(root);
            status = INSTALLER_EXIT_OK;
        }
        cJSON_Delete(root);
    }
    free(reply);
    free(sock);
    return status;
}
