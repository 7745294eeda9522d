"""PLD accounting of a ledger: epsilon at delta and delta at epsilon, refined until the discretisation error is
within ``rtol``.

The ledger is compacted (``lmodp_core.mechanism.compact_ledger``), split into the dominating pairs of each
direction (``pairs``), and each direction is composed (``compose``) and read (``pmf``); the larger answer counts.
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
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np

from ..mechanism import compact_ledger
from ..validation import check_delta, check_nonnegative, check_positive
from . import compose as _compose
from .pairs import DIRECTIONS, DominatingPair, dominating_pairs, shift_dominates
from .pmf import delta_at, epsilon_for, hoeffding_shift
from .profile import ProfilePair, zero_divergence_pairs

MIN_DELTA = 1e-250  # below, the float64 underflow floor (1e-300 per entry) is no longer negligible next to delta
MAX_RUNS = 64  # distinct runs per direction (each is discretised and self-composed on its own)
MAX_SHIFT_RATIO = 1e3  # clip / noise scale of one step (the loss spans ~ratio^2 for a Gaussian: beyond, use RDP)
MAX_ARRAY_POINTS = 2**20  # longest grid array (8 MiB; a composition at this size takes seconds)
DEFAULT_RTOL = 1e-3  # estimated discretisation error aimed at, relative (for epsilon: absolute below eps = 1e-3)
MIN_RTOL, MAX_RTOL = 1e-5, 0.5


class PLDBound(NamedTuple):
    """A PLD answer: ``upper`` is the guarantee; ``lower`` is the lower end of the discretisation interval."""

    upper: float
    lower: float


_LOWER_TAIL_FRACTION = 0.01  # Hoeffding failure probability of the lower end, relative to delta
_TILT_RETRIES = (1.0, 1.5, 2.0, 3.0, 4.0)
_FLATTER_TILTS = (0.25, 0.0625, 0.015625, 0.00390625)
_MAX_REFINEMENTS = 8  # grid halvings beyond the planned step
_COARSE_CHECK = 4.0  # the planned grid's error is estimated against a grid this much coarser
_EPSILON_FLOOR = 1e-3  # below, the epsilon tolerance is absolute: rtol * 1e-3
_DELTA_FLOOR = 1e-15  # below, delta queries are not refined further
_SLACK_SHARE = 1e-3  # a delta query is planned again when the mass sent to +inf exceeds this share of the answer
_REPLANS = 3
_ALLOWANCE_RTOL = 1e-4  # round-off allowance worth a steeper tilt when it moves the answer by more than this


class PLDLimitError(ValueError):
    """The query is outside what PLD accounting handles in bounded time and memory (see the module docstring)."""


def _runs_by_direction(ledger) -> dict[str, tuple]:
    entries, _ = compact_ledger(ledger)
    widest = max(m.geometry.radius / m.noise.typical_scale for m, _ in entries)
    if not widest <= MAX_SHIFT_RATIO:
        raise PLDLimitError(
            f"PLD handles steps with clip / noise scale <= {MAX_SHIFT_RATIO:g} (unsampled Gaussian "
            f"steps merged), got {widest:.4g}"
        )
    if len(entries) > MAX_RUNS:
        raise PLDLimitError(
            f"PLD composes at most {MAX_RUNS} distinct mechanisms (after grouping equal ones), got {len(entries)}"
        )
    runs: dict[str, list[tuple[DominatingPair | ProfilePair, int]]] = {direction: [] for direction in DIRECTIONS}
    for mechanism, count in entries:
        for pair in dominating_pairs(mechanism):
            runs[pair.direction].append((pair, count))
    return {direction: tuple(r) for direction, r in runs.items()}


def _check_size(runs, the_plan) -> None:
    points = _compose.largest_array(runs, the_plan)
    if points > MAX_ARRAY_POINTS:
        raise PLDLimitError(
            f"PLD would need arrays of about {points:.3g} grid points (limit {MAX_ARRAY_POINTS}): "
            f"too many steps ({the_plan.total_steps}) for its grid"
        )


def _composed(runs, plan, read):
    """Compose under ``plan`` and read (with, without round-off allowance); when the allowance matters
    (the tilted peak sits far from the answer: below it at tiny delta, above it when the loss is bounded just
    above the answer), also try steeper tilts, then flatter ones, then long double precision at the best tilt,
    and keep the best (each is a sound upper bound). A plan already in long double is composed once."""
    if plan.extended_precision:
        pmf = _compose.compose(runs, plan)
        return read(pmf, True), pmf
    best = None
    for retries in (_TILT_RETRIES, _FLATTER_TILTS):
        for factor in retries:
            pmf = _compose.compose(
                runs, replace(plan, tilt=float(np.clip(plan.tilt * factor, _compose.MIN_TILT, plan.max_tilt)))
            )
            with_allowance, without = read(pmf, True), read(pmf, False)
            if best is not None and not with_allowance < best[0]:
                break
            best = (with_allowance, pmf)
            if with_allowance - without <= _ALLOWANCE_RTOL * abs(without):
                return best
            if pmf.tilt in (_compose.MIN_TILT, plan.max_tilt):
                break
    pmf = _compose.compose(runs, replace(plan, tilt=best[1].tilt, extended_precision=True))
    extended = (read(pmf, True), pmf)
    return extended if extended[0] < best[0] else best


def _refined(runs, first_plan, read, tolerance, hopeless=lambda pmf: False):
    """(upper, pmf) on the planned grid, checked against a 4x coarser one and halved until the estimated error
    is at most ``tolerance(answer)``.

    The pessimistic discretisation error is O(h^2) (chord interpolation of a convex curve, Doroshenko et al.
    2022, arXiv:2207.04380), so the fine answer's error is estimated by Richardson extrapolation,
    (coarse - fine) / (r^2 - 1) for grids r times apart. Every answer is a sound upper bound; the smallest is kept.
    A finer grid that would exceed ``MAX_ARRAY_POINTS``, or ``_MAX_REFINEMENTS`` halvings, ends the refinement
    (the answer stays sound, only less tight). Each grid starts from the tilt and precision that the previous
    one settled on. When ``hopeless(pmf)`` holds for the coarse grid's pmf, its answer is returned unrefined.
    """
    _check_size(runs, first_plan)
    steps = [
        _COARSE_CHECK * first_plan.base_step,
        *(first_plan.base_step * 0.5**k for k in range(_MAX_REFINEMENTS + 1)),
    ]
    coarse = _composed(runs, _compose.with_step(first_plan, steps[0], runs), read)
    if not tolerance(coarse[0]) < math.inf or hopeless(coarse[1]):
        return coarse
    for previous, step in zip(steps, steps[1:]):
        settled = replace(first_plan, tilt=coarse[1].tilt, extended_precision=coarse[1].values.dtype != np.float64)
        the_plan = _compose.with_step(settled, step, runs)
        if step < first_plan.base_step and _compose.largest_array(runs, the_plan) > MAX_ARRAY_POINTS:
            break
        fine = _composed(runs, the_plan, read)
        ratio = previous / step
        if not math.isfinite(fine[0]) or (coarse[0] - fine[0]) / (ratio * ratio - 1.0) <= tolerance(fine[0]):
            return min(coarse, fine, key=lambda answer: answer[0])
        coarse = min(coarse, fine, key=lambda answer: answer[0])
    return coarse


def _epsilon_lower(pmf, delta: float) -> float:
    """The lower end of the discretisation interval of ``pmf``'s epsilon at ``delta`` (not a guarantee)."""
    tail = _LOWER_TAIL_FRACTION * delta
    raw = epsilon_for(pmf, min(delta + tail + pmf.slack_mass, 1.0 - 1e-16), with_allowance=False)
    return raw - hoeffding_shift(pmf, tail)


