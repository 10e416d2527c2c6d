/*
 * Unit tests for the simulator's scenario parser: a file using every command,
 * fractional and unit-bearing times, control-only commands, and the exact
 * "file:line: message" of each kind of mistake.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scenario.h"

static void every_command_parses_in_order(void **state)
{
    (void)state;
    char err[1024] = "";
    const char *good = "at 0s noise on\n"
                       "at 250ms set F3-S02 value 0.4\n"
                       "at 1.5s ramp F3-S02 value 3.5 over 60s # slow rise\n"
                       "at 10s bit F2-S03 fault on\n"
                       "at 10s bit P-Z1 alarm off\n"
                       "at 20s silent F5-H01 on\n"
                       "at 30s lifecheck PANEL stop\n"
                       "at 31s lifecheck PANEL start\n"
                       "at 40s raw F3-S02 obscuration 65535\n"
                       "at 41s raw F3-S02 obscuration 0x7fc0\n"
                       "at 42s raw rs485-a/7 temp -2\n"
                       "at 1min reset\n"
                       "\tat 90s noise off\n"
                       "at 90s end\n";
    struct scenario *s = scn_load_string(good, "good.scn", err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(err, "");
    assert_int_equal(s->nsteps, 14);

    assert_int_equal(s->steps[0].cmd.op, SCN_NOISE);
    assert_true(s->steps[0].cmd.on);
    assert_int_equal(s->steps[0].at_ms, 0);
    assert_int_equal(s->steps[0].line, 1);

    assert_int_equal(s->steps[1].cmd.op, SCN_SET);
    assert_int_equal(s->steps[1].at_ms, 250);
    assert_string_equal(s->steps[1].cmd.target, "F3-S02");
    assert_true(s->steps[1].cmd.value > 0.399 && s->steps[1].cmd.value < 0.401);

    assert_int_equal(s->steps[2].cmd.op, SCN_RAMP);
    assert_int_equal(s->steps[2].at_ms, 1500);
    assert_int_equal(s->steps[2].cmd.duration_ms, 60000);
    assert_true(s->steps[2].cmd.value > 3.499 && s->steps[2].cmd.value < 3.501);

    assert_int_equal(s->steps[3].cmd.op, SCN_BIT);
    assert_int_equal(s->steps[3].cmd.role, ROLE_FAULT);
    assert_true(s->steps[3].cmd.on);
    assert_int_equal(s->steps[4].cmd.role, ROLE_ALARM);
    assert_false(s->steps[4].cmd.on);
    assert_string_equal(s->steps[4].cmd.target, "P-Z1");

    assert_int_equal(s->steps[5].cmd.op, SCN_SILENT);
    assert_true(s->steps[5].cmd.on);
    assert_string_equal(s->steps[5].cmd.target, "F5-H01");

    assert_int_equal(s->steps[6].cmd.op, SCN_LIFECHECK);
    assert_false(s->steps[6].cmd.on);
    assert_true(s->steps[7].cmd.on);

    assert_int_equal(s->steps[8].cmd.op, SCN_RAW);
    assert_string_equal(s->steps[8].cmd.point, "obscuration");
    assert_int_equal(s->steps[8].cmd.raw, 65535);
    assert_int_equal(s->steps[9].cmd.raw, 0x7fc0);
    assert_string_equal(s->steps[10].cmd.target, "rs485-a/7");
    assert_int_equal(s->steps[10].cmd.raw, -2);

    assert_int_equal(s->steps[11].cmd.op, SCN_RESET);
    assert_int_equal(s->steps[11].at_ms, 60000);
    assert_int_equal(s->steps[12].cmd.op, SCN_NOISE);
    assert_false(s->steps[12].cmd.on);
    assert_int_equal(s->steps[12].line, 13);
    assert_int_equal(s->steps[13].cmd.op, SCN_END);
    assert_string_equal(s->path, "good.scn");
    scn_free(s);
}

static void wire_and_line_faults_parse(void **state)
{
    (void)state;
    char err[512] = "";
    const char *text = "at 0s reply T-S1 garbage\n"
                       "at 1s reply T-S1 short\n"
                       "at 2s reply R-S1 crc\n"
                       "at 3s reply tcp1/2 exception 4\n"
                       "at 4s reply T-S1 normal\n"
                       "at 5s stall tcp1 on\n"
                       "at 6s stall tcp1 off\n"
                       "at 7s unplug rtu1\n"
                       "at 8s plug rtu1\n";
    struct scenario *s = scn_load_string(text, "wire.scn", err, sizeof(err));
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(s->nsteps, 9);
    assert_int_equal(s->steps[0].cmd.op, SCN_REPLY);
    assert_int_equal(s->steps[0].cmd.reply, SCN_REPLY_GARBAGE);
    assert_string_equal(s->steps[0].cmd.target, "T-S1");
    assert_int_equal(s->steps[1].cmd.reply, SCN_REPLY_SHORT);
    assert_int_equal(s->steps[2].cmd.reply, SCN_REPLY_CRC);
    assert_int_equal(s->steps[3].cmd.reply, SCN_REPLY_EXCEPTION);
    assert_int_equal(s->steps[3].cmd.code, 4);
    assert_string_equal(s->steps[3].cmd.target, "tcp1/2");
    assert_int_equal(s->steps[4].cmd.reply, SCN_REPLY_NORMAL);
    assert_int_equal(s->steps[5].cmd.op, SCN_STALL);
    assert_true(s->steps[5].cmd.on);
    assert_false(s->steps[6].cmd.on);
    assert_int_equal(s->steps[7].cmd.op, SCN_UNPLUG);
    assert_string_equal(s->steps[7].cmd.target, "rtu1");
    assert_int_equal(s->steps[8].cmd.op, SCN_PLUG);
    assert_string_equal(scn_op_name(SCN_UNPLUG), "unplug");
    assert_string_equal(scn_reply_name(SCN_REPLY_CRC), "crc");
    scn_free(s);
}

static void loop_is_accepted_after_time_passed(void **state)
{
    (void)state;
    char err[256] = "";
    struct scenario *s =
        scn_load_string("at 0s noise on\nat 2.5s loop\n", "loop.scn", err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(s->nsteps, 2);
    assert_int_equal(s->steps[1].cmd.op, SCN_LOOP);
    assert_int_equal(s->steps[1].at_ms, 2500);
    scn_free(s);
}

static void empty_and_comment_only_files_have_no_steps(void **state)
{
    (void)state;
    char err[256] = "";
    struct scenario *s = scn_load_string("# nothing\n\n   \n", "empty.scn", err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(s->nsteps, 0);
    scn_free(s);
}

struct bad_case {
    const char *text;
    const char *expect; /* the whole error text */
};

