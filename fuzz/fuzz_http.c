/*
 * Fuzz target: what the HTTP API takes from a request (docs/http-api.md), past
 * libmicrohttpd: the JSON bodies, read by webreq.c, and the config edits of
 * /api/config, applied by siteedit.c to the test site's text.
 *
 * Input: one byte choosing the request, one byte of its parameters, then the
 * body.
 *   mode 0, POST /api/actions: the body goes to webreq_action; an accepted
 *     action is executed by command_execute on a fresh engine of the test site.
 *   mode 1, a body with a declared field list (as the login, user and
 *     password requests have): webreq_parse.
 *   mode 2, POST, PUT or DELETE /api/config/KIND[/ID]: the parameter byte
 *     picks the kind and the operation; the body's first line is the ID (none
 *     when empty), the rest is parsed as web.c does and given to
 *     siteedit_apply; a new text is checked with siteedit_validate.
 *
 * Promises checked: a refusal has an HTTP status of the documented ones and a
 * sentence; an accepted action is one printable line that the command parser
 * reads, with a valid scope, id and role; an accepted body has only declared
 * fields, each of its type, and all required ones; an edit either refuses with
 * a status and a message or returns a text in which the section is where the
 * edit says (added or replaced: present, removed: gone), and whose validation
 * either passes or names at least one problem.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "engine.h"
#include "fuzz.h"
#include "siteedit.h"
#include "util.h"
#include "webauth.h"
#include "webreq.h"

#define T0_WALL 1795410243000LL
#define REPLY_LEN 65536

static void check_refusal(const struct webreq_error *err)
{
    FUZZ_ASSERT(err->status == 400 || err->status == 413, "refused with status %d", err->status);
    FUZZ_ASSERT(memchr(err->message, '\0', sizeof(err->message)) && err->message[0],
                "refused without a message");
    FUZZ_ASSERT(memchr(err->field, '\0', sizeof(err->field)), "an unterminated field name");
}

static void action(const char *body, size_t len)
{
    struct webreq_action a;
    struct webreq_error err = {0};
    if (webreq_action(body, len, &a, &err) < 0) {
        check_refusal(&err);
        return;
    }
    FUZZ_ASSERT(memchr(a.line, '\0', sizeof(a.line)) && a.line[0], "an empty or open line");
    for (const char *c = a.line; *c; c++)
        FUZZ_ASSERT((unsigned char)*c >= 0x20 && *c != 0x7f, "a control character in \"%s\"",
                    a.line);
    bool all = strcmp(a.scope, "all") == 0;
    FUZZ_ASSERT(all || strcmp(a.scope, "zone") == 0 || strcmp(a.scope, "detector") == 0,
                "scope \"%s\"", a.scope);
    FUZZ_ASSERT(all ? a.id[0] == '\0' : webreq_valid_id(a.id), "id \"%s\" for scope %s", a.id,
                a.scope);
    FUZZ_ASSERT(a.need >= WEB_VIEWER && a.need <= WEB_ADMIN, "role %d", (int)a.need);
    FUZZ_ASSERT(a.period_ms >= 0, "period %lld", a.period_ms);

    const struct cfg *site = fuzz_site();
    struct engine *e = engine_new(site, (struct ev_time){1000, T0_WALL});
    struct evlist out = {0};
    char *reply = xmalloc(REPLY_LEN);
    int done = command_execute(e, site, a.line, "web:fuzz", (struct ev_time){2000, T0_WALL + 1000},
                               &out, reply, REPLY_LEN);
    FUZZ_ASSERT(done == 0 || !fuzz_command_syntax_error(reply),
                "accepted \"%s\", which the parser refuses: %s", a.line, reply);
    free(reply);
    evlist_free(&out);
    engine_free(e);
}

static void declared_body(const char *body, size_t len)
{
    static const struct webreq_field fields[] = {
        {"user", WR_STRING, true}, {"password", WR_STRING, true}, {"remember", WR_BOOL, false},
        {"count", WR_INT, false},  {"extra", WR_OBJECT, false},
    };
    struct webreq_error err = {0};
    cJSON *o = webreq_parse(body, len, fields, ARRAY_LEN(fields), &err);
    if (!o) {
        check_refusal(&err);
        return;
    }
    FUZZ_ASSERT(cJSON_IsObject(o), "not an object");
    bool seen[ARRAY_LEN(fields)] = {false};
    for (const cJSON *m = o->child; m; m = m->next) {
        size_t i = 0;
        while (i < ARRAY_LEN(fields) && strcmp(fields[i].name, m->string) != 0)
            i++;
        FUZZ_ASSERT(i < ARRAY_LEN(fields), "undeclared field \"%s\"", m->string);
        FUZZ_ASSERT(!seen[i], "field \"%s\" twice", m->string);
        seen[i] = true;
        switch (fields[i].type) {
        case WR_STRING:
            FUZZ_ASSERT(cJSON_IsString(m) && m->valuestring, "%s is not a string", m->string);
            /* utf8_repaired gives NULL for a string that needs no repair. */
            FUZZ_ASSERT(utf8_repaired(m->valuestring) == NULL, "%s is not valid UTF-8", m->string);
            break;
        case WR_INT:
            FUZZ_ASSERT(cJSON_IsNumber(m) && m->valuedouble == floor(m->valuedouble),
                        "%s is not an integer", m->string);
            break;
        case WR_BOOL:
            FUZZ_ASSERT(cJSON_IsBool(m), "%s is not a boolean", m->string);
            break;
        case WR_OBJECT:
            FUZZ_ASSERT(cJSON_IsObject(m), "%s is not an object", m->string);
            break;
        }
    }
    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        FUZZ_ASSERT(!fields[i].required || seen[i], "required field \"%s\" missing",
                    fields[i].name);
    cJSON_Delete(o);
}

