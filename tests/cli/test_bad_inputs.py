"""The bad-input matrix: every case is ONE clear error line, exit code 2, no traceback, and
nothing written or changed under the working directory."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dal_backdoor.checkpoint import save_checkpoint
from dal_backdoor.cli import cli

TRAIN = ["train", "--dataset", "synthetic", "--dataset-param", "num_samples=200",
         "--dataset-param", "image_size=16", "--width", "4", "--epochs", "1",
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
    (tmp / "r.db").write_bytes(b"this is not an sqlite file at all" * 100)


def _foreign_db(tmp: Path) -> None:
    conn = sqlite3.connect(tmp / "r.db")
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()


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
    ("unknown model", train("--model", "vgg"), None, "'vgg' is not one of"),
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


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                       if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("name", "args", "setup", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input(tmp_path: Path, name: str, args: list[str],
                   setup: Callable[[Path], None] | None, expected: str) -> None:
    if setup is not None:
        setup(tmp_path)
    before = snapshot(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(cli, argv)
    output = result.output
    lines = [line for line in output.splitlines() if line.strip()]
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert len(lines) == 1, output
    assert lines[0].startswith("Error:"), output
    assert expected.lower() in lines[0].lower(), output
    assert snapshot(tmp_path) == before, f"{name}: files changed"


def test_matrix_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30
