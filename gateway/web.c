/*
 * The web server: libmicrohttpd with one thread per connection (a request may
 * wait for the main thread, a stream waits for news), bounded by connection
 * limits, an idle timeout and a 64 KiB body limit, so a slow or hostile
 * client holds at most a thread of its own, never the main loop.
 *
 * Handler threads own the sessions (webauth.c) and read the event log through
 * a read-only connection of their own. Everything that touches the engine or
 * the config is a job (webjobs.h): queued under `mu`, run by web_poll() on the
 * main thread (webjobs.c), and answered through `job_cond`; a handler waits
 * WEB_ANSWER_MS for it (probes: as long as the bus needs) and then answers
 * 503. The main thread publishes the live state and each event under `mu` and
 * wakes the streams through `feed_cond`.
 */
#include "bus.h"
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <sodium.h>

#include "gateway.h"
#include "siteedit.h"
#include "snapshot.h"
#include "util.h"
#include "webauth.h"
#include "webjobs.h"
#include "webreq.h"

#define CONN_LIMIT 64
#define PER_IP_LIMIT 16
#define CONN_IDLE_S 30
#define THREAD_STACK (512 * 1024)
/* A body beyond the limit is read and dropped up to here, then the connection is closed. */
#define DISCARD_MAX (1024 * 1024)
#define STATIC_FILE_MAX (16 * 1024 * 1024)
#define STREAM_KEEPALIVE_MS 15000
#define STREAM_BLOCK 16384
#define EVENTS_LIMIT_DEFAULT 500
#define EVENTS_LIMIT_JSON 5000
#define EVENTS_LIMIT_CSV 50000
#define COOKIE "firegw_session"

static const char *const CSP =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/* One request's state across the access handler's calls. */
struct req {
    char *body;
    size_t len;
    bool too_big;
    size_t discarded;
};

/* What a route handler gets. */
struct call {
    struct web *w;
    struct MHD_Connection *c;
    const char *method;
    const char *path; /* after "/api/" */
    const char *body;
    size_t len;
    char addr[INET6_ADDRSTRLEN];
    struct web_session s; /* when logged in */
};

/* Headers every response carries. */
static void common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
}

/* Queue body (taken; freed by MHD) with status; extra is NULL or "Name", "value", ..., NULL. */
static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, const char *ctype,
                                 char *body, size_t len, const char *const *extra)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    for (size_t i = 0; extra && extra[i]; i += 2)
        MHD_add_response_header(r, extra[i], extra[i + 1]);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *json,
                                 const char *const *extra)
{
    return send_body(c, status, "application/json; charset=utf-8", json, strlen(json), extra);
}

static enum MHD_Result __attribute__((format(printf, 4, 5)))
send_error(struct MHD_Connection *c, unsigned status, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return send_json(c, status, webjob_error(field, msg), NULL);
}

static enum MHD_Result send_webreq_error(struct MHD_Connection *c, const struct webreq_error *e)
{
    return send_error(c, (unsigned)(e->status ? e->status : 400), e->field, "%s", e->message);
}

/* The cookie that carries session id (NULL: clears it). */
static void session_cookie(const struct web *w, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s%s", id ? id : "",
             w->https ? "; Secure" : "", id ? "" : "; Max-Age=0");
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static void client_addr(struct MHD_Connection *c, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, len, "unknown");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)len);
}

/*
 * Login and first-run setup have no session, hence no CSRF token: a browser
 * says where a request comes from in Origin, which must then be this host.
 */
static bool origin_ok(const struct call *k)
{
    const char *origin = header(k->c, "Origin");
    if (!origin)
        return true;
    const char *host = header(k->c, "Host");
    const char *scheme = k->w->https ? "https://" : "http://";
    size_t sl = strlen(scheme);
    return host && strncasecmp(origin, scheme, sl) == 0 && strcasecmp(origin + sl, host) == 0;
}

static bool is_json(struct MHD_Connection *c)
{
    const char *ct = header(c, "Content-Type");
    return ct && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* "web:NAME" for the event log; names that are not valid account names are not repeated. */
static void origin_of(const char *user, char *buf, size_t len)
{
    snprintf(buf, len, "web:%.32s", webauth_valid_name(user) ? user : "(unknown name)");
}

static struct job *job_new(enum job_kind kind, const char *origin)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->kind = kind;
    strlcpy_fg(j->origin, origin, sizeof(j->origin));
    return j;
}

/* Queue a job; caller holds mu. */
static void enqueue(struct web *w, struct job *j)
{
    j->next = NULL;
    *w->queue_tail = j;
    w->queue_tail = &j->next;
    w->queued++;
    /* The main loop answers at once rather than at its next turn. */
    if (w->waker)
        bus_wake(w->waker);
}

static void unqueue(struct web *w, struct job *j)
{
    for (struct job **p = &w->queue; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            if (w->queue_tail == &j->next)
                w->queue_tail = p;
            w->queued--;
            return;
        }
    }
}

/* Record something done through the web in the event log, from the main thread. */
static void record(struct web *w, const char *origin, const char *text, const char *result)
{
    struct job *j = job_new(JOB_RECORD, origin);
    j->text = xstrdup(text);
    j->result = xstrdup(result);
    pthread_mutex_lock(&w->mu);
    /* A flood of requests must not become a flood of writes on the main thread. */
    bool drop = w->stopping || w->queued >= WEB_QUEUE_MAX;
    if (drop)
        w->records_dropped += !w->stopping;
    else
        enqueue(w, j);
    pthread_mutex_unlock(&w->mu);
    if (drop)
        webjob_free(j);
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/*
 * Hand j to the main thread and wait for its answer: at most WEB_ANSWER_MS,
 * or as long as a started probe says it needs. The status, and the answer
 * (caller frees) or NULL; 503 when no answer came, with *ran telling whether
 * the main thread had started it (it then still runs to its end).
 */
static int wait_job(struct call *k, struct job *j, char **answer, bool *ran)
{
    struct web *w = k->w;
    int64_t start = mono_ms();
    *answer = NULL;
    *ran = false;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        webjob_free(j);
        *answer = webjob_error(NULL, "the gateway is stopping");
        return 503;
    }
    if (w->queued >= WEB_QUEUE_MAX) {
        pthread_mutex_unlock(&w->mu);
        webjob_free(j);
        *answer = webjob_error(NULL, "the gateway is busy with other web requests; try again");
        return 503;
    }
    enqueue(w, j);
    while (!j->done && !w->stopping) {
        int64_t limit = j->wait_ms > WEB_ANSWER_MS ? j->wait_ms : WEB_ANSWER_MS;
        int64_t left = start + limit - mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        deadline_after(&ts, left);
        pthread_cond_timedwait(&w->job_cond, &w->mu, &ts);
    }
    if (!j->done) {
        /* Not started: it never runs. Started: the main thread frees it when done. */
        *ran = j->started;
        if (!j->started)
            unqueue(w, j);
        else
            j->abandoned = true;
        pthread_mutex_unlock(&w->mu);
        if (!*ran)
            webjob_free(j);
        log_warn("web: a request from %s got no answer from the main loop within %lld s", k->addr,
                 (long long)(mono_ms() - start) / 1000);
        return 503;
    }
    pthread_mutex_unlock(&w->mu);
    *ran = true;
    int status = j->status;
    *answer = j->answer;
    j->answer = NULL;
    webjob_free(j);
    return status;
}

