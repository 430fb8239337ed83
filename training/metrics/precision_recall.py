"""Improved precision and recall (Kynkäänniemi et al. 2019, arXiv 1904.06991).

Each set of feature vectors defines a manifold: the union of balls around its points, each ball's
radius the distance to the point's k-th nearest neighbour in the same set. Precision is the share
of generated points inside the real manifold; recall the share of real points inside the generated
one. Features: VGG16 fc7 (feature_nets.VGG16Features.fc7), k = 3.
"""

from __future__ import annotations

import torch


def kth_neighbour_radii(x: torch.Tensor, k: int, batch: int = 1024) -> torch.Tensor:
    """[N] distance from each row of x [N, D] to its k-th nearest other row."""
    out = []
    for rows in x.split(batch):
        dist = torch.cdist(rows, x)                                # [b, N], includes the 0 to itself
        out.append(dist.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def coverage(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, batch: int = 1024) -> float:
    """Share of probes [M, D] inside at least one ball (manifold [N, D], radii [N])."""
    inside = []
    for rows in probes.split(batch):
        inside.append((torch.cdist(rows, manifold) <= radii.unsqueeze(0)).any(dim=1))
    return float(torch.cat(inside).float().mean())


def precision_recall(real: torch.Tensor, gen: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of generated features gen [M, D] against real features real [N, D]."""
    if real.shape[0] <= k or gen.shape[0] <= k:
        raise ValueError(f"need more than k={k} real and generated samples, have {real.shape[0]} and {gen.shape[0]}")
    real, gen = real.float(), gen.float()
    precision = coverage(real, kth_neighbour_radii(real, k), gen)
    recall = coverage(gen, kth_neighbour_radii(gen, k), real)
    return precision, recall
