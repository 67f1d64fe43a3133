"""VQ-VAE / VQ-VAE-2 shapes, decoding codes, learning on sklearn digits; rejection + PR metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from components.vq.data import to_model_input
from components.vq.metrics import prior_bits_per_dim, reconstruction_metrics
from components.vq.prior import CausalPrior, PriorSpec
from components.vq.rejection import precision_recall, reject
from components.vq.vqvae import HierarchicalVQVAE, VQVAESpec

torch.set_num_threads(1)


@pytest.mark.parametrize("levels,shapes", [(1, [(8, 8)]), (2, [(8, 8), (4, 4)]), (3, [(8, 8), (4, 4), (2, 2)])])
def test_levels_shapes_and_decode_codes(levels, shapes):
    torch.manual_seed(0)
    m = HierarchicalVQVAE(VQVAESpec(in_channels=1, hidden=16, res_channels=8, n_res=1, num_codes=16,
                                    code_dim=4, levels=levels)).eval()
    x = torch.rand(2, 1, 32, 32) - 0.5
    out = m(x)
    assert [tuple(c.shape[1:]) for c in out.codes] == shapes
    assert torch.allclose(m.decode_codes(out.codes), out.recon, atol=1e-5)
    # the bottom level is quantised from the decoded top: changing top codes changes bottom codes' input
    if levels > 1:
        assert len(m.context) == levels - 1


def test_image_decoder_uses_its_own_upsampling_of_the_top_codes():
    """As in the reference implementations: the context decoder only conditions the bottom
    encoder; the image decoder sees the bottom codes and a separate upsampling of the top codes."""
    torch.manual_seed(0)
    m = HierarchicalVQVAE(VQVAESpec(in_channels=1, hidden=16, res_channels=8, n_res=1, num_codes=16,
                                    code_dim=4, levels=2)).eval()
    codes = m.codes(torch.rand(2, 1, 32, 32) - 0.5)
    before = m.decode_codes(codes)
    with torch.no_grad():
        for p in m.context.parameters():
            p.add_(1.0)
    assert torch.equal(m.decode_codes(codes), before)          # decoding never runs the context path
    with torch.no_grad():
        for p in m.upsample.parameters():
            p.add_(1.0)
    assert not torch.allclose(m.decode_codes(codes), before)   # the upsampling path feeds the decoder


def test_bottom_downsample_one_for_28x28_images():
    from components.vq.build import code_shapes
    from pipelines.core.config import validate_config
    from pipelines.vq.config import VQConfig

    m = HierarchicalVQVAE(VQVAESpec(in_channels=1, hidden=16, res_channels=8, n_res=1, num_codes=16,
                                    code_dim=4, levels=2, downsample=1)).eval()
    x = torch.rand(2, 1, 28, 28) - 0.5
    out = m(x)
    assert out.recon.shape == x.shape
    assert [tuple(c.shape[1:]) for c in out.codes] == [(14, 14), (7, 7)] == code_shapes(28, 2, 1)
    with pytest.raises(ValueError, match="not divisible by 8"):
        code_shapes(28, 2, 2)
    with pytest.raises(Exception, match=r"data.image_size=28 must be divisible by 8 \(vq.downsample=2"):
        validate_config(VQConfig, {"data": {"image_size": 28}})
    assert validate_config(VQConfig, {"data": {"image_size": 28}, "vq": {"downsample": 1}}).vq.downsample == 1


@pytest.mark.parametrize("ema", [True, False])
def test_vqvae2_learns_digits(ema):
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    d = load_digits()
    imgs = (d.images[:256] / 16.0 * 255).astype(np.uint8)[..., None]
    x = to_model_input(imgs, 16)
    m = HierarchicalVQVAE(VQVAESpec(in_channels=1, hidden=32, res_channels=16, n_res=1, num_codes=32,
                                    code_dim=8, levels=2, ema=ema, restart_threshold=0.03))
    var = float(x.var())
    before = reconstruction_metrics(m, x, var)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    m.train()
    for step in range(40):
        xb = x[(step * 32) % 256:(step * 32) % 256 + 32]
        loss = m(xb).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = reconstruction_metrics(m, x, var)
    assert after["nmse"] < 0.6 * before["nmse"]
    assert after["codes_used_l0"] > 1 and after["perplexity_l0"] > 1


def test_prior_bits_per_dim_drops_with_training():
    torch.manual_seed(0)
    codes = torch.zeros(64, 4, 4, dtype=torch.long)
    codes[:, ::2] = 3                                   # a very predictable pattern
    prior = CausalPrior(PriorSpec(num_codes=8, shape=(4, 4), channels=8, layers=2))
    b0 = prior_bits_per_dim(prior, codes)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for _ in range(120):
        loss = prior.nll(codes)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert b0 > 2.0 and prior_bits_per_dim(prior, codes) < 0.5


def test_rejection_and_precision_recall():
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    intended = torch.tensor([0, 0, 1, 1])
    r = reject(probs, intended, threshold=0.5)
    assert r.keep.tolist() == [True, False, True, False]
    assert r.acceptance_rate == 0.5 and r.accuracy_before == 0.5 and r.accuracy_after == 1.0
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 2))
    p, rc = precision_recall(real, rng.normal(size=(200, 2)), k=3)
    assert p > 0.8 and rc > 0.8
    p2, rc2 = precision_recall(real, rng.normal(size=(200, 2)) * 0.05, k=3)   # collapsed samples
    assert p2 > 0.9 and rc2 < 0.3
    p3, _ = precision_recall(real, rng.normal(size=(200, 2)) + 10.0, k=3)      # off-manifold
    assert p3 == 0.0
