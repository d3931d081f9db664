"""A run directory: the files one run writes, and how they are read back and trusted.

Layout (written by ``dal_backdoor.train.fit``, in this order):

- ``config.json``: run id, resolved config, data summary, provenance (rewritten on resume);
- ``manifest.json``: which training images were poisoned (poisoned runs only);
- ``checkpoint.pt``: the full training state after the last finished epoch (while unfinished);
- ``model.pt``: the final weights (a ``weights_only`` state dict);
- ``metrics.json``: history and final metrics, written last: it marks the run finished and
  records the sha256 of every other file (and of its own content), so a finished run folder is
  verified before it is reused (``fit`` on a finished run, ``evaluate``). A mismatch is one
  ``CheckpointError`` naming the changed file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from dal_backdoor.config import RunConfig
from dal_backdoor.errors import CheckpointError, ConfigError
from dal_backdoor.io import atomic_write_json, atomic_write_with, remove_stale_temp_files

if TYPE_CHECKING:
    from dal_backdoor.data.poison import PoisonManifest
    from dal_backdoor.provenance import Provenance

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
CONFIG = "config.json"
MANIFEST = "manifest.json"
METRICS = "metrics.json"
#: Files whose sha256 metrics.json records (when present), besides its own content.
HASHED = (CONFIG, MANIFEST, MODEL)
HASHES_KEY = "sha256"
_LOAD_ERRORS = (RuntimeError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError,
                IndexError, pickle.UnpicklingError, zipfile.BadZipFile)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metrics_digest(metrics: dict[str, Any]) -> str:
    """sha256 of a metrics.json's content (run id, final, history) in canonical JSON."""
    content = {k: metrics.get(k) for k in ("run_id", "final", "history")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return " ".join(first.split())[:160]


class RunDir:
    """The run directory ``path`` (it need not exist yet)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    # -- reading ---------------------------------------------------------------------------
    def read_json(self, name: str) -> dict[str, Any] | None:
        """The JSON object in ``name``; None when the file is missing, ConfigError when it is
        not a JSON object."""
        path = self.file(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
            data = None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} is not valid JSON; delete the run directory to start "
                              "again")
        return data

    def owner(self) -> str | None:
        """The run id config.json names (None when there is no config.json)."""
        saved = self.read_json(CONFIG)
        return None if saved is None else saved.get("run_id")

    def provenance(self) -> Provenance | None:
        """The provenance config.json recorded (None when it has none)."""
        saved = self.read_json(CONFIG) or {}
        prov = saved.get("provenance")
        return cast("Provenance", prov) if isinstance(prov, dict) else None

    def check_belongs_to(self, run_id: str) -> None:
        """Refuse a run directory that belongs to another config."""
        owner = self.owner()
        if self.file(CONFIG).exists() and owner != run_id:
            raise ConfigError(f"{self.path} holds run {owner!r}, not this config's "
                              f"run {run_id}; use another --out directory")

    def finished_metrics(self, run_id: str) -> dict[str, Any] | None:
        """metrics.json of the finished run ``run_id``, verified against its recorded hashes;
        None when the run has not finished here."""
        metrics = self.read_json(METRICS)
        if metrics is None or metrics.get("run_id") != run_id:
            return None
        self.verify(metrics)
        return metrics

    def verify(self, metrics: dict[str, Any]) -> None:
        """Check the files against the sha256 values metrics.json recorded at the end of the
        run; a folder from before hashes were recorded only needs a loadable model.pt."""
        hashes = metrics.get(HASHES_KEY)
        if hashes is None:
            log.warning("%s was written before run folders recorded content hashes; only "
                        "checking that model.pt loads", self.path)
            self._load_weights()
            return
        if not isinstance(hashes, dict) or hashes.get(METRICS) != metrics_digest(metrics):
            self._tampered(METRICS, "its content")
        for name in HASHED:
            if name in hashes and (not self.file(name).is_file()
                                   or sha256_file(self.file(name)) != hashes[name]):
                self._tampered(name, "the file")
        for name in HASHED:
            if name not in hashes and self.file(name).exists():
                self._tampered(name, "a file the finished run did not have")

    def _tampered(self, name: str, what: str) -> None:
        raise CheckpointError(
            f"{self.file(name)} changed after the run finished ({what} no longer matches the "
            f"sha256 recorded in {METRICS}); delete {self.path} to train the run again")

    # -- writing ---------------------------------------------------------------------------
    def create(self) -> None:
        """Make the directory and clear temp files a killed write left behind."""
        self.path.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.path)

    def write_config(self, cfg: RunConfig, data_info: dict[str, Any],
                     provenance: Provenance) -> None:
        atomic_write_json(self.file(CONFIG), {"run_id": cfg.run_id, "config": cfg.to_dict(),
                                              "data": data_info, "provenance": provenance})

    def write_manifest(self, manifest: PoisonManifest) -> None:
        manifest.save(self.file(MANIFEST))

    def write_model(self, model: nn.Module) -> None:
        """The model's weights as a CPU state dict (atomic)."""
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        atomic_write_with(self.file(MODEL), lambda fh: torch.save(weights, fh))

    def write_metrics(self, run_id: str, final: dict[str, Any],
                      history: list[dict[str, Any]]) -> dict[str, Any]:
        """metrics.json (atomic, last): marks the run finished and records the sha256 of the
        run's files and of its own content. Returns what was written."""
        metrics: dict[str, Any] = json.loads(json.dumps(
            {"run_id": run_id, "final": final, "history": history}))
        hashes = {name: sha256_file(self.file(name)) for name in HASHED
                  if self.file(name).is_file()}
        hashes[METRICS] = metrics_digest(metrics)
        metrics[HASHES_KEY] = hashes
        atomic_write_json(self.file(METRICS), metrics)
        return metrics

    # -- loading a trained model -----------------------------------------------------------
    def load_config(self) -> tuple[RunConfig, dict[str, Any], dict[str, Any]]:
        """(config, data info, provenance) of the finished run here, verified."""
        saved = self.read_json(CONFIG)
        metrics = self.read_json(METRICS)
        if saved is None or metrics is None or not self.file(MODEL).exists():
            raise ConfigError(f"{self.path} holds no finished run (config.json, model.pt and "
                              "metrics.json are written by `dal-backdoor train`)")
        run_id = saved.get("run_id")
        if metrics.get("run_id") != run_id:
            raise CheckpointError(f"{self.path}: metrics.json belongs to run "
                                  f"{metrics.get('run_id')!r}, config.json to run {run_id!r}; "
                                  "delete the run directory to train it again")
        self.verify(metrics)
        try:
            cfg = RunConfig.from_dict(saved["config"])
            info, prov = dict(saved["data"]), dict(saved.get("provenance") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{self.file(CONFIG)} is not a run config ({_reason(exc)}); "
                              "delete the run directory to train it again") from None
        if cfg.run_id != run_id:
            raise CheckpointError(f"{self.file(CONFIG)} was edited: its config is run "
                                  f"{cfg.run_id}, not the recorded run {run_id}; delete the run "
                                  "directory to train it again")
        return cfg, info, prov

    def _load_weights(self) -> dict[str, torch.Tensor]:
        path = self.file(MODEL)
        try:
            weights = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"{path} is missing; delete {self.path} to train the run "
                                  "again") from None
        except _LOAD_ERRORS as exc:
            raise CheckpointError(f"{path} is not a saved model ({_reason(exc)}); delete "
                                  f"{self.path} to train the run again") from None
        if not isinstance(weights, dict) or not all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
            raise CheckpointError(f"{path} is not a saved model (not a state dict of tensors); "
                                  f"delete {self.path} to train the run again")
        return weights

    def load_model(self, device: str = "cpu") -> tuple[nn.Module, RunConfig, dict[str, Any]]:
        """The trained model (in eval mode, on ``device``), its config and its data info."""
        from dal_backdoor.models import create_model

        cfg, info, _ = self.load_config()
        cfg = cfg.replace(device=device)
        weights = self._load_weights()
        model = None
        if cfg.model_params:  # a user's model: its import or changed-code error is its own
            model = create_model(cfg.model, info.get("num_classes", 0),
                                 in_channels=info.get("in_channels", 0), width=cfg.width,
                                 params=cfg.model_params)
        try:
            if model is None:
                model = create_model(cfg.model, info["num_classes"],
                                     in_channels=info["in_channels"], width=cfg.width)
            model.load_state_dict(weights)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{self.file(MODEL)} does not fit the run's config "
                                  f"({_reason(exc)}); delete {self.path} to train the run "
                                  "again") from None
        return model.to(device).eval(), cfg, info


def load_trained_model(run_dir: str | Path, device: str = "cpu"
                       ) -> tuple[nn.Module, RunConfig, dict[str, Any]]:
    """The model saved by ``fit`` in ``run_dir``, its config and its data info."""
    return RunDir(run_dir).load_model(device)
