"""A privacy-loss distribution on a uniform loss grid, stored exponentially tilted (docs/theory.md §4.5).

Entry i of ``values`` sits at loss l_i = (first_index + i) * step and carries the probability
    mass_i = values[i] * exp(log_scale - tilt * l_i),
with ``values`` normalised to max 1. Tilting by exp(tilt * l) is exact under convolution (the factors of two
summed losses multiply), so FFT round-off, which is relative to the largest entry, stays relative to the mass
near the epsilon being asked for when ``tilt`` is the saddle point of that query (the fix for the float64
floor that makes FFT-power accountants under-report epsilon at T = 1e6, delta = 1e-10).

Every operation is pessimistic and never drops mass:
- ``coarsen`` re-discretises onto the nested grid of twice the step with the connect-the-dots split
  (Doroshenko et al. 2022), whose hockey-stick curve lies above the original one at every epsilon;
- ``truncate`` sends both tails to loss +inf;
- ``convolve`` adds losses (composition); the FFT round-off is bounded per entry (``roundoff``, in the
  normalised tilted units, for the precision of ``values``: float64 or long double) and the resulting
  allowance is added to every delta reported as a guarantee.
Pointwise hockey-stick dominance is preserved by convolution with any non-negative measure, so the composed
curve bounds the true one from above. ``slack_mass`` (truncated or moved mass) and the rounding statistics
(``rounding_var``: sum of squared rounding-interval widths, ``rounding_bias``: mean upward shift) give the
lower end of the discretisation interval through Hoeffding's inequality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numba
import numpy as np
from scipy import fft as _fft

from .._logmath import log1mexp, log1mexp_kernel, logaddexp_kernel, logsumexp

UNDERFLOW_FLOOR = 1e-300  # per-entry bound on what float64 underflow drops (normalised tilted units)
_FFT_ROUNDOFF_FACTOR = 8.0  # |FFT convolution error|_inf <= c u log2(n) |a|_2 |b|_2 (Higham, ch. 24), c = 8


@dataclass(frozen=True)
class LossPMF:
    """Tilted privacy-loss masses on the grid (first_index + i) * step, plus mass at +inf."""

    step: float
    first_index: int
    values: np.ndarray
    log_scale: float
    tilt: float
    inf_mass: float
    slack_mass: float = 0.0
    roundoff: float = 0.0
    rounding_var: float = 0.0
    rounding_bias: float = 0.0
    steps: int = 1

    @property
    def losses(self) -> np.ndarray:
        return (self.first_index + np.arange(self.values.size)) * self.step


def from_log_masses(log_masses: np.ndarray, first_index: int, step: float, tilt: float, **fields) -> LossPMF:
    """Build a LossPMF from log-probabilities at the grid points first_index.. (tilt and normalise).

    Entries more than ~1e-308 below the largest underflow to 0; ``UNDERFLOW_FLOOR`` as the initial
    round-off bound covers them.
    """
    losses = (first_index + np.arange(log_masses.size)) * step
    log_tilted = log_masses + tilt * losses
    peak = float(np.max(log_tilted))
    if not math.isfinite(peak):
        raise ValueError("privacy-loss distribution has no finite mass on its grid")
    return LossPMF(step, int(first_index), np.exp(log_tilted - peak), peak, tilt, roundoff=UNDERFLOW_FLOOR, **fields)


def extended_precision(pmf: LossPMF) -> LossPMF:
    """The same PMF stored in ``np.longdouble``: later convolutions round off ~2000x less on x86-64 (where
    long double is the 64-bit-mantissa x87 format; elsewhere it may equal float64 and nothing changes)."""
    return replace(pmf, values=pmf.values.astype(np.longdouble))


def _normalised(pmf: LossPMF, values: np.ndarray, roundoff: float, **fields) -> LossPMF:
    peak = float(values.max())
    return replace(
        pmf,
        values=values / peak,
        log_scale=fields.pop("log_scale", pmf.log_scale) + math.log(peak),
        roundoff=roundoff / peak,
        **fields,
    )


def _compose_probability(a: float, b: float) -> float:
    """P(A or B) for independent events: 1 - (1-a)(1-b) without cancellation."""
    return -math.expm1(math.log1p(-min(a, 1.0)) + math.log1p(-min(b, 1.0))) if max(a, b) < 1.0 else 1.0


@numba.njit(cache=True)
def _sum_and_norm(values):
    """(sum, Euclidean norm) in one pass (single-threaded: BLAS threads stall on a shared machine)."""
    total = 0.0
    squares = 0.0
    for v in values:
        total += v
        squares += v * v
    return total, math.sqrt(squares)


def convolve(a: LossPMF, b: LossPMF) -> LossPMF:
    """The PLD of the composition (losses add): FFT convolution of the tilted masses."""
    if a.step != b.step or a.tilt != b.tilt:
        raise ValueError("convolve needs equal grid steps and tilts (coarsen first)")
    size = a.values.size + b.values.size - 1
    n_fft = _fft.next_fast_len(size, real=True)
    spectrum_a = _fft.rfft(a.values, n_fft)
    spectrum_b = spectrum_a if b is a else _fft.rfft(b.values, n_fft)
    values = np.maximum(_fft.irfft(spectrum_a * spectrum_b, n_fft)[:size], 0.0)
    sum_a, norm_a = _sum_and_norm(np.asarray(a.values, dtype=float))
    sum_b, norm_b = (sum_a, norm_a) if b is a else _sum_and_norm(np.asarray(b.values, dtype=float))
    unit_roundoff = 0.5 * float(np.finfo(values.dtype).eps)  # 2^-53 in float64, 2^-64 in x87 extended precision
    fresh = _FFT_ROUNDOFF_FACTOR * unit_roundoff * math.log2(n_fft) * norm_a * norm_b
    overlap = min(a.values.size, b.values.size)
    roundoff = a.roundoff * sum_b + b.roundoff * sum_a + a.roundoff * b.roundoff * overlap + fresh
    return _normalised(
        a,
        values,
        roundoff,
        first_index=a.first_index + b.first_index,
        log_scale=a.log_scale + b.log_scale,
        inf_mass=_compose_probability(a.inf_mass, b.inf_mass),
        slack_mass=a.slack_mass + b.slack_mass,
        rounding_var=a.rounding_var + b.rounding_var,
        rounding_bias=a.rounding_bias + b.rounding_bias,
        steps=a.steps + b.steps,
    )


def coarsen(pmf: LossPMF) -> LossPMF:
    """Connect-the-dots re-discretisation onto the grid of step 2h (points at even multiples of h).

    An atom at an odd index lies halfway between two coarse points; it is split so that its hockey-stick curve
    (piecewise linear in e^eps) interpolates the original at the coarse points: up-weight
    (1 - e^{-h}) / (1 - e^{-2h}) = 1 / (1 + e^{-h}).
    """
    h, tilt = pmf.step, pmf.tilt
    values = pmf.values
    first = pmf.first_index
    if first % 2:
        values = np.concatenate([[0.0], values])
        first -= 1
    if values.size % 2 == 0:
        values = np.concatenate([values, [0.0]])
    up_weight = 1.0 / (1.0 + math.exp(-h))
    up_factor = up_weight * math.exp(tilt * h)  # tilted mass moved up by h
    down_factor = (1.0 - up_weight) * math.exp(-tilt * h)  # tilted mass moved down by h
    coarse = values[0::2].copy()
    odd = values[1::2]
    coarse[1:] += up_factor * odd
    coarse[:-1] += down_factor * odd
    growth = 1.0 + up_factor + down_factor  # a coarse entry gathers one even and parts of two odd entries
    return _normalised(
        pmf,
        coarse,
        pmf.roundoff * growth,
        step=2.0 * h,
        first_index=first // 2,
        rounding_var=pmf.rounding_var + (2.0 * h) ** 2,
        rounding_bias=pmf.rounding_bias + h * math.tanh(0.5 * h),
    )


def _log_untilted(pmf: LossPMF, sel: slice | np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(pmf.values[sel]) + pmf.log_scale - pmf.tilt * pmf.losses[sel]


def _geometric_tail(pmf: LossPMF, count) -> np.ndarray:
    """sum_{d=0}^{count-1} e^{-tilt d step}: how many entries' round-off one untilted unit can gather."""
    decay = math.exp(-pmf.tilt * pmf.step)
    return np.minimum(1.0 / (1.0 - decay), np.asarray(count, dtype=float))


