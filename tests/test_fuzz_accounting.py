"""Fuzz of the accounting API: valid or junk input gives a number >= 0 (never NaN) or a ValueError, nothing else."""

import math
import warnings

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lmodp_core import (
    Accountant,
    Gaussian,
    L1Ball,
    L2Ball,
    Laplace,
    Mechanism,
    OrderGridWarning,
    Poisson,
    Scalar,
    asymptotic_epsilon,
    compute_epsilon,
    optimize_noise,
    pld_delta,
    pld_epsilon,
)

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.generate),
)  # no shrinking: a failure prints its example at once
JUNK = st.sampled_from([None, "x", -1.0, 0.0, math.nan, math.inf, -math.inf, [], {}, True, 1e400, 10**400, 1e-320])


def _log_uniform(low, high):
    return st.floats(math.log10(low), math.log10(high)).map(lambda e: 10.0**e)


NOISES = st.one_of(_log_uniform(1e-3, 1e3).map(Gaussian), _log_uniform(0.05, 100.0).map(Laplace))
GEOMETRIES = st.one_of(
    _log_uniform(1e-3, 1e3).map(L2Ball), _log_uniform(1e-3, 1e3).map(Scalar), _log_uniform(1e-3, 1e3).map(L1Ball)
)
RATES = st.one_of(st.just(1.0), _log_uniform(1e-12, 1.0))
STEPS = st.one_of(st.integers(1, 10**4), st.integers(10**15, 10**18))  # mid-range step counts are slow, not rare
DELTAS = _log_uniform(1e-300, 0.5)


def _sound_number(call):
    """The call's value when it returns: a float, not NaN, >= 0; a ValueError is also accepted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrderGridWarning)
        try:
            value = call()
        except ValueError:
            return None
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        assert isinstance(v, float) and not math.isnan(v) and v >= 0.0, value
    return value


def _affordable(noise, geometry, rate, steps) -> bool:
    """Non-Gaussian RDP by quadrature costs ~1 s per order grid: keep those examples to one configuration."""
    return isinstance(noise, Gaussian) or (isinstance(geometry, Scalar) and rate == 1.0 and steps < 10**6)


@FUZZ
@given(
    noise=NOISES,
    geometry=GEOMETRIES,
    rate=RATES,
    steps=STEPS,
    delta=DELTAS,
    method=st.sampled_from(["auto", "rdp", "pld"]),
)
def test_epsilon_and_delta_are_numbers_or_value_errors(noise, geometry, rate, steps, delta, method):
    if not _affordable(noise, geometry, rate, steps):
        return
    accountant = Accountant(noise, geometry, Poisson(rate), method=method).step(steps)
    value = _sound_number(lambda: accountant.get_epsilon(delta))
    for at in ([value] if value is not None and math.isfinite(value) else []) + [0.0]:
        answer = _sound_number(lambda: accountant.get_delta(at))
        assert answer is None or answer <= 1.0


@FUZZ
@given(args=st.lists(st.one_of(JUNK, st.floats(allow_nan=True), st.integers(-5, 5)), min_size=5, max_size=5))
def test_junk_arguments_raise_value_error(args):
    noise, geometry, sampling, steps, delta = args
    _sound_number(lambda: compute_epsilon(noise, geometry, sampling, steps, delta))
    _sound_number(lambda: compute_epsilon(Gaussian(1.0), L2Ball(1.0), sampling, steps, delta))
    _sound_number(lambda: Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(1.0)).step(1).get_delta(delta))
    _sound_number(lambda: pld_epsilon([(noise, steps)], 1e-5))
    _sound_number(lambda: pld_delta([(Mechanism(Gaussian(1.0)), steps)], delta))
    _sound_number(lambda: asymptotic_epsilon(Laplace(1.0), sampling, steps, delta))


@FUZZ
@given(
    sigmas=st.lists(_log_uniform(0.3, 30.0), min_size=1, max_size=60),
    rates=st.lists(RATES, min_size=1, max_size=3),
    delta=DELTAS,
)
def test_heterogeneous_ledgers_are_numbers(sigmas, rates, delta):
    ledger = [
        (Mechanism(Gaussian(s), L2Ball(1.0), Poisson(rates[i % len(rates)])), 1 + i % 3) for i, s in enumerate(sigmas)
    ]
    _sound_number(lambda: pld_epsilon(ledger, delta))
    _sound_number(lambda: pld_delta(ledger, -math.log10(delta)))


@FUZZ
@given(noise=NOISES, rate=RATES, steps=STEPS, delta=DELTAS, clip=_log_uniform(1e-300, 1e30))
def test_asymptotic_epsilon_is_a_number(noise, rate, steps, delta, clip):
    _sound_number(lambda: asymptotic_epsilon(noise, rate, steps, delta, clip=clip))


@FUZZ
@given(
    state=st.recursive(
        JUNK | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "state_version",
                        "method",
                        "orders",
                        "default",
                        "ledger",
                        "count",
                        "mechanism",
                        "noise",
                        "geometry",
                        "sampling",
                        "kind",
                        "family",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=12,
    )
)
def test_junk_state_dicts_raise_value_error(state):
    if isinstance(state, dict):
        state = {"state_version": 1, **state}
    with pytest.raises(ValueError):
        Accountant.from_state_dict(state)


@settings(FUZZ, max_examples=4)
@given(eps=_log_uniform(1e-7, 50.0), steps=STEPS, rate=RATES, cache=st.sampled_from([False, None, 0, []]))
def test_optimize_noise_returns_a_sound_result_or_value_error(eps, steps, rate, cache):
    result = _sound_number(
        lambda: (
            optimize_noise(
                eps, 1e-5, steps, rate, families=("gaussian",), cache=cache, n_jobs=1, time_limit=10.0
            ).epsilon
        )
    )
    assert result is None or result <= eps


@pytest.mark.parametrize("params", [5, None, "x", [], 1.5])
def test_audit_rejects_params_that_are_not_an_lmo_or_a_dict(params):
    from lmodp_core import audit

    with pytest.raises(ValueError, match="params must be an LMO or a dict"):
        audit(params, 10, 0.01, 1e-5)
