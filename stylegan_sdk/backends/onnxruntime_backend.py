"""ONNX Runtime backend: an exported folder's two graphs, on CPU or (onnxruntime-gpu) CUDA. No torch.

Each session is built from the graph's bytes as `ExportedModel.read_bytes` returns them (sha256 checked
in the same read). A graph must be self-contained: one that keeps tensors in external data files is
refused (`onnx_uses_external_data`), and ONNX Runtime's folder for external data is an empty temporary
one besides, so a graph cannot make it read other files. The inputs/outputs each graph declares are
then checked against the config (`check_graph_io`) before anything runs.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
import onnxruntime as ort

from ..formats.exported import (
    ExportedModel,
    check_graph_io,
    read_exported,
)
from .base import Backend
from .host_feed import SynthesisFeed, mapping_feed, self_contained_graph

# Where ONNX Runtime looks for the external data of a graph loaded from bytes.
EXTERNAL_DATA_FOLDER_KEY = "session.model_external_initializers_file_folder_path"
FLOAT = "tensor(float)"
_errors = ort.capi.onnxruntime_pybind11_state
# What ONNX Runtime raises for a graph it cannot load (not for a missing GPU / provider failure).
GRAPH_ERRORS = (_errors.Fail, _errors.InvalidGraph, _errors.InvalidProtobuf, _errors.InvalidArgument,
                _errors.NoSuchFile, _errors.NotImplemented)


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

    def __init__(self, exported: ExportedModel | str | os.PathLike, device: str = "cpu", threads: int = 0,
                 precision: str | None = None) -> None:
        if precision not in (None, "fp32"):
            raise ValueError(f"precision: ONNX Runtime runs the exported graphs in 'fp32', not {precision!r}; 'bf16' "
                             f"runs on backend='openvino', 'fp16' on 'tensorrt' (engines built with --fp16)")
        model = exported if isinstance(exported, ExportedModel) else read_exported(exported)
        providers = providers_for(device)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        provider_options = None
        if providers[0] == "CUDAExecutionProvider" and device.startswith("cuda:"):
            provider_options = [{"device_id": int(device.split(":", 1)[1])}] + [{}] * (len(providers) - 1)
        with tempfile.TemporaryDirectory(prefix="stylegan-sdk-no-external-data-") as empty:
            opts.add_session_config_entry(EXTERNAL_DATA_FOLDER_KEY, empty)
            self.mapping = _session(model, "mapping", opts, providers, provider_options)
            self.synthesis = _session(model, "synthesis", opts, providers, provider_options)
        used = self.synthesis.get_providers()[0]
        super().__init__(model.config, model.w_avg, "cuda" if used == "CUDAExecutionProvider" else "cpu")
        self.exported = model
        self._feed = SynthesisFeed(model.config, model.gain_per_row)

    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        return self.mapping.run(None, mapping_feed(self.config, z, c))[0]

    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                   transform: np.ndarray | None = None) -> np.ndarray:
        return self.synthesis.run(None, self._feed(ws, noise_mode, noise, transform))[0]

    def close(self) -> None:
        self.mapping = self.synthesis = None  # type: ignore[assignment]


def _session(model: ExportedModel, graph: str, opts: ort.SessionOptions, providers: list[str],
             provider_options: list[dict[str, Any]] | None) -> ort.InferenceSession:
    """A session on the graph's hash-checked bytes whose inputs/outputs match the config; ValueError otherwise."""
    where, data = self_contained_graph(model, graph)
    try:
        session = ort.InferenceSession(data, sess_options=opts, providers=providers, provider_options=provider_options)
    except GRAPH_ERRORS as e:
        reason = " ".join(str(e).split())[:300]
        raise ValueError(f"{where}: ONNX Runtime cannot load this graph ({reason})") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    check_graph_io(where, graph, model.config, {i.name: i.shape for i in inputs}, {o.name: o.shape for o in outputs},
                   gain_per_row=model.gain_per_row)
    for arg in (*inputs, *outputs):
        if arg.type != FLOAT:
            raise ValueError(f"{where}: {graph} graph tensor {arg.name!r} is {arg.type}, expected {FLOAT}")
    return session
