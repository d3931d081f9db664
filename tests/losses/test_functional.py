"""Closed forms, gradients and numerics of every pure loss in ``losses.functional``.

The hand-built batch has logits = log(p) for known probability rows, so p is known exactly and
each expected value below is computed with ``math`` from the loss's textbook formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from dal_backdoor.errors import ConfigError
from dal_backdoor.losses import functional as F

P = [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]
Y = [0, 2]  # so p_y = 0.5 and 0.3


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.log(torch.tensor(P, dtype=torch.float64)), torch.tensor(Y)


def py(i: int) -> float:
    return P[i][Y[i]]


def per_sample(fn: Callable[..., torch.Tensor], **kw: object) -> list[float]:
    logits, targets = batch()
    return fn(logits, targets, reduction="none", **kw).tolist()


def expect(values: list[float], formula: Callable[[int], float]) -> None:
    assert values == pytest.approx([formula(i) for i in range(len(P))], rel=1e-12, abs=1e-12)


# --- closed forms --------------------------------------------------------------------------------

LOG_1E4 = -math.log(1e-4)


def test_ce_mae_gce_poly1_closed_forms() -> None:
    expect(per_sample(F.ce), lambda i: -math.log(py(i)))
    expect(per_sample(F.mae), lambda i: 1 - py(i))
    expect(per_sample(F.gce, q=0.5), lambda i: (1 - math.sqrt(py(i))) / 0.5)
    expect(per_sample(F.gce, q=1.5), lambda i: (1 - py(i) ** 1.5) / 1.5)
    expect(per_sample(F.poly1, epsilon=2.0), lambda i: -math.log(py(i)) + 2 * (1 - py(i)))


def test_rce_sce_closed_forms() -> None:
    expect(per_sample(F.rce), lambda i: LOG_1E4 * (1 - py(i)))
    expect(
        per_sample(F.sce, alpha=0.1, beta=10.0),
        lambda i: 0.1 * -math.log(py(i)) + 10.0 * LOG_1E4 * (1 - py(i)),
    )


def test_rce_clamps_tiny_probabilities_at_1e7() -> None:
    logits = torch.tensor([[0.0, -40.0, -40.0]], dtype=torch.float64)  # p_1, p_2 ~ 4e-18
    value = F.rce(logits, torch.tensor([0])).item()
    assert value == pytest.approx(LOG_1E4 * 2e-7, rel=1e-9)


def nce_value(i: int) -> float:
    return -math.log(py(i)) / -sum(math.log(p) for p in P[i])


def agce_value(i: int, a: float, q: float) -> float:
    return ((a + 1) ** q - (a + py(i)) ** q) / q


def test_nce_agce_families_closed_forms() -> None:
    expect(per_sample(F.nce), nce_value)
    expect(per_sample(F.nce_rce, alpha=1.0, beta=0.1),
           lambda i: nce_value(i) + 0.1 * LOG_1E4 * (1 - py(i)))
    assert per_sample(F.agce, a=1.0, q=2.0) == pytest.approx([0.875, 1.155], rel=1e-12)
    expect(per_sample(F.agce, a=6.0, q=1.5), lambda i: agce_value(i, 6.0, 1.5))
    expect(per_sample(F.nce_agce, alpha=10.0, beta=0.1, a=3.0, q=3.0),
           lambda i: 10 * nce_value(i) + 0.1 * agce_value(i, 3.0, 3.0))


def test_tce_closed_form() -> None:
    assert per_sample(F.tce, t=2) == pytest.approx([0.625, 0.945], rel=1e-12)
    expect(per_sample(F.tce, t=3), lambda i: sum((1 - py(i)) ** n / n for n in (1, 2, 3)))


def test_js_closed_form_and_textbook_formula() -> None:
    # pi = 0.5, p = (0.5, 0.3, 0.2), y = 0: m = (0.75, 0.15, 0.1) and the loss reduces to
    # 1.5 log(4/3) / log 2.
    assert per_sample(F.js, pi=0.5)[0] == pytest.approx(1.5 * math.log(4 / 3) / math.log(2))

    def textbook(i: int, pi: float) -> float:
        e = [1.0 if k == Y[i] else 0.0 for k in range(3)]
        m = [pi * e[k] + (1 - pi) * P[i][k] for k in range(3)]
        kl_e = sum(e[k] * math.log(e[k] / m[k]) for k in range(3) if e[k] > 0)
        kl_p = sum(P[i][k] * math.log(P[i][k] / m[k]) for k in range(3))
        return (pi * kl_e + (1 - pi) * kl_p) / (-(1 - pi) * math.log(1 - pi))

    for pi in (0.1, 0.5, 0.9):
        expect(per_sample(F.js, pi=pi), lambda i, pi=pi: textbook(i, pi))


def test_ce_sr_closed_form() -> None:
    logits = torch.tensor([[3.0, 4.0, 0.0]], dtype=torch.float64)  # norm 5
    z = [0.6 / 0.5, 0.8 / 0.5, 0.0]
    denom = sum(math.exp(v) for v in z)
    s = [math.exp(v) / denom for v in z]
    expected = -math.log(s[1]) + 1.5 * sum(v**0.1 for v in s)
    value = F.ce_sr(logits, torch.tensor([1]), tau=0.5, lam=1.5, p=0.1).item()
    assert value == pytest.approx(expected, rel=1e-12)
    # scaling the logits does not change anything (they are L2-normalised first)
    scaled = F.ce_sr(logits * 7.0, torch.tensor([1]), tau=0.5, lam=1.5, p=0.1).item()
    assert scaled == pytest.approx(expected, rel=1e-12)


def test_dal_closed_forms_for_both_bootstraps() -> None:
    q, lam = 1.5, 0.7
    expect(per_sample(F.dal, q=q, lam=lam),
           lambda i: (1 - py(i) ** q) / q + lam * -math.log(max(P[i])) / (q * math.log(3)))
    expect(per_sample(F.dal, q=q, lam=lam, bootstrap="entropy"),
           lambda i: (1 - py(i) ** q) / q
           + lam * -sum(p * math.log(p) for p in P[i]) / (q * math.log(3)))


def test_btl_closed_form_with_ordinary_softmax() -> None:
    t1 = 0.5  # t2 = 1: p is the ordinary softmax
    expect(per_sample(F.btl, t1=t1, t2=1.0),
           lambda i: -(py(i) ** (1 - t1) - 1) / (1 - t1)
           - (1 - sum(p ** (2 - t1) for p in P[i])) / (2 - t1))


def test_tempered_softmax_inverts_tempered_log() -> None:
    # exp_t(log_t(p)) = p with normaliser 0, so the fixed point must give back p.
    t2 = 3.0
    probs = torch.tensor(P, dtype=torch.float64)
    logits = (probs ** (1 - t2) - 1) / (1 - t2)
    converged = F.tempered_log_softmax(logits, t2, num_iters=60).exp()
    assert torch.allclose(converged, probs, atol=1e-10)
    five = F.tempered_log_softmax(logits, t2, num_iters=5).exp()
    assert torch.allclose(five, probs, atol=2e-3)
    assert not torch.allclose(five, probs, atol=1e-12)  # 5 rounds are an approximation


def test_btl_tempered_matches_its_definition() -> None:
    t1, t2 = 0.7, 3.0
    logits, targets = torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 1, 4, 2])
    p = F.tempered_log_softmax(logits, t2).exp()
    onehot = torch.nn.functional.one_hot(targets, 5).double()
    log_t = (p ** (1 - t1) - 1) / (1 - t1)
    expected = (-onehot * log_t - (onehot - p ** (2 - t1)) / (2 - t1)).sum(dim=1)
    assert torch.allclose(F.btl(logits, targets, t1, t2, reduction="none"), expected)


def test_nlnl_two_classes_is_deterministic_closed_form() -> None:
    # with K = 2 the only complementary label is the other class
    logits = torch.log(torch.tensor([[0.8, 0.2], [0.4, 0.6]], dtype=torch.float64))
    targets = torch.tensor([0, 0])
    gen = torch.Generator().manual_seed(0)
    values = F.nlnl(logits, targets, 3, gen, reduction="none").tolist()
    assert values == pytest.approx([-3 * math.log(0.8), -3 * math.log(0.4)], rel=1e-12)
    weights = torch.tensor([2.0, 5.0])
    weighted = F.nlnl(logits, targets, 3, gen, weights, reduction="none").tolist()
    assert weighted == pytest.approx([-6 * math.log(0.8), -6 * math.log(0.4)], rel=1e-12)


# --- special cases and limits --------------------------------------------------------------------


def assert_same(a: list[float], b: list[float], tol: float = 1e-12) -> None:
    assert a == pytest.approx(b, rel=tol, abs=tol)


def test_interpolation_limits() -> None:
    ce = per_sample(F.ce)
    mae = per_sample(F.mae)
    assert_same(per_sample(F.gce, q=1e-7), ce, tol=1e-6)
    assert_same(per_sample(F.gce, q=1.0), mae)
    assert_same(per_sample(F.tce, t=1), mae)
    assert_same(per_sample(F.tce, t=400), ce, tol=1e-9)
    assert_same(per_sample(F.js, pi=1e-6), ce, tol=1e-5)
    assert_same(per_sample(F.poly1, epsilon=0.0), ce)
    assert_same(per_sample(F.btl, t1=1.0, t2=1.0), ce)
    assert_same(per_sample(F.dal, q=0.8, lam=0.0), per_sample(F.gce, q=0.8))
    assert_same(per_sample(F.sce, alpha=1.0, beta=0.0), ce)


# --- reductions, dtypes, shapes ------------------------------------------------------------------

LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "ce": F.ce,
    "mae": F.mae,
    "gce": lambda x, y, **kw: F.gce(x, y, 0.7, **kw),
    "rce": F.rce,
    "sce": lambda x, y, **kw: F.sce(x, y, 0.1, 10.0, **kw),
    "nce": F.nce,
    "nce_rce": lambda x, y, **kw: F.nce_rce(x, y, 1.0, 0.1, **kw),
    "agce": lambda x, y, **kw: F.agce(x, y, 1e-5, 0.5, **kw),
    "nce_agce": lambda x, y, **kw: F.nce_agce(x, y, 1.0, 0.4, 6.0, 1.5, **kw),
    "tce": lambda x, y, **kw: F.tce(x, y, 18, **kw),
    "js": lambda x, y, **kw: F.js(x, y, 0.9, **kw),
    "poly1": lambda x, y, **kw: F.poly1(x, y, 10.0, **kw),
    "btl": lambda x, y, **kw: F.btl(x, y, 0.7, 3.0, **kw),
    "btl_t2_1": lambda x, y, **kw: F.btl(x, y, 0.7, 1.0, **kw),
    "ce_sr": lambda x, y, **kw: F.ce_sr(x, y, 0.5, 8.0, 0.01, **kw),
    "dal": lambda x, y, **kw: F.dal(x, y, 1.5, 1.0, **kw),
    "dal_entropy": lambda x, y, **kw: F.dal(x, y, 1.5, 1.0, "entropy", **kw),
    # a fresh generator per call, so repeated calls (gradcheck) see the same labels
    "nlnl": lambda x, y, **kw: F.nlnl(x, y, 5, torch.Generator().manual_seed(3), **kw),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_reductions_agree(name: str) -> None:
    fn = LOSSES[name]
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 3, 4, 0])
    none = fn(logits, targets, reduction="none")
    assert none.shape == (6,)
    assert torch.all(torch.isfinite(none))
    assert fn(logits, targets).item() == pytest.approx(none.mean().item(), rel=1e-12)
    assert fn(logits, targets, reduction="sum").item() == pytest.approx(none.sum().item())
    with pytest.raises(ConfigError, match="unknown reduction 'avg'"):
        fn(logits, targets, reduction="avg")


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck(name: str) -> None:
    fn = LOSSES[name]
    logits = torch.randn(3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    logits.requires_grad_(True)
    targets = torch.tensor([0, 3, 1])
    assert torch.autograd.gradcheck(lambda x: fn(x, targets), (logits,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(LOSSES))
def test_extreme_logits_and_half_precision_stay_finite(name: str, dtype: torch.dtype) -> None:
    fn = LOSSES[name]
    logits = torch.tensor(
        [[1e4, -1e4, 0.0, 5.0, -3.0], [-1e4, 1e4, 1e4, 0.0, 0.0], [0.1, -0.2, 0.3, 0.0, 0.0]],
        dtype=dtype, requires_grad=True,
    )
    targets = torch.tensor([1, 0, 2])  # includes labels with p_y underflowing to 0
    loss = fn(logits, targets)
    loss.backward()
    assert loss.dtype == torch.float32  # upcast, computed in float32
    assert torch.isfinite(loss)
    assert logits.grad is not None
    assert torch.all(torch.isfinite(logits.grad))


def test_float64_stays_float64_and_half_matches_float32() -> None:
    logits, targets = batch()
    assert F.gce(logits, targets, 0.7).dtype == torch.float64
    half = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float16)
    expected = F.gce(half.float(), torch.tensor([2]), 0.7).item()
    assert F.gce(half, torch.tensor([2]), 0.7).item() == expected


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"logits must have shape \(B, K\)"):
        F.ce(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"targets must have shape \(2,\)"):
        F.ce(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="unknown bootstrap 'mean'"):
        F.dal(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 1.0, 1.0, "mean")