static const struct bad_case bad_cases[] = {
    {"set X value 1\n", "bad.scn:1: a step is 'at TIME COMMAND ...', e.g. 'at 5s noise on'\n"},
    {"at 5 noise on\n", "bad.scn:1: '5' is not a duration from 0 to 604800 s (give a unit: "
                        "250ms, 1.5s, 2min, 1h)\n"},
    {"# c\nat 1s smoke X\n", "bad.scn:2: unknown command 'smoke' (expected noise, set, ramp, "
                             "bit, silent, lifecheck, raw, reply, stall, unplug, plug, reset, "
                             "end or loop)\n"},
    {"at 1s set X 0.4\n", "bad.scn:1: usage: set DETECTOR value NUMBER\n"},
    {"at 1s set X value abc\n", "bad.scn:1: 'abc' is not a number between -1e+09 and 1e+09\n"},
    {"at 1s set X value nan\n", "bad.scn:1: 'nan' is not a number between -1e+09 and 1e+09\n"},
    {"at 1s ramp X value 3 over 60\n", "bad.scn:1: '60' is not a duration from 0 to 86400 s "
                                       "(give a unit: 250ms, 1.5s, 2min, 1h)\n"},
    {"at 1s ramp X value 3 in 60s\n", "bad.scn:1: usage: ramp DETECTOR value NUMBER over "
                                      "DURATION\n"},
    {"at 1s bit X fire on\n", "bad.scn:1: unknown status bit 'fire' (expected alarm, prealarm, "
                              "fault, maintenance or disabled)\n"},
    {"at 1s bit X fault yes\n", "bad.scn:1: expected on or off, got 'yes'\n"},
    {"at 1s silent X\n", "bad.scn:1: usage: silent DETECTOR|DEVICE on|off\n"},
    {"at 1s lifecheck P on\n", "bad.scn:1: expected start or stop, got 'on'\n"},
    {"at 1s raw X obscuration 70000000000\n",
     "bad.scn:1: '70000000000' is not a raw register value (-2147483648..4294967295, or 0x "
     "hex)\n"},
    {"at 1s raw X obs$ 1\n", "bad.scn:1: 'obs$' is not a valid id (letters, digits, _ . - /)\n"},
    {"at 1s reset now\n", "bad.scn:1: 'reset' takes no arguments\n"},
    {"at 1s reply X slow\n",
     "bad.scn:1: usage: reply DEVICE|DETECTOR normal|garbage|short|crc|exception CODE\n"},
    {"at 1s reply X exception\n",
     "bad.scn:1: usage: reply DEVICE|DETECTOR normal|garbage|short|crc|exception CODE\n"},
    {"at 1s reply X garbage 4\n",
     "bad.scn:1: usage: reply DEVICE|DETECTOR normal|garbage|short|crc|exception CODE\n"},
    {"at 1s reply X exception 12\n", "bad.scn:1: '12' is not a Modbus exception code (1 to 11)\n"},
    {"at 1s stall rtu1\n", "bad.scn:1: usage: stall BUS on|off\n"},
    {"at 1s unplug\n", "bad.scn:1: usage: unplug BUS\n"},
    {"at 1s plug rtu1 now\n", "bad.scn:1: usage: plug BUS\n"},
    {"at 1s status\n", "bad.scn:1: 'status' is a control socket command, not a scenario step\n"},
    {"at 0s loop\n", "bad.scn:1: loop at 0s would repeat forever without time passing\n"},
    {"at 10s noise on\nat 5s noise off\n",
     "bad.scn:2: time 5s is before the previous step's (10000 ms); steps must be in time "
     "order\n"},
    {"at 1s end\nat 2s noise on\n",
     "bad.scn:2: step after the scenario's end or loop (line 1) never runs\n"},
    {"at 1s set X value 1 2 3 4 5 6 7 8 9 10 11 12\n", "bad.scn:1: too many words (at most 14)\n"},
};

