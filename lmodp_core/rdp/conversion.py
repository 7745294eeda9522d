"""RDP -> (epsilon, delta) conversions (DESIGN §4.6)."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .._validation import check_choice, check_delta, check_epsilon, check_orders

# 1.1 ... 10.9 by 0.1, 11 ... 63, 64 ... 256 by 8, and a few large orders up to 1024.
DEFAULT_ORDERS = np.concatenate([
    np.round(np.arange(1.1, 10.95, 0.1), 10), np.arange(11.0, 64.0), np.arange(64.0, 257.0, 8.0),
    np.array([320.0, 384.0, 448.0, 512.0, 640.0, 768.0, 896.0, 1024.0]),
])

CONVERSIONS = ("improved", "classic")


_EDGE_GAIN = 0.01  # warn about the order grid only when orders beyond it could improve the answer by > 1%


class OrderGridWarning(RuntimeWarning):
    """The optimal Renyi order is at the edge of the order grid and orders beyond it could give a materially
    smaller answer (pass a wider ``orders`` grid). The value returned is a sound bound either way."""


def _check_rdp(orders, rdp) -> tuple[np.ndarray, np.ndarray]:
    orders = check_orders(orders)
    rdp = np.atleast_1d(np.asarray(rdp, dtype=float))
    if rdp.shape != orders.shape:
        raise ValueError(f"rdp must have one value per order: got {rdp.shape} values for {orders.shape} orders")
    if np.any(np.isnan(rdp)) or np.any(rdp < 0):
        raise ValueError("rdp values must be >= 0 (inf allowed), got NaN or a negative value")
    return orders, rdp


def _beyond_the_edge(orders: np.ndarray, rdp: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Orders just outside the grid edge at ``index`` and an ESTIMATE of the RDP curve there (for the warning only):
    the line through the two edge orders, floored by what D_a nondecreasing in a allows (>= 0 below the grid,
    >= the edge value above it)."""
    by_order = np.argsort(orders)
    low = index == by_order[0]
    edge, neighbour = (by_order[0], by_order[1]) if low else (by_order[-1], by_order[-2])
    with np.errstate(invalid="ignore"):
        slope = (rdp[neighbour] - rdp[edge]) / (orders[neighbour] - orders[edge])
    if low:
        beyond = 1.0 + (orders[edge] - 1.0) * np.geomspace(1e-3, 1.0, 48, endpoint=False)
        estimate = rdp[edge] - slope * (orders[edge] - beyond) if np.isfinite(slope) else np.zeros_like(beyond)
        return beyond, np.maximum(estimate, 0.0)
    beyond = orders[edge] * np.geomspace(1.0, 1e3, 48)[1:]
    return beyond, rdp[edge] + max(slope, 0.0) * (beyond - orders[edge])


def _warn_if_edge(orders: np.ndarray, rdp: np.ndarray, index: int, what: str, curve, found: float) -> None:
    """Warn when the optimum sits at the grid edge and orders beyond it could lower the answer by more than 1%.
    ``curve(orders, rdp)`` is the conversion being minimised, epsilon or log delta, and ``found`` its grid minimum."""
    if orders.size < 2 or orders[index] not in (orders.min(), orders.max()):
        return
    beyond, estimate = _beyond_the_edge(orders, rdp, index)
    best = float(np.min(curve(beyond, estimate)))
    if what == "epsilon":
        material, shown = best < found - _EDGE_GAIN * abs(found), (found, best)
    else:
        material, shown = best < found + math.log1p(-_EDGE_GAIN), (math.exp(found), math.exp(best))
    if not material:
        return
    warnings.warn(f"the best Renyi order for {what} is {orders[index]:g}, at the edge of the order grid "
                  f"[{orders.min():g}, {orders.max():g}]; orders beyond it could lower {what} from {shown[0]:.4g} "
                  f"to about {shown[1]:.4g} (the value given is a sound bound either way)",
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
    check_choice("conversion", conversion, CONVERSIONS)

    def curve(orders, rdp):
        if conversion == "improved":
            eps = rdp + np.log1p(-1.0 / orders) - (math.log(delta) + np.log(orders)) / (orders - 1.0)
        else:
            eps = rdp + math.log(1.0 / delta) / (orders - 1.0)
        return np.where(np.isfinite(rdp), eps, np.inf)

    eps = curve(orders, rdp)
    index = int(np.argmin(eps))
    if not np.isfinite(eps[index]):
        return math.inf, math.nan
    if warn:
        _warn_if_edge(orders, rdp, index, "epsilon", curve, float(eps[index]))
    return max(float(eps[index]), 0.0), float(orders[index])


def delta_from_rdp(orders, rdp, epsilon: float, *, warn: bool = True) -> tuple[float, float]:
    """(delta, optimal order): the improved conversion solved for delta,
    log delta = (a-1)(rho(a) - eps + log(1 - 1/a)) - log a, capped at 1.
    """
    orders, rdp = _check_rdp(orders, rdp)
    epsilon = check_epsilon(epsilon)

    def curve(orders, rdp):
        with np.errstate(invalid="ignore"):
            log_delta = (orders - 1.0) * (rdp - epsilon + np.log1p(-1.0 / orders)) - np.log(orders)
        return np.where(np.isfinite(rdp), log_delta, np.inf)

    log_delta = curve(orders, rdp)
    index = int(np.argmin(log_delta))
    if not np.isfinite(log_delta[index]):
        return 1.0, math.nan
    if warn:
        _warn_if_edge(orders, rdp, index, "delta", curve, float(log_delta[index]))
    return float(min(math.exp(log_delta[index]), 1.0)), float(orders[index])
