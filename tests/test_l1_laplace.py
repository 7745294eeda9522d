"""Laplace noise under L1Ball is accounted with the 1-D pair at the clip (docs/accounting.md, "Laplace under
L1Ball"): checked against exact hockey-stick curves of 2- and 3-coordinate shifts (quadrature of closed forms)."""

import itertools
import math

import pytest
from scipy import integrate

from lmodp_core import L1Ball, Laplace, Poisson, Scalar
from lmodp_core.mechanism import Mechanism
from lmodp_core.pld import pld_delta, pld_epsilon, supports

EPSILONS = (0.0, 0.1, 0.4, 0.9, 1.5, 2.5)


def laplace_delta(t: float, shift: float) -> float:
    """delta(t) of Lap(shift, 1) vs Lap(0, 1) at any real t: 1 - e^{(t-s)/2} on |t| <= s."""
    if t >= shift:
        return 0.0
    return 1.0 - math.exp(t) if t <= -shift else 1.0 - math.exp(0.5 * (t - shift))


def composed_delta(t: float, shifts: tuple) -> float:
    """delta(t) of the product pair (Lap(v_i)) vs (Lap(0)), by conditioning on the first coordinate's privacy loss
    L (under P: atoms 1/2 at +s and e^{-s}/2 at -s, density e^{(l-s)/2}/4 on (-s, s))."""
    first, rest = shifts[0], shifts[1:]
    if not rest:
        return laplace_delta(t, first)

    def inner(u):
        return composed_delta(u, rest)

    def density(loss):
        return 0.25 * math.exp(0.5 * (loss - first)) * inner(t - loss)

    kinks = {t - sum(signs) for signs in itertools.product(*[(-s, 0.0, s) for s in rest])}
    points = sorted(k for k in kinks if -first < k < first) or None
    continuous = integrate.quad(density, -first, first, points=points, epsabs=1e-13, epsrel=1e-10, limit=200)[0]
    return 0.5 * inner(t - first) + 0.5 * math.exp(-first) * inner(t + first) + continuous


def subsampled_delta(epsilon: float, shifts: tuple, rate: float) -> float:
    """max(remove, add) delta of the Poisson mixture, from the unsampled curve at real arguments (likelihood ratio X
    of the unsampled pair: remove = q E_Q[(X - k)_+], add = e^eps q E_Q[(k' - X)_+], E_Q[X] = 1)."""
    remove = rate * composed_delta(math.log((math.exp(epsilon) - 1.0 + rate) / rate), shifts)
    k = (1.0 - math.exp(epsilon) * (1.0 - rate)) / (math.exp(epsilon) * rate)
    add = 0.0 if k <= 0 else math.exp(epsilon) * rate * (k - 1.0 + composed_delta(math.log(k), shifts))
    return max(remove, add)


def test_l1_laplace_is_supported_and_equals_the_scalar_answer():
    l1 = [(Mechanism(Laplace(0.7), L1Ball(1.3), Poisson(0.05)), 20)]
    scalar = [(Mechanism(Laplace(0.7), Scalar(1.3), Poisson(0.05)), 20)]
    assert supports(l1[0][0])
    assert pld_epsilon(l1, 1e-6) == pld_epsilon(scalar, 1e-6)


def test_two_coordinate_closed_form():
    # a <= c, 0 <= t <= C = a + c: delta = 1 - (1 + a/2) e^{(t-C)/2} for t <= c - a, else 1 - (1 + (C-t)/4) e^{(t-C)/2}
    a, c = 0.3, 1.1
    for t in (0.0, 0.5, 0.8, 1.2):
        gap = a / 2 if t <= c - a else (a + c - t) / 4
        assert composed_delta(t, (a, c)) == pytest.approx(1.0 - (1.0 + gap) * math.exp(0.5 * (t - a - c)), abs=1e-12)


@pytest.mark.parametrize("scale", [0.3, 1.0, 3.0])
@pytest.mark.parametrize("rate", [1.0, 0.5, 0.01])
def test_split_shifts_never_exceed_the_l1_answer(scale, rate):
    ledger = [(Mechanism(Laplace(scale), L1Ball(1.0), Poisson(rate)), 1)]
    splits = [(0.5, 0.5), (0.1, 0.9), (1 / 3, 1 / 3, 1 / 3), (0.6, 0.2, 0.2)]
    for epsilon in EPSILONS:
        upper = pld_delta(ledger, epsilon).upper
        one_d = subsampled_delta(epsilon, (1.0 / scale,), rate)
        assert upper >= one_d - 1e-12
        for split in splits:
            assert subsampled_delta(epsilon, tuple(v / scale for v in split), rate) <= one_d + 1e-12


def test_laplace_event_agrees_with_dp_accounting_pld():
    dp_accounting = pytest.importorskip("dp_accounting")
    from dp_accounting.pld import pld_privacy_accountant

    from lmodp_core.interop import LmodpAccountant

    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.05, dp_accounting.LaplaceDpEvent(2.0)), 50
    )
    ours = LmodpAccountant().compose(event).get_epsilon(1e-5)
    theirs = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4).compose(event).get_epsilon(1e-5)
    assert abs(ours - theirs) <= 2e-3 * theirs
