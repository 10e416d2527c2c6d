"""firegw-watch, the reference receiver, against a real Mosquitto on loopback.

Events are made here, valid per docs/schema/event.json (checked before they are sent),
and published with paho; the watcher's output lines and the acknowledgements it
publishes on <prefix>/ack are checked. The last test runs it against the real gateway
and simulator.
"""
import glob
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid

import jsonschema
import paho.mqtt.client as mqtt

from harness import BUILD, LOOPBACK, ROOT, Broker, GatewayTestCase, free_port, wait_until
import check_schemas  # noqa: E402 - on the path once harness is imported

WATCH = os.path.join(BUILD, "firegw-watch")
ACK_SCHEMA = os.path.join(ROOT, "docs", "schema", "ack.json")
UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# Bounds that catch a watcher that never answers, not a slow machine.
WAIT_S = 15


def make_event(building, seq, kind="fire_alarm", test=False, **fields):
    """A schema-valid event; fields override or add (a test may break the schema on purpose)."""
    fault = "no_response" if kind in ("fault", "fault_restore") else None
    ev = {"schema": 1, "type": "event", "event_id": str(uuid.uuid4()), "seq": seq,
          "ts": "2026-11-23T05:04:03.123Z", "building": building, "kind": kind,
          "real": not test, "test": test, "source": "detector",
          "detector": {"id": "T-S1", "type": "smoke", "floor": 3,
                       "zone": {"id": "Z3", "name": "Tầng 3"}, "location": "Hành lang phía Bắc"},
          "device": {"id": "smoke-1", "unit": 1}, "bus": {"id": "tcp1"},
          "zone": {"id": "Z3", "name": "Tầng 3"}, "user": None, "fault": fault,
          "rule": "smoke_alarm_level", "value": {"value": 2.6, "unit": "%/m"},
          "level": {"value": 2.0, "unit": "%/m"}, "detail": "",
          "priority": {"fire_alarm": 0, "fire_confirmed": 0, "pre_alarm": 1, "fault": 2}.get(kind, 3)}
    ev.update(fields)
    return ev


def status(building, state, name="Chung cư Hoa Sen"):
    return {"schema": 1, "type": "status",
            "building": {"id": building, "name": name, "address": None, "district": "Tây Hồ",
                         "lat": None, "lon": None},
            "state": state, "ts": "2026-11-23T05:04:03.123Z",
            "started": "2026-11-23T05:03:59.870Z", "version": "0.1.0"}


def heartbeat(building, interval_s, last_seq=0):
    return {"schema": 1, "type": "heartbeat", "ts": "2026-11-23T05:05:03.123Z",
            "building": building, "uptime_s": 63, "last_seq": last_seq,
            "detectors": {"total": 24, "fire_alarm": 0, "pre_alarm": 0, "fault": 0},
            "buses": {"total": 2, "up": 2}, "interval_s": interval_s}


class WatchProcess:
    """firegw-watch as a child, stdout and stderr in separate files; stopped by PID."""

    def __init__(self, workdir, name, args):
        self.out_path = os.path.join(workdir, f"{name}.out.log")
        self.err_path = os.path.join(workdir, f"{name}.log")
        self.out = open(self.out_path, "ab")
        self.err = open(self.err_path, "ab")
        self.proc = subprocess.Popen([WATCH] + args, stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL, cwd=ROOT)
        self.rc = None

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")

    def json_lines(self):
        return [json.loads(line) for line in self.stdout().splitlines() if line.strip()]

    def alive(self):
        return self.proc.poll() is None

    def wait_subscribed(self):
        wait_until(lambda: "subscribed to" in self.stderr() and "/heartbeat" in self.stderr()
                   or not self.alive(), WAIT_S, "firegw-watch to subscribe")
        if not self.alive():
            raise AssertionError("firegw-watch exited:\n" + self.stderr())

    def stop(self, sig=signal.SIGTERM):
        """Signal, wait; SIGKILL if it does not exit. Returns the exit code."""
        if self.rc is not None:
            return self.rc
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()
        self.err.close()
        self.rc = self.proc.returncode
        return self.rc


