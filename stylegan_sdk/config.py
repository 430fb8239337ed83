"""The one description of a generator: a typed dataclass saved beside the weights.

Whatever a model came from (our training, an official NVlabs pickle, a rosinality checkpoint), after
import it is described by a `GeneratorConfig`. The config rebuilds the network, is written into our
checkpoint header and into an exported folder's `model.json`, and answers `G.info`.

Plain Python and NumPy only: the client and the ONNX Runtime server read configs without torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

ARCHS = ("stylegan2", "stylegan1")
SYNTHESIS_ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")
LayerGroup = Literal["coarse", "middle", "fine"]


# ----------------------------------------------------------------------------
# Small pure helpers


def is_power_of_two(n: int) -> bool:
    return isinstance(n, int) and n >= 4 and (n & (n - 1)) == 0


def layer_resolution(ws_index: int) -> int:
    """Resolution a ws row drives: two rows per resolution, starting at 4x4 (both families).

    In StyleGAN2 row 2k+1 also feeds the toRGB of the previous block; naming it after its
    convolution keeps the paper's coarse (4-8), middle (16-32) and fine (64+) split.
    """
    return 4 * 2 ** (ws_index // 2)


def layer_group(resolution: int) -> LayerGroup:
    """The paper's style groups: coarse 4-8 px, middle 16-32 px, fine 64 px and up."""
    if resolution <= 8:
        return "coarse"
    if resolution <= 32:
        return "middle"
    return "fine"


