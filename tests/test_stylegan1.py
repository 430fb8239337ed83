"""StyleGAN (v1) against rosinality/style-based-gan-pytorch (tests/fixtures/rosinality-stylegan1).

The fixture pins the numbers; a re-derivation of rosinality's forward pass written here from its
equations (`rosinality_reference`, checked bit-exact against the fixture) covers what the fixture
does not: fused up-sampling blocks and non-zero mapping / AdaIN biases.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, NVLABS

from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.formats.checkpoint import W_AVG_KEY
from stylegan_sdk.importers.rosinality import is_torch_file
from stylegan_sdk.importers.rosinality.stylegan1 import import_checkpoint, import_state
from stylegan_sdk.models.stylegan1 import Generator, fused_upsample_kernel, upsample_nearest

ROS = FIXTURES / "rosinality-stylegan1" / "v1_32"
IMG_TOL = 1e-4
STEPS = [1, 3]
OUTPUTS = ["alpha1", "alpha030", "trunc070", "mix0to1", "mix2up", "zeronoise", "mix0to1_zeronoise"]


def report(what: str, err: float) -> None:
    print(f"PARITY rosinality v1_32 {what:32s} max_abs_err={err:.3e}")


def build(ckpt) -> Generator:
    """Our generator with a Checkpoint's weights (strict), eval mode, no gradients."""
    model = Generator(ckpt.config)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ckpt.tensors.items()}, strict=True)
    return model.eval().requires_grad_(False)


def repeat_per_layer(block_values: list[torch.Tensor]) -> list[torch.Tensor]:
    """rosinality's one-per-block noise -> our one-per-layer list (both layers of a block share it)."""
    return [v for v in block_values for _ in range(2)]


def block_ws(w: torch.Tensor, num_ws: int) -> torch.Tensor:
    return w.unsqueeze(1).repeat([1, num_ws, 1])


# ----------------------------------------------------------------------------
# An independent re-derivation of rosinality's StyledGenerator forward pass (float32 or float64)


def rosinality_reference(sd, zs, noise, step, alpha=-1.0, mean_style=None, style_weight=0.0, mixing_range=None,
                         dtype=torch.float32):
    t = {k: torch.as_tensor(v).to(dtype) for k, v in sd.items()}

    def eq(name):  # equalised lr: weight_orig * sqrt(2 / fan_in)
        w = t[name]
        return w * math.sqrt(2 / (w.shape[1] * w[0][0].numel()))

    styles = []
    for z in zs:
        x = z.to(dtype)
        x = x / torch.sqrt((x**2).mean(1, keepdim=True) + 1e-8)
        j = 1
        while f"style.{j}.linear.weight_orig" in t:
            x = F.leaky_relu(F.linear(x, eq(f"style.{j}.linear.weight_orig"), t[f"style.{j}.linear.bias"]), 0.2)
            j += 2
        styles.append(x)
    if mean_style is not None:
        styles = [mean_style.to(dtype) + style_weight * (s - mean_style.to(dtype)) for s in styles]
    blur_k = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=dtype) / 16

    def blur(x):
        return F.conv2d(x, blur_k[None, None].repeat(x.shape[1], 1, 1, 1), padding=1, groups=x.shape[1])

    def adain(x, p, s):
        gamma, beta = F.linear(s, eq(p + ".style.linear.weight_orig"), t[p + ".style.linear.bias"]).chunk(2, 1)
        return gamma[:, :, None, None] * F.instance_norm(x) + beta[:, :, None, None]

    out = prev = None
    for i in range(step + 1):
        p = f"generator.progression.{i}"
        s = styles[1] if mixing_range is not None and mixing_range[0] <= i <= mixing_range[1] else styles[0]
        n = noise[i].to(dtype)
        prev = out
        if i == 0:
            x = t[p + ".conv1.input"].repeat(s.shape[0], 1, 1, 1)
        elif p + ".conv1.0.weight" in t:  # fused: transposed conv with the 4 shifted copies averaged
            w = t[p + ".conv1.0.weight"]
            w = F.pad(w * math.sqrt(2 / (w.shape[0] * 9)), [1, 1, 1, 1])
            w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) / 4
            x = blur(F.conv_transpose2d(out, w, t[p + ".conv1.0.bias"], stride=2, padding=1))
        else:
            x = F.interpolate(out, scale_factor=2, mode="nearest")
            x = blur(F.conv2d(x, eq(p + ".conv1.1.conv.weight_orig"), t[p + ".conv1.1.conv.bias"], padding=1))
        x = adain(F.leaky_relu(x + eq(p + ".noise1.weight_orig") * n, 0.2), p + ".adain1", s)
        x = F.conv2d(x, eq(p + ".conv2.conv.weight_orig"), t[p + ".conv2.conv.bias"], padding=1)
        x = adain(F.leaky_relu(x + eq(p + ".noise2.weight_orig") * n, 0.2), p + ".adain2", s)
        out = x
    rgb = F.conv2d(out, eq(f"generator.to_rgb.{step}.conv.weight_orig"), t[f"generator.to_rgb.{step}.conv.bias"])
    if step > 0 and 0 <= alpha < 1:
        skip = F.conv2d(prev, eq(f"generator.to_rgb.{step - 1}.conv.weight_orig"),
                        t[f"generator.to_rgb.{step - 1}.conv.bias"])
        rgb = (1 - alpha) * F.interpolate(skip, scale_factor=2, mode="nearest") + alpha * rgb
    return rgb


