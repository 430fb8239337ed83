"""NumPy arrays, images and `ModelInfo` <-> protobuf messages (shared by serving/ and the client).

Tensors are checked on the way in: a known dtype, a shape whose element count matches the bytes, at
most 8 dimensions. A malformed tensor raises ValueError naming the field, as every argument check does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..calls import Transform
from ..config import ModelInfo
from . import pb

MAX_NDIM = 8

_DTYPES = {pb.FLOAT32: np.dtype("<f4"), pb.UINT8: np.dtype("u1")}
_DTYPE_NAMES = {pb.FLOAT32: "float32", pb.UINT8: "uint8"}

NOISE_MODE_TO_PB = {"const": pb.CONST, "random": pb.RANDOM, "none": pb.NONE}
NOISE_MODE_FROM_PB = {pb.NOISE_MODE_UNSPECIFIED: "const", pb.CONST: "const", pb.RANDOM: "random", pb.NONE: "none"}

FORMAT_NAMES = {pb.IMAGE_FORMAT_UNSPECIFIED: "png", pb.PNG: "png", pb.JPEG: "jpeg", pb.RAW_UINT8: "uint8",
                pb.RAW_FLOAT32: "float"}
DEFAULT_JPEG_QUALITY = 90


# ----------------------------------------------------------------------------
# Tensors


def to_tensor(x: Any, dtype: str = "float32") -> pb.Tensor:
    """An array -> Tensor (float32 or uint8, little-endian, C order)."""
    code = pb.FLOAT32 if dtype == "float32" else pb.UINT8
    arr = np.ascontiguousarray(x, dtype=_DTYPES[code])
    return pb.Tensor(shape=list(arr.shape), dtype=code, data=arr.tobytes())


def from_tensor(t: pb.Tensor, name: str, dtype: str = "float32") -> np.ndarray:
    """Tensor -> a writable NumPy array of the expected dtype; ValueError naming `name` if malformed."""
    expected = pb.FLOAT32 if dtype == "float32" else pb.UINT8
    if t.dtype != expected:
        got = _DTYPE_NAMES.get(t.dtype, f"dtype {t.dtype}")
        raise ValueError(f"{name}: expected a {dtype} tensor, got {got}")
    shape = list(t.shape)
    if len(shape) > MAX_NDIM or any(d < 0 for d in shape):
        raise ValueError(f"{name}: invalid tensor shape {shape}")
    itemsize = _DTYPES[expected].itemsize
    count = math.prod(shape)
    if count * itemsize != len(t.data):
        raise ValueError(f"{name}: tensor of shape {shape} ({dtype}) needs {count * itemsize} bytes, "
                         f"got {len(t.data)}")
    arr = np.frombuffer(t.data, dtype=_DTYPES[expected]).reshape(shape)
    return arr.astype(_DTYPES[expected].newbyteorder("="), copy=True)


# ----------------------------------------------------------------------------
# Images


def images_from_pb(msg: pb.Images) -> np.ndarray | list[bytes]:
    """RAW_FLOAT32 -> float32 [N, C, H, W]; RAW_UINT8 -> uint8 [N, H, W, C]; PNG / JPEG -> the files."""
    if msg.format == pb.RAW_FLOAT32:
        return from_tensor(msg.pixels, "images", "float32")
    if msg.format == pb.RAW_UINT8:
        return from_tensor(msg.pixels, "images", "uint8")
    return list(msg.encoded)


def image_bytes(fmt: int, channels: int, resolution: int) -> int:
    """Upper bound of one image's size on the wire (raw formats exact; PNG / JPEG as raw uint8 + slack)."""
    pixels = channels * resolution * resolution
    return pixels * 4 if fmt == pb.RAW_FLOAT32 else pixels + pixels // 8 + 1024


# ----------------------------------------------------------------------------
# ModelInfo


def model_info_to_pb(info: ModelInfo, name: str, config_json: str, w_avg: np.ndarray,
                     limits: pb.ServerLimits) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=name, arch=info.arch, z_dim=info.z_dim, w_dim=info.w_dim, c_dim=info.c_dim, num_ws=info.num_ws,
        img_resolution=info.img_resolution, img_channels=info.img_channels,
        layers=[pb.Layer(index=row["index"], resolution=row["resolution"], group=row["group"]) for row in info.layers],
        class_names=list(info.class_names), backend=info.backend, device=info.device, config_json=config_json,
        w_avg=to_tensor(w_avg), limits=limits, precision=info.precision)


def model_info_from_pb(msg: pb.ModelInfo) -> ModelInfo:
    """The same `ModelInfo` dataclass the in-process `Generator.info` answers."""
    return ModelInfo(arch=msg.arch, z_dim=msg.z_dim, w_dim=msg.w_dim, c_dim=msg.c_dim, num_ws=msg.num_ws,
                     img_resolution=msg.img_resolution, img_channels=msg.img_channels,
                     layers=tuple({"index": row.index, "resolution": row.resolution, "group": row.group}
                                  for row in msg.layers),
                     class_names=tuple(msg.class_names), backend=msg.backend, device=msg.device,
                     precision=msg.precision)


# ----------------------------------------------------------------------------
# StyleGAN3 input transforms


def transform_to_pb(t: Transform) -> pb.Transform | None:
    """A checked call's Transform -> the message (None when nothing was given: the identity)."""
    if t.translate is None and t.rotate is None and t.matrix is None:
        return None
    return pb.Transform(translate=[] if t.translate is None else t.translate.ravel().tolist(),
                        rotate=[] if t.rotate is None else np.atleast_1d(t.rotate).tolist(),
                        matrix=[] if t.matrix is None else t.matrix.astype(np.float64).ravel().tolist())


def transform_args(msg: pb.Transform) -> tuple[Any, Any, Any]:
    """The message -> (translate, rotate, transform) as the Generator takes them: translate [2] (or
    [K, 2] for an interpolation's keyframes), rotate a number (or [K]), transform [3, 3]; None if unset."""
    translate = rotate = matrix = None
    if msg.translate:
        values = np.asarray(msg.translate, np.float64)
        if values.size % 2:
            raise ValueError(f"translate: expected (tx, ty) pairs, got {values.size} values")
        translate = values if values.size == 2 else values.reshape(-1, 2)
    if msg.rotate:
        values = np.asarray(msg.rotate, np.float64)
        rotate = float(values[0]) if values.size == 1 else values
    if msg.matrix:
        if len(msg.matrix) != 9:
            raise ValueError(f"transform: expected 9 values (a row-major [3, 3] matrix), got {len(msg.matrix)}")
        matrix = np.asarray(msg.matrix, np.float64).reshape(3, 3)
    return translate, rotate, matrix
