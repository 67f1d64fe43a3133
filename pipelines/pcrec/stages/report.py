"""report stage: the method x metric table, gains over plain BPR-MF, plots and report.md.

Reads evaluate/metrics + per_user, finetune/baselines curves and runs, peers/runs (methods
``peer_*``: popularity, ItemKNN, EASE, ALS — not recgen models, marked as peers), and the pre-training loss
curve (the first table of the pretrain artifact with a ``loss`` column). Writes ``report.md``,
``curves.png`` (validation NDCG@10 and BPR loss per epoch), ``infonce.png`` (pre-training
loss), ``metrics.png`` (test metrics, mean with std error bars over seeds) and the tables
``summary`` (method, protocol, metric, mean, std, n_seeds) and ``gains`` (method, protocol,
metric, gain_mean, gain_std, rel_gain_pct, verdict). Prints the table at the end of the run.

A gain is paired by seed: ``metric(method, s) - metric(bpr_mf, s)``, then mean +- std (ddof=0)
over the seeds. Verdict: ``helps`` when mean > std and mean > 0, ``hurts`` when mean < -std,
otherwise ``no clear effect`` — the report states it plainly, including when pre-training
does not help.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

BASE = "bpr_mf"
TRANSFER = ("direct", "pretrain_init", "generated_init")
LABEL = {"direct": "(a) pre-trained, no fine-tuning", "pretrain_init": "(b) pre-trained init",
         "generated_init": "(c) generated init", "bpr_mf": "(d) BPR-MF (no pre-training)",
         "lightgcn": "LightGCN (target only)", "joint_mf": "joint MF (source+target)",
         "peer_pop": "peer: popularity", "peer_itemknn": "peer: ItemKNN",
         "peer_ease": "peer: EASE (target only)", "peer_ease_joint": "peer: EASE (source+target)",
         "peer_als": "peer: ALS (implicit)", "peer_als_joint": "peer: ALS (implicit, source+target)",
         "peer_emcdr": "peer: EMCDR-style map (ALS + ridge)"}
PEER = "peer_"


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    g = metrics.groupby(["method", "protocol", "metric"]).value
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=0), "n_seeds": g.size()}).reset_index()


def gains(metrics: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Per-seed paired gain of every method over ``bpr_mf`` on ``names``."""
    m = metrics[metrics.metric.isin(names)]
    base = m[m.method == BASE].set_index(["protocol", "metric", "seed"]).value
    rows = []
    for (meth, prot, met), g in m[m.method != BASE].groupby(["method", "protocol", "metric"]):
        b = base.reindex([(prot, met, s) for s in g.seed]).to_numpy()
        d = g.value.to_numpy() - b
        if np.isnan(d).all():
            continue
        mean, std = float(np.nanmean(d)), float(np.nanstd(d))
        verdict = "helps" if mean > 0 and mean > std else ("hurts" if mean < -std else "no clear effect")
        rows.append({"method": meth, "protocol": prot, "metric": met, "gain_mean": mean,
                     "gain_std": std, "rel_gain_pct": 100 * mean / max(float(np.nanmean(b)), 1e-12),
                     "n_seeds": int((~np.isnan(d)).sum()), "verdict": verdict})
    return pd.DataFrame(rows)


def method_table(summary: pd.DataFrame, protocol: str, names: list[str]) -> pd.DataFrame:
    s = summary[(summary.protocol == protocol) & summary.metric.isin(names)]
    cell = s.apply(lambda r: f"{r['mean']:.4f} ± {r['std']:.4f}", axis=1)
    t = s.assign(cell=cell).pivot(index="method", columns="metric", values="cell")
    order = [m for m in LABEL if m in t.index] + [m for m in t.index if m not in LABEL]
    return t.loc[order, [n for n in names if n in t.columns]]


