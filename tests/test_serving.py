"""The gRPC server (serving/): batching, validation, deadlines, queue, shutdown, health, reflection,
metrics, auth, TLS, the command line, and the committed generated code. Real servers on 127.0.0.1:0."""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from conftest import BLOCK_TORCH, nvlabs_checkpoint
from grpc_health.v1 import health_pb2, health_pb2_grpc

import stylegan_sdk as sg
from serving import ServerSettings, serve_in_thread
from stylegan_sdk import client as sgc
from stylegan_sdk import images
from stylegan_sdk._proto import codec, pb, pb_grpc
from stylegan_sdk.backends.base import Backend
from stylegan_sdk.generator import Generator

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30  # seconds: upper bound of every wait in this file


# ----------------------------------------------------------------------------
# Helpers


def torch_generator(name: str = "sg2_skip_32") -> Generator:
    from stylegan_sdk.backends.torch_backend import TorchBackend

    ckpt = nvlabs_checkpoint(name)
    return Generator(TorchBackend(ckpt.config, ckpt.tensors))


class GatedBackend(Backend):
    """Wraps a backend; synthesize blocks until `gate` is set (so tests control what is in flight) and
    records the rows it computed. Optionally raises on ws whose first value is `poison`."""

    def __init__(self, inner: Backend, gated: bool = True, poison: float | None = None) -> None:
        super().__init__(inner.config, inner.w_avg, inner.device)
        self.name = inner.name
        self.inner = inner
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.entered = threading.Event()
        self.poison = poison
        self.batches: list[np.ndarray] = []

    def map(self, z, c):
        return self.inner.map(z, c)

    def synthesize(self, ws, noise_mode, noise, transform=None):
        self.entered.set()
        if not self.gate.wait(TIMEOUT):
            raise RuntimeError("gate never opened")
        if self.poison is not None and np.any(ws[:, 0, 0] == np.float32(self.poison)):
            raise RuntimeError("poisoned batch")
        self.batches.append(ws.copy())
        return self.inner.synthesize(ws, noise_mode, noise, transform)


def stub_for(target: str, **kw) -> tuple[grpc.Channel, pb_grpc.StyleGANStub]:
    channel = grpc.insecure_channel(target, **kw)
    return channel, pb_grpc.StyleGANStub(channel)


