"""Calibration: the smallest noise scale that meets a privacy target (DESIGN §4.6).

Every noise family is a scale family (``noise.scaled(c)``), so calibration is a 1-D search on x = log c for
the root of r(x) = log(epsilon(c) / target), which is smooth and close to linear (epsilon ~ 1/c for the
Gaussian). A safeguarded secant search keeps a bracket [low: misses the target, high: meets it]: Newton/secant
steps (slope clamped, step at most a factor 20) until the root is bracketed, then probes placed just either
side of the predicted root (inverse quadratic through the three latest points, else secant, else regula falsi),
so that two evaluations usually close the bracket to ``rtol``; bisection whenever no probe lies inside. About 5
evaluations instead of ~15 for doubling + bisection.
The returned noise is always the upper end of the bracket, whose epsilon has been evaluated and is <= the
target: calibration never returns a noise that misses the target, even if epsilon were not monotone.
"""
from __future__ import annotations

import math

from ._validation import check_delta, check_epsilon, check_positive, check_steps
from .accountant import Accountant
from .geometry import Geometry
from .noise import Noise
from .rdp.per_step import unbounded_l2_reason

_MAX_EVALUATIONS = 400  # bracketing steps are capped at a factor 20, so this reaches scales 20^+-300
_MAX_LOG_STEP = 3.0
_SLOPE_RANGE = (-8.0, -0.05)  # d log(epsilon) / d log(scale)
_FIRST_SLOPE = -1.5  # -1 for a Gaussian at large sigma, steeper where sampling amplification fades


def _epsilon_at(noise: Noise, geometry: Geometry, sampling, steps: int, delta: float, method: str) -> float:
    return Accountant(noise, geometry, sampling, method=method).step(steps).epsilon(delta)


def _secant_root(a: tuple[float, float], b: tuple[float, float]) -> float:
    """x where the line through (x, r) points a and b crosses r = 0 (nan when it cannot)."""
    (xa, ra), (xb, rb) = a, b
    if not (math.isfinite(ra) and math.isfinite(rb)) or ra == rb:
        return math.nan
    return xa - ra * (xb - xa) / (rb - ra)


def _inverse_quadratic_root(points) -> float:
    """x at r = 0 of the quadratic x(r) through three (x, r) points (Brent's inverse interpolation)."""
    (x0, r0), (x1, r1), (x2, r2) = points
    if not all(math.isfinite(r) for r in (r0, r1, r2)) or len({r0, r1, r2}) < 3:
        return math.nan
    return (x0 * r1 * r2 / ((r0 - r1) * (r0 - r2)) + x1 * r0 * r2 / ((r1 - r0) * (r1 - r2))
            + x2 * r0 * r1 / ((r2 - r0) * (r2 - r1)))


def _next_point(low, high, history, width: float) -> float:
    last = history[-1]
    previous = history[-2] if len(history) > 1 else None
    x, r = last
    if low is None or high is None:  # not bracketed yet: a Newton step on the clamped secant slope
        if not math.isfinite(r):
            return x + (_MAX_LOG_STEP if r > 0 else -_MAX_LOG_STEP)
        slope = _FIRST_SLOPE
        if previous is not None and math.isfinite(previous[1]) and previous[0] != x:
            slope = (r - previous[1]) / (x - previous[0])
        slope = min(max(slope, _SLOPE_RANGE[0]), _SLOPE_RANGE[1])
        step = -r / slope
        step = math.copysign(min(max(abs(step) * 1.02, width), _MAX_LOG_STEP), step)
        return x + step
    candidates = (  # inverse quadratic through the latest three points, secant through two, regula falsi
        _inverse_quadratic_root(history[-3:]) if len(history) > 2 else math.nan,
        _secant_root(last, previous) if previous is not None else math.nan,
        _secant_root(low, high),
    )
    for root in candidates:
        if not low[0] < root < high[0]:
            continue
        probe = root + (0.45 * width if high[0] - root > root - low[0] else -0.45 * width)
        if low[0] + 0.05 * width < probe < high[0] - 0.05 * width:
            return probe
    return 0.5 * (low[0] + high[0])


def calibrate(noise: Noise, geometry: Geometry, sampling, steps: int, *, epsilon: float, delta: float,
              method: str = "auto", rtol: float = 1e-3) -> Noise:
    """``noise.scaled(c)`` with c within a factor (1 + rtol) of the smallest scale whose sound epsilon at
    ``delta`` after ``steps`` steps is <= ``epsilon``.
    """
    target = check_epsilon(epsilon)
    delta = check_delta(delta)
    steps = check_steps(steps)
    rtol = check_positive("rtol", rtol)
    reason = unbounded_l2_reason(noise, geometry)
    if reason:
        raise ValueError(f"cannot calibrate {noise!r} under {geometry!r}: {reason}")

    def log_excess(log_factor: float) -> float:
        value = _epsilon_at(noise.scaled(math.exp(log_factor)), geometry, sampling, steps, delta, method)
        return math.log(value / target) if value > 0 else -math.inf

    width = math.log1p(rtol)
    low = high = None  # (log factor, log excess); low misses the target, high meets it
    history = [(0.0, log_excess(0.0))]
    for _ in range(_MAX_EVALUATIONS):
        last = history[-1]
        x, r = last
        if r <= 0 and (high is None or x < high[0]):
            high = last
        elif r > 0 and (low is None or x > low[0]):
            low = last
        if low is not None and high is not None and high[0] - low[0] <= width:
            return noise.scaled(math.exp(high[0]))
        x_next = _next_point(low, high, history, width)
        history.append((x_next, log_excess(x_next)))
    side = "met by every scale tried down to" if low is None else "not met by any scale up to"
    raise ValueError(f"epsilon={target} is {side} {math.exp(history[-1][0]):g}x the given noise: check the inputs")
