"""Build TensorRT engines from an exported folder: DIR/mapping.plan, DIR/synthesis.plan. Needs tensorrt + a GPU.

Each ONNX graph is parsed by TensorRT's ONNX parser and built with one optimisation profile over the
batch axis (every input whose first axis is dynamic: z, c, ws, noise_const_gain, the noise inputs
and StyleGAN3's transform; format_version "1" folders' static `noise_const_gain` [1] needs none).
With fp16 the layers may run in half precision while the inputs and outputs stay float32. A timing
cache in the output folder makes rebuilds fast. The plans are written atomically and recorded, with
their sha256, in model.json under `engines` and `files`.

An engine runs only on the GPU model and TensorRT version that built it; `engines` records both.
"""

from __future__ import annotations

import functools
import os
import shutil
from typing import Any

from ..backends.tensorrt_runtime import (
    NO_GPU,
    TENSORRT_MISSING,
    NoGPUError,
    gpu_name,
    import_tensorrt,
    require_gpu,
    trt_logger,
)
from ..formats.exported import MANIFEST, read_exported, write_manifest
from ..formats.fileio import atomic_write_bytes, atomic_write_with, default_dir_mode

MAPPING_PLAN = "mapping.plan"
SYNTHESIS_PLAN = "synthesis.plan"
TIMING_CACHE = "timing.cache"


# ----------------------------------------------------------------------------
# Arguments


def check_build_args(min_batch: int, opt_batch: int, max_batch: int, workspace_gb: float) -> None:
    """1 <= min_batch <= opt_batch <= max_batch, workspace_gb > 0; ValueError naming the argument."""
    for name, value in (("min_batch", min_batch), ("opt_batch", opt_batch), ("max_batch", max_batch)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}: must be an integer, got {value!r}")
    if min_batch < 1:
        raise ValueError(f"min_batch: must be >= 1, got {min_batch}")
    if opt_batch < min_batch:
        raise ValueError(f"opt_batch: must be >= min_batch ({min_batch}), got {opt_batch}")
    if max_batch < opt_batch:
        raise ValueError(f"max_batch: must be >= opt_batch ({opt_batch}), got {max_batch}")
    if isinstance(workspace_gb, bool) or not isinstance(workspace_gb, (int, float)) or not workspace_gb > 0:
        raise ValueError(f"workspace_gb: must be a number > 0, got {workspace_gb!r}")


# ----------------------------------------------------------------------------
# Build


