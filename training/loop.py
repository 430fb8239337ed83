"""The training loop, top to bottom: set up, (resume), then steps until `kimg` thousand images.

One step (NVlabs' phases, lazy regularisation):

    reals     the global batch at position cur_nimg of a seeded, epoch-wise shuffled stream;
              each process loads its own slice (v1: down-sampled to the stage, faded in)
    phases    Gmain, Greg (every g_reg_interval steps), Dmain, Dreg (every d_reg_interval steps):
              latents / labels / noise / mixing cutoff drawn for the global batch from one shared
              generator, this process's slice split in micro-batches; gradients averaged over
              processes (one all-reduce of the flattened gradients), NaN/Inf zeroed, Adam step
    G_ema     parameters lerp towards G with half-life ema_kimg (optionally ramped up); buffers copied

and once per tick (kimg_per_tick): statistics (JSONL, TensorBoard), a status line; every `snap`
ticks and at the end: the sample grid, a checkpoint (G_ema, our format), the training state,
metrics. StyleGAN v1 grows progressively: `progressive_stage(cur_nimg)` gives the resolution and
fade-in alpha of each step, and the optimisers' moments are reset when a new resolution starts.

Where this differs from NVlabs, on purpose:
- all randomness comes from one torch.Generator shared by the processes (each draws the global
  batch and takes its slice), and the minibatch-stddev groups are consecutive samples: a run gives
  the same result on 1 or N processes (up to float rounding) and resumes exactly;
- gradients are averaged over micro-batches as well as processes (NVlabs sums micro-batches);
- w_avg and the mean path length are updated from the global batch mean, so every process holds
  the same state;
- --mbstd-by-class (off by default, not in NVlabs' code): every minibatch-stddev group of reals and of
  fakes holds one class, so the stddev feature shows D a class that collapsed to one picture (with mixed
  groups the other classes' variety hides it); each group's first real keeps its place in the stream,
  the rest are drawn from its class;
- StyleGAN v1: one batch size for all resolutions; R1 is applied to the stage's (faded) reals;
- D's augmentations (--aug, training/augment.py) draw from each process's torch generator (saved in
  the training state): such a run resumes exactly, but no longer matches across process counts.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.formats.checkpoint import load_checkpoint, save_checkpoint
from stylegan_sdk.formats.fileio import atomic_write_bytes
from stylegan_sdk.images import grid, save_png, to_uint8
from stylegan_sdk.latents import seed_to_z
from stylegan_sdk.models import build_generator, check_state_dict

from .augment import AdaptiveP, AugmentPipe
from .dataset import ImageDataset, group_by_class, sample_indices
from .losses import (
    GenInputs,
    StyleGANLoss,
    all_mean,
    draw_gen_inputs,
    draw_mixing_cutoff,
    num_active_ws,
    process_rank,
    progressive_reals,
    world_size,
)
from .networks_d import build_discriminator, mbstd_group_of
from .presets import OPTIONS_FILE, TrainingOptions
from .state import TrainState, prune_states, state_filename

STATS_FILE = "stats.jsonl"
ADAM_BETAS = (0.0, 0.99)
ADAM_EPS = 1e-8

# ----------------------------------------------------------------------------
# Networks and schedule


def generator_config(opts: TrainingOptions, dataset: ImageDataset) -> GeneratorConfig:
    """The generator a run trains on `dataset`, as the one config type the SDK uses everywhere."""
    cond = opts.cond and dataset.has_labels
    return GeneratorConfig(
        arch=opts.arch,
        z_dim=opts.z_dim,
        w_dim=opts.w_dim,
        c_dim=dataset.label_dim if cond else 0,
        class_names=dataset.class_names if cond else (),
        img_resolution=opts.resolution,
        img_channels=dataset.num_channels,
        mapping_layers=opts.map_layers,
        channel_base=opts.channel_base,
        channel_max=opts.channel_max,
        architecture=opts.g_architecture if opts.arch == "stylegan2" else "skip",
        conv_clamp=opts.conv_clamp if opts.arch == "stylegan2" else None,
    )


def start_from_checkpoint(G: torch.nn.Module, G_ema: torch.nn.Module, path: str) -> None:
    """G and G_ema take the weights (and w_avg) of a checkpoint of the same config (run.py checks it)."""
    ckpt = load_checkpoint(path)
    check_state_dict(G, ckpt.tensors, path)
    state = {k: torch.from_numpy(v) for k, v in ckpt.tensors.items()}
    for module in (G, G_ema):
        module.load_state_dict(state, strict=True)


def progressive_stage(opts: TrainingOptions, nimg: int) -> tuple[int, float]:
    """(resolution, alpha) at nimg images: 4x4 for lod_training_kimg, then per resolution a fade-in
    of lod_transition_kimg (alpha 0 -> 1) and lod_training_kimg at alpha 1. StyleGAN2: full size."""
    if opts.arch != "stylegan1":
        return opts.resolution, 1.0
    t = nimg / 1000 - opts.lod_training_kimg
    res = 4
    if t < 0:
        return res, 1.0
    while res < opts.resolution:
        if t < opts.lod_transition_kimg:
            return res * 2, t / opts.lod_transition_kimg
        t -= opts.lod_transition_kimg
        res *= 2
        if t < opts.lod_training_kimg:
            return res, 1.0
        t -= opts.lod_training_kimg
    return opts.resolution, 1.0


def stage_checkpoint_config(cfg: GeneratorConfig, resolution: int) -> GeneratorConfig:
    """A v1 network grown to `resolution` so far, as a complete generator of that size."""
    if resolution == cfg.img_resolution:
        return cfg
    channels = None if cfg.channels is None else cfg.channels[: int(math.log2(resolution)) - 1]
    return dataclasses.replace(cfg, img_resolution=resolution, channels=channels)


def stage_tensors(G: torch.nn.Module, resolution: int) -> dict[str, torch.Tensor]:
    """G's state restricted to the mapping network and the blocks up to `resolution`."""
    out = {}
    for k, v in G.state_dict().items():
        if k.startswith("synthesis.b"):
            if int(k.split(".")[1][1:]) > resolution:
                continue
        out[k] = v
    return out


