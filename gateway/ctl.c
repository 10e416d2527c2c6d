/*
 * `firegw ctl`: the client side of the local control socket, for a person
 * at the gateway. It sends one command line to the running daemon and prints
 * the reply; the exit status says whether the command was done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "ctl.h"
#include "util.h"

static void ctl_usage(FILE *out)
{
    fprintf(out, "Usage: firegw ctl [--state-dir DIR | --control PATH] COMMAND...\n"
                 "\n"
                 "Sends one command to the running gateway through its control socket\n"
                 "(default /var/lib/firegw/control.sock). Commands:\n"
                 "  status                                  building and zone summary\n"
                 "  acknowledge all|zone ID|detector ID     someone has seen the alarm\n"
                 "  silence     all|zone ID|detector ID     stop the sounders; the alarm stays\n"
                 "  reset       all|zone ID|detector ID     clear latched alarms\n"
                 "  disable     zone ID|detector ID PERIOD  e.g. disable detector F3-LIFT 2h\n"
                 "  enable      zone ID|detector ID\n"
                 "  test on     zone ID|detector ID PERIOD  walk test: alarms become test events\n"
                 "  test off    zone ID|detector ID\n"
                 "Who may send commands is decided by the socket's permissions; the user is\n"
                 "recorded with every event a command causes.\n");
}

int ctl_main(int argc, char **argv)
{
    const char *state_dir = "/var/lib/firegw";
    const char *path = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ctl_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "firegw ctl: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--state-dir") == 0) {
            state_dir = argv[++i];
        } else if (strcmp(argv[i], "--control") == 0) {
            path = argv[++i];
        } else {
            fprintf(stderr, "firegw ctl: unknown option \"%s\"\n", argv[i]);
            ctl_usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        ctl_usage(stderr);
        return 2;
    }
    char line[CONTROL_LINE_MAX] = "";
    size_t len = 0;
    for (; i < argc; i++) {
        int n = snprintf(line + len, sizeof(line) - len, "%s%s", len ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof(line) - len) {
            fprintf(stderr, "firegw ctl: command too long\n");
            return 2;
        }
        len += (size_t)n;
    }
    char *sock = path ? xstrdup(path) : xasprintf("%s/control.sock", state_dir);
    char *reply = xmalloc(65536);
    char err[512];
    int rc = control_request(sock, line, reply, 65536, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "firegw ctl: %s\n", err);
    else
        printf("%s\n", reply);
    int status = rc < 0 ? 1 : strncmp(reply, "ok", 2) == 0 ? 0 : 1;
    free(reply);
    free(sock);
    return status;
}
