#!/usr/bin/python3
"""make demo: the example building, simulated, monitored by firegw, alerts on screen.

Starts Mosquitto on a free loopback port, firegw-sim with config/tayho-apartment.conf
playing sensors/scenarios/demo.scn, firegw with the same config pointed at them, and
firegw-watch, the fire police's reference receiver, which prints every alert as it
arrives over MQTT and acknowledges the alarms. A building manager acknowledges,
silences and resets on the way. Ctrl-C stops everything it started. Without a
terminal (or with --duration) it stops by itself.
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import Broker, Gateway, Simulator, free_port  # noqa: E402

CONFIG = os.path.join(ROOT, "config", "tayho-apartment.conf")
SCENARIO = os.path.join(ROOT, "sensors", "scenarios", "demo.scn")

# What a building manager does during the demo, in seconds from its start.
OPERATOR = [(75, "acknowledge all"), (80, "silence all"), (100, "reset all")]


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def first_run_login(port):
    """Make the admin account as a person would on first run; its password, or None."""
    password = "demo-" + secrets.token_urlsafe(9)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/session", timeout=2):
                return None  # an account exists already
        except urllib.error.HTTPError as e:
            if e.code == 401:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        return None
    req = urllib.request.Request(f"{url}/setup", method="POST",
                                 data=json.dumps({"password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5):
            return password
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build")
    ap.add_argument("--duration", type=float, default=None,
                    help="stop after this many seconds (default: until Ctrl-C, or 150 s "
                         "without a terminal)")
    args = ap.parse_args()
    harness.BUILD = os.path.join(ROOT, args.build)
    tty = sys.stdout.isatty()
    duration = args.duration
    if duration is None and (not sys.stdin.isatty() or os.environ.get("CI")):
        duration = 115.0

    workdir = tempfile.mkdtemp(prefix="firegw-demo-")
    started = []
    stopping = {"flag": False}

    def on_signal(sig, frame):
        stopping["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        broker = Broker(workdir).start()
        started.append(broker.stop)
        tcp_port = free_port()
        web_port = 8080 if port_free(8080) else free_port()
        sets = [f"web.listen=127.0.0.1:{web_port}",
                f"bus.rs485-a.device={workdir}/ttyRS485A",
                "bus.tcp-b.host=127.0.0.1", f"bus.tcp-b.port={tcp_port}",
                "uplink.district.host=127.0.0.1", f"uplink.district.port={broker.port}",
                "uplink.owner.host=127.0.0.1", f"uplink.owner.port={broker.port}"]
        sim = Simulator(workdir, CONFIG, sets, scenario=SCENARIO).start()
        started.append(sim.stop)
        gw = Gateway(workdir, CONFIG, sets, state_dir=f"{workdir}/state")
        gw.argv[gw.argv.index("debug")] = "notice"
        gw.start()
        started.append(gw.stop)

        print(f"firegw demo: Mosquitto on 127.0.0.1:{broker.port}, simulator and gateway "
              f"running the example building ({os.path.relpath(CONFIG, ROOT)}).")
        print(f"Scenario: {os.path.relpath(SCENARIO, ROOT)}. Logs in {workdir}.")
        print(f"Watch raw MQTT yourself: mosquitto_sub -h 127.0.0.1 -p {broker.port} "
              f"-t 'firegw/#' -v")
        print(f"The manager's console: build/firegw ctl --state-dir {workdir}/state status")
        password = first_run_login(web_port)
        if password:
            print(f"Web UI: http://127.0.0.1:{web_port}/  first-run login: user admin, "
                  f"password {password} (set by the demo through the first-run setup)")
        else:
            print(f"Web UI: http://127.0.0.1:{web_port}/ (did not answer; see {workdir}/firegw.log)")
        print("Press Ctrl-C to stop.\n" if duration is None else
              f"Stopping by itself after {duration:.0f} s.\n")

        # The fire police's side: the reference receiver prints what arrives and
        # acknowledges the alarms, as a receiving centre does.
        watch = subprocess.Popen(
            [os.path.join(harness.BUILD, "firegw-watch"), "--host", "127.0.0.1", "--port",
             str(broker.port), "--client-id", f"firegw-watch-demo-{os.getpid()}",
             "--receiver", "pccc-tay-ho-demo"], stdin=subprocess.DEVNULL)

        def stop_watch():
            watch.terminate()
            watch.wait(10)
        started.append(stop_watch)

        t0 = time.monotonic()
        todo = list(OPERATOR)
        while not stopping["flag"]:
            if todo and time.monotonic() - t0 >= todo[0][0]:
                command = todo.pop(0)[1]
                bold = ("\033[1;36m", "\033[0m") if tty else ("", "")
                print(f"{bold[0]}>>> building manager: firegw ctl {command}{bold[1]}",
                      flush=True)
                gw.ctl(command, expect_ok=False)
            if duration is not None and time.monotonic() - t0 >= duration:
                break
            if not gw.proc.alive():
                print("firegw exited unexpectedly:\n" + gw.proc.output()[-3000:])
                return 1
            if not sim.proc.alive():
                print("firegw-sim exited unexpectedly:\n" + sim.proc.output()[-3000:])
                return 1
            time.sleep(0.2)
        print("\nStopping the demo.")
        return 0
    finally:
        for stop in reversed(started):
            try:
                stop()
            except Exception as e:  # noqa: BLE001 - stop the rest regardless
                print(f"while stopping: {e}")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
