"""Renyi DP: docs/theory.md §6 vectors, closed forms vs quadrature, mpmath references, geometry and subsampling."""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest

from lmodp_core import (
    DEFAULT_ORDERS,
    LMO,
    CustomNoise,
    Gaussian,
    L1Ball,
    L2Ball,
    Laplace,
    OrderGridWarning,
    Poisson,
    Scalar,
    calibrate,
    compute_epsilon,
    delta_from_rdp,
    epsilon_from_rdp,
    step_rdp,
)
from lmodp_core.rdp import (
    binomial_rdp,
    renyi_poisson_mixture,
    renyi_shift,
    sampled_gaussian_rdp,
    unsampled_rdp,
    zhu_wang_rdp,
)
from lmodp_core.rdp.certified_sup import RELATIVE_TOLERANCE

from .conftest import PAPER_03


# ---- docs/theory.md §6 test vectors --------------------------------------------------------------------------
def test_sampled_gaussian_vectors():
    assert 10 * step_rdp(Gaussian(2.0), L2Ball(1.0), Poisson(0.1), [5.0])[0] == pytest.approx(0.07737, rel=1e-4)
    got = 50 * step_rdp(Gaussian(2.5), L2Ball(1.0), Poisson(0.01), [2.5, 5.0, 50.0, 100.0])
    np.testing.assert_allclose(got, [0.001085, 0.00218075, 0.023846, 167.416307], rtol=1e-6, atol=5e-7)
    frac = 50 * step_rdp(Gaussian(2.5), L2Ball(1.0), Poisson(0.01), [1.5])[0]
    assert frac == pytest.approx(0.000650, rel=1e-3)


def test_rdp_to_epsilon_vectors():
    orders = np.arange(2.0, 33.0)
    rdp = 1e4 * step_rdp(Gaussian(4.0), L2Ball(1.0), Poisson(0.01), orders)
    eps, order = epsilon_from_rdp(orders, rdp, 1e-5, conversion="classic")
    assert eps == pytest.approx(1.258575, rel=1e-4) and order == 20
    eps_improved, _ = epsilon_from_rdp(orders, rdp, 1e-5)
    assert eps_improved == pytest.approx(1.0355, rel=1e-4)


def test_fractional_and_integer_sampled_gaussian_agree_near_integers():
    rates = sampled_gaussian_rdp(0.02, 1.3, [3.0, 3.0 + 1e-9, 7.0, 7.0 - 1e-9])
    assert rates[0] == pytest.approx(rates[1], rel=1e-6)
    assert rates[2] == pytest.approx(rates[3], rel=1e-6)


# ---- closed forms and quadrature --------------------------------------------------------------------------
def _as_custom(noise):
    return CustomNoise(noise.logpdf, kinks=noise.kinks, typical_scale=noise.typical_scale, name=noise.family)


@pytest.mark.parametrize("noise", [Gaussian(1.3), Laplace(0.7)], ids=repr)
def test_quadrature_reproduces_closed_forms(noise):
    orders = np.array([1.1, 1.5, 2.0, 8.0, 64.0, 256.0, 1024.0])
    shifts = np.array([1e-4, 0.01, 0.3, 1.0, 4.0])
    exact = renyi_shift(noise, shifts, orders)
    numeric = renyi_shift(_as_custom(noise), shifts, orders)
    resolved = np.isfinite(numeric)
    np.testing.assert_allclose(numeric[resolved], exact[resolved], rtol=1e-10)
    # orders the quadrature cannot resolve are +inf (never too small), and only where the RDP is huge anyway
    assert np.all(exact[~resolved] > 20)


