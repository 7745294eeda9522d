"""Gaussian noise N(0, sigma^2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from ..validation import check_positive, check_scale
from .base import Noise

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True, repr=False)
class Gaussian(Noise):
    """N(0, sigma^2) per coordinate."""

    sigma: float
    family: ClassVar[str] = "gaussian"
    symmetric_unimodal: ClassVar[bool] = True

    def __post_init__(self):
        self._set_checked(sigma=check_scale("sigma", self.sigma))

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        return -0.5 * (x / self.sigma) ** 2 - math.log(self.sigma) - _LOG_SQRT_2PI

    def sf(self, x):
        return special.ndtr(-np.asarray(x, dtype=float) / self.sigma)

    def score(self, x):
        return -np.asarray(x, dtype=float) / self.sigma**2

    def sample(self, rng, size=None):
        return rng.normal(0.0, self.sigma, size)

    def scaled(self, factor):
        return Gaussian(self.sigma * check_positive("factor", factor))

    @property
    def kinks(self):
        return ()

    @property
    def typical_scale(self):
        return self.sigma

    @property
    def variance(self):
        return self.sigma**2

    @property
    def mean_abs(self):
        return self.sigma * math.sqrt(2.0 / math.pi)

    @property
    def fisher_information(self):
        return 1.0 / self.sigma**2
