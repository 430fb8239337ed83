"""An exported folder never makes the loader read outside it, use an unchecked file, or trust sizes
that contradict its graphs: tampered copies of a real export (sg2_skip_32) are refused with one-line
errors naming the folder and the entry; the untampered copy still loads and generates."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_without_torch

import stylegan_sdk as sg
from stylegan_sdk.backends.onnxruntime_backend import OnnxRuntimeBackend
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.formats.exported import graph_io, noise_input_names, onnx_uses_external_data, read_exported


@pytest.fixture
def folder(skip32_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the exported sg2_skip_32 folder, next to a folder `outside` holding a copy of its graphs."""
    copy = tmp_path / "model"
    shutil.copytree(skip32_dir, copy)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(copy / "mapping.onnx", outside / "x.onnx")
    return copy


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "model.json").read_text())


def _save(folder: Path, manifest: dict) -> None:
    """Write model.json as an attacker would (model.json itself is not hashed: it holds the hashes)."""
    (folder / "model.json").write_text(json.dumps(manifest))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(folder: Path, match: str, error: type[Exception] = ValueError) -> str:
    """sg.load refuses the folder with `error`; the message is one line and names the folder."""
    with pytest.raises(error, match=match) as info:
        sg.load(folder)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message, message
    return message


def test_untampered_copy_loads_and_generates(folder: Path) -> None:
    exported = read_exported(folder)
    assert set(exported.manifest["files"]) == {"mapping.onnx", "synthesis.onnx", "style_affines.safetensors"}
    assert "model.json" not in exported.manifest["files"]  # it holds the hashes; nothing hashes it
    G = sg.load(folder)
    images = G.generate([0, 1, 2], psi=0.7, output="uint8")
    assert images.shape == (3, 32, 32, 3) and images.std() > 0


def test_untampered_copy_loads_without_torch_or_onnx(folder: Path) -> None:
    code = (f"import stylegan_sdk as sg\nG = sg.load({str(folder)!r})\n"
            "print(G.generate([0], output='uint8').shape, 'torch' in sys.modules, 'onnx' in sys.modules)\n")
    out = run_without_torch(code)
    assert out.returncode == 0, out.stderr
    assert "(1, 32, 32, 3) False False" in out.stdout


# ----------------------------------------------------------------------------
# File names: plain names inside the folder only


def _outside_name(folder: Path, kind: str) -> str:
    return {"dotdot": "../outside/x.onnx", "absolute": str(folder.parent / "outside" / "x.onnx"),
            "subfolder": "sub/x.onnx", "parent": "..", "hidden": ".x.onnx", "backslash": "..\\outside\\x.onnx",
            "manifest": "model.json", "empty": ""}[kind]


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "subfolder", "parent", "hidden", "backslash", "manifest",
                                  "empty"])
@pytest.mark.parametrize("where", ["files", "graph"])
def test_file_names_must_be_plain(folder: Path, kind: str, where: str) -> None:
    name = _outside_name(folder, kind)
    (folder / "sub").mkdir()
    shutil.copyfile(folder / "mapping.onnx", folder / "sub" / "x.onnx")
    manifest = _manifest(folder)
    # Listed with the right sha256 of what it points at: only the name is wrong.
    manifest["files"][name] = {"sha256": _sha256(folder / "mapping.onnx")}
    if where == "graph":
        manifest["graphs"]["mapping"]["file"] = name
        del manifest["files"]["mapping.onnx"]
    _save(folder, manifest)
    message = _refused(folder, "is not a plain file name inside the folder")
    assert repr(name) in message
    with pytest.raises(ValueError, match="not a plain file name"):
        read_exported(folder, verify_hashes=False)


def test_engine_plan_outside_the_folder(folder: Path) -> None:
    manifest = _manifest(folder)
    manifest["engines"] = {"plans": {"mapping": "../outside/x.onnx", "synthesis": "synthesis.onnx"}}
    manifest["files"]["../outside/x.onnx"] = {"sha256": _sha256(folder / "mapping.onnx")}
    _save(folder, manifest)
    _refused(folder, r"'\.\./outside/x\.onnx' is not a plain file name")


def test_symlink_pointing_outside_is_refused(folder: Path) -> None:
    (folder / "mapping.onnx").unlink()
    os.symlink(folder.parent / "outside" / "x.onnx", folder / "mapping.onnx")  # same bytes: the sha256 matches
    message = _refused(folder, "is a symlink")
    assert "'mapping.onnx'" in message


def test_symlinked_model_json_is_refused(folder: Path) -> None:
    os.replace(folder / "model.json", folder.parent / "outside" / "model.json")
    os.symlink(folder.parent / "outside" / "model.json", folder / "model.json")
    _refused(folder, r"'model\.json' is a symlink")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_fifo_instead_of_a_graph_is_refused_without_blocking(folder: Path) -> None:
    (folder / "synthesis.onnx").unlink()
    os.mkfifo(folder / "synthesis.onnx")
    _refused(folder, "'synthesis.onnx' is not a regular file")


