"""Everything that crosses the wire, both ways (shared by serving/ and the client): NumPy arrays, images,
`ModelInfo`, and each call's arguments <-> its request message.

Tensors are checked on the way in: a known dtype, a shape whose element count matches the bytes, at
most 8 dimensions. A malformed tensor raises ValueError naming the field, as every argument check does.

Edits (`edits={set name: {direction index or name: strength}}`) travel as repeated DirectionEdit entries, in
the order given, so the server adds the same vectors in the same order as the in-process call; the
model's direction sets travel in ModelInfo.direction_sets as whole `Directions` (vectors, values, names,
rows, source model), so the client checks and computes edits exactly as the server does.

Requests: one class per request message (`GenerateArgs`, `MapArgs`, `SynthesizeArgs`, `MixArgs`,
`InterpolateArgs`, `ProjectArgs`, `GetModelInfoArgs`, `ListModelsArgs`) holds the arguments of its call as the
in-process `Generator` takes them (plain values and arrays, not yet checked) and what only the wire has
(the model's name, how the images travel back, return_ws). `to_pb` encodes them (the client), `from_pb`
decodes a message (the server), `check` makes the call with its one definition in stylegan_sdk.calls
(the server). `from_pb` raises ValueError only for what a message alone can get wrong (an unknown enum
value, a malformed tensor, a JPEG quality out of range); every check of the arguments themselves is the
call's. Encoding takes arguments a call has checked: `from_pb(to_pb(args))` gives `args` back.

Project's arguments are checked by the projection call's torch-free definition (stylegan_sdk.projection.options,
ProjectCall, which project() checks with too); its events travel as `ProjectProgress` and the `Projection` the
in-process call returns.

NumPy and protobuf only (no torch, no grpc).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import calls, images, latents
from ..config import GeneratorConfig, ModelInfo
from ..editing.directions import Directions
from ..projection.options import DEFAULT_LOSS, DEFAULT_STEPS, ProjectCall, Projection
from . import pb

MAX_NDIM = 8

_DTYPES = {pb.FLOAT32: np.dtype("<f4"), pb.UINT8: np.dtype("u1")}
_NATIVE = {code: dt.newbyteorder("=") for code, dt in _DTYPES.items()}
_DTYPE_NAMES = {pb.FLOAT32: "float32", pb.UINT8: "uint8"}

NOISE_MODE_TO_PB = {"const": pb.CONST, "random": pb.RANDOM, "none": pb.NONE}
NOISE_MODE_FROM_PB = {pb.NOISE_MODE_UNSPECIFIED: "const", pb.CONST: "const", pb.RANDOM: "random", pb.NONE: "none"}
SPACE_TO_PB = {"w": pb.W, "z": pb.Z}
SPACE_FROM_PB = {pb.SPACE_UNSPECIFIED: "w", pb.W: "w", pb.Z: "z"}

PROJECTION_SPACE_TO_PB = {"w": pb.PROJECTION_SPACE_W, "w+": pb.PROJECTION_SPACE_W_PLUS}
PROJECTION_SPACE_FROM_PB = {pb.PROJECTION_SPACE_UNSPECIFIED: "w", pb.PROJECTION_SPACE_W: "w",
                            pb.PROJECTION_SPACE_W_PLUS: "w+"}

FORMAT_NAMES = {pb.IMAGE_FORMAT_UNSPECIFIED: "png", pb.PNG: "png", pb.JPEG: "jpeg", pb.RAW_UINT8: "uint8",
                pb.RAW_FLOAT32: "float"}
DEFAULT_JPEG_QUALITY = 90


# ----------------------------------------------------------------------------
# Tensors


def fill_tensor(t: pb.Tensor, x: Any, dtype: str = "float32") -> pb.Tensor:
    """Write an array into the (empty) Tensor t, e.g. a field of the message being built: float32 or uint8,
    little-endian, C order. Filling a field in place spares the copy that assigning a finished message makes
    (protobuf copies a message given to a constructor or CopyFrom: ~0.8 ms a 3 MiB image)."""
    code = pb.FLOAT32 if dtype == "float32" else pb.UINT8
    arr = np.ascontiguousarray(x, dtype=_DTYPES[code])
    t.shape.extend(arr.shape)
    t.dtype = code
    t.data = arr.tobytes()
    return t


def to_tensor(x: Any, dtype: str = "float32") -> pb.Tensor:
    """An array -> Tensor (float32 or uint8, little-endian, C order)."""
    return fill_tensor(pb.Tensor(), x, dtype)


def from_tensor(t: pb.Tensor, name: str, dtype: str = "float32") -> np.ndarray:
    """Tensor -> a writable NumPy array of the expected dtype; ValueError naming `name` if malformed."""
    expected = pb.FLOAT32 if dtype == "float32" else pb.UINT8
    if t.dtype != expected:
        got = _DTYPE_NAMES.get(t.dtype, f"dtype {t.dtype}")
        raise ValueError(f"{name}: expected a {dtype} tensor, got {got}")
    shape = list(t.shape)
    if len(shape) > MAX_NDIM or any(d < 0 for d in shape):
        raise ValueError(f"{name}: invalid tensor shape {shape}")
    data = t.data  # read once: every read of a bytes field copies it out of the message
    need = math.prod(shape) * _DTYPES[expected].itemsize
    if need != len(data):
        raise ValueError(f"{name}: tensor of shape {shape} ({dtype}) needs {need} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=_DTYPES[expected]).reshape(shape).astype(_NATIVE[expected], copy=True)


# ----------------------------------------------------------------------------
# Images


def images_to_pb(x: np.ndarray, fmt: int, quality: int = DEFAULT_JPEG_QUALITY, into: pb.Images | None = None
                 ) -> pb.Images:
    """Float images [N, C, H, W] -> the message in format fmt: RAW_FLOAT32 as they are, RAW_UINT8 as uint8
    [N, H, W, C] (images.to_uint8), PNG / JPEG one file per image. `into`: the (empty) field of a response
    to fill in place (no copy of the pixels), else a new message."""
    msg = pb.Images() if into is None else into
    msg.format = fmt
    if fmt == pb.RAW_FLOAT32:
        fill_tensor(msg.pixels, x)
    elif fmt == pb.RAW_UINT8:
        fill_tensor(msg.pixels, images.to_uint8(x), "uint8")
    else:
        msg.encoded.extend(images.encode(img, FORMAT_NAMES[fmt], quality) for img in images.to_uint8(x))
    return msg


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
                     limits: pb.ServerLimits, directions: Mapping[str, Directions] | None = None) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=name, arch=info.arch, z_dim=info.z_dim, w_dim=info.w_dim, c_dim=info.c_dim, num_ws=info.num_ws,
        img_resolution=info.img_resolution, img_channels=info.img_channels,
        layers=[pb.Layer(index=row["index"], resolution=row["resolution"], group=row["group"]) for row in info.layers],
        class_names=list(info.class_names), backend=info.backend, device=info.device, config_json=config_json,
        w_avg=to_tensor(w_avg), limits=limits, precision=info.precision,
        direction_sets=[direction_set_to_pb(set_name, d) for set_name, d in (directions or {}).items()])


def model_info_from_pb(msg: pb.ModelInfo) -> ModelInfo:
    """The same `ModelInfo` dataclass the in-process `Generator.info` answers."""
    return ModelInfo(arch=msg.arch, z_dim=msg.z_dim, w_dim=msg.w_dim, c_dim=msg.c_dim, num_ws=msg.num_ws,
                     img_resolution=msg.img_resolution, img_channels=msg.img_channels,
                     layers=tuple({"index": row.index, "resolution": row.resolution, "group": row.group}
                                  for row in msg.layers),
                     class_names=tuple(msg.class_names), backend=msg.backend, device=msg.device,
                     precision=msg.precision)


def direction_set_to_pb(name: str, d: Directions) -> pb.DirectionSet:
    """One of a model's direction sets -> the message (everything a `Directions` holds)."""
    return pb.DirectionSet(name=name, kind=d.kind, direction_names=list(d.names), values=d.values.tolist(),
                           vectors=to_tensor(d.vectors), layers=[] if d.layers is None else list(d.layers),
                           model_json=json.dumps(d.model, sort_keys=True),
                           mean=None if d.mean is None else to_tensor(d.mean),
                           meta_json=json.dumps(d.meta, sort_keys=True, default=str))


