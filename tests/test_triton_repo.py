"""export/to_triton.py and the triton:// address: the repository layout, config.pbtxt parsed as Triton's
ModelConfig (tritonclient's model_config_pb2), argument checks. The real server is tests/test_triton_server.py."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stylegan_sdk as sg
from stylegan_sdk.export.triton import write_repository
from stylegan_sdk.formats.exported import graph_io, read_exported
from stylegan_sdk.formats.triton import PARAMETER, parse_url, read_parameter
from stylegan_sdk.loading import DEFAULT_EXPORT

text_format = pytest.importorskip("google.protobuf.text_format", reason="needs protobuf")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="needs tritonclient[grpc]: pip install 'stylegan-sdk[triton]'")
ROOT = Path(__file__).resolve().parents[1]
LEGACY = Path(__file__).parent / "fixtures" / "exported-format-1" / "emoji_onnx"


def parse_config(path: Path):
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_repository_layout_and_configs_parse_as_triton_model_config(tmp_path):
    repo = tmp_path / "repo"
    folders = write_repository(DEFAULT_EXPORT, repo, name="emoji", max_batch=16, instances=2, device="cpu",
                               max_queue_delay_us=250)
    assert folders == {"mapping": str(repo / "emoji_mapping"), "synthesis": str(repo / "emoji_synthesis")}
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == [
        "emoji.model.json", "emoji_mapping", "emoji_mapping/1", "emoji_mapping/1/model.onnx",
        "emoji_mapping/config.pbtxt", "emoji_synthesis", "emoji_synthesis/1", "emoji_synthesis/1/model.onnx",
        "emoji_synthesis/config.pbtxt"]
    exported = read_exported(DEFAULT_EXPORT)
    assert json.loads((repo / "emoji.model.json").read_text()) == exported.manifest
    for graph in ("mapping", "synthesis"):
        assert (repo / f"emoji_{graph}" / "1" / "model.onnx").read_bytes() == \
            (Path(DEFAULT_EXPORT) / f"{graph}.onnx").read_bytes()
        cfg = parse_config(repo / f"emoji_{graph}" / "config.pbtxt")
        assert cfg.name == f"emoji_{graph}" and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 16
        assert cfg.dynamic_batching.max_queue_delay_microseconds == 250
        assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, model_config_pb2.ModelInstanceGroup.KIND_CPU)]
        inputs, outputs = graph_io(exported.config)[graph]
        # dims exclude the batch axis, which every input and output has first
        assert {t.name: ["batch", *t.dims] for t in cfg.input} == {k: list(v) for k, v in inputs.items()}
        assert {t.name: ["batch", *t.dims] for t in cfg.output} == {k: list(v) for k, v in outputs.items()}
        assert all(t.data_type == model_config_pb2.TYPE_FP32 for t in (*cfg.input, *cfg.output))
        config, w_avg, precision = read_parameter(cfg.parameters[PARAMETER].string_value, graph, "test")
        assert config == exported.config and precision == "fp32"
        np.testing.assert_array_equal(w_avg, exported.w_avg)  # JSON floats round-trip float32 exactly


def test_stylegan3_and_conditional_models_get_their_inputs(sg3_dirs, tmp_path):
    folder = sg3_dirs["sg3r_32_cond"]
    write_repository(folder, tmp_path / "repo", name="sg3")
    mapping = parse_config(tmp_path / "repo" / "sg3_mapping" / "config.pbtxt")
    synthesis = parse_config(tmp_path / "repo" / "sg3_synthesis" / "config.pbtxt")
    cfg = read_exported(folder).config
    assert [(t.name, list(t.dims)) for t in mapping.input] == [("z", [cfg.z_dim]), ("c", [cfg.c_dim])]
    assert [(t.name, list(t.dims)) for t in synthesis.input] == [("ws", [cfg.num_ws, cfg.w_dim]),
                                                                  ("transform", [3, 3])]


def test_refusals_name_the_problem_and_write_nothing(tmp_path):
    repo = tmp_path / "repo"
    cases = [
        (dict(name="../x"), "name"), (dict(name=""), "name"), (dict(max_batch=0), "max_batch"),
        (dict(max_batch=5000), "max_batch"), (dict(instances=0), "instances"), (dict(engine="plan"), "engine"),
        (dict(device="tpu"), "device"), (dict(engine="tensorrt", device="cpu"), "device"),
        (dict(max_queue_delay_us=-1), "max_queue_delay_us"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValueError, match=f"^{field}:"):
            write_repository(DEFAULT_EXPORT, repo, **kwargs)
    with pytest.raises(ValueError, match=r"format_version 1.*re-export"):
        write_repository(LEGACY, repo)
    with pytest.raises(ValueError, match=r"engine: .*no TensorRT engines.*stylegan export tensorrt"):
        write_repository(DEFAULT_EXPORT, repo, engine="tensorrt")
    with pytest.raises(FileNotFoundError, match="model"):
        write_repository(tmp_path / "nothing", repo)
    with pytest.raises(FileNotFoundError, match="out"):
        write_repository(DEFAULT_EXPORT, tmp_path / "missing" / "repo")
    assert sorted(os.listdir(tmp_path)) == [], "nothing was written"
    write_repository(DEFAULT_EXPORT, repo)
    with pytest.raises(ValueError, match="already exists.*force"):
        write_repository(DEFAULT_EXPORT, repo)
    before = (repo / "stylegan_mapping" / "config.pbtxt").read_text()
    write_repository(DEFAULT_EXPORT, repo, max_batch=4, force=True)
    assert parse_config(repo / "stylegan_mapping" / "config.pbtxt").max_batch_size == 4 != \
        text_format.Parse(before, model_config_pb2.ModelConfig()).max_batch_size
    assert sorted(os.listdir(tmp_path)) == ["repo"], "no staging folders left beside the repository"


def test_tensorrt_engines_become_plan_models(tmp_path):
    """A folder with engines (as export/to_trt.py records them) -> tensorrt_plan models with model.plan."""
    import shutil

    from stylegan_sdk.formats.exported import write_manifest

    folder = tmp_path / "with_engines"
    shutil.copytree(DEFAULT_EXPORT, folder)
    (folder / "mapping.plan").write_bytes(b"mapping engine bytes")
    (folder / "synthesis.plan").write_bytes(b"synthesis engine bytes")
    manifest = json.loads((folder / "model.json").read_text())
    manifest["files"].update({"mapping.plan": {}, "synthesis.plan": {}})
    manifest["engines"] = {"plans": {"mapping": "mapping.plan", "synthesis": "synthesis.plan"}, "fp16": True,
                           "min_batch": 1, "opt_batch": 4, "max_batch": 8}
    write_manifest(str(folder), manifest)
    with pytest.raises(ValueError, match="max_batch: the TensorRT engines take batches 1..8"):
        write_repository(folder, tmp_path / "repo", engine="tensorrt", max_batch=16)
    write_repository(folder, tmp_path / "repo", engine="tensorrt", max_batch=8, device="gpu")
    for graph in ("mapping", "synthesis"):
        cfg = parse_config(tmp_path / "repo" / f"stylegan_{graph}" / "config.pbtxt")
        assert cfg.platform == "tensorrt_plan"
        assert cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
        assert (tmp_path / "repo" / f"stylegan_{graph}" / "1" / "model.plan").read_bytes() == \
            f"{graph} engine bytes".encode()
        assert read_parameter(cfg.parameters[PARAMETER].string_value, graph, "t")[2] == "fp16"


def _to_triton_main(argv: list[str]) -> int:
    """export/to_triton.py's main(argv) in process; argparse's usage errors arrive as SystemExit."""
    spec = importlib.util.spec_from_file_location("to_triton", ROOT / "export" / "to_triton.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.main(argv)
    except SystemExit as e:
        return e.code


def test_cli_one_line_errors_before_touching_the_disk(tmp_path, capsys):
    """Argument errors through the script's main in process; the refused format "1" folder and the export in real
    `python export/to_triton.py` processes."""
    cli = [sys.executable, str(ROOT / "export" / "to_triton.py")]
    out = tmp_path / "a" / "b" / "repo"
    for extra, needle in ((["--max-batch", "0"], "--max-batch: must be"), (["--name", "a/b"], "--name: 'a/b'"),
                          (["--engine", "x"], "--engine: invalid choice"),
                          (["--max-queue-delay-us", "-5"], "--max-queue-delay-us: must be")):
        code = _to_triton_main(["default", "--out", str(out), *extra])
        err = capsys.readouterr().err
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("to_triton.py: error:"), err
    r = subprocess.run([*cli, str(LEGACY), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "re-export" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists(), "no folders left behind by a failed export"
    r = subprocess.run([*cli, "default", "--out", str(out), "--name", "emoji"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "emoji_synthesis" / "1" / "model.onnx").is_file() and "tritonserver --model-repository" in r.stdout


def test_model_file_is_exported_first(tmp_path):
    """A checkpoint (not an exported folder) is exported to ONNX on the way, verified against torch (a 4 px
    network: the smallest one to export)."""
    torch = pytest.importorskip("torch")
    from stylegan_sdk.config import GeneratorConfig
    from stylegan_sdk.models import build_generator

    tiny = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=4, mapping_layers=1, channel_base=64, channel_max=8)
    torch.manual_seed(0)
    sg.save_checkpoint(tmp_path / "tiny.safetensors", tiny, build_generator(tiny).state_dict())
    write_repository(tmp_path / "tiny.safetensors", tmp_path / "repo", name="tiny")
    cfg = parse_config(tmp_path / "repo" / "tiny_synthesis" / "config.pbtxt")
    assert read_parameter(cfg.parameters[PARAMETER].string_value, "synthesis", "t")[0] == \
        sg.read_model(tmp_path / "tiny.safetensors").config


@pytest.mark.parametrize("url, target, name, timeout", [
    ("triton://localhost:8001/emoji", "localhost:8001", "emoji", 30.0),
    ("triton://10.0.0.5/faces-v2?timeout=2.5", "10.0.0.5:8001", "faces-v2", 2.5),
    ("triton://[::1]:9000/m", "[::1]:9000", "m", 30.0),
])
def test_triton_urls(url, target, name, timeout):
    address = parse_url(url)
    assert (address.target, address.name, address.timeout_s) == (target, name, timeout)


@pytest.mark.parametrize("url", ["triton://h:8001/", "triton://h:0/x", "triton://h:70000/x", "triton://h/a/b",
                                 "triton://h/x?timeout=0", "triton://h/x?timeout=abc", "triton://h/x?retries=3",
                                 "triton://h/x?timeout", "triton://user@h/x", "triton:///x", "triton://h/x#frag"])
def test_bad_triton_urls_are_refused_naming_path(url):
    with pytest.raises(ValueError, match="^path: "):
        parse_url(url)


def test_load_refuses_mismatched_backend_and_options():
    with pytest.raises(ValueError, match="backend: .*Triton address"):
        sg.load("triton://127.0.0.1:1/x", backend="onnxruntime")
    with pytest.raises(ValueError, match="backend: 'triton' runs models on a Triton server"):
        sg.load(DEFAULT_EXPORT, backend="triton")
    with pytest.raises(ValueError, match="^path: "):
        sg.load("triton://127.0.0.1:1/")
    with pytest.raises(ValueError, match="device: "):
        sg.load("triton://127.0.0.1:1/x", device="cuda")


def test_a_server_that_never_answers_is_a_deadline_error_in_time():
    """A port that accepts connections but never answers: DeadlineExceededError (a TimeoutError) after the
    address's timeout. (A tiny timeout against a real server is no test: gRPC deadlines are kept in whole
    milliseconds, and a loopback call can answer within one.)"""
    import socket
    import time

    from stylegan_sdk.errors import DeadlineExceededError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # the kernel completes the TCP handshake; nothing ever speaks HTTP/2
        port = s.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceededError, match=f"127.0.0.1:{port}: no answer within the timeout") as info:
            sg.load(f"triton://127.0.0.1:{port}/emoji?timeout=0.5")
        assert isinstance(info.value, TimeoutError)
        assert 0.5 <= time.monotonic() - t0 < 10


def test_unreachable_server_is_a_connection_error_in_time():
    """Nobody listens on the port: ServerUnavailableError (a ConnectionError) within the address's timeout."""
    import socket
    import time

    from stylegan_sdk.errors import ServerUnavailableError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailableError, match=f"127.0.0.1:{port}.*UNAVAILABLE") as info:
        sg.load(f"triton://127.0.0.1:{port}/emoji?timeout=3")
    assert isinstance(info.value, ConnectionError)
    assert time.monotonic() - t0 < 10