class Client:
    """A paho client that publishes, and records what arrives on its subscription."""

    def __init__(self, port, topic=None):
        self.lock = threading.Condition()
        self.messages = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(client_id=f"test-{os.getpid()}-{time.time_ns()}",
                                  clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda c, u, mid, q: self.subscribed.set()

        def on_connect(c, u, f, rc):
            if topic:
                c.subscribe(topic, qos=1)
            else:
                self.subscribed.set()
        self.client.on_connect = on_connect
        self.client.connect(LOOPBACK, port, keepalive=30)
        self.client.loop_start()
        if not self.subscribed.wait(WAIT_S):
            raise AssertionError(f"no subscription to {topic} within {WAIT_S}s")

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append({"topic": msg.topic, "retain": bool(msg.retain),
                                  "json": json.loads(msg.payload.decode())})
            self.lock.notify_all()

    def publish(self, topic, payload, retain=False):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload, ensure_ascii=False)
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)
        if not info.is_published():
            raise AssertionError(f"publish to {topic} not confirmed within {WAIT_S}s")

    def wait_count(self, n, what):
        deadline = time.monotonic() + WAIT_S
        with self.lock:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what}: {len(self.messages)} of {n} messages "
                                         f"within {WAIT_S}s: {self.messages}")
                self.lock.wait(min(left, 0.2))
            return list(self.messages)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class WatchTestCase(GatewayTestCase):
    def setUp(self):
        super().setUp()
        with open(ACK_SCHEMA, encoding="utf-8") as f:
            self.ack_validator = jsonschema.Draft202012Validator(json.load(f))

    def start_watch(self, port, *extra, name="firegw-watch", client_id=None, wait=True):
        args = ["--port", str(port), "--client-id", client_id or f"it-watch-{time.time_ns()}",
                "--receiver", "pccc-test"] + list(extra)
        w = WatchProcess(self.workdir, name, args)
        self._cleanup.append(w.stop)
        if wait:
            w.wait_subscribed()
        return w

    def client(self, port, topic=None):
        c = Client(port, topic)
        self._cleanup.append(c.close)
        return c

    def publish_event(self, pub, ev, prefix=None):
        self.assertIsNone(check_schemas.validate("event", json.dumps(ev)), "test event invalid")
        pub.publish(f"{prefix or 'firegw/' + ev['building']}/event", ev)
        return ev

    def assert_ack(self, msg, ev, topic):
        ack = msg["json"]
        self.assertEqual(msg["topic"], topic)
        self.assertFalse(msg["retain"])
        self.assertEqual(set(ack), {"schema", "type", "event_id", "seq", "receiver", "ts"})
        self.assertEqual(ack["schema"], 1)
        self.assertEqual(ack["type"], "ack")
        self.assertEqual(ack["event_id"], ev["event_id"])
        self.assertEqual(ack["seq"], ev["seq"])
        self.assertIs(type(ack["seq"]), int)
        self.assertEqual(ack["receiver"], "pccc-test")
        self.assertRegex(ack["ts"], UTC_MS)
        errors = [e.message for e in self.ack_validator.iter_errors(ack)]
        self.assertEqual(errors, [], "acknowledgement breaks docs/schema/ack.json")

    def stop_clean(self, w, sig=signal.SIGTERM):
        rc = w.stop(sig)
        self.assertEqual(rc, 0, f"firegw-watch exit code {rc}:\n{w.stderr()[-3000:]}")


