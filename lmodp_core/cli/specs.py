"""Checks of the command line's input before any computation: the setting options, --families, --noise specs."""

from __future__ import annotations

import json
from pathlib import Path

from ..geometry import L1Ball, L2Ball, Scalar
from ..noise import LMO, Gaussian, Laplace, Noise
from ..plotting import check_figure_path
from ..search import FAMILIES
from ..validation import check_delta, check_positive, check_sample_rate, check_steps

_GEOMETRIES = {"l2": L2Ball, "l1": L1Ball, "scalar": Scalar}


class _UsageError(ValueError):
    """Bad command-line input (exit status 2); ``prog`` names the command for the message."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


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
