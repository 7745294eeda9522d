"""The built-in closed forms of the RDP layer, registered with ``registry``: Gaussian and Laplace noise."""
from __future__ import annotations

import numpy as np

from ..geometry import Geometry
from ..noise import Gaussian, Laplace
from .registry import renyi_shift_closed_form, step_rdp_closed_form, unsampled_rdp_closed_form
from .subsampled import sampled_gaussian_rdp


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


@step_rdp_closed_form.register(Gaussian)
def _gaussian_step(noise: Gaussian, geometry: Geometry, sample_rate: float, orders: np.ndarray) -> np.ndarray:
    """Exact sampled-Gaussian RDP (Mironov, Talwar, Zhang 2019, arXiv:1908.10530), shift = radius in any
    geometry (rotation invariance of the isotropic Gaussian)."""
    return sampled_gaussian_rdp(sample_rate, noise.sigma / geometry.radius, orders)
