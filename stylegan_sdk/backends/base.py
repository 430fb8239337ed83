"""The backend interface (the registry of backends is backends/registry.py).

A backend does two things on batches: `map(z, c) -> w` and `synthesize(ws, noise_mode, noise) ->
float images`. Seeds, truncation, mixing, argument checks and image conversion live once above the
backends (`Generator`, on `stylegan_sdk.calls`), in NumPy. A new backend is one module and one
`register` call in registry.py.
"""

from __future__ import annotations

import abc

import numpy as np

from ..config import GeneratorConfig


class Backend(abc.ABC):
    """Runs one generator's two networks. Inputs and outputs are float32 NumPy arrays."""

    name: str = ""
    # (min, max) rows one call accepts, or None for any number (an engine built for a batch range sets it);
    # callers that batch (Generator, the server's batcher) split their work to fit.
    batch_range: tuple[int, int] | None = None
    # What the synthesis is computed in (config.PRECISIONS); a backend that offers more sets it in __init__.
    precision: str = "fp32"

    def __init__(self, config: GeneratorConfig, w_avg: np.ndarray, device: str) -> None:
        self.config = config
        self.w_avg = np.asarray(w_avg, np.float32)  # [w_dim]
        self.device = device

    @abc.abstractmethod
    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        """z [N, z_dim], c [N, c_dim] or None -> w [N, w_dim] (no truncation)."""

    @abc.abstractmethod
    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                   transform: np.ndarray | None = None) -> np.ndarray:
        """ws [N, num_ws, w_dim] -> images [N, C, H, W], unclipped.

        noise_mode "const" | "none" | "random"; with "random", `noise` holds one unit-Gaussian
        [N, 1, r, r] image per synthesis convolution (config.noise_resolutions), drawn by the caller.
        transform: StyleGAN3's input transform per row, [N, 3, 3] float32 (the value of the synthesis
        input's transform; None = identity); always None for families without one.
        """

    def rows_per_call(self, wanted: int) -> int:
        """`wanted` rows per call, capped by batch_range: how Generator and the server's batcher split work."""
        return wanted if self.batch_range is None else max(1, min(wanted, int(self.batch_range[1])))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions / device memory."""
