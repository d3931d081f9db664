"""Epoch schedules of the dynamic losses: DAL's q(t) and lambda(t), CE+SR's lambda(t).

Pure, immutable objects: every method is a function of the paper's 1-based epoch index
``t = 1..T`` (the value the trainer passes to ``loss.set_epoch(t)`` before epoch ``t``).

DAL (Li et al., "Dynamics-Aware Loss for Learning with Label Noise", Algorithm 1)::

    t0   = (1 - qs) / (qe - qs) * T
    q(t) = qs + (qe - qs) * t / T
    lam(t) = 0                               if t < t0 or t0 > T
           = lambda_e * (t - t0) / (T - t0)  otherwise

so ``q(T) = qe`` and ``lam(T) = lambda_e`` whenever the bootstrap term is active at all. The
bootstrap weight becomes positive exactly when q(t) exceeds 1 (the paper only adds the term
"when q > 1").

``convention="reference"`` reproduces the authors' public code (XiuchuanLi/DAL, ``cifar.py``),
which indexes epochs ``i = 0..T-1`` and uses ``i`` where Algorithm 1 uses ``t``::

    q  = qs + (qe - qs) * i / T
    lam = max(0, (i - t0) / (T - t0)) * lambda_e       (i = t - 1)

so the first epoch trains with q = qs exactly and the last one with q = qe - (qe - qs) / T.

Edge cases (both conventions, always finite, never a division by zero):

* ``q_end == q_start`` (constant q): t0 is undefined. If q < 1 the bootstrap term stays off
  (lam = 0); if q >= 1 it is taken as t0 = 0, so lam grows from the first epoch.
* ``q_end <= 1``: q never exceeds 1, t0 >= T, and lam = 0 at every epoch. This includes the
  t0 == T case where the formula would read 0/0 at t = T. (The authors' code would divide by
  zero for t0 == T and would yield a *positive* lambda for t0 > T, because numerator and
  denominator are both negative; we keep lam = 0, which is what Algorithm 1 says.)
* ``q_start >= 1``: t0 <= 0, so lam > 0 from the first epoch (and T - t0 >= T > 0).
* ``q_end < q_start``: rejected with ConfigError (q must not decrease).
* ``t`` outside 1..T: rejected with ConfigError (no silent clamping).

CE+SR (Zhou et al., "Learning with Noisy Labels via Sparse Regularization", ICCV 2021): the
regulariser weight grows geometrically, ``lam(t) = lam0 * rho ** floor((t - 1) / r)``; the DAL
authors' code multiplies by rho once per epoch (r = 1), starting from lam0 at the first epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_choice, check_number

CONVENTIONS = ("paper", "reference")


@dataclass(frozen=True)
class DALSchedule:
    """DAL's q(t) and lambda(t) (Algorithm 1) for the 1-based epoch index t = 1..T.

    Args:
        q_start: qs, the GCE exponent at the start (> 0; Table 1: 0.8 CIFAR-10, 0.6 CIFAR-100).
        q_end: qe, the exponent at the end (>= q_start; the paper always uses 1.5).
        lambda_end: lambda_e, the final weight of the bootstrap term (>= 0; paper: 1.0).
        total_epochs: T (integer >= 1).
        convention: "paper" (Algorithm 1, t = 1..T) or "reference" (authors' code, i = t - 1).
    """

    q_start: float
    q_end: float
    lambda_end: float
    total_epochs: int
    convention: str = "paper"

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen dataclass: store the normalised values
        set_(self, "q_start", check_number("q_start", self.q_start, low=0, low_open=True))
        set_(self, "q_end", check_number("q_end", self.q_end, low=0, low_open=True))
        set_(self, "lambda_end", check_number("lambda_end", self.lambda_end, low=0))
        set_(self, "total_epochs", check_number("total_epochs", self.total_epochs, low=1,
                                                integer=True))
        check_choice("convention", self.convention, CONVENTIONS)
        if self.q_end < self.q_start:
            raise ConfigError(
                f"q_end={self.q_end:g} is not in [q_start, inf) = [{self.q_start:g}, inf); "
                "q must not decrease during training"
            )

    @property
    def t0(self) -> float:
        """Epoch at which q crosses 1 and the bootstrap term switches on (may be inf).

        ``(1 - qs) / (qe - qs) * T``; for a constant q it is ``inf`` when q < 1 and ``0`` when
        q >= 1 (see the module docstring).
        """
        if self.q_end == self.q_start:
            return 0.0 if self.q_start >= 1 else math.inf
        return (1.0 - self.q_start) / (self.q_end - self.q_start) * self.total_epochs

    def _index(self, t: int) -> int:
        """The position used in the formulas: t itself (paper) or i = t - 1 (reference)."""
        t = check_number("epoch t", t, low=1, high=self.total_epochs, integer=True)
        return t if self.convention == "paper" else t - 1

    def q(self, t: int) -> float:
        """The GCE exponent for epoch t (1-based); q(T) = q_end in the paper convention."""
        frac = self._index(t) / self.total_epochs
        # lerp form: exact q_start at frac = 0 and exact q_end at frac = 1
        return self.q_start * (1.0 - frac) + self.q_end * frac

    def lam(self, t: int) -> float:
        """The bootstrap weight for epoch t (1-based); lam(T) = lambda_end when active."""
        x = self._index(t)
        t0, total = self.t0, self.total_epochs
        if t0 >= total or x < t0:  # q never exceeds 1 / not yet past t0
            return 0.0
        return self.lambda_end * (x - t0) / (total - t0)

    def values(self, t: int) -> dict[str, float]:
        """``{"q": q(t), "lam": lam(t)}``."""
        return {"q": self.q(t), "lam": self.lam(t)}


@dataclass(frozen=True)
class SRLambdaSchedule:
    """CE+SR's regulariser weight ``lam(t) = lam0 * rho ** floor((t - 1) / r)`` for t >= 1.

    Args:
        lam0: the initial weight lambda_0 (>= 0).
        rho: the growth factor applied every r epochs (> 0; Table 1: 1.02).
        r: the number of epochs between two multiplications (integer >= 1; Table 1: 1).
    """

    lam0: float
    rho: float
    r: int = 1

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "lam0", check_number("lam", self.lam0, low=0))
        set_(self, "rho", check_number("rho", self.rho, low=0, low_open=True))
        set_(self, "r", check_number("r", self.r, low=1, integer=True))

    def lam(self, t: int) -> float:
        """The weight at epoch t (1-based); ConfigError if it overflows a float."""
        t = check_number("epoch t", t, low=1, integer=True)
        steps = (t - 1) // self.r
        try:
            value = self.lam0 * self.rho**steps
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise ConfigError(
                f"epoch t={t} makes the CE+SR weight lam0 * rho^{steps} overflow; "
                "allowed: epochs for which it stays finite"
            )
        return value
