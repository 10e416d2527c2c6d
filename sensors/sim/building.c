/*
 * Register images of the simulated building. Each device owns a libmodbus
 * mapping sized to its profile's points for the channels in use; each
 * detector owns the engineering value it shows. Values are always written
 * through codec_encode, so the simulator and the gateway share one definition
 * of what a register means. A "raw" override pins a point's registers until a
 * later command for that point or a reset.
 */
#include "building.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "util.h"

#define NOISE_PERIOD_MS 1000
#define LIFECHECK_PERIOD_MS 1000
#define SMOKE_NOISE 0.02 /* %/m, well below any pre-alarm step */
#define HEAT_NOISE 0.15  /* degC */
#define MAX_PINS 16

/* Registers of one point that a raw command owns until released. */
struct pin {
    enum reg_table table;
    uint16_t address;
};

struct dev {
    const struct cfg_device *cfg;
    const struct profile *prof;
    modbus_mapping_t *map;
    bool silent;
    enum scn_reply reply; /* a wrong answer on the wire instead of the registers */
    int reply_code;       /* SCN_REPLY_EXCEPTION */
    bool lifecheck_stopped;
    uint32_t lifecheck;
    uint32_t datachange;
    const struct profile_point *lifecheck_pt;
    const struct profile_point *datachange_pt;
    struct pin pins[MAX_PINS];
    size_t npins;
};

struct det {
    const struct cfg_detector *cfg;
    struct dev *dev;
    const struct profile_point *value_pt; /* NULL for panel zones */
    double baseline;
    double base; /* set point without noise */
    double noise;
    bool ramping;
    double ramp_from, ramp_to;
    int64_t ramp_t0, ramp_ms;
};

struct bld {
    const struct cfg *cfg;
    struct dev *devs;
    size_t ndevs;
    struct det *dets;
    size_t ndets;
    uint64_t rng;
    bool noise_on;
    int64_t now_ms;
    int64_t next_noise_ms;
    int64_t next_life_ms;
};

/* splitmix64: tiny, seedable, and good enough for sensor noise. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double unit_rand(uint64_t *s)
{
    return (double)(next_rand(s) >> 11) / 9007199254740992.0;
}

static uint16_t *point_words(struct dev *d, const struct profile_point *pt, int channel)
{
    uint16_t a = profile_point_address(d->prof, pt, channel);
    int w = reg_type_width(pt->type);
    if (pt->table == REG_HOLDING) {
        if (a < d->map->start_registers || a + w > d->map->start_registers + d->map->nb_registers)
            return NULL;
        return d->map->tab_registers + (a - d->map->start_registers);
    }
    if (a < d->map->start_input_registers ||
        a + w > d->map->start_input_registers + d->map->nb_input_registers)
        return NULL;
    return d->map->tab_input_registers + (a - d->map->start_input_registers);
}

static bool pinned(const struct dev *d, const struct profile_point *pt, int channel)
{
    uint16_t a = profile_point_address(d->prof, pt, channel);
    for (size_t i = 0; i < d->npins; i++)
        if (d->pins[i].table == pt->table && d->pins[i].address == a)
            return true;
    return false;
}

static void unpin(struct dev *d, const struct profile_point *pt, int channel)
{
    uint16_t a = profile_point_address(d->prof, pt, channel);
    for (size_t i = 0; i < d->npins; i++) {
        if (d->pins[i].table == pt->table && d->pins[i].address == a) {
            d->pins[i] = d->pins[--d->npins];
            return;
        }
    }
}

static void bump_datachange(struct dev *d);

/* Encode value into the point; counts a DataChange when a status register changes. */
static void write_point(struct dev *d, const struct profile_point *pt, int channel, double value)
{
    uint16_t *words = point_words(d, pt, channel);
    if (!words || pinned(d, pt, channel))
        return;
    uint16_t tmp[2] = {words[0], reg_type_width(pt->type) == 2 ? words[1] : 0};
    if (codec_encode(pt, value, tmp) < 0)
        return;
    int w = reg_type_width(pt->type);
    if (memcmp(tmp, words, (size_t)w * sizeof(uint16_t)) == 0)
        return;
    memcpy(words, tmp, (size_t)w * sizeof(uint16_t));
    if (pt != d->lifecheck_pt && pt != d->datachange_pt)
        bump_datachange(d);
}

/* A counter wraps at its register's range instead of sticking at the clamp. */
static double counter_value(const struct profile_point *pt, uint32_t n)
{
    double raw;
    switch (pt->type) {
    case RT_INT16:
        raw = n % 32768u;
        break;
    case RT_UINT16:
        raw = n % 65536u;
        break;
    case RT_INT32:
        raw = n % 2147483648u;
        break;
    default:
        raw = n;
        break;
    }
    return raw * pt->scale + pt->offset;
}

