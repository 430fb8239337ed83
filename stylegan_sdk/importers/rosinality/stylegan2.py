"""rosinality/stylegan2-pytorch StyleGAN2 checkpoints -> our format (arch "stylegan2", NVlabs names).

rosinality's PyTorch StyleGAN2 is a de-facto community format: its FFHQ 550000.pt, and the
`stylegan2-ffhq-config-f.pt` that e4e, pSp, StyleCLIP, GFPGAN and others load. The files come in
two layouts, both read by `rosinality.reader.read_torch_file` (torch.load, weights only, `argparse.Namespace`
the one class allowed beyond tensors and plain containers):

    train.py           {"g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"}
    convert_weight.py  {"g_ema", "latent_avg"}       (converted from NVIDIA's TensorFlow pickles)
    (or a bare `Generator.state_dict()`)

Only `g_ema` (the EMA generator, the one people sample from) is read. `g` is the raw, non-EMA
generator and is never loaded; `d` and the optimiser states are not read either. `args` is
informational: the stock train.py hard-codes `latent = 512` and `n_mlp = 8` after parsing, so every
size here comes from the tensor shapes:

    style.{1..n_mlp}.weight [D, D]          z_dim = w_dim = D, mapping_layers = n_mlp
    input.input [1, C4, 4, 4]               channels at 4 px
    convs.{2k}.conv.weight [1, C, I, 3, 3]  channels at 8 * 2**k px (k = 0 .. len(to_rgbs) - 1)
    len(to_rgbs)                            img_resolution = 4 * 2**len(to_rgbs)

Key map (rosinality -> ours; r = 8 * 2**k; our names are stylegan2-ada-pytorch's):

    style.{i+1}.weight / .bias              mapping.fc{i}.weight / .bias (same raw values, lr multiplier 0.01)
    input.input[0]                          synthesis.b4.const
    conv1.*                                 synthesis.b4.conv1.*
    convs.{2k}.* / convs.{2k+1}.*           synthesis.b{r}.conv0.* / .conv1.*
      conv.weight[0]                          .weight (the up-sampling kernels are copied as they are: rosinality's
                                              transposed conv has NVlabs' orientation; only TF stores them flipped)
      conv.modulation.weight / .bias          .affine.weight / .bias (the bias already holds the +1)
      noise.weight [1]                        .noise_strength []
      activate.bias                           .bias
    noises.noise_0 [1, 1, 4, 4]             synthesis.b4.conv1.noise_const [4, 4]
    noises.noise_{2k+1} / noise_{2k+2}      synthesis.b{r}.conv0.noise_const / .conv1.noise_const [r, r]
    to_rgb1.*, to_rgbs.{k}.*                synthesis.b4.torgb.*, synthesis.b{r}.torgb.*
      conv.weight[0], bias.view(3)            .weight [3, C, 1, 1], .bias [3]
    convs.{2k}.conv.blur.kernel,            checked to be [1, 3, 3, 1] (x) [1, 3, 3, 1] / 64 * 4 (what rosinality
    to_rgbs.{k}.upsample.kernel             stores: the up-sampling gain folded in); our resample_filter (1, 3, 3, 1)
                                            is the normalised filter with the gain applied at run time

So the noise index i of rosinality's `noise=[...]` list is our i-th convolution in forward order, and
rosinality's latent row j (of n_latent = 2 * log2(size) - 2) is our ws row j.

Computed: rosinality stores no w_avg. A convert_weight.py file's `latent_avg` (TF's dlatent_avg) becomes
mapping.w_avg; otherwise w_avg is the mean of our mapping over W_AVG_SAMPLES z drawn from
numpy RandomState(W_AVG_SEED) (float32 mapping, float64 mean), and the metadata says so. That is not
rosinality's `mean_latent(4096)` (torch.randn, a different draw): pass an explicit centre to
reproduce a rosinality truncation exactly.

Refused with a ValueError naming the file and the key: SWAGAN (`args.arch == "swagan"`, or wavelet
`iwt` / `dwt` buffers and 12-channel ToRGBs: a different generator), a StyleGAN v1 or unknown state
dict, a non-float or NaN / Inf tensor, a tensor claiming more elements than its storage holds,
missing, unexpected or wrongly shaped tensors, non-contiguous layer indices, image channels other than
3, blur kernels other than rosinality's standard one, sizes beyond `config.check_config_sizes`' limits
(checked before anything is allocated from them), and a `latent_avg` that is not [D] or [1, D].
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ...config import GeneratorConfig, check_config_sizes
from ...formats.checkpoint import W_AVG_KEY, Checkpoint, few, tensor_mismatches
from ..common import stylegan2_filter_buffers

FORMAT = "rosinality-stylegan2"
MAPPING_LR_MULTIPLIER = 0.01    # rosinality's lr_mlp default: EqualLinear(lr_mul=0.01) in the mapping
BLUR_TAPS = (1, 3, 3, 1)        # rosinality's Generator always uses blur_kernel=[1, 3, 3, 1]
UP_FACTOR = 2
IMG_CHANNELS = 3                # rosinality's Generator is always RGB
W_AVG_SAMPLES = 10_000          # z drawn to estimate w_avg when the file has no latent_avg
W_AVG_SEED = 0                  # numpy RandomState seed of those z

# Top-level entries beside g_ema, and why they are not read.
NOT_LOADED = {
    "g": "the raw (non-EMA) generator: never loaded, only g_ema is",
    "d": "the discriminator: not needed to generate",
    "g_optim": "optimiser state: not needed to generate",
    "d_optim": "optimiser state: not needed to generate",
}

_STYLE_RE = re.compile(r"^style\.(\d+)\.")
_CONVS_RE = re.compile(r"^convs\.(\d+)\.")
_TO_RGBS_RE = re.compile(r"^to_rgbs\.(\d+)\.")
_NOISE_RE = re.compile(r"^noises\.noise_(\d+)$")
_SWAGAN_RE = re.compile(r"(^|\.)(iwt|dwt)\.")
_V1_MARKERS = ("generator.progression.", "style.1.linear.weight_orig")

# ----------------------------------------------------------------------------
# Small pure helpers


def is_stylegan2_object(obj: Any) -> bool:
    """A loaded file that looks like rosinality StyleGAN2: top-level `g_ema`, or a bare Generator state dict."""
    if not isinstance(obj, Mapping):
        return False
    if "g_ema" in obj:
        return True
    keys = {_strip_module(k) for k in obj if isinstance(k, str)}
    return "style.1.weight" in keys and "input.input" in keys


def stored_up_kernel(taps: Sequence[float] = BLUR_TAPS, factor: int = UP_FACTOR) -> np.ndarray:
    """The [k, k] kernel rosinality stores for up-sampling: outer(taps) / sum * factor**2 (make_kernel x gain)."""
    t = np.asarray(taps, dtype=np.float64)
    k = np.outer(t, t)
    return (k / k.sum() * factor**2).astype(np.float32)


def noise_resolutions(n_blocks: int) -> list[int]:
    """Resolution of rosinality's noises.noise_{i}: 2**((i + 5) // 2), i = 0 .. 2 * n_blocks - 2."""
    return [2 ** ((i + 5) // 2) for i in range(2 * n_blocks - 1)]


def our_conv_names(n_blocks: int) -> list[str]:
    """Our convolutions in forward order = rosinality's noise / conv order (noise_i drives the i-th one)."""
    names = ["synthesis.b4.conv1"]
    for k in range(n_blocks - 1):
        r = 8 * 2**k
        names += [f"synthesis.b{r}.conv0", f"synthesis.b{r}.conv1"]
    return names


def rosinality_shapes(style_dim: int, n_mlp: int, channels: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Every tensor of a rosinality Generator(size = 4 * 2**(len(channels) - 1)) state dict, and its shape."""
    d = style_dim
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, n_mlp + 1):
        shapes[f"style.{i}.weight"] = (d, d)
        shapes[f"style.{i}.bias"] = (d,)

    def styled_conv(p: str, c_in: int, c_out: int, up: bool) -> None:
        shapes[f"{p}.conv.weight"] = (1, c_out, c_in, 3, 3)
        shapes[f"{p}.conv.modulation.weight"] = (c_in, d)
        shapes[f"{p}.conv.modulation.bias"] = (c_in,)
        shapes[f"{p}.noise.weight"] = (1,)
        shapes[f"{p}.activate.bias"] = (c_out,)
        if up:
            shapes[f"{p}.conv.blur.kernel"] = (4, 4)

    def to_rgb(p: str, c_in: int, up: bool) -> None:
        shapes[f"{p}.conv.weight"] = (1, IMG_CHANNELS, c_in, 1, 1)
        shapes[f"{p}.conv.modulation.weight"] = (c_in, d)
        shapes[f"{p}.conv.modulation.bias"] = (c_in,)
        shapes[f"{p}.bias"] = (1, IMG_CHANNELS, 1, 1)
        if up:
            shapes[f"{p}.upsample.kernel"] = (4, 4)

    shapes["input.input"] = (1, channels[0], 4, 4)
    styled_conv("conv1", channels[0], channels[0], up=False)
    to_rgb("to_rgb1", channels[0], up=False)
    for k in range(len(channels) - 1):
        c_in, c_out = channels[k], channels[k + 1]
        styled_conv(f"convs.{2 * k}", c_in, c_out, up=True)
        styled_conv(f"convs.{2 * k + 1}", c_out, c_out, up=False)
        to_rgb(f"to_rgbs.{k}", c_out, up=True)
    for i, r in enumerate(noise_resolutions(len(channels))):
        shapes[f"noises.noise_{i}"] = (1, 1, r, r)
    return shapes


def key_map(n_mlp: int, n_blocks: int) -> list[tuple[str, str, str]]:
    """(our name, rosinality name, reshape) for every weight; reshape: '' as is, 'first' [0], 'scalar' [1] -> [],
    'rgb_bias' [1, 3, 1, 1] -> [3], 'noise' [1, 1, r, r] -> [r, r]."""
    rows: list[tuple[str, str, str]] = []
    for i in range(n_mlp):
        rows += [(f"mapping.fc{i}.weight", f"style.{i + 1}.weight", ""),
                 (f"mapping.fc{i}.bias", f"style.{i + 1}.bias", "")]
    rows.append(("synthesis.b4.const", "input.input", "first"))

    def styled_conv(ours: str, theirs: str) -> None:
        rows.extend([(f"{ours}.weight", f"{theirs}.conv.weight", "first"),        # no flip (see docstring)
                     (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", ""),
                     (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", ""),  # includes the +1
                     (f"{ours}.noise_strength", f"{theirs}.noise.weight", "scalar"),
                     (f"{ours}.bias", f"{theirs}.activate.bias", "")])

    def to_rgb(ours: str, theirs: str) -> None:
        rows.extend([(f"{ours}.weight", f"{theirs}.conv.weight", "first"),
                     (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", ""),
                     (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", ""),
                     (f"{ours}.bias", f"{theirs}.bias", "rgb_bias")])

    styled_conv("synthesis.b4.conv1", "conv1")
    to_rgb("synthesis.b4.torgb", "to_rgb1")
    for k in range(n_blocks - 1):
        r = 8 * 2**k
        styled_conv(f"synthesis.b{r}.conv0", f"convs.{2 * k}")
        styled_conv(f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}")
        to_rgb(f"synthesis.b{r}.torgb", f"to_rgbs.{k}")
    for i, conv in enumerate(our_conv_names(n_blocks)):
        rows.append((f"{conv}.noise_const", f"noises.noise_{i}", "noise"))
    return rows


def _reshape(v: np.ndarray, how: str) -> np.ndarray:
    if how == "first":
        return v[0]                     # [1, ...] -> [...]
    if how == "scalar":
        return v.reshape(())            # [1] -> []
    if how == "rgb_bias":
        return v.reshape(-1)            # [1, 3, 1, 1] -> [3]
    if how == "noise":
        return v[0, 0]                  # [1, 1, r, r] -> [r, r]
    return v


# ----------------------------------------------------------------------------
# Import


def import_object(obj: Mapping[str, Any], source: str) -> Checkpoint:
    """What `read_torch_file` returned for a rosinality StyleGAN2 file (any layout) -> Checkpoint."""
    if "g_ema" not in obj:  # a bare Generator state dict
        return import_state(obj, source, key=None, layout="state dict")
    state = obj["g_ema"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{source}: 'g_ema' is a {type(state).__name__}, expected a state dict")
    layout = "train.py" if "args" in obj else "convert_weight.py" if "latent_avg" in obj else "g_ema only"
    used = ("g_ema", "latent_avg", "args", "ada_aug_p")
    return import_state(state, source, latent_avg=obj.get("latent_avg"), args=obj.get("args"), key="g_ema",
                        layout=layout, ada_aug_p=obj.get("ada_aug_p"),
                        ignored=[str(k) for k in obj if k not in used])


def import_state(
    state: Mapping[str, Any],
    source: str,
    latent_avg: Any = None,             # [D] or [1, D]: the file's w average (convert_weight.py), None = compute
    args: Any = None,                   # train.py's argparse.Namespace (or a dict): informational only
    *,
    key: str | None = "g_ema",          # where the state dict came from (None: a bare state dict)
    layout: str = "state dict",         # "train.py" | "convert_weight.py" | "g_ema only" | "state dict"
    ada_aug_p: Any = None,              # train.py's ADA augmentation probability (informational)
    ignored: Iterable[str] = (),        # other top-level entries of the file (never read)
) -> Checkpoint:
    """A rosinality StyleGAN2 `Generator` state dict (tensors or arrays) -> Checkpoint in our format.

    Every check runs before anything is allocated from the sizes the file claims; ValueError naming
    `source` and the offending key.
    """
    arg_fields, arg_dropped = _plain_args(args, source)
    _check_arch(arg_fields, source)
    if not isinstance(state, Mapping):
        raise ValueError(f"{source}: expected a state dict, got a {type(state).__name__}")
    sd: dict[str, Any] = {}
    for k, v in state.items():
        if not isinstance(k, str):
            raise ValueError(f"{source}: state dict key {k!r} is not a string")
        sd[_strip_module(k)] = v
    _check_family(sd, source)
    for k, v in sd.items():
        _check_tensor(v, k, source)

    # Sizes from the shapes (never from args).
    n_mlp, n_blocks = _layer_counts(sd, source)
    style_dim = _dim(sd, "style.1.weight", 2, 1, source)
    sizes_cfg = _config(source, arch="stylegan2", z_dim=style_dim, w_dim=style_dim,
                        img_resolution=_resolution(n_blocks, source), mapping_layers=n_mlp)
    check_config_sizes(sizes_cfg, source)  # before any list or array is sized from the file's claims
    channels = [_dim(sd, "input.input", 4, 1, source)]
    channels += [_dim(sd, f"convs.{2 * k}.conv.weight", 5, 1, source) for k in range(n_blocks - 1)]
    rgb = _dim(sd, "to_rgb1.conv.weight", 5, 1, source)
    if rgb != IMG_CHANNELS:
        raise ValueError(f"{source}: to_rgb1.conv.weight makes {rgb} image channels; rosinality's StyleGAN2 "
                         f"Generator makes {IMG_CHANNELS} (RGB)")
    _check_names_and_shapes(sd, rosinality_shapes(style_dim, n_mlp, channels), source)
    _check_kernels(sd, n_blocks, source)
    w_avg = None if latent_avg is None else _latent_avg(latent_avg, style_dim, source)

    cfg = _config(
        source,
        arch="stylegan2",
        z_dim=style_dim,
        w_dim=style_dim,
        c_dim=0,
        img_resolution=sizes_cfg.img_resolution,
        img_channels=IMG_CHANNELS,
        mapping_layers=n_mlp,
        mapping_lr_multiplier=MAPPING_LR_MULTIPLIER,
        channels=tuple(channels),
        architecture="skip",
        conv_clamp=None,
        resample_filter=BLUR_TAPS,
        use_noise=True,
        source={"format": FORMAT, "file": os.path.basename(source), "key": key, "layout": layout},
    )
    check_config_sizes(cfg, source)

    tensors = {ours: _reshape(_float32(sd[theirs], theirs, source), how)
               for ours, theirs, how in key_map(n_mlp, n_blocks)}
    tensors.update(stylegan2_filter_buffers(cfg))
    if w_avg is not None:
        tensors[W_AVG_KEY] = w_avg
        w_avg_note = ("the file's latent_avg (convert_weight.py: the TensorFlow model's dlatent_avg, the "
                      "training-time average of w)")
    else:
        tensors[W_AVG_KEY] = mean_w(cfg, tensors)
        w_avg_note = (f"not stored in this file: mean of mapping(z) over {W_AVG_SAMPLES} z = "
                      f"numpy.random.RandomState({W_AVG_SEED}).randn({W_AVG_SAMPLES}, {style_dim}) (float32 "
                      f"mapping, float64 mean); rosinality's own mean_latent(4096) draws torch.randn and differs")
    # np.array, not np.ascontiguousarray: that one turns the [] noise strengths into [1].
    tensors = {k: np.array(v, dtype=np.float32, order="C") for k, v in tensors.items()}

    not_loaded = {name: NOT_LOADED.get(name, "not used") for name in ignored}
    metadata: dict[str, Any] = {
        "imported_from": os.path.basename(source),
        "format": "rosinality/stylegan2-pytorch Generator",
        "key": key,
        "layout": layout,
        "sizes": "from the tensor shapes (train.py's args are not trusted for sizes)",
        "w_avg": w_avg_note,
        "noise_const": "the file's noises.noise_{i} buffers: noise_0 -> b4.conv1, noise_{2k+1} / noise_{2k+2} "
                       "-> b{8*2**k}.conv0 / .conv1",
        "not_loaded": not_loaded,
    }
    if arg_fields is not None:
        metadata["args"] = arg_fields
        if arg_dropped:
            metadata["args_not_recorded"] = arg_dropped  # values that are not plain JSON scalars / lists
    if ada_aug_p is not None:
        metadata["ada_aug_p"] = _number_or_repr(ada_aug_p)
    return Checkpoint(config=cfg, tensors=tensors, metadata=metadata)


def mean_w(cfg: GeneratorConfig, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
    """Mean of our mapping network over W_AVG_SAMPLES fixed z (numpy RandomState(W_AVG_SEED)), float64 mean."""
    import torch

    from ...models.stylegan2 import mapping_from_config

    mapping = mapping_from_config(cfg).eval().requires_grad_(False)
    state = {name[len("mapping."):]: torch.from_numpy(np.array(v, dtype=np.float32, order="C"))
             for name, v in tensors.items() if name.startswith("mapping.")}
    state["w_avg"] = torch.zeros([cfg.w_dim])
    mapping.load_state_dict(state, strict=True)
    z = np.random.RandomState(W_AVG_SEED).randn(W_AVG_SAMPLES, cfg.z_dim).astype(np.float32)
    with torch.no_grad():
        w = mapping(torch.from_numpy(z))     # [W_AVG_SAMPLES, w_dim]
    return w.double().mean(dim=0).float().numpy()


# ----------------------------------------------------------------------------
# Checks


def _strip_module(k: str) -> str:
    return k[len("module."):] if k.startswith("module.") else k


def _plain_args(args: Any, source: str) -> tuple[dict[str, Any] | None, list[str]]:
    """train.py's Namespace -> (plain JSON fields, names of fields that are not plain)."""
    if args is None:
        return None, []
    if isinstance(args, argparse.Namespace):
        fields = vars(args)
    elif isinstance(args, Mapping):
        fields = dict(args)
    else:
        raise ValueError(f"{source}: 'args' is a {type(args).__name__}, expected train.py's argparse.Namespace")
    plain: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in fields.items():
        if _is_plain(value):
            plain[str(name)] = value
        elif isinstance(value, (list, tuple)) and all(_is_plain(v) for v in value):
            plain[str(name)] = list(value)
        else:
            dropped.append(str(name))
    return plain, sorted(dropped)


def _is_plain(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _number_or_repr(v: Any) -> float | str:
    """A number (or a one-element tensor / array) as a float; anything else its (short) repr."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return float(v)
    if hasattr(v, "shape") and hasattr(v, "tolist") and tuple(v.shape) in ((), (1,)):
        item = v.tolist()
        item = item[0] if isinstance(item, list) else item
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            return float(item)
    return repr(v)[:200]


def _check_arch(fields: Mapping[str, Any] | None, source: str) -> None:
    if fields is None or "arch" not in fields:
        return
    arch = fields["arch"]
    if arch == "swagan":
        raise ValueError(f"{source}: args.arch = 'swagan': a SWAGAN (wavelet) generator, not StyleGAN2 "
                         f"(rosinality's swagan.Generator is not supported)")
    if arch != "stylegan2":
        raise ValueError(f"{source}: args.arch = {arch!r}: only rosinality's 'stylegan2' Generator is supported")


def _check_family(sd: Mapping[str, Any], source: str) -> None:
    """SWAGAN, StyleGAN v1 and unknown state dicts, refused by name."""
    wavelet = sorted(k for k in sd if _SWAGAN_RE.search(k))
    rgb_shape = tuple(getattr(sd.get("to_rgb1.conv.weight"), "shape", ()))
    if wavelet or (len(rgb_shape) == 5 and rgb_shape[1] == 4 * IMG_CHANNELS):
        what = f"wavelet buffers {few(wavelet)}" if wavelet else "to_rgb1 makes 12 channels"
        raise ValueError(f"{source}: a SWAGAN (wavelet) generator, not StyleGAN2 ({what})")
    if any(k.startswith(_V1_MARKERS[0]) or k == _V1_MARKERS[1] for k in sd):
        raise ValueError(f"{source}: a StyleGAN v1 (rosinality/style-based-gan-pytorch StyledGenerator) state dict, "
                         f"not StyleGAN2")
    missing = [k for k in ("style.1.weight", "input.input") if k not in sd]
    if missing:
        raise ValueError(f"{source}: not a rosinality StyleGAN2 Generator state dict (no {few(missing)}; "
                         f"keys: {few(sorted(sd))})")


def _check_tensor(v: Any, name: str, source: str) -> None:
    """A float tensor / array whose elements its storage really holds (no broadcast view claiming more)."""
    if hasattr(v, "is_floating_point") and hasattr(v, "untyped_storage"):   # a torch tensor
        if str(v.layout) != "torch.strided" or v.is_nested:
            raise ValueError(f"{source}: tensor {name!r} has layout {v.layout}, expected a dense (strided) tensor")
        if not v.is_floating_point():
            raise ValueError(f"{source}: tensor {name!r} has dtype {v.dtype}, expected floating point")
        if v.numel() * v.element_size() > v.untyped_storage().nbytes():
            raise ValueError(f"{source}: tensor {name!r} claims {v.numel()} elements but its storage holds "
                             f"{v.untyped_storage().nbytes()} bytes (a broadcast or overlapping view)")
        return
    if isinstance(v, np.ndarray):
        if not np.issubdtype(v.dtype, np.floating):
            raise ValueError(f"{source}: array {name!r} has dtype {v.dtype}, expected floating point")
        return
    raise ValueError(f"{source}: entry {name!r} is a {type(v).__name__}, not a tensor")


def _indices(sd: Iterable[str], pattern: re.Pattern[str]) -> list[int]:
    return sorted({int(m.group(1)) for k in sd if (m := pattern.match(k))})


def _layer_counts(sd: Mapping[str, Any], source: str) -> tuple[int, int]:
    """(n_mlp, number of resolutions) from the layer indices, which must be contiguous and agree."""
    style = _indices(sd, _STYLE_RE)
    if style != list(range(1, len(style) + 1)):
        raise ValueError(f"{source}: mapping layers style.{{1..n}} are not contiguous from 1 (found {style})")
    convs, to_rgbs, noises = _indices(sd, _CONVS_RE), _indices(sd, _TO_RGBS_RE), _indices(sd, _NOISE_RE)
    n_up = len(to_rgbs)
    for name, found, want in (("to_rgbs", to_rgbs, n_up), ("convs", convs, 2 * n_up),
                              ("noises.noise_", noises, 2 * n_up + 1)):
        if found != list(range(want)):
            raise ValueError(f"{source}: {name} indices {few([str(i) for i in found], 12)} are not 0..{want - 1} "
                             f"({n_up} up-sampling blocks: len(to_rgbs) = len(convs) / 2 = (len(noises) - 1) / 2)")
    return len(style), n_up + 1


def _resolution(n_blocks: int, source: str) -> int:
    """4 * 2**(n_blocks - 1), without building a huge int from an absurd layer count."""
    if n_blocks > 64:
        raise ValueError(f"{source}: {n_blocks - 1} up-sampling blocks (to_rgbs.*) claim a resolution beyond "
                         f"any limit")
    return 4 * 2 ** (n_blocks - 1)


def _config(where: str, /, **fields: Any) -> GeneratorConfig:
    try:
        return GeneratorConfig(**fields)
    except ValueError as e:  # config.validate names the field
        raise ValueError(f"{where}: {e}") from None


def _dim(sd: Mapping[str, Any], name: str, ndim: int, axis: int, source: str) -> int:
    if name not in sd:
        raise ValueError(f"{source}: missing tensor {name!r}")
    shape = tuple(sd[name].shape)
    if len(shape) != ndim:
        raise ValueError(f"{source}: tensor {name!r} has shape {list(shape)}, expected {ndim} dimensions")
    return int(shape[axis])


def _check_names_and_shapes(sd: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], source: str) -> None:
    problems = tensor_mismatches(sd, expected)
    if problems:
        raise ValueError(f"{source}: not a complete rosinality StyleGAN2 Generator: " + "; ".join(problems))


def _check_kernels(sd: Mapping[str, Any], n_blocks: int, source: str) -> None:
    """Every up-sampling kernel must be rosinality's standard one (our resample_filter (1, 3, 3, 1))."""
    want = stored_up_kernel()
    for k in range(n_blocks - 1):
        for name in (f"convs.{2 * k}.conv.blur.kernel", f"to_rgbs.{k}.upsample.kernel"):
            got = _float32(sd[name], name, source)
            if not np.allclose(got, want, rtol=0, atol=1e-6):
                raise ValueError(f"{source}: {name} is not rosinality's standard up-sampling kernel "
                                 f"[1, 3, 3, 1] (x) [1, 3, 3, 1] / 64 * 4")


def _float32(v: Any, name: str, source: str) -> np.ndarray:
    """A (checked) float tensor or array -> finite float32 NumPy copy."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().float().numpy()
    a = np.array(v, dtype=np.float32, order="C")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{source}: NaN or Inf in tensor {name!r}")
    return a


def _latent_avg(v: Any, style_dim: int, source: str) -> np.ndarray:
    _check_tensor(v, "latent_avg", source)
    shape = tuple(v.shape)
    if shape not in ((style_dim,), (1, style_dim)):
        raise ValueError(f"{source}: latent_avg has shape {list(shape)}, expected [{style_dim}] or [1, {style_dim}]")
    return _float32(v, "latent_avg", source).reshape(style_dim)
