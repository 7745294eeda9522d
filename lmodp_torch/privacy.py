"""``make_private``: one call that makes a model, optimizer and data loader private with any lmodp noise.

The returned data loader draws Poisson batches (each example joins a step independently with probability
``sample_rate``): that is the sampling the accountant certifies. ``make_private`` never keeps a shuffling or
fixed-size loader, and an ε reported by the returned ``Accountant`` holds only when training iterates the
returned loader, one optimizer step per batch (no gradient accumulation across batches).

The noise is expressed in units of the clipping norm (like Opacus's ``noise_multiplier``): each step adds
``clip * Z`` to the sum of clipped per-example gradients and divides by the expected batch size
``sample_rate * len(dataset)``. The accountant therefore composes ``(noise, geometry with clip 1, Poisson(q))``,
which is the same mechanism as ``(clip * noise, geometry with clip, Poisson(q))``.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import torch
from opacus.data_loader import DPDataLoader
from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP
from opacus.grad_sample.utils import prepare_module
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
from torch.nn.parallel import DistributedDataParallel as DDP

from lmodp_core import Accountant, Gaussian, L1Ball, L2Ball, Noise, Poisson, calibrate
from lmodp_core import epsilon as epsilon_of
from lmodp_core.geometry import Geometry

from .optimizer import optimizer_class

GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost")


class PrivateTraining(NamedTuple):
    """What ``make_private`` returns; iterate ``data_loader`` and step ``optimizer`` as usual."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    data_loader: torch.utils.data.DataLoader
    accountant: Accountant
    criterion: Any  # the loss to call in ghost-clipping mode (it runs Opacus's two backward passes); else as given


def resolve_geometry(clip: float | None, geometry: Geometry | None) -> tuple[float, Geometry]:
    """(clipping norm, unit geometry for the accountant) from ``clip`` and/or ``geometry``."""
    if geometry is not None and not isinstance(geometry, (L1Ball, L2Ball)):
        raise ValueError(f"geometry must be None, L2Ball(clip) or L1Ball(clip) for gradients, got {geometry!r}")
    if clip is None:
        if geometry is None:
            raise ValueError("clip must be given (the per-example clipping norm, > 0), or pass geometry=L2Ball(clip)")
        clip = geometry.clip
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not (0 < clip < math.inf):
        raise ValueError(f"clip must be a finite number > 0, got {clip!r}")
    if geometry is not None and not math.isclose(geometry.clip, clip):
        raise ValueError(f"clip={clip} disagrees with geometry={geometry!r}; give one of them or equal values")
    return float(clip), (L1Ball(1.0) if isinstance(geometry, L1Ball) else L2Ball(1.0))


def choose_noise(noise: Noise | None, geometry: Geometry, sample_rate: float, steps: int, *, epsilon: float,
                 delta: float, method: str = "auto") -> Noise:
    """The noise meeting (epsilon, delta) after ``steps`` Poisson steps under ``method``: ``noise`` calibrated
    soundly, or, when ``noise`` is None, ``lmodp_core.search.optimize_noise``'s pick (rescaled if ``method``
    certifies it above the target; a calibrated Gaussian if the search is unavailable).
    """
    if noise is None:
        try:
            from lmodp_core.search import optimize_noise
        except ImportError:
            warnings.warn("lmodp_core.search.optimize_noise is not available: using a calibrated Gaussian",
                          stacklevel=3)
            noise = Gaussian(1.0)
        else:
            pick = optimize_noise(epsilon, delta, steps, sample_rate, geometry=geometry, method=method).noise
            if epsilon_of(pick, geometry, Poisson(sample_rate), steps, delta, method) <= epsilon:
                return pick
            noise = pick  # certified with another method than ours (e.g. PLD for its Gaussian): rescale for ours
    return calibrate(noise, geometry, Poisson(sample_rate), steps, epsilon=epsilon, delta=delta, method=method)


def _poisson_loader(data_loader, sample_rate: float | None, distributed: bool, generator) -> DPDataLoader:
    if not isinstance(data_loader, torch.utils.data.DataLoader):
        raise ValueError(f"data_loader must be a torch DataLoader over a map-style dataset, got {data_loader!r}")
    if sample_rate is None:
        if isinstance(data_loader, DPDataLoader) and data_loader.distributed == distributed:
            return data_loader
        return DPDataLoader.from_data_loader(data_loader, distributed=distributed, generator=generator)
    if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate <= 1):
        raise ValueError(f"sample_rate must lie in (0, 1], got {sample_rate!r}")
    return DPDataLoader(data_loader.dataset, sample_rate=float(sample_rate), collate_fn=data_loader.collate_fn,
                        num_workers=data_loader.num_workers, pin_memory=data_loader.pin_memory,
                        generator=generator, distributed=distributed)


