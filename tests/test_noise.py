"""Noise families: closed forms against sampling and quadrature, domains, serialisation, bad input."""

import dataclasses
import functools
import json
import math
import pickle

import numpy as np
import pytest
from scipy import integrate, stats

from lmodp_core import LMO, CustomNoise, Gaussian, Laplace, Noise, PiecewiseNoise
from lmodp_core.noise.lmo import SHAPE_RANGE as LMO_SHAPE_RANGE

from .conftest import PAPER_03

HEAVY = dict(a1=1.0, a3=0.0, a4=0.0, gamma_shape=2.5, gamma_scale=1.0, exp_rate=1.0, unif_low=0.0, unif_high=1.0)
FAMILIES = [
    Gaussian(1.7),
    Laplace(0.6),
    LMO(**PAPER_03),
    LMO(**PAPER_03, scale=3.0),
    LMO(**HEAVY),
    LMO(0.0, 0.9, 0.7, 1.0, 7.5, 1.0, 6.0, 7.0),
]


@pytest.mark.parametrize("noise", FAMILIES, ids=repr)
def test_density_is_normalised_symmetric_and_matches_sf(noise):
    total, _ = integrate.quad(noise.pdf, -np.inf, np.inf, points=None, limit=400, epsabs=1e-12)
    assert total == pytest.approx(1.0, abs=1e-7)
    xs = np.array([0.1, 0.7, 2.0, 9.0]) * noise.typical_scale
    np.testing.assert_allclose(noise.logpdf(xs), noise.logpdf(-xs), rtol=0, atol=1e-14)
    for x in xs:
        tail, _ = integrate.quad(noise.pdf, x, np.inf, limit=400, epsabs=1e-13)
        assert noise.sf(x) == pytest.approx(tail, rel=1e-6)
        assert noise.sf(-x) == pytest.approx(1.0 - tail, rel=1e-6)
    # the generic quadrature survival function agrees with every closed form
    np.testing.assert_allclose(Noise.sf(noise, xs), noise.sf(xs), rtol=1e-9)


@pytest.mark.parametrize("noise", FAMILIES, ids=repr)
def test_sample_moments_match_formulas(noise, rng):
    z = noise.sample(rng, 400_000)
    assert np.mean(np.abs(z)) == pytest.approx(noise.mean_abs, rel=0.02)
    if noise.to_dict().get("unif_low", 1.0) > 0:  # exponential tails: the sample variance converges
        assert np.var(z) == pytest.approx(noise.variance, rel=0.08)
    for x in np.array([0.3, 1.0, 3.0]) * noise.typical_scale:
        assert np.mean(z > x) == pytest.approx(float(noise.sf(x)), abs=4e-3)
    ks = stats.kstest(z[:20_000], lambda v: 1.0 - noise.sf(v))
    assert ks.pvalue > 1e-4


def test_lmo_inverse_scale_uses_the_exponential_rate(rng):
    """E[U] with Exponential *rate* exp_rate (the reference code confused rate and scale: docs/theory.md §2 F2)."""
    noise = LMO(**PAPER_03)
    u = noise.sample_inverse_scale(rng, 400_000)
    assert np.mean(u) == pytest.approx(noise.mean_u, rel=5e-3)
    assert noise.mean_u == pytest.approx(0.1 * 1 * 0.5 + 0.1 / 5 + 0.1 * 1.5)
    # M_U(-1) = E[e^{-U}] = 2 P(Z > 1) at scale 1
    assert np.mean(np.exp(-u)) == pytest.approx(2 * float(noise.sf(1.0)), rel=2e-3)


def test_closed_form_moments_against_generic_quadrature():
    for noise in FAMILIES:
        if math.isfinite(noise.variance):
            assert noise.variance == pytest.approx(Noise.variance.fget(noise), rel=1e-8)
        assert noise.mean_abs == pytest.approx(Noise.mean_abs.fget(noise), rel=1e-8)
        # the closed-form score against a finite-difference score
        xs = np.array([0.2, 1.1, 4.0]) * noise.typical_scale
        np.testing.assert_allclose(noise.score(xs), Noise.score(noise, xs), rtol=1e-6)
    assert Gaussian(2.0).fisher_information == pytest.approx(Noise.fisher_information.fget(Gaussian(2.0)), rel=1e-10)


