"""``make_private``: one call that makes a model, optimizer and data loader private with any lmodp noise.

The returned data loader draws Poisson batches (each example joins a step independently with probability
``sample_rate``): that is the sampling the accountant certifies. ``make_private`` never keeps a shuffling or
fixed-size loader, and an ε reported by the returned ``Accountant`` holds only when training iterates the
returned loader, one optimizer step per batch (no gradient accumulation across batches).

The noise is expressed in units of the clipping norm (like Opacus's ``noise_multiplier``): each step adds
``clip * Z`` to the sum of clipped per-example gradients and divides by the expected batch size
``sample_rate * len(dataset)``. The accountant therefore composes ``(noise, geometry with clip 1, Poisson(q))``,
which is the same mechanism as ``(clip * noise, geometry with clip, Poisson(q))``.

``make_private`` and ``PrivateTrainer`` share the setup below (``privacy_setup``, ``private_optimizer``,
``announce_noise``): the same validation, the same planned step count, the same noise choice, the same ledger
recording and the same start-up log line.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, NamedTuple

import torch
from opacus.data_loader import DPDataLoader
from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP
from opacus.grad_sample.utils import prepare_module
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
from torch.nn.parallel import DistributedDataParallel as DDP

from lmodp_core import Accountant, L1Ball, L2Ball, Noise, Poisson, calibrate, compute_epsilon, optimize_noise
from lmodp_core.geometry import Geometry
from lmodp_core.validation import check_delta, check_epsilon, check_noise, check_positive, check_sample_rate

from .ledger import privacy_state, record_steps, restore_privacy_state
from .optimizer import _LMONoise, optimizer_class

GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost")
logger = logging.getLogger("lmodp_torch")


class PrivateTraining(NamedTuple):
    """What ``make_private`` returns; iterate ``data_loader`` and step ``optimizer`` as usual."""

    model: torch.nn.Module
    optimizer: _LMONoise  # an Opacus DPOptimizer (or its distributed / ghost-clipping variant) with lmodp noise
    data_loader: torch.utils.data.DataLoader
    accountant: Accountant
    criterion: Any  # the loss to call in ghost-clipping mode (it runs Opacus's two backward passes); else as given

    @property
    def noise(self) -> Noise:
        """The noise each step adds, in units of the clipping norm (the calibrated one when a target was given)."""
        return self.optimizer.noise

    def privacy_state(self) -> dict:
        """The ledger and the noise and sampling generators' states, JSON-safe, versioned and checksummed: save
        it with each checkpoint and give it to ``load_privacy_state`` when resuming."""
        return privacy_state(
            self.accountant,
            self.accountant.steps,
            self.optimizer.generator,
            getattr(self.data_loader.batch_sampler, "generator", None),
        )

    def load_privacy_state(self, state: dict, *, global_step: int, source: str = "privacy state") -> None:
        """Resume: restore the ledger and the generators from ``privacy_state()`` output, before the first step.

        ``global_step`` is the number of optimizer steps the checkpoint being resumed has taken; a ledger with
        another count is refused. The restored steps keep the mechanisms they were taken with; steps from now
        on are recorded with this run's noise and sampling rate (a new ledger entry if they differ).
        """
        restore_privacy_state(
            state,
            source=source,
            global_step=global_step,
            accountant=self.accountant,
            noise_generator=self.optimizer.generator,
            sampling_generator=getattr(self.data_loader.batch_sampler, "generator", None),
        )


class PrivacySetup(NamedTuple):
    """The privacy parameters of a run, as ``make_private`` and ``PrivateTrainer`` both build them."""

    noise: Noise  # in units of clip
    clip: float
    geometry: Geometry  # the clipping geometry with clip 1 (what the accountant composes)
    sampling: Poisson
    accountant: Accountant


def resolve_geometry(clip: float | None, geometry: Geometry | None) -> tuple[float, Geometry]:
    """(clipping norm, unit geometry for the accountant) from ``clip`` and/or ``geometry``."""
    if geometry is not None and not isinstance(geometry, (L1Ball, L2Ball)):
        raise ValueError(f"geometry must be None, L2Ball(clip) or L1Ball(clip) for gradients, got {geometry!r}")
    if clip is None:
        if geometry is None:
            raise ValueError("clip must be given (the per-example clipping norm, > 0), or pass geometry=L2Ball(clip)")
        clip = geometry.clip
    clip = check_positive("clip", clip)
    if geometry is not None and not math.isclose(geometry.clip, clip):
        raise ValueError(f"clip={clip} disagrees with geometry={geometry!r}; give one of them or equal values")
    return clip, (L1Ball(1.0) if isinstance(geometry, L1Ball) else L2Ball(1.0))


def planned_steps(epochs: float, sample_rate: float) -> int:
    """Optimizer steps in ``epochs`` passes over a Poisson loader of rate q: ceil(epochs * floor(1/q)).

    A pass over Opacus's Poisson loader has floor(1/q) batches (its sampler's length), and ``Trainer`` plans
    ``ceil(num_train_epochs * batches per pass)`` steps, so this is the number of steps that actually run.
    """
    epochs = check_positive("epochs", epochs)
    return max(1, math.ceil(epochs * math.floor(1.0 / check_sample_rate(sample_rate))))


def choose_noise(
    noise: Noise | None,
    geometry: Geometry,
    sample_rate: float,
    steps: int,
    *,
    target_epsilon: float,
    target_delta: float,
    method: str = "auto",
) -> Noise:
    """The noise meeting (target_epsilon, target_delta) after ``steps`` Poisson steps under ``method``: ``noise``
    calibrated soundly, or, when ``noise`` is None, ``lmodp_core.search.optimize_noise``'s pick (rescaled if ``method``
    certifies it above the target).
    """
    if noise is None:
        pick = optimize_noise(target_epsilon, target_delta, steps, sample_rate, geometry=geometry, method=method).noise
        if compute_epsilon(pick, geometry, Poisson(sample_rate), steps, target_delta, method) <= target_epsilon:
            return pick
        noise = pick  # certified with another method than ours (e.g. PLD for its Gaussian): rescale for ours
    return calibrate(
        noise,
        geometry,
        Poisson(sample_rate),
        steps,
        target_epsilon=target_epsilon,
        target_delta=target_delta,
        method=method,
    ).noise


def privacy_setup(
    noise: Noise | None,
    clip: float | None,
    geometry: Geometry | None,
    sample_rate: float,
    *,
    method: str,
    target: tuple[float, float, int] | None = None,
) -> PrivacySetup:
    """Validate the privacy parameters and build the accountant.

    ``target = (target_epsilon, target_delta, steps)``: the noise (a shape, or None for ``optimize_noise``'s pick) is
    calibrated to meet it after ``steps`` steps (``choose_noise``); otherwise ``noise`` is used as given.
    """
    if noise is not None:
        check_noise(noise)
    clip, unit_geometry = resolve_geometry(clip, geometry)
    sampling = Poisson(check_sample_rate(sample_rate))
    if target is not None:
        target_epsilon, target_delta, steps = target
        noise = choose_noise(
            noise,
            unit_geometry,
            sampling.sample_rate,
            steps,
            target_epsilon=check_epsilon(target_epsilon, "target_epsilon"),
            target_delta=check_delta(target_delta, "target_delta"),
            method=method,
        )
    elif noise is None:
        raise ValueError("noise must be given (e.g. noise=Gaussian(1.0)), or a privacy target to choose it for")
    return PrivacySetup(noise, clip, unit_geometry, sampling, Accountant(noise, unit_geometry, sampling, method=method))


def private_optimizer(
    setup: PrivacySetup,
    optimizer: torch.optim.Optimizer,
    *,
    expected_batch_size: float,
    generator: torch.Generator | None,
    secure_rng: bool,
    distributed: bool = False,
    ghost_clipping: bool = False,
) -> _LMONoise:
    """The lmodp Opacus optimizer wrapping ``optimizer``; each step it takes is recorded in the ledger."""
    private = optimizer_class(distributed=distributed, ghost_clipping=ghost_clipping)(
        optimizer,
        noise=setup.noise,
        clip=setup.clip,
        expected_batch_size=expected_batch_size,
        norm="l1" if isinstance(setup.geometry, L1Ball) else "l2",
        generator=generator,
        secure_rng=secure_rng,
    )
    record_steps(private, setup.accountant, setup.geometry, setup.sampling)
    return private


def announce_noise(setup: PrivacySetup, *, steps: int | None = None, delta: float | None = None) -> str:
    """Log (INFO, logger ``lmodp_torch``) and return one line: the noise family and parameters, its std in
    units of the clip, and the epsilon certified at ``delta`` once the ledger has ``steps`` steps in all."""
    noise = setup.noise
    line = (
        f"lmodp noise: {noise.family} {noise!r}, std/clip {noise.std:.4g} (clip {setup.clip:g}, "
        f"{type(setup.geometry).__name__}, Poisson q={setup.sampling.sample_rate:.4g})"
    )
    if steps is not None and delta is not None:
        planned = copy.deepcopy(setup.accountant)
        if steps > planned.steps:
            planned.step(steps - planned.steps)
        line += f"; certified epsilon {planned.get_epsilon(delta):.4g} at delta {delta:.3g} for {steps} planned steps"
    logger.info(line)
    return line


def _poisson_loader(data_loader, sample_rate: float | None, distributed: bool, generator) -> DPDataLoader:
    if not isinstance(data_loader, torch.utils.data.DataLoader) or not hasattr(data_loader.dataset, "__len__"):
        raise ValueError(f"data_loader must be a torch DataLoader over a map-style dataset, got {data_loader!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"sampling_generator must be None or a torch.Generator, got {generator!r}")
    if len(data_loader.dataset) == 0:
        raise ValueError("data_loader's dataset is empty: Poisson sampling needs at least one example")
    if sample_rate is None:
        if isinstance(data_loader, DPDataLoader) and data_loader.distributed == distributed:
            return data_loader
        return DPDataLoader.from_data_loader(data_loader, distributed=distributed, generator=generator)
    return DPDataLoader(
        data_loader.dataset,
        sample_rate=check_sample_rate(sample_rate),
        collate_fn=data_loader.collate_fn,
        num_workers=data_loader.num_workers,
        pin_memory=data_loader.pin_memory,
        generator=generator,
        distributed=distributed,
    )


def make_private(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader,
    *,
    noise: Noise | None = None,
    clip: float | None = None,
    geometry: Geometry | None = None,
    sample_rate: float | None = None,
    target_epsilon: float | None = None,
    target_delta: float | None = None,
    epochs: float | None = None,
    method: str = "auto",
    grad_sample_mode: str = "hooks",
    criterion=None,
    noise_generator: torch.Generator | None = None,
    sampling_generator: torch.Generator | None = None,
    secure_rng: bool = False,
    wrap_model: bool = True,
) -> PrivateTraining:
    """Make ``(model, optimizer, data_loader)`` private and return them with an ``Accountant``.

    noise: an lmodp noise in units of ``clip`` (``Gaussian(sigma)`` is Opacus's ``noise_multiplier=sigma``).
        With a target it is only the *shape*: it is rescaled by ``calibrate``; ``None`` with a target asks
        ``optimize_noise`` for the best shape. The noise used is ``result.noise`` and is logged at INFO level.
    clip / geometry: per-example clipping norm; ``geometry=L1Ball(clip)`` clips in L1, otherwise L2.
    sample_rate: Poisson rate q; default ``1 / len(data_loader)`` (the loader's batch size over the dataset).
    target_epsilon, target_delta, epochs: choose the noise so that the ``planned_steps(epochs, q)`` =
        ceil(epochs * floor(1/q)) steps of ``epochs`` passes over the Poisson loader meet the target.
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
    if ghost and isinstance(geometry, L1Ball):
        raise ValueError("geometry=L1Ball is not available with grad_sample_mode='ghost' (ghost clipping is L2)")
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if any(id(p) not in trainable for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("optimizer must hold only trainable parameters of model")
    targets = (target_epsilon, target_delta, epochs)
    if any(t is not None for t in targets) and any(t is None for t in targets):
        raise ValueError("a target needs all of target_epsilon, target_delta and epochs")
    distributed = isinstance(model, (DPDDP, DDP))
    loader = _poisson_loader(data_loader, sample_rate, distributed, sampling_generator)
    q = float(loader.sample_rate)
    steps = None if epochs is None else planned_steps(epochs, q)
    target = None
    if target_epsilon is not None and target_delta is not None and steps is not None:  # all or none (checked above)
        target = (target_epsilon, target_delta, steps)
    setup = privacy_setup(noise, clip, geometry, q, method=method, target=target)

    hooked = prepare_module(
        model,
        grad_sample_mode,
        wrap_model,
        batch_first=True,
        loss_reduction="mean",
        **({"max_grad_norm": setup.clip} if ghost else {}),
    )
    hooked.forbid_grad_accumulation()
    expected_batch_size = q * len(loader.dataset)
    if distributed:
        expected_batch_size /= torch.distributed.get_world_size()
    private = private_optimizer(
        setup,
        optimizer,
        expected_batch_size=expected_batch_size,
        generator=noise_generator,
        secure_rng=secure_rng,
        distributed=distributed,
        ghost_clipping=ghost,
    )
    announce_noise(setup, steps=steps, delta=target_delta)
    if ghost:
        criterion = DPLossFastGradientClipping(hooked, private, criterion, "mean")
    return PrivateTraining(hooked, private, loader, setup.accountant, criterion)
