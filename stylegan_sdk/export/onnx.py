"""Export a generator as two ONNX graphs (mapping, synthesis) plus model.json. Needs torch + onnx.

Beside the graphs: `style_affines.safetensors`, the style affine weights (so SeFa runs on the exported
folder: model.json "style_affines"), and each direction set given (`directions={NAME: file}`, on the
command line `--directions NAME=FILE`) as `directions_NAME.safetensors` (model.json "directions":
{NAME: file}). Every file is listed under model.json's `files` with its sha256, like the graphs.

Graphs come from torch.export (the dynamo ONNX exporter) with a dynamic batch axis. The synthesis
graph's modulated convolutions scale activations by the styles, convolve with static weights and
demodulate the output (no grouped convolution whose weights depend on the batch), so they run on
ONNX Runtime and parse in TensorRT with any batch size. Noise is selected at run time (see
`stylegan_sdk.formats.exported`). Each export is verified against the torch model before it is kept.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..backends.onnxruntime_backend import OnnxRuntimeBackend
from ..config import GeneratorConfig
from ..editing.directions import Directions, check_shipped_set_name, directions_from_bytes, shipped_set_file
from ..editing.weights import STYLE_AFFINES_FILE, STYLE_AFFINES_KEY, read_style_affines, style_affine_tensors
from ..formats.checkpoint import Checkpoint
from ..formats.exported import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAPPING_FILE,
    NOISE_GAIN_INPUT,
    SYNTHESIS_FILE,
    TRANSFORM_INPUT,
    ExportedModel,
    graph_io,
    has_input_transform,
    noise_gain_input,
    noise_input_names,
    read_exported,
    write_manifest,
)
from ..formats.fileio import atomic_write_bytes, move_into_place
from ..latents import input_transform
from ..loading import DIRECTIONS_KEY, exported_directions, read_model
from ..models import build_with_weights
from ..version import package_version

DEFAULT_OPSET = 18
MAX_BATCH = 4096
# Operators the TensorRT ONNX parser supports that these graphs may use; anything else fails the export.
TENSORRT_OPS = {
    "Add", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "Div",
    "Expand", "Gather", "Gemm", "Identity", "LeakyRelu", "MatMul", "Max", "Min", "Mul", "Neg", "Pad", "Pow",
    "Reciprocal", "ReduceL2", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Shape", "Sin", "Slice", "Split",
    "Sqrt", "Squeeze", "Sub", "Tile", "Transpose", "Unsqueeze",
}


# ----------------------------------------------------------------------------
# The two graphs as modules


class MappingGraph(torch.nn.Module):
    """z [B, z_dim] (+ c [B, c_dim]) -> w [B, w_dim]."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.mapping = model.mapping

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.mapping(z, c)


class SynthesisGraph(torch.nn.Module):
    """ws [B, num_ws, w_dim], noise_const_gain [B, 1], noise_k [B, 1, r, r] -> img [B, C, H, W]."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.synthesis = model.synthesis

    def forward(self, ws: torch.Tensor, noise_const_gain: torch.Tensor, *noise: torch.Tensor) -> torch.Tensor:
        consts = self.synthesis.noise_consts()
        gain = noise_const_gain[:, :, None, None]  # [B, 1, 1, 1]: each row's own const-noise gain
        mixed = [const * gain + n for const, n in zip(consts, noise)]
        return self.synthesis(ws, noise_mode="random", noise=mixed or None)


class TransformSynthesisGraph(torch.nn.Module):
    """StyleGAN3: ws [B, num_ws, w_dim], transform [B, 3, 3] (the input transform per sample) -> img
    [B, C, H, W]. No noise inputs; the transform is an input, so samples of a batch differ freely."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.synthesis = model.synthesis

    def forward(self, ws: torch.Tensor, transform: torch.Tensor) -> torch.Tensor:
        return self.synthesis(ws, transform=transform)


# ----------------------------------------------------------------------------
# Export


def _export_graph(module: torch.nn.Module, args: tuple, names: list[str], dynamic: tuple,
                  out_name: str, path: str, opset: int) -> None:
    """torch.export -> ONNX; `dynamic` mirrors `args` ({axis: Dim} per tensor, None for static)."""
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [log.level for log in quiet]
    try:
        for log in quiet:
            log.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, args, input_names=names, output_names=[out_name],
                                        dynamic_shapes=dynamic, dynamo=True, opset_version=opset,
                                        verbose=False, optimize=True)
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)
    program.save(path)


def check_graph(path: str) -> list[str]:
    """onnx.checker (full), and only TensorRT-parsable operators; returns the op types used."""
    import onnx

    onnx.checker.check_model(path, full_check=True)
    ops = sorted({node.op_type for node in onnx.load(path, load_external_data=False).graph.node})
    unsupported = sorted(set(ops) - TENSORRT_OPS)
    if unsupported:
        raise ValueError(f"{path}: graph uses operators outside the TensorRT-parsable set: {unsupported}")
    return ops


