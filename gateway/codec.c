/*
 * Register codec: turns the raw words of one profile point into an
 * engineering value and back. It owns the word-order rules and the
 * plausibility check, so the gateway and the simulator can never disagree
 * about what a register means. Pure functions, no I/O, no state.
 */
#include "codec.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Assemble bytes A (most significant) .. D from two registers in the given order. */
static uint32_t words_to_u32(const uint16_t *w, enum word_order order)
{
    uint32_t hi = w[0], lo = w[1];
    switch (order) {
    case WO_ABCD:
        return hi << 16 | lo;
    case WO_CDAB:
        return lo << 16 | hi;
    case WO_BADC:
        return (uint32_t)__builtin_bswap16((uint16_t)hi) << 16 | __builtin_bswap16((uint16_t)lo);
    case WO_DCBA:
        return __builtin_bswap32(hi << 16 | lo);
    }
    return hi << 16 | lo;
}

static void u32_to_words(uint32_t v, enum word_order order, uint16_t *w)
{
    uint16_t ab = (uint16_t)(v >> 16), cd = (uint16_t)v;
    switch (order) {
    case WO_ABCD:
    default:
        w[0] = ab;
        w[1] = cd;
        break;
    case WO_CDAB:
        w[0] = cd;
        w[1] = ab;
        break;
    case WO_BADC:
        w[0] = __builtin_bswap16(ab);
        w[1] = __builtin_bswap16(cd);
        break;
    case WO_DCBA:
        w[0] = __builtin_bswap16(cd);
        w[1] = __builtin_bswap16(ab);
        break;
    }
}

static float u32_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t float_to_u32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static const char *unit_sep(const struct profile_point *pt)
{
    return pt->unit[0] ? " " : "";
}

int codec_decode(const struct profile_point *pt, const uint16_t *words, double *value, char *err,
                 size_t errlen)
{
    double raw;
    switch (pt->type) {
    case RT_BIT:
        *value = (words[0] >> (pt->bit & 15)) & 1u;
        return 0;
    case RT_INT16:
        raw = (int16_t)words[0];
        break;
    case RT_UINT16:
        raw = words[0];
        break;
    case RT_INT32:
        raw = (int32_t)words_to_u32(words, pt->order);
        break;
    case RT_UINT32:
        raw = words_to_u32(words, pt->order);
        break;
    case RT_FLOAT32:
        raw = u32_to_float(words_to_u32(words, pt->order));
        break;
    default:
        snprintf(err, errlen, "%s: unknown register type %d", pt->name, (int)pt->type);
        return -1;
    }
    if (!isfinite(raw)) {
        snprintf(err, errlen, "%s: register holds %s, not a number", pt->name,
                 isnan(raw) ? "NaN" : "infinity");
        return -1;
    }
    double v = raw * pt->scale + pt->offset;
    if (!isfinite(v)) {
        snprintf(err, errlen, "%s: raw %g scaled out of the number range", pt->name, raw);
        return -1;
    }
    if (pt->has_range && (v < pt->min || v > pt->max)) {
        snprintf(err, errlen, "%s %g%s%s outside %g..%g", pt->name, v, unit_sep(pt), pt->unit,
                 pt->min, pt->max);
        return -1;
    }
    *value = v;
    return 0;
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int codec_encode(const struct profile_point *pt, double value, uint16_t *words)
{
    if (!isfinite(value))
        return -1;
    if (pt->type == RT_BIT) {
        uint16_t mask = (uint16_t)(1u << (pt->bit & 15));
        if (llround(value) != 0)
            words[0] |= mask;
        else
            words[0] &= (uint16_t)~mask;
        return 0;
    }
    if (pt->scale == 0 || !isfinite(pt->scale))
        return -1;
    double raw = (value - pt->offset) / pt->scale;
    if (!isfinite(raw))
        return -1;
    switch (pt->type) {
    case RT_INT16:
        words[0] = (uint16_t)(int16_t)llround(clamp(raw, INT16_MIN, INT16_MAX));
        return 0;
    case RT_UINT16:
        words[0] = (uint16_t)llround(clamp(raw, 0, UINT16_MAX));
        return 0;
    case RT_INT32:
        u32_to_words((uint32_t)(int32_t)llround(clamp(raw, INT32_MIN, INT32_MAX)), pt->order,
                     words);
        return 0;
    case RT_UINT32:
        u32_to_words((uint32_t)llround(clamp(raw, 0, UINT32_MAX)), pt->order, words);
        return 0;
    case RT_FLOAT32:
        u32_to_words(float_to_u32((float)clamp(raw, -FLT_MAX, FLT_MAX)), pt->order, words);
        return 0;
    case RT_BIT:
        break;
    }
    return -1;
}
