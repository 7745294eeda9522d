"""optimize_noise: sound calibration per shape, the Gaussian for L2 DP-SGD, non-Gaussian wins in low dimension."""

import json
import math

import numpy as np
import pytest

from lmodp_core import LMO, Gaussian, L1Ball, L2Ball, Laplace, Poisson, Scalar, search
from lmodp_core.accountant import Accountant
from lmodp_core.accountant import compute_epsilon as sound_epsilon
from lmodp_core.calibration import calibrate
from lmodp_core.search import OptimizeResult, SearchBudget, optimize_noise
from lmodp_core.search.grid import grid_spec, grid_table, lmo_grid

SMALL_GRID = {
    "PAPER_WEIGHTS": (0.1, 0.9),
    "PAPER_GAMMAS": ((0.5, 1.0),),
    "PAPER_RATES": (5.0,),
    "PAPER_UNIFORMS": ((1.0, 2.0),),
}
SHORT_BUDGET = SearchBudget(screen_top=1, refine_evaluations=6)


@pytest.fixture
def small_search(monkeypatch):
    """A 4-shape grid, so that a full search with ``SHORT_BUDGET`` (a short refinement) runs in seconds."""
    for name, value in SMALL_GRID.items():
        monkeypatch.setattr(search.grid, name, value)


def _recertified(result, geometry, sample_rate, steps, delta=1e-5):
    """Each candidate's epsilon re-computed by a fresh accountant: what it claims, and at most the target."""
    target = result.inputs["target_epsilon"]
    for candidate in result.candidates:
        fresh = Accountant(candidate.noise, geometry, Poisson(sample_rate)).step(steps).get_epsilon(delta)
        assert fresh <= target and candidate.epsilon <= target
        assert fresh <= candidate.epsilon * (1 + 1e-9)  # "auto" is the tightest sound method: never above its claim


def test_l2_dp_sgd_default_returns_the_gaussian(tmp_path):
    """Must-show: the default L2 case (full paper grid) picks the Gaussian, with the numbers."""
    result = optimize_noise(1.0, 1e-5, 1000, 0.01, cache=tmp_path, n_jobs=1)
    assert isinstance(result.noise, Gaussian) and result.family == "gaussian"
    assert result.epsilon <= 1.0
    assert sound_epsilon(result.noise, L2Ball(1.0), Poisson(0.01), 1000, 1e-5) <= 1.0
    reference = calibrate(Gaussian(1.0), L2Ball(1.0), Poisson(0.01), 1000, target_epsilon=1.0, target_delta=1e-5)
    assert result.noise == reference.noise and result.epsilon == reference.epsilon  # one calibrator
    assert result.ratio_to_gaussian == 1.0
    by_family = {c.family: c for c in result.candidates}
    assert set(by_family) == {"lmo", "gaussian", "laplace"}
    # every candidate is calibrated soundly, and the LMO needs at least sqrt(2) x the Gaussian's std
    assert all(c.epsilon <= 1.0 for c in result.candidates)
    assert by_family["lmo"].objective >= math.sqrt(2) * result.objective
    assert result.stats["lmo_shapes_screened"] > 20000
    assert any("Gaussian wins" in note for note in result.notes)


def test_grid_screening_shows_fisher_times_variance_at_least_two(tmp_path):
    shapes = lmo_grid(grid_spec())
    table = grid_table(shapes, "test", tmp_path, 1)
    variance, _, fisher, _ = table.T
    assert len(shapes) == 21996 and np.all(fisher * variance >= 2.0 * (1 - 1e-6))


def test_moment_table_matches_the_noise_properties():
    noises = [LMO.from_paper(params, scale=0.5 + i) for i, params in enumerate(lmo_grid(grid_spec())[::5000])]
    for lmo, (variance, mean_abs, fisher, lipschitz) in zip(noises, LMO.moment_table(noises)):
        assert variance == pytest.approx(lmo.variance, rel=1e-6)
        assert mean_abs == pytest.approx(lmo.mean_abs, rel=1e-6)
        assert fisher == pytest.approx(lmo.fisher_information, rel=1e-5)
        assert lipschitz == pytest.approx(abs(float(lmo.score(1e-12))), rel=1e-6)


