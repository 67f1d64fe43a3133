"""split stage: leave-one-out by time on the target domain (kcore -> split).

Writes ``train`` (all source rows + earlier target rows), ``valid`` (second-to-last target row
per evaluated user) and ``test`` (last target row per evaluated user), all with the columns of
``kcore/interactions``, and ``groups`` (uid, user, shared, group, train_rows: one row per
evaluated user; group = ``shared``, ``target-only``, or the scenario name for thinned users).
Config: ``split.min_interactions``; ``split.scenario`` (dense | sparse | cold),
``split.scenario_fraction`` and ``split.sparse_keep`` thin the target training rows of some
shared users (:func:`components.pcrec.split.apply_scenario`).
"""
from __future__ import annotations

from components.pcrec.split import apply_scenario, leave_one_out
from pipelines.core.hints import config_hints


def run_split(ctx) -> None:
    """Stage body: read kcore/interactions, split, write train/valid/test."""
    inter = ctx.input("kcore").df("interactions")
    cfg = ctx.cfg.split
    with config_hints(
            min_interactions="set split.min_interactions to 3 or more",
            domain="no target-domain rows are left: check the domain assignment (data.domain; "
                   "data.ml1m.target for the ML-1M recipe) and kcore.k_target"):
        parts = leave_one_out(inter, domain="target", min_interactions=cfg.min_interactions)
    with config_hints(scenario="set split.scenario to dense, sparse or cold",
                      fraction="set split.scenario_fraction in [0, 1]",
                      keep="set split.sparse_keep to [min, max] with 1 <= min <= max"):
        parts, groups = apply_scenario(parts, cfg.scenario, fraction=cfg.scenario_fraction,
                                       keep=tuple(cfg.sparse_keep), seed=ctx.seed)
    ctx.out.write_table("train", parts.train)
    ctx.out.write_table("valid", parts.valid)
    ctx.out.write_table("test", parts.test)
    ctx.out.write_table("groups", groups)
    n_target_users = int(inter.loc[inter["domain"] == "target", "uid"].nunique())
    ctx.out.stats(train_rows=len(parts.train), valid_rows=len(parts.valid),
                  test_rows=len(parts.test), evaluated_users=len(parts.test),
                  target_users=n_target_users, scenario=cfg.scenario,
                  **{f"group_{k}": int(v) for k, v in groups.group.value_counts().items()})
    ctx.log("evaluating %d of %d target users; %d train rows; scenario %s: %s", len(parts.test),
            n_target_users, len(parts.train), cfg.scenario, groups.group.value_counts().to_dict())
