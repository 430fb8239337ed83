"""`sg.Client` / `sg.AsyncClient` against a real server on 127.0.0.1:0: the same answers, return types and
errors as the in-process `Generator`, on onnxruntime (an exported folder) and torch (a conditional model)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from conftest import BLOCK_TORCH, nvlabs_checkpoint
from PIL import Image

import stylegan_sdk as sg
from serving import ServerSettings, serve_in_thread
from stylegan_sdk import client as sgc
from stylegan_sdk._proto import codec, pb, pb_grpc
from stylegan_sdk.generator import Generator

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30
ATOL = 1e-5


CLASS_NAMES = ("ant", "bee", "cat", "dog")  # given to the conditional fixture (c_dim 4)


def torch_generator(name: str, class_names: tuple[str, ...] = ()) -> Generator:
    import dataclasses

    from stylegan_sdk.backends.torch_backend import TorchBackend

    ckpt = nvlabs_checkpoint(name)
    return Generator(TorchBackend(dataclasses.replace(ckpt.config, class_names=class_names), ckpt.tensors))


@pytest.fixture(scope="module")
def G_cond() -> Generator:
    return torch_generator("sg2_resnet_16_cond", CLASS_NAMES)


@pytest.fixture(scope="module")
def server(skip32_dir):
    with serve_in_thread({"skip32": str(skip32_dir), "cond16": torch_generator("sg2_resnet_16_cond", CLASS_NAMES)},
                         settings=ServerSettings(max_delay_ms=5)) as bg:
        yield bg


@pytest.fixture(scope="module")
def client(server):
    with sg.Client(server.target, timeout=TIMEOUT) as C:
        yield C


def same(a, b) -> None:
    """Equal answers: floats within 1e-5, uint8 exactly, PIL images pixel for pixel, lists element-wise."""
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, Image.Image):
        assert isinstance(b, Image.Image) and a.size == b.size and a.mode == b.mode
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
        if a.dtype == np.uint8:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)


# ----------------------------------------------------------------------------
# Parity


def test_info_config_and_w_avg(client, G_ort):
    assert client.info == G_ort.info  # the same ModelInfo dataclass, backend and device included
    assert client.config == G_ort.config
    np.testing.assert_array_equal(client.w_avg, G_ort.w_avg)
    assert list(client.list_models()) == ["skip32", "cond16"]


def test_generate_parity(client, G_ort):
    for kw in [dict(), dict(psi=0.7), dict(psi=0.5, cutoff=2), dict(noise_mode="none"),
               dict(noise_mode="random", noise_seed=7)]:
        for output in ("float", "uint8", "pil"):
            same(client.generate([0, 1, 42], output=output, **kw), G_ort.generate([0, 1, 42], output=output, **kw))
    same(client.generate("3-5,9", psi=0.6), G_ort.generate("3-5,9", psi=0.6))
    single = client.generate(42, psi=0.7)  # a single seed gives a single image
    assert isinstance(single, Image.Image)
    same(single, G_ort.generate(42, psi=0.7))
    same(client.generate(5, output="float"), G_ort.generate(5, output="float"))


def test_map_synthesize_mix_parity(client, G_ort):
    z = sg.seed_to_z([0, 1, 2, 3], G_ort.info.z_dim)
    ws = G_ort.map(z, psi=0.7)
    same(client.map(z, psi=0.7), ws)
    same(client.map(z[0], psi=0.5, cutoff=3), G_ort.map(z[0], psi=0.5, cutoff=3))  # one z -> [num_ws, w_dim]
    same(client.map(z.tolist()), G_ort.map(z.tolist()))
    for output in ("float", "uint8", "pil"):
        same(client.synthesize(ws, output=output), G_ort.synthesize(ws, output=output))
        same(client.synthesize(ws[1], output=output), G_ort.synthesize(ws[1], output=output))
    same(client.synthesize(ws, noise_mode="random", noise_seed=3), G_ort.synthesize(ws, noise_mode="random",
                                                                                     noise_seed=3))
    coarse = G_ort.info.layers_in_group("coarse")
    same(client.mix(ws[0], ws[1], coarse), G_ort.mix(ws[0], ws[1], coarse))
    same(client.mix(ws[:2], ws[2:], "4-7", output="float"), G_ort.mix(ws[:2], ws[2:], "4-7", output="float"))
    same(client.mix(ws[0], ws[1], 3, noise_mode="random", noise_seed=1, output="uint8"),
         G_ort.mix(ws[0], ws[1], 3, noise_mode="random", noise_seed=1, output="uint8"))


def test_conditional_model_on_torch(server, G_cond):
    with sg.Client(server.target, model="cond16", timeout=TIMEOUT) as C:
        assert C.info == G_cond.info and C.info.c_dim == 4
        same(C.generate([0, 1], c=2, psi=0.7, output="float"), G_cond.generate([0, 1], c=2, psi=0.7, output="float"))
        same(C.generate([0, 1], c=[3, 1]), G_cond.generate([0, 1], c=[3, 1]))
        cvec = np.eye(4, dtype=np.float32)[[0, 2]] * 0.5
        z = sg.seed_to_z([4, 5], C.info.z_dim)
        same(C.map(z, c=cvec), G_cond.map(z, c=cvec))
        with pytest.raises(ValueError) as e:
            C.generate(0)
        with pytest.raises(ValueError) as e_local:
            G_cond.generate(0)
        assert str(e.value) == str(e_local.value)


def test_classes_by_name_through_the_client(server, G_cond):
    """The model's class names travel in ModelInfo and config_json; the client resolves names to indices."""
    from stylegan_sdk import demo

    with sg.Client(server.target, model="cond16", timeout=TIMEOUT) as C:
        assert C.info.class_names == CLASS_NAMES == G_cond.info.class_names
        same(C.generate([0, 1], c="cat", psi=0.7), G_cond.generate([0, 1], c=2, psi=0.7))
        same(C.generate([0, 1], c=["dog", 1]), G_cond.generate([0, 1], c=[3, 1]))
        z = sg.seed_to_z([4], C.info.z_dim)
        same(C.map(z, c="bee"), G_cond.map(z, c=1))
        with pytest.raises(ValueError, match="no class named 'cow'; this model's classes: 'ant', 'bee'") as e:
            C.generate(0, c="cow")
        with pytest.raises(ValueError) as e_local:
            G_cond.generate(0, c="cow")
        assert str(e.value) == str(e_local.value)
        assert demo.class_rows(C, 4, 0.7, seeds=2).row_labels == list(CLASS_NAMES)


