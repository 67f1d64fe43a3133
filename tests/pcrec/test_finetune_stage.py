"""finetune / baselines / evaluate / recommend / report stages on a tiny synthetic world with
real Parquet artifacts and real Ray Train in local mode (num_workers=0; the worker path of
pipelines.core.train is covered by tests/core/test_train.py)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from pipelines.pcrec.bpr_runs import build_model, result_path
from pipelines.pcrec.factors import matrix, model_factors, select
from pipelines.pcrec.stages.baselines import run_baselines
from pipelines.pcrec.stages.evaluate import run_evaluate
from pipelines.pcrec.stages.peers import run_peers
from pipelines.pcrec.stages.finetune import make_specs, run_finetune, transfer_inits
from pipelines.pcrec.stages.recommend import run_recommend
from pipelines.pcrec.stages.report import run_report
from pipelines.pcrec.target_data import load_target
from tests.pcrec.rec_world import build_world, commit, make_ctx, rec_config

torch.set_num_threads(1)
DIM = 8


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    store, inputs = build_world(root / "art", dim=DIM)
    return root, store, inputs


def _embeddings(inputs, td):
    src = inputs["pretrain"].table("embeddings")
    tgt = inputs["target_embed"].table("embeddings")
    S, _ = matrix(select(src, domain="source", node_type="user"), int((td.users.domain == "source").sum()), "s")
    Tu, _ = matrix(select(tgt, domain="target", node_type="user"), td.n_users, "t")
    Ti, _ = matrix(select(tgt, domain="target", node_type="item"), td.n_items, "t")
    return S, Tu, Ti


def test_each_transfer_mode_initialises_as_documented(world, tmp_path):
    _, store, inputs = world
    cfg = rec_config()
    ctx = make_ctx(store, "finetune", inputs, cfg, tmp_path)
    td = load_target(ctx)
    S, Tu, Ti = _embeddings(inputs, td)
    # drop one target item's vector: it must fall back to the random init
    tgt = inputs["target_embed"].table("embeddings").to_pandas()
    tgt = tgt[~((tgt.node_type == "item") & (tgt.idx == 0))]
    import pyarrow as pa
    inits, stats = transfer_inits(td, inputs["pretrain"].table("embeddings"),
                                  pa.Table.from_pandas(tgt, preserve_index=False), DIM, 1.0,
                                  cfg.finetune.modes)
    assert stats["items_without_target_embed"] == 1
    shared = td.shared_users()
    is_shared = np.zeros(td.n_users, bool)
    is_shared[shared.target_uid] = True
    data = {"n_users": td.n_users, "n_items": td.n_items, "factors": DIM}
    models = {s.method: build_model(s, data, inits) for s in make_specs(cfg.finetune) if s.seed == 0}
    for m in ("direct", "pretrain_init"):
        P, Q = models[m].user.weight.detach().numpy(), models[m].item.weight.detach().numpy()
        np.testing.assert_allclose(P[shared.target_uid], S[shared.source_uid])      # source knowledge
        np.testing.assert_allclose(P[~is_shared], Tu[~is_shared])                   # target-only users
        np.testing.assert_allclose(Q[1:], Ti[1:])
    P, Q = models["generated_init"].user.weight.detach().numpy(), models["generated_init"].item.weight.detach().numpy()
    np.testing.assert_allclose(P, Tu)
    np.testing.assert_allclose(Q[1:], Ti[1:])
    rnd = models["bpr_mf"].item.weight.detach().numpy()
    for m in models:                     # the missing item 0 gets the seed's random row everywhere
        np.testing.assert_allclose(models[m].item.weight.detach().numpy()[0], rnd[0])
    assert not np.allclose(models["bpr_mf"].user.weight.detach().numpy(), Tu)
    assert models["direct"].bias is None and models["bpr_mf"].bias is not None


def _run(stage_fn, name, store, inputs, cfg, tmp_path, fp=None):
    ctx = make_ctx(store, name, inputs, cfg, tmp_path, fp=fp)
    stage_fn(ctx)
    return commit(ctx)


def test_chain_finetune_to_report(world, tmp_path, ray_local):
    _, store, inputs = world
    cfg = rec_config()
    ft = _run(run_finetune, "finetune", store, inputs, cfg, tmp_path)
    runs = ft.df("runs")
    assert sorted(set(runs.method)) == ["bpr_mf", "direct", "generated_init", "pretrain_init"]
    assert sorted(set(runs.seed)) == [0, 1]
    trained = runs[runs.method != "direct"]
    assert (trained.best_valid_ndcg10 > 0).all() and (trained.epochs_run >= 1).all()
    td = load_target(make_ctx(store, "x", inputs, cfg, tmp_path))
    S, Tu, Ti = _embeddings(inputs, td)
    U, V = model_factors(ft.table("embeddings"), "direct", 0, td.n_users, td.n_items, "ft")
    np.testing.assert_allclose(V, Ti, atol=1e-6)           # (a) = pre-trained vectors, untouched
    U2, V2 = model_factors(ft.table("embeddings"), "generated_init", 0, td.n_users, td.n_items, "ft")
    assert V2.shape[1] == DIM + 1 and not np.allclose(V2[:, :DIM], Ti)   # fine-tuned, + item bias

    bl = _run(run_baselines, "baselines", store, inputs, cfg, tmp_path)
    bruns = bl.df("runs")
    assert sorted(set(bruns.method)) == ["joint_mf", "lightgcn"]
    # joint_mf.budget = updates: its epochs shrink by target pairs / merged pairs, so it makes
    # (to an epoch's rounding) as many positive-pair updates as a target-only run of 6 epochs
    jm, bm = bruns[bruns.method == "joint_mf"].iloc[0], runs[runs.method == "bpr_mf"].iloc[0]
    assert jm.epoch_cap < 6 and jm.pair_updates > 0
    per_epoch = jm.pair_updates / jm.epochs_run
    assert abs(jm.epoch_cap * per_epoch - 6 * bm.pair_updates / bm.epochs_run) <= per_epoch / 2
    pe = _run(run_peers, "peers", store, inputs, cfg, tmp_path)
    peer_names = {"peer_pop", "peer_itemknn", "peer_ease", "peer_ease_joint", "peer_als", "peer_als_joint"}
    pruns = pe.df("runs")
    assert set(pruns.method) == peer_names and sorted(set(pruns.seed)) == [0, 1]
    assert (pruns.family == "peer").all() and (pruns.best_valid_ndcg10 > 0).all()
    grid = pe.df("grid")
    assert len(grid[grid.method == "peer_als"]) == 2 and len(grid[grid.method == "peer_ease"]) == 2
    assert sorted(grid[grid.method == "peer_als"].params.map(lambda p: json.loads(p)["alpha"])) == [1.0, 5.0]
    best = grid.groupby("method").valid_ndcg10.max()    # the chosen point is the grid's best
    seed0 = pruns[pruns.seed == 0].set_index("method").best_valid_ndcg10
    assert np.allclose(best.reindex(seed0.index), seed0)
    inputs = {**inputs, "finetune": ft, "baselines": bl, "peers": pe}
    ev = _run(run_evaluate, "evaluate", store, inputs, cfg, tmp_path)
    met = ev.df("metrics")
    assert list(met.columns) == ["method", "protocol", "metric", "value", "seed"]
    assert set(met.protocol) == {"full", "sampled"}
    assert {"hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr"} == set(met.metric)
    assert met.value.between(0, 1).all()
    assert peer_names <= set(met.method)
    pu = ev.df("per_user")
    one = pu[(pu.method == "bpr_mf") & (pu.seed == 0) & (pu.protocol == "full")]
    assert len(one) == len(td.test_u)
    assert one["ndcg@10"].mean() == pytest.approx(
        met.query("method == 'bpr_mf' and seed == 0 and protocol == 'full' and metric == 'ndcg@10'").value.iloc[0])
    # sampled protocol ranks among 1 + n candidates
    assert pu[pu.protocol == "sampled"]["rank"].max() <= cfg.evaluate.sampled_negatives
    assert ev.manifest["stats"]["sampled_short_users"] == 0
    # a catalogue smaller than the requested negatives: every user gets all its negatives, no crash
    big = rec_config(evaluate=cfg.evaluate.model_copy(update={"sampled_negatives": 40}))
    ev40 = _run(run_evaluate, "evaluate", store, inputs, big, tmp_path, fp="evaluate40" + "0" * 6)
    s40 = ev40.df("per_user").query("protocol == 'sampled'")
    assert (s40.n_candidates < 40).all() and (s40["rank"] <= s40.n_candidates).all()
    assert ev40.manifest["stats"]["sampled_short_users"] == len(td.test_u)

    rc = _run(run_recommend, "recommend", store, inputs, cfg, tmp_path)
    top = rc.df("topk")
    assert list(top.columns) == ["user", "rank", "item", "score"]
    assert top.groupby("user").size().max() == cfg.recommend.k
    inter = inputs["kcore"].df("interactions")
    seen = set(map(tuple, inter[inter.domain == "target"][["user", "item"]].values))
    assert not seen & set(map(tuple, top[["user", "item"]].values))
    assert top.groupby("user").score.apply(lambda s: s.is_monotonic_decreasing).all()
    assert rc.manifest["stats"]["method"] in set(met.method)

    rp = _run(run_report, "report", store, {**inputs, "evaluate": ev}, cfg, tmp_path)
    md = open(rp.path("report.md")).read()
    assert "Gain over plain BPR-MF" in md and "generated init" in md
    assert "## Peers" in md and "peer_ease_joint" in md
    for f in ("curves.png", "metrics.png", "infonce.png"):
        assert os.path.getsize(rp.path(f)) > 1000
    g = rp.df("gains")
    assert set(g.method) == {"direct", "pretrain_init", "generated_init", "lightgcn", "joint_mf"} | peer_names
    assert (g.n_seeds == 2).all()


def test_rerun_after_a_kill_resumes_from_the_checkpoint(world, tmp_path, ray_local):
    _, store, inputs = world
    cfg = rec_config()
    cfg.finetune = cfg.finetune.model_copy(update={"modes": ["generated_init", "bpr_mf"]})
    a = _run(run_finetune, "finetune", store, inputs, cfg, tmp_path, fp="resume" + "0" * 10)
    scratch = tmp_path / "scratch" / "finetune" / ("resume" + "0" * 10) / "finetune"
    last = result_path(str(scratch), "bpr_mf-s1")
    first = result_path(str(scratch), "generated_init-s0")
    mtime = os.path.getmtime(first)
    os.remove(last)                       # killed after the last checkpoint, before saving
    b = _run(run_finetune, "finetune", store, inputs, cfg, tmp_path, fp="resume" + "0" * 10)
    assert os.path.getmtime(first) == mtime            # finished runs are not retrained
    ea, eb = a.table("embeddings"), b.table("embeddings")
    td = load_target(make_ctx(store, "x", inputs, cfg, tmp_path))
    for m, s in (("bpr_mf", 1), ("generated_init", 0)):
        np.testing.assert_array_equal(model_factors(ea, m, s, td.n_users, td.n_items, "a")[0],
                                      model_factors(eb, m, s, td.n_users, td.n_items, "b")[0])
    assert a.df("curves").equals(b.df("curves"))


def test_grid_chooses_each_modes_point_on_validation_and_reuses_the_first_seed(world, tmp_path, ray_local):
    """finetune.grid: every trained mode runs each lr point on seed 0, keeps the best validation
    NDCG@10, and trains seed 1 at that point; the seed-0 run at the chosen point is the one kept."""
    from pipelines.pcrec import config as C

    _, store, inputs = world
    cfg = rec_config()
    cfg.finetune = cfg.finetune.model_copy(update={
        "modes": ["direct", "bpr_mf", "generated_init"],
        "grid": [C.GridPoint(lr=1e-4), C.GridPoint(lr=0.05, reg=0.001)]})
    ft = _run(run_finetune, "finetune", store, inputs, cfg, tmp_path, fp="grid" + "0" * 12)
    grid = ft.df("grid")
    assert set(grid.method) == {"bpr_mf", "generated_init"}         # direct trains nothing
    assert sorted(grid.point) == [0, 0, 1, 1] and (grid.seed == 0).all()
    assert set(grid[grid.point == 1].reg) == {0.001} and set(grid[grid.point == 0].lr) == {1e-4}
    runs = ft.df("runs")
    for m, g in grid.groupby("method"):
        best = g.sort_values(["valid_ndcg10", "point"], ascending=[False, True]).iloc[0]
        assert g[g.chosen].point.tolist() == [best.point]
        seed0 = runs[(runs.method == m) & (runs.seed == 0)].best_valid_ndcg10.iloc[0]
        assert seed0 == pytest.approx(best.valid_ndcg10)         # the chosen point's run is kept
    assert sorted(set(runs.seed)) == [0, 1] and len(runs) == 6
    scratch = tmp_path / "scratch" / "finetune" / ("grid" + "0" * 12) / "finetune"
    k = int(grid[(grid.method == "bpr_mf") & grid.chosen].point.iloc[0])
    assert os.path.exists(result_path(str(scratch), f"bpr_mf-g{k}-s1"))
    assert not os.path.exists(result_path(str(scratch), f"bpr_mf-g{1 - k}-s1"))


def test_report_grid_section_lists_every_point_and_marks_the_choice():
    import pandas as pd

    from pipelines.pcrec.stages.report import grid_section

    class Art:
        tables = ["grid", "runs"]

        def df(self, name):
            return pd.DataFrame({"method": ["bpr_mf", "bpr_mf"], "point": [0, 1], "lr": [0.05, 0.1],
                                 "reg": [0.01, 0.01], "seed": [0, 0], "valid_ndcg10": [0.09, 0.1],
                                 "best_epoch": [12, 9], "epochs_run": [18, 15], "epoch_cap": [60, 60],
                                 "chosen": [False, True]})

    md = "\n".join(grid_section(Art()))
    assert "finetune.grid" in md and md.count("bpr_mf") == 2 and md.count("**chosen**") == 1
    assert grid_section(type("NoGrid", (), {"tables": ["runs"]})()) == []
