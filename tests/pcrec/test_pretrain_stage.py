"""graph -> sample -> pretrain -> target_embed on the tiny fixture (real Ray, Ray Train,
DGL, Parquet), and checkpoint resume of the MoCo training loop."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from components.pcrec.graph import build_bipartite
from components.pcrec.sampler import RWRConfig, sample_views
from pipelines.core import train as rt
from pipelines.core.stage import StageContext

ROOT = Path(__file__).resolve().parents[2]


def _tiny_cfg():
    from pipelines.pcrec.config import PCRecConfig

    raw = yaml.safe_load((ROOT / "configs/pcrec/tiny.yaml").read_text())
    raw["data"]["path"] = str(ROOT / raw["data"]["path"])
    return PCRecConfig(**raw)


def test_chain_on_tiny(ray_local, tmp_root):
    from pipelines.core.runner import run_pipeline
    from pipelines.pcrec.dag import PIPELINE
    from pipelines.pcrec.stages.graph import load_graph
    from pipelines.pcrec.stages.target_embed import load_encoder

    cfg = _tiny_cfg()
    # Ray Train in-process (num_workers=0) keeps this test inside its time budget; worker
    # groups are exercised by benchmarks/bench_pretrain.py and the cluster tests
    cfg.pretrain.trainer.num_workers = 0
    res = run_pipeline(PIPELINE, cfg, str(tmp_root), until="target_embed", echo=False)
    art = {s: res.store.artifact("pcrec", s, p.fingerprint) for s, p in res.plans.items()}
    users = art["kcore"].df("users")

    # graph: node counts from kcore, symmetric edges, no held-out target interaction
    nodes = art["graph"].df("nodes")
    for dom in ("source", "target"):
        n = nodes[nodes.domain == dom]
        assert (n.node_type == "user").sum() == (users.domain == dom).sum()
    e = art["graph"].df("edges")
    fwd = set(zip(e.domain, e.src, e.dst))
    assert all((d, b, a) in fwd for d, a, b in fwd)
    tg = load_graph(art["graph"], "target")
    test = art["split"].df("test")
    src, dst = tg.edges()
    held = set(zip(test.uid.tolist(), (test.iid + tg.num_users).tolist()))
    assert not held & set(zip(src.tolist(), dst.tolist()))
    shared = art["graph"].df("shared_users")
    assert len(shared) > 0 and set(shared.columns) == {"user", "source_uid", "target_uid"}

    # sample: two views per query and epoch, query first, within r hops, capped
    tab = art["sample"].table("train").to_pandas()
    sg = load_graph(art["graph"], "source")
    assert len(tab) == cfg.sample.epochs * sg.num_nodes * 2
    assert all(n[0] == q for n, q in zip(tab.nodes, tab["query"]))
    assert tab.nodes.map(len).max() <= cfg.sample.max_nodes
    assert all(max(s, default=-1) < len(n) and max(d, default=-1) < len(n)
               for n, s, d in zip(tab.nodes, tab.src, tab.dst))

    # pretrain: every source node embedded (unit vectors of size dim), curve per epoch
    emb = art["pretrain"].df("embeddings")
    assert len(emb) == sg.num_nodes and set(emb.domain) == {"source"}
    mat = np.stack(emb.embedding.to_numpy())
    assert mat.shape[1] == cfg.pretrain.dim
    np.testing.assert_allclose(np.linalg.norm(mat, axis=1), 1.0, rtol=1e-4)
    curve = art["pretrain"].df("curve")
    assert list(curve.epoch) == list(range(cfg.pretrain.epochs)) and np.isfinite(curve.loss).all()
    enc, meta = load_encoder(art["pretrain"])
    assert meta["pos_dim"] == cfg.pretrain.pos_dim and meta["sampler"]["r"] == cfg.sample.r

    # target_embed: every target node, same space
    temb = art["target_embed"].df("embeddings")
    assert len(temb) == tg.num_nodes and set(temb.node_type) == {"user", "item"}
    assert len(np.stack(temb.embedding.to_numpy())[0]) == cfg.pretrain.dim


HP = {"dim": 8, "hidden": 8, "num_layers": 2, "degree_dim": 4, "max_degree": 16, "pos_dim": 4,
      "queue_size": 32, "momentum": 0.9, "temperature": 0.2, "lr": 0.01, "weight_decay": 0.0,
      "batch_size": 8, "threads": 1,
      # the cosine schedule depends on the total number of steps, which this test changes
      # between the interrupted and the resumed fit (epochs 1 -> 3); a constant LR keeps the
      # resume comparable (the schedule itself is a function of the global step: test below)
      "warmup_fraction": 0.0, "lr_schedule": "constant"}


def _graph():
    rng = np.random.default_rng(0)
    return build_bipartite(rng.integers(0, 20, 120), rng.integers(0, 15, 120), 20, 15)


def _sample_table():
    import pyarrow as pa

    g = _graph()
    parts = []
    for epoch in range(2):
        q = torch.arange(g.num_nodes)
        for v, b in enumerate(sample_views(g, q, RWRConfig(max_nodes=8, num_walkers=4, walk_length=4),
                                           seed=epoch)):
            parts.append(b.to_arrow(epoch=np.full(len(b), epoch, np.int32), view=np.full(len(b), v, np.int8)))
    return pa.concat_tables(parts)


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=[pytest.mark.slow, pytest.mark.long])])
def test_resume_reproduces_state(ray_local, tmp_path, workers):
    import ray

    from pipelines.pcrec.stages.pretrain import train_loop

    ref = ray.put(_sample_table())

    def fit(where, epochs):
        ctx = StageContext(pipeline="pcrec", stage="pretrain", cfg=None, inputs={}, out=None,
                           scratch_dir=str(tmp_path / where), fingerprint="0" * 64)
        from pipelines.pcrec.config import PretrainConfig

        cfg = PretrainConfig(**HP, epochs=epochs)
        res = rt.fit(ctx, train_loop, {"cfg": cfg, "seed": 3, "data_ref": ref,
                                       "graph_degree": _graph().degrees()},
                     rt.TrainerConfig(num_workers=workers, max_failures=0), name="moco")
        return rt.final_state(res)

    straight = fit("a", 3)
    first = fit("b", 1)
    assert first["epoch"] == 0 and len(first["history"]) == 1
    resumed = fit("b", 3)                         # same storage: continues at epoch 1
    assert [r["epoch"] for r in resumed["history"]] == [0, 1, 2]
    assert resumed["history"][0] == first["history"][0]
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in straight["history"]]
    for k, v in straight["moco"].items():
        assert torch.equal(v, resumed["moco"][k]), k
    # 35 queries, batch 8: one worker takes 5 equal steps of 7 pairs per epoch (105 keys went
    # through the queue); two take 17 each, in 3 equal steps of 5 (2 x 15 pairs, keys all-gathered)
    per_epoch = 35 if workers <= 1 else 30
    assert [r["pairs"] for r in straight["history"]] == [per_epoch] * 3
    assert int(straight["moco"]["queue_ptr"]) == (3 * per_epoch) % 32


def test_lr_schedule_warms_up_then_decays_and_depends_only_on_the_step():
    from pipelines.pcrec.stages.pretrain import lr_factor

    f = [lr_factor(i, 100, 0.1, "cosine") for i in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)      # linear warmup, 10 steps
    assert all(a <= b for a, b in zip(f[:10], f[1:10]))
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] < 0.01    # cosine decay to ~0
    assert [lr_factor(i, 100, 0.1, "cosine") for i in range(100)] == f
    assert lr_factor(50, 100, 0.0, "constant") == 1.0
    # plain Python floats: the checkpoint is loaded with weights_only=True (no numpy scalars)
    assert all(type(lr_factor(i, 100, 0.1, "cosine")) is float for i in (0, 50, 99))


def test_consistent_eval_scores_the_encoder_against_its_own_dictionary():
    """eval_infonce: view 0 of each pair against view 1 of all pairs (a dictionary made by the
    current encoder, unlike the training queue's stale keys). Identical views beat mismatched ones;
    chance is ln N; the encoder's train/eval mode is restored."""
    from pipelines.pcrec.config import PretrainConfig
    from pipelines.pcrec.stages.pretrain import build_moco, consistent_eval, eval_pairs

    cfg = PretrainConfig(**HP)
    g = _graph()
    v0, v1 = eval_pairs(_sample_table(), 16)
    assert len(v0) == len(v1) == 16 and torch.equal(v0.query, v1.query)
    enc = build_moco(cfg, 0).encoder_q.train()
    same = consistent_eval(enc, (v0, v0), cfg, g.degrees())
    rolled = v0.select(torch.roll(torch.arange(16), 1))     # every positive is another node's view
    wrong = consistent_eval(enc, (v0, rolled), cfg, g.degrees())
    assert enc.training
    assert same["chance"] == pytest.approx(np.log(16)) and same["pairs"] == 16
    assert same["infonce"] < wrong["infonce"] and same["top1"] > wrong["top1"]
    assert eval_pairs(_sample_table(), 1) is None


def test_init_geometry_centres_whitens_and_scales():
    """finetune.init_geometry: center removes the shared mean and matches the random init's RMS
    norm; whiten also equalises the principal directions; rows without a vector stay zero."""
    from components.errors import ConfigError
    from pipelines.pcrec.factors import init_geometry

    rng = np.random.default_rng(0)
    m = (rng.normal(size=(60, 8)) * [5, 1, 1, 1, 1, 1, 1, 0] + 3).astype(np.float32)
    ok = np.ones(60, bool)
    ok[-5:] = False
    m[-5:] = 0
    assert np.array_equal(init_geometry(m, ok, "raw", 0.8), m)
    for mode in ("center", "whiten"):
        out = init_geometry(m, ok, mode, 0.8)
        x = out[ok].astype(np.float64)
        assert np.abs(x.mean(0)).max() < 1e-5
        assert np.sqrt((x ** 2).sum(1).mean()) == pytest.approx(0.8, rel=1e-5)
        assert not out[~ok].any()
    s = np.linalg.svd(init_geometry(m, ok, "whiten", 0.8)[ok], compute_uv=False)
    assert s[0] / s[6] == pytest.approx(1.0, rel=1e-4) and s[7] < 1e-4 * s[0]   # 7 equal, 1 dropped
    with pytest.raises(ConfigError, match="init_geometry"):
        init_geometry(m, ok, "sphere", 0.8)
