"""Per-step RDP without subsampling, by geometry (docs/theory.md §4.3); a family's registered closed form
(``registry.unsampled_rdp_closed_form``, e.g. Gaussian) comes first.

Additivity of Renyi divergence over independent coordinates gives, for a shift vector v:
    Scalar(D):  sup_{0<s<=D} r_a(s)
    L1Ball(C):  sum_i r_a(|v_i|) <= C * sup_{0<s<=C} r_a(s)/s          (||v||_1 <= C)
    L2Ball(C):  sum_i r_a(|v_i|) <= C^2 * sup_{0<s<=C} r_a(s)/s^2      (||v||_2 <= C, any dimension)
Laplace (every geometry) and families with a proven scalar dominating pair (LMO: Scalar, where the sup is the value
at D, and L1) get certified sups (``certified_sup``), as do other symmetric unimodal noises in Scalar geometry;
otherwise the sup is taken on a geometric shift grid with a local refinement around
interior maxima (no monotonicity is assumed); the small-shift end of the L2 ratio uses its limit a*I_f/2
(I_f = Fisher information) instead of evaluating r_a at tiny shifts; for a density with infinite Fisher
information (a jump) no L2 bound exists and the RDP is +inf. The small-shift end of the L1 ratio uses
lim r_a(s)/s, which is > 0 only for densities with jumps (``small_shift_slope``). A relative safety margin
``SUP_MARGIN`` covers the residual between grid points.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from ..geometry import Geometry
from ..noise import Noise
from ..noise.piecewise import log_renyi_moment
from .certified_sup import (
    has_certified_scalar_sup,
    monotone_l1_sup,
    monotone_small_shift_bound,
    proven_shift_monotone,
    scalar_sup,
)
from .divergence import renyi_shift
from .registry import unsampled_rdp_closed_form

SUP_MARGIN = 1e-6  # relative inflation of numerically found suprema
_BISECTIONS = 40  # for the interior sup of r_a(s)/s between two knots of a histogram density (1e-12 relative)
_COARSE_FRACTIONS = np.geomspace(1e-3, 1.0, 43)  # ratio 1.18 between neighbouring shifts
_REFINE_POINTS = 9


@runtime_checkable
class _CellPairNoise(Protocol):
    """A noise whose shifted pair is finitely many cells of constant density (e.g. ``PiecewiseNoise``)."""

    @property
    def shift_knot_spacing(self) -> float: ...

    def shift_pair_masses(self, shift: float) -> tuple[np.ndarray, np.ndarray]: ...

    def small_shift_slope(self, orders: np.ndarray) -> np.ndarray: ...

    def knot_log_moments(self, count: int, orders: np.ndarray) -> np.ndarray: ...


def sup_over_shifts(value_at, radius: float, orders: np.ndarray, knot_spacing: float | None = None) -> np.ndarray:
    """max over s in (0, radius] of value_at(shifts) -> (n_shifts, n_orders), with local refinement.

    The coarse grid is geometric in s; for every order whose maximum is interior, the two neighbouring grid
    intervals are resampled with ``_REFINE_POINTS`` points each. With ``knot_spacing`` w (a noise whose
    divergences are monotone in s between multiples of w, see ``PiecewiseNoise.shift_knot_spacing``) the sup is
    exact: the max over s = k w <= radius and s = radius.
    """
    if knot_spacing is not None:
        return value_at(_knots(radius, knot_spacing)).max(axis=0)
    shifts = radius * _COARSE_FRACTIONS
    values = value_at(shifts)
    best = values.max(axis=0)
    arg = values.argmax(axis=0)
    interior = np.unique(arg[(arg > 0) & (arg < shifts.size - 1)])
    if interior.size:
        fine = np.unique(
            np.concatenate([np.geomspace(shifts[i - 1], shifts[i + 1], 2 * _REFINE_POINTS + 1) for i in interior])
        )
        best = np.maximum(best, value_at(fine).max(axis=0))
    return best


def unsampled_rdp(noise: Noise, geometry: Geometry, orders) -> np.ndarray:
    """Per-step RDP of one noisy query without subsampling, for every order."""
    orders = np.atleast_1d(np.asarray(orders, dtype=float))
    radius = geometry.radius
    closed_form = unsampled_rdp_closed_form(noise, geometry, orders)
    if closed_form is not None:
        return closed_form
    power = geometry.shift_exponent  # k in sup r_a(s)/s^k

    def ratio(shifts):
        return renyi_shift(noise, shifts, orders) / shifts[:, None] ** power * radius**power

    if power == 2 and unbounded_l2_reason(noise, geometry):
        return np.full(orders.shape, np.inf)
    if power < 2 and isinstance(noise, _CellPairNoise):
        return _piecewise_sup(noise, radius, orders, power)
    if proven_shift_monotone(noise, radius):  # r_a non-decreasing in s: the sup is at D (Scalar), certified (L1)
        if power == 0:
            return renyi_shift(noise, [radius], orders)[0]
        if power == 1 and np.isfinite(noise.log_density_lipschitz):
            return _monotone_l1(noise, radius, orders)
    if power == 0 and has_certified_scalar_sup(noise):
        return scalar_sup(noise, radius, orders, lambda shifts, some: renyi_shift(noise, shifts, some))
    best = sup_over_shifts(ratio, radius, orders)
    if power == 2:
        best = np.maximum(best, 0.5 * orders * noise.fisher_information * radius**2)  # s -> 0 limit a I_f C^2/2
    if power == 1:
        best = np.maximum(best, small_shift_slope(noise, orders) * radius)  # s -> 0 limit of C r_a(s)/s
    return best * (1.0 + SUP_MARGIN)


def _monotone_l1(noise: Noise, radius: float, orders: np.ndarray) -> np.ndarray:
    """``monotone_l1_sup`` of a noise whose r_a is non-decreasing in the shift. For a family with a ``scale``
    field it runs at unit scale, C r_a(s)/s = R r1_a(u)/u with u = s/scale, R = C/scale and r1 the divergence of
    the unit-scale noise, whose values at the lattice shifts are memoised per shape: a calibration evaluates one
    shape at several scales, and most shifts recur."""
    unit, length = _unit_scale(noise)
    memo = _shift_memo(unit)

    def point(shifts, some):
        out = np.empty((len(shifts), some.size))
        for row, shift in enumerate(shifts):
            todo = np.array([(order, shift) not in memo for order in some.tolist()])
            if todo.any():
                fresh = renyi_shift(unit, [shift], some[todo])[0]
                memo.update(zip(((order, shift) for order in some[todo].tolist()), fresh.tolist()))
            out[row] = [memo[order, shift] for order in some.tolist()]
        return out

    unit_radius = radius / length
    floor = monotone_small_shift_bound(unit, unit_radius, orders)
    return monotone_l1_sup(point, unit_radius, orders, unit.log_density_lipschitz, floor)


def _unit_scale(noise: Noise) -> tuple[Noise, float]:
    """(the noise at scale 1, its scale) for a family with a ``scale`` field; (noise, 1.0) otherwise."""
    scale = getattr(noise, "scale", 1.0)
    if scale != 1.0 and "scale" in {f.name for f in dataclasses.fields(noise)}:
        return dataclasses.replace(cast(Any, noise), scale=1.0), float(scale)
    return noise, 1.0


@lru_cache(maxsize=8)
def _shift_memo(unit: Noise) -> dict:
    """r_a at (order, shift) of a unit-scale noise, filled by ``_monotone_l1`` (one dict per recent shape)."""
    return {}


def _piecewise_sup(noise: _CellPairNoise, radius: float, orders: np.ndarray, power: int) -> np.ndarray:
    """Certified sup for a histogram density of bin width w (``PiecewiseNoise``).

    Between multiples of w the integral I(s) = int f(x-s)^a f(x)^{1-a} is linear in s (the cells' lengths are),
    so r_a is monotone there. Scalar: the sup over (0, D] is attained at some k w <= D or at D (exact). L1: on
    (0, w] r_a(s)/s = log(1 + t (I(w) - 1)) / ((a-1) t w) decreases in t, so its sup is the s -> 0 limit; on each
    later interval log I(s)/s is unimodal and its sup is found exactly (``_piecewise_l1_bound``).
    """
    width = noise.shift_knot_spacing
    count = int(np.floor(radius / width + 1e-12))
    at_radius = log_renyi_moment(*noise.shift_pair_masses(radius), orders)
    log_moment = np.vstack([noise.knot_log_moments(count, orders), at_radius])  # rows: s = w, 2w, ..., count w, D
    if power == 0:
        return np.maximum(log_moment.max(axis=0), 0.0) / (orders - 1.0)
    best = noise.small_shift_slope(orders) * radius
    intervals = np.arange(1, count + 1)  # interval k: [k w, min((k+1) w, D)], its ends at log_moment rows k-1, k
    ends = np.minimum((intervals + 1) * width, radius)
    intervals = intervals[ends > intervals * width]
    return np.maximum(best, _piecewise_l1_bound(intervals, log_moment, width, radius, count, orders))


def _piecewise_l1_bound(intervals, log_moment, width: float, radius: float, count: int, orders) -> np.ndarray:
    """C max over the given intervals k (``_piecewise_sup``) of sup_{s in [k w, s2]} r_a(s)/s, s2 the interval's
    right knot.

    There log I(s) = log((1 - t) I_left + t I_right), t linear in s, is concave in s, so log I(s)/s is unimodal
    (its derivative has the sign of s g' - g, non-increasing as (s g' - g)' = s g'' <= 0): the sup is at an end or
    where s g'(s) = g(s), found by bisection; the bracket [lo, hi] left by it contributes max(g(lo), g(hi))/lo (g is
    monotone there), so the result is a bound, tight to ~1e-12.
    """
    if intervals.size == 0:
        return np.zeros(orders.shape)
    log_left, log_right = log_moment[intervals - 1], log_moment[intervals]
    left = np.broadcast_to((intervals * width)[:, None], log_left.shape)
    right = np.broadcast_to(np.where(intervals < count, (intervals + 1) * width, radius)[:, None], log_left.shape)
    chords = (left, right, log_left, log_right)
    inside = (_chord_stationarity(left, *chords) > 0) & (_chord_stationarity(right, *chords) < 0)
    bracketed = tuple(part[inside] for part in chords)  # only (interval, order) pairs with an interior sup
    lo, hi = bracketed[0].copy(), bracketed[1].copy()
    for _ in range(_BISECTIONS):
        middle = 0.5 * (lo + hi)
        up = _chord_stationarity(middle, *bracketed) > 0
        lo, hi = np.where(up, middle, lo), np.where(up, hi, middle)
    peak = np.zeros(log_left.shape)
    with np.errstate(invalid="ignore"):
        ends = np.maximum(log_left / left, log_right / right)
        peak[inside] = np.maximum(_log_chord_integral(lo, *bracketed), _log_chord_integral(hi, *bracketed)) / lo
    return radius * (np.maximum(np.maximum(ends, peak), 0.0) / (orders - 1.0)).max(axis=0)


def _log_chord_integral(shift, left, right, log_left, log_right):
    """log I(s) with I linear in s between I(left) = e^log_left and I(right) = e^log_right."""
    fraction = (shift - left) / (right - left)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.logaddexp(np.log1p(-fraction) + log_left, np.log(fraction) + log_right)


def _chord_stationarity(shift, left, right, log_left, log_right):
    """s g'(s) - g(s) for g = ``_log_chord_integral``: non-increasing in s (``_piecewise_l1_bound``)."""
    log_i = _log_chord_integral(shift, left, right, log_left, log_right)
    high, low = np.maximum(log_left, log_right), np.minimum(log_left, log_right)
    with np.errstate(invalid="ignore", over="ignore"):
        slope = np.sign(log_right - log_left) * np.exp(high - log_i) * -np.expm1(low - high) / (right - left)
    return np.where(np.isfinite(log_i), shift * slope - log_i, -np.inf)


