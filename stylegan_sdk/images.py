"""Image conversions (float -> uint8 / PIL / PNG / JPEG) and grids, in NumPy + Pillow."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

OUTPUTS = ("float", "uint8", "pil")


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float32 [N, C, H, W] in about [-1, 1] -> uint8 [N, H, W, C] = clamp(x * 127.5 + 128, 0, 255)."""
    if x.ndim != 4:
        raise ValueError(f"images: expected [N, C, H, W], got shape {list(x.shape)}")
    y = np.clip(x * np.float32(127.5) + np.float32(128), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1))


def uint8_to_pil(x: np.ndarray) -> list:
    """uint8 [N, H, W, C] (C = 1 or 3 or 4) -> list of PIL images."""
    from PIL import Image

    if x.ndim != 4 or x.dtype != np.uint8:
        raise ValueError(f"images: expected uint8 [N, H, W, C], got {x.dtype} {list(x.shape)}")
    return [Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img) for img in x]


def convert(x: np.ndarray, output: str) -> np.ndarray | list:
    """float images [N, C, H, W] -> the requested output ('float', 'uint8' or 'pil')."""
    if output == "float":
        return x
    if output == "uint8":
        return to_uint8(x)
    if output == "pil":
        return uint8_to_pil(to_uint8(x))
    raise ValueError(f"output: must be one of {OUTPUTS}, got {output!r}")


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ValueError(f"output: must be one of {OUTPUTS}, got {output!r}")
    return output


def encode(img_hwc: np.ndarray, fmt: str = "png", quality: int = 90) -> bytes:
    """One uint8 [H, W, C] image -> PNG or JPEG bytes."""
    from PIL import Image

    fmt = fmt.lower()
    if fmt not in ("png", "jpeg", "jpg"):
        raise ValueError(f"fmt: must be 'png' or 'jpeg', got {fmt!r}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality: must be in [1, 100], got {quality}")
    img = Image.fromarray(img_hwc[:, :, 0] if img_hwc.shape[2] == 1 else img_hwc)
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG")
    else:
        img.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 [H, W, C]."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        arr = np.asarray(img)
    return arr[:, :, np.newaxis] if arr.ndim == 2 else arr


def grid(images: Sequence[np.ndarray], cols: int, pad: int = 0, fill: int = 255) -> np.ndarray:
    """Tile uint8 [H, W, C] images (None = blank cell) into one uint8 [rows*H, cols*W, C] image."""
    cells = list(images)
    if not cells or cols <= 0:
        raise ValueError("images: need at least one image and cols > 0")
    ref = next(c for c in cells if c is not None)
    h, w, ch = ref.shape
    rows = (len(cells) + cols - 1) // cols
    out = np.full([rows * (h + pad) - pad, cols * (w + pad) - pad, ch], fill, np.uint8)
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        r, c = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = cell
    return out


def save_png(img_hwc: np.ndarray, path: str) -> None:
    """Write a uint8 [H, W, C] image atomically."""
    from .fileio import atomic_write_bytes

    atomic_write_bytes(path, encode(img_hwc, "png"))
