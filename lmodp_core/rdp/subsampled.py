"""Poisson-subsampled RDP (docs/theory.md §4.4), add/remove neighbours.

- Gaussian, any geometry: the exact sampled-Gaussian RDP (Mironov, Talwar, Zhang 2019), integer and
  fractional orders.
- Scalar geometry, any density: both directions by quadrature, sup over shifts (the value at the sensitivity for
  a family with a proven dominating pair, certified for symmetric unimodal densities, ``certified_sup``), report
  the max.
- Vector geometry, non-Gaussian, integer orders: the smaller of the general bound of Zhu & Wang 2019 (Thm. 6) and
  the max of two direction-wise bounds proved in ``binomial_rdp`` (no factor 3, so no floor as the noise grows).
  A fractional order uses the chord of the log-moment between the two integer orders around it
  (``chord_between_integer_orders``), never above the next integer order's value.
Subsampling never hurts (joint quasi-convexity of Renyi divergence), so every bound is also capped by the
unsampled per-step RDP.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .._logmath import log1mexp, log_expm1, log_sub, logsumexp
from ..noise import Noise
from .certified_sup import has_certified_scalar_sup, proven_shift_monotone, scalar_sup
from .divergence import renyi_poisson_mixture
from .per_step import SUP_MARGIN, sup_over_shifts

_SERIES_TOL = -30.0  # stop the fractional-order series once both terms fall below e^-30 relative
_SERIES_MAX_TERMS = 10_000  # past this a fractional order uses the integer orders around it
_SERIES_MIN_LOG_MOMENT = 1e-8  # below this a fractional order uses the integer orders around it
_ADD_CURVATURE_SLACK = 1e-9  # added to the log of the exact add-direction curvature against rounding


def _log_binom(n, k):
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def _log_erfc(x: float) -> float:
    return math.log(2.0) + float(special.log_ndtr(-x * math.sqrt(2.0)))  # erfc(x) = 2 Phi(-x sqrt 2)


def _half_inverse_variance(sigma: float) -> float:
    """1/(2 sigma^2), inf (not OverflowError) for a tiny sigma."""
    return 0.5 / sigma / sigma


def _sampled_gaussian_log_moment_int(sample_rate: float, sigma: float, order: int) -> float:
    """log A_a for integer a, A_a = sum_k C(a,k) (1-q)^{a-k} q^k exp((k^2 - k)/(2 sigma^2)).

    Summed as A_a = 1 + sum_{k>=2} C(a,k) (1-q)^{a-k} q^k (e^{(k^2-k)/(2 sigma^2)} - 1) (the binomial weights sum to
    1): every term is >= 0, so an excess far below 1e-16 (large sigma, where T of them still add up) is kept.
    """
    if order < 2:
        return 0.0
    k = np.arange(2.0, order + 1.0)
    with np.errstate(over="ignore", divide="ignore"):
        growth = (k * k - k) * _half_inverse_variance(sigma)
        log_growth_excess = growth + log1mexp(-growth)  # log(e^g - 1)
    terms = (
        _log_binom(float(order), k)
        + k * math.log(sample_rate)
        + (order - k) * math.log1p(-sample_rate)
        + log_growth_excess
    )
    if np.any(terms == math.inf):  # logsumexp would give inf - inf = NaN
        return math.inf
    return float(np.logaddexp(0.0, logsumexp(terms)))


def _sampled_gaussian_log_moment_frac(sample_rate: float, sigma: float, order: float) -> float | None:
    """log A_a for fractional a: the two-sided series of Mironov-Talwar-Zhang 2019, §3.3 (None: no convergence
    within ``_SERIES_MAX_TERMS`` terms or a non-finite term)."""
    log_a0 = log_a1 = -math.inf
    half_inv_var = _half_inverse_variance(sigma)
    z0 = sigma * sigma * math.log(1.0 / sample_rate - 1.0) + 0.5
    log_q, log_1mq = math.log(sample_rate), math.log1p(-sample_rate)
    for i in range(_SERIES_MAX_TERMS):
        coef = special.binom(order, i)
        if coef == 0 or not math.isfinite(coef):
            return None
        log_coef = math.log(abs(coef))
        j = order - i
        log_t0 = log_coef + i * log_q + j * log_1mq
        log_t1 = log_coef + j * log_q + i * log_1mq
        log_e0 = math.log(0.5) + _log_erfc((i - z0) / (math.sqrt(2.0) * sigma))
        log_e1 = math.log(0.5) + _log_erfc((z0 - j) / (math.sqrt(2.0) * sigma))
        log_s0 = log_t0 + (i * i - i) * half_inv_var + log_e0
        log_s1 = log_t1 + (j * j - j) * half_inv_var + log_e1
        if not (math.isfinite(log_s0) or log_s0 == -math.inf) or not (math.isfinite(log_s1) or log_s1 == -math.inf):
            return None
        if coef > 0:
            log_a0, log_a1 = np.logaddexp(log_a0, log_s0), np.logaddexp(log_a1, log_s1)
        else:
            log_a0, log_a1 = log_sub(log_a0, log_s0), log_sub(log_a1, log_s1)
        if max(log_s0, log_s1) < _SERIES_TOL + max(log_a0, log_a1, 0.0):
            break
    else:
        return None
    return float(np.logaddexp(log_a0, log_a1))


def sampled_gaussian_rdp(sample_rate: float, noise_multiplier: float, orders) -> np.ndarray:
    """Exact RDP of one Poisson-subsampled Gaussian step (sensitivity 1, std ``noise_multiplier``).

    Capped by the unsampled a/(2 sigma^2) (subsampling never hurts). A fractional order whose series does not
    converge, or whose log-moment is below ``_SERIES_MIN_LOG_MOMENT`` (where the series' rounding is no longer
    small against it), uses the chord of the log-moment between the neighbouring integer orders: (a-1) rho(a) is
    convex in a and 0 at a = 1, so the chord bounds it from above.
    """
    orders = np.atleast_1d(np.asarray(orders, dtype=float))
    unsampled = orders * _half_inverse_variance(noise_multiplier)  # a / (2 sigma^2)
    if sample_rate == 1.0 or not math.isfinite(_half_inverse_variance(noise_multiplier)):
        return unsampled
    out = np.empty_like(orders)
    for i, order in enumerate(orders):
        log_moment: float | None
        if float(order).is_integer():
            log_moment = _sampled_gaussian_log_moment_int(sample_rate, noise_multiplier, int(order))
        else:
            log_moment = _sampled_gaussian_log_moment_frac(sample_rate, noise_multiplier, float(order))
        if log_moment is None or log_moment < _SERIES_MIN_LOG_MOMENT:
            low, high = (
                _sampled_gaussian_log_moment_int(sample_rate, noise_multiplier, n)
                for n in (math.floor(order), math.ceil(order))
            )
            # chord of the convex log-moment (inf where the upper end is)
            log_moment = low + (order - math.floor(order)) * (high - low) if math.isfinite(high) else high
        out[i] = max(log_moment, 0.0) / (order - 1.0)
    return np.minimum(out, unsampled)


def scalar_subsampled_rdp(noise: Noise, sensitivity: float, sample_rate: float, orders) -> np.ndarray:
    """max(remove, add) RDP of a Poisson-subsampled scalar query, sup over shifts in (0, sensitivity]."""
    orders = np.atleast_1d(np.asarray(orders, dtype=float))

    def both_directions(shifts, some=orders):
        return np.array([np.maximum(*renyi_poisson_mixture(noise, s, sample_rate, some)) for s in shifts])

    if proven_shift_monotone(noise, sensitivity):  # both directions non-decreasing in s: the sup is at D
        return both_directions([sensitivity])[0]
    knots = getattr(noise, "shift_knot_spacing", None)  # exact sup for histogram densities
    if knots is None and has_certified_scalar_sup(noise):
        return scalar_sup(noise, sensitivity, orders, both_directions, sample_rate)
    return sup_over_shifts(both_directions, sensitivity, orders, knots) * (1.0 + SUP_MARGIN)


def integer_orders(orders) -> np.ndarray:
    """The largest integer order >= 2 that the bound of each order needs: ceil(a), at least 2."""
    return np.maximum(np.ceil(np.atleast_1d(np.asarray(orders, dtype=float))), 2.0)


def chord_between_integer_orders(bound_at_integers, orders) -> np.ndarray:
    """An RDP bound at any order > 1 from a bound ``bound_at_integers(int_orders)`` valid at integer orders >= 2.

    For n < a < n + 1, n >= 2, theta = a - n: the true RDP rho makes (a-1) rho(a) convex in a (a sup over pairs of
    log-moments of the privacy loss, van Erven & Harremoes 2014, arXiv:1206.2459, Cor. 2), so
        (a-1) rho(a) <= (1-theta) (n-1) rho(n) + theta n rho(n+1) <= (1-theta) (n-1) B(n) + theta n B(n+1),
    and rho(a) <= rho(n+1) <= B(n+1) (rho non-decreasing); the smaller of the two is returned. Orders in (1, 2]
    use B(2) (the chord from (1, 0) gives the same).
    """
    orders = np.atleast_1d(np.asarray(orders, dtype=float))
    upper = integer_orders(orders)
    lower = np.maximum(np.floor(orders), 2.0)
    needed = np.unique(np.concatenate([lower, upper]))
    at = np.asarray(bound_at_integers(needed), dtype=float)
    bound_upper, bound_lower = at[np.searchsorted(needed, upper)], at[np.searchsorted(needed, lower)]
    theta = orders - lower
    with np.errstate(invalid="ignore"):  # 0 * inf at integer orders, where the chord is not used
        chord = ((1.0 - theta) * (lower - 1.0) * bound_lower + theta * (upper - 1.0) * bound_upper) / (orders - 1.0)
    return np.where(orders > lower, np.minimum(chord, bound_upper), bound_upper)


def _integer_order_inputs(sample_rate: float, unsampled_at, orders):
    """Shared inputs of the integer-order Poisson bounds: (integer orders, eps(l) for l = 2..max, log q,
    log(1-q))."""
    int_orders = integer_orders(orders)
    eps_l = unsampled_at(np.arange(2, int(int_orders.max()) + 1, dtype=float))
    return int_orders, eps_l, math.log(sample_rate), math.log1p(-sample_rate)


def binomial_rdp(sample_rate: float, unsampled_at, orders) -> np.ndarray:
    """max(remove, add) for one Poisson-subsampled step of any mechanism whose unsampled RDP is eps(l).

    With Q the output law without the example, Q_v with it, X = Q_v/Q and P = (1-q) Q + q Q_v:
    remove, D_a(P || Q): E_Q[(1 - q + qX)^a] = sum_j C(a,j) (1-q)^{a-j} q^j E_Q[X^j] exactly (integer a), every
        coefficient is >= 0 and E_Q[X^j] = e^{(j-1) D_j(Q_v||Q)} <= e^{(j-1) eps(j)}.
    add, D_a(Q || P): E_Q[(1 + qY)^{1-a}] with Y = X - 1 >= -1, E_Q[Y] = 0, E_Q[Y^2] = e^{D_2(Q_v||Q)} - 1; with
        h(u) = (1+u)^{1-a}, h(u) <= 1 + (1-a) u + k u^2 on u >= -q for k = sup (h(u) - 1 - (1-a)u) / u^2 (see
        ``_log_add_curvature``), so E_Q[(1 + qY)^{1-a}] <= 1 + k q^2 (e^{eps(2)} - 1).
    Both are exact to leading order in q for the Gaussian (whose exact remove sum this is). Fractional orders:
    ``chord_between_integer_orders``.
    """
    return chord_between_integer_orders(lambda ints: _binomial_rdp_integer(sample_rate, unsampled_at, ints), orders)


def _log_add_curvature(order: int, sample_rate: float) -> float:
    """log(k q^2), k = sup_{u >= -q} (h(u) - 1 - (1-a)u) / u^2 for h(u) = (1+u)^{1-a}.

    h(u) - 1 - (1-a)u = u^2 int_0^1 (1-t) h''(tu) dt and h'' is decreasing, so the ratio is largest at u = -q:
    k q^2 = (1-q)^{1-a} - 1 - (a-1) q. Where (a-1) q <= 1e-3 this difference cancels, and the Lagrange bound
    k <= sup h''/2 = a(a-1)/2 (1-q)^{-a-1} is used instead (both are upper bounds; the exact form is smaller).
    """
    log_1mq = math.log1p(-sample_rate)
    lagrange = math.log(0.5 * order * (order - 1.0)) + 2 * math.log(sample_rate) - (order + 1) * log_1mq
    if (order - 1) * sample_rate <= 1e-3:
        return lagrange
    exact = log_sub((1.0 - order) * log_1mq, math.log1p((order - 1) * sample_rate))
    return min(exact + _ADD_CURVATURE_SLACK, lagrange)


def _binomial_rdp_integer(sample_rate: float, unsampled_at, orders) -> np.ndarray:
    int_orders, eps_l, log_q, log_1mq = _integer_order_inputs(sample_rate, unsampled_at, orders)
    log_excess_2 = log_expm1(eps_l[0]) if eps_l[0] > 0 else -math.inf  # log(e^{eps(2)} - 1)
    out = np.empty_like(int_orders)
    for i, order in enumerate(int_orders):
        a = int(order)
        j = np.arange(0.0, a + 1.0)
        log_moments = np.concatenate([[0.0, 0.0], (j[2:] - 1.0) * eps_l[: a - 1]])  # E[X^0] = E[X^1] = 1
        remove = logsumexp(_log_binom(float(a), j) + (a - j) * log_1mq + j * log_q + log_moments)
        add = np.logaddexp(0.0, _log_add_curvature(a, sample_rate) + log_excess_2)
        out[i] = max(float(remove), float(add), 0.0) / (a - 1.0)
    return out


def zhu_wang_rdp(sample_rate: float, unsampled_at, orders) -> np.ndarray:
    """Zhu & Wang 2019, Thm. 6, for integer a >= 2 (fractional a: ``chord_between_integer_orders``):

    1/(a-1) log{(1-q)^{a-1}(aq - q + 1) + C(a,2) q^2 (1-q)^{a-2} e^{eps(2)}
                + 3 sum_{l=3}^{a} C(a,l) (1-q)^{a-l} q^l e^{(l-1) eps(l)}}

    ``unsampled_at(ells)`` returns the unsampled per-step RDP eps(l) at the integer orders ``ells``.
    """
    return chord_between_integer_orders(lambda ints: _zhu_wang_rdp_integer(sample_rate, unsampled_at, ints), orders)


def _zhu_wang_rdp_integer(sample_rate: float, unsampled_at, orders) -> np.ndarray:
    int_orders, eps_l, log_q, log_1mq = _integer_order_inputs(sample_rate, unsampled_at, orders)
    out = np.empty_like(int_orders)
    for i, order in enumerate(int_orders):
        a = int(order)
        head = (a - 1) * log_1mq + math.log(a * sample_rate - sample_rate + 1.0)
        second = _log_binom(a, 2.0) + 2 * log_q + (a - 2) * log_1mq + eps_l[0]
        ell = np.arange(3.0, a + 1.0)
        tail = (
            math.log(3.0)
            + _log_binom(float(a), ell)
            + (a - ell) * log_1mq
            + ell * log_q
            + (ell - 1.0) * eps_l[1 : a - 1]
        )
        terms = np.concatenate([[head, second], tail])
        out[i] = max(float(logsumexp(terms)), 0.0) / (a - 1.0)
    return out