def synthetic_rosinality_state(code_dim=16, n_mlp=3, channels=(16, 16, 12, 8), fused_from=2, img_channels=3,
                               seed=0) -> dict[str, torch.Tensor]:
    """A StyledGenerator-shaped state dict (rosinality's names), every weight and bias random."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    sd: dict[str, torch.Tensor] = {}
    for j in range(n_mlp):
        sd[f"style.{2 * j + 1}.linear.weight_orig"] = rnd(code_dim, code_dim)
        sd[f"style.{2 * j + 1}.linear.bias"] = rnd(code_dim, scale=0.2)
    blur = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    for i, c in enumerate(channels):
        p = f"generator.progression.{i}."
        if i == 0:
            sd[p + "conv1.input"] = rnd(1, c, 4, 4)
        elif i >= fused_from:
            sd[p + "conv1.0.weight"] = rnd(channels[i - 1], c, 3, 3)
            sd[p + "conv1.0.bias"] = rnd(c, scale=0.3)
            sd[p + "conv1.1.weight"] = blur.repeat(c, 1, 1, 1)[:, None]
            sd[p + "conv1.1.weight_flip"] = blur.repeat(c, 1, 1, 1)[:, None]
        else:
            sd[p + "conv1.1.conv.weight_orig"] = rnd(c, channels[i - 1], 3, 3)
            sd[p + "conv1.1.conv.bias"] = rnd(c, scale=0.3)
            sd[p + "conv1.2.weight"] = blur.repeat(c, 1, 1, 1)[:, None]
            sd[p + "conv1.2.weight_flip"] = blur.repeat(c, 1, 1, 1)[:, None]
        sd[p + "conv2.conv.weight_orig"] = rnd(c, c, 3, 3)
        sd[p + "conv2.conv.bias"] = rnd(c, scale=0.3)
        for k in (1, 2):
            sd[f"{p}noise{k}.weight_orig"] = rnd(1, c, 1, 1, scale=0.5)
            sd[f"{p}adain{k}.style.linear.weight_orig"] = rnd(2 * c, code_dim)
            sd[f"{p}adain{k}.style.linear.bias"] = torch.cat([torch.ones(c), torch.zeros(c)]) + rnd(2 * c, scale=0.2)
        sd[f"generator.to_rgb.{i}.conv.weight_orig"] = rnd(img_channels, c, 1, 1)
        sd[f"generator.to_rgb.{i}.conv.bias"] = rnd(img_channels, scale=0.2)
    return sd


# ----------------------------------------------------------------------------
# The fixture


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return dict(np.load(ROS / "reference.npz"))


@pytest.fixture(scope="module")
def models() -> dict[int, Generator]:
    """The fixture checkpoint imported at every step, as our generator."""
    return {step: build(import_checkpoint(ROS / "checkpoint.model", step=step)) for step in range(4)}


def fixture_case(G: Generator, ref: dict[str, np.ndarray], step: int, output: str):
    """(ws, noise, alpha) reproducing one fixture output with our per-layer interface."""
    w = G.mapping(torch.from_numpy(ref["z"]))
    w_mix = G.mapping(torch.from_numpy(ref["z_mix"]))
    ws, ws_mix = block_ws(w, G.num_ws), block_ws(w_mix, G.num_ws)
    noise = repeat_per_layer([torch.from_numpy(ref[f"noise_step{step}_{i}"]) for i in range(step + 1)])
    if output.endswith("zeronoise"):
        noise = [torch.zeros_like(n) for n in noise]
    alpha = 0.3 if output == "alpha030" else 1.0
    if output == "trunc070":
        G.mapping.w_avg.copy_(torch.from_numpy(ref["mean_style"][0]))
        ws = G.mapping.w_avg.lerp(ws, 0.7)
    elif output.startswith("mix0to1"):
        ws[:, 0:4] = ws_mix[:, 0:4]     # blocks 0..1 -> rows 0..3
    elif output == "mix2up":
        ws[:, 4:] = ws_mix[:, 4:]       # blocks 2..step -> rows 4..
    return ws, noise, alpha


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("step", STEPS)
def test_reproduces_rosinality_fixture(models, ref, step, output):
    G = copy.deepcopy(models[step])  # trunc070 sets w_avg
    ws, noise, alpha = fixture_case(G, ref, step, output)
    img = G.synthesis(ws, noise_mode="random", noise=noise, alpha=alpha).numpy()
    want = ref[f"img_step{step}_{output}"]
    err = float(np.abs(img - want).max())
    report(f"img_step{step}_{output}", err)
    assert img.shape == want.shape == (4, 3, 4 * 2**step, 4 * 2**step)
    assert err <= IMG_TOL


def test_reference_reimplementation_is_exact_on_fixture(ref):
    """The test's own rosinality re-derivation matches the fixture (so it can vouch for fused blocks)."""
    sd = torch.load(ROS / "checkpoint.model", map_location="cpu", weights_only=True)["g_running"]
    z, z_mix = torch.from_numpy(ref["z"]), torch.from_numpy(ref["z_mix"])
    noise = [torch.from_numpy(ref[f"noise_step3_{i}"]) for i in range(4)]
    out = {
        "alpha030": rosinality_reference(sd, [z], noise, 3, alpha=0.3),
        "trunc070": rosinality_reference(sd, [z], noise, 3, mean_style=torch.from_numpy(ref["mean_style"]),
                                         style_weight=0.7),
        "mix2up": rosinality_reference(sd, [z, z_mix], noise, 3, mixing_range=(2, 3)),
    }
    # float32 on a CPU other than the one that made the fixture: convolution kernels differ in summation
    # order (up to about 2e-5 here); still twice as tight as the model's own IMG_TOL.
    for name, img in out.items():
        assert float(np.abs(img.numpy() - ref[f"img_step3_{name}"]).max()) <= 5e-5, name


