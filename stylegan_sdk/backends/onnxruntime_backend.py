"""ONNX Runtime backend: an exported folder's two graphs, on CPU or (onnxruntime-gpu) CUDA. No torch."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

from ..exported import NOISE_GAIN_INPUT, ExportedModel, noise_input_names, read_exported
from .base import Backend


def providers_for(device: str) -> list[str]:
    """'cpu' -> CPU; 'cuda' / 'cuda:N' -> CUDA (error if this onnxruntime has none); 'auto' -> CUDA if present."""
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if has_cuda else ["CPUExecutionProvider"]
    if device == "cuda" or device.startswith("cuda:"):
        if not has_cuda:
            raise ImportError("device 'cuda' on ONNX Runtime needs the CUDA build: pip install onnxruntime-gpu")
        return ["CUDAExecutionProvider"]
    raise ValueError(f"device: must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, exported: ExportedModel | str | os.PathLike, device: str = "cpu", threads: int = 0) -> None:
        model = exported if isinstance(exported, ExportedModel) else read_exported(exported)
        providers = providers_for(device)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        provider_options = None
        if providers[0] == "CUDAExecutionProvider" and device.startswith("cuda:"):
            provider_options = [{"device_id": int(device.split(":", 1)[1])}] + [{}] * (len(providers) - 1)
        graphs = model.manifest["graphs"]

        def session(name: str) -> ort.InferenceSession:
            return ort.InferenceSession(model.path(graphs[name]["file"]), sess_options=opts,
                                        providers=providers, provider_options=provider_options)

        self.mapping = session("mapping")
        self.synthesis = session("synthesis")
        used = self.synthesis.get_providers()[0]
        super().__init__(model.config, model.w_avg, "cuda" if used == "CUDAExecutionProvider" else "cpu")
        self.exported = model
        self._noise_names = noise_input_names(model.config)
        self._zeros: dict[int, np.ndarray] = {}

    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        feed = {"z": np.ascontiguousarray(z, np.float32)}
        if self.config.c_dim > 0:
            feed["c"] = np.ascontiguousarray(c, np.float32)
        return self.mapping.run(None, feed)[0]

    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None) -> np.ndarray:
        n = ws.shape[0]
        feed = {"ws": np.ascontiguousarray(ws, np.float32),
                NOISE_GAIN_INPUT: np.array([1.0 if noise_mode == "const" else 0.0], np.float32)}
        for k, (name, res) in enumerate(zip(self._noise_names, self.config.noise_resolutions)):
            feed[name] = (np.ascontiguousarray(noise[k], np.float32) if noise_mode == "random" and noise is not None
                          else self._zero_noise(n, res))
        return self.synthesis.run(None, feed)[0]

    def _zero_noise(self, n: int, res: int) -> np.ndarray:
        """Zero noise [n, 1, res, res]: a view of one buffer per resolution, grown to the largest batch seen."""
        buf = self._zeros.get(res)
        if buf is None or buf.shape[0] < n:
            buf = self._zeros[res] = np.zeros([n, 1, res, res], np.float32)
        return buf[:n]

    def close(self) -> None:
        self.mapping = self.synthesis = None  # type: ignore[assignment]
