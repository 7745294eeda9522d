"""lmodp_core: training-agnostic math for differentially private noise (noise families, accounting, search)."""
from .geometry import L1Ball, L2Ball, Scalar
from .noise import LMO, CustomNoise, Gaussian, Laplace, Noise
from .sampling import Poisson

__version__ = "0.1.0"

__all__ = ["Noise", "Gaussian", "Laplace", "LMO", "CustomNoise", "Scalar", "L1Ball", "L2Ball", "Poisson"]
