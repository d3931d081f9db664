"""``dal-backdoor noise``: the summary, the matrix, the heat-map, and one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dal_backdoor.data import create_dataset, make_noisy_labels
from tests.fakedata import write_fake_cifar10, write_fake_cifar_n
from tests.helpers import invoke, one_error_line

SYNTH = ["--dataset", "synthetic", "--dataset-param", "num_samples=600"]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = invoke("noise", *args, env=env)
    return result.exit_code, result.output


def cells(output: str, first: str) -> list[str]:
    """The whitespace-separated cells of the first line starting with ``first``."""
    for line in output.splitlines():
        if line.strip().startswith(first):
            return line.strip()[len(first):].split()
    raise AssertionError(f"no line starting with {first!r} in:\n{output}")


def test_summary_matches_the_library() -> None:
    code, out = run(*SYNTH, "--kind", "asymmetric", "--rate", "0.4", "--seed", "3")
    assert code == 0, out
    ds = create_dataset("synthetic", "x", train=True, num_samples=600)
    noise = make_noisy_labels(ds.labels, "asymmetric", 0.4, 10, 3, dataset="synthetic")
    assert "asymmetric noise on synthetic (train, 600 samples, 10 classes), seed 3" in out
    assert cells(out, "nominal rate") == ["40.00%"]
    assert cells(out, "expected rate") == ["40.00%"]
    assert cells(out, "actual rate") == [f"{100 * noise.actual_rate:.2f}%"]
    assert cells(out, "flipped") == [f"{noise.num_flipped}", "of", "600"]
    m = noise.transition_matrix
    row = cells(out, "9 class9")
    assert row[0] == f"{100 * float(m[9, 0]):.1f}"
    assert row[-1] == f"{100 * float(m[9, 9]):.1f}"
    assert row[1:-1] == ["·"] * 8


def test_symmetric_reports_both_conventions() -> None:
    code, out = run(*SYNTH, "--kind", "symmetric", "--rate", "0.5")
    assert code == 0, out
    assert cells(out, "expected rate") == ["45.00%", "(=", "rate", "x", "(K-1)/K,", "K=10)"]
    code, out = run(*SYNTH, "--kind", "symmetric", "--rate", "0.5", "--exclude-true")
    assert code == 0, out
    assert cells(out, "expected rate") == ["50.00%"]


def test_cifar10_from_root_with_class_names(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path, n_train=100, n_test=10)
    code, out = run("--dataset", "cifar10", "--root", str(tmp_path), "--kind", "asymmetric",
                    "--rate", "0.3")
    assert code == 0, out
    assert "(train, 100 samples, 10 classes)" in out
    assert cells(out, "0 airplane") == ["100.0"] + ["·"] * 9
    assert cells(out, "expected rate") == ["15.00%"]


def test_data_root_from_environment(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path, n_train=20, n_test=5)
    code, out = run("--dataset", "cifar10", "--rate", "0.2",
                    env={"DAL_BACKDOOR_DATA": str(tmp_path)})
    assert code == 0, out
    assert "(train, 20 samples, 10 classes)" in out


def test_cifar_n(tmp_path: Path) -> None:
    fake = write_fake_cifar10(tmp_path, n_train=50, n_test=5)
    path = tmp_path / "CIFAR-10_human.pt"
    write_fake_cifar_n(path, fake["train"].labels, flip_fraction=0.2)
    base = ["--dataset", "cifar10", "--root", str(tmp_path), "--kind", "cifar-n",
            "--cifar-n-file", str(path)]
    code, out = run(*base, "--cifar-n-key", "aggre_label")
    assert code == 0, out
    assert cells(out, "nominal rate") == ["ignored"]
    assert cells(out, "expected rate") == ["n/a", "(measured", "labels)"]
    assert cells(out, "actual rate") == ["20.00%"]
    code, out = run(*base, "--cifar-n-key", "nope")
    assert code == 2
    assert "unknown CIFAR-N key 'nope'" in one_error_line(out)


def test_many_classes_get_a_summary() -> None:
    code, out = run(*SYNTH, "--dataset-param", "num_classes=30", "--kind", "symmetric",
                    "--rate", "0.2")
    assert code == 0, out
    assert "transition matrix summary (30 classes)" in out
    assert cells(out, "non-zero off-diagonal")[1:] == ["of", "870"]
    assert "diagonal mean" in out
    assert "->" in out


def test_plot_writes_a_png_atomically(tmp_path: Path) -> None:
    target = tmp_path / "plots" / "t.png"
    code, out = run(*SYNTH, "--kind", "symmetric", "--plot", str(target))
    assert code == 0, out
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.png"]
    assert f"wrote {target}" in out.replace("\n", "")


def test_plot_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, out = run(*SYNTH, "--plot", str(tmp_path / "t.png"))
    assert code == 2
    assert "--plot needs matplotlib" in one_error_line(out)
    assert not (tmp_path / "t.png").exists()


def test_missing_dataset_is_one_line(tmp_path: Path) -> None:
    code, out = run("--dataset", "cifar100", "--root", str(tmp_path))
    assert code == 2
    line = one_error_line(out)
    assert line.startswith("Error: cifar100 not found")
    assert "--download" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "1.5"], "noise rate=1.5 is not in [0, 1)"),
        (["--kind", "pairflip"], "Invalid value for '--kind'"),
        (["--dataset", "mnist"], "Invalid value for '--dataset'"),
        (["--kind", "instance", "--rate", "-0.2"], "noise rate=-0.2 is not in [0, 1)"),
    ],
)
def test_bad_options(args: list[str], message: str) -> None:
    full = [*SYNTH, *args] if "--dataset" not in args else args
    code, out = run(*full)
    assert code == 2
    assert message in one_error_line(out)


# -- file noise, --noise-seed, --features ---------------------------------------------------------

def test_file_kind_reads_the_labels(tmp_path: Path) -> None:
    import numpy as np

    ds = create_dataset("synthetic", "x", train=True, num_samples=600)
    noisy = ds.labels.numpy().copy()
    noisy[:60] = (noisy[:60] + 1) % 10  # 60 flips
    path = tmp_path / "labels.npy"
    np.save(path, noisy)
    code, out = run(*SYNTH, "--kind", "file", "--labels-file", str(path))
    assert code == 0, out
    assert cells(out, "nominal rate") == ["ignored"]
    assert cells(out, "expected rate") == ["n/a", "(measured", "labels)"]
    assert cells(out, "actual rate") == ["10.00%"]
    assert cells(out, "flipped") == ["60", "of", "600"]
    np.save(path, noisy[:599])
    code, out = run(*SYNTH, "--kind", "file", "--labels-file", str(path))
    assert code == 2
    assert "has 599 labels but the training split has 600" in one_error_line(out)


def test_noise_seed_is_the_seed() -> None:
    a = run(*SYNTH, "--kind", "symmetric", "--noise-seed", "5")
    b = run(*SYNTH, "--kind", "symmetric", "--seed", "5")
    assert a[0] == b[0] == 0
    assert a[1] == b[1]
    assert "seed 5" in a[1]


def test_instance_features_option() -> None:
    ds = create_dataset("synthetic", "x", train=True, num_samples=600)
    outputs = {}
    for features in ("raw", "normalized"):
        code, out = run(*SYNTH, "--kind", "instance", "--rate", "0.4", "--features", features)
        assert code == 0, out
        noise = make_noisy_labels(ds.labels, "instance", 0.4, 10, 0, dataset="synthetic",
                                  images=ds.images, features=features)
        assert cells(out, "flipped") == [f"{noise.num_flipped}", "of", "600"]
        outputs[features] = out
    code, default = run(*SYNTH, "--kind", "instance", "--rate", "0.4")
    assert default == outputs["raw"]  # raw pixels by default, as Xia et al.'s code


def test_kind_none_needs_no_rate() -> None:
    code, out = run(*SYNTH, "--kind", "none")
    assert code == 0, out
    assert "none noise on synthetic" in out
    code, out = run(*SYNTH, "--kind", "none", "--rate", "0.4")
    assert code == 2
    assert one_error_line(out) == ("Error: --rate 0.4 with --kind none: no noise has no rate; "
                                   "drop --rate or choose a noise kind")
