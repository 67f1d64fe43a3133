"""Config of `recgen retrain` (configs/retrain/*.yaml)."""
from __future__ import annotations

from pydantic import Field

from pipelines.core.config import StrictModel
from pipelines.modelreg.policy import PromotionPolicy


class PartitionSource(StrictModel):
    """Where new interaction partitions arrive: one file each, names sort in time order."""

    dir: str = Field(..., description="folder the partitions land in")
    pattern: str = Field("*.inter", description="glob of partition files inside dir")


class RetrainConfig(StrictModel):
    model: str = Field("pcrec", description="registry name of the model")
    pipeline: str = Field("pcrec", description="pipeline to run (`recgen stages` lists them)")
    base_config: str = Field(..., description="the pipeline's YAML config")
    sets: list[str] = Field(default_factory=list, description="extra KEY=VALUE overrides of it")
    data_key: str = Field("data.path", description="config key that receives the snapshot file")
    partitions: PartitionSource
    warm_start: bool = Field(True, description="fine-tune from the champion's factors")
    candidate_method: str = Field("pretrain_init",
                                  description="finetune method registered when there is no champion "
                                              "to warm-start from (or warm_start is off)")
    protocol: str = Field("full", description="evaluate protocol whose metrics are registered")
    policy: PromotionPolicy = PromotionPolicy()
