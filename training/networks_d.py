"""Discriminators, one per generator family. Training only: a checkpoint holds just the generator.

StyleGAN2 (Karras et al. 2020, section 4 and appendix B): blocks from the image resolution down to
8x8, each two 3x3 convolutions (the second one down-samples with the [1, 3, 3, 1] low-pass filter),
and in the `resnet` architecture a 1x1 down-sampling skip, the sum scaled by sqrt(0.5). The 4x4
epilogue appends the minibatch standard deviation, then a 3x3 convolution and two dense layers. A
conditional D projects its output onto an embedding of the label (Miyato & Koyama 2018), as NVlabs.
Parameter names follow stylegan2-ada-pytorch (b64.conv0.weight, b4.mbstd, b4.fc.weight, ...).

StyleGAN v1 (Karras et al. 2019, appendix C; ProGAN's D, Karras et al. 2018): the same 3x3 / 3x3-down
blocks with the [1, 2, 1] blur, a 1x1 fromRGB per resolution for progressive growing, and the same
epilogue. `forward(img, c, resolution, alpha)` reads an image at the current stage resolution;
during a fade-in (alpha < 1) the new block's output is blended with the previous stage's fromRGB
of the 2x box-down-sampled image.

Every layer has an equalised learning rate (weights N(0, 1) scaled at run time; stylegan_sdk.models.layers).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from stylegan_sdk.models.layers import Conv2dLayer, FullyConnectedLayer, assert_shape, downsample2d, setup_filter
from stylegan_sdk.models.stylegan2 import MappingNetwork

D_ARCHITECTURES = ("orig", "skip", "resnet")
V1_BLUR = (1, 2, 1)

# ----------------------------------------------------------------------------
# Minibatch standard deviation


def _channel_plan(img_resolution: int, channel_base: int, channel_max: int, c_dim: int,
                  cmap_dim: int | None) -> tuple[list[int], dict[int, int], int]:
    """Block resolutions (img_resolution down to 8), channels per resolution (down to 4), label width."""
    log2 = int(np.log2(img_resolution))
    block_resolutions = [2**i for i in range(log2, 2, -1)]
    ch = {r: min(channel_base // r, channel_max) for r in block_resolutions + [4]}
    cmap = (ch[4] if cmap_dim is None else cmap_dim) if c_dim > 0 else 0
    return block_resolutions, ch, cmap


class MinibatchStdLayer(torch.nn.Module):
    """Append the feature stddev over groups of samples as extra channels (ProGAN, section 3).

    Groups are consecutive samples (0..G-1, G..2G-1, ...), so a global batch split across processes
    (or accumulation rounds that are multiples of the group) sees the same groups as one big batch.
    The group is the largest divisor of the batch that is at most `group_size`.
    """

    def __init__(
        self,
        group_size: int,            # samples per group (None-like 0 = the whole batch)
        num_channels: int = 1,      # channel groups, each giving one stddev feature
    ) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = mbstd_group_of(n, self.group_size)
        f = self.num_channels
        y = x.reshape(n // g, g, f, c // f, h, w)     # [nGFcHW] groups of consecutive samples
        y = y - y.mean(dim=1, keepdim=True)            # [nGFcHW] subtract the group mean
        y = y.square().mean(dim=1)                     # [nFcHW]  variance over the group
        y = (y + 1e-8).sqrt()                          # [nFcHW]  stddev
        y = y.mean(dim=[2, 3, 4])                      # [nF]     average over channels and pixels
        y = y.reshape(-1, 1, f, 1, 1).expand(-1, g, -1, h, w).reshape(n, f, h, w)  # [NFHW]
        return torch.cat([x, y], dim=1)                # [N, C + F, H, W]

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


def mbstd_group_of(n: int, group_size: int) -> int:
    """The group a batch of n actually uses: the largest divisor of n that is at most group_size."""
    g = n if group_size <= 0 else min(group_size, n)
    while n % g:
        g -= 1
    return g


# ----------------------------------------------------------------------------
# The shared 4x4 epilogue


class DiscriminatorEpilogue(torch.nn.Module):
    """[fromRGB], [mbstd], 3x3 conv, dense, dense -> one logit (or a projection onto the label embedding)."""

    def __init__(
        self,
        in_channels: int,               # feature channels at 4x4
        cmap_dim: int,                  # label embedding width, 0 = unconditional
        img_channels: int,              # image channels (for the 4x4 fromRGB)
        use_fromrgb: bool = False,      # read a 4x4 image too (skip architecture, v1's first stage)
        resolution: int = 4,            # spatial size of the input features
        mbstd_group_size: int = 4,      # minibatch-stddev group (0 = whole batch)
        mbstd_num_channels: int = 1,    # minibatch-stddev features, 0 = off
        conv_clamp: float | None = None,  # clamp conv outputs to +-conv_clamp
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        if use_fromrgb:
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation="lrelu")
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self,
        x: torch.Tensor | None,         # [N, C, 4, 4] features (None: only the image)
        img: torch.Tensor | None,       # [N, img_channels, 4, 4] image for fromRGB (or None)
        cmap: torch.Tensor | None,      # [N, cmap_dim] label embedding (conditional)
    ) -> torch.Tensor:
        if img is not None:
            y = self.fromrgb(img)
            x = x + y if x is not None else y
        assert x is not None
        assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)                                                   # [N, 1] or [N, cmap_dim]
        if self.cmap_dim > 0:
            assert cmap is not None
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x                                                          # [N, 1]


def _label_mapping(c_dim: int, cmap_dim: int) -> MappingNetwork | None:
    """Label -> embedding for the projection (the NVlabs D's mapping network: 8 layers, lr x0.01)."""
    if c_dim == 0:
        return None
    return MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_layers=8, lr_multiplier=0.01)