def _mp_lmo_density(noise):
    """f(z) = M_U'(-|z|)/2 evaluated independently with mpmath (numerical derivative of the MGF product)."""
    a1, a3, a4 = (mp.mpf(noise.a1), mp.mpf(noise.a3), mp.mpf(noise.a4))
    k, theta, rate = mp.mpf(noise.gamma_shape), mp.mpf(noise.gamma_scale), mp.mpf(noise.exp_rate)
    low, high = mp.mpf(noise.unif_low), mp.mpf(noise.unif_high)

    def mgf(v):
        out = mp.mpf(1)
        if a1:
            out *= (1 - theta * a1 * v) ** (-k)
        if a3:
            out *= rate / (rate - a3 * v)
        if a4:
            w = a4 * v
            out *= (mp.exp(w * high) - mp.exp(w * low)) / (w * (high - low)) if w != 0 else 1
        return out

    return lambda z: mp.diff(mgf, -abs(z)) / 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "params, shift, order",
    [
        (PAPER_03, 1.0, 2.0),
        (PAPER_03, 0.05, 8.0),
        (PAPER_03, 1.0, 32.5),
        (
            dict(a1=1.0, a3=0.0, a4=0.0, gamma_shape=0.5, gamma_scale=1.0, exp_rate=1.0, unif_low=0.0, unif_high=1.0),
            0.5,
            3.0,
        ),  # pure Gamma mixing: polynomial tails f ~ |z|^-1.5
        (
            dict(a1=0.0, a3=0.9, a4=0.7, gamma_shape=1.0, gamma_scale=7.5, exp_rate=1.0, unif_low=6.0, unif_high=7.0),
            1.0,
            6.0,
        ),
    ],
)
def test_lmo_renyi_against_mpmath(params, shift, order):
    noise = LMO(**params)
    mp.mp.dps = 30
    density = _mp_lmo_density(noise)
    s, a = mp.mpf(shift), mp.mpf(order)
    integral = mp.quad(lambda x: density(x - s) ** a * density(x) ** (1 - a), [-mp.inf, 0, s, mp.inf])
    reference = float(mp.log(integral) / (a - 1))
    assert renyi_shift(noise, [shift], [order])[0, 0] == pytest.approx(reference, rel=1e-8)


# ---- geometry (docs/theory.md §4.3) ---------------------------------------------------------------------------
def test_gaussian_l2_rdp_is_exact():
    orders = np.array([1.5, 2.0, 10.0, 100.0])
    for clip, sigma in [(1.0, 1.0), (0.3, 2.0), (4.0, 0.7)]:
        got = step_rdp(Gaussian(sigma), L2Ball(clip), None, orders)
        np.testing.assert_allclose(got, orders * clip**2 / (2 * sigma**2), rtol=1e-14)


def _mpmath_lmo_fisher_information(params: dict) -> float:
    """I_f = int_0^inf M_U''(-z)^2 / M_U'(-z) dz (f = M_U'(-|z|)/2 at scale 1), with M_U the closed-form MGF of
    U = a1 G + a3 E + a4 V differentiated by mpmath: independent of the code's log-MGF derivatives and score."""
    a1, a3, a4, k, theta, rate, low, high = (
        mp.mpf(params[key])
        for key in ("a1", "a3", "a4", "gamma_shape", "gamma_scale", "exp_rate", "unif_low", "unif_high")
    )

    def mgf(v):
        return (
            (1 - a1 * theta * v) ** -k
            / (1 - a3 * v / rate)
            * (mp.exp(a4 * v * high) - mp.exp(a4 * v * low))
            / (a4 * v * (high - low))
        )

    with mp.workdps(30):
        return float(mp.quad(lambda z: mp.diff(mgf, -z, 2) ** 2 / mp.diff(mgf, -z, 1), [0, 1, 10, mp.inf]))


GAMMA_LMO = dict(a1=1.0, a3=0.0, a4=0.0, gamma_shape=2.0, gamma_scale=1.0, exp_rate=1.0, unif_low=0.0, unif_high=1.0)


@pytest.mark.parametrize(
    "noise, reference",
    [
        # U = c G, G ~ Gamma(k, 1): f'(z)^2/f(z) integrates to I_f = k (k+1)^2 c^2 / (k+2) (= 4.5 at k = 2, c = 1)
        (LMO(**GAMMA_LMO), lambda: 4.5),
        (LMO(**PAPER_03), lambda: _mpmath_lmo_fisher_information(PAPER_03)),
        (CustomNoise(lambda x: -np.abs(x) - math.log(2.0), name="laplace"), lambda: 1.0),  # Laplace(1): I_f = 1/b^2
    ],
    ids=["lmo-gamma", "lmo-paper", "custom-laplace"],
)
def test_quadrature_divergence_of_small_shifts_tends_to_the_fisher_limit(noise, reference):
    """docs/theory.md §2 F3: r_a(s) / s^2 -> a I_f / 2 as s -> 0 (the d -> inf limit of L2 clipping), here from the
    shift quadrature, against I_f in closed form or from mpmath. A Laplace mixture has a kink at 0, so the gap
    closes like s (not s^2): 10x smaller shift, 10x smaller gap."""
    fisher = reference()
    orders = np.array([1.5, 2.0, 8.0])
    limit = 0.5 * orders * fisher
    gaps = [renyi_shift(noise, np.array([s]), orders)[0] / s**2 / limit - 1.0 for s in (1e-3, 1e-4)]
    assert np.all(np.abs(gaps[1]) < 2e-3)
    np.testing.assert_allclose(gaps[1], gaps[0] / 10.0, rtol=0.05)
    assert noise.fisher_information == pytest.approx(fisher, rel=1e-6)


