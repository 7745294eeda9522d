"""Dominating pairs: the 1-D (P, Q) whose privacy loss bounds one step of a mechanism (docs/theory.md §4.5).

For a step with noise density f, dominating shift s and Poisson rate q (add/remove neighbours):
    remove: P = (1-q) f + q f(. - s),  Q = f
    add:    P = f,                    Q = (1-q) f + q f(. - s)
The two directions are composed separately and the larger epsilon (delta) is reported.

Which shift dominates (a family's registered ``registry.dominating_shift_closed_form`` first):
- Gaussian noise, any geometry: the pair with s = geometry.radius (rotation invariance of the isotropic
  Gaussian reduces every clipped difference to one coordinate of norm <= clip).
- Scalar geometry: s = sensitivity, where the hockey-stick curve of the unsampled pair (f(. - s), f) is proven
  non-decreasing in s for every epsilon (Poisson sampling keeps the order because the sampled curve is a
  monotone function of it, Balle et al. 2018 "advanced joint convexity"). Laplace: in closed form. LMO (a
  scale mixture of Laplace: symmetric, decreasing in |x| and log-convex on (0, inf)): the likelihood ratio
  f(x - s)/f(x) is unimodal in x, so the curve's derivative in s is f(a - s) - f(b - s) >= 0 at the ends a, b
  of the set where the ratio exceeds e^eps (docs/accounting.md, "Shift dominance for Laplace scale
  mixtures"). A family that can decide it exactly says so through a ``dominating_shift_proven(sensitivity)``
  method (``PiecewiseNoise``: an exact finite check; ``CustomNoise``: always False, since a multimodal user
  density can break it between any finite set of probed shifts). Any other family without a registered proof
  gets no PLD (RDP answers): no dominance is taken from a numerical check.
- Laplace noise under ``L1Ball(C)``: s = C. For i.i.d. Laplace coordinates and any shift v with ||v||_1 <= C, the
  d-dimensional pair is dominated by the 1-D pair at shift C, at every epsilon in both directions (closed-form
  two-coordinate hockey-stick curve, then induction over coordinates: docs/accounting.md, "Laplace under L1Ball").
- Any other step (vector geometry with non-Gaussian noise, a user density without a proof) whose unsampled RDP is
  finite at some order: a ``profile.ProfilePair``, built from the RDP-to-(eps, delta) profile bound of the
  unsampled step, sampled exactly at the profile level (``profile`` has the proof). Sound for every shift of the
  ball, but not tight: the accountant's "auto" still takes RDP where that is smaller (many steps).
- A step with no finite RDP at any order (a density with jumps under ``L2Ball``): ``supports`` is False.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .._logmath import log_mixture
from ..noise import Noise
from .profile import ProfilePair, has_profile, profile_pairs
from .registry import dominating_shift_closed_form

DIRECTIONS = ("remove", "add")


@dataclass(frozen=True)
class DominatingPair:
    """One direction of one step: P vs Q as above, on the real line."""

    noise: Noise
    shift: float
    sample_rate: float
    direction: str

    def log_densities(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log p(x), log q(x))."""
        log_f = self.noise.logpdf(x)
        log_shifted = self.noise.logpdf(x - self.shift)
        mixture = log_mixture(log_f, log_shifted, self.sample_rate)
        return (mixture, log_f) if self.direction == "remove" else (log_f, mixture)

    def exact_cell_masses(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(log P, log Q) over finitely many cells of constant density ratio, for a noise that provides them
        (``shift_pair_masses``, e.g. ``PiecewiseNoise``): the privacy-loss distribution is then exact. None
        otherwise."""
        masses = getattr(self.noise, "shift_pair_masses", None)
        if masses is None:
            return None
        log_shifted, log_f = masses(self.shift)
        mixture = log_mixture(log_f, log_shifted, self.sample_rate)
        return (mixture, log_f) if self.direction == "remove" else (log_f, mixture)

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """Points where p or q is not smooth."""
        kinks = self.noise.kinks
        return tuple(sorted(set(kinks) | {k + self.shift for k in kinks}))


def _shift_dominates(mechanism) -> bool:
    noise, geometry = mechanism.noise, mechanism.geometry
    known = dominating_shift_closed_form(noise, geometry)
    if known is not None:
        return known
    if geometry.shift_exponent != 0:
        return False
    proven = getattr(noise, "dominating_shift_proven", None)
    return proven is not None and bool(proven(geometry.radius))


@lru_cache(maxsize=256)
def shift_dominates(mechanism) -> bool:
    """True when the 1-D pair at the full shift is proven to dominate this step (see the module docstring);
    cached, since the exact check of a histogram density compares its hockey-stick curves at every multiple of the
    bin width."""
    try:
        return _shift_dominates(mechanism)
    except (ValueError, FloatingPointError, OverflowError):
        return False


@lru_cache(maxsize=256)
def supports(mechanism) -> bool:
    """True when this step has a dominating pair: the shift pair, or else a profile pair."""
    if shift_dominates(mechanism):
        return True
    try:
        return has_profile(mechanism.noise, mechanism.geometry)
    except (ValueError, FloatingPointError, OverflowError):
        return False


def dominating_pairs(mechanism) -> tuple[DominatingPair, DominatingPair] | tuple[ProfilePair, ProfilePair]:
    """(remove, add) pairs of one step; ValueError when the step has none (no finite RDP at any order)."""
    if not supports(mechanism):
        raise ValueError(
            f"no dominating pair for {mechanism!r}: its unsampled RDP is infinite at every order (e.g. a density "
            "with jumps under L2Ball); no finite epsilon can be certified"
        )
    rate = mechanism.sampling.sample_rate
    if not shift_dominates(mechanism):
        return profile_pairs(mechanism.noise, mechanism.geometry, rate)
    shift = float(mechanism.geometry.radius)
    remove, add = (DominatingPair(mechanism.noise, shift, rate, d) for d in DIRECTIONS)
    return remove, add
