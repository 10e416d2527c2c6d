/*
 * The local control socket: how a person on the gateway itself (an installer
 * or the building manager at the console) acknowledges, silences and resets
 * alarms, disables points and runs test mode, through `firegw ctl`. A UNIX
 * stream socket, one command line per connection, one reply line. Who may use
 * it is decided by the socket's file permissions; the caller's user name,
 * taken from the kernel (SO_PEERCRED), is passed on to be recorded.
 */
#ifndef FIREGW_CONTROL_H
#define FIREGW_CONTROL_H

#include <stddef.h>

#define CONTROL_LINE_MAX 1024

struct control;

/*
 * Handle one command line from user; write one reply line (no newline) into
 * reply: "ok ..." or "error: ...".
 */
typedef void (*control_fn)(void *arg, const char *line, const char *user, char *reply,
                           size_t replylen);

/* Called on the control thread when a command waits for control_poll. */
typedef void (*control_wake_fn)(void *arg);

/*
 * Listen on path (mode 0660) with a thread that takes connections and reads
 * their lines; wake(wake_arg) each time one is waiting for control_poll. A
 * stale socket left by a dead daemon is replaced; anything else at path is
 * an error. NULL with err on failure.
 */
struct control *control_open(const char *path, control_wake_fn wake, void *wake_arg, char *err,
                             size_t errlen);
/* Run the command waiting, if there is one, and give its reply; never blocks. */
void control_poll(struct control *c, control_fn fn, void *arg);
/*
 * Stop the thread (a client still waiting is told the gateway is stopping),
 * close and remove the socket. NULL safe.
 */
void control_close(struct control *c);

/*
 * Client side: send line to the daemon at path, write its reply into reply.
 * 0 when the daemon answered (whatever it said), -1 with err otherwise.
 */
int control_request(const char *path, const char *line, char *reply, size_t replylen, char *err,
                    size_t errlen);

#endif
