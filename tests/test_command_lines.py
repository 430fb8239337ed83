"""What a new user meets on the command lines (issue 32): --help shows the defaults, addresses printed are
ones to open, one resolution of a model argument for every command, and words a user can act on."""

from __future__ import annotations

import re
import urllib.request

import pytest
from conftest import stylegan_cli

from serving import ServerSettings, serve_in_thread
from serving.config import build_parser as serve_parser
from serving.server import StyleGANServer


def _help(parser) -> str:
    return " ".join(parser.format_help().split())   # argparse wraps lines; compare words


def test_serve_help_shows_the_defaults():
    text = _help(serve_parser("stylegan serve")).split("options:", 1)[1]
    for option, default in (("--port PORT", "50051"), ("--max-batch MAX_BATCH", "32"),
                            ("--max-delay-ms MAX_DELAY_MS", "2.0"), ("--max-queue MAX_QUEUE", "64"),
                            ("--grace GRACE", "10.0"), ("--backend", "auto"), ("--max-seeds MAX_SEEDS", "256")):
        after = text.split(option + " ", 1)[1]
        assert re.match(rf"(?:(?! --).)*\(default: {re.escape(default)}\)", after), (option, after[:200])
    assert "(default: None)" not in text and "(default: False)" not in text


@pytest.mark.parametrize("host, url", [
    ("[::]", "http://localhost:9100/metrics"),
    ("0.0.0.0", "http://localhost:9100/metrics"),
    ("127.0.0.1", "http://127.0.0.1:9100/metrics"),
    ("[::1]", "http://[::1]:9100/metrics"),
])
def test_metrics_url_is_one_to_open(host, url):
    server = StyleGANServer(None, None, None, [], 0, host, ServerSettings(metrics_port=9100), None)
    server.metrics_port = 9100
    assert server.metrics_url == url


def test_printed_metrics_url_answers(skip32_generator):
    with serve_in_thread({"m": skip32_generator}, "127.0.0.1:0", ServerSettings(metrics_port=0)) as bg:
        url = bg.server.metrics_url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert b"stylegan" in reply.read()


# ----------------------------------------------------------------------------
# One resolution of a model argument for every command


def test_info_reads_an_exported_folder(capsys):
    import json

    from stylegan_sdk.formats.exported import read_exported
    from stylegan_sdk.loading import DEFAULT_EXPORT

    code, out, err = stylegan_cli(capsys, "info", DEFAULT_EXPORT)
    assert code == 0, err
    record = json.loads(out)
    model = read_exported(DEFAULT_EXPORT)
    assert record["config"] == model.config.to_dict()
    assert record["info"]["num_ws"] == model.config.num_ws and record["info"]["img_resolution"] == 32
    assert record["exported"]["opset"] == model.manifest["opset"]
    sets = {name: f"directions_{name}.safetensors" for name in ("sefa", "ganspace", "attributes")}
    assert set(record["exported"]["files"]) == {"mapping.onnx", "synthesis.onnx", "style_affines.safetensors",
                                                *sets.values()}
    assert record["exported"]["style_affines"] == "style_affines.safetensors"
    assert record["exported"]["directions"] == sets
    code, out, _ = stylegan_cli(capsys, "info", "default")               # "default" resolves the same way
    assert code == 0 and json.loads(out)["config"] == model.config.to_dict()


def test_commands_that_need_weights_say_an_exported_folder_has_none(tmp_path, capsys):
    from stylegan_sdk.loading import DEFAULT_EXPORT, read_model

    code, _, err = stylegan_cli(capsys, "convert", DEFAULT_EXPORT, "--out", tmp_path / "x.safetensors")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is an exported model" in err and "model file it was exported from" in err
    assert "no model.json" not in err
    with pytest.raises(ValueError, match="is an exported model"):
        read_model(DEFAULT_EXPORT)
    code, _, err = stylegan_cli(capsys, "info", tmp_path)                 # a folder that is no model
    assert code == 2 and "is a folder without a model.json" in err
    code, _, err = stylegan_cli(capsys, "info", tmp_path / "missing")
    assert code == 2 and "no such model file or exported folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------
# Style groups by name, where the README and the pictures use them


def test_mix_takes_the_style_groups_by_name(skip32_generator, tmp_path, capsys):
    import numpy as np

    from stylegan_sdk.loading import DEFAULT_CHECKPOINT

    G = skip32_generator
    assert G.config.layer_indices("coarse") == "0,1,2,3" and G.config.layer_indices("middle,7") == "4,5,6,7,7"
    ws = G.map(np.random.RandomState(0).randn(2, G.config.z_dim).astype(np.float32))
    by_name = G.mix(ws[0], ws[1], "coarse", output="float")
    assert np.array_equal(by_name, G.mix(ws[0], ws[1], "0-3", output="float"))
    assert np.array_equal(G.mix(ws[0], ws[1], "coarse,middle", output="float"),
                          G.synthesize(ws[1], output="float"))
    with pytest.raises(ValueError, match=r"^layers: this 32 px model has no fine layers"):
        G.mix(ws[0], ws[1], "fine")
    with pytest.raises(ValueError, match=r"^layers:"):
        G.mix(ws[0], ws[1], "coarse,sideways")
    code, out, err = stylegan_cli(capsys, "mix", "--model", DEFAULT_CHECKPOINT, "--row-seeds", "1,2",
                                  "--col-seeds", "3", "--layers", "coarse", "--out", tmp_path / "mix.png")
    assert code == 0, err
    assert (tmp_path / "mix.png").is_file() and "layers coarse" in out


# ----------------------------------------------------------------------------
# Words a user of the command line can act on


