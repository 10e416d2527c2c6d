"""The durable outbox: after an outage queued events go out fire alarms first; its bound
drops the least urgent events, never an alarm or a fault; alarms waiting for the receiving
centre's acknowledgement still wait after a restart."""
import os
import sqlite3

from harness import GatewayTestCase, free_port, wait_until

REPORT_S = 30


def stored(state_dir):
    """(priority, kind-ish payload) rows waiting in the outbox, or [] before it exists."""
    path = os.path.join(state_dir, "outbox.db")
    if not os.path.exists(path):
        return []
    with sqlite3.connect(path, timeout=5) as db:
        return db.execute("SELECT priority, payload FROM outbox ORDER BY id").fetchall()


class Outbox(GatewayTestCase):
    def offline_site(self, *extra):
        """Simulator and gateway with the broker down; returns (broker_port, sets, sim, gw)."""
        broker_port = free_port()
        sets = self.small_site_sets(free_port(), broker_port) + list(extra)
        sim = self.start_sim(sets)
        gw = self.start_gateway(sets)
        gw.wait_control()
        return broker_port, sets, sim, gw

    def churn(self, gw, times):
        """Low-priority events: a detector disabled and enabled again, times over."""
        for _ in range(times):
            gw.ctl("disable detector T-H1 10min")
            gw.ctl("enable detector T-H1")

    def test_backlog_goes_out_fire_alarms_first(self):
        broker_port, sets, sim, gw = self.offline_site()
        self.churn(gw, 5)
        sim.cmd("set T-S1 value 3.0")
        wait_until(lambda: any('"fire_alarm"' in p for _, p in stored(gw.state_dir)), REPORT_S,
                   "the fire alarm stored in the outbox")
        broker = self.start_broker(broker_port)
        w = self.watch(broker.port)
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        wait_until(lambda: len(w.events(kind="enabled")) >= 5, REPORT_S, "the backlog")
        kinds = [e["kind"] for e in w.events()]
        self.assertEqual(kinds[0], "fire_alarm", kinds)
        # Within one class, event order is kept.
        rest = [e["seq"] for e in w.events() if e["kind"] in ("disabled", "enabled")]
        self.assertEqual(rest, sorted(rest))
        # Delivered events leave the outbox.
        wait_until(lambda: stored(gw.state_dir) == [], REPORT_S, "an empty outbox")
        self.assert_all_valid(w)

    def test_bound_drops_least_urgent_never_alarms_or_faults(self):
        broker_port, sets, sim, gw = self.offline_site("uplink.district.max_buffered=100")
        sim.cmd("set T-S1 value 3.0")
        sim.cmd("silent T-S2 on")
        wait_until(lambda: sum(1 for p, _ in stored(gw.state_dir) if p in (0, 2)) >= 2,
                   REPORT_S, "the alarm and the fault stored")
        self.churn(gw, 55)
        rows = stored(gw.state_dir)
        self.assertLessEqual(len(rows), 100)
        self.assertIn(0, [p for p, _ in rows])
        self.assertIn(2, [p for p, _ in rows])
        self.assertIn("oldest least urgent one was dropped", gw.proc.output())
        broker = self.start_broker(broker_port)
        w = self.watch(broker.port)
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        w.wait_event(REPORT_S, kind="fault")
        # The newest low-priority events are the ones kept.
        last = w.wait_event(REPORT_S, kind="enabled")
        self.assertEqual(last["detector"]["id"], "T-H1")
        self.assert_all_valid(w)

    def test_alarm_waiting_for_acknowledgement_survives_a_restart(self):
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port) + [
            "uplink.district.ack_timeout=3s"]
        w = self.watch(broker.port)
        sim = self.start_sim(sets)
        gw = self.start_gateway(sets)
        alarm = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1") if \
            sim.cmd("set T-S1 value 3.0") else None
        self.assertEqual(gw.stop(), 0)
        w.clear()
        gw2 = self.start_gateway(sets, state_dir=gw.state_dir)
        wait_until(lambda: "still wait for their acknowledgement" in gw2.proc.output(),
                   REPORT_S, "the waiting alarm restored")
        # Not acknowledged: the same alarm is sent again after ack_timeout.
        again = w.wait_for(lambda m: m["topic"].endswith("/event") and m["json"] and
                           m["json"]["event_id"] == alarm["event_id"], REPORT_S,
                           "the alarm sent again after the restart")["json"]
        self.assertEqual(again["seq"], alarm["seq"])
