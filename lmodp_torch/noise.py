"""On-device sampling of every lmodp noise family with torch (DESIGN §5).

The parameterisation is the one of ``lmodp_core`` (one code path for sampler and accountant, DESIGN §2 F2):
``LMO`` draws U = a1*Gamma(gamma_shape, gamma_scale) + a3*Exponential(RATE exp_rate) + a4*Uniform(unif_low,
unif_high) and then Z | U ~ Laplace(0, scale/U), independently per coordinate and per call.

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

import math
import os

import numpy as np
import torch

from lmodp_core import LMO, CustomNoise, Gaussian, Laplace, Noise, PiecewiseNoise

_UNIFORM_BITS = 53
_MAX_PRODUCT_SHAPE = 4  # a product of <= 4 draws of 1 - u >= 2^-24 stays above float32's smallest normal


class _TorchSource:
    """Uniforms, normals and Gammas from a ``torch.Generator`` on the target device."""

    def __init__(self, generator: torch.Generator | None, device, dtype):
        self.generator, self.device, self.dtype = generator, device, dtype

    def uniform(self, shape) -> torch.Tensor:
        """Uniform on [0, 1)."""
        return torch.rand(shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def normal(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def gamma(self, concentration: float, shape) -> torch.Tensor:
        alpha = torch.full(shape, concentration, device=self.device, dtype=self.dtype)
        return torch._standard_gamma(alpha, generator=self.generator)

    def numpy_rng(self) -> np.random.Generator:
        seed = torch.randint(0, 2**62, (1,), generator=self.generator, device=self.device).item()
        return np.random.default_rng(seed)


class _SecureSource:
    """Uniforms from ``os.urandom`` (float64 on the CPU); normals and Gammas derived from them only."""

    device = torch.device("cpu")
    dtype = torch.float64

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
        raise ValueError("secure_rng=True is not available for CustomNoise: its sampler needs a numpy Generator, "
                         "and numpy has no cryptographically secure bit generator; use secure_rng=False")


def _symmetric_uniform(source, shape) -> torch.Tensor:
    """Uniform on (-1, 1), symmetric about 0 and never +-1: 2u - (1 - eps/2) for u on the grid k * eps/2."""
    u = source.uniform(shape)
    return u.mul_(2.0).sub_(1.0 - torch.finfo(u.dtype).eps / 2.0)


def _laplace(source, shape, scale: float) -> torch.Tensor:
    """Laplace(0, scale) by inversion: sign(v) * scale * -log(1 - |v|), v uniform on (-1, 1) (always finite)."""
    v = _symmetric_uniform(source, shape)
    return v.abs().neg_().log1p_().mul_(-scale).copysign_(v)


def _exponential(source, shape, rate: float) -> torch.Tensor:
    """Exponential with RATE ``rate``: -log(1 - u) / rate, u in [0, 1) (always finite)."""
    return source.uniform(shape).neg_().log1p_().mul_(-1.0 / rate)


def _gamma(source, concentration: float, shape) -> torch.Tensor:
    """Gamma(concentration, 1): -log of a product of uniforms on (0, 1] for whole shapes up to 4 (several times
    faster than rejection sampling), the source's own sampler otherwise."""
    if concentration != int(concentration) or concentration > _MAX_PRODUCT_SHAPE:
        return source.gamma(concentration, shape)
    product = source.uniform(shape).neg_().add_(1.0)
    for _ in range(int(concentration) - 1):
        product.mul_(source.uniform(shape).neg_().add_(1.0))
    return product.log_().neg_()


def _lmo_inverse_scale(noise: LMO, source, shape) -> torch.Tensor:
    """U = a1*G + a3*E + a4*V with G ~ Gamma(gamma_shape, gamma_scale), E ~ Exponential(rate exp_rate),
    V ~ Uniform(unif_low, unif_high)."""
    parts = []
    if noise.a1 > 0:
        parts.append(_gamma(source, noise.gamma_shape, shape).mul_(noise.a1 * noise.gamma_scale))
    if noise.a3 > 0:
        parts.append(_exponential(source, shape, noise.exp_rate).mul_(noise.a3))
    if noise.a4 > 0:
        width = noise.unif_high - noise.unif_low
        parts.append(source.uniform(shape).mul_(noise.a4 * width).add_(noise.a4 * noise.unif_low))
    u = parts[0]
    for part in parts[1:]:
        u.add_(part)
    return u.clamp_min_(torch.finfo(u.dtype).tiny)  # U > 0 a.s.; guards a float underflow of the Gamma part


def _draw(noise: Noise, source, shape) -> torch.Tensor:
    if isinstance(noise, Gaussian):
        return source.normal(shape).mul_(noise.sigma)
    if isinstance(noise, Laplace):
        return _laplace(source, shape, noise.scale)
    if isinstance(noise, LMO):
        return _laplace(source, shape, noise.scale).div_(_lmo_inverse_scale(noise, source, shape))
    if isinstance(noise, (CustomNoise, PiecewiseNoise)):  # drawn by their numpy samplers
        return torch.from_numpy(np.asarray(noise.sample(source.numpy_rng(), shape), dtype=np.float64))
    raise ValueError(f"noise must be an lmodp_core Gaussian, Laplace, LMO or CustomNoise, got {noise!r}")


def sample_noise(noise: Noise, shape, *, generator: torch.Generator | None = None, device=None,
                 dtype: torch.dtype = torch.float32, secure_rng: bool = False) -> torch.Tensor:
    """I.i.d. draws of ``noise`` with the given shape, on ``device`` with ``dtype``.

    ``generator`` (a ``torch.Generator``) makes the draws reproducible; they are made on the generator's device
    and moved to ``device`` if it differs; ``secure_rng=True`` draws
    from the operating system's CSPRNG instead (and then ``generator`` must be None). ``CustomNoise`` is drawn
    by its numpy sampler on the CPU (seeded from ``generator``) and moved to ``device``. Half-precision dtypes
    are sampled in float32 and rounded.
    """
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be an lmodp_core Noise (Gaussian, Laplace, LMO, CustomNoise), got {noise!r}")
    shape = tuple(int(n) for n in (shape if isinstance(shape, (tuple, list, torch.Size)) else (shape,)))
    if any(n < 0 for n in shape):
        raise ValueError(f"shape must contain sizes >= 0, got {shape}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
    if secure_rng and generator is not None:
        raise ValueError("generator must be None when secure_rng=True (the noise then comes from os.urandom)")
    device = torch.device(device) if device is not None else (generator.device if generator else torch.device("cpu"))
    if secure_rng:
        source = _SecureSource()
    else:
        work_dtype = dtype if torch.finfo(dtype).bits >= 32 else torch.float32
        source = _TorchSource(generator, generator.device if generator is not None else device, work_dtype)
    return _draw(noise, source, shape).to(device=device, dtype=dtype)
