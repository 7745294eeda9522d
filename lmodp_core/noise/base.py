"""The noise interface: a symmetric 1-D density applied i.i.d. to every coordinate (docs/theory.md §3.1)."""

from __future__ import annotations

import abc
import dataclasses
import functools
import inspect
import math
import sys
from typing import Any, ClassVar

import numpy as np

from .._quadrature import half_line_nodes, log_integral
from ..validation import check_generator, check_points, check_size

SCHEMA_VERSION = 1
_REGISTRY: dict[str, type[Noise]] = {}
_POINT_METHODS = ("logpdf", "pdf", "sf", "score")
_LOG_MAX_FLOAT = math.log(sys.float_info.max)


def _exp_or_inf(log_value: float) -> float:
    """e^log_value, saturating to inf instead of raising OverflowError."""
    return math.exp(log_value) if log_value <= _LOG_MAX_FLOAT else math.inf


def _validating_points(method):
    """``method(self, x)`` with x checked first: real numbers or arrays, +-inf allowed, NaN/None/strings refused."""

    @functools.wraps(method)
    def checked(self, x):
        return method(self, check_points(x))

    return checked


def _validating_sampler(method):
    """``sample(self, rng, size)`` with a numpy Generator and a valid size required."""

    @functools.wraps(method)
    def checked(self, rng, size=None):
        return method(self, check_generator(rng), check_size(size))

    return checked


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Noise(abc.ABC):
    """A symmetric noise density. Instances are immutable; ``scaled(c)`` returns the law of c*Z.

    Families are frozen dataclasses (``@dataclass(frozen=True, repr=False)``; ``dataclasses`` refuses a non-frozen
    one): their fields are the constructor arguments, checked in ``__post_init__``, and equality, hashing (the
    accounting caches' keys) and immutability come from the fields. Subclasses provide ``logpdf``, ``sample``,
    ``scaled`` and, where they have them, closed forms for the moments; the generic fallbacks integrate
    numerically on [0, inf) using symmetry. Every family's ``logpdf``/``pdf``/``sf``/``score`` and ``sample``
    check their arguments here, once (``__init_subclass__`` wraps them): points must be real (+-inf allowed,
    NaN refused), ``rng`` a numpy ``Generator``.
    """

    family: ClassVar[str]
    # True only where proven for the whole family: the density is symmetric and non-increasing in |x|
    # (certified sup over shifts, lmodp_core.rdp.certified_sup)
    symmetric_unimodal: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            _REGISTRY[cls.family] = cls
        for name in _POINT_METHODS:
            if name in cls.__dict__:
                setattr(cls, name, _validating_points(cls.__dict__[name]))
        if "sample" in cls.__dict__:
            cls.sample = _validating_sampler(cls.__dict__["sample"])

    # ---- density -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def logpdf(self, x) -> np.ndarray:
        """log density, vectorised over ``x``."""

    @_validating_points
    def pdf(self, x) -> np.ndarray:
        return np.exp(self.logpdf(x))

    @_validating_points
    def sf(self, x) -> np.ndarray:
        """Survival function P(Z > x), by quadrature unless a subclass has a closed form."""
        x = np.asarray(x, dtype=float)
        flat = np.abs(x).ravel()
        nodes, log_w = half_line_nodes(self.typical_scale)
        upper = np.array([math.exp(log_integral(self.logpdf(v + nodes), log_w)) for v in flat]).reshape(x.shape)
        return np.where(x >= 0, upper, 1.0 - upper)

    @_validating_points
    def score(self, x) -> np.ndarray:
        """d/dx log f(x) by central differences (subclasses with closed forms override); 0 where f is 0 on both
        sides (x = +-inf included)."""
        x = np.asarray(x, dtype=float)
        h = 1e-5 * self.typical_scale
        upper, lower = self.logpdf(x + h), self.logpdf(x - h)
        with np.errstate(invalid="ignore"):
            return np.where(upper == lower, 0.0, (upper - lower) / (2.0 * h))

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, size=None) -> np.ndarray:
        """Draw i.i.d. samples with a numpy ``Generator``."""

    @abc.abstractmethod
    def scaled(self, factor: float) -> Noise:
        """The law of ``factor * Z``."""

    # ---- numerics hints --------------------------------------------------------------------------------
    @property
    def kinks(self) -> tuple[float, ...]:
        """Points where the density is not smooth (quadrature splits there)."""
        return (0.0,)

    @property
    @abc.abstractmethod
    def typical_scale(self) -> float:
        """A length scale of the density (sets the quadrature's tail mapping)."""

    # ---- moments ---------------------------------------------------------------------------------------
    def _half_line_moment(self, weight) -> float:
        nodes, log_w = half_line_nodes(self.typical_scale)
        with np.errstate(divide="ignore"):
            return 2.0 * _exp_or_inf(log_integral(self.logpdf(nodes) + np.log(weight(nodes)), log_w))

    @property
    def variance(self) -> float:
        """Var Z (``inf`` when it diverges)."""
        return self._half_line_moment(lambda x: x * x)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def mean_abs(self) -> float:
        """E|Z|."""
        return self._half_line_moment(lambda x: x)

    @property
    def log_density_lipschitz(self) -> float:
        """sup |d/dx log f(x)|, the Lipschitz constant of the log-density (inf: unbounded or not known)."""
        return math.inf

    @property
    def fisher_information(self) -> float:
        """Location Fisher information I_f = int f'(x)^2 / f(x) dx."""
        return self._half_line_moment(lambda x: self.score(x) ** 2)

    # ---- serialisation ---------------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        """Constructor keyword arguments: the dataclass fields, unless a family stores them differently."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def _set_checked(self, **values) -> None:
        """Store checked field values from ``__post_init__`` (or a family's own ``__init__``) of the frozen
        dataclass."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "schema_version": SCHEMA_VERSION, **self._params()}

    @staticmethod
    def from_dict(data: dict[str, Any], **extra) -> Noise:
        """Rebuild a noise from ``to_dict()`` output (``extra`` supplies non-serialisable parts)."""
        if not isinstance(data, dict) or "family" not in data:
            raise ValueError(f"noise dict must contain a 'family' key, got {data!r}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported noise schema_version {version!r} (this library reads {SCHEMA_VERSION})")
        family = data["family"]
        if family not in _REGISTRY:
            raise ValueError(f"unknown noise family {family!r}; known: {sorted(_REGISTRY)}")
        params = {k: v for k, v in data.items() if k not in ("family", "schema_version")}
        return _REGISTRY[family]._from_params(params, **extra)

    @classmethod
    def _from_params(cls, params: dict[str, Any], **extra) -> Noise:
        try:
            inspect.signature(cls).bind(**params, **extra)
        except TypeError as err:
            raise ValueError(
                f"a {cls.family!r} noise dict needs the arguments of {cls.__name__}{inspect.signature(cls)} ({err})"
            ) from None
        return cls(**params, **extra)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"
