"""An exported model folder and its `model.json` (read without torch).

    DIR/mapping.onnx      z [batch, z_dim] (+ c [batch, c_dim]) -> w [batch, w_dim]
    DIR/synthesis.onnx    ws [batch, num_ws, w_dim], noise_const_gain [batch, 1], noise_k [batch, 1, r_k, r_k]
                          -> img [batch, C, H, W]   (StyleGAN3: ws, transform [batch, 3, 3] -> img)
    DIR/model.json        config, w_avg, layer table, noise inputs, graph I/O, opset, exporter
                          versions, sha256 of every file; TensorRT engines once built
    DIR/*.plan            TensorRT engines (stylegan export tensorrt), optional; model.json "engines" then holds
                          {"plans": {"mapping": ..., "synthesis": ...}, "fp16", "min_batch", "opt_batch",
                          "max_batch", "workspace_bytes", "tensorrt", "gpu", "timing_cache"}

Noise at run time, without re-export: each convolution adds
(noise_const_k * noise_const_gain + noise_k) * strength_k, so "const" feeds gain 1 and zero
noise, "none" gain 0 and zero noise, "random" gain 0 and unit Gaussian noise [N, 1, r, r].

Every input has the batch axis first (Triton's batched models require it). Folders of format_version
"1" (stylegan-sdk 0.1) have one noise_const_gain [1] for the whole batch; they still load and run
(`ExportedModel.gain_per_row` is False), but cannot become Triton models: re-export them.

Containment. A folder never makes the loader read outside it: every file it uses (the graphs in
`graphs.*.file`, the plans in `engines.plans`) is a plain file name (letters, digits, '.', '_', '-';
no path separators, no '..', not absolute, not hidden) listed under `files` with its sha256; it must
be a regular file in the folder itself; symlinks are refused, never followed (model.json too).
`read_exported` checks all of that once, and every size model.json claims (config limits, w_avg, the
recorded graph I/O, num_ws, layers, noise inputs) against the config; backends then take the bytes
they load from `ExportedModel.read_bytes`, which checks the sha256 in the same read, and check the
inputs/outputs the loaded graphs declare with `check_graph_io`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import reprlib
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import GeneratorConfig, check_config_sizes, min_weight_count
from .fileio import atomic_write_bytes

FORMAT = "stylegan-sdk.exported"
FORMAT_VERSION = "2"                  # "2": noise_const_gain [batch, 1]
READ_VERSIONS = ("1", "2")            # "1": noise_const_gain [1], one gain per call
MANIFEST = "model.json"
MAPPING_FILE = "mapping.onnx"
SYNTHESIS_FILE = "synthesis.onnx"
NOISE_GAIN_INPUT = "noise_const_gain"
TRANSFORM_INPUT = "transform"         # StyleGAN3 synthesis: the input transform [batch, 3, 3]
GRAPHS = ("mapping", "synthesis")
BATCH = "batch"                       # the dynamic batch axis in shapes
MAX_MANIFEST_BYTES = 16 << 20         # model.json of a 1024 px model is ~30 kB
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_REPR = reprlib.Repr()  # file names and values in messages: recognisable, but bounded
_REPR.maxstring = _REPR.maxother = 160
_REPR.maxlist = 12


def noise_input_names(cfg: GeneratorConfig) -> list[str]:
    return [f"noise_{k}" for k in range(len(cfg.noise_resolutions))]


def has_input_transform(cfg: GeneratorConfig) -> bool:
    """StyleGAN3's synthesis graph takes the input transform [batch, 3, 3] and has no noise inputs."""
    return cfg.arch == "stylegan3"


def noise_gain_input(cfg: GeneratorConfig) -> str | None:
    """The synthesis graph's noise_const_gain input (None for StyleGAN3, which has no noise)."""
    return None if has_input_transform(cfg) else NOISE_GAIN_INPUT


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def is_exported_folder(path: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(os.fspath(path), MANIFEST))


# ----------------------------------------------------------------------------
# Graph inputs / outputs the config implies


