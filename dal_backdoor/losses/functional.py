"""The robust-loss zoo as pure functions of raw logits and integer labels.

Every function takes ``logits`` of shape (B, K) (un-normalised network outputs) and integer
``targets`` of shape (B,), and returns the batch mean (``reduction="mean"``, the default),
the per-sample values (``reduction="none"``, shape (B,)) or their sum (``reduction="sum"``).

Numerics, identical for every loss:

* Half-precision logits (fp16 / bf16) are upcast to float32 first; float32 stays float32 and
  float64 stays float64. The result has that computation dtype.
* Probabilities come from ``log_softmax``: ``p_y^q`` is ``exp(q * log p_y)``, ``1 - p_y`` is
  ``-expm1(log p_y)``, so no ``log(0)``/``0 ** negative`` appears even for logits of +-1e4 or
  probabilities that underflow to 0, and the gradients stay finite there too.
* Clamps that belong to a loss's published definition (RCE's ``log(1e-4)``, JS's 1e-7 inside
  the logs, NLNL's ``1 - p_c >= 1e-5``, CE+SR's ``s >= 1e-7``) are kept and documented.
* Labels must lie in [0, K); they are not range-checked on every call (that would force a
  GPU sync); an out-of-range label makes ``gather`` fail.

Notation: p = softmax(logits), p_y the probability of the labelled class, K the number of
classes, e_y the one-hot label.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dal_backdoor.validation import check_choice

REDUCTIONS = ("mean", "sum", "none")
BOOTSTRAPS = ("max", "entropy")

_RCE_LOG_CLAMP = math.log(1e-4)  # RCE: log of the clamped one-hot's zeros
_PROB_FLOOR = 1e-7  # RCE / JS / CE+SR probability floor
_NLNL_FLOOR = 1e-5  # NLNL: 1 - p_c is clamped to [1e-5, 1]


# ---------------------------------------------------------------------------------------------
# shared helpers


def _prepare(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Check shapes, upcast half precision to float32 and make the labels int64."""
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (B, K); got {tuple(logits.shape)}")
    if targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(
            f"targets must have shape ({logits.shape[0]},) to match logits "
            f"{tuple(logits.shape)}; got {tuple(targets.shape)}"
        )
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    return logits, targets.long()


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    check_choice("reduction", reduction, REDUCTIONS)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _log_probs(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """``(log p, log p_y)`` with shapes (B, K) and (B,)."""
    logp = F.log_softmax(logits, dim=1)
    return logp, logp.gather(1, targets[:, None]).squeeze(1)


def _one_minus_p(logp_y: Tensor) -> Tensor:
    """``1 - p_y`` computed as ``-expm1(log p_y)`` (accurate when p_y is close to 1)."""
    return -torch.expm1(logp_y)


# ---------------------------------------------------------------------------------------------
# per-sample building blocks (already prepared inputs)


def _ce(logp_y: Tensor) -> Tensor:
    return -logp_y


def _gce(logp_y: Tensor, q: float) -> Tensor:
    # (1 - p^q) / q == -expm1(q log p) / q: exact as q -> 0 (it tends to -log p = CE)
    return -torch.expm1(q * logp_y) / q


def _rce(logits: Tensor, targets: Tensor) -> Tensor:
    p = torch.softmax(logits, dim=1).clamp(_PROB_FLOOR, 1.0)
    off_target = torch.ones_like(p).scatter_(1, targets[:, None], 0.0)
    return -_RCE_LOG_CLAMP * (p * off_target).sum(dim=1)


def _nce(logp: Tensor, logp_y: Tensor) -> Tensor:
    return logp_y / logp.sum(dim=1)


def _agce(logp_y: Tensor, a: float, q: float) -> Tensor:
    p_y = logp_y.exp()
    return ((a + 1.0) ** q - (a + p_y) ** q) / q


# ---------------------------------------------------------------------------------------------
# the losses


def ce(logits: Tensor, targets: Tensor, *, reduction: str = "mean") -> Tensor:
    """Cross entropy ``-log p_y``."""
    logits, targets = _prepare(logits, targets)
    _, logp_y = _log_probs(logits, targets)
    return _reduce(_ce(logp_y), reduction)


def mae(logits: Tensor, targets: Tensor, *, reduction: str = "mean") -> Tensor:
    """Mean absolute error ``1 - p_y`` (Ghosh et al. 2017; half the L1 distance to e_y)."""
    logits, targets = _prepare(logits, targets)
    _, logp_y = _log_probs(logits, targets)
    return _reduce(_one_minus_p(logp_y), reduction)


def gce(logits: Tensor, targets: Tensor, q: float, *, reduction: str = "mean") -> Tensor:
    """Generalized cross entropy ``(1 - p_y^q) / q`` (Zhang & Sabuncu 2018; paper Eq. 5).

    q -> 0 gives CE, q = 1 gives MAE; q > 1 (used by DAL) emphasises easy examples.
    """
    logits, targets = _prepare(logits, targets)
    _, logp_y = _log_probs(logits, targets)
    return _reduce(_gce(logp_y, q), reduction)


def rce(logits: Tensor, targets: Tensor, *, reduction: str = "mean") -> Tensor:
    """Reverse cross entropy (Wang et al. 2019) ``-sum_k p_k log(clamp(e_y,k, 1e-4, 1))``.

    p is clamped to [1e-7, 1] first (as in the APL/SCE authors' code), so the value equals
    ``-log(1e-4) * sum_{k != y} clamp(p_k, 1e-7, 1)``. (The DAL authors' copy clamps p at 1e-6.)
    """
    logits, targets = _prepare(logits, targets)
    return _reduce(_rce(logits, targets), reduction)


def sce(
    logits: Tensor, targets: Tensor, alpha: float, beta: float, *, reduction: str = "mean"
) -> Tensor:
    """Symmetric cross entropy ``alpha * CE + beta * RCE`` (Wang et al. 2019)."""
    logits, targets = _prepare(logits, targets)
    _, logp_y = _log_probs(logits, targets)
    return _reduce(alpha * _ce(logp_y) + beta * _rce(logits, targets), reduction)


def nce(logits: Tensor, targets: Tensor, *, reduction: str = "mean") -> Tensor:
    """Normalized cross entropy ``(-log p_y) / (-sum_k log p_k)`` (Ma et al. 2020)."""
    logits, targets = _prepare(logits, targets)
    logp, logp_y = _log_probs(logits, targets)
    return _reduce(_nce(logp, logp_y), reduction)


def nce_rce(
    logits: Tensor, targets: Tensor, alpha: float, beta: float, *, reduction: str = "mean"
) -> Tensor:
    """Active-passive loss ``alpha * NCE + beta * RCE`` (Ma et al. 2020)."""
    logits, targets = _prepare(logits, targets)
    logp, logp_y = _log_probs(logits, targets)
    return _reduce(alpha * _nce(logp, logp_y) + beta * _rce(logits, targets), reduction)


def agce(logits: Tensor, targets: Tensor, a: float, q: float, *, reduction: str = "mean") -> Tensor:
    """Asymmetric GCE ``((a + 1)^q - (a + p_y)^q) / q`` (Zhou et al. 2021), a > 0, q > 0."""
    logits, targets = _prepare(logits, targets)
    _, logp_y = _log_probs(logits, targets)
    return _reduce(_agce(logp_y, a, q), reduction)


def nce_agce(
    logits: Tensor,
    targets: Tensor,
    alpha: float,
    beta: float,
    a: float,
    q: float,
    *,
    reduction: str = "mean",
) -> Tensor:
    """``alpha * NCE + beta * AGCE`` (Zhou et al. 2021)."""
    logits, targets = _prepare(logits, targets)
    logp, logp_y = _log_probs(logits, targets)
    return _reduce(alpha * _nce(logp, logp_y) + beta * _agce(logp_y, a, q), reduction)


def tce(logits: Tensor, targets: Tensor, t: int, *, reduction: str = "mean") -> Tensor:
    """Taylor cross entropy ``sum_{n=1..t} (1 - p_y)^n / n`` (Feng et al. 2020; paper Eq. 6).

    t = 1 is MAE; t -> inf tends to CE (the Taylor series of -log p_y around p_y = 1).
    """
    logits, targets = _prepare(logits, targets)
    _, logp_y = _log_probs(logits, targets)
    u = _one_minus_p(logp_y)[:, None]
    orders = torch.arange(1, int(t) + 1, device=u.device, dtype=u.dtype)
    return _reduce((u**orders / orders).sum(dim=1), reduction)


def js(logits: Tensor, targets: Tensor, pi: float, *, reduction: str = "mean") -> Tensor:
    """Jensen-Shannon loss (Englesson & Azizpour 2021; paper Eq. 7), 0 < pi < 1.

    ``m = pi e_y + (1 - pi) p``;
    ``loss = [pi KL(e_y || m) + (1 - pi) KL(p || m)] / (-(1 - pi) log(1 - pi))``,
    with every probability clamped at 1e-7 inside the logs (0 log 0 = 0). pi -> 0 tends to CE,
    pi -> 1 (slowly) to MAE. The logs of m off the label are ``log(1 - pi) + log p_k``,
    computed in log space.
    """
    logits, targets = _prepare(logits, targets)
    logp, logp_y = _log_probs(logits, targets)
    floor = math.log(_PROB_FLOOR)
    p = logp.exp()
    is_y = torch.zeros_like(p, dtype=torch.bool).scatter_(1, targets[:, None], True)
    # log m_k: log(pi + (1 - pi) p_y) on the label, log(1 - pi) + log p_k elsewhere
    log_m_y = torch.log(pi + (1.0 - pi) * logp_y.exp())
    log_m = torch.where(is_y, log_m_y[:, None], math.log1p(-pi) + logp).clamp_min(floor)
    kl_label = -log_m_y.clamp_min(floor)  # KL(e_y || m) = -log m_y
    kl_pred = (p * (logp.clamp_min(floor) - log_m)).sum(dim=1)  # KL(p || m)
    scale = -(1.0 - pi) * math.log1p(-pi)
    return _reduce((pi * kl_label + (1.0 - pi) * kl_pred) / scale, reduction)


def poly1(logits: Tensor, targets: Tensor, epsilon: float, *, reduction: str = "mean") -> Tensor:
    """Poly-1 ``CE + epsilon (1 - p_y)`` (Leng et al. 2022)."""
    logits, targets = _prepare(logits, targets)
    _, logp_y = _log_probs(logits, targets)
    return _reduce(_ce(logp_y) + epsilon * _one_minus_p(logp_y), reduction)


# --- bi-tempered logistic loss ----------------------------------------------------------------


def _log_t(u: Tensor, t: float) -> Tensor:
    """Tempered log ``(u^(1-t) - 1) / (1 - t)``; ``log u`` at t = 1."""
    if t == 1.0:
        return torch.log(u)
    return (u ** (1.0 - t) - 1.0) / (1.0 - t)


def _exp_t(u: Tensor, t: float) -> Tensor:
    """Tempered exp ``[1 + (1 - t) u]_+^(1 / (1 - t))``; ``exp u`` at t = 1."""
    if t == 1.0:
        return torch.exp(u)
    return torch.relu(1.0 + (1.0 - t) * u) ** (1.0 / (1.0 - t))


def _neg_log_t_of_exp(log_u: Tensor, t: float) -> Tensor:
    """``-log_t(u)`` from ``log u``: ``-log u`` at t = 1, else ``-expm1((1-t) log u) / (1-t)``."""
    if t == 1.0:
        return -log_u
    return -torch.expm1((1.0 - t) * log_u) / (1.0 - t)


def tempered_log_softmax(logits: Tensor, t: float, num_iters: int = 5) -> Tensor:
    """log of the tempered softmax ``exp_t(a - G(a))`` of Amid et al. (2019), t >= 1.

    t = 1 is ``log_softmax``. For t > 1 the normaliser G is found by the paper's fixed-point
    iteration (``num_iters`` rounds, as in the authors' and the DAL authors' code; after 5 rounds
    the probabilities sum to 1 up to about 1e-3 for typical logits, exactly only in the limit).
    The log is taken analytically, ``log exp_t(u) = log1p((1 - t) u) / (1 - t)``, so it stays
    finite for extreme logits (the tempered softmax has heavy tails: no probability is 0).
    """
    if t == 1.0:
        return F.log_softmax(logits, dim=1)
    mu = logits.max(dim=1, keepdim=True).values
    shifted = logits - mu
    current = shifted
    for _ in range(int(num_iters)):
        partition = _exp_t(current, t).sum(dim=1, keepdim=True)
        current = shifted * partition ** (1.0 - t)
    partition = _exp_t(current, t).sum(dim=1, keepdim=True)
    normaliser = -_log_t(1.0 / partition, t) + mu
    return torch.log1p((1.0 - t) * (logits - normaliser)) / (1.0 - t)


def btl(
    logits: Tensor,
    targets: Tensor,
    t1: float,
    t2: float,
    num_iters: int = 5,
    *,
    reduction: str = "mean",
) -> Tensor:
    """Bi-tempered logistic loss (Amid et al. 2019), 0 <= t1 <= 1 <= t2.

    With p the tempered softmax of temperature t2 (see ``tempered_log_softmax``: ordinary
    softmax for t2 = 1, ``num_iters`` fixed-point rounds otherwise) and one-hot y::

        sum_k [ y_k (log_t1(y_k) - log_t1(p_k)) - (y_k^(2-t1) - p_k^(2-t1)) / (2 - t1) ]
        = -log_t1(p_y) - 1 / (2 - t1) + sum_k p_k^(2-t1) / (2 - t1)

    The zero entries of y use the exact limit ``0 * log_t1(0) = 0`` (the authors' code adds
    1e-6 to y inside log_t instead, which shifts the value by about 1e-6). t1 = 1 uses the
    ordinary log, so t1 = t2 = 1 is exactly CE (-log p_y - 1 + sum_k p_k). Powers of p are
    computed as ``exp(s * log p)`` so gradients stay finite when p underflows.
    """
    logits, targets = _prepare(logits, targets)
    logp = tempered_log_softmax(logits, t2, num_iters)
    logp_y = logp.gather(1, targets[:, None]).squeeze(1)
    power = 2.0 - t1
    spread = (torch.exp(power * logp).sum(dim=1) - 1.0) / power
    return _reduce(_neg_log_t_of_exp(logp_y, t1) + spread, reduction)


def ce_sr(
    logits: Tensor,
    targets: Tensor,
    tau: float,
    lam: float,
    p: float,
    *,
    reduction: str = "mean",
) -> Tensor:
    """CE with sparse regularisation (Zhou et al., ICCV 2021).

    ``z = logits / max(||logits||_2, 1e-12) / tau`` per sample (L2 normalisation then
    temperature tau); ``loss = CE(z, y) + lam * sum_k clamp(s_k, 1e-7, 1)^p`` with s =
    softmax(z). lam is the current weight (it grows over training, see
    ``dal_backdoor.schedules.SRLambdaSchedule``). The normalisation makes the gradient scale
    like 1 / ||logits||: finite, but large for logits that are all close to 0.
    """
    logits, targets = _prepare(logits, targets)
    z = F.normalize(logits, dim=1) / tau
    logs, logs_y = _log_probs(z, targets)
    sparsity = (p * logs.clamp_min(math.log(_PROB_FLOOR))).exp().sum(dim=1)
    return _reduce(_ce(logs_y) + lam * sparsity, reduction)


def _bootstrap(logp: Tensor, kind: str) -> Tensor:
    """DAL's bootstrap term: ``-max_k log p_k`` ("max") or the entropy ("entropy")."""
    if kind == "max":
        return -logp.max(dim=1).values
    return -(logp.exp() * logp).sum(dim=1)


def dal(
    logits: Tensor,
    targets: Tensor,
    q: float,
    lam: float,
    bootstrap: str = "max",
    *,
    reduction: str = "mean",
) -> Tensor:
    """Dynamics-aware loss at one instant (paper Algorithm 1): ``GCE_q + lam * B / (q log K)``.

    ``bootstrap="max"`` (default, the paper's Eq. 13): B = -log max_k p_k.
    ``bootstrap="entropy"``: B = -sum_k p_k log p_k, the prediction entropy, which the authors'
    public code (XiuchuanLi/DAL, ``utils/losses.py``) later switched to (it adds 1e-6 inside the
    log; here 0 log 0 = 0 exactly). Both lie in [0, log K], hence the division by log K.
    q and lam come from ``dal_backdoor.schedules.DALSchedule``; lam = 0 is DGCE / GCE.
    """
    logits, targets = _prepare(logits, targets)
    check_choice("bootstrap", bootstrap, BOOTSTRAPS)
    logp, logp_y = _log_probs(logits, targets)
    num_classes = logits.shape[1]
    loss = _gce(logp_y, q) + lam * _bootstrap(logp, bootstrap) / (q * math.log(num_classes))
    return _reduce(loss, reduction)


# --- negative learning --------------------------------------------------------------------------


def sample_complementary_labels(
    targets: Tensor, num_classes: int, num_negatives: int, generator: torch.Generator
) -> Tensor:
    """Draw ``num_negatives`` complementary labels per sample, uniform over {c : c != y}.

    Draws are independent (with replacement). Implemented as ``(y + U{1..K-1}) mod K`` with
    ``torch.randint`` on the targets' device using ``generator`` (which must live there).
    Returns int64 of shape (B, num_negatives).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must be >= 2 for complementary labels")
    offsets = torch.randint(
        1, num_classes, (targets.shape[0], int(num_negatives)),
        generator=generator, device=targets.device,
    )
    return (targets.long()[:, None] + offsets) % num_classes


def nlnl(
    logits: Tensor,
    targets: Tensor,
    num_negatives: int,
    generator: torch.Generator,
    class_weights: Tensor | None = None,
    *,
    reduction: str = "mean",
) -> Tensor:
    """Negative learning (NL step of Kim et al., "NLNL", ICCV 2019), as the DAL authors train it.

    For each sample, ``num_negatives`` complementary labels c != y are drawn (see
    ``sample_complementary_labels``) and the per-sample loss is
    ``sum_draws -w_y log(clamp(1 - p_c, 1e-5, 1))`` with ``w = class_weights`` (1 if None).
    The mean reduction is the batch mean of these per-sample sums, which is how the authors'
    code scales it. ``1 - p_c`` is computed as ``sum_{k != c} p_k`` in log space (a masked
    logsumexp), so there is no cancellation and never a NaN, also for an all-positive batch.
    """
    logits, targets = _prepare(logits, targets)
    batch, num_classes = logits.shape
    negatives = sample_complementary_labels(targets, num_classes, num_negatives, generator)
    drop = F.one_hot(negatives, num_classes).bool()  # (B, N, K)
    others = logits[:, None, :].expand(batch, negatives.shape[1], num_classes)
    log_rest = torch.logsumexp(others.masked_fill(drop, -math.inf), dim=2)
    log_one_minus = log_rest - torch.logsumexp(logits, dim=1, keepdim=True)
    per_draw = -log_one_minus.clamp(math.log(_NLNL_FLOOR), 0.0)
    per_sample = per_draw.sum(dim=1)
    if class_weights is not None:
        weights = class_weights.to(device=logits.device, dtype=logits.dtype)
        per_sample = per_sample * weights[targets]
    return _reduce(per_sample, reduction)


def inverse_frequency_weights(labels: Tensor, num_classes: int) -> Tensor:
    """NLNL's class weights in the authors' code: ``max_c n_c / n_c`` per class (float32).

    Classes absent from ``labels`` get weight 1 (they never appear as a label anyway).
    """
    counts = torch.bincount(labels.long().flatten(), minlength=num_classes).float()
    weights = counts.max() / counts.clamp_min(1.0)
    return torch.where(counts > 0, weights, torch.ones_like(weights))
