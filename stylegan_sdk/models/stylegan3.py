"""StyleGAN3 ("alias-free") generator (Karras et al. 2021, arXiv 2106.12423), number-for-number with NVlabs'.

Module, parameter and buffer names follow the official `training/networks_stylegan3.py`, so an official
`G.state_dict()` loads as it is: `mapping.fc0.weight`, `mapping.w_avg`, `synthesis.input.{weight, affine.*,
transform, freqs, phases}`, `synthesis.L<i>_<size>_<channels>.{weight, bias, magnitude_ema, up_filter,
down_filter, affine.*}` (the ToRGB layer has no filters).

The network: Fourier features at a fixed sampling rate (rotated and translated per sample by `ws[:, 0]`,
then by the input transform), then `num_layers` modulated convolutions, each followed by a filtered leaky
ReLU (upsample, nonlinearity, low-pass, downsample; `models.filtered_lrelu`) with cutoffs that rise
geometrically from `first_cutoff` to the image's Nyquist frequency (`config.stylegan3_layers`), and a
modulated 1x1 ToRGB layer.

Differences from the official module, none of which changes a number beyond float rounding:
- the input transform is an argument of `synthesis(ws, transform=...)` ([3, 3] or one per sample
  [N, 3, 3]), not a buffer to overwrite, so requests with different transforms share a batch; the
  `synthesis.input.transform` buffer is kept (it loads from official files) and is the default;
- the modulated convolution scales activations by the styles, convolves with the static weight and
  demodulates the output, never a grouped convolution with per-sample weights;
- its styles are pre-normalised per sample, not over the whole batch (see `modulated_conv2d`);
- the mapping network returns one w per sample [N, w_dim] (truncation lives in NumPy above the backends);
- everything is computed in float32 (`num_fp16_res` is kept in the config for information only);
- no noise inputs: `noise_mode` is accepted and ignored, as the official layers do.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..config import NOISE_MODES, GeneratorConfig, StyleGAN3Layer, stylegan3_layers
from .filtered_lrelu import design_lowpass_filter, filtered_lrelu
from .layers import FullyConnectedLayer, assert_shape
from .stylegan2 import MappingNetwork, mapped_ws

# ----------------------------------------------------------------------------
# Small pure helpers


def fourier_grid(size: int, sampling_rate: float) -> torch.Tensor:
    """Sample positions of a size x size grid at sampling_rate, centred on 0: [size, size, 2] as (x, y).

    Pixel j sits at (j + 0.5 - size / 2) / sampling_rate (pixel centres; what the official
    `affine_grid(align_corners=False)` call computes), x along the width, y along the height.
    """
    t = (torch.arange(size, dtype=torch.float64) + 0.5 - size / 2) / sampling_rate  # [size]
    y, x = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([x, y], dim=2).to(torch.float32)


def rotation_translation(t: torch.Tensor) -> torch.Tensor:
    """Per-sample (r_c, r_s, t_x, t_y) [N, 4] -> the inverse rotation @ inverse translation [N, 3, 3].

    (r_c, r_s) is normalised to a unit vector first, t by the same length (as the official input layer).
    """
    t = t / t[:, :2].norm(dim=1, keepdim=True)
    c, s, tx, ty = t.unbind(dim=1)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    m_r = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=1).reshape(-1, 3, 3)
    m_t = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).reshape(-1, 3, 3)
    return m_r @ m_t


def resampling(in_rate: int, out_rate: int, is_torgb: bool, lrelu_upsampling: int) -> tuple[int, int, int]:
    """(tmp_rate, up, down): the leaky ReLU runs at lrelu_upsampling x the higher of the two rates."""
    tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else lrelu_upsampling)
    up, down = tmp_rate // in_rate, tmp_rate // out_rate
    assert in_rate * up == tmp_rate and out_rate * down == tmp_rate, "sampling rates must divide"
    return tmp_rate, up, down


def filter_taps(factor: int, filter_size: int, is_torgb: bool) -> int:
    """Taps of a resampling filter: filter_size per factor of resampling; 1 (no filter) when not resampling."""
    return filter_size * factor if factor > 1 and not is_torgb else 1


def lrelu_padding(in_size: int, out_size: int, conv_kernel: int, up: int, down: int,
                  up_taps: int, down_taps: int) -> list[int]:
    """[px0, px1, py0, py1] for filtered_lrelu: in_size (+ the conv's growth) -> exactly out_size.

    Sample positions follow the symmetric interpretation of the paper's appendix C.3: the extra
    half-sample of an even total goes first.
    """
    total = (out_size - 1) * down + 1                 # samples needed before downsampling
    total -= (in_size + conv_kernel - 1) * up         # samples the upsampled conv output has
    total += up_taps + down_taps - 2                  # samples the two filters consume
    lo = (total + up) // 2
    hi = total - lo
    return [lo, hi, lo, hi]


def as_filter(taps: torch.Tensor | np.ndarray | None) -> torch.Tensor | None:
    """A designed filter as a float32 tensor (None stays None: no filter)."""
    return None if taps is None else torch.as_tensor(np.asarray(taps), dtype=torch.float32).clone()


def per_sample_transforms(transform: torch.Tensor | None, default: torch.Tensor, n: int) -> torch.Tensor:
    """None -> the buffer's value [1, 3, 3]; [3, 3] -> [1, 3, 3]; [N, 3, 3] (or [1, 3, 3]) as given (float32)."""
    if transform is None:
        return default.unsqueeze(0)
    if transform.ndim == 2:
        assert_shape(transform, [3, 3])
        return transform.to(default.dtype).unsqueeze(0)
    assert_shape(transform, [None, 3, 3])
    if not (torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()):
        assert transform.shape[0] in (1, n), f"transform: expected [{n}, 3, 3], got {list(transform.shape)}"
    return transform.to(default.dtype)


def modulated_conv2d(
    x: torch.Tensor,            # [N, I, H, W] input features
    weight: torch.Tensor,       # [O, I, k, k] static weight
    styles: torch.Tensor,       # [N, I] per-sample input scales
    input_gain: torch.Tensor,   # [] scale of the input (1 / running RMS of the layer's input)
    demodulate: bool = True,    # normalise each output channel (False for ToRGB)
    padding: int = 0,           # zero padding of the convolution (k - 1: the output grows by k - 1)
) -> torch.Tensor:
    """StyleGAN3's modulated convolution: styles scale the input, static conv, demodulated output: [N, O, H', W'].

    The official code pre-normalises the weight (per output channel) and the styles before
    demodulating. It normalises the styles by their mean square over the WHOLE batch; here it is per
    sample (over the channel axis), so a sample's output never depends on the other samples of its
    batch. Demodulation divides that scale out again: it only shows through the 1e-8 in the
    demodulation coefficients (far below float32 resolution for real styles).
    """
    n = x.shape[0]
    out_ch, in_ch, _, _ = weight.shape
    assert_shape(styles, [None, in_ch])
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
    x = x * (styles * input_gain).to(x.dtype).reshape(n, in_ch, 1, 1)
    x = F.conv2d(x, weight.to(x.dtype), padding=padding)
    if demodulate:
        # sum over (i, ky, kx) of (weight * style)^2 = styles^2 @ sum_k(weight^2)^T
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
        x = x * dcoefs.to(x.dtype).reshape(n, out_ch, 1, 1)
    return x


# ----------------------------------------------------------------------------
# Fourier-feature input


class SynthesisInput(torch.nn.Module):
    """Fourier features of random frequencies in a disc of radius `bandwidth`, rotated and translated per sample."""

    def __init__(
        self,
        w_dim: int,             # latent size
        channels: int,          # number of features (output channels)
        size: int,              # output width = height, with the margin
        sampling_rate: float,   # samples per unit length
        bandwidth: float,       # largest frequency (the first layer's cutoff)
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = size
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth
        # Random frequencies in the disc (the official draw), random phases.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))   # [C, C] mixing of the features
        self.affine = FullyConnectedLayer(w_dim, 4)                            # w -> (r_c, r_s, t_x, t_y)
        with torch.no_grad():   # starts as the identity: no rotation, no translation
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3, 3))    # [3, 3] default inverse transform of the image
        self.register_buffer("freqs", freqs)                   # [C, 2]
        self.register_buffer("phases", phases)                 # [C]
        self.register_buffer("grid", fourier_grid(size, sampling_rate), persistent=False)  # [H, W, 2]

    def forward(
        self,
        w: torch.Tensor,                        # [N, w_dim]
        transform: torch.Tensor | None = None,  # None (the buffer), [3, 3] or [N, 3, 3]
    ) -> torch.Tensor:
        n = w.shape[0]
        user = per_sample_transforms(transform, self.transform, n)            # [1 or N, 3, 3]
        transforms = rotation_translation(self.affine(w)) @ user              # [N, 3, 3]
        # Transform the frequencies: x -> A x + b moves phase by f . b and frequency to f A.
        freqs = self.freqs.unsqueeze(0)                                       # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transforms[:, :2, :2]                                 # [N, C, 2]
        # Fade out frequencies the transform pushed past the bandwidth, to zero at Nyquist.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)  # [N, C]
        # Features sin(2 pi (f . x + phase)) on the grid, then the learned channel mixing.
        h, wd = self.grid.shape[0], self.grid.shape[1]
        x = (self.grid.reshape(1, h * wd, 2) @ freqs.transpose(1, 2)).reshape(n, h, wd, self.channels)
        x = torch.sin((x + phases.reshape(n, 1, 1, -1)) * (2 * math.pi))
        x = x * amplitudes.reshape(n, 1, 1, -1)                               # [N, H, W, C]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        x = x.permute(0, 3, 1, 2)                                             # [N, C, H, W]
        assert_shape(x, [None, self.channels, self.size, self.size])
        return x

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


