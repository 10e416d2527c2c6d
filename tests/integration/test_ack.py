"""End-to-end acknowledgement of fire alarms by the receiving centre (EN 54-21): an alarm
not acknowledged in time is sent again and raises a transmission fault; the acknowledgement
ends both."""
import json
import time

from harness import GatewayTestCase, free_port, wait_until

PREFIX = "firegw/it-building"
REPORT_S = 15


def ack(watcher, event, receiver="pccc-test"):
    msg = {"schema": 1, "type": "ack", "event_id": event["event_id"], "seq": event["seq"],
           "receiver": receiver, "ts": "2026-11-23T05:04:03.456Z"}
    watcher.client.publish(f"{PREFIX}/ack", json.dumps(msg), qos=1)


class Acknowledgement(GatewayTestCase):
    def start_site(self, timeout="2s"):
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port) + [
            f"uplink.district.ack_timeout={timeout}"]
        w = self.watch(broker.port)
        sim = self.start_sim(sets)
        self.start_gateway(sets)
        w.wait_event(REPORT_S, kind="gateway_start")
        return sim, w

    def copies(self, w, event_id):
        return [e for e in w.events(kind="fire_alarm") if e["event_id"] == event_id]

    def test_unacknowledged_alarm_is_resent_and_raises_transmission_fault(self):
        sim, w = self.start_site()
        sim.cmd("set T-S1 value 3.0")
        alarm = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        fault = w.wait_event(REPORT_S, kind="fault", fault="transmission")
        self.assertEqual(fault["source"], "gateway")
        self.assertIn("district", fault["detail"])
        self.assertTrue(fault["real"])
        # Sent again, unchanged: same id and sequence number.
        wait_until(lambda: len(self.copies(w, alarm["event_id"])) >= 2, REPORT_S,
                   "the alarm sent again")
        again = self.copies(w, alarm["event_id"])[1]
        self.assertEqual(again["seq"], alarm["seq"])
        # The acknowledgement ends the fault and the resending.
        ack(w, alarm)
        w.wait_event(REPORT_S, kind="fault_restore", fault="transmission")
        n = len(self.copies(w, alarm["event_id"]))
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 4.5, 10, "two more ack timeouts")
        self.assertEqual(len(self.copies(w, alarm["event_id"])), n, "resent after its ack")
        self.assert_all_valid(w)

    def test_prompt_acknowledgement_means_no_fault(self):
        sim, w = self.start_site(timeout="3s")
        sim.cmd("set T-S1 value 3.0")
        alarm = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        ack(w, alarm)
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 5, 10, "past the ack timeout")
        self.assertEqual(w.events(kind="fault", fault="transmission"), [])
        self.assertEqual(len(self.copies(w, alarm["event_id"])), 1)
        self.assert_all_valid(w)

    def test_bad_and_unknown_acknowledgements_are_ignored(self):
        sim, w = self.start_site(timeout="2s")
        for payload in (b"not json", b"{}", b'{"event_id": 5}',
                        json.dumps({"event_id": "00000000-0000-4000-8000-000000000000"}).encode()):
            w.client.publish(f"{PREFIX}/ack", payload, qos=1)
        sim.cmd("set T-S1 value 3.0")
        alarm = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        w.wait_event(REPORT_S, kind="fault", fault="transmission")
        ack(w, alarm)
        w.wait_event(REPORT_S, kind="fault_restore", fault="transmission")
