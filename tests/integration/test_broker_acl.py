"""The example broker ACL (config/mosquitto/firegw.acl): a gateway publishes only under its
own prefix and reads only its own command topic; the receiving centre reads everything."""
import os
import shutil
import subprocess
import threading

import paho.mqtt.client as mqtt

from harness import ROOT, GatewayTestCase, LOOPBACK, free_port, wait_until

ACL = os.path.join(ROOT, "config", "mosquitto", "firegw.acl")
USERS = {"it-building": "pw-a", "other-building": "pw-b", "pccc-tayho": "pw-c"}


class Client:
    def __init__(self, port, user):
        self.got = []
        self.granted = {}
        self.lock = threading.Lock()
        self.c = mqtt.Client(client_id=f"acl-{user}-{os.getpid()}", clean_session=True)
        self.c.username_pw_set(user, USERS[user])
        self.c.on_message = lambda c, u, m: self._got(m)
        self.c.on_subscribe = lambda c, u, mid, qos: self.granted.__setitem__(mid, qos)
        self.connected = threading.Event()
        self.c.on_connect = lambda c, u, f, rc: rc == 0 and self.connected.set()
        self.c.connect(LOOPBACK, port)
        self.c.loop_start()
        if not self.connected.wait(10):
            raise AssertionError(f"{user} could not log in")

    def _got(self, m):
        with self.lock:
            self.got.append((m.topic, m.payload))

    def subscribe(self, topic):
        rc, mid = self.c.subscribe(topic, qos=1)
        wait_until(lambda: mid in self.granted, 10, f"SUBACK for {topic}")
        return self.granted[mid][0]

    def publish(self, topic, payload):
        self.c.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class BrokerAcl(GatewayTestCase):
    def start_acl_broker(self):
        pw = os.path.join(self.workdir, "passwd")
        for i, (user, secret) in enumerate(USERS.items()):
            args = ["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + [pw, user, secret]
            subprocess.run(args, check=True, timeout=30, stdout=subprocess.DEVNULL)
        acl = os.path.join(self.workdir, "firegw.acl")
        shutil.copy(ACL, acl)
        for p in (self.workdir, pw, acl):
            os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        return self.start_broker(extra=f"allow_anonymous false\npassword_file {pw}\n"
                                       f"acl_file {acl}\n")

    def client(self, port, user):
        c = Client(port, user)
        self._cleanup.append(c.close)
        return c

    def test_gateway_cannot_speak_for_or_command_another(self):
        broker = self.start_acl_broker()
        centre = self.client(broker.port, "pccc-tayho")
        self.assertEqual(centre.subscribe("firegw/#"), 1)
        gw_a = self.client(broker.port, "it-building")
        # Its own topics: allowed.
        gw_a.publish("firegw/it-building/event", b'{"own":1}')
        # Another building's topics: dropped by the broker.
        gw_a.publish("firegw/other-building/event", b'{"spoof":1}')
        gw_a.publish("firegw/other-building/command", b'{"spoof":2}')
        wait_until(lambda: any(t == "firegw/it-building/event" for t, _ in centre.got), 10,
                   "the gateway's own event at the centre")
        # A marker published after the spoofs proves they had their chance to arrive.
        centre.publish("firegw/other-building/ack", b'{"marker":1}')
        wait_until(lambda: any(t == "firegw/other-building/ack" for t, _ in centre.got), 10,
                   "the marker")
        spoofs = [p for t, p in centre.got if b"spoof" in p]
        self.assertEqual(spoofs, [], "a gateway published under another building's prefix")
        # Reading: commands for another building never reach this gateway, its own do.
        gw_a.subscribe("firegw/other-building/command")
        gw_a.subscribe("firegw/it-building/command")
        centre.publish("firegw/other-building/command", b'{"for":"other"}')
        centre.publish("firegw/it-building/command", b'{"for":"own"}')
        wait_until(lambda: any(p == b'{"for":"own"}' for _, p in gw_a.got), 10,
                   "the gateway's own command")
        self.assertNotIn(("firegw/other-building/command", b'{"for":"other"}'), gw_a.got)

    def test_real_gateway_works_under_the_acl(self):
        broker = self.start_acl_broker()
        centre = self.client(broker.port, "pccc-tayho")
        centre.subscribe("firegw/#")
        sets = self.small_site_sets(free_port(), broker.port) + [
            "uplink.district.username=it-building", "uplink.district.password=pw-a"]
        sim = self.start_sim(sets)
        self.start_gateway(sets)
        wait_until(lambda: any(t == "firegw/it-building/status" for t, _ in centre.got), 20,
                   "the gateway's status at the centre")
        sim.cmd("set T-S1 value 3.0")
        wait_until(lambda: any(t == "firegw/it-building/event" and b"fire_alarm" in p
                               for t, p in centre.got), 20, "the fire alarm at the centre")
