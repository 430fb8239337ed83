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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

ARCHS = ("stylegan2", "stylegan1", "stylegan3")
# StyleGAN v1 numerics (models/stylegan1.py V1_NUMERICS): rosinality's PyTorch port, or NVIDIA's TensorFlow code.
V1_VARIANTS = ("rosinality", "nvidia")
SYNTHESIS_ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")
# Numeric precision a backend computes the synthesis in: float32 everywhere; float16 on CUDA (torch,
# TensorRT); bfloat16 on CPUs with bf16 instructions (OpenVINO). Inputs and outputs stay float32.
PRECISIONS = ("fp32", "fp16", "bf16")
LayerGroup = Literal["coarse", "middle", "fine"]
LAYER_GROUPS: tuple[LayerGroup, ...] = ("coarse", "middle", "fine")


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


def third_group(ws_index: int, num_ws: int) -> LayerGroup:
    """StyleGAN3's style groups: the ws rows in thirds, coarse and middle num_ws // 3 rows each, fine the rest.

    StyleGAN3 has no resolution pyramid (every layer but the last few runs at the same sampling
    rate), so the groups follow the layer order instead: 16 rows -> coarse 0-4, middle 5-9, fine 10-15,
    the mixing groups of the official fixtures.
    """
    third = num_ws // 3
    if ws_index < third:
        return "coarse"
    if ws_index < 2 * third:
        return "middle"
    return "fine"


def layer_group(resolution: int) -> LayerGroup:
    """The paper's style groups: coarse 4-8 px, middle 16-32 px, fine 64 px and up."""
    if resolution <= 8:
        return "coarse"
    if resolution <= 32:
        return "middle"
    return "fine"


MAX_CLASS_NAME = 200  # characters in one class name


def class_names_problem(names: object, c_dim: int) -> str | None:
    """Why `names` cannot name the classes of a c_dim model (None: they can): a tuple of c_dim distinct,
    non-empty strings of at most MAX_CLASS_NAME characters, or () for unnamed classes."""
    if not isinstance(names, tuple):
        return f"must be a tuple of strings, got {type(names).__name__}"
    if not names:
        return None
    if len(names) != c_dim:
        return f"has {len(names)} names for c_dim {c_dim}"
    for name in names:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CLASS_NAME:
            return f"each name must be a string of 1-{MAX_CLASS_NAME} characters, got {str(name)[:40]!r}"
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        return f"names must be distinct, {twice[0]!r} appears more than once"
    return None


@dataclass(frozen=True)
class StyleGAN3Layer:
    """One StyleGAN3 synthesis layer as the official SynthesisNetwork lays it out (sizes include the margin)."""

    name: str                   # official module name: L{idx}_{out size}_{out channels}
    is_torgb: bool              # the last layer: 1x1 modulated conv to image channels, no filters
    is_critically_sampled: bool  # one of the last num_critical layers (cutoff = sampling rate / 2)
    in_channels: int
    out_channels: int
    in_size: int                # input width = height, with the margin
    out_size: int               # output width = height, with the margin (the last two: img_resolution)
    in_sampling_rate: int       # samples per unit length of the input
    out_sampling_rate: int      # of the output (= out_size without the margin)
    in_cutoff: float            # f_c of the input
    out_cutoff: float           # f_c of the output
    in_half_width: float        # f_h: transition band half-width of the input
    out_half_width: float       # of the output


