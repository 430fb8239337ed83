"""Validates tests/tf_reference.py (the literal NVIDIA TF StyleGAN / StyleGAN2 reference) against the official
TensorFlow outputs in tests/fixtures/nvidia-tf, and pins the rules that 32 px fixtures cannot reach (fused v1
up-sampling from 128 px, the instance-norm epsilon, the v2 orig / resnet architectures)."""

from __future__ import annotations

import functools
import importlib
import io
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import tf_reference as R
import torch

FIXTURES = Path(__file__).parent / "fixtures"
TF_FIXTURES = FIXTURES / "nvidia-tf"
ADA_FIXTURES = FIXTURES / "nvlabs-stylegan2"
V1, V2 = "sg1_tf_32", "sg2_tf_32_configf"

IMAGE_TOL = 2e-4  # times max(1, max|ref|), README "fair float32 tolerance"
DLATENT_TOL = 1e-5


# ----------------------------------------------------------------------------------------------------------
# A tiny restricted reader for the fixture pickles (this file only; it never executes pickled code).

class _TFNetwork:
    """Stands in for dnnlib.tflib.network.Network: keeps the __getstate__ dict as it is."""

    def __setstate__(self, state):
        self.state = state


def _numpy_multiarray():
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1.x
        return importlib.import_module("numpy.core.multiarray")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "dnnlib.tflib.network" and name == "Network":
            return _TFNetwork
        # numpy 2 writes numpy._core.multiarray; the real 2019 files (numpy 1.x) numpy.core.multiarray.
        if module in ("numpy._core.multiarray", "numpy.core.multiarray") and name in ("_reconstruct", "scalar"):
            return getattr(_numpy_multiarray(), name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _load_tf_pickle(data: bytes):
    return _RestrictedUnpickler(io.BytesIO(data)).load()


@functools.cache
def _fixture(name: str):
    """(config, flat Gs variables, reference outputs) of one nvidia-tf fixture."""
    folder = TF_FIXTURES / name
    config = json.loads((folder / "config.json").read_text())
    _G, _D, Gs = _load_tf_pickle((folder / "network.pkl").read_bytes())
    assert Gs.state["name"] == "Gs"
    flat = R.flatten_network_state(Gs.state)
    ref = dict(np.load(folder / "reference.npz"))
    return config, flat, ref


def _err(out, ref) -> tuple[float, float]:
    """(max abs error, allowed scale max(1, max|ref|))."""
    ref = np.asarray(ref, np.float64)
    return float(np.abs(np.asarray(out, np.float64) - ref).max()), max(1.0, float(np.abs(ref).max()))


def _assert_close(out, ref, tol: float, what: str) -> None:
    assert np.shape(out) == np.shape(ref), (what, np.shape(out), np.shape(ref))
    err, scale = _err(out, ref)
    assert err <= tol * scale, f"{what}: max|diff| = {err:.3g} > {tol} * {scale:.3g}"


def _gens(name):
    if name == V1:
        return R.v1_mapping, R.v1_synthesis, R.v1_run
    return R.v2_mapping, R.v2_synthesis, R.v2_run


# ----------------------------------------------------------------------------------------------------------
# Reader and variables.

def test_restricted_unpickler_refuses_other_globals():
    with pytest.raises(pickle.UnpicklingError):
        _load_tf_pickle(pickle.dumps(print))
    with pytest.raises(pickle.UnpicklingError):
        _load_tf_pickle(pickle.dumps(np.float64))
    # numpy 1.x spelling of the array globals is accepted (protocol 3: text GLOBAL opcodes, no frames)
    data = pickle.dumps(np.arange(3, dtype=np.float32), protocol=3).replace(b"numpy._core.multiarray",
                                                                            b"numpy.core.multiarray")
    np.testing.assert_array_equal(_load_tf_pickle(data), np.arange(3, dtype=np.float32))


@pytest.mark.parametrize("name", [V1, V2])
def test_random_vars_have_the_official_names_shapes_and_order(name):
    config, flat, _ = _fixture(name)
    kw = config["G_kwargs"]
    args = (config["resolution"], kw["latent_size"], kw["dlatent_size"], kw["mapping_layers"], kw["mapping_fmaps"],
            kw["fmap_base"], kw["fmap_max"])
    rand = R.random_v1_vars(*args, seed=5) if name == V1 else R.random_v2_vars(*args, architecture="skip", seed=5)
    renamed = {re.sub(r"^G_(mapping|synthesis)/", r"\1/", k): tuple(v) for k, v in config["Gs_vars"].items()}
    pickled = {k: tuple(np.shape(v)) for k, v in flat.items()}
    assert list(pickled.items()) == list(renamed.items())
    assert [(k, v.shape) for k, v in rand.items()] == list(renamed.items())
    assert all(v.dtype == np.float32 for v in rand.values())
    assert rand["lod"].shape == () and float(rand["lod"]) == 0.0
    assert float(np.asarray(flat["lod"])) == 0.0
    gs, mapping, synthesis = R.split_components(rand)
    assert set(gs) == {"lod", "dlatent_avg"} and "Dense0/weight" in mapping and "4x4/Const/const" in synthesis
    assert R.join_components(gs, mapping, synthesis) == rand
    # recipe magnitudes
    assert 50 < rand["mapping/Dense0/weight"].std() < 200 and 10 < rand["mapping/Dense0/bias"].std() < 40
    assert 0.5 < rand["synthesis/4x4/Conv/weight"].std() < 2


def test_random_v2_vars_per_architecture():
    base = dict(resolution=16, latent_size=8, dlatent_size=8, mapping_layers=2, mapping_fmaps=8, fmap_base=64,
                fmap_max=16, seed=1)
    skip, orig, resnet = (R.random_v2_vars(architecture=a, **base) for a in ("skip", "orig", "resnet"))
    torgb = {k for k in skip if "ToRGB" in k}
    assert {k.split("/")[1] for k in torgb} == {"4x4", "8x8", "16x16"}
    assert {k for k in orig if "ToRGB" in k} == {k for k in torgb if "/16x16/" in k}
    assert {k for k in resnet if "Skip" in k} == {"synthesis/8x8/Skip/weight", "synthesis/16x16/Skip/weight"}
    assert resnet["synthesis/16x16/Skip/weight"].shape == (1, 1, 16, 8)
    assert "synthesis/lod" not in skip and skip["synthesis/4x4/Conv/noise_strength"].shape == ()
    for arch, v in (("skip", skip), ("orig", orig), ("resnet", resnet)):
        assert R.infer_v2_architecture(v) == arch and R.infer_resolution(v) == 16
        img = R.v2_run(v, np.random.RandomState(0).randn(2, 8))
        assert img.shape == (2, 3, 16, 16) and np.isfinite(img).all()


# ----------------------------------------------------------------------------------------------------------
# The official numbers.

@pytest.mark.parametrize("name", [V1, V2])
def test_dlatents(name):
    config, flat, ref = _fixture(name)
    mapping, _, _ = _gens(name)
    w = mapping(flat, ref["z"], config["G_kwargs"]["mapping_layers"], broadcast=config["num_layers"])
    _assert_close(w, ref["dlatents"], DLATENT_TOL, "dlatents")
    np.testing.assert_array_equal(flat["dlatent_avg"], ref["dlatent_avg"])
    psi, cutoff = (0.7, 8) if name == V1 else (0.7, None)
    trunc = R.truncate(ref["dlatents"], flat["dlatent_avg"], psi, cutoff, version=1 if name == V1 else 2)
    _assert_close(trunc, ref["dlatents_trunc"], DLATENT_TOL, "dlatents_trunc")


@pytest.mark.parametrize("name", [V1, V2])
def test_images(name):
    config, flat, ref = _fixture(name)
    _, synthesis, run = _gens(name)
    R_ = config["resolution"]
    _assert_close(synthesis(flat, ref["dlatents"], R_), ref["images_synth"], IMAGE_TOL, "images_synth")
    _assert_close(synthesis(flat, ref["dlatents_trunc"], R_), ref["images_full"], IMAGE_TOL, "synth(trunc)")
    # the full Gs.run path from z
    _assert_close(run(flat, ref["z"], truncation_psi=1.0), ref["images_synth"], IMAGE_TOL, "run psi 1")
    _assert_close(run(flat, ref["z"], truncation_psi=0.7), ref["images_full"], IMAGE_TOL, "images_full")
    _assert_close(run(flat, ref["z"], truncation_psi=0.7, truncation_cutoff=4), ref["images_full_cutoff4"],
                  IMAGE_TOL, "images_full_cutoff4")
    # graph defaults: v1 psi 0.7 cutoff 8 (== images_full), v2 psi 0.5 cutoff None
    default = ref["images_full"] if name == V1 else ref["images_full_default"]
    _assert_close(run(flat, ref["z"]), default, IMAGE_TOL, "graph-default truncation")
    # a float32 computation passes too
    _assert_close(run(flat, ref["z"], truncation_psi=0.7, dtype=np.float32), ref["images_full"], IMAGE_TOL,
                  "images_full float32")


@pytest.mark.parametrize("name", [V1, V2])
def test_style_mixing(name):
    config, flat, ref = _fixture(name)
    mapping, synthesis, _ = _gens(name)
    L = config["num_layers"]
    w = {int(s): mapping(flat, ref["z"][i:i + 1], broadcast=L)[0] for i, s in enumerate(ref["seeds"])}
    w_t = {s: R.truncate(v[None], flat["dlatent_avg"], 0.7, None)[0] for s, v in w.items()}  # all layers
    styles = ref["mix_col_styles"]
    for r, row in enumerate(ref["mix_row_seeds"]):
        for c, col in enumerate(ref["mix_col_seeds"]):
            mixed = w_t[int(row)].copy()
            mixed[styles] = w_t[int(col)][styles]
            _assert_close(mixed, ref["mix_dlatents"][r, c], DLATENT_TOL, "mix_dlatents")
            _assert_close(synthesis(flat, mixed[None]), ref["mix_images"][r, c][None], IMAGE_TOL, "mix_images")
            if name == V1:  # generate_figures.py draw_style_mixing_figure: no truncation
                fig = w[int(row)].copy()
                fig[styles] = w[int(col)][styles]
                _assert_close(fig, ref["mixfig_dlatents"][r, c], DLATENT_TOL, "mixfig_dlatents")
                _assert_close(synthesis(flat, fig[None]), ref["mixfig_images"][r, c][None], IMAGE_TOL,
                              "mixfig_images")


def test_v2_run_generator_recipe():
    config, flat, ref = _fixture(V2)
    L = config["num_layers"]
    for i, seed in enumerate(ref["seeds"]):
        rnd = np.random.RandomState(int(seed))
        z = rnd.randn(1, config["G_kwargs"]["latent_size"])
        np.testing.assert_array_equal(z, ref["z"][i:i + 1])
        shapes = [np.shape(flat[f"synthesis/noise{j}"]) for j in range(L - 1)]
        noise = [rnd.randn(*s).astype(np.float32) for s in shapes]  # tflib.set_vars casts to float32
        out = R.v2_run(flat, z, truncation_psi=0.7, noise=noise)
        _assert_close(out, ref["images_rungen"][i:i + 1], IMAGE_TOL, "images_rungen")
    assert not np.allclose(ref["images_rungen"], ref["images_full"], atol=1e-2)  # the noise matters


def test_v2_fused_modconv_matches():
    _, flat, ref = _fixture(V2)
    fused = R.v2_synthesis(flat, ref["dlatents"], fused_modconv=True)  # one grouped conv over the minibatch
    _assert_close(fused, ref["images_synth"], IMAGE_TOL, "fused_modconv")
    np.testing.assert_allclose(fused, R.v2_synthesis(flat, ref["dlatents"]), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", [V1, V2])
def test_uint8(name):
    _, flat, ref = _fixture(name)
    _, _, run = _gens(name)
    ours = R.convert_images_to_uint8(run(flat, ref["z"], truncation_psi=0.7))
    assert ours.shape == ref["images_full_uint8"].shape and ours.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - ref["images_full_uint8"].astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.005
    # the conversion itself: round half up of (x + 1) * 127.5, saturated
    x = np.array([[[[-2.0, -1.0, 0.0, 1.0, 2.0, 1 / 255, 3 / 255]]]], np.float32)
    assert R.convert_images_to_uint8(x, nchw_to_nhwc=False).ravel().tolist() == [0, 0, 128, 255, 255, 128, 129]


def test_truncate_semantics():
    w = np.random.RandomState(0).randn(2, 6, 4)
    avg = np.random.RandomState(1).randn(4)
    np.testing.assert_array_equal(R.truncate(w, avg, 1.0, None), w)
    np.testing.assert_array_equal(R.truncate(w, avg, 0.7, None, version=1), w)  # G_style: cutoff None = off
    np.testing.assert_array_equal(R.truncate(w, avg, 0.7, 0, version=1), w)
    np.testing.assert_allclose(R.truncate(w, avg, 0.7, None), avg + (w - avg) * 0.7)  # G_main: all layers
    t = R.truncate(w, avg, 0.5, 2, version=1)
    np.testing.assert_allclose(t[:, :2], avg + (w[:, :2] - avg) * 0.5)
    np.testing.assert_allclose(t[:, 2:], w[:, 2:], rtol=0, atol=1e-15)  # avg + (w - avg) * 1, as the graph


# ----------------------------------------------------------------------------------------------------------
# Rules the 32 px fixtures do not reach.

@pytest.mark.parametrize("hin", [64, 128])
def test_v1_fused_upscale_is_nonfused_with_the_kernel_rotated(hin):
    rng = np.random.RandomState(hin)
    x = torch.from_numpy(rng.randn(2, 4, hin, hin))
    w = torch.from_numpy(rng.randn(3, 3, 4, 3))
    fused = R.upscale2d_conv2d(x, w, fused_scale=True)
    assert fused.shape == (2, 3, 2 * hin, 2 * hin)
    rotated = R.upscale2d_conv2d(x, torch.flip(w, dims=(0, 1)), fused_scale=False)
    assert (fused - rotated).abs().max().item() <= 1e-5
    assert (fused - R.upscale2d_conv2d(x, w, fused_scale=False)).abs().max().item() > 1.0
    # 'auto' is fused from 128 px output on
    np.testing.assert_array_equal(R.upscale2d_conv2d(x, w, "auto").numpy(), fused.numpy())
    small = x[:, :, :32, :32]
    np.testing.assert_array_equal(R.upscale2d_conv2d(small, w, "auto").numpy(),
                                  R.upscale2d_conv2d(small, w, False).numpy())


def test_v1_fused_network_at_128px():
    v = R.random_v1_vars(128, 16, 16, 2, 16, fmap_base=64, fmap_max=8, seed=3)
    w = R.v1_mapping(v, np.random.RandomState(0).randn(2, 16), broadcast=12)
    auto = R.v1_synthesis(v, w, 128)  # 128x128/Conv0_up is fused
    rotated = dict(v)
    rotated["synthesis/128x128/Conv0_up/weight"] = v["synthesis/128x128/Conv0_up/weight"][::-1, ::-1]
    unfused = R.v1_synthesis(rotated, w, 128, fused_scale=False)
    _, scale = _err(unfused, auto)
    assert np.abs(auto - unfused).max() <= 1e-5 * scale
    assert np.abs(auto - R.v1_synthesis(v, w, 128, fused_scale=False)).max() > 0.1


def test_instance_norm_epsilon():
    rng = np.random.RandomState(0)
    tiny = torch.from_numpy(rng.randn(1, 2, 8, 8) * 1e-3)  # variance ~1e-6
    official = R.instance_norm(tiny)
    assert abs(official.std().item() - 1) < 0.05  # eps 1e-8 still normalises it
    assert (official - R.instance_norm(tiny, 1e-5)).abs().max().item() > 0.5
    # on the fixture, 1e-5 is a small but systematic error that 1e-8 does not have
    _, flat, ref = _fixture(V1)
    e8 = np.abs(R.v1_synthesis(flat, ref["dlatents"]) - ref["images_synth"]).mean()
    e5 = np.abs(R.v1_synthesis(flat, ref["dlatents"], instance_norm_eps=1e-5) - ref["images_synth"]).mean()
    assert e5 > 20 * e8


def test_v2_upsample_ops():
    rng = np.random.RandomState(0)
    x = torch.from_numpy(rng.randn(2, 5, 8, 8))
    # k=None is nearest-neighbour (the docstring's rule), and a constant stays constant inside
    np.testing.assert_allclose(R.upsample_2d(x, k=None).numpy(), R.upscale2d(x).numpy(), atol=1e-12)
    up = R.upsample_2d(torch.ones(1, 1, 8, 8, dtype=torch.float64))
    np.testing.assert_allclose(up[..., 2:-2, 2:-2].numpy(), 1.0, atol=1e-12)
    # upsample_conv_2d(x, w) = conv2d(upsample_2d(x), w) with the STORED w away from the border: the
    # w[::-1, ::-1] inside upsample_conv_2d undoes the flip of conv2d_transpose
    w = torch.from_numpy(rng.randn(3, 3, 5, 4))
    fused = R.upsample_conv_2d(x, w)
    split = R.tf_conv2d(R.upsample_2d(x), w)
    assert fused.shape == split.shape == (2, 4, 16, 16)
    assert (fused - split)[..., 3:-3, 3:-3].abs().max().item() < 1e-10
    assert (fused - R.tf_conv2d(R.upsample_2d(x), torch.flip(w, (0, 1))))[..., 3:-3, 3:-3].abs().max() > 1
    # grouped form (fused_modconv): two groups == two separate calls
    w2 = torch.from_numpy(rng.randn(3, 3, 5, 8))
    grouped = R.upsample_conv_2d(x.reshape(1, 10, 8, 8), w2)  # w2[..., g * 4 + o]: group g, output o
    for g in range(2):
        one = R.upsample_conv_2d(x[g:g + 1], w2[..., g * 4:(g + 1) * 4])
        np.testing.assert_allclose(grouped[:, g * 4:(g + 1) * 4].numpy(), one.numpy(), atol=1e-10)


# The official stylegan2-ada-pytorch generator outputs (fixtures/nvlabs-stylegan2) cover the orig and resnet
# architectures that the TF fixture (skip) does not. Its legacy.py converts TF params to PyTorch with
# w.transpose(3, 2, 0, 1) (Conv0_up and Skip: w[::-1, ::-1] first), mod_weight.T, mod_bias + 1,
# noise{i}[0, 0], const[0], Dense.T; here it is inverted to get TF variables.
def _ada_to_tf(sd: dict) -> dict:
    out = {"dlatent_avg": sd["mapping.w_avg"], "lod": np.zeros((), np.float32)}
    for key, v in sd.items():
        m = re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", key)
        if m:
            out[f"mapping/Dense{m[1]}/{m[2]}"] = v.T if m[2] == "weight" else v
            continue
        if key == "synthesis.b4.const":
            out["synthesis/4x4/Const/const"] = v[None]
            continue
        m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb|skip)\."
                         r"(weight|bias|noise_strength|noise_const|affine\.weight|affine\.bias)", key)
        if not m:
            continue
        r, layer, param = int(m[1]), m[2], m[3]
        scope = {"conv0": f"{r}x{r}/Conv0_up", "conv1": "4x4/Conv" if r == 4 else f"{r}x{r}/Conv1",
                 "torgb": f"{r}x{r}/ToRGB", "skip": f"{r}x{r}/Skip"}[layer]
        if param == "weight":
            w = v.transpose(2, 3, 1, 0)
            if layer in ("conv0", "skip"):
                w = w[::-1, ::-1]
            out[f"synthesis/{scope}/weight"] = np.ascontiguousarray(w)
        elif param == "affine.weight":
            out[f"synthesis/{scope}/mod_weight"] = v.T
        elif param == "affine.bias":
            out[f"synthesis/{scope}/mod_bias"] = v - 1
        elif param == "noise_const":
            out[f"synthesis/noise{int(np.log2(r)) * 2 - (5 if layer == 'conv0' else 4)}"] = v[None, None]
        else:
            out[f"synthesis/{scope}/{param}"] = v
    return out


