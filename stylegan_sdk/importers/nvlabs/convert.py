"""Official NVlabs networks -> our format: StyleGAN2 (stylegan2-ada-pytorch, stylegan3's networks_stylegan2)
and StyleGAN3 (stylegan3's networks_stylegan3, the -t and -r configs).

The pickle itself is read by the allow-list unpickler in `reader`; this module turns the
network's constructor kwargs into a `GeneratorConfig` and keeps the weights under their names. The
family comes from the pickled class names (a `SynthesisInput` module is StyleGAN3) or, for a bare
state dict, from its keys (`synthesis.input.*` is StyleGAN3, `synthesis.b4.*` StyleGAN2). Every
constructor option is either mapped to a config field or listed here as one that cannot change a
float32 forward pass; any other option is a ValueError naming it. The kwargs themselves are kept in
the config's `source` as they were.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...config import GeneratorConfig
from ...formats.checkpoint import Checkpoint
from ..common import json_safe
from .reader import read_network_pickle

STYLEGAN2, STYLEGAN3 = "stylegan2", "stylegan3"

# Constructor options that only matter for training speed or memory layout, never for the numbers
# a float32 forward pass produces.
_IGNORED = {"num_fp16_res", "fp16_channels_last", "channels_last", "fused_modconv_default", "w_avg_beta"}


def config_from_init_kwargs(kwargs: Mapping[str, Any]) -> GeneratorConfig:
    """Official `Generator(**init_kwargs)` -> GeneratorConfig; unsupported options raise ValueError."""
    kw = dict(kwargs)
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    # stylegan2-ada-pytorch nests synthesis options; stylegan3's networks_stylegan2 passes them flat.
    synthesis = dict(kw.pop("synthesis_kwargs", None) or {})
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        if key not in kw:
            raise ValueError(f"init_kwargs: missing {key!r} (not an official StyleGAN2 Generator?)")
    core = {key: int(kw.pop(key)) for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    synthesis.update(kw)

    def take(d: dict[str, Any], key: str, default: Any) -> Any:
        return d.pop(key, default)

    activation = take(mapping, "activation", "lrelu")
    if activation != "lrelu":
        raise ValueError(f"init_kwargs: mapping activation {activation!r} is not supported (only 'lrelu')")
    cfg_kwargs: dict[str, Any] = dict(
        arch="stylegan2",
        mapping_layers=int(take(mapping, "num_layers", 8)),
        mapping_lr_multiplier=float(take(mapping, "lr_multiplier", 0.01)),
        embed_features=take(mapping, "embed_features", None),
        layer_features=take(mapping, "layer_features", None),
        channel_base=int(take(synthesis, "channel_base", 32768)),
        channel_max=int(take(synthesis, "channel_max", 512)),
        architecture=str(take(synthesis, "architecture", "skip")),
        conv_clamp=take(synthesis, "conv_clamp", None),
        num_fp16_res=int(take(synthesis, "num_fp16_res", 0)),
        resample_filter=tuple(int(v) for v in take(synthesis, "resample_filter", (1, 3, 3, 1))),
        use_noise=bool(take(synthesis, "use_noise", True)),
        **core,
    )
    if take(synthesis, "kernel_size", 3) != 3:
        raise ValueError("init_kwargs: only 3x3 synthesis kernels are supported")
    leftover = sorted((set(mapping) | set(synthesis)) - _IGNORED)
    if leftover:
        raise ValueError(f"init_kwargs: unsupported Generator options {leftover}")
    return GeneratorConfig(**cfg_kwargs)


# StyleGAN3 (networks_stylegan3.Generator): official option -> (config field, default, conversion).
# Generator(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs, **synthesis_kwargs), where
# synthesis_kwargs are SynthesisNetwork's options plus SynthesisLayer's (**layer_kwargs).
_SG3_SYNTHESIS: dict[str, tuple[str, Any, Any]] = {
    "channel_base": ("channel_base", 32768, int),
    "channel_max": ("channel_max", 512, int),
    "num_layers": ("num_layers", 14, int),
    "num_critical": ("num_critical", 2, int),
    "first_cutoff": ("first_cutoff", 2, float),
    "first_stopband": ("first_stopband", 2**2.1, float),
    "last_stopband_rel": ("last_stopband_rel", 2**0.3, float),
    "margin_size": ("margin_size", 10, int),
    "output_scale": ("output_scale", 0.25, float),
    "num_fp16_res": ("num_fp16_res", 4, int),          # kept for information: we compute in float32
    "conv_kernel": ("conv_kernel", 3, int),
    "filter_size": ("filter_size", 6, int),
    "lrelu_upsampling": ("lrelu_upsampling", 2, int),
    "use_radial_filters": ("use_radial_filters", False, bool),
    "conv_clamp": ("conv_clamp", 256, lambda v: None if v is None else float(v)),
    "magnitude_ema_beta": ("magnitude_ema_beta", 0.999, float),
}
_SG3_MAPPING: dict[str, tuple[str, Any, Any]] = {
    "num_layers": ("mapping_layers", 2, int),
    "lr_multiplier": ("mapping_lr_multiplier", 0.01, float),
}
# Options that only steer training (the running-average decay of w): no effect on a forward pass.
_SG3_MAPPING_TRAINING_ONLY = {"w_avg_beta"}
FLOAT32_NOTE = "computed in float32 whatever num_fp16_res says"


def _take_options(options: dict[str, Any], table: dict[str, tuple[str, Any, Any]], where: str) -> dict[str, Any]:
    """Official options -> config fields (official defaults for absent ones); a bad value names its option."""
    out = {}
    for name, (field_name, default, convert) in table.items():
        value = options.pop(name, default)
        try:
            out[field_name] = convert(value)
        except (TypeError, ValueError):
            raise ValueError(f"init_kwargs: {where}{name} = {value!r} is not a valid value") from None
    return out


def stylegan3_config_from_init_kwargs(kwargs: Mapping[str, Any]) -> GeneratorConfig:
    """Official StyleGAN3 `Generator(**init_kwargs)` -> GeneratorConfig; an unknown option is a ValueError naming it."""
    kw = dict(kwargs)
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        if key not in kw:
            raise ValueError(f"init_kwargs: missing {key!r} (not an official StyleGAN3 Generator?)")
    core = {key: int(kw.pop(key)) for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    fields = _take_options(kw, _SG3_SYNTHESIS, "")
    fields.update(_take_options(mapping, _SG3_MAPPING, "mapping_kwargs."))
    unknown = sorted(kw) + sorted(f"mapping_kwargs.{k}" for k in set(mapping) - _SG3_MAPPING_TRAINING_ONLY)
    if unknown:
        raise ValueError(f"init_kwargs: unsupported StyleGAN3 Generator options {unknown}")
    return GeneratorConfig(arch=STYLEGAN3, use_noise=False, **core, **fields)


def family_of(state: Mapping[str, Any], module_classes: Mapping[str, str] | None, source: str) -> str:
    """'stylegan2' | 'stylegan3', from the pickled class names if known, else from the state dict keys."""
    if module_classes:
        if module_classes.get("synthesis.input") == "SynthesisInput":
            return STYLEGAN3
        if module_classes.get("synthesis.b4") == "SynthesisBlock":
            return STYLEGAN2
        raise ValueError(f"{source}: neither an official StyleGAN2 (synthesis.b4 SynthesisBlock) nor a StyleGAN3 "
                         f"(synthesis.input SynthesisInput) generator; found modules "
                         f"{sorted(set(module_classes.values()))}")
    if any(k.startswith("synthesis.input.") for k in state):
        return STYLEGAN3
    if any(k.startswith("synthesis.b4.") for k in state):
        return STYLEGAN2
    raise ValueError(f"{source}: not a StyleGAN2 or StyleGAN3 generator (no synthesis.b4.* or synthesis.input.* "
                     f"weights)")


def import_state(
    init_kwargs: Mapping[str, Any],
    state: Mapping[str, Any],
    source: str,
    key: str = "G_ema",
    module_classes: Mapping[str, str] | None = None,  # pickled class of each submodule (reader), if known
) -> Checkpoint:
    """Official kwargs + state_dict (tensors or arrays) -> Checkpoint in our format."""
    family = family_of(state, module_classes, source)
    where = {"file": os.path.basename(source), "key": key}
    metadata: dict[str, Any] = {"imported_from": os.path.basename(source), "key": key}
    if family == STYLEGAN3:
        cfg = stylegan3_config_from_init_kwargs(init_kwargs)
        provenance = {"format": "nvlabs-stylegan3", **where, "init_kwargs": json_safe(init_kwargs),
                      "precision": f"float32: {FLOAT32_NOTE} (num_fp16_res={cfg.num_fp16_res})"}
        metadata["precision"] = provenance["precision"]
    else:
        cfg = config_from_init_kwargs(init_kwargs)
        provenance = {"format": "nvlabs-stylegan2", **where}
    cfg = GeneratorConfig.from_dict({**cfg.to_dict(), "source": provenance})
    tensors = {k: _as_float32(v) for k, v in state.items()}
    return Checkpoint(config=cfg, tensors=tensors, metadata=metadata)


def import_pickle(path: str | os.PathLike, key: str = "G_ema") -> Checkpoint:
    """Read an official network pickle safely (no code from the file runs) into our format."""
    record = read_network_pickle(path, key=key)
    if record.init_args:
        raise ValueError(f"{os.fspath(path)}: network {key!r} was built with positional args; expected kwargs")
    return import_state(record.init_kwargs, record.state_dict, os.fspath(path), key, record.module_classes)


def _as_float32(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().float().numpy()
    return np.array(v, dtype=np.float32, order="C")
