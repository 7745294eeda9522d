"""The optimize, account and audit commands: each runs on parsed arguments and returns its stdout text."""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ..accountant import Accountant
from ..auditing import audit, published_parameters, sst2_setting
from ..geometry import L2Ball
from ..mechanism import Mechanism
from ..noise import LMO
from ..plotting import plot_epsilon_over_steps, plot_noise_densities
from ..rdp import epsilon_from_rdp
from ..sampling import Poisson
from ..search import optimize_noise
from ..validation import MAX_ORDER, check_epsilon, check_positive
from .formatting import _json, _parameters, _short_label, _table, _wrap
from .specs import (
    _GEOMETRIES,
    _check_setting,
    _families,
    _geometry,
    _lmo_from_paper,
    _load_json,
    _parse_noise,
    _UsageError,
)

_GRID_GAIN = 0.01  # a note about the Renyi order grid only when more orders lower the RDP epsilon by more than 1%
_GRID_EXTRA_ORDERS = 8


class _Note(UserWarning):
    """A one-line note of the command line itself, printed on stderr with the library's warnings."""


def _check_order_grid(mechanism: Mechanism, steps: int, delta: float) -> None:
    """A note when the RDP epsilon's best order sits at an end of the default Renyi order grid and orders past
    that end, computed (8 of them), lower it by more than 1%. It replaces the library's OrderGridWarning, which
    says only that they might, and speaks of Python's ``orders=``."""
    accountant = Accountant(mechanism.noise, mechanism.geometry, mechanism.sampling, method="rdp").step(steps)
    report = accountant.report(delta)  # the per-step curve is cached: no second computation
    orders = accountant.orders
    if report.rdp_order == orders.min():
        beyond = 1.0 + (orders.min() - 1.0) * np.geomspace(1e-3, 1.0, _GRID_EXTRA_ORDERS, endpoint=False)
    elif report.rdp_order == orders.max():
        beyond = np.geomspace(orders.max(), MAX_ORDER, _GRID_EXTRA_ORDERS + 1)[1:]  # up to the supported limit
    else:
        return
    wider = np.concatenate([orders, beyond])
    better, order = epsilon_from_rdp(
        wider, np.concatenate([accountant.rdp(), accountant.rdp(beyond)]), delta, warn=False
    )
    if better < report.epsilon * (1.0 - _GRID_GAIN):
        warnings.warn(
            f"a Renyi order outside the default grid [{orders.min():g}, {orders.max():g}] gives a smaller "
            f"sound RDP epsilon: {better:.6g} at order {order:g} (reported: {report.epsilon:.6g})",
            _Note,
            stacklevel=2,
        )


def _run_optimize(args) -> str:
    target_epsilon = check_epsilon(args.epsilon, "--epsilon")
    gamma = check_positive("--gamma", args.gamma)
    families = _families(args.families)
    if args.jobs is not None and args.jobs < 1:
        raise _UsageError(f"--jobs must be >= 1 (leave it out for all cores), got {args.jobs}")
    if args.seed is not None and args.seed < 0:
        raise _UsageError(f"--seed must be >= 0, got {args.seed}")
    _check_setting(args)
    result = optimize_noise(
        target_epsilon,
        args.delta,
        args.steps,
        args.sample_rate,
        geometry=_geometry(args),
        objective=args.objective,
        families=families,
        method=args.method,
        gamma=gamma,
        seed=args.seed,
        cache=not args.no_cache,
        progress=sys.stderr.isatty() and not args.json,
        n_jobs=args.jobs,
    )
    if args.plot:
        plot_noise_densities(result, args.plot)
    if args.json:
        return _json(result.to_dict())
    gaussian = next(c for c in result.candidates if c.family == "gaussian")
    rows = [
        [c.family, c.objective, c.objective / gaussian.objective, c.epsilon, c.method, _short_label(c.noise)]
        for c in result.candidates
    ]
    lines = [
        _wrap(
            f"target: epsilon={target_epsilon:g}, delta={args.delta:g}, steps={args.steps}, "
            f"sample_rate={args.sample_rate:g}, geometry={_geometry(args)}; objective={args.objective}"
        ),
        _table(["family", args.objective, "vs gaussian", "sound epsilon", "method", "noise"], rows),
        "noise parameters:",
        *(_wrap(f"  {c.family}: {_parameters(c.noise)}", "      ") for c in result.candidates),
        _wrap(
            f"best: {result.family} ({_short_label(result.noise)}), {args.objective}={result.objective:.6g}, "
            f"{result.ratio_to_gaussian:.4f}x the PLD-calibrated Gaussian; sound epsilon {result.epsilon:.6g}"
        ),
        *(_wrap(f"note: {note}") for note in result.notes),
    ]
    return "\n".join(lines)


