"""rosinality/style-based-gan-pytorch StyleGAN (v1) checkpoints -> our format (arch "stylegan1").

That project's training checkpoints are `torch.save({'generator': ..., 'g_running': ..., ...})` zip
archives of `StyledGenerator` state dicts; some published files are a bare state dict.

What the tensors tell (nothing else is stored):
- `style.{1,3,...}.linear.weight_orig` [code_dim, code_dim]: the mapping network (z and w size, n_mlp);
- `generator.progression.{i}.*`: block i at 4 * 2**i px; its channels, and whether it up-samples with
  a fused transposed conv (`conv1.0.weight`) or nearest + conv (`conv1.1.conv.weight_orig`);
- `generator.to_rgb.{i}.conv.*`: the image channels.
rosinality builds all 9 blocks (up to 1024 px) whatever resolution was trained, so the output
resolution (`step`, 4 * 2**step px) is chosen here; by default the deepest block stored.

Conversion (see `stylegan_sdk.models.stylegan1` for our parameterisation):
- rosinality's equal lr multiplies every `weight_orig` by sqrt(2 / fan_in) at run time (fan_in of the
  noise strength [1, C, 1, 1] being C); ours uses sqrt(2 / fan_in) for 3x3 convs (copied as they
  are), 1 / sqrt(fan_in) for style affines and toRGB (times sqrt 2), none for noise strengths
  (times sqrt(2 / C)); the mapping keeps StyleGAN2's form (lr multiplier 0.01, activation gain
  sqrt 2), so weights are divided by 0.01 and biases by 0.01 * sqrt 2;
- a fused up-sampling block stores a transposed-conv kernel [I, O, 3, 3] whose shifted copies are
  averaged (/4); it becomes the equivalent nearest-up conv kernel: transposed, flipped, / 4;
- each rosinality block applies one style and one noise image to both its layers: the importer
  gives both layers the same noise_const, and callers repeat a block's w and noise on rows 2i, 2i+1;
- rosinality stores no w_avg and no fixed noise: w_avg is the mean of the mapping over 10,000 z from
  numpy RandomState(0), noise_const one unit-Gaussian image per block from RandomState(1).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...config import GeneratorConfig
from ...formats.checkpoint import W_AVG_KEY, Checkpoint, few
from .reader import read_torch_file

W_AVG_SAMPLES = 10_000      # z drawn to estimate w_avg
W_AVG_SEED = 0              # numpy RandomState seed of those z
NOISE_CONST_SEED = 1        # numpy RandomState seed of the fixed per-block noise images
MAPPING_LR_MULTIPLIER = 0.01  # rosinality trains the mapping at lr * 0.01 (its optimizer's 'mult')

_GEN = "generator."
_PROG = "generator.progression."
_BLOCK_RE = re.compile(r"^generator\.progression\.(\d+)\.")
_STYLE_RE = re.compile(r"^style\.(\d+)\.linear\.weight_orig$")
_BLUR = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16


def import_checkpoint(path: str | os.PathLike, key: str = "g_running", step: int | None = None) -> Checkpoint:
    """Read a rosinality StyleGAN (v1) checkpoint (`key`: 'g_running' = the EMA weights, or 'generator').

    step: output resolution 4 * 2**step (None = the deepest block in the file).
    Raises FileNotFoundError for a missing file, ValueError naming what is wrong otherwise.
    """
    path = os.fspath(path)
    return import_object(read_torch_file(path), path, key, step)


def import_object(obj: Any, path: str, key: str, step: int | None) -> Checkpoint:
    """What `read_torch_file` returned for a rosinality StyleGAN (v1) file -> Checkpoint (`key`'s state dict)."""
    state, used_key = _select_state(obj, key, path)
    return import_state(state, path, key=used_key, step=step)


def import_state(
    state: Mapping[str, Any], source: str, key: str | None = "g_running", step: int | None = None
) -> Checkpoint:
    """A `StyledGenerator` state dict (tensors or arrays) -> Checkpoint in our format."""
    sd = {_strip_module(str(k)): _as_float32(v, str(k), source) for k, v in state.items()}
    if f"{_PROG}0.conv1.input" not in sd:
        raise ValueError(f"{source}: not a rosinality StyledGenerator state dict "
                         f"(no '{_PROG}0.conv1.input' constant)")

    # Mapping network: style.1, style.3, ... (PixelNorm at 0, LeakyReLUs between).
    style_idx = sorted(int(m.group(1)) for k in sd if (m := _STYLE_RE.match(k)))
    n_mlp = len(style_idx)
    if n_mlp == 0 or style_idx != list(range(1, 2 * n_mlp, 2)):
        raise ValueError(f"{source}: mapping layers style.{{1,3,...}}.linear.weight_orig missing or not "
                         f"contiguous (found indices {style_idx})")
    code_dim = int(sd["style.1.linear.weight_orig"].shape[1])

    # Synthesis blocks: contiguous from 0, each with a toRGB.
    block_idx = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_RE.match(k))})
    n_blocks = len(block_idx)
    if block_idx != list(range(n_blocks)):
        raise ValueError(f"{source}: generator.progression blocks are not contiguous from 0 (found {block_idx})")
    max_step = n_blocks - 1
    if step is None:
        step = max_step
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= int(step) <= max_step:
        raise ValueError(f"step: must be an int in 0..{max_step} (the file has blocks up to "
                         f"{4 * 2 ** max_step} px), got {step!r}")
    step = int(step)

    need: list[str] = [f"style.{j}.linear.{p}" for j in style_idx for p in ("weight_orig", "bias")]
    fused: list[bool] = []
    for i in range(step + 1):
        p = f"{_PROG}{i}."
        if i == 0:
            need.append(p + "conv1.input")
            fused.append(False)
        elif p + "conv1.conv.weight_orig" in sd:
            raise ValueError(f"{source}: an early rosinality model (bilinear up-sampling, no blur, block {i} "
                             f"has conv1.conv.weight_orig); only the current StyledGenerator is supported")
        elif p + "conv1.0.weight" in sd:
            need += [p + "conv1.0.weight", p + "conv1.0.bias"]
            fused.append(True)
        else:
            need += [p + "conv1.1.conv.weight_orig", p + "conv1.1.conv.bias"]
            fused.append(False)
        need += [p + "conv2.conv.weight_orig", p + "conv2.conv.bias"]
        for j in (1, 2):
            need += [f"{p}noise{j}.weight_orig", f"{p}adain{j}.style.linear.weight_orig",
                     f"{p}adain{j}.style.linear.bias"]
        need += [f"{_GEN}to_rgb.{i}.conv.weight_orig", f"{_GEN}to_rgb.{i}.conv.bias"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ValueError(f"{source}: missing tensors {few(missing)} (not a complete rosinality StyledGenerator?)")
    _check_blur(sd, step, source)

    channels = [int(sd[f"{_PROG}{i}.conv2.conv.weight_orig"].shape[0]) for i in range(step + 1)]
    img_channels = int(sd[f"{_GEN}to_rgb.0.conv.weight_orig"].shape[0])
    fused_from = next((4 * 2**i for i in range(step + 1) if fused[i]), None)
    cfg = GeneratorConfig(
        arch="stylegan1",
        z_dim=code_dim,
        w_dim=code_dim,
        c_dim=0,
        img_resolution=4 * 2**step,
        img_channels=img_channels,
        mapping_layers=n_mlp,
        mapping_lr_multiplier=MAPPING_LR_MULTIPLIER,
        channels=tuple(channels),
        fused_upsample_from=fused_from,
        use_noise=True,
        source={"format": "rosinality-stylegan1", "file": os.path.basename(source), "key": key, "step": step},
    )

    try:
        tensors = _convert(sd, cfg, style_idx, fused)
    except (IndexError, ValueError) as e:  # tensors of the wrong rank (an edited or corrupt file)
        raise ValueError(f"{source}: malformed rosinality tensors: {e}") from None
    tensors[W_AVG_KEY] = _mean_w(cfg, tensors, source)
    metadata = {
        "imported_from": os.path.basename(source),
        "format": "rosinality/style-based-gan-pytorch StyledGenerator",
        "key": key,
        "step": step,
        "blocks_in_file": n_blocks,
        "fused_blocks": [4 * 2**i for i in range(step + 1) if fused[i]],
        "w_avg": f"not stored by rosinality: mean of mapping(z) over {W_AVG_SAMPLES} z = "
                 f"numpy.random.RandomState({W_AVG_SEED}).randn({W_AVG_SAMPLES}, {code_dim})",
        "noise_const": f"not stored by rosinality: one image per block from "
                       f"numpy.random.RandomState({NOISE_CONST_SEED}).randn(r, r) in block order, "
                       f"shared by both layers of the block",
    }
    return Checkpoint(config=cfg, tensors=tensors, metadata=metadata)


# ----------------------------------------------------------------------------
# Helpers


def _select_state(obj: Any, key: str, path: str) -> tuple[Mapping[str, Any], str | None]:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: not a rosinality checkpoint (expected a dict, got {type(obj).__name__})")
    if key in obj:
        state = obj[key]
        if not isinstance(state, Mapping):
            raise ValueError(f"{path}: {key!r} is a {type(state).__name__}, expected a state dict")
        return state, key
    if any(isinstance(k, str) and _strip_module(k).startswith(_PROG) for k in obj):
        return obj, None  # a bare StyledGenerator state dict
    keys = sorted(str(k) for k in obj)
    raise ValueError(f"{path}: not a rosinality checkpoint: no {key!r} entry and no generator.progression.* "
                     f"tensors (StyleGAN v1), no 'g_ema' or style.1.weight + input.input (StyleGAN2); "
                     f"top-level keys: {few(keys)}")


def _strip_module(k: str) -> str:
    return k[len("module."):] if k.startswith("module.") else k


def _check_blur(sd: Mapping[str, np.ndarray], step: int, source: str) -> None:
    """The blur buffers must be the standard [1, 2, 1] filter our model hard-codes."""
    for i in range(1, step + 1):
        for k in (f"{_PROG}{i}.conv1.1.weight", f"{_PROG}{i}.conv1.2.weight"):
            if k in sd and sd[k].ndim == 4 and sd[k].shape[-2:] == (3, 3):
                if not np.allclose(sd[k], _BLUR[None, None], atol=1e-6):
                    raise ValueError(f"{source}: {k} is not the standard [1, 2, 1] blur")


def _convert(
    sd: Mapping[str, np.ndarray], cfg: GeneratorConfig, style_idx: list[int], fused: list[bool]
) -> dict[str, np.ndarray]:
    """rosinality names and scales -> ours."""
    out: dict[str, np.ndarray] = {}
    m = MAPPING_LR_MULTIPLIER
    for n, j in enumerate(style_idx):
        out[f"mapping.fc{n}.weight"] = sd[f"style.{j}.linear.weight_orig"] / m
        out[f"mapping.fc{n}.bias"] = sd[f"style.{j}.linear.bias"] / (m * math.sqrt(2))

    noise_rng = np.random.RandomState(NOISE_CONST_SEED)
    for i, res in enumerate(cfg.block_resolutions):
        p = f"{_PROG}{i}."
        b = f"synthesis.b{res}."
        if i == 0:
            out[b + "const"] = sd[p + "conv1.input"][0]
        elif fused[i]:
            w = sd[p + "conv1.0.weight"]  # [I, O, 3, 3] transposed-conv kernel, shifted copies averaged
            out[b + "layer0.weight"] = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]) / 4
            out[b + "layer0.bias"] = sd[p + "conv1.0.bias"]
        else:
            out[b + "layer0.weight"] = sd[p + "conv1.1.conv.weight_orig"]
            out[b + "layer0.bias"] = sd[p + "conv1.1.conv.bias"]
        out[b + "layer1.weight"] = sd[p + "conv2.conv.weight_orig"]
        out[b + "layer1.bias"] = sd[p + "conv2.conv.bias"]
        noise = noise_rng.randn(res, res).astype(np.float32)
        for layer, j in (("layer0", 1), ("layer1", 2)):
            strength = sd[f"{p}noise{j}.weight_orig"]  # [1, C, 1, 1], equal lr with fan_in C
            out[f"{b}{layer}.noise_strength"] = strength.reshape(-1) * math.sqrt(2 / strength.shape[1])
            out[f"{b}{layer}.noise_const"] = noise.copy()
            out[f"{b}{layer}.affine.weight"] = sd[f"{p}adain{j}.style.linear.weight_orig"] * math.sqrt(2)
            out[f"{b}{layer}.affine.bias"] = sd[f"{p}adain{j}.style.linear.bias"]
        out[b + "torgb.weight"] = sd[f"{_GEN}to_rgb.{i}.conv.weight_orig"] * math.sqrt(2)
        out[b + "torgb.bias"] = sd[f"{_GEN}to_rgb.{i}.conv.bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _mean_w(cfg: GeneratorConfig, tensors: dict[str, np.ndarray], source: str) -> np.ndarray:
    """Load the weights into our generator (every name and shape checked), then the mean w."""
    import torch

    from ...models import check_state_dict
    from ...models.stylegan1 import Generator

    model = Generator(cfg).eval().requires_grad_(False)
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    state[W_AVG_KEY] = torch.zeros([cfg.w_dim])
    check_state_dict(model, state, source)  # ValueError naming wrong shapes, NaN / Inf
    model.load_state_dict(state, strict=True)
    z = np.random.RandomState(W_AVG_SEED).randn(W_AVG_SAMPLES, cfg.z_dim).astype(np.float32)
    with torch.no_grad():
        w = model.mapping(torch.from_numpy(z))
    return w.double().mean(dim=0).float().numpy()


def _as_float32(v: Any, name: str, source: str) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().float().numpy()
    try:
        return np.array(v, dtype=np.float32, order="C")
    except (TypeError, ValueError):
        raise ValueError(f"{source}: entry {name!r} is a {type(v).__name__}, not a tensor") from None


