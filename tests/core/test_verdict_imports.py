"""The verdict modules import neither scipy.stats nor statsmodels (each costs a report
about a second), nor torch or pandas: `harness report` on 10,000 runs stays fast."""
import subprocess
import sys

MODULES = ["harness.tost", "harness.multiplicity", "harness.seedplan", "harness.reproduction", "harness.simulation",
           "harness.sequential", "harness.comparisons", "harness.claims", "harness.aggregates"]


def test_verdict_modules_import_no_slow_library():
    code = (f"import sys; import {', '.join(MODULES)}; "
            "print(sorted(m for m in ('scipy.stats', 'statsmodels', 'torch', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
