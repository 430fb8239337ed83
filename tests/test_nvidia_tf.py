"""NVIDIA TensorFlow pickles (StyleGAN v1 G_style, StyleGAN2 G_main): reproduced, converted, exported, served.

The fixtures (`tests/fixtures/nvidia-tf/`, see its README) come from NVIDIA's own TF code; the paths they
do not reach (fused up-sampling at >= 128 px, 8 mapping layers, latent size != dlatent size, the orig and
resnet architectures, the instance-norm epsilon) are checked on networks built here, pickled in the TF
layout by `tf_pickles.write_tf_pickle` and computed by `tf_reference` (a literal re-implementation of
the TF graphs working on the TF variables, itself checked against the fixtures in test_tf_reference.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tf_reference as tfr
import torch
from conftest import stylegan_cli
from tf_pickles import write_tf_pickle

import stylegan_sdk as sg
from stylegan_sdk.importers.nvidia_tf.convert import import_tf_pickle
from stylegan_sdk.loading import read_model, sniff
from stylegan_sdk.models import build_with_weights

FIXTURES = Path(__file__).parent / "fixtures" / "nvidia-tf"
V1, V2 = "sg1_tf_32", "sg2_tf_32_configf"


def ref_of(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURES / name / "reference.npz"))


def assert_images(got: np.ndarray, ref: np.ndarray, what: str) -> float:
    """The fixture README's fair float32 tolerance: 2e-4 * max(1, max|ref|)."""
    err = float(np.abs(got - ref).max())
    tol = 2e-4 * max(1.0, float(np.abs(ref).max()))
    print(f"{what}: max|d| = {err:.3g} (tolerance {tol:.3g})")
    assert err <= tol, f"{what}: max|d| {err} > {tol}"
    return err


