"""A Triton Inference Server model repository from an exported folder (stylegan export triton). No torch needed
for an exported folder; a model file is exported first (torch + onnx).

    REPO/NAME_mapping/config.pbtxt        z [-1, z_dim] (+ c) -> w [-1, w_dim]
    REPO/NAME_mapping/1/model.onnx        (model.plan with engine "tensorrt")
    REPO/NAME_synthesis/config.pbtxt      ws, noise_const_gain, noise_k (StyleGAN3: ws, transform) -> img
    REPO/NAME_synthesis/1/model.onnx
    REPO/NAME.model.json                  the exported folder's model.json, for people and tools

Each config.pbtxt names the platform ("onnxruntime_onnx" or "tensorrt_plan"), `max_batch_size`,
`dynamic_batching`, an `instance_group`, and the inputs / outputs with their dims without the batch
axis (every input of a format "2" export has one, as Triton requires of a batched model). Both configs
carry the parameter `stylegan_sdk_model`: the generator's config and w_avg as JSON, which is how the
`triton` backend (`sg.load("triton://host:8001/NAME")`) learns the model over the network; Triton
scans only the repository's sub-folders, so NAME.model.json beside them is not taken for a model.

Direction sets the exported folder carries (stylegan export onnx --directions) travel in the synthesis
model's config.pbtxt as the parameter `stylegan_sdk_directions` (each set's file, base64 in JSON): the
`triton` backend reads them over the network like the config, so `sg.load("triton://.../NAME").directions`
and `edits=` work as on the folder, and so does `stylegan serve` in front of it. (Triton scans every
sub-folder of a repository as a model, so the sets cannot be files of their own there; the style affines
are not copied: run SeFa on the exported folder.)

Truncation, mixing, seeds, edits and image conversion stay in the SDK: Triton runs only the two graphs.
The models appear whole or not at all (built beside REPO, then renamed into it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..config import GeneratorConfig
from ..formats.exported import BATCH, MANIFEST, ExportedModel, graph_io, is_exported_folder, read_exported
from ..formats.fileio import atomic_write_bytes, default_dir_mode, move_into_place
from ..formats.triton import (
    DIRECTIONS_PARAMETER,
    PARAMETER,
    check_name,
    directions_parameter,
    model_names,
    model_parameter,
)
from ..loading import DIRECTIONS_KEY, exported_directions, resolve_model

ENGINES = ("onnx", "tensorrt")
PLATFORMS = {"onnx": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}
MODEL_FILES = {"onnx": "model.onnx", "tensorrt": "model.plan"}   # Triton's default file names
INSTANCE_KINDS = {"auto": "KIND_AUTO", "cpu": "KIND_CPU", "gpu": "KIND_GPU"}
VERSION = "1"                               # the one model version written
MAX_BATCH = 4096                            # the exported graphs' batch axis goes up to this
MAX_INSTANCES = 256


def check_repository_args(name: str, max_batch: int, instances: int, engine: str, device: str,
                          max_queue_delay_us: int) -> None:
    """The arguments of `write_repository`, checked before anything is read or written; ValueError naming one."""
    check_name(name)
    if type(max_batch) is not int or not 1 <= max_batch <= MAX_BATCH:
        raise ValueError(f"max_batch: must be an int in 1..{MAX_BATCH}, got {max_batch!r}")
    if type(instances) is not int or not 1 <= instances <= MAX_INSTANCES:
        raise ValueError(f"instances: must be an int in 1..{MAX_INSTANCES}, got {instances!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {ENGINES}, got {engine!r}")
    if device not in INSTANCE_KINDS:
        raise ValueError(f"device: must be one of {tuple(INSTANCE_KINDS)}, got {device!r}")
    if engine == "tensorrt" and device == "cpu":
        raise ValueError("device: TensorRT plans run on the GPU only (use --device gpu or auto)")
    if type(max_queue_delay_us) is not int or not 0 <= max_queue_delay_us <= 10_000_000:
        raise ValueError(f"max_queue_delay_us: must be an int in 0..10000000, got {max_queue_delay_us!r}")


# ----------------------------------------------------------------------------
# config.pbtxt (protobuf text format of Triton's ModelConfig)


def _text_string(value: str) -> str:
    """A protobuf text-format string literal (the value is ASCII: JSON with ensure_ascii)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tensor_entries(tensors: dict[str, tuple]) -> str:
    rows = []
    for name, shape in tensors.items():
        assert shape[0] == BATCH, f"{name}: a batched Triton model needs the batch axis first, got {shape}"
        dims = ", ".join(str(d) for d in shape[1:])
        rows.append(f'  {{ name: "{name}" data_type: TYPE_FP32 dims: [ {dims} ] }}')
    return ",\n".join(rows)


