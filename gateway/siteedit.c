/*
 * Site file edits for the installer pages. An edit works on the file's text,
 * never on a re-printed struct cfg: installers' comments, blank lines and
 * key order are part of the file people maintain, so only the lines an edit
 * is about change. The text is tokenized with the config's own tokenizer
 * (ini.c) to find sections and keys by line; a changed key line keeps its
 * indentation and trailing comment. Whether the result is a valid config is
 * decided by the real loader (cfg_load_string), whose "file:line: message"
 * errors are pinned back to "kind.ID.key" through the same line map.
 */
#include "siteedit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ini.h"
#include "log.h"
#include "util.h"

#define ID_MAX 64
/* The loader reports every problem; a broken file can have many. */
#define LOAD_ERR_MAX 65536
/* How many users of a bus or device a refusal names before "and N more". */
#define USERS_NAMED 5

static const char *const kind_names[] = {"bus", "device", "detector"};

/* One line of the text: its bytes, without and with its line ending. */
struct line {
    size_t off;  /* first byte */
    size_t len;  /* bytes before "\n" or "\r\n" */
    size_t next; /* first byte of the next line */
};

/* A section as the tokenizer saw it. */
struct sect {
    const char *type; /* "bus", ...; "" for a header with a syntax error */
    const char *id;   /* NULL when the header has none */
    int header;       /* line of the header */
    int last;         /* its last key line, or the header when it has no keys */
    size_t first;     /* its keys are ini.items[first..end) */
    size_t end;
};

/* The text with its line and section map. */
struct doc {
    const char *text;
    struct line *lines; /* lines[n - 1] is line n */
    size_t nlines;
    struct ini_file ini;
    struct sect *secs;
    size_t nsecs;
    const char *eol; /* the file's own line ending, for lines it gains */
};

/* The changes to make to a doc's lines. */
struct plan {
    char **repl; /* per line (index n - 1): new content without line ending, or NULL */
    bool *drop;
    int after; /* insert ins after this line; 0: before the first; -1: nothing to insert */
    struct sbuf ins;
};

/* A key and value to write. */
struct field {
    const char *key;
    char *value;
};

static void __attribute__((format(printf, 4, 5)))
set_result(struct siteedit_result *res, enum siteedit_status status, const char *field,
           const char *fmt, ...)
{
    res->status = status;
    strlcpy_fg(res->field, field ? field : "", sizeof(res->field));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

/* Forget what an earlier call left in res. */
static void reset(struct siteedit_result *res)
{
    siteedit_result_free(res);
    res->status = SITEEDIT_OK;
    res->message[0] = '\0';
    res->field[0] = '\0';
    res->version[0] = '\0';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The same rule as the loader's: 1-64 of A-Z a-z 0-9 _ - . */
static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ID_MAX)
        return false;
    for (; *s; s++)
        if (!(is_key_char(*s) || *s == '-' || *s == '.'))
            return false;
    return true;
}

static void doc_free(struct doc *d)
{
    free(d->lines);
    free(d->secs);
    ini_free(&d->ini);
}

/* Split text into lines and sections; the tokenizer's syntax errors do not matter here. */
static void doc_open(struct doc *d, const char *text)
{
    *d = (struct doc){.text = text, .eol = "\n"};
    bool eol_known = false;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        struct line l = {(size_t)(p - text), len, (size_t)(p - text) + len + (nl ? 1 : 0)};
        if (nl && len > 0 && p[len - 1] == '\r')
            l.len--;
        if (nl && !eol_known) {
            d->eol = l.len < len ? "\r\n" : "\n";
            eol_known = true;
        }
        d->lines = xrealloc(d->lines, (d->nlines + 1) * sizeof(*d->lines));
        d->lines[d->nlines++] = l;
        p = text + l.next;
    }
    struct ini_errors quiet;
    ini_errors_init(&quiet, NULL, 0);
    ini_parse(text, "", &d->ini, &quiet);
    for (size_t i = 0; i < d->ini.count; i++) {
        const struct ini_item *it = &d->ini.items[i];
        if (it->kind == INI_KEY) {
            if (d->nsecs) {
                d->secs[d->nsecs - 1].last = it->line;
                d->secs[d->nsecs - 1].end = i + 1;
            }
            continue;
        }
        d->secs = xrealloc(d->secs, (d->nsecs + 1) * sizeof(*d->secs));
        bool good = it->kind == INI_SECTION;
        d->secs[d->nsecs++] = (struct sect){
            good ? it->name : "", good ? it->value : NULL, it->line, it->line, i + 1, i + 1};
    }
}