def test_scalar_single_step_is_never_worse_than_any_family(small_search, tmp_path):
    """Must-show: steps=1, q=1, scalar: the result beats or ties every family's calibrated best."""
    result = optimize_noise(
        1.0,
        1e-5,
        1,
        1.0,
        geometry=Scalar(1.0),
        method="rdp",
        cache=tmp_path,
        n_jobs=1,
        piecewise_evaluations=4,
        budget=SHORT_BUDGET,
    )
    for family, method in ((Gaussian(1.0), "auto"), (Laplace(1.0), "rdp")):
        best = calibrate(family, Scalar(1.0), Poisson(1.0), 1, target_epsilon=1.0, target_delta=1e-5, method=method)
        assert result.objective <= best.noise.std * (1 + 2e-3)
    _recertified(result, Scalar(1.0), 1.0, 1)
    assert result.epsilon <= 1.0


def test_a_non_gaussian_family_wins_in_low_dimension(tmp_path):
    result = optimize_noise(1.0, 1e-5, 1, 1.0, geometry=Scalar(1.0), families=("gaussian", "laplace"), cache=tmp_path)
    assert result.family == "laplace" and result.ratio_to_gaussian < 0.5
    assert result.epsilon <= 1.0
    # closed form (docs/theory.md §6): delta(eps) = 1 - e^{(eps - 1/b)/2}, so b >= 1/(eps - 2 log(1 - delta))
    assert result.noise.scale >= 1.0 / (1.0 - 2.0 * math.log1p(-1e-5)) * (1 - 1e-9)
    gaussian = next(c for c in result.candidates if c.family == "gaussian")
    assert gaussian.noise.sigma == pytest.approx(3.730632, rel=2e-3)  # the analytic Gaussian, via PLD


def test_usefulness_objective_is_maximised(tmp_path):
    result = optimize_noise(
        1.0,
        1e-5,
        1,
        1.0,
        geometry=L1Ball(1.0),
        objective="usefulness",
        gamma=2.0,
        families=("gaussian", "laplace"),
        cache=tmp_path,
    )
    assert 0.0 < result.objective < 1.0
    _recertified(result, L1Ball(1.0), 1.0, 1)
    for candidate in result.candidates:  # each objective is the candidate's own P(|Z| <= gamma)
        assert candidate.objective == pytest.approx(1 - 2 * float(candidate.noise.sf(2.0)))


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("LMODP_CACHE_DIR", str(tmp_path))
    cold = optimize_noise(2.0, 1e-5, 10, 0.1, families=("gaussian", "laplace"))
    assert len(list(tmp_path.glob("search-*.json"))) == 1
    monkeypatch.setattr(search, "_search", None)  # a cached answer must not search again
    warm = optimize_noise(2.0, 1e-5, 10, 0.1, families=("gaussian", "laplace"))
    assert warm.to_dict() == cold.to_dict()
    assert OptimizeResult.from_dict(json.loads(cold.to_json())).to_dict() == cold.to_dict()


