"""The ``lmodp`` command line: optimize, account, audit, finetune (docs/cli.md).

Every epsilon printed as a guarantee is a sound upper bound; the paper's numbers in ``audit`` are labelled as
reference values. The contract with the shell: exit 0 on success, 2 and one line on stderr for bad input (checked
before any computation, with the flags as typed), 130 on Ctrl-C, 141 when stdout closes early (``| head``), and 1
with one line for an internal error (``LMODP_DEBUG=1`` shows its traceback). ``--json`` is strict JSON: an
infinite number is the string "inf", an undefined one null.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np

from .accountant import METHODS, Accountant
from .auditing import audit, published_parameters, sst2_setting
from .geometry import L1Ball, L2Ball, Scalar
from .mechanism import Mechanism
from .noise import LMO, Gaussian, Laplace, Noise
from .plotting import check_figure_path, plot_epsilon_over_steps, plot_noise_densities
from .rdp import OrderGridWarning, epsilon_from_rdp
from .sampling import Poisson
from .search import FAMILIES, OBJECTIVES, optimize_noise
from .validation import MAX_ORDER, check_delta, check_epsilon, check_positive, check_sample_rate, check_steps

_GEOMETRIES = {"l2": L2Ball, "l1": L1Ball, "scalar": Scalar}
_WIDTH = 100  # every line of a table or of the prose around it fits in this many columns
_EXIT_INTERNAL, _EXIT_USAGE, _EXIT_INTERRUPTED, _EXIT_STDOUT_CLOSED = 1, 2, 130, 141
_DEBUG_ENV = "LMODP_DEBUG"
_LIST_SHOWN = 8  # longer parameter lists (histogram values) are summarised in tables, listed in --json
_GRID_GAIN = 0.01  # a note about the Renyi order grid only when more orders lower the RDP epsilon by more than 1%
_GRID_EXTRA_ORDERS = 8


class _Note(UserWarning):
    """A one-line note of the command line itself, printed on stderr with the library's warnings."""


class _UsageError(ValueError):
    """Bad command-line input (exit status 2); ``prog`` names the command for the message."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse that reports an error as one line through main() instead of usage text and sys.exit."""

    def error(self, message):
        raise _UsageError(f"{message} (see `{self.prog} --help`)", self.prog)


# ---- argument parsing ---------------------------------------------------------------------------------------
def _add_setting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, required=True, help="number of noisy steps (T)")
    parser.add_argument("--sample-rate", type=float, default=1.0, help="Poisson sampling rate q (1 = none)")
    parser.add_argument("--delta", type=float, required=True, help="target delta")
    parser.add_argument(
        "--geometry",
        choices=sorted(_GEOMETRIES),
        default="l2",
        help="what one example can change: l2 (DP-SGD, default), l1, scalar",
    )
    parser.add_argument("--clip", type=float, default=1.0, help="clipping norm / sensitivity (default 1)")
    _add_output(parser)
    parser.add_argument("--plot", type=Path, metavar="PATH", help="write a figure, e.g. a PNG (needs matplotlib)")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, default="auto", help="accounting method (default auto)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lmodp",
        description="Sound privacy accounting and noise search for differentially "
        "private training (LMO-DP, done soundly). Exit status: 0 ok, 1 internal error, 2 bad input, "
        "130 interrupted, 141 output closed early.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    optimize = commands.add_parser("optimize", help="find the noise with the least magnitude for a target")
    optimize.add_argument("--epsilon", type=float, required=True, help="target epsilon")
    _add_setting(optimize)
    optimize.add_argument("--objective", choices=OBJECTIVES, default="std")
    optimize.add_argument("--gamma", type=float, default=1.0, help="threshold of the usefulness objective")
    optimize.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated subset of {','.join(FAMILIES)}"
    )
    optimize.add_argument("--seed", type=int, default=None)
    optimize.add_argument("--jobs", type=int, default=None, help="processes for a cold search (default: all)")
    optimize.add_argument("--no-cache", action="store_true", help="ignore and do not write the on-disk cache")

    account = commands.add_parser("account", help="sound epsilon of a noise over training")
    account.add_argument(
        "--noise",
        required=True,
        help="gaussian:SIGMA, laplace:SCALE, lmo:JSON (paper naming), a noise JSON object, or "
        "@FILE (a noise JSON or the output of `lmodp optimize --json`)",
    )
    _add_setting(account)

    audit = commands.add_parser("audit", help="paper-style vs sound epsilon of LMO parameter sets")
    audit.add_argument(
        "--published",
        action="store_true",
        help="audit the paper's published sets in its SST-2 setting (the setting options below replace parts of it)",
    )
    audit.add_argument(
        "--params",
        help="an LMO parameter set as JSON (paper naming: a1, a3, a4, G_k, G_theta, "
        "E_lambda, U_a, U_b; or an LMO noise JSON), or @FILE holding it",
    )
    audit.add_argument("--steps", type=int, help="number of noisy steps (T)")
    audit.add_argument("--sample-rate", type=float, help="Poisson sampling rate q (1 = none)")
    audit.add_argument("--delta", type=float, help="target delta")
    audit.add_argument("--geometry", choices=sorted(_GEOMETRIES), help="l2 (default), l1 or scalar")
    audit.add_argument("--clip", type=float, help="clipping norm / sensitivity (default 1)")
    _add_output(audit)

    commands.add_parser(
        "finetune",
        help="private fine-tuning (needs the torch extra); `lmodp finetune --help` lists its options",
        add_help=False,
    )
    return parser


