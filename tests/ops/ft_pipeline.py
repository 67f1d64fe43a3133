"""A small two-stage pipeline whose second stage trains under Ray Train (fault-tolerance tests).

Not a mock: it runs through the real runner, artifact store, Ray Train V2 controller and
worker processes. Each epoch is deterministic given (seed, epoch), so a run resumed from a
checkpoint must end with exactly the weights of an uninterrupted run.

``python -m tests.ops.ft_pipeline ROOT EVENTS_DIR`` runs it as a driver process (embedded Ray).
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from pipelines.core import train as rt
from pipelines.core.config import StageResources, StrictModel
from pipelines.core.stage import Pipeline, Stage


class DataCfg(StrictModel):
    n: int = 256


class FitCfg(StrictModel):
    epochs: int = 5
    steps: int = 10
    pause_s: float = Field(0.5, description="per epoch, so a test can strike mid-epoch")
    events: str = ""
    trainer: rt.TrainerConfig = rt.TrainerConfig(num_workers=1, max_failures=2)


class FTConfig(StrictModel):
    seed: int = 0
    data: DataCfg = DataCfg()
    fit: FitCfg = FitCfg()
    resources: dict[str, StageResources] = {}


def run_data(ctx):
    rng = np.random.default_rng(ctx.seed)
    x = rng.normal(size=(ctx.cfg.data.n, 4)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32")
    ctx.out.write_table("xy", pd.DataFrame({"x": list(x), "y": y}))


def _event(path: str, **kv) -> None:
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "t": time.time(), **kv}) + "\n")


def loop(c: dict) -> None:
    torch.set_num_threads(1)
    x, y = torch.tensor(np.stack(c["x"])), torch.tensor(c["y"]).unsqueeze(1)
    torch.manual_seed(c["seed"])
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    start, state = 0, rt.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"] + 1
    _event(c["events"], kind="start", start_epoch=start)
    for epoch in range(start, c["epochs"]):
        _event(c["events"], kind="epoch", epoch=epoch)
        g = torch.Generator().manual_seed(c["seed"] * 1000 + epoch)
        for step in range(c["steps"]):
            idx = torch.randint(0, len(x), (32,), generator=g)
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step == c["steps"] // 2:
                time.sleep(c["pause_s"])  # the middle of the epoch
        rt.report({"epoch": epoch, "loss": float(loss.detach()), "start_epoch": start},
                  {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch})
        _event(c["events"], kind="checkpoint", epoch=epoch)


def run_fit(ctx):
    cfg = ctx.cfg.fit
    xy = ctx.input("data").df("xy")
    conf = {"x": [np.asarray(v, dtype="float32") for v in xy.x], "y": xy.y.astype("float32").tolist(),
            "seed": ctx.seed, "epochs": cfg.epochs, "steps": cfg.steps, "pause_s": cfg.pause_s,
            "events": cfg.events}
    result = rt.fit(ctx, loop, conf, cfg.trainer, name="fit")
    state = rt.final_state(result)
    w = state["model"]["weight"].numpy().ravel().tolist() + state["model"]["bias"].numpy().tolist()
    ctx.out.write_table("weights", pd.DataFrame({"w": w}))
    ctx.out.stats(final_epoch=int(result.metrics["epoch"]), start_epoch=int(result.metrics["start_epoch"]))


PIPELINE = Pipeline("ft", FTConfig, [
    Stage("data", run_data, config_keys=("data",)),
    Stage("fit", run_fit, inputs=("data",), config_keys=("fit",), kind="driver"),
])


def config(events: str = "", **fit) -> FTConfig:
    return FTConfig(fit=FitCfg(events=events, **fit))


if __name__ == "__main__":  # a driver process: python -m tests.ops.ft_pipeline ROOT EVENTS
    from pipelines.core.ray_env import init_ray
    from pipelines.core.runner import run_pipeline

    init_ray(None, num_cpus=2)  # joins $RAY_ADDRESS when set
    run_pipeline(PIPELINE, config(sys.argv[2]), sys.argv[1])
