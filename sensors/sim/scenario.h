/*
 * Simulator scenarios: a text file of timed commands ("at 5s set F3-S02 value
 * 0.4") and the same commands without "at" on the control socket. This module
 * only parses; names are checked against the building by the caller, so it
 * needs no site config and is unit-tested on its own.
 */
#ifndef FIREGW_SIM_SCENARIO_H
#define FIREGW_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

#define SCN_NAME_MAX 64

enum scn_op {
    SCN_NOISE,     /* noise on|off */
    SCN_SET,       /* set TARGET value V */
    SCN_RAMP,      /* ramp TARGET value V over DURATION */
    SCN_BIT,       /* bit TARGET ROLE on|off */
    SCN_SILENT,    /* silent TARGET on|off */
    SCN_LIFECHECK, /* lifecheck TARGET stop|start */
    SCN_RAW,       /* raw TARGET POINT RAW */
    SCN_REPLY,     /* reply TARGET normal|garbage|short|crc|exception CODE */
    SCN_STALL,     /* stall BUS on|off: the line stops answering, then answers what piled up */
    SCN_UNPLUG,    /* unplug BUS: an RTU bus's serial device disappears */
    SCN_PLUG,      /* plug BUS: it comes back at the same path */
    SCN_RESET,     /* everything back to baseline */
    SCN_END,       /* scenario ends; the building keeps its state */
    SCN_LOOP,      /* scenario starts over */
    SCN_STATUS,    /* control socket only: one-line summary */
    SCN_QUIT,      /* control socket only: stop the simulator */
};

/* How a device answers (SCN_REPLY): faults on the wire rather than in its registers. */
enum scn_reply {
    SCN_REPLY_NORMAL,
    SCN_REPLY_GARBAGE,   /* bytes that are no Modbus reply */
    SCN_REPLY_SHORT,     /* a well-framed reply with two data bytes fewer than asked for */
    SCN_REPLY_CRC,       /* RTU: the right reply with a wrong CRC */
    SCN_REPLY_EXCEPTION, /* a Modbus exception response with the code in scn_cmd.code */
};

struct scn_cmd {
    enum scn_op op;
    char target[SCN_NAME_MAX + 1]; /* detector, device or (stall, unplug, plug) bus id */
    char point[SCN_NAME_MAX + 1];  /* SCN_RAW: profile point name */
    enum point_role role;          /* SCN_BIT: alarm prealarm fault maintenance disabled */
    bool on;                       /* noise/bit/silent on; lifecheck start */
    double value;                  /* SCN_SET, SCN_RAMP: engineering units */
    int64_t duration_ms;           /* SCN_RAMP */
    int64_t raw;                   /* SCN_RAW: 0..0xFFFFFFFF or a negative signed value */
    enum scn_reply reply;          /* SCN_REPLY */
    int code;                      /* SCN_REPLY_EXCEPTION: Modbus exception code 1..11 */
};

struct scn_step {
    int64_t at_ms; /* from the scenario's start, non-decreasing */
    int line;
    struct scn_cmd cmd;
};

struct scenario {
    char *path;
    struct scn_step *steps;
    size_t nsteps;
};

/*
 * Parse one command without "at" (a control socket line). Returns 0, or -1
 * with the reason in err. status and quit are accepted only if control is true.
 */
int scn_parse_command(const char *line, bool control, struct scn_cmd *cmd, char *err,
                      size_t errlen);

/*
 * Load a scenario file. On failure returns NULL and writes every problem, one
 * "path:line: message" per line, into err. Caller owns the result (scn_free).
 */
struct scenario *scn_load(const char *path, char *err, size_t errlen);
/* Same from a string; name stands for the path in messages. */
struct scenario *scn_load_string(const char *text, const char *name, char *err, size_t errlen);
void scn_free(struct scenario *s);

/* The command word of an op, e.g. "ramp". */
const char *scn_op_name(enum scn_op op);
/* The word of a reply mode, e.g. "garbage". */
const char *scn_reply_name(enum scn_reply r);

#endif