def test_lmo_l2_per_step_is_finite_and_dominates_the_scalar_query(lmo_paper):
    orders = np.array([2.0, 6.0, 8.0])
    rdp = step_rdp(lmo_paper, L2Ball(1.0), Poisson(1.0), orders)
    full = step_rdp(lmo_paper, L2Ball(1.0), Poisson(1.0))
    assert np.all(full >= 0) and np.all(np.isfinite(full))
    scalar = step_rdp(lmo_paper, Scalar(1.0), Poisson(1.0), orders)
    assert np.all(rdp >= scalar)


@pytest.mark.parametrize("noise", [Laplace(0.8), LMO(**PAPER_03), LMO(**PAPER_03).scaled(0.2)], ids=repr)
def test_vector_geometries_dominate_the_scalar_query(noise):
    orders = np.array([1.5, 2.0, 5.0, 20.0, 128.0])
    scalar = step_rdp(noise, Scalar(1.0), None, orders)
    l1 = step_rdp(noise, L1Ball(1.0), None, orders)
    l2 = step_rdp(noise, L2Ball(1.0), None, orders)
    # the certified Scalar sup may exceed the true sup by RELATIVE_TOLERANCE, the numerical L1/L2 sups do not
    assert np.all(l1 >= scalar / (1 + RELATIVE_TOLERANCE)) and np.all(l2 >= scalar / (1 + RELATIVE_TOLERANCE))
    # a d-dimensional shift spread evenly never exceeds the L2 bound (additivity over coordinates)
    for dim in (1, 4, 100):
        spread = dim * renyi_shift(noise, [1.0 / math.sqrt(dim)], orders)[0]
        assert np.all(spread <= l2 * (1 + 1e-9))


def test_laplace_scalar_is_the_closed_form_at_the_sensitivity():
    orders = np.array([2.0, 10.0])
    np.testing.assert_allclose(
        step_rdp(Laplace(1.0), Scalar(1.0), None, orders), renyi_shift(Laplace(1.0), [1.0], orders)[0], rtol=2e-6
    )


# ---- subsampling (docs/theory.md §4.4) ------------------------------------------------------------------------
def test_scalar_mixture_directions_reduce_to_the_shift_at_full_rate():
    noise = LMO(**PAPER_03)
    orders = np.array([2.0, 5.0])
    remove, add = renyi_poisson_mixture(noise, 0.7, 1.0, orders)
    np.testing.assert_allclose(remove, renyi_shift(noise, [0.7], orders)[0], rtol=1e-10)
    np.testing.assert_allclose(add, remove, rtol=1e-8)  # symmetric density: D(f_s||f) = D(f||f_s)


def test_scalar_subsampled_gaussian_numeric_matches_exact():
    """Both directions by quadrature reproduce the exact sampled-Gaussian RDP (integer orders)."""
    gauss = Gaussian(1.2)
    custom = _as_custom(gauss)
    orders = np.array([2.0, 3.0, 8.0, 32.0])
    numeric = step_rdp(custom, Scalar(1.0), Poisson(0.05), orders)
    exact = sampled_gaussian_rdp(0.05, 1.2, orders)
    np.testing.assert_allclose(numeric, exact, rtol=1e-5)
    assert np.all(numeric >= exact)


