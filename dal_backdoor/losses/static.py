"""The static robust losses (no epoch dependence): CE, MAE, GCE, RCE, SCE, NCE, NCE+RCE, AGCE,
NCE+AGCE, TCE, JS, Poly-1 and BTL, registered in the paper's order.

Defaults of the losses in the paper's Table 1 are its CIFAR-10 column (see ``presets``). AGCE
alone (not in Table 1) defaults to a = 1, q = 2, the defaults of the AGCE class in the AGCE
authors' code and in the DAL authors' copy of it (XiuchuanLi/DAL, ``utils/losses.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from dal_backdoor.losses import functional as F
from dal_backdoor.losses.base import FunctionalLoss, LossInfo, LossModule, ParamSpec, register_loss

BTL_NUM_ITERS = 5  # fixed-point rounds of the tempered softmax (Amid et al.; authors' code)


def _weight(name: str, default: float, what: str) -> ParamSpec:
    return ParamSpec(name, default, what, low=0.0)


def _positive(name: str, default: float, what: str) -> ParamSpec:
    return ParamSpec(name, default, what, low=0.0, low_open=True)


def _register_static(
    info: LossInfo, fn: Callable[..., Tensor], fixed: Mapping[str, Any] | None = None
) -> None:
    def factory(
        num_classes: int, hparams: Mapping[str, Any], *, total_epochs: int | None, seed: int
    ) -> LossModule:
        return FunctionalLoss(info.name, num_classes, hparams, fn, fixed)

    register_loss(info)(factory)


_register_static(LossInfo(
    "ce", "Cross entropy", "-log p_y", "standard",
), F.ce)

_register_static(LossInfo(
    "mae", "Mean absolute error", "1 - p_y", "Ghosh et al., AAAI 2017",
), F.mae)

_register_static(LossInfo(
    "gce", "Generalized cross entropy", "(1 - p_y^q) / q", "Zhang & Sabuncu, NeurIPS 2018",
    (_positive("q", 0.9, "exponent: q -> 0 is CE, q = 1 is MAE"),),
), F.gce)

_register_static(LossInfo(
    "rce", "Reverse cross entropy", "-log(1e-4) * sum_{k != y} clamp(p_k, 1e-7, 1)",
    "Wang et al., ICCV 2019",
), F.rce)

_register_static(LossInfo(
    "sce", "Symmetric cross entropy", "alpha * CE + beta * RCE", "Wang et al., ICCV 2019",
    (_weight("alpha", 0.1, "weight of CE"), _weight("beta", 10.0, "weight of RCE")),
), F.sce)

_register_static(LossInfo(
    "nce", "Normalized cross entropy", "log p_y / sum_k log p_k", "Ma et al., ICML 2020",
), F.nce)

_register_static(LossInfo(
    "nce_rce", "NCE + RCE (active passive loss)", "alpha * NCE + beta * RCE",
    "Ma et al., ICML 2020",
    (_weight("alpha", 1.0, "weight of NCE"), _weight("beta", 0.1, "weight of RCE")),
), F.nce_rce)

_register_static(LossInfo(
    "agce", "Asymmetric generalized cross entropy", "((a + 1)^q - (a + p_y)^q) / q",
    "Zhou et al., ICML 2021",
    (_positive("a", 1.0, "offset added to p_y"), _positive("q", 2.0, "exponent")),
    notes="not in Table 1; defaults a=1, q=2 as in the AGCE authors' code",
), F.agce)

_register_static(LossInfo(
    "nce_agce", "NCE + AGCE", "alpha * NCE + beta * AGCE(a, q)", "Zhou et al., ICML 2021",
    (_weight("alpha", 1.0, "weight of NCE"), _weight("beta", 0.4, "weight of AGCE"),
     _positive("a", 6.0, "AGCE offset added to p_y"), _positive("q", 1.5, "AGCE exponent")),
), F.nce_agce)

_register_static(LossInfo(
    "tce", "Taylor cross entropy", "sum_{n=1..t} (1 - p_y)^n / n", "Feng et al., IJCAI 2020",
    (ParamSpec("t", 3, "Taylor order: t = 1 is MAE, t -> inf is CE", kind="int", low=1,
               high=1000),),
), F.tce)

_register_static(LossInfo(
    "js", "Jensen-Shannon divergence loss",
    "[pi KL(e_y||m) + (1-pi) KL(p||m)] / (-(1-pi) log(1-pi)), m = pi e_y + (1-pi) p",
    "Englesson & Azizpour, NeurIPS 2021",
    (ParamSpec("pi", 0.9, "weight of the label: pi -> 0 is CE, pi -> 1 is MAE", low=0.0,
               high=1.0, low_open=True, high_open=True),),
), F.js)

_register_static(LossInfo(
    "poly1", "Poly-1", "-log p_y + epsilon * (1 - p_y)", "Leng et al., ICLR 2022",
    (ParamSpec("epsilon", 10.0, "weight of the first polynomial term (>= -1 keeps it "
               "decreasing in p_y)", low=-1.0),),
), F.poly1)

_register_static(LossInfo(
    "btl", "Bi-tempered logistic loss",
    "-log_t1(p_y) - (1 - sum_k p_k^(2-t1)) / (2-t1), p = tempered softmax_t2(logits)",
    "Amid et al., NeurIPS 2019",
    (ParamSpec("t1", 0.7, "temperature of the log (t1 < 1 bounds the loss)", low=0.0,
               high=1.0),
     ParamSpec("t2", 3.0, "temperature of the softmax (t2 > 1 gives heavy tails)", low=1.0)),
    notes=f"tempered softmax normalised by {BTL_NUM_ITERS} fixed-point rounds; "
          "t1 = t2 = 1 is CE",
), F.btl, fixed={"num_iters": BTL_NUM_ITERS})
