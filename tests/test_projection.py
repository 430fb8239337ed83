"""Projection (sg.project, stylegan project): NVIDIA's schedule and regulariser against their formulas, W / W+,
a batch equal to single runs, a generated target recovered, init, the three families and greyscale, NVIDIA's
projected_w.npz rendered as their generate.py does, refusals, the command line. Tiny random networks, CPU."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import stylegan_sdk as sg
from stylegan_sdk import cli
from stylegan_sdk.backends.base import Backend
from stylegan_sdk.backends.torch_backend import TorchBackend
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.models import build_generator
from stylegan_sdk.projection import losses, options, schedule
from stylegan_sdk.projection.project import (
    BF16_FROM_MACS,
    Projection,
    ProjectionUnavailable,
    auto_bf16,
    prepare_target,
    project,
    synthesis_macs,
    w_stats,
)
from tests.conftest import run_without_torch, stylegan_cli

# ----------------------------------------------------------------------------
# Tiny random networks whose images stay mostly inside [-1, 1] (so that uint8 targets are reachable)

SG2 = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)
FAMILIES = {
    "stylegan2": SG2,
    "greyscale": {**SG2, "img_channels": 1},
    "stylegan1": dict(arch="stylegan1", z_dim=8, w_dim=8, img_resolution=16, channels=(8, 8, 8), mapping_layers=2),
    "stylegan3": dict(arch="stylegan3", z_dim=8, w_dim=8, img_resolution=16, img_channels=3, mapping_layers=1,
                      channel_base=128, channel_max=8, num_layers=4, margin_size=4, conv_kernel=3),
    "conditional": {**SG2, "c_dim": 2},
}


def tiny_weights(**kw) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    cfg = GeneratorConfig(**kw)
    state = build_generator(cfg).state_dict()
    for name, value in state.items():
        if name.endswith("noise_strength"):
            value.fill_(0.3)        # the noise matters (it is 0 at initialisation)
        if "torgb.weight" in name:
            value.mul_(0.2)         # images mostly inside [-1, 1]
    return cfg, state


@pytest.fixture(scope="module")
def nets() -> dict[str, sg.Generator]:
    return {name: sg.Generator(TorchBackend(*tiny_weights(**kw))) for name, kw in FAMILIES.items()}


@pytest.fixture(scope="module")
def G(nets) -> sg.Generator:
    return nets["stylegan2"]


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(1, 2, 3))
    return 10 * np.log10(255**2 / np.maximum(mse, 1e-12))


# ----------------------------------------------------------------------------
# NVIDIA's projector.py, transcribed (stylegan2-ada-pytorch, the loop of project())


def nvidia_lr(step, num_steps, initial_learning_rate=0.1, lr_rampdown_length=0.25, lr_rampup_length=0.05):
    t = step / num_steps
    lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
    lr_ramp = 0.5 - 0.5 * np.cos(lr_ramp * np.pi)
    lr_ramp = lr_ramp * min(1.0, t / lr_rampup_length)
    return initial_learning_rate * lr_ramp


def nvidia_w_noise_scale(step, num_steps, w_std, initial_noise_factor=0.05, noise_ramp_length=0.75):
    t = step / num_steps
    return w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2


def nvidia_reg_loss(noise_bufs):
    reg_loss = 0.0
    for v in noise_bufs:
        noise = v[None, None, :, :]  # must be [1,1,H,W] for F.avg_pool2d()
        while True:
            reg_loss += (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg_loss += (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg_loss


@pytest.mark.parametrize("num_steps", [1, 7, 100, 1000])
def test_schedule_is_nvidias(num_steps):
    for step in range(num_steps):
        assert schedule.learning_rate(step, num_steps) == pytest.approx(nvidia_lr(step, num_steps), abs=1e-15)
        assert schedule.w_jitter(step, num_steps, 3.7) == pytest.approx(nvidia_w_noise_scale(step, num_steps, 3.7),
                                                                         abs=1e-15)
        assert schedule.NVIDIA.learning_rate(step, num_steps) == schedule.learning_rate(step, num_steps)
    # landmarks of 1000 steps: 0 at the start, half way up at 25, full from 50 to 750, half way down at 875
    lr = [schedule.learning_rate(s, 1000) for s in (0, 25, 50, 500, 750, 875, 999)]
    assert lr == pytest.approx([0.0, 0.05, 0.1, 0.1, 0.1, 0.05, 0.1 * (0.5 - 0.5 * np.cos(0.004 * np.pi))])
    assert schedule.w_jitter(750, 1000, 1.0) == 0.0 and schedule.w_jitter(0, 1000, 2.0) == pytest.approx(0.1)


def test_noise_regulariser_is_nvidias_per_image():
    g = torch.Generator().manual_seed(0)
    resolutions = [4, 8, 8, 16, 16, 32]
    images = [[torch.randn(r, r, generator=g) for r in resolutions] for _ in range(3)]
    batch = [torch.stack([img[k] for img in images])[:, None] for k in range(len(resolutions))]   # [3, 1, r, r]
    got = schedule.noise_regularization(batch)
    assert got.shape == (3,)
    for i in range(3):
        assert float(got[i]) == pytest.approx(float(nvidia_reg_loss(images[i])), rel=1e-5)
    # smooth noise is penalised far more than white noise
    smooth = [F.interpolate(n[:, :, ::4, ::4], scale_factor=4) if n.shape[2] >= 8 else n for n in batch]
    assert float(schedule.noise_regularization(smooth).min()) > 10 * float(got.max())
    # renormalisation: per image zero mean, unit variance (NVIDIA's per buffer)
    scaled = [(n * torch.arange(1.0, 4.0).reshape(3, 1, 1, 1) + 2).clone() for n in batch]
    schedule.renormalize_noise(scaled)
    for n in scaled:
        assert torch.allclose(n.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
        assert torch.allclose(n.square().mean(dim=(1, 2, 3)), torch.ones(3), atol=1e-5)
        assert torch.allclose(n[0], scaled[0][0] if n is scaled[0] else n[0])


# ----------------------------------------------------------------------------
# The optimisation


def test_w_space_keeps_every_row_equal_and_w_plus_does_not(G):
    targets = G.generate([3, 4], output="uint8")
    p = project(G, targets, space="w", steps=12, loss="mse")
    assert isinstance(p, Projection) and p.ws.dtype == np.float32 and p.ws.shape == (2, G.config.num_ws, 8)
    assert np.array_equal(p.ws, np.repeat(p.ws[:, :1], G.config.num_ws, axis=1))
    assert p.losses.shape == (12, 2) and p.images.shape == (2, 16, 16, 3) and p.images.dtype == np.uint8
    assert (p.space, p.steps, p.seed, p.loss, p.stopped) == ("w", 12, 0, "mse", False)
    assert np.array_equal(p.targets, targets)
    q = project(G, targets, space="w+", steps=12, loss="mse")
    assert q.space == "w+" and not np.allclose(q.ws, q.ws[:, :1])


def test_a_batch_equals_single_runs_with_the_same_seeds(G):
    """In float32 (the default for networks this small; bf16 autocast rounds differently with the batch)."""
    targets = G.generate([5, 6], output="uint8")
    kw = dict(space="w+", steps=25, loss="mse", autocast=None)
    assert not auto_bf16(G.config, torch.device("cpu"))
    both = project(G, targets, seed=11, **kw)
    one = project(G, targets[0], seed=11, **kw)
    two = project(G, targets[1], seed=12, **kw)
    np.testing.assert_allclose(both.ws, np.concatenate([one.ws, two.ws]), atol=1e-5)
    np.testing.assert_allclose(both.losses, np.concatenate([one.losses, two.losses], axis=1), rtol=1e-4, atol=1e-6)
    for k in range(len(both.noise)):
        np.testing.assert_allclose(both.noise[k], np.concatenate([one.noise[k], two.noise[k]]), atol=1e-5)
    # another seed is another run
    assert not np.allclose(project(G, targets[0], seed=12, **kw).ws, one.ws, atol=1e-5)


def test_a_generated_target_is_recovered(G):
    """W+, mse, 300 steps, the constant noise the targets were made with: PSNR of the projections against their
    targets measured 47.8 / 42.9 / 60.1 dB (from 18.0 / 16.7 / 19.6 dB at the mean w); the test asks for 35 dB."""
    targets = G.generate([1, 2, 3], output="uint8")
    p = project(G, targets, space="w+", steps=300, loss="mse", optimize_noise=False, seed=0)
    start = project(G, targets, steps=1, loss="mse", optimize_noise=False)
    assert psnr(p.images, targets).min() > 35, psnr(p.images, targets)
    assert psnr(start.images, targets).max() < 22
    assert (p.losses[-1] < p.losses[0] / 100).all()


def test_init_is_where_the_run_starts_and_the_default_is_nvidias_mean_w(G):
    target = G.generate(7, output="uint8")
    # step 0 has learning rate 0 (NVIDIA's ramp-up): one step leaves the start as it was
    p = project(G, target, steps=1, loss="mse")
    z = np.random.RandomState(123).randn(10_000, 8)
    w_avg = G.backend.model.mapping(torch.from_numpy(z).float()).numpy().mean(axis=0)
    np.testing.assert_allclose(p.ws[0], np.broadcast_to(w_avg, (G.config.num_ws, 8)), atol=1e-5)
    ws0 = G.map(sg.seed_to_z([9], 8)) + np.linspace(0, 0.5, G.config.num_ws)[None, :, None].astype(np.float32)
    np.testing.assert_array_equal(project(G, target, space="w+", steps=1, loss="mse", init=ws0).ws, ws0)
    # one init [num_ws, w_dim] serves every target; a W init continues in W
    flat = G.map(sg.seed_to_z([9], 8))[0]
    q = project(G, [target, target], steps=1, loss="mse", init=flat)
    np.testing.assert_array_equal(q.ws, np.stack([flat, flat]))
    # an earlier projection's result is a start (a second run from the first's end moves little)
    first = project(G, target, space="w+", steps=60, loss="mse", optimize_noise=False)
    again = project(G, target, space="w+", steps=60, loss="mse", optimize_noise=False, init=first.ws)
    assert again.losses[0, 0] < first.losses[0, 0] / 5


def test_w_stats_are_computed_once_per_model(G):
    mapping = G.backend.model.mapping
    a = w_stats(mapping, 8, 0, torch.device("cpu"))
    b = w_stats(mapping, 8, 0, torch.device("cpu"))
    assert a[0] is b[0] and a[1] == b[1] and a[1] > 0
    other = sg.Generator(TorchBackend(*tiny_weights(**SG2)))   # same weights, another model: its own entry
    c = w_stats(other.backend.model.mapping, 8, 0, torch.device("cpu"))
    assert c[0] is not a[0] and torch.equal(c[0], a[0])
    with torch.no_grad():
        other.backend.model.mapping.fc0.bias += 1   # weights changed in place: computed again
    d = w_stats(other.backend.model.mapping, 8, 0, torch.device("cpu"))
    assert not torch.equal(d[0], a[0])


@pytest.mark.parametrize("family", ["stylegan1", "stylegan3", "greyscale", "conditional"])
def test_every_family_projects(nets, family):
    G = nets[family]
    c = [0, 1] if G.config.c_dim else None
    targets = G.generate([1, 2], c=c, output="uint8")
    p = project(G, targets, space="w+", steps=40, loss="mse")
    assert p.ws.shape == (2, G.config.num_ws, G.config.w_dim) and np.isfinite(p.ws).all()
    assert p.images.shape == targets.shape == (2, 16, 16, G.config.img_channels)
    assert (p.losses[-1] < p.losses[0]).all()
    if family == "stylegan3":
        assert p.noise is None     # no noise inputs
        moved = np.array([[1, 0, 0.25], [0, 1, 0], [0, 0, 1]], np.float32)
        q = project(G, targets, steps=3, loss="mse", transform=moved)
        np.testing.assert_array_equal(q.images, G.synthesize(q.ws, output="uint8", transform=moved))
    else:
        assert [n.shape for n in p.noise] == [(2, 1, r, r) for r in G.config.noise_resolutions]


def test_bf16_autocast_is_for_big_networks_on_cpus_with_bf16(G, monkeypatch):
    big = GeneratorConfig(img_resolution=64, channel_base=8192, channel_max=256)
    assert synthesis_macs(big) == sum(r * r * 9 * big.channels_at(r) * (big.channels_at(r) + (
        big.channels_at(r // 2) if r > 4 else 0)) for r in big.block_resolutions) > BF16_FROM_MACS
    small = sg.load("default", backend="torch").config
    assert synthesis_macs(small) < BF16_FROM_MACS
    import stylegan_sdk.projection.project as module
    monkeypatch.setattr(module, "cpu_has_bf16", lambda: True)
    assert auto_bf16(big, torch.device("cpu")) and not auto_bf16(small, torch.device("cpu"))
    assert not auto_bf16(GeneratorConfig(**FAMILIES["stylegan3"]), torch.device("cpu"))
    monkeypatch.setattr(module, "cpu_has_bf16", lambda: False)
    assert not auto_bf16(big, torch.device("cpu"))
    # forced on, it runs (emulated where the CPU lacks bf16) and gets about the float32 losses
    target = G.generate(1, output="uint8")
    a = project(G, target, steps=15, loss="mse", autocast=True)
    b = project(G, target, steps=15, loss="mse", autocast=False)
    np.testing.assert_allclose(a.losses, b.losses, rtol=0.1, atol=1e-3)


def test_progress_stop_and_history(G):
    target = G.generate(1, output="uint8")
    seen = []
    p = project(G, [target, target], steps=10, loss="mse", progress=lambda s, n, d: seen.append((s, n, d)),
                should_stop=lambda: len(seen) >= 4, keep_every=2)
    assert [s for s, _, _ in seen] == [1, 2, 3, 4] and all(n == 10 and d.shape == (2,) for _, n, d in seen)
    assert p.stopped and p.steps == 4 and p.losses.shape == (4, 2)
    np.testing.assert_array_equal(seen[-1][2], p.losses[-1])
    assert p.history_steps == (2, 4) and p.history.shape == (2, 2, G.config.num_ws, 8)
    np.testing.assert_array_equal(p.history[-1], p.ws)


def test_targets_are_cropped_and_resized_as_nvidias():
    rng = np.random.RandomState(0)
    wide = rng.randint(0, 256, (30, 50, 3), dtype=np.uint8)
    # projector.py: convert('RGB'), centre crop to the shorter side, LANCZOS resize
    pil = Image.fromarray(wide).convert("RGB")
    w, h = pil.size
    s = min(w, h)
    pil = pil.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((16, 16), Image.LANCZOS)
    np.testing.assert_array_equal(prepare_target(wide, 16, 3), np.asarray(pil))
    np.testing.assert_array_equal(prepare_target(Image.fromarray(wide), 16, 3), np.asarray(pil))
    grey = prepare_target(wide, 16, 1)
    assert grey.shape == (16, 16, 1)
    np.testing.assert_array_equal(grey[:, :, 0], np.asarray(Image.fromarray(wide).convert("L").crop(
        ((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((16, 16), Image.LANCZOS)))
    rgba = np.dstack([wide, np.full((30, 50), 7, np.uint8)])
    np.testing.assert_array_equal(prepare_target(rgba, 16, 3), np.asarray(pil))   # alpha dropped


# ----------------------------------------------------------------------------
# NVIDIA's projected_w.npz


def nvidia_generate(model, npz_path, num_ws, w_dim):
    """generate.py --projected-w, transcribed (noise_mode 'const', its default)."""
    ws = np.load(npz_path)["w"]
    ws = torch.tensor(ws)
    assert ws.shape[1:] == (num_ws, w_dim)
    out = []
    for w in ws:
        img = model.synthesis(w.unsqueeze(0), noise_mode="const")
        img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        out.append(img[0].numpy())
    return np.stack(out)


@pytest.mark.parametrize("optimize_noise", [False, True])
def test_projected_w_npz_renders_proj_png_with_nvidias_generate(G, tmp_path, optimize_noise):
    targets = G.generate([2, 3], output="uint8")
    p = project(G, targets, space="w+", steps=20, loss="mse", optimize_noise=optimize_noise)
    for i in range(2):
        path = tmp_path / f"projected_w{i}.npz"
        p.save_npz(path, i)
        with np.load(path) as f:
            assert f.files == ["w"] and f["w"].dtype == np.float32 and f["w"].shape == (1, G.config.num_ws, 8)
            np.testing.assert_array_equal(f["w"][0], p.ws[i])
        np.testing.assert_array_equal(options.load_projected_w(path), p.ws[i: i + 1])
        rendered = nvidia_generate(G.backend.model, path, G.config.num_ws, 8)
        np.testing.assert_array_equal(rendered[0], p.images[i])
        np.testing.assert_array_equal(G.synthesize(options.load_projected_w(path), output="uint8")[0], p.images[i])
    if optimize_noise:
        # proj.png is the constant-noise picture (as NVIDIA's); the optimised noise, kept apart, gives another
        with_noise = sg.images.to_uint8(G.backend.synthesize(p.ws, "random", p.noise))
        assert not np.array_equal(with_noise, p.images)
    else:
        assert p.noise is None
    with pytest.raises(ValueError, match="^i:"):
        p.save_npz(tmp_path / "x.npz", 2)


# ----------------------------------------------------------------------------
# Refusals


class OtherBackend(Backend):
    name = "onnxruntime"

    def map(self, z, c):
        raise AssertionError("not called")

    def synthesize(self, ws, noise_mode, noise, transform=None):
        raise AssertionError("not called")


def test_a_model_that_cannot_differentiate_is_refused(G):
    other = sg.Generator(OtherBackend(G.config, G.w_avg, "cpu"))
    with pytest.raises(ProjectionUnavailable, match="projection needs a model the torch backend runs .*; onnxruntime "
                                                    "cannot differentiate"):
        project(other, np.zeros((16, 16, 3), np.uint8), loss="mse")
    assert issubclass(ProjectionUnavailable, ValueError) and sg.ProjectionUnavailable is ProjectionUnavailable
    with pytest.raises(ValueError, match="^G: expected a Generator"):
        project(G.backend, np.zeros((16, 16, 3), np.uint8), loss="mse")


@pytest.mark.parametrize("kwargs, message", [
    (dict(space="z"), "^space: must be one of"),
    (dict(steps=0), r"^steps: must be an int in 1\.\.100000"),
    (dict(steps=100_001), "^steps:"),
    (dict(steps=10.0), "^steps:"),
    (dict(steps=True), "^steps:"),
    (dict(loss="l2"), "^loss:"),
    (dict(loss=None), "^loss:"),
    (dict(seed=-1), "^seed:"),
    (dict(seed=2**32 - 1), r"^seed: .*2\*\*32 - 2"),
    (dict(images=np.zeros((16, 16, 3), np.float32)), "^images.*: expected uint8 pixels"),
    (dict(images=np.zeros((16, 16, 2), np.uint8)), "^images.*: expected an image"),
    (dict(images=np.zeros((0, 16, 3), np.uint8)), "^images.*: expected an image"),
    (dict(images="face.png"), "^images: expected PIL images or uint8 arrays"),
    (dict(images=[]), "^images: no targets"),
    (dict(init=np.zeros((3, 8), np.float32)), r"^init: expected \[N, 6, 8\]"),
    (dict(init=np.zeros((3, 6, 8), np.float32)), "^init: expected ws for 1 or 2 targets"),
    (dict(init=np.arange(48, dtype=np.float32).reshape(6, 8)), "^init: space 'w' optimises one w"),
    (dict(init=np.full((6, 8), np.nan, np.float32)), "^init: contains NaN"),
    (dict(transform=np.array([[1, 0, 0.2], [0, 1, 0], [0, 0, 1]])), "^transform: this model"),
    (dict(keep_every=-1), "^keep_every:"),
    (dict(progress="yes"), "^progress:"),
])
def test_bad_arguments_are_refused(G, kwargs, message):
    args = {**dict(images=np.zeros((2, 16, 16, 3), np.uint8), loss="mse", steps=3), **kwargs}
    with pytest.raises(ValueError, match=message):
        project(G, args.pop("images"), **args)


# ----------------------------------------------------------------------------
# The command line


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    cfg, state = tiny_weights(**SG2)
    sg.save_checkpoint(path, cfg, {k: v.numpy() for k, v in state.items()})
    return path


@pytest.fixture(scope="module")
def target_files(tmp_path_factory, model_file):
    folder = tmp_path_factory.mktemp("targets")
    G = sg.load(model_file, backend="torch")
    paths = []
    for seed in (1, 2):
        path = folder / f"face{seed}.png"
        G.generate(seed).resize((24, 20)).save(path)
        paths.append(path)
    return paths


def test_cli_one_target_keeps_nvidias_file_names(capsys, tmp_path, model_file, target_files):
    out = tmp_path / "out"
    code, stdout, stderr = stylegan_cli(capsys, "project", "--model", model_file, "--target", target_files[0],
                                        "--out", out, "--steps", 30, "--loss", "mse", "--video")
    assert code == 0, stderr
    assert sorted(f.name for f in out.iterdir()) == ["proj.gif", "proj.png", "projected_w.npz", "target.png"]
    assert "loss mse" in stderr and "step 30/30 (100%)" in stderr and "it/s" in stderr and "loss 0." in stderr
    assert "wrote target.png, proj.png, projected_w.npz, proj.gif" in stdout and "mse loss, space W, 30 steps" in stdout
    G = sg.load(model_file, backend="torch")
    proj = np.asarray(Image.open(out / "proj.png"))
    np.testing.assert_array_equal(nvidia_generate(G.backend.model, out / "projected_w.npz", 6, 8)[0], proj)
    target = np.asarray(Image.open(out / "target.png"))
    np.testing.assert_array_equal(target, prepare_target(Image.open(target_files[0]), 16, 3))
    with Image.open(out / "proj.gif") as gif:
        assert gif.n_frames == 30 and gif.size == (32, 16)


def test_cli_several_targets_get_a_folder_each(capsys, tmp_path, model_file, target_files):
    out = tmp_path / "out"
    code, stdout, stderr = stylegan_cli(capsys, "project", "--model", model_file, "--target", *target_files,
                                        "--out", out, "--steps", 5, "--loss", "mse", "--space", "w+", "--no-noise",
                                        "--seed", 3)
    assert code == 0, stderr
    assert sorted(f.name for f in out.iterdir()) == ["face1", "face2"]
    for name in ("face1", "face2"):
        assert sorted(f.name for f in (out / name).iterdir()) == ["proj.png", "projected_w.npz", "target.png"]
    # the second target's run is the single run with seed + 1; --init continues from a file
    code, _, stderr = stylegan_cli(capsys, "project", "--model", model_file, "--target", target_files[1], "--out",
                                   tmp_path / "single", "--steps", 5, "--loss", "mse", "--space", "w+",
                                   "--no-noise", "--seed", 4)
    assert code == 0, stderr
    np.testing.assert_allclose(options.load_projected_w(tmp_path / "single" / "projected_w.npz"),
                               options.load_projected_w(out / "face2" / "projected_w.npz"), atol=1e-5)
    code, _, stderr = stylegan_cli(capsys, "project", "--model", model_file, "--target", target_files[1], "--out",
                                   tmp_path / "more", "--steps", 1, "--loss", "mse", "--space", "w+",
                                   "--init", out / "face2" / "projected_w.npz")
    assert code == 0, stderr
    np.testing.assert_array_equal(options.load_projected_w(tmp_path / "more" / "projected_w.npz"),
                                  options.load_projected_w(out / "face2" / "projected_w.npz"))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (and whose pixels are missing)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_cli_errors_are_one_line_and_write_nothing(capsys, tmp_path, model_file, target_files):
    (tmp_path / "big.png").write_bytes(png_header(9000, 9000))
    (tmp_path / "bomb.png").write_bytes(png_header(20000, 20000))
    (tmp_path / "text.png").write_text("not an image")
    other = tmp_path / "other"
    other.mkdir()
    Image.open(target_files[0]).save(other / "face1.png")
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    out = tmp_path / "out"
    base = ["project", "--model", model_file, "--out", out, "--loss", "mse"]
    cases = [
        (["--target", tmp_path / "none.png"], "--target: no such image file"),
        (["--target", tmp_path / "big.png"], "--target: .* is 9000x9000 pixels, more than 8192x8192"),
        (["--target", tmp_path / "bomb.png"], "--target: .*(more pixels than|more than) 8192x8192"),
        (["--target", tmp_path / "text.png"], "--target: .* is not an image file"),
        (["--target", target_files[0], other / "face1.png"], "--target: .* would both write to <out>/face1/"),
        (["--target", target_files[0], "--space", "z"], "argument --space: invalid choice"),
        (["--target", target_files[0], "--steps", 0], r"--steps: must be an int in 1\.\.100000"),
        (["--target", target_files[0], "--steps", 100_001], "--steps:"),
        (["--target", target_files[0], "--seed", -1], "--seed:"),
        (["--target", target_files[0], "--init", tmp_path / "bad.npz"], "--init: .* has no array 'w'"),
        (["--target", target_files[0], "--init", tmp_path / "none.npz"], "--init: no such file"),
        (["--target", target_files[0], "--loss", "lpips-vgg16"], "--vgg16-weights: the lpips-vgg16 loss needs"),
    ]
    for extra, message in cases:
        code, stdout, stderr = stylegan_cli(capsys, *base, *extra)
        assert code == 2, (extra, stderr)
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("stylegan project: error: "), stderr
        assert __import__("re").search(message, stderr), (message, stderr)
        assert not out.exists()
    exported = sg.loading.DEFAULT_EXPORT
    code, _, stderr = stylegan_cli(capsys, "project", "--model", exported, "--target", target_files[0], "--out", out)
    assert code == 2 and "projection needs a model the torch backend runs" in stderr
    assert "cannot differentiate" in stderr
    assert not out.exists()


def test_cli_choices_are_the_librarys():
    assert cli.PROJECTION_LOSSES == losses.LOSSES
    assert options.SPACES == ("w", "w+") and options.MAX_STEPS == 100_000


def test_import_stays_torch_free_and_the_command_says_what_to_install(tmp_path, model_file, target_files):
    out = tmp_path / "out"
    run = run_without_torch(
        "import sys, stylegan_sdk as sg, stylegan_sdk.cli\n"
        "from stylegan_sdk.projection import options\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n    sg.project\nexcept ImportError:\n    print('no project without torch')\n"
        f"sys.exit(stylegan_sdk.cli.main(['project', '--model', {str(model_file)!r}, '--target', "
        f"{str(target_files[0])!r}, '--out', {str(out)!r}, '--loss', 'mse']))\n")
    assert run.returncode == 2, run.stderr
    assert "no project without torch" in run.stdout
    assert run.stderr.startswith("stylegan project: error: torch") and "blocked" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not out.exists()


def test_cli_help_shows_the_defaults(capsys):
    code, stdout, _ = stylegan_cli(capsys, "project", "--help")
    text = " ".join(stdout.split())
    assert code == 0
    for option, default in (("--space {w,w+}", "w"), ("--steps STEPS", "1000"), ("--loss {lpips,lpips-vgg16,mse}",
                                                                                  "lpips"), ("--device DEVICE", "cpu")):
        after = text.split("options:", 1)[1].split(option + " ", 1)[1]
        assert f"(default: {default})" in after.split(" --")[0], (option, after[:200])
    assert "default 0" in text and "(default: None)" not in text and "(default: False)" not in text
    code, stdout, _ = stylegan_cli(capsys, "--help")
    assert "project" in stdout
