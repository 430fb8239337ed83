"""TensorRT engines: argument and install errors (always), the build flow against a stand-in `tensorrt`
module (always), and real engines with ONNX Runtime parity (only with tensorrt and a CUDA GPU)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import stylegan_sdk as sg
from stylegan_sdk.backends import tensorrt_runtime
from stylegan_sdk.backends.tensorrt_backend import TensorRTBackend
from stylegan_sdk.export import tensorrt as trt_export
from stylegan_sdk.export.tensorrt import TENSORRT_MISSING, build_engines
from stylegan_sdk.formats.exported import read_exported, write_manifest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "export" / "to_trt.py"
_real_require_gpu = trt_export.require_gpu


def _tensorrt_and_gpu() -> bool:
    try:
        import tensorrt  # noqa: F401
        import torch
    except (ImportError, OSError):
        return False
    return torch.cuda.is_available() and tensorrt_runtime.cuda_device_count() > 0


needs_gpu = pytest.mark.skipif(
    not _tensorrt_and_gpu(),
    reason="TensorRT and a CUDA GPU are needed: pip install tensorrt and a CUDA build of torch, "
           "on a machine with an NVIDIA GPU and driver")


@pytest.fixture(scope="module")
def onnx32(skip32_dir) -> Path:
    """sg2_skip_32 exported as ONNX (no engines): the session's export, read only."""
    return skip32_dir


