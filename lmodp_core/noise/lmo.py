"""LMO noise: a Laplace scale mixture whose inverse scale U = a1*G + a3*E + a4*V is random (docs/theory.md §4.1).

G ~ Gamma(shape=gamma_shape, scale=gamma_scale), E ~ Exponential(rate=exp_rate), V ~ Uniform(unif_low,
unif_high), independent; Z | U ~ Laplace(0, scale / U). One parameterisation serves the sampler and every
formula (the reference code drew E with *scale* exp_rate but accounted it as a *rate*: docs/theory.md §2 F2).

Closed forms through the moment generating function M_U(v) = E[e^{vU}] = M_G(a1 v) M_E(a3 v) M_V(a4 v):
    f(z) = (1/2) E[U e^{-U|z|}] = (1/2) M_U'(-|z|)          (scale = 1)
    P(Z > z) = (1/2) M_U(-z),  z >= 0
    E|Z| = int_0^inf M_U(-x) dx,  Var Z = 2 int_0^inf x M_U(-x) dx
M_U is evaluated only inside its domain (a1*gamma_scale*v < 1, a3*v < exp_rate); outside it is +inf (F1).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._quadrature import half_line_nodes, log_integral
from ..validation import check_finite, check_generator, check_nonnegative, check_positive, check_scale, check_size
from .base import Noise, _exp_or_inf

PAPER_KEYS = ("a1", "a3", "a4", "G_k", "G_theta", "E_lambda", "U_a", "U_b")
SHAPE_RANGE = (1e-20, 1e20)  # every shape parameter (when > 0): products of three stay far from over/underflow
_MOST_NEGATIVE_V = -1e300  # M_U(v) at v = -|x|/scale is evaluated at v >= this (0 * inf never meets a formula)


def _shape_parameter(name: str, value, allow_zero: bool = False) -> float:
    value = check_nonnegative(name, value) if allow_zero else check_positive(name, value)
    return value if value == 0.0 else check_scale(name, value, *SHAPE_RANGE)


def _piecewise(x: np.ndarray, pieces) -> np.ndarray:
    """Evaluate each (mask, formula) piece only where its mask holds (no warnings from unused branches)."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    for mask, formula in pieces:
        out[mask] = formula(x[mask])
    return out


def _uniform_log_mgf_unit(x: np.ndarray) -> np.ndarray:
    """h(x) = log((e^x - 1)/x): log-MGF of Uniform(0, 1) at x."""
    ax = np.abs(x)
    return _piecewise(
        x,
        [
            (ax < 1e-6, lambda t: t / 2 + t * t / 24),
            ((ax >= 1e-6) & (x <= 700), lambda t: np.log(np.expm1(t) / t)),
            (x > 700, lambda t: t + np.log(-np.expm1(-t)) - np.log(t)),
        ],
    )


def _uniform_dlog_unit(x: np.ndarray) -> np.ndarray:
    """h'(x) = 1/(1 - e^{-x}) - 1/x."""
    ax = np.abs(x)
    return _piecewise(
        x,
        [
            (ax < 1e-4, lambda t: 0.5 + t / 12.0),
            ((ax >= 1e-4) & (x >= -700), lambda t: -1.0 / np.expm1(-t) - 1.0 / t),
            (x < -700, lambda t: -1.0 / t),  # e^{-x} overflows: 1/(1 - e^{-x}) is 0 to double precision
        ],
    )


def _uniform_d2log_unit(x: np.ndarray) -> np.ndarray:
    """h''(x) = 1/x^2 - 1/(4 sinh^2(x/2))."""
    ax = np.abs(x)
    return _piecewise(
        x,
        [
            (ax < 1e-3, lambda t: 1.0 / 12.0 - t * t / 240.0),
            ((ax >= 1e-3) & (ax <= 700), lambda t: (1.0 / t) ** 2 - (0.5 / np.sinh(0.5 * t)) ** 2),
            (ax > 700, lambda t: (1.0 / t) ** 2),  # 1/(4 sinh^2(x/2)) < e^-700: below double precision
        ],
    )


