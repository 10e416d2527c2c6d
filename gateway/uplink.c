/*
 * One MQTT uplink on Paho MQTTAsync: owns the client handle, the connection
 * state, the retained online/offline status and the last will, and the rate
 * limits of its complaints.
 *
 * Session: cleansession is 0. With a clean session Paho discards QoS 1
 * messages that were sent but not yet acknowledged at every reconnect; with a
 * kept session it resends them (consumers deduplicate by event_id), so an
 * alarm in flight during a network glitch still arrives. A broker that
 * restarted without persistence has lost the session, and then Paho drops
 * them as well; messages still waiting in the offline buffer are not
 * affected. The session's subscriptions (acknowledgements and commands for
 * this gateway, see uplink_subscribe) are made again on every connect.
 *
 * Offline buffering: events do not wait in Paho; they wait in the daemon's
 * durable outbox (outbox.c) and are handed over only while connected, with
 * uplink_publish_tracked, which reports when the broker has each one. Other
 * messages (command responses, the status) published while the broker is
 * unreachable wait in Paho's memory queue up to max_buffered and go out in
 * order on connect; the status is sent again on every connect anyway.
 *
 * The first connect: Paho documents automatic reconnect only for connections
 * that once succeeded. The installed libpaho-mqtt3a (1.3.12, reporting
 * itself as 1.3.11) does retry a failed first connect, but quietly: onFailure
 * fires once, then nothing. uplink_tick is therefore a watchdog: Paho's
 * update-connect-options hook tells us when it makes an attempt, and if
 * neither Paho nor we tried for WATCHDOG_MS while the broker was never
 * reached, the uplink calls connect again itself. It never competes with a
 * retrying Paho, whose attempts are at most RETRY_MAX_MS (+20% jitter) apart.
 *
 * Paho runs the callbacks on its own threads: the flags they share with the
 * main loop are atomics, and the log limits and the disconnect hand-shake
 * are under the mutex.
 */

#include "uplink.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "payload.h"
#include "util.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000
#define CONNECT_TIMEOUT_S 10
#define WATCHDOG_MS (RETRY_MAX_MS * 6 / 5 + CONNECT_TIMEOUT_S * 1000 + 15000)
#define LOG_INTERVAL_MS 60000
#define PUBLISH_LOG_INTERVAL_MS 10000

#define SUBS_MAX 4
/* Tracked messages handed to Paho and not yet reported back. */
#define TRACK_MAX 256
/* Larger inbound payloads are dropped: acknowledgements and commands are small. */
#define INBOUND_MAX 16384

struct uplink {
    const struct cfg *cfg;
    size_t index;         /* into cfg.uplinks */
    struct queue *inbox;  /* where inbound messages go; NULL: none expected */
    char *subs[SUBS_MAX]; /* subtopics subscribed to on every connect */
    size_t nsubs;
    const struct cfg_uplink *uc;
    int64_t started_wall;
    char *uri;   /* the primary broker */
    char **uris; /* primary first, then the failover nodes */
    size_t nuris;
    char *client_id;
    char *prefix;
    char *status_topic;
    MQTTAsync client;
    bool client_made;

    atomic_bool connected;
    atomic_bool ever_connected;
    atomic_uint connects; /* successful connections so far */
    atomic_bool stopping;
    atomic_llong last_attempt_mono; /* last connect attempt, ours or Paho's */

    bool started; /* main thread only */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct log_limit conn_limit; /* connect failures and lost connections */
    struct log_limit pub_limit;  /* refused or failed publishes */
    struct log_limit tls_limit;  /* TLS errors */
    bool disconnect_done;
    struct track {
        MQTTAsync_token token;
        int64_t tag;
    } track[TRACK_MAX]; /* under the mutex */
    size_t ntrack;
    struct early {
        MQTTAsync_token token;
        bool ok;
    } early[TRACK_MAX]; /* receipts that came before their token was recorded */
    size_t nearly;
    struct queue *done_q;    /* where tracked results go */
    void (*wake)(void *arg); /* after a push to inbox or done_q; set before uplink_start */
    void *wake_arg;
};

static const char *failure_text(const MQTTAsync_failureData *resp)
{
    if (!resp)
        return "unknown reason";
    const char *connack = mqtt_connack_text(resp->code);
    if (connack)
        return connack;
    if (resp->message && *resp->message)
        return resp->message;
    return MQTTAsync_strerror(resp->code);
}

