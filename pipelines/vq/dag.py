"""The ``vq`` pipeline: ingest -> train_vq -> extract_codes -> train_priors -> sample -> evaluate -> report.

``recgen run vq --set model=vqvae2`` (default) or ``--set model=vqvae``. ``train_classifier`` runs
beside the VQ branch (it only needs the real images).
"""
from __future__ import annotations

from pipelines.core.stage import Pipeline, Stage
from pipelines.vq.config import VQConfig
from pipelines.vq.stages.classifier import run_train_classifier
from pipelines.vq.stages.codes import run_extract_codes
from pipelines.vq.stages.evaluate import run_evaluate
from pipelines.vq.stages.ingest import data_files, run_ingest
from pipelines.vq.stages.priors import run_train_priors
from pipelines.vq.stages.report import run_report
from pipelines.vq.stages.sample import run_sample
from pipelines.vq.stages.train_vq import run_train_vq

PIPELINE = Pipeline(
    name="vq", config_cls=VQConfig,
    description="VQ-VAE / VQ-VAE-2 with gated PixelCNN + PixelSNAIL-style priors, rejection sampling",
    stages=[
        Stage("ingest", run_ingest, config_keys=("data",), external_inputs=data_files,
              description="images (idx / npz / class folders) -> Parquet"),
        Stage("train_vq", run_train_vq, inputs=("ingest",), config_keys=("model", "vq", "train"),
              kind="driver", version=4, description="VQ-VAE(-2) under Ray Train"),
        Stage("extract_codes", run_extract_codes, inputs=("ingest", "train_vq"),
              description="codes per image: image_id, top, bottom"),
        Stage("train_priors", run_train_priors, inputs=("ingest", "extract_codes"),
              config_keys=("prior",), kind="driver", version=3, description="priors under Ray Train"),
        Stage("train_classifier", run_train_classifier, inputs=("ingest",),
              config_keys=("classifier",), version=2,
              description="filter + independent scorer classifiers on disjoint halves of the real images"),
        Stage("sample", run_sample, inputs=("ingest", "train_vq", "train_priors"),
              config_keys=("sample",), version=2, description="ancestral samples + grid (batches seeded by index)"),
        Stage("evaluate", run_evaluate,
              inputs=("ingest", "train_vq", "extract_codes", "train_priors", "train_classifier", "sample"),
              config_keys=("evaluate", "classifier"), version=3,
              description="NMSE, perplexity, bits/dim; rejection judged by the scorer: FID, CAS, PR, acceptance curve"),
        Stage("report", run_report, inputs=("train_vq", "train_priors", "sample", "evaluate"),
              version=4, description="report.md with the grids and curves"),
    ])