def test_command_lines_say_flags_not_python(tmp_path, capsys):
    from stylegan_sdk._cli import flag_names

    repo = tmp_path / "repo"
    assert stylegan_cli(capsys, "export", "triton", "default", "--out", repo, "--name", "emoji")[0] == 0
    code, _, err = stylegan_cli(capsys, "export", "triton", "default", "--out", repo, "--name", "emoji")
    assert code == 2 and "already exists (--force replaces it)" in err and "=True" not in err, err
    assert stylegan_cli(capsys, "export", "triton", "default", "--out", repo, "--name", "emoji", "--force")[0] == 0
    assert flag_names("out: 'x' already exists (force=True replaces it)", ("force",)) == \
        "out: 'x' already exists (--force replaces it)"
    assert flag_names("max_batch: use no_verify=True", ("max_batch", "no_verify")) == "--max-batch: use --no-verify"


def test_an_unconditional_model_refuses_a_class_in_plain_words(skip32_generator):
    with pytest.raises(ValueError) as e:
        skip32_generator.generate(0, c=1)
    assert str(e.value) == "c: this model is unconditional (c_dim = 0) and takes no class"


def test_dataset_tool_labels_as_its_help_says(tmp_path):
    """--labels takes {"labels": {path: record}} (emoji64_labels.json), the bare {path: record}, or NVlabs pairs."""
    from training.dataset import DatasetError
    from training.dataset_tool import build_parser, labels_by_field

    records = {"a/1.png": {"category": "B"}, "a/2.png": {"category": "A"}}
    wrapped = labels_by_field({"labels": records}, "f.json", "category")
    assert labels_by_field(records, "f.json", "category") == wrapped == ({"a/1.png": 1, "a/2.png": 0}, ["A", "B"])
    assert labels_by_field({"labels": [["a/1.png", 3]]}, "f.json", "category") == ({"a/1.png": 3}, None)
    with pytest.raises(DatasetError, match=r"neither .*NVlabs dataset.json.* nor a mapping of image path"):
        labels_by_field({"labels": 7}, "f.json", "category")
    text = " ".join(build_parser().format_help().split())
    assert '{"labels": [[path, label], ...]}' in text and '{"labels": {path: {field: value, ...}}}' in text


# ----------------------------------------------------------------------------
# interpolate(num_frames=N) gives N frames, whatever the number of keyframes


def test_interpolate_gives_the_frames_asked_for(skip32_generator):
    import numpy as np

    from stylegan_sdk.latents import path_position

    G = skip32_generator
    frames = list(G.interpolate([1, 2, 3], num_frames=60, output="uint8"))
    assert len(frames) == 60
    np.testing.assert_array_equal(frames[0], G.generate(1, output="uint8"))
    np.testing.assert_array_equal(frames[-1], G.generate(3, output="uint8"))
    five = list(G.interpolate([1, 2, 3], num_frames=5, output="uint8"))    # 4 steps over 2 segments: keys on frames
    np.testing.assert_array_equal(five[2], G.generate(2, output="uint8"))
    assert [path_position(i, 3, 5) for i in range(5)] == [(0, 0.0), (0, 0.5), (1, 0.0), (1, 0.5), (1, 1.0)]
    assert [path_position(i, 2, 4)[1] for i in range(4)] == list(np.linspace(0, 1, 4))
    with pytest.raises(ValueError, match=r"^num_frames: 2 frames cannot pass through 3 keyframes"):
        G.interpolate([1, 2, 3], num_frames=2)


# ----------------------------------------------------------------------------
# The server: no false alarm on stop, junk to the health service answered like junk to ours


def test_stop_with_nothing_in_flight_says_nothing_of_a_grace_period(skip32_generator, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="stylegan.serving"):
        with serve_in_thread({"m": skip32_generator}, "127.0.0.1:0", ServerSettings(grace=0.0)):
            pass
    assert not [r for r in caplog.records if "grace period over" in r.getMessage()]


def test_junk_to_the_health_service_is_invalid_argument(skip32_generator, caplog):
    import logging

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with serve_in_thread({"m": skip32_generator}, "127.0.0.1:0", ServerSettings()) as bg, \
            grpc.insecure_channel(bg.target) as channel, caplog.at_level(logging.WARNING, logger="stylegan.serving"):
        for path in ("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"):
            call = channel.unary_unary(path) if path.endswith("Check") else channel.unary_stream(path)
            with pytest.raises(grpc.RpcError) as e:
                reply = call(b"\xff\xff\xff", timeout=10)
                if path.endswith("Watch"):
                    next(iter(reply))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.value.details() == "request is not a valid HealthCheckRequest"
        ok = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert ok.status == health_pb2.HealthCheckResponse.SERVING
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        assert next(iter(watch)).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
    records = [r for r in caplog.records if r.name == "stylegan.serving" and "not a valid" in r.getMessage()]
    assert len(records) == 2 and all(r.exc_info is None for r in records)


def test_output_into_a_closed_pipe_ends_quietly(capsys, tmp_path):
    """`stylegan info M | head`: the reader closes the pipe early; the command exits 0 without a traceback
    (a real pipe and process, since the behaviour is the process's), and one image is "1 image"."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)                       # closed before anything is written: every write fails (EPIPE)
    proc = subprocess.Popen([sys.executable, "-m", "stylegan_sdk", "info", "default"], stdout=write,
                            stderr=subprocess.PIPE)
    os.close(write)
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""
    code, out, err = stylegan_cli(capsys, "generate", "--model", "default", "--seeds", "3", "--outdir", tmp_path)
    assert code == 0, err
    assert out.startswith("wrote 1 image to ")
