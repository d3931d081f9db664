from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from dal_backdoor.store import ResultsStore
from tests import helpers
from tests.helpers import output_lines, write_foreign_db, write_garbage_db

PROV = {"git_commit": "0123abcd", "versions": {"torch": "2.3.0", "cuda": "12.1"},
        "device_name": "NVIDIA H100 80GB HBM3", "host": "gpu-node-7"}


def config(loss: str, trigger: str, seed: int, **extra: object) -> dict[str, object]:
    return {"dataset": "cifar10", "loss": loss, "noise_kind": "none", "noise_rate": 0.0,
            "trigger": trigger, "num_poison": 100, "target_class": 7, "seed": seed,
            "epochs": 150, **extra}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "results.db"
    with ResultsStore(path) as s:
        s.start_run("aaaa1111bbbb2222", config("dal", "local", 0), PROV)
        for epoch in (1, 2, 3):
            s.record_epoch("aaaa1111bbbb2222", epoch, {"train_loss": 1.5 / epoch,
                                                       "clean_acc": 0.5 + epoch / 10,
                                                       "asr": 0.125 * epoch, "q": 0.85})
        s.finish_run("aaaa1111bbbb2222", {"clean_acc": 0.9312, "asr": 0.0042, "asr_true": 0.004,
                                          "robust_acc": 0.9})
        s.start_run("cccc3333dddd4444", config("gce", "global", 1, noise_kind="symmetric",
                                               noise_rate=0.4), PROV)
        s.record_epoch("cccc3333dddd4444", 1, {"train_loss": 2.0})
        s.fail_run("cccc3333dddd4444", "RuntimeError: CUDA out of memory [oom]")
        s.start_run("aaaa9999eeee5555", {"loss": "ce"}, {})  # a sparse config: '-' everywhere
    return path


def invoke(*args: str) -> Result:
    return helpers.invoke("runs", *args)


def cells(line: str) -> list[str]:
    """The words of a table line without rich's box-drawing characters."""
    return [word for word in line.split() if word not in {"│", "┃"}]


def test_lists_all_runs(db: Path) -> None:
    result = invoke("--db", str(db))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "3 run(s) in" in out
    row1 = next(line for line in output_lines(out) if line.lstrip().startswith("aaaa1111"))
    assert row1.split() == ["aaaa1111", "cifar10", "dal", "local", "-", "0", "3/150",
                            "finished", "93.12", "0.42", *row1.split()[10:12], "H100", "80GB",
                            "HBM3"]
    row2 = next(line for line in output_lines(out) if line.lstrip().startswith("cccc3333"))
    assert row2.split()[:10] == ["cccc3333", "cifar10", "gce", "global", "symmetric", "0.4",
                                 "1", "1/150", "failed", "-"]
    row3 = next(line for line in output_lines(out) if line.lstrip().startswith("aaaa9999"))
    assert row3.split()[:10] == ["aaaa9999", "-", "ce", "-", "-", "-", "-/-", "running", "-",
                                 "-"]


