"""Certified vs numerical sup over shifts: the published LMO sets, default orders.

For each set (at scale 1 and 5, radius 1): the Scalar step, unsampled and Poisson-subsampled (q = 0.01, both
directions), where the certified sup is the value at the sensitivity (r_a is non-decreasing in the shift, a
consequence of the proven dominating pair), and the unsampled ``L1Ball`` step, certified by brackets on shift
intervals (``lmodp_core.rdp.certified_sup.monotone_l1_sup``). Each is timed against the numerical grid sup
(43 shifts, refinement, 1e-6 margin) alternately on the same machine (best of 3, warm), and their values are
compared. Writes benchmarks/results/certified_sup.json.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from pathlib import Path

import numpy as np

from lmodp_core import L1Ball, Scalar
from lmodp_core.auditing import published_noise, published_parameters
from lmodp_core.rdp import (
    DEFAULT_ORDERS,
    per_step,
    renyi_poisson_mixture,
    renyi_shift,
    scalar_subsampled_rdp,
    unsampled_rdp,
)
from lmodp_core.rdp.per_step import SUP_MARGIN, sup_over_shifts

RATE = 0.01
CASES = ("scalar", "scalar_sampled", "l1")


def _numerical(noise, case: str) -> np.ndarray:
    if case == "scalar":

        def value_at(shifts):
            return renyi_shift(noise, shifts, DEFAULT_ORDERS)
    elif case == "scalar_sampled":

        def value_at(shifts):
            return np.array([np.maximum(*renyi_poisson_mixture(noise, s, RATE, DEFAULT_ORDERS)) for s in shifts])
    else:

        def value_at(shifts):
            return renyi_shift(noise, shifts, DEFAULT_ORDERS) / shifts[:, None]

    return sup_over_shifts(value_at, 1.0, DEFAULT_ORDERS) * (1 + SUP_MARGIN)


def _certified(noise, case: str) -> np.ndarray:
    per_step._shift_memo.cache_clear()  # time one cold call (the L1 sup memoises shifts per shape)
    if case == "scalar":
        return unsampled_rdp(noise, Scalar(1.0), DEFAULT_ORDERS)
    if case == "scalar_sampled":
        return scalar_subsampled_rdp(noise, 1.0, RATE, DEFAULT_ORDERS)
    return unsampled_rdp(noise, L1Ball(1.0), DEFAULT_ORDERS)


def _best_seconds(calls, repeats: int = 3) -> list[float]:
    best = [np.inf] * len(calls)
    for _ in range(repeats):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            call()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    rows = []
    for entry in published_parameters()["sets"]:
        for scale, case in itertools.product((1.0, 5.0), CASES):
            noise = published_noise(entry["label"]).scaled(scale)
            certified, numerical = _certified(noise, case), _numerical(noise, case)
            t_certified, t_numerical = _best_seconds(
                [functools.partial(_certified, noise, case), functools.partial(_numerical, noise, case)]
            )
            with np.errstate(invalid="ignore"):
                change = certified / numerical - 1.0
            resolved = np.isfinite(numerical)
            rows.append(
                {
                    "set": entry["label"],
                    "scale": scale,
                    "case": case,
                    "certified_s": t_certified,
                    "numerical_s": t_numerical,
                    "min_relative_change": float(change[resolved].min()),
                    "max_relative_change": float(change[resolved].max()),
                    "orders_finite_only_when_certified": int(np.sum(~resolved & np.isfinite(certified))),
                }
            )
            print(
                f"LMO {entry['label']:>4} x{scale:<4} {case:<15} certified {t_certified:7.3f} s  numerical "
                f"{t_numerical:7.3f} s  ratio {t_certified / t_numerical:5.2f}  change "
                f"{rows[-1]['min_relative_change']:+.1e} .. {rows[-1]['max_relative_change']:+.1e}",
                flush=True,
            )
    out = Path(__file__).parent / "results" / "certified_sup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"orders": len(DEFAULT_ORDERS), "sample_rate": RATE, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