@dataclass
class Phase:
    name: str                       # Gmain | Greg | Gboth | Dmain | Dreg | Dboth
    module: torch.nn.Module         # the network it trains
    opt: torch.optim.Optimizer      # shared by the main and reg phases of a network
    interval: int                   # runs when batch_idx % interval == 0


def setup_phases(G: torch.nn.Module, D: torch.nn.Module, opts: TrainingOptions) -> tuple[list[Phase], dict]:
    """Adam per network; lazy regularisation scales lr and betas by interval / (interval + 1)."""
    phases, opts_by_name = [], {}
    g_interval = opts.g_reg_interval if opts.pl_weight > 0 else 1
    d_interval = opts.d_reg_interval if opts.gamma > 0 else 1
    for name, module, lr, interval in [("G", G, opts.glr, g_interval), ("D", D, opts.dlr, d_interval)]:
        if interval == 1:
            opt = torch.optim.Adam(module.parameters(), lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS)
            phases.append(Phase(name + "both", module, opt, 1))
        else:
            ratio = interval / (interval + 1)
            betas = (ADAM_BETAS[0] ** ratio, ADAM_BETAS[1] ** ratio)
            opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=betas, eps=ADAM_EPS)
            phases += [Phase(name + "main", module, opt, 1), Phase(name + "reg", module, opt, interval)]
        opts_by_name[name] = opt
    return phases, opts_by_name


# ----------------------------------------------------------------------------
# Distributed helpers


def sync_gradients(module: torch.nn.Module, world: int) -> None:
    """Average gradients over processes with one all-reduce; zero NaN/Inf (as NVlabs)."""
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    if world > 1:
        torch.distributed.all_reduce(flat)
        flat /= world
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(g.reshape(p.shape))


def broadcast_module(module: torch.nn.Module, world: int) -> None:
    if world > 1:
        for t in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(t.data, src=0)


def rank0_says(code: int, world: int, device: torch.device) -> int:
    """Rank 0's code in every process (a decision read off each process's own clock or signals could differ)."""
    if world == 1:
        return code
    t = torch.tensor([float(code)], device=device)
    torch.distributed.broadcast(t, src=0)
    return int(t.item())


