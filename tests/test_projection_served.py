"""Projection served (issue 35): the server-streaming Project RPC, Client.project and AsyncClient.project, end to end
on a real port. Progress arrives every K steps with the losses (and previews), the result is the in-process
`sg.project` with the same arguments, cancelling or a passed deadline stops the run between steps and frees the
worker at once, the limits hold (steps, targets, pixels and bytes from the header before decoding, running and
queued projections), a model whose backend cannot differentiate (the bundled exported folder, and a torch-free
server) answers FAILED_PRECONDITION with the reason, generate is answered while a projection runs, and the server
keeps serving after every error.

One server for the module: a tiny random StyleGAN2 checkpoint (16 px, built here; a step takes milliseconds) on
torch, and the bundled emoji export on ONNX Runtime."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import numpy as np
import pytest
import torch
from conftest import BLOCK_TORCH, ROOT, crafted_png, run_without_torch

import stylegan_sdk as sg
from serving import ServerSettings, serve_in_thread
from stylegan_sdk import images
from stylegan_sdk._proto import codec, pb
from stylegan_sdk.client.planning import ProjectionUnavailableError
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.errors import ClientError, DeadlineExceededError, ServerBusyError
from stylegan_sdk.loading import DEFAULT_EXPORT
from stylegan_sdk.models import build_generator
from stylegan_sdk.projection.options import ProjectionUnavailable

TIMEOUT = 60                # seconds: the bound of every wait here
LONG = 50_000               # steps of a projection that is stopped, never finished (~10 ms a step)
SG2 = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)
SETTINGS = ServerSettings(max_delay_ms=1, max_projections=1, max_queued_projections=1, max_projection_steps=LONG,
                          max_projection_targets=2, max_projection_pixels=64 * 64, max_projection_file_mb=1 / 64)


# ----------------------------------------------------------------------------
# The model, the server, the targets


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A random 16 px StyleGAN2 whose images stay mostly inside [-1, 1], with noise that matters."""
    torch.manual_seed(0)
    cfg = GeneratorConfig(**SG2)
    state = build_generator(cfg).state_dict()
    for name, value in state.items():
        if name.endswith("noise_strength"):
            value.fill_(0.3)
        if "torgb.weight" in name:
            value.mul_(0.2)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    sg.save_checkpoint(path, cfg, {k: v.numpy() for k, v in state.items()})
    return path


@pytest.fixture(scope="module")
def G(model_file):
    return sg.load(model_file, backend="torch")


@pytest.fixture(scope="module")
def server(model_file):
    with serve_in_thread({"tiny": str(model_file), "emoji": DEFAULT_EXPORT}, settings=SETTINGS) as bg:
        yield bg


@pytest.fixture(scope="module")
def client(server):
    with sg.Client(server.target, model="tiny", timeout=TIMEOUT) as C:
        yield C


@pytest.fixture(scope="module")
def targets(G):
    """Two generated images, not square and not the model's size (so they are cropped and resized)."""
    return [np.asarray(G.generate(seed).resize((24, 20))) for seed in (1, 2)]


def png(x: np.ndarray) -> bytes:
    return images.encode(x if x.ndim == 3 else x[:, :, None], "png")


def request(files: list[bytes], **kw) -> pb.ProjectRequest:
    """A ProjectRequest for the tiny model (mse, 3 steps unless told)."""
    return codec.ProjectArgs(targets=files, **{"loss": "mse", "steps": 3, "model": "tiny", **kw}).to_pb()


def pool(server):
    return server.server.servicer.projections


