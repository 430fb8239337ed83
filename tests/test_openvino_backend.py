"""The OpenVINO backend on exported folders: fp32 parity with torch and ONNX Runtime (StyleGAN2 fixtures, StyleGAN3
with its input transform, StyleGAN v1), any batch, the whole Generator API, and the refusals (precision, device,
tampered / external-data / contradicting graphs). bf16 parity runs only on CPUs with bfloat16 (AVX512-BF16 / AMX)."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")

from conftest import FIXTURES, NVLABS_CONFIGS, nvlabs_checkpoint, nvlabs_fixture  # noqa: E402

import stylegan_sdk as sg  # noqa: E402
from stylegan_sdk.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from stylegan_sdk.backends.openvino_backend import OpenVinoBackend, cpu_capabilities, cpu_precisions  # noqa: E402
from stylegan_sdk.config import GeneratorConfig  # noqa: E402
from stylegan_sdk.export.onnx import export_onnx  # noqa: E402
from stylegan_sdk.formats.exported import graph_io, read_exported  # noqa: E402
from stylegan_sdk.version import install_hint

IMG_TOL = 1e-4
SG3 = FIXTURES / "nvlabs-stylegan3" / "sg3t_32"
V1 = FIXTURES / "rosinality-stylegan1" / "v1_32"


def _torch_generator(ckpt) -> sg.Generator:
    from stylegan_sdk.backends.torch_backend import TorchBackend

    return sg.Generator(TorchBackend(ckpt.config, ckpt.tensors))


@pytest.fixture(scope="module")
def sg2(exported_model) -> dict[str, tuple[Path, object]]:
    """The three NVlabs StyleGAN2 fixtures exported (the session's exports): name -> (folder, ckpt)."""
    return {name: (exported_model(name), nvlabs_checkpoint(name)) for name in NVLABS_CONFIGS}


def _max_err(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


# ----------------------------------------------------------------------------
# fp32 parity


@pytest.mark.parametrize("name", NVLABS_CONFIGS)
def test_stylegan2_matches_torch_onnxruntime_and_the_official_fixture(sg2, name):
    folder, ckpt = sg2[name]
    G_ov = sg.Generator(OpenVinoBackend(folder))
    G_ort = sg.Generator(OnnxRuntimeBackend(folder))
    G_pt = _torch_generator(ckpt)
    assert G_ov.backend.precision == "fp32" and G_ov.backend.device == "cpu" and G_ov.info.backend == "openvino"
    c = 1 if ckpt.config.c_dim else None
    for batch in (1, 3, 8, 1):  # the batch axis stays dynamic: any size, in any order
        seeds = list(range(batch))
        for mode in ("const", "none", "random"):
            a = G_ov.generate(seeds, psi=0.8, c=c, noise_mode=mode, noise_seed=11, output="float")
            assert a.shape[0] == batch
            assert _max_err(a, G_pt.generate(seeds, psi=0.8, c=c, noise_mode=mode, noise_seed=11,
                                             output="float")) <= IMG_TOL, (batch, mode)
            assert _max_err(a, G_ort.generate(seeds, psi=0.8, c=c, noise_mode=mode, noise_seed=11,
                                              output="float")) <= IMG_TOL, (batch, mode)
    config, _, ref = nvlabs_fixture(name)
    ws = G_ov.map(ref["z"], c=ref.get("c"), psi=0.7, cutoff=config["truncation_cutoff"])
    assert _max_err(ws, ref["ws_psi070"]) <= 1e-5
    for mode in ("const", "none"):
        assert _max_err(G_ov.synthesize(ref["ws_psi070"], noise_mode=mode), ref[f"img_psi070_{mode}"]) <= IMG_TOL


def test_the_generator_api_on_openvino(sg2):
    """map / synthesize / generate / mix / interpolate answer as on ONNX Runtime (a conditional model)."""
    folder, _ = sg2["sg2_resnet_16_cond"]
    G = sg.Generator(OpenVinoBackend(read_exported(folder)), batch_size=3)
    R = sg.Generator(OnnxRuntimeBackend(folder), batch_size=3)
    seeds = [5, 6, 7, 8]
    ws = G.map(sg.seed_to_z(seeds, G.config.z_dim), c=2, psi=0.6)
    assert _max_err(ws, R.map(sg.seed_to_z(seeds, G.config.z_dim), c=2, psi=0.6)) <= 1e-5
    assert _max_err(G.synthesize(ws, noise_mode="random", noise_seed=3),
                    R.synthesize(ws, noise_mode="random", noise_seed=3)) <= IMG_TOL
    u8 = G.generate(seeds, psi=0.7, c=[0, 1, 2, 3], output="uint8")
    assert u8.dtype == np.uint8 and u8.shape == (4, 16, 16, 3)
    assert int(np.abs(u8.astype(int) - R.generate(seeds, psi=0.7, c=[0, 1, 2, 3], output="uint8")).max()) <= 1
    assert len(G.generate([1, 2], c=0)) == 2  # PIL images
    assert _max_err(G.mix(ws[0], ws[1], "0-3", output="float"), R.mix(ws[0], ws[1], "0-3", output="float")) <= IMG_TOL
    frames = list(G.interpolate([1, 2], num_frames=3, c=1, output="float"))
    want = list(R.interpolate([1, 2], num_frames=3, c=1, output="float"))
    assert len(frames) == len(want) and max(_max_err(a, b) for a, b in zip(frames, want)) <= IMG_TOL


def test_loaded_through_sg_load_and_the_registry(sg2):
    from stylegan_sdk.backends.registry import REGISTRY, backend_class

    assert "openvino" in REGISTRY and backend_class("openvino") is OpenVinoBackend
    folder, _ = sg2["sg2_skip_32"]
    G = sg.load(folder, backend="openvino")
    assert G.info.backend == "openvino" and G.backend.precision == "fp32"
    assert G.generate([0, 1], output="uint8").shape == (2, 32, 32, 3)


def test_concurrent_calls_answer_as_serial_ones(sg2):
    """One infer request per network, guarded: threads calling at once get their own answers."""
    folder, _ = sg2["sg2_skip_32"]
    G = sg.Generator(OpenVinoBackend(folder))
    jobs = [list(range(k, k + 1 + k % 3)) for k in range(8)]
    want = [G.generate(seeds, output="float") for seeds in jobs]
    got: list[np.ndarray | None] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def one(k: int) -> None:
        barrier.wait(30)
        got[k] = G.generate(jobs[k], output="float")

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for k in range(len(jobs)):
        np.testing.assert_array_equal(got[k], want[k])


def test_stylegan3_with_its_input_transform(sg3_dirs):
    from stylegan_sdk.loading import read_model

    folder = sg3_dirs["sg3t_32"]
    ref = dict(np.load(SG3 / "reference.npz"))
    G = sg.Generator(OpenVinoBackend(folder))
    G_pt = _torch_generator(read_model(SG3 / "network-snapshot.pkl"))
    assert _max_err(G.map(ref["z"], psi=0.7), ref["ws_psi070"]) <= 1e-5
    assert _max_err(G.synthesize(ref["ws_psi070"]), ref["img_psi070"]) <= IMG_TOL
    for tag in "ab":
        view = dict(translate=tuple(ref[f"xform_{tag}_translate"]), rotate=float(ref[f"xform_{tag}_rotate"]))
        assert _max_err(G.synthesize(ref["ws_psi100"], **view), ref[f"xform_{tag}_img"]) <= IMG_TOL
    assert _max_err(G.synthesize(ref["ws_psi100"], transform=ref["xform_c_transform"]), ref["xform_c_img"]) <= IMG_TOL
    for batch in (1, 3, 8):
        view = dict(translate=(0.1, -0.2), rotate=15.0)
        assert _max_err(G.generate(list(range(batch)), psi=0.7, output="float", **view),
                        G_pt.generate(list(range(batch)), psi=0.7, output="float", **view)) <= IMG_TOL


def test_stylegan1_export(exported_model):
    from stylegan_sdk.loading import read_model

    folder = exported_model("v1_32")
    ref = dict(np.load(V1 / "reference.npz"))
    G = sg.Generator(OpenVinoBackend(folder))
    assert G.info.arch == "stylegan1"
    ws = G.map(ref["z"])
    noise = [ref[f"noise_step3_{i // 2}"] for i in range(8)]  # one noise image per block, both layers
    assert _max_err(G.backend.synthesize(ws, "random", noise), ref["img_step3_alpha1"]) <= IMG_TOL
    assert _max_err(G.synthesize(ws, noise_mode="none"), ref["img_step3_zeronoise"]) <= IMG_TOL
    G_pt = _torch_generator(read_model(V1 / "checkpoint.model"))
    for batch in (1, 3, 8):
        for mode in ("const", "none", "random"):
            kw = dict(psi=0.8, noise_mode=mode, noise_seed=5, output="float")
            assert _max_err(G.generate(list(range(batch)), **kw), G_pt.generate(list(range(batch)), **kw)) <= IMG_TOL


# ----------------------------------------------------------------------------
# Refusals


@pytest.mark.skipif("bf16" in cpu_precisions(), reason="this CPU has bfloat16: bf16 is accepted here")
def test_bf16_is_refused_on_a_cpu_without_bfloat16(sg2):
    folder, _ = sg2["sg2_skip_32"]
    with pytest.raises(ValueError) as info:
        OpenVinoBackend(folder, precision="bf16")
    message = str(info.value)
    assert message.startswith("precision: 'bf16' needs a CPU with bfloat16 support (AVX512-BF16 or AMX); this CPU "
                              "offers FP32") and message.endswith("use precision='fp32'"), message
    assert "\n" not in message and "FP32" in cpu_capabilities()


@pytest.mark.parametrize("precision", ["fp16", "int8", "FP32", "float32", "", 16])
def test_other_precisions_are_refused(sg2, precision):
    folder, _ = sg2["sg2_skip_32"]
    with pytest.raises(ValueError, match=r"precision: the openvino backend accepts 'fp32' or 'bf16', got"):
        OpenVinoBackend(folder, precision=precision)


@pytest.mark.parametrize(("device", "match"), [("cuda", "runs on the CPU here"), ("cuda:1", "not CUDA"),
                                               ("gpu", "accepts 'cpu' or 'auto'"), ("mps", "accepts 'cpu' or 'auto'")])
def test_devices_other_than_the_cpu_are_refused(sg2, device, match):
    folder, _ = sg2["sg2_skip_32"]
    with pytest.raises(ValueError, match=match):
        OpenVinoBackend(folder, device=device)
    backend = OpenVinoBackend(folder, device="auto", precision=None, threads=1)
    assert backend.device == "cpu" and backend.precision == "fp32"
    with pytest.raises(ValueError, match="threads"):
        OpenVinoBackend(folder, threads=-1)


@pytest.fixture
def folder(sg2, tmp_path: Path) -> Path:
    """A private copy of the exported sg2_skip_32."""
    copy = tmp_path / "model"
    shutil.copytree(sg2["sg2_skip_32"][0], copy)
    return copy


def _relist(folder: Path) -> None:
    """Rewrite model.json's sha256 / sizes for the files now in the folder (as an attacker would)."""
    manifest = json.loads((folder / "model.json").read_text())
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (folder / "model.json").write_text(json.dumps(manifest))


def test_graph_modified_after_read_exported_is_refused(folder: Path):
    exported = read_exported(folder)
    data = bytearray((folder / "synthesis.onnx").read_bytes())
    data[-10] ^= 0xFF
    (folder / "synthesis.onnx").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"synthesis\.onnx: sha256 does not match"):
        OpenVinoBackend(exported)


def test_graph_with_external_data_is_refused(folder: Path):
    onnx = pytest.importorskip("onnx")
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(folder / "mapping.onnx")
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="mapping.data", size_threshold=0)
    onnx.save_model(model, folder / "mapping.onnx")
    manifest = json.loads((folder / "model.json").read_text())
    manifest["files"]["mapping.data"] = {}
    (folder / "model.json").write_text(json.dumps(manifest))
    _relist(folder)
    with pytest.raises(ValueError, match=r"mapping\.onnx: the graph keeps tensors in external data files") as info:
        OpenVinoBackend(folder)
    assert "\n" not in str(info.value)