def _knots(radius: float, spacing: float) -> np.ndarray:
    """The multiples k * spacing <= radius (k >= 1), then radius itself."""
    count = int(np.floor(radius / spacing + 1e-12))
    return np.append(spacing * np.arange(1, count + 1), radius)


def small_shift_slope(noise: Noise, orders: np.ndarray) -> np.ndarray:
    """lim_{s -> 0} r_a(s)/s: 0 for a continuous density (r_a(s) = O(s^2)); a density with jumps supplies it
    through its ``small_shift_slope`` method (r_a falls off only linearly in s there)."""
    slope = getattr(noise, "small_shift_slope", None)
    return np.zeros(orders.shape) if slope is None else np.asarray(slope(orders), dtype=float)


def unbounded_l2_reason(noise: Noise, geometry: Geometry) -> str | None:
    """Why no dimension-free L2 bound exists for this step, or None.

    With infinite Fisher information (a jump, or a divergent integral) r_a(s)/s^2 -> inf as s -> 0: a shift of
    L2 norm C spread over d coordinates costs ~ d * r_a(C/sqrt d), which grows without bound in d.
    """
    if geometry.shift_exponent == 2 and isinstance(noise, Noise) and not np.isfinite(noise.fisher_information):
        return (
            "no dimension-free L2 bound: the density is not smooth (infinite Fisher information), so the "
            "privacy loss of an L2-clipped query grows without bound with the dimension; use Scalar or L1Ball"
        )
    return None
