"""The LMO-DP paper's own privacy formulas (arXiv 2405.18776), for reproduction and audit (docs/theory.md §2, §4.8).

Nothing here is a privacy guarantee and no accountant uses it. The module exists so that published numbers can
be reproduced and set next to the sound ones (``lmodp_core.auditing``):

* ``paper_rdp_bound`` — the paper's per-order bound for one scalar shift s (joint convexity over the Laplace
  scale, docs/theory.md §4.1):  r_a(s) <= 1/(a-1) log[(a M_U((a-1)s) + (a-1) M_U(-a s)) / (2a-1)].
  It is a valid upper bound where it is finite; outside the MGF domain of U it is +inf.
* ``paper_rdp_as_published`` — the same formula evaluated the way the paper's code did, multiplying the Gamma
  and Exponential MGFs also at orders outside their domain. There the factors are powers of negative numbers;
  their product can come out positive and finite, so the "bound" looks small although the true divergence is
  larger (docs/theory.md §2 F1). This is **wrong** and is kept only because the published parameter sets were tuned
  against it: with ``PAPER_ORDERS`` it reproduces their labels (0.293, 0.693, 1.93, 3.00, 4.92).
* ``paper_epsilon`` — the paper-style single-step epsilon: shift 1 (sensitivity 1), one step, no sampling, the
  RDP-to-DP conversion eps = r_a + log((a-1)/a) - (log delta + log a)/(a-1) (the library's "improved"
  conversion, which reproduces the published values), minimised over the orders.
* ``paper_overall_epsilon`` — the paper's route to an overall epsilon (docs/theory.md §2 F4): find the Gaussian sigma
  whose single-step (eps, delta) curve passes through the paper-style (eps_1, delta), then compose a Poisson-
  subsampled Gaussian with that sigma. Mapping through a Gaussian is not a bound for LMO noise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from . import accountant
from .geometry import L2Ball
from .noise import LMO, Gaussian
from .rdp import epsilon_from_rdp
from .sampling import Poisson
from .validation import check_delta, check_orders, check_positive, check_sample_rate, check_steps

# Orders 1.1..10.9, 12..63 and 128: the published parameter labels are the epsilons this grid gives with
# ``paper_rdp_as_published`` (the minimum sits at order 128 for the 0.3, 0.7 and 5 sets).
PAPER_ORDERS = np.concatenate([1.0 + np.arange(1, 100) / 10.0, np.arange(12.0, 64.0), [128.0]])


def _as_lmo(noise) -> LMO:
    if isinstance(noise, dict):
        return LMO.from_paper(noise)
    if not isinstance(noise, LMO):
        raise ValueError(f"noise must be an LMO or a paper parameter dict, got {noise!r}")
    return noise


def _shift_order_grid(shifts, orders) -> tuple[np.ndarray, np.ndarray]:
    shifts = np.atleast_1d(np.asarray(shifts, dtype=float))
    if shifts.ndim != 1 or not np.all(np.isfinite(shifts)) or np.any(shifts <= 0):
        raise ValueError(f"shifts must be a 1-D sequence of finite numbers > 0, got {shifts!r}")
    return shifts[:, None], check_orders(orders)[None, :]


def paper_rdp_bound(noise, shifts, orders) -> np.ndarray:
    """The paper's bound on r_a(s), shape (n_shifts, n_orders); +inf where an MGF argument leaves the domain."""
    lmo = _as_lmo(noise)
    s, a = _shift_order_grid(shifts, orders)
    s = s / lmo.scale  # c*Z shifted by s has the divergence of Z shifted by s/c
    log_up = lmo.log_mgf_u((a - 1.0) * s)
    log_down = lmo.log_mgf_u(-a * s)
    # log[(a M_U((a-1)s) + (a-1) M_U(-a s)) / (2a-1)] / (a-1)    (docs/theory.md §4.1)
    log_bracket = np.logaddexp(np.log(a) + log_up, np.log(a - 1.0) + log_down) - np.log(2.0 * a - 1.0)
    return log_bracket / (a - 1.0)


