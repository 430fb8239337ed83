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
        device: str = "cpu",                               # "cpu" | "cuda" | "cuda:N" | "mps" | "auto"
        source: str = "weights",                           # for error messages
        precision: str | None = None,                      # "fp32" (None) | "fp16" (synthesis in float16, CUDA)
        compile: bool = False,                             # torch.compile the synthesis network
    ) -> None:
        dev = resolve_device(device)
        precision = precision or "fp32"
        if precision == "bf16":
            raise ValueError("precision: 'bf16' runs on the OpenVINO backend: export the model (python "
                             "stylegan export onnx MODEL --out DIR) and load DIR with precision='bf16'")
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision: the torch backend computes in 'fp32' or 'fp16' (CUDA), got {precision!r}")
        fp16 = precision == "fp16"
        if fp16 and dev.type != "cuda":
            raise ValueError(f"precision: 'fp16' (float16 synthesis) needs a CUDA device, got device {str(dev)!r}")
        if fp16 and config.arch == "stylegan3":
            raise ValueError("precision: StyleGAN3 networks are computed in float32 ('fp16' is not supported)")
        self.precision = precision
        self.model = build_with_weights(config, tensors, source).to(dev)
        super().__init__(config, self.model.mapping.w_avg.detach().cpu().numpy(), str(dev))
        self.torch_device = dev
        self.dtype = torch.float16 if fp16 else torch.float32
        if fp16:
            self.model.synthesis.half()
        self._synthesis = self.model.synthesis
        if compile:
            # On CUDA "max-autotune" also captures CUDA graphs (one per batch size); CPU uses inductor's default.
            mode = "max-autotune" if dev.type == "cuda" else "default"
            self._synthesis = torch.compile(self.model.synthesis, mode=mode, dynamic=False, fullgraph=True)

    @torch.no_grad()
    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        zt = torch.from_numpy(np.ascontiguousarray(z, np.float32)).to(self.torch_device)
        ct = None if c is None else torch.from_numpy(np.ascontiguousarray(c, np.float32)).to(self.torch_device)
        return self.model.mapping(zt, ct).cpu().numpy()

    @torch.no_grad()
    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                   transform: np.ndarray | None = None) -> np.ndarray:
        wt = torch.from_numpy(np.ascontiguousarray(ws, np.float32)).to(self.torch_device, self.dtype)
        nt = None if noise is None else [torch.from_numpy(n).to(self.torch_device, self.dtype) for n in noise]
        if self.config.arch != "stylegan3":
            if transform is not None:
                raise ValueError(f"transform: this model ({self.config.arch}) has no input transform")
            img = self._synthesis(wt, noise_mode=noise_mode, noise=nt)
        else:
            # StyleGAN3: the input transform per row [N, 3, 3] (None: the network's own, the identity).
            tt = None if transform is None else \
                torch.from_numpy(np.ascontiguousarray(transform, np.float32)).to(self.torch_device)
            img = self._synthesis(wt, noise_mode=noise_mode, noise=nt, transform=tt)
        return img.float().cpu().numpy()
