"""Privacy-loss-distribution (PLD) accounting: tight epsilon/delta where a dominating shift is known, and a sound
bound through a pair built from the step's RDP profile elsewhere (docs/pld.md).

    supports(mechanism) -> bool             # a dominating pair exists: the shift pair, or a profile pair
    shift_dominates(mechanism) -> bool      # the tight case: the 1-D pair at the full shift dominates
    pld_epsilon(ledger, delta, rtol=1e-3) -> PLDBound(upper, lower)     # ledger: sequence of (mechanism, count)
    pld_delta(ledger, epsilon, rtol=1e-3) -> PLDBound(upper, lower)

The modules, in data-flow order: ``pairs`` (the dominating pair of one step; ``profile`` builds one from an RDP
curve where no dominating shift is known), ``xgrid`` and ``discretise``
(its privacy-loss distribution on a grid), ``compose`` (FFT self-composition), ``pmf`` (reading epsilon and
delta), ``accounting`` (a ledger's answer, refined to ``rtol``); ``registry`` holds the extension points (closed
forms by noise family), ``closed_forms`` the built-in registrations. This package only re-exports. The d -> inf
estimate ``asymptotic_epsilon`` lives in ``lmodp_core.estimates``: it is not a guarantee.
"""

from . import closed_forms as _closed_forms  # noqa: F401  (registers the built-in closed forms)
from .accounting import (
    DEFAULT_RTOL,
    MAX_ARRAY_POINTS,
    MAX_RUNS,
    MAX_SHIFT_RATIO,
    MIN_DELTA,
    PLDBound,
    PLDLimitError,
    check_rtol,
    pld_delta,
    pld_epsilon,
    profile_epsilon_floor,
    uses_profile_pairs,
)
from .pairs import DominatingPair, dominating_pairs, shift_dominates, supports
from .profile import ProfilePair

__all__ = [
    "supports",
    "shift_dominates",
    "uses_profile_pairs",
    "profile_epsilon_floor",
    "ProfilePair",
    "pld_epsilon",
    "pld_delta",
    "DominatingPair",
    "dominating_pairs",
    "check_rtol",
    "PLDBound",
    "PLDLimitError",
    "MIN_DELTA",
    "MAX_SHIFT_RATIO",
    "MAX_RUNS",
    "MAX_ARRAY_POINTS",
    "DEFAULT_RTOL",
]