def export_onnx(
    source: str | os.PathLike | Checkpoint,     # a model file sg.load reads, or a Checkpoint
    out_dir: str | os.PathLike,                  # folder to create
    opset: int = DEFAULT_OPSET,                  # ONNX opset
    force: bool = False,                         # replace an existing folder
    verify: bool = True,                         # compare ONNX Runtime with torch before keeping it
    directions: Mapping[str, str | os.PathLike | Directions] | None = None,  # direction sets to ship: {NAME: file}
) -> ExportedModel:
    """Write DIR/mapping.onnx, DIR/synthesis.onnx, DIR/style_affines.safetensors, DIR/directions_NAME.safetensors
    (one per direction set) and DIR/model.json; the folder appears whole or not at all. Direction sets are
    checked (names, files, w_dim and ws rows against the model) before anything is written."""
    if directions is not None and not isinstance(directions, Mapping):
        raise ValueError(f"directions: expected a map {{name: direction set file or Directions}}, got "
                         f"{type(directions).__name__}")
    for name in directions or {}:
        check_shipped_set_name(name)
    ckpt = source if isinstance(source, Checkpoint) else read_model(source)
    cfg = ckpt.config
    sets = read_direction_sets(directions or {}, cfg)
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and not force:
        raise ValueError(f"out: {out_dir!r} already exists (force=True replaces it)")
    parent = os.path.dirname(out_dir)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"out: folder {parent!r} does not exist")

    model = build_with_weights(cfg, ckpt.tensors, str(source) if not isinstance(source, Checkpoint) else "checkpoint")
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", dir=parent)
    try:
        graphs = _write_graphs(model, cfg, tmp, opset)
        extra = _write_editing_files(cfg, ckpt, sets, tmp)
        manifest = _manifest(cfg, ckpt, graphs, opset, extra)
        write_manifest(tmp, manifest)
        written = read_exported(tmp)
        exported_directions(written)     # the sets as sg.load reads them (hash-checked)
        read_style_affines(written)
        if verify:
            verify_export(tmp, model)
        move_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_exported(out_dir)


def read_direction_sets(directions: Mapping[str, str | os.PathLike | Directions], cfg: GeneratorConfig
                        ) -> dict[str, bytes]:
    """{NAME: file or Directions} -> {NAME: the bytes of its file}, each set read and checked against the model
    (w_dim, ws rows); ValueError naming `directions` and the set. A file is shipped byte for byte."""
    out = {}
    for name, value in directions.items():
        check_shipped_set_name(name)
        if isinstance(value, Directions):
            d, data = value, None
        else:
            if not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"directions: set {name!r}: expected a direction set file or a Directions, got "
                                 f"{type(value).__name__}")
            path = os.fspath(value)
            if not os.path.isfile(path):
                raise ValueError(f"directions: set {name!r}: no such direction set file {path!r}")
            with open(path, "rb") as f:
                data = f.read()
            try:
                d = directions_from_bytes(data, path)
            except ValueError as e:
                raise ValueError(f"directions: set {name!r}: {e}") from None
        d.check_for(cfg, name=f"directions: set {name!r}")
        out[name] = data if data is not None else d.to_bytes()
    return out


def _write_editing_files(cfg: GeneratorConfig, ckpt: Checkpoint, sets: dict[str, bytes], folder: str
                         ) -> dict[str, Any]:
    """style_affines.safetensors and directions_NAME.safetensors into folder; their model.json entries."""
    from safetensors.numpy import save

    affines = style_affine_tensors(cfg, ckpt.tensors)
    if not affines:
        raise ValueError(f"model: found no style affine weights in this {cfg.arch} model")
    # One metadata entry: safetensors writes a header map of several in no fixed order (exports stay byte-identical).
    atomic_write_bytes(os.path.join(folder, STYLE_AFFINES_FILE),
                       save(affines, metadata={"format": f"stylegan-sdk.style-affines/{cfg.arch}"}))
    files = {name: shipped_set_file(name) for name in sets}
    for name, data in sets.items():
        atomic_write_bytes(os.path.join(folder, files[name]), data)
    return {STYLE_AFFINES_KEY: STYLE_AFFINES_FILE, DIRECTIONS_KEY: files}


