"""Running under systemd: the unit file passes `systemd-analyze verify`, and the daemon
speaks the notify protocol (READY after the buses were polled, WATCHDOG keep-alives from a
healthy loop, STOPPING on the way out) to a test listener on NOTIFY_SOCKET; a bus poller
held far beyond its worst case by a device that drips its reply stops the keep-alives."""
import os
import re
import select
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


class DrippingPort:
    """The far end of a pseudo-terminal that the gateway opens as an RS-485 port. Silent at
    first (every request times out); once told to drip, it answers a request with a frame
    that announces 250 data bytes and sends them one every 0.3 s. libmodbus waits up to its
    0.5 s byte timeout for each next byte, so the poller stays in that one read for over a
    minute: far beyond the worst case of its configured timeouts and retries."""

    def __init__(self, link):
        self.master, self.slave = os.openpty()
        os.symlink(os.ttyname(self.slave), link)
        self.dripping = threading.Event()
        self.stopping = threading.Event()
        self.requests = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                request = os.read(self.master, 256)
            except OSError:
                return
            self.requests += 1
            if not self.dripping.is_set() or len(request) < 2:
                continue
            frame = bytes([request[0], request[1], 250]) + bytes(252)
            for byte in frame:
                if self.stopping.is_set() or not self.dripping.is_set():
                    break
                os.write(self.master, bytes([byte]))
                self.stopping.wait(0.3)

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        os.close(self.master)
        os.close(self.slave)


class Systemd(GatewayTestCase):
    def unit_here(self):
        """The unit with ExecStart pointing at the build, as `make install` points it."""
        unit = os.path.join(self.workdir, "firegw.service")
        with open(UNIT) as f:
            text = f.read()
        self.assertIn("\nExecStart=/usr/sbin/firegw --config /etc/firegw/site.conf ", text)
        with open(unit, "w") as f:
            f.write(text.replace("/usr/sbin/firegw", os.path.join(BUILD, "firegw")))
        return unit

    def test_unit_file_verifies_cleanly(self):
        # Its man: pages are checked installed, in test_install.py.
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", self.unit_here()],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "", "systemd-analyze warned about the unit")

    def test_unit_sandbox_exposure_stays_low(self):
        # docs/service.md explains the score (1.5) and what is left exposed, and why.
        p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                            self.unit_here()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=120)
        m = re.search(r"Overall exposure level for firegw.service: (\d+\.\d+)", p.stdout)
        self.assertIsNotNone(m, p.stdout[-2000:])
        self.assertLessEqual(float(m.group(1)), 1.5, p.stdout)
        # The serial ports stay reachable: a device allow list, never PrivateDevices=.
        self.assertRegex(p.stdout, r"DeviceAllow=.*char-ttyUSB:rw")
        self.assertRegex(p.stdout, r"✗ PrivateDevices=")

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

    def test_stuck_poller_withholds_the_watchdog(self):
        listener = NotifyListener(os.path.join(self.workdir, "notify.sock"))
        self._cleanup.append(listener.close)
        port = DrippingPort(os.path.join(self.workdir, "ttyDRIP"))
        self._cleanup.append(port.close)
        broker = self.start_broker()
        # tcp1 has nobody to talk to: its poller keeps turning through reconnect waits. rtu1's
        # stall limit is then 1 s + 0.2 s + 1.6 s + 10 s of margin: about 12.8 s.
        sets = [f"bus.tcp1.port={free_port()}",
                f"bus.rtu1.device={os.path.join(self.workdir, 'ttyDRIP')}",
                "bus.rtu1.reconnect_max=1s", f"uplink.district.port={broker.port}"]
        gw = self.start_gateway(sets, env={"NOTIFY_SOCKET": listener.path,
                                           "WATCHDOG_USEC": "1000000"})
        wait_until(lambda: listener.count("READY=1") == 1, 20, "READY=1")
        wait_until(lambda: listener.count("WATCHDOG=1") >= 2 and port.requests >= 2, 10,
                   "keep-alives while the RS-485 devices merely time out")

        port.dripping.set()
        stuck = "bus rtu1: its poller has not come round for"
        wait_until(lambda: stuck in gw.proc.output(), 30, "the log naming the stuck poller")
        before = listener.count("WATCHDOG=1")
        # Four keep-alive periods, while the main loop itself still answers.
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 2, 5, "two seconds")
        self.assertEqual(listener.count("WATCHDOG=1"), before, "keep-alives from a stuck poller")
        self.assertEqual(gw.ctl("status")[0], 0)
        line = next(l for l in gw.proc.output().splitlines() if stuck in l)
        self.assertIn("withholding the watchdog keep-alive", line)
        self.assertNotIn("bus tcp1: its poller", gw.proc.output())

        # The device stops dripping: the read ends at the byte timeout, the poller comes
        # round again, and the keep-alives resume (systemd would have restarted us by now).
        port.dripping.clear()
        wait_until(lambda: listener.count("WATCHDOG=1") > before, 10, "keep-alives again")
        self.assertEqual(gw.stop(), 0)
