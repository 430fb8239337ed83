"""The gRPC generation service (stylegan.v1.StyleGAN) on grpc.aio, with dynamic batching.

    server, port = create_server("[::]:50051", {"ffhq": "exported/ffhq"})   # inside a running event loop
    await server.start()              # listens at once; health NOT_SERVING until the models are loaded
    await server.wait_until_ready()   # models loaded, health SERVING
    await server.wait_for_termination()

    with serve_in_thread({"ffhq": "exported/ffhq"}) as bg:   # the same, on a background thread
        sg.Client(bg.target).generate(0)

Every RPC does what the in-process `Generator` does, with the same NumPy latent math and argument
checks (stylegan_sdk.latents / images): a bad argument answers INVALID_ARGUMENT with the very text the
Generator raises as ValueError. Only the two network calls differ: they go through the model's
`Batcher`, which merges concurrent requests into one backend call. Random noise is drawn per request
(from its noise_seed) before merging, so batching never changes an answer.

Statuses: INVALID_ARGUMENT (bad argument), NOT_FOUND (unknown model), RESOURCE_EXHAUSTED (more than
max_queue generation requests in the server), DEADLINE_EXCEEDED (the deadline passed while queued: not
computed), UNAVAILABLE (loading or shutting down), UNAUTHENTICATED (token), INTERNAL (a bug or a backend
failure: logged here, never a traceback to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from stylegan_sdk import images, latents
from stylegan_sdk._proto import SERVICE_NAME, codec, pb, pb_grpc
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.generator import Generator

from .batcher import BackendFailed, Batcher, BatcherClosed, DeadlineExpired
from .config import MIB, ServerConfig, parse_args
from .metrics import ServerMetrics

log = logging.getLogger("stylegan.serving")

ModelSource = Union[str, "os.PathLike[str]", Generator, Callable[[], Generator]]

MAX_FRAMES = 100_000           # frames in one Interpolate stream
OFFLOAD_ELEMENTS = 1 << 18     # NumPy work on more elements than this runs in a thread, off the event loop
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)  # reachable without the token
GENERATION_METHODS = ("Generate", "Map", "Synthesize", "Mix", "Interpolate")
HEALTH_SERVICES = ("", SERVICE_NAME)


# ----------------------------------------------------------------------------
# Errors -> statuses


class UnknownModel(LookupError):
    pass


class Refused(Exception):
    """Admission control: answered with its status at once."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def status_for(exc: BaseException, method: str) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, Refused):
        return exc.code, str(exc)
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, UnknownModel):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, DeadlineExpired):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, BatcherClosed):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, BackendFailed):
        return grpc.StatusCode.INTERNAL, f"{exc} (see the server log)"
    log.error("%s failed", method, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error in {method} (see the server log)"


@dataclass
class CallOutcome:
    """What became of one RPC: its status, and whether it holds a generation slot (None: not admitted)."""

    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""
    counted: bool | None = None


# ----------------------------------------------------------------------------
# Models


@dataclass
class ModelEntry:
    name: str
    generator: Generator
    batcher: Batcher
    info: pb.ModelInfo
    owned: bool = True          # loaded by the server (closed on stop), not handed in by the caller

    @property
    def config(self) -> GeneratorConfig:
        return self.generator.config

    @property
    def w_avg(self) -> np.ndarray:
        return self.generator.w_avg


def resolve_model(source: ModelSource, backend: str, device: str) -> Generator:
    """A path (sg.load), a Generator, or a zero-argument callable returning one."""
    if isinstance(source, Generator):
        return source
    if isinstance(source, (str, os.PathLike)):
        from stylegan_sdk.loading import load

        return load(source, backend=backend, device=device)
    if callable(source):
        G = source()
        if not isinstance(G, Generator):
            raise TypeError(f"model loader returned {type(G).__name__}, not a Generator")
        return G
    raise TypeError(f"model: expected a path, a Generator or a loader, got {type(source).__name__}")


def max_batch_for(G: Generator, max_batch: int) -> int:
    """Clamp to what the backend accepts (a TensorRT engine's batch range)."""
    batch_range = getattr(G.backend, "batch_range", None)
    if batch_range is not None:
        return max(1, min(max_batch, int(batch_range[1])))
    return max_batch


# ----------------------------------------------------------------------------
# The servicer


@dataclass(frozen=True)
class Limits:
    max_seeds: int
    max_message_bytes: int
    max_batch: int
    max_queue: int

    def to_pb(self, max_batch: int) -> pb.ServerLimits:
        return pb.ServerLimits(max_seeds=self.max_seeds, max_message_bytes=self.max_message_bytes,
                               max_batch=max_batch)


@dataclass(frozen=True)
class Render:
    noise_mode: str
    noise_seed: int | None
    fmt: int
    quality: int


class StyleGANServicer(pb_grpc.StyleGANServicer):
    def __init__(self, limits: Limits, metrics: ServerMetrics) -> None:
        self.limits = limits
        self.metrics = metrics
        self.models: dict[str, ModelEntry] = {}
        self.default_model = ""
        self.ready = False          # models loaded
        self.stopping = False       # graceful shutdown under way: refuse new RPCs
        self._active = 0            # StyleGAN RPCs running (all methods)
        self._admitted = 0          # generation RPCs running (bounded by max_queue)
        self._idle = asyncio.Event()
        self._idle.set()

    # -- admission and error handling -----------------------------------------
    def _enter(self, method: str) -> bool:
        """Admit an RPC or raise Refused; returns whether it counts against max_queue."""
        if self.stopping:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        if not self.ready:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "the server is loading its models; retry shortly")
        counted = method in GENERATION_METHODS
        if counted and self._admitted >= self.limits.max_queue:
            raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"server busy: {self._admitted} requests in progress (limit {self.limits.max_queue}, "
                          f"--max-queue); retry later")
        self._active += 1
        self._idle.clear()
        if counted:
            self._admitted += 1
            self.metrics.inflight.set(self._admitted)
        return counted

    def _leave(self, counted: bool) -> None:
        self._active -= 1
        if counted:
            self._admitted -= 1
            self.metrics.inflight.set(self._admitted)
        if self._active == 0:
            self._idle.set()

    @property
    def admitted(self) -> int:
        """Generation RPCs in progress."""
        return self._admitted

    async def wait_idle(self) -> None:
        await self._idle.wait()

    @contextlib.asynccontextmanager
    async def _accounted(self, method: str) -> AsyncIterator[CallOutcome]:
        """Counts, times and (for generation RPCs) admits one call; any failure of its body becomes the
        status in the outcome (nothing escapes to grpc), which the caller then aborts with."""
        start = time.perf_counter()
        outcome = CallOutcome()
        try:
            yield outcome
        except asyncio.CancelledError:
            outcome.code = grpc.StatusCode.CANCELLED
            raise
        except Exception as e:  # every failure becomes a status
            outcome.code, outcome.message = status_for(e, method)
        finally:
            if outcome.counted is not None:
                self._leave(outcome.counted)
            self.metrics.requests.labels(method, outcome.code.name).inc()
            self.metrics.latency.labels(method).observe(time.perf_counter() - start)

    async def _unary(self, method: str, request: Any, context: grpc.aio.ServicerContext,
                     fn: Callable[[Any, float | None], Awaitable[Any]]) -> Any:
        async with self._accounted(method) as outcome:
            outcome.counted = self._enter(method)
            return await fn(request, _deadline(context))
        await context.abort(outcome.code, outcome.message)

    # -- RPCs -----------------------------------------------------------------
    async def Generate(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.GenerateResponse:
        return await self._unary("Generate", request, context, self._generate)

    async def Map(self, request: pb.MapRequest, context: grpc.aio.ServicerContext) -> pb.MapResponse:
        return await self._unary("Map", request, context, self._map_rpc)

    async def Synthesize(self, request: pb.SynthesizeRequest, context: grpc.aio.ServicerContext
                         ) -> pb.ImagesResponse:
        return await self._unary("Synthesize", request, context, self._synthesize_rpc)

    async def Mix(self, request: pb.MixRequest, context: grpc.aio.ServicerContext) -> pb.ImagesResponse:
        return await self._unary("Mix", request, context, self._mix_rpc)

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext
                           ) -> pb.ModelInfo:
        async def run(req: pb.GetModelInfoRequest, deadline: float | None) -> pb.ModelInfo:
            return self.model(req.model).info

        return await self._unary("GetModelInfo", request, context, run)

    async def ListModels(self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
                         ) -> pb.ListModelsResponse:
        async def run(req: pb.ListModelsRequest, deadline: float | None) -> pb.ListModelsResponse:
            return pb.ListModelsResponse(models=[e.info for e in self.models.values()],
                                         default_model=self.default_model)

        return await self._unary("ListModels", request, context, run)

    async def Interpolate(self, request: pb.InterpolateRequest, context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[pb.Frame]:
        async with self._accounted("Interpolate") as outcome:
            outcome.counted = self._enter("Interpolate")
            async for frame in self._interpolate(request, _deadline(context)):
                yield frame
        if outcome.code != grpc.StatusCode.OK:
            await context.abort(outcome.code, outcome.message)

    # -- argument parsing (the Generator's checks, in the Generator's order) ----
    def model(self, name: str) -> ModelEntry:
        entry = self.models.get(name or self.default_model)
        if entry is None:
            raise UnknownModel(f"model: no model named {name!r} on this server (serving: "
                               f"{', '.join(sorted(self.models))})")
        return entry

    def _render(self, r: pb.RenderOptions) -> Render:
        if r.noise_mode not in codec.NOISE_MODE_FROM_PB:
            raise ValueError(f"noise_mode: unknown value {r.noise_mode} (CONST, RANDOM or NONE)")
        if r.format not in codec.FORMAT_NAMES:
            raise ValueError(f"format: unknown image format {r.format} (PNG, JPEG, RAW_UINT8 or RAW_FLOAT32)")
        quality = r.jpeg_quality or codec.DEFAULT_JPEG_QUALITY
        if not 1 <= quality <= 100:
            raise ValueError(f"quality: must be in [1, 100], got {quality}")
        return Render(codec.NOISE_MODE_FROM_PB[r.noise_mode], r.noise_seed if r.HasField("noise_seed") else None,
                      r.format or pb.PNG, quality)

    def _count(self, n: int, what: str = "seeds") -> None:
        if n > self.limits.max_seeds:
            raise ValueError(f"{what}: {n} latents in one request, over this server's limit of "
                             f"{self.limits.max_seeds} (--max-seeds); split the request")

    def _check_size(self, entry: ModelEntry, n: int, fmt: int, extra: int = 0) -> None:
        """Refuse before computing an answer that could not be sent."""
        cfg = entry.config
        size = n * codec.image_bytes(fmt, cfg.img_channels, cfg.img_resolution) + extra
        limit = self.limits.max_message_bytes
        if size > limit:
            name = codec.FORMAT_NAMES[fmt]
            raise ValueError(f"seeds: {n} images of {cfg.img_resolution} px as {name} make about "
                             f"{_size(size)}, over this server's message limit of {_size(limit)}; "
                             f"ask for fewer images per request")

    def _z(self, request: Any, cfg: GeneratorConfig) -> np.ndarray:
        which = request.WhichOneof("latents")
        if which == "seeds":
            self._count(len(request.seeds.values))
            return latents.seed_to_z(list(request.seeds.values), cfg.z_dim)
        if which == "z":
            z, _ = latents.check_z(codec.from_tensor(request.z, "z"), cfg.z_dim)
            self._count(z.shape[0], "z")
            return z
        raise ValueError("seeds: give seeds or z")

    @staticmethod
    def _map_options(m: pb.MapOptions, cfg: GeneratorConfig, n: int) -> tuple[np.ndarray | None, float, int | None]:
        which = m.WhichOneof("condition")
        c: Any = m.class_index if which == "class_index" else codec.from_tensor(m.c, "c") if which == "c" else None
        c = latents.check_c(c, cfg.c_dim, n)
        psi = latents.check_psi(m.psi if m.HasField("psi") else 1.0)
        cutoff = latents.check_cutoff(m.cutoff if m.HasField("cutoff") else None, cfg.num_ws)
        return c, psi, cutoff

    # -- the two network calls, batched -----------------------------------------
    @staticmethod
    async def _mapped(entry: ModelEntry, z: np.ndarray, c: np.ndarray | None, psi: float, cutoff: int | None,
                      deadline: float | None) -> np.ndarray:
        """Generator.map: w from the batcher, broadcast to num_ws rows, truncated."""
        w = await entry.batcher.map(z, c, deadline)
        return latents.truncate(latents.broadcast_ws(w, entry.config.num_ws), entry.w_avg, psi, cutoff)

    @staticmethod
    async def _synthesized(entry: ModelEntry, ws: np.ndarray, render: Render, deadline: float | None,
                           noise: list[np.ndarray] | None = None) -> np.ndarray:
        """Generator.synthesize up to the float images: noise drawn for this request alone, then batched."""
        if render.noise_mode == "random" and noise is None:
            res = entry.config.noise_resolutions
            draw = functools.partial(latents.draw_noise, res, ws.shape[0], render.noise_seed)
            small = ws.shape[0] * sum(r * r for r in res) < OFFLOAD_ELEMENTS
            noise = draw() if small else await asyncio.to_thread(draw)  # large draws off the event loop
        return await entry.batcher.synthesize(ws, render.noise_mode, noise, deadline)

    @staticmethod
    async def _encode(x: np.ndarray, render: Render) -> pb.Images:
        """Float images -> the requested format (large or compressed outputs converted off the event loop)."""

        def convert() -> pb.Images:
            if render.fmt == pb.RAW_FLOAT32:
                return pb.Images(format=pb.RAW_FLOAT32, pixels=codec.to_tensor(x))
            u8 = images.to_uint8(x)
            if render.fmt == pb.RAW_UINT8:
                return pb.Images(format=pb.RAW_UINT8, pixels=codec.to_tensor(u8, "uint8"))
            fmt = codec.FORMAT_NAMES[render.fmt]
            return pb.Images(format=render.fmt, encoded=[images.encode(img, fmt, render.quality) for img in u8])

        if render.fmt in (pb.RAW_FLOAT32, pb.RAW_UINT8) and x.size < OFFLOAD_ELEMENTS:
            return convert()
        return await asyncio.to_thread(convert)

    # -- handlers -----------------------------------------------------------------
    async def _generate(self, request: pb.GenerateRequest, deadline: float | None) -> pb.GenerateResponse:
        entry = self.model(request.model)
        cfg = entry.config
        render = self._render(request.render)
        z = self._z(request, cfg)
        c, psi, cutoff = self._map_options(request.map, cfg, z.shape[0])
        ws_bytes = z.shape[0] * cfg.num_ws * cfg.w_dim * 4 if request.return_ws else 0
        self._check_size(entry, z.shape[0], render.fmt, ws_bytes)
        if render.noise_mode == "random":
            latents.draw_noise([], 0, render.noise_seed)  # check noise_seed before computing anything
        ws = await self._mapped(entry, z, c, psi, cutoff, deadline)
        x = await self._synthesized(entry, ws, render, deadline)
        return pb.GenerateResponse(images=await self._encode(x, render),
                                   ws=codec.to_tensor(ws) if request.return_ws else None)

    async def _map_rpc(self, request: pb.MapRequest, deadline: float | None) -> pb.MapResponse:
        entry = self.model(request.model)
        cfg = entry.config
        z = self._z(request, cfg)
        c, psi, cutoff = self._map_options(request.map, cfg, z.shape[0])
        return pb.MapResponse(ws=codec.to_tensor(await self._mapped(entry, z, c, psi, cutoff, deadline)))

    async def _synthesize_rpc(self, request: pb.SynthesizeRequest, deadline: float | None) -> pb.ImagesResponse:
        entry = self.model(request.model)
        cfg = entry.config
        ws, _ = latents.check_ws(codec.from_tensor(request.ws, "ws"), cfg.num_ws, cfg.w_dim)
        render = self._render(request.render)
        self._count(ws.shape[0], "ws")
        self._check_size(entry, ws.shape[0], render.fmt)
        x = await self._synthesized(entry, ws, render, deadline)
        return pb.ImagesResponse(images=await self._encode(x, render))

    async def _mix_rpc(self, request: pb.MixRequest, deadline: float | None) -> pb.ImagesResponse:
        entry = self.model(request.model)
        cfg = entry.config
        w_a = codec.from_tensor(request.w_a, "w_a")
        w_b = codec.from_tensor(request.w_b, "w_b")
        latents.check_ws(w_a, cfg.num_ws, cfg.w_dim, name="w_a")
        latents.check_ws(w_b, cfg.num_ws, cfg.w_dim, name="w_b")
        layers = list(request.layers)
        latents.check_layers(layers, cfg.num_ws)
        ws, _ = latents.check_ws(latents.mix_ws(w_a, w_b, layers), cfg.num_ws, cfg.w_dim)
        render = self._render(request.render)
        self._count(ws.shape[0], "w_a")
        self._check_size(entry, ws.shape[0], render.fmt)
        x = await self._synthesized(entry, ws, render, deadline)
        return pb.ImagesResponse(images=await self._encode(x, render))

    async def _interpolate(self, request: pb.InterpolateRequest, deadline: float | None) -> AsyncIterator[pb.Frame]:
        entry = self.model(request.model)
        cfg = entry.config
        render = self._render(request.render)
        if request.space not in (pb.SPACE_UNSPECIFIED, pb.W, pb.Z):
            raise ValueError(f"space: unknown value {request.space} (W or Z)")
        space = "z" if request.space == pb.Z else "w"
        which = request.WhichOneof("keyframes")
        z_keys = ws_keys = None
        if which == "seeds":
            self._count(len(request.seeds.values))
            z_keys = latents.seed_to_z(list(request.seeds.values), cfg.z_dim)
        elif which == "z":
            z_keys, _ = latents.check_z(codec.from_tensor(request.z, "z"), cfg.z_dim)
            self._count(z_keys.shape[0], "z")
        elif which == "ws":
            ws_keys, _ = latents.check_ws(codec.from_tensor(request.ws, "ws"), cfg.num_ws, cfg.w_dim)
            self._count(ws_keys.shape[0], "ws")
            if space == "z":
                raise ValueError("space: ws keyframes interpolate in W only; send seeds or z to slerp in Z")
        else:
            raise ValueError("keyframes: give seeds, z or ws")
        keys = z_keys if z_keys is not None else ws_keys
        k = keys.shape[0]
        plan = latents.interpolation_plan(k, int(request.num_frames))
        total = len(plan)
        if total > MAX_FRAMES:
            raise ValueError(f"num_frames: {total} frames in one stream, over the limit of {MAX_FRAMES}")
        c = psi = cutoff = None
        if z_keys is not None:
            c, psi, cutoff = self._map_options(request.map, cfg, k)
        ws_bytes = cfg.num_ws * cfg.w_dim * 4 if request.return_ws else 0
        self._check_size(entry, 1, render.fmt, ws_bytes)
        noise = None
        if render.noise_mode == "random":  # one draw for every frame: no flicker
            noise = latents.draw_noise(cfg.noise_resolutions, 1, render.noise_seed)
        if space == "w" and ws_keys is None:
            ws_keys = await self._mapped(entry, z_keys, c, psi, cutoff, deadline)
        step = entry.batcher.max_batch
        for first in range(0, total, step):
            part = plan[first: first + step]
            if space == "w":
                ws = np.stack([latents.lerp(ws_keys[s], ws_keys[s + 1], t) for s, t in part])
            else:
                z = np.stack([latents.slerp(z_keys[s], z_keys[s + 1], t) for s, t in part])
                cs = None if c is None else np.stack([latents.lerp(c[s], c[s + 1], t) for s, t in part])
                ws = await self._mapped(entry, z, cs, psi, cutoff, deadline)
            part_noise = None if noise is None else [np.repeat(nz, len(part), axis=0) for nz in noise]
            x = await self._synthesized(entry, ws, render, deadline, part_noise)
            for i in range(len(part)):
                frame = pb.Frame(index=first + i, total=total, image=await self._encode(x[i: i + 1], render))
                if request.return_ws:
                    frame.ws.CopyFrom(codec.to_tensor(ws[i: i + 1]))
                yield frame


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n / 1024:.0f} KiB"


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


