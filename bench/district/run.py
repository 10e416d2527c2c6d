#!/usr/bin/python3
"""firegw at district scale (make bench-district; docs/deployment.md).

N small simulated buildings (site ids b0001..bNNNN, a few detectors each on one
Modbus TCP bus, one firegw-sim process per building on its own loopback port),
N firegw gateways, all reporting to one local Mosquitto, and two firegw-watch
instances in one MQTT 5 share group that split the district's events between
them and acknowledge the alarms. Then fire alarms are set in random buildings
through the simulators' control sockets, spread over a measuring window, and
the run reports:

- messages per second through the broker over the window (Mosquitto's own
  $SYS/broker/publish/messages/received and .../sent counters, and what a
  plain subscriber on firegw/# received);
- alarm latency under that load: the simulator's `set DET value` -> the event's
  JSON line read from a watcher's standard output (p50, p99, max), and the
  same to the plain subscriber;
- the broker's CPU (utime+stime from /proc/PID/stat over the window, % of one
  core) and RSS; the gateways' CPU and RSS (median and max over the N);
- whether every alarm reached exactly one watcher and was acknowledged, and
  how the share group split the events;
- the machine: cores, load average, how busy the CPUs were in the window and
  how much of that was this run's processes.

Results: a table on standard output, bench/results/district-<date>-<time>.md and
bench/results/district-latest.md; the run directory (configs, logs, state)
is bench/district/work/run-<date>/ (removed afterwards unless --keep).

Every process is started in its own session and stopped by PID (SIGTERM,
then SIGKILL after a bound), also on Ctrl-C or an error. Every wait is bounded.
Nothing listens or connects beyond 127.0.0.1.
"""
import argparse
import datetime
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import LOOPBACK, port_open  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")
PROFILES = os.path.join(ROOT, "sensors", "profiles")
TICKS = os.sysconf("SC_CLK_TCK")
SHARE_GROUP = "district"
FIRE_VALUE = 5.0  # %/m, well above the default smoke alarm level of 2.0
# Ports below the kernel's ephemeral range, so that tests running beside the
# bench (which take ephemeral ports) do not collide with the buildings.
DEFAULT_BASE_PORT = 21000