/* wait_job, and send its answer. */
static enum MHD_Result run_job(struct call *k, struct job *j)
{
    char *answer;
    bool ran;
    int status = wait_job(k, j, &answer, &ran);
    if (status == 503 && !answer)
        return send_error(k->c, 503, NULL, "the gateway did not answer within %d s; try again",
                          WEB_ANSWER_MS / 1000);
    return send_json(k->c, (unsigned)status, answer ? answer : xstrdup("{}"), NULL);
}

/* Parse a body with a fixed set of fields; NULL after sending the 400. */
static cJSON *parse_body(struct call *k, const struct webreq_field *fields, size_t n,
                         enum MHD_Result *sent)
{
    struct webreq_error e;
    cJSON *o = webreq_parse(k->body, k->len, fields, n, &e);
    if (!o)
        *sent = send_webreq_error(k->c, &e);
    return o;
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static enum MHD_Result send_session(struct call *k, const struct web_session *s, bool cookie)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", s->user);
    cJSON_AddStringToObject(o, "role", webauth_role_name(s->role));
    cJSON_AddStringToObject(o, "csrf", s->csrf);
    cJSON_AddStringToObject(o, "lang", "vi");
    char set[160];
    session_cookie(k->w, s->id, set, sizeof(set));
    const char *extra[] = {"Set-Cookie", set, NULL};
    return send_json(k->c, 200, webjob_text(o), cookie ? extra : NULL);
}

static enum MHD_Result h_session(struct call *k)
{
    if (k->s.id[0])
        return send_session(k, &k->s, false);
    cJSON *o = cJSON_CreateObject();
    bool first = webauth_first_run(k->w->auth);
    cJSON_AddStringToObject(
        o, "error", first ? "no account exists yet: set the admin password" : "not logged in");
    cJSON_AddBoolToObject(o, "first_run", first);
    return send_json(k->c, 401, webjob_text(o), NULL);
}

static enum MHD_Result wa_error(struct call *k, enum webauth_rc rc, const char *field,
                                const char *err)
{
    static const unsigned status[] = {200, 400, 401, 409, 404, 500};
    unsigned st = (unsigned)-rc < ARRAY_LEN(status) ? status[-rc] : 500;
    return send_error(k->c, st, rc == WA_INVALID ? field : NULL, "%s", err);
}

static enum MHD_Result h_setup(struct call *k)
{
    static const struct webreq_field f[] = {{"password", WR_STRING, true}};
    if (!origin_ok(k))
        return send_error(k->c, 403, NULL, "the request comes from another site (Origin)");
    if (!webauth_first_run(k->w->auth))
        return send_error(k->c, 409, NULL, "the first-run setup is done: an account exists");
    enum MHD_Result sent = MHD_NO;
    cJSON *o = parse_body(k, f, ARRAY_LEN(f), &sent);
    if (!o)
        return sent;
    char err[256];
    struct web_session s;
    enum webauth_rc rc =
        webauth_setup(k->w->auth, str_field(o, "password"), mono_ms(), &s, err, sizeof(err));
    cJSON_Delete(o);
    if (rc != WA_OK)
        return wa_error(k, rc, "password", err);
    char what[96];
    snprintf(what, sizeof(what), "first-run setup from %s", k->addr);
    record(k->w, "web:admin", what, "done");
    log_notice("web: the admin account was created from %s", k->addr);
    return send_session(k, &s, true);
}

static enum MHD_Result h_login(struct call *k)
{
    static const struct webreq_field f[] = {{"user", WR_STRING, true},
                                            {"password", WR_STRING, true}};
    struct web *w = k->w;
    if (!origin_ok(k))
        return send_error(k->c, 403, NULL, "the request comes from another site (Origin)");
    enum MHD_Result sent = MHD_NO;
    cJSON *o = parse_body(k, f, ARRAY_LEN(f), &sent);
    if (!o)
        return sent;
    if (webauth_first_run(w->auth)) {
        cJSON_Delete(o);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "error", "no account exists yet: set the admin password");
        cJSON_AddTrueToObject(e, "first_run");
        return send_json(k->c, 401, webjob_text(e), NULL);
    }
    /* Copies (the body is freed early); a password too long to be set can only be wrong. */
    char user[WEBAUTH_NAME_MAX * 2 + 1], password[WEBAUTH_PASSWORD_MAX + 2];
    strlcpy_fg(user, str_field(o, "user"), sizeof(user));
    if (strlcpy_fg(password, str_field(o, "password"), sizeof(password)) > WEBAUTH_PASSWORD_MAX)
        password[0] = '\0';
    cJSON_Delete(o);
    char origin[48], what[96];
    origin_of(user, origin, sizeof(origin));
    snprintf(what, sizeof(what), "login from %s", k->addr);
    int64_t wait = webauth_rate_wait(w->auth, k->addr, user, mono_ms());
    if (wait > 0) {
        char secs[24];
        snprintf(secs, sizeof(secs), "%lld", (long long)((wait + 999) / 1000));
        log_debug("web: login as \"%s\" from %s refused: locked for %s s", origin + 4, k->addr,
                  secs);
        const char *extra[] = {"Retry-After", secs, NULL};
        char msg[160];
        snprintf(msg, sizeof(msg), "too many failed logins; try again in %s s", secs);
        return send_json(k->c, 429, webjob_error(NULL, msg), extra);
    }
    struct web_session s;
    enum webauth_rc rc = webauth_login(w->auth, user, password, mono_ms(), &s);
    sodium_memzero(password, sizeof(password));
    if (rc != WA_OK) {
        int64_t lock = webauth_rate_failure(w->auth, k->addr, user, mono_ms());
        char result[128] = "refused: wrong user name or password";
        size_t used = strlen(result);
        if (lock)
            snprintf(result + used, sizeof(result) - used, "; further logins locked for %lld s",
                     (long long)(lock / 1000));
        record(w, origin, what, result);
        log_warn("web: failed login as \"%s\" from %s", origin + 4, k->addr);
        return send_error(k->c, 401, NULL, "wrong user name or password");
    }
    webauth_rate_success(w->auth, k->addr, user);
    record(w, origin, what, "done");
    log_info("web: %s logged in from %s", s.user, k->addr);
    return send_session(k, &s, true);
}

