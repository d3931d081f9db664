"""CI guard of the README's Table 6 claim: the `small` preset's seed-0 cells on real data.

Runs the `small` preset's CIFAR-10 row (real Fashion-MNIST, 18 epochs) for CE and DAL with the
local trigger, seed 0, through the real sweep, and asserts what the preset was calibrated to show
on every seed (docs/CALIBRATION.md): CE learns the backdoor (ASR >= 90%), DAL does not
(<= 2%), and DAL's clean accuracy is within 3 points of CE's, the README's bar. The measured
seed-0 gap is 0.3 points (NCHW, one thread a run), 0.8 (channels-last) and 1.0 (two threads a
run), so another CPU's floating-point path has 2 points of margin (docs/CALIBRATION.md).

Needs Fashion-MNIST (Debian package ``dataset-fashion-mnist``, which ``.ci/run`` installs). When
it is missing the test is skipped with the reason, unless DAL_BACKDOOR_REQUIRE_DATA=1 (set by
``.ci/run`` once the package is installed) turns the absence into a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dal_backdoor.experiments import expand, parse_only
from dal_backdoor.report import build_report, load_runs
from dal_backdoor.store import ResultsStore
from dal_backdoor.sweep import run_sweep
from tests.helpers import require_fashion_mnist

pytestmark = pytest.mark.slow  # the small preset on real Fashion-MNIST: minutes on a CPU


def test_small_preset_ce_learns_the_local_backdoor_and_dal_does_not(tmp_path: Path) -> None:
    root = tmp_path / "data"
    require_fashion_mnist(root)
    specs = expand("table6", "small", data_root=str(root), device="cpu",
                   only=parse_only("dataset=cifar10,loss=ce|dal,trigger=local,seed=0")).specs
    assert [s.config.dataset for s in specs] == ["fashion-mnist"] * 2
    summary = run_sweep(specs, tmp_path / "r.db", tmp_path / "runs", jobs=2)
    assert not summary.failed, summary.failed
    with ResultsStore(tmp_path / "r.db") as store:
        report = build_report("table6", "small", load_runs(store, "table6", "small"))
    ce_asr = report.cell("cifar10/ce", "local ASR").mean
    dal_asr = report.cell("cifar10/dal", "local ASR").mean
    ce_acc = report.cell("cifar10/ce", "local acc").mean
    dal_acc = report.cell("cifar10/dal", "local acc").mean
    print(f"small preset, seed 0: CE acc {ce_acc:.1f} ASR {ce_asr:.1f}; "
          f"DAL acc {dal_acc:.1f} ASR {dal_asr:.1f}")
    assert ce_asr >= 90.0
    assert dal_asr <= 2.0
    assert ce_acc > 85.0
    assert dal_acc >= ce_acc - 3.0
