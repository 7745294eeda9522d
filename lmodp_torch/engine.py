"""``lmodp_torch.PrivacyEngine``: Opacus's ``PrivacyEngine`` that takes any lmodp noise.

Switching an Opacus script to another noise is one import and one keyword::

    from lmodp_torch import PrivacyEngine                  # instead of: from opacus import PrivacyEngine
    engine.make_private(..., noise=LMO(...))                # instead of: noise_multiplier=1.1

``noise`` is in units of the clipping norm, like ``noise_multiplier``. Gaussian noise (or a plain
``noise_multiplier``) runs Opacus's own optimizer unchanged; any other noise runs lmodp's ``LMODPOptimizer``
family (flat clipping only), which the default ``accountant="lmodp"`` accounts from the optimizer's noise.
"""

from __future__ import annotations

import logging
import warnings

import opacus

from lmodp_core import Gaussian, L2Ball, Noise, Poisson, calibrate
from lmodp_core.validation import check_noise

from .opacus_accountant import MECHANISM, OpacusAccountant
from .optimizer import optimizer_class

logger = logging.getLogger(__name__)

_LMODP_GRAD_SAMPLE_MODES = ("hooks", "functorch", "ew", "ghost")


def _checked_noise(noise, noise_multiplier):
    """The lmodp noise to use: ``noise``, or ``Gaussian(noise_multiplier)``; exactly one must be given."""
    if (noise is None) == (noise_multiplier is None):
        raise ValueError(
            "give exactly one of noise= (an lmodp noise such as Gaussian(1.0), Laplace(1.0), LMO(...)) "
            "and noise_multiplier="
        )
    if noise is None:
        return Gaussian(noise_multiplier)
    return check_noise(noise)


class PrivacyEngine(opacus.PrivacyEngine):
    """Opacus's ``PrivacyEngine`` with ``noise=`` for any lmodp noise; accounts with lmodp by default."""

    def __init__(self, *, accountant: str = MECHANISM, secure_mode: bool = False):
        super().__init__(accountant=accountant, secure_mode=secure_mode)
        self._lmodp_noise: Noise | None = None  # set only while make_private builds a non-Gaussian optimizer

    def _check_lmodp_noise(self, noise: Noise, clipping: str, grad_sample_mode: str) -> None:
        if not isinstance(self.accountant, OpacusAccountant):
            raise ValueError(
                f"{type(noise).__name__} noise needs PrivacyEngine(accountant={MECHANISM!r}); "
                f"Opacus's {self.accountant.mechanism()!r} accountant covers Gaussian noise only"
            )
        if clipping != "flat":
            raise ValueError(f"{type(noise).__name__} noise supports clipping='flat' only, got {clipping!r}")
        if grad_sample_mode not in _LMODP_GRAD_SAMPLE_MODES:
            raise ValueError(
                f"{type(noise).__name__} noise supports grad_sample_mode in {_LMODP_GRAD_SAMPLE_MODES}, "
                f"got {grad_sample_mode!r}"
            )

    def make_private(
        self,
        *,
        noise: Noise | None = None,
        noise_multiplier: float | None = None,
        clipping: str = "flat",
        grad_sample_mode: str = "hooks",
        poisson_sampling: bool = True,
        **kwargs,
    ):
        """Opacus's ``make_private`` with ``noise=`` (any lmodp noise in clip units) as an alternative to
        ``noise_multiplier=``; returns what Opacus returns. Poisson sampling is required: the accountant's bounds
        hold for it only."""
        noise = _checked_noise(noise, noise_multiplier)
        if poisson_sampling is not True:
            raise ValueError(
                "poisson_sampling must be True: lmodp's bounds hold for Poisson-sampled batches only "
                "(shuffled fixed-size batches are not covered)"
            )
        if isinstance(noise, Gaussian):
            return super().make_private(
                noise_multiplier=noise.sigma, clipping=clipping, grad_sample_mode=grad_sample_mode, **kwargs
            )
        self._check_lmodp_noise(noise, clipping, grad_sample_mode)
        self._lmodp_noise = noise
        try:
            return super().make_private(
                noise_multiplier=0.0, clipping=clipping, grad_sample_mode=grad_sample_mode, **kwargs
            )
        finally:
            self._lmodp_noise = None

    def _prepare_optimizer(
        self,
        *,
        optimizer,
        noise_multiplier,
        max_grad_norm,
        expected_batch_size,
        loss_reduction="mean",
        distributed=False,
        clipping="flat",
        noise_generator=None,
        grad_sample_mode="hooks",
        **kwargs,
    ):
        if self._lmodp_noise is None:
            return super()._prepare_optimizer(
                optimizer=optimizer,
                noise_multiplier=noise_multiplier,
                max_grad_norm=max_grad_norm,
                expected_batch_size=expected_batch_size,
                loss_reduction=loss_reduction,
                distributed=distributed,
                clipping=clipping,
                noise_generator=noise_generator,
                grad_sample_mode=grad_sample_mode,
                **kwargs,
            )
        if isinstance(optimizer, opacus.optimizers.DPOptimizer):
            optimizer = optimizer.original_optimizer
        private_class = optimizer_class(distributed=distributed, ghost_clipping="ghost" in grad_sample_mode)
        return private_class(
            optimizer,
            noise=self._lmodp_noise,
            clip=max_grad_norm,
            expected_batch_size=expected_batch_size,
            loss_reduction=loss_reduction,
            generator=None if self.secure_mode else noise_generator,
            secure_rng=self.secure_mode,
            **kwargs,
        )

    def make_private_with_epsilon(
        self,
        *,
        data_loader,
        target_epsilon: float,
        target_delta: float,
        epochs: float,
        noise: Noise | None = None,
        **kwargs,
    ):
        """Opacus's ``make_private_with_epsilon``; with the lmodp accountant the noise (``noise`` as the shape,
        a Gaussian by default) is calibrated by ``lmodp_core.calibrate`` so that ``int(epochs / q)`` steps meet
        (target_epsilon, target_delta), and the calibrated noise is logged."""
        if not isinstance(self.accountant, OpacusAccountant):
            if noise is not None and not isinstance(noise, Gaussian):
                self._check_lmodp_noise(noise, kwargs.get("clipping", "flat"), kwargs.get("grad_sample_mode", "hooks"))
            return super().make_private_with_epsilon(
                data_loader=data_loader,
                target_epsilon=target_epsilon,
                target_delta=target_delta,
                epochs=epochs,
                **kwargs,
            )
        if len(self.accountant) > 0:
            warnings.warn(
                "make_private_with_epsilon calibrates for a fresh start, but this engine's accountant "
                "already holds steps: the total epsilon will exceed the target",
                stacklevel=2,
            )
        sample_rate = 1.0 / len(data_loader)
        steps = int(epochs / sample_rate)  # Opacus's step count for the same call
        shape = Gaussian(1.0) if noise is None else _checked_noise(noise, None)
        calibration = calibrate(
            shape,
            L2Ball(1.0),
            Poisson(sample_rate),
            steps,
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            method=self.accountant.method,
        )
        calibrated = calibration.noise
        logger.info(
            "lmodp calibrated %r: std/clip %.6g, certified epsilon %.6g at delta %g for %d steps (sample rate %.6g)",
            calibrated,
            calibrated.std,
            calibration.epsilon,
            target_delta,
            steps,
            sample_rate,
        )
        return self.make_private(data_loader=data_loader, noise=calibrated, **kwargs)
