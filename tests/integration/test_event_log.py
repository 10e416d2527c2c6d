"""The local event log: every event, operator command and delivery outcome the running
gateway handles is in SQLite and readable with `firegw events` beside the daemon."""
import json
import os
import subprocess

from harness import BUILD, ROOT, GatewayTestCase, free_port, wait_until

REPORT_S = 15


class EventLog(GatewayTestCase):
    def events(self, gw, *args):
        argv = [os.path.join(BUILD, "firegw"), "events", "--state-dir", gw.state_dir, *args]
        return subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def test_events_commands_and_deliveries_are_logged(self):
        broker = self.start_broker()
        sets = self.small_site_sets(free_port(), broker.port)
        w = self.watch(broker.port)
        sim = self.start_sim(sets)
        gw = self.start_gateway(sets)
        gw.wait_control()
        sim.cmd("set T-S1 value 3.0")
        alarm = w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        gw.ctl("acknowledge zone Z1")
        w.wait_event(REPORT_S, kind="acknowledged")

        def logged():
            p = self.events(gw, "--kind", "fire_alarm", "--json")
            return p.returncode == 0 and [json.loads(x) for x in p.stdout.splitlines()]
        rows = wait_until(logged, REPORT_S, "the fire alarm in the event log")
        # The log holds exactly what went over MQTT.
        self.assertEqual(rows[0]["event_id"], alarm["event_id"])
        self.assertEqual(rows[0]["seq"], alarm["seq"])

        p = self.events(gw, "--zone", "Z1", "--detector", "T-S1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("T-S1", p.stdout)
        p = self.events(gw, "--commands")
        self.assertIn("acknowledge zone Z1", p.stdout)
        self.assertIn("local:", p.stdout)
        p = self.events(gw, "--deliveries", "--event", alarm["event_id"])
        self.assertIn("district", p.stdout)
        # Stored in the outbox first, then confirmed by the broker.
        self.assertIn("queued", p.stdout)
        wait_until(lambda: "delivered" in self.events(gw, "--deliveries", "--event",
                                                      alarm["event_id"]).stdout, 15,
                   "the broker's receipt in the log")

    def test_bad_arguments_and_missing_log(self):
        argv = [os.path.join(BUILD, "firegw"), "events", "--since", "yesterday-ish"]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("yesterday-ish", p.stderr)
        argv = [os.path.join(BUILD, "firegw"), "events", "--state-dir",
                os.path.join(self.workdir, "nowhere")]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("nowhere", p.stderr)
