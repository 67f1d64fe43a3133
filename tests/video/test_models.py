"""The video model zoo: every registered model builds, runs forward and backward on a tiny clip,
gives clip embeddings, and has the parameter count of its reference and of docs/video-models.md.
"""
from __future__ import annotations

import pathlib
import re

import pytest
import torch

from components.errors import ConfigError, InputError
from components.video.models import build, count_params, names, spec
from components.video.models.inception3d import googlenet_bn, i3d, inflate_state_dict
from components.video.models.motionnet import unsupervised_flow_losses, warp

REQUIRED = {"two_stream", "two_stream_conv", "two_stream_conv3d", "tsn_rgb", "tsn_flow", "tsn_rgbdiff", "hidden_two_stream", "c3d",
            "r3d_18", "r3d_34", "mc3_18", "r2plus1d_18", "r2plus1d_34", "t3d", "i3d", "i3d_r50", "s3d", "s3d_g",
            "slowfast_r50_4x16", "slowfast_r50_8x8", "x3d_xs", "x3d_s", "x3d_m", "x3d_l"}

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "video-models.md"


def _doc_params() -> dict[str, int]:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `([a-z0-9_]+)` \|[^|]*\|[^|]*\|[^|]*\| ([\d,]+) \|", line)
        if m:
            rows[m.group(1)] = int(m.group(2).replace(",", ""))
    return rows


def test_models_doc_prose_is_the_reports():
    """docs/video-models.md is written by ``components.video.models.report``: text edited only
    in the doc is lost at the next regeneration, so the doc's prose must be the report's."""
    from components.video.models import report

    text = DOC.read_text()
    assert text.startswith(report.HEADER), "docs/video-models.md header differs from report.HEADER: edit report.py"
    assert text.endswith(report.NOTES), "docs/video-models.md notes differ from report.NOTES: edit report.py"


def test_registry_lists_every_required_model():
    assert REQUIRED <= set(names())
    for n in names():
        s = spec(n)
        assert s.inputs and all(i.channels > 0 and i.frames > 0 and i.size > 0 for i in s.inputs.values())


@pytest.mark.parametrize("name", names())
def test_model_builds_runs_and_matches_its_table(name):
    torch.manual_seed(0)
    s = spec(name)
    full = build(name, s.ref_classes)
    n_params = count_params(full)
    assert n_params == _doc_params()[name], "docs/video-models.md is stale: rerun the report"
    if s.ref_params is not None:
        assert abs(n_params - s.ref_params) <= s.ref_params_atol, (n_params, s.ref_params)
    # forward + backward on a tiny clip (reduced depth/width only where the spec asks for it)
    model = full if not s.tiny_kwargs else build(name, s.ref_classes, **s.tiny_kwargs)
    del full
    x = s.example_input(2, tiny=True)
    if s.aux_loss:
        logits, aux = model.forward_train(x)
        assert set(aux) == {"photometric", "smoothness", "ssim"} and all(torch.isfinite(v) for v in aux.values())
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])) + sum(aux.values())
    else:
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    assert logits.shape == (2, s.ref_classes) and torch.isfinite(logits).all()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "some parameter is not reached by the loss"
    assert sum(float(g.abs().sum()) for g in grads) > 0
    model.eval()
    with torch.no_grad():
        emb = model.features(x)
        assert emb.shape == (2, model.feature_dim)
        # eval-mode forward is the classifier applied to the embedding (call contract)
        assert model(x).shape == (2, s.ref_classes)


def test_width_and_channel_options_for_small_budgets():
    torch.manual_seed(0)
    for name in ("r3d_18", "mc3_18", "r2plus1d_18"):
        m = build(name, 4, width=8, in_channels=2)           # e.g. a 2-channel flow clip
        assert m(torch.randn(2, 2, 4, 32, 32)).shape == (2, 4)
        assert count_params(m) < count_params(build(name, 4)) / 30
    assert build("x3d_xs", 4, width_factor=1.0)(torch.randn(2, 3, 2, 32, 32)).shape == (2, 4)


