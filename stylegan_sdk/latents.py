"""Latent-space math in plain NumPy: seeds, truncation, mixing and interpolation paths.

Shared by the in-process `Generator`, the gRPC server and the `Client`, so none of them needs torch
for it. Every function checks its arguments and raises `ValueError` naming the bad one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

# ----------------------------------------------------------------------------
# Argument parsing


def parse_int_list(spec: str | int | Iterable[int], name: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]; also accepts an int or an iterable of ints."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return [int(spec)]
    if isinstance(spec, str):
        out: list[int] = []
        for part in spec.split(","):
            part = part.strip()
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise ValueError(f"{name}: cannot parse {part!r} in {spec!r} (use e.g. '0-7,42')")
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise ValueError(f"{name}: range {part!r} runs backwards")
            out.extend(range(lo, hi + 1))
        return out
    try:
        values = list(spec)
    except TypeError:
        raise ValueError(f"{name}: expected ints, a range string or a list, got {type(spec).__name__}") from None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name}: expected integers, got {v!r}")
        out.append(int(v))
    return out


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_psi(psi: float) -> float:
    """A finite number that float32 can hold (the networks compute in float32)."""
    if isinstance(psi, bool) or not isinstance(psi, (int, float, np.floating, np.integer)):
        raise ValueError(f"psi: expected a number, got {type(psi).__name__}")
    psi = float(psi)
    if not math.isfinite(psi):
        raise ValueError(f"psi: must be finite, got {psi}")
    if abs(psi) > FLOAT32_MAX:
        raise ValueError(f"psi: {psi} is out of float32's range (|psi| <= {FLOAT32_MAX:.3g})")
    return psi


def check_cutoff(cutoff: int | None, num_ws: int) -> int | None:
    if cutoff is None:
        return None
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)):
        raise ValueError(f"cutoff: expected an int or None, got {cutoff!r}")
    if not 0 <= int(cutoff) <= num_ws:
        raise ValueError(f"cutoff: must be in [0, {num_ws}] (num_ws), got {cutoff}")
    return int(cutoff)


def as_float_array(x: object, name: str) -> np.ndarray:
    """Any array-like -> float32 ndarray, refusing NaN/Inf."""
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a numeric array, got {type(x).__name__}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or Inf")
    return arr


# ----------------------------------------------------------------------------
# Seeds -> z


def check_seeds(seeds: int | str | Iterable[int]) -> list[int]:
    """Seeds ('0-7,42', a list or one int) -> a non-empty list of ints in [0, 2**32)."""
    seed_list = parse_int_list(seeds, "seeds")
    if not seed_list:
        raise ValueError("seeds: no seeds given")
    for s in seed_list:
        if not 0 <= s < 2**32:
            raise ValueError(f"seeds: each seed must be in [0, 2**32), got {s}")
    return seed_list


def seed_to_z(seeds: int | str | Iterable[int], z_dim: int) -> np.ndarray:
    """float32 [N, z_dim]; row i is numpy.random.RandomState(seed_i).randn(z_dim), as the official scripts."""
    if isinstance(z_dim, bool) or not isinstance(z_dim, (int, np.integer)) or z_dim <= 0:
        raise ValueError(f"z_dim: must be a positive int, got {z_dim!r}")
    seed_list = check_seeds(seeds)
    return np.stack([np.random.RandomState(s).randn(z_dim) for s in seed_list]).astype(np.float32)


def class_to_c(class_idx: int | Sequence[int] | None, c_dim: int, n: int) -> np.ndarray | None:
    """One-hot class vectors [n, c_dim] (None for unconditional models)."""
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError("c: this model is unconditional (c_dim = 0) and takes no class")
        return None
    if class_idx is None:
        raise ValueError(f"c: this model is conditional (c_dim = {c_dim}); give a class index or vectors")
    idx = [class_idx] * n if isinstance(class_idx, (int, np.integer)) else list(class_idx)
    if len(idx) != n:
        raise ValueError(f"c: got {len(idx)} classes for {n} latents")
    c = np.zeros([n, c_dim], np.float32)
    for row, k in enumerate(idx):
        if not _is_index(k) or not 0 <= k < c_dim:
            raise ValueError(f"c: a class index must be an int in [0, {c_dim}), got {k!r}")
        c[row, k] = 1
    return c


# ----------------------------------------------------------------------------
# Truncation and mixing


def broadcast_ws(w: np.ndarray, num_ws: int) -> np.ndarray:
    """[N, w_dim] -> [N, num_ws, w_dim]."""
    return np.repeat(w[:, np.newaxis, :], num_ws, axis=1)


def truncate(ws: np.ndarray, w_avg: np.ndarray, psi: float, cutoff: int | None = None) -> np.ndarray:
    """Pull ws [N, num_ws, w_dim] toward w_avg: w_avg + psi * (w - w_avg) on rows < cutoff (None: all).
    A psi so large that the result leaves float32's range is a ValueError naming psi."""
    psi = check_psi(psi)
    cutoff = check_cutoff(cutoff, ws.shape[1])
    if psi == 1:
        return ws
    w_avg = np.asarray(w_avg, np.float32)
    rows = slice(None) if cutoff is None else slice(0, cutoff)
    diff = ws[:, rows] - w_avg
    # Refuse before computing a result float32 cannot hold (bounded in float64: no overflow warnings).
    if diff.size and abs(psi) * float(np.abs(diff).max()) + float(np.abs(w_avg).max()) > FLOAT32_MAX:
        raise ValueError(f"psi: {psi} pushes ws out of float32's range")
    out = ws.copy()
    out[:, rows] = w_avg + np.float32(psi) * diff
    return out


