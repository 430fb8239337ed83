"""StyleGAN3 (alias-free) generator: number-for-number parity with the official NVlabs networks.

The references in fixtures/nvlabs-stylegan3/ (see its README.md) are outputs of the official
`networks_stylegan3.Generator` at stylegan3-t (sg3t_32) and stylegan3-r conditional (sg3r_32_cond)
settings. Every output is checked at the model level (our torch modules fed the official state dict)
and through the public API (`sg.load` of the official snapshot pickle, then `Generator` calls), within
the fixture's tolerances: ws <= 1e-5, float images <= 1e-4, uint8 images within 1.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan_sdk as sg
from stylegan_sdk.backends.torch_backend import TorchBackend
from stylegan_sdk.config import STYLEGAN3_FIELDS, GeneratorConfig, stylegan3_layers
from stylegan_sdk.importers.nvlabs.convert import import_pickle, import_state, stylegan3_config_from_init_kwargs
from stylegan_sdk.importers.nvlabs.reader import read_network_pickle
from stylegan_sdk.models import build_generator, build_with_weights

FIXTURES = Path(__file__).parent / "fixtures" / "nvlabs-stylegan3"
CONFIGS = ["sg3t_32", "sg3r_32_cond"]
PSIS = {"100": 1.0, "070": 0.7, "050": 0.5}
TOL_WS, TOL_IMG, TOL_U8 = 1e-5, 1e-4, 1
# Largest error seen per (config, output), printed by the last test (run with -s to see it).
MAX_ERRORS: dict[tuple[str, str], float] = {}


# ----------------------------------------------------------------------------
# Fixture data and helpers


@cache
def fixture(name: str) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(config.json, official state dict, reference outputs) of one configuration."""
    folder = FIXTURES / name
    config = json.loads((folder / "config.json").read_text())
    return config, dict(np.load(folder / "G_state_dict.npz")), dict(np.load(folder / "reference.npz"))


@cache
def torch_model(name: str) -> torch.nn.Module:
    """Our torch Generator with the official state dict (model level)."""
    config, state, _ = fixture(name)
    return build_with_weights(stylegan3_config_from_init_kwargs(config["init_kwargs"]), state, name)


@cache
def api_generator(name: str) -> sg.Generator:
    """The official snapshot pickle through sg.load (API level)."""
    return sg.load(FIXTURES / name / "network-snapshot.pkl")


def record(name: str, what: str, err: float) -> float:
    MAX_ERRORS[(name, what)] = max(err, MAX_ERRORS.get((name, what), 0.0))
    return err


def max_abs(a: np.ndarray | torch.Tensor, b: np.ndarray) -> float:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def to_uint8(img: np.ndarray) -> np.ndarray:
    """NCHW float -> NHWC uint8 as the official scripts: (img * 127.5 + 128).clamp(0, 255)."""
    return np.clip(img.transpose(0, 2, 3, 1) * 127.5 + 128, 0, 255).astype(np.uint8)


def make_transform(translate: tuple[float, float], angle: float) -> np.ndarray:
    """gen_images.py's make_transform: rotation by `angle` degrees and translation, float64 [3, 3]."""
    s, c = np.sin(angle / 360.0 * np.pi * 2), np.cos(angle / 360.0 * np.pi * 2)
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]])


def ref_c(ref: dict[str, np.ndarray]) -> np.ndarray | None:
    return ref.get("c")


# ----------------------------------------------------------------------------
# Config, layer schedule, state dict and designed filters


