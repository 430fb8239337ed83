"""Dynamic batching: concurrent map / synthesize work for one model merged into few backend calls.

Requests hand the batcher rows that are ready for the backend (z and c for the mapping network; ws and,
for random noise, the noise images already drawn from each request's own noise_seed). Compatible jobs
(same kind of call: map with or without c, synthesize with the same noise mode) are concatenated into one
backend call of at most `max_batch` rows, waiting at most `max_delay_s` after the oldest job arrived for
company (and not at all when every request in the server already has its job queued here, so a lone
request pays no delay); the results are split back row for row. The backend sees exactly the rows each request would
have sent alone, so every answer equals the unbatched one (up to the backend's batch-size float noise).

Jobs are never split: one larger than max_batch runs alone, in backend chunks of max_batch rows. The
backend runs in one worker thread per model, so the event loop stays free while it computes, and
one model never runs two batches at once (the backend's own threads use the cores). A job whose
deadline has passed, or whose RPC was cancelled, is dropped before it is computed. If a merged call
fails, its jobs are retried one by one, so a request that breaks the backend fails alone.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


@dataclass(eq=False)
class _Job:
    key: tuple[Any, ...]          # ("map", has_c) | ("synthesize", noise_mode)
    arrays: tuple[Any, ...]       # map: (z, c | None); synthesize: (ws, noise list | None)
    n: int                        # rows
    future: asyncio.Future
    deadline: float | None        # time.monotonic() by which the answer is useless
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
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"backend-{model or 'model'}")
        self._task: asyncio.Task | None = None
        self._closed = False
        self._running = False

    # -- public ---------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._worker(), name=f"batcher-{self.model}")

    async def map(self, z: np.ndarray, c: np.ndarray | None, deadline: float | None = None) -> np.ndarray:
        """z [N, z_dim], c [N, c_dim] | None -> w [N, w_dim]."""
        return await self._submit(("map", c is not None), (z, c), z.shape[0], deadline)

    async def synthesize(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                         deadline: float | None = None) -> np.ndarray:
        """ws [N, num_ws, w_dim] (+ per-row noise for "random") -> float images [N, C, H, W]."""
        if noise_mode != "random":
            noise = None
        return await self._submit(("synthesize", noise_mode), (ws, noise), ws.shape[0], deadline)

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
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- queue ----------------------------------------------------------------
    async def _submit(self, key: tuple[Any, ...], arrays: tuple[Any, ...], n: int, deadline: float | None) -> Any:
        if self._closed:
            raise BatcherClosed("the server is shutting down")
        if self._task is None:
            self.start()
        job = _Job(key, arrays, n, asyncio.get_running_loop().create_future(), deadline)
        self._queue.append(job)
        self._wakeup.set()
        return await job.future  # a cancelled RPC cancels this future: the worker then skips the job

    def _drop_dead(self, now: float) -> None:
        """Remove cancelled jobs and fail those whose deadline has passed."""
        keep: collections.deque[_Job] = collections.deque()
        for job in self._queue:
            if job.future.done():
                self._count_drop("cancelled")
            elif job.deadline is not None and now >= job.deadline:
                job.future.set_exception(DeadlineExpired("deadline exceeded before the request was computed"))
                self._count_drop("deadline")
            else:
                keep.append(job)
        self._queue = keep

    def _count_drop(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.dropped.labels(reason).inc()

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
        if self.metrics is not None:
            labels = dict(model=self.model, kind=kind)
            for job in batch:
                self.metrics.queue_time.labels(**labels).observe(start - job.enqueued)
            self.metrics.batch_rows.labels(**labels).observe(sum(job.n for job in batch))
            self.metrics.batch_requests.labels(**labels).observe(len(batch))
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(self._executor, self._compute, key, _merge(batch))
        except asyncio.CancelledError:
            raise
        except Exception:
            if len(batch) > 1:  # find the culprit: every job alone
                for job in batch:
                    await self._run_alone(job)
                return
            log.exception("backend call failed (model %r, %s, %d rows)", self.model, kind, batch[0].n)
            if not batch[0].future.done():
                batch[0].future.set_exception(BackendFailed("the backend failed on this request"))
            return
        finally:
            if self.metrics is not None:
                self.metrics.backend_time.labels(model=self.model, kind=kind).observe(time.monotonic() - start)
        offset = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(out[offset: offset + job.n])
            offset += job.n

    async def _run_alone(self, job: _Job) -> None:
        if job.future.done():
            return
        try:
            out = await asyncio.get_running_loop().run_in_executor(self._executor, self._compute, job.key,
                                                                   job.arrays)
        except Exception:
            log.exception("backend call failed (model %r, %s, %d rows)", self.model, job.key[0], job.n)
            if not job.future.done():
                job.future.set_exception(BackendFailed("the backend failed on this request"))
            return
        if not job.future.done():
            job.future.set_result(out)

    def _compute(self, key: tuple[Any, ...], arrays: tuple[Any, ...]) -> np.ndarray:
        """In the worker thread: the backend on the merged rows, in chunks of max_batch."""
        self._running = True
        try:
            return self._compute_chunks(key, arrays)
        finally:
            self._running = False

    def _compute_chunks(self, key: tuple[Any, ...], arrays: tuple[Any, ...]) -> np.ndarray:
        x, extra = arrays
        step = self.max_batch
        parts = []
        for i in range(0, x.shape[0], step):
            if key[0] == "map":
                parts.append(self.backend.map(x[i: i + step], None if extra is None else extra[i: i + step]))
            else:
                noise = None if extra is None else [nz[i: i + step] for nz in extra]
                parts.append(self.backend.synthesize(x[i: i + step], key[1], noise))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _merge(batch: list[_Job]) -> tuple[Any, ...]:
    """Concatenate the jobs' rows (always a fresh array: the backend may keep or mutate its inputs)."""
    x = np.concatenate([job.arrays[0] for job in batch])
    extras = [job.arrays[1] for job in batch]
    if extras[0] is None:
        return x, None
    if isinstance(extras[0], list):  # noise: one array per synthesis layer
        return x, [np.concatenate([e[k] for e in extras]) for k in range(len(extras[0]))]
    return x, np.concatenate(extras)