static void each_mistake_names_file_line_and_problem(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        char err[512] = "";
        struct scenario *s = scn_load_string(bad_cases[i].text, "bad.scn", err, sizeof(err));
        if (s)
            fail_msg("case %zu was accepted: %s", i, bad_cases[i].text);
        if (strcmp(err, bad_cases[i].expect) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, err, bad_cases[i].expect);
    }
}

static void every_error_of_a_file_is_reported(void **state)
{
    (void)state;
    char err[1024] = "";
    const char *text = "at 0s noise on\n"
                       "at 1s set X value\n"
                       "at 2s noise on\n"
                       "at 3s bogus\n";
    struct scenario *s = scn_load_string(text, "two.scn", err, sizeof(err));
    assert_null(s);
    assert_non_null(strstr(err, "two.scn:2: usage: set DETECTOR value NUMBER\n"));
    assert_non_null(strstr(err, "two.scn:4: unknown command 'bogus'"));
    assert_null(strstr(err, "two.scn:1:"));
    assert_null(strstr(err, "two.scn:3:"));
}

static void small_error_buffer_is_truncated_not_overrun(void **state)
{
    (void)state;
    char err[24];
    memset(err, 'x', sizeof(err));
    struct scenario *s = scn_load_string("nope\nnope\nnope\n", "small.scn", err, 20);
    assert_null(s);
    assert_int_equal(strlen(err), 19);
    assert_int_equal(err[23], 'x');
}

