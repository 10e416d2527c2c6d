"""End-to-end behaviour of the gateway against the simulator and a real Mosquitto.

Every MQTT message seen in these tests is validated against docs/schema/.
"""
import os
import subprocess
import time

from harness import BUILD, ROOT, GatewayTestCase, free_port, wait_until

PREFIX = "firegw/it-building"
# Generous bounds: they catch a gateway that never reports, not a slow machine.
REPORT_S = 15


def first_state(watcher, det, state, timeout=REPORT_S):
    topic = f"{PREFIX}/detector/{det}/state"
    return watcher.wait_for(lambda m: m["topic"] == topic and m["json"] and
                            m["json"]["state"] == state, timeout,
                            f"{det} state {state}")["json"]


class CheckConfig(GatewayTestCase):
    def run_check(self, path, *sets):
        argv = [os.path.join(BUILD, "firegw"), "--check-config", path]
        for s in sets:
            argv += ["--set", s]
        return subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60, text=True)

    def test_example_site_is_valid(self):
        p = self.run_check("config/tayho-apartment.conf")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK", p.stdout)
        self.assertRegex(p.stdout, r"\b2 buses\b")

    def test_error_names_file_line_and_problem(self):
        bad = os.path.join(self.workdir, "bad.conf")
        with open(os.path.join(ROOT, "tests", "integration", "site-small.conf")) as f:
            text = f.read()
        lines = text.splitlines()
        idx = lines.index("baud = 19200")
        lines[idx] = "baud = 19201"
        lines.insert(idx + 1, "colour = red")
        with open(bad, "w") as f:
            f.write("\n".join(lines) + "\n")
        # The copy lives elsewhere, so point it back at the profiles.
        p = self.run_check(bad, f"gateway.profile_dir={ROOT}/sensors/profiles")
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"{bad}:{idx + 1}:", p.stderr)
        self.assertIn("19201", p.stderr)
        self.assertIn(f"{bad}:{idx + 2}:", p.stderr)
        self.assertIn("colour", p.stderr)
        self.assertIn("configuration has errors", p.stderr)

    def test_bad_override_is_reported(self):
        p = self.run_check("config/tayho-apartment.conf", "bus.no-such-bus.port=1")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--set 1", p.stderr)


