"""Google dp_accounting interoperability: ``DpEvent`` trees in and out, and an lmodp ``PrivacyAccountant``.

    from_dp_event(event) -> Accountant        # Gaussian, Laplace, PoissonSampled, SelfComposed, Composed, NoOp
    to_dp_event(mechanism) -> DpEvent         # Gaussian and Laplace mechanisms (where an event exists)
    noise_dp_event(noise, geometry)           # the per-family registry behind to_dp_event (singledispatch)
    LmodpAccountant()                         # a dp_accounting.PrivacyAccountant answered by lmodp

Event semantics (dp_accounting's own definitions, add/remove-one neighbours):
- ``GaussianDpEvent(m)``: N(0, m^2) per coordinate on a vector query of L2 norm <= 1 -> ``Gaussian(m), L2Ball(1)``;
- ``LaplaceDpEvent(m)``: Laplace(0, m) per coordinate on a vector query of L1 norm <= 1 -> ``Laplace(m), L1Ball(1)``
  (the 1-D pair at the clip dominates it, docs/accounting.md "Laplace under L1Ball", so lmodp accounts it with the
  same scalar-pair PLD as dp_accounting);
- ``PoissonSampledDpEvent(q, e)`` around one of the above: ``Poisson(q)``; nested samplings multiply their rates.
A zero noise multiplier or ``NonPrivateDpEvent`` has no finite guarantee: ``LmodpAccountant`` then answers
epsilon = inf and delta = 1 (as dp_accounting's accountants do) and ``from_dp_event`` raises.

dp_accounting is an optional dependency (``pip install lmodp[interop]``); only this module imports it.
"""

from __future__ import annotations

import functools
import math
import numbers

try:
    import dp_accounting
    from dp_accounting import dp_event as _events
    from dp_accounting.privacy_accountant import NeighboringRelation
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("lmodp_core.interop needs dp_accounting: pip install 'lmodp[interop]'") from error

from .accountant import METHODS, Accountant
from .geometry import Geometry, L1Ball, L2Ball
from .mechanism import Mechanism
from .noise import Gaussian, Laplace, Noise
from .sampling import Poisson
from .validation import check_choice, check_delta, check_finite, check_nonnegative

__all__ = ["from_dp_event", "to_dp_event", "noise_dp_event", "LmodpAccountant"]

_NON_PRIVATE = None  # a run with no finite guarantee (zero noise, NonPrivateDpEvent)


class _UnsupportedEvent(Exception):
    """An event type lmodp has no mechanism for (reported to dp_accounting as CompositionErrorDetails)."""

    def __init__(self, event, message: str):
        super().__init__(message)
        self.event = event


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def _parameter(event, name: str) -> float:
    """A noise multiplier or sampling probability of ``event``: a finite number >= 0."""
    value = check_finite(f"{type(event).__name__}.{name}", getattr(event, name))
    if value < 0:
        raise ValueError(f"{type(event).__name__}.{name} must be >= 0, got {value!r}")
    return value


def _base_mechanism(event, sample_rate: float):
    """The lmodp mechanism of a Gaussian or Laplace event sampled at ``sample_rate`` (None: not private)."""
    multiplier = _parameter(event, "noise_multiplier")
    if multiplier == 0.0:
        return _NON_PRIVATE
    if isinstance(event, _events.GaussianDpEvent):
        return Mechanism(Gaussian(multiplier), L2Ball(1.0), Poisson(sample_rate))
    return Mechanism(Laplace(multiplier), L1Ball(1.0), Poisson(sample_rate))


def _runs(event, count: int, sample_rate: float = 1.0) -> list:
    """(mechanism or _NON_PRIVATE, count) runs of ``count`` repetitions of ``event``, in order.

    The whole tree is checked even when ``count`` is 0 (dp_accounting's ``supports`` asks with count 0).
    """
    if isinstance(event, _events.NoOpDpEvent):
        return []
    if isinstance(event, _events.NonPrivateDpEvent):
        return [(_NON_PRIVATE, count)] if count else []
    if isinstance(event, (_events.GaussianDpEvent, _events.LaplaceDpEvent)):
        mechanism = _base_mechanism(event, sample_rate)
        return [(mechanism, count)] if count else []
    if isinstance(event, _events.SelfComposedDpEvent):
        return _runs(event.event, count * _count(event.count, "SelfComposedDpEvent.count"), sample_rate)
    if isinstance(event, _events.ComposedDpEvent):
        return [run for inner in event.events for run in _runs(inner, count, sample_rate)]
    if isinstance(event, _events.PoissonSampledDpEvent):
        rate = _parameter(event, "sampling_probability")
        if rate > 1.0:
            raise ValueError(f"PoissonSampledDpEvent.sampling_probability must lie in [0, 1], got {rate!r}")
        if not isinstance(
            event.event, (_events.GaussianDpEvent, _events.LaplaceDpEvent, _events.PoissonSampledDpEvent)
        ):
            raise _UnsupportedEvent(
                event,
                "PoissonSampledDpEvent must wrap a GaussianDpEvent, a LaplaceDpEvent or "
                f"another PoissonSampledDpEvent, got {type(event.event).__name__}",
            )
        if rate == 0.0:
            return _runs(event.event, 0)
        return _runs(event.event, count, sample_rate * rate)  # sampling twice = sampling at the product rate
    raise _UnsupportedEvent(
        event,
        f"{type(event).__name__} has no lmodp mechanism; supported: Gaussian, Laplace, "
        "PoissonSampled, SelfComposed, Composed, NoOp and NonPrivate events",
    )


