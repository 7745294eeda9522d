"""Fuzzing the core: noise constructors and methods, geometries, sampling, step_rdp, the RDP conversions and
calibrate. Whatever the input, a call returns a valid number (no NaN, no negative epsilon or delta) or raises a
ValueError; no other exception type escapes. Example counts are bounded so that the file runs in seconds."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmodp_core import (
    DEFAULT_ORDERS,
    LMO,
    CustomNoise,
    Gaussian,
    L1Ball,
    L2Ball,
    Laplace,
    Poisson,
    Scalar,
    calibrate,
    delta_from_rdp,
    epsilon_from_rdp,
    step_rdp,
)
from lmodp_core.noise.lmo import SHAPE_RANGE
from lmodp_core.validation import MAX_SCALE, MIN_SCALE

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CALIBRATIONS = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EXTREME_FLOATS = st.sampled_from(
    [
        0.0,
        -0.0,
        -1.0,
        1e-320,
        1e-300,
        1e-101,
        1e-100,
        1e-20,
        1e-6,
        0.3,
        1.0,
        7.5,
        1e20,
        1e100,
        1e101,
        1e300,
        math.inf,
        -math.inf,
        math.nan,
    ]
)
ANYTHING = st.one_of(
    EXTREME_FLOATS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 10**400),
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.floats(), max_size=2),
)
POINTS = st.one_of(ANYTHING, st.lists(st.floats(allow_nan=False, allow_infinity=True), min_size=1, max_size=5))
LOG_SCALE = st.floats(math.log10(MIN_SCALE), math.log10(MAX_SCALE))


def _valid_or_value_error(call):
    """The result of ``call()``, or None when it raised ValueError (any other exception fails the test)."""
    try:
        return call()
    except ValueError:
        return None


def _assert_no_nan(values, low=-math.inf):
    values = np.asarray(values, dtype=float)
    assert not np.any(np.isnan(values)) and np.all(values >= low)


def _lmo_params(draw_value):
    names = ("a1", "a3", "a4", "gamma_shape", "gamma_scale", "exp_rate", "unif_low", "unif_high", "scale")
    return st.fixed_dictionaries({name: draw_value for name in names})


def _check_noise(noise):
    for moment in ("variance", "std", "mean_abs", "fisher_information", "typical_scale", "log_density_lipschitz"):
        _assert_no_nan(getattr(noise, moment), low=0.0)
    xs = np.array([0.0, 1e-300, 1e-3, 1.0, 1e3, 1e300, math.inf]) * np.array([[1.0], [-1.0]])
    _assert_no_nan(noise.logpdf(xs))
    _assert_no_nan(noise.score(xs))
    tail = noise.sf(xs)
    _assert_no_nan(tail, low=0.0)
    assert np.all(tail <= 1.0)


# ---- constructors --------------------------------------------------------------------------------------------
@FAST
@given(value=ANYTHING)
def test_scale_constructors_accept_only_supported_numbers(value):
    for build in (Gaussian, Laplace, Scalar, L1Ball, L2Ball, Poisson):
        built = _valid_or_value_error(lambda: build(value))
        if built is not None and build in (Gaussian, Laplace):
            _check_noise(built)


@FAST
@given(params=_lmo_params(st.one_of(EXTREME_FLOATS, st.floats(-30, 30).map(lambda e: 10.0**e))))
def test_lmo_constructor_and_moments_never_give_nan(params):
    noise = _valid_or_value_error(lambda: LMO(**params))
    if noise is None:
        return
    lows = [v for k, v in params.items() if k != "scale" and v != 0]
    assert all(SHAPE_RANGE[0] <= v <= SHAPE_RANGE[1] for v in lows)
    _check_noise(noise)


@FAST
@given(x=POINTS)
def test_noise_methods_take_real_points_or_raise_value_error(x):
    custom = CustomNoise(lambda t: -np.abs(t) - math.log(2.0), sampler=lambda rng, size: rng.laplace(0, 1, size))
    for noise in (Gaussian(1.0), Laplace(0.5), LMO(0.1, 0.1, 0.1, 1.0, 0.5, 5.0, 1.0, 2.0), custom):
        for method in ("logpdf", "pdf", "sf", "score"):
            result = _valid_or_value_error(lambda: getattr(noise, method)(x))
            if result is not None:
                _assert_no_nan(result)


@FAST
@given(rng=st.one_of(ANYTHING, st.just(np.random.default_rng(0))), size=st.one_of(ANYTHING, st.just((2, 3))))
def test_sample_needs_a_generator_and_a_valid_size(rng, size):
    for noise in (Gaussian(1.0), Laplace(0.5), LMO(0.1, 0.1, 0.1, 1.0, 0.5, 5.0, 1.0, 2.0)):
        draws = _valid_or_value_error(lambda: noise.sample(rng, size))
        if draws is not None:
            _assert_no_nan(draws)


# ---- per-step RDP and conversions ----------------------------------------------------------------------------
GEOMETRIES = st.sampled_from([Scalar, L1Ball, L2Ball])
ORDERS = np.array([1.5, 2.0, 8.0, 64.0])


@FAST
@given(
    family=st.sampled_from([Gaussian, Laplace]),
    log_scale=LOG_SCALE,
    geometry=GEOMETRIES,
    log_clip=LOG_SCALE,
    rate=st.sampled_from([1e-12, 1e-3, 0.01, 0.5, 0.999, 1.0]),
)
def test_step_rdp_of_closed_form_noise_at_any_supported_scale(family, log_scale, geometry, log_clip, rate):
    rdp = step_rdp(family(10.0**log_scale), geometry(10.0**log_clip), Poisson(rate), ORDERS)
    _assert_no_nan(rdp, low=0.0)


@SLOW
@given(
    log_relative=st.one_of(st.floats(-100, -3), st.floats(3, 100)),
    geometry=GEOMETRIES,
    rate=st.sampled_from([0.01, 1.0]),
)
def test_step_rdp_of_lmo_far_from_the_clip(log_relative, geometry, rate):
    noise = LMO(0.1, 0.1, 0.1, 1.0, 0.5, 5.0, 1.0, 2.0, scale=10.0**log_relative)
    _assert_no_nan(step_rdp(noise, geometry(1.0), rate, ORDERS), low=0.0)


@FAST
@given(orders=POINTS, rdp=POINTS)
def test_malformed_orders_and_curves_raise_value_error(orders, rdp):
    result = _valid_or_value_error(lambda: epsilon_from_rdp(orders, rdp, 1e-5))
    if result is not None:
        _assert_no_nan(result[0], low=0.0)
    rdp = _valid_or_value_error(lambda: step_rdp(Gaussian(1.0), L2Ball(1.0), 0.01, orders))
    if rdp is not None:
        _assert_no_nan(rdp, low=0.0)


RDP_VALUES = st.lists(st.one_of(st.floats(0, 1e300), st.just(math.inf), st.just(0.0)), min_size=4, max_size=4)


@FAST
@given(rdp=RDP_VALUES, delta=ANYTHING, epsilon=ANYTHING)
def test_conversions_return_a_bound_and_a_number_or_none(rdp, delta, epsilon):
    eps_result = _valid_or_value_error(lambda: epsilon_from_rdp(ORDERS, rdp, delta))
    if eps_result is not None:
        eps, order = eps_result
        _assert_no_nan(eps, low=0.0)
        assert order is None if eps == math.inf else order in ORDERS
    delta_result = _valid_or_value_error(lambda: delta_from_rdp(ORDERS, rdp, epsilon))
    if delta_result is not None:
        value, order = delta_result
        assert 0.0 <= value <= 1.0
        assert order is None or order in ORDERS


# ---- calibration ---------------------------------------------------------------------------------------------
@CALIBRATIONS
@given(
    family=st.sampled_from([Gaussian, Laplace]),
    log_epsilon=st.floats(-12, 1),
    log_delta=st.floats(-12, -1),
    steps=st.integers(1, 1000),
    geometry=GEOMETRIES,
)
def test_calibrate_with_tiny_budgets_meets_the_target_or_raises_value_error(
    family, log_epsilon, log_delta, steps, geometry
):
    target, delta = 10.0**log_epsilon, 10.0**log_delta
    calibration = _valid_or_value_error(
        lambda: calibrate(
            family(1.0), geometry(1.0), Poisson(0.01), steps, target_epsilon=target, target_delta=delta, method="rdp"
        )
    )
    if calibration is not None:
        noise = calibration.noise
        rdp = steps * step_rdp(noise, geometry(1.0), Poisson(0.01), DEFAULT_ORDERS)
        assert epsilon_from_rdp(DEFAULT_ORDERS, rdp, delta, warn=False)[0] <= target


@FAST
@given(
    argument=st.sampled_from(["noise", "geometry", "sampling", "steps", "target_epsilon", "target_delta", "rtol"]),
    value=ANYTHING,
)
def test_calibrate_validates_every_argument(argument, value):
    kwargs = dict(
        noise=Gaussian(1.0),
        geometry=L2Ball(1.0),
        sampling=Poisson(0.01),
        steps=10,
        target_epsilon=1.0,
        target_delta=1e-5,
        rtol=1e-3,
        method="rdp",
    )
    kwargs[argument] = value
    calibration = _valid_or_value_error(lambda: calibrate(**kwargs))
    if calibration is not None:
        assert isinstance(calibration.noise, Gaussian)
