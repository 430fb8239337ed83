"""The server's lifecycle: `create_server(address, models, settings) -> (server, port)`, model loading in
the background, graceful stop.

    server, port = create_server("[::]:50051", {"ffhq": "exported/ffhq"})   # inside a running event loop
    await server.start()              # listens at once; health NOT_SERVING until the models are loaded
    await server.wait_until_ready()   # models loaded, health SERVING
    await server.wait_for_termination()

The service itself is serving/servicer.py; the settings serving/config.py; a server on a background
thread serving/background.py; the command line serving/cli.py.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection

from stylegan_sdk._proto import SERVICE_NAME, codec, pb
from stylegan_sdk.generator import Generator
from stylegan_sdk.loading import load

from .auth import TokenAuthInterceptor
from .batcher import Batcher
from .config import ServerSettings
from .metrics import ServerMetrics
from .servicer import Malformed, ModelEntry, StyleGANServicer, add_to_server, lenient_deserializer, log

ModelSource = Union[str, "os.PathLike[str]", Generator, Callable[[], Generator]]
Models = Mapping[str, ModelSource] | Sequence[tuple[str, ModelSource]]
HEALTH_SERVICES = ("", SERVICE_NAME)


def resolve_model(source: ModelSource, settings: ServerSettings) -> Generator:
    """A path (sg.load with the settings' backend, device and precision), a Generator, or a zero-argument
    callable returning one."""
    if isinstance(source, Generator):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load(source, backend=settings.backend, device=settings.device, precision=settings.precision)
    if callable(source):
        G = source()
        if not isinstance(G, Generator):
            raise TypeError(f"model loader returned {type(G).__name__}, not a Generator")
        return G
    raise TypeError(f"model: expected a path, a Generator or a loader, got {type(source).__name__}")


def batch_limit(G: Generator, max_batch: int) -> int:
    """max_batch, clamped to the rows the backend accepts in one call (Backend.batch_range)."""
    return G.backend.rows_per_call(max_batch)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address: expected HOST:PORT, got {address!r}")
    return host, int(port)


def _read_pem(value: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()


class StyleGANServer:
    """A grpc.aio server with the StyleGAN, health and reflection services, metrics and the batchers."""

    def __init__(self, server: grpc.aio.Server, servicer: StyleGANServicer, health_servicer: Any,
                 models: Sequence[tuple[str, ModelSource]], port: int, host: str, settings: ServerSettings,
                 metrics: ServerMetrics) -> None:
        self.grpc_server = server
        self.servicer = servicer
        self.health = health_servicer
        self.metrics = metrics
        self.settings = settings
        self.port = port
        self.host = host
        self.metrics_port: int | None = None
        self._models = list(models)
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

    @property
    def metrics_host(self) -> str:
        """The metrics endpoint's address: --metrics-host, else the gRPC host (loopback stays loopback)."""
        return (self.settings.metrics_host or self.host).strip("[]")

    @property
    def metrics_url(self) -> str:
        """http://HOST:PORT/metrics to open on this machine (localhost for a wildcard address; IPv6 in brackets)."""
        host = self.metrics_host
        if host in ("::", "0.0.0.0", ""):
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.metrics_port}/metrics"

    async def start(self) -> None:
        """Listen (health NOT_SERVING), start the metrics endpoint, load the models in the background."""
        for service in HEALTH_SERVICES:
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.grpc_server.start()
        if self.settings.metrics_port is not None:
            self.metrics_port = self.metrics.start_http(self.metrics_host, self.settings.metrics_port)
        self._load_task = asyncio.get_running_loop().create_task(self._load(), name="load-models")

    async def _load(self) -> None:
        servicer = self.servicer
        for name, source in self._models:
            t0 = time.perf_counter()
            G = await asyncio.to_thread(self._resolve, source)
            max_batch = batch_limit(G, self.settings.max_batch)
            batcher = Batcher(G.backend, name, max_batch, self.settings.max_delay_s, self.metrics,
                              requests_in_flight=lambda: servicer.admitted)
            batcher.start()
            s = self.settings
            limits = pb.ServerLimits(max_seeds=s.max_seeds, max_message_bytes=s.max_message_bytes, max_batch=max_batch,
                                     max_projection_steps=s.max_projection_steps,
                                     max_projection_targets=s.max_projection_targets,
                                     max_projection_pixels=s.max_projection_pixels,
                                     max_projection_file_bytes=s.max_projection_file_bytes,
                                     max_projections=s.max_projections,
                                     max_queued_projections=s.max_queued_projections)
            directions = G.directions
            info = codec.model_info_to_pb(G.info, name, G.config.to_json(), G.w_avg, limits, directions)
            servicer.models[name] = ModelEntry(name, G, batcher, info, owned=not isinstance(source, Generator),
                                               directions=directions)
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
            return resolve_model(source, self.settings)
        finally:
            with self._lock:
                self._loading_threads -= 1

    @property
    def threads_still_working(self) -> bool:
        """A model load, backend call or projection step outlived stop() (threads cannot be interrupted)."""
        return (self._loading_threads > 0 or any(e.batcher.busy for e in self.servicer.models.values())
                or self.servicer.projections.running > 0)

    async def wait_until_ready(self, timeout: float | None = None) -> None:
        """Until every model is loaded (and health is SERVING); re-raises a loading error."""
        if self._load_task is None:
            raise RuntimeError("start() the server first")
        await asyncio.wait_for(asyncio.shield(self._load_task), timeout)

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: health NOT_SERVING and new RPCs refused at once, in-flight RPCs finish (up to
        grace seconds, default settings.grace, then they are cancelled; projections stop after their current
        step and answer what they have, stopped), then the batchers, the projection workers, their threads and
        metrics stop."""
        if self._stop_task is None:
            grace = self.settings.grace if grace is None else grace
            self._stop_task = asyncio.get_running_loop().create_task(self._stop(grace), name="stop")
        await asyncio.shield(self._stop_task)

    async def _stop(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        self.servicer.stopping = True
        self.servicer.projections.stop()
        await self.health.enter_graceful_shutdown()  # every service NOT_SERVING (health itself still answers)
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        try:
            await asyncio.wait_for(self.servicer.wait_idle(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            if self.servicer.admitted:   # (a grace of 0 times out before it looks: say it only when it is so)
                log.warning("grace period over: cancelling the requests still in flight")
        # Our RPCs are done (or out of time): let the last responses flush, cut long-lived health watches.
        await self.grpc_server.stop(min(1.0, max(0.0, deadline - time.monotonic())))
        projections = self.servicer.projections
        while projections.running and time.monotonic() < deadline + 1.0:   # a step under way: let it end
            await asyncio.sleep(0.01)
        projections.close()
        for entry in list(self.servicer.models.values()):
            await entry.batcher.close()
            if entry.owned and not entry.batcher.busy and not projections.running:
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


def add_health_to_server(health_servicer: Any, server: grpc.aio.Server) -> None:
    """grpc.health.v1, served by grpcio's HealthServicer, registered with the lenient decoding of our own
    service: bytes that are not a HealthCheckRequest get INVALID_ARGUMENT and one log line (grpcio would
    answer UNKNOWN with the decoder's exception class in the details, and log a traceback)."""

    async def refuse(request: Malformed, method: str, context: grpc.aio.ServicerContext) -> None:
        log.warning("%s: a request of %d bytes is not a valid %s", method, request.size, request.message)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request is not a valid {request.message}")

    async def check(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            await refuse(request, "Check", context)
        return await health_servicer.Check(request, context)

    async def watch(request: Any, context: grpc.aio.ServicerContext) -> None:
        if isinstance(request, Malformed):
            await refuse(request, "Watch", context)
        await health_servicer.Watch(request, context)

    decode = lenient_deserializer(health_pb2.HealthCheckRequest)
    encode = health_pb2.HealthCheckResponse.SerializeToString
    handlers = {"Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=decode,
                                                             response_serializer=encode),
                "Watch": grpc.unary_stream_rpc_method_handler(watch, request_deserializer=decode,
                                                              response_serializer=encode)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(health.SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(health.SERVICE_NAME, handlers)


def create_server(address: str, models: Models, settings: ServerSettings | None = None
                  ) -> tuple[StyleGANServer, int]:
    """Build the server and bind `address` ("host:port"; port 0 picks a free one) -> (server, port).

    models: name -> exported folder / model file (loaded with settings.backend on settings.device by
    sg.load), a Generator, or a callable returning one; the first is the default model. Call inside a
    running event loop, then `await server.start()`."""
    settings = (settings or ServerSettings()).validate()
    items = list(models.items()) if isinstance(models, Mapping) else list(models)
    if not items:
        raise ValueError("models: give at least one model")
    host, _ = split_address(address)
    metrics = ServerMetrics()
    interceptors = [TokenAuthInterceptor(settings.token, metrics)] if settings.token else None
    server = grpc.aio.server(interceptors=interceptors, options=[
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ])
    servicer = StyleGANServicer(settings, metrics)
    add_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    add_health_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        if settings.tls_cert is not None:
            creds = grpc.ssl_server_credentials([(_read_pem(settings.tls_key), _read_pem(settings.tls_cert))])
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise OSError(f"address: cannot listen on {address!r} ({e})") from None
    if not port:
        raise OSError(f"address: cannot listen on {address!r}")
    return StyleGANServer(server, servicer, health_servicer, items, port, host, settings, metrics), port
