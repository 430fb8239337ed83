"""An independent, literal reference of NVIDIA's TensorFlow StyleGAN (v1) and StyleGAN2 generators, for tests.

It runs directly on the TF variables, with TF names and TF layouts (conv weights ``[k, k, in, out]``, dense
weights ``[in, out]``), and follows the official code line by line:

- v1: NVlabs/stylegan ``training/networks_stylegan.py`` (commit 1e0d5c7): ``G_style``, ``G_mapping``,
  ``G_synthesis`` and the ops ``pixel_norm``, ``instance_norm``, ``apply_noise``, ``style_mod``, ``blur2d``,
  ``upscale2d``, ``upscale2d_conv2d``, ``get_weight``, ``dense``, ``conv2d``.
- v2: NVlabs/stylegan2 ``training/networks_stylegan2.py`` (commit bf0fe0b): ``G_main``, ``G_mapping``,
  ``G_synthesis_stylegan2`` (orig / skip / resnet), ``modulated_conv2d_layer``, ``conv2d_layer``, plus
  ``dnnlib/tflib/ops/upfirdn_2d.py`` (``upfirdn_2d`` with its ``_upfirdn_2d_ref`` body, ``upsample_2d``,
  ``upsample_conv_2d``) and ``dnnlib/tflib/ops/fused_bias_act.py`` (``_fused_bias_act_ref``).

It deliberately shares no code with ``stylegan_sdk.models``: only numpy and ``torch.nn.functional``.

Variables come as ONE flat dict, the way ``legacy.py``-style loaders collect them: ``Gs``'s own variables
under their own names (``"lod"``, ``"dlatent_avg"``) and the component variables under the component key
(``"mapping/Dense0/weight"``, ``"synthesis/4x4/Const/const"``, ``"synthesis/noise0"``, ...). Component
functions also accept the network-name prefix (``"G_mapping/..."``, ``"G_synthesis/..."``, as config.json lists
them) or the component's local names (what :func:`split_components` returns).

Ops work on torch tensors (NCHW); the model functions take and return numpy arrays. Compute is float64 by
default (a sharp reference for float32 TF numbers); pass ``dtype=np.float32`` to compute like the graphs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    # variable dicts
    "COMPONENTS", "split_components", "join_components", "flatten_network_state",
    "v1_nf", "v2_nf", "num_layers_for", "resolution_for", "infer_resolution", "infer_v2_architecture",
    "random_v1_vars", "random_v2_vars",
    # shared / v1 ops (torch)
    "get_weight", "leaky_relu", "pixel_norm", "instance_norm", "apply_noise", "apply_bias", "style_mod",
    "tf_conv2d", "tf_conv2d_transpose", "upscale2d", "blur2d", "upscale2d_conv2d",
    # v2 ops (torch)
    "setup_kernel", "upfirdn_2d", "upsample_2d", "upsample_conv_2d", "fused_bias_act", "modulated_conv2d_layer",
    # models (numpy in, numpy out)
    "v1_mapping", "v1_synthesis", "v1_run", "v2_mapping", "v2_synthesis", "v2_run", "truncate",
    "convert_images_to_uint8",
    "V1_TRUNCATION", "V2_TRUNCATION",
]

COMPONENTS = ("mapping", "synthesis")
# Network names of the components as tflib.Network creates them (config.json lists Gs vars with these).
_NETWORK_NAMES = {"mapping": "G_mapping", "synthesis": "G_synthesis"}

# Graph defaults of truncation_psi / truncation_cutoff: G_style (v1) and G_main (v2).
V1_TRUNCATION = (0.7, 8)
V2_TRUNCATION = (0.5, None)

LRELU_ALPHA = 0.2
SQRT2 = float(np.sqrt(2))

NoiseSpec = Any  # "const" | "none" | sequence of arrays (or None entries), one per noise input


# ----------------------------------------------------------------------------------------------------------
# Variable dicts.

def _torch_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    return {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[np.dtype(dtype)]


def _np_dtype(dtype) -> np.dtype:
    if isinstance(dtype, torch.dtype):
        return np.dtype({torch.float64: np.float64, torch.float32: np.float32}[dtype])
    return np.dtype(dtype)


def _t(a, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(dtype)
    return torch.from_numpy(np.array(a, dtype=_np_dtype(dtype)))


def _lookup(variables: Mapping[str, Any], component: str | None, name: str):
    keys = [name] if component is None else [f"{component}/{name}", f"{_NETWORK_NAMES[component]}/{name}", name]
    for key in keys:
        if key in variables:
            return variables[key]
    raise KeyError(f"variable {keys[0]!r} not found (tried {keys})")


def _has(variables: Mapping[str, Any], component: str, name: str) -> bool:
    try:
        _lookup(variables, component, name)
    except KeyError:
        return False
    return True


def split_components(flat: Mapping[str, Any]) -> tuple[dict, dict, dict]:
    """(gs_vars, mapping_vars, synthesis_vars) of a flat dict, each with the network's own local names."""
    gs, mapping, synthesis = {}, {}, {}
    for key, value in flat.items():
        head, _, rest = key.partition("/")
        if head in ("mapping", "G_mapping") and rest:
            mapping[rest] = value
        elif head in ("synthesis", "G_synthesis") and rest:
            synthesis[rest] = value
        else:
            gs[key] = value
    return gs, mapping, synthesis


def join_components(gs_vars: Mapping[str, Any], mapping_vars: Mapping[str, Any],
                    synthesis_vars: Mapping[str, Any]) -> dict:
    """The inverse of :func:`split_components`: one flat dict with ``mapping/`` and ``synthesis/`` prefixes."""
    flat = dict(gs_vars)
    flat.update({f"mapping/{k}": v for k, v in mapping_vars.items()})
    flat.update({f"synthesis/{k}": v for k, v in synthesis_vars.items()})
    return flat


