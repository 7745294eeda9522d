"""The paper's formulas (reference only): bound vs numeric r_a(s), +inf outside the MGF domain, published labels."""

import math

import numpy as np
import pytest

from lmodp_core import LMO, Gaussian
from lmodp_core.auditing import published_parameters
from lmodp_core.rdp import renyi_shift
from lmodp_core.reference import (
    PAPER_ORDERS,
    matching_gaussian_sigma,
    paper_epsilon,
    paper_rdp_as_published,
    paper_rdp_bound,
)

from .conftest import PAPER_03

SHIFTS = [0.25, 0.5, 1.0]
ORDERS = [1.5, 2.0, 4.0, 8.0, 16.0, 20.0, 22.0, 64.0, 128.0]


@pytest.mark.parametrize(
    "params",
    [
        PAPER_03,
        dict(PAPER_03, unif_low=0.0, unif_high=1.0, gamma_shape=2.0),
        dict(a1=0.0, a3=0.0, a4=1.0, gamma_shape=1.0, gamma_scale=1.0, exp_rate=1.0, unif_low=1.0, unif_high=3.0),
    ],
)
def test_numeric_renyi_is_below_the_paper_bound_wherever_it_is_finite(params):
    noise = LMO(**params)
    bound = paper_rdp_bound(noise, SHIFTS, ORDERS)
    numeric = renyi_shift(noise, SHIFTS, ORDERS)
    finite = np.isfinite(bound)
    assert finite.any()
    assert np.all(numeric[finite] <= bound[finite] * (1 + 1e-9) + 1e-12)


def test_paper_bound_is_inf_outside_the_mgf_domain(lmo_paper):
    # domain: a1*theta*(a-1)s < 1 and a3*(a-1)s < rate  ->  (a-1)s < 20 for the 0.3 set
    bound = paper_rdp_bound(lmo_paper, [1.0], [2.0, 20.0, 21.0, 22.0, 64.0, 128.0])[0]
    assert np.all(np.isfinite(bound[:2]))
    assert np.all(np.isinf(bound[2:]))
    assert not np.any(np.isnan(bound))


def test_as_published_evaluation_is_finite_where_the_bound_is_not(lmo_paper):
    """docs/theory.md §2 F1: negative MGF factors multiply to a small finite 'bound' at order 128."""
    as_published = paper_rdp_as_published(lmo_paper, [1.0], [128.0])[0, 0]
    assert math.isfinite(as_published) and as_published < 0.2
    assert math.isinf(paper_rdp_bound(lmo_paper, [1.0], [128.0])[0, 0])
    inside = [2.0, 8.0, 16.0]
    np.testing.assert_allclose(
        paper_rdp_as_published(lmo_paper, [1.0], inside), paper_rdp_bound(lmo_paper, [1.0], inside), rtol=1e-12
    )


def test_published_labels_are_reproduced_by_the_as_published_formula():
    expected = {
        "0.3": (0.29321, 128.0),
        "0.7": (0.69321, 128.0),
        "2": (1.92809, 49.0),
        "3": (2.99648, 48.0),
        "5": (4.92146, 128.0),
    }
    for entry in published_parameters()["sets"]:
        eps, order = paper_epsilon(LMO.from_paper(entry), 1e-10)
        assert eps == pytest.approx(expected[entry["label"]][0], abs=1e-5)
        assert order == expected[entry["label"]][1]
        valid, _ = paper_epsilon(LMO.from_paper(entry), 1e-10, as_published=False)
        assert valid > eps  # restricted to valid orders the formula gives a larger epsilon


def test_scale_enters_as_a_shift_rescaling(lmo_paper):
    np.testing.assert_allclose(
        paper_rdp_bound(lmo_paper.scaled(2.0), [2.0], ORDERS[:5]),
        paper_rdp_bound(lmo_paper, [1.0], ORDERS[:5]),
        rtol=1e-12,
    )


def test_paper_dict_is_accepted(lmo_paper):
    assert paper_epsilon(lmo_paper.to_paper(), 1e-10) == paper_epsilon(lmo_paper, 1e-10)
    assert PAPER_ORDERS.max() == 128.0


@pytest.mark.parametrize(
    "epsilon, delta, sigma",
    [(1.0, 1e-5, 3.730632), (1.0, 1e-6, 4.224679), (0.5, 1e-5, 7.031827), (2.0, 1e-5, 1.993812)],
)
def test_matching_gaussian_sigma_is_the_analytic_gaussian(epsilon, delta, sigma):
    assert matching_gaussian_sigma(epsilon, delta) == pytest.approx(sigma, rel=1e-6)


def test_bad_inputs_raise(lmo_paper):
    with pytest.raises(ValueError, match="shifts"):
        paper_rdp_bound(lmo_paper, [0.0], [2.0])
    with pytest.raises(ValueError, match="orders"):
        paper_rdp_bound(lmo_paper, [1.0], [1.0])
    with pytest.raises(ValueError, match="noise"):
        paper_rdp_bound(Gaussian(1.0), [1.0], [2.0])
    with pytest.raises(ValueError, match="delta"):
        paper_epsilon(lmo_paper, 1.5)
    with pytest.raises(ValueError, match="missing"):
        paper_epsilon({"a1": 0.1}, 1e-5)
