"""The bad-input matrix: every case is ONE clear error line, exit code 2, no traceback, and
nothing written or changed under the working directory."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dal_backdoor.checkpoint import save_checkpoint
from tests.fakedata import write_image_folder
from tests.helpers import (
    TINY_DATA,
    assert_cli_error,
    execute_sql,
    invoke,
    make_node,
    make_table_store,
    snapshot,
    write_foreign_db,
    write_garbage_db,
)

TRAIN = ["train", *TINY_DATA, "--width", "4", "--epochs", "1",
         "--out", "{tmp}/run", "--db", "{tmp}/r.db", "--device", "cpu"]


def train(*extra: str) -> list[str]:
    return [*TRAIN, *extra]


def _corrupt_ckpt(tmp: Path) -> None:
    (tmp / "run").mkdir()
    (tmp / "run" / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")


def _truncated_ckpt(tmp: Path) -> None:
    save_checkpoint(tmp / "full.pt", {"run_id": "x", "epoch": 1, "w": torch.zeros(1000)})
    data = (tmp / "full.pt").read_bytes()
    (tmp / "run").mkdir()
    (tmp / "run" / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    (tmp / "full.pt").unlink()


def _foreign_ckpt(tmp: Path) -> None:
    save_checkpoint(tmp / "run" / "checkpoint.pt", {"run_id": "0123456789abcdef", "epoch": 1})


def _garbage_db(tmp: Path) -> None:
    write_garbage_db(tmp / "r.db")


def _foreign_db(tmp: Path) -> None:
    write_foreign_db(tmp / "r.db")


def _a_file(tmp: Path) -> None:
    (tmp / "blocker").write_text("a file where a directory is needed\n")


def _cifar_n_wrong_length(tmp: Path) -> None:
    from tests.fakedata import write_fake_cifar_n

    write_fake_cifar_n(tmp / "cifar_n.pt", torch.zeros(50, dtype=torch.int64))


def _no_run(tmp: Path) -> None:
    (tmp / "empty_run").mkdir()


CASES: list[tuple[str, list[str], Callable[[Path], None] | None, str]] = [
    ("unknown dataset", train("--dataset", "mnist"), None, "'mnist' is not one of"),
    ("unknown loss", train("--loss", "focal"), None, "'focal' is not one of"),
    ("unknown trigger", train("--trigger", "blend"), None, "'blend' is not one of"),
    ("unknown noise kind", train("--noise-kind", "pair"), None, "'pair' is not one of"),
    ("unknown model", train("--model", "vgg"), None,
     "unknown model 'vgg'; allowed: resnet18, resnet34, or your own as module:function"),
    ("epochs 0", train("--epochs", "0"), None, "epochs"),
    ("batch size 0", train("--batch-size", "0"), None, "batch_size"),
    ("negative lr", train("--lr", "-0.1"), None, "lr"),
    ("momentum 1.5", train("--momentum", "1.5"), None, "momentum"),
    ("negative weight decay", train("--weight-decay", "-1"), None, "weight_decay"),
    ("width 0", train("--width", "0"), None, "width"),
    ("negative seed", train("--seed", "-1"), None, "seed"),
    ("eval batch 0", train("--eval-batch-size", "0"), None, "eval_batch_size"),
    ("noise rate 1.5", train("--noise-kind", "symmetric", "--noise-rate", "1.5"), None,
     "noise_rate"),
    ("noise rate without kind", train("--noise-rate", "0.2"), None, "needs a noise kind"),
    ("unknown noise option", train("--noise-kind", "symmetric", "--noise-rate", "0.2",
                                   "--noise-param", "flip=1"), None, "unknown noise option"),
    ("num-poison above pool", train("--trigger", "local", "--num-poison", "5000"), None,
     "num_poison"),
    ("negative num-poison", train("--trigger", "local", "--num-poison", "-1"), None,
     "num_poison"),
    ("target class out of range", train("--trigger", "local", "--target-class", "10"), None,
     "target_class"),
    ("loss param out of range", train("--loss", "gce", "--param", "q=-1"), None, "q"),
    ("unknown loss param", train("--loss", "gce", "--param", "beta=1"), None, "beta"),
    ("malformed --param", train("--loss", "gce", "--param", "q"), None, "key=value"),
    ("trigger larger than image", train("--trigger", "local", "--trigger-param", "size=40"),
     None, "size"),
    ("unknown trigger param", train("--trigger", "local", "--trigger-param", "colour=1"), None,
     "colour"),
    ("bad dataset param", train("--dataset-param", "num_samples=0"), None, "num_samples"),
    ("train subset 0", train("--train-subset", "0"), None, "train_subset"),
    ("train subset above data", train("--train-subset", "5000"), None, "train_subset=5000"),
    ("missing CIFAR-10", [*train("--dataset", "cifar10", "--root", "{tmp}/nodata")], None,
     "cifar"),
    ("cuda without a GPU", train("--device", "cuda"), None, "no CUDA device"),
    ("unknown precision", train("--precision", "fp16"), None, "fp16"),
    ("corrupt checkpoint", train("--resume"), _corrupt_ckpt, "corrupt or truncated"),
    ("truncated checkpoint", train("--resume"), _truncated_ckpt, "corrupt or truncated"),
    ("checkpoint of another config", train("--resume"), _foreign_ckpt, "belongs to run"),
    ("corrupt results store", train(), _garbage_db, "not a results store"),
    ("foreign SQLite file", train(), _foreign_db, "another application"),
    ("output dir under a file", [*TRAIN[:-6], "--out", "{tmp}/blocker/run", "--db",
                                 "{tmp}/r.db", "--device", "cpu"], _a_file, "blocker"),
    ("results store under a file", [*TRAIN[:-6], "--out", "{tmp}/run", "--db",
                                     "{tmp}/blocker/r.db", "--device", "cpu"], _a_file,
     "blocker"),
    ("CIFAR-N file of the wrong length",
     train("--noise-kind", "cifar-n", "--noise-param", "cifar_n_path={tmp}/cifar_n.pt"),
     _cifar_n_wrong_length, "50"),
    ("CIFAR-N file missing",
     train("--noise-kind", "cifar-n", "--noise-param", "cifar_n_path={tmp}/none.pt"), None,
     "none.pt"),
    ("evaluate a directory without a run", ["evaluate", "{tmp}/empty_run"], _no_run,
     "no finished run"),
    ("sweep unknown grid", ["sweep", "table9", "--db", "{tmp}/r.db"], None,
     "'table9' is not one of"),
    ("sweep unknown --only value", ["sweep", "table6", "--only", "loss=focal", "--db",
                                    "{tmp}/r.db", "--dry-run"], None, "allowed: ce, gce, dal"),
    ("sweep jobs 0", ["sweep", "table6", "--jobs", "0", "--db", "{tmp}/r.db"], None, "jobs"),
    ("sweep bad --set", ["sweep", "table6", "--set", "epochs=0", "--db", "{tmp}/r.db",
                         "--dry-run"], None, "epochs"),
    ("table without a store", ["table", "table6", "--db", "{tmp}/none.db"], None,
     "no results store"),
    ("table --out with rich", ["table", "table6", "--db", "{tmp}/r.db", "--out",
                               "{tmp}/t.md"], _foreign_db, "--out needs --format"),
]

# -- issue 19: every class, not only its examples ---------------------------------------------

HUGE = "100000000000000000000"  # 1e20: overflows a C long
TINY_SWEEP = ["sweep", "table6", "--preset", "ci", "--only", "loss=ce,trigger=local,seed=0",
              "--set", "dataset=synthetic", "--set", "train_subset=500", "--set",
              "test_subset=200", "--set", "width=4", "--set", "epochs=1", "--device", "cpu",
              "--db", "{tmp}/r.db"]


def sweep(*extra: str) -> list[str]:
    return ["sweep", "table6", "--db", "{tmp}/r.db", "--dry-run", *extra]


def _node(tmp: Path) -> None:
    """A character device (root) or a FIFO named ``node``: never to be replaced."""
    make_node(tmp / "node")


def _table_store(tmp: Path) -> None:
    make_table_store(tmp / "r.db")


def _table_store_and_node(tmp: Path) -> None:
    _table_store(tmp)
    _node(tmp)


def _invalid_json_store(tmp: Path) -> None:
    _table_store(tmp)
    execute_sql(tmp / "r.db", "UPDATE runs SET final_metrics = '{\"clean_acc\": 0.5'")


def _corrupt_pages_store(tmp: Path) -> None:
    _table_store(tmp)
    data = bytearray((tmp / "r.db").read_bytes())
    for i in range(4096 + 100, len(data), 7):  # every page after the first (the header)
        data[i] ^= 0x5A
    (tmp / "r.db").write_bytes(bytes(data))


def _a_file_and_store(tmp: Path) -> None:
    _a_file(tmp)
    _table_store(tmp)


CASES += [
    # 1. outputs that are not regular files, empty output paths
    ("table --out on a device", ["table", "table6", "--preset", "ci", "--db", "{tmp}/r.db",
                                 "--format", "md", "--out", "{tmp}/node"],
     _table_store_and_node, "not a regular file"),
    ("train --out on a device", [*TRAIN[:-6], "--out", "{tmp}/node", "--db", "{tmp}/r.db",
                                 "--device", "cpu"], _node, "not a directory"),
    ("train --db on a device", [*TRAIN[:-6], "--out", "{tmp}/run", "--db", "{tmp}/node",
                                "--device", "cpu"], _node, "not a regular file"),
    ("sweep --db on a device", ["sweep", "table6", "--db", "{tmp}/node", "--dry-run"], _node,
     "not a regular file"),
    ("runs --db on a device", ["runs", "--db", "{tmp}/node"], _node, "not a results store"),
    ("empty train --out", [*TRAIN[:-6], "--out", "", "--db", "{tmp}/r.db"], None,
     "empty path"),
    ("empty table --out", ["table", "table6", "--db", "{tmp}/r.db", "--format", "md",
                           "--out", ""], _table_store, "empty path"),
    ("empty poison --out", ["poison", "--dataset", "synthetic", "--out", ""], None,
     "empty path"),
    ("empty noise --plot", ["noise", "--dataset", "synthetic", "--plot", ""], None,
     "empty path"),
    # 2. sizes that overflow, unknown keys, non-finite numbers, corrupt stores, memory
    ("width 1e20", train("--width", HUGE), None, f"width={HUGE} is not in [1, 4096]"),
    ("epochs 1e20", train("--epochs", HUGE), None, "epochs="),
    ("train subset 1e20", train("--train-subset", HUGE), None, "train_subset="),
    ("test subset 1e20", train("--test-subset", HUGE), None, "test_subset="),
    ("batch size 1e20", train("--batch-size", HUGE), None, "batch_size="),
    ("eval batch 1e20", train("--eval-batch-size", HUGE), None, "eval_batch_size="),
    ("seed 1e20", train("--seed", HUGE), None, "seed="),
    ("num-poison 1e20", train("--trigger", "local", "--num-poison", HUGE), None,
     "num_poison="),
    ("target class 1e20", train("--trigger", "local", "--target-class", HUGE), None,
     "target_class="),
    ("dataset param 1e20", train("--dataset-param", f"num_classes={HUGE}"), None,
     "num_classes="),
    ("poison seed 1e20", ["poison", "--dataset", "synthetic", "--out", "{tmp}/p", "--seed",
                          HUGE], None, "--seed"),
    ("noise seed 1e20", ["noise", "--dataset", "synthetic", "--seed", HUGE], None, "--seed"),
    ("evaluate batch 1e20", ["evaluate", "{tmp}/empty_run", "--batch-size", HUGE], _no_run,
     "batch_size="),
    ("sweep jobs 1e20", sweep("--jobs", HUGE), None, "--jobs"),
    ("unknown dataset param", train("--dataset-param", "colour=1"), None,
     "unknown option(s) colour of data set synthetic"),
    ("dataset param of a data set without options",
     train("--dataset", "fashion-mnist", "--root", "{tmp}/nodata"), None, "takes no options"),
    ("sweep --set unknown key", sweep("--set", "colour=1"), None, "unknown run setting"),
    ("sweep --set loss", sweep("--set", "loss=dal"), None, "'loss' axis"),
    ("sweep --set trigger", sweep("--set", "trigger=global"), None, "'trigger' axis"),
    ("sweep --set noise rate on a noise grid", ["sweep", "table2", "--db", "{tmp}/r.db",
                                                "--dry-run", "--set", "noise_rate=0.1"],
     None, "'noise' axis"),
    ("sweep --set a mapping", sweep("--set", "dataset_params=5"), None,
     "set one option as dataset_params.NAME=VALUE"),
    ("sweep --set a dotted non-mapping", sweep("--set", "epochs.x=5"), None,
     "allowed with a dot: dataset_params.NAME"),
    ("sweep --set a trigger option the trigger lacks",
     sweep("--only", "trigger=local", "--set", "trigger_params.amplitude=0.1"), None,
     "local trigger has no parameter 'amplitude'"),
    ("sweep --set a loss option the loss lacks",
     sweep("--only", "loss=gce", "--set", "loss_params.gamma=2"), None,
     "loss gce: unknown hyper-parameter 'gamma'; allowed: q"),
    ("sweep --set device", sweep("--set", "device=cpu"), None, "use --device"),
    ("sweep --set wrong type", sweep("--set", "epochs=abc"), None, "is not an integer"),
    ("sweep --set float for int", sweep("--set", "width=2.5"), None, "is not an integer"),
    ("NaN trigger param", train("--trigger", "global", "--trigger-param", "amplitude=nan"),
     None, "not a finite number"),
    ("inf trigger param", train("--trigger", "local", "--trigger-param", "size=inf"), None,
     "not a finite number"),
    ("NaN loss param", train("--loss", "gce", "--param", "q=nan"), None,
     "not a finite number"),
    ("-inf sweep --set", sweep("--set", "lr=-inf"), None, "not a finite number"),
    ("inf lr", train("--lr", "inf"), None, "lr=inf is not finite"),
    ("NaN noise rate", train("--noise-kind", "symmetric", "--noise-rate", "nan"), None,
     "noise_rate=nan"),
    ("data set too large for memory", ["train", "--dataset", "synthetic", *TRAIN[7:],
                                       "--dataset-param", "image_size=512",
                                       "--dataset-param", "num_samples=1000000000"],
     None, "GiB of memory"),
    ("invalid JSON in the store (runs)", ["runs", "--db", "{tmp}/r.db"], _invalid_json_store,
     "holds invalid JSON"),
    ("invalid JSON in the store (table)", ["table", "table6", "--preset", "ci", "--db",
                                           "{tmp}/r.db"], _invalid_json_store,
     "holds invalid JSON"),
    ("corrupt pages in the store (runs)", ["runs", "--db", "{tmp}/r.db"],
     _corrupt_pages_store, "r.db"),
    ("corrupt pages in the store (table)", ["table", "table6", "--preset", "ci", "--db",
                                            "{tmp}/r.db"], _corrupt_pages_store, "r.db"),
    ("corrupt pages in the store (train)", train(), _corrupt_pages_store, "r.db"),
    ("corrupt pages in the store (sweep)", sweep(), _corrupt_pages_store, "r.db"),
    # 3. wrong input that used to be accepted silently
    ("boolean 'maybe'", train("--noise-kind", "symmetric", "--noise-rate", "0.2",
                              "--noise-param", "exclude_true=maybe"), None,
     "exclude_true='maybe' is not a boolean"),
    ("boolean '2'", train("--noise-kind", "symmetric", "--noise-rate", "0.2",
                          "--noise-param", "exclude_true=2"), None, "is not a boolean"),
    ("sweep --set boolean 'maybe'", sweep("--set", "augment=maybe"), None,
     "augment='maybe' is not a boolean"),
    ("--trigger-param without --trigger", ["evaluate", "{tmp}/empty_run", "--trigger-param",
                                           "size=5"], _no_run, "needs --trigger"),
    ("sweep --set seed", sweep("--set", "seed=5"), None, "--seeds"),
    ("sweep --seeds reversed", sweep("--seeds", "4-0"), None, "--seeds"),
    ("sweep --seeds twice", sweep("--seeds", "0-2,2"), None, "twice"),
    ("sweep --seeds not a number", sweep("--seeds", "a"), None, "--seeds"),
    ("sweep --seeds negative", sweep("--seeds", "-1"), None, "--seeds"),
    ("a key given twice", train("--loss", "gce", "--param", "q=0.7", "--param", "q=0.5"), None,
     "given twice"),
    # 5. nothing left behind
    ("sweep --dry-run of cells that would all fail",
     [*TINY_SWEEP, "--set", "num_poison=480", "--dry-run"], None, "num_poison"),
    ("sweep of cells that would all fail", [*TINY_SWEEP, "--set", "num_poison=480"], None,
     "num_poison"),
    ("sweep --dry-run with a target class the data lacks",
     [*TINY_SWEEP, "--set", "target_class=10", "--dry-run"], None, "target_class=10"),
    ("sweep with an unusable store leaves no runs folder", TINY_SWEEP, _garbage_db,
     "not a results store"),
    ("sweep with a foreign store", TINY_SWEEP, _foreign_db, "another application"),
    ("table --plot under a file", ["table", "table6", "--preset", "ci", "--db", "{tmp}/r.db",
                                   "--format", "md", "--plot", "{tmp}/blocker/plots"],
     _a_file_and_store, "blocker"),
    ("train store under a file with a valid --out",
     [*TRAIN[:-6], "--out", "{tmp}/run", "--db", "{tmp}/blocker/sub/r.db", "--device", "cpu"],
     _a_file, "cannot be created"),
]

# -- a researcher's own data and model (issue 18) -------------------------------------------------

OWN = ["train", "--width", "2", "--epochs", "1", "--out", "{tmp}/run", "--db", "{tmp}/r.db",
       "--device", "cpu"]


def own(*extra: str) -> list[str]:
    return [*OWN, *extra]


def _empty_folder(tmp: Path) -> None:
    (tmp / "imgs").mkdir()


def _mixed_size_folder(tmp: Path) -> None:
    write_image_folder(tmp / "imgs", {"a": 2, "b": 2})
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp / "imgs" / "b" / "small.png")


def _image_folder(tmp: Path) -> None:
    write_image_folder(tmp / "imgs")


def _float_npz(tmp: Path) -> None:
    np.savez(tmp / "d.npz", images=np.zeros((4, 8, 8), np.float32), labels=np.arange(4) % 2)


def _npz_without_labels(tmp: Path) -> None:
    np.savez(tmp / "d.npz", images=np.zeros((4, 8, 8), np.uint8))


CASES += [
    ("folder that does not exist", own("--dataset", "folder", "--root", "{tmp}/none"), None,
     "none does not exist; allowed: a folder of class folders"),
    ("folder without classes", own("--dataset", "folder", "--dataset-param", "path={tmp}/imgs"),
     _empty_folder, "has 0 class(es) (none); allowed: at least 2"),
    ("folder of images of two sizes", own("--dataset", "folder", "--root", "{tmp}/imgs"),
     _mixed_size_folder, "images differ in size: a/000.png is 8x8, b/small.png is 4x4"),
    ("folder with an unknown option", own("--dataset", "folder", "--root", "{tmp}/imgs",
                                          "--dataset-param", "size=8"), _image_folder,
     "unknown option(s) size of data set folder"),
    ("folder with test_fraction 0", own("--dataset", "folder", "--root", "{tmp}/imgs",
                                        "--dataset-param", "test_fraction=0"), _image_folder,
     "test_fraction=0 is not in (0, 1)"),
    ("folder target class the data lacks", own("--dataset", "folder", "--root", "{tmp}/imgs",
                                               "--trigger", "local", "--target-class", "3"),
     _image_folder, "target_class=3 is out of range; allowed: integers in [0, 2]"),
    ("npz that does not exist", own("--dataset", "npz", "--root", "{tmp}/none.npz"), None,
     "none.npz does not exist; allowed: an .npz file"),
    ("npz of float images", own("--dataset", "npz", "--root", "{tmp}/d.npz"), _float_npz,
     "array 'images' has dtype float32; allowed: uint8"),
    ("npz without labels", own("--dataset", "npz", "--root", "{tmp}/d.npz"),
     _npz_without_labels, "has images/labels without labels"),
    ("npz given a folder", own("--dataset", "npz", "--root", "{tmp}"), None,
     "is not a file; allowed: an .npz file"),
    ("model module not found", train("--model", "no_such_module_q7:build"), None,
     "model module 'no_such_module_q7' cannot be imported"),
    ("model reference malformed", train("--model", "a:b:c"), None,
     "model 'a:b:c' is not a registered name or module:function"),
    ("model params for resnet18", train("--model-param", "depth=3"), None,
     "model resnet18 takes no model params; got depth"),
]


# -- issue 18: exports (runs/evaluate --format, export) and --track -------------------------------


def _store_and_no_run(tmp: Path) -> None:
    _table_store(tmp)
    _no_run(tmp)


def _no_run_and_node(tmp: Path) -> None:
    _no_run(tmp)
    _node(tmp)


def export(*extra: str) -> list[str]:
    return ["export", "--db", "{tmp}/r.db", *extra]


CASES += [
    ("runs bad --format", ["runs", "--db", "{tmp}/r.db", "--format", "xml"], _table_store,
     "'xml' is not one of 'rich', 'json', 'csv'"),
    ("runs --out with rich", ["runs", "--db", "{tmp}/r.db", "--out", "{tmp}/runs.csv"],
     _table_store, "--out needs --format json or csv"),
    ("runs --out on a device", ["runs", "--db", "{tmp}/r.db", "--format", "csv", "--out",
                                "{tmp}/node"], _table_store_and_node, "not a regular file"),
    ("runs --out under a file", ["runs", "--db", "{tmp}/r.db", "--format", "json", "--out",
                                 "{tmp}/blocker/runs.json"], _a_file_and_store, "blocker"),
    ("runs --out empty", ["runs", "--db", "{tmp}/r.db", "--format", "json", "--out", ""],
     _table_store, "empty path"),
    ("runs json of an unknown run id", ["runs", "--db", "{tmp}/r.db", "--format", "json",
                                        "--run", "zzz"], _table_store, "no run 'zzz'"),
    ("evaluate bad --format", ["evaluate", "{tmp}/empty_run", "--format", "xml"], _no_run,
     "'xml' is not one of 'rich', 'json', 'csv'"),
    ("evaluate --out with rich", ["evaluate", "{tmp}/empty_run", "--out", "{tmp}/e.csv"],
     _no_run, "--out needs --format json or csv"),
    ("evaluate --out on a device", ["evaluate", "{tmp}/empty_run", "--format", "json",
                                    "--out", "{tmp}/node"], _no_run_and_node,
     "not a regular file"),
    ("evaluate --out under a file", ["evaluate", "{tmp}/empty_run", "--format", "csv",
                                     "--out", "{tmp}/blocker/e.csv"], _a_file, "blocker"),
    ("export bad --format", export("--format", "xlsx"), _table_store,
     "'xlsx' is not one of 'csv', 'json'"),
    ("export unknown run id", export("--run", "zzz"), _table_store, "no run 'zzz'"),
    ("export unknown grid", export("--grid", "table9"), _table_store,
     "no runs of grid table9 with preset small"),
    ("export grid of another preset", export("--grid", "table6", "--preset", "paper"),
     _table_store, "allowed: table6/ci"),
    ("export --grid with --run", export("--grid", "table6", "--run", "r0"), _table_store,
     "--grid and --run cannot be combined"),
    ("export --preset without --grid", export("--preset", "ci"), _table_store,
     "--preset needs --grid"),
    ("export without a store", ["export", "--db", "{tmp}/none.db"], None, "no results store"),
    ("export of a corrupt store", export(), _garbage_db, "not a results store"),
    ("export --out on a device", export("--out", "{tmp}/node"), _table_store_and_node,
     "not a regular file"),
    ("export --out under a file", export("--out", "{tmp}/blocker/e.csv"), _a_file_and_store,
     "blocker"),
    ("export --out empty", export("--out", ""), _table_store, "empty path"),
    ("export --out a directory", export("--out", "{tmp}/empty_run"), _store_and_no_run,
     "a directory"),
    ("train unknown --track", train("--track", "wandb"), None, "'wandb' is not one of"),
    ("sweep unknown --track", sweep("--track", "wandb"), None, "'wandb' is not one of"),
]


# -- issue 18: user grids (sweep --grid-file / --axis) and table of them, table --compare ------

USER_GRID = 'name = "mine"\n[fixed]\ndataset = "synthetic"\n[axes]\nloss = ["ce", "dal"]\n'


def _grid_file(text: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / "g.toml").write_text(text)
    return setup


def _user_grid_store(tmp: Path) -> None:
    from dal_backdoor.store import ResultsStore

    with ResultsStore(tmp / "r.db") as store:
        store.tag_run("u0", "mine", "small", {"loss": "ce", "seed": 0})
        store.start_run("u0", {"dataset": "fashion-mnist", "loss": "ce", "seed": 0}, {})
        store.finish_run("u0", {"clean_acc": 0.5})


def grid_sweep(*extra: str) -> list[str]:
    return ["sweep", "--grid-file", "{tmp}/g.toml", "--db", "{tmp}/r.db", "--dry-run", *extra]


CASES += [
    ("sweep --grid-file missing", grid_sweep(), None, "grid file {tmp}/g.toml does not exist"),
    ("sweep --grid-file not TOML", grid_sweep(), _grid_file("name = "), "is not valid TOML"),
    ("sweep --grid-file unknown setting", grid_sweep(),
     _grid_file('name = "g"\n[axes]\nlos = ["ce"]'), "unknown run setting 'los'"),
    ("sweep --grid-file unknown loss", grid_sweep(),
     _grid_file('name = "g"\n[axes]\nloss = ["ce", "focal"]'), "focal"),
    ("sweep --grid-file seed axis", grid_sweep(),
     _grid_file('name = "g"\n[axes]\nseed = [0, 1]'), "seeds = [...]"),
    ("sweep --grid-file built-in name", grid_sweep(),
     _grid_file('name = "table6"\n[axes]\nloss = ["ce"]'), "built-in grid's"),
    ("sweep --grid-file --set of an axis", grid_sweep("--set", "loss=gce"),
     _grid_file(USER_GRID), "set by the 'loss' axis of grid mine"),
    ("sweep --grid-file --set unknown key", grid_sweep("--set", "colour=1"),
     _grid_file(USER_GRID), "unknown run setting 'colour'"),
    ("sweep --grid-file too many poisons", grid_sweep("--set", "trigger=local", "--set",
                                                      "num_poison=100000", "--set",
                                                      "train_subset=none"),
     _grid_file(USER_GRID), "num_poison"),
    ("sweep GRID and --grid-file", [*grid_sweep()[:1], "table6", *grid_sweep()[1:]],
     _grid_file(USER_GRID), "not both"),
    ("sweep without GRID", ["sweep", "--db", "{tmp}/r.db"], None, "missing GRID"),
    ("sweep custom without --axis", sweep()[:1] + ["custom", "--db", "{tmp}/r.db"], None,
     "needs at least one --axis"),
    ("sweep --axis without values", sweep("--axis", "loss"), None, "is not KEY=V1,V2"),
    ("sweep --axis unknown key", sweep("--axis", "colour=1,2"), None,
     "--axis colour: unknown run setting 'colour'"),
    ("sweep --axis twice", sweep("--axis", "width=2", "--axis", "width=4"), None,
     "given twice"),
    ("sweep --axis bad value", sweep("--axis", "width=4,0", "--set", "dataset=synthetic"),
     None, "width=0 is not in [1, 4096]"),
    ("sweep --axis not an integer", sweep("--axis", "epochs=1,x"), None,
     "epochs='x' is not an integer"),
    ("sweep --axis seed", sweep("--axis", "seed=1,2"), None, "--seeds"),
    ("sweep --axis and --set of it", sweep("--axis", "width=2,4", "--set", "width=8"), None,
     "set by the 'width' axis"),
    ("sweep --name on a built-in grid", sweep("--name", "x"), None, "--name names a user grid"),
    ("sweep --name of a built-in grid", sweep("--axis", "width=2", "--name", "table2"), None,
     "built-in grid's"),
    ("table of an unknown grid", ["table", "nosuch", "--db", "{tmp}/r.db"], _table_store,
     "has no runs of grid nosuch with preset small; it has: table6 (preset ci)"),
    ("table without GRID", ["table", "--db", "{tmp}/r.db"], _table_store, "missing GRID"),
    ("table --rows of a built-in grid", ["table", "table6", "--db", "{tmp}/r.db", "--rows",
                                         "loss"], _table_store, "lay out a user grid's table"),
    ("table --rows not an axis", ["table", "mine", "--db", "{tmp}/r.db", "--rows", "width"],
     _user_grid_store, "'width' is not an axis of the grid; allowed: loss"),
    ("table --grid-file missing", ["table", "--grid-file", "{tmp}/g.toml", "--db",
                                   "{tmp}/r.db"], _table_store, "does not exist"),
    ("table --compare the same table", ["table", "table6", "--preset", "ci", "--db",
                                        "{tmp}/r.db", "--compare", "{tmp}/r.db"],
     _table_store, "name the same table"),
    ("table --compare a missing store", ["table", "table6", "--preset", "ci", "--db",
                                         "{tmp}/r.db", "--compare", "{tmp}/none.db"],
     _table_store, "no results store at {tmp}/none.db"),
    ("table --compare as latex", ["table", "table6", "--preset", "ci", "--db", "{tmp}/r.db",
                                  "--compare-preset", "small", "--format", "latex"],
     _table_store, "cannot show a comparison"),
    ("table --compare with --plot", ["table", "table6", "--preset", "ci", "--db",
                                     "{tmp}/r.db", "--compare-preset", "small", "--plot",
                                     "{tmp}/plots"], _table_store, "--plot draws one table"),
]


@pytest.mark.parametrize(("name", "args", "setup", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input(tmp_path: Path, name: str, args: list[str],
                   setup: Callable[[Path], None] | None, expected: str) -> None:
    if setup is not None:
        setup(tmp_path)
    before = snapshot(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = invoke(*argv)
    line = assert_cli_error(result)
    expected = expected.replace("{tmp}", str(tmp_path))
    assert expected.lower() in line.lower(), result.output
    assert snapshot(tmp_path) == before, f"{name}: files changed"


def test_matrix_has_at_least_100_cases() -> None:
    assert len(CASES) >= 100
    assert len({c[0] for c in CASES}) == len(CASES)  # unique ids


def test_table_plot_without_matplotlib_prints_nothing_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _table_store(tmp_path)
    before = snapshot(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = invoke("table", "table6", "--preset", "ci", "--db",
                    f"{tmp_path}/r.db", "--plot", f"{tmp_path}/plots")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == ("Error: --plot needs matplotlib: pip install "
                                     "'dal-backdoor[plot]'")
    assert snapshot(tmp_path) == before


def test_negative_zero_gives_the_run_id_of_zero(tmp_path: Path) -> None:
    """-0.0 on the command line is the same experiment as 0.0 (same run id, same config)."""
    ids = []
    for rate in ("0.0", "-0.0"):
        result = invoke("sweep", "table6", "--preset", "ci", "--db",
                        f"{tmp_path}/r.db", "--dry-run", "--only",
                        "loss=ce,trigger=local,seed=0", "--set",
                        f"weight_decay={rate}", "--set", "dataset=synthetic")
        assert result.exit_code == 0, result.output
        ids.append(result.output.split("│")[1].strip() if "│" in result.output
                   else result.output)
    assert ids[0] == ids[1]
    from dal_backdoor.cli.common import parse_key_values

    value = parse_key_values(("x=-0.0",), "--set")["x"]
    assert value == 0.0
    assert str(value) == "0.0"


def test_sweep_seeds_are_an_axis(tmp_path: Path) -> None:
    from dal_backdoor.experiments import expand, parse_only, parse_seeds

    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,2,5") == (0, 2, 5)
    assert parse_seeds("0-1,7") == (0, 1, 7)
    assert parse_seeds(None) is None
    specs = expand("table6", "ci", device="cpu", only=parse_only("loss=ce,trigger=local"),
                   seeds=parse_seeds("0-4")).specs
    assert [s.config.seed for s in specs] == [0, 1, 2, 3, 4]
    assert [s.cell["seed"] for s in specs] == [0, 1, 2, 3, 4]
    assert len({s.run_id for s in specs}) == 5
    result = invoke("sweep", "table6", "--preset", "ci", "--db",
                    f"{tmp_path}/r.db", "--dry-run", "--only",
                    "loss=ce,trigger=local", "--seeds", "3,7",
                    "--set", "dataset=synthetic")
    assert result.exit_code == 0, result.output
    assert "2 runs" in result.output
    assert "seed=3" in result.output
    assert "seed=7" in result.output
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing
