"""The triton backend: a generator's two graphs on a Triton Inference Server, over gRPC (tritonclient).

    G = sg.load("triton://host:8001/NAME")           # Triton models NAME_mapping and NAME_synthesis
    G = sg.load("triton://host:8001/NAME?timeout=5")  # seconds per call (default 30)

The models come from stylegan export triton. What the SDK needs to know about them (config, w_avg) is read
over the same connection from their config's `stylegan_sdk_model` parameter, and checked like a
model.json: the two models must describe the same generator, and the inputs / outputs Triton reports
for each must be exactly those the config implies (`check_graph_io`), FP32, with a batch axis
(`max_batch_size` > 0, which becomes `batch_range`). Truncation, mixing, seeds, interpolation, edits and
image conversion stay in the SDK, so every `Generator` method works unchanged. Direction sets the
repository ships (the synthesis model's `stylegan_sdk_directions` parameter) become `directions`, which
sg.load hands to the Generator.

Failures are the gRPC client's errors (`stylegan_sdk.errors`): an unreachable or stopping server
-> ServerUnavailableError (a ConnectionError), a call slower than the timeout -> DeadlineExceededError (a
TimeoutError), a refused request -> InvalidArgumentError (a ValueError), a missing model ->
ModelNotFoundError. UNAVAILABLE is retried by grpc's own retry policy (a few quick attempts) first.
"""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from ..config import GeneratorConfig
from ..editing.directions import Directions
from ..errors import ClientError, InvalidArgumentError, error_for_status
from ..formats.exported import GRAPHS, check_graph_io, graph_io
from ..formats.triton import (
    DIRECTIONS_PARAMETER,
    PARAMETER,
    model_names,
    parse_url,
    read_directions_parameter,
    read_parameter,
)
from .base import Backend
from .host_feed import SynthesisFeed, mapping_feed

MAX_MESSAGE_BYTES = 1 << 30
# What the server may send per call kind: readiness, config and metadata answers are small (a config with
# the stylegan_sdk_model parameter is ~30 kB; model.json's bound); an inference answer is at most the
# largest batch's outputs (set from the config once it is read), plus room for the response's framing.
MAX_CONTROL_BYTES = 16 << 20
_INFER_SLACK_BYTES = 1 << 20
# grpc's retry policy for UNAVAILABLE (a restarting server, a dropped connection): a few quick attempts.
_SERVICE_CONFIG = json.dumps({"methodConfig": [{
    "name": [{"service": "inference.GRPCInferenceService"}],
    "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"]}}]})
_STATUS = re.compile(r"StatusCode\.([A-Z_]+)")


