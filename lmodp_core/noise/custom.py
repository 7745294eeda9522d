"""A user-supplied symmetric density; every quantity is computed by quadrature."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._quadrature import log_integral, real_line_nodes
from ..validation import check_finite, check_positive
from .base import Noise

_NORMALISATION_TOL = 1e-6
_SYMMETRY_RTOL = 1e-9  # |log f(x) - log f(-x)| / max(1, |log f(x)|)
_JUMP_CORE, _JUMP_CORE_POINTS = 40.0, 4097  # uniform jump-search grid on +-40 typical scales
_JUMP_FAR, _JUMP_FAR_POINTS = 1e6, 200  # geometric grid beyond, out to 1e6 typical scales
_JUMP_HALVINGS = 40
_JUMP_RTOL = 1e-9  # a change of f (relative to its peak) that survives 40 halvings is a jump
_FISHER_RTOL = 1e-6  # agreement required between the fine and coarse rules for I_f
_END_SHARE = 1e-6  # largest share of I_f allowed on nodes next to a breakpoint or beyond 1e8 typical scales


def _unit_fisher(logpdf: Callable, kinks, typical: float) -> float:
    """int f'^2/f of a continuous density by quadrature split at the kinks (inf when unresolved or divergent).

    The score is a central difference whose step stays inside the node's smooth piece."""
    pieces = np.unique(np.asarray(kinks or (0.0,), dtype=float))
    x, log_w, coarse = real_line_nodes(pieces, typical)
    distance = np.min(np.abs(x[:, None] - pieces[None, :]), axis=1)
    keep = distance > 1e-12 * typical
    x, log_w, coarse, distance = x[keep], log_w[keep], coarse[keep], distance[keep]
    step = np.minimum(1e-5 * typical, 0.5 * distance)
    with np.errstate(all="ignore"):
        log_f = np.asarray(logpdf(x), dtype=float)
        score = (np.asarray(logpdf(x + step), dtype=float) - np.asarray(logpdf(x - step), dtype=float)) / (2 * step)
        terms = np.where(np.isneginf(log_f) | (score == 0), -np.inf, log_w + log_f + 2.0 * np.log(np.abs(score)))
    if np.any(np.isnan(terms)):
        return math.inf
    fine = log_integral(terms, np.zeros_like(terms))
    rough = math.log(2.0) + log_integral(terms[coarse], np.zeros(int(coarse.sum())))
    edge = (distance < 1e-8 * typical) | (np.abs(x) > 1e8 * typical)
    edge_share = math.exp(log_integral(terms[edge], np.zeros(int(edge.sum()))) - fine) if edge.any() else 0.0
    if not math.isfinite(fine) or abs(math.expm1(rough - fine)) > _FISHER_RTOL or edge_share > _END_SHARE:
        return math.inf
    return math.exp(fine)


