/*
 * Web accounts, sessions and the login rate limit. Two locks: `mu` guards
 * the accounts, sessions and rate entries and is only held briefly; `hash_mu`
 * lets one argon2id computation run at a time, because each takes tens of
 * megabytes and a burst of logins must not exhaust a small board's memory.
 * Hashing never happens under `mu`, so sessions keep being checked while
 * someone logs in.
 */
#include "webauth.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "log.h"
#include "util.h"

#define HASH_MAX crypto_pwhash_STRBYTES
#define RATE_KEY_MAX 72
#define USERS_FILE_MAX (1 << 20)
/* A quiet key is forgotten this long after its last failure, once unlocked. */
#define RATE_FORGET_MS (2LL * WEBAUTH_LOCK_MAX_MS)

struct account {
    char name[WEBAUTH_NAME_MAX + 1];
    enum web_role role;
    char hash[HASH_MAX];
};

struct session {
    struct web_session s;
    int64_t last_mono;
};

struct rate_entry {
    char key[RATE_KEY_MAX];
    unsigned failures;
    int64_t lock_until;
    int64_t last_mono;
};

struct webauth {
    pthread_mutex_t mu;
    pthread_mutex_t hash_mu;
    struct webauth_limits lim;
    char *path;
    struct account *acc;
    size_t nacc;
    struct session *sess;
    size_t nsess;
    struct rate_entry *rate;
    size_t nrate;
    char dummy_hash[HASH_MAX]; /* verified for unknown users, so they take as long */
};

static const char *const role_names[] = {"viewer", "manager", "installer", "admin"};

const char *webauth_role_name(enum web_role r)
{
    return (unsigned)r < ARRAY_LEN(role_names) ? role_names[r] : "unknown";
}

int webauth_role_parse(const char *s, enum web_role *out)
{
    for (size_t i = 0; s && i < ARRAY_LEN(role_names); i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (enum web_role)i;
            return 0;
        }
    }
    return -1;
}

bool webauth_valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > WEBAUTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return false;
    }
    return true;
}

bool webauth_valid_password(const char *pw, char *err, size_t errlen)
{
    size_t bytes = pw ? strlen(pw) : 0;
    if (bytes > WEBAUTH_PASSWORD_MAX) {
        snprintf(err, errlen, "password is longer than %d bytes", WEBAUTH_PASSWORD_MAX);
        return false;
    }
    size_t chars = 0;
    for (size_t i = 0; i < bytes; chars++) {
        size_t n = utf8_seq_len((const unsigned char *)pw + i, bytes - i);
        if (n == 0 || (unsigned char)pw[i] < 0x20 || pw[i] == 0x7f) {
            snprintf(err, errlen, "password must be UTF-8 text without control characters");
            return false;
        }
        i += n;
    }
    if (chars < WEBAUTH_PASSWORD_MIN) {
        snprintf(err, errlen, "password must have at least %d characters (it has %zu)",
                 WEBAUTH_PASSWORD_MIN, chars);
        return false;
    }
    return true;
}

/* argon2id of pw into out; one at a time (see the top of the file). 0 or -1. */
static int hash_password(struct webauth *a, const char *pw, char out[HASH_MAX])
{
    pthread_mutex_lock(&a->hash_mu);
    int rc = crypto_pwhash_str_alg(out, pw, strlen(pw), a->lim.opslimit, a->lim.memlimit,
                                   crypto_pwhash_ALG_ARGON2ID13);
    pthread_mutex_unlock(&a->hash_mu);
    return rc == 0 ? 0 : -1;
}

static bool verify_password(struct webauth *a, const char *hash, const char *pw)
{
    pthread_mutex_lock(&a->hash_mu);
    bool ok = crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
    pthread_mutex_unlock(&a->hash_mu);
    return ok;
}

static struct account *find_account(struct webauth *a, const char *name)
{
    for (size_t i = 0; name && i < a->nacc; i++)
        if (strcmp(a->acc[i].name, name) == 0)
            return &a->acc[i];
    return NULL;
}

static size_t admins(const struct webauth *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nacc; i++)
        n += a->acc[i].role == WEB_ADMIN;
    return n;
}

