/*
 * What a configuration reload may change while the gateway runs, and what it
 * may not. Buses whose connection settings, devices, profiles and detector
 * wiring are all unchanged keep their pollers; everything the engine judges
 * (levels, zones, rules) simply follows the new config. The site, the state
 * directory and the uplinks' connections are fixed for the life of the
 * process: changing them needs a restart, and a reload that tries is refused
 * whole, so nothing is ever half applied.
 */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static bool same_str(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool same_point(const struct profile_point *a, const struct profile_point *b)
{
    return same_str(a->name, b->name) && a->role == b->role && a->table == b->table &&
           a->address == b->address && a->type == b->type && a->order == b->order &&
           a->bit == b->bit && a->scale == b->scale && a->offset == b->offset &&
           a->has_range == b->has_range && a->min == b->min && a->max == b->max &&
           strcmp(a->unit, b->unit) == 0 && a->per_channel == b->per_channel;
}

static bool same_profile(const struct profile *a, const struct profile *b)
{
    if (!a || !b)
        return a == b;
    if (a->kind != b->kind || a->channels != b->channels ||
        a->channel_stride != b->channel_stride || a->npoints != b->npoints)
        return false;
    for (size_t i = 0; i < a->npoints; i++)
        if (!same_point(&a->points[i], &b->points[i]))
            return false;
    return true;
}

static bool same_bus_settings(const struct cfg_bus *a, const struct cfg_bus *b)
{
    return a->type == b->type && same_str(a->host, b->host) && a->port == b->port &&
           same_str(a->device, b->device) && a->baud == b->baud && a->parity == b->parity &&
           a->data_bits == b->data_bits && a->stop_bits == b->stop_bits && a->rs485 == b->rs485 &&
           a->poll_interval_ms == b->poll_interval_ms && a->timeout_ms == b->timeout_ms &&
           a->retries == b->retries && a->backoff_min_ms == b->backoff_min_ms &&
           a->backoff_max_ms == b->backoff_max_ms && a->reconnect_min_ms == b->reconnect_min_ms &&
           a->reconnect_max_ms == b->reconnect_max_ms && a->max_gap == b->max_gap &&
           a->max_in_flight == b->max_in_flight;
}

static bool same_device(const struct cfg_device *a, const struct cfg_device *b)
{
    return strcmp(a->id, b->id) == 0 && a->unit == b->unit && a->timeout_ms == b->timeout_ms &&
           a->retries == b->retries && a->fail_after == b->fail_after &&
           same_profile(a->profile, b->profile);
}

/* The next device of bus after index from (exclusive), or ndevices. */
static size_t next_device(const struct cfg *c, size_t bus, size_t from)
{
    size_t i = from;
    while (i < c->ndevices && c->devices[i].bus != bus)
        i++;
    return i;
}

static size_t next_detector(const struct cfg *c, size_t dev, size_t from)
{
    size_t i = from;
    while (i < c->ndetectors && c->detectors[i].device != dev)
        i++;
    return i;
}

bool reload_bus_unchanged(const struct cfg *a, size_t ba, const struct cfg *b, size_t bb)
{
    if (!same_bus_settings(&a->buses[ba], &b->buses[bb]))
        return false;
    /* Same devices in the same order, each read the same way for the same detectors. */
    size_t da = next_device(a, ba, 0), db = next_device(b, bb, 0);
    for (; da < a->ndevices && db < b->ndevices;
         da = next_device(a, ba, da + 1), db = next_device(b, bb, db + 1)) {
        if (!same_device(&a->devices[da], &b->devices[db]))
            return false;
        size_t ta = next_detector(a, da, 0), tb = next_detector(b, db, 0);
        for (; ta < a->ndetectors && tb < b->ndetectors;
             ta = next_detector(a, da, ta + 1), tb = next_detector(b, db, tb + 1))
            if (strcmp(a->detectors[ta].id, b->detectors[tb].id) != 0 ||
                a->detectors[ta].channel != b->detectors[tb].channel)
                return false;
        if (ta < a->ndetectors || tb < b->ndetectors)
            return false;
    }
    return da >= a->ndevices && db >= b->ndevices;
}

static bool same_uplink_connection(const struct cfg_uplink *a, const struct cfg_uplink *b)
{
    if (a->nfailover != b->nfailover)
        return false;
    for (size_t i = 0; i < a->nfailover; i++)
        if (!same_str(a->failover[i], b->failover[i]))
            return false;
    return same_str(a->id, b->id) && a->role == b->role && same_str(a->host, b->host) &&
           a->port == b->port && same_str(a->client_id, b->client_id) &&
           same_str(a->username, b->username) && same_str(a->password, b->password) &&
           same_str(a->topic_prefix, b->topic_prefix) && a->keepalive_ms == b->keepalive_ms &&
           a->max_buffered == b->max_buffered && a->ack_timeout_ms == b->ack_timeout_ms &&
           a->commands == b->commands && a->tls == b->tls && same_str(a->ca_file, b->ca_file) &&
           same_str(a->cert_file, b->cert_file) && same_str(a->key_file, b->key_file) &&
           a->verify_hostname == b->verify_hostname;
}

static bool same_site(const struct cfg_site *a, const struct cfg_site *b)
{
    return same_str(a->id, b->id) && same_str(a->name, b->name) &&
           same_str(a->address, b->address) && same_str(a->district, b->district) &&
           a->latitude == b->latitude && a->longitude == b->longitude;
}

int reload_check(const struct cfg *old, const struct cfg *nw, const struct engine *e, char *err,
                 size_t errlen)
{
    if (!same_site(&old->site, &nw->site)) {
        snprintf(err, errlen, "the [site] section changed: restart the service to apply it");
        return -1;
    }
    if (!same_str(old->gateway.state_dir, nw->gateway.state_dir)) {
        snprintf(err, errlen, "gateway.state_dir changed: restart the service to apply it");
        return -1;
    }
    if (old->nuplinks != nw->nuplinks) {
        snprintf(err, errlen, "uplinks were added or removed: restart the service to apply it");
        return -1;
    }
    for (size_t i = 0; i < old->nuplinks; i++)
        if (!same_uplink_connection(&old->uplinks[i], &nw->uplinks[i])) {
            snprintf(err, errlen,
                     "uplink \"%s\" changed its broker, identity, security, acknowledgement or "
                     "commands: restart the service to apply it (only its event filter can "
                     "change on a reload)",
                     old->uplinks[i].id);
            return -1;
        }
    /* A latched alarm ends only by a reset, never because its detector left the file. */
    for (size_t i = 0; i < old->ndetectors; i++) {
        const struct det_status *st = engine_detector(e, i);
        if (cfg_find_detector(nw, old->detectors[i].id) >= 0)
            continue;
        if (st->level == LEVEL_FIRE_ALARM || st->pending) {
            snprintf(err, errlen,
                     "detector \"%s\" is in %s and the new configuration removes it: reset it "
                     "first",
                     old->detectors[i].id, st->pending ? "a held alarm" : "fire alarm");
            return -1;
        }
    }
    return 0;
}

struct reload_map *reload_map_new(const struct cfg *from, const struct cfg *to)
{
    struct reload_map *m = xcalloc(1, sizeof(*m));
    m->from = from;
    m->bus = xcalloc(from->nbuses + 1, sizeof(*m->bus));
    m->device = xcalloc(from->ndevices + 1, sizeof(*m->device));
    m->detector = xcalloc(from->ndetectors + 1, sizeof(*m->detector));
    for (size_t i = 0; i < from->nbuses; i++)
        m->bus[i] = cfg_find_bus(to, from->buses[i].id);
    for (size_t i = 0; i < from->ndevices; i++)
        m->device[i] = cfg_find_device(to, from->devices[i].id);
    for (size_t i = 0; i < from->ndetectors; i++)
        m->detector[i] = cfg_find_detector(to, from->detectors[i].id);
    return m;
}

void reload_map_free(struct reload_map *m)
{
    if (!m)
        return;
    free(m->bus);
    free(m->device);
    free(m->detector);
    free(m);
}
