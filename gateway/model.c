/*
 * Small accessors over the configuration and profile model that every module
 * needs: names of enum values, point addresses, lookups by id. No parsing here
 * (cfg.c and profile.c own that), so the engine and its tests can link this
 * without the parsers.
 */
#include <string.h>

#include "cfg.h"
#include "profile.h"

const char *detector_type_name(enum detector_type t)
{
    switch (t) {
    case DET_SMOKE:
        return "smoke";
    case DET_HEAT:
        return "heat";
    case DET_PANEL_ZONE:
        return "panel_zone";
    }
    return "unknown";
}

const char *detector_unit(enum detector_type t)
{
    switch (t) {
    case DET_SMOKE:
        return "%/m";
    case DET_HEAT:
        return "degC";
    case DET_PANEL_ZONE:
        return "";
    }
    return "";
}

const char *profile_kind_name(enum profile_kind k)
{
    switch (k) {
    case PROFILE_SMOKE:
        return "smoke";
    case PROFILE_HEAT:
        return "heat";
    case PROFILE_PANEL:
        return "panel";
    }
    return "unknown";
}

const char *point_role_name(enum point_role r)
{
    static const char *names[ROLE__COUNT] = {
        [ROLE_VALUE] = "value",
        [ROLE_ALARM] = "alarm",
        [ROLE_PREALARM] = "prealarm",
        [ROLE_FAULT] = "fault",
        [ROLE_MAINTENANCE] = "maintenance",
        [ROLE_DISABLED] = "disabled",
        [ROLE_LIFECHECK] = "lifecheck",
        [ROLE_INFO] = "info",
    };
    return (unsigned)r < ROLE__COUNT ? names[r] : "unknown";
}

int reg_type_width(enum reg_type t)
{
    return (t == RT_INT32 || t == RT_UINT32 || t == RT_FLOAT32) ? 2 : 1;
}

const struct profile_point *profile_point_by_role(const struct profile *p, enum point_role role)
{
    for (size_t i = 0; i < p->npoints; i++)
        if (p->points[i].role == role)
            return &p->points[i];
    return NULL;
}

uint16_t profile_point_address(const struct profile *p, const struct profile_point *pt, int channel)
{
    if (!pt->per_channel || channel <= 1)
        return pt->address;
    return (uint16_t)(pt->address + (channel - 1) * p->channel_stride);
}

long cfg_find_bus(const struct cfg *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->nbuses; i++)
        if (strcmp(cfg->buses[i].id, id) == 0)
            return (long)i;
    return -1;
}

long cfg_find_device(const struct cfg *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->ndevices; i++)
        if (strcmp(cfg->devices[i].id, id) == 0)
            return (long)i;
    return -1;
}

long cfg_find_detector(const struct cfg *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->ndetectors; i++)
        if (strcmp(cfg->detectors[i].id, id) == 0)
            return (long)i;
    return -1;
}

bool cfg_uplink_wants(const struct cfg *cfg, size_t u, int kind, bool has_zone, size_t zone,
                      bool test)
{
    const struct cfg_uplink *up = &cfg->uplinks[u];
    if (kind < 0 || kind >= 32 || !(up->kinds & (1u << kind)))
        return false;
    if (test && !up->test_events)
        return false;
    if (!has_zone || up->nzones == 0)
        return true;
    for (size_t i = 0; i < up->nzones; i++)
        if (up->zones[i] == zone)
            return true;
    return false;
}