static void on_connect_failure(void *context, MQTTAsync_failureData *resp)
{
    struct uplink *u = context;
    atomic_store(&u->connected, false);
    if (atomic_load(&u->stopping))
        return;
    pthread_mutex_lock(&u->lock);
    log_limited(&u->conn_limit, mono_ms(), LOG_LVL_WARN,
                "uplink %s: cannot connect to %s: %s (code %d); retrying, messages are "
                "buffered meanwhile",
                u->uc->id, u->uri, failure_text(resp), resp ? resp->code : 0);
    pthread_mutex_unlock(&u->lock);
}

static void on_connection_lost(void *context, char *cause)
{
    struct uplink *u = context;
    atomic_store(&u->connected, false);
    if (atomic_load(&u->stopping))
        return;
    pthread_mutex_lock(&u->lock);
    log_limited(&u->conn_limit, mono_ms(), LOG_LVL_WARN,
                "uplink %s: connection to %s lost: %s; reconnecting, messages are buffered "
                "meanwhile",
                u->uc->id, u->uri, cause && *cause ? cause : "no reason given");
    pthread_mutex_unlock(&u->lock);
}

void uplink_msg_free(void *msg)
{
    struct uplink_msg *m = msg;
    if (!m)
        return;
    free(m->subtopic);
    free(m->payload);
    free(m);
}

/* On a Paho thread: hand the message to the main loop, nothing else. */
static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct uplink *u = context;
    size_t plen = strlen(u->prefix);
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    if (u->inbox && tlen > plen + 1 && strncmp(topic, u->prefix, plen) == 0 && topic[plen] == '/' &&
        msg->payloadlen >= 0 && msg->payloadlen <= INBOUND_MAX) {
        struct uplink_msg *m = xcalloc(1, sizeof(*m));
        m->uplink = u->index;
        m->subtopic = xasprintf("%.*s", (int)(tlen - plen - 1), topic + plen + 1);
        m->payload = xmalloc((size_t)msg->payloadlen + 1);
        memcpy(m->payload, msg->payload, (size_t)msg->payloadlen);
        m->payload[msg->payloadlen] = '\0';
        m->len = (size_t)msg->payloadlen;
        queue_push(u->inbox, m);
        if (u->wake)
            u->wake(u->wake_arg);
    } else {
        log_warn("uplink %s: ignored a message of %d bytes on %.*s", u->uc->id, msg->payloadlen,
                 (int)tlen, topic);
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void subscribe_all(struct uplink *u)
{
    for (size_t i = 0; i < u->nsubs; i++) {
        char *topic = xasprintf("%s/%s", u->prefix, u->subs[i]);
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        int rc = MQTTAsync_subscribe(u->client, topic, 1, &ro);
        if (rc != MQTTASYNC_SUCCESS)
            log_err("uplink %s: cannot subscribe to %s: %s (code %d)", u->uc->id, topic,
                    MQTTAsync_strerror(rc), rc);
        free(topic);
    }
}

static void on_publish_failure(void *context, MQTTAsync_failureData *resp)
{
    struct uplink *u = context;
    pthread_mutex_lock(&u->lock);
    log_limited(&u->pub_limit, mono_ms(), LOG_LVL_ERR,
                "uplink %s: message %d to %s was not delivered: %s (code %d)", u->uc->id,
                resp ? resp->token : 0, u->uri, failure_text(resp), resp ? resp->code : 0);
    pthread_mutex_unlock(&u->lock);
}

static void push_done(struct uplink *u, int64_t tag, bool ok)
{
    struct uplink_done *d = xcalloc(1, sizeof(*d));
    d->uplink = u->index;
    d->tag = tag;
    d->ok = ok;
    queue_push(u->done_q, d);
    if (u->wake)
        u->wake(u->wake_arg);
}

/*
 * Report a tracked message's fate to the main loop. A receipt can beat
 * uplink_publish_tracked to recording its token: it is then kept as early
 * and claimed there.
 */
static void report(struct uplink *u, MQTTAsync_token token, bool ok)
{
    pthread_mutex_lock(&u->lock);
    bool found = false;
    for (size_t i = 0; i < u->ntrack && !found; i++) {
        if (u->track[i].token != token)
            continue;
        push_done(u, u->track[i].tag, ok);
        u->track[i] = u->track[--u->ntrack];
        found = true;
    }
    if (!found && u->nearly < TRACK_MAX) {
        u->early[u->nearly].token = token;
        u->early[u->nearly++].ok = ok;
    }
    pthread_mutex_unlock(&u->lock);
}

static void on_tracked_success(void *context, MQTTAsync_successData *resp)
{
    if (resp)
        report(context, resp->token, true);
}

static void on_tracked_failure(void *context, MQTTAsync_failureData *resp)
{
    on_publish_failure(context, resp);
    /* Paho reports a write that failed on a broken socket with token 0: no
     * message of ours; the reconnect sends again whatever is in flight. */
    if (resp && resp->token != 0)
        report(context, resp->token, false);
}

static void on_disconnect_done(void *context, MQTTAsync_successData *resp)
{
    (void)resp;
    struct uplink *u = context;
    pthread_mutex_lock(&u->lock);
    u->disconnect_done = true;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

static void on_disconnect_failed(void *context, MQTTAsync_failureData *resp)
{
    (void)resp;
    on_disconnect_done(context, NULL);
}

/* Queue one message; the Paho code, with a rate-limited log line on refusal. */
static int send_message(struct uplink *u, const char *topic, const char *payload, int qos,
                        bool retained)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)strlen(payload);
    msg.qos = qos;
    msg.retained = retained ? 1 : 0;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onFailure = on_publish_failure;
    ro.context = u;
    int rc = MQTTAsync_sendMessage(u->client, topic, &msg, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        const char *why = rc == MQTTASYNC_MAX_BUFFERED_MESSAGES
                              ? "the offline buffer is full (max_buffered)"
                              : MQTTAsync_strerror(rc);
        pthread_mutex_lock(&u->lock);
        log_limited(&u->pub_limit, mono_ms(), LOG_LVL_ERR,
                    "uplink %s: cannot publish %zu bytes to %s on %s: %s (code %d)", u->uc->id,
                    strlen(payload), topic, u->uri, why, rc);
        pthread_mutex_unlock(&u->lock);
    }
    return rc;
}

