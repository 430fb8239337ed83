"""StyleGAN2 generator (Karras et al. 2020, arXiv 1912.04958), number-for-number with NVlabs'.

Module and parameter names follow the official stylegan2-ada-pytorch networks, so an official
`G.state_dict()` loads as it is: `mapping.fc0.weight`, `synthesis.b4.conv1.affine.weight`,
`synthesis.b8.conv0.noise_const`, `mapping.w_avg`, ...

Differences from the official module, none of which changes a number beyond float rounding:
- the mapping network returns one w per sample [N, w_dim]; broadcasting to num_ws and truncation
  live in NumPy above the backends (`stylegan_sdk.latents`);
- the modulated convolution is never a grouped convolution (see `layers.modulated_conv2d`);
- random noise can be given explicitly, per layer, so every backend draws the same images.
"""

from __future__ import annotations

import math

import torch

from ..config import GeneratorConfig
from .layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    assert_shape,
    bias_act,
    default_gain,
    modulated_conv2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)

# ----------------------------------------------------------------------------
# Mapping network: z (+ class embedding) -> w


class MappingNetwork(torch.nn.Module):
    def __init__(
        self,
        z_dim: int,                         # input latent size
        c_dim: int,                         # class label size, 0 = none
        w_dim: int,                         # output latent size
        num_layers: int = 8,                # fully connected layers
        embed_features: int | None = None,  # class embedding width (None = w_dim)
        layer_features: int | None = None,  # hidden width (None = w_dim)
        lr_multiplier: float = 0.01,        # learning-rate multiplier of the fc layers
        w_avg_beta: float = 0.995,          # decay of the running average of w (training)
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu",
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, update_w_avg: bool = False) -> torch.Tensor:
        # Normalise and concatenate the inputs.
        x = None
        if self.z_dim > 0:
            assert_shape(z, [None, self.z_dim])
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            assert c is not None, "conditional mapping needs c"
            assert_shape(c, [None, self.c_dim])
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        assert x is not None
        # Main layers.
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        # Track the average w while training.
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        return x  # [N, w_dim]


