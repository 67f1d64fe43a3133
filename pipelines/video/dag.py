"""The ``video`` pipeline: ingest -> flow -> pretrain -> train -> evaluate, embed."""
from __future__ import annotations

from pipelines.core.stage import Pipeline, Stage
from pipelines.video.config import VideoConfig
from pipelines.video.stages.embed import run_embed
from pipelines.video.stages.evaluate import run_evaluate
from pipelines.video.stages.flow import run_flow
from pipelines.video.stages.ingest import external_inputs, run_ingest
from pipelines.video.stages.pretrain import run_pretrain
from pipelines.video.stages.train import run_train

_TRAIN_KEYS = ("clip", "decode", "model", "train", "evaluate")

PIPELINE = Pipeline(
    name="video",
    config_cls=VideoConfig,
    description="Action recognition: clip index, optical flow cache, Ray Train, multi-view evaluation, embeddings",
    stages=[
        Stage("ingest", run_ingest, config_keys=("data",), external_inputs=external_inputs,
              description="dataset layout -> clip index (+ rejects); renders synthetic sources"),
        Stage("flow", run_flow, inputs=("ingest",), config_keys=("flow", "decode"),
              description="optical flow, clipped and quantised to uint8, cached per clip"),
        Stage("pretrain", run_pretrain, inputs=("ingest", "flow"),
              config_keys=_TRAIN_KEYS + ("flow", "motionnet", "transfer"), kind="driver",
              description="hidden_two_stream: MotionNet-only unsupervised pre-training; t3d: 2D->3D "
                          "supervision transfer; nothing for other models"),
        Stage("train", run_train, inputs=("ingest", "flow", "pretrain"), config_keys=_TRAIN_KEYS + ("flow",),
              kind="driver",
              description="Ray Train TorchTrainer, checkpoint every epoch, resume"),
        Stage("evaluate", run_evaluate, inputs=("ingest", "flow", "train"), config_keys=_TRAIN_KEYS + ("flow",),
              description="top-1/top-5, multi-view, confusion matrix, report.md"),
        Stage("embed", run_embed, inputs=("ingest", "flow", "train"), config_keys=_TRAIN_KEYS + ("flow", "embed"),
              description="video_id, embedding Parquet for item content features"),
    ],
)
