"""The ``pcrec`` pipeline: stage list (each helper appends its own stages, in data-flow order).

ingest -> kcore -> split -> graph -> sample -> pretrain -> target_embed -> finetune -> baselines
-> peers -> evaluate -> recommend -> report (see /docs/architecture.md and the shared data contracts).
"""
from __future__ import annotations

from pipelines.core.stage import Pipeline, Stage
from pipelines.pcrec.config import PCRecConfig
from pipelines.pcrec.stages.ingest import data_files, run_ingest
from pipelines.pcrec.stages.kcore import run_kcore
from pipelines.pcrec.stages.split import run_split
from pipelines.pcrec.stages.graph import run_graph
from pipelines.pcrec.stages.pretrain import run_pretrain
from pipelines.pcrec.stages.sample import run_sample
from pipelines.pcrec.stages.target_embed import run_target_embed


def _in_process_is_a_task(cfg) -> str:
    """baselines trains in-process (``baselines.trainer.num_workers: 0``): a Ray task, so that it
    runs beside sample -> pretrain -> finetune (driver stages run one at a time); with Ray
    Train workers it launches them from the driver."""
    return "task" if cfg.baselines.trainer.num_workers == 0 else "driver"
from pipelines.pcrec.stages.baselines import run_baselines
from pipelines.pcrec.stages.evaluate import run_evaluate
from pipelines.pcrec.stages.peers import run_peers
from pipelines.pcrec.stages.finetune import run_finetune
from pipelines.pcrec.stages.recommend import run_recommend
from pipelines.pcrec.stages.report import run_report

PIPELINE = Pipeline(
    name="pcrec",
    config_cls=PCRecConfig,
    description="cross-domain graph recommendation: PCRec pre-training on the source, fine-tuning on the target",
    stages=[
        Stage("ingest", run_ingest, inputs=(), config_keys=("data", "ingest"), external_inputs=data_files,
              description="read the data into canonical, indexed interactions (+ rejects, id maps)"),
        Stage("kcore", run_kcore, inputs=("ingest",), config_keys=("kcore",),
              description="per-domain k-core (source 10, target 5), ids re-indexed"),
        Stage("split", run_split, inputs=("kcore",), config_keys=("split",),
              description="leave-one-out by time on the target (last = test, second-to-last = valid)"),
        Stage("graph", run_graph, inputs=("kcore", "split"), config_keys=("graph",),
              description="per-domain bipartite user-item graphs (from split/train) + shared users"),
        Stage("sample", run_sample, inputs=("graph",), config_keys=("sample",),
              description="two RWR r-ego views per source query node and epoch (positive pairs)"),
        Stage("pretrain", run_pretrain, inputs=("graph", "sample"), config_keys=("pretrain",), version=3,
              kind="driver",
              description="GIN + MoCo (InfoNCE) pre-training on the source graph with Ray Train"),
        Stage("target_embed", run_target_embed, inputs=("graph", "pretrain"),
              config_keys=("target_embed",),
              description="pre-trained encoder on target-domain ego views (transfer mode c)"),
        Stage("finetune", run_finetune, inputs=("kcore", "split", "pretrain", "target_embed"),
              config_keys=("finetune",), kind="driver",
              description="BPR-MF on the target under transfer modes (a)-(d) x seeds, one Ray Train fit"),
        Stage("baselines", run_baselines, inputs=("kcore", "split"),
              config_keys=("finetune", "baselines"), kind=_in_process_is_a_task,
              description="LightGCN on the target only; MF on source+target merged (joint)"),
        Stage("peers", run_peers, inputs=("kcore", "split"), config_keys=("peers", "finetune"),
              description="peers on the same split: popularity, ItemKNN, EASE (target, joint), "
                          "ALS (implicit); grids chosen on validation"),
        Stage("evaluate", run_evaluate, inputs=("kcore", "split", "finetune", "baselines", "peers"),
              config_keys=("evaluate",),
              description="test HR/NDCG@{5,10,20}, MRR: full ranking and 1+99 sampled, per user"),
        Stage("recommend", run_recommend, inputs=("kcore", "split", "finetune", "baselines", "peers"),
              config_keys=("recommend",),
              description="top-K unseen target items per user (model chosen on validation)"),
        Stage("report", run_report, inputs=("evaluate", "finetune", "baselines", "peers", "pretrain",
                                          "split"),
              config_keys=("report", "split"), kind="driver",  # driver: the table prints without Ray prefixes
              description="method x metric table, gains over BPR-MF over seeds, plots, report.md"),
    ],
)