# ----------------------------------------------------------------------------
# StyleGAN2


class DiscriminatorBlock(torch.nn.Module):
    def __init__(
        self,
        in_channels: int,               # input feature channels, 0 = first block (reads the image)
        tmp_channels: int,              # channels of the first conv
        out_channels: int,              # output channels (at half the resolution)
        resolution: int,                # this block's input resolution
        img_channels: int,              # image channels
        architecture: str = "resnet",   # "orig" | "skip" | "resnet"
        resample_filter: tuple[int, ...] = (1, 3, 3, 1),  # low-pass filter for down-sampling
        conv_clamp: float | None = None,  # clamp conv outputs
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation="lrelu",
                                       conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation="lrelu", down=2,
                                 resample_filter=resample_filter, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter)

    def forward(
        self,
        x: torch.Tensor | None,         # [N, tmp, R, R] features (None for the first block)
        img: torch.Tensor | None,       # [N, img_channels, R, R] image (first block, skip architecture)
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.in_channels == 0 or self.architecture == "skip":
            assert img is not None
            assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        assert x is not None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img                   # [N, out, R/2, R/2]


class Discriminator(torch.nn.Module):
    """StyleGAN2 discriminator: image [N, C, R, R] (+ label [N, c_dim]) -> logit [N, 1]."""

    def __init__(
        self,
        c_dim: int,                     # label size, 0 = unconditional
        img_resolution: int,            # input resolution
        img_channels: int,              # input channels
        architecture: str = "resnet",   # "orig" | "skip" | "resnet"
        channel_base: int = 32768,      # channels at resolution r: min(channel_base // r, channel_max)
        channel_max: int = 512,         # cap on channels
        mbstd_group_size: int = 4,      # minibatch-stddev group (0 = whole batch)
        mbstd_num_channels: int = 1,    # minibatch-stddev features, 0 = off
        cmap_dim: int | None = None,    # label embedding width (None = channels at 4x4)
        conv_clamp: float | None = None,  # clamp conv outputs
    ) -> None:
        super().__init__()
        assert architecture in D_ARCHITECTURES, f"architecture must be one of {D_ARCHITECTURES}"
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions, ch, cmap_dim = _channel_plan(img_resolution, channel_base, channel_max, c_dim,
                                                             cmap_dim)
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                in_channels=ch[res] if res < img_resolution else 0,
                tmp_channels=ch[res],
                out_channels=ch[res // 2],
                resolution=res,
                img_channels=img_channels,
                architecture=architecture,
                conv_clamp=conv_clamp,
            )
            setattr(self, f"b{res}", block)
        self.mapping = _label_mapping(c_dim, cmap_dim)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim=cmap_dim, img_channels=img_channels,
                                        use_fromrgb=architecture == "skip", mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels, conv_clamp=conv_clamp)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.mapping is not None else None
        return self.b4(x, img, cmap)  # [N, 1]