/* Whether the entities of text list a section of kind with this id. */
static bool has_section(const char *text, enum siteedit_kind kind, const char *id)
{
    static const char *const lists[] = {"buses", "devices", "detectors"};
    cJSON *root = siteedit_entities(text, NULL);
    FUZZ_ASSERT(cJSON_IsObject(root), "no entities for an edited text");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, lists[kind]);
    FUZZ_ASSERT(cJSON_IsArray(arr), "no \"%s\" in the entities", lists[kind]);
    bool found = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        const cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsString(eid) && strcmp(eid->valuestring, id) == 0)
            found = true;
    }
    cJSON_Delete(root);
    return found;
}

static const char *site_path(void)
{
    static char *path;
    if (!path)
        path = xasprintf("%s/tests/integration/site-small.conf", fuzz_root());
    return path;
}

static const char *site_text(void)
{
    static char *text;
    if (!text) {
        struct siteedit_result res = {0};
        text = siteedit_read(site_path(), &res);
        FUZZ_ASSERT(text != NULL, "cannot read the test site: %s", res.message);
        siteedit_result_free(&res);
    }
    return text;
}

static void config_edit(uint8_t param, const char *input)
{
    enum siteedit_kind kind = (enum siteedit_kind)(param % 3);
    enum siteedit_op op = (enum siteedit_op)(param / 3 % 3);
    const char *nl = strchr(input, '\n');
    size_t idlen = nl ? (size_t)(nl - input) : strlen(input);
    char *id = idlen ? xasprintf("%.*s", (int)idlen, input) : NULL;
    const char *body_text = nl ? nl + 1 : "";
    /* As web.c: an ID only on PUT and DELETE, and a valid one; a body except on DELETE. */
    if ((op == SITEEDIT_ADD) != (id == NULL) || (id && !webreq_valid_id(id))) {
        free(id);
        return;
    }
    cJSON *body = NULL;
    if (body_text[0] || op != SITEEDIT_REMOVE) {
        struct webreq_error err = {0};
        body = webreq_parse(body_text, strlen(body_text), NULL, 0, &err);
        if (!body) {
            check_refusal(&err);
            free(id);
            return;
        }
    }
    struct siteedit_result res = {0};
    char *text = siteedit_apply(site_text(), kind, op, id, body, &res);
    if (!text) {
        FUZZ_ASSERT(res.status != SITEEDIT_OK && res.message[0], "refused with status %d, \"%s\"",
                    (int)res.status, res.message);
        /* siteedit_apply does no I/O: never 500, only the documented refusals. */
        int http = siteedit_http_status(&res);
        FUZZ_ASSERT(http == 400 || http == 404 || http == 409 || http == 422, "HTTP status %d",
                    http);
    } else {
        FUZZ_ASSERT(res.status == SITEEDIT_OK, "a new text with status %d", (int)res.status);
        const cJSON *bid = cJSON_GetObjectItemCaseSensitive(body, "id");
        const char *now_id = cJSON_IsString(bid) ? bid->valuestring : id;
        if (op == SITEEDIT_REMOVE)
            FUZZ_ASSERT(!has_section(text, kind, id), "removed section %s still there", id);
        else
            FUZZ_ASSERT(now_id && has_section(text, kind, now_id), "section %s not in the text",
                        now_id ? now_id : "(none)");
        struct siteedit_result v = {0};
        if (siteedit_validate(text, site_path(), &v) < 0) {
            FUZZ_ASSERT(v.nerrors > 0, "invalid without a problem named");
            for (size_t i = 0; i < v.nerrors; i++)
                FUZZ_ASSERT(v.errors[i].message && v.errors[i].message[0],
                            "problem %zu has no message", i);
        }
        siteedit_result_free(&v);
        free(text);
    }
    siteedit_result_free(&res);
    cJSON_Delete(body);
    free(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > WEBREQ_BODY_MAX)
        return 0;
    uint8_t mode = data[0] % 3, param = data[1];
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    if (mode == 0) {
        action(body, len);
    } else if (mode == 1) {
        declared_body(body, len);
    } else {
        char *text = fuzz_text(data + 2, len);
        config_edit(param, text);
        free(text);
    }
    return 0;
}
