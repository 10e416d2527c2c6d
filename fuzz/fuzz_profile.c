/*
 * Fuzz target: the detector profile reader (gateway/ini.c and
 * gateway/profile.c) through profile_load, as the config reader calls it.
 *
 * Input: the profile file. A profile that loads must obey every rule of
 * docs/profiles.md ("A profile that breaks one of these is refused"), be
 * plannable for every channel as a bus poller plans it, and encode and decode
 * a plausible value the same way, since the simulator writes registers with
 * codec_encode and the gateway reads them with codec_decode.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz.h"
#include "profile.h"
#include "util.h"

#define ERRLEN 8192

static void check_rules(const struct profile *p)
{
    FUZZ_ASSERT(p->npoints >= 1, "a profile without points loaded");
    FUZZ_ASSERT(p->channels >= 1 && p->channels <= 512 && p->channel_stride >= 1 &&
                    p->channel_stride <= 4096,
                "channels %d, stride %d", p->channels, p->channel_stride);
    int values = 0;
    for (size_t i = 0; i < p->npoints; i++) {
        const struct profile_point *pt = &p->points[i];
        int width = reg_type_width(pt->type);
        FUZZ_ASSERT(pt->role >= ROLE_VALUE && pt->role < ROLE__COUNT, "point %s: role %d", pt->name,
                    (int)pt->role);
        FUZZ_ASSERT(pt->type >= RT_INT16 && pt->type <= RT_BIT, "point %s: type %d", pt->name,
                    (int)pt->type);
        FUZZ_ASSERT(pt->order >= WO_ABCD && pt->order <= WO_DCBA, "point %s: order %d", pt->name,
                    (int)pt->order);
        FUZZ_ASSERT(pt->type != RT_BIT || (pt->bit >= 0 && pt->bit <= 15), "point %s: bit %d",
                    pt->name, pt->bit);
        FUZZ_ASSERT(isfinite(pt->scale) && pt->scale != 0 && isfinite(pt->offset),
                    "point %s: scale %g, offset %g", pt->name, pt->scale, pt->offset);
        FUZZ_ASSERT(!pt->has_range || pt->min < pt->max, "point %s: range %g..%g", pt->name,
                    pt->min, pt->max);
        FUZZ_ASSERT(memchr(pt->unit, '\0', sizeof(pt->unit)) != NULL, "point %s: unit", pt->name);
        long last = (long)pt->address + width - 1;
        if (pt->per_channel)
            last += (long)(p->channels - 1) * p->channel_stride;
        FUZZ_ASSERT(last <= 65535, "point %s ends at register %ld", pt->name, last);
        FUZZ_ASSERT(!pt->per_channel || p->channels == 1 || p->channel_stride >= width,
                    "point %s: stride %d below its width %d", pt->name, p->channel_stride, width);
        if (pt->role == ROLE_VALUE) {
            values++;
            FUZZ_ASSERT(pt->type != RT_BIT, "value point %s is a bit", pt->name);
        }
        for (size_t j = 0; j < i; j++) {
            FUZZ_ASSERT(strcmp(p->points[j].name, pt->name) != 0, "point %s twice", pt->name);
            FUZZ_ASSERT(pt->role == ROLE_INFO || p->points[j].role != pt->role,
                        "role %s twice (points %s and %s)", point_role_name(pt->role),
                        p->points[j].name, pt->name);
        }
    }
    if (p->kind == PROFILE_PANEL)
        FUZZ_ASSERT(values == 0 && profile_point_by_role(p, ROLE_ALARM),
                    "panel profile with %d value points, alarm point %s", values,
                    profile_point_by_role(p, ROLE_ALARM) ? "present" : "missing");
    else
        FUZZ_ASSERT(values == 1, "%s profile with %d value points", profile_kind_name(p->kind),
                    values);
}

/* The raw integer range of a type, for values the encoder does not have to clamp. */
static void raw_range(enum reg_type t, double *lo, double *hi)
{
    switch (t) {
    case RT_INT16:
        *lo = INT16_MIN, *hi = INT16_MAX;
        return;
    case RT_UINT16:
        *lo = 0, *hi = UINT16_MAX;
        return;
    case RT_INT32:
        *lo = INT32_MIN, *hi = INT32_MAX;
        return;
    case RT_UINT32:
        *lo = 0, *hi = UINT32_MAX;
        return;
    default:
        *lo = *hi = 0;
    }
}

/* What the simulator writes, the gateway reads: an integer point in the middle of its range. */
static void check_round_trip(const struct profile_point *pt)
{
    if (pt->type == RT_BIT) {
        for (int v = 0; v <= 1; v++) {
            uint16_t w[2] = {0x5a5a, 0};
            double got = -1;
            char err[96];
            FUZZ_ASSERT(codec_encode(pt, v, w) == 0, "bit point %s: encode %d", pt->name, v);
            FUZZ_ASSERT(codec_decode(pt, w, &got, err, sizeof(err)) == 0 && got == v,
                        "bit point %s: wrote %d, read %g", pt->name, v, got);
        }
        return;
    }
    if (!pt->has_range || pt->type == RT_FLOAT32)
        return;
    double mid = pt->min / 2 + pt->max / 2, step = fabs(pt->scale);
    double raw = (mid - pt->offset) / pt->scale, lo, hi;
    raw_range(pt->type, &lo, &hi);
    /* Only where one raw step fits the range well and no precision is lost on the way. */
    if (!isfinite(mid) || !isfinite(raw) || raw < lo + 1 || raw > hi - 1 ||
        pt->max - pt->min < 4 * step || step < 1e-6 || step > 1e6 || fabs(pt->offset) > 1e6 ||
        fabs(mid) > 1e9)
        return;
    uint16_t w[2] = {0, 0};
    double got = NAN;
    char err[96] = "";
    FUZZ_ASSERT(codec_encode(pt, mid, w) == 0, "point %s: cannot encode %g", pt->name, mid);
    FUZZ_ASSERT(codec_decode(pt, w, &got, err, sizeof(err)) == 0,
                "point %s: wrote %g (raw %g), read back: %s", pt->name, mid, raw, err);
    FUZZ_ASSERT(fabs(got - mid) <= step / 2 * (1 + 1e-9) + 1e-9,
                "point %s: wrote %g, read %g (scale %g)", pt->name, mid, got, pt->scale);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("fuzz.profile", data, size);
    char *err = xcalloc(1, ERRLEN);
    struct profile *p = profile_load(path, err, ERRLEN);
    if (!p) {
        FUZZ_ASSERT(err[0] != '\0', "a refused profile without a message");
        FUZZ_ASSERT(memchr(err, '\0', ERRLEN) != NULL, "the error text is not terminated");
        free(err);
        return 0;
    }
    check_rules(p);
    int *channels = xcalloc((size_t)p->channels, sizeof(*channels));
    for (int c = 0; c < p->channels; c++)
        channels[c] = c + 1;
    static const uint16_t pattern[] = {0x7f80, 0xffff, 0x0000, 0x8000, 0x7fff, 0x0001, 0xff80};
    fuzz_check_plan(p, channels, (size_t)p->channels, 8, pattern, ARRAY_LEN(pattern));
    for (size_t i = 0; i < p->npoints; i++)
        check_round_trip(&p->points[i]);
    free(channels);
    profile_free(p);
    free(err);
    return 0;
}