def test_laplace_mixtures_pay_for_their_fisher_information():
    """I_f * Var >= 2 and I_f * E|Z|^2 >= 1 for Laplace scale mixtures (docs/theory.md §2); Gaussian: 1 and 2/pi."""
    for noise in FAMILIES[1:]:
        info = noise.fisher_information
        assert info * noise.variance >= 2.0 - 1e-9
        assert info * noise.mean_abs**2 >= 1.0 - 1e-9
    gauss = Gaussian(3.0)
    assert gauss.fisher_information * gauss.variance == pytest.approx(1.0)
    assert gauss.fisher_information * gauss.mean_abs**2 == pytest.approx(2 / math.pi)


def test_infinite_variance_is_reported_as_inf():
    noise = LMO(1.0, 0.0, 0.0, 1.5, 1.0, 1.0, 0.0, 1.0)  # M_U(-x) ~ x^-1.5: E[1/U^2] diverges
    assert noise.variance == math.inf
    assert math.isfinite(noise.mean_abs)
    assert LMO(1.0, 0.0, 0.0, 0.8, 1.0, 1.0, 0.0, 1.0).mean_abs == math.inf


def test_lmo_mgf_is_infinite_outside_its_domain():
    noise = LMO(**PAPER_03)
    upper = noise.mgf_domain_upper  # min(1/(a1 theta), rate/a3) = min(20, 50)
    assert upper == pytest.approx(20.0)
    values = noise.log_mgf_u(np.array([-5.0, 0.0, 19.9, 20.0, 127.0]))
    assert np.isfinite(values[:3]).all() and values[1] == 0.0
    assert np.all(values[3:] == np.inf)
    assert LMO(0.0, 0.0, 1.0, 1, 1, 1, 1.0, 2.0).mgf_domain_upper == math.inf


@pytest.mark.parametrize("noise", FAMILIES, ids=repr)
def test_scaled_and_serialisation(noise):
    scaled = noise.scaled(2.5)
    assert type(scaled) is type(noise)
    if math.isfinite(noise.variance):
        assert scaled.variance == pytest.approx(6.25 * noise.variance, rel=1e-9)
    assert scaled.fisher_information == pytest.approx(noise.fisher_information / 6.25, rel=1e-7)
    data = json.loads(json.dumps(noise.to_dict()))
    assert data["family"] == noise.family and data["schema_version"] == 1
    assert Noise.from_dict(data) == noise
    with pytest.raises(AttributeError):
        noise.scale = 3.0  # immutable


