"""Audit of published LMO parameters: the paper's epsilon next to the sound one (docs/theory.md §2, §4.8).

``audit(params, steps, sample_rate, delta, geometry)`` reports, for one LMO parameter set (paper naming):

* ``paper_epsilon`` — the paper-style single-step epsilon, evaluated as the paper did (orders outside the MGF
  domain included, docs/theory.md §2 F1). Reference only: it is not a bound.
* ``paper_epsilon_valid_orders`` — the same formula restricted to orders where it is a valid bound; still a
  single scalar step with sensitivity 1 (no geometry, sampling or composition), so not a DP-SGD guarantee.
* ``paper_overall_epsilon`` — the paper's overall epsilon via a matching Gaussian sigma (docs/theory.md §2 F4).
  Reference only.
* ``sound_epsilon`` — the guarantee: the real mechanism (geometry, Poisson sampling, ``steps`` compositions)
  with the library's sound accountant.
* ``asymptotic_epsilon`` — the d->inf estimate (a Gaussian with sigma = 1/sqrt(I_f)); for L2 clipping in high
  dimension it is close to the truth and a lower bound on any sound value. An estimate, not a guarantee.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

from .accountant import Accountant
from .estimates import asymptotic_epsilon
from .geometry import Geometry, L2Ball, check_geometry
from .noise import LMO
from .reference import paper_epsilon, paper_overall_epsilon
from .sampling import Poisson
from .validation import check_delta, check_sample_rate, check_steps


@dataclass(frozen=True)
class AuditResult:
    """Paper-style (reference) and sound epsilons of one LMO parameter set in one training setting."""

    params: dict
    steps: int
    sample_rate: float
    delta: float
    geometry: Geometry
    paper_epsilon: float
    paper_order: float | None  # None when no order gives a finite epsilon
    paper_epsilon_valid_orders: float
    paper_valid_order: float | None
    paper_overall_epsilon: float
    paper_gaussian_sigma: float
    sound_epsilon: float
    sound_method: str
    asymptotic_epsilon: float
    label: str | None = None

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["geometry"] = self.geometry.to_dict()
        return data


def audit(
    params,
    steps,
    sample_rate,
    delta,
    geometry: Geometry = L2Ball(1.0),
    *,
    method: str = "auto",
    label: str | None = None,
) -> AuditResult:
    """Audit one LMO parameter set (paper naming dict, or an ``LMO``) for ``steps`` Poisson-sampled steps."""
    if not isinstance(params, (LMO, dict)):
        raise ValueError(
            f"params must be an LMO or a dict of paper parameters (a1, a3, a4, G_k, G_theta, E_lambda, "
            f"U_a, U_b), got {params!r:.80}"
        )
    noise = params if isinstance(params, LMO) else LMO.from_paper(params)
    steps = check_steps(steps)
    sample_rate = check_sample_rate(sample_rate)
    delta = check_delta(delta)
    geometry = check_geometry(geometry)
    published, published_order = paper_epsilon(noise, delta)
    valid, valid_order = paper_epsilon(noise, delta, as_published=False)
    overall, sigma = paper_overall_epsilon(noise, sample_rate, steps, delta)
    report = Accountant(noise, geometry, Poisson(sample_rate), method=method).step(steps).report(delta)
    return AuditResult(
        noise.to_paper(),
        steps,
        sample_rate,
        delta,
        geometry,
        published,
        published_order,
        valid,
        valid_order,
        overall,
        sigma,
        report.epsilon,
        report.method,
        _asymptotic_epsilon(noise, sample_rate, steps, delta, geometry),
        label,
    )


def _asymptotic_epsilon(noise: LMO, sample_rate: float, steps: int, delta: float, geometry: Geometry) -> float:
    return float(asymptotic_epsilon(noise, sample_rate, steps, delta, clip=geometry.radius))


def published_parameters() -> dict:
    """The paper's published LMO parameter sets and its SST-2 setting (``lmodp_core/data/published_lmo.json``)."""
    return json.loads(resources.files("lmodp_core").joinpath("data/published_lmo.json").read_text())


def published_noise(label: str) -> LMO:
    """The paper's LMO parameter set with this label ("0.3", "0.7", "2", "3", "5") as an ``LMO`` (scale 1)."""
    sets = {entry["label"]: entry for entry in published_parameters()["sets"]}
    if label not in sets:
        raise ValueError(f"label must be one of {sorted(sets)}, got {label!r}")
    return LMO.from_paper(sets[label])


def sst2_setting() -> dict:
    """steps, sample_rate, delta and geometry of the paper's SST-2 runs (Poisson rate = batch / dataset size)."""
    setting = published_parameters()["setting"]
    sample_rate = setting["batch_size"] / setting["dataset_size"]
    return {
        "steps": math.ceil(setting["epochs"] * setting["dataset_size"] / setting["batch_size"]),
        "sample_rate": sample_rate,
        "delta": setting["delta"],
        "geometry": L2Ball(setting["clip"]),
    }


def audit_published(*, method: str = "auto") -> list[AuditResult]:
    """Audit every published parameter set in the paper's SST-2 setting."""
    return [
        audit(LMO.from_paper(entry), **sst2_setting(), method=method, label=entry["label"])
        for entry in published_parameters()["sets"]
    ]
