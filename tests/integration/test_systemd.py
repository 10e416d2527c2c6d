"""Running under systemd: the unit file passes `systemd-analyze verify`, and the daemon
speaks the notify protocol (READY after the buses were polled, WATCHDOG keep-alives from a
healthy loop, STOPPING on the way out) to a test listener on NOTIFY_SOCKET; a device that
drips its reply costs no more than its timeout, while a bus poller that stops coming round
(its thread frozen with ptrace) stops the keep-alives."""
import ctypes
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
    that announces 250 data bytes and sends them one every 0.3 s: a reply that would hold
    the line for over a minute if every byte were given its own timeout."""

    def __init__(self, link):
        self.master, self.slave = os.openpty()
        os.symlink(os.ttyname(self.slave), link)
        self.dripping = threading.Event()
        self.stopping = threading.Event()
        self.requests = 0
        self.drips = 0
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
            self.drips += 1
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


PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000


class FrozenThread:
    """One thread of another process stopped with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT)
    while the process's other threads run on: a hung poller, as a bug or a stuck driver
    would leave it, without a test hook in the daemon."""

    def __init__(self, pid, name):
        self.tid = None
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() == name:
                    self.tid = int(tid)
        if self.tid is None:
            raise AssertionError(f"no thread named {name!r} in process {pid}")
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                     ctypes.c_void_p]
        self.attached = False

    def freeze(self):
        """True when frozen; False when ptrace is not allowed here (then skip)."""
        if self.libc.ptrace(PTRACE_SEIZE, self.tid, None, None) != 0:
            return False
        self.attached = True
        if self.libc.ptrace(PTRACE_INTERRUPT, self.tid, None, None) != 0:
            raise AssertionError(f"PTRACE_INTERRUPT: errno {ctypes.get_errno()}")
        os.waitpid(self.tid, WALL)
        return True

    def thaw(self):
        if self.attached:
            self.attached = False
            self.libc.ptrace(PTRACE_DETACH, self.tid, None, None)


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

    def watched_gateway(self):
        """A gateway with a 1 s watchdog, tcp1 with nobody to talk to (its poller keeps
        turning through reconnect waits) and rtu1 on a DrippingPort."""
        listener = NotifyListener(os.path.join(self.workdir, "notify.sock"))
        self._cleanup.append(listener.close)
        port = DrippingPort(os.path.join(self.workdir, "ttyDRIP"))
        self._cleanup.append(port.close)
        broker = self.start_broker()
        sets = [f"bus.tcp1.port={free_port()}",
                f"bus.rtu1.device={os.path.join(self.workdir, 'ttyDRIP')}",
                "bus.rtu1.reconnect_max=1s", f"uplink.district.port={broker.port}"]
        gw = self.start_gateway(sets, env={"NOTIFY_SOCKET": listener.path,
                                           "WATCHDOG_USEC": "1000000"})
        wait_until(lambda: listener.count("READY=1") == 1, 20, "READY=1")
        wait_until(lambda: listener.count("WATCHDOG=1") >= 2 and port.requests >= 2, 10,
                   "keep-alives while the RS-485 devices merely time out")
        return listener, port, gw

    def test_dripping_device_costs_only_its_timeout(self):
        listener, port, gw = self.watched_gateway()
        port.dripping.set()
        # The dripped reply is cut at the response timeout (200 ms plus the reply's wire
        # time): the device counts as failed, the poller keeps coming round, and the
        # keep-alives go on for far longer than the drip would have held the line.
        wait_until(lambda: port.drips >= 1, 20, "a dripped reply")
        before = listener.count("WATCHDOG=1")
        t0 = time.monotonic()
        # Longer than rtu1's stall limit (about 12.8 s), so a poller held by the drip
        # would have been reported stuck by now.
        wait_until(lambda: time.monotonic() - t0 >= 20, 25, "twenty seconds of dripping")
        self.assertGreaterEqual(listener.count("WATCHDOG=1"), before + 30)
        self.assertRegex(gw.proc.output(), r"bus rtu1: device \S+ unit \d+: reading .* failed")
        self.assertNotIn("its poller has not come round", gw.proc.output())
        self.assertEqual(gw.stop(), 0)

    def test_stuck_poller_withholds_the_watchdog(self):
        listener, port, gw = self.watched_gateway()
        frozen = FrozenThread(gw.proc.pid, "poll rtu1")
        self._cleanup.append(frozen.thaw)
        if not frozen.freeze():
            self.skipTest(f"ptrace is not allowed here (errno {ctypes.get_errno()})")
        # rtu1's stall limit: reconnect_max 1 s + 0.2 s + its cycle + 10 s of margin.
        stuck = "bus rtu1: its poller has not come round for"
        wait_until(lambda: stuck in gw.proc.output(), 30, "the log naming the stuck poller")
        before = listener.count("WATCHDOG=1")
        # Two keep-alive periods, while the main loop itself still answers.
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 2, 5, "two seconds")
        self.assertEqual(listener.count("WATCHDOG=1"), before, "keep-alives from a stuck poller")
        self.assertEqual(gw.ctl("status")[0], 0)
        line = next(l for l in gw.proc.output().splitlines() if stuck in l)
        self.assertIn("withholding the watchdog keep-alive", line)
        self.assertNotIn("bus tcp1: its poller", gw.proc.output())
        # The thread runs again: it comes round, and the keep-alives resume (systemd would
        # have restarted the service by now).
        frozen.thaw()
        wait_until(lambda: listener.count("WATCHDOG=1") > before, 10, "keep-alives again")
        self.assertEqual(gw.stop(), 0)
