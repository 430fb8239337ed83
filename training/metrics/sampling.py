"""Generated images for the metrics: the one sampler every metric draws from, and batches counted as they pass."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import torch

from stylegan_sdk.progress import Progress

T = TypeVar("T")


def counted(batches: Iterable[T], progress: Progress | None) -> Iterator[T]:
    """The batches as they are, each one's length added to `progress` once it has been used."""
    for b in batches:
        yield b
        if progress is not None:
            progress.advance(len(b))
    if progress is not None:
        progress.close()


@torch.no_grad()
def generated_images(G: torch.nn.Module, n: int, sample_c, gen: torch.Generator, device: torch.device,
                     batch: int = 32):
    """uint8-valued float images [b, C, H, W] in batches (random noise, no truncation)."""
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = torch.randn([b, G.mapping.z_dim], generator=gen).to(device)
        ws = G.mapping(z, sample_c(b)).unsqueeze(1).repeat([1, G.num_ws, 1])
        noise = [torch.randn([b, 1, r, r], generator=gen).to(device) for r in G.cfg.noise_resolutions]
        img = G.synthesis(ws, noise_mode="random", noise=noise or None)
        yield (img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
