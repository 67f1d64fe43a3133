"""`recgen tune pcrec`: the seeded trial list, a real Ray Tune search on the tiny fixture
(two trials, each its own Ray job with its own TorchTrainer), interrupted and resumed, and an
ASHA search that stops trials early and still finishes."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from components.errors import ConfigError
from pipelines.core.config import config_dump, load_config, read_yaml, validate_config
from pipelines.pcrec.config import PCRecConfig
from pipelines.pcrec.tune import TuneSpec, expand_trials, load_spec, run_search, trial_tree

REPO = Path(__file__).resolve().parents[2]
PIPE = os.environ.get("RECGEN_TUNE_TEST_PIPELINE", "pcrec")
TINY = REPO / "configs" / "pcrec" / "tiny.yaml"


def test_shipped_space_expands_to_valid_seeded_trials():
    spec = load_spec()
    base = read_yaml(REPO / "configs" / "pcrec" / "default.yaml")
    dump = config_dump(validate_config(PCRecConfig, base))
    trials = expand_trials(spec, dump)
    assert trials == expand_trials(spec, dump)                       # seeded: same list again
    rs = {t["params"]["sample.r"] for t in trials}
    assert rs == {1, 2, 3}
    assert {t["params"]["finetune.train.loss.name"] for t in trials} >= {"logit_margin", "l1_hinge"}
    default = [t for t in trials if t["is_default"]]
    assert len(default) == 1 and default[0]["params"]["sample.r"] == 2
    assert default[0]["params"]["finetune.train.loss.name"] == "logit_margin"
    for t in trials:                                                 # every trial is a valid config
        cfg = validate_config(PCRecConfig, trial_tree(spec, base, t["params"]))
        assert cfg.pretrain.dim == cfg.finetune.factors                # tied axis
        assert cfg.finetune.modes == ["pretrain_init"]


def test_bad_space_is_a_config_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("space: [{path: sample.r, grid: [1], choice: [2]}]\n")
    with pytest.raises(ConfigError, match="exactly one of grid, choice"):
        load_spec(p)


def _echo(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


class _InterruptOnce:
    """A Tune callback that aborts the driver loop once, after the first finished trial."""

    def __init__(self, flag: str):
        self.flag = flag

    def __call__(self):
        import ray.tune

        flag = self.flag

        class Interrupt(ray.tune.Callback):
            def on_trial_complete(self, iteration, trials, trial, **info):
                if not os.path.exists(flag):
                    Path(flag).touch()
                    raise KeyboardInterrupt("simulated interruption of the tune driver")

        return Interrupt()


@pytest.mark.slow
@pytest.mark.long
def test_tune_two_trials_interrupted_and_resumed(ray_local, tmp_path):
    base = read_yaml(TINY)
    base["data"]["path"] = str(REPO / base["data"]["path"])
    base.setdefault("pretrain", {}).setdefault("trainer", {})["num_workers"] = 0  # shared upstream in-process
    spec = TuneSpec.model_validate({
        "name": "t", "seed": 1,
        "space": [{"path": "finetune.train.loss.name", "grid": ["logit_margin", "l2_hinge"]},
                  {"path": "finetune.train.loss.params.m", "choice": [0.0]},
                  {"path": "finetune.train.lr", "choice": [0.05]}],
        "fixed": {"finetune.modes": ["pretrain_init"], "finetune.seeds": [0],
                  "finetune.train.eval_every": 1, "finetune.checkpoint_every": 1,
                  "finetune.trainer.num_workers": 1},
        "default": {"finetune.train.loss.name": "logit_margin", "finetune.train.loss.params.m": 0.0},
        "roles": {"loss": "finetune.train.loss.name", "margin": "finetune.train.loss.params.m"},
        "test_metric": {"method": "pretrain_init", "metric": "ndcg@10", "protocol": "full"},
        "eval_fixed": {"baselines.methods": ["joint_mf"], "evaluate.sampled_negatives": 4},
        "scheduler": {"max_t": 20, "grace_period": 20},
        "max_concurrent_trials": 1,
    })
    root = str(tmp_path / "art")
    flag = str(tmp_path / "interrupted")
    with pytest.raises(KeyboardInterrupt):
        run_search(PIPE, base, spec, root, callbacks=[_InterruptOnce(flag)()], echo=_echo)
    out_dir = tmp_path / "art" / "pcrec" / "tune" / "t"
    assert not (out_dir / "results.parquet").exists()
    done_before = {p.parent.name for p in (tmp_path / "art" / "pcrec" / "finetune").glob("*/_manifest.json")}
    assert len(done_before) == 1                          # one trial finished before the interruption

    out = run_search(PIPE, base, spec, root, resume=True, echo=_echo)
    res = pd.read_parquet(out_dir / "results.parquet")
    assert len(res) == 2 and (res.status == "TERMINATED").all()
    assert res.value.between(0, 1).all()
    # the trial finished before the interruption was not trained again: cache hit on resume
    assert res.cached.sum() >= 1
    done_after = {p.parent.name for p in (tmp_path / "art" / "pcrec" / "finetune").glob("*/_manifest.json")}
    assert done_before < done_after and len(done_after) == 2
    # both trials shared one upstream (same r): materialised once, listed with both trials
    shared = pd.read_parquet(out_dir / "shared_upstream.parquet")
    assert shared.n_trials.max() == 2
    # per-epoch validation reports reached Tune from the TorchTrainer (more than the final one)
    hist = pd.read_parquet(out_dir / "history.parquet")
    assert hist.groupby("trial").size().max() > 1
    # the best config is a valid `recgen run pcrec --config` file
    best_cfg = load_config(PCRecConfig, out_dir / "best_config.yaml")
    best = json.loads((out_dir / "best.json").read_text())
    assert best_cfg.finetune.train.loss.name == best["best"]["params"]["finetune.train.loss.name"]
    assert best["best"]["value"] == pytest.approx(res.value.max())
    assert 0 <= best["test"]["best"]["value"] <= 1 and best["test"]["best"]["rows"] == 1
    assert (out_dir / "ndcg_vs_margin.png").stat().st_size > 1000
    assert "| trial |" in (out_dir / "results.md").read_text()
    with pytest.raises(ConfigError, match="search space, seed or base config changed"):
        changed = spec.model_copy(update={"space": [spec.space[0].model_copy(update={"grid": ["exp"]}),
                                                    *spec.space[1:]]})
        run_search(PIPE, base, changed, root, resume=True, echo=_echo)


def test_cli_tune_rejects_unknown_pipeline_and_bad_space(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["tune", "bogus", "--artifacts", str(tmp_path)]) == 2
    assert "has no search" in capsys.readouterr().err
    bad = tmp_path / "space.yaml"
    bad.write_text("space: [{path: sample.r, grid: [1]}]\nbogus: 1\n")
    assert main(["tune", "pcrec", "--space", str(bad), "--artifacts", str(tmp_path)]) == 2
    assert "unknown key 'bogus'" in capsys.readouterr().err


ASHA_SPACE = ("space=[{path: sample.r, grid: [2]}, "
              "{path: finetune.train.loss.name, grid: [logit_margin, l2_hinge, l1_hinge, exp]}, "
              "{path: finetune.train.loss.params.m, choice: [0.0, 0.5, 1.0]}, "
              "{path: finetune.train.lr, loguniform: [0.02, 0.1], round: 4}]")


@pytest.mark.slow
@pytest.mark.long
def test_asha_search_on_tiny_finishes_with_every_trial_ended(tmp_path):
    """Issue 12 item 3: ASHA stops trials early and the search never stalls. A stopped trial
    ends its own Ray job (pipelines.core.tune_trial), so its trainer's placement group is
    released; later trials get the CPUs. The shipped space's axes on the tiny config, reduced
    to one r and four losses (5 trials with the default) and an ASHA that decides after every
    epoch (grace 1, reduction factor 3), so that it does stop some trials."""
    import subprocess
    import sys

    root = tmp_path / "art"
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "tune", "pcrec", "--config", str(TINY), "--artifacts", str(root),
         "--num-cpus", "2", "--no-test", "--set", "pretrain.trainer.num_workers=0", "--tune-set", "name=asha",
         "--tune-set", ASHA_SPACE, "--tune-set", "scheduler.grace_period=1",
         "--tune-set", "scheduler.reduction_factor=3"],
        cwd=REPO, capture_output=True, text=True, timeout=1500)
    wall = time.time() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out_dir = root / "pcrec" / "tune" / "asha"
    res = pd.read_parquet(out_dir / "results.parquet")
    assert len(res) == 5
    # every trial ended: finished, stopped early by ASHA, or failed numerically; none errored
    assert set(res.status) <= {"TERMINATED", "STOPPED", "DIVERGED"}, res[["trial", "status", "error"]]
    assert res.error.isna().all()
    assert (res.status == "STOPPED").sum() >= 1, res[["trial", "status", "reports", "value"]]
    best = json.loads((out_dir / "best.json").read_text())["best"]
    assert 0 <= best["value"] < 1
    print(f"asha search: {wall:.0f}s, statuses {res.status.value_counts().to_dict()}")


# ---------------------------------------------------------------- diverged trials (issue 12)
def _spec_for_select(mode="max"):
    return TuneSpec.model_validate({"space": [{"path": "finetune.train.lr", "choice": [0.1]}], "mode": mode})


def _results(rows):
    base = {"is_default": False, "reports": 1, "status": "TERMINATED", "error": None, "diverged": False}
    return pd.DataFrame([{**base, "params_json": json.dumps({"finetune.train.lr": r["trial"] / 10}), **r}
                         for r in rows])


@pytest.mark.parametrize("mode", ["max", "min"])
def test_select_best_never_picks_a_nan_or_diverged_trial(mode):
    from pipelines.pcrec.tune import select_best

    res = _results([
        {"trial": 0, "value": float("nan"), "status": "DIVERGED", "diverged": True},
        {"trial": 1, "value": 1.0, "status": "DIVERGED", "diverged": True},   # a "perfect" diverged one
        {"trial": 2, "value": 0.3},
        {"trial": 3, "value": float("inf")},
        {"trial": 4, "value": -float("inf")},
        {"trial": 5, "value": 0.2},
    ])
    best = select_best(res, _spec_for_select(mode))
    assert best["trial"] == (2 if mode == "max" else 5)
    assert best["params"] == {"finetune.train.lr": best["trial"] / 10}


def test_select_best_with_only_diverged_trials_is_a_clear_error():
    from pipelines.pcrec.tune import select_best

    res = _results([{"trial": 0, "value": float("nan"), "diverged": True},
                    {"trial": 1, "value": 0.9, "diverged": True}])
    with pytest.raises(ConfigError, match="2 of 2 diverged"):
        select_best(res, _spec_for_select())


def test_reports_with_a_non_finite_loss_mark_the_trial_diverged():
    from pipelines.pcrec.tune import _reports_diverged

    ok = pd.DataFrame({"epoch": [0, 1, 2], "loss": [float("nan"), 0.5, 0.4],   # epoch 0: direct mode
                       "best_valid_ndcg10": [0.1, 0.2, 0.3]})
    assert not _reports_diverged(ok)
    assert _reports_diverged(ok.assign(loss=[float("nan"), 0.5, float("nan")]))
    assert _reports_diverged(pd.DataFrame({"best_valid_ndcg10": [-float("inf")], "diverged": [True]}))
    assert not _reports_diverged(pd.DataFrame())


def test_non_finite_factors_hint_names_the_stage_that_trained_them():
    import numpy as np

    from components.errors import InputError
    from pipelines.pcrec.factors import factor_table, model_factors

    U = np.ones((2, 3), np.float32)
    V = np.ones((4, 3), np.float32)
    V[1, 0] = np.nan
    for stage, method, key in [("finetune", "pretrain_init", "finetune.train.lr"),
                               ("baselines", "lightgcn", "baselines.lightgcn.train.lr"),
                               ("pretrain", "x", "pretrain.lr")]:
        t = factor_table(method, 0, U, V)
        with pytest.raises(InputError) as e:
            model_factors(t, method, 0, 2, 4, f"{stage}/embeddings")
        msg = str(e.value)
        assert f"--force {stage}" in msg and key in msg, msg
        if stage != "pretrain":
            assert "pretrain.lr" not in msg


def test_a_run_with_a_nan_loss_or_nan_factors_is_diverged():
    import numpy as np

    from pipelines.pcrec.bpr_runs import diverged

    ok = {"history": [{"epoch": 0, "loss": float("nan")}, {"epoch": 1, "loss": 0.6}],
          "U": np.ones((2, 2)), "V": np.ones((3, 2))}
    assert diverged(ok) is None                                   # epoch 0 (direct mode) is no loss
    assert "epoch 2" in diverged({**ok, "history": ok["history"] + [{"epoch": 2, "loss": float("inf")}]})
    assert "item factors" in diverged({**ok, "V": np.array([[1.0, np.nan]])})
