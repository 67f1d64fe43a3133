"""Generic BPR training loop for any scorer returning ``(v, reg_term)`` (MF, LightGCN).

One :class:`BPRRun` owns a model, its optimizer, the numpy RNG of negative sampling, the epoch
counter, the early-stopping state (best validation score, best factors, patience left) and the
history. ``state_dict()`` / ``load_state_dict()`` capture all of it, so a run restored from a
checkpoint continues exactly as the uninterrupted run would (same negatives, same updates).

An epoch: shuffle this worker's share of the training pairs, draw one uniform negative per
pair (filtered against the user's training positives, see :mod:`components.pcrec.negatives`),
and take optimizer steps on batches of ``batch_size`` triples minimising
``mean loss(v) + reg * reg_term`` where ``loss`` is any margin loss of
``components.losses.margin`` (``logit_margin`` = BPR).

Every ``eval_every`` epochs ``valid_fn(user_factors, item_factors) -> float`` (validation
NDCG@10 in the pipeline) is called; the best factors are kept and training stops after
``patience`` evaluations without improvement or at ``epochs``.

``lr_schedule``: ``constant`` keeps ``lr``; ``cosine`` / ``linear`` anneal it per epoch from
``lr`` at epoch 1 towards 0 at ``epochs`` (epoch ``e`` of ``E``, 0-based: ``lr * (1 + cos(pi e /
E)) / 2`` or ``lr * (1 - e / E)``), so ``epochs`` is then the schedule's length, not only a cap.

Public API: :class:`BPRConfig`, :class:`BPRRun`.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from components.errors import ConfigError
from components.pcrec.negatives import PositiveSet, sample_negatives


@dataclass(frozen=True)
class BPRConfig:
    """Hyper-parameters of one BPR run (see module docstring)."""

    epochs: int = 50
    batch_size: int = 8192
    lr: float = 0.005
    reg: float = 1e-4
    optimizer: str = "adam"          # adam | sgd | adagrad | rowsgd (MF fast path)
    eval_every: int = 1
    patience: int = 5
    loss: Mapping[str, Any] = field(default_factory=lambda: {"name": "logit_margin", "params": {}})
    """``{"name": ..., "params": {...}}`` of a loss of :mod:`components.losses.margin`."""
    lr_schedule: str = "constant"    # constant | cosine | linear (per epoch, to 0 at ``epochs``)

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd", "adagrad", "rowsgd"):
            raise ConfigError(f"optimizer '{self.optimizer}' unknown; use adam, sgd, adagrad or rowsgd")
        if self.lr_schedule not in ("constant", "cosine", "linear"):
            raise ConfigError(f"lr_schedule '{self.lr_schedule}' unknown; use constant, cosine or linear")
        if self.epochs < 0 or self.batch_size < 1 or self.eval_every < 1 or self.patience < 1:
            raise ConfigError("epochs >= 0, batch_size >= 1, eval_every >= 1 and patience >= 1 required")

    def lr_at(self, epoch: int) -> float:
        """The learning rate of 0-based ``epoch`` under ``lr_schedule``."""
        if self.lr_schedule == "constant" or self.epochs == 0:
            return self.lr
        f = min(epoch, self.epochs) / self.epochs
        return self.lr * (0.5 * (1 + math.cos(math.pi * f)) if self.lr_schedule == "cosine" else 1 - f)


def _optimizer(name: str, params, lr: float) -> torch.optim.Optimizer | None:
    if name == "rowsgd":
        return None
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


class BPRRun:
    """State and steps of one BPR training run.

    Args:
        model: module with ``forward(u, i, j) -> (v, reg_term)`` and ``embeddings()``;
            may be wrapped (DDP) — pass the unwrapped one as ``core`` then.
        users, items: training pairs (int arrays).
        positives: pairs never drawn as negatives (the training positives).
        cfg: :class:`BPRConfig`.
        seed: seeds the negative sampler (combined with ``rank``).
        item_lo, item_hi: optional per-pair item range for the negatives (joint training
            draws each negative from the positive's own domain).
        rank, world: data-parallel rank and size (equal-step shares of the pairs).
        core: the unwrapped model (defaults to ``model``).
        device: where the model lives; batches go there, factors come back to the CPU.
    """

    def __init__(self, model: torch.nn.Module, users: np.ndarray, items: np.ndarray,
                 positives: PositiveSet, cfg: BPRConfig, seed: int, *,
                 item_lo: np.ndarray | None = None, item_hi: np.ndarray | None = None,
                 rank: int = 0, world: int = 1, core: torch.nn.Module | None = None,
                 device: torch.device | str = "cpu"):
        from components.losses.margin import get_training_loss

        self.model, self.core, self.cfg = model, core or model, cfg
        self.users = np.asarray(users, dtype=np.int64)
        self.items = np.asarray(items, dtype=np.int64)
        self.item_lo, self.item_hi = item_lo, item_hi
        self.positives = positives
        self.rank, self.world = rank, world
        self.loss_fn = get_training_loss(cfg.loss["name"], **dict(cfg.loss.get("params", {})))
        self.opt = _optimizer(cfg.optimizer, self.model.parameters(), cfg.lr)
        if self.opt is None and (world > 1 or not hasattr(self.core, "sgd_step")):
            raise ConfigError("optimizer 'rowsgd' (fused per-row SGD, no gradients) works with world=1 and a "
                              "model that has sgd_step (MF); use optimizer adam, sgd or adagrad otherwise")
        self.seed, self.device = int(seed), torch.device(device)
        self.rng = np.random.default_rng([seed, rank])   # this rank's negatives
        self.epoch = 0
        self.best_score = -math.inf
        self.best_epoch = -1
        self.best_factors: tuple[torch.Tensor, torch.Tensor] | None = None
        self.bad_evals = 0
        self.stopped = cfg.epochs == 0
        self.history: list[dict] = []

    # ---------------------------------------------------------------- training
    def epoch_batches(self) -> list[np.ndarray]:
        """This rank's batches of pair indices for the current epoch (what :meth:`train_epoch` uses)."""
        from components.sharding import shard_batches

        return shard_batches(len(self.users), self.world, self.rank, self.cfg.batch_size, self.seed, self.epoch)

    def train_epoch(self) -> float:
        """One pass over this worker's share of the pairs; returns the mean batch loss.

        The shares come from one permutation per epoch that every rank draws alike
        (:func:`components.sharding.shard_batches`): disjoint, covering, the same number of
        steps on every rank. Negatives come from this rank's own generator.
        """
        self.model.train()
        lr = self.cfg.lr_at(self.epoch)
        if self.opt is not None:
            for group in self.opt.param_groups:
                group["lr"] = lr
        batches = self.epoch_batches()
        perm = np.concatenate(batches)
        bounds = np.cumsum([0] + [len(b) for b in batches])
        u = self.users[perm]
        lo = 0 if self.item_lo is None else self.item_lo[perm]
        hi = None if self.item_hi is None else self.item_hi[perm]
        neg = sample_negatives(u, self.positives, self.rng, lo=lo, hi=hi)
        tu = torch.from_numpy(u).to(self.device)
        ti = torch.from_numpy(self.items[perm]).to(self.device)
        tj = torch.from_numpy(neg).to(self.device)
        total, n = 0.0, 0
        steps = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        if self.opt is None:  # fused per-sample SGD (MF.sgd_step), no autograd
            for s in steps:
                v = self.core.sgd_step(tu[s], ti[s], tj[s], lr, self.cfg.reg, self.loss_fn.deriv)
                total += float(self.loss_fn(v).mean())
                n += 1
            self.epoch += 1
            return total / max(n, 1)
        for s in steps:
            v, reg = self.model(tu[s], ti[s], tj[s])
            loss = self.loss_fn(v).mean() + self.cfg.reg * reg
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += float(loss.detach())
            n += 1
        self.epoch += 1
        return total / max(n, 1)

    def step(self, valid_fn: Callable[[torch.Tensor, torch.Tensor], float] | None) -> dict:
        """Train one epoch, evaluate when due, update early stopping; returns the history row."""
        t0 = time.perf_counter()
        loss = self.train_epoch()
        row = {"epoch": self.epoch, "loss": float(loss), "train_s": time.perf_counter() - t0,
               "lr": self.cfg.lr_at(self.epoch - 1), "valid_ndcg10": float("nan")}
        due = self.epoch % self.cfg.eval_every == 0 or self.epoch >= self.cfg.epochs
        if valid_fn is not None and due:
            U, V = (t.detach().cpu() for t in self.core.embeddings())
            score = float(valid_fn(U, V))
            row["valid_ndcg10"] = score
            if score > self.best_score:
                self.best_score, self.best_epoch, self.bad_evals = score, self.epoch, 0
                self.best_factors = (U, V)
            else:
                self.bad_evals += 1
                if self.bad_evals >= self.cfg.patience:
                    self.stopped = True
        if self.epoch >= self.cfg.epochs:
            self.stopped = True
        self.history.append(row)
        return row

    def fit(self, valid_fn=None, on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
        """Run :meth:`step` until stopped; ``on_epoch(row)`` after each (checkpoint here)."""
        while not self.stopped:
            row = self.step(valid_fn)
            if on_epoch is not None:
                on_epoch(row)
        return self.history

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Best factors by validation (or the current ones when never evaluated)."""
        if self.best_factors is not None:
            return self.best_factors
        return tuple(t.detach().cpu() for t in self.core.embeddings())

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"model": {k: v.detach().cpu().clone() for k, v in self.core.state_dict().items()},
                "opt": copy.deepcopy(self.opt.state_dict()) if self.opt is not None else None,
                "rng": copy.deepcopy(self.rng.bit_generator.state),
                "epoch": self.epoch, "best_score": self.best_score,
                "best_epoch": self.best_epoch, "best_factors": self.best_factors,
                "bad_evals": self.bad_evals, "stopped": self.stopped,
                "history": list(self.history)}

    def load_state_dict(self, st: dict) -> None:
        self.core.load_state_dict(st["model"])
        if self.opt is not None:
            self.opt.load_state_dict(st["opt"])
        self.rng.bit_generator.state = st["rng"]
        self.epoch, self.best_score, self.best_epoch = st["epoch"], st["best_score"], st["best_epoch"]
        self.best_factors, self.bad_evals = st["best_factors"], st["bad_evals"]
        self.stopped, self.history = st["stopped"], list(st["history"])