def wait_for(cond, what: str, timeout: float = TIMEOUT) -> float:
    """Seconds until cond() held."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)
    return time.monotonic() - start


def still_serving(client, stub) -> None:
    """After an error: generation and projection still answer."""
    assert client.generate(0, output="uint8").shape == (16, 16, 3)
    events = list(stub.Project(request([png(np.zeros((16, 16, 3), np.uint8))], steps=2), timeout=TIMEOUT))
    assert events[-1].result.steps == 2


def status_of(call_fn) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        call_fn()
    return e.value


# ----------------------------------------------------------------------------
# The stream and its result


def test_progress_arrives_every_k_steps_with_the_losses_and_previews(client, targets):
    seen, previews = [], []
    p = client.project(targets, loss="mse", steps=12, seed=4, progress_every=4,
                       progress=lambda step, steps, losses: seen.append((step, steps, losses)),
                       preview=lambda step, pictures: previews.append((step, pictures)))
    assert [(step, steps) for step, steps, _ in seen] == [(4, 12), (8, 12), (12, 12)]
    for step, _, losses in seen:  # the distances of that step, per target (float32 on the wire: exact)
        assert losses.dtype == np.float32 and losses.shape == (2,)
        np.testing.assert_array_equal(losses, p.losses[step - 1])
    assert [step for step, _ in previews] == [4, 8, 12]
    assert all(x.dtype == np.uint8 and x.shape == (2, 16, 16, 3) for _, x in previews)
    # The last preview is the result's ws rendered with the constant noise (a batch of 2 against 2 single calls).
    assert np.abs(previews[-1][1].astype(int) - p.images.astype(int)).max() <= 1
    assert isinstance(p, sg.Projection) and p.steps == 12 and not p.stopped and p.loss == "mse"


@pytest.mark.parametrize("kwargs", [
    dict(space="w", optimize_noise=True, seed=5),
    dict(space="w+", optimize_noise=False, seed=0, init="mean"),
], ids=["w-noise", "w+-init"])
def test_the_result_is_the_in_process_projection(client, G, targets, kwargs):
    kwargs = dict(kwargs)
    if kwargs.pop("init", None):
        kwargs["init"] = G.map(sg.seed_to_z([9], 8))       # [1, num_ws, w_dim]: the same start for both targets
    served = client.project(targets, loss="mse", steps=15, **kwargs)
    local = sg.project(G, targets, loss="mse", steps=15, **kwargs)
    np.testing.assert_allclose(served.ws, local.ws, rtol=0, atol=1e-5)
    np.testing.assert_allclose(served.losses, local.losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(served.targets, local.targets)      # prepared here as in process
    assert np.abs(served.images.astype(int) - local.images.astype(int)).max() <= 1
    assert (served.loss, served.space, served.steps, served.seed, served.stopped) == \
        (local.loss, local.space, local.steps, local.seed, local.stopped)
    assert served.noise is None and served.history is None    # not sent


def test_target_files_paths_and_bytes_are_read_by_the_client(client, G, targets, tmp_path):
    path = tmp_path / "face.png"
    path.write_bytes(png(targets[0]))
    from_path = client.project(str(path), loss="mse", steps=3)
    from_bytes = client.project(png(targets[0]), loss="mse", steps=3)
    local = sg.project(G, targets[0], loss="mse", steps=3)
    np.testing.assert_allclose(from_path.ws, local.ws, atol=1e-5)
    np.testing.assert_allclose(from_bytes.ws, local.ws, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="^images: no such image file"):
        client.project(str(tmp_path / "missing.png"), loss="mse")
    with pytest.raises(ValueError, match=r"^images\[1\]: not a PNG or JPEG file"):
        client.project([png(targets[0]), b"GIF89a not really"], loss="mse")


def test_async_client_projects_alike(server, client, targets):
    sync = client.project(targets, loss="mse", steps=6, seed=2)

    async def run():
        seen = []

        async def progress(step, steps, losses):   # a coroutine function is awaited
            await asyncio.sleep(0)
            seen.append(step)

        async with sg.AsyncClient(server.target, model="tiny", timeout=TIMEOUT) as C:
            p = await C.project(targets, loss="mse", steps=6, seed=2, progress=progress, progress_every=2)
        async with sg.AsyncClient(server.target, model="emoji", timeout=TIMEOUT) as C:
            with pytest.raises(ProjectionUnavailable):
                await C.project(targets, loss="mse")
        return p, seen

    p, seen = asyncio.run(run())
    assert seen == [2, 4, 6]
    np.testing.assert_array_equal(p.ws, sync.ws)


# ----------------------------------------------------------------------------
# Stopping: cancel, deadline, shutdown


def test_cancel_stops_the_run_between_steps_and_frees_the_worker(server, client, stub, targets):
    wait_for(lambda: pool(server).admitted == 0, "earlier projections' workers to be given back")
    call = stub.Project(request([png(targets[0])], steps=LONG, progress_every=1), timeout=TIMEOUT)
    first = next(call)
    assert first.progress.step == 1
    job_pool = pool(server)
    assert job_pool.running == 1
    call.cancel()
    freed = wait_for(lambda: job_pool.admitted == 0, "the worker to be freed")
    assert freed < 5
    # The next projection starts at once: its first progress comes within a few steps' time.
    start = time.monotonic()
    second = stub.Project(request([png(targets[1])], steps=LONG, progress_every=1), timeout=TIMEOUT)
    assert next(second).progress.step == 1
    print(f"\n[projection served] worker freed {freed * 1000:.0f} ms after cancel; the next projection's first step "
          f"{(time.monotonic() - start) * 1000:.0f} ms after it was asked for")
    second.cancel()
    wait_for(lambda: job_pool.admitted == 0, "the worker to be freed")

    # The client: an exception from a callback leaves the stream, which cancels the call.
    def stop_at_3(step, steps, losses):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.project(targets[0], loss="mse", steps=LONG, progress=stop_at_3, progress_every=1)
    wait_for(lambda: job_pool.admitted == 0, "the worker to be freed")
    still_serving(client, stub)


def test_a_passed_deadline_stops_the_run(server, client, stub, targets):
    job_pool = pool(server)
    start = time.monotonic()
    err = status_of(lambda: list(stub.Project(request([png(targets[0])], steps=LONG, progress_every=10),
                                              timeout=1.0)))
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: job_pool.admitted == 0, "the worker to be freed", timeout=10)
    assert time.monotonic() - start < 10
    with pytest.raises(DeadlineExceededError):
        client.project(targets[0], loss="mse", steps=LONG, timeout=1.0)
    wait_for(lambda: job_pool.admitted == 0, "the worker to be freed", timeout=10)
    still_serving(client, stub)


def test_shutdown_stops_running_projections_with_what_they_have(model_file, targets):
    bg = serve_in_thread({"tiny": str(model_file)}, settings=ServerSettings(max_projection_steps=LONG))
    got: list = []
    with sg.Client(bg.target, timeout=TIMEOUT) as C:
        started = threading.Event()
        worker = threading.Thread(target=lambda: got.append(
            C.project(targets[0], loss="mse", steps=LONG, progress=lambda *a: started.set(), progress_every=1)))
        worker.start()
        assert started.wait(TIMEOUT)
        bg.stop(grace=10)
        worker.join(TIMEOUT)
    assert got and got[0].stopped and 1 <= got[0].steps < LONG and got[0].losses.shape == (got[0].steps, 1)


# ----------------------------------------------------------------------------
# Limits


def test_running_and_queued_projections_are_bounded(server, client, stub, targets):
    job_pool = pool(server)
    wait_for(lambda: job_pool.admitted == 0, "earlier projections' workers to be given back")
    running = stub.Project(request([png(targets[0])], steps=LONG, progress_every=1), timeout=TIMEOUT)
    assert next(running).progress.step == 1
    queued = stub.Project(request([png(targets[1])], steps=LONG, progress_every=1), timeout=TIMEOUT)
    wait_for(lambda: job_pool.admitted == 2, "the second projection to be queued")
    err = status_of(lambda: list(stub.Project(request([png(targets[1])]), timeout=TIMEOUT)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.details() == ("server busy: 2 projections running or queued (limit 2: --max-projections 1 + "
                             "--max-queued-projections 1); retry later")
    with pytest.raises(ServerBusyError, match="RESOURCE_EXHAUSTED: server busy"):
        client.project(targets[0], loss="mse", steps=3)
    # Generation calls are not projections: they are still admitted and answered.
    assert client.generate([0, 1], output="uint8").shape == (2, 16, 16, 3)
    running.cancel()
    assert next(queued).progress.step == 1      # the queued one gets the worker
    queued.cancel()
    wait_for(lambda: job_pool.admitted == 0, "the workers to be freed")
    still_serving(client, stub)


def test_generate_is_answered_while_a_projection_runs(server, client, stub, targets):
    """Generation calls are not queued behind a projection: they run in the model's backend thread, beside the
    projection's worker (which runs at a lower priority). Their latency is printed, not asserted."""
    def timed(n: int = 30) -> tuple[list[float], np.ndarray]:
        t, out = [], None
        for _ in range(n):
            t0 = time.perf_counter()
            out = client.generate(list(range(4)), output="uint8")
            t.append(time.perf_counter() - t0)
        return t, out

    timed(5)
    idle, expected = timed()
    call = stub.Project(request([png(targets[0])], steps=LONG, progress_every=1), timeout=TIMEOUT)
    assert next(call).progress.step == 1
    during, got = timed()
    assert pool(server).running == 1            # the projection ran all along
    call.cancel()
    np.testing.assert_array_equal(got, expected)
    ms = lambda t: f"p50 {np.percentile(t, 50) * 1000:.1f} ms, p90 {np.percentile(t, 90) * 1000:.1f} ms"
    print(f"\n[projection served] generate (4 images, 16 px): idle {ms(idle)}; while a projection runs {ms(during)}")
    wait_for(lambda: pool(server).admitted == 0, "the worker to be freed")