def subgroup_gains(per_user: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """Mean gain over BPR-MF for shared vs target-only users (full protocol, paired by seed)."""
    pu = per_user[per_user.protocol == "full"]
    means = pu.groupby(["method", "seed", "shared"])[metric].mean().rename("v").reset_index()
    base = means[means.method == BASE].rename(columns={"v": "b"}).drop(columns="method")
    j = means[means.method != BASE].merge(base, on=["seed", "shared"])
    j["gain"] = j.v - j.b
    out = j.groupby(["method", "shared"]).gain.agg(["mean", "std"]).reset_index()
    out["users"] = out.shared.map({True: "shared", False: "target-only"})
    n = pu[(pu.method == BASE)].drop_duplicates("uid").shared.value_counts()
    out["n_users"] = out.shared.map(n).fillna(0).astype(int)
    return out


def pretrain_curve(art) -> pd.DataFrame | None:
    """The first pretrain table with a ``loss`` column (InfoNCE per step/epoch)."""
    for name in sorted(art.tables, key=lambda n: (0 if n == "steps" else 1 if "curve" in n or "loss" in n
                                                  else 2, n)):
        cols = art.table(name).schema.names
        if "loss" in cols and "embedding" not in cols:
            return art.df(name)
    return None


BUCKETS = [(0, 0, "0"), (1, 3, "1-3"), (4, 10, "4-10"), (11, 30, "11-30"), (31, 10**12, "31+")]


def breakdowns(per_user: pd.DataFrame, groups: pd.DataFrame, metric: str = "ndcg@10",
               protocol: str = "full") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test ``metric`` per method (mean ± std over seeds of the per-seed group means) by user
    group (split/groups.group: shared, target-only, or the scenario's thinned users) and by
    target-degree bucket (target training rows of the user). Cells are strings; the column
    headers carry the user counts."""
    pu = per_user[per_user.protocol == protocol].merge(groups[["uid", "group", "train_rows"]], on="uid")
    b = pd.Series(pd.NA, index=pu.index, dtype=object)
    for lo, hi, name in BUCKETS:
        b[(pu.train_rows >= lo) & (pu.train_rows <= hi)] = name
    pu = pu.assign(bucket=b)
    out = []
    for col in ("group", "bucket"):
        per_seed = pu.groupby(["method", "seed", col])[metric].mean().rename("v").reset_index()
        agg = per_seed.groupby(["method", col]).v.agg(mean="mean", std=lambda x: x.std(ddof=0)).reset_index()
        agg["cell"] = agg.apply(lambda r: f"{r['mean']:.4f} ± {0 if np.isnan(r['std']) else r['std']:.4f}", axis=1)
        t = agg.pivot(index="method", columns=col, values="cell")
        n = groups.assign(bucket=[next(nm for lo, hi, nm in BUCKETS if lo <= x <= hi)
                                  for x in groups.train_rows])[col].value_counts()
        order = ([nm for _, _, nm in BUCKETS] if col == "bucket" else
                 sorted(t.columns, key=lambda c: (c in ("shared", "target-only"), c)))
        t = t[[c for c in order if c in t.columns]]
        t.columns = [f"{c} ({int(n.get(c, 0))} users)" for c in t.columns]
        rows = [m for m in LABEL if m in t.index] + [m for m in t.index if m not in LABEL]
        out.append(t.loc[rows])
    return out[0], out[1]


def _consistent_infonce(art) -> list[str]:
    """The per-epoch InfoNCE of the current encoder against a dictionary it made itself
    (pretrain/curve.eval_infonce): unlike the training loss, whose queued keys come from older
    key encoders, it only falls when the encoder improves."""
    if "curve" not in getattr(art, "tables", []):
        return []
    c = art.df("curve")
    if "eval_infonce" not in c.columns or not c.eval_infonce.notna().any():
        return []
    v = c.eval_infonce.dropna().to_numpy(dtype=float)
    chance = float(c.eval_chance.dropna().iloc[0]) if "eval_chance" in c.columns else float("nan")
    untrained = (float(c.eval_infonce_untrained.dropna().iloc[0])
                 if "eval_infonce_untrained" in c.columns and c.eval_infonce_untrained.notna().any() else None)
    n = int(c.eval_pairs.iloc[0]) if "eval_pairs" in c.columns else len(c)
    last_drop = (v[-2] - v[-1]) / max(abs(v[-2]), 1e-12) if len(v) > 1 else 0.0
    verdict = ("plateau" if abs(last_drop) < 0.02 else "still falling: more epochs could help"
               if last_drop > 0 else "rising at the end")
    return [f"Consistent InfoNCE per epoch (the current encoder's view 0 of {n} nodes against its own "
            f"view 1 of all of them; chance ln N = {chance:.3f}"
            + (f", untrained encoder {untrained:.3f}" if untrained is not None else "") + "): "
            + ", ".join(f"{x:.3f}" for x in v)
            + f"; last epoch {-100 * last_drop:+.1f}% ({verdict}). The training loss above scores "
            "queued keys of older key encoders and can rise while this falls.\n"]


def pretrain_section(art, infonce: pd.DataFrame | None) -> list[str]:
    """report.md lines on pre-training: InfoNCE start/end against ln(K+1) and whether it
    plateaued, and the trained vs untrained encoder diagnostics (pretrain/diagnostics)."""
    import json
    import os

    md = ["## Pre-training diagnostics\n"]
    K = None
    try:
        with open(art.path("encoder.json")) as f:
            K = json.load(f).get("queue_size")
    except (OSError, ValueError):
        pass
    if infonce is not None and len(infonce):
        loss = infonce["loss"].to_numpy(dtype=float)
        n = max(1, len(loss) // 10)
        first, last = loss[:n].mean(), loss[-n:].mean()
        prev = loss[-2 * n:-n].mean() if len(loss) >= 2 * n else first
        unit = "steps" if "step" in infonce.columns else "reports"
        line = (f"InfoNCE (mean of the first / last 10% of {len(loss)} {unit}): {first:.3f} -> {last:.3f}")
        if K:
            gap = np.log(K + 1) - last
            line += (f"; a random encoder scores about ln(K+1) = {np.log(K + 1):.3f} (K = {K} queued "
                     f"negatives), so the end value is {abs(gap):.2f} nats {'below' if gap >= 0 else 'ABOVE'} "
                     "chance")
        drop = (prev - last) / max(abs(prev), 1e-12)
        verdict = ("plateau" if abs(drop) < 0.02 else "NOT a plateau: still falling, more steps could help"
                   if drop > 0 else "NOT a plateau: the loss is rising at the end")
        line += (f". Over the last 10% of {unit} the loss changed by {-100 * drop:+.1f}% against the 10% "
                 f"before ({verdict}).")
        md += [line + "\n"]
    md += _consistent_infonce(art)
    if "diagnostics" in getattr(art, "tables", []):
        d = art.df("diagnostics")
        t = d.pivot_table(index="metric", columns="encoder", values="value", aggfunc="first")
        order = ["alignment", "uniformity", "effective_rank", "effective_rank_uncentred", "mean_cosine",
                 "view_top1", "view_top10", "view_top1_chance", "link_auc", "link_auc_matched"]
        t = t.reindex([m for m in order if m in t.index] + [m for m in t.index if m not in order])
        t = t[[c for c in ("trained", "untrained") if c in t.columns]].round(4)
        nodes = int(d.nodes.iloc[0]) if "nodes" in d.columns and len(d) else None
        md += [f"Embeddings of {nodes} random source nodes (two views each), trained encoder against "
               "the same encoder before any step. alignment = mean squared distance of a node's two "
               "views (lower: views agree); uniformity = log mean exp(-2 d^2) over pairs (lower: spread "
               "out); effective_rank = exp(entropy) of the singular values of the centred embeddings (of 64 "
               "dims; effective_rank_uncentred: without centring, so a shared mean direction counts); view_top1/top10 "
               "= share of nodes whose other view is the nearest / among the 10 nearest of all nodes' "
               "views (chance: view_top1_chance); link_auc = source link-prediction AUC by cosine, "
               "edges against random user-item pairs (0.5 = no signal); link_auc_matched = the same against "
               "degree-matched non-edges (the probe edges' items shuffled among their users), which removes "
               "the popularity effect:\n", _md_table(t), ""]
        if {"trained", "untrained"} <= set(t.columns):
            er, ur = t.loc["effective_rank"] if "effective_rank" in t.index else (None, None)
            verdicts = []
            if "view_top1" in t.index:
                a, b = t.loc["view_top1", "trained"], t.loc["view_top1", "untrained"]
                verdicts.append(f"view retrieval top-1 {a:.3f} vs {b:.3f} untrained "
                                f"({'the encoder learned to tell nodes apart' if a > 2 * b else 'little better than untrained'})")
            if "link_auc" in t.index:
                a, b = t.loc["link_auc", "trained"], t.loc["link_auc", "untrained"]
                verdicts.append(f"link AUC {a:.3f} vs {b:.3f} untrained"
                                + (" (below 0.5: cosine of the structural embeddings does not rank a user's "
                                   "items above random items; GCC features carry structure, not identity)"
                                   if a < 0.5 else ""))
            if "link_auc_matched" in t.index:
                a, b = t.loc["link_auc_matched", "trained"], t.loc["link_auc_matched", "untrained"]
                verdicts.append(f"degree-matched link AUC {a:.3f} vs {b:.3f} untrained ("
                                + ("the trained encoder ranks a user's items above degree-matched items better"
                                   if a > b + 0.01 else "no better than untrained: the structural embeddings "
                                   "carry no user-item proximity beyond degree") + ")")
            md += ["Reading: " + "; ".join(verdicts) + ".\n"]
    if len(md) == 1:
        md.append("No pre-training curve or diagnostics in the pretrain artifact.\n")
    return md


def _plots(ctx, curves: pd.DataFrame, infonce: pd.DataFrame | None, summary: pd.DataFrame,
           names: list[str]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for m, g in curves.groupby("method"):
        c = g[g.epoch > 0].groupby("epoch")
        v = g.dropna(subset=["valid_ndcg10"]).groupby("epoch").valid_ndcg10.mean()
        if len(v) == 1 and v.index[0] == 0:
            ax[0].axhline(v.iloc[0], ls="--", lw=1, label=m)
        else:
            ax[0].plot(v.index, v.values, marker=".", label=m)
        if len(c):
            ax[1].plot(c.loss.mean().index, c.loss.mean().values, label=m)
    ax[0].set(title="validation NDCG@10 (mean over seeds)", xlabel="epoch")
    ax[1].set(title="training loss (BPR + L2)", xlabel="epoch", yscale="log")
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ctx.out.path("curves.png"), dpi=110)
    plt.close(fig)
    files.append("curves.png")

    if infonce is not None and len(infonce):
        x = next((c for c in ("step", "iteration", "epoch") if c in infonce.columns), None)
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = infonce[x] if x else np.arange(len(infonce))
        ax.plot(xs, infonce["loss"])
        ax.set(title="pre-training InfoNCE loss (MoCo)", xlabel=x or "report", ylabel="loss")
        fig.tight_layout()
        fig.savefig(ctx.out.path("infonce.png"), dpi=110)
        plt.close(fig)
        files.append("infonce.png")

    prots = sorted(summary.protocol.unique())
    fig, axes = plt.subplots(1, len(prots), figsize=(6 * len(prots), 4), squeeze=False)
    methods = [m for m in LABEL if m in set(summary.method)]
    width = 0.8 / max(len(methods), 1)
    for ax, prot in zip(axes[0], prots):
        s = summary[summary.protocol == prot]
        for k, m in enumerate(methods):
            r = s[s.method == m].set_index("metric").reindex(names)
            ax.bar(np.arange(len(names)) + k * width, r["mean"], width, yerr=r["std"], capsize=2, label=m)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
        ax.set(title=f"test metrics, {prot} protocol (mean ± std over seeds)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ctx.out.path("metrics.png"), dpi=110)
    plt.close(fig)
    files.append("metrics.png")
    return files


def capped_runs(runs: pd.DataFrame, annealed: bool = False) -> list[str]:
    """``method seed s (best epoch b of cap c)`` for every single run that trained up to its
    epoch cap (a per-method mean hides one capped seed among early-stopped ones).

    ``annealed=False``: runs at a constant learning rate (the cap cut them short);
    ``annealed=True``: runs whose ``lr_schedule`` anneals the rate to 0 at the cap, which ran
    their whole schedule (the cap is the schedule's length; the last epochs train at a rate
    near 0, so a best epoch near the cap is expected)."""
    out = []
    for row in runs.itertuples():
        cap, ran = getattr(row, "epoch_cap", np.nan), getattr(row, "epochs_run", np.nan)
        sched = getattr(row, "lr_schedule", "constant")
        is_annealed = isinstance(sched, str) and sched not in ("", "constant")
        if pd.notna(cap) and cap > 0 and pd.notna(ran) and ran >= cap and is_annealed == annealed:
            out.append(f"{row.method} seed {int(row.seed)} (best epoch {int(row.best_epoch)} of cap {int(cap)})")
    return out


def grid_section(ft) -> list[str]:
    """The per-mode lr/reg grid of finetune (finetune.grid), when it ran one."""
    if "grid" not in getattr(ft, "tables", {}):
        return []
    g = ft.df("grid")
    if not len(g):
        return []
    t = g.assign(chosen=g.chosen.map({True: "**chosen**", False: ""}))[
        ["method", "point", "lr", "reg", "valid_ndcg10", "best_epoch", "epochs_run", "epoch_cap", "chosen"]]
    return ["### Fine-tuning grid (finetune.grid)\n",
            f"Each trained mode ran every point with seed {int(g.seed.iloc[0])} and kept the best "
            "validation NDCG@10; its other seeds trained at that point:\n",
            _md_table(t.round(4).set_index(["method", "point"])), ""]


def _md_table(df: pd.DataFrame) -> str:
    cols = [df.index.name or ""] + list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row]) + " |")
    return "\n".join(lines)


def run_report(ctx) -> None:
    cfg = ctx.cfg.report
    ev = ctx.input("evaluate")
    metrics, per_user = ev.df("metrics"), ev.df("per_user")
    curves = pd.concat([ctx.input(s).df("curves") for s in ("finetune", "baselines")])
    peer_runs = ctx.input("peers").df("runs")
    runs = pd.concat([ctx.input(s).df("runs") for s in ("finetune", "baselines")] + [peer_runs])
    ev_stats = (getattr(ev, "manifest", None) or {}).get("stats", {})
    infonce = pretrain_curve(ctx.input("pretrain"))
    names = list(cfg.metrics)
    all_names = [n for n in metrics.metric.unique()]
    summary = summarize(metrics)
    gain = gains(metrics, names) if BASE in set(metrics.method) else pd.DataFrame()
    sub = subgroup_gains(per_user) if BASE in set(metrics.method) else pd.DataFrame()
    ctx.out.write_table("summary", summary)
    if len(gain):
        ctx.out.write_table("gains", gain)
    files = _plots(ctx, curves, infonce, summary, names)

    seeds = sorted(int(s) for s in metrics.seed.unique())
    md = [f"# PCRec report\n", f"Seeds: {seeds}. Test split, leave-one-out by time; values are "
          "mean ± std over seeds. Model selection (early stopping, recommend's choice) used "
          "validation NDCG@10 only.\n"]
    printed = []
    for prot in sorted(summary.protocol.unique()):
        t = method_table(summary, prot, all_names)
        title = {"full": "Full ranking (all items except the user's known items)",
                 "sampled": "Sampled (1 positive + sampled negatives)"}.get(prot, prot)
        md += [f"## {title}\n", _md_table(t), ""]
        if prot == "sampled" and ev_stats.get("sampled_short_users"):
            md += [f"Note: {ev_stats['sampled_short_users']} evaluated users have fewer than "
                   f"{ev_stats['sampled_negatives']} items they never interacted with (small "
                   f"catalogue); each is ranked against all the negatives that exist (at least "
                   f"{ev_stats['sampled_min_negatives']}), so their sampled metrics are not on the "
                   "same 1 + N scale (evaluate/per_user.n_candidates).\n"]
        printed.append(f"\n== {title} ==\n" + t.to_string())
    if len(gain):
        md.append("## Gain over plain BPR-MF (paired by seed)\n")
        g = gain.copy()
        g["gain"] = g.apply(lambda r: f"{r.gain_mean:+.4f} ± {r.gain_std:.4f} ({r.rel_gain_pct:+.1f}%)", axis=1)
        t = g.pivot_table(index="method", columns=["protocol", "metric"], values="gain", aggfunc="first")
        t.columns = [f"{p} {m}" for p, m in t.columns]
        md += [_md_table(t), ""]
        printed.append("\n== gain over bpr_mf (mean ± std over seeds) ==\n" + t.to_string())
        md.append("### Verdict per transfer mode (full protocol, NDCG@10)\n")
        key = gain[(gain.protocol == "full") & (gain.metric == "ndcg@10")].set_index("method")
        helped = []
        for m in TRANSFER:
            if m in key.index:
                r = key.loc[m]
                md.append(f"- **{LABEL[m]}**: {r.verdict} ({r.gain_mean:+.4f} ± {r.gain_std:.4f} "
                          f"NDCG@10, {r.rel_gain_pct:+.1f}%).")
                helped.append(r.verdict == "helps")
        if helped and not any(helped):
            md.append("\n**Pre-training does not help in this run**: no transfer mode beats plain "
                      "BPR-MF by more than the seed-to-seed spread. See the investigation below.")
        elif helped:
            md.append("\nAt least one transfer mode beats plain BPR-MF by more than the seed spread.")
        md.append("")
    if len(peer_runs):
        md += ["## Peers\n", "Rows named `peer_*` are not recgen models: they are what a practitioner "
               "could use instead (popularity, ItemKNN, EASE, ALS from `implicit`), fitted on the same "
               "training split and scored by the same protocol. Each grid point was scored by "
               "validation NDCG@10 (full ranking); the test split was not used to choose.\n"]
        pr = peer_runs.groupby("method").agg(params=("params", "first"),
                                             valid_ndcg10=("best_valid_ndcg10", "mean"),
                                             fit_s=("train_s", "mean"))
        md += [_md_table(pr.round(4)), ""]
    split_art = ctx.inputs.get("split") if hasattr(ctx, "inputs") else None
    groups = split_art.df("groups") if split_art is not None and "groups" in split_art.tables else None
    if groups is not None and len(groups):
        scen = getattr(ctx.cfg.split, "scenario", "dense")
        by_group, by_bucket = breakdowns(per_user, groups)
        md += [f"## Scenario: {scen}\n",
               {"dense": "All target training rows are kept.",
                "sparse": f"{ctx.cfg.split.scenario_fraction:.0%} of the evaluated shared users keep only "
                          f"{ctx.cfg.split.sparse_keep[0]}-{ctx.cfg.split.sparse_keep[1]} most recent target "
                          "training rows (group `sparse`).",
                "cold": f"{ctx.cfg.split.scenario_fraction:.0%} of the evaluated shared users have no target "
                        "training rows at all (group `cold`); they are scored on their held-out target "
                        "rows. Plain BPR-MF and target-only peers know nothing about them."}.get(scen, ""),
               "", "Test NDCG@10 (full protocol) by user group, mean ± std over seeds:\n",
               _md_table(by_group), "",
               "Test NDCG@10 (full protocol) by target-degree bucket (target training rows per user):\n",
               _md_table(by_bucket), ""]
        printed.append(f"\n== NDCG@10 by user group ({scen}) ==\n" + by_group.to_string())
    md.append("## Investigation\n")
    if len(sub):
        st = sub.assign(gain=sub.apply(lambda r: f"{r['mean']:+.4f} ± {0 if np.isnan(r['std']) else r['std']:.4f}", axis=1))
        st = st.pivot(index="method", columns="users", values="gain")
        n = sub.drop_duplicates("users").set_index("users").n_users
        st.columns = [f"{c} ({n.get(c, 0)} users)" for c in st.columns]
        md += ["Test NDCG@10 gain over BPR-MF, full protocol, by user group (shared users carry "
               "the source-domain knowledge; target-only users get none directly):\n", _md_table(st), ""]
    for col in ("epochs_run", "epoch_cap", "pair_updates"):
        if col not in runs.columns:
            runs[col] = np.nan
    runs["pair_updates_M"] = runs["pair_updates"] / 1e6
    r = runs.groupby("method").agg(best_valid_ndcg10=("best_valid_ndcg10", "mean"),
                                   best_epoch=("best_epoch", "mean"), epochs_run=("epochs_run", "mean"),
                                   epoch_cap=("epoch_cap", "max"), pair_updates_M=("pair_updates_M", "mean"),
                                   train_s=("train_s", "sum"))
    capped = capped_runs(runs)
    md += ["Validation (model selection) and training effort, mean over seeds. Every trained model "
           "early-stops on validation NDCG@10; best_epoch / epochs_run / epoch_cap show whether it "
           "converged within its budget; pair_updates_M = millions of positive-pair SGD updates (epochs run "
           "x training pairs; joint MF's pairs span both domains, see `baselines.joint_mf.budget`; peers "
           "have no epochs: their grids are chosen on validation):\n",
           _md_table(r.round(4)), ""]
    annealed = capped_runs(runs, annealed=True)
    md.append(("Runs at a constant learning rate that reached their epoch cap without early stopping "
               "(not converged; raise the cap): " + ", ".join(capped) + ".\n") if capped else
              "No run at a constant learning rate ran into its epoch cap.\n")
    if annealed:
        md.append("Runs that completed their annealed learning-rate schedule (`lr_schedule`: the rate "
                  "reaches 0 at the cap, so the cap is the schedule's length and a best epoch near it is "
                  "expected; whether a longer schedule helps is a separate validation question): "
                  + ", ".join(annealed) + ".\n")
    md += grid_section(ctx.input("finetune"))
    md += pretrain_section(ctx.input("pretrain"), infonce)
    md += ["## Plots\n"] + [f"![{f}]({f})\n" for f in files]
    with open(ctx.out.path("report.md"), "w") as f:
        f.write("\n".join(md))
    ctx.out.stats(methods=int(summary.method.nunique()), seeds=len(seeds))
    text = "\n".join(printed)
    print(text, flush=True)
    ctx.log("report.md written with %s", ", ".join(files))
