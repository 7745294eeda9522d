"""What ``optimize_noise`` returns: the calibrated candidates and the winner (JSON round trip for the cache)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..noise import Noise

RESULT_VERSION = 2  # 2: inputs use the keys target_epsilon and target_delta


@dataclass(frozen=True)
class Candidate:
    """One calibrated noise: its sound epsilon at the target delta and its objective value."""

    family: str
    noise: Noise
    epsilon: float
    objective: float
    method: str

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "noise": self.noise.to_dict(),
            "epsilon": self.epsilon,
            "objective": self.objective,
            "method": self.method,
        }

    @staticmethod
    def from_dict(data: dict) -> Candidate:
        return Candidate(
            data["family"], Noise.from_dict(data["noise"]), data["epsilon"], data["objective"], data["method"]
        )


@dataclass(frozen=True)
class OptimizeResult:
    """The best sound noise for the target, and the numbers that justify it.

    ``epsilon`` is the sound epsilon of ``noise`` (<= the target; its scale is within a factor 1.001 of the smallest
    that meets the target: ``lmodp_core.calibrate`` with its default rtol).
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
        return {
            "result_version": RESULT_VERSION,
            "family": self.family,
            "noise": self.noise.to_dict(),
            "epsilon": self.epsilon,
            "objective": self.objective,
            "objective_name": self.objective_name,
            "ratio_to_gaussian": self.ratio_to_gaussian,
            "method": self.method,
            "candidates": [c.to_dict() for c in self.candidates],
            "inputs": self.inputs,
            "notes": list(self.notes),
            "stats": self.stats,
        }

    @staticmethod
    def from_dict(data: dict) -> OptimizeResult:
        if not isinstance(data, dict) or data.get("result_version") != RESULT_VERSION:
            raise ValueError(f"optimize result dict must have result_version={RESULT_VERSION}")
        return OptimizeResult(
            Noise.from_dict(data["noise"]),
            data["epsilon"],
            data["objective"],
            data["objective_name"],
            data["ratio_to_gaussian"],
            data["method"],
            tuple(Candidate.from_dict(c) for c in data["candidates"]),
            data["inputs"],
            tuple(data["notes"]),
            data["stats"],
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
