"""Accountant, compute_epsilon(), calibrate(): composition, persistence, hypothesis properties, bad input."""

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special

from lmodp_core import (
    LMO,
    Accountant,
    Gaussian,
    L1Ball,
    L2Ball,
    Laplace,
    Mechanism,
    OrderGridWarning,
    PiecewiseNoise,
    Poisson,
    Scalar,
    calibrate,
    compute_epsilon,
    step_rdp,
)
from lmodp_core.rdp.certified_sup import RELATIVE_TOLERANCE
from lmodp_core.rdp.step import step_rdp_lower_bound

from .conftest import PAPER_03

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTY_ORDERS = np.array([1.5, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])


def _eps(noise, geometry, rate, steps):
    accountant = Accountant(noise, geometry, Poisson(rate), method="rdp", orders=PROPERTY_ORDERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrderGridWarning)
        return accountant.step(steps).get_epsilon(1e-5)


def test_dp_sgd_rdp_epsilon_vector():
    acc = Accountant(Gaussian(0.8), L2Ball(1.0), Poisson(5e-3), method="rdp").step(1000)
    assert acc.get_epsilon(1e-6) == pytest.approx(2.627, abs=2e-3)
    report = acc.report(1e-6)
    assert report.method == "rdp" and report.steps == 1000 and report.epsilon == acc.get_epsilon(1e-6)


def test_heterogeneous_ledger_is_the_sum_of_its_runs():
    lmo = LMO(**PAPER_03)
    acc = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), method="rdp")
    acc.step(100).step(50).step(10, noise=lmo).step(5, sampling=Poisson(0.02))
    assert [c for _, c in acc.ledger] == [150, 10, 5]  # equal consecutive steps merge
    orders = acc.orders
    expected = (
        150 * step_rdp(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), orders)
        + 10 * step_rdp(lmo, L2Ball(1.0), Poisson(0.01), orders)
        + 5 * step_rdp(Gaussian(1.0), L2Ball(1.0), Poisson(0.02), orders)
    )
    np.testing.assert_allclose(acc.rdp(), expected, rtol=1e-12)
    assert acc.steps == 165


def test_state_dict_round_trips_through_json():
    acc = Accountant(LMO(**PAPER_03, scale=20.0), L1Ball(0.5), Poisson(0.03), method="rdp").step(7)
    acc.step(3, noise=Laplace(2.0), geometry=Scalar(1.0))
    restored = Accountant.from_json(json.dumps(acc.state_dict()))
    assert restored.ledger == acc.ledger
    assert restored.get_epsilon(1e-5) == acc.get_epsilon(1e-5)
    restored.step(2)  # the default mechanism is restored too
    assert restored.ledger[-1][0] == Mechanism(LMO(**PAPER_03, scale=20.0), L1Ball(0.5), Poisson(0.03))
    fresh = Accountant()
    fresh.load_state_dict(acc.state_dict())
    assert fresh.get_delta(1.0) == acc.get_delta(1.0)


def test_empty_ledger_and_missing_noise():
    acc = Accountant()
    assert acc.get_epsilon(1e-5) == 0.0 and acc.get_delta(1.0) == 0.0
    with pytest.raises(ValueError, match="needs a noise"):
        acc.step()


def test_epsilon_and_delta_are_consistent():
    acc = Accountant(Laplace(3.0), L2Ball(1.0), Poisson(0.05), method="rdp").step(200)
    eps = acc.get_epsilon(1e-6)
    assert acc.get_delta(eps) <= 1e-6 * (1 + 1e-6)
    assert acc.get_delta(eps * 0.98) > 1e-6


def test_calibrate_meets_the_target_and_is_tight():
    for noise, geometry in [(Gaussian(1.0), L2Ball(1.0)), (LMO(**PAPER_03), L2Ball(1.0)), (Laplace(1.0), Scalar(1.0))]:
        tuned = calibrate(
            noise, geometry, Poisson(0.01), 500, target_epsilon=2.0, target_delta=1e-5, method="rdp", rtol=1e-3
        ).noise
        assert type(tuned) is type(noise)
        assert compute_epsilon(tuned, geometry, Poisson(0.01), 500, 1e-5, method="rdp") <= 2.0
        smaller = tuned.scaled(1.0 / 1.002)
        assert compute_epsilon(smaller, geometry, Poisson(0.01), 500, 1e-5, method="rdp") > 2.0