def test_zero_noise_equals_noise_mode_none(models, ref):
    G = models[3]
    ws, noise, _ = fixture_case(G, ref, 3, "zeronoise")
    a = G.synthesis(ws, noise_mode="random", noise=noise)
    b = G.synthesis(ws, noise_mode="none")
    assert float((a - b).abs().max()) <= 1e-6
    assert float(np.abs(b.numpy() - ref["img_step3_zeronoise"]).max()) <= IMG_TOL


def test_import_infers_config_and_metadata():
    ckpt = import_checkpoint(ROS / "checkpoint.model")
    cfg = ckpt.config
    spec = json.loads((ROS / "config.json").read_text())
    assert cfg.arch == "stylegan1" and cfg.z_dim == cfg.w_dim == spec["code_dim"] == 32
    assert cfg.mapping_layers == spec["n_mlp"] and cfg.mapping_lr_multiplier == 0.01
    assert list(cfg.channels) == spec["channels_per_block"]
    assert cfg.img_resolution == 32 and cfg.img_channels == 3 and cfg.num_ws == 8
    assert cfg.fused_upsample_from is None  # the fixture's 4 blocks are all below its fused block 5
    assert cfg.source["format"] == "rosinality-stylegan1" and cfg.source["step"] == 3
    assert ckpt.metadata["step"] == 3 and "RandomState(0)" in ckpt.metadata["w_avg"]
    assert ckpt.w_avg.shape == (32,) and ckpt.w_avg.dtype == np.float32
    # One noise image per rosinality block, shared by both layers.
    for res in cfg.block_resolutions:
        a, b = (ckpt.tensors[f"synthesis.b{res}.layer{i}.noise_const"] for i in (0, 1))
        assert a.shape == (res, res) and np.array_equal(a, b)
    # The other stored network loads too (the fixture saves the same weights under both keys).
    other = import_checkpoint(ROS / "checkpoint.model", key="generator", step=1)
    assert other.config.img_resolution == 8 and other.metadata["key"] == "generator"


