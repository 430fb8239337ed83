"""Projections (the Project RPC) in the server: worker threads of their own, bounded, stoppable between steps.

A projection optimises for seconds to minutes on the model the generation calls use. It runs apart from the
model's batcher: in one of `max_projections` worker threads (one pool for the server), never in the batcher's
backend thread, so generate / map / synthesize / mix keep being batched and answered while it runs (their
backend thread and the projection's run side by side). The workers also run at a lower priority: Linux
niceness `projection_nice` on each worker thread, which the threads torch's OpenMP starts from it inherit, so
when the cores are short the generation calls get them first. Projections beyond the workers wait in a queue
of `max_queued_projections`; past it RESOURCE_EXHAUSTED (`ProjectionsBusy`).

Each projection is a `ProjectionJob`: its worker decodes the targets (their headers were checked on the event
loop), runs `project()` with a should_stop() that turns true once the RPC is cancelled, its deadline has passed
or the server is stopping, so the optimisation stops between two steps and frees the worker, and hands its
events (a progress event every K steps, then the result, or the error) to the RPC's event loop through an
asyncio queue (call_soon_threadsafe). A reader slower than the progress misses progress events (at most
MAX_PENDING wait unread), never the result. A slot is given back when its worker is done, not when its RPC
ends: a cancelled projection holds it until its current step is over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stylegan_sdk._proto import codec, pb
from stylegan_sdk.generator import Generator
from stylegan_sdk.projection.options import ProjectCall, ProjectionUnavailable, read_target

from .batcher import BatcherClosed, DeadlineExpired
from .config import ServerSettings
from .metrics import ServerMetrics

log = logging.getLogger("stylegan.serving")

MAX_PENDING = 16        # progress events waiting for a slow reader; more are dropped (the result never is)
_END = object()         # the last item of a job's queue


class ProjectionsBusy(Exception):
    """Every projection worker is busy and the queue is full (RESOURCE_EXHAUSTED)."""


def lower_priority(nice: int) -> None:
    """Raise this thread's niceness by `nice` (Linux: setpriority on the thread id; threads it starts inherit it).
    Best effort: elsewhere, or refused, the thread keeps the server's priority."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as e:
        log.warning("projection worker: cannot lower its priority (%s)", e)


