"""NVIDIA's TensorFlow StyleGAN (v1) and StyleGAN2 pickles -> our format, without TensorFlow.

The official 2019 models (`karras2019stylegan-*.pkl`, `stylegan2-*-config-*.pkl`) are pickled
`(G, D, Gs)` tuples of `dnnlib.tflib.network.Network`. `reader.read_tf_pickle` reads them with an
allow-list unpickler (the embedded `build_module_src` is never run) and hands back `Gs`: its build
function, static kwargs and variables. This module turns those into a `GeneratorConfig` and our
tensors, checking every kwarg, variable name and shape before anything is built:

    Gs "G_style"  (NVlabs/stylegan)   mapping "G_mapping" + synthesis "G_synthesis"
        -> arch "stylegan1", variant "nvidia" (instance-norm eps 1e-8, bias after the blur, bias on
           the 4x4 constant: see models/stylegan1.py); up-sampling layers at >= 128 px (fused_scale
           "auto") run fused, and their kernels are stored for conv2d_transpose: rotated 180 degrees
           they become the "nearest up, then 3x3 conv" kernels our layer takes.
    Gs "G_main"   (NVlabs/stylegan2)  mapping "G_mapping" + synthesis "G_synthesis_stylegan2"
        -> arch "stylegan2", architecture orig / skip / resnet, the official PyTorch names (the
           up-sampling conv kernels and the resnet skips flipped, as stylegan2-ada-pytorch's
           converter does: TF's upsample_conv_2d flips them back at run time).

Variable maps (TF -> ours; W^T = transposed dense weight, K = conv kernel [k, k, I, O] -> [O, I, k, k]):
    mapping/Dense{i}/weight, bias        mapping.fc{i}.weight = W^T; .bias = b (v2), b / sqrt 2 (v1: NVIDIA's
                                         v1 mapping puts the gain sqrt 2 inside the leaky ReLU, ours after it)
    dlatent_avg                          mapping.w_avg
    v1 synthesis/{r}x{r}/{layer}/weight  synthesis.b{r}.layer{0,1}.weight = K (rotated 180 degrees when fused)
         .../bias, Noise/weight          .bias, .noise_strength (4x4/Const: b4.layer0.bias, no weight)
         .../StyleMod/weight, bias       .affine.weight = W^T, .affine.bias = b + [1]*C ++ [0]*C
         noise{i}                        layer i's noise_const (two per resolution)
         ToRGB_lod{l}/weight, bias       synthesis.b{R / 2**l}.torgb.weight = K, .bias
    v2 synthesis/...                     as stylegan2-ada-pytorch's legacy converter: Conv0_up -> conv0
                                         (flipped), Conv1 / Conv -> conv1, mod_weight -> affine.weight^T,
                                         mod_bias + 1 -> affine.bias, noise_strength, ToRGB -> torgb,
                                         Skip -> skip (flipped), noise{i} -> noise_const

What the graph does by default (v1: psi 0.7 on the first 8 layers; v2: psi 0.5 on all) is recorded in
the metadata, not applied: our calls take psi (and cutoff) explicitly.

Refused with a ValueError naming the reason: other build functions (ProGAN's G_paper, StyleGAN2's
configs B-D `G_synthesis_stylegan_revised`), conditional generators (label_size > 0: the label is
concatenated to z before the normalisation, which our mapping network does not do), a snapshot taken
during progressive growing (lod != 0), any static kwarg we do not know or a value that changes the
network in a way we do not implement (relu, no styles, pixel norm, another blur, ...), missing,
unexpected or wrongly shaped variables, and NaN / Inf.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...config import GeneratorConfig, check_config_sizes
from ...formats.checkpoint import W_AVG_KEY, Checkpoint, few, tensor_mismatches
from ..common import json_safe, stylegan2_filter_buffers
from .reader import read_tf_pickle

V1, V2 = "stylegan1", "stylegan2"
FAMILIES = {
    # Gs build function -> (family, mapping build function, synthesis build functions)
    "G_style": (V1, "G_mapping", ("G_synthesis",)),
    "G_main": (V2, "G_mapping", ("G_synthesis_stylegan2",)),
}
KNOWN_ELSEWHERE = {
    "G_paper": "a ProGAN generator (NVlabs/progressive_growing_of_gans), not a StyleGAN",
    "G_synthesis_stylegan_revised": "StyleGAN2's configs B-D (progressive growing, no skips); only "
                                    "G_synthesis_stylegan2 (configs E and F) is supported",
}
FUSED_SCALE_FROM = 128      # v1 fused_scale="auto": up-sampling layers with output >= 128 px are fused

# Static kwargs each family may carry, and what they must be: None = any (no effect on a finished
# generator: training, graph-building and default-truncation options), else the allowed values.
_COMMON_KWARGS: dict[str, tuple[Any, ...] | None] = {
    "num_channels": None, "resolution": None, "label_size": (0,), "latent_size": None, "dlatent_size": None,
    "fmap_base": None, "fmap_decay": None, "fmap_max": None, "mapping_layers": None, "mapping_fmaps": None,
    "mapping_lrmul": None, "mapping_nonlinearity": ("lrelu",), "normalize_latents": (True,),
    "dlatent_broadcast": None, "dtype": ("float32",), "nonlinearity": ("lrelu",), "randomize_noise": None,
    "truncation_psi": None, "truncation_cutoff": None, "truncation_psi_val": None, "truncation_cutoff_val": None,
    "dlatent_avg_beta": None, "style_mixing_prob": None, "is_training": (False,), "is_validation": (False,),
    "is_template_graph": None, "force_clean_graph": None, "structure": None, "use_wscale": (True,),
}
_FAMILY_KWARGS: dict[str, dict[str, tuple[Any, ...] | None]] = {
    V1: {"use_styles": (True,), "const_input_layer": (True,), "use_noise": (True, False),
         "use_pixel_norm": (False,), "use_instance_norm": (True,), "fused_scale": ("auto", True, False),
         "blur_filter": ([1, 2, 1],)},
    V2: {"fmap_min": None, "architecture": ("orig", "skip", "resnet"), "resample_kernel": None,
         "fused_modconv": None, "mapping_func": ("G_mapping",), "synthesis_func": ("G_synthesis_stylegan2",),
         "return_dlatents": (False,)},
}
# The graphs' default truncation (G_style / G_main signatures), for the record.
GRAPH_DEFAULT_TRUNCATION = {V1: (0.7, 8), V2: (0.5, None)}
_NAME = re.compile(r"^[A-Za-z0-9_./-]+$")


# ----------------------------------------------------------------------------
# Entry points


def import_tf_pickle(path: str | os.PathLike) -> Checkpoint:
    """Read an NVIDIA TensorFlow StyleGAN / StyleGAN2 pickle safely into our format (its `Gs`)."""
    path = os.fspath(path)
    gs = read_tf_pickle(path)
    return import_tf_network(gs, path)


def import_tf_network(gs: Any, source: str) -> Checkpoint:
    """A `reader.TFNetwork` (Gs) -> Checkpoint. `source` names the file in errors and provenance."""
    family = _family(gs, source)
    kwargs = _static_kwargs(gs, family, source)
    variables = {k: _as_float32(v, k, source) for k, v in gs.all_variables().items()}
    if family == V1:
        cfg, tensors = _convert_v1(kwargs, variables, source)
    else:
        cfg, tensors = _convert_v2(kwargs, variables, source)
    bad = sorted(k for k, v in tensors.items() if not np.all(np.isfinite(v)))
    if bad:
        raise ValueError(f"{source}: NaN or Inf in variables behind {few(bad)}")
    psi, cutoff = kwargs.get("truncation_psi", GRAPH_DEFAULT_TRUNCATION[family][0]), \
        kwargs.get("truncation_cutoff", GRAPH_DEFAULT_TRUNCATION[family][1])
    fmt = f"nvidia-tf-{family}"
    cfg = GeneratorConfig.from_dict({**cfg.to_dict(), "source": {
        "format": fmt, "file": os.path.basename(source), "network": "Gs", "build_func": gs.build_func_name}})
    metadata = {
        "imported_from": os.path.basename(source),
        "format": f"NVIDIA TensorFlow {'StyleGAN (v1)' if family == V1 else 'StyleGAN2'} pickle "
                  f"({gs.build_func_name} + {gs.components['synthesis'].build_func_name})",
        "network": "Gs (element 2 of (G, D, Gs)): the moving average of the generator's weights",
        "tflib_pickle_version": gs.version,
        "static_kwargs": json_safe(kwargs),
        "build_module_src_sha256": gs.module_src_sha256,
        "build_module_src": "recorded in the pickle, never executed",
        "graph_default_truncation": {"psi": psi, "cutoff": cutoff,
                                     "note": "what Gs.run() applies when not told otherwise; not applied here "
                                             "(pass psi / cutoff to generate / map)"},
    }
    if family == V1:
        metadata["numerics"] = "StyleGAN v1 variant 'nvidia' (instance-norm eps 1e-8, bias after the blur)"
        metadata["fused_blocks"] = [r for r in cfg.block_resolutions[1:]
                                    if cfg.fused_upsample_from is not None and r >= cfg.fused_upsample_from]
    return Checkpoint(config=cfg, tensors=tensors, metadata=metadata)


# ----------------------------------------------------------------------------
# What the file is


def _family(gs: Any, source: str) -> str:
    func = gs.build_func_name
    if func not in FAMILIES:
        why = KNOWN_ELSEWHERE.get(func, "not a StyleGAN generator build function we know (G_style, G_main)")
        raise ValueError(f"{source}: Gs is built by {func!r}: {why}")
    family, mapping_func, synthesis_funcs = FAMILIES[func]
    if set(gs.components) != {"mapping", "synthesis"}:
        raise ValueError(f"{source}: Gs has components {sorted(gs.components)}, expected mapping and synthesis")
    if gs.components["mapping"].build_func_name != mapping_func:
        raise ValueError(f"{source}: the mapping network is built by {gs.components['mapping'].build_func_name!r}, "
                         f"expected {mapping_func!r}")
    synthesis = gs.components["synthesis"].build_func_name
    if synthesis not in synthesis_funcs:
        why = KNOWN_ELSEWHERE.get(synthesis, f"expected {' or '.join(synthesis_funcs)}")
        raise ValueError(f"{source}: the synthesis network is built by {synthesis!r}: {why}")
    for net in (gs, *gs.components.values()):
        if net.components and net is not gs:
            raise ValueError(f"{source}: sub-network {net.name!r} has components of its own")
    return family


def _static_kwargs(gs: Any, family: str, source: str) -> dict[str, Any]:
    """The kwargs Gs and its components were built with, merged and checked against what we implement."""
    allowed = {**_COMMON_KWARGS, **_FAMILY_KWARGS[family]}
    merged: dict[str, Any] = {}
    for net in (gs, gs.components["mapping"], gs.components["synthesis"]):
        for k, v in net.static_kwargs.items():
            if k not in allowed:
                raise ValueError(f"{source}: unknown static kwarg {k!r} = {_short(v)} in {net.name!r} "
                                 f"(it may change the network; refusing rather than guessing)")
            values = allowed[k]
            if values is not None and not any(_same(v, ok) for ok in values):
                raise ValueError(f"{source}: {net.name!r} has {k} = {_short(v)}; only {list(values)} is supported")
            if k in merged and not _same(merged[k], v):
                raise ValueError(f"{source}: static kwarg {k!r} differs between Gs and its components "
                                 f"({_short(merged[k])} vs {_short(v)})")
            merged[k] = v
    for k, v in merged.items():
        if k in ("resolution", "num_channels", "latent_size", "dlatent_size", "mapping_layers", "mapping_fmaps"):
            if type(v) is not int or v <= 0:
                raise ValueError(f"{source}: static kwarg {k} = {_short(v)} is not a positive int")
    lrmul = merged.get("mapping_lrmul", 0.01)
    if isinstance(lrmul, bool) or not isinstance(lrmul, (int, float)) or not (math.isfinite(lrmul) and lrmul > 0):
        raise ValueError(f"{source}: static kwarg mapping_lrmul = {_short(lrmul)} is not a finite number > 0")
    if family == V2:
        kernel = merged.get("resample_kernel", [1, 3, 3, 1])
        if not (isinstance(kernel, (list, tuple)) and 1 <= len(kernel) <= 16
                and all(type(t) is int and t > 0 for t in kernel)):
            raise ValueError(f"{source}: resample_kernel = {_short(kernel)}: expected a short list of positive ints")
    return merged


# ----------------------------------------------------------------------------
# Sizes and names: everything is checked before a single tensor is converted


def _sizes(kwargs: Mapping[str, Any], variables: Mapping[str, np.ndarray], source: str) -> dict[str, int]:
    """Resolution, channels, latent sizes: the kwargs (or the build functions' defaults) checked against the shapes."""
    dense0 = _need(variables, "mapping/Dense0/weight", 2, source)
    sizes = {
        "resolution": kwargs.get("resolution", 1024),
        "num_channels": kwargs.get("num_channels", 3),
        "latent_size": kwargs.get("latent_size", 512),
        "dlatent_size": kwargs.get("dlatent_size", 512),
        "mapping_layers": kwargs.get("mapping_layers", 8),
        "mapping_fmaps": kwargs.get("mapping_fmaps", 512),
    }
    res = sizes["resolution"]
    if res < 4 or res & (res - 1):
        raise ValueError(f"{source}: resolution = {res} is not a power of two >= 4")
    probe = GeneratorConfig(z_dim=sizes["latent_size"], w_dim=sizes["dlatent_size"], img_resolution=res,
                            img_channels=sizes["num_channels"], mapping_layers=sizes["mapping_layers"])
    check_config_sizes(probe, source)
    if sizes["mapping_layers"] > 64 or sizes["mapping_fmaps"] > (1 << 16):
        raise ValueError(f"{source}: mapping_layers = {sizes['mapping_layers']} / mapping_fmaps = "
                         f"{sizes['mapping_fmaps']} exceed the limits (64 / 65536)")
    if dense0.shape[0] != sizes["latent_size"]:
        raise ValueError(f"{source}: mapping/Dense0/weight is {list(dense0.shape)}, but latent_size = "
                         f"{sizes['latent_size']}")
    return sizes


def _mapping_shapes(sizes: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    n, fmaps = sizes["mapping_layers"], sizes["mapping_fmaps"]
    features = [sizes["latent_size"]] + [fmaps] * (n - 1) + [sizes["dlatent_size"]]
    shapes: dict[str, tuple[int, ...]] = {"dlatent_avg": (sizes["dlatent_size"],), "lod": ()}
    for i in range(n):
        shapes[f"mapping/Dense{i}/weight"] = (features[i], features[i + 1])
        shapes[f"mapping/Dense{i}/bias"] = (features[i + 1],)
    return shapes


def _block_channels(variables: Mapping[str, np.ndarray], resolutions: list[int], source: str) -> list[int]:
    """Channels of each resolution, from its last conv kernel [k, k, I, O] (4x4/Conv, {r}x{r}/Conv1)."""
    names = ["synthesis/4x4/Conv/weight"] + [f"synthesis/{r}x{r}/Conv1/weight" for r in resolutions[1:]]
    return [int(_need(variables, name, 4, source).shape[3]) for name in names]


def _check_names_and_shapes(variables: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]],
                            source: str) -> None:
    problems = tensor_mismatches(variables, expected, noun="variables")
    if problems:
        raise ValueError(f"{source}: the Gs variables do not match its kwargs: " + "; ".join(problems))
    lod = float(variables["lod"])
    if lod != 0 or float(variables.get("synthesis/lod", 0)) != 0:
        raise ValueError(f"{source}: lod = {lod:g}: a snapshot taken during progressive growing (only finished "
                         f"networks, lod 0, are supported)")


