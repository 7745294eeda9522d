"""Warm time of ``step_rdp`` for LMO noise, L2 geometry, 100 orders, Poisson q = 0.01 (target < 0.5 s).

Compared side by side with the same call for Gaussian noise (closed-form sampled-Gaussian RDP) and with
Opacus's sampled-Gaussian RDP when Opacus is installed. Writes benchmarks/results/step_rdp_speed.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from lmodp_core import LMO, Gaussian, L2Ball, Poisson
from lmodp_core.rdp import step_rdp
from lmodp_core.rdp.step import _step_rdp_cached

ORDERS = np.linspace(1.5, 256.0, 100)
PAPER_03 = LMO(0.1, 0.1, 0.1, 1.0, 0.5, 5.0, 1.0, 2.0)


def _warm_seconds(call, repeats: int = 5) -> float:
    call()  # compile / warm caches of the numerics (not of the result)
    best = np.inf
    for _ in range(repeats):
        _step_rdp_cached.cache_clear()
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rows = []
    for label, noise in [("lmo (paper 0.3 set)", PAPER_03.scaled(20.0)), ("gaussian", Gaussian(1.0))]:
        seconds = _warm_seconds(lambda: step_rdp(noise, L2Ball(1.0), Poisson(0.01), ORDERS))
        rows.append({"noise": label, "seconds": seconds})
    try:
        from opacus.accountants.analysis.rdp import compute_rdp

        seconds = _warm_seconds(lambda: compute_rdp(q=0.01, noise_multiplier=1.0, steps=1, orders=list(ORDERS)))
        rows.append({"noise": "gaussian (opacus compute_rdp)", "seconds": seconds})
    except ImportError:
        pass
    print(f"{'step_rdp: 100 orders, L2Ball(1), Poisson(0.01)':<48}{'warm s':>10}{'vs gaussian':>14}")
    for row in rows:
        print(f"{row['noise']:<48}{row['seconds']:>10.4f}{row['seconds'] / rows[1]['seconds']:>14.1f}")
    out = Path(__file__).parent / "results" / "step_rdp_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"orders": len(ORDERS), "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
