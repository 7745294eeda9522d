"""Hugging Face ``Trainer`` integration: ``PrivateTrainer`` (a subclass) plus its privacy callback.

Why a subclass: a callback cannot replace what privacy depends on — the training data loader (it must draw
Poisson batches, docs/torch.md; ``Trainer`` shuffles and batches), the optimizer (per-example clipping and
noise), or the handling of an empty Poisson batch (it must still take a noise-only step). The subclass
overrides exactly those public hooks (``get_train_dataloader``, ``create_optimizer``, ``training_step``,
``train``, ``log``). Everything that only *observes* training — ε logged at every logging step, stopping
before the budget would be exceeded, writing the ledger into every checkpoint — lives in a ``TrainerCallback``.

Checkpoints: each ``checkpoint-N/`` folder receives ``lmodp_privacy.json`` with the ledger and the states of the
noise and sampling generators, versioned and checksummed (``lmodp_torch.ledger``). ``train(resume_from_checkpoint
=...)`` checks the file against the checkpoint's own ``trainer_state.json`` step and restores all three, so a
resumed run reports the same ε as an uninterrupted one and never replays noise already used (replayed noise
would cancel between steps). A resumed run with another noise or sampling rate keeps the stored steps as they
were and records its own steps as a new ledger entry. A checkpoint without the file, a stale, damaged or
foreign file is refused with a ValueError naming it.

Not covered by ε: the logged training loss (computed on the private batch) and anything evaluated on the
training data. The loss must average per-example losses over the batch (as sequence classification does);
token-averaged language-model losses couple the examples of a batch and are not supported.
"""

from __future__ import annotations

import copy
import os
import secrets
import warnings
from collections.abc import Sized

import torch
from opacus.grad_sample.utils import prepare_module
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import is_datasets_available

from lmodp_core import CustomNoise, Noise
from lmodp_core.geometry import Geometry
from lmodp_core.validation import check_delta, check_epsilon

from .ledger import privacy_state, read_json_file, restore_privacy_state, write_privacy_file
from .optimizer import LMODPOptimizer
from .privacy import announce_noise, planned_steps, privacy_setup, private_optimizer

if is_datasets_available():
    import datasets

PRIVACY_STATE_FILE = "lmodp_privacy.json"
TRAINER_GRAD_SAMPLE_MODES = ("hooks", "functorch")


