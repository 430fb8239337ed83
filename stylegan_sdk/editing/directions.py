"""Direction sets: unit vectors in W that change one thing about a picture, and their file format.

    d = sg.sefa(G, k=10)                      # or sg.ganspace(...), sg.boundary(...)
    d.save("sefa.safetensors")
    d = sg.load_directions("sefa.safetensors")
    ws = G.edit(ws, d, {0: 3.0, "smile": -1.5})  # ws + sum of strength * vector on d.layers

A set is K directions in W, each a unit row of `vectors` [K, w_dim], with a `value` each (SeFa: the
eigenvalue of its factorisation; GANSpace: the standard deviation of W along it; a boundary: the
accuracy of its SVM on held-out samples), a name each, the ws rows it belongs to (`layers`,
None = every row) and the identity of the model it was computed from.

File: one safetensors file, never a pickle.

    tensors       vectors [K, w_dim] float32, values [K] float32, mean [w_dim] float32 (GANSpace only)
    __metadata__  one entry, "stylegan-sdk.directions": a JSON object with format_version ("1"), kind,
                  names (list), layers (list or null), model (object), meta (object: how it was made);
                  one entry, keys sorted, so that the same set always gives the same bytes

NumPy only: exported models and the client use direction sets without torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import GeneratorConfig
from ..formats.fileio import atomic_write_bytes
from ..latents import as_float_array

FORMAT = "stylegan-sdk.directions"
FORMAT_VERSION = "1"
KINDS = ("sefa", "ganspace", "boundary")
VALUE_NAME = {"sefa": "eigenvalue", "ganspace": "sd", "boundary": "accuracy"}   # what `values` holds, per kind
MAX_DIRECTIONS = 4096           # K at most (w_dim is at most this too: config's limits)
MAX_STRENGTH = 1000.0           # |strength| at most: W vectors have norms of tens, so 1000 is never a real edit
MAX_NAME = 200                  # characters in a direction's name
UNIT_TOLERANCE = 1e-3           # |norm - 1| allowed for a stored vector (float32 rounding)
# The name of a set shipped with an exported model (stylegan export onnx --directions NAME=FILE): a plain
# token, because it becomes part of a file name (directions_NAME.safetensors) and travels in model.json.
SHIPPED_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_shipped_set_name(name: object, what: str = "directions") -> str:
    """A direction set name an export can carry: 1-64 letters, digits, '_' or '-', starting with a letter or
    digit; ValueError naming `what` otherwise."""
    if not isinstance(name, str) or not SHIPPED_SET_NAME.fullmatch(name):
        shown = repr(name[:40]) + "..." if isinstance(name, str) and len(name) > 40 else repr(name)
        raise ValueError(f"{what}: {shown} is not a direction set name (1-64 letters, digits, '_' or '-', "
                         f"starting with a letter or digit)")
    return name


def shipped_set_file(name: str) -> str:
    """The file an exported folder keeps the set `name` in."""
    return f"directions_{check_shipped_set_name(name)}.safetensors"


def model_identity(cfg: GeneratorConfig, w_avg: np.ndarray) -> dict[str, Any]:
    """What a direction set records about the model it came from: the family, sizes and a hash of
    w_avg (the same for a checkpoint and every export of it)."""
    digest = hashlib.sha256(np.ascontiguousarray(w_avg, dtype=np.float32).tobytes()).hexdigest()
    return {"arch": cfg.arch, "img_resolution": cfg.img_resolution, "w_dim": cfg.w_dim, "num_ws": cfg.num_ws,
            "w_avg_sha256": digest}


def source_name(source: str | os.PathLike | None) -> str | None:
    """The name of the model file or folder a set came from, for its meta (no machine-specific path in a
    file that may ship with a model)."""
    return None if source is None else os.path.basename(os.fspath(source).rstrip(os.sep))


@dataclass(frozen=True)
class Directions:
    """K directions in W (see the module docstring)."""

    vectors: np.ndarray                 # [K, w_dim] float32, unit rows
    values: np.ndarray                  # [K] float32: eigenvalue (sefa), standard deviation (ganspace),
                                        # held-out accuracy (boundary)
    names: tuple[str, ...]              # [K] unique names ("sefa0", "pc3", "smile")
    kind: str                           # "sefa" | "ganspace" | "boundary"
    layers: tuple[int, ...] | None      # ws rows the directions belong to (sorted, unique); None: every row
    model: dict[str, Any] = field(default_factory=dict)   # model_identity() of the source model
    mean: np.ndarray | None = None      # GANSpace: the mean of W [w_dim] (the PCA's centre); None otherwise
    meta: dict[str, Any] = field(default_factory=dict)    # how it was made (convention, samples, seed, ...)

    def __post_init__(self) -> None:
        vectors = np.asarray(self.vectors)
        if vectors.ndim != 2 or not 1 <= vectors.shape[0] <= MAX_DIRECTIONS or vectors.shape[1] < 1:
            raise ValueError(f"vectors: expected [K, w_dim] with 1 <= K <= {MAX_DIRECTIONS}, got shape "
                             f"{list(vectors.shape)}")
        k, w_dim = vectors.shape
        vectors = _finite_float32(vectors, "vectors")
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
        if np.any(np.abs(norms - 1) > UNIT_TOLERANCE):
            raise ValueError(f"vectors: every row must have unit length; row {int(np.argmax(np.abs(norms - 1)))} "
                             f"has {float(norms[np.argmax(np.abs(norms - 1))]):.6g}")
        values = _finite_float32(np.asarray(self.values).reshape(-1), "values")
        if values.shape != (k,):
            raise ValueError(f"values: expected {k} values (one per direction), got {values.size}")
        names = tuple(self.names)
        if len(names) != k:
            raise ValueError(f"names: expected {k} names (one per direction), got {len(names)}")
        for n in names:
            if not isinstance(n, str) or not n.strip() or len(n) > MAX_NAME or n.isdigit():
                raise ValueError(f"names: each must be a non-empty string of at most {MAX_NAME} characters that "
                                 f"is not a number (numbers index the directions), got {n!r}")
        if len(set(names)) != k:
            raise ValueError(f"names: must be unique, {sorted({n for n in names if names.count(n) > 1})} repeat")
        if self.kind not in KINDS:
            raise ValueError(f"kind: must be one of {KINDS}, got {self.kind!r}")
        layers = None
        if self.layers is not None:
            layers = tuple(int(i) for i in self.layers)
            if not layers or any(i < 0 for i in layers) or list(layers) != sorted(set(layers)):
                raise ValueError(f"layers: expected sorted, unique ws row indices >= 0 (or None), got {list(layers)}")
        mean = None
        if self.mean is not None:
            mean = _finite_float32(np.asarray(self.mean).reshape(-1), "mean")
            if mean.shape != (w_dim,):
                raise ValueError(f"mean: expected [{w_dim}], got {mean.size} values")
        for name, value in (("model", self.model), ("meta", self.meta)):
            if not isinstance(value, dict):
                raise ValueError(f"{name}: expected a dict, got {type(value).__name__}")
        for name, value in (("vectors", vectors), ("values", values), ("names", names), ("layers", layers),
                            ("mean", mean)):
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def w_dim(self) -> int:
        return self.vectors.shape[1]

    def __repr__(self) -> str:
        rows = "all ws rows" if self.layers is None else f"ws rows {list(self.layers)}"
        return f"Directions({self.kind}, {len(self)} x w_dim {self.w_dim}, {rows}, names {list(self.names[:4])}...)"

    def index(self, key: int | str, name: str = "strengths") -> int:
        """A direction by index (0..K-1, also as a string of digits) or by name; ValueError naming `name`."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            i = int(key)
        elif isinstance(key, str) and key.isdigit():
            i = int(key)
        elif isinstance(key, str):
            if key not in self.names:
                raise ValueError(f"{name}: no direction named {key!r} (this {self.kind} set has "
                                 f"{_few(list(self.names))})")
            return self.names.index(key)
        else:
            raise ValueError(f"{name}: directions are chosen by index or name, got {type(key).__name__}")
        if not 0 <= i < len(self):
            raise ValueError(f"{name}: direction {i} is out of range (this set has {len(self)}: 0-{len(self) - 1})")
        return i

    def check_for(self, cfg: GeneratorConfig, name: str = "directions") -> None:
        """ValueError naming `name` unless these directions fit the model (w_dim, ws rows)."""
        if self.w_dim != cfg.w_dim:
            raise ValueError(f"{name}: vectors have w_dim {self.w_dim}, the model's w_dim is {cfg.w_dim}")
        if self.layers is not None and self.layers[-1] >= cfg.num_ws:
            raise ValueError(f"{name}: layers {list(self.layers)} go past the model's {cfg.num_ws} ws rows")

    # -- file -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the set as one safetensors file, atomically."""
        atomic_write_bytes(path, self.to_bytes())

    def to_bytes(self) -> bytes:
        """The bytes of the set's file (what `save` writes, `directions_from_bytes` reads)."""
        from safetensors.numpy import save

        tensors = {"vectors": self.vectors, "values": self.values}
        if self.mean is not None:
            tensors["mean"] = self.mean
        record = {"format_version": FORMAT_VERSION, "kind": self.kind, "names": list(self.names),
                  "layers": None if self.layers is None else list(self.layers), "model": self.model, "meta": self.meta}
        # One metadata entry: safetensors writes several in no fixed order, and the same set must give the same bytes.
        return save(tensors, metadata={FORMAT: json.dumps(record, sort_keys=True, default=str)})