def test_calibrated_laplace_mixture_needs_more_noise_than_gaussian_in_l2():
    """docs/theory.md §2: I_f Var >= 2 for Laplace mixtures, so at equal RDP the std is >= sqrt(2) x Gaussian's."""
    gauss = calibrate(
        Gaussian(1.0), L2Ball(1.0), Poisson(1.0), 1, target_epsilon=1.0, target_delta=1e-5, method="rdp"
    ).noise
    lmo = calibrate(
        LMO(**PAPER_03), L2Ball(1.0), Poisson(1.0), 1, target_epsilon=1.0, target_delta=1e-5, method="rdp"
    ).noise
    assert lmo.std >= math.sqrt(2.0) * gauss.std


# ---- hypothesis properties ------------------------------------------------------------------------------------
NOISES = st.sampled_from([Gaussian(1.0), Laplace(1.0), LMO(**PAPER_03, scale=10.0)])
GEOMETRIES = st.sampled_from([Scalar(1.0), L1Ball(1.0), L2Ball(1.0)])


@FAST
@given(
    noise=NOISES, geometry=GEOMETRIES, steps=st.integers(1, 5000), extra=st.integers(1, 5000), rate=st.floats(1e-3, 1.0)
)
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
    np.testing.assert_allclose(
        step_rdp(Gaussian(sigma), L2Ball(clip), None, orders), orders * clip**2 / (2 * sigma**2), rtol=1e-14
    )


@FAST
@given(noise=NOISES, rate=st.floats(1e-3, 1.0), clip=st.floats(0.1, 3.0))
def test_l2_is_at_least_the_scalar_query_with_the_same_clip(noise, rate, clip):
    orders = np.array([2.0, 8.0, 32.0])
    # the certified Scalar sup may exceed the true sup by RELATIVE_TOLERANCE, the numerical L2 sup does not
    assert np.all(
        step_rdp(noise, L2Ball(clip), Poisson(rate), orders)
        >= step_rdp(noise, Scalar(clip), Poisson(rate), orders) / (1 + RELATIVE_TOLERANCE)
    )


# ---- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 0, 1e-5), "steps"),
        (lambda: compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 2.5, 1e-5), "steps"),
        (lambda: compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, 0.0), "delta"),
        (lambda: compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, float("nan")), "delta"),
        (lambda: compute_epsilon(Gaussian(1.0), L2Ball(1.0), 0.0, 10, 1e-5), "sample_rate"),
        (lambda: Accountant(Gaussian(1.0), method="exact"), "method"),
        (lambda: Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(1.0)).step(0), "count"),
        (lambda: Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(1.0)).get_delta(-1.0), "epsilon"),
        (lambda: Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(1.0)).get_delta(float("inf")), "epsilon"),
        (lambda: Accountant.from_state_dict({"state_version": 99}), "state_version"),
        (
            lambda: calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, target_epsilon=0.0, target_delta=1e-5),
            "target_epsilon",
        ),
        (
            lambda: calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, target_epsilon=1.0, target_delta=2.0),
            "delta",
        ),
        (
            lambda: calibrate(
                Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, target_epsilon=1.0, target_delta=1e-5, rtol=0
            ),
            "rtol",
        ),
        (lambda: Mechanism("noise"), "noise"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- robustness (issue 12: bounded time, malformed state, wrong types; issue 9: delta at epsilon = 0) ----------
def test_huge_step_counts_fall_back_to_rdp_with_a_note():
    report = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)).step(10**18).report(1e-5)
    assert report.method == "rdp" and "grid points" in report.pld_skipped
    assert report.epsilon == compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10**18, 1e-5, method="rdp")
    with pytest.raises(ValueError, match="grid points"):
        compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10**18, 1e-5, method="pld")
    assert 0.0 <= compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(1e-12), 1000, 1e-5) < 1e-3


def _gaussian_ledger_report(sigmas, clip: float, rate: float, count: int):
    """The report at delta=1e-5 of ``count`` steps of each Gaussian(sigma), in this order."""
    accountant = Accountant(Gaussian(1.0), L2Ball(clip), Poisson(rate))
    for sigma in sigmas:
        accountant.step(count, noise=Gaussian(float(sigma)))
    return accountant.report(1e-5)


def test_distinct_unsampled_gaussians_merge_exactly():
    sigmas = np.linspace(20.0, 40.0, 1000)
    report = _gaussian_ledger_report(sigmas, clip=2.0, rate=1.0, count=1)
    merged = 1.0 / math.sqrt(np.sum((2.0 / sigmas) ** 2))  # mu^2 = sum_i (r / sigma_i)^2
    assert report.method == "pld" and report.notes == () and report.steps == 1000
    assert report.epsilon == compute_epsilon(Gaussian(merged), L2Ball(1.0), Poisson(1.0), 1, 1e-5)


