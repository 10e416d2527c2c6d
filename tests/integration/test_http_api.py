"""The web server and its HTTP API (docs/http-api.md) against the real gateway, simulator and
Mosquitto on loopback: first-run setup, sessions, roles, CSRF, the login rate limit, strict
request parsing and safe static files, the live state and stream, actions that reach MQTT with
the web user's name, the event history, walk tests, configuration edits and probes."""
import http.client
import json
import os
import socket
import subprocess
import threading
import time

from harness import BUILD, ROOT, GatewayTestCase, free_port, port_open, wait_until

REPORT_S = 15
ADMIN_PW = "mật khẩu quản trị"


class Client:
    """A browser-like client: keeps the session cookie and echoes the CSRF token."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None, headers=None, raw=None, csrf=True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if self.cookie:
            h["Cookie"] = self.cookie
        if csrf and self.csrf and method != "GET":
            h.setdefault("X-CSRF-Token", self.csrf)
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        cookie = resp.getheader("Set-Cookie")
        if cookie:
            value = cookie.split(";")[0]
            self.cookie = None if value.endswith("=") else value
        try:
            doc = json.loads(payload.decode()) if payload else None
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "csrf" in doc:
            self.csrf = doc["csrf"]
        return resp.status, resp, doc if doc is not None else payload

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body if body is not None else {}, **kw)

    def login(self, user, password):
        status, _, doc = self.post("/api/login", {"user": user, "password": password})
        if status != 200:
            raise AssertionError(f"login as {user}: {status} {doc}")
        return doc


def raw_http(port, request_bytes):
    """Send bytes as they are (no client-side path clean-up); return the status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request_bytes)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


