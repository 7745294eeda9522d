"""One step's privacy-loss distribution on the uniform grid k * step, pessimistically (docs/theory.md §4.5).

Both paths use the connect-the-dots split (Doroshenko, Ghazi, Kamath, Kumar, Manurangsi 2022): the loss mass
of a bin [g, g + h] with P-mass P_b and Q-mass Q_b goes to its ends as
    upper end: (P_b - e^g Q_b) / (1 - e^{-h}),   lower end: the rest,
which makes the step's hockey-stick curve the chord interpolation (in e^eps) of the true one at the grid
points: above it everywhere, equal at every grid point.

- A family with a registered closed form (``registry.loss_pmf_closed_form``), e.g. Gaussian pairs
  (``gaussian_loss_pmf``): the loss is monotone in x, so each bin is an x-interval with closed-form normal masses
  (log_ndtr, log space: masses down to 1e-300 and below stay exact).
- Any other density: the fine x-partition of ``xgrid`` is histogrammed cell by cell (numba). A cell whose loss
  range lies in one bin is split exactly as above; a cell straddling grid points is rounded up to the grid
  point above its largest loss (pessimistic; its mean shift enters ``rounding_bias``).
Loss above the window goes to +inf, loss below it moves up to the first grid point; both count in
``slack_mass``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._logmath import log1mexp_kernel, log_mixture
from . import xgrid
from .pmf import UNDERFLOW_FLOOR, LossPMF, from_log_masses
from .profile import ProfilePair
from .registry import loss_pmf_closed_form


@numba.njit(cache=True)
def _log_ndtr(x: float) -> float:
    """log Phi(x), relative accuracy ~1e-15 for all x (erfc, then the asymptotic series below -37)."""
    if x > 5.0:
        return math.log1p(-0.5 * math.erfc(x / math.sqrt(2.0)))
    if x > -37.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    # Phi(x) = phi(x)/|x| * (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8 - 945/x^10), x -> -inf
    inv2 = 1.0 / (x * x)
    series = 1.0 - inv2 * (1.0 - 3.0 * inv2 * (1.0 - 5.0 * inv2 * (1.0 - 7.0 * inv2 * (1.0 - 9.0 * inv2))))
    return -0.5 * x * x - 0.5 * math.log(2.0 * math.pi) - math.log(-x) + math.log(series)


@numba.njit(cache=True)
def _log_normal_masses(edges: np.ndarray) -> np.ndarray:
    """log P(e_i < Z < e_{i+1}) for standard normal Z and sorted edges (+-inf allowed), accurate in both
    tails: differences of upper tails right of 0, of lower tails left of 0 (one log_ndtr per edge)."""
    n = edges.shape[0] - 1
    log_tail = np.empty(n + 1)  # log S(e) = log Phi(-e) for e >= 0, log Phi(e) for e < 0
    for i in range(n + 1):
        e = edges[i]
        log_tail[i] = -math.inf if abs(e) == math.inf else _log_ndtr(-abs(e))
    out = np.empty(n)
    for i in range(n):
        a, b = edges[i], edges[i + 1]
        if not b > a:
            out[i] = -math.inf
        elif a >= 0.0:  # S(a) - S(b)
            out[i] = log_tail[i] + log1mexp_kernel(min(log_tail[i + 1] - log_tail[i], 0.0))
        elif b <= 0.0:  # Phi(b) - Phi(a)
            out[i] = log_tail[i + 1] + log1mexp_kernel(min(log_tail[i] - log_tail[i + 1], 0.0))
        else:  # 1 - Phi(a) - S(b)
            out[i] = math.log1p(-(math.exp(log_tail[i]) + math.exp(log_tail[i + 1])))
    return out


def _remove_loss_inverse(loss: np.ndarray, mu: float, rate: float) -> np.ndarray:
    """x with log(1 - q + q e^{mu x - mu^2/2}) = loss (the remove-direction loss of N(0,1) vs the mixture)."""
    loss = np.asarray(loss, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # log(e^l - 1 + q) = l + log(1 - (1-q) e^{-l})
        log_excess = np.where(
            loss > 30.0, loss + np.log1p(-(1.0 - rate) * np.exp(-loss)), np.log(np.expm1(loss) + rate)
        )
        x = (log_excess - math.log(rate)) / mu + 0.5 * mu
    return np.where(np.isnan(x), -np.inf, x)


def _gaussian_remove_masses(mu: float, rate: float, remove_edges: np.ndarray):
    """(log P, log Q) of the x-intervals between the remove-loss edges, with both outer tails appended."""
    x = np.concatenate([[-np.inf], _remove_loss_inverse(remove_edges, mu, rate), [np.inf]])
    log_q = _log_normal_masses(x)  # Q = N(0, 1)
    log_shifted = _log_normal_masses(x - mu)
    return log_mixture(log_q, log_shifted, rate), log_q


def _split_bins(log_p: np.ndarray, log_q: np.ndarray, lower: np.ndarray, step: float):
    """Connect-the-dots: (log mass to the lower end, log mass to the upper end) of each bin [lower, lower+h]."""
    with np.errstate(invalid="ignore"):
        ratio = np.exp(np.minimum(lower + log_q - log_p, 0.0))  # e^g Q_b / P_b in [e^{-h}, 1]
    ratio = np.where(np.isnan(ratio), 1.0, np.maximum(ratio, math.exp(-step)))
    denominator = -math.expm1(-step)
    with np.errstate(divide="ignore"):
        log_up = log_p + np.log((1.0 - ratio) / denominator)
        log_down = log_p + np.log((ratio - math.exp(-step)) / denominator)
    return log_down, log_up


def gaussian_loss_pmf(pair, step: float, low: int, high: int, tilt: float) -> LossPMF:
    """One step of a Gaussian ``pair`` from closed-form normal masses (the loss is monotone in x)."""
    mu = pair.shift / pair.noise.sigma
    rate = pair.sample_rate
    own_edges = np.arange(low, high + 1) * step
    if pair.direction == "remove":
        log_p, log_q = _gaussian_remove_masses(mu, rate, own_edges)
    else:  # the add loss is minus the remove loss; P_add = Q_remove, Q_add = P_remove, order reversed
        log_p_rem, log_q_rem = _gaussian_remove_masses(mu, rate, -own_edges[::-1])
        log_p, log_q = log_q_rem[::-1], log_p_rem[::-1]
    below, above = math.exp(log_p[0]), math.exp(log_p[-1])
    log_down, log_up = _split_bins(log_p[1:-1], log_q[1:-1], own_edges[:-1], step)
    log_masses = np.full(own_edges.size, -np.inf)
    log_masses[:-1] = log_down
    log_masses[1:] = np.logaddexp(log_masses[1:], log_up)
    log_masses[0] = np.logaddexp(log_masses[0], log_p[0])  # loss below the window: moved up to its start
    return from_log_masses(
        log_masses,
        low,
        step,
        tilt,
        inf_mass=above,
        slack_mass=below + above,
        rounding_var=step**2,
        rounding_bias=step * math.tanh(0.25 * step),
    )


@numba.njit(cache=True)
def _histogram(log_p, log_q, loss_min, loss_max, step, low, high, tilt, log_ref):
    """Tilted grid masses from cells; returns (values, inf_mass, slack, straddle_bias, straddle_width)."""
    values = np.zeros(high - low + 1)
    inf_mass = 0.0
    slack = 0.0
    bias = 0.0
    width = 0.0
    down_floor = math.exp(-step)
    denominator = -math.expm1(-step)
    for c in range(log_p.shape[0]):
        lp = log_p[c]
        if lp == -math.inf:
            continue
        mass = math.exp(lp)
        if loss_max[c] == math.inf or log_q[c] == -math.inf:
            inf_mass += mass
            continue
        k_up = math.ceil(loss_max[c] / step - 1e-9)
        k_low = math.floor(loss_min[c] / step + 1e-9)
        if k_up > high:
            inf_mass += mass
            slack += mass
            continue
        if k_up <= low or loss_min[c] < low * step:
            values[max(k_up, low) - low] += math.exp(lp + tilt * max(k_up, low) * step - log_ref)
            slack += mass  # moved up from below the window (or rounded from a cell reaching below it)
            continue
        if k_up == k_low:
            values[k_up - low] += math.exp(lp + tilt * k_up * step - log_ref)
        elif k_up == k_low + 1 and k_low >= low:
            g = k_low * step
            ratio = min(max(math.exp(min(g + log_q[c] - lp, 0.0)), down_floor), 1.0)
            up = (1.0 - ratio) / denominator
            values[k_up - low] += up * math.exp(lp + tilt * k_up * step - log_ref)
            values[k_low - low] += (1.0 - up) * math.exp(lp + tilt * g - log_ref)
        else:
            values[k_up - low] += math.exp(lp + tilt * k_up * step - log_ref)
            shift = k_up * step - loss_min[c]
            bias += mass * shift
            width = max(width, shift)
    return values, inf_mass, slack, bias, width


def _histogrammed(pair, step: float, low: int, high: int, tilt: float) -> LossPMF:
    cells = xgrid.cells_for(pair, step)
    clipped = np.clip(np.where(np.isfinite(cells.loss_max), cells.loss_max, high * step), low * step, high * step)
    log_ref = float(np.max(cells.log_p + tilt * (clipped + step)))
    values, inf_mass, slack, bias, width = _histogram(
        cells.log_p, cells.log_q, cells.loss_min, cells.loss_max, step, low, high, tilt, log_ref
    )
    peak = float(values.max())
    if not peak > 0:
        raise ValueError("privacy-loss distribution has no finite mass on its grid")
    return LossPMF(
        step,
        low,
        values / peak,
        log_ref + math.log(peak),
        tilt,
        roundoff=UNDERFLOW_FLOOR,
        inf_mass=min(inf_mass + cells.tail_p, 1.0),
        slack_mass=slack + cells.tail_p,
        rounding_var=max(step, width) ** 2,
        rounding_bias=step * math.tanh(0.25 * step) + bias,
    )


def discretise(pair, step: float, low: int, high: int, tilt: float) -> LossPMF:
    """One step of ``pair`` on the grid indices low..high (loss k * step), tilted by ``tilt``."""
    if isinstance(pair, ProfilePair):
        return pair.loss_pmf(step, low, high, tilt)
    closed_form = loss_pmf_closed_form(pair.noise, pair, step, low, high, tilt)
    if closed_form is not None:
        return closed_form
    return _histogrammed(pair, step, low, high, tilt)