def crafted_cases() -> list:
    ok = png(np.full((20, 24, 3), 128, np.uint8))
    return [
        (dict(steps=LONG + 1), f"steps: {LONG + 1} steps, over this server's limit of {LONG} (--max-projection-steps)"),
        (dict(steps=100_001), "steps: must be an int in 1..100000, got 100001"),
        (dict(files=[ok] * 3), "targets: 3 targets in one request, over this server's limit of 2 "
                               "(--max-projection-targets); split the request"),
        (dict(files=[]), "targets: no targets given"),
        (dict(files=[ok, crafted_png(100_000, 100_000)]),
         "targets[1]: the image claims more pixels than Pillow's decompression-bomb limit; shrink it first"),
        (dict(files=[crafted_png(5000, 5000)]),
         "targets[0]: the image is 5000x5000 pixels, more than the limit of 4,096 (about 64x64); shrink it first"),
        (dict(files=[png(np.zeros((65, 65, 3), np.uint8))]), "targets[0]: the image is 65x65 pixels, more than"),
        (dict(files=[png(np.random.RandomState(0).randint(0, 255, (64, 64, 4), np.uint8))]),
         "targets[0]: a file of "),     # 64 x 64 pixels (allowed), over 16 KiB (not)
        (dict(files=[b"not an image at all"]), "targets[0]: not a PNG or JPEG file"),
        (dict(files=[ok[:60]]), "targets[0]: cannot decode the image"),
        (dict(loss="l2"), "loss: must be one of ('lpips', 'lpips-vgg16', 'mse'), got 'l2'"),
        (dict(seed=-1), "seed: must be an int in [0, 2**32 - 1]"),
        (dict(init=np.zeros((2, 6, 8), np.float32)), "init: expected ws for 1 or 1 targets, got 2"),
        (dict(transform=np.eye(3) * 2), "transform: this model (stylegan2) has no input transform"),
        (dict(raw=pb.ProjectRequest(model="tiny", targets=[ok], space=7)), "space: unknown value 7"),
        (dict(raw=pb.ProjectRequest(model="tiny", targets=[ok], transform=pb.Transform(rotate=[10.0]))),
         "transform: a projection takes the input transform as its raw [3, 3] matrix"),
    ]