def flatten_network_state(state: Mapping[str, Any]) -> dict:
    """Flat dict of a ``tflib.Network.__getstate__`` dict: own variables, then ``component_key/`` + name for
    each component, recursively (the way stylegan2-ada's legacy.py collects TF params)."""
    flat: dict = {}

    def recurse(prefix: str, st: Mapping[str, Any]) -> None:
        for name, value in st["variables"]:
            flat[prefix + name] = value
        for key, comp in st.get("components", {}).items():
            sub = comp if isinstance(comp, Mapping) else comp.state
            recurse(prefix + key + "/", sub)

    recurse("", state)
    return flat


def v1_nf(stage: int, fmap_base: int, fmap_max: int, fmap_decay: float = 1.0) -> int:
    """networks_stylegan.G_synthesis nf(): min(int(fmap_base / 2**(stage*decay)), fmap_max)."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def v2_nf(stage: int, fmap_base: int, fmap_max: int, fmap_decay: float = 1.0, fmap_min: int = 1) -> int:
    """networks_stylegan2 nf(): np.clip(int(fmap_base / 2**(stage*decay)), fmap_min, fmap_max)."""
    return int(np.clip(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_min, fmap_max))


def num_layers_for(resolution: int) -> int:
    """Number of dlatent layers of both generators: resolution_log2 * 2 - 2."""
    log2 = int(np.log2(resolution))
    assert resolution == 2 ** log2 and resolution >= 4, resolution
    return log2 * 2 - 2


def resolution_for(num_layers: int) -> int:
    assert num_layers % 2 == 0 and num_layers >= 2, num_layers
    return 2 ** ((num_layers + 2) // 2)


def _synthesis_names(variables: Mapping[str, Any]) -> list[str]:
    gs, _, syn = split_components(variables)
    return list(syn or gs)  # a flat dict, or the synthesis component's own local names


def infer_v2_architecture(variables: Mapping[str, Any]) -> str:
    """'skip' if 4x4/ToRGB exists, else 'resnet' if any Skip/weight exists, else 'orig'."""
    syn = _synthesis_names(variables)
    if "4x4/ToRGB/weight" in syn:
        return "skip"
    if any(k.endswith("/Skip/weight") for k in syn):
        return "resnet"
    return "orig"


def infer_resolution(variables: Mapping[str, Any]) -> int:
    """The largest '{r}x{r}' scope among the synthesis variables."""
    syn = _synthesis_names(variables)
    sizes = [int(m.group(1)) for k in syn for m in [re.match(r"(\d+)x\1/", k)] if m]
    if not sizes:
        raise KeyError("no '{r}x{r}/' synthesis variables")
    return max(sizes)


def _mapping_layer_count(variables: Mapping[str, Any]) -> int:
    n = 0
    while _has(variables, "mapping", f"Dense{n}/weight"):
        n += 1
    if n == 0:
        raise KeyError("no mapping/Dense0/weight")
    return n


# Perturbation recipe of tests/fixtures/nvidia-tf/README.md (the magnitudes; this RNG stream is our own).
def _perturbed_value(name: str, shape: tuple, rnd: np.random.RandomState, v2: bool) -> np.ndarray:
    leaf = name.rsplit("/", 1)[-1]
    is_mapping = name.startswith("mapping/")
    if leaf == "lod":
        return np.zeros((), np.float32)  # stays 0, as in every finished pickle
    if name.endswith("Noise/weight"):  # v1 per-channel noise strength
        return rnd.normal(0.0, 0.3, shape)
    if leaf in ("weight", "mod_weight"):
        return rnd.normal(0.0, 100.0 if is_mapping else 1.0, shape)  # std of the init: 1 / lrmul for mapping
    if leaf in ("bias", "mod_bias"):
        return rnd.normal(0.0, 0.2 / 0.01 if is_mapping else 0.2, shape)
    if leaf == "noise_strength":
        return 0.2 + rnd.normal(0.0, 0.3, shape)
    if leaf.startswith("noise"):
        return rnd.normal(0.0, 1.0, shape)
    if leaf == "const":
        return rnd.normal(0.0, 1.0, shape) if v2 else 1.0 + rnd.normal(0.0, 0.3, shape)
    if leaf == "dlatent_avg":
        return rnd.normal(0.0, 0.3, shape)
    raise KeyError(name)


def _fill(shapes: dict[str, tuple], seed: int, v2: bool) -> dict[str, np.ndarray]:
    rnd = np.random.RandomState(seed)
    values = {}
    for name in sorted(shapes):  # visited in sorted name order, like the fixture recipe
        values[name] = np.asarray(_perturbed_value(name, shapes[name], rnd, v2), dtype=np.float32).reshape(
            shapes[name])
    return {name: values[name] for name in shapes}  # creation order


def _mapping_shapes(latent_size: int, dlatent_size: int, mapping_layers: int, mapping_fmaps: int) -> dict:
    shapes = {}
    for i in range(mapping_layers):
        fin = latent_size if i == 0 else mapping_fmaps
        fout = dlatent_size if i == mapping_layers - 1 else mapping_fmaps
        shapes[f"mapping/Dense{i}/weight"] = (fin, fout)
        shapes[f"mapping/Dense{i}/bias"] = (fout,)
    return shapes


def random_v1_vars(resolution: int, latent_size: int = 512, dlatent_size: int = 512, mapping_layers: int = 8,
                   mapping_fmaps: int = 512, fmap_base: int = 8192, fmap_max: int = 512, seed: int = 0, *,
                   num_channels: int = 3, fmap_decay: float = 1.0) -> dict[str, np.ndarray]:
    """Every variable of a v1 ``Gs`` (G_style, label_size 0), TF names and shapes, in TF creation order
    (Gs, then G_synthesis built as the template 'linear' graph, then G_mapping), perturbed, float32."""
    log2 = int(np.log2(resolution))
    L = num_layers_for(resolution)

    def nf(stage):
        return v1_nf(stage, fmap_base, fmap_max, fmap_decay)

    s: dict[str, tuple] = {"lod": (), "dlatent_avg": (dlatent_size,), "synthesis/lod": ()}
    for i in range(L):
        r = 2 ** (i // 2 + 2)
        s[f"synthesis/noise{i}"] = (1, 1, r, r)  # [1, use_noise, r, r]

    def epilogue(scope, ch):
        s[f"{scope}/Noise/weight"] = (ch,)
        s[f"{scope}/bias"] = (ch,)
        s[f"{scope}/StyleMod/weight"] = (dlatent_size, 2 * ch)
        s[f"{scope}/StyleMod/bias"] = (2 * ch,)

    def torgb(res, ch):
        lod = log2 - res
        s[f"synthesis/ToRGB_lod{lod}/weight"] = (1, 1, ch, num_channels)
        s[f"synthesis/ToRGB_lod{lod}/bias"] = (num_channels,)

    s["synthesis/4x4/Const/const"] = (1, nf(1), 4, 4)
    epilogue("synthesis/4x4/Const", nf(1))
    s["synthesis/4x4/Conv/weight"] = (3, 3, nf(1), nf(1))
    epilogue("synthesis/4x4/Conv", nf(1))
    torgb(2, nf(1))
    for res in range(3, log2 + 1):
        r = 2 ** res
        s[f"synthesis/{r}x{r}/Conv0_up/weight"] = (3, 3, nf(res - 2), nf(res - 1))
        epilogue(f"synthesis/{r}x{r}/Conv0_up", nf(res - 1))
        s[f"synthesis/{r}x{r}/Conv1/weight"] = (3, 3, nf(res - 1), nf(res - 1))
        epilogue(f"synthesis/{r}x{r}/Conv1", nf(res - 1))
        torgb(res, nf(res - 1))
    s.update(_mapping_shapes(latent_size, dlatent_size, mapping_layers, mapping_fmaps))
    return _fill(s, seed, v2=False)


def random_v2_vars(resolution: int, latent_size: int = 512, dlatent_size: int = 512, mapping_layers: int = 8,
                   mapping_fmaps: int = 512, fmap_base: int = 16 << 10, fmap_max: int = 512,
                   architecture: str = "skip", seed: int = 0, *, num_channels: int = 3, fmap_decay: float = 1.0,
                   fmap_min: int = 1) -> dict[str, np.ndarray]:
    """Every variable of a v2 ``Gs`` (G_main + G_synthesis_stylegan2, label_size 0), TF names and shapes, in
    TF creation order, perturbed, float32. G_synthesis_stylegan2 has no ``lod``; G_main does."""
    assert architecture in ("orig", "skip", "resnet")
    log2 = int(np.log2(resolution))
    L = num_layers_for(resolution)

    def nf(stage):
        return v2_nf(stage, fmap_base, fmap_max, fmap_decay, fmap_min)

    s: dict[str, tuple] = {"lod": (), "dlatent_avg": (dlatent_size,)}
    for i in range(L - 1):
        r = 2 ** ((i + 5) // 2)
        s[f"synthesis/noise{i}"] = (1, 1, r, r)

    def layer(scope, cin, cout, kernel=3):
        s[f"{scope}/weight"] = (kernel, kernel, cin, cout)
        s[f"{scope}/mod_weight"] = (dlatent_size, cin)
        s[f"{scope}/mod_bias"] = (cin,)
        s[f"{scope}/noise_strength"] = ()
        s[f"{scope}/bias"] = (cout,)

    def torgb(scope, cin):
        s[f"{scope}/ToRGB/weight"] = (1, 1, cin, num_channels)
        s[f"{scope}/ToRGB/mod_weight"] = (dlatent_size, cin)
        s[f"{scope}/ToRGB/mod_bias"] = (cin,)
        s[f"{scope}/ToRGB/bias"] = (num_channels,)

    s["synthesis/4x4/Const/const"] = (1, nf(1), 4, 4)
    layer("synthesis/4x4/Conv", nf(1), nf(1))
    if architecture == "skip":
        torgb("synthesis/4x4", nf(1))
    for res in range(3, log2 + 1):
        scope = f"synthesis/{2 ** res}x{2 ** res}"
        layer(f"{scope}/Conv0_up", nf(res - 2), nf(res - 1))
        layer(f"{scope}/Conv1", nf(res - 1), nf(res - 1))
        if architecture == "resnet":
            s[f"{scope}/Skip/weight"] = (1, 1, nf(res - 2), nf(res - 1))
        if architecture == "skip" or res == log2:
            torgb(scope, nf(res - 1))
    s.update(_mapping_shapes(latent_size, dlatent_size, mapping_layers, mapping_fmaps))
    return _fill(s, seed, v2=True)


# ----------------------------------------------------------------------------------------------------------
# Shared and v1 ops (torch tensors, NCHW, TF weight layouts).

def get_weight(w: torch.Tensor, gain: float = SQRT2, use_wscale: bool = True, lrmul: float = 1.0) -> torch.Tensor:
    """The runtime weight of get_weight(): the stored variable times runtime_coef.
    fan_in = prod(shape[:-1]); wscale: he_std * lrmul, with he_std = gain / sqrt(fan_in); else lrmul."""
    fan_in = int(np.prod(w.shape[:-1]))
    he_std = gain / np.sqrt(fan_in)
    runtime_coef = he_std * lrmul if use_wscale else lrmul
    return w * runtime_coef


def leaky_relu(x: torch.Tensor, alpha: float = LRELU_ALPHA) -> torch.Tensor:
    """v1 leaky_relu: tf.maximum(x, x * alpha) (== tf.nn.leaky_relu for 0 < alpha < 1, used by v2)."""
    return torch.maximum(x, x * alpha)


def pixel_norm(x: torch.Tensor, epsilon: float = 1e-8) -> torch.Tensor:
    """x * rsqrt(mean(x^2, axis=1) + eps) (v1 pixel_norm; v2 'Normalize' is the same expression)."""
    return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + epsilon)


def instance_norm(x: torch.Tensor, epsilon: float = 1e-8) -> torch.Tensor:
    """x -= mean over HW; x *= rsqrt(mean(x^2) over HW + eps). The official eps is 1e-8 (not 1e-5)."""
    x = x - torch.mean(x, dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(torch.mean(x * x, dim=(2, 3), keepdim=True) + epsilon)


def apply_noise(x: torch.Tensor, noise: torch.Tensor | None, weight: torch.Tensor) -> torch.Tensor:
    """x + noise * weight[1, C, 1, 1]; noise [N or 1, 1, H, W]; None = no noise added."""
    if noise is None:
        return x
    return x + noise * weight.reshape(1, -1, 1, 1)


def apply_bias(x: torch.Tensor, b: torch.Tensor, lrmul: float = 1.0) -> torch.Tensor:
    b = b * lrmul
    return x + (b if x.ndim == 2 else b.reshape(1, -1, 1, 1))


def style_mod(x: torch.Tensor, dlatent: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """style = dense(dlatent, 2C, gain=1, wscale) + bias; x * (style[:, 0] + 1) + style[:, 1]."""
    style = apply_bias(dlatent @ get_weight(weight, gain=1.0), bias)
    style = style.reshape(-1, 2, x.shape[1], 1, 1)
    return x * (style[:, 0] + 1) + style[:, 1]


def tf_conv2d(x: torch.Tensor, w: torch.Tensor, padding: str = "SAME") -> torch.Tensor:
    """tf.nn.conv2d(x, w, strides 1, NCHW) with w [kh, kw, in_per_group, out]. Both TF and torch compute a
    cross-correlation, so the kernel is only permuted to torch's [out, in, kh, kw], never flipped. An input
    with G * in_per_group channels is a grouped convolution (as TF does when depths are a multiple)."""
    kh, kw, cin, cout = w.shape
    groups = x.shape[1] // cin
    assert groups * cin == x.shape[1] and cout % groups == 0
    if padding == "SAME":
        assert kh % 2 == 1 and kw % 2 == 1  # stride 1, odd kernel: TF pads (k-1)//2 on both sides
        pad = (kh // 2, kw // 2)
    else:
        pad = (0, 0)
    return F.conv2d(x, w.permute(3, 2, 0, 1), padding=pad, groups=groups)


def tf_conv2d_transpose(x: torch.Tensor, w: torch.Tensor, output_shape: Sequence[int], stride: int,
                        padding: str) -> torch.Tensor:
    """tf.nn.conv2d_transpose(x, w, output_shape, strides=[1, 1, s, s], padding, data_format='NCHW').

    TF defines it as the gradient (adjoint) of tf.nn.conv2d(y, w, stride s, padding) with respect to its input
    y of shape output_shape; w is [kh, kw, out_per_group(y), in(x)]. For SAME, the forward conv pads
    pad_total = max((H_x - 1) * s + kh - H_y, 0) with pad_top = pad_total // 2, so it reads
    x[i] = sum_a y[s*i + a - pad_top] * w[a]; its adjoint is y[j] = sum_{s*i + a - pad_top = j} x[i] * w[a]
    (VALID: pad_top = 0). torch's conv_transpose2d with padding 0 is the adjoint of torch's conv2d (also a
    cross-correlation, same spatial indexing): full[j'] = sum_{s*i + a = j'} x[i] * w[a], of size
    (H_x - 1) * s + kh. So y = full[pad_top : pad_top + H_y], zero-extended where no input reaches. The weight
    is permuted, never flipped: torch wants [in(x), out_per_group, kh, kw] = w.permute(3, 2, 0, 1); when
    output_shape has G * out_per_group channels this is the grouped op (G = groups), as TF infers it.
    """
    kh, kw, cout_g, cin = w.shape
    assert x.shape[1] == cin
    n, cout, hy, wy = (int(v) for v in output_shape)
    groups = cout // cout_g
    assert groups * cout_g == cout
    hx, wx = x.shape[2], x.shape[3]
    full = F.conv_transpose2d(x, w.permute(3, 2, 0, 1), stride=stride, groups=groups)
    if padding == "SAME":
        assert -(-hy // stride) == hx and -(-wy // stride) == wx
        top = max((hx - 1) * stride + kh - hy, 0) // 2
        left = max((wx - 1) * stride + kw - wy, 0) // 2
    else:
        assert (hy - kh) // stride + 1 == hx and (wy - kw) // stride + 1 == wx
        top = left = 0
    y = full[:, :, top:top + hy, left:left + wy]
    if y.shape[2] < hy or y.shape[3] < wy:
        y = F.pad(y, (0, wy - y.shape[3], 0, hy - y.shape[2]))
    assert n in (-1, x.shape[0])
    return y


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upscale by tile: reshape [-1, C, H, 1, W, 1], tile, reshape."""
    if factor == 1:
        return x
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1).expand(n, c, h, factor, w, factor)
    return x.reshape(n, c, h * factor, w * factor)