@pytest.mark.parametrize("noise", [*FAMILIES, PiecewiseNoise(0.5, [0.8, 0.4, 0.2])], ids=repr)
def test_families_are_frozen_dataclasses_equal_by_fields_and_picklable(noise):
    assert dataclasses.is_dataclass(noise)
    rebuilt = type(noise)(**noise._params())
    assert rebuilt == noise and hash(rebuilt) == hash(noise) and repr(rebuilt) == repr(noise)
    assert noise.scaled(2.0) != noise
    assert pickle.loads(pickle.dumps(noise)) == noise  # the search's worker processes receive pickles
    assert len({noise, rebuilt, pickle.loads(pickle.dumps(noise))}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        noise.scale = 3.0


def _unit_laplace_logpdf(x):
    return -np.abs(x) - math.log(2.0)


class _UnhashableDensity:
    __hash__ = None

    def __call__(self, x):
        return _unit_laplace_logpdf(x)


def test_custom_noise_is_equal_by_callable_identity_and_parameters():
    noise = CustomNoise(_unit_laplace_logpdf, name="laplace")
    assert noise == CustomNoise(_unit_laplace_logpdf, name="laplace", _checked=True)
    assert hash(noise) == hash(noise.scaled(3.0).scaled(1 / 3.0))
    assert noise != CustomNoise(_unit_laplace_logpdf, name="other")
    assert noise != CustomNoise(functools.partial(_unit_laplace_logpdf), name="laplace")  # same formula, new object
    assert noise != CustomNoise(_unit_laplace_logpdf, lambda rng, size: rng.laplace(size=size), name="laplace")
    assert pickle.loads(pickle.dumps(noise)) == noise  # a module-level function pickles by reference
    assert repr(noise) == "CustomNoise(name='laplace', scale=1.0, kinks=[0.0], typical_scale=1.0)"
    with pytest.raises(ValueError, match="hashable"):
        CustomNoise(_UnhashableDensity())


def test_custom_noise_matches_builtin_and_checks_its_density():
    gauss = Gaussian(1.0)
    custom = CustomNoise(
        lambda x: -0.5 * x * x - 0.5 * math.log(2 * math.pi), lambda r, n: r.normal(size=n), kinks=(), name="std-normal"
    ).scaled(2.0)
    assert custom.variance == pytest.approx(4.0, rel=1e-9)
    assert custom.fisher_information == pytest.approx(0.25, rel=1e-6)
    assert float(custom.sf(1.3)) == pytest.approx(float(gauss.scaled(2.0).sf(1.3)), rel=1e-9)
    restored = Noise.from_dict(custom.to_dict(), logpdf=custom._unit_logpdf)
    assert restored.variance == pytest.approx(4.0, rel=1e-9)
    with pytest.raises(ValueError, match="normalised"):
        CustomNoise(lambda x: -0.5 * x * x)
    with pytest.raises(ValueError, match="symmetric"):
        CustomNoise(lambda x: math.log(2.0) + stats.norm.logpdf(x) + stats.norm.logcdf(x), kinks=())  # skew-normal
    with pytest.raises(ValueError, match="from_dict"):
        Noise.from_dict(custom.to_dict())
    with pytest.raises(ValueError, match="sampler"):
        CustomNoise(lambda x: -np.abs(x) - math.log(2)).sample(np.random.default_rng(0), 3)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Gaussian(0.0), "sigma"),
        (lambda: Gaussian(float("nan")), "sigma"),
        (lambda: Gaussian(float("inf")), "sigma"),
        (lambda: Laplace(-1.0), "scale"),
        (lambda: LMO(0, 0, 0, 1, 1, 1, 0, 1), "at least one"),
        (lambda: LMO(-0.1, 0.1, 0.1, 1, 1, 1, 0, 1), "a1"),
        (lambda: LMO(0.1, 0.1, 0.1, 0.0, 1, 1, 0, 1), "gamma_shape"),
        (lambda: LMO(0.1, 0.1, 0.1, 1, -1, 1, 0, 1), "gamma_scale"),
        (lambda: LMO(0.1, 0.1, 0.1, 1, 1, 0, 0, 1), "exp_rate"),
        (lambda: LMO(0.1, 0.1, 0.1, 1, 1, 1, -1, 1), "unif_low"),
        (lambda: LMO(0.1, 0.1, 0.1, 1, 1, 1, 2, 1), "unif_high"),
        (lambda: LMO(0.1, 0.1, 0.1, 1, 1, 1, 0, 1, scale=0), "scale"),
        (lambda: LMO(0.1, 0.1, float("nan"), 1, 1, 1, 0, 1), "a4"),
        (lambda: Gaussian(1.0).scaled(0.0), "factor"),
        (lambda: Noise.from_dict({"family": "cauchy"}), "unknown noise family"),
        (lambda: LMO.from_paper({"a1": 0.1}), "missing"),
    ],
)
def test_bad_parameters_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_paper_naming_round_trip():
    params = {"a1": 0.1, "a3": 0.1, "a4": 0.1, "G_k": 1, "G_theta": 0.5, "E_lambda": 5, "U_a": 1, "U_b": 2}
    noise = LMO.from_paper(params)
    assert noise == LMO(**PAPER_03)
    assert noise.to_paper() == {k: float(v) for k, v in params.items()}


# ---- issue 12: bad points, generators and extreme parameters --------------------------------------------------
UNIT_LAPLACE = CustomNoise(lambda t: -np.abs(t) - math.log(2.0), sampler=lambda rng, size: rng.laplace(0, 1, size))
ONE_OF_EACH = [Gaussian(1.0), Laplace(1.0), LMO(**PAPER_03), UNIT_LAPLACE]


@pytest.mark.parametrize("noise", ONE_OF_EACH, ids=repr)
@pytest.mark.parametrize("method", ["logpdf", "pdf", "sf", "score"])
@pytest.mark.parametrize(
    "x, match",
    [(math.nan, "NaN"), ([0.0, math.nan], "NaN"), (None, "real number"), ("1", "real number"), (1j, "real number")],
)
def test_points_are_checked_once_for_every_family(noise, method, x, match):
    with pytest.raises(ValueError, match=match):
        getattr(noise, method)(x)


