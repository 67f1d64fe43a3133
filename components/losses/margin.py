"""Margin-based losses as functions of the agreement ``v``.

A margin-based loss depends on one number, the *agreement*: ``v = y * f(x)`` for a binary
label ``y`` in {-1, +1}, or ``v = score(pos) - score(neg)`` for pairwise ranking (BPR-style
training). The definitions follow LossFunctions.jl (JuliaML):

============================  ==============================================  ==========
name                          phi(v) at the default margin                     default m
============================  ==============================================  ==========
``zero_one``                  1 if v < 0 else 0                                0
``perceptron``                max(0, -v)                                       0
``l1_hinge``                  max(0, 1 - v)                                    1
``smoothed_l1_hinge(gamma)``  0.5/gamma * max(0, 1-v)^2 if v >= 1 - gamma      1
                              else 1 - gamma/2 - v
``modified_huber``            max(0, 1-v)^2 if v >= -1 else -4 v               1
                              (= 4 * smoothed_l1_hinge(gamma=2))
``dwd_margin(q)``             1 - v if v <= q/(q+1)                            1
                              else q^q / (q+1)^(q+1) / v^q
``l2_margin``                 (1 - v)^2                                        1
``l2_hinge``                  max(0, 1 - v)^2                                  1
``sigmoid``                   1 - tanh(v)                                      0
``logit_margin``              log(1 + exp(-v))    (= BPR's -log sigmoid(v))    0
``exp``                       exp(-v)                                          0
============================  ==============================================  ==========

The margin ``m`` shifts the agreement: ``loss_m(v) = phi(v - m + m0)`` where ``m0`` is the
loss's natural threshold (the default margin above). So ``l1_hinge(m=0.5)`` is
``max(0, 0.5 - v)``, ``l2_margin(m)`` is ``(m - v)^2``, ``perceptron(m)`` is ``max(0, m - v)``
and ``logit_margin(m)`` is ``log(1 + exp(m - v))`` (a "margin BPR"). Losses with a real
threshold (a kink, a zero region or a target value) have ``properties.has_threshold``; for
the smooth ones (sigmoid, logit_margin, exp) ``m`` is only a shift.

Every loss object is a callable ``loss(v) -> tensor`` (elementwise, same shape and dtype as
``v``) with ``loss.deriv(v)`` (d loss / d v, equal to autograd wherever the loss is
differentiable; at a kink it returns the one-sided value LossFunctions.jl uses) and
``loss.properties`` (a :class:`LossProperties`, computed for the given parameters).

Numerics: ``logit_margin`` is ``softplus(-v)`` written as ``-logsigmoid(v)`` (never overflows);
``exp`` continues linearly (its tangent) below ``v = m - EXP_CLAMP`` so it never overflows and
keeps a non-zero, autograd-consistent gradient; ``dwd_margin`` never evaluates ``v^q`` at
non-positive ``v`` (no NaN gradients through the unused branch).

Public API: :func:`get_loss`, :func:`get_training_loss`, :func:`require_trainable`,
:func:`loss_names`, :func:`pairwise_loss`, :class:`MarginLoss`, :class:`LossProperties`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F

from components.errors import ConfigError

#: ``exp`` is exp(-u) for u >= -EXP_CLAMP and its tangent line below (e^50 ~ 5e21 fits float32).
EXP_CLAMP = 50.0


@dataclass(frozen=True)
class LossProperties:
    """Mathematical properties of a margin loss phi (for its parameters), as data.

    ``lipschitz`` means globally Lipschitz continuous; ``locally_lipschitz`` is implied by
    ``lipschitz``. ``clipable`` follows Steinwart & Christmann: phi(clip(v)) <= phi(v) when v
    is clipped to [-M, M] with M = max(1, |m|). ``classification_calibrated`` follows
    Bartlett, Jordan & McAuliffe (2006): for a convex phi it holds iff phi is differentiable at
    0 with phi'(0) < 0. ``zero_grad_ae`` marks losses whose gradient is zero almost
    everywhere: usable for evaluation, refused for training.
    """

    convex: bool
    strictly_convex: bool
    strongly_convex: bool
    lipschitz: bool
    locally_lipschitz: bool
    continuous: bool
    differentiable: bool
    clipable: bool
    classification_calibrated: bool
    has_threshold: bool
    zero_grad_ae: bool

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


class MarginLoss:
    """Base class: ``phi`` evaluated at the shifted agreement ``u = v - m + m0``.

    Subclasses set ``name``, ``default_m`` (= m0), ``extra_params`` (name -> default) and
    implement ``_phi(u)`` / ``_dphi(u)`` for the canonical loss and ``_properties()``.
    """

    name: ClassVar[str]
    default_m: ClassVar[float] = 0.0
    extra_params: ClassVar[dict[str, float]] = {}

    def __init__(self, m: float | None = None, **params: float):
        self.m = float(self.default_m if m is None else m)
        if not math.isfinite(self.m):
            raise ConfigError(f"loss '{self.name}': margin m must be a finite number, got {m!r}")
        self.params = {k: float(v) for k, v in self.extra_params.items()}
        for k, v in params.items():
            try:
                self.params[k] = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"loss '{self.name}': parameter '{k}' must be a number, got {v!r}") from None
        self._validate()

    # -- subclass hooks ---------------------------------------------------------------
    def _validate(self) -> None:
        """Raise ConfigError for invalid parameters."""

    def _phi(self, u: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _dphi(self, u: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _properties(self) -> LossProperties:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public -----------------------------------------------------------------------
    def _shift(self, v: torch.Tensor) -> torch.Tensor:
        v = torch.as_tensor(v)
        if not v.is_floating_point():
            v = v.to(torch.get_default_dtype())
        shift = self.default_m - self.m
        return v + shift if shift != 0.0 else v

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """Elementwise loss of the agreement ``v`` (any shape)."""
        return self._phi(self._shift(v))

    def deriv(self, v: torch.Tensor) -> torch.Tensor:
        """Elementwise derivative d loss / d v (equals autograd where differentiable)."""
        return self._dphi(self._shift(v))

    @property
    def properties(self) -> LossProperties:
        """The loss's mathematical properties for its current parameters."""
        return self._properties()

    @property
    def trainable(self) -> bool:
        """False when the gradient is zero almost everywhere (nothing to learn from)."""
        return not self.properties.zero_grad_ae

    def config(self) -> dict:
        """``{"name": ..., "params": {...}}`` that :func:`get_loss` accepts back."""
        return {"name": self.name, "params": {"m": self.m, **self.params}}

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}={v:g}" for k, v in {"m": self.m, **self.params}.items())
        return f"{type(self).__name__}({ps})"

    def _calibrated_convex(self) -> bool:
        """Convex phi: calibrated iff differentiable at v=0 with negative derivative there."""
        return bool(self.deriv(torch.zeros((), dtype=torch.float64)) < 0)