class ProjectionJob:
    """One projection: what its worker runs, and the events its RPC reads."""

    def __init__(self, pool: ProjectionPool, G: Generator, call: ProjectCall, args: codec.ProjectArgs,
                 deadline: float | None) -> None:
        self.pool = pool
        self.G = G
        self.call = call
        self.args = args
        self.deadline = deadline
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()
        self.sent = 0           # progress events put (worker thread)
        self.taken = 0          # progress events read (event loop)
        self.steps_done = 0

    # -- the RPC's side ---------------------------------------------------------
    def cancel(self) -> None:
        self.cancelled.set()

    async def events(self) -> AsyncIterator[pb.ProjectEvent]:
        """Progress events, then the result; raises the worker's error."""
        while True:
            item = await self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            if item.WhichOneof("event") == "progress":
                self.taken += 1
            yield item

    # -- the worker's side --------------------------------------------------------
    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.pool.stopping or self.expired()

    def put(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            pass

    def run(self) -> None:
        """In a worker thread: decode the targets, project, put the events."""
        if self.should_stop():  # cancelled, expired or shut down while it waited for a worker
            if self.pool.stopping:
                raise BatcherClosed("the server is shutting down")
            if self.expired():
                raise DeadlineExpired("deadline exceeded before the projection started")
            return
        from stylegan_sdk.projection.project import project  # torch: only on a server that projects

        s = self.pool.settings
        args, call, G = self.args, self.call, self.G
        targets = [read_target(data, f"targets[{i}]", s.max_projection_pixels, s.max_projection_file_bytes)
                   for i, data in enumerate(args.targets)]
        loss = self.pool.loss(call.loss, G)
        every = args.progress_every
        current: list[Any] = [None]     # the ws of the last step a preview is due at

        def on_ws(step: int, ws: Any) -> None:
            current[0] = ws

        def progress(step: int, steps: int, losses: Any) -> None:
            self.steps_done = step
            if not every or step % every or self.sent - self.taken >= MAX_PENDING:
                return
            preview = None
            if args.preview:
                preview = G.synthesize(current[0], noise_mode="const", output="uint8", transform=call.transform.matrix)
            self.sent += 1
            self.put(codec.project_progress_to_pb(step, steps, losses, preview))

        result = project(G, targets, space=call.space, steps=call.steps, loss=loss, init=call.init,
                         optimize_noise=call.optimize_noise, seed=call.seed, progress=progress,
                         should_stop=self.should_stop, transform=call.transform.matrix,
                         on_ws=on_ws if args.preview else None, ws_every=every if args.preview else 0)
        if result.stopped and self.expired():
            raise DeadlineExpired(f"deadline exceeded: the projection stopped after {result.steps} of {call.steps} "
                                  f"steps")
        self.put(codec.project_result_to_pb(result))


class ProjectionPool:
    """The server's projection workers and their queue. `submit` runs on the event loop."""

    def __init__(self, settings: ServerSettings, metrics: ServerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.stopping = False
        self._executor: ThreadPoolExecutor | None = None
        self._admitted = 0            # running + waiting (event loop thread)
        self._running = 0             # in a worker now
        self._lock = threading.Lock()
        self._losses: dict[tuple[str, str], Any] = {}

    @property
    def admitted(self) -> int:
        """Projections running or waiting for a worker."""
        return self._admitted

    @property
    def running(self) -> int:
        return self._running

    def submit(self, G: Generator, call: ProjectCall, args: codec.ProjectArgs, deadline: float | None
               ) -> ProjectionJob:
        if self.stopping:
            raise BatcherClosed("the server is shutting down")
        s = self.settings
        limit = s.max_projections + s.max_queued_projections
        if self._admitted >= limit:
            raise ProjectionsBusy(f"server busy: {self._admitted} projections running or queued (limit {limit}: "
                                  f"--max-projections {s.max_projections} + --max-queued-projections "
                                  f"{s.max_queued_projections}); retry later")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(s.max_projections, thread_name_prefix="projection",
                                                initializer=lower_priority, initargs=(s.projection_nice,))
        job = ProjectionJob(self, G, call, args, deadline)
        self._admitted += 1
        self._gauges()
        loop = job.loop
        future = self._executor.submit(self._work, job)
        future.add_done_callback(lambda _: _call_soon(loop, self._release))
        return job

    def _release(self) -> None:
        self._admitted -= 1
        self._gauges()

    def _gauges(self) -> None:
        """(From the event loop and the workers: prometheus_client's gauges are thread-safe.)"""
        if self.metrics is not None:
            self.metrics.projections.labels("running").set(self._running)
            self.metrics.projections.labels("queued").set(self._admitted - self._running)

    def _work(self, job: ProjectionJob) -> None:
        with self._lock:
            self._running += 1
        self._gauges()
        try:
            job.run()
        except ImportError as e:   # a loss's wheel missing on this server: a precondition, with its install hint
            job.put(ProjectionUnavailable(str(e)))
        except BaseException as e:  # every failure reaches the RPC, which answers its status
            job.put(e)
        finally:
            with self._lock:
                self._running -= 1
            self._gauges()
            job.put(_END)

    def loss(self, name: str, G: Generator) -> Any:
        """The loss module `name` on G's device, built once (its weights read and checked once) and shared by the
        workers (frozen: only read while projecting)."""
        from stylegan_sdk.projection.losses import LOSSES, make_loss  # torch

        if name not in LOSSES:
            raise ValueError(f"loss: must be one of {LOSSES}, got {name!r}")   # project()'s text
        key = (name, str(G.backend.device))
        with self._lock:
            found = self._losses.get(key)
        if found is None:
            found = make_loss(name, device=G.backend.device)
            with self._lock:
                found = self._losses.setdefault(key, found)
        return found

    def stop(self) -> None:
        """Shutting down: running projections stop after their current step (their RPCs get the result so far,
        stopped), waiting ones do not start (UNAVAILABLE)."""
        self.stopping = True

    def close(self) -> None:
        """Free the worker threads once their jobs are over (a step under way is not waited for)."""
        self.stopping = True
        if self._executor is not None:
            self._executor.shutdown(wait=False)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:  # the loop is closed
        pass
