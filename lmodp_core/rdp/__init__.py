"""Renyi-DP accounting for any noise density: divergences, per-step bounds, subsampling, conversions.

The modules, in data-flow order: ``divergence`` (r_a(s) of one shifted pair), ``per_step`` (the sup over the
geometry's shifts), ``subsampled`` (Poisson subsampling), ``step`` (``step_rdp``, the bound the accountant
composes), ``conversion`` (RDP -> (epsilon, delta)). ``registry`` holds the extension points (closed forms
by noise family), ``closed_forms`` the built-in registrations. This package only re-exports.
"""

from . import closed_forms as _closed_forms  # noqa: F401  (registers the built-in closed forms)
from .binary_conversion import binary_pair_epsilon
from .conversion import DEFAULT_ORDERS, OrderGridWarning, delta_from_rdp, epsilon_floor, epsilon_from_rdp
from .divergence import renyi_poisson_mixture, renyi_shift
from .per_step import unsampled_rdp
from .step import step_rdp
from .subsampled import binomial_rdp, sampled_gaussian_rdp, scalar_subsampled_rdp, zhu_wang_rdp

__all__ = [
    "DEFAULT_ORDERS",
    "OrderGridWarning",
    "step_rdp",
    "epsilon_from_rdp",
    "epsilon_floor",
    "delta_from_rdp",
    "renyi_shift",
    "renyi_poisson_mixture",
    "unsampled_rdp",
    "sampled_gaussian_rdp",
    "scalar_subsampled_rdp",
    "zhu_wang_rdp",
    "binomial_rdp",
    "binary_pair_epsilon",
]