# ----------------------------------------------------------------------------
# StyleGAN v1 (G_style)


def _convert_v1(kwargs: Mapping[str, Any], variables: Mapping[str, np.ndarray],
                source: str) -> tuple[GeneratorConfig, dict[str, np.ndarray]]:
    sizes = _sizes(kwargs, variables, source)
    res, w_dim, img_channels = sizes["resolution"], sizes["dlatent_size"], sizes["num_channels"]
    resolutions = [2**i for i in range(2, int(math.log2(res)) + 1)]
    lods = {r: int(math.log2(res // r)) for r in resolutions}
    use_noise = bool(kwargs.get("use_noise", True))
    fused_scale = kwargs.get("fused_scale", "auto")
    fused_from = {True: 8, False: None, "auto": FUSED_SCALE_FROM if res >= FUSED_SCALE_FROM else None}[fused_scale]

    channels = _block_channels(variables, resolutions, source)
    expected = {**_mapping_shapes(sizes), "synthesis/lod": ()}
    layer_names = []
    for i, r in enumerate(resolutions):
        c_out, c_in = channels[i], channels[max(i - 1, 0)]
        layers = [("4x4/Const", 0), ("4x4/Conv", c_out)] if r == 4 else \
            [(f"{r}x{r}/Conv0_up", c_in), (f"{r}x{r}/Conv1", c_out)]
        for name, fan_c in layers:
            p = f"synthesis/{name}/"
            if fan_c:
                expected[p + "weight"] = (3, 3, fan_c, c_out)
            else:
                expected[p + "const"] = (1, c_out, 4, 4)
            expected[p + "bias"] = (c_out,)
            expected[p + "StyleMod/weight"] = (w_dim, 2 * c_out)
            expected[p + "StyleMod/bias"] = (2 * c_out,)
            if use_noise:
                expected[p + "Noise/weight"] = (c_out,)
            layer_names.append(name)
        expected[f"synthesis/ToRGB_lod{lods[r]}/weight"] = (1, 1, c_out, img_channels)
        expected[f"synthesis/ToRGB_lod{lods[r]}/bias"] = (img_channels,)
    if use_noise:
        for i in range(len(layer_names)):
            r = 2 ** (i // 2 + 2)
            expected[f"synthesis/noise{i}"] = (1, 1, r, r)
    _check_names_and_shapes(variables, expected, source)

    cfg = GeneratorConfig(
        arch=V1,
        variant="nvidia",
        **_common_fields(kwargs, sizes),
        channels=tuple(channels),
        fused_upsample_from=fused_from,
        use_noise=use_noise,
    )
    tensors = _mapping_tensors(variables, sizes["mapping_layers"], bias_scale=1 / math.sqrt(2))
    for i, name in enumerate(layer_names):
        r = 2 ** (i // 2 + 2)
        ours = f"synthesis.b{r}.layer{i % 2}."
        p = f"synthesis/{name}/"
        c = variables[p + "bias"].shape[0]
        if name == "4x4/Const":
            tensors["synthesis.b4.const"] = variables[p + "const"][0]
        else:
            kernel = variables[p + "weight"]
            if i % 2 == 0 and fused_from is not None and r >= fused_from:
                kernel = kernel[::-1, ::-1]  # conv2d_transpose's kernel -> "nearest up, then conv"'s
            tensors[ours + "weight"] = kernel.transpose(3, 2, 0, 1)
        tensors[ours + "bias"] = variables[p + "bias"]
        tensors[ours + "affine.weight"] = variables[p + "StyleMod/weight"].T
        tensors[ours + "affine.bias"] = variables[p + "StyleMod/bias"] + np.repeat([1, 0], c).astype(np.float32)
        if use_noise:
            tensors[ours + "noise_strength"] = variables[p + "Noise/weight"]
            tensors[ours + "noise_const"] = variables[f"synthesis/noise{i}"][0, 0]
    for r in resolutions:
        rgb = f"synthesis/ToRGB_lod{lods[r]}/"
        tensors[f"synthesis.b{r}.torgb.weight"] = variables[rgb + "weight"].transpose(3, 2, 0, 1)
        tensors[f"synthesis.b{r}.torgb.bias"] = variables[rgb + "bias"]
    tensors[W_AVG_KEY] = variables["dlatent_avg"]
    return cfg, _float32(tensors)


# ----------------------------------------------------------------------------
# StyleGAN2 (G_main + G_synthesis_stylegan2)


def _convert_v2(kwargs: Mapping[str, Any], variables: Mapping[str, np.ndarray],
                source: str) -> tuple[GeneratorConfig, dict[str, np.ndarray]]:
    sizes = _sizes(kwargs, variables, source)
    res, w_dim, img_channels = sizes["resolution"], sizes["dlatent_size"], sizes["num_channels"]
    architecture = kwargs.get("architecture", "skip")
    resolutions = [2**i for i in range(2, int(math.log2(res)) + 1)]
    channels = _block_channels(variables, resolutions, source)

    expected = _mapping_shapes(sizes)
    expected["synthesis/4x4/Const/const"] = (1, channels[0], 4, 4)

    def modconv(prefix: str, c_in: int, c_out: int, kernel: int) -> None:
        expected[prefix + "weight"] = (kernel, kernel, c_in, c_out)
        expected[prefix + "mod_weight"] = (w_dim, c_in)
        expected[prefix + "mod_bias"] = (c_in,)
        expected[prefix + "bias"] = (c_out,)
        if kernel == 3:
            expected[prefix + "noise_strength"] = ()

    for i, r in enumerate(resolutions):
        c_out, c_in = channels[i], channels[max(i - 1, 0)]
        p = f"synthesis/{r}x{r}/"
        if r == 4:
            modconv(p + "Conv/", c_out, c_out, 3)
        else:
            modconv(p + "Conv0_up/", c_in, c_out, 3)
            modconv(p + "Conv1/", c_out, c_out, 3)
            if architecture == "resnet":
                expected[p + "Skip/weight"] = (1, 1, c_in, c_out)
        if architecture == "skip" or r == res:
            modconv(p + "ToRGB/", c_out, img_channels, 1)
    num_noise = 2 * len(resolutions) - 1  # one per conv: 4x4 has one, every other resolution two
    for i in range(num_noise):
        r = 2 ** ((i + 5) // 2)
        expected[f"synthesis/noise{i}"] = (1, 1, r, r)
    _check_names_and_shapes(variables, expected, source)

    kernel = tuple(int(t) for t in kwargs.get("resample_kernel", [1, 3, 3, 1]))
    base = 2 * kwargs.get("fmap_base", 16 << 10)
    cmax = kwargs.get("fmap_max", 512)
    schedule_fits = all(min(base // r, cmax) == c for r, c in zip(resolutions, channels))
    cfg = GeneratorConfig(
        arch=V2,
        **_common_fields(kwargs, sizes),
        channel_base=base if schedule_fits else 32768,
        channel_max=cmax if schedule_fits else 512,
        channels=None if schedule_fits else tuple(channels),
        architecture=architecture,
        resample_filter=kernel,
    )

    tensors = _mapping_tensors(variables, sizes["mapping_layers"], bias_scale=1.0)
    tensors["synthesis.b4.const"] = variables["synthesis/4x4/Const/const"][0]

    def put(ours: str, tf: str, noise: int | None, flip: bool = False) -> None:
        k = variables[tf + "weight"]
        tensors[ours + "weight"] = (k[::-1, ::-1] if flip else k).transpose(3, 2, 0, 1)
        tensors[ours + "bias"] = variables[tf + "bias"]
        tensors[ours + "affine.weight"] = variables[tf + "mod_weight"].T
        tensors[ours + "affine.bias"] = variables[tf + "mod_bias"] + 1
        if noise is not None:
            tensors[ours + "noise_strength"] = variables[tf + "noise_strength"]
            tensors[ours + "noise_const"] = variables[f"synthesis/noise{noise}"][0, 0]

    for r in resolutions:
        p, ours = f"synthesis/{r}x{r}/", f"synthesis.b{r}."
        log2 = int(math.log2(r))
        if r == 4:
            put(ours + "conv1.", p + "Conv/", noise=0)
        else:
            put(ours + "conv0.", p + "Conv0_up/", noise=2 * log2 - 5, flip=True)
            put(ours + "conv1.", p + "Conv1/", noise=2 * log2 - 4)
            if architecture == "resnet":
                tensors[ours + "skip.weight"] = variables[p + "Skip/weight"][::-1, ::-1].transpose(3, 2, 0, 1)
        if architecture == "skip" or r == res:
            put(ours + "torgb.", p + "ToRGB/", noise=None)
    tensors[W_AVG_KEY] = variables["dlatent_avg"]
    tensors.update(stylegan2_filter_buffers(cfg))
    return cfg, _float32(tensors)


# ----------------------------------------------------------------------------
# Small helpers


def _float32(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, dtype=np.float32, order="C") for k, v in tensors.items()}  # keeps 0-d arrays 0-d


def _common_fields(kwargs: Mapping[str, Any], sizes: Mapping[str, int]) -> dict[str, Any]:
    """GeneratorConfig fields both families take from the kwargs and sizes: latents, image, mapping."""
    return dict(z_dim=sizes["latent_size"], w_dim=sizes["dlatent_size"], img_resolution=sizes["resolution"],
                img_channels=sizes["num_channels"], mapping_layers=sizes["mapping_layers"],
                mapping_lr_multiplier=float(kwargs.get("mapping_lrmul", 0.01)),
                layer_features=None if sizes["mapping_fmaps"] == sizes["dlatent_size"] else sizes["mapping_fmaps"])


def _mapping_tensors(variables: Mapping[str, np.ndarray], n: int, bias_scale: float) -> dict[str, np.ndarray]:
    out = {}
    for i in range(n):
        out[f"mapping.fc{i}.weight"] = variables[f"mapping/Dense{i}/weight"].T
        out[f"mapping.fc{i}.bias"] = variables[f"mapping/Dense{i}/bias"] * np.float32(bias_scale)
    return out


def _need(variables: Mapping[str, np.ndarray], name: str, ndim: int, source: str) -> np.ndarray:
    if name not in variables:
        raise ValueError(f"{source}: missing variable {name!r}")
    v = variables[name]
    if v.ndim != ndim:
        raise ValueError(f"{source}: variable {name!r} has shape {list(v.shape)}, expected {ndim} dimensions")
    return v


def _as_float32(v: Any, name: str, source: str) -> np.ndarray:
    if not _NAME.match(name):
        raise ValueError(f"{source}: variable name {name[:80]!r} is not a TF variable name")
    arr = np.asarray(v)
    if arr.dtype.kind != "f":
        raise ValueError(f"{source}: variable {name!r} is {arr.dtype}, not a float array")
    return arr.astype(np.float32, copy=False)


def _same(a: Any, b: Any) -> bool:
    """Equal as kwargs: lists and tuples alike, bools never equal to ints."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
