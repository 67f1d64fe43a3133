"""Priors: causal masks by autograd (both priors), no blind spot, cached sampling == full net."""
from __future__ import annotations

import pytest
import torch

from components.vq.prior import CausalPrior, PriorSpec
from components.vq.sampling import (ancestral_sample, prior_row_links, prior_row_logits,
                                    sample_prior, sample_prior_naive)
from components.vq.vqvae import HierarchicalVQVAE, VQVAESpec

torch.set_num_threads(1)

PIXELCNN = dict(num_codes=6, shape=(6, 6), channels=8, layers=5, n_classes=3, cond_codes=4)
SNAIL = dict(num_codes=6, shape=(4, 5), channels=8, layers=4, attn_every=2, heads=2,
             dropout=0.1, n_classes=3)


def _inputs(spec, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    H, W = spec.shape
    cc = torch.randint(0, spec.cond_codes, (n, H // 2, W // 2), generator=g) if spec.cond_codes else None
    lab = torch.randint(0, spec.n_classes, (n,), generator=g) if spec.n_classes else None
    return cc, lab


@pytest.mark.parametrize("kw", [PIXELCNN, SNAIL], ids=["gated_pixelcnn", "pixelsnail"])
def test_output_has_zero_gradient_wrt_current_and_later_inputs(kw):
    torch.manual_seed(0)
    spec = PriorSpec(**kw)
    prior = CausalPrior(spec).eval()
    H, W = spec.shape
    cc, lab = _inputs(spec, n=1)
    conds = prior.condition(cc, lab)
    for (i, j) in [(0, 0), (0, W - 1), (H // 2, W // 2), (H - 1, 0), (H - 1, W - 1)]:
        x = torch.randn(1, spec.channels, H, W, requires_grad=True)
        out = prior.forward_embedded(x, conds)[0, :, i, j].sum()
        (g,) = torch.autograd.grad(out, x)
        mag = g.abs().sum(1)[0]                       # (H, W)
        order = torch.arange(H * W).view(H, W)
        p = i * W + j
        assert mag[order >= p].max() == 0, f"position {(i, j)} sees itself or the future"
        if p > 0:
            # no blind spot: with enough layers every earlier position within reach contributes
            assert (mag[order < p] > 0).all(), f"blind spot before {(i, j)}:\n{mag}"


def test_pixelsnail_keys_see_the_input_and_the_mask_is_strict():
    """PixelSNAIL: keys/values are computed from [features, input, position]; a query attends to
    strictly earlier keys only, and the first position (no earlier key) gets no attention output."""
    from components.vq.prior import CausalSelfAttention

    torch.manual_seed(0)
    att = CausalSelfAttention(8, 2, (3, 4)).eval()
    h = torch.randn(1, 8, 3, 4)
    inp = torch.randn(1, 8, 3, 4, requires_grad=True)
    out, _ = att(h, inp)
    q = 1 * 4 + 2                                             # query at (1, 2)
    (g,) = torch.autograd.grad(out.flatten(2)[0, :, q].sum(), inp, retain_graph=True)
    mag = g.abs().sum(1).flatten()
    assert (mag[:q] > 0).all() and (mag[q:] == 0).all()     # earlier inputs only, not its own
    (g0,) = torch.autograd.grad(out.flatten(2)[0, :, 0].sum(), inp)
    assert (g0 == 0).all()
    assert torch.allclose(out[0, :, 0, 0], h[0, :, 0, 0] + att.out.bias)   # zero attention output


def test_pixelcnn_receptive_field_reaches_upper_right():
    """The classic blind spot is up-right of the pixel; the vertical stack must cover it."""
    torch.manual_seed(0)
    spec = PriorSpec(num_codes=4, shape=(4, 6), channels=8, layers=2)
    prior = CausalPrior(spec).eval()
    x = torch.randn(1, 8, 4, 6, requires_grad=True)
    (g,) = torch.autograd.grad(prior.forward_embedded(x)[0, :, 2, 2].sum(), x)
    assert g[0, :, 1, 3].abs().sum() > 0 and g[0, :, 1, 4].abs().sum() > 0


@pytest.mark.parametrize("kw", [PIXELCNN, SNAIL], ids=["gated_pixelcnn", "pixelsnail"])
def test_cached_row_logits_equal_full_forward(kw):
    torch.manual_seed(1)
    spec = PriorSpec(**kw)
    prior = CausalPrior(spec).eval()
    cc, lab = _inputs(spec, n=3)
    x = torch.randint(0, spec.num_codes, (3,) + spec.shape)
    full = prior(x, cc, lab)
    conds = prior.condition(cc, lab)
    caches = [None] * len(prior.attn)
    H, W = spec.shape
    for i in range(H):
        links = prior_row_links(prior, x, i, conds)
        for j in range(W):
            logits, kv = prior_row_logits(prior, x, i, j, conds, links, caches)
            assert torch.allclose(logits, full[:, :, i, j], atol=1e-5)
        caches = [(k, v) if c is None else (torch.cat([c[0], k], 2), torch.cat([c[1], v], 2))
                  for c, (k, v) in zip(caches, kv)]


@pytest.mark.parametrize("kw", [PIXELCNN, SNAIL], ids=["gated_pixelcnn", "pixelsnail"])
def test_sampling_is_deterministic_under_a_seed_and_matches_naive(kw):
    torch.manual_seed(2)
    spec = PriorSpec(**kw)
    prior = CausalPrior(spec)
    cc, lab = _inputs(spec, n=4)
    draw = lambda f, s: f(prior, 4, cc, lab, temperature=1.0, generator=torch.Generator().manual_seed(s))
    a, b, c = draw(sample_prior, 7), draw(sample_prior, 7), draw(sample_prior, 8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a, draw(sample_prior_naive, 7))
    assert prior.training                              # sampler restores the module's mode


def test_ancestral_sampling_shapes_and_determinism():
    torch.manual_seed(3)
    vq = HierarchicalVQVAE(VQVAESpec(in_channels=1, hidden=16, res_channels=8, n_res=1,
                                     num_codes=8, code_dim=4, levels=2))
    top = CausalPrior(PriorSpec(num_codes=8, shape=(2, 2), channels=8, layers=2, attn_every=2,
                                heads=2, n_classes=2))
    bottom = CausalPrior(PriorSpec(num_codes=8, shape=(4, 4), channels=8, layers=2, cond_codes=8,
                                   n_classes=2))
    labels = torch.tensor([0, 1, 1, 0, 1])
    x1, c1 = ancestral_sample(vq, [bottom, top], 5, labels, batch_size=2, seed=11)
    x2, c2 = ancestral_sample(vq, [bottom, top], 5, labels, batch_size=2, seed=11)
    assert x1.shape == (5, 1, 16, 16) and c1[0].shape == (5, 4, 4) and c1[1].shape == (5, 2, 2)
    assert torch.equal(x1, x2) and all(torch.equal(a, b) for a, b in zip(c1, c2))
    assert torch.allclose(x1, vq.decode_codes(c1))


def test_three_level_priors_and_sampling():
    from components.vq.build import build_priors, prior_losses

    torch.manual_seed(4)
    vq = HierarchicalVQVAE(VQVAESpec(in_channels=1, hidden=8, res_channels=4, n_res=1, num_codes=8,
                                     code_dim=4, levels=3))
    priors = build_priors(levels=3, num_codes=8, image_size=16, channels=8, layers=2, top_layers=2,
                          attn_every=1, heads=2, cond_res=1, n_classes=0)
    assert [p.spec.shape for p in priors] == [(4, 4), (2, 2), (1, 1)]
    assert [len(p.attn) for p in priors] == [0, 0, 2] and priors[0].spec.cond_codes == 8
    codes = vq.codes(torch.rand(3, 1, 16, 16) - 0.5)
    losses = prior_losses(priors, codes)
    assert len(losses) == 3 and all(torch.isfinite(l) for l in losses)
    x, c = ancestral_sample(vq, priors, 3, seed=1)
    assert x.shape == (3, 1, 16, 16) and [t.shape[1:] for t in c] == [(4, 4), (2, 2), (1, 1)]


@pytest.mark.parametrize("kw", [PIXELCNN, SNAIL], ids=["gated_pixelcnn", "pixelsnail"])
def test_fast_nll_equals_cross_entropy_of_the_full_forward(kw):
    """`CausalPrior.nll` (flat head + fused softmax cross-entropy) computes the same function as
    ``F.cross_entropy(prior(codes), codes)``: same value and same gradient for every weight."""
    import torch.nn.functional as F

    torch.manual_seed(5)
    spec = PriorSpec(**{**kw, "dropout": 0.0})
    prior = CausalPrior(spec)
    cc, lab = _inputs(spec, n=3)
    x = torch.randint(0, spec.num_codes, (3,) + spec.shape)
    ref = F.cross_entropy(prior(x, cc, lab), x)
    g_ref = torch.autograd.grad(ref, list(prior.parameters()))
    fast = prior.nll(x, cc, lab)
    g_fast = torch.autograd.grad(fast, list(prior.parameters()))
    assert torch.allclose(fast, ref, atol=1e-6)
    for (name, _), a, b in zip(prior.named_parameters(), g_fast, g_ref):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name


def test_code_nll_matches_cross_entropy_and_checks_shapes():
    import torch.nn.functional as F

    from components.vq.prior import code_nll

    torch.manual_seed(6)
    z = torch.randn(50, 17, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 17, (50,))
    (g1,) = torch.autograd.grad(3 * code_nll(z, t), z)
    (g2,) = torch.autograd.grad(3 * F.cross_entropy(z, t), z)
    assert torch.allclose(code_nll(z, t), F.cross_entropy(z, t)) and torch.allclose(g1, g2)
    with pytest.raises(ValueError, match="logits must be"):
        code_nll(z[None], t)
