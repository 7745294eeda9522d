"""What one example can change in the query (docs/theory.md §3.2).

``radius`` is the largest norm of the change: the dominating shift of the 1-D pairs used by PLD accounting.
``shift_exponent`` k says how the per-coordinate divergences of a change v combine (additivity over independent
coordinates): sum_i r_a(|v_i|) <= radius^k * sup_{0<s<=radius} r_a(s)/s^k, with k = 0 for one coordinate, 1 for an
L1 ball, 2 for an L2 ball (docs/theory.md §4.3). A new geometry sets it (and a ``kind`` for its dict form).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from .validation import check_scale


@dataclass(frozen=True)
class Geometry:
    kind: ClassVar[str]
    shift_exponent: ClassVar[int]

    @property
    def radius(self) -> float:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"kind": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @staticmethod
    def from_dict(data: dict) -> Geometry:
        kinds = {cls.kind: cls for cls in (Scalar, L1Ball, L2Ball)}
        if not isinstance(data, dict) or data.get("kind") not in kinds:
            raise ValueError(f"geometry dict needs 'kind' in {sorted(kinds)}, got {data!r}")
        cls = kinds[data["kind"]]
        params = {k: v for k, v in data.items() if k != "kind"}
        names = [f.name for f in fields(cls)]
        if set(params) != set(names):
            raise ValueError(
                f"a {data['kind']!r} geometry dict needs exactly the keys {['kind', *names]}, got {sorted(data)}"
            )
        return cls(**params)


@dataclass(frozen=True)
class Scalar(Geometry):
    """A single number with sensitivity Delta: shifts s in [-Delta, Delta]."""

    sensitivity: float = 1.0
    kind: ClassVar[str] = "scalar"
    shift_exponent: ClassVar[int] = 0

    def __post_init__(self):
        object.__setattr__(self, "sensitivity", check_scale("sensitivity", self.sensitivity))

    @property
    def radius(self) -> float:
        return self.sensitivity


@dataclass(frozen=True)
class L1Ball(Geometry):
    """A vector query, each example clipped to L1 norm <= clip (any dimension)."""

    clip: float = 1.0
    kind: ClassVar[str] = "l1"
    shift_exponent: ClassVar[int] = 1

    def __post_init__(self):
        object.__setattr__(self, "clip", check_scale("clip", self.clip))

    @property
    def radius(self) -> float:
        return self.clip


@dataclass(frozen=True)
class L2Ball(Geometry):
    """A vector query, each example clipped to L2 norm <= clip (DP-SGD); bounds hold for every dimension."""

    clip: float = 1.0
    kind: ClassVar[str] = "l2"
    shift_exponent: ClassVar[int] = 2

    def __post_init__(self):
        object.__setattr__(self, "clip", check_scale("clip", self.clip))

    @property
    def radius(self) -> float:
        return self.clip


def check_geometry(geometry) -> Geometry:
    """A concrete geometry; there is no default (the clip and the norm must be stated)."""
    if geometry is None:
        raise ValueError("geometry is required: pass Scalar(...), L1Ball(...) or L2Ball(...)")
    if not isinstance(geometry, Geometry) or getattr(geometry, "shift_exponent", None) not in (0, 1, 2):
        raise ValueError(
            f"geometry must be Scalar(...), L1Ball(...) or L2Ball(...) (a Geometry with a "
            f"shift_exponent of 0, 1 or 2), got {geometry!r}"
        )
    return geometry
