"""One definition per call: its arguments, defaults, the order of their checks, and its latent math.

    call = calls.Generate.check(cfg, seeds="0-3", psi=0.7)    # ValueError naming the first bad argument
    w = backend.map(call.z, call.mapping.c)                    # [N, w_dim]
    ws = call.mapping.to_ws(w, cfg, w_avg)                     # [N, num_ws, w_dim], truncated
    x = backend.synthesize(ws, call.render.noise_mode, call.render.noise(cfg, len(ws)))

`Generator` (in-process), the gRPC servicer (serving/servicer.py) and the client's request planning
(stylegan_sdk/client.py) all build these objects, so each argument is checked in one place, in one order,
with one text: the client raises before sending exactly what the server would answer and what the
in-process Generator raises. An option added to a call is added here once. NumPy only (no torch, no grpc).

Transport limits (latents per request, message sizes, frames per stream) belong to the server and are
checked there, on the `rows` / `total` these objects report, after the call's own checks.
"""

from __future__ import annotations

import functools
from collections import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import images, latents
from .config import GeneratorConfig
from .editing.directions import Directions, add_on_rows, check_strengths, edit_delta, pick_set

Seeds = int | str | Iterable[int]
SPACES = ("w", "z")


def _one_seed(seeds: Any) -> bool:
    """generate(42) answers one image; generate([42]) or '42' a list of one."""
    return isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool)


def _single(out: Any, single: bool) -> Any:
    return out[0] if single else out


# ----------------------------------------------------------------------------
# The two parts every call shares: mapping options and rendering options


@dataclass(frozen=True)
class Mapping:
    """How z becomes ws: class input, truncation psi toward w_avg on the ws rows < cutoff."""

    c: np.ndarray | None        # [N, c_dim] float32, None for unconditional models
    psi: float = 1.0            # 1: no truncation
    cutoff: int | None = None   # None: every ws row

    @classmethod
    def check(cls, cfg: GeneratorConfig, n: int, c: Any = None, psi: float = 1.0,
              cutoff: int | None = None) -> Mapping:
        """Order: c, psi, cutoff."""
        c = latents.check_c(c, cfg.c_dim, n, cfg.class_names)
        return cls(c, latents.check_psi(psi), latents.check_cutoff(cutoff, cfg.num_ws))

    def rows(self, part: slice) -> Mapping:
        """The same options for rows `part` of the request."""
        return Mapping(None if self.c is None else self.c[part], self.psi, self.cutoff)

    def to_ws(self, w: np.ndarray, cfg: GeneratorConfig, w_avg: np.ndarray) -> np.ndarray:
        """The mapping network's w [N, w_dim] -> ws [N, num_ws, w_dim], truncated."""
        return latents.truncate(latents.broadcast_ws(w, cfg.num_ws), w_avg, self.psi, self.cutoff)


@dataclass(frozen=True)
class Render:
    """How ws become images: the noise of the synthesis layers and the output type."""

    noise_mode: str = "const"       # "const" | "random" | "none"
    noise_seed: int | None = None   # "random" only (None: fresh noise); ignored otherwise
    output: str = "float"           # "float" [N, C, H, W] | "uint8" [N, H, W, C] | "pil"

    @classmethod
    def check(cls, noise_mode: str = "const", output: str = "float", noise_seed: int | None = None) -> Render:
        """Order: noise_mode, output, noise_seed (checked only where random noise uses it)."""
        latents.check_noise_mode(noise_mode)
        images.check_output(output)
        seed = latents.check_noise_seed(noise_seed) if noise_mode == "random" else None
        return cls(noise_mode, seed, output)

    def noise(self, cfg: GeneratorConfig, n: int) -> list[np.ndarray] | None:
        """One draw of per-layer noise [n, 1, r, r] for the whole call ("random"), else None."""
        if self.noise_mode != "random":
            return None
        return latents.draw_noise(cfg.noise_resolutions, n, self.noise_seed)

    def convert(self, x: np.ndarray) -> Any:
        """Float images [N, C, H, W] -> the output type."""
        return images.convert(x, self.output)