def _cli():
    spec = importlib.util.spec_from_file_location("to_trt", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------
# Always: install and argument errors


def test_cli_without_tensorrt_exits_2_with_one_line(onnx32, tmp_path):
    out = tmp_path / "engines"
    code = ("import runpy, sys\n"
            "sys.modules['tensorrt'] = None  # import tensorrt -> ImportError, whatever is installed\n"
            f"sys.argv = ['to_trt.py', {str(onnx32)!r}, '--out', {str(out)!r}]\n"
            f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    line = _one_line(run.stderr)
    assert line.startswith("to_trt.py: error:") and "pip install tensorrt" in line
    assert not out.exists()


def test_build_engines_without_tensorrt(onnx32, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ImportError) as e:
        build_engines(onnx32, tmp_path / "engines")
    assert str(e.value) == TENSORRT_MISSING
    assert not (tmp_path / "engines").exists()


@pytest.mark.parametrize("kwargs, name", [
    ({"min_batch": 0}, "min_batch"),
    ({"min_batch": 1.5}, "min_batch"),
    ({"min_batch": 4, "opt_batch": 2}, "opt_batch"),
    ({"opt_batch": 8, "max_batch": 4}, "max_batch"),
    ({"max_batch": True}, "max_batch"),
    ({"workspace_gb": 0}, "workspace_gb"),
    ({"workspace_gb": -1.0}, "workspace_gb"),
])
def test_build_argument_errors(onnx32, tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        build_engines(onnx32, tmp_path / "engines", **kwargs)
    assert not (tmp_path / "engines").exists()


def test_build_folder_errors(onnx32, tmp_path):
    with pytest.raises(FileNotFoundError, match="model.json"):
        build_engines(tmp_path, tmp_path / "engines")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_engines(onnx32, tmp_path / "no" / "such" / "dir")
    with pytest.raises(FileNotFoundError, match="timing_cache"):
        build_engines(onnx32, tmp_path / "engines", timing_cache=tmp_path / "no" / "cache")


@pytest.mark.parametrize("argv, needle", [
    (["--min-batch", "0"], "--min-batch"),
    (["--opt-batch", "64"], "--max-batch"),
    (["--workspace-gb", "0"], "--workspace-gb"),
])
def test_cli_argument_errors(onnx32, tmp_path, capsys, argv, needle):
    code = _cli()([str(onnx32), "--out", str(tmp_path / "engines"), *argv])
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("to_trt.py: error:") and needle in line


def test_backend_needs_engines(onnx32):
    for source in (onnx32, read_exported(onnx32)):
        with pytest.raises(ValueError, match=r"no TensorRT engines.*stylegan export tensorrt"):
            TensorRTBackend(source, device="cuda")


def test_load_routes_exported_folders_to_tensorrt(onnx32):
    """sg.load(..., backend='tensorrt') reaches the backend (registered in stylegan_sdk.backends.base)."""
    with pytest.raises(ValueError, match="no TensorRT engines"):
        sg.load(onnx32, backend="tensorrt", device="cuda")


def _with_fake_plans(onnx32: Path, folder: Path) -> Path:
    """A copy of the folder whose model.json lists (unloadable) engines, with their sha256."""
    shutil.copytree(onnx32, folder)
    for name in ("mapping.plan", "synthesis.plan"):
        (folder / name).write_bytes(b"not an engine")
    manifest = json.loads((folder / "model.json").read_text())
    manifest["files"].update({"mapping.plan": {}, "synthesis.plan": {}})
    manifest["engines"] = {"plans": {"mapping": "mapping.plan", "synthesis": "synthesis.plan"}}
    write_manifest(str(folder), manifest)
    return folder


def test_backend_device_and_install_errors(onnx32, tmp_path, monkeypatch):
    folder = _with_fake_plans(onnx32, tmp_path / "fake")
    with pytest.raises(ValueError, match="device: TensorRT runs on CUDA GPUs only"):
        TensorRTBackend(folder, device="cpu")
    with pytest.raises(ValueError, match="device"):
        TensorRTBackend(folder, device="gpu0")
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ImportError, match="pip install tensorrt"):
        TensorRTBackend(folder, device="cuda")
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch"):
        TensorRTBackend(folder, device="cuda")
    # A modified engine is refused by its sha256 before anything runs.
    (folder / "synthesis.plan").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        TensorRTBackend(folder, device="cuda")


def test_backend_refuses_plans_outside_the_folder(onnx32, tmp_path):
    """Plan names go through the same containment check as the graphs, before tensorrt is imported."""
    folder = _with_fake_plans(onnx32, tmp_path / "fake")
    (tmp_path / "x.plan").write_bytes(b"not an engine")
    manifest = json.loads((folder / "model.json").read_text())
    manifest["engines"]["plans"]["synthesis"] = "../x.plan"
    manifest["files"]["../x.plan"] = {"sha256": manifest["files"].pop("synthesis.plan")["sha256"]}
    (folder / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"'\.\./x\.plan' is not a plain file name inside the folder"):
        TensorRTBackend(folder, device="cuda")


def _stand_in_engines(onnx32: Path, drop: tuple[str, ...] = ()) -> tuple:
    """Objects shaped like the backend's _Engine, with the tensors TensorRT would report for the ONNX graphs."""
    import onnx

    engines = []
    for graph in ("mapping", "synthesis"):
        model = onnx.load(onnx32 / f"{graph}.onnx", load_external_data=False).graph
        shapes = {v.name: tuple(-1 if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim)
                  for v in (*model.input, *model.output)}
        engines.append(types.SimpleNamespace(path=str(onnx32 / f"{graph}.plan"), shapes=shapes,
                                             inputs=[v.name for v in model.input if v.name not in drop],
                                             outputs=[v.name for v in model.output]))
    return tuple(engines)


def test_engine_io_is_checked_against_the_config(onnx32):
    from stylegan_sdk.backends.tensorrt_backend import _check_io

    cfg = read_exported(onnx32).config
    _check_io(cfg, *_stand_in_engines(onnx32))
    _check_io(cfg, *_stand_in_engines(onnx32, drop=("noise_const_gain", "noise_3")))  # unused inputs may be pruned
    with pytest.raises(ValueError, match=r"missing \['ws'\].*rebuild with stylegan export tensorrt"):
        _check_io(cfg, *_stand_in_engines(onnx32, drop=("ws",)))
    for changes in ({"img_resolution": 64}, {"w_dim": 2 * cfg.w_dim}, {"img_channels": 1}, {"c_dim": 2}):
        other = dataclasses.replace(cfg, **changes)
        with pytest.raises(ValueError, match=r"\.plan: .*(contradicts the graph|do not match).*rebuild with"):
            _check_io(other, *_stand_in_engines(onnx32))


# ----------------------------------------------------------------------------
# Always: the build flow against a stand-in for the tensorrt module
# (same names as TensorRT 10's Python API; it records what the build asked for)


def _fake_tensorrt(parse_errors: list[str] | None = None) -> types.ModuleType:
    import onnx

    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99.fake"
    trt.float32, trt.float16 = "float32", "float16"

    class Logger:
        WARNING = "WARNING"

        def __init__(self, severity):
            self.severity = severity

    class BuilderFlag:
        FP16 = "FP16"

    class MemoryPoolType:
        WORKSPACE = "WORKSPACE"

    class Tensor:
        def __init__(self, name, shape, dtype="float32"):
            self.name, self.shape, self.dtype = name, shape, dtype

    class Network:
        def __init__(self):
            self.inputs, self.outputs = [], []

        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))

        def get_input(self, i):
            return self.inputs[i]

        def get_output(self, i):
            return self.outputs[i]

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        def parse_from_file(self, path):
            if parse_errors:
                self.errors = list(parse_errors)
                return False
            graph = onnx.load(path, load_external_data=False).graph
            for value, into in [(v, self.network.inputs) for v in graph.input] + \
                               [(v, self.network.outputs) for v in graph.output]:
                dims = tuple(-1 if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim)
                into.append(Tensor(value.name, dims))
            return True

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, i):
            return self.errors[i]

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return self.data

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, min, opt, max):  # TensorRT's keyword names
            self.shapes[name] = [list(min), list(opt), list(max)]

    class Config:
        def __init__(self):
            self.flags, self.pools, self.profiles, self.cache = [], {}, [], None

        def set_memory_pool_limit(self, pool, size):
            self.pools[pool] = size

        def set_flag(self, flag):
            self.flags.append(flag)

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            return True

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            assert flags == 0
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            record = {"flags": config.flags, "workspace": config.pools, "cache_seen": config.cache.data.decode(),
                      "profiles": [p.shapes for p in config.profiles],
                      "outputs": [[t.name, t.dtype] for t in network.outputs]}
            config.cache.data += f"[{network.outputs[0].name}]".encode()  # the builder adds its timings
            return json.dumps(record).encode()

    for cls in (Logger, BuilderFlag, MemoryPoolType, OnnxParser, Builder):
        setattr(trt, cls.__name__, cls)
    return trt