static enum MHD_Result h_logout(struct call *k)
{
    webauth_logout(k->w->auth, k->s.id);
    char origin[48], what[96], set[160];
    origin_of(k->s.user, origin, sizeof(origin));
    snprintf(what, sizeof(what), "logout from %s", k->addr);
    record(k->w, origin, what, "done");
    session_cookie(k->w, NULL, set, sizeof(set));
    const char *extra[] = {"Set-Cookie", set, NULL};
    return send_json(k->c, 200, webjob_ok(NULL), extra);
}

static enum MHD_Result h_password(struct call *k)
{
    static const struct webreq_field f[] = {{"old", WR_STRING, true}, {"new", WR_STRING, true}};
    enum MHD_Result sent = MHD_NO;
    cJSON *o = parse_body(k, f, ARRAY_LEN(f), &sent);
    if (!o)
        return sent;
    char err[256], origin[48];
    enum webauth_rc rc = webauth_change_password(
        k->w->auth, k->s.user, k->s.id, str_field(o, "old"), str_field(o, "new"), err, sizeof(err));
    cJSON_Delete(o);
    origin_of(k->s.user, origin, sizeof(origin));
    record(k->w, origin, "change own password", rc == WA_OK ? "done" : err);
    if (rc == WA_DENIED)
        return send_error(k->c, 403, "old", "%s", err);
    if (rc != WA_OK)
        return wa_error(k, rc, "new", err);
    return send_json(k->c, 200, webjob_ok("password changed"), NULL);
}

/* users or users/NAME */
static enum MHD_Result h_users(struct call *k)
{
    struct web *w = k->w;
    const char *name = strncmp(k->path, "users/", 6) == 0 ? k->path + 6 : NULL;
    char err[256] = "", what[160], origin[48];
    origin_of(k->s.user, origin, sizeof(origin));
    if (strcmp(k->method, "GET") == 0) {
        char *list = webauth_users_json(w->auth);
        char *body = xasprintf("{\"users\":%s}", list ? list : "[]");
        free(list);
        return send_json(k->c, 200, body, NULL);
    }
    enum webauth_rc rc;
    enum MHD_Result sent = MHD_NO;
    if (strcmp(k->method, "DELETE") == 0) {
        rc = webauth_delete_user(w->auth, name, err, sizeof(err));
        snprintf(what, sizeof(what), "delete web account %.40s", name);
    } else {
        static const struct webreq_field f[] = {
            {"name", WR_STRING, false}, {"role", WR_STRING, false}, {"password", WR_STRING, false}};
        cJSON *o = parse_body(k, f, ARRAY_LEN(f), &sent);
        if (!o)
            return sent;
        const char *role_s = str_field(o, "role"), *pw = str_field(o, "password");
        const char *body_name = str_field(o, "name");
        enum web_role role = WEB_VIEWER;
        if (role_s && webauth_role_parse(role_s, &role) < 0) {
            cJSON_Delete(o);
            return send_error(k->c, 400, "role",
                              "role \"%.40s\" is not one of viewer, manager, installer, admin",
                              role_s);
        }
        if (strcmp(k->method, "POST") == 0) {
            if (!body_name || !role_s || !pw) {
                cJSON_Delete(o);
                return send_error(k->c, 400,
                                  !body_name ? "name"
                                  : !role_s  ? "role"
                                             : "password",
                                  "a new account needs name, role and password");
            }
            rc = webauth_add_user(w->auth, body_name, role, pw, err, sizeof(err));
            snprintf(what, sizeof(what), "add web account %.40s (%s)", body_name,
                     webauth_role_name(role));
        } else {
            if ((body_name && strcmp(body_name, name) != 0) || (!role_s && !pw)) {
                cJSON_Delete(o);
                return send_error(k->c, 400, body_name ? "name" : NULL,
                                  body_name ? "an account cannot be renamed"
                                            : "give a new role, a new password, or both");
            }
            rc = webauth_update_user(w->auth, name, role_s ? &role : NULL, pw, err, sizeof(err));
            snprintf(what, sizeof(what), "change web account %.40s%s%s%s", name,
                     role_s ? " role to " : "", role_s ? role_s : "", pw ? " password" : "");
        }
        cJSON_Delete(o);
    }
    record(w, origin, what, rc == WA_OK ? "done" : err);
    if (rc != WA_OK)
        return wa_error(k, rc, strncmp(err, "password", 8) == 0 ? "password" : "name", err);
    log_notice("web: %s by %s", what, k->s.user);
    return send_json(k->c, strcmp(k->method, "POST") == 0 ? 201 : 200, webjob_ok(what), NULL);
}

static enum MHD_Result h_state(struct call *k)
{
    pthread_mutex_lock(&k->w->mu);
    k->w->last_read_mono = mono_ms();
    char *state = k->w->state ? xstrdup(k->w->state) : NULL;
    pthread_mutex_unlock(&k->w->mu);
    if (!state)
        return send_error(k->c, 503, NULL, "the gateway is starting; try again in a second");
    return send_json(k->c, 200, state, NULL);
}

/* One open /api/stream. */
struct stream {
    struct web *w;
    char session[65];
    uint64_t state_ver, ev_pos;
    struct sbuf out;
    size_t off;
    int64_t next_check; /* the session is looked at again */
};

/* "event: NAME\ndata: ...\n\n", one data line per line of text. */
static void sse_message(struct sbuf *b, const char *event, const char *data)
{
    sb_fmt(b, "event: %s\n", event);
    for (const char *p = data;;) {
        const char *nl = strchr(p, '\n');
        sb_str(b, "data: ");
        sb_add(b, p, nl ? (size_t)(nl - p) : strlen(p));
        sb_str(b, "\n");
        if (!nl)
            break;
        p = nl + 1;
    }
    sb_str(b, "\n");
}

/*
 * Wait for the next thing to send; false when the stream must end (stopping,
 * or the session ended: looked at every second, so a logout ends it soon).
 */