def _props(**kw) -> LossProperties:
    kw.setdefault("locally_lipschitz", True)
    kw.setdefault("continuous", True)
    kw.setdefault("strongly_convex", False)
    kw.setdefault("zero_grad_ae", False)
    return LossProperties(**kw)


class ZeroOne(MarginLoss):
    """1 if v < m else 0 (ties at the margin count as correct, as in LossFunctions.jl)."""

    name = "zero_one"
    default_m = 0.0

    def _phi(self, u):
        return (u < 0).to(u.dtype)

    def _dphi(self, u):
        return torch.zeros_like(u)

    def _properties(self):
        # The reference loss: calibration is defined with respect to it (ties broken).
        return _props(convex=False, strictly_convex=False, lipschitz=False, locally_lipschitz=False,
                      continuous=False, differentiable=False, clipable=True,
                      classification_calibrated=True, has_threshold=True, zero_grad_ae=True)


class Perceptron(MarginLoss):
    """max(0, m - v)."""

    name = "perceptron"
    default_m = 0.0

    def _phi(self, u):
        return torch.clamp(-u, min=0)

    def _dphi(self, u):
        return torch.where(u >= 0, torch.zeros_like(u), -torch.ones_like(u))

    def _properties(self):
        return _props(convex=True, strictly_convex=False, lipschitz=True, differentiable=False,
                      clipable=True, classification_calibrated=self.m > 0, has_threshold=True)


class L1Hinge(MarginLoss):
    """max(0, m - v); the hinge loss (m = 1)."""

    name = "l1_hinge"
    default_m = 1.0

    def _phi(self, u):
        return torch.clamp(1 - u, min=0)

    def _dphi(self, u):
        return torch.where(u >= 1, torch.zeros_like(u), -torch.ones_like(u))

    def _properties(self):
        return _props(convex=True, strictly_convex=False, lipschitz=True, differentiable=False,
                      clipable=True, classification_calibrated=self.m > 0, has_threshold=True)