/* Called by Paho before each of its automatic attempts; only noted, nothing changed. */
static int on_reconnect_attempt(void *context, MQTTAsync_connectData *data)
{
    (void)data;
    struct uplink *u = context;
    atomic_store(&u->last_attempt_mono, mono_ms());
    return 0;
}

static void on_connected(void *context, char *cause)
{
    (void)cause;
    struct uplink *u = context;
    atomic_store(&u->connected, true);
    atomic_store(&u->ever_connected, true);
    atomic_fetch_add(&u->connects, 1);
    if (atomic_load(&u->stopping))
        return;
    pthread_mutex_lock(&u->lock);
    log_limit_reset(&u->conn_limit);
    pthread_mutex_unlock(&u->lock);
    log_notice("uplink %s: connected to %s as %s", u->uc->id, u->uri, u->client_id);
    subscribe_all(u);
    /* QoS 0 like the states: sent again on every connect. */
    char *status = payload_status(u->cfg, true, wall_ms(), u->started_wall);
    if (status) {
        send_message(u, u->status_topic, status, 0, true);
        free(status);
    }
    /* The backlog and the states go out now, not at the main loop's next turn. */
    if (u->wake)
        u->wake(u->wake_arg);
}

/* TLS problems (bad certificate, wrong host name) as the TLS library words them. */
static int on_ssl_error(const char *str, size_t len, void *context)
{
    struct uplink *u = context;
    pthread_mutex_lock(&u->lock);
    log_limited(&u->tls_limit, mono_ms(), LOG_LVL_ERR, "uplink %s: TLS error with %s: %.*s",
                u->uc->id, u->uri, (int)len, str);
    pthread_mutex_unlock(&u->lock);
    return 0;
}

