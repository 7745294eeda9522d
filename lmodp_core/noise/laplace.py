"""Laplace noise with density exp(-|x|/b) / (2b)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..validation import check_positive, check_scale
from .base import Noise


@dataclass(frozen=True, repr=False)
class Laplace(Noise):
    """Laplace(0, scale) per coordinate."""

    scale: float
    family: ClassVar[str] = "laplace"
    symmetric_unimodal: ClassVar[bool] = True

    def __post_init__(self):
        self._set_checked(scale=check_scale("scale", self.scale))

    def logpdf(self, x):
        return -np.abs(np.asarray(x, dtype=float)) / self.scale - math.log(2.0 * self.scale)

    def sf(self, x):
        x = np.asarray(x, dtype=float)
        tail = 0.5 * np.exp(-np.abs(x) / self.scale)  # P(Z > |x|)
        return np.where(x >= 0, tail, 1.0 - tail)

    def score(self, x):
        return -np.sign(np.asarray(x, dtype=float)) / self.scale

    def sample(self, rng, size=None):
        return rng.laplace(0.0, self.scale, size)

    def scaled(self, factor):
        return Laplace(self.scale * check_positive("factor", factor))

    @property
    def typical_scale(self):
        return self.scale

    @property
    def variance(self):
        return 2.0 * self.scale**2

    @property
    def mean_abs(self):
        return self.scale

    @property
    def log_density_lipschitz(self):
        return 1.0 / self.scale

    @property
    def fisher_information(self):
        return 1.0 / self.scale**2
