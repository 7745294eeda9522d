"""Certified sups over shifts: Laplace closed forms; LMO's monotone sups (Scalar at the sensitivity, L1 by brackets);
envelope bounds and their branch and bound (Scalar, symmetric unimodal densities without a dominance proof)."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lmodp_core import LMO, CustomNoise, L1Ball, L2Ball, Laplace, Scalar
from lmodp_core.rdp import (
    certified_sup,
    per_step,
    renyi_poisson_mixture,
    renyi_shift,
    scalar_subsampled_rdp,
    unsampled_rdp,
)
from lmodp_core.rdp.certified_sup import MONOTONE_TOLERANCE, RELATIVE_TOLERANCE, envelope_renyi, scalar_sup
from lmodp_core.rdp.per_step import SUP_MARGIN, sup_over_shifts

from .conftest import PAPER_03

FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ORDERS = np.array([1.5, 4.0, 32.0])
LMO_03 = LMO(**PAPER_03)


def _numerical_sup(noise, radius, orders):
    return sup_over_shifts(lambda s: renyi_shift(noise, s, orders), radius, orders) * (1.0 + SUP_MARGIN)


def test_laplace_sups_are_the_closed_forms_and_bound_a_dense_shift_grid():
    noise, radius = Laplace(0.7), 1.3
    shifts = np.linspace(1e-4, radius, 2000)
    values = renyi_shift(noise, shifts, ORDERS)
    for geometry, power in ((Scalar(radius), 0), (L1Ball(radius), 1), (L2Ball(radius), 2)):
        dense = (values * (radius / shifts[:, None]) ** power).max(axis=0)
        certified = unsampled_rdp(noise, geometry, ORDERS)
        assert np.all(certified >= dense)
        assert np.allclose(certified, dense, rtol=1e-3)  # attained at s = C (Scalar, L1), approached at 0 (L2)
    assert np.allclose(unsampled_rdp(noise, L2Ball(radius), ORDERS), ORDERS * radius**2 / (2 * 0.7**2))


def test_lmo_scalar_sup_is_the_value_at_the_sensitivity_and_bounds_a_dense_grid():
    radius = 2.0
    certified = unsampled_rdp(LMO_03, Scalar(radius), ORDERS)
    assert np.array_equal(certified, renyi_shift(LMO_03, [radius], ORDERS)[0])
    shifts = np.concatenate([np.geomspace(1e-6, 1e-3, 20) * radius, np.linspace(radius / 250, radius, 250)])
    dense = renyi_shift(LMO_03, shifts, ORDERS).max(axis=0)
    assert np.all(certified >= dense)


def test_the_envelope_branch_and_bound_stays_within_its_tolerance_of_the_numerical_sup():
    radius = 2.0
    certified = scalar_sup(LMO_03, radius, ORDERS, lambda shifts, some: renyi_shift(LMO_03, shifts, some))
    numerical = _numerical_sup(LMO_03, radius, ORDERS)
    assert np.all(certified >= numerical / (1.0 + SUP_MARGIN) * (1.0 - 1e-9))
    assert np.all(certified <= numerical * (1.0 + RELATIVE_TOLERANCE + SUP_MARGIN))


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_lmo_l1_certified_sup_bounds_a_dense_grid_within_its_tolerance(scale):
    noise, radius, orders = LMO_03.scaled(scale), 1.0, np.array([1.5, 4.0, 32.0, 256.0])
    certified = unsampled_rdp(noise, L1Ball(radius), orders)
    shifts = np.concatenate([np.geomspace(1e-7, 1e-2, 30), np.linspace(0.01, radius, 600)]) * radius
    dense = (renyi_shift(noise, shifts, orders) * radius / shifts[:, None]).max(axis=0)
    assert np.all(certified >= dense)
    assert np.all(certified[:2] <= dense[:2] * (1.0 + MONOTONE_TOLERANCE))  # within budget at these orders
    assert np.all(certified <= dense * 1.05)


@FAST
@given(st.floats(1e-3, 2.0), st.floats(0.0, 1.0), st.sampled_from([1.1, 2.0, 16.0, 256.0]), st.floats(0.2, 5.0))
@example(left=1.5, step=2.220446049250313e-16, order=1.1, scale=2.0)  # two shifts one ulp apart
def test_the_lipschitz_bracket_bounds_every_larger_shift(left, step, order, scale):
    noise, orders = LMO_03.scaled(scale), np.array([order])
    right = left + step
    lipschitz = noise.log_density_lipschitz
    low, high = renyi_shift(noise, [left, right], orders)[:, 0]
    # Non-decreasing in the shift (the dominance proof); the quadrature's round-off is ~1e-15 relative, which
    # decides the order of two shifts one ulp apart.
    assert low <= high * (1.0 + 1e-12)
    assert high <= low + order * lipschitz / (order - 1.0) * step * (1.0 + 1e-9) + 1e-12


@FAST
@given(
    st.floats(0.05, 1.0),
    st.floats(0.05, 1.0),
    st.floats(0.05, 1.0),
    st.floats(0.5, 3.0),
    st.floats(0.2, 5.0),
    st.sampled_from([1.5, 8.0, 64.0]),
)
def test_the_certified_l1_sup_of_random_lmo_shapes_bounds_a_dense_grid(a1, a3, a4, shape, scale, order):
    noise = LMO(a1, a3, a4, shape, 0.5, 5.0, 1.0, 2.0, scale=scale)
    orders = np.array([order])
    certified = unsampled_rdp(noise, L1Ball(1.0), orders)[0]
    shifts = np.concatenate([np.geomspace(1e-6, 1e-2, 8), np.linspace(0.01, 1.0, 300)])
    dense = renyi_shift(noise, shifts, orders)[:, 0] / shifts
    assert certified >= dense.max() * (1.0 - 1e-9)


def test_out_of_budget_the_l1_bound_is_looser_but_still_sound(monkeypatch):
    noise, orders = LMO_03.scaled(0.5), np.array([2.0, 32.0])
    tight = unsampled_rdp(noise, L1Ball(1.0), orders)
    monkeypatch.setattr(certified_sup, "_MAX_MONOTONE_EVALUATIONS", 10)
    loose = unsampled_rdp(noise, L1Ball(1.0), orders)
    assert np.all(loose >= tight) and np.any(loose > tight * (1.0 + MONOTONE_TOLERANCE))


@FAST
@given(
    st.floats(0.01, 3.0),
    st.floats(1e-3, 0.5),
    st.floats(0.0, 1.0),
    st.sampled_from([1.1, 2.0, 9.0, 64.0]),
    st.sampled_from([1.0, 0.3, 0.01]),
)
def test_the_envelope_bounds_every_shift_of_its_interval(lower, relative_width, position, order, sample_rate):
    upper = lower * (1.0 + relative_width)
    shift = lower + position * (upper - lower)
    orders = np.array([order])
    bound = envelope_renyi(LMO_03, lower, upper, orders, sample_rate)[0]
    assert np.max(renyi_poisson_mixture(LMO_03, shift, sample_rate, orders)) <= bound


@pytest.mark.parametrize("rate", [0.1, 1e-3])
def test_lmo_subsampled_scalar_sup_is_at_the_sensitivity_and_the_envelope_bound_holds(rate):
    orders = np.array([2.0, 16.0])
    certified = scalar_subsampled_rdp(LMO_03, 1.0, rate, orders)
    assert np.array_equal(certified, np.maximum(*renyi_poisson_mixture(LMO_03, 1.0, rate, orders)))
    shifts = np.linspace(0.02, 1.0, 50)
    dense = np.max([np.maximum(*renyi_poisson_mixture(LMO_03, s, rate, orders)) for s in shifts], axis=0)
    assert np.all(certified >= dense)

    def both_directions(shifts, some=orders):
        return np.array([np.maximum(*renyi_poisson_mixture(LMO_03, x, rate, some)) for x in shifts])

    enveloped = scalar_sup(LMO_03, 1.0, orders, both_directions, rate)
    assert np.all(enveloped >= certified * (1.0 - 1e-9))
    assert np.all(enveloped <= certified * (1.0 + RELATIVE_TOLERANCE))


def test_out_of_budget_the_envelope_bound_is_looser_but_still_sound(monkeypatch):
    def point(shifts, some):
        return renyi_shift(LMO_03, shifts, some)

    tight = scalar_sup(LMO_03, 1.0, ORDERS, point)
    monkeypatch.setattr(certified_sup, "_MAX_ENVELOPES", 4)
    loose = scalar_sup(LMO_03, 1.0, ORDERS, point)
    assert np.all(loose >= tight) and np.any(loose > tight * (1.0 + RELATIVE_TOLERANCE))


def test_a_density_not_declared_unimodal_keeps_the_numerical_sup(monkeypatch):
    def two_bumps(x):  # symmetric, not unimodal: modes at +-1
        x = np.asarray(x, dtype=float)
        return np.logaddexp(-0.5 * (x - 1.0) ** 2, -0.5 * (x + 1.0) ** 2) - math.log(2 * math.sqrt(2 * math.pi))

    noise = CustomNoise(two_bumps, name="two-bumps")
    assert not noise.symmetric_unimodal and LMO_03.symmetric_unimodal

    def refuse(*args):
        raise AssertionError("the envelope branch and bound needs a symmetric unimodal density")

    monkeypatch.setattr(per_step, "scalar_sup", refuse)
    orders = np.array([2.0])
    assert np.allclose(unsampled_rdp(noise, Scalar(1.0), orders), _numerical_sup(noise, 1.0, orders))


def test_the_l1_sup_does_not_depend_on_what_was_computed_before():
    """LMO's L1 sup runs at unit scale on a fixed lattice of shifts and memoises the values per shape: the answer
    for a scale is the same whether other scales of the shape were computed before or not."""
    orders = np.array([1.5, 8.0, 64.0])
    noise = LMO_03.scaled(1.3)
    per_step._shift_memo.cache_clear()
    alone = unsampled_rdp(noise, L1Ball(1.0), orders)
    per_step._shift_memo.cache_clear()
    for factor in (1.25, 1.31, 1.29):
        unsampled_rdp(LMO_03.scaled(factor), L1Ball(1.0), orders)
    assert np.array_equal(unsampled_rdp(noise, L1Ball(1.0), orders), alone)
    shifts = np.linspace(1e-3, 1.0, 400)
    assert np.all(alone >= (renyi_shift(noise, shifts, orders) / shifts[:, None]).max(axis=0) * (1.0 - 1e-9))
