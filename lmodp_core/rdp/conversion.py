"""RDP -> (epsilon, delta) conversions (DESIGN §4.6)."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .._validation import check_delta, check_epsilon, check_orders

# 1.1 ... 10.9 by 0.1, 11 ... 63, 64 ... 256 by 8, and a few large orders up to 1024.
DEFAULT_ORDERS = np.concatenate([
    np.round(np.arange(1.1, 10.95, 0.1), 10), np.arange(11.0, 64.0), np.arange(64.0, 257.0, 8.0),
    np.array([320.0, 384.0, 448.0, 512.0, 640.0, 768.0, 896.0, 1024.0]),
])

CONVERSIONS = ("improved", "classic")


class OrderGridWarning(RuntimeWarning):
    """The optimal Renyi order is at the edge of the order grid: a wider grid may give a smaller epsilon."""


def _check_rdp(orders, rdp) -> tuple[np.ndarray, np.ndarray]:
    orders = check_orders(orders)
    rdp = np.atleast_1d(np.asarray(rdp, dtype=float))
    if rdp.shape != orders.shape:
        raise ValueError(f"rdp must have one value per order: got {rdp.shape} values for {orders.shape} orders")
    if np.any(np.isnan(rdp)) or np.any(rdp < 0):
        raise ValueError("rdp values must be >= 0 (inf allowed), got NaN or a negative value")
    return orders, rdp


def _warn_if_edge(orders: np.ndarray, index: int, what: str) -> None:
    if orders.size > 1 and orders[index] in (orders.min(), orders.max()):
        warnings.warn(f"the optimal Renyi order for {what} is {orders[index]:g}, at the edge of the order grid "
                      f"[{orders.min():g}, {orders.max():g}]; extend the grid for a tighter bound",
                      OrderGridWarning, stacklevel=3)


def epsilon_from_rdp(orders, rdp, delta: float, *, conversion: str = "improved", warn: bool = True
                     ) -> tuple[float, float]:
    """(epsilon, optimal order) from an RDP curve.

    improved (Canonne-Kamath-Steinke 2020, Prop. 12; Balle et al. 2020):
        eps = min_a [rho(a) + log((a-1)/a) - (log delta + log a)/(a-1)]
    classic (Mironov 2017): eps = min_a [rho(a) + log(1/delta)/(a-1)]
    """
    orders, rdp = _check_rdp(orders, rdp)
    delta = check_delta(delta)
    if conversion == "improved":
        eps = rdp + np.log1p(-1.0 / orders) - (math.log(delta) + np.log(orders)) / (orders - 1.0)
    elif conversion == "classic":
        eps = rdp + math.log(1.0 / delta) / (orders - 1.0)
    else:
        raise ValueError(f"conversion must be one of {CONVERSIONS}, got {conversion!r}")
    eps = np.where(np.isfinite(rdp), eps, np.inf)
    index = int(np.argmin(eps))
    if not np.isfinite(eps[index]):
        return math.inf, math.nan
    if warn:
        _warn_if_edge(orders, index, "epsilon")
    return max(float(eps[index]), 0.0), float(orders[index])


def delta_from_rdp(orders, rdp, epsilon: float, *, warn: bool = True) -> tuple[float, float]:
    """(delta, optimal order): the improved conversion solved for delta,
    log delta = (a-1)(rho(a) - eps + log(1 - 1/a)) - log a, capped at 1.
    """
    orders, rdp = _check_rdp(orders, rdp)
    epsilon = check_epsilon(epsilon)
    with np.errstate(invalid="ignore"):
        log_delta = (orders - 1.0) * (rdp - epsilon + np.log1p(-1.0 / orders)) - np.log(orders)
    log_delta = np.where(np.isfinite(rdp), log_delta, np.inf)
    index = int(np.argmin(log_delta))
    if not np.isfinite(log_delta[index]):
        return 1.0, math.nan
    if warn:
        _warn_if_edge(orders, index, "delta")
    return float(min(math.exp(min(log_delta[index], 0.0)), 1.0)), float(orders[index])
