"""GANSpace: principal components of W (Härkönen et al., NeurIPS 2020, arXiv 2004.02546).

Sample z, map it (no truncation), and take the principal axes of the resulting w: the directions in
which W varies most. Torch-free (any backend maps), in chunks: the running sum and the sum of outer
products in float64 are all that is kept, so memory is O(w_dim²) whatever the number of samples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..generator import Generator
from .directions import Directions, model_identity, source_name

CHUNK = 2048            # z mapped per backend call
MAX_SAMPLES = 10**8


def ganspace(G: Generator, k: int = 10, samples: int = 100_000, seed: int = 0,
             progress: Callable[[int, int], None] | None = None) -> Directions:
    """The top-k principal components of W from `samples` mapped z (z ~ RandomState(seed), chunk by chunk;
    a conditional model's classes drawn uniformly from the same generator). values: the standard deviation
    of W along each component; mean: the mean of W. progress(done, total) is called after each chunk."""
    cfg = G.config
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= cfg.w_dim:
        raise ValueError(f"k: must be an int in 1..{cfg.w_dim} (w_dim), got {k!r}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or not k < samples <= MAX_SAMPLES:
        raise ValueError(f"samples: must be an int in {k + 1}..{MAX_SAMPLES} (more than k), got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed: must be an int in 0..2**32-1, got {seed!r}")
    rng = np.random.RandomState(seed)
    total = np.zeros(cfg.w_dim, np.float64)
    outer = np.zeros((cfg.w_dim, cfg.w_dim), np.float64)
    for done in range(0, samples, CHUNK):
        n = min(CHUNK, samples - done)
        z = rng.randn(n, cfg.z_dim)
        c = None
        if cfg.c_dim:
            c = np.eye(cfg.c_dim, dtype=np.float32)[rng.randint(cfg.c_dim, size=n)]
        w = G.map(z, c=c)[:, 0].astype(np.float64)          # [n, w_dim]: every ws row is the same w
        total += w.sum(axis=0)
        outer += w.T @ w
        if progress is not None:
            progress(done + n, samples)
    mean = total / samples
    cov = (outer - samples * np.outer(mean, mean)) / (samples - 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:k]
    vectors = vectors[:, order].T
    vectors *= np.sign(vectors[np.arange(k), np.argmax(np.abs(vectors), axis=1)])[:, None]
    return Directions(vectors=vectors, values=np.sqrt(np.maximum(values[order], 0)),
                      names=tuple(f"pc{i}" for i in range(k)), kind="ganspace", layers=None,
                      model=model_identity(cfg, G.w_avg), mean=mean,
                      meta={"samples": int(samples), "seed": int(seed), "source": source_name(G.source)})
