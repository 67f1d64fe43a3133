"""Model registry under the artifact root: versions with lineage, metrics, config; champion.

    from pipelines.modelreg import ModelRegistry, decide_promotion
    reg = ModelRegistry("artifacts", "pcrec")
    v = reg.register(lineage={...}, metrics={...}, config={...})
    reg.promote(v.version, reason="first version")
"""
from pipelines.modelreg.policy import Decision, PromotionPolicy, decide_promotion
from pipelines.modelreg.registry import ModelRegistry, ModelVersion

__all__ = ["Decision", "ModelRegistry", "ModelVersion", "PromotionPolicy", "decide_promotion"]