static int fsync_dir_of(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Write accounts to the users file: temporary file, fsync, rename. Call under mu. */
static int save(struct webauth *a, const struct account *acc, size_t n, char *err, size_t errlen)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "users");
    for (size_t i = 0; i < n; i++) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "name", acc[i].name);
        cJSON_AddStringToObject(u, "role", webauth_role_name(acc[i].role));
        cJSON_AddStringToObject(u, "hash", acc[i].hash);
        cJSON_AddItemToArray(list, u);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *tmp = xasprintf("%s.new", a->path);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        size_t len = strlen(text);
        bool ok = fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len &&
                  write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        if (ok && rename(tmp, a->path) == 0) {
            rc = 0;
            if (fsync_dir_of(a->path) < 0)
                log_warn("web: users file %s saved, but its directory could not be synced: %s",
                         a->path, strerror(errno));
        }
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot write users file %s: %s", a->path, strerror(errno));
        log_err("web: %s", err);
        unlink(tmp);
    }
    free(tmp);
    free(text);
    return rc;
}

/* Parse the users file's text into a; 0 or -1 with err. */
static int parse_users(struct webauth *a, const char *text, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(text);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "users");
    if (!cJSON_IsArray(list)) {
        snprintf(err, errlen, "users file %s is not JSON with a \"users\" list", a->path);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *u;
    size_t i = 0;
    cJSON_ArrayForEach(u, list)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(u, "name");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(u, "role");
        const cJSON *hash = cJSON_GetObjectItemCaseSensitive(u, "hash");
        enum web_role r;
        if (!cJSON_IsString(name) || !webauth_valid_name(name->valuestring) ||
            !cJSON_IsString(role) || webauth_role_parse(role->valuestring, &r) < 0 ||
            !cJSON_IsString(hash) || strncmp(hash->valuestring, "$argon2id$", 10) != 0 ||
            strlen(hash->valuestring) >= HASH_MAX) {
            snprintf(err, errlen,
                     "users file %s: entry %zu needs a valid \"name\", a \"role\" (viewer, "
                     "manager, installer, admin) and an argon2id \"hash\"",
                     a->path, i + 1);
            cJSON_Delete(root);
            return -1;
        }
        if (find_account(a, name->valuestring)) {
            snprintf(err, errlen, "users file %s: account \"%s\" appears twice", a->path,
                     name->valuestring);
            cJSON_Delete(root);
            return -1;
        }
        a->acc = xrealloc(a->acc, (a->nacc + 1) * sizeof(*a->acc));
        struct account *acc = &a->acc[a->nacc++];
        strlcpy_fg(acc->name, name->valuestring, sizeof(acc->name));
        acc->role = r;
        strlcpy_fg(acc->hash, hash->valuestring, sizeof(acc->hash));
        i++;
    }
    cJSON_Delete(root);
    return 0;
}

static int load(struct webauth *a, char *err, size_t errlen)
{
    int fd = open(a->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open users file %s: %s", a->path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > USERS_FILE_MAX) {
        snprintf(err, errlen, "users file %s is not a regular file of at most %d bytes", a->path,
                 USERS_FILE_MAX);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077)
        log_warn("web: users file %s is readable by others (mode %03o); it should be 0600", a->path,
                 (unsigned)(st.st_mode & 0777));
    char *text = xmalloc((size_t)st.st_size + 1);
    ssize_t n = read(fd, text, (size_t)st.st_size);
    close(fd);
    if (n != st.st_size) {
        snprintf(err, errlen, "cannot read users file %s: %s", a->path,
                 n < 0 ? strerror(errno) : "short read");
        free(text);
        return -1;
    }
    text[n] = '\0';
    int rc = parse_users(a, text, err, errlen);
    free(text);
    return rc;
}

