"""Training pieces with known answers: minibatch stddev, R1, path length, mixing, schedules, state files."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `training` lives at the repo root, beside the package
    sys.path.insert(0, str(REPO))

from stylegan_sdk.config import GeneratorConfig  # noqa: E402
from stylegan_sdk.models import build_generator  # noqa: E402
from training.augment import AdaptiveP, AugmentPipe  # noqa: E402
from training.loop import Stats, progressive_stage, stage_checkpoint_config, stage_tensors  # noqa: E402
from training.losses import GenInputs, StyleGANLoss, draw_gen_inputs, draw_mixing_cutoff, progressive_reals  # noqa: E402
from training.networks_d import Discriminator, MinibatchStdLayer, ProgressiveDiscriminator  # noqa: E402
from training.presets import TrainingOptions, preset_values, resolve_options  # noqa: E402
from training.state import (  # noqa: E402
    StateError,
    TrainState,
    latest_state,
    load_training_state,
    optimizer_from_flat,
    optimizer_to_flat,
    prune_states,
    save_training_state,
    state_filename,
)

# ----------------------------------------------------------------------------
# Discriminators


def test_minibatch_std_groups_are_consecutive_samples():
    x = torch.zeros([4, 2, 3, 3])
    x[0], x[1] = 1.0, 3.0          # group {0, 1}: stddev 1 everywhere
    x[2], x[3] = 5.0, 5.0          # group {2, 3}: stddev 0
    y = MinibatchStdLayer(group_size=2)(x)
    assert y.shape == (4, 3, 3, 3)
    assert torch.allclose(y[:2, 2], torch.ones(2, 3, 3), atol=1e-6)
    assert torch.allclose(y[2:, 2], torch.full((2, 3, 3), math.sqrt(1e-8)), atol=1e-6)
    assert torch.equal(y[:, :2], x)
    # A batch the group does not divide uses the largest divisor (6 with group 4 -> groups of 3).
    assert MinibatchStdLayer(group_size=4)(torch.randn(6, 2, 3, 3)).shape == (6, 3, 3, 3)


def test_gen_inputs_label_groups():
    labels = torch.eye(5)[torch.arange(40) % 5]                      # [40, 5] one-hot, 5 classes
    gen = draw_gen_inputs(torch.Generator().manual_seed(0), 24, 8, labels, [4], label_group=4)
    cls = gen.c.argmax(1).reshape(6, 4)
    assert torch.equal(cls, cls[:, :1].expand(6, 4)) and len(set(cls[:, 0].tolist())) > 1
    assert len(set(gen.z[:, 0].tolist())) == 24                         # latents stay one per sample
    free = draw_gen_inputs(torch.Generator().manual_seed(0), 24, 8, labels, [4])
    assert any(len(set(g.tolist())) > 1 for g in free.c.argmax(1).reshape(6, 4))


@pytest.mark.parametrize("arch", ["resnet", "orig", "skip"])
def test_stylegan2_discriminator(arch):
    torch.manual_seed(0)
    D = Discriminator(c_dim=3, img_resolution=16, img_channels=1, architecture=arch, channel_base=256,
                      channel_max=16)
    assert "b16.conv0.weight" in dict(D.named_parameters()) and "b4.fc.weight" in dict(D.named_parameters())
    out = D(torch.randn(4, 1, 16, 16), torch.eye(3)[[0, 1, 2, 0]])
    assert out.shape == (4, 1) and torch.isfinite(out).all()
    if arch == "resnet":
        assert "b8.skip.weight" in dict(D.named_parameters())


def test_progressive_discriminator_fade_in():
    torch.manual_seed(0)
    D = ProgressiveDiscriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    img = torch.randn(4, 3, 8, 8)
    low = torch.nn.functional.avg_pool2d(img, 2)
    # alpha 0 at 8x8 = the 4x4 stage on the box-down-sampled image; alpha 1 ignores that path.
    assert torch.allclose(D(img, resolution=8, alpha=0.0), D(low, resolution=4), atol=1e-5)
    a1 = D(img, resolution=8, alpha=1.0)
    a5 = D(img, resolution=8, alpha=0.5)
    assert not torch.allclose(a1, a5)
    assert D(torch.randn(4, 3, 16, 16)).shape == (4, 1)


# ----------------------------------------------------------------------------
# Loss terms against closed forms


class _LinearD(torch.nn.Module):
    """D(x) = <a, x> per sample: grad_x D = a, so R1 = |a|^2."""

    def __init__(self, shape):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(shape))

    def forward(self, img, c):
        return (img * self.a).flatten(1).sum(1, keepdim=True)


class _SumG(torch.nn.Module):
    """mapping = identity on z; synthesis(ws) = scale * sum over rows of ws, reshaped to an image."""

    def __init__(self, num_ws, shape, scale):
        super().__init__()
        self.num_ws, self.shape, self.scale = num_ws, shape, scale
        w_dim = int(np.prod(shape))
        self.mapping = SimpleNamespace(w_avg=torch.zeros(w_dim), w_avg_beta=0.5, z_dim=w_dim, c_dim=0)
        self.cfg = SimpleNamespace(noise_resolutions=[])
        self.last_ws = None

    def synthesis(self, ws, noise_mode="random", noise=None):
        self.last_ws = ws
        return self.scale * ws.sum(1).reshape(ws.shape[0], *self.shape)


def _sum_g(num_ws=3, shape=(1, 2, 2), scale=2.0):
    G = _SumG(num_ws, shape, scale)
    G.mapping = _Mapping(G.mapping)
    return G


class _Mapping(torch.nn.Module):
    def __init__(self, ns):
        super().__init__()
        self.register_buffer("w_avg", ns.w_avg)
        self.one = torch.nn.Parameter(torch.ones([]))       # a weight, so that ws is part of the graph
        self.w_avg_beta, self.z_dim, self.c_dim = ns.w_avg_beta, ns.z_dim, ns.c_dim

    def forward(self, z, c):
        return z * self.one


def _inputs(n, w_dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    return GenInputs(torch.randn(n, w_dim, generator=g), torch.zeros(n, 0), torch.randn(n, w_dim, generator=g), [])


def test_r1_penalty_is_squared_gradient_norm():
    torch.manual_seed(0)
    D = _LinearD([1, 3, 4, 4])
    stats = Stats()
    loss = StyleGANLoss(_sum_g(), D, r1_gamma=10.0, report=stats.report)
    D.requires_grad_(True)
    loss.accumulate_D(torch.randn(5, 3, 4, 4), torch.zeros(5, 0), None, 3, 3, gain=1.0, do_main=False, do_r1=True)
    means = stats.means(1)
    assert means["Loss/r1_penalty"] == pytest.approx(float(D.a.detach().square().sum()), rel=1e-5)
    # d/da of gamma/2 |a|^2 = gamma * a (the R1 gradient reaches D's weights).
    assert torch.allclose(D.a.grad, 10.0 * D.a, rtol=1e-5)


def test_logistic_losses_match_softplus():
    torch.manual_seed(0)
    G, D = _sum_g(num_ws=2, shape=(1, 2, 2)), _LinearD([1, 1, 2, 2])
    stats = Stats()
    loss = StyleGANLoss(G, D, r1_gamma=0.0, report=stats.report)
    real = torch.randn(4, 1, 2, 2)
    g = _inputs(4, 4)
    loss.accumulate_D(real, torch.zeros(4, 0), g, 2, 2, gain=1.0, do_main=True, do_r1=False)
    fake = 2.0 * 2 * g.z.reshape(4, 1, 2, 2)            # two ws rows, both w = z, times scale 2
    d_fake, d_real = D(fake, None), D(real, None)
    want = (torch.nn.functional.softplus(d_fake) + torch.nn.functional.softplus(-d_real)).mean()
    assert stats.means(1)["Loss/D/loss"] == pytest.approx(float(want.detach()), rel=1e-5)


def test_path_length_of_a_linear_generator():
    """synthesis = s * sum_i ws_i: J^T y = s * y for every row, so the path length is s |y|."""
    G, D = _sum_g(num_ws=3, shape=(1, 2, 2), scale=2.0), _LinearD([1, 1, 2, 2])
    stats = Stats()
    loss = StyleGANLoss(G, D, pl_weight=1.0, pl_decay=0.25, report=stats.report)
    y = torch.randn(6, 1, 2, 2)
    pl_len = 2.0 * y.flatten(1).norm(dim=1)
    loss.accumulate_G_pl(_inputs(6, 4), y, cutoff=3, num_ws=3, gain=1.0)
    mean = 0.25 * pl_len.mean()                        # lerp(0, batch mean, decay)
    assert float(loss.pl_mean) == pytest.approx(float(mean), rel=1e-5)
    assert stats.means(1)["Loss/pl_penalty"] == pytest.approx(float((pl_len - mean).square().mean()), rel=1e-5)


def test_style_mixing_and_w_avg_tracking():
    G = _sum_g(num_ws=4, shape=(1, 2, 2))
    loss = StyleGANLoss(G, _LinearD([1, 1, 2, 2]))
    g = _inputs(3, 4)
    loss.run_G(g, cutoff=1, num_ws=4)
    ws = G.last_ws
    assert torch.equal(ws[:, 0], g.z) and all(torch.equal(ws[:, i], g.z_mix) for i in (1, 2, 3))
    loss.run_G(g.narrow(0, 2), cutoff=1, num_ws=4)             # a second micro-batch of the same phase
    loss.finish_phase()                                        # one update from the phase's mean w
    phase_mean = torch.cat([g.z, g.z[:2]]).mean(0)             # (the mixing latents do not count)
    assert torch.allclose(G.mapping.w_avg, 0.5 * phase_mean)   # lerp(mean, 0, beta 0.5)
    loss.run_G(g, cutoff=4, num_ws=4)                          # cutoff = num_ws: no mixing
    assert all(torch.equal(G.last_ws[:, i], g.z) for i in range(4))
    gen = torch.Generator().manual_seed(0)
    cuts = [draw_mixing_cutoff(gen, 8, 0.9) for _ in range(2000)]
    assert 0.87 < np.mean([c < 8 for c in cuts]) < 0.93 and min(cuts) == 1


# ----------------------------------------------------------------------------
# Progressive growing


def test_progressive_schedule():
    opts = TrainingOptions(arch="stylegan1", resolution=16, lod_training_kimg=10, lod_transition_kimg=20)
    assert progressive_stage(opts, 0) == (4, 1.0)
    assert progressive_stage(opts, 9_999) == (4, 1.0)
    assert progressive_stage(opts, 10_000) == (8, 0.0)
    assert progressive_stage(opts, 20_000) == (8, 0.5)
    assert progressive_stage(opts, 35_000) == (8, 1.0)
    assert progressive_stage(opts, 40_000) == (16, 0.0)
    assert progressive_stage(opts, 10**9) == (16, 1.0)
    assert progressive_stage(TrainingOptions(resolution=64), 0) == (64, 1.0)


def test_progressive_reals_and_generator_stage():
    img = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert torch.equal(progressive_reals(img, 4, 1.0), torch.nn.functional.avg_pool2d(img, 2))
    low = torch.nn.functional.avg_pool2d(img, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.allclose(progressive_reals(img, 8, 0.0), low)
    assert torch.allclose(progressive_reals(img, 8, 0.25), low.lerp(img, 0.25))

    cfg = GeneratorConfig(arch="stylegan1", z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=16,
                          mapping_layers=2)
    torch.manual_seed(0)
    G = build_generator(cfg).eval()
    ws = torch.randn(2, cfg.num_ws, 8)
    x8 = G.synthesis(ws, resolution=8)
    assert x8.shape == (2, 3, 8, 8)
    x4 = G.synthesis(ws, resolution=4)
    fade0 = G.synthesis(ws, resolution=8, alpha=0.0)
    assert torch.allclose(fade0, x4.repeat_interleave(2, 2).repeat_interleave(2, 3), atol=1e-6)
    assert torch.equal(G.synthesis(ws), G.synthesis(ws, resolution=16))
    # A checkpoint of the network grown to 8x8 is a complete 8x8 generator.
    sub_cfg = stage_checkpoint_config(cfg, 8)
    sub = build_generator(sub_cfg).eval()
    sub.load_state_dict(stage_tensors(G, 8))
    assert torch.allclose(sub.synthesis(ws[:, :sub_cfg.num_ws]), x8, atol=1e-6)


# ----------------------------------------------------------------------------
# Options and presets


def test_presets_and_overrides():
    auto = preset_values("auto", "stylegan2", 256, 1)
    assert auto["batch"] == 16 and auto["gamma"] == pytest.approx(0.0002 * 256**2 / 16) and auto["map_layers"] == 2
    v1 = resolve_options({"arch": "stylegan1", "cfg": "stylegan1", "batch": 8}, 64, 1)
    assert (v1.pl_weight, v1.g_reg_interval, v1.d_reg_interval, v1.glr, v1.batch) == (0.0, 1, 1, 0.001, 8)
    with pytest.raises(ValueError, match="--cfg"):
        resolve_options({"cfg": "stylegan1"}, 64, 1)
    opts = resolve_options({"cfg": "cpu", "kimg": 2.0}, 32, 1)
    opts.validate(1)
    assert opts.kimg == 2.0 and opts.z_dim == 128
    with pytest.raises(ValueError, match="--batch: 7 is not divisible"):
        resolve_options({"batch": 7}, 32, 2).validate(2)
    assert TrainingOptions.from_dict(opts.to_dict()) == opts


# ----------------------------------------------------------------------------
# Training state files


def test_optimizer_state_round_trip_continues_identically():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1, betas=(0.0, 0.99))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 3)).square().sum().backward()
        opt.step()
    tensors, info = optimizer_to_flat("G_opt", opt)
    net2 = torch.nn.Linear(3, 2)
    net2.load_state_dict(net.state_dict())
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.5)
    opt2.load_state_dict(optimizer_from_flat("G_opt", tensors, info))
    x = torch.randn(4, 3)
    for o, n in ((opt, net), (opt2, net2)):
        o.zero_grad()
        n(x).square().sum().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), net2.parameters()))


def test_state_file_round_trip_latest_and_prune(tmp_path):
    gen = torch.Generator().manual_seed(5)
    t = {"G.x": torch.randn(3), "rng.shared": gen.get_state(), "G_opt.0.step": torch.tensor(3.0)}
    for nimg in (8, 16, 24):
        save_training_state(str(tmp_path / state_filename(nimg)), t, {"cur_nimg": nimg})
    (tmp_path / state_filename(32)).write_bytes(b"garbage")              # a damaged newest file
    assert latest_state(str(tmp_path)).endswith(state_filename(24))
    tensors, info = load_training_state(latest_state(str(tmp_path)))
    assert info == {"cur_nimg": 24} and torch.equal(tensors["rng.shared"], gen.get_state())
    with pytest.raises(StateError):
        load_training_state(str(tmp_path / state_filename(32)))
    prune_states(str(tmp_path), keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [state_filename(24), state_filename(32)]


def _train_state(seed: int, d_out: int = 1) -> TrainState:
    """A TrainState of small stand-in networks (the state does not care what the modules are)."""
    torch.manual_seed(seed)
    G, D, G_ema = torch.nn.Linear(3, 2), torch.nn.Linear(2, d_out), torch.nn.Linear(3, 2)
    optimizers = {"G": torch.optim.Adam(G.parameters(), lr=0.1), "D": torch.optim.Adam(D.parameters(), lr=0.1)}
    ada = AdaptiveP(AugmentPipe(0.0), target=0.6, speed_img=1000, batch=8)
    return TrainState(G, D, G_ema, optimizers, StyleGANLoss(G, D), torch.Generator().manual_seed(seed), ada)


def _trained_state(tmp_path: Path) -> tuple[TrainState, str]:
    """A state with every entry moved away from its start, saved; (the state, its file)."""
    a = _train_state(0)
    for module, opt in ((a.G, a.optimizers["G"]), (a.D, a.optimizers["D"])):
        module(torch.randn(4, module.in_features)).square().sum().backward()
        opt.step()
    a.loss.pl_mean.fill_(1.5)
    torch.randn(5, generator=a.shared_rng)
    a.ada.pipe.p.fill_(0.25)
    a.ada.signs = torch.tensor([3.0, 8.0])
    a.cur_nimg, a.cur_tick, a.batch_idx, a.stage_resolution, a.stage_alpha, a.total_time = 24, 3, 3, 8, 0.5, 12.5
    path = str(tmp_path / state_filename(a.cur_nimg))
    a.save(path, TrainingOptions(), {"arch": "stand-in"}, {"num_images": 1})
    return a, path


def test_train_state_saves_and_loads_every_entry(tmp_path):
    a, path = _trained_state(tmp_path)
    torch_rng = torch.get_rng_state()          # (saved with the state: the process's own generator)
    tensors, info = load_training_state(path)
    # The file's entries (format_version 1): the same names as every earlier release wrote.
    assert sorted(info) == ["batch_idx", "cur_nimg", "cur_tick", "dataset", "generator_config", "optimizers",
                            "options", "stage_alpha", "stage_resolution", "total_time", "world_size"]
    assert {k.split(".")[0] for k in tensors} == {"G", "D", "G_ema", "G_opt", "D_opt", "loss", "rng", "augment"}
    assert {k for k in tensors if k.split(".")[0] in ("loss", "rng", "augment")} == \
        {"loss.pl_mean", "rng.shared", "rng.torch", "augment.p", "augment.signs"}
    assert (info["cur_nimg"], info["world_size"], info["generator_config"]) == (24, 1, {"arch": "stand-in"})
    assert info["options"] == TrainingOptions().to_dict() and sorted(info["optimizers"]) == ["D", "G"]

    torch.manual_seed(123)
    b = _train_state(1)
    b.load(path)
    for (name, ma), (_, mb) in zip(a.modules(), b.modules()):
        assert all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(), mb.state_dict().values())), name
    for name in ("G", "D"):
        sa, sb = a.optimizers[name].state_dict(), b.optimizers[name].state_dict()
        assert sa["param_groups"] == [dict(g, betas=tuple(g["betas"])) for g in sb["param_groups"]]  # (JSON: lists)
        assert all(torch.equal(sa["state"][i][k], sb["state"][i][k]) for i in sa["state"] for k in sa["state"][i])
    assert float(b.loss.pl_mean) == 1.5 and float(b.ada.pipe.p) == 0.25 and b.ada.signs.tolist() == [3.0, 8.0]
    assert torch.equal(b.shared_rng.get_state(), a.shared_rng.get_state())
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert (b.cur_nimg, b.cur_tick, b.batch_idx, b.stage_resolution, b.stage_alpha, b.total_time) == \
        (24, 3, 3, 8, 0.5, 12.5)
    # A run without ADA writes no augment entries; an ADA run resumed from such a state keeps its --aug-p.
    a.ada = None
    a.save(path, TrainingOptions(), {}, {})
    assert not any(k.startswith("augment.") for k in load_training_state(path)[0])
    c = _train_state(2)
    c.ada.pipe.p.fill_(0.125)
    c.load(path)
    assert float(c.ada.pipe.p) == 0.125 and c.cur_nimg == 24


@pytest.mark.parametrize("change, match", [
    ("drop rng.shared", r"missing \['rng.shared'\]"),
    ("drop augment.signs", r"missing \['augment.signs'\]"),
    ("drop the D optimiser", r"missing \['optimizers.D'\]"),
    ("drop a counter", r"missing \['batch_idx'\]"),
    ("add a stray entry", r"unexpected \['extra.x'\]"),
    ("another network", "D does not match this run's network"),
])
def test_train_state_load_refuses_a_file_that_does_not_fit(tmp_path, change, match):
    _, path = _trained_state(tmp_path)
    tensors, info = load_training_state(path)
    target = _train_state(1, d_out=3 if change == "another network" else 1)
    if change.startswith("drop ") and change[5:] in tensors:
        del tensors[change[5:]]
    elif change == "drop the D optimiser":
        del info["optimizers"]["D"]
    elif change == "drop a counter":
        del info["batch_idx"]
    elif change == "add a stray entry":
        tensors["extra.x"] = torch.zeros(1)
    save_training_state(path, tensors, info)
    with pytest.raises(StateError, match=match):
        target.load(path)
    assert target.cur_nimg == 0     # nothing counted from a file that was refused
