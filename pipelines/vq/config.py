"""Typed config of the ``vq`` pipeline (``recgen run vq --set model=vqvae2``).

Defaults are a small CPU demo on Fashion-MNIST (Debian package ``dataset-fashion-mnist``). The
paper's CIFAR-10 VQ-VAE is ``vq.hidden=256 vq.res_channels=256 vq.num_codes=512``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pipelines.core.config import StageResources, StrictModel, path_field
from pipelines.core.fanout import FanoutConfig, fanout_sized
from pipelines.core.train import TrainerConfig


class DataConfig(StrictModel):
    """Image source: a folder of idx(.gz) files, an .npz, or one sub-folder per class."""

    path: str = path_field("/usr/share/datasets/fashion-mnist", kind="any", description="file or folder")
    format: Literal["auto", "idx", "npz", "folder"] = Field("auto", description="auto (from the path), idx, npz or folder")
    image_size: int = Field(32, ge=8, description="images are zero-padded (or resized) to this square")
    max_train: int | None = Field(12000, ge=1, description="random subset of the train split")
    max_test: int | None = Field(2000, ge=1, description="random subset of the test split")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="held out when the source has no test split")


class VQModelConfig(StrictModel):
    """Encoder/decoder widths and the quantiser. ``levels`` overrides the model's default."""

    hidden: int = Field(64, ge=4, description="encoder/decoder width (paper: 256)")
    res_channels: int = Field(32, ge=2, description="residual block width (paper: 256)")
    n_res: int = Field(2, ge=0, description="residual blocks per encoder/decoder")
    num_codes: int = Field(512, ge=2, description="K")
    code_dim: int = Field(32, ge=1, description="D")
    levels: int | None = Field(None, ge=1, le=3, description="None: 1 for vqvae, 2 for vqvae2; 3 = third level")
    downsample: int = Field(2, ge=1, le=4, description="stride-2 convolutions before the bottom codes: 2 = 1/4 resolution (papers), 1 = 1/2 (small images)")
    ema: bool = Field(True, description="EMA codebook updates (False: codebook loss)")
    decay: float = Field(0.99, gt=0, lt=1, description="EMA decay of the codebook statistics")
    beta: float = Field(0.25, ge=0, description="commitment loss weight")
    restart_threshold: float = Field(0.0, ge=0, description="dead-code restart (0 = off); 1.0 = uniform usage")
    data_init: bool = Field(False, description="codebook from the first batch's encoder outputs")


class _Steps(StrictModel):
    @model_validator(mode="after")
    def _one_step_rule(self):
        if getattr(self, "steps_per_epoch", None) and getattr(self, "max_steps_per_epoch", None):
            raise ValueError("set steps_per_epoch or max_steps_per_epoch, not both")
        return self


class VQTrainConfig(_Steps):
    threads: int = Field(1, ge=1, description="torch threads per worker")
    epochs: int = Field(3, ge=1, description="VQ model training epochs")
    batch_size: int = Field(64, ge=1, description="images per step and worker")
    lr: float = Field(2e-3, gt=0, description="Adam learning rate")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (None: the whole training set)")
    steps_per_epoch: int | None = Field(None, ge=1, description="exactly this many steps per epoch, cycling reshuffled passes when one pass is shorter (small data sets); excludes max_steps_per_epoch")
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: decay to lr_min_factor*lr over all epochs")
    lr_min_factor: float = Field(0.05, ge=0, le=1, description="final learning rate of the cosine schedule, as a share of lr")
    val_images: int = Field(0, ge=0, description="training images held out for a per-epoch validation NMSE (0: none)")
    patience: int | None = Field(None, ge=1, description="stop after this many epochs without a better validation NMSE")
    trainer: TrainerConfig = TrainerConfig()


