"""Sampling schemes (docs/theory.md §3.3). Neighbouring relation: add/remove one example.

Fixed-size batches (replace-one neighbours) are not implemented: a run that shuffles and batches is not
covered by these bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from .validation import check_sample_rate


@dataclass(frozen=True)
class Poisson:
    """Each example joins a step's batch independently with probability ``sample_rate`` (1 = no sampling)."""

    sample_rate: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "sample_rate", check_sample_rate(self.sample_rate))

    @property
    def subsampled(self) -> bool:
        return self.sample_rate < 1.0

    def to_dict(self) -> dict:
        return {"kind": "poisson", "sample_rate": self.sample_rate}

    @staticmethod
    def from_dict(data: dict) -> Poisson:
        if not isinstance(data, dict) or data.get("kind") != "poisson" or "sample_rate" not in data:
            raise ValueError(f"sampling dict needs kind='poisson' and a 'sample_rate', got {data!r}")
        return Poisson(data["sample_rate"])


NO_SAMPLING = Poisson(1.0)


def as_sampling(sampling) -> Poisson:
    """Accept a ``Poisson`` or a bare sample rate."""
    if isinstance(sampling, Poisson):
        return sampling
    if sampling is None:
        return NO_SAMPLING
    return Poisson(sampling)


def required_sampling(sampling) -> Poisson:
    """``as_sampling`` for an argument with no default: None (nothing given) is refused, not read as no
    subsampling."""
    if sampling is None:
        raise ValueError("sampling is required: pass Poisson(sample_rate) (Poisson(1.0) means no subsampling)")
    return as_sampling(sampling)
