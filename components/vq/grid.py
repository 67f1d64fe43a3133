"""Image grids saved as PNG."""
from __future__ import annotations

import numpy as np


def make_grid(images: np.ndarray, ncol: int = 10, pad: int = 2, scale: int = 2) -> np.ndarray:
    """uint8 (N, H, W, C) -> one uint8 image (rows of ``ncol``), nearest-neighbour upscaled."""
    n, h, w, c = images.shape
    nrow = max(1, -(-n // ncol))
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, q = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = images[i]
    if scale > 1:
        grid = grid.repeat(scale, 0).repeat(scale, 1)
    return grid


def save_grid(path, images: np.ndarray, ncol: int = 10, scale: int = 2) -> None:
    """Write ``make_grid(images)`` to ``path`` as PNG."""
    from PIL import Image

    g = make_grid(images, ncol=ncol, scale=scale)
    Image.fromarray(g[..., 0] if g.shape[-1] == 1 else g).save(path, format="PNG")
