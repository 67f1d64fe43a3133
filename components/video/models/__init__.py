"""Video action-recognition model zoo: one registry, one call contract.

    from components.video.models import build, names, spec
    model = build("r2plus1d_18", num_classes=10)
    logits = model(torch.randn(2, 3, 16, 112, 112))      # (B, C, T, H, W) -> (B, 10)
    emb = model.features(clip)                            # (B, model.feature_dim)
    spec("slowfast_r50_8x8").inputs                        # {"slow": InputSpec, "fast": InputSpec}

See ``registry.py`` for the contract and ``docs/video-models.md`` for the table of models.
"""
from components.video.models.registry import InputSpec, ModelSpec, build, count_params, names, spec

__all__ = ["InputSpec", "ModelSpec", "build", "count_params", "names", "spec"]