@pytest.mark.parametrize("name", CONFIGS)
def test_config_and_layer_schedule_match_official(name):
    config, _, _ = fixture(name)
    cfg = stylegan3_config_from_init_kwargs(config["init_kwargs"])
    assert cfg.arch == "stylegan3" and cfg.num_ws == config["num_ws"] == 16
    assert cfg.noise_resolutions == []
    rate, bandwidth, channels, size, layers = stylegan3_layers(cfg)
    official_input, official_layers = config["layers"][0], config["layers"][1:]
    assert (rate, bandwidth, channels, [size, size]) == tuple(
        official_input[k] for k in ("sampling_rate", "bandwidth", "channels", "size"))
    assert [layer.name for layer in layers] == config["layer_names"]
    for ours, off in zip(layers, official_layers):
        for key in ("is_torgb", "is_critically_sampled", "in_channels", "out_channels", "in_sampling_rate",
                    "out_sampling_rate"):
            assert getattr(ours, key) == off[key], (ours.name, key)
        assert [ours.in_size] * 2 == off["in_size"] and [ours.out_size] * 2 == off["out_size"]
        for key in ("in_cutoff", "out_cutoff", "in_half_width", "out_half_width"):
            assert getattr(ours, key) == pytest.approx(off[key], rel=1e-12, abs=1e-12), (ours.name, key)
    # The built layers: resampling factors, taps, padding, radial filters.
    model = build_generator(cfg)
    for off in official_layers:
        layer = getattr(model.synthesis, off["name"])
        assert (layer.up_factor, layer.down_factor, layer.up_taps, layer.down_taps) == (
            off["up_factor"], off["down_factor"], off["up_taps"], off["down_taps"]), off["name"]
        assert layer.padding == off["padding"] and layer.down_radial == off["down_radial"], off["name"]
        assert layer.conv_kernel == off["conv_kernel"] and layer.tmp_sampling_rate == off["tmp_sampling_rate"]


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_keys_and_shapes_equal_official(name):
    config, state, _ = fixture(name)
    ours = build_generator(stylegan3_config_from_init_kwargs(config["init_kwargs"])).state_dict()
    assert set(ours) == set(state)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: v.shape for k, v in state.items()}


@pytest.mark.parametrize("name", CONFIGS)
def test_designed_filters_match_official(name):
    """A freshly built network (no state dict) designs the official filters."""
    config, state, _ = fixture(name)
    ours = build_generator(stylegan3_config_from_init_kwargs(config["init_kwargs"])).state_dict()
    keys = [k for k in state if k.endswith(("up_filter", "down_filter"))]
    assert len(keys) == 2 * (len(config["layer_names"]) - 1)   # ToRGB has none
    err = max(max_abs(ours[k], state[k]) for k in keys)
    assert record(name, "designed filters", err) <= 1e-6
    # Identity transform buffer and the layer table's groups = the fixture's mixing groups.
    assert torch.equal(ours["synthesis.input.transform"], torch.eye(3))


@pytest.mark.parametrize("name", CONFIGS)
def test_mixing_groups_are_the_fixture_groups(name):
    _, _, ref = fixture(name)
    info = api_generator(name).info
    for tag in ("coarse", "middle", "fine"):
        assert info.layers_in_group(tag) == ref[f"mix_{tag}_layers"].tolist()
    assert [row["resolution"] for row in info.layers] == [16] * 6 + [32] * 10   # sampling rate per ws row


# ----------------------------------------------------------------------------
# Parity: mapping (ws), synthesis (float and uint8), mixing, transforms


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("psi", PSIS)
def test_ws_match_official(name, psi):
    _, _, ref = fixture(name)
    G = api_generator(name)
    ws = G.map(ref["z"], psi=PSIS[psi], c=ref_c(ref))
    assert record(name, "ws", max_abs(ws, ref[f"ws_psi{psi}"])) <= TOL_WS
    # Model level: mapping + truncation toward w_avg in all rows.
    model = torch_model(name)
    c = None if ref_c(ref) is None else torch.from_numpy(ref["c"])
    with torch.no_grad():
        w = model.mapping(torch.from_numpy(ref["z"]), c)
        ws_t = model.mapping.w_avg.lerp(w.unsqueeze(1).repeat(1, model.num_ws, 1), PSIS[psi])
    assert record(name, "ws", max_abs(ws_t, ref[f"ws_psi{psi}"])) <= TOL_WS


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("psi", PSIS)
def test_images_match_official(name, psi):
    _, _, ref = fixture(name)
    want = ref[f"img_psi{psi}"]
    with torch.no_grad():
        x = torch_model(name).synthesis(torch.from_numpy(ref[f"ws_psi{psi}"]), noise_mode="const")
    assert record(name, "images", max_abs(x, want)) <= TOL_IMG
    G = api_generator(name)
    assert record(name, "images", max_abs(G.synthesize(ref[f"ws_psi{psi}"]), want)) <= TOL_IMG
    u8 = G.synthesize(ref[f"ws_psi{psi}"], output="uint8")
    assert u8.dtype == np.uint8
    assert record(name, "uint8", max_abs(u8, to_uint8(want))) <= TOL_U8
    # Seeds -> images in one call (z = RandomState(seed).randn, as the fixture).
    x = G.generate([int(s) for s in ref["seeds"]], psi=PSIS[psi], c=ref_c(ref), output="float")
    assert record(name, "images", max_abs(x, want)) <= TOL_IMG