def test_x3d_expansions_share_weights_shapes_and_l_is_deeper():
    counts = {n: count_params(build(n, 400)) for n in ("x3d_xs", "x3d_s", "x3d_m", "x3d_l")}
    assert counts["x3d_xs"] == counts["x3d_s"] == counts["x3d_m"] < counts["x3d_l"]
    depths = [len(stage) for stage in build("x3d_m", 400).layers]
    assert depths == [3, 5, 11, 7]              # ceil(2.2 x (1, 2, 5, 3))


def test_inflated_i3d_on_a_constant_clip_equals_the_2d_network():
    torch.manual_seed(0)
    net2d = googlenet_bn(num_classes=7).eval()
    with torch.no_grad():                       # non-trivial BN statistics
        for m in net2d.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.1, 0.1)
    net3d = i3d(num_classes=7, temporal_padding="replicate").eval()
    net3d.load_state_dict(inflate_state_dict(net2d.state_dict(), net3d), strict=True)
    frame = torch.randn(2, 3, 64, 64)
    clip = frame.unsqueeze(2).repeat(1, 1, 8, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(net3d(clip), net2d(frame), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(net3d.features(clip), net2d.features(frame), rtol=1e-3, atol=1e-3)
    with pytest.raises(InputError, match="cannot inflate|has no tensor"):
        inflate_state_dict(googlenet_bn(num_classes=3).state_dict(), net3d)


def test_slowfast_single_clip_equals_explicit_pathways_and_checks_alpha():
    m = build("slowfast_r50_8x8", 5).eval()
    fast = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        a = m(fast)
        b = m({"slow": fast[:, :, ::4], "fast": fast})
        c = m((fast[:, :, ::4], fast))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    with pytest.raises(ValueError, match="alpha"):
        m({"slow": fast[:, :, :1], "fast": fast})


def test_two_stream_inputs_and_fusions():
    torch.manual_seed(0)
    for name in ("two_stream", "two_stream_conv"):
        m = build(name, 4, flow_frames=3, width=16).eval()
        rgb, flow = torch.randn(2, 3, 32, 32), torch.randn(2, 2, 3, 32, 32)
        stacked = flow.transpose(1, 2).reshape(2, 6, 32, 32)       # u1 v1 u2 v2 u3 v3
        with torch.no_grad():
            a = m({"rgb": rgb, "flow": flow})
            b = m((rgb, stacked))
            clip = torch.stack([torch.zeros_like(rgb), rgb, torch.zeros_like(rgb)], 2)
            c = m({"rgb": clip, "flow": stacked})                   # middle frame of a clip
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)
        with pytest.raises(InputError):
            m({"rgb": rgb})
    for w in ((1.0, 1.0), (1.0, 1.5)):
        late = build("two_stream", 4, flow_frames=3, width=16, late_weights=w).eval()
        with torch.no_grad():                   # late fusion = weighted mean of the two streams' softmax scores
            f = late.features({"rgb": rgb, "flow": stacked})
            c = late.streams.spatial.feature_dim
            s, t = late.streams.head_spatial(f[:, :c]), late.streams.head_temporal(f[:, c:])
            fused = (w[0] * s.softmax(1) + w[1] * t.softmax(1)) / sum(w)
            out = late({"rgb": rgb, "flow": stacked})
            torch.testing.assert_close(out.softmax(1), fused)
            torch.testing.assert_close(out.exp(), fused)      # log-probabilities: softmax is the identity on them
    # hand-made logits: softmax averaging differs from logit averaging
    from components.video.models.twostream import late_fusion
    a, b = torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    p = late_fusion(a, b).exp()
    sa, sb = 1 / (1 + torch.exp(torch.tensor(-4.0))), 1 / (1 + torch.exp(torch.tensor(1.0)))
    torch.testing.assert_close(p[0, 0], (sa + sb) / 2)
    assert p[0, 0] > 0.5 and torch.softmax((a + b) / 2, 1)[0, 0] > p[0, 0]


def test_two_stream_3d_conv_fusion_uses_time():
    torch.manual_seed(0)
    m = build("two_stream_conv3d", 4, flow_frames=2, steps=3, width=16).eval()
    rgb, flow = torch.randn(2, 3, 3, 32, 32), torch.randn(2, 2, 6, 32, 32)
    with torch.no_grad():
        fmap = m.fused_map({"rgb": rgb, "flow": flow})
        assert fmap.shape[:3] == (2, m.feature_dim, 2)        # 3 steps -> 3x3x3 pool, stride 2 -> 2
        out = m({"rgb": rgb, "flow": flow})
        assert out.shape == (2, 4)
        # the fusion sees the order of the steps: reversing time changes the output
        rev = m({"rgb": rgb.flip(2), "flow": flow.view(2, 2, 3, 2, 32, 32).flip(2).reshape(2, 2, 6, 32, 32)})
        assert not torch.allclose(out, rev)
        # stack t of the temporal stream holds fields t*L .. t*L+L-1 as u1 v1 u2 v2
        stacks = flow.view(2, 2, 3, 2, 32, 32).permute(0, 2, 3, 1, 4, 5).reshape(6, 4, 32, 32)
        torch.testing.assert_close(stacks[1], torch.stack([flow[0, 0, 2], flow[0, 1, 2], flow[0, 0, 3], flow[0, 1, 3]]))
    with pytest.raises(InputError, match="needs rgb"):
        m({"rgb": rgb, "flow": flow[:, :, :4]})


def test_tsn_consensus_is_order_free_and_modalities_shape_inputs():
    torch.manual_seed(0)
    m = build("tsn_rgb", 5, backbone="resnet18", width=16).eval()
    x = torch.randn(2, 3, 3, 32, 32)                                # K=3 segments, 1 frame each
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(x[:, :, [2, 0, 1]]))     # average over segments
        torch.testing.assert_close(m(x), m.head(m.features(x)))
    d = build("tsn_rgbdiff", 5, backbone="resnet18", width=16, new_length=2)
    assert d.snippets(torch.randn(1, 3, 9, 32, 32)).shape == (3, 6, 32, 32)   # 2 diffs x RGB
    still = torch.ones(1, 3, 9, 32, 32)
    assert float(d.snippets(still).abs().max()) == 0.0              # no motion -> zero difference
    f = build("tsn_flow", 5, backbone="resnet18", width=16, new_length=2)
    assert f.snippets(torch.randn(1, 2, 6, 32, 32)).shape == (3, 4, 32, 32)
    with pytest.raises(InputError, match="frames"):
        m(torch.randn(1, 3, 4, 32, 32))
    mx = build("tsn_rgb", 5, backbone="resnet18", width=16, consensus="max").eval()
    with torch.no_grad():
        per_seg = mx.head(mx.segment_features(x))
        torch.testing.assert_close(mx(x), per_seg.amax(1))


