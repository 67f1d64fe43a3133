"""EMA statistics under torch.distributed (gloo, 2 processes): all-reduced counts and sums make
every replica's codebook equal to a single process's update on the concatenated batch."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from components.vq.quantizer import VectorQuantizer


def _make():
    torch.manual_seed(0)
    return VectorQuantizer(num_codes=8, dim=3, ema=True, decay=0.9)


def _batch():
    return torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(5))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        q = _make().train()
        q(_batch()[rank * 2:(rank + 1) * 2])
        torch.save({"emb": q.embedding, "count": q.ema_count}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_ema_statistics_are_all_reduced(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "q")
    mp.start_processes(_worker, args=(2, port, out), nprocs=2, join=True, start_method="spawn")
    ref = _make().train()
    ref(_batch())
    for r in range(2):
        got = torch.load(f"{out}.{r}")
        assert torch.allclose(got["emb"], ref.embedding, atol=1e-6)
        assert torch.allclose(got["count"], ref.ema_count, atol=1e-6)