def check_layers(layers: int | str | Iterable[int], num_ws: int) -> list[int]:
    idx = parse_int_list(layers, "layers")
    bad = [i for i in idx if not 0 <= i < num_ws]
    if bad:
        shown = bad if len(bad) <= 4 else f"{bad[:3]} ... ({len(bad)} indices)"
        raise ValueError(f"layers: {shown} out of range for num_ws = {num_ws} (valid 0-{num_ws - 1})")
    return sorted(set(idx))


def mix_ws(w_a: np.ndarray, w_b: np.ndarray, layers: int | str | Iterable[int]) -> np.ndarray:
    """w_a with the listed layer rows taken from w_b. Shapes [num_ws, w_dim] or [N, num_ws, w_dim]."""
    a = as_float_array(w_a, "w_a")
    b = as_float_array(w_b, "w_b")
    if a.ndim not in (2, 3):
        raise ValueError(f"w_a: expected [num_ws, w_dim] or [N, num_ws, w_dim], got shape {list(a.shape)}")
    if b.shape != a.shape:
        raise ValueError(f"w_b: shape {list(b.shape)} does not match w_a {list(a.shape)}")
    idx = check_layers(layers, a.shape[-2])
    out = a.copy()
    out[..., idx, :] = b[..., idx, :]
    return out


# ----------------------------------------------------------------------------
# Interpolation paths (for videos): lerp in W, slerp in Z


def lerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    return (a + (b - a) * np.float32(t)).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation along the last axis (for Gaussian z); falls back to lerp when parallel."""
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    na = np.linalg.norm(a64, axis=-1, keepdims=True)
    nb = np.linalg.norm(b64, axis=-1, keepdims=True)
    cos = np.clip(np.sum(a64 * b64, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    safe = so > 1e-6
    wa = np.where(safe, np.sin((1 - t) * omega) / np.where(safe, so, 1), 1 - t)
    wb = np.where(safe, np.sin(t * omega) / np.where(safe, so, 1), t)
    return (wa * a64 + wb * b64).astype(np.float32)


def check_num_frames(num_frames: int) -> int:
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 2:
        raise ValueError(f"num_frames: must be an int >= 2, got {num_frames!r}")
    return int(num_frames)


def path_position(index: int, num_keys: int, num_frames: int) -> tuple[int, float]:
    """(segment, t) of frame `index` of num_frames frames spread evenly along a path through num_keys
    keyframes, the first frame on the first keyframe and the last on the last: the frame is
    lerp/slerp(key[segment], key[segment + 1], t). Two keyframes: t as numpy.linspace(0, 1, num_frames)
    computes it; a keyframe lands on a frame when num_frames - 1 is a multiple of num_keys - 1."""
    if index >= num_frames - 1:
        return num_keys - 2, 1.0
    u = index * ((num_keys - 1) / (num_frames - 1))     # position along the path, in segments
    segment = min(int(u), num_keys - 2)
    return segment, u - segment


def interpolation_path(
    a: np.ndarray, b: np.ndarray, num_frames: int, mode: str = "lerp"
) -> np.ndarray:
    """num_frames latents from a to b inclusive: [num_frames, *a.shape]."""
    num_frames = check_num_frames(num_frames)
    if mode not in ("lerp", "slerp"):
        raise ValueError(f"mode: must be 'lerp' or 'slerp', got {mode!r}")
    a = as_float_array(a, "a")
    b = as_float_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"b: shape {list(b.shape)} does not match a {list(a.shape)}")
    fn = slerp if mode == "slerp" else lerp
    return np.stack([fn(a, b, path_position(i, 2, num_frames)[1]) for i in range(num_frames)])


# ----------------------------------------------------------------------------
# StyleGAN3 input transforms (translation and rotation of the Fourier features)


def make_transform(translate: Sequence[float], rotate: float) -> np.ndarray:
    """[3, 3] float64: rotation by `rotate` degrees, then translation, as the official gen_images.py
    builds it. The synthesis input's transform value is its inverse (`input_transform`)."""
    angle = math.radians(float(rotate))
    s, c = math.sin(angle), math.cos(angle)
    return np.array([[c, s, float(translate[0])],
                     [-s, c, float(translate[1])],
                     [0.0, 0.0, 1.0]])


