"""PrivateTrainer: ε in the logs, budget stop, ledger in checkpoints, resume equality, empty batches, LoRA."""

import json
import os
import shutil

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("opacus")

from lmodp_core import LMO, Accountant, Gaussian, L2Ball, Mechanism, Poisson  # noqa: E402
from lmodp_torch import PrivateTrainer  # noqa: E402
from lmodp_torch.hf import PRIVACY_STATE_FILE, PrivacyCallback  # noqa: E402

torch.set_num_threads(1)
N, LENGTH, VOCAB, BATCH, DELTA = 16, 6, 40, 4, 1e-5
NOISE = LMO(0.5, 0.5, 0.0, 2.0, 1.0, 1.0, 0.0, 1.0, scale=2.0)


def tiny_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        max_position_embeddings=LENGTH,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = transformers.BertForSequenceClassification(config)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def examples():
    g = torch.Generator().manual_seed(1)
    return [
        {
            "input_ids": torch.randint(0, VOCAB, (LENGTH,), generator=g),
            "position_ids": torch.arange(LENGTH),
            "token_type_ids": torch.zeros(LENGTH, dtype=torch.long),
            "labels": torch.tensor(i % 2),
            "idx": i,
        }
        for i in range(N)
    ]  # "idx": removed like Trainer does


def trainer(tmp_path, model=None, max_steps=6, batch=BATCH, **privacy):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=batch,
        max_steps=max_steps,
        logging_steps=2,
        save_steps=3,
        learning_rate=0.05,
        report_to=[],
        use_cpu=True,
        seed=0,
        max_grad_norm=0.0,
        disable_tqdm=True,
    )
    privacy = {"noise": NOISE, "clip": 1.0, "target_delta": DELTA, "method": "rdp", **privacy}
    return PrivateTrainer(model=model or tiny_bert(), args=args, train_dataset=examples(), **privacy)


def trainable(model):
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


def test_epsilon_logged_ledger_checkpointed_and_resume_equals_uninterrupted(tmp_path):
    full = trainer(tmp_path / "full")
    full.train()
    logged = [(log["step"], log["epsilon"]) for log in full.state.log_history if "loss" in log]
    assert [s for s, _ in logged] == [2, 4, 6]
    expected = [
        Accountant(NOISE, L2Ball(1.0), Poisson(BATCH / N), method="rdp").step(s).get_epsilon(DELTA) for s, _ in logged
    ]
    assert [e for _, e in logged] == pytest.approx(expected, rel=1e-12)
    with open(tmp_path / "full" / "checkpoint-3" / PRIVACY_STATE_FILE) as handle:
        assert json.load(handle)["global_step"] == 3

    resumed = trainer(tmp_path / "full")  # a fresh process would build the same trainer
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-3"))
    assert resumed.accountant.steps == full.accountant.steps == 6
    assert resumed.get_epsilon() == full.get_epsilon()
    for a, b in zip(trainable(resumed.model), trainable(full.model)):
        torch.testing.assert_close(a, b)  # same noise and batches as uninterrupted: nothing replayed


def test_checkpoint_without_ledger_is_refused(tmp_path):
    first = trainer(tmp_path, max_steps=3)
    first.train()
    os.remove(tmp_path / "checkpoint-3" / PRIVACY_STATE_FILE)
    with pytest.raises(ValueError, match="ledger"):
        trainer(tmp_path).train(resume_from_checkpoint=True)


def test_stops_before_the_budget_would_be_exceeded(tmp_path):
    ledger = Accountant(Gaussian(0.6), L2Ball(1.0), Poisson(BATCH / N), method="rdp")
    budget = ledger.step(3).get_epsilon(DELTA) * (1 + 1e-9)
    run = trainer(tmp_path, noise=Gaussian(0.6), target_epsilon=budget)
    with pytest.warns(UserWarning, match="exceed"):
        run.train()
    assert run.state.global_step == run.accountant.steps == 3
    assert run.get_epsilon() <= budget < ledger.step(1).get_epsilon(DELTA)


