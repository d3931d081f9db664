"""CI guard of the README's label-noise claim: ``table2-small`` under the ``small`` preset.

Runs the seed-0 CE and GCE cells at 80% symmetric noise (real Fashion-MNIST, 7,000 images,
8 epochs) through the real sweep and asserts what the preset was measured to show on every seed
(README, "Label noise at small scale"): CE loses its clean accuracy (86-88%) at 80% symmetric
noise (53-64% measured), a robust loss keeps more of it (GCE 70-73%, 7.3-16.6 points above CE
seed by seed). DAL does not beat CE at this budget (43-52%: 8 epochs are too short for its
q(t) schedule), so the guard is GCE's; the margin asserted is below the smallest measured gap,
so that another CPU's floating-point path does not turn it red.

Needs Fashion-MNIST (Debian package ``dataset-fashion-mnist``); skipped without it unless
DAL_BACKDOOR_REQUIRE_DATA=1 (set by ``.ci/run``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dal_backdoor.experiments import expand, parse_only
from dal_backdoor.report import build_report, load_runs
from dal_backdoor.store import ResultsStore
from dal_backdoor.sweep import run_sweep
from tests.helpers import require_fashion_mnist

pytestmark = pytest.mark.slow  # two 8-epoch runs on real Fashion-MNIST: about 2 minutes

#: GCE - CE test-accuracy gap (points) asserted at 80% symmetric noise; measured over seeds
#: 0-2: 7.3, 16.6, 9.9 (README).
MIN_GAP = 3.0
#: CE's test accuracy at 80% symmetric noise stays under this (measured 63.7 / 53.0 / 63.1,
#: against 86.3-87.5% with clean labels).
CE_CEILING = 75.0


def test_gce_keeps_accuracy_that_ce_loses_at_80_percent_symmetric_noise(tmp_path: Path) -> None:
    root = tmp_path / "data"
    require_fashion_mnist(root)
    specs = expand("table2-small", "small", data_root=str(root), device="cpu",
                   only=parse_only("loss=ce|gce,noise=symmetric-0.8,seed=0")).specs
    assert [(s.config.dataset, s.config.noise_kind) for s in specs] == [
        ("fashion-mnist", "symmetric")] * 2
    summary = run_sweep(specs, tmp_path / "r.db", tmp_path / "runs", jobs=2)
    assert not summary.failed, summary.failed
    with ResultsStore(tmp_path / "r.db") as store:
        report = build_report("table2-small", "small",
                              load_runs(store, "table2-small", "small"))
    ce = report.cell("ce", "symmetric-0.8").mean
    gce = report.cell("gce", "symmetric-0.8").mean
    print(f"table2-small, symmetric 80%, seed 0: CE {ce:.1f}, GCE {gce:.1f}")
    assert ce < CE_CEILING
    assert gce - ce >= MIN_GAP