class StopRequest:
    """Ctrl-C (SIGINT) asks the run to stop after the step in hand, with a snapshot and a training state; a
    second Ctrl-C stops at once, as Python does. Outside the main thread (no signal handler) it never fires."""

    def __init__(self) -> None:
        self.asked = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.asked:   # the second Ctrl-C: no more waiting
            raise KeyboardInterrupt
        self.asked = True
        print("\nCtrl-C: stopping after this step, with a snapshot and a training state "
              "(Ctrl-C again to quit at once, losing the work since the last one)", file=sys.stderr, flush=True)

    @contextmanager
    def watching(self) -> Iterator[StopRequest]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def human_bytes(n: int) -> str:
    """'637 MB', '1.6 MB', '12 kB'."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n} B"


def barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


# ----------------------------------------------------------------------------
# Statistics, status line, progress bar


class Stats:
    """Running sums of reported values (per tick); reduced over processes when read."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}

    def report(self, name: str, value: torch.Tensor | float) -> None:
        v = torch.as_tensor(value).detach().flatten().to(torch.float64).cpu()
        acc = self.sums.setdefault(name, torch.zeros([3], dtype=torch.float64))
        acc += torch.stack([torch.tensor(float(v.numel()), dtype=torch.float64), v.sum(), v.square().sum()])

    def means(self, world: int, device: torch.device | str = "cpu") -> dict[str, float]:
        names = sorted(self.sums)
        if not names:
            return {}
        packed = torch.stack([self.sums[n] for n in names])
        if world > 1:   # (on the training device: NCCL reduces CUDA tensors only)
            packed = packed.to(device)
            torch.distributed.all_reduce(packed)
            packed = packed.cpu()
        self.sums = {}
        return {n: float(p[1] / p[0]) for n, p in zip(names, packed) if p[0] > 0}


