from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dal_backdoor.config import RunConfig, resolve_config
from dal_backdoor.data.prepare import derive_seed, prepare_data
from dal_backdoor.errors import CheckpointError, ConfigError
from dal_backdoor.rundir import load_trained_model
from dal_backdoor.store import ResultsStore
from dal_backdoor.train import Callbacks, fit

TIMING = {"train_seconds", "epoch_seconds", "total_train_seconds", "total_seconds"}


def tiny(**kw: object) -> RunConfig:
    base: dict = {
        "dataset": "synthetic", "dataset_params": {"num_samples": 400, "image_size": 16},
        "device": "cpu", "width": 4, "epochs": 3, "batch_size": 64, "lr": 0.05,
        "augment": False, "trigger": "local", "num_poison": 20, "test_subset": 200,
    }
    base.update(kw)
    return resolve_config(**base)


def untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", weights_only=True)


def test_derive_seed_streams_are_stable_and_distinct() -> None:
    assert derive_seed(0, "noise") == derive_seed(0, "noise")
    seeds = {derive_seed(s, n) for s in range(3) for n in ("noise", "poison", "loader", "model")}
    assert len(seeds) == 12
    assert all(0 <= s < 2**63 for s in seeds)


def test_prepare_data_noise_then_subset_then_poison() -> None:
    cfg = tiny(noise_kind="symmetric", noise_rate=0.4, train_subset=300, num_poison=25)
    data = prepare_data(cfg)
    assert data.train_labels.shape == (300,)
    poisoned = data.groups == 2
    noisy = data.groups == 1
    assert int(poisoned.sum()) == 25
    assert (data.train_labels[poisoned] == cfg.target_class).all()
    # noisy samples disagree with their clean label; clean ones agree
    assert (data.train_labels[noisy] != data.clean_labels[noisy]).all()
    assert (data.train_labels[data.groups == 0] == data.clean_labels[data.groups == 0]).all()
    assert 0.2 < data.noise["actual_rate"] < 0.6
    # the subset is class-balanced on the clean labels: 30 per class
    assert torch.bincount(data.clean_labels, minlength=10).tolist() == [30] * 10
    assert data.manifest.num_poison == 25
    assert len(data.test) == 200
    again = prepare_data(cfg)
    assert torch.equal(again.train_labels, data.train_labels)
    assert torch.equal(again.train_images, data.train_images)
    other = prepare_data(cfg.replace(seed=1))
    assert not torch.equal(other.groups, data.groups)


def test_prepare_data_rejects_oversized_subset_and_bad_target() -> None:
    with pytest.raises(ConfigError, match="train_subset=5000 exceeds the 400"):
        prepare_data(tiny(train_subset=5000))
    with pytest.raises(ConfigError, match="target_class"):
        prepare_data(tiny(target_class=10))
    with pytest.raises(ConfigError, match="unknown noise option.*flip"):
        prepare_data(tiny(noise_kind="symmetric", noise_rate=0.1, noise_params={"flip": 1}))


@pytest.mark.slow  # trains
def test_fit_writes_files_and_store(tmp_path: Path) -> None:
    # batch 32: with PyTorch's default init 3 epochs of batch 64 stayed near chance (19.5%)
    cfg = tiny(batch_size=32)
    seen: list[int] = []
    result = fit(cfg, tmp_path / "r.db", tmp_path / "run",
                 callbacks=Callbacks(on_epoch_end=lambda m: seen.append(m["epoch"])))
    assert seen == [1, 2, 3]
    assert result.resumed_from == 0
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "manifest.json",
                                                     "metrics.json", "model.pt"]
    saved = json.loads((run / "config.json").read_text())
    assert saved["run_id"] == cfg.run_id
    assert saved["data"]["num_poisoned"] == 20
    assert saved["provenance"]["versions"]["torch"] == torch.__version__
    with ResultsStore(tmp_path / "r.db") as store:
        record = store.get_run(cfg.run_id)
        assert record.status == "finished"
        assert record.config == cfg.to_dict()
        assert [e["epoch"] for e in store.epochs(cfg.run_id)] == [1, 2, 3]
        assert store.manifest(cfg.run_id)["num_poison"] == 20
    final = result.final_metrics
    assert final["epochs_done"] == 3
    assert final["asr_total"] + final["asr_hits"] >= final["asr_hits"]
    assert final["num_clean"] + final["num_poisoned"] == 400
    hist = result.history
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert final["clean_acc"] > 0.2  # chance is 0.1
    # the cosine schedule: lr of epoch t is lr * (1 + cos(pi (t-1) / T)) / 2
    assert [round(h["lr"], 6) for h in hist] == [0.05, 0.0375, 0.0125]


@pytest.mark.slow  # trains twice
def test_same_seed_same_weights_and_metrics(tmp_path: Path) -> None:
    cfg = tiny(loss="dal", epochs=2)
    a = fit(cfg, tmp_path / "r.db", tmp_path / "a")
    b = fit(cfg, tmp_path / "r2.db", tmp_path / "b")
    assert untimed(a.history) == untimed(b.history)
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.history[0]["q"] == pytest.approx(0.8 + 0.7 * 1 / 2)


class Stop(Exception):
    pass


