"""PLD accounting (docs/theory.md §4.5) against the §6 vectors, closed forms, brute force and dp_accounting."""

import math

import numpy as np
import pytest
from scipy import integrate, special

from lmodp_core import LMO, CustomNoise, Gaussian, L1Ball, L2Ball, Laplace, PiecewiseNoise, Poisson, Scalar
from lmodp_core.accountant import Accountant
from lmodp_core.estimates import asymptotic_epsilon
from lmodp_core.mechanism import Mechanism
from lmodp_core.pld import pld_delta, pld_epsilon, shift_dominates, supports
from lmodp_core.pld.pmf import LossPMF, convolve
from lmodp_core.rdp import epsilon_from_rdp, sampled_gaussian_rdp

from .conftest import PAPER_03


def dp_sgd(sigma, sample_rate, steps, clip=1.0):
    return [(Mechanism(Gaussian(sigma), L2Ball(clip), Poisson(sample_rate)), steps)]


def gaussian_delta(epsilon, sigma):
    """Balle-Wang 2018: delta(eps) of N(1, sigma^2) vs N(0, sigma^2)."""
    return special.ndtr(0.5 / sigma - epsilon * sigma) - math.exp(epsilon) * special.ndtr(
        -0.5 / sigma - epsilon * sigma
    )


# ---- §6 vectors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "epsilon, sigma, sample_rate, steps, expected",
    [
        (1.0, 2.0, 0.01, 10**4, 0.0102249),
        (0.8, 2.0, 0.01, 10**4, 0.0228503),
        (1.0, 1.0, 0.01, 10**4, 0.239176),
        (1.0, 2.0, 0.02, 10**4, 0.149917),
        (1.0, 2.0, 0.01, 10**5, 0.392057),
    ],
)
def test_delta_vectors(epsilon, sigma, sample_rate, steps, expected):
    upper, lower = pld_delta(dp_sgd(sigma, sample_rate, steps), epsilon)
    assert upper == pytest.approx(expected, rel=1e-3)
    assert lower <= expected * (1 + 1e-5) <= upper * (1 + 1e-3)  # the vector lies in the stated interval


def test_dp_sgd_epsilon_vector():
    upper, lower = pld_epsilon(dp_sgd(0.8, 5e-3, 1000), 1e-6)
    assert 1.99 <= upper <= 2.03
    assert lower <= upper


def test_tight_pld_vector_beats_rdp():
    upper, _ = pld_epsilon(dp_sgd(4.0, 0.01, 10**4), 1e-5)
    assert upper == pytest.approx(0.947, rel=2e-3)
    orders = np.arange(2.0, 64.0)
    rdp_eps, _ = epsilon_from_rdp(orders, 10**4 * sampled_gaussian_rdp(0.01, 4.0, orders), 1e-5)
    assert upper < rdp_eps


@pytest.mark.parametrize("epsilon", [1e-9, 0.25, 0.5, 0.9])
def test_laplace_one_step_closed_form(epsilon):
    upper, lower = pld_delta([(Mechanism(Laplace(1.0), Scalar(1.0)), 1)], epsilon)
    exact = 1.0 - math.exp((epsilon - 1.0) / 2.0)  # docs/theory.md §6, D = sensitivity / scale = 1
    assert abs(upper - exact) < 1e-4
    assert upper >= exact * (1 - 1e-9) and lower <= exact


@pytest.mark.parametrize("sigma, steps, epsilon", [(1.0, 1, 0.5), (3.0, 10, 1.0), (8.0, 100, 2.0)])
def test_unsampled_gaussian_composition_is_analytic(sigma, steps, epsilon):
    upper, lower = pld_delta(dp_sgd(sigma, 1.0, steps), epsilon)
    exact = gaussian_delta(epsilon, sigma / math.sqrt(steps))  # T steps = one step with sigma / sqrt(T)
    assert upper == pytest.approx(exact, rel=1e-3)
    assert lower <= exact <= upper * (1 + 1e-9)


# ---- where peers fail ------------------------------------------------------------------------------------
def test_large_epsilon_is_finite_and_tight():
    upper, lower = pld_epsilon(dp_sgd(0.6, 0.1, 1000), 1e-5)
    assert math.isfinite(upper) and upper == pytest.approx(78.65, rel=1e-3)
    assert lower <= 78.65 <= upper * (1 + 1e-4)