static long find_sect(const struct doc *d, const char *type, const char *id)
{
    for (size_t i = 0; i < d->nsecs; i++)
        if (strcmp(d->secs[i].type, type) == 0 && d->secs[i].id && strcmp(d->secs[i].id, id) == 0)
            return (long)i;
    return -1;
}

/* The value of key in section s, NULL if not written. */
static const char *sect_value(const struct doc *d, const struct sect *s, const char *key)
{
    for (size_t i = s->first; i < s->end; i++)
        if (strcmp(d->ini.items[i].name, key) == 0)
            return d->ini.items[i].value;
    return NULL;
}

static bool line_blank(const struct doc *d, int n)
{
    const struct line *l = &d->lines[n - 1];
    for (size_t i = 0; i < l->len; i++)
        if (!is_blank(d->text[l->off + i]))
            return false;
    return true;
}

static void plan_init(struct plan *p, const struct doc *d)
{
    *p = (struct plan){.after = -1};
    p->repl = xcalloc(d->nlines + 1, sizeof(*p->repl));
    p->drop = xcalloc(d->nlines + 1, sizeof(*p->drop));
}

static void plan_free(struct plan *p, const struct doc *d)
{
    for (size_t i = 0; i < d->nlines; i++)
        free(p->repl[i]);
    free(p->repl);
    free(p->drop);
    free(p->ins.p);
}

/* Insert text after line n; a line without a line ending gets one first. */
static void insert_here(struct sbuf *o, const struct doc *d, const struct plan *p)
{
    if (o->len > 0 && o->p[o->len - 1] != '\n')
        sb_str(o, d->eol);
    sb_add(o, p->ins.p ? p->ins.p : "", p->ins.len);
}

/* The text with the plan carried out; lines it does not touch are copied as they are. */
static char *render(const struct doc *d, const struct plan *p)
{
    struct sbuf o = {0};
    if (p->after == 0)
        insert_here(&o, d, p);
    for (size_t i = 0; i < d->nlines; i++) {
        const struct line *l = &d->lines[i];
        if (p->repl[i]) {
            sb_str(&o, p->repl[i]);
            sb_add(&o, d->text + l->off + l->len, l->next - l->off - l->len);
        } else if (!p->drop[i]) {
            sb_add(&o, d->text + l->off, l->next - l->off);
        }
        if (p->after == (int)i + 1)
            insert_here(&o, d, p);
    }
    return sb_take(&o);
}

/* Where the value of a "key = value" line starts and ends (a quoted value with its quotes). */
static void value_span(const char *s, size_t len, size_t *vs, size_t *ve)
{
    size_t i = 0;
    if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < len && is_blank(s[i]))
        i++;
    while (i < len && is_key_char(s[i]))
        i++;
    while (i < len && is_blank(s[i]))
        i++;
    if (i < len && s[i] == '=')
        i++;
    while (i < len && is_blank(s[i]))
        i++;
    *vs = i;
    size_t j = i;
    if (j < len && s[j] == '"') {
        for (j++; j < len && s[j] != '"'; j++)
            if (s[j] == '\\' && j + 1 < len)
                j++;
        *ve = j < len ? j + 1 : len;
        return;
    }
    /* As the tokenizer reads it: a '#' starts a comment only at the start or after a blank. */
    while (j < len && !(s[j] == '#' && (j == i || is_blank(s[j - 1]))))
        j++;
    while (j > i && is_blank(s[j - 1]))
        j--;
    *ve = j;
}

/* A value as it must be written for the tokenizer to read it back unchanged. */
static char *format_value(const char *v)
{
    size_t n = strlen(v);
    bool quote = n == 0 || is_blank(v[0]) || is_blank(v[n - 1]) || v[0] == '"' || strchr(v, '#');
    if (!quote)
        return xstrdup(v);
    struct sbuf o = {0};
    sb_str(&o, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_str(&o, "\\");
        sb_add(&o, p, 1);
    }
    sb_str(&o, "\"");
    return sb_take(&o);
}

/* Line n with its value replaced by value, its key, spacing and comment kept. */
static char *rewrite_key_line(const struct doc *d, int n, const char *value)
{
    const struct line *l = &d->lines[n - 1];
    const char *s = d->text + l->off;
    size_t vs, ve;
    value_span(s, l->len, &vs, &ve);
    char *v = format_value(value);
    struct sbuf o = {0};
    sb_add(&o, s, vs);
    /* "key =" with nothing after it becomes "key = value", not "key =value". */
    if (vs == l->len && vs > 0 && s[vs - 1] == '=')
        sb_str(&o, " ");
    sb_str(&o, v);
    sb_add(&o, s + ve, l->len - ve);
    free(v);
    return sb_take(&o);
}

