"""Opacus integration: accountant="lmodp" in an unmodified Opacus loop, and lmodp_torch.PrivacyEngine(noise=...)."""

import logging
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
opacus = pytest.importorskip("opacus")

from opacus.accountants import PRVAccountant, create_accountant  # noqa: E402

import lmodp_torch  # noqa: E402,F401  (registers accountant="lmodp")
from lmodp_core import LMO, Accountant, Gaussian, L1Ball, L2Ball, Laplace, Poisson, compute_epsilon  # noqa: E402
from lmodp_torch import OpacusAccountant, PrivacyEngine  # noqa: E402

torch.set_num_threads(1)
N, BATCH, DELTA = 64, 8, 1e-5
Q = BATCH / N


def tiny_setup(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(N, 4)
    data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
    model = torch.nn.Linear(4, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1), torch.utils.data.DataLoader(data, batch_size=BATCH)


def train(model, optimizer, loader):
    """The user's own Opacus loop, untouched."""
    steps = 0
    for x, y in loader:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        steps += 1
    return steps


def test_registered_with_opacus():
    assert isinstance(create_accountant("lmodp"), OpacusAccountant)


def test_unmodified_opacus_loop_gets_lmodp_epsilon_and_never_more_than_prv():
    model, optimizer, loader = tiny_setup()
    engine = opacus.PrivacyEngine(accountant="lmodp")
    model, optimizer, loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=1.0, max_grad_norm=1.0
    )
    steps = train(model, optimizer, loader)
    assert engine.accountant.history == [(1.0, Q, steps, "l2")] and len(engine.accountant) == steps
    reported = engine.get_epsilon(DELTA)
    assert reported == Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(Q)).step(steps).get_epsilon(DELTA)
    prv = PRVAccountant()
    prv.history = [(1.0, Q, steps)]
    assert reported <= prv.get_epsilon(DELTA)


@pytest.mark.parametrize("sigma, q, steps", [(0.6, 0.02, 500), (2.0, 0.1, 100), (1.0, 0.004, 3000)])
def test_gaussian_epsilon_never_above_opacus_prv(sigma, q, steps):
    ours, prv = OpacusAccountant(), PRVAccountant()
    ours.history = prv.history = [(sigma, q, steps)]  # what Opacus's get_noise_multiplier writes
    assert ours.get_epsilon(DELTA) <= prv.get_epsilon(DELTA)


def test_opacus_make_private_with_epsilon_calibrates_with_lmodp():
    model, optimizer, loader = tiny_setup()
    engine = opacus.PrivacyEngine(accountant="lmodp")
    _, optimizer, _ = engine.make_private_with_epsilon(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        target_epsilon=3.0,
        target_delta=DELTA,
        epochs=1,
        max_grad_norm=1.0,
    )
    assert compute_epsilon(Gaussian(optimizer.noise_multiplier), L2Ball(1.0), Poisson(Q), int(1 / Q), DELTA) <= 3.0


@pytest.mark.parametrize(
    "noise",
    [
        Laplace(1.5),
        LMO(a1=0.1, a3=0.1, a4=0.1, gamma_shape=1.0, gamma_scale=0.5, exp_rate=5.0, unif_low=1.0, unif_high=2.0).scaled(
            2.0
        ),
    ],
)
def test_lmodp_engine_takes_any_noise_and_accounts_it(noise):
    model, optimizer, loader = tiny_setup()
    engine = PrivacyEngine()
    model, optimizer, loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise=noise, max_grad_norm=1.0
    )
    steps = train(model, optimizer, loader)
    assert optimizer.noise == noise and all(torch.isfinite(p).all() for p in model.parameters())
    assert engine.accountant.history == [(noise, Q, steps, "l2")]  # the noise itself, never noise_multiplier
    expected = Accountant(noise, L2Ball(1.0), Poisson(Q)).step(steps).get_epsilon(DELTA)
    assert engine.get_epsilon(DELTA) == expected and math.isfinite(expected)


def test_lmodp_engine_ghost_clipping():
    model, optimizer, loader = tiny_setup()
    engine = PrivacyEngine()
    model, optimizer, criterion, loader = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        criterion=torch.nn.CrossEntropyLoss(),
        noise=Laplace(2.0),
        max_grad_norm=1.0,
        grad_sample_mode="ghost",
    )
    for x, y in loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
    assert engine.accountant.history == [(Laplace(2.0), Q, len(loader), "l2")]


def test_custom_noise_state_needs_its_density():
    from lmodp_core import CustomNoise

    def logpdf(x):
        return -np.abs(x) - math.log(2.0)  # Laplace(1) in numpy

    accountant = OpacusAccountant()
    accountant.step(noise_multiplier=CustomNoise(logpdf, scale=2.0), sample_rate=0.5)
    state = accountant.state_dict()
    with pytest.raises(ValueError, match="logpdf"):
        OpacusAccountant().load_state_dict(state)
    restored = OpacusAccountant()
    restored.load_state_dict(state, logpdf=logpdf)
    assert restored.history == accountant.history and state["neighbouring"] == "add_remove"


