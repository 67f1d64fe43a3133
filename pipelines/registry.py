"""Names of the pipelines `recgen run` knows, and how to load them."""
from __future__ import annotations

import importlib

from components.errors import ConfigError

PIPELINES = {
    "pcrec": "pipelines.pcrec.dag",
    "video": "pipelines.video.dag",
    "vq": "pipelines.vq.dag",
}


def names() -> list[str]:
    return sorted(PIPELINES)


def get_pipeline(name: str):
    """The ``Pipeline`` object registered under ``name``."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline '{name}' — choose one of: {', '.join(names())}")
    module = importlib.import_module(PIPELINES[name])
    return module.PIPELINE