def log(msg):
    print(f"[district {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_until(pred, timeout, what, interval=0.05):
    """The harness's bounded wait, polled less often (a predicate may ask every
    building), failing with the RuntimeError that a failed run is reported by."""
    try:
        return harness.wait_until(pred, timeout, what, interval)
    except AssertionError as e:
        raise RuntimeError(str(e)) from None


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
            return True
        except OSError:
            return False


def parse_duration_s(text):
    """'5s', '250ms', '2min' -> seconds (the config's duration syntax)."""
    for unit, scale in (("ms", 0.001), ("min", 60.0), ("s", 1.0), ("h", 3600.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * scale
    raise argparse.ArgumentTypeError(f"{text!r}: a duration needs a unit: 250ms, 5s, 2min")


class Child:
    """A process in its own session (Ctrl-C reaches only the driver, which stops it by
    PID), output in a log file that the driver does not keep open."""

    def __init__(self, name, argv, log_path, stdout=None, cwd=ROOT):
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as logf:
            self.proc = subprocess.Popen(argv, stdout=stdout or logf, stderr=logf,
                                         stdin=subprocess.DEVNULL, cwd=cwd,
                                         start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(children, what, timeout=60):
    """SIGTERM to every one, then wait for all together; SIGKILL the rest. Returns the
    children that did not exit with 0 (killed ones included)."""
    for c in children:
        if c.alive():
            try:
                os.kill(c.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for c in children:
        try:
            c.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    killed = [c for c in children if c.alive()]
    for c in killed:
        os.kill(c.pid, signal.SIGKILL)
        c.proc.wait(10)
    if killed:
        log(f"{len(killed)} {what} did not stop within {timeout} s and were killed")
    return [c for c in children if c.proc.returncode != 0]


def proc_ticks(pid):
    """utime + stime of a whole process in clock ticks, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def proc_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_pss_kb(pid):
    """Proportional set size: shared library pages divided among the processes that map
    them, so a sum over many processes is their real memory use."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def machine_jiffies():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def pct(values, q):
    """The q-th percentile (nearest rank) of values."""
    s = sorted(values)
    if not s:
        return None
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


class Building:
    """One small building: a few detectors on one Modbus TCP bus, its config file
    shared by its simulator and its gateway."""

    def __init__(self, index, port, ndet, rng):
        self.id = f"b{index:04d}"
        self.port = port
        # All smoke detectors but the last, which is a heat detector (two profiles in use).
        self.detectors = [(f"S{k}", "optical-smoke-485") for k in range(1, ndet)]
        self.detectors.append(("H1", "heat-485"))
        self.lat = 21.06 + rng.uniform(0, 0.04)
        self.lon = 105.80 + rng.uniform(0, 0.04)
        self.sim = None
        self.gw = None

    def smoke_detectors(self):
        return [d for d, profile in self.detectors if "smoke" in profile]

    def write(self, dirpath, broker_port, heartbeat, poll):
        os.makedirs(dirpath, exist_ok=True)
        self.dir = dirpath
        self.conf = os.path.join(dirpath, "site.conf")
        self.state = os.path.join(dirpath, "state")
        self.control = os.path.join(dirpath, "sim.sock")
        self.ready = os.path.join(dirpath, "sim.ready")
        out = [f"# Building {self.id} of the district bench (generated by bench/district/run.py).",
               "[site]", f"id = {self.id}", f"name = Tòa nhà {self.id}",
               f"address = {int(self.id[1:])} Đường Thử, Tây Hồ, Hà Nội", "district = Tây Hồ",
               f"latitude = {self.lat:.5f}", f"longitude = {self.lon:.5f}",
               "[gateway]", "state_dir = state", f"profile_dir = {PROFILES}",
               "log_level = notice", f"heartbeat = {heartbeat}",
               "[web]", "listen = off",
               "[bus tcp1]", "type = tcp", f"host = {LOOPBACK}", f"port = {self.port}",
               f"poll_interval = {poll}",
               "[zone Z1]", "name = Tầng 1", "floor = 1"]
        for unit, (det, profile) in enumerate(self.detectors, 1):
            out += [f"[detector {det}]", "bus = tcp1", f"unit = {unit}", f"profile = {profile}",
                    "zone = Z1", f"location = Phòng {unit}"]
        out += ["[uplink district]", "role = fire_police", f"host = {LOOPBACK}",
                f"port = {broker_port}"]
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")

    def sim_cmd(self, line, timeout=10):
        reply = harness.control_request(self.control, line, timeout)
        if reply != "ok":
            raise RuntimeError(f"{self.id}: the simulator answered {line!r} with {reply!r}")


class Recorder:
    """A plain subscriber on firegw/# and $SYS/broker/#: counts messages, keeps the
    broker's counters, the gateways' status and detector states, alarms and acks."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.count = 0
        self.sys_count = 0
        self.sys = {}
        self.online = set()
        self.normal = {}  # building -> set of detectors whose state is normal
        self.alarm_at = {}  # (building, detector) -> monotonic time of the first fire_alarm
        self.acks = {}  # event_id -> receiver
        self.client = mqtt.Client(client_id=f"district-recorder-{os.getpid()}",
                                  clean_session=True)
        self.client.on_message = self.on_message
        self.client.on_connect = lambda c, u, f, rc: c.subscribe(
            [("firegw/#", 1), ("$SYS/broker/#", 0)])
        self.client.connect(LOOPBACK, port, keepalive=60)
        self.client.loop_start()

    def on_message(self, client, userdata, msg):
        t = time.monotonic()
        topic = msg.topic
        if topic.startswith("$SYS/"):
            with self.lock:
                self.sys_count += 1
                self.sys[topic] = (msg.payload.decode(errors="replace"), t)
            return
        with self.lock:
            self.count += 1
        parts = topic.split("/")
        try:
            body = json.loads(msg.payload) if msg.payload else None
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        kind = parts[-1] if len(parts) >= 3 else ""
        with self.lock:
            if kind == "status":
                if body.get("state") == "online":
                    self.online.add(parts[1])
                else:
                    self.online.discard(parts[1])
            elif kind == "state" and len(parts) == 5:
                s = self.normal.setdefault(parts[1], set())
                if body.get("state") == "normal":
                    s.add(parts[3])
                else:
                    s.discard(parts[3])
            elif kind == "event" and body.get("kind") == "fire_alarm":
                det = (body.get("detector") or {}).get("id")
                self.alarm_at.setdefault((body.get("building"), det), t)
            elif kind == "ack":
                self.acks[body.get("event_id")] = body.get("receiver")

    def sys_value(self, name):
        with self.lock:
            v = self.sys.get(f"$SYS/broker/{name}")
        try:
            return (float(v[0]), v[1]) if v else None
        except ValueError:
            return None

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class Watcher:
    """firegw-watch in the share group; a thread reads its JSON lines as they come."""

    def __init__(self, build, workdir, name, port):
        self.name = name
        self.lock = threading.Lock()
        self.lines = 0
        self.alarms = {}  # (building, detector) -> (monotonic time, event_id)
        self.bad = 0
        argv = [os.path.join(build, "firegw-watch"), "--port", str(port), "--json",
                "--share", SHARE_GROUP, "--client-id", f"district-{name}", "--receiver", name,
                "--dedupe", "100000"]
        self.child = Child(name, argv, os.path.join(workdir, f"{name}.log"),
                           stdout=subprocess.PIPE)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for raw in self.child.proc.stdout:
            t = time.monotonic()
            try:
                ev = json.loads(raw)
            except ValueError:
                with self.lock:
                    self.bad += 1
                continue
            with self.lock:
                self.lines += 1
                if ev.get("kind") == "fire_alarm":
                    det = (ev.get("detector") or {}).get("id")
                    self.alarms.setdefault((ev.get("building"), det), (t, ev.get("event_id")))

    def subscribed(self):
        with open(self.child.log_path, errors="replace") as f:
            return "subscribed to $share/" in f.read()


def start_broker(workdir, port, max_conn):
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} {LOOPBACK}\n"
                "allow_anonymous true\n"
                "persistence false\n"
                # No limit: the district's gateways, the watchers and the recorder.
                f"max_connections {max_conn}\n"
                # Every second, so the message counters are fresh at the window's edges.
                "sys_interval 1\n"
                "max_queued_messages 100000\n"
                "log_type error\nlog_type warning\nlog_type notice\n"
                "connection_messages false\n"
                # Not a file: started as root, Mosquitto runs as its own user.
                "log_dest stdout\n")
    child = Child("mosquitto", ["mosquitto", "-c", conf], os.path.join(workdir, "mosquitto.log"))
    wait_until(lambda: port_open(port) or not child.alive(), 15, "mosquitto to listen")
    if not child.alive():
        raise RuntimeError("mosquitto exited:\n" + child.tail())
    return child


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need * 2)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        raise RuntimeError(f"the open file limit is {soft} (hard {hard}); the broker needs "
                           f"about {need} for this district: raise it (ulimit -Hn, "
                           f"/etc/security/limits.conf) or use a smaller --n")
    return soft


def pick_ports(n, base, avoid):
    ports, p = [], base
    while len(ports) < n:
        if p > 65535:
            raise RuntimeError(f"not enough free ports from {base} up")
        if p not in avoid and port_free(p):
            ports.append(p)
        p += 1
    return ports


def snapshot(pids):
    return {pid: proc_ticks(pid) for pid in pids}


def cpu_pct(before, after, wall, pid):
    a, b = before.get(pid), after.get(pid)
    if a is None or b is None:
        return None
    return 100.0 * (b - a) / TICKS / wall


def fmt_ms(v):
    return "-" if v is None else f"{v * 1000:.0f} ms"


def run(args, workdir):
    build = os.path.join(ROOT, args.build)
    for exe in ("firegw", "firegw-sim", "firegw-watch"):
        if not os.access(os.path.join(build, exe), os.X_OK):
            raise RuntimeError(f"{build}/{exe} is missing: build it first "
                               f"(make BUILD={args.build})")
    if not shutil.which("mosquitto"):
        raise RuntimeError("mosquitto is not installed (make deps)")
    nofile = raise_nofile(args.n + 200)
    rng = random.Random(args.seed)
    stamp = os.path.basename(workdir)[len("run-"):]
    info = {"n": args.n, "detectors": args.detectors, "heartbeat": args.heartbeat,
            "poll": args.poll, "fires": args.fires, "window_s": args.window,
            "seed": args.seed, "nofile": nofile, "cores": os.cpu_count(),
            "load_before": os.getloadavg(), "started": stamp}
    children = {"gateways": [], "sims": [], "watchers": [], "broker": []}
    recorder = None
    try:
        broker_port = pick_ports(1, args.base_port - 100, set())[0]
        ports = pick_ports(args.n, args.base_port, {broker_port})
        buildings = [Building(i + 1, ports[i], args.detectors, rng) for i in range(args.n)]
        for b in buildings:
            b.write(os.path.join(workdir, b.id), broker_port, args.heartbeat, args.poll)
        for b in (buildings[0], buildings[-1]):
            p = subprocess.run([os.path.join(build, "firegw"), "--check-config", b.conf],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=60, stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                raise RuntimeError(f"{b.conf} is not a valid config:\n{p.stdout}")
        log(f"{args.n} buildings of {args.detectors} detectors written under {workdir}")

        broker = start_broker(workdir, broker_port, -1)
        children["broker"].append(broker)
        recorder = Recorder(broker_port)
        wait_until(lambda: recorder.sys_value("publish/messages/received"), 15,
                   "the broker's $SYS message counters")
        for name in ("watch-a", "watch-b"):
            children["watchers"].append(Watcher(build, workdir, name, broker_port))
        for w in children["watchers"]:
            wait_until(lambda w=w: w.subscribed() or not w.child.alive(), 30,
                       f"{w.name} to subscribe")
            if not w.child.alive():
                raise RuntimeError(f"{w.name} exited:\n{w.child.tail()}")

        t_start = time.monotonic()
        for i in range(0, args.n, args.batch):
            batch = buildings[i:i + args.batch]
            for b in batch:
                b.sim = Child(f"sim-{b.id}", [os.path.join(build, "firegw-sim"), "--config",
                                              b.conf, "--control", b.control, "--ready-file",
                                              b.ready, "--seed", str(rng.randrange(1 << 30))],
                              os.path.join(b.dir, "firegw-sim.log"))
                children["sims"].append(b.sim)
            for b in batch:
                wait_until(lambda b=b: os.path.exists(b.ready) or not b.sim.alive(), 60,
                           f"the simulator of {b.id}")
                if not b.sim.alive():
                    raise RuntimeError(f"the simulator of {b.id} exited:\n{b.sim.tail()}")
        t_sims = time.monotonic()
        log(f"{args.n} simulators ready in {t_sims - t_start:.1f} s")
        for i in range(0, args.n, args.batch):
            batch = buildings[i:i + args.batch]
            for b in batch:
                b.gw = Child(f"gw-{b.id}", [os.path.join(build, "firegw"), "--config", b.conf,
                                            "--state-dir", b.state],
                             os.path.join(b.dir, "firegw.log"))
                children["gateways"].append(b.gw)
            ids = {b.id for b in batch}

            def batch_online(ids=ids, batch=batch):
                dead = [b.id for b in batch if not b.gw.alive()]
                if dead:
                    raise RuntimeError(f"gateway {dead[0]} exited:\n"
                                       f"{next(b for b in batch if b.id == dead[0]).gw.tail()}")
                with recorder.lock:
                    return ids <= recorder.online
            wait_until(batch_online, 120, f"gateways {batch[0].id}..{batch[-1].id} online")
            log(f"{min(i + args.batch, args.n)} gateways online")
        t_online = time.monotonic()

        def all_normal():
            with recorder.lock:
                return sum(1 for b in buildings
                           if len(recorder.normal.get(b.id, ())) == len(b.detectors))
        wait_until(lambda: all_normal() == args.n, 180, "every detector of every building normal")
        t_settled = time.monotonic()
        log(f"every gateway online {t_online - t_sims:.1f} s after the simulators, every "
            f"detector normal {t_settled - t_online:.1f} s later")
        # Let the start-up burst (gateway_start events, states) leave the broker's
        # one-second counters before the window opens.
        time.sleep(3.0)

        gw_pids = [b.gw.pid for b in buildings]
        sim_pids = [b.sim.pid for b in buildings]
        watch_pids = [w.child.pid for w in children["watchers"]]
        all_pids = gw_pids + sim_pids + watch_pids + [broker.pid]
        targets = rng.sample([(b, d) for b in buildings for d in b.smoke_detectors()],
                             args.fires)
        offsets = sorted(rng.uniform(0, args.window * 0.85) for _ in targets)

        sys0 = {k: recorder.sys_value(k) for k in ("publish/messages/received",
                                                   "publish/messages/sent")}
        with recorder.lock:
            count0, sys_count0 = recorder.count, recorder.sys_count
        ticks0 = snapshot(all_pids)
        mj0 = machine_jiffies()
        t0 = time.monotonic()
        log(f"window of {args.window:.0f} s: {args.fires} fire alarms in random buildings")
        fired = {}
        for off, (b, det) in zip(offsets, targets):
            delay = t0 + off - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t_set = time.monotonic()
            b.sim_cmd(f"set {det} value {FIRE_VALUE}")
            fired[(b.id, det)] = t_set
        rest = t0 + args.window - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        t1 = time.monotonic()
        ticks1 = snapshot(all_pids)
        mj1 = machine_jiffies()
        with recorder.lock:
            count1, sys_count1 = recorder.count, recorder.sys_count
        # The counters are refreshed every second: read them again after the next refresh.
        stamp1 = (recorder.sys_value("publish/messages/received") or (0, 0))[1]
        wait_until(lambda: (recorder.sys_value("publish/messages/received") or (0, 0))[1] > stamp1,
                   10, "the broker's next $SYS update")
        sys1 = {k: recorder.sys_value(k) for k in sys0}
        info["load_after"] = os.getloadavg()
        wall = t1 - t0

        def arrived():
            n = 0
            for key in fired:
                if any(key in w.alarms for w in children["watchers"]):
                    n += 1
            return n
        try:
            wait_until(lambda: arrived() == len(fired), 30, "every alarm at a watcher")
        except RuntimeError as e:
            log(str(e))
        time.sleep(1.0)  # the last acknowledgements

        # Alarms: latency to the watchers and to the plain subscriber; split and acks.
        lat_w, lat_s, missing, both, acked = [], [], [], 0, 0
        split = {w.name: 0 for w in children["watchers"]}
        for key, t_set in fired.items():
            seen = [(w.alarms[key], w.name) for w in children["watchers"] if key in w.alarms]
            if not seen:
                missing.append(key)
                continue
            if len(seen) > 1:
                both += 1
            (t_w, event_id), name = min(seen)
            split[name] += 1
            lat_w.append(t_w - t_set)
            with recorder.lock:
                if key in recorder.alarm_at:
                    lat_s.append(recorder.alarm_at[key] - t_set)
                if recorder.acks.get(event_id) == name:
                    acked += 1
        gw_cpu = [c for c in (cpu_pct(ticks0, ticks1, wall, p) for p in gw_pids) if c is not None]
        gw_rss = [r for r in (proc_kb(p, "VmRSS") for p in gw_pids) if r is not None]
        gw_pss = [r for r in (proc_pss_kb(p) for p in gw_pids) if r is not None]
        sim_cpu = sum(c for c in (cpu_pct(ticks0, ticks1, wall, p) for p in sim_pids) if c)
        sim_rss = sum(r for r in (proc_kb(p, "VmRSS") for p in sim_pids) if r)
        ours = sum(c for c in (cpu_pct(ticks0, ticks1, wall, p) for p in all_pids) if c)
        rates = {}
        for k in sys0:
            if sys0[k] and sys1[k]:
                rates[k] = (sys1[k][0] - sys0[k][0]) / (sys1[k][1] - sys0[k][1])
        with open(os.path.join(workdir, "firegw-watch-lines.json"), "w") as f:
            json.dump({w.name: w.lines for w in children["watchers"]}, f)
        result = {
            **info,
            "startup_s": {"simulators": t_sims - t_start, "gateways_online": t_online - t_sims,
                          "detectors_normal": t_settled - t_online},
            "window_wall_s": wall,
            "broker_publish_in_per_s": rates.get("publish/messages/received"),
            "broker_publish_out_per_s": rates.get("publish/messages/sent"),
            "subscriber_per_s": (count1 - count0) / wall,
            "sys_out_per_s": (sys_count1 - sys_count0) / wall,
            "broker_cpu_pct": cpu_pct(ticks0, ticks1, wall, broker.pid),
            "broker_rss_kb": proc_kb(broker.pid, "VmRSS"),
            "broker_hwm_kb": proc_kb(broker.pid, "VmHWM"),
            "broker_connections": (recorder.sys_value("clients/connected") or (None,))[0],
            "gateway_cpu_pct": {"median": statistics.median(gw_cpu), "max": max(gw_cpu),
                                "sum": sum(gw_cpu)},
            "gateway_rss_kb": {"median": statistics.median(gw_rss), "max": max(gw_rss),
                               "sum": sum(gw_rss)},
            "gateway_pss_kb": {"median": statistics.median(gw_pss) if gw_pss else None,
                               "sum": sum(gw_pss)},
            "sims_cpu_pct_sum": sim_cpu, "sims_rss_kb_sum": sim_rss,
            "watch_cpu_pct": [cpu_pct(ticks0, ticks1, wall, p) for p in watch_pids],
            "watch_events": {w.name: w.lines for w in children["watchers"]},
            "machine_busy_pct": 100.0 * (mj1[0] - mj0[0]) / max(1, mj1[1] - mj0[1]),
            "ours_cpu_pct": ours,
            "alarms": {"fired": len(fired), "at_watchers": len(fired) - len(missing),
                       "at_both_watchers": both, "acknowledged": acked, "split": split,
                       "missing": [f"{b}/{d}" for b, d in missing]},
            "latency_watch_s": {"p50": pct(lat_w, 50), "p99": pct(lat_w, 99),
                                "max": max(lat_w) if lat_w else None, "n": len(lat_w)},
            "latency_subscriber_s": {"p50": pct(lat_s, 50), "p99": pct(lat_s, 99),
                                     "max": max(lat_s) if lat_s else None, "n": len(lat_s)},
        }
        return result
    finally:
        # Stop everything, even after an error or Ctrl-C: gateways first (their
        # clean stop publishes "offline" while the broker is still there).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bad = stop_all(children["gateways"], "gateways")
        stop_all(children["sims"], "simulators")
        if recorder:
            recorder.close()
        stop_all([w.child for w in children["watchers"]], "watchers", 15)
        stop_all(children["broker"], "broker", 15)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if bad and children["gateways"]:
            log(f"{len(bad)} gateways did not exit cleanly, e.g. {bad[0].name}: "
                f"exit {bad[0].proc.returncode}; see {bad[0].log_path}")
        run.bad_gateways = len(bad)


def report(r, args):
    mb = 1024.0
    lw, ls = r["latency_watch_s"], r["latency_subscriber_s"]
    a = r["alarms"]
    rows = [
        ("gateways (processes) / simulators", f"{r['n']} / {r['n']}, {r['detectors']} detectors "
                                              f"each, polled every {r['poll']}"),
        ("broker connections", f"{r['broker_connections']:.0f}"
         if r["broker_connections"] is not None else "-"),
        ("start-up", f"simulators {r['startup_s']['simulators']:.0f} s, gateways online "
                     f"{r['startup_s']['gateways_online']:.0f} s, every detector normal "
                     f"{r['startup_s']['detectors_normal']:.0f} s later"),
        ("window", f"{r['window_wall_s']:.0f} s, heartbeat every {r['heartbeat']}, "
                   f"{a['fired']} fire alarms spread over it"),
        ("messages/s into the broker (PUBLISH)", f"{r['broker_publish_in_per_s']:.1f}"
         if r["broker_publish_in_per_s"] is not None else "-"),
        ("messages/s out of the broker (PUBLISH)", f"{r['broker_publish_out_per_s']:.1f}, "
         f"of which {r['sys_out_per_s']:.1f} $SYS to the recorder"
         if r["broker_publish_out_per_s"] is not None else "-"),
        ("messages/s at a subscriber on firegw/#", f"{r['subscriber_per_s']:.1f}"),
        ("alarm latency to firegw-watch p50 / p99 / max",
         f"{fmt_ms(lw['p50'])} / {fmt_ms(lw['p99'])} / {fmt_ms(lw['max'])} (n={lw['n']})"),
        ("alarm latency to the subscriber p50 / p99 / max",
         f"{fmt_ms(ls['p50'])} / {fmt_ms(ls['p99'])} / {fmt_ms(ls['max'])} (n={ls['n']})"),
        ("alarms at a watcher / at both / acknowledged",
         f"{a['at_watchers']} of {a['fired']} / {a['at_both_watchers']} / {a['acknowledged']}"),
        ("share group split (alarms)", ", ".join(f"{k} {v}" for k, v in a["split"].items())),
        ("share group split (all events)", ", ".join(f"{k} {v}" for k, v in
                                                     r["watch_events"].items())),
        ("broker CPU (% of one core) / RSS", f"{r['broker_cpu_pct']:.1f} % / "
                                             f"{r['broker_rss_kb'] / mb:.1f} MiB (peak "
                                             f"{r['broker_hwm_kb'] / mb:.1f} MiB)"),
        ("gateway CPU median / max / all", f"{r['gateway_cpu_pct']['median']:.2f} % / "
                                           f"{r['gateway_cpu_pct']['max']:.2f} % / "
                                           f"{r['gateway_cpu_pct']['sum']:.0f} %"),
        ("gateway RSS median / max / all", f"{r['gateway_rss_kb']['median'] / mb:.1f} MiB / "
                                           f"{r['gateway_rss_kb']['max'] / mb:.1f} MiB / "
                                           f"{r['gateway_rss_kb']['sum'] / mb / 1024:.2f} GiB"),
        ("gateway PSS median / all (shared pages divided)",
         "-" if r["gateway_pss_kb"]["median"] is None else
         f"{r['gateway_pss_kb']['median'] / mb:.1f} MiB / "
         f"{r['gateway_pss_kb']['sum'] / mb / 1024:.2f} GiB"),
        ("simulators CPU / RSS, all", f"{r['sims_cpu_pct_sum']:.0f} % / "
                                      f"{r['sims_rss_kb_sum'] / mb / 1024:.2f} GiB"),
        ("firegw-watch CPU", ", ".join("-" if c is None else f"{c:.1f} %"
                                       for c in r["watch_cpu_pct"])),
        ("gateways that did not exit cleanly", str(r.get("bad_gateways", "?"))),
        ("machine", f"{r['cores']} cores; load average {r['load_before'][0]:.2f} before, "
                    f"{r['load_after'][0]:.2f} at the end; CPUs {r['machine_busy_pct']:.0f} % "
                    f"busy in the window, this run's processes "
                    f"{r['ours_cpu_pct'] / r['cores']:.0f} % of the machine"),
    ]
    if a["missing"]:
        rows.append(("alarms that reached no watcher", ", ".join(a["missing"][:10])))
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    md = ["# firegw district bench", "",
          f"{r['started']}, {platform.node()}, {platform.machine()}, "
          f"`bench/district/run.py --n {r['n']} --fires {r['fires']} --window "
          f"{r['window_s']:.0f} --heartbeat {r['heartbeat']} --seed {r['seed']}`", "",
          "One Mosquitto (" + mosquitto_version() + ") on loopback; every gateway its own "
          "process with its own firegw-sim; two firegw-watch in one MQTT 5 share group "
          "(`--share district`). Latency: the simulator's `set` -> the alarm's JSON line "
          "read from a watcher (includes up to one poll interval). CPU is % of one core "
          "over the window, from /proc/PID/stat. Everything ran on one machine, so the "
          "gateways, simulators and broker competed for the same cores.", "",
          "| measure | value |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in rows]
    md += ["", "Raw numbers:", "", "```json", json.dumps(r, indent=1, default=str), "```", ""]
    return text, "\n".join(md)


def mosquitto_version():
    try:
        p = subprocess.run(["mosquitto", "-h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=10, stdin=subprocess.DEVNULL)
        first = p.stdout.splitlines()[0] if p.stdout else ""
        return first.replace("mosquitto version ", "") or "version unknown"
    except (OSError, subprocess.SubprocessError):
        return "version unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="buildings (gateways), default 500")
    ap.add_argument("--build", default="build", help="build directory, default build")
    ap.add_argument("--detectors", type=int, default=4,
                    help="detectors per building (all smoke but one heat), default 4")
    ap.add_argument("--heartbeat", default="5s",
                    help="heartbeat interval of every gateway, default 5s (12 times the "
                         "product's 60 s, to load the broker)")
    ap.add_argument("--poll", default="1s", help="poll interval of every bus, default 1s")
    ap.add_argument("--fires", type=int, default=60, help="fire alarms in the window, default 60")
    ap.add_argument("--window", type=float, default=120.0,
                    help="measuring window in seconds, default 120")
    ap.add_argument("--batch", type=int, default=50, help="processes started at once, default 50")
    ap.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT,
                    help=f"first simulator port, default {DEFAULT_BASE_PORT}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    args = ap.parse_args()
    if args.n < 1 or args.n > 9999:
        ap.error("--n must be 1 to 9999 (site ids b0001..b9999)")
    if args.detectors < 2 or args.detectors > 32:
        ap.error("--detectors must be 2 to 32")
    if args.fires < 1 or args.fires > args.n * (args.detectors - 1):
        ap.error("--fires must be 1 to the number of smoke detectors")
    if args.window < 10:
        ap.error("--window must be at least 10 s")
    parse_duration_s(args.heartbeat)
    workdir = os.path.join(HERE, "work",
                           "run-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(workdir)
    try:
        result = run(args, workdir)
    except KeyboardInterrupt:
        log(f"interrupted; every process was stopped; logs in {workdir}")
        return 130
    except RuntimeError as e:
        log(f"failed: {e}; every process was stopped; logs in {workdir}")
        return 1
    result["bad_gateways"] = getattr(run, "bad_gateways", None)
    text, md = report(result, args)
    print(text, flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    # The run's start, as in its work directory: several runs a day keep their own files.
    dated = f"district-{result['started']}.md"
    for name in (dated, "district-latest.md"):
        with open(os.path.join(RESULTS, name), "w", encoding="utf-8") as f:
            f.write(md)
    log(f"written to bench/results/{dated} and district-latest.md")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    a = result["alarms"]
    ok = not a["missing"] and a["at_both_watchers"] == 0 and a["acknowledged"] == a["fired"]
    return 0 if ok and not result["bad_gateways"] else 1


if __name__ == "__main__":
    sys.exit(main())
