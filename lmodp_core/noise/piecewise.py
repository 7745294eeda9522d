"""Piecewise-constant (histogram) densities, with an optional geometric tail; every divergence is a finite sum.

A ``PiecewiseNoise`` has bins of width w centred at i*w (i in Z), value g(i) = values[|i|] for |i| < n and,
with a ``tail_ratio`` r, g(i) = values[-1] * r^(|i|-n+1) beyond (otherwise 0 there). For a shift s = (k + t) w
(k integer, 0 <= t < 1) each bin j of f splits into a part of length (1-t) w where f(. - s) = g(j-k) and a part
of length t w where f(. - s) = g(j-k-1): both densities are constant on these cells, so the pair
(f(. - s), f) is exactly a finite list of cell masses, plus two aggregated tail cells on which the density ratio
is constant (r^{-+k} and r^{-+(k+1)}). Renyi divergences, hockey-stick curves and privacy-loss distributions of
the pair and of its Poisson mixtures are then finite sums, computed in log space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import ClassVar

import numpy as np

from .._logmath import logsumexp
from ..validation import check_finite, check_positive
from .base import Noise

_NORMALISATION_TOL = 1e-6
_TAIL_KINK_MASS = 1e-40  # tail bins are listed as kinks (for quadrature/PLD grids) until their mass falls below
_MAX_KINKS = 20_000
_DOMINANCE_RTOL, _DOMINANCE_ATOL = 1e-9, 1e-12  # rounding slack of the exact shift-dominance check (delta)
_SNAP = 1e-12  # a shift within this many bin widths of a multiple of the bin width is taken as that multiple


def _check_values(values) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"values must be a non-empty 1-D sequence of finite numbers >= 0, got {values!r}") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence of finite numbers >= 0, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        bad = array[~(np.isfinite(array) & (array >= 0))][0]
        raise ValueError(f"values must be finite and >= 0, got {bad!r}")
    return array


def _check_tail_ratio(tail_ratio) -> float | None:
    if tail_ratio is None:
        return None
    ratio = check_finite("tail_ratio", tail_ratio)
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"tail_ratio must lie in the open interval (0, 1) or be None, got {ratio!r}")
    return ratio


def _integral(bin_width: float, values: np.ndarray, tail_ratio: float | None) -> float:
    """w * (v_0 + 2 sum_{i>=1} v_i + 2 v_last r / (1 - r))."""
    tail = 0.0 if tail_ratio is None else 2.0 * values[-1] * tail_ratio / (1.0 - tail_ratio)
    return bin_width * (values[0] + 2.0 * float(np.sum(values[1:])) + tail)


@dataclass(frozen=True, repr=False)
class PiecewiseNoise(Noise):
    """A symmetric histogram density (see the module docstring), times ``scale``.

    ``PiecewiseNoise(bin_width, values, tail_ratio=None, scale=1.0)`` must integrate to 1 within 1e-6;
    ``PiecewiseNoise.normalised(...)`` rescales the values first. Its Fisher information is infinite (it has
    jumps): no dimension-free L2 bound exists, while Scalar and L1 geometries are exact and fast.
    """

    bin_width: float
    values: tuple[float, ...]
    tail_ratio: float | None = field(default=None, kw_only=True)
    scale: float = field(default=1.0, kw_only=True)
    family: ClassVar[str] = "piecewise"

    def __post_init__(self):
        bin_width = check_positive("bin_width", self.bin_width)
        array = _check_values(self.values)
        tail_ratio = _check_tail_ratio(self.tail_ratio)
        scale = check_positive("scale", self.scale)
        total = _integral(bin_width, array, tail_ratio)
        if abs(total - 1.0) > _NORMALISATION_TOL:
            raise ValueError(
                f"the density must integrate to 1 (within {_NORMALISATION_TOL:g}): bin_width * "
                f"(values[0] + 2 * sum(values[1:]) + tail) = {total:.9g}; use PiecewiseNoise.normalised"
            )
        self._set_checked(
            bin_width=bin_width, values=tuple(float(v) for v in array), tail_ratio=tail_ratio, scale=scale
        )

    @classmethod
    def normalised(
        cls, bin_width: float, values, *, tail_ratio: float | None = None, scale: float = 1.0
    ) -> PiecewiseNoise:
        """The same shape with the values rescaled to integrate to 1."""
        width = check_positive("bin_width", bin_width)
        array = _check_values(values)
        total = _integral(width, array, _check_tail_ratio(tail_ratio))
        if not total > 0:
            raise ValueError("values must not all be 0")
        return cls(width, tuple(array / total), tail_ratio=tail_ratio, scale=scale)

    @classmethod
    def staircase(
        cls, epsilon0: float, gamma: float | None = None, sensitivity: float = 1.0, *, max_bins_per_step: int = 64
    ) -> PiecewiseNoise:
        """The staircase mechanism of Geng & Viswanath (2016, Thm. 4): density a e^{-j eps0} on
        [j D, j D + gamma D) and a e^{-(j+1) eps0} on [j D + gamma D, (j+1) D), mirrored (D = sensitivity).

        gamma defaults to the optimum for the variance, 1/(1 + e^{eps0/2}), and is rounded to the nearest
        (2i+1)/(2m) with m <= ``max_bins_per_step`` so that the steps fall on a grid of bins of width D/m.
        Any gamma in [0, 1] gives pure eps0-DP for shifts up to D (f(x)/f(x+s) <= e^{eps0}), so rounding keeps
        the guarantee. After 20/eps0 steps (at least 8; mass e^{-20} beyond) the staircase continues as a
        geometric tail decaying by e^{-eps0/m} per bin, which keeps every ratio over a shift <= D at most e^{eps0}.
        """
        eps0 = check_positive("epsilon0", epsilon0)
        sens = check_positive("sensitivity", sensitivity)
        gamma = 1.0 / (1.0 + math.exp(eps0 / 2.0)) if gamma is None else check_finite("gamma", gamma)
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"gamma must lie in the open interval (0, 1), got {gamma!r}")
        if isinstance(max_bins_per_step, bool) or not isinstance(max_bins_per_step, int) or max_bins_per_step < 1:
            raise ValueError(f"max_bins_per_step must be an integer >= 1, got {max_bins_per_step!r}")
        m, half = min(
            ((m, max(0, min(m - 1, round(gamma * m - 0.5)))) for m in range(1, max_bins_per_step + 1)),
            key=lambda mh: abs((mh[1] + 0.5) / mh[0] - gamma),
        )
        steps = max(8, int(math.ceil(20.0 / eps0)))
        index = np.arange(steps * m + half + 1)
        # bin i covers [(i - 1/2) w, (i + 1/2) w]; it lies in step floor((i - half - 1) / m) + 1 (0 before gamma D)
        level = np.where(index <= half, 0, (index - half - 1) // m + 1)
        return cls.normalised(sens / m, np.exp(-eps0 * level), tail_ratio=math.exp(-eps0 / m))

    # ---- density ----------------------------------------------------------------------------------------
    @cached_property
    def _log_values(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(self.values)) - math.log(self.scale)

    @property
    def _width(self) -> float:
        return self.scale * self.bin_width

    @property
    def shift_knot_spacing(self) -> float:
        """w: every divergence of the pair (f(. - s), f) and of its Poisson mixtures is an integral over cells whose
        lengths are linear in s between multiples of w (module docstring), so it is monotone in s there."""
        return self._width

    def _log_g(self, index: np.ndarray) -> np.ndarray:
        """log density on the bins with the given integer indices (any sign)."""
        index = np.abs(np.asarray(index, dtype=np.int64))
        last = len(self.values) - 1
        inside = self._log_values[np.minimum(index, last)]
        if self.tail_ratio is None:
            return np.where(index <= last, inside, -np.inf)
        beyond = self._log_values[last] + (index - last) * math.log(self.tail_ratio)
        return np.where(index <= last, inside, beyond)

    def _bin_index(self, x) -> np.ndarray:
        return np.floor(np.abs(np.asarray(x, dtype=float)) / self._width + 0.5)

    def logpdf(self, x):
        index = self._bin_index(x)
        cap = len(self.values) + (10**15 if self.tail_ratio is not None else 1)
        return self._log_g(np.minimum(index, cap).astype(np.int64))

    def sf(self, x):
        x = np.asarray(x, dtype=float)
        t = np.abs(x)
        w = self._width
        index = self._bin_index(t)
        capped = np.minimum(index, len(self.values) + 10**15).astype(np.int64)
        density = np.exp(self._log_g(capped))
        upper = density * ((index + 0.5) * w - t) + self._mass_beyond(capped)  # P(Z > |x|)
        return np.where(x >= 0, upper, 1.0 - upper)

    def _mass_beyond(self, index: np.ndarray) -> np.ndarray:
        """P(Z in bins i > index), index >= 0."""
        w = self._width
        values = np.asarray(self.values) / self.scale
        last = len(values) - 1
        ratio = self.tail_ratio or 0.0
        tail_total = w * values[-1] * ratio / (1.0 - ratio)
        suffix = np.concatenate([np.cumsum((w * values)[::-1])[::-1][1:], [0.0]]) + tail_total
        with np.errstate(over="ignore", under="ignore"):
            beyond = w * values[-1] * ratio ** (np.maximum(index, last) - last + 1) / (1.0 - ratio)
        return np.where(index < last, suffix[np.minimum(index, last)], beyond)

    def sample(self, rng, size=None):
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {rng!r}")
        values = np.asarray(self.values)
        masses = np.concatenate([[values[0] * self.bin_width], 2.0 * values[1:] * self.bin_width])  # of |Z|
        tail = (
            0.0
            if self.tail_ratio is None
            else 2.0 * values[-1] * self.bin_width * self.tail_ratio / (1.0 - self.tail_ratio)
        )
        cumulative = np.cumsum(np.append(masses, tail))
        u = rng.random(size) * cumulative[-1]
        index = np.minimum(np.searchsorted(cumulative, u, side="right"), len(cumulative) - 1).astype(float)
        if self.tail_ratio is not None:  # bin n - 1 + k with k ~ Geometric(1 - r) on {1, 2, ...}
            index = np.where(index == len(values), len(values) - 1 + rng.geometric(1.0 - self.tail_ratio, size), index)
        inside = rng.random(size)
        magnitude = np.where(index == 0, 0.5 * inside, index - 0.5 + inside) * self._width
        return np.where(rng.random(size) < 0.5, -magnitude, magnitude)

    def scaled(self, factor):
        return PiecewiseNoise(
            self.bin_width, self.values, tail_ratio=self.tail_ratio, scale=self.scale * check_positive("factor", factor)
        )

    # ---- numerics hints ---------------------------------------------------------------------------------
    @property
    def kinks(self):
        n = len(self.values)
        if self.tail_ratio is not None:
            log_last_mass = math.log(max(self.values[-1], 1e-300))
            n += int(max(0.0, (math.log(_TAIL_KINK_MASS) - log_last_mass) / math.log(self.tail_ratio)))
        edges = (np.arange(min(n, _MAX_KINKS)) + 0.5) * self._width
        return tuple(np.concatenate([-edges[::-1], edges]).tolist())

    @property
    def typical_scale(self):
        return self.std

    # ---- moments (closed forms) -------------------------------------------------------------------------
    def _half_line_moment_sums(self, power: int) -> float:
        """int_0^inf x^power f(x) dx for power 1 or 2, in closed form (geometric series for the tail)."""
        w, values = self.bin_width, np.asarray(self.values)
        i = np.arange(1, len(values))
        if power == 1:
            body = values[0] * w**2 / 8.0 + float(np.sum(values[1:] * i)) * w**2  # int over bin i of x = w^2 i
        else:
            body = values[0] * w**3 / 24.0 + float(np.sum(values[1:] * (i * i + 1.0 / 12.0))) * w**3
        if self.tail_ratio is not None:
            r, a = self.tail_ratio, len(values) - 1.0
            s0, s1, s2 = r / (1 - r), r / (1 - r) ** 2, r * (1 + r) / (1 - r) ** 3  # sum_k r^k (1, k, k^2)
            tail = (s1 + a * s0) * w**2 if power == 1 else (s2 + 2 * a * s1 + a * a * s0 + s0 / 12.0) * w**3
            body += values[-1] * tail
        return body * self.scale**power

    @property
    def variance(self):
        return 2.0 * self._half_line_moment_sums(2)

    @property
    def mean_abs(self):
        return 2.0 * self._half_line_moment_sums(1)

    @property
    def fisher_information(self):
        return math.inf  # a histogram has jumps

    # ---- exact pairs ------------------------------------------------------------------------------------
    def shift_pair_masses(self, shift: float) -> tuple[np.ndarray, np.ndarray]:
        """(log P, log Q) over cells on which both P = f(. - shift) and Q = f are constant (see module doc);
        the last four cells aggregate the geometric tails. Cells where both vanish are dropped."""
        w = self._width
        ratio_steps = abs(float(shift)) / w
        k = int(math.floor(ratio_steps))
        theta = ratio_steps - k
        if theta > 1.0 - _SNAP:
            k, theta = k + 1, 0.0
        elif theta < _SNAP * max(1.0, k):
            theta = 0.0
        last = len(self.values) - 1
        j = np.arange(-last - 1, last + k + 2)
        log_q = self._log_g(j)
        log_lengths = [math.log1p(-theta) + math.log(w), math.log(theta) + math.log(w) if theta > 0 else -math.inf]
        log_p = [self._log_g(j - k), self._log_g(j - k - 1)]
        cells_p = [lp + ll for lp, ll in zip(log_p, log_lengths)]
        cells_q = [log_q + ll for ll in log_lengths]
        if self.tail_ratio is not None:
            log_r = math.log(self.tail_ratio)
            log_v = self._log_values[last]
            log_geo = -math.log1p(-self.tail_ratio)
            right = log_v + (k + 2) * log_r + log_geo  # sum over j >= last + k + 2 of g(j)
            left = log_v + 2 * log_r + log_geo  # sum over j <= -(last + 2) of g(j)
            for ll, offset in zip(log_lengths, (k, k + 1)):
                cells_q.append(np.array([right + ll, left + ll]))
                cells_p.append(np.array([right + ll - offset * log_r, left + ll + offset * log_r]))
        log_p_all, log_q_all = np.concatenate(cells_p), np.concatenate(cells_q)
        keep = np.isfinite(log_p_all) | np.isfinite(log_q_all)
        return log_p_all[keep], log_q_all[keep]

    def knot_log_moments(self, count: int, orders) -> np.ndarray:
        """log sum_cells P^a Q^{1-a} of the pair at every shift k w, k = 1..count (rows), orders (columns). The
        cells' masses do not depend on the scale, so the rows are cached per shape and reused at every scale
        (a calibration evaluates one shape at several)."""
        unit, key = replace(self, scale=1.0), tuple(np.atleast_1d(np.asarray(orders, dtype=float)).tolist())
        rows = [_knot_log_moment(unit, k, key) for k in range(1, count + 1)]
        return np.array(rows).reshape(count, len(key))

    def small_shift_slope(self, orders) -> np.ndarray:
        """lim_{s->0} r_a(s)/s = (A_1 - 1) / (w (a - 1)), A_1 = sum_j w g(j-1)^a g(j)^{1-a} (the exact sum at s = w;
        the integral is linear in s between multiples of w)."""
        orders = np.atleast_1d(np.asarray(orders, dtype=float))
        log_p, log_q = self.shift_pair_masses(self._width)
        with np.errstate(over="ignore"):  # an overflowing moment is an infinite slope, correctly
            return np.expm1(log_renyi_moment(log_p, log_q, orders)) / (self._width * (orders - 1.0))

    def dominating_shift_proven(self, sensitivity: float) -> bool:
        """Exact check that delta_s(eps) <= delta_D(eps) for all s in (0, D] and all eps (D = sensitivity).

        delta_s(eps) is linear in s between multiples of w (the cells' lengths are), so only s = k w <= D matter;
        as functions of y = e^eps both curves are piecewise linear in y with knots at the cells' ratios P/Q,
        so comparing them at every knot and at both ends decides it (up to a rounding slack of 1e-12 in delta).
        Without a tail the pair has an atom at +inf loss, which the PLD composition does not plan for: False
        (RDP then reports the infinite divergence). A log-concave histogram (``log_concave``) dominates at every
        sensitivity, without the check."""
        if self.tail_ratio is None:
            return False
        return self.log_concave or self._dominance_at_knots(sensitivity)

    def _dominance_at_knots(self, sensitivity: float) -> bool:
        """The exact check of ``dominating_shift_proven``: the curve at D against those at s = k w <= D."""
        top = hockey_stick_knots(*self.shift_pair_masses(sensitivity))
        for k in range(1, int(math.floor(sensitivity / self._width + 1e-12)) + 1):
            if not _dominates(top, hockey_stick_knots(*self.shift_pair_masses(k * self._width))):
                return False
        return True

    @cached_property
    def log_concave(self) -> bool:
        """True when the bin values, continued by the tail, are a log-concave sequence on the integers: the
        decrements d_i = log g(i) - log g(i+1) are >= 0 and non-decreasing, the tail's -log(tail_ratio) included
        (checked with a margin for the rounding of the logs, so a log-linear stretch may fail it).

        Then every shift dominates the smaller ones (docs/accounting.md, "Histogram densities"): the lattice
        pair (g(. - k), g) has a likelihood ratio monotone in the cell (a sliding sum of non-increasing log
        increments), the threshold test is most powerful at every level for every k, and its power grows with k
        (Lehmann & Romano, Testing Statistical Hypotheses, Thm. 3.4.1), so the hockey-stick curves grow with k
        at every epsilon; between multiples of w they are linear in the shift."""
        if self.tail_ratio is None:
            return False
        log_values = self._log_values
        decrements = np.append(-np.diff(log_values), -math.log(self.tail_ratio))
        margin = 1e-13 * (1.0 + float(np.max(np.abs(log_values))))
        return bool(decrements[0] >= 0.0 and np.all(np.diff(decrements) >= margin))

    def _params(self):
        return {**super()._params(), "values": list(self.values)}


@lru_cache(maxsize=16384)
def _knot_log_moment(unit: PiecewiseNoise, knot: int, orders: tuple) -> np.ndarray:
    """``log_renyi_moment`` of the pair at the shift ``knot`` bin widths (``PiecewiseNoise.knot_log_moments``)."""
    return log_renyi_moment(*unit.shift_pair_masses(knot * unit.shift_knot_spacing), np.array(orders))


def log_renyi_moment(log_p: np.ndarray, log_q: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """log sum_cells P^a Q^{1-a} for each order (inf where a cell has P > 0 = Q)."""
    if np.any(np.isfinite(log_p) & np.isneginf(log_q)):
        return np.full(orders.shape, np.inf)
    both = np.isfinite(log_p) & np.isfinite(log_q)
    terms = orders[:, None] * log_p[both][None, :] + (1.0 - orders[:, None]) * log_q[both][None, :]
    return logsumexp(terms, axis=1)


def hockey_stick_knots(log_p: np.ndarray, log_q: np.ndarray) -> tuple:
    """(sorted log ratios, P above, Q above, mass at +inf loss): delta(y) = P_above(y) - y Q_above(y), where
    *_above(y) sums the cells with ratio > y (a convex piecewise-linear curve in y = e^eps)."""
    finite = np.isfinite(log_p) & np.isfinite(log_q)
    inf_mass = float(np.sum(np.exp(log_p[np.isfinite(log_p) & np.isneginf(log_q)])))
    log_ratio = (log_p - log_q)[finite]
    order = np.argsort(log_ratio)
    p, q = np.exp(log_p[finite][order]), np.exp(log_q[finite][order])
    p_above = np.concatenate([np.cumsum(p[::-1])[::-1], [0.0]])
    q_above = np.concatenate([np.cumsum(q[::-1])[::-1], [0.0]])
    return log_ratio[order], p_above, q_above, inf_mass


def hockey_stick_at(knots: tuple, log_y: np.ndarray) -> np.ndarray:
    """delta at e^eps = e^{log_y} from ``hockey_stick_knots`` output (cells with ratio > y count)."""
    log_ratio, p_above, q_above, inf_mass = knots
    index = np.searchsorted(log_ratio, log_y, side="right")
    with np.errstate(divide="ignore"):  # y * Q_above as exp(log y + log Q_above): no inf * 0 where y overflows
        charged = np.exp(np.minimum(log_y + np.log(q_above[index]), 710.0))
    return np.maximum(p_above[index] - charged, 0.0) + inf_mass


def _dominates(top: tuple, other: tuple) -> bool:
    knots = np.unique(np.concatenate([top[0], other[0]]))
    gap = hockey_stick_at(top, knots) - hockey_stick_at(other, knots)
    slack = _DOMINANCE_RTOL * hockey_stick_at(top, knots) + _DOMINANCE_ATOL
    small_y = top[2][0] <= other[2][0] * (1.0 + _DOMINANCE_RTOL)  # y -> 0: slopes -Q_above(0)
    return bool(np.all(gap >= -slack) and small_y and top[3] >= other[3] * (1.0 - _DOMINANCE_RTOL))
