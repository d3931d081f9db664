"""Optional experiment tracking: every epoch's metrics and the run's config sent to TensorBoard
or MLflow, for users who already track there (``--track`` on ``train`` and ``sweep``; off by
default; ``pip install 'dal-backdoor[track]'``, or the extra named as the tracker).

A tracker observes one run through its ``RunRecorder`` (``dal_backdoor.recorder``): ``start``
(config and the epochs recorded before a resume), ``epoch`` (each new row, as the store gets
it), ``finish``/``fail`` and ``close``. Trackers only read: they never change what is
computed or stored, and they are not part of ``RunConfig``, so they never change a run id.
Tracking is best effort: a tracker that raises is logged as a warning and dropped, the run goes
on (the results store stays the record). Whether a tracker's package is installed is checked
up front (:func:`check_available`), before any run starts.

- ``tensorboard``: event files in ``<run folder>/tensorboard`` (``tensorboard --logdir runs``
  shows a sweep's runs side by side); scalars named as in ``dal_backdoor.metrics``, step =
  epoch; the config as hyper-parameters and as text. A resumed run purges the steps after its
  checkpoint.
- ``mlflow``: one MLflow run per attempt, named by the run id, in the experiment
  ``$MLFLOW_EXPERIMENT_NAME`` (default ``dal-backdoor``) of the tracking URI MLflow is set up
  with (``$MLFLOW_TRACKING_URI``); the config as params (dotted names), metrics with step =
  epoch (a resumed attempt logs the earlier epochs too), status FINISHED, FAILED or KILLED.

Nothing here imports torch, tensorboard or mlflow until a tracker starts.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dal_backdoor.errors import ConfigError

log = logging.getLogger(__name__)

TB_SUBDIR = "tensorboard"
MLFLOW_EXPERIMENT = "dal-backdoor"
MLFLOW_BATCH = 100  # params per MLflow log_batch call (its limit)

Row = Mapping[str, Any]


class RunObserver(Protocol):
    """What a ``RunRecorder`` tells an observer of its run."""

    def start(self, run_id: str, config: Row, history: Sequence[Row]) -> None: ...

    def epoch(self, row: Row) -> None: ...

    def finish(self, final: Row) -> None: ...

    def fail(self, error: str) -> None: ...

    def close(self) -> None: ...


# -- what is sent --------------------------------------------------------------------------------

def scalar_metrics(row: Row) -> dict[str, float]:
    """The row's finite numbers (not ``epoch``, not booleans, not text or lists)."""
    return {k: float(v) for k, v in row.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)}


def config_params(config: Row) -> dict[str, str | int | float | bool]:
    """The config as flat hyper-parameters: nested mappings as dotted names
    (``loss_params.q``), None as ``"none"``, lists and empty mappings as JSON text."""
    from dal_backdoor.exports import flatten

    out: dict[str, str | int | float | bool] = {}
    for key, value in flatten(config).items():
        if value is None:
            out[key] = "none"
        elif isinstance(value, (str, int, float, bool)):
            out[key] = value
        else:
            out[key] = json.dumps(value, sort_keys=True)
    return out


# -- the trackers --------------------------------------------------------------------------------

