"""The built-in closed forms of the RDP layer, registered with ``registry``: Gaussian and Laplace noise."""

from __future__ import annotations

import numpy as np

from ..geometry import Geometry
from ..noise import Gaussian, Laplace
from .registry import renyi_shift_closed_form, step_rdp_closed_form, unsampled_rdp_closed_form
from .subsampled import sampled_gaussian_rdp

_ROUNDING_MARGIN = 1e-12  # relative inflation of a closed-form sup for floating-point rounding


@renyi_shift_closed_form.register(Gaussian)
def _gaussian_renyi(noise: Gaussian, shifts: np.ndarray, orders: np.ndarray) -> np.ndarray:
    return orders[None, :] * shifts[:, None] ** 2 / (2.0 * noise.sigma**2)  # a s^2 / (2 sigma^2)


@renyi_shift_closed_form.register(Laplace)
def _laplace_renyi(noise: Laplace, shifts: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """1/(a-1) log[a/(2a-1) e^{(a-1)s/b} + (a-1)/(2a-1) e^{-a s/b}] (Mironov 2017, Table II)."""
    s = shifts[:, None] / noise.scale
    a = orders[None, :]
    log_norm = np.log(2.0 * a - 1.0)
    large = np.logaddexp(np.log(a) - log_norm + (a - 1.0) * s, np.log(a - 1.0) - log_norm - a * s)
    with np.errstate(over="ignore"):
        # the same with weights summing to 1, log1p(A expm1((a-1)s) + B expm1(-a s)): exact for tiny shifts
        small = np.log1p(a / (2 * a - 1) * np.expm1((a - 1.0) * s) + (a - 1) / (2 * a - 1) * np.expm1(-a * s))
    return np.maximum(np.where((a - 1.0) * s < 30.0, small, large), 0.0) / (a - 1.0)


@unsampled_rdp_closed_form.register(Gaussian)
def _gaussian_unsampled(noise: Gaussian, geometry: Geometry, orders: np.ndarray) -> np.ndarray:
    return orders * geometry.radius**2 / (2.0 * noise.sigma**2)  # exact in every geometry: a C^2 / (2 sigma^2)


@unsampled_rdp_closed_form.register(Laplace)
def _laplace_unsampled(noise: Laplace, geometry: Geometry, orders: np.ndarray) -> np.ndarray:
    """C^k sup_{0<s<=C} r_a(s)/s^k for Laplace(b), exactly (docs/accounting.md, "Certified suprema over shifts").

    With A = a/(2a-1), (a-1) r_a(s) = g(s) = log(A e^{(a-1)s/b} + (1-A) e^{-as/b}) (Mironov 2017, Table II) is
    convex with g(0) = g'(0) = 0, so g and g(s)/s are non-decreasing: k = 0, 1 give r_a(C). g''(s) = w(1-w)(2a-1)^2
    / b^2 with w = A e^{(a-1)s/b}/e^{g} increasing from A > 1/2, so g'' decreases and g(s)/s^2 = int_0^1 (1-t)
    g''(ts) dt does too: k = 2 gives the limit g''(0)/(2(a-1)) C^2 = a C^2 / (2 b^2).
    """
    radius = geometry.radius
    if geometry.shift_exponent == 2:
        return orders * radius**2 / (2.0 * noise.scale**2) * (1.0 + _ROUNDING_MARGIN)
    return _laplace_renyi(noise, np.array([radius]), orders)[0] * (1.0 + _ROUNDING_MARGIN)


@step_rdp_closed_form.register(Gaussian)
def _gaussian_step(noise: Gaussian, geometry: Geometry, sample_rate: float, orders: np.ndarray) -> np.ndarray:
    """Exact sampled-Gaussian RDP (Mironov, Talwar, Zhang 2019, arXiv:1908.10530), shift = radius in any
    geometry (rotation invariance of the isotropic Gaussian)."""
    return sampled_gaussian_rdp(sample_rate, noise.sigma / geometry.radius, orders)