def test_graph_whose_inputs_contradict_the_config_is_refused(folder: Path):
    """model.json consistent with itself (w_dim 128), the graphs still the 64-wide ones: caught when they load."""
    manifest = json.loads((folder / "model.json").read_text())
    cfg = GeneratorConfig.from_dict({**manifest["config"], "w_dim": 128})
    manifest.update(config=cfg.to_dict(), w_avg=[0.0] * 128)
    for graph, (inputs, outputs) in graph_io(cfg).items():
        manifest["graphs"][graph].update(inputs={k: list(v) for k, v in inputs.items()},
                                         outputs={k: list(v) for k, v in outputs.items()})
    (folder / "model.json").write_text(json.dumps(manifest))
    read_exported(folder)
    with pytest.raises(ValueError, match=r"mapping\.onnx: mapping output 'w' has shape \[None, 64\], but model\.json's "
                                         r"config implies \['batch', 128\] \(the config contradicts the graph\)"):
        OpenVinoBackend(folder)


def _swap_mapping(folder: Path, nodes: list, z_type: int, w_dim: int, z_dim: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("z", z_type, ["batch", z_dim])],
                              [helper.make_tensor_value_info("w", TensorProto.FLOAT, ["batch", w_dim])],
                              [helper.make_tensor("k", TensorProto.FLOAT, [z_dim, w_dim], [0.5] * (z_dim * w_dim))])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), folder / "mapping.onnx")
    _relist(folder)


