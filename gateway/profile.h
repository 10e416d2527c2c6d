/*
 * Detector profiles: the register map of one device model, loaded from a data
 * file in sensors/profiles/ (see docs/profiles.md). An installer adds a model
 * by adding a file; nothing here is compiled per model.
 *
 * A profile lists points. A point is one register (or register pair) or one bit
 * of a register, with a role that tells the engine what it means. A device may
 * have several channels (a fire panel's zones): a point marked per_channel
 * lives at address + (channel - 1) * channel_stride.
 */
#ifndef FIREGW_PROFILE_H
#define FIREGW_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum profile_kind {
    PROFILE_SMOKE, /* point smoke detector: value is obscuration in %/m */
    PROFILE_HEAT,  /* point heat detector: value is temperature in degC */
    PROFILE_PANEL, /* fire panel module: channels are panel zones, status bits only */
};

enum reg_table {
    REG_HOLDING, /* function 03 */
    REG_INPUT,   /* function 04 */
};

enum reg_type {
    RT_INT16,
    RT_UINT16,
    RT_INT32,
    RT_UINT32,
    RT_FLOAT32,
    RT_BIT, /* one bit of a 16-bit register */
};

/* Order of the four bytes of a 32-bit value, A = most significant. */
enum word_order {
    WO_ABCD, /* big endian, high word first (Modbus default) */
    WO_CDAB, /* low word first ("word swap") */
    WO_BADC, /* bytes swapped within words */
    WO_DCBA, /* little endian */
};

enum point_role {
    ROLE_VALUE,       /* the measured value: obscuration or temperature */
    ROLE_ALARM,       /* detector's or zone's own alarm bit */
    ROLE_PREALARM,    /* pre-alarm bit */
    ROLE_FAULT,       /* fault bit */
    ROLE_MAINTENANCE, /* maintenance / dirty chamber bit */
    ROLE_DISABLED,    /* zone disabled at the panel */
    ROLE_LIFECHECK,   /* counter that increments while the device is alive */
    ROLE_INFO,        /* read and shown, no alarm meaning */
    ROLE__COUNT
};

struct profile_point {
    char *name; /* unique within the profile, e.g. "obscuration" */
    enum point_role role;
    enum reg_table table;
    uint16_t address; /* 0-based register address */
    enum reg_type type;
    enum word_order order; /* 32-bit types only */
    int bit;               /* RT_BIT: 0..15 */
    double scale;          /* engineering = raw * scale + offset */
    double offset;
    bool has_range; /* plausible range in engineering units */
    double min, max;
    char unit[16]; /* "%/m", "degC", "" */
    bool per_channel;
};

struct profile {
    char *name;        /* file's name without ".profile"; what configs refer to */
    char *vendor;      /* free text */
    char *model;       /* free text */
    char *description; /* free text */
    enum profile_kind kind;
    int channels;       /* 1 for point detectors; zones for a panel */
    int channel_stride; /* registers between channels of a per_channel point */
    struct profile_point *points;
    size_t npoints;
    char *path; /* file it was loaded from */
};

/* A set of loaded profiles. */
struct profile_set {
    struct profile **items;
    size_t count;
};

/*
 * Load one profile file. On failure returns NULL and appends one line per
 * problem ("path:line: message\n") to err (size errlen), stopping when full.
 * Caller owns the result (profile_free).
 */
struct profile *profile_load(const char *path, char *err, size_t errlen);
void profile_free(struct profile *p);

/*
 * Load every "*.profile" file in dir into set (appending). Returns 0 if all
 * loaded, -1 if any failed (the others are still added; errors in err).
 */
int profile_set_load_dir(struct profile_set *set, const char *dir, char *err, size_t errlen);
/* Find a profile by name, NULL if none. */
const struct profile *profile_set_find(const struct profile_set *set, const char *name);
void profile_set_free(struct profile_set *set);

/* The point with the given role, or NULL. */
const struct profile_point *profile_point_by_role(const struct profile *p, enum point_role role);
/* Register address of a point for a channel (1-based). */
uint16_t profile_point_address(const struct profile *p, const struct profile_point *pt,
                               int channel);
/* Number of registers a point of this type occupies (1 or 2). */
int reg_type_width(enum reg_type t);

const char *profile_kind_name(enum profile_kind k);
const char *point_role_name(enum point_role r);

#endif