def health_status(target: str, credentials=None) -> int:
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def wait_for(cond, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def server(skip32_dir):
    """One shared server: skip32 on onnxruntime (default) + cond16 on torch, metrics on."""
    with serve_in_thread({"skip32": str(skip32_dir), "cond16": torch_generator("sg2_resnet_16_cond")},
                         settings=ServerSettings(metrics_port=0, max_delay_ms=20, max_seeds=64)) as bg:
        yield bg


# ----------------------------------------------------------------------------
# Generated code


def test_generated_code_matches_the_proto(tmp_path):
    """stylegan_sdk/_proto is exactly what protos/generate.py makes from protos/ (no hand edits, no drift)."""
    pytest.importorskip("grpc_tools")
    from importlib.metadata import version

    committed = (ROOT / "stylegan_sdk/_proto/stylegan/v1/stylegan_pb2_grpc.py").read_text()
    made_with = re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", committed).group(1)
    if version("grpcio-tools") != made_with:
        pytest.skip(f"committed code comes from grpcio-tools {made_with}, installed {version('grpcio-tools')}")
    spec = importlib.util.spec_from_file_location("protos_generate", ROOT / "protos" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    written = gen.generate(str(tmp_path))
    fresh = {os.path.relpath(p, tmp_path) for p in written}
    ours = {str(p.relative_to(ROOT / "stylegan_sdk/_proto")) for p in (ROOT / "stylegan_sdk/_proto/stylegan").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
    assert fresh == ours
    for rel in sorted(fresh):
        assert (tmp_path / rel).read_bytes() == (ROOT / "stylegan_sdk/_proto" / rel).read_bytes(), (
            f"{rel} differs from protos/: run python protos/generate.py")
    assert "from . import stylegan_pb2" in committed  # package-relative import


# ----------------------------------------------------------------------------
# Batching


def test_32_concurrent_clients_are_batched_and_answered_exactly(server, G_ort):
    """32 clients at once (const noise and per-request random noise): every answer equals the in-process
    one, and the metrics show backend calls that merged several requests."""
    before = scrape(server.server.metrics_port)
    n = 32
    barrier = threading.Barrier(n)

    def one(i: int) -> np.ndarray:
        with sg.Client(server.target, timeout=TIMEOUT) as C:
            C.info  # noqa: B018 - fetch the model info before the barrier
            barrier.wait(TIMEOUT)
            if i % 2:
                return C.generate(i, psi=0.7, noise_mode="random", noise_seed=1000 + i, output="float")
            return C.generate([i, i + 100], psi=0.7, output="float")

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    for i, got in enumerate(results):
        if i % 2:
            want = G_ort.generate(i, psi=0.7, noise_mode="random", noise_seed=1000 + i, output="float")
        else:
            want = G_ort.generate([i, i + 100], psi=0.7, output="float")
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"client {i}")
    after = scrape(server.server.metrics_port)
    labels = dict(model="skip32", kind="generate")  # Generate runs both networks in one batcher job
    calls = sample(after, "stylegan_batch_requests_count", **labels) - sample(before, "stylegan_batch_requests_count",
                                                                              **labels)
    merged = sample(after, "stylegan_batch_requests_sum", **labels) - sample(before, "stylegan_batch_requests_sum",
                                                                             **labels)
    singles = (sample(after, "stylegan_batch_requests_bucket", le="1.0", **labels)
               - sample(before, "stylegan_batch_requests_bucket", le="1.0", **labels))
    assert merged == n  # every request computed exactly once
    assert calls < n and singles < calls, f"no batching: {calls} backend calls for {n} requests"
    assert sample(after, "stylegan_requests_total", method="Generate", code="OK") >= n


def test_batcher_merges_random_noise_per_request():
    """Jobs merged into one backend call get exactly the rows (and noise) they would have got alone."""
    import asyncio

    from serving.batcher import Batcher

    G = torch_generator()
    cfg = G.config
    rng = np.random.RandomState(0)
    jobs = [(rng.randn(k, cfg.num_ws, cfg.w_dim).astype(np.float32),
             sg.latents.draw_noise(cfg.noise_resolutions, k, seed)) for k, seed in ((1, 1), (3, 2), (2, 3))]

    async def run():
        b = Batcher(G.backend, "t", max_batch=8, max_delay_s=0.05)
        try:
            out = await asyncio.gather(*[b.synthesize(ws, "random", nz) for ws, nz in jobs],
                                       b.map(rng.randn(2, cfg.z_dim).astype(np.float32), None))
        finally:
            await b.close()
        return out

    *outs, w = asyncio.run(run())
    for (ws, nz), got in zip(jobs, outs):
        np.testing.assert_allclose(got, G.backend.synthesize(ws, "random", nz), rtol=0, atol=1e-5)
    assert w.shape == (2, cfg.w_dim)


def test_backend_thread_answers_on_the_loop_survives_a_cancelled_caller_and_stops_on_close():
    import asyncio

    from serving.batcher import BackendThread, BatcherClosed

    async def run():
        worker = BackendThread("backend-unit")
        assert await worker.call(lambda a, b: (a + b, threading.current_thread().name), 2, 3) == (5, "backend-unit")
        with pytest.raises(ZeroDivisionError):  # the call's own exception, raised in the awaiting task
            await worker.call(lambda: 1 / 0)
        # A caller that gives up (a cancelled RPC) while its call runs: the thread finishes it and goes on.
        gate, done = threading.Event(), threading.Event()
        pending = worker.call(lambda: (gate.wait(TIMEOUT), done.set()))
        pending.cancel()
        gate.set()
        assert await asyncio.to_thread(done.wait, TIMEOUT)
        assert await worker.call(int, "7") == 7
        # The event loop stays free while a call runs: it answers other work meanwhile.
        gate.clear()
        slow = worker.call(gate.wait, TIMEOUT)
        assert await asyncio.wait_for(asyncio.sleep(0.01, "free"), TIMEOUT) == "free" and not slow.done()
        gate.set()
        assert await slow is True
        worker.close()
        with pytest.raises(BatcherClosed):
            worker.call(int)
        return worker

    worker = asyncio.run(asyncio.wait_for(run(), TIMEOUT))  # a lost answer fails here instead of hanging
    worker._thread.join(TIMEOUT)
    assert not worker._thread.is_alive()


# ----------------------------------------------------------------------------
# Validation


def bad_requests(G_ort):
    """(rpc, request, expected message: the in-process ValueError's text where there is one)."""
    cfg = G_ort.config
    ws = G_ort.map(sg.seed_to_z([0, 1], cfg.z_dim))

    def in_process(fn) -> str:
        with pytest.raises(ValueError) as e:
            fn()
        return str(e.value)

    z_bad = np.zeros([2, cfg.z_dim + 1], np.float32)
    f32 = pb.RenderOptions(format=pb.RAW_FLOAT32)
    return [
        ("Map", pb.MapRequest(z=codec.to_tensor(z_bad)), in_process(lambda: G_ort.map(z_bad))),
        ("Generate", pb.GenerateRequest(z=codec.to_tensor(z_bad), render=f32), in_process(lambda: G_ort.map(z_bad))),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[1]), map=pb.MapOptions(psi=float("nan"))),
         in_process(lambda: G_ort.generate(1, psi=float("nan")))),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[1]), map=pb.MapOptions(cutoff=99)),
         in_process(lambda: G_ort.generate(1, cutoff=99))),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[-1])), in_process(lambda: G_ort.generate([-1]))),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[])), in_process(lambda: G_ort.generate([]))),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[1]), map=pb.MapOptions(class_index=2)),
         in_process(lambda: G_ort.generate(1, c=2))),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=list(range(65)))), "over this server's limit of 64"),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[1]), render=pb.RenderOptions(format=17)),
         "format: unknown image format 17"),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[1]), render=pb.RenderOptions(noise_mode=9)),
         "noise_mode: unknown value 9"),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[1]),
                                        render=pb.RenderOptions(noise_mode=pb.RANDOM, noise_seed=-5)),
         in_process(lambda: G_ort.generate(1, noise_mode="random", noise_seed=-5))),
        ("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[1]),
                                        render=pb.RenderOptions(format=pb.JPEG, jpeg_quality=101)),
         "quality: must be in [1, 100], got 101"),
        ("Generate", pb.GenerateRequest(), "seeds: give seeds or z"),
        ("Synthesize", pb.SynthesizeRequest(ws=codec.to_tensor(ws[:, :3])),
         in_process(lambda: G_ort.synthesize(ws[:, :3]))),
        ("Synthesize", pb.SynthesizeRequest(ws=pb.Tensor(shape=[2, 8, 64], dtype=pb.FLOAT32, data=b"\0" * 12)),
         "ws: tensor of shape [2, 8, 64] (float32) needs 4096 bytes, got 12"),
        ("Synthesize", pb.SynthesizeRequest(ws=codec.to_tensor(ws.astype(np.uint8), "uint8")),
         "ws: expected a float32 tensor, got uint8"),
        ("Mix", pb.MixRequest(w_a=codec.to_tensor(ws), w_b=codec.to_tensor(ws), layers=[0, 8]),
         in_process(lambda: G_ort.mix(ws, ws, [0, 8]))),
        ("Mix", pb.MixRequest(w_a=codec.to_tensor(ws), w_b=codec.to_tensor(ws[:1]), layers=[0]),
         in_process(lambda: G_ort.mix(ws, ws[:1], [0]))),
        ("Interpolate", pb.InterpolateRequest(seeds=pb.SeedList(values=[1, 2]), num_frames=1),
         "num_frames: must be an int >= 2, got 1"),
        ("Interpolate", pb.InterpolateRequest(seeds=pb.SeedList(values=[1]), num_frames=3),
         "keyframes: need at least 2, got 1"),
        ("Interpolate", pb.InterpolateRequest(ws=codec.to_tensor(ws), num_frames=3, space=pb.Z),
         "space: ws keyframes interpolate in W only"),
    ]


