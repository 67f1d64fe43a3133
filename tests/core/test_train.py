"""Ray Train glue: checkpoints every epoch, resume after a restart with the same storage."""
from __future__ import annotations

import pytest
import torch

from pipelines.core import train as rt
from pipelines.core.stage import StageContext


def _loop(config: dict) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    start = 0
    state = rt.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"] + 1
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    for epoch in range(start, config["epochs"]):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rt.report({"epoch": epoch, "loss": float(loss), "started_at": start},
                  {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch})


@pytest.mark.parametrize("workers", [0, 1])
def test_fit_checkpoints_and_resumes(ray_local, tmp_path, workers):
    ctx = StageContext(pipeline="t", stage="train", cfg=None, inputs={}, out=None,
                       scratch_dir=str(tmp_path / "scratch"), fingerprint="f" * 64)
    cfg = rt.TrainerConfig(num_workers=workers, max_failures=0)
    r1 = rt.fit(ctx, _loop, {"epochs": 3}, cfg)
    assert r1.metrics["epoch"] == 2 and r1.metrics["started_at"] == 0
    s1 = rt.final_state(r1)
    assert s1["epoch"] == 2
    # Same storage + name and more epochs: the run continues from epoch 3, not from scratch.
    r2 = rt.fit(ctx, _loop, {"epochs": 5}, cfg)
    assert r2.metrics["started_at"] == 3 and r2.metrics["epoch"] == 4