class TritonBackend(Backend):
    name = "triton"

    def __init__(self, url: str, device: str = "cpu", precision: str | None = None) -> None:
        if device not in ("cpu", "auto"):
            raise ValueError(f"device: a triton:// model runs where the server's instance_group puts it; "
                             f"leave device at its default, not {device!r}")
        self.address = parse_url(url)
        self.names = model_names(self.address.name)
        self._client = _connect(self.address.target, MAX_CONTROL_BYTES)  # config / metadata / readiness
        self._infer_client: triton.InferenceServerClient | None = None
        self.directions: dict[str, Directions] = {}   # the sets the synthesis model ships (sg.load passes them on)
        try:
            described = {graph: self._describe(graph) for graph in GRAPHS}
            (cfg, w_avg, used), (cfg_s, w_avg_s, used_s) = described["mapping"][:3], described["synthesis"][:3]
            if cfg != cfg_s or not np.array_equal(w_avg, w_avg_s) or used != used_s:
                raise ValueError(f"path: {self.address.url}: {self.names['mapping']} and "
                                 f"{self.names['synthesis']} describe different generators (re-export both with "
                                 f"stylegan export triton)")
            if precision not in (None, used):
                raise ValueError(f"precision: the Triton models run in {used!r} (their engines decide), "
                                 f"not {precision!r}")
        except BaseException:
            self._client.close()
            raise
        super().__init__(cfg, w_avg, "remote")
        self.precision = used
        self.batch_range = (1, min(described[g][3] for g in GRAPHS))
        # graph -> (output name, its shape without the batch axis): what every answer is checked against
        self._outputs = {graph: next(iter(graph_io(cfg)[graph][1].items())) for graph in GRAPHS}
        self._feed = SynthesisFeed(cfg)
        # Inference answers: at most the largest batch of the larger output (float32), never more than 1 GiB.
        sample = max(4 * int(np.prod(shape[1:])) for _, shape in self._outputs.values())
        self._infer_client = _connect(self.address.target, min(MAX_MESSAGE_BYTES,
                                                               self.batch_range[1] * sample + _INFER_SLACK_BYTES))

    # -- what the server says about the pair -----------------------------------------
    def _describe(self, graph: str) -> tuple[GeneratorConfig, np.ndarray, str, int]:
        """(config, w_avg, precision, max_batch_size) of one model, with its I/O checked against the config."""
        model = self.names[graph]
        where = f"{self.address.url} ({model})"
        config = self._call(f"{model}: get_model_config", self._client.get_model_config, model).config  # NOT_FOUND
        if not self._call(f"{model}: is_model_ready", self._client.is_model_ready, model):
            raise error_for_status(grpc.StatusCode.UNAVAILABLE, f"model {model!r} is not ready on the server",
                                   self.address.target, "load")
        if PARAMETER not in config.parameters:
            raise ValueError(f"{where}: the model has no {PARAMETER} parameter (not written by "
                             f"stylegan export triton)")
        cfg, w_avg, precision = read_parameter(config.parameters[PARAMETER].string_value, graph, where)
        if graph == "synthesis" and DIRECTIONS_PARAMETER in config.parameters:
            self.directions = read_directions_parameter(config.parameters[DIRECTIONS_PARAMETER].string_value, where)
        if config.max_batch_size < 1:
            raise ValueError(f"{where}: max_batch_size is {config.max_batch_size}; the SDK's models are batched "
                             f"(re-export with stylegan export triton)")
        meta = self._call(f"{model}: get_model_metadata", self._client.get_model_metadata, model)
        shapes = {kind: {t.name: [None if d < 0 else int(d) for d in t.shape] for t in tensors}
                  for kind, tensors in (("inputs", meta.inputs), ("outputs", meta.outputs))}
        check_graph_io(where, graph, cfg, shapes["inputs"], shapes["outputs"])
        for t in (*meta.inputs, *meta.outputs):
            if t.datatype != "FP32":
                raise ValueError(f"{where}: {t.name!r} is {t.datatype}, expected FP32")
        return cfg, w_avg, precision, int(config.max_batch_size)

    # -- the two calls ------------------------------------------------------------------
    def map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        return self._infer("mapping", mapping_feed(self.config, z, c), z.shape[0])

    def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                   transform: np.ndarray | None = None) -> np.ndarray:
        return self._infer("synthesis", self._feed(ws, noise_mode, noise, transform), ws.shape[0])

    def _infer(self, graph: str, feed: dict[str, np.ndarray], n: int) -> np.ndarray:
        inputs = []
        for name, array in feed.items():
            tensor = triton.InferInput(name, list(array.shape), "FP32")
            tensor.set_data_from_numpy(np.ascontiguousarray(array, np.float32))
            inputs.append(tensor)
        out, shape = self._outputs[graph]
        model = self.names[graph]
        assert self._infer_client is not None
        result = self._call(model, self._infer_client.infer, model, inputs,
                            outputs=[triton.InferRequestedOutput(out)])
        want = (n, *shape[1:])
        where = f"{self.address.url}: model {model!r} on {self.address.target}"
        # What the answer claims, checked before tritonclient reshapes its bytes (a claim of 2**40
        # elements would otherwise be numpy's "cannot reshape", naming neither model nor server).
        declared = result.get_output(out)
        if declared is None:
            raise ValueError(f"{where} answered no {out!r} output")
        claimed = tuple(int(d) for d in declared.shape)
        if claimed != want or declared.datatype != "FP32":
            raise ValueError(f"{where} answered {out!r} as {declared.datatype} {_short(claimed)}, "
                             f"expected FP32 {list(want)}")
        raw = result.get_response().raw_output_contents
        index = [o.name for o in result.get_response().outputs].index(out)
        nbytes = 4 * int(np.prod(want))
        if index >= len(raw) or len(raw[index]) != nbytes:
            got = len(raw[index]) if index < len(raw) else 0
            raise ValueError(f"{where} answered {got} bytes for {out!r} {list(want)}, expected {nbytes}")
        array = result.as_numpy(out)
        if array is None or tuple(array.shape) != want or array.dtype != np.float32:
            got = None if array is None else (tuple(array.shape), str(array.dtype))
            raise error_for_status(grpc.StatusCode.INTERNAL, f"{model} answered {got} for {out!r}, expected "
                                   f"{want} float32", self.address.target, model)
        if not np.isfinite(array).all():
            raise ValueError(f"{where} answered NaN or Inf in {out!r} ({int(np.count_nonzero(~np.isfinite(array)))} "
                             f"of {array.size} values): refused rather than passed on as an image")
        return array

    def _call(self, method: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """fn(*args, client_timeout=...) with Triton's errors turned into the client's ClientError subclasses."""
        try:
            return fn(*args, client_timeout=self.address.timeout_s, **kwargs)
        except InferenceServerException as e:
            error = _translate(e, self.address.target, method)
            control = self._infer_client is None or fn != self._infer_client.infer  # config / metadata / ready
            if control and error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in error.details:
                raise InvalidArgumentError(  # grpc's receive limit on a config / metadata answer
                    f"{self.address.url}: {method} on {self.address.target} answered more than "
                    f"{MAX_CONTROL_BYTES} bytes (a model's config and metadata take ~30 kB): refused",
                    error.code, error.details) from None
            raise error from None

    def close(self) -> None:
        self._client.close()
        if self._infer_client is not None:
            self._infer_client.close()

    def __repr__(self) -> str:
        return f"TritonBackend({self.address.url!r})"


def _connect(target: str, max_receive: int) -> triton.InferenceServerClient:
    """A gRPC client of `target` that accepts answers of at most max_receive bytes (grpc refuses larger
    ones with RESOURCE_EXHAUSTED before they are decoded), with grpc's retries for UNAVAILABLE."""
    return triton.InferenceServerClient(target, channel_args=[
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", max_receive),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", _SERVICE_CONFIG)])


def _short(shape: tuple[int, ...]) -> str:
    """A claimed shape in a message: at most 8 dims shown."""
    return str(list(shape[:8]))[:-1] + (f", ... ({len(shape)} dims)]" if len(shape) > 8 else "]")


def _translate(e: InferenceServerException, target: str, method: str) -> ClientError:
    """tritonclient's exception (status 'StatusCode.UNAVAILABLE', ...) -> the client's error for that status."""
    match = _STATUS.search(str(e.status() or ""))
    code = getattr(grpc.StatusCode, match.group(1), grpc.StatusCode.UNKNOWN) if match else grpc.StatusCode.UNKNOWN
    details = " ".join(str(e.message() or "").split())[:500]
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgumentError(f"{method} on {target}: {details}", code, details)
    return error_for_status(code, details, target, method)