class Acknowledgements(WatchTestCase):
    def test_alarm_and_fault_acknowledged_pre_alarm_not(self):
        broker = self.start_broker()
        acks = self.client(broker.port, "firegw/+/ack")
        w = self.start_watch(broker.port, "--json")
        pub = self.client(broker.port)
        fire = self.publish_event(pub, make_event("hoasen-01", 1, "fire_alarm"))
        pre = self.publish_event(pub, make_event("hoasen-01", 2, "pre_alarm"))
        fault = self.publish_event(pub, make_event("hoasen-01", 3, "fault", source="bus",
                                                   detector=None, device=None, zone=None,
                                                   value=None, level=None))
        confirmed = self.publish_event(pub, make_event("hoasen-01", 4, "fire_confirmed",
                                                       source="zone", detector=None))
        # A test event of an acknowledged kind is acknowledged too.
        test = self.publish_event(pub, make_event("hoasen-01", 5, "fire_alarm", test=True))
        got = acks.wait_count(4, "acknowledgements")
        # Acks go out in the order the events were handled: had the pre-alarm been
        # acknowledged, its ack would be among the first four.
        for msg, ev in zip(got, (fire, fault, confirmed, test)):
            self.assert_ack(msg, ev, "firegw/hoasen-01/ack")
        wait_until(lambda: len(w.json_lines()) == 5, WAIT_S, "five JSON event lines")
        self.assertEqual([e["event_id"] for e in w.json_lines()],
                         [e["event_id"] for e in (fire, pre, fault, confirmed, test)])
        self.assertEqual(w.json_lines()[0], fire)
        self.stop_clean(w)
        self.assertEqual(len(acks.messages), 4, "the pre-alarm must not be acknowledged")
        self.assertIn("5 events shown", w.stderr())

    def test_ack_all_and_no_ack(self):
        broker = self.start_broker()
        acks = self.client(broker.port, "firegw/+/ack")
        w = self.start_watch(broker.port, "--json", "--ack-all", name="ack-all")
        pub = self.client(broker.port)
        pre = self.publish_event(pub, make_event("hoasen-01", 1, "pre_alarm"))
        restore = self.publish_event(pub, make_event("hoasen-01", 2, "restore"))
        got = acks.wait_count(2, "acknowledgements with --ack-all")
        self.assert_ack(got[0], pre, "firegw/hoasen-01/ack")
        self.assert_ack(got[1], restore, "firegw/hoasen-01/ack")
        self.stop_clean(w)

        quiet = self.start_watch(broker.port, "--json", "--no-ack", name="no-ack")
        fire = self.publish_event(pub, make_event("hoasen-01", 3, "fire_alarm"))
        wait_until(lambda: any(e["event_id"] == fire["event_id"] for e in quiet.json_lines()),
                   WAIT_S, "the fire alarm on the --no-ack watcher")
        self.stop_clean(quiet)
        self.assertEqual(len(acks.messages), 2, "--no-ack must not acknowledge")

    def test_ack_goes_to_the_prefix_the_event_came_from(self):
        broker = self.start_broker()
        acks = self.client(broker.port, "#")
        w = self.start_watch(broker.port, "--json", "--prefix", "district/+/gw/+",
                             "--prefix", "firegw/+")
        pub = self.client(broker.port)
        a = self.publish_event(pub, make_event("site-a", 7), prefix="district/tayho/gw/site-a")
        b = self.publish_event(pub, make_event("site-b", 9))
        wait_until(lambda: len([m for m in acks.messages if m["topic"].endswith("/ack")]) == 2,
                   WAIT_S, "two acknowledgements")
        got = [m for m in acks.messages if m["topic"].endswith("/ack")]
        self.assert_ack(got[0], a, "district/tayho/gw/site-a/ack")
        self.assert_ack(got[1], b, "firegw/site-b/ack")
        self.stop_clean(w)


class Bookkeeping(WatchTestCase):
    def test_repeated_event_shown_once_and_acknowledged_again(self):
        broker = self.start_broker()
        acks = self.client(broker.port, "firegw/+/ack")
        w = self.start_watch(broker.port, "--json")
        pub = self.client(broker.port)
        fire = self.publish_event(pub, make_event("hoasen-01", 1))
        # The gateway sends an alarm again, unchanged, when its acknowledgement was lost.
        self.publish_event(pub, fire)
        marker = self.publish_event(pub, make_event("hoasen-01", 2))
        got = acks.wait_count(3, "acknowledgements")
        self.assertEqual([m["json"]["event_id"] for m in got],
                         [fire["event_id"], fire["event_id"], marker["event_id"]])
        wait_until(lambda: len(w.json_lines()) == 2, WAIT_S, "two JSON lines")
        self.assertEqual([e["event_id"] for e in w.json_lines()],
                         [fire["event_id"], marker["event_id"]])
        self.stop_clean(w)
        self.assertIn("1 repeated ones ignored", w.stderr())
        self.assertNotIn("arrived after", w.stderr())

    def test_dedupe_window_is_bounded(self):
        broker = self.start_broker()
        w = self.start_watch(broker.port, "--json", "--dedupe", "2", "--no-ack")
        pub = self.client(broker.port)
        first = make_event("hoasen-01", 1)
        for ev in (first, make_event("hoasen-01", 2), make_event("hoasen-01", 3)):
            self.publish_event(pub, ev)
        # Three ids later the first one has left a window of two: shown again.
        self.publish_event(pub, first)
        wait_until(lambda: len(w.json_lines()) == 4, WAIT_S, "four JSON lines")
        self.assertEqual(w.json_lines()[3]["event_id"], first["event_id"])
        self.stop_clean(w)

    def test_sequence_gap_per_building(self):
        broker = self.start_broker()
        w = self.start_watch(broker.port, "--json", "--no-ack")
        pub = self.client(broker.port)
        for seq in (10, 11, 14):
            self.publish_event(pub, make_event("hoasen-01", seq))
        # Another building keeps its own numbering: no gap there.
        self.publish_event(pub, make_event("sen-02", 500))
        self.publish_event(pub, make_event("sen-02", 501))
        wait_until(lambda: len(w.json_lines()) == 5, WAIT_S, "five JSON lines")
        err = w.stderr()
        self.assertRegex(err, r"hoasen-01\S*: seq jumped from 11 to 14: possible lost events "
                              r"\(2 missing\)")
        self.assertEqual(err.count("seq jumped"), 1, err)
        # A heartbeat whose last_seq is ahead of the last event received means loss too.
        pub.publish("firegw/sen-02/heartbeat", heartbeat("sen-02", 60, last_seq=503))
        wait_until(lambda: "last event was seq 503" in w.stderr(), WAIT_S,
                   "the heartbeat's gap report")
        self.stop_clean(w)
        self.assertIn("2 sequence gaps", w.stderr())

    def test_events_queued_while_away_arrive_with_the_same_client_id(self):
        broker = self.start_broker()
        acks = self.client(broker.port, "firegw/+/ack")
        pub = self.client(broker.port)
        # MQTT 3.1.1 keeps the session by clean session off, MQTT 5 by its expiry interval.
        for n, proto in enumerate(([], ["--mqtt5"]), start=1):
            with self.subTest(proto=proto):
                cid = f"it-watch-kept-{n}"
                w = self.start_watch(broker.port, "--json", *proto, client_id=cid,
                                     name=f"first-{n}")
                self.stop_clean(w)
                fire = self.publish_event(pub, make_event(f"hoasen-{n}", 1))
                again = self.start_watch(broker.port, "--json", *proto, client_id=cid,
                                         name=f"again-{n}", wait=False)
                wait_until(lambda: any(e["event_id"] == fire["event_id"]
                                       for e in again.json_lines()),
                           WAIT_S, "the alarm sent while the watcher was away")
                self.assert_ack(acks.wait_count(n, "acknowledgement")[n - 1], fire,
                                f"firegw/hoasen-{n}/ack")
                self.assertIn("session kept", again.stderr())
                self.assertIn("(MQTT 5)" if proto else "(MQTT 3.1.1)", again.stderr())
                self.stop_clean(again, signal.SIGINT)


