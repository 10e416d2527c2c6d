"""The installer's commands against the simulated building: `firegw scan` finds the units
on the TCP and RTU buses, `firegw probe` reads a device point by point (values, status bits,
implausible values, timeouts, exceptions by name), both refuse an RS-485 bus that a running
daemon owns, and `firegw status` prints the daemon's live state."""
import json
import os
import subprocess

from harness import BUILD, ROOT, GatewayTestCase, free_port, wait_until


def firegw(*args):
    """Run the firegw command line; returns (exit code, stdout, stderr)."""
    p = subprocess.run([os.path.join(BUILD, "firegw"), *args], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


class Cli(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.sets = self.small_site_sets(free_port(), free_port())
        self.sim = self.start_sim(self.sets)

    def run_cli(self, command, *args):
        argv = [command, "--config", self.SITE]
        for s in self.sets:
            argv += ["--set", s]
        return firegw(*argv, *args)

    def test_scan_finds_the_units_that_answer(self):
        rc, out, err = self.run_cli("scan", "--bus", "tcp1", "--from", "1", "--to", "4",
                                    "--timeout", "50ms")
        self.assertEqual(rc, 0, err)
        lines = [line for line in out.splitlines() if line.startswith("unit")]
        # The simulated detectors have no holding register 0: their exception proves them.
        self.assertEqual(len(lines), 3, out)
        for unit, line in zip((1, 2, 3), lines):
            self.assertRegex(line, rf"^unit +{unit} +answered with exception 2 ILLEGAL DATA "
                                   "ADDRESS: a device is there$")
        self.assertIn("3 units answered on bus tcp1", out)
        self.assertGreaterEqual(self.sim.unit_requests("tcp1", 4), 1)

        # The panel module has holding 0 (its LifeCheck); unit 99 is nobody.
        rc, out, err = self.run_cli("scan", "--bus", "tcp1", "--from", "99", "--to", "100",
                                    "--timeout", "50ms", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["units"], [100])
        self.assertEqual(doc["answers"][0]["answer"], "registers")
        self.assertTrue(doc["ok"])

        # RS-485: the same, through the simulator's pseudo-terminal.
        rc, out, err = self.run_cli("scan", "--bus", "rtu1", "--from", "1", "--to", "3",
                                    "--register", "input:0", "--timeout", "100ms")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"unit +1 +answered: input register 0 = 0x")
        # The float heat detector's registers start at input 1.
        self.assertRegex(out, r"unit +2 +answered with exception 2 ILLEGAL DATA ADDRESS")
        self.assertNotRegex(out, r"unit +3 ")
        self.assertIn("2 units answered on bus rtu1", out)
        self.assertGreaterEqual(self.sim.unit_requests("rtu1", 3), 1)

        # Nobody at these ids: exit 1 and a hint.
        rc, out, err = self.run_cli("scan", "--bus", "tcp1", "--from", "20", "--to", "21",
                                    "--timeout", "30ms")
        self.assertEqual(rc, 1)
        self.assertIn("no unit answered on bus tcp1", err)

    def test_probe_reads_points_with_meaning(self):
        self.sim.cmd("set T-S1 value 2.6")
        self.sim.cmd("bit T-S1 fault on")
        rc, out, err = self.run_cli("probe", "--device", "tcp1/1")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("profile optical-smoke-485", out)
        self.assertIn("detector T-S1 (zone Z1, Hành lang tầng 1)", out)
        self.assertRegex(out, r"obscuration +value +input 0 +0x0104 \(260\) +2\.6 %/m")
        self.assertRegex(out, r"fault +fault +input 1 +0x0002 bit 1 +set")
        self.assertRegex(out, r"alarm +alarm +input 1 +0x0002 bit 0 +clear")
        self.assertIn("every read answered and every point decoded", out)

        rc, out, err = self.run_cli("probe", "--device", "tcp1/1", "--json")
        self.assertEqual(rc, 0, err)
        regs = {r["name"]: r for r in json.loads(out)["registers"]}
        self.assertEqual(regs["obscuration"]["value"], 2.6)
        self.assertEqual(regs["obscuration"]["raw"], [260])
        self.assertEqual(regs["fault"]["value"], 1)

        # A panel: the device's counters, then each configured zone under its detector.
        self.sim.cmd("bit P-Z2 alarm on")
        rc, out, err = self.run_cli("probe", "--device", "panel")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("Channel 2: detector P-Z2 (zone P1, Hầm B1, khu B):", out)
        chan2 = out.split("Channel 2:")[1]
        self.assertRegex(chan2, r"zone_alarm +alarm +holding 101 +0x0001 bit 0 +set")
        self.assertRegex(out.split("Channel 2:")[0], r"zone_alarm .* clear")

        # RS-485, a float in swapped words.
        rc, out, err = self.run_cli("probe", "--device", "rtu1/2")
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"temperature +value +input 10 +0x[0-9A-F]{4} 0x41[0-9A-F]{2} "
                              r"+2\d\.\d+ degC")

    def test_probe_says_what_went_wrong(self):
        self.sim.cmd("raw T-S2 obscuration 65535")
        rc, out, err = self.run_cli("probe", "--device", "tcp1/2")
        self.assertEqual(rc, 1)
        self.assertIn("not usable: obscuration 655.35 %/m outside 0..20", out)
        self.assertIn("0 of 1 reads failed; 1 of 5 points have no usable value", out)

        self.sim.cmd("silent T-H1 on")
        rc, out, err = self.run_cli("probe", "--device", "tcp1/3", "--timeout", "80ms")
        self.assertEqual(rc, 1)
        self.assertRegex(out, r"input 0\.\.1 +no answer within 80 ms \(timeout\)")
        self.assertIn("not read: no answer within 80 ms (timeout)", out)

        # Any unit with any profile: a panel's map on a smoke detector gets exceptions.
        rc, out, err = self.run_cli("probe", "--bus", "tcp1", "--unit", "1", "--profile",
                                    "panel-zone-module", "--channel", "1")
        self.assertEqual(rc, 1)
        self.assertRegex(out, r"holding 0\.\.1 +exception 2 ILLEGAL DATA ADDRESS \(the device "
                              r"has no such register")

        # Usage and configuration errors: exit 2, naming what is wrong.
        rc, out, err = self.run_cli("probe", "--device", "nosuch")
        self.assertEqual(rc, 2)
        self.assertIn('has no device "nosuch"', err)
        rc, out, err = self.run_cli("scan", "--bus", "nosuch")
        self.assertEqual(rc, 2)
        self.assertIn('has no bus "nosuch" (buses: tcp1, rtu1)', err)
        rc, out, err = self.run_cli("scan", "--bus", "rtu1", "--from", "0")
        self.assertEqual(rc, 2)
        self.assertIn("unit ids 0..247 are not valid on bus rtu1 (1..247)", err)
        rc, out, err = self.run_cli("probe", "--device", "panel", "--timeout", "5s")
        self.assertEqual(rc, 2)
        self.assertIn('--timeout "5s": expected 10ms..2s', err)
        rc, out, err = firegw("probe", "--device", "panel")
        self.assertEqual(rc, 2)
        self.assertIn("--config FILE is required", err)
        rc, out, err = firegw("scan", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("Exit status:", out)

    def test_running_daemon_owns_the_rs485_bus(self):
        broker = self.start_broker()
        self.sets[2] = f"uplink.district.port={broker.port}"
        gw = self.start_gateway(self.sets)
        gw.wait_control()
        state = ["--state-dir", gw.state_dir]
        wait_until(lambda: "bus rtu1 up" in gw.proc.output(), 15, "the daemon on rtu1")
        before = self.sim.unit_requests("rtu1", 5)
        rc, out, err = self.run_cli("scan", "--bus", "rtu1", "--from", "5", "--to", "6", *state)
        self.assertEqual(rc, 3, out + err)
        self.assertIn(f"refused: the firegw daemon (pid {gw.proc.pid}) is running and owns bus "
                      "rtu1", err)
        self.assertIn("web UI", err)
        self.assertIn("systemctl stop firegw", err)
        self.assertEqual(self.sim.unit_requests("rtu1", 5), before, "the refused scan asked")
        # Without the state directory the daemon is still found: it has the port open.
        rc, out, err = self.run_cli("probe", "--device", "rtu1/1")
        self.assertEqual(rc, 3, out + err)
        self.assertIn(f"(pid {gw.proc.pid})", err)

        # TCP devices take several connections: a note, and the scan runs.
        rc, out, err = self.run_cli("scan", "--bus", "tcp1", "--from", "100", "--to", "100",
                                    "--timeout", "100ms", *state)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"note: the daemon (pid {gw.proc.pid}) is running", err)

        rc, out, err = firegw("status", *state)
        self.assertEqual(rc, 0, err)
        self.assertIn("Building it-building: normal", out)
        self.assertIn("Detectors: 7 (fire alarm 0", out)
        self.assertRegex(out, r"\n  P1 +normal +0 +0 +no +no")
        self.sim.cmd("set T-S1 value 3.5")
        wait_until(lambda: "Building it-building: fire_alarm" in firegw("status", *state)[1], 10,
                   "status showing the fire")
        rc, out, err = firegw("status", "--json", *state)
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        z1 = next(z for z in doc["zones"] if z["id"] == "Z1")
        self.assertEqual((z1["state"], z1["fire_alarm"]), ("fire_alarm", 1))
        rc, out, err = firegw("status", "--state-dir", os.path.join(self.workdir, "nowhere"))
        self.assertEqual(rc, 1)
        self.assertIn("cannot reach the gateway at", err)
