"""StyleGAN generator (Karras et al. 2019, arXiv 1812.04948), the original style-based network.

Number-for-number with rosinality/style-based-gan-pytorch's `StyledGenerator` (the PyTorch StyleGAN
that most published v1 checkpoints come from) once imported by `stylegan_sdk.importers.rosinality.stylegan1`,
with the interface of our StyleGAN2 generator: `.mapping` (z -> w [N, w_dim], buffer `w_avg`) and
`.synthesis` (ws [N, num_ws, w_dim] -> image), two ws rows per resolution.

Per resolution r the synthesis network has two layers, each ending in the paper's epilogue
(noise, bias, leaky ReLU, AdaIN with a style from that layer's own w):

    b4:  layer0 = learned 4x4 constant                     + noise, lrelu, AdaIN
         layer1 = 3x3 conv                                 + noise, lrelu, AdaIN
    b8+: layer0 = nearest 2x up, 3x3 conv, bias, blur      + noise, lrelu, AdaIN
         layer1 = 3x3 conv                                 + noise, lrelu, AdaIN
    every block: torgb (1x1 conv); the last block's is the output, the previous block's feeds the
    ProGAN fade-in (alpha). For progressive growing (training), `synthesis(ws, resolution=r)` runs
    the blocks up to r only and outputs block r's toRGB (faded in with alpha).

Parameter names (our format):
    mapping.fc{i}.weight / .bias, mapping.w_avg      the StyleGAN2 mapping network, unchanged
    synthesis.b4.const                               [C, 4, 4]
    synthesis.b{r}.layer{0,1}.weight / .bias         [O, I, 3, 3] / [O] (b4.layer0: a bias only for variant "nvidia")
    synthesis.b{r}.layer{0,1}.noise_strength         [O] per-channel noise strength
    synthesis.b{r}.layer{0,1}.noise_const            [r, r] fixed noise for noise_mode="const"
    synthesis.b{r}.layer{0,1}.affine.weight / .bias  [2*O, w_dim] / [2*O]: AdaIN scale (rows :O,
                                                     bias init 1) then AdaIN bias (rows O:, init 0)
    synthesis.b{r}.torgb.weight / .bias              [img_channels, C, 1, 1] / [img_channels]

Run-time weight scales (equalised learning rate) are the official TF code's: convolutions
sqrt(2 / fan_in), style affines and toRGB 1 / sqrt(fan_in); the leaky ReLU has no gain (AdaIN
renormalises right after it). `noise_strength`, `const` and the biases are used as stored.

The up-sampling layer's weight is the kernel of "nearest 2x up, then 3x3 conv" whether or not the
layer runs fused: from `cfg.fused_upsample_from` on it runs as one stride-2 transposed convolution
with the equivalent 4x4 kernel (the official code's fused upscale), which is the same function, so
the flag only picks the faster computation (NVIDIA's TF files store the fused layers' kernels rotated
180 degrees; the importer turns them into this form). Blur is the fixed [1, 2, 1] filter of the paper
(`cfg.resample_filter` is StyleGAN2's and is not used here).

Two sources of v1 weights compute slightly differently; `cfg.variant` names which (V1_NUMERICS):
    "rosinality"  rosinality's port (and our own training): instance-norm eps 1e-5 (torch's
                  InstanceNorm2d), the conv bias added before the blur, no bias on the 4x4 constant;
    "nvidia"      NVIDIA's TensorFlow code: eps 1e-8, the layer epilogue conv -> blur -> noise -> bias
                  -> lrelu -> instance norm -> style (the bias after the blur: different border pixels),
                  and a bias on the 4x4 constant layer (`synthesis.b4.layer0.bias`).
Differences that are only a change of parameterisation are taken care of by the importers: NVIDIA's
style modulation x * (s0 + 1) + s1 (our AdaIN scale bias includes the +1), its mapping gain sqrt 2
inside the leaky ReLU (lrelu is positively homogeneous: our mapping's bias is NVIDIA's / sqrt 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import NOISE_MODES, GeneratorConfig
from .layers import FullyConnectedLayer, assert_shape, setup_filter, upfirdn2d
from .stylegan2 import MappingNetwork, mapped_ws, mapping_from_config

BLUR_FILTER = (1, 2, 1)     # the paper's low-pass filter after every up-sampling convolution
ADAIN_EPS = 1e-5            # instance-norm epsilon (torch InstanceNorm2d default, as rosinality)
LRELU_SLOPE = 0.2


@dataclass(frozen=True)
class V1Numerics:
    """How one source of StyleGAN v1 weights computes (cfg.variant)."""

    adain_eps: float            # instance-norm epsilon
    bias_after_blur: bool       # up-sampling layers add the conv bias after the blur (else before it)
    const_bias: bool            # the 4x4 constant layer has a bias


V1_NUMERICS = {
    "rosinality": V1Numerics(adain_eps=ADAIN_EPS, bias_after_blur=False, const_bias=False),
    "nvidia": V1Numerics(adain_eps=1e-8, bias_after_blur=True, const_bias=True),
}

__all__ = ["Generator", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer", "ToRGBLayer", "MappingNetwork",
           "V1Numerics", "V1_NUMERICS", "instance_norm", "upsample_nearest", "fused_upsample_kernel"]

# ----------------------------------------------------------------------------
# Small ops


def instance_norm(x: torch.Tensor, eps: float = ADAIN_EPS) -> torch.Tensor:
    """Per-sample, per-channel zero mean and unit (biased) variance over H, W."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