/* One connect call; the outcome arrives in on_connected or on_connect_failure. */
static int do_connect(struct uplink *u, char *err, size_t errlen)
{
    /* Paho copies the will, so its timestamp is the time of this call. */
    char *will_text = payload_status(u->cfg, false, wall_ms(), u->started_wall);
    if (!will_text) {
        snprintf(err, errlen, "uplink %s: cannot build the last will message", u->uc->id);
        return -1;
    }
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    will.topicName = u->status_topic;
    will.message = will_text;
    will.retained = 1;
    will.qos = 1;

    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    if (u->uc->tls) {
        ssl.trustStore = u->uc->ca_file;
        ssl.keyStore = u->uc->cert_file;
        ssl.privateKey = u->uc->key_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = u->uc->verify_hostname ? 1 : 0;
        ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
        ssl.ssl_error_cb = on_ssl_error;
        ssl.ssl_error_context = u;
        opts.ssl = &ssl;
    }
    if (u->nuris > 1) {
        opts.serverURIs = u->uris;
        opts.serverURIcount = (int)u->nuris;
    }
    int64_t keepalive_s = (u->uc->keepalive_ms + 999) / 1000;
    opts.keepAliveInterval = keepalive_s < 1 ? 1 : (int)keepalive_s;
    opts.cleansession = 0;
    opts.will = &will;
    opts.username = u->uc->username && *u->uc->username ? u->uc->username : NULL;
    opts.password = u->uc->password && *u->uc->password ? u->uc->password : NULL;
    opts.connectTimeout = CONNECT_TIMEOUT_S;
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.automaticReconnect = 1;
    opts.minRetryInterval = RETRY_MIN_MS / 1000;
    opts.maxRetryInterval = RETRY_MAX_MS / 1000;
    opts.onFailure = on_connect_failure;
    opts.context = u;

    atomic_store(&u->last_attempt_mono, mono_ms());
    int rc = MQTTAsync_connect(u->client, &opts);
    free(will_text);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "uplink %s: cannot start connecting to %s: %s (code %d)", u->uc->id,
                 u->uri, MQTTAsync_strerror(rc), rc);
        return -1;
    }
    return 0;
}

/*
 * OpenSSL 3 initialises itself on first use, so Paho is told to leave it
 * alone: a gateway without TLS uplinks then does not set up OpenSSL's
 * algorithm and error tables (1.3 MB less resident memory), and one with TLS
 * gets them at its first handshake.
 */
static pthread_once_t paho_once = PTHREAD_ONCE_INIT;

static void paho_init(void)
{
    MQTTAsync_init_options io = MQTTAsync_init_options_initializer;
    io.do_openssl_init = 0;
    MQTTAsync_global_init(&io);
}

