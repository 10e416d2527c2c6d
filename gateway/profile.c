/*
 * Loading and validating detector profiles (the register map of one device
 * model, docs/profiles.md). A profile that loads is safe to poll: every point
 * fits the 16-bit register space for every channel, every enum is known, and a
 * smoke or heat profile has exactly one value point, so the engine never has
 * to second-guess it.
 */
#include "profile.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "util.h"

#define MAX_CHANNELS 512
#define MAX_STRIDE 4096
#define POINT_NAME_MAX 31

/* One key of a section as written: borrowed value and its line (0 = absent). */
struct slot {
    const char *value;
    int line;
};

enum { P_VENDOR, P_MODEL, P_DESCRIPTION, P_KIND, P_CHANNELS, P_STRIDE, P__COUNT };
static const char *const profile_keys[P__COUNT] = {"vendor", "model",    "description",
                                                   "kind",   "channels", "channel_stride"};

enum {
    K_ROLE,
    K_TABLE,
    K_ADDRESS,
    K_TYPE,
    K_ORDER,
    K_BIT,
    K_SCALE,
    K_OFFSET,
    K_UNIT,
    K_MIN,
    K_MAX,
    K_PER_CHANNEL,
    K__COUNT
};
static const char *const point_keys[K__COUNT] = {"role",  "table", "address", "type",
                                                 "order", "bit",   "scale",   "offset",
                                                 "unit",  "min",   "max",     "per_channel"};

static const char *const table_names[] = {[REG_HOLDING] = "holding", [REG_INPUT] = "input"};
static const char *const type_names[] = {
    [RT_INT16] = "int16",   [RT_UINT16] = "uint16",   [RT_INT32] = "int32",
    [RT_UINT32] = "uint32", [RT_FLOAT32] = "float32", [RT_BIT] = "bit"};
static const char *const order_names[] = {
    [WO_ABCD] = "abcd", [WO_CDAB] = "cdab", [WO_BADC] = "badc", [WO_DCBA] = "dcba"};

struct raw_point {
    const char *name;
    int line;
    struct slot keys[K__COUNT];
};

/* Parsing state of one file; errors go to e prefixed with path. */
struct loader {
    const char *path;
    struct ini_errors *e;
};

static void list_names(const char *const *names, size_t n, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", names[i]);
}

/* Index of value in names, or -1 with an error naming the choices. */
static int pick(struct loader *ld, const char *ctx, const char *key, const struct slot *s,
                const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->value, names[i]) == 0)
            return (int)i;
    char list[160];
    list_names(names, n, list, sizeof(list));
    ini_error(ld->e, ld->path, s->line, "%s: %s \"%s\" is not one of %s", ctx, key, s->value, list);
    return -1;
}

static int get_int(struct loader *ld, const char *ctx, const char *key, const struct slot *s,
                   long long min, long long max, long long *out)
{
    if (parse_int(s->value, min, max, out) == 0)
        return 0;
    ini_error(ld->e, ld->path, s->line, "%s: %s \"%s\" is not an integer in %lld..%lld", ctx, key,
              s->value, min, max);
    return -1;
}

static int get_double(struct loader *ld, const char *ctx, const char *key, const struct slot *s,
                      double *out)
{
    if (parse_double(s->value, -1e12, 1e12, out) == 0)
        return 0;
    ini_error(ld->e, ld->path, s->line, "%s: %s \"%s\" is not a number in -1e12..1e12", ctx, key,
              s->value);
    return -1;
}

/* Record key=value into slots; unknown and repeated keys are errors. */
static void set_slot(struct loader *ld, const char *ctx, struct slot *slots,
                     const char *const *keys, size_t nkeys, const struct ini_item *it)
{
    for (size_t i = 0; i < nkeys; i++) {
        if (strcmp(it->name, keys[i]) != 0)
            continue;
        if (slots[i].line) {
            ini_error(ld->e, ld->path, it->line, "%s: duplicate key \"%s\" (first on line %d)", ctx,
                      it->name, slots[i].line);
            return;
        }
        slots[i] = (struct slot){it->value, it->line};
        return;
    }
    char list[200];
    list_names(keys, nkeys, list, sizeof(list));
    ini_error(ld->e, ld->path, it->line, "%s: unknown key \"%s\" (expected one of %s)", ctx,
              it->name, list);
}

static bool valid_point_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > POINT_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static bool is_32bit(enum reg_type t)
{
    return reg_type_width(t) == 2;
}

