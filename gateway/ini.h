/*
 * The line tokenizer shared by site configs and detector profiles. It knows
 * the syntax only ("[section name]" headers, "key = value" lines, comments,
 * quoting); what the sections and keys mean belongs to cfg.c and profile.c.
 * It also owns the error list both parsers fill: one "path:line: message"
 * line per problem, appended to a caller's buffer.
 */
#ifndef FIREGW_INI_H
#define FIREGW_INI_H

#include <stddef.h>

enum ini_kind {
    INI_SECTION,
    INI_KEY,
    INI_BAD_SECTION, /* a header with a syntax error, already reported: skip its keys */
};

struct ini_item {
    enum ini_kind kind;
    int line;    /* 1-based */
    char *name;  /* section type ("bus") or key */
    char *value; /* section name ("rs485-a", NULL if none) or the unquoted value */
};

struct ini_file {
    struct ini_item *items;
    size_t count;
};

/* An error list appended to a caller's buffer; count goes on even when buf is full. */
struct ini_errors {
    char *buf;
    size_t len;
    int count;
};

/* Start an error list over buf (size len), appending after what buf already holds. */
void ini_errors_init(struct ini_errors *e, char *buf, size_t len);
/*
 * Add "where:line: message\n" (or "where: message\n" when line is 0). Truncates
 * silently when the buffer is full; the count still grows.
 */
void ini_error(struct ini_errors *e, const char *where, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Tokenize text (NUL-terminated) into out. Syntax errors are added to e as
 * "path:line: ..."; the lines that were understood are still returned.
 * Returns 0 if the text had no syntax error, -1 otherwise. Free with ini_free.
 */
int ini_parse(const char *text, const char *path, struct ini_file *out, struct ini_errors *e);
/* Read a whole text file (no NUL bytes) into a string the caller frees; NULL and an error. */
char *ini_read_file(const char *path, struct ini_errors *e);
/* Free the items of f (safe on an empty or already freed file). */
void ini_free(struct ini_file *f);

#endif