@dataclass(frozen=True)
class Transform:
    """StyleGAN3's input transform: where the view looks. translate=(tx, ty) and rotate (degrees) build it
    as the official gen_images.py does (make_transform, then its inverse); transform is the raw [3, 3]
    value of the synthesis input's transform. Interpolate also takes one translate / rotate per keyframe
    (a camera path, lerped between keyframes like the latents). Families without an input transform
    accept only the identity."""

    translate: np.ndarray | None = None     # [2] or [K, 2] (per keyframe), float64
    rotate: np.ndarray | None = None        # [] or [K] (per keyframe), degrees, float64
    matrix: np.ndarray | None = None        # [3, 3] float32, the raw value
    enabled: bool = False                   # the model has an input transform (StyleGAN3)

    @classmethod
    def check(cls, cfg: GeneratorConfig, translate: Any = None, rotate: Any = None, transform: Any = None,
              keyframes: int | None = None) -> Transform:
        """Order: translate, rotate, transform, then whether the model takes any. `keyframes`: the number of
        keyframes of an interpolation (translate [K, 2] / rotate [K] allowed), None for other calls."""
        t = None if translate is None else cls._values(translate, "translate", (2,), keyframes)
        r = None if rotate is None else cls._values(rotate, "rotate", (), keyframes)
        m = None
        if transform is not None:
            if t is not None or r is not None:
                raise ValueError("transform: give translate / rotate or transform, not both")
            m = latents.as_float_array(transform, "transform")
            if m.shape != (3, 3):
                raise ValueError(f"transform: expected a [3, 3] matrix, got shape {list(m.shape)}")
        call = cls(t, r, m, enabled=cfg.arch == "stylegan3")
        if not call.enabled and not call.is_identity:
            given = "transform" if m is not None else "translate" if t is not None and np.any(t) else "rotate"
            raise ValueError(f"{given}: this model ({cfg.arch}) has no input transform; translate, rotate and "
                             f"transform are for StyleGAN3 models")
        return call

    @staticmethod
    def _values(value: Any, name: str, shape: tuple[int, ...], keyframes: int | None) -> np.ndarray:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected numbers, got {type(value).__name__}") from None
        allowed = [shape] + ([(keyframes, *shape)] if keyframes is not None else [])
        if arr.shape not in allowed:
            wanted = " or ".join(str(list(s)) for s in allowed)
            raise ValueError(f"{name}: expected shape {wanted}, got {list(arr.shape)}")
        if not np.all(np.isfinite(arr)) or np.any(np.abs(arr) > 1e6):
            raise ValueError(f"{name}: values must be finite and at most 1e6 in size")
        return arr

    @property
    def is_identity(self) -> bool:
        if self.matrix is not None:
            return bool(np.array_equal(self.matrix, np.eye(3, dtype=np.float32)))
        if self.translate is None and self.rotate is None:  # nothing given: every call's default (no NumPy)
            return True
        return not np.any(self.translate if self.translate is not None else 0) and \
            not np.any(self.rotate if self.rotate is not None else 0)

    def _at(self, translate: np.ndarray | None, rotate: np.ndarray | float | None) -> np.ndarray:
        if self.matrix is not None:
            return self.matrix
        return latents.input_transform(translate if translate is not None else (0.0, 0.0),
                                       0.0 if rotate is None else float(rotate))

    def rows(self, n: int) -> np.ndarray | None:
        """Per-row transforms [n, 3, 3] float32 for the backend (None for families without one)."""
        if not self.enabled:
            return None
        return np.repeat(self._at(self.translate, self.rotate)[np.newaxis], n, axis=0)

    def along(self, part: list[tuple[int, float]]) -> np.ndarray | None:
        """Per-frame transforms [len(part), 3, 3] of an interpolation: per-keyframe translate / rotate are
        lerped between keyframes (segment s, t) like the latents; a single value holds for every frame."""
        if not self.enabled:
            return None

        def value(v: np.ndarray | None, s: int, t: float) -> Any:
            if v is None or v.ndim == (1 if v is self.translate else 0):
                return v
            return v[s] + (v[s + 1] - v[s]) * t

        return np.stack([self._at(value(self.translate, s, t), value(self.rotate, s, t)) for s, t in part])