/* The header line n with its id replaced, its comment kept. */
static char *rewrite_header(const struct doc *d, int n, const char *id)
{
    const struct line *l = &d->lines[n - 1];
    const char *s = d->text + l->off;
    size_t i = 0;
    while (i < l->len && s[i] != '[')
        i++;
    i++;
    while (i < l->len && is_blank(s[i]))
        i++;
    while (i < l->len && s[i] >= 'a' && s[i] <= 'z')
        i++;
    while (i < l->len && is_blank(s[i]))
        i++;
    size_t e = i;
    while (e < l->len && !is_blank(s[e]) && s[e] != ']')
        e++;
    struct sbuf o = {0};
    sb_add(&o, s, i);
    sb_str(&o, id);
    sb_add(&o, s + e, l->len - e);
    return sb_take(&o);
}

/* Text of a JSON value as a config value (malloc'd), or NULL with res set. */
static char *json_value(const cJSON *item, struct siteedit_result *res)
{
    const char *key = item->string;
    if (cJSON_IsBool(item))
        return xstrdup(cJSON_IsTrue(item) ? "yes" : "no");
    if (cJSON_IsNumber(item)) {
        double v = item->valuedouble;
        /* Whole numbers as integers: "unit = 33", not "33.0". */
        if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
            return xasprintf("%lld", (long long)v);
        return xasprintf("%.15g", v);
    }
    if (!cJSON_IsString(item) || !item->valuestring) {
        set_result(res, SITEEDIT_BAD_REQUEST, key,
                   "field \"%s\": expected a string, a number or true/false", key);
        return NULL;
    }
    const unsigned char *u = (const unsigned char *)item->valuestring;
    size_t len = strlen(item->valuestring);
    /* A line break in a value would write a line of its own into the file. */
    for (size_t i = 0; i < len;) {
        if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7f) {
            set_result(res, SITEEDIT_BAD_REQUEST, key,
                       "field \"%s\": control character 0x%02x in the value", key, u[i]);
            return NULL;
        }
        size_t n = utf8_seq_len(u + i, len - i);
        if (n == 0) {
            set_result(res, SITEEDIT_BAD_REQUEST, key,
                       "field \"%s\": the value is not valid UTF-8 (byte %zu)", key, i + 1);
            return NULL;
        }
        i += n;
    }
    return xstrdup(item->valuestring);
}

static bool known_key(const char *section, const char *key)
{
    const char *k;
    for (size_t i = 0; (k = cfg_section_key(section, i)) != NULL; i++)
        if (strcmp(k, key) == 0)
            return true;
    return false;
}

static void fields_free(struct field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].value);
    free(f);
}

/* The file's text as plan p edits it; frees p and the n fields f it was made from. */
static char *finish(const struct doc *d, struct plan *p, struct field *f, size_t n)
{
    char *text = render(d, p);
    plan_free(p, d);
    fields_free(f, n);
    return text;
}

/*
 * The body's keys for a section of this type, in option table order; every
 * name checked against the table. NULL with res set on a bad body.
 */
static struct field *body_fields(const char *type, const cJSON *body, size_t *count,
                                 struct siteedit_result *res)
{
    *count = 0;
    if (!cJSON_IsObject(body)) {
        set_result(res, SITEEDIT_BAD_REQUEST, NULL, "the %s's fields must be a JSON object", type);
        return NULL;
    }
    for (const cJSON *c = body->child; c; c = c->next) {
        if (strcmp(c->string, "id") == 0 || strcmp(c->string, "version") == 0)
            continue;
        for (const cJSON *e = body->child; e != c; e = e->next)
            if (strcmp(e->string, c->string) == 0) {
                set_result(res, SITEEDIT_BAD_REQUEST, c->string, "field \"%s\" is given twice",
                           c->string);
                return NULL;
            }
        if (!known_key(type, c->string)) {
            char list[600];
            size_t used = 0;
            list[0] = '\0';
            const char *k;
            for (size_t i = 0; (k = cfg_section_key(type, i)) != NULL && used < sizeof(list); i++)
                used +=
                    (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", k);
            set_result(res, SITEEDIT_BAD_REQUEST, c->string,
                       "unknown field \"%s\" for a [%s] section (expected one of: %s)", c->string,
                       type, list);
            return NULL;
        }
    }
    struct field *f = NULL;
    const char *k;
    for (size_t i = 0; (k = cfg_section_key(type, i)) != NULL; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(body, k);
        if (!item || cJSON_IsNull(item))
            continue;
        char *v = json_value(item, res);
        if (!v) {
            fields_free(f, *count);
            return NULL;
        }
        f = xrealloc(f, (*count + 1) * sizeof(*f));
        f[(*count)++] = (struct field){k, v};
    }
    return f;
}

/* The body's "id": NULL when absent; *bad when present but not a string. */
static const char *body_id(const cJSON *body, bool *bad)
{
    const cJSON *id = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "id") : NULL;
    *bad = id && !cJSON_IsString(id);
    return id && cJSON_IsString(id) ? id->valuestring : NULL;
}

