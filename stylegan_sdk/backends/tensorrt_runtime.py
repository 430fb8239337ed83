"""TensorRT and the GPU, imported and probed lazily: what the TensorRT backend and the engine builder
(`stylegan_sdk.export.tensorrt`) share. No torch and no tensorrt are imported until asked for.
"""

from __future__ import annotations

import ctypes
from typing import Any

TENSORRT_MISSING = "TensorRT is not installed: pip install tensorrt (needs an NVIDIA GPU and driver)"
NO_GPU = ("no CUDA GPU is visible: TensorRT needs an NVIDIA GPU with the NVIDIA driver installed "
          "(check nvidia-smi and CUDA_VISIBLE_DEVICES)")


class NoGPUError(RuntimeError):
    """TensorRT is installed but no CUDA device can be used."""


# ----------------------------------------------------------------------------
# TensorRT and the GPU, imported / probed lazily


def import_tensorrt() -> Any:
    """The tensorrt module, or ImportError naming what to install."""
    try:
        import tensorrt as trt
    except (ImportError, OSError):  # OSError: the wheel is there but its CUDA libraries are not
        raise ImportError(TENSORRT_MISSING) from None
    return trt


_LOGGER: Any = None


def trt_logger(trt: Any) -> Any:
    """One TensorRT logger per process (TensorRT warns when builders and runtimes get different ones)."""
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def _cuda_driver() -> Any | None:
    """The CUDA driver library, initialised, or None (no driver, or no usable device)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        return lib if lib.cuInit(0) == 0 else None
    return None


def cuda_device_count() -> int:
    """CUDA devices the driver sees (0 without a driver), without importing torch."""
    lib = _cuda_driver()
    count = ctypes.c_int(0)
    if lib is None or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def require_gpu() -> None:
    if cuda_device_count() < 1:
        raise NoGPUError(NO_GPU)


def gpu_name() -> str:
    """Name of the current CUDA device: through torch if it has CUDA, else the driver, else 'unknown'."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.cuda.current_device())
    except Exception:  # a name for the record only
        pass
    lib = _cuda_driver()
    device, buf = ctypes.c_int(0), ctypes.create_string_buffer(256)
    if lib is not None and lib.cuDeviceGet(ctypes.byref(device), 0) == 0 \
            and lib.cuDeviceGetName(buf, len(buf), device) == 0:
        return buf.value.decode(errors="replace")
    return "unknown"
