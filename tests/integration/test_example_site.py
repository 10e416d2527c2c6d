"""The shipped example building, end to end: 60 detectors on an RS-485 line (a pty) and a
Modbus TCP converter with a fire panel module, the simulator playing a fire scenario faster
than real time, the gateway reporting to two uplinks on one Mosquitto."""
import os

from harness import ROOT, GatewayTestCase, free_port, wait_until

CONFIG = os.path.join(ROOT, "config", "tayho-apartment.conf")
SCENARIOS = os.path.join(ROOT, "sensors", "scenarios")
PREFIX = "firegw/tayho-hoasen-01"


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