class Stream(threading.Thread):
    """Reads /api/stream and records (event, data) pairs."""

    def __init__(self, port, cookie):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", "/api/stream", headers={"Cookie": cookie})
        self.resp = self.conn.getresponse()
        self.cond = threading.Condition()
        self.messages = []
        self.start()

    def run(self):
        event, data = None, []
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and event:
                    with self.cond:
                        self.messages.append((event, json.loads("\n".join(data))))
                        self.cond.notify_all()
                    event, data = None, []
        except (OSError, ValueError, http.client.HTTPException):
            return

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages:
                    if pred(*m):
                        return m[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the stream sent no {what} within {timeout}s")
                self.cond.wait(min(left, 0.2))

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def detector(state, det_id):
    return next(d for d in state["detectors"] if d["id"] == det_id)


class HttpApi(GatewayTestCase):
    def start_web(self):
        """Broker, simulator and a gateway whose web server listens on a free loopback port,
        with a config copy it may edit and a web root of the test's own."""
        self.www = os.path.join(self.workdir, "www")
        os.makedirs(self.www)
        with open(os.path.join(self.www, "index.html"), "w") as f:
            f.write("<!doctype html><title>firegw</title>\n")
        with open(os.path.join(self.www, "app.js"), "w") as f:
            f.write("console.log('firegw');\n")
        with open(os.path.join(self.workdir, "secret.txt"), "w") as f:
            f.write("outside the web root\n")
        os.symlink(os.path.join(self.workdir, "secret.txt"), os.path.join(self.www, "leak.txt"))
        self.site = os.path.join(self.workdir, "site.conf")
        with open(self.SITE) as f:
            text = f.read()
        profiles = os.path.join(ROOT, "sensors", "profiles")
        with open(self.site, "w") as f:
            f.write(text.replace("profile_dir = ../../sensors/profiles",
                                 f"profile_dir = {profiles}"))
        broker = self.start_broker()
        self.web_port = free_port()
        sets = self.small_site_sets(free_port(), broker.port) + [
            f"web.listen=127.0.0.1:{self.web_port}", f"web.root={self.www}"]
        watcher = self.watch(broker.port)
        sim = self.start_sim(sets, config=self.site)
        gw = self.start_gateway(sets, config=self.site)
        wait_until(lambda: port_open(self.web_port) or not gw.proc.alive(), REPORT_S,
                   "the web server")
        self.assertTrue(gw.proc.alive(), gw.proc.output())
        return sim, gw, watcher

    def admin(self):
        c = Client(self.web_port)
        status, _, doc = c.post("/api/setup", {"password": ADMIN_PW})
        self.assertEqual(status, 200, doc)
        return c

    def add_user(self, admin, name, role):
        status, _, doc = admin.post("/api/users", {"name": name, "role": role,
                                                   "password": f"{name} password 1"})
        self.assertEqual(status, 201, doc)
        c = Client(self.web_port)
        c.login(name, f"{name} password 1")
        return c

    def commands(self, gw):
        """The event log's operator commands, as `firegw events --commands` prints them."""
        p = subprocess.run([os.path.join(BUILD, "firegw"), "events", "--state-dir",
                            gw.state_dir, "--commands"], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        return p.stdout

    def test_accounts_roles_csrf_and_bad_requests(self):
        sim, gw, w = self.start_web()
        anon = Client(self.web_port)
        status, _, doc = anon.get("/api/session")
        self.assertEqual((status, doc["first_run"]), (401, True))
        self.assertIn("admin password", gw.proc.output())
        self.assertEqual(anon.get("/api/state")[0], 401)
        self.assertEqual(anon.post("/api/login", {"user": "admin", "password": "x"})[0], 401)
        status, _, doc = anon.post("/api/setup", {"password": "short"})
        self.assertEqual((status, doc["field"]), (400, "password"))
        status, _, _ = anon.post("/api/setup", {"password": ADMIN_PW},
                                 headers={"Origin": "http://evil.example"})
        self.assertEqual(status, 403)

        admin = self.admin()
        self.assertEqual(Client(self.web_port).post("/api/setup", {"password": ADMIN_PW})[0], 409)
        status, _, doc = admin.get("/api/session")
        self.assertEqual((status, doc["user"], doc["role"]), (200, "admin", "admin"))
        users = os.path.join(gw.state_dir, "users.json")
        self.assertEqual(os.stat(users).st_mode & 0o777, 0o600)
        with open(users) as f:
            self.assertNotIn(ADMIN_PW, f.read())

        # CSRF: missing or wrong token, even with a valid session.
        body = {"name": "vera", "role": "viewer", "password": "vera password 1"}
        self.assertEqual(admin.post("/api/users", body, csrf=False)[0], 403)
        self.assertEqual(admin.post("/api/users", body, headers={"X-CSRF-Token": "0" * 64})[0],
                         403)
        viewer = self.add_user(admin, "vera", "viewer")
        manager = self.add_user(admin, "minh", "manager")
        installer = self.add_user(admin, "ivan", "installer")

        # Roles: a viewer reads but cannot act; a manager acknowledges but cannot disable.
        self.assertEqual(viewer.get("/api/state")[0], 200)
        ack = {"action": "acknowledge", "scope": "all"}
        self.assertEqual(viewer.post("/api/actions", ack)[0], 403)
        self.assertEqual(viewer.get("/api/users")[0], 403)
        self.assertEqual(manager.post("/api/actions", ack)[0], 409)  # allowed; nothing to ack
        disable = {"action": "disable", "scope": "detector", "id": "T-S2", "duration": "10min"}
        self.assertEqual(manager.post("/api/actions", disable)[0], 403)
        mark = w.mark()
        status, _, doc = installer.post("/api/actions", disable)
        self.assertEqual(status, 200, doc)
        ev = w.wait_event(REPORT_S, since=mark, kind="disabled", detector__id="T-S2")
        self.assertEqual(ev["user"], "web:ivan")
        status, _, doc = installer.post("/api/actions", {"action": "enable", "scope": "detector",
                                                         "id": "NO-SUCH"})
        self.assertEqual((status, doc["field"]), (404, "id"))

        # Bodies: malformed, unknown field, wrong type, oversize, not JSON; the daemon serves on.
        status, _, doc = manager.request("POST", "/api/actions", raw=b"{\"action\": ",
                                         headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertIn("malformed JSON", doc["error"])
        status, _, doc = manager.post("/api/actions", {"action": "reset", "scope": "all",
                                                       "force": True})
        self.assertEqual((status, doc["field"]), (400, "force"))
        status, _, doc = manager.post("/api/actions", {"action": "reset", "scope": 3})
        self.assertEqual((status, doc["field"]), (400, "scope"))
        status, _, _ = manager.request("POST", "/api/actions", raw=b"{" + b" " * 70000 + b"}",
                                       headers={"Content-Type": "application/json"})
        self.assertEqual(status, 413)
        status, _, _ = manager.request("POST", "/api/actions", raw=b"action=reset",
                                       headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        self.assertEqual(manager.get("/api/nothing")[0], 404)
        status, resp, _ = manager.request("DELETE", "/api/state")
        self.assertEqual(status, 405)
        self.assertIn("GET", resp.getheader("Allow"))

        # Static files: the root only, with the security headers and a content type.
        status, resp, body = anon.get("/")
        self.assertEqual(status, 200)
        self.assertIn(b"firegw", body)
        self.assertEqual(resp.getheader("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(resp.getheader("Content-Security-Policy").split(";")[0],
                         "default-src 'self'")
        self.assertEqual(resp.getheader("X-Frame-Options"), "DENY")
        self.assertEqual(resp.getheader("X-Content-Type-Options"), "nosniff")
        self.assertTrue(resp.getheader("Referrer-Policy"))
        self.assertTrue(resp.getheader("Cache-Control"))
        status, resp, _ = anon.get("/app.js")
        self.assertEqual((status, resp.getheader("Content-Type")),
                         (200, "text/javascript; charset=utf-8"))
        for path in (b"/../secret.txt", b"/%2e%2e/secret.txt", b"/..%2fsecret.txt",
                     b"/.%2e/%2e%2e/etc/passwd"):
            self.assertEqual(raw_http(self.web_port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n"), 400, path)
        self.assertEqual(anon.get("/leak.txt")[0], 404)
        self.assertEqual(anon.get("/missing.js")[0], 404)
        self.assertEqual(anon.request("POST", "/index.html", raw=b"x")[0], 405)
        self.assertEqual(admin.get("/api/session")[0], 200)
        status, _, doc = anon.get("/api/session")
        self.assertEqual((status, doc["first_run"]), (401, False))

        # Clients that never finish their request hold a thread each, not the gateway.
        slow = [socket.create_connection(("127.0.0.1", self.web_port), timeout=5)
                for _ in range(6)]
        for s in slow:
            self.addCleanup(s.close)
            s.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        t0 = time.monotonic()
        self.assertEqual(admin.get("/api/state")[0], 200)
        self.assertEqual(gw.ctl("status")[0], 0)
        # Blocked, they would wait for the slow clients' 30 s idle timeout.
        self.assertLess(time.monotonic() - t0, 10)

        # Logout ends the session; the cookie no longer works.
        old_cookie = viewer.cookie
        self.assertEqual(viewer.post("/api/logout")[0], 200)
        viewer.cookie = old_cookie
        self.assertEqual(viewer.get("/api/state")[0], 401)

        # Rate limit: five wrong passwords, then 429 even for the right one.
        bad = Client(self.web_port)
        for _ in range(5):
            self.assertEqual(bad.post("/api/login", {"user": "minh", "password": "nope"})[0], 401)
        status, resp, doc = bad.post("/api/login", {"user": "minh", "password": "minh password 1"})
        self.assertEqual(status, 429, doc)
        self.assertTrue(25 <= int(resp.getheader("Retry-After")) <= 30)

        log = wait_until(lambda: "further logins locked for 30 s" in self.commands(gw) and
                         self.commands(gw), REPORT_S, "login records in the event log")
        self.assertIn("web:ivan", log)
        self.assertIn("disable detector T-S2 10min", log)
        self.assertIn("refused: wrong user name or password", log)
        self.assertIn("first-run setup", log)
        self.assert_all_valid(w)

    def test_alarm_state_stream_actions_and_history(self):
        sim, gw, w = self.start_web()
        admin = self.admin()
        manager = self.add_user(admin, "minh", "manager")

        def zone_action(action, kind):
            """The manager's action on zone Z1, logged as an event of kind by web:minh."""
            mark = w.mark()
            status, _, doc = manager.post("/api/actions", {"action": action, "scope": "zone",
                                                           "id": "Z1"})
            self.assertEqual(status, 200, doc)
            ev = w.wait_event(REPORT_S, since=mark, kind=kind)
            self.assertEqual(ev["user"], "web:minh")

        stream = Stream(self.web_port, manager.cookie)
        self.addCleanup(stream.close)
        stream.wait(lambda e, d: e == "state", REPORT_S, "first state")
        wait_until(lambda: detector(manager.get("/api/state")[2], "T-S1")["state"] == "normal",
                   REPORT_S, "T-S1 polled")

        t0 = time.monotonic()
        sim.cmd("set T-S1 value 3.0")
        # EN 54-2's 10 s from the reading to the alarm state, here seen by the manager's UI.
        wait_until(lambda: detector(manager.get("/api/state")[2], "T-S1")["state"] ==
                   "fire_alarm", 10.0, "the fire in /api/state within 10 s", interval=0.05)
        self.assertLess(time.monotonic() - t0, 10.5)
        alarm = stream.wait(lambda e, d: e == "event" and d["kind"] == "fire_alarm",
                            REPORT_S, "fire alarm event")
        self.assertEqual(alarm["detector"]["id"], "T-S1")
        stream.wait(lambda e, d: e == "state" and detector(d, "T-S1")["state"] == "fire_alarm",
                    REPORT_S, "state with the fire")
        state = manager.get("/api/state")[2]
        self.assertEqual(state["building"]["state"], "fire_alarm")
        z1 = next(z for z in state["zones"] if z["id"] == "Z1")
        self.assertEqual(z1["fire_alarm"], 1)
        self.assertTrue(detector(state, "T-S1")["latched"])
        self.assertTrue(state["buses"][0]["up"])

        zone_action("acknowledge", "acknowledged")
        stream.wait(lambda e, d: e == "state" and detector(d, "T-S1")["acknowledged"],
                    REPORT_S, "state with the acknowledgement")

        # Removing the detector in alarm from the config is refused by the running gateway:
        # the file is put back as it was and the alarm stays.
        with open(self.site) as f:
            before = f.read()
        version = admin.get("/api/config")[2]["version"]
        status, _, doc = admin.request("DELETE", "/api/config/detector/T-S1",
                                       {"version": version})
        self.assertEqual(status, 409, doc)
        self.assertIn("not applied", doc["error"])
        with open(self.site) as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(detector(manager.get("/api/state")[2], "T-S1")["state"], "fire_alarm")

        sim.cmd("set T-S1 value 0.1")
        wait_until(lambda: (detector(manager.get("/api/state")[2], "T-S1")["value"] or 9) < 1,
                   REPORT_S, "the smoke gone")
        zone_action("reset", "reset")
        wait_until(lambda: detector(manager.get("/api/state")[2], "T-S1")["state"] == "normal",
                   REPORT_S, "T-S1 normal after the reset")

        # History: filters and CSV.
        status, _, doc = manager.get("/api/events?kind=fire_alarm&zone=Z1&limit=10")
        self.assertEqual(status, 200, doc)
        self.assertEqual([e["event_id"] for e in doc["events"]], [alarm["event_id"]])
        status, _, doc = manager.get("/api/events?kind=fire_alarm&detector=T-S2")
        self.assertEqual(doc["events"], [])
        status, _, doc = manager.get("/api/events?limit=2")
        self.assertEqual(len(doc["events"]), 2)
        self.assertGreater(doc["events"][0]["seq"], doc["events"][1]["seq"])
        self.assertEqual(manager.get("/api/events?kind=explosion")[0], 400)
        self.assertEqual(manager.get("/api/events?since=2h")[2]["field"], "since")
        # from and to: a time or an age; anything else is named with its field.
        self.assertEqual(manager.get("/api/events?from=2h&to=2026-11-23")[0], 200)
        for arg, value in (("from", "yesterday"), ("to", "2026-13-45")):
            status, _, doc = manager.get(f"/api/events?{arg}={value}")
            self.assertEqual(status, 400, doc)
            self.assertEqual(doc["field"], arg)
            self.assertIn(f'{arg} "{value}" is not a time', doc["error"])
        status, resp, body = manager.get("/api/events?kind=fire_alarm,reset&format=csv")
        self.assertEqual(status, 200)
        self.assertIn("attachment", resp.getheader("Content-Disposition"))
        lines = body.decode("utf-8-sig").splitlines()
        self.assertTrue(lines[0].startswith("time,seq,kind"))
        kinds = sorted(line.split(",")[2] for line in lines[1:])
        self.assertEqual(kinds, ["fire_alarm", "reset"])
        self.assertIn("web:minh", body.decode())

        # Logging out ends the stream.
        self.assertEqual(manager.post("/api/logout")[0], 200)
        wait_until(lambda: not stream.is_alive(), 5, "the stream to end at logout")
        self.assert_all_valid(w)

    def test_walk_test_config_edit_and_probe(self):
        sim, gw, w = self.start_web()
        admin = self.admin()
        installer = self.add_user(admin, "ivan", "installer")
        viewer = self.add_user(admin, "vera", "viewer")
        wait_until(lambda: detector(installer.get("/api/state")[2], "R-S1")["state"] == "normal",
                   REPORT_S, "R-S1 polled")

        # Walk test: zone Z2 in test mode, R-S1 triggered, R-H1 not.
        self.assertEqual(viewer.post("/api/walktest", {"zone": "Z2"})[0], 403)
        status, _, doc = installer.post("/api/walktest", {"zone": "Z2", "duration": "10min"})
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["active"])
        self.assertEqual({d["id"] for d in doc["detectors"]}, {"R-S1", "R-H1"})
        sim.cmd("set R-S1 value 3.0")
        w.wait_event(REPORT_S, kind="test_alarm", detector__id="R-S1")
        doc = viewer.get("/api/walktest")[2]
        tested = {d["id"]: d["tested_at"] for d in doc["detectors"]}
        self.assertIsNotNone(tested["R-S1"])
        self.assertIsNone(tested["R-H1"])
        self.assertEqual((doc["tested"], doc["total"]), (1, 2))
        sim.cmd("set R-S1 value 0.1")
        w.wait_event(REPORT_S, kind="restore", rule="test_restore", detector__id="R-S1")
        status, _, doc = installer.request("DELETE", "/api/walktest")
        self.assertEqual(status, 200, doc)
        self.assertFalse(doc["active"])
        self.assertEqual(w.events(kind="fire_alarm", detector__id="R-S1"), [])

        # Configuration: read, edit one detector, and see the running gateway use it.
        self.assertEqual(viewer.get("/api/config")[0], 403)
        status, _, cfg = installer.get("/api/config")
        self.assertEqual(status, 200, cfg)
        ts2 = next(d for d in cfg["detectors"] if d["id"] == "T-S2")
        self.assertIn("optical-smoke-485", cfg["profiles"])
        edit = dict(ts2, location="Sảnh mới tầng 1", version=cfg["version"])
        status, _, doc = installer.request("PUT", "/api/config/detector/T-S2", edit)
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["applied"])
        with open(self.site) as f:
            text = f.read()
        self.assertIn("location = Sảnh mới tầng 1", text)
        self.assertIn("# A small building for the integration tests", text)
        self.assertTrue(os.path.exists(self.site + ".bak"))
        wait_until(lambda: detector(installer.get("/api/state")[2], "T-S2")["location"] ==
                   "Sảnh mới tầng 1", REPORT_S, "the new location in the live state")
        # The old version is stale now; a bad zone is a 422 naming the field; unknown keys 400.
        status, _, doc = installer.request("PUT", "/api/config/detector/T-S2", edit)
        self.assertEqual(status, 409, doc)
        version = installer.get("/api/config")[2]["version"]
        status, _, doc = installer.request("PUT", "/api/config/detector/T-S2",
                                           dict(edit, zone="NOPE", version=version))
        self.assertEqual(status, 422, doc)
        self.assertIn("detector.T-S2.zone", [e["field"] for e in doc["errors"]])
        status, _, doc = installer.request("PUT", "/api/config/detector/T-S2",
                                           dict(edit, colour="red", version=version))
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc.get("field"), "colour")
        with open(self.site) as f:
            self.assertEqual(f.read(), text)

        # Probe and scan on the running bus.
        status, _, doc = installer.post("/api/probe", {"device": "panel"})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["device"], "panel")
        self.assertTrue(doc["registers"])
        status, _, doc = installer.post("/api/scan", {"bus": "tcp1", "from": 1, "to": 4,
                                                      "timeout": "200ms"})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["units"], [1, 2, 3])
        self.assertEqual(installer.post("/api/probe", {"device": "nope"})[0], 404)
        self.assert_all_valid(w)


if __name__ == "__main__":
    import unittest
    unittest.main()
