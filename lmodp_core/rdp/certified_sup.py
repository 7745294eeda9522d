"""Certified sup over shifts (docs/accounting.md, "Certified suprema over shifts").

Laplace (every geometry) has its sup from the closed form's monotonicity: ``closed_forms``.

Scalar geometry, a density p symmetric and non-increasing in |x| (``Noise.symmetric_unimodal``, e.g. LMO):
``envelope_renyi`` bounds r_a on a whole shift interval [s1, s2] by one quadrature pair, and a branch and bound
over [s0, D] (s0 = ``FIRST_SHIFT_FRACTION`` D) returns the max of these bounds over its leaf intervals, a sound
bound. It bisects an interval, for the orders concerned, while its bound exceeds the best point value by more
than ``RELATIVE_TOLERANCE`` (at most ``_MAX_ENVELOPES`` envelopes; past it the bound stays sound, only looser).
The shifts in (0, s0] get the Lipschitz bound ``_small_shift_bound``. The Poisson-subsampled scalar step
(both directions of the mixture) is certified the same way.
"""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np

from .._logmath import log_mixture
from .._quadrature import renyi_from_log_excess
from ..noise import Noise
from .divergence import numeric_log_excess, split_points

RELATIVE_TOLERANCE = 1e-4  # the certified sup exceeds the best value found by at most this, unless out of budget
FIRST_SHIFT_FRACTION = 1e-3  # s0 / C: the branch and bound covers [s0, C]
_START_INTERVALS = 3  # geometric intervals of ratio 10 on [s0, D]
_LOG_MAX_FLOAT = math.log(sys.float_info.max)
_MAX_ENVELOPES = 200  # envelope quadrature pairs per call (each for the orders still open): bounded time


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


def has_certified_scalar_sup(noise: Noise) -> bool:
    """Whether ``scalar_sup`` applies: a symmetric unimodal density whose log has a known Lipschitz constant."""
    return noise.symmetric_unimodal and math.isfinite(noise.log_density_lipschitz)


def scalar_sup(noise: Noise, sensitivity: float, orders: np.ndarray, point, sample_rate: float = 1.0) -> np.ndarray:
    """Certified sup over s in (0, D] of r_a(s) (q = 1) or of the max of both Poisson-mixture directions.

    ``point(shifts, orders)`` evaluates the divergence at each shift (rows).
    """
    near_zero = _small_shift_bound(noise, sensitivity, orders, sample_rate)

    def envelope(left, right, some):
        return envelope_renyi(noise, left, right, some, sample_rate)

    return np.maximum(_branch_and_bound(point, envelope, sensitivity, orders, near_zero), near_zero)


def _small_shift_bound(noise: Noise, radius: float, orders: np.ndarray, sample_rate: float) -> np.ndarray:
    """The bound for s in (0, s0]: |log p_s/p| <= L s0 (L the Lipschitz constant of log p), so the mixture's ratio
    m_s/p = 1 - q + q p_s/p has |log| <= eps = log(1 + q (e^{L s0} - 1)) (both directions: 1/(1 - q(1 - e^-e0))
    <= 1 + q(e^e0 - 1)), and eps-DP gives RDP <= min(eps, a eps^2 / 2) (Bun & Steinke 2016, arXiv:1605.02065,
    Prop. 3.3)."""
    eps0 = noise.log_density_lipschitz * FIRST_SHIFT_FRACTION * radius
    eps = math.log1p(sample_rate * math.expm1(eps0)) if eps0 < _LOG_MAX_FLOAT else eps0  # eps <= eps0 always
    return np.minimum(eps, 0.5 * orders * eps * eps)


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
