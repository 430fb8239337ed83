"""Dynamic batching: concurrent map / synthesize work for one model merged into few backend calls.

Requests hand the batcher rows that are ready for the backend: z and c for the mapping network; ws and,
for random noise, the noise images already drawn from each request's own noise_seed; or both at once
for `generate` (z, c, the request's truncation and its noise), so that a request that needs both
networks crosses to the worker thread once. Compatible jobs (same kind of call: map with or without c,
synthesize or generate with the same noise mode) are concatenated into one backend call of at most
`max_batch` rows, waiting at most `max_delay_s` after the oldest job arrived for company (and not at all
when every request in the server already has its job queued here, so a lone request pays no delay:
with nothing queued or computing, its own task hands it to the backend, without passing through the
batcher's worker task); the results are split back row for row. The backend sees exactly the rows each
request would have sent alone, so every answer equals the unbatched one (up to the backend's batch-size
float noise).

Jobs are never split: one larger than max_batch runs alone, in backend chunks of max_batch rows. The
backend runs in one thread per model (`BackendThread`: one hop there, one back to the event loop), so
the event loop stays free while it computes (health checks and other RPCs answer, other requests queue
up here to be batched), and one model never runs two batches at once (the backend's own threads use
the cores). A job whose
deadline has passed, or whose RPC was cancelled, is dropped before it is computed. If a merged call
fails, its jobs are retried one by one, so a request that breaks the backend fails alone.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stylegan_sdk.backends.base import Backend

from .metrics import ServerMetrics

log = logging.getLogger("stylegan.serving")


class DeadlineExpired(Exception):
    """The request's deadline passed while it waited; it was not computed."""


class BackendFailed(Exception):
    """The backend raised while computing this request (details in the server log)."""


class BatcherClosed(Exception):
    """The server is shutting down."""


# A remote backend (triton://) unreachable or too slow: answered UNAVAILABLE / DEADLINE_EXCEEDED, not INTERNAL.
REMOTE_ERRORS = (ConnectionError, TimeoutError)


class InvalidRequest(ValueError):
    """A request's own arguments failed on its rows in the worker (generate: a truncation that leaves
    float32's range); answered as the ValueError it is, not as a backend failure."""


class BackendThread:
    """The one thread a model's backend runs in. `call(fn, *args)` hands it fn(*args) and returns an asyncio
    future of the result, settled on the caller's event loop (call_soon_threadsafe). One hop each way with
    nothing in between: loop.run_in_executor chains a concurrent.futures.Future to the asyncio one, which
    doubled the cost of the round trip (measured ~40-60 us against ~20 us on the 2-core CPU machine)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None   # started on the first call
        self._closed = False

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        if self._closed:
            raise BatcherClosed("the server is shutting down")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()
        self._calls.put((loop, future, fn, args))
        return future

    def close(self) -> None:
        """Stop after the call in progress (it cannot be interrupted); calls not yet started fail with
        BatcherClosed. Does not wait."""
        self._closed = True
        self._calls.put(None)

    def _serve(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            loop, future, fn, args = item
            item = None
            result: Any = None
            error: BaseException | None = None
            if self._closed:
                error = BatcherClosed("the server is shutting down")
            else:
                try:
                    result = fn(*args)
                except BaseException as e:  # the caller's to handle, as with an executor's future
                    error = e
            args = None
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the event loop is closed: the server stopped while this call ran
                log.info("backend thread %s: a result arrived after the server stopped", self.name)
            loop = future = fn = result = error = None


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """On the event loop: the result of a BackendThread call (unless its awaiter was cancelled meanwhile)."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


