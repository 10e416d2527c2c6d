/*
 * Line tokenizer for configs and profiles, and the "path:line: message" error
 * list. Strict on purpose: a line that is not a comment, a header or a
 * "key = value" line is an error naming it, because a silently skipped line
 * in a fire-alarm config is a detector nobody watches. Bytes above 0x7f pass
 * through untouched once they are known to be valid UTF-8 (Vietnamese names
 * go into JSON payloads verbatim).
 */
#include "ini.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* How much of an offending line an error message quotes. */
#define QUOTE_MAX 40

void ini_errors_init(struct ini_errors *e, char *buf, size_t len)
{
    e->buf = buf;
    e->len = len;
    e->count = 0;
}

void ini_error(struct ini_errors *e, const char *where, int line, const char *fmt, ...)
{
    e->count++;
    if (!e->buf || e->len == 0)
        return;
    size_t used = strnlen(e->buf, e->len);
    if (used >= e->len - 1)
        return;
    char *p = e->buf + used;
    size_t room = e->len - used;
    int n = line > 0 ? snprintf(p, room, "%s:%d: ", where, line) : snprintf(p, room, "%s: ", where);
    if (n < 0 || (size_t)n >= room)
        return;
    p += n;
    room -= (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(p, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room - 1)
        return;
    p[n] = '\n';
    p[n + 1] = '\0';
}

/* Check one line's bytes: valid UTF-8, no control characters but tab. 0 or -1. */
static int check_text(const char *s, size_t len, const char *path, int line, struct ini_errors *e)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x20 && u[i] != '\t') {
            ini_error(e, path, line, "control character 0x%02x in the line", u[i]);
            return -1;
        }
        if (u[i] == 0x7f) {
            ini_error(e, path, line, "control character 0x7f in the line");
            return -1;
        }
        size_t n = utf8_seq_len(u + i, len - i);
        if (n == 0) {
            ini_error(e, path, line, "the line is not valid UTF-8 (byte %zu)", i + 1);
            return -1;
        }
        i += n;
    }
    return 0;
}

/* The first QUOTE_MAX bytes of s, cut on a character boundary, "..." if cut. */
static void quote(const char *s, char *out, size_t outlen)
{
    size_t len = strlen(s);
    size_t cut = len;
    if (cut > QUOTE_MAX) {
        cut = QUOTE_MAX;
        while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
            cut--;
    }
    snprintf(out, outlen, "%.*s%s", (int)cut, s, cut < len ? "..." : "");
}

