"""Fire-panel behaviour end to end: latching and reset, acknowledge and silence, test mode,
disablement, alarm verification and coincidence, driven through `firegw ctl` and the
simulator, observed over MQTT."""
import time

from harness import GatewayTestCase, free_port, wait_until

REPORT_S = 15


class AlarmHandling(GatewayTestCase):
    def start_site(self, *extra_sets):
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port) + list(extra_sets)
        w = self.watch(broker.port)
        sim = self.start_sim(sets)
        gw = self.start_gateway(sets)
        gw.wait_control()
        w.wait_event(REPORT_S, kind="gateway_start")
        self.sets = sets
        return sim, gw, w

    def test_test_mode_never_sends_a_real_alarm(self):
        sim, gw, w = self.start_site()
        gw.ctl("test on zone Z2 10min")
        on = w.wait_event(REPORT_S, kind="test_mode_on")
        self.assertTrue(on["user"].startswith("local:"))
        sim.cmd("set R-S1 value 3.0")
        ev = w.wait_event(REPORT_S, kind="test_alarm", detector__id="R-S1")
        self.assertTrue(ev["test"])
        self.assertFalse(ev["real"])
        # Meanwhile a real fire elsewhere still goes out as real.
        sim.cmd("set T-S1 value 3.0")
        real = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assertTrue(real["real"])
        self.assertEqual(w.events(kind="fire_alarm", detector__id="R-S1"), [])
        sim.cmd("set R-S1 value 0.1")
        # End the test only once the gateway has seen the smoke gone: smoke still present
        # when test mode ends is a real alarm, and rightly so.
        ended = w.wait_event(REPORT_S, kind="restore", rule="test_restore", detector__id="R-S1")
        self.assertTrue(ended["test"])
        gw.ctl("test off zone Z2")
        w.wait_event(REPORT_S, kind="test_mode_off")
        self.assertEqual(w.events(kind="fire_alarm", detector__id="R-S1"), [])
        self.assert_all_valid(w)

    def test_acknowledge_and_silence_keep_the_alarm(self):
        sim, gw, w = self.start_site()
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        gw.ctl("acknowledge zone Z1")
        w.wait_event(REPORT_S, kind="acknowledged")
        gw.ctl("silence all")
        w.wait_event(REPORT_S, kind="silenced")
        topic = "firegw/it-building/detector/T-S1/state"
        st = w.wait_for(lambda m: m["topic"] == topic and m["json"]["silenced"], REPORT_S,
                        "a silenced state")["json"]
        self.assertEqual(st["state"], "fire_alarm")
        self.assertTrue(st["acknowledged"])
        self.assertEqual(w.events(kind="restore", detector__id="T-S1"), [])
        status = gw.ctl("status")[1]
        self.assertIn('"state":"fire_alarm"', status)
        self.assert_all_valid(w)

    def test_disabled_detector_does_not_alarm_until_enabled(self):
        sim, gw, w = self.start_site()
        gw.ctl("disable detector T-S2 10min")
        w.wait_event(REPORT_S, kind="disabled", detector__id="T-S2")
        sim.cmd("set T-S2 value 3.0")
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 1.5, 5, "several polls")
        self.assertEqual(w.events(kind="fire_alarm", detector__id="T-S2"), [])
        gw.ctl("enable detector T-S2")
        w.wait_event(REPORT_S, kind="enabled", detector__id="T-S2")
        # Enabled with the smoke still there: the alarm comes at once.
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S2")
        self.assert_all_valid(w)

    def test_verification_second_detector_confirms_at_once(self):
        sim, gw, w = self.start_site("zone.Z1.verification=yes",
                                     "zone.Z1.verification_retard=30s",
                                     "zone.Z1.verification_window=60s")
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="alarm_pending", detector__id="T-S1")
        # Within the 30 s retard nothing goes out; a second detector confirms at once.
        self.assertEqual(w.events(kind="fire_alarm"), [])
        sim.cmd("set T-S2 value 3.0")
        ev = w.wait_event(REPORT_S, kind="fire_alarm")
        self.assertIn(ev["detector"]["id"], ("T-S1", "T-S2"))
        self.assert_all_valid(w)

    def test_verification_confirms_after_retard_when_smoke_stays(self):
        sim, gw, w = self.start_site("zone.Z1.verification=yes",
                                     "zone.Z1.verification_retard=2s")
        sim.cmd("set T-S1 value 3.0")
        pending = w.wait_event(REPORT_S, kind="alarm_pending", detector__id="T-S1")
        ev = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assertGreater(ev["seq"], pending["seq"])
        self.assert_all_valid(w)

    def test_coincidence_smoke_and_heat_confirms(self):
        sim, gw, w = self.start_site("zone.Z1.coincidence=smoke_and_heat")
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assertEqual(w.events(kind="fire_confirmed"), [])
        sim.cmd("set T-H1 value 75")
        conf = w.wait_event(REPORT_S, kind="fire_confirmed")
        self.assertTrue(conf["real"])
        self.assert_all_valid(w)

    def test_ctl_reports_bad_commands(self):
        sim, gw, w = self.start_site()
        rc, out = gw.ctl("reset zone NO-SUCH-ZONE", expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("NO-SUCH-ZONE", out)
        rc, out = gw.ctl("disable detector T-S1 forever", expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("period", out)
        rc, out = gw.ctl("launch", expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("unknown command", out)
        self.assertTrue(gw.proc.alive())