def _run_account(args) -> str:
    _check_setting(args)
    noise = _parse_noise(args.noise)
    geometry = _geometry(args)
    accountant = Accountant(noise, geometry, Poisson(args.sample_rate), method=args.method).step(args.steps)
    report = accountant.report(args.delta, all_methods=True)
    if report.method == "rdp":
        _check_order_grid(accountant.ledger[0][0], args.steps, args.delta)
    if args.plot:
        plot_epsilon_over_steps(accountant, report, args.plot)
    if args.json:
        return _json(
            {
                "noise": noise.to_dict(),
                "geometry": geometry.to_dict(),
                "steps": args.steps,
                "sample_rate": args.sample_rate,
                **report.to_dict(),
            }
        )
    rows: list[list] = [
        ["epsilon (sound)", report.epsilon],
        ["method", report.method],
        ["RDP epsilon", report.rdp_epsilon],
        ["RDP order", report.rdp_order],
    ]
    if report.pld_epsilon is not None:
        rows += [
            ["PLD epsilon (upper)", report.pld_epsilon],
            ["PLD epsilon (lower, not a bound)", report.epsilon_lower],
        ]
    return "\n".join(
        [
            _wrap(f"noise: {noise!r}; geometry={geometry}, sample_rate={args.sample_rate:g}, steps={args.steps}"),
            _table(["quantity", f"delta={args.delta:g}"], rows),
            *(_wrap(f"note: {note}") for note in (*report.notes, *filter(None, [report.pld_skipped]))),
        ]
    )


_AUDIT_FOOTNOTE = (
    "ref = computed as in the paper, not a guarantee. 'paper eps' is the paper's single-step formula as published: "
    "it uses orders outside the MGF domain (wrong). 'on valid orders' is the same formula on valid orders only. Both "
    "are one step of a scalar query with sensitivity 1: no clipping geometry, sampling or composition. 'paper "
    "overall' composes a subsampled Gaussian of matching sigma, which is no bound for LMO noise. 'sound eps' is the "
    "guarantee for the stated setting; the d->inf estimate is an estimate, not a guarantee."
)


def _audit_setting(args) -> dict:
    """steps, sample_rate, delta and geometry of the audit: the paper's SST-2 setting under --published with the
    options given replacing its parts, else the options (--steps, --sample-rate, --delta required)."""
    if args.published:
        setting = sst2_setting()
    elif args.steps is None or args.sample_rate is None or args.delta is None:
        raise _UsageError("audit --params needs --steps, --sample-rate and --delta")
    else:
        setting = {"geometry": L2Ball(1.0)}
    setting.update(
        {
            key: value
            for key, value in (("steps", args.steps), ("sample_rate", args.sample_rate), ("delta", args.delta))
            if value is not None
        }
    )
    base = setting["geometry"]
    setting["geometry"] = _GEOMETRIES[args.geometry or base.kind](base.radius if args.clip is None else args.clip)
    return setting


def _run_audit(args) -> str:
    if args.published == (args.params is not None):
        raise _UsageError("audit needs exactly one of --published or --params JSON")
    _check_setting(args)
    setting = _audit_setting(args)
    if args.published:
        sets = [(entry["label"], LMO.from_paper(entry)) for entry in published_parameters()["sets"]]
    else:
        sets = [(None, _lmo_from_paper("--params", args.params, _load_json("--params", args.params)))]
    results = [audit(noise, **setting, method=args.method, label=label) for label, noise in sets]
    for result, (_, noise) in zip(results, sets):
        if result.sound_method == "rdp":
            _check_order_grid(
                Mechanism(noise, setting["geometry"], Poisson(setting["sample_rate"])),
                setting["steps"],
                setting["delta"],
            )
    if args.json:
        return _json([r.to_dict() for r in results])
    rows = [
        [
            r.label or "-",
            r.paper_epsilon,
            r.paper_order,
            r.paper_epsilon_valid_orders,
            r.paper_overall_epsilon,
            r.sound_epsilon,
            r.sound_method,
            r.asymptotic_epsilon,
        ]
        for r in results
    ]
    source = "the paper's published sets, " if args.published else ""
    return "\n".join(
        [
            _wrap(
                f"setting: {source}steps={setting['steps']}, sample_rate={setting['sample_rate']:.6g}, "
                f"delta={setting['delta']:g}, geometry={setting['geometry']}"
            ),
            _table(
                [
                    "set",
                    "paper eps\n(ref)",
                    "at\norder",
                    "on valid\norders (ref)",
                    "paper overall\n(ref)",
                    "sound\neps",
                    "method",
                    "d->inf\nestimate",
                ],
                rows,
            ),
            _wrap(_AUDIT_FOOTNOTE, ""),
        ]
    )
