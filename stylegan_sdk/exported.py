"""An exported model folder and its `model.json` (read without torch).

    DIR/mapping.onnx      z [batch, z_dim] (+ c [batch, c_dim]) -> w [batch, w_dim]
    DIR/synthesis.onnx    ws [batch, num_ws, w_dim], noise_const_gain [1], noise_k [noise_batch, 1, r_k, r_k]
                          -> img [batch, C, H, W]
    DIR/model.json        config, w_avg, layer table, noise inputs, graph I/O, opset, exporter
                          versions, sha256 of every file; TensorRT engines once built
    DIR/*.plan            TensorRT engines (export/to_trt.py), optional; model.json "engines" then holds
                          {"plans": {"mapping": ..., "synthesis": ...}, "fp16", "min_batch", "opt_batch",
                          "max_batch", "workspace_bytes", "tensorrt", "gpu", "timing_cache"}

Noise at run time, without re-export: each convolution adds
(noise_const_k * noise_const_gain + noise_k) * strength_k, so "const" feeds gain 1 and zero
noise [1, 1, r, r], "none" gain 0 and zero noise, "random" gain 0 and unit Gaussian noise [N, 1, r, r].
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import GeneratorConfig

FORMAT = "stylegan-sdk.exported"
FORMAT_VERSION = "1"
MANIFEST = "model.json"
MAPPING_FILE = "mapping.onnx"
SYNTHESIS_FILE = "synthesis.onnx"
NOISE_GAIN_INPUT = "noise_const_gain"


def noise_input_names(cfg: GeneratorConfig) -> list[str]:
    return [f"noise_{k}" for k in range(len(cfg.noise_resolutions))]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_exported_folder(path: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(os.fspath(path), MANIFEST))


@dataclass
class ExportedModel:
    folder: str
    manifest: dict[str, Any]
    config: GeneratorConfig
    w_avg: np.ndarray

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    @property
    def engines(self) -> dict[str, Any]:
        return self.manifest.get("engines") or {}


def read_exported(folder: str | os.PathLike, verify_hashes: bool = True) -> ExportedModel:
    """Read and check DIR/model.json; with verify_hashes, every listed file must match its sha256."""
    folder = os.fspath(folder)
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no {MANIFEST} in {folder!r} (not an exported model folder)")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable model.json: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a stylegan-sdk export (format must be {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {manifest.get('format_version')!r} not supported")
    config = GeneratorConfig.from_dict(manifest.get("config"))
    w_avg = np.asarray(manifest.get("w_avg"), np.float32)
    if w_avg.shape != (config.w_dim,) or not np.all(np.isfinite(w_avg)):
        raise ValueError(f"{path}: w_avg must be {config.w_dim} finite numbers")
    for name, entry in (manifest.get("files") or {}).items():
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"path: {file!r} listed in model.json is missing")
        if verify_hashes and sha256_file(file) != entry.get("sha256"):
            raise ValueError(f"{file}: sha256 does not match model.json (corrupt or modified file)")
    return ExportedModel(folder=folder, manifest=manifest, config=config, w_avg=w_avg)


def write_manifest(folder: str, manifest: dict[str, Any]) -> None:
    """(Re)write model.json atomically, with fresh sha256 sums of the files it lists."""
    from .fileio import atomic_write_bytes

    for name, entry in manifest.get("files", {}).items():
        entry["sha256"] = sha256_file(os.path.join(folder, name))
        entry["bytes"] = os.path.getsize(os.path.join(folder, name))
    atomic_write_bytes(os.path.join(folder, MANIFEST), json.dumps(manifest, indent=1).encode())