def test_tiny_delta_is_finite_and_conservative():
    ledger = dp_sgd(1.0, 1e-3, 10**4)
    results = [pld_epsilon(ledger, delta) for delta in (1e-10, 1e-14, 1e-18)]
    uppers = [r[0] for r in results]
    assert all(math.isfinite(upper) and not math.isnan(lower) for upper, lower in results)
    assert uppers[0] < uppers[1] < uppers[2]
    orders = np.concatenate([np.arange(2.0, 64.0), np.arange(64.0, 1025.0, 16.0)])
    rdp_eps, _ = epsilon_from_rdp(orders, 10**4 * sampled_gaussian_rdp(1e-3, 1.0, orders), 1e-18)
    assert uppers[2] < rdp_eps  # tighter than RDP, still above the lower end
    assert results[2][1] <= uppers[2]


def test_ten_million_steps():
    upper, lower = pld_epsilon(dp_sgd(4.0, 1e-4, 10**7), 1e-8)
    assert math.isfinite(upper) and 0 < lower <= upper
    orders = np.arange(2.0, 256.0)
    rdp_eps, _ = epsilon_from_rdp(orders, 10**7 * sampled_gaussian_rdp(1e-4, 4.0, orders), 1e-8)
    assert upper < rdp_eps


# ---- dominating pairs and supports -----------------------------------------------------------------------
def test_supports():
    lmo = LMO(**PAPER_03)
    assert supports(Mechanism(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)))
    assert supports(Mechanism(Gaussian(1.0), L1Ball(2.0)))
    assert supports(Mechanism(Laplace(1.0), Scalar(1.0), Poisson(0.1)))
    assert supports(Mechanism(lmo, Scalar(1.0), Poisson(0.1)))
    assert supports(Mechanism(lmo, L2Ball(1.0), Poisson(0.1)))  # a profile pair
    assert not shift_dominates(Mechanism(lmo, L2Ball(1.0), Poisson(0.1)))
    assert shift_dominates(Mechanism(Laplace(1.0), L1Ball(1.0)))  # tests/test_l1_laplace.py
    assert not shift_dominates(Mechanism(Laplace(1.0), L2Ball(1.0)))
    assert not supports(Mechanism(PiecewiseNoise.staircase(1.0), L2Ball(1.0)))  # jumps: no finite RDP


def test_shift_non_monotone_density_is_not_supported():
    # two narrow bumps at +-2: a shift of 1 separates them, a shift of 4 lays one bump onto the other
    def bimodal(x):
        x = np.asarray(x, dtype=float)
        width = 0.3
        log_bump = -0.5 * ((np.abs(x) - 2.0) / width) ** 2 - math.log(width * math.sqrt(2 * math.pi))
        far = -0.5 * ((np.abs(x) + 2.0) / width) ** 2 - math.log(width * math.sqrt(2 * math.pi))
        return np.logaddexp(log_bump, far) - math.log(2.0)

    noise = CustomNoise(bimodal, kinks=(0.0,), typical_scale=2.0, name="bimodal")
    mechanism = Mechanism(noise, Scalar(4.0))
    assert not shift_dominates(mechanism)  # a profile pair instead: tests/test_profile_pld.py


# ---- non-monotone privacy loss vs brute force -------------------------------------------------------------
def _brute_force_delta(noise, shift, sample_rate, epsilon):
    """int (p - e^eps q)_+ for both directions by adaptive quadrature between the sign changes."""

    def densities(x):
        f, shifted = noise.pdf(x), noise.pdf(x - shift)
        mixture = (1 - sample_rate) * f + sample_rate * shifted
        return {"remove": (mixture, f), "add": (f, mixture)}

    grid = np.linspace(-60.0, 60.0 + shift, 400001)
    best = 0.0
    for direction in ("remove", "add"):
        p, q = densities(grid)[direction]
        sign = np.sign(p - math.exp(epsilon) * q)
        crossings = grid[1:][np.diff(sign) != 0]
        points = np.concatenate([[-np.inf], crossings, [np.inf]])

        def integrand(x):
            p_x, q_x = densities(np.array([x]))[direction]
            return float(p_x[0] - math.exp(epsilon) * q_x[0])

        total = 0.0
        for a, b in zip(points[:-1], points[1:]):
            mid = 0.5 * (a + b) if np.isfinite(a) and np.isfinite(b) else (b - 1.0 if np.isfinite(b) else a + 1.0)
            if integrand(mid) > 0:
                total += integrate.quad(integrand, a, b, epsabs=1e-13, epsrel=1e-11, limit=400)[0]
        best = max(best, total)
    return best


