"""Fréchet Inception Distance (Heusel et al. 2017) and the feature statistics it is built from.

    FID = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2))

between Gaussians fitted to Inception pool features of real and generated images. The matrix
square root term is computed as sum(sqrt(eig(S_r^(1/2) S_g S_r^(1/2)))): that matrix is symmetric
positive semi-definite and has the same eigenvalues as S_r S_g, so float64 `eigh` is enough
(no scipy, no complex parts to drop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

# ----------------------------------------------------------------------------
# The mathematics


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2) (the 2-Wasserstein distance squared).

    Arrays or tensors; computed in float64 with torch.linalg (which follows torch.set_num_threads).
    """
    mu1, mu2, s1, s2 = (_f64(v) for v in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(f"shapes: mu {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
                         f"sigma {tuple(s1.shape)} / {tuple(s2.shape)}")
    sqrt_s1 = psd_sqrt(s1)
    eig = torch.linalg.eigvalsh(sqrt_s1 @ s2 @ sqrt_s1)
    tr_covmean = eig.clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * tr_covmean)


def _f64(v) -> torch.Tensor:
    v = v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v, dtype=np.float64))
    return v.detach().to("cpu", torch.float64)


def psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues -> 0)."""
    s = (s + s.T) / 2
    eig, vec = torch.linalg.eigh(s)
    return (vec * eig.clamp(min=0).sqrt()) @ vec.T


# ----------------------------------------------------------------------------
# Running statistics of features


class FeatureStats:
    """Mean and covariance of feature vectors added in batches (float64 sums); optionally all of them."""

    def __init__(self, capture_all: bool = False, max_items: int | None = None) -> None:
        self.capture_all = capture_all
        self.max_items = max_items
        self.num_items = 0
        self.sum: np.ndarray | None = None
        self.sum_outer: np.ndarray | None = None
        self.all: list[np.ndarray] = []

    @property
    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray | torch.Tensor) -> None:
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        x = x.astype(np.float64).reshape(x.shape[0], -1)
        if self.max_items is not None:
            x = x[: max(self.max_items - self.num_items, 0)]
        if x.shape[0] == 0:
            return
        if self.sum is None:
            self.sum = np.zeros(x.shape[1])
            self.sum_outer = np.zeros([x.shape[1], x.shape[1]])
        self.sum += x.sum(axis=0)
        self.sum_outer += x.T @ x
        if self.capture_all:
            self.all.append(x.astype(np.float32))
        self.num_items += x.shape[0]

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean [D] and unbiased covariance [D, D] (as numpy.cov)."""
        if self.sum is None or self.num_items < 2:
            raise ValueError(f"need at least 2 feature vectors, have {self.num_items}")
        n = self.num_items
        mean = self.sum / n
        cov = (self.sum_outer - n * np.outer(mean, mean)) / (n - 1)
        return mean, cov

    def features(self) -> np.ndarray:
        return np.concatenate(self.all) if self.all else np.zeros([0, 0], np.float32)


# ----------------------------------------------------------------------------
# Features of data and of a generator


def dataset_features(
    batches: Iterator[np.ndarray],                   # uint8 [N, C, H, W] image batches
    extract: Callable[[torch.Tensor], torch.Tensor],  # images (uint8 values) -> [N, D] features
    stats: FeatureStats,
) -> FeatureStats:
    for imgs in batches:
        if stats.is_full:
            break
        stats.append(extract(torch.from_numpy(np.ascontiguousarray(imgs))))
    return stats


def fid_from_features(real: FeatureStats, gen: FeatureStats) -> float:
    mu_r, s_r = real.mean_cov()
    mu_g, s_g = gen.mean_cov()
    return frechet_distance(mu_r, s_r, mu_g, s_g)