def input_transform(translate: Sequence[float], rotate: float) -> np.ndarray:
    """[3, 3] float32: the value of the synthesis input's transform for a view translated by
    `translate` and rotated by `rotate` degrees (the inverse of make_transform, as gen_images.py)."""
    return np.linalg.inv(make_transform(translate, rotate)).astype(np.float32)


# ----------------------------------------------------------------------------
# Shape checks for the Generator / Client / server (one place, same messages everywhere)

NOISE_MODES = ("const", "random", "none")


def check_noise_mode(noise_mode: str) -> str:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode: must be one of {NOISE_MODES}, got {noise_mode!r}")
    return noise_mode


def check_z(z: object, z_dim: int) -> tuple[np.ndarray, bool]:
    """-> (z [N, z_dim], single) where single means one latent [z_dim] was given."""
    arr = as_float_array(z, "z")
    if arr.ndim == 1 and arr.shape[0] == z_dim:
        return arr[np.newaxis], True
    if arr.ndim != 2 or arr.shape[1] != z_dim or arr.shape[0] == 0:
        raise ValueError(f"z: expected [N, {z_dim}] or [{z_dim}], got shape {list(arr.shape)}")
    return arr, False


def check_ws(ws: object, num_ws: int, w_dim: int, name: str = "ws") -> tuple[np.ndarray, bool]:
    """-> (ws [N, num_ws, w_dim], single) where single means one [num_ws, w_dim] latent was given."""
    arr = as_float_array(ws, name)
    if arr.ndim == 2 and arr.shape == (num_ws, w_dim):
        return arr[np.newaxis], True
    if arr.ndim != 3 or arr.shape[1:] != (num_ws, w_dim) or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected [N, {num_ws}, {w_dim}] or [{num_ws}, {w_dim}] "
                         f"(num_ws, w_dim), got shape {list(arr.shape)}")
    return arr, False


def _is_index(k: object) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, bool)


def class_index(name: str, class_names: Sequence[str]) -> int:
    """A class name -> its index; ValueError listing the model's names when it is not one of them."""
    if name in class_names:
        return list(class_names).index(name)
    if not class_names:
        raise ValueError(f"c: this model's classes have no names; give a class index instead of {name!r}")
    raise ValueError(f"c: no class named {name!r}; this model's classes: {_listed(class_names)}")


def _listed(class_names: Sequence[str]) -> str:
    return ", ".join(repr(k) for k in class_names[:12]) + (", ..." if len(class_names) > 12 else "")


def check_c(c: object, c_dim: int, n: int, class_names: Sequence[str] = ()) -> np.ndarray | None:
    """Class input -> [n, c_dim] float32 or None: a class index or name, a list of them (one-hot), or vectors."""
    if c is None and c_dim > 0 and class_names:
        raise ValueError(f"c: this model is conditional; give a class name or index, e.g. c={class_names[0]!r} "
                         f"(its classes: {_listed(class_names)})")
    if isinstance(c, str):
        c = class_index(c, class_names) if c_dim > 0 else c
    elif isinstance(c, (list, tuple)) and c and all(isinstance(k, str) or _is_index(k) for k in c):
        c = [class_index(k, class_names) if isinstance(k, str) else k for k in c]
    if c is None or _is_index(c):
        return class_to_c(c, c_dim, n)
    if isinstance(c, (list, tuple)) and all(_is_index(k) for k in c):
        return class_to_c(list(c), c_dim, n)
    if c_dim == 0:
        raise ValueError("c: this model is unconditional (c_dim = 0) and takes no class")
    arr = as_float_array(c, "c")
    if arr.ndim == 1 and arr.shape[0] == c_dim:
        arr = np.repeat(arr[np.newaxis], n, axis=0)
    if arr.shape != (n, c_dim):
        raise ValueError(f"c: expected [{n}, {c_dim}] or [{c_dim}], got shape {list(arr.shape)}")
    return arr


def check_noise_seed(noise_seed: int | None) -> int | None:
    if noise_seed is not None and (isinstance(noise_seed, bool) or not isinstance(noise_seed, (int, np.integer))
                                   or not 0 <= noise_seed < 2**32):
        raise ValueError(f"noise_seed: must be an int in [0, 2**32) or None, got {noise_seed!r}")
    return None if noise_seed is None else int(noise_seed)


def draw_noise(resolutions: Sequence[int], n: int, noise_seed: int | None) -> list[np.ndarray]:
    """Unit-Gaussian noise images [n, 1, r, r] per synthesis layer, reproducible from noise_seed."""
    rs = np.random.RandomState(check_noise_seed(noise_seed))
    return [rs.randn(n, 1, r, r).astype(np.float32) for r in resolutions]