def _checked_event(event):
    if not isinstance(event, _events.DpEvent):
        raise ValueError(f"event must be a dp_accounting DpEvent, got {event!r}")
    return event


def from_dp_event(event, *, method: str = "auto") -> Accountant:
    """An ``Accountant`` whose ledger is the mechanism runs of a dp_accounting event tree.

    Raises ValueError for event types without an lmodp mechanism and for events with no finite guarantee
    (a zero noise multiplier, ``NonPrivateDpEvent``).
    """
    try:
        runs = _runs(_checked_event(event), 1)
    except _UnsupportedEvent as unsupported:
        raise ValueError(str(unsupported)) from None
    accountant = Accountant(method=method)
    for mechanism, count in runs:
        if mechanism is _NON_PRIVATE:
            raise ValueError(
                "the event contains a non-private part (zero noise or NonPrivateDpEvent): no finite epsilon exists"
            )
        accountant.step(count, noise=mechanism.noise, geometry=mechanism.geometry, sampling=mechanism.sampling)
    return accountant


@functools.singledispatch
def noise_dp_event(noise: Noise, geometry: Geometry) -> _events.DpEvent | None:
    """The unsampled dp_accounting event of ``noise`` on a ``geometry`` query, or None where none exists (the
    extension point for a new noise family: ``@noise_dp_event.register(MyNoise)``)."""
    return None


@noise_dp_event.register(Gaussian)
def _gaussian_event(noise: Gaussian, geometry: Geometry):
    return dp_accounting.GaussianDpEvent(noise.sigma / geometry.radius)  # an L1 or scalar query is in the L2 ball


@noise_dp_event.register(Laplace)
def _laplace_event(noise: Laplace, geometry: Geometry):
    if geometry.shift_exponent > 1:
        return None  # dp_accounting's Laplace event is for L1-bounded queries
    return dp_accounting.LaplaceDpEvent(noise.scale / geometry.radius)


def to_dp_event(mechanism: Mechanism):
    """The dp_accounting event of one step of ``mechanism``, where one exists.

    Gaussian noise in any geometry gives ``GaussianDpEvent(sigma / radius)`` (an L1 or scalar query of radius r
    also has L2 norm <= r, so the event never claims more privacy than the step has); Laplace noise on a scalar
    or L1-clipped query gives ``LaplaceDpEvent(scale / radius)``. Poisson sampling below 1 wraps the event in
    ``PoissonSampledDpEvent``. Other combinations raise ValueError (account them with ``Accountant``).
    """
    if not isinstance(mechanism, Mechanism):
        raise ValueError(f"mechanism must be an lmodp_core Mechanism(noise, geometry, sampling), got {mechanism!r}")
    event = noise_dp_event(mechanism.noise, mechanism.geometry)
    if event is None:
        raise ValueError(
            f"dp_accounting has no event for {type(mechanism.noise).__name__} noise on a "
            f"{type(mechanism.geometry).__name__} query (events exist for Gaussian noise in any "
            "geometry and Laplace noise on Scalar or L1Ball queries); account it with "
            "lmodp_core.Accountant"
        )
    if mechanism.sampling.subsampled:
        event = dp_accounting.PoissonSampledDpEvent(mechanism.sampling.sample_rate, event)
    return event


class LmodpAccountant(dp_accounting.PrivacyAccountant):
    """A dp_accounting ``PrivacyAccountant`` whose answers are lmodp's sound upper bounds.

    Use it wherever dp_accounting's accountants go, e.g.
    ``mechanism_calibration.calibrate_dp_mechanism(LmodpAccountant, make_event, target_epsilon, target_delta)``.
    ``method`` is the lmodp accounting method ("auto": the smaller of PLD, where a dominating pair is known,
    and Renyi DP). Only add/remove-one neighbours are supported.
    """

    def __init__(
        self, neighboring_relation: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE, *, method: str = "auto"
    ):
        if neighboring_relation != NeighboringRelation.ADD_OR_REMOVE_ONE:
            raise ValueError(
                f"LmodpAccountant supports neighboring_relation=ADD_OR_REMOVE_ONE only, got {neighboring_relation!r}"
            )
        super().__init__(neighboring_relation)
        self._accountant = Accountant(method=check_choice("method", method, METHODS))
        self._non_private = False

    def _maybe_compose(self, event, count: int, do_compose: bool):
        try:
            runs = _runs(_checked_event(event), _count(count, "count"))
        except _UnsupportedEvent as unsupported:
            return self.CompositionErrorDetails(invalid_event=unsupported.event, error_message=str(unsupported))
        if do_compose:
            for mechanism, steps in runs:
                if mechanism is _NON_PRIVATE:
                    self._non_private = True
                else:
                    self._accountant.step(
                        steps, noise=mechanism.noise, geometry=mechanism.geometry, sampling=mechanism.sampling
                    )
        return None

    @property
    def accountant(self) -> Accountant:
        """The lmodp ``Accountant`` holding the composed ledger (``report(delta)`` says which method answered)."""
        return self._accountant

    def get_epsilon(self, target_delta: float) -> float:
        """A sound upper bound on epsilon at ``target_delta`` (inf after a non-private event)."""
        if self._non_private:
            check_delta(target_delta, "target_delta")
            return math.inf
        return self._accountant.get_epsilon(target_delta)

    def get_delta(self, target_epsilon: float) -> float:
        """A sound upper bound on delta at ``target_epsilon`` (1 after a non-private event)."""
        if self._non_private:
            check_nonnegative("target_epsilon", target_epsilon)
            return 1.0
        return self._accountant.get_delta(target_epsilon)
