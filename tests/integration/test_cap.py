"""CAP 1.2 alerts on <prefix>/cap (docs/cap.md) from a real gateway, the simulator and
Mosquitto: a simulated fire gives a CAP document, valid against
tests/fixtures/cap/cap-1.2.xsd, with status Actual and the event's id, number and time in
+07:00; a test-mode alarm gives status Test; an uplink without `cap = yes` gets none."""
import os
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from harness import ROOT, GatewayTestCase, free_port

SCHEMA = os.path.join(ROOT, "tests", "fixtures", "cap", "cap-1.2.xsd")
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
REPORT_S = 15
ALARM_KINDS = ("fire_alarm", "fire_confirmed", "test_alarm")


def cap_field(root, path):
    node = root.find("/".join(f"cap:{p}" for p in path.split("/")), NS)
    return None if node is None else node.text


def parameters(root):
    return {p.find("cap:valueName", NS).text: p.find("cap:value", NS).text
            for p in root.findall("cap:info/cap:parameter", NS)}


def vietnam_time(ts):
    """The event's UTC ts ("...T05:04:03.123Z") as CAP's sent: whole seconds at +07:00."""
    utc = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    local = utc.astimezone(timezone(timedelta(hours=7))).replace(microsecond=0)
    return local.strftime("%Y-%m-%dT%H:%M:%S+07:00")


class CapAlerts(GatewayTestCase):
    def site_with_owner(self):
        with open(self.SITE, encoding="utf-8") as f:
            text = f.read()
        text += ("\n[uplink owner]\nrole = owner\nhost = 127.0.0.1\nport = 1\n"
                 "topic_prefix = owner/it-building\n")
        path = os.path.join(self.workdir, "site-with-owner.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def schema_errors(self, doc, name):
        """xmllint's complaints about doc, or None when it is valid against the schema."""
        path = os.path.join(self.workdir, f"{name}.xml")
        with open(path, "wb") as f:
            f.write(doc)
        proc = subprocess.run(["xmllint", "--noout", "--nonet", "--schema", SCHEMA, path],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return None if proc.returncode == 0 else proc.stdout.decode(errors="replace")

    def wait_cap(self, watcher, event):
        """The CAP document on the district's cap topic for this event, parsed and checked."""
        def pred(m):
            try:
                return cap_field(ET.fromstring(m["raw"]), "identifier") == event["event_id"]
            except ET.ParseError:
                return True  # fails below, with the document shown
        m = watcher.wait_for(pred, REPORT_S, f"the CAP document of {event['kind']} "
                             f"#{event['seq']}")
        self.assertEqual(m["topic"], "firegw/it-building/cap")
        self.assertFalse(m["retain"])
        err = self.schema_errors(m["raw"], f"cap-{event['seq']}")
        self.assertIsNone(err, f"{m['raw'].decode(errors='replace')}\n{err}")
        root = ET.fromstring(m["raw"])
        self.assertEqual(root.tag, "{urn:oasis:names:tc:emergency:cap:1.2}alert")
        self.assertEqual(cap_field(root, "sender"), "firegw@it-building")
        self.assertEqual(cap_field(root, "sent"), vietnam_time(event["ts"]))
        self.assertEqual(cap_field(root, "msgType"), "Alert")
        self.assertEqual(cap_field(root, "scope"), "Restricted")
        self.assertTrue(cap_field(root, "restriction"))
        self.assertEqual(cap_field(root, "info/category"), "Fire")
        self.assertEqual(cap_field(root, "info/senderName"), "Tòa nhà kiểm thử")
        self.assertEqual(cap_field(root, "info/area/areaDesc"), "1 Đường Thử, Tây Hồ, Hà Nội")
        self.assertEqual(cap_field(root, "info/area/circle"), "21.07,105.82 0")
        params = parameters(root)
        self.assertEqual(params["seq"], str(event["seq"]))
        self.assertEqual(params["detector"], event["detector"]["id"])
        self.assertEqual(params["zone"], event["zone"]["id"])
        self.assertEqual(params["rule"], event["rule"])
        return root

    def test_fire_and_test_alarm_as_cap(self):
        broker = self.start_broker()
        site = self.site_with_owner()
        sets = self.small_site_sets(free_port(), broker.port) + [
            "uplink.district.cap=yes", f"uplink.owner.port={broker.port}",
            f"gateway.profile_dir={os.path.join(ROOT, 'sensors', 'profiles')}"]
        events = self.watch(broker.port, "firegw/it-building/event")
        caps = self.watch(broker.port, "firegw/it-building/cap")
        owner = self.watch(broker.port, "owner/it-building/#")
        sim = self.start_sim(sets, config=site)
        gw = self.start_gateway(sets, config=site)
        gw.wait_control()

        sim.cmd("set T-S1 value 3.0")
        fire = events.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assertTrue(fire["real"])
        root = self.wait_cap(caps, fire)
        self.assertEqual(cap_field(root, "status"), "Actual")
        self.assertEqual(cap_field(root, "info/severity"), "Severe")
        self.assertIn("FIRE ALARM", cap_field(root, "info/headline"))

        gw.ctl("test on detector R-H1 10min")
        sim.cmd("set R-H1 value 80")
        test = events.wait_event(REPORT_S, kind="test_alarm", detector__id="R-H1")
        root = self.wait_cap(caps, test)
        self.assertEqual(cap_field(root, "status"), "Test")
        self.assertIn("TEST", cap_field(root, "info/headline"))
        self.assertTrue(cap_field(root, "note"))

        # Every CAP document is one of an alarm event (none for faults, restores, starts),
        # and each is valid.
        alarm_ids = {e["event_id"] for e in events.events() if e["kind"] in ALARM_KINDS}
        with caps.lock:
            docs = [m["raw"] for m in caps.messages]
        for i, doc in enumerate(docs):
            self.assertIn(cap_field(ET.fromstring(doc), "identifier"), alarm_ids)
            self.assertIsNone(self.schema_errors(doc, f"all-{i}"))

        # The owner's uplink has no `cap`: by the time its test alarm arrived, the fire
        # alarm's CAP document, stored right after that event, would have come before it.
        owner.wait_event(REPORT_S, kind="test_alarm", detector__id="R-H1")
        self.assertTrue(owner.events(kind="fire_alarm", detector__id="T-S1"))
        with owner.lock:
            self.assertEqual([m["topic"] for m in owner.messages if m["topic"].endswith("/cap")],
                             [])
        self.assert_all_valid(events)
        self.assert_all_valid(owner)
