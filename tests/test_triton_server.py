"""The triton:// backend against NVIDIA's real tritonserver (tests/triton_server.py says how it runs here):
every Generator method through Triton gives the in-process images, Triton's dynamic batching keeps rows
apart, and an unreachable, slow or missing server is the client's clear error, also through our gRPC server.

Verified here: tritonserver 2.51 (nvidia-pytriton 0.7.0) on the CPU, its python backend running each
exported model.onnx with ONNX Runtime. Not verified here: Triton's own onnxruntime_onnx and tensorrt_plan
backends and GPU instance groups (not installable from the package registries).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import triton_server

import stylegan_sdk as sg
from stylegan_sdk.errors import ModelNotFoundError, ServerUnavailableError
from stylegan_sdk.export.triton import write_repository
from stylegan_sdk.loading import DEFAULT_EXPORT

pytest.importorskip("tritonclient.grpc", reason="needs tritonclient[grpc]: pip install 'stylegan-sdk[triton]'")
if triton_server.missing():
    pytest.skip(f"the real Triton server cannot run here: {triton_server.missing()}", allow_module_level=True)

MAX_BATCH = 4


# Every test here runs on one xdist worker, in file order (tests/conftest.py, ONE_WORKER_FILES): the server starts
# once for them all (the test that stops it comes last; one that ran earlier would only cost a restart).


@pytest.fixture(scope="module")
def triton_service(tmp_path_factory, sg3_dirs):
    """tritonserver over the bundled emoji model (StyleGAN2, noise) and sg3r_32_cond (StyleGAN3, classes)."""
    work = tmp_path_factory.mktemp("triton")
    write_repository(DEFAULT_EXPORT, work / "exported", name="emoji", max_batch=MAX_BATCH, device="cpu",
                     max_queue_delay_us=20000)
    write_repository(sg3_dirs["sg3r_32_cond"], work / "exported", name="sg3", max_batch=8, device="cpu")
    # Deployed wrongly: a pair whose halves are different generators, and one without our parameter.
    for name, mapping, synthesis, keep_parameter in (("mixed", "emoji", "sg3", True),
                                                     ("bare", "emoji", "emoji", False)):
        for graph, source in (("mapping", mapping), ("synthesis", synthesis)):
            folder = work / "exported" / f"{name}_{graph}"
            shutil.copytree(work / "exported" / f"{source}_{graph}", folder)
            text = (folder / "config.pbtxt").read_text().replace(f'name: "{source}_{graph}"', f'name: "{name}_{graph}"')
            if not keep_parameter:
                text = "\n".join(line for line in text.splitlines() if not line.startswith("parameters")) + "\n"
            (folder / "config.pbtxt").write_text(text)
    repo = triton_server.python_backend_copy(work / "exported", work / "repo")
    server = triton_server.Server(repo, work)
    server.start()
    try:
        yield server, {"emoji": sg.load(DEFAULT_EXPORT, backend="onnxruntime"),
                       "sg3": sg.load(sg3_dirs["sg3r_32_cond"], backend="onnxruntime")}
    finally:
        server.close()


@pytest.fixture
def triton(triton_service):
    """The module's server, running (started again if a test stopped it): port, log file, in-process generators."""
    server, local = triton_service
    if not server.running():
        server.start()
    return {"port": server.port, "log": server.log, "local": local}


def remote(triton, name: str) -> sg.Generator:
    return sg.load(f"triton://127.0.0.1:{triton['port']}/{name}")


def uint8(images) -> np.ndarray:
    return np.stack([np.asarray(im) for im in images]).astype(np.int16)


def test_generate_matches_in_process_in_every_noise_mode(triton):
    G, L = remote(triton, "emoji"), triton["local"]["emoji"]
    assert (G.info.backend, G.info.device, G.info.precision) == ("triton", "remote", "fp32")
    assert G.config == L.config and np.array_equal(G.w_avg, L.w_avg)
    assert G.backend.batch_range == (1, MAX_BATCH)  # max_batch_size from the server's config
    seeds = list(range(11))  # more rows than max_batch_size: split by the Generator
    for mode in ("const", "none", "random"):
        got = uint8(G.generate(seeds, psi=0.7, noise_mode=mode, noise_seed=4))
        want = uint8(L.generate(seeds, psi=0.7, noise_mode=mode, noise_seed=4))
        assert np.abs(got - want).max() <= 1, mode
    G.close()


def test_map_mix_interpolate_synthesize_match(triton):
    G, L = remote(triton, "emoji"), triton["local"]["emoji"]
    z = sg.seed_to_z([3, 9], G.config.z_dim)
    w, w_local = G.map(z, psi=0.6, cutoff=4), L.map(z, psi=0.6, cutoff=4)
    np.testing.assert_allclose(w, w_local, atol=1e-5)
    layers = G.info.layers_in_group("coarse")
    np.testing.assert_array_equal(sg.mix_ws(w_local[0], w_local[1], layers), sg.mix_ws(w[0], w[1], layers))
    mixed, mixed_local = G.mix(w[0], w[1], layers, output="uint8"), L.mix(w_local[0], w_local[1], layers,
                                                                         output="uint8")
    assert np.abs(mixed.astype(int) - mixed_local).max() <= 1
    frames = uint8(G.interpolate([1, 5], num_frames=6, space="w"))
    frames_local = uint8(L.interpolate([1, 5], num_frames=6, space="w"))
    assert np.abs(frames - frames_local).max() <= 1
    np.testing.assert_allclose(G.synthesize(w_local, output="float"), L.synthesize(w_local, output="float"),
                               atol=1e-4)
    G.close()


