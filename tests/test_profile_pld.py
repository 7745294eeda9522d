"""PLD through a pair built from the step's RDP profile (lmodp_core.pld.profile): steps without a known
dominating shift (vector geometry with non-Gaussian noise, user densities)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmodp_core import (
    DEFAULT_ORDERS,
    LMO,
    Accountant,
    CustomNoise,
    L1Ball,
    L2Ball,
    Laplace,
    Mechanism,
    Poisson,
    Scalar,
    asymptotic_epsilon,
    calibrate,
    compute_epsilon,
    epsilon_from_rdp,
)
from lmodp_core.pld import pld_delta, pld_epsilon, profile_epsilon_floor, shift_dominates, uses_profile_pairs
from lmodp_core.pld.profile import profile_pairs
from lmodp_core.rdp.step import interpolated_unsampled_rdp

PAPER_03 = dict(a1=0.1, a3=0.1, a4=0.1, gamma_shape=1.0, gamma_scale=0.5, exp_rate=5.0, unif_low=1.0, unif_high=2.0)


def _masses(pmf):
    """P-masses of a LossPMF at its grid losses (untilted)."""
    return pmf.values * np.exp(pmf.log_scale - pmf.tilt * pmf.losses)


def _hockey_stick(pmf, epsilon):
    """delta of the discrete pair at ``epsilon``: inf mass + sum over losses above epsilon of m (1 - e^{eps - l})."""
    losses, masses = pmf.losses, _masses(pmf)
    above = losses > epsilon
    return pmf.inf_mass + float(np.sum(masses[above] * -np.expm1(epsilon - losses[above])))


def _one_coordinate_laplace_curve(scale, sample_rate, direction, epsilons):
    """Exact hockey-stick curve of one Poisson-sampled step of Laplace(scale) at the 1-D shift 1 (a shift of every
    ball of radius 1), by a midpoint rule on [-60 b, 60 b]."""
    x = np.linspace(-60 * scale, 60 * scale, 240001)
    mid, width = 0.5 * (x[1:] + x[:-1]), x[1] - x[0]
    f = np.exp(-np.abs(mid) / scale) / (2 * scale)
    mixture = (1 - sample_rate) * f + sample_rate * np.exp(-np.abs(mid - 1.0) / scale) / (2 * scale)
    p, q = (mixture, f) if direction == "remove" else (f, mixture)
    return np.array([np.sum(np.maximum(p - math.exp(e) * q, 0.0)) * width for e in epsilons])


@pytest.mark.parametrize("sample_rate", [0.01, 0.3, 1.0])
def test_the_grid_pair_is_the_convex_hull_of_the_bound_and_dominates_a_true_curve(sample_rate):
    scale = 1.5
    for pair in profile_pairs(Laplace(scale), L2Ball(1.0), sample_rate):
        pmf = pair.loss_pmf(0.01, -300, 600, tilt=0.0)
        masses = _masses(pmf)
        assert np.all(masses >= 0.0)
        # P-mass 1 and Q-mass <= 1, up to the 1e-12 relative margin added to the bound (extra mass is pessimistic)
        assert float(np.sum(masses)) + pmf.inf_mass == pytest.approx(1.0, abs=1e-11)
        assert float(np.sum(masses * np.exp(-pmf.losses))) <= 1.0 + 1e-11
        curve = np.array([_hockey_stick(pmf, e) for e in pmf.losses])
        bound = np.exp(pair.log_delta(pmf.losses))
        # the hull lies below the points it is built from (but at the first, whose leftover mass moved up a vertex)
        assert np.all(curve[1:] <= bound[1:] * (1 + 1e-9) + 1e-15)
        slopes = np.diff(curve) / np.diff(np.exp(pmf.losses))
        assert np.all(np.diff(slopes) >= -1e-9 * np.abs(slopes[1:]) - 1e-12)  # convex in e^eps
        true = _one_coordinate_laplace_curve(scale, sample_rate, pair.direction, pmf.losses[::10])
        assert np.all(curve[::10] >= true - 1e-9), pair.direction


@pytest.mark.parametrize(
    "noise, geometry",
    [(LMO(**PAPER_03).scaled(2.0), L2Ball(1.0)), (Laplace(0.05), L2Ball(1.0)), (LMO(**PAPER_03), L1Ball(1.0))],
)
def test_without_sampling_one_step_is_the_rdp_conversion(noise, geometry):
    """Also where the loss grid spans more than e^709 in gamma (Laplace(0.05): epsilon ~ 1e3)."""
    unsampled = interpolated_unsampled_rdp(noise, geometry, DEFAULT_ORDERS)
    expected = epsilon_from_rdp(DEFAULT_ORDERS, unsampled, 1e-5, warn=False)[0]
    upper, lower = pld_epsilon([(Mechanism(noise, geometry, Poisson(1.0)), 1)], 1e-5)
    assert expected * (1.0 - 1e-3) <= upper <= expected * (1.0 + 2e-3) and lower <= upper


def _two_coordinate_laplace_delta(scale, shift, sample_rate, epsilon):
    """Exact delta of one Poisson-sampled step of i.i.d. Laplace(scale) in 2-D at shift vector ``shift`` (remove
    direction), by a product-grid midpoint rule on [-40 b, 40 b]^2 (error far below the tolerance used)."""
    x = np.linspace(-40 * scale, 40 * scale, 4001)
    mid, width = 0.5 * (x[1:] + x[:-1]), x[1] - x[0]

    def log_f(u):
        return -np.abs(u) / scale - math.log(2 * scale)

    log_q = log_f(mid)[:, None] + log_f(mid)[None, :]
    log_shifted = log_f(mid - shift[0])[:, None] + log_f(mid - shift[1])[None, :]
    p = (1 - sample_rate) * np.exp(log_q) + sample_rate * np.exp(log_shifted)
    return float(np.sum(np.maximum(p - math.exp(epsilon) * np.exp(log_q), 0.0)) * width * width)


@pytest.mark.parametrize("sample_rate", [0.05, 1.0])
def test_sound_against_exact_two_dimensional_laplace(sample_rate):
    """An independent reference: the exact delta of 2-D Laplace at several L2 shifts of norm 1 is <= the target
    delta at the epsilon the accountant reports."""
    scale, delta = 1.0, 1e-3
    epsilon = compute_epsilon(Laplace(scale), L2Ball(1.0), Poisson(sample_rate), 1, delta)
    for angle in (0.0, math.pi / 8, math.pi / 4):
        shift = (math.cos(angle), math.sin(angle))
        assert _two_coordinate_laplace_delta(scale, shift, sample_rate, epsilon) <= delta * (1 + 1e-3), angle


@settings(max_examples=12, deadline=None)
@given(
    scale=st.floats(0.7, 6.0),
    sample_rate=st.sampled_from([0.001, 0.01, 0.1, 1.0]),
    steps=st.sampled_from([1, 3, 10, 100]),
)
def test_vector_bounds_are_never_below_the_scalar_value_or_the_infinite_dimension_limit(scale, sample_rate, steps):
    noise, delta = Laplace(scale), 1e-5
    scalar = compute_epsilon(noise, Scalar(1.0), Poisson(sample_rate), steps, delta)
    limit = asymptotic_epsilon(noise, sample_rate, steps, delta, 1.0)
    l2 = Accountant(noise, L2Ball(1.0), Poisson(sample_rate)).step(steps).report(delta, all_methods=True)
    assert l2.epsilon >= max(scalar, limit) * (1 - 1e-6)
    assert l2.pld_epsilon >= max(scalar, limit) * (1 - 1e-6)  # the profile PLD alone, too
    assert l2.epsilon == min(l2.pld_epsilon, l2.rdp_epsilon)


def test_profile_pld_beats_rdp_for_few_sampled_steps_and_is_reported():
    noise = LMO(**PAPER_03)
    for geometry in (L2Ball(1.0), L1Ball(1.0)):
        mechanism = Mechanism(noise, geometry, Poisson(0.01))
        assert not shift_dominates(mechanism) and uses_profile_pairs([(mechanism, 1)])
        report = Accountant(noise, geometry, Poisson(0.01)).step(1).report(1e-5, all_methods=True)
        assert report.method == "pld" and report.pld_epsilon < 0.5 * report.rdp_epsilon
        assert any("RDP curve" in note for note in report.notes)


def test_delta_and_epsilon_queries_agree():
    ledger = [(Mechanism(Laplace(2.0), L2Ball(1.0), Poisson(0.02)), 10)]
    epsilon = pld_epsilon(ledger, 1e-6).upper
    delta = pld_delta(ledger, epsilon).upper
    assert 1e-6 * 0.98 <= delta <= 1e-6 * 1.02


def test_monotone_in_steps_and_sample_rate():
    noise, geometry = Laplace(2.0), L2Ball(1.0)
    by_steps = [pld_epsilon([(Mechanism(noise, geometry, Poisson(0.01)), t)], 1e-5).upper for t in (1, 2, 5, 20)]
    assert all(a <= b for a, b in zip(by_steps, by_steps[1:]))
    by_rate = [pld_epsilon([(Mechanism(noise, geometry, Poisson(q)), 5)], 1e-5).upper for q in (0.001, 0.01, 0.1)]
    assert all(a <= b for a, b in zip(by_rate, by_rate[1:]))


def test_the_floor_bounds_every_profile_answer_and_calibration_names_it():
    floor = profile_epsilon_floor(0.01, 100, 1e-5)
    huge = Laplace(1e4)
    assert 0.0 < floor <= pld_epsilon([(Mechanism(huge, L2Ball(1.0), Poisson(0.01)), 100)], 1e-5).upper
    with pytest.raises(ValueError, match="PLD through the RDP profile gives at least"):
        calibrate(Laplace(1.0), L2Ball(1.0), Poisson(0.01), 100, target_epsilon=floor / 2, target_delta=1e-5)


def test_a_user_density_is_sound_at_every_shift_against_quadrature():
    """CustomNoise has no dominance proof in any geometry: its profile pair must cover every shift of Scalar(1)."""

    def logistic(x):
        x = np.abs(np.asarray(x, dtype=float))
        return -x - 2.0 * np.log1p(np.exp(-x))

    noise = CustomNoise(logistic, name="logistic")
    epsilon = compute_epsilon(noise, Scalar(1.0), Poisson(0.1), 1, 1e-4)
    x = np.linspace(-60.0, 61.0, 400001)
    width = x[1] - x[0]
    for shift in (0.25, 0.5, 1.0):
        f, shifted = noise.pdf(x), noise.pdf(x - shift)
        mixture = 0.9 * f + 0.1 * shifted
        for p, q in ((mixture, f), (f, mixture)):
            assert float(np.sum(np.maximum(p - math.exp(epsilon) * q, 0.0)) * width) <= 1e-4 * (1 + 1e-4), shift


def test_a_ceiling_stops_refinement_but_not_soundness():
    ledger = [(Mechanism(Laplace(2.0), L2Ball(1.0), Poisson(0.01)), 1000)]
    refined = pld_epsilon(ledger, 1e-5)
    stopped = pld_epsilon(ledger, 1e-5, ceiling=0.5 * refined.lower)
    assert stopped.upper >= refined.upper and stopped.lower > 0.5 * refined.lower
    accountant = Accountant(Laplace(2.0), L2Ball(1.0), Poisson(0.01)).step(1000)
    quick, full = accountant.report(1e-5), accountant.report(1e-5, all_methods=True)
    assert quick.method == full.method == "rdp" and quick.epsilon == full.epsilon  # RDP wins at T = 1000


def test_a_delta_query_replans_when_its_tail_budget_dominates_the_answer():
    """The saddle-point estimate of delta that sets the truncation budget can be far too large (here ~1e-2 for a
    true ~5e-10): the query is planned again until the mass sent to +inf is a small share of the answer."""
    ledger = [(Mechanism(LMO(**PAPER_03).scaled(0.1438), L2Ball(1.0), Poisson(6.458e-5)), 6)]
    epsilon = pld_epsilon(ledger, 4.5e-10).upper
    assert 4.5e-10 * 0.98 <= pld_delta(ledger, epsilon).upper <= 4.5e-10 * 1.02