def load_directions(path: str | os.PathLike) -> Directions:
    """Read a direction set written by `Directions.save`; ValueError naming the file and the problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no such direction set file {path!r}")
    with open(path, "rb") as f:
        data = f.read()
    return directions_from_bytes(data, path)


def directions_from_bytes(data: bytes, where: str) -> Directions:
    """A direction set from a file's bytes (already read, e.g. hash-checked from an exported folder)."""
    from safetensors.numpy import load

    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8: 8 + header_len]).get("__metadata__") or {}
    except Exception as e:  # safetensors raises its own error types for every malformed file
        raise ValueError(f"{where}: not a readable direction set (truncated or corrupt?): {e}") from None
    if FORMAT not in header:
        raise ValueError(f"{where}: a safetensors file, but not a direction set (no {FORMAT!r} entry in its header)")
    try:
        record = json.loads(header[FORMAT])
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: bad direction set header: {e}") from None
    if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
        version = record.get("format_version") if isinstance(record, dict) else None
        raise ValueError(f"{where}: direction set format_version {version!r} is not supported (this version reads "
                         f"{FORMAT_VERSION!r})")
    unknown = sorted(set(tensors) - {"vectors", "values", "mean"})
    if unknown or "vectors" not in tensors or "values" not in tensors:
        raise ValueError(f"{where}: a direction set holds vectors, values and (GANSpace) mean; found {sorted(tensors)}")
    try:
        if not isinstance(record.get("names"), list):
            raise ValueError("names: expected a JSON list")
        return Directions(vectors=tensors["vectors"], values=tensors["values"], names=tuple(record["names"]),
                          kind=record.get("kind"), layers=record.get("layers"), model=record.get("model") or {},
                          mean=tensors.get("mean"), meta=record.get("meta") or {})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: bad direction set: {e}") from None


