/*
 * The installer's commands (docs/cli.md): `firegw scan` finds the unit ids
 * that answer on a bus, `firegw probe` reads one device's registers point by
 * point, `firegw status` shows the running daemon's state. Each returns the
 * process exit status: 0 done, 1 the bus, device or daemon failed, 2 usage or
 * configuration error, 3 refused because the running daemon owns the bus.
 */
#ifndef FIREGW_INSTALLER_H
#define FIREGW_INSTALLER_H

#define INSTALLER_EXIT_OK 0
#define INSTALLER_EXIT_FAILED 1
#define INSTALLER_EXIT_USAGE 2
#define INSTALLER_EXIT_REFUSED 3

/* argv[0] is "scan". */
int installer_scan(int argc, char **argv);
/* argv[0] is "probe". */
int installer_probe(int argc, char **argv);
/* argv[0] is "status". */
int installer_status(int argc, char **argv);

#endif
