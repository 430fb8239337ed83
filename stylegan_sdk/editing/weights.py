"""The style affine weights of a model: which tensors they are, and the file an export carries them in.

SeFa (editing/sefa.py) factorises these weights. Model files hold them among the rest; an exported
folder holds only graphs, so the exporter writes them beside the graphs as `style_affines.safetensors`
(named by model.json's "style_affines", listed under files with its sha256 like every file there).
"""

from __future__ import annotations

import re

import numpy as np

from ..config import GeneratorConfig
from ..formats.exported import ExportedModel

STYLE_AFFINES_KEY = "style_affines"         # model.json: the file name of the style affine weights
STYLE_AFFINES_FILE = "style_affines.safetensors"

_SG2 = re.compile(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.affine\.weight")
_SG1 = re.compile(r"synthesis\.b(\d+)\.layer([01])\.affine\.weight")
_SG3 = re.compile(r"synthesis\.L(\d+)_\d+_\d+\.affine\.weight")


def style_affines(cfg: GeneratorConfig, tensors: dict[str, np.ndarray]) -> list[tuple[str, int, bool]]:
    """(name, ws row it reads, is a ToRGB) of every style affine weight in `tensors`, in ws-row order."""
    found = []
    for name in tensors:
        if cfg.arch == "stylegan2" and (m := _SG2.fullmatch(name)):
            level = int(m.group(1)).bit_length() - 3           # b4 -> 0, b8 -> 1, ...
            row = {"conv0": 2 * level - 1, "conv1": 2 * level, "torgb": 2 * level + 1}[m.group(2)]
            found.append((name, row, m.group(2) == "torgb"))
        elif cfg.arch == "stylegan1" and (m := _SG1.fullmatch(name)):
            found.append((name, 2 * (int(m.group(1)).bit_length() - 3) + int(m.group(2)), False))
        elif cfg.arch == "stylegan3" and (m := _SG3.fullmatch(name)):
            i = int(m.group(1))
            found.append((name, i + 1, i == cfg.num_layers))    # L{num_layers} is the ToRGB layer
    return sorted(found, key=lambda t: (t[1], t[2]))


def style_affine_tensors(cfg: GeneratorConfig, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The style affine weights among a model's tensors, by name, float32 (what an export carries)."""
    return {name: np.ascontiguousarray(tensors[name], dtype=np.float32) for name, _, _ in style_affines(cfg, tensors)}


def read_style_affines(exported: ExportedModel) -> dict[str, np.ndarray]:
    """The style affine weights an exported folder carries (hash-checked); ValueError naming the problem."""
    from safetensors.numpy import load

    name = exported.manifest[STYLE_AFFINES_KEY]
    if not isinstance(name, str):
        raise ValueError(f"{exported.folder}: model.json {STYLE_AFFINES_KEY!r} must be a file name")
    data = exported.read_bytes(name)
    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own error types for every malformed file
        raise ValueError(f"{exported.folder}: {name} is not a readable safetensors file: {e}") from None
    cfg = exported.config
    expected = {n for n, _, _ in style_affines(cfg, tensors)}
    if not tensors or set(tensors) != expected:
        raise ValueError(f"{exported.folder}: {name} holds tensors that are not this {cfg.arch} model's style "
                         f"affine weights")
    for n, t in tensors.items():
        if t.dtype != np.float32 or t.ndim != 2 or t.shape[1] != cfg.w_dim or not np.all(np.isfinite(t)):
            raise ValueError(f"{exported.folder}: {name}: {n!r} must be finite float32 [C, {cfg.w_dim}], got "
                             f"{t.dtype} {list(t.shape)}")
    return tensors
