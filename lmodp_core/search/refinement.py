"""Nelder-Mead refinement of an LMO shape (scipy.optimize), each shape ranked by a cheap scale estimate.

The estimate (``estimated_noise``) is not a calibration: it is the scale a few secant steps on (log c, log epsilon)
predict, used only to rank shapes. The refined shape that wins is then calibrated soundly (``Problem.candidate``)
and kept only if it beats the start.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
from scipy import optimize

from ..accountant import compute_epsilon
from ..noise import LMO, Noise
from .budget import SearchBudget
from .problem import Problem, quiet_order_grid
from .results import Candidate

_MAX_LOG_STEP = math.log(8.0)  # an estimate's step changes the scale by at most a factor 8
_SLOPE_RANGE = (-4.0, -0.25)  # d log(epsilon) / d log(scale): epsilon decreases in the scale
_START_SIMPLEX = (0.3, 0.1)  # initial simplex: 0.3 along each axis plus 0.1 x a normal draw


def _next_log_scale(points: list[tuple[float, float]], log_aim: float) -> float:
    """Secant step on (log c, log eps) toward log_aim; eps ~ 1/c until two points give a slope."""
    slope = -1.0
    if len(points) >= 2:
        (c0, e0), (c1, e1) = points[-2], points[-1]
        if c1 != c0:
            slope = min(max((e1 - e0) / (c1 - c0), _SLOPE_RANGE[0]), _SLOPE_RANGE[1])
    step = (log_aim - points[-1][1]) / slope
    return points[-1][0] + max(min(step, _MAX_LOG_STEP), -_MAX_LOG_STEP)


def estimated_noise(noise: Noise, problem: Problem, method: str, evaluations: int) -> Noise:
    """``noise.scaled(c)`` with c the secant's estimate of the calibrated scale after ``evaluations`` accountant
    evaluations (at ``problem.pld_rtol``) from c = 1 (a factor 4 where epsilon is 0 or inf). A ranking value, not a
    guarantee."""
    points: list[tuple[float, float]] = []
    log_c = 0.0
    for _ in range(evaluations):
        problem.remaining_time()
        with quiet_order_grid():
            epsilon = compute_epsilon(
                noise.scaled(math.exp(log_c)),
                problem.geometry,
                problem.sampling,
                problem.steps,
                problem.delta,
                method,
                problem.pld_rtol,
            )
        if not math.isfinite(epsilon) or epsilon <= 0.0:
            log_c += math.log(4.0) if not math.isfinite(epsilon) else -math.log(4.0)
            continue
        points.append((log_c, math.log(epsilon)))
        log_c = _next_log_scale(points, math.log(problem.epsilon))
    return noise.scaled(math.exp(log_c))


def _shape_from_vector(x: np.ndarray, start: dict) -> dict:
    """Shape from (log a3, log a4, log k, w): a1, theta, rate and high stay; low = high * w^2/(1 + w^2)."""
    return {
        **start,
        "a3": math.exp(x[0]),
        "a4": math.exp(x[1]),
        "G_k": math.exp(x[2]),
        "U_a": start["U_b"] * x[3] ** 2 / (1.0 + x[3] ** 2),
    }


def _vector_from_shape(shape: dict) -> np.ndarray:
    ratio = shape["U_a"] / shape["U_b"]
    return np.array(
        [math.log(shape["a3"]), math.log(shape["a4"]), math.log(shape["G_k"]), math.sqrt(ratio / (1.0 - ratio))]
    )


def refine(task: tuple[Candidate, Problem, str, int, SearchBudget]) -> Candidate:
    """Nelder-Mead over the LMO shape from a calibrated start, then a sound calibration of the best shape.

    Each step ranks a shape by its objective at ``estimated_noise``'s scale; only the final shape is calibrated
    and certified, and the start is kept if the refined shape is not better.
    """
    start, problem, method, seed, budget = task
    start_noise = cast(LMO, start.noise)  # refinement starts from a calibrated LMO candidate
    base = LMO.from_paper(start_noise.to_paper())

    def shape(x) -> LMO:
        lmo = LMO.from_paper(_shape_from_vector(np.clip(x, -30.0, 30.0), base.to_paper()))
        return lmo.scaled(start_noise.scale * base.mean_u / lmo.mean_u)  # same typical scale as the start

    def loss(x) -> float:
        try:
            guess = shape(x)
            if problem.objective == "std" and not math.isfinite(guess.variance):
                return math.inf
            estimate = estimated_noise(guess, problem, method, budget.estimate_evaluations)
        except ValueError:  # a shape at the edge of the domain (e.g. low == high), or the time limit passed
            return math.inf
        return problem.loss(problem.value(estimate))

    x0 = _vector_from_shape(base.to_paper())
    along, spread = _START_SIMPLEX
    directions = np.random.default_rng(seed).normal(size=(x0.size, x0.size)) * spread + along * np.eye(x0.size)
    found = optimize.minimize(
        loss,
        x0,
        method="Nelder-Mead",
        options={
            "initial_simplex": np.vstack([x0, x0 + directions]),
            "maxfev": budget.refine_evaluations,
            "xatol": 1e-3,
            "fatol": 1e-4,
        },
    )
    if not found.fun < problem.loss(start.objective):
        return start
    refined = problem.candidate("lmo", shape(found.x), method)
    return min((start, refined), key=lambda c: problem.loss(c.objective))
