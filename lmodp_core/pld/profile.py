"""Dominating pairs built from a bound on the privacy profile, for steps without a known dominating shift
(vector geometry with non-Gaussian noise, user densities): docs/accounting.md, "PLD from the RDP profile".

For one unsampled step with sup-over-shifts RDP curve rho(a) (``rdp.step.interpolated_unsampled_rdp``), every shift s
of the geometry's ball has, at every eps >= 0 (Canonne, Kamath, Steinke 2020, arXiv:2004.00010, Prop. 12),
    E_{e^eps}(P_s || Q) <= D(eps) = min(1, min_a exp((a-1)(rho(a) - eps + log(1 - 1/a)) - log a)),
and E(Q || P_s) = E(P_{-s} || Q) (translate by -s; the ball is symmetric), so D bounds both orders. Poisson
sampling at rate q acts on the profile exactly (advanced joint convexity, Balle, Barthe, Gaboardi 2018,
arXiv:1807.01647, Thm. 2, written out for the two add/remove directions), for gamma = e^eps >= 1:
    remove (P = (1-q) Q + q P_s vs Q): E_gamma = q E_{1 + (gamma - 1)/q}(P_s || Q)
    add    (Q vs (1-q) Q + q P_s):     E_gamma = c E_{gamma q / c}(Q || P_s),  c = 1 - gamma (1-q)  (0 if c <= 0)
and below gamma = 1 each direction is the other's mirror, E_gamma(P || Q) = 1 - gamma + gamma E_{1/gamma}(Q || P).
These bounds hold for every s at once, so a pair whose hockey-stick curve lies above them dominates the step, and
dominating pairs compose by convolution (Zhu, Dong, Wang 2022, arXiv:2106.08567).

``ProfilePair.loss_pmf`` builds that pair on the loss grid with the connect-the-dots construction read backwards
(Doroshenko et al. 2022, arXiv:2207.04380): the lower convex hull, in gamma, of the bounds at the grid points is a
valid hockey-stick curve (convex, non-increasing, >= 1 - gamma) that lies above the true curve of every shift,
and its slope changes are the grid masses. The result is sound for any T; it beats RDP composition where the
profile is tight, i.e. for few steps with subsampling (the RDP-to-(eps, delta) conversion is paid once per step
instead of once in all, so for many steps RDP wins; the accountant takes the smaller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

from .._logmath import log1mexp_kernel, logaddexp_kernel, logsumexp
from ..geometry import Geometry
from ..noise import Noise
from .pmf import LossPMF, from_log_masses

_LOG_FLOOR = -745.0  # exp underflows below: the profile is read as 0 there
_INFLATION = 1e-12  # relative margin on every profile value (float round-off of the bound's evaluation)
_PLANNING_POINTS = 1024


def _lines(orders: np.ndarray, rdp: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(intercepts, slopes) of the lines log D_a(eps) = (a-1)(rho(a) + log(1 - 1/a)) - log a - (a-1) eps, one per
    order with a finite RDP value: their lower envelope, capped at 0, is log D (the unsampled profile bound)."""
    finite = np.isfinite(rdp)
    a, rho = orders[finite], rdp[finite]
    intercepts = (a - 1.0) * (rho + np.log1p(-1.0 / a)) - np.log(a)
    return tuple(intercepts.tolist()), tuple((-(a - 1.0)).tolist())


@lru_cache(maxsize=256)
def _step_lines(noise: Noise, geometry: Geometry) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from ..rdp import DEFAULT_ORDERS
    from ..rdp.step import interpolated_unsampled_rdp

    return _lines(DEFAULT_ORDERS, interpolated_unsampled_rdp(noise, geometry, DEFAULT_ORDERS))


def has_profile(noise: Noise, geometry: Geometry) -> bool:
    """True when the unsampled step has a finite RDP value at some order (else the profile bound is trivial)."""
    return len(_step_lines(noise, geometry)[0]) > 0