static bool stream_next(struct stream *s)
{
    struct web *w = s->w;
    int64_t keepalive = mono_ms() + STREAM_KEEPALIVE_MS;
    pthread_mutex_lock(&w->mu);
    bool more = true;
    for (;;) {
        int64_t now = mono_ms();
        w->last_read_mono = now;
        if (w->stopping) {
            more = false;
            break;
        }
        if (now >= s->next_check) {
            if (!webauth_session_alive(w->auth, s->session, now)) {
                more = false;
                break;
            }
            s->next_check = now + 1000;
        }
        /* Events first: an alarm must not wait behind a large state. */
        if (s->ev_pos < w->ev_next) {
            if (w->ev_next - s->ev_pos > EVENT_RING)
                s->ev_pos = w->ev_next - EVENT_RING;
            sse_message(&s->out, "event", w->ring[s->ev_pos % EVENT_RING]);
            s->ev_pos++;
            break;
        }
        if (w->state && s->state_ver != w->state_ver) {
            sse_message(&s->out, "state", w->state);
            s->state_ver = w->state_ver;
            break;
        }
        if (now >= keepalive) {
            sb_str(&s->out, ": keep-alive\n\n");
            break;
        }
        struct timespec ts;
        deadline_after(&ts, (keepalive < s->next_check ? keepalive : s->next_check) - now);
        pthread_cond_timedwait(&w->feed_cond, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return more;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    (void)pos;
    if (s->off >= s->out.len) {
        s->out.len = 0;
        s->off = 0;
        if (!stream_next(s))
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = s->out.len - s->off < max ? s->out.len - s->off : max;
    memcpy(buf, s->out.p + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    free(s->out.p);
    free(s);
}

static enum MHD_Result h_stream(struct call *k)
{
    struct web *w = k->w;
    struct stream *s = xcalloc(1, sizeof(*s));
    s->w = w;
    strlcpy_fg(s->session, k->s.id, sizeof(s->session));
    pthread_mutex_lock(&w->mu);
    s->ev_pos = w->ev_next;
    pthread_mutex_unlock(&w->mu);
    s->next_check = mono_ms() + 1000;
    sb_str(&s->out, "retry: 3000\n\n");
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                                               stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        return MHD_NO;
    }
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response(k->c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result h_actions(struct call *k)
{
    struct webreq_action a;
    struct webreq_error e;
    if (webreq_action(k->body, k->len, &a, &e) < 0)
        return send_webreq_error(k->c, &e);
    if (k->s.role < a.need)
        return send_error(k->c, 403, NULL, "\"%s\" needs the %s role; %s is %s", a.line,
                          webauth_role_name(a.need), k->s.user, webauth_role_name(k->s.role));
    char origin[48];
    origin_of(k->s.user, origin, sizeof(origin));
    struct job *j = job_new(JOB_ACTION, origin);
    j->text = xstrdup(a.line);
    strlcpy_fg(j->scope, a.scope, sizeof(j->scope));
    strlcpy_fg(j->id, a.id, sizeof(j->id));
    return run_job(k, j);
}

/* CSV text field: quoted when needed; a leading = + - @ cannot start a spreadsheet formula. */
static void csv_text(struct sbuf *b, const char *v, bool last)
{
    if (v && *v) {
        bool formula = strchr("=+-@\t\r", v[0]) != NULL;
        bool quote = formula || strpbrk(v, ",\"\r\n") != NULL;
        if (quote)
            sb_str(b, "\"");
        if (formula)
            sb_str(b, "'");
        for (const char *p = v; *p; p++) {
            if (*p == '"')
                sb_str(b, "\"\"");
            else
                sb_add(b, p, 1);
        }
        if (quote)
            sb_str(b, "\"");
    }
    sb_str(b, last ? "\r\n" : ",");
}

static void csv_num(struct sbuf *b, bool has, double v)
{
    if (has)
        sb_fmt(b, "%g", v);
    sb_str(b, ",");
}

struct events_out {
    bool csv;
    struct sbuf b;
    cJSON *list;
};

static int event_row(void *arg, const struct evlog_event_row *r)
{
    struct events_out *o = arg;
    char ts[40];
    format_utc_ms(r->ts_ms, ts, sizeof(ts));
    if (o->csv) {
        struct sbuf *b = &o->b;
        csv_text(b, ts, false);
        sb_fmt(b, "%" PRIu64 ",", r->seq);
        csv_text(b, r->kind, false);
        sb_str(b, r->test ? "1," : "0,");
        csv_text(b, r->source, false);
        csv_text(b, r->detector, false);
        csv_text(b, r->device, false);
        csv_text(b, r->bus, false);
        csv_text(b, r->zone, false);
        if (r->has_floor)
            sb_fmt(b, "%d", r->floor);
        sb_str(b, ",");
        csv_text(b, r->fault, false);
        csv_text(b, r->rule, false);
        csv_num(b, r->has_value, r->value);
        csv_num(b, r->has_level, r->level);
        csv_text(b, r->user, false);
        csv_text(b, r->detail, false);
        csv_text(b, r->event_id, true);
        return 0;
    }
    cJSON *ev = r->json ? cJSON_Parse(r->json) : NULL;
    if (!cJSON_IsObject(ev)) {
        /* A row without its payload: the columns say enough for the history page. */
        cJSON_Delete(ev);
        ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "event_id", r->event_id ? r->event_id : "");
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRIu64, r->seq);
        cJSON_AddRawToObject(ev, "seq", seq);
        cJSON_AddStringToObject(ev, "ts", ts);
        cJSON_AddStringToObject(ev, "kind", r->kind ? r->kind : "");
        cJSON_AddBoolToObject(ev, "test", r->test);
        if (r->detail)
            cJSON_AddStringToObject(ev, "detail", r->detail);
    }
    cJSON_AddItemToArray(o->list, ev);
    return 0;
}

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    static const char *const known[] = {"from",     "to",    "kind",  "zone",
                                        "detector", "limit", "format"};
    (void)kind;
    (void)value;
    for (size_t i = 0; i < ARRAY_LEN(known); i++)
        if (strcmp(key, known[i]) == 0)
            return MHD_YES;
    strlcpy_fg(cls, key, 64);
    return MHD_NO;
}

/* A from/to argument of the history: a time or an age. False when given and not one. */
static bool time_arg(const char *v, int64_t now, int64_t *out, bool *given)
{
    if (!v || !*v)
        return true;
    if (evlog_parse_time(v, now, out) < 0)
        return false;
    *given = true;
    return true;
}

static enum MHD_Result h_events(struct call *k)
{
    struct MHD_Connection *c = k->c;
    char unknown[64] = "";
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_arg, unknown);
    if (unknown[0])
        return send_error(c, 400, unknown,
                          "unknown parameter \"%s\" (from, to, kind, zone, detector, limit, "
                          "format)",
                          unknown);
    const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
    const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
    const char *kind = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind");
    const char *zone = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "zone");
    const char *det = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "detector");
    const char *limit_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    const char *format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
    struct evlog_filter f = {.order = EVLOG_NEWEST_FIRST};
    int64_t now = wall_ms();
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
        return send_error(c, 400, "format", "format \"%.20s\" is not json or csv", format);
    bool csv = format && strcmp(format, "csv") == 0;
    const char *bad = NULL, *value = NULL;
    if (!time_arg(from, now, &f.since_ms, &f.has_since)) {
        bad = "from";
        value = from;
    } else if (!time_arg(to, now, &f.until_ms, &f.has_until)) {
        bad = "to";
        value = to;
    }
    if (bad)
        return send_error(c, 400, bad,
                          "%s \"%.40s\" is not a time (2026-11-23T05:04:03Z, 2026-11-23) or an "
                          "age (15min, 2h, 7d)",
                          bad, value);
    long long limit = EVENTS_LIMIT_DEFAULT;
    long long max = csv ? EVENTS_LIMIT_CSV : EVENTS_LIMIT_JSON;
    if (limit_s && parse_int(limit_s, 1, max, &limit) < 0)
        return send_error(c, 400, "limit", "limit \"%.20s\" is not a number in 1..%lld", limit_s,
                          max);
    f.limit = (long)limit;
    char kinds[400] = "";
    if (kind && *kind) {
        if (strlen(kind) >= sizeof(kinds))
            return send_error(c, 400, "kind", "kind is too long");
        strlcpy_fg(kinds, kind, sizeof(kinds));
        char *save = NULL;
        for (char *t = strtok_r(kinds, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            bool known = false;
            for (int i = 0; i < EV__COUNT && !known; i++)
                known = strcmp(t, ev_kind_name(i)) == 0;
            if (!known || f.nkinds == EVLOG_MAX_KINDS)
                return send_error(c, 400, "kind", "kind \"%.40s\" is not an event kind", t);
            f.kinds[f.nkinds++] = t;
        }
    }
    if (zone && *zone) {
        if (!webreq_valid_id(zone))
            return send_error(c, 400, "zone", "zone \"%.64s\" is not a zone id", zone);
        f.zone = zone;
    }
    if (det && *det) {
        if (!webreq_valid_id(det))
            return send_error(c, 400, "detector", "detector \"%.64s\" is not a detector id", det);
        f.detector = det;
    }
    char err[512];
    struct evlog *l = evlog_open_readonly(k->w->events_db, err, sizeof(err));
    if (!l)
        return send_error(c, 503, NULL, "the event log cannot be read: %s", err);
    struct events_out o = {.csv = csv};
    if (csv)
        sb_str(&o.b, "\xEF\xBB\xBF" /* UTF-8 mark for spreadsheets */
                     "time,seq,kind,test,source,detector,device,bus,zone,floor,fault,rule,value,"
                     "level,user,detail,event_id\r\n");
    else
        o.list = cJSON_CreateArray();
    long n = evlog_query(l, &f, event_row, &o, err, sizeof(err));
    evlog_close(l);
    if (n < 0) {
        free(o.b.p);
        cJSON_Delete(o.list);
        return send_error(c, 503, NULL, "the event log cannot be read: %s", err);
    }
    if (csv) {
        char disp[160], day[40];
        format_utc_ms(now, day, sizeof(day));
        day[10] = '\0';
        snprintf(disp, sizeof(disp), "attachment; filename=\"firegw-events-%s-%s.csv\"",
                 k->w->site_id, day);
        const char *extra[] = {"Content-Disposition", disp, NULL};
        return send_body(c, 200, "text/csv; charset=utf-8", o.b.p, o.b.len, extra);
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "events", o.list);
    cJSON_AddNumberToObject(root, "count", (double)n);
    cJSON_AddBoolToObject(root, "truncated", n >= f.limit);
    return send_json(c, 200, webjob_text(root), NULL);
}

