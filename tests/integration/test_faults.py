"""Fault injection: the gateway against a broker that keeps restarting, a bus that stalls,
devices that answer garbage, short frames, bad CRCs and Modbus exceptions, a serial device
that disappears and comes back, an event log on a full disk, a wall clock that jumps, and a
local client that sends its command a byte at a time.

In each: no crash (every gateway must stop cleanly, sanitizers included), the right faults
reported over MQTT, recovery without a restart, and no event lost: the receiver's sequence
numbers are contiguous up to the last one a heartbeat announced, and every expected alarm
arrived. What each test proves is written up in docs/robustness.md.
"""
import datetime
import glob
import json
import os
import resource
import shutil
import socket
import subprocess
import threading
import time

from harness import (BUILD, ROOT, Gateway, GatewayTestCase, Watcher, free_port,
                     wait_until)

PREFIX = "firegw/it-building"
REPORT_S = 15
# An alarm on a healthy bus must not wait for a sick one: one poll period (200 ms) plus
# processing, with room for a loaded machine running sanitizers.
TIMELY_S = 5
TCP_DEVICES = ("tcp1/1", "tcp1/2", "tcp1/3", "panel")
TCP_DETECTORS = ("T-S1", "T-S2", "T-H1", "P-Z1", "P-Z2")
# RTU devices are retried every second while down, so recovery is seen in seconds.
QUICK_RTU = ["bus.rtu1.backoff_min=1s", "bus.rtu1.backoff_max=2s",
             "bus.rtu1.reconnect_min=200ms", "bus.rtu1.reconnect_max=1s"]


def faketime_library():
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


def utc_seconds(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def field(obj, path):
    """detector__id -> obj["detector"]["id"]; None if missing."""
    for part in path.split("__"):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


class FaultTestCase(GatewayTestCase):
    def events_since(self, w, mark, **match):
        """The events recorded at or after position mark whose fields match."""
        with w.lock:
            msgs = list(w.messages[mark:])
        return [m["json"] for m in msgs if m["topic"].endswith("/event") and m["json"] and
                all(field(m["json"], k) == v for k, v in match.items())]

    def assert_no_loss(self, w, what="the receiver"):
        """Every event up to the last one a heartbeat announced arrived: no seq is missing."""
        def caught_up():
            seqs = {e["seq"] for e in w.events()}
            beats = [m["json"]["last_seq"] for m in list(w.messages)
                     if m["topic"].endswith("/heartbeat") and m["json"]]
            return seqs and beats and beats[-1] == max(seqs) and seqs
        seqs = sorted(wait_until(caught_up, REPORT_S, f"{what} to catch up with the heartbeat"))
        self.assertEqual(seqs, list(range(seqs[0], seqs[-1] + 1)),
                         f"{what}: sequence numbers missing (events lost)")
        start = [e["seq"] for e in w.events(kind="gateway_start")]
        self.assertEqual(start[:1], seqs[:1], f"{what}: events before gateway_start")
        self.assert_all_valid(w)

    def assert_no_alarm_from(self, w, mark, detectors):
        """No alarm or implausible reading came from detectors whose device was misbehaving."""
        for det in detectors:
            for kind in ("fire_alarm", "pre_alarm"):
                self.assertEqual(self.events_since(w, mark, kind=kind, detector__id=det), [],
                                 f"{det}: a {kind} out of a faulty line")
            self.assertEqual(self.events_since(w, mark, kind="fault", detector__id=det,
                                               fault="implausible_value"), [],
                             f"{det}: a wrong answer was taken as a reading")

    def wait_faults(self, w, mark, devices=(), detectors=(), restore=False):
        kind = "fault_restore" if restore else "fault"
        for dev in devices:
            w.wait_event(REPORT_S, since=mark, kind=kind, source="device", device__id=dev,
                         fault="device_down")
        for det in detectors:
            w.wait_event(REPORT_S, since=mark, kind=kind, detector__id=det, fault="no_response")

    def timely_alarm(self, sim, w, det, cmd):
        mark = w.mark()
        t0 = time.monotonic()
        sim.cmd(cmd)
        ev = w.wait_event(REPORT_S, since=mark, kind="fire_alarm", detector__id=det)
        took = time.monotonic() - t0
        self.assertLess(took, TIMELY_S, f"the {det} alarm took {took:.1f} s")
        self.assertTrue(ev["real"])
        return ev

    def start_persistent_broker(self, port=None):
        """A broker that keeps sessions and queued messages across its restarts; returns it
        and the config lines to start it again with."""
        store = os.path.join(self.workdir, "broker-store")
        if not os.path.isdir(store):
            os.mkdir(store)
            # Mosquitto started as root drops to its own user, which must write the store.
            os.chmod(self.workdir, 0o755)
            os.chmod(store, 0o777)
        extra = f"persistence true\npersistence_location {store}/\n"
        return self.start_broker(port, extra=extra), extra

    def centre(self, port):
        """A receiving centre: a persistent session, so the broker keeps its events for it."""
        w = Watcher(port, f"{PREFIX}/#", client_id=f"centre-{os.getpid()}-{port}", clean=False)
        self._cleanup.append(w.close)
        return w

    def start_faulty_site(self):
        """Broker, simulator and gateway, every detector polled once."""
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port) + QUICK_RTU
        w = self.watch(broker.port)
        sim = self.start_sim(sets)
        gw = self.start_gateway(sets)
        w.wait_event(REPORT_S, kind="gateway_start")
        for det in TCP_DETECTORS + ("R-S1", "R-H1"):
            w.wait_for(lambda m, d=det: m["topic"] == f"{PREFIX}/detector/{d}/state",
                       REPORT_S, f"{det} polled")
        return broker, sim, gw, w


