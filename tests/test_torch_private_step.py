"""make_private on a tiny random BERT: one step equals clipped sum + clip * noise, exactly."""

import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("opacus")

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lmodp_core import LMO, Gaussian, L1Ball, L2Ball, Laplace, Poisson, compute_epsilon  # noqa: E402
from lmodp_torch import make_private, sample_noise  # noqa: E402

torch.set_num_threads(1)
N, LENGTH, VOCAB = 24, 8, 50


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=16,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = transformers.BertForSequenceClassification(config)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model.train()


def dataset(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (N, LENGTH), generator=g)
    return TensorDataset(ids, torch.randint(0, 2, (N,), generator=g))


def loss_of(model, ids, labels, reduction="mean"):
    positions = torch.arange(ids.shape[1]).repeat(len(ids), 1)  # contiguous: Opacus ghost norms need it
    logits = model(input_ids=ids, position_ids=positions, token_type_ids=torch.zeros_like(ids)).logits
    return torch.nn.functional.cross_entropy(logits, labels, reduction=reduction)


def manual_update(model, ids, labels, *, noise, clip, q, norm, seed):
    """Per-example gradients by a loop, clipped, summed, plus clip * Z (same generator), / (q N)."""
    params = [p for p in model.parameters() if p.requires_grad]
    per_example = []
    for i in range(len(ids)):
        grads = torch.autograd.grad(loss_of(model, ids[i : i + 1], labels[i : i + 1]), params)
        per_example.append([g.detach() for g in grads])
    total = [torch.zeros_like(p) for p in params]
    for grads in per_example:
        flat = torch.cat([g.reshape(-1) for g in grads])
        norm_value = flat.norm(2) if norm == "l2" else flat.abs().sum()
        factor = min(1.0, clip / (norm_value.item() + 1e-6))
        for t, g in zip(total, grads):
            t += factor * g
    generator = torch.Generator().manual_seed(seed)
    return [(t + clip * sample_noise(noise, t.shape, generator=generator)) / (q * N) for t in total]


@pytest.mark.parametrize(
    "noise, geometry",
    [
        (LMO(0.4, 0.3, 0.3, 2.0, 1.0, 0.5, 1.0, 2.0, scale=0.7), L2Ball(0.5)),
        (Laplace(0.9), L1Ball(0.3)),
    ],
)
def test_one_step_is_clipped_sum_plus_noise(noise, geometry):
    model = tiny_bert()
    reference = tiny_bert()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    loader = DataLoader(dataset(), batch_size=6)
    private = make_private(
        model,
        optimizer,
        loader,
        noise=noise,
        geometry=geometry,
        noise_generator=torch.Generator().manual_seed(7),
        sampling_generator=torch.Generator().manual_seed(3),
    )
    ids, labels = next(iter(private.data_loader))
    assert 0 < len(ids) < N
    before = [p.detach().clone() for p in reference.parameters() if p.requires_grad]
    expected = manual_update(
        reference,
        ids,
        labels,
        noise=noise,
        clip=geometry.clip,
        q=6 / N,
        norm="l2" if isinstance(geometry, L2Ball) else "l1",
        seed=7,
    )
    private.optimizer.zero_grad()
    loss_of(private.model, ids, labels).backward()
    private.optimizer.step()
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    for b, e, a in zip(before, expected, after):
        torch.testing.assert_close(b - a, e, rtol=1e-4, atol=1e-6)
    assert private.accountant.steps == 1
    assert private.accountant.ledger[0][0].noise == noise
    assert private.accountant.ledger[0][0].sampling.sample_rate == pytest.approx(6 / N)


def test_gaussian_noise_is_a_drop_in_for_opacus():
    """noise=Gaussian(sigma) reproduces Opacus's PrivacyEngine step with noise_multiplier=sigma bit for bit."""
    from opacus import PrivacyEngine

    results = []
    for use_lmodp in (True, False):
        model = tiny_bert()
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
        loader = DataLoader(dataset(), batch_size=8)
        if use_lmodp:
            model, optimizer, loader, _, _ = make_private(
                model,
                optimizer,
                loader,
                noise=Gaussian(1.3),
                clip=0.8,
                noise_generator=torch.Generator().manual_seed(5),
            )
        else:
            with pytest.warns(UserWarning):
                engine = PrivacyEngine(accountant="rdp")
            model, optimizer, loader = engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=1.3,
                max_grad_norm=0.8,
                noise_generator=torch.Generator().manual_seed(5),
            )
        ids, labels = dataset()[:10]
        optimizer.zero_grad()
        loss_of(model, ids, labels).backward()
        optimizer.step()
        results.append([p.detach().clone() for p in model.parameters() if p.requires_grad])
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)