def blur2d(x: torch.Tensor, f: Sequence[float] = (1, 2, 1), normalize: bool = True) -> torch.Tensor:
    """_blur2d: outer(f, f) (/ sum), depthwise_conv2d stride 1 'SAME' (odd kernel: pad (k-1)//2 per side)."""
    f = np.asarray(f, dtype=np.float32)
    if f.ndim == 1:
        f = f[:, np.newaxis] * f[np.newaxis, :]
    if normalize:
        f = f / np.sum(f)
    assert f.shape[0] % 2 == 1 and f.shape[1] % 2 == 1
    k = torch.from_numpy(np.ascontiguousarray(f)).to(x.dtype)
    c = x.shape[1]
    return F.conv2d(x, k.expand(c, 1, *k.shape), padding=(f.shape[0] // 2, f.shape[1] // 2), groups=c)


def upscale2d_conv2d(x: torch.Tensor, w: torch.Tensor, fused_scale: bool | str = "auto") -> torch.Tensor:
    """networks_stylegan.upscale2d_conv2d with the runtime weight w [k, k, in, out] (get_weight applied).

    Not fused: conv2d(upscale2d(x), w) 'SAME'. Fused (auto: output side >= 128):
    w = transpose(w, [0, 1, 3, 2]); pad 1 on both spatial sides; add_n of the four shifts
    w[1:, 1:], w[:-1, 1:], w[1:, :-1], w[:-1, :-1]; conv2d_transpose(x, w, [N, out, 2H, 2W], stride 2, 'SAME').
    """
    assert fused_scale in (True, False, "auto")
    if fused_scale == "auto":
        fused_scale = min(x.shape[2:]) * 2 >= 128
    if not fused_scale:
        return tf_conv2d(upscale2d(x), w)
    wt = w.permute(0, 1, 3, 2)  # [kernel, kernel, fmaps_out, fmaps_in]
    wt = F.pad(wt, (0, 0, 0, 0, 1, 1, 1, 1))  # pads dims 0 and 1 by [1, 1]
    wt = wt[1:, 1:] + wt[:-1, 1:] + wt[1:, :-1] + wt[:-1, :-1]
    os = [x.shape[0], w.shape[3], x.shape[2] * 2, x.shape[3] * 2]
    return tf_conv2d_transpose(x, wt, os, stride=2, padding="SAME")


# ----------------------------------------------------------------------------------------------------------
# v2 ops: upfirdn_2d.py and fused_bias_act.py, 'ref' implementations.

def setup_kernel(k: Sequence[float] | np.ndarray) -> np.ndarray:
    """_setup_kernel: float32, outer product if 1-D, normalised to sum 1."""
    k = np.asarray(k, dtype=np.float32)
    if k.ndim == 1:
        k = np.outer(k, k)
    k /= np.sum(k)
    assert k.ndim == 2 and k.shape[0] == k.shape[1]
    return k


def upfirdn_2d(x: torch.Tensor, k: np.ndarray, up: int = 1, down: int = 1, pad0: int = 0,
               pad1: int = 0) -> torch.Tensor:
    """_simple_upfirdn_2d(NCHW) + _upfirdn_2d_ref: per channel, insert up-1 zeros after each pixel, pad by
    (pad0, pad1) on both axes (negative = crop), tf.nn.conv2d 'VALID' with k[::-1, ::-1] (i.e. a true
    convolution with k), keep every down-th pixel."""
    n, c, h, w = x.shape
    kh, kw = k.shape
    y = x.reshape(-1, h, 1, w, 1)
    y = F.pad(y, (0, up - 1, 0, 0, 0, up - 1))  # dims: [-1, H, up, W, up] zero-fill after each pixel
    y = y.reshape(-1, 1, h * up, w * up)
    y = F.pad(y, (max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)))
    y = y[:, :, max(-pad0, 0):y.shape[2] - max(-pad1, 0), max(-pad0, 0):y.shape[3] - max(-pad1, 0)]
    kk = torch.from_numpy(np.ascontiguousarray(k[::-1, ::-1])).to(x.dtype)[None, None]
    y = F.conv2d(y, kk)  # TF conv2d is a cross-correlation, as torch's: pass the flipped kernel, like TF
    y = y[:, :, ::down, ::down]
    return y.reshape(n, c, y.shape[2], y.shape[3])


def upsample_2d(x: torch.Tensor, k: Sequence[float] | None = (1, 3, 3, 1), factor: int = 2,
                gain: float = 1) -> torch.Tensor:
    """upsample_2d: k = setup_kernel(k) * gain * factor**2; p = k.shape[0] - factor;
    upfirdn(up=factor, pad0=(p+1)//2 + factor-1, pad1=p//2)."""
    if k is None:
        k = [1] * factor
    kk = setup_kernel(k) * (gain * (factor ** 2))
    p = kk.shape[0] - factor
    return upfirdn_2d(x, kk, up=factor, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2)


def upsample_conv_2d(x: torch.Tensor, w: torch.Tensor, k: Sequence[float] | None = (1, 3, 3, 1), factor: int = 2,
                     gain: float = 1) -> torch.Tensor:
    """upsample_conv_2d, literally: w [convH, convW, inC, outC] (inC = x channels / num_groups);
    k = setup_kernel(k) * gain * factor**2; p = (k.shape[0] - factor) - (convW - 1);
    w = reshape(w, [convH, convW, inC, G, -1]); w = transpose(w[::-1, ::-1], [0, 1, 4, 3, 2]);
    w = reshape(w, [convH, convW, -1, G * inC]);
    x = conv2d_transpose(x, w, [N, outC, (H-1)*factor + convH, (W-1)*factor + convW], stride factor, 'VALID');
    then upfirdn(x, k, pad0=(p+1)//2 + factor-1, pad1=p//2 + 1)."""
    conv_h, conv_w, in_c, out_c = w.shape
    assert conv_h == conv_w
    if k is None:
        k = [1] * factor
    kk = setup_kernel(k) * (gain * (factor ** 2))
    p = (kk.shape[0] - factor) - (conv_w - 1)
    output_shape = [x.shape[0], out_c, (x.shape[2] - 1) * factor + conv_h, (x.shape[3] - 1) * factor + conv_w]
    num_groups = x.shape[1] // in_c
    w = w.reshape(conv_h, conv_w, in_c, num_groups, -1)
    w = torch.flip(w, dims=(0, 1)).permute(0, 1, 4, 3, 2)
    w = w.reshape(conv_h, conv_w, -1, num_groups * in_c)
    x = tf_conv2d_transpose(x, w, output_shape, stride=factor, padding="VALID")
    return upfirdn_2d(x, kk, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2 + 1)


_ACT_DEFAULTS = {"linear": (None, 1.0), "lrelu": (0.2, SQRT2), "relu": (None, SQRT2)}


def fused_bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", alpha: float | None = None,
                   gain: float | None = None) -> torch.Tensor:
    """_fused_bias_act_ref: x + b (axis 1), activation, times gain (defaults: linear 1, lrelu 0.2 & sqrt 2)."""
    def_alpha, def_gain = _ACT_DEFAULTS[act]
    alpha = def_alpha if alpha is None else alpha
    gain = def_gain if gain is None else gain
    if b is not None:
        x = x + b.reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    if act == "lrelu":
        x = leaky_relu(x, alpha)
    elif act == "relu":
        x = torch.relu(x)
    if gain != 1:
        x = x * gain
    return x