def test_motionnet_losses_prefer_the_true_flow():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 24, 24)
    nxt = torch.roll(img, shifts=2, dims=3)      # content moves 2 px to the right
    true = torch.zeros(1, 2, 24, 24)
    true[:, 0] = 2.0
    rec = warp(nxt, true)
    torch.testing.assert_close(rec[..., 2:-2], img[..., 2:-2])
    frames = torch.stack([img, nxt], 2)          # (1, 3, 2, H, W)
    good = unsupervised_flow_losses(frames, [true.unsqueeze(2)])
    zero = unsupervised_flow_losses(frames, [torch.zeros(1, 2, 1, 24, 24)])
    assert good["photometric"] < zero["photometric"] and good["ssim"] < zero["ssim"]
    # a constant flow is smooth: every difference is 0, the penalty is its floor 2 x 2 x (eps^2)^0.3
    torch.testing.assert_close(good["smoothness"], torch.tensor(4 * (1e-6) ** 0.3))


def test_models_pickle_with_their_spec(tmp_path):
    m = build("x3d_xs", 3)
    assert m.spec.name == "x3d_xs"
    torch.save(m, tmp_path / "m.pt")                       # e.g. shipped to a Ray worker
    m2 = torch.load(tmp_path / "m.pt", weights_only=False)
    assert m2.spec.inputs == m.spec.inputs and count_params(m2) == count_params(m)


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="bad builder arguments"):
        build("r3d_18", 10, no_such_option=1)
    with pytest.raises(ConfigError, match="unknown video model"):
        build("r4d_18", 10)
    with pytest.raises(ConfigError, match="num_classes"):
        build("r3d_18", 0)
    with pytest.raises(InputError, match=r"\(B, C, T, H, W\)"):
        build("mc3_18", 3)(torch.randn(3, 16, 32, 32))
