/*
 * The simulator's control socket: a UNIX stream socket taking one command a
 * line from several clients, each answered with one line. What a command
 * means is up to the handler; this module owns the sockets and line framing.
 */
#ifndef FIREGW_SIM_CONTROL_H
#define FIREGW_SIM_CONTROL_H

#include <poll.h>
#include <stddef.h>
#include <stdio.h>

/* Longest command line accepted, without its newline. */
#define CTL_LINE_MAX 1024

/* Handles one command line (no newline) and writes the one-line answer (no newline) to reply. */
typedef void ctl_handler(void *arg, const char *line, FILE *reply);

struct ctl;

/*
 * Listen on path, replacing a stale socket there but nothing else. NULL with
 * err on failure. handler runs for every complete line.
 */
struct ctl *ctl_new(const char *path, ctl_handler *handler, void *arg, char *err, size_t errlen);
/* Close every connection and remove the socket file. NULL is fine. */
void ctl_free(struct ctl *c);

/* Fill up to max pollfds for the next poll; returns how many. */
size_t ctl_pollfds(struct ctl *c, struct pollfd *fds, size_t max);
/* Serve what the last poll reported on the n fds ctl_pollfds gave. */
void ctl_handle(struct ctl *c, const struct pollfd *fds, size_t n);

#endif