def test_cache_false_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LMODP_CACHE_DIR", str(tmp_path))
    optimize_noise(2.0, 1e-5, 10, 0.1, families=("gaussian",), cache=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((0.0, 1e-5, 10, 0.1), {}, "eps"),
        ((1.0, 1.0, 10, 0.1), {}, "delta"),
        ((1.0, 1e-5, 0, 0.1), {}, "steps"),
        ((1.0, 1e-5, 10, 1.5), {}, "sample_rate"),
        ((math.nan, 1e-5, 10, 0.1), {}, "eps"),
        ((1.0, 1e-5, 10, 0.1), {"objective": "variance"}, "objective"),
        ((1.0, 1e-5, 10, 0.1), {"families": ("student",)}, "families"),
        ((1.0, 1e-5, 10, 0.1), {"method": "exact"}, "method"),
        ((1.0, 1e-5, 10, 0.1), {"gamma": -1.0}, "gamma"),
        ((1.0, 1e-5, 10, 0.1), {"geometry": "l2"}, "geometry"),
        ((1.0, 1e-5, 10, 0.1), {"n_jobs": 0}, "n_jobs"),
        ((1.0, 1e-5, 10, 0.1), {"seed": -3}, "seed"),
    ],
)
def test_bad_inputs_raise(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        optimize_noise(*args, cache=False, **kwargs)


# ---- cache integrity and bounded searches (issue 12 §5, §6) -------------------------------------------------
GAUSSIAN_ONLY = dict(families=("gaussian",), n_jobs=1)


def _cached_search(tmp_path):
    result = optimize_noise(2.0, 1e-5, 10, 0.1, cache=tmp_path, **GAUSSIAN_ONLY)
    (path,) = tmp_path.glob("search-*.json")
    return result, path


def _poison(text):
    data = json.loads(text)
    data["noise"]["sigma"] = data["noise"]["sigma"] / 3.0  # claims a much smaller noise
    return json.dumps(data)


@pytest.mark.parametrize(
    "damage",
    [
        _poison,
        lambda text: text[: len(text) // 2],
        lambda text: "\x00garbage{",
        lambda text: "null",
        lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "noise"}),
        lambda text: text.replace('"sigma": ', '"sigma": NaN, "_was": ', 1),
        lambda text: "[1, 2]",
    ],
)
def test_a_damaged_cache_entry_is_a_miss_and_is_overwritten(tmp_path, damage):
    honest, path = _cached_search(tmp_path)
    path.write_text(damage(path.read_text()))
    again = optimize_noise(2.0, 1e-5, 10, 0.1, cache=tmp_path, **GAUSSIAN_ONLY)
    assert again.noise == honest.noise and again.epsilon <= 2.0
    assert json.loads(path.read_text())["noise"] == honest.noise.to_dict()


def test_a_truncated_grid_table_is_recomputed(tmp_path):
    shapes = lmo_grid(grid_spec())[:3]
    table = grid_table(shapes, "digest", tmp_path, 1)
    path = tmp_path / "lmo-grid-digest.npy"
    path.write_bytes(path.read_bytes()[:60])
    np.testing.assert_array_equal(grid_table(shapes, "digest", tmp_path, 1), table)
    assert np.load(path).shape == table.shape


def test_an_unusable_cache_warns_and_continues(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.warns(RuntimeWarning, match="cache is unusable"):
        result = optimize_noise(2.0, 1e-5, 10, 0.1, cache=blocker / "cache", **GAUSSIAN_ONLY)
    assert result.epsilon <= 2.0
    honest, path = _cached_search(tmp_path)
    path.unlink()
    path.mkdir()  # the entry cannot be written: a directory sits at its name
    with pytest.warns(RuntimeWarning, match="cache is unusable"):
        assert optimize_noise(2.0, 1e-5, 10, 0.1, cache=tmp_path, **GAUSSIAN_ONLY).noise == honest.noise


def _search_into(cache_dir):
    return optimize_noise(2.0, 1e-5, 10, 0.1, cache=cache_dir, **GAUSSIAN_ONLY).noise.sigma


def test_concurrent_writers_leave_a_valid_entry(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(2) as pool:
        sigmas = pool.map(_search_into, [str(tmp_path)] * 2)
    (path,) = tmp_path.glob("search-*.json")
    assert not list(tmp_path.glob(".*.tmp"))
    assert sigmas[0] == sigmas[1] == json.loads(path.read_text())["noise"]["sigma"]


@pytest.mark.parametrize("cache", [0, 1, [], 2.5, ""])
def test_cache_accepts_only_none_bool_or_a_path(cache):
    with pytest.raises(ValueError, match="cache must be"):
        optimize_noise(2.0, 1e-5, 10, 0.1, cache=cache, **GAUSSIAN_ONLY)


def test_a_family_that_cannot_meet_the_target_is_dropped_with_a_note():
    result = optimize_noise(1e-6, 1e-5, 1000, 0.01, families=("gaussian", "laplace"), cache=False, n_jobs=1)
    assert result.family == "gaussian" and result.epsilon <= 1e-6
    assert any(note.startswith("laplace: dropped") and "accounting can certify" in note for note in result.notes)
    with pytest.raises(ValueError, match="no family"):
        optimize_noise(1e-6, 1e-5, 1000, 0.01, families=("laplace",), cache=False, n_jobs=1)


def test_the_time_limit_bounds_a_search():
    with pytest.raises(ValueError, match="time_limit"):
        optimize_noise(2.0, 1e-5, 10, 0.1, cache=False, time_limit=1e-9, **GAUSSIAN_ONLY)
    with pytest.raises(ValueError, match="time_limit"):
        optimize_noise(2.0, 1e-5, 10, 0.1, cache=False, time_limit=0.0, **GAUSSIAN_ONLY)


class _RecordingBar:
    """Stands in for tqdm: records the shown fraction after every change of the count or the total."""

    def __init__(self, total):
        self.n, self._total, self.fractions = 0, total, []

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, value):
        self._total = value
        self.fractions.append(self.n / value)

    def update(self, count):
        self.n += count
        self.fractions.append(self.n / self._total)

    def refresh(self):
        pass

    def close(self):
        pass


def test_the_progress_bar_never_moves_backwards(small_search, tmp_path, monkeypatch):
    bars = []
    monkeypatch.setattr(search, "progress_bar", lambda progress, total: bars.append(_RecordingBar(total)) or bars[-1])
    optimize_noise(
        1.0,
        1e-5,
        1,
        1.0,
        geometry=Scalar(1.0),
        method="rdp",
        cache=tmp_path,
        n_jobs=1,
        progress=True,
        budget=SHORT_BUDGET,
        piecewise_evaluations=4,
    )
    fractions = bars[0].fractions
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and all(f <= 1.0 for f in fractions)


# ---- the search budget and the moment table (issue 8) ---------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [
        ("screen_top", 0),
        ("refine_starts", -1),
        ("refine_evaluations", 2.5),
        ("estimate_evaluations", True),
        ("screen_top", 10**6),
        ("refine_starts", "1"),
    ],
)
def test_a_bad_search_budget_raises(field, value):
    with pytest.raises(ValueError, match=f"SearchBudget.{field}"):
        SearchBudget(**{field: value})


