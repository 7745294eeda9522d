"""Renyi-DP accounting for any noise density: divergences, per-step bounds, subsampling, conversions."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._validation import check_orders
from ..geometry import Geometry, Scalar, check_geometry
from ..noise import Gaussian, Noise
from ..sampling import Poisson, as_sampling
from .conversion import DEFAULT_ORDERS, OrderGridWarning, delta_from_rdp, epsilon_from_rdp
from .divergence import renyi_poisson_mixture, renyi_shift
from .per_step import unsampled_rdp
from .subsampled import binomial_rdp, integer_orders, sampled_gaussian_rdp, scalar_subsampled_rdp, zhu_wang_rdp

__all__ = [
    "DEFAULT_ORDERS", "OrderGridWarning", "step_rdp", "epsilon_from_rdp", "delta_from_rdp", "renyi_shift",
    "renyi_poisson_mixture", "unsampled_rdp", "sampled_gaussian_rdp", "scalar_subsampled_rdp", "zhu_wang_rdp",
    "binomial_rdp",
]

_DENSE_INTEGER_ORDERS = 32
_SPARSE_INTEGER_ORDERS = 24


def check_noise(noise) -> Noise:
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be a lmodp_core noise (Gaussian, Laplace, LMO, CustomNoise), got {noise!r}")
    return noise


def _convex_interpolated_unsampled(noise: Noise, geometry: Geometry, wanted: np.ndarray):
    """eps(l) at every integer l from a computed subset, soundly.

    (a-1) * eps(a) is the log-moment of the privacy loss, convex in a, so the straight line between two
    computed orders bounds it from above in between.
    """
    max_order = int(wanted.max())
    base = np.unique(np.concatenate([
        np.arange(2.0, min(_DENSE_INTEGER_ORDERS, max_order) + 1.0), np.clip(wanted, 2.0, max_order),
        np.round(np.geomspace(min(_DENSE_INTEGER_ORDERS, max_order), max_order, _SPARSE_INTEGER_ORDERS)),
    ]))
    log_moment = (base - 1.0) * unsampled_rdp(noise, geometry, base)

    def at(ells):
        return np.interp(ells, base, log_moment) / (ells - 1.0)

    return at


@lru_cache(maxsize=256)
def _step_rdp_cached(noise: Noise, geometry: Geometry, sampling: Poisson, orders: tuple) -> np.ndarray:
    orders = np.asarray(orders)
    rate = sampling.sample_rate
    if isinstance(noise, Gaussian):
        return sampled_gaussian_rdp(rate, noise.sigma / geometry.radius, orders)
    unsampled = unsampled_rdp(noise, geometry, orders)
    if rate == 1.0:
        return unsampled
    if isinstance(geometry, Scalar):
        sampled = scalar_subsampled_rdp(noise, geometry.radius, rate, orders)
    else:
        unsampled_at = _convex_interpolated_unsampled(noise, geometry, integer_orders(orders))
        sampled = np.minimum(zhu_wang_rdp(rate, unsampled_at, orders), binomial_rdp(rate, unsampled_at, orders))
    return np.minimum(sampled, unsampled)


def step_rdp(noise: Noise, geometry: Geometry, sampling=None, orders=None) -> np.ndarray:
    """RDP of one step (noise, geometry, Poisson sampling) at each order: a sound upper bound.

    ``sampling`` may be a ``Poisson`` or a bare sample rate (None = no subsampling).
    """
    noise = check_noise(noise)
    geometry = check_geometry(geometry)
    sampling = as_sampling(sampling)
    orders = DEFAULT_ORDERS if orders is None else check_orders(orders)
    result = _step_rdp_cached(noise, geometry, sampling, tuple(float(a) for a in orders))
    return result.copy()