def modulated_conv2d_layer(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, mod_weight: torch.Tensor,
                           mod_bias: torch.Tensor, *, up: bool = False, demodulate: bool = True,
                           resample_kernel: Sequence[float] | None = (1, 3, 3, 1),
                           fused_modconv: bool = False) -> torch.Tensor:
    """networks_stylegan2.modulated_conv2d_layer (gain 1, wscale, lrmul 1) on raw variables.

    w = get_weight(weight, gain=1); s = dense(y, mod_weight) + mod_bias + 1; ww = w[None] * s[:, None, None, :,
    None]; d = rsqrt(sum(ww^2, axis=[1, 2, 3]) + 1e-8). fused_modconv=False (default): x * s, conv with w, times
    d. fused_modconv=True: the TF graph default, one grouped conv over the minibatch with ww * d. Same math.
    """
    w = get_weight(weight, gain=1.0)  # [k, k, I, O]
    ww = w[None]  # [B, k, k, I, O]
    s = fused_bias_act(y @ get_weight(mod_weight, gain=1.0), mod_bias) + 1  # [B, I]
    ww = ww * s[:, None, None, :, None]
    d = None
    if demodulate:
        d = torch.rsqrt(torch.sum(ww * ww, dim=(1, 2, 3)) + 1e-8)  # [B, O]
        ww = ww * d[:, None, None, None, :]
    fmaps = w.shape[3]
    if fused_modconv:
        n = x.shape[0]
        x = x.reshape(1, -1, x.shape[2], x.shape[3])
        w = ww.permute(1, 2, 3, 0, 4).reshape(ww.shape[1], ww.shape[2], ww.shape[3], -1)
    else:
        x = x * s[:, :, None, None]
    if up:
        x = upsample_conv_2d(x, w, k=resample_kernel)
    else:
        x = tf_conv2d(x, w)
    if fused_modconv:
        x = x.reshape(n, fmaps, x.shape[2], x.shape[3])
    elif demodulate:
        x = x * d[:, :, None, None]
    return x


