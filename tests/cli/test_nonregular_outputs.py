"""No command ever replaces what is not a regular file.

Every output path (table --out, plots, run folders and their files, the results store, sweep run
folders, poison output, noise plots) is pointed at a device node (``os.mknod``, when we are
root) or else a FIFO. Each command must refuse with one ``Error:`` line and exit 2, the node
must still be the same node, and nothing else in the folder may change.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from dal_backdoor.cli import cli
from dal_backdoor.store import ResultsStore

SYNTH = ["--dataset", "synthetic", "--dataset-param", "num_samples=200",
         "--dataset-param", "image_size=16"]
TRAIN = ["train", *SYNTH, "--width", "4", "--epochs", "1", "--device", "cpu"]
CELL = {"dataset": "cifar10", "loss": "ce", "trigger": "local", "seed": 0}


def make_node(path: Path) -> str:
    """A character device (a copy of /dev/null's numbers) when root, else a FIFO."""
    if os.geteuid() == 0:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
            return "character device"
        except OSError:
            pass
    try:
        os.mkfifo(path)
    except (OSError, AttributeError):
        pytest.skip("cannot make a device node or a FIFO here")
    return "FIFO"


def make_table_store(path: Path) -> Path:
    """A valid store holding one finished, tagged table6/ci run (no training needed)."""
    with ResultsStore(path) as store:
        store.tag_run("r0", "table6", "ci", CELL)
        store.start_run("r0", {"dataset": "fashion-mnist", "loss": "ce", "trigger": "local",
                               "seed": 0, "epochs": 1}, {})
        store.record_epoch("r0", 1, {"clean_acc": 0.5, "asr": 0.25})
        store.finish_run("r0", {"clean_acc": 0.5, "asr": 0.25})
    return path


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every entry's mode and, for regular files, content hash (nodes are never opened)."""
    out = {}
    for p in sorted(root.rglob("*")):
        mode = os.lstat(p).st_mode
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(mode) else ""
        out[str(p.relative_to(root))] = (mode, digest)
    return out


def _store(tmp: Path) -> None:
    make_table_store(tmp / "r.db")


def _node_in(folder: str, name: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / folder).mkdir()
        make_node(tmp / folder / name)
    return setup


def _node(name: str) -> Callable[[Path], None]:
    return lambda tmp: make_node(tmp / name)


def _store_and(then: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        _store(tmp)
        then(tmp)
    return setup


CASES: list[tuple[str, list[str], Callable[[Path], None]]] = [
    ("table --out", ["table", "table6", "--preset", "ci", "--db", "{tmp}/r.db", "--format",
                     "md", "--out", "{tmp}/node"], _store_and(_node("node"))),
    ("table --plot folder", ["table", "table6", "--preset", "ci", "--db", "{tmp}/r.db",
                             "--format", "md", "--plot", "{tmp}/node"], _store_and(_node("node"))),
    ("table --plot file", ["table", "table6", "--preset", "ci", "--db", "{tmp}/r.db",
                           "--format", "md", "--plot", "{tmp}/plots"],
     _store_and(_node_in("plots", "table6_clean_acc.png"))),
    ("train --out", [*TRAIN, "--out", "{tmp}/node", "--db", "{tmp}/r.db"], _node("node")),
    ("train model.pt", [*TRAIN, "--out", "{tmp}/run", "--db", "{tmp}/r.db"],
     _node_in("run", "model.pt")),
    ("train config.json", [*TRAIN, "--out", "{tmp}/run", "--db", "{tmp}/r.db"],
     _node_in("run", "config.json")),
    ("train --db", [*TRAIN, "--out", "{tmp}/run", "--db", "{tmp}/node"], _node("node")),
    ("sweep --db", ["sweep", "table6", "--preset", "ci", "--db", "{tmp}/node", "--dry-run"],
     _node("node")),
    ("sweep --runs-dir", ["sweep", "table6", "--preset", "ci", "--db", "{tmp}/r.db",
                          "--runs-dir", "{tmp}/node", "--dry-run"], _node("node")),
    ("sweep runs folder entry", ["sweep", "table6", "--preset", "ci", "--db", "{tmp}/r.db",
                                 "--runs-dir", "{tmp}/runs", "--dry-run"],
     _node_in("runs", "ffff0000ffff0000")),
    ("poison --out", ["poison", *SYNTH, "--out", "{tmp}/node"], _node("node")),
    ("poison manifest", ["poison", *SYNTH, "--out", "{tmp}/p"], _node_in("p", "manifest.json")),
    ("poison preview", ["poison", *SYNTH, "--out", "{tmp}/p"], _node_in("p", "preview.png")),
    ("noise --plot", ["noise", *SYNTH, "--rate", "0.2", "--plot", "{tmp}/node"], _node("node")),
    ("runs --db", ["runs", "--db", "{tmp}/node"], _node("node")),
    ("table --db", ["table", "table6", "--db", "{tmp}/node"], _node("node")),
]


@pytest.mark.parametrize(("name", "args", "setup"), CASES, ids=[c[0] for c in CASES])
def test_never_replaces_a_non_regular_file(tmp_path: Path, name: str, args: list[str],
                                           setup: Callable[[Path], None]) -> None:
    setup(tmp_path)
    before = snapshot(tmp_path)
    nodes = {k for k, (mode, _) in before.items() if not stat.S_ISREG(mode)
             and not stat.S_ISDIR(mode)}
    assert nodes
    result = CliRunner().invoke(cli, [a.replace("{tmp}", str(tmp_path)) for a in args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    assert any(w in lines[0] for w in ("device", "FIFO")), lines[0]
    assert snapshot(tmp_path) == before, f"{name}: files changed"


def test_sweep_run_folder_of_a_real_run_id_is_checked(tmp_path: Path) -> None:
    """The run folder a sweep would write (runs/<run id>) is checked before anything."""
    from dal_backdoor.experiments import expand, parse_only

    (spec,) = expand("table6", "ci", device="cpu",
                     only=parse_only("loss=ce,trigger=local,seed=0")).specs
    (tmp_path / "runs" / spec.run_id).mkdir(parents=True)
    make_node(tmp_path / "runs" / spec.run_id / "checkpoint.pt")
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, ["sweep", "table6", "--preset", "ci", "--only",
                                      "loss=ce,trigger=local,seed=0", "--db",
                                      f"{tmp_path}/r.db", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "checkpoint.pt" in result.output
    assert snapshot(tmp_path) == before


def test_table_out_dash_prints_and_writes_nothing(tmp_path: Path) -> None:
    make_table_store(tmp_path / "r.db")
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, ["table", "table6", "--preset", "ci", "--db",
                                      f"{tmp_path}/r.db", "--format", "csv", "--out", "-"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("row,") or "," in result.output.splitlines()[0]
    assert "wrote" not in result.output
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args", [
    ["table", "table6", "--format", "md", "--out", ""],
    ["poison", *SYNTH, "--out", ""],
    ["noise", *SYNTH, "--plot", ""],
    [*TRAIN, "--out", ""],
])
def test_empty_output_path_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "empty path" in result.output
    assert list(tmp_path.iterdir()) == []