@dataclass(frozen=True, repr=False, init=False)
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
    Two CustomNoise are equal (and hash alike) when they hold the same callables and the same name, scale, kinks
    and typical scale; callables compare with ``==``, which for functions, lambdas and partials is identity, so
    the same formula written twice gives two different noises. The callables must therefore be hashable.
    """

    _unit_logpdf: Callable
    _sampler: Callable | None
    name: str
    scale: float
    _kinks: tuple[float, ...]
    _unit_typical: float
    family: ClassVar[str] = "custom"

    def __init__(
        self,
        logpdf: Callable,
        sampler: Callable | None = None,
        *,
        scale: float = 1.0,
        kinks=(0.0,),
        name: str = "custom",
        typical_scale: float = 1.0,
        _checked: bool = False,
    ):
        if not callable(logpdf):
            raise ValueError(f"logpdf must be a callable x -> log f(x), got {logpdf!r}")
        if sampler is not None and not callable(sampler):
            raise ValueError(f"sampler must be None or a callable (rng, size) -> samples, got {sampler!r}")
        try:
            hash((logpdf, sampler))
        except TypeError:
            raise ValueError(
                "logpdf and sampler must be hashable callables (a CustomNoise compares and hashes "
                "by them); plain functions, lambdas and partials are"
            ) from None
        self._set_checked(
            _unit_logpdf=logpdf,
            _sampler=sampler,
            name=str(name),
            scale=check_positive("scale", scale),
            _kinks=tuple(check_finite("kinks", k) for k in kinks),
            _unit_typical=check_positive("typical_scale", typical_scale),
        )
        if not _checked:
            self._check_density()

    def _check_density(self) -> None:
        nodes, log_w, _ = real_line_nodes(self._kinks or (0.0,), self._unit_typical)
        values = self._unit_values(nodes)
        if values.shape != nodes.shape or np.any(np.isnan(values)) or np.any(values == np.inf):
            raise ValueError("logpdf must be vectorised and return finite values or -inf (no NaN, no +inf)")
        total = math.exp(log_integral(values, log_w))
        if abs(total - 1.0) > _NORMALISATION_TOL:
            raise ValueError(f"logpdf must be a normalised density: it integrates to {total:.9g}, not 1")
        # symmetry on the normalisation nodes, which reach ~4e18 typical scales into both tails
        mirrored = self._unit_values(-nodes)
        both_zero = np.isneginf(values) & np.isneginf(mirrored)
        with np.errstate(invalid="ignore"):
            gap = np.where(both_zero, 0.0, np.abs(values - mirrored) / np.maximum(1.0, np.abs(values)))
        worst = int(np.argmax(np.where(np.isnan(gap), np.inf, gap)))
        if not gap[worst] < _SYMMETRY_RTOL:
            raise ValueError(
                f"logpdf must be symmetric about 0: log f({nodes[worst]:.6g}) = {values[worst]:.6g} but "
                f"log f({-nodes[worst]:.6g}) = {mirrored[worst]:.6g}"
            )

    def _unit_values(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(self._unit_logpdf(x), dtype=float)

    # ---- smoothness (numerical, see docs/accounting.md "Smoothness of user densities") -------------------
    @functools.cached_property
    def _unit_jumps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, log f just left, log f just right) of every jump of the unit density found numerically.

        Every interval of a grid (uniform on +-40 typical scales, geometric out to 1e6, plus the kinks) is
        bisected ``_JUMP_HALVINGS`` times towards its larger change of f; an interval whose change of f stays
        above ``_JUMP_RTOL`` times the peak density at a width of ~1e-14 typical scales holds a jump.
        """
        reach = _JUMP_CORE * self._unit_typical
        far = np.geomspace(reach, _JUMP_FAR * self._unit_typical, _JUMP_FAR_POINTS)
        grid = np.unique(
            np.concatenate(
                [np.linspace(-reach, reach, _JUMP_CORE_POINTS), far, -far, np.asarray(self._kinks, dtype=float)]
            )
        )
        log_peak = float(np.max(self._unit_values(grid)))
        left, right = grid[:-1], grid[1:]
        f_left, f_right = self._relative_pdf(left, log_peak), self._relative_pdf(right, log_peak)
        for _ in range(_JUMP_HALVINGS):
            middle = 0.5 * (left + right)
            f_middle = self._relative_pdf(middle, log_peak)
            go_left = np.abs(f_middle - f_left) >= np.abs(f_right - f_middle)
            right, f_right = np.where(go_left, middle, right), np.where(go_left, f_middle, f_right)
            left, f_left = np.where(go_left, left, middle), np.where(go_left, f_left, f_middle)
        jump = np.abs(f_right - f_left) > _JUMP_RTOL
        return 0.5 * (left + right)[jump], self._unit_values(left[jump]), self._unit_values(right[jump])

    def _relative_pdf(self, x: np.ndarray, log_peak: float) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.exp(self._unit_values(x) - log_peak)

    @property
    def has_jumps(self) -> bool:
        """True when the density has a discontinuity (found numerically, declared kinks included)."""
        return bool(self._unit_jumps[0].size)

    @functools.cached_property
    def _unit_fisher_information(self) -> float:
        return math.inf if self.has_jumps else _unit_fisher(self._unit_logpdf, self._kinks, self._unit_typical)

    @property
    def fisher_information(self) -> float:
        """I_f = int f'^2 / f: ``inf`` for a density with a jump, or when the integral does not converge
        (the two quadrature rules disagree, or the integrand does not vanish at the ends of the pieces)."""
        return self._unit_fisher_information / self.scale**2

    def small_shift_slope(self, orders) -> np.ndarray:
        """lim_{s -> 0} r_a(s) / s: 0 for a continuous density; for jumps from L = f(x-) to R = f(x+),
        sum over jumps of (L^a R^{1-a} - R) / (a - 1) (the strip of width s behind each jump), inf where R = 0 < L.
        The same for negative shifts by symmetry."""
        orders = np.atleast_1d(np.asarray(orders, dtype=float))
        _, log_left, log_right = self._unit_jumps
        with np.errstate(all="ignore"):
            cross = np.exp(orders[:, None] * log_left[None, :] + (1.0 - orders[:, None]) * log_right[None, :])
            terms = np.where(np.isneginf(log_left)[None, :], 0.0, cross - np.exp(log_right)[None, :])
        return np.sum(terms, axis=1) / (orders - 1.0) / self.scale

    def dominating_shift_proven(self, sensitivity: float) -> bool:
        """A user density has no proof that the largest shift dominates (a multimodal density breaks it)."""
        return False

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            return np.asarray(self._unit_logpdf(x / self.scale), dtype=float) - math.log(self.scale)

    def sample(self, rng, size=None):
        if self._sampler is None:
            raise ValueError(f"CustomNoise {self.name!r} has no sampler; pass sampler=(rng, size) -> draws")
        return self.scale * np.asarray(self._sampler(rng, size), dtype=float)

    def scaled(self, factor):
        noise = CustomNoise(
            self._unit_logpdf,
            self._sampler,
            scale=self.scale * check_positive("factor", factor),
            kinks=self._kinks,
            name=self.name,
            typical_scale=self._unit_typical,
            _checked=True,
        )
        for unit_result in ("_unit_jumps", "_unit_fisher_information"):  # scale-free: computed once per density
            if unit_result in self.__dict__:
                noise.__dict__[unit_result] = self.__dict__[unit_result]
        return noise

    @property
    def kinks(self):
        return tuple(self.scale * k for k in self._kinks)

    @property
    def typical_scale(self):
        return self.scale * self._unit_typical

    def _params(self):
        return {"name": self.name, "scale": self.scale, "kinks": list(self._kinks), "typical_scale": self._unit_typical}

    @classmethod
    def _from_params(cls, params, **extra):
        if "logpdf" not in extra:
            raise ValueError("rebuilding a CustomNoise needs its density: from_dict(data, logpdf=..., sampler=...)")
        params = dict(params)
        params["kinks"] = tuple(params.get("kinks", (0.0,)))
        name = params.get("name", "custom")
        return cls(_by_name(extra["logpdf"], name, "logpdf"), _by_name(extra.get("sampler"), name, "sampler"), **params)