def test_graph_with_non_float32_io_is_refused(folder: Path):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["z"], ["zf"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["zf", "k"], ["w"])]
    _swap_mapping(folder, nodes, TensorProto.DOUBLE, 64, 64)
    with pytest.raises(ValueError, match=r"mapping\.onnx: mapping graph tensor 'z' is f64, expected f32"):
        OpenVinoBackend(folder)


def test_graph_openvino_cannot_convert_is_refused(folder: Path):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("NoSuchOp", ["z", "k"], ["w"], domain="example.unknown")]
    _swap_mapping(folder, nodes, TensorProto.FLOAT, 64, 64)
    with pytest.raises(ValueError, match=r"mapping\.onnx: OpenVINO cannot load this graph \(") as info:
        OpenVinoBackend(folder)
    assert "\n" not in str(info.value)


def test_install_hint_without_openvino():
    from conftest import run_without_torch

    code = ("class _BlockOV:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'openvino' or name.startswith('openvino.'):\n"
            "            raise ImportError('No module named openvino')\n"
            "sys.meta_path.insert(0, _BlockOV())\n"
            "from stylegan_sdk.backends.registry import backend_class\n"
            "try:\n    backend_class('openvino')\nexcept ImportError as e:\n    print(e)\n")
    out = run_without_torch(code)
    assert out.returncode == 0, out.stderr
    assert install_hint("openvino") in out.stdout