# ----------------------------------------------------------------------------
# Every used file listed with a sha256, and checked before use


def test_graph_not_listed_in_files(folder: Path) -> None:
    manifest = _manifest(folder)
    del manifest["files"]["synthesis.onnx"]
    _save(folder, manifest)
    _refused(folder, r"graphs\.synthesis\.file 'synthesis\.onnx' is not listed under files")


@pytest.mark.parametrize("files", [None, {}, "mapping.onnx"])
def test_model_json_without_files(folder: Path, files: object) -> None:
    manifest = _manifest(folder)
    if files is None:
        del manifest["files"]
    else:
        manifest["files"] = files
    _save(folder, manifest)
    _refused(folder, "model.json lists no files")


@pytest.mark.parametrize("sha256", ["0" * 64, "F" * 64, "abc", None])
def test_wrong_or_malformed_sha256(folder: Path, sha256: object) -> None:
    manifest = _manifest(folder)
    manifest["files"]["mapping.onnx"]["sha256"] = sha256
    _save(folder, manifest)
    _refused(folder, "sha256")


def test_missing_graph(folder: Path) -> None:
    (folder / "synthesis.onnx").unlink()
    _refused(folder, r"'synthesis\.onnx' listed in model\.json is missing", FileNotFoundError)


def test_graph_modified_after_read_exported_is_refused_by_the_backend(folder: Path) -> None:
    """Backends load the bytes they hash: a file changed between read_exported and the session is caught."""
    exported = read_exported(folder)
    data = bytearray((folder / "synthesis.onnx").read_bytes())
    data[-10] ^= 0xFF
    (folder / "synthesis.onnx").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"synthesis\.onnx: sha256 does not match"):
        OnnxRuntimeBackend(exported)


def test_graph_with_external_data_is_refused(folder: Path) -> None:
    """A graph must be self-contained: external data (even listed, inside the folder) is never read."""
    onnx = pytest.importorskip("onnx")
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(folder / "mapping.onnx")
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="mapping.data", size_threshold=0)
    onnx.save_model(model, folder / "mapping.onnx")
    manifest = _manifest(folder)
    manifest["files"]["mapping.data"] = {}
    for name, entry in manifest["files"].items():
        entry.update(sha256=_sha256(folder / name), bytes=(folder / name).stat().st_size)
    _save(folder, manifest)
    read_exported(folder)  # consistent on its own terms
    assert onnx_uses_external_data((folder / "mapping.onnx").read_bytes())
    assert not onnx_uses_external_data((folder / "synthesis.onnx").read_bytes())
    _refused(folder, r"mapping\.onnx: the graph keeps tensors in external data files")


def test_graph_that_is_not_onnx_is_refused(folder: Path) -> None:
    (folder / "mapping.onnx").write_bytes(b"\x0a\xff\xff\xff\xff\x0f" + bytes(10))  # a field claiming 4 GiB
    manifest = _manifest(folder)
    manifest["files"]["mapping.onnx"] = {"sha256": _sha256(folder / "mapping.onnx")}
    _save(folder, manifest)
    _refused(folder, r"mapping\.onnx: not a readable ONNX graph \(truncated protobuf message\)")


# ----------------------------------------------------------------------------
# The config must agree with the graphs (model.json's record of them, and the graphs themselves)