# ----------------------------------------------------------------------------------------------------------
# Models.

def _noise_list(noise: NoiseSpec, variables: Mapping[str, Any], count: int, dtype: torch.dtype) -> list:
    if isinstance(noise, str):
        if noise == "const":
            return [_t(_lookup(variables, "synthesis", f"noise{i}"), dtype) for i in range(count)]
        if noise == "none":
            return [None] * count
        raise ValueError(f"noise must be 'const', 'none' or a sequence of arrays, not {noise!r}")
    noise = list(noise)
    if len(noise) != count:
        raise ValueError(f"expected {count} noise arrays, got {len(noise)}")
    return [None if a is None else _t(a, dtype).reshape(-1, 1, *np.shape(a)[-2:]) for a in noise]


def _check_lod(variables: Mapping[str, Any], keys: Sequence[str]) -> None:
    for key in keys:
        if key in variables and float(np.asarray(variables[key])) != 0.0:
            raise NotImplementedError(f"{key} = {float(np.asarray(variables[key]))}: only lod 0 is implemented")


def _broadcast(x: torch.Tensor, broadcast: int | None) -> torch.Tensor:
    return x if broadcast is None else x[:, None, :].expand(-1, broadcast, -1)


def v1_mapping(variables: Mapping[str, Any], z, mapping_layers: int | None = None, lrmul: float = 0.01, *,
               broadcast: int | None = None, dtype=np.float64) -> np.ndarray:
    """networks_stylegan.G_mapping (label_size 0): pixel_norm (eps 1e-8), then per layer
    lrelu_0.2(x @ (W * sqrt(2)/sqrt(fan_in) * lrmul) + b * lrmul), no gain after the activation.
    Returns [N, dlatent_size], or [N, broadcast, dlatent_size] (the dlatent_broadcast tile)."""
    dt = _torch_dtype(dtype)
    n_layers = _mapping_layer_count(variables) if mapping_layers is None else mapping_layers
    x = pixel_norm(_t(z, dt))
    for i in range(n_layers):
        w = _t(_lookup(variables, "mapping", f"Dense{i}/weight"), dt)
        b = _t(_lookup(variables, "mapping", f"Dense{i}/bias"), dt)
        x = x @ get_weight(w, gain=SQRT2, lrmul=lrmul)
        x = apply_bias(x, b, lrmul=lrmul)
        x = leaky_relu(x)
    return _broadcast(x, broadcast).numpy()