@pytest.mark.parametrize("name", CONFIGS)
def test_noise_mode_is_accepted_and_ignored(name):
    _, _, ref = fixture(name)
    G = api_generator(name)
    images = [G.synthesize(ref["ws_psi070"][:2], noise_mode=mode) for mode in ("const", "random", "none")]
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("tag", ["coarse", "middle", "fine"])
def test_style_mixing_matches_official(name, tag):
    _, _, ref = fixture(name)
    ws = ref["ws_psi100"]
    layers = ref[f"mix_{tag}_layers"].tolist()
    want = ref[f"mix_{tag}_img"]
    mixed = ws[0:1].copy()
    mixed[:, layers] = ws[1, layers]
    with torch.no_grad():
        x = torch_model(name).synthesis(torch.from_numpy(mixed))
    assert record(name, "mixing", max_abs(x, want)) <= TOL_IMG
    x = api_generator(name).mix(ws[0], ws[1], layers, output="float")
    assert record(name, "mixing", max_abs(x[np.newaxis] if x.ndim == 3 else x, want)) <= TOL_IMG


XFORMS = {"a": ((0.1, -0.05), 10.0), "b": ((-0.3, 0.2), -45.0)}


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("tag", ["a", "b"])
def test_translate_rotate_match_official(name, tag):
    """gen_images.py: make_transform(translate, rotate), inverted, is the input's transform."""
    _, _, ref = fixture(name)
    translate, rotate = XFORMS[tag]
    assert np.allclose(ref[f"xform_{tag}_translate"], translate) and float(ref[f"xform_{tag}_rotate"]) == rotate
    m = make_transform(translate, rotate)
    assert np.abs(m - ref[f"xform_{tag}_matrix"]).max() <= 1e-15
    t = np.linalg.inv(m).astype(np.float32)
    assert np.array_equal(t, ref[f"xform_{tag}_transform"])
    want = ref[f"xform_{tag}_img"]
    with torch.no_grad():
        x = torch_model(name).synthesis(torch.from_numpy(ref["ws_psi100"]), transform=torch.from_numpy(t))
    assert record(name, f"transform {tag}", max_abs(x, want)) <= TOL_IMG
    G = api_generator(name)
    x = G.synthesize(ref["ws_psi100"], translate=translate, rotate=rotate)
    assert record(name, f"transform {tag}", max_abs(x, want)) <= TOL_IMG
    x = G.generate([int(s) for s in ref["seeds"]], c=ref_c(ref), output="float", translate=translate, rotate=rotate)
    assert record(name, f"transform {tag}", max_abs(x, want)) <= TOL_IMG


@pytest.mark.parametrize("name", CONFIGS)
def test_raw_transform_matches_official(name):
    """Transform c: zoom + shear that pushes frequencies out of band (the amplitude damping)."""
    _, _, ref = fixture(name)
    t, want = ref["xform_c_transform"], ref["xform_c_img"]
    with torch.no_grad():
        x = torch_model(name).synthesis(torch.from_numpy(ref["ws_psi100"]),
                                        transform=torch.from_numpy(t).expand(4, 3, 3))
    assert record(name, "transform c", max_abs(x, want)) <= TOL_IMG
    x = api_generator(name).synthesize(ref["ws_psi100"], transform=t)
    assert record(name, "transform c", max_abs(x, want)) <= TOL_IMG
    backend = api_generator(name).backend
    x = backend.synthesize(ref["ws_psi100"], "const", None, np.repeat(t[np.newaxis], 4, axis=0))
    assert record(name, "transform c", max_abs(x, want)) <= TOL_IMG


@pytest.mark.parametrize("name", CONFIGS)
def test_batch_of_mixed_transforms_equals_each_sample_alone(name):
    _, _, ref = fixture(name)
    backend = api_generator(name).backend
    eye = np.eye(3, dtype=np.float32)
    tags = [None, "a", "b", "c"]   # seed i with transform tags[i]
    transforms = np.stack([eye if t is None else ref[f"xform_{t}_transform"] for t in tags])
    batch = backend.synthesize(ref["ws_psi100"], "const", None, transforms)
    for i, tag in enumerate(tags):
        # Alone: equal up to the order of float sums (kernels differ with the batch size; the official
        # code moves by 1.6e-6 there too, see the fixture README).
        alone = backend.synthesize(ref["ws_psi100"][i: i + 1], "const", None, transforms[i: i + 1])
        assert record(name, "batch vs alone", max_abs(batch[i: i + 1], alone)) <= 1e-5
        want = ref["img_psi100"] if tag is None else ref[f"xform_{tag}_img"]
        assert record(name, "images", max_abs(batch[i], want[i])) <= TOL_IMG
    # Same batch size, other rows replaced (other latents, other transforms): row 0 is bitwise the same,
    # since nothing (styles normalisation included) mixes samples.
    others = ref["ws_psi100"].copy()
    others[1:] = others[1:][::-1] * 0.5
    shuffled = np.concatenate([transforms[:1], transforms[1:][::-1]])
    assert np.array_equal(backend.synthesize(others, "const", None, shuffled)[0], batch[0])
    # The buffer is never touched by a transform: the default is still the identity.
    assert torch.equal(backend.model.synthesis.input.transform.cpu(), torch.eye(3))


