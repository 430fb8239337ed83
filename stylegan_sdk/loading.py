"""`sg.load(path)`: any supported model file -> a `Generator` on a backend.

Sources, told apart by their first bytes, never by running anything in them:
- our checkpoint (safetensors + JSON config header),
- an official NVlabs PyTorch network pickle (`network-snapshot-*.pkl`, StyleGAN2-ADA / StyleGAN3),
  through the allow-list unpickler,
- an NVIDIA TensorFlow pickle (`karras2019stylegan-*.pkl`, `stylegan2-*-config-f.pkl`), through its
  own allow-list unpickler (the TF source inside is never run),
- a rosinality checkpoint: style-based-gan-pytorch (StyleGAN v1) or stylegan2-pytorch (`550000.pt`,
  converted `stylegan2-ffhq-config-f.pt`), torch.load with weights_only=True,
- an exported folder (model.json + ONNX graphs / TensorRT engines), run without torch.
"""

from __future__ import annotations

import os

from .checkpoint import Checkpoint, is_checkpoint, load_checkpoint
from .exported import is_exported_folder, read_exported
from .generator import Generator

PICKLE_MAGIC = b"\x80"
DEFAULT_MODEL = "default"
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_model")
DEFAULT_CHECKPOINT = os.path.join(DEFAULT_DIR, "emoji.safetensors")
DEFAULT_EXPORT = os.path.join(DEFAULT_DIR, "emoji_onnx")


def resolve_model(path: str | os.PathLike, backend: str = "auto") -> str:
    """'default' -> the bundled emoji model (its ONNX folder, or its checkpoint for backend 'torch')."""
    path = os.fspath(path)
    if path != DEFAULT_MODEL or os.path.exists(path):
        return path
    bundled = DEFAULT_CHECKPOINT if backend == "torch" else DEFAULT_EXPORT
    if not os.path.exists(bundled):
        raise FileNotFoundError(f"path: the default model is not bundled with this install ({bundled!r} is missing)")
    return bundled


def sniff(path: str) -> str:
    """'checkpoint' | 'rosinality' | 'nvidia-tf' | 'nvlabs-pkl'; ValueError for anything else."""
    from .importers.rosinality import is_torch_file  # no torch import at module level
    from .importers.tf_pkl import is_tf_pickle

    if is_checkpoint(path):
        return "checkpoint"
    if is_torch_file(path):
        return "rosinality"
    if is_tf_pickle(path):
        return "nvidia-tf"
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == PICKLE_MAGIC:
        return "nvlabs-pkl"
    raise ValueError(f"path: {path!r} is not a model file this SDK reads: a stylegan-sdk checkpoint "
                     f"(.safetensors), an NVlabs network pickle (PyTorch or TensorFlow .pkl) or a rosinality "
                     f"checkpoint (.pt / .model)")


def read_model(path: str | os.PathLike, key: str = "G_ema", step: int | None = None) -> Checkpoint:
    """Config + weights (+ metadata) from any supported model file, in our format.

    key: the network in an NVlabs snapshot (G_ema, G) or a rosinality StyleGAN v1 checkpoint
    (g_running, generator; G_ema means g_running). TensorFlow pickles always give Gs and rosinality
    StyleGAN2 files g_ema (the weights' moving averages): key G_ema (or Gs / g_ema). step: rosinality
    v1 output resolution 4 * 2**step (None: deepest).
    """
    path = resolve_model(path, backend="torch")
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such model file {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"path: {path!r} is a folder but not an exported model (no model.json); "
                         f"expected a checkpoint, a .pkl file or an exported folder")
    kind = sniff(path)
    if kind == "checkpoint":
        return load_checkpoint(path)
    if kind == "rosinality":
        from .importers.rosinality import import_torch_checkpoint

        return import_torch_checkpoint(path, key=key, step=step)
    if kind == "nvidia-tf":
        from .importers.nvidia_tf import import_tf_pickle

        if key not in ("G_ema", "Gs"):
            raise ValueError(f"key: a TensorFlow pickle is read for its Gs (the generator's moving average), "
                             f"not {key!r}; use key='G_ema' or 'Gs'")
        if step is not None:
            raise ValueError("step: only for rosinality StyleGAN v1 checkpoints")
        return import_tf_pickle(path)
    from .importers.nvlabs import import_pickle

    return import_pickle(path, key=key)


def load(
    path: str | os.PathLike,
    backend: str = "auto",
    device: str = "cpu",
    key: str = "G_ema",
    batch_size: int = 16,
    step: int | None = None,
    fp16: bool = False,
    compile: bool = False,
) -> Generator:
    """Load a generator from a model file (torch backend) or an exported folder (onnxruntime / tensorrt);
    "default" is the bundled emoji model.

    backend "auto": torch for model files, onnxruntime for exported folders. device: "cpu", "cuda",
    "cuda:N" or "auto". fp16 / compile: the torch backend's float16 synthesis (CUDA) and
    torch.compile fast path; exported models fix their precision when the engine is built.
    """
    from .backends.registry import REGISTRY, backend_class

    if backend not in (*REGISTRY, "auto"):
        raise ValueError(f"backend: unknown backend {backend!r} (choose from {sorted(REGISTRY)} or 'auto')")
    path = resolve_model(path, backend)
    if os.path.isdir(path) and is_exported_folder(path):
        name = "onnxruntime" if backend == "auto" else backend
        if name == "torch":
            raise ValueError(f"backend: {path!r} is an exported folder (no torch weights); "
                             f"use backend='onnxruntime' or 'tensorrt', or load the checkpoint it came from")
        if fp16 or compile:
            raise ValueError("fp16/compile: options of the torch backend; an exported folder's precision is set "
                             "when its TensorRT engines are built (export/to_trt.py --fp16)")
        exported = read_exported(path)
        return Generator(backend_class(name)(exported, device=device), batch_size=batch_size)
    ckpt = read_model(path, key=key, step=step)
    if backend not in ("auto", "torch"):
        raise ValueError(f"backend: {backend!r} runs exported model folders; {path!r} is a model file: "
                         f"use backend='torch', or export it first (python export/to_onnx.py)")
    cls = backend_class("torch")
    backend_obj = cls(ckpt.config, ckpt.tensors, device=device, source=path, fp16=fp16, compile=compile)
    return Generator(backend_obj, batch_size=batch_size)
