"""On-device sampling of every lmodp noise family with torch (docs/torch.md).

The parameterisation is the one of ``lmodp_core`` (one code path for sampler and accountant, docs/accounting.md,
"Noise families"): ``LMO`` draws U = a1*Gamma(gamma_shape, gamma_scale) + a3*Exponential(RATE exp_rate) +
a4*Uniform(unif_low, unif_high) and then Z | U ~ Laplace(0, scale/U), independently per coordinate and per call.

Randomness comes from one of two sources, and every family is written once against them:

* the default: a seeded ``torch.Generator`` on the target device (reproducible, fast);
* ``secure_rng=True``: uniform 53-bit floats built from ``os.urandom`` (the operating system's CSPRNG) on the
  CPU; normals (Box-Muller) and Gammas (Marsaglia-Tsang rejection) are derived from those uniforms only, so no
  pseudo-random generator sits in between. The result is moved to the target device.

Floating-point caveat (Mironov 2012, "On significance of the least significant bits for differential
privacy"): both sources produce *floating-point* approximations of real-valued noise. The gaps in the set of
representable outputs can, in principle, reveal the un-noised value, and no sampler in this module closes that
gap; the privacy guarantee is the one of the idealised real-valued mechanism. ``secure_rng`` removes the
predictability of a seeded generator, not the floating-point artefact.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch

from lmodp_core import LMO, Gaussian, Laplace, Noise
from lmodp_core.validation import check_noise

_UNIFORM_BITS = 53
_MAX_PRODUCT_SHAPE = 4  # a product of <= 4 draws of 1 - u >= 2^-24 stays above float32's smallest normal
_MAX_STANDARD_DRAW = 40.0  # |draw| / scale of a uniform-based Gaussian or Laplace draw: at most ~37.4 in float64


class _TorchSource:
    """Uniforms, normals and Gammas from a ``torch.Generator`` on the target device."""

    def __init__(self, generator: torch.Generator | None, device, dtype):
        self.generator, self.device, self.dtype = generator, device, dtype

    def in_float64(self) -> _TorchSource:
        return _TorchSource(self.generator, self.device, torch.float64)

    def uniform(self, shape) -> torch.Tensor:
        """Uniform on [0, 1)."""
        return torch.rand(shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def normal(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def gamma(self, concentration: float, shape) -> torch.Tensor:
        alpha = torch.full(shape, concentration, device=self.device, dtype=self.dtype)
        return torch._standard_gamma(alpha, generator=self.generator)

    def numpy_rng(self) -> np.random.Generator:
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.device).item())
        return np.random.default_rng(seed)


class _SecureSource:
    """Uniforms from ``os.urandom`` (float64 on the CPU); normals and Gammas derived from them only."""

    device = torch.device("cpu")
    dtype = torch.float64

    def in_float64(self) -> _SecureSource:
        return self

    def uniform(self, shape) -> torch.Tensor:
        count = math.prod(shape)
        words = np.frombuffer(os.urandom(8 * count), dtype=np.uint64) >> np.uint64(64 - _UNIFORM_BITS)
        return torch.from_numpy(words.astype(np.float64) * 2.0**-_UNIFORM_BITS).reshape(shape)

    def normal(self, shape) -> torch.Tensor:
        radius = self.uniform(shape).neg_().log1p_().mul_(-2.0).sqrt_()  # log(1 - u), 1 - u in (0, 1]
        return radius.mul_(torch.cos(2.0 * math.pi * self.uniform(shape)))

    def gamma(self, concentration: float, shape) -> torch.Tensor:
        if concentration < 1.0:  # G(k) = G(k + 1) * V^(1/k), V uniform on (0, 1]
            return self.gamma(concentration + 1.0, shape) * (1.0 - self.uniform(shape)) ** (1.0 / concentration)
        d = concentration - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        out = torch.empty(shape, dtype=self.dtype).reshape(-1)
        pending = torch.arange(out.numel())
        while pending.numel():  # Marsaglia-Tsang: accept with probability > 0.95 per draw
            x = self.normal((pending.numel(),))
            v = (1.0 + c * x) ** 3
            log_u = torch.log1p(-self.uniform((pending.numel(),)))
            accept = (v > 0) & (log_u < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-300)))
            out[pending[accept]] = d * v[accept]
            pending = pending[~accept]
        return out.reshape(shape)

    def numpy_rng(self) -> np.random.Generator:
        raise ValueError(
            "secure_rng=True is not available for a noise drawn by its numpy sampler (CustomNoise, "
            "PiecewiseNoise, any family without a torch sampler): it needs a numpy Generator, and numpy "
            "has no cryptographically secure bit generator; use secure_rng=False"
        )


def _zero_cell_midpoint(dtype: torch.dtype) -> float:
    """Uniforms lie on the grid k * eps/2 of [0, 1); a draw u = 0 stands for the cell [0, eps/2), whose midpoint
    eps/4 is used wherever a component of U would otherwise be exactly 0 (and 1/U infinite)."""
    return torch.finfo(dtype).eps / 4.0


def _symmetric_uniform(source, shape) -> torch.Tensor:
    """Uniform on (-1, 1), symmetric about 0 and never +-1: 2u - (1 - eps/2) for u on the grid k * eps/2."""
    u = source.uniform(shape)
    return u.mul_(2.0).sub_(1.0 - torch.finfo(u.dtype).eps / 2.0)


def _laplace(source, shape, scale: float) -> torch.Tensor:
    """Laplace(0, scale) by inversion: sign(v) * scale * -log(1 - |v|), v uniform on (-1, 1) (always finite)."""
    v = _symmetric_uniform(source, shape)
    return v.abs().neg_().log1p_().mul_(-scale).copysign_(v)


def _exponential(source, shape, mean: float) -> torch.Tensor:
    """Exponential with mean ``mean`` (1 / RATE): -log(1 - u) * mean, u in [0, 1) (finite, and > 0: u = 0 is its
    cell's midpoint)."""
    floor = _zero_cell_midpoint(source.dtype) * mean
    return source.uniform(shape).neg_().log1p_().mul_(-mean).clamp_min_(floor)


def _gamma(source, concentration: float, shape) -> torch.Tensor:
    """Gamma(concentration, 1): -log of a product of uniforms on (0, 1] for whole shapes up to 4 (several times
    faster than rejection sampling; all-zero uniforms give their cell's midpoint, not 0), the source's own
    sampler otherwise."""
    if concentration != int(concentration) or concentration > _MAX_PRODUCT_SHAPE:
        return source.gamma(concentration, shape)
    product = source.uniform(shape).neg_().add_(1.0)
    for _ in range(int(concentration) - 1):
        product.mul_(source.uniform(shape).neg_().add_(1.0))
    return product.log_().neg_().clamp_min_(_zero_cell_midpoint(source.dtype))


def _lmo_inverse_scale(noise: LMO, source, shape) -> torch.Tensor:
    """U = a1*G + a3*E + a4*V with G ~ Gamma(gamma_shape, gamma_scale), E ~ Exponential(rate exp_rate),
    V ~ Uniform(unif_low, unif_high), in the source's dtype.

    When U can come arbitrarily close to 0 (no a4 * unif_low > 0 floor), U is drawn in float64, where a uniform's
    zero cell is 2^-53 wide instead of float32's 2^-24, and each component that a uniform of 0 would make 0 takes
    that cell's midpoint instead: Z = L / U then stays finite (|Z| <= 37.4 * scale / (c * 2^-54) for the smallest
    component coefficient c), where clamping U to float32's ``tiny`` gave |Z| ~ 5e37 once per ~1e7 draws.
    """
    work_dtype = source.dtype
    if noise.a4 * noise.unif_low == 0.0:
        source = source.in_float64()
    parts = []
    if noise.a1 > 0:
        parts.append(_gamma(source, noise.gamma_shape, shape).mul_(noise.a1 * noise.gamma_scale))
    if noise.a3 > 0:
        parts.append(_exponential(source, shape, noise.a3 / noise.exp_rate))
    if noise.a4 > 0:
        width = noise.unif_high - noise.unif_low
        uniform = source.uniform(shape).clamp_min_(_zero_cell_midpoint(source.dtype))
        parts.append(uniform.mul_(noise.a4 * width).add_(noise.a4 * noise.unif_low))
    u = parts[0]
    for part in parts[1:]:
        u.add_(part)
    u = u.to(work_dtype)
    return u.clamp_min_(torch.finfo(u.dtype).tiny)  # U > 0 a.s.; guards an underflow of the rejection Gamma


def _lmo_factors(noise: LMO) -> list[float]:
    """The numbers an LMO draw multiplies uniforms by: scale and the nonzero coefficients of U's parts."""
    gamma_size = 3.0 * max(1.0, noise.gamma_shape)  # Gamma(k) draws stay below 40 * 3 * max(1, k)
    factors = [
        noise.scale,
        noise.a1 * noise.gamma_scale * gamma_size,
        noise.a3 / noise.exp_rate,
        noise.a4 * (noise.unif_high - noise.unif_low),
        noise.a4 * noise.unif_low,
    ]
    return [f for f in factors if f != 0.0]


def _fits(factors: list[float], dtype: torch.dtype) -> bool:
    """Each factor, times a standard draw (at most _MAX_STANDARD_DRAW), neither overflows nor underflows dtype."""
    info = torch.finfo(dtype)
    return all(info.tiny <= f <= info.max / _MAX_STANDARD_DRAW for f in factors)


@functools.singledispatch
def draw_noise(noise: Noise, source, shape) -> torch.Tensor:
    """I.i.d. draws of ``noise`` from ``source`` (uniforms, normals, Gammas in ``source.dtype``), per family.

    The extension point of the torch layer: a family with a torch-native sampler registers it
    (``@draw_noise.register(MyNoise)``); any other family (``CustomNoise``, ``PiecewiseNoise``, ...) is drawn by
    its own numpy sampler, seeded from ``source``, on the CPU.
    """
    return torch.from_numpy(np.asarray(noise.sample(source.numpy_rng(), shape), dtype=np.float64))


@draw_noise.register(Gaussian)
def _draw_gaussian(noise: Gaussian, source, shape) -> torch.Tensor:
    return source.normal(shape).mul_(noise.sigma)


@draw_noise.register(Laplace)
def _draw_laplace(noise: Laplace, source, shape) -> torch.Tensor:
    return _laplace(source, shape, noise.scale)


@draw_noise.register(LMO)
def _draw_lmo(noise: LMO, source, shape) -> torch.Tensor:
    if source.dtype != torch.float64 and not _fits(_lmo_factors(noise), source.dtype):
        return _draw_lmo(noise, source.in_float64(), shape).to(source.dtype)
    return _laplace(source, shape, noise.scale).div_(_lmo_inverse_scale(noise, source, shape))


@functools.singledispatch
def largest_draw(noise: Noise, work_dtype: torch.dtype) -> float | None:
    """An upper bound on |draw| of ``draw_noise`` working in ``work_dtype``, per family; None where the draws are
    unbounded or the bound is not known (the draws are then checked for overflow after sampling)."""
    return None


@largest_draw.register(Gaussian)
def _largest_gaussian(noise: Gaussian, work_dtype: torch.dtype) -> float:
    return _MAX_STANDARD_DRAW * noise.sigma


@largest_draw.register(Laplace)
def _largest_laplace(noise: Laplace, work_dtype: torch.dtype) -> float:
    return _MAX_STANDARD_DRAW * noise.scale


@largest_draw.register(LMO)
def _largest_lmo(noise: LMO, work_dtype: torch.dtype) -> float | None:
    if noise.a4 * noise.unif_low > 0.0 and _fits(_lmo_factors(noise), work_dtype):
        return _MAX_STANDARD_DRAW * noise.scale / (noise.a4 * noise.unif_low)  # U >= a4 * unif_low
    return None  # U can approach 0, or the factors do not fit work_dtype


def _check_arguments(noise, shape, generator, device, dtype, secure_rng) -> tuple[tuple[int, ...], torch.device]:
    """The shape as a tuple and the target device, or a ValueError naming the bad argument."""
    check_noise(noise)
    sizes = shape if isinstance(shape, (tuple, list, torch.Size)) else (shape,)
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in sizes):
        raise ValueError(f"shape must be a size or a tuple of sizes, each a whole number >= 0, got {shape!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
        raise ValueError(f"dtype must be a floating-point torch.dtype (e.g. torch.float32), got {dtype!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be None or a torch.Generator (e.g. torch.Generator().manual_seed(0)), got {generator!r}"
        )
    if not isinstance(secure_rng, bool):
        raise ValueError(f"secure_rng must be True or False, got {secure_rng!r}")
    if secure_rng and generator is not None:
        raise ValueError("generator must be None when secure_rng=True (the noise then comes from os.urandom)")
    if device is None:
        return tuple(int(n) for n in sizes), (generator.device if generator is not None else torch.device("cpu"))
    try:
        return tuple(int(n) for n in sizes), torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be a torch.device or a device string such as 'cpu', got {device!r}") from error


def sample_noise(
    noise: Noise,
    shape,
    *,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
    secure_rng: bool = False,
) -> torch.Tensor:
    """I.i.d. draws of ``noise`` with the given shape, on ``device`` with ``dtype``.

    ``generator`` (a ``torch.Generator``) makes the draws reproducible; they are made on the generator's device
    and moved to ``device`` if it differs; ``secure_rng=True`` draws
    from the operating system's CSPRNG instead (and then ``generator`` must be None). ``CustomNoise`` is drawn
    by its numpy sampler on the CPU (seeded from ``generator``) and moved to ``device``. Half-precision dtypes
    are sampled in float32 and rounded.

    A draw never overflows silently: a noise whose draws can exceed ``dtype``'s largest finite value is refused
    up front (e.g. ``Gaussian(1e5)`` in float16), and the draws of a noise without such a bound (an LMO whose U
    can approach 0 or whose parameters do not fit the dtype, ``CustomNoise``) are checked: a non-finite one
    raises a ValueError.
    """
    shape, device = _check_arguments(noise, shape, generator, device, dtype, secure_rng)
    work_dtype = torch.float64 if secure_rng else (dtype if torch.finfo(dtype).bits >= 32 else torch.float32)
    largest, dtype_max = largest_draw(noise, work_dtype), torch.finfo(dtype).max
    if largest is not None and largest > dtype_max:
        raise ValueError(
            f"{noise!r} draws values up to {largest:.3g}, beyond {dtype}'s largest finite value "
            f"{dtype_max:.3g}: use a wider dtype (float32) or a smaller noise scale"
        )
    source: _TorchSource | _SecureSource
    if secure_rng:
        source = _SecureSource()
    else:
        source = _TorchSource(generator, generator.device if generator is not None else device, work_dtype)
    draws = draw_noise(noise, source, shape).to(device=device, dtype=dtype)
    if largest is None and not bool(torch.isfinite(draws).all()):
        raise ValueError(
            f"a draw of {noise!r} overflowed {dtype} (largest finite value {dtype_max:.3g}): use a "
            f"wider dtype or a smaller noise scale"
        )
    return draws
