"""Certified sup over shifts (docs/accounting.md, "Certified suprema over shifts").

Laplace (every geometry) has its sup from the closed form's monotonicity: ``closed_forms``.

A family with a proven scalar dominating pair (``proven_shift_monotone``: LMO, Laplace) has r_a(s) and both
Poisson-mixture directions non-decreasing in s. Its Scalar sup is the value at s = D, and ``monotone_l1_sup``
certifies the L1 sup of r_a(s)/s by brackets on each shift interval [s1, s2] (r_a(s) <= r_a(s2), and the
Lipschitz bracket r_a(s) <= r_a(s1) + c (s - s1)).

Scalar geometry, a density p symmetric and non-increasing in |x| (``Noise.symmetric_unimodal``, e.g. LMO):
``envelope_renyi`` bounds r_a on a whole shift interval [s1, s2] by one quadrature pair, and a branch and bound
over [s0, D] (s0 = ``FIRST_SHIFT_FRACTION`` D) returns the max of these bounds over its leaf intervals, a sound
bound. It bisects an interval, for the orders concerned, while its bound exceeds the best point value by more
than ``RELATIVE_TOLERANCE`` (at most ``_MAX_ENVELOPES`` envelopes; past it the bound stays sound, only looser).
The shifts in (0, s0] get the Lipschitz bound ``lipschitz_shift_rdp``. The Poisson-subsampled scalar step
(both directions of the mixture) is certified the same way. No built-in family needs this path (their dominating
pairs give the monotone one); it serves a user family that declares ``symmetric_unimodal`` without such a proof.
"""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np

from .._logmath import log_mixture
from .._quadrature import renyi_from_log_excess
from ..geometry import Scalar
from ..noise import Noise
from ..pld.registry import dominating_shift_closed_form
from .divergence import numeric_log_excess, split_points

RELATIVE_TOLERANCE = 1e-4  # the certified sup exceeds the best value found by at most this, unless out of budget
FIRST_SHIFT_FRACTION = 1e-3  # s0 / C: the branch and bound covers [s0, C]
_START_INTERVALS = 3  # geometric intervals of ratio 10 on [s0, D]
_LOG_MAX_FLOAT = math.log(sys.float_info.max)
_MAX_ENVELOPES = 200  # envelope quadrature pairs per call (each for the orders still open): bounded time
MONOTONE_FIRST_FRACTION = 1e-6  # s0 / C of ``monotone_l1_sup``: (0, s0] gets the Lipschitz bound
# work per call, bounded (past it the bound stays sound, only looser): shifts, and evaluations per order
_MAX_MONOTONE_SHIFTS = 1000
_MAX_MONOTONE_EVALUATIONS = 60
_LATTICE_STEPS = 2.0**30  # lattice points per decade of the shifts of ``monotone_l1_sup``
MONOTONE_TOLERANCE = 1e-3  # ``monotone_l1_sup`` exceeds the best ratio found by at most this, unless out of budget


def envelope_renyi(
    noise: Noise, lower: float, upper: float, orders: np.ndarray, sample_rate: float = 1.0
) -> np.ndarray:
    """An upper bound, for every s in [lower, upper] and a symmetric unimodal noise p, on r_a(s) (sample_rate
    q = 1) or on both directions of the Poisson mixture m_s = (1-q) p + q p_s, max(D_a(m_s||p), D_a(p||m_s)).

    With phi_a(L) = e^{aL} - 1 - a(e^L - 1) (the quadrature's form): D_a(m||p) = log(1 + int p phi_a(log m/p))
    / (a-1) and D_a(p||m) = log(1 + int m phi_a(log p/m)) / (a-1). Both integrands, as functions of m(x), are
    convex with minimum 0 at m = p. Every p_s = p(. - s) lies between punder(x) = min(p(x - lower), p(x - upper))
    and pbar(x) = p(x - clip(x, lower, upper)), so m_s lies between m- and m+ (the mixtures with punder, pbar),
    and each integrand is at most its value at max(m+, p) plus its value at min(m-, p).
    """

    def high(x):
        log_p = noise.logpdf(x)
        return np.maximum(log_mixture(log_p, noise.logpdf(x - np.clip(x, lower, upper)), sample_rate), log_p), log_p

    def low(x):
        log_p = noise.logpdf(x)
        log_under = np.minimum(noise.logpdf(x - lower), noise.logpdf(x - upper))
        return np.minimum(log_mixture(log_p, log_under, sample_rate), log_p), log_p

    # max(pbar, p) has kinks at p's kinks, at lower/2 (where |x - lower| = |x|), lower, upper and pbar's shifted
    # kinks; min(punder, p) at p's kinks, upper/2, the middle (punder switches ends) and punder's shifted kinks
    kinks, middle = split_points(noise), 0.5 * (lower + upper)
    high_splits = np.concatenate(
        [kinks, kinks[kinks < 0] + lower, kinks[kinks > 0] + upper, [0.5 * lower, lower, upper]]
    )
    low_splits = np.concatenate(
        [kinks, kinks[kinks < middle - upper] + upper, kinks[kinks > middle - lower] + lower, [0.5 * upper, middle]]
    )

    def renyi_bound(pairs) -> np.ndarray:
        log_excess = np.logaddexp(
            *(numeric_log_excess(pair, splits, noise.typical_scale, orders) for pair, splits in pairs)
        )
        return renyi_from_log_excess(log_excess, orders)

    remove = renyi_bound([(high, high_splits), (low, low_splits)])
    if sample_rate == 1.0:
        return remove
    add = renyi_bound([(lambda x: high(x)[::-1], high_splits), (lambda x: low(x)[::-1], low_splits)])
    return np.maximum(remove, add)