def test_ghost_clipping_matches_hooks():
    updates = []
    for mode in ("hooks", "ghost"):
        model = tiny_bert()
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
        private = make_private(
            model,
            optimizer,
            DataLoader(dataset(), batch_size=8),
            noise=LMO(1, 0, 0, 2, 1, 1, 0, 1),
            clip=0.2,
            grad_sample_mode=mode,
            criterion=torch.nn.CrossEntropyLoss(),
            noise_generator=torch.Generator().manual_seed(2),
        )
        ids, labels = dataset()[:8]
        positions = torch.arange(LENGTH).repeat(len(ids), 1)
        logits = private.model(input_ids=ids, position_ids=positions, token_type_ids=torch.zeros_like(ids)).logits
        private.optimizer.zero_grad()
        private.criterion(logits, labels).backward()
        private.optimizer.step()
        updates.append([p.detach().clone() for p in model.parameters() if p.requires_grad])
    for hooks, ghost in zip(*updates):
        torch.testing.assert_close(hooks, ghost, rtol=1e-4, atol=1e-6)


def test_loader_is_poisson_with_the_requested_rate():
    model = torch.nn.Linear(3, 1)
    data = TensorDataset(torch.arange(2000.0).reshape(-1, 1).repeat(1, 3), torch.zeros(2000))
    private = make_private(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        DataLoader(data, batch_size=100),
        noise=Gaussian(1.0),
        clip=1.0,
        sample_rate=0.05,
        sampling_generator=torch.Generator().manual_seed(0),
    )
    assert private.data_loader.sample_rate == 0.05
    sizes = torch.tensor([len(x) for x, _ in private.data_loader], dtype=torch.float64)
    assert len(sizes) == 20
    # Binomial(2000, 0.05): mean 100, sd ~9.7; sizes vary (not fixed batches)
    assert abs(sizes.mean().item() - 100) < 3 * 9.75 / math.sqrt(20) + 1e-9
    assert sizes.std().item() > 3
    membership = torch.zeros(2000)
    for x, _ in private.data_loader:
        assert len(set(x[:, 0].tolist())) == len(x)  # each example at most once per batch
        membership[x[:, 0].long()] += 1
    assert membership.max() <= 20


def test_target_calibrates_noise_soundly():
    model = torch.nn.Linear(3, 2)
    data = TensorDataset(torch.randn(200, 3), torch.zeros(200, dtype=torch.long))
    private = make_private(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        DataLoader(data, batch_size=20),
        noise=Laplace(1.0),
        clip=1.0,
        target_epsilon=3.0,
        target_delta=1e-5,
        epochs=2,
        method="rdp",
    )
    chosen = private.optimizer.noise
    assert isinstance(chosen, Laplace)
    assert private.accountant.step(20).get_epsilon(1e-5) <= 3.0
    assert private.accountant.steps == 20


def test_lora_only_trainable_params_are_noised():
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(
        tiny_bert(), peft.LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query", "value"])
    )
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and frozen
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    private = make_private(
        model,
        optimizer,
        DataLoader(dataset(), batch_size=8),
        noise=LMO(0, 1, 0, 1, 1, 2, 0, 1),
        clip=1.0,
        noise_generator=torch.Generator().manual_seed(0),
    )
    ids, labels = dataset()[:8]
    private.optimizer.zero_grad()
    loss_of(private.model, ids, labels).backward()
    private.optimizer.step()
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
    assert all(not torch.equal(params[n], v) for n, v in trainable.items())  # noise moves every trainable param


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(noise=Gaussian(1.0), clip=-1.0), "clip"),
        (dict(noise=Gaussian(1.0), clip=1.0, sample_rate=1.5), "sample_rate"),
        (dict(noise="gaussian", clip=1.0), "noise"),
        (dict(clip=1.0), "noise"),
        (dict(noise=Gaussian(1.0), clip=1.0, grad_sample_mode="ew"), "grad_sample_mode"),
        (
            dict(
                noise=Gaussian(1.0),
                geometry=L1Ball(1.0),
                grad_sample_mode="ghost",
                criterion=torch.nn.CrossEntropyLoss(),
            ),
            "L1Ball",
        ),
        (dict(noise=Gaussian(1.0), clip=2.0, geometry=L2Ball(1.0)), "disagrees"),
        (dict(noise=Gaussian(1.0), clip=1.0, target_epsilon=1.0), "target"),
        (dict(noise="gaussian", clip=1.0, target_epsilon=1.0, target_delta=1e-5, epochs=1), "noise"),
        (dict(noise=Gaussian(1.0), clip=1.0, sampling_generator=42), "sampling_generator"),
        (dict(noise=Gaussian(1.0), clip=1.0, noise_generator=42), "generator"),
        (dict(noise=Gaussian(1.0), clip=1.0, method="exact"), "method"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    model = torch.nn.Linear(3, 2)
    loader = DataLoader(TensorDataset(torch.randn(10, 3), torch.zeros(10, dtype=torch.long)), batch_size=2)
    with pytest.raises(ValueError, match=message):
        make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), loader, **kwargs)


