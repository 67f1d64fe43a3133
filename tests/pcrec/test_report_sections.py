"""report.md sections that need no Ray: scenario breakdowns and pre-training diagnostics."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pipelines.pcrec.stages.report import breakdowns, pretrain_section


def test_breakdowns_by_group_and_degree_bucket():
    groups = pd.DataFrame({"uid": [0, 1, 2, 3], "user": list("abcd"), "shared": [True, True, True, False],
                           "group": ["cold", "shared", "shared", "target-only"], "train_rows": [0, 2, 40, 5]})
    rows = []
    for seed in (0, 1):
        for m, base in (("bpr_mf", 0.1), ("peer_ease", 0.2)):
            for uid in range(4):
                rows.append({"method": m, "protocol": "full", "seed": seed, "uid": uid,
                             "ndcg@10": base + uid / 100 + seed / 1000})
    pu = pd.DataFrame(rows)
    pu = pd.concat([pu, pu.assign(protocol="sampled", **{"ndcg@10": 9.0})])   # other protocol ignored
    by_group, by_bucket = breakdowns(pu, groups)
    assert list(by_group.index) == ["bpr_mf", "peer_ease"]
    assert list(by_group.columns) == ["cold (1 users)", "shared (2 users)", "target-only (1 users)"]
    assert by_group.loc["bpr_mf", "cold (1 users)"] == "0.1005 ± 0.0005"      # uid 0, mean of 2 seeds
    assert by_group.loc["peer_ease", "shared (2 users)"] == "0.2155 ± 0.0005"
    assert list(by_bucket.columns) == ["0 (1 users)", "1-3 (1 users)", "4-10 (1 users)", "31+ (1 users)"]
    assert by_bucket.loc["bpr_mf", "31+ (1 users)"] == "0.1205 ± 0.0005"


class _Art:
    def __init__(self, tmp_path, diag):
        self.dir = str(tmp_path)
        (tmp_path / "encoder.json").write_text(json.dumps({"queue_size": 4095}))
        self._diag = diag
        self.tables = ["diagnostics", "steps"]

    def path(self, name):
        return f"{self.dir}/{name}"

    def df(self, name):
        return self._diag


def test_pretrain_section_reports_chance_plateau_and_trained_vs_untrained(tmp_path):
    diag = pd.DataFrame([{"encoder": e, "metric": m, "value": v, "nodes": 100}
                         for e, vals in (("trained", (0.1, -2.0, 20.0, 0.2, 0.5, 0.9, 0.01, 0.6)),
                                         ("untrained", (0.3, -1.0, 5.0, 0.8, 0.02, 0.1, 0.01, 0.5)))
                         for m, v in zip(["alignment", "uniformity", "effective_rank", "mean_cosine",
                                          "view_top1", "view_top10", "view_top1_chance", "link_auc"], vals)])
    loss = np.r_[np.linspace(8.0, 4.0, 50), np.full(50, 4.0)]
    md = "\n".join(pretrain_section(_Art(tmp_path, diag), pd.DataFrame({"step": np.arange(100), "loss": loss})))
    assert "ln(K+1) = 8.318" in md and "(plateau)" in md
    assert "| effective_rank | 20.0 | 5.0 |" in md
    assert "learned to tell nodes apart" in md


def test_consistent_infonce_and_degree_matched_auc_are_reported(tmp_path):
    diag = pd.DataFrame([{"encoder": e, "metric": m, "value": v, "nodes": 100}
                         for e, vals in (("trained", (0.3, 0.55)), ("untrained", (0.1, 0.55)))
                         for m, v in zip(["view_top1", "link_auc_matched"], vals)])
    curve = pd.DataFrame({"epoch": range(4), "loss": [5.0, 4.0, 4.5, 4.9],      # training loss rises
                          "eval_infonce": [4.4, 3.9, 3.5, 3.2], "eval_chance": np.log(512),
                          "eval_pairs": 512, "eval_infonce_untrained": 5.4})

    class Art(_Art):
        def df(self, name):
            return curve if name == "curve" else diag

    art = Art(tmp_path, diag)
    art.tables = ["curve", "diagnostics"]
    md = "\n".join(pretrain_section(art, curve))
    assert "Consistent InfoNCE per epoch" in md and "4.400, 3.900, 3.500, 3.200" in md
    assert "untrained encoder 5.400" in md and "still falling" in md
    assert "the loss is rising at the end" in md                                # training loss verdict
    assert "degree-matched link AUC 0.550 vs 0.550 untrained (no better than untrained" in md


def test_one_capped_seed_is_reported_even_when_the_method_mean_is_below_the_cap():
    from pipelines.pcrec.stages.report import capped_runs

    runs = pd.DataFrame({"method": ["bpr_mf"] * 3 + ["peer_ease"], "seed": [0, 1, 2, 0],
                         "best_epoch": [57, 39, 60, 0], "epochs_run": [60, 45, 60, np.nan],
                         "epoch_cap": [60, 60, 60, np.nan]})
    assert capped_runs(runs) == ["bpr_mf seed 0 (best epoch 57 of cap 60)",
                                 "bpr_mf seed 2 (best epoch 60 of cap 60)"]
    assert capped_runs(runs.assign(epochs_run=[51, 45, 48, np.nan])) == []


def test_a_run_that_completed_its_annealed_schedule_is_listed_apart_from_capped_ones():
    from pipelines.pcrec.stages.report import capped_runs

    runs = pd.DataFrame({"method": ["bpr_mf", "bpr_mf", "lightgcn", "peer_ease"], "seed": [0, 1, 0, 0],
                         "best_epoch": [60, 42, 40, 0], "epochs_run": [60, 48, 40, np.nan],
                         "epoch_cap": [60, 60, 40, np.nan],
                         "lr_schedule": ["cosine", "cosine", "constant", np.nan]})
    assert capped_runs(runs) == ["lightgcn seed 0 (best epoch 40 of cap 40)"]
    assert capped_runs(runs, annealed=True) == ["bpr_mf seed 0 (best epoch 60 of cap 60)"]
