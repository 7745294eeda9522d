"""dp_accounting interoperability: DpEvent trees in and out, LmodpAccountant, calibrate_dp_mechanism."""

import math

import pytest

dp_accounting = pytest.importorskip("dp_accounting")

from dp_accounting import mechanism_calibration  # noqa: E402
from dp_accounting.pld import pld_privacy_accountant  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lmodp_core import LMO, Accountant, Gaussian, L1Ball, L2Ball, Laplace, Mechanism, Poisson, Scalar  # noqa: E402
from lmodp_core.interop import LmodpAccountant, from_dp_event, to_dp_event  # noqa: E402

DELTA = 1e-5


def dpsgd_event(sigma, q, steps):
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )


def test_dpsgd_event_agrees_with_dp_accounting_pld_within_0p1_percent():
    event = dpsgd_event(2.0, 0.1, 100)
    ours = LmodpAccountant().compose(event).get_epsilon(DELTA)
    reference = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4).compose(event)
    theirs = reference.get_epsilon(DELTA)
    assert abs(ours - theirs) <= 1e-3 * theirs
    assert ours == Accountant(Gaussian(2.0), L2Ball(1.0), Poisson(0.1)).step(100).get_epsilon(DELTA)


def test_calibrate_dp_mechanism_with_lmodp_accountant_meets_target():
    sigma = mechanism_calibration.calibrate_dp_mechanism(
        LmodpAccountant, lambda s: dpsgd_event(s, 0.1, 100), target_epsilon=2.0, target_delta=DELTA
    )
    assert Accountant(Gaussian(sigma), L2Ball(1.0), Poisson(0.1)).step(100).get_epsilon(DELTA) <= 2.0
    assert sigma > 0


def test_event_tree_maps_to_ledger():
    event = dp_accounting.ComposedDpEvent(
        [
            dpsgd_event(1.0, 0.01, 30),
            dp_accounting.NoOpDpEvent(),
            dp_accounting.SelfComposedDpEvent(
                dp_accounting.ComposedDpEvent(
                    [
                        dp_accounting.LaplaceDpEvent(2.0),
                        dp_accounting.PoissonSampledDpEvent(
                            0.5, dp_accounting.PoissonSampledDpEvent(0.2, dp_accounting.GaussianDpEvent(3.0))
                        ),
                    ]
                ),
                2,
            ),
            dp_accounting.PoissonSampledDpEvent(0.0, dp_accounting.GaussianDpEvent(0.5)),  # samples nobody
        ]
    )
    assert from_dp_event(event).ledger == (
        (Mechanism(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)), 30),
        (Mechanism(Laplace(2.0), L1Ball(1.0)), 2),
        (Mechanism(Gaussian(3.0), L2Ball(1.0), Poisson(0.1)), 2),
    )
    assert from_dp_event(dp_accounting.NoOpDpEvent()).get_epsilon(DELTA) == 0.0


def test_accountant_matches_from_dp_event_and_composes_in_steps():
    first, second = dpsgd_event(1.0, 0.05, 40), dp_accounting.LaplaceDpEvent(5.0)
    accountant = LmodpAccountant().compose(first).compose(second, 3)
    ledger = from_dp_event(dp_accounting.ComposedDpEvent([first, dp_accounting.SelfComposedDpEvent(second, 3)]))
    assert accountant.accountant.ledger == ledger.ledger
    assert accountant.get_epsilon(DELTA) == ledger.get_epsilon(DELTA)
    assert accountant.get_delta(1.0) == ledger.get_delta(1.0)


def test_non_private_events_give_infinite_epsilon():
    accountant = LmodpAccountant().compose(dp_accounting.GaussianDpEvent(0.0))
    assert accountant.get_epsilon(DELTA) == math.inf and accountant.get_delta(1.0) == 1.0
    assert LmodpAccountant().compose(dp_accounting.NonPrivateDpEvent()).get_epsilon(DELTA) == math.inf
    with pytest.raises(ValueError, match="non-private"):
        from_dp_event(dp_accounting.GaussianDpEvent(0.0))