static int check_id(const char *id, struct siteedit_result *res)
{
    if (valid_id(id))
        return 0;
    set_result(res, SITEEDIT_BAD_REQUEST, "id", "id \"%.80s\" is not 1-%d of A-Z a-z 0-9 _ - .", id,
               ID_MAX);
    return -1;
}

static void put_field_lines(struct sbuf *o, const struct doc *d, const struct field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *v = format_value(f[i].value);
        sb_str(o, f[i].key);
        sb_str(o, " = ");
        sb_str(o, v);
        sb_str(o, d->eol);
        free(v);
    }
}

/* The line after which a new section of this type goes; 0 for an empty file. */
static int add_position(const struct doc *d, const char *type)
{
    /* After the last of its kind, else after the kinds that come before it in a site file. */
    static const char *const order[] = {"site",   "gateway", "defaults", "bus",
                                        "device", "zone",    "detector"};
    size_t k = 0;
    while (k + 1 < ARRAY_LEN(order) && strcmp(order[k], type) != 0)
        k++;
    for (size_t j = k + 1; j-- > 0;)
        for (size_t i = d->nsecs; i-- > 0;)
            if (strcmp(d->secs[i].type, order[j]) == 0)
                return d->secs[i].last;
    return (int)d->nlines;
}

static char *op_add(const struct doc *d, const char *type, const char *id, const cJSON *body,
                    struct siteedit_result *res)
{
    long s = find_sect(d, type, id);
    if (s >= 0) {
        set_result(res, SITEEDIT_CONFLICT, "id", "%s \"%s\" already exists (line %d)", type, id,
                   d->secs[s].header);
        return NULL;
    }
    size_t n;
    struct field *f = body_fields(type, body, &n, res);
    if (!f && res->status != SITEEDIT_OK)
        return NULL;
    struct plan p;
    plan_init(&p, d);
    p.after = add_position(d, type);
    if (p.after > 0 && !line_blank(d, p.after))
        sb_str(&p.ins, d->eol);
    sb_str(&p.ins, "[");
    sb_str(&p.ins, type);
    sb_str(&p.ins, " ");
    sb_str(&p.ins, id);
    sb_str(&p.ins, "]");
    sb_str(&p.ins, d->eol);
    put_field_lines(&p.ins, d, f, n);
    /* Keep a blank line between it and whatever follows. */
    if ((size_t)p.after < d->nlines && !line_blank(d, p.after + 1))
        sb_str(&p.ins, d->eol);
    return finish(d, &p, f, n);
}

static char *op_replace(const struct doc *d, const char *type, long s, const char *new_id,
                        const cJSON *body, struct siteedit_result *res)
{
    const struct sect *sec = &d->secs[s];
    if (new_id && strcmp(new_id, sec->id) != 0) {
        if (check_id(new_id, res) < 0)
            return NULL;
        long other = find_sect(d, type, new_id);
        if (other >= 0) {
            set_result(res, SITEEDIT_CONFLICT, "id",
                       "cannot rename %s \"%s\" to \"%s\": that %s exists (line %d)", type, sec->id,
                       new_id, type, d->secs[other].header);
            return NULL;
        }
    }
    size_t n;
    struct field *f = body_fields(type, body, &n, res);
    if (!f && res->status != SITEEDIT_OK)
        return NULL;
    struct plan p;
    plan_init(&p, d);
    bool *done = xcalloc(n + 1, sizeof(*done));
    for (size_t i = sec->first; i < sec->end; i++) {
        const struct ini_item *it = &d->ini.items[i];
        size_t k = 0;
        while (k < n && strcmp(f[k].key, it->name) != 0)
            k++;
        /* Keys left out go, and so does a repeat of a key already written. */
        if (k == n || done[k]) {
            p.drop[it->line - 1] = true;
            continue;
        }
        done[k] = true;
        if (strcmp(it->value, f[k].value) != 0)
            p.repl[it->line - 1] = rewrite_key_line(d, it->line, f[k].value);
    }
    if (new_id && strcmp(new_id, sec->id) != 0)
        p.repl[sec->header - 1] = rewrite_header(d, sec->header, new_id);
    for (size_t k = 0; k < n; k++)
        if (!done[k])
            put_field_lines(&p.ins, d, &f[k], 1);
    if (p.ins.len)
        p.after = sec->last;
    free(done);
    return finish(d, &p, f, n);
}

