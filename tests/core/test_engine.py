"""The training engine's pieces that need no Ray: DataParallel keeps the model's own API."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from pipelines.core.train import DataParallel, _Methods, unwrap


class Aux(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.extra = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x)

    def forward_train(self, x):
        return self.lin(x), {"aux": self.extra(x).pow(2).mean()}

    def features(self, x):
        return x * 2


@pytest.fixture
def one_rank_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_forward_train_runs_through_ddp_and_its_gradients_flow(one_rank_group):
    model = Aux()
    ddp = DataParallel(_Methods(model))
    assert hasattr(ddp, "forward_train")                   # the check train_epoch makes
    logits, aux = ddp.forward_train(torch.ones(4, 3))
    (logits.sum() + aux["aux"]).backward()
    assert model.extra.weight.grad is not None and model.extra.weight.grad.abs().sum() > 0
    assert torch.equal(ddp.features(torch.ones(1, 3)), torch.full((1, 3), 2.0))   # plain methods forwarded
    assert unwrap(ddp) is model and set(unwrap(ddp).state_dict()) == {"lin.weight", "lin.bias",
                                                                        "extra.weight", "extra.bias"}
    assert torch.equal(ddp(torch.ones(1, 3)), model(torch.ones(1, 3)))


def test_unwrap_of_a_plain_model_is_itself():
    m = Aux()
    assert unwrap(m) is m
