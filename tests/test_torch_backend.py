"""Torch backend options: torch.compile, float16 and CUDA (the CUDA tests run where a GPU is present)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import nvlabs_checkpoint, nvlabs_fixture

import stylegan_sdk as sg
from stylegan_sdk.backends.torch_backend import TorchBackend

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")


def test_compiled_synthesis_matches_eager():
    ckpt = nvlabs_checkpoint("sg2_orig_16_gray_cut")
    eager = TorchBackend(ckpt.config, ckpt.tensors)
    compiled = TorchBackend(ckpt.config, ckpt.tensors, compile=True)
    ws = np.random.RandomState(0).randn(2, ckpt.config.num_ws, ckpt.config.w_dim).astype(np.float32)
    for mode in ("const", "none"):
        err = float(np.abs(compiled.synthesize(ws, mode, None) - eager.synthesize(ws, mode, None)).max())
        assert err <= 1e-4, (mode, err)


def test_fp16_and_cuda_need_a_gpu(skip32_path):
    if HAS_CUDA:
        pytest.skip("this machine has CUDA; the errors below are for CPU-only machines")
    with pytest.raises(ValueError, match="fp16"):
        sg.load(skip32_path, fp16=True)
    with pytest.raises(ValueError, match="device"):
        sg.load(skip32_path, device="cuda")
    assert sg.load(skip32_path, device="auto").info.device == "cpu"


@needs_cuda
@pytest.mark.parametrize("name", ["sg2_skip_32", "sg2_resnet_16_cond"])
def test_cuda_fp32_reproduces_fixtures(name):
    config, _, ref = nvlabs_fixture(name)
    ckpt = nvlabs_checkpoint(name)
    G = sg.Generator(TorchBackend(ckpt.config, ckpt.tensors, device="cuda"))
    ws = G.map(ref["z"], c=ref.get("c"), psi=0.7, cutoff=config["truncation_cutoff"])
    assert float(np.abs(ws - ref["ws_psi070"]).max()) <= 1e-4
    # cuDNN may pick TF32 kernels; allow for it.
    assert float(np.abs(G.synthesize(ref["ws_psi070"]) - ref["img_psi070_const"]).max()) <= 5e-3


@needs_cuda
def test_cuda_fp16_close_to_fp32():
    ckpt = nvlabs_checkpoint("sg2_resnet_16_cond")
    fp32 = TorchBackend(ckpt.config, ckpt.tensors, device="cuda")
    fp16 = TorchBackend(ckpt.config, ckpt.tensors, device="cuda", precision="fp16", compile=True)
    ws = np.random.RandomState(0).randn(4, ckpt.config.num_ws, ckpt.config.w_dim).astype(np.float32)
    a, b = fp32.synthesize(ws, "const", None), fp16.synthesize(ws, "const", None)
    assert b.dtype == np.float32
    assert float(np.abs(a - b).max()) <= 5e-2
