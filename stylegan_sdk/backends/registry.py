"""The one registry of backends: name -> how to import the class (lazily) and what to install for it.

A new backend is one module (a `Backend` subclass) and one `register` call at the end of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..version import install_hint
from .base import Backend


@dataclass(frozen=True)
class BackendEntry:
    name: str
    load_class: Callable[[], type[Backend]]  # imports the module on first use
    install: Callable[[], str]               # what to pip install when the import fails (from where we came)


REGISTRY: dict[str, BackendEntry] = {}


def register(name: str, load_class: Callable[[], type[Backend]], install: Callable[[], str]) -> None:
    REGISTRY[name] = BackendEntry(name, load_class, install)


def backend_class(name: str) -> type[Backend]:
    """The Backend class registered under name; ImportError naming what to install if unavailable."""
    if name not in REGISTRY:
        raise ValueError(f"backend: unknown backend {name!r} (choose from {sorted(REGISTRY)} or 'auto')")
    entry = REGISTRY[name]
    try:
        return entry.load_class()
    except ImportError as e:
        raise ImportError(f"backend {name!r} needs packages that are not installed ({e.msg}); "
                          f"install them with: {entry.install()}") from e


def _load_torch() -> type[Backend]:
    from .torch_backend import TorchBackend

    return TorchBackend


def _load_onnxruntime() -> type[Backend]:
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend


def _load_openvino() -> type[Backend]:
    from .openvino_backend import OpenVinoBackend

    return OpenVinoBackend


def _load_tensorrt() -> type[Backend]:
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend


def _load_triton() -> type[Backend]:
    from .triton_backend import TritonBackend

    return TritonBackend


register("torch", _load_torch, lambda: install_hint("torch"))
register("onnxruntime", _load_onnxruntime, lambda: "pip install onnxruntime (or onnxruntime-gpu for CUDA)")
register("openvino", _load_openvino, lambda: install_hint("openvino"))
register("tensorrt", _load_tensorrt,
         lambda: f"{install_hint('tensorrt')} (tensorrt + a CUDA build of torch; needs an NVIDIA GPU)")
register("triton", _load_triton, lambda: f"{install_hint('triton')} (tritonclient[grpc])")


BACKEND_CHOICES = ("auto", *REGISTRY)   # what a `backend=` argument or --backend option accepts
