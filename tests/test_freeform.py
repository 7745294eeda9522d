"""The free-form ("piecewise") family of optimize_noise: certified, never worse than the others, skips L2."""

import math

import numpy as np
import pytest

from lmodp_core import Gaussian, L1Ball, L2Ball, PiecewiseNoise, Poisson, Scalar
from lmodp_core.accountant import Accountant
from lmodp_core.calibration import calibrate
from lmodp_core.search import SearchBudget, freeform, optimize_noise

TARGET = {"target_epsilon": 3.0, "target_delta": 1e-5, "steps": 10, "sample_rate": 1.0}


def _sound_epsilon(noise, geometry=Scalar(1.0)) -> float:
    accountant = Accountant(noise, geometry, Poisson(TARGET["sample_rate"]), method="auto")
    return accountant.step(TARGET["steps"]).report(TARGET["target_delta"]).epsilon


def _free_form_search(target: dict, geometry, evaluations: int, method: str = "auto"):
    """optimize_noise with the Gaussian and ``evaluations`` free-form calibrations, uncached, in this process."""
    return optimize_noise(
        **target,
        geometry=geometry,
        families=("gaussian", "piecewise"),
        method=method,
        cache=False,
        n_jobs=1,
        piecewise_evaluations=evaluations,
    )


def _recorded_precisions(monkeypatch) -> list:
    """The ``pld_rtol`` of every calibration the search runs from now on (None: the default precision)."""
    from lmodp_core.search import problem as problem_module

    seen = []
    original = problem_module.Problem.calibrate

    def recording(self, noise, method):
        seen.append(self.pld_rtol)
        return original(self, noise, method)

    monkeypatch.setattr(problem_module.Problem, "calibrate", recording)
    return seen


def test_optimised_histogram_is_certified_and_beats_the_gaussian():
    """Scalar, T=10, q=1, eps=3: the optimised histogram meets the target (re-checked by the accountant) and needs
    less noise than the PLD-calibrated Gaussian."""
    result = _free_form_search(TARGET, Scalar(1.0), 12)
    assert isinstance(result.noise, PiecewiseNoise) and result.family == "piecewise"
    assert result.epsilon <= TARGET["target_epsilon"] and _sound_epsilon(result.noise) <= TARGET["target_epsilon"]
    assert result.ratio_to_gaussian < 0.99
    assert result.stats["piecewise_evaluations"] == 12
    assert any(note.startswith("piecewise: best of 12") for note in result.notes)


def test_shapes_are_ranked_at_the_cheaper_precision_and_the_winner_is_certified_at_the_default(monkeypatch):
    """The free-form search calibrates its shapes at ``RANKING_PLD_RTOL`` and its winner once more at the default:
    the winner is then as small as a default-precision calibration of its shape makes it."""
    from lmodp_core.search.problem import RANKING_PLD_RTOL

    seen = _recorded_precisions(monkeypatch)
    result = _free_form_search({**TARGET, "sample_rate": 0.05}, L1Ball(1.0), 4)
    assert seen.count(RANKING_PLD_RTOL) == 4 and seen[-1] is None
    winner = {c.family: c for c in result.candidates}["piecewise"]
    again = calibrate(
        winner.noise,
        L1Ball(1.0),
        Poisson(0.05),
        TARGET["steps"],
        target_epsilon=TARGET["target_epsilon"],
        target_delta=TARGET["target_delta"],
    )
    assert winner.epsilon <= TARGET["target_epsilon"] and again.noise.std >= winner.noise.std / 1.0011


def test_under_rdp_the_winner_is_not_calibrated_twice(monkeypatch):
    """method="rdp" involves no PLD answer: the ranked calibration already has the default precision."""
    seen = _recorded_precisions(monkeypatch)
    _free_form_search(TARGET, Scalar(1.0), 2, method="rdp")
    assert len(seen) == 3  # the Gaussian (always "auto") and the two histograms


def test_never_worse_than_the_best_other_family():
    """Scalar, T=100, q=1: one calibration (the discretised Gaussian) loses to the Gaussian; the histogram is
    reported but the Gaussian is chosen."""
    result = optimize_noise(
        1.0,
        1e-5,
        100,
        1.0,
        geometry=Scalar(1.0),
        families=("gaussian", "piecewise"),
        cache=False,
        n_jobs=1,
        piecewise_evaluations=1,
    )
    by_family = {c.family: c for c in result.candidates}
    assert by_family["piecewise"].objective > by_family["gaussian"].objective
    assert result.family == "gaussian" and isinstance(result.noise, Gaussian)
    assert any("the Gaussian wins" in note and "piecewise" in note for note in result.notes)


