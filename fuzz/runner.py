#!/usr/bin/python3
"""Runs the libFuzzer targets of fuzz/ (docs/robustness.md).

Two jobs, both bounded in time:
- fuzz each target for a while, starting from its seeds in fuzz/corpus/NAME/ and the
  inputs in fuzz/regressions/NAME/; with --keep the new inputs libFuzzer finds are
  added to fuzz/corpus/NAME/ (what `make fuzz` does), else they go to a temporary
  directory (what `make test` does, so a test run never changes the source tree);
- replay every input kept in fuzz/regressions/NAME/, each a crash found and fixed once.

A crash leaves its input in BUILD/artifacts/NAME/ and is reported with the command
that replays it. tests/run.py calls run() for its fuzz stage; `make fuzz` runs this file.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ_DIR = os.path.join(ROOT, "fuzz")
# Every fuzz/fuzz_NAME.c is a target (the Makefile builds the same list).
TARGETS = sorted(os.path.basename(p)[5:-2] for p in glob.glob(os.path.join(FUZZ_DIR, "fuzz_*.c")))
# Longest input per target: a little above what the code under test accepts, so the
# limits themselves are crossed (remote messages: 4096 bytes). Others: DEFAULT_MAX_LEN.
MAX_LEN = {"cfg": 16384, "profile": 8192, "codec": 1024, "remote": 10000, "command": 4096}
DEFAULT_MAX_LEN = 8192
PER_INPUT_TIMEOUT_S = 10
ENV = {"UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
       "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1"}


def binary(build, name):
    return os.path.join(build, f"fuzz_{name}")


def regressions(name):
    d = os.path.join(FUZZ_DIR, "regressions", name)
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if not f.startswith(".") and os.path.isfile(os.path.join(d, f)))


def _env(tmpdir):
    """The targets' environment; their scratch files go under tmpdir, which this script
    removes, so even a target that crashed leaves nothing behind."""
    env = dict(os.environ)
    env.update(ENV)
    env["FIREGW_ROOT"] = ROOT
    env["TMPDIR"] = tmpdir
    return env


def _start(build, name, seconds, seed, keep, scratch):
    """Start one fuzzing run; returns (Popen, log path, artifact dir)."""
    artifacts = os.path.join(build, "artifacts", name)
    os.makedirs(artifacts, exist_ok=True)
    seeds = os.path.join(FUZZ_DIR, "corpus", name)
    if keep:
        corpora = [seeds]
    else:
        work = os.path.join(scratch, name)
        os.makedirs(work, exist_ok=True)
        corpora = [work, seeds]
    reg = os.path.join(FUZZ_DIR, "regressions", name)
    if os.path.isdir(reg):
        corpora.append(reg)
    argv = [binary(build, name), f"-max_total_time={seconds}", f"-max_len={MAX_LEN.get(name, DEFAULT_MAX_LEN)}",
            f"-timeout={PER_INPUT_TIMEOUT_S}", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/"]
    if seed is not None:
        argv.append(f"-seed={seed}")
    d = os.path.join(FUZZ_DIR, "dict", f"{name}.dict")
    if os.path.exists(d):
        argv.append(f"-dict={d}")
    argv += corpora
    log = os.path.join(scratch, f"{name}.log")
    with open(log, "wb") as f:
        proc = subprocess.Popen(argv, cwd=ROOT, env=_env(scratch), stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, log, artifacts, argv


def _summary(out):
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", out)
    cov = re.findall(r"\bcov: (\d+)", out)
    corp = re.findall(r"\bcorp: (\d+)", out)
    parts = []
    if runs:
        parts.append(f"{runs[-1]} runs")
    if cov:
        parts.append(f"coverage {cov[-1]}")
    if corp:
        parts.append(f"corpus {corp[-1]}")
    return ", ".join(parts) or "no statistics"


def fuzz(build, tally, seconds, seed=None, keep=False, jobs=None):
    """Fuzz every target for `seconds`, `jobs` at a time; count each as one pass or failure."""
    jobs = jobs or max(1, min(len(TARGETS), os.cpu_count() or 1))
    scratch = tempfile.mkdtemp(prefix="firegw-fuzz-run-")
    try:
        waiting = list(TARGETS)
        running = []
        while waiting or running:
            while waiting and len(running) < jobs:
                name = waiting.pop(0)
                if not os.access(binary(build, name), os.X_OK):
                    tally.fail(f"fuzz {name}: {binary(build, name)} is not built")
                    print(f"FAIL fuzz {name}: {binary(build, name)} is not built")
                    continue
                start = time.monotonic()
                running.append((name, start) + _start(build, name, seconds, seed, keep, scratch))
            name, start, proc, log, artifacts, argv = running.pop(0)
            try:
                rc = proc.wait(timeout=seconds + 120)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait(10)
            took = time.monotonic() - start
            with open(log, "rb") as f:
                out = f.read().decode(errors="replace")
            if rc == 0:
                tally.ok()
                print(f"ok   fuzz {name}: {_summary(out)} ({took:.0f}s)")
                continue
            tally.fail(f"fuzz {name}")
            found = sorted(os.path.join(artifacts, f) for f in os.listdir(artifacts))
            print(f"FAIL fuzz {name} (exit {rc}, {took:.0f}s)\n" + "\n".join(out.splitlines()[-60:]))
            if found:
                print(f"  inputs kept in {artifacts}/; replay one with: {argv[0]} FILE\n"
                      f"  once fixed, move it to fuzz/regressions/{name}/")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def replay(build, tally):
    """Run every kept regression input once; one pass or failure per target that has any."""
    for name in TARGETS:
        files = regressions(name)
        if not files:
            continue
        start = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix="firegw-fuzz-replay-") as tmpdir:
                p = subprocess.run([binary(build, name), f"-timeout={PER_INPUT_TIMEOUT_S}"] +
                                   files, cwd=ROOT, env=_env(tmpdir), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   timeout=PER_INPUT_TIMEOUT_S * len(files) + 60)
            rc, out = p.returncode, p.stdout.decode(errors="replace")
        except (OSError, subprocess.TimeoutExpired) as e:
            rc, out = -1, str(e)
        took = time.monotonic() - start
        if rc == 0:
            tally.ok()
            print(f"ok   fuzz regressions {name}: {len(files)} inputs replayed ({took:.1f}s)")
        else:
            tally.fail(f"fuzz regressions {name}")
            print(f"FAIL fuzz regressions {name} (exit {rc})\n" + "\n".join(out.splitlines()[-60:]))


def run(build, tally, seconds, seed=None):
    """The test stage: replay the regressions, then a bounded run of every target."""
    replay(build, tally)
    fuzz(build, tally, seconds, seed)


class _Tally:
    def __init__(self):
        self.passed = self.failed = 0

    def ok(self, n=1):
        self.passed += n

    def fail(self, name, n=1):
        self.failed += n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join("build", "fuzz"), help="where fuzz_* are")
    ap.add_argument("--seconds", type=int, default=60, help="fuzzing time per target")
    ap.add_argument("--seed", type=int, default=None, help="libFuzzer seed (default: random)")
    ap.add_argument("--keep", action="store_true",
                    help="add new inputs to fuzz/corpus/NAME/ instead of a temporary directory")
    ap.add_argument("--jobs", type=int, default=None, help="targets fuzzed at once")
    ap.add_argument("--target", action="append", choices=TARGETS, help="only these targets")
    args = ap.parse_args()
    if args.target:
        TARGETS[:] = args.target
    build = os.path.join(ROOT, args.build)
    tally = _Tally()
    replay(build, tally)
    fuzz(build, tally, args.seconds, args.seed, args.keep, args.jobs)
    print(f"{tally.passed} passed, {tally.failed} failed")
    return 0 if tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
