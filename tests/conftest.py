"""Shared test helpers: the reference fixtures (copied from the official and community generators), and what a
test session builds once: exported folders (`exported_model`), networks on torch, one real `export/to_onnx.py` run.

Under pytest-xdist (pyproject's addopts: `-n 2 --dist loadgroup`) each worker runs torch, and the subprocesses it
starts, on one intra-op thread, so that two workers share two cores without oversubscribing them; what the session
builds once is built once for all workers (in a folder beside the workers' own temporary folders, under a file
lock)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# The repo root, so tests import training/, serving/ and export/ as the package layout has them.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXTURES = Path(__file__).parent / "fixtures"
NVLABS = FIXTURES / "nvlabs-stylegan2"
NVLABS_CONFIGS = ["sg2_skip_32", "sg2_resnet_16_cond", "sg2_orig_16_gray_cut"]
LEGACY_EXPORT = FIXTURES / "exported-format-1" / "emoji_onnx"     # an exported folder of format_version "1"
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")               # "gw0", "gw1", ... under pytest-xdist


# Test files whose tests run on one xdist worker, in file order, and why. xdist's own `--dist loadgroup` marks
# (xdist_group) do not group under pytest 9 (xdist 3.8 renames items through an attribute pytest 9 no longer
# reads), so the scheduler below groups by file. The largest units go first: these two start the session on the
# two workers, each building the exports the other does not wait for.
ONE_WORKER_FILES = {
    "tests/test_triton_server.py": "the real tritonserver starts once for them all, and one test stops it",
    "tests/test_export_onnx.py": "five of the session's exports; one worker builds them while the other builds "
                                 "the StyleGAN3 ones for test_triton_server, instead of both waiting for the same",
    "tests/test_ui.py": "four processes (two pages, a server, a torch page) and Chromium start once for the file",
}


# The test files that take longest after those, roughly longest first (seconds on one of two workers): the workers
# are handed tests in collection order, so these go first and the session ends on short tests, both workers
# finishing together instead of one waiting for the other's last long test. The other files keep their order.
LONG_FILES = (
    "tests/test_training_run.py",        # ~55: trainings, a real process killed, two processes on gloo
    "tests/test_ui.py",                  # ~60: four pages and a server in processes, a real browser
    "tests/test_openvino_backend.py",    # ~30: bf16 on a config-f-like 64 px network (one test, ~20)
    "tests/test_metrics.py",             # ~20: Frechet distances of 2048-d statistics
    "tests/test_nvidia_tf.py",           # ~18: two exports
    "tests/test_loader_costs.py",        # ~16: each case in a fresh, memory-limited interpreter
    "tests/test_serving_hardening.py",   # ~14: retries and deadlines that wait
    "tests/test_filtered_lrelu.py",      # ~13
    "tests/test_gpu_check.py",           # ~13: the parity script in a real process
    "tests/test_rosinality_stylegan2.py",
    "tests/test_triton_repo.py",
    "tests/test_training_stop.py",
    "tests/test_checkpoint.py",
    "tests/test_export_cli.py",
    "tests/test_stylegan3_export.py",
    "tests/test_stylegan3.py",
    "tests/test_gpu_emoji64_script.py",
    "tests/test_cli.py",
    "tests/test_torch_backend.py",       # one test of ~5 (torch.compile)
    "tests/test_nvlabs_pkl.py",
    "tests/test_layering.py",
    "tests/test_tf_pkl.py",
    "tests/test_client.py",
    "tests/test_serving.py",
    "tests/test_demo.py",
)


def pytest_collection_modifyitems(items) -> None:
    """LONG_FILES first, in that order (a stable sort: each file's tests keep theirs)."""
    rank = {file: i for i, file in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup: each test is its own unit of work (as --dist load), but a file in ONE_WORKER_FILES (or an
    xdist_group where xdist can still name it) is one unit, run on one worker."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FileGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return file if file in ONE_WORKER_FILES else super()._split_scope(nodeid)

    return FileGroupScheduling(config, log)


def pytest_configure(config) -> None:
    if XDIST_WORKER:
        # One intra-op thread per worker: torch here, OpenMP / MKL / OpenBLAS in the subprocesses tests start.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        try:
            import torch
        except ImportError:
            return
        torch.set_num_threads(1)


BLOCK_TORCH = (
    "import sys\n"
    "class _BlockTorch:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ImportError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, _BlockTorch())\n"
)


def run_without_torch(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python code in a subprocess where `import torch` fails (a torch-free install)."""
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True,
                          timeout=timeout, cwd=str(ROOT))


def stylegan_cli(capsys, *argv) -> tuple[int, str, str]:
    """The `stylegan` command line in process: stylegan_sdk.cli.main(argv) -> (exit code, stdout, stderr), argparse's
    usage errors (SystemExit) included. The real process is tested apart (tests/test_cli.py: python -m stylegan_sdk,
    torch-free processes)."""
    from stylegan_sdk.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def nvlabs_fixture(name: str) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(config.json, official state dict, reference outputs) of one fixture configuration."""
    folder = NVLABS / name
    config = json.loads((folder / "config.json").read_text())
    state = dict(np.load(folder / "G_state_dict.npz"))
    ref = dict(np.load(folder / "reference.npz"))
    return config, state, ref


def nvlabs_checkpoint(name: str):
    """The fixture network imported into our format (a Checkpoint)."""
    from stylegan_sdk.importers.nvlabs.convert import import_state

    config, state, _ = nvlabs_fixture(name)
    return import_state(config["init_kwargs"], state, str(NVLABS / name / "G_state_dict.npz"))


# ----------------------------------------------------------------------------
# Built once per session, for every xdist worker


def shared_root(tmp_path_factory) -> Path:
    """The folder every xdist worker of this session sees (the workers' basetemps lie in it); without xdist,
    the session's basetemp."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if XDIST_WORKER else base


def build_once(tmp_path_factory, key: str, build: Callable[[Path], None]) -> Path:
    """SHARED/key, made by build(SHARED/key) by whichever worker asks first, the others waiting for it; a folder
    that exists is done (a build that raises leaves none)."""
    from filelock import FileLock

    root = shared_root(tmp_path_factory) / "built-once"
    root.mkdir(exist_ok=True)
    folder = root / key
    with FileLock(str(root / f".{key}.lock")):
        if not folder.exists():
            try:
                build(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)   # the next one to ask tries again
                raise
    assert folder.is_dir(), f"{key}: the build made no folder"
    return folder


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _export_source(name: str):
    """What `exported_model(name)` exports: a Checkpoint or a model file."""
    if name in NVLABS_CONFIGS:
        return nvlabs_checkpoint(name)
    return {"sg3t_32": FIXTURES / "nvlabs-stylegan3" / "sg3t_32" / "network-snapshot.pkl",
            "sg3r_32_cond": FIXTURES / "nvlabs-stylegan3" / "sg3r_32_cond" / "network-snapshot.pkl",
            "v1_32": FIXTURES / "rosinality-stylegan1" / "v1_32" / "checkpoint.model",
            # the checkpoint the format "1" folder was exported from (exported today: per-row noise gain)
            "emoji_format1_source": LEGACY_EXPORT.parent / "emoji.safetensors"}[name]


EXPORTABLE = (*NVLABS_CONFIGS, "sg3t_32", "sg3r_32_cond", "v1_32", "emoji_format1_source")


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory) -> Callable[[str], Path]:
    """exported_model(NAME) -> the folder `export_onnx` writes for that fixture network (NAME in EXPORTABLE), exported
    once per session and verified against torch on ONNX Runtime before it appears. The folder is shared: read it,
    and copy it first to change anything (the session's end checks that no file in it changed)."""
    from stylegan_sdk.export.onnx import export_onnx

    seen: dict[str, tuple[Path, dict[str, str]]] = {}

    def get(name: str) -> Path:
        if name not in EXPORTABLE:
            raise KeyError(f"exported_model: no fixture network {name!r} (one of {EXPORTABLE})")
        if name not in seen:
            folder = build_once(tmp_path_factory, f"onnx-{name}", lambda out: export_onnx(_export_source(name), out))
            seen[name] = (folder, _digest(folder))
        return seen[name][0]

    yield get
    changed = [str(folder) for folder, digest in seen.values() if _digest(folder) != digest]
    assert not changed, f"a test changed a shared exported folder (copy it first): {changed}"


@pytest.fixture(scope="session")
def to_onnx_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """`python export/to_onnx.py sg2_skip_32/network-snapshot.pkl --out NEW/a/new/dir` in a real process, once per
    session: (the finished process, the --out folder). Missing folders above --out are the script's to make."""
    def build(folder: Path) -> None:
        folder.mkdir()
        out = folder / "a" / "new" / "dir"
        run = subprocess.run([sys.executable, str(ROOT / "export" / "to_onnx.py"),
                              str(NVLABS / "sg2_skip_32" / "network-snapshot.pkl"), "--out", str(out)],
                             capture_output=True, text=True, timeout=600)
        (folder / "run.json").write_text(json.dumps({"args": run.args, "returncode": run.returncode,
                                                     "stdout": run.stdout, "stderr": run.stderr}))

    folder = build_once(tmp_path_factory, "to_onnx-sg2_skip_32", build)
    run = json.loads((folder / "run.json").read_text())
    return subprocess.CompletedProcess(**run), folder / "a" / "new" / "dir"


@pytest.fixture
def skip32_path(tmp_path: Path) -> Path:
    """sg2_skip_32 saved as our checkpoint file."""
    from stylegan_sdk import save_checkpoint

    ckpt = nvlabs_checkpoint("sg2_skip_32")
    path = tmp_path / "skip32.safetensors"
    save_checkpoint(path, ckpt.config, ckpt.tensors, ckpt.metadata)
    return path


@pytest.fixture(scope="session")
def cond16_generator():
    """sg2_resnet_16_cond (conditional, c_dim 4) as an in-process Generator on torch/CPU."""
    from stylegan_sdk.backends.torch_backend import TorchBackend
    from stylegan_sdk.generator import Generator

    ckpt = nvlabs_checkpoint("sg2_resnet_16_cond")
    return Generator(TorchBackend(ckpt.config, ckpt.tensors))


@pytest.fixture(scope="session")
def skip32_generator():
    from stylegan_sdk.backends.torch_backend import TorchBackend
    from stylegan_sdk.generator import Generator

    ckpt = nvlabs_checkpoint("sg2_skip_32")
    return Generator(TorchBackend(ckpt.config, ckpt.tensors))


@pytest.fixture(scope="session")
def sg3_dirs(exported_model) -> dict[str, Path]:
    """Both StyleGAN3 fixture networks exported (each export is verified against torch before it appears)."""
    return {name: exported_model(name) for name in ("sg3t_32", "sg3r_32_cond")}


@pytest.fixture(scope="session")
def skip32_dir(exported_model) -> Path:
    """sg2_skip_32 exported to ONNX once per session (client, serving, demo, export and backend tests share it)."""
    return exported_model("sg2_skip_32")


@pytest.fixture(scope="session")
def G_ort(skip32_dir):
    """The exported sg2_skip_32 on ONNX Runtime, in process."""
    import stylegan_sdk as sg

    return sg.load(skip32_dir)


def crafted_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with a few bytes of pixel data (a decompression bomb's
    header: decoding it would need width * height * 3 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def stub(server):
    """A raw gRPC stub on the module's `server` fixture (a serve_in_thread), for requests the Client would refuse."""
    import grpc

    from stylegan_sdk._proto import pb_grpc

    channel = grpc.insecure_channel(server.target)
    yield pb_grpc.StyleGANStub(channel)
    channel.close()
