"""Calibration: the smallest noise scale that meets a privacy target (DESIGN §4.6).

Every noise family is a scale family (``noise.scaled(c)``), so calibration is a 1-D search on log c:
bracket by doubling/halving, then bisect until the bracket is within ``rtol``. The returned noise is always the
upper end of the bracket, whose epsilon has been evaluated and is <= the target: calibration never returns a
noise that misses the target, even if epsilon were not monotone in the scale.
"""
from __future__ import annotations

import math

from ._validation import check_delta, check_epsilon, check_positive, check_steps
from .accountant import Accountant
from .geometry import Geometry
from .noise import Noise

_MAX_BRACKET_STEPS = 200  # 2^200: far beyond any usable scale


def _epsilon_at(noise: Noise, geometry: Geometry, sampling, steps: int, delta: float, method: str) -> float:
    return Accountant(noise, geometry, sampling, method=method).step(steps).epsilon(delta)


def calibrate(noise: Noise, geometry: Geometry, sampling, steps: int, *, epsilon: float, delta: float,
              method: str = "auto", rtol: float = 1e-3) -> Noise:
    """``noise.scaled(c)`` with c within a factor (1 + rtol) of the smallest scale whose sound epsilon at
    ``delta`` after ``steps`` steps is <= ``epsilon``.
    """
    target = check_epsilon(epsilon)
    delta = check_delta(delta)
    steps = check_steps(steps)
    rtol = check_positive("rtol", rtol)

    def meets(factor: float) -> bool:
        return _epsilon_at(noise.scaled(factor), geometry, sampling, steps, delta, method) <= target

    low, high = 1.0, 1.0
    if meets(1.0):
        for _ in range(_MAX_BRACKET_STEPS):
            low /= 2.0
            if not meets(low):
                break
            high = low
        else:
            raise ValueError(f"epsilon={target} is met by every scale tried down to {low:g}x: check the inputs")
    else:
        for _ in range(_MAX_BRACKET_STEPS):
            high *= 2.0
            if meets(high):
                break
            low = high
        else:
            raise ValueError(f"epsilon={target} could not be met by scaling the noise up to {high:g}x")
    while high / low - 1.0 > rtol:
        mid = math.sqrt(low * high)
        if meets(mid):
            high = mid
        else:
            low = mid
    return noise.scaled(high)
