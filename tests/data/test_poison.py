"""Poisoning: selection, stamping, relabelling, the manifest and its verification."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from dal_backdoor.data.poison import (
    PoisonManifest,
    images_sha256,
    poison,
    poison_mask,
    select_poison_indices,
    stamp,
)
from dal_backdoor.errors import ConfigError, DataNotFoundError
from triggers import create_trigger

N, C, S, K = 60, 3, 8, 10


def data(seed: int = 0, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, C, S, S), dtype=torch.uint8, generator=gen)
    labels = torch.arange(n, dtype=torch.int64) % K  # 6 samples per class
    return images, labels


def local() -> object:
    return create_trigger("local", S, C)


def test_exact_count_relabelled_and_never_from_target() -> None:
    images, labels = data()
    out_images, out_labels, m = poison(images, labels, local(), num_poison=20, target_class=7,
                                       seed=0)
    idx = torch.tensor(m.indices)
    assert len(m.indices) == m.num_poison == 20
    assert m.num_samples == N
    assert list(m.indices) == sorted(set(m.indices))
    assert all(labels[i] != 7 for i in m.indices)
    assert m.original_labels == tuple(labels[idx].tolist())
    assert bool((out_labels[idx] == 7).all())
    untouched = torch.ones(N, dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(out_labels[untouched], labels[untouched])
    assert torch.equal(out_images[untouched], images[untouched])
    # the poisoned images are exactly the trigger's uint8 stamp of the clean ones
    assert torch.equal(out_images[idx], local().apply_uint8(images[idx]))
    assert bool((out_images[idx][:, :, 3:6, 3:6] == torch.tensor(
        [[255, 0, 255], [0, 255, 0], [255, 0, 255]], dtype=torch.uint8)).all())
    assert m.target_class == 7
    assert m.seed == 0
    assert m.trigger == local().describe()


def test_inputs_are_not_modified() -> None:
    images, labels = data()
    i0, l0 = images.clone(), labels.clone()
    out_images, out_labels, _ = poison(images, labels, local(), num_poison=10)
    assert torch.equal(images, i0)
    assert torch.equal(labels, l0)
    assert out_images.data_ptr() != images.data_ptr()
    assert out_labels.data_ptr() != labels.data_ptr()


def test_seeds_determine_the_indices() -> None:
    _, labels = data()
    a = select_poison_indices(labels, 10, 7, seed=3)
    assert torch.equal(a, select_poison_indices(labels, 10, 7, seed=3))
    assert not torch.equal(a, select_poison_indices(labels, 10, 7, seed=4))
    # the documented recipe: randperm over the eligible pool on a seeded CPU generator
    eligible = torch.nonzero(labels != 7).flatten()
    perm = torch.randperm(eligible.numel(), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, eligible[perm[:10]].sort().values)


def test_selection_is_uniform_over_the_eligible_pool() -> None:
    _, labels = data()  # 54 eligible, 6 labelled 7
    seeds, k = 1080, 9
    counts = torch.zeros(N, dtype=torch.int64)
    for seed in range(seeds):
        counts[select_poison_indices(labels, k, 7, seed)] += 1
    eligible = labels != 7
    assert int(counts[~eligible].sum()) == 0
    assert int(counts.sum()) == seeds * k
    # each eligible index: Binomial(1080, 1/6), mean 180, sd 12.2; allow about 5 sd
    assert int(counts[eligible].min()) > 120
    assert int(counts[eligible].max()) < 240
    expected = seeds * k / 54
    chi2 = float((((counts[eligible] - expected) ** 2) / expected).sum())
    assert chi2 < 110  # 53 degrees of freedom: P(chi2 > 110) < 1e-5


def test_num_poison_zero_is_an_empty_manifest() -> None:
    images, labels = data()
    out_images, out_labels, m = poison(images, labels, local(), num_poison=0)
    assert torch.equal(out_images, images)
    assert torch.equal(out_labels, labels)
    assert out_images.data_ptr() != images.data_ptr()
    assert m.indices == ()
    assert m.original_labels == ()
    assert m.num_poison == 0
    assert m.sha256 == hashlib.sha256(b"uint8 0x3x8x8\n").hexdigest()
    assert PoisonManifest.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert not bool(poison_mask(N, m).any())


def test_whole_eligible_pool() -> None:
    images, labels = data()
    _, out_labels, m = poison(images, labels, local(), num_poison=54)
    assert bool((out_labels == 7).all())
    assert len(m.indices) == 54


def test_sha256_definition() -> None:
    images, labels = data()
    out_images, _, m = poison(images, labels, local(), num_poison=5, seed=1)
    rows = out_images[list(m.indices)]
    expected = hashlib.sha256(b"uint8 5x3x8x8\n" + rows.numpy().tobytes()).hexdigest()
    assert m.sha256 == expected == images_sha256(rows)


@pytest.mark.parametrize("trigger", ["local", "global"])
def test_manifest_json_round_trip_recreates_the_poisoned_set(trigger: str,
                                                             tmp_path: Path) -> None:
    images, labels = data()
    trig = create_trigger(trigger, S, C, **({"border": 1} if trigger == "global" else {}))
    out_images, out_labels, m = poison(images, labels, trig, num_poison=12, target_class=2,
                                       seed=5)
    assert PoisonManifest.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    m.save(tmp_path / "m" / "manifest.json")
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["manifest.json"]
    loaded = PoisonManifest.load(tmp_path / "m" / "manifest.json")
    assert loaded == m
    assert loaded.make_trigger() == trig
    again_images, again_labels = loaded.apply(images, labels)
    assert torch.equal(again_images, out_images)
    assert torch.equal(again_labels, out_labels)
    mask = poison_mask(N, loaded)
    assert mask.dtype == torch.bool
    assert int(mask.sum()) == 12
    assert torch.nonzero(mask).flatten().tolist() == list(m.indices)


def test_apply_detects_different_data() -> None:
    images, labels = data()
    _, _, m = poison(images, labels, local(), num_poison=8)
    other, _ = data(seed=1)
    with pytest.raises(ConfigError, match=r"poisoned images do not match the manifest: sha256 "
                                          r"[0-9a-f]{12}\.\.\. != [0-9a-f]{12}\.\.\."):
        m.apply(other, labels)
    # a change in one pixel of one poisoned image is enough
    tampered = images.clone()
    tampered[m.indices[0], 0, 0, 0] ^= 1
    with pytest.raises(ConfigError, match="do not match the manifest"):
        m.apply(tampered, labels)
    shifted = labels.clone()
    shifted[m.indices[1]] = (labels[m.indices[1]] + 1) % K
    with pytest.raises(ConfigError) as info:
        m.apply(images, shifted)
    assert str(info.value) == (f"labels do not match the poison manifest: sample "
                               f"{m.indices[1]} has label {int(shifted[m.indices[1]])}, "
                               f"manifest says {int(labels[m.indices[1]])}")
    with pytest.raises(ConfigError, match="poison manifest is for 60 samples, got 59"):
        m.apply(images[:59], labels[:59])


def test_stamp_is_the_whole_batch_uint8() -> None:
    images, _ = data()
    trig = create_trigger("global", S, C, border=1)
    out = stamp(images, trig)
    assert out.dtype == torch.uint8
    assert torch.equal(out, trig.apply_uint8(images))
    with pytest.raises(ConfigError, match="stamp needs uint8 images, got torch.float32"):
        stamp(images.float(), trig)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_poison": 55}, "num_poison=55 is not in [0, 54]: 54 of 60 samples are eligible "
                             "(label != target class 7)"),
        ({"num_poison": -1}, "num_poison=-1 is not in [0, 54]: 54 of 60 samples are eligible"),
        ({"target_class": 10}, "target_class=10 is not in [0, 9] (10 classes)"),
        ({"target_class": -1}, "target_class=-1 is not in [0, 9] (10 classes)"),
        ({"target_class": 3, "num_classes": 3}, "target_class=3 is not in [0, 2] (3 classes)"),
        ({"seed": -2, "num_poison": 5}, "seed=-2 is not in [0, 1.84467e+19]"),
    ],
)
def test_errors(kwargs: dict, message: str) -> None:
    images, labels = data()
    with pytest.raises(ConfigError) as info:
        poison(images, labels, local(), **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_trigger_and_tensor_mismatches() -> None:
    images, labels = data()
    with pytest.raises(ConfigError) as info:
        poison(images, labels, create_trigger("local", 32, 3))
    assert str(info.value) == ("images of shape (60, 3, 8, 8) do not match the local trigger's "
                               "shape (B, 3, 32, 32)")
    with pytest.raises(ConfigError, match=r"uint8 images of shape \(N, C, H, W\), got "
                                          r"torch.float32 \(60, 3, 8, 8\)"):
        poison(images.float(), labels, local())
    with pytest.raises(ConfigError, match=r"int64 labels of shape \(60,\), got torch.int32"):
        poison(images, labels.int(), local())


def test_poison_mask_checks_the_size() -> None:
    images, labels = data()
    _, _, m = poison(images, labels, local(), num_poison=3)
    with pytest.raises(ConfigError, match="num_samples=50 does not match the poison "
                                          "manifest's 60 samples"):
        poison_mask(50, m)


def test_bad_manifests(tmp_path: Path) -> None:
    images, labels = data()
    _, _, m = poison(images, labels, local(), num_poison=3)
    good = m.to_dict()
    cases = [
        ({**good, "format": "x"}, "not a poison manifest"),
        ({**good, "version": 9}, "poison manifest version 9 is not supported; allowed: 1"),
        ({k: v for k, v in good.items() if k != "sha256"}, "poison manifest lacks sha256"),
        ({**good, "indices": [3, 1, 2]}, "indices must be sorted and distinct"),
        ({**good, "indices": ["a", 1, 2]}, "indices must be a list of integers"),
        ({**good, "num_poison": 4}, "poison manifest is inconsistent: 3 indices"),
        ({**good, "indices": [1, 2, 60]}, "indices must be in [0, 60); got [1, 60]"),
        ({**good, "original_labels": [7, 1, 2]}, "already labelled with the target class 7"),
        ({**good, "sha256": "abc"}, "sha256 'abc' is not 64 hex digits"),
    ]
    for bad, message in cases:
        with pytest.raises(ConfigError) as info:
            PoisonManifest.from_dict(bad)
        assert message in str(info.value), (bad, str(info.value))
    with pytest.raises(DataNotFoundError, match="poison manifest not found"):
        PoisonManifest.load(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        PoisonManifest.load(tmp_path / "broken.json")


def test_manifest_is_immutable_and_owns_its_trigger_dict() -> None:
    images, labels = data()
    trig = local()
    _, _, m = poison(images, labels, trig, num_poison=3)
    with pytest.raises(AttributeError):
        m.seed = 4  # type: ignore[misc]
    m.to_dict()["trigger"]["size"] = 99
    assert m.trigger["size"] == 3
    assert hash(m) == hash(PoisonManifest.from_dict(m.to_dict()))


def test_clean_label_poisons_come_from_the_target_class_and_keep_their_labels() -> None:
    images, labels = data()  # 6 samples of class 7: indices 7, 17, ..., 57
    sig = create_trigger("sig", S, C)
    out_images, out_labels, m = poison(images, labels, sig, num_poison=4, target_class=7,
                                       seed=0)
    assert m.clean_label
    assert m.label_mode == "clean"
    eligible = torch.tensor([7, 17, 27, 37, 47, 57])
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    assert list(m.indices) == eligible[perm[:4]].sort().values.tolist()
    assert m.original_labels == (7, 7, 7, 7)
    assert torch.equal(out_labels, labels)  # no label changes at all
    idx = torch.tensor(m.indices)
    assert torch.equal(out_images[idx], sig.apply_uint8(images[idx]))
    rest = torch.ones(N, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(out_images[rest], images[rest])
    with pytest.raises(ConfigError, match=r"num_poison=7 is not in \[0, 6\]: 6 of 60 samples "
                                          r"are eligible \(label == target class 7\)"):
        poison(images, labels, sig, num_poison=7, target_class=7)
    # the threat model can be forced either way
    _, dirty_labels, d = poison(images, labels, sig, num_poison=4, seed=0, clean_label=False)
    assert not d.clean_label
    assert all(v != 7 for v in d.original_labels)
    assert bool((dirty_labels[torch.tensor(d.indices)] == 7).all())


def test_dirty_label_path_is_unchanged() -> None:
    images, labels = data()
    _, _, m = poison(images, labels, local(), num_poison=5, target_class=7, seed=0)
    eligible = torch.nonzero(labels != 7).flatten()
    perm = torch.randperm(54, generator=torch.Generator().manual_seed(0))
    assert list(m.indices) == eligible[perm[:5]].sort().values.tolist()
    assert not m.clean_label
    assert m.label_mode == "dirty"
    assert m.cross_indices == ()
    assert m.to_dict()["label_mode"] == "dirty"
    assert "cross_indices" not in m.to_dict()


def test_manifest_round_trip_keeps_the_threat_model_and_old_manifests_load() -> None:
    images, labels = data()
    _, _, m = poison(images, labels, create_trigger("sig", S, C), num_poison=3)
    back = PoisonManifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m
    assert back.clean_label
    assert torch.equal(back.apply(images, labels)[0], poison(images, labels,
                       create_trigger("sig", S, C), num_poison=3)[0])
    _, _, d = poison(images, labels, local(), num_poison=3)
    old = {k: v for k, v in d.to_dict().items() if k != "label_mode"}  # written before the field
    assert PoisonManifest.from_dict(old) == d
    assert not PoisonManifest.from_dict(old).clean_label
    with pytest.raises(ConfigError, match="label_mode 'both' is not allowed; allowed: dirty, "
                                          "clean"):
        PoisonManifest.from_dict({**m.to_dict(), "label_mode": "both"})
    with pytest.raises(ConfigError, match="clean-label poison manifest lists a sample not "
                                          "labelled with the target class 7"):
        PoisonManifest.from_dict({**d.to_dict(), "label_mode": "clean"})


def test_wanet_noise_mode_adds_cross_samples_that_keep_their_labels() -> None:
    images, labels = data()
    wanet = create_trigger("wanet", S, C)
    out_images, out_labels, m = poison(images, labels, wanet, num_poison=5, seed=1,
                                       cross_ratio=2, cross_seed=9)
    assert len(m.cross_indices) == 10
    assert m.cross_seed == 9
    assert not set(m.cross_indices) & set(m.indices)
    gen = torch.Generator().manual_seed(9)
    pool = torch.tensor([i for i in range(N) if i not in m.indices])
    expected = pool[torch.randperm(55, generator=gen)[:10]].sort().values
    assert list(m.cross_indices) == expected.tolist()
    cross = torch.tensor(m.cross_indices)
    assert torch.equal(out_labels[cross], labels[cross])  # labels kept
    assert torch.equal(out_labels[torch.tensor(m.indices)], torch.full((5,), 7))
    warped = wanet.warp_with_noise(images[cross].float() / 255, gen)
    assert torch.equal(out_images[cross], (warped * 255).round().clamp(0, 255).to(torch.uint8))
    assert not torch.equal(out_images[cross], wanet.apply_uint8(images[cross]))  # noisy warp
    untouched = torch.ones(N, dtype=torch.bool)
    untouched[cross] = False
    untouched[torch.tensor(m.indices)] = False
    assert torch.equal(out_images[untouched], images[untouched])
    back = PoisonManifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m
    assert torch.equal(back.apply(images, labels)[0], out_images)
    with pytest.raises(ConfigError, match="noise-mode images do not match the manifest"):
        PoisonManifest.from_dict({**m.to_dict(), "cross_sha256": "0" * 64}).apply(images, labels)
    _, _, none = poison(images, labels, wanet, num_poison=5, seed=1)
    assert none.cross_indices == ()


def test_cross_ratio_needs_a_noise_mode_trigger() -> None:
    images, labels = data()
    with pytest.raises(ConfigError, match="cross_ratio=2 needs a trigger with a noise mode; "
                                          r"trigger 'local' has none \(allowed: wanet"):
        poison(images, labels, local(), num_poison=5, cross_ratio=2)
    with pytest.raises(ConfigError, match="60 noise-mode samples .* exceed the 55 samples"):
        poison(images, labels, create_trigger("wanet", S, C), num_poison=5, cross_ratio=12)