def truncate(pmf: LossPMF, low_index: int, high_index: int, tail_bound: float) -> LossPMF:
    """Keep grid indices low_index..high_index; the mass outside goes to loss +inf (pessimistic).

    ``tail_bound`` is a proven bound on the mass of each side beyond the window (Chernoff + Hoeffding, see
    compose.py). Left of the window untilting would amplify the FFT round-off floor by e^{-tilt l}, so the
    bound is used; on the right the entries' own sum (with their round-off allowance) is used when smaller.
    """
    low = max(low_index - pmf.first_index, 0)
    high = min(high_index - pmf.first_index, pmf.values.size - 1)
    if low == 0 and high == pmf.values.size - 1:
        return pmf
    if high < low:
        raise ValueError("truncation window misses the distribution")
    right = 0.0
    if high < pmf.values.size - 1:
        summed = math.exp(min(logsumexp(_log_untilted(pmf, slice(high + 1, None))), 0.0))
        summed += (
            pmf.roundoff
            * float(_geometric_tail(pmf, pmf.values.size - high - 1))
            * math.exp(min(pmf.log_scale - pmf.tilt * (high_index + 1) * pmf.step, 0.0))
        )
        right = min(summed, tail_bound)
    left = tail_bound if low > 0 else 0.0
    return _normalised(
        pmf,
        pmf.values[low : high + 1].copy(),
        pmf.roundoff,
        first_index=pmf.first_index + low,
        inf_mass=_compose_probability(pmf.inf_mass, min(right + left, 1.0)),
        slack_mass=pmf.slack_mass + right + left,
    )


