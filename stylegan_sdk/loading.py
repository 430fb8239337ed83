"""`sg.load(path)`: any supported model file -> a `Generator` on a backend.

Sources, told apart by their first bytes, never by running anything in them:
- our checkpoint (safetensors + JSON config header),
- an official NVlabs PyTorch network pickle (`network-snapshot-*.pkl`, StyleGAN2-ADA / StyleGAN3),
  through the allow-list unpickler,
- an NVIDIA TensorFlow pickle (`karras2019stylegan-*.pkl`, `stylegan2-*-config-f.pkl`), through its
  own allow-list unpickler (the TF source inside is never run),
- a rosinality checkpoint: style-based-gan-pytorch (StyleGAN v1) or stylegan2-pytorch (`550000.pt`,
  converted `stylegan2-ffhq-config-f.pt`), torch.load with weights_only=True,
- an exported folder (model.json + ONNX graphs / TensorRT engines), run without torch,
- `triton://HOST[:PORT]/NAME`: a model pair on a Triton Inference Server (stylegan export triton).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .backends.registry import REGISTRY, backend_class
from .config import PRECISIONS, GeneratorConfig
from .editing.directions import Directions, directions_from_bytes, load_directions
from .formats.checkpoint import Checkpoint, is_checkpoint, load_checkpoint
from .formats.exported import ExportedModel, is_exported_folder, read_exported
from .formats.triton import is_triton_url
from .generator import Generator
from .importers.nvidia_tf import import_tf_pickle, is_tf_pickle
from .importers.rosinality import import_torch_checkpoint, is_torch_file
from .version import install_hint

PICKLE_MAGIC = b"\x80"
DEFAULT_MODEL = "default"
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_model")
DEFAULT_CHECKPOINT = os.path.join(DEFAULT_DIR, "emoji.safetensors")
DEFAULT_EXPORT = os.path.join(DEFAULT_DIR, "emoji_onnx")
# The direction sets the bundled export carries, as files beside the bundled checkpoint.
DEFAULT_DIRECTIONS = {name: os.path.join(DEFAULT_DIR, "directions", f"{name}.safetensors")
                      for name in ("sefa", "ganspace", "attributes")}
# backend="auto" on the CPU: OpenVINO from this resolution up (when installed), ONNX Runtime below it,
# from the side-by-side measurements in benchmarks/RESULTS.md ("Choosing the CPU backend").
OPENVINO_FROM_RESOLUTION = 256


def resolve_model(path: str | os.PathLike, backend: str = "auto") -> str:
    """'default' -> the bundled emoji model (its ONNX folder, or its checkpoint for backend 'torch')."""
    path = os.fspath(path)
    if path != DEFAULT_MODEL or os.path.exists(path):
        return path
    bundled = DEFAULT_CHECKPOINT if backend == "torch" else DEFAULT_EXPORT
    if not os.path.exists(bundled):
        raise FileNotFoundError(f"path: the default model is not bundled with this install ({bundled!r} is missing)")
    return bundled


MODEL_KINDS = ("checkpoint", "nvlabs-pkl", "nvidia-tf", "rosinality", "exported", "triton")


def model_kind(path: str | os.PathLike, backend: str = "auto") -> tuple[str, str]:
    """What a model argument names, the one resolution every command and `sg.load` use: (kind, path), kind
    one of MODEL_KINDS, path with "default" resolved to the bundled model. FileNotFoundError when there is
    nothing at the path, ValueError (naming `path`) when it is not a model."""
    if is_triton_url(path):
        return "triton", os.fspath(path)
    path = resolve_model(path, backend)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such model file or exported folder {path!r}")
    if os.path.isdir(path):
        if not is_exported_folder(path):
            raise ValueError(f"path: {path!r} is a folder without a model.json, so not an exported model; "
                             f"expected a model file (.safetensors, .pkl, .pt) or an exported folder")
        return "exported", path
    return sniff(path), path


def sniff(path: str) -> str:
    """'checkpoint' | 'rosinality' | 'nvidia-tf' | 'nvlabs-pkl'; ValueError for anything else."""
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
    kind, path = model_kind(path, backend="torch")
    if kind == "exported":
        raise ValueError(f"path: {path!r} is an exported model (ONNX graphs + model.json), which holds no "
                         f"checkpoint to read: use the model file it was exported from (sg.load runs the folder)")
    if kind == "triton":
        raise ValueError(f"path: {path!r} is a model on a Triton server, which holds no checkpoint to read: use "
                         f"the model file it was exported from (sg.load runs the address)")
    return _read_file(kind, path, key, step)


def _read_file(kind: str, path: str, key: str, step: int | None) -> Checkpoint:
    """A model file of a known kind (model_kind) -> Checkpoint."""
    if kind == "checkpoint":
        return load_checkpoint(path)
    if kind == "nvidia-tf":
        if key not in ("G_ema", "Gs"):
            raise ValueError(f"key: a TensorFlow pickle is read for its Gs (the generator's moving average), "
                             f"not {key!r}; use key='G_ema' or 'Gs'")
        if step is not None:
            raise ValueError("step: only for rosinality StyleGAN v1 checkpoints")
        return import_tf_pickle(path)
    try:  # the NVlabs and rosinality readers need torch, an optional dependency
        if kind == "rosinality":
            return import_torch_checkpoint(path, key=key, step=step)
        from .importers.nvlabs import import_pickle

        return import_pickle(path, key=key)
    except ImportError as e:
        raise ImportError(f"path: {path!r} is read with torch, which cannot be imported ({e}); install it with: "
                          f"{install_hint('torch')}", name="torch") from e


def load(
    path: str | os.PathLike,
    backend: str = "auto",
    device: str = "cpu",
    key: str = "G_ema",
    batch_size: int = 16,
    step: int | None = None,
    precision: str | None = None,
    compile: bool = False,
    fp16: bool = False,
    directions: Mapping[str, str | os.PathLike | Directions] | None = None,
) -> Generator:
    """Load a generator from a model file (torch backend), an exported folder (onnxruntime / openvino /
    tensorrt) or a Triton address `triton://HOST[:PORT]/NAME` (triton); "default" is the bundled emoji model.

    backend "auto": torch for model files; for exported folders on the CPU the fastest fp32 runtime
    installed for the model's size (`auto_backend`), OpenVINO for precision "bf16", ONNX Runtime on CUDA.
    `G.info.backend` says which. device: "cpu", "cuda", "cuda:N" or "auto".
    precision: "fp32" (None: the backend's default, fp32; TensorRT: what its engines were built with),
    "fp16" (CUDA: torch, TensorRT engines built with --fp16), "bf16" (CPUs with bf16 instructions:
    OpenVINO); `G.info.precision` says what runs. fp16=True is precision="fp16". compile: the torch
    backend's torch.compile fast path. directions: direction sets to edit with ({name: file or
    Directions}), beside the ones an exported folder carries; `G.directions` lists them all.
    """
    if backend not in (*REGISTRY, "auto"):
        raise ValueError(f"backend: unknown backend {backend!r} (choose from {sorted(REGISTRY)} or 'auto')")
    precision = check_precision(precision, fp16)
    if backend == "triton" and not is_triton_url(path):
        raise ValueError(f"backend: 'triton' runs models on a Triton server: pass a triton://HOST:PORT/NAME address "
                         f"(stylegan export triton makes the models), not {os.fspath(path)!r}")
    given = _given_directions(directions)
    kind, path = model_kind(path, backend)
    if kind == "triton":
        if backend not in ("auto", "triton") or compile:
            raise ValueError(f"backend: {path!r} is a Triton address: use backend='triton' or 'auto'"
                             + (" (compile is an option of the torch backend)" if compile else ""))
        backend_obj = backend_class("triton")(path, device=device, precision=precision)
        try:
            sets = _merged_directions(path, backend_obj.directions, given)
        except BaseException:
            backend_obj.close()
            raise
        return Generator(backend_obj, batch_size=batch_size, directions=sets, source=path)
    if kind == "exported":
        if backend == "torch":
            raise ValueError(f"backend: {path!r} is an exported folder (no torch weights); use backend="
                             f"'onnxruntime', 'openvino' or 'tensorrt', or load the checkpoint it came from")
        if compile:
            raise ValueError("compile: an option of the torch backend (exported folders are compiled by their runtime)")
        exported = read_exported(path)
        name = auto_backend(exported.config, device, precision) if backend == "auto" else backend
        sets = _merged_directions(path, exported_directions(exported), given)
        return Generator(backend_class(name)(exported, device=device, precision=precision), batch_size=batch_size,
                         directions=sets, source=path)
    ckpt = _read_file(kind, path, key, step)
    if backend not in ("auto", "torch"):
        raise ValueError(f"backend: {backend!r} runs exported model folders; {path!r} is a model file: "
                         f"use backend='torch', or export it first (stylegan export onnx)")
    cls = backend_class("torch")
    backend_obj = cls(ckpt.config, ckpt.tensors, device=device, source=path, precision=precision, compile=compile)
    if os.path.abspath(path) == DEFAULT_CHECKPOINT:   # the bundled checkpoint has the same sets as its export
        given = _merged_directions(path, _given_directions(DEFAULT_DIRECTIONS), given)
    return Generator(backend_obj, batch_size=batch_size, directions=given, source=path)


def _merged_directions(path: str, shipped: dict[str, Directions], given: dict[str, Directions]
                       ) -> dict[str, Directions]:
    """The sets a model ships and the ones given to sg.load; ValueError naming `directions` if names clash."""
    if set(shipped) & set(given):
        raise ValueError(f"directions: {path!r} already carries sets named {sorted(set(shipped) & set(given))}; "
                         f"give yours other names")
    return {**shipped, **given}


def _given_directions(directions: Mapping[str, str | os.PathLike | Directions] | None) -> dict[str, Directions]:
    """{name: file or Directions} -> {name: Directions}; the Generator checks them against the model."""
    if directions is None:
        return {}
    if not isinstance(directions, Mapping):
        raise ValueError(f"directions: expected a map {{name: direction set file or Directions}}, got "
                         f"{type(directions).__name__}")
    return {name: d if isinstance(d, Directions) else load_directions(d) for name, d in directions.items()}


DIRECTIONS_KEY = "directions"   # model.json: {set name: file name} of the direction sets shipped with the model


def exported_directions(exported: ExportedModel) -> dict[str, Directions]:
    """The direction sets an exported folder carries (model.json "directions"), each file hash-checked."""
    listed = exported.manifest.get(DIRECTIONS_KEY) or {}
    if not isinstance(listed, dict):
        raise ValueError(f"{exported.folder}: model.json {DIRECTIONS_KEY!r} must map set names to file names")
    return {name: directions_from_bytes(exported.read_bytes(file), f"{exported.folder}/{file}")
            for name, file in listed.items()}


def check_precision(precision: str | None, fp16: bool = False) -> str | None:
    """precision (None = the backend's default) with the fp16=True alias folded in; ValueError if unknown."""
    if fp16:
        if precision not in (None, "fp16"):
            raise ValueError(f"fp16: fp16=True means precision='fp16', but precision={precision!r} was given")
        precision = "fp16"
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision: must be one of {PRECISIONS} (or None for the backend's default), "
                         f"got {precision!r}")
    return precision


def auto_backend(config: GeneratorConfig, device: str, precision: str | None) -> str:
    """The backend "auto" picks for an exported folder (no surprises: `G.info.backend` reports it).

    bf16 -> openvino (the one that has it); fp16 -> tensorrt (engines built with --fp16); other devices
    than the CPU -> onnxruntime (CUDA); CPU fp32 -> openvino from OPENVINO_FROM_RESOLUTION px up when it
    is installed (as fast or faster there), onnxruntime below it (faster on small models) or without it.
    """
    if precision == "bf16":
        return "openvino"
    if precision == "fp16":
        return "tensorrt"
    if device != "cpu":
        return "onnxruntime"
    if config.img_resolution >= OPENVINO_FROM_RESOLUTION and _installed("openvino"):
        return "openvino"
    return "onnxruntime"


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
