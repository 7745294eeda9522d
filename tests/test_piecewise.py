"""PiecewiseNoise: histogram densities with exact divergences and privacy-loss distributions."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmodp_core import (
    DEFAULT_ORDERS,
    Accountant,
    L1Ball,
    L2Ball,
    Mechanism,
    Noise,
    PiecewiseNoise,
    Poisson,
    Scalar,
    calibrate,
    pld_epsilon,
)
from lmodp_core.pld import shift_dominates, supports
from lmodp_core.rdp import renyi_poisson_mixture, renyi_shift
from lmodp_core.rdp.divergence import _numeric_renyi, split_points

SMALL = PiecewiseNoise.normalised(0.5, [3.0, 2.0, 1.0], tail_ratio=0.6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(bin_width=0.0, values=[1.0]), "bin_width"),
        (dict(bin_width=-1.0, values=[1.0]), "bin_width"),
        (dict(bin_width=math.nan, values=[1.0]), "bin_width"),
        (dict(bin_width=1.0, values=[]), "values"),
        (dict(bin_width=1.0, values=[0.5, -0.1]), "values"),
        (dict(bin_width=1.0, values=[0.5, math.inf]), "values"),
        (dict(bin_width=1.0, values=[0.5, math.nan]), "values"),
        (dict(bin_width=1.0, values="abc"), "values"),
        (dict(bin_width=1.0, values=[0.5], tail_ratio=1.0), "tail_ratio"),
        (dict(bin_width=1.0, values=[0.5], tail_ratio=0.0), "tail_ratio"),
        (dict(bin_width=1.0, values=[0.5], tail_ratio=math.inf), "tail_ratio"),
        (dict(bin_width=1.0, values=[0.5], scale=0.0), "scale"),
        (dict(bin_width=1.0, values=[0.3, 0.2]), "integrate to 1.*0.7"),
    ],
)
def test_bad_input_raises_a_value_error_naming_it(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PiecewiseNoise(kwargs.pop("bin_width"), kwargs.pop("values"), **kwargs)


def test_density_moments_sf_and_round_trip():
    x = np.linspace(-30.0, 30.0, 600001)
    density = SMALL.pdf(x)
    assert np.trapezoid(density, x) == pytest.approx(1.0, abs=1e-4)
    assert SMALL.variance == pytest.approx(np.trapezoid(x * x * density, x), rel=1e-3)
    assert SMALL.mean_abs == pytest.approx(np.trapezoid(np.abs(x) * density, x), rel=1e-3)
    for t in (0.0, 0.1, 0.3, 1.1, 2.7):
        assert float(SMALL.sf(t)) == pytest.approx(np.trapezoid(density[x > t], x[x > t]), abs=1e-4)
    assert float(SMALL.sf(-0.3)) == pytest.approx(1.0 - float(SMALL.sf(0.3)))
    assert SMALL.fisher_information == math.inf
    assert Noise.from_dict(SMALL.scaled(2.0).to_dict()) == SMALL.scaled(2.0)
    assert SMALL.scaled(2.0).variance == pytest.approx(4.0 * SMALL.variance)


def test_sampler_matches_the_moments():
    draws = SMALL.sample(np.random.default_rng(0), 400_000)
    assert draws.var() == pytest.approx(SMALL.variance, rel=0.02)
    assert np.mean(np.abs(draws)) == pytest.approx(SMALL.mean_abs, rel=0.02)
    assert abs(draws.mean()) < 0.01


def _mpmath_renyi(noise, shift, order):
    """int f(x - s)^a f(x)^{1-a} dx by mpmath quadrature between merged breakpoints, tails summed to 1e-40."""
    mpmath.mp.dps = 30
    w = noise.bin_width * noise.scale
    edges = sorted({(i + 0.5) * w * sign + offset for i in range(200) for sign in (1, -1) for offset in (0.0, shift)})
    f = lambda x: mpmath.e ** mpmath.mpf(float(noise.logpdf(float(x))))  # noqa: E731
    total = mpmath.mpf(0)
    for a, b in zip(edges[:-1], edges[1:]):
        m = (a + b) / 2
        if float(noise.logpdf(m)) == -math.inf:
            continue
        total += (b - a) * f(m - shift) ** order * f(m) ** (1 - order)
    return float(mpmath.log(total) / (order - 1))


def test_exact_divergence_matches_an_mpmath_hand_sum():
    for shift in (0.37, 1.0, 1.61):
        exact = renyi_shift(SMALL, [shift], [2.0, 5.5])[0]
        for value, order in zip(exact, (2.0, 5.5)):
            assert value == pytest.approx(_mpmath_renyi(SMALL, shift, order), rel=1e-10)


@settings(max_examples=15, deadline=None)
@given(
    values=st.lists(st.floats(0.05, 5.0), min_size=1, max_size=5),
    width=st.floats(0.2, 2.0),
    tail=st.one_of(st.none(), st.floats(0.2, 0.8)),
    shift=st.floats(0.01, 3.0),
)
def test_exact_divergence_equals_quadrature_of_the_same_density(values, width, tail, shift):
    noise = PiecewiseNoise.normalised(width, values, tail_ratio=tail)
    orders = np.array([1.5, 2.0, 4.0])
    exact = renyi_shift(noise, [shift], orders)[0]
    quadrature = _numeric_renyi(
        lambda x: (noise.logpdf(x - shift), noise.logpdf(x)), split_points(noise, shift), noise.typical_scale, orders
    )
    finite = np.isfinite(exact)
    assert np.array_equal(finite, np.isfinite(quadrature))
    np.testing.assert_allclose(exact[finite], quadrature[finite], rtol=1e-8, atol=1e-12)


def test_staircase_one_step_epsilon_is_epsilon0():
    for eps0 in (0.5, 1.0, 2.0):
        noise = PiecewiseNoise.staircase(eps0, sensitivity=1.0)
        mechanism = Mechanism(noise, Scalar(1.0))
        assert shift_dominates(mechanism)
        upper, _ = pld_epsilon([(mechanism, 1)], 1e-12)
        assert upper == pytest.approx(eps0, abs=1e-6) and upper <= eps0 + 1e-9


def test_staircase_rounds_gamma_onto_its_bins_and_keeps_the_guarantee():
    noise = PiecewiseNoise.staircase(1.0, gamma=0.3, sensitivity=2.0, max_bins_per_step=10)
    assert noise.bin_width == pytest.approx(0.4)  # gamma = 0.3 = (2*1 + 1) / (2*5): five bins per step
    loss = np.array([noise.logpdf(x) - noise.logpdf(x + 2.0) for x in np.linspace(-9, 9, 3601)])
    assert loss.max() <= 1.0 + 1e-12
    with pytest.raises(ValueError, match="gamma"):
        PiecewiseNoise.staircase(1.0, gamma=1.5)
    with pytest.raises(ValueError, match="epsilon0"):
        PiecewiseNoise.staircase(-1.0)


def test_support_without_tail_gives_infinite_divergence_and_an_atom_at_infinity():
    boxed = PiecewiseNoise.normalised(0.5, [1.0, 1.0, 1.0])
    assert np.all(np.isinf(renyi_shift(boxed, [0.5], [2.0])))
    remove, add = renyi_poisson_mixture(boxed, 0.5, 0.1, np.array([2.0]))
    assert math.isinf(remove[0]) and math.isfinite(add[0])
    mechanism = Mechanism(boxed, Scalar(0.5), Poisson(0.1))
    assert not supports(mechanism)  # the pair has an atom at +inf loss: accounted by RDP, which reports inf
    assert Accountant(mechanism.noise, mechanism.geometry, mechanism.sampling).step(1).get_epsilon(1e-3) == math.inf


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(0.01, 0.6), min_size=2, max_size=40),
    st.floats(0.01, 1.0),
    st.floats(0.05, 1.0),
    st.floats(0.3, 6.0),
)
def test_a_log_concave_histogram_dominates_as_the_exact_check_finds(increments, extra, width, sensitivity):
    decrements = np.cumsum(increments)  # non-decreasing, >= 0: log-concave values, the tail continuing them
    values = np.exp(-np.concatenate([[0.0], np.cumsum(decrements[:-1])]))
    noise = PiecewiseNoise.normalised(width, values, tail_ratio=math.exp(-(decrements[-1] + extra)))
    assert noise.log_concave
    assert noise.dominating_shift_proven(sensitivity) and noise._dominance_at_knots(sensitivity)


def test_multimodal_histogram_has_no_proven_dominating_shift():
    bumps = PiecewiseNoise.normalised(0.5, [0.01, 0.01, 0.01, 0.01, 1.0, 0.01], tail_ratio=0.5)
    assert not bumps.log_concave and not bumps.dominating_shift_proven(4.0)
    assert not shift_dominates(Mechanism(bumps, Scalar(4.0)))


def test_geometries():
    noise = PiecewiseNoise.staircase(1.0)
    report = Accountant(noise, L2Ball(1.0), Poisson(0.1)).step(10).report(1e-5)
    assert report.epsilon == math.inf and "not smooth" in report.notes[0]
    with pytest.raises(ValueError, match="no dimension-free L2 bound"):
        calibrate(noise, L2Ball(1.0), Poisson(1.0), 1, target_epsilon=1.0, target_delta=1e-5)
    orders = np.array([2.0, 8.0])
    slope = noise.small_shift_slope(orders)
    w = noise.bin_width
    assert np.all(slope >= renyi_shift(noise, [w], orders)[0] / w * (1 - 1e-12))  # r(s)/s decreases on (0, w]
    l1 = Accountant(noise, L1Ball(1.0), Poisson(1.0), method="rdp", orders=orders).step(1).rdp()
    assert np.all(np.isfinite(l1)) and np.all(l1 >= slope * 1.0)


def test_many_bins_are_cheap():
    values = np.sort(np.random.default_rng(1).random(4000))[::-1]
    noise = PiecewiseNoise.normalised(0.01, values, tail_ratio=0.9)
    result = renyi_shift(noise, [1.0, 2.5], DEFAULT_ORDERS)
    assert np.all(np.isfinite(result)) and np.all(np.diff(result, axis=1) >= -1e-12)


def test_torch_sampler():
    torch = pytest.importorskip("torch")
    from lmodp_torch import sample_noise

    draws = sample_noise(SMALL, (20_000,), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(draws.var()) == pytest.approx(SMALL.variance, rel=0.1)


def test_certified_sup_over_shifts_bounds_a_dense_shift_grid():
    from lmodp_core.rdp.per_step import unsampled_rdp

    orders = np.array([1.5, 2.0, 8.0])
    shifts = np.linspace(1e-6, 1.0, 2001)
    values = renyi_shift(SMALL, shifts, orders)
    scalar = unsampled_rdp(SMALL, Scalar(1.0), orders)
    np.testing.assert_allclose(scalar, values.max(axis=0), rtol=1e-12)  # attained at a multiple of w or at D
    l1 = unsampled_rdp(SMALL, L1Ball(1.0), orders)
    assert np.all(l1 >= (values / shifts[:, None]).max(axis=0) * (1 - 1e-12))


def test_subsampled_scalar_sup_is_taken_at_the_knots():
    from lmodp_core.rdp import scalar_subsampled_rdp

    orders = np.array([2.0, 8.0])
    shifts = np.linspace(1e-6, 1.3, 400)
    dense = np.array([np.maximum(*renyi_poisson_mixture(SMALL, s, 0.2, orders)) for s in shifts]).max(axis=0)
    certified = scalar_subsampled_rdp(SMALL, 1.3, 0.2, orders)
    assert np.all(certified >= dense) and np.all(certified <= dense * (1 + 1e-5))
