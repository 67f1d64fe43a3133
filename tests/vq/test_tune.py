"""`recgen tune vq` selects on validation: the shipped space names the held-out NMSE, the engine
picks the trial that is best on it (not on the training NMSE), and a space or config that would
select on training data fails before anything runs. No Ray: the engine's pure parts."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from components.errors import ConfigError
from pipelines.core.config import validate_config
from pipelines.core.tune import (_final_metric, collect, expand_trials, load_spec, select_best, trial_tree,
                                 tunable)
from pipelines.vq.config import VQConfig
from pipelines.vq.tune import check_trial

REPO = Path(__file__).resolve().parents[2]
SPACE = REPO / "configs" / "vq" / "tune.yaml"


def test_shipped_space_selects_on_validation_nmse():
    spec = load_spec(SPACE, pipeline="vq")
    assert spec.metric == "val_nmse" and spec.mode == "min" and spec.trial_stage == "train_vq"
    assert tunable("vq").check is check_trial          # the engine runs the check on every trial
    for t in expand_trials(spec, {}):                 # every trial holds images out and passes the check
        cfg = validate_config(VQConfig, trial_tree(spec, {}, t["params"]), "trial")
        assert cfg.train.val_images > 0
        check_trial(spec, cfg)


def test_training_metric_or_no_held_out_images_is_refused():
    spec = load_spec(SPACE, pipeline="vq")
    cfg = validate_config(VQConfig, trial_tree(spec, {}, {}), "trial")
    with pytest.raises(ConfigError, match="not a validation metric"):
        check_trial(spec.model_copy(update={"metric": "nmse"}), cfg)
    with pytest.raises(ConfigError, match="mode: min"):
        check_trial(spec.model_copy(update={"mode": "max"}), cfg)
    no_val = validate_config(VQConfig, {"train": {"val_images": 0}}, "base")
    with pytest.raises(ConfigError, match="train.val_images"):
        check_trial(spec, no_val)


def _history(nmse, val):
    return pd.DataFrame({"epoch": range(len(nmse)), "nmse": nmse, "val_nmse": val})


def test_chosen_trial_is_the_argmin_of_validation_not_training():
    """Trial 0 fits its training images better (lower nmse) but generalises worse (higher val_nmse):
    the trial's value is its best validation epoch, and the search picks trial 1."""
    spec = load_spec(SPACE, pipeline="vq")
    hist = {0: _history([0.10, 0.02, 0.01], [0.12, 0.09, 0.11]),     # overfits: train best, val worse
            1: _history([0.12, 0.06, 0.05], [0.11, 0.07, 0.08])}
    # the trial's final report: train_vq/history aggregated by result_agg (best epoch of val_nmse)
    finals = {t: _final_metric(spec, SimpleNamespace(df=lambda _name, h=h: h)) for t, h in hist.items()}
    assert finals == {0: 0.09, 1: 0.07}
    trials = [{"trial": t, "is_default": False, "params": {"train.lr": 0.001, "vq.hidden": 16 * (t + 1)}}
              for t in hist]
    # what Tune hands back: per-epoch reports (the whole history row) plus the final report
    grid = [SimpleNamespace(config={"trial": trials[t]}, error=None,
                            metrics_dataframe=pd.concat([h.assign(final=0),
                                                         pd.DataFrame({"val_nmse": [finals[t]], "final": [1]})],
                                                        ignore_index=True))
            for t, h in hist.items()]
    results, history = collect(grid, spec, trials)
    assert results.set_index("trial").value.to_dict() == {0: 0.09, 1: 0.07}
    assert "val_nmse" in history.columns and "nmse" not in history.columns
    best = select_best(results, spec)
    assert best["trial"] == 1 and best["value"] == 0.07
    by_train = min(hist, key=lambda t: hist[t].nmse.min())
    assert by_train == 0 != best["trial"]             # selecting on training NMSE would have chosen 0