@pytest.mark.parametrize("sample_rate, epsilon", [(1.0, 0.1), (1.0, 0.3), (0.5, 0.05)])
def test_lmo_non_monotone_loss_against_brute_force(sample_rate, epsilon):
    lmo = LMO(**PAPER_03)
    x = np.linspace(-30.0, 30.0, 20001)
    loss = lmo.logpdf(x - 1.0) - lmo.logpdf(x)
    slope_signs = np.sign(np.diff(loss))
    assert np.any(slope_signs > 0) and np.any(slope_signs < 0)  # the loss is not monotone in x
    upper, lower = pld_delta([(Mechanism(lmo, Scalar(1.0), Poisson(sample_rate)), 1)], epsilon)
    exact = _brute_force_delta(lmo, 1.0, sample_rate, epsilon)
    assert upper == pytest.approx(exact, rel=1e-4, abs=1e-9)
    assert upper >= exact * (1 - 1e-7)
    assert lower <= exact


def test_lmo_composition_sits_between_rdp_and_lower_end():
    lmo = LMO(**PAPER_03).scaled(3.0)
    accountant = Accountant(lmo, Scalar(1.0), Poisson(0.1), method="auto").step(100)
    report = accountant.report(1e-5, all_methods=True)
    assert report.method == "pld" and report.pld_epsilon < report.rdp_epsilon
    assert report.epsilon_lower <= report.pld_epsilon
    fast = accountant.report(1e-5)  # the RDP answer cannot win here: not computed, same guarantee
    assert fast.rdp_epsilon is None and fast.rdp_skipped.startswith("a lower bound on the RDP answer")
    assert fast.epsilon == report.epsilon


# ---- heterogeneous ledgers and the accountant -------------------------------------------------------------
def test_split_runs_equal_one_run():
    mechanism = Mechanism(Gaussian(1.0), L2Ball(1.0), Poisson(0.01))
    whole, _ = pld_epsilon([(mechanism, 1000)], 1e-5)
    split, _ = pld_epsilon([(mechanism, 600), (mechanism, 400)], 1e-5)
    assert split == pytest.approx(whole, rel=5e-4)


def test_heterogeneous_phases():
    first = Mechanism(Gaussian(1.0), L2Ball(1.0), Poisson(0.01))
    second = Mechanism(Gaussian(2.0), L2Ball(1.0), Poisson(0.02))
    both, lower = pld_epsilon([(first, 500), (second, 700)], 1e-5)
    reversed_order, _ = pld_epsilon([(second, 700), (first, 500)], 1e-5)
    alone = [pld_epsilon([run], 1e-5)[0] for run in ((first, 500), (second, 700))]
    assert both == pytest.approx(reversed_order, rel=5e-4)
    assert max(alone) < both < sum(alone)
    assert lower <= both


def test_accountant_uses_pld():
    accountant = Accountant(Gaussian(0.8), L2Ball(1.0), Poisson(5e-3), method="pld").step(1000)
    assert accountant.get_epsilon(1e-6) == pld_epsilon(dp_sgd(0.8, 5e-3, 1000), 1e-6)[0]
    assert accountant.get_delta(2.0) == pld_delta(dp_sgd(0.8, 5e-3, 1000), 2.0)[0]


def test_epsilon_and_delta_are_consistent():
    ledger = dp_sgd(1.0, 0.01, 2000)
    epsilon, _ = pld_epsilon(ledger, 1e-5)
    delta, _ = pld_delta(ledger, epsilon)
    assert delta == pytest.approx(1e-5, rel=1e-2)


# ---- the d -> inf estimate --------------------------------------------------------------------------------
def test_asymptotic_epsilon_of_gaussian_is_its_pld():
    estimate = asymptotic_epsilon(Gaussian(1.3), 0.01, 500, 1e-5, clip=2.0)
    assert estimate == pytest.approx(pld_epsilon(dp_sgd(1.3, 0.01, 500, clip=2.0), 1e-5)[0], rel=1e-9)


