"""TensorRT backend: an exported folder's two engines (mapping.plan, synthesis.plan, built by stylegan export tensorrt).

Device memory and the CUDA stream are torch's (a CUDA build of torch is needed next to tensorrt).
Each call uploads its inputs, runs the engine and downloads the outputs on one stream of its own,
then waits for it. Zero noise (modes "const" and "none") lives on the GPU and is reused across calls;
random noise is uploaded per call. Plans are deserialized from the bytes `ExportedModel.read_bytes`
returns (sha256 checked in the same read), and the engines' tensors are checked against the config
(`check_graph_io`) before anything is allocated for them.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ..config import GeneratorConfig
from ..formats.exported import (
    NOISE_GAIN_INPUT,
    TRANSFORM_INPUT,
    ExportedModel,
    check_graph_io,
    has_input_transform,
    noise_input_names,
    read_exported,
)
from .base import Backend
from .tensorrt_runtime import import_tensorrt, trt_logger

TORCH_MISSING = ("the tensorrt backend keeps its GPU buffers in torch: pip install torch "
                 "(a CUDA build, see https://pytorch.org)")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(TORCH_MISSING) from None
    return torch


def _cuda_index(device: str) -> int | None:
    """'cuda' / 'auto' -> None (the current device), 'cuda:N' -> N; ValueError for anything else."""
    if device in ("cuda", "auto"):
        return None
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    if device == "cpu":
        raise ValueError("device: TensorRT runs on CUDA GPUs only ('cuda' or 'cuda:N'); "
                         "use backend='onnxruntime' for the CPU")
    raise ValueError(f"device: must be 'cuda', 'cuda:N' or 'auto' for TensorRT, got {device!r}")


class _Engine:
    """One deserialized engine and its execution context; tensors by name, batch range from profile 0."""

    def __init__(self, trt: Any, runtime: Any, data: bytes, path: str, built_on: str) -> None:
        self.path = path
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise ValueError(f"{path}: TensorRT {trt.__version__} cannot load this engine (engines run only on the "
                             f"TensorRT version and GPU model that built them; built on {built_on}); "
                             f"rebuild with: stylegan export tensorrt")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError(f"{path}: TensorRT could not create an execution context (out of GPU memory?)")
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.shapes: dict[str, tuple[int, ...]] = {}  # -1 for dynamic axes
        self.min_batch, self.max_batch = 1, 1 << 31
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_dtype(name) != trt.float32:
                raise ValueError(f"{path}: tensor {name!r} is {self.engine.get_tensor_dtype(name)}, expected float32")
            self.shapes[name] = tuple(int(d) for d in self.engine.get_tensor_shape(name))
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.inputs.append(name)
                if self.engine.get_tensor_shape(name)[0] < 0:  # batch axis: the profile's range
                    lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
                    self.min_batch, self.max_batch = max(self.min_batch, lo[0]), min(self.max_batch, hi[0])
            else:
                self.outputs.append(name)

    def check_batch(self, n: int) -> None:
        if not self.min_batch <= n <= self.max_batch:
            raise ValueError(f"batch: {n} is outside the batch range [{self.min_batch}, {self.max_batch}] the "
                             f"TensorRT engine was built for (rebuild with stylegan export tensorrt "
                             f"--min-batch/--max-batch, or load with a smaller batch_size)")

    def enqueue(self, torch: Any, feeds: dict[str, Any], device: Any, stream: Any) -> dict[str, Any]:
        """Bind device tensors (by input name), allocate the outputs, enqueue on `stream`; outputs by name."""
        ctx = self.context
        for name in self.inputs:
            t = feeds[name]
            if not ctx.set_input_shape(name, tuple(t.shape)):
                raise ValueError(f"{self.path}: input {name!r} of shape {tuple(t.shape)} does not fit the engine")
            ctx.set_tensor_address(name, t.data_ptr())
        outputs = {}
        for name in self.outputs:
            shape = tuple(ctx.get_tensor_shape(name))
            outputs[name] = out = torch.empty(shape, dtype=torch.float32, device=device)
            ctx.set_tensor_address(name, out.data_ptr())
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"{self.path}: TensorRT failed to run the engine")
        return outputs

    def close(self) -> None:
        self.context = None
        self.engine = None


def _engine(trt: Any, runtime: Any, model: ExportedModel, name: str, built_on: str) -> _Engine:
    """The engine in plan file `name`, deserialized from its hash-checked bytes."""
    return _Engine(trt, runtime, model.read_bytes(name), os.path.join(model.folder, name), built_on)


def _check_io(cfg: GeneratorConfig, mapping: _Engine, synthesis: _Engine, gain_per_row: bool = True) -> None:
    """The engines must take and give what the config implies (names, static dims; unused noise inputs may be gone)."""
    for graph, engine in (("mapping", mapping), ("synthesis", synthesis)):
        shapes = engine.shapes
        try:
            check_graph_io(engine.path, graph, cfg, {n: shapes[n] for n in engine.inputs},
                           {n: shapes[n] for n in engine.outputs}, optional_noise=True, gain_per_row=gain_per_row)
        except ValueError as e:
            raise ValueError(f"{e}; rebuild with stylegan export tensorrt") from None


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, exported: ExportedModel | str | os.PathLike, device: str = "cuda",
                 precision: str | None = None) -> None:
        """precision: None = what the engines were built with; "fp32" / "fp16" must match it."""
        model = exported if isinstance(exported, ExportedModel) else read_exported(exported)
        info = model.engines
        built = "fp16" if info.get("fp16") else "fp32"
        if precision is not None and precision not in ("fp32", "fp16"):
            raise ValueError(f"precision: TensorRT runs 'fp32' or 'fp16' engines, got {precision!r}")
        if precision is not None and precision != built:
            flag = " --fp16" if precision == "fp16" else ""
            raise ValueError(f"precision: {model.folder}'s TensorRT engines were built for {built!r}, not "
                             f"{precision!r}; rebuild them (stylegan export tensorrt{flag})")
        plans = info.get("plans") or {}
        if not plans.get("mapping") or not plans.get("synthesis"):
            raise ValueError(f"{model.folder}: no TensorRT engines in model.json; build them with: "
                             f"stylegan export tensorrt {model.folder} --out {model.folder}")
        index = _cuda_index(device)
        trt = import_tensorrt()
        torch = _import_torch()
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__}, "
                             f"CUDA build: {torch.version.cuda or 'no'}); the tensorrt backend needs an NVIDIA GPU "
                             f"and a CUDA build of torch")
        if index is None:
            index = torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"device: {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)")

        self._torch = torch
        self._device = torch.device("cuda", index)
        self._lock = threading.RLock()  # one execution context per engine: one call at a time
        built_on = f"{info.get('gpu', 'unknown')} with TensorRT {info.get('tensorrt', '?')}"
        with torch.cuda.device(self._device):
            self._stream = torch.cuda.Stream(device=self._device)  # not the legacy default stream
            self._runtime = trt.Runtime(trt_logger(trt))
            self._mapping = _engine(trt, self._runtime, model, plans["mapping"], built_on)
            self._synthesis = _engine(trt, self._runtime, model, plans["synthesis"], built_on)
            _check_io(model.config, self._mapping, self._synthesis, model.gain_per_row)
        super().__init__(model.config, model.w_avg, str(self._device))
        self.exported = model
        self._noise_names = noise_input_names(model.config)
        self.fp16 = built == "fp16"
        self.precision = built
        self.batch_range = (max(self._mapping.min_batch, self._synthesis.min_batch),
                            min(self._mapping.max_batch, self._synthesis.max_batch))
        self._gain_per_row = model.gain_per_row
        self._zeros: dict[int, Any] = {}  # resolution -> zero noise [n_max, 1, r, r] on the GPU
        self._gains: dict[bool, Any] = {}  # const? -> noise_const_gain [n_max, 1] (or [1]) of ones / zeros

    # -- the two calls ----------------------------------------------------------
    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        n = z.shape[0]
        self._mapping.check_batch(n)
        host = {"z": z}
        if self.config.c_dim > 0:
            host["c"] = c
        return self._run(self._mapping, host, {})

    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                   transform: np.ndarray | None = None) -> np.ndarray:
        n = ws.shape[0]
        self._synthesis.check_batch(n)
        host: dict[str, np.ndarray] = {"ws": ws}
        if has_input_transform(self.config):  # StyleGAN3: no noise; the input transform (identity if None)
            host[TRANSFORM_INPUT] = (transform if transform is not None
                                     else np.repeat(np.eye(3, dtype=np.float32)[np.newaxis], n, axis=0))
            with self._lock:
                return self._run(self._synthesis, host, {})
        random = noise_mode == "random" and noise is not None
        with self._lock:
            resident: dict[str, Any] = {NOISE_GAIN_INPUT: self._gain(n, noise_mode == "const")}
            for k, (name, res) in enumerate(zip(self._noise_names, self.config.noise_resolutions)):
                if random:
                    host[name] = noise[k]
                else:
                    resident[name] = self._zero_noise(n, res)
            return self._run(self._synthesis, host, resident)

    # -- plumbing ---------------------------------------------------------------
    def _run(self, engine: _Engine, host: dict[str, np.ndarray], resident: dict[str, Any]) -> np.ndarray:
        """Upload `host` arrays, run with them and the device-resident `resident` tensors, download the output."""
        torch = self._torch
        with self._lock, torch.cuda.device(self._device), torch.cuda.stream(self._stream):
            feeds = dict(resident)
            for name, array in host.items():
                array = np.ascontiguousarray(array, np.float32)
                feeds[name] = torch.from_numpy(array).to(self._device, non_blocking=True)
            outputs = engine.enqueue(torch, feeds, self._device, self._stream)
            result = outputs[engine.outputs[0]].to("cpu")  # queued after the engine on the same stream
            self._stream.synchronize()
        return result.numpy()

    def _zero_noise(self, n: int, res: int) -> Any:
        """Zero noise [n, 1, res, res] on the GPU: a view of one buffer per resolution, grown to the largest batch."""
        buf = self._zeros.get(res)
        if buf is None or buf.shape[0] < n:
            with self._torch.cuda.device(self._device), self._torch.cuda.stream(self._stream):
                buf = self._zeros[res] = self._torch.zeros([n, 1, res, res], dtype=self._torch.float32,
                                                           device=self._device)
        return buf[:n]

    def _gain(self, n: int, const: bool) -> Any:
        """noise_const_gain on the GPU: [n, 1] (format_version "1" folders: [1]) of ones for "const", else zeros."""
        rows = n if self._gain_per_row else 1
        buf = self._gains.get(const)
        if buf is None or buf.shape[0] < rows:
            with self._torch.cuda.device(self._device), self._torch.cuda.stream(self._stream):
                shape = [rows, 1] if self._gain_per_row else [1]
                buf = self._gains[const] = self._torch.full(shape, float(const), dtype=self._torch.float32,
                                                            device=self._device)
        return buf[:rows]

    def close(self) -> None:
        if getattr(self, "_synthesis", None) is None:
            return
        with self._lock:
            self._stream.synchronize()
            self._mapping.close()
            self._synthesis.close()
            self._mapping = self._synthesis = None  # type: ignore[assignment]
            self._runtime = None
            self._zeros.clear()
            self._gains.clear()