# ----------------------------------------------------------------------------
# Bearer-token auth


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Every method except the health service needs metadata `authorization: Bearer <token>`."""

    def __init__(self, token: str, metrics: ServerMetrics | None = None) -> None:
        self._expected = f"Bearer {token}".encode()
        self._metrics = metrics

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_METHOD_PREFIXES):
            return handler
        got = ""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                got = value if isinstance(value, str) else value.decode("latin-1")
        if hmac.compare_digest(got.encode("utf-8", "replace"), self._expected):
            return handler
        if self._metrics is not None:
            self._metrics.requests.labels(details.method.rsplit("/", 1)[-1], "UNAUTHENTICATED").inc()
        return _denying(handler)


def _denying(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    message = "missing or wrong bearer token (send metadata 'authorization: Bearer <token>')"

    async def deny(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kw = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny, **kw)
    return grpc.unary_unary_rpc_method_handler(deny, **kw)


# ----------------------------------------------------------------------------
# The server


def _read_pem(value: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address: expected HOST:PORT, got {address!r}")
    return host, int(port)


class StyleGANServer:
    """A grpc.aio server with the StyleGAN, health and reflection services, metrics and the batchers."""

    def __init__(self, server: grpc.aio.Server, servicer: StyleGANServicer, health_servicer: Any,
                 models: Sequence[tuple[str, ModelSource]], port: int, host: str, backend: str, device: str,
                 max_batch: int, max_delay_s: float, metrics: ServerMetrics, metrics_address: str | None) -> None:
        self.grpc_server = server
        self.servicer = servicer
        self.health = health_servicer
        self.metrics = metrics
        self.port = port
        self.host = host
        self.metrics_port: int | None = None
        self._models = list(models)
        self._backend = backend
        self._device = device
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._metrics_address = metrics_address
        self._load_task: asyncio.Task | None = None
        self._stop_task: asyncio.Task | None = None
        self._stopped = asyncio.Event()
        self._loading_threads = 0
        self._lock = threading.Lock()

    @property
    def target(self) -> str:
        """host:port for clients on this machine."""
        host = self.host
        if host in ("[::]", "0.0.0.0", "::", ""):
            host = "localhost"
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Listen (health NOT_SERVING), start the metrics endpoint, load the models in the background."""
        for service in HEALTH_SERVICES:
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.grpc_server.start()
        if self._metrics_address is not None:
            host, port = _split_address(self._metrics_address)
            self.metrics_port = self.metrics.start_http(host.strip("[]"), port)
        self._load_task = asyncio.get_running_loop().create_task(self._load(), name="load-models")

    async def _load(self) -> None:
        servicer = self.servicer
        for name, source in self._models:
            t0 = time.perf_counter()
            G = await asyncio.to_thread(self._resolve, source)
            max_batch = max_batch_for(G, self._max_batch)
            batcher = Batcher(G.backend, name, max_batch, self._max_delay_s, self.metrics,
                              requests_in_flight=lambda: servicer.admitted)
            batcher.start()
            info = codec.model_info_to_pb(G.info, name, G.config.to_json(), G.w_avg,
                                          servicer.limits.to_pb(max_batch))
            servicer.models[name] = ModelEntry(name, G, batcher, info, owned=not isinstance(source, Generator))
            if not servicer.default_model:
                servicer.default_model = name
            self.metrics.models_loaded.set(len(servicer.models))
            log.info("loaded model %r (%s, %d px, %s on %s) in %.1f s", name, G.config.arch,
                     G.config.img_resolution, G.backend.name, G.backend.device, time.perf_counter() - t0)
        servicer.ready = True
        if not servicer.stopping:
            for service in HEALTH_SERVICES:
                await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def _resolve(self, source: ModelSource) -> Generator:
        with self._lock:
            self._loading_threads += 1
        try:
            return resolve_model(source, self._backend, self._device)
        finally:
            with self._lock:
                self._loading_threads -= 1

    @property
    def threads_still_working(self) -> bool:
        """A model load or backend call outlived stop() (threads cannot be interrupted)."""
        return self._loading_threads > 0 or any(e.batcher.busy for e in self.servicer.models.values())

    async def wait_until_ready(self, timeout: float | None = None) -> None:
        """Until every model is loaded (and health is SERVING); re-raises a loading error."""
        if self._load_task is None:
            raise RuntimeError("start() the server first")
        await asyncio.wait_for(asyncio.shield(self._load_task), timeout)

    async def stop(self, grace: float | None = 10.0) -> None:
        """Graceful stop: health NOT_SERVING and new RPCs refused at once, in-flight RPCs finish (up to
        grace seconds, then they are cancelled), then the batchers, their threads and metrics stop."""
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self._stop(grace or 0.0), name="stop")
        await asyncio.shield(self._stop_task)

    async def _stop(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        self.servicer.stopping = True
        await self.health.enter_graceful_shutdown()  # every service NOT_SERVING (health itself still answers)
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        try:
            await asyncio.wait_for(self.servicer.wait_idle(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            log.warning("grace period over: cancelling the requests still in flight")
        # Our RPCs are done (or out of time): let the last responses flush, cut long-lived health watches.
        await self.grpc_server.stop(min(1.0, max(0.0, deadline - time.monotonic())))
        for entry in list(self.servicer.models.values()):
            await entry.batcher.close()
            if entry.owned and not entry.batcher.busy:
                entry.generator.close()
        self.metrics.stop_http()
        if self._load_task is not None:
            try:
                await self._load_task
            except BaseException:  # cancelled or failed: already reported by wait_until_ready
                pass
        self._stopped.set()

    async def wait_for_termination(self) -> None:
        await self._stopped.wait()


def create_server(
    address: str,
    models: Mapping[str, ModelSource] | Sequence[tuple[str, ModelSource]],
    *,
    backend: str = "auto",
    device: str = "cpu",
    max_batch: int = 32,
    max_delay_ms: float = 2.0,
    max_queue: int = 64,
    max_seeds: int = 256,
    max_message_bytes: int = 64 * MIB,
    metrics_address: str | None = None,
    token: str | None = None,
    tls_cert: bytes | str | os.PathLike[str] | None = None,
    tls_key: bytes | str | os.PathLike[str] | None = None,
) -> tuple[StyleGANServer, int]:
    """Build the server and bind `address` ("host:port"; port 0 picks a free one) -> (server, port).

    models: name -> exported folder / model file (loaded with `backend` on `device` by sg.load), a
    Generator, or a callable returning one; the first is the default model. Call inside a running event
    loop, then `await server.start()`. metrics_address: "host:port" of the Prometheus endpoint (None: off).
    """
    items = list(models.items()) if isinstance(models, Mapping) else list(models)
    if not items:
        raise ValueError("models: give at least one model")
    if tls_cert is None and tls_key is not None or tls_cert is not None and tls_key is None:
        raise ValueError("tls_cert/tls_key: give both or neither")
    for name, value in {"max_batch": max_batch, "max_queue": max_queue, "max_seeds": max_seeds,
                        "max_message_bytes": max_message_bytes}.items():
        if value < 1:
            raise ValueError(f"{name}: must be >= 1, got {value}")
    host, _ = _split_address(address)
    metrics = ServerMetrics()
    limits = Limits(max_seeds=max_seeds, max_message_bytes=max_message_bytes, max_batch=max_batch,
                    max_queue=max_queue)
    interceptors = [TokenAuthInterceptor(token, metrics)] if token else None
    server = grpc.aio.server(interceptors=interceptors, options=[
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ])
    servicer = StyleGANServicer(limits, metrics)
    pb_grpc.add_StyleGANServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        if tls_cert is not None:
            creds = grpc.ssl_server_credentials([(_read_pem(tls_key), _read_pem(tls_cert))])
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise OSError(f"address: cannot listen on {address!r} ({e})") from None
    if not port:
        raise OSError(f"address: cannot listen on {address!r}")
    return StyleGANServer(server, servicer, health_servicer, items, port, host, backend, device, max_batch,
                          max_delay_ms / 1000.0, metrics, metrics_address), port


# ----------------------------------------------------------------------------
# A server on a background thread (notebooks, tests, benchmarks, sync programs)


class BackgroundServer:
    """create_server + start on an event loop in a daemon thread; `stop()` (or `with`) shuts it down."""

    def __init__(self, models: Mapping[str, ModelSource] | Sequence[tuple[str, ModelSource]],
                 address: str = "127.0.0.1:0", wait: bool = True, timeout: float | None = 120.0,
                 **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stylegan-serve", daemon=True)
        self._thread.start()

        async def create() -> tuple[StyleGANServer, int]:
            server, port = create_server(address, models, **kwargs)
            await server.start()
            return server, port

        try:
            self.server, self.port = self.call(create(), timeout)
            if wait:
                self.call(self.server.wait_until_ready(), timeout)
        except BaseException:
            if hasattr(self, "server"):  # listening, but a model failed to load
                self.call(self.server.stop(0), 30)
            self._shutdown_loop()
            raise

    @property
    def target(self) -> str:
        return self.server.target

    @property
    def metrics(self) -> ServerMetrics:
        return self.server.metrics

    def call(self, coro: Awaitable[Any], timeout: float | None = None) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, grace: float = 5.0) -> None:
        if self._loop.is_closed():
            return
        try:
            self.call(self.server.stop(grace), grace + 30)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(models: Mapping[str, ModelSource] | Sequence[tuple[str, ModelSource]],
                    address: str = "127.0.0.1:0", **kwargs: Any) -> BackgroundServer:
    return BackgroundServer(models, address, **kwargs)


# ----------------------------------------------------------------------------
# Command line: `stylegan serve` / `python -m serving`


async def serve(cfg: ServerConfig, prog: str = "stylegan serve") -> int:
    """Run until SIGTERM / SIGINT (graceful, cfg.grace seconds; a second signal stops at once)."""
    tls_cert = cfg.tls_cert
    server, port = create_server(
        f"{cfg.host}:{cfg.port}", cfg.models, backend=cfg.backend, device=cfg.device, max_batch=cfg.max_batch,
        max_delay_ms=cfg.max_delay_ms, max_queue=cfg.max_queue, max_seeds=cfg.max_seeds,
        max_message_bytes=cfg.max_message_mb * MIB,
        metrics_address=f"{cfg.metrics_host}:{cfg.metrics_port}" if cfg.metrics_port else None,
        token=cfg.token, tls_cert=tls_cert, tls_key=cfg.tls_key)
    loop = asyncio.get_running_loop()
    signals = {"count": 0}

    def on_signal(signum: int) -> None:
        signals["count"] += 1
        grace = cfg.grace if signals["count"] == 1 else 0.0
        log.info("%s: stopping (grace %.1f s)", signal.Signals(signum).name, grace)
        loop.create_task(server.stop(grace) if signals["count"] == 1 else server.grpc_server.stop(0))

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):  # not the main thread / Windows
            pass
    await server.start()
    scheme = "grpcs" if tls_cert else "grpc"
    print(f"{prog}: listening on {cfg.host}:{port} ({scheme}; models loading: "
          f"{', '.join(name for name, _ in cfg.models)})", file=sys.stderr, flush=True)
    if server.metrics_port:
        print(f"{prog}: metrics on http://{cfg.metrics_host}:{server.metrics_port}/metrics",
              file=sys.stderr, flush=True)
    try:
        await server.wait_until_ready()
    except asyncio.CancelledError:
        pass  # stopped while loading
    except Exception as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        await server.stop(0)
        return 2
    else:
        print(f"{prog}: ready", file=sys.stderr, flush=True)
    await server.wait_for_termination()
    if server.threads_still_working:  # do not let the interpreter wait for them past the grace period
        print(f"{prog}: stopped (abandoning a model load or backend call still running)", file=sys.stderr,
              flush=True)
        sys.stdout.flush()
        os._exit(0)
    print(f"{prog}: stopped", file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m serving") -> int:
    try:
        cfg = parse_args(argv, prog)
    except ValueError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse: --help (0) or a usage error (2, already reported in one line)
        return e.code if isinstance(e.code, int) else 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(cfg, prog))
    except (ValueError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