def test_many_distinct_sampled_gaussians_are_bucketed_soundly():
    report = _gaussian_ledger_report(np.linspace(1.0, 1.5, 40), clip=1.0, rate=0.01, count=5)
    assert report.method == "pld" and "bucketed" in report.notes[0]
    assert compute_epsilon(Gaussian(1.5), L2Ball(1.0), Poisson(0.01), 200, 1e-5) < report.epsilon
    assert report.epsilon <= compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 200, 1e-5)


def test_tiny_noise_gives_a_finite_sound_epsilon():
    mu = 100.0 * math.sqrt(10.0)  # ten unsampled steps of sigma = 0.01, clip 1
    value = compute_epsilon(Gaussian(0.01), L2Ball(1.0), Poisson(1.0), 10, 1e-5)
    # exact Gaussian delta at the reported epsilon (Balle & Wang 2018, Thm 8), in log space
    log_delta = special.log_ndtr(-value / mu + mu / 2) + np.log1p(
        -np.exp(value + special.log_ndtr(-value / mu - mu / 2) - special.log_ndtr(-value / mu + mu / 2))
    )
    assert math.isfinite(value) and log_delta <= math.log(1e-5)


def test_delta_below_the_pld_range_uses_rdp():
    report = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(1.0)).step(1).report(1e-300)
    assert report.method == "rdp" and "1e-250" in report.pld_skipped
    mp = pytest.importorskip("mpmath")
    exact = mp.ncdf(-report.epsilon + 0.5) - mp.e ** mp.mpf(report.epsilon) * mp.ncdf(-report.epsilon - 0.5)
    assert exact <= 1e-300
    with pytest.raises(ValueError, match="1e-250"):
        Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(1.0), method="pld").step(1).get_epsilon(1e-300)


SKIP_CASES = [
    (LMO(**PAPER_03).scaled(3.0), Scalar(1.0), 0.1, 100),
    (LMO(**PAPER_03).scaled(8.0), Scalar(1.0), 0.01, 1),
    (Laplace(2.0), L1Ball(1.0), 0.05, 30),
    (PiecewiseNoise.staircase(1.0, 0.3, 1.0), Scalar(1.0), 0.2, 10),
]


@pytest.mark.parametrize("noise, geometry, rate, steps", SKIP_CASES)
def test_skipping_the_rdp_answer_never_changes_the_guarantee(noise, geometry, rate, steps):
    accountant = Accountant(noise, geometry, Poisson(rate)).step(steps)
    full = accountant.report(1e-5, all_methods=True)
    fast = accountant.report(1e-5)
    assert fast.epsilon == full.epsilon and fast.method == full.method
    assert (fast.rdp_epsilon is None) == (fast.rdp_skipped is not None)
    if fast.rdp_skipped is not None:
        assert full.pld_epsilon <= full.rdp_epsilon  # skipped only where RDP would lose
    lower = step_rdp_lower_bound(noise, geometry, Poisson(rate))
    assert np.all(lower <= step_rdp(noise, geometry, Poisson(rate)))
    assert np.any(lower > 0)
    pld_only = Accountant(noise, geometry, Poisson(rate), method="pld").step(steps)
    assert pld_only.report(1e-5).rdp_skipped == "method='pld'"
    rdp_only = Accountant(noise, geometry, Poisson(rate), method="rdp").step(steps)
    for epsilon in (0.5 * full.epsilon, full.epsilon):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OrderGridWarning)
            rdp_delta = rdp_only.get_delta(epsilon)
        assert accountant.get_delta(epsilon) == min(pld_only.get_delta(epsilon), rdp_delta)


def test_delta_at_epsilon_zero_is_the_total_variation_bound():
    accountant = Accountant(Gaussian(2.0), L2Ball(1.0), Poisson(1.0)).step(1)
    assert accountant.get_delta(0.0) >= 2.0 * special.ndtr(0.25) - 1.0
    assert accountant.get_delta(0.0) == pytest.approx(2.0 * special.ndtr(0.25) - 1.0, rel=1e-6)
    rdp_only = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), method="rdp").step(100)
    assert 0.0 < rdp_only.get_delta(0.0) <= 1.0
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        accountant.get_delta(-0.5)


def _damaged(path, change):
    state = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)).step(3).state_dict()
    state.pop("checksum")
    node = state
    for key in path[:-1]:
        node = node[key]
    change(node, path[-1])
    return state


@pytest.mark.parametrize(
    "path",
    [
        ("method",),
        ("orders",),
        ("ledger",),
        ("default",),
        ("ledger", 0, "count"),
        ("ledger", 0, "mechanism"),
        ("ledger", 0, "mechanism", "noise"),
        ("ledger", 0, "mechanism", "geometry"),
        ("ledger", 0, "mechanism", "sampling"),
        ("ledger", 0, "mechanism", "sampling", "sample_rate"),
    ],
)
def test_state_missing_a_key_names_it(path):
    state = _damaged(path, lambda node, key: node.pop(key))
    with pytest.raises(ValueError, match=repr(path[-1])):
        Accountant.from_state_dict(state)