def _write_graphs(model: torch.nn.Module, cfg: GeneratorConfig, folder: str, opset: int) -> dict[str, Any]:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    n = 2  # example batch (torch.export specialises sizes 0 and 1)

    # Mapping.
    z = torch.randn([n, cfg.z_dim])
    names = ["z"] + (["c"] if cfg.c_dim > 0 else [])
    args: tuple = (z, torch.nn.functional.one_hot(torch.zeros(n, dtype=torch.long), cfg.c_dim).float()) \
        if cfg.c_dim > 0 else (z,)
    _export_graph(MappingGraph(model), args, names, tuple({0: batch} for _ in names), "w",
                  os.path.join(folder, MAPPING_FILE), opset)
    mapping_ops = check_graph(os.path.join(folder, MAPPING_FILE))

    # Synthesis.
    ws = torch.randn([n, cfg.num_ws, cfg.w_dim])
    if has_input_transform(cfg):  # StyleGAN3: ws and the input transform per sample
        transform = torch.from_numpy(np.stack([input_transform((0.1 * k, -0.05 * k), 7.0 * k) for k in range(n)]))
        _export_graph(TransformSynthesisGraph(model), (ws, transform), ["ws", TRANSFORM_INPUT],
                      ({0: batch}, {0: batch}), "img", os.path.join(folder, SYNTHESIS_FILE), opset)
    else:
        noise = tuple(torch.randn([n, 1, r, r]) for r in cfg.noise_resolutions)
        syn_names = ["ws", NOISE_GAIN_INPUT, *noise_input_names(cfg)]
        dynamic = ({0: batch}, {0: batch}, tuple({0: batch} for _ in noise))
        gain = torch.tensor([[1.0], [0.0]])  # one row const noise, one not
        _export_graph(SynthesisGraph(model), (ws, gain, *noise), syn_names, dynamic, "img",
                      os.path.join(folder, SYNTHESIS_FILE), opset)
    synthesis_ops = check_graph(os.path.join(folder, SYNTHESIS_FILE))

    def recorded(shapes: dict[str, tuple]) -> dict[str, list]:
        return {name: list(shape) for name, shape in shapes.items()}

    io = graph_io(cfg)
    return {graph: {"file": file, "inputs": recorded(io[graph][0]), "outputs": recorded(io[graph][1]), "ops": ops}
            for graph, file, ops in (("mapping", MAPPING_FILE, mapping_ops),
                                     ("synthesis", SYNTHESIS_FILE, synthesis_ops))}


def _manifest(cfg: GeneratorConfig, ckpt: Checkpoint, graphs: dict[str, Any], opset: int,
              extra: dict[str, Any]) -> dict[str, Any]:
    import onnx

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "w_avg": np.asarray(ckpt.w_avg, np.float32).tolist(),
        "num_ws": cfg.num_ws,
        "layers": cfg.layer_table(),
        "noise": {
            "resolutions": cfg.noise_resolutions,
            "inputs": noise_input_names(cfg),
            "const_gain_input": noise_gain_input(cfg),
            "modes": {"const": "gain 1, zero noise", "none": "gain 0, zero noise",
                      "random": "gain 0, unit Gaussian noise [batch, 1, r, r]"},
        },
        "graphs": graphs,
        "opset": opset,
        "exporter": {"stylegan_sdk": package_version(), "torch": torch.__version__, "onnx": onnx.__version__,
                     "method": "torch.onnx.export(dynamo=True)"},
        "source_metadata": ckpt.metadata,
        STYLE_AFFINES_KEY: extra[STYLE_AFFINES_KEY],
        DIRECTIONS_KEY: extra[DIRECTIONS_KEY],
        "files": {MAPPING_FILE: {}, SYNTHESIS_FILE: {}, extra[STYLE_AFFINES_KEY]: {},
                  **{file: {} for file in extra[DIRECTIONS_KEY].values()}},
        "engines": {},
    }


# ----------------------------------------------------------------------------
# Verification against torch


def verify_export(folder: str, model: torch.nn.Module, tol: float = 1e-4, batches: tuple[int, ...] = (1, 7)) -> float:
    """Run the graphs on ONNX Runtime (CPU) for each batch size and noise mode; max abs error vs torch."""
    exported = read_exported(folder)
    backend = OnnxRuntimeBackend(exported, device="cpu")
    cfg = exported.config
    rng = np.random.RandomState(0)
    worst = 0.0
    with torch.no_grad():
        for b in batches:
            z = rng.randn(b, cfg.z_dim).astype(np.float32)
            c = np.eye(cfg.c_dim, dtype=np.float32)[rng.randint(0, cfg.c_dim, b)] if cfg.c_dim else None
            w_ref = model.mapping(torch.from_numpy(z), None if c is None else torch.from_numpy(c)).numpy()
            worst = max(worst, float(np.abs(backend.map(z, c) - w_ref).max()))
            ws = np.repeat(w_ref[:, None], cfg.num_ws, axis=1)
            if has_input_transform(cfg):  # the identity, and a different view per sample
                views = np.stack([input_transform(rng.uniform(-0.3, 0.3, 2), rng.uniform(-45, 45)) for _ in range(b)])
                for transform in (None, views):
                    ref = model.synthesis(torch.from_numpy(ws),
                                          transform=None if transform is None else torch.from_numpy(transform))
                    got = backend.synthesize(ws, "const", None, transform)
                    worst = max(worst, float(np.abs(got - ref.numpy()).max()))
                continue
            noise = [rng.randn(b, 1, r, r).astype(np.float32) for r in cfg.noise_resolutions]
            for mode in ("const", "none", "random"):
                nz = noise if mode == "random" else None
                ref = model.synthesis(torch.from_numpy(ws), noise_mode=mode,
                                      noise=None if nz is None else [torch.from_numpy(x) for x in nz]).numpy()
                worst = max(worst, float(np.abs(backend.synthesize(ws, mode, nz) - ref).max()))
    backend.close()
    if not worst <= tol:
        raise ValueError(f"{folder}: exported graphs differ from the torch model by {worst:.3g} (> {tol})")
    return worst


__all__ = ["MANIFEST", "check_graph", "export_onnx", "read_direction_sets", "verify_export"]