def build_engines(
    folder: str | os.PathLike,            # an exported folder (stylegan export onnx)
    out_dir: str | os.PathLike | None = None,  # where the engines go (default: folder itself)
    fp16: bool = False,                   # let layers run in half precision (I/O stays float32)
    min_batch: int = 1,                   # the batch range the engines accept
    opt_batch: int = 8,                   # the batch size TensorRT tunes for
    max_batch: int = 32,
    workspace_gb: float = 4.0,            # scratch GPU memory TensorRT may use while building / running
    timing_cache: str | os.PathLike | None = None,  # default: OUT/timing.cache, read if present, then saved
) -> dict[str, Any]:
    """Build mapping.plan and synthesis.plan into out_dir and record them in its model.json; the `engines` entry."""
    check_build_args(min_batch, opt_batch, max_batch, workspace_gb)
    src = read_exported(folder)
    out = os.path.abspath(os.fspath(out_dir)) if out_dir is not None else os.path.abspath(src.folder)
    same = os.path.exists(out) and os.path.samefile(out, src.folder)
    if not same:
        if os.path.exists(out) and not os.path.isdir(out):
            raise ValueError(f"out: {out!r} exists and is not a folder")
        if not os.path.isdir(os.path.dirname(out)):
            raise FileNotFoundError(f"out: folder {os.path.dirname(out)!r} does not exist")
    cache_path = os.path.join(out, TIMING_CACHE) if timing_cache is None else os.path.abspath(os.fspath(timing_cache))
    if timing_cache is not None and not os.path.isdir(os.path.dirname(cache_path)):
        raise FileNotFoundError(f"timing_cache: folder {os.path.dirname(cache_path)!r} does not exist")

    trt = import_tensorrt()
    require_gpu()
    if fp16 and not hasattr(trt.BuilderFlag, "FP16"):
        raise ValueError(f"fp16: TensorRT {trt.__version__} has no FP16 builder flag "
                         f"(strongly typed only); build fp16 engines with TensorRT 10")

    graphs = src.manifest["graphs"]
    workspace = int(workspace_gb * (1 << 30))
    batch = (min_batch, opt_batch, max_batch)
    logger = trt_logger(trt)
    try:
        builder = trt.Builder(logger)  # fails (nullptr) where CUDA cannot be initialised
    except (TypeError, RuntimeError):
        raise NoGPUError(NO_GPU) from None
    cache = _load_timing_cache(builder.create_builder_config(), cache_path)
    plans = {graph: _build_plan(trt, builder, logger, src.path(graphs[graph]["file"]), fp16, batch, workspace, cache)
             for graph in ("mapping", "synthesis")}  # the shared cache collects both builds' timings

    # Write: the folder (copies of the graphs), the plans, the timing cache, then model.json last.
    old_engine_files = set((src.engines.get("plans") or {}).values())
    manifest = dict(src.manifest)
    manifest["files"] = {name: dict(entry) for name, entry in src.manifest.get("files", {}).items()
                         if name not in old_engine_files}
    if not same:
        _copy_graphs(src.folder, out, list(manifest["files"]))
    files = {"mapping": MAPPING_PLAN, "synthesis": SYNTHESIS_PLAN}
    for graph, plan in plans.items():
        atomic_write_bytes(os.path.join(out, files[graph]), plan)
        manifest["files"][files[graph]] = {}
    atomic_write_bytes(cache_path, bytes(cache.serialize()))
    engines = {
        "plans": files,
        "fp16": bool(fp16),
        "min_batch": min_batch,
        "opt_batch": opt_batch,
        "max_batch": max_batch,
        "workspace_bytes": workspace,
        "tensorrt": trt.__version__,
        "gpu": gpu_name(),
        "timing_cache": os.path.basename(cache_path) if os.path.dirname(cache_path) == out else cache_path,
    }
    manifest["engines"] = engines
    write_manifest(out, manifest)
    read_exported(out)  # the folder as written must verify
    return engines


def _load_timing_cache(config: Any, path: str) -> Any:
    """An ITimingCache (shared by configs) from `path` if TensorRT accepts it for this GPU, else an empty one."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            data = f.read()
        try:
            cache = config.create_timing_cache(data)
            if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
                return cache
        except Exception:  # a stale or foreign cache only costs build time
            pass
    return config.create_timing_cache(b"")


def _build_plan(trt: Any, builder: Any, logger: Any, onnx_path: str, fp16: bool,
                batch: tuple[int, int, int], workspace: int, cache: Any) -> bytes:
    """Parse one ONNX graph and build a serialized engine with one profile over the batch axis."""
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ValueError(f"{onnx_path}: TensorRT cannot parse this graph: " + " | ".join(errors or ["(no details)"]))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        for i in range(network.num_outputs):
            network.get_output(i).dtype = trt.float32  # half precision inside, float32 out
    config.set_timing_cache(cache, ignore_mismatch=False)

    profile = builder.create_optimization_profile()
    lo, opt, hi = batch
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        if tensor.dtype != trt.float32:
            raise ValueError(f"{onnx_path}: input {tensor.name!r} is {tensor.dtype}, expected float32")
        if not any(d < 0 for d in shape):
            continue  # static input (format_version "1"'s noise_const_gain)
        if shape[0] >= 0 or any(d < 0 for d in shape[1:]):
            raise ValueError(f"{onnx_path}: input {tensor.name!r} has shape {shape}; "
                             f"only the first (batch) axis may be dynamic")
        rest = shape[1:]
        profile.set_shape(tensor.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"{onnx_path}: TensorRT failed to build an engine (see its messages above)")
    return bytes(plan)


def _copy_graphs(src: str, out: str, names: list[str]) -> None:
    """Copy the listed files (ONNX graphs) of an exported folder into `out`; model.json is written later."""
    if not os.path.isdir(out):
        os.mkdir(out, default_dir_mode())
    for name in names:
        if name == MANIFEST:
            continue
        dst = os.path.join(out, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        atomic_write_with(dst, functools.partial(shutil.copyfile, os.path.join(src, name)))


__all__ = ["MAPPING_PLAN", "SYNTHESIS_PLAN", "TENSORRT_MISSING", "NoGPUError", "build_engines", "check_build_args",
           "import_tensorrt"]
