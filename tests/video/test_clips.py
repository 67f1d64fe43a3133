import numpy as np
import pandas as pd
import pytest
import torch

from components.errors import ConfigError
from components.video.clips import ClipDataset, plan_inputs
from components.video.flow import quantize_flow
from components.video.index import build_index, scan_folder
from components.video.models.registry import InputSpec


@pytest.fixture(scope="module")
def index(motion_root):
    idx, rej = build_index(scan_folder(motion_root))
    assert rej.empty
    return idx


def test_clip_and_slowfast_shapes(index):
    plans = plan_inputs({"slow": InputSpec(3, 8, 224), "fast": InputSpec(3, 32, 224)}, frames=8)
    assert [(p.name, p.steps) for p in plans] == [("slow", 2), ("fast", 8)]
    ds = ClipDataset(index, plans, train=True, stride=1, size=24, resize=28)
    x, y = ds[0]
    assert x["slow"].shape == (3, 2, 24, 24) and x["fast"].shape == (3, 8, 24, 24) and y == 0
    # slow = every 4th fast frame (same crop, same window)
    assert torch.allclose(x["slow"], x["fast"][:, ::4])
    ev = ClipDataset(index, plans, train=False, stride=1, size=24, resize=28, temporal_views=2, spatial_views=3)
    xe, _ = ev[0]
    assert xe["fast"].shape == (6, 3, 8, 24, 24)
    with pytest.raises(ConfigError):
        plan_inputs({"slow": InputSpec(3, 8, 224), "fast": InputSpec(3, 32, 224)}, frames=6)


def test_train_randomness_is_seeded_per_epoch(index):
    plans = plan_inputs({"rgb": InputSpec(3, 4, 112)}, frames=4)
    ds = ClipDataset(index, plans, train=True, size=24, resize=32, seed=1)
    a = ds[3][0]["rgb"]
    assert torch.equal(a, ds[3][0]["rgb"])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[3][0]["rgb"])


def test_flow_stack_channels_are_interleaved_u_v(index, tmp_path):
    row = index.iloc[0]
    n = int(row["num_frames"])
    # a fake cached flow whose u = frame index / 2 and v = -frame index / 2
    flow = np.zeros((n - 1, 32, 32, 2), np.float32)
    flow[..., 0] = np.arange(n - 1)[:, None, None] / 2
    flow[..., 1] = -np.arange(n - 1)[:, None, None] / 2
    path = tmp_path / "f.npy"
    np.save(path, quantize_flow(flow))
    plans = plan_inputs({"rgb": InputSpec(3, 1, 224, layout="BCHW"),
                         "flow": InputSpec(6, 3, 224, layout="BCHW", modality="flow")})
    ds = ClipDataset(index.iloc[:1], plans, train=False, size=32, resize=32, flow_files={row["video_id"]: str(path)})
    x, _ = ds[0]
    f = x["flow"][0] * 20                                # [6, 32, 32] back to pixels
    centre = (n - 1) // 2 - 1                            # window centre minus stack // 2
    expect = [centre / 2, -centre / 2, (centre + 1) / 2, -(centre + 1) / 2, (centre + 2) / 2, -(centre + 2) / 2]
    assert np.allclose(f[:, 0, 0].numpy(), expect, atol=0.1)
    assert x["rgb"].shape == (1, 3, 32, 32)


def test_tsn_segments_and_on_the_fly_flow(index):
    plans = plan_inputs({"flow": InputSpec(4, 3, 224, modality="flow"), "d": InputSpec(6, 3, 224, modality="rgbdiff")})
    ds = ClipDataset(index, plans, train=True, size=24, resize=28, sampling="tsn", flow_method="dis")
    x, _ = ds[5]
    assert x["flow"].shape == (4, 3, 24, 24) and x["d"].shape == (6, 3, 24, 24)
    assert x["flow"].abs().max() > 0 and x["flow"].abs().max() <= 1


def test_tsn_time_stacked_snippets(index):
    # the zoo's TSN flow input: (2, K * L, H, W), L consecutive flow fields per segment
    plans = plan_inputs({"flow": InputSpec(2, 15, 224, modality="flow")}, segments=3)
    assert [(p.steps, p.stack, p.stack_axis) for p in plans] == [(3, 5, "time")]
    ds = ClipDataset(index, plans, train=False, size=24, resize=28, sampling="tsn", flow_method="farneback")
    x, _ = ds[0]
    assert x["flow"].shape == (1, 2, 15, 24, 24)