def test_asymptotic_epsilon_of_lmo_is_below_the_sound_vector_bound():
    lmo = LMO(**PAPER_03).scaled(3.0)
    estimate = asymptotic_epsilon(lmo, 0.01, 200, 1e-5)
    sound = Accountant(lmo, L2Ball(1.0), Poisson(0.01), method="rdp").step(200).get_epsilon(1e-5)
    assert 0 < estimate < sound


# ---- round-off bound --------------------------------------------------------------------------------------
def test_fft_roundoff_bound_covers_the_error(rng):
    a = np.exp(-0.5 * ((np.arange(3000) - 1500) / 200.0) ** 2) * rng.uniform(0.5, 1.0, 3000)
    b = np.exp(-np.arange(2000) / 50.0)
    pmf_a = LossPMF(0.01, 0, a / a.max(), 0.0, 1.0, 0.0)
    pmf_b = LossPMF(0.01, 0, b / b.max(), 0.0, 1.0, 0.0)
    product = convolve(pmf_a, pmf_b)
    exact = np.convolve(pmf_a.values.astype(np.longdouble), pmf_b.values.astype(np.longdouble))
    error = np.max(np.abs(product.values * math.exp(product.log_scale) - exact.astype(float)))
    assert error <= product.roundoff * math.exp(product.log_scale)


# ---- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-5, float("nan"), 2.0])
def test_bad_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        pld_epsilon(dp_sgd(1.0, 0.01, 10), delta)


@pytest.mark.parametrize("epsilon", [-1.0, float("nan"), float("inf")])
def test_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        pld_delta(dp_sgd(1.0, 0.01, 10), epsilon)


def test_bad_ledger():
    mechanism = Mechanism(Gaussian(1.0))
    with pytest.raises(ValueError, match="count"):
        pld_epsilon([(mechanism, 0)], 1e-5)
    with pytest.raises(ValueError, match="ledger"):
        pld_epsilon([], 1e-5)
    with pytest.raises(ValueError, match="ledger"):
        pld_epsilon([mechanism], 1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(sample_rate=0.0), "sample_rate"),
        (dict(sample_rate=1.5), "sample_rate"),
        (dict(steps=0), "steps"),
        (dict(delta=1.0), "delta"),
        (dict(clip=-1.0), "clip"),
        (dict(steps=2.5), "steps"),
    ],
)
def test_asymptotic_epsilon_bad_input(kwargs, name):
    arguments = dict(noise=Gaussian(1.0), sample_rate=0.01, steps=10, delta=1e-5, clip=1.0) | kwargs
    with pytest.raises(ValueError, match=name):
        asymptotic_epsilon(**arguments)


# ---- cross-check with dp_accounting (bench extra) ---------------------------------------------------------
def test_agrees_with_dp_accounting_on_random_dp_sgd_settings():
    pld_lib = pytest.importorskip("dp_accounting.pld.privacy_loss_distribution")
    rng = np.random.default_rng(20261130)
    for _ in range(20):
        sigma, sample_rate = float(rng.uniform(0.7, 3.0)), float(10 ** rng.uniform(-3.0, -1.3))
        steps, delta = int(10 ** rng.uniform(2.0, 3.3)), float(10 ** rng.uniform(-7.0, -4.0))
        theirs = (
            pld_lib.from_gaussian_mechanism(
                sigma,
                sampling_prob=sample_rate,
                value_discretization_interval=1e-4,
                use_connect_dots=True,
            )
            .self_compose(steps)
            .get_epsilon_for_delta(delta)
        )
        ours, lower = pld_epsilon(dp_sgd(sigma, sample_rate, steps), delta)
        assert ours == pytest.approx(theirs, rel=5e-3), (sigma, sample_rate, steps, delta)
        assert lower <= theirs * (1 + 1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.25, 0.05, 0.015625])
def test_laplace_epsilon_closed_form(scale):
    """Bounded loss: the saddle-point tilt is huge; eps(delta) = D + 2 log(1 - delta), D = 1/scale."""
    upper, lower = pld_epsilon([(Mechanism(Laplace(scale), Scalar(1.0)), 1)], 1e-5)
    exact = 1.0 / scale + 2.0 * math.log1p(-1e-5)
    assert exact * (1 - 1e-9) <= upper <= exact * (1 + 1e-6)
    assert lower <= exact


