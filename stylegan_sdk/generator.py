"""`Generator`: the one user-facing object (map, synthesize, generate, mix) over any backend.

It checks arguments, does the latent math in NumPy (stylegan_sdk.latents) and converts images;
the backend only runs the two networks. The gRPC `Client` has the same methods and answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from . import images, latents
from .backends.base import Backend
from .config import GeneratorConfig, ModelInfo


class Generator:
    def __init__(
        self,
        backend: Backend,       # runs the networks
        batch_size: int = 16,   # images per backend call (bounds memory for long seed lists)
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        self.backend = backend
        self.batch_size = batch_size

    # -- description ----------------------------------------------------------
    @property
    def config(self) -> GeneratorConfig:
        return self.backend.config

    @property
    def info(self) -> ModelInfo:
        return ModelInfo.from_config(self.config, backend=self.backend.name, device=self.backend.device)

    @property
    def w_avg(self) -> np.ndarray:
        return self.backend.w_avg

    def __repr__(self) -> str:
        c = self.config
        return (f"Generator({c.arch}, {c.img_resolution}px x{c.img_channels}, z_dim={c.z_dim}, "
                f"w_dim={c.w_dim}, c_dim={c.c_dim}, num_ws={c.num_ws}, backend={self.backend.name}, "
                f"device={self.backend.device})")

    # -- the four calls -------------------------------------------------------
    def map(self, z: Any, c: Any = None, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] (one z [z_dim] -> [num_ws, w_dim]), truncated toward w_avg."""
        cfg = self.config
        z, single = latents.check_z(z, cfg.z_dim)
        c = latents.check_c(c, cfg.c_dim, z.shape[0])
        psi = latents.check_psi(psi)
        cutoff = latents.check_cutoff(cutoff, cfg.num_ws)
        step = self.batch_size
        w = np.concatenate([self.backend.map(z[i: i + step], None if c is None else c[i: i + step])
                            for i in range(0, z.shape[0], step)])
        ws = latents.truncate(latents.broadcast_ws(w, cfg.num_ws), self.w_avg, psi, cutoff)
        return ws[0] if single else ws

    def synthesize(
        self,
        ws: Any,
        noise_mode: str = "const",
        output: str = "float",
        noise_seed: int | None = None,
    ) -> Any:
        """ws [N, num_ws, w_dim] -> images. output "float": float32 [N, C, H, W] unclipped;
        "uint8": uint8 [N, H, W, C]; "pil": list of PIL images. One [num_ws, w_dim] -> one image."""
        cfg = self.config
        ws, single = latents.check_ws(ws, cfg.num_ws, cfg.w_dim)
        latents.check_noise_mode(noise_mode)
        images.check_output(output)
        noise = latents.draw_noise(cfg.noise_resolutions, ws.shape[0], noise_seed) if noise_mode == "random" else None
        chunks = []
        for i in range(0, ws.shape[0], self.batch_size):
            part = None if noise is None else [n[i: i + self.batch_size] for n in noise]
            chunks.append(self.backend.synthesize(ws[i: i + self.batch_size], noise_mode, part))
        out = images.convert(np.concatenate(chunks), output)
        return out[0] if single else out

    def generate(
        self,
        seeds: int | str | Iterable[int],
        psi: float = 1.0,
        cutoff: int | None = None,
        noise_mode: str = "const",
        c: Any = None,
        output: str = "pil",
        noise_seed: int | None = None,
    ) -> Any:
        """Images for seeds ('0-7,42', a list, or one int for a single image)."""
        single = isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool)
        latents.check_noise_mode(noise_mode)
        images.check_output(output)
        z = latents.seed_to_z(seeds, self.config.z_dim)
        ws = self.map(z, c=c, psi=psi, cutoff=cutoff)
        out = self.synthesize(ws, noise_mode=noise_mode, output=output, noise_seed=noise_seed)
        return out[0] if single else out

    def mix(
        self,
        w_a: Any,
        w_b: Any,
        layers: int | str | Iterable[int],
        noise_mode: str = "const",
        output: str = "pil",
        noise_seed: int | None = None,
    ) -> Any:
        """Images from w_a with the listed ws rows taken from w_b (style mixing)."""
        cfg = self.config
        a, _ = latents.check_ws(w_a, cfg.num_ws, cfg.w_dim, name="w_a")
        latents.check_ws(w_b, cfg.num_ws, cfg.w_dim, name="w_b")
        latents.check_layers(layers, cfg.num_ws)
        ws = latents.mix_ws(w_a, w_b, layers)
        return self.synthesize(ws, noise_mode=noise_mode, output=output, noise_seed=noise_seed)

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
    ) -> Iterator[Any]:
        """Frames along a path through K >= 2 keyframes (seeds, z [K, z_dim] or ws [K, num_ws, w_dim]),
        num_frames per segment, ends shared: lerp between mapped keyframes in W ("w"), or slerp in Z
        ("z", every frame mapped). Random noise is one draw shared by every frame (no flicker)."""
        cfg = self.config
        if space not in ("w", "z"):
            raise ValueError(f"space: must be 'w' or 'z', got {space!r}")
        latents.check_noise_mode(noise_mode)
        images.check_output(output)
        given = [name for name, v in (("seeds", seeds), ("z", z), ("ws", ws)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"keyframes: give exactly one of seeds, z or ws (got {given or 'none'})")
        z_keys = ws_keys = c_keys = None
        if ws is not None:
            if space == "z":
                raise ValueError("space: ws keyframes interpolate in W only; give seeds or z to slerp in Z")
            ws_keys, _ = latents.check_ws(ws, cfg.num_ws, cfg.w_dim)
        else:
            z_keys = latents.seed_to_z(seeds, cfg.z_dim) if seeds is not None else latents.check_z(z, cfg.z_dim)[0]
            c_keys = latents.check_c(c, cfg.c_dim, z_keys.shape[0])
            if space == "w":
                ws_keys = self.map(z_keys, c=c_keys, psi=psi, cutoff=cutoff)
        keys = ws_keys if ws_keys is not None else z_keys
        plan = latents.interpolation_plan(keys.shape[0], num_frames)
        noise = latents.draw_noise(cfg.noise_resolutions, 1, noise_seed) if noise_mode == "random" else None
        for first in range(0, len(plan), self.batch_size):
            part = plan[first: first + self.batch_size]
            if space == "w":
                frame_ws = np.stack([latents.lerp(ws_keys[s], ws_keys[s + 1], t) for s, t in part])
            else:
                zs = np.stack([latents.slerp(z_keys[s], z_keys[s + 1], t) for s, t in part])
                cs = None if c_keys is None else np.stack([latents.lerp(c_keys[s], c_keys[s + 1], t) for s, t in part])
                frame_ws = self.map(zs, c=cs, psi=psi, cutoff=cutoff)
            part_noise = None if noise is None else [np.repeat(n, len(part), axis=0) for n in noise]
            x = images.convert(self.backend.synthesize(frame_ws, noise_mode, part_noise), output)
            yield from x

    # -- lifetime -------------------------------------------------------------
    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
