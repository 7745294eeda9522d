"""Composition of many steps: planning the grid, exponentiation by squaring, truncation (docs/theory.md §4.5).

Planning (per query and direction) uses the log-moment K(lambda) = log E_P[e^{lambda L}] of each step:
- tilt: the saddle point lambda* with K_T'(lambda*) = epsilon (for a delta query at epsilon, or at the
  saddle-point estimate of epsilon for an epsilon query), so the composed tilted masses peak where the answer
  is read and the FFT round-off stays relative to them;
- windows: Chernoff tails, P(S_m > r) <= exp(K_m(l) - l r), give for every partial composition of m steps
  the range outside which at most tau_m = budget * m / (T * n_ops) of mass lies; that mass is not dropped but
  sent to +inf, so a narrow window only costs tightness, never soundness;
- step: h_m = h0 * 2^floor(log2(m)/3). Each re-discretisation at level j (m = 2^j) adds at most h_m^2/4 of
  variance and h_m^2/8 of mean shift to each of its T/m copies, so epsilon moves by about
  (1 + lambda*) T h0^2 S / 8 with S = sum_j 4^floor(j/3) / 2^j (< 4.9), which h0 keeps below
  ``tolerance`` * epsilon (a first guess: the caller checks the answer by refinement). Growing the step like
  m^(1/3) rather than with the width of the partial sum (m^(1/2)) minimises the total array length when, as
  for small sampling rates, the early windows are set by the loss tails rather than by the bulk: it allows a
  ~2x coarser first grid for the same error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache, reduce

import numpy as np

from . import xgrid
from .discretise import discretise
from .pmf import LossPMF, coarsen, convolve, extended_precision, truncate
from .profile import ProfilePair
from .registry import top_loss_closed_form

ORDERS = np.concatenate([-np.geomspace(1e6, 0.01, 40), np.geomspace(0.01, 1e6, 64)])
_RELATIVE_TOLERANCE = 5e-4
_TAIL_FRACTION = 1e-6  # mass sent to +inf or moved, relative to the delta of the query
_MIN_EPSILON_SCALE = 0.05
_MAX_STEP = 2e-3  # times max(1, epsilon): resolution for few steps
_MAX_POINTS = 2**20  # longest array; beyond it the step grows (looser, still sound)
MIN_TILT, _MAX_TILT = 1e-3, 1e6
_MAX_TILT_RANGE = 300.0  # largest tilt * (width of a step's window)
_PLANNING_CELLS = 1024
_MIN_LOG_DELTA = -690.0  # truncation budgets stop at ~1e-300 (deltas below that read as about 0)
_LEVELS_PER_DOUBLING = 3


@lru_cache(maxsize=512)
def pair_log_moment(pair) -> np.ndarray:
    """K(lambda) on ``ORDERS`` for one step of ``pair`` (inf where not resolved)."""
    if isinstance(pair, ProfilePair):
        return pair.log_moment(ORDERS)
    return xgrid.log_moment(xgrid.cells_for(pair, core_cells=_PLANNING_CELLS), ORDERS)


def _right_edge(log_moment: np.ndarray, log_tail: float) -> float:
    """r with P(S > r) <= e^{log_tail}: min over lambda > 0 of (K(lambda) - log_tail) / lambda."""
    positive = (ORDERS > 0) & np.isfinite(log_moment)
    return float(np.min((log_moment[positive] - log_tail) / ORDERS[positive]))


def _left_edge(log_moment: np.ndarray, log_tail: float) -> float:
    """r with P(S < r) <= e^{log_tail}: max over lambda < 0 of (K(lambda) - log_tail) / lambda."""
    negative = (ORDERS < 0) & np.isfinite(log_moment)
    if not negative.any():
        return -_right_edge(log_moment, log_tail)
    return float(np.max((log_moment[negative] - log_tail) / ORDERS[negative]))


@dataclass(frozen=True)
class Plan:
    """Grid step h0, tilt and truncation budget shared by every array of one direction of one query."""

    base_step: float
    tilt: float
    log_tail_budget: float
    total_steps: int
    n_ops: int
    max_tilt: float = _MAX_TILT
    extended_precision: bool = False  # compose in long double (less FFT round-off, ~3x the time)
    anchor: float = 0.0  # a loss kept on the grid (the epsilon of a delta query; 0: none)

    def step_for(self, steps: int) -> float:
        return self.base_step * 2.0 ** (int(math.log2(steps)) // _LEVELS_PER_DOUBLING)

    def log_tail(self, steps: int) -> float:
        """log tau_m: the mass allowed outside the window of a partial composition of ``steps`` steps."""
        return self.log_tail_budget + math.log(steps / (self.total_steps * self.n_ops))

    def window(
        self, log_moment: np.ndarray, steps: int, step: float, rounding_var: float, rounding_bias: float
    ) -> tuple[int, int]:
        """Grid indices outside which the discretised partial sum has at most tau_m of mass on each side.

        The discretised sum S' differs from the true S by the rounding deviations, whose sum has mean in
        [0, rounding_bias] and leaves it by more than t with probability <= exp(-2 t^2 / rounding_var)
        (Hoeffding). So P(S' < r - t) <= P(S < r) + P(S' - S < -t) <= tau_m / 2 + tau_m / 2 with the
        Chernoff r at tau_m / 2, and likewise on the right with r + t + rounding_bias.
        """
        log_half_tail = self.log_tail(steps) - math.log(2.0)
        spread = math.sqrt(0.5 * rounding_var * -log_half_tail)
        low = math.floor((_left_edge(log_moment, log_half_tail) - spread) / step) - 1
        high = math.ceil((_right_edge(log_moment, log_half_tail) + spread + rounding_bias) / step) + 1
        return low, high


def plan(
    runs, *, delta: float | None = None, epsilon: float | None = None, tolerance: float = _RELATIVE_TOLERANCE
) -> Plan:
    """The plan for a query: give ``delta`` (epsilon wanted) or ``epsilon`` (delta wanted); the step aims at a
    relative error of about ``tolerance`` (the caller checks it by refinement)."""
    total = sum(count * pair_log_moment(pair) for pair, count in runs)
    total_steps = sum(count for _, count in runs)
    positive = (ORDERS > 0) & np.isfinite(total)
    lam, log_moment = ORDERS[positive], total[positive]
    mean = np.gradient(log_moment, lam)  # K'(l): where the tilted sum concentrates
    variance = np.maximum(np.gradient(mean, lam), 1e-300)
    # saddle-point approximation: delta(K'(l)) ~ e^{K(l) - l K'(l)} / (l (l+1) sqrt(2 pi K''(l)))
    log_delta = log_moment - lam * mean - np.log(lam * (lam + 1.0)) - 0.5 * np.log(2.0 * math.pi * variance)
    if delta is not None:
        best = int(np.argmin(np.abs(log_delta - math.log(delta))))
        chernoff = float(np.min((log_moment - math.log(delta)) / lam))
        epsilon_scale, log_tail = min(float(mean[best]), chernoff), math.log(delta)
    else:
        best = int(np.argmin(np.abs(mean - epsilon)))
        chernoff = float(np.min(log_moment - lam * epsilon))
        # an epsilon error e moves log delta by about tilt * e: aim at a relative delta error of the tolerance
        epsilon_scale = min(epsilon, 1.0 / lam[best])
        log_tail = min(max(float(log_delta[best]), _MIN_LOG_DELTA), chernoff, 0.0)
        log_tail = max(log_tail, _MIN_LOG_DELTA)  # beyond a bounded loss the estimate is -inf: delta ~ 0
    levels = math.log2(2.0 * total_steps)
    n_ops = 2 * int(math.ceil(levels)) + 2 * len(runs)
    draft = Plan(1.0, 1.0, log_tail + math.log(_TAIL_FRACTION), total_steps, n_ops)
    one_step_tail = draft.log_tail(1) - math.log(2.0)
    widest = max(
        _right_edge(pair_log_moment(pair), one_step_tail) - _left_edge(pair_log_moment(pair), one_step_tail)
        for pair, _ in runs
    )  # the widest one-step window, in loss units
    # e^{tilt * width} must stay far inside the float range (bounded losses have an infinite saddle point)
    max_tilt = max(min(_MAX_TILT, _MAX_TILT_RANGE / widest), MIN_TILT)
    tilt = float(np.clip(lam[best], MIN_TILT, max_tilt))
    level_sum = sum(4.0 ** (j // _LEVELS_PER_DOUBLING) / 2.0**j for j in range(int(levels) + 1))
    base_step = math.sqrt(
        8.0 * tolerance * max(epsilon_scale, _MIN_EPSILON_SCALE) / ((1.0 + tilt) * total_steps * level_sum)
    )
    step = min(base_step, _MAX_STEP * max(1.0, epsilon_scale))
    anchor = 0.0 if epsilon is None else epsilon
    step = _aligned(max(step, widest / _MAX_POINTS), runs, anchor)
    return Plan(step, tilt, draft.log_tail_budget, total_steps, n_ops, max_tilt, anchor=anchor)


def with_step(the_plan: Plan, step: float, runs) -> Plan:
    """``the_plan`` on another base step (aligned like the planned one)."""
    return replace(the_plan, base_step=_aligned(step, runs, the_plan.anchor))


def _aligned(step: float, runs, anchor: float = 0.0) -> float:
    """Shrink the step slightly so that ``anchor`` (the epsilon of a delta query, when at least a step), or else
    the largest loss of the first histogrammed run, is a grid point.

    Densities with flat tails (Laplace, LMO) put an atom at their largest loss; splitting it between two grid
    points would cost up to a step in epsilon when delta is below the atom's mass (pure-DP-like queries). A
    delta query read at a grid point is exact for one step (the connect-the-dots curve meets the true one at
    grid points), where between grid points the chord over a steep tail can exceed it many times.
    """
    if anchor >= step:
        return anchor / math.ceil(anchor / step)
    for pair, _ in runs:
        if pair_top_loss(pair) > 0:
            return pair_top_loss(pair) / math.ceil(pair_top_loss(pair) / step)
    return step


@lru_cache(maxsize=512)
def pair_top_loss(pair) -> float:
    """Largest finite loss of a histogrammed pair (a registered ``top_loss_closed_form`` first: 0 for Gaussian
    pairs, whose loss has no atoms; 0 for a profile pair, whose grid masses are placed by its hull)."""
    if isinstance(pair, ProfilePair):
        return 0.0
    known = top_loss_closed_form(pair.noise, pair)
    if known is not None:
        return known
    cells = xgrid.cells_for(pair, core_cells=_PLANNING_CELLS)
    finite = cells.loss_max[np.isfinite(cells.loss_max) & np.isfinite(cells.log_p)]
    return float(finite.max()) if finite.size else 0.0


@dataclass(frozen=True)
class _Part:
    pmf: LossPMF
    log_moment: np.ndarray


def _coarsen_to(pmf: LossPMF, step: float) -> LossPMF:
    while pmf.step < step * (1.0 - 1e-12):
        pmf = coarsen(pmf)
    return pmf


def _combine(a: _Part, b: _Part, the_plan: Plan) -> _Part:
    steps = a.pmf.steps + b.pmf.steps
    step = max(a.pmf.step, b.pmf.step, the_plan.step_for(steps))
    left = _coarsen_to(a.pmf, step)
    right = left if b is a else _coarsen_to(b.pmf, step)
    log_moment = a.log_moment + b.log_moment
    low, high = the_plan.window(
        log_moment, steps, step, left.rounding_var + right.rounding_var, left.rounding_bias + right.rounding_bias
    )
    pmf = truncate(convolve(left, right), low, high, math.exp(the_plan.log_tail(steps)))
    return _Part(pmf, log_moment)


def _self_compose(base: _Part, count: int, the_plan: Plan) -> _Part:
    """count-fold composition by repeated squaring."""
    result, power = None, base
    while True:
        if count & 1:
            result = power if result is None else _combine(result, power, the_plan)
        count >>= 1
        if not count:
            if result is None:
                raise ValueError(f"self-composition needs a count >= 1, got {count}")
            return result
        power = _combine(power, power, the_plan)


def largest_array(runs, the_plan: Plan) -> int:
    """Estimated length of the longest array of ``compose(runs, the_plan)``: the window of every power-of-two
    partial sum of each run, and of the whole composition (rounding spread left out: an estimate)."""
    largest = 0
    total = np.zeros(ORDERS.shape)
    for pair, count in runs:
        log_moment = pair_log_moment(pair)
        total = total + count * log_moment
        for level in range(int(math.log2(count)) + 1):
            steps = 2**level
            low, high = the_plan.window(steps * log_moment, steps, the_plan.step_for(steps), 0.0, 0.0)
            largest = max(largest, high - low + 1)
    steps = the_plan.total_steps
    low, high = the_plan.window(total, steps, the_plan.step_for(steps), 0.0, 0.0)
    return max(largest, high - low + 1)


@lru_cache(maxsize=64)
def _step_pmf(pair, step: float, low: int, high: int, tilt: float) -> LossPMF:
    return discretise(pair, step, low, high, tilt)


def compose(runs, the_plan: Plan) -> LossPMF:
    """The PLD of all runs (pair, count) of one direction, composed in order."""
    parts = []
    for pair, count in runs:
        log_moment = pair_log_moment(pair)
        low, high = the_plan.window(log_moment, 1, the_plan.base_step, 0.0, 0.0)
        step_pmf = _step_pmf(pair, the_plan.base_step, low, high, the_plan.tilt)
        base = _Part(extended_precision(step_pmf) if the_plan.extended_precision else step_pmf, log_moment)
        parts.append(_self_compose(base, count, the_plan))
    return reduce(lambda a, b: _combine(a, b, the_plan), parts).pmf