def config_pbtxt(model_name: str, graph: str, config: GeneratorConfig, w_avg: np.ndarray, engine: str,
                 max_batch: int, instances: int, device: str, max_queue_delay_us: int, precision: str = "fp32",
                 directions: str | None = None) -> str:
    """One model's config.pbtxt (ModelConfig in protobuf text format); directions: the synthesis model's
    `stylegan_sdk_directions` parameter (directions_parameter), None for none."""
    inputs, outputs = graph_io(config)[graph]
    shipped = "" if directions is None else (f'parameters {{ key: "{DIRECTIONS_PARAMETER}" value {{ string_value: '
                                             f"{_text_string(directions)} }} }}\n")
    return (
        f"# Written by stylegan-sdk (stylegan export triton): the {graph} graph of a "
        f"{config.arch} {config.img_resolution}px generator.\n"
        f'name: "{model_name}"\n'
        f'platform: "{PLATFORMS[engine]}"\n'
        f"max_batch_size: {max_batch}\n"
        f"input [\n{_tensor_entries(inputs)}\n]\n"
        f"output [\n{_tensor_entries(outputs)}\n]\n"
        f"dynamic_batching {{ max_queue_delay_microseconds: {max_queue_delay_us} }}\n"
        f"instance_group [ {{ count: {instances} kind: {INSTANCE_KINDS[device]} }} ]\n"
        f"version_policy {{ latest {{ num_versions: 1 }} }}\n"
        f'parameters {{ key: "{PARAMETER}" value {{ string_value: '
        f"{_text_string(model_parameter(graph, config, w_avg, precision))} }} }}\n"
        f"{shipped}"
    )


# ----------------------------------------------------------------------------
# The repository