def graph_io(cfg: GeneratorConfig, gain_per_row: bool = True) -> dict[str, tuple[dict[str, tuple], dict[str, tuple]]]:
    """graph -> (inputs, outputs) that `cfg` implies: name -> shape, BATCH for the dynamic batch axis.
    gain_per_row False: format_version "1"'s noise_const_gain [1]."""
    mapping_in: dict[str, tuple] = {"z": (BATCH, cfg.z_dim)}
    if cfg.c_dim > 0:
        mapping_in["c"] = (BATCH, cfg.c_dim)
    synthesis_in: dict[str, tuple] = {"ws": (BATCH, cfg.num_ws, cfg.w_dim)}
    if has_input_transform(cfg):
        synthesis_in[TRANSFORM_INPUT] = (BATCH, 3, 3)
    else:
        synthesis_in[NOISE_GAIN_INPUT] = (BATCH, 1) if gain_per_row else (1,)
        synthesis_in.update({name: (BATCH, 1, r, r) for name, r in zip(noise_input_names(cfg), cfg.noise_resolutions)})
    res = cfg.img_resolution
    return {"mapping": (mapping_in, {"w": (BATCH, cfg.w_dim)}),
            "synthesis": (synthesis_in, {"img": (BATCH, cfg.img_channels, res, res)})}


def _is_dynamic(dim: object) -> bool:
    """A symbolic axis: a name (ONNX / ONNX Runtime), None (unknown) or a negative size (TensorRT)."""
    return dim is None or isinstance(dim, str) or (type(dim) is int and dim < 0)


def _shape_matches(want: tuple, have: object) -> bool:
    if not isinstance(have, (list, tuple)) or len(have) != len(want):
        return False
    return all(_is_dynamic(h) if w == BATCH else (type(h) is int and h == w) for w, h in zip(want, have))


def check_graph_io(where: str, graph: str, cfg: GeneratorConfig, inputs: Mapping[str, Sequence[Any]],
                   outputs: Mapping[str, Sequence[Any]], optional_noise: bool = False,
                   gain_per_row: bool = True) -> None:
    """The inputs and outputs a graph declares (name -> shape) must be exactly those `cfg` implies.

    Names and static dims must agree; the batch axis must be dynamic (str / None / negative dim).
    optional_noise: the noise inputs and noise_const_gain may be absent (an engine may drop unused
    inputs). Backend-independent: ONNX Runtime sessions, OpenVINO models, TensorRT engines, Triton's model
    metadata and model.json's record of the graphs all go through it. gain_per_row: see `graph_io`.
    ValueError naming `where`, one line.
    """
    want_in, want_out = graph_io(cfg, gain_per_row)[graph]
    optional = {NOISE_GAIN_INPUT, *noise_input_names(cfg)} if optional_noise else set()
    for kind, want, have, needed in (("input", want_in, inputs, set(want_in) - optional),
                                     ("output", want_out, outputs, set(want_out))):
        unexpected, missing = sorted(set(have) - set(want)), sorted(needed - set(have))
        if unexpected or missing:
            raise ValueError(f"{where}: the {graph} graph's {kind}s do not match model.json's config "
                             f"(missing {missing}, unexpected {unexpected})")
        for name, shape in have.items():
            if not _shape_matches(want[name], shape):
                shown = list(shape) if isinstance(shape, (list, tuple)) else shape
                raise ValueError(f"{where}: {graph} {kind} {name!r} has shape {_REPR.repr(shown)}, but model.json's "
                                 f"config implies {list(want[name])} (the config contradicts the graph)")


# ----------------------------------------------------------------------------
# ONNX graphs must be self-contained (no external data files), checked without the onnx package

# message kind -> {field number: message kind} of the onnx.proto messages that can hold tensors
_ONNX_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 13, 14, 1  # TensorProto fields, DataLocation.EXTERNAL
_MAX_NESTING = 64


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated or malformed varint")
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if byte < 0x80:
            return value, i


def _protobuf_fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of one protobuf message; length-delimited values as views."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire in (1, 5):
            value, i = 0, i + (8 if wire == 1 else 4)
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i:i + length], i + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if i > len(buf):
            raise ValueError("truncated protobuf message")
        yield field, wire, value


