/*
 * Strict parsing of web API request bodies. cJSON accepts more than we want
 * (duplicate keys, text after the value, invalid UTF-8), so those are checked
 * here before any field is looked at; every refusal names the field.
 */
#include "webreq.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "command.h"
#include "util.h"

static void __attribute__((format(printf, 3, 4)))
fail(struct webreq_error *err, const char *field, const char *fmt, ...)
{
    err->status = 400;
    strlcpy_fg(err->field, field ? field : "", sizeof(err->field));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static const char *type_name(enum webreq_type t)
{
    switch (t) {
    case WR_STRING:
        return "a string";
    case WR_INT:
        return "an integer";
    case WR_BOOL:
        return "true or false";
    case WR_OBJECT:
        return "an object";
    }
    return "?";
}

static bool has_type(const cJSON *v, enum webreq_type t)
{
    switch (t) {
    case WR_STRING:
        return cJSON_IsString(v);
    case WR_INT:
        return cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
               v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 2147483648.0;
    case WR_BOOL:
        return cJSON_IsBool(v);
    case WR_OBJECT:
        return cJSON_IsObject(v);
    }
    return false;
}

/* Position of the first byte that is not valid UTF-8 (NUL included), or len. */
static size_t utf8_bad_at(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
        if (n == 0 || s[i] == '\0')
            return i;
        i += n;
    }
    return len;
}

static void field_list(const struct webreq_field *fields, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", fields[i].name);
    if (n == 0)
        snprintf(buf, len, "none");
}

cJSON *webreq_parse(const char *body, size_t len, const struct webreq_field *fields, size_t n,
                    struct webreq_error *err)
{
    memset(err, 0, sizeof(*err));
    if (!body || len == 0) {
        fail(err, NULL, "the request needs a JSON object as its body");
        return NULL;
    }
    size_t bad = utf8_bad_at(body, len);
    if (bad < len) {
        fail(err, NULL, "the body is not valid UTF-8 (byte %zu)", bad);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        fail(err, NULL, "malformed JSON at byte %zu", at);
        return NULL;
    }
    while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != body + len) {
        fail(err, NULL, "unexpected text after the JSON object at byte %zu", (size_t)(end - body));
        cJSON_Delete(root);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        fail(err, NULL, "the body must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        const struct webreq_field *f = NULL;
        for (size_t i = 0; fields && i < n && !f; i++)
            if (strcmp(fields[i].name, item->string) == 0)
                f = &fields[i];
        if (!f && fields) {
            char list[256];
            field_list(fields, n, list, sizeof(list));
            fail(err, item->string, "unknown field \"%.60s\" (expected: %s)", item->string, list);
            cJSON_Delete(root);
            return NULL;
        }
        for (const cJSON *prev = root->child; prev != item; prev = prev->next) {
            if (strcmp(prev->string, item->string) == 0) {
                fail(err, item->string, "field \"%.60s\" appears twice", item->string);
                cJSON_Delete(root);
                return NULL;
            }
        }
        if (f && !has_type(item, f->type)) {
            fail(err, f->name, "field \"%s\" must be %s", f->name, type_name(f->type));
            cJSON_Delete(root);
            return NULL;
        }
    }
    for (size_t i = 0; fields && i < n; i++) {
        if (fields[i].required && !cJSON_GetObjectItemCaseSensitive(root, fields[i].name)) {
            fail(err, fields[i].name, "missing field \"%s\"", fields[i].name);
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

bool webreq_valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* A period as command.c takes it: digits (and a point) then a unit, within 1 s..7 days. */
static bool valid_period(const char *s, int64_t *ms)
{
    size_t n = strlen(s), digits = strspn(s, "0123456789.");
    return n <= 16 && digits > 0 && strspn(s + digits, "mshin") == n - digits &&
           parse_duration_ms(s, 1000, COMMAND_MAX_PERIOD_MS, ms) == 0;
}

struct action_def {
    const char *name;
    const char *words; /* the command's verb, as command.c reads it */
    enum web_role role;
    bool allow_all;
    bool period;
};

static const struct action_def actions[] = {
    {"acknowledge", "acknowledge", WEB_MANAGER, true, false},
    {"silence", "silence", WEB_MANAGER, true, false},
    {"reset", "reset", WEB_MANAGER, true, false},
    {"disable", "disable", WEB_INSTALLER, false, true},
    {"enable", "enable", WEB_INSTALLER, false, false},
    {"test_on", "test on", WEB_INSTALLER, false, true},
    {"test_off", "test off", WEB_INSTALLER, false, false},
};

int webreq_action(const char *body, size_t len, struct webreq_action *out, struct webreq_error *err)
{
    static const struct webreq_field fields[] = {
        {"action", WR_STRING, true},
        {"scope", WR_STRING, true},
        {"id", WR_STRING, false},
        {"duration", WR_STRING, false},
    };
    cJSON *root = webreq_parse(body, len, fields, ARRAY_LEN(fields), err);
    if (!root)
        return -1;
    const char *action = cJSON_GetObjectItemCaseSensitive(root, "action")->valuestring;
    const char *scope = cJSON_GetObjectItemCaseSensitive(root, "scope")->valuestring;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(root, "duration");
    const struct action_def *a = NULL;
    for (size_t i = 0; i < ARRAY_LEN(actions) && !a; i++)
        if (strcmp(actions[i].name, action) == 0)
            a = &actions[i];
    int rc = -1;
    int64_t ms = 0;
    memset(out, 0, sizeof(*out));
    if (!a) {
        fail(err, "action",
             "action \"%.40s\" is not one of acknowledge, silence, reset, disable, enable, "
             "test_on, test_off",
             action);
    } else if (strcmp(scope, "all") != 0 && strcmp(scope, "zone") != 0 &&
               strcmp(scope, "detector") != 0) {
        fail(err, "scope", "scope \"%.40s\" is not one of all, zone, detector", scope);
    } else if (strcmp(scope, "all") == 0 && !a->allow_all) {
        fail(err, "scope", "%s needs scope zone or detector, not all", a->name);
    } else if (strcmp(scope, "all") == 0 && id) {
        fail(err, "id", "id is not used with scope all");
    } else if (strcmp(scope, "all") != 0 && !id) {
        fail(err, "id", "missing field \"id\": which %s", scope);
    } else if (id && !webreq_valid_id(id->valuestring)) {
        fail(err, "id", "id \"%.64s\" is not 1-64 of A-Z a-z 0-9 _ - .", id->valuestring);
    } else if (a->period && !dur) {
        fail(err, "duration", "%s needs a duration, e.g. \"30min\" or \"2h\"", a->name);
    } else if (!a->period && dur) {
        fail(err, "duration", "duration is only used with disable and test_on");
    } else if (dur && !valid_period(dur->valuestring, &ms)) {
        fail(err, "duration",
             "duration \"%.20s\" is not a period between 1s and 168h with its unit (ms, s, min, "
             "h), e.g. \"30min\"",
             dur->valuestring);
    } else {
        snprintf(out->line, sizeof(out->line), "%s %s%s%s%s%s", a->words, scope, id ? " " : "",
                 id ? id->valuestring : "", dur ? " " : "", dur ? dur->valuestring : "");
        out->need = a->role;
        strlcpy_fg(out->scope, scope, sizeof(out->scope));
        strlcpy_fg(out->id, id ? id->valuestring : "", sizeof(out->id));
        out->period_ms = ms;
        rc = 0;
    }
    cJSON_Delete(root);
    return rc;
}