def write_repository(
    source: str | os.PathLike,        # an exported folder (stylegan export onnx), or a model file to export first
    out: str | os.PathLike,           # the model repository (created if missing; its parent must exist)
    name: str = "stylegan",           # models NAME_mapping and NAME_synthesis
    max_batch: int = 8,               # max_batch_size: the most rows Triton batches into one execution
    instances: int = 1,               # instance_group count: model copies per device
    engine: str = "onnx",             # "onnx" (onnxruntime_onnx) or "tensorrt" (the folder's engines)
    device: str = "auto",             # instance kind: "auto", "cpu" or "gpu"
    max_queue_delay_us: int = 500,    # dynamic_batching: how long a request waits for others
    force: bool = False,              # replace NAME_mapping / NAME_synthesis if they exist
) -> dict[str, str]:
    """Write NAME_mapping and NAME_synthesis (+ NAME.model.json) into `out`; returns graph -> model folder."""
    check_repository_args(name, max_batch, instances, engine, device, max_queue_delay_us)
    out = os.path.abspath(os.fspath(out))
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"out: folder {parent!r} does not exist")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out: {out!r} exists and is not a folder")
    names = model_names(name)
    targets = {graph: os.path.join(out, model) for graph, model in names.items()}
    existing = [t for t in (*targets.values(), os.path.join(out, f"{name}.{MANIFEST}")) if os.path.lexists(t)]
    if existing and not force:
        raise ValueError(f"out: {existing[0]!r} already exists (force=True replaces it)")

    with _exported(source) as model:
        _check_source(model, engine, max_batch)
        directions = _directions_parameter(model)
        os.makedirs(out, mode=default_dir_mode(), exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", dir=parent)  # beside, not in, the repository
        try:
            for graph, model_name in names.items():
                folder = os.path.join(staging, model_name)
                os.makedirs(os.path.join(folder, VERSION), mode=default_dir_mode())
                data = model.read_bytes(_graph_file(model, graph, engine))  # sha256 checked in the same read
                atomic_write_bytes(os.path.join(folder, VERSION, MODEL_FILES[engine]), data)
                precision = "fp16" if engine == "tensorrt" and model.engines.get("fp16") else "fp32"
                text = config_pbtxt(model_name, graph, model.config, model.w_avg, engine, max_batch, instances,
                                    device, max_queue_delay_us, precision,
                                    directions if graph == "synthesis" else None)
                atomic_write_bytes(os.path.join(folder, "config.pbtxt"), text.encode("ascii"))
            atomic_write_bytes(os.path.join(staging, f"{name}.{MANIFEST}"),
                               json.dumps(model.manifest, indent=1).encode())
            for entry in sorted(os.listdir(staging)):
                # an old model is set aside beside the repository, where Triton does not look
                move_into_place(os.path.join(staging, entry), os.path.join(out, entry), aside=parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return targets


@contextmanager
def _exported(source: str | os.PathLike) -> Iterator[ExportedModel]:
    """The exported folder `source` ("default": the bundled model's), or a model file exported into a
    temporary one (torch + onnx)."""
    source = resolve_model(source, backend="onnxruntime")
    if os.path.isdir(source) and is_exported_folder(source):
        yield read_exported(source)
        return
    if not os.path.exists(source):
        raise FileNotFoundError(f"model: no such model file or exported folder {source!r}")
    from .onnx import export_onnx  # an optional dependency: torch + onnx, needed only for a model file

    with tempfile.TemporaryDirectory(prefix="stylegan-sdk-triton-") as tmp:
        yield export_onnx(source, os.path.join(tmp, "exported"))


def _check_source(model: ExportedModel, engine: str, max_batch: int) -> None:
    """What a Triton model needs of the exported folder: batched inputs, and engines that fit for TensorRT."""
    if not model.gain_per_row:
        raise ValueError(f"model: {model.folder!r} was exported by stylegan-sdk 0.1 (format_version 1: its "
                         f"noise_const_gain has no batch axis, which Triton's batched models need); re-export it "
                         f"with stylegan export onnx")
    if engine == "tensorrt":
        engines = model.engines
        if not engines.get("plans"):
            raise ValueError(f"engine: {model.folder!r} has no TensorRT engines; build them first with "
                             f"stylegan export tensorrt {model.folder} --out {model.folder} --max-batch {max_batch}")
        if engines.get("min_batch") != 1 or not isinstance(engines.get("max_batch"), int) \
                or engines["max_batch"] < max_batch:
            raise ValueError(f"max_batch: the TensorRT engines take batches {engines.get('min_batch')}.."
                             f"{engines.get('max_batch')}; Triton sends any batch from 1 to max_batch {max_batch} "
                             f"(rebuild with --min-batch 1 --max-batch {max_batch}, or lower --max-batch)")


def _directions_parameter(model: ExportedModel) -> str | None:
    """The synthesis model's `stylegan_sdk_directions` parameter: the folder's direction set files, each
    hash-checked and read as sg.load reads it; None when the folder carries none."""
    sets = exported_directions(model)
    if not sets:
        return None
    files = model.manifest[DIRECTIONS_KEY]
    return directions_parameter({name: model.read_bytes(files[name]) for name in sets})


def _graph_file(model: ExportedModel, graph: str, engine: str) -> str:
    return model.engines["plans"][graph] if engine == "tensorrt" else model.graph_file(graph)


__all__ = ["ENGINES", "INSTANCE_KINDS", "check_repository_args", "config_pbtxt", "write_repository"]
