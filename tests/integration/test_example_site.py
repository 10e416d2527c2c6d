"""The shipped example building, end to end: 60 detectors on an RS-485 line (a pty) and a
Modbus TCP converter with a fire panel module, the simulator playing a fire scenario faster
than real time, the gateway reporting to two uplinks on one Mosquitto."""
import os

from harness import ROOT, GatewayTestCase, free_port, wait_until

CONFIG = os.path.join(ROOT, "config", "tayho-apartment.conf")
SCENARIOS = os.path.join(ROOT, "sensors", "scenarios")
PREFIX = "firegw/tayho-hoasen-01"
REPORT_S = 15


class ExampleSite(GatewayTestCase):
    def example_sets(self, broker_port):
        return [f"bus.rs485-a.device={self.workdir}/ttyRS485A",
                "bus.tcp-b.host=127.0.0.1", f"bus.tcp-b.port={free_port()}",
                "uplink.district.host=127.0.0.1", f"uplink.district.port={broker_port}",
                "uplink.owner.host=127.0.0.1", f"uplink.owner.port={broker_port}"]

    def test_flaming_fire_reaches_both_uplinks(self):
        broker = self.start_broker()
        w = self.watch(broker.port)
        sets = self.example_sets(broker.port)
        self.start_sim(sets, config=CONFIG, scenario=os.path.join(SCENARIOS, "flaming.scn"),
                       extra=["--speed", "10"])
        self.start_gateway(sets, config=CONFIG)

        # Every one of the 60 detectors is polled and reports its state.
        def all_states(m):
            states = {x["topic"] for x in w.messages
                      if x["topic"].startswith(f"{PREFIX}/detector/")}
            return len(states) >= 60
        w.wait_for(all_states, 60, "a retained state from all 60 detectors")

        heat = w.wait_event(90, kind="fire_alarm", detector__id="F6-REFUSE")
        self.assertEqual(heat["detector"]["type"], "heat")
        self.assertEqual(heat["detector"]["floor"], 6)
        smoke = w.wait_event(90, kind="fire_alarm", detector__id="F6-HALL-2")
        self.assertEqual(smoke["detector"]["type"], "smoke")

        # The event goes out once per uplink: both brokers' clients published it.
        def copies():
            return [e for e in w.events(kind="fire_alarm", detector__id="F6-REFUSE")
                    if e["event_id"] == heat["event_id"]]
        wait_until(lambda: len(copies()) >= 2, 15, "the owner uplink's copy of the alarm")
        self.assertEqual(len(copies()), 2, "one copy per uplink (district and owner)")

        # A healthy building raises no faults while it burns.
        self.assertEqual(w.events(kind="fault"), [])
        self.assert_all_valid(w)

    def test_demo_scenario_gives_the_documented_sequence(self):
        # docs/alarm-rules.md lists what demo.scn produces. Played twice as fast, with the
        # floor 3 verification retard shortened to match, so the smoke is still there when
        # the retard ends.
        broker = self.start_broker()
        w = self.watch(broker.port)
        sets = self.example_sets(broker.port) + ["zone.F3.verification_retard=5s"]
        sim = self.start_sim(sets, config=CONFIG,
                             scenario=os.path.join(SCENARIOS, "demo.scn"), extra=["--speed", "2"])
        gw = self.start_gateway(sets, config=CONFIG)

        def kinds(det):
            # Both uplinks publish to this one broker: count each event once.
            seen, out = set(), []
            for e in w.events(detector__id=det):
                if e["event_id"] not in seen:
                    seen.add(e["event_id"])
                    out.append((e["kind"], e["rule"]))
            return out

        w.wait_event(60, kind="fire_alarm", detector__id="F3-HALL-1")
        seq = kinds("F3-HALL-1")
        self.assertEqual([k for k, _ in seq], ["pre_alarm", "alarm_pending", "fire_alarm"])
        self.assertEqual(seq[2][1], "alarm_verification_confirmed")
        heat = w.wait_event(60, kind="fire_alarm", detector__id="F7-REFUSE")
        self.assertEqual(heat["rule"], "heat_alarm_level")
        w.wait_event(60, kind="fault", detector__id="F5-ELEC", fault="detector_bit")
        w.wait_event(60, kind="fault_restore", detector__id="F5-ELEC", fault="detector_bit")
        # F3-HALL-2 only reached pre-alarm: it restores by itself when the smoke clears.
        w.wait_event(60, kind="restore", detector__id="F3-HALL-2")
        # The fire alarms latch: no restore for them until an operator resets.
        self.assertEqual(w.events(kind="restore", detector__id="F3-HALL-1"), [])
        self.assertEqual(w.events(kind="restore", detector__id="F7-REFUSE"), [])
        # Reset once the air is clear (a reset in smoke would alarm again at once).
        wait_until(lambda: sim.status()["detectors"]["F3-HALL-1"]["value"] < 0.5 and
                   sim.status()["detectors"]["F7-REFUSE"]["value"] < 40, 60, "clear air")
        gw.ctl("reset all")
        w.wait_event(REPORT_S, kind="restore", detector__id="F3-HALL-1")
        w.wait_event(REPORT_S, kind="restore", detector__id="F7-REFUSE")
        self.assert_all_valid(w)

    def test_flaming_fire_is_confirmed_by_coincidence(self):
        broker = self.start_broker()
        w = self.watch(broker.port)
        sets = self.example_sets(broker.port)
        self.start_sim(sets, config=CONFIG, scenario=os.path.join(SCENARIOS, "flaming.scn"),
                       extra=["--speed", "10"])
        self.start_gateway(sets, config=CONFIG)
        conf = w.wait_event(90, kind="fire_confirmed")
        self.assertEqual(conf["zone"]["id"], "F6")
        self.assertEqual(conf["rule"], "coincidence_smoke_and_heat")
        self.assert_all_valid(w)
