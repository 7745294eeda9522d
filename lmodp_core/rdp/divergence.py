"""Renyi divergences of shifted noise pairs (DESIGN §4.2) and of their Poisson mixtures (§4.4).

r_a(s) = D_a(f(. - s) || f) = 1/(a-1) log int f(x-s)^a f(x)^{1-a} dx.
Gaussian and Laplace use closed forms; every other density is integrated numerically in log space with the
double-exponential rules of ``lmodp_core._quadrature`` (split at the kinks x = k and x = k + s).
"""
from __future__ import annotations

import math

import numpy as np

from .._quadrature import log_renyi_excess, real_line_nodes, renyi_from_log_excess
from ..noise import Gaussian, Laplace, Noise


def _nodes_for_shift(noise: Noise, shift: float):
    kinks = np.asarray(noise.kinks or (0.0,), dtype=float)
    return real_line_nodes(np.concatenate([kinks, kinks + shift]), noise.typical_scale)


def _laplace_renyi(scale: float, shifts: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """1/(a-1) log[a/(2a-1) e^{(a-1)s/b} + (a-1)/(2a-1) e^{-a s/b}] (Mironov 2017, Table II)."""
    s = shifts[:, None] / scale
    a = orders[None, :]
    log_norm = np.log(2.0 * a - 1.0)
    value = np.logaddexp(np.log(a) - log_norm + (a - 1.0) * s, np.log(a - 1.0) - log_norm - a * s)
    return np.maximum(value, 0.0) / (a - 1.0)


def renyi_shift(noise: Noise, shifts, orders) -> np.ndarray:
    """r_a(s) for every shift (rows) and order (columns); shifts >= 0, orders > 1."""
    shifts = np.atleast_1d(np.asarray(shifts, dtype=float))
    orders = np.atleast_1d(np.asarray(orders, dtype=float))
    if isinstance(noise, Gaussian):
        return orders[None, :] * shifts[:, None] ** 2 / (2.0 * noise.sigma**2)  # a s^2 / (2 sigma^2)
    if isinstance(noise, Laplace):
        return _laplace_renyi(noise.scale, shifts, orders)
    out = np.zeros((shifts.size, orders.size))
    for i, shift in enumerate(shifts):
        if shift == 0.0:
            continue
        x, log_w = _nodes_for_shift(noise, shift)
        log_q = noise.logpdf(x)
        log_p = noise.logpdf(x - shift)
        out[i] = renyi_from_log_excess(log_renyi_excess(log_p, log_q, log_w, orders), orders)
    return out


def renyi_poisson_mixture(noise: Noise, shift: float, sample_rate: float, orders) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of one Poisson-subsampled scalar step with shift ``shift``:

    remove: D_a((1-q) f + q f(.-s) || f),   add: D_a(f || (1-q) f + q f(.-s)).
    """
    orders = np.atleast_1d(np.asarray(orders, dtype=float))
    x, log_w = _nodes_for_shift(noise, shift)
    log_base = noise.logpdf(x)
    log_shifted = noise.logpdf(x - shift)
    # log((1-q) f + q f_s), computed without leaving log space
    log_mix = np.logaddexp(math.log1p(-sample_rate) + log_base, math.log(sample_rate) + log_shifted) \
        if sample_rate < 1.0 else log_shifted
    remove = renyi_from_log_excess(log_renyi_excess(log_mix, log_base, log_w, orders), orders)
    add = renyi_from_log_excess(log_renyi_excess(log_base, log_mix, log_w, orders), orders)
    return remove, add