# ----------------------------------------------------------------------------
# Import: pickle, kwargs, provenance, checkpoint round trip, convert


@pytest.mark.parametrize("name", CONFIGS)
def test_pickle_import_is_stylegan3_by_class_names(name):
    config, state, _ = fixture(name)
    path = FIXTURES / name / "network-snapshot.pkl"
    record_ = read_network_pickle(path)
    assert record_.module_classes["synthesis.input"] == "SynthesisInput"
    assert record_.module_classes["synthesis.L0_36_" + config["layer_names"][0].split("_")[-1]] == "SynthesisLayer"
    ckpt = import_pickle(path)
    assert ckpt.config.arch == "stylegan3"
    assert ckpt.config == stylegan3_config_from_init_kwargs(config["init_kwargs"])
    assert set(ckpt.tensors) == set(state)
    assert all(np.array_equal(ckpt.tensors[k], state[k]) for k in state)
    source = ckpt.config.source
    assert source["format"] == "nvlabs-stylegan3" and source["init_kwargs"] == config["init_kwargs"]
    assert "float32" in source["precision"] and "float32" in ckpt.metadata["precision"]
    # A bare state dict (no class names) is told apart by its keys.
    assert import_state(config["init_kwargs"], state, "state.npz").config.arch == "stylegan3"


def test_official_kwargs_map_to_config_fields():
    config, _, _ = fixture("sg3r_32_cond")
    cfg = stylegan3_config_from_init_kwargs(config["init_kwargs"])
    assert (cfg.conv_kernel, cfg.use_radial_filters, cfg.conv_clamp, cfg.channel_base, cfg.channel_max) == (
        1, True, 4.0, 1024, 64)
    assert (cfg.mapping_layers, cfg.c_dim, cfg.w_dim, cfg.num_fp16_res) == (2, 4, 48, 0)
    assert cfg.magnitude_ema_beta == config["init_kwargs"]["magnitude_ema_beta"]
    # Official defaults where train.py passes nothing: conv_clamp 256, 2 mapping layers, 14 layers.
    bare = stylegan3_config_from_init_kwargs(dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3))
    assert (bare.conv_clamp, bare.mapping_layers, bare.num_layers, bare.num_fp16_res) == (256.0, 2, 14, 4)


@pytest.mark.parametrize("where, kwargs", [
    ("", {"fancy_option": 1}),
    ("mapping_kwargs.", {"mapping_kwargs": {"num_layers": 2, "embed_features": 16}}),
])
def test_unknown_official_kwarg_is_named(where, kwargs):
    config, _, _ = fixture("sg3t_32")
    bad = {**config["init_kwargs"], **kwargs}
    name = where + next(iter(k for k in (kwargs.get("mapping_kwargs") or kwargs) if k != "num_layers"))
    with pytest.raises(ValueError, match=rf"unsupported StyleGAN3 Generator options \['{name}'\]"):
        stylegan3_config_from_init_kwargs(bad)
    with pytest.raises(ValueError, match="conv_kernel = 'x'"):
        stylegan3_config_from_init_kwargs({**config["init_kwargs"], "conv_kernel": "x"})


def test_checkpoint_round_trip_and_convert(tmp_path):
    from stylegan_sdk.cli import main as cli_main

    _, _, ref = fixture("sg3r_32_cond")
    pkl = FIXTURES / "sg3r_32_cond" / "network-snapshot.pkl"
    out = tmp_path / "sg3r.safetensors"
    assert cli_main(["convert", str(pkl), "--out", str(out)]) == 0
    G = sg.load(out)
    assert G.config == api_generator("sg3r_32_cond").config and G.config.source["format"] == "nvlabs-stylegan3"
    assert max_abs(G.synthesize(ref["ws_psi050"]), ref["img_psi050"]) <= TOL_IMG
    assert max_abs(G.map(ref["z"], psi=0.5, c=ref["c"]), ref["ws_psi050"]) <= TOL_WS


