"""Free-form noise: a histogram density (``PiecewiseNoise``) whose shape is optimised for the sound epsilon.

The shape is a symmetric density that is non-increasing in |x|, written through its log-decrements: with bins
of width w centred at i*w, log g(i) - log g(i+1) = d_i > 0, and a geometric tail of ratio e^{-d_last}. The
decrements are piecewise linear in i through ``_KNOTS`` knots, and the free parameters are the knots'
log-decrements: every parameter vector is a valid density, monotone (d > 0) with bounded slope (the
knot values are clipped), and the family holds the discretised Gaussian (d_i linear in i), Laplace (d_i
constant), LMO-like shapes and every mixture of them (Gilani et al., ICML 2025, optimise such histograms; the
Cactus mechanism of Alghamdi et al. is one).

The objective of a shape is its std (or E|Z|, or usefulness) at the scale that meets the target: every shape
tried is calibrated by ``lmodp_core.calibrate`` (the full accountant for the actual T, q, delta and
geometry; exact PLD for a scalar query), so every shape tried is certified and the best one is returned. The
search is Nelder-Mead (scipy.optimize) from the discretised best candidate of the other families, in at most
``max_evaluations`` calibrations.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import optimize

from ..geometry import L2Ball
from ..noise import Noise, PiecewiseNoise
from .parallel import Run, progress_bar, skip_work
from .problem import Problem
from .results import Candidate

DEFAULT_MAX_EVALUATIONS = 60  # shapes calibrated per search (each a full sound calibration)
MAX_EVALUATIONS = 10_000
_BLENDS = (0.25, 0.5, 0.75, 0.9)  # weights of the Laplace decrement tried before Nelder-Mead
_KNOTS = 8  # free parameters: log-decrements at knots spread over the bins
_BINS_PER_RADIUS = 4  # bin width = sensitivity / 4 at the warm start's scale (finer bins only add jumps' cost)
_BINS_PER_STD = 16  # and at least this many bins per std (a histogram's jumps cost most under L1)
_SPAN_STDS = 8.0  # the bins cover 8 standard deviations of the warm start; the geometric tail continues
_MAX_BINS = 2048
_LOG_DECREMENT_RANGE = (-20.0, 5.0)  # knot values are clipped here: decrements in [2e-9, 148] per bin
_SIMPLEX_STEP = 0.5  # initial simplex: each knot's log-decrement moved by this


class _Stop(Exception):
    """Ends the search: the evaluation budget is spent."""


def check_max_evaluations(value) -> int:
    """``value`` as an int in [1, MAX_EVALUATIONS], or ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_EVALUATIONS:
        raise ValueError(f"piecewise_evaluations must be an integer in [1, {MAX_EVALUATIONS}], got {value!r}")
    return int(value)


class _Shape:
    """The map from knot log-decrements to a ``PiecewiseNoise`` with fixed bins (module docstring)."""

    def __init__(self, bin_width: float, bins: int):
        self.bin_width = bin_width
        self.bins = bins
        self.knots = np.linspace(0.0, bins - 1.0, _KNOTS)

    def noise(self, log_decrements: np.ndarray) -> PiecewiseNoise:
        clipped = np.clip(log_decrements, *_LOG_DECREMENT_RANGE)
        decrements = np.interp(np.arange(self.bins), self.knots, np.exp(clipped))
        log_values = -np.concatenate([[0.0], np.cumsum(decrements[:-1])])  # log g(i) = -sum_{j<i} d_j
        return PiecewiseNoise.normalised(self.bin_width, np.exp(log_values), tail_ratio=math.exp(-decrements[-1]))

    def fit(self, noise: Noise, laplace_weight: float = 0.0) -> np.ndarray:
        """Knot log-decrements of ``noise``'s log-density sampled at the bin centres (made non-increasing),
        blended with weight ``laplace_weight`` with a Laplace density of the same std (decrement sqrt(2) w/std)."""
        log_density = np.asarray(noise.logpdf(np.arange(self.bins + 1) * self.bin_width), dtype=float)
        log_density = np.minimum.accumulate(np.where(np.isfinite(log_density), log_density, -1e300))
        decrements = np.interp(self.knots, np.arange(self.bins), -np.diff(log_density))
        blended = (1.0 - laplace_weight) * decrements + laplace_weight * math.sqrt(2.0) * self.bin_width / noise.std
        return np.clip(np.log(np.maximum(blended, math.exp(_LOG_DECREMENT_RANGE[0]))), *_LOG_DECREMENT_RANGE)


