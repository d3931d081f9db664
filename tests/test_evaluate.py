from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from dal_backdoor.errors import ConfigError
from dal_backdoor.evaluate import BackdoorMetrics, accuracy, evaluate_backdoor, predict

NUM_CLASSES = 10
TARGET = 7
ZERO = (0.0, 0.0, 0.0)
ONE = (1.0, 1.0, 1.0)


def encode(labels: Tensor, size: int = 6) -> Tensor:
    """uint8 images (N, 3, size, size) whose every pixel is 20 * label + 5."""
    values = (20 * labels + 5).to(torch.uint8)
    return values.view(-1, 1, 1, 1).expand(-1, 3, size, size).contiguous()


class Patch:
    """A 2x2 white patch in the bottom-right corner (a hand-built trigger)."""

    def __init__(self) -> None:
        self.calls = 0

    def apply_uint8(self, images: Tensor) -> Tensor:
        self.calls += 1
        out = images.clone()
        out[:, :, -2:, -2:] = 255
        return out


Rule = Callable[[Tensor, Tensor], Tensor]  # (decoded label, trigger present) -> prediction


class Decoder(nn.Module):
    """Reads the label back from the pixels and the trigger from the corner, then applies a rule."""

    def __init__(self, rule: Rule, mean: tuple[float, ...] = ZERO,
                 std: tuple[float, ...] = ONE) -> None:
        super().__init__()
        self.rule = rule
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.gain = nn.Parameter(torch.ones(()))
        self.seen = 0
        self.modes: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen += x.shape[0]
        self.modes.append(self.training)
        pixels = (x * self.std + self.mean) * 255
        label = ((pixels[:, 0, 0, 0] - 5) / 20).round().long()
        triggered = pixels[:, 1, -1, -1] > 254
        pred = self.rule(label, triggered)
        return nn.functional.one_hot(pred, NUM_CLASSES).float() * self.gain


def identity(label: Tensor, _triggered: Tensor) -> Tensor:
    return label


def always_target(label: Tensor, _triggered: Tensor) -> Tensor:
    return torch.full_like(label, TARGET)


def backdoored(label: Tensor, triggered: Tensor) -> Tensor:
    return torch.where(triggered, torch.full_like(label, TARGET), label)


def mixed(label: Tensor, triggered: Tensor) -> Tensor:
    """Clean: class 3 is mistaken for the target. Triggered: even classes flip to the target,
    class 5 becomes 0, the rest (class 3 included) keep their true label."""
    target = torch.full_like(label, TARGET)
    clean = torch.where(label == 3, target, label)
    attacked = torch.where(label % 2 == 0, target, label)
    attacked = torch.where(label == 5, torch.zeros_like(label), attacked)
    return torch.where(triggered, attacked, clean)


def balanced_labels(per_class: int = 3) -> Tensor:
    return torch.arange(NUM_CLASSES).repeat_interleave(per_class)


def mixed_labels() -> Tensor:
    """Class c appears c + 1 times: 55 images."""
    return torch.cat([torch.full((c + 1,), c) for c in range(NUM_CLASSES)])


def run(rule: Rule, labels: Tensor, trigger: Patch | None = None,
        **kwargs: object) -> BackdoorMetrics:
    return evaluate_backdoor(Decoder(rule), encode(labels), labels, trigger, TARGET,
                             mean=ZERO, std=ONE, **kwargs)


def test_predict_decodes_labels_in_batches() -> None:
    labels = mixed_labels()
    model = Decoder(identity)
    for batch_size in (1, 7, 1000):
        pred = predict(model, encode(labels), mean=ZERO, std=ONE, batch_size=batch_size)
        assert pred.dtype == torch.long
        assert pred.device.type == "cpu"
        assert torch.equal(pred, labels)


def test_predict_normalises_with_mean_and_std() -> None:
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    labels = balanced_labels()
    pred = predict(Decoder(identity, mean, std), encode(labels), mean=mean, std=std)
    assert torch.equal(pred, labels)
    # the wrong normalisation decodes wrong labels: the decoder really sees normalised input
    wrong = predict(Decoder(identity, mean, std), encode(labels), mean=ZERO, std=ONE)
    assert not torch.equal(wrong, labels)


def test_predict_uses_eval_mode_and_restores_it() -> None:
    model = Decoder(identity).train()
    predict(model, encode(balanced_labels()), mean=ZERO, std=ONE, batch_size=10)
    assert model.modes == [False, False, False]
    assert model.training
    model.eval()
    predict(model, encode(balanced_labels()), mean=ZERO, std=ONE)
    assert not model.training


