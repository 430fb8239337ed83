"""Our checkpoint format: one safetensors file whose JSON header carries the generator config.

    model.safetensors
      tensors       by parameter name: StyleGAN2 uses the official names (mapping.fc0.weight,
                    synthesis.b4.const, mapping.w_avg, ...), StyleGAN v1 our own (synthesis.b8.layer0.weight, ...)
      __metadata__  format = "stylegan-sdk.checkpoint", format_version = "1",
                    config = GeneratorConfig JSON, w_avg = JSON list (same numbers as mapping.w_avg),
                    metadata = free-form JSON (provenance, training stats)

No pickle anywhere: safetensors holds raw arrays, the header is JSON. Written atomically; read
without torch (NumPy), so `stylegan info` and the latent math work in a torch-free install.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import GeneratorConfig, check_config_sizes, check_config_weights
from .fileio import atomic_write_bytes

FORMAT = "stylegan-sdk.checkpoint"
FORMAT_VERSION = "1"
W_AVG_KEY = "mapping.w_avg"


@dataclass
class Checkpoint:
    config: GeneratorConfig
    tensors: dict[str, np.ndarray]                       # float32 weights by official name
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def w_avg(self) -> np.ndarray:
        return self.tensors[W_AVG_KEY]


def few(items: list[str], n: int = 6) -> str:
    """The first n items, comma-separated, and how many more (for one-line errors)."""
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def tensor_mismatches(found: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]],
                      noun: str = "tensors") -> list[str]:
    """What differs between tensors by name (anything with .shape) and the names and shapes expected:
    ["missing tensors a, b", "unexpected tensors c", "wrong shapes d [3] (expected [4])"], [] if none."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(f"{k} {list(found[k].shape)} (expected {list(expected[k])})"
                   for k in set(expected) & set(found) if tuple(found[k].shape) != tuple(expected[k]))
    problems = []
    if missing:
        problems.append(f"missing {noun} {few(missing)}")
    if unexpected:
        problems.append(f"unexpected {noun} {few(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes {few(wrong)}")
    return problems


# ----------------------------------------------------------------------------
# Writing


def save_checkpoint(
    path: str | os.PathLike,
    config: GeneratorConfig,
    tensors: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write config + weights atomically (temporary file in the same folder, fsync, rename)."""
    from safetensors.numpy import save

    arrays = {k: np.array(_to_numpy(v), dtype=np.float32, order="C") for k, v in tensors.items()}
    if W_AVG_KEY not in arrays:
        raise ValueError(f"tensors: missing {W_AVG_KEY!r}")
    bad = sorted(k for k, v in arrays.items() if not np.all(np.isfinite(v)))
    if bad:
        raise ValueError(f"tensors: NaN or Inf in {bad[:6]}")
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_json(),
        "w_avg": json.dumps(arrays[W_AVG_KEY].tolist()),
        "metadata": json.dumps(dict(metadata or {}), sort_keys=True, default=str),
    }
    atomic_write_bytes(path, save(arrays, metadata=header))


def _to_numpy(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor, without importing torch here
        v = v.detach().cpu().float().numpy()
    return np.asarray(v)


# ----------------------------------------------------------------------------
# Reading


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Cheap sniff: a safetensors file (8-byte little-endian header length, then a JSON object)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def read_header(path: str | os.PathLike) -> tuple[GeneratorConfig, dict[str, Any]]:
    """Config and metadata without reading the weights."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(path, framework="numpy") as f:
            header = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for every malformed file
        raise ValueError(f"{path}: not a readable stylegan-sdk checkpoint (truncated or corrupt?): {e}") from None
    return _parse_header(path, header)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint; every problem is a ValueError naming the file and the cause."""
    from safetensors.numpy import load

    path = _existing(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        tensors = load(data)
    except Exception as e:  # SafetensorError, or a header that is not JSON
        raise ValueError(f"{path}: not a readable stylegan-sdk checkpoint (truncated or corrupt?): {e}") from None
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8: 8 + header_len]).get("__metadata__") or {}
    config, metadata = _parse_header(path, header)
    # Before anything is built from the header's config: its sizes within the SDK's limits, and its
    # weights no more than the file holds (a 1.6 MB file must not describe a 10 GB network).
    check_config_sizes(config, path)
    check_config_weights(config, sum(int(v.size) for v in tensors.values()), path)

    for k, v in tensors.items():
        if v.dtype != np.float32:
            raise ValueError(f"{path}: tensor {k!r} has dtype {v.dtype}, expected float32")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{path}: NaN or Inf in tensor {k!r}")
    if W_AVG_KEY not in tensors:
        raise ValueError(f"{path}: missing tensor {W_AVG_KEY!r}")
    w_avg_header = np.asarray(json.loads(header["w_avg"]), np.float32)
    if w_avg_header.shape != (config.w_dim,) or not np.array_equal(w_avg_header, tensors[W_AVG_KEY]):
        raise ValueError(f"{path}: header w_avg does not match tensor {W_AVG_KEY!r} (mismatched file)")
    return Checkpoint(config=config, tensors=tensors, metadata=metadata)


def _existing(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no such checkpoint file {path!r}")
    return path


def _parse_header(path: str, header: Mapping[str, str]) -> tuple[GeneratorConfig, dict[str, Any]]:
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: a safetensors file, but not a stylegan-sdk checkpoint (no format={FORMAT!r})")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format_version {header.get('format_version')!r} "
                         f"is not supported (this version reads {FORMAT_VERSION!r})")
    for key in ("config", "w_avg"):
        if key not in header:
            raise ValueError(f"{path}: checkpoint header lacks {key!r}")
    try:
        config = GeneratorConfig.from_json(header["config"])
        metadata = json.loads(header.get("metadata", "{}"))
        w_avg = json.loads(header["w_avg"])
        if not isinstance(w_avg, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in w_avg
        ):
            raise ValueError("w_avg: expected a JSON list of numbers")
    except (ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: bad checkpoint header: {e}") from None
    return config, metadata
