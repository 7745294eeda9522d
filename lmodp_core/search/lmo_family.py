"""The LMO family's search: screen the grid, calibrate the promising shapes soundly, refine the best ones, and
calibrate the winner again at the default PLD precision (the others are ranked at ``RANKING_PLD_RTOL``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import numpy as np

from ..geometry import L2Ball
from ..noise import LMO, Gaussian
from .budget import SearchBudget
from .parallel import Run, map_tasks, skip_work
from .problem import Problem, candidate_task
from .refinement import refine
from .results import Candidate
from .screening import PRUNE_MARGIN, family_bound_note, family_cannot_win, initial_scale, proxy_loss, screen


def planned_calibrations(shapes, budget: SearchBudget) -> int:
    """Calibrations the progress bar plans for the family: the screened picks, then one per refinement."""
    return min(2 * budget.screen_top, len(shapes)) + budget.refine_starts if shapes else 0


def search_lmo(
    problem: Problem,
    shapes,
    table,
    gaussian: Candidate,
    rivals: list,
    run: Run,
    budget: SearchBudget,
    on_calibrated: Callable[[Candidate], None] | None = None,
) -> Candidate:
    """The best calibrated LMO shape (screening: ``screening``; refinement: ``refinement``). ``on_calibrated``
    gets the best screened shape once it is calibrated, before the refinement (the search starts the free-form
    family from it)."""
    asymptotic_scale, pure_scale, unit_values = screen(table, problem, cast(Gaussian, gaussian.noise).sigma)
    asymptotic_loss = proxy_loss(shapes, asymptotic_scale, unit_values, problem)
    pure_loss = proxy_loss(shapes, pure_scale, unit_values, problem)
    best_rival = min((problem.loss(c.objective) for c in rivals), default=math.inf)
    bounded = isinstance(problem.geometry, L2Ball)
    order = np.argsort(asymptotic_loss, kind="stable")
    if bounded:
        # sound epsilon >= its d->inf limit, so the asymptotic scale bounds the calibrated one from below
        alive = [i for i in order if asymptotic_loss[i] < best_rival - abs(best_rival) * (PRUNE_MARGIN - 1.0)]
        picks = alive[: budget.screen_top] or [int(order[0])]
        ratio = asymptotic_loss[order[0]] / problem.loss(gaussian.objective)
        run.notes.append(
            f"lmo: {len(shapes)} grid shapes screened by the d->inf lower bound (sigma_G*sqrt(I_f)); "
            f"best bound {abs(asymptotic_loss[order[0]]):.6g} = {abs(ratio):.3f}x the Gaussian; "
            f"{len(shapes) - len(alive)} shapes pruned"
        )
    else:
        picks = list(
            dict.fromkeys([*order[: budget.screen_top], *np.argsort(pure_loss, kind="stable")[: budget.screen_top]])
        )
    ranking = problem.ranking()  # shapes are ranked at a cheaper PLD precision; the winner is certified at the end
    tasks = [
        (
            "lmo",
            LMO.from_paper(shapes[i], scale=initial_scale(asymptotic_scale[i], pure_scale[i], bounded)),
            ranking,
            problem.method,
        )
        for i in picks
    ]
    skip_work(run.bar, min(2 * budget.screen_top, len(shapes)) - len(tasks))
    calibrated = map_tasks(candidate_task, tasks, run.n_jobs, run.bar)
    run.stats["lmo_shapes_calibrated"] = len(calibrated)
    calibrated.sort(key=lambda c: problem.loss(c.objective))
    if on_calibrated is not None:
        on_calibrated(calibrated[0])
    if bounded and family_cannot_win(problem, gaussian.objective, best_rival):
        run.notes.append(family_bound_note(problem))
        skip_work(run.bar, budget.refine_starts)
        return problem.certify(calibrated[0])
    starts = calibrated[: budget.refine_starts]
    skip_work(run.bar, budget.refine_starts - len(starts))
    refined = map_tasks(
        refine, [(c, ranking, problem.method, run.seed + i, budget) for i, c in enumerate(starts)], run.n_jobs, run.bar
    )
    run.stats["lmo_refinement_evaluations"] = budget.refine_evaluations * len(starts)
    return problem.certify(min([*calibrated, *refined], key=lambda c: problem.loss(c.objective)))
