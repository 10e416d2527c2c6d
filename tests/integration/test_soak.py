"""A short soak (bench/soak/run.py, `make soak`): the example building at the highest poll
rate, every kind of injected fault once with fires before, during and after each. It keeps
the soak working between its long runs and checks here what the long run checks, except
flat memory and descriptors, which a minute cannot tell (docs/performance.md)."""
import importlib.util
import json
import os
import shutil
import tempfile
import unittest

from harness import BUILD, ROOT

_spec = importlib.util.spec_from_file_location(
    "soak_run", os.path.join(ROOT, "bench", "soak", "run.py"))
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)


class ShortSoak(unittest.TestCase):
    def test_every_fault_once_with_fires_between(self):
        out = tempfile.mkdtemp(prefix="firegw-soak-out-")
        passed = False
        try:
            rc = soak.main(["--build", BUILD, "--minutes", "0.3", "--fault-every", "0",
                            "--min-faults", str(len(soak.Soak.FAULTS)), "--pause", "0.2",
                            "--warmup-minutes", "5", "--sample-every", "5", "--out", out,
                            "--quiet"])
            with open(os.path.join(out, "soak-latest.md")) as f:
                report = f.read()
            self.assertEqual(rc, 0, report)
            [raw] = [n for n in os.listdir(out) if n.endswith(".json")]
            with open(os.path.join(out, raw)) as f:
                data = json.load(f)
            self.assertEqual({f["kind"] for f in data["faults"]}, set(soak.Soak.FAULTS), report)
            self.assertGreaterEqual(len(data["fires"]), 2 * len(soak.Soak.FAULTS), report)
            self.assertEqual(data["problems"], [], report)
            passed = True
        finally:
            if passed:
                shutil.rmtree(out, ignore_errors=True)
            else:
                print(f"the soak's report and the processes' logs are kept in {out}")


if __name__ == "__main__":
    unittest.main()
