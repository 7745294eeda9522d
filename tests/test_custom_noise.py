"""User densities: zero-density regions, jumps (no L2 bound), symmetry in the tails, PLD only where proven."""

import math

import numpy as np
import pytest

from lmodp_core import (
    Accountant,
    CustomNoise,
    L1Ball,
    L2Ball,
    Mechanism,
    Poisson,
    Scalar,
    calibrate,
    compute_epsilon,
    step_rdp,
)
from lmodp_core.pld import shift_dominates, supports, uses_profile_pairs


def _uniform(x):
    x = np.asarray(x, dtype=float)
    return np.where(np.abs(x) <= 1.0, math.log(0.5), -np.inf)


def _two_level(x):  # 0.4 on |x| < 1, then 0.1 e^{-(|x| - 1)}: jumps 0.4 -> 0.1 at +-1, full support
    x = np.abs(np.asarray(x, dtype=float))
    return np.where(x < 1.0, math.log(0.4), math.log(0.1) - (x - 1.0))


def _gauss(x):
    return -0.5 * np.asarray(x, dtype=float) ** 2 - 0.5 * math.log(2 * math.pi)


UNIFORM = CustomNoise(_uniform, kinks=(-1.0, 1.0), name="uniform")
TWO_LEVEL = CustomNoise(_two_level, kinks=(-1.0, 0.0, 1.0), name="two-level")


def test_zero_density_region_gives_infinite_rdp_and_epsilon():
    assert np.all(np.isinf(step_rdp(UNIFORM, Scalar(1.0), None, [1.5, 2.0, 10.0])))
    for method in ("rdp", "auto"):
        assert compute_epsilon(UNIFORM, Scalar(1.0), Poisson(1.0), 1, 1e-5, method=method) == math.inf


def test_jumps_make_fisher_information_infinite_and_l2_epsilon_infinite_with_a_reason():
    assert UNIFORM.fisher_information == math.inf and TWO_LEVEL.fisher_information == math.inf
    report = Accountant(TWO_LEVEL, L2Ball(1.0), Poisson(0.1)).step(10).report(1e-5)
    assert report.epsilon == math.inf and "not smooth" in report.notes[0]
    with pytest.raises(ValueError, match="no dimension-free L2 bound"):
        calibrate(TWO_LEVEL, L2Ball(1.0), Poisson(0.1), 10, target_epsilon=1.0, target_delta=1e-5)


def test_l1_uses_the_small_shift_slope_of_a_density_with_jumps():
    # a jump from 0.4 to 0.1 at x = 1 (and its mirror) with shift s: r_a(s)/s -> sum (L^a R^{1-a} - R)/(a-1)
    order = 2.0
    slope = (0.4**2 / 0.1 - 0.1) + (0.1**2 / 0.4 - 0.4)  # jumps at +1 (0.4 -> 0.1) and -1 (0.1 -> 0.4)
    assert TWO_LEVEL.small_shift_slope([order])[0] == pytest.approx(slope, rel=1e-6)
    l1 = step_rdp(TWO_LEVEL, L1Ball(0.5), None, [order])[0]
    assert math.isfinite(l1) and l1 >= 0.5 * slope


def test_smooth_custom_density_keeps_a_finite_fisher_information():
    noise = CustomNoise(_gauss, scale=2.0, name="gauss")
    assert not noise.has_jumps
    assert noise.fisher_information == pytest.approx(0.25, rel=1e-6)


def test_symmetry_is_checked_in_the_tails():
    def skewed(x):  # the mass above 6 moved below -6
        x = np.asarray(x, dtype=float)
        return np.where(x > 6, -np.inf, np.where(x < -6, _gauss(x) + math.log(2.0), _gauss(x)))

    with pytest.raises(ValueError, match="symmetric"):
        CustomNoise(skewed, kinks=(-6.0, 0.0, 6.0))


def test_user_densities_get_a_profile_pair_instead_of_an_unproven_dominating_shift():
    noise = CustomNoise(_gauss, name="gauss")
    mechanism = Mechanism(noise, Scalar(1.0))
    assert not shift_dominates(mechanism) and supports(mechanism)
    assert uses_profile_pairs([(mechanism, 1)])
    assert Accountant(noise, Scalar(1.0), Poisson(1.0)).step(1).pld_supported()


def test_state_dict_keys_custom_densities_by_name_or_refuses():
    def laplace(x):
        return -np.abs(np.asarray(x, dtype=float)) - math.log(2.0)

    a, b = CustomNoise(_gauss, name="gauss"), CustomNoise(laplace, name="laplace")
    acc = Accountant(a, Scalar(1.0), Poisson(1.0), method="rdp", orders=[2.0, 8.0]).step(2).step(3, noise=b)
    with pytest.raises(ValueError, match="logpdf=\\{name: callable\\}"):
        Accountant.from_state_dict(acc.state_dict(), logpdf=_gauss)
    with pytest.raises(ValueError, match="no entry for the CustomNoise 'laplace'"):
        Accountant.from_state_dict(acc.state_dict(), logpdf={"gauss": _gauss})
    restored = Accountant.from_state_dict(acc.state_dict(), logpdf={"gauss": _gauss, "laplace": laplace})
    assert restored.get_epsilon(1e-5) == acc.get_epsilon(1e-5)