@dataclass(frozen=True, repr=False)
class LMO(Noise):
    """The LMO-DP noise family of arXiv 2405.18776 (any of a1, a3, a4 may be 0, but not all)."""

    a1: float
    a3: float
    a4: float
    gamma_shape: float
    gamma_scale: float
    exp_rate: float
    unif_low: float
    unif_high: float
    scale: float = 1.0
    family: ClassVar[str] = "lmo"
    symmetric_unimodal: ClassVar[bool] = True  # f(z) = E[U e^{-U|z|}] / (2 scale) is non-increasing in |z|

    def __post_init__(self):
        a1, a3, a4 = (_shape_parameter(name, getattr(self, name), allow_zero=True) for name in ("a1", "a3", "a4"))
        if a1 == a3 == a4 == 0.0:
            raise ValueError("LMO needs at least one of a1, a3, a4 > 0 (all three are 0, so U would be 0)")
        gamma_shape = _shape_parameter("gamma_shape", self.gamma_shape)
        gamma_scale = _shape_parameter("gamma_scale", self.gamma_scale)
        exp_rate = _shape_parameter("exp_rate", self.exp_rate)
        unif_low = _shape_parameter("unif_low", self.unif_low, allow_zero=True)
        unif_high = check_finite("unif_high", self.unif_high)
        if unif_high <= unif_low:
            raise ValueError(
                f"unif_high must be > unif_low (Uniform(unif_low, unif_high) with 0 <= unif_low), "
                f"got unif_low={unif_low!r}, unif_high={unif_high!r}"
            )
        _shape_parameter("unif_high", unif_high)
        self._set_checked(
            a1=a1,
            a3=a3,
            a4=a4,
            gamma_shape=gamma_shape,
            gamma_scale=gamma_scale,
            exp_rate=exp_rate,
            unif_low=unif_low,
            unif_high=unif_high,
            scale=check_scale("scale", self.scale),
        )

    @classmethod
    def from_paper(cls, params: dict, scale: float = 1.0) -> LMO:
        """Build from the paper's naming: a1, a3, a4, G_k, G_theta, E_lambda (a rate), U_a, U_b."""
        missing = [k for k in PAPER_KEYS if k not in params]
        if missing:
            raise ValueError(f"paper parameter dict is missing {missing}; it needs {list(PAPER_KEYS)}")
        return cls(
            a1=params["a1"],
            a3=params["a3"],
            a4=params["a4"],
            gamma_shape=params["G_k"],
            gamma_scale=params["G_theta"],
            exp_rate=params["E_lambda"],
            unif_low=params["U_a"],
            unif_high=params["U_b"],
            scale=scale,
        )

    def to_paper(self) -> dict:
        """Parameters in the paper's naming (scale must be 1 there)."""
        return {
            "a1": self.a1,
            "a3": self.a3,
            "a4": self.a4,
            "G_k": self.gamma_shape,
            "G_theta": self.gamma_scale,
            "E_lambda": self.exp_rate,
            "U_a": self.unif_low,
            "U_b": self.unif_high,
        }

    # ---- the mixing variable U -------------------------------------------------------------------------
    @property
    def mgf_domain_upper(self) -> float:
        """Sup of the v with M_U(v) < inf (inf when only the bounded Uniform part is present)."""
        bound = math.inf
        if self.a1 > 0:
            bound = min(bound, 1.0 / (self.a1 * self.gamma_scale))  # M_G(a1 v): a1*theta*v < 1
        if self.a3 > 0:
            bound = min(bound, self.exp_rate / self.a3)  # M_E(a3 v): a3*v < rate
        return bound

    def _log_mgf_derivs(self, v: np.ndarray, order: int):
        """(log M_U, (log M_U)', (log M_U)'') at v (only v inside the domain), up to ``order`` (the higher
        derivatives are left at 0)."""
        k0 = np.zeros_like(v)
        k1 = np.zeros_like(v)
        k2 = np.zeros_like(v)
        if self.a1 > 0:
            t = self.gamma_scale * self.a1
            k0 -= self.gamma_shape * np.log1p(-t * v)  # log M_G(a1 v) = -k log(1 - theta a1 v)
            if order >= 1:
                k1 += self.gamma_shape * t / (1.0 - t * v)
            if order >= 2:
                k2 += self.gamma_shape * (t / (1.0 - t * v)) ** 2
        if self.a3 > 0:
            t = self.a3 / self.exp_rate
            k0 -= np.log1p(-t * v)  # log M_E(a3 v) = -log(1 - a3 v / rate)
            if order >= 1:
                k1 += t / (1.0 - t * v)
            if order >= 2:
                k2 += (t / (1.0 - t * v)) ** 2
        if self.a4 > 0:
            width = self.unif_high - self.unif_low
            x = (self.a4 * width) * v  # log M_V(a4 v) = a4 v low + h(a4 v width)
            k0 += (self.a4 * self.unif_low) * v + _uniform_log_mgf_unit(x)
            if order >= 1:
                k1 += self.a4 * (self.unif_low + width * _uniform_dlog_unit(x))
            if order >= 2:
                k2 += (self.a4 * width) ** 2 * _uniform_d2log_unit(x)
        return k0, k1, k2

    def log_mgf_u(self, v) -> np.ndarray:
        """log M_U(v); +inf where v is outside the MGF's domain (never a spurious finite value)."""
        v = np.asarray(v, dtype=float)
        inside = v < self.mgf_domain_upper
        safe_v = np.where(inside, v, 0.0)
        k0, _, _ = self._log_mgf_derivs(safe_v, 0)
        return np.where(inside, k0, np.inf)

    @property
    def mean_u(self) -> float:
        """E[U] = a1*k*theta + a3/rate + a4*(low + high)/2."""
        return (
            self.a1 * self.gamma_shape * self.gamma_scale
            + self.a3 / self.exp_rate
            + self.a4 * 0.5 * (self.unif_low + self.unif_high)
        )

    # ---- density ---------------------------------------------------------------------------------------
    def _v(self, x) -> np.ndarray:
        """v = -|x|/scale, the MGF argument of the density at x (clamped to a finite value for |x| = inf)."""
        return np.maximum(-np.abs(np.asarray(x, dtype=float)) / self.scale, _MOST_NEGATIVE_V)

    def logpdf(self, x):
        k0, k1, _ = self._log_mgf_derivs(self._v(x), 1)
        # f(z) = M_U'(v)/(2 scale) = M_U(v) (log M_U)'(v) / (2 scale),  v = -|z|/scale
        with np.errstate(divide="ignore"):
            return np.where(np.isinf(x), -np.inf, k0 + np.log(k1) - math.log(2.0 * self.scale))

    def sf(self, x):
        x = np.asarray(x, dtype=float)
        k0, _, _ = self._log_mgf_derivs(self._v(x), 0)
        tail = 0.5 * np.exp(k0)  # P(Z > |x|) = M_U(-|x|/scale)/2
        return np.where(x >= 0, tail, 1.0 - tail)

    def score(self, x):
        x = np.asarray(x, dtype=float)
        _, k1, k2 = self._log_mgf_derivs(self._v(x), 2)
        # f'/f = -sign(z) M_U''/M_U' / scale, and M''/M' = ((log M)'' + (log M)'^2)/(log M)'; where (log M)'
        # underflows to 0 (|z| astronomically far in a polynomial tail) the score is 0 to double precision
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(k1 > 0, (k2 + k1 * k1) / k1, 0.0)
        return -np.sign(x) * ratio / self.scale

    @property
    def log_density_lipschitz(self) -> float:
        """sup |f'/f| = E[U^2] / (E[U] scale), the limit at x -> 0: |f'/f| = M_U''/M_U' at v = -|x|/scale, and
        M_U' is log-convex (a Laplace transform), so the ratio increases with v up to v = 0."""
        _, k1, k2 = self._log_mgf_derivs(np.zeros(1), 2)
        return float((k2[0] + k1[0] * k1[0]) / k1[0]) / self.scale

    def sample_inverse_scale(self, rng, size=None):
        """Draws of the inverse scale U = a1*G + a3*E + a4*V."""
        rng, size = check_generator(rng), check_size(size)
        u = np.zeros(() if size is None else size)
        if self.a1 > 0:
            u = u + self.a1 * rng.gamma(self.gamma_shape, self.gamma_scale, size)
        if self.a3 > 0:
            u = u + self.a3 * rng.exponential(1.0 / self.exp_rate, size)  # numpy takes the scale 1/rate
        if self.a4 > 0:
            u = u + self.a4 * rng.uniform(self.unif_low, self.unif_high, size)
        # A draw that underflowed to 0 (tiny gamma shapes, Uniform(0, b) at 0) stands for a U below the smallest
        # float: keep it there, not at 0, so that Z = L / U is never 0/0 = NaN.
        return np.maximum(u, np.finfo(np.float64).tiny)

    def sample(self, rng, size=None):
        return self.scale * rng.laplace(0.0, 1.0, size) / self.sample_inverse_scale(rng, size)

    def scaled(self, factor):
        return dataclasses.replace(self, scale=self.scale * check_positive("factor", factor))

    @property
    def typical_scale(self):
        return self.scale / self.mean_u

    # ---- moments ---------------------------------------------------------------------------------------
    @property
    def _tail_power(self) -> float:
        """M_U(-x) ~ x^-p for large x; p = inf when U >= a4*low > 0 (exponential decay)."""
        if self.a4 > 0 and self.unif_low > 0:
            return math.inf
        power = 0.0
        if self.a1 > 0:
            power += self.gamma_shape
        if self.a3 > 0:
            power += 1.0
        if self.a4 > 0:
            power += 1.0
        return power

    def _mgf_moment(self, power: int) -> float:
        """int_0^inf x^power M_U(-x) dx, or inf when it diverges."""
        if self._tail_power <= power + 1:
            return math.inf
        nodes, log_w = half_line_nodes(1.0 / self.mean_u)
        k0, _, _ = self._log_mgf_derivs(-nodes, 0)
        return _exp_or_inf(log_integral(k0 + power * np.log(nodes), log_w))

    @staticmethod
    def moment_table(noises) -> np.ndarray:
        """Rows (Var Z, E|Z|, I_f, L = sup|(log f)'|) of each LMO in ``noises``, vectorised over the quadrature
        nodes (the search screens ~22,000 shapes with it); inf where a moment diverges (``_tail_power``).

        With x the exp-sinh nodes on [0, inf) and (k0, k1, k2) = log M_U and its derivatives at -x (scale 1):
        E|Z| = int M_U(-x) dx, Var = 2 int x M_U(-x) dx, I_f = int M_U k1 ((k2 + k1^2)/k1)^2 dx (f = M_U'/2 and
        f'/f = -(k2 + k1^2)/k1), L = (k2 + k1^2)/k1 at 0 = E[U^2]/E[U] (the density is log-convex on each
        half-line); then Var, E|Z|, I_f, L scale as c^2, c, 1/c^2, 1/c with the scale c.
        """
        noises = list(noises)
        if not all(isinstance(noise, LMO) for noise in noises):
            raise ValueError(
                "moment_table needs LMO noises, got " + ", ".join(sorted({type(n).__name__ for n in noises}))
            )
        unit_nodes, unit_log_w = half_line_nodes(1.0)
        rows = np.empty((len(noises), 4))
        for row, lmo in enumerate(noises):
            nodes = unit_nodes / lmo.mean_u
            k0, k1, k2 = lmo._log_mgf_derivs(np.concatenate([[0.0], -nodes]), 2)
            curvature = k2 + k1 * k1
            weights = np.exp(unit_log_w + k0[1:]) / lmo.mean_u  # quadrature weight times M_U(-x)
            variance = 2.0 * weights @ nodes if lmo._tail_power > 2 else math.inf  # int x M_U(-x) needs p > 2
            mean_abs = weights.sum() if lmo._tail_power > 1 else math.inf
            rows[row] = (
                variance * lmo.scale**2,
                mean_abs * lmo.scale,
                weights @ (curvature[1:] ** 2 / k1[1:]) / lmo.scale**2,
                curvature[0] / k1[0] / lmo.scale,
            )
        return rows

    @property
    def mean_abs(self):
        return self.scale * self._mgf_moment(0)  # E|Z| = scale E[1/U]

    @property
    def variance(self):
        return 2.0 * self.scale**2 * self._mgf_moment(1)  # Var Z = 2 scale^2 E[1/U^2]