def test_optimize_noise_pick_is_rescaled_when_the_accountant_method_certifies_it_above_target(monkeypatch):
    import types

    import lmodp_core.search
    from lmodp_torch.privacy import choose_noise

    too_small = Gaussian(0.3)  # far above epsilon=2 after 50 steps at q=0.1
    monkeypatch.setattr(
        lmodp_core.search, "optimize_noise", lambda *args, **kwargs: types.SimpleNamespace(noise=too_small)
    )
    chosen = choose_noise(None, L2Ball(1.0), 0.1, 50, target_epsilon=2.0, target_delta=1e-5, method="rdp")
    assert compute_epsilon(chosen, L2Ball(1.0), Poisson(0.1), 50, 1e-5, "rdp") <= 2.0
    assert chosen.sigma > too_small.sigma


def test_secure_rng_step_moves_parameters():
    model = torch.nn.Linear(4, 3)
    before = model.weight.detach().clone()
    private = make_private(
        model,
        torch.optim.SGD(model.parameters(), lr=1.0),
        DataLoader(TensorDataset(torch.randn(8, 4), torch.zeros(8, dtype=torch.long)), batch_size=4),
        noise=LMO(1, 0, 0, 2, 1, 1, 0, 1),
        clip=1.0,
        secure_rng=True,
    )
    x, y = next(iter(private.data_loader))
    private.optimizer.zero_grad()
    torch.nn.functional.cross_entropy(private.model(x), y).backward()
    private.optimizer.step()
    assert not torch.equal(before, model.weight) and private.accountant.steps == 1


def linear_private(**kwargs):
    model = torch.nn.Linear(3, 2)
    data = TensorDataset(torch.randn(20, 3), torch.zeros(20, dtype=torch.long))
    settings = {
        "noise": Gaussian(1.0),
        "clip": 1.0,
        "noise_generator": torch.Generator().manual_seed(0),
        "sampling_generator": torch.Generator().manual_seed(1),
        **kwargs,
    }
    return make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data, batch_size=5), **settings)


def take_step(private):
    x, y = next(iter(private.data_loader))
    private.optimizer.zero_grad()
    torch.nn.functional.cross_entropy(private.model(x), y).backward()
    private.optimizer.step()


def test_noise_multiplier_is_sigma_for_gaussian_and_an_error_for_other_noise():
    gaussian = linear_private(noise=Gaussian(1.3)).optimizer
    assert gaussian.noise_multiplier == 1.3
    gaussian.noise_multiplier = 0.7  # what Opacus's noise schedulers do
    assert gaussian.noise == Gaussian(0.7)
    lmo = linear_private(noise=LMO(1, 0, 0, 2, 1, 1, 0, 1)).optimizer
    with pytest.raises(ValueError, match="lmo noise.*lmodp accountant"):
        _ = lmo.noise_multiplier
    with pytest.raises(ValueError, match="Gaussian"):
        lmo.noise_multiplier = 1.0
    assert "noise_multiplier" not in vars(lmo)  # Opacus's attribute is the property: no NaN stored anywhere


def test_each_step_records_the_noise_it_actually_used():
    private = linear_private(noise=Gaussian(1.0))
    take_step(private)
    private.optimizer.noise_multiplier = 0.5
    take_step(private)
    mechanisms = [(m.noise, c) for m, c in private.accountant.ledger]
    assert mechanisms == [(Gaussian(1.0), 1), (Gaussian(0.5), 1)]


def test_resume_appends_the_new_mechanism_and_refuses_stale_or_edited_state():
    first = linear_private(noise=Gaussian(2.0))
    take_step(first)
    take_step(first)
    saved = first.privacy_state()
    resumed = linear_private(noise=Gaussian(0.5))  # resumed with another noise: a new ledger entry
    resumed.load_privacy_state(saved, global_step=2)
    assert torch.equal(resumed.optimizer.generator.get_state(), first.optimizer.generator.get_state())
    take_step(resumed)
    assert [(m.noise, c) for m, c in resumed.accountant.ledger] == [(Gaussian(2.0), 2), (Gaussian(0.5), 1)]
    with pytest.raises(ValueError, match="before the first step"):
        resumed.load_privacy_state(saved, global_step=2)
    with pytest.raises(ValueError, match="2 steps.*step 3"):
        linear_private().load_privacy_state(saved, global_step=3)
    edited = {**saved, "accountant": {**saved["accountant"], "ledger": saved["accountant"]["ledger"][:0]}}
    with pytest.raises(ValueError, match="checkpoint.json: the checksum"):
        linear_private().load_privacy_state(edited, global_step=0, source="checkpoint.json")