# ----------------------------------------------------------------------------
# Edits: ws + sum of strength * vector on the set's rows


def check_strengths(directions: Directions, strengths: Any, name: str = "strengths") -> dict[int, float]:
    """{index or name: strength} -> {index: strength}; ValueError naming `name` for an unknown direction, one
    given twice, or a strength that is not a finite number of at most MAX_STRENGTH in size."""
    if not isinstance(strengths, Mapping):
        raise ValueError(f"{name}: expected a map {{direction index or name: strength}}, got "
                         f"{type(strengths).__name__}")
    out: dict[int, float] = {}
    for key, value in strengths.items():
        i = directions.index(key, name)
        if i in out:
            raise ValueError(f"{name}: direction {i} ({directions.names[i]!r}) is given twice")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name}: the strength of {key!r} must be a number, got {type(value).__name__}")
        s = float(value)
        if not math.isfinite(s) or abs(s) > MAX_STRENGTH:
            raise ValueError(f"{name}: the strength of {key!r} must be finite and at most {MAX_STRENGTH:g} in "
                             f"size, got {s}")
        out[i] = s
    return out


def edit_delta(directions: Directions, strengths: Mapping[int, float]) -> np.ndarray:
    """sum of strength * vector [w_dim] (float64 sum, float32 result) for checked {index: strength}."""
    delta = np.zeros(directions.w_dim, np.float64)
    for i, s in strengths.items():
        delta += s * directions.vectors[i].astype(np.float64)
    return delta.astype(np.float32)


def add_on_rows(ws: np.ndarray, rows: Sequence[int] | None, delta: np.ndarray) -> np.ndarray:
    """A float32 copy of ws [N, num_ws, w_dim] with delta [w_dim] added on the ws rows (None: every row)."""
    out = np.array(ws, dtype=np.float32)
    if rows is None:
        out += delta
    else:
        out[:, list(rows)] += delta
    return out


def pick_set(sets: Mapping[str, Directions] | None, set_name: object, name: str) -> Directions:
    """The model's direction set called set_name; ValueError naming `name` listing the sets there are."""
    if not sets or not isinstance(set_name, str) or set_name not in sets:
        have = ", ".join(repr(n) for n in sets or ()) or "none"
        raise ValueError(f"{name}: no direction set named {set_name!r} (this model has {have})")
    return sets[set_name]


def _finite_float32(x: np.ndarray, name: str) -> np.ndarray:
    return np.ascontiguousarray(as_float_array(x, name))


def _few(items: Sequence[str], n: int = 8) -> str:
    return ", ".join(repr(i) for i in items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
