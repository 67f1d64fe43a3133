"""A small pipeline used to test the runner (not a mock: it runs through the real store and Ray)."""
from __future__ import annotations

import os
import time

import pandas as pd
from pydantic import Field

from pipelines.core.config import StageResources, StrictModel
from pipelines.core.stage import Pipeline, Stage


class Gen(StrictModel):
    n: int = Field(10, ge=1)
    sleep_s: float = 0.0
    fail: bool = False


class Scale(StrictModel):
    factor: float = 2.0


class ToyConfig(StrictModel):
    seed: int = 0
    gen: Gen = Gen()
    scale: Scale = Scale()
    resources: dict[str, StageResources] = {}


def run_gen(ctx):
    cfg = ctx.cfg.gen
    df = pd.DataFrame({"x": range(cfg.n), "pid": os.getpid()})
    ctx.out.write_table("numbers", df)
    if cfg.sleep_s:
        marker = os.environ.get("TOY_MARKER")
        if marker:
            open(marker, "w").write("writing")
        time.sleep(cfg.sleep_s)
    if cfg.fail:
        raise RuntimeError("gen failed on purpose")
    ctx.out.stats(n=cfg.n)


def run_scale(ctx):
    df = ctx.input("gen").df("numbers")
    df["y"] = df["x"] * ctx.cfg.scale.factor
    ctx.out.write_table("scaled", df)
    with open(ctx.out.path("note.txt"), "w") as f:
        f.write("ok")


def run_total(ctx):
    df = ctx.input("scale").df("scaled")
    ctx.out.write_table("total", pd.DataFrame({"sum": [df["y"].sum()]}))


def make(kind: str = "task") -> Pipeline:
    return Pipeline(name="toy", config_cls=ToyConfig, stages=[
        Stage("gen", run_gen, config_keys=("gen",), kind=kind),
        Stage("scale", run_scale, inputs=("gen",), config_keys=("scale",), kind=kind),
        Stage("total", run_total, inputs=("scale",), kind=kind),
    ])