def test_a_loaded_accountant_state_does_not_relabel_the_steps_that_follow():
    """Accountant.load_state_dict replaces the default mechanism; the optimizer's steps still record its own."""
    old = linear_private(noise=Gaussian(2.0))
    take_step(old)
    private = linear_private(noise=Gaussian(0.5))
    private.accountant.load_state_dict(old.accountant.state_dict())
    take_step(private)
    assert [(m.noise, c) for m, c in private.accountant.ledger] == [(Gaussian(2.0), 1), (Gaussian(0.5), 1)]


def test_l1_clipping_takes_a_noise_only_step_on_an_empty_poisson_batch():
    private = linear_private(geometry=L1Ball(1.0))
    weight = next(private.model.parameters())
    before = weight.detach().clone()
    for p in private.model.parameters():  # what an empty Poisson batch leaves: zero per-example gradients
        p.grad_sample = torch.zeros((0, *p.shape))
    private.optimizer.step()
    assert private.accountant.steps == 1 and not torch.equal(before, weight)
    assert torch.isfinite(weight).all()


@pytest.mark.parametrize("expected_batch_size", [0, -1.0, float("nan"), float("inf")])
def test_optimizer_rejects_a_batch_size_that_would_leave_non_finite_parameters(expected_batch_size):
    from lmodp_torch import LMODPOptimizer

    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="expected_batch_size"):
        LMODPOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.1),
            noise=Gaussian(1.0),
            clip=1.0,
            expected_batch_size=expected_batch_size,
        )


def test_infinite_epochs_and_empty_datasets_raise_value_error():
    with pytest.raises(ValueError, match="epochs"):
        linear_private(target_epsilon=1.0, target_delta=1e-5, epochs=float("inf"))
    model = torch.nn.Linear(3, 2)
    empty = DataLoader(TensorDataset(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), batch_size=2)
    with pytest.raises(ValueError, match="empty"):
        make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), empty, noise=Gaussian(1.0), clip=1.0)


def test_calibrated_noise_is_exposed_and_logged_with_its_certified_epsilon(caplog):
    from lmodp_torch.privacy import planned_steps

    with caplog.at_level("INFO", logger="lmodp_torch"):
        private = linear_private(noise=Laplace(1.0), target_epsilon=3.0, target_delta=1e-5, epochs=2, method="rdp")
    assert private.noise is private.optimizer.noise and private.noise != Laplace(1.0)
    steps = planned_steps(2, 0.25)
    assert steps == 2 * len(private.data_loader) == 8  # the steps two passes over the Poisson loader take
    certified = compute_epsilon(private.noise, L2Ball(1.0), Poisson(0.25), steps, 1e-5, "rdp")
    [line] = [r.getMessage() for r in caplog.records if r.name == "lmodp_torch"]
    assert line.startswith("lmodp noise: laplace Laplace(") and "std/clip" in line
    assert f"certified epsilon {certified:.4g} at delta 1e-05 for 8 planned steps" in line


def test_opacus_noise_scheduler_and_accountant_hook_see_sigma_or_a_clear_error():
    from opacus.accountants import RDPAccountant
    from opacus.schedulers import ExponentialNoise

    gaussian = linear_private(noise=Gaussian(1.0))
    ExponentialNoise(gaussian.optimizer, gamma=0.5).step()
    take_step(gaussian)
    assert gaussian.noise == Gaussian(0.5) and gaussian.accountant.ledger[-1][0].noise == Gaussian(0.5)
    opacus_accountant = RDPAccountant()
    hook = opacus_accountant.get_optimizer_hook_fn(sample_rate=0.25)
    hook(gaussian.optimizer)
    assert opacus_accountant.history == [(0.5, 0.25, 1)]
    lmo = linear_private(noise=LMO(1, 0, 0, 2, 1, 1, 0, 1))
    for opacus_call in (lambda: ExponentialNoise(lmo.optimizer, gamma=0.5), lambda: hook(lmo.optimizer)):
        with pytest.raises(ValueError, match="lmodp accountant"):
            opacus_call()