/* Convert and check one point's own keys; cross-point checks come later. */
static int build_point(struct loader *ld, const struct raw_point *rp, struct profile_point *pt)
{
    int before = ld->e->count;
    char ctx[64];
    snprintf(ctx, sizeof(ctx), "point \"%s\"", rp->name);
    const struct slot *k = rp->keys;
    static const int required[] = {K_ROLE, K_TABLE, K_ADDRESS, K_TYPE};
    for (size_t i = 0; i < ARRAY_LEN(required); i++)
        if (!k[required[i]].line)
            ini_error(ld->e, ld->path, rp->line, "%s: missing required key \"%s\"", ctx,
                      point_keys[required[i]]);

    pt->name = xstrdup(rp->name);
    pt->scale = 1;
    pt->order = WO_ABCD;
    int v;
    long long n;
    const char *role_names[ROLE__COUNT];
    for (int r = 0; r < ROLE__COUNT; r++)
        role_names[r] = point_role_name((enum point_role)r);
    if (k[K_ROLE].line && (v = pick(ld, ctx, "role", &k[K_ROLE], role_names, ROLE__COUNT)) >= 0)
        pt->role = (enum point_role)v;
    if (k[K_TABLE].line &&
        (v = pick(ld, ctx, "table", &k[K_TABLE], table_names, ARRAY_LEN(table_names))) >= 0)
        pt->table = (enum reg_table)v;
    if (k[K_ADDRESS].line && get_int(ld, ctx, "address", &k[K_ADDRESS], 0, 65535, &n) == 0)
        pt->address = (uint16_t)n;
    bool have_type = false;
    if (k[K_TYPE].line &&
        (v = pick(ld, ctx, "type", &k[K_TYPE], type_names, ARRAY_LEN(type_names))) >= 0) {
        pt->type = (enum reg_type)v;
        have_type = true;
    }
    if (k[K_ORDER].line) {
        if (have_type && !is_32bit(pt->type))
            ini_error(ld->e, ld->path, k[K_ORDER].line,
                      "%s: order applies only to 32-bit types (int32, uint32, float32), not %s",
                      ctx, type_names[pt->type]);
        else if ((v = pick(ld, ctx, "order", &k[K_ORDER], order_names, ARRAY_LEN(order_names))) >=
                 0)
            pt->order = (enum word_order)v;
    }
    if (have_type && pt->type == RT_BIT && !k[K_BIT].line)
        ini_error(ld->e, ld->path, rp->line, "%s: type bit needs a \"bit\" key (0..15)", ctx);
    if (k[K_BIT].line) {
        if (have_type && pt->type != RT_BIT)
            ini_error(ld->e, ld->path, k[K_BIT].line,
                      "%s: bit applies only to type bit, this point is %s", ctx,
                      type_names[pt->type]);
        else if (get_int(ld, ctx, "bit", &k[K_BIT], 0, 15, &n) == 0)
            pt->bit = (int)n;
    }
    if (k[K_SCALE].line && get_double(ld, ctx, "scale", &k[K_SCALE], &pt->scale) == 0 &&
        pt->scale == 0)
        ini_error(ld->e, ld->path, k[K_SCALE].line, "%s: scale must not be 0", ctx);
    if (k[K_OFFSET].line)
        get_double(ld, ctx, "offset", &k[K_OFFSET], &pt->offset);
    if (k[K_UNIT].line &&
        strlcpy_fg(pt->unit, k[K_UNIT].value, sizeof(pt->unit)) >= sizeof(pt->unit))
        ini_error(ld->e, ld->path, k[K_UNIT].line, "%s: unit \"%s\" is longer than %zu bytes", ctx,
                  k[K_UNIT].value, sizeof(pt->unit) - 1);
    if (!k[K_MIN].line != !k[K_MAX].line) {
        ini_error(ld->e, ld->path, k[K_MIN].line ? k[K_MIN].line : k[K_MAX].line,
                  "%s: give both min and max, or neither", ctx);
    } else if (k[K_MIN].line && get_double(ld, ctx, "min", &k[K_MIN], &pt->min) == 0 &&
               get_double(ld, ctx, "max", &k[K_MAX], &pt->max) == 0) {
        if (pt->min >= pt->max)
            ini_error(ld->e, ld->path, k[K_MAX].line, "%s: min %g is not below max %g", ctx,
                      pt->min, pt->max);
        else
            pt->has_range = true;
    }
    if (k[K_PER_CHANNEL].line && parse_bool(k[K_PER_CHANNEL].value, &pt->per_channel) < 0)
        ini_error(ld->e, ld->path, k[K_PER_CHANNEL].line, "%s: per_channel \"%s\" is not yes or no",
                  ctx, k[K_PER_CHANNEL].value);
    if (have_type && pt->type == RT_BIT && k[K_ROLE].line && pt->role == ROLE_VALUE)
        ini_error(ld->e, ld->path, k[K_TYPE].line,
                  "%s: the value point is a measurement and cannot be of type bit", ctx);
    return ld->e->count == before ? 0 : -1;
}