def test_code_written_for_generator_runs_on_client_unchanged(client, G_ort):
    def figure(G):
        """A style-mixing row, written against the Generator API."""
        ws = G.map(sg.seed_to_z([10, 11, 12], G.config.z_dim), psi=0.7)
        rows = G.mix(np.repeat(ws[:1], 2, axis=0), ws[1:], G.info.layers_in_group("coarse"), output="uint8")
        return sg.images.grid([G.synthesize(ws[0], output="uint8"), *rows], cols=3)

    np.testing.assert_array_equal(figure(client), figure(G_ort))


def test_interpolate(client, G_ort):
    frames = list(client.interpolate([0, 5, 9], num_frames=7, output="float"))   # 7 frames in all, 3 per segment
    assert len(frames) == 7 and frames[0].shape == (3, 32, 32)
    for index, seed in ((0, 0), (3, 5), (6, 9)):  # the keyframes are the generated images of their seeds
        same(frames[index], G_ort.generate(seed, output="float"))
    ws = G_ort.map(sg.seed_to_z([0, 5], 64), psi=0.6)
    middle = list(client.interpolate(z=sg.seed_to_z([0, 5], 64), num_frames=5, psi=0.6, output="float"))
    same(middle[2], G_ort.synthesize((ws[0] + ws[1]) * np.float32(0.5), output="float"))  # lerp in W
    same(middle[-1], G_ort.synthesize(ws[1], output="float"))
    slerped = list(client.interpolate([0, 5], num_frames=3, space="z", psi=0.6, output="uint8"))
    z_mid = sg.latents.slerp(*sg.seed_to_z([0, 5], 64), 0.5)
    assert len(slerped) == 3 and slerped[1].shape == (32, 32, 3)
    same(slerped[1], G_ort.synthesize(G_ort.map(z_mid, psi=0.6), output="uint8"))
    same(slerped[0], G_ort.generate(0, psi=0.6, output="uint8"))
    pil = list(client.interpolate(ws=ws, num_frames=2))
    assert [type(p) for p in pil] == [Image.Image, Image.Image]
    still = list(client.interpolate([1, 2], num_frames=3, noise_mode="random", noise_seed=4, output="float"))
    same(still[0], G_ort.synthesize(G_ort.map(sg.seed_to_z(1, 64)[0]), noise_mode="random", noise_seed=4,
                                    output="float"))
    with pytest.raises(ValueError, match="space: ws keyframes interpolate in W only"):
        list(client.interpolate(ws=ws, num_frames=3, space="z"))
    with pytest.raises(ValueError, match="num_frames"):
        client.interpolate([1, 2], num_frames=1)