struct webauth *webauth_open(const char *path, const struct webauth_limits *lim, char *err,
                             size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium could not be initialised");
        return NULL;
    }
    struct webauth *a = xcalloc(1, sizeof(*a));
    if (lim)
        a->lim = *lim;
    if (!a->lim.opslimit)
        a->lim.opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    if (!a->lim.memlimit)
        a->lim.memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    if (!a->lim.session_idle_ms)
        a->lim.session_idle_ms = 8 * 3600 * 1000LL;
    if (!a->lim.max_sessions)
        a->lim.max_sessions = 256;
    if (!a->lim.max_rate_entries)
        a->lim.max_rate_entries = 4096;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->hash_mu, NULL);
    a->path = xstrdup(path);
    a->sess = xcalloc(a->lim.max_sessions, sizeof(*a->sess));
    a->rate = xcalloc(a->lim.max_rate_entries, sizeof(*a->rate));
    if (load(a, err, errlen) < 0) {
        webauth_free(a);
        return NULL;
    }
    return a;
}

void webauth_free(struct webauth *a)
{
    if (!a)
        return;
    sodium_memzero(a->sess, a->lim.max_sessions * sizeof(*a->sess));
    free(a->sess);
    free(a->rate);
    free(a->acc);
    free(a->path);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->hash_mu);
    free(a);
}

bool webauth_first_run(struct webauth *a)
{
    pthread_mutex_lock(&a->mu);
    bool first = a->nacc == 0;
    pthread_mutex_unlock(&a->mu);
    return first;
}

static void random_hex(char out[65])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(out, 65, raw, sizeof(raw));
}

static void drop_expired(struct webauth *a, int64_t now_mono)
{
    size_t j = 0;
    for (size_t i = 0; i < a->nsess; i++) {
        if (now_mono - a->sess[i].last_mono < a->lim.session_idle_ms)
            a->sess[j++] = a->sess[i];
    }
    a->nsess = j;
}

/* End every session of user, except keep (may be NULL). Call under mu. */
static void drop_user_sessions(struct webauth *a, const char *user, const char *keep)
{
    size_t j = 0;
    for (size_t i = 0; i < a->nsess; i++) {
        bool kept = keep && strcmp(a->sess[i].s.id, keep) == 0;
        if (strcmp(a->sess[i].s.user, user) != 0 || kept)
            a->sess[j++] = a->sess[i];
    }
    a->nsess = j;
}

/* Start a session for acc. Call under mu. */
static void new_session(struct webauth *a, const struct account *acc, int64_t now_mono,
                        struct web_session *out)
{
    drop_expired(a, now_mono);
    if (a->nsess == a->lim.max_sessions) {
        size_t oldest = 0;
        for (size_t i = 1; i < a->nsess; i++)
            if (a->sess[i].last_mono < a->sess[oldest].last_mono)
                oldest = i;
        a->sess[oldest] = a->sess[--a->nsess];
    }
    struct session *s = &a->sess[a->nsess++];
    memset(s, 0, sizeof(*s));
    random_hex(s->s.id);
    random_hex(s->s.csrf);
    strlcpy_fg(s->s.user, acc->name, sizeof(s->s.user));
    s->s.role = acc->role;
    s->last_mono = now_mono;
    *out = s->s;
}

