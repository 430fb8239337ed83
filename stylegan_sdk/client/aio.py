"""`AsyncClient`: `Client` for asyncio, the same calls as coroutines (`await G.generate(...)`,
`await G.project(...)`) and `interpolate` as an async iterator. Settings, retry policy, planning and errors are
the `Client`'s."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
import numpy as np

from .._proto import codec, pb_grpc
from ..config import GeneratorConfig, ModelInfo
from ..editing.directions import Directions
from ..errors import ClientError, ServerError
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


class AsyncClient(ClientBase):
    """`await G.get_info()` for `info` (then also available as the `info` property). The channel is
    opened on first use, inside the running event loop."""

    def _open(self) -> None:
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    def _get_stub(self) -> Any:
        if self._stub is None:
            s = self.settings
            creds = s.credentials()
            self._channel = (grpc.aio.secure_channel(s.target, creds, s.channel_options()) if creds is not None
                             else grpc.aio.insecure_channel(s.target, s.channel_options()))
            self._stub = pb_grpc.StyleGANStub(self._channel)
        return self._stub

    async def _call(self, method: str, request: Any, deadline: float) -> Any:
        rpc = getattr(self._get_stub(), method)
        attempt = 0
        while True:
            try:
                return await rpc(request, timeout=self._remaining(method, deadline), metadata=self.settings.metadata)
            except grpc.RpcError as e:
                await asyncio.sleep(self._retry_delay(e, method, attempt, deadline))
                attempt += 1

    async def _run(self, plan: Plan) -> Any:
        deadline = self._deadline()
        return plan.finish([await self._call(plan.method, r, deadline) for r in plan.requests])

    async def _meta(self) -> RemoteModel:
        if self._model is None:
            self._remember(await self._call("GetModelInfo", codec.GetModelInfoArgs(self.model).to_pb(),
                                            self._deadline()))
        return self._model

    async def get_info(self) -> ModelInfo:
        return (await self._meta()).info

    async def get_config(self) -> GeneratorConfig:
        return (await self._meta()).config

    async def get_directions(self) -> dict[str, Directions]:
        return dict((await self._meta()).directions)

    @property
    def info(self) -> ModelInfo:
        """Available once any call (or `await get_info()`) has fetched it."""
        if self._model is None:
            raise RuntimeError("AsyncClient.info: call `await client.get_info()` first")
        return self._model.info

    @property
    def directions(self) -> dict[str, Directions]:
        """The model's direction sets by name; available once any call (or `await get_directions()`) has
        fetched the model's description."""
        if self._model is None:
            raise RuntimeError("AsyncClient.directions: call `await client.get_directions()` first")
        return dict(self._model.directions)

    async def list_models(self) -> dict[str, ModelInfo]:
        return self._models(await self._call("ListModels", codec.ListModelsArgs().to_pb(), self._deadline()))

    async def map(self, z: Any, c: Any = None, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        return await self._run(plan_map(await self._meta(), self.model, z, c, psi, cutoff))

    async def synthesize(self, ws: Any, noise_mode: str = "const", output: str = "float",
                         noise_seed: int | None = None, translate: Any = None, rotate: Any = None,
                         transform: Any = None, edits: Any = None) -> Any:
        return await self._run(plan_synthesize(await self._meta(), self.model, ws, noise_mode, output, noise_seed,
                                               translate, rotate, transform, edits))

    async def generate(self, seeds: int | str | Iterable[int], psi: float = 1.0, cutoff: int | None = None,
                       noise_mode: str = "const", c: Any = None, output: str = "pil",
                       noise_seed: int | None = None, translate: Any = None,
                       rotate: Any = None, transform: Any = None, edits: Any = None) -> Any:
        return await self._run(plan_generate(await self._meta(), self.model, seeds, psi, cutoff, noise_mode, c,
                                             output, noise_seed, translate, rotate, transform, edits))

    async def mix(self, w_a: Any, w_b: Any, layers: int | str | Iterable[int], noise_mode: str = "const",
                  output: str = "pil", noise_seed: int | None = None, translate: Any = None, rotate: Any = None,
                  transform: Any = None, edits: Any = None) -> Any:
        return await self._run(plan_mix(await self._meta(), self.model, w_a, w_b, layers, noise_mode, output,
                                        noise_seed, translate, rotate, transform, edits))

    async def edit(self, ws: Any, directions: Directions | str, strengths: Any,
                   layers: int | str | Iterable[int] | None = None) -> np.ndarray:
        """As `Client.edit` (computed here, no request once the model is known), awaited like the other calls."""
        return edit(await self._meta(), ws, directions, strengths, layers)

    async def interpolate(self, seeds: Any = None, *, z: Any = None, ws: Any = None, num_frames: int = 30,
                          space: str = "w", psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "const",
                          c: Any = None, output: str = "pil", noise_seed: int | None = None,
                          translate: Any = None, rotate: Any = None, transform: Any = None,
                          timeout: float | None = None) -> AsyncIterator[Any]:
        """As `Client.interpolate`, an async iterator: `async for frame in G.interpolate(...)`."""
        req, frame = plan_interpolate(await self._meta(), self.model, seeds, z, ws, num_frames, space, psi, cutoff,
                                      noise_mode, c, output, noise_seed, translate, rotate, transform)
        async with contextlib.aclosing(self._stream("Interpolate", req, timeout)) as messages:
            async for msg in messages:
                yield frame(msg)

    async def project(self, images: Any, *, space: str = "w", steps: int = DEFAULT_STEPS, loss: str = DEFAULT_LOSS,
                      init: Any = None, optimize_noise: bool = True, seed: int = 0,
                      progress: Callable[..., Any] | None = None, progress_every: int = 10,
                      preview: Callable[..., Any] | None = None, transform: Any = None,
                      timeout: float | None = None) -> Projection:
        """As `Client.project`, awaited; progress and preview may also be coroutine functions (awaited in turn).
        Cancelling the task cancels the call: the server stops between two steps."""
        req = plan_project(await self._meta(), self.model, images, space, steps, loss, init, optimize_noise, seed,
                           progress, progress_every, preview, transform)
        pending: list[Any] = []

        def later(fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
            return None if fn is None else lambda *a: pending.append(fn(*a))

        try:
            async with contextlib.aclosing(self._stream("Project", req, timeout)) as messages:
                async for msg in messages:
                    result = project_event(msg, later(progress), later(preview))
                    while pending:
                        value = pending.pop(0)
                        if inspect.isawaitable(value):
                            await value
                    if result is not None:
                        return result
        except ClientError as e:
            raise projection_error(e) from None
        raise ServerError(f"Project on {self.target}: the stream ended without a result")

    async def _stream(self, method: str, req: Any, timeout: float | None) -> AsyncIterator[Any]:
        """A server-streaming call's messages as they arrive; UNAVAILABLE before the first one is retried like any
        call. Closing the iterator (or leaving it early) cancels the call."""
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            call = getattr(self._get_stub(), method)(req, timeout=self._remaining(method, deadline),
                                                     metadata=self.settings.metadata)
            got_any = False
            try:
                async for msg in call:
                    got_any = True
                    yield msg
                return
            except grpc.RpcError as e:
                await asyncio.sleep(self._stream_retry_delay(e, got_any, attempt, deadline, method))
                attempt += 1
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