def _bins(start: Noise, radius: float) -> _Shape:
    """Bins of width radius/m, m >= 4 the smallest integer with at least 16 bins per std of ``start`` (so the
    sensitivity spans whole bins); wider if ``_MAX_BINS`` bins would not cover 8 std."""
    per_radius = max(_BINS_PER_RADIUS, math.ceil(_BINS_PER_STD * radius / start.std))
    width = max(radius / per_radius, _SPAN_STDS * start.std / (_MAX_BINS - 1))
    return _Shape(width, max(2, int(min(_MAX_BINS, math.ceil(_SPAN_STDS * start.std / width) + 1))))


def optimise_piecewise(
    start: Noise, radius: float, calibrate: Callable, loss: Callable, max_evaluations: int, seed: int
):
    """The best calibrated histogram found from ``start`` within ``max_evaluations`` calibrations.

    ``calibrate(noise)`` returns a certified candidate or raises ValueError (raised on if the warm start fails,
    else that shape scores inf); ``loss(candidate)`` ranks them (smaller is better). Returns (best candidate,
    number of calibrations run).
    """
    shape = _bins(start, radius)
    best: list = [None]
    count = [0]

    def objective(x: np.ndarray) -> float:
        if count[0] >= max_evaluations:
            raise _Stop
        count[0] += 1
        noise = shape.noise(x)
        if best[0] is not None:  # start the calibration at the best shape's std: the root is usually near
            noise = noise.scaled(best[0].noise.std / noise.std)
        try:
            candidate = calibrate(noise)
        except ValueError:  # this shape cannot be certified (or the time limit passed: every later call fails fast)
            if count[0] == 1:
                raise
            return math.inf
        if best[0] is None or loss(candidate) < loss(best[0]):
            best[0] = candidate
        return loss(candidate)

    try:
        x0 = min((shape.fit(start, weight) for weight in (0.0, *_BLENDS)), key=objective)
    except _Stop:
        return best[0], count[0]
    directions = _SIMPLEX_STEP * (np.eye(x0.size) + 0.2 * np.random.default_rng(seed).normal(size=(x0.size,) * 2))
    try:
        optimize.minimize(
            objective,
            x0,
            method="Nelder-Mead",
            options={
                "initial_simplex": np.vstack([x0, x0 + directions]),
                "maxfev": max_evaluations,
                "xatol": 1e-3,
                "fatol": 1e-5,
            },
        )
    except _Stop:
        pass
    return best[0], count[0]


def search_piecewise_task(problem: Problem, best_by_family: dict, max_evaluations: int, seed: int):
    """``search_piecewise`` in another process: (candidate or None, notes, stats, calibrations run), or
    ("dropped", the ValueError's message)."""
    run = Run(seed, 1, progress_bar(False, max_evaluations), [], {})
    try:
        found = search_piecewise(problem, best_by_family, max_evaluations, run)
    except ValueError as error:
        return "dropped", str(error)
    return found, run.notes, run.stats, run.stats.get("piecewise_evaluations", 0)


def search_piecewise(problem: Problem, best_by_family: dict, max_evaluations: int, run: Run) -> Candidate | None:
    """The free-form family, warm-started from the best candidate so far; None (with a note) under L2."""
    if isinstance(problem.geometry, L2Ball):
        run.notes.append(
            "piecewise: skipped — a histogram density has jumps (infinite Fisher information), so it "
            "has no dimension-free L2 bound"
        )
        return None
    start = min(best_by_family.values(), key=lambda c: problem.loss(c.objective))
    ranking = problem.ranking()

    def calibrate(noise: Noise) -> Candidate:
        run.bar.update(1)
        return ranking.candidate("piecewise", noise, problem.method)

    found, count = optimise_piecewise(
        start.noise, problem.geometry.radius, calibrate, lambda c: problem.loss(c.objective), max_evaluations, run.seed
    )
    found = problem.certify(found)
    run.stats["piecewise_evaluations"] = count
    skip_work(run.bar, max_evaluations - count)
    run.notes.append(
        f"piecewise: best of {count} calibrated histograms (warm start: {start.family}): objective "
        f"{found.objective:.6g} = {found.objective / start.objective:.4f}x the warm start's"
    )
    return found
