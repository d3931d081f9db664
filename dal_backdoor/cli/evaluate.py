"""``dal-backdoor evaluate``: clean accuracy, ASR, ASR_true and robust accuracy of a saved model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dal_backdoor.cli.common import (
    OutputPath,
    console,
    parse_key_values,
    registry_names,
    write_output,
)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--trigger", default=None,
              type=click.Choice(registry_names("triggers", "list_triggers", ("none",))),
              help="Evaluate with this trigger instead of the run's own.")
@click.option("--trigger-param", multiple=True, metavar="K=V",
              help="Trigger parameters (with --trigger; default: the trigger's defaults).")
@click.option("--target-class", type=int, default=None,
              help="Target class (default: the run's).")
@click.option("--root", default=None, help="Data root (default: the run's).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--batch-size", type=int, default=1000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["rich", "json", "csv"]), default="rich",
              show_default=True, help="rich: the table; json: a list of one object (run id, "
              "config, provenance, evaluation, raw counts and rates); csv: one row.")
@click.option("--out", type=OutputPath("file", dash=True), default=None,
              help="Write the json or csv result to this file (atomically); default or -: "
              "standard output.")
def command(run_dir: Path, trigger: str | None, trigger_param: tuple[str, ...],
            target_class: int | None, root: str | None, device: str, batch_size: int,
            fmt: str, out: Path | None) -> None:
    """Evaluate the model saved in RUN_DIR (written by `train` or `sweep`) on the clean test set
    and, with a trigger, by the paper's backdoor protocol: drop test images the model assigns to
    the target class, stamp the trigger on the rest, ASR = share predicted as the target. Also
    ASR_true (drop images whose true label is the target) and robust accuracy.

    --format json|csv gives the numbers for pandas: rates as fractions, with the counts behind
    them (clean_correct/clean_total, asr_hits/asr_total, ...).

    \b
    Example (the run's own trigger, then another one, then as CSV):
      dal-backdoor evaluate runs/dal
      dal-backdoor evaluate runs/dal --trigger blended --trigger-param alpha=0.2
      dal-backdoor evaluate runs/dal --format csv --out dal-eval.csv
    """
    from dal_backdoor.config import resolve_device
    from dal_backdoor.errors import ConfigError
    from dal_backdoor.validation import MAX_COUNT, check_number

    if trigger_param and trigger is None:
        raise click.UsageError("--trigger-param needs --trigger (the run's own trigger keeps its "
                               "recorded parameters)")
    if out is not None and fmt == "rich":
        raise ConfigError("--out needs --format json or csv")
    check_number("batch_size", batch_size, low=1, high=MAX_COUNT, integer=True)
    dev = resolve_device(device)
    result = evaluate_run(run_dir, trigger, trigger_param, target_class, root, dev, batch_size)
    if fmt == "rich":
        print_table(run_dir, result)
        return
    text = export_text(run_dir, result, dev, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_output(out, text)


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` measured: the run's config, the trigger used, the raw metrics."""

    cfg: Any  # dal_backdoor.config.RunConfig (kept untyped: --help must not import torch)
    trigger: str
    trigger_params: dict[str, Any]
    target_class: int
    metrics: dict[str, Any]


def evaluate_run(run_dir: Path, trigger: str | None, trigger_param: tuple[str, ...],
                 target_class: int | None, root: str | None, dev: str,
                 batch_size: int) -> Evaluation:
    """Load the run's model and evaluate it (the run's own trigger unless ``trigger``)."""
    from dal_backdoor.data.poison import is_clean_label
    from dal_backdoor.data.prepare import load_test_set
    from dal_backdoor.evaluate import evaluate_backdoor
    from dal_backdoor.rundir import RunDir
    from dal_backdoor.validation import check_number
    from triggers import create_trigger

    model, cfg, info = RunDir(run_dir).load_model(dev)
    if root is not None:
        cfg = cfg.replace(data_root=root)
    name = trigger if trigger is not None else cfg.trigger
    params: dict[str, Any] = (parse_key_values(trigger_param, "--trigger-param")
                              if trigger is not None else dict(cfg.trigger_params))
    target = cfg.target_class if target_class is None else target_class
    check_number("target_class", target, low=0, high=info["num_classes"] - 1, integer=True)
    trig = None
    if name != "none":
        trig = create_trigger(name, tuple(info["image_size"]), info["in_channels"],
                              **params).for_evaluation()
    test = load_test_set(cfg)
    metrics = evaluate_backdoor(
        model, test.images, test.labels, trig, target, mean=tuple(info["mean"]),
        std=tuple(info["std"]), batch_size=batch_size, device=dev,
        clean_label=trig is not None and is_clean_label(trig),
    ).to_dict()
    return Evaluation(cfg, name, params, target, metrics)


def print_table(run_dir: Path, result: Evaluation) -> None:
    from rich.table import Table

    from dal_backdoor.metrics import BACKDOOR_RATES, METRICS, fmt_counts, fmt_percent

    cfg, metrics = result.cfg, result.metrics
    table = Table(title=f"{run_dir}: {cfg.loss} on {cfg.dataset}, trigger {result.trigger}, "
                  f"target {result.target_class}")
    table.add_column("metric")
    table.add_column("%", justify="right")
    table.add_column("counts", justify="right")
    for key in ("clean_acc", *(BACKDOOR_RATES if result.trigger != "none" else ())):
        table.add_row(METRICS[key].label, fmt_percent(metrics.get(key), sign=False),
                      fmt_counts(metrics, key))
    console.print(table)


def export_text(run_dir: Path, result: Evaluation, dev: str, fmt: str) -> str:
    """The evaluation as json (a list of one object) or csv (one row); the config and
    provenance are those the run recorded."""
    from dal_backdoor.exports import evaluation_csv, evaluation_object, json_text
    from dal_backdoor.provenance import provenance
    from dal_backdoor.rundir import RunDir

    recorded, _info, prov = RunDir(run_dir).load_config()
    evaluation = {"trigger": result.trigger, "trigger_params": result.trigger_params,
                  "target_class": result.target_class}
    obj = evaluation_object(recorded.run_id, str(run_dir), recorded.to_dict(), evaluation,
                            result.metrics, prov, provenance(dev))
    return json_text([obj]) if fmt == "json" else evaluation_csv([obj])
