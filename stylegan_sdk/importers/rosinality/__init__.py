"""rosinality's PyTorch StyleGAN checkpoints: `reader` opens them (weights-only torch.load), `stylegan1`
(style-based-gan-pytorch) and `stylegan2` (stylegan2-pytorch) translate them; `import_torch_checkpoint`
tells the two apart by their keys.
"""

from __future__ import annotations

import os

from ...formats.checkpoint import Checkpoint
from . import stylegan1, stylegan2
from .reader import is_torch_file, read_torch_file


def import_torch_checkpoint(path: str | os.PathLike, key: str = "G_ema", step: int | None = None) -> Checkpoint:
    """Any rosinality checkpoint: StyleGAN2 (rosinality/stylegan2-pytorch) or StyleGAN v1 (style-based-gan-pytorch).

    key: "G_ema" picks each project's EMA generator (StyleGAN2: g_ema; v1: g_running). A StyleGAN2 file
    only ever gives g_ema ("G_ema" or "g_ema"); v1 also takes "generator". step: v1 only, its output
    resolution 4 * 2**step (None: the deepest block).
    """
    path = os.fspath(path)
    obj = read_torch_file(path)
    if stylegan2.is_stylegan2_object(obj):
        if key not in ("G_ema", "g_ema"):
            raise ValueError(f"key: {key!r}: {path} is a rosinality StyleGAN2 checkpoint, whose 'g' is the raw "
                             f"(non-EMA) generator; only g_ema is loaded (key 'G_ema' or 'g_ema')")
        if step is not None:
            raise ValueError(f"step: {step!r}: only StyleGAN v1 checkpoints take a step; {path} is a rosinality "
                             f"StyleGAN2 checkpoint with one output resolution")
        return stylegan2.import_object(obj, path)
    return stylegan1.import_object(obj, path, "g_running" if key == "G_ema" else key, step)


__all__ = ["import_torch_checkpoint", "is_torch_file", "read_torch_file"]