def test_generator_interpolate_equals_client_interpolate(client, G_ort):
    """Generator and Client share interpolate(): same frames for every keyframe kind and space."""
    calls = [dict(seeds=[0, 5, 9], num_frames=4, psi=0.7),
             dict(z=sg.seed_to_z([1, 2], 64), num_frames=3, space="z", noise_mode="random", noise_seed=3),
             dict(ws=G_ort.map(sg.seed_to_z([3, 4], 64)), num_frames=3, noise_mode="none")]
    for kw in calls:
        local = list(G_ort.interpolate(**kw, output="float"))
        remote = list(client.interpolate(**kw, output="float"))
        assert len(local) == len(remote)
        for a, b in zip(local, remote):
            same(a, b)


def test_async_client_parity(server, G_ort):
    async def run():
        async with sg.AsyncClient(server.target, timeout=TIMEOUT) as C:
            info = await C.get_info()
            z = sg.seed_to_z([1, 2], 64)
            results = await asyncio.gather(*(C.generate(s, psi=0.7, output="float") for s in range(8)),
                                           C.map(z, psi=0.7), C.mix(*G_ort.map(z), [0, 1]))
            ws = results[8]
            synth = await C.synthesize(ws, noise_mode="random", noise_seed=2, output="uint8")
            frames = [f async for f in C.interpolate([1, 2], num_frames=3, output="float")]
            with pytest.raises(ValueError) as e:
                await C.generate(1, psi=float("nan"))
            return info, results, synth, frames, str(e.value)

    info, results, synth, frames, message = asyncio.run(run())
    assert info == G_ort.info
    for s in range(8):
        same(results[s], G_ort.generate(s, psi=0.7, output="float"))
    z = sg.seed_to_z([1, 2], 64)
    same(results[8], G_ort.map(z, psi=0.7))
    same(results[9], G_ort.mix(*G_ort.map(z), [0, 1]))
    same(synth, G_ort.synthesize(results[8], noise_mode="random", noise_seed=2, output="uint8"))
    assert len(frames) == 3
    same(frames[-1], G_ort.generate(2, output="float"))
    assert message == "psi: must be finite, got nan"


# ----------------------------------------------------------------------------
# Errors