def test_predict_channels_last_and_cpu_autocast() -> None:
    labels = balanced_labels()
    pred = predict(Decoder(identity), encode(labels), mean=ZERO, std=ONE, channels_last=True,
                   autocast_dtype=torch.bfloat16)
    assert torch.equal(pred, labels)


def test_predict_empty_and_bad_inputs() -> None:
    empty = torch.zeros(0, 3, 6, 6, dtype=torch.uint8)
    assert predict(Decoder(identity), empty, mean=ZERO, std=ONE).shape == (0,)
    with pytest.raises(TypeError, match="expected uint8 images"):
        predict(Decoder(identity), torch.zeros(2, 3, 6, 6), mean=ZERO, std=ONE)
    with pytest.raises(ConfigError, match=r"batch_size=0 is not in \[1, inf\)"):
        predict(Decoder(identity), empty, mean=ZERO, std=ONE, batch_size=0)
    with pytest.raises(ValueError, match="model is on cpu but device=cuda"):
        predict(Decoder(identity), empty, mean=ZERO, std=ONE, device="cuda")


def test_accuracy_counts() -> None:
    labels = mixed_labels()
    assert accuracy(Decoder(identity), encode(labels), labels, mean=ZERO, std=ONE) == (55, 55)
    # mixed: only class 3 (4 images) is wrong on clean images
    assert accuracy(Decoder(mixed), encode(labels), labels, mean=ZERO, std=ONE) == (51, 55)
    with pytest.raises(ValueError, match=r"expected 55 labels"):
        accuracy(Decoder(identity), encode(labels), labels[:-1], mean=ZERO, std=ONE)


def test_identity_model_is_not_backdoored() -> None:
    m = run(identity, balanced_labels(), Patch())
    assert (m.clean_acc, m.clean_correct, m.clean_total) == (1.0, 30, 30)
    assert (m.asr, m.asr_hits, m.asr_total) == (0.0, 0, 27)
    assert (m.asr_true, m.asr_true_hits, m.asr_true_total) == (0.0, 0, 27)
    assert (m.robust_acc, m.robust_correct, m.robust_total) == (1.0, 27, 27)
    assert m.notes == ()


def test_backdoored_model_has_full_asr() -> None:
    m = run(backdoored, balanced_labels(), Patch())
    assert (m.clean_acc, m.clean_correct, m.clean_total) == (1.0, 30, 30)
    assert (m.asr, m.asr_hits, m.asr_total) == (1.0, 27, 27)
    assert (m.asr_true, m.asr_true_hits, m.asr_true_total) == (1.0, 27, 27)
    assert (m.robust_acc, m.robust_correct, m.robust_total) == (0.0, 0, 27)


def test_always_target_model_leaves_nothing_to_attack() -> None:
    # the paper's protocol drops every image (all predicted as the target when clean):
    # asr is None (0 / 0) with a note, while asr_true sees every non-target image flip
    m = run(always_target, balanced_labels(), Patch())
    assert (m.clean_acc, m.clean_correct, m.clean_total) == (0.1, 3, 30)
    assert (m.asr, m.asr_hits, m.asr_total) == (None, 0, 0)
    assert (m.asr_true, m.asr_true_hits, m.asr_true_total) == (1.0, 27, 27)
    assert (m.robust_acc, m.robust_correct, m.robust_total) == (0.0, 0, 27)
    assert len(m.notes) == 1
    assert m.notes[0].startswith("asr: the model predicts the target class 7 for every clean")


def test_mixed_model_exact_counts() -> None:
    labels = mixed_labels()  # class c appears c + 1 times
    m = run(mixed, labels, Patch())
    # clean: all correct but class 3 (4 images)
    assert (m.clean_correct, m.clean_total) == (51, 55)
    # paper: drop clean predictions == 7 (class 3: 4, class 7: 8) -> 43 kept;
    # hits are the even classes 0, 2, 4, 6, 8: 1 + 3 + 5 + 7 + 9 = 25
    assert (m.asr_hits, m.asr_total) == (25, 43)
    # true-label variant: drop class 7 (8 images) -> 47 kept, same 25 hits (class 3 keeps 3)
    assert (m.asr_true_hits, m.asr_true_total) == (25, 47)
    # robust: triggered images still correct among labels != 7: classes 1, 3, 9 -> 2 + 4 + 10
    assert (m.robust_correct, m.robust_total) == (16, 47)
    assert m.clean_acc == pytest.approx(51 / 55)
    assert m.asr == pytest.approx(25 / 43)
    assert m.asr_true == pytest.approx(25 / 47)
    assert m.robust_acc == pytest.approx(16 / 47)


