"""TrainingState: one state dict for model, optimiser, scheduler, loss, loader, RNG and progress."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dal_backdoor.checkpoint import FORMAT_VERSION
from dal_backdoor.config import RunConfig, resolve_config
from dal_backdoor.data.prepare import prepare_data
from dal_backdoor.errors import CheckpointError
from dal_backdoor.train import build_training_state, run_epoch
from dal_backdoor.training_state import STATE_KEYS, TrainingState

# The keys checkpoints had before TrainingState existed: old checkpoints must still resume.
LEGACY_KEYS = {"run_id", "epoch", "history", "model", "optimizer", "scheduler", "loss", "loader",
               "rng"}


def tiny(**kw: object) -> RunConfig:
    return resolve_config(dataset="synthetic", dataset_params={"num_samples": 128,
                                                               "image_size": 8},
                          device="cpu", width=2, epochs=3, batch_size=32, lr=0.05,
                          augment=True, loss="nlnl", test_subset=50, **kw)


def test_state_dict_has_the_checkpoint_keys() -> None:
    cfg = tiny()
    state = build_training_state(cfg, prepare_data(cfg))
    assert set(STATE_KEYS) == LEGACY_KEYS == set(state.state_dict())
    assert state.state_dict()["epoch"] == 0
    assert state.state_dict()["run_id"] == cfg.run_id


def test_save_and_load_continue_the_same_streams(tmp_path: Path) -> None:
    cfg = tiny()
    data = prepare_data(cfg)
    test_images = data.test.images
    first = build_training_state(cfg, data)
    row = run_epoch(cfg, 1, first.model, first, data, test_images)
    first.history.append(row)
    first.epoch = 1
    first.save(tmp_path / "ckpt.pt")
    saved = TrainingState.read(tmp_path / "ckpt.pt", cfg.run_id)
    assert saved["format_version"] == FORMAT_VERSION
    assert saved["epoch"] == 1

    second = build_training_state(cfg, data)
    second.load_state_dict(saved)
    assert second.epoch == 1
    assert second.history == [row]
    a = run_epoch(cfg, 2, first.model, first, data, test_images)
    torch.set_rng_state(saved["rng"]["torch"])  # the global stream as it was at the save
    b = run_epoch(cfg, 2, second.model, second, data, test_images)
    timing = {"train_seconds", "epoch_seconds"}
    assert {k: v for k, v in a.items() if k not in timing} == {
        k: v for k, v in b.items() if k not in timing}
    wa, wb = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_state_of_another_shape_is_one_checkpoint_error(tmp_path: Path) -> None:
    cfg = tiny()
    data = prepare_data(cfg)
    build_training_state(cfg.replace(width=4), data).save(tmp_path / "ckpt.pt")
    state = build_training_state(cfg, data)
    saved = TrainingState.read(tmp_path / "ckpt.pt", cfg.replace(width=4).run_id)
    with pytest.raises(CheckpointError, match=r"checkpoint .*ckpt.pt does not fit this run "
                                              r"\(Error\(s\) in loading state_dict"):
        state.load_state_dict(saved, tmp_path / "ckpt.pt")
    del saved["loader"]
    with pytest.raises(CheckpointError, match=r"does not fit this run \('loader'\)"):
        build_training_state(cfg.replace(width=4), data).load_state_dict(saved)
    with pytest.raises(CheckpointError, match="belongs to run"):
        TrainingState.read(tmp_path / "ckpt.pt", cfg.run_id)
