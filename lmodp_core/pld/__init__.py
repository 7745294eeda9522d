"""Privacy-loss-distribution (PLD) accounting: tight epsilon/delta where a dominating pair is known (§4.5).

    supports(mechanism) -> bool
    pld_epsilon(ledger, delta) -> (upper, lower)     # ledger: sequence of (mechanism, count)
    pld_delta(ledger, epsilon) -> (upper, lower)
    asymptotic_epsilon(noise, sample_rate, steps, delta, clip=1.0) -> float   # an ESTIMATE, see its docstring

``upper`` is the guarantee: a sound upper bound for the composed mechanism (pessimistic discretisation,
truncated mass counted at +inf, FFT round-off allowance added). ``lower`` is the lower end of the
discretisation interval: the true value of the composed dominating pairs lies in [lower, upper] (it assumes
exact arithmetic and is not a guarantee of anything). See docs/pld.md.

Limits (``PLDLimitError``, a ValueError; the accountant then falls back to RDP under method="auto"):
delta >= ``MIN_DELTA``, clip / noise scale <= ``MAX_SHIFT_RATIO``, at most ``MAX_RUNS`` distinct runs after
``compact_ledger``, and at most ``MAX_ARRAY_POINTS`` grid points per array (estimated before composing).
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

from .._validation import check_delta, check_nonnegative, check_positive, check_sample_rate, check_steps
from ..accountant import Mechanism, compact_ledger
from ..geometry import L2Ball
from ..noise import Gaussian, Noise
from ..sampling import Poisson
from . import compose as _compose
from .pairs import DIRECTIONS, DominatingPair, dominating_pairs, supports
from .pmf import delta_at, epsilon_for, hoeffding_shift

__all__ = ["supports", "pld_epsilon", "pld_delta", "asymptotic_epsilon", "DominatingPair", "dominating_pairs",
           "PLDLimitError", "MIN_DELTA", "MAX_SHIFT_RATIO", "MAX_RUNS", "MAX_ARRAY_POINTS"]

MIN_DELTA = 1e-250  # below, the float64 underflow floor (1e-300 per entry) is no longer negligible next to delta
MAX_RUNS = 64  # distinct runs per direction (each is discretised and self-composed on its own)
MAX_SHIFT_RATIO = 1e3  # clip / noise scale of one step (the loss spans ~ratio^2 for a Gaussian: beyond, use RDP)
MAX_ARRAY_POINTS = 2**20  # longest grid array (8 MiB; a composition at this size takes seconds)

_LOWER_TAIL_FRACTION = 0.01  # Hoeffding failure probability of the lower end, relative to delta
_TILT_RETRIES = (1.0, 1.25, 1.5)
_ALLOWANCE_RTOL = 1e-4  # round-off allowance worth a steeper tilt when it moves the answer by more than this


class PLDLimitError(ValueError):
    """The query is outside what PLD accounting handles in bounded time and memory (see the module docstring)."""


def _runs_by_direction(ledger) -> dict[str, tuple]:
    entries, _ = compact_ledger(ledger)
    widest = max(m.geometry.radius / m.noise.typical_scale for m, _ in entries)
    if not widest <= MAX_SHIFT_RATIO:
        raise PLDLimitError(f"PLD handles steps with clip / noise scale <= {MAX_SHIFT_RATIO:g} (unsampled Gaussian "
                            f"steps merged), got {widest:.4g}")
    if len(entries) > MAX_RUNS:
        raise PLDLimitError(f"PLD composes at most {MAX_RUNS} distinct mechanisms (after grouping equal ones), "
                            f"got {len(entries)}")
    runs = {direction: [] for direction in DIRECTIONS}
    for mechanism, count in entries:
        for pair in dominating_pairs(mechanism):
            runs[pair.direction].append((pair, count))
    return {direction: tuple(r) for direction, r in runs.items()}


def _check_size(runs, the_plan) -> None:
    points = _compose.largest_array(runs, the_plan)
    if points > MAX_ARRAY_POINTS:
        raise PLDLimitError(f"PLD would need arrays of about {points:.3g} grid points (limit {MAX_ARRAY_POINTS}): "
                            f"too many steps ({the_plan.total_steps}) for its grid")


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
    the_plan = _compose.plan(runs, delta=delta)
    _check_size(runs, the_plan)
    upper, pmf = _composed(runs, the_plan, lambda p, allow: epsilon_for(p, delta, allow))
    tail = _LOWER_TAIL_FRACTION * delta
    raw = epsilon_for(pmf, min(delta + tail + pmf.slack_mass, 1.0 - 1e-16), with_allowance=False)
    lower = raw - hoeffding_shift(pmf, tail)
    return max(upper, 0.0), min(max(lower, 0.0), max(upper, 0.0))


def _delta_one_direction(runs, epsilon: float) -> tuple[float, float]:
    the_plan = _compose.plan(runs, epsilon=epsilon)
    _check_size(runs, the_plan)
    upper, pmf = _composed(runs, the_plan, lambda p, allow: delta_at(p, epsilon, allow))
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
    Raises ValueError when a mechanism has no known dominating pair (check ``supports`` first), and
    ``PLDLimitError`` (a ValueError) outside the limits of the module docstring, e.g. delta < ``MIN_DELTA``.
    """
    delta = check_delta(delta)
    if delta < MIN_DELTA:
        raise PLDLimitError(f"PLD accounting supports delta in [{MIN_DELTA:g}, 1), got {delta!r}; "
                            "use method='rdp' (or 'auto') for smaller delta")
    return _pld_epsilon(tuple(sorted(_runs_by_direction(ledger).items())), delta)


def pld_delta(ledger, epsilon: float) -> tuple[float, float]:
    """(upper, lower) delta at ``epsilon`` (>= 0) for the composition of every (mechanism, count) in ``ledger``."""
    epsilon = check_nonnegative("epsilon", epsilon)
    return _pld_delta(tuple(sorted(_runs_by_direction(ledger).items())), epsilon)


def asymptotic_epsilon(noise: Noise, sample_rate: float, steps: int, delta: float, clip: float = 1.0) -> float:
    """ESTIMATE (not a guarantee) of epsilon for i.i.d. ``noise`` on a d-dimensional L2-clipped query, d -> inf.

    As d grows, the worst-case privacy loss of one step tends to that of a Gaussian mechanism with
    sigma_eff = 1 / sqrt(I_f) (I_f: Fisher information of the noise) and shift ``clip`` (docs/theory.md §2 F3, §4.5).
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
    return pld_epsilon([(Mechanism(sigma_eff, L2Ball(clip), Poisson(sample_rate)), steps)], delta)[0]
