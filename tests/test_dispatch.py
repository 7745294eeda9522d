"""Extension points: a noise family added by one module plus registrations is used by every layer.

``_RegisteredNormal`` is a toy family (a Gaussian density under another name) that registers its closed forms the
way docs/architecture.md ("How to add a noise family") says; ``_PlainNormal`` is the same density with no
registration, so every layer falls back to its generic numerics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from lmodp_core import Gaussian, L1Ball, L2Ball, Laplace, Mechanism, Noise, Poisson, Scalar, step_rdp
from lmodp_core.pld import pld_epsilon, shift_dominates, supports
from lmodp_core.pld.registry import dominating_shift_closed_form
from lmodp_core.rdp import renyi_shift
from lmodp_core.rdp.registry import has_renyi_closed_form, renyi_shift_closed_form

ORDERS = np.array([1.5, 2.0, 4.0, 16.0])
_CALLS: list[str] = []


@dataclass(frozen=True, repr=False)
class _PlainNormal(Noise):
    """N(0, sigma^2) written as a generic density: no closed form registered anywhere."""

    sigma: float = 1.0
    family: ClassVar[str] = "test-plain-normal"

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        return -0.5 * (x / self.sigma) ** 2 - math.log(self.sigma * math.sqrt(2.0 * math.pi))

    def sample(self, rng, size=None):
        return rng.normal(0.0, self.sigma, size)

    def scaled(self, factor):
        return type(self)(self.sigma * factor)

    @property
    def typical_scale(self):
        return self.sigma


@dataclass(frozen=True, repr=False)
class _RegisteredNormal(_PlainNormal):
    """The same density, with its closed forms registered below."""

    family: ClassVar[str] = "test-registered-normal"


@renyi_shift_closed_form.register(_RegisteredNormal)
def _normal_renyi(noise, shifts, orders):
    _CALLS.append("renyi")
    return orders[None, :] * shifts[:, None] ** 2 / (2.0 * noise.sigma**2)  # a s^2 / (2 sigma^2)


@dominating_shift_closed_form.register(_RegisteredNormal)
def _normal_dominates(noise, geometry):
    return True  # rotation invariance, as for Gaussian


def test_registered_closed_form_is_used_instead_of_quadrature():
    _CALLS.clear()
    shifts = np.array([0.5, 1.0])
    exact = renyi_shift(_RegisteredNormal(1.2), shifts, ORDERS)
    assert _CALLS == ["renyi"]
    np.testing.assert_array_equal(exact, renyi_shift(Gaussian(1.2), shifts, ORDERS))
    assert has_renyi_closed_form(_RegisteredNormal(1.0)) and not has_renyi_closed_form(_PlainNormal(1.0))
    quadrature = renyi_shift(_PlainNormal(1.2), shifts, ORDERS)
    np.testing.assert_allclose(quadrature, exact, rtol=1e-7)


@pytest.mark.parametrize("geometry", [Scalar(1.0), L1Ball(1.0), L2Ball(1.0)])
def test_step_rdp_of_a_registered_family_matches_gaussian(geometry):
    _CALLS.clear()
    registered = step_rdp(_RegisteredNormal(2.0), geometry, Poisson(1.0), ORDERS)
    assert "renyi" in _CALLS  # the sup over shifts used the registered form
    gaussian = step_rdp(Gaussian(2.0), geometry, Poisson(1.0), ORDERS)
    assert np.all(registered >= gaussian)  # the sup over shifts is inflated by its safety margin, never below
    np.testing.assert_allclose(registered, gaussian, rtol=1e-5)


def test_geometry_says_how_coordinates_combine():
    assert [g.shift_exponent for g in (Scalar(1.0), L1Ball(1.0), L2Ball(1.0))] == [0, 1, 2]


def test_pld_uses_a_registered_dominating_pair_in_any_geometry():
    assert supports(Mechanism(_RegisteredNormal(1.0), L2Ball(1.0), Poisson(0.1)))
    assert not shift_dominates(Mechanism(_PlainNormal(1.0), L2Ball(1.0), Poisson(0.1)))  # no proof for vectors
    assert not shift_dominates(Mechanism(Laplace(1.0), L2Ball(1.0), Poisson(0.1)))  # Laplace: scalar and L1 only
    ledger = [(Mechanism(_RegisteredNormal(1.0), L2Ball(1.0), Poisson(1.0)), 4)]
    generic = pld_epsilon(ledger, 1e-5, rtol=1e-2).upper  # the generic histogram discretisation
    gaussian = pld_epsilon([(Mechanism(Gaussian(1.0), L2Ball(1.0), Poisson(1.0)), 4)], 1e-5, rtol=1e-2).upper
    assert generic == pytest.approx(gaussian, rel=2e-2)


def test_interop_event_registry():
    interop = pytest.importorskip("lmodp_core.interop")
    dp_accounting = pytest.importorskip("dp_accounting")

    @interop.noise_dp_event.register(_RegisteredNormal)
    def _normal_event(noise, geometry):
        return dp_accounting.GaussianDpEvent(noise.sigma / geometry.radius)

    event = interop.to_dp_event(Mechanism(_RegisteredNormal(2.0), L2Ball(0.5), Poisson(0.01)))
    assert event == dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(4.0))
    with pytest.raises(ValueError, match="no event"):
        interop.to_dp_event(Mechanism(_PlainNormal(2.0), L2Ball(0.5), Poisson(0.01)))
    with pytest.raises(ValueError, match="no event"):
        interop.to_dp_event(Mechanism(Laplace(2.0), L2Ball(0.5), Poisson(0.01)))


def test_torch_draws_an_unregistered_family_with_its_numpy_sampler():
    torch = pytest.importorskip("torch")
    from lmodp_torch.noise import largest_draw, sample_noise

    draws = sample_noise(_PlainNormal(3.0), (4000,), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert draws.shape == (4000,) and float(draws.std()) == pytest.approx(3.0, rel=0.1)
    assert largest_draw(_PlainNormal(3.0), torch.float32) is None  # unknown bound: draws are checked instead
