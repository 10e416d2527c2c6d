"""Running under systemd: the unit file passes `systemd-analyze verify`, and the daemon
speaks the notify protocol (READY after the buses were polled, WATCHDOG keep-alives from a
healthy loop, STOPPING on the way out) to a test listener on NOTIFY_SOCKET."""
import os
import socket
import subprocess
import threading
import time

from harness import BUILD, ROOT, GatewayTestCase, free_port, wait_until

UNIT = os.path.join(ROOT, "systemd", "firegw.service")


class NotifyListener:
    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append(data.decode())

    def count(self, word):
        return sum(1 for m in list(self.messages) if word in m.split("\n"))

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


class Systemd(GatewayTestCase):
    def test_unit_file_verifies_cleanly(self):
        unit = os.path.join(self.workdir, "firegw.service")
        with open(UNIT) as f:
            text = f.read().replace("/usr/local/bin/firegw", os.path.join(BUILD, "firegw"))
        with open(unit, "w") as f:
            f.write(text)
        p = subprocess.run(["systemd-analyze", "verify", unit], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "", "systemd-analyze warned about the unit")

    def test_ready_watchdog_and_stopping(self):
        listener = NotifyListener(os.path.join(self.workdir, "notify.sock"))
        self._cleanup.append(listener.close)
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port)
        self.start_sim(sets)
        gw = self.start_gateway(sets, env={"NOTIFY_SOCKET": listener.path,
                                           "WATCHDOG_USEC": "1000000"})
        wait_until(lambda: listener.count("READY=1") == 1, 20, "READY=1")
        ready = [m for m in listener.messages if "READY=1" in m][0]
        self.assertIn("STATUS=polling 2 buses, 7 detectors", ready)
        # Keep-alives every half interval (0.5 s) from the running loop.
        wait_until(lambda: listener.count("WATCHDOG=1") >= 3, 20, "three watchdog keep-alives")
        self.assertEqual(gw.stop(), 0)
        wait_until(lambda: listener.count("STOPPING=1") == 1, 10, "STOPPING=1")
        self.assertEqual(listener.count("READY=1"), 1)

    def test_no_watchdog_pings_when_not_asked(self):
        listener = NotifyListener(os.path.join(self.workdir, "notify.sock"))
        self._cleanup.append(listener.close)
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port)
        self.start_sim(sets)
        self.start_gateway(sets, env={"NOTIFY_SOCKET": listener.path})
        wait_until(lambda: listener.count("READY=1") == 1, 20, "READY=1")
        # Two seconds of running: plenty of loop turns, and not one keep-alive.
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 2, 5, "two seconds")
        self.assertEqual(listener.count("WATCHDOG=1"), 0)
