"""Timing of optimize_noise: cold (fresh cache, each in a fresh process) and cached.

    .venv/bin/python benchmarks/search_speed.py

Cases: the L2 DP-SGD default optimize_noise(1.0, 1e-5, 1000, 0.01) and a scalar query (steps=1, q=1).
"cold, empty cache" includes building the screening table of the LMO grid (done once per library version);
"cold" reuses that table but no search result; "cached" is a repeated call in the same process.
Subsampled cells (scalar and L1 geometry, q = 0.01, T in {1, 10, 100, 1000}, epsilon 1, every family): cold
only, against the target of a cold search under 10 s.
Import and numba start-up are not counted. Writes benchmarks/results/search_speed.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "l2_default": "optimize_noise(1.0, 1e-5, 1000, 0.01)",
    "scalar_single_step": "optimize_noise(1.0, 1e-5, 1, 1.0, geometry=Scalar(1.0))",
}
SUBSAMPLED_CELLS = {
    f"{name}_T{steps}": f"optimize_noise(1.0, 1e-5, {steps}, 0.01, geometry={geometry}(1.0))"
    for name, geometry in (("scalar", "Scalar"), ("l1", "L1Ball"))
    for steps in (1, 10, 100, 1000)
}
TARGET_S = 10.0
_TIMER = """
import json, time, warnings
warnings.simplefilter("ignore")
from lmodp_core import L1Ball, Scalar
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


def _cold(call: str, cache_dir: str) -> dict:
    """A fresh process with the grid table cached but no search result."""
    for path in Path(cache_dir).glob("search-*.json"):
        path.unlink()
    return _time_in_fresh_process(call, cache_dir)


def main() -> None:
    with tempfile.TemporaryDirectory() as table_dir:
        results = _cases(table_dir)
        results["subsampled_cells"] = _subsampled_cells(table_dir)
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "note": "2 shared cores; other jobs may have been running",
    }
    (ROOT / "benchmarks" / "results" / "search_speed.json").write_text(json.dumps(results, indent=1))


def _cases(table_dir: str) -> dict:
    """The CASES, each from an empty cache and then cold; the grid table they build is kept in ``table_dir``."""
    results = {}
    for name, call in CASES.items():
        with tempfile.TemporaryDirectory() as cache_dir:
            empty = _time_in_fresh_process(call, cache_dir)
            cold = _cold(call, cache_dir)
            for table in Path(cache_dir).glob("lmo-grid-*.npy"):
                shutil.copy(table, table_dir)
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
    return results


def _subsampled_cells(table_dir: str) -> dict:
    """The SUBSAMPLED_CELLS, cold (the grid table cached in ``table_dir``)."""
    cells = {}
    for name, call in SUBSAMPLED_CELLS.items():
        cold = _cold(call, table_dir)
        cells[name] = {
            "call": call,
            "cold_s": round(cold["cold_s"], 3),
            "family": cold["family"],
            "ratio_to_gaussian": cold["ratio_to_gaussian"],
            "under_target": cold["cold_s"] < TARGET_S,
        }
        print(
            f"{name:20s} cold {cold['cold_s']:7.2f} s (target < {TARGET_S:g} s: "
            f"{'met' if cold['cold_s'] < TARGET_S else 'missed'})   -> {cold['family']} "
            f"({cold['ratio_to_gaussian']:.3f}x gaussian)",
            flush=True,
        )
    return cells


if __name__ == "__main__":
    main()
