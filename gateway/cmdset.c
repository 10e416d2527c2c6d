/*
 * Remote command names and command sets. The name table is the one place the
 * names are spelled; the message parser, the config key and the docs use it.
 */
#include "cmdset.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static const char *const names[RCMD__COUNT] = {
    [RCMD_ACKNOWLEDGE] = "acknowledge", [RCMD_SILENCE] = "silence", [RCMD_RESET] = "reset",
    [RCMD_DISABLE] = "disable",         [RCMD_ENABLE] = "enable",   [RCMD_TEST_ON] = "test_on",
    [RCMD_TEST_OFF] = "test_off",       [RCMD_STATE] = "state",
};

const char *cmdset_name(enum remote_command c)
{
    if ((unsigned)c >= RCMD__COUNT)
        return NULL;
    return names[c];
}

int cmdset_lookup(const char *name)
{
    for (int i = 0; i < RCMD__COUNT; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int cmdset_parse(const char *list, unsigned *mask, char *err, size_t errlen)
{
    char word[32];
    unsigned m = 0;
    size_t count = 0;
    bool none = false;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t n = (size_t)(e - p);
        if (n == 0) {
            snprintf(err, errlen, "empty command name in \"%s\"", list);
            return -1;
        }
        int c = -1;
        if (n < sizeof(word)) {
            memcpy(word, p, n);
            word[n] = '\0';
            c = strcmp(word, "none") == 0 ? RCMD__COUNT : cmdset_lookup(word);
        }
        if (c < 0) {
            snprintf(err, errlen,
                     "unknown command \"%.*s\" (expected acknowledge, silence, reset, disable, "
                     "enable, test_on, test_off, state, or none alone)",
                     (int)(n > 40 ? 40 : n), p);
            return -1;
        }
        if (c == RCMD__COUNT) {
            none = true;
        } else {
            if (m & CMDSET_BIT(c)) {
                snprintf(err, errlen, "command \"%s\" is listed twice", names[c]);
                return -1;
            }
            m |= CMDSET_BIT(c);
        }
        count++;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (none && count > 1) {
        snprintf(err, errlen, "\"none\" cannot be combined with command names");
        return -1;
    }
    *mask = m;
    return 0;
}

unsigned cmdset_default(enum uplink_role role)
{
    switch (role) {
    case UPLINK_FIRE_POLICE:
        return CMDSET_BIT(RCMD_ACKNOWLEDGE) | CMDSET_BIT(RCMD_SILENCE) | CMDSET_BIT(RCMD_RESET) |
               CMDSET_BIT(RCMD_STATE);
    case UPLINK_OWNER:
        return CMDSET_BIT(RCMD_ACKNOWLEDGE) | CMDSET_BIT(RCMD_STATE);
    case UPLINK_OTHER:
        return CMDSET_BIT(RCMD_STATE);
    }
    return 0;
}

void cmdset_format(unsigned mask, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (int i = 0; i < RCMD__COUNT && used < len; i++)
        if (mask & CMDSET_BIT(i))
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "," : "", names[i]);
    if (used == 0)
        strlcpy_fg(buf, "none", len);
}