def test_bad_arguments_get_invalid_argument_with_the_in_process_message(server, G_ort):
    channel, stub = stub_for(server.target)
    with channel:
        for method, request, message in bad_requests(G_ort):
            with pytest.raises(grpc.RpcError) as e:
                result = getattr(stub, method)(request, timeout=TIMEOUT)
                if method == "Interpolate":
                    list(result)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, request, e.value.details())
            assert message in e.value.details(), (method, e.value.details(), message)
            assert "Traceback" not in e.value.details()
        # ... and the server keeps serving.
        ok = stub.Generate(pb.GenerateRequest(seeds=pb.SeedList(values=[3])), timeout=TIMEOUT)
        assert len(ok.images.encoded) == 1


def test_unknown_model_is_not_found(server):
    channel, stub = stub_for(server.target)
    with channel:
        for call in (lambda: stub.GetModelInfo(pb.GetModelInfoRequest(model="nope"), timeout=TIMEOUT),
                     lambda: stub.Generate(pb.GenerateRequest(model="nope", seeds=pb.SeedList(values=[1])),
                                           timeout=TIMEOUT)):
            with pytest.raises(grpc.RpcError) as e:
                call()
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
            assert "'nope'" in e.value.details() and "skip32" in e.value.details()


def test_list_models_formats_and_returned_ws(server, G_ort):
    channel, stub = stub_for(server.target)
    with channel:
        listed = stub.ListModels(pb.ListModelsRequest(), timeout=TIMEOUT)
        assert listed.default_model == "skip32"
        assert [m.name for m in listed.models] == ["skip32", "cond16"]
        assert listed.models[0].limits.max_seeds == 64
        req = pb.GenerateRequest(seeds=pb.SeedList(values=[5, 6]), map=pb.MapOptions(psi=0.5), return_ws=True)
        png = stub.Generate(req, timeout=TIMEOUT)
        u8 = G_ort.generate([5, 6], psi=0.5, output="uint8")
        np.testing.assert_array_equal(np.stack([images.decode(b) for b in png.images.encoded]), u8)
        np.testing.assert_allclose(codec.from_tensor(png.ws, "ws"), G_ort.map(sg.seed_to_z([5, 6], 64), psi=0.5),
                                   atol=1e-6)
        req.render.CopyFrom(pb.RenderOptions(format=pb.JPEG, jpeg_quality=80))
        jpeg = stub.Generate(req, timeout=TIMEOUT)
        assert [images.decode(b).shape for b in jpeg.images.encoded] == [(32, 32, 3)] * 2
        req.render.CopyFrom(pb.RenderOptions(format=pb.RAW_UINT8))
        raw = stub.Generate(req, timeout=TIMEOUT)
        np.testing.assert_array_equal(codec.from_tensor(raw.images.pixels, "images", "uint8"), u8)


