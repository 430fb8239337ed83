"""The backend interface and its one registry.

A backend does two things on batches: `map(z, c) -> w` and `synthesize(ws, noise_mode, noise) ->
float images`. Seeds, truncation, mixing, argument checks and image conversion live once above the
backends (`Generator`), in NumPy. A new backend is one module and one `register` call below.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import GeneratorConfig


class Backend(abc.ABC):
    """Runs one generator's two networks. Inputs and outputs are float32 NumPy arrays."""

    name: str = ""

    def __init__(self, config: GeneratorConfig, w_avg: np.ndarray, device: str) -> None:
        self.config = config
        self.w_avg = np.asarray(w_avg, np.float32)  # [w_dim]
        self.device = device

    @abc.abstractmethod
    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        """z [N, z_dim], c [N, c_dim] or None -> w [N, w_dim] (no truncation)."""

    @abc.abstractmethod
    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None) -> np.ndarray:
        """ws [N, num_ws, w_dim] -> images [N, C, H, W], unclipped.

        noise_mode "const" | "none" | "random"; with "random", `noise` holds one unit-Gaussian
        [N, 1, r, r] image per synthesis convolution (config.noise_resolutions), drawn by the caller.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions / device memory."""


# ----------------------------------------------------------------------------
# Registry: name -> how to import the class (lazily) and what to install for it


@dataclass(frozen=True)
class BackendEntry:
    name: str
    load_class: Callable[[], type[Backend]]  # imports the module on first use
    install_hint: str                        # what to pip install when the import fails


REGISTRY: dict[str, BackendEntry] = {}


def register(name: str, load_class: Callable[[], type[Backend]], install_hint: str) -> None:
    REGISTRY[name] = BackendEntry(name, load_class, install_hint)


def backend_class(name: str) -> type[Backend]:
    """The Backend class registered under name; ImportError naming what to install if unavailable."""
    if name not in REGISTRY:
        raise ValueError(f"backend: unknown backend {name!r} (choose from {sorted(REGISTRY)} or 'auto')")
    entry = REGISTRY[name]
    try:
        return entry.load_class()
    except ImportError as e:
        raise ImportError(f"backend {name!r} needs packages that are not installed ({e.msg}); "
                          f"install them with: {entry.install_hint}") from e


def _load_torch() -> type[Backend]:
    from .torch_backend import TorchBackend

    return TorchBackend


def _load_onnxruntime() -> type[Backend]:
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend


def _load_tensorrt() -> type[Backend]:
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend


register("torch", _load_torch, "pip install 'stylegan-sdk[torch]'")
register("onnxruntime", _load_onnxruntime, "pip install onnxruntime (or onnxruntime-gpu for CUDA)")
register("tensorrt", _load_tensorrt,
         "pip install 'stylegan-sdk[tensorrt]' (tensorrt + a CUDA build of torch; needs an NVIDIA GPU)")
