#!/usr/bin/python3
"""Runs every firegw test and prints one summary line: "N passed, N failed".

Unit tests are the cmocka programs built into BUILD/tests/ (and the same under
ASan+UBSan in SAN_BUILD/tests/); integration tests are tests/integration/test_*.py,
run against the sanitizer build when there is one, else the normal build. With
--fuzz-build, the libFuzzer targets there replay fuzz/regressions/ and fuzz briefly
(fuzz/runner.py, docs/robustness.md).
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT_TIMEOUT_S = 300
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
    "LSAN_OPTIONS": "exitcode=88",
}


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def ok(self, n=1):
        self.passed += n

    def fail(self, name, n=1):
        self.failed += n
        self.failures.append(name)


def run_unit(build, tally, label, payload_dir, runner=()):
    tests_dir = os.path.join(ROOT, build, "tests")
    if not os.path.isdir(tests_dir):
        tally.fail(f"{label}: no unit tests built in {tests_dir}")
        return
    bins = sorted(f for f in os.listdir(tests_dir) if f.startswith("test_"))
    env = dict(os.environ, **SAN_ENV)
    env["FIREGW_PAYLOAD_OUT"] = payload_dir
    for name in bins:
        path = os.path.join(tests_dir, name)
        start = time.monotonic()
        try:
            proc = subprocess.run([*runner, path], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=UNIT_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
            out = proc.stdout.decode(errors="replace")
            rc = proc.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") + "\nTIMEOUT\n"
            rc = -1
        passed = sum(int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", out))
        failed = sum(int(n) for n in re.findall(r"\[  FAILED  \] (\d+) test", out))
        took = time.monotonic() - start
        if rc == 0 and failed == 0 and passed > 0:
            tally.ok(passed)
            print(f"ok   {label} {name}: {passed} passed ({took:.1f}s)")
        else:
            tally.ok(passed)
            tally.fail(f"{label} {name}", max(failed, 1))
            print(f"FAIL {label} {name} (exit {rc}, {took:.1f}s)\n{out}")


def run_schemas(payload_dir, tally):
    files = [f for f in os.listdir(payload_dir) if f.endswith(".json")]
    if not files:
        tally.fail("schemas: the payload test wrote no payloads to validate")
        return
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "check_schemas.py"),
                           payload_dir], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120)
    out = proc.stdout.decode(errors="replace")
    if proc.returncode == 0:
        tally.ok()
        print(f"ok   schemas: {len(files)} payloads valid against docs/schema")
    else:
        tally.fail("schemas")
        print(f"FAIL schemas\n{out}")


LINT = [
    ("cppcheck", ["cppcheck", "--quiet", "--error-exitcode=1",
                  "--enable=warning,performance,portability", "--inline-suppr",
                  "-D_GNU_SOURCE", "-Igateway", "gateway", "sensors/sim"]),
    ("clang-format", ["sh", "-c", "clang-format --dry-run --Werror gateway/*.[ch] "
                      "sensors/sim/*.[ch] tests/unit/*.c fuzz/*.[ch]"]),
]


def run_lint(tally):
    for name, argv in LINT:
        proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=600, stdin=subprocess.DEVNULL)
        if proc.returncode == 0:
            tally.ok()
            print(f"ok   lint {name}")
        else:
            tally.fail(f"lint {name}")
            print(f"FAIL lint {name}\n{proc.stdout.decode(errors='replace')[-4000:]}")


def run_fuzz(build, tally, seconds):
    """Replay fuzz/regressions/ and fuzz every target briefly (fuzz/runner.py)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("fuzz_runner",
                                                  os.path.join(ROOT, "fuzz", "runner.py"))
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    runner.run(os.path.join(ROOT, build), tally, seconds,
               seed=int(os.environ.get("FIREGW_FUZZ_SEED", "1")))


def run_browser(build, tally):
    """The web UI in Chromium against a real gateway (tests/browser/stage.py)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("browser_stage",
                                                  os.path.join(ROOT, "tests", "browser", "stage.py"))
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    os.environ.update(SAN_ENV)
    for name, ok, detail in stage.run(os.path.join(ROOT, build)):
        if ok:
            tally.ok()
            print(f"ok   browser: {name}")
        else:
            tally.fail(f"browser: {name}")
            print(f"FAIL browser: {name}\n{detail}")


class CountingResult(unittest.TextTestResult):
    pass


def run_integration(build, tally, pattern):
    os.environ["FIREGW_BUILD"] = os.path.join(ROOT, build)
    os.environ.update(SAN_ENV)
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    loader = unittest.TestLoader()
    suite = loader.discover(os.path.join(ROOT, "tests", "integration"), pattern=pattern,
                            top_level_dir=os.path.join(ROOT, "tests", "integration"))
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=CountingResult)
    result = runner.run(suite)
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    good = result.testsRun - bad - len(result.skipped)
    tally.ok(good)
    for test, _ in result.failures + result.errors:
        tally.fail(f"integration {test.id()}")
    for test, why in result.skipped:
        print(f"skipped {test.id()}: {why}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--san-build", default=None)
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("--integration-only", action="store_true")
    ap.add_argument("--pattern", default="test_*.py", help="integration test files")
    ap.add_argument("--exec", default="",
                    help="command that runs each unit test program of --build, e.g. "
                    "\"qemu-aarch64 -L /usr/aarch64-linux-gnu\" for a cross build")
    ap.add_argument("--no-lint", action="store_true", help="skip cppcheck and clang-format")
    ap.add_argument("--fuzz-build", default=None,
                    help="where the libFuzzer targets are: replay fuzz/regressions/, then fuzz "
                    "each target for --fuzz-seconds")
    ap.add_argument("--fuzz-seconds", type=int, default=20)
    ap.add_argument("--no-browser", action="store_true", help="skip the web UI's browser tests")
    ap.add_argument("--browser-only", action="store_true", help="run only the browser tests")
    args = ap.parse_args()

    tally = Tally()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="firegw-payloads-") as payload_dir:
        if not args.integration_only and not args.browser_only:
            run_unit(args.build, tally, f"unit ({args.exec})" if args.exec else "unit",
                     payload_dir, shlex.split(args.exec))
            if args.san_build:
                run_unit(args.san_build, tally, "unit+asan+ubsan", payload_dir)
            run_schemas(payload_dir, tally)
            if not args.no_lint:
                run_lint(tally)
            if args.fuzz_build:
                run_fuzz(args.fuzz_build, tally, args.fuzz_seconds)
    if not args.unit_only and not args.browser_only:
        run_integration(args.san_build or args.build, tally, args.pattern)
    # Only with the whole integration suite (not for one --pattern file).
    if args.browser_only or not (args.unit_only or args.no_browser or
                                 args.pattern != ap.get_default("pattern")):
        run_browser(args.san_build or args.build, tally)
    took = time.monotonic() - start
    print()
    if tally.failures:
        print("Failed:")
        for f in tally.failures:
            print(f"  {f}")
    print(f"Total time {took:.0f}s")
    print(f"{tally.passed} passed, {tally.failed} failed")
    return 0 if tally.failed == 0 and tally.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
