"""Every loss, declared once, in the paper's order: name, factory and ``LossInfo``.

The order of ``list_losses()`` is the order of the ``LOSSES.add`` lines below (the static
baselines of ``static``, CE+SR of ``sr``, NLNL of ``nlnl``, then the paper's DGCE and DAL of
``dynamic``), not an import order. Factories are ``"module:attribute"`` references imported
on the first ``create_loss``, so this module (and ``list_losses``/``loss_info``) needs no torch.

Adding a loss: write its factory ``(num_classes, hparams, *, total_epochs, seed) ->
LossModule`` in a family module and add one ``LOSSES.add(name, "module:factory", LossInfo(...))``
line here; the contract tests (``tests/losses/test_contract.py``) then cover it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dal_backdoor.errors import ConfigError
from dal_backdoor.losses.info import LossInfo, ParamSpec
from dal_backdoor.registry import Registry
from dal_backdoor.schedules import CONVENTIONS
from dal_backdoor.validation import check_number

if TYPE_CHECKING:  # torch-free at run time
    from dal_backdoor.losses.base import LossModule

#: Fixed-point rounds of BTL's tempered softmax (Amid et al.; authors' code).
BTL_NUM_ITERS = 5
#: DAL's bootstrap terms (``functional.dal``).
BOOTSTRAPS = ("max", "entropy")

LOSSES: Registry[LossInfo, LossModule] = Registry("loss")

_STATIC = "dal_backdoor.losses.static:"


def _weight(name: str, default: float, what: str) -> ParamSpec:
    return ParamSpec(name, default, what, low=0.0)


def _positive(name: str, default: float, what: str) -> ParamSpec:
    return ParamSpec(name, default, what, low=0.0, low_open=True)


# -- the static baselines (``static``); AGCE alone (not in Table 1) defaults to a = 1, q = 2,
# the defaults of the AGCE authors' code and of the DAL authors' copy of it ------------------

LOSSES.add("ce", _STATIC + "ce", LossInfo(
    "ce", "Cross entropy", "-log p_y", "standard",
))

LOSSES.add("mae", _STATIC + "mae", LossInfo(
    "mae", "Mean absolute error", "1 - p_y", "Ghosh et al., AAAI 2017",
))

LOSSES.add("gce", _STATIC + "gce", LossInfo(
    "gce", "Generalized cross entropy", "(1 - p_y^q) / q", "Zhang & Sabuncu, NeurIPS 2018",
    (_positive("q", 0.9, "exponent: q -> 0 is CE, q = 1 is MAE"),),
))

LOSSES.add("rce", _STATIC + "rce", LossInfo(
    "rce", "Reverse cross entropy", "-log(1e-4) * sum_{k != y} clamp(p_k, 1e-7, 1)",
    "Wang et al., ICCV 2019",
))

LOSSES.add("sce", _STATIC + "sce", LossInfo(
    "sce", "Symmetric cross entropy", "alpha * CE + beta * RCE", "Wang et al., ICCV 2019",
    (_weight("alpha", 0.1, "weight of CE"), _weight("beta", 10.0, "weight of RCE")),
))

LOSSES.add("nce", _STATIC + "nce", LossInfo(
    "nce", "Normalized cross entropy", "log p_y / sum_k log p_k", "Ma et al., ICML 2020",
))

LOSSES.add("nce_rce", _STATIC + "nce_rce", LossInfo(
    "nce_rce", "NCE + RCE (active passive loss)", "alpha * NCE + beta * RCE",
    "Ma et al., ICML 2020",
    (_weight("alpha", 1.0, "weight of NCE"), _weight("beta", 0.1, "weight of RCE")),
))

LOSSES.add("agce", _STATIC + "agce", LossInfo(
    "agce", "Asymmetric generalized cross entropy", "((a + 1)^q - (a + p_y)^q) / q",
    "Zhou et al., ICML 2021",
    (_positive("a", 1.0, "offset added to p_y"), _positive("q", 2.0, "exponent")),
    notes="not in Table 1; defaults a=1, q=2 as in the AGCE authors' code",
))

LOSSES.add("nce_agce", _STATIC + "nce_agce", LossInfo(
    "nce_agce", "NCE + AGCE", "alpha * NCE + beta * AGCE(a, q)", "Zhou et al., ICML 2021",
    (_weight("alpha", 1.0, "weight of NCE"), _weight("beta", 0.4, "weight of AGCE"),
     _positive("a", 6.0, "AGCE offset added to p_y"), _positive("q", 1.5, "AGCE exponent")),
))

LOSSES.add("tce", _STATIC + "tce", LossInfo(
    "tce", "Taylor cross entropy", "sum_{n=1..t} (1 - p_y)^n / n", "Feng et al., IJCAI 2020",
    (ParamSpec("t", 3, "Taylor order: t = 1 is MAE, t -> inf is CE", kind="int", low=1,
               high=1000),),
))

LOSSES.add("js", _STATIC + "js", LossInfo(
    "js", "Jensen-Shannon divergence loss",
    "[pi KL(e_y||m) + (1-pi) KL(p||m)] / (-(1-pi) log(1-pi)), m = pi e_y + (1-pi) p",
    "Englesson & Azizpour, NeurIPS 2021",
    (ParamSpec("pi", 0.9, "weight of the label: pi -> 0 is CE, pi -> 1 is MAE", low=0.0,
               high=1.0, low_open=True, high_open=True),),
))

LOSSES.add("poly1", _STATIC + "poly1", LossInfo(
    "poly1", "Poly-1", "-log p_y + epsilon * (1 - p_y)", "Leng et al., ICLR 2022",
    (ParamSpec("epsilon", 10.0, "weight of the first polynomial term (>= -1 keeps it "
               "decreasing in p_y)", low=-1.0),),
))

LOSSES.add("btl", _STATIC + "btl", LossInfo(
    "btl", "Bi-tempered logistic loss",
    "-log_t1(p_y) - (1 - sum_k p_k^(2-t1)) / (2-t1), p = tempered softmax_t2(logits)",
    "Amid et al., NeurIPS 2019",
    (ParamSpec("t1", 0.7, "temperature of the log (t1 < 1 bounds the loss)", low=0.0,
               high=1.0),
     ParamSpec("t2", 3.0, "temperature of the softmax (t2 > 1 gives heavy tails)", low=1.0)),
    notes=f"tempered softmax normalised by {BTL_NUM_ITERS} fixed-point rounds; "
          "t1 = t2 = 1 is CE",
))

# -- CE+SR (``sr``) ---------------------------------------------------------------------------

LOSSES.add("ce_sr", "dal_backdoor.losses.sr:create_ce_sr", LossInfo(
    "ce_sr", "Cross entropy + sparse regularisation",
    "CE(z, y) + lam(t) * sum_k s_k^p, z = logits / ||logits|| / tau, s = softmax(z)",
    "Zhou et al., ICCV 2021",
    (
        ParamSpec("tau", 0.5, "temperature applied after L2-normalising the logits", low=0.0,
                  low_open=True),
        ParamSpec("lam", 1.5, "lambda0, the initial weight of the sparsity term", low=0.0),
        ParamSpec("r", 1, "epochs between two multiplications of lambda by rho", kind="int",
                  low=1),
        ParamSpec("p", 0.1, "exponent of the l_p sparsity term (p <= 1 promotes sparsity)",
                  low=0.0, high=1.0, low_open=True),
        ParamSpec("rho", 1.02, "growth factor of lambda", low=0.0, low_open=True),
    ),
    scheduled=True,
))

# -- NLNL (``nlnl``) --------------------------------------------------------------------------

LOSSES.add("nlnl", "dal_backdoor.losses.nlnl:create_nlnl", LossInfo(
    "nlnl", "Negative learning for noisy labels",
    "sum over N draws c ~ U{k != y} of -log clamp(1 - p_c, 1e-5, 1)",
    "Kim et al., ICCV 2019",
    (ParamSpec("num_negatives", 1, "N, complementary labels drawn per sample", kind="int",
               low=1, high=1000),),
    notes="seeded by the run seed; optional class weights via set_class_weights",
))

# -- the paper's DGCE and DAL (``dynamic``) ---------------------------------------------------

_Q_START = ParamSpec("q_start", 0.8, "qs, the GCE exponent at the start", low=0.0,
                     low_open=True)
_Q_END = ParamSpec("q_end", 1.5, "qe >= qs, the GCE exponent at the end", low=0.0,
                   low_open=True)
_CONVENTION = ParamSpec("convention", "paper", "epoch index of the schedule: paper t = 1..T, "
                        "reference i = t - 1 (authors' code)", kind="choice",
                        choices=CONVENTIONS)

LOSSES.add("dgce", "dal_backdoor.losses.dynamic:create_dgce", LossInfo(
    "dgce", "Dynamic GCE (DAL without bootstrapping)",
    "(1 - p_y^q(t)) / q(t), q(t) = qs + (qe - qs) t / T",
    "Li et al. (this paper), Section 3.3",
    (_Q_START, _Q_END, _CONVENTION),
    scheduled=True, needs_total_epochs=True,
))

LOSSES.add("dal", "dal_backdoor.losses.dynamic:create_dal", LossInfo(
    "dal", "Dynamics-aware loss",
    "(1 - p_y^q(t)) / q(t) + lam(t) * B / (q(t) log K), B = -log max_k p_k",
    "Li et al. (this paper), Algorithm 1",
    (_Q_START, _Q_END,
     ParamSpec("lambda_end", 1.0, "lambda_e, the final weight of the bootstrap term", low=0.0),
     _CONVENTION,
     ParamSpec("bootstrap", "max", "B: max = -log max_k p_k (paper Eq. 13), entropy = "
               "-sum_k p_k log p_k (authors' later code)", kind="choice",
               choices=BOOTSTRAPS)),
    scheduled=True, needs_total_epochs=True,
))


def list_losses() -> list[str]:
    """Every loss name, in the paper's order (static baselines, CE+SR, NLNL, DGCE, DAL)."""
    return LOSSES.names()