def test_the_budget_must_be_a_search_budget():
    with pytest.raises(ValueError, match="budget must be a SearchBudget"):
        optimize_noise(2.0, 1e-5, 10, 0.1, cache=False, budget={"screen_top": 1}, **GAUSSIAN_ONLY)


def test_the_budget_bounds_the_lmo_work_and_keys_the_cache(small_search, tmp_path):
    """No refinement with refine_starts=0; a different budget is a different cache entry."""
    kwargs = dict(geometry=Scalar(1.0), families=("gaussian", "lmo"), method="rdp", cache=tmp_path, n_jobs=1)
    frugal = optimize_noise(1.0, 1e-5, 1, 1.0, budget=SearchBudget(screen_top=1, refine_starts=0), **kwargs)
    assert frugal.stats["lmo_shapes_calibrated"] <= 2 and frugal.stats["lmo_refinement_evaluations"] == 0
    optimize_noise(
        1.0, 1e-5, 1, 1.0, budget=SearchBudget(screen_top=1, refine_starts=0, estimate_evaluations=1), **kwargs
    )
    assert len(list(tmp_path.glob("search-*.json"))) == 2
    _recertified(frugal, Scalar(1.0), 1.0, 1)


def test_moment_table_is_inf_where_a_moment_diverges():
    """U = Exponential: M_U(-x) ~ 1/x, so E|Z| = int M_U(-x) dx and Var diverge; I_f and L stay finite."""
    heavy = LMO(0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0)
    ((variance, mean_abs, fisher, lipschitz),) = LMO.moment_table([heavy])
    assert variance == heavy.variance == math.inf and mean_abs == heavy.mean_abs == math.inf
    assert math.isfinite(fisher) and lipschitz == pytest.approx(heavy.log_density_lipschitz)
    with pytest.raises(ValueError, match="LMO noises"):
        LMO.moment_table([Gaussian(1.0)])


def test_only_the_noise_package_calls_the_private_mgf_derivatives():
    from pathlib import Path

    package = Path(search.__file__).resolve().parents[1]
    callers = {p.relative_to(package).parts[0] for p in package.rglob("*.py") if "_log_mgf_derivs" in p.read_text()}
    assert callers == {"noise"}
