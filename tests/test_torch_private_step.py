"""make_private on a tiny random BERT: one step equals clipped sum + clip * noise, exactly."""
import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("opacus")

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lmodp_core import LMO, Gaussian, L1Ball, L2Ball, Laplace  # noqa: E402
from lmodp_torch import make_private, sample_noise  # noqa: E402

torch.set_num_threads(1)
N, LENGTH, VOCAB = 24, 8, 50


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=16, num_labels=2,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.BertForSequenceClassification(config)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model.train()


def dataset(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (N, LENGTH), generator=g)
    return TensorDataset(ids, torch.randint(0, 2, (N,), generator=g))


def loss_of(model, ids, labels, reduction="mean"):
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    logits = model(input_ids=ids, position_ids=positions, token_type_ids=torch.zeros_like(ids)).logits
    return torch.nn.functional.cross_entropy(logits, labels, reduction=reduction)


def manual_update(model, ids, labels, *, noise, clip, q, norm, seed):
    """Per-example gradients by a loop, clipped, summed, plus clip * Z (same generator), / (q N)."""
    params = [p for p in model.parameters() if p.requires_grad]
    per_example = []
    for i in range(len(ids)):
        grads = torch.autograd.grad(loss_of(model, ids[i:i + 1], labels[i:i + 1]), params)
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


@pytest.mark.parametrize("noise, geometry", [
    (LMO(0.4, 0.3, 0.3, 2.0, 1.0, 0.5, 1.0, 2.0, scale=0.7), L2Ball(0.5)),
    (Laplace(0.9), L1Ball(0.3)),
])
def test_one_step_is_clipped_sum_plus_noise(noise, geometry):
    model = tiny_bert()
    reference = tiny_bert()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    loader = DataLoader(dataset(), batch_size=6)
    private = make_private(model, optimizer, loader, noise=noise, geometry=geometry,
                           noise_generator=torch.Generator().manual_seed(7),
                           sampling_generator=torch.Generator().manual_seed(3))
    ids, labels = next(iter(private.data_loader))
    assert 0 < len(ids) < N
    before = [p.detach().clone() for p in reference.parameters() if p.requires_grad]
    expected = manual_update(reference, ids, labels, noise=noise, clip=geometry.clip, q=6 / N,
                             norm="l2" if isinstance(geometry, L2Ball) else "l1", seed=7)
    private.optimizer.zero_grad()
    loss_of(private.model, ids, labels).backward()
    private.optimizer.step()
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    for b, e, a in zip(before, expected, after):
        torch.testing.assert_close(b - a, e, rtol=1e-4, atol=1e-6)
    assert private.accountant.steps == 1
    assert private.accountant.ledger[0][0].noise == noise
    assert private.accountant.ledger[0][0].sampling.sample_rate == pytest.approx(6 / N)
