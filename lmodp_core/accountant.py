"""Composition of mechanisms and the privacy ledger (docs/theory.md §3.4).

An ``Accountant`` keeps an ordered ledger of (``Mechanism``, count) runs (``lmodp_core.mechanism``) and answers
get_epsilon(delta) / get_delta(epsilon) with a sound method:
- "rdp": Renyi DP (any density and geometry), composed by adding RDP curves, converted at the end;
- "pld": privacy-loss distributions (tight), only where a dominating pair is known (``lmodp_core.pld``);
- "auto": the smaller of the sound answers available (PLD where supported, RDP always; the RDP answer is not
  computed where a cheap lower bound on it already exceeds the PLD answer, see ``Accountant.report``).

Before composing, the ledger is compacted (``lmodp_core.mechanism.compact_ledger``: exact merges of Gaussian steps,
and a sound bucketing of many distinct sampled Gaussians). See docs/pld.md, "Limits".
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass
from functools import partial

import numpy as np

from .geometry import Geometry, check_geometry
from .mechanism import MAX_GAUSSIAN_MU, Mechanism, _gaussian_mu, _required, compact_ledger
from .noise import Noise
from .noise.custom import check_unambiguous_densities
from .rdp import DEFAULT_ORDERS, delta_from_rdp, epsilon_from_rdp, step_rdp
from .rdp.per_step import unbounded_l2_reason
from .rdp.registry import has_step_rdp_closed_form
from .rdp.step import step_rdp_lower_bound
from .sampling import as_sampling, required_sampling
from .validation import check_choice, check_delta, check_noise, check_nonnegative, check_orders, check_steps

METHODS = ("auto", "pld", "rdp")
NEIGHBOURING_RELATIONS = ("add_remove",)  # add/remove one example: the relation every bound here is proven for
STATE_VERSION = 2  # 2 added "neighbouring"; a version-1 state is read as add_remove (the only relation it had)
_OLD_STATE_VERSION = 1
MAX_DISTINCT_RDP = 256  # distinct non-Gaussian mechanisms whose RDP curves a ledger may need
_SMALLEST_EPSILON = 5e-324
_STATE_KEYS = ("method", "orders", "default", "ledger")
_PROFILE_NOTE = (
    "PLD composes a pair built from the RDP curve of a step without a known dominating shift (vector geometry "
    "with non-Gaussian noise, or a user density): a sound bound, not the tight value (docs/accounting.md)"
)


def _state_checksum(state: dict) -> str:
    body = {k: v for k, v in state.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class EpsilonReport:
    """The answer to "what epsilon at this delta", with how it was obtained.

    ``epsilon`` is the guarantee (a sound upper bound). ``epsilon_lower`` is the lower end of the PLD
    discretisation interval (the true epsilon of the composed dominating pairs lies between the two; where a
    step has only a profile pair, see ``notes``, that pair is itself a bound); it is not a guarantee and is None
    when PLD was not used. ``pld_skipped`` says why PLD was not used although the ledger
    supports it (a limit of ``lmodp_core.pld``: delta range, array size, run count, noise scale; RDP answered);
    ``notes`` lists sound approximations made (bucketing of many sampled Gaussians, clip/sigma beyond 1e100).
    ``rdp_skipped`` says why the RDP answer was not computed (``rdp_epsilon`` and ``rdp_order`` are None then):
    method="pld", or a lower bound on it already at or above the PLD answer.
    """

    epsilon: float
    delta: float
    method: str
    rdp_epsilon: float | None  # None when not computed (``rdp_skipped``)
    rdp_order: float | None  # None when every RDP value is inf, or when not computed
    pld_epsilon: float | None = None
    epsilon_lower: float | None = None
    steps: int = 0
    pld_skipped: str | None = None
    notes: tuple[str, ...] = ()  # e.g. why epsilon is inf (a non-smooth density under L2Ball), or a bucketing
    rdp_skipped: str | None = None

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["notes"] = list(self.notes)
        return data


def _pld_module():
    from . import pld

    return pld


class Accountant:
    """A privacy ledger for a sequence of (possibly different) mechanisms.

    ``noise``, ``geometry`` and ``sampling`` give the default mechanism of ``step()`` (all three, or none: then
    every ``step()`` names its own). ``neighbouring`` is the neighbouring relation the bounds hold for;
    "add_remove" (add or remove one example) is the only one supported.

    >>> acc = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01))
    >>> acc.step(1000).get_epsilon(1e-5)  # doctest: +SKIP

    ``pld_rtol`` is the discretisation error aimed at by the PLD answers (``lmodp_core.pld``, default 1e-3).
    """

    def __init__(
        self,
        noise: Noise | None = None,
        geometry: Geometry | None = None,
        sampling=None,
        *,
        method: str = "auto",
        orders=None,
        neighbouring: str = "add_remove",
        pld_rtol: float | None = None,
    ):
        self.method = check_choice("method", method, METHODS)
        self.pld_rtol = _pld_module().DEFAULT_RTOL if pld_rtol is None else _pld_module().check_rtol(pld_rtol)
        self.orders = DEFAULT_ORDERS if orders is None else check_orders(orders)
        self.neighbouring = check_choice("neighbouring", neighbouring, NEIGHBOURING_RELATIONS)
        if noise is None and (geometry is not None or sampling is not None):
            raise ValueError(
                "geometry and sampling describe the default mechanism: give noise too, or pass all "
                "three to step(noise=..., geometry=..., sampling=...)"
            )
        self._default = (
            None
            if noise is None
            else Mechanism(check_noise(noise), _required_geometry(geometry), required_sampling(sampling))
        )
        self._ledger: list[list] = []

    # ---- composing -------------------------------------------------------------------------------------
    def step(
        self, count: int = 1, *, noise: Noise | None = None, geometry: Geometry | None = None, sampling=None
    ) -> Accountant:
        """Record ``count`` more steps of the default mechanism, or of one with the given parts replaced."""
        count = check_steps(count, "count")
        base = self._default
        if base is None:
            if noise is None:
                raise ValueError("step() needs a noise: give one to Accountant(...) or to step(noise=...)")
            mechanism = Mechanism(check_noise(noise), _required_geometry(geometry), required_sampling(sampling))
        else:
            mechanism = Mechanism(
                noise if noise is not None else base.noise,
                geometry if geometry is not None else base.geometry,
                as_sampling(sampling) if sampling is not None else base.sampling,
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
        if not self._ledger:
            return total
        runs, _ = compact_ledger(self.ledger)
        distinct = sum(not has_step_rdp_closed_form(m.noise) for m, _ in runs)
        if distinct > MAX_DISTINCT_RDP:
            raise ValueError(
                f"the ledger holds {distinct} distinct mechanisms without a closed-form RDP (e.g. "
                f"non-Gaussian); at most {MAX_DISTINCT_RDP} are supported (each needs its own RDP curve)"
            )
        for mechanism, count in runs:
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
            raise ValueError(
                "method='pld' needs a dominating pair for every mechanism in the ledger: a mechanism whose "
                "unsampled RDP is infinite at every order (a density with jumps under L2Ball) has none; "
                "use method='auto' or 'rdp'"
            )
        return supported

    def _beyond_float_range(self) -> bool:
        return any(_gaussian_mu(m) > MAX_GAUSSIAN_MU for m, _ in self._ledger)

    def _pld_answer(self, query, value: float):
        """(pld answer, None) or, under "auto" when PLD would exceed its limits, (None, why it was skipped)."""
        pld = _pld_module()
        try:
            return query(self.ledger, value, rtol=self.pld_rtol), None
        except pld.PLDLimitError as error:
            if self.method == "pld":
                raise
            return None, str(error)

    def _rdp_lower_bound(self) -> np.ndarray | None:
        """A lower bound on ``rdp()`` from ``step_rdp_lower_bound`` (one exact pair per step, no sup over shifts),
        or None when every mechanism has a closed-form RDP (then ``rdp()`` is cheap and no bound is needed)."""
        if all(has_step_rdp_closed_form(m.noise) for m, _ in self._ledger):
            return None
        runs, _ = compact_ledger(self.ledger)  # equal mechanisms grouped (exact; only Gaussians are bounded)
        return sum(
            (count * step_rdp_lower_bound(m.noise, m.geometry, m.sampling, self.orders) for m, count in runs),
            np.zeros(self.orders.shape),
        )

    def _rdp_skip_reason(self, pld_answer: float, rdp_answer_at_least) -> str | None:
        """Why the RDP answer need not be computed next to the PLD answer ``pld_answer`` (None: compute it).

        ``rdp_answer_at_least(curve)`` converts a lower-bound RDP curve into a lower bound on the RDP answer (the
        conversions are non-decreasing in the curve). Skipping only drops an answer that cannot be the smaller.
        """
        if self.method == "pld":
            return "method='pld'"
        lower_curve = self._rdp_lower_bound()
        if lower_curve is None:
            return None
        at_least = rdp_answer_at_least(lower_curve)
        if at_least < pld_answer:
            return None
        return f"a lower bound on the RDP answer, {at_least:.6g}, is already >= the PLD answer {pld_answer:.6g}"

    def report(self, delta: float, *, all_methods: bool = False) -> EpsilonReport:
        """epsilon at ``delta`` with the method used and the PLD discretisation interval.

        Under method="auto" the RDP answer is computed only where it could be the smaller one: where PLD answers
        and a lower bound on the RDP answer (``rdp.step.step_rdp_lower_bound``, no sup over shifts) is already
        >= the PLD answer, ``rdp_epsilon`` is None and ``rdp_skipped`` says why (the epsilon is the same).
        ``all_methods=True`` always computes it (e.g. to compare the two).
        """
        delta = check_delta(delta)
        if not self._ledger:
            return EpsilonReport(0.0, delta, self.method, 0.0, math.nan, steps=0)
        reasons = [unbounded_l2_reason(m.noise, m.geometry) for m, _ in self._ledger]
        note = next((r for r in reasons if r), None)
        if note:
            return EpsilonReport(math.inf, delta, "rdp", math.inf, math.nan, steps=self.steps, notes=(note,))
        use_pld = self._use_pld()
        if self._beyond_float_range():
            return EpsilonReport(
                math.inf,
                delta,
                self.method,
                math.inf,
                math.nan,
                steps=self.steps,
                notes=(f"a Gaussian step has clip/sigma > {MAX_GAUSSIAN_MU:g}: epsilon is reported as inf",),
            )
        note = compact_ledger(self.ledger)[1]
        notes: tuple[str, ...] = () if note is None else (note,)
        profile = use_pld and _pld_module().uses_profile_pairs(self.ledger)
        if profile:
            notes += (_PROFILE_NOTE,)
        # a profile pair's PLD answer wins for few steps only: with the (cheap) RDP answer first, its refinement
        # stops where it is certainly the larger
        rdp_first = None
        if profile and self.method == "auto" and not all_methods:
            rdp_first = epsilon_from_rdp(self.orders, self.rdp(), delta, warn=False)
        skipped = None
        if use_pld:
            ceiling = math.inf if rdp_first is None else rdp_first[0]
            answer, skipped = self._pld_answer(partial(_pld_module().pld_epsilon, ceiling=ceiling), delta)
            rdp_skipped = None
            if skipped is None and not all_methods and rdp_first is None:
                rdp_skipped = self._rdp_skip_reason(
                    answer[0], lambda curve: epsilon_from_rdp(self.orders, curve, delta, warn=False)[0]
                )
            if rdp_skipped is not None:
                upper, lower = answer
                return EpsilonReport(
                    upper, delta, "pld", None, None, upper, lower, self.steps, notes=notes, rdp_skipped=rdp_skipped
                )
        if rdp_first is None or skipped is not None:
            rdp_first = epsilon_from_rdp(self.orders, self.rdp(), delta, warn=not use_pld or skipped is not None)
        rdp_eps, order = rdp_first
        if not use_pld or skipped is not None:
            return EpsilonReport(
                rdp_eps, delta, "rdp", rdp_eps, order, steps=self.steps, pld_skipped=skipped, notes=notes
            )
        upper, lower = answer
        method = "pld" if (self.method == "pld" or upper <= rdp_eps) else "rdp"
        best = upper if method == "pld" else rdp_eps
        return EpsilonReport(best, delta, method, rdp_eps, order, upper, lower, self.steps, notes=notes)

    def get_epsilon(self, delta: float) -> float:
        """A sound upper bound on epsilon at ``delta`` for everything in the ledger."""
        return self.report(delta).epsilon

    def get_delta(self, epsilon: float) -> float:
        """A sound upper bound on delta at ``epsilon`` (>= 0; at 0 it bounds the total variation distance)."""
        epsilon = check_nonnegative("epsilon", epsilon)
        if not self._ledger:
            return 0.0
        use_pld = self._use_pld()
        if self._beyond_float_range():
            return 1.0
        skipped = None
        if use_pld:
            answer, skipped = self._pld_answer(_pld_module().pld_delta, epsilon)
            if skipped is None and self._rdp_skip_reason(
                answer[0],
                lambda curve: delta_from_rdp(self.orders, curve, max(epsilon, _SMALLEST_EPSILON), warn=False)[0],
            ):
                return answer[0]
        # the RDP conversion is continuous in epsilon and at the smallest float it equals its value at 0
        rdp_delta, _ = delta_from_rdp(
            self.orders, self.rdp(), max(epsilon, _SMALLEST_EPSILON), warn=not use_pld or skipped is not None
        )
        if not use_pld or skipped is not None:
            return rdp_delta
        return answer[0] if self.method == "pld" else min(answer[0], rdp_delta)

    # ---- persistence -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """JSON-safe state with a format version and a checksum; ``from_state_dict`` restores the same ledger."""
        state = {
            "state_version": STATE_VERSION,
            "neighbouring": self.neighbouring,
            "method": self.method,
            "orders": [float(a) for a in self.orders],
            "default": None if self._default is None else self._default.to_dict(),
            "ledger": [{"mechanism": m.to_dict(), "count": int(c)} for m, c in self._ledger],
        }
        state["checksum"] = _state_checksum(state)
        return state

    def load_state_dict(self, state: dict, **noise_extra) -> None:
        """Replace this accountant's state (``noise_extra`` passes logpdf/sampler for custom noises).

        A malformed state (not a dict, wrong version, missing key, wrong container type, checksum mismatch,
        unsupported neighbouring relation) raises ValueError naming what is wrong; this accountant is left
        unchanged. A version-1 state (before the "neighbouring" key) is read as add_remove.
        """
        version = state.get("state_version") if isinstance(state, dict) else None
        if version not in (STATE_VERSION, _OLD_STATE_VERSION):
            raise ValueError(
                f"accountant state must be a dict with state_version={STATE_VERSION} "
                f"(or {_OLD_STATE_VERSION}, read as add_remove neighbours)"
            )
        method, orders, default, ledger = (_required(state, key, "accountant state") for key in _STATE_KEYS)
        neighbouring = (
            "add_remove" if version == _OLD_STATE_VERSION else _required(state, "neighbouring", "accountant state")
        )
        if "checksum" in state and state["checksum"] != _state_checksum(state):
            raise ValueError("accountant state checksum mismatch: the state was edited or damaged")
        if not isinstance(orders, list) or not isinstance(ledger, list):
            raise ValueError(
                f"accountant state needs lists for 'orders' and 'ledger', got "
                f"{type(orders).__name__} and {type(ledger).__name__}"
            )
        if not all(isinstance(a, numbers.Real) and not isinstance(a, bool) for a in orders):
            raise ValueError("accountant state 'orders' must be a list of numbers > 1")
        check_unambiguous_densities(state, noise_extra)
        restored = Accountant(method=method, orders=orders, neighbouring=neighbouring)
        if default is not None:
            restored._default = Mechanism.from_dict(default, **noise_extra)
        restored._ledger = [
            [
                Mechanism.from_dict(_required(entry, "mechanism", "ledger entry"), **noise_extra),
                check_steps(_required(entry, "count", "ledger entry"), "count"),
            ]
            for entry in ledger
        ]
        self.__dict__.update(restored.__dict__)

    @classmethod
    def from_state_dict(cls, state: dict, **noise_extra) -> Accountant:
        accountant = cls()
        accountant.load_state_dict(state, **noise_extra)
        return accountant

    def to_json(self) -> str:
        return json.dumps(self.state_dict())

    @classmethod
    def from_json(cls, text: str, **noise_extra) -> Accountant:
        try:
            state = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ValueError(f"accountant state is not valid JSON: {error}") from None
        return cls.from_state_dict(state, **noise_extra)

    def __repr__(self) -> str:
        return (
            f"Accountant(method={self.method!r}, neighbouring={self.neighbouring!r}, steps={self.steps}, "
            f"runs={len(self._ledger)})"
        )


def _required_geometry(geometry) -> Geometry:
    if geometry is None:
        raise ValueError("geometry is required: pass Scalar(...), L1Ball(...) or L2Ball(...)")
    return check_geometry(geometry)


def compute_epsilon(
    noise: Noise,
    geometry: Geometry,
    sampling,
    steps: int,
    delta: float,
    method: str = "auto",
    pld_rtol: float | None = None,
) -> float:
    """Sound epsilon of ``steps`` compositions of one mechanism at ``delta`` (``geometry`` and ``sampling`` are
    required; ``method`` and ``pld_rtol`` as for ``Accountant``)."""
    accountant = Accountant(noise, geometry, sampling, method=method, pld_rtol=pld_rtol)
    return accountant.step(check_steps(steps)).get_epsilon(delta)
