"""Test harness for firegw integration tests.

Starts real processes on loopback only (Mosquitto, firegw-sim, firegw), waits for
their readiness by polling (never a fixed sleep), bounds every wait in time, and
stops everything it started by PID.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("FIREGW_BUILD", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import check_schemas  # noqa: E402

LOOPBACK = "127.0.0.1"


def free_port():
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


class Process:
    """A child process with its output in a log file; stopped by PID."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env or os.environ.copy(),
                                     cwd=ROOT)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=15):
        """SIGTERM, wait; SIGKILL if it does not exit. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def kill9(self):
        self.killed = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()

    killed = False


class Broker:
    def __init__(self, workdir, port=None, extra=""):
        """extra: further mosquitto.conf lines for the listener (TLS, passwords)."""
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = os.path.join(workdir, f"mosquitto-{self.port}.conf")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} {LOOPBACK}\npersistence false\nlog_dest stdout\n")
            f.write(extra if "allow_anonymous" in extra else "allow_anonymous true\n" + extra)
        self.proc = None

    def start(self):
        self.proc = Process(f"mosquitto-{self.port}", ["mosquitto", "-c", self.conf], self.workdir)
        wait_until(lambda: port_open(self.port) or not self.proc.alive(), 10, "mosquitto to listen")
        if not self.proc.alive():
            raise AssertionError("mosquitto exited:\n" + self.proc.output())
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


def control_request(path, line, timeout=5):
    """Send one line to a Unix control socket (the simulator's); return its reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace").strip()


class Simulator:
    def __init__(self, workdir, config, sets, scenario=None, extra=()):
        self.workdir = workdir
        self.control = os.path.join(workdir, "sim.sock")
        self.ready = os.path.join(workdir, "sim.ready")
        self.argv = [os.path.join(BUILD, "firegw-sim"), "--config", config,
                     "--control", self.control, "--ready-file", self.ready, "--seed", "7"]
        for s in sets:
            self.argv += ["--set", s]
        if scenario:
            self.argv += ["--scenario", scenario]
        self.argv += list(extra)
        self.proc = None

    def start(self):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        self.proc = Process("firegw-sim", self.argv, self.workdir)
        wait_until(lambda: os.path.exists(self.ready) or not self.proc.alive(), 15,
                   "the simulator's ready file")
        if not self.proc.alive():
            raise AssertionError("firegw-sim exited:\n" + self.proc.output())
        return self

    def cmd(self, line):
        """Send one control command; return the reply line. Fails the test on error."""
        reply = control_request(self.control, line)
        if reply.startswith("error"):
            raise AssertionError(f"simulator rejected {line!r}: {reply}")
        return reply

    def status(self):
        return json.loads(self.cmd("status"))

    def unit_requests(self, bus, unit):
        """How many requests the simulator has received for a unit id on a bus."""
        return self.status()["buses"][bus]["units"].get(str(unit), 0)

    def stop(self):
        if self.proc:
            rc = self.proc.stop()
            self.proc = None
            return rc
        return None


class Gateway:
    def __init__(self, workdir, config, sets, state_dir=None, env=None):
        self.workdir = workdir
        self.env = env
        self.state_dir = state_dir or os.path.join(workdir, "state")
        self.argv = [os.path.join(BUILD, "firegw"), "--config", config,
                     "--state-dir", self.state_dir, "--log-level", "debug"]
        for s in sets:
            self.argv += ["--set", s]
        self.proc = None

    def start(self):
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = Process("firegw", self.argv, self.workdir, env=env)
        return self

    def stop(self):
        rc = self.proc.stop() if self.proc else None
        return rc

    def ctl(self, command, expect_ok=True):
        """Run `firegw ctl COMMAND` against this gateway; returns (exit code, output)."""
        argv = [os.path.join(BUILD, "firegw"), "ctl", "--state-dir", self.state_dir]
        argv += command.split()
        p = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30, text=True, stdin=subprocess.DEVNULL)
        if expect_ok and p.returncode != 0:
            raise AssertionError(f"firegw ctl {command}: exit {p.returncode}: {p.stdout}")
        return p.returncode, p.stdout.strip()

    def wait_control(self, timeout=15):
        """Wait until the gateway answers on its control socket."""
        wait_until(lambda: self.ctl("status", expect_ok=False)[0] == 0, timeout,
                   "the gateway's control socket")

    def stopped_badly(self):
        """A message if the gateway crashed or failed its sanitizer checks, else None."""
        if not self.proc or self.proc.killed:
            return None
        rc = self.proc.stop()
        if rc == 0:
            return None
        lines = self.proc.output().splitlines()
        # A sanitizer report is read from its start: the stacks that matter come first.
        start = next((i for i, x in enumerate(lines) if ("Sanitizer" in x and "ERROR" in x) or
                      "runtime error" in x), None)
        shown = lines[start:start + 120] if start is not None else lines[-40:]
        return f"firegw exited with {rc}:\n" + "\n".join(shown)

    def kill9(self):
        if self.proc:
            self.proc.kill9()


