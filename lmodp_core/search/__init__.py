"""The sound noise search: which noise shape needs the least noise for a privacy target (docs/search.md,
docs/theory.md §4.7).

``optimize_noise(target_epsilon, target_delta, steps, sample_rate)`` calibrates every candidate shape to the target
with ``lmodp_core.calibrate`` (every family is a scale family, so a shape only needs its scale found) and scores
it. The modules, one job each:

* ``problem``: the inputs, the objective, and the calibration of one shape into a ``Candidate``;
* ``results``: ``Candidate`` and ``OptimizeResult`` (JSON round trip);
* ``budget``: ``SearchBudget``, the LMO search's work (screened picks, refinements, evaluations per estimate);
* ``grid``: the paper's LMO grid, reduced to shapes that differ by more than a scale, and its moment table
  (``LMO.moment_table``);
* ``screening``: closed-form proxies (d->inf lower bound, pure-DP scale) that rank and prune grid shapes;
* ``refinement``: Nelder-Mead over the shape, ranked by a two-evaluation scale estimate (not a calibration);
* ``lmo_family`` and ``freeform``: the searches of the LMO and free-form ("piecewise") families;
* ``cache`` and ``parallel``: the on-disk cache (results re-certified before use) and the process pool.

The Gaussian is always calibrated with ``method="auto"`` (tight PLD where available), so the comparison with it is
fair (docs/theory.md §1.2), and it is the same sigma ``lmodp_torch.make_private`` calibrates for the same target.
Results are cached on disk (``LMODP_CACHE_DIR``, default ``~/.cache/lmodp``) under a hash of every input, the
budget and the library version, as is the table of shape metrics of the grid (it does not depend on the target).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from ..accountant import METHODS
from ..geometry import Geometry, L2Ball, check_geometry
from ..noise import Gaussian, Laplace
from ..sampling import Poisson
from ..validation import check_choice, check_delta, check_epsilon, check_positive, check_sample_rate, check_steps
from . import freeform
from .budget import SearchBudget, check_budget
from .cache import atomic_write, digest, read_cached
from .cache import cache_dir as resolve_cache_dir
from .grid import TABLE_COLUMNS, grid_spec, grid_table, lmo_grid
from .lmo_family import planned_calibrations, search_lmo
from .parallel import Background, Run, progress_bar, skip_work
from .problem import OBJECTIVES, Problem
from .results import Candidate, OptimizeResult

__all__ = ["optimize_noise", "OptimizeResult", "Candidate", "SearchBudget", "FAMILIES", "OBJECTIVES"]

FAMILIES = ("lmo", "gaussian", "laplace", "piecewise")
DEFAULT_TIME_LIMIT = 300.0  # seconds of accountant evaluations in one optimize_noise call


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


def optimize_noise(
    target_epsilon,
    target_delta,
    steps,
    sample_rate,
    *,
    geometry: Geometry = L2Ball(1.0),
    objective: str = "std",
    families=FAMILIES,
    method: str = "auto",
    gamma: float = 1.0,
    seed: int | None = None,
    cache=True,
    progress: bool = False,
    n_jobs: int | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    piecewise_evaluations: int = freeform.DEFAULT_MAX_EVALUATIONS,
    budget: SearchBudget = SearchBudget(),
) -> OptimizeResult:
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
    free-form ("piecewise") family may run (docs/search.md). budget: the LMO family's work (``SearchBudget``).
    """
    limit = check_positive("time_limit", time_limit)
    problem = Problem(
        check_epsilon(target_epsilon, "target_epsilon"),
        check_delta(target_delta, "target_delta"),
        check_steps(steps),
        Poisson(check_sample_rate(sample_rate)),
        check_geometry(geometry),
        check_choice("method", method, METHODS),
        check_choice("objective", objective, OBJECTIVES),
        check_positive("gamma", gamma),
        limit,
    )
    families = _check_families(families)
    piecewise_evaluations = freeform.check_max_evaluations(piecewise_evaluations)
    budget = check_budget(budget)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
    n_jobs = _check_jobs(n_jobs)
    spec = grid_spec() if "lmo" in families else ()
    inputs = {
        "target_epsilon": problem.epsilon,
        "target_delta": problem.delta,
        "steps": problem.steps,
        "sample_rate": problem.sampling.sample_rate,
        "geometry": problem.geometry.to_dict(),
        "objective": objective,
        "families": list(families),
        "method": method,
        "gamma": problem.gamma,
        "seed": seed,
        **({"piecewise_evaluations": piecewise_evaluations} if "piecewise" in families else {}),
    }
    cache_dir = resolve_cache_dir(cache)
    key = digest({"inputs": inputs, "grid": spec, "budget": budget.to_dict()})
    path = None if cache_dir is None else cache_dir / f"search-{key}.json"
    if path is not None and path.exists():
        cached = read_cached(path, problem, inputs)
        if cached is not None:
            return cached
    problem = replace(problem, deadline=time.time() + limit)
    run = Run(0 if seed is None else seed, n_jobs, None, [], {})
    result = _search(problem, families, spec, inputs, cache_dir, progress, run, budget, piecewise_evaluations)
    if path is not None and not result.stats.get("time_limited"):
        atomic_write(path, lambda handle: handle.write(result.to_json().encode()))
    return result