def test_a_failing_request_fails_alone_without_a_traceback(G_ort):
    """A request that breaks the backend answers INTERNAL (no traceback); a request batched with it
    still gets its answer, and the server keeps serving."""
    poison = 0.25
    backend = GatedBackend(torch_generator().backend, gated=True, poison=poison)
    G = Generator(backend)
    ws_ok = G.map(sg.seed_to_z([1], 64))
    ws_bad = np.full_like(ws_ok, poison)
    with serve_in_thread({"m": G}, settings=ServerSettings(max_delay_ms=200)) as bg, \
            sg.Client(bg.target, timeout=TIMEOUT) as C:
        with ThreadPoolExecutor(2) as pool:
            good = pool.submit(C.synthesize, ws_ok)
            bad = pool.submit(C.synthesize, ws_bad)
            time.sleep(0.1)
            backend.gate.set()
            np.testing.assert_allclose(good.result(TIMEOUT), torch_generator().synthesize(ws_ok), atol=1e-5)
            with pytest.raises(sgc.ServerError) as e:
                bad.result(TIMEOUT)
        assert e.value.code == grpc.StatusCode.INTERNAL
        assert "Traceback" not in str(e.value) and "poisoned" not in str(e.value)
        assert C.generate(2, output="uint8").shape == (32, 32, 3)