def _epsilon_one_direction(runs, delta: float, rtol: float, other: float, *, ceiling: float) -> tuple[float, float]:
    """(upper, lower) of one direction; ``other`` is the other direction's answer: only the larger one counts, so
    a sound answer already below it needs no refinement; nor does one whose lower end is above ``ceiling``."""

    def tolerance(epsilon: float) -> float:
        return math.inf if epsilon <= other else rtol * max(epsilon, _EPSILON_FLOOR)

    the_plan = _compose.plan(runs, delta=delta, tolerance=0.5 * rtol)
    upper, pmf = _refined(
        runs,
        the_plan,
        lambda p, allow: epsilon_for(p, delta, allow),
        tolerance,
        lambda coarse: _epsilon_lower(coarse, delta) > ceiling,
    )
    lower = _epsilon_lower(pmf, delta)
    return max(upper, 0.0), min(max(lower, 0.0), max(upper, 0.0))


def _delta_one_direction(runs, epsilon: float, rtol: float, other: float) -> tuple[float, float]:
    def tolerance(delta: float) -> float:  # below the floor or the other direction any error is accepted
        return math.inf if delta < _DELTA_FLOOR or delta <= other else rtol * delta

    def read(pmf, with_allowance: bool) -> float:
        return delta_at(pmf, epsilon, with_allowance)

    the_plan = _compose.plan(runs, epsilon=epsilon, tolerance=0.5 * rtol)
    upper, pmf = _refined(runs, the_plan, read, tolerance)
    for _ in range(_REPLANS):
        # the tail budget comes from a saddle-point estimate of delta; where that was far too large, the mass sent
        # to +inf dominates the answer: plan again with the budget scaled to what the answer is without it
        rest = upper - pmf.slack_mass
        if pmf.slack_mass <= _SLACK_SHARE * upper or not rest > 0.0 or upper < _DELTA_FLOOR:
            break
        budget = the_plan.log_tail_budget + math.log(_SLACK_SHARE * rest / pmf.slack_mass)
        the_plan = replace(the_plan, log_tail_budget=budget)
        try:
            again = _refined(runs, the_plan, read, tolerance)
        except PLDLimitError:  # the wider windows do not fit: keep the sound answer already found
            break
        upper, pmf = min((upper, pmf), again, key=lambda answer: answer[0])
    tail = _LOWER_TAIL_FRACTION * upper
    shifted = delta_at(pmf, epsilon + hoeffding_shift(pmf, max(tail, 1e-300)), with_allowance=False)
    return upper, min(max(shifted - tail - pmf.slack_mass, 0.0), upper)


