"""Certified sup over shifts (docs/accounting.md, "Certified suprema over shifts").

Laplace, every geometry: from the closed form, r_a(s) and r_a(s)/s are non-decreasing in s and r_a(s)/s^2 is
non-increasing, so the sups over (0, C] are r_a(C) (Scalar, L1) and the s -> 0 limit a C^2 / (2 b^2) (L2).

Scalar geometry, a density p symmetric and non-increasing in |x| (``Noise.symmetric_unimodal``, e.g. LMO):
``envelope_renyi`` bounds r_a on a whole shift interval [s1, s2] by one quadrature pair, and a branch and bound
over [s0, D] (s0 = ``FIRST_SHIFT_FRACTION`` D) returns the max of these bounds over its leaf intervals, a sound
bound. It bisects an interval, for the orders concerned, while its bound exceeds the best point value by more
than ``RELATIVE_TOLERANCE`` (at most ``_MAX_ENVELOPES`` envelopes; past it the bound stays sound, only looser).
The shifts in (0, s0] get the Lipschitz bound ``small_shift_bound``.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._quadrature import renyi_from_log_excess
from ..noise import Noise
from .divergence import _laplace_renyi, _split_points, numeric_log_excess, renyi_shift

RELATIVE_TOLERANCE = 1e-4  # the certified sup exceeds the best value found by at most this, unless out of budget
FIRST_SHIFT_FRACTION = 1e-3  # s0 / C: the branch and bound covers [s0, C]
ROUNDING_MARGIN = 1e-12  # relative inflation of a closed-form sup for floating-point rounding
_START_INTERVALS = 3  # geometric intervals of ratio 10 on [s0, D]
_MAX_ENVELOPES = 200  # envelope quadrature pairs per call (each for the orders still open): bounded time


def laplace_sup(scale: float, radius: float, orders: np.ndarray, power: int) -> np.ndarray:
    """C^k sup_{0<s<=C} r_a(s)/s^k for Laplace(b), exactly.

    With A = a/(2a-1), (a-1) r_a(s) = g(s) = log(A e^{(a-1)s/b} + (1-A) e^{-as/b}) (Mironov 2017, Table II) is
    convex with g(0) = g'(0) = 0, so g and g(s)/s are non-decreasing: k = 0, 1 give r_a(C). g''(s) = w(1-w)(2a-1)^2
    / b^2 with w = A e^{(a-1)s/b}/e^{g} increasing from A > 1/2, so g'' decreases and g(s)/s^2 = int_0^1 (1-t)
    g''(ts) dt does too: k = 2 gives the limit g''(0)/(2(a-1)) C^2 = a C^2 / (2 b^2).
    """
    if power == 2:
        return orders * radius**2 / (2.0 * scale**2) * (1.0 + ROUNDING_MARGIN)
    return _laplace_renyi(scale, np.array([radius]), orders)[0] * (1.0 + ROUNDING_MARGIN)


def envelope_renyi(noise: Noise, lower: float, upper: float, orders: np.ndarray) -> np.ndarray:
    """An upper bound on r_a(s) for every s in [lower, upper], for a symmetric unimodal noise p.

    I(s) - 1 = int p phi_a(log p_s/p) with p_s = p(. - s) and phi_a(L) = e^{aL} - 1 - a(e^L - 1) >= 0, which
    decreases for L < 0 and increases for L > 0. Every p_s lies between punder(x) = min(p(x - lower),
    p(x - upper)) and pbar(x) = p(x - clip(x, lower, upper)), so phi_a(log p_s/p) <= phi_a(log max(pbar, p)/p)
    + phi_a(log min(punder, p)/p): two quadratures, each split where its integrand has a kink.
    """
    def above(x):
        log_p = noise.logpdf(x)
        return np.maximum(noise.logpdf(x - np.clip(x, lower, upper)), log_p), log_p

    def below(x):
        log_p = noise.logpdf(x)
        return np.minimum(np.minimum(noise.logpdf(x - lower), noise.logpdf(x - upper)), log_p), log_p

    # max(pbar, p) has kinks at p's kinks, at lower/2 (where |x - lower| = |x|), lower, upper and pbar's shifted
    # kinks; min(punder, p) at p's kinks, upper/2, the middle (punder switches ends) and punder's shifted kinks
    kinks, middle = _split_points(noise), 0.5 * (lower + upper)
    above_splits = np.concatenate([kinks, kinks[kinks < 0] + lower, kinks[kinks > 0] + upper,
                                   [0.5 * lower, lower, upper]])
    below_splits = np.concatenate([kinks, kinks[kinks < middle - upper] + upper, kinks[kinks > middle - lower] + lower,
                                   [0.5 * upper, middle]])
    log_excess = np.logaddexp(numeric_log_excess(above, above_splits, noise.typical_scale, orders),
                              numeric_log_excess(below, below_splits, noise.typical_scale, orders))
    return renyi_from_log_excess(log_excess, orders)


def small_shift_bound(noise: Noise, radius: float, orders: np.ndarray) -> np.ndarray:
    """sup_{0<s<=s0} r_a(s) <= min(L s0, a (L s0)^2 / 2), L the Lipschitz constant of log p: a shift s is
    (L s)-DP, and eps-DP implies (eps^2/2)-zCDP (Bun & Steinke 2016, arXiv:1605.02065, Prop. 3.3)."""
    eps0 = noise.log_density_lipschitz * FIRST_SHIFT_FRACTION * radius
    return np.minimum(eps0, 0.5 * orders * eps0 * eps0)


def unimodal_sup(noise: Noise, radius: float, orders: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """A certified upper bound on sup_{s0<=s<=D} r_a(s) (D = ``radius``), by envelopes and branch and bound.

    ``floor`` (per order) is a value the caller takes the max with anyway: intervals below it are not refined.
    """
    def envelope(left, right, active):
        return envelope_renyi(noise, left, right, orders[active])

    every = np.ones(orders.shape, dtype=bool)
    shifts = radius * np.geomspace(FIRST_SHIFT_FRACTION, 1.0, _START_INTERVALS + 1)
    best = np.maximum(floor, renyi_shift(noise, shifts, orders).max(axis=0))
    intervals = [(left, right, envelope(left, right, every)) for left, right in itertools.pairwise(shifts)]
    spent = len(intervals)
    while True:
        split, kept = [], []
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
            best[active] = np.maximum(best[active], renyi_shift(noise, [middle], orders[active])[0])
            for child_left, child_right in ((left, middle), (middle, right)):
                child = bound.copy()
                child[active] = np.minimum(bound[active], envelope(child_left, child_right, active))
                kept.append((child_left, child_right, child))
            spent += 2
        intervals = kept
    return np.max([bound for _, _, bound in intervals], axis=0)