@dataclass(frozen=True)
class Edits:
    """Edits with the model's direction sets: {set name: {direction index or name: strength}}. Each set adds
    sum(strength * vector) to its own ws rows (every row when the set has no `layers`), after truncation."""

    steps: tuple[tuple[tuple[int, ...] | None, np.ndarray], ...] = ()   # (ws rows or None = all, delta [w_dim])

    @classmethod
    def check(cls, cfg: GeneratorConfig, edits: Any, sets: abc.Mapping[str, Directions]) -> Edits:
        """Order: the map, then per set (in the given order) its name, then its strengths."""
        if edits is None:
            return cls()
        if not isinstance(edits, abc.Mapping):
            raise ValueError(f"edits: expected a map {{direction set name: {{direction: strength}}}}, got "
                             f"{type(edits).__name__}")
        steps = []
        for set_name, strengths in edits.items():
            d = pick_set(sets, set_name, "edits")
            checked = check_strengths(d, strengths, name=f"edits[{set_name!r}]")
            if checked:
                steps.append((d.layers, edit_delta(d, checked)))
        return cls(tuple(steps))

    def apply(self, ws: np.ndarray) -> np.ndarray:
        """ws [N, num_ws, w_dim] with the edits added (the same array when there are none)."""
        for rows, delta in self.steps:
            ws = add_on_rows(ws, rows, delta)
        return ws


# ----------------------------------------------------------------------------
# The calls


@dataclass(frozen=True)
class Map:
    """map(z, c=None, psi=1.0, cutoff=None): z [N, z_dim] (or one [z_dim]) -> ws [N, num_ws, w_dim]."""

    z: np.ndarray       # [N, z_dim]
    mapping: Mapping
    single: bool        # one z [z_dim] given: answer one [num_ws, w_dim]

    @classmethod
    def check(cls, cfg: GeneratorConfig, z: Any, c: Any = None, psi: float = 1.0,
              cutoff: int | None = None) -> Map:
        """Order: z, c, psi, cutoff."""
        z, single = latents.check_z(z, cfg.z_dim)
        return cls(z, Mapping.check(cfg, z.shape[0], c, psi, cutoff), single)

    @property
    def rows(self) -> int:
        return self.z.shape[0]

    def finish(self, ws: np.ndarray) -> np.ndarray:
        return _single(ws, self.single)


@dataclass(frozen=True)
class Synthesize:
    """synthesize(ws, noise_mode="const", output="float", noise_seed=None, translate=None, rotate=None,
    transform=None): ws [N, num_ws, w_dim] -> images."""

    ws: np.ndarray      # [N, num_ws, w_dim]
    render: Render
    single: bool
    transform: Transform = Transform()
    edits: Edits = Edits()

    @classmethod
    def check(cls, cfg: GeneratorConfig, ws: Any, noise_mode: str = "const", output: str = "float",
              noise_seed: int | None = None, translate: Any = None, rotate: Any = None,
              transform: Any = None, edits: Any = None, sets: abc.Mapping[str, Directions] | None = None) -> Synthesize:
        """Order: ws, noise_mode, output, noise_seed, translate, rotate, transform, edits (against the
        model's direction `sets`)."""
        ws, single = latents.check_ws(ws, cfg.num_ws, cfg.w_dim)
        return cls(ws, Render.check(noise_mode, output, noise_seed), single,
                   Transform.check(cfg, translate, rotate, transform), Edits.check(cfg, edits, sets or {}))

    @property
    def rows(self) -> int:
        return self.ws.shape[0]

    def finish(self, x: np.ndarray) -> Any:
        return _single(self.render.convert(x), self.single)