/* Add "device \"x\" (line N)" to a list of users, counting those past USERS_NAMED. */
static void add_user(struct sbuf *o, size_t *count, const struct sect *s)
{
    if (*count < USERS_NAMED) {
        char buf[160];
        snprintf(buf, sizeof(buf), "%s%s \"%s\" (line %d)", *count ? ", " : "", s->type, s->id,
                 s->header);
        sb_str(o, buf);
    }
    (*count)++;
}

/* Refuse to remove a bus or device that other sections still name. 0 or -1. */
static int check_unused(const struct doc *d, const char *type, const char *id,
                        struct siteedit_result *res)
{
    struct sbuf users = {0};
    size_t count = 0;
    for (size_t i = 0; i < d->nsecs; i++) {
        const struct sect *s = &d->secs[i];
        if (!s->id)
            continue;
        const char *ref = NULL;
        if (strcmp(type, "bus") == 0 &&
            (strcmp(s->type, "device") == 0 || strcmp(s->type, "detector") == 0))
            ref = sect_value(d, s, "bus");
        else if (strcmp(type, "device") == 0 && strcmp(s->type, "detector") == 0)
            ref = sect_value(d, s, "device");
        if (ref && strcmp(ref, id) == 0)
            add_user(&users, &count, s);
    }
    if (count == 0)
        return 0;
    char more[48] = "";
    if (count > USERS_NAMED)
        snprintf(more, sizeof(more), " and %zu more", count - USERS_NAMED);
    set_result(res, SITEEDIT_CONFLICT, "id",
               "%s \"%s\" is still used by %s%s; move or remove %s first", type, id, users.p, more,
               count == 1 ? "it" : "them");
    free(users.p);
    return -1;
}

static char *op_remove(const struct doc *d, const char *type, long s, struct siteedit_result *res)
{
    const struct sect *sec = &d->secs[s];
    if (check_unused(d, type, sec->id, res) < 0)
        return NULL;
    struct plan p;
    plan_init(&p, d);
    for (int n = sec->header; n <= sec->last; n++)
        p.drop[n - 1] = true;
    /* Do not leave two blank lines where the section was. */
    int below = sec->last + 1;
    if ((size_t)below <= d->nlines && line_blank(d, below) &&
        (sec->header == 1 || line_blank(d, sec->header - 1)))
        p.drop[below - 1] = true;
    return finish(d, &p, NULL, 0);
}

int siteedit_kind_parse(const char *name, enum siteedit_kind *out)
{
    for (size_t i = 0; i < ARRAY_LEN(kind_names); i++)
        if (name && strcmp(name, kind_names[i]) == 0) {
            *out = (enum siteedit_kind)i;
            return 0;
        }
    return -1;
}

char *siteedit_apply(const char *text, enum siteedit_kind kind, enum siteedit_op op, const char *id,
                     const cJSON *body, struct siteedit_result *res)
{
    reset(res);
    if ((unsigned)kind >= ARRAY_LEN(kind_names)) {
        set_result(res, SITEEDIT_BAD_REQUEST, NULL, "unknown section kind %d", (int)kind);
        return NULL;
    }
    const char *type = kind_names[kind];
    bool bad = false;
    const char *bid = op == SITEEDIT_REMOVE ? NULL : body_id(body, &bad);
    if (bad) {
        set_result(res, SITEEDIT_BAD_REQUEST, "id", "field \"id\": expected a string");
        return NULL;
    }
    if (op == SITEEDIT_ADD) {
        if (id && bid && strcmp(id, bid) != 0) {
            set_result(res, SITEEDIT_BAD_REQUEST, "id",
                       "the body's id \"%.80s\" differs from the new %s's id \"%.80s\"", bid, type,
                       id);
            return NULL;
        }
        id = id ? id : bid;
    }
    if (!id) {
        set_result(res, SITEEDIT_BAD_REQUEST, "id", "the %s's id is missing", type);
        return NULL;
    }
    if (check_id(id, res) < 0)
        return NULL;
    struct doc d;
    doc_open(&d, text);
    char *out = NULL;
    long s = find_sect(&d, type, id);
    if (op == SITEEDIT_ADD)
        out = op_add(&d, type, id, body, res);
    else if (s < 0)
        set_result(res, SITEEDIT_NOT_FOUND, "id", "no [%s %s] section in the site file", type, id);
    else if (op == SITEEDIT_REPLACE)
        out = op_replace(&d, type, s, bid, body, res);
    else
        out = op_remove(&d, type, s, res);
    doc_free(&d);
    return out;
}

