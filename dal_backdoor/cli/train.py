"""``dal-backdoor train``: one run of the paper's recipe, with live progress and a summary."""

from __future__ import annotations

import logging
from typing import Any

import click

from dal_backdoor.cli.common import (
    OutputPath,
    console,
    default_db,
    default_root,
    parse_key_values,
    registry_names,
    set_interrupt_hint,
)

log = logging.getLogger(__name__)
DEFAULT_NUM_POISON = 100


@click.command()
@click.option("--dataset", type=click.Choice(registry_names("dal_backdoor.data", "list_datasets")),
              default="cifar10", show_default=True, help="Training/test data set.")
@click.option("--root", default=default_root, show_default="./data or $DAL_BACKDOOR_DATA",
              help="Where data sets live.")
@click.option("--download", is_flag=True, help="Download the data set first if it is missing.")
@click.option("--dataset-param", multiple=True, metavar="K=V",
              help="Data-set options, e.g. num_samples=2000 for synthetic; path=DIR|FILE.npz "
              "(default --root), test_fraction=0.2, split_seed=0 for folder and npz.")
@click.option("--train-subset", type=int, default=None,
              help="Train on a class-balanced subset of this many samples.")
@click.option("--test-subset", type=int, default=None,
              help="Evaluate on a class-balanced subset of this many test samples.")
@click.option("--loss", type=click.Choice(registry_names("dal_backdoor.losses", "list_losses")),
              default="ce", show_default=True, help="Training loss.")
@click.option("--param", "loss_params", multiple=True, metavar="K=V",
              help="Override a hyper-parameter of the loss's Table 1 preset, e.g. q=0.7.")
@click.option("--noise-kind", default="none", show_default=True,
              type=click.Choice(registry_names("dal_backdoor.data", "list_noise_kinds",
                                               ("none",))),
              help="Synthetic label noise (or real CIFAR-N labels).")
@click.option("--noise-rate", type=float, default=0.0, show_default=True,
              help="Noise rate in [0, 1).")
@click.option("--noise-param", multiple=True, metavar="K=V",
              help="Noise options: exclude_true=true, cifar_n_path=FILE, cifar_n_key=worse_label, "
              "labels_path=FILE.npy (kind file), features=raw|normalized (kind instance).")
@click.option("--noise-seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the label-noise draw, shared by all training seeds (as the "
              "authors' fixed label files); same as `dal-backdoor noise --seed`.")
@click.option("--trigger",
              type=click.Choice(registry_names("triggers", "list_triggers", ("none",))),
              default="none", show_default=True, help="Backdoor trigger stamped on the poisons.")
@click.option("--trigger-param", multiple=True, metavar="K=V", help="Trigger parameters.")
@click.option("--num-poison", type=int, default=None, show_default="100",
              help="Number of poisoned training images.")
@click.option("--poison-rate", type=float, default=None,
              help="Poison this fraction of the training set (after --train-subset) instead, "
              "in (0, 1), e.g. 0.01: rounded to the nearest count (halves up), at least 1; "
              "the run records the count. Not with --num-poison.")
@click.option("--target-class", type=int, default=7, show_default=True,
              help="Class the poisons are relabelled to.")
@click.option("--model", default="resnet18", show_default=True, metavar="NAME|MODULE:FUNCTION",
              help="Network: " + ", ".join(registry_names("dal_backdoor.models", "list_models"))
              + ", or your own as module:function (called as function(num_classes, *, "
              "in_channels, width, **model_params) -> nn.Module; module imported from "
              "sys.path or the current folder; its source's SHA-256 joins the run id).")
@click.option("--model-param", multiple=True, metavar="K=V",
              help="Keyword arguments of your own model function (module:function only).")
@click.option("--init", type=click.Choice(["pytorch", "torchvision"]), default="pytorch",
              show_default=True, help="Initialisation: pytorch (PyTorch's module defaults, as "
              "the authors' ResNet18) or torchvision (Kaiming-normal fan-out convolutions).")
