"""ONNX export: graphs, model.json, ONNX Runtime parity with the official fixtures, torch-free use."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import NVLABS, NVLABS_CONFIGS, nvlabs_checkpoint, nvlabs_fixture, run_without_torch

import stylegan_sdk as sg
from stylegan_sdk.export.onnx import TENSORRT_OPS
from stylegan_sdk.formats.exported import graph_io, read_exported

REPO = Path(__file__).resolve().parents[1]
IMG_TOL = 1e-4


@pytest.fixture(scope="module", params=NVLABS_CONFIGS)
def exported(request, exported_model):
    """(name, folder): the fixture network as export_onnx writes it, verified against torch (the session's export)."""
    return request.param, exported_model(request.param)


def test_folder_contents_and_manifest(exported):
    name, folder = exported
    assert sorted(os.listdir(folder)) == ["mapping.onnx", "model.json", "style_affines.safetensors", "synthesis.onnx"]
    manifest = json.loads((folder / "model.json").read_text())
    cfg = nvlabs_checkpoint(name).config
    assert manifest["config"]["img_resolution"] == cfg.img_resolution
    assert manifest["num_ws"] == cfg.num_ws
    assert [row["group"] for row in manifest["layers"]][:4] == ["coarse"] * 4
    assert manifest["noise"]["resolutions"] == cfg.noise_resolutions
    assert manifest["opset"] == 18 and "torch" in manifest["exporter"] and "onnx" in manifest["exporter"]
    np.testing.assert_array_equal(np.asarray(manifest["w_avg"], np.float32), nvlabs_checkpoint(name).w_avg)
    for file in ("mapping.onnx", "synthesis.onnx"):
        assert len(manifest["files"][file]["sha256"]) == 64
    assert manifest["graphs"]["synthesis"]["inputs"]["ws"] == ["batch", cfg.num_ws, cfg.w_dim]
    # Every file the folder uses is a plain name listed with its sha256; the record of the graphs is the config's.
    assert set(manifest["files"]) == {entry["file"] for entry in manifest["graphs"].values()} | {
        manifest["style_affines"]}
    assert manifest["style_affines"] == "style_affines.safetensors" and manifest["directions"] == {}
    for graph, (inputs, outputs) in graph_io(cfg).items():
        assert manifest["graphs"][graph]["inputs"] == {k: list(v) for k, v in inputs.items()}
        assert manifest["graphs"][graph]["outputs"] == {k: list(v) for k, v in outputs.items()}


def _input_dependent(graph: onnx.GraphProto) -> set[str]:
    """Names of every tensor computed (transitively) from a graph input."""
    tainted = {i.name for i in graph.input}
    for node in graph.node:  # nodes are topologically sorted
        if any(x in tainted for x in node.input):
            tainted.update(node.output)
    return tainted


def test_graphs_are_tensorrt_friendly(exported):
    _, folder = exported
    for file in ("mapping.onnx", "synthesis.onnx"):
        model = onnx.load(folder / file)
        onnx.checker.check_model(model, full_check=True)
        assert {n.op_type for n in model.graph.node} <= TENSORRT_OPS
        dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert dims[0] == "batch", "batch axis must be dynamic"
        # The modulated convolution must not be a convolution whose weights come from the inputs.
        tainted = _input_dependent(model.graph)
        for node in model.graph.node:
            if node.op_type in ("Conv", "ConvTranspose"):
                assert node.input[1] not in tainted, f"{node.name}: weights depend on the graph inputs"
                group = [a.i for a in node.attribute if a.name == "group"]
                assert group in ([], [1]) or node.input[1] not in tainted


def test_onnxruntime_reproduces_the_official_fixtures(exported):
    name, folder = exported
    config, _, ref = nvlabs_fixture(name)
    G = sg.load(folder)  # auto -> onnxruntime for exported folders
    assert G.info.backend == "onnxruntime"
    cutoff = config["truncation_cutoff"]
    for psi in ("100", "070", "050"):
        ws = G.map(ref["z"], c=ref.get("c"), psi=int(psi) / 100, cutoff=cutoff)
        err_ws = float(np.abs(ws - ref[f"ws_psi{psi}"]).max())
        assert err_ws <= 1e-5, (psi, err_ws)
        for mode in ("const", "none"):
            err = float(np.abs(G.synthesize(ref[f"ws_psi{psi}"], noise_mode=mode) - ref[f"img_psi{psi}_{mode}"]).max())
            print(f"ONNX {name:22s} img_psi{psi}_{mode:5s} max_abs_err={err:.3e}")
            assert err <= IMG_TOL
    for group in ("coarse", "middle"):
        img = G.mix(ref["ws_psi100"][0], ref["ws_psi100"][1], ref[f"mix_{group}_layers"].tolist(), output="float")
        assert float(np.abs(img - ref[f"mix_{group}_img"][0]).max()) <= IMG_TOL


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch_and_random_noise_match_torch(exported, batch):
    name, folder = exported
    ckpt = nvlabs_checkpoint(name)
    from stylegan_sdk.backends.torch_backend import TorchBackend

    G_ort = sg.load(folder)
    G_pt = sg.Generator(TorchBackend(ckpt.config, ckpt.tensors))
    c = 1 if ckpt.config.c_dim else None
    for mode in ("const", "none", "random"):
        a = G_ort.generate(list(range(batch)), psi=0.8, c=c, noise_mode=mode, noise_seed=11, output="float")
        b = G_pt.generate(list(range(batch)), psi=0.8, c=c, noise_mode=mode, noise_seed=11, output="float")
        assert a.shape[0] == batch
        assert float(np.abs(a - b).max()) <= IMG_TOL, mode


def test_modified_file_is_refused(exported, tmp_path):
    _, folder = exported
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in os.listdir(folder):
        (copy / f).write_bytes((folder / f).read_bytes())
    data = bytearray((copy / "synthesis.onnx").read_bytes())
    data[-10] ^= 0xFF
    (copy / "synthesis.onnx").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        sg.load(copy)
    (copy / "mapping.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="mapping.onnx"):
        read_exported(copy)


def test_backend_choice_errors(exported):
    _, folder = exported
    with pytest.raises(ValueError, match="exported folder"):
        sg.load(folder, backend="torch")
    with pytest.raises(ValueError, match="device"):
        sg.load(folder, device="quantum")


def test_exported_folder_runs_without_torch(exported):
    _, folder = exported
    code = (
        "import stylegan_sdk as sg\n"
        f"G = sg.load({str(folder)!r})\n"
        "c = 0 if G.info.c_dim else None\n"
        "imgs = G.generate([0, 1, 2], psi=0.7, c=c, output='uint8')\n"
        "print(imgs.shape, imgs.dtype, 'torch' in sys.modules)\n"
    )
    out = run_without_torch(code)
    assert out.returncode == 0, out.stderr
    assert "uint8 False" in out.stdout


def to_onnx(capsys, *argv) -> tuple[int, str]:
    """export/to_onnx.py's main(argv) in process -> (exit code, stderr); argparse's usage errors raise SystemExit."""
    spec = importlib.util.spec_from_file_location("to_onnx", REPO / "export" / "to_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        code = module.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_cli_exports_and_refuses_bad_input(to_onnx_run, tmp_path, capsys):
    """The script in a real process exports (and verifies) the pickle; an existing --out or a missing model file is
    one line and exit 2, nothing written (those two through the script's main in process)."""
    ok, out = to_onnx_run
    pkl = str(NVLABS / "sg2_skip_32" / "network-snapshot.pkl")
    assert ok.returncode == 0, ok.stderr
    assert (out / "synthesis.onnx").is_file() and "wrote" in ok.stdout
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    for args, needle in [([pkl, "--out", str(out)], "already exists"),
                         ([str(tmp_path / "missing.pkl"), "--out", str(tmp_path / "x")], "no such model file")]:
        code, err = to_onnx(capsys, *args)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # the existing folder left alone
    assert not (tmp_path / "x").exists()
    leftovers = [p for folder in (tmp_path, out.parent) for p in os.listdir(folder) if p.startswith(".")]
    assert leftovers == []


# ----------------------------------------------------------------------------
# StyleGAN v1 (rosinality fixture) through the same export


@pytest.fixture(scope="module")
def v1_exported(exported_model):
    from conftest import FIXTURES

    return exported_model("v1_32"), dict(np.load(FIXTURES / "rosinality-stylegan1" / "v1_32" / "reference.npz"))


@pytest.mark.parametrize("output", ["alpha1", "trunc070", "mix0to1", "mix2up", "zeronoise", "mix0to1_zeronoise"])
def test_v1_onnxruntime_reproduces_rosinality_fixture(v1_exported, output):
    folder, ref = v1_exported
    G = sg.load(folder)
    assert G.info.arch == "stylegan1" and G.info.num_ws == 8
    ws = G.map(ref["z"])                     # [4, 8, w_dim]; block b drives rows 2b, 2b+1
    ws_mix = G.map(ref["z_mix"])
    if output == "trunc070":
        ws = sg.truncate(ws, ref["mean_style"][0], 0.7)
    elif output.startswith("mix0to1"):
        ws = sg.mix_ws(ws, ws_mix, "0-3")
    elif output == "mix2up":
        ws = sg.mix_ws(ws, ws_mix, "4-7")
    # rosinality's one noise image per block serves both layers of the block.
    noise = [ref[f"noise_step3_{i // 2}"] for i in range(8)]
    if output.endswith("zeronoise"):
        noise = [np.zeros_like(n) for n in noise]
    img = G.backend.synthesize(ws, "random", noise)
    err = float(np.abs(img - ref[f"img_step3_{output}"]).max())
    print(f"ONNX v1_32 img_step3_{output:18s} max_abs_err={err:.3e}")
    assert err <= IMG_TOL
    if output == "zeronoise":
        assert float(np.abs(G.synthesize(ws, noise_mode="none") - ref["img_step3_zeronoise"]).max()) <= IMG_TOL


# ----------------------------------------------------------------------------
# The command line makes the missing folders above --out (issue 11), and only for an export that succeeds


def test_cli_makes_missing_folders_above_out(to_onnx_run, tmp_path, capsys):
    ok, out = to_onnx_run                                  # --out NEW/a/new/dir: "a" and "new" did not exist
    pkl = str(NVLABS / "sg2_skip_32" / "network-snapshot.pkl")
    assert ok.returncode == 0, ok.stderr
    assert ok.args[-2:] == ["--out", str(out)] and out.relative_to(out.parents[2]).as_posix() == "a/new/dir"
    assert sorted(os.listdir(out)) == ["mapping.onnx", "model.json", "style_affines.safetensors", "synthesis.onnx"]
    assert os.listdir(out.parent) == ["dir"]               # no temporary folder left beside it
    assert os.listdir(out.parents[1]) == ["new"]
    # A failed export leaves no folder behind; an --out under a file is refused before anything is read.
    (tmp_path / "file").write_text("x")
    for args, needle in [([str(tmp_path / "missing.pkl"), "--out", str(tmp_path / "b" / "new" / "dir")],
                          "no such model file"),
                         ([pkl, "--out", str(tmp_path / "file" / "dir")], "out: cannot create")]:
        code, err = to_onnx(capsys, *args)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("to_onnx.py: error:") and needle in lines[0], err
    assert sorted(os.listdir(tmp_path)) == ["file"]


# ----------------------------------------------------------------------------
# Every synthesis input has a batch axis; format_version "1" folders (noise_const_gain [1]) still run

LEGACY = Path(__file__).parent / "fixtures" / "exported-format-1" / "emoji_onnx"


def test_noise_gain_has_a_batch_axis_and_is_per_row(exported):
    name, folder = exported
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["format_version"] == "2"
    cfg = nvlabs_checkpoint(name).config
    inputs = manifest["graphs"]["synthesis"]["inputs"]
    assert all(shape[0] == "batch" for shape in inputs.values()), inputs
    assert inputs["noise_const_gain"] == ["batch", 1]
    graph = onnx.load(folder / "synthesis.onnx")
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input}
    assert dims["noise_const_gain"][0] == dims["ws"][0] and isinstance(dims["ws"][0], str)
    # The gain is per row: row 0 const noise, row 1 none, in one call, equal to the two calls apart.
    import onnxruntime as ort

    sess = ort.InferenceSession(str(folder / "synthesis.onnx"))
    rng = np.random.RandomState(3)
    ws = rng.randn(2, cfg.num_ws, cfg.w_dim).astype(np.float32)
    zeros = {f"noise_{k}": np.zeros([2, 1, r, r], np.float32) for k, r in enumerate(cfg.noise_resolutions)}
    both = sess.run(None, {"ws": ws, "noise_const_gain": np.array([[1.0], [0.0]], np.float32), **zeros})[0]
    G = sg.load(folder, backend="onnxruntime")
    np.testing.assert_allclose(both[0], G.synthesize(ws[:1], noise_mode="const", output="float")[0], atol=1e-5)
    np.testing.assert_allclose(both[1], G.synthesize(ws[1:], noise_mode="none", output="float")[0], atol=1e-5)
    assert np.abs(both[0] - both[1]).max() > 1e-3  # the gain changed something


@pytest.fixture(scope="module")
def reexported_legacy(exported_model):
    """The checkpoint the format "1" folder was exported from, exported again today (per-row gain)."""
    return exported_model("emoji_format1_source")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_format_version_1_folders_still_run(backend, reexported_legacy):
    old = sg.load(LEGACY, backend=backend)
    new = sg.load(reexported_legacy, backend="onnxruntime")  # the same weights, re-exported with the per-row gain
    assert json.loads((LEGACY / "model.json").read_text())["format_version"] == "1"
    assert not read_exported(LEGACY).gain_per_row
    for mode in ("const", "none", "random"):
        a = old.generate([1, 2, 3], psi=0.7, noise_mode=mode, noise_seed=5, output="float")
        b = new.generate([1, 2, 3], psi=0.7, noise_mode=mode, noise_seed=5, output="float")
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_recorded_gain_shape_must_match_the_format_version(tmp_path):
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(LEGACY, folder)
    manifest = json.loads((folder / "model.json").read_text())
    manifest["format_version"] = "2"  # claims per-row gain, records [1]
    (folder / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"noise_const_gain.*\[1\].*\['batch', 1\]"):
        read_exported(folder)
