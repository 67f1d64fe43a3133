"""PCRec specifics of the Ray Tune search (``recgen tune pcrec``): r-hop, margin loss, margin,
embedding size, lr (``configs/pcrec/tune.yaml``).

The engine (spec, seeded trial list, shared upstream stages, one Ray job per trial, ASHA,
results, ``best_config.yaml``, ``--resume``) is :mod:`pipelines.core.tune`. On top of it pcrec adds:

* shared upstream per r-hop: the space searches ``sample.r`` and the finetune losses, so the
  engine's shared-upstream step runs sampling and pre-training once per r (and embedding
  size, which pre-training uses), and every trial of that group hits the cache;
* diverged trials: a run of the finetune ``runs`` table marked ``diverged`` (loss or factors
  went non-finite, ``bpr_runs``), or a report with a non-finite training loss, fails the trial;
* the plots ``ndcg_vs_r.png`` and ``ndcg_vs_margin.png`` (roles ``r``, ``loss``, ``margin``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.core.tune import (Axis, SchedulerSpec, SearchOutput, Tunable, TuneSpec,
                                 collect, concurrency, cpus_per_trial, default_space, expand_trials,
                                 markdown_table, materialize_shared, nested, resolve_pipeline, run_search,
                                 select_best, shared_frontier, test_metric, trial_tree)
from pipelines.core.tune import load_spec as _load_spec

DEFAULT_SPACE = default_space("pcrec")
# the engine's API, re-exported for `from pipelines.pcrec.tune import ...`
__all__ = ["Axis", "SchedulerSpec", "SearchOutput", "Tunable", "TuneSpec", "collect", "concurrency",
           "cpus_per_trial", "expand_trials", "markdown_table", "materialize_shared", "nested",
           "resolve_pipeline", "run_search", "select_best", "shared_frontier", "test_metric", "trial_tree",
           "DEFAULT_SPACE", "load_spec", "trial_diverged", "plot_results", "TUNABLE"]


def load_spec(path=None, sets=()) -> TuneSpec:
    return _load_spec(path, sets, pipeline="pcrec")


def trial_diverged(spec: TuneSpec, art, value: float) -> bool:
    """A run of the trial's result table is marked ``diverged`` (see ``bpr_runs.write_results``)."""
    if not np.isfinite(value):
        return True
    df = art.df(spec.result_table)
    return bool("diverged" in df.columns and df["diverged"].fillna(False).astype(bool).any())


def _reports_diverged(df: pd.DataFrame) -> bool:
    """Any report of a trial flags ``diverged`` or a non-finite training loss (epoch > 0;
    per-epoch reports of the trial's trainer carry ``loss`` and ``epoch``)."""
    if not len(df):
        return False
    if "diverged" in df.columns and df["diverged"].fillna(False).astype(bool).any():
        return True
    if "loss" in df.columns and "epoch" in df.columns:
        loss = pd.to_numeric(df["loss"], errors="coerce").to_numpy(dtype=float)
        epoch = pd.to_numeric(df["epoch"], errors="coerce").fillna(0).to_numpy(dtype=float)
        return bool((~np.isfinite(loss) & (epoch > 0)).any())
    return False


def _role(spec: TuneSpec, role: str) -> str | None:
    key = spec.roles.get(role)
    return f"p:{key}" if key else None


def plot_results(results: pd.DataFrame, spec: TuneSpec, out_dir: Path) -> list[Path]:
    """``ndcg_vs_r.png`` and ``ndcg_vs_margin.png`` (when those roles are searched)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    ok = results[np.isfinite(results.value)]
    r_col, loss_col, m_col = _role(spec, "r"), _role(spec, "loss"), _role(spec, "margin")
    label = f"validation {spec.metric}"
    if r_col in ok:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        losses = sorted(ok[loss_col].unique()) if loss_col in ok else [None]
        rs = sorted(ok[r_col].unique())
        for j, loss in enumerate(losses):
            g = ok if loss is None else ok[ok[loss_col] == loss]
            off = (j - (len(losses) - 1) / 2) * 0.06
            ax.scatter(g[r_col] + off, g.value, s=22, alpha=0.75, label=loss, color=f"C{j % 10}")
        best = ok.groupby(r_col).value.max()
        ax.plot(best.index, best.values, "k--", lw=1, label="best per r")
        d = ok[ok.is_default]
        if len(d):
            ax.scatter(d[r_col], d.value, marker="*", s=180, color="gold", edgecolor="k", zorder=5,
                       label="default (BPR)")
        ax.set_xticks(rs)
        ax.set_xlabel("r-hop of the ego-network sampler (sample.r)")
        ax.set_ylabel(label)
        ax.set_title(f"tune '{spec.name}': {label} vs r-hop")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        paths.append(out_dir / "ndcg_vs_r.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    if m_col in ok and loss_col in ok:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for j, (loss, g) in enumerate(ok.groupby(loss_col)):
            agg = g.groupby(m_col).value.agg(["mean", "max"])
            ax.plot(agg.index, agg["max"], "-o", ms=4, color=f"C{j % 10}", label=f"{loss} (best)")
            ax.scatter(g[m_col], g.value, s=10, alpha=0.4, color=f"C{j % 10}")
        ax.set_xlabel("margin m (finetune loss)")
        ax.set_ylabel(label)
        ax.set_title(f"{label} vs margin, per loss")
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out_dir / "ndcg_vs_margin.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


TUNABLE = Tunable(diverged=trial_diverged, reports_diverged=_reports_diverged, plots=plot_results)
