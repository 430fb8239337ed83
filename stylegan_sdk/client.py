"""`Client` / `AsyncClient`: a remote generator (stylegan.v1.StyleGAN over gRPC) with the `Generator` API.

    import stylegan_sdk as sg
    G = sg.Client("localhost:50051", model=None, timeout=60.0, token=None, tls=None)
    imgs = G.generate([0, 1, 2], psi=0.7)          # list of PIL images, as sg.load(...).generate
    ws = G.map(sg.seed_to_z([0, 1], G.info.z_dim), psi=0.7)
    x = G.synthesize(ws, output="float")           # float32 [N, C, H, W]
    for frame in G.interpolate([0, 5, 9], num_frames=30):   # a video, frame by frame
        ...

Same method names, arguments, defaults, return types and errors as the in-process `Generator`: the
client runs the very argument checks of `stylegan_sdk.latents` / `images` before sending (the model's
sizes come from GetModelInfo, fetched once), so a bad argument raises the same ValueError with the same
text; the server checks again and answers INVALID_ARGUMENT, raised here as `InvalidArgumentError`,
a ValueError. Images travel as raw uint8 / float32 tensors and are converted here exactly as
in-process. Large requests are split into calls that fit the message limit (except random noise with a
noise_seed, whose draw spans the whole request). Imports neither torch nor any model code.

Errors (all but ValueError derive from `ClientError`, which carries the gRPC `code` and `details`):
    ValueError / InvalidArgumentError   bad argument
    ModelNotFoundError (LookupError)    the server has no model of that name
    DeadlineExceededError (TimeoutError)  the call took longer than `timeout`
    ServerUnavailableError (ConnectionError)  cannot reach the server, or it is loading / stopping
                                        (retried `retries` times with exponential backoff first)
    ServerBusyError                     the server's queue is full (RESOURCE_EXHAUSTED)
    AuthenticationError (PermissionError)  missing or wrong token
    ServerError                         anything else (INTERNAL, ...)
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from . import images, latents
from ._proto import codec, pb, pb_grpc
from .config import GeneratorConfig, ModelInfo

MIB = 1 << 20
DEFAULT_MAX_MESSAGE_BYTES = 64 * MIB
ENVELOPE_BYTES = 64 * 1024   # room for everything in a message but the rows

# ----------------------------------------------------------------------------
# Errors


class ClientError(Exception):
    """A gRPC call failed; `code` is the grpc.StatusCode, `details` the server's message."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class InvalidArgumentError(ClientError, ValueError):
    """The server refused an argument (INVALID_ARGUMENT); the text is the in-process ValueError's."""


class ModelNotFoundError(ClientError, LookupError):
    """The server serves no model of that name (NOT_FOUND)."""


class DeadlineExceededError(ClientError, TimeoutError):
    """The call did not finish within its timeout (DEADLINE_EXCEEDED)."""


class ServerUnavailableError(ClientError, ConnectionError):
    """The server cannot be reached, or is loading or shutting down (UNAVAILABLE, after the retries)."""


class ServerBusyError(ClientError):
    """The server's queue is full (RESOURCE_EXHAUSTED); retry later or slow down."""


class AuthenticationError(ClientError, PermissionError):
    """Missing or wrong bearer token (UNAUTHENTICATED / PERMISSION_DENIED)."""


class ServerError(ClientError, RuntimeError):
    """Any other failure (INTERNAL, UNKNOWN, CANCELLED, ...)."""


