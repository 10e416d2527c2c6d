/*
 * Shared helpers of the libFuzzer targets in fuzz/: where the source tree is
 * (for the profiles and the test site), a scratch directory for inputs that
 * the code under test only reads from a file, and the small test site most
 * targets run against. Each target is fuzz/fuzz_NAME.c; docs/robustness.md
 * says what each one checks.
 */
#ifndef FIREGW_FUZZ_H
#define FIREGW_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

/* Abort (so libFuzzer keeps the input) when cond is false, naming the broken promise. */
#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
    } while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/*
 * libFuzzer's entry points. A target defines only LLVMFuzzerTestOneInput:
 * common.c's LLVMFuzzerInitialize calls fuzz_setup, and site.c's, which
 * replaces it in the targets linked with site.c, also loads the test site.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Quiet logging and the scratch directory; LLVMFuzzerInitialize calls it. */
void fuzz_setup(void);
/* The source tree: FIREGW_ROOT from the environment, else where the target was built. */
const char *fuzz_root(void);
/*
 * Write data to NAME in the scratch directory (which holds a "profiles" link
 * to sensors/profiles, so a config there finds the real profiles) and return
 * its path, owned by this module. Aborts if the write fails.
 */
const char *fuzz_write(const char *name, const uint8_t *data, size_t size);
/* tests/integration/site-small.conf, loaded once; aborts if it does not load. */
const struct cfg *fuzz_site(void);
/*
 * Whether a reply of command_execute is one of command.c's syntax errors,
 * which a command line built from checked input (remote commands, the web
 * UI's actions) must never meet; the engine may still refuse its target.
 */
bool fuzz_command_syntax_error(const char *reply);
/* The input as a NUL-terminated string the caller frees (a NUL in it ends the string). */
char *fuzz_text(const uint8_t *data, size_t size);

/*
 * Plan the reads of profile p for the given channels as a bus poller does
 * (fuzz/plancheck.c) and check the plan: every point lies in the register
 * space, is found in one request of at most 125 registers, and decodes from
 * the register image words (one value per register, cycled) without harm.
 */
void fuzz_check_plan(const struct profile *p, const int *channels, size_t nchannels,
                     unsigned max_gap, const uint16_t *words, size_t nwords);

#endif
