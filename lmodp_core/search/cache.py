"""The search's on-disk cache (``LMODP_CACHE_DIR``, default ``~/.cache/lmodp``): keys, atomic writes, and cached
results re-certified by a fresh accountant before they are trusted."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path

from ..accountant import compute_epsilon
from ..noise import Noise
from .problem import Problem, quiet_order_grid
from .results import OptimizeResult

_CACHE_RTOL = 1e-9  # a cached noise is trusted when its re-computed sound epsilon is <= target * (1 + this)


def digest(payload) -> str:
    from .. import __version__

    text = json.dumps({"payload": payload, "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_dir(cache) -> Path | None:
    """The cache directory, or None (uncached) for None/False or when it cannot be created (one warning)."""
    if cache is None or cache is False:
        return None
    if cache is True:
        try:
            path = Path(os.environ.get("LMODP_CACHE_DIR") or Path.home() / ".cache" / "lmodp")
        except RuntimeError as error:  # no home directory
            _uncached(error)
            return None
    elif isinstance(cache, (str, os.PathLike)) and str(cache):
        path = Path(cache)
    else:
        raise ValueError(f"cache must be None, False, True or a directory path (str or os.PathLike), got {cache!r}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _uncached(error)
        return None
    return path


def _uncached(error: Exception) -> None:
    warnings.warn(
        f"optimize_noise: the cache is unusable ({error}); continuing without it", RuntimeWarning, stacklevel=4
    )


def atomic_write(path: Path, write) -> None:
    """Write to a temporary file and rename it over ``path`` (readers never see a partial file); on OSError warn
    once and leave the cache as it was."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        _uncached(error)


def read_cached(path: Path, problem: Problem, inputs: dict) -> OptimizeResult | None:
    """The cached result, re-certified (one accountant call on the stored noise), or None for a miss: anything
    unreadable, malformed, for other inputs, or whose noise does not meet the target, is ignored."""
    try:
        result = OptimizeResult.from_dict(json.loads(path.read_text()))
        if result.inputs != inputs or not isinstance(result.noise, Noise):
            return None
        with quiet_order_grid():
            epsilon = compute_epsilon(result.noise, problem.geometry, problem.sampling, problem.steps, problem.delta)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, OverflowError, ZeroDivisionError):
        return None
    if not epsilon <= problem.epsilon * (1.0 + _CACHE_RTOL):
        return None
    return result
