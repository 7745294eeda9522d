"""Privacy-loss-distribution (PLD) accounting: tight epsilon/delta where a dominating pair is known (§4.5).

    supports(mechanism) -> bool
    pld_epsilon(ledger, delta) -> (upper, lower)     # ledger: sequence of (mechanism, count)
    pld_delta(ledger, epsilon) -> (upper, lower)
    asymptotic_epsilon(noise, sample_rate, steps, delta, clip=1.0) -> float   # an ESTIMATE, see its docstring

``upper`` is the guarantee: a sound upper bound for the composed mechanism (pessimistic discretisation,
truncated mass counted at +inf, FFT round-off allowance added). ``lower`` is the lower end of the
discretisation interval: the true value of the composed dominating pairs lies in [lower, upper] (it assumes
exact arithmetic and is not a guarantee of anything). See docs/pld.md.
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

from .._validation import check_delta, check_epsilon, check_positive, check_sample_rate, check_steps
from ..noise import Gaussian, Noise
from . import compose as _compose
from .pairs import DIRECTIONS, DominatingPair, dominating_pairs, supports
from .pmf import delta_at, epsilon_for, hoeffding_shift

__all__ = ["supports", "pld_epsilon", "pld_delta", "asymptotic_epsilon", "DominatingPair", "dominating_pairs"]

_LOWER_TAIL_FRACTION = 0.01  # Hoeffding failure probability of the lower end, relative to delta
_TILT_RETRIES = (1.0, 1.25, 1.5)
_ALLOWANCE_RTOL = 1e-4  # round-off allowance worth a steeper tilt when it moves the answer by more than this


def _runs_by_direction(ledger) -> dict[str, tuple]:
    try:
        entries = [(mechanism, count) for mechanism, count in ledger]
    except (TypeError, ValueError):
        raise ValueError(f"ledger must be a sequence of (mechanism, count) pairs, got {ledger!r}") from None
    if not entries:
        raise ValueError("ledger must contain at least one (mechanism, count) entry")
    runs = {direction: [] for direction in DIRECTIONS}
    for mechanism, count in entries:
        count = check_steps(count, "count")
        for pair in dominating_pairs(mechanism):
            runs[pair.direction].append((pair, count))
    return {direction: tuple(r) for direction, r in runs.items()}


def _composed(runs, plan, read):
    """Compose under ``plan`` and read (with, without round-off allowance); when the allowance matters
    (the tilted peak sits far from the answer, e.g. at tiny delta), also try steeper tilts and keep the best
    (each is a sound upper bound)."""
    best = None
    for factor in _TILT_RETRIES:
        pmf = _compose.compose(runs, replace(plan, tilt=plan.tilt * factor))
        with_allowance, without = read(pmf, True), read(pmf, False)
        if best is not None and not with_allowance < best[0]:
            break
        best = (with_allowance, pmf)
        if with_allowance - without <= _ALLOWANCE_RTOL * abs(without):
            break
    return best


def _epsilon_one_direction(runs, delta: float) -> tuple[float, float]:
    upper, pmf = _composed(runs, _compose.plan(runs, delta=delta), lambda p, allow: epsilon_for(p, delta, allow))
    tail = _LOWER_TAIL_FRACTION * delta
    raw = epsilon_for(pmf, min(delta + tail + pmf.slack_mass, 1.0 - 1e-16), with_allowance=False)
    lower = raw - hoeffding_shift(pmf, tail)
    return max(upper, 0.0), min(max(lower, 0.0), max(upper, 0.0))


def _delta_one_direction(runs, epsilon: float) -> tuple[float, float]:
    upper, pmf = _composed(runs, _compose.plan(runs, epsilon=epsilon), lambda p, allow: delta_at(p, epsilon, allow))
    tail = _LOWER_TAIL_FRACTION * upper
    shifted = delta_at(pmf, epsilon + hoeffding_shift(pmf, max(tail, 1e-300)), with_allowance=False)
    return upper, min(max(shifted - tail - pmf.slack_mass, 0.0), upper)


@lru_cache(maxsize=256)
def _pld_epsilon(runs_by_direction: tuple, delta: float) -> tuple[float, float]:
    answers = [_epsilon_one_direction(runs, delta) for _, runs in runs_by_direction]
    return float(max(a[0] for a in answers)), float(max(a[1] for a in answers))


@lru_cache(maxsize=256)
def _pld_delta(runs_by_direction: tuple, epsilon: float) -> tuple[float, float]:
    answers = [_delta_one_direction(runs, epsilon) for _, runs in runs_by_direction]
    return float(max(a[0] for a in answers)), float(max(a[1] for a in answers))


def pld_epsilon(ledger, delta: float) -> tuple[float, float]:
    """(upper, lower) epsilon at ``delta`` for the composition of every (mechanism, count) in ``ledger``.

    ``upper`` is a sound upper bound (``inf`` only when the mass at infinite loss alone exceeds delta).
    Raises ValueError when a mechanism has no known dominating pair (check ``supports`` first).
    """
    delta = check_delta(delta)
    return _pld_epsilon(tuple(sorted(_runs_by_direction(ledger).items())), delta)


def pld_delta(ledger, epsilon: float) -> tuple[float, float]:
    """(upper, lower) delta at ``epsilon`` for the composition of every (mechanism, count) in ``ledger``."""
    epsilon = check_epsilon(epsilon)
    return _pld_delta(tuple(sorted(_runs_by_direction(ledger).items())), epsilon)


def asymptotic_epsilon(noise: Noise, sample_rate: float, steps: int, delta: float, clip: float = 1.0) -> float:
    """ESTIMATE (not a guarantee) of epsilon for i.i.d. ``noise`` on a d-dimensional L2-clipped query, d -> inf.

    As d grows, the worst-case privacy loss of one step tends to that of a Gaussian mechanism with
    sigma_eff = 1 / sqrt(I_f) (I_f: Fisher information of the noise) and shift ``clip`` (DESIGN §2 F3, §4.5).
    This value is the tight PLD epsilon of that Gaussian mechanism. It is what the noise achieves for large
    d, a lower bound on the true epsilon of large-d models, useful for audits and comparisons; it is NOT an
    upper bound for any finite d. Use ``Accountant`` for a guarantee.
    """
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be a lmodp_core noise, got {noise!r}")
    sample_rate = check_sample_rate(sample_rate)
    steps = check_steps(steps)
    delta = check_delta(delta)
    clip = check_positive("clip", clip)
    fisher = check_positive("fisher_information", noise.fisher_information)
    sigma_eff = Gaussian(1.0 / math.sqrt(fisher))
    runs = tuple((d, ((DominatingPair(sigma_eff, clip, sample_rate, d), steps),)) for d in DIRECTIONS)
    return _pld_epsilon(runs, delta)[0]
