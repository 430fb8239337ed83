"""The stylegan.v1.StyleGAN servicer: a thin grpc.aio layer over the calls' one definition.

Each RPC decodes its message into the arguments of the in-process `Generator` call (the codec,
stylegan_sdk._proto.codec, which the client encodes them with), checks them with that call's definition
(stylegan_sdk.calls: same checks, same order, same text as the ValueError the Generator raises), checks
this server's limits, then runs the two networks through the model's `Batcher` in chunks of at most
max_batch rows, so a request whose deadline passes or that is cancelled stops between chunks. Random
noise is drawn per request (from its noise_seed) before batching, so batching never changes an answer.
Edits (Generate, Synthesize, Mix) are checked against the model's direction sets (`Generator.directions`)
and added to the ws before synthesis, as the Generator adds them (`calls.Edits.apply`).

Project (image -> ws) runs apart from the batchers, in the projection workers (serving/projections.py), with
its own limits; its arguments are checked by the projection call's definition (stylegan_sdk.projection.options)
and its target files from their headers, on the event loop, before it is queued.

Statuses: INVALID_ARGUMENT (bad argument, or bytes that are not a valid request message), NOT_FOUND
(unknown model), RESOURCE_EXHAUSTED (more than max_queue generation requests in the server, or more than
max_projections + max_queued_projections projections), FAILED_PRECONDITION (Project on a model whose backend
cannot differentiate, or on a server without projections),
DEADLINE_EXCEEDED (the deadline passed before the work was done), UNAVAILABLE (loading or shutting down),
INTERNAL (a bug or a backend failure: logged here, never a traceback to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from stylegan_sdk import calls
from stylegan_sdk._proto import SERVICE_NAME, codec, pb, pb_grpc
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.editing.directions import Directions
from stylegan_sdk.generator import Generator
from stylegan_sdk.projection.options import ProjectionUnavailable, projection_unavailable, read_target

from .batcher import BackendFailed, Batcher, BatcherClosed, DeadlineExpired
from .config import MIB, ServerSettings
from .metrics import ServerMetrics
from .projections import ProjectionPool, ProjectionsBusy

log = logging.getLogger("stylegan.serving")

OFFLOAD_ELEMENTS = 1 << 18     # NumPy work on more elements than this runs in a thread, off the event loop
GENERATION_METHODS = ("Generate", "Map", "Synthesize", "Mix", "Interpolate")
SHOWN_NAME_CHARS = 64          # of a requested model name echoed in an error


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
    if isinstance(exc, ProjectionUnavailable):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, ProjectionsBusy):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, UnknownModel):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, DeadlineExpired):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, BatcherClosed):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, ConnectionError):  # a remote backend (triton://) unreachable, after grpc's retries
        return grpc.StatusCode.UNAVAILABLE, "the model's backend is unavailable; retry later (see the server log)"
    if isinstance(exc, TimeoutError):  # a remote backend slower than its timeout
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the model's backend did not answer in time (see the server log)"
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


def shown(name: str) -> str:
    """A name from a request, as echoed in an error: bounded, so a huge name cannot bloat the reply."""
    if len(name) <= SHOWN_NAME_CHARS:
        return repr(name)
    return f"{name[:SHOWN_NAME_CHARS]!r}... ({len(name)} characters)"


# ----------------------------------------------------------------------------
# Request messages that do not parse


@dataclass(frozen=True)
class Malformed:
    """Stands for a request whose bytes are not a valid message: the handler answers INVALID_ARGUMENT
    (grpc would answer UNKNOWN with the decoder's exception class in the details)."""

    message: str    # the message type's name
    size: int       # bytes received


def lenient_deserializer(message_class: Any) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except (DecodeError, RecursionError):
            return Malformed(message_class.DESCRIPTOR.name, len(data))

    return deserialize


def add_to_server(servicer: StyleGANServicer, server: grpc.aio.Server) -> None:
    """Register the service, as the generated add_StyleGANServicer_to_server does, with lenient decoding."""
    service = pb.DESCRIPTOR.services_by_name["StyleGAN"]
    handlers = {}
    for method in service.methods:
        request_class = getattr(pb, method.input_type.name)
        response_class = getattr(pb, method.output_type.name)
        make = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = make(getattr(servicer, method.name),
                                     request_deserializer=lenient_deserializer(request_class),
                                     response_serializer=response_class.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


# ----------------------------------------------------------------------------
# Models


@dataclass
class ModelEntry:
    name: str
    generator: Generator
    batcher: Batcher
    info: pb.ModelInfo
    owned: bool = True          # loaded by the server (closed on stop), not handed in by the caller
    directions: dict[str, Directions] = field(default_factory=dict)   # G.directions: what edits can use

    @property
    def config(self) -> GeneratorConfig:
        return self.generator.config

    @property
    def w_avg(self) -> np.ndarray:
        return self.generator.w_avg


# ----------------------------------------------------------------------------
# Helpers


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n / 1024:.0f} KiB"


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _parts(n: int, step: int) -> list[slice]:
    return [slice(i, min(n, i + step)) for i in range(0, n, step)]


def _rows(noise: list[np.ndarray] | None, part: slice) -> list[np.ndarray] | None:
    return None if noise is None else [x[part] for x in noise]


def _part(x: np.ndarray | None, part: slice) -> np.ndarray | None:
    return None if x is None else x[part]


def _edited_ws(mapping: calls.Mapping, edits: calls.Edits, cfg: GeneratorConfig, w_avg: np.ndarray,
               w: np.ndarray) -> np.ndarray:
    """Generator.generate's ws: the mapping's w truncated, then the edits added."""
    return edits.apply(mapping.to_ws(w, cfg, w_avg))


# ----------------------------------------------------------------------------
# The servicer


class StyleGANServicer(pb_grpc.StyleGANServicer):
    def __init__(self, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.models: dict[str, ModelEntry] = {}
        self.default_model = ""
        self.ready = False          # models loaded
        self.stopping = False       # graceful shutdown under way: refuse new RPCs
        self._active = 0            # StyleGAN RPCs running (all methods)
        self._admitted = 0          # generation RPCs running (bounded by max_queue)
        self._idle = asyncio.Event()
        self._idle.set()
        self.projections = ProjectionPool(settings, metrics)   # Project's workers, apart from the batchers

    # -- admission and error handling -----------------------------------------
    def _enter(self, method: str) -> bool:
        """Admit an RPC or raise Refused; returns whether it counts against max_queue."""
        if self.stopping:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        if not self.ready:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "the server is loading its models; retry shortly")
        counted = method in GENERATION_METHODS
        limit = self.settings.max_queue
        if counted and self._admitted >= limit:
            raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"server busy: {self._admitted} requests in progress (limit {limit}, --max-queue); "
                          f"retry later")
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

    def _admit(self, method: str, request: Any) -> bool:
        """A request that parsed, admitted (see _enter)."""
        if isinstance(request, Malformed):
            log.warning("%s: a request of %d bytes is not a valid %s", method, request.size, request.message)
            raise ValueError(f"request is not a valid {request.message}")
        return self._enter(method)

    @contextlib.asynccontextmanager
    async def _accounted(self, method: str) -> AsyncIterator[CallOutcome]:
        """Counts and times one call; any failure of its body becomes the status in the outcome (nothing
        escapes to grpc), which the caller then aborts with."""
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
            self.metrics.child("requests", method, outcome.code.name).inc()
            self.metrics.child("latency", method).observe(time.perf_counter() - start)

    async def _unary(self, method: str, request: Any, context: grpc.aio.ServicerContext,
                     fn: Callable[[Any, float | None], Awaitable[Any]]) -> Any:
        async with self._accounted(method) as outcome:
            outcome.counted = self._admit(method, request)
            return await fn(request, _deadline(context))
        await context.abort(outcome.code, outcome.message)

    # -- RPCs -----------------------------------------------------------------
    async def Generate(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.GenerateResponse:
        return await self._unary("Generate", request, context, self._generate)

    async def Map(self, request: pb.MapRequest, context: grpc.aio.ServicerContext) -> pb.MapResponse:
        return await self._unary("Map", request, context, self._map)

    async def Synthesize(self, request: pb.SynthesizeRequest, context: grpc.aio.ServicerContext
                         ) -> pb.ImagesResponse:
        return await self._unary("Synthesize", request, context, self._synthesize)

    async def Mix(self, request: pb.MixRequest, context: grpc.aio.ServicerContext) -> pb.ImagesResponse:
        return await self._unary("Mix", request, context, self._mix)

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext
                           ) -> pb.ModelInfo:
        async def run(req: pb.GetModelInfoRequest, deadline: float | None) -> pb.ModelInfo:
            return self.model(codec.GetModelInfoArgs.from_pb(req).model).info

        return await self._unary("GetModelInfo", request, context, run)

    async def ListModels(self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
                         ) -> pb.ListModelsResponse:
        async def run(req: pb.ListModelsRequest, deadline: float | None) -> pb.ListModelsResponse:
            return codec.list_models_to_pb([e.info for e in self.models.values()], self.default_model)

        return await self._unary("ListModels", request, context, run)

    async def Interpolate(self, request: pb.InterpolateRequest, context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[pb.Frame]:
        async with self._accounted("Interpolate") as outcome:
            outcome.counted = self._admit("Interpolate", request)
            async for frame in self._interpolate(request, _deadline(context)):
                yield frame
        if outcome.code != grpc.StatusCode.OK:
            await context.abort(outcome.code, outcome.message)

    async def Project(self, request: pb.ProjectRequest, context: grpc.aio.ServicerContext
                      ) -> AsyncIterator[pb.ProjectEvent]:
        async with self._accounted("Project") as outcome:
            outcome.counted = self._admit("Project", request)   # not a generation call: its own limits
            async for event in self._project(request, _deadline(context)):
                yield event
        if outcome.code != grpc.StatusCode.OK:
            await context.abort(outcome.code, outcome.message)

    # -- this server's limits ---------------------------------------------------
    def model(self, name: str) -> ModelEntry:
        entry = self.models.get(name or self.default_model)
        if entry is None:
            raise UnknownModel(f"model: no model named {shown(name)} on this server (serving: "
                               f"{', '.join(sorted(self.models))})")
        return entry

    def _count(self, n: int, what: str) -> None:
        """Latents per request. Seed lists are counted before they are checked (a long list costs time)."""
        limit = self.settings.max_seeds
        if n > limit:
            raise ValueError(f"{what}: {n} latents in one request, over this server's limit of {limit} "
                             f"(--max-seeds); split the request")

    def _check_size(self, entry: ModelEntry, n: int, fmt: int, extra: int = 0) -> None:
        """Refuse before computing an answer that could not be sent."""
        cfg = entry.config
        size = n * codec.image_bytes(fmt, cfg.img_channels, cfg.img_resolution) + extra
        limit = self.settings.max_message_bytes
        if size > limit:
            name = codec.FORMAT_NAMES[fmt]
            raise ValueError(f"seeds: {n} images of {cfg.img_resolution} px as {name} make about "
                             f"{_size(size)}, over this server's message limit of {_size(limit)}; "
                             f"ask for fewer images per request")

    # -- the two networks, through the batcher in chunks ------------------------
    @staticmethod
    async def _ws(entry: ModelEntry, z: np.ndarray, mapping: calls.Mapping, deadline: float | None) -> np.ndarray:
        """Generator._ws: z -> truncated ws, one batcher job per chunk of max_batch rows."""
        parts = []
        for part in _parts(z.shape[0], entry.batcher.max_batch):
            w = await entry.batcher.map(z[part], mapping.rows(part).c, deadline)
            parts.append(mapping.to_ws(w, entry.config, entry.w_avg))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @staticmethod
    async def _noise(entry: ModelEntry, render: calls.Render, n: int) -> list[np.ndarray] | None:
        """The request's own noise (one draw for all its rows); large draws off the event loop."""
        if render.noise_mode != "random":
            return None
        if n * sum(r * r for r in entry.config.noise_resolutions) < OFFLOAD_ELEMENTS:
            return render.noise(entry.config, n)
        return await asyncio.to_thread(render.noise, entry.config, n)

    @staticmethod
    async def _images(entry: ModelEntry, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                      transform: np.ndarray | None, deadline: float | None) -> np.ndarray:
        """Generator._images: ws (+ per-row transforms) -> float images, one batcher job per chunk."""
        parts = [await entry.batcher.synthesize(ws[part], noise_mode, _rows(noise, part), deadline,
                                                _part(transform, part))
                 for part in _parts(ws.shape[0], entry.batcher.max_batch)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @staticmethod
    async def _encode(x: np.ndarray, render: codec.RenderArgs, into: pb.Images) -> None:
        """Float images -> the requested format, written into the response's field (large or compressed
        outputs converted off the event loop)."""
        if render.fmt in (pb.RAW_FLOAT32, pb.RAW_UINT8) and x.size < OFFLOAD_ELEMENTS:
            codec.images_to_pb(x, render.fmt, render.quality, into)
        else:
            await asyncio.to_thread(codec.images_to_pb, x, render.fmt, render.quality, into)

    # -- handlers: decode (the codec), check (the call's definition, then this server's limits), compute ------
    async def _generate(self, request: pb.GenerateRequest, deadline: float | None) -> pb.GenerateResponse:
        entry = self.model(request.model)
        cfg = entry.config
        self._count(codec.seed_count(request), "seeds")
        args = codec.GenerateArgs.from_pb(request)
        call = args.check(cfg, entry.directions)
        self._count(call.rows, "seeds" if args.z is None else "z")
        self._check_size(entry, call.rows, args.render.fmt,
                         call.rows * cfg.num_ws * cfg.w_dim * 4 if args.return_ws else 0)
        noise = await self._noise(entry, call.render, call.rows)
        transforms = call.transform.rows(call.rows)
        ws_parts, x_parts = [], []
        for part in _parts(call.rows, entry.batcher.max_batch):   # chunk by chunk: stops at the deadline
            mapping = call.mapping.rows(part)
            to_ws = functools.partial(_edited_ws, mapping, call.edits, cfg, entry.w_avg)
            ws, x = await entry.batcher.generate(call.z[part], mapping.c, to_ws, call.render.noise_mode,
                                                 _rows(noise, part), deadline, _part(transforms, part))
            ws_parts.append(ws)
            x_parts.append(x)
        ws, x = (ws_parts[0], x_parts[0]) if len(x_parts) == 1 else (np.concatenate(ws_parts), np.concatenate(x_parts))
        response = pb.GenerateResponse()
        await self._encode(x, args.render, response.images)
        if args.return_ws:
            codec.fill_tensor(response.ws, ws)
        return response

    async def _map(self, request: pb.MapRequest, deadline: float | None) -> pb.MapResponse:
        entry = self.model(request.model)
        self._count(codec.seed_count(request), "seeds")
        args = codec.MapArgs.from_pb(request)
        call = args.check(entry.config)
        self._count(call.rows, "seeds" if args.seeds is not None else "z")
        ws = await self._ws(entry, call.z, call.mapping, deadline)
        response = pb.MapResponse()
        codec.fill_tensor(response.ws, ws)
        return response

    async def _synthesize(self, request: pb.SynthesizeRequest, deadline: float | None) -> pb.ImagesResponse:
        entry = self.model(request.model)
        args = codec.SynthesizeArgs.from_pb(request)
        call = args.check(entry.config, entry.directions)
        return await self._render(entry, call.edits.apply(call.ws), call.render, call.transform, args.render,
                                  deadline, "ws")

    async def _mix(self, request: pb.MixRequest, deadline: float | None) -> pb.ImagesResponse:
        entry = self.model(request.model)
        args = codec.MixArgs.from_pb(request)
        call = args.check(entry.config, entry.directions)
        return await self._render(entry, call.edits.apply(call.ws), call.render, call.transform, args.render,
                                  deadline, "w_a")

    async def _render(self, entry: ModelEntry, ws: np.ndarray, render: calls.Render, transform: calls.Transform,
                      options: codec.RenderArgs, deadline: float | None, what: str) -> pb.ImagesResponse:
        self._count(ws.shape[0], what)
        self._check_size(entry, ws.shape[0], options.fmt)
        noise = await self._noise(entry, render, ws.shape[0])
        x = await self._images(entry, ws, render.noise_mode, noise, transform.rows(ws.shape[0]), deadline)
        response = pb.ImagesResponse()
        await self._encode(x, options, response.images)
        return response

    async def _interpolate(self, request: pb.InterpolateRequest, deadline: float | None) -> AsyncIterator[pb.Frame]:
        entry = self.model(request.model)
        cfg = entry.config
        self._count(codec.seed_count(request), "seeds")
        args = codec.InterpolateArgs.from_pb(request)
        call = args.check(cfg, max_frames=self.settings.max_frames)
        self._count(call.rows, "seeds" if args.seeds is not None else "z" if args.z is not None else "ws")
        self._check_size(entry, 1, args.render.fmt, cfg.num_ws * cfg.w_dim * 4 if args.return_ws else 0)
        noise = call.noise(cfg)
        ws_keys = call.ws
        if ws_keys is None and call.space == "w":
            ws_keys = await self._ws(entry, call.key_z(cfg), call.mapping, deadline)
        z_keys = call.key_z(cfg) if call.space == "z" else None
        for first, part in call.batches(entry.batcher.max_batch):
            if call.space == "w":
                ws = call.between(ws_keys, part)
            else:
                ws = await self._ws(entry, call.between(z_keys, part, spherical=True), call.frame_mapping(part),
                                    deadline)
            x = await self._images(entry, ws, call.render.noise_mode, call.frames_noise(noise, len(part)),
                                   call.transform.along(part), deadline)
            for i in range(len(part)):
                frame = pb.Frame(index=first + i, total=call.total)
                await self._encode(x[i: i + 1], args.render, frame.image)
                if args.return_ws:
                    codec.fill_tensor(frame.ws, ws[i: i + 1])
                yield frame

    async def _project(self, request: pb.ProjectRequest, deadline: float | None) -> AsyncIterator[pb.ProjectEvent]:
        """Checks on the event loop (the model can be projected into, the arguments, the targets' sizes from
        their headers), then the projection in a worker; events as they come."""
        entry = self.model(request.model)
        s = self.settings
        reason = projection_unavailable(entry.generator.info)
        if reason is not None:
            raise ProjectionUnavailable(reason)
        if s.max_projections == 0:
            raise ProjectionUnavailable("this server runs no projections (--max-projections 0)")
        n = len(request.targets)
        if n > s.max_projection_targets:
            raise ValueError(f"targets: {n} targets in one request, over this server's limit of "
                             f"{s.max_projection_targets} (--max-projection-targets); split the request")
        args = codec.ProjectArgs.from_pb(request)
        call = args.check(entry.config, max_steps=s.max_projection_steps)
        for i, data in enumerate(args.targets):
            read_target(data, f"targets[{i}]", s.max_projection_pixels, s.max_projection_file_bytes, decode=False)
        job = self.projections.submit(entry.generator, call, args, deadline)
        try:
            async for event in job.events():
                yield event
        finally:
            job.cancel()    # the RPC is over (done, failed, cancelled, past its deadline): stop between two steps