def upsample_nearest(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, 2H, 2W], each pixel repeated 2x2 (Expand + Reshape: no ONNX Resize)."""
    _, c, h, w = x.shape
    return x.reshape(-1, c, h, 1, w, 1).expand(-1, -1, -1, 2, -1, 2).reshape(-1, c, 2 * h, 2 * w)


def fused_upsample_kernel(weight: torch.Tensor) -> torch.Tensor:
    """3x3 kernel [O, I, 3, 3] of "nearest 2x up, then conv" -> 4x4 transposed-conv kernel [I, O, 4, 4].

    conv_transpose2d(x, result, stride=2, padding=1) equals conv2d(upsample_nearest(x), weight,
    padding=1): each output pixel sums the 3x3 taps that fall on the same input pixel.
    """
    w = weight.flip([2, 3]).transpose(0, 1)
    w = F.pad(w, [1, 1, 1, 1])
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


# ----------------------------------------------------------------------------
# Synthesis layers


class SynthesisLayer(torch.nn.Module):
    """[3x3 conv (+ 2x up-sampling and blur)], then noise, bias, leaky ReLU and AdaIN (order: see V1Numerics)."""

    def __init__(
        self,
        in_channels: int,               # input channels, 0 = no convolution (input is the block's constant)
        out_channels: int,              # output channels
        w_dim: int,                     # latent size
        resolution: int,                # output resolution
        kernel_size: int = 3,           # convolution kernel width
        up: int = 1,                    # up-sampling factor (1 or 2)
        fused: bool = False,            # up-sample with one transposed conv (same function, faster)
        use_noise: bool = True,         # add per-pixel noise
        numerics: V1Numerics = V1_NUMERICS["rosinality"],  # epsilon, bias placement, constant bias
    ) -> None:
        super().__init__()
        assert up in (1, 2), f"up must be 1 or 2, got {up}"
        self.numerics = numerics
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.fused = fused
        self.use_noise = use_noise
        self.padding = kernel_size // 2
        if in_channels > 0:
            self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
            self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
            self.weight_gain = math.sqrt(2 / (in_channels * kernel_size**2))
        elif numerics.const_bias:
            self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        if up > 1:
            self.register_buffer("blur_filter", setup_filter(BLUR_FILTER), persistent=False)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([out_channels]))
        # AdaIN: one affine of w gives a per-channel scale (rows :O) and bias (rows O:).
        self.affine = FullyConnectedLayer(w_dim, 2 * out_channels)
        with torch.no_grad():
            self.affine.bias[:out_channels] = 1

    def forward(
        self,
        x: torch.Tensor,                    # [N, I, H, W] (up: H = res / 2), or [N, O, res, res] without conv
        w: torch.Tensor,                    # [N, w_dim]
        noise_mode: str = "const",          # "const" | "random" | "none"
        noise: torch.Tensor | None = None,  # [N, 1, res, res] unit noise for "random" (None: draw it)
    ) -> torch.Tensor:
        # Convolution (+ up-sampling and blur); the bias goes in here unless it comes after the blur.
        late_bias = self.numerics.bias_after_blur or self.in_channels == 0
        if self.in_channels > 0:
            weight = (self.weight * self.weight_gain).to(x.dtype)
            bias = None if late_bias else self.bias.to(x.dtype)
            if self.up == 1:
                x = F.conv2d(x, weight, bias, padding=self.padding)
            else:
                if self.fused:
                    x = F.conv_transpose2d(x, fused_upsample_kernel(weight), bias, stride=2, padding=1)
                else:
                    x = F.conv2d(upsample_nearest(x), weight, bias, padding=self.padding)
                x = upfirdn2d(x, self.blur_filter, padding=(1, 1, 1, 1))
        assert_shape(x, [None, self.out_channels, self.resolution, self.resolution])
        # Noise: one single-channel image, scaled per channel.
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                if noise is None:
                    noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            else:
                noise = self.noise_const.reshape(1, 1, self.resolution, self.resolution)
            x = x + self.noise_strength.to(x.dtype).reshape(1, -1, 1, 1) * noise.to(x.dtype)
        if late_bias and hasattr(self, "bias"):
            x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        # Leaky ReLU, then AdaIN.
        x = F.leaky_relu(x, LRELU_SLOPE)
        styles = self.affine(w.to(x.dtype))  # [N, 2 * O]
        scale = styles[:, : self.out_channels].reshape(-1, self.out_channels, 1, 1)
        shift = styles[:, self.out_channels:].reshape(-1, self.out_channels, 1, 1)
        return scale * instance_norm(x, self.numerics.adain_eps) + shift

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"resolution={self.resolution}, up={self.up}, fused={self.fused}")


class ToRGBLayer(torch.nn.Module):
    """1x1 convolution to image channels, linear."""

    def __init__(
        self,
        in_channels: int,               # input channels
        out_channels: int,              # image channels
    ) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, (self.weight * self.weight_gain).to(x.dtype), self.bias.to(x.dtype))


# ----------------------------------------------------------------------------
# One resolution of the synthesis network


class SynthesisBlock(torch.nn.Module):
    def __init__(
        self,
        in_channels: int,               # input channels, 0 = the first (4x4 constant) block
        out_channels: int,              # output channels
        w_dim: int,                     # latent size
        resolution: int,                # this block's resolution
        img_channels: int,              # image channels
        fused: bool = False,            # up-sample with a transposed conv (same function, faster)
        use_noise: bool = True,         # per-layer noise
        numerics: V1Numerics = V1_NUMERICS["rosinality"],  # epsilon, bias placement, constant bias
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.num_layers = 2
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
            self.layer0 = SynthesisLayer(0, out_channels, w_dim, resolution, use_noise=use_noise, numerics=numerics)
        else:
            self.layer0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, fused=fused,
                                         use_noise=use_noise, numerics=numerics)
        self.layer1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, use_noise=use_noise,
                                     numerics=numerics)
        self.torgb = ToRGBLayer(out_channels, img_channels)

    def forward(
        self,
        x: torch.Tensor | None,         # [N, I, H/2, W/2] features (None for the first block)
        ws: torch.Tensor,               # [N, 2, w_dim]
        noise_mode: str = "const",
        noise: list[torch.Tensor | None] | None = None,  # per-layer unit noise (random mode)
    ) -> torch.Tensor:
        noise = noise if noise is not None else [None, None]
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        assert x is not None
        x = self.layer0(x, ws[:, 0], noise_mode, noise[0])
        x = self.layer1(x, ws[:, 1], noise_mode, noise[1])
        return x  # [N, O, H, W]


# ----------------------------------------------------------------------------
# Synthesis network: per-layer ws -> image


class SynthesisNetwork(torch.nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim = cfg.w_dim
        self.img_resolution = cfg.img_resolution
        self.img_channels = cfg.img_channels
        self.block_resolutions = cfg.block_resolutions
        self.use_noise = cfg.use_noise
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                in_channels=cfg.channels_at(res // 2) if res > 4 else 0,
                out_channels=cfg.channels_at(res),
                w_dim=cfg.w_dim,
                resolution=res,
                img_channels=cfg.img_channels,
                fused=cfg.fused_upsample_from is not None and res >= cfg.fused_upsample_from,
                use_noise=cfg.use_noise,
                numerics=V1_NUMERICS[cfg.variant],
            )
            self.num_ws += block.num_layers
            setattr(self, f"b{res}", block)
        assert self.num_ws == cfg.num_ws

    def noise_consts(self) -> list[torch.Tensor]:
        """The fixed noise image [r, r] of every layer, in forward order (config.noise_resolutions)."""
        if not self.use_noise:
            return []
        blocks = [getattr(self, f"b{res}") for res in self.block_resolutions]
        return [layer.noise_const for block in blocks for layer in (block.layer0, block.layer1)]

    def forward(
        self,
        ws: torch.Tensor,                           # [N, num_ws, w_dim]; block i reads rows 2i, 2i+1
        noise_mode: str = "const",                  # "const" | "random" | "none"
        noise: list[torch.Tensor] | None = None,    # one [N, 1, r, r] per layer (random mode; unused without noise)
        alpha: float = 1.0,                         # ProGAN fade-in of the last block, used when 0 <= alpha < 1
        resolution: int | None = None,              # progressive growing: stop at this block (None = img_resolution)
    ) -> torch.Tensor:
        assert_shape(ws, [None, self.num_ws, self.w_dim])
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode: must be one of {NOISE_MODES}, got {noise_mode!r}")
        out_res = self.img_resolution if resolution is None else resolution
        if out_res not in self.block_resolutions:
            raise ValueError(f"resolution: must be one of {self.block_resolutions}, got {resolution!r}")
        if not self.use_noise:
            noise = None
        if noise is not None and len(noise) != self.num_ws:
            raise ValueError(f"noise: expected {self.num_ws} per-layer tensors, got {len(noise)}")
        # Blocks up to out_res only: the ones above it are not trained yet (progressive growing).
        x = x_prev = None
        for i, res in enumerate(r for r in self.block_resolutions if r <= out_res):
            x_prev = x
            cur_noise = noise[2 * i: 2 * i + 2] if noise is not None else None
            x = getattr(self, f"b{res}")(x, ws[:, 2 * i: 2 * i + 2], noise_mode, cur_noise)
        assert x is not None
        img = getattr(self, f"b{out_res}").torgb(x)
        # Fade-in: blend with the previous resolution's image, nearest up-sampled.
        if 0 <= alpha < 1 and x_prev is not None:
            skip = upsample_nearest(getattr(self, f"b{out_res // 2}").torgb(x_prev))
            img = (1 - alpha) * skip + alpha * img
        return img.to(torch.float32)  # [N, img_channels, out_res, out_res]


# ----------------------------------------------------------------------------
# The generator: a mapping and a synthesis network


class Generator(torch.nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        assert cfg.arch == "stylegan1", f"StyleGAN (v1) generator built from arch {cfg.arch!r}"
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
        alpha: float = 1.0,                 # fade-in of the last block (0 <= alpha < 1), as synthesis
        resolution: int | None = None,      # progressive growing: output resolution (None = img_resolution)
    ) -> torch.Tensor:
        """z -> image, for training and quick use; the SDK's Generator does the same in NumPy."""
        ws = mapped_ws(self.mapping, z, c, self.num_ws, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, alpha=alpha, resolution=resolution)
