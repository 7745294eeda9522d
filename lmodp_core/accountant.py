"""Composition of mechanisms and the privacy ledger (DESIGN §3.4).

A ``Mechanism`` is one step: (noise, geometry, sampling). An ``Accountant`` keeps an ordered ledger of
(mechanism, count) runs and answers epsilon(delta) / delta(epsilon) with a sound method:
- "rdp": Renyi DP (any density and geometry), composed by adding RDP curves, converted at the end;
- "pld": privacy-loss distributions (tight), only where a dominating pair is known (``lmodp_core.pld``);
- "auto": the smaller of the sound answers available (PLD where supported, RDP always).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_choice, check_delta, check_epsilon, check_orders, check_steps
from .geometry import Geometry, L2Ball, check_geometry
from .noise import Noise
from .noise.custom import check_unambiguous_densities
from .rdp import DEFAULT_ORDERS, check_noise, delta_from_rdp, epsilon_from_rdp, step_rdp
from .rdp.per_step import unbounded_l2_reason
from .sampling import Poisson, as_sampling

METHODS = ("auto", "pld", "rdp")
STATE_VERSION = 1


@dataclass(frozen=True)
class Mechanism:
    """One noisy step: noise applied i.i.d. per coordinate, a sensitivity geometry and Poisson sampling."""

    noise: Noise
    geometry: Geometry = field(default_factory=lambda: L2Ball(1.0))
    sampling: Poisson = field(default_factory=Poisson)

    def __post_init__(self):
        check_noise(self.noise)
        check_geometry(self.geometry)
        object.__setattr__(self, "sampling", as_sampling(self.sampling))

    def to_dict(self) -> dict:
        return {"noise": self.noise.to_dict(), "geometry": self.geometry.to_dict(),
                "sampling": self.sampling.to_dict()}

    @staticmethod
    def from_dict(data: dict, **noise_extra) -> "Mechanism":
        return Mechanism(Noise.from_dict(data["noise"], **noise_extra), Geometry.from_dict(data["geometry"]),
                         Poisson.from_dict(data["sampling"]))


@dataclass(frozen=True)
class EpsilonReport:
    """The answer to "what epsilon at this delta", with how it was obtained.

    ``epsilon`` is the guarantee (a sound upper bound). ``epsilon_lower`` is the lower end of the PLD
    discretisation interval (the true epsilon of the composed pair lies between the two); it is not a
    guarantee and is None when PLD was not used.
    """

    epsilon: float
    delta: float
    method: str
    rdp_epsilon: float
    rdp_order: float
    pld_epsilon: float | None = None
    epsilon_lower: float | None = None
    steps: int = 0
    note: str | None = None  # why epsilon is inf when no bound exists (e.g. a non-smooth density under L2Ball)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _pld_module():
    from . import pld

    return pld


class Accountant:
    """A privacy ledger for a sequence of (possibly different) mechanisms.

    >>> acc = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01))
    >>> acc.step(1000).epsilon(1e-5)  # doctest: +SKIP
    """

    def __init__(self, noise: Noise | None = None, geometry: Geometry | None = None, sampling=None, *,
                 method: str = "auto", orders=None):
        self.method = check_choice("method", method, METHODS)
        self.orders = DEFAULT_ORDERS if orders is None else check_orders(orders)
        self._default = None if noise is None else Mechanism(noise, geometry or L2Ball(1.0), as_sampling(sampling))
        self._ledger: list[list] = []

    # ---- composing -------------------------------------------------------------------------------------
    def step(self, count: int = 1, *, noise: Noise | None = None, geometry: Geometry | None = None,
             sampling=None) -> "Accountant":
        """Record ``count`` more steps of the default mechanism, or of one with the given parts replaced."""
        count = check_steps(count, "count")
        base = self._default
        if base is None and noise is None:
            raise ValueError("step() needs a noise: give one to Accountant(...) or to step(noise=...)")
        mechanism = Mechanism(
            noise if noise is not None else base.noise,
            geometry if geometry is not None else (base.geometry if base else L2Ball(1.0)),
            as_sampling(sampling) if sampling is not None else (base.sampling if base else Poisson()),
        )
        if self._ledger and self._ledger[-1][0] == mechanism:
            self._ledger[-1][1] += count
        else:
            self._ledger.append([mechanism, count])
        return self

    @property
    def ledger(self) -> tuple[tuple[Mechanism, int], ...]:
        return tuple((m, c) for m, c in self._ledger)

    @property
    def steps(self) -> int:
        return sum(c for _, c in self._ledger)

    # ---- answers ---------------------------------------------------------------------------------------
    def rdp(self, orders=None) -> np.ndarray:
        """The composed RDP curve: sum of count * step RDP (a sound upper bound at every order)."""
        orders = self.orders if orders is None else check_orders(orders)
        total = np.zeros(orders.shape)
        for mechanism, count in self._ledger:
            total += count * step_rdp(mechanism.noise, mechanism.geometry, mechanism.sampling, orders)
        return total

    def pld_supported(self) -> bool:
        pld = _pld_module()
        return bool(self._ledger) and all(pld.supports(m) for m, _ in self._ledger)

    def _use_pld(self) -> bool:
        if self.method == "rdp":
            return False
        supported = self.pld_supported()
        if self.method == "pld" and not supported:
            raise ValueError("method='pld' needs a known dominating pair for every mechanism in the ledger "
                             "(Gaussian in any geometry, or a scalar query whose hockey-stick curve is monotone "
                             "in the shift); use method='auto' or 'rdp'")
        return supported

    def report(self, delta: float) -> EpsilonReport:
        """epsilon at ``delta`` with the method used and the PLD discretisation interval."""
        delta = check_delta(delta)
        if not self._ledger:
            return EpsilonReport(0.0, delta, self.method, 0.0, math.nan, steps=0)
        reasons = [unbounded_l2_reason(m.noise, m.geometry) for m, _ in self._ledger]
        note = next((r for r in reasons if r), None)
        if note:
            return EpsilonReport(math.inf, delta, "rdp", math.inf, math.nan, steps=self.steps, note=note)
        use_pld = self._use_pld()
        rdp_eps, order = epsilon_from_rdp(self.orders, self.rdp(), delta, warn=not use_pld)
        if not use_pld:
            return EpsilonReport(rdp_eps, delta, "rdp", rdp_eps, order, steps=self.steps)
        upper, lower = _pld_module().pld_epsilon(self.ledger, delta)
        method = "pld" if (self.method == "pld" or upper <= rdp_eps) else "rdp"
        best = upper if method == "pld" else rdp_eps
        return EpsilonReport(best, delta, method, rdp_eps, order, upper, lower, self.steps)

    def epsilon(self, delta: float) -> float:
        """A sound upper bound on epsilon at ``delta`` for everything in the ledger."""
        return self.report(delta).epsilon

    def delta(self, epsilon: float) -> float:
        """A sound upper bound on delta at ``epsilon``."""
        epsilon = check_epsilon(epsilon)
        if not self._ledger:
            return 0.0
        use_pld = self._use_pld()
        rdp_delta, _ = delta_from_rdp(self.orders, self.rdp(), epsilon, warn=not use_pld)
        if not use_pld:
            return rdp_delta
        upper, _ = _pld_module().pld_delta(self.ledger, epsilon)
        return upper if self.method == "pld" else min(upper, rdp_delta)

    # ---- persistence -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """JSON-safe state; ``Accountant.from_state_dict`` restores an identical ledger."""
        return {
            "state_version": STATE_VERSION,
            "method": self.method,
            "orders": [float(a) for a in self.orders],
            "default": None if self._default is None else self._default.to_dict(),
            "ledger": [{"mechanism": m.to_dict(), "count": int(c)} for m, c in self._ledger],
        }

    def load_state_dict(self, state: dict, **noise_extra) -> None:
        """Replace this accountant's state (``noise_extra`` passes logpdf/sampler for custom noises)."""
        if not isinstance(state, dict) or state.get("state_version") != STATE_VERSION:
            raise ValueError(f"accountant state must be a dict with state_version={STATE_VERSION}")
        check_unambiguous_densities(state, noise_extra)
        restored = Accountant(method=state["method"], orders=state["orders"])
        if state["default"] is not None:
            restored._default = Mechanism.from_dict(state["default"], **noise_extra)
        restored._ledger = [[Mechanism.from_dict(e["mechanism"], **noise_extra), check_steps(e["count"], "count")]
                            for e in state["ledger"]]
        self.__dict__.update(restored.__dict__)

    @classmethod
    def from_state_dict(cls, state: dict, **noise_extra) -> "Accountant":
        accountant = cls()
        accountant.load_state_dict(state, **noise_extra)
        return accountant

    def to_json(self) -> str:
        return json.dumps(self.state_dict())

    @classmethod
    def from_json(cls, text: str, **noise_extra) -> "Accountant":
        return cls.from_state_dict(json.loads(text), **noise_extra)

    def __repr__(self) -> str:
        return f"Accountant(method={self.method!r}, steps={self.steps}, runs={len(self._ledger)})"


def epsilon(noise: Noise, geometry: Geometry, sampling, steps: int, delta: float, method: str = "auto") -> float:
    """Sound epsilon of ``steps`` compositions of one mechanism at ``delta``."""
    return Accountant(noise, geometry, sampling, method=method).step(check_steps(steps)).epsilon(delta)
