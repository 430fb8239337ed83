"""Regression tests for the holes found when the service was attacked (issue 11): each runs a real server
on a loopback port and sends what an attacker or an unlucky user would."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from conftest import nvlabs_checkpoint
from grpc_health.v1 import health_pb2, health_pb2_grpc

import stylegan_sdk as sg
from serving import ServerSettings, serve_in_thread
from serving.config import parse_args
from stylegan_sdk import client as sgc
from stylegan_sdk._proto import SERVICE_NAME, codec, pb, pb_grpc
from stylegan_sdk.backends.base import Backend
from stylegan_sdk.generator import Generator

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30


def torch_generator() -> Generator:
    from stylegan_sdk.backends.torch_backend import TorchBackend

    ckpt = nvlabs_checkpoint("sg2_skip_32")
    return Generator(TorchBackend(ckpt.config, ckpt.tensors))


class CountingBackend(Backend):
    """Wraps a backend, records the rows each synthesize call computed, and takes `delay` seconds a call."""

    def __init__(self, inner: Backend, delay: float = 0.0) -> None:
        super().__init__(inner.config, inner.w_avg, inner.device)
        self.name = inner.name
        self.inner = inner
        self.delay = delay
        self.rows: list[int] = []

    def map(self, z, c):
        return self.inner.map(z, c)

    def synthesize(self, ws, noise_mode, noise, transform=None):
        time.sleep(self.delay)
        self.rows.append(ws.shape[0])
        return self.inner.synthesize(ws, noise_mode, noise, transform)


@pytest.fixture(scope="module")
def G():
    return torch_generator()


@pytest.fixture(scope="module")
def bg(G):
    with serve_in_thread({"m": G}, settings=ServerSettings(max_delay_ms=1)) as server:
        yield server


def stub(target: str) -> tuple[grpc.Channel, pb_grpc.StyleGANStub]:
    channel = grpc.insecure_channel(target)
    return channel, pb_grpc.StyleGANStub(channel)


def serving_status(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


# ----------------------------------------------------------------------------
# 2. One request can stall the server


def test_a_huge_interpolation_is_refused_before_any_planning(bg):
    channel, s = stub(bg.target)
    with channel:
        request = pb.InterpolateRequest(seeds=pb.SeedList(values=[0, 1, 2, 3, 4]), num_frames=10_000_000)
        with pytest.raises(grpc.RpcError) as e:
            list(s.Interpolate(request, timeout=TIMEOUT))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == "num_frames: 10000000 frames in one stream, over the limit of 100000"
        # The largest num_frames the proto carries (uint32): the same at once.
        request.num_frames = 2**32 - 1
        with pytest.raises(grpc.RpcError) as e:
            list(s.Interpolate(request, timeout=TIMEOUT))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "over the limit" in e.value.details()
    assert serving_status(bg.target) == health_pb2.HealthCheckResponse.SERVING


def test_interpolation_frames_are_planned_lazily(G):
    """A path of 10**12 frames: its first frames arrive (a planned list would need terabytes)."""
    frames = G.interpolate([0, 1], num_frames=10**12, output="uint8")
    first = next(frames)
    assert first.shape == (32, 32, 3)
    np.testing.assert_array_equal(first, G.generate(0, output="uint8"))


# ----------------------------------------------------------------------------
# 3. Junk bytes


@pytest.mark.parametrize("method", ["Generate", "Map", "Synthesize", "Mix", "Interpolate", "Project", "GetModelInfo",
                                    "ListModels"])
def test_junk_bytes_are_invalid_argument_without_class_names(bg, method, caplog):
    descriptor = pb.DESCRIPTOR.services_by_name["StyleGAN"].methods_by_name[method]
    path = f"/{SERVICE_NAME}/{method}"
    junk = b"\xff\xff\xff\xff\x0f\x01"
    with grpc.insecure_channel(bg.target) as channel, caplog.at_level(logging.WARNING, "stylegan.serving"):
        if descriptor.server_streaming:
            call = channel.unary_stream(path)(junk, timeout=TIMEOUT)
            with pytest.raises(grpc.RpcError) as e:
                list(call)
        else:
            with pytest.raises(grpc.RpcError) as e:
                channel.unary_unary(path)(junk, timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == f"request is not a valid {descriptor.input_type.name}"
    records = [r for r in caplog.records if r.name == "stylegan.serving"]
    assert len(records) == 1 and records[0].exc_info is None, records
    assert sg.Client(bg.target, timeout=TIMEOUT).generate(0, output="uint8").shape == (32, 32, 3)


# ----------------------------------------------------------------------------
# 4. Metrics listen where gRPC listens


def test_metrics_listen_on_the_grpc_host_by_default(G):
    with serve_in_thread({"m": G}, "127.0.0.1:0", ServerSettings(metrics_port=0)) as server:
        assert server.server.metrics_host == "127.0.0.1"
        assert server.metrics._http.server_address[0] == "127.0.0.1"
    assert parse_args(["--host", "127.0.0.1", "--metrics-port", "9100"]).settings.metrics_host is None
    assert parse_args(["--metrics-port", "9100", "--metrics-host", "0.0.0.0"]).settings.metrics_host == "0.0.0.0"
    assert parse_args([]).settings.metrics_port is None  # off unless asked for


# ----------------------------------------------------------------------------
# 5. psi beyond float32


@pytest.mark.parametrize("psi, message", [(1e300, "psi: 1e+300 is out of float32's range"),
                                          (-3e38, "psi: -3e+38 pushes ws out of float32's range")])
def test_psi_beyond_float32_is_the_same_value_error_everywhere(bg, G, psi, message):
    z = sg.seed_to_z([0], 64)
    with pytest.raises(ValueError) as local:
        G.generate(0, psi=psi)
    assert str(local.value).startswith(message)
    with pytest.raises(ValueError) as local_map:
        G.map(z, psi=psi)
    with sg.Client(bg.target, timeout=TIMEOUT) as C:
        with pytest.raises(ValueError) as remote:
            C.generate(0, psi=psi)
        assert str(remote.value) == str(local.value)
    channel, s = stub(bg.target)
    with channel:  # a client that does not check first: the server answers the same text
        options = pb.MapOptions(psi=psi)
        for rpc, request in [(s.Generate, pb.GenerateRequest(seeds=pb.SeedList(values=[0]), map=options)),
                             (s.Map, pb.MapRequest(z=codec.to_tensor(z), map=options))]:
            with pytest.raises(grpc.RpcError) as e:
                rpc(request, timeout=TIMEOUT)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.value.details() == str(local_map.value)


def test_cli_psi_beyond_float32_is_one_line(tmp_path):
    from stylegan_sdk import save_checkpoint

    ckpt = nvlabs_checkpoint("sg2_skip_32")
    model = tmp_path / "m.safetensors"
    save_checkpoint(model, ckpt.config, ckpt.tensors, ckpt.metadata)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-W", "default", "-m", "stylegan_sdk", "generate", "--model", str(model),
                           "--seeds", "0", "--psi", "1e300", "--outdir", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "psi: 1e+300 is out of float32's range" in proc.stderr, proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------
# 6. A huge model name


def test_a_huge_model_name_is_not_echoed(bg):
    name = "x" * 1_000_000
    channel, s = stub(bg.target)
    with channel, pytest.raises(grpc.RpcError) as e:
        s.GetModelInfo(pb.GetModelInfoRequest(model=name), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(e.value.details()) < 300 and "(1000000 characters)" in e.value.details()
    with sg.Client(bg.target, model=name, timeout=TIMEOUT) as C, pytest.raises(sgc.ModelNotFoundError):
        C.generate(0)


# ----------------------------------------------------------------------------
# 7. Deadlines and cancellation stop a large request part way


def test_a_deadline_stops_a_large_request_part_way():
    backend = CountingBackend(torch_generator().backend, delay=0.05)
    with serve_in_thread({"m": Generator(backend)}, settings=ServerSettings(max_batch=8)) as server, \
            sg.Client(server.target, timeout=0.3) as hasty:
        channel, s = stub(server.target)
        with channel:
            s.GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT)
            with pytest.raises(grpc.RpcError) as e:
                s.Generate(pb.GenerateRequest(seeds=pb.SeedList(values=list(range(256)))), timeout=0.3)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            time.sleep(0.5)  # what was running when the deadline passed finishes; nothing more starts
            computed = sum(backend.rows)
            assert 0 < computed < 256 and max(backend.rows) <= 8, backend.rows
            time.sleep(0.3)
            assert sum(backend.rows) == computed
            # Cancelled by the client: the same.
            backend.rows.clear()
            future = s.Generate.future(pb.GenerateRequest(seeds=pb.SeedList(values=list(range(256)))),
                                       timeout=TIMEOUT)
            deadline = time.monotonic() + TIMEOUT
            while not backend.rows and time.monotonic() < deadline:
                time.sleep(0.01)
            future.cancel()
            time.sleep(0.5)
            assert 0 < sum(backend.rows) < 256, backend.rows
        with pytest.raises(sgc.DeadlineExceededError):
            hasty.generate(list(range(256)), output="uint8")
        assert sg.Client(server.target, timeout=TIMEOUT).generate(1, output="uint8").shape == (32, 32, 3)


# ----------------------------------------------------------------------------
# 8. The client rides out a restart until its deadline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_client_retries_until_its_deadline(G):
    port = free_port()
    started: list = []
    starter = threading.Timer(2.0, lambda: started.append(serve_in_thread({"m": G}, f"127.0.0.1:{port}")))
    starter.start()
    try:
        t0 = time.monotonic()
        with sg.Client(f"127.0.0.1:{port}", timeout=TIMEOUT) as C:  # retries: until the deadline
            assert C.generate(3, output="uint8").shape == (32, 32, 3)
        assert time.monotonic() - t0 >= 2.0
    finally:
        starter.join()
        for server in started:
            server.stop()
    # Nobody listening: UNAVAILABLE until the deadline, then ServerUnavailableError.
    t0 = time.monotonic()
    with sg.Client(f"127.0.0.1:{free_port()}", timeout=1.5) as C, pytest.raises(sgc.ServerUnavailableError):
        C.generate(1)
    assert time.monotonic() - t0 >= 0.5


def test_the_retry_policy_backs_off_exponentially_and_stops_before_the_deadline():
    policy = sgc.RetryPolicy(initial_backoff=0.1, max_backoff=0.4, multiplier=2.0)
    far = time.monotonic() + 1000
    delays = [policy.delay(k, far) for k in range(6)]
    for k, d in enumerate(delays):
        backoff = min(0.4, 0.1 * 2**k)
        assert 0.5 * backoff <= d <= backoff
    assert policy.delay(0, time.monotonic() + 0.01) is None       # would pass the deadline
    assert sgc.RetryPolicy(max_retries=2).delay(2, far) is None     # retries spent


def test_a_server_still_loading_is_waited_for(G):
    gate = threading.Event()

    def slow_loader() -> Generator:
        gate.wait(TIMEOUT)
        return G

    server = serve_in_thread({"m": slow_loader}, wait=False)
    try:
        threading.Timer(1.5, gate.set).start()
        with sg.Client(server.target, timeout=TIMEOUT) as C:
            assert C.generate(2, output="uint8").shape == (32, 32, 3)
    finally:
        gate.set()
        server.stop()


def test_no_library_module_imports_serving_or_training():
    """The library never imports serving/ or training/ (nothing below imports anything above)."""
    offenders = []
    for path in (ROOT / "stylegan_sdk").rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.strip().split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1 and \
                    words[1].split(".")[0] in ("serving", "training"):
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not offenders, offenders
    code = "import sys, stylegan_sdk, stylegan_sdk.cli, stylegan_sdk.client; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('serving', 'training')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), timeout=60,
                         env=dict(os.environ))
    assert out.stdout.strip() == "[]", out.stderr
