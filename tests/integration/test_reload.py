"""Configuration reload on SIGHUP: unchanged buses keep polling, alarm states and latches
survive, new detectors are polled, an invalid or unsafe new config is refused and the running
one kept."""
import os
import re
import signal

from harness import ROOT, GatewayTestCase, free_port, wait_until

REPORT_S = 15
PROFILES = os.path.join(ROOT, "sensors", "profiles")
NEW_DETECTOR = """
[detector T-S3]
bus = tcp1
unit = 4
profile = optical-smoke-485
zone = Z1
location = Kho tầng 1
"""


class Reload(GatewayTestCase):
    def setUp(self):
        super().setUp()
        with open(self.SITE, encoding="utf-8") as f:
            base = f.read()
        base = base.replace("profile_dir = ../../sensors/profiles", f"profile_dir = {PROFILES}")
        self.base = base
        self.conf = os.path.join(self.workdir, "site.conf")
        self.write_conf(base)
        # The simulated building already has the detector the installer is about to add.
        self.sim_conf = os.path.join(self.workdir, "sim.conf")
        with open(self.sim_conf, "w", encoding="utf-8") as f:
            f.write(base + NEW_DETECTOR)

    def write_conf(self, text):
        tmp = self.conf + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    def start_site(self):
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port)
        w = self.watch(broker.port)
        sim = self.start_sim(sets, config=self.sim_conf)
        gw = self.start_gateway(sets, config=self.conf)
        gw.wait_control()
        w.wait_event(REPORT_S, kind="gateway_start")
        return sim, gw, w

    def reload(self, gw, expect):
        """SIGHUP, and wait for the log line that says how it went."""
        before = gw.proc.output().count("reload")
        gw.proc.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: gw.proc.output().count("reload") > before, REPORT_S, "a reload")
        wait_until(lambda: re.search(expect, gw.proc.output()), REPORT_S, expect)

    def test_new_detector_polled_latch_kept_unchanged_bus_not_restarted(self):
        sim, gw, w = self.start_site()
        sim.cmd("set T-S1 value 3.0")
        first = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        sim.cmd("set T-S1 value 0.1")
        gw.ctl("acknowledge zone Z1")
        w.wait_event(REPORT_S, kind="acknowledged")
        gw.ctl("disable detector R-H1 10min")
        w.wait_event(REPORT_S, kind="disabled", detector__id="R-H1")
        rtu_before = sim.unit_requests("rtu1", 1)
        mark = w.mark()

        self.write_conf(self.base + NEW_DETECTOR)
        self.reload(gw, r"configuration reloaded by SIGHUP: applied: 1 buses kept polling, "
                        r"1 \(re\)started; 8 detectors")

        # The new detector is polled and reported.
        topic = "firegw/it-building/detector/T-S3/state"
        st = w.wait_for(lambda m: m["topic"] == topic and m["json"], REPORT_S,
                        "the new detector's state", mark)["json"]
        self.assertEqual(st["state"], "normal")
        # The latched, acknowledged alarm is still there, not raised again nor restored.
        _, status = gw.ctl("status")
        self.assertIn('"fire_alarm":1', status)
        self.assertEqual([e["event_id"] for e in w.events(kind="fire_alarm")],
                         [first["event_id"]])
        self.assertEqual(w.events(kind="restore", detector__id="T-S1"), [])
        # The disablement survives: R-H1's heat does not alarm.
        sim.cmd("set R-H1 value 90")
        # The unchanged RTU bus kept its poller: no bus event, and it keeps being polled.
        wait_until(lambda: sim.unit_requests("rtu1", 1) >= rtu_before + 5, REPORT_S,
                   "rtu1 still polled")
        bus_events = [e for e in w.events() if e["source"] == "bus"]
        self.assertEqual(bus_events, [], "no bus went down or was restarted visibly")
        self.assertEqual(w.events(kind="fire_alarm", detector__id="R-H1"), [])
        # The new detector raises alarms like any other.
        sim.cmd("set T-S3 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S3")
        # A reset still clears the latched one.
        gw.ctl("reset zone Z1")
        w.wait_event(REPORT_S, kind="restore", detector__id="T-S1")
        self.assert_all_valid(w)

    def test_invalid_config_is_refused_and_the_old_one_runs_on(self):
        sim, gw, w = self.start_site()
        self.write_conf(self.base.replace("poll_interval = 200ms", "poll_interval = soon", 1)
                        + "\n[detector BAD]\nbus = tcp1\n")
        self.reload(gw, r"reload by SIGHUP refused")
        out = gw.proc.output()
        self.assertRegex(out, r"site\.conf:\d+: .*poll_interval")
        # Still polling and still alarming with the old configuration.
        sim.cmd("set T-S2 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S2")
        self.assertTrue(gw.proc.alive())
        self.assert_all_valid(w)

    def test_removing_a_detector_in_fire_alarm_is_refused(self):
        sim, gw, w = self.start_site()
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        without = re.sub(r"\[detector T-S1\].*?(?=\n\[)", "", self.base, count=1, flags=re.S)
        self.assertNotIn("T-S1", without)
        self.write_conf(without)
        self.reload(gw, r"detector \"T-S1\" is in fire alarm and the new configuration "
                        r"removes it: reset it first")
        _, status = gw.ctl("status")
        self.assertIn('"fire_alarm":1', status)
        # Once reset (and clear), the same file is accepted and its state topic is removed.
        sim.cmd("set T-S1 value 0.1")
        polls = sim.unit_requests("tcp1", 1)
        wait_until(lambda: sim.unit_requests("tcp1", 1) >= polls + 3, REPORT_S, "clear air read")
        topic = "firegw/it-building/detector/T-S1/state"
        gw.ctl("reset zone Z1")
        w.wait_event(REPORT_S, kind="restore", detector__id="T-S1")
        mark = w.mark()
        self.reload(gw, r"configuration reloaded by SIGHUP")
        w.wait_for(lambda m: m["topic"] == topic and m["raw"] == b"", REPORT_S,
                   "the removed detector's retained state cleared", mark)

    def test_uplink_change_needs_a_restart(self):
        sim, gw, w = self.start_site()
        self.write_conf(self.base.replace("keepalive = 2s", "keepalive = 3s"))
        self.reload(gw, r"uplink \"district\" changed its broker.*restart the service")
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