static enum MHD_Result h_walktest(struct call *k)
{
    char origin[48];
    origin_of(k->s.user, origin, sizeof(origin));
    if (strcmp(k->method, "GET") == 0)
        return run_job(k, job_new(JOB_WALK_GET, origin));
    if (k->s.role < WEB_INSTALLER)
        return send_error(k->c, 403, NULL, "walk tests need the installer role; %s is %s",
                          k->s.user, webauth_role_name(k->s.role));
    if (strcmp(k->method, "DELETE") == 0)
        return run_job(k, job_new(JOB_WALK_STOP, origin));
    static const struct webreq_field f[] = {{"zone", WR_STRING, true},
                                            {"duration", WR_STRING, false}};
    enum MHD_Result sent = MHD_NO;
    cJSON *o = parse_body(k, f, ARRAY_LEN(f), &sent);
    if (!o)
        return sent;
    /* The same checks as a test_on action, by building one. */
    const char *zone = str_field(o, "zone"), *dur = str_field(o, "duration");
    cJSON *act = cJSON_CreateObject();
    cJSON_AddStringToObject(act, "action", "test_on");
    cJSON_AddStringToObject(act, "scope", "zone");
    cJSON_AddStringToObject(act, "id", zone);
    cJSON_AddStringToObject(act, "duration", dur ? dur : "30min");
    cJSON_Delete(o);
    char *text = webjob_text(act);
    struct webreq_action a;
    struct webreq_error e;
    int rc = webreq_action(text, strlen(text), &a, &e);
    free(text);
    if (rc < 0) {
        if (strcmp(e.field, "id") == 0)
            strlcpy_fg(e.field, "zone", sizeof(e.field));
        return send_webreq_error(k->c, &e);
    }
    struct job *j = job_new(JOB_WALK_START, origin);
    j->text = xstrdup(a.line);
    strlcpy_fg(j->id, a.id, sizeof(j->id));
    j->ms = a.period_ms;
    return run_job(k, j);
}

/*
 * Edit the site file here, on the handler thread (reading, validating and the
 * synced write stay off the main loop), then have the main thread apply it.
 * One edit at a time; a change the running gateway refuses puts the old file
 * back.
 */
static enum MHD_Result edit_config(struct call *k, const char *origin, const char *what,
                                   enum siteedit_kind kind, enum siteedit_op op, const char *id,
                                   const cJSON *body, const char *version)
{
    struct web *w = k->w;
    struct siteedit_result res = {0};
    pthread_mutex_lock(&w->edit_mu);
    char *old = siteedit_read(w->cfg_path, &res);
    siteedit_result_free(&res);
    memset(&res, 0, sizeof(res));
    if (siteedit_edit(w->cfg_path, kind, op, id, body, version, &res) < 0) {
        pthread_mutex_unlock(&w->edit_mu);
        free(old);
        record(w, origin, what, res.message);
        enum MHD_Result sent = send_json(k->c, (unsigned)siteedit_http_status(&res),
                                         webjob_text(siteedit_result_json(&res)), NULL);
        siteedit_result_free(&res);
        return sent;
    }
    struct job *j = job_new(JOB_RELOAD, origin);
    j->text = xstrdup(what);
    char *answer;
    bool ran;
    int status = wait_job(k, j, &answer, &ran);
    char *reply;
    if (status == 200) {
        cJSON *o = siteedit_result_json(&res);
        cJSON_AddTrueToObject(o, "applied");
        reply = webjob_text(o);
    } else if (status == 503 && ran) {
        status = 503;
        reply = webjob_error(NULL, "the file was saved; applying it took the gateway longer than "
                                   "expected: its log says whether it was");
    } else {
        /* Not applied: the file goes back to what the gateway runs. */
        cJSON *a = answer ? cJSON_Parse(answer) : NULL;
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(a, "error");
        struct siteedit_result back = {0};
        bool restored = old && siteedit_save(w->cfg_path, old, res.version, &back) == 0;
        siteedit_result_free(&back);
        char *msg =
            xasprintf("the change was not applied%s: %s", restored ? "; the file is as it was" : "",
                      cJSON_IsString(why) ? why->valuestring : "the gateway did not answer");
        cJSON_Delete(a);
        if (status < 400)
            status = 409;
        reply = webjob_error(NULL, msg);
        free(msg);
    }
    pthread_mutex_unlock(&w->edit_mu);
    free(answer);
    free(old);
    siteedit_result_free(&res);
    return send_json(k->c, (unsigned)status, reply, NULL);
}

