/*
 * What every fuzz target shares: the source tree's location, a scratch
 * directory removed at exit (the config and profile readers take paths, and
 * a config's relative profile directory is resolved next to it), and an
 * assertion that aborts so libFuzzer saves the input.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#ifndef FUZZ_ROOT
#error "build with -DFUZZ_ROOT=\"/path/to/the/source/tree\""
#endif

#define MAX_SCRATCH_FILES 8

static char scratch[256];
static char *written[MAX_SCRATCH_FILES];
static size_t nwritten;

static void remove_scratch(void);

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\n%s:%d: broken promise: %s\n  ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    remove_scratch(); /* abort skips atexit; libFuzzer keeps the input itself */
    abort();
}

const char *fuzz_root(void)
{
    const char *r = getenv("FIREGW_ROOT");
    return r && *r ? r : FUZZ_ROOT;
}

static void remove_scratch(void)
{
    for (size_t i = 0; i < nwritten; i++) {
        unlink(written[i]);
        free(written[i]);
    }
    nwritten = 0;
    if (scratch[0]) {
        char *link = xasprintf("%s/profiles", scratch);
        unlink(link);
        free(link);
        rmdir(scratch);
        scratch[0] = '\0';
    }
}

void fuzz_setup(void)
{
    /* Rejections are the normal case here; their log lines would only slow the run down. */
    log_set_level(LOG_LVL_ERR);
    if (scratch[0])
        return;
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof(scratch), "%s/firegw-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "fuzz: cannot create a scratch directory %s: %s\n", scratch,
                strerror(errno));
        abort();
    }
    char *target = xasprintf("%s/sensors/profiles", fuzz_root());
    char *link = xasprintf("%s/profiles", scratch);
    if (symlink(target, link) < 0) {
        fprintf(stderr, "fuzz: cannot link %s to %s: %s\n", link, target, strerror(errno));
        abort();
    }
    free(target);
    free(link);
    atexit(remove_scratch);
}

/* Weak: site.c's stronger one replaces it in the targets that need the test site. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    return 0;
}

const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    char *path = NULL;
    for (size_t i = 0; i < nwritten && !path; i++) {
        const char *base = strrchr(written[i], '/');
        if (base && strcmp(base + 1, name) == 0)
            path = written[i];
    }
    if (!path) {
        if (nwritten == MAX_SCRATCH_FILES)
            fuzz_fail(__FILE__, __LINE__, "nwritten < MAX_SCRATCH_FILES", "too many file names");
        path = written[nwritten++] = xasprintf("%s/%s", scratch, name);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t done = 0;
    while (fd >= 0 && done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (fd < 0 || done != size || close(fd) < 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