def test_status_filter_and_env_default(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAL_BACKDOOR_DB", str(db))
    result = invoke("--status", "failed")
    assert result.exit_code == 0, result.output
    assert "1 failed run(s)" in result.output
    assert "cccc3333" in result.output
    assert "aaaa1111" not in result.output
    result = invoke("--status", "running")
    assert "aaaa9999" in result.output
    assert "cccc3333" not in result.output


def test_run_details(db: Path) -> None:
    result = invoke("--db", str(db), "--run", "aaaa1111")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "run aaaa1111bbbb2222" in out
    assert "finished" in out
    for text in ("dataset", "cifar10", "target_class", "0123abcd", "gpu-node-7",
                 "version torch", "2.3.0", "93.12%", "0.42%", "90.00%"):
        assert text in out, text
    header = next(line for line in output_lines(out) if "train_loss" in line)
    assert cells(header) == ["epoch", "train_loss", "clean_acc", "asr", "q"]
    rows = [cells(line) for line in output_lines(out)]
    epoch_rows = [row for row in rows if len(row) == 5 and row[0] in {"1", "2", "3"}]
    assert epoch_rows == [["1", "1.5000", "60.00%", "12.50%", "0.85"],
                          ["2", "0.7500", "70.00%", "25.00%", "0.85"],
                          ["3", "0.5000", "80.00%", "37.50%", "0.85"]]


def test_failed_run_details_show_error(db: Path) -> None:
    result = invoke("--db", str(db), "--run", "cccc3333dddd4444")
    assert result.exit_code == 0, result.output
    assert "RuntimeError: CUDA out of memory [oom]" in result.output
    assert "symmetric" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--run", "zzz"), "no run 'zzz' in"),
        (("--run", "aaaa"), "run id prefix 'aaaa' is ambiguous: aaaa1111bbbb2222, "
                            "aaaa9999eeee5555"),
        (("--run", "aaaa1111", "--status", "failed"), "--run and --status cannot be combined"),
    ],
)
def test_bad_run_arguments(db: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke("--db", str(db), *args)
    assert result.exit_code == 2
    assert len(output_lines(result.output)) == 1
    assert message in result.output


def test_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    ResultsStore(path).close()
    result = invoke("--db", str(path))
    assert result.exit_code == 0
    assert "no runs recorded in" in result.output


def test_missing_db_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = invoke("--db", str(missing))
    assert result.exit_code == 2
    lines = output_lines(result.output)
    assert len(lines) == 1
    assert "no results store at" in lines[0]
    assert "nope.db" in result.output
    assert "Traceback" not in result.output
    assert not missing.exists()


def test_bad_files_are_one_line_exit_2(tmp_path: Path) -> None:
    garbage = write_garbage_db(tmp_path / "garbage.db", b"this is not a database")
    foreign = write_foreign_db(tmp_path / "foreign.db", "users (id INTEGER)")
    for path, message in ((garbage, "not an SQLite database"),
                          (foreign, "another application")):
        result = invoke("--db", str(path))
        assert result.exit_code == 2, result.output
        assert len(output_lines(result.output)) == 1
        assert message in result.output
        assert "Traceback" not in result.output


def test_bad_status_choice(db: Path) -> None:
    result = invoke("--db", str(db), "--status", "done")
    assert result.exit_code == 2
    assert "'done' is not one of 'running', 'interrupted', 'finished', 'failed'" in result.output


def test_value_formatting() -> None:
    from dal_backdoor.cli.runs import fmt_device, fmt_noise, fmt_pct, fmt_value

    assert fmt_value("asr", 0) == "0.00%"
    assert fmt_value("clean_acc", 0.93125) == "93.12%"
    assert fmt_value("lr", 0.01) == "0.01"
    assert fmt_value("train_loss", 1 / 3) == "0.3333"
    assert fmt_value("asr", None) == "-"
    assert fmt_value("augment", True) == "true"
    assert fmt_value("trigger_params", {"size": 3}) == '{"size": 3}'
    assert fmt_pct(0.5) == "50.00"
    assert fmt_pct(None) == "-"
    assert fmt_pct("x") == "-"
    assert fmt_noise({"noise_kind": "asymmetric", "noise_rate": 0.4}) == "asymmetric 0.4"
    assert fmt_noise({"noise_kind": "none", "noise_rate": 0.0}) == "-"
    assert fmt_device("NVIDIA H100 80GB HBM3") == "H100 80GB HBM3"
    assert fmt_device("cpu (x86_64, 2 threads)") == "cpu"


def test_a_killed_run_is_shown_as_interrupted_with_how_to_resume(tmp_path: Path) -> None:
    import os
    import platform
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is dead now, as a SIGKILLed trainer's
    here = {**PROV, "host": platform.node()}
    path = tmp_path / "r.db"
    with ResultsStore(path) as s:
        s.start_run("dead0000dead0000", config("ce", "local", 0), here, pid=child.pid)
        s.start_run("live1111live1111", config("dal", "local", 0), here, pid=os.getpid())
    result = invoke("--db", str(path))
    assert result.exit_code == 0, result.output
    status = {cells(line)[0]: cells(line)[7] for line in output_lines(result.output)
              if line.strip().startswith(("dead", "live"))}
    assert status == {"dead0000": "interrupted", "live1111": "running"}
    text = " ".join(result.output.split())
    assert "--resume (same --out DIR)" in text
    assert "`dal-backdoor sweep` command again" in text
    only = invoke("--db", str(path), "--status", "interrupted")
    assert "dead0000" in only.output
    assert "live1111" not in only.output
    running = invoke("--db", str(path), "--status", "running")
    assert "live1111" in running.output
    assert "dead0000" not in running.output
    detail = invoke("--db", str(path), "--run", "dead0000")
    assert "interrupted" in detail.output
    assert "--resume" in detail.output
    assert "--resume" not in invoke("--db", str(path), "--run", "live1111").output
