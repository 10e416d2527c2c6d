/*
 * The names of the remote commands and the sets of them an uplink may give
 * (the [uplink] `commands` key). Kept apart from remote.c, which needs cJSON,
 * so that the config parser and everything linking it stay free of it.
 */
#ifndef FIREGW_CMDSET_H
#define FIREGW_CMDSET_H

#include <stddef.h>

#include "cfg.h"

/* Remote commands; the value is the command's bit number in a set. */
enum remote_command {
    RCMD_ACKNOWLEDGE,
    RCMD_SILENCE,
    RCMD_RESET,
    RCMD_DISABLE,
    RCMD_ENABLE,
    RCMD_TEST_ON,
    RCMD_TEST_OFF,
    RCMD_STATE,
    RCMD__COUNT
};

/* The bit of command c in a set. */
#define CMDSET_BIT(c) (1u << (unsigned)(c))
/* Every command. */
#define CMDSET_ALL (CMDSET_BIT(RCMD__COUNT) - 1u)

/* Name of c as in messages and configs ("acknowledge", "test_on", ...); NULL if out of range. */
const char *cmdset_name(enum remote_command c);
/* The command called name, or -1. */
int cmdset_lookup(const char *name);
/*
 * Parse a comma-separated list of command names ("acknowledge, state"), or
 * "none" for the empty set, into *mask. 0, or -1 with the reason in err.
 */
int cmdset_parse(const char *list, unsigned *mask, char *err, size_t errlen);
/* Commands an uplink of this role may give when its config does not say. */
unsigned cmdset_default(enum uplink_role role);
/* mask as a list cmdset_parse reads back ("acknowledge,state", or "none"), cut to len. */
void cmdset_format(unsigned mask, char *buf, size_t len);

#endif
