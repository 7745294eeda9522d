"""MiniLM-L6 on SST-2 with lmodp_torch: Gaussian vs optimize_noise's pick vs the paper's LMO shape (not in CI).

For each epsilon (delta = 1/(2n), n = training sentences) every noise is calibrated *soundly* for the planned
run (``--epochs`` of Poisson batches with expected size ``--batch-size``):

* ``gaussian``  — Gaussian(1) rescaled by ``lmodp_core.calibrate`` (PLD where available: method "auto");
* ``optimized`` — ``lmodp_core.search.optimize_noise``'s choice (skipped, with a note, if the search is absent);
* ``lmo``       — the paper's LMO parameter set "3" (``lmodp_core.auditing.published_noise("3")``), rescaled by
  ``calibrate`` (the paper's own accounting is not used: docs/theory.md §2).

Then each noise trains for ``--max-steps`` private steps (``make_private``, hooks mode, word embeddings frozen)
and is evaluated on the first ``--eval-examples`` dev sentences. Separately, on one fixed batch, the wall time
of a plain Opacus Gaussian step is compared with our step for each noise (median of ``--repeats``).

With 2 shared CPU cores run a smoke version, e.g.
    .venv/bin/python benchmarks/finetune_sst2.py --max-steps 3 --eval-examples 200 --repeats 3
    .venv/bin/python benchmarks/finetune_sst2.py --overhead-only --epsilons 3 --repeats 5 \
        --output benchmarks/results/finetune_sst2_overhead.json
A full run (``--max-steps 0`` = the whole plan) needs hours on a CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from opacus import PrivacyEngine
from opacus.optimizers.optimizer import _generate_noise
from torch.utils.data import DataLoader

from lmodp_core import Accountant, L2Ball, Poisson
from lmodp_core.auditing import published_noise
from lmodp_torch import make_private, sample_noise
from lmodp_torch.finetune import PAPER_LMO_LABEL, accuracy, encode, find_data, load_model, noise_shape, read_split
from lmodp_torch.privacy import choose_noise

RESULTS = Path(__file__).resolve().parent / "results" / "finetune_sst2.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 8.0])
    parser.add_argument(
        "--noises",
        nargs="+",
        default=["gaussian", "optimized", "lmo"],
        choices=["gaussian", "optimized", "lmo", "laplace"],
    )
    parser.add_argument("--epochs", type=float, default=3.0, help="planned epochs the noise is calibrated for")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--max-steps", type=int, default=3, help="private steps per run (0 = the whole plan)")
    parser.add_argument("--eval-examples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per configuration (overhead)")
    parser.add_argument("--method", choices=("auto", "pld", "rdp"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--overhead-only",
        action="store_true",
        help="only the step-time comparison (first epsilon), no training or evaluation",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def calibrated(names, epsilon, delta, sample_rate, steps, method):
    """name -> (noise or None, seconds, note)."""
    out = {}
    for name in names:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                noise = choose_noise(
                    noise_shape(name),
                    L2Ball(1.0),
                    sample_rate,
                    steps,
                    target_epsilon=epsilon,
                    target_delta=delta,
                    method=method,
                )
            note = "; ".join(str(w.message) for w in caught)
        except Exception as error:  # a noise the accountant cannot calibrate is reported, not hidden
            noise, note = None, f"{type(error).__name__}: {error}"
        out[name] = (noise, time.perf_counter() - start, note)
    return out


def step_seconds(model, optimizer, batch) -> float:
    start = time.perf_counter()
    optimizer.zero_grad()
    model(**batch).loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def noise_seconds(noise, shapes, repeats, seed) -> float:
    """Fastest of ``repeats`` draws of the step's noise for every trainable tensor (``None``: Opacus's sampler)."""
    generator = torch.Generator().manual_seed(seed)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for shape in shapes:
            reference = torch.empty(shape)
            if noise is None:
                _generate_noise(std=1.0, reference=reference, generator=generator).add_(reference)
            else:
                sample_noise(noise, shape, generator=generator).add_(reference)
        best = min(best, time.perf_counter() - start)
    return best


def overhead(pristine, train, noises, args) -> dict:
    """Step time on one fixed batch: plain Opacus Gaussian vs our step with each noise (min and median of
    ``repeats``), and the time of the noise draw alone (the only part of the step that differs)."""
    batch = torch.utils.data.default_collate(train[: args.batch_size])
    loader = DataLoader(train, batch_size=args.batch_size)
    shapes = [p.shape for p in pristine.parameters() if p.requires_grad]
    steps, draws = {}, {}
    gaussian_sigma = noises["gaussian"].sigma
    for name, noise in [("opacus_gaussian", None), *((f"lmodp_{n}", z) for n, z in noises.items() if z)]:
        model = copy.deepcopy(pristine).train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
        generator = torch.Generator().manual_seed(args.seed)
        if noise is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, optimizer, _ = PrivacyEngine(accountant="rdp").make_private(
                    module=model,
                    optimizer=optimizer,
                    data_loader=loader,
                    noise_multiplier=gaussian_sigma,
                    max_grad_norm=args.clip,
                    noise_generator=generator,
                )
        else:
            model, optimizer, *_ = make_private(
                model, optimizer, loader, noise=noise, clip=args.clip, noise_generator=generator, method="rdp"
            )
        step_seconds(model, optimizer, batch)  # warm-up
        steps[name] = [step_seconds(model, optimizer, batch) for _ in range(args.repeats)]
        draws[name] = noise_seconds(noise, shapes, args.repeats, args.seed)
        print(
            f"  {name}: step min {min(steps[name]):.3f} s, median {statistics.median(steps[name]):.3f} s; "
            f"noise draw {draws[name]:.3f} s",
            file=sys.stderr,
        )
    base = min(steps["opacus_gaussian"])
    return {
        "step_seconds": steps,
        "noise_draw_seconds": draws,
        "ratio_to_opacus_min_step": {k: min(v) / base for k, v in steps.items()},
        "ratio_to_opacus_by_noise_draw": {k: (base + draws[k] - draws["opacus_gaussian"]) / base for k in draws},
    }


def train_and_evaluate(pristine, train, dev, noise, sample_rate, delta, args) -> dict:
    model = copy.deepcopy(pristine).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
    private = make_private(
        model,
        optimizer,
        DataLoader(train, batch_size=args.batch_size),
        noise=noise,
        clip=args.clip,
        sample_rate=sample_rate,
        method=args.method,
        noise_generator=torch.Generator().manual_seed(args.seed),
        sampling_generator=torch.Generator().manual_seed(args.seed + 1),
    )
    seconds, sizes = [], []
    planned = args.planned_steps
    limit = args.max_steps or planned
    while len(seconds) < limit:
        for batch in private.data_loader:
            sizes.append(len(batch["labels"]))
            seconds.append(step_seconds(private.model, private.optimizer, batch))
            if len(seconds) >= limit:
                break
    result = {
        "steps": len(seconds),
        "median_step_seconds": statistics.median(seconds),
        "mean_batch_size": statistics.mean(sizes),
        "certified_epsilon_steps_taken": private.accountant.get_epsilon(delta),
    }
    result["dev_accuracy"] = accuracy(model, dev)
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    data = find_data(args.data)
    if data is None:
        print("SST-2 not found: pass --data or set LMODP_SST2_DIR", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    tokenizer, pristine = load_model(lora=False)
    train = encode(tokenizer, *read_split(data, "train"), args.max_length)
    dev = encode(tokenizer, *read_split(data, "dev"), args.max_length)[: args.eval_examples]
    delta = 1.0 / (2 * len(train))
    sample_rate = args.batch_size / len(train)
    args.planned_steps = math.ceil(args.epochs * math.floor(1.0 / sample_rate))
    report = {
        "setting": {
            "n_train": len(train),
            "n_dev_evaluated": len(dev),
            "delta": delta,
            "sample_rate": sample_rate,
            "planned_steps": args.planned_steps,
            "steps_run": args.max_steps or args.planned_steps,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "clip": args.clip,
            "learning_rate": args.learning_rate,
            "method": args.method,
            "paper_lmo_shape": published_noise(PAPER_LMO_LABEL).to_paper(),
            "trainable_parameters": sum(p.numel() for p in pristine.parameters() if p.requires_grad),
            "torch_threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(),
        },
        "runs": [],
    }
    overhead_done = False
    for epsilon in args.epsilons:
        print(f"epsilon {epsilon}: calibrating {args.noises}", file=sys.stderr)
        noises = calibrated(args.noises, epsilon, delta, sample_rate, args.planned_steps, args.method)
        gaussian = noises.get("gaussian", (None,))[0]
        for name, (noise, seconds, note) in noises.items():
            if args.overhead_only:
                break
            run = {
                "epsilon_target": epsilon,
                "noise_name": name,
                "calibration_seconds": seconds,
                "note": note,
                "noise": None if noise is None else noise.to_dict(),
            }
            if noise is not None:
                run["std_over_clip"] = noise.std
                if gaussian is not None:
                    run["std_ratio_to_gaussian"] = noise.std / gaussian.std
                ledger = Accountant(noise, L2Ball(1.0), Poisson(sample_rate), method=args.method)
                run["certified_epsilon_planned"] = ledger.step(args.planned_steps).get_epsilon(delta)
                print(f"  {name}: {noise!r}; training {args.max_steps or args.planned_steps} steps", file=sys.stderr)
                run.update(train_and_evaluate(pristine, train, dev, noise, sample_rate, delta, args))
            report["runs"].append(run)
        if not overhead_done and gaussian is not None:
            report["overhead"] = overhead(pristine, train, {k: v[0] for k, v in noises.items()}, args)
            report["overhead"]["epsilon_target"] = epsilon
            overhead_done = True
            if args.overhead_only:
                report["overhead"]["noises"] = {k: v[0].to_dict() for k, v in noises.items() if v[0] is not None}
                report.pop("runs")
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(json.dumps(report, indent=2))
                break
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
