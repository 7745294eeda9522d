"""The add direction of the vector Poisson bound: exact quadratic curvature (docs/accounting.md, "Poisson
subsampling"), checked by brute force (against quadrature of real 1-D mixtures: tests/test_rdp.py)."""

import math

import numpy as np
import pytest

from lmodp_core.rdp.subsampled import _log_add_curvature


@pytest.mark.parametrize("order, rate", [(2, 0.3), (5, 0.01), (16, 0.03), (128, 0.03), (64, 0.5), (3, 1e-3)])
def test_curvature_is_the_sup_of_the_taylor_ratio(order, rate):
    u = np.concatenate([-rate * (1 - np.geomspace(1e-9, 0.99, 2000)), np.geomspace(1e-6, 1e3, 2000)])
    ratio = ((1 + u) ** (1.0 - order) - 1.0 - (1.0 - order) * u) / (u * u)
    lagrange = 0.5 * order * (order - 1) * (1 - rate) ** (-order - 1)
    curvature = math.exp(_log_add_curvature(order, rate)) / rate**2
    assert ratio.max() <= curvature * (1 + 1e-6)
    assert curvature <= lagrange * (1 + 1e-12)
