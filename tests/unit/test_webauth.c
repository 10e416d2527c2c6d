/*
 * Unit tests for gateway/webauth.c: argon2id hashes that verify only the
 * right password and are all the users file keeps (mode 0600), the first-run
 * setup that works once, sessions that end after their idle time, CSRF tokens
 * compared exactly, account rules (the last admin stays), and the login rate
 * limit's 5 failures, 30 s lock and doubling up to 15 min, with time passed in.
 * Hashing uses libsodium's smallest limits to keep the tests fast.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util.h"
#include "webauth.h"

#define GOOD "correct horse battery"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    strlcpy_fg(f->dir, "/tmp/firegw-webauth-XXXXXX", sizeof(f->dir));
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/users.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char *bak = xasprintf("%s.new", f->path);
    unlink(bak);
    free(bak);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct webauth *open_fast(const char *path, int64_t idle_ms)
{
    struct webauth_limits lim = {.opslimit = crypto_pwhash_OPSLIMIT_MIN,
                                 .memlimit = crypto_pwhash_MEMLIMIT_MIN,
                                 .session_idle_ms = idle_ms};
    char err[256] = "";
    struct webauth *a = webauth_open(path, &lim, err, sizeof(err));
    if (!a)
        fail_msg("webauth_open: %s", err);
    return a;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *buf = xcalloc(1, 65536);
    size_t n = fread(buf, 1, 65535, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void test_first_run_setup_once_and_hash_only(void **state)
{
    struct fixture *f = *state;
    struct webauth *a = open_fast(f->path, 60000);
    struct web_session s;
    char err[256];
    assert_true(webauth_first_run(a));
    assert_int_equal(webauth_setup(a, "short", 0, &s, err, sizeof(err)), WA_INVALID);
    assert_non_null(strstr(err, "at least 10 characters"));
    assert_true(webauth_first_run(a));
    assert_int_equal(webauth_setup(a, GOOD, 0, &s, err, sizeof(err)), WA_OK);
    assert_string_equal(s.user, "admin");
    assert_int_equal(s.role, WEB_ADMIN);
    assert_int_equal(strlen(s.id), 64);
    assert_int_equal(strlen(s.csrf), 64);
    assert_string_not_equal(s.id, s.csrf);
    assert_false(webauth_first_run(a));
    assert_int_equal(webauth_setup(a, GOOD "2", 0, &s, err, sizeof(err)), WA_CONFLICT);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = slurp(f->path);
    assert_non_null(strstr(text, "$argon2id$"));
    assert_null(strstr(text, GOOD));
    free(text);
    webauth_free(a);

    /* A new process reads the account back and checks passwords against the hash. */
    a = open_fast(f->path, 60000);
    assert_false(webauth_first_run(a));
    assert_int_equal(webauth_login(a, "admin", GOOD, 0, &s), WA_OK);
    assert_int_equal(webauth_login(a, "admin", GOOD "x", 0, &s), WA_DENIED);
    assert_int_equal(webauth_login(a, "admin", "", 0, &s), WA_DENIED);
    assert_int_equal(webauth_login(a, "nobody", GOOD, 0, &s), WA_DENIED);
    assert_int_equal(webauth_login(a, NULL, NULL, 0, &s), WA_DENIED);
    webauth_free(a);
}

static void test_sessions_end_when_idle_or_logged_out(void **state)
{
    struct fixture *f = *state;
    struct webauth *a = open_fast(f->path, 1000);
    struct web_session s, got;
    char err[256];
    assert_int_equal(webauth_setup(a, GOOD, 0, &s, err, sizeof(err)), WA_OK);
    assert_int_equal(webauth_session(a, s.id, 999, &got), 0);
    assert_string_equal(got.csrf, s.csrf);
    /* Touched at 999: alive until 1999. Looking without touching does not extend it. */
    assert_true(webauth_session_alive(a, s.id, 1998));
    assert_int_equal(webauth_session(a, s.id, 1998, &got), 0);
    assert_false(webauth_session_alive(a, s.id, 2998));
    assert_int_equal(webauth_session(a, s.id, 2998, &got), -1);

    struct web_session s2;
    assert_int_equal(webauth_login(a, "admin", GOOD, 5000, &s2), WA_OK);
    assert_string_not_equal(s2.id, s.id);
    assert_int_equal(webauth_session(a, s2.id, 5001, &got), 0);
    webauth_logout(a, s2.id);
    assert_int_equal(webauth_session(a, s2.id, 5002, &got), -1);
    /* Ids that are not 64 characters, or unknown, find nothing. */
    assert_int_equal(webauth_session(a, "", 5002, &got), -1);
    assert_int_equal(webauth_session(a, NULL, 5002, &got), -1);
    char forged[65];
    memset(forged, 'a', 64);
    forged[64] = '\0';
    assert_int_equal(webauth_session(a, forged, 5002, &got), -1);
    webauth_free(a);
}

