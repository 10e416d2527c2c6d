#!/usr/bin/python3
"""firegw accelerated soak (make soak): a long run of the example building, polled at a
high rate, with fires and faults injected all along.

The shipped example building (config/tayho-apartment.conf: 60 detectors on an RS-485 line,
a pseudo-terminal here, and on a Modbus TCP converter with a fire panel module) runs against
firegw-sim with both buses polled every --poll-ms, reporting to two brokers on loopback: the
district's (fire police, acknowledges every fire alarm, keeps its session across restarts)
and the owner's. Then, until --minutes have passed:

- a fire every few seconds on the next detector in turn (smoke or heat), awaited at the
  owner's receiver, the air cleared, the alarm reset from the control socket, its restore
  awaited;
- every --fault-every seconds the next fault, with a fire on a healthy line while it lasts:
  the district broker stopped and started again, the TCP line stalled, a device answering
  garbage, a Modbus exception, an RTU device with CRC errors, the serial adapter unplugged
  and plugged in again. Each must be reported (the right fault event) and recovered from
  (its fault_restore) without a restart;
- every --sample-every seconds the gateway's RSS, peak RSS, open file descriptors and
  threads are read from /proc.

At the end: every fire reached both receivers (the district one after its broker came back),
the sequence numbers each receiver got are contiguous up to the last one announced by a
heartbeat (no event lost), RSS and descriptors stayed flat after the warm-up, and the gateway
stops cleanly. The report goes to bench/results/soak-latest.md (and a timestamped copy, and
the samples as JSON). Exit status 0 when every criterion is met.

Every wait is bounded; every process is stopped by its PID; only 127.0.0.1 is contacted.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import (Broker, Gateway, Simulator, Watcher, free_port,  # noqa: E402
                     wait_until)

# The benchmark's /proc readers and percentile (bench/run.py, a script: loaded by its path).
_spec = importlib.util.spec_from_file_location("bench_run",
                                               os.path.join(ROOT, "bench", "run.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
percentile = bench.percentile

CONFIG = os.path.join(ROOT, "config", "tayho-apartment.conf")
PREFIX = "firegw/tayho-hoasen-01"
RESULTS = os.path.join(ROOT, "bench", "results")
REPORT_S = 20  # how long a fault, an alarm or a restore may take to be reported
FIRE = {"smoke": 3.0, "heat": 75.0}
CLEAR = {"smoke": 0.1, "heat": 25.0}
# Floor 3 verifies smoke alarms (held 30 s): its detectors are left out of the fire round.
SKIP_ZONES = ("F3",)


QUIET = False


def log(msg):
    if not QUIET:
        print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def slope_per_hour(points):
    """Least-squares slope of (seconds, value) points, per hour; 0 with fewer than 3."""
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600


class Sampler(threading.Thread):
    """Reads the gateway's memory, descriptors and threads every interval."""

    def __init__(self, pid, every, t0):
        super().__init__(daemon=True)
        self.pid, self.every, self.t0 = pid, every, t0
        self.samples = []
        self.stop_event = threading.Event()
        self.counters = lambda: {}

    def take(self):
        try:
            rss, hwm, threads = (bench.proc_status_kb(self.pid, k)
                                 for k in ("VmRSS", "VmHWM", "Threads"))
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            cpu = bench.cpu_ticks(self.pid) / bench.TICKS
        except OSError:
            return
        s = {"t": round(time.monotonic() - self.t0, 1), "rss_kb": rss, "hwm_kb": hwm,
             "threads": threads, "fds": fds, "cpu_s": round(cpu, 2)}
        s.update(self.counters())
        self.samples.append(s)

    def run(self):
        while not self.stop_event.wait(self.every):
            self.take()

    def finish(self):
        self.stop_event.set()
        self.join(timeout=10)
        self.take()