def _search(
    problem: Problem,
    families,
    spec,
    inputs,
    cache_dir,
    progress,
    run: Run,
    budget: SearchBudget,
    piecewise_evaluations: int,
) -> OptimizeResult:
    started = time.perf_counter()
    shapes = lmo_grid(spec) if spec else ()
    # the total is fixed up front from the planned work and only shrinks when work is skipped: never jumps back
    planned_piecewise = (
        piecewise_evaluations if "piecewise" in families and not isinstance(problem.geometry, L2Ball) else 0
    )
    run.bar = progress_bar(
        progress, 1 + ("laplace" in families) + planned_calibrations(shapes, budget) + planned_piecewise
    )
    notes, stats = run.notes, run.stats
    gaussian = problem.candidate("gaussian", Gaussian(problem.geometry.radius), "auto")
    run.bar.update(1)
    best_by_family = {"gaussian": gaussian}
    if "laplace" in families:
        laplace = _family_or_note(
            "laplace", notes, problem.candidate, "laplace", Laplace(problem.geometry.radius), problem.method
        )
        if laplace is not None:
            best_by_family["laplace"] = laplace
        run.bar.update(1)
    stats.update({"lmo_shapes_screened": len(shapes), "lmo_shapes_calibrated": 0, "lmo_refinement_evaluations": 0})
    # the free-form family starts from the other families' candidates once LMO's screened shapes are calibrated
    # (before its refinement); with n_jobs > 1 it then runs in a second process beside that refinement
    piecewise_start = dict(best_by_family)
    background = None

    def lmo_calibrated(candidate: Candidate) -> None:
        nonlocal background
        piecewise_start["lmo"] = candidate
        if planned_piecewise and run.n_jobs > 1:
            background = Background(
                freeform.search_piecewise_task, problem, dict(piecewise_start), piecewise_evaluations, run.seed
            )

    if shapes:
        table = grid_table(shapes, digest({"grid": spec, "columns": TABLE_COLUMNS}), cache_dir, run.n_jobs)
        rivals = [c for f, c in best_by_family.items() if f in families]
        try:
            lmo = _family_or_note(
                "lmo", notes, search_lmo, problem, shapes, table, gaussian, rivals, run, budget, lmo_calibrated
            )
        except BaseException:  # an error or an interrupt: stop the free-form process too
            if background is not None:
                background.cancel()
            raise
        if lmo is not None:
            best_by_family["lmo"] = lmo
    if "piecewise" in families:
        if background is not None:
            piecewise = _piecewise_result(background.result(), run, planned_piecewise)
        else:
            piecewise = _family_or_note(
                "piecewise", notes, freeform.search_piecewise, problem, piecewise_start, piecewise_evaluations, run
            )
        if piecewise is not None:
            best_by_family["piecewise"] = piecewise
    skip_work(run.bar, run.bar.total - run.bar.n)
    run.bar.close()
    considered = {f: c for f, c in best_by_family.items() if f in families}
    if not considered:
        raise ValueError("no family in " + repr(tuple(families)) + " can meet the target: " + "; ".join(notes))
    winner = min(considered.values(), key=lambda c: problem.loss(c.objective))
    if winner.family != "gaussian" and "gaussian" in families:
        notes.append(
            f"{winner.family} beats the Gaussian: objective {winner.objective:.6g} vs {gaussian.objective:.6g}"
        )
    elif winner.family == "gaussian" and len(considered) > 1:
        notes.append(
            f"the Gaussian wins: objective {gaussian.objective:.6g}; best other: "
            + ", ".join(
                f"{f} {c.objective:.6g} ({c.objective / gaussian.objective:.3f}x)"
                for f, c in considered.items()
                if f != "gaussian"
            )
        )
    stats["seconds"] = round(time.perf_counter() - started, 3)
    stats["time_limited"] = time.time() > problem.deadline
    return OptimizeResult(
        winner.noise,
        winner.epsilon,
        winner.objective,
        problem.objective,
        winner.objective / gaussian.objective,
        winner.method,
        tuple(best_by_family[f] for f in FAMILIES if f in best_by_family),
        inputs,
        tuple(notes),
        stats,
    )


def _piecewise_result(outcome, run: Run, planned: int) -> Candidate | None:
    """The free-form family's candidate from ``freeform.search_piecewise_task`` run in the background, with its
    notes, counters and progress merged into ``run`` as the sequential search would have left them."""
    if outcome[0] == "dropped":
        run.notes.append(f"piecewise: dropped ({outcome[1]})")
        return None
    found, notes, stats, count = outcome
    run.notes.extend(notes)
    run.stats.update(stats)
    run.bar.update(count)
    skip_work(run.bar, planned - count)
    return found


def _family_or_note(family: str, notes: list, search, *args) -> Candidate | None:
    """``search(*args)``, or None with a note when the family cannot meet the target (it is then dropped)."""
    try:
        return search(*args)
    except ValueError as error:
        notes.append(f"{family}: dropped ({error})")
        return None
