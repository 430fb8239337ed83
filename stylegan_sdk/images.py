"""Image conversions (float -> uint8 / PIL / PNG / JPEG), grids, and labelled, upscaled pictures for people,
in NumPy + Pillow."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from .formats.fileio import atomic_write_bytes

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


# ----------------------------------------------------------------------------
# Pictures for people: tiles upscaled for display, with a title and labels

DISPLAY_TILE = 128   # px: tiles smaller than this are upscaled (nearest neighbour) for display


def display_factor(resolution: int, target: int = DISPLAY_TILE) -> int:
    """The smallest power of two k with resolution * k >= target (1 for tiles that are large enough)."""
    if resolution < 1:
        raise ValueError(f"resolution: must be >= 1, got {resolution}")
    k = 1
    while resolution * k < target:
        k *= 2
    return k


def scale_caption(factor: int) -> str:
    """How a picture's tiles are shown, for its caption."""
    return "actual size" if factor == 1 else f"shown {factor}x, nearest neighbour"


def upscale(img_hwc: np.ndarray, factor: int) -> np.ndarray:
    """Nearest neighbour: every pixel of uint8 [H, W, C] becomes a factor x factor block."""
    if type(factor) is not int or factor < 1:
        raise ValueError(f"factor: must be an int >= 1, got {factor!r}")
    return img_hwc.repeat(factor, axis=0).repeat(factor, axis=1)


def _font(size: int):
    """Pillow's default font at `size` px (scalable where Pillow has FreeType), else its bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no size argument
        return ImageFont.load_default()


def labelled_grid(
    cells: Sequence[np.ndarray | None],          # uint8 [H, W, C] tiles (None = blank), row by row
    cols: int,                                    # tiles per row
    title: str = "",                              # a line above the grid
    col_labels: Sequence[str] | None = None,      # one per column, above it
    row_labels: Sequence[str] | None = None,      # one per row, left of it
    cell_labels: Sequence[str] | None = None,     # one per tile, under it ("" = none)
    factor: int = 1,                              # nearest-neighbour upscaling of every tile
    pad: int = 6,                                 # px between tiles
    font_size: int = 14,
) -> np.ndarray:
    """Tiles, upscaled, on a white RGB canvas with a title, column / row headers and captions -> uint8 [H, W, 3]."""
    from PIL import Image, ImageDraw

    cells = list(cells)
    if not cells or cols <= 0 or all(c is None for c in cells):
        raise ValueError("cells: need at least one image and cols > 0")
    rows = (len(cells) + cols - 1) // cols
    for name, labels, want in (("col_labels", col_labels, cols), ("row_labels", row_labels, rows),
                               ("cell_labels", cell_labels, len(cells))):
        if labels is not None and len(labels) != want:
            raise ValueError(f"{name}: expected {want} labels, got {len(labels)}")
    ref = next(c for c in cells if c is not None)
    tile_h, tile_w = ref.shape[0] * factor, ref.shape[1] * factor
    font = _font(font_size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def width(text: str) -> int:
        left, _, right, _ = measure.textbbox((0, 0), text, font=font)
        return int(right - left)

    line = font_size + 6
    left = max((width(t) for t in row_labels), default=0) + 2 * pad if row_labels else pad
    top = pad + (line if title else 0) + (line if col_labels else 0)
    cell_h = tile_h + (line if cell_labels else 0)
    grid_w = cols * (tile_w + pad) - pad
    canvas_w = max(left + grid_w + pad, width(title) + 2 * pad)
    canvas = Image.new("RGB", (canvas_w, top + rows * (cell_h + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, pad), title, fill="black", font=font)
    for j, text in enumerate(col_labels or ()):
        x = left + j * (tile_w + pad) + (tile_w - width(text)) // 2
        draw.text((x, top - line), text, fill="black", font=font)
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        x, y = left + c * (tile_w + pad), top + r * (cell_h + pad)
        if cell is not None:
            tile = upscale(cell, factor)
            tile = np.repeat(tile, 3, axis=2) if tile.shape[2] == 1 else tile[:, :, :3]
            canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (x, y))
        if cell_labels and cell_labels[i]:
            draw.text((x + (tile_w - width(cell_labels[i])) // 2, y + tile_h + 2), cell_labels[i], fill="black",
                      font=font)
    for r, text in enumerate(row_labels or ()):
        draw.text((pad, top + r * (cell_h + pad) + (tile_h - font_size) // 2), text, fill="black", font=font)
    return np.asarray(canvas)


def animated_gif(frames: Sequence[np.ndarray], ms_per_frame: int = 100) -> bytes:
    """uint8 frames [H, W, C] (C 1 or 3) -> a looping GIF's bytes, ms_per_frame each."""
    from PIL import Image

    if len(frames) == 0:
        raise ValueError("frames: no frames given")
    pictures = [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f) for f in frames]
    buf = io.BytesIO()
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()


def save_png(img_hwc: np.ndarray, path: str) -> None:
    """Write a uint8 [H, W, C] image atomically."""
    atomic_write_bytes(path, encode(img_hwc, "png"))