class Watcher:
    """An MQTT subscriber that records every message and validates it against its schema."""

    def __init__(self, port, topic="#", client_id=None, tls=None, clean=True):
        """tls: dict of paho tls_set() arguments (ca_certs, certfile, keyfile), or None."""
        self.lock = threading.Condition()
        self.messages = []
        self.invalid = []
        self.client = mqtt.Client(client_id=client_id or f"watch-{os.getpid()}-{time.time_ns()}",
                                  clean_session=clean)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc: c.subscribe(topic, qos=1)
        if tls:
            self.client.tls_set(**tls)
        self.client.connect(LOOPBACK, port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        payload = msg.payload
        record = {"topic": msg.topic, "retain": bool(msg.retain), "raw": payload,
                  "t": time.monotonic()}
        if msg.topic.endswith("/cap"):
            # CAP 1.2 is XML (docs/cap.md); test_cap.py validates it against its schema.
            record["json"] = None
            with self.lock:
                self.messages.append(record)
                self.lock.notify_all()
            return
        try:
            record["json"] = json.loads(payload.decode()) if payload else None
        except ValueError as e:
            record["json"] = None
            self.invalid.append((msg.topic, f"not JSON: {e}"))
        if record["json"] is not None:
            kind = check_schemas.kind_of_topic(msg.topic)
            if kind:
                err = check_schemas.validate(kind, payload)
                if err:
                    self.invalid.append((msg.topic, err))
        with self.lock:
            self.messages.append(record)
            self.lock.notify_all()

    def mark(self):
        """A position in the record: pass it as since= to look only at later messages."""
        with self.lock:
            return len(self.messages)

    def wait_for(self, pred, timeout, what, since=0):
        """The first message recorded at or after position since for which pred(record) is
        true, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for m in self.messages[since:]:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m["topic"] for m in self.messages})
                    raise AssertionError(f"no message for {what} within {timeout:.1f}s; "
                                         f"{len(self.messages)} seen on {topics}")
                self.lock.wait(min(left, 0.2))

    def events(self, **match):
        with self.lock:
            out = []
            for m in self.messages:
                if m["topic"].endswith("/event") and m["json"] is not None:
                    if all(_field(m["json"], k) == v for k, v in match.items()):
                        out.append(m["json"])
            return out

    def wait_event(self, timeout, since=0, **match):
        """Wait for an event whose fields match, e.g. kind="fire_alarm", detector__id="X"."""
        def pred(m):
            return (m["topic"].endswith("/event") and m["json"] is not None
                    and all(_field(m["json"], k) == v for k, v in match.items()))
        return self.wait_for(pred, timeout, f"event {match}", since)["json"]

    def clear(self):
        with self.lock:
            self.messages.clear()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def _field(obj, path):
    """detector__id -> obj["detector"]["id"]; None if missing."""
    for part in path.split("__"):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


class GatewayTestCase(unittest.TestCase):
    """Base class: a temp dir, and everything started through it is stopped at the end."""

    SITE = os.path.join(ROOT, "tests", "integration", "site-small.conf")

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="firegw-it-")
        self._cleanup = []
        self._gateways = []
        result = getattr(self._outcome, "result", None)
        self._problems_before = len(result.failures) + len(result.errors) if result else 0

    def tearDown(self):
        result = getattr(self._outcome, "result", None)
        failed = result is not None and \
            len(result.failures) + len(result.errors) > self._problems_before
        # Gateways first, while broker and simulator still run: every gateway must stop
        # cleanly (exit 0, no sanitizer report) unless the test killed it on purpose.
        bad = [m for m in (gw.stopped_badly() for gw in self._gateways) if m]
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                print(f"cleanup: {e}")
        if failed:
            for name in sorted(os.listdir(self.workdir)):
                if name.endswith(".log"):
                    with open(os.path.join(self.workdir, name), errors="replace") as f:
                        text = f.read()
                    print(f"\n----- {name} (last 60 lines) -----")
                    print("\n".join(text.splitlines()[-60:]))
        shutil.rmtree(self.workdir, ignore_errors=True)
        if bad:
            raise AssertionError("\n".join(bad))

    def start_broker(self, port=None, extra=""):
        b = Broker(self.workdir, port, extra).start()
        self._cleanup.append(b.stop)
        return b

    def small_site_sets(self, tcp_port, broker_port):
        return [f"bus.tcp1.port={tcp_port}",
                f"bus.rtu1.device={os.path.join(self.workdir, 'ttyRTU1')}",
                f"uplink.district.port={broker_port}"]

    def start_sim(self, sets, config=None, scenario=None, extra=()):
        sim = Simulator(self.workdir, config or self.SITE, sets, scenario, extra).start()
        self._cleanup.append(sim.stop)
        return sim

    def start_gateway(self, sets, config=None, state_dir=None, env=None):
        gw = Gateway(self.workdir, config or self.SITE, sets, state_dir, env).start()
        self._gateways.append(gw)
        return gw

    def watch(self, port, topic="#", tls=None):
        w = Watcher(port, topic, tls=tls)
        self._cleanup.append(w.close)
        return w

    def start_all(self):
        """Broker, simulator and gateway for the small site; returns (broker, sim, gw, watcher)."""
        broker = self.start_broker()
        tcp_port = free_port()
        sets = self.small_site_sets(tcp_port, broker.port)
        watcher = self.watch(broker.port)
        sim = self.start_sim(sets)
        gw = self.start_gateway(sets)
        self.sets = sets
        return broker, sim, gw, watcher

    def assert_all_valid(self, watcher):
        self.assertEqual(watcher.invalid, [], "messages that break docs/schema")