class BadInput(WatchTestCase):
    def test_garbage_is_warned_about_and_survived(self):
        broker = self.start_broker()
        acks = self.client(broker.port, "firegw/+/ack")
        w = self.start_watch(broker.port, "--json")
        pub = self.client(broker.port)
        bad = [
            ("firegw/g1/event", b"not json at all {"),
            ("firegw/g1/event", b""),
            ("firegw/g1/event", b"\xff\xfe\x00\x01"),
            ("firegw/g1/event", b"[1, 2, 3]"),
            ("firegw/g1/event", b'{"schema": 1} trailing'),
            ("firegw/g1/event", json.dumps(make_event("g1", 1, schema=2))),
            ("firegw/g1/event", json.dumps(dict(make_event("g1", 1), seq="one"))),
            ("firegw/g1/event", json.dumps(dict(make_event("g1", 1), seq=-4))),
            ("firegw/g1/event", json.dumps(dict(make_event("g1", 1), building="../../etc"))),
            ("firegw/g1/event", json.dumps({k: v for k, v in make_event("g1", 1).items()
                                            if k != "event_id"})),
            ("firegw/g1/event", '{"a":' * 5000 + "1" + "}" * 5000),
            ("firegw/g1/status", b'{"schema":1,"type":"status","state":"sideways"}'),
            ("firegw/g1/heartbeat", json.dumps(heartbeat("g1", -5))),
            ("firegw/g1/heartbeat", b"\x1b[2J"),
        ]
        for topic, payload in bad:
            pub.publish(topic, payload)
        # A fire alarm with a field the schema does not know is still shown and acknowledged:
        # a malformed detail must never hide an alarm.
        odd = make_event("g1", 2, colour="red", detail="line\nbreak \x1b[31m")
        pub.publish("firegw/g1/event", json.dumps(odd))
        good = self.publish_event(pub, make_event("g1", 3))
        got = acks.wait_count(2, "acknowledgements of the readable alarms")
        self.assert_ack(got[0], odd, "firegw/g1/ack")
        self.assert_ack(got[1], good, "firegw/g1/ack")
        wait_until(lambda: len(w.json_lines()) == 2, WAIT_S, "two JSON lines")
        self.assertEqual([e["event_id"] for e in w.json_lines()],
                         [odd["event_id"], good["event_id"]])
        self.assertEqual(w.json_lines()[0]["detail"], odd["detail"])
        self.assertTrue(w.alive())
        err = w.stderr()
        self.assertEqual(err.count("firegw/g1/event: "), 12, err)
        self.assertIn("firegw/g1/event: not valid JSON", err)
        self.assertIn("schema version is not 1", err)
        self.assertIn("seq: must be an integer >= 0", err)
        self.assertIn("colour: unknown field; shown anyway", err)
        self.assertIn("firegw/g1/status: ", err)
        self.assertEqual(err.count("firegw/g1/heartbeat: "), 2, err)
        self.stop_clean(w)
        self.assertIn("15 bad messages", w.stderr())

    def test_bad_options_are_refused(self):
        for args, text in ((["--prefix", "firegw/#"], "'#' cannot be used"),
                           (["--prefix", "fire+/x"], "'+' must stand alone"),
                           (["--port", "70000"], "--port"),
                           (["--no-ack", "--ack-all"], "contradict"),
                           (["--password-file", "/nonexistent"], "--password-file needs --user"),
                           (["--dedupe", "-1"], "--dedupe"),
                           (["--share", "pccc/a"], "--share \"pccc/a\": a group name"),
                           (["--share", "+"], "no '/', '+' or '#'"),
                           (["--share", ""], "--share"),
                           (["--session-expiry", "60"], "--session-expiry needs --mqtt5"),
                           (["--mqtt5", "--session-expiry", "soon"], "--session-expiry \"soon\""),
                           (["--mqtt5", "--session-expiry", "4294967295"], "or never")):
            p = subprocess.run([WATCH] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=WAIT_S, text=True, stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(text, p.stderr, args)
        p = subprocess.run([WATCH, "--user", "u", "--password-file",
                            os.path.join(self.workdir, "missing")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=WAIT_S, text=True,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot open the password file", p.stderr)


class SharedSubscription(WatchTestCase):
    """Several watchers in one MQTT 5 share group split the events between them."""

    def start_member(self, port, member, *extra, client_id=None, name=None):
        return self.start_watch(port, "--json", "--share", "pccc", "--receiver", member, *extra,
                                name=name or member, client_id=client_id)

    def shown_ids(self, w):
        return [e["event_id"] for e in w.json_lines()]

    def check_acks(self, acks, members):
        """Every acknowledgement valid, from the member that showed the event, once."""
        building = {e["event_id"]: e["building"] for w in members.values()
                    for e in w.json_lines()}
        by_id = {}
        for m in acks:
            ack = m["json"]
            self.assertEqual([e.message for e in self.ack_validator.iter_errors(ack)], [])
            self.assertNotIn(ack["event_id"], by_id, "acknowledged twice")
            by_id[ack["event_id"]] = ack["receiver"]
            self.assertIn(ack["event_id"], building, "an acknowledgement of an event not shown")
            self.assertEqual(m["topic"], f"firegw/{building[ack['event_id']]}/ack")
            self.assertFalse(m["retain"])
        for name, w in members.items():
            for ev in w.json_lines():
                if ev["kind"] in ("fire_alarm", "fire_confirmed", "fault"):
                    self.assertEqual(by_id.get(ev["event_id"]), name,
                                     f"{ev['kind']} seq {ev['seq']} of {ev['building']}")
        return by_id

    def test_each_event_reaches_one_member_and_is_acknowledged_once(self):
        broker = self.start_broker()
        acks = self.client(broker.port, "firegw/+/ack")
        pub = self.client(broker.port)
        for b in ("hoasen-01", "sen-02"):
            pub.publish(f"firegw/{b}/status", status(b, "online", name=f"Nhà {b}"), retain=True)
        a = self.start_member(broker.port, "member-a")
        b = self.start_member(broker.port, "member-b")
        # Status is not shared: both members learn every building's state, retained included.
        for w in (a, b):
            for bid in ("hoasen-01", "sen-02"):
                wait_until(lambda w=w, bid=bid: f"ONLINE   Nhà {bid} ({bid})" in w.stderr(),
                           WAIT_S, f"{bid}'s retained status on {w.err_path}")
        kinds = ("fire_alarm", "fault", "pre_alarm", "fire_confirmed", "restore", "fire_alarm")
        sent = []
        for i in range(24):
            building = ("hoasen-01", "sen-02")[i % 2]
            kind = kinds[(i // 2) % len(kinds)]
            extra = {"source": "bus", "detector": None, "value": None, "level": None} \
                if kind == "fault" else {"source": "zone", "detector": None} \
                if kind == "fire_confirmed" else {}
            sent.append(self.publish_event(pub, make_event(building, i // 2 + 1, kind, **extra)))
        wanted = [e["event_id"] for e in sent if e["kind"] in ("fire_alarm", "fire_confirmed",
                                                                 "fault")]
        wait_until(lambda: len(self.shown_ids(a)) + len(self.shown_ids(b)) >= len(sent), WAIT_S,
                   "every event on one of the members")
        got = acks.wait_count(len(wanted), "one acknowledgement per alarm and fault")
        shown_a, shown_b = set(self.shown_ids(a)), set(self.shown_ids(b))
        self.assertEqual(shown_a & shown_b, set(), "an event reached both members")
        self.assertEqual(shown_a | shown_b, {e["event_id"] for e in sent})
        self.assertTrue(shown_a and shown_b, "the broker gave every event to one member")
        by_id = self.check_acks(got, {"member-a": a, "member-b": b})
        self.assertEqual(sorted(by_id), sorted(wanted))
        # Heartbeats are not shared either: both members supervise the path.
        pub.publish("firegw/sen-02/heartbeat", heartbeat("sen-02", 0.2, last_seq=99))
        for w in (a, b):
            wait_until(lambda w=w: "HEARTBEAT OVERDUE  Nhà sen-02" in w.stderr(), WAIT_S,
                       f"heartbeat supervision on {w.err_path}")
        self.stop_clean(a)
        self.stop_clean(b)
        self.assertEqual(len(acks.messages), len(wanted), "no acknowledgement twice")
        for w in (a, b):
            # Each member sees every other seq of a building: that is no gap.
            self.assertNotIn("SEQUENCE GAP", w.stderr())
            self.assertIn("0 sequence gaps", w.stderr())

    def test_a_member_that_is_away_is_given_no_events(self):
        broker = self.start_broker()
        acks = self.client(broker.port, "firegw/+/ack")
        pub = self.client(broker.port)
        a = self.start_member(broker.port, "member-a")
        b = self.start_member(broker.port, "member-b", client_id="it-member-b")
        self.stop_clean(b)
        while_away = [self.publish_event(pub, make_event("hoasen-01", n)) for n in range(1, 7)]
        wait_until(lambda: len(self.shown_ids(a)) == 6, WAIT_S, "every alarm on the member up")
        # Back with the same client id: its session ended with its connection, so nothing
        # was kept for it, and it takes its share of what comes next.
        again = self.start_member(broker.port, "member-b", client_id="it-member-b",
                                  name="member-b-again")
        self.assertIn("new session", again.stderr())
        later = [self.publish_event(pub, make_event("hoasen-01", n)) for n in range(7, 13)]
        wait_until(lambda: len(self.shown_ids(a)) + len(self.shown_ids(again)) == 12, WAIT_S,
                   "the later alarms on the two members")
        self.assertEqual(self.shown_ids(a)[:6], [e["event_id"] for e in while_away])
        self.assertEqual(set(self.shown_ids(again)) & {e["event_id"] for e in while_away}, set())
        self.assertTrue(self.shown_ids(again), "the member back takes its share again")
        got = acks.wait_count(12, "every alarm acknowledged")
        self.check_acks(got, {"member-a": a, "member-b": again})
        self.assertEqual({m["json"]["event_id"] for m in got},
                         {e["event_id"] for e in while_away + later})
        self.stop_clean(a)
        self.stop_clean(again)


class SharedSubscriptionAccess(WatchTestCase):
    """Who may join the share group. Mosquitto's acl_file checks a subscription only when
    a message is delivered: a client outside the receivers that subscribes to the group
    is still given its turn, and the events of its turns are dropped. The dynamic
    security plugin (docs/deployment.md) checks the subscription when it is made."""

    DYNSEC = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so")

    def ctl(self, port, *args):
        subprocess.run(["mosquitto_ctrl", "-h", "127.0.0.1", "-p", str(port), "-u", "admin",
                        "-P", "admin-secret", "dynsec", *args], check=True, timeout=WAIT_S,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL)

    def password_file(self, user, password):
        path = os.path.join(self.workdir, f"{user}.pw")
        with open(path, "w") as f:
            f.write(password + "\n")
        os.chmod(path, 0o600)
        return path

    def test_a_gateway_cannot_join_the_receivers_group(self):
        if not self.DYNSEC:
            self.skipTest("Mosquitto's dynamic security plugin is not installed")
        conf = os.path.join(self.workdir, "dynsec.json")
        subprocess.run(["mosquitto_ctrl", "dynsec", "init", conf, "admin", "admin-secret"],
                       check=True, timeout=WAIT_S, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        # "user root": the broker keeps the test's user, so it can save its config file.
        broker = self.start_broker(extra=f"allow_anonymous false\nuser root\n"
                                         f"plugin {self.DYNSEC[0]}\n"
                                         f"plugin_opt_config_file {conf}\n")
        self.ctl(broker.port, "createRole", "receiver")
        for acl in (("subscribePattern", "firegw/+/status"),
                    ("subscribePattern", "firegw/+/heartbeat"),
                    ("subscribePattern", "$share/pccc/firegw/+/event"),
                    ("publishClientSend", "firegw/+/ack")):
            self.ctl(broker.port, "addRoleACL", "receiver", *acl, "allow")
        self.ctl(broker.port, "createClient", "pccc-tayho", "-p", "pccc-secret")
        self.ctl(broker.port, "addClientRole", "pccc-tayho", "receiver")
        for gw in ("hoasen-01", "sen-02"):
            self.ctl(broker.port, "createRole", f"gw-{gw}")
            self.ctl(broker.port, "addRoleACL", f"gw-{gw}", "publishClientSend",
                     f"firegw/{gw}/#", "allow")
            self.ctl(broker.port, "addRoleACL", f"gw-{gw}", "subscribePattern",
                     f"firegw/{gw}/ack", "allow")
            self.ctl(broker.port, "createClient", gw, "-p", f"{gw}-secret")
            self.ctl(broker.port, "addClientRole", gw, f"gw-{gw}")
        pccc = ["--user", "pccc-tayho", "--password-file",
                self.password_file("pccc-tayho", "pccc-secret")]
        a = self.start_member(broker.port, "member-a", *pccc)
        b = self.start_member(broker.port, "member-b", *pccc)
        # A gateway's credentials in a watcher of the same group: refused, and said so.
        rogue = self.start_watch(broker.port, "--json", "--share", "pccc", "--user", "sen-02",
                                 "--password-file", self.password_file("sen-02", "sen-02-secret"),
                                 name="rogue", wait=False)
        wait_until(lambda: "refused the subscription to $share/pccc/firegw/+/event: Not "
                           "authorized" in rogue.stderr() or not rogue.alive(), WAIT_S,
                   "the refusal of the gateway's shared subscription")
        acked, subscribed = [], threading.Event()
        pub = mqtt.Client(client_id="it-hoasen-01")
        pub.username_pw_set("hoasen-01", "hoasen-01-secret")
        pub.on_message = lambda c, u, m: acked.append(json.loads(m.payload)["event_id"])
        pub.on_subscribe = lambda c, u, mid, q: subscribed.set()
        pub.on_connect = lambda c, u, f, rc: c.subscribe("firegw/hoasen-01/ack", qos=1)
        pub.connect(LOOPBACK, broker.port, keepalive=30)
        pub.loop_start()
        self._cleanup.append(pub.loop_stop)
        self.assertTrue(subscribed.wait(WAIT_S), "the gateway's subscription to its ack topic")
        sent = []
        for seq in range(1, 11):
            ev = make_event("hoasen-01", seq)
            self.assertIsNone(check_schemas.validate("event", json.dumps(ev)))
            info = pub.publish("firegw/hoasen-01/event", json.dumps(ev), qos=1)
            info.wait_for_publish(WAIT_S)
            sent.append(ev["event_id"])
        wait_until(lambda: len(a.json_lines()) + len(b.json_lines()) == len(sent), WAIT_S,
                   "every event on the two members")
        self.assertEqual(sorted(e["event_id"] for e in a.json_lines() + b.json_lines()),
                         sorted(sent))
        # A wrong password: MQTT 5's reason code, in words.
        wrong = self.start_watch(broker.port, "--share", "pccc", "--user", "pccc-tayho",
                                 "--password-file", self.password_file("wrong", "not-it"),
                                 name="wrong-password", wait=False)
        wait_until(lambda: "cannot connect" in wrong.stderr() or not wrong.alive(), WAIT_S,
                   "the refused connection")
        self.assertRegex(wrong.stderr(), r"broker refused the connection: (Not authorized|Bad "
                                         r"User Name or Password) \(reason code 0x8[67]\)")
        self.stop_clean(wrong)
        self.assertEqual(rogue.json_lines(), [])
        self.assertRegex(rogue.stderr(), r"refused the subscription to \$share/pccc/firegw/\+/"
                                         r"event: Not authorized \(reason code 0x87\)")
        # The members' acknowledgements pass the ACL and reach the gateway.
        wait_until(lambda: sorted(acked) == sorted(sent), WAIT_S,
                   "the gateway's acknowledgements")
        pub.disconnect()
        for w in (a, b, rogue):
            self.stop_clean(w)

    start_member = SharedSubscription.start_member


class Display(WatchTestCase):
    def test_readable_output_status_and_heartbeat_supervision(self):
        broker = self.start_broker()
        pub = self.client(broker.port)
        # Retained before the watcher starts: it learns the building's name from it.
        pub.publish("firegw/hoasen-01/status", status("hoasen-01", "online"), retain=True)
        w = self.start_watch(broker.port, "-v")
        wait_until(lambda: "ONLINE" in w.stdout(), WAIT_S, "the online status")
        self.publish_event(pub, make_event("hoasen-01", 1))
        self.publish_event(pub, make_event("hoasen-01", 2, "fire_alarm", test=True))
        pub.publish("firegw/hoasen-01/heartbeat", heartbeat("hoasen-01", 0.2))
        wait_until(lambda: "HEARTBEAT OVERDUE" in w.stdout(), WAIT_S,
                   "the heartbeat supervision line")
        pub.publish("firegw/hoasen-01/heartbeat", heartbeat("hoasen-01", 60))
        wait_until(lambda: "heartbeat from" in w.stdout(), WAIT_S, "the heartbeat is back")
        pub.publish("firegw/hoasen-01/status", status("hoasen-01", "offline"))
        wait_until(lambda: "OFFLINE" in w.stdout(), WAIT_S, "the offline status")
        out = w.stdout()
        self.assertRegex(out, r"ONLINE +Chung cư Hoa Sen \(hoasen-01\)")
        # 05:04:03.123Z is 12:04:03.123 in Hanoi.
        self.assertRegex(out, r"2026-11-23 12:04:03\.123 \+07:00  \*\*\* FIRE ALARM \*\*\*  "
                              r"Chung cư Hoa Sen \(hoasen-01\)  seq 1\n")
        self.assertIn("detector T-S1 (smoke), zone Z3 Tầng 3, floor 3, Hành lang phía Bắc", out)
        self.assertIn("rule smoke_alarm_level, value 2.6 %/m, level 2 %/m", out)
        self.assertRegex(out, r"TEST - FIRE ALARM - not a real event  .*seq 2\n")
        self.assertEqual(out.count("*** FIRE ALARM ***"), 1, "a test is never shown as real")
        self.assertRegex(out, r"heartbeat  Chung cư Hoa Sen \(hoasen-01\)  uptime 63 s")
        self.assertRegex(out, r"HEARTBEAT OVERDUE  Chung cư Hoa Sen \(hoasen-01\): none for "
                              r"[0-9.]+ s \(interval 0.2 s\)")
        self.assertEqual(out.count("ONLINE"), 1, "status lines only on a change")
        self.assertNotIn("\x1b", out, "no colours when not on a terminal")
        self.stop_clean(w, signal.SIGINT)

    def test_reconnects_after_the_broker_comes_back(self):
        port = free_port()
        w = self.start_watch(port, "--json", wait=False)
        wait_until(lambda: "cannot connect" in w.stderr(), WAIT_S, "a failed connect")
        broker = Broker(self.workdir, port).start()
        self._cleanup.append(broker.stop)
        w.wait_subscribed()
        pub = self.client(port)
        fire = self.publish_event(pub, make_event("hoasen-01", 1))
        wait_until(lambda: len(w.json_lines()) == 1, WAIT_S, "the alarm after reconnecting")
        self.assertEqual(w.json_lines()[0]["event_id"], fire["event_id"])
        self.stop_clean(w)


class WithGateway(WatchTestCase):
    def test_real_gateway_alarm_is_shown_and_acknowledged(self):
        broker, sim, gw, recorder = self.start_all()
        acks = self.client(broker.port, "firegw/+/ack")
        w = self.start_watch(broker.port, "--json")
        recorder.wait_for(lambda m: m["topic"] == "firegw/it-building/detector/T-S1/state" and
                          m["json"] and m["json"]["state"] == "normal", WAIT_S, "T-S1 normal")
        sim.cmd("set T-S1 value 2.6")
        ev = recorder.wait_event(WAIT_S, kind="fire_alarm", detector__id="T-S1")
        wait_until(lambda: any(e["event_id"] == ev["event_id"] for e in w.json_lines()),
                   WAIT_S, "the gateway's fire alarm on the watcher")
        wait_until(lambda: any(m["json"]["event_id"] == ev["event_id"] for m in acks.messages),
                   WAIT_S, "the acknowledgement of the gateway's alarm")
        msg = next(m for m in acks.messages if m["json"]["event_id"] == ev["event_id"])
        self.assert_ack(msg, ev, "firegw/it-building/ack")
        shown = next(e for e in w.json_lines() if e["event_id"] == ev["event_id"])
        self.assertEqual(shown, ev)
        self.assert_all_valid(recorder)
        self.stop_clean(w)