@dataclass(frozen=True)
class ProfilePair:
    """One direction of one step, dominated through the profile bound above (see the module docstring): the lines
    of the unsampled bound, the sampling rate and the direction."""

    intercepts: tuple[float, ...]
    slopes: tuple[float, ...]
    sample_rate: float
    direction: str

    def _log_unsampled(self, epsilon: np.ndarray) -> np.ndarray:
        """log D(eps) for eps >= 0."""
        breakpoints, intercepts, slopes = _lower_envelope(self.intercepts, self.slopes)
        if intercepts.size == 0:
            return np.zeros(epsilon.shape)
        line = np.searchsorted(breakpoints, epsilon, side="right")
        return np.minimum(intercepts[line] + slopes[line] * epsilon, 0.0)

    def _log_nonnegative(self, epsilon: np.ndarray, direction: str) -> np.ndarray:
        """log of the bound on E_{e^eps} of ``direction`` at eps >= 0."""
        q = self.sample_rate
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if direction == "remove":  # q D(log(1 + (e^eps - 1)/q)) = q D(log(e^eps - (1-q)) - log q)
                inner = epsilon + np.log1p(-(1.0 - q) * np.exp(-epsilon)) - math.log(q)
                return math.log(q) + self._log_unsampled(np.maximum(inner, 0.0))
            log_c = np.log1p(-(1.0 - q) * np.exp(epsilon))  # c = 1 - e^eps (1-q)
            inner = np.where(np.isfinite(log_c), epsilon + math.log(q) - log_c, 0.0)
            return np.where(np.isfinite(log_c), log_c + self._log_unsampled(np.maximum(inner, 0.0)), -np.inf)

    def log_delta(self, epsilon) -> np.ndarray:
        """log of this direction's profile bound at every eps (any sign)."""
        epsilon = np.asarray(epsilon, dtype=float)
        out = np.empty(epsilon.shape)
        upper = epsilon >= 0.0
        out[upper] = self._log_nonnegative(epsilon[upper], self.direction)
        other = "add" if self.direction == "remove" else "remove"
        gamma = np.exp(epsilon[~upper])
        mirrored = np.exp(self._log_nonnegative(-epsilon[~upper], other))  # 1 - gamma + gamma * E_{1/gamma}(other)
        out[~upper] = np.log1p(-gamma * (1.0 - mirrored))
        return out

    def loss_pmf(self, step: float, low: int, high: int, tilt: float) -> LossPMF:
        """This pair on the grid indices low..high (loss k * step): loss above the window goes to +inf, below it to
        the first grid point (both pessimistic)."""
        losses = np.arange(low, high + 1) * step
        log_bound = np.minimum.accumulate(self.log_delta(losses)) + _INFLATION  # the true curve is non-increasing
        log_bound = np.where(log_bound < _LOG_FLOOR, -np.inf, np.minimum(log_bound, 0.0))
        log_masses, log_inf_mass = _hull_masses(losses, log_bound)
        inf_mass = math.exp(log_inf_mass)
        return from_log_masses(
            log_masses,
            low,
            step,
            tilt,
            inf_mass=inf_mass,
            slack_mass=inf_mass,
            rounding_var=step**2,
            rounding_bias=step * math.tanh(0.25 * step),
        )

    def _reach(self) -> float:
        """A loss beyond which both directions' bounds are below e^_LOG_FLOOR (the remove bound is the larger for
        eps >= 0, and non-increasing): the first of a geometric then a linear probe grid (within 1%)."""
        coarse = np.geomspace(1e-4, 1e6, 301)
        below = coarse[self._log_nonnegative(coarse, "remove") <= _LOG_FLOOR]
        if below.size == 0:
            return float(coarse[-1])
        fine = np.linspace(below[0] / coarse[1] * coarse[0], below[0], 101)
        return float(fine[np.argmax(self._log_nonnegative(fine, "remove") <= _LOG_FLOOR)])

    def log_moment(self, orders: np.ndarray) -> np.ndarray:
        """K(lambda) = log E_P[e^{lambda L}] of the pair on a planning grid reaching 25% beyond ``_reach`` (for the
        composition plan only: a window too narrow costs tightness, never soundness)."""
        step = 2.5 * self._reach() / _PLANNING_POINTS
        half = _PLANNING_POINTS // 2
        pmf = self.loss_pmf(step, -half, half, 0.0)
        lam = np.asarray(orders, dtype=float)[:, None]
        with np.errstate(divide="ignore"):
            log_masses = np.log(pmf.values) + pmf.log_scale
            moments = logsumexp(log_masses[None, :] + lam * pmf.losses[None, :], axis=1)
        # the bound decays like e^{-(a_max - 1) eps} at most: beyond that tilt only the cut at e^_LOG_FLOOR is finite
        steepest = -min(self.slopes, default=0.0)
        return np.where((lam[:, 0] > 0) & ((pmf.inf_mass > 0) | (lam[:, 0] >= steepest)), np.inf, moments)