static void bump_datachange(struct dev *d)
{
    if (!d->datachange_pt)
        return;
    d->datachange++;
    write_point(d, d->datachange_pt, 1, counter_value(d->datachange_pt, d->datachange));
}

static bool channel_in_use(const struct bld *b, size_t devi, int channel)
{
    for (size_t i = 0; i < b->cfg->ndetectors; i++)
        if (b->cfg->detectors[i].device == devi && b->cfg->detectors[i].channel == channel)
            return true;
    return false;
}

/* Widen [lo, hi) of a table to hold pt on channel. */
static void cover(const struct profile *p, const struct profile_point *pt, int channel, long lo[2],
                  long hi[2])
{
    long a = profile_point_address(p, pt, channel);
    long end = a + reg_type_width(pt->type);
    int t = pt->table == REG_HOLDING ? 0 : 1;
    if (a < lo[t])
        lo[t] = a;
    if (end > hi[t])
        hi[t] = end;
}

static int build_device(struct bld *b, size_t i, char *err, size_t errlen)
{
    struct dev *d = &b->devs[i];
    d->cfg = &b->cfg->devices[i];
    d->prof = d->cfg->profile;
    long lo[2] = {65536, 65536}, hi[2] = {0, 0};
    for (size_t k = 0; k < d->prof->npoints; k++) {
        const struct profile_point *pt = &d->prof->points[k];
        if (!pt->per_channel) {
            cover(d->prof, pt, 1, lo, hi);
            continue;
        }
        for (int ch = 1; ch <= d->prof->channels; ch++)
            if (channel_in_use(b, i, ch))
                cover(d->prof, pt, ch, lo, hi);
    }
    for (int t = 0; t < 2; t++)
        if (hi[t] <= lo[t])
            lo[t] = hi[t] = 0;
    d->map =
        modbus_mapping_new_start_address(0, 0, 0, 0, (unsigned)lo[0], (unsigned)(hi[0] - lo[0]),
                                         (unsigned)lo[1], (unsigned)(hi[1] - lo[1]));
    if (!d->map) {
        snprintf(err, errlen, "device %s: cannot allocate its registers: %s", d->cfg->id,
                 modbus_strerror(errno));
        return -1;
    }
    d->lifecheck_pt = profile_point_by_role(d->prof, ROLE_LIFECHECK);
    for (size_t k = 0; k < d->prof->npoints; k++) {
        const struct profile_point *pt = &d->prof->points[k];
        if (pt->role == ROLE_INFO && strcasestr(pt->name, "change"))
            d->datachange_pt = pt;
    }
    return 0;
}

static void baseline_value(struct bld *b, struct det *t)
{
    if (t->cfg->type == DET_SMOKE)
        t->baseline = 0.05 + 0.10 * unit_rand(&b->rng);
    else if (t->cfg->type == DET_HEAT)
        t->baseline = 26.0 + 4.0 * unit_rand(&b->rng);
    else
        t->baseline = 0;
}

static double shown_value(const struct bld *b, const struct det *t)
{
    double v = t->base + (b->noise_on ? t->noise : 0);
    if (t->cfg->type == DET_SMOKE && v < 0)
        v = 0;
    return v;
}

static void refresh_value(struct bld *b, struct det *t)
{
    if (t->value_pt)
        write_point(t->dev, t->value_pt, t->cfg->channel, shown_value(b, t));
}

/* Status bits clear, counters running, values at their baseline. */
static void to_baseline(struct bld *b)
{
    for (size_t i = 0; i < b->ndevs; i++) {
        struct dev *d = &b->devs[i];
        d->npins = 0;
        d->silent = false;
        d->reply = SCN_REPLY_NORMAL;
        d->lifecheck_stopped = false;
        for (size_t k = 0; k < d->prof->npoints; k++) {
            const struct profile_point *pt = &d->prof->points[k];
            if (pt->role == ROLE_VALUE || pt->role == ROLE_LIFECHECK || pt == d->datachange_pt)
                continue;
            double v = pt->type == RT_BIT ? 0 : pt->has_range && pt->min > 0 ? pt->min : 0;
            int nch = pt->per_channel ? d->prof->channels : 1;
            for (int ch = 1; ch <= nch; ch++)
                write_point(d, pt, ch, v);
        }
    }
    for (size_t i = 0; i < b->ndets; i++) {
        struct det *t = &b->dets[i];
        t->ramping = false;
        t->base = t->baseline;
        refresh_value(b, t);
    }
}