/* "kind.ID.key", "kind.ID" or "site.key" for what line n of d holds; "" for other lines. */
static char *field_at(const struct doc *d, int n, const char *msg)
{
    const struct sect *sec = NULL;
    const struct ini_item *key = NULL;
    for (size_t i = 0; i < d->nsecs && d->secs[i].header <= n; i++)
        sec = &d->secs[i];
    if (!sec || !*sec->type || n > sec->last)
        return xstrdup("");
    for (size_t i = sec->first; i < sec->end && !key; i++)
        if (d->ini.items[i].line == n)
            key = &d->ini.items[i];
    if (!key && n != sec->header)
        return xstrdup("");
    char *base = sec->id ? xasprintf("%s.%s", sec->type, sec->id) : xstrdup(sec->type);
    const char *k = key ? key->name : NULL;
    /* A missing key is reported at the header; the field is the key that is missing. */
    char missing[64] = "";
    const char *m = strstr(msg, "missing required key \"");
    m = m ? m + strlen("missing required key \"") : NULL;
    if (!m && (m = strstr(msg, "missing \"")) != NULL)
        m += strlen("missing \"");
    if (!k && m) {
        size_t len = 0;
        while (is_key_char(m[len]) && len + 1 < sizeof(missing))
            len++;
        if (m[len] == '"') {
            memcpy(missing, m, len);
            missing[len] = '\0';
            k = missing;
        }
    }
    char *field = k ? xasprintf("%s.%s", base, k) : xstrdup(base);
    free(base);
    return field;
}

static void add_error(struct siteedit_result *res, char *field, int line, const char *msg,
                      size_t len)
{
    res->errors = xrealloc(res->errors, (res->nerrors + 1) * sizeof(*res->errors));
    char *m = xmalloc(len + 1);
    memcpy(m, msg, len);
    m[len] = '\0';
    res->errors[res->nerrors++] = (struct siteedit_error){field, line, m};
}

/* Split the loader's "path:line: message" lines into errors; other lines continue the last. */
static void map_errors(const char *err, const char *path, const struct doc *d,
                       struct siteedit_result *res)
{
    size_t plen = strlen(path);
    for (const char *p = err; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *next = nl ? nl + 1 : p + len;
        if (strncmp(p, path, plen) == 0 && p[plen] == ':') {
            const char *q = p + plen + 1;
            int line = 0;
            while (*q >= '0' && *q <= '9' && line < 100000000)
                line = line * 10 + (*q++ - '0');
            if (line > 0 && *q == ':')
                q++;
            while (*q == ' ')
                q++;
            size_t mlen = len - (size_t)(q - p);
            char *msg = xmalloc(mlen + 1);
            memcpy(msg, q, mlen);
            msg[mlen] = '\0';
            add_error(res, line > 0 ? field_at(d, line, msg) : xstrdup(""), line, msg, mlen);
            free(msg);
        } else if (res->nerrors) {
            /* A profile's own errors, listed under the config line that uses it. */
            struct siteedit_error *e = &res->errors[res->nerrors - 1];
            char *m = xasprintf("%s\n%.*s", e->message, (int)len, p);
            free(e->message);
            e->message = m;
        } else if (len) {
            add_error(res, xstrdup(""), 0, p, len);
        }
        p = next;
    }
}

int siteedit_validate(const char *text, const char *path, struct siteedit_result *res)
{
    reset(res);
    char *err = xcalloc(1, LOAD_ERR_MAX);
    struct cfg *cfg = cfg_load_string(text, path, err, LOAD_ERR_MAX);
    if (cfg) {
        cfg_free(cfg);
        free(err);
        res->status = SITEEDIT_OK;
        return 0;
    }
    struct doc d;
    doc_open(&d, text);
    map_errors(err, path, &d, res);
    doc_free(&d);
    free(err);
    if (res->nerrors == 0)
        add_error(res, xstrdup(""), 0, "the configuration does not load",
                  strlen("the configuration does not load"));
    set_result(res, SITEEDIT_INVALID, NULL,
               "%s would not load after this change (%zu problem%s); nothing was saved: %s", path,
               res->nerrors, res->nerrors == 1 ? "" : "s", res->errors[0].message);
    return -1;
}

void siteedit_version(const char *text, char out[SITEEDIT_VERSION_LEN])
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    /* The library asks to be initialised first (cheap after once); SHA-256 cannot fail. */
    int ready = sodium_init();
    (void)ready;
    crypto_hash_sha256(hash, (const unsigned char *)text, strlen(text));
    for (size_t i = 0; i < sizeof(hash); i++)
        snprintf(out + 2 * i, 3, "%02x", hash[i]);
}