def stylegan3_layers(cfg: GeneratorConfig) -> tuple[float, float, int, int, list[StyleGAN3Layer]]:
    """The official geometric progression of cutoffs and stopbands (Karras et al. 2021, sec. 3.2 and F.1).

    -> (input sampling rate, input bandwidth, input channels, input size, the num_layers + 1 layers,
    ToRGB last). Float64 NumPy in the official order of operations, so the filters designed from
    these numbers are the official filters.
    """
    n = cfg.num_layers
    last_cutoff = cfg.img_resolution / 2                                  # f_{c,N}
    last_stopband = last_cutoff * cfg.last_stopband_rel                   # f_{t,N}
    exponents = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents         # f_c[i]
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents  # f_t[i]
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, cfg.img_resolution))))  # s[i]
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs     # f_h[i]
    sizes = sampling_rates + cfg.margin_size * 2
    sizes[-2:] = cfg.img_resolution
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = cfg.img_channels
    layers = []
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        layers.append(StyleGAN3Layer(
            name=f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}",
            is_torgb=idx == n,
            is_critically_sampled=idx >= n - cfg.num_critical,
            in_channels=int(channels[prev]), out_channels=int(channels[idx]),
            in_size=int(sizes[prev]), out_size=int(sizes[idx]),
            in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
        ))
    return float(sampling_rates[0]), float(cutoffs[0]), int(channels[0]), int(sizes[0]), layers


