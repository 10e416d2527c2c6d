#!/usr/bin/python3
"""make demo: the example building, simulated, monitored by firegw, alerts on screen.

Starts Mosquitto on a free loopback port, firegw-sim with config/tayho-apartment.conf
playing sensors/scenarios/demo.scn, and firegw with the same config pointed at
them, then prints every alert as it arrives over MQTT. Ctrl-C stops everything it
started. Without a terminal (or with --duration) it stops by itself.
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import Broker, Gateway, Simulator, free_port, wait_until  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

CONFIG = os.path.join(ROOT, "config", "tayho-apartment.conf")
SCENARIO = os.path.join(ROOT, "sensors", "scenarios", "demo.scn")

COLOURS = {"fire_alarm": "1;41;97", "fire_confirmed": "1;41;97", "pre_alarm": "1;33",
           "alarm_pending": "1;33", "fault": "35", "restore": "32", "fault_restore": "32",
           "disabled": "36", "enabled": "36", "gateway_start": "34", "acknowledged": "36",
           "silenced": "36", "reset": "32", "test_alarm": "34", "operator": "1;36"}
TITLES = {"fire_alarm": "FIRE ALARM", "fire_confirmed": "FIRE CONFIRMED",
          "pre_alarm": "PRE-ALARM", "alarm_pending": "ALARM HELD", "fault": "FAULT",
          "restore": "RESTORED", "fault_restore": "FAULT CLEARED", "disabled": "DISABLED",
          "enabled": "ENABLED", "gateway_start": "GATEWAY START", "acknowledged": "ACKNOWLEDGED",
          "silenced": "SILENCED", "reset": "RESET", "test_alarm": "TEST ALARM",
          "test_mode_on": "TEST MODE ON", "test_mode_off": "TEST MODE OFF"}
# What a building manager does during the demo, in seconds from its start.
OPERATOR = [(75, "acknowledge all"), (80, "silence all"), (100, "reset all")]


def paint(text, kind, tty):
    if not tty or kind not in COLOURS:
        return text
    return f"\033[{COLOURS[kind]}m{text}\033[0m"


def local_time(ts):
    """The event's UTC time as Hanoi local time (UTC+7, no daylight saving)."""
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return ts
    return (t + datetime.timedelta(hours=7)).strftime("%H:%M:%S.%f")[:12]


def describe(ev):
    kind = ev.get("kind", "?")
    title = TITLES.get(kind, kind.upper())
    if ev.get("test"):
        title = "TEST " + title
    ts = local_time(ev.get("ts", ""))
    who = ""
    det = ev.get("detector")
    if det:
        zone = det.get("zone") or {}
        who = (f"{det['id']:<8} {det['type']:<10} floor {det['floor']:>2}  "
               f"{zone.get('name', '')} - {det.get('location', '')}")
    elif ev.get("zone"):
        who = f"zone {ev['zone']['id']} ({ev['zone'].get('name', '')})"
    elif ev.get("device"):
        who = f"device {ev['device']['id']} (unit {ev['device']['unit']})"
    elif ev.get("bus"):
        who = f"bus {ev['bus']['id']}"
    else:
        who = ev.get("detail", "")
    what = ""
    if ev.get("value"):
        what = f"  {ev['value']['value']:.2f} {ev['value']['unit']}"
        if ev.get("level"):
            what += f" (level {ev['level']['value']:g})"
    if ev.get("fault"):
        what += f"  [{ev['fault']}]"
    if ev.get("user") and ev["user"] not in who:
        what += f"  by {ev['user']}"
    return ts, title, who, what, kind


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
        sets = [f"bus.rs485-a.device={workdir}/ttyRS485A",
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
        print("Times are Hanoi local time (UTC+7).")
        print(f"Watch raw MQTT yourself: mosquitto_sub -h 127.0.0.1 -p {broker.port} "
              f"-t 'firegw/#' -v")
        print(f"The manager's console: build/firegw ctl --state-dir {workdir}/state status")
        print("Press Ctrl-C to stop.\n" if duration is None else
              f"Stopping by itself after {duration:.0f} s.\n")

        seen = set()

        def on_message(client, userdata, msg):
            try:
                ev = json.loads(msg.payload.decode())
            except ValueError:
                return
            if ev.get("event_id") in seen:
                return  # the same event from the second uplink
            seen.add(ev.get("event_id"))
            ts, title, who, what, kind = describe(ev)
            print(f"{ts}  {paint(f'{title:<14}', kind, tty)} {who}{what}", flush=True)

        client = mqtt.Client(client_id=f"firegw-demo-{os.getpid()}")
        client.on_message = on_message
        client.on_connect = lambda c, u, f, rc: c.subscribe("firegw/+/event", qos=1)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        started.append(client.loop_stop)

        t0 = time.monotonic()
        todo = list(OPERATOR)
        while not stopping["flag"]:
            if todo and time.monotonic() - t0 >= todo[0][0]:
                command = todo.pop(0)[1]
                print(f"{'':12}  {paint('OPERATOR', 'operator', tty):<14}  "
                      f"firegw ctl {command}", flush=True)
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