class _PoissonCollate:
    """Collate a Poisson batch; an empty batch becomes ``{}`` (``PrivateTrainer`` takes a noise-only step)."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, examples):
        return self.collate(examples) if examples else {}


def _checkpoint_step(checkpoint: str) -> int:
    """The optimizer steps a checkpoint has taken, from its ``trainer_state.json``."""
    path = os.path.join(checkpoint, TRAINER_STATE_NAME)
    state = read_json_file(path, "the checkpoint's trainer state") if os.path.isfile(path) else None
    step = state.get("global_step") if isinstance(state, dict) else None
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"{path}: no global_step to check the privacy ledger against")
    return step


class PrivacyCallback(TrainerCallback):
    """Logs the noise at the start; stops training before ε would exceed the budget; writes the ledger to
    checkpoints."""

    def __init__(self, trainer: PrivateTrainer):
        self.trainer = trainer
        self.steps_allowed: int | None = None
        self._start_step = 0
        self._planned_noise: Noise | None = None

    def _plan(self, state) -> None:
        """How many of the remaining steps the budget allows with the noise in use now."""
        self._planned_noise = self.trainer.noise
        self._start_step = state.global_step
        self.steps_allowed = self.trainer.steps_within_budget(max(state.max_steps - state.global_step, 0))

    def on_train_begin(self, args, state, control, **kwargs):
        self._plan(state)
        if self.steps_allowed == 0 and state.max_steps > state.global_step:
            raise ValueError(
                f"the privacy budget epsilon={self.trainer.target_epsilon} is spent: one more step "
                f"would exceed it (ledger: {self.trainer.accountant.steps} steps)"
            )
        announce_noise(
            self.trainer.setup,
            steps=max(state.max_steps, self.trainer.accountant.steps),
            delta=self.trainer.target_delta,
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer.noise != self._planned_noise:  # e.g. a noise scheduler: plan the rest with the new noise
            self._plan(state)
        if self.steps_allowed is not None and state.global_step - self._start_step >= self.steps_allowed:
            if state.global_step < state.max_steps:
                warnings.warn(
                    f"stopping at step {state.global_step}: one more step would exceed "
                    f"epsilon={self.trainer.target_epsilon}",
                    stacklevel=2,
                )
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if args.should_save:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            write_privacy_file(os.path.join(folder, PRIVACY_STATE_FILE), self.trainer.privacy_state())
        return control


class PrivateTrainer(Trainer):
    """``transformers.Trainer`` that trains with DP-SGD and any lmodp noise.

    noise: lmodp noise in units of ``clip`` (``Gaussian(sigma)`` is Opacus's noise multiplier ``sigma``). When
        None, ``target_epsilon`` is required and the noise is chosen for the planned number of steps (``max_steps``, or
        ``planned_steps(num_train_epochs, sample_rate)``) by ``optimize_noise`` (or a calibrated Gaussian when
        the search is unavailable). ``trainer.noise`` is the noise used; it is logged (INFO) when training
        starts, with its std/clip and the ε certified for the planned steps.
    clip / geometry: per-example clipping norm (L2, or L1 with ``geometry=L1Ball(clip)``).
    target_delta: the δ at which ε is logged (``epsilon`` in the logs) and the budget is checked.
    target_epsilon: the budget; training stops before a step would make the ledger's ε exceed it.
    ``get_epsilon()`` is the sound ε of the steps taken, at ``target_delta``.
    sample_rate: Poisson rate; default ``per_device_train_batch_size / len(train_dataset)``.
    secure_rng: noise from the OS CSPRNG, sampling generator seeded from it (see ``lmodp_torch.noise``).
    """

    def __init__(
        self,
        *args,
        noise: Noise | None = None,
        clip: float | None = None,
        geometry: Geometry | None = None,
        target_delta: float,
        target_epsilon: float | None = None,
        sample_rate: float | None = None,
        method: str = "auto",
        grad_sample_mode: str = "hooks",
        secure_rng: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if grad_sample_mode not in TRAINER_GRAD_SAMPLE_MODES:
            raise ValueError(
                f"grad_sample_mode must be one of {TRAINER_GRAD_SAMPLE_MODES} for PrivateTrainer "
                f"(ghost clipping needs its own loss wrapper: use make_private), got {grad_sample_mode!r}"
            )
        if self.args.gradient_accumulation_steps != 1:
            raise ValueError("gradient_accumulation_steps must be 1: each Poisson batch is one private step")
        if self.args.world_size != 1:
            raise ValueError("PrivateTrainer runs in one process; for DDP use make_private (noise added once)")
        dataset = self.train_dataset
        if not isinstance(dataset, Sized) or len(dataset) == 0:
            raise ValueError(
                "PrivateTrainer needs a non-empty train_dataset with a length (the Poisson loader samples from it)"
            )
        if self.args.max_grad_norm:
            warnings.warn(
                "setting max_grad_norm=0: per-example clipping uses clip=; Trainer's clipping would act "
                "on (and log the norm of) the non-private gradient",
                stacklevel=2,
            )
            self.args.max_grad_norm = 0.0
        self.args.ignore_data_skip = True  # skipping would only burn Poisson draws; resuming restores the sampler
        self.target_delta = check_delta(target_delta, "target_delta")
        self.target_epsilon = None if target_epsilon is None else check_epsilon(target_epsilon, "target_epsilon")
        self.method = method
        self.secure_rng = bool(secure_rng)
        rate = self.args.per_device_train_batch_size / len(dataset) if sample_rate is None else sample_rate
        target = None
        if noise is None:
            if target_epsilon is None:
                raise ValueError("give noise= (e.g. Gaussian(1.0)) or target_epsilon= (and the noise is chosen for it)")
            steps = self.args.max_steps if self.args.max_steps > 0 else planned_steps(self.args.num_train_epochs, rate)
            target = (target_epsilon, target_delta, steps)
        self.setup = privacy_setup(noise, clip, geometry, rate, method=method, target=target)
        self.clip, self.geometry = self.setup.clip, self.setup.geometry
        self.sampling, self.accountant = self.setup.sampling, self.setup.accountant
        self.noise_generator = None if self.secure_rng else torch.Generator().manual_seed(self.args.seed)
        seed = secrets.randbits(63) if self.secure_rng else self.args.seed + 1
        self.sampling_generator = torch.Generator().manual_seed(seed)
        self.model_accepts_loss_kwargs = False  # the loss must be the mean over examples (Opacus rescales it)
        self._hooks = prepare_module(self.model, grad_sample_mode, False, batch_first=True, loss_reduction="mean")
        self._hooks.forbid_grad_accumulation()
        self._epsilon_cache: tuple[int, float] | None = None
        self.lmodp_optimizer: LMODPOptimizer | None = None  # the Opacus optimizer inside Trainer's wrapper
        self.add_callback(PrivacyCallback(self))

    @property
    def noise(self) -> Noise:
        """The noise in use (units of ``clip``): the optimizer's once it exists (a scheduler may change it)."""
        return self.setup.noise if self.lmodp_optimizer is None else self.lmodp_optimizer.noise

    # ---- privacy: the parts a callback cannot do -------------------------------------------------------
    def get_train_dataloader(self):
        dataset, collate = self.train_dataset, self.data_collator
        if is_datasets_available() and isinstance(dataset, datasets.Dataset):  # unused columns go, as in Trainer
            dataset = self._remove_unused_columns(dataset, description="training")
        else:
            collate = self._get_collator_with_removed_columns(collate, description="training")
        sampler = UniformWithReplacementSampler(
            num_samples=len(dataset), sample_rate=self.sampling.sample_rate, generator=self.sampling_generator
        )
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=_PoissonCollate(collate),
            num_workers=self.args.dataloader_num_workers,
        )

    def create_optimizer(self, model=None):
        if self.optimizer is None or self.lmodp_optimizer is None:  # not again once Trainer has wrapped it
            self.lmodp_optimizer = private_optimizer(
                self.setup,
                super().create_optimizer(model),
                expected_batch_size=self.sampling.sample_rate * len(self.train_dataset),
                generator=self.noise_generator,
                secure_rng=self.secure_rng,
            )
            self.optimizer = self.lmodp_optimizer
        return self.optimizer

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.optimizer.zero_grad()  # Trainer calls model.zero_grad(), which leaves Opacus's per-example gradients
        if inputs:
            return super().training_step(model, inputs, num_items_in_batch)
        for p in model.parameters():  # an empty Poisson batch: zero per-example gradients, the step adds noise
            if p.requires_grad:
                p.grad_sample = torch.zeros((0, *p.shape), device=p.device, dtype=p.dtype)
        return torch.zeros((), device=self.args.device)

    # ---- ledger ------------------------------------------------------------------------------------------
    def get_epsilon(self) -> float:
        """Sound ε of the training so far at ``target_delta`` (cached per step count)."""
        if self._epsilon_cache is None or self._epsilon_cache[0] != self.accountant.steps:
            self._epsilon_cache = (self.accountant.steps, self.accountant.get_epsilon(self.target_delta))
        return self._epsilon_cache[1]

    def steps_within_budget(self, planned: int) -> int | None:
        """How many of ``planned`` further steps with the noise in use keep ε <= the budget (None without one)."""
        budget = self.target_epsilon
        if budget is None:
            return None
        if planned <= 0 or not self._exceeds_after(planned, budget):
            return planned
        low, high = 0, planned  # ε(low) <= budget < ε(high)
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if self._exceeds_after(mid, budget) else (mid, high)
        return low

    def _exceeds_after(self, extra: int, budget: float) -> bool:
        planned = copy.deepcopy(self.accountant).step(extra, noise=self.noise)
        return planned.get_epsilon(self.target_delta) > budget

    def privacy_state(self) -> dict:
        """The ledger and generator states (what each checkpoint's ``lmodp_privacy.json`` holds)."""
        return privacy_state(
            self.accountant,
            self.state.global_step,
            self.noise_generator,
            None if self.secure_rng else self.sampling_generator,
        )

    def log(self, logs, *args, **kwargs):
        logs = {**logs, "epsilon": self.get_epsilon()}
        return super().log(logs, *args, **kwargs)

    def train(self, resume_from_checkpoint=None, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"resume_from_checkpoint=True but {self.args.output_dir} has no checkpoint")
        if resume_from_checkpoint:
            self._load_privacy_state(resume_from_checkpoint)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _load_privacy_state(self, checkpoint: str) -> None:
        if isinstance(self.noise, CustomNoise):
            raise ValueError("resuming is not supported with CustomNoise (its density cannot be stored in JSON)")
        path = os.path.join(checkpoint, PRIVACY_STATE_FILE)
        if not os.path.isfile(path):
            raise ValueError(
                f"{checkpoint} has no {PRIVACY_STATE_FILE}: without the privacy ledger the resumed "
                f"run's epsilon cannot be certified"
            )
        restore_privacy_state(
            read_json_file(path, "the privacy ledger"),
            source=path,
            global_step=_checkpoint_step(checkpoint),
            accountant=self.accountant,
            noise_generator=self.noise_generator,
            sampling_generator=None if self.secure_rng else self.sampling_generator,
        )
