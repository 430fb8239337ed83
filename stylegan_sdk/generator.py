"""`Generator`: the one user-facing object (map, synthesize, generate, mix) over any backend.

Each call's arguments, checks and latent math are defined once in `stylegan_sdk.calls`; the Generator
runs the two networks of its backend in chunks of `batch_size` rows. The gRPC `Client` has the same methods and answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from . import calls
from .backends.base import Backend
from .config import GeneratorConfig, ModelInfo
from .editing.directions import Directions


class Generator:
    def __init__(
        self,
        backend: Backend,       # runs the networks
        batch_size: int = 16,   # images per backend call (bounds memory for long seed lists)
        directions: Mapping[str, Directions] | None = None,  # direction sets by name, for edit / edits=
        source: str | None = None,  # the model file / exported folder / address it was loaded from (sg.load)
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        self.backend = backend
        self.batch_size = batch_size
        self._directions = check_direction_sets(backend.config, directions or {})
        self.source = source

    @property
    def _rows_per_call(self) -> int:
        """batch_size, capped by the most rows the backend takes in one call (Backend.batch_range)."""
        return self.backend.rows_per_call(self.batch_size)

    # -- description ----------------------------------------------------------
    @property
    def config(self) -> GeneratorConfig:
        return self.backend.config

    @property
    def info(self) -> ModelInfo:
        return ModelInfo.from_config(self.config, backend=self.backend.name, device=self.backend.device,
                                     precision=self.backend.precision)

    @property
    def w_avg(self) -> np.ndarray:
        return self.backend.w_avg

    @property
    def directions(self) -> dict[str, Directions]:
        """The model's direction sets by name (an exported folder's, or given to sg.load / Generator)."""
        return dict(self._directions)

    def __repr__(self) -> str:
        c = self.config
        return (f"Generator({c.arch}, {c.img_resolution}px x{c.img_channels}, z_dim={c.z_dim}, "
                f"w_dim={c.w_dim}, c_dim={c.c_dim}, num_ws={c.num_ws}, backend={self.backend.name}, "
                f"device={self.backend.device})")

    # -- the calls (each defined once in stylegan_sdk.calls) -------------------
    def map(self, z: Any, c: Any = None, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] (one z [z_dim] -> [num_ws, w_dim]), truncated toward w_avg."""
        call = calls.Map.check(self.config, z, c, psi, cutoff)
        return call.finish(self._ws(call.z, call.mapping))

    def synthesize(
        self,
        ws: Any,
        noise_mode: str = "const",
        output: str = "float",
        noise_seed: int | None = None,
        translate: Any = None,
        rotate: Any = None,
        transform: Any = None,
        edits: Any = None,
    ) -> Any:
        """ws [N, num_ws, w_dim] -> images. output "float": float32 [N, C, H, W] unclipped;
        "uint8": uint8 [N, H, W, C]; "pil": list of PIL images. One [num_ws, w_dim] -> one image.
        StyleGAN3: translate=(tx, ty) and rotate (degrees) move the view, or transform=<3x3> sets the
        synthesis input's transform itself. edits: {direction set name: {direction index or name:
        strength}} with the model's `directions`."""
        call = calls.Synthesize.check(self.config, ws, noise_mode, output, noise_seed, translate, rotate, transform,
                                      edits, sets=self._directions)
        return call.finish(self._images(call.edits.apply(call.ws), call.render, call.transform.rows(call.rows)))

    def generate(
        self,
        seeds: int | str | Iterable[int],
        psi: float = 1.0,
        cutoff: int | None = None,
        noise_mode: str = "const",
        c: Any = None,
        output: str = "pil",
        noise_seed: int | None = None,
        translate: Any = None,
        rotate: Any = None,
        transform: Any = None,
        edits: Any = None,
    ) -> Any:
        """Images for seeds ('0-7,42', a list, or one int for a single image). edits: {direction set name:
        {direction index or name: strength}} with the model's `directions`, added after truncation."""
        call = calls.Generate.check(self.config, seeds, psi, cutoff, noise_mode, c, output, noise_seed,
                                    translate=translate, rotate=rotate, transform=transform, edits=edits,
                                    sets=self._directions)
        ws = call.edits.apply(self._ws(call.z, call.mapping))
        return call.finish(self._images(ws, call.render, call.transform.rows(call.rows)))

    def mix(
        self,
        w_a: Any,
        w_b: Any,
        layers: int | str | Iterable[int],
        noise_mode: str = "const",
        output: str = "pil",
        noise_seed: int | None = None,
        translate: Any = None,
        rotate: Any = None,
        transform: Any = None,
        edits: Any = None,
    ) -> Any:
        """Images from w_a with the listed ws rows taken from w_b (style mixing), then the edits."""
        call = calls.Mix.check(self.config, w_a, w_b, layers, noise_mode, output, noise_seed, translate, rotate,
                               transform, edits, sets=self._directions)
        return call.finish(self._images(call.edits.apply(call.ws), call.render, call.transform.rows(call.rows)))

    def edit(self, ws: Any, directions: Directions | str, strengths: Any,
             layers: int | str | Iterable[int] | None = None) -> np.ndarray:
        """ws + sum(strength * vector) on the chosen ws rows -> ws (no network runs). directions: a
        Directions or the name of one of the model's sets; strengths: {direction index or name: strength};
        layers: ws rows (or "coarse" / "middle" / "fine"), None for the directions' own rows."""
        return calls.Edit.check(self.config, ws, directions, strengths, layers, sets=self._directions).finish()

    def interpolate(
        self,
        seeds: int | str | Iterable[int] | None = None,
        *,
        z: Any = None,
        ws: Any = None,
        num_frames: int = 30,
        space: str = "w",
        psi: float = 1.0,
        cutoff: int | None = None,
        noise_mode: str = "const",
        c: Any = None,
        output: str = "pil",
        noise_seed: int | None = None,
        translate: Any = None,
        rotate: Any = None,
        transform: Any = None,
    ) -> Iterator[Any]:
        """Frames along a path through K >= 2 keyframes (seeds, z [K, z_dim] or ws [K, num_ws, w_dim]),
        num_frames in all, spread evenly from the first keyframe to the last: lerp between mapped keyframes in
        W ("w"), or slerp in Z
        ("z", every frame mapped). Random noise is one draw shared by every frame (no flicker).
        StyleGAN3: translate [2] or [K, 2] and rotate (degrees) [] or [K] (one per keyframe: a camera
        path, lerped like the latents), or one transform [3, 3]. Arguments are checked at once; frames
        are computed as they are iterated."""
        call = calls.Interpolate.check(self.config, seeds, z=z, ws=ws, num_frames=num_frames, space=space, psi=psi,
                                       cutoff=cutoff, noise_mode=noise_mode, c=c, output=output,
                                       noise_seed=noise_seed, translate=translate, rotate=rotate, transform=transform)
        return self._frames(call)

    def _frames(self, call: calls.Interpolate) -> Iterator[Any]:
        ws_keys = call.ws
        if ws_keys is None and call.space == "w":
            ws_keys = self._ws(call.key_z(self.config), call.mapping)
        z_keys = call.key_z(self.config) if call.space == "z" else None
        noise = call.noise(self.config)
        for _, part in call.batches(self._rows_per_call):
            if call.space == "w":
                frame_ws = call.between(ws_keys, part)
            else:
                frame_ws = self._ws(call.between(z_keys, part, spherical=True), call.frame_mapping(part))
            x = self.backend.synthesize(frame_ws, call.render.noise_mode, call.frames_noise(noise, len(part)),
                                        call.transform.along(part))
            yield from call.render.convert(x)

    # -- the two networks, in chunks of batch_size rows (at most batch_range's) ---
    def _ws(self, z: np.ndarray, mapping: calls.Mapping) -> np.ndarray:
        """z [N, z_dim] -> truncated ws [N, num_ws, w_dim]."""
        step = self._rows_per_call
        w = np.concatenate([self.backend.map(z[i: i + step], mapping.rows(slice(i, i + step)).c)
                            for i in range(0, z.shape[0], step)])
        return mapping.to_ws(w, self.config, self.w_avg)

    def _images(self, ws: np.ndarray, render: calls.Render, transform: np.ndarray | None) -> np.ndarray:
        """ws [N, num_ws, w_dim] (+ per-row transforms [N, 3, 3] or None) -> float images [N, C, H, W];
        random noise is one draw for all N rows."""
        noise = render.noise(self.config, ws.shape[0])
        step = self._rows_per_call
        return np.concatenate([
            self.backend.synthesize(ws[i: i + step], render.noise_mode,
                                    None if noise is None else [n[i: i + step] for n in noise],
                                    None if transform is None else transform[i: i + step])
            for i in range(0, ws.shape[0], step)])

    # -- lifetime -------------------------------------------------------------
    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_direction_sets(cfg: GeneratorConfig, sets: Mapping[str, Directions]) -> dict[str, Directions]:
    """Direction sets by name, each a Directions that fits the model; ValueError naming `directions`."""
    out = {}
    for name, d in sets.items():
        if not isinstance(name, str) or not name or len(name) > 200:
            raise ValueError(f"directions: set names must be non-empty strings, got {name!r}")
        if not isinstance(d, Directions):
            raise ValueError(f"directions: set {name!r} is a {type(d).__name__}, not a Directions "
                             f"(read files with sg.load_directions)")
        d.check_for(cfg, name=f"directions[{name!r}]")
        out[name] = d
    return out
