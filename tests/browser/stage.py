#!/usr/bin/python3
"""The browser stage of the firegw tests.

Starts Mosquitto, the simulator and the gateway (with its web server) on loopback through
tests/integration/harness.py, runs the playwright-core scenarios in run.mjs with Node against
them in the system's Chromium, then checks on MQTT what the clicks caused: the operator's
acknowledge and reset carry the user web:admin, and the walk test's alarm went out as a test,
never as a real fire alarm. tests/run.py calls run(); alone:

    /usr/bin/python3 tests/browser/stage.py --build build
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
NODE_TIMEOUT_S = 240
SITE = os.path.join(ROOT, "tests", "integration", "site-small.conf")

# A device the gateway polls but that no detector uses yet: the installer scenario adds
# detector T-S4 on it. The simulator's copy of the site already has that detector, so
# the device answers with a smoke reading from the start.
EXTRA_DEVICE = "\n[device smoke-4]\nbus = tcp1\nunit = 4\nprofile = optical-smoke-485\n"
EXTRA_DETECTOR = "\n[detector T-S4]\ndevice = smoke-4\nzone = Z2\nlocation = Kho tầng 2\n"


def set_keys(text, changes):
    """text with key = value replaced in the named sections: {("bus tcp1", "port"): "123"}."""
    out = []
    section = None
    for line in text.splitlines():
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            section = " ".join(m.group(1).split())
        else:
            k = re.match(r"\s*([A-Za-z0-9_]+)\s*=", line)
            if k and (section, k.group(1)) in changes:
                line = f"{k.group(1)} = {changes[(section, k.group(1))]}"
        out.append(line)
    return "\n".join(out) + "\n"


def write_sites(workdir, tcp_port, broker_port, web_port):
    """The gateway's site file (editable by the installer page) and the simulator's."""
    with open(SITE, encoding="utf-8") as f:
        base = f.read()
    base = set_keys(base, {
        ("gateway", "profile_dir"): os.path.join(ROOT, "sensors", "profiles"),
        ("gateway", "state_dir"): os.path.join(workdir, "state"),
        ("bus tcp1", "port"): str(tcp_port),
        ("bus rtu1", "device"): os.path.join(workdir, "ttyRTU1"),
        ("uplink district", "port"): str(broker_port),
    }) + EXTRA_DEVICE
    gw_conf = os.path.join(workdir, "site.conf")
    sim_conf = os.path.join(workdir, "sim.conf")
    with open(gw_conf, "w", encoding="utf-8") as f:
        f.write(base)
        f.write(f"\n[web]\nlisten = 127.0.0.1:{web_port}\nroot = {os.path.join(ROOT, 'web-ui')}\n")
    with open(sim_conf, "w", encoding="utf-8") as f:
        f.write(base + EXTRA_DETECTOR)
    return gw_conf, sim_conf


def prerequisites():
    """What is missing to run the browser tests, or None."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing: run `make deps` (Debian package chromium)"
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        return "tests/browser/node_modules is missing: run `make browser-deps` (npm ci)"
    return None


def parse_tap(out):
    """[(name, ok)] of the top-level tests in node's TAP output."""
    results = []
    for m in re.finditer(r"^(not ok|ok) \d+ - (.+?)(?: # .*)?$", out, re.M):
        results.append((m.group(2).strip(), m.group(1) == "ok"))
    return results


def mqtt_checks(watcher):
    """What the browser's clicks must have caused on MQTT, as [(name, ok, detail)]."""
    out = []

    def seen(**match):
        return watcher.events(**match)

    for kind in ("acknowledged", "reset"):
        evs = seen(kind=kind, user="web:admin")
        out.append((f"MQTT: the banner's {kind} went out with user web:admin", bool(evs),
                    f"no {kind} event with user web:admin; users seen: "
                    f"{sorted({str(e.get('user')) for e in seen(kind=kind)})}"))
    tests = seen(kind="test_alarm", detector__id="R-S1")
    real = [e for e in seen(kind="fire_alarm", detector__id="R-S1") if e.get("real")]
    out.append(("MQTT: the walk test's alarm went out as a test only",
                bool(tests) and all(e["test"] and not e["real"] for e in tests) and not real,
                f"test_alarm events: {len(tests)}, real fire alarms of R-S1: {len(real)}"))
    fires = seen(kind="fire_alarm", detector__id="T-S1")
    out.append(("MQTT: the simulated fire went out as a real fire alarm",
                bool(fires) and all(e["real"] for e in fires), f"fire_alarm events of T-S1: {fires}"))
    out.append(("MQTT: every message matches docs/schema", not watcher.invalid, f"{watcher.invalid[:5]}"))
    return out


