"""The ``lmodp`` command line: optimize, account, audit, finetune (docs/cli.md).

Every epsilon printed as a guarantee is a sound upper bound; the paper's numbers in ``audit`` are labelled as
reference values. The contract with the shell: exit 0 on success, 2 and one line on stderr for bad input (checked
before any computation, with the flags as typed), 130 on Ctrl-C, 141 when stdout closes early (``| head``), and 1
with one line for an internal error (``LMODP_DEBUG=1`` shows its traceback). ``--json`` is strict JSON: an
infinite number is the string "inf", an undefined one null.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from ..accountant import METHODS
from ..rdp import OrderGridWarning
from ..search import FAMILIES, OBJECTIVES
from .commands import _run_account, _run_audit, _run_optimize
from .specs import _GEOMETRIES, _UsageError

_EXIT_INTERNAL, _EXIT_USAGE, _EXIT_INTERRUPTED, _EXIT_STDOUT_CLOSED = 1, 2, 130, 141
_DEBUG_ENV = "LMODP_DEBUG"


class _Parser(argparse.ArgumentParser):
    """argparse that reports an error as one line through main() instead of usage text and sys.exit."""

    def error(self, message):
        raise _UsageError(f"{message} (see `{self.prog} --help`)", self.prog)


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
    warning, which the commands check for themselves (``commands._check_order_grid``)."""
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