def onnx_uses_external_data(data: bytes) -> bool:
    """Whether a serialized ONNX model keeps any tensor (initializer, attribute, function body, sparse
    tensor) in an external file. ValueError if the bytes are not a well-formed protobuf message."""
    todo: list[tuple[str, memoryview, int]] = [("model", memoryview(data), 0)]
    while todo:
        kind, buf, depth = todo.pop()
        if depth > _MAX_NESTING:
            raise ValueError("ONNX graph nested too deeply")
        for field, wire, value in _protobuf_fields(buf):
            if kind == "tensor" and (field == _TENSOR_EXTERNAL_DATA
                                     or (field == _TENSOR_DATA_LOCATION and wire == 0 and value == _EXTERNAL)):
                return True
            child = _ONNX_CHILDREN[kind].get(field)
            if child is not None and wire == 2:
                todo.append((child, value, depth + 1))  # type: ignore[arg-type]
    return False


# ----------------------------------------------------------------------------
# Files of a folder: plain names, listed with a sha256, regular files inside it


def check_file_name(folder: str, name: object, entry: str) -> str:
    """`name` (from model.json `entry`) must be a plain file name inside the folder; ValueError otherwise."""
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or name == MANIFEST:
        raise ValueError(f"{folder}: model.json {entry} {_REPR.repr(name)} is not a plain file name inside the "
                         f"folder (no paths, '..', absolute or hidden names)")
    return name


def _open_in_folder(folder: str, name: str) -> int:
    """A read-only descriptor of folder/name: a regular file in the folder itself, not a symlink."""
    path = os.path.join(folder, name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder}: {name!r} listed in model.json is missing") from None
    if stat.S_ISLNK(st.st_mode):
        raise ValueError(f"{folder}: {name!r} is a symlink; the files of an exported folder must be regular files "
                         f"inside it (symlinks are refused, not followed)")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{folder}: {name!r} is not a regular file")
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(folder):
        raise ValueError(f"{folder}: {name!r} resolves outside the folder")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # O_NOFOLLOW / O_NONBLOCK: no symlink or FIFO swapped in since lstat
    except OSError as e:
        raise ValueError(f"{folder}: cannot open {name!r}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{folder}: {name!r} is not a regular file")
    return fd


