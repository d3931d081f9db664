"""The paper's Table 1: the tuned hyper-parameters of every robust loss, per data set.

Li et al., "Dynamics-Aware Loss for Learning with Label Noise", Table 1 ("Optimal
hyper-parameters of robust loss functions under our setup"), transcribed column by column with
our hyper-parameter names (NLNL's N is ``num_negatives``; CE+SR's lambda_0 is ``lam``; DAL's
q_s, q_e, lambda_e are ``q_start``, ``q_end``, ``lambda_end``). DGCE is DAL with lambda = 0 and
shares DAL's q schedule.

Columns: cifar10, cifar100, animal10n, webvision. Table 1 leaves GCE, NLNL, BTL, TCE, Poly-1
(and DGCE) blank for Animal-10N and WebVision; for those, and for every other data set name
(fashion-mnist, synthetic, ...), ``preset`` uses the CIFAR-10 column and ``preset_column``
says so. CE, MAE, RCE, NCE and AGCE have no Table 1 entry: their presets are their defaults.
"""

from __future__ import annotations

from typing import Any

from dal_backdoor.losses.catalog import loss_info

COLUMNS = ("cifar10", "cifar100", "animal10n", "webvision")
FALLBACK_COLUMN = "cifar10"

_DAL_C10 = {"q_start": 0.8, "q_end": 1.5}
_DAL_C100 = {"q_start": 0.6, "q_end": 1.5}

TABLE1: dict[str, dict[str, dict[str, Any]]] = {
    "gce": {"cifar10": {"q": 0.9}, "cifar100": {"q": 0.7}},
    "sce": {
        "cifar10": {"alpha": 0.1, "beta": 10.0}, "cifar100": {"alpha": 6.0, "beta": 1.0},
        "animal10n": {"alpha": 6.0, "beta": 1.0}, "webvision": {"alpha": 10.0, "beta": 1.0},
    },
    "nlnl": {"cifar10": {"num_negatives": 1}, "cifar100": {"num_negatives": 110}},
    "btl": {"cifar10": {"t1": 0.7, "t2": 3.0}, "cifar100": {"t1": 0.7, "t2": 1.5}},
    "nce_rce": {
        "cifar10": {"alpha": 1.0, "beta": 0.1}, "cifar100": {"alpha": 10.0, "beta": 0.1},
        "animal10n": {"alpha": 10.0, "beta": 0.1}, "webvision": {"alpha": 50.0, "beta": 0.1},
    },
    "tce": {"cifar10": {"t": 3}, "cifar100": {"t": 18}},
    "nce_agce": {
        "cifar10": {"alpha": 1.0, "beta": 0.4, "a": 6.0, "q": 1.5},
        "cifar100": {"alpha": 10.0, "beta": 0.1, "a": 3.0, "q": 3.0},
        "animal10n": {"alpha": 0.0, "beta": 1.0, "a": 1e-5, "q": 0.7},
        "webvision": {"alpha": 0.0, "beta": 1.0, "a": 1e-5, "q": 0.5},
    },
    "ce_sr": {
        "cifar10": {"tau": 0.5, "lam": 1.5, "r": 1, "p": 0.1, "rho": 1.02},
        "cifar100": {"tau": 0.5, "lam": 8.0, "r": 1, "p": 0.01, "rho": 1.02},
        "animal10n": {"tau": 0.5, "lam": 8.0, "r": 1, "p": 0.01, "rho": 1.02},
        "webvision": {"tau": 0.5, "lam": 2.0, "r": 1, "p": 0.01, "rho": 1.02},
    },
    "js": {"cifar10": {"pi": 0.9}, "cifar100": {"pi": 0.5}, "animal10n": {"pi": 0.5},
           "webvision": {"pi": 0.1}},
    "poly1": {"cifar10": {"epsilon": 10.0}, "cifar100": {"epsilon": 2.0}},
    "dal": {
        "cifar10": {**_DAL_C10, "lambda_end": 1.0},
        "cifar100": {**_DAL_C100, "lambda_end": 1.0},
        "animal10n": {"q_start": 0.6, "q_end": 1.5, "lambda_end": 1.0},
        "webvision": {"q_start": 0.4, "q_end": 1.5, "lambda_end": 1.0},
    },
    "dgce": {"cifar10": dict(_DAL_C10), "cifar100": dict(_DAL_C100)},
}


def normalise_dataset(dataset: str) -> str:
    """``"CIFAR-10"`` -> ``"cifar10"``, ``"Animal-10N"`` -> ``"animal10n"`` (case, - and _)."""
    return str(dataset).lower().replace("-", "").replace("_", "")


def preset_column(name: str, dataset: str) -> str | None:
    """The Table 1 column ``preset(name, dataset)`` uses, or None if the loss has no entry."""
    table = TABLE1.get(loss_info(name).name)
    if table is None:
        return None
    column = normalise_dataset(dataset)
    return column if column in table else FALLBACK_COLUMN


def table1_entry(name: str, dataset: str) -> dict[str, Any] | None:
    """Exactly the Table 1 cell for (loss, column), or None where Table 1 has none."""
    return dict(TABLE1.get(name, {}).get(normalise_dataset(dataset), {})) or None


def preset(name: str, dataset: str) -> dict[str, Any]:
    """Every hyper-parameter of loss ``name`` for ``dataset``: defaults + the Table 1 values.

    "cifar10"/"cifar100" (also "animal10n"/"webvision" where Table 1 fills them) select that
    column; any other data set, or a blank cell, takes the CIFAR-10 column. The result is the
    complete resolved set (e.g. DAL's ``convention`` and ``bootstrap`` are included), ready for
    ``create_loss(name, num_classes, **preset(name, dataset))``.
    """
    info = loss_info(name)  # ConfigError for unknown names
    values = info.defaults()
    column = preset_column(name, dataset)
    if column is not None:
        values.update(TABLE1[name][column])
    return info.resolve(values)
