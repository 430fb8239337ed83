"""What a projection accepts and returns, without torch: the spaces, the step and seed limits, the checks of
every argument but the targets and the loss module (`ProjectCall`), whether a model can be projected into
(`projection_unavailable`), the result (`Projection`), target files read with their size checked from the header
(`read_target`), and NVIDIA's projected_w.npz. The command line checks a run with these before it loads torch;
the server and the client (stylegan_sdk._proto.codec, ProjectArgs) check a served projection with them, so the
three sides say the same.

Layer 3 (beside stylegan_sdk.calls: this is the projection call's torch-free definition); project.py (torch)
builds on it.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import calls
from ..config import GeneratorConfig, ModelInfo
from ..formats.fileio import atomic_write_bytes
from ..latents import check_ws

SPACES = ("w", "w+")
MAX_STEPS = 100_000
MAX_SEED = 2**32
NPZ_KEY = "w"               # projected_w.npz: {"w": [1, num_ws, w_dim] float32}, as NVIDIA's projector.py writes it
DEFAULT_STEPS = 1000
DEFAULT_LOSS = "lpips"
TARGET_FORMATS = ("PNG", "JPEG")   # what a served projection takes as target files


class ProjectionUnavailable(ValueError):
    """The model cannot be projected into here: its backend does not differentiate (a server answers
    FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class Projection:
    """What `project` found for N targets (`Client.project` returns the same, without noise and history)."""

    ws: np.ndarray                  # [N, num_ws, w_dim] float32 (space "w": every row equal)
    losses: np.ndarray              # [steps, N] float32: the loss's distance per step and target (before the noise
                                    # regulariser), measured on the step's jittered w
    images: np.ndarray              # uint8 [N, H, W, C]: ws synthesised with the model's constant noise (proj.png)
    targets: np.ndarray             # uint8 [N, H, W, C]: the targets as projected (centre crop, LANCZOS resize)
    loss: str                       # the loss as it names itself (PerceptualLoss.name): "mse", "lpips (stlpips-...)"
    space: str                      # "w" | "w+"
    steps: int                      # steps run (fewer than asked when should_stop() said so)
    seed: int                       # target i drew its noise and jitter from seed + i
    noise: list[np.ndarray] | None = None   # the optimised noise, one [N, 1, r, r] per layer (None: not optimised)
    history: np.ndarray | None = None       # [T, N, num_ws, w_dim]: ws after the steps in history_steps (keep_every)
    history_steps: tuple[int, ...] = ()
    stopped: bool = False           # should_stop() ended the run early

    def save_npz(self, path: str | os.PathLike, i: int = 0) -> None:
        """Write target i's ws as NVIDIA's projected_w.npz (key "w", [1, num_ws, w_dim] float32), atomically."""
        if not 0 <= i < self.ws.shape[0]:
            raise ValueError(f"i: must be in [0, {self.ws.shape[0]}), got {i}")
        save_projected_w(path, self.ws[i])


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


def check_init(init: Any, n: int, space: str, num_ws: int, w_dim: int) -> np.ndarray | None:
    """init ws [N, num_ws, w_dim] or one [num_ws, w_dim] (or [1, ...]) for every target -> [N, num_ws, w_dim]."""
    if init is None:
        return None
    ws, _ = check_ws(init, num_ws, w_dim, name="init")
    if ws.shape[0] not in (1, n):
        raise ValueError(f"init: expected ws for 1 or {n} targets, got {ws.shape[0]}")
    if not np.all(np.isfinite(ws)):
        raise ValueError("init: contains NaN or Inf")
    if space == "w" and not np.all(ws == ws[:, :1]):
        raise ValueError("init: space 'w' optimises one w per target, but init's ws rows differ (project in "
                         "space 'w+' to start from them)")
    return np.array(np.broadcast_to(ws, (n, num_ws, w_dim)), np.float32)  # a writable copy


def prepare_target(image: Any, resolution: int, channels: int, name: str = "images") -> np.ndarray:
    """One target (a PIL image, or uint8 pixels [H, W] / [H, W, C] with C 1, 3 or 4) -> uint8 [resolution,
    resolution, channels]: converted to RGB (or greyscale, "L"), centre-cropped to a square and resized with
    LANCZOS, as NVIDIA's projector does. Alpha is dropped."""
    if channels not in (1, 3):
        raise ValueError(f"{name}: this model makes {channels}-channel images; projection takes RGB or greyscale "
                         f"models")
    from PIL import Image

    if isinstance(image, Image.Image):
        pil = image
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"{name}: expected uint8 pixels (0..255), got {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))) or min(image.shape[:2]) < 1:
            raise ValueError(f"{name}: expected an image [H, W] or [H, W, C] with C 1, 3 or 4, got shape "
                             f"{list(image.shape)}")
        pil = Image.fromarray(np.ascontiguousarray(image))
    else:
        raise ValueError(f"{name}: expected PIL images or uint8 arrays, got {type(image).__name__}")
    pil = pil.convert("L" if channels == 1 else "RGB")
    w, h = pil.size
    s = min(w, h)
    pil = pil.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    pil = pil.resize((resolution, resolution), Image.LANCZOS)
    arr = np.asarray(pil, dtype=np.uint8)
    return arr[:, :, np.newaxis] if arr.ndim == 2 else arr


def prepare_targets(images: Any, resolution: int, channels: int) -> np.ndarray:
    """images: one target (PIL image, uint8 [H, W] or [H, W, C]), uint8 [N, H, W, C], or a list of targets
    -> uint8 [N, resolution, resolution, channels]."""
    from PIL import Image

    if isinstance(images, np.ndarray) and images.ndim == 4:
        items: Sequence[Any] = list(images)
    elif isinstance(images, (Image.Image, np.ndarray)):
        items = [images]
    elif isinstance(images, (list, tuple)):
        items = images
    else:
        raise ValueError(f"images: expected PIL images or uint8 arrays ([H, W, C], [N, H, W, C] or a list), got "
                         f"{type(images).__name__}")
    if len(items) == 0:
        raise ValueError("images: no targets given")
    return np.stack([prepare_target(img, resolution, channels, name=f"images[{i}]" if len(items) > 1 else "images")
                     for i, img in enumerate(items)])


def projection_unavailable(info: ModelInfo) -> str | None:
    """Why a model (described by its ModelInfo: backend, precision, channels) cannot be projected into, or None.
    project() raises it as ProjectionUnavailable; a server answers it as FAILED_PRECONDITION."""
    if info.backend != "torch":
        return (f"projection needs a model the torch backend runs (a checkpoint or official file); "
                f"{info.backend} cannot differentiate")
    if info.precision not in ("", "fp32"):
        return (f"projection computes in float32; this model was loaded with precision {info.precision!r} "
                f"(load it with precision='fp32')")
    if info.img_channels not in (1, 3):
        return f"projection takes RGB or greyscale models; this one makes {info.img_channels}-channel images"
    return None


@dataclass(frozen=True, eq=False)
class ProjectCall:
    """project()'s arguments but the targets, checked in project()'s order (space, steps, loss, [the targets],
    init, seed, transform) with its texts: the one definition the server and the client check a served
    projection with. The loss is a name here (a served projection cannot take a module); whether the name is
    one of the losses is for project() (the losses need torch)."""

    space: str
    steps: int
    loss: str
    init: np.ndarray | None             # [N, num_ws, w_dim] float32, or None: the mean w
    optimize_noise: bool
    seed: int
    transform: calls.Transform

    @classmethod
    def check(cls, cfg: GeneratorConfig, n: int, space: Any = "w", steps: Any = DEFAULT_STEPS, loss: Any = DEFAULT_LOSS,
              init: Any = None, optimize_noise: Any = True, seed: Any = 0, transform: Any = None,
              max_steps: int | None = None) -> ProjectCall:
        """n: the number of targets. max_steps: a server's limit (below MAX_STEPS), named as its option."""
        space = check_space(space)
        steps = check_steps(steps)
        if max_steps is not None and steps > max_steps:
            raise ValueError(f"steps: {steps} steps, over this server's limit of {max_steps} "
                             f"(--max-projection-steps)")
        if not isinstance(loss, str) or not loss:
            raise ValueError(f"loss: expected a loss name, got {loss!r}")
        if not isinstance(optimize_noise, (bool, np.bool_)):
            raise ValueError(f"optimize_noise: expected True or False, got {optimize_noise!r}")
        init_ws = check_init(init, n, space, cfg.num_ws, cfg.w_dim)
        seed = check_seed(seed, n)
        t = calls.Transform.check(cfg, transform=transform)
        return cls(space, steps, loss, init_ws, bool(optimize_noise), seed, t)


def read_target(data: bytes, name: str, max_pixels: int, max_bytes: int | None = None, decode: bool = True,
                formats: tuple[str, ...] | None = TARGET_FORMATS) -> Any:
    """A target image file's bytes (PNG or JPEG) -> the decoded PIL image (decode=False: only the checks of the
    header, None). Its size is checked from the header, before anything is decoded: more than max_bytes bytes,
    or a header that claims more than max_pixels pixels (a decompression bomb), is refused. ValueError naming
    `name` for that, for another format (`formats`; None: any Pillow reads), and for a file that does not
    decode."""
    from PIL import Image, UnidentifiedImageError

    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"{name}: a file of {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
    side = math.isqrt(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=formats) as img:
                w, h = img.size
                if w * h <= max_pixels:
                    if not decode:
                        return None
                    img.load()
                    return img.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"{name}: the image claims more pixels than Pillow's decompression-bomb limit; shrink it "
                         f"first") from None
    except UnidentifiedImageError:
        wanted = f"a {' or '.join(formats)} file" if formats else "an image file Pillow reads"
        raise ValueError(f"{name}: not {wanted}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ValueError(f"{name}: cannot decode the image ({e})") from None
    raise ValueError(f"{name}: the image is {w}x{h} pixels, more than the limit of {max_pixels:,} (about "
                     f"{side}x{side}); shrink it first")


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