def test_w_avg_is_mean_of_mapping_over_fixed_z():
    ckpt = import_checkpoint(ROS / "checkpoint.model", step=0)
    sd = torch.load(ROS / "checkpoint.model", map_location="cpu", weights_only=True)["g_running"]
    z = torch.from_numpy(np.random.RandomState(0).randn(10_000, 32))
    x = z / torch.sqrt((z**2).mean(1, keepdim=True) + 1e-8)
    for j in range(1, 16, 2):
        w = sd[f"style.{j}.linear.weight_orig"].double() * math.sqrt(2 / 32)
        x = F.leaky_relu(F.linear(x, w, sd[f"style.{j}.linear.bias"].double()), 0.2)
    assert np.abs(ckpt.w_avg - x.mean(0).numpy()).max() <= 1e-5


def test_imported_checkpoint_round_trips_through_our_format(tmp_path, models, ref):
    from stylegan_sdk.formats.checkpoint import load_checkpoint, save_checkpoint

    ckpt = import_checkpoint(ROS / "checkpoint.model")
    path = tmp_path / "v1.safetensors"
    save_checkpoint(path, ckpt.config, ckpt.tensors, ckpt.metadata)
    back = load_checkpoint(path)
    assert back.config == ckpt.config
    G = build(back)
    ws, noise, alpha = fixture_case(G, ref, 3, "alpha1")
    img = G.synthesis(ws, noise_mode="random", noise=noise, alpha=alpha).numpy()
    assert float(np.abs(img - ref["img_step3_alpha1"]).max()) <= IMG_TOL


# ----------------------------------------------------------------------------
# Fused up-sampling and every bias, on a synthetic rosinality network


def test_fused_kernel_equals_nearest_up_then_conv():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 6, 6, generator=g, dtype=torch.float64)
    w = torch.randn(7, 5, 3, 3, generator=g, dtype=torch.float64)
    a = F.conv2d(upsample_nearest(x), w, padding=1)
    b = F.conv_transpose2d(x, fused_upsample_kernel(w), stride=2, padding=1)
    assert a.shape == b.shape == (2, 7, 12, 12)
    assert float((a - b).abs().max()) <= 1e-12


