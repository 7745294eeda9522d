"""Tightness of the sound epsilon for vector geometry with non-Gaussian noise, against the best lower bound.

For Laplace and LMO noise under ``L1Ball(1)`` and ``L2Ball(1)`` (no dominating shift known except Laplace under
L1), Poisson rate q in {1, 0.01}, T in {1, 10, 100, 1000}, delta 1e-5, it reports side by side, in one run:
- ``rdp``: the RDP answer (the only one before 0.6.0);
- ``profile_pld``: PLD through the profile pair built from the unsampled step's RDP curve (``pld.profile``);
- ``sound``: what the accountant reports (``method="auto"``: the smaller);
- ``lower``: the best lower bound on the true epsilon, the larger of the Scalar-geometry value (one coordinate
  carries the whole clip: a shift of every ball) and, for L2, the d -> inf limit ``asymptotic_epsilon``.
The ratios sound / lower and rdp / lower are printed as a table and saved to
``benchmarks/results/vector_tightness.json``.

    .venv/bin/python benchmarks/vector_tightness.py
"""

from __future__ import annotations

import itertools
import json
import platform
import statistics
import time
from pathlib import Path

from lmodp_core import LMO, Accountant, L1Ball, L2Ball, Laplace, Poisson, Scalar, __version__, asymptotic_epsilon

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "vector_tightness.json"
DELTA = 1e-5
PAPER_03 = dict(a1=0.1, a3=0.1, a4=0.1, gamma_shape=1.0, gamma_scale=0.5, exp_rate=5.0, unif_low=1.0, unif_high=2.0)
NOISES = {
    "laplace(0.7)": Laplace(0.7),
    "laplace(2)": Laplace(2.0),
    "laplace(5)": Laplace(5.0),
    "lmo-0.3(x1)": LMO(**PAPER_03),
    "lmo-0.3(x3)": LMO(**PAPER_03).scaled(3.0),
}
GEOMETRIES = {"l1": L1Ball(1.0), "l2": L2Ball(1.0)}
RATES = (1.0, 0.01)
STEPS = (1, 10, 100, 1000)


def measure(name: str, geometry_name: str, rate: float, steps: int) -> dict:
    noise, geometry = NOISES[name], GEOMETRIES[geometry_name]
    start = time.perf_counter()
    report = Accountant(noise, geometry, Poisson(rate)).step(steps).report(DELTA, all_methods=True)
    seconds = time.perf_counter() - start
    scalar = Accountant(noise, Scalar(1.0), Poisson(rate)).step(steps).get_epsilon(DELTA)
    limit = asymptotic_epsilon(noise, rate, steps, DELTA, 1.0) if geometry_name == "l2" else 0.0
    lower = max(scalar, limit)
    return {
        "noise": name,
        "geometry": geometry_name,
        "sample_rate": rate,
        "steps": steps,
        "sound": report.epsilon,
        "method": report.method,
        "profile_pld": report.pld_epsilon,
        "rdp": report.rdp_epsilon,
        "scalar_lower": scalar,
        "limit_lower": limit,
        "lower": lower,
        "ratio": report.epsilon / lower,
        "rdp_ratio": report.rdp_epsilon / lower,
        "seconds": round(seconds, 3),
    }


def _summary(rows: list[dict], geometry: str, few_steps: bool) -> str:
    chosen = [r for r in rows if r["geometry"] == geometry and (r["steps"] <= 10) == few_steps]
    ratios, old = [r["ratio"] for r in chosen], [r["rdp_ratio"] for r in chosen]
    which = "T <= 10" if few_steps else "T >= 100"
    return (
        f"{geometry} {which}: sound/lower {min(ratios):.3f}-{max(ratios):.3f} "
        f"(median {statistics.median(ratios):.3f}); RDP alone {min(old):.3f}-{max(old):.3f} "
        f"(median {statistics.median(old):.3f})"
    )


def main() -> None:
    rows = []
    print(
        f"{'noise':>13} {'geom':>4} {'q':>5} {'T':>5} {'sound':>9} {'method':>6} {'rdp':>9} {'lower':>9} "
        f"{'ratio':>6} {'rdp/lo':>6}"
    )
    for name, geometry, rate, steps in itertools.product(NOISES, GEOMETRIES, RATES, STEPS):
        row = measure(name, geometry, rate, steps)
        rows.append(row)
        print(
            f"{name:>13} {geometry:>4} {rate:>5g} {steps:>5} {row['sound']:>9.4g} {row['method']:>6} "
            f"{row['rdp']:>9.4g} {row['lower']:>9.4g} {row['ratio']:>6.3f} {row['rdp_ratio']:>6.3f}",
            flush=True,
        )
    summary = [_summary(rows, g, few) for g in GEOMETRIES for few in (True, False)]
    print("\n".join(summary))
    RESULTS.write_text(
        json.dumps(
            {
                "version": __version__,
                "machine": platform.processor() or platform.machine(),
                "delta": DELTA,
                "summary": summary,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