@pytest.mark.parametrize("noise", ONE_OF_EACH, ids=repr)
def test_infinite_points_give_the_limits(noise):
    x = np.array([-math.inf, math.inf])
    assert np.all(noise.logpdf(x) == -math.inf)
    np.testing.assert_array_equal(noise.sf(x), [1.0, 0.0])
    assert not np.any(np.isnan(noise.score(x)))


@pytest.mark.parametrize("noise", ONE_OF_EACH, ids=repr)
def test_sample_needs_a_numpy_generator(noise, rng):
    for bad_rng in (None, 42, np.random.RandomState(0)):
        with pytest.raises(ValueError, match="Generator"):
            noise.sample(bad_rng, 3)
    for bad_size in (-1, "3", 2.5, (2, -1), 10**12):
        with pytest.raises(ValueError, match="size"):
            noise.sample(rng, bad_size)
    assert np.isfinite(noise.sample(rng))
    assert noise.sample(rng, (2, 3)).shape == (2, 3)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Gaussian(1e-150),
        lambda: Gaussian(1e300),
        lambda: Laplace(1e300),
        lambda: Laplace(1e-300),
        lambda: LMO(**{**PAPER_03, "a1": 1e300}),
        lambda: LMO(**{**PAPER_03, "gamma_shape": 1e300}),
        lambda: LMO(**{**PAPER_03, "exp_rate": 1e-300}),
        lambda: LMO(**{**PAPER_03, "unif_high": 1e300}),
        lambda: LMO(**{**PAPER_03, "a1": 1e-300, "a3": 1e-300, "a4": 1e-300}),
        lambda: LMO(**PAPER_03, scale=1e-300),
        lambda: Gaussian(1.0).scaled(1e-120),
    ],
)
def test_parameters_outside_the_supported_range_are_refused(build):
    with pytest.raises(ValueError, match="numerically supported range"):
        build()


@pytest.mark.parametrize("name", ["a1", "a3", "a4", "gamma_shape", "gamma_scale", "exp_rate", "unif_high", "scale"])
@pytest.mark.parametrize("end", ["low", "high"])
def test_lmo_at_the_ends_of_its_supported_ranges_gives_numbers_or_inf(name, end):
    low, high = (1e-100, 1e100) if name == "scale" else LMO_SHAPE_RANGE
    params = {**PAPER_03, "unif_low": 0.0, name: low if end == "low" else high}
    noise = LMO(**params)
    for moment in ("variance", "std", "mean_abs", "fisher_information", "log_density_lipschitz"):
        value = getattr(noise, moment)
        assert value >= 0 and not math.isnan(value), moment
    with np.errstate(over="ignore"):
        xs = np.array([0.0, 1e-300, 1.0, 1e300]) * noise.typical_scale
    for method in ("logpdf", "sf", "score"):
        assert not np.any(np.isnan(getattr(noise, method)(xs))), method


@pytest.mark.parametrize("noise", FAMILIES, ids=repr)
def test_log_density_lipschitz_constant_bounds_the_score(noise):
    xs = np.geomspace(1e-9, 1e4, 2000) * noise.typical_scale
    assert np.all(np.abs(noise.score(xs)) <= noise.log_density_lipschitz * (1 + 1e-9))
    assert noise.fisher_information <= noise.log_density_lipschitz**2 * (1 + 1e-9)


@pytest.mark.parametrize(
    "data",
    [
        {"family": "gaussian"},
        {"family": "gaussian", "sigma": 1.0, "extra": 2},
        {"family": "lmo", "a1": 0.1},
        {"family": "laplace", "scale": "1"},
    ],
)
def test_malformed_noise_dicts_raise_value_error(data):
    with pytest.raises(ValueError, match="noise dict needs the arguments|scale"):
        Noise.from_dict(data)


def test_lmo_draws_whose_inverse_scale_underflows_are_never_nan():
    """A tiny Gamma shape makes U underflow to 0; a draw is then huge but never 0/0 = NaN (issue 12 §6)."""
    tiny_shape = LMO(
        a1=1.0, a3=0.0, a4=0.0, gamma_shape=1e-20, gamma_scale=1.0, exp_rate=1.0, unif_low=0.0, unif_high=1.0
    )
    draws = tiny_shape.sample(np.random.default_rng(0), 10_000)
    assert not np.isnan(draws).any() and np.abs(draws).min() > 1e250
