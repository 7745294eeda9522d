"""RDP -> (epsilon, delta) conversions (docs/theory.md §4.6)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..validation import check_delta, check_epsilon, check_orders, check_real_array

# 1.1 ... 10.9 by 0.1, 11 ... 63, 64 ... 256 by 8, and a few large orders up to 1024.
DEFAULT_ORDERS = np.concatenate(
    [
        np.round(np.arange(1.1, 10.95, 0.1), 10),
        np.arange(11.0, 64.0),
        np.arange(64.0, 257.0, 8.0),
        np.array([320.0, 384.0, 448.0, 512.0, 640.0, 768.0, 896.0, 1024.0]),
    ]
)

CONVERSIONS = ("improved", "classic")


class OrderGridWarning(RuntimeWarning):
    """The optimal Renyi order is at an end of the order grid and orders beyond it could give a smaller value."""


_WARN_GAIN = 1e-3  # warn when orders beyond the grid could lower epsilon (or log delta) by more than this (relative)
_EXTENSION = np.geomspace(1e-4, 1.0, 64)  # probes beyond each end, as fractions of the distance to 1 / inf


def _check_rdp(orders, rdp) -> tuple[np.ndarray, np.ndarray]:
    orders = check_orders(orders)
    rdp = np.atleast_1d(check_real_array("rdp", rdp))
    if rdp.shape != orders.shape:
        raise ValueError(f"rdp must have one value per order: got {rdp.shape} values for {orders.shape} orders")
    if np.any(np.isnan(rdp)) or np.any(rdp < 0):
        raise ValueError("rdp values must be >= 0 (inf allowed), got NaN or a negative value")
    return orders, rdp


def _rdp_lower_bound(orders: np.ndarray, rdp: np.ndarray, probes: np.ndarray, upper_end: bool) -> np.ndarray:
    """A lower bound on the RDP at orders beyond one end of the grid.

    (a-1) rho(a) is convex in a (it is a log-moment of the privacy loss), so beyond the last two grid points it
    lies above their chord, extended; and rho is non-decreasing in a (beyond the top) and >= 0 (below the bottom).
    """
    sort = np.argsort(orders)
    ends = sort[-2:] if upper_end else sort[:2]
    floor = rdp[sort[-1]] if upper_end else 0.0
    if ends.size < 2 or not np.all(np.isfinite(rdp[ends])):
        return np.full(probes.shape, floor)
    (a0, a1), (y0, y1) = orders[ends], (orders[ends] - 1.0) * rdp[ends]
    chord = y0 + (y1 - y0) * (probes - a0) / (a1 - a0)
    return np.maximum(chord / (probes - 1.0), floor)


def _warn_if_extension_helps(orders: np.ndarray, rdp: np.ndarray, index: int, objective, what: str) -> None:
    """Warn when the optimum is at an end of the grid and some order beyond that end could beat it.

    ``objective(a, rho)`` is non-decreasing in rho, so a lower bound on rho beyond the grid bounds it from below.
    """
    if orders.size < 2 or orders[index] not in (orders.min(), orders.max()):
        return
    upper_end = orders[index] == orders.max()
    probes = orders[index] / _EXTENSION if upper_end else 1.0 + (orders[index] - 1.0) * _EXTENSION[:-1]
    best_beyond = float(np.min(objective(probes, _rdp_lower_bound(orders, rdp, probes, upper_end))))
    current = float(objective(orders[index : index + 1], rdp[index : index + 1])[0])
    if best_beyond < current - _WARN_GAIN * max(abs(current), 1e-12):
        warnings.warn(
            f"the optimal Renyi order for {what} is {orders[index]:g}, at the edge of the order grid "
            f"[{orders.min():g}, {orders.max():g}], and orders beyond it could give a smaller {what}: "
            f"extend the grid (orders=...) for a tighter bound",
            OrderGridWarning,
            stacklevel=3,
        )


def epsilon_from_rdp(
    orders, rdp, delta: float, *, conversion: str = "improved", warn: bool = True
) -> tuple[float, float | None]:
    """(epsilon, optimal order) from an RDP curve; the order is None when every RDP value is inf.

    improved (Canonne-Kamath-Steinke 2020, Prop. 12; Balle et al. 2020):
        eps = min_a [rho(a) + log((a-1)/a) - (log delta + log a)/(a-1)]
    classic (Mironov 2017): eps = min_a [rho(a) + log(1/delta)/(a-1)]
    """
    orders, rdp = _check_rdp(orders, rdp)
    delta = check_delta(delta)
    if conversion == "improved":

        def objective(a, rho):
            return rho + np.log1p(-1.0 / a) - (math.log(delta) + np.log(a)) / (a - 1.0)
    elif conversion == "classic":

        def objective(a, rho):
            return rho + math.log(1.0 / delta) / (a - 1.0)
    else:
        raise ValueError(f"conversion must be one of {CONVERSIONS}, got {conversion!r}")
    eps = np.where(np.isfinite(rdp), objective(orders, rdp), np.inf)
    index = int(np.argmin(eps))
    if not np.isfinite(eps[index]):
        return math.inf, None
    if warn:
        _warn_if_extension_helps(orders, rdp, index, objective, "epsilon")
    return max(float(eps[index]), 0.0), float(orders[index])


def epsilon_floor(delta: float) -> float:
    """The smallest epsilon the RDP conversion certifies at ``delta`` for any noise: epsilon_from_rdp of a zero
    RDP curve on the default orders, min_a log(1 - 1/a) - (log delta + log a)/(a - 1)."""
    return epsilon_from_rdp(DEFAULT_ORDERS, np.zeros(DEFAULT_ORDERS.shape), delta, warn=False)[0]


def delta_from_rdp(orders, rdp, epsilon: float, *, warn: bool = True) -> tuple[float, float | None]:
    """(delta, optimal order): the improved conversion solved for delta,
    log delta = (a-1)(rho(a) - eps + log(1 - 1/a)) - log a, capped at 1; the order is None when every RDP value
    is inf.
    """
    orders, rdp = _check_rdp(orders, rdp)
    epsilon = check_epsilon(epsilon)

    def objective(a, rho):
        return (a - 1.0) * (rho - epsilon + np.log1p(-1.0 / a)) - np.log(a)

    with np.errstate(invalid="ignore"):
        log_delta = np.where(np.isfinite(rdp), objective(orders, rdp), np.inf)
    index = int(np.argmin(log_delta))
    if not np.isfinite(log_delta[index]):
        return 1.0, None
    delta = math.exp(min(float(log_delta[index]), 0.0))
    if warn and 0.0 < delta < 1.0:  # a delta capped at 1 or underflowed to 0 cannot change
        _warn_if_extension_helps(orders, rdp, index, objective, "delta")
    return delta, float(orders[index])