struct bld *bld_new(const struct cfg *cfg, uint64_t seed, char *err, size_t errlen)
{
    struct bld *b = xcalloc(1, sizeof(*b));
    b->cfg = cfg;
    b->rng = seed;
    b->ndevs = cfg->ndevices;
    b->devs = xcalloc(b->ndevs, sizeof(*b->devs));
    for (size_t i = 0; i < b->ndevs; i++)
        if (build_device(b, i, err, errlen) < 0)
            goto fail;
    b->ndets = cfg->ndetectors;
    b->dets = xcalloc(b->ndets, sizeof(*b->dets));
    for (size_t i = 0; i < b->ndets; i++) {
        struct det *t = &b->dets[i];
        t->cfg = &cfg->detectors[i];
        t->dev = &b->devs[t->cfg->device];
        if (t->cfg->type != DET_PANEL_ZONE)
            t->value_pt = profile_point_by_role(t->dev->prof, ROLE_VALUE);
        baseline_value(b, t);
    }
    to_baseline(b);
    return b;
fail:
    bld_free(b);
    return NULL;
}

void bld_free(struct bld *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->ndevs; i++)
        if (b->devs[i].map)
            modbus_mapping_free(b->devs[i].map);
    free(b->devs);
    free(b->dets);
    free(b);
}

/* A command's target as a detector, or a device with exactly one detector. */
static struct det *find_det(const struct bld *b, const char *id)
{
    long i = cfg_find_detector(b->cfg, id);
    if (i >= 0)
        return &b->dets[i];
    long d = cfg_find_device(b->cfg, id);
    if (d < 0)
        return NULL;
    struct det *only = NULL;
    for (size_t k = 0; k < b->ndets; k++) {
        if (b->dets[k].cfg->device == (size_t)d) {
            if (only)
                return NULL;
            only = &b->dets[k];
        }
    }
    return only;
}

/* A command's target as a device: its id, or the device of a detector. */
static struct dev *find_dev(const struct bld *b, const char *id, int *channel)
{
    long i = cfg_find_device(b->cfg, id);
    *channel = 1;
    if (i >= 0)
        return &b->devs[i];
    i = cfg_find_detector(b->cfg, id);
    if (i < 0)
        return NULL;
    *channel = b->dets[i].cfg->channel;
    return b->dets[i].dev;
}

static const struct profile_point *find_point(const struct profile *p, const char *name)
{
    for (size_t i = 0; i < p->npoints; i++)
        if (strcmp(p->points[i].name, name) == 0)
            return &p->points[i];
    return NULL;
}

