"""`project(G, images)`: the latents whose synthesis matches target images, by optimisation (NVIDIA's projector).

The algorithm is stylegan2-ada-pytorch's projector.py (schedule.py has its formulas): start every target at the
mean of 10,000 mapped z (RandomState(123)), optimise one w per target (space "w", broadcast to every ws row; or
every row apart, "w+") and, for the families with noise inputs, one set of noise images per target (unit
Gaussian to begin with), with Adam (betas 0.9 / 0.999, lr 0.1 on NVIDIA's ramps), a Gaussian jitter on w that
fades out by 3/4 of the run, and the loss = perceptual distance + 1e5 x the noise regulariser. Each step the
noise images are set back to zero mean and unit variance.

N targets are optimised together, in one forward and backward per step: every target has its own latent, its
own noise and its own random draws (target i: seed + i), the loss is a sum over targets and Adam works per
element, so a batch gives what N single runs give (to float rounding).

What is returned renders as NVIDIA's files do: `ws` are the optimised latents without the jitter, `images`
are `G.synthesize(ws, noise_mode="const")`, the model's own constant noise, as NVIDIA's projector renders
proj.png (its `project()` optimises the noise of a deep copy of G, which it then drops: neither proj.png nor
generate.py --projected-w sees the optimised noise). The optimised noise comes back in `noise` for who
wants it (`G.backend.synthesize(ws, "random", noise)` renders with it).
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..backends.torch_backend import TorchBackend
from ..calls import Transform
from ..config import GeneratorConfig
from ..generator import Generator
from ..latents import check_ws
from .losses import LOSSES, PerceptualLoss, make_loss
from .options import MAX_STEPS, SPACES, check_seed, check_space, check_steps, load_projected_w, save_projected_w
from .schedule import NVIDIA, Schedule, noise_regularization, renormalize_noise

W_AVG_SAMPLES = 10_000      # z mapped for the starting point and the jitter's scale (NVIDIA's w_avg_samples)
W_AVG_SEED = 123            # their RandomState


class ProjectionUnavailable(ValueError):
    """The model cannot be projected into here: its backend does not differentiate (a server answers
    FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class Projection:
    """What `project` found for N targets."""

    ws: np.ndarray                  # [N, num_ws, w_dim] float32 (space "w": every row equal)
    losses: np.ndarray              # [steps, N] float32: the loss's distance per step and target (before the noise
                                    # regulariser), measured on the step's jittered w
    images: np.ndarray              # uint8 [N, H, W, C]: ws synthesised with the model's constant noise (proj.png)
    targets: np.ndarray             # uint8 [N, H, W, C]: the targets as projected (centre crop, LANCZOS resize)
    loss: str                       # the loss as it names itself (PerceptualLoss.name): "mse", "lpips (stlpips-...)"
    space: str                      # "w" | "w+"
    steps: int                      # steps run (fewer than asked when should_stop() said so)
    seed: int                       # target i drew its noise and jitter from seed + i
    noise: list[np.ndarray] | None = None   # the optimised noise, one [N, 1, r, r] per layer (None: not optimised)
    history: np.ndarray | None = None       # [T, N, num_ws, w_dim]: ws after the steps in history_steps (keep_every)
    history_steps: tuple[int, ...] = ()
    stopped: bool = False           # should_stop() ended the run early

    def save_npz(self, path: str | os.PathLike, i: int = 0) -> None:
        """Write target i's ws as NVIDIA's projected_w.npz (key "w", [1, num_ws, w_dim] float32), atomically."""
        if not 0 <= i < self.ws.shape[0]:
            raise ValueError(f"i: must be in [0, {self.ws.shape[0]}), got {i}")
        save_projected_w(path, self.ws[i])


# ----------------------------------------------------------------------------
# Targets


def prepare_target(image: Any, resolution: int, channels: int, name: str = "images") -> np.ndarray:
    """One target (a PIL image, or uint8 pixels [H, W] / [H, W, C] with C 1, 3 or 4) -> uint8 [resolution,
    resolution, channels]: converted to RGB (or greyscale, "L"), centre-cropped to a square and resized with
    LANCZOS, as NVIDIA's projector does. Alpha is dropped."""
    if channels not in (1, 3):
        raise ValueError(f"{name}: this model makes {channels}-channel images; projection takes RGB or greyscale "
                         f"models")
    if isinstance(image, Image.Image):
        pil = image
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"{name}: expected uint8 pixels (0..255), got {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))) or min(image.shape[:2]) < 1:
            raise ValueError(f"{name}: expected an image [H, W] or [H, W, C] with C 1, 3 or 4, got shape "
                             f"{list(image.shape)}")
        pil = Image.fromarray(np.ascontiguousarray(image))
    else:
        raise ValueError(f"{name}: expected PIL images or uint8 arrays, got {type(image).__name__}")
    pil = pil.convert("L" if channels == 1 else "RGB")
    w, h = pil.size
    s = min(w, h)
    pil = pil.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    pil = pil.resize((resolution, resolution), Image.LANCZOS)
    arr = np.asarray(pil, dtype=np.uint8)
    return arr[:, :, np.newaxis] if arr.ndim == 2 else arr


def prepare_targets(images: Any, resolution: int, channels: int) -> np.ndarray:
    """images: one target (PIL image, uint8 [H, W] or [H, W, C]), uint8 [N, H, W, C], or a list of targets
    -> uint8 [N, resolution, resolution, channels]."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        items: Sequence[Any] = list(images)
    elif isinstance(images, (Image.Image, np.ndarray)):
        items = [images]
    elif isinstance(images, (list, tuple)):
        items = images
    else:
        raise ValueError(f"images: expected PIL images or uint8 arrays ([H, W, C], [N, H, W, C] or a list), got "
                         f"{type(images).__name__}")
    if len(items) == 0:
        raise ValueError("images: no targets given")
    return np.stack([prepare_target(img, resolution, channels, name=f"images[{i}]" if len(items) > 1 else "images")
                     for i, img in enumerate(items)])


# ----------------------------------------------------------------------------
# The starting point and the jitter's scale, once per model


_W_STATS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def w_stats(mapping: torch.nn.Module, z_dim: int, c_dim: int, device: torch.device) -> tuple[torch.Tensor, float]:
    """(w_avg [w_dim] on device, w_std) from 10,000 z of RandomState(123), as NVIDIA's projector: the mean of
    the mapped w, and the root of their summed squared distance to it over the samples. Conditional models: each
    z with a class drawn uniformly after the z. Kept per mapping network until its weights change."""
    key = tuple((p.data_ptr(), p._version) for p in mapping.parameters()) + (str(device),)
    cached = _W_STATS.get(mapping)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    rs = np.random.RandomState(W_AVG_SEED)
    z = rs.randn(W_AVG_SAMPLES, z_dim).astype(np.float32)
    c = np.eye(c_dim, dtype=np.float32)[rs.randint(c_dim, size=W_AVG_SAMPLES)] if c_dim else None
    chunks = []
    with torch.no_grad():
        for i in range(0, W_AVG_SAMPLES, 1000):
            zt = torch.from_numpy(z[i: i + 1000]).to(device)
            ct = None if c is None else torch.from_numpy(c[i: i + 1000]).to(device)
            chunks.append(mapping(zt, ct).double().cpu().numpy())
    w = np.concatenate(chunks)
    avg = w.mean(axis=0)
    std = float(np.sqrt(np.sum((w - avg) ** 2) / W_AVG_SAMPLES))
    w_avg = torch.from_numpy(avg.astype(np.float32)).to(device)
    _W_STATS[mapping] = (key, w_avg, std)
    return w_avg, std


# ----------------------------------------------------------------------------
# bfloat16 on the CPU

# bf16 autocast pays on the CPU from about this much synthesis work per image (multiply-adds of its 3x3
# convolutions). Measured per step (mse, W, one target, one thread) on a Xeon with AMX, bf16 against float32:
# 0.1 GMAC (the bundled 32 px model) 15 % slower, 0.85 GMAC (64 px, 128 channels) 1.14x faster, 3.4 GMAC 1.5x,
# 13.6 GMAC (64 px, 512 channels) 1.9x; 128 px at 512 channels 1.7x (mse) and 1.6x (lpips).
BF16_FROM_MACS = 0.5e9


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX-BF16 or AVX512-BF16), from /proc/cpuinfo where there is
    one, else torch's oneDNN check."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(re.findall(r"\b(amx_bf16|avx512_bf16)\b", f.read()))
        return bool(flags)
    except OSError:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def synthesis_macs(cfg: GeneratorConfig) -> int:
    """Multiply-adds of the 3x3 convolutions of one image's synthesis (StyleGAN v1 / v2; 0 for StyleGAN3)."""
    if cfg.arch == "stylegan3":
        return 0
    total = 0
    for r in cfg.block_resolutions:
        out = cfg.channels_at(r)
        total += r * r * 9 * out * (out + (cfg.channels_at(r // 2) if r > 4 else 0))
    return total


def auto_bf16(cfg: GeneratorConfig, device: torch.device) -> bool:
    """autocast=None: bf16 on a CPU with AMX / AVX512-BF16 for StyleGAN v1 / v2 networks of at least
    BF16_FROM_MACS; float32 otherwise (StyleGAN3, which the SDK computes in float32 only; CUDA; small networks)."""
    return device.type == "cpu" and synthesis_macs(cfg) >= BF16_FROM_MACS and cpu_has_bf16()


# ----------------------------------------------------------------------------
# Checks


def check_projectable(G: Any) -> TorchBackend:
    """G's torch backend; ProjectionUnavailable for a model no backend here can differentiate."""
    if not isinstance(G, Generator):
        raise ValueError(f"G: expected a Generator (sg.load(...)), got {type(G).__name__}")
    backend = G.backend
    if not isinstance(backend, TorchBackend):
        raise ProjectionUnavailable(f"projection needs a model the torch backend runs (a checkpoint or official "
                                    f"file); {backend.name} cannot differentiate")
    if backend.precision != "fp32":
        raise ProjectionUnavailable(f"projection computes in float32; this model was loaded with precision "
                                    f"{backend.precision!r} (load it with precision='fp32')")
    if G.config.img_channels not in (1, 3):
        raise ProjectionUnavailable(f"projection takes RGB or greyscale models; this one makes "
                                    f"{G.config.img_channels}-channel images")
    return backend


def check_init(init: Any, n: int, space: str, num_ws: int, w_dim: int) -> np.ndarray | None:
    """init ws [N, num_ws, w_dim] or one [num_ws, w_dim] (or [1, ...]) for every target -> [N, num_ws, w_dim]."""
    if init is None:
        return None
    ws, _ = check_ws(init, num_ws, w_dim, name="init")
    if ws.shape[0] not in (1, n):
        raise ValueError(f"init: expected ws for 1 or {n} targets, got {ws.shape[0]}")
    if not np.all(np.isfinite(ws)):
        raise ValueError("init: contains NaN or Inf")
    if space == "w" and not np.all(ws == ws[:, :1]):
        raise ValueError("init: space 'w' optimises one w per target, but init's ws rows differ (project in "
                         "space 'w+' to start from them)")
    return np.array(np.broadcast_to(ws, (n, num_ws, w_dim)), np.float32)  # a writable copy


# ----------------------------------------------------------------------------
# The projection


ProgressFn = Callable[[int, int, np.ndarray], None]


def project(
    G: Generator,
    images: Any,                                # targets: PIL images / uint8 [H, W, C], [N, H, W, C] or a list
    *,
    space: str = "w",                           # "w": one w per target, on every ws row (NVIDIA's); "w+": each row
    steps: int = 1000,
    loss: str | PerceptualLoss = "lpips",       # a name in LOSSES, or a PerceptualLoss module
    init: Any = None,                           # ws to start from ([N or 1, num_ws, w_dim]); None: the mean w
    optimize_noise: bool = True,                # optimise the noise images too (families with noise inputs)
    seed: int = 0,                              # target i draws its initial noise and jitter from seed + i
    progress: ProgressFn | None = None,         # progress(step, steps, distances [N]) after every step
    should_stop: Callable[[], bool] | None = None,  # checked before every step; True ends the run (stopped)
    transform: Any = None,                      # StyleGAN3: the input transform [3, 3] (None: the identity)
    keep_every: int = 0,                        # > 0: keep ws every this many steps (Projection.history)
    autocast: bool | None = None,               # bf16 autocast; None: auto_bf16 (CPUs with AMX / AVX512-BF16, big
                                                # enough StyleGAN v1 / v2 networks)
    schedule: Schedule = NVIDIA,
) -> Projection:
    """Project target images into G's latent space (W or W+) with NVIDIA's projector algorithm; see the module."""
    backend = check_projectable(G)
    space = check_space(space)
    steps = check_steps(steps)
    if not isinstance(loss, (str, PerceptualLoss)):
        raise ValueError(f"loss: expected one of {LOSSES} or a PerceptualLoss, got {type(loss).__name__}")
    if isinstance(loss, str) and loss not in LOSSES:
        raise ValueError(f"loss: must be one of {LOSSES}, got {loss!r}")
    cfg = G.config
    targets = prepare_targets(images, cfg.img_resolution, cfg.img_channels)
    n = targets.shape[0]
    init_ws = check_init(init, n, space, cfg.num_ws, cfg.w_dim)
    seed = check_seed(seed, n)
    render = Transform.check(cfg, transform=transform)
    if isinstance(keep_every, bool) or not isinstance(keep_every, (int, np.integer)) or keep_every < 0:
        raise ValueError(f"keep_every: must be an int >= 0, got {keep_every!r}")
    for name, fn in (("progress", progress), ("should_stop", should_stop)):
        if fn is not None and not callable(fn):
            raise ValueError(f"{name}: expected a callable or None, got {type(fn).__name__}")

    device = backend.torch_device
    model = backend.model
    synthesis = model.synthesis
    loss_fn = make_loss(loss, device=device) if isinstance(loss, str) else loss
    use_bf16 = auto_bf16(cfg, device) if autocast is None else bool(autocast)
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16)

    # Fixed for the whole run: the targets' features, the starting point, the jitter's scale, the transform.
    target_t = torch.from_numpy(targets).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad(), torch.autocast(**amp):
        target_features = loss_fn.features(target_t)
    w_avg, w_std = w_stats(model.mapping, cfg.z_dim, cfg.c_dim, device)
    transforms = render.rows(n)
    extra = {} if transforms is None else {"transform": torch.from_numpy(transforms).to(device)}

    rngs = [torch.Generator().manual_seed(seed + i) for i in range(n)]
    if init_ws is None:
        start = w_avg.reshape(1, 1, -1).expand(n, 1 if space == "w" else cfg.num_ws, -1)
    else:
        start = torch.from_numpy(init_ws[:, :1] if space == "w" else init_ws).to(device)
    w_opt = start.clone().contiguous().requires_grad_(True)        # [N, 1 or num_ws, w_dim]
    noise: list[torch.Tensor] = []
    if optimize_noise and cfg.noise_resolutions:
        # Per target, its layers' noise in forward order (config.noise_resolutions), from its own generator.
        per_target = [[torch.randn([1, 1, r, r], generator=g) for r in cfg.noise_resolutions] for g in rngs]
        noise = [torch.cat([t[k] for t in per_target]).to(device).requires_grad_(True)
                 for k in range(len(cfg.noise_resolutions))]
    optimizer = torch.optim.Adam([w_opt, *noise], betas=schedule.adam_betas, lr=schedule.initial_learning_rate)
    noise_mode = "random" if noise else "const"

    losses = np.zeros([steps, n], np.float32)
    history: list[np.ndarray] = []
    history_steps: list[int] = []
    done = 0
    stopped = False
    for step in range(steps):
        if should_stop is not None and should_stop():
            stopped = True
            break
        lr = schedule.learning_rate(step, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        w = w_opt
        jitter = schedule.w_jitter(step, steps, w_std)
        if jitter > 0:
            draws = torch.stack([torch.randn(w_opt.shape[1:], generator=g) for g in rngs]).to(device)
            w = w_opt + draws * jitter
        ws = w.expand(n, cfg.num_ws, cfg.w_dim)
        with torch.autocast(**amp):
            synth = synthesis(ws, noise_mode=noise_mode, noise=noise or None, **extra)
            dist = loss_fn.distance(target_features, loss_fn.features(synth)).float()    # [N]
        total = dist.sum()
        if noise:
            total = total + schedule.regularize_noise_weight * noise_regularization(noise).sum()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if noise:
            renormalize_noise(noise)
        losses[step] = dist.detach().cpu().numpy()
        done = step + 1
        if keep_every and done % keep_every == 0:
            history.append(_ws_numpy(w_opt, cfg.num_ws))
            history_steps.append(done)
        if progress is not None:
            progress(done, steps, losses[step].copy())

    ws_out = _ws_numpy(w_opt, cfg.num_ws)
    # One image per call, so that proj.png is exactly what rendering its projected_w.npz alone gives.
    images_out = np.concatenate([G.synthesize(ws_out[i: i + 1], noise_mode="const", output="uint8",
                                              transform=transform) for i in range(n)])
    return Projection(
        ws=ws_out, losses=losses[:done], images=images_out, targets=targets,
        loss=str(getattr(loss_fn, "name", type(loss_fn).__name__)), space=space, steps=done, seed=seed,
        noise=[t.detach().cpu().numpy() for t in noise] if noise else None,
        history=np.stack(history) if history else None, history_steps=tuple(history_steps), stopped=stopped)


def _ws_numpy(w_opt: torch.Tensor, num_ws: int) -> np.ndarray:
    """[N, 1 or num_ws, w_dim] -> float32 [N, num_ws, w_dim] NumPy (a W latent copied to every row)."""
    w = w_opt.detach().float().cpu()
    return np.ascontiguousarray(w.expand(w.shape[0], num_ws, w.shape[2]).numpy())


__all__ = ["BF16_FROM_MACS", "LOSSES", "MAX_STEPS", "SPACES", "Projection", "ProjectionUnavailable", "auto_bf16",
           "cpu_has_bf16", "load_projected_w", "prepare_target", "prepare_targets", "project", "save_projected_w",
           "synthesis_macs", "w_stats"]