char *siteedit_read(const char *path, struct siteedit_result *res)
{
    reset(res);
    char msg[sizeof(res->message)] = "";
    struct ini_errors e;
    ini_errors_init(&e, msg, sizeof(msg));
    char *text = ini_read_file(path, &e);
    if (!text) {
        msg[strcspn(msg, "\n")] = '\0';
        set_result(res, SITEEDIT_IO, NULL, "%s", msg);
    }
    return text;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cJSON *profile_names(const struct cfg *cfg)
{
    cJSON *arr = cJSON_CreateArray();
    char **names = NULL;
    size_t n = 0;
    for (size_t i = 0; cfg && i < cfg->gateway.nprofile_dirs; i++) {
        DIR *dir = opendir(cfg->gateway.profile_dirs[i]);
        if (!dir)
            continue;
        const struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            size_t len = strlen(de->d_name);
            const size_t ext = strlen(".profile");
            if (de->d_name[0] == '.' || len <= ext ||
                strcmp(de->d_name + len - ext, ".profile") != 0)
                continue;
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n] = xstrdup(de->d_name);
            names[n][len - ext] = '\0';
            n++;
        }
        closedir(dir);
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return arr;
}

cJSON *siteedit_entities(const char *text, const struct cfg *cfg)
{
    static const char *const types[] = {"bus", "device", "detector", "zone"};
    static const char *const lists[] = {"buses", "devices", "detectors", "zones"};
    char version[SITEEDIT_VERSION_LEN];
    siteedit_version(text, version);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", version);
    cJSON *arr[ARRAY_LEN(types)];
    for (size_t t = 0; t < ARRAY_LEN(types); t++)
        arr[t] = cJSON_AddArrayToObject(root, lists[t]);
    struct doc d;
    doc_open(&d, text);
    for (size_t i = 0; i < d.nsecs; i++) {
        const struct sect *s = &d.secs[i];
        size_t t = 0;
        while (t < ARRAY_LEN(types) && strcmp(types[t], s->type) != 0)
            t++;
        if (t == ARRAY_LEN(types) || !s->id)
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", s->id);
        for (size_t k = s->first; k < s->end; k++) {
            const struct ini_item *it = &d.ini.items[k];
            /* A repeated key is the loader's error to report; show the first. */
            if (strcmp(it->name, "id") != 0 && !cJSON_GetObjectItemCaseSensitive(e, it->name))
                cJSON_AddStringToObject(e, it->name, it->value);
        }
        cJSON_AddItemToArray(arr[t], e);
    }
    doc_free(&d);
    cJSON_AddItemToObject(root, "profiles", profile_names(cfg));
    return root;
}

/* Write all of text to fd; 0 or -1 with errno. */
static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Write text to a new temporary file beside path with path's mode (and owner,
 * when running as root: a site file may hold broker passwords), synced. The
 * temporary file's name goes to tmp (malloc'd). 0, or -1 with res set and no
 * file left.
 */
