"""Within-class variety of a conditional generator (`cvar`): does a class still vary, or has it collapsed?

A class-conditional GAN trained on few images per class can give one class the same picture for every
latent while the other classes stay varied; FID, averaged over all classes, hardly shows it. For each
class k with at least two real images:

    variety_k = s(G(z, k) for n latents) / s(the class's real images, at most n)
    s(X) = the per-pixel standard deviation over the images (ddof 1), averaged over pixels and channels

1 = the class varies as much as its real images, about 0 = one picture for every latent (the random
per-pixel noise inputs are the only variation left). Generated images are drawn as for FID: psi 1,
random noise, uint8 values. The metric's value is the lowest class's variety; every class's is reported.
A pixel statistic: it sees collapse, not whether the pictures are good.
"""

from __future__ import annotations

import numpy as np
import torch

from stylegan_sdk.progress import Progress

from .feature_nets import MetricError
from .sampling import generated_images


def pixel_spread(batches) -> float:
    """s(X): the per-pixel standard deviation (ddof 1) over all images of the batches, averaged over pixels."""
    n, total, total_sq = 0, None, None
    for x in batches:
        x = torch.as_tensor(x).to(torch.float64).cpu()                 # [b, C, H, W]
        s, sq = x.sum(0), x.square().sum(0)
        total, total_sq = (s, sq) if total is None else (total + s, total_sq + sq)
        n += x.shape[0]
    if n < 2:
        raise ValueError(f"pixel_spread: needs at least 2 images, got {n}")
    var = (total_sq - total.square() / n) / (n - 1)
    return float(var.clamp(min=0).sqrt().mean())


def class_variety(
    G: torch.nn.Module,                 # conditional generator module (mapping + synthesis)
    dataset,                            # training.dataset.ImageDataset with class labels, at G's geometry
    n: int,                             # generated images per class (and at most this many real ones)
    gen: torch.Generator,               # latents and noise
    device: torch.device,
    batch: int = 32,
    progress: Progress | None = None,   # counts the classes
) -> dict[str, float]:
    """{class name: variety} for every class with at least two (different) real images."""
    if G.mapping.c_dim == 0:
        raise MetricError("metrics: cvar is for class-conditional generators; this one has no labels")
    if dataset is None or not dataset.has_class_labels or dataset.label_dim != G.mapping.c_dim:
        raise MetricError(f"metrics: cvar needs the data's class labels ({G.mapping.c_dim} classes, --data)")
    classes = dataset.item_classes()[: dataset.num_images]             # no mirrored copies
    names = dataset.class_names or tuple(str(k) for k in range(dataset.label_dim))
    out = {}
    for k in range(dataset.label_dim):
        members = np.flatnonzero(classes == k)[:n]
        if len(members) < 2:
            continue
        real = pixel_spread(dataset.get_batch(members[i: i + batch])[0] for i in range(0, len(members), batch))
        onehot = torch.zeros([1, dataset.label_dim], device=device)
        onehot[0, k] = 1
        fake = pixel_spread(generated_images(G, n, lambda b, c=onehot: c.expand(b, -1), gen, device, batch))
        if real > 0:                                                    # (identical real images: nothing to compare)
            out[names[k]] = fake / real
        if progress is not None:
            progress.advance(1)
    if not out:
        raise MetricError("metrics: cvar found no class with two real images")
    return out