@dataclass(frozen=True)
class Generate:
    """generate(seeds, psi=1.0, cutoff=None, noise_mode="const", c=None, output="pil", noise_seed=None).

    Seeds are '0-7,42', a list, or one int (then one image, not a list). The server also accepts z
    [N, z_dim] instead of seeds (the `z` keyword here)."""

    seeds: list[int] | None         # None when z was given
    given_z: np.ndarray | None      # [N, z_dim] when given instead of seeds
    z_dim: int
    mapping: Mapping
    render: Render
    single: bool
    transform: Transform = Transform()
    edits: Edits = Edits()

    @classmethod
    def check(cls, cfg: GeneratorConfig, seeds: Seeds | None = None, psi: float = 1.0, cutoff: int | None = None,
              noise_mode: str = "const", c: Any = None, output: str = "pil", noise_seed: int | None = None,
              *, z: Any = None, translate: Any = None, rotate: Any = None, transform: Any = None,
              edits: Any = None, sets: abc.Mapping[str, Directions] | None = None) -> Generate:
        """Order: noise_mode, output, seeds (or z), c, psi, cutoff, noise_seed, translate, rotate, transform,
        edits (against the model's direction `sets`)."""
        latents.check_noise_mode(noise_mode)
        images.check_output(output)
        if (seeds is None) == (z is None):
            raise ValueError("seeds: give seeds or z")
        if z is not None:
            given_z, single = latents.check_z(z, cfg.z_dim)
            seed_list, n = None, given_z.shape[0]
        else:
            given_z, seed_list, single = None, latents.check_seeds(seeds), _one_seed(seeds)
            n = len(seed_list)
        mapping = Mapping.check(cfg, n, c, psi, cutoff)
        return cls(seed_list, given_z, cfg.z_dim, mapping, Render.check(noise_mode, output, noise_seed), single,
                   Transform.check(cfg, translate, rotate, transform), Edits.check(cfg, edits, sets or {}))

    @functools.cached_property
    def z(self) -> np.ndarray:
        """[N, z_dim]: RandomState(seed).randn(z_dim) per seed (computed on first use), or the given z."""
        return self.given_z if self.given_z is not None else latents.seed_to_z(self.seeds, self.z_dim)

    @property
    def rows(self) -> int:
        return len(self.seeds) if self.seeds is not None else self.given_z.shape[0]

    def finish(self, x: np.ndarray) -> Any:
        return _single(self.render.convert(x), self.single)


@dataclass(frozen=True)
class Mix:
    """mix(w_a, w_b, layers, noise_mode="const", output="pil", noise_seed=None): images of w_a with the
    listed ws rows taken from w_b (style mixing). w_a, w_b: [num_ws, w_dim] (one image) or [N, ...]."""

    w_a: np.ndarray         # [N, num_ws, w_dim]
    w_b: np.ndarray         # [N, num_ws, w_dim]
    layers: list[int]       # sorted, unique, each in [0, num_ws)
    render: Render
    single: bool
    transform: Transform = Transform()
    edits: Edits = Edits()

    @classmethod
    def check(cls, cfg: GeneratorConfig, w_a: Any, w_b: Any, layers: int | str | Iterable[int],
              noise_mode: str = "const", output: str = "pil", noise_seed: int | None = None,
              translate: Any = None, rotate: Any = None, transform: Any = None, edits: Any = None,
              sets: abc.Mapping[str, Directions] | None = None) -> Mix:
        """Order: w_a, w_b, layers, matching shapes, noise_mode, output, noise_seed, translate, rotate,
        transform, edits (against the model's direction `sets`; applied to the mixed ws)."""
        a, single = latents.check_ws(w_a, cfg.num_ws, cfg.w_dim, name="w_a")
        b, single_b = latents.check_ws(w_b, cfg.num_ws, cfg.w_dim, name="w_b")
        idx = latents.check_layers(cfg.layer_indices(layers), cfg.num_ws)
        if a.shape != b.shape or single != single_b:
            shape_a = a.shape[1:] if single else a.shape
            shape_b = b.shape[1:] if single_b else b.shape
            raise ValueError(f"w_b: shape {list(shape_b)} does not match w_a {list(shape_a)}")
        return cls(a, b, idx, Render.check(noise_mode, output, noise_seed), single,
                   Transform.check(cfg, translate, rotate, transform), Edits.check(cfg, edits, sets or {}))

    @property
    def ws(self) -> np.ndarray:
        """The mixed ws [N, num_ws, w_dim]."""
        out = self.w_a.copy()
        out[:, self.layers] = self.w_b[:, self.layers]
        return out

    @property
    def rows(self) -> int:
        return self.w_a.shape[0]

    def finish(self, x: np.ndarray) -> Any:
        return _single(self.render.convert(x), self.single)