class TensorBoardTracker:
    """Scalars and hyper-parameters in ``log_dir`` through ``torch.utils.tensorboard``."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def start(self, run_id: str, config: Row, history: Sequence[Row]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        done = int(history[-1]["epoch"]) if history else 0
        self._writer = SummaryWriter(str(self.log_dir), purge_step=done + 1 if done else None)
        params = config_params(config)
        for summary in hparams(params, {"clean_acc": 0.0, "asr": 0.0}):
            self._writer.file_writer.add_summary(summary)
        self._writer.add_text("config", f"run {run_id}\n\n```\n"
                              + json.dumps(dict(config), indent=2, sort_keys=True) + "\n```")

    def epoch(self, row: Row) -> None:
        for name, value in scalar_metrics(row).items():
            self._writer.add_scalar(name, value, global_step=int(row["epoch"]))
        self._writer.flush()

    def finish(self, final: Row) -> None:  # noqa: ARG002 - the last epoch carries the numbers
        self._writer.add_text("status", "finished")

    def fail(self, error: str) -> None:
        self._writer.add_text("status", f"failed: {error}")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class MLflowTracker:
    """One MLflow run per attempt through ``mlflow.tracking.MlflowClient``."""

    def __init__(self, experiment: str | None = None) -> None:
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME",
                                                       MLFLOW_EXPERIMENT)
        self._client: Any = None
        self._run: str | None = None
        self._ended = False

    def start(self, run_id: str, config: Row, history: Sequence[Row]) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient()
        run = self._client.create_run(self._experiment_id(), run_name=run_id,
                                      tags={"dal_backdoor.run_id": run_id})
        self._run = run.info.run_id
        params = [Param(k, str(v)) for k, v in config_params(config).items()]
        for i in range(0, len(params), MLFLOW_BATCH):
            self._client.log_batch(self._run, params=params[i:i + MLFLOW_BATCH])
        for row in history:
            self.epoch(row)

    def _experiment_id(self) -> str:
        found = self._client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self._client.create_experiment(self.experiment)
        except Exception:  # another sweep worker created it first
            found = self._client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def epoch(self, row: Row) -> None:
        from mlflow.entities import Metric

        stamp, step = int(time.time() * 1000), int(row["epoch"])
        metrics = [Metric(k, v, stamp, step) for k, v in scalar_metrics(row).items()]
        self._client.log_batch(self._run, metrics=metrics)

    def finish(self, final: Row) -> None:  # noqa: ARG002 - the last epoch carries the numbers
        self._end("FINISHED")

    def fail(self, error: str) -> None:
        self._client.set_tag(self._run, "dal_backdoor.error", error[:5000])
        self._end("FAILED")

    def _end(self, status: str) -> None:
        if not self._ended and self._run is not None:
            self._client.set_terminated(self._run, status=status)
            self._ended = True

    def close(self) -> None:
        self._end("KILLED")  # closed before it finished or failed: interrupted


@dataclass(frozen=True)
class TrackerInfo:
    """A tracker: the module its package installs and how to build one for a run folder."""

    module: str
    package: str
    factory: Callable[[Path], RunObserver]


TRACKERS: dict[str, TrackerInfo] = {
    "tensorboard": TrackerInfo("tensorboard", "tensorboard",
                               lambda run_dir: TensorBoardTracker(run_dir / TB_SUBDIR)),
    "mlflow": TrackerInfo("mlflow", "mlflow", lambda _run_dir: MLflowTracker()),
}


def list_trackers() -> list[str]:
    return list(TRACKERS)


def check_available(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without repeats, each a known tracker whose package is installed; a
    ConfigError naming the missing package and how to install it otherwise."""
    unique = tuple(dict.fromkeys(names))
    for name in unique:
        info = TRACKERS.get(name)
        if info is None:
            raise ConfigError(f"unknown tracker {name!r}; allowed: {', '.join(TRACKERS)}")
        if importlib.util.find_spec(info.module) is None:
            raise ConfigError(f"--track {name} needs the {info.package} package, which is not "
                              f"installed: pip install 'dal-backdoor[{name}]' (or "
                              "'dal-backdoor[track]' for both trackers)")
    return unique


def create_trackers(names: Iterable[str], run_dir: str | Path) -> list[RunObserver]:
    """One tracker per name for the run whose folder is ``run_dir``."""
    return [TRACKERS[name].factory(Path(run_dir)) for name in check_available(names)]


# -- the recorder's side -----------------------------------------------------------------------

class Observers:
    """The observers of one run, called best effort: one that raises is logged and dropped.
    ``finish`` and ``fail`` reach only observers that were started (a run reused as finished
    is not tracked again)."""

    def __init__(self, observers: Sequence[RunObserver] = ()) -> None:
        self._live = list(observers)
        self._started = False

    def __bool__(self) -> bool:
        return bool(self._live)

    def _call(self, method: str, *args: Any) -> None:
        for observer in list(self._live):
            try:
                getattr(observer, method)(*args)
            except Exception as exc:  # tracking never fails a run
                log.warning("tracker %s failed in %s and is turned off for this run: %s",
                            type(observer).__name__, method, exc)
                self._live.remove(observer)
                if method != "close":
                    self._close(observer)

    @staticmethod
    def _close(observer: RunObserver) -> None:
        try:
            observer.close()
        except Exception:  # already reported once
            log.debug("closing a failed tracker", exc_info=True)

    def start(self, run_id: str, config: Row, history: Sequence[Row]) -> None:
        self._started = True
        self._call("start", run_id, config, history)

    def epoch(self, row: Row) -> None:
        if self._started:
            self._call("epoch", row)

    def finish(self, final: Row) -> None:
        if self._started:
            self._call("finish", final)

    def fail(self, error: str) -> None:
        if self._started:
            self._call("fail", error)

    def close(self) -> None:
        if self._started:
            self._call("close")
        self._started = False
