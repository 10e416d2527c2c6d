/*
 * Fuzz target: the site config reader (gateway/ini.c and gateway/cfg.c),
 * through cfg_load_ex as the daemon and --check-config call it.
 *
 * Input: the config text, optionally followed by a line "%%" and up to
 * MAX_OVERRIDES lines that are applied as --set overrides. The file is
 * written next to a "profiles" link to sensors/profiles, which is the
 * default profile directory of a config there.
 *
 * Besides "no crash, no leak, no undefined behaviour", a config that loads
 * must keep cfg.h's promise that consumers never re-validate: every id is
 * found again by its lookup, every cross reference is in range, every device
 * can be planned by a bus poller, and the alarm engine starts on it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "engine.h"
#include "fuzz.h"
#include "util.h"

#define MAX_OVERRIDES 8
#define ERRLEN 16384

static void check_error_text(const char *err)
{
    FUZZ_ASSERT(memchr(err, '\0', ERRLEN) != NULL, "the error text is not terminated");
    FUZZ_ASSERT(err[0] != '\0', "a refused config without a message");
}

static void check_devices(const struct cfg *cfg)
{
    int *channels = xcalloc(cfg->ndetectors ? cfg->ndetectors : 1, sizeof(*channels));
    static const uint16_t pattern[] = {0xffff, 0x7fc0, 0x0000, 0x8000, 0x0001};
    for (size_t d = 0; d < cfg->ndevices; d++) {
        const struct cfg_device *dev = &cfg->devices[d];
        FUZZ_ASSERT(dev->bus < cfg->nbuses, "device %s on bus %zu of %zu", dev->id, dev->bus,
                    cfg->nbuses);
        FUZZ_ASSERT(dev->profile != NULL, "device %s has no profile", dev->id);
        FUZZ_ASSERT(cfg_find_device(cfg, dev->id) == (long)d, "device %s not found by its id",
                    dev->id);
        size_t n = 0;
        for (size_t i = 0; i < cfg->ndetectors; i++)
            if (cfg->detectors[i].device == d)
                channels[n++] = cfg->detectors[i].channel;
        fuzz_check_plan(dev->profile, channels, n, cfg->buses[dev->bus].max_gap, pattern,
                        ARRAY_LEN(pattern));
    }
    free(channels);
}

static void check_loaded(const struct cfg *cfg)
{
    FUZZ_ASSERT(cfg->ndetectors > 0 && cfg->nuplinks > 0,
                "a config with %zu detectors and %zu uplinks loaded", cfg->ndetectors,
                cfg->nuplinks);
    for (size_t i = 0; i < cfg->nbuses; i++)
        FUZZ_ASSERT(cfg_find_bus(cfg, cfg->buses[i].id) == (long)i, "bus %s not found by its id",
                    cfg->buses[i].id);
    for (size_t i = 0; i < cfg->ndetectors; i++) {
        const struct cfg_detector *d = &cfg->detectors[i];
        FUZZ_ASSERT(cfg_find_detector(cfg, d->id) == (long)i, "detector %s not found by its id",
                    d->id);
        FUZZ_ASSERT(d->device < cfg->ndevices && d->zone < cfg->nzones,
                    "detector %s: device %zu of %zu, zone %zu of %zu", d->id, d->device,
                    cfg->ndevices, d->zone, cfg->nzones);
        const struct profile *p = cfg->devices[d->device].profile;
        FUZZ_ASSERT(d->channel >= 1 && d->channel <= p->channels,
                    "detector %s: channel %d of a profile with %d", d->id, d->channel, p->channels);
        if (d->type != DET_PANEL_ZONE)
            FUZZ_ASSERT(d->thresholds.prealarm < d->thresholds.alarm,
                        "detector %s: pre-alarm %g not below alarm %g", d->id,
                        d->thresholds.prealarm, d->thresholds.alarm);
    }
    for (size_t u = 0; u < cfg->nuplinks; u++) {
        const struct cfg_uplink *up = &cfg->uplinks[u];
        for (size_t z = 0; z < up->nzones; z++)
            FUZZ_ASSERT(up->zones[z] < cfg->nzones, "uplink %s: zone %zu of %zu", up->id,
                        up->zones[z], cfg->nzones);
        /* A fire police path keeps fire alarms and faults (docs/config.md, `events`). */
        if (up->role == UPLINK_FIRE_POLICE)
            FUZZ_ASSERT(cfg_uplink_wants(cfg, u, EV_FIRE_ALARM, false, 0, false) &&
                            cfg_uplink_wants(cfg, u, EV_FAULT, false, 0, false),
                        "fire police uplink %s drops real fire alarms or faults", up->id);
    }
    check_devices(cfg);
    struct ev_time t0 = {1000, 1795410243000LL};
    struct engine *e = engine_new(cfg, t0);
    struct evlist out = {0};
    engine_tick(e, (struct ev_time){t0.mono_ms + 3600000, t0.wall_ms + 3600000}, &out);
    struct area_status b;
    engine_building(e, &b);
    FUZZ_ASSERT(b.detectors == cfg->ndetectors, "the building counts %zu of %zu detectors",
                b.detectors, cfg->ndetectors);
    evlist_free(&out);
    engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The text and the overrides are split on the first "\n%%\n". */
    const uint8_t *sep = NULL;
    for (size_t i = 0; i + 4 <= size && !sep; i++)
        if (memcmp(data + i, "\n%%\n", 4) == 0)
            sep = data + i;
    size_t textlen = sep ? (size_t)(sep - data) + 1 : size;
    const char *path = fuzz_write("site.conf", data, textlen);

    char *rest = sep ? fuzz_text(sep + 4, size - textlen - 3) : NULL;
    const char *overrides[MAX_OVERRIDES];
    size_t n = 0;
    for (char *line = rest, *next; line && *line && n < MAX_OVERRIDES; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        overrides[n++] = line;
    }

    char *err = xcalloc(1, ERRLEN);
    struct cfg *cfg = cfg_load_ex(path, overrides, n, err, ERRLEN);
    if (cfg)
        check_loaded(cfg);
    else
        check_error_text(err);
    cfg_free(cfg);
    free(err);
    free(rest);
    return 0;
}