static void test_csrf_compared_exactly(void **state)
{
    (void)state;
    struct web_session s;
    memset(&s, 0, sizeof(s));
    memset(s.csrf, 'b', 64);
    char tok[65];
    memcpy(tok, s.csrf, 65);
    assert_true(webauth_csrf_ok(&s, tok));
    tok[63] = 'c';
    assert_false(webauth_csrf_ok(&s, tok));
    tok[63] = '\0';
    assert_false(webauth_csrf_ok(&s, tok)); /* a prefix */
    assert_false(webauth_csrf_ok(&s, ""));
    assert_false(webauth_csrf_ok(&s, NULL));
    assert_false(webauth_csrf_ok(NULL, s.csrf));
    struct web_session none;
    memset(&none, 0, sizeof(none));
    assert_false(webauth_csrf_ok(&none, "")); /* no session: nothing matches */
}

static void test_rate_limit_locks_and_doubles(void **state)
{
    struct fixture *f = *state;
    struct webauth *a = open_fast(f->path, 60000);
    int64_t t = 1000000;
    for (int i = 0; i < 4; i++)
        assert_int_equal(webauth_rate_failure(a, "10.0.0.1", "admin", t), 0);
    assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "admin", t), 0);
    assert_int_equal(webauth_rate_failure(a, "10.0.0.1", "admin", t), 30000);
    assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "admin", t), 30000);
    assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "admin", t + 29999), 1);
    assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "admin", t + 30000), 0);
    /* The address is locked for any name, the name from any address. */
    assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "other", t + 1), 29999);
    assert_int_equal(webauth_rate_wait(a, "10.0.0.2", "admin", t + 1), 29999);
    assert_int_equal(webauth_rate_wait(a, "10.0.0.2", "other", t + 1), 0);

    int64_t expect = 60000;
    for (int i = 0; i < 8; i++) {
        t += 31000;
        webauth_rate_failure(a, "10.0.0.1", "admin", t);
        assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "admin", t), expect);
        expect = expect * 2 > WEBAUTH_LOCK_MAX_MS ? WEBAUTH_LOCK_MAX_MS : expect * 2;
    }
    assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "admin", t), WEBAUTH_LOCK_MAX_MS);
    webauth_rate_success(a, "10.0.0.1", "admin");
    assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "admin", t), 0);
    /* A fresh count after success: four more failures do not lock. */
    for (int i = 0; i < 4; i++)
        webauth_rate_failure(a, "10.0.0.1", "admin", t);
    assert_int_equal(webauth_rate_wait(a, "10.0.0.1", "admin", t), 0);
    webauth_free(a);
}