def test_zhu_wang_bound_is_above_the_exact_sampled_gaussian():
    orders = np.array([2.0, 3.0, 10.0, 50.0])
    bound = zhu_wang_rdp(0.01, lambda ells: ells / (2 * 1.5**2), orders)
    exact = sampled_gaussian_rdp(0.01, 1.5, orders)
    assert np.all(bound >= exact * (1 - 1e-12))


@pytest.mark.parametrize("rate, sigma", [(0.01, 1.0), (0.01, 0.8), (0.1, 2.0), (0.001, 5.0), (0.5, 1.0)])
def test_binomial_bound_is_above_and_close_to_the_exact_sampled_gaussian(rate, sigma):
    orders = np.array([2.0, 3.0, 5.0, 10.0, 32.0, 64.0])
    bound = binomial_rdp(rate, lambda ells: ells / (2 * sigma**2), orders)
    exact = sampled_gaussian_rdp(rate, sigma, orders)
    assert np.all(bound >= exact * (1 - 1e-12))
    if rate <= 0.01:
        assert np.all(bound <= 1.1 * exact)  # exact to leading order in q; (1-q)^-(a+1) of the add direction


@pytest.mark.parametrize("noise", [LMO(**PAPER_03), Laplace(1.0), LMO(**PAPER_03, scale=0.2)], ids=repr)
def test_binomial_bound_holds_direction_by_direction_for_a_scalar_pair(noise):
    """Both directions of the proof, checked against quadrature of the actual 1-D mixtures (integer orders)."""
    orders = np.array([2.0, 3.0, 6.0, 12.0])
    for rate in (0.01, 0.2, 0.6):  # 0.6: the add direction's exact curvature is far below the Lagrange bound
        remove, add = renyi_poisson_mixture(noise, 1.0, rate, orders)
        bound = binomial_rdp(rate, lambda ells: renyi_shift(noise, [1.0], ells)[0], orders)
        assert np.all(np.maximum(remove, add) <= bound * (1 + 1e-9))


def test_vector_subsampled_bound_has_no_floor_and_respects_the_large_dimension_limit(lmo_paper):
    orders = np.array([2.0, 8.0, 32.0])
    quiet = step_rdp(lmo_paper.scaled(1e3), L2Ball(1.0), Poisson(0.01), orders)
    assert np.all(quiet < 1e-8)  # Zhu-Wang alone stays above 2 C(a,3) q^3/(a-1) however large the noise
    noise = lmo_paper.scaled(30.0)
    bound = step_rdp(noise, L2Ball(1.0), Poisson(0.01), orders)
    # d -> inf the step is a Gaussian with sigma = 1/sqrt(I_f): every sound bound must sit above it
    limit = sampled_gaussian_rdp(0.01, 1.0 / math.sqrt(noise.fisher_information), orders)
    assert np.all(bound >= limit * (1 - 1e-9))


def test_subsampling_helps_and_is_capped_by_the_unsampled_bound(lmo_paper):
    orders = np.array([2.0, 8.0, 64.0])
    for geometry in (Scalar(1.0), L1Ball(1.0), L2Ball(1.0)):
        full = step_rdp(lmo_paper, geometry, Poisson(1.0), orders)
        sub = step_rdp(lmo_paper, geometry, Poisson(0.01), orders)
        assert np.all(sub <= full) and np.all(sub >= 0)
        assert sub[0] < 0.01 * full[0]


def test_unsampled_rdp_is_convex_in_the_order_so_interpolation_is_an_upper_bound(lmo_paper):
    orders = np.arange(2.0, 40.0)
    log_moment = (orders - 1) * unsampled_rdp(lmo_paper, L2Ball(1.0), orders)
    assert np.all(np.diff(log_moment, 2) >= -1e-9 * log_moment[2:])