class Soak:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.fires = []    # dicts: detector, event_id, latency_s, centre_ok, restored
        self.faults = []   # dicts: kind, reported_s, restored_s, fire_ok, problem
        self.problems = []
        self.acked = set()
        self.cleanup = []
        self.next_target = 0

    # ---- set-up ---------------------------------------------------------------------------

    def start(self):
        a = self.args
        store = os.path.join(self.workdir, "district-store")
        os.mkdir(store)
        # Mosquitto started as root drops to its own user, which must write its store.
        os.chmod(self.workdir, 0o755)
        os.chmod(store, 0o777)
        self.district_extra = f"persistence true\npersistence_location {store}/\n"
        self.district = Broker(self.workdir, extra=self.district_extra).start()
        self.owner = Broker(self.workdir).start()
        self.cleanup += [lambda: self.district.stop(), self.owner.stop]
        # The district centre keeps its session, so what the broker queued for it while it
        # was away reaches it; the owner's receiver is a plain subscriber.
        self.centre = Watcher(self.district.port, f"{PREFIX}/#",
                              client_id=f"soak-centre-{os.getpid()}", clean=False)
        self.home = Watcher(self.owner.port, f"{PREFIX}/#")
        self.cleanup += [self.centre.close, self.home.close]
        poll = f"{a.poll_ms}ms"
        self.sets = [
            f"bus.rs485-a.device={self.workdir}/ttyRS485A", f"bus.rs485-a.poll_interval={poll}",
            "bus.rs485-a.backoff_min=1s", "bus.rs485-a.backoff_max=2s",
            "bus.rs485-a.reconnect_min=200ms", "bus.rs485-a.reconnect_max=1s",
            "bus.tcp-b.host=127.0.0.1", f"bus.tcp-b.port={free_port()}",
            f"bus.tcp-b.poll_interval={poll}", "bus.tcp-b.timeout=200ms",
            "bus.tcp-b.backoff_min=1s", "bus.tcp-b.backoff_max=2s",
            "defaults.no_response=3s", "defaults.lifecheck_timeout=3s",
            "uplink.district.host=127.0.0.1", f"uplink.district.port={self.district.port}",
            "uplink.district.heartbeat=1s", "uplink.district.keepalive=5s",
            "uplink.owner.host=127.0.0.1", f"uplink.owner.port={self.owner.port}",
            "uplink.owner.heartbeat=1s"]
        self.sim = Simulator(self.workdir, CONFIG, self.sets).start()
        self.cleanup.append(self.sim.stop)
        self.gw = Gateway(self.workdir, CONFIG, self.sets)
        # The harness logs at debug level for tests; a long run logs as in the field.
        self.gw.argv[self.gw.argv.index("--log-level") + 1] = "info"
        self.gw.start()
        # Stopped first on the way out, also when the run breaks off (stopping twice is fine).
        self.cleanup.append(self.gw.stop)
        self.home.wait_event(30, kind="gateway_start")
        st = self.sim.status()
        every = [d for d in st["detectors"]]

        def all_states(m):
            topics = {x["topic"] for x in list(self.home.messages)}
            return all(f"{PREFIX}/detector/{d}/state" in topics for d in every)
        self.home.wait_for(all_states, 60, "a retained state from every detector")
        self.device_of = {d: v["device"] for d, v in st["detectors"].items()}
        self.rtu_devices = sorted({v["device"] for v in st["detectors"].values()
                                   if v["device"].startswith("rs485-a/")})
        self.tcp_devices = sorted({v["device"] for v in st["detectors"].values()
                                   if v["device"].startswith("tcp-b/")})
        types = self.detector_types()
        self.targets = [d for d in sorted(types) if types[d] in FIRE]
        self.type_of = types
        log(f"gateway pid {self.gw.proc.pid}: {len(self.targets)} detectors in the fire "
            f"round, polled every {a.poll_ms} ms")

    def detector_types(self):
        """Detector id -> smoke or heat, from the retained states, skipping SKIP_ZONES and
        the fire panel's zones."""
        out = {}
        for m in list(self.home.messages):
            j = m["json"]
            if m["topic"].endswith("/state") and j and j.get("type") == "detector_state":
                det = j["detector"]
                if det["zone"]["id"] not in SKIP_ZONES and not det["id"].startswith("P-"):
                    out[det["id"]] = det["type"]
        return out

    # ---- acknowledgements, like the district's receiving centre ---------------------------

    def acknowledge(self):
        for ev in self.centre.events():
            if ev["kind"] not in ("fire_alarm", "fire_confirmed") or not ev.get("real", True):
                continue
            if ev["event_id"] in self.acked:
                continue
            self.acked.add(ev["event_id"])
            ack = {"schema": 1, "type": "ack", "event_id": ev["event_id"], "seq": ev["seq"],
                   "receiver": "soak-centre",
                   "ts": datetime.datetime.now(datetime.timezone.utc).strftime(
                       "%Y-%m-%dT%H:%M:%S.000Z")}
            self.centre.client.publish(f"{PREFIX}/ack", json.dumps(ack), qos=1)

    # ---- fires ----------------------------------------------------------------------------

    def pick(self, avoid=()):
        """The next detector of the round whose device is not in avoid (device ids, or
        bus prefixes ending in '/')."""
        for _ in range(len(self.targets)):
            det = self.targets[self.next_target % len(self.targets)]
            self.next_target += 1
            dev = self.device_of[det]
            if dev not in avoid and not any(dev.startswith(p) for p in avoid if p.endswith("/")):
                return det
        raise RuntimeError(f"no detector outside {avoid}")

    def polled_twice(self, det):
        """Wait until the gateway has read det's device twice more (so it saw what the
        simulator was just told)."""
        bus, _, unit = self.device_of[det].partition("/")

        def count():
            return self.sim.status()["buses"][bus]["units"].get(unit, 0)
        n0 = count()
        try:
            wait_until(lambda: count() >= n0 + 2, 10, f"two reads of {det}", interval=0.05)
        except AssertionError:
            self.problems.append(f"{det}: its device was not read for 10 s")

    def wait_quiet(self, w, timeout, since, **match):
        try:
            return w.wait_event(timeout, since=since, **match)
        except AssertionError:
            return None

    def fire(self, avoid=()):
        """One fire, awaited at the owner's receiver, cleared and reset."""
        det = self.pick(avoid)
        kind = self.type_of[det]
        mark = self.home.mark()
        t0 = time.monotonic()
        self.sim.cmd(f"set {det} value {FIRE[kind]}")
        ev = self.wait_quiet(self.home, REPORT_S, mark, kind="fire_alarm", detector__id=det)
        rec = {"detector": det, "t": round(t0 - self.t0, 1), "event_id": None,
               "latency_s": None, "restored": False}
        self.fires.append(rec)
        self.sim.cmd(f"set {det} value {CLEAR[kind]}")
        if ev is None:
            self.problems.append(f"fire on {det} at {rec['t']} s: no fire_alarm within "
                                 f"{REPORT_S} s")
            return rec
        rec["event_id"] = ev["event_id"]
        got = [m for m in self.home.messages[mark:] if m["json"] and
               m["json"].get("event_id") == ev["event_id"]]
        rec["latency_s"] = round(got[0]["t"] - t0, 3)
        # Reset once the gateway has read the clear air (a reset in smoke would alarm again
        # at once), until the detector restores.
        self.polled_twice(det)
        deadline = time.monotonic() + REPORT_S
        while time.monotonic() < deadline:
            self.gw.ctl("reset all", expect_ok=False)
            if self.wait_quiet(self.home, 1.0, mark, kind="restore", detector__id=det):
                rec["restored"] = True
                break
        if not rec["restored"]:
            self.problems.append(f"fire on {det} at {rec['t']} s: no restore after reset")
        self.acknowledge()
        return rec

    # ---- faults ---------------------------------------------------------------------------

    def fault_phase(self, kind):
        """Inject one fault; a fire on a healthy line meanwhile; end it; check both ends."""
        rec = {"kind": kind, "t": round(time.monotonic() - self.t0, 1), "reported_s": None,
               "restored_s": None, "fire_ok": False}
        mark = self.home.mark()
        t0 = time.monotonic()
        tcp_dev = self.tcp_devices[(len(self.faults) * 7) % len(self.tcp_devices)]
        rtu_dev = self.rtu_devices[(len(self.faults) * 5) % len(self.rtu_devices)]
        if kind == "broker_restart":
            self.district.stop()
            fire = self.fire()
            # Back on the same port with its store: the centre's session and the gateway's
            # queued messages carry over.
            self.district = Broker(self.workdir, self.district.port,
                                   extra=self.district_extra).start()
            rec["fire_ok"] = fire["latency_s"] is not None
            ok = self.wait_quiet(self.centre, 60, 0, kind="fire_alarm",
                                 event_id=fire["event_id"]) if fire["event_id"] else None
            rec["restored_s"] = round(time.monotonic() - t0, 2) if ok else None
            if not ok:
                self.problems.append(f"district broker down at {rec['t']} s: the fire during "
                                     "the outage never reached the district centre")
            self.faults.append(rec)
            return rec
        if kind == "stall_tcp":
            # Every device of the line times out in turn: its detectors' no-response time
            # is what reports a silent line first.
            begin, end = "stall tcp-b on", "stall tcp-b off"
            det = next(d for d in sorted(self.device_of) if self.device_of[d] == tcp_dev)
            expect = {"detector__id": det, "fault": "no_response"}
            avoid = ("tcp-b/", "panel")
        elif kind in ("garbage", "exception", "crc"):
            # A device answering wrongly: garbage on TCP, exception 4 from the fire panel,
            # a spoiled CRC on the RS-485 line.
            dev, how = {"garbage": (tcp_dev, "garbage"), "exception": ("panel", "exception 4"),
                        "crc": (rtu_dev, "crc")}[kind]
            begin, end = f"reply {dev} {how}", f"reply {dev} normal"
            expect = {"source": "device", "device__id": dev, "fault": "device_down"}
            avoid = (dev,)
        elif kind == "unplug":
            begin, end = "unplug rs485-a", "plug rs485-a"
            expect = {"source": "bus", "bus__id": "rs485-a", "fault": "bus_down"}
            avoid = ("rs485-a/",)
        else:
            raise ValueError(kind)
        self.sim.cmd(begin)
        ev = self.wait_quiet(self.home, REPORT_S, mark, kind="fault", **expect)
        if ev:
            rec["reported_s"] = round(time.monotonic() - t0, 2)
        else:
            self.problems.append(f"{kind} at {rec['t']} s: no fault {expect} within {REPORT_S} s")
        fire = self.fire(avoid=avoid)
        rec["fire_ok"] = fire["latency_s"] is not None
        t1 = time.monotonic()
        self.sim.cmd(end)
        ok = self.wait_quiet(self.home, REPORT_S + 10, mark, kind="fault_restore", **expect)
        if ok:
            rec["restored_s"] = round(time.monotonic() - t1, 2)
        else:
            self.problems.append(f"{kind} at {rec['t']} s: no fault_restore {expect}")
        self.faults.append(rec)
        return rec

    # ---- the run --------------------------------------------------------------------------

    FAULTS = ("broker_restart", "stall_tcp", "garbage", "exception", "crc", "unplug")

    def counters(self):
        fires = self.fires
        return {"fires": len(fires), "faults": len(self.faults)}

    def run(self):
        a = self.args
        self.t0 = time.monotonic()
        self.start()
        self.sampler = Sampler(self.gw.proc.pid, a.sample_every, self.t0)
        self.sampler.counters = self.counters
        self.sampler.take()
        self.sampler.start()
        deadline = self.t0 + a.minutes * 60
        last_fault = time.monotonic()
        n = 0
        # Bounded: every fire and fault phase ends within its own bounded waits, and the
        # loop stops at the deadline or after a count no run of this length can reach.
        while (time.monotonic() < deadline or len(self.faults) < a.min_faults) and n < 100000:
            n += 1
            self.fire()
            if a.fault_every >= 0 and time.monotonic() - last_fault >= a.fault_every:
                kind = self.FAULTS[len(self.faults) % len(self.FAULTS)]
                rec = self.fault_phase(kind)
                log(f"{kind}: reported in {rec['reported_s']} s, restored in "
                    f"{rec['restored_s']} s, fire meanwhile {'ok' if rec['fire_ok'] else 'LOST'}")
                last_fault = time.monotonic()
            if n % 20 == 0:
                s = self.sampler.samples[-1]
                log(f"{s['t']:.0f} s: {self.counters()['fires']} fires, {len(self.faults)} "
                    f"faults, RSS {s['rss_kb'] / 1024:.1f} MiB, {s['fds']} fds")
            time.sleep(a.pause)
        self.finish()

    def finish(self):
        # Everything the centre is owed arrives: every fire, and its sequence numbers.
        fires = self.fires
        ids = {f["event_id"] for f in fires if f["event_id"]}

        def centre_has_all():
            self.acknowledge()
            got = {e["event_id"] for e in self.centre.events(kind="fire_alarm")}
            return ids <= got
        try:
            wait_until(centre_has_all, 60, "every fire at the district centre", interval=0.5)
        except AssertionError:
            pass
        got = {e["event_id"] for e in self.centre.events(kind="fire_alarm")}
        for f in fires:
            f["centre_ok"] = f["event_id"] in got if f["event_id"] else False
        missing = [f["detector"] for f in fires if f["event_id"] and not f["centre_ok"]]
        if missing:
            self.problems.append(f"{len(missing)} fires never reached the district centre: "
                                 f"{missing[:10]}")
        self.loss = {w_name: self.sequence_gaps(w) for w_name, w in
                     (("district", self.centre), ("owner", self.home))}
        for name, gap in self.loss.items():
            if gap:
                self.problems.append(f"{name} receiver: {gap}")
        for name, w in (("district", self.centre), ("owner", self.home)):
            if w.invalid:
                self.problems.append(f"{name} receiver: {len(w.invalid)} messages break "
                                     f"the schema, e.g. {w.invalid[0]}")
        self.sampler.finish()
        self.transmission = len(self.home.events(kind="fault", fault="transmission"))
        if self.transmission:
            self.problems.append(f"{self.transmission} transmission faults: an alarm waited "
                                 "for the centre's acknowledgement longer than ack_timeout")
        bad = self.gw.stopped_badly()
        self.exit_ok = bad is None
        if bad:
            self.problems.append(bad[:2000])

    def sequence_gaps(self, w):
        """None when the receiver has every sequence number from gateway_start up to the
        last one a heartbeat announced, else what is missing."""
        def caught_up():
            seqs = {e["seq"] for e in w.events()}
            beats = [m["json"]["last_seq"] for m in list(w.messages)
                     if m["topic"].endswith("/heartbeat") and m["json"]]
            return bool(seqs) and bool(beats) and beats[-1] <= max(seqs)
        try:
            wait_until(caught_up, 30, "the receiver to catch up with the heartbeat",
                       interval=0.5)
        except AssertionError:
            return "never caught up with the last_seq of its heartbeats"
        seqs = sorted({e["seq"] for e in w.events()})
        start = [e["seq"] for e in w.events(kind="gateway_start")]
        first = start[0] if start else seqs[0]
        holes = sorted(set(range(first, seqs[-1] + 1)) - set(seqs))
        if holes:
            return f"{len(holes)} sequence numbers missing, e.g. {holes[:10]}"
        return None

    def stop(self):
        for fn in reversed(self.cleanup):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - the rest must stop too
                log(f"cleanup: {e}")

    # ---- verdicts -------------------------------------------------------------------------

    def steady(self):
        """The samples after the warm-up."""
        warm = self.args.warmup_minutes * 60
        return [s for s in self.sampler.samples if s["t"] >= warm and s.get("rss_kb")]

    def verdicts(self):
        a = self.args
        fires = self.fires
        steady = self.steady()
        out = []
        delivered = [f for f in fires if f["latency_s"] is not None]
        out.append(("every fire reached the owner's receiver",
                    f"{len(delivered)} of {len(fires)}", len(delivered) == len(fires) > 0))
        centre = [f for f in fires if f.get("centre_ok")]
        out.append(("every fire reached the district centre (some after its broker's restart)",
                    f"{len(centre)} of {len(fires)}", len(centre) == len(fires) > 0))
        out.append(("no event lost (sequence numbers contiguous up to the heartbeat's last_seq)",
                    "; ".join(f"{k}: {v or 'none missing'}" for k, v in self.loss.items()),
                    not any(self.loss.values())))
        done = [f for f in self.faults if (f["reported_s"] is not None or
                                           f["kind"] == "broker_restart") and
                f["restored_s"] is not None and f["fire_ok"]]
        out.append(("every injected fault reported and recovered from, a fire going out "
                    "meanwhile", f"{len(done)} of {len(self.faults)}",
                    len(done) == len(self.faults) and (a.fault_every < 0 or self.faults)))
        out.append(("no transmission fault (every alarm acknowledged in time)",
                    str(self.transmission), self.transmission == 0))
        if len(steady) >= 3:
            rss = [s["rss_kb"] for s in steady]
            fds = [s["fds"] for s in steady]
            growth = (statistics.median(rss[-3:]) - statistics.median(rss[:3])) / 1024
            half = steady[len(steady) // 2:]
            late = (statistics.median(rss[-3:]) -
                    statistics.median([s["rss_kb"] for s in half[:3]])) / 1024
            out.append((f"RSS flat after the warm-up (end - start <= {a.rss_growth_mib} MiB)",
                        f"{rss[0] / 1024:.1f} -> {rss[-1] / 1024:.1f} MiB "
                        f"(min {min(rss) / 1024:.1f}, max {max(rss) / 1024:.1f}; "
                        f"{growth:+.2f} MiB, {late:+.2f} MiB over the second half; slope "
                        f"{slope_per_hour([(s['t'], s['rss_kb'] / 1024) for s in steady]):+.2f}"
                        " MiB/h)", growth <= a.rss_growth_mib))
            out.append((f"open file descriptors flat (range <= {a.fd_range})",
                        f"{min(fds)}-{max(fds)}", max(fds) - min(fds) <= a.fd_range))
        else:
            out.append(("RSS and descriptors flat", "too few samples after the warm-up",
                        a.minutes <= a.warmup_minutes))
        out.append(("the gateway stopped cleanly (exit 0, no sanitizer report)",
                    "yes" if self.exit_ok else "no", self.exit_ok))
        return out


def report(soak, started, finished, build):
    a = soak.args
    fires = soak.fires
    lat = [f["latency_s"] * 1000 for f in fires if f["latency_s"] is not None]
    L = [f"# firegw soak, {started:%Y-%m-%d %H:%M} UTC", "",
         f"`{' '.join(['bench/soak/run.py'] + sys.argv[1:])}`: {a.minutes:g} min, both buses "
         f"polled every {a.poll_ms} ms, a fault every {a.fault_every:g} s, samples every "
         f"{a.sample_every:g} s, warm-up {a.warmup_minutes:g} min. Build `{build}`. "
         f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}; "
         f"ran {(finished - started).total_seconds() / 60:.1f} min.", "",
         "| criterion | measured | met |", "| --- | --- | --- |"]
    verdicts = soak.verdicts()
    for what, measured, ok in verdicts:
        L.append(f"| {what} | {measured} | {'yes' if ok else '**no**'} |")
    L += ["", f"Fires: {len(fires)}; alarm latency at the owner's receiver p50 / p99 / max "
          f"{percentile(lat, 0.5) or 0:.0f} / {percentile(lat, 0.99) or 0:.0f} / "
          f"{max(lat) if lat else 0:.0f} ms.", ""]
    L += ["| fault | injected | reported after s (median, max) | recovered after s "
          "(median, max) | fire meanwhile delivered |", "| --- | --- | --- | --- | --- |"]
    for kind in Soak.FAULTS:
        rs = [f for f in soak.faults if f["kind"] == kind]
        if not rs:
            continue
        rep = [f["reported_s"] for f in rs if f["reported_s"] is not None]
        rec = [f["restored_s"] for f in rs if f["restored_s"] is not None]

        def mm(xs):
            return f"{statistics.median(xs):.2f}, {max(xs):.2f}" if xs else "-"
        shown_rep = "n/a: nothing on the line to report" if kind == "broker_restart" else \
            f"{mm(rep)} ({len(rep)})"
        L.append(f"| {kind} | {len(rs)} | {shown_rep} | {mm(rec)} ({len(rec)}) | "
                 f"{sum(1 for f in rs if f['fire_ok'])} of {len(rs)} |")
    L += ["", "The gateway process over the run (one sample in "
          f"{max(1, len(soak.sampler.samples) // 12)}, and the last):", "",
          "| elapsed min | RSS MiB | peak RSS MiB | open fds | threads | CPU s | fires | faults |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    samples = soak.sampler.samples
    step = max(1, len(samples) // 12)
    shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    for s in shown:
        L.append(f"| {s['t'] / 60:.1f} | {s['rss_kb'] / 1024:.1f} | {s['hwm_kb'] / 1024:.1f} | "
                 f"{s['fds']} | {s['threads']} | {s['cpu_s']:.1f} | {s.get('fires', 0)} | "
                 f"{s.get('faults', 0)} |")
    if soak.problems:
        L += ["", "Problems:", ""] + [f"- {p}" for p in soak.problems[:50]]
    return "\n".join(L) + "\n", all(ok for _, _, ok in verdicts)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--poll-ms", type=int, default=100,
                    help="both buses' poll interval (100 ms, the shortest firegw allows)")
    ap.add_argument("--fault-every", type=float, default=45,
                    help="seconds between injected faults (negative: none)")
    ap.add_argument("--min-faults", type=int, default=0,
                    help="go on past --minutes until this many faults were injected")
    ap.add_argument("--sample-every", type=float, default=10)
    ap.add_argument("--warmup-minutes", type=float, default=5)
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between fires")
    ap.add_argument("--rss-growth-mib", type=float, default=2.0)
    ap.add_argument("--fd-range", type=int, default=2)
    ap.add_argument("--out", default=RESULTS, help="directory for the report")
    ap.add_argument("--quiet", action="store_true", help="no progress and no report on stdout")
    args = ap.parse_args(argv)
    if args.min_faults > 0 and args.fault_every < 0:
        ap.error("--min-faults needs faults: --fault-every must not be negative")
    return args


def main(argv=None):
    global QUIET
    args = parse_args(argv)
    QUIET = args.quiet
    harness.BUILD = os.path.abspath(args.build)
    for prog in ("firegw", "firegw-sim"):
        if not os.access(os.path.join(harness.BUILD, prog), os.X_OK):
            sys.exit(f"soak: {harness.BUILD}/{prog} is missing: run make first")
    workdir = tempfile.mkdtemp(prefix="firegw-soak-")
    soak = Soak(args, workdir)
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        soak.run()
    except BaseException:
        soak.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    soak.stop()
    finished = datetime.datetime.now(datetime.timezone.utc)
    text, ok = report(soak, started, finished, args.build)
    os.makedirs(args.out, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    for name in (f"soak-{stamp}.md", "soak-latest.md"):
        with open(os.path.join(args.out, name), "w") as f:
            f.write(text)
    with open(os.path.join(args.out, f"soak-{stamp}.json"), "w") as f:
        json.dump({"args": vars(args), "samples": soak.sampler.samples,
                   "fires": soak.fires, "faults": soak.faults,
                   "problems": soak.problems}, f, indent=1)
    if not QUIET:
        print(text)
    if not ok:
        keep = os.path.join(args.out, f"soak-{stamp}-logs")
        os.makedirs(keep, exist_ok=True)
        for name in os.listdir(workdir):
            if name.endswith(".log"):
                shutil.copy(os.path.join(workdir, name), keep)
        log(f"criteria not met; the processes' logs are in {keep}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