def test_bad_arguments_raise_the_generators_value_error(client, G_ort):
    ws = G_ort.map(sg.seed_to_z([0, 1], 64))
    calls = [
        lambda G: G.map(np.zeros([2, 65], np.float32)),
        lambda G: G.map(np.zeros([2, 64], np.float32), psi=float("nan")),
        lambda G: G.map(np.full([1, 64], np.inf, np.float32)),
        lambda G: G.map(np.zeros([1, 64], np.float32), c=1),
        lambda G: G.generate(1, cutoff=99),
        lambda G: G.generate(1, cutoff=1.5),
        lambda G: G.generate("1-x"),
        lambda G: G.generate([2**32]),
        lambda G: G.generate([]),
        lambda G: G.generate(1, output="jpg"),
        lambda G: G.generate(1, noise_mode="fresh"),
        lambda G: G.generate(1, psi="0.5"),
        lambda G: G.generate(1, noise_mode="random", noise_seed=-1),
        lambda G: G.synthesize(ws[:, :3]),
        lambda G: G.synthesize("nope"),
        lambda G: G.mix(ws, ws, [0, 8]),
        lambda G: G.mix(ws, ws[:1], [0]),
        lambda G: G.mix(ws, ws, "0-a"),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(ValueError) as local:
            call(G_ort)
        with pytest.raises(ValueError) as remote:
            call(client)
        assert str(remote.value) == str(local.value), i
    # Arguments only the server can judge come back from it as ValueError too.
    with sg.Client(client.target, timeout=TIMEOUT) as C:
        C._model = sgc.RemoteModel(C.info, C.config, C.w_avg, max_seeds=10_000, max_message_bytes=64 << 20)
        with pytest.raises(sgc.InvalidArgumentError, match="over this server's limit of 256"):
            C.generate(list(range(300)), output="uint8")


def test_unknown_model(server):
    with sg.Client(server.target, model="nope", timeout=TIMEOUT) as C, pytest.raises(LookupError) as e:
        C.info  # noqa: B018
    assert isinstance(e.value, sgc.ModelNotFoundError) and "'nope'" in str(e.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unavailable_is_retried_with_backoff_then_raised():
    port = free_port()
    t0 = time.monotonic()
    with sg.Client(f"127.0.0.1:{port}", timeout=5, retries=2) as C, pytest.raises(ConnectionError) as e:
        C.generate(1)
    assert isinstance(e.value, sgc.ServerUnavailableError) and f"127.0.0.1:{port}" in str(e.value)
    policy = sgc.RetryPolicy()
    slept = sum(0.5 * min(policy.max_backoff, policy.initial_backoff * policy.multiplier**k) for k in range(2))
    assert slept <= time.monotonic() - t0 < 5  # two backoff sleeps (at least half of each), within the timeout
    # A server that comes up while the client is retrying is reached.
    G = torch_generator("sg2_skip_32")
    started: list = []
    starter = threading.Timer(0.3, lambda: started.append(serve_in_thread({"m": G}, address=f"127.0.0.1:{port}")))
    starter.start()
    try:
        with sg.Client(f"127.0.0.1:{port}", timeout=TIMEOUT, retries=8) as C:
            assert C.generate(3, output="uint8").shape == (32, 32, 3)
    finally:
        starter.join()
        for bg in started:
            bg.stop()


def test_large_requests_are_split_to_fit_the_message_limit(G_ort, skip32_dir):
    """A server with a small message limit: the client splits what fits in several calls; random noise
    with a noise_seed (one draw over the whole request) cannot be split and is refused with a clear error."""
    limit = 256 << 10  # 32 float images of 32 px are 384 KiB
    with serve_in_thread({"m": G_ort}, settings=ServerSettings(max_message_mb=limit / (1 << 20))) as bg, \
            sg.Client(bg.target, timeout=TIMEOUT, max_message_bytes=limit) as C:
        seeds = list(range(32))
        same(C.generate(seeds, output="float"), G_ort.generate(seeds, output="float"))
        ws = G_ort.map(sg.seed_to_z(seeds, 64))
        same(C.synthesize(ws, output="float"), G_ort.synthesize(ws, output="float"))
        same(C.mix(ws, ws[::-1], [0, 1], output="float"), G_ort.mix(ws, ws[::-1], [0, 1], output="float"))
        assert bg.metrics.registry.get_sample_value(
            "stylegan_requests_total", {"method": "Generate", "code": "OK"}) >= 2  # split
        with pytest.raises(ValueError, match="message limit"):
            C.generate(seeds, noise_mode="random", noise_seed=1, output="float")
        # A request over the server's limit is refused by grpc itself; the client names the limit.
        with grpc.insecure_channel(bg.target) as channel, pytest.raises(grpc.RpcError) as e:
            big = np.zeros([200, 8, 64], np.float32)  # 400 KiB
            pb_grpc.StyleGANStub(channel).Synthesize(pb.SynthesizeRequest(ws=codec.to_tensor(big)), timeout=TIMEOUT)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        err = sgc.translate_error(e.value, bg.target, "Synthesize")
        assert isinstance(err, ValueError) and "larger than the gRPC limit" in str(err)


# ----------------------------------------------------------------------------
# Dependencies


def test_client_imports_neither_torch_nor_model_code(server, G_ort):
    """A client process where torch cannot be imported; grpc only loads once Client is used."""
    code = BLOCK_TORCH + (
        "import numpy as np\n"
        "import stylegan_sdk as sg\n"
        "assert 'grpc' not in sys.modules\n"
        f"with sg.Client('{server.target}', timeout=30) as C:\n"
        "    x = C.generate([1, 2], psi=0.7, output='float')\n"
        "np.save(sys.stdout.buffer, x)\n"
        "loaded = [m for m in ('torch', 'onnxruntime', 'stylegan_sdk.models', 'stylegan_sdk.backends.torch_backend',"
        " 'serving') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, cwd=ROOT / "tests")
    assert out.returncode == 0, out.stderr.decode()
    import io

    same(np.load(io.BytesIO(out.stdout)), G_ort.generate([1, 2], psi=0.7, output="float"))