@dataclass(frozen=True)
class Interpolate:
    """interpolate(seeds | z= | ws=, num_frames=30, space="w", psi=1.0, cutoff=None, noise_mode="const",
    c=None, output="pil", noise_seed=None): frames along a path through K >= 2 keyframes.

    num_frames frames in all, spread evenly along the path, the first on the first keyframe and the last on
    the last (each keyframe on a frame when num_frames - 1 is a multiple of K - 1). space "w":
    lerp between the mapped keyframes; "z": slerp in Z (seeds or z keyframes), every frame mapped. Random
    noise is one draw shared by every frame (no flicker). The frames are planned lazily: a path of any
    length costs nothing until its frames are computed."""

    seeds: list[int] | None     # exactly one of seeds, z, ws
    z: np.ndarray | None        # [K, z_dim]
    ws: np.ndarray | None       # [K, num_ws, w_dim]
    num_frames: int
    space: str
    mapping: Mapping | None     # None for ws keyframes
    render: Render
    transform: Transform = Transform()   # may hold one translate / rotate per keyframe (a camera path)

    @classmethod
    def check(cls, cfg: GeneratorConfig, seeds: Seeds | None = None, *, z: Any = None, ws: Any = None,
              num_frames: int = 30, space: str = "w", psi: float = 1.0, cutoff: int | None = None,
              noise_mode: str = "const", c: Any = None, output: str = "pil", noise_seed: int | None = None,
              translate: Any = None, rotate: Any = None, transform: Any = None,
              max_frames: int | None = None) -> Interpolate:
        """Order: which keyframes, space, num_frames, noise_mode, output, noise_seed, the keyframes, c, psi,
        cutoff, translate, rotate, transform (one per keyframe allowed), then the path's length against
        max_frames (a server's limit; None: no limit)."""
        given = [name for name, v in (("seeds", seeds), ("z", z), ("ws", ws)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"keyframes: give exactly one of seeds, z or ws (got {given or 'none'})")
        if space not in SPACES:
            raise ValueError(f"space: must be 'w' or 'z', got {space!r}")
        num_frames = latents.check_num_frames(num_frames)
        render = Render.check(noise_mode, output, noise_seed)
        seed_list = z_keys = ws_keys = mapping = None
        if ws is not None:
            if space == "z":
                raise ValueError("space: ws keyframes interpolate in W only; give seeds or z to slerp in Z")
            ws_keys, _ = latents.check_ws(ws, cfg.num_ws, cfg.w_dim)
            k = ws_keys.shape[0]
        else:
            if seeds is not None:
                seed_list = latents.check_seeds(seeds)
                k = len(seed_list)
            else:
                z_keys, _ = latents.check_z(z, cfg.z_dim)
                k = z_keys.shape[0]
            mapping = Mapping.check(cfg, k, c, psi, cutoff)
        if k < 2:
            raise ValueError(f"keyframes: need at least 2, got {k}")
        if num_frames < k:
            raise ValueError(f"num_frames: {num_frames} frames cannot pass through {k} keyframes (give at least {k})")
        camera = Transform.check(cfg, translate, rotate, transform, keyframes=k)
        call = cls(seed_list, z_keys, ws_keys, num_frames, space, mapping, render, camera)
        if max_frames is not None and call.total > max_frames:
            raise ValueError(f"num_frames: {call.total} frames in one stream, over the limit of {max_frames}")
        return call

    @property
    def rows(self) -> int:
        """Keyframes."""
        return len(self.seeds) if self.seeds is not None else (self.z if self.z is not None else self.ws).shape[0]

    @property
    def total(self) -> int:
        return self.num_frames

    def key_z(self, cfg: GeneratorConfig) -> np.ndarray:
        """z of the keyframes [K, z_dim] (seeds or z keyframes)."""
        return self.z if self.z is not None else latents.seed_to_z(self.seeds, cfg.z_dim)

    def batches(self, size: int) -> Iterator[tuple[int, list[tuple[int, float]]]]:
        """(index of the first frame, [(segment, t), ...]) for consecutive runs of at most `size` frames."""
        for first in range(0, self.total, size):
            stop = min(self.total, first + size)
            yield first, [latents.path_position(i, self.rows, self.num_frames) for i in range(first, stop)]

    @staticmethod
    def between(keys: np.ndarray, part: list[tuple[int, float]], spherical: bool = False) -> np.ndarray:
        """Latents of the frames `part` between consecutive rows of keys (lerp, or slerp for z)."""
        fn = latents.slerp if spherical else latents.lerp
        return np.stack([fn(keys[s], keys[s + 1], t) for s, t in part])

    def frame_mapping(self, part: list[tuple[int, float]]) -> Mapping:
        """Mapping options of the frames `part` (Z space: class vectors lerped like the z are slerped)."""
        m = self.mapping
        return Mapping(None if m.c is None else self.between(m.c, part), m.psi, m.cutoff)

    def noise(self, cfg: GeneratorConfig) -> list[np.ndarray] | None:
        """The one noise draw [1, 1, r, r] per layer shared by every frame of the path ("random"), else None."""
        return self.render.noise(cfg, 1)

    @staticmethod
    def frames_noise(noise: list[np.ndarray] | None, n: int) -> list[np.ndarray] | None:
        """The path's one noise draw repeated for n frames."""
        return None if noise is None else [np.repeat(x, n, axis=0) for x in noise]


@dataclass(frozen=True)
class Edit:
    """edit(ws, directions, strengths, layers=None) -> ws: ws + sum(strength * vector) on the chosen ws rows
    (the directions' own `layers` when layers is None, every row when they have none); the other rows are
    unchanged and strength 0 changes nothing. strengths: {direction index or name: float}."""

    ws: np.ndarray                  # [N, num_ws, w_dim]
    rows: list[int] | None          # None: every row
    delta: np.ndarray               # [w_dim]
    single: bool

    @classmethod
    def check(cls, cfg: GeneratorConfig, ws: Any, directions: Any, strengths: Any,
              layers: int | str | Iterable[int] | None = None,
              sets: abc.Mapping[str, Directions] | None = None) -> Edit:
        """Order: ws, directions (a Directions, or the name of one of `sets`), strengths, layers."""
        ws, single = latents.check_ws(ws, cfg.num_ws, cfg.w_dim)
        if isinstance(directions, str):
            directions = pick_set(sets, directions, "directions")
        if not isinstance(directions, Directions):
            raise ValueError(f"directions: expected a Directions (sg.load_directions) or a set name, got "
                             f"{type(directions).__name__}")
        directions.check_for(cfg)
        delta = edit_delta(directions, check_strengths(directions, strengths))
        if layers is not None:
            rows = latents.check_layers(cfg.layer_indices(layers), cfg.num_ws)
        else:
            rows = None if directions.layers is None else list(directions.layers)
        return cls(ws, rows, delta, single)

    def finish(self) -> np.ndarray:
        """The edited ws, [N, num_ws, w_dim] (one [num_ws, w_dim] for one given)."""
        return _single(add_on_rows(self.ws, self.rows, self.delta), self.single)