static void test_accounts_keep_an_admin(void **state)
{
    struct fixture *f = *state;
    struct webauth *a = open_fast(f->path, 60000);
    struct web_session s, op, got;
    char err[256];
    assert_int_equal(webauth_setup(a, GOOD, 0, &s, err, sizeof(err)), WA_OK);
    assert_int_equal(webauth_add_user(a, "op-1", WEB_MANAGER, "manager pass 1", err, sizeof(err)),
                     WA_OK);
    assert_int_equal(webauth_add_user(a, "op-1", WEB_VIEWER, "manager pass 1", err, sizeof(err)),
                     WA_CONFLICT);
    assert_int_equal(
        webauth_add_user(a, "Bad Name", WEB_VIEWER, "manager pass 1", err, sizeof(err)),
        WA_INVALID);
    assert_int_equal(webauth_add_user(a, "x", WEB_VIEWER, "short", err, sizeof(err)), WA_INVALID);
    char *json = webauth_users_json(a);
    assert_string_equal(json, "[{\"name\":\"admin\",\"role\":\"admin\"},"
                              "{\"name\":\"op-1\",\"role\":\"manager\"}]");
    free(json);

    enum web_role viewer = WEB_VIEWER;
    assert_int_equal(webauth_update_user(a, "admin", &viewer, NULL, err, sizeof(err)), WA_CONFLICT);
    assert_int_equal(webauth_delete_user(a, "admin", err, sizeof(err)), WA_CONFLICT);
    assert_non_null(strstr(err, "last admin"));
    assert_int_equal(webauth_delete_user(a, "nobody", err, sizeof(err)), WA_NOT_FOUND);

    /* A role change ends the account's sessions. */
    assert_int_equal(webauth_login(a, "op-1", "manager pass 1", 0, &op), WA_OK);
    assert_int_equal(webauth_update_user(a, "op-1", &viewer, NULL, err, sizeof(err)), WA_OK);
    assert_int_equal(webauth_session(a, op.id, 1, &got), -1);
    assert_int_equal(webauth_login(a, "op-1", "manager pass 1", 2, &op), WA_OK);
    assert_int_equal(op.role, WEB_VIEWER);

    /* Own password: the old one is checked; other sessions end, this one stays. */
    struct web_session other;
    assert_int_equal(webauth_login(a, "op-1", "manager pass 1", 3, &other), WA_OK);
    assert_int_equal(webauth_change_password(a, "op-1", op.id, "wrong pass 11", "new password 2",
                                             err, sizeof(err)),
                     WA_DENIED);
    assert_int_equal(webauth_change_password(a, "op-1", op.id, "manager pass 1", "new password 2",
                                             err, sizeof(err)),
                     WA_OK);
    assert_int_equal(webauth_session(a, op.id, 4, &got), 0);
    assert_int_equal(webauth_session(a, other.id, 4, &got), -1);
    assert_int_equal(webauth_login(a, "op-1", "manager pass 1", 5, &got), WA_DENIED);
    assert_int_equal(webauth_login(a, "op-1", "new password 2", 5, &got), WA_OK);

    assert_int_equal(webauth_delete_user(a, "op-1", err, sizeof(err)), WA_OK);
    assert_int_equal(webauth_login(a, "op-1", "new password 2", 6, &got), WA_DENIED);
    webauth_free(a);
}

static void test_bad_users_file_is_refused(void **state)
{
    struct fixture *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("{\"users\":[{\"name\":\"admin\",\"role\":\"root\",\"hash\":\"x\"}]}", fp);
    fclose(fp);
    char err[256] = "";
    struct webauth_limits lim = {.opslimit = crypto_pwhash_OPSLIMIT_MIN,
                                 .memlimit = crypto_pwhash_MEMLIMIT_MIN};
    assert_null(webauth_open(f->path, &lim, err, sizeof(err)));
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "entry 1"));
    fp = fopen(f->path, "w");
    fputs("not json", fp);
    fclose(fp);
    assert_null(webauth_open(f->path, &lim, err, sizeof(err)));
    assert_non_null(strstr(err, "is not JSON"));
}

static void test_names_and_roles(void **state)
{
    (void)state;
    enum web_role r;
    assert_int_equal(webauth_role_parse("installer", &r), 0);
    assert_int_equal(r, WEB_INSTALLER);
    assert_int_equal(webauth_role_parse("root", &r), -1);
    assert_string_equal(webauth_role_name(WEB_MANAGER), "manager");
    assert_true(webauth_valid_name("nguyen.van-a_2"));
    assert_false(webauth_valid_name("-lead"));
    assert_false(webauth_valid_name("Admin"));
    assert_false(webauth_valid_name("a b"));
    assert_false(webauth_valid_name(""));
    assert_false(webauth_valid_name("abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
    char err[128];
    assert_true(webauth_valid_password("Mật khẩu mười", err, sizeof(err)));
    assert_false(webauth_valid_password("Mật khẩu", err, sizeof(err))); /* 8 characters */
    assert_false(webauth_valid_password("abcdefghij\n", err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_run_setup_once_and_hash_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_end_when_idle_or_logged_out, setup, teardown),
        cmocka_unit_test(test_csrf_compared_exactly),
        cmocka_unit_test_setup_teardown(test_rate_limit_locks_and_doubles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts_keep_an_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_users_file_is_refused, setup, teardown),
        cmocka_unit_test(test_names_and_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