static char *dupn(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_blanks(const char *s)
{
    while (is_blank(*s))
        s++;
    return s;
}

/* True if only blanks, or blanks then a comment, remain. */
static bool rest_is_empty(const char *s)
{
    s = skip_blanks(s);
    return *s == '\0' || *s == '#';
}

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void add_item(struct ini_file *f, enum ini_kind kind, int line, char *name, char *value)
{
    f->items = xrealloc(f->items, (f->count + 1) * sizeof(*f->items));
    f->items[f->count++] = (struct ini_item){kind, line, name, value};
}

static int parse_header(const char *s, const char *path, int line, struct ini_file *f,
                        struct ini_errors *e)
{
    const char *close = strchr(s, ']');
    if (!close) {
        ini_error(e, path, line, "section header without a closing ']'");
        return -1;
    }
    if (!rest_is_empty(close + 1)) {
        ini_error(e, path, line, "text after the section header's ']'");
        return -1;
    }
    const char *p = skip_blanks(s + 1);
    const char *type = p;
    while (*p >= 'a' && *p <= 'z')
        p++;
    size_t tlen = (size_t)(p - type);
    if (tlen == 0 || (p != close && !is_blank(*p))) {
        ini_error(e, path, line, "a section type is lowercase letters, as in [bus rs485-a]");
        return -1;
    }
    p = skip_blanks(p);
    const char *name = p;
    const char *end = close;
    while (end > name && is_blank(end[-1]))
        end--;
    for (const char *q = name; q < end; q++) {
        if (is_blank(*q) || *q == '"' || *q == '[' || *q == '#') {
            ini_error(e, path, line, "a section name has no blanks, quotes, '[' or '#'");
            return -1;
        }
    }
    add_item(f, INI_SECTION, line, dupn(type, tlen),
             end > name ? dupn(name, (size_t)(end - name)) : NULL);
    return 0;
}

/* Parse a double-quoted value starting after the opening quote. */
static char *parse_quoted(const char *s, const char *path, int line, struct ini_errors *e)
{
    char *out = xmalloc(strlen(s) + 1);
    size_t n = 0;
    for (;; s++) {
        if (*s == '\0') {
            ini_error(e, path, line, "quoted value without a closing '\"'");
            free(out);
            return NULL;
        }
        if (*s == '"')
            break;
        if (*s == '\\') {
            s++;
            if (*s != '"' && *s != '\\') {
                ini_error(e, path, line, "only \\\" and \\\\ are escapes in a quoted value");
                free(out);
                return NULL;
            }
        }
        out[n++] = *s;
    }
    if (!rest_is_empty(s + 1)) {
        ini_error(e, path, line, "text after the closing '\"' of a quoted value");
        free(out);
        return NULL;
    }
    out[n] = '\0';
    return out;
}

static int parse_key(const char *s, const char *path, int line, struct ini_file *f,
                     struct ini_errors *e)
{
    const char *p = s;
    while (is_key_char(*p))
        p++;
    const char *kend = p;
    p = skip_blanks(p);
    if (kend == s || *p != '=') {
        char q[QUOTE_MAX + 8];
        quote(s, q, sizeof(q));
        ini_error(e, path, line,
                  "expected \"key = value\", \"[section]\" or \"# comment\", found \"%s\"", q);
        return -1;
    }
    p = skip_blanks(p + 1);
    char *value;
    if (*p == '"') {
        value = parse_quoted(p + 1, path, line, e);
        if (!value)
            return -1;
    } else {
        /* A '#' starts a comment only after a blank, so "unit#3" stays a value. */
        const char *end = p;
        while (*end && !(*end == '#' && (end == p || is_blank(end[-1]))))
            end++;
        while (end > p && is_blank(end[-1]))
            end--;
        value = dupn(p, (size_t)(end - p));
    }
    add_item(f, INI_KEY, line, dupn(s, (size_t)(kend - s)), value);
    return 0;
}

int ini_parse(const char *text, const char *path, struct ini_file *out, struct ini_errors *e)
{
    int errors = 0;
    out->items = NULL;
    out->count = 0;
    /* An editor's byte-order mark is not part of the first line. */
    if (strncmp(text, "\xef\xbb\xbf", 3) == 0)
        text += 3;
    const char *p = text;
    for (int line = 1; *p; line++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *buf = dupn(p, len);
        p = nl ? nl + 1 : p + len;
        if (len > 0 && buf[len - 1] == '\r')
            buf[--len] = '\0';
        if (check_text(buf, len, path, line, e) < 0) {
            errors++;
            free(buf);
            continue;
        }
        const char *s = skip_blanks(buf);
        int rc = 0;
        if (*s == '[') {
            rc = parse_header(s, path, line, out, e);
            if (rc < 0)
                add_item(out, INI_BAD_SECTION, line, dupn("", 0), NULL);
        } else if (*s != '\0' && *s != '#')
            rc = parse_key(s, path, line, out, e);
        if (rc < 0)
            errors++;
        free(buf);
    }
    return errors ? -1 : 0;
}

char *ini_read_file(const char *path, struct ini_errors *e)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        ini_error(e, path, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *text = xmalloc(cap);
    size_t n;
    while ((n = fread(text + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            text = xrealloc(text, cap);
        }
    }
    int failed = ferror(fp);
    int saved = errno;
    fclose(fp);
    if (failed) {
        ini_error(e, path, 0, "cannot read: %s", strerror(saved));
        free(text);
        return NULL;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        ini_error(e, path, 0, "contains a NUL byte; not a text file");
        free(text);
        return NULL;
    }
    return text;
}

void ini_free(struct ini_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->items[i].name);
        free(f->items[i].value);
    }
    free(f->items);
    f->items = NULL;
    f->count = 0;
}