@pytest.mark.parametrize("case, message", crafted_cases(), ids=range(len(crafted_cases())))
def test_bad_requests_are_invalid_argument_and_the_server_keeps_serving(client, stub, case, message):
    case = dict(case)
    raw = case.pop("raw", None)
    msg = raw if raw is not None else request(case.pop("files", [png(np.full((20, 24, 3), 128, np.uint8))]), **case)
    err = status_of(lambda: list(stub.Project(msg, timeout=TIMEOUT)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert err.details().startswith(message), err.details()
    still_serving(client, stub)


@pytest.mark.parametrize("kwargs", [dict(space="z"), dict(steps=0), dict(seed=2**32 - 1), dict(loss="l2"),
                                    dict(init=np.zeros((3, 8), np.float32)), dict(transform=np.eye(3) * 2)],
                         ids=lambda kw: next(iter(kw)))
def test_bad_arguments_say_what_the_in_process_call_says(client, stub, G, targets, kwargs):
    """The client checks before sending (the projection's definition); the server answers the same text."""
    args = {"loss": "mse", "steps": 3, **kwargs}
    with pytest.raises(ValueError) as local:
        sg.project(G, targets, **args)
    with pytest.raises(ValueError) as remote:   # checked here; a loss's name by the server (its losses)
        client.project(targets, **args)
    assert str(remote.value) == str(local.value)
    if "space" in kwargs or "steps" in kwargs:
        return   # an unknown space cannot be encoded (an enum), and steps 0 on the wire means the default
    err = status_of(lambda: list(stub.Project(request([png(t) for t in targets], **args), timeout=TIMEOUT)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details() == str(local.value)


# ----------------------------------------------------------------------------
# Models that cannot be projected into


def test_an_exported_model_answers_failed_precondition_with_the_reason(server, client, stub, targets):
    err = status_of(lambda: list(stub.Project(request([png(targets[0])], model="emoji"), timeout=TIMEOUT)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == ("projection needs a model the torch backend runs (a checkpoint or official file); "
                             "onnxruntime cannot differentiate")
    assert "Error" not in err.details() and "Unavailable" not in err.details()   # a reason, not a class name
    with sg.Client(server.target, model="emoji", timeout=TIMEOUT) as C:    # the client knows from ModelInfo
        with pytest.raises(ProjectionUnavailable) as e:
            C.project(targets[0], loss="mse")
        assert str(e.value) == err.details()
    still_serving(client, stub)


def test_a_server_without_projections_says_so(model_file, targets):
    with serve_in_thread({"tiny": str(model_file)}, settings=ServerSettings(max_projections=0)) as bg, \
            sg.Client(bg.target, timeout=TIMEOUT) as C:
        with pytest.raises(ProjectionUnavailableError) as e:
            C.project(targets[0], loss="mse")
        assert isinstance(e.value, ProjectionUnavailable) and isinstance(e.value, ClientError)
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert str(e.value) == "this server runs no projections (--max-projections 0)"
        assert C.generate(0, output="uint8").shape == (16, 16, 3)


def test_a_torch_free_server_answers_failed_precondition():
    """A server without torch (an exported folder on ONNX Runtime) never imports it for a Project call."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "import grpc, numpy as np\n"
        "from serving import serve_in_thread\n"
        "from stylegan_sdk import images\n"
        "from stylegan_sdk._proto import pb, pb_grpc\n"
        "from stylegan_sdk.loading import DEFAULT_EXPORT\n"
        "with serve_in_thread({'emoji': DEFAULT_EXPORT}) as bg, grpc.insecure_channel(bg.target) as ch:\n"
        "    req = pb.ProjectRequest(targets=[images.encode(np.zeros((8, 8, 3), np.uint8))], loss='mse')\n"
        "    try:\n"
        "        list(pb_grpc.StyleGANStub(ch).Project(req, timeout=30))\n"
        "    except grpc.RpcError as e:\n"
        "        print(e.code().name, '|', e.details())\n"
        "assert 'torch' not in sys.modules\n"
    )
    assert "torch" in BLOCK_TORCH
    out = run_without_torch(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("FAILED_PRECONDITION | projection needs a model the torch backend runs (a checkpoint "
                                  "or official file); onnxruntime cannot differentiate")


def test_the_servers_limits_are_in_the_model_info(client, stub):
    assert client._meta().max_projection_steps == LONG     # the client checks steps against it before sending
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT)
    assert (info.limits.max_projections, info.limits.max_queued_projections, info.limits.max_projection_targets,
            info.limits.max_projection_pixels, info.limits.max_projection_file_bytes) == (1, 1, 2, 4096, 16384)


def test_the_client_projects_without_torch(server):
    """Client.project in a process where torch cannot be imported: targets prepared, the Projection built."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "import numpy as np\n"
        "import stylegan_sdk as sg\n"
        f"with sg.Client({server.target!r}, model='tiny', timeout=60) as C:\n"
        "    p = C.project(np.full((20, 24, 3), 100, np.uint8), loss='mse', steps=3, progress=print,\n"
        "                  progress_every=3)\n"
        "assert isinstance(p, sg.Projection) and p.ws.shape == (1, 6, 8) and p.steps == 3\n"
        "assert 'torch' not in sys.modules\n"
    )
    out = run_without_torch(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("3 3 [")


def test_projection_metrics(server, client, targets):
    from prometheus_client import generate_latest

    client.project(targets[0], loss="mse", steps=2)
    wait_for(lambda: pool(server).admitted == 0, "the worker to be given back")   # just after the result was sent
    text = generate_latest(server.metrics.registry).decode()
    assert 'stylegan_requests_total{code="OK",method="Project"}' in text
    assert 'stylegan_projections{state="running"} 0.0' in text and 'stylegan_projections{state="queued"} 0.0' in text, \
        [line for line in text.splitlines() if "projections" in line or "Project" in line]