/* config, config/KIND, config/KIND/ID */
static enum MHD_Result h_config(struct call *k)
{
    char origin[48];
    origin_of(k->s.user, origin, sizeof(origin));
    if (strcmp(k->path, "config") == 0) {
        if (strcmp(k->method, "GET") != 0)
            return send_error(k->c, 405, NULL, "use GET on /api/config");
        return run_job(k, job_new(JOB_CONFIG_GET, origin));
    }
    const char *rest = k->path + 7;
    const char *slash = strchr(rest, '/');
    char kind_s[16];
    size_t kl = slash ? (size_t)(slash - rest) : strlen(rest);
    enum siteedit_kind kind;
    if (kl >= sizeof(kind_s))
        kl = sizeof(kind_s) - 1;
    memcpy(kind_s, rest, kl);
    kind_s[kl] = '\0';
    if (siteedit_kind_parse(kind_s, &kind) < 0)
        return send_error(k->c, 404, NULL,
                          "no /api/config/%s: the web UI edits bus, device and detector sections",
                          kind_s);
    const char *id = slash ? slash + 1 : NULL;
    bool post = strcmp(k->method, "POST") == 0;
    if (post != !id)
        return send_error(
            k->c, 405, NULL, "%s",
            post ? "POST /api/config/KIND adds; use PUT or DELETE on /api/config/KIND/ID"
                 : "PUT and DELETE need /api/config/KIND/ID");
    if (id && !webreq_valid_id(id))
        return send_error(k->c, 404, NULL, "\"%.64s\" is not a %s id", id, kind_s);
    enum siteedit_op op = post                            ? SITEEDIT_ADD
                          : strcmp(k->method, "PUT") == 0 ? SITEEDIT_REPLACE
                                                          : SITEEDIT_REMOVE;
    cJSON *body = NULL;
    if (k->len || op != SITEEDIT_REMOVE) {
        struct webreq_error e;
        body = webreq_parse(k->body, k->len, NULL, 0, &e);
        if (!body)
            return send_webreq_error(k->c, &e);
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "version");
    const char *qv = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "version");
    const char *version = cJSON_IsString(v) ? v->valuestring : v ? NULL : qv;
    if (!version || strlen(version) != SITEEDIT_VERSION_LEN - 1) {
        cJSON_Delete(body);
        return send_error(k->c, 400, "version",
                          "version is required: the \"version\" string of GET /api/config this "
                          "edit is based on");
    }
    const cJSON *bid = cJSON_GetObjectItemCaseSensitive(body, "id");
    static const char *const ops[] = {"add", "change", "remove"};
    char what[160];
    snprintf(what, sizeof(what), "config %s %s %.64s", ops[op], kind_s,
             id                    ? id
             : cJSON_IsString(bid) ? bid->valuestring
                                   : "?");
    enum MHD_Result sent = edit_config(k, origin, what, kind, op, id, body, version);
    cJSON_Delete(body);
    return sent;
}

static enum MHD_Result h_probe(struct call *k)
{
    static const struct webreq_field f[] = {{"device", WR_STRING, true}};
    enum MHD_Result sent = MHD_NO;
    cJSON *o = parse_body(k, f, ARRAY_LEN(f), &sent);
    if (!o)
        return sent;
    const char *dev = str_field(o, "device");
    if (!webreq_valid_id(dev) && !strchr(dev, '/')) {
        cJSON_Delete(o);
        return send_error(k->c, 400, "device", "device \"%.64s\" is not a device id", dev);
    }
    char origin[48];
    origin_of(k->s.user, origin, sizeof(origin));
    struct job *j = job_new(JOB_PROBE, origin);
    strlcpy_fg(j->id, dev, sizeof(j->id));
    cJSON_Delete(o);
    return run_job(k, j);
}

static enum MHD_Result h_scan(struct call *k)
{
    static const struct webreq_field f[] = {{"bus", WR_STRING, true},
                                            {"from", WR_INT, false},
                                            {"to", WR_INT, false},
                                            {"timeout", WR_STRING, false}};
    enum MHD_Result sent = MHD_NO;
    cJSON *o = parse_body(k, f, ARRAY_LEN(f), &sent);
    if (!o)
        return sent;
    const char *bus = str_field(o, "bus");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(o, "from");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(o, "to");
    const char *tmo = str_field(o, "timeout");
    char origin[48];
    origin_of(k->s.user, origin, sizeof(origin));
    struct job *j = job_new(JOB_SCAN, origin);
    strlcpy_fg(j->id, bus, sizeof(j->id));
    j->from = from ? from->valueint : 1;
    j->to = to ? to->valueint : 247;
    bool bad_timeout = tmo && parse_duration_ms(tmo, 10, BUS_PROBE_MAX_TIMEOUT_MS, &j->ms) < 0;
    cJSON_Delete(o);
    const char *bad = !webreq_valid_id(j->id)          ? "bus"
                      : j->from < 0 || j->from > 255   ? "from"
                      : j->to < j->from || j->to > 255 ? "to"
                      : bad_timeout                    ? "timeout"
                                                       : NULL;
    if (bad) {
        webjob_free(j);
        return send_error(k->c, 400, bad,
                          "%s is not valid: bus is a bus id, from..to unit ids (0..255, from <= "
                          "to), timeout a duration up to %dms",
                          bad, BUS_PROBE_MAX_TIMEOUT_MS);
    }
    return run_job(k, j);
}

enum route_flags {
    R_OPEN = 1u << 0,    /* no session needed */
    R_NO_CSRF = 1u << 1, /* no session yet: Origin is checked instead */
    R_PREFIX = 1u << 2,  /* path followed by "/..." */
};

struct route {
    const char *path;
    const char *methods; /* space-separated */
    unsigned flags;
    enum web_role role; /* least role; finer checks in the handler */
    enum MHD_Result (*fn)(struct call *);
};

static const struct route routes[] = {
    {"session", "GET", R_OPEN, WEB_VIEWER, h_session},
    {"setup", "POST", R_OPEN | R_NO_CSRF, WEB_VIEWER, h_setup},
    {"login", "POST", R_OPEN | R_NO_CSRF, WEB_VIEWER, h_login},
    {"logout", "POST", 0, WEB_VIEWER, h_logout},
    {"password", "POST", 0, WEB_VIEWER, h_password},
    {"users", "GET POST", 0, WEB_ADMIN, h_users},
    {"users", "PUT DELETE", R_PREFIX, WEB_ADMIN, h_users},
    {"state", "GET", 0, WEB_VIEWER, h_state},
    {"stream", "GET", 0, WEB_VIEWER, h_stream},
    {"actions", "POST", 0, WEB_MANAGER, h_actions},
    {"events", "GET", 0, WEB_VIEWER, h_events},
    {"config", "GET", 0, WEB_INSTALLER, h_config},
    {"config", "POST PUT DELETE", R_PREFIX, WEB_INSTALLER, h_config},
    {"probe", "POST", 0, WEB_INSTALLER, h_probe},
    {"scan", "POST", 0, WEB_INSTALLER, h_scan},
    {"walktest", "GET POST DELETE", 0, WEB_VIEWER, h_walktest},
};