def direction_set_from_pb(msg: pb.DirectionSet) -> tuple[str, Directions]:
    """The message -> (set name, Directions), checked as a direction set file is; ValueError naming the set."""
    where = f"direction_sets[{msg.name!r}]"
    try:
        model, meta = (json.loads(text) if text else {} for text in (msg.model_json, msg.meta_json))
        d = Directions(vectors=from_tensor(msg.vectors, "vectors"), values=np.asarray(msg.values, np.float32),
                       names=tuple(msg.direction_names), kind=msg.kind, layers=tuple(msg.layers) or None,
                       model=model, mean=from_tensor(msg.mean, "mean") if msg.HasField("mean") else None, meta=meta)
    except (ValueError, TypeError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{where}: {e}") from None
    return msg.name, d


def direction_sets_from_pb(msg: pb.ModelInfo) -> dict[str, Directions]:
    """A model's direction sets by name, as `Generator.directions` has them."""
    return dict(direction_set_from_pb(d) for d in msg.direction_sets)


def list_models_to_pb(models: Sequence[pb.ModelInfo], default_model: str) -> pb.ListModelsResponse:
    return pb.ListModelsResponse(models=models, default_model=default_model)


def list_models_from_pb(msg: pb.ListModelsResponse) -> dict[str, ModelInfo]:
    """Every model by name, the default one first."""
    ordered = sorted(msg.models, key=lambda m: m.name != msg.default_model)
    return {m.name: model_info_from_pb(m) for m in ordered}


# ----------------------------------------------------------------------------
# StyleGAN3 input transforms


def _transform_pb(translate: Any, rotate: Any, matrix: Any) -> pb.Transform | None:
    if translate is None and rotate is None and matrix is None:
        return None
    return pb.Transform(translate=[] if translate is None else np.asarray(translate, np.float64).ravel().tolist(),
                        rotate=[] if rotate is None else np.atleast_1d(np.asarray(rotate, np.float64)).tolist(),
                        matrix=[] if matrix is None else np.asarray(matrix, np.float64).ravel().tolist())


def transform_to_pb(t: calls.Transform) -> pb.Transform | None:
    """A checked call's Transform -> the message (None when nothing was given: the identity)."""
    return _transform_pb(t.translate, t.rotate, t.matrix)


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


# ----------------------------------------------------------------------------
# The parts requests share: map options, render options, latents


def _is_index(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True, eq=False)
class MapOptionsArgs:
    """MapOptions <-> the mapping arguments of a call (c, psi, cutoff)."""

    c: Any = None                 # None | one class index | float32 vectors [N, c_dim] or [c_dim]
    psi: float = 1.0
    cutoff: int | None = None

    def to_pb(self) -> pb.MapOptions:
        if self.c is None or _is_index(self.c):
            return pb.MapOptions(psi=self.psi, cutoff=self.cutoff, class_index=self.c)
        return pb.MapOptions(psi=self.psi, cutoff=self.cutoff, c=to_tensor(self.c))

    @classmethod
    def from_pb(cls, msg: pb.MapOptions) -> MapOptionsArgs:
        which = msg.WhichOneof("condition")
        c = msg.class_index if which == "class_index" else from_tensor(msg.c, "c") if which == "c" else None
        return cls(c, msg.psi if msg.HasField("psi") else 1.0, msg.cutoff if msg.HasField("cutoff") else None)


@dataclass(frozen=True, eq=False)
class RenderArgs:
    """RenderOptions <-> the rendering arguments of a call (noise, StyleGAN3's input transform) and how
    its images travel back (format, JPEG quality: a transport choice, not an argument of the call)."""

    noise_mode: str = "const"
    noise_seed: int | None = None
    translate: Any = None         # (tx, ty) [2], or [K, 2]: one per keyframe of an interpolation
    rotate: Any = None            # degrees, or [K]
    transform: Any = None         # the raw [3, 3] matrix
    fmt: int = pb.PNG             # an ImageFormat
    quality: int = DEFAULT_JPEG_QUALITY

    def to_pb(self) -> pb.RenderOptions:
        return pb.RenderOptions(noise_mode=NOISE_MODE_TO_PB[self.noise_mode], noise_seed=self.noise_seed,
                                format=self.fmt, jpeg_quality=self.quality,
                                transform=_transform_pb(self.translate, self.rotate, self.transform))

    @classmethod
    def from_pb(cls, msg: pb.RenderOptions) -> RenderArgs:
        """Order: noise_mode, format, quality, transform."""
        if msg.noise_mode not in NOISE_MODE_FROM_PB:
            raise ValueError(f"noise_mode: unknown value {msg.noise_mode} (CONST, RANDOM or NONE)")
        if msg.format not in FORMAT_NAMES:
            raise ValueError(f"format: unknown image format {msg.format} (PNG, JPEG, RAW_UINT8 or RAW_FLOAT32)")
        quality = msg.jpeg_quality or DEFAULT_JPEG_QUALITY
        if not 1 <= quality <= 100:
            raise ValueError(f"quality: must be in [1, 100], got {quality}")
        translate, rotate, matrix = transform_args(msg.transform)
        return cls(NOISE_MODE_FROM_PB[msg.noise_mode], msg.noise_seed if msg.HasField("noise_seed") else None,
                   translate, rotate, matrix, msg.format or pb.PNG, quality)

    @property
    def transform_kwargs(self) -> dict[str, Any]:
        return {"translate": self.translate, "rotate": self.rotate, "transform": self.transform}


def _latents_pb(**given: Any) -> dict[str, Any]:
    """The one latents field of a oneof that is set (seeds -> SeedList, arrays -> Tensor), as message kwargs."""
    present = {name: value for name, value in given.items() if value is not None}
    if len(present) > 1:
        raise ValueError(f"a request holds one of {', '.join(given)}, got {', '.join(present)}")
    return {name: pb.SeedList(values=value) if name == "seeds" else to_tensor(value)
            for name, value in present.items()}


def _latents_from_pb(msg: Any, oneof: str, names: tuple[str, ...]) -> list[Any]:
    """The oneof's fields in `names` order, decoded (seeds -> list, tensors -> arrays); None where unset."""
    which = msg.WhichOneof(oneof)
    out: list[Any] = []
    for name in names:
        if name != which:
            out.append(None)
        elif name == "seeds":
            out.append(list(msg.seeds.values))
        else:
            out.append(from_tensor(getattr(msg, name), name))
    return out


def edits_to_pb(edits: Mapping[str, Mapping[Any, Any]] | None) -> list[pb.DirectionEdit]:
    """Edits a call has checked ({set name: {direction index or name: strength}}) -> DirectionEdit entries, in
    order. An index is an int (a NumPy integer too), a name a str (a string of digits stays a str: the
    server reads it as an index, as the in-process call does)."""
    out = []
    for set_name, strengths in (edits or {}).items():
        for key, strength in strengths.items():
            which = {"name": key} if isinstance(key, str) else {"index": int(key)}
            out.append(pb.DirectionEdit(set=set_name, strength=float(strength), **which))
    return out


def edits_from_pb(entries: Sequence[pb.DirectionEdit]) -> dict[str, dict[int | str, float]] | None:
    """DirectionEdit entries -> {set name: {index or name: strength}} in their order (None when there are none);
    ValueError for what only a message can get wrong: an entry with no direction, or one given twice."""
    if not entries:
        return None
    edits: dict[str, dict[int | str, float]] = {}
    for k, entry in enumerate(entries):
        which = entry.WhichOneof("direction")
        if which is None:
            raise ValueError(f"edits: entry {k} (set {entry.set!r}) names no direction (index or name)")
        key = entry.index if which == "index" else entry.name
        strengths = edits.setdefault(entry.set, {})
        if key in strengths:
            raise ValueError(f"edits[{entry.set!r}]: direction {key!r} is given twice")
        strengths[key] = entry.strength
    return edits


def seed_count(msg: Any) -> int:
    """How many seeds a request lists (0 for tensors), known before any of them is decoded."""
    return len(msg.seeds.values) if msg.HasField("seeds") else 0


# ----------------------------------------------------------------------------
# The requests


@dataclass(frozen=True, eq=False)
class GenerateArgs:
    """GenerateRequest <-> generate(seeds | z=, psi, cutoff, noise_mode, c, noise_seed, translate, rotate,
    transform, edits), the images' format and return_ws."""

    seeds: list[int] | None = None
    z: np.ndarray | None = None                  # [N, z_dim] or [z_dim], instead of seeds
    mapping: MapOptionsArgs = field(default_factory=MapOptionsArgs)
    render: RenderArgs = field(default_factory=RenderArgs)
    return_ws: bool = False
    model: str = ""
    edits: dict[str, dict[int | str, float]] | None = None   # {set name: {direction index or name: strength}}

    def to_pb(self) -> pb.GenerateRequest:
        return pb.GenerateRequest(model=self.model, **_latents_pb(seeds=self.seeds, z=self.z),
                                  map=self.mapping.to_pb(), render=self.render.to_pb(), return_ws=self.return_ws,
                                  edits=edits_to_pb(self.edits))

    @classmethod
    def from_pb(cls, msg: pb.GenerateRequest) -> GenerateArgs:
        seeds, z = _latents_from_pb(msg, "latents", ("seeds", "z"))
        return cls(seeds, z, MapOptionsArgs.from_pb(msg.map), RenderArgs.from_pb(msg.render), msg.return_ws,
                   msg.model, edits_from_pb(msg.edits))

    def check(self, cfg: GeneratorConfig, sets: Mapping[str, Directions] | None = None) -> calls.Generate:
        """The call, checked by its definition (edits against the model's direction `sets`); float images (the
        server encodes them as `render.fmt`)."""
        m, r = self.mapping, self.render
        return calls.Generate.check(cfg, self.seeds, m.psi, m.cutoff, r.noise_mode, m.c, "float", r.noise_seed,
                                    z=self.z, **r.transform_kwargs, edits=self.edits, sets=sets)


@dataclass(frozen=True, eq=False)
class MapArgs:
    """MapRequest <-> map(z, c, psi, cutoff); the wire also takes seeds instead of z."""

    seeds: list[int] | None = None
    z: np.ndarray | None = None
    mapping: MapOptionsArgs = field(default_factory=MapOptionsArgs)
    model: str = ""

    def to_pb(self) -> pb.MapRequest:
        return pb.MapRequest(model=self.model, **_latents_pb(seeds=self.seeds, z=self.z), map=self.mapping.to_pb())

    @classmethod
    def from_pb(cls, msg: pb.MapRequest) -> MapArgs:
        seeds, z = _latents_from_pb(msg, "latents", ("seeds", "z"))
        return cls(seeds, z, MapOptionsArgs.from_pb(msg.map), msg.model)

    def check(self, cfg: GeneratorConfig) -> calls.Map:
        """Seeds become z as `seed_to_z` makes them (checking them), then the call's own checks."""
        if self.seeds is None and self.z is None:
            raise ValueError("seeds: give seeds or z")
        z = self.z if self.seeds is None else latents.seed_to_z(self.seeds, cfg.z_dim)
        return calls.Map.check(cfg, z, self.mapping.c, self.mapping.psi, self.mapping.cutoff)


@dataclass(frozen=True, eq=False)
class SynthesizeArgs:
    """SynthesizeRequest <-> synthesize(ws, noise_mode, noise_seed, translate, rotate, transform, edits) and the
    images' format."""

    ws: np.ndarray
    render: RenderArgs = field(default_factory=RenderArgs)
    model: str = ""
    edits: dict[str, dict[int | str, float]] | None = None

    def to_pb(self) -> pb.SynthesizeRequest:
        return pb.SynthesizeRequest(model=self.model, ws=to_tensor(self.ws), render=self.render.to_pb(),
                                    edits=edits_to_pb(self.edits))

    @classmethod
    def from_pb(cls, msg: pb.SynthesizeRequest) -> SynthesizeArgs:
        return cls(from_tensor(msg.ws, "ws"), RenderArgs.from_pb(msg.render), msg.model, edits_from_pb(msg.edits))

    def check(self, cfg: GeneratorConfig, sets: Mapping[str, Directions] | None = None) -> calls.Synthesize:
        r = self.render
        return calls.Synthesize.check(cfg, self.ws, r.noise_mode, "float", r.noise_seed, **r.transform_kwargs,
                                      edits=self.edits, sets=sets)


@dataclass(frozen=True, eq=False)
class MixArgs:
    """MixRequest <-> mix(w_a, w_b, layers, noise_mode, noise_seed, translate, rotate, transform, edits) and the
    images' format."""

    w_a: np.ndarray
    w_b: np.ndarray
    layers: list[int]
    render: RenderArgs = field(default_factory=RenderArgs)
    model: str = ""
    edits: dict[str, dict[int | str, float]] | None = None

    def to_pb(self) -> pb.MixRequest:
        return pb.MixRequest(model=self.model, w_a=to_tensor(self.w_a), w_b=to_tensor(self.w_b), layers=self.layers,
                             render=self.render.to_pb(), edits=edits_to_pb(self.edits))

    @classmethod
    def from_pb(cls, msg: pb.MixRequest) -> MixArgs:
        return cls(from_tensor(msg.w_a, "w_a"), from_tensor(msg.w_b, "w_b"), list(msg.layers),
                   RenderArgs.from_pb(msg.render), msg.model, edits_from_pb(msg.edits))

    def check(self, cfg: GeneratorConfig, sets: Mapping[str, Directions] | None = None) -> calls.Mix:
        r = self.render
        return calls.Mix.check(cfg, self.w_a, self.w_b, self.layers, r.noise_mode, "float", r.noise_seed,
                               **r.transform_kwargs, edits=self.edits, sets=sets)


@dataclass(frozen=True, eq=False)
class InterpolateArgs:
    """InterpolateRequest <-> interpolate(seeds | z= | ws=, num_frames, space, psi, cutoff, noise_mode, c,
    noise_seed, translate, rotate, transform), the images' format and return_ws."""

    seeds: list[int] | None = None
    z: np.ndarray | None = None                  # [K, z_dim]
    ws: np.ndarray | None = None                 # [K, num_ws, w_dim]
    num_frames: int = 30
    space: str = "w"
    mapping: MapOptionsArgs = field(default_factory=MapOptionsArgs)   # not used by ws keyframes
    render: RenderArgs = field(default_factory=RenderArgs)
    return_ws: bool = False
    model: str = ""

    def to_pb(self) -> pb.InterpolateRequest:
        return pb.InterpolateRequest(model=self.model, **_latents_pb(seeds=self.seeds, z=self.z, ws=self.ws),
                                     num_frames=self.num_frames, space=SPACE_TO_PB[self.space],
                                     map=self.mapping.to_pb(), render=self.render.to_pb(), return_ws=self.return_ws)

    @classmethod
    def from_pb(cls, msg: pb.InterpolateRequest) -> InterpolateArgs:
        """Order: space, the keyframes, map options, render options."""
        if msg.space not in SPACE_FROM_PB:
            raise ValueError(f"space: unknown value {msg.space} (W or Z)")
        seeds, z, ws = _latents_from_pb(msg, "keyframes", ("seeds", "z", "ws"))
        return cls(seeds, z, ws, msg.num_frames, SPACE_FROM_PB[msg.space], MapOptionsArgs.from_pb(msg.map),
                   RenderArgs.from_pb(msg.render), msg.return_ws, msg.model)

    def check(self, cfg: GeneratorConfig, max_frames: int | None = None) -> calls.Interpolate:
        m, r = self.mapping, self.render
        return calls.Interpolate.check(cfg, self.seeds, z=self.z, ws=self.ws, num_frames=self.num_frames,
                                       space=self.space, psi=m.psi, cutoff=m.cutoff, noise_mode=r.noise_mode, c=m.c,
                                       output="float", noise_seed=r.noise_seed, **r.transform_kwargs,
                                       max_frames=max_frames)


@dataclass(frozen=True, eq=False)
class ProjectArgs:
    """ProjectRequest <-> project(images, space, steps, loss, init, optimize_noise, seed, transform), with the
    targets as image files (PNG / JPEG bytes: the server decodes them), and what only the wire has: progress
    events every progress_every steps (0: none), previews in them, the model's name."""

    targets: list[bytes] = field(default_factory=list)
    space: str = "w"
    steps: int = DEFAULT_STEPS
    loss: str = DEFAULT_LOSS
    seed: int = 0
    optimize_noise: bool = True
    init: np.ndarray | None = None               # ws [N or 1, num_ws, w_dim]
    transform: np.ndarray | None = None          # StyleGAN3: the raw [3, 3] input transform
    progress_every: int = 0
    preview: bool = False
    model: str = ""

    def to_pb(self) -> pb.ProjectRequest:
        return pb.ProjectRequest(
            model=self.model, targets=self.targets, space=PROJECTION_SPACE_TO_PB[self.space], steps=self.steps,
            loss=self.loss, seed=self.seed, optimize_noise=self.optimize_noise,
            init=None if self.init is None else to_tensor(self.init), progress_every=self.progress_every,
            preview=self.preview, transform=_transform_pb(None, None, self.transform))

    @classmethod
    def from_pb(cls, msg: pb.ProjectRequest) -> ProjectArgs:
        """Order: space, init, transform. The targets stay files (the server checks their headers, then decodes
        them in the projection's worker)."""
        if msg.space not in PROJECTION_SPACE_FROM_PB:
            raise ValueError(f"space: unknown value {msg.space} (PROJECTION_SPACE_W or PROJECTION_SPACE_W_PLUS)")
        init = from_tensor(msg.init, "init") if msg.HasField("init") else None
        transform = None
        if msg.HasField("transform"):
            translate, rotate, transform = transform_args(msg.transform)
            if translate is not None or rotate is not None:
                raise ValueError("transform: a projection takes the input transform as its raw [3, 3] matrix "
                                 "(Transform.matrix), not translate / rotate")
        return cls(list(msg.targets), PROJECTION_SPACE_FROM_PB[msg.space], msg.steps or DEFAULT_STEPS,
                   msg.loss or DEFAULT_LOSS, msg.seed, msg.optimize_noise if msg.HasField("optimize_noise") else True,
                   init, transform, msg.progress_every, msg.preview, msg.model)

    def check(self, cfg: GeneratorConfig, max_steps: int | None = None) -> ProjectCall:
        """The arguments but the targets (whose files the server reads), checked by the projection's definition."""
        if not self.targets:
            raise ValueError("targets: no targets given")
        return ProjectCall.check(cfg, len(self.targets), self.space, self.steps, self.loss, self.init,
                                 self.optimize_noise, self.seed, self.transform, max_steps=max_steps)


@dataclass(frozen=True, eq=False)
class ProjectProgress:
    """A progress event of a served projection."""

    step: int                           # steps done
    steps: int
    losses: np.ndarray                  # [N] float32: the distance per target at this step
    preview: np.ndarray | None = None   # uint8 [N, H, W, C]: the current ws rendered, when asked for


def project_progress_to_pb(step: int, steps: int, losses: np.ndarray, preview: np.ndarray | None = None
                           ) -> pb.ProjectEvent:
    """preview: uint8 [N, H, W, C], sent as PNG files."""
    event = pb.ProjectEvent()
    p = event.progress
    p.step, p.steps = step, steps
    p.losses.extend(np.asarray(losses, np.float32).tolist())
    if preview is not None:
        p.preview.format = pb.PNG
        p.preview.encoded.extend(images.encode(img, "png") for img in preview)
    return event


def project_result_to_pb(result: Projection) -> pb.ProjectEvent:
    """The result (ws, loss history, images, targets, ...; not the optimised noise nor a history of ws)."""
    event = pb.ProjectEvent()
    r = event.result
    fill_tensor(r.ws, result.ws)
    fill_tensor(r.losses, result.losses)
    for into, pixels in ((r.images, result.images), (r.targets, result.targets)):
        into.format = pb.RAW_UINT8
        fill_tensor(into.pixels, pixels, "uint8")
    r.loss, r.space, r.steps, r.seed = result.loss, PROJECTION_SPACE_TO_PB[result.space], result.steps, result.seed
    r.stopped = result.stopped
    return event


def project_event_from_pb(msg: pb.ProjectEvent) -> ProjectProgress | Projection:
    """A progress event -> ProjectProgress; the result -> the `Projection` the in-process call returns."""
    which = msg.WhichOneof("event")
    if which == "progress":
        p = msg.progress
        preview = None
        if p.HasField("preview"):
            decoded = images_from_pb(p.preview)
            preview = np.stack([images.decode(f) for f in decoded]) if isinstance(decoded, list) else decoded
        return ProjectProgress(p.step, p.steps, np.asarray(p.losses, np.float32), preview)
    if which != "result":
        raise ValueError("event: a ProjectEvent with neither progress nor result")
    r = msg.result
    if r.space not in PROJECTION_SPACE_FROM_PB:
        raise ValueError(f"space: unknown value {r.space}")
    pixels = [images_from_pb(x) for x in (r.images, r.targets)]
    if any(not isinstance(x, np.ndarray) or x.dtype != np.uint8 for x in pixels):
        raise ValueError("images: expected RAW_UINT8 images in a projection's result")
    return Projection(ws=from_tensor(r.ws, "ws"), losses=from_tensor(r.losses, "losses"), images=pixels[0],
                      targets=pixels[1], loss=r.loss, space=PROJECTION_SPACE_FROM_PB[r.space], steps=r.steps,
                      seed=r.seed, stopped=r.stopped)


@dataclass(frozen=True)
class GetModelInfoArgs:
    """GetModelInfoRequest <-> which model ("": the server's default)."""

    model: str = ""

    def to_pb(self) -> pb.GetModelInfoRequest:
        return pb.GetModelInfoRequest(model=self.model)

    @classmethod
    def from_pb(cls, msg: pb.GetModelInfoRequest) -> GetModelInfoArgs:
        return cls(msg.model)


@dataclass(frozen=True)
class ListModelsArgs:
    """ListModelsRequest: no arguments."""

    def to_pb(self) -> pb.ListModelsRequest:
        return pb.ListModelsRequest()

    @classmethod
    def from_pb(cls, msg: pb.ListModelsRequest) -> ListModelsArgs:
        return cls()


REQUESTS: dict[str, type] = {
    "Generate": GenerateArgs, "Map": MapArgs, "Synthesize": SynthesizeArgs, "Mix": MixArgs,
    "Interpolate": InterpolateArgs, "Project": ProjectArgs, "GetModelInfo": GetModelInfoArgs,
    "ListModels": ListModelsArgs,
}
"""RPC name -> the class of its request's arguments (tests check that every RPC of the service has one)."""