def test_one_forward_pass_per_image_set() -> None:
    labels = mixed_labels()
    model, trigger = Decoder(mixed), Patch()
    a = evaluate_backdoor(model, encode(labels), labels, trigger, TARGET, mean=ZERO, std=ONE,
                          batch_size=10)
    assert model.seen == 2 * 55  # clean once + triggered once
    assert trigger.calls == 6  # ceil(55 / 10) batches stamped
    b = run(mixed, labels, Patch(), batch_size=1000, channels_last=True)
    assert a == b


def test_inputs_are_not_modified() -> None:
    labels = balanced_labels()
    images = encode(labels)
    before = images.clone()
    run_model = Decoder(backdoored)
    evaluate_backdoor(run_model, images, labels, Patch(), TARGET, mean=ZERO, std=ONE)
    assert torch.equal(images, before)


def test_no_trigger_gives_clean_accuracy_only() -> None:
    m = run(mixed, mixed_labels(), None)
    assert (m.clean_correct, m.clean_total) == (51, 55)
    assert m.asr is None
    assert m.asr_hits is None
    assert m.asr_total is None
    assert m.asr_true is None
    assert m.robust_acc is None
    assert m.robust_total is None
    d = m.to_dict()
    assert d["clean_correct"] == 51
    assert d["asr"] is None
    assert d["notes"] == []
    assert set(d) == {
        "clean_acc", "clean_correct", "clean_total", "asr", "asr_hits", "asr_total", "asr_true",
        "asr_true_hits", "asr_true_total", "robust_acc", "robust_correct", "robust_total", "notes",
    }


def test_all_images_of_target_class() -> None:
    labels = torch.full((4,), TARGET)
    m = run(identity, labels, Patch())
    assert (m.clean_correct, m.clean_total) == (4, 4)
    assert (m.asr, m.asr_total) == (None, 0)
    assert (m.asr_true, m.asr_true_total, m.robust_acc, m.robust_total) == (None, 0, None, 0)
    assert len(m.notes) == 2


def test_empty_test_set() -> None:
    m = run(identity, torch.zeros(0, dtype=torch.long), Patch())
    assert (m.clean_acc, m.clean_correct, m.clean_total) == (None, 0, 0)
    assert m.asr is None
    assert m.asr_true is None
    assert m.robust_acc is None
    assert m.notes == ("clean_acc: the test set is empty",)


def test_bad_trigger_and_target() -> None:
    class Broken:
        def apply_uint8(self, images: Tensor) -> Tensor:
            return images.float()

    labels = balanced_labels()
    with pytest.raises(TypeError, match="trigger.apply_uint8 must return uint8 images"):
        run(identity, labels, Broken())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"target_class=-1 is not in \[0, inf\)"):
        evaluate_backdoor(Decoder(identity), encode(labels), labels, None, -1, mean=ZERO,
                          std=ONE)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_autocast_matches_cpu() -> None:  # pragma: no cover - GPU only
    labels = mixed_labels()
    ref = run(mixed, labels, Patch())
    model = Decoder(mixed).cuda()
    got = evaluate_backdoor(model, encode(labels), labels, Patch(), TARGET, mean=ZERO, std=ONE,
                            batch_size=8, autocast_dtype=torch.bfloat16, channels_last=True)
    assert got == ref
    on_device = evaluate_backdoor(model, encode(labels).cuda(), labels.cuda(), Patch(), TARGET,
                                  mean=ZERO, std=ONE, device="cuda")
    assert on_device == ref


def target_missed(label: Tensor, triggered: Tensor) -> Tensor:
    """Clean: class 7 is mistaken for class 0, the rest correct. Triggered: all -> target."""
    clean = torch.where(label == TARGET, torch.zeros_like(label), label)
    return torch.where(triggered, torch.full_like(label, TARGET), clean)


def test_clean_label_asr_also_excludes_the_target_class() -> None:
    labels = mixed_labels()  # class 7: 8 images, all predicted 0 when clean
    dirty = run(target_missed, labels, Patch())
    # paper protocol: nothing is predicted 7 when clean, so all 55 stay, all 55 hit
    assert (dirty.asr_hits, dirty.asr_total) == (55, 55)
    clean = run(target_missed, labels, Patch(), clean_label=True)
    # clean-label: the 8 target-class images leave the ASR set as well
    assert (clean.asr_hits, clean.asr_total) == (47, 47)
    assert (clean.asr_true_hits, clean.asr_true_total) == (47, 47)
    assert clean.clean_acc == dirty.clean_acc == pytest.approx(47 / 55)
    # with the mixed model (class 3 predicted 7 when clean) both drops add up: 55 - 4 - 8
    m = run(mixed, labels, Patch(), clean_label=True)
    assert (m.asr_hits, m.asr_total) == (25, 43)
