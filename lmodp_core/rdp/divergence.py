"""Renyi divergences of shifted noise pairs (docs/theory.md §4.2) and of their Poisson mixtures (§4.4).

r_a(s) = D_a(f(. - s) || f) = 1/(a-1) log int f(x-s)^a f(x)^{1-a} dx.
A family with a closed form registered (``registry.renyi_shift_closed_form``: Gaussian, Laplace) uses it; a density
that lists the pair as finitely many cells of constant density (``shift_pair_masses``, e.g. ``PiecewiseNoise``) gets
the exact finite sum; every other density is integrated numerically in log space with the double-exponential rules
of ``lmodp_core._quadrature``, split at the kinks x = k and x = k + s. When the two rules disagree for an order
(typically a smooth density with unbounded privacy loss at a high order, whose integrand peaks far out in a tail),
the unresolved orders are recomputed together with extra splits at their integrands' peaks (at most ``_PEAK_PASSES``
passes, so the cost is bounded whatever the density). The fine and coarse rules must agree to ``QUADRATURE_RTOL``;
an order where they do not is reported as +inf (unresolved, hence never used), not as a number that might be too
small. A resolved order reports the larger of the two rules plus their difference. A node where q = 0 < p makes the
divergence +inf.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._logmath import log1mexp, log_mixture
from .._quadrature import log_renyi_excess, real_line_nodes, renyi_from_log_excess
from ..noise import Noise
from ..noise.piecewise import log_renyi_moment
from .registry import renyi_shift_closed_form

# agreement required between the step-h and step-2h rules on S = int p^a q^{1-a} - 1: |difference| <= RTOL*S + ATOL
QUADRATURE_RTOL = 1e-9
QUADRATURE_ATOL = 1e-15
_PEAK_PASSES = 4  # each pass splits at the peak found by the previous one


def _log_error(fine: np.ndarray, rough: np.ndarray) -> np.ndarray:
    """log |S_fine - S_coarse| from the two log values."""
    high, low = np.maximum(fine, rough), np.minimum(fine, rough)
    with np.errstate(invalid="ignore"):
        return np.where(high == low, -np.inf, high + log1mexp(low - high))


def _resolved(fine: np.ndarray, rough: np.ndarray) -> np.ndarray:
    allowed = np.logaddexp(np.log(QUADRATURE_RTOL) + fine, np.log(QUADRATURE_ATOL))
    return _log_error(fine, rough) <= allowed


def numeric_log_excess(log_pair: Callable, breakpoints: np.ndarray, scale: float, orders: np.ndarray) -> np.ndarray:
    """An upper value of log S_a, S_a = int q phi_a(log p/q), for every order (+inf where unresolved), where
    ``log_pair(x)`` returns (log p(x), log q(x)); S_a = int p^a q^{1-a} - 1 when p and q are normalised."""
    x, log_w, coarse = real_line_nodes(breakpoints, scale)
    log_p, log_q = log_pair(x)
    fine, rough, peak = log_renyi_excess(log_p, log_q, log_w, coarse, orders)
    peak_x = x[peak]
    splits = np.asarray(breakpoints, dtype=float)
    for _ in range(_PEAK_PASSES):  # one node set per pass for all unresolved orders: bounded cost
        todo = np.flatnonzero(~_resolved(fine, rough))
        if not todo.size:
            break
        splits = np.unique(np.concatenate([splits, peak_x[todo]]))
        x_j, log_w_j, coarse_j = real_line_nodes(splits, scale)
        log_p_j, log_q_j = log_pair(x_j)
        f_j, r_j, peak_j = log_renyi_excess(log_p_j, log_q_j, log_w_j, coarse_j, orders[todo])
        fine[todo], rough[todo], peak_x[todo] = f_j, r_j, x_j[peak_j]
    upper = np.logaddexp(np.maximum(fine, rough), _log_error(fine, rough))
    return np.where(_resolved(fine, rough), upper, np.inf)


def _numeric_renyi(log_pair: Callable, breakpoints: np.ndarray, scale: float, orders: np.ndarray) -> np.ndarray:
    """D_a(p || q) for every order, where ``log_pair(x)`` returns (log p(x), log q(x))."""
    return renyi_from_log_excess(numeric_log_excess(log_pair, breakpoints, scale, orders), orders)


def _renyi_from_masses(log_p: np.ndarray, log_q: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """D_a(P || Q) = log(sum_cells P^a Q^{1-a}) / (a - 1) for two laws constant on the same cells (exact)."""
    return np.maximum(log_renyi_moment(log_p, log_q, orders), 0.0) / (orders - 1.0)


def split_points(noise: Noise, *shifts: float) -> np.ndarray:
    """The kinks of the density and of its copies shifted by each of ``shifts`` (quadrature splits there)."""
    kinks = np.asarray(noise.kinks or (0.0,), dtype=float)
    return np.unique(np.concatenate([kinks] + [kinks + shift for shift in shifts]))


def renyi_shift(noise: Noise, shifts, orders) -> np.ndarray:
    """r_a(s) for every shift (rows) and order (columns); shifts >= 0, orders > 1."""
    shifts = np.atleast_1d(np.asarray(shifts, dtype=float))
    orders = np.atleast_1d(np.asarray(orders, dtype=float))
    closed_form = renyi_shift_closed_form(noise, shifts, orders)
    if closed_form is not None:
        return closed_form
    out = np.zeros((shifts.size, orders.size))
    exact = getattr(noise, "shift_pair_masses", None)
    for i, shift in enumerate(shifts):
        if shift > 0.0 and exact is not None:
            log_p, log_q = exact(shift)
            out[i] = _renyi_from_masses(log_p, log_q, orders)
        elif shift > 0.0:
            out[i] = _numeric_renyi(
                lambda x, s=shift: (noise.logpdf(x - s), noise.logpdf(x)),
                split_points(noise, shift),
                noise.typical_scale,
                orders,
            )
    return out


def renyi_poisson_mixture(noise: Noise, shift: float, sample_rate: float, orders) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of one Poisson-subsampled scalar step with shift ``shift``:

    remove: D_a((1-q) f + q f(.-s) || f),   add: D_a(f || (1-q) f + q f(.-s)).
    """
    orders = np.atleast_1d(np.asarray(orders, dtype=float))
    exact = getattr(noise, "shift_pair_masses", None)
    if exact is not None:
        log_shifted, log_base = exact(shift)
        log_mix = log_mixture(log_base, log_shifted, sample_rate)
        return _renyi_from_masses(log_mix, log_base, orders), _renyi_from_masses(log_base, log_mix, orders)

    def base_and_mixture(x):
        log_base = noise.logpdf(x)
        return log_base, log_mixture(log_base, noise.logpdf(x - shift), sample_rate)

    def remove_pair(x):
        log_base, log_mix = base_and_mixture(x)
        return log_mix, log_base

    splits = split_points(noise, shift)
    remove = _numeric_renyi(remove_pair, splits, noise.typical_scale, orders)
    add = _numeric_renyi(base_and_mixture, splits, noise.typical_scale, orders)
    return remove, add