def test_stylegan3_conditional_with_transforms(triton):
    G, L = remote(triton, "sg3"), triton["local"]["sg3"]
    assert G.config.arch == "stylegan3" and G.config.c_dim > 0
    for kwargs in ({}, {"translate": (0.1, -0.2), "rotate": 20.0}):
        got = uint8(G.generate([0, 1, 2], psi=0.7, c=1, **kwargs))
        want = uint8(L.generate([0, 1, 2], psi=0.7, c=1, **kwargs))
        assert np.abs(got - want).max() <= 1, kwargs
    G.close()


def test_concurrent_callers_are_batched_by_triton_and_kept_apart(triton):
    """Threads with different noise modes at once: Triton's dynamic batcher merges their rows into one
    execution (max_queue_delay 20 ms), and each row keeps its own const-noise gain."""
    G, L = remote(triton, "emoji"), triton["local"]["emoji"]
    jobs = [([k, k + 20], "const" if k % 2 else "none") for k in range(8)]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(k: int, seeds: list[int], mode: str) -> None:
        try:
            results[k] = uint8(G.generate(seeds, psi=0.8, noise_mode=mode))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k, *job)) for k, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for k, (seeds, mode) in enumerate(jobs):
        assert np.abs(results[k] - uint8(L.generate(seeds, psi=0.8, noise_mode=mode))).max() <= 1, (k, mode)
    G.close()
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(f"127.0.0.1:{triton['port']}") as client:
        stats = client.get_inference_statistics("emoji_synthesis").model_stats[0]
    assert stats.inference_count > stats.execution_count, "Triton merged some requests into one execution"


def test_missing_model_and_wrong_precision_are_clear_errors(triton):
    with pytest.raises(ModelNotFoundError, match="nope_mapping.*not found"):
        sg.load(f"triton://127.0.0.1:{triton['port']}/nope")
    with pytest.raises(ValueError, match="precision: the Triton models run in 'fp32'"):
        sg.load(f"triton://127.0.0.1:{triton['port']}/emoji", precision="bf16")


def test_wrongly_deployed_pairs_are_refused(triton):
    with pytest.raises(ValueError, match="mixed_mapping and mixed_synthesis describe different generators"):
        sg.load(f"triton://127.0.0.1:{triton['port']}/mixed")
    with pytest.raises(ValueError, match="bare_mapping.*no stylegan_sdk_model parameter.*stylegan export triton"):
        sg.load(f"triton://127.0.0.1:{triton['port']}/bare")


def test_server_log_shows_the_python_backend_models(triton):
    text = Path(triton["log"]).read_text()
    assert "emoji_synthesis" in text and "READY" in text


def test_cli_generates_through_triton_and_reports_a_missing_model_in_one_line(triton, tmp_path, capsys):
    """`stylegan generate --model triton://...`, in process (the real `stylegan` process is tests/test_cli.py's)."""
    from conftest import stylegan_cli

    base, url = ["generate", "--seeds", "0-3"], f"triton://127.0.0.1:{triton['port']}"
    code, _, err = stylegan_cli(capsys, *base, "--model", f"{url}/emoji", "--outdir", tmp_path / "out")
    assert code == 0 and len(list((tmp_path / "out").glob("seed*.png"))) == 4, err
    code, _, err = stylegan_cli(capsys, *base, "--model", f"{url}/nope", "--outdir", tmp_path / "none")
    assert code == 1 and not (tmp_path / "none").exists()
    assert len(err.strip().splitlines()) == 1 and "NOT_FOUND" in err, err


# Last in the file: it stops the module's server (a test after it would get a new one, on a new port).
def test_our_grpc_server_in_front_of_triton_and_triton_going_away(triton):
    """`stylegan serve --model emoji=triton://...`: the client gets the in-process images; once Triton stops,
    the client's call fails with UNAVAILABLE (ServerUnavailableError) at once, and our server keeps serving."""
    from serving import ServerSettings, serve_in_thread
    from serving.config import parse_model_spec

    L, port = triton["local"]["emoji"], triton["port"]
    url = f"triton://127.0.0.1:{port}/emoji?timeout=10"
    assert parse_model_spec(url) == ("emoji", url)
    with serve_in_thread({"emoji": url}, settings=ServerSettings(max_batch=16)) as bg:
        with sg.Client(bg.target, timeout=20, retries=0) as client:
            assert client.info.backend == "triton"
            assert np.abs(uint8(client.generate([0, 1, 2, 3, 4, 5], psi=0.7))
                          - uint8(L.generate([0, 1, 2, 3, 4, 5], psi=0.7))).max() <= 1
            G = remote({"port": port}, "emoji")
            triton_server.stop(triton_server.RUNNING[port])
            with pytest.raises(ServerUnavailableError, match="backend is unavailable") as info:
                client.generate([7], psi=0.7)
            assert isinstance(info.value, ConnectionError)
            with pytest.raises(ServerUnavailableError, match=f"127.0.0.1:{port}.*UNAVAILABLE"):
                G.generate([7])  # in process: the same error class, naming the server
            assert list(client.list_models()) == ["emoji"]  # our server still answers
