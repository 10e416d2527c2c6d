"""Installing firegw: `make install` puts every file where docs/service.md says, with
DESTDIR and PREFIX; `make uninstall` takes exactly those away again; the installed
gateway checks the installed example site with the installed profiles and no
profile_dir; the man pages render without a groff warning and name every option the
programs accept; the installed unit verifies and the sysusers file makes the account;
`make deb` builds a package with the right files and a Depends that covers every
shared library the programs need.

Each build here is its own, in a temporary directory (a few seconds with two jobs)."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import ROOT

MAN_PAGES = {"firegw.8": "man8", "firegw.conf.5": "man5", "firegw-watch.1": "man1",
             "firegw-sim.1": "man1"}
PROFILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "sensors",
                                                                      "profiles", "*.profile")))


def make(*args, timeout=300):
    """Runs make in the source tree; its own make, not a job of the one running the tests."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "-s", "-j2", "-C", ROOT, *args], env=env, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise AssertionError(f"make {' '.join(args)} failed ({p.returncode}):\n{p.stdout[-4000:]}")
    return p.stdout


def run(argv, env=None, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120, env=env, **kw)


def files_under(top):
    """Every file and symlink under top, as paths relative to it."""
    out = set()
    for d, _, names in os.walk(top):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), top))
    return out


def source_text(page):
    """The page's roff source with \\- as -, so options can be looked up as typed."""
    with open(os.path.join(ROOT, "man", page), encoding="utf-8") as f:
        return f.read().replace("\\-", "-")