def test_lmodp_engine_gaussian_noise_is_opacus_noise_multiplier():
    model, optimizer, loader = tiny_setup()
    _, optimizer, _ = PrivacyEngine(accountant="prv").make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise=Gaussian(1.3), max_grad_norm=1.0
    )
    assert type(optimizer) is opacus.optimizers.DPOptimizer and optimizer.noise_multiplier == 1.3


def test_checkpoint_round_trip(tmp_path):
    model, optimizer, loader = tiny_setup()
    engine = PrivacyEngine()
    model, optimizer, loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise=Laplace(1.5), max_grad_norm=1.0
    )
    train(model, optimizer, loader)
    engine.accountant.step(noise_multiplier=0.9, sample_rate=0.5)  # a second run, Gaussian
    engine.save_checkpoint(path=tmp_path / "ckpt.pt", module=model, optimizer=optimizer)
    restored = PrivacyEngine()
    restored.load_checkpoint(path=tmp_path / "ckpt.pt", module=model, optimizer=optimizer)
    assert restored.accountant.history == engine.accountant.history
    assert restored.get_epsilon(DELTA) == engine.get_epsilon(DELTA)


def test_l1_clipping_is_accounted_in_l1():
    accountant = OpacusAccountant()
    accountant.step(noise_multiplier=Laplace(3.0), sample_rate=0.1, norm="l1")
    accountant.step(noise_multiplier=Laplace(3.0), sample_rate=0.1, norm="l1")
    assert accountant.to_accountant().ledger == ((accountant.to_accountant().ledger[0][0], 2),)
    assert accountant.to_accountant().ledger[0][0].geometry == L1Ball(1.0)


def test_lmodp_engine_calibrates_any_noise_and_logs_it(caplog):
    model, optimizer, loader = tiny_setup()
    with caplog.at_level(logging.INFO, logger="lmodp_torch.engine"):
        _, optimizer, _ = PrivacyEngine().make_private_with_epsilon(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            target_epsilon=3.0,
            target_delta=DELTA,
            epochs=1,
            max_grad_norm=1.0,
            noise=Laplace(1.0),
        )
    assert isinstance(optimizer.noise, Laplace)
    assert compute_epsilon(optimizer.noise, L2Ball(1.0), Poisson(Q), int(1 / Q), DELTA) <= 3.0
    assert "certified epsilon" in caplog.text and "Laplace" in caplog.text


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(noise=1.0), "Gaussian"),
        (dict(noise=Gaussian(1.0), noise_multiplier=1.0), "exactly one"),
        (dict(noise=Laplace(1.0), clipping="per_layer"), "flat"),
        (dict(noise=Gaussian(1.0), poisson_sampling=False), "Poisson"),
    ],
)
def test_lmodp_engine_bad_input(kwargs, message):
    model, optimizer, loader = tiny_setup()
    with pytest.raises(ValueError, match=message):
        PrivacyEngine().make_private(module=model, optimizer=optimizer, data_loader=loader, max_grad_norm=1.0, **kwargs)


def test_non_gaussian_noise_needs_the_lmodp_accountant():
    model, optimizer, loader = tiny_setup()
    with pytest.raises(ValueError, match="accountant='lmodp'"):
        PrivacyEngine(accountant="prv").make_private(
            module=model, optimizer=optimizer, data_loader=loader, noise=Laplace(1.0), max_grad_norm=1.0
        )


@pytest.mark.parametrize(
    "state",
    [
        {"mechanism": "prv", "history": []},
        {"mechanism": "lmodp", "history": [(float("nan"), 0.1, 3)]},
        {"mechanism": "lmodp", "history": [(1.0, 1.5, 3)]},
        {"mechanism": "lmodp", "history": [(1.0, 0.1, 0)]},
        {"mechanism": "lmodp", "history": [({"family": "nope"}, 0.1, 3)]},
        {"mechanism": "lmodp", "history": [(1.0, 0.1, 3, "linf")]},
        {"mechanism": "lmodp", "history": [(1.0, 0.1, 3, "l2")], "neighbouring": "replace_one"},
    ],
)
def test_load_state_dict_rechecks_every_run(state):
    accountant = OpacusAccountant()
    with pytest.raises(ValueError):
        accountant.load_state_dict(state)
    assert accountant.history == []


def test_step_refuses_nan_noise_multiplier():
    with pytest.raises(ValueError, match="noise_multiplier"):
        OpacusAccountant().step(noise_multiplier=float("nan"), sample_rate=0.1)


@pytest.mark.parametrize("noise, hint", [(1.0, "pass Gaussian"), ("gaussian", "lmodp_core noise")])
def test_engine_refuses_a_noise_that_is_not_an_lmodp_noise(noise, hint):
    with pytest.raises(ValueError, match=hint):
        PrivacyEngine().make_private(noise=noise)