/* Checks across points, once every point converted cleanly. */
static void check_points(struct loader *ld, const struct profile *p, const struct raw_point *raw)
{
    int values = 0;
    for (size_t i = 0; i < p->npoints; i++) {
        const struct profile_point *pt = &p->points[i];
        int line = raw[i].line;
        int width = reg_type_width(pt->type);
        if (pt->role == ROLE_VALUE)
            values++;
        if (pt->role == ROLE_VALUE && p->kind == PROFILE_PANEL)
            ini_error(ld->e, ld->path, line,
                      "point \"%s\": a panel profile reports status bits only; role value is "
                      "for smoke and heat profiles",
                      pt->name);
        for (size_t j = 0; j < i && pt->role != ROLE_INFO; j++)
            if (p->points[j].role == pt->role)
                ini_error(ld->e, ld->path, line,
                          "point \"%s\": role %s is already taken by point \"%s\" (line %d); "
                          "only info may repeat",
                          pt->name, point_role_name(pt->role), p->points[j].name, raw[j].line);
        long last = (long)pt->address + width - 1;
        if (pt->per_channel)
            last += (long)(p->channels - 1) * p->channel_stride;
        if (last > 65535) {
            if (pt->per_channel)
                ini_error(ld->e, ld->path, line,
                          "point \"%s\": for channel %d it ends at register %ld, past 65535",
                          pt->name, p->channels, last);
            else
                ini_error(ld->e, ld->path, line,
                          "point \"%s\": a %s at address %u runs past register 65535", pt->name,
                          type_names[pt->type], pt->address);
        }
        if (pt->per_channel && p->channels > 1 && p->channel_stride < width)
            ini_error(ld->e, ld->path, line,
                      "point \"%s\": channel_stride %d is smaller than its %d registers, so "
                      "channels would overlap",
                      pt->name, p->channel_stride, width);
    }
    if (p->kind != PROFILE_PANEL && values == 0)
        ini_error(ld->e, ld->path, 0, "a %s profile needs a point with role value",
                  profile_kind_name(p->kind));
    if (p->kind == PROFILE_PANEL && !profile_point_by_role(p, ROLE_ALARM))
        ini_error(ld->e, ld->path, 0, "a panel profile needs a point with role alarm");
}

static char *name_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    static const char ext[] = ".profile";
    if (n > sizeof(ext) - 1 && strcmp(base + n - (sizeof(ext) - 1), ext) == 0)
        n -= sizeof(ext) - 1;
    char *name = xmalloc(n + 1);
    memcpy(name, base, n);
    name[n] = '\0';
    return name;
}

/* Header keys of [profile]; 0 or -1 with errors. */
static int build_header(struct loader *ld, struct profile *p, const struct slot *k, int line)
{
    int before = ld->e->count;
    static const int required[] = {P_VENDOR, P_MODEL, P_KIND};
    for (size_t i = 0; i < ARRAY_LEN(required); i++)
        if (!k[required[i]].line)
            ini_error(ld->e, ld->path, line, "profile: missing required key \"%s\"",
                      profile_keys[required[i]]);
    p->vendor = xstrdup(k[P_VENDOR].value);
    p->model = xstrdup(k[P_MODEL].value);
    p->description = xstrdup(k[P_DESCRIPTION].value);
    p->channels = 1;
    p->channel_stride = 1;
    int v;
    long long n;
    const char *kind_names[] = {profile_kind_name(PROFILE_SMOKE), profile_kind_name(PROFILE_HEAT),
                                profile_kind_name(PROFILE_PANEL)};
    if (k[P_KIND].line &&
        (v = pick(ld, "profile", "kind", &k[P_KIND], kind_names, ARRAY_LEN(kind_names))) >= 0)
        p->kind = (enum profile_kind)v;
    if (k[P_CHANNELS].line &&
        get_int(ld, "profile", "channels", &k[P_CHANNELS], 1, MAX_CHANNELS, &n) == 0)
        p->channels = (int)n;
    if (k[P_STRIDE].line &&
        get_int(ld, "profile", "channel_stride", &k[P_STRIDE], 1, MAX_STRIDE, &n) == 0)
        p->channel_stride = (int)n;
    return ld->e->count == before ? 0 : -1;
}