def loss_info(name: str) -> LossInfo:
    """The description of loss ``name`` (ConfigError listing the names if unknown)."""
    return LOSSES.info(name)


def create_loss(
    name: str,
    num_classes: int,
    *,
    total_epochs: int | None = None,
    seed: int = 0,
    **hparams: Any,
) -> LossModule:
    """Build loss ``name`` for ``num_classes`` classes as a ``LossModule`` (an ``nn.Module``).

    Missing hyper-parameters take their defaults (``loss_info(name)``; for the Table 1 losses
    these are the paper's CIFAR-10 values, see ``presets.preset``). ``total_epochs`` (T) is
    required by the scheduled DAL/DGCE and ignored by the others; ``seed`` seeds NLNL's
    complementary-label generator and is ignored by the others. Every problem raises a
    ConfigError naming the loss, the parameter, its value and what is allowed.
    """
    info = loss_info(name)
    num_classes = check_number("num_classes", num_classes, low=2, integer=True)
    seed = check_number("seed", seed, low=0, high=2**64 - 1, integer=True)
    if info.needs_total_epochs:
        if total_epochs is None:
            raise ConfigError(
                f"loss {name} needs total_epochs (the number of training epochs T) for its "
                "schedule; allowed: integers in [1, inf)"
            )
        total_epochs = check_number("total_epochs", total_epochs, low=1, integer=True)
    try:
        resolved = info.resolve(hparams)
        return LOSSES.create(name, num_classes, resolved, total_epochs=total_epochs, seed=seed)
    except ConfigError as exc:
        raise ConfigError(f"loss {name}: {exc}") from None
