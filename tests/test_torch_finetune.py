"""``lmodp finetune`` end to end on a tiny random BERT and a few SST-2-format lines (no download)."""

import argparse

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("opacus")

from lmodp_torch import finetune  # noqa: E402

torch.set_num_threads(1)
WORDS = ["good", "bad", "movie", "great", "awful", "plot", "fun", "dull"]


@pytest.fixture
def sst2_folder(tmp_path):
    for split, count in (("train", 40), ("dev", 12)):
        lines = [f"{i % 2} {WORDS[i % 8]} {WORDS[(3 * i) % 8]} {'great' if i % 2 else 'awful'}" for i in range(count)]
        (tmp_path / f"stsa.binary.{split}").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.fixture
def tiny_minilm(tmp_path, monkeypatch):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab))
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        max_position_embeddings=16,
        num_labels=2,
    )

    def load_model(lora):
        torch.manual_seed(0)
        model = transformers.BertForSequenceClassification(config)
        model.get_input_embeddings().weight.requires_grad_(False)
        return tokenizer, model

    monkeypatch.setattr(finetune, "load_model", load_model)


def parse(*argv):
    return finetune.add_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_finetune_runs_and_prints_accuracy_and_certified_epsilon(sst2_folder, tiny_minilm, capsys):
    args = parse(
        "--data",
        str(sst2_folder),
        "--noise",
        "laplace",
        "--epsilon",
        "3",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-length",
        "8",
        "--method",
        "rdp",
        "--max-steps",
        "3",
    )
    assert finetune.run(args) == 0
    captured = capsys.readouterr()
    final = captured.out.strip().splitlines()[-1]
    assert final.startswith("summary: laplace noise Laplace(") and "std/clip" in final and "dev accuracy" in final
    assert "after 3 of 5 planned steps" in final
    certified = float(final.split("certified epsilon ")[1].split()[0])
    assert 0 < certified <= 3
    assert "stopped after 3 of 5 planned steps" in captured.err
    assert "Full backward hook" not in captured.err


def test_early_stop_warning_only_far_below_the_plan():
    assert finetune.early_stop_warning(108, 108, 8.0, 7.99) is None
    assert finetune.early_stop_warning(100, 108, 8.0, 7.8) is None
    warning = finetune.early_stop_warning(20, 108, 8.0, 3.67)
    assert "20 of 108 planned steps" in warning and "epsilon=8" in warning and "epsilon=3.67" in warning


def test_only_the_expected_new_classifier_report_is_silenced():
    table = "Key | Status | \n---+---+-\n{rows}\n\nNotes:\n- MISSING: newly initialized"
    expected = "BertForSequenceClassification LOAD REPORT from: x\n" + table.format(
        rows="classifier.bias | MISSING | \nclassifier.weight | MISSING | "
    )
    assert finetune._only_new_classifier(expected)
    unexpected = expected.replace("classifier.bias | MISSING", "bert.pooler.dense.weight | UNEXPECTED")
    assert not finetune._only_new_classifier(unexpected)
    assert not finetune._only_new_classifier("some other warning")


def test_missing_data_gives_a_clear_message(tmp_path, capsys):
    assert finetune.run(parse("--data", str(tmp_path / "nowhere"))) == 2
    assert "SST-2 not found" in capsys.readouterr().err


def test_data_folder_from_environment(sst2_folder, monkeypatch):
    monkeypatch.setenv(finetune.DATA_ENV, str(sst2_folder))
    assert finetune.find_data(None) == sst2_folder
    assert finetune.read_split(sst2_folder, "dev")[1][:3] == [0, 1, 0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--epsilon", "0"), "--epsilon"),
        (("--batch-size", "0"), "--batch-size"),
        (("--delta", "1.5"), "--delta"),
        (("--max-steps", "0"), "--max-steps"),
    ],
)
def test_bad_arguments_raise_value_error(argv, message):
    with pytest.raises(ValueError, match=message):
        finetune.run(parse(*argv))
