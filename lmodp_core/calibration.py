"""Calibration: the smallest noise scale that meets a privacy target (docs/theory.md §4.6).

Every noise family is a scale family (``noise.scaled(c)``), so calibration is a 1-D search on x = log c for
the root of r(x) = log(epsilon(c) / target), which is smooth and close to linear (epsilon ~ 1/c for the
Gaussian). A safeguarded secant search keeps a bracket [low: misses the target, high: meets it]: Newton/secant
steps (slope clamped, step at most a factor 20) until the root is bracketed, then probes placed just either
side of the predicted root (inverse quadratic through the three latest points, else secant, else regula falsi),
so that two evaluations usually close the bracket to ``rtol``; bisection whenever no probe lies inside. About 5
evaluations instead of ~15 for doubling + bisection.
The returned noise is always the upper end of the bracket, whose epsilon has been evaluated and is <= the
target: calibration never returns a noise that misses the target, even if epsilon were not monotone. It comes back
with the ``EpsilonReport`` that certifies it (``Calibration``), like dp_accounting's ``calibrate_dp_mechanism``
returns the parameter it verified.
Bounded: a target below what RDP can certify at delta is refused up front, the search stops at the noise
families' supported scales, and after ``_MAX_EVALUATIONS`` accountant evaluations (or ``time_limit`` seconds) it
raises a ValueError.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .accountant import METHODS, Accountant, EpsilonReport, _pld_module
from .geometry import Geometry, check_geometry
from .noise import Noise
from .rdp import epsilon_floor
from .rdp.per_step import unbounded_l2_reason
from .sampling import required_sampling
from .validation import check_choice, check_delta, check_epsilon, check_noise, check_positive, check_steps

_MAX_EVALUATIONS = 100  # bracketing steps are capped at a factor 20: from any start this spans the scale range
_MAX_LOG_STEP = 3.0
_SLOPE_RANGE = (-8.0, -0.05)  # d log(epsilon) / d log(scale)
_FIRST_SLOPE = -1.5  # -1 for a Gaussian at large sigma, steeper where sampling amplification fades


def _check_certifiable(
    noise: Noise, geometry: Geometry, sampling, steps: int, target: float, delta: float, method: str
):
    """Refuse a target below what the answering method certifies at any noise scale: the RDP conversion's floor
    where RDP answers alone; where PLD answers through a profile pair, the smaller of that floor and the profile
    pairs' (``pld.profile_epsilon_floor``); a shift pair has no floor."""
    pld = _pld_module()
    accountant = Accountant(noise, geometry, sampling).step()
    use_pld = method != "rdp" and accountant.pld_supported()
    if use_pld and not pld.uses_profile_pairs(accountant.ledger):
        return
    floor = epsilon_floor(delta)
    how = (
        f"even zero Renyi divergence gives epsilon {floor:.6g} "
        "(min over orders a of log(1 - 1/a) - (log delta + log a)/(a - 1))"
    )
    if use_pld:
        profile_floor = pld.profile_epsilon_floor(sampling.sample_rate, steps, delta)
        how += f", and PLD through the RDP profile gives at least {profile_floor:.6g}"
        floor = profile_floor if method == "pld" else min(floor, profile_floor)
    if target <= floor:
        raise ValueError(
            f"epsilon={target:g} is below what this accounting can certify at delta={delta:g} after {steps} steps: "
            f"{how}; ask for epsilon > {floor:.6g} or a larger delta"
        )


@dataclass(frozen=True)
class Calibration:
    """A calibrated noise and the sound epsilon report that certifies it (``report.epsilon`` <= the target).

    ``evaluations`` counts the accountant evaluations the calibration ran.
    """

    noise: Noise
    report: EpsilonReport
    evaluations: int

    @property
    def epsilon(self) -> float:
        """The sound epsilon of ``noise`` at the target delta (``report.epsilon``)."""
        return self.report.epsilon


