"""The ``lmodp`` command line: optimize, account, audit, finetune (DESIGN §7).

Every epsilon printed as a guarantee is a sound upper bound; the paper's numbers in ``audit`` are labelled as
reference values. Bad input exits with status 2 and a one-line message.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .accountant import METHODS, Accountant
from .geometry import L1Ball, L2Ball, Scalar
from .noise import LMO, Gaussian, Laplace, Noise
from .sampling import Poisson
from .search import FAMILIES, OBJECTIVES

_GEOMETRIES = {"l2": L2Ball, "l1": L1Ball, "scalar": Scalar}
_PLOT_STEP_POINTS = 60


class _UsageError(ValueError):
    """Bad command-line input (exit status 2)."""


# ---- argument parsing ---------------------------------------------------------------------------------------
def _add_setting(parser: argparse.ArgumentParser, *, steps_required: bool = True) -> None:
    parser.add_argument("--steps", type=int, required=steps_required, help="number of noisy steps (T)")
    parser.add_argument("--sample-rate", type=float, default=1.0, help="Poisson sampling rate q (1 = none)")
    parser.add_argument("--delta", type=float, required=True, help="target delta")
    parser.add_argument("--geometry", choices=sorted(_GEOMETRIES), default="l2",
                        help="what one example can change: l2 (DP-SGD, default), l1, scalar")
    parser.add_argument("--clip", type=float, default=1.0, help="clipping norm / sensitivity (default 1)")
    parser.add_argument("--method", choices=METHODS, default="auto", help="accounting method (default auto)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--plot", type=Path, metavar="PATH", help="write a PNG figure (needs matplotlib)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmodp", description="Sound privacy accounting and noise search "
                                     "for differentially private training (LMO-DP, done soundly).")
    commands = parser.add_subparsers(dest="command", required=True)

    optimize = commands.add_parser("optimize", help="find the noise with the least magnitude for a target")
    optimize.add_argument("--epsilon", type=float, required=True, help="target epsilon")
    _add_setting(optimize)
    optimize.add_argument("--objective", choices=OBJECTIVES, default="std")
    optimize.add_argument("--gamma", type=float, default=1.0, help="threshold of the usefulness objective")
    optimize.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of "
                          f"{','.join(FAMILIES)}")
    optimize.add_argument("--seed", type=int, default=None)
    optimize.add_argument("--jobs", type=int, default=None, help="processes for a cold search (default: all)")
    optimize.add_argument("--no-cache", action="store_true", help="ignore and do not write the on-disk cache")

    account = commands.add_parser("account", help="sound epsilon of a noise over training")
    account.add_argument("--noise", required=True,
                         help="gaussian:SIGMA, laplace:SCALE, lmo:JSON (paper naming), a noise JSON object, or "
                              "@FILE (a noise JSON or the output of `lmodp optimize --json`)")
    _add_setting(account)

    audit = commands.add_parser("audit", help="paper-style vs sound epsilon of LMO parameter sets")
    audit.add_argument("--published", action="store_true",
                       help="audit the paper's published sets in its SST-2 setting")
    audit.add_argument("--params", help="an LMO parameter set as JSON (paper naming: a1, a3, a4, G_k, "
                                        "G_theta, E_lambda, U_a, U_b)")
    audit.add_argument("--steps", type=int)
    audit.add_argument("--sample-rate", type=float)
    audit.add_argument("--delta", type=float)
    audit.add_argument("--geometry", choices=sorted(_GEOMETRIES), default="l2")
    audit.add_argument("--clip", type=float, default=1.0)
    audit.add_argument("--method", choices=METHODS, default="auto")
    audit.add_argument("--json", action="store_true")

    commands.add_parser("finetune", help="private fine-tuning (needs the torch extra); "
                                         "`lmodp finetune --help` lists its options", add_help=False)
    return parser


# ---- helpers --------------------------------------------------------------------------------------------
def _geometry(args):
    return _GEOMETRIES[args.geometry](args.clip)


def _parse_noise(spec: str) -> Noise:
    """A noise from the --noise forms described in the help."""
    if spec.startswith("@"):
        try:
            data = json.loads(Path(spec[1:]).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise _UsageError(f"--noise {spec}: cannot read a JSON file ({error})") from None
        return Noise.from_dict(data.get("noise", data) if isinstance(data, dict) else data)
    family, _, value = spec.partition(":")
    try:
        if family == "gaussian" and value:
            return Gaussian(float(value))
        if family == "laplace" and value:
            return Laplace(float(value))
        if family == "lmo" and value:
            return LMO.from_paper(json.loads(value))
        if spec.lstrip().startswith("{"):
            return Noise.from_dict(json.loads(spec))
    except json.JSONDecodeError as error:
        raise _UsageError(f"--noise {spec!r}: invalid JSON ({error})") from None
    raise _UsageError(f"--noise {spec!r}: use gaussian:SIGMA, laplace:SCALE, lmo:JSON, a JSON object or @FILE")


def _format(value) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.6g}"
    return "-" if value is None else str(value)


def _table(headers: list[str], rows: list[list]) -> str:
    """Rows as an aligned text table (numbers right-aligned)."""
    cells = [[_format(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise _UsageError("--plot needs matplotlib (pip install 'lmodp[plot]')") from None
    return plt


# ---- commands ---------------------------------------------------------------------------------------------
def _run_optimize(args) -> int:
    from .search import optimize_noise

    result = optimize_noise(args.epsilon, args.delta, args.steps, args.sample_rate, geometry=_geometry(args),
                            objective=args.objective, families=[f.strip() for f in args.families.split(",")],
                            method=args.method, gamma=args.gamma, seed=args.seed, cache=not args.no_cache,
                            progress=sys.stderr.isatty() and not args.json, n_jobs=args.jobs)
    if args.json:
        print(result.to_json())
    else:
        gaussian = next(c for c in result.candidates if c.family == "gaussian")
        print(f"target: epsilon={args.epsilon:g}, delta={args.delta:g}, steps={args.steps}, "
              f"sample_rate={args.sample_rate:g}, geometry={_geometry(args)}; objective={args.objective}")
        rows = [[c.family, c.objective, c.objective / gaussian.objective, c.epsilon, c.method, repr(c.noise)]
                for c in result.candidates]
        print(_table(["family", args.objective, "vs gaussian", "sound epsilon", "method", "noise"], rows))
        print(f"best: {result.family} ({repr(result.noise)}), {args.objective}={result.objective:.6g}, "
              f"{result.ratio_to_gaussian:.4f}x the PLD-calibrated Gaussian; sound epsilon {result.epsilon:.6g}")
        for note in result.notes:
            print(f"note: {note}")
    if args.plot:
        _plot_densities(result, args.plot)
    return 0


def _plot_densities(result, path: Path) -> None:
    """The chosen density against the Gaussian (and the other candidates) at the same sound epsilon."""
    import numpy as np

    plt = _pyplot()
    gaussian = next(c for c in result.candidates if c.family == "gaussian").noise
    x = np.linspace(-4.0 * gaussian.sigma, 4.0 * gaussian.sigma, 801)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    other_styles = iter(("--", ":", "-."))
    for candidate in result.candidates:
        style = "-" if candidate.noise == result.noise else next(other_styles)
        axis.plot(x, candidate.noise.pdf(x), style,
                  label=f"{candidate.family}: {result.objective_name}={candidate.objective:.4g}")
    axis.set_xlabel("noise per coordinate (units of the clip)")
    axis.set_ylabel("density")
    inputs = result.inputs
    axis.set_title(f"calibrated to sound epsilon={inputs['eps']:g}, delta={inputs['delta']:g}, "
                   f"T={inputs['steps']}, q={inputs['sample_rate']:g}", fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _run_account(args) -> int:
    noise = _parse_noise(args.noise)
    geometry = _geometry(args)
    accountant = Accountant(noise, geometry, Poisson(args.sample_rate), method=args.method).step(args.steps)
    report = accountant.report(args.delta)
    if args.json:
        print(json.dumps({"noise": noise.to_dict(), "geometry": geometry.to_dict(), "steps": args.steps,
                          "sample_rate": args.sample_rate, **report.to_dict()}, indent=2))
    else:
        print(f"noise: {repr(noise)}; geometry={geometry}, sample_rate={args.sample_rate:g}, "
              f"steps={args.steps}")
        rows = [["epsilon (sound)", report.epsilon], ["method", report.method],
                ["RDP epsilon", report.rdp_epsilon], ["RDP order", report.rdp_order]]
        if report.pld_epsilon is not None:
            rows += [["PLD epsilon (upper)", report.pld_epsilon], ["PLD epsilon (lower, not a bound)",
                                                                   report.epsilon_lower]]
        print(_table(["quantity", f"delta={args.delta:g}"], rows))
    if args.plot:
        _plot_epsilon_vs_steps(accountant, args, args.plot)
    return 0


def _plot_epsilon_vs_steps(accountant: Accountant, args, path: Path) -> None:
    """Sound epsilon (RDP, composed from one per-step curve) against the number of steps."""
    import numpy as np

    from .rdp import epsilon_from_rdp

    plt = _pyplot()
    per_step = accountant.rdp() / args.steps
    steps = np.unique(np.round(np.geomspace(1, args.steps, _PLOT_STEP_POINTS)).astype(int))
    curve = [epsilon_from_rdp(accountant.orders, t * per_step, args.delta, warn=False)[0] for t in steps]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(steps, curve, label="sound epsilon (RDP)")
    axis.axhline(accountant.epsilon(args.delta), color="gray", ls=":",
                 label=f"at T={args.steps} (method {args.method})")
    axis.set_xscale("log")
    axis.set_xlabel("steps")
    axis.set_ylabel(f"epsilon at delta={args.delta:g}")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _run_audit(args) -> int:
    from .audit import audit, audit_published

    if args.published == bool(args.params):
        raise _UsageError("audit needs exactly one of --published or --params JSON")
    if args.published:
        results = audit_published(method=args.method)
    else:
        if args.steps is None or args.sample_rate is None or args.delta is None:
            raise _UsageError("audit --params needs --steps, --sample-rate and --delta")
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as error:
            raise _UsageError(f"--params: invalid JSON ({error})") from None
        results = [audit(params, args.steps, args.sample_rate, args.delta, _geometry(args), method=args.method)]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return 0
    first = results[0]
    print(f"setting: steps={first.steps}, sample_rate={first.sample_rate:.6g}, delta={first.delta:g}, "
          f"geometry={first.geometry}")
    rows = [[r.label or "-", r.paper_epsilon, r.paper_order, r.paper_epsilon_valid_orders, r.paper_overall_epsilon,
             r.sound_epsilon, r.sound_method, r.asymptotic_epsilon] for r in results]
    print(_table(["set", "paper eps (ref)", "at order", "valid orders (ref)", "paper overall (ref)",
                  "sound eps", "method", "d->inf estimate"], rows))
    print("ref = reference value computed as in the paper, not a guarantee: 'paper eps' uses orders outside the "
          "MGF domain (wrong), both paper columns ignore clipping geometry, sampling or composition. "
          "'sound eps' is the guarantee for the stated setting.")
    return 0


def _run_finetune(arguments: list[str]) -> int:
    try:
        from lmodp_torch import finetune
    except ImportError as error:
        print(f"lmodp: error: finetune needs the torch extra (pip install 'lmodp[torch]'): {error}",
              file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="lmodp finetune", description="private fine-tuning with lmodp noise")
    finetune.add_arguments(parser)
    try:
        return int(finetune.run(parser.parse_args(arguments)) or 0)
    except ValueError as error:
        print(f"lmodp finetune: error: {error}", file=sys.stderr)
        return 2


_COMMANDS = {"optimize": _run_optimize, "account": _run_account, "audit": _run_audit}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lmodp`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "finetune":
        return _run_finetune(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ValueError as error:
        print(f"lmodp {args.command}: error: {error}", file=sys.stderr)
        return 2