def test_empty_poisson_batches_still_take_a_noisy_step(tmp_path):
    run = trainer(tmp_path, max_steps=4, sample_rate=0.02)  # P(empty batch) = 0.98^16 = 0.72
    before = trainable(run.model)
    run.train()
    assert run.accountant.steps == 4
    assert all(not torch.equal(a, b) for a, b in zip(before, trainable(run.model)))


def test_lora_model_trains_and_only_adapters_change(tmp_path):
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(tiny_bert(), peft.LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query"]))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    run = trainer(tmp_path, model=model, max_steps=2)
    run.train()
    assert run.accountant.steps == 2
    assert all(torch.equal(dict(model.named_parameters())[n], v) for n, v in frozen.items())


def test_bad_trainer_input_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="grad_sample_mode"):
        trainer(tmp_path, grad_sample_mode="ghost")
    with pytest.raises(ValueError, match="noise"):
        trainer(tmp_path, noise=None)
    with pytest.raises(ValueError, match="target_delta"):
        trainer(tmp_path, target_delta=2.0)
    with pytest.raises(ValueError, match="target_epsilon"):
        trainer(tmp_path, target_epsilon=-1.0)


def test_train_dataset_without_length_raises_value_error(tmp_path):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(examples())

    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to=[], use_cpu=True)
    with pytest.raises(ValueError, match="train_dataset with a length"):
        PrivateTrainer(model=tiny_bert(), args=args, train_dataset=Stream(), noise=NOISE, clip=1.0, target_delta=DELTA)


@pytest.fixture(scope="module")
def six_steps(tmp_path_factory):
    """A run of 6 steps with Gaussian(2.0) at q = 0.25, checkpointed at steps 3 and 6."""
    folder = tmp_path_factory.mktemp("six_steps")
    trainer(folder, noise=Gaussian(2.0)).train()
    return folder


def copy_run(six_steps, tmp_path):
    shutil.copytree(six_steps, tmp_path, dirs_exist_ok=True)
    return tmp_path / "checkpoint-6"


@pytest.mark.parametrize(
    "changed, mechanism",
    [
        (dict(noise=Gaussian(0.5)), Mechanism(Gaussian(0.5), L2Ball(1.0), Poisson(BATCH / N))),  # issue: 1.85 vs 14.2
        (dict(noise=Gaussian(2.0), batch=12), Mechanism(Gaussian(2.0), L2Ball(1.0), Poisson(12 / N))),  # 1.85 vs 3.53
    ],
    ids=["other-sigma", "larger-batch"],
)
def test_resume_with_other_noise_or_rate_appends_a_ledger_entry(six_steps, tmp_path, changed, mechanism):
    checkpoint = copy_run(six_steps, tmp_path)
    resumed = trainer(tmp_path, max_steps=9, **changed)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    stored = Mechanism(Gaussian(2.0), L2Ball(1.0), Poisson(BATCH / N))
    assert resumed.accountant.ledger == ((stored, 6), (mechanism, 3))  # past steps keep their own mechanism
    truth = Accountant(method="rdp").step(6, noise=stored.noise, geometry=stored.geometry, sampling=stored.sampling)
    truth.step(3, noise=mechanism.noise, geometry=mechanism.geometry, sampling=mechanism.sampling)
    assert resumed.get_epsilon() == pytest.approx(truth.get_epsilon(DELTA), rel=1e-12)
    relabelled = Accountant(stored.noise, L2Ball(1.0), stored.sampling, method="rdp").step(9).get_epsilon(DELTA)
    assert resumed.get_epsilon() > relabelled  # what the ledger reported when it trusted the stored mechanism


def test_stale_ledger_is_refused(six_steps, tmp_path):
    """checkpoint-9 holding the ledger of step 6 (issue: reported 1.85 where 9 steps spent 2.18)."""
    checkpoint = copy_run(six_steps, tmp_path)
    trainer(tmp_path, max_steps=9, noise=Gaussian(2.0)).train(resume_from_checkpoint=str(checkpoint))
    shutil.copy(checkpoint / PRIVACY_STATE_FILE, tmp_path / "checkpoint-9" / PRIVACY_STATE_FILE)
    with pytest.raises(ValueError, match=r"checkpoint-9.*6 steps.*checkpoint is at step 9"):
        trainer(tmp_path, max_steps=12, noise=Gaussian(2.0)).train(resume_from_checkpoint=True)


