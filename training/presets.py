"""Training options: one typed dataclass (saved as training_options.json in the run folder) + presets.

Where a value comes from, lowest to highest priority:

    TrainingOptions defaults  <  the preset (--cfg)  <  options given on the command line

Presets (`--cfg`):

    auto        stylegan2: NVlabs' "auto" heuristics from the resolution and process count (batch,
                gamma = 0.0002 * res^2 / batch, EMA, channels, 2 mapping layers); stylegan1: the
                paper's v1 settings with the same batch heuristic
    cpu         small networks that train on a CPU in hours at 16-64 px (both families)
    stylegan2   NVlabs' StyleGAN2 config F at 1024 px (batch 32, gamma 10, 8 mapping layers)
    paper256 / paper512 / paper1024 / cifar   the settings of the StyleGAN2-ADA paper tables
    stylegan1   StyleGAN v1 as in the paper (FFHQ): progressive growing 600 + 600 kimg per
                resolution, lr 0.001, R1 gamma 10, non-lazy R1, 90 % mixing, EMA 10 kimg

Deviations from the papers that keep the loop simple are listed in training/loop.py.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

ARCHS = ("stylegan2", "stylegan1")
G_ARCHITECTURES = ("orig", "skip", "resnet")
D_ARCHITECTURES = ("orig", "skip", "resnet")
AUGS = ("noaug", "ada", "fixed")    # --aug: off | adaptive p | p fixed at --aug-p (training/augment.py)
OPTIONS_FILE = "training_options.json"


@dataclass
class TrainingOptions:
    # -- data and output --------------------------------------------------------------------
    data: str = ""                          # folder or zip of images (+ dataset.json labels)
    outdir: str = ""                        # run folder: checkpoints, training state, grids, logs
    arch: str = "stylegan2"                 # "stylegan2" | "stylegan1" (progressive growing)
    cfg: str = "auto"                       # preset the defaults below come from (PRESETS)
    resolution: int = 0                     # training resolution (from the data when not given)
    mirror: bool = False                    # x-flip augmentation (doubles the data set)
    aug: str = "noaug"                      # D augmentation (training/augment.py): noaug | ada (adaptive p) | fixed
    aug_p: float = 0.0                      # augmentation probability: --aug fixed's p, --aug ada's starting p
    ada_target: float = 0.6                 # --aug ada: the r_t = E[sign(D(real))] it holds
    ada_kimg: float = 500.0                 # --aug ada: kimg over which p could move by 1
    cond: bool = True                       # class-conditional when the data has labels
    background: str = "white"               # colour under transparent pixels
    channels: str = "auto"                  # "auto" | "1" | "3" image channels
    max_images: int | None = None           # train on the first N images only (None = all)
    # -- length, batch, seed ----------------------------------------------------------------
    kimg: float = 25000.0                   # training length in thousands of real images shown to D
    batch: int = 32                         # global batch (all processes together)
    batch_gpu: int | None = None            # per-process micro-batch, gradients accumulate (None = batch / processes)
    seed: int = 0                           # weights, latents, noise and data order
    max_minutes: float | None = None        # stop after the first step past this many minutes of this process's
                                            # training (a snapshot and state are written); None = no limit
    init_from: str | None = None            # our generator checkpoint whose weights start G, G_ema (D: fresh)
    d_warmup_kimg: float = 0.0              # kimg at the start in which only D trains (G held), e.g. after init_from
    # -- networks ---------------------------------------------------------------------------
    z_dim: int = 512                        # input latent size
    w_dim: int = 512                        # intermediate latent size
    map_layers: int = 8                     # mapping network depth
    channel_base: int = 32768               # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512                  # cap on channels (G and D)
    g_architecture: str = "skip"            # StyleGAN2 G output: orig | skip | resnet
    d_architecture: str = "resnet"          # StyleGAN2 D: orig | skip | resnet
    mbstd_group: int = 4                    # minibatch-stddev group size (0 = whole batch)
    mbstd_by_class: bool = False            # conditional: every minibatch-stddev group holds one class
    conv_clamp: float | None = None         # clamp conv outputs (StyleGAN2; NVlabs uses 256 with FP16)
    # -- losses and optimisers --------------------------------------------------------------
    glr: float = 0.002                      # G learning rate (Adam betas 0, 0.99, eps 1e-8)
    dlr: float = 0.002                      # D learning rate
    gamma: float = 10.0                     # R1 weight
    pl_weight: float = 2.0                  # path length regularisation weight (0 = off; v1: off)
    pl_batch_shrink: int = 2                # path length batch = batch / this
    pl_decay: float = 0.01                  # decay of the running mean path length
    style_mixing: float = 0.9               # probability of mixing two latents in a G pass
    g_reg_interval: int = 4                 # lazy regularisation: G reg every N steps (1 = every step, not lazy)
    d_reg_interval: int = 16                # lazy regularisation: R1 every N steps (1 = every step, not lazy)
    ema_kimg: float = 10.0                  # half-life of the G EMA in kimg
    ema_rampup: float | None = None         # EMA ramp-up: half-life <= this * images seen (None = off)
    # -- StyleGAN v1 progressive growing ----------------------------------------------------
    lod_training_kimg: float = 600.0        # kimg at each resolution once faded in
    lod_transition_kimg: float = 600.0      # kimg of each fade-in (alpha 0 -> 1)
    # -- snapshots and logs -----------------------------------------------------------------
    kimg_per_tick: float = 4.0              # status line / statistics interval
    snap: int = 50                          # ticks between snapshots (checkpoint, state, grid, metrics)
    grid: str = "8x4"                       # sample grid COLSxROWS; cell i is seed i (stylegan generate --seeds)
    keep_states: int = 2                    # training states kept in the run folder (the newest N)
    metrics: list[str] = field(default_factory=list)  # evaluated at every snapshot, e.g. ["fid50k_full"]
    feature_weights: str | None = None      # folder of metric network weights (None: env var / cache)
    device: str = "auto"                    # "auto" | "cpu" | "cuda"

    # -- checks ----------------------------------------------------------------------------
    def validate(self, world_size: int = 1) -> None:
        """ValueError with one line naming the option for anything out of range."""

        def need(cond: bool, name: str, why: str) -> None:
            if not cond:
                raise ValueError(f"--{name.replace('_', '-')}: {why}")

        need(self.arch in ARCHS, "arch", f"must be one of {ARCHS}, got {self.arch!r}")
        need(self.resolution >= 4 and self.resolution & (self.resolution - 1) == 0, "resolution",
             f"must be a power of two >= 4, got {self.resolution}")
        need(self.kimg > 0, "kimg", f"must be > 0, got {self.kimg}")
        need(self.batch >= 1, "batch", f"must be >= 1, got {self.batch}")
        need(self.batch % world_size == 0, "batch", f"{self.batch} is not divisible by the {world_size} processes")
        local = self.batch // world_size
        if self.batch_gpu is not None:
            need(1 <= self.batch_gpu <= local and local % self.batch_gpu == 0, "batch_gpu",
                 f"must divide the per-process batch {local}, got {self.batch_gpu}")
        for name in ("z_dim", "w_dim", "map_layers", "channel_base", "channel_max", "pl_batch_shrink",
                     "g_reg_interval", "d_reg_interval", "snap", "keep_states"):
            need(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        need(self.g_architecture in G_ARCHITECTURES, "g_architecture", f"must be one of {G_ARCHITECTURES}")
        need(self.d_architecture in D_ARCHITECTURES, "d_architecture", f"must be one of {D_ARCHITECTURES}")
        need(self.mbstd_group >= 0, "mbstd_group", f"must be >= 0, got {self.mbstd_group}")
        for name in ("glr", "dlr", "ema_kimg", "kimg_per_tick"):
            need(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        need(self.max_minutes is None or self.max_minutes >= 0, "max_minutes", f"must be >= 0, got {self.max_minutes}")
        for name in ("gamma", "pl_weight", "lod_training_kimg", "lod_transition_kimg", "d_warmup_kimg"):
            need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        need(0 <= self.style_mixing <= 1, "style_mixing", f"must be in [0, 1], got {self.style_mixing}")
        need(self.aug in AUGS, "aug", f"must be one of {AUGS}, got {self.aug!r}")
        need(0 <= self.aug_p <= 1, "aug_p", f"must be in [0, 1], got {self.aug_p}")
        need(self.aug != "fixed" or self.aug_p > 0, "aug_p", "--aug fixed needs a probability > 0")
        need(0 < self.ada_target < 1, "ada_target", f"must be in (0, 1), got {self.ada_target}")
        need(self.ada_kimg > 0, "ada_kimg", f"must be > 0, got {self.ada_kimg}")
        need(0 < self.pl_decay <= 1, "pl_decay", f"must be in (0, 1], got {self.pl_decay}")
        need(self.ema_rampup is None or self.ema_rampup > 0, "ema_rampup", "must be > 0 (or none)")
        need(self.channels in ("auto", "1", "3"), "channels", f"must be auto, 1 or 3, got {self.channels!r}")
        cols, rows = self.grid_size
        need(cols >= 1 and rows >= 1, "grid", f"must be COLSxROWS, got {self.grid!r}")
        need(self.d_warmup_kimg < self.kimg, "d_warmup_kimg",
             f"must be below --kimg {self.kimg:g}, got {self.d_warmup_kimg:g}")
        need(self.init_from is None or self.arch == "stylegan2", "init_from",
             "starts a stylegan2 run only (a v1 run grows from 4x4)")
        if self.arch == "stylegan1":
            need(self.lod_training_kimg > 0 or self.lod_transition_kimg > 0, "lod_training_kimg",
                 "progressive growing needs lod_training_kimg or lod_transition_kimg > 0")

    @property
    def grid_size(self) -> tuple[int, int]:
        try:
            cols, rows = (int(v) for v in self.grid.lower().split("x"))
        except ValueError:
            return 0, 0
        return cols, rows

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"training options: unknown field(s) {unknown}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# ----------------------------------------------------------------------------
# Presets: field overrides; "auto" is computed


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(
        z_dim=128, w_dim=128, map_layers=2, channel_base=4096, channel_max=128, batch=16, mbstd_group=4,
        glr=0.0025, dlr=0.0025, ema_kimg=5.0, ema_rampup=0.05, kimg=500.0, kimg_per_tick=1.0, snap=10,
        lod_training_kimg=20.0, lod_transition_kimg=20.0,
    ),
    "stylegan2": dict(
        batch=32, mbstd_group=4, channel_base=32768, glr=0.002, dlr=0.002, gamma=10.0, ema_kimg=10.0,
        ema_rampup=None, map_layers=8, kimg=25000.0,
    ),
    "paper256": dict(
        batch=64, mbstd_group=8, channel_base=16384, glr=0.0025, dlr=0.0025, gamma=1.0, ema_kimg=20.0,
        ema_rampup=None, map_layers=8, kimg=25000.0,
    ),
    "paper512": dict(
        batch=64, mbstd_group=8, channel_base=32768, glr=0.0025, dlr=0.0025, gamma=0.5, ema_kimg=20.0,
        ema_rampup=None, map_layers=8, kimg=25000.0,
    ),
    "paper1024": dict(
        batch=32, mbstd_group=4, channel_base=32768, glr=0.002, dlr=0.002, gamma=2.0, ema_kimg=10.0,
        ema_rampup=None, map_layers=8, kimg=25000.0,
    ),
    "cifar": dict(
        batch=64, mbstd_group=32, channel_base=32768, glr=0.0025, dlr=0.0025, gamma=0.01, ema_kimg=500.0,
        ema_rampup=0.05, map_layers=2, kimg=100000.0, pl_weight=0.0, style_mixing=0.0, d_architecture="orig",
    ),
    "stylegan1": dict(
        batch=32, mbstd_group=4, channel_base=16384, glr=0.001, dlr=0.001, gamma=10.0, ema_kimg=10.0,
        ema_rampup=None, map_layers=8, kimg=25000.0, lod_training_kimg=600.0, lod_transition_kimg=600.0,
    ),
}
# StyleGAN v1 has no path length regularisation and applies R1 at every step.
V1_FIXED = dict(pl_weight=0.0, g_reg_interval=1, d_reg_interval=1)


def auto_preset(arch: str, resolution: int, world_size: int) -> dict[str, Any]:
    """NVlabs' "auto" config: scales batch, gamma, EMA and channels with the resolution."""
    batch = max(min(world_size * min(4096 // resolution, 32), 64), world_size)
    d = dict(
        batch=batch,
        mbstd_group=min(batch // world_size, 4),
        channel_base=32768 if resolution >= 512 else 16384,
        glr=0.002 if resolution >= 1024 else 0.0025,
        dlr=0.002 if resolution >= 1024 else 0.0025,
        gamma=0.0002 * resolution**2 / batch,
        ema_kimg=batch * 10 / 32,
        ema_rampup=0.05,
        map_layers=2,
        kimg=25000.0,
    )
    if arch == "stylegan1":
        d.update(PRESETS["stylegan1"], batch=batch, mbstd_group=d["mbstd_group"], ema_kimg=d["ema_kimg"])
    return d


def preset_values(cfg: str, arch: str, resolution: int, world_size: int) -> dict[str, Any]:
    if cfg == "auto":
        values = auto_preset(arch, resolution, world_size)
    elif cfg in PRESETS:
        values = dict(PRESETS[cfg])
    else:
        raise ValueError(f"--cfg: unknown preset {cfg!r} (choose from {['auto', *PRESETS]})")
    if cfg == "stylegan1" and arch != "stylegan1":
        raise ValueError("--cfg: the stylegan1 preset is for --arch stylegan1")
    if arch == "stylegan1":
        values.update(V1_FIXED)
    return values


def resolve_options(given: dict[str, Any], resolution: int, world_size: int) -> TrainingOptions:
    """Defaults < preset < the options given (None values count as not given)."""
    given = {k: v for k, v in given.items() if v is not None}
    arch = given.get("arch", TrainingOptions.arch)
    cfg = given.get("cfg", TrainingOptions.cfg)
    values = preset_values(cfg, arch, resolution, world_size)
    values.update(given)
    values["resolution"] = resolution
    return TrainingOptions.from_dict(values)


# Options that may differ when a run is resumed (everything else must match the saved run).
# D's augmentation may be switched on (or tuned) for a run that started to overfit, and class-pure
# minibatch-stddev groups for a conditional run whose classes collapsed.
RESUMABLE_CHANGES = {"data", "kimg", "max_minutes", "kimg_per_tick", "snap", "grid", "keep_states", "metrics",
                     "feature_weights", "device", "aug", "aug_p", "ada_target", "ada_kimg", "mbstd_by_class"}