def v2_mapping(variables: Mapping[str, Any], z, mapping_layers: int | None = None, lrmul: float = 0.01, *,
               broadcast: int | None = None, dtype=np.float64) -> np.ndarray:
    """networks_stylegan2.G_mapping (label_size 0): Normalize (eps 1e-8), then per layer
    fused_bias_act(x @ (W / sqrt(fan_in) * lrmul), b * lrmul, 'lrelu') = sqrt(2) * lrelu_0.2(...)."""
    dt = _torch_dtype(dtype)
    n_layers = _mapping_layer_count(variables) if mapping_layers is None else mapping_layers
    x = pixel_norm(_t(z, dt))
    for i in range(n_layers):
        w = _t(_lookup(variables, "mapping", f"Dense{i}/weight"), dt)
        b = _t(_lookup(variables, "mapping", f"Dense{i}/bias"), dt)
        x = fused_bias_act(x @ get_weight(w, gain=1.0, lrmul=lrmul), b * lrmul, act="lrelu")
    return _broadcast(x, broadcast).numpy()


def v1_synthesis(variables: Mapping[str, Any], dlatents, resolution: int | None = None, noise: NoiseSpec = "const",
                 fused_scale: bool | str = "auto", *, instance_norm_eps: float = 1e-8,
                 blur_filter: Sequence[float] | None = (1, 2, 1), dtype=np.float64) -> np.ndarray:
    """networks_stylegan.G_synthesis with its defaults (const input, noise, styles, instance norm, lrelu,
    wscale, blur [1,2,1]) at lod 0, randomize_noise=False. dlatents [N, L, D] -> images [N, C, R, R].

    Layer epilogue: + noise * per-channel weight, + bias, lrelu 0.2, instance_norm(eps), style_mod.
    4x4: tile(const) -> epilogue 0; Conv (3x3, gain sqrt2) -> epilogue 1. Block res: Conv0_up =
    blur(upscale2d_conv2d(x)) -> epilogue 2res-4; Conv1 -> epilogue 2res-3. Output = ToRGB_lod0 (1x1, gain 1) +
    bias: the recursive graph at lod 0 selects exactly that.
    noise: "const" (the noise{i} variables), "none" (no noise added) or a list of L arrays [1 or N, 1, r, r].
    """
    dt = _torch_dtype(dtype)
    wl = _t(dlatents, dt)
    resolution = resolution_for(wl.shape[1]) if resolution is None else resolution
    log2 = int(np.log2(resolution))
    L = num_layers_for(resolution)
    assert wl.shape[1] == L, (wl.shape, L)
    _check_lod(variables, ["lod", "synthesis/lod", "G_synthesis/lod"])
    noises = _noise_list(noise, variables, L, dt)

    def v(name):
        return _t(_lookup(variables, "synthesis", name), dt)

    def epilogue(x, layer_idx, scope):
        x = apply_noise(x, noises[layer_idx], v(f"{scope}/Noise/weight"))
        x = apply_bias(x, v(f"{scope}/bias"))
        x = leaky_relu(x)
        x = instance_norm(x, instance_norm_eps)
        return style_mod(x, wl[:, layer_idx], v(f"{scope}/StyleMod/weight"), v(f"{scope}/StyleMod/bias"))

    x = v("4x4/Const/const").expand(wl.shape[0], -1, -1, -1)
    x = epilogue(x, 0, "4x4/Const")
    x = epilogue(tf_conv2d(x, get_weight(v("4x4/Conv/weight"), gain=SQRT2)), 1, "4x4/Conv")
    for res in range(3, log2 + 1):
        scope = f"{2 ** res}x{2 ** res}"
        x = upscale2d_conv2d(x, get_weight(v(f"{scope}/Conv0_up/weight"), gain=SQRT2), fused_scale=fused_scale)
        if blur_filter:
            x = blur2d(x, blur_filter)
        x = epilogue(x, res * 2 - 4, f"{scope}/Conv0_up")
        x = epilogue(tf_conv2d(x, get_weight(v(f"{scope}/Conv1/weight"), gain=SQRT2)), res * 2 - 3, f"{scope}/Conv1")
    img = apply_bias(tf_conv2d(x, get_weight(v("ToRGB_lod0/weight"), gain=1.0)), v("ToRGB_lod0/bias"))
    return img.numpy()