@pytest.mark.parametrize(
    "mechanism, steps",
    [
        (Mechanism(Laplace(0.5), Scalar(1.0), Poisson(0.2)), 30),
        (Mechanism(LMO(**PAPER_03).scaled(2.0), Scalar(1.0), Poisson(0.5)), 5),
        (Mechanism(Gaussian(0.9), L2Ball(1.0), Poisson(0.05)), 300),
    ],
)
def test_epsilon_and_delta_invert_each_other(mechanism, steps):
    for delta in (1e-3, 1e-6, 1e-9):
        epsilon, _ = pld_epsilon([(mechanism, steps)], delta)
        assert pld_delta([(mechanism, steps)], epsilon)[0] <= delta * (1 + 1e-2)
        assert pld_delta([(mechanism, steps)], epsilon * 0.97)[0] > delta


def test_delta_decreases_to_zero_beyond_the_largest_loss():
    gaussian = dp_sgd(1.0, 0.01, 1000)
    deltas = [pld_delta(gaussian, epsilon)[0] for epsilon in (1.0, 5.0, 10.0, 20.0, 50.0, 500.0)]
    assert all(a > b for a, b in zip(deltas, deltas[1:])) and deltas[-1] < 1e-300
    laplace = [(Mechanism(Laplace(1.0), Scalar(1.0)), 1)]
    assert pld_delta(laplace, 1.5)[0] < 1e-40  # the loss never exceeds D/b = 1


@pytest.mark.parametrize("scale", [1e-100, 1e-50, 1e-8])  # 1e-100 is the smallest supported scale
@pytest.mark.parametrize("rate", [1.0, 0.01])
def test_extreme_laplace_scales_are_outside_the_pld_limits(scale, rate):
    from lmodp_core.pld import PLDLimitError

    with pytest.raises(PLDLimitError, match="noise scale"):
        pld_epsilon([(Mechanism(Laplace(scale), Scalar(1.0), Poisson(rate)), 3)], 1e-5)


# ---- accuracy control (rtol): small epsilon, tiny delta, delta in the tail ------------------------------------
def test_small_epsilon_dp_sgd_within_a_thousandth_of_dp_accounting():
    """sigma=2.294, q=1.83e-4, T=19, delta=1.31e-11: epsilon ~ 0.00259 (0.003423 before the refinement, +32%)."""
    from dp_accounting.pld import privacy_loss_distribution

    sigma, rate, steps, delta = 2.294, 1.83e-4, 19, 1.31e-11
    bounds = [
        privacy_loss_distribution.from_gaussian_mechanism(
            sigma,
            value_discretization_interval=2e-6,
            sampling_prob=rate,
            use_connect_dots=pessimistic,
            pessimistic_estimate=pessimistic,
        )
        .self_compose(steps)
        .get_epsilon_for_delta(delta)
        for pessimistic in (True, False)
    ]
    upper, lower = pld_epsilon(dp_sgd(sigma, rate, steps), delta)
    assert bounds[1] <= upper <= bounds[0] * (1 + 1e-3)  # above dp_accounting's optimistic, near its pessimistic
    assert lower <= upper


def _exact_one_step_delta(noise, sample_rate, epsilon, shift=1.0):
    """max over directions of int (p - e^eps q)_+ dx by adaptive quadrature (relative 1e-8) between the sign
    changes of p - e^eps q and the kinks of p and q."""
    far = np.geomspace(60.0, 1e4, 2000)
    grid = np.unique(np.concatenate([-far[::-1], np.linspace(-60.0, 60.0 + shift, 200001), far + shift]))
    kinks = np.array(sorted({*noise.kinks, *(k + shift for k in noise.kinks)}))

    def log_pair(x, direction):
        log_f, log_shifted = noise.logpdf(x), noise.logpdf(x - shift)
        if sample_rate < 1.0:
            log_shifted = np.logaddexp(math.log1p(-sample_rate) + log_f, math.log(sample_rate) + log_shifted)
        return (log_shifted, log_f) if direction == "remove" else (log_f, log_shifted)

    best = 0.0
    for direction in ("remove", "add"):

        def integrand(x, direction=direction):
            log_p, log_q = log_pair(np.array([x]), direction)
            return float(np.exp(log_p[0]) * -math.expm1(min(epsilon + log_q[0] - log_p[0], 0.0)))

        log_p, log_q = log_pair(grid, direction)
        changes = np.flatnonzero(np.diff((log_p - log_q > epsilon).astype(int)))
        edges = np.unique(np.concatenate([[-np.inf], grid[changes], grid[changes + 1], kinks, [np.inf]]))
        best = max(
            best,
            sum(
                integrate.quad(integrand, a, b, epsabs=0.0, epsrel=1e-8, limit=500)[0]
                for a, b in zip(edges[:-1], edges[1:])
            ),
        )
    return best