@pytest.mark.parametrize(
    "path, value",
    [
        (("ledger",), "x"),
        (("orders",), {"a": 1}),
        (("ledger", 0), 5),
        (("ledger", 0, "mechanism"), []),
        (("orders",), ["a"]),
        (("ledger", 0, "mechanism", "geometry"), {"kind": "l2", "radius": 1}),
        (("ledger", 0, "mechanism", "noise"), {"family": "gaussian"}),
        (("ledger", 0, "count"), None),
    ],
)
def test_state_with_wrong_types_raises_value_error(path, value):
    state = _damaged(path, lambda node, key: node.__setitem__(key, value))
    with pytest.raises(ValueError):
        Accountant.from_state_dict(state)


def test_state_records_the_neighbouring_relation():
    from lmodp_core.accountant import _state_checksum

    state = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)).step(3).state_dict()
    assert state["state_version"] == 2 and state["neighbouring"] == "add_remove"
    old = {k: v for k, v in state.items() if k not in ("neighbouring", "checksum")}
    old["state_version"] = 1  # a 0.2 state: no neighbouring key, read as add_remove
    old["checksum"] = _state_checksum(old)
    assert Accountant.from_state_dict(old).neighbouring == "add_remove"
    assert Accountant.from_state_dict(old).get_epsilon(1e-5) == Accountant.from_state_dict(state).get_epsilon(1e-5)
    other = dict(state, neighbouring="replace_one")
    other["checksum"] = _state_checksum(other)
    with pytest.raises(ValueError, match="neighbouring must be one of"):
        Accountant.from_state_dict(other)
    missing = {k: v for k, v in state.items() if k not in ("neighbouring", "checksum")}
    with pytest.raises(ValueError, match="neighbouring"):
        Accountant.from_state_dict(missing)


def test_state_checksum_detects_an_edit():
    state = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)).step(3).state_dict()
    assert Accountant.from_state_dict(state).ledger[0][1] == 3
    state["ledger"][0]["count"] = 1
    with pytest.raises(ValueError, match="checksum"):
        Accountant.from_state_dict(state)
    with pytest.raises(ValueError, match="JSON"):
        Accountant.from_json('{"state_version": 1, "method"')


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: compute_epsilon(Gaussian(1.0), None, Poisson(0.01), 10, 1e-5), "geometry is required"),
        (lambda: Accountant(Gaussian(1.0)), "geometry is required"),
        (lambda: Accountant(Gaussian(1.0), L2Ball(1.0)), r"sampling is required: pass Poisson\(sample_rate\)"),
        (lambda: Accountant(geometry=L2Ball(1.0), sampling=Poisson(0.1)), "give noise too"),
        (lambda: Accountant().step(1, noise=Gaussian(1.0), geometry=L2Ball(1.0)), "sampling is required"),
        (lambda: Accountant().step(1, noise=Gaussian(1.0), sampling=Poisson(0.1)), "geometry is required"),
        (lambda: compute_epsilon(Gaussian(1.0), L2Ball(1.0), None, 10, 1e-5), "sampling is required"),
        (
            lambda: calibrate(Gaussian(1.0), L2Ball(1.0), None, 10, target_epsilon=1.0, target_delta=1e-5),
            "sampling is required",
        ),
        (
            lambda: Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.1), neighbouring="replace_one"),
            r"neighbouring must be one of \('add_remove',\)",
        ),
        (lambda: Accountant(1.0, L2Ball(1.0)), r"Gaussian\(1.0\)"),
        (lambda: compute_epsilon(2, L2Ball(1.0), None, 10, 1e-5), r"Gaussian\(2\)"),
    ],
)
def test_wrong_types_get_user_worded_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("sigma", [1e-100, 1e-60, 1e-20, 1e20, 1e60, 1e100])  # the supported range
@pytest.mark.parametrize("rate", [1.0, 0.01])
def test_extreme_gaussian_scales_give_sound_numbers(sigma, rate):
    accountant = Accountant(Gaussian(sigma), L2Ball(1.0), Poisson(rate)).step(1000)
    value, delta = accountant.get_epsilon(1e-5), accountant.get_delta(1.0)
    assert value >= 0.0 and 0.0 <= delta <= 1.0
    if sigma >= 1e20:
        assert value < 1e-9
    else:
        assert value > 1e3 and delta > 1e-5