# ----------------------------------------------------------------------------
# One synthesis layer: modulated conv + filtered leaky ReLU


class SynthesisLayer(torch.nn.Module):
    def __init__(
        self,
        w_dim: int,                     # latent size
        is_torgb: bool,                 # the final ToRGB layer (1x1, no demodulation, no filters, linear)
        is_critically_sampled: bool,    # cutoff at Nyquist (never radial filters)
        in_channels: int,               # input channels
        out_channels: int,              # output channels
        in_size: int,                   # input width = height
        out_size: int,                  # output width = height
        in_sampling_rate: int,          # input sampling rate (s)
        out_sampling_rate: int,         # output sampling rate
        in_cutoff: float,               # input cutoff frequency (f_c)
        out_cutoff: float,              # output cutoff frequency
        in_half_width: float,           # input transition band half-width (f_h)
        out_half_width: float,          # output transition band half-width
        conv_kernel: int = 3,           # convolution kernel width (ToRGB: always 1)
        filter_size: int = 6,           # low-pass taps per factor of up/down-sampling
        lrelu_upsampling: int = 2,      # the leaky ReLU runs at this multiple of the sampling rate
        use_radial_filters: bool = False,  # radially symmetric down filter (not in critically sampled layers)
        conv_clamp: float | None = 256, # clamp the output to +-conv_clamp (None: off)
        magnitude_ema_beta: float = 0.999,  # decay of the running input magnitude (training only)
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = in_size
        self.out_size = out_size
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.tmp_sampling_rate, self.up_factor, self.down_factor = resampling(
            in_sampling_rate, out_sampling_rate, is_torgb, lrelu_upsampling)

        # Parameters and buffers.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)   # w -> styles [N, I]
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))                # running mean square of the input

        # Filters, designed as the official network does (a state dict replaces them with the same values).
        self.up_taps = filter_taps(self.up_factor, filter_size, is_torgb)
        self.down_taps = filter_taps(self.down_factor, filter_size, is_torgb)
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("up_filter", as_filter(design_lowpass_filter(
            numtaps=self.up_taps, cutoff=in_cutoff, width=in_half_width * 2, fs=self.tmp_sampling_rate)))
        self.register_buffer("down_filter", as_filter(design_lowpass_filter(
            numtaps=self.down_taps, cutoff=out_cutoff, width=out_half_width * 2, fs=self.tmp_sampling_rate,
            radial=self.down_radial)))
        self.padding = lrelu_padding(in_size, out_size, self.conv_kernel, self.up_factor, self.down_factor,
                                     self.up_taps, self.down_taps)
        self.act_gain = 1.0 if is_torgb else math.sqrt(2)
        self.slope = 1.0 if is_torgb else 0.2
        self.weight_gain = 1 / math.sqrt(in_channels * self.conv_kernel**2) if is_torgb else 1.0

    @classmethod
    def from_spec(cls, spec: StyleGAN3Layer, cfg: GeneratorConfig) -> SynthesisLayer:
        """The layer a row of `config.stylegan3_layers` describes, with the config's hyperparameters."""
        return cls(
            w_dim=cfg.w_dim, is_torgb=spec.is_torgb, is_critically_sampled=spec.is_critically_sampled,
            in_channels=spec.in_channels, out_channels=spec.out_channels,
            in_size=spec.in_size, out_size=spec.out_size,
            in_sampling_rate=spec.in_sampling_rate, out_sampling_rate=spec.out_sampling_rate,
            in_cutoff=spec.in_cutoff, out_cutoff=spec.out_cutoff,
            in_half_width=spec.in_half_width, out_half_width=spec.out_half_width,
            conv_kernel=cfg.conv_kernel, filter_size=cfg.filter_size, lrelu_upsampling=cfg.lrelu_upsampling,
            use_radial_filters=cfg.use_radial_filters, conv_clamp=cfg.conv_clamp,
            magnitude_ema_beta=cfg.magnitude_ema_beta,
        )

    def forward(
        self,
        x: torch.Tensor,                # [N, I, in_size, in_size]
        w: torch.Tensor,                # [N, w_dim]
        update_emas: bool = False,      # training: track the input's mean square
    ) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, self.in_size, self.in_size])
        if update_emas:
            current = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(current.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        styles = self.affine(w) * self.weight_gain                          # [N, I]
        x = modulated_conv2d(x, self.weight, styles, self.magnitude_ema.rsqrt(), demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1)
        x = filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
                           up=self.up_factor, down=self.down_factor, padding=self.padding,
                           gain=self.act_gain, slope=self.slope, clamp=self.conv_clamp)
        assert_shape(x, [None, self.out_channels, self.out_size, self.out_size])
        return x                                                            # [N, O, out_size, out_size]

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}x{self.in_size}, out={self.out_channels}x{self.out_size}, "
                f"up={self.up_factor}, down={self.down_factor}, torgb={self.is_torgb}, "
                f"critical={self.is_critically_sampled}, radial={self.down_radial}")


