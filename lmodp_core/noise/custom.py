"""A user-supplied symmetric density; every quantity is computed by quadrature."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .._quadrature import log_integral, real_line_nodes
from .._validation import check_finite, check_positive
from .base import Noise

_NORMALISATION_TOL = 1e-6


class CustomNoise(Noise):
    """Any symmetric density on the real line, given by its log-density.

    Parameters
    ----------
    logpdf : vectorised callable x -> log f(x) of the *unit* density (``scale`` multiplies the variable).
    sampler : optional callable (rng, size) -> draws of the unit density; needed only for ``sample``.
    scale : the noise is ``scale * Z0`` with Z0 ~ f.
    kinks : points (of the unit density) where f is not smooth; quadrature splits there.
    name : a label used in reports and ``to_dict``.

    The density is checked at construction: it must integrate to 1 (within 1e-6) and be symmetric.
    ``to_dict`` records name/scale/kinks; ``from_dict`` needs the callables again (``logpdf=``, ``sampler=``).
    """

    family = "custom"

    def __init__(self, logpdf: Callable, sampler: Callable | None = None, *, scale: float = 1.0,
                 kinks=(0.0,), name: str = "custom", typical_scale: float = 1.0, _checked: bool = False):
        if not callable(logpdf):
            raise ValueError(f"logpdf must be a callable x -> log f(x), got {logpdf!r}")
        if sampler is not None and not callable(sampler):
            raise ValueError(f"sampler must be None or a callable (rng, size) -> samples, got {sampler!r}")
        self._unit_logpdf = logpdf
        self._sampler = sampler
        self.scale = check_positive("scale", scale)
        self._kinks = tuple(check_finite("kinks", k) for k in kinks)
        self.name = str(name)
        self._unit_typical = check_positive("typical_scale", typical_scale)
        if not _checked:
            self._check_density()
        self._freeze()

    def _check_density(self) -> None:
        nodes, log_w, _ = real_line_nodes(self._kinks or (0.0,), self._unit_typical)
        with np.errstate(all="ignore"):
            values = np.asarray(self._unit_logpdf(nodes), dtype=float)
        if values.shape != nodes.shape or np.any(np.isnan(values)) or np.any(values == np.inf):
            raise ValueError("logpdf must be vectorised and return finite values or -inf (no NaN, no +inf)")
        total = math.exp(log_integral(values, log_w))
        if abs(total - 1.0) > _NORMALISATION_TOL:
            raise ValueError(f"logpdf must be a normalised density: it integrates to {total:.9g}, not 1")
        probe = np.linspace(0.05, 5.0, 23) * self._unit_typical
        with np.errstate(all="ignore"):
            asym = np.max(np.abs(np.asarray(self._unit_logpdf(probe)) - np.asarray(self._unit_logpdf(-probe))))
        if not asym < 1e-9:
            raise ValueError(f"logpdf must be symmetric about 0 (|log f(x) - log f(-x)| up to {asym:.3g})")

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            return np.asarray(self._unit_logpdf(x / self.scale), dtype=float) - math.log(self.scale)

    def sample(self, rng, size=None):
        if self._sampler is None:
            raise ValueError(f"CustomNoise {self.name!r} has no sampler; pass sampler=(rng, size) -> draws")
        return self.scale * np.asarray(self._sampler(rng, size), dtype=float)

    def scaled(self, factor):
        return CustomNoise(self._unit_logpdf, self._sampler, scale=self.scale * check_positive("factor", factor),
                           kinks=self._kinks, name=self.name, typical_scale=self._unit_typical, _checked=True)

    @property
    def kinks(self):
        return tuple(self.scale * k for k in self._kinks)

    @property
    def typical_scale(self):
        return self.scale * self._unit_typical

    def _params(self):
        return {"name": self.name, "scale": self.scale, "kinks": list(self._kinks),
                "typical_scale": self._unit_typical}

    def __eq__(self, other):
        return (type(other) is CustomNoise and self._unit_logpdf is other._unit_logpdf
                and self._params() == other._params())

    def __hash__(self):
        return hash((id(self._unit_logpdf), self.name, self.scale))

    @classmethod
    def _from_params(cls, params, **extra):
        if "logpdf" not in extra:
            raise ValueError("rebuilding a CustomNoise needs its density: from_dict(data, logpdf=..., sampler=...)")
        params = dict(params)
        params["kinks"] = tuple(params.get("kinks", (0.0,)))
        return cls(extra.pop("logpdf"), extra.pop("sampler", None), **params)