# ----------------------------------------------------------------------------
# Deadlines, queue, shutdown, loading


def test_deadline_shorter_than_the_work_is_dropped_before_computing():
    backend = GatedBackend(torch_generator().backend)
    with serve_in_thread({"m": Generator(backend)}, settings=ServerSettings(max_batch=1)) as bg, \
            sg.Client(bg.target, timeout=TIMEOUT) as slow, sg.Client(bg.target, timeout=0.3) as hasty:
        hasty.info  # noqa: B018 - fetched with a generous deadline first
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(slow.generate, 1, output="uint8")
            assert backend.entered.wait(TIMEOUT)
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as e:  # DeadlineExceededError
                hasty.generate(2, output="uint8")
            assert time.monotonic() - t0 < 5
            assert isinstance(e.value, sgc.DeadlineExceededError)
            backend.gate.set()
            first.result(TIMEOUT)
        wait_for(lambda: sum(bg.metrics.registry.get_sample_value("stylegan_dropped_total", {"reason": r}) or 0
                             for r in ("deadline", "cancelled")) >= 1, "the dropped job")
        assert sum(b.shape[0] for b in backend.batches) == 1  # seed 2 was never computed
        assert slow.generate(3, output="uint8").shape == (32, 32, 3)


def test_queue_overflow_answers_resource_exhausted_at_once():
    backend = GatedBackend(torch_generator().backend)
    with serve_in_thread({"m": Generator(backend)}, settings=ServerSettings(max_batch=1, max_queue=2)) as bg, \
            sg.Client(bg.target, timeout=TIMEOUT) as C:
        C.info  # noqa: B018
        with ThreadPoolExecutor(2) as pool:
            running = [pool.submit(C.generate, s, output="uint8") for s in (1, 2)]
            assert backend.entered.wait(TIMEOUT)
            wait_for(lambda: bg.server.servicer._admitted == 2, "two admitted requests")
            t0 = time.monotonic()
            with pytest.raises(sgc.ServerBusyError) as e:
                C.generate(3)
            assert time.monotonic() - t0 < 2
            assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-queue" in str(e.value)
            backend.gate.set()
            assert all(f.result(TIMEOUT).shape == (32, 32, 3) for f in running)
        assert C.generate(4, output="uint8").shape == (32, 32, 3)
        assert bg.metrics.registry.get_sample_value(
            "stylegan_requests_total", {"method": "Generate", "code": "RESOURCE_EXHAUSTED"}) == 1


def test_graceful_shutdown_finishes_requests_in_flight():
    import asyncio

    backend = GatedBackend(torch_generator().backend)
    G_ref = torch_generator()
    bg = serve_in_thread({"m": Generator(backend)}, settings=ServerSettings(max_batch=1))
    try:
        clients = [sg.Client(bg.target, timeout=TIMEOUT) for _ in range(3)]
        for C in clients:
            C.info  # noqa: B018
        with ThreadPoolExecutor(3) as pool:
            flights = [pool.submit(C.generate, s, output="float") for s, C in enumerate(clients)]
            assert backend.entered.wait(TIMEOUT)
            wait_for(lambda: bg.server.servicer._admitted == 3, "three requests in flight")
            t0 = time.monotonic()
            stopping = asyncio.run_coroutine_threadsafe(bg.server.stop(grace=20), bg._loop)
            wait_for(lambda: health_status(bg.target) == health_pb2.HealthCheckResponse.NOT_SERVING,
                     "health NOT_SERVING")
            with sg.Client(bg.target, timeout=5, retries=0) as late, pytest.raises(ConnectionError) as e:
                late.generate(9)  # ServerUnavailableError: refused while draining
            assert "shutting down" in str(e.value)
            backend.gate.set()
            for s, f in enumerate(flights):
                np.testing.assert_allclose(f.result(TIMEOUT), G_ref.generate(s, output="float"), atol=1e-5)
            stopping.result(TIMEOUT)
            assert time.monotonic() - t0 < 10
        with pytest.raises(grpc.RpcError):
            health_status(bg.target)  # no longer listening
    finally:
        backend.gate.set()
        bg.stop()


