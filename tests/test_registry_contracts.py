"""Contracts every registered entry must keep, parametrised over the registries themselves: a
new loss, trigger, data set, noise kind, model, grid or preset is tested without editing a list.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from dal_backdoor.data import DATASETS, NOISE_KINDS, DatasetInfo, create_dataset, dataset_info
from dal_backdoor.data.catalog import (
    CIFAR100_CLASSES,
    CIFAR100_FINE_TO_COARSE,
    resolve_dataset_params,
)
from dal_backdoor.data.noise import make_noisy_labels
from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import GRIDS, PRESETS, expand
from dal_backdoor.losses import LOSSES, create_loss, preset
from dal_backdoor.models import MODELS, create_model
from tests.fakedata import (
    write_fake_cifar10,
    write_fake_cifar100,
    write_fake_cifar_n,
    write_image_folder,
    write_npz,
)
from triggers import TRIGGERS, create_trigger, float_to_uint8, trigger_from_description

EPOCHS = 5


# -- losses ------------------------------------------------------------------------------------

def _logits(k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(16, k, generator=gen, dtype=torch.float64).mul_(3).requires_grad_()
    return logits, torch.randint(0, k, (16,), generator=gen)


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_is_finite_with_gradients_at_every_epoch(name: str) -> None:
    loss = create_loss(name, 10, total_epochs=EPOCHS, seed=0)
    info = LOSSES.info(name)
    assert info.name == name == loss.name
    assert loss.num_classes == 10
    assert set(loss.hparams) == set(info.param_names)
    for t in range(1, EPOCHS + 1):
        loss.set_epoch(t)
        assert loss.epoch == t
        assert bool(loss.current_values()) == info.scheduled
        logits, targets = _logits(10, seed=t)
        value = loss(logits, targets)
        assert value.dim() == 0
        assert torch.isfinite(value)
        (grad,) = torch.autograd.grad(value, logits)
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_rebuilds_from_its_hparams_and_state(name: str) -> None:
    first = create_loss(name, 10, total_epochs=EPOCHS, seed=3)
    first.set_epoch(EPOCHS)
    logits, targets = _logits(10)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    again = create_loss(name, 10, total_epochs=EPOCHS, seed=3, **first.hparams)
    buffer.seek(0)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    assert again.epoch == EPOCHS
    assert again.hparams == first.hparams
    assert torch.equal(first(logits, targets), again(logits, targets))


@pytest.mark.parametrize("name", LOSSES.names())
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_every_table1_preset_builds(name: str, dataset: str) -> None:
    k = dataset_info(dataset).num_classes
    loss = create_loss(name, k, total_epochs=EPOCHS, **preset(name, dataset))
    logits, targets = _logits(k)
    assert torch.isfinite(loss(logits, targets))


# -- triggers ----------------------------------------------------------------------------------

def _trigger_params(name: str, size: int, channels: int, tmp_path: Path) -> dict[str, object]:
    """No parameters, except a generated pattern file for a trigger that needs one."""
    if "pattern_file" not in TRIGGERS.info(name).param_names:
        return {}
    try:
        create_trigger(name, size, channels)
        return {}
    except ConfigError:
        path = tmp_path / f"{name}-pattern.npy"
        np.save(path, np.linspace(0, 1, size * size, dtype=np.float32).reshape(size, size))
        params: dict[str, object] = {"pattern_file": str(path)}
        if "fit" in TRIGGERS.info(name).param_names:
            params["fit"] = "resize"
        return params


@pytest.mark.parametrize("name", TRIGGERS.names())
@pytest.mark.parametrize(("size", "channels"), [(32, 3), (28, 1)])
def test_trigger_output_shape_range_dtype_and_determinism(
    name: str, size: int, channels: int, tmp_path: Path
) -> None:
    params = _trigger_params(name, size, channels, tmp_path)
    trig = create_trigger(name, size, channels, **params)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(4, channels, size, size, generator=gen)
    before = images.clone()
    out = trig.apply(images)
    assert torch.equal(images, before)  # never in place
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    assert out.min() >= 0
    assert out.max() <= 1
    assert not torch.equal(out, images)
    assert torch.equal(create_trigger(name, size, channels, **params).apply(images), out)
    assert torch.equal(trigger_from_description(trig.describe()).apply(images), out)
    as_uint8 = float_to_uint8(images)
    stamped = trig.apply_uint8(as_uint8)
    assert stamped.dtype == torch.uint8
    assert torch.equal(stamped, float_to_uint8(trig.apply(as_uint8.float() / 255)))


@pytest.mark.parametrize("name", TRIGGERS.names())
def test_trigger_info_matches_the_class(name: str, tmp_path: Path) -> None:
    info = TRIGGERS.info(name)
    trig = create_trigger(name, 32, 3, **_trigger_params(name, 32, 3, tmp_path))
    assert info.name == name == trig.name
    assert info.summary
    assert "\n" not in info.summary
    assert list(trig.describe())[3:] == list(info.param_names)


# -- data sets ---------------------------------------------------------------------------------

def _user_files(name: str, tmp_path: Path) -> Path:
    """A tiny instance of a data set read from the user's files."""
    if name == "npz":
        write_npz(tmp_path / "data.npz")
        return tmp_path / "data.npz"
    write_image_folder(tmp_path / "images")
    return tmp_path / "images"