def v2_synthesis(variables: Mapping[str, Any], dlatents, resolution: int | None = None, architecture: str = "skip",
                 noise: NoiseSpec = "const", resample_kernel: Sequence[float] | None = (1, 3, 3, 1), *,
                 fused_modconv: bool = False, dtype=np.float64) -> np.ndarray:
    """networks_stylegan2.G_synthesis_stylegan2 (randomize_noise=False). dlatents [N, L, D] -> [N, C, R, R].

    layer(idx): modulated_conv2d_layer (demodulated) -> + noise{idx} * noise_strength -> fused_bias_act lrelu
    (gain sqrt 2). 4x4: const -> Conv (idx 0). Block res: Conv0_up (idx 2res-5, up) -> Conv1 (idx 2res-4);
    resnet: Skip = upsample_conv_2d 1x1 (no bias) of the block input, x = (x + t) / sqrt(2).
    ToRGB(res) = modulated 1x1 conv (no demodulation, dlatent idx 2res-3) + bias. skip: y = ToRGB(4x4), then per
    block y = upsample_2d(y) + ToRGB(res); orig / resnet: only the last ToRGB.
    noise: "const", "none" or a list of L-1 arrays [1 or N, 1, r, r].
    """
    assert architecture in ("orig", "skip", "resnet")
    dt = _torch_dtype(dtype)
    wl = _t(dlatents, dt)
    resolution = resolution_for(wl.shape[1]) if resolution is None else resolution
    log2 = int(np.log2(resolution))
    L = num_layers_for(resolution)
    assert wl.shape[1] == L, (wl.shape, L)
    noises = _noise_list(noise, variables, L - 1, dt)

    def v(name):
        return _t(_lookup(variables, "synthesis", name), dt)

    def layer(x, layer_idx, scope, up=False):
        x = modulated_conv2d_layer(x, wl[:, layer_idx], v(f"{scope}/weight"), v(f"{scope}/mod_weight"),
                                   v(f"{scope}/mod_bias"), up=up, resample_kernel=resample_kernel,
                                   fused_modconv=fused_modconv)
        if noises[layer_idx] is not None:
            x = x + noises[layer_idx] * v(f"{scope}/noise_strength")
        return fused_bias_act(x, v(f"{scope}/bias"), act="lrelu")

    def torgb(x, y, res, scope):
        t = modulated_conv2d_layer(x, wl[:, res * 2 - 3], v(f"{scope}/ToRGB/weight"), v(f"{scope}/ToRGB/mod_weight"),
                                   v(f"{scope}/ToRGB/mod_bias"), demodulate=False, fused_modconv=fused_modconv)
        t = fused_bias_act(t, v(f"{scope}/ToRGB/bias"))
        return t if y is None else y + t

    y = None
    x = v("4x4/Const/const").expand(wl.shape[0], -1, -1, -1)
    x = layer(x, 0, "4x4/Conv")
    if architecture == "skip":
        y = torgb(x, y, 2, "4x4")
    for res in range(3, log2 + 1):
        scope = f"{2 ** res}x{2 ** res}"
        t = x
        x = layer(x, res * 2 - 5, f"{scope}/Conv0_up", up=True)
        x = layer(x, res * 2 - 4, f"{scope}/Conv1")
        if architecture == "resnet":
            t = upsample_conv_2d(t, get_weight(v(f"{scope}/Skip/weight"), gain=1.0), k=resample_kernel)
            x = (x + t) * (1 / np.sqrt(2))
        if architecture == "skip":
            y = upsample_2d(y, k=resample_kernel)
        if architecture == "skip" or res == log2:
            y = torgb(x, y, res, scope)
    return y.numpy()


