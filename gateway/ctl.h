/* `firegw ctl COMMAND...`: send one operator command to the running daemon. */
#ifndef FIREGW_CTL_H
#define FIREGW_CTL_H

/* argv[0] is "ctl"; returns the process exit status (0 done, 1 refused or failed, 2 usage). */
int ctl_main(int argc, char **argv);

#endif
