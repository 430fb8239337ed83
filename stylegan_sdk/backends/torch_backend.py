"""PyTorch backend: the in-process model, from a checkpoint or an imported official network."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..config import GeneratorConfig
from ..models import build_with_weights
from .base import Backend


def resolve_device(device: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:1', 'mps' or 'auto' (the first accelerator torch sees, else cpu)."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: not a device name: {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for, but torch sees no CUDA device")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {device!r} asked for, but MPS is not available")
    return dev


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self,
        config: GeneratorConfig,
        tensors: Mapping[str, np.ndarray | torch.Tensor],  # weights by official name
        device: str = "cpu",
        source: str = "weights",                           # for error messages
    ) -> None:
        dev = resolve_device(device)
        self.model = build_with_weights(config, tensors, source).to(dev)
        super().__init__(config, self.model.mapping.w_avg.detach().cpu().numpy(), str(dev))
        self.torch_device = dev

    @torch.no_grad()
    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        zt = torch.from_numpy(np.ascontiguousarray(z, np.float32)).to(self.torch_device)
        ct = None if c is None else torch.from_numpy(np.ascontiguousarray(c, np.float32)).to(self.torch_device)
        return self.model.mapping(zt, ct).cpu().numpy()

    @torch.no_grad()
    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None) -> np.ndarray:
        wt = torch.from_numpy(np.ascontiguousarray(ws, np.float32)).to(self.torch_device)
        nt = None if noise is None else [torch.from_numpy(n).to(self.torch_device) for n in noise]
        return self.model.synthesis(wt, noise_mode=noise_mode, noise=nt).cpu().numpy()