/* Resolve a command's names; fills what the command needs. 0 or -1 with err. */
static int resolve(const struct bld *b, const struct scn_cmd *c, struct det **det, struct dev **dev,
                   const struct profile_point **pt, int *channel, char *err, size_t errlen)
{
    *det = NULL;
    *dev = NULL;
    *pt = NULL;
    *channel = 1;
    switch (c->op) {
    case SCN_SET:
    case SCN_RAMP:
    case SCN_BIT:
        *det = find_det(b, c->target);
        if (!*det) {
            snprintf(err, errlen, "no detector '%s' in %s", c->target, b->cfg->path);
            return -1;
        }
        *dev = (*det)->dev;
        *channel = (*det)->cfg->channel;
        if (c->op == SCN_BIT) {
            *pt = profile_point_by_role((*dev)->prof, c->role);
            if (!*pt) {
                snprintf(err, errlen, "detector %s: profile %s has no %s bit", (*det)->cfg->id,
                         (*dev)->prof->name, point_role_name(c->role));
                return -1;
            }
        } else if (!(*det)->value_pt) {
            snprintf(err, errlen,
                     "detector %s: profile %s has no value register (a panel zone "
                     "has status bits only)",
                     (*det)->cfg->id, (*dev)->prof->name);
            return -1;
        }
        return 0;
    case SCN_SILENT:
    case SCN_LIFECHECK:
    case SCN_RAW:
    case SCN_REPLY:
        *dev = find_dev(b, c->target, channel);
        if (!*dev) {
            snprintf(err, errlen, "no device or detector '%s' in %s", c->target, b->cfg->path);
            return -1;
        }
        if (c->op == SCN_REPLY && c->reply == SCN_REPLY_CRC &&
            b->cfg->buses[(*dev)->cfg->bus].type != BUS_RTU) {
            snprintf(err, errlen, "device %s is on Modbus TCP bus %s, whose frames carry no CRC",
                     (*dev)->cfg->id, b->cfg->buses[(*dev)->cfg->bus].id);
            return -1;
        }
        if (c->op == SCN_LIFECHECK && !(*dev)->lifecheck_pt) {
            snprintf(err, errlen, "device %s: profile %s has no lifecheck counter", (*dev)->cfg->id,
                     (*dev)->prof->name);
            return -1;
        }
        if (c->op == SCN_RAW) {
            *pt = find_point((*dev)->prof, c->point);
            if (!*pt) {
                snprintf(err, errlen, "device %s: profile %s has no point '%s'", (*dev)->cfg->id,
                         (*dev)->prof->name, c->point);
                return -1;
            }
            int w = reg_type_width((*pt)->type);
            if (w == 1 && (c->raw < -32768 || c->raw > 65535)) {
                snprintf(err, errlen, "raw %lld does not fit the 16-bit register of point %s",
                         (long long)c->raw, c->point);
                return -1;
            }
            if (!point_words(*dev, *pt, *channel)) {
                snprintf(err, errlen, "device %s: point %s of channel %d is not simulated",
                         (*dev)->cfg->id, c->point, *channel);
                return -1;
            }
        }
        return 0;
    case SCN_NOISE:
    case SCN_RESET:
        return 0;
    case SCN_STALL:
    case SCN_UNPLUG:
    case SCN_PLUG: {
        /* Faults of a whole line: the server applies them; checked here with the rest. */
        long bus = cfg_find_bus(b->cfg, c->target);
        if (bus < 0) {
            snprintf(err, errlen, "no bus '%s' in %s", c->target, b->cfg->path);
            return -1;
        }
        if (c->op != SCN_STALL && b->cfg->buses[bus].type != BUS_RTU) {
            snprintf(err, errlen,
                     "bus %s is Modbus TCP; %s is for RTU buses (stop the simulator to take a TCP "
                     "bus away)",
                     c->target, scn_op_name(c->op));
            return -1;
        }
        return 0;
    }
    case SCN_END:
    case SCN_LOOP:
    case SCN_STATUS:
    case SCN_QUIT:
        break;
    }
    snprintf(err, errlen, "'%s' does not change the building", scn_op_name(c->op));
    return -1;
}

int bld_check(const struct bld *b, const struct scn_cmd *cmd, char *err, size_t errlen)
{
    struct det *det;
    struct dev *dev;
    const struct profile_point *pt;
    int ch;
    if (cmd->op == SCN_END || cmd->op == SCN_LOOP)
        return 0;
    return resolve(b, cmd, &det, &dev, &pt, &ch, err, errlen);
}

static void write_raw(struct dev *d, const struct profile_point *pt, int channel, int64_t raw)
{
    uint16_t *words = point_words(d, pt, channel);
    uint32_t u = (uint32_t)raw;
    if (reg_type_width(pt->type) == 1) {
        words[0] = (uint16_t)u;
    } else {
        /* The raw value is the register pair as the profile's word order lays it out. */
        struct profile_point as_int = *pt;
        as_int.type = RT_UINT32;
        as_int.scale = 1;
        as_int.offset = 0;
        codec_encode(&as_int, (double)u, words);
    }
    if (!pinned(d, pt, channel) && d->npins < MAX_PINS)
        d->pins[d->npins++] = (struct pin){.table = pt->table,
                                           .address = profile_point_address(d->prof, pt, channel)};
    bump_datachange(d);
}

int bld_apply(struct bld *b, const struct scn_cmd *c, int64_t now_ms, char *err, size_t errlen)
{
    struct det *det;
    struct dev *dev;
    const struct profile_point *pt;
    int ch;
    if (resolve(b, c, &det, &dev, &pt, &ch, err, errlen) < 0)
        return -1;
    bld_tick(b, now_ms);
    switch (c->op) {
    case SCN_NOISE:
        b->noise_on = c->on;
        for (size_t i = 0; i < b->ndets; i++)
            refresh_value(b, &b->dets[i]);
        break;
    case SCN_SET:
        det->ramping = false;
        det->base = c->value;
        unpin(dev, det->value_pt, ch);
        refresh_value(b, det);
        break;
    case SCN_RAMP:
        unpin(dev, det->value_pt, ch);
        det->ramp_from = det->base;
        det->ramp_to = c->value;
        det->ramp_t0 = now_ms;
        det->ramp_ms = c->duration_ms;
        det->ramping = c->duration_ms > 0;
        if (!det->ramping)
            det->base = c->value;
        refresh_value(b, det);
        break;
    case SCN_BIT:
        unpin(dev, pt, ch);
        write_point(dev, pt, ch, c->on ? 1 : 0);
        break;
    case SCN_SILENT:
        dev->silent = c->on;
        break;
    case SCN_REPLY:
        dev->reply = c->reply;
        dev->reply_code = c->code;
        break;
    case SCN_LIFECHECK:
        dev->lifecheck_stopped = !c->on;
        break;
    case SCN_RAW:
        write_raw(dev, pt, ch, c->raw);
        break;
    case SCN_RESET:
        to_baseline(b);
        break;
    case SCN_STALL:
    case SCN_UNPLUG:
    case SCN_PLUG:
    case SCN_END:
    case SCN_LOOP:
    case SCN_STATUS:
    case SCN_QUIT:
        break;
    }
    return 0;
}

