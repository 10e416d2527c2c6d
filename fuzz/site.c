/*
 * The test site (tests/integration/site-small.conf) for the targets that need
 * a building: seven detectors on a TCP and an RTU bus, three zones, one
 * uplink. Apart from common.c so that targets without a config need no
 * config reader. Loaded at start, so that a site that does not load stops the
 * run before the first input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util.h"

const struct cfg *fuzz_site(void)
{
    static struct cfg *site;
    if (site)
        return site;
    char err[4096] = "";
    char *path = xasprintf("%s/tests/integration/site-small.conf", fuzz_root());
    site = cfg_load(path, err, sizeof(err));
    if (!site) {
        fprintf(stderr, "fuzz: the test site %s does not load:\n%s", path, err);
        abort();
    }
    free(path);
    return site;
}

/* Replaces common.c's weak one: the site is loaded before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    fuzz_site();
    return 0;
}

bool fuzz_command_syntax_error(const char *reply)
{
    static const char *const starts[] = {"error: expected", "error: unknown command",
                                         "error: unexpected words", "error: command longer"};
    for (size_t i = 0; i < ARRAY_LEN(starts); i++)
        if (strncmp(reply, starts[i], strlen(starts[i])) == 0)
            return true;
    return false;
}
