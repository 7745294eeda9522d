"""One search's inputs and objective, and the calibration of a shape for it (``lmodp_core.calibrate``)."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, replace

from ..calibration import Calibration, calibrate
from ..geometry import Geometry
from ..noise import Noise
from ..rdp import OrderGridWarning
from ..sampling import Poisson
from .results import Candidate

OBJECTIVES = ("std", "mean_abs", "usefulness")
# PLD discretisation error of the calibrations that only rank shapes (``Problem.ranking``): each family's
# winner is calibrated again at the default (``Problem.certify``), so results keep the default precision
RANKING_PLD_RTOL = 1e-2


@contextlib.contextmanager
def quiet_order_grid():
    """Silence order-grid-edge warnings inside the search: an edge optimum only means the bound could be tighter,
    and the calibration loops would repeat it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrderGridWarning)
        yield


@dataclass(frozen=True)
class Problem:
    """One search's target (epsilon, delta, steps, sampling, geometry), accounting method, objective and deadline."""

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
    pld_rtol: float | None = None  # PLD error of each calibration's evaluations (None: the accountant's default)

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

    def remaining_time(self) -> float:
        """Seconds left before the deadline; ValueError once it has passed."""
        remaining = self.deadline - time.time()
        if not remaining > 0:
            raise ValueError(f"the search reached its time_limit of {self.time_limit:g} s")
        return remaining

    def calibrate(self, noise: Noise, method: str) -> Calibration:
        """``lmodp_core.calibrate`` of ``noise`` to this target, within the search's remaining time."""
        with quiet_order_grid():
            return calibrate(
                noise,
                self.geometry,
                self.sampling,
                self.steps,
                target_epsilon=self.epsilon,
                target_delta=self.delta,
                method=method,
                pld_rtol=self.pld_rtol,
                time_limit=self.remaining_time(),
            )

    def candidate(self, family: str, noise: Noise, method: str) -> Candidate:
        calibration = self.calibrate(noise, method)
        return Candidate(
            family, calibration.noise, calibration.epsilon, self.value(calibration.noise), calibration.report.method
        )

    def ranking(self) -> Problem:
        """This problem with the cheaper PLD precision that only ranks shapes (``RANKING_PLD_RTOL``: every answer
        is still a sound upper bound, so a ranked candidate is certified, only with a slightly larger scale)."""
        return replace(self, pld_rtol=RANKING_PLD_RTOL)

    def certify(self, ranked: Candidate) -> Candidate:
        """The better of ``ranked`` (calibrated under ``ranking()``) and its shape calibrated again at this
        problem's precision; ``ranked`` where that calibration cannot run (the time limit passed). Both are sound.
        Under method="rdp" no PLD answer is involved, so ``ranked`` already has the default precision."""
        if self.method == "rdp":
            return ranked
        try:
            certified = self.candidate(ranked.family, ranked.noise, self.method)
        except ValueError:
            return ranked
        return min((ranked, certified), key=lambda c: self.loss(c.objective))


def candidate_task(task) -> Candidate:
    """``Problem.candidate`` for a (family, noise, problem, method) task of a process pool."""
    family, noise, problem, method = task
    return problem.candidate(family, noise, method)