def _resized(values: list, n: int) -> list:
    return (values * (n // len(values) + 1))[:n]


def _consistent(manifest: dict, **changes: object) -> dict:
    """model.json rewritten for a config with `changes`: everything it records follows (as an attacker would)."""
    cfg = GeneratorConfig.from_dict({**manifest["config"], **changes})
    manifest = dict(manifest, config=cfg.to_dict(), num_ws=cfg.num_ws, layers=cfg.layer_table(),
                    w_avg=_resized(manifest["w_avg"], cfg.w_dim))
    manifest["noise"] = dict(manifest["noise"], resolutions=cfg.noise_resolutions, inputs=noise_input_names(cfg))
    for graph, (inputs, outputs) in graph_io(cfg).items():
        manifest["graphs"][graph] = dict(manifest["graphs"][graph], inputs={k: list(v) for k, v in inputs.items()},
                                         outputs={k: list(v) for k, v in outputs.items()})
    return manifest


CONTRADICTIONS = [{"img_resolution": 64}, {"img_resolution": 4096}, {"w_dim": 256}, {"z_dim": 128}, {"c_dim": 3},
                  {"img_channels": 1}, {"arch": "stylegan1"}, {"use_noise": False}]


@pytest.mark.parametrize("changes", CONTRADICTIONS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_config_contradicting_the_recorded_graphs(folder: Path, changes: dict) -> None:
    manifest = _manifest(folder)
    manifest["config"].update(changes)
    if "w_dim" in changes:
        manifest["w_avg"] = _resized(manifest["w_avg"], changes["w_dim"])
    _save(folder, manifest)
    _refused(folder, "contradicts|do not match model.json's config")


@pytest.mark.parametrize("changes", CONTRADICTIONS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_config_contradicting_the_graphs_themselves(folder: Path, changes: dict) -> None:
    """model.json consistent with itself, but not with the ONNX graphs: caught when the sessions open, or
    before, by read_exported, where the config needs more weights than the graph files could hold."""
    _save(folder, _consistent(_manifest(folder), **changes))
    if changes == {"img_resolution": 4096}:  # 4096 px: 2 * 12 noise maps of up to 4096**2 alone
        with pytest.raises(ValueError, match="the config does not describe the graphs"):
            read_exported(folder)
        _refused(folder, r"needs graphs of at least \d+ bytes of weights, but mapping.onnx \+ synthesis.onnx hold")
        return
    read_exported(folder)
    message = _refused(folder, "the config contradicts the graph|do not match model.json's config")
    assert ".onnx" in message


@pytest.mark.parametrize(("field", "value", "match"), [
    ("num_ws", 9, "num_ws 9 contradicts its config"),
    ("num_ws", True, "num_ws True contradicts"),
    ("layers", [], "layers"),
    ("noise.resolutions", [4, 8, 8, 16, 16, 32, 64], "noise.resolutions"),
    ("noise.inputs", ["noise_0"], "noise.inputs"),
    ("graphs.synthesis.inputs.ws", ["batch", 9, 64], r"synthesis input 'ws' has shape \['batch', 9, 64\]"),
    ("graphs.synthesis.inputs.ws", [2, 8, 64], r"synthesis input 'ws' has shape \[2, 8, 64\]"),
    ("graphs.mapping.outputs.w", ["batch", 2 ** 30], r"mapping output 'w' has shape"),
    ("graphs.synthesis.outputs.img", ["batch", 3, 2 ** 30, 2 ** 30], r"synthesis output 'img' has shape"),
    ("graphs.mapping.inputs.c", ["batch", 4], r"missing \[\], unexpected \['c'\]"),
])
def test_recorded_sizes_must_match_the_config(folder: Path, field: str, value: object, match: str) -> None:
    manifest = _manifest(folder)
    *parents, last = field.split(".")
    entry = manifest
    for key in parents:
        entry = entry[key]
    entry[last] = value
    _save(folder, manifest)
    _refused(folder, match)


@pytest.mark.parametrize(("changes", "consistent", "match"), [
    ({"img_resolution": 2 ** 30}, True, r"config\.img_resolution = 1073741824 exceeds the limit"),
    ({"img_resolution": 2 ** 30}, False, r"config\.img_resolution = 1073741824 exceeds the limit"),
    ({"w_dim": 2 ** 20}, False, r"config\.w_dim = 1048576 exceeds the limit"),
    ({"c_dim": 2 ** 40}, False, r"config\.c_dim = 1099511627776 exceeds the limit"),
    ({"z_dim": True}, False, r"config\.z_dim must be an int"),
    ({"img_resolution": 48}, False, r"config\.img_resolution: must be a power of two"),
    ({"resample_filter": 7}, False, r"model\.json: config"),
])
def test_sizes_beyond_the_limits_are_refused_before_anything_is_built(folder: Path, changes: dict, consistent: bool,
                                                                      match: str) -> None:
    """Checked first: nothing (w_avg, noise tables, layer tables) is built from sizes beyond the limits."""
    manifest = _manifest(folder)
    if consistent:  # every record in model.json agrees: only the limit stops it
        manifest = _consistent(manifest, **changes)
    else:
        manifest["config"].update(changes)
    _save(folder, manifest)
    _refused(folder, match)


@pytest.mark.parametrize("w_avg", [[0.0] * 63, [0.0] * 65, None, [float("nan")] + [0.0] * 63, ["0"] * 64,
                                   [10 ** 400] + [0] * 63, [1e39] + [0] * 63])
def test_w_avg_must_be_w_dim_finite_numbers(folder: Path, w_avg: object) -> None:
    manifest = _manifest(folder)
    assert manifest["config"]["w_dim"] == 64
    manifest["w_avg"] = w_avg
    _save(folder, manifest)
    _refused(folder, "w_avg must be 64 finite numbers")


def test_huge_or_deep_model_json_is_refused(folder: Path) -> None:
    (folder / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    _refused(folder, "unreadable model.json")
    with open(folder / "model.json", "wb") as f:
        f.truncate(17 << 20)
    _refused(folder, "larger than")