# ----------------------------------------------------------------------------
# bf16 (CPUs with AVX512-BF16 / AMX only; CI has one)


def _random_config_f_like(resolution: int):
    """A randomly initialised config-f-like StyleGAN2 (512 channels, 8 mapping layers) at `resolution` px."""
    import torch

    from stylegan_sdk.config import GeneratorConfig
    from stylegan_sdk.formats.checkpoint import Checkpoint
    from stylegan_sdk.models import build_generator

    cfg = GeneratorConfig(z_dim=512, w_dim=512, img_resolution=resolution, channel_base=32768, channel_max=512,
                          mapping_layers=8)
    torch.manual_seed(0)
    model = build_generator(cfg)
    return Checkpoint(cfg, {k: v.detach().numpy() for k, v in model.state_dict().items()}, {"random_init": True})


@pytest.mark.skipif("bf16" not in cpu_precisions(), reason="needs a CPU with bfloat16 (AVX512-BF16 or AMX)")
@pytest.mark.parametrize("model", ["sg2_skip_32", "config-f-64"])
def test_bf16_images_stay_close_to_fp32(sg2, tmp_path, model):
    """uint8 images in bf16 vs fp32 on the same CPU: mean |d| <= 1.0 and max |d| <= 16 (issue bounds)."""
    if model == "config-f-64":
        folder = tmp_path / "configf_64"
        export_onnx(_random_config_f_like(64), folder, verify=False)
    else:
        folder = sg2[model][0]
    G32 = sg.Generator(OpenVinoBackend(folder, precision="fp32"))
    G16 = sg.Generator(OpenVinoBackend(folder, precision="bf16"))
    assert G16.backend.precision == "bf16"
    compiled = G16.backend.synthesis.compiled.get_property("INFERENCE_PRECISION_HINT")
    assert "bf16" in str(compiled).lower() or "bfloat16" in str(compiled).lower(), compiled
    mapping = str(G16.backend.mapping.compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
    assert "f32" in mapping or "float32" in mapping, mapping  # the mapping network stays fp32
    seeds = list(range(8))
    for mode in ("const", "none"):
        a = G32.generate(seeds, psi=0.7, noise_mode=mode, output="uint8").astype(np.int32)
        b = G16.generate(seeds, psi=0.7, noise_mode=mode, output="uint8").astype(np.int32)
        d = np.abs(a - b)
        print(f"bf16 {model} {mode}: mean |d| {d.mean():.3f}, max {d.max()}")
        assert a.std() > 0 and d.mean() <= 1.0 and d.max() <= 16, (mode, float(d.mean()), int(d.max()))
