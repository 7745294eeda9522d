"""The contract every accounting method honours, and cross-checks against independent implementations.

Each method ("rdp", "pld", "auto") must: answer 0 for an empty ledger; compose a heterogeneous ledger as the
composition of its runs (never less than any single run); round-trip epsilon <-> delta consistently; and give the
same answers after a state round trip.
"""

import json
import warnings

import numpy as np
import pytest

from lmodp_core import Accountant, Gaussian, L2Ball, Laplace, OrderGridWarning, Poisson, Scalar, step_rdp

METHODS = ("rdp", "pld", "auto")


def _ledger(method):
    accountant = Accountant(Gaussian(1.2), L2Ball(1.0), Poisson(0.02), method=method)
    return accountant.step(300).step(40, noise=Gaussian(0.9), sampling=Poisson(0.01))


@pytest.mark.parametrize("method", METHODS)
def test_empty_ledger_spends_nothing(method):
    accountant = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), method=method)
    assert accountant.get_epsilon(1e-5) == 0.0
    assert accountant.get_delta(1.0) == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_heterogeneous_ledger_costs_more_than_each_run(method):
    both = _ledger(method)
    first = Accountant(Gaussian(1.2), L2Ball(1.0), Poisson(0.02), method=method).step(300)
    second = Accountant(Gaussian(0.9), L2Ball(1.0), Poisson(0.01), method=method).step(40)
    assert both.get_epsilon(1e-5) >= max(first.get_epsilon(1e-5), second.get_epsilon(1e-5))
    assert both.get_epsilon(1e-5) <= first.get_epsilon(1e-5 / 2) + second.get_epsilon(1e-5 / 2)  # basic composition


@pytest.mark.parametrize("method", METHODS)
def test_epsilon_and_delta_round_trip(method):
    accountant = _ledger(method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrderGridWarning)
        epsilon = accountant.get_epsilon(1e-6)
        assert accountant.get_delta(epsilon) <= 1e-6 * (1 + 1e-6)
        assert accountant.get_delta(epsilon * 0.97) > 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_state_round_trip_gives_identical_answers(method):
    accountant = _ledger(method)
    restored = Accountant.from_json(json.dumps(accountant.state_dict()))
    assert restored.ledger == accountant.ledger and restored.method == method
    assert restored.get_epsilon(1e-5) == accountant.get_epsilon(1e-5)
    assert restored.get_delta(0.5) == accountant.get_delta(0.5)


def test_non_gaussian_scalar_ledger_obeys_the_contract_too():
    accountant = Accountant(Laplace(2.0), Scalar(1.0), Poisson(0.05), method="auto").step(20)
    epsilon = accountant.get_epsilon(1e-6)
    assert accountant.get_delta(epsilon) <= 1e-6 * (1 + 1e-6)
    assert Accountant.from_json(accountant.to_json()).get_epsilon(1e-6) == epsilon


@pytest.mark.parametrize("rate, sigma", [(0.01, 1.0), (0.1, 2.0), (0.5, 0.8), (1.0, 3.0)])
def test_sampled_gaussian_rdp_matches_opacus(rate, sigma):
    """Independent implementation: Opacus's compute_rdp (Mironov-Talwar-Zhang 2019, arXiv:1908.10530)."""
    analysis = pytest.importorskip("opacus.accountants.analysis.rdp")
    orders = np.array([1.5, 2.0, 2.5, 3.0, 5.0, 8.0, 16.0, 32.0, 64.0])
    ours = step_rdp(Gaussian(sigma), L2Ball(1.0), Poisson(rate), orders)
    theirs = analysis.compute_rdp(q=rate, noise_multiplier=sigma, steps=1, orders=orders)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-14)
