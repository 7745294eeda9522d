"""Accountant, epsilon(), calibrate(): composition, persistence, hypothesis properties, bad input."""
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmodp_core import (LMO, Accountant, Gaussian, L1Ball, L2Ball, Laplace, Mechanism, OrderGridWarning, Poisson,
                        Scalar, calibrate, epsilon, step_rdp)

from .conftest import PAPER_03

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTY_ORDERS = np.array([1.5, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])


def _eps(noise, geometry, rate, steps):
    accountant = Accountant(noise, geometry, Poisson(rate), method="rdp", orders=PROPERTY_ORDERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrderGridWarning)
        return accountant.step(steps).epsilon(1e-5)


def test_dp_sgd_rdp_epsilon_vector():
    acc = Accountant(Gaussian(0.8), L2Ball(1.0), Poisson(5e-3), method="rdp").step(1000)
    assert acc.epsilon(1e-6) == pytest.approx(2.627, abs=2e-3)
    report = acc.report(1e-6)
    assert report.method == "rdp" and report.steps == 1000 and report.epsilon == acc.epsilon(1e-6)


def test_heterogeneous_ledger_is_the_sum_of_its_runs():
    lmo = LMO(**PAPER_03)
    acc = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), method="rdp")
    acc.step(100).step(50).step(10, noise=lmo).step(5, sampling=Poisson(0.02))
    assert [c for _, c in acc.ledger] == [150, 10, 5]  # equal consecutive steps merge
    orders = acc.orders
    expected = (150 * step_rdp(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), orders)
                + 10 * step_rdp(lmo, L2Ball(1.0), Poisson(0.01), orders)
                + 5 * step_rdp(Gaussian(1.0), L2Ball(1.0), Poisson(0.02), orders))
    np.testing.assert_allclose(acc.rdp(), expected, rtol=1e-12)
    assert acc.steps == 165


def test_state_dict_round_trips_through_json():
    acc = Accountant(LMO(**PAPER_03, scale=20.0), L1Ball(0.5), Poisson(0.03), method="rdp").step(7)
    acc.step(3, noise=Laplace(2.0), geometry=Scalar(1.0))
    restored = Accountant.from_json(json.dumps(acc.state_dict()))
    assert restored.ledger == acc.ledger
    assert restored.epsilon(1e-5) == acc.epsilon(1e-5)
    restored.step(2)  # the default mechanism is restored too
    assert restored.ledger[-1][0] == Mechanism(LMO(**PAPER_03, scale=20.0), L1Ball(0.5), Poisson(0.03))
    fresh = Accountant()
    fresh.load_state_dict(acc.state_dict())
    assert fresh.delta(1.0) == acc.delta(1.0)


def test_empty_ledger_and_missing_noise():
    acc = Accountant()
    assert acc.epsilon(1e-5) == 0.0 and acc.delta(1.0) == 0.0
    with pytest.raises(ValueError, match="needs a noise"):
        acc.step()


def test_epsilon_and_delta_are_consistent():
    acc = Accountant(Laplace(3.0), L2Ball(1.0), Poisson(0.05), method="rdp").step(200)
    eps = acc.epsilon(1e-6)
    assert acc.delta(eps) <= 1e-6 * (1 + 1e-6)
    assert acc.delta(eps * 0.98) > 1e-6


def test_calibrate_meets_the_target_and_is_tight():
    for noise, geometry in [(Gaussian(1.0), L2Ball(1.0)), (LMO(**PAPER_03), L2Ball(1.0)), (Laplace(1.0), Scalar(1.0))]:
        tuned = calibrate(noise, geometry, Poisson(0.01), 500, epsilon=2.0, delta=1e-5, method="rdp", rtol=1e-3)
        assert type(tuned) is type(noise)
        assert epsilon(tuned, geometry, Poisson(0.01), 500, 1e-5, method="rdp") <= 2.0
        smaller = tuned.scaled(1.0 / 1.002)
        assert epsilon(smaller, geometry, Poisson(0.01), 500, 1e-5, method="rdp") > 2.0