# ----------------------------------------------------------------------------
# StyleGAN v1 (progressive growing)


class ProgressiveBlock(torch.nn.Module):
    """fromRGB (used when this is the stage's input block), 3x3 conv, blur + 3x3 conv down."""

    def __init__(
        self,
        in_channels: int,               # channels at this resolution
        out_channels: int,              # channels at half the resolution
        resolution: int,                # this block's input resolution
        img_channels: int,              # image channels
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation="lrelu")
        self.conv0 = Conv2dLayer(in_channels, in_channels, kernel_size=3, activation="lrelu")
        self.conv1 = Conv2dLayer(in_channels, out_channels, kernel_size=3, activation="lrelu", down=2,
                                 resample_filter=V1_BLUR)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv0(x))  # [N, in, R, R] -> [N, out, R/2, R/2]


class ProgressiveDiscriminator(torch.nn.Module):
    """StyleGAN v1 / ProGAN discriminator: image at a stage resolution (+ label) -> logit [N, 1]."""

    def __init__(
        self,
        c_dim: int,                     # label size, 0 = unconditional
        img_resolution: int,            # final resolution
        img_channels: int,              # input channels
        channel_base: int = 16384,      # channels at resolution r: min(channel_base // r, channel_max)
        channel_max: int = 512,         # cap on channels
        mbstd_group_size: int = 4,      # minibatch-stddev group (0 = whole batch)
        mbstd_num_channels: int = 1,    # minibatch-stddev features, 0 = off
        cmap_dim: int | None = None,    # label embedding width (None = channels at 4x4)
    ) -> None:
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions, ch, cmap_dim = _channel_plan(img_resolution, channel_base, channel_max, c_dim,
                                                             cmap_dim)
        for res in self.block_resolutions:
            setattr(self, f"b{res}", ProgressiveBlock(ch[res], ch[res // 2], res, img_channels))
        self.mapping = _label_mapping(c_dim, cmap_dim)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim=cmap_dim, img_channels=img_channels, use_fromrgb=True,
                                        mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels)

    def fromrgb(self, res: int) -> Conv2dLayer:
        return getattr(self, f"b{res}").fromrgb

    def forward(
        self,
        img: torch.Tensor,                  # [N, C, r, r] at the stage resolution r
        c: torch.Tensor | None = None,      # [N, c_dim]
        resolution: int | None = None,      # stage resolution r (None = img_resolution)
        alpha: float = 1.0,                 # fade-in of block r (< 1 while it is being faded in)
    ) -> torch.Tensor:
        res = self.img_resolution if resolution is None else resolution
        assert_shape(img, [None, self.img_channels, res, res])
        x = self.fromrgb(res)(img)
        if res > 4:
            x = getattr(self, f"b{res}")(x)
            if alpha < 1:
                y = self.fromrgb(res // 2)(F.avg_pool2d(img, 2))
                x = y.lerp(x, alpha)
        for r in self.block_resolutions:
            if r < res:
                x = getattr(self, f"b{r}")(x)
        cmap = self.mapping(None, c) if self.mapping is not None else None
        return self.b4(x, None, cmap)  # [N, 1]


def build_discriminator(arch: str, c_dim: int, img_resolution: int, img_channels: int, **kwargs) -> torch.nn.Module:
    """arch "stylegan2" -> Discriminator, "stylegan1" -> ProgressiveDiscriminator."""
    if arch == "stylegan2":
        return Discriminator(c_dim, img_resolution, img_channels, **kwargs)
    if arch == "stylegan1":
        kwargs.pop("architecture", None)
        kwargs.pop("conv_clamp", None)
        return ProgressiveDiscriminator(c_dim, img_resolution, img_channels, **kwargs)
    raise ValueError(f"arch: no discriminator for {arch!r}")
