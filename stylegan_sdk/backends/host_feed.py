"""What the CPU runtimes (ONNX Runtime, OpenVINO) share about an exported folder: its graphs' bytes and the
synthesis graph's host-side inputs. No runtime imported here."""

from __future__ import annotations

import os

import numpy as np

from ..config import GeneratorConfig
from ..formats.exported import (
    NOISE_GAIN_INPUT,
    TRANSFORM_INPUT,
    ExportedModel,
    has_input_transform,
    noise_input_names,
    onnx_uses_external_data,
)


def self_contained_graph(model: ExportedModel, graph: str) -> tuple[str, bytes]:
    """(path for messages, the graph's sha256-checked bytes); ValueError for a graph with external data."""
    name = model.graph_file(graph)
    where = os.path.join(model.folder, name)
    data = model.read_bytes(name)
    try:
        external = onnx_uses_external_data(data)
    except ValueError as e:
        raise ValueError(f"{where}: not a readable ONNX graph ({e})") from None
    if external:
        raise ValueError(f"{where}: the graph keeps tensors in external data files; exported graphs must be "
                         f"self-contained (re-export with stylegan export onnx)")
    return where, data


def mapping_feed(config: GeneratorConfig, z: np.ndarray, c: np.ndarray | None) -> dict[str, np.ndarray]:
    """The mapping graph's inputs: z, and c for a conditional model."""
    feed = {"z": np.ascontiguousarray(z, np.float32)}
    if config.c_dim > 0:
        feed["c"] = np.ascontiguousarray(c, np.float32)
    return feed


class SynthesisFeed:
    """The synthesis graph's inputs for one call: ws, then StyleGAN3's transform (identity if None) or the
    const-noise gain (per row, or one [1] for format_version "1" folders) and one noise image per
    convolution (zeros from one reused buffer per resolution)."""

    def __init__(self, config: GeneratorConfig, gain_per_row: bool = True) -> None:
        self.config = config
        self.gain_per_row = gain_per_row
        self._noise_names = noise_input_names(config)
        self._zeros: dict[int, np.ndarray] = {}

    def __call__(self, ws: np.ndarray, noise_mode: str, noise: list[np.ndarray] | None,
                 transform: np.ndarray | None) -> dict[str, np.ndarray]:
        n = ws.shape[0]
        feed = {"ws": np.ascontiguousarray(ws, np.float32)}
        if has_input_transform(self.config):
            feed[TRANSFORM_INPUT] = (np.ascontiguousarray(transform, np.float32) if transform is not None
                                     else np.repeat(np.eye(3, dtype=np.float32)[np.newaxis], n, axis=0))
            return feed
        gain = 1.0 if noise_mode == "const" else 0.0
        feed[NOISE_GAIN_INPUT] = np.full([n, 1] if self.gain_per_row else [1], gain, np.float32)
        for k, (name, res) in enumerate(zip(self._noise_names, self.config.noise_resolutions)):
            feed[name] = (np.ascontiguousarray(noise[k], np.float32) if noise_mode == "random" and noise is not None
                          else self._zero_noise(n, res))
        return feed

    def _zero_noise(self, n: int, res: int) -> np.ndarray:
        """Zero noise [n, 1, res, res]: a view of one buffer per resolution, grown to the largest batch seen."""
        buf = self._zeros.get(res)
        if buf is None or buf.shape[0] < n:
            buf = self._zeros[res] = np.zeros([n, 1, res, res], np.float32)
        return buf[:n]