class EndToEnd(GatewayTestCase):
    def test_online_status_heartbeat_and_initial_states(self):
        broker, sim, gw, w = self.start_all()
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and m["json"] and
                   m["json"]["state"] == "online", REPORT_S, "online status")
        # A subscriber that arrives later gets the status as a retained message.
        late = self.watch(broker.port, f"{PREFIX}/status")
        status = late.wait_for(lambda m: m["json"] and m["json"]["state"] == "online",
                               REPORT_S, "retained online status")
        self.assertTrue(status["retain"])
        self.assertEqual(status["json"]["building"]["id"], "it-building")
        hb = w.wait_for(lambda m: m["topic"] == f"{PREFIX}/heartbeat", REPORT_S, "heartbeat")
        self.assertEqual(hb["json"]["detectors"]["total"], 7)
        for det in ("T-S1", "T-S2", "T-H1", "P-Z1", "P-Z2", "R-S1", "R-H1"):
            st = first_state(w, det, "normal")
            self.assertEqual(st["detector"]["id"], det)
        start = w.wait_event(REPORT_S, kind="gateway_start")
        self.assertTrue(start["real"])
        # A second heartbeat proves it is periodic.
        wait_until(lambda: len([m for m in w.messages
                                if m["topic"] == f"{PREFIX}/heartbeat"]) >= 2,
                   REPORT_S, "a second heartbeat")
        self.assert_all_valid(w)

    def test_smoke_alarm_raised_and_cleared_over_tcp(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "T-S1", "normal")
        sim.cmd("set T-S1 value 1.7")
        pre = w.wait_event(REPORT_S, kind="pre_alarm", detector__id="T-S1")
        self.assertEqual(pre["level"]["value"], 1.5)
        sim.cmd("set T-S1 value 2.6")
        ev = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assertTrue(ev["real"])
        self.assertFalse(ev["test"])
        self.assertEqual(ev["detector"]["type"], "smoke")
        self.assertEqual(ev["detector"]["zone"]["id"], "Z1")
        self.assertEqual(ev["detector"]["floor"], 1)
        self.assertAlmostEqual(ev["value"]["value"], 2.6, places=2)
        self.assertEqual(ev["value"]["unit"], "%/m")
        self.assertEqual(ev["level"]["value"], 2.0)
        st = first_state(w, "T-S1", "fire_alarm")
        self.assertTrue(st["latched"])
        # Latched: the alarm stays when the smoke clears, until someone resets it.
        sim.cmd("set T-S1 value 0.1")
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 1.5, 5, "several polls of clear air")
        self.assertEqual(w.events(kind="restore", detector__id="T-S1"), [])
        gw.ctl("reset zone Z1")
        reset = w.wait_event(REPORT_S, kind="reset")
        self.assertTrue(reset["user"].startswith("local:"))
        w.wait_event(REPORT_S, kind="restore", detector__id="T-S1")
        first_state(w, "T-S1", "normal", timeout=REPORT_S)
        self.assert_all_valid(w)

    def test_heat_alarm_over_rtu_with_float_registers(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "R-H1", "normal")
        sim.cmd("set R-H1 value 71.5")
        ev = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="R-H1")
        self.assertEqual(ev["detector"]["type"], "heat")
        self.assertAlmostEqual(ev["value"]["value"], 71.5, places=1)
        self.assertEqual(ev["value"]["unit"], "degC")
        self.assertEqual(ev["level"]["value"], 58)
        self.assert_all_valid(w)

    def test_silent_detector_gives_fault_and_restore(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "T-H1", "normal")
        sim.cmd("silent T-H1 on")
        ev = w.wait_event(REPORT_S, kind="fault", detector__id="T-H1", fault="no_response")
        self.assertEqual(ev["source"], "detector")
        dev = w.wait_event(REPORT_S, kind="fault", source="device", fault="device_down")
        self.assertEqual(dev["device"]["unit"], 3)
        first_state(w, "T-H1", "fault")
        sim.cmd("silent T-H1 off")
        w.wait_event(REPORT_S, kind="fault_restore", detector__id="T-H1", fault="no_response")
        w.wait_event(REPORT_S, kind="fault_restore", source="device", fault="device_down")
        self.assert_all_valid(w)

    def test_detector_fault_and_maintenance_bits(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "T-S2", "normal")
        sim.cmd("bit T-S2 fault on")
        w.wait_event(REPORT_S, kind="fault", detector__id="T-S2", fault="detector_bit")
        sim.cmd("bit T-S2 maintenance on")
        w.wait_event(REPORT_S, kind="fault", detector__id="T-S2", fault="maintenance")
        sim.cmd("bit T-S2 fault off")
        w.wait_event(REPORT_S, kind="fault_restore", detector__id="T-S2", fault="detector_bit")
        self.assert_all_valid(w)

    def test_implausible_value_is_a_fault_not_a_reading(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "T-S1", "normal")
        sim.cmd("raw T-S1 obscuration 65535")
        w.wait_event(REPORT_S, kind="fault", detector__id="T-S1", fault="implausible_value")
        self.assertEqual(w.events(kind="fire_alarm", detector__id="T-S1"), [])
        self.assert_all_valid(w)

    def test_panel_zone_alarm_and_lifecheck(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "P-Z1", "normal")
        sim.cmd("bit P-Z1 alarm on")
        ev = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="P-Z1")
        self.assertEqual(ev["detector"]["type"], "panel_zone")
        sim.cmd("lifecheck panel stop")
        w.wait_event(REPORT_S, kind="fault", fault="lifecheck_stopped")
        sim.cmd("lifecheck panel start")
        w.wait_event(REPORT_S, kind="fault_restore", fault="lifecheck_stopped")
        self.assert_all_valid(w)

    def test_dead_device_does_not_stall_its_bus(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "T-S2", "normal")
        sim.cmd("silent T-S2 on")
        w.wait_event(REPORT_S, kind="fault", source="device", fault="device_down")
        # With T-S2 dead and backed off, T-S1 on the same bus keeps being polled at its
        # interval: count its requests at the simulator over a window.
        before = sim.unit_requests("tcp1", 1)
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 2.0, 5, "a 2 s window")
        after = sim.unit_requests("tcp1", 1)
        polls = after - before
        # 200 ms interval: about 10 polls; fewer than 5 would mean the bus is stalling.
        self.assertGreaterEqual(polls, 5, "T-S1 polled too rarely while T-S2 is dead")
        # And an alarm on the live neighbour still gets through.
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assert_all_valid(w)

    def test_bus_that_comes_back_is_polled_again(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "T-S1", "normal")
        sim.stop()
        ev = w.wait_event(REPORT_S, kind="fault", source="bus", bus__id="tcp1")
        self.assertEqual(ev["fault"], "bus_down")
        sim2 = self.start_sim(self.sets)
        w.wait_event(REPORT_S, kind="fault_restore", source="bus", bus__id="tcp1")
        sim2.cmd("set T-S1 value 2.5")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assert_all_valid(w)

    def test_last_will_when_gateway_is_killed(self):
        broker, sim, gw, w = self.start_all()
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and m["json"] and
                   m["json"]["state"] == "online", REPORT_S, "online status")
        gw.kill9()
        # keepalive 2 s: the broker sends the will after 1.5 keepalives without traffic.
        will = w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and m["json"] and
                          m["json"]["state"] == "offline", REPORT_S, "offline last will")
        self.assertEqual(will["json"]["building"]["id"], "it-building")
        self.assert_all_valid(w)

    def test_clean_stop_publishes_offline_and_exits_zero(self):
        broker, sim, gw, w = self.start_all()
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and m["json"] and
                   m["json"]["state"] == "online", REPORT_S, "online status")
        rc = gw.stop()
        self.assertEqual(rc, 0, gw.proc.output())
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and m["json"] and
                   m["json"]["state"] == "offline", REPORT_S, "offline status")

    def test_sequence_numbers_and_ids_survive_restart(self):
        broker, sim, gw, w = self.start_all()
        w.wait_event(REPORT_S, kind="gateway_start")
        sim.cmd("set T-S1 value 2.5")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assertEqual(gw.stop(), 0)
        first = [e["seq"] for e in w.events()]
        gw2 = self.start_gateway(self.sets, state_dir=gw.state_dir)
        wait_until(lambda: len(w.events(kind="gateway_start")) >= 2, REPORT_S,
                   "the second gateway_start")
        events = w.events()
        seqs = [e["seq"] for e in events]
        self.assertEqual(len(set(seqs)), len(seqs), "sequence numbers must be unique")
        # Numbering goes on from the first run without a gap; a fire alarm may overtake
        # the start event on the wire (fire alarms first), so arrival order is not seq order.
        self.assertEqual(sorted(seqs), list(range(min(seqs), max(seqs) + 1)), "a gap")
        second = [e["seq"] for e in events if e["seq"] not in first]
        self.assertTrue(second and min(second) > max(first), seqs)
        ids = [e["event_id"] for e in events]
        self.assertEqual(len(set(ids)), len(ids), "event ids must be unique")
        del gw2
        self.assert_all_valid(w)

    def test_broker_started_after_gateway_still_gets_alarms(self):
        port = free_port()
        tcp_port = free_port()
        sets = self.small_site_sets(tcp_port, port)
        sim = self.start_sim(sets)
        self.start_gateway(sets)
        sim.cmd("set T-S1 value 2.5")
        # Gateway runs without its broker for a while, then the broker appears.
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 1.5, 5, "gateway running brokerless")
        broker = self.start_broker(port)
        w = self.watch(broker.port)
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and m["json"] and
                   m["json"]["state"] == "online", 30, "online status")
        st = first_state(w, "T-S1", "fire_alarm", timeout=30)
        self.assertEqual(st["level"], "fire_alarm")
        self.assert_all_valid(w)

    def test_broker_restart_gets_all_states_again(self):
        broker, sim, gw, w = self.start_all()
        first_state(w, "T-S1", "normal")
        port = broker.port
        broker.stop()  # no persistence: the broker forgets every retained message
        w.close()
        broker2 = self.start_broker(port)
        late = self.watch(broker2.port, f"{PREFIX}/detector/+/state")
        for det in ("T-S1", "T-S2", "T-H1", "P-Z1", "P-Z2", "R-S1", "R-H1"):
            st = first_state(late, det, "normal", timeout=40)
            self.assertEqual(st["detector"]["id"], det)
        self.assert_all_valid(late)

    def test_second_gateway_on_same_state_dir_is_refused(self):
        broker, sim, gw, w = self.start_all()
        w.wait_event(REPORT_S, kind="gateway_start")
        argv = gw.argv + ["--log-level", "info"]
        p = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, text=True, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already running", p.stderr)
        self.assertIn(str(gw.proc.pid), p.stderr)
        self.assertTrue(gw.proc.alive())

    def test_empty_state_dir_is_refused(self):
        argv = [os.path.join(BUILD, "firegw"), "--config", self.SITE, "--state-dir", ""]
        p = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, text=True, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1)
        self.assertIn("state directory must not be empty", p.stderr)
