"""Timing of optimize_noise: cold (fresh cache, each in a fresh process) and cached.

    .venv/bin/python benchmarks/search_speed.py

Cases: the L2 DP-SGD default optimize_noise(1.0, 1e-5, 1000, 0.01) and a scalar query (steps=1, q=1).
"cold, empty cache" includes building the screening table of the LMO grid (done once per library version);
"cold" reuses that table but no search result; "cached" is a repeated call in the same process.
Import and numba start-up are not counted. Writes benchmarks/results/search_speed.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "l2_default": "optimize_noise(1.0, 1e-5, 1000, 0.01)",
    "scalar_single_step": "optimize_noise(1.0, 1e-5, 1, 1.0, geometry=Scalar(1.0))",
}
_TIMER = """
import json, time, warnings
warnings.simplefilter("ignore")
from lmodp_core import Scalar
from lmodp_core.search import optimize_noise
optimize_noise(1.0, 1e-5, 10, 1.0, families=("gaussian",), cache=False)  # numba / import warm-up
started = time.perf_counter()
result = {call}
cold = time.perf_counter() - started
cached = []
for _ in range(20):
    started = time.perf_counter()
    {call}
    cached.append(time.perf_counter() - started)
print(json.dumps({{"cold_s": cold, "cached_s": sorted(cached)[len(cached) // 2], "family": result.family,
                  "ratio_to_gaussian": result.ratio_to_gaussian, "epsilon": result.epsilon}}))
"""


def _time_in_fresh_process(call: str, cache_dir: str) -> dict:
    env = {**os.environ, "LMODP_CACHE_DIR": cache_dir}
    done = subprocess.run(
        [sys.executable, "-c", _TIMER.format(call=call)], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    results = {}
    for name, call in CASES.items():
        with tempfile.TemporaryDirectory() as cache_dir:
            empty = _time_in_fresh_process(call, cache_dir)
            for path in Path(cache_dir).glob("search-*.json"):
                path.unlink()  # keep only the grid table
            cold = _time_in_fresh_process(call, cache_dir)
        results[name] = {
            "call": call,
            "cold_empty_cache_s": round(empty["cold_s"], 3),
            "cold_s": round(cold["cold_s"], 3),
            "cached_s": round(cold["cached_s"], 5),
            "family": cold["family"],
            "ratio_to_gaussian": cold["ratio_to_gaussian"],
            "epsilon": cold["epsilon"],
        }
        print(
            f"{name:20s} cold (empty cache) {empty['cold_s']:6.2f} s   cold {cold['cold_s']:6.2f} s   "
            f"cached {cold['cached_s'] * 1e3:6.2f} ms   -> {cold['family']} "
            f"({cold['ratio_to_gaussian']:.3f}x gaussian)"
        )
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "note": "2 shared cores; other jobs may have been running",
    }
    (ROOT / "benchmarks" / "results" / "search_speed.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
