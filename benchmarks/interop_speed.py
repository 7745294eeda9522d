"""LmodpAccountant against dp_accounting's PLD accountant on the DP-SGD event, through dp_accounting's own API.

    .venv/bin/python benchmarks/interop_speed.py

The event is ``SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(sigma)), T)``; each accountant is
created fresh, composes it and answers ``get_epsilon(delta)``:
  lmodp        lmodp_core.interop.LmodpAccountant (lmodp's PLD upper bound)
  dpa_pld      dp_accounting PLDAccountant, default value_discretization_interval 1e-4
  dpa_pld_fine the same with interval 1e-5 (the reference for the agreement column)
It also times ``mechanism_calibration.calibrate_dp_mechanism`` (target epsilon 2, delta 1e-5, tol 1e-4) driven by
each accountant for the first setting. Times: median of REPEATS fresh runs for lmodp (sigma perturbed by 1e-12
per run so no cache answers, after one warm-up that compiles the numba kernels), one run for dp_accounting.
Writes benchmarks/results/interop_speed.json and prints an aligned table.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import dp_accounting
from dp_accounting import mechanism_calibration
from dp_accounting.pld import pld_privacy_accountant

from lmodp_core import Accountant, Gaussian, L2Ball, Poisson
from lmodp_core.interop import LmodpAccountant

ROOT = Path(__file__).resolve().parents[1]
DELTA = 1e-5
SETTINGS = [(2.0, 0.1, 100), (1.0, 0.01, 1000), (0.8, 256 / 60000, 2344), (0.6, 0.02, 500)]
REPEATS = 3
CALIBRATION = dict(target_epsilon=2.0, target_delta=DELTA, tol=1e-4)


def dpsgd_event(sigma, q, steps):
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )


def dpa_accountant(interval):
    return lambda: pld_privacy_accountant.PLDAccountant(value_discretization_interval=interval)


def dpa_epsilon(interval, sigma, q, steps):
    return dpa_accountant(interval)().compose(dpsgd_event(sigma, q, steps)).get_epsilon(DELTA)


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def lmodp_epsilon(sigma, q, steps):
    runs = [
        timed(lambda r=r: LmodpAccountant().compose(dpsgd_event(sigma * (1 + 1e-12 * r), q, steps)).get_epsilon(DELTA))
        for r in range(1, REPEATS + 1)
    ]
    return runs[0][0], statistics.median(seconds for _, seconds in runs)


def calibration_row(sigma, q, steps):
    row = {}
    for name, make in (("lmodp", LmodpAccountant), ("dpa_pld", dpa_accountant(1e-4))):
        found, seconds = timed(
            lambda make=make: mechanism_calibration.calibrate_dp_mechanism(
                make, lambda s: dpsgd_event(s, q, steps), **CALIBRATION
            )
        )
        certified = Accountant(Gaussian(found), L2Ball(1.0), Poisson(q)).step(steps).get_epsilon(DELTA)
        row[name] = {"sigma": found, "seconds": seconds, "lmodp_epsilon_of_sigma": certified}
    return {"sample_rate": q, "steps": steps, **CALIBRATION, "accountants": row}


def main():
    LmodpAccountant().compose(dpsgd_event(1.5, 0.05, 10)).get_epsilon(DELTA)  # warm-up: numba compilation
    rows = []
    for sigma, q, steps in SETTINGS:
        ours, ours_seconds = lmodp_epsilon(sigma, q, steps)
        default, default_seconds = timed(partial(dpa_epsilon, 1e-4, sigma, q, steps))
        fine, fine_seconds = timed(partial(dpa_epsilon, 1e-5, sigma, q, steps))
        rows.append(
            {
                "sigma": sigma,
                "sample_rate": q,
                "steps": steps,
                "delta": DELTA,
                "lmodp": {"epsilon": ours, "seconds": ours_seconds, "relative_to_fine": ours / fine - 1.0},
                "dpa_pld": {
                    "epsilon": default,
                    "seconds": default_seconds,
                    "relative_to_fine": default / fine - 1.0,
                    "time_ratio_to_lmodp": default_seconds / ours_seconds,
                },
                "dpa_pld_fine": {
                    "epsilon": fine,
                    "seconds": fine_seconds,
                    "time_ratio_to_lmodp": fine_seconds / ours_seconds,
                },
            }
        )
    calibration = calibration_row(*SETTINGS[0])
    result = {
        "description": __doc__.strip().splitlines()[0],
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "repeats": REPEATS,
        "rows": rows,
        "calibration": calibration,
    }
    out = ROOT / "benchmarks" / "results" / "interop_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'sigma':>6} {'q':>9} {'T':>6} | {'lmodp eps':>10} {'s':>7} {'vs fine':>9} | {'dpa eps':>10} {'s':>7} "
        f"{'x lmodp':>8} | {'fine eps':>10} {'s':>7} {'x lmodp':>8}"
    )
    for row in rows:
        ours, default, fine = row["lmodp"], row["dpa_pld"], row["dpa_pld_fine"]
        print(
            f"{row['sigma']:>6} {row['sample_rate']:>9.5g} {row['steps']:>6} | {ours['epsilon']:>10.5f} "
            f"{ours['seconds']:>7.3f} {ours['relative_to_fine']:>+9.2e} | {default['epsilon']:>10.5f} "
            f"{default['seconds']:>7.3f} {default['time_ratio_to_lmodp']:>8.1f} | {fine['epsilon']:>10.5f} "
            f"{fine['seconds']:>7.3f} {fine['time_ratio_to_lmodp']:>8.1f}"
        )
    for name, entry in calibration["accountants"].items():
        print(
            f"calibrate_dp_mechanism with {name:>7}: sigma {entry['sigma']:.6f} in {entry['seconds']:.2f} s "
            f"(lmodp epsilon of that sigma {entry['lmodp_epsilon_of_sigma']:.6f}, target 2)"
        )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
