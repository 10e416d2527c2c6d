/*
 * Fuzz target: remote commands over MQTT (gateway/remote.c), followed the way
 * the gateway handles a message on <prefix>/command: checked by remote_parse,
 * an accepted one executed by command_execute on a fresh engine of the test
 * site, and answered with remote_response.
 *
 * Input: two header bytes (the commands the uplink may give, one bit each;
 * bit 0 of the second byte picks the uplink), then up to MAX_MESSAGES
 * messages separated by "\n----\n", received one second apart from
 * 2026-11-23T05:04:03.000Z on, so that replays within one input are seen.
 *
 * Promises checked: the result is one of the REMOTE_* codes and a rejection
 * has a reason; an accepted command is a line the text parser reads (the
 * engine may still refuse its target); every response is one JSON object
 * with the documented fields; a replayed message is never accepted twice.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "engine.h"
#include "fuzz.h"
#include "remote.h"
#include "util.h"

#define MAX_MESSAGES 8
#define T0_WALL 1795410243000LL
#define REPLY_LEN 65536

static const char SEP[] = "\n----\n";

static void check_response(const char *json, const char *status)
{
    FUZZ_ASSERT(json != NULL, "no response for status %s", status);
    cJSON *o = cJSON_Parse(json);
    FUZZ_ASSERT(cJSON_IsObject(o), "the response is not a JSON object: %s", json);
    static const char *const keys[] = {"schema", "type",   "id",     "building", "ts",
                                       "status", "reason", "detail", "state"};
    size_t n = 0;
    for (const cJSON *m = o->child; m; m = m->next)
        n++;
    FUZZ_ASSERT(n == ARRAY_LEN(keys), "the response has %zu fields: %s", n, json);
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        FUZZ_ASSERT(cJSON_GetObjectItemCaseSensitive(o, keys[i]) != NULL,
                    "the response lacks \"%s\": %s", keys[i], json);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
    FUZZ_ASSERT(cJSON_IsString(st), "status is not a string: %s", json);
    cJSON_Delete(o);
}

static void handle(struct remote *r, struct engine *e, const struct cfg *site, const char *uplink,
                   unsigned mask, const uint8_t *msg, size_t len, int64_t now_wall,
                   struct remote_cmd *accepted, size_t *naccepted, char *reply)
{
    struct remote_cmd cmd;
    char reason[256] = "";
    int rc = remote_parse(r, uplink, mask, (const char *)msg, len, now_wall, &cmd, reason,
                          sizeof(reason));
    FUZZ_ASSERT(rc >= REMOTE_OK && rc <= REMOTE_REPLAYED, "result %d", rc);
    FUZZ_ASSERT(memchr(cmd.id, '\0', sizeof(cmd.id)) && memchr(cmd.line, '\0', sizeof(cmd.line)) &&
                    memchr(cmd.user, '\0', sizeof(cmd.user)),
                "an unterminated field in the command");
    char *json;
    if (rc != REMOTE_OK) {
        FUZZ_ASSERT(reason[0] != '\0', "rejected (%s) without a reason", remote_reason_code(rc));
        json = remote_response(site, cmd.id[0] ? cmd.id : NULL, "rejected", remote_reason_code(rc),
                               reason, now_wall, NULL);
        check_response(json, "rejected");
        free(json);
        return;
    }
    FUZZ_ASSERT(cmd.command < RCMD__COUNT && (mask & CMDSET_BIT(cmd.command)),
                "accepted command %d outside the uplink's set %#x", (int)cmd.command, mask);
    FUZZ_ASSERT(cmd.id[0] && cmd.line[0] && cmd.user[0], "accepted without id, line or user");
    /*
     * A replay (the same id and issue time) never passes while the first could
     * be valid, not even after a flood pushed the id out of the table. A new
     * command under an id forgotten that way may pass (docs/mqtt-api.md).
     */
    for (size_t i = 0; i < *naccepted; i++)
        FUZZ_ASSERT(strcmp(accepted[i].id, cmd.id) != 0 || accepted[i].issued_ms != cmd.issued_ms ||
                        accepted[i].expires_ms < now_wall,
                    "id %s issued %lld replayed while the first is valid", cmd.id,
                    (long long)cmd.issued_ms);
    if (*naccepted < MAX_MESSAGES)
        accepted[(*naccepted)++] = cmd;
    struct evlist out = {0};
    struct ev_time now = {1000 + now_wall - T0_WALL, now_wall};
    int done = command_execute(e, site, cmd.line, cmd.user, now, &out, reply, REPLY_LEN);
    FUZZ_ASSERT(done == 0 || !fuzz_command_syntax_error(reply),
                "accepted \"%s\", which the parser refuses: %s", cmd.line, reply);
    bool state = strcmp(cmd.line, "status") == 0;
    json = done == 0
               ? remote_response(site, cmd.id, "done", NULL, NULL, now_wall, state ? reply : NULL)
               : remote_response(site, cmd.id, "failed", "invalid_target",
                                 reply + (strncmp(reply, "error: ", 7) ? 0 : 7), now_wall, NULL);
    check_response(json, done == 0 ? "done" : "failed");
    free(json);
    evlist_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const struct cfg *site = fuzz_site();
    unsigned mask = data[0] & CMDSET_ALL;
    const char *uplink = (data[1] & 1) ? "owner" : "district";
    data += 2;
    size -= 2;
    struct remote *r = remote_new(4);
    struct engine *e = engine_new(site, (struct ev_time){1000, T0_WALL});
    struct remote_cmd accepted[MAX_MESSAGES];
    size_t naccepted = 0;
    char *reply = xmalloc(REPLY_LEN);
    for (int i = 0; i < MAX_MESSAGES; i++) {
        const uint8_t *end = memmem(data, size, SEP, sizeof(SEP) - 1);
        size_t len = end ? (size_t)(end - data) : size;
        handle(r, e, site, uplink, mask, data, len, T0_WALL + i * 1000LL, accepted, &naccepted,
               reply);
        if (!end)
            break;
        size -= len + sizeof(SEP) - 1;
        data = end + sizeof(SEP) - 1;
    }
    free(reply);
    engine_free(e);
    remote_free(r);
    return 0;
}
