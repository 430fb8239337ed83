"""SeFa: closed-form factorisation of the style affines (Shen & Zhou, CVPR 2021, arXiv 2007.06600).

Every synthesis layer turns w into its style through an affine `s = A w + b`; the directions n that
move the styles most, max |A n|, are the top eigenvectors of AᵀA over the stacked affines. Which
affines, and whether each output row is normalised first, differ between the two published scripts,
so both are here as conventions (our weights carry the official names, so one rule covers every file):

    convention   affines (StyleGAN2)                            rows normalised   factorised by
    genforce     every conv layer's + the last ToRGB's          yes (unit)        eigenvectors of A·Aᵀ
    rosinality   every conv layer's + the first ToRGB's (4 px)  no                right singular vectors

StyleGAN v1 has one AdaIN affine per layer (its ToRGB takes no style): both conventions use all of
them. StyleGAN3: every layer's affine `L{i}_...affine` (its last layer is the one ToRGB, so first = last;
`synthesis.input.affine` sets the Fourier input's transform, not a style, and is left out).

`layers` restricts the factorisation to the affines that read those ws rows; the result then belongs to
those rows (Directions.layers), as genforce's `--layer_idx` does.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..config import GeneratorConfig
from ..formats.exported import is_exported_folder, read_exported
from ..generator import Generator
from ..latents import check_layers
from ..loading import read_model
from .directions import Directions, model_identity, source_name
from .weights import STYLE_AFFINES_KEY, read_style_affines, style_affines

CONVENTIONS = ("genforce", "rosinality")

def chosen_affines(cfg: GeneratorConfig, tensors: dict[str, np.ndarray], convention: str,
                   layers: list[int] | None) -> list[str]:
    """The affine weights a convention factorises (see the module docstring), restricted to ws rows `layers`."""
    found = style_affines(cfg, tensors)
    torgbs = [name for name, _, is_rgb in found if is_rgb]
    keep = torgbs[-1:] if convention == "genforce" else torgbs[:1]
    names = [name for name, row, is_rgb in found
             if (not is_rgb or name in keep) and (layers is None or row in layers)]
    if not names:
        raise ValueError(f"layers: no style affine of this {cfg.arch} model reads ws rows {layers}")
    return names


def factorize(weights: list[np.ndarray], convention: str) -> tuple[np.ndarray, np.ndarray]:
    """Stacked affine weights [C_i, w_dim] -> (eigenvalues [w_dim] descending, unit eigenvectors as rows
    [w_dim, w_dim]) of AᵀA (A: the stacked rows, unit-normalised for "genforce"). Signs: each vector's
    largest component is positive."""
    a = np.concatenate([np.asarray(w, np.float64) for w in weights], axis=0)      # [sum C_i, w_dim]
    if convention == "genforce":
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(a.T @ a)                                      # ascending
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order].T
    signs = np.sign(vectors[np.arange(len(vectors)), np.argmax(np.abs(vectors), axis=1)])
    return values, vectors * signs[:, None]


def sefa(model: Generator | str | os.PathLike, k: int = 10, layers: Any = None,
         convention: str = "genforce", key: str = "G_ema") -> Directions:
    """The top-k SeFa directions of a model: a Generator loaded with sg.load, or a model file (our
    checkpoint, NVlabs pickle, NVIDIA TF pickle, rosinality checkpoint) or exported folder.

    layers: ws rows (or "coarse" / "middle" / "fine") whose affines are factorised, None for all; the
    directions then belong to those rows. convention: "genforce" (default) or "rosinality" (module docstring)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention: must be one of {CONVENTIONS}, got {convention!r}")
    cfg, w_avg, tensors, source = _affine_weights(model, key)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= cfg.w_dim:
        raise ValueError(f"k: must be an int in 1..{cfg.w_dim} (w_dim), got {k!r}")
    rows = None if layers is None else check_layers(cfg.layer_indices(layers), cfg.num_ws)
    names = chosen_affines(cfg, tensors, convention, rows)
    values, vectors = factorize([tensors[n] for n in names], convention)
    return Directions(vectors=vectors[:k], values=values[:k], names=tuple(f"sefa{i}" for i in range(k)),
                      kind="sefa", layers=None if rows is None or len(rows) == cfg.num_ws else tuple(rows),
                      model=model_identity(cfg, w_avg),
                      meta={"convention": convention, "affines": names, "source": source_name(source)})


def _affine_weights(model: Any, key: str) -> tuple[GeneratorConfig, np.ndarray, dict[str, np.ndarray], str]:
    """(config, w_avg, weights by name holding at least the style affines, source path) of a model."""
    if isinstance(model, Generator):
        if model.source is None:
            raise ValueError("model: this Generator was not loaded from a file (sg.load), so its style affines "
                             "are unknown; pass the model file or exported folder")
        model = model.source
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"model: expected a Generator, a model file or an exported folder, got "
                         f"{type(model).__name__}")
    path = os.fspath(model)
    if os.path.isdir(path) and is_exported_folder(path):
        exported = read_exported(path)
        if STYLE_AFFINES_KEY not in exported.manifest:
            raise ValueError(f"model: {path!r} was exported without its style affine weights (exported before "
                             f"direction sets existed): export it again, or pass the model file it came from")
        return exported.config, exported.w_avg, read_style_affines(exported), path
    ckpt = read_model(path, key=key)
    return ckpt.config, ckpt.w_avg, ckpt.tensors, path