def truncate(dlatents, dlatent_avg, psi: float | None = 0.7, cutoff: int | None = None, *, version: int = 2,
             dtype=np.float64) -> np.ndarray:
    """The truncation trick as the graphs do it: lerp(dlatent_avg, dlatents, coefs) = avg + (w - avg) * coefs,
    coefs = psi for layer < cutoff, 1 otherwise.

    version=2 (G_main): psi None or 1 -> unchanged; cutoff None -> every layer (also the style-mixing recipe).
    version=1 (G_style): psi None or 1 -> unchanged; cutoff None or <= 0 -> unchanged (no truncation at all).
    Graph defaults: V1_TRUNCATION = (0.7, 8), V2_TRUNCATION = (0.5, None).
    """
    nd = _np_dtype(dtype)
    w = np.asarray(dlatents, dtype=nd)
    avg = np.asarray(dlatent_avg, dtype=nd)
    if psi is None or psi == 1:
        return w.copy()
    if version == 1 and (cutoff is None or cutoff <= 0):
        return w.copy()
    layer_idx = np.arange(w.shape[1])[np.newaxis, :, np.newaxis]
    if cutoff is None:
        coefs = np.full(layer_idx.shape, psi, dtype=nd)
    else:
        coefs = np.where(layer_idx < cutoff, np.asarray(psi, nd), np.asarray(1, nd))
    return avg + (w - avg) * coefs


def v1_run(variables: Mapping[str, Any], z, resolution: int | None = None,
           truncation_psi: float | None = V1_TRUNCATION[0], truncation_cutoff: int | None = V1_TRUNCATION[1],
           noise: NoiseSpec = "const", fused_scale: bool | str = "auto", *, dtype=np.float64) -> np.ndarray:
    """Gs.run(z, None, randomize_noise=False) of G_style: mapping, truncation (graph defaults psi 0.7,
    cutoff 8) with the Gs-level dlatent_avg, synthesis."""
    dt = _torch_dtype(dtype)
    resolution = infer_resolution(variables) if resolution is None else resolution
    w = v1_mapping(variables, z, broadcast=num_layers_for(resolution), dtype=dt)
    w = truncate(w, _lookup(variables, None, "dlatent_avg"), truncation_psi, truncation_cutoff, version=1, dtype=dt)
    return v1_synthesis(variables, w, resolution, noise=noise, fused_scale=fused_scale, dtype=dt)


def v2_run(variables: Mapping[str, Any], z, resolution: int | None = None,
           truncation_psi: float | None = V2_TRUNCATION[0], truncation_cutoff: int | None = V2_TRUNCATION[1],
           architecture: str | None = None, noise: NoiseSpec = "const", *, fused_modconv: bool = False,
           dtype=np.float64) -> np.ndarray:
    """Gs.run(z, None, randomize_noise=False) of G_main: mapping, truncation (graph defaults psi 0.5,
    cutoff None = all layers) with the Gs-level dlatent_avg, synthesis. architecture None = inferred."""
    dt = _torch_dtype(dtype)
    resolution = infer_resolution(variables) if resolution is None else resolution
    architecture = infer_v2_architecture(variables) if architecture is None else architecture
    w = v2_mapping(variables, z, broadcast=num_layers_for(resolution), dtype=dt)
    w = truncate(w, _lookup(variables, None, "dlatent_avg"), truncation_psi, truncation_cutoff, version=2, dtype=dt)
    return v2_synthesis(variables, w, resolution, architecture, noise=noise, fused_modconv=fused_modconv, dtype=dt)


def convert_images_to_uint8(images, drange=(-1, 1), nchw_to_nhwc: bool = True) -> np.ndarray:
    """tflib.convert_images_to_uint8: float32; x * scale + (0.5 - drange[0] * scale) (scale = 255/2 -> 127.5,
    128); tf.saturate_cast to uint8 = clip to [0, 255], then truncate (round half up of (x+1)*127.5)."""
    x = np.asarray(images, dtype=np.float32)
    if nchw_to_nhwc:
        x = x.transpose(0, 2, 3, 1)
    scale = 255 / (drange[1] - drange[0])
    x = x * np.float32(scale) + np.float32(0.5 - drange[0] * scale)
    return np.trunc(np.clip(x, 0, 255)).astype(np.uint8)