class SmoothedL1Hinge(MarginLoss):
    """Hinge with a quadratic piece of width gamma before the margin (gamma > 0)."""

    name = "smoothed_l1_hinge"
    default_m = 1.0
    extra_params = {"gamma": 1.0}

    def _validate(self):
        g = self.params["gamma"]
        if not (math.isfinite(g) and g > 0):
            raise ConfigError(f"loss 'smoothed_l1_hinge': gamma must be > 0, got {g!r}")

    def _phi(self, u):
        g = self.params["gamma"]
        quad = 0.5 / g * torch.clamp(1 - u, min=0) ** 2
        lin = 1 - g / 2 - u
        return torch.where(u >= 1 - g, quad, lin)

    def _dphi(self, u):
        g = self.params["gamma"]
        quad = torch.clamp(u - 1, max=0) / g
        return torch.where(u >= 1 - g, quad, -torch.ones_like(u))

    def _properties(self):
        return _props(convex=True, strictly_convex=False, lipschitz=True, differentiable=True,
                      clipable=True, classification_calibrated=self._calibrated_convex(),
                      has_threshold=True)


class ModifiedHuber(MarginLoss):
    """max(0, m - v)^2 if v >= m - 2 else -4 (v - m + 1); equals 4 * smoothed_l1_hinge(gamma=2)."""

    name = "modified_huber"
    default_m = 1.0

    def _phi(self, u):
        return torch.where(u >= -1, torch.clamp(1 - u, min=0) ** 2, -4 * u)

    def _dphi(self, u):
        return torch.where(u >= -1, 2 * torch.clamp(u - 1, max=0), torch.full_like(u, -4.0))

    def _properties(self):
        return _props(convex=True, strictly_convex=False, lipschitz=True, differentiable=True,
                      clipable=True, classification_calibrated=self._calibrated_convex(),
                      has_threshold=True)


class DWDMargin(MarginLoss):
    """Distance-weighted discrimination: linear up to q/(q+1), then a q-power tail (q > 0)."""

    name = "dwd_margin"
    default_m = 1.0
    extra_params = {"q": 1.0}

    def _validate(self):
        q = self.params["q"]
        if not (math.isfinite(q) and q > 0):
            raise ConfigError(f"loss 'dwd_margin': q must be > 0, got {q!r}")

    def _phi(self, u):
        q = self.params["q"]
        t = q / (q + 1)
        # q^q / (q+1)^(q+1) / u^q written as (t/u)^q / (q+1): no overflow for large q
        tail = (t / torch.clamp(u, min=t)) ** q / (q + 1)
        return torch.where(u <= t, 1 - u, tail)

    def _dphi(self, u):
        q = self.params["q"]
        t = q / (q + 1)
        tail = -((t / torch.clamp(u, min=t)) ** (q + 1))
        return torch.where(u <= t, -torch.ones_like(u), tail)

    def _properties(self):
        return _props(convex=True, strictly_convex=False, lipschitz=True, differentiable=True,
                      clipable=False, classification_calibrated=self._calibrated_convex(),
                      has_threshold=True)


class L2Margin(MarginLoss):
    """(m - v)^2: least squares on the agreement."""

    name = "l2_margin"
    default_m = 1.0

    def _phi(self, u):
        return (1 - u) ** 2

    def _dphi(self, u):
        return 2 * (u - 1)

    def _properties(self):
        return _props(convex=True, strictly_convex=True, strongly_convex=True, lipschitz=False,
                      differentiable=True, clipable=True,
                      classification_calibrated=self._calibrated_convex(), has_threshold=True)


class L2Hinge(MarginLoss):
    """max(0, m - v)^2: the squared (truncated least squares) hinge."""

    name = "l2_hinge"
    default_m = 1.0

    def _phi(self, u):
        return torch.clamp(1 - u, min=0) ** 2

    def _dphi(self, u):
        return 2 * torch.clamp(u - 1, max=0)

    def _properties(self):
        return _props(convex=True, strictly_convex=False, lipschitz=False, differentiable=True,
                      clipable=True, classification_calibrated=self._calibrated_convex(),
                      has_threshold=True)


