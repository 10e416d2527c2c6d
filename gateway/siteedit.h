/*
 * Editing the site config file from the installer pages (GET and POST, PUT,
 * DELETE /api/config). It owns the file-text side of a change: listing buses,
 * devices, detectors and zones as written, applying one add, replace or
 * remove of a [bus], [device] or [detector] section while every other line
 * (comments included) stays byte for byte, validating the result with the
 * real loader and pinning each error to the field it is about, and saving
 * atomically with the previous file kept as FILE.bak. It runs no threads and
 * speaks no HTTP; the web server calls it on the main thread and sends the
 * JSON it builds. Applying the saved file to the running gateway is not its
 * business.
 *
 * Values travel as strings exactly as written in the file ("30s", "9600");
 * an edit also accepts JSON numbers and booleans (written as yes/no).
 */
#ifndef FIREGW_SITEEDIT_H
#define FIREGW_SITEEDIT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "cfg.h"

/* Room for a version: lowercase hex SHA-256 of the file's bytes and a NUL. */
#define SITEEDIT_VERSION_LEN 65

enum siteedit_kind { SITEEDIT_BUS, SITEEDIT_DEVICE, SITEEDIT_DETECTOR };

enum siteedit_op { SITEEDIT_ADD, SITEEDIT_REPLACE, SITEEDIT_REMOVE };

enum siteedit_status {
    SITEEDIT_OK,
    SITEEDIT_BAD_REQUEST, /* unknown field, value of a wrong type, bad id: HTTP 400 */
    SITEEDIT_NOT_FOUND,   /* no such section to replace or remove: 404 */
    SITEEDIT_STALE,       /* the file changed since the version the client read: 409 */
    SITEEDIT_CONFLICT,    /* the id exists, or a removal would strand devices or detectors: 409 */
    SITEEDIT_INVALID,     /* the edited config would not load; errors says why: 422 */
    SITEEDIT_IO,          /* the file could not be read or written; it is unchanged: 500 */
};

/* One problem of an edited config, pinned to what it is about. */
struct siteedit_error {
    char *field;   /* "detector.F3-01.zone", "bus.a" (the section), "site.name"; "" for the file */
    int line;      /* 1-based line in the edited text; 0 when the problem has none */
    char *message; /* the loader's message without its "file:line: " */
};

/* The outcome of a call. Zero-initialise; free with siteedit_result_free. */
struct siteedit_result {
    enum siteedit_status status;
    char message[1024];            /* what went wrong, naming what and where; "" on success */
    char field[80];                /* the request field at fault (400, 409), "" if none */
    struct siteedit_error *errors; /* SITEEDIT_INVALID: every problem, in file order */
    size_t nerrors;
    char version[SITEEDIT_VERSION_LEN]; /* after siteedit_save or siteedit_edit: the new version */
};

/* "bus", "device" or "detector" to a kind. 0, or -1 for anything else. */
int siteedit_kind_parse(const char *name, enum siteedit_kind *out);

/* The version of a file text: lowercase hex SHA-256 of its bytes, into out. */
void siteedit_version(const char *text, char out[SITEEDIT_VERSION_LEN]);

/* The text of the file at path (caller frees); NULL with res set to SITEEDIT_IO. */
char *siteedit_read(const char *path, struct siteedit_result *res);

/*
 * The body of GET /api/config for a file text: {"version", "buses", "devices",
 * "detectors", "zones", "profiles"}. Each entity is {"id", key: "value", ...}
 * with the keys as written, in file order; sections with syntax errors are
 * left out. profiles: the NAME.profile names found in cfg's profile
 * directories, sorted (empty when cfg is NULL). Caller frees (cJSON_Delete).
 */
cJSON *siteedit_entities(const char *text, const struct cfg *cfg);

/*
 * Apply one edit of a [bus|device|detector ID] section to text. body (ADD,
 * REPLACE) is an object of keys from the option table of that section, each a
 * string, number or boolean, or null for "leave it out"; "id" names the
 * section and "version" is not a key (both are skipped). ADD takes the id
 * from id, or when that is NULL from body "id", and appends the section after
 * the last one of its kind. REPLACE gives section id exactly the body's keys,
 * keeping its place, comments and unchanged lines; a body "id" that differs
 * renames it. REMOVE drops the section from its header to its last key,
 * refusing a bus that devices or detectors use, or a device detectors use.
 * Returns the new text (caller frees), or NULL with res set.
 */
char *siteedit_apply(const char *text, enum siteedit_kind kind, enum siteedit_op op, const char *id,
                     const cJSON *body, struct siteedit_result *res);

/*
 * Load text with the real loader as if it were the file at path (relative
 * paths resolve next to it). 0, or -1 with res SITEEDIT_INVALID and one error
 * per problem, pinned to the field on that line of text.
 */
int siteedit_validate(const char *text, const char *path, struct siteedit_result *res);

/*
 * Replace the file at path (a symlink's target) by text if the file's current
 * version is version (NULL: no check, else SITEEDIT_STALE): the previous file
 * is kept as PATH.bak (replacing an older one) and the new text is written to
 * a temporary file beside it, synced, and renamed over it, so a reader sees
 * the old file or the new one, never a part. On any failure the file is
 * unchanged and no temporary file is left. 0 with res->version, or -1.
 */
int siteedit_save(const char *path, const char *text, const char *version,
                  struct siteedit_result *res);

/*
 * The whole change: read the file at path, check version (required), apply
 * the edit, validate, save (nothing is written when the text is unchanged).
 * 0 with res->version, or -1 with res set.
 */
int siteedit_edit(const char *path, enum siteedit_kind kind, enum siteedit_op op, const char *id,
                  const cJSON *body, const char *version, struct siteedit_result *res);

/* The HTTP status for a result: 200, 400, 404, 409, 422 or 500. */
int siteedit_http_status(const struct siteedit_result *res);

/*
 * The answer body for a result: {"version"} on success, else {"error",
 * "field" (when known), "errors": [{"field", "line", "message"}] (422)}.
 * Caller frees (cJSON_Delete).
 */
cJSON *siteedit_result_json(const struct siteedit_result *res);

/* Free what res holds (not res itself); safe to call twice. */
void siteedit_result_free(struct siteedit_result *res);

#endif