def long_options(help_text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9])", help_text))


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="firegw-install-")
        # The layout as documented: default PREFIX, into a staging tree.
        cls.dest = os.path.join(cls.tmp, "dest")
        cls.build = os.path.join(cls.tmp, "build")
        cls.dest_args = [f"BUILD={cls.build}", f"DESTDIR={cls.dest}"]
        make(*cls.dest_args, "install")
        # An installed gateway that really runs: everything under one temporary PREFIX.
        cls.prefix = os.path.join(cls.tmp, "p", "usr")
        cls.etc = os.path.join(cls.tmp, "p", "etc")
        make(f"BUILD={cls.tmp}/build-p", f"PREFIX={cls.prefix}", f"SYSCONFDIR={cls.etc}",
             f"STATEDIR={cls.tmp}/p/var/lib/firegw", "install")
        cls.firegw = os.path.join(cls.prefix, "sbin", "firegw")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dest, *parts)

    def expected_files(self):
        local = "usr/local"
        files = {f"{local}/sbin/firegw", f"{local}/bin/firegw-watch", f"{local}/bin/firegw-sim",
                 f"{local}/lib/systemd/system/firegw.service",
                 f"{local}/lib/sysusers.d/firegw.conf", "etc/firegw/site.conf.example",
                 f"{local}/share/doc/firegw/README.md", f"{local}/share/doc/firegw/service.md",
                 f"{local}/share/doc/firegw/config.md"}
        files |= {f"{local}/share/firegw/profiles/{p}" for p in PROFILES}
        files |= {f"{local}/share/man/{sec}/{page}" for page, sec in MAN_PAGES.items()}
        for scn in glob.glob(os.path.join(ROOT, "sensors", "scenarios", "*.scn")):
            files.add(f"{local}/share/firegw/scenarios/{os.path.basename(scn)}")
        return files

    def test_destdir_install_puts_every_file_where_documented(self):
        have = files_under(self.dest)
        missing = self.expected_files() - have
        self.assertEqual(missing, set(), "not installed")
        # Nothing lands outside the documented places.
        allowed = ("usr/local/", "etc/firegw/")
        self.assertEqual([f for f in have if not f.startswith(allowed)], [])
        for prog in ("usr/local/sbin/firegw", "usr/local/bin/firegw-watch",
                     "usr/local/bin/firegw-sim"):
            self.assertEqual(os.stat(self.path(prog)).st_mode & 0o777, 0o755, prog)
        for f in ("etc/firegw/site.conf.example", "usr/local/lib/systemd/system/firegw.service",
                  "usr/local/share/man/man8/firegw.8"):
            self.assertEqual(os.stat(self.path(f)).st_mode & 0o777, 0o644, f)
        state = self.path("var/lib/firegw")
        self.assertTrue(os.path.isdir(state))
        self.assertEqual(os.stat(state).st_mode & 0o777, 0o750)
        self.assertEqual(os.listdir(state), [])

        with open(self.path("usr/local/lib/systemd/system/firegw.service")) as f:
            unit = f.read()
        self.assertIn("\nExecStart=/usr/local/sbin/firegw --config /etc/firegw/site.conf "
                      "--state-dir /var/lib/firegw\n", unit)
        with open(self.path("etc/firegw/site.conf.example"), encoding="utf-8") as f:
            example = f.read()
        self.assertNotRegex(example, r"(?m)^profile_dir", "points into the source tree")
        self.assertNotIn("../sensors", example)
        self.assertIn("/usr/local/share/firegw/profiles", example)

    def test_uninstall_removes_what_install_put_and_keeps_site_config_and_state(self):
        dest = os.path.join(self.tmp, "dest-un")
        args = [f"BUILD={self.build}", f"DESTDIR={dest}"]
        make(*args, "install")
        site = os.path.join(dest, "etc/firegw/site.conf")
        with open(site, "w") as f:
            f.write("# the site's own config\n")
        with open(os.path.join(dest, "var/lib/firegw/events.db"), "w") as f:
            f.write("state")
        make(*args, "install")  # a second install overwrites neither
        with open(site) as f:
            self.assertEqual(f.read(), "# the site's own config\n")
        make(*args, "uninstall")
        self.assertEqual(files_under(dest), {"etc/firegw/site.conf", "var/lib/firegw/events.db"})
        for d in ("usr/local/share/firegw", "usr/local/share/doc/firegw"):
            self.assertFalse(os.path.exists(os.path.join(dest, d)), d)
        # Without a site config /etc/firegw goes too; the state directory never does.
        os.unlink(site)
        make(*args, "install")
        make(*args, "uninstall")
        self.assertFalse(os.path.exists(os.path.join(dest, "etc/firegw")))
        self.assertTrue(os.path.isdir(os.path.join(dest, "var/lib/firegw")))

    def test_installed_gateway_checks_example_with_installed_profiles(self):
        example = os.path.join(self.etc, "firegw", "site.conf.example")
        p = run([self.firegw, "--check-config", example])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("configuration OK", p.stdout)
        self.assertIn(f"{len(PROFILES)} profiles", p.stdout)
        # They came from PREFIX/share/firegw/profiles: without them, nothing is found there.
        profiles = os.path.join(self.prefix, "share", "firegw", "profiles")
        aside = profiles + ".aside"
        os.rename(profiles, aside)
        try:
            p = run([self.firegw, "--check-config", example])
        finally:
            os.rename(aside, profiles)
        self.assertEqual(p.returncode, 1)
        self.assertIn("profile \"optical-smoke-485\" not found", p.stderr)
        for prog in ("firegw", "firegw-watch"):
            p = run([os.path.join(self.prefix, "sbin" if prog == "firegw" else "bin", prog),
                     "--version"])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, rf"^{prog} \d+\.\d+\.\d+")

    def test_man_pages_render_without_warnings(self):
        for page, sec in MAN_PAGES.items():
            installed = self.path("usr/local/share/man", sec, page)
            for locale in ("C", "C.UTF-8"):
                for width in ("80", "100"):
                    env = dict(os.environ, LC_ALL=locale, MANWIDTH=width)
                    p = run(["man", "--warnings", "-l", installed], env=env)
                    self.assertEqual(p.returncode, 0, f"{page}: {p.stderr}")
                    self.assertEqual(p.stderr, "", f"{page} ({locale}, {width} columns)")
                    self.assertIn("NAME", p.stdout)
            p = run(["lexgrog", installed])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            name = page.rsplit(".", 1)[0]
            self.assertIn(f'"{name} - ', p.stdout)

    def test_man_pages_name_every_option_and_command(self):
        bins = {"firegw": os.path.join(self.prefix, "sbin", "firegw"),
                "firegw-watch": os.path.join(self.prefix, "bin", "firegw-watch"),
                "firegw-sim": os.path.join(self.prefix, "bin", "firegw-sim")}
        pages = {"firegw": "firegw.8", "firegw-watch": "firegw-watch.1",
                 "firegw-sim": "firegw-sim.1"}
        for prog, path in bins.items():
            helps = [run([path, "--help"]).stdout]
            if prog == "firegw":  # and each subcommand its usage lines name
                subs = sorted(set(re.findall(r"(?m)^ +firegw ([a-z]+) ", helps[0])))
                self.assertIn("ctl", subs)
                helps += [run([path, sub, "--help"]).stdout for sub in subs]
                text = source_text("firegw.8")
                for sub in subs:
                    self.assertRegex(text, rf"(?m)^\.SS firegw {sub}$", f"firegw.8 lacks {sub}")
            options = set().union(*(long_options(h) for h in helps))
            self.assertGreater(len(options), 5, f"{prog} --help names too few options")
            text = source_text(pages[prog])
            undocumented = sorted(o for o in options if not re.search(re.escape(o) + r"\b", text))
            self.assertEqual(undocumented, [], f"{pages[prog]} lacks options of {prog} --help")
        ctl_help = run([bins["firegw"], "ctl", "--help"]).stdout
        commands = re.findall(r"(?m)^  ([a-z]+(?: on| off)?) ", ctl_help)
        self.assertIn("acknowledge", commands)
        text = source_text("firegw.8")
        for c in commands:
            self.assertRegex(text, rf"\.BI? \"?{c}\b", f"firegw.8 lacks ctl command {c}")

    def test_conf_man_page_documents_every_section_and_its_example_checks(self):
        # The sections the gateway knows, from its own error for an unknown one.
        bad = os.path.join(self.tmp, "unknown-section.conf")
        with open(bad, "w") as f:
            f.write("[nosuchsection]\n")
        p = run([self.firegw, "--check-config", bad])
        m = re.search(r"unknown section \[nosuchsection\] \(expected ([^)]*)\)", p.stderr)
        self.assertIsNotNone(m, p.stderr)
        sections = re.split(r", | or ", m.group(1))
        self.assertIn("uplink", sections)
        text = source_text("firegw.conf.5")
        for s in sections:
            self.assertRegex(text, rf"(?m)^\.SS \[{s}\b", f"firegw.conf.5 lacks [{s}]")

        env = dict(os.environ, LC_ALL="C", MANWIDTH="80")
        page = run(["man", "-l", os.path.join(ROOT, "man", "firegw.conf.5")], env=env).stdout
        block = re.search(r"(?ms)^EXAMPLE\n(.*?)^FILES\n", page)
        self.assertIsNotNone(block)
        conf = os.path.join(self.tmp, "man-example.conf")
        with open(conf, "w") as f:
            f.write("\n".join(line[11:] for line in block.group(1).splitlines()) + "\n")
        p = run([self.firegw, "--check-config", conf])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 detectors", p.stdout)

    def test_installed_unit_verifies_and_sysusers_makes_the_account(self):
        unit = os.path.join(self.tmp, "firegw.service")
        with open(self.path("usr/local/lib/systemd/system/firegw.service")) as f:
            text = f.read()
        with open(unit, "w") as f:
            f.write(text.replace("/usr/local/sbin/firegw", self.path("usr/local/sbin/firegw")))
        # man: references in Documentation= must name installed pages.
        env = dict(os.environ, MANPATH=self.path("usr/local/share/man"))
        p = run(["systemd-analyze", "verify", unit], env=env)
        self.assertEqual((p.returncode, p.stderr.strip()), (0, ""))

        root = os.path.join(self.tmp, "sysusers-root")
        os.makedirs(os.path.join(root, "etc"))
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(root, "etc/group"), "w") as f:
            f.write("root:x:0:\ndialout:x:20:\n")
        for name in ("shadow", "gshadow"):
            open(os.path.join(root, "etc", name), "w").close()
        conf_dir = os.path.join(root, "usr/local/lib/sysusers.d")
        os.makedirs(conf_dir)
        shutil.copy(self.path("usr/local/lib/sysusers.d/firegw.conf"), conf_dir)
        p = run(["systemd-sysusers", f"--root={root}"])
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(root, "etc/passwd")) as f:
            user = [line.split(":") for line in f if line.startswith("firegw:")]
        self.assertEqual(len(user), 1)
        self.assertEqual(user[0][5], "/var/lib/firegw")
        self.assertEqual(user[0][6].strip(), "/usr/sbin/nologin")
        self.assertLess(int(user[0][2]), 1000, "not a system user")
        with open(os.path.join(root, "etc/group")) as f:
            groups = {g.split(":")[0]: g.strip().split(":")[3].split(",") for g in f}
        self.assertIn("firegw", groups["dialout"])
        self.assertIn("firegw", groups)

    def test_deb_has_the_right_files_and_depends(self):
        out = os.path.join(self.tmp, "deb")
        make(f"DEB_DIR={out}", "deb")
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        version = run([self.firegw, "--version"]).stdout.split()[1]
        deb = os.path.join(out, f"firegw_{version}_{arch}.deb")
        self.assertTrue(os.path.isfile(deb), os.listdir(out))

        fields = {k: run(["dpkg-deb", "-f", deb, k]).stdout.strip()
                  for k in ("Package", "Version", "Architecture", "Depends", "Maintainer")}
        self.assertEqual((fields["Package"], fields["Version"], fields["Architecture"]),
                         ("firegw", version, arch))
        self.assertRegex(fields["Maintainer"], r"^.+ <[^>]+@[^>]+>$")
        depends = [d.strip() for d in fields["Depends"].split(",")]
        self.assertIn("systemd-sysusers | adduser", depends)

        listing = run(["dpkg-deb", "-c", deb]).stdout
        names = {line.split()[-1] for line in listing.splitlines()}
        want = {"./usr/sbin/firegw", "./usr/bin/firegw-watch", "./usr/bin/firegw-sim",
                "./lib/systemd/system/firegw.service", "./usr/lib/sysusers.d/firegw.conf",
                "./etc/firegw/site.conf.example", "./var/lib/firegw/",
                "./usr/share/doc/firegw/service.md"}
        want |= {f"./usr/share/firegw/profiles/{p}" for p in PROFILES}
        want |= {f"./usr/share/man/{sec}/{page}.gz" for page, sec in MAN_PAGES.items()}
        self.assertEqual(want - names, set())
        self.assertEqual([n for n in names if "/local/" in n], [])
        self.assertRegex(listing, r"(?m)^drwxr-x--- root/root .* \./var/lib/firegw/$")
        self.assertRegex(listing, r"(?m)^-rwxr-xr-x root/root .* \./usr/sbin/firegw$")

        tree = os.path.join(self.tmp, "deb-x")
        self.assertEqual(run(["dpkg-deb", "-R", deb, tree]).returncode, 0)
        with open(os.path.join(tree, "lib/systemd/system/firegw.service")) as f:
            self.assertIn("\nExecStart=/usr/sbin/firegw --config /etc/firegw/site.conf ",
                          f.read())
        with open(os.path.join(tree, "DEBIAN/conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/firegw/site.conf.example"])
        with open(os.path.join(tree, "DEBIAN/postinst")) as f:
            self.assertIn("systemd-sysusers firegw.conf", f.read())
        programs = [os.path.join(tree, p) for p in
                    ("usr/sbin/firegw", "usr/bin/firegw-watch", "usr/bin/firegw-sim")]
        for prog in programs:
            sections = run(["readelf", "-S", "-W", prog]).stdout
            self.assertNotIn(".debug_info", sections, f"{prog} is not stripped")
        with open(programs[0], "rb") as f:
            self.assertIn(b"/usr/share/firegw/profiles\0", f.read(), "not built for PREFIX=/usr")

        # Every shared library a program needs comes from a package named in Depends.
        named = {re.split(r"[ (|]", d)[0] for d in depends}
        for prog in programs:
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                                run(["readelf", "-d", prog]).stdout)
            self.assertIn("libc.so.6", needed)
            where = dict(re.findall(r"(?m)^\s*(\S+) => (/\S+)", run(["ldd", prog]).stdout))
            for soname in needed:
                owner = self.owning_package(where[soname])
                self.assertIn(owner, named, f"{os.path.basename(prog)} needs {soname} "
                              f"from {owner}, not in Depends: {fields['Depends']}")

    @staticmethod
    def owning_package(lib):
        real = os.path.realpath(lib)
        candidates = [lib, real]
        for p in (lib, real):  # merged /usr: dpkg may know it under the other name
            candidates.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
        for c in candidates:
            p = run(["dpkg", "-S", c])
            if p.returncode == 0:
                return p.stdout.split(":")[0]
        raise AssertionError(f"no package owns {lib}")


if __name__ == "__main__":
    unittest.main()
