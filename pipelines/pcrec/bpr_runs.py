"""Many BPR training runs inside one Ray Train ``TorchTrainer`` fit per :func:`run_all` call.

Starting a trainer costs seconds, so :func:`run_all` trains a list of runs in one fit whose
per-worker loop (:func:`train_loop`) trains them one after the other. finetune calls it once
(all modes x N seeds: one fit); baselines calls it once per method (N seeds each: one fit per
method, two fits for lightgcn + joint_mf). Fault tolerance:

* the run in progress is checkpointed (``pipelines.core.train.report``) every
  ``checkpoint_every`` epochs and when it stops: model, optimizer, sampler RNG, epoch,
  early-stopping state and history (:meth:`components.pcrec.bpr.BPRRun.state_dict`);
* a finished run's best factors go to ``<scratch>/runs/<key>.pt`` (atomic rename), so a
  restarted loop skips finished runs and resumes the current one from its checkpoint.

With ``trainer.num_workers == 0`` the same loop runs in-process (Ray Train local mode, see
:mod:`pipelines.core.train`; tests, tiny configs). With ``num_workers > 1`` the model is wrapped
in DDP and each worker trains on its share of the pairs.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from components.pcrec.bpr import BPRConfig, BPRRun
from components.pcrec.metrics import metrics_from_ranks, rank_full
from components.pcrec.negatives import PositiveSet
from pipelines.core.artifacts import local_scratch, push_scratch
from pipelines.core.hints import config_hints
from pipelines.core.train import load_state


@dataclass
class RunSpec:
    """One training run.

    ``model``: ``"mf"`` or ``"lightgcn"``. ``init``: name of an entry of the loop's ``inits``
    (pre-computed ``(users, items, user_mask, item_mask)`` whose masked rows replace the random
    initialisation) or None. ``train=False`` evaluates the initial factors without training
    (transfer mode *direct*).
    """

    method: str
    seed: int
    bpr: BPRConfig
    model: str = "mf"
    init: str | None = None
    train: bool = True
    init_std: float = 0.1
    item_bias: bool = False
    layers: int = 2
    extra: dict = field(default_factory=dict)
    variant: str = ""   # a grid point of the same method (finetune.grid): part of the key only

    @property
    def key(self) -> str:
        return f"{self.method}{'-' + self.variant if self.variant else ''}-s{self.seed}"


def _atomic_save(obj, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def result_path(scratch: str, key: str) -> str:
    return os.path.join(scratch, "runs", f"{key}.pt")


# ------------------------------------------------------------------ building blocks
def valid_ndcg10(users: np.ndarray, items: np.ndarray, exclude: PositiveSet,
                 item_slice: tuple[int, int] | None = None):
    """``f(U, V) -> mean NDCG@10`` of full ranking on the validation pairs.

    ``users`` index rows of U; ``items`` are in the evaluated item space, which is
    ``V[item_slice[0]:item_slice[1]]`` when given (joint training evaluates target items only).
    """
    def f(U: torch.Tensor, V: torch.Tensor) -> float:
        if item_slice is not None:
            V = V[item_slice[0]:item_slice[1]]
        ranks = rank_full(U, V, users, items, exclude)
        return float(metrics_from_ranks(ranks, ks=(10,))["ndcg@10"].mean())
    return f


def build_model(spec: RunSpec, data: dict, inits: dict):
    """The module of a run, initialised from its seed (and its ``init`` entry, if any)."""
    from components.pcrec.lightgcn import LightGCN
    from components.pcrec.mf import MF, init_factors

    g = torch.Generator().manual_seed(int(spec.seed) * 7919 + 17)
    n_u, n_i = data["n_users"], data["n_items"]
    d = int(data["factors"])
    if spec.model == "lightgcn":
        return LightGCN(data["train_u"], data["train_i"], n_u, n_i, d, layers=spec.layers,
                        init_std=spec.init_std, generator=g)
    pre_u = pre_i = mask_u = mask_i = None
    if spec.init is not None:
        pre_u, pre_i, mask_u, mask_i = inits[spec.init]
    with config_hints(dim="set finetune.factors to the pre-training embedding size (pretrain.dim)"):
        return MF(init_factors(n_u, d, spec.init_std, g, pre_u, mask_u),
                  init_factors(n_i, d, spec.init_std, g, pre_i, mask_i), item_bias=spec.item_bias)


# ------------------------------------------------------------------ the loop
def train_loop(config: dict) -> None:
    """Per-worker loop: train every run of ``config["specs"]`` not finished yet.

    ``config``: ``specs`` (list of RunSpec), ``data`` (``train_u, train_i, n_users, n_items,
    factors, valid_u, valid_i`` and optional ``item_lo, item_hi, item_slice, out_users``),
    ``inits``, ``scratch``, ``threads``, ``checkpoint_every``, ``use_gpu``.
    """
    from pipelines.core.train import Session

    specs: list[RunSpec] = config["specs"]
    sess = Session(specs[0].seed if specs else 0, int(config.get("threads", 1)), use_gpu=config.get("use_gpu", False))
    data, inits = config["data"], config.get("inits", {})
    positives = PositiveSet(data["train_u"], data["train_i"], data["n_items"])
    sl = data.get("item_slice")
    if sl is not None:  # joint training: exclude target train positives in target item space
        tmask = (data["train_i"] >= sl[0]) & (data["train_i"] < sl[1])
        eval_excl = PositiveSet(data["train_u"][tmask], data["train_i"][tmask] - sl[0], sl[1] - sl[0])
    else:
        eval_excl = positives
    valid_fn = valid_ndcg10(data["valid_u"], data["valid_i"], eval_excl, sl)
    ckpt = sess.resume()
    every = int(config.get("checkpoint_every", 5))

    for spec in specs:
        out_path = result_path(config["scratch"], spec.key)
        if os.path.exists(out_path):
            continue
        t0 = time.perf_counter()
        core = build_model(spec, data, inits)
        model = sess.prepare(core) if spec.train else core.to(sess.device)
        run = BPRRun(model, data["train_u"], data["train_i"], positives, spec.bpr,
                     seed=int(spec.seed), item_lo=data.get("item_lo"), item_hi=data.get("item_hi"),
                     rank=sess.rank, world=sess.world, core=core, device=sess.device)
        if ckpt is not None and ckpt.get("key") == spec.key:
            run.load_state_dict(ckpt["run"])
        if not spec.train:
            U, V = (t.detach().cpu() for t in core.embeddings())
            score = valid_fn(U, V)
            run.best_score, run.best_epoch, run.best_factors, run.stopped = score, 0, (U, V), True
            run.history.append({"epoch": 0, "loss": float("nan"), "train_s": 0.0, "valid_ndcg10": score})

        def on_epoch(row, run=run, spec=spec):
            metrics = {"run": spec.key, **row, "best_valid_ndcg10": run.best_score}
            if run.stopped or run.epoch % every == 0:
                done = (f"{spec.key}: best valid NDCG@10 {run.best_score:.4f} at epoch {run.best_epoch} "
                        f"(stopped at {run.epoch} of {spec.bpr.epochs})") if run.stopped else None
                sess.report(metrics, {"key": spec.key, "run": run.state_dict()}, progress=done)

        run.fit(valid_fn, on_epoch)
        U, V = run.factors()
        if data.get("out_users") is not None:
            U = U[torch.as_tensor(data["out_users"])]
        if sl is not None:
            V = V[sl[0]:sl[1]]
        if sess.rank == 0:
            _atomic_save({"spec": asdict(spec), "U": U.detach().clone(), "V": V.detach().clone(),
                          "history": run.history, "best_epoch": run.best_epoch,
                          "best_valid_ndcg10": run.best_score,
                          "wall_s": time.perf_counter() - t0}, out_path)
        ckpt = None


def run_all(ctx, specs: list[RunSpec], data: dict, inits: dict, *, trainer, threads: int,
            checkpoint_every: int, name: str) -> list[dict]:
    """Train ``specs`` under one TorchTrainer fit (in-process when ``trainer.num_workers == 0``).

    Returns the saved results (one dict per spec, in order).
    """
    scratch = local_scratch(os.path.join(ctx.scratch_dir, name))  # a local mirror of a remote one
    os.makedirs(scratch, exist_ok=True)
    config = {"specs": list(specs), "data": data, "inits": inits, "scratch": scratch, "threads": threads,
              "checkpoint_every": checkpoint_every, "use_gpu": trainer.use_gpu}
    if not all(os.path.exists(result_path(scratch, s.key)) for s in specs):
        from pipelines.core.train import fit

        fit(ctx, train_loop, config, trainer, name=name)
        push_scratch(scratch)  # remote scratch: keep the finished runs' results for a rerun
    out = [load_state(result_path(scratch, s.key)) for s in specs]
    for r in out:  # factors are saved as tensors (weights_only loading); callers use arrays
        r["U"], r["V"] = r["U"].numpy(), r["V"].numpy()
        r["train_pairs"] = int(len(data["train_u"]))   # one epoch = this many positive-pair updates
    return out


def diverged(result: dict) -> str | None:
    """Why a saved run result counts as diverged (a trained epoch's loss or the saved factors
    are NaN/inf), or None. Epoch 0 rows (``train=False`` runs) have a NaN loss by design."""
    for h in result["history"]:
        if h["epoch"] > 0 and not np.isfinite(h["loss"]):
            return f"loss {h['loss']} at epoch {h['epoch']}"
    for name in ("U", "V"):
        if not np.isfinite(np.asarray(result[name])).all():
            return f"non-finite {'user' if name == 'U' else 'item'} factors"
    return None


def write_results(ctx, results: list[dict]) -> None:
    """Write ``embeddings`` (factor table), ``curves`` (per epoch) and ``runs`` (per run).

    ``runs.diverged`` marks runs whose loss or factors went non-finite (a warning names the
    learning-rate key to lower); evaluate then refuses their factors, and a Tune trial with a
    diverged run is reported as failed (:mod:`pipelines.pcrec.tune`).
    """
    import pandas as pd
    import pyarrow as pa

    from pipelines.pcrec.factors import factor_table

    tables, curves, runs = [], [], []
    for r in results:
        m, s = r["spec"]["method"], int(r["spec"]["seed"])
        tables.append(factor_table(m, s, r["U"], r["V"]))
        for row in r["history"]:
            curves.append({"method": m, "seed": s, **row})
        div = diverged(r)
        if div:
            from pipelines.pcrec.factors import lr_key

            ctx.log("WARNING: run %s seed %d diverged (%s); lower %s", m, s, div, lr_key(ctx.stage, m))
        ran = sum(1 for h in r["history"] if h["epoch"] > 0)
        runs.append({"method": m, "seed": s, "best_epoch": int(r["best_epoch"]),
                     "best_valid_ndcg10": float(r["best_valid_ndcg10"]),
                     "diverged": bool(div),
                     "epochs_run": ran,
                     "pair_updates": ran * int(r.get("train_pairs", 0)),
                     "epoch_cap": int(r["spec"]["bpr"]["epochs"]) if r["spec"].get("train", True) else 0,
                     "lr_schedule": str(r["spec"]["bpr"].get("lr_schedule", "constant")),
                     "train_s": float(sum(h["train_s"] for h in r["history"])),
                     "wall_s": float(r["wall_s"])})
    ctx.out.write_table("embeddings", pa.concat_tables(tables))
    ctx.out.write_table("curves", pd.DataFrame(curves))
    ctx.out.write_table("runs", pd.DataFrame(runs))
    runs_df = pd.DataFrame(runs)
    for m, g in runs_df.groupby("method"):
        ctx.log("%-15s valid NDCG@10 %.4f +- %.4f  (best epochs %s, %.1fs train)", m,
                g.best_valid_ndcg10.mean(), g.best_valid_ndcg10.std(ddof=0),
                list(g.best_epoch), g.train_s.sum())