static int write_temp(const char *path, const char *text, const struct stat *st, char **tmp,
                      struct siteedit_result *res)
{
    *tmp = xasprintf("%s.new-XXXXXX", path);
    int fd = mkstemp(*tmp);
    if (fd < 0) {
        set_result(res, SITEEDIT_IO, NULL, "cannot create a temporary file beside %s: %s", path,
                   strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return -1;
    }
    const char *step = NULL;
    if (fchmod(fd, st->st_mode & 07777) != 0)
        step = "set the mode of";
    else if (geteuid() == 0 && fchown(fd, st->st_uid, st->st_gid) != 0)
        step = "set the owner of";
    else if (write_all(fd, text, strlen(text)) != 0)
        step = "write";
    else if (fsync(fd) != 0)
        step = "sync";
    int saved = errno;
    if (close(fd) != 0 && !step) {
        saved = errno;
        step = "close";
    }
    if (step) {
        set_result(res, SITEEDIT_IO, NULL, "cannot %s %s: %s", step, *tmp, strerror(saved));
        unlink(*tmp);
        free(*tmp);
        *tmp = NULL;
        return -1;
    }
    return 0;
}

static void sync_dir(const char *path)
{
    char *copy = xstrdup(path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* The rename happened; a failed directory sync only weakens it against a power cut. */
    if (fd < 0 || fsync(fd) != 0)
        log_warn("site file saved, but directory %s could not be synced: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(copy);
}

int siteedit_save(const char *path, const char *text, const char *version,
                  struct siteedit_result *res)
{
    reset(res);
    /* Edit what a symlink points to, rather than replacing the link with a plain file. */
    char *real = realpath(path, NULL);
    if (!real) {
        set_result(res, SITEEDIT_IO, NULL, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    char *old = siteedit_read(real, res), *bak = NULL, *tmp_new = NULL, *tmp_bak = NULL;
    struct stat st;
    char now[SITEEDIT_VERSION_LEN];
    if (!old)
        goto out;
    siteedit_version(old, now);
    if (version && strcmp(version, now) != 0) {
        set_result(res, SITEEDIT_STALE, "version",
                   "%s changed since it was read (version %.12s..., now %.12s...); reload it and "
                   "make the change again",
                   path, version, now);
        goto out;
    }
    if (stat(real, &st) != 0) {
        set_result(res, SITEEDIT_IO, NULL, "cannot stat %s: %s", real, strerror(errno));
        goto out;
    }
    /* Both files are complete on disk before either name changes. */
    if (write_temp(real, text, &st, &tmp_new, res) < 0 ||
        write_temp(real, old, &st, &tmp_bak, res) < 0)
        goto out;
    bak = xasprintf("%s.bak", real);
    if (rename(tmp_bak, bak) != 0) {
        set_result(res, SITEEDIT_IO, NULL, "cannot keep the previous file as %s: %s", bak,
                   strerror(errno));
        goto out;
    }
    free(tmp_bak);
    tmp_bak = NULL;
    if (rename(tmp_new, real) != 0) {
        set_result(res, SITEEDIT_IO, NULL, "cannot replace %s: %s", real, strerror(errno));
        goto out;
    }
    free(tmp_new);
    tmp_new = NULL;
    sync_dir(real);
    siteedit_version(text, res->version);
    rc = 0;
out:
    if (tmp_new)
        unlink(tmp_new);
    if (tmp_bak)
        unlink(tmp_bak);
    free(tmp_new);
    free(tmp_bak);
    free(bak);
    free(old);
    free(real);
    return rc;
}

int siteedit_edit(const char *path, enum siteedit_kind kind, enum siteedit_op op, const char *id,
                  const cJSON *body, const char *version, struct siteedit_result *res)
{
    reset(res);
    if (!version) {
        set_result(res, SITEEDIT_BAD_REQUEST, "version",
                   "the file's version is required (as GET /api/config gives it)");
        return -1;
    }
    char *text = siteedit_read(path, res);
    if (!text)
        return -1;
    char now[SITEEDIT_VERSION_LEN];
    siteedit_version(text, now);
    int rc = -1;
    char *edited = NULL;
    if (strcmp(version, now) != 0) {
        set_result(res, SITEEDIT_STALE, "version",
                   "%s changed since it was read (version %.12s..., now %.12s...); reload it and "
                   "make the change again",
                   path, version, now);
        goto out;
    }
    edited = siteedit_apply(text, kind, op, id, body, res);
    if (!edited || siteedit_validate(edited, path, res) < 0)
        goto out;
    if (strcmp(edited, text) == 0) {
        memcpy(res->version, now, sizeof(now));
        rc = 0;
        goto out;
    }
    rc = siteedit_save(path, edited, version, res);
out:
    free(edited);
    free(text);
    return rc;
}

int siteedit_http_status(const struct siteedit_result *res)
{
    switch (res->status) {
    case SITEEDIT_OK:
        return 200;
    case SITEEDIT_BAD_REQUEST:
        return 400;
    case SITEEDIT_NOT_FOUND:
        return 404;
    case SITEEDIT_STALE:
    case SITEEDIT_CONFLICT:
        return 409;
    case SITEEDIT_INVALID:
        return 422;
    case SITEEDIT_IO:
        return 500;
    }
    return 500;
}

cJSON *siteedit_result_json(const struct siteedit_result *res)
{
    cJSON *root = cJSON_CreateObject();
    if (res->status == SITEEDIT_OK) {
        cJSON_AddStringToObject(root, "version", res->version);
        return root;
    }
    cJSON_AddStringToObject(root, "error", res->message);
    if (res->field[0])
        cJSON_AddStringToObject(root, "field", res->field);
    if (res->status == SITEEDIT_INVALID) {
        cJSON *arr = cJSON_AddArrayToObject(root, "errors");
        for (size_t i = 0; i < res->nerrors; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "field", res->errors[i].field);
            cJSON_AddNumberToObject(e, "line", res->errors[i].line);
            cJSON_AddStringToObject(e, "message", res->errors[i].message);
            cJSON_AddItemToArray(arr, e);
        }
    }
    return root;
}

void siteedit_result_free(struct siteedit_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->nerrors; i++) {
        free(res->errors[i].field);
        free(res->errors[i].message);
    }
    free(res->errors);
    res->errors = NULL;
    res->nerrors = 0;
}