def _facts(name: str, tmp_path: Path) -> tuple[DatasetInfo, dict]:
    """The info of data set ``name`` and the options it is loaded with: a data set read from
    files gets a tiny instance in ``tmp_path`` and its facts from it."""
    info = dataset_info(name)
    if not info.from_files:
        return info, {}
    assert (info.num_classes, info.channels, info.classes) == (0, 0, ())  # no facts of its own
    params = resolve_dataset_params(name, {}, _user_files(name, tmp_path))
    return dataset_info(name, params), params


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_info_is_consistent(name: str, tmp_path: Path) -> None:
    info, _ = _facts(name, tmp_path)
    assert info.name == name
    assert info.title
    assert len(info.classes) == info.num_classes >= 2 == len(set(info.classes[:2]))
    assert len(set(info.classes)) == info.num_classes
    assert len(info.mean) == len(info.std) == info.channels >= 1
    assert all(0 < m < 1 for m in info.mean)
    assert all(0 < s < 1 for s in info.std)
    assert len(info.image_size) == 2
    assert min(info.image_size) >= 1
    assert isinstance(info.present(tmp_path), bool)


def _fake_root(tmp_path: Path) -> Path:
    write_fake_cifar10(tmp_path)
    write_fake_cifar100(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", DATASETS.names())
def test_a_present_dataset_loads_as_its_info_says(name: str, tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    info, params = _facts(name, tmp_path)
    if info.from_files:
        assert not info.present(root)  # the fake CIFAR folders are no image folder
        root = Path(params["path"])
        assert info.present(root)
    if not info.present(root):
        pytest.skip(f"{name} not present (no fake files and not on this machine)")
    if name == "synthetic":
        params = {"num_samples": 50}
    data = create_dataset(name, root, train=False, **params)
    assert data.num_classes == info.num_classes
    assert data.channels == info.channels
    assert data.image_size == info.image_size
    assert (data.mean, data.std) == (info.mean, info.std)


def test_dataset_options_change_the_facts() -> None:
    info = dataset_info("synthetic", {"num_classes": 4, "channels": 1, "image_size": 8})
    assert (info.num_classes, info.channels, info.image_size) == (4, 1, (8, 8))
    assert info.classes == ("class0", "class1", "class2", "class3")
    assert len(info.mean) == 1
    assert dataset_info("cifar100", {}).num_classes == 100


def test_cifar100_class_names_agree_with_the_superclasses() -> None:
    vehicles_1 = [CIFAR100_CLASSES[i] for i, c in enumerate(CIFAR100_FINE_TO_COARSE) if c == 18]
    assert vehicles_1 == ["bicycle", "bus", "motorcycle", "pickup_truck", "train"]
    fish = [CIFAR100_CLASSES[i] for i, c in enumerate(CIFAR100_FINE_TO_COARSE) if c == 1]
    assert fish == ["aquarium_fish", "flatfish", "ray", "shark", "trout"]


# -- noise kinds -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", NOISE_KINDS.names())
def test_noise_kind_contract(kind: str, tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 10
    images = torch.randint(0, 256, (200, 3, 8, 8), generator=gen, dtype=torch.uint8)
    cifar_n = tmp_path / "cifar10n.pt"
    write_fake_cifar_n(cifar_n, labels)
    label_file = tmp_path / "labels.npy"  # for the ``file`` source: every 7th label moved on
    np.save(label_file, np.where(np.arange(200) % 7 == 0, (labels.numpy() + 1) % 10,
                                 labels.numpy()))
    rate = 0.0 if kind == "none" else 0.3

    def draw() -> object:
        return make_noisy_labels(labels, kind, rate, 10, seed=5, dataset="cifar10",
                                 images=images, cifar_n_path=cifar_n, labels_path=label_file)

    noisy = draw()
    assert noisy.kind == kind
    assert noisy.labels.shape == labels.shape
    assert noisy.labels.dtype == torch.int64
    assert 0 <= noisy.labels.min() <= noisy.labels.max() < 10
    assert torch.equal(noisy.flipped, noisy.labels != labels)
    assert noisy.actual_rate == pytest.approx(noisy.flipped.double().mean().item())
    assert torch.allclose(noisy.transition_matrix.sum(1), torch.ones(10, dtype=torch.float64))
    assert torch.equal(draw().labels, noisy.labels)  # same seed, same labels
    assert NOISE_KINDS.info(kind).name == kind
    assert NOISE_KINDS.info(kind).summary


# -- models ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS.names())
def test_model_contract(name: str) -> None:
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    model = create_model(name, 7, in_channels=1, width=4, seed=1).eval()
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 7)
        assert torch.isfinite(out).all()
        assert torch.equal(create_model(name, 7, in_channels=1, width=4, seed=1).eval()(x), out)
    assert MODELS.info(name).name == name


# -- grids and presets -------------------------------------------------------------------------

@pytest.mark.parametrize("grid", GRIDS.names())
@pytest.mark.parametrize("preset_name", PRESETS.names())
def test_every_grid_expands_under_every_preset(
    grid: str, preset_name: str, tmp_path: Path
) -> None:
    info = GRIDS.info(grid)
    assert info.name == grid
    assert info.size == len(info.cells())
    expansion = expand(grid, preset_name, data_root=str(tmp_path), device="cpu")
    assert len(expansion.specs) + len(expansion.skipped) == info.size
    for spec in expansion.specs:
        assert spec.config.dataset in DATASETS
        assert spec.config.loss in LOSSES
        assert spec.config.trigger == "none" or spec.config.trigger in TRIGGERS
        assert spec.config.noise_kind in NOISE_KINDS
        assert spec.config.model in MODELS
    assert len({s.run_id for s in expansion.specs}) == len(expansion.specs)