def test_shutdown_grace_period_is_bounded():
    backend = GatedBackend(torch_generator().backend)
    bg = serve_in_thread({"m": Generator(backend)})
    try:
        with sg.Client(bg.target, timeout=TIMEOUT, retries=0) as C, ThreadPoolExecutor(1) as pool:
            C.info  # noqa: B018
            stuck = pool.submit(C.generate, 1)
            assert backend.entered.wait(TIMEOUT)
            t0 = time.monotonic()
            bg.stop(grace=0.5)
            assert time.monotonic() - t0 < 3
            with pytest.raises(sgc.ClientError):
                stuck.result(TIMEOUT)
    finally:
        backend.gate.set()


def test_health_not_serving_while_loading():
    gate = threading.Event()
    G = torch_generator()

    def slow_loader() -> Generator:
        gate.wait(TIMEOUT)
        return G

    bg = serve_in_thread({"m": slow_loader}, wait=False)
    try:
        assert health_status(bg.target) == health_pb2.HealthCheckResponse.NOT_SERVING
        with sg.Client(bg.target, timeout=5, retries=0) as C, pytest.raises(sgc.ServerUnavailableError) as e:
            C.generate(1)
        assert "loading" in str(e.value)
        gate.set()
        with sg.Client(bg.target, timeout=TIMEOUT) as C:
            C.wait_until_ready(TIMEOUT)
            assert health_status(bg.target) == health_pb2.HealthCheckResponse.SERVING
            assert C.generate(1, output="uint8").shape == (32, 32, 3)
    finally:
        gate.set()
        bg.stop()


def test_reflection_lists_the_service(server):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.target) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = db.get_services()
        assert "stylegan.v1.StyleGAN" in services and "grpc.health.v1.Health" in services
        desc = db.FindFileContainingSymbol("stylegan.v1.StyleGAN")
        assert desc.package == "stylegan.v1"


def test_metrics_endpoint(server):
    with sg.Client(server.target, timeout=TIMEOUT) as C:
        C.generate([1, 2], output="uint8")
        C.map(sg.seed_to_z([3], 64))
    channel, stub = stub_for(server.target)
    with channel, pytest.raises(grpc.RpcError):
        stub.Generate(pb.GenerateRequest(), timeout=TIMEOUT)
    text = scrape(server.server.metrics_port)
    assert sample(text, "stylegan_requests_total", method="Generate", code="OK") >= 1
    assert sample(text, "stylegan_requests_total", method="Generate", code="INVALID_ARGUMENT") >= 1
    assert sample(text, "stylegan_request_seconds_count", method="Generate") >= 2
    assert sample(text, "stylegan_queue_seconds_count", model="skip32", kind="generate") >= 1
    assert sample(text, "stylegan_batch_rows_count", model="skip32", kind="map") >= 1
    assert sample(text, "stylegan_models_loaded") == 2
    assert "stylegan_inflight_requests" in text


# ----------------------------------------------------------------------------
# Auth and TLS


