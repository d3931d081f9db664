"""``dal-backdoor losses``: the overview table and the per-loss detail view."""

from __future__ import annotations

from dal_backdoor.losses import list_losses
from tests.helpers import invoke, output_lines


def run(*args: str) -> tuple[int, str]:
    result = invoke("losses", *args)
    return result.exit_code, result.output


def rows(output: str) -> dict[str, list[str]]:
    """Table rows keyed by their first cell, each cell's wrapped lines joined by a space."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")][1:-1]
        if not cells:
            current = None
            continue
        if cells[0]:
            current = out.setdefault(cells[0], cells)
        elif current is not None:
            for i, cell in enumerate(cells):
                current[i] = f"{current[i]} {cell}".strip()
    return out


def test_overview_lists_every_loss_with_table1_presets() -> None:
    code, output = run()
    assert code == 0, output
    table = rows(output)
    for name in list_losses():
        assert name in table, name
    assert table["dal"][3:] == ["q_start=0.8, q_end=1.5, lambda_end=1",
                                "q_start=0.6, q_end=1.5, lambda_end=1"]
    assert table["gce"][2:] == ["q (0, inf)", "q=0.9", "q=0.7"]
    assert table["nlnl"][4] == "num_negatives=110"
    assert table["ce"][1:] == ["-log p_y", "-", "-", "-"]
    assert "[pi KL(e_y||m)" in output  # formulas are not eaten as markup


def test_detail_shows_parameters_presets_and_schedule() -> None:
    code, output = run("--loss", "dal", "--epochs", "10", "--dataset", "cifar100")
    assert code == 0, output
    assert "Dynamics-aware loss" in output
    assert "q_start=0.4" in output  # the WebVision column
    table = rows(output)
    # cifar100: qs = 0.6, T = 10, t0 = 4 / 0.9 = 4.44; q(10) = 1.5, lam(10) = 1
    assert table["10"] == ["10", "1.5000", "1.0000"]
    assert table["4"] == ["4", "0.9600", "0.0000"]  # 0.6 + 0.9 * 4 / 10
    assert table["5"] == ["5", "1.0500", "0.1000"]  # (5 - 40/9) / (10 - 40/9)
    assert table["1"] == ["1", "0.6900", "0.0000"]
    assert "t0 = 4.444" in output


def test_detail_with_overrides_and_reference_convention() -> None:
    code, output = run("--loss", "dgce", "--epochs", "4", "--param", "convention=reference")
    assert code == 0, output
    table = rows(output)
    assert table["1"] == ["1", "0.8000"]  # reference convention: q(t=1) = q_start; no lam
    assert table["4"] == ["4", "1.3250"]  # i = 3: 0.8 + 0.7 * 3 / 4


def test_bad_override_is_one_red_line_exit_2() -> None:
    code, output = run("--loss", "dal", "--param", "q_start=-1")
    assert code == 2
    lines = output_lines(output)
    assert lines[-1].startswith("Error:")
    assert "q_start=-1 is not in (0, inf)" in lines[-1]


def test_unknown_loss_name_is_rejected() -> None:
    code, output = run("--loss", "nope")
    assert code == 2
    assert "nope" in output


def test_param_without_loss_is_a_usage_error() -> None:
    code, output = run("--param", "q=0.5")
    assert code == 2
    assert "--param needs --loss NAME" in output
