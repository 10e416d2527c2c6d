/*
 * Unit tests for gateway/ini.c: what the tokenizer accepts (comments,
 * headers, quoting, UTF-8, CRLF) and the exact errors for what it refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "util.h"

static void test_items(void **state)
{
    (void)state;
    const char *text = "\xef\xbb\xbf# comment\r\n"
                       "  [site]   # header comment\r\n"
                       "name = Chung cư Hoa Sen   # trailing\n"
                       "model=SD#2\n"
                       "empty =\n"
                       "q = \"  a \\\"b\\\" \\\\ # c  \"  # after\n"
                       "\t[bus rs485-a]\n"
                       "   \n"
                       "last = no newline";
    struct ini_file f;
    char err[256] = "";
    struct ini_errors e;
    ini_errors_init(&e, err, sizeof(err));
    assert_int_equal(ini_parse(text, "t.conf", &f, &e), 0);
    assert_string_equal(err, "");
    assert_int_equal(f.count, 7);
    assert_int_equal(f.items[0].kind, INI_SECTION);
    assert_string_equal(f.items[0].name, "site");
    assert_null(f.items[0].value);
    assert_int_equal(f.items[0].line, 2);
    assert_string_equal(f.items[1].value, "Chung cư Hoa Sen");
    assert_string_equal(f.items[2].value, "SD#2");
    assert_string_equal(f.items[3].value, "");
    assert_string_equal(f.items[4].value, "  a \"b\" \\ # c  ");
    assert_string_equal(f.items[5].name, "bus");
    assert_string_equal(f.items[5].value, "rs485-a");
    assert_int_equal(f.items[5].line, 7);
    assert_string_equal(f.items[6].name, "last");
    assert_string_equal(f.items[6].value, "no newline");
    assert_int_equal(f.items[6].line, 9);
    ini_free(&f);
}

static void test_errors(void **state)
{
    (void)state;
    const char *text = "just words\n"
                       "[Bus a]\n"
                       "k = 1\n"
                       "[bus a b]\n"
                       "[bus a] x\n"
                       "v = \"open\n"
                       "v = \"x\" y\n"
                       "v = \"\\t\"\n"
                       "bad\xc3\x28 = 1\n"
                       "ctl = a\x01z\n"
                       "= 3\n";
    struct ini_file f;
    char err[2048] = "";
    struct ini_errors e;
    ini_errors_init(&e, err, sizeof(err));
    assert_int_equal(ini_parse(text, "t.conf", &f, &e), -1);
    assert_string_equal(
        err,
        "t.conf:1: expected \"key = value\", \"[section]\" or \"# comment\", found \"just "
        "words\"\n"
        "t.conf:2: a section type is lowercase letters, as in [bus rs485-a]\n"
        "t.conf:4: a section name has no blanks, quotes, '[' or '#'\n"
        "t.conf:5: text after the section header's ']'\n"
        "t.conf:6: quoted value without a closing '\"'\n"
        "t.conf:7: text after the closing '\"' of a quoted value\n"
        "t.conf:8: only \\\" and \\\\ are escapes in a quoted value\n"
        "t.conf:9: the line is not valid UTF-8 (byte 4)\n"
        "t.conf:10: control character 0x01 in the line\n"
        "t.conf:11: expected \"key = value\", \"[section]\" or \"# comment\", found \"= 3\"\n");
    assert_int_equal(e.count, 10);
    /* A broken header is kept as a marker so its keys are not taken for the previous section's. */
    assert_int_equal(f.items[0].kind, INI_BAD_SECTION);
    assert_int_equal(f.items[1].kind, INI_KEY);
    assert_string_equal(f.items[1].name, "k");
    ini_free(&f);
}

static void test_error_buffer_full(void **state)
{
    (void)state;
    char err[32];
    memset(err, 'x', sizeof(err));
    err[0] = '\0';
    struct ini_errors e;
    ini_errors_init(&e, err, sizeof(err));
    ini_error(&e, "a.conf", 3, "%s", "first problem");
    assert_string_equal(err, "a.conf:3: first problem\n");
    ini_error(&e, "a.conf", 4, "%s", "a second problem that does not fit");
    assert_true(strlen(err) < sizeof(err));
    assert_int_equal(e.count, 2);
    ini_errors_init(&e, NULL, 0);
    ini_error(&e, "a.conf", 0, "counted only");
    assert_int_equal(e.count, 1);
}

static void test_read_file(void **state)
{
    (void)state;
    char err[256] = "";
    struct ini_errors e;
    ini_errors_init(&e, err, sizeof(err));
    char *text = ini_read_file("tests/fixtures/good-minimal.conf", &e);
    assert_non_null(text);
    assert_non_null(strstr(text, "[detector D1]"));
    free(text);
    assert_null(ini_read_file("tests/fixtures", &e));
    assert_string_equal(err, "tests/fixtures: cannot read: Is a directory\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_buffer_full),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