def test_l2_geometry_skips_the_family_with_a_note():
    result = optimize_noise(
        1.0, 1e-5, 10, 0.01, geometry=L2Ball(1.0), families=("gaussian", "piecewise"), cache=False, n_jobs=1
    )
    assert result.family == "gaussian"
    assert "piecewise" not in {c.family for c in result.candidates}
    assert any("no dimension-free L2 bound" in note for note in result.notes)
    with pytest.raises(ValueError, match="no dimension-free L2 bound"):
        optimize_noise(1.0, 1e-5, 10, 0.01, geometry=L2Ball(1.0), families="piecewise", cache=False, n_jobs=1)


@pytest.mark.parametrize("budget", [0, -3, 2.5, True, "10", None, freeform.MAX_EVALUATIONS + 1])
def test_bad_budget_raises(budget):
    with pytest.raises(ValueError, match="piecewise_evaluations"):
        optimize_noise(**TARGET, geometry=Scalar(1.0), families="piecewise", piecewise_evaluations=budget)


def test_shape_is_a_normalised_monotone_density_holding_the_warm_start():
    """Every parameter vector maps to a valid density; fitting a Gaussian recovers it to within the bins."""
    start = Gaussian(2.0)
    shape = freeform._bins(start, 1.0)
    fitted = shape.noise(shape.fit(start))
    assert fitted.std == pytest.approx(2.0, rel=0.02)
    for x in (np.zeros(freeform._KNOTS), np.random.default_rng(0).normal(size=freeform._KNOTS) * 30.0):
        noise = shape.noise(x)
        values = np.asarray(noise.values)
        assert np.all(np.diff(values) <= 0.0) and 0.0 < noise.tail_ratio < 1.0
        assert noise.bin_width * (values[0] + 2.0 * values[1:].sum()) + 2.0 * noise.bin_width * values[-1] * (
            noise.tail_ratio / (1.0 - noise.tail_ratio)
        ) == pytest.approx(1.0, abs=1e-9)
        assert math.isfinite(noise.std)


def test_l1_bound_of_a_steep_histogram_is_finite():
    """The L1 per-step sup of a steep histogram: moments overflow at high orders without making the bound NaN
    (it was a ValueError "rdp values must be >= 0" that dropped the family for L1 with sampling)."""
    noise = PiecewiseNoise.normalised(0.25, np.exp(-2.0 * np.arange(20)), tail_ratio=math.exp(-2.0))
    epsilon = Accountant(noise, L1Ball(1.0), Poisson(0.01), method="rdp").step(100).report(1e-5).epsilon
    assert math.isfinite(epsilon) and epsilon > 0.0


def test_the_background_free_form_search_gives_the_sequential_result():
    """With n_jobs > 1 the free-form family runs in a second process beside the LMO refinement (warm-started from
    the best of the Gaussian, Laplace and the screened LMO); the result, notes and counters equal the sequential
    search's."""
    kwargs = dict(
        geometry=Scalar(1.0),
        cache=False,
        piecewise_evaluations=4,
        budget=SearchBudget(screen_top=1, refine_starts=1, refine_evaluations=2),
    )
    sequential = optimize_noise(3.0, 1e-5, 10, 1.0, n_jobs=1, **kwargs)
    concurrent = optimize_noise(3.0, 1e-5, 10, 1.0, n_jobs=2, **kwargs)
    assert concurrent.noise == sequential.noise and concurrent.objective == sequential.objective
    assert concurrent.notes == sequential.notes
    assert {k: v for k, v in concurrent.stats.items() if k != "seconds"} == {
        k: v for k, v in sequential.stats.items() if k != "seconds"
    }


def test_an_error_in_the_lmo_search_stops_the_background_free_form_search(monkeypatch):
    import lmodp_core.search as search_package
    from lmodp_core.search import parallel

    cancelled = []
    original_cancel = parallel.Background.cancel

    def cancel(self):
        cancelled.append(True)
        original_cancel(self)

    def failing_lmo_search(problem, shapes, table, gaussian, rivals, run, budget, on_calibrated):
        on_calibrated(gaussian)  # starts the free-form process
        raise RuntimeError("boom")

    monkeypatch.setattr(parallel.Background, "cancel", cancel)
    monkeypatch.setattr(search_package, "search_lmo", failing_lmo_search)
    with pytest.raises(RuntimeError, match="boom"):
        optimize_noise(3.0, 1e-5, 10, 1.0, geometry=Scalar(1.0), cache=False, n_jobs=2, piecewise_evaluations=2)
    assert cancelled == [True]