def test_fused_flag_changes_only_the_computation():
    cfg = GeneratorConfig(arch="stylegan1", z_dim=8, w_dim=8, img_resolution=32, channels=(8, 8, 6, 4),
                          mapping_layers=2)
    fused_cfg = GeneratorConfig.from_dict({**cfg.to_dict(), "fused_upsample_from": 16})
    torch.manual_seed(0)
    a = Generator(cfg).eval()
    b = Generator(fused_cfg).eval()
    b.load_state_dict(a.state_dict())
    assert b.synthesis.b16.layer0.fused and not b.synthesis.b8.layer0.fused and not a.synthesis.b16.layer0.fused
    ws = torch.randn(3, a.num_ws, 8)
    with torch.no_grad():
        assert float((a.synthesis(ws) - b.synthesis(ws)).abs().max()) <= 1e-5


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A rosinality-shaped network with fused blocks 2-3 and random biases, saved like train.py does."""
    sd = synthetic_rosinality_state()
    path = tmp_path_factory.mktemp("ros") / "synthetic.model"
    torch.save({"generator": sd, "g_running": sd, "d_optimizer": {"state": {}, "param_groups": []}}, path)
    return sd, path


@pytest.mark.parametrize("case", ["alpha1", "alpha050", "mix1to2", "trunc070"])
@pytest.mark.parametrize("step", [1, 3])
def test_synthetic_fused_network_matches_reference(synthetic, step, case):
    sd, path = synthetic
    ckpt = import_checkpoint(path, step=step)
    assert ckpt.config.fused_upsample_from == (16 if step >= 2 else None)
    G = build(ckpt)
    g = torch.Generator().manual_seed(1)
    z, z2 = torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g)
    noise = [torch.randn(3, 1, 4 * 2**i, 4 * 2**i, generator=g) for i in range(step + 1)]
    ws, ws2 = block_ws(G.mapping(z), G.num_ws), block_ws(G.mapping(z2), G.num_ws)
    kw: dict = {}
    alpha = 1.0
    if case == "alpha050":
        alpha = kw["alpha"] = 0.5
    elif case == "mix1to2":
        kw = {"mixing_range": (1, 2)}
        ws[:, 2:6] = ws2[:, 2:6]
    elif case == "trunc070":
        mean = G.mapping(torch.randn(64, 16, generator=g)).mean(0)
        kw = {"mean_style": mean[None], "style_weight": 0.7}
        ws = mean.lerp(ws, 0.7)
    want = rosinality_reference(sd, [z, z2], noise, step, **kw)
    img = G.synthesis(ws, noise_mode="random", noise=repeat_per_layer(noise), alpha=alpha)
    err = float((img - want).abs().max())
    print(f"PARITY synthetic fused step{step} {case:10s} max_abs_err={err:.3e}")
    assert err <= IMG_TOL


def test_bare_state_dict_with_module_prefix(tmp_path, synthetic):
    sd, _ = synthetic
    path = tmp_path / "bare.pt"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    ckpt = import_checkpoint(path)
    assert ckpt.config.img_resolution == 32 and ckpt.metadata["key"] is None
    assert list(ckpt.config.channels) == [16, 16, 12, 8]


def test_legacy_torch_format_and_sniff(tmp_path, synthetic):
    """Checkpoints saved by torch < 1.6 are pickles, not zips: both read, and both are told from NVlabs pickles."""
    sd, zip_path = synthetic
    legacy = tmp_path / "legacy.model"
    torch.save({"g_running": sd}, legacy, _use_new_zipfile_serialization=False)
    assert import_checkpoint(legacy, step=2).config.img_resolution == 16
    assert is_torch_file(zip_path) and is_torch_file(legacy) and is_torch_file(ROS / "checkpoint.model")
    assert not is_torch_file(NVLABS / "sg2_skip_32" / "network-snapshot.pkl")
    assert not is_torch_file(NVLABS / "sg2_skip_32" / "G_state_dict.npz")  # a zip, but not torch's
    assert not is_torch_file(tmp_path / "missing.model")


# ----------------------------------------------------------------------------
# Structure: num_ws, fade-in, noise


@pytest.mark.parametrize("res,num_ws", [(8, 4), (32, 8), (1024, 18)])
def test_num_ws(res, num_ws):
    n_blocks = int(math.log2(res)) - 1
    cfg = GeneratorConfig(arch="stylegan1", z_dim=4, w_dim=4, img_resolution=res, channels=(2,) * n_blocks,
                          mapping_layers=1)
    assert cfg.num_ws == num_ws
    G = Generator(cfg)
    assert G.num_ws == G.synthesis.num_ws == num_ws
    assert len(cfg.noise_resolutions) == num_ws
    noise_shapes = [tuple(v.shape) for k, v in G.state_dict().items() if k.endswith("noise_const")]
    assert noise_shapes == [(r, r) for r in cfg.noise_resolutions]


def test_fade_in_blends_previous_stage(models, ref):
    """alpha=0: the previous stage's toRGB, nearest up-sampled; alpha=1: the new stage; between: the blend."""
    G3, G2 = models[3], models[2]
    ws, noise, _ = fixture_case(G3, ref, 3, "alpha1")
    a0 = G3.synthesis(ws, noise_mode="random", noise=noise, alpha=0.0)
    a1 = G3.synthesis(ws, noise_mode="random", noise=noise, alpha=1.0)
    prev = G2.synthesis(ws[:, :6], noise_mode="random", noise=noise[:6])
    assert float((a0 - upsample_nearest(prev)).abs().max()) <= 1e-5
    assert float((a1 - G3.synthesis(ws, noise_mode="random", noise=noise)).abs().max()) == 0
    assert float((a1 - upsample_nearest(prev)).abs().mean()) > 0.1
    a03 = G3.synthesis(ws, noise_mode="random", noise=noise, alpha=0.3)
    assert float((a03 - (0.7 * a0 + 0.3 * a1)).abs().max()) <= 1e-5


def test_noise_changes_only_fine_detail(models, ref):
    G = models[3]
    ws = block_ws(G.mapping(torch.from_numpy(ref["z"])), G.num_ws)
    g = torch.Generator().manual_seed(0)
    n1 = [torch.randn(4, 1, r, r, generator=g) for r in G.cfg.noise_resolutions]
    n2 = [torch.randn(4, 1, r, r, generator=g) for r in G.cfg.noise_resolutions]
    a = G.synthesis(ws, noise_mode="random", noise=n1)
    b = G.synthesis(ws, noise_mode="random", noise=n2)
    c = G.synthesis(ws.roll(1, dims=0), noise_mode="random", noise=n1)
    noise_change, z_change = float((a - b).abs().mean()), float((a - c).abs().mean())
    print(f"mean abs change: other noise {noise_change:.3f}, other z {z_change:.3f}")
    assert 0 < noise_change < 0.25 * z_change
    # "const" is the stored noise: deterministic, and different from no noise.
    assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
    assert not torch.allclose(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="none"))