def run(build, shots_dir=None):
    """Run the stage against the binaries in build; returns [(name, ok, detail)]."""
    missing = prerequisites()
    if missing:
        return [("browser prerequisites", False, missing)]
    harness.BUILD = build
    shots_dir = shots_dir or os.path.join(build, "browser-screenshots")
    os.makedirs(shots_dir, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="firegw-browser-") as workdir:
        started = []
        gw = None
        try:
            broker = harness.Broker(workdir).start()
            started.append(broker)
            tcp_port, web_port = harness.free_port(), harness.free_port()
            gw_conf, sim_conf = write_sites(workdir, tcp_port, broker.port, web_port)
            watcher = harness.Watcher(broker.port)
            started.append(watcher)
            sim = harness.Simulator(workdir, sim_conf, []).start()
            started.append(sim)
            gw = harness.Gateway(workdir, gw_conf, [], os.path.join(workdir, "state")).start()
            harness.wait_until(lambda: harness.port_open(web_port) or not gw.proc.alive(), 20,
                               "the gateway's web server")
            if not gw.proc.alive():
                raise AssertionError("firegw exited:\n" + gw.proc.output()[-4000:])
            env = dict(os.environ, FIREGW_URL=f"http://127.0.0.1:{web_port}/",
                       FIREGW_SIM_CONTROL=sim.control, FIREGW_SHOTS=shots_dir,
                       FIREGW_CHROMIUM=CHROMIUM, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
            try:
                proc = subprocess.run(["node", "--test", "--test-reporter=tap", "run.mjs"], cwd=HERE,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=NODE_TIMEOUT_S)
                out, rc = proc.stdout.decode(errors="replace"), proc.returncode
            except subprocess.TimeoutExpired as e:
                out, rc = (e.stdout or b"").decode(errors="replace") + "\nTIMEOUT\n", -1
            print(out)
            tap = parse_tap(out)
            for name, ok in tap:
                results.append((name, ok, "see the TAP output above"))
            if not tap or (rc != 0 and all(ok for _, ok in tap)):
                results.append(("node run.mjs", False, f"exit {rc} without a failed test:\n{out[-3000:]}"))
            results += mqtt_checks(watcher)
        except Exception as e:  # noqa: BLE001 - a broken stack is one failure, not a crash
            results.append(("browser stack start", False, str(e)))
        finally:
            if gw is not None:
                bad = gw.stopped_badly()
                results.append(("the gateway stopped cleanly after the browser tests", bad is None, bad))
            for thing in reversed(started):
                try:
                    thing.close() if isinstance(thing, harness.Watcher) else thing.stop()
                except Exception as e:  # noqa: BLE001 - cleanup goes on
                    print(f"cleanup: {e}")
            if any(not ok for _, ok, _ in results):
                for name in sorted(os.listdir(workdir)):
                    if name.endswith(".log"):
                        with open(os.path.join(workdir, name), errors="replace") as f:
                            lines = f.read().splitlines()
                        print(f"\n----- {name} (last 60 lines) -----")
                        print("\n".join(lines[-60:]))
    print(f"browser screenshots: {shots_dir}")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="directory with firegw and firegw-sim")
    ap.add_argument("--shots", default=None, help="screenshot directory (default BUILD/browser-screenshots)")
    args = ap.parse_args()
    results = run(os.path.join(ROOT, args.build), args.shots)
    failed = [(n, d) for n, ok, d in results if not ok]
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} browser {name}" + ("" if ok else f"\n{detail}"))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 0 if not failed and results else 1


if __name__ == "__main__":
    sys.exit(main())