def _check_time_limit(time_limit) -> float:
    """``time_limit`` in seconds: a number > 0, or math.inf (no limit)."""
    if isinstance(time_limit, (int, float)) and not isinstance(time_limit, bool) and time_limit == math.inf:
        return math.inf
    return check_positive("time_limit", time_limit)


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
    return (
        x0 * r1 * r2 / ((r0 - r1) * (r0 - r2))
        + x1 * r0 * r2 / ((r1 - r0) * (r1 - r2))
        + x2 * r0 * r1 / ((r2 - r0) * (r2 - r1))
    )


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
        # at most a factor e^3 per step; more when epsilon is off by more than e^24 (an extreme start), and a cap
        # doubling after three steps that did not bracket the root (epsilon flat at a floor, or a far root)
        cap = max(_MAX_LOG_STEP * 2.0 ** max(0, len(history) - 3), abs(r) / 8.0)
        step = math.copysign(min(max(abs(step) * 1.02, width), cap), step)
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


def calibrate(
    noise: Noise,
    geometry: Geometry,
    sampling,
    steps: int,
    *,
    target_epsilon: float,
    target_delta: float,
    method: str = "auto",
    rtol: float = 1e-3,
    pld_rtol: float | None = None,
    time_limit: float = math.inf,
) -> Calibration:
    """``Calibration(noise.scaled(c), report, evaluations)`` with c within a factor (1 + rtol) of the smallest scale
    whose sound epsilon at ``target_delta`` after ``steps`` steps is <= ``target_epsilon``, and ``report`` the
    ``EpsilonReport`` of that noise (``report.epsilon`` <= ``target_epsilon``). ``geometry`` (Scalar, L1Ball or
    L2Ball) and ``sampling`` (``Poisson(sample_rate)``; ``Poisson(1.0)`` for no subsampling) are required.

    Raises ValueError when the target is below what the accounting method can certify at ``delta`` (RDP: even
    zero Renyi divergence gives min_a [log(1 - 1/a) - (log delta + log a)/(a - 1)] > 0), when no supported
    scale of the noise meets it, after ``_MAX_EVALUATIONS`` accountant evaluations, or when ``time_limit``
    seconds have passed before the next evaluation. ``pld_rtol``: the PLD discretisation error each evaluation
    aims at (``Accountant(pld_rtol=)``; None: its default). A looser one is cheaper and still sound: the scale found
    is then slightly larger than needed.
    """
    noise = check_noise(noise)
    geometry = check_geometry(geometry)
    sampling = required_sampling(sampling)
    target = check_epsilon(target_epsilon, "target_epsilon")
    delta = check_delta(target_delta, "target_delta")
    steps = check_steps(steps)
    rtol = check_positive("rtol", rtol)
    method = check_choice("method", method, METHODS)
    pld_rtol = None if pld_rtol is None else _pld_module().check_rtol(pld_rtol)
    time_limit = _check_time_limit(time_limit)
    reason = unbounded_l2_reason(noise, geometry)
    if reason:
        raise ValueError(f"cannot calibrate {noise!r} under {geometry!r}: {reason}")
    _check_certifiable(noise, geometry, sampling, steps, target, delta, method)
    deadline = time.monotonic() + time_limit
    reports: dict[float, EpsilonReport] = {}

    def log_excess(log_factor: float) -> float:
        if time.monotonic() > deadline:
            raise ValueError(
                f"calibration reached its time_limit of {time_limit:g} s after {len(reports)} accountant evaluations"
            )
        try:
            scaled = noise.scaled(math.exp(log_factor))
        except ValueError as err:
            raise ValueError(
                f"epsilon={target:g} at delta={delta:g} cannot be calibrated: the search left the "
                f"supported noise scales ({err})"
            ) from None
        report = Accountant(scaled, geometry, sampling, method=method, pld_rtol=pld_rtol).step(steps).report(delta)
        reports[log_factor] = report
        return math.log(report.epsilon / target) if report.epsilon > 0 else -math.inf

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
            return Calibration(noise.scaled(math.exp(high[0])), reports[high[0]], len(history))
        x_next = _next_point(low, high, history, width)
        history.append((x_next, log_excess(x_next)))
    raise ValueError(
        f"calibration did not converge within {_MAX_EVALUATIONS} accountant evaluations (last scale "
        f"{math.exp(history[-1][0]):g}x the given noise): check the inputs"
    )