def _read_checked(folder: str, name: str, entry: Mapping[str, Any], keep: bool, verify: bool = True) -> bytes | None:
    """Open folder/name and check its size and (verify) sha256 against its model.json entry; its bytes if keep."""
    where = os.path.join(folder, name)
    with os.fdopen(_open_in_folder(folder, name), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if entry.get("bytes") is not None and size != entry["bytes"]:
            raise ValueError(f"{where}: sha256 does not match model.json (the file has {size} bytes, model.json "
                             f"says {entry['bytes']}: corrupt or modified file)")
        if not (verify or keep):
            return None
        h, chunks = hashlib.sha256(), []
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
            if keep:
                chunks.append(chunk)
    if verify and h.hexdigest() != entry["sha256"]:
        raise ValueError(f"{where}: sha256 does not match model.json (corrupt or modified file)")
    return b"".join(chunks) if keep else None


def _listed_files(folder: str, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """model.json `files`: a non-empty map of plain names -> {"sha256": 64 hex digits, "bytes": size}."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ValueError(f"{folder}: model.json lists no files (no sha256 to check the graphs against); "
                         f"re-export the model (stylegan export onnx)")
    for name, entry in files.items():
        check_file_name(folder, name, "files entry")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not _SHA256.fullmatch(entry["sha256"]):
            raise ValueError(f"{folder}: model.json files entry {name!r} has no sha256 (64 lowercase hex digits)")
        size = entry.get("bytes")
        if size is not None and (type(size) is not int or size < 0):
            raise ValueError(f"{folder}: model.json files entry {name!r} has an invalid size {_REPR.repr(size)}")
    return files


def _check_used_files(folder: str, manifest: dict[str, Any], files: Mapping[str, Any]) -> None:
    """The graph and engine files model.json points at; each must be listed under `files`."""
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict) or not all(isinstance(graphs.get(g), dict) for g in GRAPHS):
        raise ValueError(f"{folder}: model.json has no graphs.mapping / graphs.synthesis entries")
    used = [(f"graphs.{g}.file", graphs[g].get("file")) for g in GRAPHS]
    engines = manifest.get("engines") or {}
    if not isinstance(engines, dict):
        raise ValueError(f"{folder}: model.json engines is not an object")
    plans = engines.get("plans") or {}
    if not isinstance(plans, dict):
        raise ValueError(f"{folder}: model.json engines.plans is not an object")
    used += [(f"engines.plans.{g}", file) for g, file in plans.items()]
    for entry, name in used:
        check_file_name(folder, name, entry)
        if name not in files:
            raise ValueError(f"{folder}: model.json {entry} {name!r} is not listed under files "
                             f"(no sha256 to check it against)")


def _check_graph_bytes(path: str, folder: str, manifest: dict[str, Any], cfg: GeneratorConfig) -> None:
    """The graph files must be large enough to hold the weights the config implies (at 2 bytes each, the
    least any precision stores): a small folder must not describe a huge network to the runtime."""
    names = {manifest["graphs"][g]["file"] for g in GRAPHS}
    have = 0
    for name in names:
        try:
            have += os.lstat(os.path.join(folder, name)).st_size
        except FileNotFoundError:
            raise FileNotFoundError(f"{folder}: model.json names {name!r}, which is not in the folder") from None
    need = 2 * min_weight_count(cfg)
    if have < need:
        raise ValueError(f"{path}: the config (mapping_layers {cfg.mapping_layers}, channel_base {cfg.channel_base}, "
                         f"channel_max {cfg.channel_max}, img_resolution {cfg.img_resolution}) needs graphs of at "
                         f"least {need} bytes of weights, but {' + '.join(sorted(names))} hold {have} bytes: the "
                         f"config does not describe the graphs")


def _check_recorded(path: str, manifest: dict[str, Any], cfg: GeneratorConfig) -> None:
    """What model.json records about the graphs (I/O, num_ws, layers, noise inputs) must agree with its config."""
    for graph in GRAPHS:
        entry = manifest["graphs"][graph]
        inputs, outputs = entry.get("inputs"), entry.get("outputs")
        if not isinstance(inputs, dict) or not isinstance(outputs, dict):
            raise ValueError(f"{path}: graphs.{graph} records no inputs / outputs")
        check_graph_io(path, graph, cfg, inputs, outputs, gain_per_row=manifest["format_version"] != "1")
    noise = manifest.get("noise")
    if not isinstance(noise, dict):
        raise ValueError(f"{path}: model.json has no noise entry")
    expected = {"num_ws": (manifest.get("num_ws"), cfg.num_ws),
                "layers": (manifest.get("layers"), cfg.layer_table()),
                "noise.resolutions": (noise.get("resolutions"), cfg.noise_resolutions),
                "noise.inputs": (noise.get("inputs"), noise_input_names(cfg)),
                "noise.const_gain_input": (noise.get("const_gain_input"), noise_gain_input(cfg))}
    for field, (value, want) in expected.items():
        if value != want or (want is not None and type(value) is not type(want)):
            raise ValueError(f"{path}: model.json {field} {_REPR.repr(value)} contradicts its config "
                             f"(expected {_REPR.repr(want)})")


# ----------------------------------------------------------------------------
# The folder


@dataclass
class ExportedModel:
    folder: str
    manifest: dict[str, Any]
    config: GeneratorConfig
    w_avg: np.ndarray

    def _entry(self, name: str) -> dict[str, Any]:
        check_file_name(self.folder, name, "file")
        files = self.manifest.get("files") or {}
        if name not in files:
            raise ValueError(f"{self.folder}: {name!r} is not listed under files in model.json (no sha256 to check)")
        return files[name]

    def path(self, name: str) -> str:
        """Path of a file model.json lists: a plain name, a regular file inside the folder, not a symlink."""
        self._entry(name)
        os.close(_open_in_folder(self.folder, name))
        return os.path.join(self.folder, name)

    def read_bytes(self, name: str) -> bytes:
        """A listed file's bytes, checked against its sha256 in the same read (what backends load)."""
        return _read_checked(self.folder, name, self._entry(name), keep=True)  # type: ignore[return-value]

    def graph_file(self, graph: str) -> str:
        """File name of graph 'mapping' or 'synthesis'."""
        return self.manifest["graphs"][graph]["file"]

    @property
    def engines(self) -> dict[str, Any]:
        return self.manifest.get("engines") or {}

    @property
    def gain_per_row(self) -> bool:
        """noise_const_gain is [batch, 1] (format_version "2"), not format_version "1"'s [1]."""
        return self.manifest["format_version"] != "1"


def _read_manifest(folder: str) -> dict[str, Any]:
    path = os.path.join(folder, MANIFEST)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"path: no {MANIFEST} in {folder!r} (not an exported model folder)")
    fd = _open_in_folder(folder, MANIFEST)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ValueError(f"{path}: model.json is larger than {MAX_MANIFEST_BYTES} bytes (not one the exporter wrote)")
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, too many digits, too deep
        raise ValueError(f"{path}: unreadable model.json: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a stylegan-sdk export (format must be {FORMAT!r})")
    if manifest.get("format_version") not in READ_VERSIONS:
        raise ValueError(f"{path}: format_version {_REPR.repr(manifest.get('format_version'))} not supported")
    return manifest


def check_config_record(path: str, raw: object) -> GeneratorConfig:
    """A recorded config (model.json's, a Triton model's parameter): a GeneratorConfig within the SDK's limits."""
    try:
        config = GeneratorConfig.from_dict(raw)
    except ValueError as e:  # "config.<field>: why"
        raise ValueError(f"{path}: {e}") from None
    except (TypeError, OverflowError) as e:  # from_dict converts its lists with int()
        raise ValueError(f"{path}: config: {e}") from None
    check_config_sizes(config, path)
    return config


def check_w_avg(path: str, raw: object, w_dim: int) -> np.ndarray:
    """model.json w_avg: exactly w_dim finite numbers."""
    error = ValueError(f"{path}: w_avg must be {w_dim} finite numbers")
    if not isinstance(raw, list) or len(raw) != w_dim or not all(type(v) in (int, float) for v in raw):
        raise error
    try:
        with np.errstate(over="ignore"):
            w_avg = np.asarray(raw, np.float32)
    except OverflowError:  # an int beyond float range
        raise error from None
    if not np.all(np.isfinite(w_avg)):
        raise error
    return w_avg


def read_exported(folder: str | os.PathLike, verify_hashes: bool = True) -> ExportedModel:
    """Read and check DIR/model.json and the files it names (see the module docstring).

    Refuses (ValueError naming the folder and the entry; FileNotFoundError for a missing file): a
    file name that is not plain, a used file not listed under `files`, no `files`, a symlink or
    non-regular file, a config beyond the SDK's limits or contradicting the recorded graph I/O,
    num_ws, layers or noise inputs, a w_avg that is not w_dim finite numbers; with verify_hashes,
    any listed file whose sha256 differs.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, MANIFEST)
    manifest = _read_manifest(folder)
    config = check_config_record(path, manifest.get("config"))
    w_avg = check_w_avg(path, manifest.get("w_avg"), config.w_dim)
    files = _listed_files(folder, manifest)
    _check_used_files(folder, manifest, files)
    _check_recorded(path, manifest, config)
    for name, entry in files.items():
        _read_checked(folder, name, entry, keep=False, verify=verify_hashes)
    _check_graph_bytes(path, folder, manifest, config)  # regular files in the folder (_read_checked)
    return ExportedModel(folder=folder, manifest=manifest, config=config, w_avg=w_avg)


def write_manifest(folder: str, manifest: dict[str, Any]) -> None:
    """(Re)write model.json atomically, with fresh sha256 sums of the files it lists."""
    for name, entry in manifest.get("files", {}).items():
        check_file_name(folder, name, "files entry")
        entry["sha256"] = sha256_file(os.path.join(folder, name))
        entry["bytes"] = os.path.getsize(os.path.join(folder, name))
    atomic_write_bytes(os.path.join(folder, MANIFEST), json.dumps(manifest, indent=1).encode())