# ----------------------------------------------------------------------------
# The config


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator (the weights hold the rest)."""

    arch: str = "stylegan2"                     # network family: "stylegan2" | "stylegan1" | "stylegan3"
    z_dim: int = 512                            # input latent (Z) size
    w_dim: int = 512                            # intermediate latent (W) size
    c_dim: int = 0                              # class label size, 0 = unconditional
    class_names: tuple[str, ...] = field(       # conditional models: the name of class 0, 1, ... (from the
        default=(), compare=False)              # training data's labels); () = unnamed; never affects the network
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
    num_fp16_res: int = 0                       # highest resolutions trained in FP16 (informational;
                                                # StyleGAN3 networks are computed in float32 whatever it says)
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)  # low-pass FIR used for up-sampling
    use_noise: bool = True                      # per-layer noise inputs
    # StyleGAN v1 only (v1 ignores architecture, conv_clamp and resample_filter: its blur is [1, 2, 1]).
    fused_upsample_from: int | None = None      # v1: first resolution using a fused transposed conv (None = never)
    channels: tuple[int, ...] | None = None     # explicit channels per resolution 4, 8, ... (overrides the schedule)
    variant: str = "rosinality"                 # v1 numerics: "rosinality" (instance-norm eps 1e-5, conv bias before
                                                # the blur, no bias on the 4x4 constant) | "nvidia" (NVIDIA's TF code:
                                                # eps 1e-8, bias after the blur, the constant layer has a bias)
    # StyleGAN3 only: the official SynthesisNetwork / SynthesisLayer options, same names and defaults. Other
    # families must leave them at these defaults, and their JSON never holds them (old files round-trip
    # unchanged). StyleGAN3 ignores architecture, resample_filter and use_noise (it has no noise inputs);
    # its channels follow channel_base / 2 / cutoff, capped at channel_max.
    num_layers: int = 14                        # synthesis layers, not counting the Fourier input and ToRGB
    num_critical: int = 2                       # critically sampled layers at the end
    first_cutoff: float = 2.0                   # cutoff frequency of the first layer (f_{c,0})
    first_stopband: float = 2**2.1              # minimum stopband of the first layer (f_{t,0})
    last_stopband_rel: float = 2**0.3           # minimum stopband of the last layer, relative to its cutoff
    margin_size: int = 10                       # extra pixels computed on each side of the image
    output_scale: float = 0.25                  # the image is multiplied by this
    conv_kernel: int = 3                        # modulated conv kernel: 3 = stylegan3-t, 1 = -r (ToRGB: always 1)
    filter_size: int = 6                        # low-pass taps per factor of up/down-sampling
    lrelu_upsampling: int = 2                   # leaky ReLU runs at this multiple of the sampling rate
    use_radial_filters: bool = False            # radially symmetric down filters in non-critical layers (-r)
    magnitude_ema_beta: float = 0.999           # decay of the running input magnitude (training only)
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
        problem = class_names_problem(self.class_names, self.c_dim)
        need(problem is None, "class_names", problem or "")
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
        if self.arch == "stylegan1":
            need(self.variant in V1_VARIANTS, "variant", f"must be one of {V1_VARIANTS}, got {self.variant!r}")
        else:
            need(self.variant == V1_VARIANTS[0], "variant",
                 f"a StyleGAN v1 option; arch {self.arch!r} needs the default {V1_VARIANTS[0]!r}")
        if self.arch == "stylegan3":
            self._validate_stylegan3(need)
        else:
            for f in STYLEGAN3_FIELDS:
                need(getattr(self, f.name) == f.default, f.name,
                     f"a StyleGAN3 option; arch {self.arch!r} needs the default {f.default!r}")

    def _validate_stylegan3(self, need: Any) -> None:
        def is_int(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v: object) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        for name in ("embed_features", "layer_features", "channels", "fused_upsample_from"):
            need(getattr(self, name) is None, name, "not a StyleGAN3 option; must be None for arch 'stylegan3'")
        for name in ("num_layers", "conv_kernel", "filter_size", "lrelu_upsampling"):
            value = getattr(self, name)
            need(is_int(value) and value >= 1, name, f"must be an int >= 1, got {value!r}")
        need(self.num_layers <= STYLEGAN3_LIMITS["num_layers"], "num_layers",
             f"must be at most {STYLEGAN3_LIMITS['num_layers']}, got {self.num_layers}")
        need(is_int(self.num_critical) and 0 <= self.num_critical < self.num_layers, "num_critical",
             f"must be an int in [0, num_layers), got {self.num_critical!r}")
        need(is_int(self.margin_size) and self.margin_size >= 0, "margin_size",
             f"must be an int >= 0, got {self.margin_size!r}")
        for name in ("first_cutoff", "first_stopband", "last_stopband_rel", "output_scale"):
            value = getattr(self, name)
            need(is_num(value) and value > 0, name, f"must be a finite number > 0, got {value!r}")
        need(is_num(self.magnitude_ema_beta) and 0 <= self.magnitude_ema_beta <= 1, "magnitude_ema_beta",
             f"must be a number in [0, 1], got {self.magnitude_ema_beta!r}")
        need(isinstance(self.use_radial_filters, bool), "use_radial_filters",
             f"must be a bool, got {self.use_radial_filters!r}")
        rate, _, _, _, layers = stylegan3_layers(self)
        need(rate >= 1, "first_stopband", f"gives the first layers a sampling rate of {rate:g} (< 1)")
        need(all(layer.out_channels >= 1 for layer in layers), "channel_base",
             "gives a layer no channels (channel_base / 2 / cutoff rounds to 0)")

    # -- derived tables -------------------------------------------------------
    @property
    def resolution_log2(self) -> int:
        return int(math.log2(self.img_resolution))

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, self.resolution_log2 + 1)]

    @property
    def num_ws(self) -> int:
        """Per-layer latents: two per resolution from 4x4 up (StyleGAN2: convs + final toRGB).

        StyleGAN3: one for the Fourier input, one per layer and one for ToRGB (num_layers + 2).
        """
        if self.arch == "stylegan3":
            return self.num_layers + 2
        return 2 * self.resolution_log2 - 2

    def channels_at(self, resolution: int) -> int:
        if self.channels is not None:
            return int(self.channels[self.block_resolutions.index(resolution)])
        return min(self.channel_base // resolution, self.channel_max)

    @property
    def noise_resolutions(self) -> list[int]:
        """Resolution of each noise input, in forward order (one per synthesis convolution)."""
        if not self.use_noise or self.arch == "stylegan3":   # StyleGAN3 has no noise inputs
            return []
        if self.arch == "stylegan2":
            return [4] + [r for r in self.block_resolutions[1:] for _ in range(2)]
        return [r for r in self.block_resolutions for _ in range(2)]

    def layer_table(self) -> list[dict[str, Any]]:
        """Which ws row drives which resolution, and its style group (coarse / middle / fine).

        StyleGAN3: "resolution" is the sampling rate of what the row drives (row 0: the Fourier input,
        row i + 1: layer L{i}'s output), which is that layer's output size without the margin; groups
        are thirds of the rows (`third_group`).
        """
        if self.arch == "stylegan3":
            rate, _, _, _, layers = stylegan3_layers(self)
            rates = [int(rate)] + [layer.out_sampling_rate for layer in layers]
            return [{"index": i, "resolution": r, "group": third_group(i, self.num_ws)} for i, r in enumerate(rates)]
        rows = []
        for i in range(self.num_ws):
            res = layer_resolution(i)
            rows.append({"index": i, "resolution": res, "group": layer_group(res)})
        return rows

    def layers_in_group(self, group: LayerGroup) -> list[int]:
        return [row["index"] for row in self.layer_table() if row["group"] == group]

    def layer_indices(self, layers: int | str | Iterable[int]) -> int | str | Iterable[int]:
        """`layers` with the style groups named in a string ("coarse", "middle,fine", "coarse,9") replaced by
        their ws rows; anything else as it was (latents.check_layers checks the indices). ValueError naming
        `layers` for a group this model has no rows in."""
        if not isinstance(layers, str) or not any(g in layers for g in LAYER_GROUPS):
            return layers
        parts = []
        for token in (t.strip() for t in layers.split(",")):
            if token in LAYER_GROUPS:
                rows = self.layers_in_group(token)
                if not rows:
                    raise ValueError(f"layers: this {self.img_resolution} px model has no {token} layers "
                                     f"(coarse: 4-8 px, middle: 16-32 px, fine: 64 px and up)")
                parts.extend(str(i) for i in rows)
            else:
                parts.append(token)
        return ",".join(parts)

    # -- JSON round trip ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.arch != "stylegan3":   # at their defaults (validate): keep the other families' JSON as it was
            for f in STYLEGAN3_FIELDS:
                del d[f.name]
        if self.arch != "stylegan1":   # likewise the v1 variant
            del d["variant"]
        d["resample_filter"] = list(self.resample_filter)
        d["channels"] = None if self.channels is None else list(self.channels)
        if self.class_names:           # unnamed (and unconditional) models keep their JSON as it was
            d["class_names"] = list(self.class_names)
        else:
            del d["class_names"]
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
        if isinstance(d.get("class_names"), list):
            d["class_names"] = tuple(d["class_names"])
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


# The StyleGAN3-only fields, from num_layers to magnitude_ema_beta.
_FIELD_NAMES = [f.name for f in dataclasses.fields(GeneratorConfig)]
STYLEGAN3_FIELDS = tuple(dataclasses.fields(GeneratorConfig)[
    _FIELD_NAMES.index("num_layers"): _FIELD_NAMES.index("magnitude_ema_beta") + 1])


# ----------------------------------------------------------------------------
# Limits on the sizes a file may claim (checked before anything is allocated from them)

MAX_IMG_RESOLUTION = 1 << 14    # 16384 px; the largest published StyleGANs are 1024-2048 px
MAX_LATENT_DIM = 1 << 16        # z_dim, w_dim
MAX_C_DIM = 1 << 20             # class labels
MAX_IMG_CHANNELS = 64
# StyleGAN3 layer counts and sizes (the official networks: 14 layers, margin 10, kernel <= 3, 6 taps, 2x).
STYLEGAN3_LIMITS = {"num_layers": 256, "margin_size": MAX_IMG_RESOLUTION, "conv_kernel": 31, "filter_size": 256,
                    "lrelu_upsampling": 64, "channel_max": 1 << 16}
MAX_MAPPING_LAYERS = 256        # official networks: 2 (StyleGAN3) to 8
MAX_CHANNELS = 1 << 16          # channel_max and explicit channels (official: 512, StyleGAN3-R 1024)
MAX_CHANNEL_BASE = 1 << 24      # official: 16384-65536


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
    for name, limit in (("mapping_layers", MAX_MAPPING_LAYERS), ("channel_base", MAX_CHANNEL_BASE),
                        ("channel_max", MAX_CHANNELS)):
        value = getattr(cfg, name)
        if type(value) is not int:
            raise ValueError(f"{where}: config.{name} must be an int, got {value!r}")
        if value > limit:
            raise ValueError(f"{where}: config.{name} = {value} exceeds the limit of {limit}")
    if cfg.channels is not None and max(cfg.channels) > MAX_CHANNELS:
        raise ValueError(f"{where}: config.channels has {max(cfg.channels)}, more than the limit of {MAX_CHANNELS}")
    if cfg.arch == "stylegan3":
        for name, limit in STYLEGAN3_LIMITS.items():
            value = getattr(cfg, name)
            if value > limit:
                raise ValueError(f"{where}: config.{name} = {value} exceeds the limit of {limit}")


def min_weight_count(cfg: GeneratorConfig) -> int:
    """A lower bound on the weights (elements) of a generator for cfg, from the config alone (nothing built).

    Counts only what every family surely holds: mapping_layers dense layers at least m x m
    (m = the smallest of z_dim, w_dim, layer_features); StyleGAN1/2 per resolution r a 3x3
    convolution [c_r, c_r, 3, 3] and its noise constants [r, r]; StyleGAN3 each layer's
    [out, in, k, k] convolution (ToRGB not counted). A file that holds fewer weights than this
    cannot be the model its config claims, whatever else it holds.
    """
    m = min(cfg.z_dim, cfg.w_dim, cfg.layer_features or cfg.w_dim)
    total = cfg.mapping_layers * m * m
    if cfg.arch == "stylegan3":
        _, _, _, _, layers = stylegan3_layers(cfg)
        total += sum(layer.in_channels * layer.out_channels * cfg.conv_kernel**2
                     for layer in layers if not layer.is_torgb)
    else:
        total += sum(9 * cfg.channels_at(r) ** 2 for r in cfg.block_resolutions)
        total += sum(r * r for r in cfg.noise_resolutions)
    return total


def check_config_weights(cfg: GeneratorConfig, count: int, where: str, what: str = "weights") -> None:
    """ValueError unless `count` (the weights a file holds) reaches `min_weight_count(cfg)`: a config
    read from a file must describe the tensors in that file before anything is built from it."""
    need = min_weight_count(cfg)
    if count < need:
        raise ValueError(f"{where}: the config (mapping_layers {cfg.mapping_layers}, channel_base "
                         f"{cfg.channel_base}, channel_max {cfg.channel_max}, img_resolution {cfg.img_resolution}) "
                         f"needs at least {need} {what}, but the file holds {count}: the config does not "
                         f"describe the file's tensors")


# ----------------------------------------------------------------------------
# What `G.info` (and the server's GetModelInfo) answers


@dataclass(frozen=True)
class ModelInfo:
    arch: str                   # "stylegan2" | "stylegan1" | "stylegan3"
    z_dim: int
    w_dim: int
    c_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    layers: tuple[dict[str, Any], ...]  # config.layer_table(): ws index -> resolution, group
    class_names: tuple[str, ...] = ()  # conditional models: class index -> name (config.class_names)
    backend: str = ""           # which backend runs it
    device: str = ""            # where it runs
    precision: str = ""         # what it computes in: "fp32" | "fp16" | "bf16" (PRECISIONS)

    @classmethod
    def from_config(cls, cfg: GeneratorConfig, backend: str = "", device: str = "", precision: str = "") -> ModelInfo:
        return cls(arch=cfg.arch, z_dim=cfg.z_dim, w_dim=cfg.w_dim, c_dim=cfg.c_dim, num_ws=cfg.num_ws,
                   img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
                   layers=tuple(cfg.layer_table()), class_names=cfg.class_names, backend=backend, device=device,
                   precision=precision)

    def layers_in_group(self, group: LayerGroup) -> list[int]:
        return [row["index"] for row in self.layers if row["group"] == group]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = list(self.layers)
        return d
