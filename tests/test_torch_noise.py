"""sample_noise: moments and KS statistic against lmodp_core's formulas (one parameterisation)."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from lmodp_core import LMO, CustomNoise, Gaussian, Laplace  # noqa: E402
from lmodp_torch import sample_noise  # noqa: E402

torch.set_num_threads(1)
SIZE = 40_000
KS_CRITICAL = 1.95 / math.sqrt(SIZE)  # Kolmogorov p = 0.001

FAMILIES = [
    Gaussian(1.7),
    Laplace(0.6),
    LMO(0.4, 0.3, 0.3, 2.0, 1.0, 0.5, 1.0, 2.0, scale=1.3),  # all three parts; U >= 0.3 so Var is finite
    LMO(0.0, 1.0, 0.0, 1.0, 1.0, 5.0, 0.0, 1.0),  # Exponential only, RATE 5: a scale/rate mixup fails the KS test
    LMO(1.0, 0.0, 0.0, 0.5, 9.0, 1.0, 0.0, 1.0),  # Gamma shape < 1 (heavy tails; rejection sampler)
    LMO(1.0, 0.0, 0.2, 3.0, 0.5, 1.0, 0.0, 1.0),  # whole Gamma shape (product-of-uniforms sampler)
    LMO(1.0, 0.0, 0.2, 5.5, 0.5, 1.0, 0.0, 1.0),  # Gamma shape > 4
    LMO(0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0),  # Uniform only
]


def ks_statistic(samples: np.ndarray, noise) -> float:
    x = np.sort(samples)
    cdf = 1.0 - noise.sf(x)
    ecdf_hi = np.arange(1, len(x) + 1) / len(x)
    return float(max(np.max(ecdf_hi - cdf), np.max(cdf - (ecdf_hi - 1.0 / len(x)))))


@pytest.mark.parametrize("secure_rng", [False, True], ids=["generator", "secure"])
@pytest.mark.parametrize("noise", FAMILIES, ids=lambda n: repr(n)[:40])
def test_samples_follow_the_core_distribution(noise, secure_rng, monkeypatch):
    if secure_rng:  # the transformations of the secure source, fed by reproducible bytes (no flaky tests)
        seeded = np.random.default_rng(2024)
        monkeypatch.setattr("lmodp_torch.noise.os.urandom", lambda n: seeded.bytes(n))
    generator = None if secure_rng else torch.Generator().manual_seed(2024)
    z = sample_noise(noise, (SIZE,), generator=generator, dtype=torch.float64, secure_rng=secure_rng).numpy()
    assert z.shape == (SIZE,) and np.all(np.isfinite(z))
    assert ks_statistic(z, noise) < KS_CRITICAL
    for moment, statistic in ((noise.mean_abs, np.abs(z)), (noise.variance, z * z)):
        if math.isfinite(moment):  # E[1/U] or E[1/U^2] can diverge (e.g. U Exponential)
            assert abs(np.mean(statistic) - moment) < 5 * np.std(statistic) / math.sqrt(SIZE)


def test_generator_makes_draws_reproducible_and_shape_dtype_are_honoured():
    noise = LMO(0.5, 0.5, 0.0, 2.0, 1.0, 1.0, 0.0, 1.0)
    a = sample_noise(noise, (3, 4), generator=torch.Generator().manual_seed(1))
    b = sample_noise(noise, torch.Size([3, 4]), generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 4) and a.dtype == torch.float32 and torch.equal(a, b)
    assert sample_noise(noise, 5, dtype=torch.bfloat16).dtype == torch.bfloat16
    assert not torch.equal(sample_noise(noise, 50, secure_rng=True), sample_noise(noise, 50, secure_rng=True))


def test_custom_noise_uses_its_numpy_sampler_seeded_from_the_generator():
    logistic = CustomNoise(
        lambda x: -np.abs(x) - 2 * np.log1p(np.exp(-np.abs(x))),
        lambda rng, size: rng.logistic(0.0, 1.0, size),
        name="logistic",
        typical_scale=2.0,
    )
    z = sample_noise(logistic, (SIZE,), generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    assert np.var(z) == pytest.approx(math.pi**2 / 3, rel=0.05)
    again = sample_noise(logistic, (SIZE,), generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    assert np.array_equal(z, again)
    with pytest.raises(ValueError, match="secure_rng"):
        sample_noise(logistic, 3, secure_rng=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(noise="laplace", shape=3), "noise"),
        (dict(noise=Gaussian(1.0), shape=(-1, 2)), "shape"),
        (dict(noise=Gaussian(1.0), shape=3, dtype=torch.int64), "dtype"),
        (dict(noise=Gaussian(1.0), shape=3, secure_rng=True, generator=torch.Generator()), "generator"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_noise(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(noise=Gaussian(1.0), shape=3, generator=42), "generator"),
        (dict(noise=Gaussian(1.0), shape=3, dtype="float32"), "dtype"),
        (dict(noise=Gaussian(1.0), shape=3, device="no-such-device"), "device"),
        (dict(noise=Gaussian(1.0), shape=(2.5,)), "shape"),
        (dict(noise=Gaussian(1.0), shape=3, secure_rng="yes"), "secure_rng"),
    ],
)
def test_wrong_types_raise_value_error_not_attribute_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_noise(**kwargs)


# U shapes with a single component that a uniform of 0 makes 0: |Z| is bounded by the zero cell's midpoint
ZERO_REACHING = [
    (LMO(1.0, 0.0, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0, scale=0.5), 1.0 * 2.0),  # Gamma(1) only: U >= a1 * gamma_scale * h
    (LMO(0.0, 1.0, 0.0, 1.0, 1.0, 5.0, 0.0, 1.0, scale=0.5), 1.0 / 5.0),  # Exponential only: U >= a3 / rate * h
    (LMO(0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, scale=0.5), 2.0 * 3.0),  # Uniform(0, b) only: U >= a4 * b * h
]


@pytest.mark.parametrize("secure_rng", [False, True], ids=["generator", "secure"])
@pytest.mark.parametrize("noise, coefficient", ZERO_REACHING, ids=["gamma1", "exponential", "uniform0"])
def test_a_zero_uniform_gives_a_finite_draw_bounded_by_the_zero_cell(noise, coefficient, secure_rng, monkeypatch):
    """Every uniform forced to 0 (probability 2^-24 per float32 uniform): U takes the midpoint of the zero cell of
    the float64 grid, 2^-54, so |Z| <= 40 * scale / (coefficient * 2^-54) (it was ~5e37 with float32's tiny)."""
    if secure_rng:
        monkeypatch.setattr("lmodp_torch.noise.os.urandom", lambda n: bytes(n))
    else:
        monkeypatch.setattr(
            "lmodp_torch.noise._TorchSource.uniform",
            lambda self, shape: torch.zeros(shape, dtype=self.dtype, device=self.device),
        )
    z = sample_noise(noise, 8, dtype=torch.float32, secure_rng=secure_rng)
    assert torch.isfinite(z).all()
    assert z.abs().max().item() <= 40.0 * noise.scale / (coefficient * 2.0**-54)


def test_heavy_tail_of_exponential_lmo_is_kept_but_never_blown_up_in_float32():
    """U ~ Exponential(1), Z = L / U: P(|Z| > t) = 1 / (1 + t). A million float32 draws keep that tail (count
    above 1e3) and stay below 1e12 (P(max > 1e12) ~ 1e-6 under the true law; float32's tiny clamp gave 5e37)."""
    z = sample_noise(LMO(0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0), 10**6, generator=torch.Generator().manual_seed(3))
    assert z.dtype == torch.float32 and torch.isfinite(z).all()
    assert z.abs().max().item() < 1e12
    expected = 10**6 / (1.0 + 1e3)
    assert abs((z.abs() > 1e3).sum().item() - expected) < 5 * math.sqrt(expected)


def test_float16_refuses_scales_that_overflow_and_checks_unbounded_draws():
    with pytest.raises(ValueError, match="float16"):
        sample_noise(Gaussian(1e5), 100, dtype=torch.float16)  # about half its draws exceed 65504
    assert torch.isfinite(sample_noise(Gaussian(100.0), 1000, dtype=torch.float16)).all()
    with pytest.raises(ValueError, match="overflowed"):
        sample_noise(
            LMO(0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, scale=1e3),
            10**5,
            dtype=torch.float16,
            generator=torch.Generator().manual_seed(0),
        )


def _noise_or_none(build):
    """The noise, or None where lmodp_core refuses the parameters (that ValueError is the core's contract)."""
    try:
        return build()
    except ValueError:
        return None


_MAGNITUDES = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)
_NOISES = st.one_of(
    st.builds(lambda s: _noise_or_none(lambda: Gaussian(s)), _MAGNITUDES),
    st.builds(lambda s: _noise_or_none(lambda: Laplace(s)), _MAGNITUDES),
    st.builds(
        lambda a1, a3, a4, shape, gamma_scale, rate, low, width, scale: _noise_or_none(
            lambda: LMO(a1, a3, a4, shape, gamma_scale, rate, low, low + width, scale=scale)
        ),
        st.sampled_from([0.0, 1e-300, 0.3, 1.0, 1e300]),
        st.sampled_from([0.0, 1e-300, 0.5, 1e300]),
        st.sampled_from([0.0, 1e-300, 1.0, 1e300]),
        st.sampled_from([0.05, 0.5, 1.0, 2.0, 5.5]),
        _MAGNITUDES,
        _MAGNITUDES,
        st.sampled_from([0.0, 1e-300, 1.0, 1e300]),
        st.sampled_from([1e-300, 1.0, 1e300]),
        _MAGNITUDES,
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    noise=_NOISES,
    size=st.integers(0, 64),
    dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]),
)
def test_fuzzed_noises_give_finite_draws_or_a_value_error(noise, size, dtype):
    assume(noise is not None)
    try:
        z = sample_noise(noise, (size,), generator=torch.Generator().manual_seed(0), dtype=dtype)
    except ValueError:
        return
    assert z.shape == (size,) and z.dtype == dtype and bool(torch.isfinite(z).all())
