"""What a projection accepts and writes, without torch: the spaces, the step and seed limits, and NVIDIA's
projected_w.npz (the command line checks a run with these before it loads torch)."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from ..formats.fileio import atomic_write_bytes

SPACES = ("w", "w+")
MAX_STEPS = 100_000
MAX_SEED = 2**32
NPZ_KEY = "w"               # projected_w.npz: {"w": [1, num_ws, w_dim] float32}, as NVIDIA's projector.py writes it


def check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps: must be an int in 1..{MAX_STEPS}, got {steps!r}")
    return int(steps)


def check_space(space: Any) -> str:
    if space not in SPACES:
        raise ValueError(f"space: must be one of {SPACES}, got {space!r}")
    return space


def check_seed(seed: Any, n: int) -> int:
    """Target i of n uses seed + i: seed in [0, 2**32 - n]."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED - n:
        raise ValueError(f"seed: must be an int in [0, 2**32 - {n}] (target i uses seed + i), got {seed!r}")
    return int(seed)


def save_projected_w(path: str | os.PathLike, ws: np.ndarray) -> None:
    """ws [num_ws, w_dim] -> `path` as projector.py writes projected_w.npz (np.savez, w = [1, num_ws, w_dim]
    float32), atomically; generate.py --projected-w renders it."""
    ws = np.asarray(ws, np.float32)
    if ws.ndim != 2:
        raise ValueError(f"ws: expected [num_ws, w_dim], got shape {list(ws.shape)}")
    buf = io.BytesIO()
    np.savez(buf, **{NPZ_KEY: ws[np.newaxis]})
    atomic_write_bytes(path, buf.getvalue())


def load_projected_w(path: str | os.PathLike, name: str = "path") -> np.ndarray:
    """A projected_w.npz -> its ws [K, num_ws, w_dim] float32 (K = 1 for NVIDIA's files); never unpickles.
    FileNotFoundError or ValueError, naming `name`."""
    where = f"{name}: {os.fspath(path)!r}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: no such file {os.fspath(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            if NPZ_KEY not in f.files:
                raise ValueError(f"{where} has no array {NPZ_KEY!r} (expected a projected_w.npz)")
            w = f[NPZ_KEY]
    except (OSError, ValueError, EOFError) as e:
        if str(e).startswith(where):
            raise
        raise ValueError(f"{where} is not a projected_w.npz ({e})") from None
    if w.ndim != 3 or not np.issubdtype(w.dtype, np.floating) or not np.all(np.isfinite(w)):
        raise ValueError(f"{where}: w must be finite floats [K, num_ws, w_dim], got {w.dtype} {list(w.shape)}")
    return w.astype(np.float32)