@dataclass(eq=False)
class _Job:
    key: tuple[Any, ...]          # ("map", has_c) | ("synthesize", noise_mode) | ("generate", has_c, noise_mode)
    arrays: tuple[Any, ...]       # map: (z, c | None); synthesize: (ws, noise list | None, transform | None);
                                  # generate: (z, c | None, noise list | None, transform | None)
    n: int                        # rows
    future: asyncio.Future
    deadline: float | None        # time.monotonic() by which the answer is useless
    to_ws: Callable[[np.ndarray], np.ndarray] | None = None   # generate: w [n, w_dim] -> this job's ws
    enqueued: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(
        self,
        backend: Backend,
        model: str = "",                      # for metrics and thread names
        max_batch: int = 32,                  # rows per backend call
        max_delay_s: float = 0.002,           # how long the oldest job waits for company
        metrics: ServerMetrics | None = None,
        requests_in_flight: Callable[[], int] | None = None,  # the server's admitted requests (see below)
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: must be >= 1, got {max_batch}")
        if max_delay_s < 0:
            raise ValueError(f"max_delay: must be >= 0, got {max_delay_s}")
        self.backend = backend
        self.model = model
        self.max_batch = int(max_batch)
        self.max_delay_s = float(max_delay_s)
        self.metrics = metrics
        self.requests_in_flight = requests_in_flight
        self._queue: collections.deque[_Job] = collections.deque()
        self._wakeup = asyncio.Event()
        self._thread = BackendThread(f"backend-{model or 'model'}")
        self._task: asyncio.Task | None = None
        self._closed = False
        self._running = False         # a backend call is running in the worker thread
        self._dispatched = 0          # batches handed to the worker thread and not yet answered
        self._backend_free = asyncio.Event()   # set while _dispatched == 0
        self._backend_free.set()

    # -- public ---------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._worker(), name=f"batcher-{self.model}")

    async def map(self, z: np.ndarray, c: np.ndarray | None, deadline: float | None = None) -> np.ndarray:
        """z [N, z_dim], c [N, c_dim] | None -> w [N, w_dim]."""
        return await self._submit(("map", c is not None), (z, c), z.shape[0], deadline)

    async def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                         deadline: float | None = None, transform: np.ndarray | None = None) -> np.ndarray:
        """ws [N, num_ws, w_dim] (+ per-row noise for "random", per-row StyleGAN3 transforms [N, 3, 3])
        -> float images [N, C, H, W]."""
        if noise_mode != "random":
            noise = None
        return await self._submit(("synthesize", noise_mode), (ws, noise, transform), ws.shape[0], deadline)

    async def generate(self, z: np.ndarray, c: np.ndarray | None, to_ws: Callable[[np.ndarray], np.ndarray],
                       noise_mode: str, noise: list[np.ndarray] | None, deadline: float | None = None,
                       transform: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Both networks in one job: z [N, z_dim], c -> w -> to_ws(w) (this request's truncation) -> ws
        [N, num_ws, w_dim] -> float images [N, C, H, W]; returns (ws, images)."""
        if noise_mode != "random":
            noise = None
        return await self._submit(("generate", c is not None, noise_mode), (z, c, noise, transform), z.shape[0],
                                  deadline, to_ws)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """A backend call is still running (it outlived the grace period)."""
        return self._running

    async def close(self) -> None:
        """Stop the worker (after its current backend call), fail what is still queued, free the thread."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(BatcherClosed("the server is shutting down"))
        # Do not wait for a backend call still running past the grace period: it cannot be interrupted.
        self._thread.close()

    # -- queue ----------------------------------------------------------------
    async def _submit(self, key: tuple[Any, ...], arrays: tuple[Any, ...], n: int, deadline: float | None,
                      to_ws: Callable[[np.ndarray], np.ndarray] | None = None) -> Any:
        if self._closed:
            raise BatcherClosed("the server is shutting down")
        if self._task is None:
            self.start()
        job = _Job(key, arrays, n, asyncio.get_running_loop().create_future(), deadline, to_ws)
        if self._alone():
            # Nothing queued or computing and no other request in the server: nobody to batch with, so this
            # task runs the job itself (the same code as a batch of one, minus a hop through the worker).
            self._drop_dead(time.monotonic(), [job])
            if not job.future.done():
                await self._run([job])
        else:
            self._queue.append(job)
            self._wakeup.set()
        return await job.future  # a cancelled RPC cancels this future: the worker then skips the job

    def _alone(self) -> bool:
        return (not self._queue and self._dispatched == 0 and self.requests_in_flight is not None
                and self.requests_in_flight() <= 1)

    def _drop_dead(self, now: float, jobs: list[_Job] | None = None) -> None:
        """Remove cancelled jobs and fail those whose deadline has passed (from the queue, or from `jobs`)."""
        keep: collections.deque[_Job] = collections.deque()
        for job in self._queue if jobs is None else jobs:
            if job.future.done():
                self._count_drop("cancelled")
            elif job.deadline is not None and now >= job.deadline:
                job.future.set_exception(DeadlineExpired("deadline exceeded before the request was computed"))
                self._count_drop("deadline")
            else:
                keep.append(job)
        if jobs is None:
            self._queue = keep

    def _count_drop(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.child("dropped", reason).inc()

    def _rows_ready(self, key: tuple[Any, ...]) -> int:
        return sum(job.n for job in self._queue if job.key == key and not job.future.done())

    def _take(self, key: tuple[Any, ...]) -> list[_Job]:
        """Pop the compatible jobs, oldest first, up to max_batch rows (a larger first job goes alone)."""
        batch: list[_Job] = []
        rows = 0
        keep: collections.deque[_Job] = collections.deque()
        for job in self._queue:
            if job.key == key and (not batch or rows + job.n <= self.max_batch) and rows < self.max_batch:
                batch.append(job)
                rows += job.n
            else:
                keep.append(job)
        self._queue = keep
        return batch

    async def _worker(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not leave every later request waiting forever
                log.exception("batcher of model %r: unexpected error", self.model)
                await asyncio.sleep(0.01)

    async def _step(self) -> None:
        """Wait for work, form one batch, run it."""
        self._drop_dead(time.monotonic())
        if not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
            return
        if self._dispatched:  # a lone request's own task is computing: batch what comes once it is done
            await self._backend_free.wait()
            return
        first = self._queue[0]
        # Wait for company until the batch is full or the oldest job has waited max_delay, and only while
        # some request in the server has no job queued here yet (nobody else coming: no point waiting).
        while self._rows_ready(first.key) < self.max_batch and not first.future.done():
            if self.requests_in_flight is not None and self.requests_in_flight() <= len(self._queue):
                break
            remaining = first.enqueued + self.max_delay_s - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                break
        self._drop_dead(time.monotonic())
        if not self._queue:
            return
        batch = self._take(self._queue[0].key)
        try:
            await self._run(batch)
        except BaseException as e:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(BatcherClosed("the server is shutting down")
                                             if isinstance(e, asyncio.CancelledError) else
                                             BackendFailed("the batcher failed on this request"))
            raise

    # -- running --------------------------------------------------------------
    async def _run(self, batch: list[_Job]) -> None:
        key = batch[0].key
        kind = key[0]
        start = time.monotonic()
        self._dispatched += 1
        self._backend_free.clear()
        try:
            computing = self._thread.call(self._compute, key, _merge(batch), [(job.n, job.to_ws) for job in batch])
            if self.metrics is not None:  # recorded while the backend computes, off the request's path
                m = self.metrics
                for job in batch:
                    m.child("queue_time", self.model, kind).observe(start - job.enqueued)
                m.child("batch_rows", self.model, kind).observe(sum(job.n for job in batch))
                m.child("batch_requests", self.model, kind).observe(len(batch))
            out = await computing
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if len(batch) > 1 and not isinstance(e, (*REMOTE_ERRORS, BatcherClosed)):  # the culprit: every job alone
                for job in batch:
                    await self._run_alone(job)
                return
            for job in batch:
                self._fail(job, e)
            return
        finally:
            self._dispatched -= 1
            if not self._dispatched:
                self._backend_free.set()
            if self.metrics is not None:
                self.metrics.child("backend_time", self.model, kind).observe(time.monotonic() - start)
        offset = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(_rows(out, slice(offset, offset + job.n)))
            offset += job.n

    async def _run_alone(self, job: _Job) -> None:
        if job.future.done():
            return
        try:
            out = await self._thread.call(self._compute, job.key, job.arrays, [(job.n, job.to_ws)])
        except Exception as e:
            self._fail(job, e)
            return
        if not job.future.done():
            job.future.set_result(out)

    def _fail(self, job: _Job, e: Exception) -> None:
        """Answer a job whose backend call raised: its own bad arguments (InvalidRequest), an unreachable or
        slow remote backend (REMOTE_ERRORS) and shutdown (BatcherClosed) as themselves, anything else as
        BackendFailed (details logged)."""
        if isinstance(e, REMOTE_ERRORS):
            log.warning("backend of model %r unavailable (%s, %d rows): %s", self.model, job.key[0], job.n, e)
        elif not isinstance(e, (InvalidRequest, BatcherClosed)):
            log.error("backend call failed (model %r, %s, %d rows)", self.model, job.key[0], job.n, exc_info=e)
            e = BackendFailed("the backend failed on this request")
        if not job.future.done():
            job.future.set_exception(e)

    def _compute(self, key: tuple[Any, ...], arrays: tuple[Any, ...],
                 to_ws: list[tuple[int, Callable[[np.ndarray], np.ndarray] | None]]) -> Any:
        """In the worker thread: the backend on the merged rows, in chunks of max_batch. generate: map, each
        job's truncation on its own rows, synthesize -> (ws, images)."""
        self._running = True
        try:
            kind = key[0]
            if kind == "map":
                return self._map(*arrays)
            if kind == "synthesize":
                ws, noise, transform = arrays
                return self._synthesize(ws, key[1], noise, transform)
            z, c, noise, transform = arrays
            w = self._map(z, c)
            offsets = np.cumsum([0] + [n for n, _ in to_ws])
            try:
                ws = np.concatenate([fn(w[offsets[k]: offsets[k + 1]]) for k, (_, fn) in enumerate(to_ws)])
            except ValueError as e:
                raise InvalidRequest(str(e)) from None
            return ws, self._synthesize(ws, key[2], noise, transform)
        finally:
            self._running = False

    def _map(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        return self._chunked(z.shape[0], lambda s: self.backend.map(z[s], None if c is None else c[s]))

    def _synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                    transform: np.ndarray | None) -> np.ndarray:
        return self._chunked(ws.shape[0], lambda s: self.backend.synthesize(ws[s], noise_mode, _rows(noise, s),
                                                                            _rows(transform, s)))

    def _chunked(self, n: int, fn: Callable[[slice], np.ndarray]) -> np.ndarray:
        parts = [fn(slice(i, i + self.max_batch)) for i in range(0, n, self.max_batch)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _rows(value: Any, rows: slice) -> Any:
    """Rows of a result or an input: an array, a tuple or list of arrays (sliced alike), or None."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return type(value)(v[rows] for v in value)
    return value[rows]


def _merge(batch: list[_Job]) -> tuple[Any, ...]:
    """Concatenate the jobs' rows, input by input (always fresh arrays: the backend may keep or mutate its
    inputs). An input is an array, None, or a list of arrays (noise: one per synthesis layer)."""

    def cat(values: list[Any]) -> Any:
        if values[0] is None:
            return None
        if isinstance(values[0], list):
            return [np.concatenate([v[k] for v in values]) for k in range(len(values[0]))]
        return np.concatenate(values)

    return tuple(cat([job.arrays[i] for job in batch]) for i in range(len(batch[0].arrays)))
