"""PyTorch networks, one module per family. Import needs torch (the `torch` extra)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..config import GeneratorConfig, check_config_weights
from ..formats.checkpoint import few, tensor_mismatches
from . import stylegan1, stylegan2, stylegan3

# Network families: config.arch -> generator class (one entry per module).
FAMILIES: dict[str, type[torch.nn.Module]] = {
    "stylegan2": stylegan2.Generator,
    "stylegan1": stylegan1.Generator,
    "stylegan3": stylegan3.Generator,
}


def build_generator(cfg: GeneratorConfig) -> torch.nn.Module:
    """An (untrained) generator for a config."""
    if cfg.arch not in FAMILIES:
        raise ValueError(f"config.arch: no network family {cfg.arch!r} (have {sorted(FAMILIES)})")
    return FAMILIES[cfg.arch](cfg)


def check_state_dict(model: torch.nn.Module, tensors: Mapping[str, np.ndarray | torch.Tensor], source: str) -> None:
    """Raise ValueError naming missing, unexpected and wrongly shaped tensors, and NaN/Inf weights."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = tensor_mismatches(tensors, expected)
    if problems:
        raise ValueError(f"{source}: weights do not match the config: " + "; ".join(problems))
    bad = sorted(k for k, v in tensors.items() if not bool(np.all(np.isfinite(np.asarray(v)))))
    if bad:
        raise ValueError(f"{source}: NaN or Inf in weights {few(bad)}")


def build_with_weights(
    cfg: GeneratorConfig, tensors: Mapping[str, np.ndarray | torch.Tensor], source: str
) -> torch.nn.Module:
    """Generator for cfg with the given weights, checked, in eval mode, gradients off.

    The config is first checked against the weights' total size (`check_config_weights`), so a config
    that claims a far larger network than the weights hold is a ValueError before anything is built.
    """
    check_config_weights(cfg, sum(int(np.prod(tuple(v.shape))) for v in tensors.values()), source)
    model = build_generator(cfg)
    check_state_dict(model, tensors, source)
    state = {k: torch.as_tensor(np.asarray(v)).to(torch.float32) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)