@pytest.mark.slow  # trains, stops and resumes
def test_interrupted_run_resumes_to_identical_result(tmp_path: Path) -> None:
    cfg = tiny(loss="nlnl", epochs=3)  # NLNL: the loss carries its own generator state
    straight = fit(cfg, tmp_path / "a.db", tmp_path / "a")

    def stop_after_first(m: dict) -> None:
        if m["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        fit(cfg, tmp_path / "b.db", tmp_path / "b",
            callbacks=Callbacks(on_epoch_end=stop_after_first))
    assert (tmp_path / "b" / "checkpoint.pt").exists()
    with pytest.raises(ConfigError, match="pass --resume"):
        fit(cfg, tmp_path / "b.db", tmp_path / "b")
    resumed = fit(cfg, tmp_path / "b.db", tmp_path / "b", resume=True)
    assert resumed.resumed_from == 1
    assert untimed(resumed.history) == untimed(straight.history)
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not (tmp_path / "b" / "checkpoint.pt").exists()
    with ResultsStore(tmp_path / "b.db") as store:
        record = store.get_run(cfg.run_id)
        assert record.attempts == 2
        assert record.status == "finished"
        assert len(store.epochs(cfg.run_id)) == 3


def test_finished_run_is_returned_not_retrained(tmp_path: Path) -> None:
    cfg = tiny(epochs=1)
    first = fit(cfg, tmp_path / "r.db", tmp_path / "run")
    again = fit(cfg, tmp_path / "r.db", tmp_path / "run", resume=True)
    assert again.resumed_from == cfg.epochs
    assert again.final_metrics == first.final_metrics
    # a fresh store learns about a finished run directory
    fit(cfg, tmp_path / "other.db", tmp_path / "run")
    with ResultsStore(tmp_path / "other.db") as store:
        assert store.is_finished(cfg.run_id)


@pytest.mark.slow  # trains
def test_out_dir_of_another_run_is_refused(tmp_path: Path) -> None:
    fit(tiny(epochs=1), tmp_path / "r.db", tmp_path / "run")
    with pytest.raises(ConfigError, match="holds run"):
        fit(tiny(epochs=1, seed=5), tmp_path / "r.db", tmp_path / "run")


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tiny(epochs=1)
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        fit(cfg, tmp_path / "r.db", run, resume=True)


@pytest.mark.slow  # trains
def test_saved_model_reproduces_final_metrics(tmp_path: Path) -> None:
    from dal_backdoor.data.prepare import load_test_set
    from dal_backdoor.evaluate import evaluate_backdoor
    from triggers import create_trigger

    cfg = tiny(epochs=2, trigger="global")
    result = fit(cfg, tmp_path / "r.db", tmp_path / "run")
    model, loaded_cfg, info = load_trained_model(tmp_path / "run")
    assert loaded_cfg.run_id == cfg.run_id
    test = load_test_set(loaded_cfg)
    trig = create_trigger("global", tuple(info["image_size"]), info["in_channels"])
    metrics = evaluate_backdoor(model, test.images, test.labels, trig, cfg.target_class,
                                mean=info["mean"], std=info["std"])
    assert metrics.clean_correct == result.final_metrics["clean_correct"]
    assert metrics.asr_hits == result.final_metrics["asr_hits"]


def test_nlnl_is_given_inverse_frequency_class_weights() -> None:
    from dal_backdoor.train import build_loss

    cfg = tiny(loss="nlnl", trigger="none")
    data = prepare_data(cfg)
    loss = build_loss(cfg, data)
    counts = torch.bincount(data.train_labels, minlength=10).float()
    assert torch.allclose(loss.class_weights, counts.max() / counts)


def test_train_one_epoch_counts_only_the_samples_it_trained_on() -> None:
    from dal_backdoor.data.loader import DeviceLoader
    from dal_backdoor.train import build_loss, build_model, build_optimizer, train_one_epoch

    cfg = tiny(trigger="none")
    data = prepare_data(cfg)  # 400 samples
    loader = DeviceLoader(data.train_images, data.train_labels, batch_size=64, mean=data.mean,
                          std=data.std, device="cpu", augment=False, shuffle=True, seed=0,
                          drop_last=True)
    model = build_model(cfg, data.num_classes, data.in_channels)
    optimizer, _ = build_optimizer(cfg, model)
    out = train_one_epoch(model, loader, build_loss(cfg, data), optimizer, data.groups)
    assert out["num_clean"] == 384  # 6 full batches of 64
    assert out["num_poisoned"] == 0
    assert 0.0 <= out["train_acc"] <= 1.0
    assert out["train_acc_noisy"] is None


@pytest.mark.slow  # trains eager and compiled
def test_compile_trains_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--compile changes how, not what: same run id, and (with dynamo's graph run by the eager
    backend, which executes the same ops) the same weights; model.pt has the plain keys."""
    from dal_backdoor import accel

    built: list[object] = []

    def eager_backend_compile(model: torch.nn.Module) -> torch.nn.Module:
        net = accel.CompiledModule(model, backend="eager")
        built.append(net)
        return net

    monkeypatch.setattr(accel, "compile_model", eager_backend_compile)
    plain, compiled = tiny(epochs=2), tiny(epochs=2, compile=True)
    assert plain.run_id == compiled.run_id
    assert compiled.compile is True
    a = fit(plain, tmp_path / "a.db", tmp_path / "a")
    b = fit(compiled, tmp_path / "b.db", tmp_path / "b")
    assert len(built) == 1
    assert untimed(a.history) == untimed(b.history)
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_boolean_settings_must_be_booleans() -> None:
    with pytest.raises(ConfigError, match="compile='yes' is not a boolean"):
        tiny(compile="yes")