class BrokerRestarts(FaultTestCase):
    def two_uplink_site(self):
        """The small site with a second path, the building owner's broker."""
        with open(self.SITE) as f:
            text = f.read()
        text = text.replace("profile_dir = ../../sensors/profiles",
                            f"profile_dir = {ROOT}/sensors/profiles")
        text += ("\n[uplink owner]\nrole = owner\nhost = 127.0.0.1\nport = 1\n"
                 "keepalive = 2s\nheartbeat = 1s\n")
        path = os.path.join(self.workdir, "two-paths.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_broker_restarted_repeatedly(self):
        district, extra = self.start_persistent_broker()
        port = district.port
        owner = self.start_broker()
        config = self.two_uplink_site()
        sets = self.small_site_sets(free_port(), port) + [
            f"uplink.owner.port={owner.port}", "uplink.district.ack_timeout=3s"]
        centre = self.centre(port)
        home = self.watch(owner.port, f"{PREFIX}/#")
        sim = self.start_sim(sets, config=config)
        self.start_gateway(sets, config=config)
        centre.wait_event(REPORT_S, kind="gateway_start")

        def acknowledge(ev):
            ack = {"schema": 1, "type": "ack", "event_id": ev["event_id"], "seq": ev["seq"],
                   "receiver": "test-centre",
                   "ts": datetime.datetime.now(datetime.timezone.utc).strftime(
                       "%Y-%m-%dT%H:%M:%S.000Z")}
            centre.client.publish(f"{PREFIX}/ack", json.dumps(ack), qos=1)

        # A long outage with a fire: the other path has it at once, then reports the silent
        # centre (transmission fault) until the alarm is acknowledged after the restart.
        district.stop()
        alarm = self.timely_alarm(sim, home, "T-S1", "set T-S1 value 3.0")
        fault = home.wait_event(REPORT_S, kind="fault", fault="transmission")
        self.assertIn("district", fault["detail"])
        district = self.start_broker(port, extra=extra)
        got = centre.wait_event(30, kind="fire_alarm", detector__id="T-S1")
        self.assertEqual(got["event_id"], alarm["event_id"])
        acknowledge(got)
        home.wait_event(REPORT_S, kind="fault_restore", fault="transmission")

        # Quick restarts while alarms and faults keep coming.
        for cmd, kind, det in (("set T-S2 value 3.0", "fire_alarm", "T-S2"),
                               ("bit R-S1 fault on", "fault", "R-S1"),
                               ("set R-H1 value 75", "fire_alarm", "R-H1")):
            district.stop()
            mark = home.mark()
            sim.cmd(cmd)
            home.wait_event(REPORT_S, since=mark, kind=kind, detector__id=det)
            district = self.start_broker(port, extra=extra)
            ev = centre.wait_event(30, kind=kind, detector__id=det)
            if kind == "fire_alarm":
                acknowledge(ev)
        # Nothing on the Modbus side noticed any of it.
        for w in (centre, home):
            self.assertEqual([e for e in w.events(kind="fault") if e["fault"] != "transmission"
                              and e["fault"] != "detector_bit"], [], "a fault out of nowhere")
        self.assert_no_loss(centre, "the district centre")
        self.assert_no_loss(home, "the owner")


class LineFaults(FaultTestCase):
    def test_stalled_bus_recovers_and_does_not_delay_the_other(self):
        broker, sim, gw, w = self.start_faulty_site()
        mark = w.mark()
        sim.cmd("stall tcp1 on")
        self.wait_faults(w, mark, TCP_DEVICES, TCP_DETECTORS)
        # The RTU bus goes on at its own pace while tcp1 hangs.
        self.timely_alarm(sim, w, "R-S1", "set R-S1 value 3.0")
        # Answering again, first with the stale replies that piled up meanwhile.
        sim.cmd("stall tcp1 off")
        self.wait_faults(w, mark, TCP_DEVICES, TCP_DETECTORS, restore=True)
        self.assert_no_alarm_from(w, mark, TCP_DETECTORS)
        ev = self.timely_alarm(sim, w, "T-S1", "set T-S1 value 3.0")
        self.assertAlmostEqual(ev["value"]["value"], 3.0, places=2)
        self.assertEqual(self.events_since(w, mark, kind="fault", source="bus"), [],
                         "a stalled line is no lost connection")
        self.assert_no_loss(w)

    def test_wrong_answers_are_faults_never_readings(self):
        broker, sim, gw, w = self.start_faulty_site()
        mark = w.mark()
        faulty = {"tcp1/1": "reply T-S1 garbage", "tcp1/3": "reply T-H1 short",
                  "panel": "reply panel exception 4", "rtu1/1": "reply R-S1 crc",
                  "rtu1/2": "reply R-H1 garbage"}
        for cmd in faulty.values():
            sim.cmd(cmd)
        self.wait_faults(w, mark, faulty, ("T-S1", "T-H1", "P-Z1", "P-Z2", "R-S1", "R-H1"))
        # Each fault names what the line did, in libmodbus's words.
        detail = {e["device"]["id"]: e["detail"]
                  for e in self.events_since(w, mark, kind="fault", fault="device_down")}
        self.assertIn("Invalid CRC", detail["rtu1/1"])
        self.assertIn("Slave device or server failure", detail["panel"])
        # A healthy detector among them still alarms at once.
        self.timely_alarm(sim, w, "T-S2", "set T-S2 value 3.0")
        for dev in faulty:
            sim.cmd(f"reply {dev} normal")
        self.wait_faults(w, mark, faulty, ("T-S1", "T-H1", "P-Z1", "P-Z2", "R-S1", "R-H1"),
                         restore=True)
        self.assert_no_alarm_from(w, mark, ("T-S1", "T-H1", "P-Z1", "P-Z2", "R-S1", "R-H1"))
        self.timely_alarm(sim, w, "R-H1", "set R-H1 value 75")
        self.assert_no_loss(w)

    def test_serial_device_unplugged_and_back(self):
        broker, sim, gw, w = self.start_faulty_site()
        mark = w.mark()
        sim.cmd("unplug rtu1")
        down = w.wait_event(REPORT_S, since=mark, kind="fault", source="bus", bus__id="rtu1")
        self.assertEqual(down["fault"], "bus_down")
        self.assertIn("ttyRTU1", down["detail"])
        self.wait_faults(w, mark, (), ("R-S1", "R-H1"))
        self.timely_alarm(sim, w, "T-H1", "set T-H1 value 80")
        # Back at the same path, behind another pty: the gateway opens it again by itself.
        sim.cmd("plug rtu1")
        w.wait_event(REPORT_S, since=mark, kind="fault_restore", source="bus", bus__id="rtu1")
        self.wait_faults(w, mark, (), ("R-S1", "R-H1"), restore=True)
        self.timely_alarm(sim, w, "R-H1", "set R-H1 value 75")
        self.assert_no_loss(w)


class HostFaults(FaultTestCase):
    def mount_wrapper(self, where, size="256k"):
        """argv that runs a command with a small tmpfs on where, in a private mount namespace
        (the mount goes when the process does); None with the reason if impossible."""
        wrap = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
        if not shutil.which("unshare"):
            return None, "unshare (util-linux) is not installed"
        script = f'mount -t tmpfs -o size={size},mode=0700 firegw-disk "$0" && exec "$@"'
        probe = os.path.join(self.workdir, "probe")
        os.makedirs(probe, exist_ok=True)
        p = subprocess.run(wrap + ["sh", "-c", script, probe, "true"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        if p.returncode != 0:
            return None, ("cannot mount a small tmpfs: needs root with CAP_SYS_ADMIN or "
                          f"unprivileged user namespaces ({' '.join(wrap)}: {p.stdout.strip()})")
        return wrap + ["sh", "-c", script, where], None

    def logged_events(self, gw, evfs, state_copy):
        """The event log as `firegw events` reads it: copied out of the gateway's namespace."""
        inner = f"/proc/{gw.proc.pid}/root{evfs}"
        shutil.rmtree(state_copy, ignore_errors=True)
        os.mkdir(state_copy)
        for name in ("events.db", "events.db-wal"):
            if os.path.exists(os.path.join(inner, name)):
                shutil.copy(os.path.join(inner, name), state_copy)
        p = subprocess.run([os.path.join(BUILD, "firegw"), "events", "--state-dir", state_copy,
                            "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def fill(self, gw, path):
        """Fill the gateway's small disk at path (in its namespace) to the last block."""
        filler = f"/proc/{gw.proc.pid}/root{path}/filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(100000):
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, 28, e)
        finally:
            os.close(fd)
        return filler

    def test_event_log_on_a_full_disk(self):
        state = os.path.join(self.workdir, "state")
        evfs = os.path.join(state, "evlog")
        os.makedirs(evfs)
        wrap, why = self.mount_wrapper(evfs)
        if not wrap:
            self.skipTest(why)
        # Only the event log lives on the small disk; sequence numbers and the rest do not.
        os.symlink("evlog/events.db", os.path.join(state, "events.db"))
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port) + QUICK_RTU
        w = self.watch(broker.port)
        sim = self.start_sim(sets)
        gw = Gateway(self.workdir, self.SITE, sets, state)
        gw.argv = wrap + gw.argv
        self._gateways.append(gw.start())
        w.wait_event(REPORT_S, kind="gateway_start")
        copy = os.path.join(self.workdir, "log-copy")
        wait_until(lambda: [e for e in self.logged_events(gw, evfs, copy)
                            if e["kind"] == "gateway_start"], REPORT_S, "the first event logged")

        filler = self.fill(gw, evfs)
        mark = w.mark()
        alarms = ("T-S1", "T-S2", "T-H1", "P-Z1")
        for det, cmd in zip(alarms, ("set T-S1 value 3.0", "set T-S2 value 3.0",
                                     "set T-H1 value 80", "bit P-Z1 alarm on")):
            self.timely_alarm(sim, w, det, cmd)
        wait_until(lambda: "NOT stored: database or disk is full" in gw.proc.output(), REPORT_S,
                   "SQLITE_FULL reported in the gateway's log")
        self.assertIn(os.path.join(state, "events.db"), gw.proc.output())
        # Space again: the log takes new events without a restart.
        os.unlink(filler)
        self.timely_alarm(sim, w, "R-H1", "set R-H1 value 75")
        last = self.events_since(w, mark, kind="fire_alarm", detector__id="R-H1")[0]
        wait_until(lambda: [e for e in self.logged_events(gw, evfs, copy)
                            if e["event_id"] == last["event_id"]], REPORT_S,
                   "the alarm raised after the disk was freed in the event log")
        self.assert_no_loss(w)

    def test_whole_state_disk_full(self):
        """The SD card is full: outbox, event log and sequence file all refuse to grow."""
        state = os.path.join(self.workdir, "state")
        os.makedirs(state)
        wrap, why = self.mount_wrapper(state, "1m")
        if not wrap:
            self.skipTest(why)
        broker, extra = self.start_persistent_broker()
        port = broker.port
        sets = self.small_site_sets(free_port(), port) + QUICK_RTU
        w = self.centre(port)
        sim = self.start_sim(sets)
        gw = Gateway(self.workdir, self.SITE, sets, state)
        gw.argv = wrap + gw.argv
        self._gateways.append(gw.start())
        w.wait_event(REPORT_S, kind="gateway_start")
        filler = self.fill(gw, state)
        # Alarms go out at once, from memory, when the durable outbox cannot take them.
        self.timely_alarm(sim, w, "T-S1", "set T-S1 value 3.0")
        wait_until(lambda: "waits in memory only" in gw.proc.output(), REPORT_S,
                   "the outbox's refusal in the gateway's log")
        self.assertIn("database or disk is full", gw.proc.output())
        # The fire police learn that events are no longer stored on the gateway.
        fault = w.wait_event(REPORT_S, kind="fault", fault="storage")
        self.assertEqual(fault["source"], "gateway")
        # With the broker away as well, what happens meanwhile still arrives afterwards.
        broker.stop()
        mark = w.mark()
        sim.cmd("bit R-S1 fault on")
        sim.cmd("set T-H1 value 80")
        wait_until(lambda: "fire_alarm detector T-H1" in gw.proc.output(), REPORT_S,
                   "the alarm raised while the broker is away")
        self.start_broker(port, extra=extra)
        w.wait_event(30, since=mark, kind="fire_alarm", detector__id="T-H1")
        w.wait_event(REPORT_S, since=mark, kind="fault", detector__id="R-S1",
                     fault="detector_bit")
        # Space again: everything carries on without a restart.
        os.unlink(filler)
        self.timely_alarm(sim, w, "R-H1", "set R-H1 value 75")
        w.wait_event(REPORT_S, kind="fault_restore", fault="storage")
        self.assert_no_loss(w)

    def test_file_size_limit(self):
        """A file size limit reached (LimitFSIZE=, ulimit -f): writes fail with EFBIG, the
        daemon lives on (it ignores SIGXFSZ, which would kill it), tells the centre and
        recovers once the limit is lifted."""
        broker, sim, gw, w = self.start_faulty_site()
        soft, hard = resource.prlimit(gw.proc.pid, resource.RLIMIT_FSIZE)
        # Every state file is past its first 4 KiB once the gateway runs: any growth fails.
        resource.prlimit(gw.proc.pid, resource.RLIMIT_FSIZE, (4096, hard))
        mark = w.mark()
        self.timely_alarm(sim, w, "T-S1", "set T-S1 value 3.0")
        fault = w.wait_event(REPORT_S, since=mark, kind="fault", fault="storage")
        self.assertEqual(fault["source"], "gateway")
        self.assertTrue(gw.proc.alive(), "the gateway died at its file size limit")
        resource.prlimit(gw.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
        self.timely_alarm(sim, w, "R-H1", "set R-H1 value 75")
        w.wait_event(REPORT_S, since=mark, kind="fault_restore", fault="storage")
        self.assert_no_loss(w)

    def test_control_client_sending_a_byte_at_a_time(self):
        """Local clients (a hung script, a slow terminal) that send their command line a
        byte at a time, one after the other, keep the control socket busy: each is cut off
        once its 200 ms for the whole line are up, with an error; none holds the main loop,
        so a fire while they go on goes out in time, and `firegw ctl` works right after."""
        broker, sim, gw, w = self.start_faulty_site()
        path = os.path.join(gw.state_dir, "control.sock")
        stop = threading.Event()
        per_client = []  # bytes each client got out before it was cut off
        replies = []

        def trickle():
            # At most 20 s, a byte every 50 ms, each within any per-read timeout.
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(REPORT_S)
                    s.connect(path)
                    n = 0
                    while n < 400 and not stop.wait(0.05):
                        try:
                            s.send(b"s")
                        except OSError:
                            break  # cut off
                        n += 1
                    per_client.append(n)
                    try:
                        replies.append(s.recv(4096).decode())
                    except OSError as e:
                        replies.append(repr(e))

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        self.addCleanup(t.join, 25)
        self.addCleanup(stop.set)
        # Some clients already cut off: the fire comes while the next ones trickle.
        wait_until(lambda: len(per_client) >= 3 or not t.is_alive(), REPORT_S,
                   "the first clients cut off")
        self.assertTrue(t.is_alive(), "the trickling clients ended early")
        self.timely_alarm(sim, w, "T-S1", "set T-S1 value 3.0")
        self.assertTrue(t.is_alive(), "the trickle did not last while the fire went out")
        stop.set()
        t.join(25)
        self.assertGreaterEqual(len(per_client), 4)
        # A client cut off by the gateway (not the one this test stopped) got the error.
        for n, reply in list(zip(per_client, replies))[:-1]:
            self.assertLess(n, 30, "a client was not cut off")
            self.assertTrue(reply.startswith("error: expected one command line"), reply)
        self.assertEqual(gw.ctl("status")[0], 0)
        self.assert_no_loss(w)

    def test_wall_clock_jumps(self):
        lib = faketime_library()
        if not lib:
            self.skipTest("libfaketime is not installed (make deps installs it)")
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port) + QUICK_RTU
        w = self.watch(broker.port)
        sim = self.start_sim(sets)
        offset_file = os.path.join(self.workdir, "faketime")
        with open(offset_file, "w") as f:
            f.write("+0\n")
        # Only CLOCK_REALTIME moves; ASan must accept a library loaded ahead of it.
        env = {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": offset_file,
               "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        gw = self.start_gateway(sets, env=env)
        w.wait_event(REPORT_S, kind="gateway_start")

        alarms = {}
        for offset, seconds, det, cmd in (("+2h", 7200, "T-S1", "set T-S1 value 3.0"),
                                          ("-1d", -86400, "R-H1", "set R-H1 value 75"),
                                          ("+0", 0, "P-Z1", "bit P-Z1 alarm on"),
                                          ("+400d", 400 * 86400, "T-H1", "set T-H1 value 80")):
            with open(offset_file, "w") as f:
                f.write(offset + "\n")
            # The new offset is read within FAKETIME_CACHE_DURATION: wait for a heartbeat
            # stamped with it.
            mark = w.mark()
            w.wait_for(lambda m, s=seconds: m["topic"] == f"{PREFIX}/heartbeat" and
                       abs(utc_seconds(m["json"]["ts"]) - time.time() - s) < 60, REPORT_S,
                       f"a heartbeat stamped {offset}", since=mark)
            ev = alarms[det] = self.timely_alarm(sim, w, det, cmd)
            self.assertLess(abs(utc_seconds(ev["ts"]) - time.time() - seconds), 60,
                            f"alarm stamped {ev['ts']} with the clock at {offset}")
            # Heartbeats run on the monotonic clock: they keep coming, about once a second.
            def beats(since=mark):
                got = [m for m in list(w.messages)[since:] if m["topic"] == f"{PREFIX}/heartbeat"]
                return got[:4] if len(got) >= 4 else None
            beats = wait_until(beats, REPORT_S, f"heartbeats after the jump to {offset}")
            gaps = [b["t"] - a["t"] for a, b in zip(beats, beats[1:])]
            self.assertLess(max(gaps), 3, f"heartbeats {gaps} apart after the jump to {offset}")
        # No timer took the jumps for elapsed time: no fault, the gateway never went offline.
        self.assertEqual(w.events(kind="fault"), [], "a fault out of a clock jump")
        self.assertEqual([m for m in w.messages if m["topic"] == f"{PREFIX}/status" and
                          m["json"] and m["json"]["state"] == "offline"], [])
        seqs = [e["seq"] for e in w.events()]
        self.assertEqual(seqs, sorted(seqs), "sequence numbers follow the events, not the clock")
        # A year and more ahead, the event log (pruned by age every second) still has them all.
        p = subprocess.run([os.path.join(BUILD, "firegw"), "events", "--state-dir", gw.state_dir,
                            "--kind", "fire_alarm", "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        logged = {json.loads(line)["event_id"] for line in p.stdout.splitlines()}
        for det, ev in alarms.items():
            self.assertIn(ev["event_id"], logged, f"the {det} alarm left the event log")
        self.assert_no_loss(w)
