"""Opacus optimizers that add any lmodp noise instead of Gaussian noise (docs/torch.md).

Per-example gradients, clipping, accumulation, averaging and the distributed all-reduce are Opacus's own; this
module replaces exactly two things:

* ``add_noise``: each parameter's clipped sum receives ``clip * Z`` with Z drawn i.i.d. per coordinate from the
  chosen noise (``sample_noise``), once per optimizer step. Under ``torch.distributed`` only rank 0 adds it,
  before Opacus's single all-reduce of the clipped sums, so every rank ends with the same ``sum + clip * Z``:
  the noise of one draw, not one per rank.
* ``clip_and_accumulate`` when ``norm="l1"``: per-example gradients are clipped in L1 norm (all trainable
  parameters flattened together), for the ``L1Ball`` geometry. ``norm="l2"`` is Opacus's clipping unchanged.

``LMODPOptimizer(optimizer, noise=..., clip=..., expected_batch_size=...)`` is a drop-in for Opacus's
``DPOptimizer(optimizer, noise_multiplier=..., max_grad_norm=..., ...)``: ``noise=Gaussian(noise_multiplier)``
with ``clip=max_grad_norm`` reproduces it (Opacus's ``max_grad_norm`` attribute holds the clip).
The noise is expressed in units of the clipping norm, exactly like ``noise_multiplier``. ``noise_multiplier``
itself is the Gaussian's sigma (so Opacus's accountant hooks and noise schedulers keep working with Gaussian
noise) and raises a ValueError for any other noise: no NaN or placeholder ever reaches Opacus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from opacus.optimizers import (
    DistributedDPOptimizer,
    DistributedDPOptimizerFastGradientClipping,
    DPOptimizer,
    DPOptimizerFastGradientClipping,
)
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

from lmodp_core import Gaussian, Noise
from lmodp_core.validation import check_noise, check_positive

from .noise import sample_noise

NORMS = ("l2", "l1")
_CLIP_EPS = 1e-6  # the same guard as Opacus: clipped norms are <= clip * n / (n + 1e-6) < clip

if TYPE_CHECKING:  # the type checker sees the Opacus optimizer the mixin is always combined with (below)
    from opacus.optimizers import DPOptimizer as _OpacusOptimizer
else:  # at run time the mixin stays a plain class so that it sits before each Opacus class in the MRO
    _OpacusOptimizer = object


class _LMONoise(_OpacusOptimizer):
    """Mixin for Opacus optimizers: lmodp noise in ``add_noise`` and optional L1 clipping."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        noise: Noise,
        clip: float,
        expected_batch_size: float | None,
        norm: str = "l2",
        loss_reduction: str = "mean",
        generator: torch.Generator | None = None,
        secure_rng: bool = False,
        **kwargs,
    ):
        check_noise(noise)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        clip = check_positive("clip (the per-example clipping norm)", clip)
        if loss_reduction == "mean" or expected_batch_size is not None:
            expected_batch_size = check_positive(
                "expected_batch_size (q * dataset size, the divisor of the noisy sum)", expected_batch_size
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be None or a torch.Generator, got {generator!r}")
        if secure_rng and generator is not None:
            raise ValueError("generator must be None when secure_rng=True")
        if norm == "l1" and isinstance(self, DPOptimizerFastGradientClipping):
            raise ValueError(
                "norm='l1' is not available with ghost clipping (it computes L2 norms); use grad_sample_mode='hooks'"
            )
        super().__init__(
            optimizer,
            noise_multiplier=noise,
            max_grad_norm=clip,
            expected_batch_size=expected_batch_size,
            loss_reduction=loss_reduction,
            generator=generator,
            secure_mode=False,
            **kwargs,
        )
        self.norm = norm
        self.secure_rng = bool(secure_rng)

    @property
    def noise(self) -> Noise:
        """The lmodp noise in units of ``clip``: each step adds ``clip * Z``, Z ~ noise."""
        return self._noise

    @noise.setter
    def noise(self, noise: Noise) -> None:
        check_noise(noise)
        self._noise = noise

    @property
    def clip(self) -> float:
        """The per-example clipping norm (Opacus's ``max_grad_norm``)."""
        return self.max_grad_norm

    @property
    def noise_multiplier(self) -> float:
        """Opacus's noise multiplier sigma / clip; defined for Gaussian noise only (other noise raises)."""
        if isinstance(self._noise, Gaussian):
            return self._noise.sigma
        raise ValueError(
            f"noise_multiplier is defined for Gaussian noise only; this optimizer adds "
            f"{self._noise.family} noise ({self._noise!r}), which Opacus's accountants cannot account "
            f"for: use the lmodp accountant (make_private's accountant or lmodp_core.Accountant)"
        )

    @noise_multiplier.setter
    def noise_multiplier(self, value) -> None:
        """A number replaces a Gaussian's sigma (as Opacus's noise schedulers do); an lmodp Noise replaces the
        noise."""
        if isinstance(value, Noise):
            self.noise = value
        elif isinstance(self._noise, Gaussian):
            self.noise = Gaussian(value)
        else:
            raise ValueError(
                f"noise_multiplier can be set only for Gaussian noise; this optimizer adds "
                f"{self._noise.family} noise: set optimizer.noise to an lmodp Noise instead"
            )

    def _draws_noise(self) -> bool:
        return getattr(self, "rank", 0) == 0

    def add_noise(self):
        """``p.grad = p.summed_grad + clip * Z`` (Z only on rank 0 when distributed)."""
        step_noise = self._noise.scaled(self.clip)  # clip * Z, the law actually added
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            grad = p.summed_grad
            if self._draws_noise():
                grad = sample_noise(
                    step_noise,
                    grad.shape,
                    generator=self.generator,
                    device=grad.device,
                    dtype=grad.dtype,
                    secure_rng=self.secure_rng,
                ).add_(grad)
            p.grad = grad.view_as(p)
            _mark_as_processed(p.summed_grad)

    def clip_and_accumulate(self):
        if self.norm == "l2":
            return super().clip_and_accumulate()
        grad_samples = self.grad_samples
        if len(grad_samples[0]) == 0:  # an empty Poisson batch: nothing to clip, the step adds noise only
            clip_factor = torch.zeros((0,), device=grad_samples[0].device)
        else:
            per_sample_norms = sum(
                g.reshape(len(g), -1).abs().sum(dim=-1).to(grad_samples[0].device) for g in grad_samples
            )
            clip_factor = (self.clip / (per_sample_norms + _CLIP_EPS)).clamp(max=1.0)
        for p in self.params:
            _check_processed_flag(p.grad_sample)
            grad_sample = self._get_flat_grad_sample(p).to(p.dtype)
            grad = torch.einsum("i,i...", clip_factor.to(grad_sample.device, p.dtype), grad_sample)
            p.summed_grad = grad if p.summed_grad is None else p.summed_grad + grad
            _mark_as_processed(p.grad_sample)


class LMODPOptimizer(_LMONoise, DPOptimizer):
    """Opacus ``DPOptimizer`` with lmodp noise (per-example gradients from hooks or functorch)."""


class DistributedLMODPOptimizer(_LMONoise, DistributedDPOptimizer):
    """Opacus ``DistributedDPOptimizer`` with lmodp noise drawn once, on rank 0."""


class LMODPOptimizerGhostClipping(_LMONoise, DPOptimizerFastGradientClipping):
    """Opacus ghost-clipping optimizer (L2 only) with lmodp noise."""


class DistributedLMODPOptimizerGhostClipping(_LMONoise, DistributedDPOptimizerFastGradientClipping):
    """Distributed ghost-clipping optimizer (L2 only) with lmodp noise drawn once, on rank 0."""


def optimizer_class(*, distributed: bool, ghost_clipping: bool) -> type[_LMONoise]:
    """The private optimizer class for a setting."""
    if ghost_clipping:
        return DistributedLMODPOptimizerGhostClipping if distributed else LMODPOptimizerGhostClipping
    return DistributedLMODPOptimizer if distributed else LMODPOptimizer
