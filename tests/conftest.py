"""Shared test helpers: the reference fixtures (copied from the official and community generators)."""

from __future__ import annotations

import json
import subprocess
import sys
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
def sg3_dirs(tmp_path_factory) -> dict[str, Path]:
    """Both StyleGAN3 fixture networks exported once (each export is verified against torch before it appears)."""
    from stylegan_sdk.export.onnx import export_onnx

    out = {}
    for name in ("sg3t_32", "sg3r_32_cond"):
        folder = tmp_path_factory.getbasetemp() / f"{name}-onnx"
        export_onnx(FIXTURES / "nvlabs-stylegan3" / name / "network-snapshot.pkl", folder)
        out[name] = folder
    return out


@pytest.fixture(scope="session")
def skip32_dir(tmp_path_factory) -> Path:
    """sg2_skip_32 exported to ONNX once per session (client, serving and demo tests share it)."""
    from stylegan_sdk.export.onnx import export_onnx

    folder = tmp_path_factory.getbasetemp() / "skip32-onnx"
    export_onnx(nvlabs_checkpoint("sg2_skip_32"), folder, verify=False)
    return folder


@pytest.fixture(scope="session")
def G_ort(skip32_dir):
    """The exported sg2_skip_32 on ONNX Runtime, in process."""
    import stylegan_sdk as sg

    return sg.load(skip32_dir)
