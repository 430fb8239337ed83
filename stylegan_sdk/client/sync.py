"""`Client`: a remote generator (stylegan.v1.StyleGAN over gRPC) with the `Generator` API, blocking.

    import stylegan_sdk as sg
    G = sg.Client("localhost:50051", model=None, timeout=60.0, token=None, tls=None)
    imgs = G.generate([0, 1, 2], psi=0.7)          # list of PIL images, as sg.load(...).generate
    ws = G.map(sg.seed_to_z([0, 1], G.info.z_dim), psi=0.7)
    x = G.synthesize(ws, output="float")           # float32 [N, C, H, W]
    G.directions                                   # {set name: Directions} served with the model
    img = G.generate(42, edits={"attributes": {"smile": 3.0}})   # edits computed on the server
    ws2 = G.edit(ws, "attributes", {"smile": 3.0})  # ws + 3 * the smile vector, here (no request)
    for frame in G.interpolate([0, 5, 9], num_frames=30):   # a video, frame by frame
        ...
    p = G.project("face.png", steps=500, progress=print, timeout=600)   # image -> ws on the server (torch)

Same method names, arguments, defaults, return types and errors as the in-process `Generator`: each call
is checked by its one definition (stylegan_sdk.calls) before anything is sent, so a bad argument raises
the same ValueError with the same text (the model's sizes come from GetModelInfo, fetched once); the
server checks again and answers INVALID_ARGUMENT, raised as `InvalidArgumentError`, a ValueError. Large
requests are split into calls that fit the message limit. UNAVAILABLE is retried with backoff until the
call's deadline. Imports neither torch nor any model code.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
import numpy as np

from .._proto import codec, pb_grpc
from ..config import GeneratorConfig, ModelInfo
from ..editing.directions import Directions
from ..errors import ClientError, ServerError, ServerUnavailableError
from ..projection.options import DEFAULT_LOSS, DEFAULT_STEPS, Projection
from .base import ClientBase
from .planning import (
    Plan,
    RemoteModel,
    edit,
    plan_generate,
    plan_interpolate,
    plan_map,
    plan_mix,
    plan_project,
    plan_synthesize,
    project_event,
    projection_error,
)


class Client(ClientBase):
    """A remote Generator. One channel, reused; thread-safe (share one Client between threads)."""

    def _open(self) -> None:
        s = self.settings
        creds = s.credentials()
        self._channel = (grpc.secure_channel(s.target, creds, s.channel_options()) if creds is not None
                         else grpc.insecure_channel(s.target, s.channel_options()))
        self._stub = pb_grpc.StyleGANStub(self._channel)
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------
    def _call(self, method: str, request: Any, deadline: float) -> Any:
        rpc = getattr(self._stub, method)
        attempt = 0
        while True:
            try:
                return rpc(request, timeout=self._remaining(method, deadline), metadata=self.settings.metadata)
            except grpc.RpcError as e:
                time.sleep(self._retry_delay(e, method, attempt, deadline))
                attempt += 1

    def _run(self, plan: Plan) -> Any:
        deadline = self._deadline()
        return plan.finish([self._call(plan.method, r, deadline) for r in plan.requests])

    def _meta(self) -> RemoteModel:
        if self._model is None:
            msg = self._call("GetModelInfo", codec.GetModelInfoArgs(self.model).to_pb(), self._deadline())
            with self._lock:
                self._remember(msg)
        return self._model

    def _stream(self, method: str, req: Any, convert: Callable[[Any], Any], timeout: float | None) -> Iterator[Any]:
        """A server-streaming call's messages as they arrive, converted; UNAVAILABLE before the first one is retried
        like any call. Closing the iterator (or leaving it early) cancels the call."""
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            call = getattr(self._stub, method)(req, timeout=self._remaining(method, deadline),
                                               metadata=self.settings.metadata)
            got_any = False
            try:
                for msg in call:
                    got_any = True
                    yield convert(msg)
                return
            except grpc.RpcError as e:
                time.sleep(self._stream_retry_delay(e, got_any, attempt, deadline, method))
                attempt += 1
            finally:
                call.cancel()

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

    @property
    def directions(self) -> dict[str, Directions]:
        """The model's direction sets by name, as the server's `Generator.directions` (from GetModelInfo)."""
        return dict(self._meta().directions)

    def list_models(self) -> dict[str, ModelInfo]:
        """Every model the server serves, by name (the default one first)."""
        return self._models(self._call("ListModels", codec.ListModelsArgs().to_pb(), self._deadline()))

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

    # -- the Generator's calls ------------------------------------------------
    def map(self, z: Any, c: Any = None, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] (one z [z_dim] -> [num_ws, w_dim]), truncated toward w_avg."""
        return self._run(plan_map(self._meta(), self.model, z, c, psi, cutoff))

    def synthesize(self, ws: Any, noise_mode: str = "const", output: str = "float",
                   noise_seed: int | None = None, translate: Any = None, rotate: Any = None,
                   transform: Any = None, edits: Any = None) -> Any:
        """ws [N, num_ws, w_dim] -> images ("float": float32 [N, C, H, W]; "uint8": uint8 [N, H, W, C]; "pil").
        edits: {direction set name: {direction index or name: strength}} with the model's `directions`."""
        return self._run(plan_synthesize(self._meta(), self.model, ws, noise_mode, output, noise_seed,
                                         translate, rotate, transform, edits))

    def generate(self, seeds: int | str | Iterable[int], psi: float = 1.0, cutoff: int | None = None,
                 noise_mode: str = "const", c: Any = None, output: str = "pil", noise_seed: int | None = None,
                 translate: Any = None, rotate: Any = None, transform: Any = None, edits: Any = None) -> Any:
        """Images for seeds ('0-7,42', a list, or one int for a single image). edits: {direction set name:
        {direction index or name: strength}} with the model's `directions`, added after truncation."""
        return self._run(plan_generate(self._meta(), self.model, seeds, psi, cutoff, noise_mode, c, output,
                                       noise_seed, translate, rotate, transform, edits))

    def mix(self, w_a: Any, w_b: Any, layers: int | str | Iterable[int], noise_mode: str = "const",
            output: str = "pil", noise_seed: int | None = None, translate: Any = None, rotate: Any = None,
            transform: Any = None, edits: Any = None) -> Any:
        """Images from w_a with the listed ws rows taken from w_b (style mixing), then the edits."""
        return self._run(plan_mix(self._meta(), self.model, w_a, w_b, layers, noise_mode, output, noise_seed,
                                  translate, rotate, transform, edits))

    def edit(self, ws: Any, directions: Directions | str, strengths: Any,
             layers: int | str | Iterable[int] | None = None) -> np.ndarray:
        """Generator.edit, computed here (no request once the model is known): ws + sum(strength * vector) on the
        chosen ws rows. directions: a Directions or the name of one of the model's sets."""
        return edit(self._meta(), ws, directions, strengths, layers)

    def interpolate(self, seeds: Any = None, *, z: Any = None, ws: Any = None, num_frames: int = 30,
                    space: str = "w", psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "const",
                    c: Any = None, output: str = "pil", noise_seed: int | None = None,
                    translate: Any = None, rotate: Any = None, transform: Any = None,
                    timeout: float | None = None) -> Iterator[Any]:
        """Frames along a path through K >= 2 keyframes (seeds, z [K, z_dim] or ws [K, num_ws, w_dim]):
        num_frames in all, spread evenly from the first keyframe to the last.
        space "w": lerp between the mapped keyframes; "z": slerp in Z, every frame mapped. Random noise is
        one draw shared by all frames. Yields one image per frame (PIL, uint8 [H, W, C] or float [C, H, W]);
        timeout (default: the client's) bounds the whole stream. Arguments are checked at once."""
        req, frame = plan_interpolate(self._meta(), self.model, seeds, z, ws, num_frames, space, psi, cutoff,
                                      noise_mode, c, output, noise_seed, translate, rotate,
                                      transform)
        return self._stream("Interpolate", req, frame, timeout)

    def project(self, images: Any, *, space: str = "w", steps: int = DEFAULT_STEPS, loss: str = DEFAULT_LOSS,
                init: Any = None, optimize_noise: bool = True, seed: int = 0,
                progress: Callable[[int, int, np.ndarray], None] | None = None, progress_every: int = 10,
                preview: Callable[[int, np.ndarray], None] | None = None, transform: Any = None,
                timeout: float | None = None) -> Projection:
        """sg.project(G, images, ...) on the server (a model it runs on torch): the same arguments, checks and
        `Projection` (without the optimised noise and history). images: PIL images, uint8 arrays ([H, W, C],
        [N, H, W, C] or a list), or PNG / JPEG files (paths or bytes) read here; prepared here as in process and
        sent at the model's size. progress(step, steps, losses [N]) every progress_every steps, as the server's
        events arrive; preview(step, uint8 [N, H, W, C]): the current ws rendered by the server, as often.
        timeout (default: the client's) bounds the whole run: a projection takes long, give it one. Leaving early
        (an exception from a callback, KeyboardInterrupt) cancels the call; the server stops between two steps.
        A model the server cannot project into raises ProjectionUnavailable (a ValueError); a full server
        ServerBusyError."""
        req = plan_project(self._meta(), self.model, images, space, steps, loss, init, optimize_noise, seed, progress,
                           progress_every, preview, transform)
        try:
            with contextlib.closing(self._stream("Project", req, lambda msg: msg, timeout)) as events:
                for msg in events:
                    result = project_event(msg, progress, preview)
                    if result is not None:
                        return result
        except ClientError as e:
            raise projection_error(e) from None
        raise ServerError(f"Project on {self.target}: the stream ended without a result")

    # -- lifetime -------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