@numba.njit(cache=True)
def _suffix_log_hockey(values, tilt, step):
    """log of sum_{i>k} values[i] e^{-tilt d}(1 - e^{-d}), d = (i-k) step, for every k (-inf when empty).

    Both suffix sums run in log space, so steep tilts (e^{-tilt d} below the float range) stay exact.
    """
    n = values.shape[0]
    out = np.empty(n)
    log_a = -math.inf  # log sum_{i>k} values[i] e^{-tilt d}
    log_b = -math.inf  # log sum_{i>k} values[i] e^{-(tilt+1) d}
    out[n - 1] = -math.inf
    for k in range(n - 2, -1, -1):
        log_v = math.log(values[k + 1]) if values[k + 1] > 0.0 else -math.inf
        log_a = -tilt * step + logaddexp_kernel(log_v, log_a)
        log_b = -(tilt + 1.0) * step + logaddexp_kernel(log_v, log_b)
        if log_a == -math.inf:
            out[k] = -math.inf
        else:
            gap = log_b - log_a  # < 0: log(1 - e^gap) without cancellation
            out[k] = log_a + log1mexp_kernel(gap)
    return out


def log_delta_curve(pmf: LossPMF, with_allowance: bool = True) -> np.ndarray:
    """log delta(eps) at every grid loss: sum_{l > eps} (1 - e^{eps - l}) mass(l) + mass(+inf) (+ round-off)."""
    finite = _suffix_log_hockey(np.asarray(pmf.values, dtype=float), pmf.tilt, pmf.step)
    if with_allowance and pmf.roundoff > 0:
        right_of = pmf.values.size - 1 - np.arange(pmf.values.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            allowance = np.log(pmf.roundoff * _geometric_tail(pmf, right_of))
            finite = np.logaddexp(finite, allowance)
    finite = finite + pmf.log_scale - pmf.tilt * pmf.losses
    with np.errstate(invalid="ignore"):
        curve = np.logaddexp(finite, math.log(pmf.inf_mass) if pmf.inf_mass > 0 else -math.inf)
    return np.minimum(np.where(np.isnan(curve), 0.0, curve), 0.0)  # delta <= 1; a failed bound reads as 1


def delta_at(pmf: LossPMF, epsilon: float, with_allowance: bool = True) -> float:
    """delta(epsilon) = sum_{l > eps} (1 - e^{eps - l}) mass(l) + mass(+inf) (+ round-off allowance), capped at 1."""
    losses = pmf.losses
    above = losses > epsilon
    log_terms = _log_untilted(pmf, above) + log1mexp(np.minimum(epsilon - losses[above], 0.0))
    log_total = np.logaddexp(logsumexp(log_terms), math.log(pmf.inf_mass) if pmf.inf_mass > 0 else -math.inf)
    if with_allowance and not math.isfinite(pmf.roundoff):
        return 1.0
    if with_allowance and pmf.roundoff > 0 and above.any():
        log_allowance = (
            math.log(pmf.roundoff * float(_geometric_tail(pmf, int(above.sum()))))
            + pmf.log_scale
            - pmf.tilt * float(losses[above][0])
        )
        log_total = np.logaddexp(log_total, log_allowance)
    return float(math.exp(min(float(log_total), 0.0)))


def epsilon_for(pmf: LossPMF, delta: float, with_allowance: bool = True) -> float:
    """The smallest epsilon with delta(epsilon) <= delta; inf if none.

    Grid points are checked with the full bound; between l_{k-1} and l_k the grid distribution's curve is
    linear in e^eps and is solved exactly for delta minus the round-off allowance of the entries from l_k on.
    """
    curve = log_delta_curve(pmf, with_allowance)
    meets = np.nonzero(curve <= math.log(delta))[0]
    if meets.size == 0:
        return math.inf
    k = int(meets[0])
    if k == 0:
        return float(pmf.losses[0])
    raw = log_delta_curve(pmf, False) if with_allowance else curve
    above, below = math.exp(raw[k - 1]), math.exp(raw[k])
    target = delta - (math.exp(curve[k - 1]) - above)
    frac = (above - target) / (above - below) if above > below else 1.0
    return float(pmf.losses[k - 1] + _log_chord(min(max(frac, 0.0), 1.0), pmf.step))


def _log_chord(frac: float, step: float) -> float:
    """log(1 + frac (e^step - 1)): where the chord in e^eps sits, without overflow for steps beyond ~709."""
    if step < 30.0 or frac == 0.0:
        return math.log1p(frac * math.expm1(step))
    return step + math.log(frac + (1.0 - frac) * math.exp(-step))


def hoeffding_shift(pmf: LossPMF, tail_probability: float) -> float:
    """Bound t on the total upward rounding shift, exceeded with probability <= tail_probability.

    Each rounding moves a loss within an interval of width w_i with conditional mean shift in
    [0, rounding_bias_i]; Hoeffding/Azuma: P(sum > bias + t) <= exp(-2 t^2 / sum w_i^2).
    """
    return math.sqrt(0.5 * pmf.rounding_var * math.log(1.0 / tail_probability)) + pmf.rounding_bias
