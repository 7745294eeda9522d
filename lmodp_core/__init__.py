"""lmodp_core: training-agnostic math for differentially private noise.

Noise families, Renyi-DP and PLD accounting for arbitrary densities with Poisson subsampling and composition,
calibration and the noise search. Every epsilon/delta documented as a guarantee is a sound upper bound for the
stated geometry (clipping norm, any dimension), sampling scheme and add/remove neighbours.
"""

from .accountant import Accountant, EpsilonReport, compute_epsilon
from .auditing import AuditResult, audit
from .calibration import Calibration, calibrate
from .estimates import asymptotic_epsilon
from .geometry import L1Ball, L2Ball, Scalar
from .mechanism import Mechanism
from .noise import LMO, CustomNoise, Gaussian, Laplace, Noise, PiecewiseNoise
from .pld import pld_delta, pld_epsilon
from .rdp import DEFAULT_ORDERS, OrderGridWarning, delta_from_rdp, epsilon_from_rdp, step_rdp
from .sampling import Poisson
from .search import OptimizeResult, SearchBudget, optimize_noise

__version__ = "0.7.0"  # part of every search cache key: bump when numbers can change

__all__ = [
    "Noise",
    "Gaussian",
    "Laplace",
    "LMO",
    "CustomNoise",
    "PiecewiseNoise",
    "Scalar",
    "L1Ball",
    "L2Ball",
    "Poisson",
    "Mechanism",
    "Accountant",
    "EpsilonReport",
    "step_rdp",
    "compute_epsilon",
    "calibrate",
    "Calibration",
    "epsilon_from_rdp",
    "delta_from_rdp",
    "DEFAULT_ORDERS",
    "OrderGridWarning",
    "pld_epsilon",
    "pld_delta",
    "asymptotic_epsilon",
    "optimize_noise",
    "OptimizeResult",
    "SearchBudget",
    "audit",
    "AuditResult",
]