struct uplink *uplink_new(const struct cfg *cfg, size_t idx, int64_t started_wall_ms, char *err,
                          size_t errlen)
{
    pthread_once(&paho_once, paho_init);
    if (!cfg || idx >= cfg->nuplinks) {
        snprintf(err, errlen, "uplink index %zu does not exist (%zu configured)", idx,
                 cfg ? cfg->nuplinks : 0);
        return NULL;
    }
    const struct cfg_uplink *uc = &cfg->uplinks[idx];
    if (!uc->id || !uc->host || !*uc->host || uc->port < 1 || uc->port > 65535) {
        snprintf(err, errlen, "uplink %s: needs a broker host and a port from 1 to 65535",
                 uc->id ? uc->id : "(unnamed)");
        return NULL;
    }
    struct uplink *u = xcalloc(1, sizeof(*u));
    u->cfg = cfg;
    u->uc = uc;
    u->index = idx;
    u->started_wall = started_wall_ms;
    const char *scheme = uc->tls ? "ssl" : "tcp";
    u->uri = strchr(uc->host, ':') ? xasprintf("%s://[%s]:%d", scheme, uc->host, uc->port)
                                   : xasprintf("%s://%s:%d", scheme, uc->host, uc->port);
    /* The primary broker first, then the other nodes of the cluster. */
    u->nuris = 1 + uc->nfailover;
    u->uris = xcalloc(u->nuris, sizeof(*u->uris));
    u->uris[0] = xstrdup(u->uri);
    for (size_t i = 0; i < uc->nfailover; i++)
        u->uris[i + 1] = xasprintf("%s://%s", scheme, uc->failover[i]);
    u->client_id = uc->client_id && *uc->client_id
                       ? xstrdup(uc->client_id)
                       : xasprintf("firegw-%s-%s", cfg->site.id, uc->id);
    u->prefix = uc->topic_prefix && *uc->topic_prefix ? xstrdup(uc->topic_prefix)
                                                      : xasprintf("firegw/%s", cfg->site.id);
    u->status_topic = xasprintf("%s/status", u->prefix);
    u->conn_limit.interval_ms = LOG_INTERVAL_MS;
    u->pub_limit.interval_ms = PUBLISH_LOG_INTERVAL_MS;
    u->tls_limit.interval_ms = LOG_INTERVAL_MS;
    pthread_mutex_init(&u->lock, NULL);
    /* Monotonic, so a clock step at shutdown cannot stretch or cut the wait. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->cond, &ca);
    pthread_condattr_destroy(&ca);

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.sendWhileDisconnected = 1;
    co.allowDisconnectedSendAtAnyTime = 1;
    co.deleteOldestMessages = 0;
    co.maxBufferedMessages = uc->max_buffered > 0 ? uc->max_buffered : 100000;
    int rc = MQTTAsync_createWithOptions(&u->client, u->uri, u->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "uplink %s: cannot create an MQTT client for %s: %s (code %d)",
                 uc->id, u->uri, MQTTAsync_strerror(rc), rc);
        goto fail;
    }
    u->client_made = true;
    rc = MQTTAsync_setCallbacks(u->client, u, on_connection_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setConnected(u->client, u, on_connected);
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setUpdateConnectOptions(u->client, u, on_reconnect_attempt);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "uplink %s: cannot set the MQTT callbacks: %s (code %d)", uc->id,
                 MQTTAsync_strerror(rc), rc);
        goto fail;
    }
    return u;

fail:
    uplink_free(u, 0);
    return NULL;
}

int uplink_start(struct uplink *u, char *err, size_t errlen)
{
    if (!u) {
        snprintf(err, errlen, "no uplink to start");
        return -1;
    }
    if (u->started)
        return 0;
    log_info("uplink %s: connecting to %s as %s, topics under %s/", u->uc->id, u->uri, u->client_id,
             u->prefix);
    if (do_connect(u, err, errlen) < 0)
        return -1;
    u->started = true;
    return 0;
}

int uplink_publish(struct uplink *u, const char *subtopic, const char *payload, int qos,
                   bool retained)
{
    if (!u || !subtopic || !*subtopic || !payload || qos < 0 || qos > 2) {
        log_err("uplink %s: refusing to publish %s on \"%s\" (qos %d)", u ? u->uc->id : "?",
                payload ? "a message" : "a missing message", subtopic ? subtopic : "(none)", qos);
        return -1;
    }
    char *topic = xasprintf("%s/%s", u->prefix, subtopic);
    int rc = send_message(u, topic, payload, qos, retained);
    free(topic);
    return rc == MQTTASYNC_SUCCESS ? 0 : -1;
}

int uplink_publish_tracked(struct uplink *u, const char *subtopic, const char *payload, int64_t tag,
                           struct queue *done_q)
{
    if (!u || !subtopic || !payload || !done_q || !atomic_load(&u->connected))
        return -1;
    char *topic = xasprintf("%s/%s", u->prefix, subtopic);
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)strlen(payload);
    msg.qos = 1;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_tracked_success;
    ro.onFailure = on_tracked_failure;
    ro.context = u;
    /* Not under our mutex: Paho may be running a receipt callback that needs it. */
    pthread_mutex_lock(&u->lock);
    bool room = u->ntrack < TRACK_MAX;
    u->done_q = done_q;
    pthread_mutex_unlock(&u->lock);
    int rc = room ? MQTTAsync_sendMessage(u->client, topic, &msg, &ro) : -1;
    pthread_mutex_lock(&u->lock);
    if (rc == MQTTASYNC_SUCCESS) {
        bool early = false;
        for (size_t i = 0; i < u->nearly && !early; i++) {
            if (u->early[i].token != ro.token)
                continue;
            push_done(u, tag, u->early[i].ok);
            u->early[i] = u->early[--u->nearly];
            early = true;
        }
        if (!early) {
            u->track[u->ntrack].token = ro.token;
            u->track[u->ntrack++].tag = tag;
        }
    } else if (room) {
        log_limited(&u->pub_limit, mono_ms(), LOG_LVL_ERR,
                    "uplink %s: cannot publish %zu bytes to %s on %s: %s (code %d)", u->uc->id,
                    strlen(payload), topic, u->uri, MQTTAsync_strerror(rc), rc);
    }
    pthread_mutex_unlock(&u->lock);
    free(topic);
    return rc == MQTTASYNC_SUCCESS ? 0 : -1;
}

void uplink_set_wake(struct uplink *u, void (*wake)(void *arg), void *arg)
{
    if (!u || u->started)
        return;
    u->wake = wake;
    u->wake_arg = arg;
}

void uplink_untrack_all(struct uplink *u)
{
    pthread_mutex_lock(&u->lock);
    u->ntrack = 0;
    u->nearly = 0;
    pthread_mutex_unlock(&u->lock);
}

int uplink_subscribe(struct uplink *u, const char *subtopic, struct queue *inbox)
{
    if (!u || !subtopic || !*subtopic || !inbox || u->nsubs == SUBS_MAX || u->started) {
        errno = EINVAL;
        return -1;
    }
    u->inbox = inbox;
    u->subs[u->nsubs++] = xstrdup(subtopic);
    return 0;
}

