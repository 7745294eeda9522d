"""The sound noise search: which noise shape needs the least noise for a privacy target (docs/theory.md §4.7).

``optimize_noise(target_epsilon, target_delta, steps, sample_rate)`` calibrates every candidate shape to the target
with the sound accountant (every family is a scale family, so a shape only needs its scale found) and scores it:

* Gaussian and Laplace have one shape each. The Gaussian is always calibrated with ``method="auto"`` (tight PLD
  where available), so the comparison with it is fair (docs/theory.md §1.2).
* LMO: the paper's grid (docs/theory.md §4.7), reduced to shapes that differ by more than a scale — a1*G with
  G~Gamma(k, theta) is Gamma(k, a1*theta), a3*E is Exponential(rate/a3), a4*V is Uniform(a4*low, a4*high), and
  multiplying U by c divides Z by c. Every shape is *screened* with closed-form proxies before anything is
  calibrated:
  - the d->inf limit: at scale c the mechanism tends to a Gaussian with sigma = c/sqrt(I_f), so the calibrated
    scale is at least sigma_G*sqrt(I_f) (sigma_G the calibrated Gaussian). For L2 geometry (bounds for every
    dimension) this is a rigorous lower bound on the shape's objective; shapes whose bound cannot beat the best
    family found are pruned. Laplace mixtures have I_f*Var >= 2, so for "std" under L2 every LMO shape is
    pruned against the Gaussian — the result still calibrates the best-bounded shape to show its number.
  - pure DP with basic composition: epsilon_0(c) ~ R*L/c with L = sup|(log f)'| = E[U^2]/E[U], amplified by
    sampling: c = R*L / log(1 + (e^{eps/T} - 1)/q). A ranking proxy for few steps and low dimension.
  The best shapes under each proxy are calibrated soundly and the best few are refined with Nelder-Mead
  (scipy.optimize) over the shape, parameters kept inside their domains by the parameterisation.

Results are cached on disk (``LMODP_CACHE_DIR``, default ``~/.cache/lmodp``) under a hash of every input and the
library version, as is the table of shape metrics of the grid (it does not depend on the privacy target).
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import optimize

from ._quadrature import half_line_nodes
from .validation import check_choice, check_delta, check_epsilon, check_positive, check_sample_rate, check_steps
from . import freeform
from .accountant import METHODS, Accountant, Mechanism
from .geometry import Geometry, L2Ball, check_geometry
from .noise import LMO, Gaussian, Laplace, Noise
from .pld import supports as pld_supports
from .rdp import OrderGridWarning, epsilon_floor
from .sampling import Poisson

OBJECTIVES = ("std", "mean_abs", "usefulness")
FAMILIES = ("lmo", "gaussian", "laplace", "piecewise")
RESULT_VERSION = 2  # 2: inputs use the keys target_epsilon and target_delta

# The paper's LMO grid (docs/theory.md §4.7): mixing weights, (theta, k) of the Gamma, Exponential rates,
# Uniform ranges.
PAPER_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(1, 10))
PAPER_GAMMAS = ((1.0, 2.0), (2.0, 2.0), (3.0, 2.0), (5.0, 1.0), (9.0, 0.5), (7.5, 1.0), (0.5, 1.0))
PAPER_RATES = (0.1, 0.5, 1.0, 5.0)
PAPER_UNIFORMS = ((0.0, 1.0), (1.0, 2.0))

_SCREEN_TOP = 3  # shapes calibrated per proxy
_REFINE_STARTS = 1  # Nelder-Mead starts (from the best calibrated shapes)
_REFINE_EVALUATIONS = 10  # shapes tried per Nelder-Mead start
_REFINE_SECANT_EVALUATIONS = 2  # accountant evaluations to estimate a tried shape's scale
_SCALE_RTOL = 1e-3  # calibrated epsilon lies in [target*(1 - rtol), target]
_PRUNE_MARGIN = 1.01  # a lower bound must exceed the best objective by 1% to prune (PLD discretisation slack)
_TABLE_CHUNK = 512
_CACHE_RTOL = 1e-9  # a cached noise is trusted when its re-computed sound epsilon is <= target * (1 + this)


# ---- inputs ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Problem:
    epsilon: float
    delta: float
    steps: int
    sampling: Poisson
    geometry: Geometry
    method: str
    objective: str
    gamma: float
    time_limit: float = math.inf
    deadline: float = math.inf  # time.time() at which every further accountant evaluation raises

    def value(self, noise: Noise) -> float:
        """The objective as reported: std, E|Z|, or P(|Z| <= gamma) = 1 - 2 P(Z > gamma)."""
        if self.objective == "std":
            return noise.std
        if self.objective == "mean_abs":
            return noise.mean_abs
        return float(1.0 - 2.0 * noise.sf(self.gamma))

    def loss(self, value: float) -> float:
        """Smaller is better: usefulness is maximised."""
        return -value if self.objective == "usefulness" else value

    def report(self, noise: Noise, method: str):
        """The sound epsilon report of ``noise``; order-grid-edge warnings are silenced inside the search (an
        edge optimum only means the bound could be tighter, and calibration loops would repeat it)."""
        if time.time() > self.deadline:
            raise ValueError(f"the search reached its time_limit of {self.time_limit:g} s")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OrderGridWarning)
            return Accountant(noise, self.geometry, self.sampling, method=method).step(self.steps).report(self.delta)


@dataclass(frozen=True)
class Candidate:
    """One calibrated noise: its sound epsilon at the target delta and its objective value."""

    family: str
    noise: Noise
    epsilon: float
    objective: float
    method: str

    def to_dict(self) -> dict:
        return {"family": self.family, "noise": self.noise.to_dict(), "epsilon": self.epsilon,
                "objective": self.objective, "method": self.method}

    @staticmethod
    def from_dict(data: dict) -> "Candidate":
        return Candidate(data["family"], Noise.from_dict(data["noise"]), data["epsilon"], data["objective"],
                         data["method"])


@dataclass(frozen=True)
class OptimizeResult:
    """The best sound noise for the target, and the numbers that justify it.

    ``epsilon`` is the sound epsilon of ``noise`` (<= the target; calibrated to within a relative 1e-3 below it).
    ``ratio_to_gaussian`` is ``objective`` divided by the PLD-calibrated Gaussian's (for "usefulness", > 1 means
    more useful than the Gaussian; for the others, < 1 means less noise). ``candidates`` holds the best
    calibrated noise per family (the Gaussian baseline always, even when it is not among ``families``);
    ``notes`` says what was pruned and why (with numbers).
    """

    noise: Noise
    epsilon: float
    objective: float
    objective_name: str
    ratio_to_gaussian: float
    method: str
    candidates: tuple[Candidate, ...]
    inputs: dict
    notes: tuple[str, ...] = ()
    stats: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.noise.family

    def to_dict(self) -> dict:
        return {"result_version": RESULT_VERSION, "family": self.family, "noise": self.noise.to_dict(),
                "epsilon": self.epsilon, "objective": self.objective, "objective_name": self.objective_name,
                "ratio_to_gaussian": self.ratio_to_gaussian, "method": self.method,
                "candidates": [c.to_dict() for c in self.candidates], "inputs": self.inputs,
                "notes": list(self.notes), "stats": self.stats}

    @staticmethod
    def from_dict(data: dict) -> "OptimizeResult":
        if not isinstance(data, dict) or data.get("result_version") != RESULT_VERSION:
            raise ValueError(f"optimize result dict must have result_version={RESULT_VERSION}")
        return OptimizeResult(Noise.from_dict(data["noise"]), data["epsilon"], data["objective"],
                              data["objective_name"], data["ratio_to_gaussian"], data["method"],
                              tuple(Candidate.from_dict(c) for c in data["candidates"]), data["inputs"],
                              tuple(data["notes"]), data["stats"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# ---- calibration -------------------------------------------------------------------------------------------
_MAX_CALIBRATION_EVALUATIONS = 60
DEFAULT_TIME_LIMIT = 300.0  # seconds of accountant evaluations in one optimize_noise call
_BRACKET_LOG_WIDTH = 1e-4  # stop when a meeting and a missing scale are this close (relative)


def _next_log_scale(points: list[tuple[float, float]], log_aim: float) -> float:
    """Secant step on (log c, log eps) toward log_aim; eps ~ 1/c until two points give a slope."""
    slope = -1.0
    if len(points) >= 2:
        (c0, e0), (c1, e1) = points[-2], points[-1]
        if c1 != c0:
            slope = min(max((e1 - e0) / (c1 - c0), -4.0), -0.25)  # eps decreases in the scale; bounded steps
    step = (log_aim - points[-1][1]) / slope
    return points[-1][0] + max(min(step, math.log(8.0)), -math.log(8.0))


def _calibrate(noise: Noise, problem: _Problem, method: str, *, rtol: float = _SCALE_RTOL,
               evaluations: int = _MAX_CALIBRATION_EVALUATIONS) -> tuple[Noise, object]:
    """noise.scaled(c) whose sound epsilon lies in [target*(1 - rtol), target], and its epsilon report.

    Secant steps on (log c, log eps) from ``noise`` as the first guess, safeguarded by bisection once a scale
    that meets the target and one that misses it are known (epsilon can drop to exactly 0 at a finite scale,
    where the secant has no slope). The search also stops when that bracket is narrower than
    ``_BRACKET_LOG_WIDTH``. The returned noise has been evaluated and meets the target (calibration never
    returns a noise that misses it). With a small ``evaluations`` budget the report is None and the scale is
    the secant's estimate: a ranking value, not a guarantee.
    """
    target = problem.epsilon
    _check_reachable(noise, problem, method)
    log_aim = math.log(target) + math.log1p(-0.3 * rtol)
    points: list[tuple[float, float]] = []  # (log c, log eps) of the evaluated scales
    log_c, missing = 0.0, -math.inf  # missing: the largest log c evaluated whose epsilon misses the target
    best = None
    for _ in range(evaluations):
        report = problem.report(noise.scaled(math.exp(log_c)), method)
        if report.epsilon <= target and (best is None or log_c < best[0]):
            best = (log_c, report)
        elif report.epsilon > target:
            missing = max(missing, log_c)
        if best is not None and (best[1].epsilon >= target * (1.0 - rtol) or best[0] - missing < _BRACKET_LOG_WIDTH):
            return noise.scaled(math.exp(best[0])), best[1]
        if not math.isfinite(report.epsilon) or report.epsilon <= 0.0:
            proposal = log_c + (math.log(4.0) if not math.isfinite(report.epsilon) else -math.log(4.0))
        else:
            points.append((log_c, math.log(report.epsilon)))
            proposal = _next_log_scale(points, log_aim)
        if best is not None and math.isfinite(missing) and not missing < proposal < best[0]:
            proposal = 0.5 * (missing + best[0])
        log_c = proposal
    if evaluations < _MAX_CALIBRATION_EVALUATIONS and points:
        return noise.scaled(math.exp(log_c)), None
    if best is None:
        raise ValueError(f"epsilon={target} could not be met by scaling {noise!r}")
    return noise.scaled(math.exp(best[0])), best[1]


def _check_reachable(noise: Noise, problem: _Problem, method: str) -> None:
    """ValueError when only RDP can account ``noise`` and the target lies below what RDP certifies at any scale:
    epsilon_from_rdp at an RDP curve of 0 (the floor min_a log(1 - 1/a) - (log delta + log a)/(a - 1))."""
    mechanism = Mechanism(noise, problem.geometry, problem.sampling)
    if method != "rdp" and pld_supports(mechanism):
        return
    floor = epsilon_floor(problem.delta)
    if problem.epsilon < floor:
        raise ValueError(f"epsilon={problem.epsilon:g} is below {floor:.4g}, the smallest epsilon RDP certifies at "
                         f"delta={problem.delta:g} for any scale of {noise.family} noise in this geometry")


def _candidate(family: str, noise: Noise, problem: _Problem, method: str) -> Candidate:
    calibrated, report = _calibrate(noise, problem, method)
    return Candidate(family, calibrated, report.epsilon, problem.value(calibrated), report.method)


# ---- the LMO grid and its screening table ------------------------------------------------------------------
def _grid_spec() -> tuple:
    return PAPER_WEIGHTS, PAPER_GAMMAS, PAPER_RATES, PAPER_UNIFORMS


@lru_cache(maxsize=4)
def _lmo_grid(spec: tuple) -> tuple[dict, ...]:
    """One representative (paper naming) per scale-equivalence class of the grid ``spec``."""
    weights, gammas, rates, uniforms = spec
    shapes: dict[tuple, dict] = {}
    for (a1, a3, a4), (theta, k), rate, (low, high) in itertools.product(
            itertools.product(weights, repeat=3), gammas, rates, uniforms):
        unit = a1 * theta  # the Gamma part's scale; the other lengths are measured in it
        key = tuple(f"{v:.9g}" for v in (k, a3 / rate / unit, a4 * low / unit, a4 * high / unit))
        shapes.setdefault(key, {"a1": a1, "a3": a3, "a4": a4, "G_k": k, "G_theta": theta, "E_lambda": rate,
                                "U_a": low, "U_b": high})
    return tuple(shapes.values())


_TABLE_COLUMNS = ("variance", "mean_abs", "fisher", "lipschitz")


def _shape_metrics(shapes: list[dict]) -> np.ndarray:
    """Var, E|Z|, I_f and L = sup|(log f)'| of each unit-scale shape, from the closed forms of LMO (§4.1).

    With x the exp-sinh nodes on [0, inf) and (k0, k1, k2) = log M_U and its derivatives at -x:
    E|Z| = int M_U(-x) dx, Var = 2 int x M_U(-x) dx, I_f = int M_U k1 ((k2 + k1^2)/k1)^2 dx (f = M_U'/2 and
    f'/f = -(k2 + k1^2)/k1), L = (k2 + k1^2)/k1 at 0 = E[U^2]/E[U] (the density is log-convex on each half-line).
    """
    unit_nodes, unit_log_w = half_line_nodes(1.0)
    rows = np.empty((len(shapes), len(_TABLE_COLUMNS)))
    for row, params in enumerate(shapes):
        lmo = LMO.from_paper(params)
        nodes = unit_nodes / lmo.mean_u
        k0, k1, k2 = lmo._log_mgf_derivs(np.concatenate([[0.0], -nodes]), 2)
        curvature = k2 + k1 * k1
        weights = np.exp(unit_log_w + k0[1:]) / lmo.mean_u  # quadrature weight times M_U(-x)
        rows[row] = (2.0 * weights @ nodes, weights.sum(), weights @ (curvature[1:] ** 2 / k1[1:]),
                     curvature[0] / k1[0])
    return rows


def _grid_table(shapes, grid_digest: str, cache_dir: Path | None, n_jobs: int) -> np.ndarray:
    path = None if cache_dir is None else cache_dir / f"lmo-grid-{grid_digest}.npy"
    if path is not None and path.exists():
        try:
            table = np.load(path, allow_pickle=False)
            if table.shape == (len(shapes), len(_TABLE_COLUMNS)) and not np.any(np.isnan(table)):
                return table
        except (OSError, ValueError, EOFError):  # damaged file: recompute and overwrite it
            pass
    chunks = [shapes[i:i + _TABLE_CHUNK] for i in range(0, len(shapes), _TABLE_CHUNK)]
    table = np.concatenate(_map(_shape_metrics, chunks, n_jobs, progress=None))
    if path is not None:
        _atomic_write(path, lambda handle: np.save(handle, table))
    return table


def _screen(table: np.ndarray, problem: _Problem, gaussian_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per shape: the d->inf scale, the pure-DP scale (module docstring) and the unit-scale std or E|Z|."""
    variance, mean_abs, fisher, lipschitz = table.T
    asymptotic_scale = gaussian_sigma * np.sqrt(fisher)  # sigma_eff = c / sqrt(I_f) = sigma_G
    rate = problem.sampling.sample_rate
    per_step = math.log1p(math.expm1(problem.epsilon / problem.steps) / rate)  # pure eps_0 after amplification
    pure_scale = problem.geometry.radius * lipschitz / per_step
    return asymptotic_scale, pure_scale, np.sqrt(variance) if problem.objective == "std" else mean_abs


def _proxy_loss(shapes: list[dict], scales: np.ndarray, unit_values: np.ndarray, problem: _Problem) -> np.ndarray:
    if problem.objective != "usefulness":
        return scales * unit_values
    return np.array([problem.loss(problem.value(LMO.from_paper(p, scale=c))) for p, c in zip(shapes, scales)])


# ---- local refinement --------------------------------------------------------------------------------------
def _shape_from_vector(x: np.ndarray, start: dict) -> dict:
    """Shape from (log a3, log a4, log k, w): a1, theta, rate and high stay; low = high * w^2/(1 + w^2)."""
    return {**start, "a3": math.exp(x[0]), "a4": math.exp(x[1]), "G_k": math.exp(x[2]),
            "U_a": start["U_b"] * x[3] ** 2 / (1.0 + x[3] ** 2)}


def _vector_from_shape(shape: dict) -> np.ndarray:
    ratio = shape["U_a"] / shape["U_b"]
    return np.array([math.log(shape["a3"]), math.log(shape["a4"]), math.log(shape["G_k"]),
                     math.sqrt(ratio / (1.0 - ratio))])


def _refine(task) -> Candidate:
    """Nelder-Mead over the LMO shape from a calibrated start, then a sound calibration of the best shape.

    Each step ranks a shape by its objective at the scale estimated from two accountant evaluations (secant);
    only the final shape's epsilon is verified, and the start is kept if the refined shape is not better.
    """
    start, problem, method, seed = task
    base = LMO.from_paper(start.noise.to_paper())

    def shape(x) -> LMO:
        lmo = LMO.from_paper(_shape_from_vector(np.clip(x, -30.0, 30.0), base.to_paper()))
        return lmo.scaled(start.noise.scale * base.mean_u / lmo.mean_u)  # same typical scale as the start

    def loss(x) -> float:
        try:
            guess = shape(x)
            if problem.objective == "std" and not math.isfinite(guess.variance):
                return math.inf
            estimate, _ = _calibrate(guess, problem, method, evaluations=_REFINE_SECANT_EVALUATIONS)
        except ValueError:  # a shape at the edge of the domain (e.g. low == high)
            return math.inf
        return problem.loss(problem.value(estimate))

    x0 = _vector_from_shape(base.to_paper())
    directions = np.random.default_rng(seed).normal(size=(x0.size, x0.size)) * 0.1 + 0.3 * np.eye(x0.size)
    found = optimize.minimize(loss, x0, method="Nelder-Mead",
                              options={"initial_simplex": np.vstack([x0, x0 + directions]),
                                       "maxfev": _REFINE_EVALUATIONS, "xatol": 1e-3, "fatol": 1e-4})
    if not found.fun < problem.loss(start.objective):
        return start
    refined = _candidate("lmo", shape(found.x), problem, method)
    return min((start, refined), key=lambda c: problem.loss(c.objective))


# ---- plumbing: parallel map, cache -------------------------------------------------------------------------
def _map(function, tasks: list, n_jobs: int, progress):
    """``[function(t) for t in tasks]``, over processes when n_jobs > 1, updating a tqdm bar if given."""
    if n_jobs <= 1 or len(tasks) <= 1:
        results = []
        for task in tasks:
            results.append(function(task))
            if progress is not None:
                progress.update(1)
        return results
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(tasks))) as pool:
        results = []
        for result in pool.map(function, tasks):
            results.append(result)
            if progress is not None:
                progress.update(1)
        return results