@pytest.fixture
def fake_trt(monkeypatch):
    def install(**kwargs):
        monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(**kwargs))
        monkeypatch.setattr(trt_export, "require_gpu", lambda: None)
        monkeypatch.setattr(trt_export, "gpu_name", lambda: "Fake GPU")
        monkeypatch.setattr(tensorrt_runtime, "_LOGGER", None)
    return install


def test_build_flow_with_stand_in_tensorrt(onnx32, tmp_path, fake_trt):
    fake_trt()
    before = sorted(os.listdir(onnx32))
    out = tmp_path / "engines"
    engines = build_engines(onnx32, out, fp16=True, min_batch=2, opt_batch=4, max_batch=16, workspace_gb=0.5)
    assert sorted(os.listdir(onnx32)) == before, "the source folder is left alone"
    assert sorted(os.listdir(out)) == ["mapping.onnx", "mapping.plan", "model.json", "style_affines.safetensors",
                                       "synthesis.onnx", "synthesis.plan", "timing.cache"]
    assert engines == {"plans": {"mapping": "mapping.plan", "synthesis": "synthesis.plan"}, "fp16": True,
                       "min_batch": 2, "opt_batch": 4, "max_batch": 16, "workspace_bytes": 1 << 29,
                       "tensorrt": "10.99.fake", "gpu": "Fake GPU", "timing_cache": "timing.cache"}
    exported = read_exported(out)  # every listed file matches its sha256
    assert exported.engines == engines
    assert set(exported.manifest["files"]) == {"mapping.onnx", "synthesis.onnx", "style_affines.safetensors",
                                               "mapping.plan", "synthesis.plan"}

    cfg = exported.config
    mapping = json.loads((out / "mapping.plan").read_bytes())
    synthesis = json.loads((out / "synthesis.plan").read_bytes())
    assert mapping["profiles"] == [{"z": [[2, cfg.z_dim], [4, cfg.z_dim], [16, cfg.z_dim]]}]
    profile = synthesis["profiles"][0]
    assert profile["noise_const_gain"] == [[2, 1], [4, 1], [16, 1]], "per-row gain: batched like the rest"
    assert profile["ws"] == [[2, cfg.num_ws, cfg.w_dim], [4, cfg.num_ws, cfg.w_dim], [16, cfg.num_ws, cfg.w_dim]]
    for k, r in enumerate(cfg.noise_resolutions):
        assert profile[f"noise_{k}"] == [[2, 1, r, r], [4, 1, r, r], [16, 1, r, r]]
    for record in (mapping, synthesis):
        assert record["flags"] == ["FP16"] and record["workspace"] == {"WORKSPACE": 1 << 29}
        assert all(dtype == "float32" for _, dtype in record["outputs"])
    # One timing cache for both graphs, saved in the output folder ...
    assert mapping["cache_seen"] == "" and synthesis["cache_seen"] == "[w]"
    assert (out / "timing.cache").read_bytes() == b"[w][img]"

    # ... and reused by the next build, in place this time (fp32: no FP16 flag).
    engines = build_engines(out, fp16=False)
    assert engines["fp16"] is False and engines["min_batch"] == 1 and engines["max_batch"] == 32
    assert json.loads((out / "mapping.plan").read_bytes())["cache_seen"] == "[w][img]"
    assert json.loads((out / "mapping.plan").read_bytes())["flags"] == []
    assert read_exported(out).engines == engines