int uplink_publish_live(struct uplink *u, const char *subtopic, const char *payload, int qos,
                        bool retained)
{
    if (!uplink_connected(u))
        return 1;
    return uplink_publish(u, subtopic, payload, qos, retained);
}

unsigned uplink_connections(const struct uplink *u)
{
    return u ? atomic_load(&((struct uplink *)u)->connects) : 0;
}

void uplink_tick(struct uplink *u, int64_t now_mono_ms)
{
    if (!u || !u->started || atomic_load(&u->ever_connected) || atomic_load(&u->stopping))
        return;
    if (now_mono_ms - atomic_load(&u->last_attempt_mono) < WATCHDOG_MS)
        return;
    log_notice("uplink %s: %s never reached and no connect attempt for %d s; connecting again",
               u->uc->id, u->uri, WATCHDOG_MS / 1000);
    char err[256];
    if (do_connect(u, err, sizeof(err)) < 0) {
        pthread_mutex_lock(&u->lock);
        log_limited(&u->conn_limit, mono_ms(), LOG_LVL_ERR, "%s", err);
        pthread_mutex_unlock(&u->lock);
    }
}

bool uplink_connected(const struct uplink *u)
{
    return u && atomic_load(&((struct uplink *)u)->connected);
}

const char *uplink_id(const struct uplink *u)
{
    return u ? u->uc->id : NULL;
}

static int64_t left_ms(int64_t deadline)
{
    int64_t left = deadline - mono_ms();
    return left > 0 ? left : 0;
}

/*
 * Wait until the deadline for the messages Paho still holds (only worth it
 * while connected); how many are left undelivered.
 */
static int drain(struct uplink *u, int64_t deadline, bool wait)
{
    MQTTAsync_token *tokens = NULL;
    if (wait && MQTTAsync_getPendingTokens(u->client, &tokens) == MQTTASYNC_SUCCESS && tokens) {
        for (int i = 0; tokens[i] != -1; i++)
            MQTTAsync_waitForCompletion(u->client, tokens[i], (unsigned long)left_ms(deadline));
        MQTTAsync_free(tokens);
        tokens = NULL;
    }
    int left = 0;
    if (MQTTAsync_getPendingTokens(u->client, &tokens) == MQTTASYNC_SUCCESS && tokens) {
        while (tokens[left] != -1)
            left++;
        MQTTAsync_free(tokens);
    }
    return left;
}

static void disconnect(struct uplink *u, int64_t deadline)
{
    MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
    opts.timeout = (int)left_ms(deadline);
    opts.onSuccess = on_disconnect_done;
    opts.onFailure = on_disconnect_failed;
    opts.context = u;
    pthread_mutex_lock(&u->lock);
    u->disconnect_done = false;
    pthread_mutex_unlock(&u->lock);
    if (MQTTAsync_disconnect(u->client, &opts) != MQTTASYNC_SUCCESS)
        return;
    /* Paho may overrun the timeout by its own cycle; allow a second more, then give up. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t wait_ms = left_ms(deadline) + 1000;
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&u->lock);
    while (!u->disconnect_done)
        if (pthread_cond_timedwait(&u->cond, &u->lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&u->lock);
}

void uplink_free(struct uplink *u, int64_t timeout_ms)
{
    if (!u)
        return;
    atomic_store(&u->stopping, true);
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    if (u->client_made) {
        bool connected = atomic_load(&u->connected);
        if (connected) {
            char *status = payload_status(u->cfg, false, wall_ms(), u->started_wall);
            if (status) {
                send_message(u, u->status_topic, status, 1, true);
                free(status);
            }
        }
        int left = drain(u, deadline, connected);
        if (left > 0)
            log_warn("uplink %s: %d messages to %s not delivered before stopping%s", u->uc->id,
                     left, u->uri,
                     atomic_load(&u->ever_connected) ? "" : " (the broker was never reached)");
        if (u->started)
            disconnect(u, deadline);
        MQTTAsync_destroy(&u->client);
    }
    pthread_cond_destroy(&u->cond);
    pthread_mutex_destroy(&u->lock);
    free(u->uri);
    free(u->client_id);
    free(u->prefix);
    for (size_t i = 0; i < u->nuris; i++)
        free(u->uris[i]);
    free(u->uris);
    for (size_t i = 0; i < u->nsubs; i++)
        free(u->subs[i]);
    free(u->status_topic);
    free(u);
}
