"""The add direction of the vector Poisson bound: exact quadratic curvature (docs/accounting.md, "Poisson
subsampling"), checked by brute force and against quadrature of real 1-D mixtures."""
import math

import numpy as np
import pytest

from lmodp_core import LMO, Laplace
from lmodp_core.rdp import binomial_rdp, renyi_poisson_mixture, renyi_shift
from lmodp_core.rdp.subsampled import _log_add_curvature

from .conftest import PAPER_03


@pytest.mark.parametrize("order, rate", [(2, 0.3), (5, 0.01), (16, 0.03), (128, 0.03), (64, 0.5), (3, 1e-3)])
def test_curvature_is_the_sup_of_the_taylor_ratio(order, rate):
    u = np.concatenate([-rate * (1 - np.geomspace(1e-9, 0.99, 2000)), np.geomspace(1e-6, 1e3, 2000)])
    ratio = ((1 + u) ** (1.0 - order) - 1.0 - (1.0 - order) * u) / (u * u)
    lagrange = 0.5 * order * (order - 1) * (1 - rate) ** (-order - 1)
    curvature = math.exp(_log_add_curvature(order, rate)) / rate**2
    assert ratio.max() <= curvature * (1 + 1e-6)
    assert curvature <= lagrange * (1 + 1e-12)


@pytest.mark.parametrize("noise", [Laplace(1.0), LMO(**PAPER_03)], ids=repr)
def test_bound_holds_for_both_directions_at_a_large_rate(noise):
    orders = np.array([2.0, 5.0, 10.0, 20.0])
    for rate in (0.3, 0.6):
        remove, add = renyi_poisson_mixture(noise, 1.0, rate, orders)
        bound = binomial_rdp(rate, lambda ells: renyi_shift(noise, [1.0], ells)[0], orders)
        assert np.all(np.maximum(remove, add) <= bound * (1 + 1e-9))
