"""Per-step RDP without subsampling, by geometry (DESIGN §4.3).

Additivity of Renyi divergence over independent coordinates gives, for a shift vector v:
    Scalar(D):  sup_{0<s<=D} r_a(s)
    L1Ball(C):  sum_i r_a(|v_i|) <= C * sup_{0<s<=C} r_a(s)/s          (||v||_1 <= C)
    L2Ball(C):  sum_i r_a(|v_i|) <= C^2 * sup_{0<s<=C} r_a(s)/s^2      (||v||_2 <= C, any dimension)
The sup is taken on a geometric shift grid with a local refinement around interior maxima (no monotonicity
is assumed); the small-shift end of the L2 ratio uses its limit a*I_f/2 (I_f = Fisher information) instead of
evaluating r_a at tiny shifts. A relative safety margin ``SUP_MARGIN`` covers the residual between grid points.
"""
from __future__ import annotations

import numpy as np

from ..geometry import Geometry, L1Ball, L2Ball, Scalar
from ..noise import Gaussian, Noise
from .divergence import renyi_shift

SUP_MARGIN = 1e-6  # relative inflation of numerically found suprema
_COARSE_FRACTIONS = np.geomspace(1e-3, 1.0, 43)  # ratio 1.18 between neighbouring shifts
_REFINE_POINTS = 9


def _ratio_power(geometry: Geometry) -> int:
    """k in sup r_a(s)/s^k: 0 for Scalar, 1 for L1, 2 for L2."""
    if isinstance(geometry, Scalar):
        return 0
    if isinstance(geometry, L1Ball):
        return 1
    if isinstance(geometry, L2Ball):
        return 2
    raise ValueError(f"unsupported geometry {geometry!r}")


def sup_over_shifts(value_at, radius: float, orders: np.ndarray) -> np.ndarray:
    """max over s in (0, radius] of value_at(shifts) -> (n_shifts, n_orders), with local refinement.

    The coarse grid is geometric in s; for every order whose maximum is interior, the two neighbouring grid
    intervals are resampled with ``_REFINE_POINTS`` points each.
    """
    shifts = radius * _COARSE_FRACTIONS
    values = value_at(shifts)
    best = values.max(axis=0)
    arg = values.argmax(axis=0)
    interior = np.unique(arg[(arg > 0) & (arg < shifts.size - 1)])
    if interior.size:
        fine = np.unique(np.concatenate([np.geomspace(shifts[i - 1], shifts[i + 1], 2 * _REFINE_POINTS + 1)
                                         for i in interior]))
        best = np.maximum(best, value_at(fine).max(axis=0))
    return best


def unsampled_rdp(noise: Noise, geometry: Geometry, orders) -> np.ndarray:
    """Per-step RDP of one noisy query without subsampling, for every order."""
    orders = np.atleast_1d(np.asarray(orders, dtype=float))
    radius = geometry.radius
    if isinstance(noise, Gaussian):
        return orders * radius**2 / (2.0 * noise.sigma**2)  # exact in every geometry: a C^2 / (2 sigma^2)
    power = _ratio_power(geometry)

    def ratio(shifts):
        return renyi_shift(noise, shifts, orders) / shifts[:, None] ** power * radius**power

    best = sup_over_shifts(ratio, radius, orders)
    if power == 2:
        best = np.maximum(best, 0.5 * orders * noise.fisher_information * radius**2)  # s -> 0 limit a I_f C^2/2
    return best * (1.0 + SUP_MARGIN)
