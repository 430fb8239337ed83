"""Perceptual path length (StyleGAN paper, section 4.2).

    PPL = E[ d(G(path(t)), G(path(t + eps))) / eps^2 ],   eps = 1e-4

with d the LPIPS distance (VGG16), path a spherical interpolation of two latents in Z (`slerp`) or
a linear one of their mappings in W (`lerp`), t ~ U(0, 1) ("full") or t = 0 ("end"). Both images of
a pair get the same noise. As in the paper, the face-region crop is optional, images larger than
256 are box-filtered down to 256, and the 1st and 99th percentiles of the distances are dropped
before averaging.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from stylegan_sdk.progress import Progress


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of directions a, b [N, D] at t [N, 1]; unit-norm result."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)     # cos of the angle
    p = t * torch.acos(d)                                   # angle travelled
    c = b - d * a                                           # direction orthogonal to a, towards b
    c = c / c.norm(dim=-1, keepdim=True)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def crop_and_resize(img: torch.Tensor, crop: bool) -> torch.Tensor:
    """The paper's face crop (rows 3/8..7/8, columns 2/8..6/8), then box down-sampling to <= 256."""
    if crop:
        c = img.shape[2] // 8
        img = img[:, :, c * 3: c * 7, c * 2: c * 6]
    factor = img.shape[2] // 256
    if factor > 1:
        n, ch, h, w = img.shape
        img = img.reshape(n, ch, h // factor, factor, w // factor, factor).mean([3, 5])
    return img


@torch.no_grad()
def path_distances(
    G: torch.nn.Module,                                     # generator (mapping + synthesis)
    embed: Callable[[torch.Tensor], torch.Tensor],          # images [-1, 1] -> embedding; |e0 - e1|^2 = distance
    c: torch.Tensor,                                        # [N, c_dim] labels of the N pairs
    gen: torch.Generator,                                   # randomness
    epsilon: float = 1e-4,                                  # step along the path
    space: str = "w",                                       # "z" (slerp) | "w" (lerp)
    sampling: str = "end",                                  # "full" (t ~ U(0,1)) | "end" (t = 0)
    crop: bool = False,                                     # the paper's face crop
) -> torch.Tensor:
    """[N] scaled distances d(t, t + eps) / eps^2 for N random paths."""
    assert space in ("z", "w") and sampling in ("full", "end")
    n = c.shape[0]
    device = c.device
    t = torch.rand([n, 1], generator=gen) * (1 if sampling == "full" else 0)
    z0, z1 = torch.randn([2 * n, G.mapping.z_dim], generator=gen).to(device).chunk(2)
    t = t.to(device)
    if space == "w":
        w0, w1 = G.mapping(torch.cat([z0, z1]), torch.cat([c, c])).chunk(2)
        wt = torch.cat([w0.lerp(w1, t), w0.lerp(w1, t + epsilon)])
    else:
        zt = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
        wt = G.mapping(zt, torch.cat([c, c]))
    ws = wt.unsqueeze(1).repeat([1, G.num_ws, 1])                          # [2N, num_ws, w_dim]
    noise = [torch.randn([n, 1, r, r], generator=gen).to(device).repeat([2, 1, 1, 1])
             for r in G.cfg.noise_resolutions]                             # the same noise for both ends
    img = G.synthesis(ws, noise_mode="random", noise=noise or None)
    img = crop_and_resize(img.float(), crop)
    e0, e1 = embed(img).chunk(2)
    return (e0 - e1).square().sum(dim=1) / epsilon**2


def ppl_from_distances(dist: np.ndarray) -> float:
    """Mean of the distances between the 1st and 99th percentiles (drops outliers, as the paper)."""
    dist = np.asarray(dist, np.float64)
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def compute_ppl(
    G: torch.nn.Module,                                     # generator
    embed: Callable[[torch.Tensor], torch.Tensor],          # LPIPS embedding (VGG16Features.lpips_embedding)
    sample_c: Callable[[int], torch.Tensor],                # n -> [n, c_dim] labels
    num_samples: int,                                       # paths
    epsilon: float = 1e-4,
    space: str = "w",
    sampling: str = "end",
    crop: bool = False,
    batch: int = 16,
    seed: int = 0,
    progress: Progress | None = None,                       # counts the paths
) -> float:
    gen = torch.Generator().manual_seed(seed)
    dist = []
    for start in range(0, num_samples, batch):
        n = min(batch, num_samples - start)
        dist.append(path_distances(G, embed, sample_c(n), gen, epsilon, space, sampling, crop).cpu().numpy())
        if progress is not None:
            progress.advance(n)
    return ppl_from_distances(np.concatenate(dist))
