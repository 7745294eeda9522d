"""Argument checks shared by every public entry point of lmodp_core and lmodp_torch (docs/validation.md).

Each check raises ``ValueError`` naming the argument, the value received and the allowed range, so that bad
input never produces a partial result or a silent NaN. They are public: code built on lmodp may call them.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .noise import Noise

# Supported magnitudes of every length (noise scales, clips, sensitivities): outside them the closed forms and the
# quadrature over- or underflow in double precision, so inputs beyond them are refused rather than half-computed.
MIN_SCALE = 1e-100
MAX_SCALE = 1e100
MAX_DRAWS = 2**30  # samples per call (8 GiB of float64)
MAX_ORDER = 1e4  # largest Renyi order (the default grid stops at 1024)
MAX_STEPS = 10**18  # compositions: beyond any training run, and far from float overflow in count * rdp


def _as_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a real number, got {value!r:.80}")
    try:
        value = float(value)
    except OverflowError:  # a Python int beyond the float range
        value = math.inf if value > 0 else -math.inf
    if math.isnan(value):
        raise ValueError(f"{name} must be a real number, got NaN")
    return value


def check_finite(name: str, value) -> float:
    value = _as_float(name, value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    """A finite number > 0."""
    value = check_finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0 (finite), got {value!r}")
    return value


def check_nonnegative(name: str, value) -> float:
    """A finite number >= 0."""
    value = check_finite(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (finite), got {value!r}")
    return value


def check_scale(name: str, value, low: float = MIN_SCALE, high: float = MAX_SCALE) -> float:
    """A length (noise scale, clip, sensitivity) or another positive parameter: in [low, high]."""
    value = check_positive(name, value)
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}] (the numerically supported range), got {value!r}")
    return value


def check_real_array(name: str, values) -> np.ndarray:
    """A real number or a (rectangular) array of real numbers, as floats; NaN and +-inf pass through."""
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        try:
            values = float(values)
        except OverflowError:  # a Python int beyond the float range
            values = math.inf if values > 0 else -math.inf
    try:
        arr = np.asarray(values) if not isinstance(values, (str, bytes)) else np.asarray(None)
    except (TypeError, ValueError):
        arr = np.asarray(None)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a real number or an array of real numbers, got {values!r:.80}")
    return arr.astype(float, copy=False)


def check_points(x) -> np.ndarray:
    """Evaluation points of a density: real numbers or arrays of them, +-inf allowed, NaN not."""
    arr = check_real_array("x", x)
    if np.any(np.isnan(arr)):
        raise ValueError("x must not contain NaN (real numbers and +-inf are allowed)")
    return arr


def check_generator(rng) -> np.random.Generator:
    """A numpy Generator (not a seed: reusing a seed would reuse the noise)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed), got {rng!r:.80}")
    return rng


def check_size(size):
    """A numpy sample size: None, a whole number >= 0 or a tuple of them, at most MAX_DRAWS draws in all."""
    dims = (size,) if isinstance(size, (numbers.Integral, np.integer)) else size
    if size is not None and not (
        isinstance(dims, (tuple, list))
        and all(isinstance(d, (numbers.Integral, np.integer)) and not isinstance(d, bool) and d >= 0 for d in dims)
    ):
        raise ValueError(f"size must be None, a whole number >= 0 or a tuple of them, got {size!r:.80}")
    if size is not None and math.prod(int(d) for d in dims) > MAX_DRAWS:
        raise ValueError(f"size asks for {math.prod(int(d) for d in dims)} draws; at most {MAX_DRAWS} per call")
    return size


def check_epsilon(value, name: str = "epsilon") -> float:
    """Privacy parameter epsilon: finite and > 0."""
    return check_positive(name, value)


def check_delta(value, name: str = "delta") -> float:
    """Privacy parameter delta: in the open interval (0, 1)."""
    value = check_finite(name, value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie in the open interval (0, 1), got {value!r}")
    return value


def check_sample_rate(value, name: str = "sample_rate") -> float:
    """Poisson sampling rate q in (0, 1]; q = 1 means no subsampling."""
    value = check_finite(name, value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1] (1 means no subsampling), got {value!r}")
    return value


def check_steps(value, name: str = "steps") -> int:
    """A whole number of compositions, >= 1."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer, float, np.floating)):
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    value = int(value)
    if not 1 <= value <= MAX_STEPS:
        raise ValueError(f"{name} must be a whole number in [1, {MAX_STEPS:.0e}], got {value!r:.80}")
    return value


def check_orders(orders) -> np.ndarray:
    """Renyi orders: a non-empty 1-D array of numbers in (1, MAX_ORDER]."""
    arr = np.atleast_1d(check_real_array("orders", orders))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"orders must be a non-empty 1-D sequence of numbers > 1, got shape {arr.shape}")
    bad = ~((arr > 1.0) & (arr <= MAX_ORDER))
    if np.any(bad):
        raise ValueError(
            f"orders must lie in (1, {MAX_ORDER:g}] (integer-order bounds cost time and memory in "
            f"the order), got {arr[bad][:5]}"
        )
    return arr


def check_noise(noise, name: str = "noise") -> Noise:
    """An lmodp_core noise object (a ``Noise``: Gaussian, Laplace, LMO, CustomNoise, PiecewiseNoise, ...)."""
    from .noise import Noise  # imported here, not at the top: the noise families import this module

    if not isinstance(noise, Noise):
        number = isinstance(noise, numbers.Real) and not isinstance(noise, bool)
        hint = f" (for a noise multiplier s, pass Gaussian(s), here Gaussian({noise!r}))" if number else ""
        raise ValueError(
            f"{name} must be an lmodp_core noise (Gaussian, Laplace, LMO, CustomNoise, PiecewiseNoise), "
            f"got {noise!r:.80}{hint}"
        )
    return noise


def check_choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value
