"""A tiny synthetic cross-domain world published as real upstream artifacts (Parquet + manifest),
and StageContexts for the rec stages (finetune, baselines, peers, evaluate, recommend, report)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from components.pcrec.split import leave_one_out
from pipelines.core.artifacts import Store
from pipelines.core.stage import StageContext
from pipelines.pcrec.factors import factor_table

PIPE = "pcrec"


def interactions(n_users=60, n_src_items=40, n_tgt_items=30, n_shared=40, per_user=10, dim=4, seed=0):
    """Latent-factor interactions: user u picks items with probability ~ exp(3 <x_u, y_i>)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_users + 10, dim))
    rows = []
    src_users = [*range(n_shared), *range(n_users, n_users + 10)]   # shared + 10 source-only
    for dom, n_items, users in (("source", n_src_items, src_users),
                                ("target", n_tgt_items, range(n_users))):
        Y = rng.normal(size=(n_items, dim))
        for u in users:
            p = np.exp(3 * X[u] @ Y.T / np.sqrt(dim))
            items = rng.choice(n_items, size=min(per_user, n_items), replace=False, p=p / p.sum())
            for t, i in enumerate(items):
                rows.append((dom, f"u{u}", f"{dom[0]}{i}", t * 10 + int(rng.integers(5))))
    df = pd.DataFrame(rows, columns=["domain", "user", "item", "ts"])
    df["rating"] = 1.0
    for col, idc in (("user", "uid"), ("item", "iid")):
        df[idc] = df.groupby("domain")[col].transform(lambda s: pd.factorize(s, sort=True)[0]).astype("int64")
    df["ts"] = df["ts"].astype("int64")
    return df[["user", "item", "rating", "ts", "domain", "uid", "iid"]]


def publish(store: Store, stage: str, tables: dict, fp: str | None = None):
    fp = fp or (stage + "0" * 16)[:16]
    w = store.writer(PIPE, stage, fp)
    for name, t in tables.items():
        w.write_table(name, t)
    w.commit({"fingerprint": fp, "stage": stage})
    return store.artifact(PIPE, stage, fp)


def build_world(root, dim=8, seed=0, **kw):
    """Publish kcore, split, pretrain and target_embed artifacts; return (store, inputs)."""
    store = Store(str(root))
    inter = interactions(seed=seed, **kw)
    users = inter[["domain", "user", "uid"]].drop_duplicates().sort_values(["domain", "uid"])
    items = inter[["domain", "item", "iid"]].drop_duplicates().sort_values(["domain", "iid"])
    sp = leave_one_out(inter)
    rng = np.random.default_rng(seed + 1)

    def emb(domain, node_type, n):
        m = rng.normal(size=(n, dim)).astype(np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        t = factor_table("x", 0, m, np.zeros((0, dim), np.float32)).to_pandas()
        t = t.drop(columns=["method", "seed"])
        t["domain"], t["node_type"] = domain, node_type
        return t[["domain", "node_type", "idx", "embedding"]]

    n = lambda tab, d: int((tab.domain == d).sum())  # noqa: E731
    src = emb("source", "user", n(users, "source"))
    tgt = pd.concat([emb("target", "user", n(users, "target")), emb("target", "item", n(items, "target"))])
    inputs = {
        "kcore": publish(store, "kcore", {"interactions": inter, "users": users, "items": items}),
        "split": publish(store, "split", {"train": sp.train, "valid": sp.valid, "test": sp.test}),
        "pretrain": publish(store, "pretrain", {
            "embeddings": src,
            "curve": pd.DataFrame({"epoch": [0, 1, 2], "loss": [5.0, 4.0, 3.5]})}),
        "target_embed": publish(store, "target_embed", {"embeddings": tgt}),
    }
    return store, inputs


def rec_config(**over):
    """The rec sections of the pcrec config (tiny sizes), as the real pydantic models."""
    from pipelines.pcrec import config as C

    cfg = SimpleNamespace(
        seed=0,
        split=C.SplitConfig(),
        finetune=C.FinetuneConfig(
            seeds=[0, 1], factors=8, threads=1, checkpoint_every=2,
            train=C.BPRTrainConfig(epochs=6, batch_size=128, eval_every=1, patience=10),
            trainer={"num_workers": 0}),
        baselines=C.BaselinesConfig(
            threads=1, trainer={"num_workers": 0}, joint_mf={"budget": "updates"},
            lightgcn={"train": C.BPRTrainConfig(optimizer="adam", lr=0.02, reg=1e-4, epochs=4,
                                                batch_size=256, eval_every=1)}),
        peers=C.PeersConfig(ease_lambda=[1.0, 10.0], itemknn_k=[5, 10], itemknn_shrink=[0.0],
                            als_factors=[4], als_reg=[0.1], als_iterations=[3], als_alpha=[1.0, 5.0]),
        evaluate=C.EvaluateConfig(sampled_negatives=10),
        recommend=C.RecommendConfig(k=5),
        report=C.ReportConfig(),
    )
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def make_ctx(store: Store, stage: str, inputs: dict, cfg, tmp_path, fp: str | None = None):
    fp = fp or (stage + "1" * 16)[:16]
    scratch = str(tmp_path / "scratch" / stage / fp)
    return StageContext(pipeline=PIPE, stage=stage, cfg=cfg, inputs=inputs,
                        out=store.writer(PIPE, stage, fp), scratch_dir=scratch, fingerprint=fp)


def commit(ctx):
    ctx.out.commit({"fingerprint": ctx.fingerprint, "stage": ctx.stage})
    return ctx.out.store.artifact(PIPE, ctx.stage, ctx.fingerprint)
