/*
 * The gateway's web server (docs/http-api.md): the web UI's static files from
 * the web root, the JSON API under /api, and the live stream of state and
 * events (server-sent events). libmicrohttpd runs it on its own threads;
 * those threads never touch the engine or the config. They read the live
 * state the main thread publishes, and queue what must change something
 * (operator actions, walk tests, configuration, probes) for web_poll(),
 * which the main loop calls every turn, like the control socket.
 */
#ifndef FIREGW_WEB_H
#define FIREGW_WEB_H

#include <stddef.h>

struct cfg;
struct event;
struct gateway;
struct web;

/* Longest a request waits for the main thread before it is answered 503. */
#define WEB_ANSWER_MS 10000

/*
 * Start serving as cfg's [web] section says; state_dir holds the users file
 * unless web.users_file names one. NULL with err "" when web.listen is off;
 * NULL with err when it cannot start (the gateway runs on without it).
 */
struct web *web_start(const struct cfg *cfg, const char *state_dir, char *err, size_t errlen);
/* Stop: waiting requests are answered 503, streams end, threads are joined. NULL is fine. */
void web_free(struct web *w);
/* The main loop's queue, woken whenever a request waits for the main loop. */
void web_set_waker(struct web *w, struct queue *q);

/*
 * Main thread, every loop turn: run the queued requests (their events are
 * dispatched at once) and publish a new live state when it changed.
 */
void web_poll(struct web *w, struct gateway *gw);
/*
 * Main thread: event ev was dispatched, json as published on MQTT. It goes
 * to every stream, and counts for a running walk test. w may be NULL.
 */
void web_event(struct web *w, const struct cfg *cfg, const struct event *ev, const char *json);

/* Where the UI is, e.g. "http://127.0.0.1:8080/". */
const char *web_url(const struct web *w);

#endif
