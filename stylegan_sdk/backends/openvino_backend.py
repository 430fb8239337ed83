"""OpenVINO backend: an exported folder's two ONNX graphs on the CPU, in fp32 or (CPUs with bfloat16) bf16. No torch.

Each model is built in memory from the graph's bytes as `ExportedModel.read_bytes` returns them (sha256
checked in the same read), through OpenVINO's ONNX frontend only: OpenVINO is never given a path, so it
opens no file of the folder (or any other). A graph must be self-contained: one that keeps tensors in
external data files is refused (`onnx_uses_external_data`) before OpenVINO sees it. The inputs/outputs
each model declares are then checked against the config (`check_graph_io`, all float32) before compiling.

precision: "fp32" pins INFERENCE_PRECISION_HINT to f32 (the CPU plugin would otherwise run bf16 on CPUs with
AMX / AVX512-BF16); "bf16" asks for bf16 and is refused on a CPU without bfloat16 support (the plugin
would silently run fp32). bf16 applies to the synthesis graph only: the mapping network stays fp32. It costs
a few MFLOP per sample against the synthesis' GFLOPs, and its w feeds every layer. With the mapping in bf16 too, a
random config-f-like 64 px model's uint8 images were 1.24 levels from fp32 on average (max 11); with it in fp32,
0.83 (max 9), on an AMD EPYC with AVX512-BF16. Calls are serialised per model (an infer request is not
thread-safe); one call uses the CPU's cores.
"""

from __future__ import annotations

import functools
import io
import os
import threading

import numpy as np
import openvino as ov
import openvino.frontend as ov_frontend
import openvino.properties as ov_props
import openvino.properties.hint as ov_hints

from ..formats.exported import (
    ExportedModel,
    check_graph_io,
    graph_io,
    read_exported,
)
from .base import Backend
from .host_feed import SynthesisFeed, mapping_feed, self_contained_graph

PRECISIONS = ("fp32", "bf16")                  # what `precision=` accepts on this backend
_OV_TYPE = {"fp32": ov.Type.f32, "bf16": ov.Type.bf16}
# What OpenVINO raises for a graph it cannot convert or compile (the frontend's own failures derive from Exception).
GRAPH_ERRORS = (RuntimeError, ov_frontend.GeneralFailure, ov_frontend.OpConversionFailure,
                ov_frontend.OpValidationFailure, ov_frontend.NotImplementedFailure, ov_frontend.InitializationFailure)


@functools.lru_cache(maxsize=1)
def _core() -> ov.Core:
    return ov.Core()


@functools.lru_cache(maxsize=1)
def cpu_capabilities() -> tuple[str, ...]:
    """The CPU plugin's OPTIMIZATION_CAPABILITIES on this machine, e.g. ('FP32', 'INT8', 'BIN', 'EXPORT_IMPORT')."""
    return tuple(str(c) for c in _core().get_property("CPU", ov_props.device.capabilities()))


def cpu_precisions() -> tuple[str, ...]:
    """The precisions this backend can run here: ('fp32',) or ('fp32', 'bf16') on CPUs with bfloat16."""
    return ("fp32", "bf16") if "BF16" in cpu_capabilities() else ("fp32",)


def check_device(device: str) -> str:
    """'cpu' or 'auto' -> 'cpu'; ValueError for CUDA (OpenVINO's GPU plugin is for Intel GPUs) or anything else."""
    if device in ("cpu", "auto"):
        return "cpu"
    if isinstance(device, str) and (device == "cuda" or device.startswith("cuda:")):
        raise ValueError(f"device: the openvino backend runs on the CPU here (OpenVINO's GPU plugin is for Intel "
                         f"GPUs, not CUDA), got {device!r}: use device='cpu', or backend 'onnxruntime' / 'tensorrt' "
                         f"on an NVIDIA GPU")
    raise ValueError(f"device: the openvino backend accepts 'cpu' or 'auto', got {device!r}")


def check_precision(precision: str | None) -> str:
    """precision (None = 'fp32') must be one of PRECISIONS, and 'bf16' needs a CPU with bfloat16 support;
    ValueError otherwise."""
    if precision is None:
        return "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision: the openvino backend accepts {' or '.join(map(repr, PRECISIONS))}, "
                         f"got {precision!r}")
    if precision == "bf16" and "bf16" not in cpu_precisions():
        offers = ", ".join(c for c in cpu_capabilities() if c != "EXPORT_IMPORT")
        raise ValueError(f"precision: 'bf16' needs a CPU with bfloat16 support (AVX512-BF16 or AMX); this CPU "
                         f"offers {offers}: use precision='fp32'")
    return precision