@pytest.mark.parametrize("noise", [LMO(**PAPER_03), Laplace(1.0)], ids=["lmo", "laplace"])
@pytest.mark.parametrize("sample_rate", [1.0, 0.5])
def test_one_step_delta_in_the_tail_against_quadrature(noise, sample_rate):
    """delta(eps) within 1% of exact quadrature wherever delta >= 1e-15, up to the largest loss (where a delta
    query was 80x the truth before the grid was anchored at the queried epsilon)."""
    ledger = [(Mechanism(noise, Scalar(1.0), Poisson(sample_rate)), 1)]
    top = pld_epsilon(ledger, 1e-14).upper
    for fraction in (0.3, 0.9, 0.999, 0.99999):
        exact = _exact_one_step_delta(noise, sample_rate, top * fraction)
        upper = pld_delta(ledger, top * fraction).upper
        assert exact >= 1e-15
        assert exact * (1 - 1e-7) <= upper <= exact * 1.01


def test_rtol_is_exposed_and_checked():
    ledger = dp_sgd(1.0, 0.01, 100)
    coarse, fine = pld_epsilon(ledger, 1e-5, rtol=0.05), pld_epsilon(ledger, 1e-5, rtol=1e-4)
    assert fine.upper <= coarse.upper and fine.lower <= fine.upper
    assert Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), pld_rtol=1e-4).step(100).report(
        1e-5
    ).epsilon == pytest.approx(fine.upper, rel=1e-12)
    for bad in (0.0, -1e-3, 2.0, math.nan, "0.01"):
        with pytest.raises(ValueError, match="rtol"):
            pld_delta(ledger, 1.0, rtol=bad)
        with pytest.raises(ValueError, match="rtol"):
            Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), pld_rtol=bad)


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_lmo_hockey_stick_is_non_decreasing_in_the_shift(scale):
    """The lemma behind LMO's scalar PLD (docs/accounting.md, "Shift dominance for Laplace scale mixtures"),
    checked by direct integration: delta_s(eps) on a fine grid of shifts never decreases, at negative and
    positive eps (up to the mass the finite window cuts off), and the pair is registered as proven."""
    noise = LMO(**PAPER_03).scaled(scale)
    step = 2e-3
    x = np.arange(-80.0, 80.0, step)
    density = noise.pdf(x)
    cut_off = abs(1.0 - float(np.sum(density)) * step) + 1e-12  # heavy tails beyond the window, rounding
    shifts = np.arange(5, 1001, 25)  # in grid steps: s from 0.01 to 2
    for epsilon in (-0.5, 0.0, 0.1, 0.3):
        curve = np.array(
            [np.sum(np.maximum(density[:-k] - math.exp(epsilon) * density[k:], 0.0)) * step for k in shifts]
        )
        assert curve[-1] > 1e-3, epsilon  # a non-trivial curve
        assert np.all(np.diff(curve) >= -(1e-9 * curve[1:] + cut_off)), epsilon
    assert shift_dominates(Mechanism(noise, Scalar(1.0), Poisson(0.01)))
    assert not shift_dominates(Mechanism(noise, L1Ball(1.0), Poisson(0.01)))


def test_epsilon_query_of_a_bounded_loss_does_not_stall_at_the_steepest_tilt():
    """Laplace(5), q = 0.01, T = 10: the add direction's loss is bounded just above the answer, so its saddle-point
    tilt is the steepest allowed and its FFT round-off allowance swamped delta; flatter tilts are tried too.
    Reference: dp_accounting PLD, interval 2e-5, pessimistic 0.0154828 (optimistic 0.0153731)."""
    ledger = [(Mechanism(Laplace(5.0), Scalar(1.0), Poisson(0.01)), 10)]
    upper = pld_epsilon(ledger, 1e-5).upper
    assert 0.0153731 <= upper <= 0.0154828 * 1.001
    assert pld_delta(ledger, upper).upper <= 1e-5 * (1 + 1e-3)
