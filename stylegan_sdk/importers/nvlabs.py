"""Official NVlabs StyleGAN2 networks (stylegan2-ada-pytorch, stylegan3's networks_stylegan2) -> our format.

The pickle itself is read by the allow-list unpickler in `nvlabs_pkl`; this module turns the
network's constructor kwargs into a `GeneratorConfig` and keeps the weights under their names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..checkpoint import Checkpoint
from ..config import GeneratorConfig

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


def check_stylegan2_keys(state: Mapping[str, Any], source: str) -> None:
    """Refuse networks of other families early, with a message that says which."""
    if any(k.startswith("synthesis.input.") for k in state):
        raise ValueError(f"{source}: a StyleGAN3 (alias-free) generator; only StyleGAN2 networks are supported")
    if not any(k.startswith("synthesis.b4.") for k in state):
        raise ValueError(f"{source}: not a StyleGAN2 generator (no synthesis.b4.* weights)")


def import_state(
    init_kwargs: Mapping[str, Any], state: Mapping[str, Any], source: str, key: str = "G_ema"
) -> Checkpoint:
    """Official kwargs + state_dict (tensors or arrays) -> Checkpoint in our format."""
    check_stylegan2_keys(state, source)
    cfg = config_from_init_kwargs(init_kwargs)
    cfg = GeneratorConfig.from_dict({**cfg.to_dict(), "source": {"format": "nvlabs-stylegan2",
                                                                 "file": os.path.basename(source), "key": key}})
    tensors = {k: _as_float32(v) for k, v in state.items()}
    return Checkpoint(config=cfg, tensors=tensors, metadata={"imported_from": os.path.basename(source), "key": key})


def import_pickle(path: str | os.PathLike, key: str = "G_ema") -> Checkpoint:
    """Read an official network pickle safely (no code from the file runs) into our format."""
    from .nvlabs_pkl import read_network_pickle

    record = read_network_pickle(path, key=key)
    if record.init_args:
        raise ValueError(f"{os.fspath(path)}: network {key!r} was built with positional args; expected kwargs")
    return import_state(record.init_kwargs, record.state_dict, os.fspath(path), key)


def _as_float32(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().float().numpy()
    return np.array(v, dtype=np.float32, order="C")