@lru_cache(maxsize=256)
def _lower_envelope(intercept_key: tuple, slope_key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(breakpoints, intercepts, slopes): the lines a + b x that attain min_i (a_i + b_i x) somewhere, by decreasing
    slope, with the x where each next one takes over (distinct slopes). Cached: both directions share the lines."""
    intercepts, slopes = np.asarray(intercept_key), np.asarray(slope_key)
    kept: list[int] = []

    def crossing(i: int, j: int) -> float:
        return (intercepts[j] - intercepts[i]) / (slopes[i] - slopes[j])

    for line in np.argsort(-slopes):
        while len(kept) >= 2 and crossing(kept[-2], line) <= crossing(kept[-2], kept[-1]):
            kept.pop()
        kept.append(int(line))
    breakpoints = np.array([crossing(i, j) for i, j in zip(kept, kept[1:])])
    return breakpoints, intercepts[kept], slopes[kept]


def _both_directions(lines: tuple[tuple[float, ...], tuple[float, ...]], sample_rate: float):
    intercepts, slopes = lines
    return ProfilePair(intercepts, slopes, sample_rate, "remove"), ProfilePair(intercepts, slopes, sample_rate, "add")


def profile_pairs(noise: Noise, geometry: Geometry, sample_rate: float) -> tuple[ProfilePair, ProfilePair]:
    """(remove, add) profile pairs of one Poisson-sampled step of ``noise`` in ``geometry``."""
    return _both_directions(_step_lines(noise, geometry), sample_rate)


def zero_divergence_pairs(sample_rate: float) -> tuple[ProfilePair, ProfilePair]:
    """The profile pairs of a step with zero RDP at every default order. The bound is non-decreasing in the RDP
    curve, so no profile pair certifies less: their composition is this method's floor."""
    from ..rdp import DEFAULT_ORDERS

    return _both_directions(_lines(DEFAULT_ORDERS, np.zeros(DEFAULT_ORDERS.shape)), sample_rate)


@numba.njit(cache=True)
def _log_slope(losses, log_bound, i, j):
    """log of (d_i - d_j) / (gamma_j - gamma_i) for i < j (d non-increasing, gamma = e^loss)."""
    if log_bound[i] == -math.inf:
        return -math.inf
    drop = log_bound[i] + log1mexp_kernel(min(log_bound[j] - log_bound[i], 0.0))
    gap = losses[j] - losses[i]  # log(gamma_j - gamma_i) = l_i + log(e^gap - 1) = l_i + gap + log(1 - e^-gap)
    return drop - losses[i] - gap - log1mexp_kernel(-gap)


@numba.njit(cache=True)
def _hull_masses(losses, log_bound):
    """(log masses at the grid losses, log mass at +inf) of the pair whose hockey-stick curve is the lower convex
    hull, in gamma, of the points (e^loss, bound): a mass e^l (S_before - S_after) at each hull vertex, where S is
    the hull's descent rate; the last vertex keeps S_before e^l and its bound goes to +inf; the remaining P-mass
    goes to the second vertex."""
    n = losses.shape[0]
    hull = np.empty(n, dtype=np.int64)
    size = 0
    for j in range(n):
        while size >= 2 and _log_slope(losses, log_bound, hull[size - 2], hull[size - 1]) <= _log_slope(
            losses, log_bound, hull[size - 1], j
        ):
            size -= 1
        hull[size] = j
        size += 1
    log_masses = np.full(n, -math.inf)
    finite_total = 0.0
    for v in range(1, size):
        k = hull[v]
        before = _log_slope(losses, log_bound, hull[v - 1], k)
        if v < size - 1:
            after = _log_slope(losses, log_bound, k, hull[v + 1])
            if before > -math.inf:
                log_masses[k] = losses[k] + before + log1mexp_kernel(min(after - before, 0.0))
        else:
            log_masses[k] = losses[k] + before
        if log_masses[k] > -math.inf:
            finite_total += math.exp(log_masses[k])
    log_inf = log_bound[hull[size - 1]]
    rest = 1.0 - finite_total - math.exp(log_inf)  # the P-mass left for the first vertex, often round-off only
    if rest > 0.0:  # moved up to the next vertex (a larger loss: pessimistic), so no stray atom sets the plan's tails
        k = hull[min(1, size - 1)]
        log_masses[k] = (
            math.log(rest) if log_masses[k] == -math.inf else logaddexp_kernel(log_masses[k], math.log(rest))
        )
    return log_masses, log_inf
