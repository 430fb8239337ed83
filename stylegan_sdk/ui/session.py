"""What the page does, without Gradio: a `Session` over one model, either a `Generator` in this process or a
`Client` of a running `stylegan serve`. Its methods take the page's values and call the same methods as
everything else (map, synthesize, mix, edit, interpolate, project, sefa, ganspace): nothing is recomputed on
the side, and every argument is checked by the call it goes to (a ValueError naming it, shown on the page).

Every call returns what it drew with the time the model took (`Picture.ms`); the last one is kept for the
Model panel (`last_ms`).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import LAYER_GROUPS, GeneratorConfig, ModelInfo
from ..editing.directions import Directions
from ..editing.ganspace import ganspace
from ..editing.sefa import sefa
from ..generator import Generator
from ..images import animated_gif, display_factor, upscale
from ..latents import mix_ws, seed_to_z
from ..projection.options import Projection, projection_unavailable, read_target

MAX_DIRECTIONS = 10              # strength sliders on the Edit panel: a set's first (strongest) ten directions
GANSPACE_SAMPLES = 20_000        # z mapped for a GANSpace set computed on demand
MAX_FRAMES = 300                 # frames of one interpolation animation
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP")
UI_LOSSES = ("lpips", "mse")     # projection losses the page offers (lpips-vgg16 needs a weights file of the user's)


@dataclass(frozen=True)
class View:
    """How a picture is drawn, whatever the latents: the noise, and StyleGAN3's view (translate, rotate)."""

    noise_mode: str = "const"                   # "const" | "random" | "none"
    noise_seed: int | None = None               # "random": the noise's seed
    translate: tuple[float, float] | None = None  # StyleGAN3 only (None elsewhere)
    rotate: float | None = None                 # StyleGAN3 only, degrees


@dataclass(frozen=True)
class Latent:
    """Where a ws comes from: a seed mapped with truncation (and a class for conditional models)."""

    seed: int
    psi: float = 0.7
    cutoff: int | None = None                   # ws rows < cutoff truncated; None: every row
    c: int | str | None = None                  # class index or name (conditional models)


@dataclass(frozen=True)
class Picture:
    image: np.ndarray                           # uint8 [H, W, C]
    ws: np.ndarray                              # [num_ws, w_dim] float32: what the image was synthesised from
    ms: float                                   # wall time of the model calls, milliseconds


@dataclass(frozen=True)
class ProjectionEvent:
    """One update of a running projection: progress, a preview of the current ws, or the result."""

    step: int
    steps: int
    loss: float | None = None                   # the loss's distance at `step`
    preview: np.ndarray | None = None           # uint8 [H, W, C]
    result: Projection | None = None            # the last event only


