"""What one example can change in the query (docs/theory.md §3.2).

``radius`` is the largest norm of the change: the dominating shift of the 1-D pairs used by PLD accounting.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from .validation import check_scale


@dataclass(frozen=True)
class Geometry:
    kind: ClassVar[str]

    @property
    def radius(self) -> float:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"kind": self.kind, **{k: getattr(self, k) for k in self.__dataclass_fields__}}

    @staticmethod
    def from_dict(data: dict) -> "Geometry":
        kinds = {cls.kind: cls for cls in (Scalar, L1Ball, L2Ball)}
        if not isinstance(data, dict) or data.get("kind") not in kinds:
            raise ValueError(f"geometry dict needs 'kind' in {sorted(kinds)}, got {data!r}")
        cls = kinds[data["kind"]]
        params = {k: v for k, v in data.items() if k != "kind"}
        names = [f.name for f in fields(cls)]
        if set(params) != set(names):
            raise ValueError(f"a {data['kind']!r} geometry dict needs exactly the keys {['kind', *names]}, "
                             f"got {sorted(data)}")
        return cls(**params)


@dataclass(frozen=True)
class Scalar(Geometry):
    """A single number with sensitivity Delta: shifts s in [-Delta, Delta]."""

    sensitivity: float = 1.0
    kind: ClassVar[str] = "scalar"

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

    def __post_init__(self):
        object.__setattr__(self, "clip", check_scale("clip", self.clip))

    @property
    def radius(self) -> float:
        return self.clip


def check_geometry(geometry) -> Geometry:
    """A concrete geometry; there is no default (the clip and the norm must be stated)."""
    if geometry is None:
        raise ValueError("geometry is required: pass Scalar(...), L1Ball(...) or L2Ball(...)")
    if not isinstance(geometry, Geometry) or type(geometry) is Geometry:
        raise ValueError(f"geometry must be Scalar(...), L1Ball(...) or L2Ball(...), got {geometry!r}")
    return geometry
