"""Noise families: symmetric densities applied i.i.d. per coordinate (docs/theory.md §3.1)."""

from .base import Noise
from .custom import CustomNoise
from .gaussian import Gaussian
from .laplace import Laplace
from .lmo import LMO
from .piecewise import PiecewiseNoise

__all__ = ["Noise", "Gaussian", "Laplace", "LMO", "CustomNoise", "PiecewiseNoise"]