def test_engines_folder_keeps_the_direction_sets_and_style_affines(onnx32, tmp_path, fake_trt):
    """Every file the source lists is copied and listed again: a folder with direction sets builds into one
    whose sets and style affines read back the same (sg.sefa, G.directions)."""
    from stylegan_sdk.loading import exported_directions

    fake_trt()
    src = tmp_path / "src"
    shutil.copytree(onnx32, src)
    sg.sefa(src, k=3).save(src / "directions_sefa.safetensors")
    manifest = json.loads((src / "model.json").read_text())
    manifest["directions"] = {"sefa": "directions_sefa.safetensors"}
    manifest["files"]["directions_sefa.safetensors"] = {}
    write_manifest(str(src), manifest)
    build_engines(src, tmp_path / "engines", max_batch=8)
    built = read_exported(tmp_path / "engines")   # sha256 of every file, the copies included
    assert {"directions_sefa.safetensors", "style_affines.safetensors"} <= set(built.manifest["files"])
    [(name, d)] = exported_directions(built).items()
    assert name == "sefa"
    np.testing.assert_array_equal(d.vectors, sg.sefa(src, k=3).vectors)
    np.testing.assert_array_equal(sg.sefa(tmp_path / "engines", k=3).vectors, d.vectors)


def test_build_flow_for_a_stylegan3_folder(sg3_dirs, tmp_path, fake_trt, capsys):
    """StyleGAN3: the input transform gets a batch profile like ws, there is no noise, and to_trt.py takes
    the folder (the build itself needs TensorRT and a GPU: not run here)."""
    src = sg3_dirs["sg3t_32"]  # exported before fake_trt(): torch.export inspects the modules loaded
    fake_trt()
    assert _cli()([str(src), "--out", str(tmp_path / "engines"), "--min-batch", "1", "--opt-batch", "4",
                   "--max-batch", "8"]) == 0, capsys.readouterr().err
    synthesis = json.loads((tmp_path / "engines" / "synthesis.plan").read_bytes())
    assert synthesis["profiles"] == [{"ws": [[1, 16, 64], [4, 16, 64], [8, 16, 64]],
                                      "transform": [[1, 3, 3], [4, 3, 3], [8, 3, 3]]}]
    assert read_exported(tmp_path / "engines").engines["max_batch"] == 8


