"""Every metric a run records, declared once: name, kind, label and whether it is shown.

Rates are stored as fractions in [0, 1] and shown as percentages by :func:`fmt_percent`, the
one percentage formatter; the ``runs`` tables, the progress line and summary of ``train``,
``evaluate``, the sweep's event lines and the reports read this module instead of keeping
their own lists. Adding a metric: produce it in the trainer/evaluator and declare it here
(``tests/test_metrics.py`` checks that the two agree).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

#: Kinds: a fraction shown in %, an integer count, a duration, a loss value, a scheduled
#: hyper-parameter value, the learning rate, the epoch index, free-text notes.
KINDS = ("rate", "count", "seconds", "loss", "value", "lr", "epoch", "notes")


@dataclass(frozen=True)
class Metric:
    """One recorded metric. ``short`` is its name on the one-line progress displays; ``shown``
    says whether those displays show it by default."""

    name: str
    kind: str
    label: str
    short: str = ""
    shown: bool = False
    final_only: bool = False  # only in a run's final metrics, not in its per-epoch rows


def _declare(*metrics: Metric) -> dict[str, Metric]:
    for m in metrics:
        if m.kind not in KINDS:
            raise RuntimeError(f"metric {m.name}: unknown kind {m.kind!r}; allowed: {KINDS}")
    return {m.name: m for m in metrics}


_GROUP_TEXT = {"clean": "clean", "noisy": "label-noised", "poisoned": "poisoned"}

METRICS: dict[str, Metric] = _declare(
    Metric("epoch", "epoch", "epoch"),
    Metric("lr", "lr", "learning rate at the start of the epoch"),
    Metric("train_loss", "loss", "mean training loss", "loss", shown=True),
    Metric("train_acc", "rate", "train accuracy (observed labels)"),
    *(Metric(f"train_acc_{g}", "rate", f"train accuracy on {t} training samples")
      for g, t in _GROUP_TEXT.items()),
    *(Metric(f"num_{g}", "count", f"{t} training samples") for g, t in _GROUP_TEXT.items()),
    Metric("clean_acc", "rate", "clean test accuracy", "clean acc", shown=True),
    Metric("clean_correct", "count", "clean test images classified correctly"),
    Metric("clean_total", "count", "clean test images"),
    Metric("asr", "rate", "attack success rate (paper)", "ASR", shown=True),
    Metric("asr_hits", "count", "triggered test images predicted as the target (paper)"),
    Metric("asr_total", "count", "triggered test images (paper)"),
    Metric("asr_true", "rate", "ASR (true label != target)"),
    Metric("asr_true_hits", "count", "triggered test images predicted as the target (true)"),
    Metric("asr_true_total", "count", "triggered test images (true label != target)"),
    Metric("robust_acc", "rate", "robust accuracy"),
    Metric("robust_correct", "count", "triggered test images classified as their true label"),
    Metric("robust_total", "count", "triggered test images for robust accuracy"),
    Metric("notes", "notes", "notes on the evaluation"),
    Metric("q", "value", "GCE exponent q(t) of DAL/DGCE", "q", shown=True),
    Metric("lam", "value", "weight lambda(t) of DAL's bootstrap or CE+SR's sparsity term",
           "λ", shown=True),
    Metric("train_seconds", "seconds", "training time of the epoch (s)"),
    Metric("epoch_seconds", "seconds", "time of the epoch with evaluation (s)"),
    Metric("epochs_done", "epoch", "epochs", final_only=True),
    Metric("total_train_seconds", "seconds", "training time (s)", final_only=True),
    Metric("total_seconds", "seconds", "total time with evaluation (s)", final_only=True),
    Metric("noise_actual_rate", "rate", "actual label-noise rate (full split)",
           final_only=True),
)


#: The counts behind each evaluated rate: rate -> (hits, trials).
COUNTS: dict[str, tuple[str, str]] = {
    "clean_acc": ("clean_correct", "clean_total"),
    "asr": ("asr_hits", "asr_total"),
    "asr_true": ("asr_true_hits", "asr_true_total"),
    "robust_acc": ("robust_correct", "robust_total"),
}
#: The rates that need a trigger, in display order.
BACKDOOR_RATES = ("asr", "asr_true", "robust_acc")


def fmt_counts(row: dict[str, Any], rate: str) -> str:
    """``hits/trials`` behind ``rate`` (e.g. ``912/1000``), '' when not recorded."""
    hits, total = COUNTS[rate]
    return "" if row.get(hits) is None or row.get(total) is None else f"{row[hits]}/{row[total]}"


def rates_line(row: dict[str, Any], names: tuple[str, ...] = ("clean_acc", "asr")) -> str:
    """``clean acc 91.00%  ASR 1.00%`` for the rates of ``names`` that ``row`` has."""
    return "  ".join(f"{METRICS[n].short} {fmt_percent(row[n])}" for n in names
                     if row.get(n) is not None)


def metric(name: str) -> Metric | None:
    """The declaration of ``name`` (None for a key that is not a metric, e.g. a config field)."""
    return METRICS.get(name)


def is_rate(name: str) -> bool:
    m = METRICS.get(name)
    return m is not None and m.kind == "rate"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def as_percent(value: Any) -> float | None:
    """A stored rate (fraction) as a percentage number; None when missing or not finite."""
    return 100.0 * float(value) if _number(value) else None


def fmt_percent(value: Any, *, sign: bool = True, digits: int = 2) -> str:
    """THE percentage formatter: a fraction as ``91.00%`` (``91.00`` without ``sign``, where
    the column header says %), '-' when missing or not finite."""
    percent = as_percent(value)
    if percent is None:
        return "-"
    return f"{percent:.{digits}f}{'%' if sign else ''}"


_FORMATS = {"count": "{:d}", "seconds": "{:.1f}", "loss": "{:.4f}", "value": "{:.4g}",
            "lr": "{:.4g}", "epoch": "{:d}"}


def fmt_metric(name: str, value: Any) -> str:
    """A metric value as text by its kind (rates in %); other keys: numbers with 4 significant
    digits, JSON for containers, '-' when missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    m = METRICS.get(name)
    if m is not None and m.kind == "rate":
        return fmt_percent(value)
    if m is not None and m.kind in _FORMATS and _number(value):
        return _FORMATS[m.kind].format(int(value) if _FORMATS[m.kind] == "{:d}" else value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def status_line(row: dict[str, Any]) -> str:
    """The metrics shown by default, as ``loss 0.1234  clean acc 91.00%  ASR 1.00%  q 0.9``."""
    return "  ".join(f"{m.short} {fmt_metric(m.name, row[m.name])}" for m in METRICS.values()
                     if m.shown and row.get(m.name) is not None)