struct profile *profile_load(const char *path, char *err, size_t errlen)
{
    struct ini_errors e;
    ini_errors_init(&e, err, errlen);
    struct loader ld = {path, &e};
    char *text = ini_read_file(path, &e);
    if (!text)
        return NULL;
    struct ini_file f;
    ini_parse(text, path, &f, &e);
    free(text);

    struct slot head[P__COUNT] = {{0}};
    int head_line = 0;
    struct raw_point *raw = xcalloc(f.count, sizeof(*raw));
    size_t nraw = 0;
    struct raw_point *cur = NULL;
    bool in_head = false, in_bad = false;
    for (size_t i = 0; i < f.count; i++) {
        const struct ini_item *it = &f.items[i];
        if (it->kind != INI_KEY) {
            in_head = false;
            in_bad = true;
            cur = NULL;
            if (it->kind == INI_BAD_SECTION)
                continue;
            if (strcmp(it->name, "profile") == 0) {
                if (it->value)
                    ini_error(&e, path, it->line, "[profile] takes no name");
                else if (head_line)
                    ini_error(&e, path, it->line, "second [profile] section (first on line %d)",
                              head_line);
                else
                    head_line = it->line, in_head = true, in_bad = false;
            } else if (strcmp(it->name, "point") == 0) {
                if (!it->value || !valid_point_name(it->value)) {
                    ini_error(&e, path, it->line,
                              "a point is named [point NAME], NAME being 1..%d of A-Z a-z 0-9 _ -",
                              POINT_NAME_MAX);
                    continue;
                }
                for (size_t j = 0; j < nraw; j++)
                    if (strcmp(raw[j].name, it->value) == 0)
                        ini_error(&e, path, it->line, "point \"%s\" is already defined on line %d",
                                  it->value, raw[j].line);
                cur = &raw[nraw++];
                cur->name = it->value;
                cur->line = it->line;
                in_bad = false;
            } else {
                ini_error(&e, path, it->line,
                          "unknown section [%s]; a profile has [profile] and [point NAME] sections",
                          it->name);
            }
        } else if (in_head) {
            set_slot(&ld, "profile", head, profile_keys, P__COUNT, it);
        } else if (cur) {
            char ctx[64];
            snprintf(ctx, sizeof(ctx), "point \"%s\"", cur->name);
            set_slot(&ld, ctx, cur->keys, point_keys, K__COUNT, it);
        } else if (!in_bad) {
            ini_error(&e, path, it->line, "key \"%s\" before the [profile] section", it->name);
        }
    }

    struct profile *p = xcalloc(1, sizeof(*p));
    p->name = name_from_path(path);
    p->path = xstrdup(path);
    int ok = 0;
    if (!head_line) {
        ini_error(&e, path, 0, "no [profile] section");
        ok = -1;
    } else {
        ok = build_header(&ld, p, head, head_line);
    }
    if (nraw == 0)
        ini_error(&e, path, 0, "no [point NAME] section; a profile needs at least one point");
    p->points = xcalloc(nraw, sizeof(*p->points));
    for (size_t i = 0; i < nraw; i++) {
        p->npoints++;
        if (build_point(&ld, &raw[i], &p->points[i]) < 0)
            ok = -1;
    }
    if (ok == 0 && e.count == 0)
        check_points(&ld, p, raw);
    free(raw);
    ini_free(&f);
    if (e.count) {
        profile_free(p);
        return NULL;
    }
    return p;
}

void profile_free(struct profile *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->npoints; i++)
        free(p->points[i].name);
    free(p->points);
    free(p->name);
    free(p->vendor);
    free(p->model);
    free(p->description);
    free(p->path);
    free(p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int profile_set_load_dir(struct profile_set *set, const char *dir, char *err, size_t errlen)
{
    struct ini_errors e;
    ini_errors_init(&e, err, errlen);
    DIR *d = opendir(dir);
    if (!d) {
        ini_error(&e, dir, 0, "cannot open the profile directory: %s", strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len <= 8 || strcmp(de->d_name + len - 8, ".profile") != 0)
            continue;
        names = xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    /* Sorted, so the load order (and the error order) does not depend on the file system. */
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        size_t used = strnlen(err, errlen);
        struct profile *p = profile_load(path, err + used, errlen - used);
        if (p) {
            set->items = xrealloc(set->items, (set->count + 1) * sizeof(*set->items));
            set->items[set->count++] = p;
        } else {
            rc = -1;
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return rc;
}

const struct profile *profile_set_find(const struct profile_set *set, const char *name)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->items[i]->name, name) == 0)
            return set->items[i];
    return NULL;
}

void profile_set_free(struct profile_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        profile_free(set->items[i]);
    free(set->items);
    set->items = NULL;
    set->count = 0;
}