def _edit(key, value):
    def edit(state):
        state[key] = value
        return json.dumps(state)

    return edit


def _corrupt_generator(state):
    state["noise_generator"] = "AAAA"
    payload = {k: v for k, v in state.items() if k != "checksum"}
    from lmodp_torch.ledger import _checksum

    state["checksum"] = _checksum(payload)  # a consistent file whose generator state torch refuses
    return json.dumps(state)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda state: json.dumps(state)[:-20], "cannot read"),
        (lambda state: json.dumps({k: v for k, v in state.items() if k != "accountant"}), "keys"),
        (_edit("global_step", 5), "checksum"),
        (_edit("format_version", 1), "version"),
        (_corrupt_generator, "generator state"),
        (lambda state: "null", "not an lmodp privacy state"),
        (lambda state: json.dumps({k: state[k] for k in ("global_step", "accountant", "noise_generator")}), "0.2.0"),
    ],
    ids=["truncated", "missing-key", "edited", "old-version", "bad-rng-state", "null", "unversioned"],
)
def test_malformed_ledger_raises_value_error_naming_the_file(six_steps, tmp_path, corrupt, message):
    checkpoint = copy_run(six_steps, tmp_path)
    path = checkpoint / PRIVACY_STATE_FILE
    path.write_text(corrupt(json.loads(path.read_text())))
    resumed = trainer(tmp_path, max_steps=9, noise=Gaussian(2.0))
    with pytest.raises(ValueError, match=message) as raised:
        resumed.train(resume_from_checkpoint=str(checkpoint))
    assert str(path) in str(raised.value)
    assert resumed.accountant.steps == 0  # nothing restored from a file that failed a check


def test_noise_is_logged_when_training_starts(tmp_path, caplog):
    run = trainer(tmp_path, max_steps=2, noise=Gaussian(1.5))
    with caplog.at_level("INFO", logger="lmodp_torch"):
        run.train()
    certified = Accountant(Gaussian(1.5), L2Ball(1.0), Poisson(BATCH / N), method="rdp").step(2).get_epsilon(DELTA)
    [line] = [r.getMessage() for r in caplog.records if r.name == "lmodp_torch"]
    assert line.startswith("lmodp noise: gaussian Gaussian(sigma=1.5)") and "std/clip 1.5" in line
    assert f"certified epsilon {certified:.4g} at delta 1e-05 for 2 planned steps" in line


def test_budget_stop_replans_when_the_noise_changes_mid_run(tmp_path):
    """A callback lowers sigma after step 2 (as an Opacus noise scheduler would): the ledger records it and the
    budget stop plans the remaining steps with the new noise instead of stopping at the originally planned 6."""
    sampling = Poisson(BATCH / N)
    budget = Accountant(Gaussian(0.6), L2Ball(1.0), sampling, method="rdp").step(6).get_epsilon(DELTA) * (1 + 1e-9)

    class LowerNoise(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                run.lmodp_optimizer.noise_multiplier = 0.3

    run = trainer(tmp_path, noise=Gaussian(0.6), target_epsilon=budget)
    run.add_callback(LowerNoise())
    run.remove_callback(PrivacyCallback)
    run.add_callback(PrivacyCallback(run))  # after LowerNoise, as a user's callbacks= would be
    with pytest.warns(UserWarning, match="exceed"):
        run.train()
    assert run.accountant.ledger == ((Mechanism(Gaussian(0.6), L2Ball(1.0), sampling), 2),)
    assert run.get_epsilon() <= budget and run.noise == Gaussian(0.3)


def test_a_second_train_call_records_every_step_and_never_wraps_the_private_optimizer_twice(tmp_path):
    from lmodp_torch import LMODPOptimizer

    run = trainer(tmp_path, max_steps=2, noise=Gaussian(1.0))
    run.train()
    run.args.max_steps = 4
    run.train()  # Trainer starts again from step 0: 2 + 4 steps ran
    assert run.accountant.steps == 6
    inner = run.lmodp_optimizer.original_optimizer
    assert isinstance(inner, torch.optim.AdamW) and not isinstance(inner, LMODPOptimizer)
