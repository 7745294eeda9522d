"""Log-space arithmetic shared by the accounting layers.

Vectorised helpers (numpy) and scalar ones (math) for the identities that keep masses and moments in log space
(``logsumexp`` is the plain max-shifted form: same values as ``scipy.special.logsumexp`` for real input, about 3x
faster on the PLD layer's arrays). The ``*_kernel`` functions are the same identities compiled with numba, for
the numba loops in ``lmodp_core.pld`` to call.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["log1mexp", "log1mexp_kernel", "log_expm1", "log_mixture", "log_sub", "logaddexp_kernel", "logsumexp"]

_MINUS_LOG_2 = -0.6931471805599453


def log1mexp(x):
    """log(1 - e^x) elementwise for x <= 0 (-inf at x = 0; absolute accuracy ~1e-16)."""
    with np.errstate(divide="ignore"):
        return np.log(-np.expm1(x))


def logsumexp(values, axis: int | None = None):
    """log sum exp(values) along ``axis`` (over all elements when None): -inf for an empty or all -inf slice, +inf
    where a term is +inf, NaN only from a NaN term."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        shape = () if axis is None else tuple(np.delete(values.shape, axis))
        return np.full(shape, -np.inf)[()]
    peak = np.max(values, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)  # an all -inf or a +inf slice: no shift needed
    with np.errstate(divide="ignore", over="ignore"):  # a +inf term overflows to the +inf answer
        total = np.log(np.sum(np.exp(values - peak), axis=axis)) + np.squeeze(peak, axis=axis)
    return total[()]


def log_expm1(x: float) -> float:
    """log(e^x - 1) for x > 0, without overflow: x + log(1 - e^-x)."""
    return x + math.log(-math.expm1(-x))


def log_sub(log_a: float, log_b: float) -> float:
    """log(e^a - e^b) for a >= b (-inf when b >= a)."""
    if log_b == -math.inf:
        return log_a
    if log_b >= log_a:
        return -math.inf
    return log_a + math.log(-math.expm1(log_b - log_a))


def log_mixture(log_base, log_shifted, sample_rate: float):
    """log((1-q) e^log_base + q e^log_shifted), the Poisson mixture of a sampled step, without leaving log space."""
    if sample_rate == 1.0:
        return log_shifted
    return np.logaddexp(math.log1p(-sample_rate) + log_base, math.log(sample_rate) + log_shifted)


@numba.njit(cache=True)
def logaddexp_kernel(x: float, y: float) -> float:
    """log(e^x + e^y) for scalars, exact when either is -inf."""
    if x == -math.inf:
        return y
    if y == -math.inf:
        return x
    top = max(x, y)
    return top + math.log1p(math.exp(min(x, y) - top))


@numba.njit(cache=True)
def log1mexp_kernel(x: float) -> float:
    """log(1 - e^x) for a scalar x <= 0, accurate in relative terms (Maechler 2012, "Accurately computing
    log(1 - exp(-|a|))": expm1 above -log 2, log1p below)."""
    if x > _MINUS_LOG_2:
        return math.log(-math.expm1(x))
    return math.log1p(-math.exp(x))