_ERRORS: dict[grpc.StatusCode, type[ClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: ModelNotFoundError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ServerBusyError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: AuthenticationError,
}


def translate_error(err: grpc.RpcError, target: str, method: str) -> ClientError:
    """A grpc.RpcError -> the matching ClientError (INVALID_ARGUMENT keeps the server's text unchanged)."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (err.details() if callable(getattr(err, "details", None)) else "") or ""
    cls = _ERRORS.get(code, ServerError)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        # grpc's own message size check (either side), not a busy server.
        return InvalidArgumentError(f"{method}: a message is larger than the gRPC limit ({details}); ask for fewer "
                                    f"images per call or raise max_message_bytes / --max-message-mb", code, details)
    if cls is InvalidArgumentError:
        message = details
    elif cls is DeadlineExceededError:
        message = f"{method} on {target}: no answer within the timeout ({details or code.name})"
    else:
        message = f"{method} on {target}: {code.name}: {details}"
    return cls(message, code, details)


# ----------------------------------------------------------------------------
# Channels


def _credentials(tls: Any) -> grpc.ChannelCredentials | None:
    """None / False: plaintext; True: TLS with the system roots; bytes: root certificate(s) PEM;
    a path: a PEM file of root certificates; or ready grpc.ChannelCredentials."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return grpc.ssl_channel_credentials()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    if isinstance(tls, bytes):
        return grpc.ssl_channel_credentials(root_certificates=tls)
    if isinstance(tls, (str, os.PathLike)):
        with open(tls, "rb") as f:
            return grpc.ssl_channel_credentials(root_certificates=f.read())
    raise ValueError(f"tls: expected None, True, PEM bytes, a PEM file path or grpc.ChannelCredentials, "
                     f"got {type(tls).__name__}")


def _channel_options(max_message_bytes: int, options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    # Reconnect quickly after a failed connection (grpc's default waits ~1 s and more), so the UNAVAILABLE
    # retries below reach a server that has just come up.
    return [("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000), *options]


# ----------------------------------------------------------------------------
# Request planning: argument checks + requests + decoding, shared by Client and AsyncClient (no I/O)


@dataclass(frozen=True)
class _Model:
    """What the client needs to know about a model: from GetModelInfo, fetched once."""

    info: ModelInfo
    config: GeneratorConfig
    w_avg: np.ndarray
    max_seeds: int
    max_message_bytes: int

    @classmethod
    def from_pb(cls, msg: pb.ModelInfo, client_limit: int) -> _Model:
        return cls(info=codec.model_info_from_pb(msg), config=GeneratorConfig.from_json(msg.config_json),
                   w_avg=codec.from_tensor(msg.w_avg, "w_avg"), max_seeds=msg.limits.max_seeds or 256,
                   max_message_bytes=min(msg.limits.max_message_bytes or client_limit, client_limit))

    def rows_per_call(self, bytes_per_row: int) -> int:
        return max(1, min(self.max_seeds, (self.max_message_bytes - ENVELOPE_BYTES) // max(1, bytes_per_row)))

    def image_row_bytes(self, fmt: int) -> int:
        return codec.image_bytes(fmt, self.config.img_channels, self.config.img_resolution)

    @property
    def ws_row_bytes(self) -> int:
        return self.config.num_ws * self.config.w_dim * 4


@dataclass
class _Plan:
    method: str                               # RPC name on the stub
    requests: list[Any]
    finish: Callable[[list[Any]], Any]        # responses -> the method's return value


def _check_seeds(seeds: int | str | Iterable[int]) -> list[int]:
    """latents.seed_to_z's checks without computing z (its message on a bad seed)."""
    values = latents.parse_int_list(seeds, "seeds")
    if not values:
        latents.seed_to_z(values, 1)  # raises "seeds: no seeds given"
    for s in values:
        if not 0 <= s < 2**32:
            latents.seed_to_z([s], 1)  # raises the range error
    return values


def _check_noise(noise_mode: str, noise_seed: int | None) -> int | None:
    """The noise_seed the request carries (only random noise uses it; checked as draw_noise does)."""
    if noise_mode != "random":
        return None
    if noise_seed is not None:
        latents.draw_noise([], 0, noise_seed)
    return noise_seed


def _chunks(n: int, rows: int, splittable: bool) -> list[slice]:
    if splittable and n > rows:
        return [slice(i, min(n, i + rows)) for i in range(0, n, rows)]
    return [slice(0, n)]


def _output_format(output: str) -> int:
    return pb.RAW_FLOAT32 if output == "float" else pb.RAW_UINT8


def _render(noise_mode: str, noise_seed: int | None, output: str) -> pb.RenderOptions:
    return pb.RenderOptions(noise_mode=codec.NOISE_MODE_TO_PB[noise_mode], noise_seed=noise_seed,
                            format=_output_format(output))


def _map_options(c: np.ndarray | None, psi: float, cutoff: int | None, rows: slice = slice(None)) -> pb.MapOptions:
    return pb.MapOptions(psi=psi, cutoff=cutoff, c=None if c is None else codec.to_tensor(c[rows]))


def _convert(pixels: np.ndarray, output: str) -> Any:
    """Raw float32 [N, C, H, W] or uint8 [N, H, W, C] -> the Generator's output type."""
    if output == "pil":
        return images.uint8_to_pil(pixels)
    return pixels


def _finish_images(output: str, single: bool, field: str = "images") -> Callable[[list[Any]], Any]:
    def finish(responses: list[Any]) -> Any:
        parts = [codec.images_from_pb(getattr(r, field)) for r in responses]
        out = _convert(parts[0] if len(parts) == 1 else np.concatenate(parts), output)
        return out[0] if single else out

    return finish


def plan_generate(m: _Model, name: str, seeds: Any, psi: float, cutoff: int | None, noise_mode: str, c: Any,
                  output: str, noise_seed: int | None) -> _Plan:
    """Generator.generate's checks, in its order, then GenerateRequests that fit the message limit."""
    single = isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool)
    latents.check_noise_mode(noise_mode)
    images.check_output(output)
    seed_list = _check_seeds(seeds)
    cfg = m.config
    c = latents.check_c(c, cfg.c_dim, len(seed_list))
    psi = latents.check_psi(psi)
    cutoff = latents.check_cutoff(cutoff, cfg.num_ws)
    noise_seed = _check_noise(noise_mode, noise_seed)
    fmt = _output_format(output)
    rows = m.rows_per_call(m.image_row_bytes(fmt))
    parts = _chunks(len(seed_list), rows, splittable=noise_seed is None)
    reqs = [pb.GenerateRequest(model=name, seeds=pb.SeedList(values=seed_list[part]),
                               map=_map_options(c, psi, cutoff, part), render=_render(noise_mode, noise_seed, output))
            for part in parts]
    return _Plan("Generate", reqs, _finish_images(output, single))


def plan_map(m: _Model, name: str, z: Any, c: Any, psi: float, cutoff: int | None) -> _Plan:
    cfg = m.config
    z, single = latents.check_z(z, cfg.z_dim)
    c = latents.check_c(c, cfg.c_dim, z.shape[0])
    psi = latents.check_psi(psi)
    cutoff = latents.check_cutoff(cutoff, cfg.num_ws)
    rows = m.rows_per_call(m.ws_row_bytes)
    reqs = [pb.MapRequest(model=name, z=codec.to_tensor(z[part]), map=_map_options(c, psi, cutoff, part))
            for part in _chunks(z.shape[0], rows, splittable=True)]

    def finish(responses: list[Any]) -> np.ndarray:
        ws = np.concatenate([codec.from_tensor(r.ws, "ws") for r in responses])
        return ws[0] if single else ws

    return _Plan("Map", reqs, finish)


def plan_synthesize(m: _Model, name: str, ws: Any, noise_mode: str, output: str, noise_seed: int | None) -> _Plan:
    cfg = m.config
    ws, single = latents.check_ws(ws, cfg.num_ws, cfg.w_dim)
    latents.check_noise_mode(noise_mode)
    images.check_output(output)
    noise_seed = _check_noise(noise_mode, noise_seed)
    fmt = _output_format(output)
    rows = m.rows_per_call(max(m.image_row_bytes(fmt), m.ws_row_bytes))
    reqs = [pb.SynthesizeRequest(model=name, ws=codec.to_tensor(ws[part]),
                                 render=_render(noise_mode, noise_seed, output))
            for part in _chunks(ws.shape[0], rows, splittable=noise_seed is None)]
    return _Plan("Synthesize", reqs, _finish_images(output, single))


def plan_mix(m: _Model, name: str, w_a: Any, w_b: Any, layers: Any, noise_mode: str, output: str,
             noise_seed: int | None) -> _Plan:
    cfg = m.config
    a, _ = latents.check_ws(w_a, cfg.num_ws, cfg.w_dim, name="w_a")
    b, _ = latents.check_ws(w_b, cfg.num_ws, cfg.w_dim, name="w_b")
    idx = latents.check_layers(layers, cfg.num_ws)
    mixed = latents.mix_ws(w_a, w_b, layers)  # checks that the shapes match
    _, single = latents.check_ws(mixed, cfg.num_ws, cfg.w_dim)
    latents.check_noise_mode(noise_mode)
    images.check_output(output)
    noise_seed = _check_noise(noise_mode, noise_seed)
    fmt = _output_format(output)
    rows = m.rows_per_call(max(m.image_row_bytes(fmt), 2 * m.ws_row_bytes))
    reqs = [pb.MixRequest(model=name, w_a=codec.to_tensor(a[part]), w_b=codec.to_tensor(b[part]), layers=idx,
                          render=_render(noise_mode, noise_seed, output))
            for part in _chunks(a.shape[0], rows, splittable=noise_seed is None)]
    return _Plan("Mix", reqs, _finish_images(output, single))


def plan_interpolate(m: _Model, name: str, seeds: Any, z: Any, ws: Any, num_frames: int, space: str, psi: float,
                     cutoff: int | None, noise_mode: str, c: Any, output: str, noise_seed: int | None
                     ) -> tuple[pb.InterpolateRequest, Callable[[pb.Frame], Any]]:
    cfg = m.config
    given = [k for k, v in (("seeds", seeds), ("z", z), ("ws", ws)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"keyframes: give exactly one of seeds, z or ws (got {given or 'none'})")
    if space not in ("w", "z"):
        raise ValueError(f"space: must be 'w' or 'z', got {space!r}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 2:
        raise ValueError(f"num_frames: must be an int >= 2, got {num_frames!r}")
    latents.check_noise_mode(noise_mode)
    images.check_output(output)
    noise_seed = _check_noise(noise_mode, noise_seed)
    req = pb.InterpolateRequest(model=name, num_frames=int(num_frames), space=pb.Z if space == "z" else pb.W,
                                render=_render(noise_mode, noise_seed, output))
    if ws is not None:
        keys, _ = latents.check_ws(ws, cfg.num_ws, cfg.w_dim)
        req.ws.CopyFrom(codec.to_tensor(keys))
    else:
        if seeds is not None:
            seed_list = _check_seeds(seeds)
            req.seeds.values.extend(seed_list)
            k = len(seed_list)
        else:
            keys, _ = latents.check_z(z, cfg.z_dim)
            req.z.CopyFrom(codec.to_tensor(keys))
            k = keys.shape[0]
        cvec = latents.check_c(c, cfg.c_dim, k)
        req.map.CopyFrom(_map_options(cvec, latents.check_psi(psi), latents.check_cutoff(cutoff, cfg.num_ws)))

    def frame(msg: pb.Frame) -> Any:
        return _convert(codec.images_from_pb(msg.image), output)[0]

    return req, frame


def _retry_delay(attempt: int, base: float, cap: float) -> float:
    return min(cap, base * 2**attempt) * (0.5 + 0.5 * random.random())


# ----------------------------------------------------------------------------
# The synchronous client


class Client:
    """A remote Generator. One channel, reused; thread-safe (share one Client between threads)."""

    def __init__(
        self,
        target: str = "localhost:50051",   # host:port of `stylegan serve`
        model: str | None = None,          # model name on the server (None: its default model)
        timeout: float = 60.0,             # seconds per method call (deadline of all its RPCs)
        token: str | None = None,          # bearer token of a server started with --token
        tls: Any = None,                   # None: plaintext; True / PEM bytes / PEM path / ChannelCredentials
        retries: int = 3,                  # retries of UNAVAILABLE (connect failures, loading) with backoff
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, Any]] = (),  # extra grpc channel options
    ) -> None:
        if timeout is None or timeout <= 0:
            raise ValueError(f"timeout: must be > 0 seconds, got {timeout!r}")
        if retries < 0:
            raise ValueError(f"retries: must be >= 0, got {retries}")
        self.target = target
        self.model = model or ""
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = 0.1
        self.backoff_max = 2.0
        self.max_message_bytes = int(max_message_bytes)
        creds = _credentials(tls)
        opts = _channel_options(self.max_message_bytes, options)
        self._channel = (grpc.secure_channel(target, creds, opts) if creds is not None
                         else grpc.insecure_channel(target, opts))
        self._stub = pb_grpc.StyleGANStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._model: _Model | None = None
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------
    def _call(self, method: str, request: Any, deadline: float) -> Any:
        rpc = getattr(self._stub, method)
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError(f"{method} on {self.target}: no answer within the timeout",
                                            grpc.StatusCode.DEADLINE_EXCEEDED)
            try:
                return rpc(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    delay = _retry_delay(attempt, self.backoff, self.backoff_max)
                    if time.monotonic() + delay < deadline:
                        time.sleep(delay)
                        attempt += 1
                        continue
                raise translate_error(e, self.target, method) from None

    def _run(self, plan: _Plan) -> Any:
        deadline = time.monotonic() + self.timeout
        return plan.finish([self._call(plan.method, r, deadline) for r in plan.requests])

    def _meta(self) -> _Model:
        if self._model is None:
            msg = self._call("GetModelInfo", pb.GetModelInfoRequest(model=self.model),
                             time.monotonic() + self.timeout)
            with self._lock:
                self._model = _Model.from_pb(msg, self.max_message_bytes)
        return self._model

    # -- description ----------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        """The same ModelInfo as the in-process `Generator.info` (backend and device: the server's)."""
        return self._meta().info

    @property
    def config(self) -> GeneratorConfig:
        return self._meta().config

    @property
    def w_avg(self) -> np.ndarray:
        return self._meta().w_avg

    def list_models(self) -> dict[str, ModelInfo]:
        """Every model the server serves, by name (the default one first)."""
        msg = self._call("ListModels", pb.ListModelsRequest(), time.monotonic() + self.timeout)
        ordered = sorted(msg.models, key=lambda m: m.name != msg.default_model)
        return {m.name: codec.model_info_from_pb(m) for m in ordered}

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Block until the server's health service says SERVING (ServerUnavailableError after timeout)."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=max(0.05, deadline - time.monotonic()),
                                    wait_for_ready=True).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            except grpc.RpcError as e:
                last = f"{e.code().name}: {e.details()}"
            time.sleep(0.05)
        raise ServerUnavailableError(f"{self.target}: not SERVING after {timeout} s ({last})",
                                     grpc.StatusCode.UNAVAILABLE)

    def __repr__(self) -> str:
        return f"Client({self.target!r}, model={self.model or None!r})"

    # -- the Generator's calls ------------------------------------------------
    def map(self, z: Any, c: Any = None, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] (one z [z_dim] -> [num_ws, w_dim]), truncated toward w_avg."""
        return self._run(plan_map(self._meta(), self.model, z, c, psi, cutoff))

    def synthesize(self, ws: Any, noise_mode: str = "const", output: str = "float",
                   noise_seed: int | None = None) -> Any:
        """ws [N, num_ws, w_dim] -> images ("float": float32 [N, C, H, W]; "uint8": uint8 [N, H, W, C]; "pil")."""
        return self._run(plan_synthesize(self._meta(), self.model, ws, noise_mode, output, noise_seed))

    def generate(self, seeds: int | str | Iterable[int], psi: float = 1.0, cutoff: int | None = None,
                 noise_mode: str = "const", c: Any = None, output: str = "pil", noise_seed: int | None = None) -> Any:
        """Images for seeds ('0-7,42', a list, or one int for a single image)."""
        return self._run(plan_generate(self._meta(), self.model, seeds, psi, cutoff, noise_mode, c, output,
                                       noise_seed))

    def mix(self, w_a: Any, w_b: Any, layers: int | str | Iterable[int], noise_mode: str = "const",
            output: str = "pil", noise_seed: int | None = None) -> Any:
        """Images from w_a with the listed ws rows taken from w_b (style mixing)."""
        return self._run(plan_mix(self._meta(), self.model, w_a, w_b, layers, noise_mode, output, noise_seed))

    def interpolate(self, seeds: Any = None, *, z: Any = None, ws: Any = None, num_frames: int = 30,
                    space: str = "w", psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "const",
                    c: Any = None, output: str = "pil", noise_seed: int | None = None,
                    timeout: float | None = None) -> Iterator[Any]:
        """Frames along a path through K >= 2 keyframes (seeds, z [K, z_dim] or ws [K, num_ws, w_dim]):
        num_frames per segment, ends included and shared, (K - 1) * (num_frames - 1) + 1 in all.
        space "w": lerp between the mapped keyframes; "z": slerp in Z, every frame mapped. Random noise is
        one draw shared by all frames. Yields one image per frame (PIL, uint8 [H, W, C] or float [C, H, W]);
        timeout (default: the client's) bounds the whole stream."""
        req, frame = plan_interpolate(self._meta(), self.model, seeds, z, ws, num_frames, space, psi, cutoff,
                                      noise_mode, c, output, noise_seed)
        return self._stream(req, frame, timeout or self.timeout)

    def _stream(self, req: pb.InterpolateRequest, frame: Callable[[pb.Frame], Any], timeout: float) -> Iterator[Any]:
        deadline = time.monotonic() + timeout
        attempt = 0
        got_any = False
        while True:
            call = self._stub.Interpolate(req, timeout=max(0.001, deadline - time.monotonic()),
                                          metadata=self._metadata)
            try:
                for msg in call:
                    got_any = True
                    yield frame(msg)
                return
            except grpc.RpcError as e:
                if (not got_any and e.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries):
                    delay = _retry_delay(attempt, self.backoff, self.backoff_max)
                    if time.monotonic() + delay < deadline:
                        time.sleep(delay)
                        attempt += 1
                        continue
                raise translate_error(e, self.target, "Interpolate") from None
            finally:
                call.cancel()

    # -- lifetime -------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------
# The asyncio client


class AsyncClient:
    """`Client` for asyncio: the same methods as coroutines (`await G.generate(...)`), `interpolate` as an
    async iterator, `await G.get_info()` for `info` (then also available as the `info` property)."""

    def __init__(
        self,
        target: str = "localhost:50051",
        model: str | None = None,
        timeout: float = 60.0,
        token: str | None = None,
        tls: Any = None,
        retries: int = 3,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if timeout is None or timeout <= 0:
            raise ValueError(f"timeout: must be > 0 seconds, got {timeout!r}")
        if retries < 0:
            raise ValueError(f"retries: must be >= 0, got {retries}")
        self.target = target
        self.model = model or ""
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = 0.1
        self.backoff_max = 2.0
        self.max_message_bytes = int(max_message_bytes)
        self._creds = _credentials(tls)
        self._options = _channel_options(self.max_message_bytes, options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._channel: grpc.aio.Channel | None = None  # created on first use, inside the running loop
        self._stub: Any = None
        self._model: _Model | None = None

    def _get_stub(self) -> Any:
        if self._stub is None:
            self._channel = (grpc.aio.secure_channel(self.target, self._creds, self._options)
                             if self._creds is not None else grpc.aio.insecure_channel(self.target, self._options))
            self._stub = pb_grpc.StyleGANStub(self._channel)
        return self._stub

    async def _call(self, method: str, request: Any, deadline: float) -> Any:
        rpc = getattr(self._get_stub(), method)
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError(f"{method} on {self.target}: no answer within the timeout",
                                            grpc.StatusCode.DEADLINE_EXCEEDED)
            try:
                return await rpc(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    delay = _retry_delay(attempt, self.backoff, self.backoff_max)
                    if time.monotonic() + delay < deadline:
                        await asyncio.sleep(delay)
                        attempt += 1
                        continue
                raise translate_error(e, self.target, method) from None

    async def _run(self, plan: _Plan) -> Any:
        deadline = time.monotonic() + self.timeout
        return plan.finish([await self._call(plan.method, r, deadline) for r in plan.requests])

    async def _meta(self) -> _Model:
        if self._model is None:
            msg = await self._call("GetModelInfo", pb.GetModelInfoRequest(model=self.model),
                                   time.monotonic() + self.timeout)
            self._model = _Model.from_pb(msg, self.max_message_bytes)
        return self._model

    async def get_info(self) -> ModelInfo:
        return (await self._meta()).info

    async def get_config(self) -> GeneratorConfig:
        return (await self._meta()).config

    @property
    def info(self) -> ModelInfo:
        """Available once any call (or `await get_info()`) has fetched it."""
        if self._model is None:
            raise RuntimeError("AsyncClient.info: call `await client.get_info()` first")
        return self._model.info

    async def list_models(self) -> dict[str, ModelInfo]:
        msg = await self._call("ListModels", pb.ListModelsRequest(), time.monotonic() + self.timeout)
        ordered = sorted(msg.models, key=lambda m: m.name != msg.default_model)
        return {m.name: codec.model_info_from_pb(m) for m in ordered}

    async def map(self, z: Any, c: Any = None, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        return await self._run(plan_map(await self._meta(), self.model, z, c, psi, cutoff))

    async def synthesize(self, ws: Any, noise_mode: str = "const", output: str = "float",
                         noise_seed: int | None = None) -> Any:
        return await self._run(plan_synthesize(await self._meta(), self.model, ws, noise_mode, output, noise_seed))

    async def generate(self, seeds: int | str | Iterable[int], psi: float = 1.0, cutoff: int | None = None,
                       noise_mode: str = "const", c: Any = None, output: str = "pil",
                       noise_seed: int | None = None) -> Any:
        return await self._run(plan_generate(await self._meta(), self.model, seeds, psi, cutoff, noise_mode, c,
                                             output, noise_seed))

    async def mix(self, w_a: Any, w_b: Any, layers: int | str | Iterable[int], noise_mode: str = "const",
                  output: str = "pil", noise_seed: int | None = None) -> Any:
        return await self._run(plan_mix(await self._meta(), self.model, w_a, w_b, layers, noise_mode, output,
                                        noise_seed))

    async def interpolate(self, seeds: Any = None, *, z: Any = None, ws: Any = None, num_frames: int = 30,
                          space: str = "w", psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "const",
                          c: Any = None, output: str = "pil", noise_seed: int | None = None,
                          timeout: float | None = None) -> AsyncIterator[Any]:
        """As `Client.interpolate`, an async iterator: `async for frame in G.interpolate(...)`."""
        req, frame = plan_interpolate(await self._meta(), self.model, seeds, z, ws, num_frames, space, psi, cutoff,
                                      noise_mode, c, output, noise_seed)
        deadline = time.monotonic() + (timeout or self.timeout)
        attempt = 0
        got_any = False
        while True:
            call = self._get_stub().Interpolate(req, timeout=max(0.001, deadline - time.monotonic()),
                                                metadata=self._metadata)
            try:
                async for msg in call:
                    got_any = True
                    yield frame(msg)
                return
            except grpc.RpcError as e:
                if not got_any and e.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    delay = _retry_delay(attempt, self.backoff, self.backoff_max)
                    if time.monotonic() + delay < deadline:
                        await asyncio.sleep(delay)
                        attempt += 1
                        continue
                raise translate_error(e, self.target, "Interpolate") from None
            finally:
                call.cancel()

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
