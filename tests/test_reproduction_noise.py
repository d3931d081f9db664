"""CI guards of the README's label-noise claims: ``table2-small`` under the ``small`` preset.

Each runs seed-0 cells at 80% symmetric noise (real Fashion-MNIST, 7,000 images) through the
real sweep and asserts what was measured on every seed (README, "Label noise at small scale"),
with margins below the smallest measured gap, so that another CPU's floating-point path does
not turn them red:

- the preset (8 epochs): CE loses its clean accuracy (86-88%) at 80% symmetric noise (53-64%
  measured), a robust loss keeps more of it (GCE 70-73%, 7.3-16.6 points above CE seed by
  seed). DAL does not beat CE at this length (43-52%: 8 epochs are too short for its q(t)
  schedule), so this guard is GCE's;
- 14 epochs (``reproduce.sh --grid table2 --epochs 14``): CE collapses (32.2-35.9%) and DAL
  keeps 72.8-73.8%, 36.9-41.3 points above CE seed by seed.

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

pytestmark = pytest.mark.slow  # 2 runs of 8 and 2 of 14 epochs on real Fashion-MNIST: ~6 min

#: GCE - CE test-accuracy gap (points) asserted at 80% symmetric noise; measured over seeds
#: 0-2: 7.3, 16.6, 9.9 (README).
MIN_GAP = 3.0
#: CE's test accuracy at 80% symmetric noise stays under this (measured 63.7 / 53.0 / 63.1,
#: against 86.3-87.5% with clean labels).
CE_CEILING = 75.0


#: DAL - CE test-accuracy gap (points) asserted at 80% symmetric noise after 14 epochs;
#: measured over seeds 0-2: 36.9, 38.6, 41.3 (CE 35.9 / 35.2 / 32.2, DAL 72.8 / 73.8 / 73.5).
MIN_GAP_DAL_14 = 20.0
#: CE's test accuracy at 80% symmetric noise after 14 epochs stays under this (measured
#: 32.2-35.9%: it has memorised the noisy labels).
CE_CEILING_14 = 50.0


def _sym80_seed0(tmp_path: Path, losses: str, overrides: dict | None = None
                 ) -> dict[str, float]:
    """Test accuracy (%) of each loss's seed-0 run at 80% symmetric noise, run by the sweep."""
    root = tmp_path / "data"
    require_fashion_mnist(root)
    specs = expand("table2-small", "small", data_root=str(root), device="cpu",
                   only=parse_only(f"loss={losses},noise=symmetric-0.8,seed=0"),
                   overrides=overrides).specs
    assert [(s.config.dataset, s.config.noise_kind) for s in specs] == [
        ("fashion-mnist", "symmetric")] * 2
    summary = run_sweep(specs, tmp_path / "r.db", tmp_path / "runs", jobs=2)
    assert not summary.failed, summary.failed
    with ResultsStore(tmp_path / "r.db") as store:
        report = build_report("table2-small", "small",
                              load_runs(store, "table2-small", "small"))
    return {loss: report.cell(loss, "symmetric-0.8").mean for loss in losses.split("|")}


def test_gce_keeps_accuracy_that_ce_loses_at_80_percent_symmetric_noise(tmp_path: Path) -> None:
    acc = _sym80_seed0(tmp_path, "ce|gce")
    ce, gce = acc["ce"], acc["gce"]
    print(f"table2-small, symmetric 80%, seed 0: CE {ce:.1f}, GCE {gce:.1f}")
    assert ce < CE_CEILING
    assert gce - ce >= MIN_GAP


def test_dal_keeps_accuracy_that_ce_loses_after_14_epochs(tmp_path: Path) -> None:
    acc = _sym80_seed0(tmp_path, "ce|dal", {"epochs": 14})
    ce, dal = acc["ce"], acc["dal"]
    print(f"table2-small at 14 epochs, symmetric 80%, seed 0: CE {ce:.1f}, DAL {dal:.1f}")
    assert ce < CE_CEILING_14
    assert dal - ce >= MIN_GAP_DAL_14
