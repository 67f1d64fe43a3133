"""Margin-based losses: hand-computed values, derivatives vs autograd, properties checked numerically."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from components.errors import ConfigError
from components.losses import get_loss, get_training_loss, loss_names, loss_params, pairwise_loss

V = [-2.0, -1.0, 0.0, 0.5, 1.0, 2.0]
E = math.e
T = math.tanh

# Hand-computed from the LossFunctions.jl definitions at the default parameters.
EXPECTED = {
    "zero_one": [1, 1, 0, 0, 0, 0],
    "perceptron": [2, 1, 0, 0, 0, 0],
    "l1_hinge": [3, 2, 1, 0.5, 0, 0],
    # gamma = 1: v >= 0 -> 0.5 (1-v)^2, else 0.5 - v
    "smoothed_l1_hinge": [2.5, 1.5, 0.5, 0.125, 0, 0],
    # v >= -1 -> max(0, 1-v)^2, else -4v
    "modified_huber": [8, 4, 1, 0.25, 0, 0],
    # q = 1: v <= 1/2 -> 1 - v, else 1 / (4 v)
    "dwd_margin": [3, 2, 1, 0.5, 0.25, 0.125],
    "l2_margin": [9, 4, 1, 0.25, 0, 1],
    "l2_hinge": [9, 4, 1, 0.25, 0, 0],
    "sigmoid": [1 - T(-2), 1 - T(-1), 1, 1 - T(0.5), 1 - T(1), 1 - T(2)],
    "logit_margin": [math.log1p(E ** -v) for v in V],
    "exp": [E ** -v for v in V],
}

# Parameter edge cases (hand-computed).
EDGE = [
    # name, params, v, expected
    ("smoothed_l1_hinge", {"gamma": 2.0}, V, [2, 1, 0.25, 0.0625, 0, 0]),          # -> modified_huber / 4
    ("smoothed_l1_hinge", {"gamma": 1e-6}, V, [3, 2, 1, 0.5, 0, 0]),              # -> l1_hinge
    ("smoothed_l1_hinge", {"gamma": 10.0}, V, [0.45, 0.2, 0.05, 0.0125, 0, 0]),   # all quadratic: (1-v)^2/20
    ("dwd_margin", {"q": 2.0}, V, [3, 2, 1, 0.5, 4 / 27, 1 / 27]),                # v > 2/3: 4/27 / v^2
    ("dwd_margin", {"q": 1e-6}, [-1.0, 0.0, 1.0, 5.0], [2, 1, 1, 1]),             # q -> 0: min(1 - v, 1)
    ("dwd_margin", {"q": 1000.0}, [-1.0, 0.0, 2.0], [2, 1, 0]),                   # q -> inf: l1_hinge
    ("l1_hinge", {"m": 0.0}, V, [2, 1, 0, 0, 0, 0]),                              # m = 0 -> perceptron
    ("l1_hinge", {"m": 2.0}, V, [4, 3, 2, 1.5, 1, 0]),
    ("perceptron", {"m": 1.0}, V, [3, 2, 1, 0.5, 0, 0]),                          # m = 1 -> hinge
    ("zero_one", {"m": 1.0}, V, [1, 1, 1, 1, 0, 0]),
    ("l2_margin", {"m": 2.0}, V, [16, 9, 4, 2.25, 1, 0]),
    ("l2_hinge", {"m": 0.5}, V, [6.25, 2.25, 0.25, 0, 0, 0]),
    ("modified_huber", {"m": 2.0}, V, [12, 8, 4, 2.25, 1, 0]),                   # v < 0 -> -4 (v - 1)
    ("logit_margin", {"m": 1.0}, [1.0], [math.log(2)]),
    ("exp", {"m": 1.0}, [1.0, 2.0], [1, 1 / E]),
    ("sigmoid", {"m": 1.0}, [1.0], [1.0]),
]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_values_at_reference_points(name):
    got = get_loss(name)(torch.tensor(V, dtype=torch.float64))
    torch.testing.assert_close(got, torch.tensor(EXPECTED[name], dtype=torch.float64), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,params,v,expected", EDGE)
def test_parameter_edge_cases(name, params, v, expected):
    got = get_loss(name, **params)(torch.tensor(v, dtype=torch.float64))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-5)


def test_modified_huber_is_four_smoothed_hinge_gamma_two():
    v = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    for m in (0.0, 1.0, 2.5):
        torch.testing.assert_close(get_loss("modified_huber", m=m)(v),
                                   4 * get_loss("smoothed_l1_hinge", gamma=2.0, m=m)(v))


def test_eleven_losses_with_snake_case_names():
    assert loss_names() == ["zero_one", "perceptron", "l1_hinge", "smoothed_l1_hinge", "modified_huber",
                            "dwd_margin", "l2_margin", "l2_hinge", "sigmoid", "logit_margin", "exp"]
    assert loss_params("dwd_margin") == {"m": 1.0, "q": 1.0}


def _kinks(loss):
    """Points where a loss is not differentiable (autograd has no single answer there)."""
    p = loss.params
    m = loss.m
    return {"zero_one": [m], "perceptron": [m], "l1_hinge": [m]}.get(loss.name, []) + (
        [m - p["gamma"]] if loss.name == "smoothed_l1_hinge" else [])


CASES = [(n, {}) for n in EXPECTED] + [
    ("smoothed_l1_hinge", {"gamma": 0.3, "m": 0.7}), ("dwd_margin", {"q": 2.5, "m": 1.5}),
    ("dwd_margin", {"q": 0.5}), ("l2_hinge", {"m": 0.25}), ("logit_margin", {"m": 0.5}),
    ("exp", {"m": -1.0}), ("modified_huber", {"m": 0.5}), ("sigmoid", {"m": 2.0}),
    ("perceptron", {"m": 0.5}), ("l2_margin", {"m": -0.5}), ("l1_hinge", {"m": -0.5}),
]


@pytest.mark.parametrize("name,params", CASES)
def test_derivative_matches_autograd(name, params):
    loss = get_loss(name, **params)
    v = torch.linspace(-4, 5, 901, dtype=torch.float64)
    keep = torch.ones_like(v, dtype=torch.bool)
    for k in _kinks(loss):
        keep &= (v - k).abs() > 1e-9
    v = v[keep].clone().requires_grad_(True)
    out = loss(v).sum()
    # zero_one is piecewise constant: autograd builds no graph at all, i.e. a zero gradient
    grad = torch.autograd.grad(out, v)[0] if out.requires_grad else torch.zeros_like(v)
    torch.testing.assert_close(loss.deriv(v.detach()), grad, rtol=1e-10, atol=1e-12)
    # and against a central finite difference (autograd itself could be wrong at a branch)
    h = 1e-6
    vd = v.detach()
    fd = (loss(vd + h) - loss(vd - h)) / (2 * h)
    smooth = torch.ones_like(vd, dtype=torch.bool)
    for k in _kinks(loss) + [loss.m - loss.default_m + 1, loss.m - loss.default_m - 1]:
        smooth &= (vd - k).abs() > 1e-4
    torch.testing.assert_close(loss.deriv(vd)[smooth], fd[smooth], rtol=1e-5, atol=1e-5)


def test_logit_margin_on_pairwise_agreement_is_bpr_exactly():
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        pos = torch.randn(4096, generator=g, dtype=dtype) * 30
        neg = torch.randn(4096, generator=g, dtype=dtype) * 30
        bpr = -F.logsigmoid(pos - neg)
        assert torch.equal(pairwise_loss(get_loss("logit_margin"), pos, neg, reduction="none"), bpr)
        assert torch.equal(pairwise_loss(get_loss("logit_margin"), pos, neg), bpr.mean())


def test_numerically_stable_at_extreme_agreement():
    v = torch.tensor([-1e4, -100.0, 100.0, 1e4], dtype=torch.float32, requires_grad=True)
    for name in loss_names():
        out = get_loss(name)(v)
        assert torch.isfinite(out).all(), name
        if out.requires_grad:
            (g,) = torch.autograd.grad(out.sum(), v)
            assert torch.isfinite(g).all(), name
    lm = get_loss("logit_margin")(v.detach())
    assert lm[0].item() == pytest.approx(1e4) and lm[-1].item() == 0.0
    # exp keeps a non-zero (tangent-line) gradient far below the clamp point
    assert get_loss("exp").deriv(torch.tensor([-1e4])).item() < -1e20
    # dwd never produces NaN gradients through its power branch at v <= 0
    v2 = torch.tensor([-3.0, 0.0], requires_grad=True)
    (g2,) = torch.autograd.grad(get_loss("dwd_margin", q=1.5)(v2).sum(), v2)
    assert torch.equal(g2, torch.tensor([-1.0, -1.0]))


GRID = torch.linspace(-6, 6, 2401, dtype=torch.float64)


def _second_diff(loss):
    y = loss(GRID)
    return y[:-2] - 2 * y[1:-1] + y[2:]


@pytest.mark.parametrize("name,params", CASES)
def test_properties_hold_numerically(name, params):
    loss = get_loss(name, **params)
    p = loss.properties
    d2 = _second_diff(loss)
    if p.convex:
        assert (d2 >= -1e-9).all(), "claimed convex but a second difference is negative"
    else:
        assert (d2 < -1e-9).any(), "claimed non-convex but looks convex on the grid"
    if p.strictly_convex:
        assert (d2 > 0).all()
    elif p.convex:
        assert (d2 <= 1e-12).any(), "claimed not strictly convex but curved everywhere on the grid"
    slopes = loss.deriv(torch.tensor([-1e3, -1e2, 1e2, 1e3], dtype=torch.float64)).abs()
    if p.lipschitz:
        assert slopes.max() <= 4.0 + 1e-9
    elif p.continuous:
        assert slopes.max() > 100
    if p.differentiable:
        # no jumps in the derivative (relative to its size; grid step 0.005)
        dv = loss.deriv(GRID)
        assert ((dv[1:] - dv[:-1]).abs() / (1 + dv[1:].abs())).max() < 0.05
    elif p.continuous:  # a kink: the derivative jumps
        dv = loss.deriv(GRID)
        assert ((dv[1:] - dv[:-1]).abs() / (1 + dv[1:].abs())).max() > 0.2
    else:  # a jump in the value itself
        y = loss(GRID)
        assert (y[1:] - y[:-1]).abs().max() > 0.5
    M = max(1.0, abs(loss.m))
    clipped = loss(GRID.clamp(-M, M))
    assert p.clipable == bool((clipped <= loss(GRID) + 1e-12).all())
    # Classification calibration: for every eta > 1/2 the conditional risk
    # eta phi(a) + (1 - eta) phi(-a) must be strictly lower on a > 0 than anywhere on a <= 0.
    if name != "zero_one":
        ok = True
        a = torch.linspace(-20, 20, 8001, dtype=torch.float64)
        for eta in (0.55, 0.7, 0.9):
            risk = eta * loss(a) + (1 - eta) * loss(-a)
            ok &= bool(risk[a > 0].min() < risk[a <= 0].min() - 1e-9)
        assert p.classification_calibrated == ok
    assert loss.trainable == (name != "zero_one")


def test_unknown_names_and_invalid_params_raise_config_error():
    with pytest.raises(ConfigError, match="valid choices: zero_one, perceptron"):
        get_loss("hinge")
    with pytest.raises(ConfigError, match="valid parameters: m, gamma"):
        get_loss("smoothed_l1_hinge", q=2)
    with pytest.raises(ConfigError, match="gamma must be > 0"):
        get_loss("smoothed_l1_hinge", gamma=0)
    with pytest.raises(ConfigError, match="q must be > 0"):
        get_loss("dwd_margin", q=-1)
    with pytest.raises(ConfigError, match="finite"):
        get_loss("l1_hinge", m=float("nan"))
    with pytest.raises(ConfigError, match="must be a number"):
        get_loss("dwd_margin", q="big")


def test_zero_one_is_refused_for_training_but_usable_for_evaluation():
    with pytest.raises(ConfigError, match="zero gradient almost everywhere.*choose one of: perceptron"):
        get_training_loss("zero_one")
    err = pairwise_loss(get_loss("zero_one"), torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 3.0, 1.0]))
    assert err.item() == pytest.approx(1 / 3)
    assert get_training_loss("l2_hinge", m=0.5).config() == {"name": "l2_hinge", "params": {"m": 0.5}}
