"""Training recipes: our AdamW + one-cycle and torchvision's SGD + linear warm-up + step decay."""
import pytest
import torch

from components.video.train_loop import make_optimizer, make_schedule
from pipelines.core.config import load_config
from pipelines.video.config import VideoConfig


def _lrs(kind, steps, **kw):
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = make_optimizer(p, "sgd", 0.1, 1e-4, 0.9)
    sched = make_schedule(opt, kind, steps, **kw)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return opt, out


def test_warmup_step_matches_the_reference_by_hand():
    # 45 steps = the reference's 45 epochs: warm-up over 10, x0.1 at 20, 30 and 40
    opt, lrs = _lrs("warmup_step", 45, warmup=10 / 45, warmup_start=1e-3)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    assert lrs[0] == pytest.approx(0.1 * 1e-3)
    assert lrs[5] == pytest.approx(0.1 * (1e-3 + (1 - 1e-3) * 5 / 10))
    assert lrs[10] == pytest.approx(0.1) and lrs[19] == pytest.approx(0.1)
    assert lrs[20] == pytest.approx(0.01) and lrs[29] == pytest.approx(0.01)
    assert lrs[30] == pytest.approx(1e-3) and lrs[40] == pytest.approx(1e-4) and lrs[44] == pytest.approx(1e-4)


def test_onecycle_peaks_at_the_lr_then_anneals():
    _, lrs = _lrs("onecycle", 100, warmup=0.15)
    peak = max(range(100), key=lambda i: lrs[i])
    assert 13 <= peak <= 16 and lrs[peak] == pytest.approx(0.1, rel=1e-3)
    assert lrs[0] < 0.01 and lrs[-1] < 1e-4


def test_unknown_recipe_parts_are_refused():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="adamw or sgd"):
        make_optimizer(p, "lamb", 0.1, 0.0)
    with pytest.raises(Exception, match="optimizer"):
        load_config(VideoConfig, None, ["train.optimizer=lamb"])


def test_default_recipe_is_adamw_onecycle():
    t = VideoConfig().train
    assert (t.optimizer, t.schedule, t.warmup) == ("adamw", "onecycle", 0.15)
    assert isinstance(make_optimizer([torch.nn.Parameter(torch.zeros(1))], t.optimizer, t.lr, t.weight_decay),
                      torch.optim.AdamW)
