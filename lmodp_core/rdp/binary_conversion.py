"""RDP -> epsilon through the worst binary pair: the tightest epsilon that an RDP curve alone certifies.

For any pair (P, Q) and its optimal set A for the hockey-stick divergence, the binary pair (P(A), Q(A)) has the
same value P(A) - e^eps Q(A) and, by data processing, D_a(P(A) || Q(A)) <= D_a(P || Q) at every order at once
(van Erven & Harremoes 2014, arXiv:1206.2459, Thm. 9). So for a mechanism whose RDP is at most rho(a) at every
listed order,
    delta(eps) <= sup { p - e^eps q : 0 <= q <= p <= 1, D_a(Bern(p) || Bern(q)) <= rho(a) for every order a }.
For fixed q the feasible p form an interval [q, p_max(q)] (the Renyi moment is convex in p), and p_max is
non-decreasing in q (D_a is quasi-convex in its second argument, ibid. Thm. 13, and 0 at q = p). Hence for a grid
q_0 < ... < q_N = 1 with p_max(q_0) <= delta,
    delta(eps) <= max_i p_max(q_{i+1}) - e^eps q_i,   eps(delta) <= max_i log((p_max(q_{i+1}) - delta) / q_i).
Using only some of the orders keeps this an upper bound (fewer constraints). The grid is refined around the
maximum; the answer is also capped by the improved conversion (``epsilon_from_rdp``), so it is never larger.
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import check_delta
from .conversion import _check_rdp, epsilon_from_rdp

_KEPT_ORDERS = 24  # the orders whose improved-conversion epsilon is smallest constrain the pair
_COARSE_POINTS = 256
_REFINE_ROUNDS = 4
_REFINED_INTERVALS = 32  # per round, the intervals with the largest bound
_SUBDIVISION = 16
_BISECTIONS = 56  # on the logit of p, from a bracket of width < 800
_LOGIT_ONE = 745.0  # logit of the largest p below 1 (treated as p = 1)
_BUDGET_SLACK = 1e-10  # added to each log-moment budget: rounding never shrinks the feasible set
_RTOL = 1e-5  # stop refining once the bound is within this of the pointwise estimate


def _softplus(z):
    return np.logaddexp(0.0, z)


def _log_p_max(orders: np.ndarray, log_moment_budget: np.ndarray, logit_q: np.ndarray) -> np.ndarray:
    """log of an upper bound on p_max(q) for each q (bisection on logit p, keeping the infeasible end)."""
    a = orders[:, None]
    log_q, log_1mq = -_softplus(-logit_q)[None, :], -_softplus(logit_q)[None, :]
    low = np.broadcast_to(logit_q, (orders.size, logit_q.size)).copy()  # p = q: divergence 0, feasible
    high = np.full(low.shape, _LOGIT_ONE)
    budget = log_moment_budget[:, None] + _BUDGET_SLACK
    for _ in range(_BISECTIONS):
        mid = 0.5 * (low + high)
        log_p, log_1mp = -_softplus(-mid), -_softplus(mid)
        # log(p^a q^{1-a} + (1-p)^a (1-q)^{1-a}) = (a-1) D_a(Bern(p) || Bern(q))
        feasible = np.logaddexp(a * log_p + (1 - a) * log_q, a * log_1mp + (1 - a) * log_1mq) <= budget
        low, high = np.where(feasible, mid, low), np.where(feasible, high, mid)
    upper = np.where(high >= _LOGIT_ONE, 0.0, -_softplus(-high))
    return upper.min(axis=0)


def _interval_bounds(log_q: np.ndarray, log_p_max: np.ndarray, delta: float) -> np.ndarray:
    """log((p_max(q_{i+1}) - delta) / q_i) per interval (-inf where p_max <= delta)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.exp(log_p_max[1:]) - delta
        return np.where(excess > 0, np.log(np.maximum(excess, 1e-300)) - log_q[:-1], -np.inf)


def binary_pair_epsilon(orders, rdp, delta: float) -> float:
    """A sound epsilon at ``delta`` from an RDP curve, via the worst binary pair (module docstring); at most the
    improved conversion's value."""
    orders, rdp = _check_rdp(orders, rdp)
    delta = check_delta(delta)
    improved, _ = epsilon_from_rdp(orders, rdp, delta, warn=False)
    finite = np.isfinite(rdp)
    if not math.isfinite(improved) or not np.any(finite):
        return improved
    per_order = (
        rdp[finite]
        + np.log1p(-1.0 / orders[finite])
        - (math.log(delta) + np.log(orders[finite])) / (orders[finite] - 1.0)
    )  # the improved conversion at each order alone
    kept = np.argsort(per_order)[:_KEPT_ORDERS]
    kept_orders, budget = orders[finite][kept], ((orders[finite] - 1.0) * rdp[finite])[kept]
    # below q_0, p_max(q) <= min_a q^{(a-1)/a} e^{budget/a} <= delta
    log_q0 = float(np.min(kept_orders / (kept_orders - 1.0) * math.log(delta) - budget / (kept_orders - 1.0))) - 1.0
    log_q = np.linspace(log_q0, 0.0, _COARSE_POINTS)
    log_p_max = _log_p_max(kept_orders, budget, log_q - np.log(-np.expm1(np.minimum(log_q, -1e-300))))
    log_p_max[-1] = 0.0  # q = 1
    if log_p_max[0] > math.log(delta):
        return improved
    for _ in range(_REFINE_ROUNDS):
        bounds = _interval_bounds(log_q, log_p_max, delta)
        with np.errstate(divide="ignore", invalid="ignore"):
            pointwise = np.log(np.maximum(np.exp(log_p_max) - delta, 0.0)) - log_q
        if bounds.max() - pointwise.max() <= _RTOL * max(abs(bounds.max()), 1.0):
            break
        widest = np.argsort(bounds)[-_REFINED_INTERVALS:]
        fractions = np.arange(1, _SUBDIVISION) / _SUBDIVISION
        new_log_q = (log_q[widest, None] + fractions * (log_q[widest + 1] - log_q[widest])[:, None]).ravel()
        new_log_q = new_log_q[new_log_q < 0.0]
        new_log_p = _log_p_max(kept_orders, budget, new_log_q - np.log(-np.expm1(new_log_q)))
        order = np.argsort(np.concatenate([log_q, new_log_q]), kind="stable")
        log_q = np.concatenate([log_q, new_log_q])[order]
        log_p_max = np.concatenate([log_p_max, new_log_p])[order]
    return min(max(float(_interval_bounds(log_q, log_p_max, delta).max()), 0.0), improved)
