"""NLNL: the complementary-label sampler, seeding, NaN safety and resumable generator state."""

from __future__ import annotations

import io
import math

import pytest
import torch

from dal_backdoor.errors import CheckpointError
from dal_backdoor.losses import create_loss, inverse_frequency_weights
from dal_backdoor.losses import functional as F


def test_complementary_labels_never_equal_target_and_cover_the_rest() -> None:
    targets = torch.arange(4).repeat(500)  # K = 4, 2000 samples
    labels = F.sample_complementary_labels(targets, 4, 6, torch.Generator().manual_seed(0))
    assert labels.shape == (2000, 6)
    assert labels.dtype == torch.int64
    assert not torch.any(labels == targets[:, None])
    assert labels.min() >= 0
    assert labels.max() <= 3
    for y in range(4):
        drawn = labels[targets == y].flatten()
        counts = torch.bincount(drawn, minlength=4)
        assert counts[y] == 0
        others = counts[torch.arange(4) != y].double()
        # 3000 uniform draws over 3 labels: each about 1000 (sd ~26)
        assert torch.all((others - 1000).abs() < 150)


def test_sampler_is_determined_by_the_generator_seed() -> None:
    targets = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(5))

    def draw(seed: int) -> torch.Tensor:
        return F.sample_complementary_labels(targets, 10, 3, torch.Generator().manual_seed(seed))

    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))


def test_nlnl_never_nan_when_the_drawn_class_has_all_the_mass() -> None:
    logits = torch.tensor([[-1e4, 1e4], [1e4, -1e4]], requires_grad=True)
    targets = torch.tensor([0, 1])  # the complementary label holds p = 1
    loss = F.nlnl(logits, targets, 4, torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.item() == pytest.approx(-4 * math.log(1e-5), rel=1e-6)
    assert torch.all(torch.isfinite(logits.grad))


def test_module_is_seeded_and_resumes_the_generator_from_state_dict() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 10, generator=gen)
    targets = torch.randint(0, 10, (32,), generator=gen)
    a = create_loss("nlnl", 10, seed=7, num_negatives=2)
    b = create_loss("nlnl", 10, seed=7, num_negatives=2)
    c = create_loss("nlnl", 10, seed=8, num_negatives=2)
    assert a(logits, targets).item() == b(logits, targets).item()
    assert a(logits, targets).item() != c(logits, targets).item()

    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)  # after two draws
    expected_next = a(logits, targets).item()
    buffer.seek(0)
    restored = create_loss("nlnl", 10, seed=7, num_negatives=2)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored(logits, targets).item() == expected_next
    fresh = create_loss("nlnl", 10, seed=7, num_negatives=2)
    assert fresh(logits, targets).item() != expected_next  # the state really mattered


def test_generator_state_for_another_device_is_rejected() -> None:
    loss = create_loss("nlnl", 3)
    state = loss.state_dict()
    state["_extra_state"] = {"epoch": 1, "generator_device": "cuda",
                             "generator_state": torch.zeros(16, dtype=torch.uint8),
                             "class_weights": None}
    loss.load_state_dict(state)
    with pytest.raises(CheckpointError, match="generator state is for device cuda"):
        loss(torch.zeros(2, 3), torch.tensor([0, 1]))


def test_class_weights_scale_per_sample_and_survive_state_dict() -> None:
    assert inverse_frequency_weights(torch.tensor([0, 0, 0, 1]), 3).tolist() == [1.0, 3.0, 1.0]
    logits = torch.log(torch.tensor([[0.8, 0.2], [0.4, 0.6]]))
    targets = torch.tensor([0, 1])
    loss = create_loss("nlnl", 2, num_negatives=1)
    plain = loss(logits, targets).item()
    loss.set_class_weights(torch.tensor([1.0, 3.0]))
    weighted = loss(logits, targets).item()
    assert plain == pytest.approx((-math.log(0.8) - math.log(0.6)) / 2, rel=1e-6)
    assert weighted == pytest.approx((-math.log(0.8) - 3 * math.log(0.6)) / 2, rel=1e-6)
    restored = create_loss("nlnl", 2, num_negatives=1)
    buffer = io.BytesIO()
    torch.save(loss.state_dict(), buffer)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored(logits, targets).item() == pytest.approx(weighted, rel=1e-6)
    with pytest.raises(ValueError, match=r"class weights must have shape \(2,\)"):
        loss.set_class_weights(torch.ones(3))