class ProgressBar:
    """A live line on a terminal (kimg, sec/kimg, ETA, losses); silent when not a terminal."""

    def __init__(self, total_kimg: float, enabled: bool, stream=sys.stderr) -> None:
        self.total_kimg = total_kimg
        self.enabled = enabled and hasattr(stream, "isatty") and stream.isatty()
        self.stream = stream
        self.last = 0.0

    def update(self, kimg: float, sec_per_kimg: float | None, losses: dict[str, float], force: bool = False) -> None:
        if not self.enabled or (not force and time.time() - self.last < 0.5):
            return
        self.last = time.time()
        frac = min(kimg / self.total_kimg, 1.0)
        bar = "#" * int(frac * 20) + "." * (20 - int(frac * 20))
        self.stream.write("\r" + f"[{bar}] " + status_text(kimg, self.total_kimg, sec_per_kimg, losses) + "\033[K")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def format_time(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def status_text(kimg: float, total_kimg: float, sec_per_kimg: float | None, losses: dict[str, float]) -> str:
    eta = "?" if sec_per_kimg is None else format_time((total_kimg - kimg) * sec_per_kimg)
    spk = "?" if sec_per_kimg is None else f"{sec_per_kimg:.1f}"
    parts = [f"kimg {kimg:.3f}/{total_kimg:g}", f"sec/kimg {spk}", f"ETA {eta}"]
    for key, label in [("Loss/G/loss", "G"), ("Loss/D/loss", "D"), ("Loss/r1_penalty", "r1"),
                       ("Loss/pl_penalty", "pl"), ("Progress/augment", "aug p"), ("Progress/ada_rt", "r_t")]:
        if key in losses:
            parts.append(f"{label} {losses[key]:.3f}")
    return "  ".join(parts)


# ----------------------------------------------------------------------------
# Images


def grid_inputs(opts: TrainingOptions, dataset: ImageDataset, c_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed grid latents (cell i = seed i, as `stylegan generate --seeds i`) and labels (row r = class r)."""
    cols, rows = opts.grid_size
    n = cols * rows
    z = torch.from_numpy(seed_to_z(list(range(n)), opts.z_dim))
    c = torch.zeros([n, c_dim])
    if c_dim > 0:
        if dataset.has_class_labels:
            c[torch.arange(n), (torch.arange(n) // cols) % c_dim] = 1
        else:
            labels = np.stack([dataset.get_label(i) for i in range(dataset.num_images)])
            c = torch.from_numpy(labels[np.arange(n) % len(labels)])
    return z, c


@torch.no_grad()
def render_grid(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor, cols: int, stage: dict, out_res: int,
                device: torch.device) -> np.ndarray:
    """uint8 [H, W, C] grid of G(z, c) (constant noise), nearest up-sampled to out_res."""
    imgs = []
    for zb, cb in zip(z.split(16), c.split(16)):
        ws = G.mapping(zb.to(device), cb.to(device)).unsqueeze(1).repeat([1, G.num_ws, 1])
        img = G.synthesis(ws, noise_mode="const", **stage).float()
        factor = out_res // img.shape[-1]
        if factor > 1:
            img = img.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
        imgs.append(img.cpu().numpy())
    return grid(list(to_uint8(np.concatenate(imgs))), cols=cols)


def reals_grid(dataset: ImageDataset, cols: int, rows: int) -> np.ndarray:
    imgs, _ = dataset.get_batch(np.arange(min(cols * rows, dataset.num_images)))
    return grid([im.transpose(1, 2, 0) for im in imgs], cols=cols)


# ----------------------------------------------------------------------------
# The loop


def training_loop(
    opts: TrainingOptions,                      # resolved, validated options
    dataset: ImageDataset,                      # the training images
    device: torch.device,                       # where this process trains
    resume_path: str | None = None,             # training state to continue from
    abort_fn: Callable[[], bool] | None = None,  # checked once per tick: stop (after a snapshot) when True
    log: Callable[[str], None] = print,         # status lines (rank 0)
) -> dict[str, Any]:
    """Train; returns a summary (images seen, last checkpoint, last state, and "stopped": None when --kimg was
    reached, else "max_minutes", "interrupted" (Ctrl-C) or "aborted")."""
    with StopRequest().watching() as stop:
        return _train(opts, dataset, device, resume_path, abort_fn, log, stop)


def _train(opts: TrainingOptions, dataset: ImageDataset, device: torch.device, resume_path: str | None,
           abort_fn: Callable[[], bool] | None, log: Callable[[str], None], stop: StopRequest) -> dict[str, Any]:
    rank, world = process_rank(), world_size()
    start_time = time.time()
    say = log if rank == 0 else (lambda _msg: None)
    outdir = opts.outdir

    # -- Networks: identical initial weights in every process --------------------------------
    torch.manual_seed(opts.seed)
    G_cfg = generator_config(opts, dataset)
    c_dim = G_cfg.c_dim
    G = build_generator(G_cfg).train().requires_grad_(False).to(device)
    D = build_discriminator(opts.arch, c_dim, opts.resolution, dataset.num_channels,
                            architecture=opts.d_architecture, channel_base=opts.channel_base,
                            channel_max=opts.channel_max, mbstd_group_size=opts.mbstd_group,
                            conv_clamp=opts.conv_clamp).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    phases, optimizers = setup_phases(G, D, opts)
    stats = Stats()
    augment_pipe = AugmentPipe(opts.aug_p).to(device) if opts.aug != "noaug" else None
    ada = AdaptiveP(augment_pipe, opts.ada_target, opts.ada_kimg * 1000, opts.batch) if opts.aug == "ada" else None
    loss = StyleGANLoss(G, D, r1_gamma=opts.gamma, pl_weight=opts.pl_weight, pl_decay=opts.pl_decay,
                        report=stats.report, augment_pipe=augment_pipe, observe_real=ada.observe if ada else None)
    shared_rng = torch.Generator().manual_seed(opts.seed)   # latents, labels, noise, mixing (all processes)

    # -- The training state: fresh counters, or where a killed run stopped -----------------------
    state = TrainState(G, D, G_ema, optimizers, loss, shared_rng, ada)
    if resume_path is not None:
        state.load(resume_path)
        say(f"resumed from {resume_path} at kimg {state.cur_nimg / 1000:.3f}")
    else:
        if opts.init_from is not None:
            start_from_checkpoint(G, G_ema, opts.init_from)
            say(f"G and G_ema start from {opts.init_from}; D starts fresh")
        for module in (G, D, G_ema):
            broadcast_module(module, world)
    time_before = state.total_time
    tick_start_nimg, tick_start_time = state.cur_nimg, time.time()

    # -- Batch geometry -----------------------------------------------------------------------
    local_batch = opts.batch // world
    batch_gpu = opts.batch_gpu or local_batch
    rounds = local_batch // batch_gpu
    pl_batch = max(world, opts.batch // opts.pl_batch_shrink // world * world)   # global, whole per process
    # --mbstd-by-class: runs of class_group consecutive samples (one minibatch-stddev group in D) share a class.
    class_group = mbstd_group_of(batch_gpu, opts.mbstd_group) if opts.mbstd_by_class else 1
    item_class = dataset.item_classes() if class_group > 1 else None
    labels = torch.from_numpy(np.stack([dataset.get_label(i) for i in range(dataset.num_images)])
                              if c_dim > 0 else np.zeros([dataset.num_images, 0], np.float32))

    # -- Outputs (rank 0) ---------------------------------------------------------------------
    grid_z, grid_c = grid_inputs(opts, dataset, c_dim)
    cols, rows = opts.grid_size
    tfevents = None
    if rank == 0:
        atomic_write_bytes(os.path.join(outdir, OPTIONS_FILE), opts.to_json().encode())
        if resume_path is None:
            save_png(reals_grid(dataset, cols, rows), os.path.join(outdir, "reals.png"))
            res0, alpha0 = progressive_stage(opts, 0)
            stage0 = {"resolution": res0, "alpha": alpha0} if opts.arch == "stylegan1" else {}
            save_png(render_grid(G_ema, grid_z, grid_c, cols, stage0, opts.resolution, device),
                     os.path.join(outdir, "fakes_init.png"))
        _truncate_stats(os.path.join(outdir, STATS_FILE), state.cur_nimg)
        tfevents = _open_tensorboard(outdir, say)
    say(f"training {opts.arch} at {opts.resolution}px on {dataset.num_images} images "
        f"({'x-flip, ' if opts.mirror else ''}{world} process{'es' if world > 1 else ''}, "
        f"batch {opts.batch}, {rounds} micro-batch{'es' if rounds > 1 else ''} of {batch_gpu}) for {opts.kimg:g} kimg"
        + (f", only D until kimg {opts.d_warmup_kimg:g}" if state.cur_nimg < opts.d_warmup_kimg * 1000 else "")
        + (f", minibatch-stddev groups of {class_group} images of one class" if class_group > 1 else ""))
    if opts.cfg == "auto" and device.type == "cpu":
        say(f"--cfg auto is NVlabs' configuration for GPUs (up to {opts.channel_max} channels); on a CPU, "
            f"--cfg cpu trains networks of a size a CPU can train in hours")
    bar = ProgressBar(opts.kimg, enabled=rank == 0)
    last: dict[str, Any] = {"checkpoint": None, "state": None}
    tick_losses: dict[str, float] = {}
    stopped: str | None = None
    budget_s = None if opts.max_minutes is None else opts.max_minutes * 60
    first_step_nimg, first_step_start = state.cur_nimg, time.time()

    # -- Steps ----------------------------------------------------------------------------------
    while True:
        # Stage (v1: resolution and fade-in of this step; new resolution = fresh Adam moments).
        res, alpha = progressive_stage(opts, state.cur_nimg)
        if opts.arch == "stylegan1":
            loss.stage_kwargs = {"resolution": res, "alpha": alpha}
            if state.stage_resolution is not None and res != state.stage_resolution:
                for opt in optimizers.values():
                    opt.state.clear()
                say(f"growing to {res}x{res} at kimg {state.cur_nimg / 1000:.3f}")
        state.stage_resolution, state.stage_alpha = res, alpha
        num_ws = num_active_ws(res)
        noise_res = [r for r in G_cfg.noise_resolutions if r <= res]

        # Reals: this process's slice of the global batch.
        idx = sample_indices(len(dataset), opts.seed, state.cur_nimg, opts.batch)
        if item_class is not None:
            idx = group_by_class(idx, item_class, class_group, opts.seed, state.cur_nimg)
        idx = idx[rank * local_batch:(rank + 1) * local_batch]
        imgs, real_labels = dataset.get_batch(idx)
        real_img = torch.from_numpy(imgs).to(device).to(torch.float32) / 127.5 - 1
        real_img = progressive_reals(real_img, res, alpha) if opts.arch == "stylegan1" else real_img
        real_c = torch.from_numpy(real_labels if c_dim > 0 else np.zeros([len(idx), 0], np.float32)).to(device)

        # Phases.
        d_warmup = state.cur_nimg < opts.d_warmup_kimg * 1000
        for phase in phases:
            if state.batch_idx % phase.interval != 0 or (d_warmup and phase.name.startswith("G")):
                continue
            gen = draw_gen_inputs(shared_rng, opts.batch, opts.z_dim, labels, noise_res, class_group)
            gen = gen.narrow(rank * local_batch, local_batch).to(device)
            cutoff = draw_mixing_cutoff(shared_rng, num_ws, opts.style_mixing)
            phase.opt.zero_grad(set_to_none=True)
            phase.module.requires_grad_(True)
            main = phase.name.endswith(("main", "both"))
            reg = phase.name.endswith(("reg", "both"))
            gain = phase.interval / rounds
            if phase.name.startswith("G"):
                if main:
                    for r in range(rounds):
                        loss.accumulate_G_main(gen.narrow(r * batch_gpu, batch_gpu), cutoff, num_ws, gain)
                if reg and opts.pl_weight > 0:
                    pl_gen, pl_noise = _draw_pl_inputs(shared_rng, pl_batch, opts.z_dim, labels, noise_res,
                                                       dataset.num_channels, res, rank, world, device)
                    loss.accumulate_G_pl(pl_gen, pl_noise, cutoff, num_ws, gain=phase.interval)
            else:
                for r in range(rounds):
                    sl = slice(r * batch_gpu, (r + 1) * batch_gpu)
                    loss.accumulate_D(real_img[sl], real_c[sl], gen.narrow(r * batch_gpu, batch_gpu) if main else None,
                                      cutoff, num_ws, gain, do_main=main, do_r1=reg)
            phase.module.requires_grad_(False)
            loss.finish_phase()
            sync_gradients(phase.module, world)
            phase.opt.step()
        if ada is not None:
            r_t = ada.maybe_update(state.batch_idx, reduce=all_mean)
            if r_t is not None:
                stats.report("Progress/ada_rt", r_t)
        if augment_pipe is not None:
            stats.report("Progress/augment", augment_pipe.p)

        # G_ema: parameters follow G with a half-life of ema_kimg; buffers (w_avg, ...) are copied.
        ema_nimg = opts.ema_kimg * 1000
        if opts.ema_rampup is not None:
            ema_nimg = min(ema_nimg, state.cur_nimg * opts.ema_rampup)
        ema_beta = 0.5 ** (opts.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)

        state.cur_nimg += opts.batch
        state.batch_idx += 1
        done = state.cur_nimg >= opts.kimg * 1000
        if state.cur_nimg == first_step_nimg + opts.batch:   # the first step of this process: what to expect
            step_s = time.time() - first_step_start
            say(f"first step: {step_s:.1f} s for {opts.batch} images, so about "
                f"{format_time(step_s * opts.kimg_per_tick * 1000 / opts.batch)} a tick ({opts.kimg_per_tick:g} kimg) "
                f"and {format_time(step_s * max(0.0, opts.kimg * 1000 - state.cur_nimg) / opts.batch)} to --kimg "
                f"{opts.kimg:g} (the first step is the slowest)")
        # Stop after any step, not only at a tick's end: a tick may take longer than the budget.
        if not done:
            over = budget_s is not None and time.time() - start_time >= budget_s
            reason = "max_minutes" if over else "interrupted" if stop.asked else None
            if world > 1:   # every process stops after the same step: rank 0's view decides
                code = rank0_says({None: 0, "max_minutes": 1, "interrupted": 2}[reason], world, device)
                reason = {0: None, 1: "max_minutes", 2: "interrupted"}[code]
            if reason is not None:
                done, stopped = True, reason
        bar.update(state.cur_nimg / 1000, (time.time() - tick_start_time) / (state.cur_nimg - tick_start_nimg) * 1000,
                   tick_losses)
        if not done and state.cur_tick != 0 and state.cur_nimg < tick_start_nimg + opts.kimg_per_tick * 1000:
            continue

        # -- Tick: statistics, status, snapshot -----------------------------------------------------
        tick = state.cur_tick
        tick_end_time = time.time()
        sec_per_kimg = (tick_end_time - tick_start_time) / (state.cur_nimg - tick_start_nimg) * 1000
        tick_losses = stats.means(world, device)
        state.total_time = time_before + tick_end_time - start_time
        fields = {"tick": tick, "nimg": state.cur_nimg, "kimg": state.cur_nimg / 1000, "Progress/resolution": res,
                  "Progress/alpha": alpha, "Timing/sec_per_kimg": sec_per_kimg, "Timing/total_sec": state.total_time,
                  **tick_losses, "timestamp": time.time()}
        bar.clear()
        say(f"tick {tick:<4d} " + status_text(state.cur_nimg / 1000, opts.kimg, sec_per_kimg, tick_losses)
            + (f"  res {res} alpha {alpha:.2f}" if opts.arch == "stylegan1" else ""))
        if abort_fn is not None and not done and abort_fn():
            done, stopped = True, "aborted"
            say("aborting (after this snapshot)")
        if stopped == "max_minutes":
            say(f"stopping: --max-minutes {opts.max_minutes:g} reached after {format_time(time.time() - start_time)} "
                f"(writing a snapshot and a training state)")
        elif stopped == "interrupted":
            say("stopping: Ctrl-C (writing a snapshot and a training state)")

        # The tick's statistics line goes first: a training state never exists without its tick's line
        # (a run killed in between redoes the tick, and resume drops the lines after its state).
        if rank == 0:
            with open(os.path.join(outdir, STATS_FILE), "a") as f:
                f.write(json.dumps(fields) + "\n")
        state.cur_tick += 1   # this tick is done (a state saved now resumes with the next one)
        if done or tick % opts.snap == 0:
            if rank == 0:
                last = _snapshot(state, opts, G_cfg, dataset, (grid_z, grid_c, cols), device)
                if tick == 0 or done:   # what a snapshot costs on disk, once, and where the last one is
                    say(f"snapshot: {os.path.basename(last['checkpoint'])} "
                        f"({human_bytes(os.path.getsize(last['checkpoint']))}) and "
                        f"{os.path.basename(last['state'])} ({human_bytes(os.path.getsize(last['state']))}: G, D, "
                        f"G_ema and Adam's moments; the newest {opts.keep_states} are kept)")
                metric_fields = _evaluate_metrics(opts, G_ema, G_cfg, res, alpha, dataset, last, device, say)
                if metric_fields:  # a line of its own, after the state it measures
                    with open(os.path.join(outdir, STATS_FILE), "a") as f:
                        f.write(json.dumps({"tick": tick, "nimg": state.cur_nimg, "kimg": state.cur_nimg / 1000,
                                            **metric_fields, "timestamp": time.time()}) + "\n")
                    fields.update(metric_fields)
            barrier(world)
        if rank == 0:
            if tfevents is not None:
                for name, value in fields.items():
                    if name not in ("tick", "nimg", "timestamp") and isinstance(value, (int, float)):
                        tfevents.add_scalar(name, value, global_step=state.cur_nimg, walltime=fields["timestamp"])
                tfevents.flush()
        tick_start_nimg, tick_start_time = state.cur_nimg, time.time()
        if done:
            break

    if tfevents is not None:
        tfevents.close()
    if stopped in ("max_minutes", "interrupted"):
        say(f"stopped at {state.cur_nimg} images of {opts.kimg * 1000:g}; last checkpoint {last['checkpoint']}, "
            f"training state {last['state']}; to continue: python -m training.run --outdir {outdir} --resume latest")
    else:
        say(f"done: {state.cur_nimg} images; last checkpoint {last['checkpoint']}")
    return {"cur_nimg": state.cur_nimg, "stopped": stopped, **last}


def _draw_pl_inputs(rng: torch.Generator, pl_batch: int, z_dim: int, labels: torch.Tensor, noise_res: list[int],
                    img_channels: int, res: int, rank: int, world: int,
                    device: torch.device) -> tuple[GenInputs, torch.Tensor]:
    """Path length samples and the random image directions y ~ N(0, I) / sqrt(r * r), this process's slice."""
    pl_gen = draw_gen_inputs(rng, pl_batch, z_dim, labels, noise_res)
    pl_noise = torch.randn([pl_batch, img_channels, res, res], generator=rng) / math.sqrt(res * res)
    n = pl_batch // world
    return pl_gen.narrow(rank * n, n).to(device), pl_noise.narrow(0, rank * n, n).to(device)


# ----------------------------------------------------------------------------
# Snapshot: grid, checkpoint, training state (rank 0)


def _snapshot(state: TrainState, opts: TrainingOptions, G_cfg: GeneratorConfig, dataset: ImageDataset,
              grid_args: tuple[torch.Tensor, torch.Tensor, int], device: torch.device) -> dict[str, Any]:
    """The sample grid, the checkpoint (G_ema) and the training state at state.cur_nimg; their paths."""
    outdir = opts.outdir
    nimg = state.cur_nimg
    res, alpha = state.stage_resolution, state.stage_alpha
    stage = {"resolution": res, "alpha": alpha} if opts.arch == "stylegan1" else {}
    grid_z, grid_c, cols = grid_args
    save_png(render_grid(state.G_ema, grid_z, grid_c, cols, stage, opts.resolution, device),
             os.path.join(outdir, f"fakes{nimg:09d}.png"))

    # Checkpoint: G_ema in our format. A v1 network that is still growing is saved as the largest
    # fully faded-in generator (its current resolution, or the previous one during a fade-in).
    ckpt_res = res if alpha >= 1 else res // 2
    cfg = stage_checkpoint_config(G_cfg, ckpt_res)
    cfg = dataclasses.replace(cfg, source={"kind": "stylegan_sdk.training", "nimg": nimg,
                                           "run": os.path.basename(os.path.abspath(outdir))})
    meta = {"training": {"nimg": nimg, "kimg": nimg / 1000, "arch": opts.arch, "resolution": ckpt_res,
                         "final_resolution": opts.resolution, "dataset": dataset.info(),
                         "options": opts.to_dict()}}
    ckpt_path = os.path.join(outdir, f"network-snapshot-{nimg:09d}.safetensors")
    save_checkpoint(ckpt_path, cfg, stage_tensors(state.G_ema, ckpt_res), meta)

    # Training state: everything a resumed run needs to continue exactly.
    state_path = os.path.join(outdir, state_filename(nimg))
    state.save(state_path, opts, G_cfg.to_dict(), dataset.info())
    prune_states(outdir, opts.keep_states)
    return {"checkpoint": ckpt_path, "state": state_path}


def _evaluate_metrics(opts, G_ema, G_cfg, res, alpha, dataset, last, device, say) -> dict[str, float]:
    if not opts.metrics:
        return {}
    if res != opts.resolution or alpha < 1:
        say(f"metrics: skipped until the network has grown to {opts.resolution}x{opts.resolution}")
        return {}
    from .metrics import calc_metric, report_metric

    results = {}
    for name in opts.metrics:
        result = calc_metric(name, G_ema, dataset, feature_weights=opts.feature_weights, device=device)
        report_metric(result, opts.outdir, snapshot=os.path.basename(last["checkpoint"]))
        scalars = {k: v for k, v in result["results"].items() if isinstance(v, (int, float))}   # (not per class)
        say(f"metric {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()))
        results.update({f"Metrics/{k}": v for k, v in scalars.items()})
    return results


# ----------------------------------------------------------------------------
# Logs


def _open_tensorboard(outdir: str, say):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        say("TensorBoard events off (pip install tensorboard to write them)")
        return None
    return SummaryWriter(outdir)


def _truncate_stats(path: str, nimg: int) -> None:
    """A resumed (or restarted) run drops the lines a killed run wrote after its last state: they are redone."""
    if not os.path.isfile(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line).get("nimg", 0) <= nimg:
                    keep.append(line if line.endswith("\n") else line + "\n")
            except json.JSONDecodeError:
                continue
    atomic_write_bytes(path, "".join(keep).encode())