def proven_shift_monotone(noise: Noise, radius: float) -> bool:
    """True where the family proves its scalar hockey-stick curve non-decreasing in the shift on (0, radius] (a
    dominating pair registered for ``Scalar(radius)``, ``pld.registry.dominating_shift_closed_form``).

    Then every f-divergence of the pair is non-decreasing in s too: D_f(P||Q) = int_0^inf (E_g(P||Q) - (1-g)_+)
    f''(g) dg with E_g(P||Q) = int (p - g q)_+ (Liese & Vajda 2006, IEEE Trans. Inf. Theory 52(10), Thm. 11), so
    r_a(s) (f(t) = t^a) and both directions of the Poisson mixtures are (docs/accounting.md, "Certified suprema
    over shifts").
    """
    return dominating_shift_closed_form(noise, Scalar(radius)) is True


def monotone_l1_sup(point, radius: float, orders: np.ndarray, lipschitz: float, floor: np.ndarray) -> np.ndarray:
    """A certified upper bound on C sup_{s0 <= s <= C} r_a(s)/s (C = ``radius``, s0 = ``MONOTONE_FIRST_FRACTION`` C)
    for r_a non-decreasing in s at every order, with log p ``lipschitz``-Lipschitz; ``point(shifts, orders)``
    gives r_a at each shift (rows), ``floor`` a value the caller takes the max with anyway.

    Two brackets on an interval [a, b] of evaluated shifts, for every s in it:
    - monotone: r_a(s) <= min_{t >= b} r_a(t) over the evaluated t (the min also steps over an unresolved +inf),
      so r_a(s)/s <= that / a;
    - Lipschitz: p_s/p_a <= e^{L (s - a)} pointwise, so int p_s^a p^{1-a} <= e^{a L (s - a)} int p_a^a p^{1-a}
      and r_a(s) <= r_a(a) + c (s - a), c = a L / (a - 1). This one stays tight where r_a(s)/s is flat.
    Together r_a(s)/s <= min(R, r_a(a) + c (s - a))/s with R the monotone bracket; up to the crossing
    t = a + (R - r_a(a))/c that is (r_a(a) + c (s - a))/s, monotone in s, and after it R/s, decreasing: so its sup
    on [a, b] is max(r_a(a)/a, the value at min(t, b)).
    Every interval whose bound exceeds the order's best evaluated ratio by more than ``MONOTONE_TOLERANCE`` gets
    the ends it lacks for that order evaluated, or is bisected at its geometric midpoint (only the orders that
    ask for it are evaluated), within ``_MAX_MONOTONE_SHIFTS`` shifts and ``_MAX_MONOTONE_EVALUATIONS`` shifts per
    order; the result is the max of the interval bounds (a bound, never the max of point values).
    """
    slope = orders * lipschitz / (orders - 1.0)

    def evaluated(at, some):  # NaN marks "not evaluated" below: a NaN value would count as unresolved (+inf)
        values = point(at, some)
        return np.where(np.isnan(values), np.inf, values)

    # shifts sit on a fixed lattice 10^(k / _LATTICE_STEPS), k an integer (the radius itself apart), so that a
    # caller can reuse values across radii (``unsampled_rdp`` memoises them at unit scale)
    top = math.log10(radius) * _LATTICE_STEPS
    first = math.floor(math.log10(MONOTONE_FIRST_FRACTION * radius))  # a decade <= s0: the floor covers below it
    keys = np.append(_LATTICE_STEPS * np.arange(first, math.ceil(math.log10(radius))), top)
    keys = np.unique(np.minimum(keys, top))
    shifts = _lattice_shifts(keys, radius, top)
    values = evaluated(shifts, orders)  # NaN where an order was not evaluated at a shift
    while True:
        bounds, best = _monotone_bounds(shifts, values, radius, slope, floor)
        open_orders = (~np.isnan(values)).sum(axis=0) < _MAX_MONOTONE_EVALUATIONS
        loose = (bounds > best * (1.0 + MONOTONE_TOLERANCE)) & open_orders  # (interval, order)
        middle_keys = np.floor(0.5 * (keys[:-1] + keys[1:]))  # on the lattice, inside unless too narrow
        loose &= (middle_keys > keys[:-1])[:, None]
        room = _MAX_MONOTONE_SHIFTS - shifts.size
        if not loose.any() or room <= 0:
            return np.maximum(best, bounds.max(axis=0))
        missing = np.zeros(values.shape, dtype=bool)  # ends a loose interval lacks, per order
        missing[:-1] |= loose & np.isnan(values[:-1])
        missing[1:] |= loose & np.isnan(values[1:])
        for index in np.flatnonzero(missing.any(axis=1)):
            values[index, missing[index]] = evaluated([shifts[index]], orders[missing[index]])[0]
        split = loose & ~missing[:-1] & ~missing[1:]
        wanted = np.flatnonzero(split.any(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 and inf/inf only where not split
            excess = np.max(np.where(split[wanted], bounds[wanted] / best, 0.0), axis=1)
        wanted = wanted[np.argsort(-excess)[:room]]  # the relatively loosest first when out of room
        new_keys = middle_keys[wanted]
        middles = _lattice_shifts(new_keys, radius, top)
        added = np.full((middles.size, orders.size), np.nan)
        for row, interval in enumerate(wanted):
            active = split[interval]
            added[row, active] = evaluated([middles[row]], orders[active])[0]
        keys = np.concatenate([keys, new_keys])
        shifts = np.concatenate([shifts, middles])
        values = np.concatenate([values, added])
        by_shift = np.argsort(keys)
        keys, shifts, values = keys[by_shift], shifts[by_shift], values[by_shift]


def _lattice_shifts(keys: np.ndarray, radius: float, top: float) -> np.ndarray:
    """The shifts 10^(k / _LATTICE_STEPS) of lattice keys k, and ``radius`` itself for its key ``top``."""
    return np.where(keys == top, radius, 10.0 ** (keys / _LATTICE_STEPS))


def _monotone_bounds(shifts, values, radius: float, slope: np.ndarray, floor: np.ndarray):
    """(bound per interval [s_i, s_{i+1}] and order, best evaluated ratio per order) for ``monotone_l1_sup``."""
    evaluated = ~np.isnan(values)
    known = np.where(evaluated, values, np.inf)
    at_most = np.minimum.accumulate(known[::-1], axis=0)[::-1]  # row i: min over j >= i
    left, right, at_left, above = shifts[:-1, None], shifts[1:, None], known[:-1], at_most[1:]
    # r(s) <= min(above, at_left + slope (s - left)): the second reaches the first at s = crossing; before it the
    # ratio is monotone (its max at an end), after it above/s decreases, so the sup is at left or at min(crossing,
    # right). A left end not evaluated for an order, or unresolved (inf), leaves the monotone bracket above/left.
    with np.errstate(invalid="ignore"):  # inf - inf (NaN) only where the left end is not finite: not used
        crossing = np.clip(left + np.maximum(above - at_left, 0.0) / slope, left, right)
    lipschitz = np.maximum(at_left / left, np.minimum(above, at_left + slope * (crossing - left)) / crossing)
    bounds = radius * np.where(np.isfinite(at_left), lipschitz, above / left)
    ratios = radius * np.where(np.isfinite(values), values, 0.0) / shifts[:, None]  # unresolved: not a value
    return bounds, np.maximum(floor, ratios.max(axis=0))


def lipschitz_shift_rdp(noise: Noise, shift: float, orders: np.ndarray, sample_rate: float = 1.0) -> np.ndarray:
    """An RDP bound for every shift in (0, ``shift``], and for both directions of its Poisson mixture at rate q:
    |log p_s/p| <= L s (L the Lipschitz constant of log p), so the mixture's ratio m_s/p = 1 - q + q p_s/p has
    |log| <= eps = log(1 + q (e^{L s} - 1)) (both directions: 1/(1 - q(1 - e^-e0)) <= 1 + q(e^e0 - 1)), and eps-DP
    gives RDP <= min(eps, a eps^2 / 2) (Bun & Steinke 2016, arXiv:1605.02065, Prop. 3.3)."""
    eps = noise.log_density_lipschitz * shift
    if sample_rate < 1.0 and eps < _LOG_MAX_FLOAT:
        eps = math.log1p(sample_rate * math.expm1(eps))  # <= the unsampled eps always
    return np.minimum(eps, 0.5 * orders * eps * eps)


def monotone_small_shift_bound(noise: Noise, radius: float, orders: np.ndarray) -> np.ndarray:
    """C sup_{0 < s <= s0} r_a(s)/s (s0 = ``MONOTONE_FIRST_FRACTION`` C): r_a(s) <= min(L s, a (L s)^2 / 2)
    (``lipschitz_shift_rdp``), and min(L, a L^2 s / 2) is non-decreasing in s, so its value at s0 divided by s0."""
    first = MONOTONE_FIRST_FRACTION * radius
    return radius / first * lipschitz_shift_rdp(noise, first, orders)


def has_certified_scalar_sup(noise: Noise) -> bool:
    """Whether ``scalar_sup`` applies: a symmetric unimodal density whose log has a known Lipschitz constant."""
    return noise.symmetric_unimodal and math.isfinite(noise.log_density_lipschitz)


def scalar_sup(noise: Noise, sensitivity: float, orders: np.ndarray, point, sample_rate: float = 1.0) -> np.ndarray:
    """Certified sup over s in (0, D] of r_a(s) (q = 1) or of the max of both Poisson-mixture directions.

    ``point(shifts, orders)`` evaluates the divergence at each shift (rows).
    """
    near_zero = lipschitz_shift_rdp(noise, FIRST_SHIFT_FRACTION * sensitivity, orders, sample_rate)

    def envelope(left, right, some):
        return envelope_renyi(noise, left, right, some, sample_rate)

    return np.maximum(_branch_and_bound(point, envelope, sensitivity, orders, near_zero), near_zero)


def _branch_and_bound(point, envelope, radius: float, orders: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """A certified upper bound on sup_{s0<=s<=D} v_a(s) (D = ``radius``), by envelopes and branch and bound.

    ``point(shifts, orders)`` gives v_a at each shift (rows), ``envelope(left, right, orders)`` an upper bound on
    v_a over [left, right]. ``floor`` (per order) is a value the caller takes the max with anyway: intervals below
    it are not refined.
    """
    shifts = radius * np.geomspace(FIRST_SHIFT_FRACTION, 1.0, _START_INTERVALS + 1)
    best = np.maximum(floor, point(shifts, orders).max(axis=0))
    intervals = [(left, right, envelope(left, right, orders)) for left, right in itertools.pairwise(shifts)]
    spent = len(intervals)
    while True:
        split: list[tuple] = []
        kept: list[tuple] = []
        for item in intervals:
            (split if np.any(item[2] > best * (1.0 + RELATIVE_TOLERANCE)) else kept).append(item)
        if not split or spent >= _MAX_ENVELOPES:
            break
        for left, right, bound in split:
            if spent >= _MAX_ENVELOPES:
                kept.append((left, right, bound))
                continue
            active = bound > best * (1.0 + RELATIVE_TOLERANCE)
            middle = math.sqrt(left * right)
            best[active] = np.maximum(best[active], point([middle], orders[active])[0])
            for child_left, child_right in ((left, middle), (middle, right)):
                child = bound.copy()
                child[active] = np.minimum(bound[active], envelope(child_left, child_right, orders[active]))
                kept.append((child_left, child_right, child))
            spent += 2
        intervals = kept
    return np.max([bound for _, _, bound in intervals], axis=0)
