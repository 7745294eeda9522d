"""RDP of one step (noise, geometry, Poisson sampling): the per-step bound the accountant composes.

A family's registered closed form comes first (``registry.step_rdp_closed_form``: the exact sampled-Gaussian
RDP); otherwise, without subsampling, the per-step bound of ``per_step``;
for a subsampled scalar query the exact Renyi divergence of the Poisson mixture; for any other step
min(Zhu-Wang, binomial expansion) over a convex interpolation of the unsampled curve (``subsampled``).
``step_rdp_lower_bound`` is the cheap exact divergence of one pair those bounds cover (the accountant uses it to
skip the RDP route where it cannot beat PLD).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..geometry import Geometry, check_geometry
from ..noise import Noise
from ..sampling import Poisson, as_sampling
from ..validation import check_noise, check_orders
from .certified_sup import lipschitz_shift_rdp
from .conversion import DEFAULT_ORDERS
from .divergence import renyi_poisson_mixture, renyi_shift
from .per_step import unsampled_rdp
from .registry import has_renyi_closed_form, has_step_rdp_closed_form, step_rdp_closed_form
from .subsampled import (
    binomial_rdp,
    chord_between_integer_orders,
    integer_orders,
    scalar_subsampled_rdp,
    zhu_wang_rdp,
)

_FRACTIONAL_BASE_ORDERS = (1.25, 1.5, 1.75, 2.5, 3.5)
_DENSE_INTEGER_ORDERS = 32
_SPARSE_INTEGER_ORDERS = 24
# noise length scale / clip below which the shift quadrature is slow and mostly unresolved (+inf): measured for
# LMO, 1 s per shift at 1e-3 with most orders unresolved, every order unresolved below 1e-6
_QUADRATURE_MIN_RELATIVE_SCALE = 1e-2
_UNRESOLVED_RELATIVE_SCALE = 1e-6


def _interpolation_orders(wanted: np.ndarray) -> np.ndarray:
    """The orders at which eps(l) is computed: a few fractional ones below 4 (where the chord between integers is
    loosest, and where the profile bound of ``pld.profile`` often reads it), every integer up to 32, then geometric
    up to max(wanted)."""
    max_order = int(wanted.max())
    return np.unique(
        np.concatenate(
            [
                np.array(_FRACTIONAL_BASE_ORDERS),
                np.arange(2.0, min(_DENSE_INTEGER_ORDERS, max_order) + 1.0),
                np.clip(wanted, 2.0, max_order),
                np.round(np.geomspace(min(_DENSE_INTEGER_ORDERS, max_order), max_order, _SPARSE_INTEGER_ORDERS)),
            ]
        )
    )


def _convex_interpolation(base: np.ndarray, eps_base: np.ndarray):
    """eps(l) at every integer l from its values at ``base``, soundly.

    (a-1) * eps(a) is the log-moment of the privacy loss, convex in a and 0 at a = 1, so the straight line between
    two computed orders (or from (1, 0) to the first one) bounds it from above in between.
    """
    nodes = np.concatenate([[1.0], base])
    log_moment = np.concatenate([[0.0], (base - 1.0) * eps_base])

    def at(ells):
        return np.interp(ells, nodes, log_moment) / (ells - 1.0)

    return at


def _lipschitz_rdp(noise: Noise, geometry: Geometry, orders: np.ndarray) -> np.ndarray:
    """Per-step RDP from the Lipschitz constant L of log f: a shift s is (L s)-DP, so r_a(s) <= L s, and
    eps-DP implies (eps^2/2)-zCDP, r_a(s) <= a (L s)^2 / 2 (Bun & Steinke 2016, arXiv:1605.02065, Prop. 3.3).
    Over coordinates: sum_i L|v_i| <= L C (L1) and sum_i a (L v_i)^2 / 2 <= a (L C)^2 / 2 (L1 and L2).
    +inf when L is unknown or infinite.
    """
    if geometry.shift_exponent < 2:
        return lipschitz_shift_rdp(noise, geometry.radius, orders)
    eps0 = noise.log_density_lipschitz * geometry.radius
    return 0.5 * orders * eps0 * eps0


def _quadrature_is_hopeless(noise: Noise, geometry: Geometry) -> bool:
    """True where the noise is so small against the clip that the shift quadrature would be slow and mostly
    +inf (the privacy loss per step is then enormous): the Lipschitz bound is used instead."""
    if has_renyi_closed_form(noise):
        return False  # closed forms at every scale
    relative_scale = noise.typical_scale / geometry.radius
    return relative_scale < _UNRESOLVED_RELATIVE_SCALE or (
        relative_scale < _QUADRATURE_MIN_RELATIVE_SCALE and np.isfinite(noise.log_density_lipschitz)
    )


def _unsampled(noise: Noise, geometry: Geometry, orders: np.ndarray) -> np.ndarray:
    if _quadrature_is_hopeless(noise, geometry):
        return _lipschitz_rdp(noise, geometry, orders)
    return unsampled_rdp(noise, geometry, orders)


@lru_cache(maxsize=256)
def _step_rdp_cached(noise: Noise, geometry: Geometry, sampling: Poisson, order_key: tuple) -> np.ndarray:
    orders = np.asarray(order_key)
    rate = sampling.sample_rate
    closed_form = step_rdp_closed_form(noise, geometry, rate, orders)
    if closed_form is not None:
        return closed_form
    if rate == 1.0:
        return _unsampled(noise, geometry, orders)
    if geometry.shift_exponent == 0 and not _quadrature_is_hopeless(noise, geometry):
        return np.minimum(
            scalar_subsampled_rdp(noise, geometry.radius, rate, orders), unsampled_rdp(noise, geometry, orders)
        )
    # any mechanism: one cached pass of the (costly) per-step bound at the interpolation orders; the Poisson bounds
    # read it at integer orders, and the cap by the unsampled step at a fractional order is the chord between them
    unsampled_at = _unsampled_interpolation(noise, geometry, orders)
    sampled = np.minimum(zhu_wang_rdp(rate, unsampled_at, orders), binomial_rdp(rate, unsampled_at, orders))
    return np.minimum(sampled, chord_between_integer_orders(unsampled_at, orders))


@lru_cache(maxsize=256)
def _unsampled_at(noise: Noise, geometry: Geometry, base_key: tuple) -> np.ndarray:
    return _unsampled(noise, geometry, np.asarray(base_key))


def _unsampled_interpolation(noise: Noise, geometry: Geometry, orders: np.ndarray):
    """The unsampled step's RDP at any order up to ceil(max(orders)), from one cached pass of the per-step bound at
    the interpolation orders (``_convex_interpolation``)."""
    base = _interpolation_orders(integer_orders(orders))
    return _convex_interpolation(base, _unsampled_at(noise, geometry, tuple(base.tolist())))


def interpolated_unsampled_rdp(noise: Noise, geometry: Geometry, orders=None) -> np.ndarray:
    """A sound upper bound on the unsampled step's RDP at each order from the one cached pass at the interpolation
    orders that the Poisson bounds of ``step_rdp`` use (``_convex_interpolation``): equal to the computed value at
    those orders, their chord in between."""
    orders = DEFAULT_ORDERS if orders is None else check_orders(orders)
    closed_form = step_rdp_closed_form(noise, geometry, 1.0, orders)
    if closed_form is not None:
        return closed_form
    return _unsampled_interpolation(noise, geometry, orders)(orders)


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


def step_rdp_lower_bound(noise: Noise, geometry: Geometry, sampling=None, orders=None) -> np.ndarray:
    """A lower bound on ``step_rdp`` at each order, without its sup over shifts: the exact RDP of one pair that
    every geometry's bound covers, the whole radius on one coordinate (s = radius), the larger of the two
    Poisson directions (remove and add) when sampled. 0 at an order the quadrature does not resolve, and 0 for a
    family with a closed-form step (its ``step_rdp`` is cheap anyway) or a noise too small for the quadrature.

    Not a guarantee: the accountant uses it only to skip computing an RDP answer that cannot be the smaller one.
    """
    noise = check_noise(noise)
    geometry = check_geometry(geometry)
    sampling = as_sampling(sampling)
    orders = DEFAULT_ORDERS if orders is None else check_orders(orders)
    return _lower_bound_cached(noise, geometry, sampling, tuple(float(a) for a in orders)).copy()


@lru_cache(maxsize=256)
def _lower_bound_cached(noise: Noise, geometry: Geometry, sampling: Poisson, order_key: tuple) -> np.ndarray:
    orders, rate = np.asarray(order_key), sampling.sample_rate
    if has_step_rdp_closed_form(noise) or _quadrature_is_hopeless(noise, geometry):
        return np.zeros(orders.shape)
    if rate == 1.0:
        value = renyi_shift(noise, [geometry.radius], orders)[0]
    else:
        value = np.maximum(*renyi_poisson_mixture(noise, geometry.radius, rate, orders))
    return np.where(np.isfinite(value), value, 0.0)