def test_calibrated_laplace_mixture_needs_more_noise_than_gaussian_in_l2():
    """DESIGN §2: I_f Var >= 2 for Laplace mixtures, so at equal RDP the std is >= sqrt(2) x Gaussian's."""
    gauss = calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(1.0), 1, epsilon=1.0, delta=1e-5, method="rdp")
    lmo = calibrate(LMO(**PAPER_03), L2Ball(1.0), Poisson(1.0), 1, epsilon=1.0, delta=1e-5, method="rdp")
    assert lmo.std >= math.sqrt(2.0) * gauss.std


# ---- hypothesis properties ------------------------------------------------------------------------------------
NOISES = st.sampled_from([Gaussian(1.0), Laplace(1.0), LMO(**PAPER_03, scale=10.0)])
GEOMETRIES = st.sampled_from([Scalar(1.0), L1Ball(1.0), L2Ball(1.0)])


@FAST
@given(noise=NOISES, geometry=GEOMETRIES, steps=st.integers(1, 5000), extra=st.integers(1, 5000),
       rate=st.floats(1e-3, 1.0))
def test_epsilon_is_non_decreasing_in_steps(noise, geometry, steps, extra, rate):
    few = _eps(noise, geometry, rate, steps)
    more = _eps(noise, geometry, rate, steps + extra)
    assert more >= few - 1e-12


@FAST
@given(noise=NOISES, geometry=GEOMETRIES, rate=st.floats(1e-3, 0.5), factor=st.floats(1.01, 2.0))
def test_epsilon_is_non_decreasing_in_sample_rate(noise, geometry, rate, factor):
    low = _eps(noise, geometry, rate, 100)
    high = _eps(noise, geometry, min(1.0, rate * factor), 100)
    assert high >= low - 1e-12


@FAST
@given(noise=NOISES, geometry=GEOMETRIES, rate=st.floats(1e-3, 1.0), factor=st.floats(1.01, 4.0))
def test_epsilon_is_non_increasing_in_noise_scale(noise, geometry, rate, factor):
    base = _eps(noise, geometry, rate, 100)
    noisier = _eps(noise.scaled(factor), geometry, rate, 100)
    assert noisier <= base + 1e-12


@FAST
@given(sigma=st.floats(0.1, 50.0), clip=st.floats(0.01, 10.0))
def test_gaussian_l2_rdp_equals_the_closed_form(sigma, clip):
    orders = np.array([1.1, 2.0, 7.5, 64.0])
    np.testing.assert_allclose(step_rdp(Gaussian(sigma), L2Ball(clip), None, orders),
                               orders * clip**2 / (2 * sigma**2), rtol=1e-14)


@FAST
@given(noise=NOISES, rate=st.floats(1e-3, 1.0), clip=st.floats(0.1, 3.0))
def test_l2_is_at_least_the_scalar_query_with_the_same_clip(noise, rate, clip):
    orders = np.array([2.0, 8.0, 32.0])
    assert np.all(step_rdp(noise, L2Ball(clip), Poisson(rate), orders)
                  >= step_rdp(noise, Scalar(clip), Poisson(rate), orders) * (1 - 1e-9))


# ---- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 0, 1e-5), "steps"),
    (lambda: epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 2.5, 1e-5), "steps"),
    (lambda: epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, 0.0), "delta"),
    (lambda: epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, float("nan")), "delta"),
    (lambda: epsilon(Gaussian(1.0), L2Ball(1.0), 0.0, 10, 1e-5), "sample_rate"),
    (lambda: Accountant(Gaussian(1.0), method="exact"), "method"),
    (lambda: Accountant(Gaussian(1.0)).step(0), "count"),
    (lambda: Accountant(Gaussian(1.0)).delta(-1.0), "epsilon"),
    (lambda: Accountant(Gaussian(1.0)).delta(float("inf")), "epsilon"),
    (lambda: Accountant.from_state_dict({"state_version": 99}), "state_version"),
    (lambda: calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, epsilon=0.0, delta=1e-5), "epsilon"),
    (lambda: calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, epsilon=1.0, delta=2.0), "delta"),
    (lambda: calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, epsilon=1.0, delta=1e-5, rtol=0), "rtol"),
    (lambda: Mechanism("noise"), "noise"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
