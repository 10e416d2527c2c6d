/*
 * Request bodies of the web API (docs/http-api.md), parsed strictly: a JSON
 * object in valid UTF-8 with nothing after it, no duplicate or unknown
 * fields, each field of its declared type. Operator actions become the text
 * commands of command.h, checked word by word so nothing in a body can add a
 * word to the command. Pure functions: no I/O, no state; fuzzed as they are.
 */
#ifndef FIREGW_WEBREQ_H
#define FIREGW_WEBREQ_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "webauth.h"

/* Largest request body accepted (413 above). */
#define WEBREQ_BODY_MAX (64 * 1024)

/* Why a body was refused: the HTTP status, the field concerned ("" if none) and a sentence. */
struct webreq_error {
    int status;
    char field[64];
    char message[256];
};

enum webreq_type { WR_STRING, WR_INT, WR_BOOL, WR_OBJECT };

/* One field a body may carry. */
struct webreq_field {
    const char *name;
    enum webreq_type type;
    bool required;
};

/*
 * Parse body (len bytes, not necessarily NUL-terminated) as a JSON object
 * whose fields are among fields[0..n) (fields NULL: any names, checked by the
 * caller). Returns the object (caller cJSON_Delete()s), or NULL with err
 * (status 400).
 */
cJSON *webreq_parse(const char *body, size_t len, const struct webreq_field *fields, size_t n,
                    struct webreq_error *err);

/* Whether s is a zone, detector, device or bus id: 1-64 of A-Z a-z 0-9 _ - . */
bool webreq_valid_id(const char *s);

/* An operator action, checked, as command.c takes it. */
struct webreq_action {
    char line[256]; /* e.g. "acknowledge zone F3", "test on detector F3-01 30min" */
    enum web_role need;
    char scope[16];      /* "all", "zone" or "detector" */
    char id[72];         /* the zone or detector; "" for all */
    long long period_ms; /* disable and test_on; else 0 */
};

/*
 * POST /api/actions {"action","scope","id","duration"} into out. 0, or -1
 * with err (400).
 */
int webreq_action(const char *body, size_t len, struct webreq_action *out,
                  struct webreq_error *err);

#endif