# ----------------------------------------------------------------------------
# Synthesis network: per-layer ws (+ input transform) -> image


class SynthesisNetwork(torch.nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim = cfg.w_dim
        self.img_resolution = cfg.img_resolution
        self.img_channels = cfg.img_channels
        self.num_ws = cfg.num_ws
        self.output_scale = cfg.output_scale
        rate, bandwidth, channels, size, layers = stylegan3_layers(cfg)
        self.input = SynthesisInput(w_dim=cfg.w_dim, channels=channels, size=size, sampling_rate=rate,
                                    bandwidth=bandwidth)
        self.layer_names: list[str] = []
        for spec in layers:
            setattr(self, spec.name, SynthesisLayer.from_spec(spec, cfg))
            self.layer_names.append(spec.name)
        assert len(self.layer_names) + 1 == self.num_ws

    def forward(
        self,
        ws: torch.Tensor,                           # [N, num_ws, w_dim]: row 0 the input, row i + 1 layer i
        noise_mode: str = "const",                  # accepted and ignored: StyleGAN3 has no noise
        noise: list[torch.Tensor] | None = None,    # must be None or empty (config.noise_resolutions is [])
        transform: torch.Tensor | None = None,      # input transform: None (the buffer), [3, 3] or [N, 3, 3]
        update_emas: bool = False,                  # training: track each layer's input magnitude
    ) -> torch.Tensor:
        assert noise_mode in NOISE_MODES, f"noise_mode must be one of {NOISE_MODES}"
        assert not noise, "StyleGAN3 has no noise inputs"
        assert_shape(ws, [None, self.num_ws, self.w_dim])
        rows = ws.to(torch.float32).unbind(dim=1)
        x = self.input(rows[0], transform)
        for name, w in zip(self.layer_names, rows[1:]):
            x = getattr(self, name)(x, w, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution])
        return x.to(torch.float32)  # [N, img_channels, H, W]


# ----------------------------------------------------------------------------
# The generator: a mapping and a synthesis network


class Generator(torch.nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        assert cfg.arch == "stylegan3", f"StyleGAN3 generator built from arch {cfg.arch!r}"
        self.cfg = cfg
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        # The official StyleGAN3 mapping network is StyleGAN2's with embed and hidden widths = w_dim
        # (the config refuses other widths for stylegan3) and a w_avg decay of 0.998.
        self.mapping = MappingNetwork(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim,
                                      num_layers=cfg.mapping_layers, lr_multiplier=cfg.mapping_lr_multiplier,
                                      w_avg_beta=0.998)

    def forward(
        self,
        z: torch.Tensor,                        # [N, z_dim]
        c: torch.Tensor | None = None,          # [N, c_dim]
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",              # ignored (no noise)
        transform: torch.Tensor | None = None,  # None, [3, 3] or [N, 3, 3]
    ) -> torch.Tensor:
        """z -> image, for training and quick use; the SDK's Generator does the same in NumPy."""
        ws = mapped_ws(self.mapping, z, c, self.num_ws, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, transform=transform)