static bool path_matches(const struct route *r, const char *path)
{
    size_t n = strlen(r->path);
    if (strncmp(path, r->path, n) != 0)
        return false;
    if (r->flags & R_PREFIX)
        return path[n] == '/' && path[n + 1] != '\0';
    return path[n] == '\0';
}

static bool method_in(const char *methods, const char *m)
{
    size_t n = strlen(m);
    for (const char *p = methods; (p = strstr(p, m)) != NULL; p += n)
        if ((p == methods || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return true;
    return false;
}

static enum MHD_Result api(struct web *w, struct MHD_Connection *c, const char *url,
                           const char *method, const struct req *rq)
{
    struct call k = {
        .w = w, .c = c, .method = method, .path = url + 5, .body = rq->body, .len = rq->len};
    client_addr(c, k.addr, sizeof(k.addr));
    const struct route *r = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        if (!path_matches(&routes[i], k.path))
            continue;
        if (method_in(routes[i].methods, method))
            r = &routes[i];
        else
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                     allow[0] ? " " : "", routes[i].methods);
    }
    if (!r && allow[0]) {
        for (char *p = allow; *p; p++)
            if (*p == ' ')
                *p = ',';
        const char *extra[] = {"Allow", allow, NULL};
        char msg[160];
        snprintf(msg, sizeof(msg), "%s is not allowed on /api/%.40s (allowed: %s)", method, k.path,
                 allow);
        return send_json(c, 405, webjob_error(NULL, msg), extra);
    }
    if (!r)
        return send_error(c, 404, NULL, "no API endpoint /api/%.60s", k.path);
    /* A form post from another site cannot send JSON without asking first (CORS). */
    if (rq->len > 0 && !is_json(c))
        return send_error(c, 415, NULL,
                          "the body must be JSON: send Content-Type: "
                          "application/json");
    const char *cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE);
    bool logged_in = cookie && webauth_session(w->auth, cookie, mono_ms(), &k.s) == 0;
    if (!logged_in)
        memset(&k.s, 0, sizeof(k.s));
    if (!(r->flags & R_OPEN) && !logged_in) {
        bool first = webauth_first_run(w->auth);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error",
                                first ? "no account exists yet: set the admin "
                                        "password"
                                      : "not logged in, or the session has ended");
        cJSON_AddBoolToObject(o, "first_run", first);
        return send_json(c, 401, webjob_text(o), NULL);
    }
    if (strcmp(method, "GET") != 0 && !(r->flags & R_NO_CSRF) &&
        !webauth_csrf_ok(&k.s, header(c, "X-CSRF-Token")))
        return send_error(c, 403, NULL,
                          "missing or wrong X-CSRF-Token header (the csrf of /api/session)");
    if (logged_in && k.s.role < r->role && !(r->flags & R_OPEN))
        return send_error(c, 403, NULL, "/api/%.40s needs the %s role; %s is %s", k.path,
                          webauth_role_name(r->role), k.s.user, webauth_role_name(k.s.role));
    return r->fn(&k);
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".webmanifest", "application/manifest+json"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".mp3", "audio/mpeg"},
        {".ogg", "audio/ogg"},
        {".wav", "audio/wav"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < ARRAY_LEN(types); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* A path of the web root a client may ask for: no "." or ".." segment, no hidden file. */
static bool safe_path(const char *url)
{
    if (url[0] != '/' || strchr(url, '\\') || strlen(url) > 1024)
        return false;
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
        if (p[0] == '/' && p[1] == '.')
            return false;
    }
    return true;
}

