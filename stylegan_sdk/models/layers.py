"""Layers shared by the StyleGAN families (and the training discriminator).

Plain PyTorch reference implementations of the official ops (equalised-lr fully connected and
convolution layers, FIR up/down-sampling, bias + activation with gain and clamp, modulated
convolution), written so that they trace to ONNX with a dynamic batch axis: the modulated
convolution scales activations by the styles, convolves with the static weight and demodulates the
output, never a grouped convolution whose weights depend on the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------
# Shape checks that survive tracing


def assert_shape(x: torch.Tensor, shape: Sequence[int | None]) -> None:
    """Check x's shape; None matches any size. Symbolic sizes (tracing, export) are not compared."""
    if x.ndim != len(shape):
        raise AssertionError(f"wrong rank: got {list(x.shape)}, expected {list(shape)}")
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return
    for size, want in zip(x.shape, shape):
        if want is not None and int(size) != want:
            raise AssertionError(f"wrong shape: got {list(x.shape)}, expected {list(shape)}")


# ----------------------------------------------------------------------------
# Bias + activation (+ gain, + clamp)

ACTIVATIONS = {
    # name: (function, default gain)
    "linear": (lambda x: x, 1.0),
    "relu": (F.relu, math.sqrt(2)),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), math.sqrt(2)),
}


def default_gain(act: str) -> float:
    return ACTIVATIONS[act][1]


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """x + b (broadcast over dim 1), activation, times gain, clamped to +-clamp."""
    func, def_gain = ACTIVATIONS[act]
    gain = def_gain if gain is None else gain
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    x = func(x)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ----------------------------------------------------------------------------
# FIR filtering with up/down-sampling (upfirdn2d)


def setup_filter(taps: Sequence[float]) -> torch.Tensor:
    """1D taps -> normalised separable 2D filter [k, k] that sums to 1."""
    f = torch.as_tensor(np.asarray(taps, dtype=np.float32))
    f = f.ger(f)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (x0, x1, y0, y1; negative crops), filter with f, downsample."""
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    if min(px0, px1, py0, py1) < 0:
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    # Depthwise convolution with the flipped filter (channels are static, so the exported graph
    # gets a constant [C, 1, k, k] kernel).
    k = (f * (gain ** (f.ndim / 2))).to(x.dtype).flip([0, 1])
    x = F.conv2d(x, k[None, None].repeat([c, 1, 1, 1]), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def filter_pads(taps: int, up: int = 1, down: int = 1) -> tuple[int, int]:
    """Padding (before, after) that keeps the output exactly up/down times the input size."""
    if up > 1:
        return (taps + up - 1) // 2, (taps - up) // 2
    if down > 1:
        return (taps - down + 1) // 2, (taps - down) // 2
    return taps // 2, (taps - 1) // 2


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    p0, p1 = filter_pads(f.shape[-1], up=up)
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    p0, p1 = filter_pads(f.shape[-1], down=down)
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


# ----------------------------------------------------------------------------
# Convolution with optional FIR up/down-sampling (as the official conv2d_resample)


def conv2d_resample(
    x: torch.Tensor,            # [N, I, H, W]
    w: torch.Tensor,            # [O, I, k, k]
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
) -> torch.Tensor:
    """Cross-correlation with w, up- or down-sampled by 2 with the low-pass filter f in between."""
    kh = w.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding)
    assert f is not None, "resampling needs a filter"
    taps = f.shape[-1]
    if up > 1:
        # 1x1 kernels: convolve first, then upsample.
        if kh == 1:
            return upsample2d(F.conv2d(x, w), f, up=up)
        # Transposed strided convolution (a true convolution of the zero-stuffed input, as the
        # official code does when up-sampling), then the low-pass filter removes the aliasing.
        p0 = padding + (taps + up - 1) // 2 - (kh - 1)
        p1 = padding + (taps - up) // 2 - (kh - up)
        x = F.conv_transpose2d(x, w.transpose(0, 1), stride=up)
        return upfirdn2d(x, f, padding=(p0, p1, p0, p1), gain=up * up)
    # Down-sampling: filter first, then a strided convolution.
    p0 = padding + (taps - down + 1) // 2
    p1 = padding + (taps - down) // 2
    if kh == 1:
        return F.conv2d(upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1)), w)
    return F.conv2d(upfirdn2d(x, f, padding=(p0, p1, p0, p1)), w, stride=down)


# ----------------------------------------------------------------------------
# Modulated convolution (StyleGAN2)


def modulated_conv2d(
    x: torch.Tensor,                    # [N, I, H, W] input features
    weight: torch.Tensor,               # [O, I, k, k] static weight
    styles: torch.Tensor,               # [N, I] per-sample input scales
    noise: torch.Tensor | None = None,  # broadcastable to the output, added after demodulation
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
) -> torch.Tensor:
    """Scale activations by the styles, convolve with the static weight, demodulate the output."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    assert_shape(styles, [None, in_ch])

    # Keep FP16 in range (as the official code): normalise weight and styles by their max.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, padding=padding)
    if demodulate:
        # sum over (i, ky, kx) of (weight * style)^2 = styles^2 @ sum_k(weight^2)^T
        wsq = weight.float().square().sum(dim=[2, 3])              # [O, I]
        dcoefs = (styles.float().square() @ wsq.t() + 1e-8).rsqrt()  # [N, O]
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


# ----------------------------------------------------------------------------
# Equalised learning-rate layers


class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalised learning rate: weights stored as N(0, 1) / lr, scaled at run time."""

    def __init__(
        self,
        in_features: int,           # input width
        out_features: int,          # output width
        bias: bool = True,          # add a learned bias
        activation: str = "linear", # "linear" | "lrelu" | "relu"
        lr_multiplier: float = 1.0, # learning-rate multiplier (equalised lr)
        bias_init: float = 0.0,     # initial bias value
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(torch.nn.Module):
    """Convolution with equalised learning rate, optional FIR up/down-sampling, activation and clamp."""

    def __init__(
        self,
        in_channels: int,                            # input channels
        out_channels: int,                           # output channels
        kernel_size: int,                            # square kernel width
        bias: bool = True,                           # add a learned bias
        activation: str = "linear",                  # "linear" | "lrelu" | "relu"
        up: int = 1,                                 # integer up-sampling factor
        down: int = 1,                               # integer down-sampling factor
        resample_filter: Sequence[int] = (1, 3, 3, 1),  # low-pass filter taps
        conv_clamp: float | None = None,             # clamp the output to +-conv_clamp
    ) -> None:
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = default_gain(activation)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        b = self.bias.to(x.dtype) if self.bias is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)
