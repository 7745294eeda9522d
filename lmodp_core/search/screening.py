"""Closed-form proxies that rank (and, under L2, prune) LMO shapes before any calibration (docs/search.md).

* The d->inf limit: at scale c the mechanism tends to a Gaussian with sigma = c/sqrt(I_f), so the calibrated scale
  is at least sigma_G*sqrt(I_f) (sigma_G the calibrated Gaussian). For L2 geometry (bounds for every dimension)
  this is a rigorous lower bound on the shape's objective. Laplace mixtures have I_f*Var >= 2, so for "std" under
  L2 every LMO shape is pruned against the Gaussian.
* Pure DP with basic composition: epsilon_0(c) ~ R*L/c with L = sup|(log f)'| = E[U^2]/E[U], amplified by
  sampling: c = R*L / log(1 + (e^{eps/T} - 1)/q). A ranking proxy for few steps and low dimension.
"""

from __future__ import annotations

import math

import numpy as np

from ..noise import LMO
from .problem import Problem

PRUNE_MARGIN = 1.01  # a lower bound must exceed the best objective by 1% to prune (PLD discretisation slack)


def screen(table: np.ndarray, problem: Problem, gaussian_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per shape: the d->inf scale, the pure-DP scale (module docstring) and the unit-scale std or E|Z|."""
    variance, mean_abs, fisher, lipschitz = table.T
    asymptotic_scale = gaussian_sigma * np.sqrt(fisher)  # sigma_eff = c / sqrt(I_f) = sigma_G
    rate = problem.sampling.sample_rate
    per_step = math.log1p(math.expm1(problem.epsilon / problem.steps) / rate)  # pure eps_0 after amplification
    pure_scale = problem.geometry.radius * lipschitz / per_step
    return asymptotic_scale, pure_scale, np.sqrt(variance) if problem.objective == "std" else mean_abs


def proxy_loss(shapes: list[dict], scales: np.ndarray, unit_values: np.ndarray, problem: Problem) -> np.ndarray:
    """The loss of each shape at the proxy's scale."""
    if problem.objective != "usefulness":
        return scales * unit_values
    return np.array([problem.loss(problem.value(LMO.from_paper(p, scale=c))) for p, c in zip(shapes, scales)])


def initial_scale(asymptotic: float, pure: float, bounded: bool) -> float:
    """A first guess of the calibrated scale (the calibration corrects it)."""
    return asymptotic if bounded else math.sqrt(asymptotic * pure)


def family_cannot_win(problem: Problem, gaussian_objective: float, best_rival: float) -> bool:
    """Under L2 no LMO shape beats sqrt(2)x the Gaussian's std (I*Var >= 2) or sqrt(pi/2)x its E|Z|
    (I*(E|Z|)^2 >= 1), grid or not; True when that already loses to the best other family."""
    if problem.objective == "usefulness":
        return False
    family_bound = {"std": math.sqrt(2.0), "mean_abs": math.sqrt(math.pi / 2.0)}[problem.objective]
    return family_bound * problem.loss(gaussian_objective) >= best_rival * PRUNE_MARGIN


def family_bound_note(problem: Problem) -> str:
    factor = {"std": "sqrt(2) = 1.414", "mean_abs": "sqrt(pi/2) = 1.253"}[problem.objective]
    return (
        f"lmo: refinement skipped — under L2 clipping every Laplace scale mixture needs at least {factor}x the "
        f"Gaussian's {problem.objective} (I_f*Var >= 2, I_f*(E|Z|)^2 >= 1); the row shows the best-bounded "
        f"grid shape, calibrated"
    )