@pytest.mark.parametrize("name", ["sg2_skip_32", "sg2_resnet_16_cond", "sg2_orig_16_gray_cut"])
def test_v2_architectures_against_stylegan2_ada(name):
    folder = ADA_FIXTURES / name
    config = json.loads((folder / "config.json").read_text())
    ref = dict(np.load(folder / "reference.npz"))
    flat = _ada_to_tf(dict(np.load(folder / "G_state_dict.npz")))
    arch = config["init_kwargs"]["synthesis_kwargs"]["architecture"]
    assert R.infer_v2_architecture(flat) == arch
    for psi in ("100", "070", "050"):
        ws = ref[f"ws_psi{psi}"]
        for mode in ("const", "none"):
            out = R.v2_synthesis(flat, ws, architecture=arch, noise=mode)
            _assert_close(out, ref[f"img_psi{psi}_{mode}"], IMAGE_TOL, f"{name} psi {psi} {mode}")
        if config["init_kwargs"]["c_dim"] == 0:  # TF's label handling (LabelConcat) is not ADA's embed
            w = R.v2_mapping(flat, ref["z"], broadcast=config["num_ws"])
            w = R.truncate(w, flat["dlatent_avg"], int(psi) / 100, config["truncation_cutoff"])
            _assert_close(w, ws, DLATENT_TOL, f"{name} ws psi {psi}")