def test_config_json_round_trip_and_old_families_unchanged():
    config, _, _ = fixture("sg3t_32")
    cfg = stylegan3_config_from_init_kwargs(config["init_kwargs"])
    d = cfg.to_dict()
    assert {f.name for f in STYLEGAN3_FIELDS} <= set(d)
    assert GeneratorConfig.from_json(cfg.to_json()) == cfg
    # StyleGAN2 / v1 configs never write the StyleGAN3 fields, and refuse non-default values of them.
    old = GeneratorConfig(img_resolution=32)
    assert not {f.name for f in STYLEGAN3_FIELDS} & set(old.to_dict())
    assert GeneratorConfig.from_json(old.to_json()) == old
    with pytest.raises(ValueError, match=r"config\.conv_kernel: a StyleGAN3 option"):
        GeneratorConfig(img_resolution=32, conv_kernel=1)
    with pytest.raises(ValueError, match=r"config\.num_critical"):
        dataclasses.replace(cfg, num_critical=14)
    with pytest.raises(ValueError, match=r"config\.embed_features"):
        dataclasses.replace(cfg, embed_features=16)


# ----------------------------------------------------------------------------
# Networks built from a config only; conditioning; family-specific errors


@pytest.mark.parametrize("kwargs", [
    dict(conv_kernel=3),
    dict(conv_kernel=1, use_radial_filters=True, c_dim=3, conv_clamp=2.0),
])
def test_random_small_network_from_config_runs(kwargs):
    torch.manual_seed(0)
    cfg = GeneratorConfig(arch="stylegan3", z_dim=8, w_dim=8, img_resolution=16, img_channels=3, mapping_layers=1,
                          channel_base=128, channel_max=8, num_layers=4, margin_size=4, **kwargs)
    model = build_generator(cfg).eval()
    assert cfg.num_ws == 6 and model.num_ws == 6
    z = torch.randn(3, 8)
    c = torch.eye(3)[[0, 2, 1]] if cfg.c_dim else None
    with torch.no_grad():
        x = model(z, c, truncation_psi=0.7)
        t = torch.tensor([[1.0, 0.0, 0.2], [0.0, 1.0, -0.1], [0.0, 0.0, 1.0]])
        moved = model(z, c, transform=t)
    assert x.shape == (3, 3, 16, 16) and bool(torch.isfinite(x).all()) and bool(torch.isfinite(moved).all())
    # Through the API, with its own weights as the state dict.
    G = sg.Generator(TorchBackend(cfg, model.state_dict()))
    imgs = G.generate([0, 1], c=None if not cfg.c_dim else np.eye(3, dtype=np.float32)[:2], output="uint8",
                      translate=(0.1, 0.0), rotate=5)
    assert imgs.shape == (2, 16, 16, 3)


def test_conditional_model_needs_c():
    _, _, ref = fixture("sg3r_32_cond")
    G = api_generator("sg3r_32_cond")
    assert G.info.c_dim == 4
    with pytest.raises(ValueError, match="c"):
        G.map(ref["z"])
    with pytest.raises(ValueError, match="c"):
        G.map(ref["z"], c=np.zeros((4, 3), np.float32))
    # Different classes give different ws; the fixture's one-hot labels give the fixture's ws.
    ws = G.map(ref["z"][:1].repeat(2, axis=0), c=np.eye(4, dtype=np.float32)[:2])
    assert np.abs(ws[0] - ws[1]).max() > 1e-3
    assert max_abs(G.map(ref["z"], c=ref["c"]), ref["ws_psi100"]) <= TOL_WS


def test_transform_refused_by_other_families(skip32_generator):
    ws = np.zeros((1, skip32_generator.info.num_ws, skip32_generator.info.w_dim), np.float32)
    with pytest.raises(ValueError, match="transform"):
        skip32_generator.backend.synthesize(ws, "const", None, np.eye(3, dtype=np.float32)[np.newaxis])


def test_zz_report_max_errors():
    """Prints the largest error per configuration and output (pytest -s shows it)."""
    for (name, what), err in sorted(MAX_ERRORS.items()):
        print(f"{name:14s} {what:18s} max |diff| = {err:.3g}")
