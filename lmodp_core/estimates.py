"""Estimates: numbers that describe a noise but are NOT guarantees (never use them as a privacy claim).

``asymptotic_epsilon`` is the d -> inf limit of epsilon for i.i.d. noise on an L2-clipped query. Every sound
bound lives in ``lmodp_core.accountant`` (``Accountant``, ``compute_epsilon``), ``lmodp_core.rdp`` and
``lmodp_core.pld``.
"""

from __future__ import annotations

import math

from .geometry import L2Ball
from .mechanism import Mechanism
from .noise import Gaussian, Noise
from .pld import pld_epsilon
from .sampling import Poisson
from .validation import check_delta, check_positive, check_sample_rate, check_steps

__all__ = ["asymptotic_epsilon"]


def asymptotic_epsilon(noise: Noise, sample_rate: float, steps: int, delta: float, clip: float = 1.0) -> float:
    """ESTIMATE (not a guarantee) of epsilon for i.i.d. ``noise`` on a d-dimensional L2-clipped query, d -> inf.

    As d grows, the worst-case privacy loss of one step tends to that of a Gaussian mechanism with
    sigma_eff = 1 / sqrt(I_f) (I_f: Fisher information of the noise) and shift ``clip`` (docs/theory.md §2 F3, §4.5).
    This value is the tight PLD epsilon of that Gaussian mechanism. It is what the noise achieves for large
    d, a lower bound on the true epsilon of large-d models, useful for audits and comparisons; it is NOT an
    upper bound for any finite d. Use ``Accountant`` for a guarantee.
    """
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be a lmodp_core noise, got {noise!r}")
    sample_rate = check_sample_rate(sample_rate)
    steps = check_steps(steps)
    delta = check_delta(delta)
    clip = check_positive("clip", clip)
    fisher = check_positive("fisher_information", noise.fisher_information)
    sigma_eff = Gaussian(1.0 / math.sqrt(fisher))
    return pld_epsilon([(Mechanism(sigma_eff, L2Ball(clip), Poisson(sample_rate)), steps)], delta)[0]
