"""Remote commands over MQTT: a receiving centre resets, acknowledges and asks for the state;
malformed, unauthorised, expired and replayed commands are rejected with a reason and never
acted on. Every response is validated against docs/schema/command_response.json."""
import datetime
import json
import time
import uuid

from harness import GatewayTestCase, free_port, wait_until

PREFIX = "firegw/it-building"
REPORT_S = 15


def utc(offset_s=0.0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def command(name, scope=None, target=None, cid=None, issued=-1.0, expires=60.0, **extra):
    msg = {"schema": 1, "type": "command", "id": cid or str(uuid.uuid4()), "command": name,
           "issued": utc(issued), "expires": utc(expires), "user": "officer-nguyen"}
    if scope:
        msg["target"] = {"scope": scope, **({"id": target} if target else {})}
    msg.update(extra)
    return msg


class RemoteCommands(GatewayTestCase):
    def start_site(self, *more):
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port) + list(more)
        w = self.watch(broker.port)
        sim = self.start_sim(sets)
        self.start_gateway(sets)
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and m["json"]["state"] == "online",
                   REPORT_S, "online status")
        return sim, w

    def send(self, w, msg):
        raw = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        w.client.publish(f"{PREFIX}/command", raw, qos=1)

    def response(self, w, cid, timeout=REPORT_S):
        return w.wait_for(lambda m: m["topic"] == f"{PREFIX}/command/response" and
                          m["json"] and m["json"]["id"] == cid, timeout,
                          f"the response to {cid}")["json"]

    def responses_valid(self, w):
        bad = [(t, e) for t, e in w.invalid if not t.endswith("/command")]
        self.assertEqual(bad, [], "messages from the gateway that break docs/schema")

    def test_reset_and_state_from_the_receiving_centre(self):
        sim, w = self.start_site()
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        sim.cmd("set T-S1 value 0.1")
        state = command("state")
        self.send(w, state)
        r = self.response(w, state["id"])
        self.assertEqual(r["status"], "done")
        self.assertEqual(r["state"]["state"], "fire_alarm")
        ack = command("acknowledge", "zone", "Z1")
        self.send(w, ack)
        self.assertEqual(self.response(w, ack["id"])["status"], "done")
        ev = w.wait_event(REPORT_S, kind="acknowledged")
        self.assertIn("officer-nguyen", ev["user"])
        # The alarm latched; wait for the clear reading, then reset remotely.
        topic = f"{PREFIX}/detector/T-S1/state"
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 1.0, 5, "clear air polled")
        reset = command("reset", "zone", "Z1")
        since = w.mark()
        self.send(w, reset)
        self.assertEqual(self.response(w, reset["id"])["status"], "done")
        w.wait_event(REPORT_S, kind="restore", detector__id="T-S1")
        w.wait_for(lambda m: m["topic"] == topic and m["json"]["state"] == "normal", REPORT_S,
                   "T-S1 normal again", since)
        self.responses_valid(w)

    def test_bad_commands_are_rejected_and_not_acted_on(self):
        sim, w = self.start_site("uplink.district.commands=acknowledge,state")
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        cases = [
            (command("reset", "zone", "Z1"), "unauthorised"),
            (command("acknowledge", "zone", "Z1", issued=-120, expires=-60), "expired"),
            (command("acknowledge", "zone", "Z1", colour="red"), "malformed"),
            (command("acknowledge", "zone", "NO-SUCH"), None),
        ]
        for msg, reason in cases:
            self.send(w, msg)
            r = self.response(w, msg["id"])
            if reason:
                self.assertEqual((r["status"], r["reason"]), ("rejected", reason), r)
            else:
                self.assertEqual(r["status"], "failed", r)
        # Not JSON at all: answered with a null id.
        self.send(w, b"reset everything now")
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/command/response" and m["json"] and
                   m["json"]["id"] is None and m["json"]["reason"] == "malformed", REPORT_S,
                   "a response to garbage")
        # A replay of an accepted command is refused.
        ok = command("acknowledge", "zone", "Z1")
        self.send(w, ok)
        self.assertEqual(self.response(w, ok["id"])["status"], "done")
        self.send(w, ok)
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/command/response" and m["json"] and
                   m["json"]["id"] == ok["id"] and m["json"]["status"] == "rejected", REPORT_S,
                   "the replay rejected")
        # Nothing was reset: the alarm is still latched.
        self.assertEqual(w.events(kind="reset"), [])
        self.assertEqual(w.events(kind="restore", detector__id="T-S1"), [])
        self.responses_valid(w)
