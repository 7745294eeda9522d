"""The privacy state of a training run: its ledger of steps taken and the states of its random generators.

The ledger is the record of what ran. ``record_steps`` makes every optimizer step append the mechanism it
actually used (the optimizer's noise at that step, the clipping geometry, the loader's Poisson rate), so a
noise changed between steps or at a resume becomes a new ledger entry and past steps are never relabelled.

``privacy_state`` serialises the ledger with the noise and sampling generators' states, a format version and a
SHA-256 checksum of the content. ``restore_privacy_state`` checks everything before it changes anything: the
format and version, the checksum (it detects truncated or edited files, not a forger who recomputes it), the
ledger, the generator states, and that the ledger's step count equals the step the checkpoint is at. Any
mismatch is a ValueError naming the source. The restored steps keep their own mechanisms; the run's current
mechanism is recorded only for the steps it takes after the resume.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os

import torch

from lmodp_core import Accountant

FORMAT = "lmodp-privacy-state"
FORMAT_VERSION = 2  # 1: no format, version or checksum fields (refused: it cannot be checked)
_KEYS = ("format", "format_version", "global_step", "accountant", "noise_generator", "sampling_generator")


def record_steps(optimizer, accountant: Accountant, geometry, sampling) -> None:
    """Each step ``optimizer`` takes appends (its noise at that step, ``geometry``, ``sampling``) to the ledger."""
    optimizer.attach_step_hook(lambda taken: accountant.step(noise=taken.noise, geometry=geometry, sampling=sampling))


def _generator_state(generator: torch.Generator | None) -> str | None:
    return None if generator is None else base64.b64encode(generator.get_state().numpy().tobytes()).decode()


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def privacy_state(
    accountant: Accountant,
    global_step: int,
    noise_generator: torch.Generator | None,
    sampling_generator: torch.Generator | None,
) -> dict:
    """JSON-safe state of a run at ``global_step`` optimizer steps, with format version and checksum."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "global_step": int(global_step),
        "accountant": accountant.state_dict(),
        "noise_generator": _generator_state(noise_generator),
        "sampling_generator": _generator_state(sampling_generator),
    }
    return {**payload, "checksum": _checksum(payload)}


def _checked_generator_state(encoded, key: str, source: str, generator: torch.Generator | None):
    """The decoded state for ``generator``, after checking that a generator on its device accepts it."""
    if encoded is None or generator is None:
        return None
    try:
        state = torch.frombuffer(bytearray(base64.b64decode(encoded, validate=True)), dtype=torch.uint8)
        torch.Generator(device=generator.device).set_state(state)
    except (TypeError, ValueError, RuntimeError, binascii.Error) as error:
        raise ValueError(f"{source}: '{key}' is not a valid torch generator state ({error})") from error
    return state


def _checked_ledger(state: dict, source: str) -> Accountant:
    try:
        return Accountant.from_state_dict(state["accountant"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"{source}: the stored ledger ('accountant') is malformed ({error!r})") from error


def restore_privacy_state(
    state,
    *,
    source: str,
    global_step: int,
    accountant: Accountant,
    noise_generator: torch.Generator | None,
    sampling_generator: torch.Generator | None,
) -> None:
    """Append the stored ledger to the empty ``accountant`` and restore the generators, after checking it all.

    ``global_step``: the optimizer steps the checkpoint being resumed has taken; a ledger with another count is
    refused. ``source`` names the state (a file path) in every error.
    """
    if isinstance(global_step, bool) or not isinstance(global_step, int) or global_step < 0:
        raise ValueError(f"global_step must be the whole number of steps the checkpoint took, got {global_step!r}")
    if isinstance(state, dict) and "accountant" in state and "format" not in state:
        raise ValueError(
            f"{source}: a privacy state without format version or checksum (written by lmodp_torch "
            f"0.2.0 or earlier) cannot be checked against the checkpoint"
        )
    if not isinstance(state, dict) or any(key not in state for key in (*_KEYS, "checksum")):
        raise ValueError(f"{source}: not an lmodp privacy state (it needs the keys {(*_KEYS, 'checksum')})")
    if state["format"] != FORMAT or state["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{source}: privacy state format {state['format']!r} version {state['format_version']!r}; "
            f"this version of lmodp_torch reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    try:
        intact = state["checksum"] == _checksum({key: state[key] for key in _KEYS})
    except (TypeError, ValueError) as error:  # content that is not JSON
        raise ValueError(f"{source}: the privacy state is not JSON content ({error})") from error
    if not intact:
        raise ValueError(f"{source}: the checksum does not match the content (the file is damaged or was edited)")
    ledger = _checked_ledger(state, source)
    if ledger.steps != state["global_step"] or ledger.steps != global_step:
        raise ValueError(
            f"{source}: the ledger holds {ledger.steps} steps (written at step "
            f"{state['global_step']!r}) but the checkpoint is at step {global_step}: a stale or foreign "
            f"ledger cannot certify this run"
        )
    noise_state = _checked_generator_state(state["noise_generator"], "noise_generator", source, noise_generator)
    sampling_state = _checked_generator_state(
        state["sampling_generator"], "sampling_generator", source, sampling_generator
    )
    if accountant.steps:
        raise ValueError(
            f"restore the privacy state before the first step: this run's ledger already holds "
            f"{accountant.steps} steps (resume in a fresh trainer or make_private call)"
        )
    for mechanism, count in ledger.ledger:
        accountant.step(count, noise=mechanism.noise, geometry=mechanism.geometry, sampling=mechanism.sampling)
    for generator, saved in ((noise_generator, noise_state), (sampling_generator, sampling_state)):
        if generator is not None and saved is not None:
            generator.set_state(saved)


def write_privacy_file(path: str, state: dict) -> None:
    """Write ``state`` as JSON, atomically (a crash leaves the old file or the new one, never half of one)."""
    partial = f"{path}.partial"
    with open(partial, "w") as handle:
        json.dump(state, handle)
    os.replace(partial, path)


def read_json_file(path: str, what: str):
    """The parsed JSON of ``path``, or a ValueError naming the file and ``what`` it should hold."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read {what} ({error})") from error
