"""No command ever replaces what is not a regular file.

Every output path (table --out, plots, run folders and their files, the results store, sweep run
folders, poison output, noise plots) is pointed at a device node (``os.mknod``, when we are
root) or else a FIFO. Each command must refuse with one ``Error:`` line and exit 2, the node
must still be the same node, and nothing else in the folder may change.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import (
    TINY_DATA,
    TINY_TRAIN,
    assert_cli_error,
    invoke,
    make_node,
    make_table_store,
    snapshot,
)

SYNTH = TINY_DATA
TRAIN = TINY_TRAIN


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
    result = invoke(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    line = assert_cli_error(result)
    assert any(w in line for w in ("device", "FIFO")), line
    assert snapshot(tmp_path) == before, f"{name}: files changed"


def test_sweep_run_folder_of_a_real_run_id_is_checked(tmp_path: Path) -> None:
    """The run folder a sweep would write (runs/<run id>) is checked before anything."""
    from dal_backdoor.experiments import expand, parse_only

    (spec,) = expand("table6", "ci", device="cpu",
                     only=parse_only("loss=ce,trigger=local,seed=0")).specs
    (tmp_path / "runs" / spec.run_id).mkdir(parents=True)
    make_node(tmp_path / "runs" / spec.run_id / "checkpoint.pt")
    before = snapshot(tmp_path)
    result = invoke("sweep", "table6", "--preset", "ci", "--only",
                    "loss=ce,trigger=local,seed=0", "--db",
                    f"{tmp_path}/r.db", "--device", "cpu")
    assert result.exit_code == 2, result.output
    assert "checkpoint.pt" in result.output
    assert snapshot(tmp_path) == before


@pytest.mark.usefixtures("table_store")
def test_table_out_dash_prints_and_writes_nothing(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    result = invoke("table", "table6", "--preset", "ci", "--db",
                    f"{tmp_path}/r.db", "--format", "csv", "--out", "-")
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
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "empty path" in result.output
    assert list(tmp_path.iterdir()) == []
