"""The ``pcrec`` pipeline: stage list (each helper appends its own stages, in data-flow order).

ingest -> kcore -> split -> graph -> sample -> pretrain -> target_embed -> finetune -> baselines
-> evaluate -> recommend -> report (see /docs/architecture.md and the shared data contracts).
"""
from __future__ import annotations

from pipelines.core.stage import Pipeline, Stage
from pipelines.pcrec.config import PCRecConfig
from pipelines.pcrec.stages.ingest import data_files, run_ingest
from pipelines.pcrec.stages.kcore import run_kcore
from pipelines.pcrec.stages.split import run_split

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
    ],
)