# ----------------------------------------------------------------------------
# The config


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator (the weights hold the rest)."""

    arch: str = "stylegan2"                     # network family: "stylegan2" | "stylegan1"
    z_dim: int = 512                            # input latent (Z) size
    w_dim: int = 512                            # intermediate latent (W) size
    c_dim: int = 0                              # class label size, 0 = unconditional
    img_resolution: int = 1024                  # output resolution (power of two)
    img_channels: int = 3                       # output channels (3 = RGB, 1 = gray)
    # Mapping network.
    mapping_layers: int = 8                     # fully connected layers in the mapping network
    mapping_lr_multiplier: float = 0.01         # learning-rate multiplier of the mapping layers
    embed_features: int | None = None           # class embedding size (None = w_dim)
    layer_features: int | None = None           # hidden mapping width (None = w_dim)
    # Synthesis network.
    channel_base: int = 32768                   # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512                      # cap on channels per layer
    architecture: str = "skip"                  # StyleGAN2 output/residual style: "orig" | "skip" | "resnet"
    conv_clamp: float | None = None             # clamp conv outputs to +-conv_clamp (None = off)
    num_fp16_res: int = 0                       # highest resolutions trained in FP16 (informational)
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)  # low-pass FIR used for up-sampling
    use_noise: bool = True                      # per-layer noise inputs
    # StyleGAN v1 only (v1 ignores architecture, conv_clamp and resample_filter: its blur is [1, 2, 1]).
    fused_upsample_from: int | None = None      # v1: first resolution using a fused transposed conv (None = never)
    channels: tuple[int, ...] | None = None     # explicit channels per resolution 4, 8, ... (overrides the schedule)
    # Free-form provenance (where the weights came from); never affects the network.
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    # -- checks ---------------------------------------------------------------
    def validate(self) -> None:
        def need(cond: bool, name: str, why: str) -> None:
            if not cond:
                raise ValueError(f"config.{name}: {why}")

        need(self.arch in ARCHS, "arch", f"must be one of {ARCHS}, got {self.arch!r}")
        for name in ("z_dim", "w_dim", "img_channels", "mapping_layers"):
            value = getattr(self, name)
            need(isinstance(value, int) and value > 0, name, f"must be a positive int, got {value!r}")
        need(isinstance(self.c_dim, int) and self.c_dim >= 0, "c_dim", f"must be an int >= 0, got {self.c_dim!r}")
        need(is_power_of_two(self.img_resolution), "img_resolution",
             f"must be a power of two >= 4, got {self.img_resolution!r}")
        need(self.architecture in SYNTHESIS_ARCHITECTURES, "architecture",
             f"must be one of {SYNTHESIS_ARCHITECTURES}, got {self.architecture!r}")
        need(self.channel_base > 0 and self.channel_max > 0, "channel_base", "channel_base and channel_max must be > 0")
        need(self.conv_clamp is None or self.conv_clamp > 0, "conv_clamp", "must be None or > 0")
        need(math.isfinite(self.mapping_lr_multiplier) and self.mapping_lr_multiplier > 0,
             "mapping_lr_multiplier", "must be a finite number > 0")
        if self.channels is not None:
            need(len(self.channels) == len(self.block_resolutions), "channels",
                 f"needs one entry per resolution {self.block_resolutions}, got {len(self.channels)}")

    # -- derived tables -------------------------------------------------------
    @property
    def resolution_log2(self) -> int:
        return int(math.log2(self.img_resolution))

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, self.resolution_log2 + 1)]

    @property
    def num_ws(self) -> int:
        """Per-layer latents: two per resolution from 4x4 up (StyleGAN2: convs + final toRGB)."""
        return 2 * self.resolution_log2 - 2

    def channels_at(self, resolution: int) -> int:
        if self.channels is not None:
            return int(self.channels[self.block_resolutions.index(resolution)])
        return min(self.channel_base // resolution, self.channel_max)

    @property
    def noise_resolutions(self) -> list[int]:
        """Resolution of each noise input, in forward order (one per synthesis convolution)."""
        if not self.use_noise:
            return []
        if self.arch == "stylegan2":
            return [4] + [r for r in self.block_resolutions[1:] for _ in range(2)]
        return [r for r in self.block_resolutions for _ in range(2)]

    def layer_table(self) -> list[dict[str, Any]]:
        """Which ws row drives which resolution, and its style group (coarse / middle / fine)."""
        rows = []
        for i in range(self.num_ws):
            res = layer_resolution(i)
            rows.append({"index": i, "resolution": res, "group": layer_group(res)})
        return rows

    def layers_in_group(self, group: LayerGroup) -> list[int]:
        return [row["index"] for row in self.layer_table() if row["group"] == group]

    # -- JSON round trip ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["resample_filter"] = list(self.resample_filter)
        d["channels"] = None if self.channels is None else list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        if not isinstance(d, dict):
            raise ValueError(f"config: expected a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config: unknown field(s) {unknown}")
        d = dict(d)
        if d.get("resample_filter") is not None:
            d["resample_filter"] = tuple(int(v) for v in d["resample_filter"])
        if d.get("channels") is not None:
            d["channels"] = tuple(int(v) for v in d["channels"])
        try:
            return cls(**d)
        except TypeError as e:
            raise ValueError(f"config: {e}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GeneratorConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"config: not valid JSON ({e})") from None
        return cls.from_dict(d)


# ----------------------------------------------------------------------------
# Limits on the sizes a file may claim (checked before anything is allocated from them)

MAX_IMG_RESOLUTION = 1 << 14    # 16384 px; the largest published StyleGANs are 1024-2048 px
MAX_LATENT_DIM = 1 << 16        # z_dim, w_dim
MAX_C_DIM = 1 << 20             # class labels
MAX_IMG_CHANNELS = 64


def check_config_sizes(cfg: GeneratorConfig, where: str = "config") -> None:
    """The sizes of a config read from a file are plain ints (not bools) within the SDK's limits.

    `validate` only needs them positive; a model file could still claim 2**30 px and have the loader
    allocate noise maps from it. ValueError naming `where` and the field, one line.
    """
    limits = {"z_dim": MAX_LATENT_DIM, "w_dim": MAX_LATENT_DIM, "c_dim": MAX_C_DIM,
              "img_resolution": MAX_IMG_RESOLUTION, "img_channels": MAX_IMG_CHANNELS}
    for name, limit in limits.items():
        value = getattr(cfg, name)
        if type(value) is not int:
            raise ValueError(f"{where}: config.{name} must be an int, got {value!r}")
        if value > limit:
            raise ValueError(f"{where}: config.{name} = {value} exceeds the limit of {limit}")


# ----------------------------------------------------------------------------
# What `G.info` (and the server's GetModelInfo) answers


@dataclass(frozen=True)
class ModelInfo:
    arch: str                   # "stylegan2" | "stylegan1"
    z_dim: int
    w_dim: int
    c_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    layers: tuple[dict[str, Any], ...]  # config.layer_table(): ws index -> resolution, group
    backend: str = ""           # which backend runs it
    device: str = ""            # where it runs

    @classmethod
    def from_config(cls, cfg: GeneratorConfig, backend: str = "", device: str = "") -> ModelInfo:
        return cls(arch=cfg.arch, z_dim=cfg.z_dim, w_dim=cfg.w_dim, c_dim=cfg.c_dim, num_ws=cfg.num_ws,
                   img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
                   layers=tuple(cfg.layer_table()), backend=backend, device=device)

    def layers_in_group(self, group: LayerGroup) -> list[int]:
        return [row["index"] for row in self.layers if row["group"] == group]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = list(self.layers)
        return d
