"""Figure of the margin-based loss family: each loss and its derivative over an agreement range."""
from __future__ import annotations

from pathlib import Path

import torch

from components.losses.margin import get_loss, loss_names

_PROPS = [("convex", "convex"), ("strictly_convex", "strict"), ("lipschitz", "Lipschitz"),
          ("differentiable", "diff."), ("clipable", "clipable"), ("classification_calibrated", "calib.")]


def plot_losses(out: str | Path, v_min: float = -2.0, v_max: float = 3.0, params: dict | None = None,
                dpi: int = 110) -> Path:
    """Write a PNG: one panel per loss (value solid, derivative dashed) plus an overview panel.

    ``params`` maps a loss name to its parameters (default parameters otherwise). Returns the path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = params or {}
    out = Path(out)
    v = torch.linspace(v_min, v_max, 1001, dtype=torch.float64)
    names = loss_names()
    fig, axes = plt.subplots(3, 4, figsize=(16, 10.5), sharex=True)
    axes = axes.ravel()
    overview = axes[-1]
    colors = [*(f"C{i}" for i in range(10)), "black"]
    for i, name in enumerate(names):
        loss = get_loss(name, **params.get(name, {}))
        y, dy = loss(v).numpy(), loss.deriv(v).numpy()
        ax = axes[i]
        ax.plot(v, y, color="C0", lw=2, label="loss")
        ax.plot(v, dy, color="C3", lw=1.5, ls="--", label="derivative")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        if loss.properties.has_threshold:
            ax.axvline(loss.m, color="C2", lw=0.8, ls=":", label=f"margin m={loss.m:g}")
        ax.set_ylim(-4.5, 5.5)
        extra = "".join(f", {k}={val:g}" for k, val in loss.params.items())
        ax.set_title(f"{name}{'(' + extra[2:] + ')' if extra else ''}", fontsize=11)
        p = loss.properties
        tags = " ".join(lbl if getattr(p, key) else f"non-{lbl}" for key, lbl in _PROPS)
        ax.text(0.02, 0.02, tags, transform=ax.transAxes, fontsize=6.5, color="0.3")
        if i == 0:
            ax.legend(fontsize=8, loc="upper right")
        overview.plot(v, y, color=colors[i % len(colors)], lw=1.5, label=name)
    overview.set_ylim(-0.2, 5.5)
    overview.axvline(0, color="0.6", lw=0.6)
    overview.set_title("all losses (value)", fontsize=11)
    overview.legend(fontsize=7, ncol=2, loc="upper right")
    for ax in axes[-4:]:
        ax.set_xlabel("agreement v = y f(x)  or  s(pos) - s(neg)")
    fig.suptitle("Margin-based losses (solid) and their derivatives (dashed)", fontsize=14)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    tmp.replace(out)
    return out
