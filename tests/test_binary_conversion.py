"""RDP -> epsilon through the worst binary pair: sound against exact epsilons, never above the improved conversion."""

import math

import numpy as np
import pytest
from scipy import optimize, special

from lmodp_core import Gaussian, L2Ball, Laplace, Poisson, Scalar
from lmodp_core.mechanism import Mechanism
from lmodp_core.pld import pld_epsilon
from lmodp_core.rdp import DEFAULT_ORDERS, binary_pair_epsilon, epsilon_from_rdp, step_rdp
from lmodp_core.rdp.subsampled import sampled_gaussian_rdp


def gaussian_epsilon(sigma: float, delta: float) -> float:
    """Exact epsilon of N(1, sigma^2) vs N(0, sigma^2) (Balle & Wang 2018, Thm. 8)."""

    def excess(eps):
        shifted = special.ndtr(0.5 / sigma - eps * sigma)
        return shifted - math.exp(eps) * special.ndtr(-0.5 / sigma - eps * sigma) - delta

    return optimize.brentq(excess, 0.0, 50.0, xtol=1e-12)


@pytest.mark.parametrize("sigma, delta", [(1.0, 1e-5), (3.0, 1e-8), (0.5, 1e-3)])
def test_gaussian_is_sound_and_never_above_the_improved_conversion(sigma, delta):
    rdp = DEFAULT_ORDERS / (2 * sigma**2)
    binary = binary_pair_epsilon(DEFAULT_ORDERS, rdp, delta)
    assert gaussian_epsilon(sigma, delta) <= binary <= epsilon_from_rdp(DEFAULT_ORDERS, rdp, delta, warn=False)[0]


def test_randomized_response_is_sound():
    # RR(eps0): the binary pair itself; delta(eps) = (e^eps0 - e^eps) / (1 + e^eps0)
    eps0, delta = 1.0, 1e-3
    p = 1 / (1 + math.exp(-eps0))
    a = DEFAULT_ORDERS
    rdp = np.logaddexp(a * math.log(p) + (1 - a) * math.log1p(-p), a * math.log1p(-p) + (1 - a) * math.log(p)) / (a - 1)
    exact = math.log(math.exp(eps0) - delta * (1 + math.exp(eps0)))
    binary = binary_pair_epsilon(a, rdp, delta)
    assert exact <= binary <= exact + 0.02


@pytest.mark.parametrize("steps, gain", [(1, 0.4), (10, 0.2)])
def test_sampled_gaussian_against_pld(steps, gain):
    rdp = steps * sampled_gaussian_rdp(0.01, 1.0, DEFAULT_ORDERS)
    binary = binary_pair_epsilon(DEFAULT_ORDERS, rdp, 1e-5)
    improved = epsilon_from_rdp(DEFAULT_ORDERS, rdp, 1e-5, warn=False)[0]
    lower = pld_epsilon([(Mechanism(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)), steps)], 1e-5).lower
    assert lower <= binary <= (1 - gain) * improved


def test_infinite_and_invalid_input():
    assert binary_pair_epsilon([2.0, 3.0], [math.inf, math.inf], 1e-5) == math.inf
    with pytest.raises(ValueError, match="delta"):
        binary_pair_epsilon([2.0], [1.0], 1.5)
    with pytest.raises(ValueError):
        binary_pair_epsilon([2.0, 3.0], [1.0], 1e-5)


@pytest.mark.parametrize("steps", [1, 10])
def test_vector_laplace_stays_above_both_lower_bounds(steps):
    # Laplace(1) under L2Ball(1): the d -> inf limit and the Scalar-geometry value are lower bounds on the truth
    rdp = steps * step_rdp(Laplace(1.0), L2Ball(1.0), Poisson(0.01))
    binary = binary_pair_epsilon(DEFAULT_ORDERS, rdp, 1e-5)
    scalar = pld_epsilon([(Mechanism(Laplace(1.0), Scalar(1.0), Poisson(0.01)), steps)], 1e-5).lower
    limit = pld_epsilon([(Mechanism(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)), steps)], 1e-5).lower  # I_f = 1
    assert max(scalar, limit) <= binary
