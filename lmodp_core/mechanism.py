"""One noisy step and the compaction of a ledger of steps (docs/theory.md §3.4).

A ``Mechanism`` is one step: (noise, geometry, sampling). Before composing, a ledger of (mechanism, count) runs is
compacted (``compact_ledger``): equal mechanisms are grouped (composition commutes), unsampled Gaussian steps merge
exactly into one Gaussian (mu^2 = sum_i (r_i / sigma_i)^2, Dong, Roth, Su 2019, arXiv:1905.02383, Cor. 3.3), and
beyond ``MAX_DISTINCT_MECHANISMS`` distinct Poisson-sampled Gaussians of one rate are bucketed, each bucket
accounted at its largest r/sigma (a sound upper bound: adding Gaussian noise to both distributions of the pair is a
post-processing that lowers r/sigma). See docs/pld.md, "Limits".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .geometry import Geometry, L2Ball, check_geometry
from .noise import Gaussian, Noise
from .sampling import Poisson, as_sampling
from .validation import check_noise, check_steps

MAX_DISTINCT_MECHANISMS = 32  # distinct runs composed one by one; beyond, sampled Gaussians are bucketed
MIN_GAUSSIAN_MU = 1e-12  # smaller clip/sigma is accounted at this value (an upper bound; the loss is ~0)
MAX_GAUSSIAN_MU = 1e100  # larger clip/sigma: epsilon = inf and delta = 1 (sound; mu^2 leaves the float range)


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
        return {"noise": self.noise.to_dict(), "geometry": self.geometry.to_dict(), "sampling": self.sampling.to_dict()}

    def to_dp_event(self):
        """This step as a dp_accounting ``DpEvent`` (``lmodp_core.interop.to_dp_event``; needs dp_accounting)."""
        from .interop import to_dp_event

        return to_dp_event(self)

    @staticmethod
    def from_dict(data: dict, **noise_extra) -> Mechanism:
        noise, geometry, sampling = (_required(data, key, "mechanism") for key in ("noise", "geometry", "sampling"))
        if not isinstance(sampling, dict) or "sample_rate" not in sampling:
            raise ValueError(f"mechanism 'sampling' must be a dict with a 'sample_rate' key, got {sampling!r}")
        try:
            return Mechanism(
                Noise.from_dict(noise, **noise_extra), Geometry.from_dict(geometry), Poisson.from_dict(sampling)
            )
        except (TypeError, KeyError) as error:  # unexpected or missing constructor arguments in the dicts
            raise ValueError(f"malformed mechanism in state: {error}") from None


def _required(data, key: str, what: str):
    """data[key] for a state dict, or a ValueError naming the missing key."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a dict, got {type(data).__name__}: {data!r:.80}")
    if key not in data:
        raise ValueError(f"{what} is missing the key {key!r} (malformed or truncated state)")
    return data[key]


def _gaussian_mu(mechanism: Mechanism) -> float:
    """clip/sigma of a Gaussian step (0 for other noise)."""
    return mechanism.geometry.radius / mechanism.noise.sigma if isinstance(mechanism.noise, Gaussian) else 0.0


def _unsampled_gaussian(mechanism: Mechanism) -> bool:
    return isinstance(mechanism.noise, Gaussian) and not mechanism.sampling.subsampled


def _sampled_gaussian(mechanism: Mechanism) -> bool:
    return isinstance(mechanism.noise, Gaussian) and mechanism.sampling.subsampled


def _gaussian_at(mu: float, sampling: Poisson) -> Mechanism:
    """The Gaussian step with shift/sigma = mu (its RDP and PLD depend on nothing else)."""
    return Mechanism(Gaussian(1.0 / mu), L2Ball(1.0), sampling)


def _bucketed(runs: list, buckets: int) -> list:
    """Sampled Gaussian runs of one rate in at most ``buckets`` groups of consecutive r/sigma, each accounted at
    its largest r/sigma (a sound upper bound, see the module docstring)."""
    runs = sorted(runs, key=lambda run: run[0].geometry.radius / run[0].noise.sigma)
    size = math.ceil(len(runs) / buckets)
    grouped = []
    for start in range(0, len(runs), size):
        part = runs[start : start + size]
        mechanism = part[-1][0]
        grouped.append(
            (
                _gaussian_at(mechanism.geometry.radius / mechanism.noise.sigma, mechanism.sampling),
                sum(c for _, c in part),
            )
        )
    return grouped


def compact_ledger(ledger) -> tuple[tuple[tuple[Mechanism, int], ...], str | None]:
    """(runs, note): a ledger with the same or a larger (sound) privacy loss and few distinct mechanisms.

    Exact: equal mechanisms are grouped and unsampled Gaussian steps merge into one Gaussian step with
    mu^2 = sum_i count_i (r_i / sigma_i)^2 (arXiv:1905.02383, Cor. 3.3). Upper bounds: a Gaussian step with
    r/sigma below ``MIN_GAUSSIAN_MU`` counts at that value, and beyond ``MAX_DISTINCT_MECHANISMS`` distinct runs
    sampled Gaussians of one rate are bucketed by r/sigma; ``note`` says so (None otherwise).
    """
    try:
        entries = list(ledger)
    except TypeError:
        raise ValueError(f"a ledger is a list of (Mechanism, count) pairs, got {ledger!r:.80}") from None
    counts: dict[Mechanism, int] = {}
    for entry in entries:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], Mechanism)):
            raise ValueError(
                f"a ledger is a list of (Mechanism, count) pairs, e.g. [(Mechanism(Gaussian(1.0), "
                f"L2Ball(1.0), Poisson(0.01)), 1000)]; got the entry {entry!r:.120}"
            )
        mechanism = entry[0]
        if isinstance(mechanism.noise, Gaussian) and _gaussian_mu(mechanism) < MIN_GAUSSIAN_MU:
            mechanism = _gaussian_at(MIN_GAUSSIAN_MU, mechanism.sampling)
        counts[mechanism] = counts.get(mechanism, 0) + check_steps(entry[1], "count")
    if not counts:
        raise ValueError("a ledger must contain at least one (Mechanism, count) entry")
    plain = [(m, c) for m, c in counts.items() if _unsampled_gaussian(m)]
    runs = [(m, c) for m, c in counts.items() if not _unsampled_gaussian(m)]
    mu_squared = sum(c * _gaussian_mu(m) ** 2 for m, c in plain)
    if (len(plain) > 1 or (plain and plain[0][1] > 1)) and math.sqrt(mu_squared) <= MAX_GAUSSIAN_MU:
        runs.append((_gaussian_at(math.sqrt(mu_squared), Poisson(1.0)), 1))
    else:  # nothing to merge, or a merged step beyond the float range: keep the runs (still exact)
        runs.extend(plain)
    if len(runs) <= MAX_DISTINCT_MECHANISMS:
        return tuple(runs), None
    sampled = [run for run in runs if _sampled_gaussian(run[0])]
    others = [run for run in runs if not _sampled_gaussian(run[0])]
    rates = sorted({m.sampling.sample_rate for m, _ in sampled})
    buckets = max(1, (MAX_DISTINCT_MECHANISMS - len(others)) // max(len(rates), 1))
    for rate in rates:
        others.extend(_bucketed([run for run in sampled if run[0].sampling.sample_rate == rate], buckets))
    note = (
        f"{len(sampled)} distinct sampled Gaussian mechanisms bucketed into at most {buckets} per sample rate, "
        f"each accounted at its largest clip/sigma (a sound upper bound)"
    )
    return tuple(others), note