class OpenVinoBackend(Backend):
    name = "openvino"

    def __init__(self, exported: ExportedModel | str | os.PathLike, device: str = "cpu", precision: str | None = "fp32",
                 threads: int = 0) -> None:
        device = check_device(device)
        self.precision = check_precision(precision)
        if type(threads) is not int or threads < 0:
            raise ValueError(f"threads: must be an int >= 0 (0 = all cores), got {threads!r}")
        model = exported if isinstance(exported, ExportedModel) else read_exported(exported)
        # LATENCY: one stream whose threads use all the cores, for one call at a time (the server's batcher runs
        # one batch per model at a time). THROUGHPUT (several streams) ran one call ~2x slower at batch 1 and 8
        # (config-f 256 px); no hint / NUM_STREAMS 1 matched LATENCY. f32 is pinned: on AMX / AVX512-BF16 CPUs the
        # plugin would otherwise choose bf16.
        properties = {ov_hints.performance_mode(): ov_hints.PerformanceMode.LATENCY}
        if threads:
            properties[ov_props.inference_num_threads()] = threads
        # The mapping network always runs in fp32 (module docstring: its error reaches every layer, for ~nothing).
        self.mapping = _Network(model, "mapping", {**properties, ov_hints.inference_precision(): ov.Type.f32})
        self.synthesis = _Network(model, "synthesis",
                                  {**properties, ov_hints.inference_precision(): _OV_TYPE[self.precision]})
        super().__init__(model.config, model.w_avg, device)
        self.exported = model
        self._feed = SynthesisFeed(model.config, model.gain_per_row)

    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        return self.mapping.run(mapping_feed(self.config, z, c))

    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                   transform: np.ndarray | None = None) -> np.ndarray:
        return self.synthesis.run(self._feed(ws, noise_mode, noise, transform))

    def close(self) -> None:
        self.mapping = self.synthesis = None  # type: ignore[assignment]


class _Network:
    """One graph compiled for the CPU, with one infer request (any batch: the batch axis stays dynamic)."""

    def __init__(self, model: ExportedModel, graph: str, properties: dict) -> None:
        compiled = _compile(model, graph, properties)
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.lock = threading.Lock()  # an infer request runs one call at a time

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        with self.lock:
            # share_inputs: no copy of the (contiguous float32) inputs; outputs are copied out of the request.
            return self.request.infer(feed, share_inputs=True, share_outputs=False)[0]


def _shape(port: ov.Output) -> list[int | None] | None:
    """A port's shape as check_graph_io reads it: static dims as ints, dynamic ones None; None for a dynamic rank."""
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic:
        return None
    return [d.get_length() if d.is_static else None for d in shape]


def _port_name(port: ov.Output, wanted: set[str]) -> str:
    """The port's tensor name: the one the config expects when the port carries several, else any (sorted)."""
    names = set(port.get_names())
    return min(names & wanted) if names & wanted else (min(names) if names else "")


def _compile(model: ExportedModel, graph: str, properties: dict) -> ov.CompiledModel:
    """The graph's hash-checked bytes, read as ONNX in memory, checked against the config, compiled for the CPU."""
    where, data = self_contained_graph(model, graph)
    try:
        frontend = ov_frontend.FrontEndManager().load_by_framework("onnx")
        network = frontend.convert(frontend.load(io.BytesIO(data)))  # the ONNX frontend only; no path anywhere
    except GRAPH_ERRORS as e:
        reason = " ".join(str(e).split())[:300]
        raise ValueError(f"{where}: OpenVINO cannot load this graph ({reason})") from None
    want_in, want_out = (set(names) for names in graph_io(model.config)[graph])
    inputs = {_port_name(p, want_in): p for p in network.inputs}
    outputs = {_port_name(p, want_out): p for p in network.outputs}
    if len(inputs) != len(network.inputs) or len(outputs) != len(network.outputs):
        raise ValueError(f"{where}: the {graph} graph has unnamed or repeated input / output names")
    check_graph_io(where, graph, model.config, {k: _shape(p) for k, p in inputs.items()},
                   {k: _shape(p) for k, p in outputs.items()}, gain_per_row=model.gain_per_row)
    for name, port in (*inputs.items(), *outputs.items()):
        if port.get_element_type() != ov.Type.f32:
            raise ValueError(f"{where}: {graph} graph tensor {name!r} is {port.get_element_type().get_type_name()}, "
                             f"expected f32")
    try:
        return _core().compile_model(network, "CPU", properties)
    except GRAPH_ERRORS as e:
        reason = " ".join(str(e).split())[:300]
        raise ValueError(f"{where}: OpenVINO cannot compile this graph for the CPU ({reason})") from None