@dataclass
class Session:
    source: Any                                 # a Generator, or a Client (same methods; project differs)
    where: str                                  # the model file / folder, or the server's address and model
    max_upload_bytes: int = 16 * 2**20          # an uploaded target file
    max_upload_pixels: int = 4096 * 4096        # an uploaded target's pixels, as its header says
    max_projection_steps: int = 2000
    sets: dict[str, Directions] = field(default_factory=dict)   # the model's direction sets + computed ones
    last_ms: float | None = None

    def __post_init__(self) -> None:
        self.info: ModelInfo = self.source.info
        self.config: GeneratorConfig = self.source.config
        self.sets = {**self.source.directions, **self.sets}
        # In process, one model call at a time (a backend is not thread-safe; a projection holds it for its whole
        # run); a server takes concurrent calls itself.
        self._lock: contextlib.AbstractContextManager = (threading.Lock() if self.in_process
                                                         else contextlib.nullcontext())

    # -- what the page shows about the model ------------------------------------
    @property
    def in_process(self) -> bool:
        return isinstance(self.source, Generator)

    @property
    def is_stylegan3(self) -> bool:
        return self.info.arch == "stylegan3"

    def layer_groups(self) -> dict[str, list[int]]:
        """Style groups with rows in this model -> their ws rows (presets of the mixing panel)."""
        groups = {g: self.info.layers_in_group(g) for g in LAYER_GROUPS}
        return {g: rows for g, rows in groups.items() if rows}

    def layer_label(self, row: int) -> str:
        return f"{row}: {self.info.layers[row]['resolution']} px"

    def group_label(self, group: str) -> str:
        res = sorted({self.info.layers[r]["resolution"] for r in self.layer_groups()[group]})
        return f"{group} ({res[0]}-{res[-1]} px)" if len(res) > 1 else f"{group} ({res[0]} px)"

    def describe(self) -> list[tuple[str, str]]:
        i = self.info
        rows = [("model", self.where), ("family", i.arch), ("resolution", f"{i.img_resolution} px"),
                ("channels", str(i.img_channels)), ("z_dim / w_dim / num_ws", f"{i.z_dim} / {i.w_dim} / {i.num_ws}"),
                ("classes", ", ".join(i.class_names) if i.class_names else str(i.c_dim) if i.c_dim else "none"),
                ("backend", i.backend + ("" if self.in_process else " (on the server)")),
                ("device", i.device or "-"), ("precision", i.precision or "-"),
                ("direction sets", ", ".join(f"{k} ({len(d.names)})" for k, d in self.sets.items()) or "none"),
                ("last call", "-" if self.last_ms is None else f"{self.last_ms:.1f} ms")]
        return rows

    # -- the calls ---------------------------------------------------------------
    def _timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        with self._lock:
            t0 = time.perf_counter()
            out = fn()
            ms = (time.perf_counter() - t0) * 1000
        self.last_ms = ms
        return out, ms

    def _ws(self, latent: Latent) -> np.ndarray:
        """A seed -> ws [num_ws, w_dim] through the model's mapping (map(z, c, psi, cutoff))."""
        seed = latent.seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed: expected one int, got {seed!r}")
        z = seed_to_z(int(seed), self.info.z_dim)[0]
        return self.source.map(z, c=latent.c, psi=latent.psi, cutoff=latent.cutoff)

    def _draw(self, ws: np.ndarray, view: View) -> np.ndarray:
        return self.source.synthesize(ws, noise_mode=view.noise_mode, output="uint8", noise_seed=view.noise_seed,
                                      translate=view.translate, rotate=view.rotate)

    def generate(self, latent: Latent, view: View = View()) -> Picture:
        """The picture of one seed: generate(seed, psi, cutoff, c, ...) as map + synthesize, keeping the ws."""
        def run() -> tuple[np.ndarray, np.ndarray]:
            ws = self._ws(latent)
            return self._draw(ws, view), ws

        (image, ws), ms = self._timed(run)
        return Picture(image, ws, ms)

    def mix(self, latent: Latent, seed_b: int, layers: Sequence[int], view: View = View()) -> Picture:
        """Seed `latent.seed` with the ws rows `layers` taken from seed_b (the same truncation and class):
        mix(w_a, w_b, layers). No rows: seed a's own picture."""
        def run() -> tuple[np.ndarray, np.ndarray]:
            w_a = self._ws(latent)
            if not layers:
                return self._draw(w_a, view), w_a
            w_b = self._ws(Latent(seed_b, latent.psi, latent.cutoff, latent.c))
            image = self.source.mix(w_a, w_b, list(layers), noise_mode=view.noise_mode, output="uint8",
                                    noise_seed=view.noise_seed, translate=view.translate, rotate=view.rotate)
            return image, mix_ws(w_a, w_b, list(layers))

        (image, ws), ms = self._timed(run)
        return Picture(image, ws, ms)

    def edit(self, base: Latent | np.ndarray, set_name: str, strengths: dict[int, float],
             layers: Sequence[int] | None = None, view: View = View()) -> Picture:
        """base (a seed, or ws [num_ws, w_dim] such as a projection's) moved along the set's directions:
        edit(ws, directions, strengths, layers), then synthesize."""
        if set_name not in self.sets:
            raise ValueError(f"direction_set: {set_name!r} is not one of this model's sets "
                             f"({', '.join(self.sets) or 'none: compute one first'})")
        directions = self.sets[set_name]

        def run() -> tuple[np.ndarray, np.ndarray]:
            ws = self._ws(base) if isinstance(base, Latent) else base
            edited = self.source.edit(ws, directions, strengths, layers)
            return self._draw(edited, view), edited

        (image, ws), ms = self._timed(run)
        return Picture(image, ws, ms)

    def interpolate(self, seeds: str | Sequence[int], num_frames: int, space: str = "w", psi: float = 0.7,
                    cutoff: int | None = None, c: int | str | None = None, view: View = View()
                    ) -> tuple[np.ndarray, float]:
        """Frames uint8 [F, H, W, C] through the keyframe seeds: interpolate(seeds, num_frames, space, ...)."""
        if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) \
                or not 2 <= num_frames <= MAX_FRAMES:
            raise ValueError(f"num_frames: must be an int in 2..{MAX_FRAMES}, got {num_frames!r}")

        def run() -> np.ndarray:
            return np.stack(list(self.source.interpolate(
                seeds, num_frames=int(num_frames), space=space, psi=psi, cutoff=cutoff, c=c,
                noise_mode=view.noise_mode, output="uint8", noise_seed=view.noise_seed, translate=view.translate,
                rotate=view.rotate)))

        return self._timed(run)

    def animation(self, frames: np.ndarray, fps: float) -> bytes:
        """Frames -> a looping GIF, upscaled (nearest neighbour) to at least 256 px for people."""
        if not 1 <= fps <= 60:
            raise ValueError(f"fps: must be in 1..60, got {fps!r}")
        factor = display_factor(self.info.img_resolution, 256)
        return animated_gif([upscale(f, factor) for f in frames], ms_per_frame=round(1000 / fps))

    # -- editing directions computed on demand -----------------------------------
    def compute_directions(self, method: str, k: int = MAX_DIRECTIONS) -> str:
        """A SeFa or GANSpace set of this model, added to `sets` as "<method> (computed)"; returns the name.
        SeFa reads the style affines (a model loaded here); GANSpace maps sampled z (here or on the server)."""
        if method == "sefa":
            if not self.in_process:
                raise ValueError("method: SeFa reads the model's weights, which a server does not send; compute it "
                                 "where the model file is (stylegan directions sefa) and serve it with the model")
            directions, _ = self._timed(lambda: sefa(self.source, k=min(k, self.info.w_dim)))
        elif method == "ganspace":
            directions, _ = self._timed(lambda: ganspace(self.source, k=min(k, self.info.w_dim),
                                                         samples=GANSPACE_SAMPLES))
        else:
            raise ValueError(f"method: must be 'sefa' or 'ganspace', got {method!r}")
        name = f"{method} (computed)"
        self.sets[name] = directions
        return name

    # -- projection ----------------------------------------------------------------
    def projection_unavailable(self) -> str | None:
        """Why this model cannot be projected into (the backend does not differentiate, ...), or None."""
        return projection_unavailable(self.info)

    def read_upload(self, data: bytes, name: str = "image") -> Any:
        """An uploaded target file's bytes -> a PIL image: its size checked from the header before it is
        decoded (a decompression bomb is refused), PNG / JPEG / WebP only. ValueError naming `name`."""
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"{name}: expected the bytes of an image file, got {type(data).__name__}")
        return read_target(bytes(data), name, self.max_upload_pixels, self.max_upload_bytes, formats=UPLOAD_FORMATS)

    def project(self, target: Any, steps: int, loss: str = "lpips", space: str = "w", seed: int = 0,
                preview_every: int = 10) -> Iterator[ProjectionEvent]:
        """Project one target image: events as the run goes (progress with previews every preview_every steps),
        the last one carrying the result. In process: sg.project on the torch backend; with a server: its
        Project call. Leaving the iteration early stops the run between two steps."""
        reason = self.projection_unavailable()
        if reason is not None:
            raise ValueError(f"project: {reason}")
        if loss not in UI_LOSSES:
            raise ValueError(f"loss: must be one of {UI_LOSSES}, got {loss!r}")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) \
                or not 1 <= steps <= self.max_projection_steps:
            raise ValueError(f"steps: must be an int in 1..{self.max_projection_steps}, got {steps!r}")
        events: queue.Queue[ProjectionEvent | BaseException] = queue.Queue()
        stop = threading.Event()

        def progress(step: int, total: int, losses: np.ndarray) -> None:
            if stop.is_set():
                raise _Stopped
            events.put(ProjectionEvent(step, total, float(losses[0])))

        def preview(step: int, images: np.ndarray) -> None:
            events.put(ProjectionEvent(step, int(steps), preview=images[0]))

        def run() -> None:
            try:
                with self._lock:
                    t0 = time.perf_counter()
                    result = self._project(target, int(steps), loss, space, seed, progress, preview, preview_every,
                                           stop)
                    self.last_ms = (time.perf_counter() - t0) * 1000
                events.put(ProjectionEvent(result.steps, int(steps), result=result))
            except BaseException as e:  # handed to the iterating thread, which raises it
                events.put(e)

        worker = threading.Thread(target=run, name="stylegan-ui-projection", daemon=True)
        worker.start()
        try:
            while True:
                item = events.get()
                if isinstance(item, _Stopped):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.result is not None:
                    return
        finally:
            stop.set()
            worker.join()

    def _project(self, target: Any, steps: int, loss: str, space: str, seed: int,
                 progress: Callable[[int, int, np.ndarray], None], preview: Callable[[int, np.ndarray], None],
                 every: int, stop: threading.Event) -> Projection:
        if not self.in_process:
            return self.source.project(target, space=space, steps=steps, loss=loss, seed=seed, progress=progress,
                                       progress_every=every, preview=preview)
        from ..projection.project import project  # torch: only a model the torch backend runs gets here

        def on_ws(step: int, ws: np.ndarray) -> None:
            preview(step, self.source.synthesize(ws, output="uint8"))

        return project(self.source, target, space=space, steps=steps, loss=loss, seed=seed, progress=progress,
                       should_stop=stop.is_set, on_ws=on_ws, ws_every=every)


class _Stopped(Exception):
    """Raised inside a served projection's callback to cancel it when the page stops listening."""