void bld_tick(struct bld *b, int64_t now_ms)
{
    if (now_ms < b->now_ms)
        return;
    b->now_ms = now_ms;
    bool new_noise = false;
    if (now_ms >= b->next_noise_ms) {
        b->next_noise_ms = now_ms + NOISE_PERIOD_MS;
        new_noise = b->noise_on;
    }
    for (size_t i = 0; i < b->ndets; i++) {
        struct det *t = &b->dets[i];
        if (!t->value_pt)
            continue;
        bool changed = false;
        if (new_noise) {
            double amp = t->cfg->type == DET_SMOKE ? SMOKE_NOISE : HEAT_NOISE;
            t->noise = amp * (2 * unit_rand(&b->rng) - 1);
            changed = true;
        }
        if (t->ramping) {
            double f = (double)(now_ms - t->ramp_t0) / (double)t->ramp_ms;
            if (f >= 1) {
                f = 1;
                t->ramping = false;
            }
            t->base = t->ramp_from + (t->ramp_to - t->ramp_from) * f;
            changed = true;
        }
        if (changed)
            refresh_value(b, t);
    }
    if (now_ms >= b->next_life_ms) {
        /* Catch up at most one step: a paused simulator must not fast-forward its counters. */
        b->next_life_ms = now_ms + LIFECHECK_PERIOD_MS;
        for (size_t i = 0; i < b->ndevs; i++) {
            struct dev *d = &b->devs[i];
            if (!d->lifecheck_pt || d->lifecheck_stopped)
                continue;
            d->lifecheck++;
            write_point(d, d->lifecheck_pt, 1, counter_value(d->lifecheck_pt, d->lifecheck));
        }
    }
}

modbus_mapping_t *bld_registers(struct bld *b, size_t bus, int unit)
{
    for (size_t i = 0; i < b->ndevs; i++) {
        struct dev *d = &b->devs[i];
        if (d->cfg->bus == bus && d->cfg->unit == unit)
            return d->silent ? NULL : d->map;
    }
    return NULL;
}

enum scn_reply bld_reply(const struct bld *b, size_t bus, int unit, int *code)
{
    *code = 0;
    for (size_t i = 0; i < b->ndevs; i++) {
        const struct dev *d = &b->devs[i];
        if (d->cfg->bus == bus && d->cfg->unit == unit) {
            *code = d->reply_code;
            return d->reply;
        }
    }
    return SCN_REPLY_NORMAL;
}

void bld_status(const struct bld *b, FILE *out)
{
    fprintf(out, "\"sim_ms\":%lld,\"noise\":%s,\"detectors\":{", (long long)b->now_ms,
            b->noise_on ? "true" : "false");
    for (size_t i = 0; i < b->ndets; i++) {
        const struct det *t = &b->dets[i];
        fprintf(out, "%s\"%s\":{\"device\":\"%s\"", i ? "," : "", t->cfg->id, t->dev->cfg->id);
        if (t->value_pt)
            fprintf(out, ",\"value\":%.3f,\"ramping\":%s", shown_value(b, t),
                    t->ramping ? "true" : "false");
        fputc('}', out);
    }
    fputs("},\"devices\":{", out);
    for (size_t i = 0; i < b->ndevs; i++) {
        const struct dev *d = &b->devs[i];
        fprintf(out, "%s\"%s\":{\"unit\":%d,\"silent\":%s", i ? "," : "", d->cfg->id, d->cfg->unit,
                d->silent ? "true" : "false");
        if (d->lifecheck_pt)
            fprintf(out, ",\"lifecheck\":%u,\"lifecheck_running\":%s", (unsigned)d->lifecheck,
                    d->lifecheck_stopped ? "false" : "true");
        if (d->datachange_pt)
            fprintf(out, ",\"datachange\":%u", (unsigned)d->datachange);
        if (d->reply != SCN_REPLY_NORMAL)
            fprintf(out, ",\"reply\":\"%s\"", scn_reply_name(d->reply));
        fputc('}', out);
    }
    fputc('}', out);
}