def test_bearer_token_auth():
    with serve_in_thread({"m": torch_generator()}, settings=ServerSettings(token="s3cret")) as bg:
        for token in (None, "wrong"):
            with sg.Client(bg.target, timeout=TIMEOUT, token=token) as C, pytest.raises(PermissionError) as e:
                C.generate(1)
            assert isinstance(e.value, sgc.AuthenticationError)
            assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
        channel, stub = stub_for(bg.target)
        with channel, pytest.raises(grpc.RpcError) as e:
            list(stub.Interpolate(pb.InterpolateRequest(seeds=pb.SeedList(values=[1, 2]), num_frames=2),
                                  timeout=TIMEOUT))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert health_status(bg.target) == health_pb2.HealthCheckResponse.SERVING  # health stays open
        with sg.Client(bg.target, timeout=TIMEOUT, token="s3cret") as C:
            assert C.generate(1, output="uint8").shape == (32, 32, 3)
            assert len(list(C.interpolate([1, 2], num_frames=3))) == 3


def self_signed_cert() -> tuple[bytes, bytes]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_tls(tmp_path):
    cert, key = self_signed_cert()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    G_ref = torch_generator()
    settings = ServerSettings(tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem"), token="t")
    with serve_in_thread({"m": torch_generator()}, settings=settings) as bg:
        with sg.Client(bg.target, timeout=TIMEOUT, tls=str(tmp_path / "cert.pem"), token="t") as C:
            np.testing.assert_allclose(C.generate(4, output="float"), G_ref.generate(4, output="float"), atol=1e-5)
        assert health_status(bg.target, grpc.ssl_channel_credentials(cert)) == health_pb2.HealthCheckResponse.SERVING
        with sg.Client(bg.target, timeout=3, retries=0, token="t") as plain, pytest.raises(sgc.ClientError):
            plain.generate(1)  # plaintext to a TLS port


# ----------------------------------------------------------------------------
# Command line


def test_serve_command_line_errors(tmp_path, capsys):
    from stylegan_sdk.cli import main

    for argv, needle in [(["serve", "--model", str(tmp_path / "nope")], "no such file or folder"),
                         (["serve", "--model", str(tmp_path), "--tls-cert", "x.pem"], "give both or neither"),
                         (["serve", "--model", str(tmp_path), "--max-batch", "0"], "max-batch: must be >= 1"),
                         (["serve", "--model", f"a={tmp_path}", "--model", f"a={tmp_path}"], "duplicate model name"),
                         (["serve", "--bogus"], "unrecognized arguments")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err


def test_serve_without_model_means_the_bundled_default():
    from serving.config import ServeConfig
    from stylegan_sdk.loading import DEFAULT_EXPORT

    cfg = ServeConfig(models=())
    if os.path.isdir(DEFAULT_EXPORT):
        assert cfg.validate().models == (("default", "default"),)
    else:
        with pytest.raises(ValueError, match="default model is not bundled"):
            cfg.validate()


def test_a_model_that_fails_to_load(tmp_path, capsys):
    from serving import main

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable model.json"):
        serve_in_thread({"bad": str(bad)})
    assert main(["--model", str(bad), "--host", "127.0.0.1", "--port", "0"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "unreadable model.json" in err[0], err


def test_serve_from_an_exported_folder_without_torch_and_stop_on_sigterm(skip32_dir, G_ort):
    """`python -m serving` with torch unimportable: serves the ONNX folder, answers like the in-process
    Generator, then exits 0 on SIGTERM without a traceback."""
    code = BLOCK_TORCH + (
        "import runpy\n"
        "sys.argv[0] = 'serving'\n"
        "runpy.run_module('serving', run_name='__main__', alter_sys=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", code, "--model", f"m={skip32_dir}", "--host", "127.0.0.1",
                             "--port", "0", "--grace", "5"], stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    lines: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("ready" in line for line in lines) or proc.poll() is not None, "the server to start")
        assert proc.poll() is None, "".join(lines)
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
        with sg.Client(f"127.0.0.1:{port}", timeout=TIMEOUT) as C:
            np.testing.assert_allclose(C.generate([1, 2], psi=0.6, output="float"),
                                       G_ort.generate([1, 2], psi=0.6, output="float"), atol=1e-5)
            assert C.info == G_ort.info
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        assert time.monotonic() - t0 < 6
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        reader.join(TIMEOUT)
    out = "".join(lines)
    assert "Traceback" not in out and "stopped" in out, out