static enum MHD_Result static_file(struct web *w, struct MHD_Connection *c, const char *url,
                                   const char *method)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        const char *extra[] = {"Allow", "GET, HEAD", NULL};
        return send_json(c, 405, webjob_error(NULL, "the web UI's files are read with GET"), extra);
    }
    if (!safe_path(url))
        return send_error(c, 400, NULL, "not a path of the web UI");
    if (!w->root)
        return send_error(c, 404, NULL,
                          "the web UI's files were not found (set web.root); the API is at "
                          "/api/");
    size_t n = strlen(url);
    char *full = xasprintf("%s%s%s", w->root, url, url[n - 1] == '/' ? "index.html" : "");
    /* Symbolic links are followed only while they stay inside the root. */
    char *real = realpath(full, NULL);
    free(full);
    size_t rl = strlen(w->root);
    if (!real || strncmp(real, w->root, rl) != 0 || real[rl] != '/') {
        free(real);
        return send_error(c, 404, NULL, "no file %.200s", url);
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_FILE_MAX) {
        if (fd >= 0)
            close(fd);
        free(real);
        return send_error(c, 404, NULL, "no file %.200s", url);
    }
    char etag[64];
    snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st.st_mtim.tv_sec,
             (unsigned long long)st.st_size ^ (unsigned long long)st.st_mtim.tv_nsec);
    const char *inm = header(c, "If-None-Match");
    struct MHD_Response *r;
    unsigned status = 200;
    if (inm && strcmp(inm, etag) == 0) {
        close(fd);
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = 304;
    } else {
        r = MHD_create_response_from_fd((size_t)st.st_size, fd);
        if (!r)
            close(fd);
    }
    if (!r) {
        free(real);
        return MHD_NO;
    }
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", content_type(real));
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "ETag", etag);
    free(real);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct web *w = cls;
    struct req *rq = *con_cls;
    (void)version;
    if (!rq) {
        rq = xcalloc(1, sizeof(*rq));
        *con_cls = rq;
        const char *cl = header(c, "Content-Length");
        long long n;
        if (cl && parse_int(cl, 0, LLONG_MAX, &n) == 0 && n > WEBREQ_BODY_MAX)
            return send_error(c, 413, NULL, "the body is larger than %d KiB",
                              WEBREQ_BODY_MAX / 1024);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!rq->too_big && rq->len + n <= WEBREQ_BODY_MAX) {
            rq->body = xrealloc(rq->body, rq->len + n + 1);
            memcpy(rq->body + rq->len, upload_data, n);
            rq->len += n;
            rq->body[rq->len] = '\0';
            return MHD_YES;
        }
        rq->too_big = true;
        rq->discarded += n;
        return rq->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (rq->too_big)
        return send_error(c, 413, NULL, "the body is larger than %d KiB", WEBREQ_BODY_MAX / 1024);
    if (strncmp(url, "/api/", 5) == 0)
        return api(w, c, url, method, rq);
    if (strcmp(url, "/api") == 0)
        return send_error(c, 404, NULL, "the API is under /api/ (docs/http-api.md)");
    return static_file(w, c, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_debug("web: libmicrohttpd: %s", msg);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* web.root, else web-ui beside a profile directory, beside the config's directory, or here. */
static char *find_root(const struct cfg *cfg)
{
    if (cfg->web.root)
        return realpath(cfg->web.root, NULL);
    size_t n = cfg->gateway.nprofile_dirs;
    char **tries = xcalloc(n + 2, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        tries[i] = xasprintf("%s/../web-ui", cfg->gateway.profile_dirs[i]);
    const char *slash = strrchr(cfg->path, '/');
    tries[n] = slash ? xasprintf("%.*s/../web-ui", (int)(slash - cfg->path), cfg->path)
                     : xstrdup("../web-ui");
    tries[n + 1] = xstrdup("web-ui");
    char *found = NULL;
    for (size_t i = 0; i < n + 2; i++) {
        if (!found && is_dir(tries[i]))
            found = realpath(tries[i], NULL);
        free(tries[i]);
    }
    free(tries);
    return found;
}

static char *read_pem(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct sbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < 1024 * 1024)
        sb_add(&b, chunk, n);
    fclose(f);
    if (!b.p || !strstr(b.p, "-----BEGIN ")) {
        snprintf(err, errlen, "%s is not a PEM file", path);
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Why the listening address cannot be used, found by trying it. */
static void bind_error(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, sa, len) < 0)
        snprintf(buf, buflen, "%s", strerror(errno));
    else
        snprintf(buf, buflen, "libmicrohttpd could not start (see the debug log)");
    if (fd >= 0)
        close(fd);
}

struct web *web_start(const struct cfg *cfg, const char *state_dir, char *err, size_t errlen)
{
    err[0] = '\0';
    const struct cfg_web *cw = &cfg->web;
    if (!cw->enabled)
        return NULL;
    struct web *w = xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->job_cond, &ca);
    pthread_cond_init(&w->feed_cond, &ca);
    pthread_condattr_destroy(&ca);
    w->queue_tail = &w->queue;
    w->snap = snapshot_new();
    w->probe_q = queue_new();
    w->site_id = xstrdup(cfg->site.id);
    w->cfg_path = xstrdup(cfg->path);
    pthread_mutex_init(&w->edit_mu, NULL);
    w->events_db = xasprintf("%s/%s", state_dir, EVLOG_FILE_NAME);
    w->root = find_root(cfg);
    char *users = cw->users_file ? xstrdup(cw->users_file) : xasprintf("%s/users.json", state_dir);
    struct webauth_limits lim = {.session_idle_ms = cw->session_timeout_ms};
    w->auth = webauth_open(users, &lim, err, errlen);
    free(users);
    if (!w->auth) {
        web_free(w);
        return NULL;
    }
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    memset(&addr, 0, sizeof(addr));
    socklen_t alen;
    if (cw->listen_ipv6) {
        addr.in6.sin6_family = AF_INET6;
        addr.in6.sin6_port = htons((uint16_t)cw->listen_port);
        inet_pton(AF_INET6, cw->listen_host, &addr.in6.sin6_addr);
        alen = sizeof(addr.in6);
    } else {
        addr.in.sin_family = AF_INET;
        addr.in.sin_port = htons((uint16_t)cw->listen_port);
        inet_pton(AF_INET, cw->listen_host, &addr.in.sin_addr);
        alen = sizeof(addr.in);
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (cw->listen_ipv6)
        flags |= MHD_USE_IPv6;
    if (cw->https_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "HTTPS is configured, but this libmicrohttpd has no TLS");
            web_free(w);
            return NULL;
        }
        w->cert_pem = read_pem(cw->https_cert, err, errlen);
        w->key_pem = w->cert_pem ? read_pem(cw->https_key, err, errlen) : NULL;
        if (!w->key_pem) {
            web_free(w);
            return NULL;
        }
        flags |= MHD_USE_TLS;
        w->https = true;
    }
    struct MHD_OptionItem tls[] = {
        {w->https ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, w->cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, w->key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    w->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, &addr.sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)CONN_IDLE_S, MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    bool any = strcmp(cw->listen_host, "0.0.0.0") == 0 || strcmp(cw->listen_host, "::") == 0;
    char host[80];
    snprintf(host, sizeof(host), "%s%s%s", cw->listen_ipv6 ? "[" : "", cw->listen_host,
             cw->listen_ipv6 ? "]" : "");
    snprintf(w->url, sizeof(w->url), "%s://%s:%d/", w->https ? "https" : "http",
             any ? "THIS-GATEWAY" : host, cw->listen_port);
    if (!w->daemon) {
        char why[256];
        bind_error(&addr.sa, alen, why, sizeof(why));
        snprintf(err, errlen, "cannot serve the web UI on %s:%d: %s", host, cw->listen_port, why);
        web_free(w);
        return NULL;
    }
    log_notice("web: the UI is at %s (files from %s)", w->url,
               w->root ? w->root : "nowhere: no web-ui directory was found; set web.root");
    if (webauth_first_run(w->auth))
        log_warn("web: no account exists yet: open %s and set the admin password there", w->url);
    return w;
}

const char *web_url(const struct web *w)
{
    return w ? w->url : "";
}

void web_free(struct web *w)
{
    if (!w)
        return;
    /* Wake everyone who waits: queued and running jobs are answered 503, streams end. */
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    struct job *lists[] = {w->queue, w->inflight};
    w->queue = NULL;
    w->queued = 0;
    w->queue_tail = &w->queue;
    w->inflight = NULL;
    for (size_t i = 0; i < ARRAY_LEN(lists); i++) {
        for (struct job *j = lists[i], *next; j; j = next) {
            next = j->next;
            if (j->kind == JOB_RECORD || j->abandoned) {
                webjob_free(j);
                continue;
            }
            j->status = 503;
            j->answer = webjob_error(NULL, "the gateway is stopping");
            j->done = true;
        }
    }
    pthread_cond_broadcast(&w->job_cond);
    pthread_cond_broadcast(&w->feed_cond);
    pthread_mutex_unlock(&w->mu);
    if (w->daemon)
        MHD_stop_daemon(w->daemon);
    webauth_free(w->auth);
    snapshot_free(w->snap);
    if (w->probe_q)
        queue_free(w->probe_q, free);
    free(w->state);
    for (size_t i = 0; i < EVENT_RING; i++)
        free(w->ring[i]);
    free(w->walk.hits);
    free(w->root);
    free(w->events_db);
    free(w->site_id);
    free(w->cfg_path);
    pthread_mutex_destroy(&w->edit_mu);
    free(w->cert_pem);
    free(w->key_pem);
    pthread_cond_destroy(&w->job_cond);
    pthread_cond_destroy(&w->feed_cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void web_set_waker(struct web *w, struct queue *q)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->waker = q;
    pthread_mutex_unlock(&w->mu);
}
