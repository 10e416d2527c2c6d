/*
 * Register decoding and encoding: raw Modbus words to engineering values and
 * back (the simulator encodes with the same rules the gateway decodes with).
 * Pure functions, no I/O.
 */
#ifndef FIREGW_CODEC_H
#define FIREGW_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/*
 * Decode the point pt from words (words[0] is the point's first register).
 * Writes the engineering value (raw * scale + offset; a bit gives 0 or 1).
 * Returns 0, or -1 with a sentence in err when the value is not a number
 * (NaN/inf float) or lies outside the point's plausible range.
 */
int codec_decode(const struct profile_point *pt, const uint16_t *words, double *value, char *err,
                 size_t errlen);

/*
 * Encode an engineering value into words for pt (1 or 2 registers). For a bit
 * point only that bit of words[0] is changed. Values are rounded and clamped to
 * the raw type's range. Returns 0, or -1 if value is not finite.
 */
int codec_encode(const struct profile_point *pt, double value, uint16_t *words);

#endif
