"""Small helpers the importers share (NumPy only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..config import GeneratorConfig


def stylegan2_filter_buffers(cfg: GeneratorConfig) -> dict[str, np.ndarray]:
    """The `resample_filter` buffers of our StyleGAN2 (every block and conv layer): fixed by the config.

    Formats that do not store them (TF, rosinality) get them from here: the normalised outer product
    of `cfg.resample_filter`, as `models.layers.setup_filter` makes it.
    """
    taps = np.asarray(cfg.resample_filter, dtype=np.float32)
    f = np.outer(taps, taps)
    f = (f / f.sum()).astype(np.float32)
    out = {}
    for r in cfg.block_resolutions:
        out[f"synthesis.b{r}.resample_filter"] = f
        for conv in ("conv1",) if r == 4 else ("conv0", "conv1"):
            out[f"synthesis.b{r}.{conv}.resample_filter"] = f
        if r > 4 and cfg.architecture == "resnet":
            out[f"synthesis.b{r}.skip.resample_filter"] = f
    return out


def json_safe(value: Any) -> Any:
    """Plain JSON values (numpy scalars and arrays -> numbers and lists; anything else its repr)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)