def _digest(payload) -> str:
    from . import __version__

    text = json.dumps({"payload": payload, "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cache_dir(cache) -> Path | None:
    """The cache directory, or None (uncached) for None/False or when it cannot be created (one warning)."""
    if cache is None or cache is False:
        return None
    if cache is True:
        try:
            path = Path(os.environ.get("LMODP_CACHE_DIR") or Path.home() / ".cache" / "lmodp")
        except RuntimeError as error:  # no home directory
            return _uncached(error)
    elif isinstance(cache, (str, os.PathLike)) and str(cache):
        path = Path(cache)
    else:
        raise ValueError(f"cache must be None, False, True or a directory path (str or os.PathLike), got {cache!r}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _uncached(error)
    return path


def _uncached(error: Exception) -> None:
    warnings.warn(f"optimize_noise: the cache is unusable ({error}); continuing without it", RuntimeWarning,
                  stacklevel=4)
    return None


def _atomic_write(path: Path, write) -> None:
    """Write to a temporary file and rename it over ``path`` (readers never see a partial file); on OSError warn
    once and leave the cache as it was."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        _uncached(error)


def _read_cached(path: Path, problem: _Problem, inputs: dict) -> OptimizeResult | None:
    """The cached result, re-certified (one accountant call on the stored noise), or None for a miss: anything
    unreadable, malformed, for other inputs, or whose noise does not meet the target, is ignored."""
    try:
        result = OptimizeResult.from_dict(json.loads(path.read_text()))
        if result.inputs != inputs or not isinstance(result.noise, Noise):
            return None
        report = problem.report(result.noise, "auto")
    except (OSError, ValueError, TypeError, KeyError, AttributeError, OverflowError, ZeroDivisionError):
        return None
    if not report.epsilon <= problem.epsilon * (1.0 + _CACHE_RTOL):
        return None
    return result


def _check_families(families) -> tuple[str, ...]:
    if isinstance(families, str):
        families = (families,)
    families = tuple(families)
    if not families or any(f not in FAMILIES for f in families):
        raise ValueError(f"families must be a non-empty subset of {FAMILIES}, got {families!r}")
    return tuple(f for f in FAMILIES if f in families)


def _check_jobs(n_jobs) -> int:
    if n_jobs is None:
        return os.cpu_count() or 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1 (or None for all cores), got {n_jobs!r}")
    return n_jobs


# ---- the search ------------------------------------------------------------------------------------------
def optimize_noise(target_epsilon, target_delta, steps, sample_rate, *, geometry: Geometry = L2Ball(1.0),
                   objective: str = "std", families=FAMILIES, method: str = "auto", gamma: float = 1.0,
                   seed: int | None = None, cache=True, progress: bool = False, n_jobs: int | None = None,
                   time_limit: float = DEFAULT_TIME_LIMIT,
                   piecewise_evaluations: int = freeform.DEFAULT_MAX_EVALUATIONS) -> OptimizeResult:
    """The noise (among ``families``) with the best ``objective`` whose sound epsilon at ``target_delta`` after
    ``steps`` Poisson-subsampled steps (rate ``sample_rate``) is <= ``target_epsilon``.

    objective: "std" (per-coordinate standard deviation, minimised), "mean_abs" (E|Z|, minimised) or
    "usefulness" (P(|Z| <= gamma), maximised; gamma in the units of the clip). method: accounting method for the
    non-Gaussian families ("auto" = tightest sound). cache: True (``LMODP_CACHE_DIR`` or ``~/.cache/lmodp``),
    False or None (no cache), or a directory (str or path-like); a cached result is re-certified before it is
    returned, and an unusable cache only warns. seed: the random initial simplex of the refinement (None = 0;
    results are deterministic either way). n_jobs: processes for a cold search (None = all cores).
    time_limit: seconds after which no further accountant evaluation starts; a family still searching then is
    dropped with a note (ValueError if the Gaussian baseline or every requested family is). A family that
    cannot meet the target at any scale is dropped with a note too. piecewise_evaluations: calibrations the
    free-form ("piecewise") family may run (docs/search.md).
    """
    limit = check_positive("time_limit", time_limit)
    problem = _Problem(check_epsilon(target_epsilon, "target_epsilon"), check_delta(target_delta, "target_delta"),
                       check_steps(steps), Poisson(check_sample_rate(sample_rate)), check_geometry(geometry),
                       check_choice("method", method, METHODS), check_choice("objective", objective, OBJECTIVES),
                       check_positive("gamma", gamma), limit)
    families = _check_families(families)
    budget = freeform.check_max_evaluations(piecewise_evaluations)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
    n_jobs = _check_jobs(n_jobs)
    spec = _grid_spec() if "lmo" in families else ()
    inputs = {"target_epsilon": problem.epsilon, "target_delta": problem.delta, "steps": problem.steps,
              "sample_rate": problem.sampling.sample_rate, "geometry": problem.geometry.to_dict(),
              "objective": objective, "families": list(families), "method": method, "gamma": problem.gamma,
              "seed": seed, **({"piecewise_evaluations": budget} if "piecewise" in families else {})}
    cache_dir = _cache_dir(cache)
    key = _digest({"inputs": inputs, "grid": spec, "budget": (_SCREEN_TOP, _REFINE_STARTS, _REFINE_EVALUATIONS)})
    path = None if cache_dir is None else cache_dir / f"search-{key}.json"
    if path is not None and path.exists():
        cached = _read_cached(path, problem, inputs)
        if cached is not None:
            return cached
    problem = replace(problem, deadline=time.time() + limit)
    result = _search(problem, families, spec, inputs, 0 if seed is None else seed, cache_dir,
                     n_jobs, progress, budget)
    if path is not None and not result.stats.get("time_limited"):
        _atomic_write(path, lambda handle: handle.write(result.to_json().encode()))
    return result


def _search(problem: _Problem, families, spec, inputs, seed, cache_dir, n_jobs, progress,
            budget: int) -> OptimizeResult:
    started = time.perf_counter()
    shapes = _lmo_grid(spec) if spec else ()
    # the total is fixed up front from the planned work and only shrinks when work is skipped: never jumps back
    planned_lmo = min(2 * _SCREEN_TOP, len(shapes)) + _REFINE_STARTS if shapes else 0
    planned_piecewise = budget if "piecewise" in families and not isinstance(problem.geometry, L2Ball) else 0
    bar = _progress_bar(progress, 1 + ("laplace" in families) + planned_lmo + planned_piecewise)
    notes: list[str] = []
    gaussian = _candidate("gaussian", Gaussian(problem.geometry.radius), problem, "auto")
    bar.update(1)
    best_by_family = {"gaussian": gaussian}
    if "laplace" in families:
        laplace = _family_or_note("laplace", notes, _candidate, "laplace", Laplace(problem.geometry.radius), problem,
                                  problem.method)
        if laplace is not None:
            best_by_family["laplace"] = laplace
        bar.update(1)
    stats = {"lmo_shapes_screened": len(shapes), "lmo_shapes_calibrated": 0, "lmo_refinement_evaluations": 0}
    if shapes:
        table = _grid_table(shapes, _digest({"grid": spec, "columns": _TABLE_COLUMNS}), cache_dir, n_jobs)
        rivals = [c for f, c in best_by_family.items() if f in families]
        lmo = _family_or_note("lmo", notes, _search_lmo, problem, shapes, table, gaussian, rivals,
                              _Run(seed, n_jobs, bar, notes, stats))
        if lmo is not None:
            best_by_family["lmo"] = lmo
    if "piecewise" in families:
        piecewise = _family_or_note("piecewise", notes, _search_piecewise, problem, best_by_family, budget,
                                    _Run(seed, n_jobs, bar, notes, stats))
        if piecewise is not None:
            best_by_family["piecewise"] = piecewise
    _skip_work(bar, bar.total - bar.n)
    bar.close()
    considered = {f: c for f, c in best_by_family.items() if f in families}
    if not considered:
        raise ValueError("no family in " + repr(tuple(families)) + " can meet the target: " + "; ".join(notes))
    winner = min(considered.values(), key=lambda c: problem.loss(c.objective))
    if winner.family != "gaussian" and "gaussian" in families:
        notes.append(f"{winner.family} beats the Gaussian: objective {winner.objective:.6g} vs "
                     f"{gaussian.objective:.6g}")
    elif winner.family == "gaussian" and len(considered) > 1:
        notes.append(f"the Gaussian wins: objective {gaussian.objective:.6g}; best other: " + ", ".join(
            f"{f} {c.objective:.6g} ({c.objective / gaussian.objective:.3f}x)"
            for f, c in considered.items() if f != "gaussian"))
    stats["seconds"] = round(time.perf_counter() - started, 3)
    stats["time_limited"] = time.time() > problem.deadline
    return OptimizeResult(winner.noise, winner.epsilon, winner.objective, problem.objective,
                          winner.objective / gaussian.objective, winner.method,
                          tuple(best_by_family[f] for f in FAMILIES if f in best_by_family), inputs,
                          tuple(notes), stats)


def _family_or_note(family: str, notes: list, search, *args) -> Candidate | None:
    """``search(*args)``, or None with a note when the family cannot meet the target (it is then dropped)."""
    try:
        return search(*args)
    except ValueError as error:
        notes.append(f"{family}: dropped ({error})")
        return None


@dataclass
class _Run:
    """Book-keeping of one search: refinement seed, processes, progress bar, notes and counters."""

    seed: int
    n_jobs: int
    bar: object
    notes: list
    stats: dict


def _search_lmo(problem: _Problem, shapes, table, gaussian: Candidate, rivals: list, run: _Run) -> Candidate:
    """Screen the grid, calibrate the promising shapes soundly, refine the best one (see the module docstring)."""
    asymptotic_scale, pure_scale, unit_values = _screen(table, problem, gaussian.noise.sigma)
    asymptotic_loss = _proxy_loss(shapes, asymptotic_scale, unit_values, problem)
    pure_loss = _proxy_loss(shapes, pure_scale, unit_values, problem)
    best_rival = min((problem.loss(c.objective) for c in rivals), default=math.inf)
    bounded = isinstance(problem.geometry, L2Ball)
    order = np.argsort(asymptotic_loss, kind="stable")
    if bounded:
        # sound epsilon >= its d->inf limit, so the asymptotic scale bounds the calibrated one from below
        alive = [i for i in order if asymptotic_loss[i] < best_rival - abs(best_rival) * (_PRUNE_MARGIN - 1.0)]
        picks = alive[:_SCREEN_TOP] or [int(order[0])]
        ratio = asymptotic_loss[order[0]] / problem.loss(gaussian.objective)
        run.notes.append(f"lmo: {len(shapes)} grid shapes screened by the d->inf lower bound (sigma_G*sqrt(I_f)); "
                     f"best bound {abs(asymptotic_loss[order[0]]):.6g} = {abs(ratio):.3f}x the Gaussian; "
                     f"{len(shapes) - len(alive)} shapes pruned")
    else:
        picks = list(dict.fromkeys([*order[:_SCREEN_TOP], *np.argsort(pure_loss, kind="stable")[:_SCREEN_TOP]]))
    tasks = [("lmo", LMO.from_paper(shapes[i], scale=_initial_scale(asymptotic_scale[i], pure_scale[i], bounded)),
              problem, problem.method) for i in picks]
    _skip_work(run.bar, min(2 * _SCREEN_TOP, len(shapes)) - len(tasks))
    calibrated = _map(_candidate_task, tasks, run.n_jobs, run.bar)
    run.stats["lmo_shapes_calibrated"] = len(calibrated)
    calibrated.sort(key=lambda c: problem.loss(c.objective))
    if bounded and _family_cannot_win(problem, gaussian, best_rival):
        run.notes.append(_family_bound_note(problem))
        _skip_work(run.bar, _REFINE_STARTS)
        return calibrated[0]
    starts = calibrated[:_REFINE_STARTS]
    _skip_work(run.bar, _REFINE_STARTS - len(starts))
    refined = _map(_refine, [(c, problem, problem.method, run.seed + i) for i, c in enumerate(starts)], run.n_jobs,
                   run.bar)
    run.stats["lmo_refinement_evaluations"] = _REFINE_EVALUATIONS * len(starts)
    return min([*calibrated, *refined], key=lambda c: problem.loss(c.objective))


def _search_piecewise(problem: _Problem, best_by_family: dict, budget: int, run: _Run) -> Candidate | None:
    """The free-form family (``freeform``), warm-started from the best candidate so far; None under L2."""
    if isinstance(problem.geometry, L2Ball):
        run.notes.append("piecewise: skipped — a histogram density has jumps (infinite Fisher information), so it "
                         "has no dimension-free L2 bound")
        return None
    start = min(best_by_family.values(), key=lambda c: problem.loss(c.objective))

    def calibrate(noise: Noise) -> Candidate:
        run.bar.update(1)
        return _candidate("piecewise", noise, problem, problem.method)

    found, count = freeform.optimise_piecewise(start.noise, problem.geometry.radius, calibrate,
                                               lambda c: problem.loss(c.objective), budget, run.seed)
    run.stats["piecewise_evaluations"] = count
    _skip_work(run.bar, budget - count)
    run.notes.append(f"piecewise: best of {count} calibrated histograms (warm start: {start.family}): objective "
                     f"{found.objective:.6g} = {found.objective / start.objective:.4f}x the warm start's")
    return found


def _initial_scale(asymptotic: float, pure: float, bounded: bool) -> float:
    """A first guess of the calibrated scale (the secant calibration corrects it)."""
    return asymptotic if bounded else math.sqrt(asymptotic * pure)


def _candidate_task(task) -> Candidate:
    family, noise, problem, method = task
    return _candidate(family, noise, problem, method)


def _family_cannot_win(problem, gaussian, best_rival) -> bool:
    """Under L2 no LMO shape beats sqrt(2)x the Gaussian's std (I*Var >= 2) or sqrt(pi/2)x its E|Z|
    (I*(E|Z|)^2 >= 1), grid or not; True when that already loses to the best other family."""
    if problem.objective == "usefulness":
        return False
    family_bound = {"std": math.sqrt(2.0), "mean_abs": math.sqrt(math.pi / 2.0)}[problem.objective]
    return family_bound * problem.loss(gaussian.objective) >= best_rival * _PRUNE_MARGIN


def _family_bound_note(problem) -> str:
    factor = {"std": "sqrt(2) = 1.414", "mean_abs": "sqrt(pi/2) = 1.253"}[problem.objective]
    return (f"lmo: refinement skipped — under L2 clipping every Laplace scale mixture needs at least {factor}x the "
            f"Gaussian's {problem.objective} (I_f*Var >= 2, I_f*(E|Z|)^2 >= 1); the row shows the best-bounded "
            f"grid shape, calibrated")


def _skip_work(bar, count: int) -> None:
    """Drop ``count`` planned calibrations from the bar's total (the shown fraction only moves forward)."""
    if count > 0:
        bar.total -= count
        bar.refresh()


def _progress_bar(progress: bool, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="optimize_noise", unit="calibration", disable=not progress, leave=False)
