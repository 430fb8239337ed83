"""precision= (fp32 / fp16 / bf16) and backend="auto": one option, checked once, reported by G.info."""

from __future__ import annotations

import pytest

import stylegan_sdk as sg
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.loading import OPENVINO_FROM_RESOLUTION, auto_backend, check_precision

FOLDER = sg.loading.DEFAULT_EXPORT          # the bundled 32 px model, exported
CHECKPOINT = sg.loading.DEFAULT_CHECKPOINT


def has_openvino() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def test_precision_values_and_the_fp16_alias():
    assert check_precision(None) is None
    assert check_precision("bf16") == "bf16"
    assert check_precision(None, fp16=True) == "fp16"
    assert check_precision("fp16", fp16=True) == "fp16"
    with pytest.raises(ValueError, match="precision: must be one of"):
        check_precision("int8")
    with pytest.raises(ValueError, match="fp16=True means precision='fp16'"):
        check_precision("bf16", fp16=True)


def test_info_reports_backend_and_precision():
    for G, backend in ((sg.load(CHECKPOINT), "torch"), (sg.load(FOLDER, backend="onnxruntime"), "onnxruntime")):
        assert (G.info.backend, G.info.precision) == (backend, "fp32")
        assert G.info.to_dict()["precision"] == "fp32"


def test_each_backend_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="bf16.*OpenVINO"):
        sg.load(CHECKPOINT, precision="bf16")                        # torch: fp32 / fp16 (CUDA)
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        sg.load(CHECKPOINT, precision="fp16")
    with pytest.raises(ValueError, match="ONNX Runtime runs the exported graphs in 'fp32'"):
        sg.load(FOLDER, backend="onnxruntime", precision="bf16")
    with pytest.raises(ValueError, match="compile"):
        sg.load(FOLDER, compile=True)


@pytest.mark.parametrize("resolution, device, precision, expect", [
    (32, "cpu", None, "onnxruntime"),
    (64, "cpu", "fp32", "onnxruntime"),
    (OPENVINO_FROM_RESOLUTION, "cpu", None, "openvino"),
    (1024, "cpu", None, "openvino"),
    (32, "cpu", "bf16", "openvino"),
    (1024, "cuda", None, "onnxruntime"),
    (256, "cuda", "fp16", "tensorrt"),
])
def test_auto_backend_rule(resolution, device, precision, expect):
    cfg = GeneratorConfig(img_resolution=resolution)
    if expect == "openvino" and precision != "bf16" and not has_openvino():
        expect = "onnxruntime"  # fp32 falls back to ONNX Runtime where OpenVINO is not installed
    assert auto_backend(cfg, device, precision) == expect


def test_auto_on_a_small_folder_is_onnxruntime_and_says_so():
    G = sg.load(FOLDER)
    assert G.info.backend == "onnxruntime"


def test_served_info_carries_the_precision():
    from serving import serve_in_thread

    G = sg.load(FOLDER)
    with serve_in_thread({"m": G}) as bg, sg.Client(bg.target, timeout=60) as C:
        assert (C.info.backend, C.info.precision) == ("onnxruntime", "fp32")


def test_cli_precision_errors_are_one_line(tmp_path, capsys):
    from conftest import stylegan_cli

    out = tmp_path / "imgs"
    code, _, err = stylegan_cli(capsys, "generate", "--model", CHECKPOINT, "--seeds", "0", "--precision", "bf16",
                                "--outdir", out)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "bf16" in err and not out.exists()
    code, _, err = stylegan_cli(capsys, "generate", "--model", CHECKPOINT, "--seeds", "0", "--precision", "fp8",
                                "--outdir", out)
    assert code == 2 and "invalid choice" in err and not out.exists()


def test_serve_takes_precision():
    from serving.cli import parse_args

    cfg = parse_args(["--model", str(FOLDER), "--precision", "fp32", "--port", "0"])
    assert cfg.settings.precision == "fp32"
    with pytest.raises(SystemExit):
        parse_args(["--model", str(FOLDER), "--precision", "int4"])
