"""T3D's 2D -> 3D supervision transfer: pairs, objective, frozen teacher, and the stage's pieces."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from components.errors import InputError
from components.video.models import build
from components.video.models.backbones2d import backbone2d
from components.video.models.transfer import (CorrespondenceHead, CorrespondenceModel, correspondence_loss,
                                              correspondence_pairs)


def test_pairs_take_own_and_other_videos_frames():
    clips = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 1, 3, 2, 2).clone()   # clip i is filled with i
    clips[:, :, 1] += 10                                                           # middle frame marked
    frames, labels = correspondence_pairs(clips)
    assert labels.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert frames[:, 0, 0, 0].tolist() == [10, 11, 12, 13, 11, 12, 13, 10]         # own middle, then clip i+1's
    # group ids: a neighbour from the same source video is skipped
    frames, _ = correspondence_pairs(clips, group=torch.tensor([7, 7, 8, 8]))
    assert frames[4:, 0, 0, 0].tolist() == [12, 12, 10, 10]
    with pytest.raises(InputError, match="one video"):
        correspondence_pairs(clips, group=torch.tensor([1, 1, 1, 1]))
    with pytest.raises(InputError, match="at least 2 clips"):
        correspondence_pairs(clips[:1])


def test_objective_is_bce_on_the_head_and_the_teacher_stays_frozen():
    torch.manual_seed(0)
    student = build("t3d", 5, block_config=(1, 1, 1, 1), growth=8, init_features=16, ttl_width=8)
    teacher = backbone2d("resnet18", 3, width=8)
    model = CorrespondenceModel(student, teacher)
    assert isinstance(model.head, CorrespondenceHead)
    assert [m.out_features for m in model.head.net if isinstance(m, torch.nn.Linear)] == [512, 128, 1]
    clips = torch.randn(4, 3, 4, 32, 32)
    loss, acc = correspondence_loss(model, clips)
    # by hand: features of the frozen teacher on [own frames, next clip's frames], the student's twice
    with torch.no_grad():
        teacher.eval()
        mid = clips[:, :, 2]
        f2 = teacher.feature_map(torch.cat([mid, mid[[1, 2, 3, 0]]])).mean(dim=(2, 3))
        f3 = student.features(clips)
        logits = model.head.net(torch.cat([torch.cat([f3, f3]), f2], 1)).squeeze(1)
        want = F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0] * 4 + [0.0] * 4))
    torch.testing.assert_close(loss.detach(), want, rtol=1e-4, atol=1e-5)
    assert 0 <= acc <= 1
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in student.parameters())
    opt.step()
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)     # weights and BN statistics untouched


def test_transfer_learns_the_correspondence_on_a_toy_batch():
    torch.manual_seed(0)
    student = build("t3d", 5, block_config=(1, 1, 1, 1), growth=8, init_features=16, ttl_width=8)
    model = CorrespondenceModel(student, backbone2d("resnet18", 3, width=8))
    clips = torch.rand(6, 3, 4, 32, 32)
    clips[:, :, :] = clips[:, :, 2:3]              # each video shows one still image: its frame "is" the clip
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    for _ in range(25):
        loss, acc = correspondence_loss(model, clips)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_stage_pieces_kind_init_and_config(tmp_path):
    from pipelines.core.config import load_config
    from pipelines.video.config import VideoConfig
    from pipelines.video.stages.pretrain import load_pretrained, pretrain_kind

    with pytest.raises(Exception, match="transfer.teacher_weights"):
        load_config(VideoConfig, None, ["model.name=t3d", "transfer.epochs=1"])
    cfg = load_config(VideoConfig, None, ["model.name=t3d"])
    assert pretrain_kind(cfg) == "none"
    torch.save({}, tmp_path / "t.pt")
    cfg = load_config(VideoConfig, None, ["model.name=t3d", "transfer.epochs=1",
                                          f"transfer.teacher_weights={tmp_path / 't.pt'}"])
    assert pretrain_kind(cfg) == "transfer"
    assert pretrain_kind(load_config(VideoConfig, None, ["model.name=hidden_two_stream"])) == "motionnet"
    assert pretrain_kind(load_config(VideoConfig, None, ["model.name=r3d_18"])) == "none"
    # init.pt of the transfer (student incl. an untrained head of another class count) -> the train model
    kw = {"block_config": (1, 1, 1, 1), "growth": 8, "init_features": 16, "ttl_width": 8}
    src = build("t3d", 3, **kw)
    torch.save(src.state_dict(), tmp_path / "init.pt")
    dst = build("t3d", 5, **kw)
    dst.head[1].weight.data = torch.zeros(5, dst.feature_dim)
    load_pretrained(dst, "transfer", str(tmp_path / "init.pt"))
    for k, v in src.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(dst.state_dict()[k], v), k
    assert float(dst.head[1].weight.abs().sum()) == 0                # the train stage's own classifier kept
    hts = build("hidden_two_stream", 4, frames=3, motion_width=8, width=16)
    mn = build("hidden_two_stream", 4, frames=3, motion_width=8, width=16).motionnet
    torch.save(mn.state_dict(), tmp_path / "mn.pt")
    load_pretrained(hts, "motionnet", str(tmp_path / "mn.pt"))
    assert all(torch.equal(a, b) for a, b in zip(hts.motionnet.state_dict().values(), mn.state_dict().values()))
