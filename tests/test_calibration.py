"""calibrate(): one calibrator, returning the certified noise with its EpsilonReport; every caller uses it."""

import math

import pytest

from lmodp_core import Accountant, Calibration, Gaussian, L2Ball, Laplace, Poisson, Scalar, calibrate, compute_epsilon
from lmodp_core.search import optimize_noise

DP_SGD = dict(target_epsilon=1.0, target_delta=1e-5)  # with q = 0.01, T = 1000
CASES = [
    (Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 1000, "auto"),
    (Laplace(1.0), Scalar(1.0), Poisson(1.0), 10, "rdp"),
]


@pytest.mark.parametrize("noise, geometry, sampling, steps, method", CASES)
def test_the_report_is_the_certificate_of_the_returned_noise(noise, geometry, sampling, steps, method):
    calibration = calibrate(noise, geometry, sampling, steps, method=method, **DP_SGD)
    assert isinstance(calibration, Calibration) and type(calibration.noise) is type(noise)
    fresh = Accountant(calibration.noise, geometry, sampling, method=method).step(steps).report(1e-5)
    assert calibration.report == fresh and calibration.epsilon == fresh.epsilon <= 1.0
    assert calibration.report.delta == 1e-5 and calibration.report.steps == steps
    assert 2 <= calibration.evaluations <= 10
    # within rtol = 1e-3 of the smallest scale: a scale smaller by the tolerance misses the target
    smaller = calibration.noise.scaled(1.0 / 1.001)
    assert Accountant(smaller, geometry, sampling, method=method).step(steps).get_epsilon(1e-5) > 1.0


@pytest.mark.parametrize("time_limit", [0.0, -1.0, math.nan, "1", None, True])
def test_a_bad_time_limit_raises(time_limit):
    with pytest.raises(ValueError, match="time_limit"):
        calibrate(Laplace(1.0), Scalar(1.0), Poisson(1.0), 10, method="rdp", time_limit=time_limit, **DP_SGD)


@pytest.mark.parametrize("pld_rtol", [0.0, 1e-6, 0.9, math.nan, "1e-2"])
def test_a_bad_pld_rtol_raises(pld_rtol):
    with pytest.raises(ValueError, match="rtol"):
        calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 1000, pld_rtol=pld_rtol, **DP_SGD)
    with pytest.raises(ValueError, match="rtol"):
        compute_epsilon(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 1000, 1e-5, pld_rtol=pld_rtol)


def test_a_looser_pld_rtol_is_still_certified_and_costs_at_most_its_tolerance_in_scale():
    default = calibrate(Laplace(1.0), L2Ball(1.0), Poisson(0.01), 100, **DP_SGD)
    loose = calibrate(Laplace(1.0), L2Ball(1.0), Poisson(0.01), 100, pld_rtol=1e-2, **DP_SGD)
    fresh = Accountant(loose.noise, L2Ball(1.0), Poisson(0.01)).step(100).get_epsilon(1e-5)
    assert loose.epsilon <= 1.0 and fresh <= 1.0
    assert 1.0 / 1.002 <= loose.noise.scale / default.noise.scale <= 1.01


def test_the_time_limit_bounds_a_calibration():
    with pytest.raises(ValueError, match="time_limit of 1e-09 s"):
        calibrate(Laplace(1.0), Scalar(1.0), Poisson(1.0), 10, method="rdp", time_limit=1e-9, **DP_SGD)
    unlimited = calibrate(Laplace(1.0), Scalar(1.0), Poisson(1.0), 10, method="rdp", time_limit=math.inf, **DP_SGD)
    assert unlimited.epsilon <= 1.0


def test_make_private_and_optimize_noise_calibrate_the_same_gaussian():
    """One calibrator: the Gaussian that make_private calibrates for a target is the one optimize_noise reports
    (they used to differ in the fourth digit: two calibrators with different tolerances)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("opacus")
    from torch.utils.data import DataLoader, TensorDataset

    from lmodp_torch import make_private

    model = torch.nn.Linear(3, 1)
    loader = DataLoader(TensorDataset(torch.zeros(100, 3), torch.zeros(100)), batch_size=1)  # q = 0.01
    private = make_private(
        model, torch.optim.SGD(model.parameters(), lr=0.1), loader, noise=Gaussian(1.0), clip=2.0, epochs=10, **DP_SGD
    )  # 10 passes of 100 batches: 1000 steps
    searched = optimize_noise(1.0, 1e-5, 1000, 0.01, families=("gaussian",), cache=False, n_jobs=1)
    direct = calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 1000, **DP_SGD)
    assert private.noise == searched.noise == direct.noise
    assert searched.epsilon == direct.epsilon <= 1.0