# ---- checks of the input, before any computation ------------------------------------------------------------
def _check_setting(args) -> None:
    """The shared options, checked with the flags' own names (None = not given, where that is allowed)."""
    checks = {
        "steps": ("--steps", check_steps),
        "sample_rate": ("--sample-rate", check_sample_rate),
        "delta": ("--delta", check_delta),
    }
    for attribute, (flag, check) in checks.items():
        if getattr(args, attribute) is not None:
            setattr(args, attribute, check(getattr(args, attribute), flag))
    if args.clip is not None:
        args.clip = check_positive("--clip", args.clip)
    if getattr(args, "plot", None) is not None:
        args.plot = check_figure_path(args.plot)


def _families(text: str) -> list[str]:
    families = [name.strip() for name in text.split(",") if name.strip()]
    if not families or any(name not in FAMILIES for name in families):
        raise _UsageError(f"--families must be a comma-separated subset of {','.join(FAMILIES)}, got {text!r}")
    return families


def _load_json(flag: str, spec: str):
    """The JSON of an option: inline, or the contents of a file given as @FILE."""
    text = spec
    if spec.startswith("@"):
        try:
            text = Path(spec[1:]).read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise _UsageError(
                f"{flag} {spec}: cannot read the file ({getattr(error, 'strerror', None) or error})"
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _UsageError(f"{flag} {spec!r}: invalid JSON ({error})") from None


def _noise_from_dict(flag: str, spec: str, data) -> Noise:
    if isinstance(data, dict) and "family" not in data and isinstance(data.get("noise"), dict):
        data = data["noise"]  # the output of `lmodp optimize --json`
    if not isinstance(data, dict):
        raise _UsageError(f"{flag} {spec!r}: expected a JSON object, got {type(data).__name__}")
    try:
        return Noise.from_dict(data)
    except (KeyError, TypeError) as error:  # a family's parameters missing or unexpected
        raise _UsageError(f"{flag} {spec!r}: not a valid noise description ({error})") from None
    except ValueError as error:
        raise _UsageError(f"{flag} {spec!r}: {error}") from None


def _lmo_from_paper(flag: str, spec: str, data) -> LMO:
    if not isinstance(data, dict):
        raise _UsageError(
            f"{flag} {spec!r}: expected a JSON object of the paper's LMO parameters (a1, a3, a4, G_k, "
            f"G_theta, E_lambda, U_a, U_b), got {type(data).__name__}"
        )
    if "family" in data or "noise" in data:
        noise = _noise_from_dict(flag, spec, data)
        if not isinstance(noise, LMO):
            raise _UsageError(f"{flag} {spec!r}: audit needs an LMO noise, got {noise.family}")
        return noise
    try:
        return LMO.from_paper(data)
    except (TypeError, ValueError) as error:
        raise _UsageError(f"{flag} {spec!r}: {error}") from None


def _parse_noise(spec: str) -> Noise:
    """A noise from the --noise forms described in the help."""
    family, _, value = spec.partition(":")
    try:
        if spec.startswith("@") or spec.lstrip().startswith("{"):
            return _noise_from_dict("--noise", spec, _load_json("--noise", spec))
        if family == "gaussian" and value:
            return Gaussian(float(value))
        if family == "laplace" and value:
            return Laplace(float(value))
        if family == "lmo" and value:
            return _lmo_from_paper("--noise", spec, _load_json("--noise", value))
    except _UsageError:
        raise
    except ValueError as error:
        raise _UsageError(f"--noise {spec!r}: {error}") from None
    raise _UsageError(f"--noise {spec!r}: use gaussian:SIGMA, laplace:SCALE, lmo:JSON, a JSON object or @FILE")


def _geometry(args):
    return _GEOMETRIES[args.geometry](args.clip)


# ---- output ------------------------------------------------------------------------------------------------
def _json_safe(value):
    """``value`` with every non-finite float made valid JSON: +-inf as the strings "inf"/"-inf", NaN as null."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _json(data) -> str:
    return json.dumps(_json_safe(data), indent=2, allow_nan=False)


def _format(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value:.6g}")
    return "-" if value is None else str(value)


def _table(headers: list[str], rows: list[list]) -> str:
    """Rows as an aligned text table (numbers right-aligned); a header may span lines ("top\\nbottom")."""
    cells = [[_format(v) for v in row] for row in rows]
    header_lines = [h.split("\n") for h in headers]
    height = max(len(lines) for lines in header_lines)
    header_rows = [
        [lines[i - height + len(lines)] if i >= height - len(lines) else "" for lines in header_lines]
        for i in range(height)
    ]
    widths = [
        max([*(len(line) for line in lines), *(len(r[i]) for r in cells)]) for i, lines in enumerate(header_lines)
    ]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()

    return "\n".join([*(line(r) for r in header_rows), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(text, _WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def _short_label(noise: Noise) -> str:
    """The noise's scale for a table cell; its full parameters are listed under the table and in --json."""
    params = {k: v for k, v in noise.to_dict().items() if k not in ("family", "schema_version")}
    if len(params) == 1:
        ((name, value),) = params.items()
        return f"{name}={_format(value)}"
    return f"scale={_format(params.get('scale'))} (+{len(params) - 1} shape)"


def _parameters(noise: Noise) -> str:
    """The noise's full parameters for the lines under a table; a long list (a histogram's values) is counted,
    not printed: --json has it."""
    params = {k: v for k, v in noise.to_dict().items() if k not in ("family", "schema_version")}
    shown = (
        f"{name}=[{len(value)} values: see --json]"
        if isinstance(value, list) and len(value) > _LIST_SHOWN
        else f"{name}={value!r}"
        for name, value in params.items()
    )
    return f"{type(noise).__name__}({', '.join(shown)})"


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
    if better < report.rdp_epsilon * (1.0 - _GRID_GAIN):
        warnings.warn(
            f"a Renyi order outside the default grid [{orders.min():g}, {orders.max():g}] gives a smaller "
            f"sound RDP epsilon: {better:.6g} at order {order:g} (reported: {report.rdp_epsilon:.6g})",
            _Note,
            stacklevel=2,
        )


# ---- commands ---------------------------------------------------------------------------------------------
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
    report = accountant.report(args.delta)
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


def _run_finetune(arguments: list[str]) -> tuple[int, str]:
    try:
        from lmodp_torch import finetune
    except ImportError as error:
        raise _UsageError(f"finetune needs the torch extra (pip install 'lmodp[torch]'): {error}") from None
    parser = _Parser(prog="lmodp finetune", description="private fine-tuning with lmodp noise")
    finetune.add_arguments(parser)
    return int(finetune.run(parser.parse_args(arguments)) or 0), ""


_COMMANDS = {"optimize": _run_optimize, "account": _run_account, "audit": _run_audit}


def _run(argv: list[str], name: str) -> tuple[int, str]:
    """(exit status, stdout text) of one command; warnings become one-line notes on stderr, except the order-grid
    warning, which the commands check for themselves (``_check_order_grid``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if argv and argv[0] == "finetune":
            status, text = _run_finetune(argv[1:])
        else:
            args = _parser().parse_args(argv)
            status, text = 0, _COMMANDS[args.command](args)
    notes = (" ".join(str(w.message).split()) for w in caught if not issubclass(w.category, OrderGridWarning))
    for message in dict.fromkeys(notes):
        print(f"{name}: note: {message}", file=sys.stderr)
    return status, text


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _report(error: Exception, name: str, interrupted: bool) -> int:
    """One line on stderr for an error and its exit status: 2 bad input, 130 Ctrl-C, 1 anything unexpected."""
    if interrupted:
        print(f"{name}: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    if isinstance(error, ValueError):
        print(f"{getattr(error, 'prog', None) or name}: error: {_one_line(error)}", file=sys.stderr)
        return _EXIT_USAGE
    if os.environ.get(_DEBUG_ENV):
        raise error
    print(
        f"{name}: internal error: {type(error).__name__}: {_one_line(error)}; rerun with {_DEBUG_ENV}=1 for "
        f"the traceback",
        file=sys.stderr,
    )
    return _EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lmodp`` console script; returns the exit status (docs/cli.md)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    name = "lmodp" + (f" {argv[0]}" if argv and argv[0] in (*_COMMANDS, "finetune") else "")
    interrupted = []

    def on_interrupt(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    # Ctrl-C inside compiled code or a worker process can surface as another exception: remember it was Ctrl-C.
    handle = (
        threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    )
    previous = signal.signal(signal.SIGINT, on_interrupt) if handle else None
    try:
        return _main(argv, name, interrupted)
    finally:
        if handle:
            signal.signal(signal.SIGINT, previous)


def _main(argv: list[str], name: str, interrupted: list) -> int:
    try:
        status, text = _run(argv, name)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - every error becomes one line and an exit status
        return _report(error, name, bool(interrupted))
    try:
        if text:
            print(text, flush=True)
    except BrokenPipeError:  # the reader went away (`| head`): silence the rest so that the exit stays quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _EXIT_STDOUT_CLOSED
    return status