@pytest.mark.parametrize("batch", [1, 3])
def test_random_init_forward_16px(batch):
    cfg = GeneratorConfig(arch="stylegan1", z_dim=32, w_dim=24, img_resolution=16, channel_base=512,
                          channel_max=32, mapping_layers=4)
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    assert [G.synthesis.b4.layer1.weight.shape[0], G.synthesis.b16.layer1.weight.shape[0]] == [32, 32]
    with torch.no_grad():
        z = torch.randn(batch, 32)
        for noise_mode in ("const", "random", "none"):
            img = G(z, noise_mode=noise_mode)
            assert img.shape == (batch, 3, 16, 16) and img.dtype == torch.float32
            assert bool(torch.isfinite(img).all())
        assert G(z, truncation_psi=0.5, alpha=0.5).shape == (batch, 3, 16, 16)
        with pytest.raises(ValueError, match="noise_mode"):
            G(z, noise_mode="loud")
    from stylegan_sdk.models import FAMILIES, build_generator

    if "stylegan1" in FAMILIES:  # once wired into the registry
        assert isinstance(build_generator(cfg), Generator)
    # Our format: weights, noise_const and w_avg only (the blur filter is not stored).
    keys = set(G.state_dict())
    assert "synthesis.b4.const" in keys and "synthesis.b8.layer0.weight" in keys and "mapping.w_avg" in keys
    assert "synthesis.b4.layer0.weight" not in keys and not any("blur" in k for k in keys)


def test_sdk_load(ref):
    """sg.load(rosinality file) -> the fixture's images, through the family registry and the loader."""
    import stylegan_sdk as sg
    from stylegan_sdk import loading
    from stylegan_sdk.models import FAMILIES

    assert "stylegan1" in FAMILIES
    assert loading.sniff(str(ROS / "checkpoint.model")) == "rosinality"
    G = sg.load(ROS / "checkpoint.model")
    assert G.info.arch == "stylegan1" and G.info.num_ws == 8
    img = G.synthesize(G.map(ref["z"]), noise_mode="none", output="float")
    err = float(np.abs(img - ref["img_step3_zeronoise"]).max())
    report("sg.load img_step3_zeronoise", err)
    assert err <= IMG_TOL


# ----------------------------------------------------------------------------
# Errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.model"
    with pytest.raises(FileNotFoundError, match="nope.model"):
        import_checkpoint(path)


@pytest.mark.parametrize("kind", ["text", "npz", "safetensors", "torch_dict", "torch_list", "folder"])
def test_not_a_rosinality_checkpoint(tmp_path, kind):
    path = tmp_path / f"x.{kind}"
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "npz":
        path = NVLABS / "sg2_skip_32" / "G_state_dict.npz"
    elif kind == "safetensors":
        from stylegan_sdk.formats.checkpoint import save_checkpoint

        save_checkpoint(path, GeneratorConfig(arch="stylegan1", img_resolution=8), {W_AVG_KEY: np.zeros(512)})
    elif kind == "torch_dict":
        torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, path)
    elif kind == "torch_list":
        torch.save([torch.zeros(2)], path)
    else:
        path.mkdir()
    with pytest.raises(ValueError, match="rosinality"):
        import_checkpoint(path)


def test_missing_tensors_are_named(tmp_path, synthetic):
    sd, _ = synthetic
    bad = {k: v for k, v in sd.items() if k != "generator.progression.2.conv2.conv.bias"}
    with pytest.raises(ValueError, match=r"missing tensors generator\.progression\.2\.conv2\.conv\.bias"):
        import_state(bad, "bad.model")
    # ... but a file cut after block 1 is fine at step 1.
    assert import_state(bad, "bad.model", step=1).config.img_resolution == 8
    wrong = {**sd, "generator.progression.1.conv2.conv.weight_orig": torch.zeros(16, 15, 3, 3)}
    with pytest.raises(ValueError, match=r"wrong shapes synthesis\.b8\.layer1\.weight"):
        import_state(wrong, "bad.model")
    no_mapping = {k: v for k, v in sd.items() if not k.startswith("style.")}
    with pytest.raises(ValueError, match="mapping"):
        import_state(no_mapping, "bad.model")


def test_unknown_key_and_bad_step(synthetic):
    _, path = synthetic
    with pytest.raises(ValueError, match="'ema'"):
        import_checkpoint(path, key="ema")
    for step in (4, -1, "2", True, 1.5):
        with pytest.raises(ValueError, match="step"):
            import_checkpoint(path, step=step)