@pytest.mark.parametrize(
    "event",
    [
        dp_accounting.SampledWithReplacementDpEvent(100, 10, dp_accounting.GaussianDpEvent(1.0)),
        dp_accounting.PoissonSampledDpEvent(0.1, dpsgd_event(1.0, 0.1, 2)),
        dp_accounting.ComposedDpEvent([dp_accounting.GaussianDpEvent(1.0), dp_accounting.UnsupportedDpEvent()]),
    ],
)
def test_unsupported_events_are_reported_not_composed(event):
    accountant = LmodpAccountant()
    assert not accountant.supports(event)
    with pytest.raises(dp_accounting.UnsupportedEventError):
        accountant.compose(event)
    assert accountant.accountant.steps == 0
    with pytest.raises(ValueError, match="(?i)event"):
        from_dp_event(event)


@pytest.mark.parametrize(
    "event",
    [
        dp_accounting.GaussianDpEvent(-1.0),
        dp_accounting.GaussianDpEvent(float("nan")),
        dp_accounting.PoissonSampledDpEvent(1.5, dp_accounting.GaussianDpEvent(1.0)),
        dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(1.0), -2),
    ],
)
def test_invalid_event_parameters_raise_value_error(event):
    with pytest.raises(ValueError):
        LmodpAccountant().compose(event)
    with pytest.raises(ValueError):
        from_dp_event(event)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ADD_OR_REMOVE_ONE"):
        LmodpAccountant(dp_accounting.NeighboringRelation.REPLACE_ONE)
    with pytest.raises(ValueError, match="DpEvent"):
        from_dp_event("gaussian")
    with pytest.raises(ValueError, match="delta"):
        LmodpAccountant().compose(dp_accounting.NonPrivateDpEvent()).get_epsilon(1.5)


def test_to_dp_event():
    assert to_dp_event(Mechanism(Gaussian(2.0), L2Ball(0.5), Poisson(0.1))) == dp_accounting.PoissonSampledDpEvent(
        0.1, dp_accounting.GaussianDpEvent(4.0)
    )
    assert to_dp_event(Mechanism(Laplace(3.0), Scalar(1.5))) == dp_accounting.LaplaceDpEvent(2.0)
    with pytest.raises(ValueError, match="no event"):
        to_dp_event(Mechanism(Laplace(1.0), L2Ball(1.0)))
    with pytest.raises(ValueError, match="no event"):
        to_dp_event(
            Mechanism(
                LMO(a1=0.1, a3=0.1, a4=0.1, gamma_shape=1.0, gamma_scale=0.5, exp_rate=5.0, unif_low=1.0, unif_high=2.0)
            )
        )
    with pytest.raises(ValueError, match="Mechanism"):
        to_dp_event(Gaussian(1.0))


def test_mechanism_to_dp_event_is_the_interop_function():
    mechanism = Mechanism(Gaussian(2.0), L2Ball(0.5), Poisson(0.1))
    assert mechanism.to_dp_event() == to_dp_event(mechanism)
    with pytest.raises(ValueError, match="no event"):
        Mechanism(Laplace(1.0), L2Ball(1.0), Poisson(1.0)).to_dp_event()


@settings(max_examples=25, deadline=None)
@given(sigma=st.floats(0.1, 50.0), clip=st.floats(0.1, 10.0), q=st.floats(1e-4, 1.0), gaussian=st.booleans())
def test_round_trip_keeps_the_privacy_of_the_mechanism(sigma, clip, q, gaussian):
    """from_dp_event(to_dp_event(m)) is m in clip units: the same noise-to-radius ratio and sampling."""
    noise, geometry = (Gaussian(sigma), L2Ball(clip)) if gaussian else (Laplace(sigma), L1Ball(clip))
    ((back, count),) = from_dp_event(to_dp_event(Mechanism(noise, geometry, Poisson(q)))).ledger
    assert count == 1 and back.sampling == Poisson(q) and type(back.geometry) is type(geometry)
    assert back.geometry.radius == 1.0 and type(back.noise) is type(noise)
    assert math.isclose(back.noise.typical_scale, sigma / clip, rel_tol=1e-12)
