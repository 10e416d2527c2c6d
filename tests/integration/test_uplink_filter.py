"""Per-uplink filters: the building owner's uplink gets only the zones and kinds it asked
for and no test events, while the fire police's uplink gets everything."""
import os

from harness import ROOT, GatewayTestCase, free_port, wait_until

REPORT_S = 15


class UplinkFilter(GatewayTestCase):
    def site_with_owner(self):
        with open(self.SITE, encoding="utf-8") as f:
            text = f.read()
        text += ("\n[uplink owner]\nrole = owner\nhost = 127.0.0.1\nport = 1\n"
                 "topic_prefix = owner/it-building\nzones = Z2\n"
                 "events = fire_alarm, restore, fault, fault_restore\ntest_events = no\n")
        path = os.path.join(self.workdir, "site-with-owner.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_owner_gets_only_its_zone_kinds_and_no_tests(self):
        broker = self.start_broker()
        site = self.site_with_owner()
        sets = self.small_site_sets(free_port(), broker.port) + [
            f"uplink.owner.port={broker.port}",
            f"gateway.profile_dir={os.path.join(ROOT, 'sensors', 'profiles')}"]
        w = self.watch(broker.port)
        sim = self.start_sim(sets, config=site)
        gw = self.start_gateway(sets, config=site)
        gw.wait_control()
        sim.cmd("set T-S1 value 1.7")                      # zone Z1, pre-alarm
        sim.cmd("set T-S1 value 3.0")                      # zone Z1, fire alarm
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        gw.ctl("test on detector R-H1 10min")              # zone Z2, test mode
        sim.cmd("set R-H1 value 80")
        w.wait_event(REPORT_S, kind="test_alarm", detector__id="R-H1")
        sim.cmd("set R-S1 value 3.0")                      # zone Z2, fire alarm
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="R-S1")

        def owner_events():
            return [m["json"] for m in w.messages
                    if m["topic"] == "owner/it-building/event" and m["json"]]
        wait_until(lambda: any(e["kind"] == "fire_alarm" for e in owner_events()), REPORT_S,
                   "the Z2 fire alarm at the owner")
        kinds = {(e["kind"], (e["detector"] or {}).get("id")) for e in owner_events()}
        self.assertIn(("fire_alarm", "R-S1"), kinds)
        self.assertNotIn(("fire_alarm", "T-S1"), kinds)          # another zone
        self.assertNotIn("gateway_start", {k for k, _ in kinds})  # a kind not asked for
        self.assertFalse(any(e["test"] for e in owner_events()))  # no test events
        # The fire police got all of it.
        district = [m["json"] for m in w.messages
                    if m["topic"] == "firegw/it-building/event" and m["json"]]
        self.assertTrue(any(e["kind"] == "test_alarm" for e in district))
        self.assertTrue(any(e["kind"] == "fire_alarm" and e["detector"]["id"] == "T-S1"
                            for e in district))
        self.assert_all_valid(w)