enum webauth_rc webauth_setup(struct webauth *a, const char *password, int64_t now_mono,
                              struct web_session *out, char *err, size_t errlen)
{
    if (!webauth_valid_password(password, err, errlen))
        return WA_INVALID;
    if (!webauth_first_run(a)) {
        snprintf(err, errlen, "the first-run setup is done: an account exists; log in");
        return WA_CONFLICT;
    }
    struct account acc = {.name = "admin", .role = WEB_ADMIN};
    if (hash_password(a, password, acc.hash) < 0) {
        snprintf(err, errlen, "password could not be hashed (out of memory?)");
        return WA_IO;
    }
    pthread_mutex_lock(&a->mu);
    enum webauth_rc rc = WA_OK;
    /* Checked again: another setup may have finished while this one hashed. */
    if (a->nacc) {
        snprintf(err, errlen, "the first-run setup is done: an account exists; log in");
        rc = WA_CONFLICT;
    } else if (save(a, &acc, 1, err, errlen) < 0) {
        rc = WA_IO;
    } else {
        a->acc = xmalloc(sizeof(*a->acc));
        a->acc[0] = acc;
        a->nacc = 1;
        new_session(a, &acc, now_mono, out);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* Check password against a hash of a random one, so an unknown name takes as long to refuse. */
static void equal_work(struct webauth *a, const char *password)
{
    char dummy[HASH_MAX];
    pthread_mutex_lock(&a->hash_mu);
    if (!a->dummy_hash[0]) {
        char pw[65];
        random_hex(pw);
        if (crypto_pwhash_str_alg(a->dummy_hash, pw, strlen(pw), a->lim.opslimit, a->lim.memlimit,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0)
            a->dummy_hash[0] = '\0';
    }
    strlcpy_fg(dummy, a->dummy_hash, sizeof(dummy));
    pthread_mutex_unlock(&a->hash_mu);
    if (dummy[0])
        verify_password(a, dummy, password ? password : "");
}

enum webauth_rc webauth_login(struct webauth *a, const char *user, const char *password,
                              int64_t now_mono, struct web_session *out)
{
    char hash[HASH_MAX] = "";
    pthread_mutex_lock(&a->mu);
    const struct account *acc = find_account(a, user);
    if (acc)
        strlcpy_fg(hash, acc->hash, sizeof(hash));
    pthread_mutex_unlock(&a->mu);
    if (!hash[0]) {
        equal_work(a, password);
        return WA_DENIED;
    }
    if (!password || !verify_password(a, hash, password))
        return WA_DENIED;
    pthread_mutex_lock(&a->mu);
    enum webauth_rc rc = WA_DENIED;
    /* The account may have been removed or changed while the password was checked. */
    acc = find_account(a, user);
    if (acc && strcmp(acc->hash, hash) == 0) {
        new_session(a, acc, now_mono, out);
        rc = WA_OK;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

static struct session *find_session(struct webauth *a, const char *id)
{
    if (!id || strlen(id) != 64)
        return NULL;
    for (size_t i = 0; i < a->nsess; i++)
        if (sodium_memcmp(a->sess[i].s.id, id, 64) == 0)
            return &a->sess[i];
    return NULL;
}

int webauth_session(struct webauth *a, const char *id, int64_t now_mono, struct web_session *out)
{
    pthread_mutex_lock(&a->mu);
    drop_expired(a, now_mono);
    struct session *s = find_session(a, id);
    if (s) {
        s->last_mono = now_mono;
        *out = s->s;
    }
    pthread_mutex_unlock(&a->mu);
    return s ? 0 : -1;
}

bool webauth_session_alive(struct webauth *a, const char *id, int64_t now_mono)
{
    pthread_mutex_lock(&a->mu);
    drop_expired(a, now_mono);
    bool alive = find_session(a, id) != NULL;
    pthread_mutex_unlock(&a->mu);
    return alive;
}

void webauth_logout(struct webauth *a, const char *id)
{
    pthread_mutex_lock(&a->mu);
    struct session *s = find_session(a, id);
    if (s)
        *s = a->sess[--a->nsess];
    pthread_mutex_unlock(&a->mu);
}

bool webauth_csrf_ok(const struct web_session *s, const char *token)
{
    if (!s || !token || strlen(token) != 64 || strlen(s->csrf) != 64)
        return false;
    return sodium_memcmp(s->csrf, token, 64) == 0;
}

/* Change role and/or password, then end the account's sessions but keep (may be NULL). */
static enum webauth_rc update(struct webauth *a, const char *name, const enum web_role *role,
                              const char *password, const char *keep, char *err, size_t errlen)
{
    char hash[HASH_MAX] = "";
    if (password) {
        if (!webauth_valid_password(password, err, errlen))
            return WA_INVALID;
        if (hash_password(a, password, hash) < 0) {
            snprintf(err, errlen, "password could not be hashed (out of memory?)");
            return WA_IO;
        }
    }
    pthread_mutex_lock(&a->mu);
    enum webauth_rc rc = WA_OK;
    struct account *acc = find_account(a, name);
    if (!acc) {
        snprintf(err, errlen, "no account \"%s\"", name);
        rc = WA_NOT_FOUND;
    } else if (role && *role != WEB_ADMIN && acc->role == WEB_ADMIN && admins(a) == 1) {
        snprintf(err, errlen, "\"%s\" is the last admin; make another admin first", name);
        rc = WA_CONFLICT;
    } else {
        struct account saved = *acc;
        if (role)
            acc->role = *role;
        if (hash[0])
            strlcpy_fg(acc->hash, hash, sizeof(acc->hash));
        if (save(a, a->acc, a->nacc, err, errlen) < 0) {
            *acc = saved;
            rc = WA_IO;
        } else {
            drop_user_sessions(a, name, keep);
        }
    }
    pthread_mutex_unlock(&a->mu);
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

enum webauth_rc webauth_change_password(struct webauth *a, const char *user,
                                        const char *keep_session, const char *old_pw,
                                        const char *new_pw, char *err, size_t errlen)
{
    if (!webauth_valid_password(new_pw, err, errlen))
        return WA_INVALID;
    char hash[HASH_MAX] = "";
    pthread_mutex_lock(&a->mu);
    const struct account *acc = find_account(a, user);
    if (acc)
        strlcpy_fg(hash, acc->hash, sizeof(hash));
    pthread_mutex_unlock(&a->mu);
    if (!hash[0]) {
        snprintf(err, errlen, "account \"%s\" no longer exists", user);
        return WA_NOT_FOUND;
    }
    if (!old_pw || !verify_password(a, hash, old_pw)) {
        snprintf(err, errlen, "the old password is wrong");
        return WA_DENIED;
    }
    return update(a, user, NULL, new_pw, keep_session, err, errlen);
}

static int cmp_account(const void *x, const void *y)
{
    return strcmp(((const struct account *)x)->name, ((const struct account *)y)->name);
}

char *webauth_users_json(struct webauth *a)
{
    pthread_mutex_lock(&a->mu);
    struct account *copy = xmalloc((a->nacc ? a->nacc : 1) * sizeof(*copy));
    memcpy(copy, a->acc, a->nacc * sizeof(*copy));
    size_t n = a->nacc;
    pthread_mutex_unlock(&a->mu);
    qsort(copy, n, sizeof(*copy), cmp_account);
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "name", copy[i].name);
        cJSON_AddStringToObject(u, "role", webauth_role_name(copy[i].role));
        cJSON_AddItemToArray(list, u);
    }
    sodium_memzero(copy, n * sizeof(*copy));
    free(copy);
    char *out = cJSON_PrintUnformatted(list);
    cJSON_Delete(list);
    return out;
}

enum webauth_rc webauth_add_user(struct webauth *a, const char *name, enum web_role role,
                                 const char *password, char *err, size_t errlen)
{
    if (!webauth_valid_name(name)) {
        snprintf(err, errlen, "name must be 1-%d of a-z 0-9 _ . - and start with a letter or digit",
                 WEBAUTH_NAME_MAX);
        return WA_INVALID;
    }
    if (!webauth_valid_password(password, err, errlen))
        return WA_INVALID;
    struct account acc = {.role = role};
    strlcpy_fg(acc.name, name, sizeof(acc.name));
    if (hash_password(a, password, acc.hash) < 0) {
        snprintf(err, errlen, "password could not be hashed (out of memory?)");
        return WA_IO;
    }
    pthread_mutex_lock(&a->mu);
    enum webauth_rc rc = WA_OK;
    if (find_account(a, name)) {
        snprintf(err, errlen, "account \"%s\" already exists", name);
        rc = WA_CONFLICT;
    } else {
        struct account *all = xmalloc((a->nacc + 1) * sizeof(*all));
        memcpy(all, a->acc, a->nacc * sizeof(*all));
        all[a->nacc] = acc;
        if (save(a, all, a->nacc + 1, err, errlen) < 0) {
            free(all);
            rc = WA_IO;
        } else {
            free(a->acc);
            a->acc = all;
            a->nacc++;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

enum webauth_rc webauth_update_user(struct webauth *a, const char *name, const enum web_role *role,
                                    const char *password, char *err, size_t errlen)
{
    return update(a, name, role, password, NULL, err, errlen);
}

enum webauth_rc webauth_delete_user(struct webauth *a, const char *name, char *err, size_t errlen)
{
    pthread_mutex_lock(&a->mu);
    enum webauth_rc rc = WA_OK;
    struct account *acc = find_account(a, name);
    if (!acc) {
        snprintf(err, errlen, "no account \"%s\"", name);
        rc = WA_NOT_FOUND;
    } else if (acc->role == WEB_ADMIN && admins(a) == 1) {
        snprintf(err, errlen, "\"%s\" is the last admin; make another admin first", name);
        rc = WA_CONFLICT;
    } else {
        size_t idx = (size_t)(acc - a->acc);
        struct account *all = xmalloc((a->nacc ? a->nacc : 1) * sizeof(*all));
        size_t n = 0;
        for (size_t i = 0; i < a->nacc; i++)
            if (i != idx)
                all[n++] = a->acc[i];
        if (save(a, all, n, err, errlen) < 0) {
            free(all);
            rc = WA_IO;
        } else {
            free(a->acc);
            a->acc = all;
            a->nacc = n;
            drop_user_sessions(a, name, NULL);
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* An attempt counts against its address and its user name, each keyed apart. */
static void rate_keys(char keys[2][RATE_KEY_MAX], const char *addr, const char *user)
{
    snprintf(keys[0], RATE_KEY_MAX, "a:%s", addr ? addr : "");
    snprintf(keys[1], RATE_KEY_MAX, "u:%s", user ? user : "");
}

/* The entry for key, created when create is set (evicting the stalest). Call under mu. */
static struct rate_entry *rate_get(struct webauth *a, const char *key, bool create,
                                   int64_t now_mono)
{
    size_t j = 0;
    struct rate_entry *found = NULL;
    for (size_t i = 0; i < a->nrate; i++) {
        struct rate_entry *r = &a->rate[i];
        bool stale = now_mono >= r->lock_until && now_mono - r->last_mono >= RATE_FORGET_MS;
        if (stale)
            continue;
        a->rate[j] = *r;
        if (strcmp(a->rate[j].key, key) == 0)
            found = &a->rate[j];
        j++;
    }
    a->nrate = j;
    if (found || !create)
        return found;
    if (a->nrate == a->lim.max_rate_entries) {
        size_t oldest = 0;
        for (size_t i = 1; i < a->nrate; i++)
            if (a->rate[i].last_mono < a->rate[oldest].last_mono)
                oldest = i;
        a->rate[oldest] = a->rate[--a->nrate];
    }
    struct rate_entry *r = &a->rate[a->nrate++];
    memset(r, 0, sizeof(*r));
    strlcpy_fg(r->key, key, sizeof(r->key));
    r->last_mono = now_mono;
    return r;
}

int64_t webauth_rate_wait(struct webauth *a, const char *addr, const char *user, int64_t now_mono)
{
    char keys[2][RATE_KEY_MAX];
    rate_keys(keys, addr, user);
    int64_t wait = 0;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < 2; i++) {
        const struct rate_entry *r = rate_get(a, keys[i], false, now_mono);
        if (r && r->lock_until - now_mono > wait)
            wait = r->lock_until - now_mono;
    }
    pthread_mutex_unlock(&a->mu);
    return wait;
}

int64_t webauth_rate_failure(struct webauth *a, const char *addr, const char *user,
                             int64_t now_mono)
{
    int64_t started = 0;
    char keys[2][RATE_KEY_MAX];
    rate_keys(keys, addr, user);
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < 2; i++) {
        struct rate_entry *r = rate_get(a, keys[i], true, now_mono);
        r->failures++;
        r->last_mono = now_mono;
        if (r->failures >= WEBAUTH_FAILURES_BEFORE_LOCK) {
            unsigned doublings = r->failures - WEBAUTH_FAILURES_BEFORE_LOCK;
            int64_t lock = WEBAUTH_LOCK_MAX_MS;
            if (doublings < 8 && ((int64_t)WEBAUTH_LOCK_FIRST_MS << doublings) < lock)
                lock = (int64_t)WEBAUTH_LOCK_FIRST_MS << doublings;
            r->lock_until = now_mono + lock;
            started = lock > started ? lock : started;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return started;
}

void webauth_rate_success(struct webauth *a, const char *addr, const char *user)
{
    char keys[2][RATE_KEY_MAX];
    rate_keys(keys, addr, user);
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < 2; i++) {
        size_t j = 0;
        for (size_t k = 0; k < a->nrate; k++)
            if (strcmp(a->rate[k].key, keys[i]) != 0)
                a->rate[j++] = a->rate[k];
        a->nrate = j;
    }
    pthread_mutex_unlock(&a->mu);
}
