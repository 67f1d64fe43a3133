"""T3D's 2D -> 3D supervision transfer (Diba et al. 2017, Sec. 3.2 "Supervision or knowledge transfer").

A frozen, pre-trained 2D network sees one frame, the 3D network (the student) sees a clip; their
embeddings are concatenated and a small classifier (fully connected 512 -> 128 -> 1 in the paper)
answers "does this frame belong to this clip?". Positive pairs take the frame from the clip's own
time window; negatives take it from another video of the batch. Only the 3D network and the
classifier learn, so the 3D network has to produce features that agree with the 2D network's
image features — ImageNet knowledge carried into the 3D filters without any labels. The student
is then fine-tuned on the action labels as usual.

    model = CorrespondenceModel(student, teacher)        # teacher frozen, head 512 -> 128 -> 1
    loss, acc = correspondence_loss(model, clips)

The teacher is any module with ``feature_map(x) -> (B, C, h, w)`` or ``features(x) -> (B, C)`` on
images (the 2D trunks of :mod:`backbones2d`, :class:`resnet3d.FrameResNet`, ``googlenet_bn``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.errors import InputError


class CorrespondenceHead(nn.Module):
    """The binary image-clip correspondence classifier: [f3d, f2d] -> fc(512) -> ReLU -> fc(128)
    -> ReLU -> fc(1) (a logit; the paper's two-way softmax is the same model)."""

    def __init__(self, dim3d: int, dim2d: int, hidden=(512, 128), dropout: float = 0.0):
        super().__init__()
        layers, d = [], dim3d + dim2d
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            d = h
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, f3d: torch.Tensor, f2d: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([f3d, f2d], 1)).squeeze(1)


def teacher_features(teacher: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """(B, C) image embeddings of a frozen teacher (no gradient, eval-mode BN)."""
    teacher.eval()
    with torch.no_grad():
        if hasattr(teacher, "feature_map"):
            return teacher.feature_map(frames).mean(dim=(2, 3))
        return teacher.features(frames)


def correspondence_pairs(clips: torch.Tensor, group: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames for the transfer objective: for a batch of B clips (B, C, T, H, W) returns the 2B
    frames (2B, C, H, W) and labels (2B,): first each clip's own middle frame (label 1), then the
    middle frame of clip ``(i + 1) mod B`` (label 0; needs B >= 2).

    ``group`` (B,) optional ids of the source video: a negative whose neighbour comes from the
    same video is moved to the next clip of another video (an error if every clip shares one).
    """
    b = clips.shape[0]
    if clips.dim() != 5 or b < 2:
        raise InputError(f"the transfer objective needs a batch of at least 2 clips (B, C, T, H, W), got "
                         f"{tuple(clips.shape)}", field="clips", param="clips")
    mid = clips[:, :, clips.shape[2] // 2]
    other = torch.arange(1, b + 1) % b
    if group is not None:
        g = torch.as_tensor(group)
        if bool((g == g[0]).all()):
            raise InputError("every clip of the batch comes from one video: no negative pair exists",
                             field="group", param="group")
        for i in range(b):
            j = int(other[i])
            while g[j] == g[i]:
                j = (j + 1) % b
            other[i] = j
    frames = torch.cat([mid, mid[other]], 0)
    labels = torch.cat([torch.ones(b), torch.zeros(b)]).to(clips.device)
    return frames, labels


class CorrespondenceModel(nn.Module):
    """Student + frozen teacher + head as one module (one ``forward``, so a DDP wrapper synchronises
    the student's and the head's gradients): ``forward(clips) -> (logits (2B,), labels (2B,))``."""

    def __init__(self, student: nn.Module, teacher: nn.Module, head: CorrespondenceHead | None = None):
        super().__init__()
        self.student, self.teacher = student, teacher
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.head = head or CorrespondenceHead(student.feature_dim, teacher.feature_dim)

    def forward(self, clips: torch.Tensor, group: torch.Tensor | None = None):
        frames, labels = correspondence_pairs(clips, group)
        f2 = teacher_features(self.teacher, frames)
        f3 = self.student.features(clips)
        return self.head(torch.cat([f3, f3], 0), f2), labels


def correspondence_loss(model: CorrespondenceModel, clips: torch.Tensor,
                        group: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """Binary cross-entropy of the image-clip correspondence task on one batch, and its accuracy.

    The student embeds each clip once; each embedding is paired with its own frame (positive) and
    another video's frame (negative) from the frozen teacher."""
    logits, labels = model(clips, group)
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
    acc = float(((logits.detach() > 0).float() == labels).float().mean())
    return loss, acc