def _mgf_u_as_published(lmo: LMO, v: np.ndarray) -> np.ndarray:
    """M_U(v) multiplied out in real arithmetic at any v, domain ignored (the paper's code; docs/theory.md §2 F1)."""
    value = np.ones_like(v)
    with np.errstate(all="ignore"):
        if lmo.a1 > 0:
            value = value * np.power(1.0 - lmo.gamma_scale * lmo.a1 * v, -lmo.gamma_shape)  # (1 - theta t)^-k
        if lmo.a3 > 0:
            value = value * lmo.exp_rate / (lmo.exp_rate - lmo.a3 * v)  # lambda / (lambda - t)
        if lmo.a4 > 0:
            t = lmo.a4 * v
            width = lmo.unif_high - lmo.unif_low
            # (e^{t b} - e^{t a}) / (t (b - a)), 1 at t = 0
            value = value * np.where(
                t != 0, (np.exp(t * lmo.unif_high) - np.exp(t * lmo.unif_low)) / np.where(t != 0, t * width, 1.0), 1.0
            )
    return value


def paper_rdp_as_published(noise, shifts, orders) -> np.ndarray:
    """The paper's formula evaluated as its code did (out-of-domain orders included) — NOT a bound.

    Where the bracket is not a positive finite number (a pole, a negative product, or a non-integer power of a
    negative number) the formula has no value and the result is +inf, so that order is never selected.
    """
    lmo = _as_lmo(noise)
    s, a = _shift_order_grid(shifts, orders)
    s = s / lmo.scale
    bracket = (a * _mgf_u_as_published(lmo, (a - 1.0) * s) + (a - 1.0) * _mgf_u_as_published(lmo, -a * s)) / (
        2.0 * a - 1.0
    )
    has_value = np.isfinite(bracket) & (bracket > 0)
    return np.where(has_value, np.log(np.where(has_value, bracket, 1.0)) / (a - 1.0), np.inf)


def paper_epsilon(noise, delta, orders=PAPER_ORDERS, *, as_published=True) -> tuple[float, float | None]:
    """The paper-style single-step epsilon (shift 1, no sampling) and the order attaining it (None: none finite).

    ``as_published=True`` reproduces the published numbers (out-of-domain orders, docs/theory.md §2 F1, wrong);
    ``as_published=False`` keeps only orders where the formula is a valid bound (+inf if there are none).
    Reference only: neither is a guarantee for DP-SGD (no geometry, no sampling, no composition).
    """
    delta = check_delta(delta)
    orders = check_orders(orders)
    formula = paper_rdp_as_published if as_published else paper_rdp_bound
    # a divergence is >= 0; the out-of-domain formula could dip below, which no published value relies on
    rdp = np.maximum(formula(noise, [1.0], orders)[0], 0.0)
    return epsilon_from_rdp(orders, rdp, delta, warn=False)


def _gaussian_delta(sigma: float, epsilon: float) -> float:
    """delta(eps) of one Gaussian step, sensitivity 1: Phi(1/(2s) - eps s) - e^eps Phi(-1/(2s) - eps s)."""
    log_a = special.log_ndtr(0.5 / sigma - epsilon * sigma)
    log_b = epsilon + special.log_ndtr(-0.5 / sigma - epsilon * sigma)
    return math.exp(log_a) * -math.expm1(log_b - log_a) if log_a > log_b else 0.0


def matching_gaussian_sigma(epsilon, delta) -> float:
    """The sigma whose single Gaussian step (sensitivity 1) is exactly (epsilon, delta)-DP (Balle–Wang 2018)."""
    epsilon = check_positive("epsilon", epsilon)
    delta = check_delta(delta)

    def log_gap(log_sigma: float) -> float:  # decreasing in sigma; zero at the matching sigma
        return math.log(max(_gaussian_delta(math.exp(log_sigma), epsilon), 1e-300)) - math.log(delta)

    return math.exp(optimize.brentq(log_gap, math.log(1e-3), math.log(1e4), xtol=1e-12))


def paper_overall_epsilon(noise, sample_rate, steps, delta) -> tuple[float, float]:
    """The paper's overall epsilon via a matching Gaussian sigma (docs/theory.md §2 F4) and that sigma.

    sigma solves delta_Gauss(eps_1; sigma) = delta for the paper-style single-step eps_1; the result is the tight
    epsilon of ``steps`` Poisson-subsampled Gaussian steps with that sigma. Reference only, not a bound.
    """
    sample_rate = check_sample_rate(sample_rate)
    steps = check_steps(steps)
    single_step, _ = paper_epsilon(noise, delta)
    if not math.isfinite(single_step):
        return math.inf, math.nan
    sigma = matching_gaussian_sigma(single_step, delta)
    overall = accountant.compute_epsilon(Gaussian(sigma), L2Ball(1.0), Poisson(sample_rate), steps, delta)
    return float(overall), sigma
