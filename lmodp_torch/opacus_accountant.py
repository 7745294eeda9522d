"""An Opacus ``IAccountant`` answered by lmodp, registered as ``accountant="lmodp"`` when lmodp_torch is imported.

``opacus.PrivacyEngine(accountant="lmodp")`` then accounts an unmodified Opacus script with lmodp's sound
bounds (tight PLD for Gaussian noise), ``make_private_with_epsilon`` calibrates with them, and the state
round-trips through ``PrivacyEngine.save_checkpoint`` / ``load_checkpoint``.

``history`` keeps Opacus's layout, one ``(noise, sample_rate, steps, norm)`` run per change of mechanism, where
``noise`` is in units of the clipping norm: a float noise multiplier for Gaussian noise (so Opacus's own
``get_noise_multiplier``, which writes ``(sigma, q, steps)`` runs, works unchanged) or an lmodp ``Noise`` for
other noise, taken from the lmodp optimizer itself (its ``noise_multiplier`` is never read then); ``norm`` is the
clipping norm, "l2" (default when absent) or "l1".
"""

from __future__ import annotations

import numbers
from collections import OrderedDict

from opacus.accountants import IAccountant, register_accountant

from lmodp_core import Accountant, Gaussian, L1Ball, L2Ball, Noise, Poisson
from lmodp_core.accountant import METHODS, NEIGHBOURING_RELATIONS
from lmodp_core.validation import check_choice, check_positive, check_sample_rate, check_steps

from .optimizer import NORMS

MECHANISM = "lmodp"


def _noise_entry(noise):
    """The history form of a noise in clip units: a float for Gaussian noise, the lmodp ``Noise`` otherwise."""
    if isinstance(noise, Gaussian):
        return noise.sigma
    if isinstance(noise, Noise):
        return noise
    if isinstance(noise, numbers.Real) and not isinstance(noise, bool):
        return check_positive("noise_multiplier", noise)
    raise ValueError(
        f"noise_multiplier must be a number > 0 (Gaussian sigma / clip) or an lmodp noise such as "
        f"Gaussian(1.0) or LMO(...), got {noise!r}"
    )


def _checked_run(run) -> tuple:
    """A validated ``(noise, sample_rate, steps, norm)`` run from a 3- or 4-item history entry."""
    if not isinstance(run, (tuple, list)) or len(run) not in (3, 4):
        raise ValueError(f"history entries must be (noise, sample_rate, steps[, norm]), got {run!r}")
    noise, sample_rate, steps, *given_norm = run
    norm = check_choice("norm", given_norm[0] if given_norm else "l2", NORMS)
    return _noise_entry(noise), check_sample_rate(sample_rate), check_steps(steps), norm


class OpacusAccountant(IAccountant):
    """Opacus accountant with lmodp's sound epsilon/delta for any lmodp noise (add/remove-one neighbours).

    ``method`` is lmodp's accounting method: "auto" (the smaller of PLD, where a dominating pair is known, and
    Renyi DP), "pld" or "rdp".
    """

    def __init__(self, method: str = "auto"):
        self.history: list[tuple] = []  # (noise, sample_rate, steps[, norm]) runs, Opacus's layout
        self.method = check_choice("method", method, METHODS)

    @classmethod
    def mechanism(cls) -> str:
        return MECHANISM

    def step(self, *, noise_multiplier, sample_rate: float, norm: str = "l2"):
        """Record one step; ``noise_multiplier`` may also be an lmodp ``Noise`` in units of the clipping norm."""
        run = _checked_run((noise_multiplier, sample_rate, 1, norm))
        if self.history:
            last = _checked_run(self.history[-1])
            if (last[0], last[1], last[3]) == (run[0], run[1], run[3]):
                self.history[-1] = (last[0], last[1], last[2] + 1, last[3])
                return
        self.history.append(run)

    def get_optimizer_hook_fn(self, sample_rate: float):
        """The step hook for a private optimizer: lmodp optimizers report their noise and clipping norm,
        Opacus's own report their noise multiplier."""

        def hook_fn(optimizer):
            noise = getattr(optimizer, "noise", None)
            if not isinstance(noise, Noise):
                noise = optimizer.noise_multiplier
            self.step(
                noise_multiplier=noise,
                sample_rate=sample_rate * optimizer.accumulated_iterations,
                norm=getattr(optimizer, "norm", "l2"),
            )

        return hook_fn

    def to_accountant(self) -> Accountant:
        """The lmodp ``Accountant`` with this history as its ledger (clip-1 geometry, noise in clip units)."""
        accountant = Accountant(method=self.method)
        for noise, sample_rate, steps, norm in map(_checked_run, self.history):
            accountant.step(
                steps,
                noise=Gaussian(noise) if isinstance(noise, float) else noise,
                geometry=L1Ball(1.0) if norm == "l1" else L2Ball(1.0),
                sampling=Poisson(sample_rate),
            )
        return accountant

    def get_epsilon(self, delta: float, **opacus_options) -> float:
        """A sound upper bound on epsilon at ``delta`` for the steps taken. Options of Opacus's own accountants
        (``eps_error``, ``alphas``, ...) are accepted and ignored: lmodp's bounds need no tuning."""
        return self.to_accountant().get_epsilon(delta)

    def get_delta(self, epsilon: float) -> float:
        """A sound upper bound on delta at ``epsilon`` for the steps taken."""
        return self.to_accountant().get_delta(epsilon)

    def __len__(self) -> int:
        """The number of steps taken."""
        return sum(_checked_run(run)[2] for run in self.history)

    def state_dict(self, destination=None):
        """Opacus's ``{"history", "mechanism"}`` plus ``method`` and ``neighbouring`` (add_remove); lmodp noises are
        stored as plain dicts."""
        destination = OrderedDict() if destination is None else destination
        destination["history"] = [
            (noise if isinstance(noise, float) else noise.to_dict(), sample_rate, steps, norm)
            for noise, sample_rate, steps, norm in map(_checked_run, self.history)
        ]
        destination["mechanism"] = MECHANISM
        destination["method"] = self.method
        destination["neighbouring"] = "add_remove"
        return destination

    def load_state_dict(self, state_dict, **noise_extra) -> None:
        """Restore a ``state_dict()``; every run is re-validated before it is trusted. ``noise_extra`` passes
        ``logpdf=`` (and ``sampler=``) for a ``CustomNoise`` run, whose density is code and not in the state."""
        if not isinstance(state_dict, dict) or state_dict.get("mechanism") != MECHANISM:
            raise ValueError(
                f"an lmodp accountant state needs mechanism={MECHANISM!r}, got "
                f"{state_dict.get('mechanism') if isinstance(state_dict, dict) else state_dict!r}"
            )
        history = state_dict.get("history")
        if not isinstance(history, (list, tuple)):
            raise ValueError(f"accountant state needs a list 'history', got {history!r}")
        runs = []
        for entry in history:
            noise = entry[0] if isinstance(entry, (tuple, list)) and entry else None
            if isinstance(noise, dict):
                entry = (Noise.from_dict(noise, **noise_extra), *entry[1:])
            runs.append(_checked_run(entry))
        method = check_choice("method", state_dict.get("method", "auto"), METHODS)
        check_choice("neighbouring", state_dict.get("neighbouring", "add_remove"), NEIGHBOURING_RELATIONS)
        self.history, self.method = runs, method


register_accountant(MECHANISM, OpacusAccountant, force=True)
