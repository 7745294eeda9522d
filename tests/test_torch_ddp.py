"""DDP with 2 CPU processes (gloo): clip per rank, one all-reduce, noise added once (rank 0)."""

import socket

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lmodp_core import LMO, Laplace  # noqa: E402
from lmodp_torch import make_private  # noqa: E402

N, FEATURES, CLASSES, BATCH, STEPS, CLIP, LR = 16, 40, 3, 8, 3, 0.5, 0.5
WORLD = 2
NOISE = LMO(0.5, 0.5, 0.0, 2.0, 1.0, 1.0, 0.0, 1.0, scale=0.8)
WIDE = 200  # the zero-gradient model for the variance check: WIDE * WIDE noise coordinates


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, FEATURES, generator=g), torch.randint(0, CLASSES, (N,), generator=g)


def batches():
    """Fixed batches per step (the same examples whether one or two processes see them)."""
    return [torch.arange(step, step + BATCH) % N for step in range(STEPS)]


def model_and_optimizer(width_in, width_out):
    torch.manual_seed(3)
    model = torch.nn.Linear(width_in, width_out)
    return model, torch.optim.SGD(model.parameters(), lr=LR)


def train(model, optimizer, rank, world):
    x, y = data()
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH)
    private = make_private(
        model, optimizer, loader, noise=NOISE, clip=CLIP, noise_generator=torch.Generator().manual_seed(11)
    )
    for index in batches():
        index = index.chunk(world)[rank]
        private.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(private.model(x[index]), y[index]).backward()
        private.optimizer.step()
    return private


def noise_only_step(model, optimizer, rank, world):
    """One step whose clipped sum is 0: the update is -LR * CLIP * Z / (q N) for the noise Z actually added."""
    x = torch.zeros(N, WIDE)
    loader = DataLoader(TensorDataset(x, torch.zeros(N)), batch_size=BATCH)
    private = make_private(
        model,
        optimizer,
        loader,
        noise=Laplace(1.0),
        clip=CLIP,
        noise_generator=torch.Generator().manual_seed(rank + 100),
    )  # different stream per rank
    private.optimizer.zero_grad()
    (0.0 * private.model(x[rank::world]).sum()).backward()
    private.optimizer.step()


def _worker(rank, port, out_dir):
    from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        model, optimizer = model_and_optimizer(FEATURES, CLASSES)
        private = train(DPDDP(model), optimizer, rank, WORLD)
        wide, wide_optimizer = model_and_optimizer(WIDE, WIDE)
        before = wide.weight.detach().clone()
        noise_only_step(DPDDP(wide), wide_optimizer, rank, WORLD)
        update = wide.weight.detach() - before
        torch.save(
            {"params": [p.detach() for p in model.parameters()], "steps": private.accountant.steps, "update": update},
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_and_add_noise_once(tmp_path):
    torch.set_num_threads(1)
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    model, optimizer = model_and_optimizer(FEATURES, CLASSES)
    train(model, optimizer, rank=0, world=1)
    for rank in ranks:
        assert rank["steps"] == STEPS
        for ours, single in zip(rank["params"], model.parameters()):
            torch.testing.assert_close(ours, single.detach(), rtol=1e-5, atol=1e-6)

    torch.testing.assert_close(ranks[0]["update"], ranks[1]["update"])  # the same update on every rank
    one_draw = (LR * CLIP / BATCH) ** 2 * Laplace(1.0).variance  # q N = BATCH
    measured = ranks[0]["update"].var().item()
    assert measured == pytest.approx(one_draw, rel=0.05)  # two draws would give twice this
