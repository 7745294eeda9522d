"""Certified vs numerical sup over shifts: unsampled Scalar step of the published LMO sets, default orders.

For each set (at scale 1 and 5, sensitivity 1) the certified branch and bound (``lmodp_core.rdp.certified_sup``)
and the former numerical grid sup (43 shifts, refinement, 1e-6 margin) are timed alternately on the same
machine (best of 3, warm) and their values compared. Writes benchmarks/results/certified_sup.json.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from lmodp_core import Scalar
from lmodp_core.auditing import published_noise, published_parameters
from lmodp_core.rdp import DEFAULT_ORDERS, step_rdp
from lmodp_core.rdp import _step_rdp_cached
from lmodp_core.rdp.divergence import renyi_shift
from lmodp_core.rdp.per_step import SUP_MARGIN, sup_over_shifts


def _numerical(noise) -> np.ndarray:
    return sup_over_shifts(lambda s: renyi_shift(noise, s, DEFAULT_ORDERS), 1.0, DEFAULT_ORDERS) * (1 + SUP_MARGIN)


def _certified(noise) -> np.ndarray:
    _step_rdp_cached.cache_clear()
    return step_rdp(noise, Scalar(1.0))


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
        for scale in (1.0, 5.0):
            noise = published_noise(entry["label"]).scaled(scale)
            certified, numerical = _certified(noise), _numerical(noise)
            t_certified, t_numerical = _best_seconds([lambda: _certified(noise), lambda: _numerical(noise)])
            change = certified / numerical - 1.0
            rows.append({"set": entry["label"], "scale": scale, "certified_s": t_certified,
                         "numerical_s": t_numerical, "min_relative_change": float(change.min()),
                         "max_relative_change": float(change.max())})
            print(f"LMO {entry['label']:>4} x{scale:<4} certified {t_certified:7.3f} s  numerical {t_numerical:7.3f} s"
                  f"  ratio {t_certified / t_numerical:5.2f}  change {change.min():+.1e} .. {change.max():+.1e}",
                  flush=True)
    out = Path(__file__).parent / "results" / "certified_sup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"orders": len(DEFAULT_ORDERS), "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
