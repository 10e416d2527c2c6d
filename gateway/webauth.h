/*
 * Who may use the web UI: accounts with roles, kept in a users file (JSON,
 * written atomically with mode 0600) with argon2id password hashes from
 * libsodium; login sessions held in memory with an idle timeout and a CSRF
 * token each; and the login rate limit per client address and per user name.
 * Thread-safe: every function may be called from any web handler thread.
 * Times are monotonic milliseconds passed in, so expiry and locks are tested
 * without waiting.
 */
#ifndef FIREGW_WEBAUTH_H
#define FIREGW_WEBAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Roles; each includes the ones before it. */
enum web_role { WEB_VIEWER, WEB_MANAGER, WEB_INSTALLER, WEB_ADMIN };

/* Results of account operations, mapped to HTTP statuses by the server. */
enum webauth_rc {
    WA_OK = 0,
    WA_INVALID = -1,   /* a bad name, role or password (400) */
    WA_DENIED = -2,    /* wrong user name or password (401) */
    WA_CONFLICT = -3,  /* already exists, last admin, setup already done (409) */
    WA_NOT_FOUND = -4, /* no such account (404) */
    WA_IO = -5,        /* the users file could not be written (500) */
};

#define WEBAUTH_NAME_MAX 32
#define WEBAUTH_PASSWORD_MIN 10  /* characters */
#define WEBAUTH_PASSWORD_MAX 256 /* bytes */
#define WEBAUTH_FAILURES_BEFORE_LOCK 5
#define WEBAUTH_LOCK_FIRST_MS 30000
#define WEBAUTH_LOCK_MAX_MS (15 * 60000)

/* Costs and limits; a zero field takes its default. */
struct webauth_limits {
    unsigned long long opslimit; /* argon2id passes; default libsodium's interactive (2) */
    size_t memlimit;             /* argon2id memory; default libsodium's interactive (64 MiB) */
    int64_t session_idle_ms;     /* default 8 h */
    size_t max_sessions;         /* the oldest idle one goes first; default 256 */
    size_t max_rate_entries;     /* addresses and names remembered; default 4096 */
};

/* A copy of one session, handed to a request handler. */
struct web_session {
    char id[65]; /* 256 random bits in hex: the cookie */
    char user[WEBAUTH_NAME_MAX + 1];
    enum web_role role;
    char csrf[65]; /* echoed by the client in X-CSRF-Token */
};

struct webauth;

/*
 * Load the users file at path (missing: no account yet, the first run). lim
 * may be NULL. NULL with err when the file cannot be read or is not a users
 * file. Caller webauth_free()s.
 */
struct webauth *webauth_open(const char *path, const struct webauth_limits *lim, char *err,
                             size_t errlen);
/* Forget every session and free; NULL is fine. */
void webauth_free(struct webauth *a);

/* No account exists yet: only the first-run setup may be used. */
bool webauth_first_run(struct webauth *a);

/* "viewer", "manager", "installer", "admin". */
const char *webauth_role_name(enum web_role r);
/* Parse a role name. 0 or -1. */
int webauth_role_parse(const char *s, enum web_role *out);
/* Whether s is a valid account name: 1-32 of a-z 0-9 _ . -, starting with a letter or digit. */
bool webauth_valid_name(const char *s);
/* Whether a new password is acceptable; else why not in err. */
bool webauth_valid_password(const char *pw, char *err, size_t errlen);

/*
 * First run: create account "admin" (admin role) with password and log it in
 * (out). WA_CONFLICT once any account exists, WA_INVALID for a weak password.
 */
enum webauth_rc webauth_setup(struct webauth *a, const char *password, int64_t now_mono,
                              struct web_session *out, char *err, size_t errlen);
/*
 * Check user and password; on success start a session (out). WA_DENIED
 * otherwise, taking as long for an unknown user as for a wrong password.
 */
enum webauth_rc webauth_login(struct webauth *a, const char *user, const char *password,
                              int64_t now_mono, struct web_session *out);
/* The live session with this id, touched (idle timer restarted). 0, or -1 if none. */
int webauth_session(struct webauth *a, const char *id, int64_t now_mono, struct web_session *out);
/* The session still exists, without touching it (for long-lived streams). */
bool webauth_session_alive(struct webauth *a, const char *id, int64_t now_mono);
/* End a session; unknown ids are ignored. */
void webauth_logout(struct webauth *a, const char *id);
/* Compare a CSRF token in constant time; NULL or empty never matches. */
bool webauth_csrf_ok(const struct web_session *s, const char *token);

/* Change user's own password after checking the old one; ends the user's other sessions. */
enum webauth_rc webauth_change_password(struct webauth *a, const char *user,
                                        const char *keep_session, const char *old_pw,
                                        const char *new_pw, char *err, size_t errlen);
/* Accounts as JSON [{"name","role"}], sorted by name; caller frees. */
char *webauth_users_json(struct webauth *a);
/* Add an account. */
enum webauth_rc webauth_add_user(struct webauth *a, const char *name, enum web_role role,
                                 const char *password, char *err, size_t errlen);
/*
 * Change an account's role (role may be NULL) and/or password (NULL: keep);
 * ends its sessions. The last admin cannot lose the admin role.
 */
enum webauth_rc webauth_update_user(struct webauth *a, const char *name, const enum web_role *role,
                                    const char *password, char *err, size_t errlen);
/* Remove an account and end its sessions; never the last admin. */
enum webauth_rc webauth_delete_user(struct webauth *a, const char *name, char *err, size_t errlen);

/*
 * Login rate limit. Milliseconds until a login from addr or for user may be
 * tried again (the longer of the two locks), 0 when it may be tried now.
 */
int64_t webauth_rate_wait(struct webauth *a, const char *addr, const char *user, int64_t now_mono);
/*
 * A failed login from addr for user: after WEBAUTH_FAILURES_BEFORE_LOCK
 * failures each key is locked for 30 s, doubling with every further failure
 * up to 15 min. Returns the longest lock this failure started, 0 if none.
 */
int64_t webauth_rate_failure(struct webauth *a, const char *addr, const char *user,
                             int64_t now_mono);
/* A successful login clears both keys. */
void webauth_rate_success(struct webauth *a, const char *addr, const char *user);

#endif