# ----------------------------------------------------------------------------
# Synthesis layers


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution (+ optional 2x up-sampling), noise, bias, leaky ReLU, clamp."""

    def __init__(
        self,
        in_channels: int,                       # input channels
        out_channels: int,                      # output channels
        w_dim: int,                             # latent size
        resolution: int,                        # output resolution
        kernel_size: int = 3,                   # convolution kernel width
        up: int = 1,                            # up-sampling factor (1 or 2)
        use_noise: bool = True,                 # add per-pixel noise
        resample_filter: tuple[int, ...] = (1, 3, 3, 1),  # low-pass filter taps
        conv_clamp: float | None = None,        # clamp the output to +-conv_clamp
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = default_gain("lrelu")
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self,
        x: torch.Tensor,                    # [N, I, H, W]
        w: torch.Tensor,                    # [N, w_dim]
        noise_mode: str = "const",          # "const" | "random" | "none"
        noise: torch.Tensor | None = None,  # [N, 1, res, res] unit noise for "random" (None: draw it)
        gain: float = 1.0,
    ) -> torch.Tensor:
        styles = self.affine(w)  # [N, I]
        n_scaled = None
        if self.use_noise and noise_mode == "random":
            if noise is None:
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            n_scaled = noise * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            n_scaled = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=n_scaled, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act="lrelu", gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(
        self,
        in_channels: int,                   # input channels
        out_channels: int,                  # image channels
        w_dim: int,                         # latent size
        conv_clamp: float | None = None,    # clamp the output to +-conv_clamp
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


# ----------------------------------------------------------------------------
# One resolution of the synthesis network


class SynthesisBlock(torch.nn.Module):
    def __init__(
        self,
        in_channels: int,                   # input channels, 0 = the first (4x4 constant) block
        out_channels: int,                  # output channels
        w_dim: int,                         # latent size
        resolution: int,                    # this block's resolution
        img_channels: int,                  # image channels
        is_last: bool,                      # last block (always has toRGB)
        architecture: str = "skip",         # "orig" | "skip" | "resnet"
        resample_filter: tuple[int, ...] = (1, 3, 3, 1),  # low-pass filter taps
        conv_clamp: float | None = None,    # clamp conv outputs
        use_noise: bool = True,             # per-layer noise
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.is_last = is_last
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        layer_args = dict(w_dim=w_dim, resolution=resolution, resample_filter=resample_filter,
                          conv_clamp=conv_clamp, use_noise=use_noise)
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_args)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_args)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(
        self,
        x: torch.Tensor | None,             # [N, I, H/2, W/2] features (None for the first block)
        img: torch.Tensor | None,           # [N, C, H/2, W/2] image so far (skip architecture)
        ws: torch.Tensor,                   # [N, num_conv + num_torgb, w_dim]
        noise_mode: str = "const",
        noise: list[torch.Tensor | None] | None = None,  # per-conv unit noise (random mode)
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_iter = iter(ws.unbind(dim=1))
        noise_iter = iter(noise if noise is not None else [None] * self.num_conv)
        # Input.
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        assert x is not None
        # Main layers.
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), noise_mode, next(noise_iter))
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode, next(noise_iter))
            x = self.conv1(x, next(w_iter), noise_mode, next(noise_iter), gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_mode, next(noise_iter))
            x = self.conv1(x, next(w_iter), noise_mode, next(noise_iter))
        # ToRGB.
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter)).to(torch.float32)
            img = img + y if img is not None else y
        return x, img


# ----------------------------------------------------------------------------
# Synthesis network: per-layer ws -> image


class SynthesisNetwork(torch.nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim = cfg.w_dim
        self.img_resolution = cfg.img_resolution
        self.img_channels = cfg.img_channels
        self.block_resolutions = cfg.block_resolutions
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                in_channels=cfg.channels_at(res // 2) if res > 4 else 0,
                out_channels=cfg.channels_at(res),
                w_dim=cfg.w_dim,
                resolution=res,
                img_channels=cfg.img_channels,
                is_last=res == cfg.img_resolution,
                architecture=cfg.architecture,
                resample_filter=tuple(cfg.resample_filter),
                conv_clamp=cfg.conv_clamp,
                use_noise=cfg.use_noise,
            )
            self.num_ws += block.num_conv + (block.num_torgb if block.is_last else 0)
            setattr(self, f"b{res}", block)
        assert self.num_ws == cfg.num_ws

    def noise_consts(self) -> list[torch.Tensor]:
        """The fixed noise image [r, r] of every convolution, in forward order (config.noise_resolutions)."""
        convs: list[SynthesisLayer] = []
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            convs += [block.conv1] if block.in_channels == 0 else [block.conv0, block.conv1]
        return [conv.noise_const for conv in convs if conv.use_noise]

    def forward(
        self,
        ws: torch.Tensor,                                   # [N, num_ws, w_dim]
        noise_mode: str = "const",                          # "const" | "random" | "none"
        noise: list[torch.Tensor] | None = None,            # one [N, 1, r, r] per conv (random mode)
    ) -> torch.Tensor:
        assert_shape(ws, [None, self.num_ws, self.w_dim])
        x = img = None
        w_idx = 0
        n_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            cur_noise = noise[n_idx: n_idx + block.num_conv] if noise is not None else None
            x, img = block(x, img, cur_ws, noise_mode, cur_noise)
            w_idx += block.num_conv
            n_idx += block.num_conv
        assert img is not None
        return img  # [N, img_channels, H, W]


# ----------------------------------------------------------------------------
# The generator: a mapping and a synthesis network


def mapping_from_config(cfg: GeneratorConfig) -> MappingNetwork:
    """The mapping network a config describes (both families share it)."""
    return MappingNetwork(
        z_dim=cfg.z_dim,
        c_dim=cfg.c_dim,
        w_dim=cfg.w_dim,
        num_layers=cfg.mapping_layers,
        embed_features=cfg.embed_features,
        layer_features=cfg.layer_features,
        lr_multiplier=cfg.mapping_lr_multiplier,
    )


def mapped_ws(
    mapping: MappingNetwork,
    z: torch.Tensor,                    # [N, z_dim]
    c: torch.Tensor | None,             # [N, c_dim]
    num_ws: int,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
) -> torch.Tensor:
    """z -> ws [N, num_ws, w_dim], pulled toward w_avg on rows < cutoff (torch twin of latents.truncate)."""
    ws = mapping(z, c).unsqueeze(1).repeat([1, num_ws, 1])
    if truncation_psi != 1:
        rows = slice(None) if truncation_cutoff is None else slice(0, truncation_cutoff)
        ws[:, rows] = mapping.w_avg.lerp(ws[:, rows], truncation_psi)
    return ws


class Generator(torch.nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        assert cfg.arch == "stylegan2", f"StyleGAN2 generator built from arch {cfg.arch!r}"
        self.cfg = cfg
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = mapping_from_config(cfg)

    def forward(
        self,
        z: torch.Tensor,                    # [N, z_dim]
        c: torch.Tensor | None = None,      # [N, c_dim]
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """z -> image, for training and quick use; the SDK's Generator does the same in NumPy."""
        ws = mapped_ws(self.mapping, z, c, self.num_ws, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)
