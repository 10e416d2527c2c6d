"""Uplinks over TLS with a CA and client certificates the test makes, host name checks,
wrong credentials, and failover between the nodes of a broker cluster."""
import http.client
import json
import os
import socket
import ssl
import subprocess

from harness import BUILD, GatewayTestCase, free_port, port_open, wait_until

PREFIX = "firegw/it-building"
REPORT_S = 20


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def readable_by_broker(*paths):
    """Mosquitto started as root reads its files as the mosquitto user: test files only."""
    for p in paths:
        os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)


def make_pki(d):
    """A CA, a broker certificate for 127.0.0.1, one for another name, and a client one."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=firegw test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for name, san in (("server", "IP:127.0.0.1,DNS:localhost"),
                      ("wrongname", "DNS:broker.elsewhere.example"), ("client", None)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        ext = os.path.join(d, f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\n" if san else "extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f"{name}.crt", cwd=d)
    readable_by_broker(os.path.dirname(d), d, *(os.path.join(d, f) for f in os.listdir(d)))


class PkiTestCase(GatewayTestCase):
    """A test with its own certificate authority, broker, client and web certificates."""

    def setUp(self):
        super().setUp()
        self.pki = os.path.join(self.workdir, "pki")
        os.mkdir(self.pki)
        make_pki(self.pki)

    def p(self, name):
        return os.path.join(self.pki, name)


class Tls(PkiTestCase):

    def tls_broker(self, cert="server"):
        return self.start_broker(extra=(
            f"cafile {self.p('ca.crt')}\ncertfile {self.p(cert + '.crt')}\n"
            f"keyfile {self.p(cert + '.key')}\nrequire_certificate true\n"))

    def tls_sets(self, broker, *more):
        return self.small_site_sets(free_port(), broker.port) + [
            "uplink.district.tls=yes", f"uplink.district.ca_file={self.p('ca.crt')}",
            f"uplink.district.cert_file={self.p('client.crt')}",
            f"uplink.district.key_file={self.p('client.key')}", *more]

    def watcher(self, broker):
        return self.watch(broker.port, tls={"ca_certs": self.p("ca.crt"),
                                            "certfile": self.p("client.crt"),
                                            "keyfile": self.p("client.key")})

    def test_alarm_over_tls_with_client_certificate(self):
        broker = self.tls_broker()
        w = self.watcher(broker)
        sets = self.tls_sets(broker)
        sim = self.start_sim(sets)
        self.start_gateway(sets)
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and m["json"]["state"] == "online",
                   REPORT_S, "online status over TLS")
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assert_all_valid(w)

    def test_wrong_host_name_is_refused_unless_check_is_off(self):
        broker = self.tls_broker(cert="wrongname")
        sets = self.tls_sets(broker)
        self.start_sim(sets)
        gw = self.start_gateway(sets)
        wait_until(lambda: "TLS error" in gw.proc.output() or
                   "cannot connect" in gw.proc.output(), REPORT_S, "a TLS error in the log")
        self.assertNotIn("connected to ssl://", gw.proc.output())
        self.assertTrue(gw.proc.alive())
        self.assertEqual(gw.stop(), 0)
        # The same broker is accepted when the installer turns the host name check off.
        gw2 = self.start_gateway(sets + ["uplink.district.verify_hostname=no"],
                                 state_dir=os.path.join(self.workdir, "state2"))
        wait_until(lambda: "connected to ssl://" in gw2.proc.output(), REPORT_S,
                   "a TLS connection without the host name check")

    def test_tls_key_without_tls_is_a_config_error(self):
        argv = [os.path.join(BUILD, "firegw"), "--check-config", self.SITE,
                "--set", f"uplink.district.ca_file={self.p('ca.crt')}",
                "--set", "uplink.district.cert_file=/nonexistent/client.crt"]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn('ca_file needs "tls = yes"', p.stderr)
        self.assertIn("/nonexistent/client.crt) cannot be read", p.stderr)
        self.assertIn("cert_file and key_file go together", p.stderr)


class Credentials(GatewayTestCase):
    def test_wrong_password_is_reported_and_retried(self):
        pw = os.path.join(self.workdir, "passwd")
        subprocess.run(["mosquitto_passwd", "-b", "-c", pw, "district", "right-secret"],
                       check=True, timeout=30, stdout=subprocess.DEVNULL)
        readable_by_broker(self.workdir, pw)
        broker = self.start_broker(extra=f"allow_anonymous false\npassword_file {pw}\n")
        sets = self.small_site_sets(free_port(), broker.port) + [
            "uplink.district.username=district", "uplink.district.password=wrong-secret"]
        self.start_sim(sets)
        gw = self.start_gateway(sets)
        wait_until(lambda: "cannot connect" in gw.proc.output(), REPORT_S,
                   "a connect failure in the log")
        out = gw.proc.output()
        self.assertRegex(out, r"not authori[sz]ed|bad user name or password|code 5|code 4")
        self.assertTrue(gw.proc.alive())


class Failover(GatewayTestCase):
    def test_second_node_takes_over_when_the_first_is_down(self):
        down_port = free_port()  # the first node: nothing listens there
        node2 = self.start_broker()
        w = self.watch(node2.port)
        sets = self.small_site_sets(free_port(), down_port) + [
            f"uplink.district.failover=127.0.0.1:{node2.port}"]
        sim = self.start_sim(sets)
        self.start_gateway(sets)
        w.wait_for(lambda m: m["topic"] == f"{PREFIX}/status" and
                   m["json"]["state"] == "online", REPORT_S, "online via the second node")
        sim.cmd("set T-S1 value 3.0")
        w.wait_event(REPORT_S, kind="fire_alarm", detector__id="T-S1")
        self.assert_all_valid(w)



class WebOverHttps(PkiTestCase):
    """The web UI with a configured certificate (web.https_cert, web.https_key)."""

    def test_web_ui_over_https(self):
        broker = self.start_broker()
        port = free_port()
        sets = self.small_site_sets(free_port(), broker.port) + [
            f"web.listen=127.0.0.1:{port}", f"web.https_cert={self.p('server.crt')}",
            f"web.https_key={self.p('server.key')}"]
        self.start_sim(sets)
        gw = self.start_gateway(sets)
        gw.wait_control()
        ctx = ssl.create_default_context(cafile=self.p("ca.crt"))

        def call(method, path, body=None):
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=headers)
            r = conn.getresponse()
            out = (r.status, r.getheader("Set-Cookie") or "", r.read())
            conn.close()
            return out

        wait_until(lambda: port_open(port), 15, "the web UI's port")
        status, _, body = call("GET", "/api/session")
        self.assertEqual(status, 401)
        self.assertTrue(json.loads(body)["first_run"])
        status, cookie, _ = call("POST", "/api/setup", {"password": "a long admin secret"})
        self.assertEqual(status, 200)
        # Over HTTPS the session cookie is only ever sent back over HTTPS.
        for flag in ("Secure", "HttpOnly", "SameSite=Strict"):
            self.assertIn(flag, cookie)
        # The certificate is the one configured, checked against its CA and host.
        status, _, _ = call("GET", "/")
        self.assertEqual(status, 200)
        # Plain HTTP on the same port gets no page.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            s.settimeout(5)
            try:
                reply = s.recv(64)
            except (socket.timeout, ConnectionResetError):
                reply = b""
        self.assertFalse(reply.startswith(b"HTTP/1."), reply)
