"""The public Generator API: shapes, output types, single vs batch, errors naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_without_torch
from PIL import Image

import stylegan_sdk as sg
from stylegan_sdk.version import install_hint


def test_info_and_layer_table(skip32_generator):
    info = skip32_generator.info
    assert (info.arch, info.z_dim, info.w_dim, info.c_dim, info.num_ws, info.img_resolution, info.img_channels) == (
        "stylegan2", 64, 64, 0, 8, 32, 3)
    assert [row["resolution"] for row in info.layers] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert info.layers_in_group("coarse") == [0, 1, 2, 3]
    assert info.layers_in_group("middle") == [4, 5, 6, 7]
    assert info.layers_in_group("fine") == []
    assert info.backend == "torch" and info.device == "cpu"


def test_output_types(skip32_generator):
    G = skip32_generator
    f = G.generate([0, 1], output="float")
    u = G.generate([0, 1], output="uint8")
    p = G.generate([0, 1], output="pil")
    assert f.shape == (2, 3, 32, 32) and f.dtype == np.float32
    assert u.shape == (2, 32, 32, 3) and u.dtype == np.uint8
    expected = np.clip(f * 127.5 + 128, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(u, expected)
    assert isinstance(p, list) and len(p) == 2 and isinstance(p[0], Image.Image) and p[0].size == (32, 32)
    np.testing.assert_array_equal(np.asarray(p[1]), u[1])


def test_single_seed_and_single_latent_give_single_images(skip32_generator):
    G = skip32_generator
    one = G.generate(3, output="float")
    assert one.shape == (3, 32, 32)
    np.testing.assert_array_equal(one, G.generate([3], output="float")[0])
    assert isinstance(G.generate(3), Image.Image)
    ws = G.map(sg.seed_to_z(3, 64)[0])
    assert ws.shape == (8, 64)
    assert G.synthesize(ws, output="uint8").shape == (32, 32, 3)
    assert G.mix(ws, ws, [0], output="float").shape == (3, 32, 32)


def test_batches_are_split_without_changing_results(skip32_generator):
    G = skip32_generator
    small = sg.Generator(G.backend, batch_size=2)
    np.testing.assert_allclose(small.generate("0-4", psi=0.6, output="float"),
                               G.generate("0-4", psi=0.6, output="float"), atol=1e-5)
    a = small.synthesize(G.map(sg.seed_to_z("0-4", 64)), noise_mode="random", noise_seed=9)
    b = G.synthesize(G.map(sg.seed_to_z("0-4", 64)), noise_mode="random", noise_seed=9)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_mix_equals_synthesize_of_mixed_ws(skip32_generator):
    G = skip32_generator
    ws = G.map(sg.seed_to_z([1, 2], 64))
    np.testing.assert_array_equal(G.mix(ws[0], ws[1], "4-7", output="float"),
                                  G.synthesize(sg.mix_ws(ws[0], ws[1], [4, 5, 6, 7]), output="float"))


def test_conditional_generate(cond16_generator):
    G = cond16_generator
    a = G.generate([0, 0], c=[0, 3], output="float")
    assert not np.allclose(a[0], a[1])  # the class changes the image
    np.testing.assert_allclose(G.generate(0, c=3, output="float"), a[1], atol=1e-5)
    onehot = np.eye(4, dtype=np.float32)[[3]]
    np.testing.assert_allclose(G.generate(0, c=onehot, output="float"), a[1], atol=1e-5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda G: G.map(np.zeros((2, 63))), "z"),
        (lambda G: G.map(np.full((1, 64), np.nan)), "z"),
        (lambda G: G.map(np.zeros((1, 64)), psi=float("nan")), "psi"),
        (lambda G: G.map(np.zeros((1, 64)), cutoff=9), "cutoff"),
        (lambda G: G.map(np.zeros((1, 64)), c=np.ones((1, 4))), "c"),
        (lambda G: G.generate(0, c=1), "c"),
        (lambda G: G.synthesize(np.zeros((1, 7, 64))), "ws"),
        (lambda G: G.synthesize(np.zeros((8, 64)), noise_mode="loud"), "noise_mode"),
        (lambda G: G.synthesize(np.zeros((8, 64)), output="jpeg"), "output"),
        (lambda G: G.synthesize(np.zeros((8, 64)), noise_mode="random", noise_seed=-3), "noise_seed"),
        (lambda G: G.mix(np.zeros((8, 64)), np.zeros((8, 64)), [8]), "layers"),
        (lambda G: G.mix(np.zeros((8, 64)), np.zeros((7, 64)), [0]), "w_b"),
        (lambda G: G.generate("x"), "seeds"),
        (lambda G: G.generate([]), "seeds"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(skip32_generator, call, match):
    with pytest.raises(ValueError, match=match):
        call(skip32_generator)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        sg.load(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="folder"):
        sg.load(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a model file this SDK reads"):
        sg.load(tmp_path / "notes.txt")


def test_load_bad_backend_and_device(skip32_path):
    with pytest.raises(ValueError, match="backend"):
        sg.load(skip32_path, backend="tpu")
    with pytest.raises(ValueError, match="device"):
        sg.load(skip32_path, device="warp-drive")


def test_core_package_imports_without_torch():
    """Latent math, images and checkpoint headers work where torch is not installed."""
    code = (
        "import stylegan_sdk as sg\n"
        "z = sg.seed_to_z('0-3', 8)\n"
        "print(z.shape, sg.mix_ws(z[:1].repeat(2, 0), z[1:2].repeat(2, 0), [1]).shape)\n"
        "from stylegan_sdk import images, latents, config\n"
        "try:\n"
        "    sg.backends.backend_class('torch')\n"
        "except ImportError as e:\n"
        "    print('hint:', e)\n"
        "assert 'torch' not in sys.modules\n"
    )
    out = run_without_torch(code)
    assert out.returncode == 0, out.stderr
    assert "(4, 8) (2, 8)" in out.stdout
    assert install_hint("torch") in out.stdout


def test_loading_a_torch_format_without_torch_says_what_to_install():
    """An NVlabs pickle or a rosinality checkpoint where torch is not installed: an ImportError naming the
    pip command, not a bare "No module named 'torch'"."""
    code = (
        "import stylegan_sdk as sg\n"
        "for path in ('tests/fixtures/nvlabs-stylegan2/sg2_skip_32/network-snapshot.pkl',\n"
        "             'tests/fixtures/rosinality-stylegan2/sg2_32/checkpoint.pt'):\n"
        "    try:\n"
        "        sg.load(path)\n"
        "    except ImportError as e:\n"
        "        print(type(e).__name__, e)\n"
    )
    out = run_without_torch(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    for line in lines:
        assert line.startswith("ImportError path: ") and line.endswith(install_hint("torch")), line
