"""Request planning, shared by `Client` and `AsyncClient`, with no I/O: a call's arguments are checked by
its one definition (stylegan_sdk.calls, the very checks of the in-process Generator), split into requests
that fit the server's limits (encoded by the codec, stylegan_sdk._proto.codec, which the server decodes
them with), and the responses are turned back into the Generator's return value.

A projection (`plan_project`) is checked by the projection call's torch-free definition
(stylegan_sdk.projection.options, which `sg.project` checks with), its targets prepared here as in process
(centre crop, LANCZOS resize to the model's resolution) and sent as PNG files; its events become progress
callbacks and, last, the `Projection` the in-process call returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from .. import calls, images
from .._proto import codec, pb
from ..config import GeneratorConfig, ModelInfo
from ..editing.directions import Directions
from ..errors import ClientError
from ..projection.options import (
    ProjectCall,
    Projection,
    ProjectionUnavailable,
    prepare_targets,
    projection_unavailable,
    read_target,
)

ENVELOPE_BYTES = 64 * 1024   # room for everything in a message but the rows
MAX_LOCAL_TARGET_PIXELS = 8192 * 8192   # target files read here: larger headers are refused before decoding


class ProjectionUnavailableError(ClientError, ProjectionUnavailable):
    """The server cannot project into its model (FAILED_PRECONDITION): the in-process ProjectionUnavailable, with
    the server's reason."""