class PriorConfig(_Steps):
    """Top prior: gated PixelCNN + causal attention (PixelSNAIL style); lower levels: gated PixelCNN
    conditioned on the codes above."""

    channels: int = Field(64, ge=4, description="width of the prior networks")
    layers: int = Field(6, ge=1, description="gated layers of the lower-level priors")
    top_layers: int = Field(4, ge=1, description="gated layers of the top prior")
    kernel: int = Field(3, ge=3, description="gated convolution kernel size")
    attn_every: int = Field(2, ge=0, description="attention after every n top-prior layers (0 = none)")
    heads: int = Field(4, ge=1, description="attention heads of the top prior")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout on attention weights and residual blocks")
    cond_res: int = Field(2, ge=0, description="residual blocks of the conditioning stack")
    class_conditional: bool = Field(True, description="condition the priors on the class label")
    epochs: int = Field(6, ge=1, description="prior training epochs")
    batch_size: int = Field(64, ge=1, description="code maps per step and worker")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (None: all training code maps)")
    steps_per_epoch: int | None = Field(None, ge=1, description="exactly this many steps per epoch, cycling reshuffled passes when one pass is shorter (small data sets); excludes max_steps_per_epoch")
    lr: float = Field(2e-3, gt=0, description="Adam learning rate")
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: decay to lr_min_factor*lr over all epochs")
    lr_min_factor: float = Field(0.05, ge=0, le=1, description="final learning rate of the cosine schedule, as a share of lr")
    val_maps: int = Field(0, ge=0, description="training code maps held out for per-epoch validation bits, the "
                          "basis of patience and of the best epoch (0: none; the test codes are only reported)")
    patience: int | None = Field(None, ge=1, description="stop after this many epochs without better validation "
                                 "bits (needs val_maps > 0)")
    threads: int = Field(1, ge=1, description="torch threads per worker")
    trainer: TrainerConfig = TrainerConfig()

    @model_validator(mode="after")
    def _patience_on_validation(self):
        if self.patience and not self.val_maps:
            raise ValueError("prior.patience needs prior.val_maps > 0: early stopping decides on held-out "
                             "training maps, never on the test codes")
        return self


class ClassifierConfig(StrictModel):
    width: int = Field(32, ge=4, description="channels of the small rejection classifier")
    epochs: int = Field(2, ge=1, description="classifier training epochs")
    batch_size: int = Field(128, ge=1, description="images per step")
    lr: float = Field(2e-3, gt=0, description="Adam learning rate")


class SampleConfig(StrictModel):
    per_class: int = Field(20, ge=1, description="samples per class (class-conditional priors)")
    n: int = Field(200, ge=1, description="samples when the priors are unconditional")
    temperature: float = Field(1.0, ge=0, description="softmax temperature of the priors (1: unchanged)")
    batch_size: int = Field(100, ge=1, description="samples drawn per batch (each batch seeded by its index)")
    fanout: FanoutConfig = fanout_sized(1, "batch of sample.batch_size samples")


class ExtractCodesConfig(StrictModel):
    """extract_codes stage: only its fan-out (the codes depend on the model and the images)."""

    fanout: FanoutConfig = fanout_sized(8, "block of 512 images")


class EvaluateConfig(StrictModel):
    threshold: float = Field(0.8, ge=0, le=1, description="rejection: keep p(intended class) >= threshold")
    k: int = Field(3, ge=1, description="k of the k-NN precision / recall")
    max_real: int = Field(1000, ge=10, description="real test images for FID and precision / recall")
    curve_thresholds: list[float] = Field([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99],
                                          description="thresholds of the acceptance-rate curve")


class VQConfig(StrictModel):
    seed: int = Field(0, description="global seed (subsets, initialisation, sampling)")
    model: Literal["vqvae", "vqvae2"] = Field("vqvae2", description="vqvae (one level) or vqvae2 (two levels)")
    data: DataConfig = DataConfig()
    vq: VQModelConfig = VQModelConfig()
    train: VQTrainConfig = VQTrainConfig()
    prior: PriorConfig = PriorConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    sample: SampleConfig = SampleConfig()
    extract_codes: ExtractCodesConfig = ExtractCodesConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    resources: dict[str, StageResources] = Field({}, description="Ray resources per stage name, e.g. {ingest: {num_cpus: 2}}")

    @property
    def levels(self) -> int:
        return self.vq.levels or (1 if self.model == "vqvae" else 2)

    @model_validator(mode="after")
    def _grid_fits(self):
        f = 2 ** (self.vq.downsample + self.levels - 1)
        if self.data.image_size % f:
            raise ValueError(f"data.image_size={self.data.image_size} must be divisible by {f} "
                             f"(vq.downsample={self.vq.downsample}, {self.levels} levels): the top code "
                             f"map is image_size / {f}; pick another data.image_size or vq.downsample")
        return self