# ---- conversions ---------------------------------------------------------------------------------------------
def test_conversions_are_consistent_and_warn_at_the_grid_edge():
    orders = np.arange(2.0, 64.0)
    rdp = 1000 * step_rdp(Gaussian(0.8), L2Ball(1.0), Poisson(5e-3), orders)
    eps, order = epsilon_from_rdp(orders, rdp, 1e-6)
    delta, _ = delta_from_rdp(orders, rdp, eps)
    assert delta == pytest.approx(1e-6, rel=1e-3) and delta <= 1e-6 * (1 + 1e-9)
    with pytest.warns(OrderGridWarning):
        epsilon_from_rdp(orders[:3], rdp[:3], 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        epsilon_from_rdp(orders, rdp, 1e-6)
    assert epsilon_from_rdp([2.0], [math.inf], 1e-5)[0] == math.inf


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: step_rdp(Gaussian(1.0), L2Ball(1.0), Poisson(0.0)), "sample_rate"),
        (lambda: step_rdp(Gaussian(1.0), L2Ball(1.0), 1.5), "sample_rate"),
        (lambda: step_rdp(Gaussian(1.0), L2Ball(1.0), None, [0.5]), "orders"),
        (lambda: step_rdp(Gaussian(1.0), L2Ball(1.0), None, [float("nan")]), "orders"),
        (lambda: step_rdp("gaussian", L2Ball(1.0)), "noise"),
        (lambda: step_rdp(Gaussian(1.0), "l2"), "geometry"),
        (lambda: L2Ball(0.0), "clip"),
        (lambda: L1Ball(-1.0), "clip"),
        (lambda: Scalar(float("inf")), "sensitivity"),
        (lambda: epsilon_from_rdp([2.0], [1.0], 0.0), "delta"),
        (lambda: epsilon_from_rdp([2.0], [1.0], 1.0), "delta"),
        (lambda: epsilon_from_rdp([2.0], [1.0, 2.0], 0.1), "one value per order"),
        (lambda: epsilon_from_rdp([2.0], [-1.0], 0.1), ">= 0"),
        (lambda: epsilon_from_rdp([2.0], [1.0], 0.1, conversion="loose"), "conversion"),
        (lambda: delta_from_rdp([2.0], [1.0], 0.0), "epsilon"),
        (lambda: delta_from_rdp([2.0], [1.0], float("nan")), "epsilon"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- issue 12: edges of the conversions, extreme scales, bounded time, calibration ------------------------------
def test_an_all_infinite_curve_has_no_optimal_order():
    assert epsilon_from_rdp([2.0, 3.0], [math.inf, math.inf], 1e-5) == (math.inf, None)
    assert delta_from_rdp([2.0, 3.0], [math.inf, math.inf], 1.0) == (1.0, None)
    assert delta_from_rdp([2.0, 3.0], [math.inf, 1.0], 1e-320)[0] == 1.0  # log delta > 0: capped, no overflow


def test_order_grid_warning_only_when_more_orders_could_help():
    orders = np.array([2.0, 3.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a flat (pure-DP-like) curve: its optimum is the top order, but no order beyond it gains 0.1%
        epsilon_from_rdp(DEFAULT_ORDERS, np.full(DEFAULT_ORDERS.shape, 5.0), 1e-5)
    with pytest.warns(OrderGridWarning, match="orders beyond it could give a smaller epsilon"):
        epsilon_from_rdp(orders, 50.0 * orders, 1e-5)  # optimum at the bottom order; a(=1.5) would give ~96 < 110


def test_subsampled_bounds_do_not_overflow_for_small_laplace_noise():
    eps = compute_epsilon(Laplace(0.03), L2Ball(1.0), Poisson(0.01), 10, 1e-5, method="rdp")
    assert math.isfinite(eps) and eps > 0
    huge = binomial_rdp(0.01, lambda ells: np.full(np.shape(ells), 800.0), [2.0, 3.0])  # e^{eps(2)} > float max
    assert np.all(np.isfinite(huge)) and np.all(huge > 0)


def test_sampled_gaussian_at_extreme_multipliers_is_finite_or_inf_and_capped():
    orders = np.array([1.5, 2.5, 4.0])
    big = sampled_gaussian_rdp(0.5, 1e6, orders)  # the fractional series does not converge: next integer order
    assert np.all(big >= 0) and np.all(big <= orders / 2e12 * (1 + 1e-12))
    assert np.all(sampled_gaussian_rdp(0.01, 1e-200, orders) == math.inf)
    assert not np.any(np.isnan(sampled_gaussian_rdp(1e-12, 1e-153, [1.5, 64.0])))  # inf - inf in logsumexp
    rdp = step_rdp(Gaussian(1e-100), L2Ball(1e100), Poisson(0.01), orders)
    assert np.all(rdp == math.inf)


def test_tiny_lmo_noise_uses_the_lipschitz_bound_quickly(lmo_paper):
    """LMO at scale 1e-3 in L2 with T = 1000 took over a minute (quadrature mostly unresolved); now closed form."""
    orders = np.array([2.0, 8.0, 64.0])
    noise = lmo_paper.scaled(1e-3)
    unsampled = step_rdp(noise, L2Ball(1.0), None, orders)
    np.testing.assert_allclose(unsampled, 0.5 * orders * noise.log_density_lipschitz**2)  # Bun-Steinke zCDP
    assert np.all(unsampled >= 0.5 * orders * noise.fisher_information)  # never below the d -> inf limit
    sampled = step_rdp(noise, L2Ball(1.0), Poisson(0.01), orders)
    assert np.all(np.isfinite(sampled)) and np.all(sampled <= unsampled)
    scalar = step_rdp(noise, Scalar(1.0), Poisson(0.01), orders)
    assert np.all(scalar <= noise.log_density_lipschitz)  # pure DP: r_a(s) <= L s
    assert np.all(np.isfinite(step_rdp(lmo_paper.scaled(1e-100), L2Ball(1.0), None, orders)))
    custom = CustomNoise(lambda t: -np.abs(t) - math.log(2.0), scale=1e-9)  # Lipschitz constant not known
    assert np.all(step_rdp(custom, L1Ball(1.0), None, orders) == math.inf)


@pytest.mark.parametrize(
    "noise, match",
    [(None, "noise must be"), ("g", "noise must be"), (1.0, r"Gaussian\(s\)"), (L2Ball(1.0), "noise must be")],
)
def test_calibrate_refuses_what_is_not_a_noise(noise, match):
    with pytest.raises(ValueError, match=match):
        calibrate(noise, L2Ball(1.0), Poisson(0.01), 10, target_epsilon=1.0, target_delta=1e-5)


def test_calibrate_needs_a_geometry_and_refuses_targets_below_the_rdp_floor(lmo_paper):
    with pytest.raises(ValueError, match="geometry is required"):
        calibrate(Gaussian(1.0), None, Poisson(0.01), 10, target_epsilon=1.0, target_delta=1e-5)
    floor, _ = epsilon_from_rdp(DEFAULT_ORDERS, np.zeros(DEFAULT_ORDERS.shape), 1e-5, warn=False)
    for noise, method in [(Gaussian(1.0), "rdp"), (lmo_paper, "auto")]:
        with pytest.raises(ValueError, match=f"even zero Renyi divergence gives epsilon {floor:.6g}"):
            calibrate(noise, L2Ball(1.0), Poisson(0.01), 1000, target_epsilon=1e-9, target_delta=1e-5, method=method)


def test_calibrate_from_extreme_starting_scales():
    for start in (1e-100, 1e100):
        noise = calibrate(
            Gaussian(start), L2Ball(1.0), Poisson(0.01), 10, target_epsilon=1.0, target_delta=1e-5, method="rdp"
        ).noise
        assert compute_epsilon(noise, L2Ball(1.0), Poisson(0.01), 10, 1e-5, method="rdp") <= 1.0
    with pytest.raises(ValueError, match="supported noise scales"):
        calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 10, target_epsilon=1e300, target_delta=1e-5, method="rdp")


def test_sampled_gaussian_keeps_rdp_far_below_rounding_for_huge_step_counts():
    """A_a - 1 ~ 1e-18 used to round to 0, so T = 1e18 steps of sigma = 1e7 reported no privacy loss at all."""
    rdp = sampled_gaussian_rdp(0.01, 1e7, [2.0, 1.5, 3.0])
    exact_2 = math.log1p(1e-4 * math.expm1(1e-14))  # log A_2 = log(1 + q^2 (e^{1/sigma^2} - 1))
    assert rdp[0] == pytest.approx(exact_2, rel=1e-9)
    assert rdp[1] >= 0.5 * exact_2  # about a q^2/(2 sigma^2) at a = 1.5, bounded by the chord through a = 1, 2
    eps = compute_epsilon(Gaussian(1e7), L2Ball(1.0), Poisson(0.01), 10**18, 1e-5, method="rdp")
    assert eps > 1.0  # 1e18 * rho(a) is of order 1: far from the conversion's floor of 0.0035