@dataclass(frozen=True)
class RemoteModel:
    """What the client needs to know about a model: from GetModelInfo, fetched once."""

    info: ModelInfo
    config: GeneratorConfig
    w_avg: np.ndarray
    max_seeds: int
    max_message_bytes: int
    directions: dict[str, Directions] = field(default_factory=dict)   # the model's direction sets (edits=)
    max_projection_steps: int = 0       # the server's limit (0: not told)

    @classmethod
    def from_pb(cls, msg: pb.ModelInfo, client_limit: int) -> RemoteModel:
        return cls(info=codec.model_info_from_pb(msg), config=GeneratorConfig.from_json(msg.config_json),
                   w_avg=codec.from_tensor(msg.w_avg, "w_avg"), max_seeds=msg.limits.max_seeds or 256,
                   max_message_bytes=min(msg.limits.max_message_bytes or client_limit, client_limit),
                   directions=codec.direction_sets_from_pb(msg),
                   max_projection_steps=msg.limits.max_projection_steps)

    def rows_per_call(self, bytes_per_row: int) -> int:
        return max(1, min(self.max_seeds, (self.max_message_bytes - ENVELOPE_BYTES) // max(1, bytes_per_row)))

    def image_row_bytes(self, fmt: int) -> int:
        return codec.image_bytes(fmt, self.config.img_channels, self.config.img_resolution)

    @property
    def ws_row_bytes(self) -> int:
        return self.config.num_ws * self.config.w_dim * 4


@dataclass(frozen=True)
class Plan:
    method: str                               # RPC name on the stub
    requests: list[Any]
    finish: Callable[[list[Any]], Any]        # responses -> the method's return value


# ----------------------------------------------------------------------------
# Pieces of requests


def _parts(n: int, rows: int, splittable: bool) -> list[slice]:
    """Slices of at most `rows` rows (one slice when the request cannot be split)."""
    if splittable and n > rows:
        return [slice(i, min(n, i + rows)) for i in range(0, n, rows)]
    return [slice(0, n)]


def _splittable(render: calls.Render) -> bool:
    """Random noise with a noise_seed is one draw over the whole request: such a request is not split."""
    return render.noise_mode != "random" or render.noise_seed is None


def _format(render: calls.Render) -> int:
    """Images travel raw and are converted here exactly as in-process."""
    return pb.RAW_FLOAT32 if render.output == "float" else pb.RAW_UINT8


def _render_args(render: calls.Render, transform: calls.Transform) -> codec.RenderArgs:
    return codec.RenderArgs(noise_mode=render.noise_mode, noise_seed=render.noise_seed, translate=transform.translate,
                            rotate=transform.rotate, transform=transform.matrix, fmt=_format(render))


def _map_args(mapping: calls.Mapping, part: slice = slice(None)) -> codec.MapOptionsArgs:
    """The checked mapping options of rows `part` (c as the vectors the check made)."""
    return codec.MapOptionsArgs(c=mapping.rows(part).c, psi=mapping.psi, cutoff=mapping.cutoff)


def _output(pixels: np.ndarray, output: str) -> Any:
    """Raw float32 [N, C, H, W] or uint8 [N, H, W, C] -> the Generator's output type."""
    return images.uint8_to_pil(pixels) if output == "pil" else pixels


def _finish_images(render: calls.Render, single: bool) -> Callable[[list[Any]], Any]:
    def finish(responses: list[Any]) -> Any:
        parts = [codec.images_from_pb(r.images) for r in responses]
        out = _output(parts[0] if len(parts) == 1 else np.concatenate(parts), render.output)
        return out[0] if single else out

    return finish


# ----------------------------------------------------------------------------
# The calls


def plan_generate(m: RemoteModel, name: str, seeds: Any, psi: float, cutoff: int | None, noise_mode: str, c: Any,
                  output: str, noise_seed: int | None, translate: Any, rotate: Any, transform: Any,
                  edits: Any = None) -> Plan:
    call = calls.Generate.check(m.config, seeds, psi, cutoff, noise_mode, c, output, noise_seed,
                                translate=translate, rotate=rotate, transform=transform, edits=edits,
                                sets=m.directions)
    rows = m.rows_per_call(m.image_row_bytes(_format(call.render)))
    render = _render_args(call.render, call.transform)
    reqs = [codec.GenerateArgs(seeds=call.seeds[part], mapping=_map_args(call.mapping, part), render=render,
                               model=name, edits=edits).to_pb()
            for part in _parts(call.rows, rows, _splittable(call.render))]
    return Plan("Generate", reqs, _finish_images(call.render, call.single))


def plan_map(m: RemoteModel, name: str, z: Any, c: Any, psi: float, cutoff: int | None) -> Plan:
    call = calls.Map.check(m.config, z, c, psi, cutoff)
    rows = m.rows_per_call(m.ws_row_bytes)
    reqs = [codec.MapArgs(z=call.z[part], mapping=_map_args(call.mapping, part), model=name).to_pb()
            for part in _parts(call.rows, rows, splittable=True)]

    def finish(responses: list[Any]) -> np.ndarray:
        return call.finish(np.concatenate([codec.from_tensor(r.ws, "ws") for r in responses]))

    return Plan("Map", reqs, finish)


def plan_synthesize(m: RemoteModel, name: str, ws: Any, noise_mode: str, output: str, noise_seed: int | None,
                    translate: Any, rotate: Any, transform: Any, edits: Any = None) -> Plan:
    call = calls.Synthesize.check(m.config, ws, noise_mode, output, noise_seed, translate, rotate, transform, edits,
                                  sets=m.directions)
    rows = m.rows_per_call(max(m.image_row_bytes(_format(call.render)), m.ws_row_bytes))
    render = _render_args(call.render, call.transform)
    reqs = [codec.SynthesizeArgs(ws=call.ws[part], render=render, model=name, edits=edits).to_pb()
            for part in _parts(call.rows, rows, _splittable(call.render))]
    return Plan("Synthesize", reqs, _finish_images(call.render, call.single))


def plan_mix(m: RemoteModel, name: str, w_a: Any, w_b: Any, layers: int | str | Iterable[int], noise_mode: str,
             output: str, noise_seed: int | None, translate: Any, rotate: Any, transform: Any,
             edits: Any = None) -> Plan:
    call = calls.Mix.check(m.config, w_a, w_b, layers, noise_mode, output, noise_seed, translate, rotate, transform,
                           edits, sets=m.directions)
    rows = m.rows_per_call(max(m.image_row_bytes(_format(call.render)), 2 * m.ws_row_bytes))
    render = _render_args(call.render, call.transform)
    reqs = [codec.MixArgs(w_a=call.w_a[part], w_b=call.w_b[part], layers=call.layers, render=render,
                          model=name, edits=edits).to_pb()
            for part in _parts(call.rows, rows, _splittable(call.render))]
    return Plan("Mix", reqs, _finish_images(call.render, call.single))


def edit(m: RemoteModel, ws: Any, directions: Any, strengths: Any, layers: Any) -> np.ndarray:
    """Generator.edit, computed here (no request): the same call, on the model's config and direction sets."""
    return calls.Edit.check(m.config, ws, directions, strengths, layers, sets=m.directions).finish()


def plan_interpolate(m: RemoteModel, name: str, seeds: Any, z: Any, ws: Any, num_frames: int, space: str,
                     psi: float, cutoff: int | None, noise_mode: str, c: Any, output: str, noise_seed: int | None,
                     translate: Any, rotate: Any, transform: Any
                     ) -> tuple[pb.InterpolateRequest, Callable[[pb.Frame], Any]]:
    """One streaming request, and how each Frame becomes one image."""
    call = calls.Interpolate.check(m.config, seeds, z=z, ws=ws, num_frames=num_frames, space=space, psi=psi,
                                   cutoff=cutoff, noise_mode=noise_mode, c=c, output=output, noise_seed=noise_seed,
                                   translate=translate, rotate=rotate, transform=transform)
    req = codec.InterpolateArgs(seeds=call.seeds, z=call.z, ws=call.ws, num_frames=call.num_frames, space=call.space,
                                mapping=codec.MapOptionsArgs() if call.mapping is None else _map_args(call.mapping),
                                render=_render_args(call.render, call.transform), model=name).to_pb()

    def frame(msg: pb.Frame) -> Any:
        return _output(codec.images_from_pb(msg.image), call.render.output)[0]

    return req, frame


# ----------------------------------------------------------------------------
# Projection


def _target(x: Any, name: str) -> Any:
    """A path or a file's bytes -> the decoded image (PNG / JPEG, its size checked from the header first); anything
    else as it is (project() takes PIL images and uint8 arrays)."""
    if isinstance(x, (str, os.PathLike)):
        if not os.path.isfile(x):
            raise FileNotFoundError(f"{name}: no such image file {os.fspath(x)!r}")
        with open(x, "rb") as f:
            x = f.read()
    if isinstance(x, (bytes, bytearray, memoryview)):
        return read_target(bytes(x), name, MAX_LOCAL_TARGET_PIXELS)
    return x


def plan_project(m: RemoteModel, name: str, targets: Any, space: Any, steps: Any, loss: Any, init: Any,
                 optimize_noise: Any, seed: Any, progress: Any, progress_every: Any, preview: Any, transform: Any
                 ) -> pb.ProjectRequest:
    """One streaming request: the model checked (ProjectionUnavailable, as in process), the targets prepared as
    project() prepares them and sent as PNG files of the model's size (the server's preparation then leaves them
    as they are), the other arguments checked by the projection's definition."""
    reason = projection_unavailable(m.info)
    if reason is not None:
        raise ProjectionUnavailable(reason)
    for what, fn in (("progress", progress), ("preview", preview)):
        if fn is not None and not callable(fn):
            raise ValueError(f"{what}: expected a callable or None, got {type(fn).__name__}")
    if isinstance(progress_every, bool) or not isinstance(progress_every, (int, np.integer)) or progress_every < 1:
        raise ValueError(f"progress_every: must be an int >= 1, got {progress_every!r}")
    cfg = m.config
    if isinstance(targets, (list, tuple)):
        targets = [_target(x, f"images[{i}]" if len(targets) > 1 else "images") for i, x in enumerate(targets)]
    else:
        targets = _target(targets, "images")
    prepared = prepare_targets(targets, cfg.img_resolution, cfg.img_channels)
    call = ProjectCall.check(cfg, len(prepared), space, steps, loss, init, optimize_noise, seed, transform,
                             max_steps=m.max_projection_steps or None)
    watched = progress is not None or preview is not None
    return codec.ProjectArgs(targets=[images.encode(t, "png") for t in prepared], space=call.space, steps=call.steps,
                             loss=call.loss, seed=call.seed, optimize_noise=call.optimize_noise, init=call.init,
                             transform=call.transform.matrix, progress_every=int(progress_every) if watched else 0,
                             preview=preview is not None, model=name).to_pb()


def project_event(msg: pb.ProjectEvent, progress: Callable | None, preview: Callable | None) -> Projection | None:
    """One event: progress calls progress(step, steps, losses [N]) and preview(step, uint8 [N, H, W, C]); the result
    -> the Projection."""
    event = codec.project_event_from_pb(msg)
    if isinstance(event, Projection):
        return event
    if progress is not None:
        progress(event.step, event.steps, event.losses)
    if preview is not None and event.preview is not None:
        preview(event.step, event.preview)
    return None


def projection_error(err: ClientError) -> ClientError:
    """FAILED_PRECONDITION (the server cannot project into its model) -> ProjectionUnavailableError; others as
    they are."""
    if err.code == grpc.StatusCode.FAILED_PRECONDITION:
        return ProjectionUnavailableError(err.details, err.code, err.details)
    return err