@click.option("--width", type=int, default=64, show_default=True, help="ResNet base width.")
@click.option("--epochs", type=int, default=150, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--weight-decay", type=float, default=1e-4, show_default=True)
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Random crop (padding 4) + horizontal flip.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto",
              show_default=True,
              help="auto: bf16 autocast on CUDA, fp32 on CPU. bf16 on a CPU with AMX is ~3x "
              "faster but lowered CE's ASR in short runs (docs/BENCHMARKS.md).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="Memory format (default: on for CUDA; on the CPU from --width 16 up).")
@click.option("--compile/--no-compile", "compile_model", default=False, show_default=True,
              help="torch.compile the model (eager fallback for what fails to compile); "
              "a start-up cost that pays off in long runs.")
@click.option("--eval-batch-size", type=int, default=1000, show_default=True)
@click.option("--out", "out_dir", type=OutputPath("dir", entries=("*",)),
              required=True, help="Run directory: model, config, manifest, checkpoint.")
@click.option("--db", type=OutputPath("file"), default=default_db,
              show_default="results/results.db or $DAL_BACKDOOR_DB", help="Results store.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--keep-checkpoint", is_flag=True, help="Keep checkpoint.pt after the run ends.")
@click.option("--track", multiple=True,
              type=click.Choice(registry_names("dal_backdoor.tracking", "list_trackers")),
              help="Also log each epoch's metrics and the config to TensorBoard (--out/"
              "tensorboard) or MLflow ($MLFLOW_TRACKING_URI); repeatable. Needs "
              "pip install 'dal-backdoor[track]'.")
def command(**opts: Any) -> None:
    """Train one model (the paper's recipe by default) and record every epoch.

    Data preparation order: load -> label noise -> poisoning. Prints live progress (epoch and
    batch bars with clean accuracy and ASR) and a final summary; writes config.json,
    manifest.json, model.pt and metrics.json into --out and one row per epoch into --db.

    \b
    Example (small CPU run on Fashion-MNIST):
      dal-backdoor train --dataset fashion-mnist --train-subset 10000 --width 8 \\
        --epochs 8 --lr 0.05 --no-augment --loss dal --trigger local --out runs/dal
    Example (your image folder DIR/CLASS/*.png and your network in mynets.py):
      dal-backdoor train --dataset folder --dataset-param path=DIR \\
        --model mynets:build --trigger local --target-class 0 --out runs/mine
    """
    from dal_backdoor.cli.progress import RunProgress, summary_table
    from dal_backdoor.config import resolve_config
    from dal_backdoor.recorder import RunRecorder
    from dal_backdoor.store import check_store
    from dal_backdoor.tracking import check_available, create_trackers
    from dal_backdoor.train import fit

    track = check_available(opts["track"])  # a missing package: one line, before any work
    cfg = resolve_config(
        dataset=opts["dataset"], loss=opts["loss"],
        loss_overrides=parse_key_values(opts["loss_params"], "--param"),
        device=opts["device"], precision=opts["precision"], channels_last=opts["channels_last"],
        dataset_params=parse_key_values(opts["dataset_param"], "--dataset-param"),
        train_subset=opts["train_subset"], test_subset=opts["test_subset"],
        noise_kind=opts["noise_kind"], noise_rate=opts["noise_rate"],
        noise_params=parse_key_values(opts["noise_param"], "--noise-param"),
        noise_seed=opts["noise_seed"], init=opts["init"],
        trigger=opts["trigger"], trigger_params=parse_key_values(opts["trigger_param"],
                                                                 "--trigger-param"),
        num_poison=num_poison(opts), target_class=opts["target_class"], model=opts["model"],
        model_params=parse_key_values(opts["model_param"], "--model-param"),
        width=opts["width"], epochs=opts["epochs"], batch_size=opts["batch_size"],
        lr=opts["lr"], momentum=opts["momentum"], weight_decay=opts["weight_decay"],
        augment=opts["augment"], seed=opts["seed"], data_root=str(opts["root"]),
        eval_batch_size=opts["eval_batch_size"], compile=opts["compile_model"],
    )
    warn_high_poison_rate(cfg, opts)
    check_store(opts["db"])  # before anything is written
    if opts["download"]:
        from dal_backdoor.data import create_dataset

        for train in (True, False):
            create_dataset(cfg.dataset, cfg.data_root, train=train, download=True,
                           **cfg.dataset_params)
    set_interrupt_hint(f"the checkpoint of the last finished epoch is kept in {opts['out_dir']}; "
                       "resume with the same command plus --resume")
    header = (f"[bold]run[/] {cfg.run_id}  {cfg.dataset} / {cfg.loss} / trigger {cfg.trigger}"
              f" / noise {cfg.noise_kind} {cfg.noise_rate:g} / seed {cfg.seed}  on {cfg.device}"
              f" ({cfg.precision})")
    recorder = RunRecorder(opts["db"], cfg,  # one store connection for the whole run
                           observers=create_trackers(track, opts["out_dir"]))
    with RunProgress(console, header=header) as progress, recorder:
        result = fit(cfg, recorder, opts["out_dir"], resume=opts["resume"],
                     keep_checkpoint=opts["keep_checkpoint"], callbacks=progress.callbacks())
    if result.resumed_from == cfg.epochs:
        console.print("[yellow]run was already finished; showing its recorded result[/]")
    console.print(summary_table(result))
    console.print(f"wrote {result.out_dir}/ (config.json, model.pt, metrics.json"
                  f"{', manifest.json' if cfg.poisoned else ''}) and {opts['db']}")


def num_poison(opts: dict[str, Any]) -> int:
    """--num-poison, or --poison-rate resolved to a count of the training set after
    --train-subset (loading the training split only when no subset is given)."""
    from dal_backdoor.config import poison_count
    from dal_backdoor.errors import ConfigError

    count, rate = opts["num_poison"], opts["poison_rate"]
    if rate is None:
        return DEFAULT_NUM_POISON if count is None else count
    if count is not None:
        raise ConfigError(f"--num-poison {count} and --poison-rate {rate:g} exclude each "
                          "other; allowed: one of them")
    return poison_count(rate, num_train(opts))


def num_train(opts: dict[str, Any]) -> int:
    """The training-set size a run trains on: --train-subset, else the whole split."""
    if opts["train_subset"] is not None:
        return opts["train_subset"]
    from dal_backdoor.data import create_dataset

    params = parse_key_values(opts["dataset_param"], "--dataset-param")
    return len(create_dataset(opts["dataset"], str(opts["root"]), train=True,
                              download=opts["download"], **params))


def warn_high_poison_rate(cfg: Any, opts: dict[str, Any]) -> None:
    """Log a warning when the default poison count is a large share of a --train-subset."""
    from dal_backdoor.config import high_poison_rate_warning

    if not cfg.poisoned or opts["num_poison"] is not None or opts["poison_rate"] is not None:
        return
    if cfg.train_subset is not None:
        warning = high_poison_rate_warning(cfg.num_poison, cfg.train_subset)
        if warning:
            log.warning("default --num-poison: %s", warning)