def assert_dlatents(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    err = float(np.abs(got - ref).max())
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    print(f"{what}: max|d| = {err:.3g} (tolerance {tol:.3g})")
    assert err <= tol, f"{what}: max|d| {err} > {tol}"


@pytest.fixture(scope="module")
def gens() -> dict[str, sg.Generator]:
    return {name: sg.load(FIXTURES / name / "network.pkl") for name in (V1, V2)}


# ----------------------------------------------------------------------------
# The fixtures, every key


@pytest.mark.parametrize("name", [V1, V2])
def test_dlatents_and_truncation(gens, name):
    G, ref = gens[name], ref_of(name)
    cutoff = 8 if name == V1 else None
    assert_dlatents(G.map(ref["z"].astype(np.float32)), ref["dlatents"], f"{name} dlatents")
    assert_dlatents(G.map(ref["z"].astype(np.float32), psi=0.7, cutoff=cutoff), ref["dlatents_trunc"],
                    f"{name} dlatents_trunc")
    np.testing.assert_array_equal(G.w_avg, ref["dlatent_avg"])


@pytest.mark.parametrize("name", [V1, V2])
def test_images(gens, name):
    G, ref = gens[name], ref_of(name)
    seeds = [int(s) for s in ref["seeds"]]
    assert_images(G.synthesize(ref["dlatents"]), ref["images_synth"], f"{name} images_synth")
    cutoff = 8 if name == V1 else None
    assert_images(G.generate(seeds, psi=0.7, cutoff=cutoff, output="float"), ref["images_full"], f"{name} images_full")
    assert_images(G.generate(seeds, psi=0.7, cutoff=4, output="float"), ref["images_full_cutoff4"],
                  f"{name} images_full_cutoff4")
    if name == V2:  # G_main's graph default psi 0.5 on every layer
        assert_images(G.generate(seeds, psi=0.5, output="float"), ref["images_full_default"],
                      f"{name} images_full_default")


@pytest.mark.parametrize("name", [V1, V2])
def test_uint8_images(gens, name):
    G, ref = gens[name], ref_of(name)
    got = G.generate([int(s) for s in ref["seeds"]], psi=0.7, cutoff=8 if name == V1 else None, output="uint8")
    assert got.shape == ref["images_full_uint8"].shape
    diff = np.abs(got.astype(int) - ref["images_full_uint8"].astype(int))
    print(f"{name} uint8: {np.mean(diff > 0):.4%} off, max {diff.max()}")
    assert diff.max() <= 1 and np.mean(diff > 0) <= 0.005


@pytest.mark.parametrize("name", [V1, V2])
def test_style_mixing(gens, name):
    G, ref = gens[name], ref_of(name)
    layers = [int(i) for i in ref["mix_col_styles"]]
    rows = G.map(ref["z"][ref["mix_row_seeds"]].astype(np.float32), psi=0.7)
    cols = G.map(ref["z"][ref["mix_col_seeds"]].astype(np.float32), psi=0.7)
    for r in range(2):
        for c in range(2):
            assert_dlatents(_mixed(rows[r], cols[c], layers), ref["mix_dlatents"][r, c], f"{name} mix_dlatents")
            assert_images(G.mix(rows[r], cols[c], layers, output="float"), ref["mix_images"][r, c][None],
                          f"{name} mix_images[{r},{c}]")
    if name == V1:  # generate_figures.py: no truncation
        for r in range(2):
            assert_images(G.synthesize(ref["mixfig_dlatents"][r]), ref["mixfig_images"][r], f"{name} mixfig_images")


def _mixed(w_a: np.ndarray, w_b: np.ndarray, layers: list[int]) -> np.ndarray:
    out = w_a.copy()
    out[layers] = w_b[layers]
    return out


def test_run_generator_noise_recipe():
    """run_generator.py overwrites every noise buffer with the seed's RandomState draws: explicit noise."""
    ckpt = import_tf_pickle(FIXTURES / V2 / "network.pkl")
    model = build_with_weights(ckpt.config, ckpt.tensors, "v2")
    ref = ref_of(V2)
    for i, seed in enumerate(ref["seeds"]):
        rnd = np.random.RandomState(int(seed))
        z = rnd.randn(1, ckpt.config.z_dim)
        noise = [torch.from_numpy(rnd.randn(1, 1, r, r).astype(np.float32)) for r in ckpt.config.noise_resolutions]
        w = model.mapping(torch.from_numpy(z.astype(np.float32)))
        w_avg = torch.from_numpy(ckpt.w_avg)
        ws = (w_avg + 0.7 * (w - w_avg))[:, None].repeat(1, ckpt.config.num_ws, 1)
        with torch.no_grad():
            img = model.synthesis(ws, noise_mode="random", noise=noise).numpy()
        assert_images(img, ref["images_rungen"][i: i + 1], f"images_rungen[{i}]")


# ----------------------------------------------------------------------------
# What the importer makes of them


def test_configs_and_provenance():
    v1 = import_tf_pickle(FIXTURES / V1 / "network.pkl")
    cfg = v1.config
    assert (cfg.arch, cfg.variant, cfg.img_resolution, cfg.num_ws) == ("stylegan1", "nvidia", 32, 8)
    assert v1.config.fused_upsample_from is None  # 32 px: no layer reaches 128 px
    assert v1.config.source["format"] == "nvidia-tf-stylegan1"
    assert v1.metadata["graph_default_truncation"]["psi"] == 0.7
    assert v1.metadata["graph_default_truncation"]["cutoff"] == 8
    assert "never executed" in v1.metadata["build_module_src"]
    v2 = import_tf_pickle(FIXTURES / V2 / "network.pkl")
    assert (v2.config.arch, v2.config.architecture, v2.config.num_ws) == ("stylegan2", "skip", 8)
    assert v2.config.source["format"] == "nvidia-tf-stylegan2"
    assert v2.metadata["graph_default_truncation"] == {**v2.metadata["graph_default_truncation"], "psi": 0.5,
                                                       "cutoff": None}
    for path in (FIXTURES / V1 / "network.pkl", FIXTURES / V2 / "network.pkl"):
        assert sniff(str(path)) == "nvidia-tf"


def test_gs_not_g(tmp_path):
    """G and D are perturbed differently; a loader that took G would get other numbers."""
    ref = ref_of(V2)
    G = sg.load(FIXTURES / V2 / "network.pkl")
    assert_images(G.synthesize(ref["dlatents"]), ref["images_synth"], "Gs")
    with pytest.raises(ValueError, match="Gs"):
        read_model(FIXTURES / V2 / "network.pkl", key="G")


@pytest.mark.parametrize("name", [V1, V2])
def test_convert_then_info_then_load(tmp_path, name, capsys):
    """`stylegan convert` then `stylegan info`, in process (the real `stylegan` process is tests/test_cli.py's)."""
    out = tmp_path / f"{name}.safetensors"
    code, _, err = stylegan_cli(capsys, "convert", FIXTURES / name / "network.pkl", "--out", out)
    assert code == 0, err
    code, stdout, err = stylegan_cli(capsys, "info", out)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["config"]["source"]["format"] == f"nvidia-tf-{'stylegan1' if name == V1 else 'stylegan2'}"
    assert doc["metadata"]["imported_from"] == "network.pkl"
    ref = ref_of(name)
    assert_images(sg.load(out).synthesize(ref["dlatents"]), ref["images_synth"], f"{name} converted")


@pytest.mark.parametrize("name", [V1, V2])
def test_onnx_export_parity(tmp_path, name):
    from stylegan_sdk.export.onnx import export_onnx

    export_onnx(import_tf_pickle(FIXTURES / name / "network.pkl"), tmp_path / "onnx")
    G = sg.load(tmp_path / "onnx")
    assert G.info.backend == "onnxruntime"
    ref = ref_of(name)
    assert_dlatents(G.map(ref["z"].astype(np.float32)), ref["dlatents"], f"{name} ORT dlatents")
    assert_images(G.synthesize(ref["dlatents"]), ref["images_synth"], f"{name} ORT images_synth")


def test_served_images_equal_in_process(gens):
    from serving import serve_in_thread

    with serve_in_thread({"v1": gens[V1], "v2": gens[V2]}) as bg:
        for name in ("v1", "v2"):
            with sg.Client(bg.target, model=name, timeout=60) as C:
                got = C.generate([0, 1], psi=0.7, output="uint8")
            want = gens[V1 if name == "v1" else V2].generate([0, 1], psi=0.7, output="uint8")
            np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------
# Networks built here: fused 128 px, 8 mapping layers, latent != dlatent, orig / resnet, epsilon


def _v1_net(tmp_path: Path, resolution: int = 128, latent: int = 24, dlatent: int = 32, mapping_layers: int = 8,
            fmaps: int = 40, seed: int = 5, **kwargs) -> tuple[Path, dict[str, np.ndarray], dict]:
    flat = tfr.random_v1_vars(resolution=resolution, latent_size=latent, dlatent_size=dlatent,
                              mapping_layers=mapping_layers, mapping_fmaps=fmaps, fmap_base=256, fmap_max=16,
                              seed=seed)
    static = {"num_channels": 3, "resolution": resolution, "label_size": 0, "fmap_base": 256, "fmap_max": 16,
              "latent_size": latent, "dlatent_size": dlatent, "mapping_layers": mapping_layers,
              "mapping_fmaps": fmaps, **kwargs}
    path = tmp_path / "v1.pkl"
    write_tf_pickle(path, _gs("G_style", "G_synthesis", 3, static, flat))
    return path, flat, static


def _gs(func: str, synthesis_func: str, version: int, static: dict, flat: dict[str, np.ndarray]) -> dict:
    gs_vars, mapping_vars, synthesis_vars = tfr.split_components(flat)
    return {"name": "Gs", "version": version, "build_func_name": func, "static_kwargs": static,
            "variables": list(gs_vars.items()),
            "components": {
                "synthesis": {"name": "G_synthesis", "version": version, "build_func_name": synthesis_func,
                              "static_kwargs": static, "variables": list(synthesis_vars.items()), "components": {}},
                "mapping": {"name": "G_mapping", "version": version, "build_func_name": "G_mapping",
                            "static_kwargs": static, "variables": list(mapping_vars.items()), "components": {}},
            }}


def test_v1_fused_128px_8_mapping_layers_latent_not_dlatent(tmp_path):
    path, flat, static = _v1_net(tmp_path)
    G = sg.load(path)
    cfg = G.config
    sizes = (cfg.fused_upsample_from, cfg.mapping_layers, cfg.z_dim, cfg.w_dim, cfg.layer_features)
    assert sizes == (128, 8, 24, 32, 40)
    z = np.random.RandomState(0).randn(3, 24)
    w_ref = tfr.v1_mapping(flat, z, mapping_layers=8)
    w = G.map(z.astype(np.float32))
    assert_dlatents(w[:, 0], w_ref, "v1 128px mapping")
    ws = tfr.truncate(np.repeat(w_ref[:, None], cfg.num_ws, 1), flat["dlatent_avg"], 0.7, 8)
    for mode in ("const", "none"):
        img_ref = tfr.v1_synthesis(flat, ws, resolution=128, noise=mode)
        assert_images(G.synthesize(ws.astype(np.float32), noise_mode=mode), img_ref, f"v1 128px noise {mode}")
    # The 180-degree rule is what makes this pass: without the rotation the fused layer is far off.
    wrong = import_tf_pickle(path)
    k = "synthesis.b128.layer0.weight"
    wrong.tensors[k] = np.ascontiguousarray(wrong.tensors[k][:, :, ::-1, ::-1])
    model = build_with_weights(wrong.config, wrong.tensors, "rotated")
    with torch.no_grad():
        bad = model.synthesis(torch.from_numpy(ws.astype(np.float32))).numpy()
    img_ref = tfr.v1_synthesis(flat, ws, resolution=128, noise="const")
    assert np.abs(bad - img_ref).max() > 100 * 2e-4 * max(1.0, np.abs(img_ref).max())


def test_v1_fused_scale_false_and_true(tmp_path):
    for fused_scale, expect in ((False, None), (True, 8)):
        path, flat, _ = _v1_net(tmp_path, resolution=32, seed=9, fused_scale=fused_scale)
        G = sg.load(path)
        assert G.config.fused_upsample_from == expect
        ws = np.repeat(tfr.v1_mapping(flat, np.random.RandomState(1).randn(2, 24), 8)[:, None], G.config.num_ws, 1)
        img_ref = tfr.v1_synthesis(flat, ws, resolution=32, noise="const", fused_scale=fused_scale)
        assert_images(G.synthesize(ws.astype(np.float32)), img_ref, f"v1 fused_scale={fused_scale}")


def test_v1_instance_norm_epsilon_is_nvidias(tmp_path):
    """With a nearly flat 4x4 constant (variance ~1e-5) the instance norm shows eps 1e-8 from 1e-5."""
    path, flat, _ = _v1_net(tmp_path, resolution=16, seed=3)
    flat = dict(flat)
    rnd = np.random.RandomState(0)
    const = flat["synthesis/4x4/Const/const"]
    flat["synthesis/4x4/Const/const"] = (1 + 3e-3 * rnd.randn(*const.shape)).astype(np.float32)  # variance ~1e-5
    for k in list(flat):
        if k.endswith("Noise/weight") or k.endswith("4x4/Const/bias"):
            flat[k] = np.zeros_like(flat[k])
    static = {"num_channels": 3, "resolution": 16, "label_size": 0, "fmap_base": 256, "fmap_max": 16,
              "latent_size": 24, "dlatent_size": 32, "mapping_layers": 8, "mapping_fmaps": 40}
    write_tf_pickle(path, _gs("G_style", "G_synthesis", 3, static, flat))
    ckpt = import_tf_pickle(path)
    ws = np.repeat(tfr.v1_mapping(flat, rnd.randn(2, 24), 8)[:, None], ckpt.config.num_ws, 1)
    img_ref = tfr.v1_synthesis(flat, ws, resolution=16, noise="const")
    G = sg.load(path)
    assert_images(G.synthesize(ws.astype(np.float32)), img_ref, "eps 1e-8")
    # The same weights with rosinality's epsilon (1e-5) are far off.
    cfg = type(ckpt.config).from_dict({**ckpt.config.to_dict(), "variant": "rosinality"})
    tensors = {k: v for k, v in ckpt.tensors.items() if k != "synthesis.b4.layer0.bias"}
    model = build_with_weights(cfg, tensors, "eps 1e-5")
    with torch.no_grad():
        other = model.synthesis(torch.from_numpy(ws.astype(np.float32))).numpy()
    assert np.abs(other - img_ref).max() > 0.1


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_v2_architectures_and_sizes(tmp_path, architecture):
    flat = tfr.random_v2_vars(resolution=32, latent_size=24, dlatent_size=32, mapping_layers=8, mapping_fmaps=40,
                              fmap_base=128, fmap_max=16, architecture=architecture, seed=11)
    static = {"num_channels": 3, "resolution": 32, "label_size": 0, "fmap_base": 128, "fmap_max": 16,
              "latent_size": 24, "dlatent_size": 32, "mapping_layers": 8, "mapping_fmaps": 40,
              "architecture": architecture}
    path = tmp_path / f"{architecture}.pkl"
    write_tf_pickle(path, _gs("G_main", "G_synthesis_stylegan2", 4, static, flat), numpy_core="numpy.core")
    G = sg.load(path)
    assert (G.config.architecture, G.config.z_dim, G.config.w_dim, G.config.mapping_layers) == (architecture, 24, 32, 8)
    z = np.random.RandomState(2).randn(3, 24)
    w_ref = tfr.v2_mapping(flat, z, mapping_layers=8)
    assert_dlatents(G.map(z.astype(np.float32))[:, 0], w_ref, f"v2 {architecture} mapping")
    ws = tfr.truncate(np.repeat(w_ref[:, None], G.config.num_ws, 1), flat["dlatent_avg"], 0.5, None)
    for mode in ("const", "none"):
        img_ref = tfr.v2_synthesis(flat, ws, resolution=32, architecture=architecture, noise=mode)
        assert_images(G.synthesize(ws.astype(np.float32), noise_mode=mode), img_ref, f"v2 {architecture} {mode}")


# ----------------------------------------------------------------------------
# Refusals: what the importer does not implement is named, never guessed


def _v2_fixture_gs() -> dict:
    from stylegan_sdk.importers.nvidia_tf.reader import read_tf_pickle

    gs = read_tf_pickle(FIXTURES / V2 / "network.pkl")

    def as_dict(net) -> dict:
        return {"name": net.name, "version": net.version, "build_func_name": net.build_func_name,
                "static_kwargs": dict(net.static_kwargs), "variables": list(net.variables.items()),
                "components": {k: as_dict(v) for k, v in net.components.items()}}

    return as_dict(gs)


def _edit(gs: dict, where: str, fn) -> dict:
    net = gs if where == "Gs" else gs["components"][where]
    fn(net)
    return gs


@pytest.mark.parametrize("case, match", [
    ("unknown_kwarg", "unknown static kwarg 'use_magic'"),
    ("conditional", "label_size"),
    ("relu", "nonlinearity"),
    ("lod", "progressive growing"),
    ("progan", "ProGAN"),
    ("revised", "configs B-D"),
    ("missing", "missing variables synthesis/4x4/Conv/mod_bias"),
    ("shape", "wrong shapes"),
    ("nan", "NaN or Inf"),
    ("huge_resolution", "exceeds the limit"),
    ("resolution_mismatch", "missing variable .synthesis/64x64"),
])
def test_refusals(tmp_path, case, match, capsys):
    gs = _v2_fixture_gs()

    def set_kwarg(key, value):
        return lambda net: net["static_kwargs"].__setitem__(key, value)

    def set_var(key, fn):
        def edit(net):
            net["variables"] = [(k, fn(v) if k == key else v) for k, v in net["variables"]]
        return edit

    edits = {
        "unknown_kwarg": lambda: _edit(gs, "synthesis", set_kwarg("use_magic", True)),
        "conditional": lambda: _edit(gs, "Gs", set_kwarg("label_size", 4)),
        "relu": lambda: _edit(gs, "synthesis", set_kwarg("nonlinearity", "relu")),
        "lod": lambda: _edit(gs, "Gs", set_var("lod", lambda v: np.float32(0.5))),
        "progan": lambda: gs.__setitem__("build_func_name", "G_paper"),
        "revised": lambda: _edit(gs, "synthesis", lambda n: n.__setitem__("build_func_name",
                                                                          "G_synthesis_stylegan_revised")),
        "missing": lambda: _edit(gs, "synthesis", lambda n: n.__setitem__(
            "variables", [(k, v) for k, v in n["variables"] if k != "4x4/Conv/mod_bias"])),
        "shape": lambda: _edit(gs, "synthesis", set_var("4x4/Conv/weight", lambda v: v[:, :, :, :-1])),
        "nan": lambda: _edit(gs, "synthesis", set_var("4x4/Conv/bias", lambda v: v * np.nan)),
        "huge_resolution": lambda: [_edit(gs, n, set_kwarg("resolution", 1 << 20))
                                    for n in ("Gs", "synthesis", "mapping")],
        "resolution_mismatch": lambda: [_edit(gs, n, set_kwarg("resolution", 64))
                                        for n in ("Gs", "synthesis", "mapping")],
    }
    edits[case]()
    path = tmp_path / f"{case}.pkl"
    write_tf_pickle(path, gs)
    with pytest.raises(ValueError, match=match):
        read_model(path)
    if case == "progan":  # the CLI (in process): one line, exit 2, nothing written
        code, _, err = stylegan_cli(capsys, "convert", path, "--out", tmp_path / "out.st")
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "out.st").exists()