def test_build_without_gpu(onnx32, tmp_path, fake_trt, monkeypatch, capsys):
    fake_trt()
    monkeypatch.setattr(trt_export, "require_gpu", _real_require_gpu)  # the real check, with no device
    monkeypatch.setattr(tensorrt_runtime, "cuda_device_count", lambda: 0)
    with pytest.raises(tensorrt_runtime.NoGPUError, match="no CUDA GPU is visible"):
        build_engines(onnx32, tmp_path / "engines")
    assert _cli()([str(onnx32), "--out", str(tmp_path / "engines")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no CUDA GPU is visible" in line and "driver" in line
    assert not (tmp_path / "engines").exists()


def test_build_collects_parser_errors(onnx32, tmp_path, fake_trt):
    fake_trt(parse_errors=["In node 3 (Foo): UNSUPPORTED_NODE", "In node 9 (Bar): INVALID_NODE"])
    with pytest.raises(ValueError, match=r"mapping\.onnx: TensorRT cannot parse.*node 3.*\|.*node 9"):
        build_engines(onnx32, tmp_path / "engines")
    assert not (tmp_path / "engines" / "model.json").exists()


def test_cli_with_stand_in_tensorrt(onnx32, tmp_path, capsys, fake_trt):
    fake_trt()
    code = _cli()([str(onnx32), "--out", str(tmp_path / "engines"), "--max-batch", "12"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "mapping.plan, synthesis.plan" in out and "batch 1-12" in out and "Fake GPU" in out


# ----------------------------------------------------------------------------
# With TensorRT and a GPU: real engines


@pytest.fixture(scope="module")
def engines32(onnx32, tmp_path_factory) -> dict[str, Path]:
    """fp32 and fp16 engines for sg2_skip_32 (batch 1..8); the fp16 build reuses the fp32 timing cache."""
    root = tmp_path_factory.mktemp("trt")
    fp32, fp16 = root / "fp32", root / "fp16"
    build_engines(onnx32, fp32, min_batch=1, opt_batch=4, max_batch=8, workspace_gb=1.0)
    build_engines(onnx32, fp16, fp16=True, min_batch=1, opt_batch=4, max_batch=8, workspace_gb=1.0,
                  timing_cache=fp32 / "timing.cache")
    return {"fp32": fp32, "fp16": fp16}


@needs_gpu
def test_engines_recorded_in_model_json(engines32):
    import tensorrt

    for precision, folder in engines32.items():
        exported = read_exported(folder)  # sha256 of graphs and plans
        engines = exported.engines
        assert engines["plans"] == {"mapping": "mapping.plan", "synthesis": "synthesis.plan"}
        assert engines["fp16"] is (precision == "fp16")
        assert (engines["min_batch"], engines["opt_batch"], engines["max_batch"]) == (1, 4, 8)
        assert engines["tensorrt"] == tensorrt.__version__ and engines["gpu"]
        for file in ("mapping.onnx", "synthesis.onnx", "mapping.plan", "synthesis.plan"):
            assert len(exported.manifest["files"][file]["sha256"]) == 64
    assert (engines32["fp32"] / "timing.cache").stat().st_size > 0


@needs_gpu
@pytest.mark.parametrize("precision, tol", [("fp32", 1e-3), ("fp16", 5e-2)])
@pytest.mark.parametrize("batch", [1, 7])
def test_parity_with_onnxruntime(engines32, onnx32, precision, tol, batch):
    G_trt = sg.load(engines32[precision], backend="tensorrt", device="cuda")
    G_ort = sg.load(onnx32, backend="onnxruntime", device="cpu")
    assert G_trt.info.backend == "tensorrt" and G_trt.info.device.startswith("cuda")
    seeds = list(range(batch))
    z = sg.seed_to_z(seeds, G_trt.config.z_dim)
    assert float(np.abs(G_trt.map(z) - G_ort.map(z)).max()) <= 2 * tol  # w is O(1), images in [-1, 1]
    for mode in ("const", "none", "random"):
        a = G_trt.generate(seeds, psi=0.8, noise_mode=mode, noise_seed=11, output="float")
        b = G_ort.generate(seeds, psi=0.8, noise_mode=mode, noise_seed=11, output="float")
        assert a.shape == b.shape and a.shape[0] == batch and a.dtype == np.float32
        err = float(np.abs(a - b).max())
        print(f"TensorRT {precision} batch {batch} {mode:6s} max_abs_err={err:.3e}")
        assert err <= tol, (precision, batch, mode, err)
    G_trt.backend.close()


@needs_gpu
def test_batch_range_and_resident_zero_noise(engines32):
    backend = TensorRTBackend(engines32["fp32"], device="cuda")
    cfg = backend.config
    assert backend.batch_range == (1, 8)
    ws = np.zeros([9, cfg.num_ws, cfg.w_dim], np.float32)
    with pytest.raises(ValueError, match=r"batch: 9 is outside the batch range \[1, 8\]"):
        backend.synthesize(ws, "const", None)
    with pytest.raises(ValueError, match="batch: 9"):
        backend.map(np.zeros([9, cfg.z_dim], np.float32), None)
    backend.synthesize(ws[:6], "const", None)
    pointers = {r: t.data_ptr() for r, t in backend._zeros.items()}
    backend.synthesize(ws[:3], "none", None)  # smaller batch: same device buffers, nothing re-uploaded
    assert {r: t.data_ptr() for r, t in backend._zeros.items()} == pointers
    backend.close()
    backend.close()  # idempotent


@needs_gpu
def test_rebuild_in_place_reuses_the_timing_cache(engines32, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(engines32["fp32"], folder)
    cache = (folder / "timing.cache").read_bytes()
    engines = build_engines(folder, min_batch=2, opt_batch=2, max_batch=4, workspace_gb=1.0)
    assert engines["timing_cache"] == "timing.cache" and engines["max_batch"] == 4
    assert len((folder / "timing.cache").read_bytes()) >= len(cache)
    backend = TensorRTBackend(folder)
    assert backend.batch_range == (2, 4)
    backend.close()