static void control_commands(void **state)
{
    (void)state;
    struct scn_cmd c;
    char err[256];
    assert_int_equal(scn_parse_command("status", true, &c, err, sizeof(err)), 0);
    assert_int_equal(c.op, SCN_STATUS);
    assert_int_equal(scn_parse_command("quit\r\n", true, &c, err, sizeof(err)), 0);
    assert_int_equal(c.op, SCN_QUIT);
    assert_int_equal(scn_parse_command("  set T-S1 value 2.6  ", true, &c, err, sizeof(err)), 0);
    assert_int_equal(c.op, SCN_SET);
    assert_string_equal(c.target, "T-S1");
    assert_int_equal(scn_parse_command("lifecheck panel stop", true, &c, err, sizeof(err)), 0);
    assert_int_equal(c.op, SCN_LIFECHECK);
    assert_false(c.on);

    assert_int_equal(scn_parse_command("status", false, &c, err, sizeof(err)), -1);
    assert_int_equal(scn_parse_command("", true, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "empty command");
    assert_int_equal(scn_parse_command("at 5s noise on", true, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown command 'at'"));

    char longid[SCN_NAME_MAX + 32];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    char line[sizeof(longid) + 32];
    snprintf(line, sizeof(line), "silent %s on", longid);
    assert_int_equal(scn_parse_command(line, true, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is not a valid id (1 to 64 characters)"));
}

static void op_names_match_the_language(void **state)
{
    (void)state;
    assert_string_equal(scn_op_name(SCN_RAMP), "ramp");
    assert_string_equal(scn_op_name(SCN_LIFECHECK), "lifecheck");
    assert_string_equal(scn_op_name(SCN_QUIT), "quit");
}

static void file_errors_name_the_path(void **state)
{
    (void)state;
    char err[512] = "";
    assert_null(scn_load("/nonexistent/x.scn", err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/x.scn: cannot open scenario: No such file or "
                             "directory\n");

    char path[] = "/tmp/test_scenario_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "at 0s noise on\nat 1s set A value 1\nat 2s set A vale 1\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    err[0] = '\0';
    assert_null(scn_load(path, err, sizeof(err)));
    char want[128];
    snprintf(want, sizeof(want), "%s:3: usage: set DETECTOR value NUMBER\n", path);
    assert_string_equal(err, want);
    unlink(path);
}

static void shipped_scenarios_parse(void **state)
{
    (void)state;
    static const char *files[] = {"normal",    "smouldering",     "flaming", "silent-detector",
                                  "fault-bit", "panel-lifecheck", "demo"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[256], err[2048] = "";
        snprintf(path, sizeof(path), "sensors/scenarios/%s.scn", files[i]);
        struct scenario *s = scn_load(path, err, sizeof(err));
        if (!s)
            fail_msg("%s", err);
        assert_true(s->nsteps > 0);
        scn_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_command_parses_in_order),
        cmocka_unit_test(wire_and_line_faults_parse),
        cmocka_unit_test(loop_is_accepted_after_time_passed),
        cmocka_unit_test(empty_and_comment_only_files_have_no_steps),
        cmocka_unit_test(each_mistake_names_file_line_and_problem),
        cmocka_unit_test(every_error_of_a_file_is_reported),
        cmocka_unit_test(small_error_buffer_is_truncated_not_overrun),
        cmocka_unit_test(control_commands),
        cmocka_unit_test(op_names_match_the_language),
        cmocka_unit_test(file_errors_name_the_path),
        cmocka_unit_test(shipped_scenarios_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
