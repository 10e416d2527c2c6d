/*
 * Unit tests for the [web] section of the site config (gateway/cfg.c): the
 * defaults, listen as off, IPv4 or bracketed IPv6 with a port, paths made
 * absolute beside the file, and the errors for a host name, a missing port
 * and a certificate without its key, each at its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "util.h"

#define SITE "tests/integration/site-small.conf"

/* The small site with web_lines appended; NULL with err when it does not load. */
static struct cfg *load_with(const char *web_lines, char *err, size_t errlen)
{
    FILE *f = fopen(SITE, "r");
    assert_non_null(f);
    char *text = xcalloc(1, 65536);
    size_t n = fread(text, 1, 65536 - 1024, f);
    fclose(f);
    text[n] = '\0';
    strcat(text, web_lines);
    struct cfg *cfg = cfg_load_string(text, SITE, err, errlen);
    free(text);
    return cfg;
}

static void test_defaults(void **state)
{
    (void)state;
    char err[4096];
    struct cfg *cfg = load_with("", err, sizeof(err));
    if (!cfg)
        fail_msg("%s", err);
    assert_true(cfg->web.enabled);
    assert_string_equal(cfg->web.listen_host, "127.0.0.1");
    assert_int_equal(cfg->web.listen_port, 8080);
    assert_false(cfg->web.listen_ipv6);
    assert_int_equal(cfg->web.session_timeout_ms, 8 * 3600 * 1000LL);
    assert_null(cfg->web.root);
    assert_null(cfg->web.users_file);
    assert_null(cfg->web.https_cert);
    cfg_free(cfg);
}

static void test_listen_forms_and_paths(void **state)
{
    (void)state;
    char err[4096];
    struct cfg *cfg = load_with("\n[web]\nlisten = off\n", err, sizeof(err));
    assert_non_null(cfg);
    assert_false(cfg->web.enabled);
    cfg_free(cfg);
    cfg = load_with("\n[web]\nlisten = [::1]:8443\nroot = www\nusers_file = /etc/firegw/u.json\n"
                    "https_cert = web.crt\nhttps_key = web.key\nsession_timeout = 30min\n",
                    err, sizeof(err));
    if (!cfg)
        fail_msg("%s", err);
    assert_true(cfg->web.enabled);
    assert_true(cfg->web.listen_ipv6);
    assert_string_equal(cfg->web.listen_host, "::1");
    assert_int_equal(cfg->web.listen_port, 8443);
    assert_string_equal(cfg->web.root, "tests/integration/www");
    assert_string_equal(cfg->web.users_file, "/etc/firegw/u.json");
    assert_string_equal(cfg->web.https_cert, "tests/integration/web.crt");
    assert_int_equal(cfg->web.session_timeout_ms, 30 * 60000);
    cfg_free(cfg);
}

static void test_errors_at_their_lines(void **state)
{
    (void)state;
    static const struct {
        const char *lines, *want;
    } cases[] = {
        {"[web]\nlisten = gateway.local:8080\n", "listen \"gateway.local:8080\" is not off or"},
        {"[web]\nlisten = 0.0.0.0\n", "listen \"0.0.0.0\" is not off or"},
        {"[web]\nlisten = 0.0.0.0:70000\n", "listen \"0.0.0.0:70000\" is not off or"},
        {"[web]\nlisten = [::1:8080\n", "is not off or"},
        {"[web]\nhttps_cert = a.pem\n", "https_cert and https_key go together"},
        {"[web]\nsession_timeout = 10s\n", "session_timeout \"10s\" is not a duration"},
        {"[web]\ncolour = red\n", "web: unknown key \"colour\""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char err[4096];
        struct cfg *cfg = load_with(cases[i].lines, err, sizeof(err));
        if (cfg)
            fail_msg("accepted %s", cases[i].lines);
        if (!strstr(err, cases[i].want) || !strstr(err, SITE ":"))
            fail_msg("for %s: \"%s\" lacks \"%s\"", cases[i].lines, err, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_listen_forms_and_paths),
        cmocka_unit_test(test_errors_at_their_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