def make_private(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data_loader, *,
                 noise: Noise | None = None, clip: float | None = None, geometry: Geometry | None = None,
                 sample_rate: float | None = None, target_epsilon: float | None = None,
                 target_delta: float | None = None, epochs: float | None = None, method: str = "auto",
                 grad_sample_mode: str = "hooks", criterion=None, noise_generator: torch.Generator | None = None,
                 sampling_generator: torch.Generator | None = None, secure_rng: bool = False,
                 wrap_model: bool = True) -> PrivateTraining:
    """Make ``(model, optimizer, data_loader)`` private and return them with an ``Accountant``.

    noise: an lmodp noise in units of ``clip`` (``Gaussian(sigma)`` is Opacus's ``noise_multiplier=sigma``).
        With a target it is only the *shape*: it is rescaled by ``calibrate``; ``None`` with a target asks
        ``optimize_noise`` for the best shape.
    clip / geometry: per-example clipping norm; ``geometry=L1Ball(clip)`` clips in L1, otherwise L2.
    sample_rate: Poisson rate q; default ``1 / len(data_loader)`` (the loader's batch size over the dataset).
    target_epsilon, target_delta, epochs: choose the noise so that ``ceil(epochs / q)`` steps meet the target.
    grad_sample_mode: ``"hooks"`` (default), ``"functorch"`` or ``"ghost"`` (Opacus ghost clipping, L2 only;
        then pass ``criterion`` and use the returned one).
    noise_generator / sampling_generator: seeded ``torch.Generator`` for the noise / the batch sampling.
    secure_rng: draw the noise from the OS CSPRNG (see ``lmodp_torch.noise``).
    wrap_model: False keeps the caller's module object and only attaches Opacus hooks (``PreTrainedModel``
        methods keep working); the returned ``model`` is then the hooks handle (``.cleanup()``).
    """
    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise ValueError(f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}, got {grad_sample_mode!r}")
    ghost = grad_sample_mode == "ghost"
    if ghost and criterion is None:
        raise ValueError("grad_sample_mode='ghost' needs criterion= (the loss function to wrap)")
    if secure_rng and noise_generator is not None:
        raise ValueError("noise_generator must be None when secure_rng=True")
    clip, unit_geometry = resolve_geometry(clip, geometry)
    if ghost and isinstance(unit_geometry, L1Ball):
        raise ValueError("geometry=L1Ball is not available with grad_sample_mode='ghost' (ghost clipping is L2)")
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if any(id(p) not in trainable for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("optimizer must hold only trainable parameters of model")
    distributed = isinstance(model, (DPDDP, DDP))
    loader = _poisson_loader(data_loader, sample_rate, distributed, sampling_generator)
    q = float(loader.sample_rate)
    targets = (target_epsilon, target_delta, epochs)
    if any(t is not None for t in targets):
        if any(t is None for t in targets):
            raise ValueError("a target needs all of target_epsilon, target_delta and epochs")
        if not (isinstance(epochs, (int, float)) and epochs > 0):
            raise ValueError(f"epochs must be a number > 0, got {epochs!r}")
        noise = choose_noise(noise, unit_geometry, q, math.ceil(epochs / q), epsilon=target_epsilon,
                             delta=target_delta, method=method)
    elif noise is None:
        raise ValueError("noise must be given (e.g. noise=Gaussian(1.0)), or a target (target_epsilon, "
                         "target_delta, epochs)")
    accountant = Accountant(noise, unit_geometry, Poisson(q), method=method)

    hooked = prepare_module(model, grad_sample_mode, wrap_model, batch_first=True, loss_reduction="mean",
                            **({"max_grad_norm": clip} if ghost else {}))
    hooked.forbid_grad_accumulation()
    expected_batch_size = q * len(loader.dataset)
    if distributed:
        expected_batch_size /= torch.distributed.get_world_size()
    private_optimizer = optimizer_class(distributed=distributed, ghost_clipping=ghost)(
        optimizer, noise=noise, max_grad_norm=clip, expected_batch_size=expected_batch_size,
        norm="l1" if isinstance(unit_geometry, L1Ball) else "l2", generator=noise_generator,
        secure_rng=secure_rng)
    private_optimizer.attach_step_hook(lambda _: accountant.step())
    if ghost:
        criterion = DPLossFastGradientClipping(hooked, private_optimizer, criterion, "mean")
    return PrivateTraining(hooked, private_optimizer, loader, accountant, criterion)