class Sigmoid(MarginLoss):
    """1 - tanh(v - m), in (0, 2); smooth but non-convex."""

    name = "sigmoid"
    default_m = 0.0

    def _phi(self, u):
        return 1 - torch.tanh(u)

    def _dphi(self, u):
        return -(1 - torch.tanh(u) ** 2)

    def _properties(self):
        # Non-convex, but the conditional risk 1 + (1 - 2 eta) * (...) is minimised on the
        # correct side for every m (LossFunctions.jl: isclasscalibrated = true).
        return _props(convex=False, strictly_convex=False, lipschitz=True, differentiable=True,
                      clipable=False, classification_calibrated=True, has_threshold=False)


class LogitMargin(MarginLoss):
    """log(1 + exp(m - v)) = -log sigmoid(v - m); at m = 0 this is exactly the BPR loss."""

    name = "logit_margin"
    default_m = 0.0

    def _phi(self, u):
        return -F.logsigmoid(u)

    def _dphi(self, u):
        return -torch.sigmoid(-u)

    def _properties(self):
        return _props(convex=True, strictly_convex=True, lipschitz=True, differentiable=True,
                      clipable=False, classification_calibrated=True, has_threshold=False)


class Exp(MarginLoss):
    """exp(m - v), continued by its tangent line below v = m - EXP_CLAMP (no overflow)."""

    name = "exp"
    default_m = 0.0

    def _phi(self, u):
        c = EXP_CLAMP
        inner = torch.exp(-torch.clamp(u, min=-c))
        return torch.where(u >= -c, inner, math.exp(c) * (1 - c - u))

    def _dphi(self, u):
        return -torch.exp(-torch.clamp(u, min=-EXP_CLAMP))

    def _properties(self):
        return _props(convex=True, strictly_convex=True, lipschitz=False, differentiable=True,
                      clipable=False, classification_calibrated=True, has_threshold=False)


_LOSSES: dict[str, type[MarginLoss]] = {
    cls.name: cls
    for cls in (ZeroOne, Perceptron, L1Hinge, SmoothedL1Hinge, ModifiedHuber, DWDMargin,
                L2Margin, L2Hinge, Sigmoid, LogitMargin, Exp)
}


def loss_names() -> list[str]:
    """The snake_case names :func:`get_loss` accepts, in the canonical order."""
    return list(_LOSSES)


def loss_params(name: str) -> dict[str, float]:
    """The parameters (with defaults) a loss accepts: always ``m``, plus gamma / q where used."""
    cls = _loss_class(name)
    return {"m": cls.default_m, **cls.extra_params}


def _loss_class(name: str) -> type[MarginLoss]:
    try:
        return _LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown margin loss {name!r}; valid choices: {', '.join(_LOSSES)}") from None


def get_loss(name: str, **params: float) -> MarginLoss:
    """Build a margin loss by name: a callable mapping a tensor ``v`` to the elementwise loss.

    ``params``: ``m`` (the margin; every loss), ``gamma`` (smoothed_l1_hinge, > 0),
    ``q`` (dwd_margin, > 0). Unknown names or parameters raise ConfigError listing the choices.
    """
    cls = _loss_class(name)
    allowed = ["m", *cls.extra_params]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"loss '{name}' got unknown parameter(s) {', '.join(unknown)}; "
            f"valid parameters: {', '.join(allowed)}")
    return cls(**params)


def require_trainable(loss: MarginLoss) -> MarginLoss:
    """Return ``loss`` unchanged, or raise ConfigError if its gradient is zero almost everywhere."""
    if not loss.trainable:
        ok = [n for n, c in _LOSSES.items() if not c().properties.zero_grad_ae]
        raise ConfigError(
            f"loss '{loss.name}' has a zero gradient almost everywhere, so it cannot train a "
            f"model (it is available for evaluation only); choose one of: {', '.join(ok)}")
    return loss


def get_training_loss(name: str, **params: float) -> MarginLoss:
    """:func:`get_loss` that refuses losses unusable for gradient training (zero_one)."""
    return require_trainable(get_loss(name, **params))


def pairwise_loss(loss: Callable[[torch.Tensor], torch.Tensor], pos_scores: torch.Tensor,
                  neg_scores: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Ranking loss on the pairwise agreement ``v = pos_scores - neg_scores``.

    ``reduction``: "mean", "sum" or "none". With ``get_loss("logit_margin")`` this is BPR.
    """
    out = loss(pos_scores - neg_scores)
    if reduction == "mean":
        return out.mean()
    if reduction == "sum":
        return out.sum()
    if reduction == "none":
        return out
    raise ConfigError(f"reduction must be one of mean, sum, none; got {reduction!r}")