def _by_name(given, name: str, what: str):
    """``given`` itself, or ``given[name]`` when a dict maps density names to callables."""
    if not isinstance(given, dict):
        return given
    if what == "logpdf" and name not in given:
        raise ValueError(
            f"{what} is a dict of densities by name but has no entry for the CustomNoise {name!r} "
            f"(it has {sorted(given)})"
        )
    return given.get(name)


def _noise_dicts(state: dict) -> list:
    """The noise dicts of an accountant state (default mechanism and ledger), skipping malformed parts."""
    ledger = state.get("ledger")
    entries = ledger if isinstance(ledger, list) else []
    mechanisms = [e.get("mechanism") for e in entries if isinstance(e, dict)] + [state.get("default")]
    return [m.get("noise") for m in mechanisms if isinstance(m, dict)]


def check_unambiguous_densities(state: dict, extra: dict) -> None:
    """Refuse to give one ``logpdf`` callable to CustomNoise entries with different names in an accountant
    ``state`` (it would silently make every density of the ledger the same); a dict {name: callable} resolves
    them."""
    names = sorted(
        {
            str(d.get("name", "custom"))
            for d in _noise_dicts(state)
            if isinstance(d, dict) and d.get("family") == CustomNoise.family
        }
    )
    if len(names) > 1 and not isinstance(extra.get("logpdf"), dict):
        raise ValueError(
            f"the state holds CustomNoise densities named {names}: pass logpdf={{name: callable}} "
            "(and sampler={name: callable}) so that each entry gets its own density"
        )