def _larger_direction(one_direction, runs_by_direction: tuple, value: float, rtol: float) -> PLDBound:
    """The larger answer over the directions ("remove" first: it usually dominates, and the other direction is
    then refined only relative to it)."""
    answers: list[tuple[float, float]] = []
    for _, runs in sorted(runs_by_direction, reverse=True):
        answers.append(one_direction(runs, value, rtol, max((a[0] for a in answers), default=0.0)))
    return PLDBound(float(max(a[0] for a in answers)), float(max(a[1] for a in answers)))


@lru_cache(maxsize=256)
def _pld_epsilon(runs_by_direction: tuple, delta: float, rtol: float, ceiling: float = math.inf) -> PLDBound:
    return _larger_direction(partial(_epsilon_one_direction, ceiling=ceiling), runs_by_direction, delta, rtol)


@lru_cache(maxsize=256)
def _pld_delta(runs_by_direction: tuple, epsilon: float, rtol: float) -> PLDBound:
    return _larger_direction(_delta_one_direction, runs_by_direction, epsilon, rtol)


def check_rtol(rtol) -> float:
    """``rtol`` validated for ``pld_epsilon``/``pld_delta`` (a ValueError naming the allowed range)."""
    rtol = check_positive("rtol", rtol)
    if not MIN_RTOL <= rtol <= MAX_RTOL:
        raise ValueError(
            f"rtol must lie in [{MIN_RTOL:g}, {MAX_RTOL:g}] (the discretisation error aimed at, "
            f"relative to the answer), got {rtol!r}"
        )
    return rtol


def pld_epsilon(ledger, delta: float, rtol: float = DEFAULT_RTOL, *, ceiling: float = math.inf) -> PLDBound:
    """``PLDBound(upper, lower)``: epsilon at ``delta`` for the composition of every (mechanism, count) in ``ledger``.

    ``upper`` is a sound upper bound (``inf`` only when the mass at infinite loss alone exceeds delta). The grid
    is refined until the estimated discretisation error of ``upper`` is at most ``rtol`` * max(epsilon, 1e-3),
    except where the coarse grid's lower end is already above ``ceiling`` (a caller that takes the smaller of this
    and another sound answer passes that answer): ``upper`` is then sound but unrefined.
    Raises ValueError when a mechanism has no known dominating pair (check ``supports`` first), and
    ``PLDLimitError`` (a ValueError) outside the limits of the module docstring, e.g. delta < ``MIN_DELTA``.
    """
    delta = check_delta(delta)
    rtol = check_rtol(rtol)
    if delta < MIN_DELTA:
        raise PLDLimitError(
            f"PLD accounting supports delta in [{MIN_DELTA:g}, 1), got {delta!r}; "
            "use method='rdp' (or 'auto') for smaller delta"
        )
    return _pld_epsilon(tuple(sorted(_runs_by_direction(ledger).items())), delta, rtol, float(ceiling))


def pld_delta(ledger, epsilon: float, rtol: float = DEFAULT_RTOL) -> PLDBound:
    """``PLDBound(upper, lower)``: delta at ``epsilon`` (>= 0) for the composition of every (mechanism, count) in
    ``ledger``; the grid is refined until the estimated relative error of ``upper`` is at most ``rtol`` (wherever
    delta >= 1e-15)."""
    epsilon = check_nonnegative("epsilon", epsilon)
    rtol = check_rtol(rtol)
    return _pld_delta(tuple(sorted(_runs_by_direction(ledger).items())), epsilon, rtol)


def uses_profile_pairs(ledger) -> bool:
    """True when some mechanism of ``ledger`` is composed through a profile pair (``profile``: no dominating shift
    is known for it), so that its PLD answer is a bound built from RDP rather than the tight value."""
    return any(not shift_dominates(mechanism) for mechanism, _ in ledger)


def profile_epsilon_floor(sample_rate: float, steps: int, delta: float) -> float:
    """The smallest epsilon at ``delta`` that ``steps`` profile-pair steps at ``sample_rate`` can certify (the
    composition of ``profile.zero_divergence_pairs``): a target below it cannot be reached by any noise scale."""
    remove, add = zero_divergence_pairs(sample_rate)
    runs = (("add", ((add, steps),)), ("remove", ((remove, steps),)))
    return _pld_epsilon(runs, check_delta(delta), DEFAULT_RTOL).upper
