"""StyleGAN3's filtered leaky ReLU and its low-pass filter design, in plain PyTorch.

`filtered_lrelu` computes, per channel of an NCHW tensor:

    bias -> upsample by `up` (zero insertion, FIR `fu`, gain up**2) -> pad/crop -> leaky ReLU * gain
    -> clamp to +-clamp -> FIR `fd` -> keep every `down`-th sample

with the same output size and values as the official StyleGAN3 reference op. Two code paths compute it:

* `filtered_lrelu_ref`: the literal sequence (a zero-inserted tensor, depthwise convolutions over the whole
  upsampled image, then subsampling). Slow; kept as the readable definition.
* `filtered_lrelu` (default): a transposed depthwise convolution with stride `up` for the upsampling (the
  zero-inserted tensor never exists), the activation gain folded into the upsampling weights, and a strided
  depthwise convolution for the downsampling (only kept outputs are computed). 1-D (separable) filters run as
  two 1-D passes. It exports to ONNX as ConvTranspose/Conv with constant weights, Slice, Pad, Add, LeakyRelu
  and Clip, with a dynamic batch axis.

`design_lowpass_filter` builds the filters StyleGAN3 layers use (Kaiser-windowed sinc, or a radially symmetric
Kaiser-windowed jinc), numerically the same as scipy's `firwin` / the official design, without needing scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["design_lowpass_filter", "filtered_lrelu", "filtered_lrelu_ref", "output_size"]

Padding = int | Sequence[int]


# ----------------------------------------------------------------------------
# Argument checks (pure helpers)


def _parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """int, [px, py] or [px0, px1, py0, py1] -> (px0, px1, py0, py1)."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = int(padding)
        return p, p, p, p
    if not isinstance(padding, (list, tuple)) or len(padding) not in (2, 4):
        raise ValueError(f"padding: expected an int, [px, py] or [px0, px1, py0, py1], got {padding!r}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in padding):
        raise ValueError(f"padding: entries must be integers, got {padding!r}")
    vals = [int(v) for v in padding]
    if len(vals) == 2:
        return vals[0], vals[0], vals[1], vals[1]
    return vals[0], vals[1], vals[2], vals[3]


def _filter_size(f: torch.Tensor | None, name: str) -> tuple[int, int]:
    """(width, height) of a filter: None -> (1, 1); 1-D [k] -> (k, k); 2-D [h, w] -> (w, h)."""
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError(f"{name}: expected None or a 1-D/2-D tensor, got {getattr(f, 'shape', type(f))}")
    if f.numel() == 0:
        raise ValueError(f"{name}: empty filter")
    return int(f.shape[-1]), int(f.shape[0])


def _check_args(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor | None,
                up: int, down: int, gain: float, slope: float, clamp: float | None) -> None:
    """Raise ValueError naming the first bad argument."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x: expected a [N, C, H, W] tensor, got {getattr(x, 'shape', type(x))}")
    _filter_size(fu, "fu")
    _filter_size(fd, "fd")
    if b is not None and (not isinstance(b, torch.Tensor) or b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ValueError(f"b: expected None or a [{x.shape[1]}] tensor, got {getattr(b, 'shape', type(b))}")
    if not isinstance(up, (int, np.integer)) or isinstance(up, bool) or up < 1:
        raise ValueError(f"up: expected an integer >= 1, got {up!r}")
    if not isinstance(down, (int, np.integer)) or isinstance(down, bool) or down < 1:
        raise ValueError(f"down: expected an integer >= 1, got {down!r}")
    if not float(gain) > 0:
        raise ValueError(f"gain: expected > 0, got {gain!r}")
    if not float(slope) >= 0:
        raise ValueError(f"slope: expected >= 0, got {slope!r}")
    if clamp is not None and not float(clamp) >= 0:
        raise ValueError(f"clamp: expected None or >= 0, got {clamp!r}")


def output_size(in_h: int, in_w: int, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                up: int = 1, down: int = 1, padding: Padding = 0) -> tuple[int, int]:
    """(out_h, out_w) of `filtered_lrelu` for an [*, *, in_h, in_w] input."""
    fu_w, fu_h = _filter_size(fu, "fu")
    fd_w, fd_h = _filter_size(fd, "fd")
    px0, px1, py0, py1 = _parse_padding(padding)
    out_w = (in_w * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (in_h * up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    return out_h, out_w


def _check_size(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, up: int, down: int,
                padding: Padding) -> None:
    """The padded upsampled image must hold both filters (else the output would be empty)."""
    out_h, out_w = output_size(int(x.shape[2]), int(x.shape[3]), fu, fd, up, down, padding)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"padding: input {tuple(x.shape[2:])} with up={up}, down={down}, padding={padding!r} "
                         f"and the filters gives an empty output ({out_h}x{out_w})")


def _act(x: torch.Tensor, gain: float, slope: float, clamp: float | None, inplace: bool = False) -> torch.Tensor:
    """leaky ReLU(x) * gain, clamped to +-clamp (inplace: overwrite x, which must be a fresh tensor)."""
    if slope != 1:
        x = F.leaky_relu_(x, slope) if inplace else F.leaky_relu(x, slope)
    if gain != 1:
        x = x.mul_(gain) if inplace else x * gain
    if clamp is not None:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return x


# ----------------------------------------------------------------------------
# Reference implementation: the literal sequence of operations


def _upfirdn2d_literal(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
                       padding: tuple[int, int, int, int] = (0, 0, 0, 0), flip_filter: bool = False,
                       gain: float = 1.0) -> torch.Tensor:
    """Zero-insert by `up`, pad/crop, depthwise FIR (1-D: two passes), keep every `down`-th sample."""
    n, c, h, w = x.shape
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    px0, px1, py0, py1 = padding
    # Zero insertion: [N, C, H, 1, W, 1] -> pad the unit axes to `up` -> [N, C, H*up, W*up].
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
    x = x.reshape(n, c, h * up, w * up)
    # Pad (positive) then crop (negative).
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    # Filter: gain spread over the passes; flipped unless flip_filter (conv2d correlates).
    f = (f * gain ** (f.ndim / 2)).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        wk = f[None, None].repeat(c, 1, 1)  # [C, 1, k]
        x = F.conv2d(x, wk.unsqueeze(2), groups=c)  # along W
        x = F.conv2d(x, wk.unsqueeze(3), groups=c)  # along H
    return x[:, :, ::down, ::down]


def filtered_lrelu_ref(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                       b: torch.Tensor | None = None, up: int = 1, down: int = 1, padding: Padding = 0,
                       gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None,
                       flip_filter: bool = False) -> torch.Tensor:
    """Reference `filtered_lrelu`: materialises the zero-inserted and the full-rate filtered images."""
    _check_args(x, fu, fd, b, up, down, gain, slope, clamp)
    _check_size(x, fu, fd, up, down, padding)
    pad = _parse_padding(padding)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = _upfirdn2d_literal(x, fu, up=up, padding=pad, flip_filter=flip_filter, gain=up ** 2)
    x = _act(x, float(gain), float(slope), None if clamp is None else float(clamp))
    return _upfirdn2d_literal(x, fd, down=down, flip_filter=flip_filter)


# ----------------------------------------------------------------------------
# Filter design


def _kaiser_beta(numtaps: int, width_rel: float) -> float:
    """Kaiser beta for a transition width given as a fraction of Nyquist (Kaiser's empirical formulas)."""
    atten = 2.285 * (numtaps - 1) * math.pi * width_rel + 7.95  # stop-band attenuation, dB
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def _kaiser_window(numtaps: int, beta: float) -> np.ndarray:
    """Symmetric Kaiser window of `numtaps` points, float64 [numtaps]."""
    return np.kaiser(numtaps, beta)


def _sinc_lowpass(numtaps: int, cutoff_rel: float) -> np.ndarray:
    """Ideal low-pass impulse response sampled at the tap centres, cutoff as a fraction of Nyquist."""
    m = np.arange(numtaps) - (numtaps - 1) / 2
    return cutoff_rel * np.sinc(cutoff_rel * m)


def _j1(x: np.ndarray) -> np.ndarray:
    """Bessel function of the first kind, order 1, float64, to ~1e-15 absolute.

    Bessel's integral J1(x) = (1/pi) * integral_0^pi cos(t - x sin t) dt has a smooth periodic integrand, so
    the midpoint rule converges exponentially once the node count exceeds |x| by a margin. (torch.special.
    bessel_j1 in float64 is off by up to ~5e-7 near x = 5, which would move the float32 filters by a few ulp.)
    """
    x = np.asarray(x, dtype=np.float64)
    nodes = 64 + (math.ceil(float(np.abs(x).max())) if x.size else 0)
    t = (np.arange(nodes) + 0.5) * (math.pi / nodes)  # [nodes]
    return np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """StyleGAN3's low-pass FIR filter: None for numtaps == 1, float32 [numtaps] or radial [numtaps, numtaps].

    cutoff: -6 dB frequency; width: transition band width; fs: sampling rate (all in the same units).
    Separable: a Kaiser-windowed sinc normalised to unit DC gain (what scipy.signal.firwin(numtaps, cutoff,
    width=width, fs=fs) returns). Radial: a jinc of the same cutoff times the outer product of the Kaiser
    window with itself, normalised to unit sum.
    """
    if not isinstance(numtaps, (int, np.integer)) or isinstance(numtaps, bool) or numtaps < 1:
        raise ValueError(f"numtaps: expected an integer >= 1, got {numtaps!r}")
    if numtaps == 1:
        return None
    if not float(fs) > 0:
        raise ValueError(f"fs: expected > 0, got {fs!r}")
    nyq = float(fs) / 2
    if not 0 < float(cutoff) < nyq:
        raise ValueError(f"cutoff: expected 0 < cutoff < fs/2 = {nyq:g}, got {cutoff!r}")
    if not float(width) > 0:
        raise ValueError(f"width: expected > 0, got {width!r}")
    numtaps = int(numtaps)
    window = _kaiser_window(numtaps, _kaiser_beta(numtaps, float(width) / nyq))  # [numtaps]

    if not radial:
        h = _sinc_lowpass(numtaps, float(cutoff) / nyq) * window
        return torch.as_tensor(h / h.sum(), dtype=torch.float32)

    # Radial jinc: J1(2 pi fc r) / (pi r), whose limit at r = 0 is fc (only reached for odd numtaps).
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / float(fs)  # tap positions, [numtaps]
    r = np.hypot(t[None, :], t[:, None])  # [numtaps, numtaps]
    safe_r = np.where(r > 0, r, 1.0)
    h = np.where(r > 0, _j1(2 * math.pi * float(cutoff) * safe_r) / (math.pi * safe_r), float(cutoff))
    h = h * np.outer(window, window)
    return torch.as_tensor(h / h.sum(), dtype=torch.float32)


# ----------------------------------------------------------------------------
# Default implementation: transposed / strided depthwise convolutions


def _window(x: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    """x[..., start:start+length, ...] along dim (2 or 3), zero-extended where the range leaves x."""
    size = int(x.shape[dim])
    lo, hi = max(start, 0), min(start + length, size)
    if lo > 0 or hi < size:
        x = x[:, :, lo:hi] if dim == 2 else x[:, :, :, lo:hi]
    pad_lo, pad_hi = max(-start, 0), max(start + length - size, 0)
    if pad_lo or pad_hi:
        x = F.pad(x, [0, 0, pad_lo, pad_hi] if dim == 2 else [pad_lo, pad_hi])
    return x


def _depthwise(f: torch.Tensor, channels: int, dim: int | None, dtype: torch.dtype) -> torch.Tensor:
    """A filter as a depthwise weight: 2-D [kh, kw] -> [C, 1, kh, kw]; 1-D [k] along dim 3 -> [C, 1, 1, k],
    along dim 2 -> [C, 1, k, 1]."""
    if f.ndim == 1:
        f = f[None, :] if dim == 3 else f[:, None]
    return f.to(dtype)[None, None].expand(channels, 1, *f.shape).contiguous()


def _upfir(x: torch.Tensor, f: torch.Tensor, up: int, pad: tuple[int, int, int, int],
           flip_filter: bool) -> torch.Tensor:
    """Zero-insert by `up`, pad/crop by `pad`, FIR `f` (no gain): without materialising the zero insertion.

    With `up` > 1, a depthwise conv_transpose2d with stride `up` computes the fully-padded result
    T[o] = sum_i x[i] * f[o - i*up]; the requested output is the window T[K-1-p0 : ...] of length
    in*up + p0 + p1 - K + 1, zero-extended (T is zero outside its support). With `up` == 1 it is pad + conv2d.
    """
    c, h, w = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
    px0, px1, py0, py1 = pad
    kw, kh = int(f.shape[-1]), int(f.shape[0])
    out_w = w * up + px0 + px1 - kw + 1
    out_h = h * up + py0 + py1 - kh + 1
    # conv_transpose2d convolves (kernel = f); conv2d correlates (kernel = flipped f).
    kernel = f.flip(list(range(f.ndim))) if flip_filter != (up == 1) else f
    passes = [(kernel, None)] if f.ndim == 2 else [(kernel, 3), (kernel, 2)]  # 1-D: rows (W) then columns (H)
    for k, dim in passes:
        weight = _depthwise(k, c, dim, x.dtype)
        sw, sh = (up, up) if dim is None else ((up, 1) if dim == 3 else (1, up))
        if up == 1:
            if dim in (None, 3):
                x = _window(x, 3, -px0, w + px0 + px1)
            if dim in (None, 2):
                x = _window(x, 2, -py0, h + py0 + py1)
            x = F.conv2d(x, weight, groups=c)
            continue
        x = F.conv_transpose2d(x, weight, stride=(sh, sw), groups=c)
        if dim in (None, 3):
            x = _window(x, 3, kw - 1 - px0, out_w)
        if dim in (None, 2):
            x = _window(x, 2, kh - 1 - py0, out_h)
    return x


def _firdown(x: torch.Tensor, f: torch.Tensor | None, down: int, flip_filter: bool) -> torch.Tensor:
    """FIR `f` (valid positions only) then keep every `down`-th sample: strided depthwise conv2d."""
    if f is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    c = int(x.shape[1])
    kernel = f if flip_filter else f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        return F.conv2d(x, _depthwise(kernel, c, None, x.dtype), stride=down, groups=c)
    x = F.conv2d(x, _depthwise(kernel, c, 3, x.dtype), stride=(1, down), groups=c)  # rows (W)
    return F.conv2d(x, _depthwise(kernel, c, 2, x.dtype), stride=(down, 1), groups=c)  # columns (H)


def _tracing() -> bool:
    """Inside torch.export / torch.compile / torch.jit tracing: in-place ops on views would become scatters."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                   b: torch.Tensor | None = None, up: int = 1, down: int = 1, padding: Padding = 0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False) -> torch.Tensor:
    """Bias, upsample (FIR fu), leaky ReLU * gain, clamp, downsample (FIR fd): StyleGAN3's filtered_lrelu.

    x: [N, C, H, W]; fu, fd: None, 1-D [k] (separable) or 2-D [kh, kw]; b: None or [C]; padding: int,
    [px, py] or [px0, px1, py0, py1], relative to the upsampled image (negative crops). Returns
    [N, C, out_h, out_w] (see `output_size`). Same values as `filtered_lrelu_ref` up to float rounding.
    """
    _check_args(x, fu, fd, b, up, down, gain, slope, clamp)
    _check_size(x, fu, fd, up, down, padding)
    pad = _parse_padding(padding)
    up, down, gain, slope = int(up), int(down), float(gain), float(slope)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    # leaky ReLU is positively homogeneous, so the activation gain rides on the upsampling weights:
    # lrelu(u) * gain == lrelu(u * gain). The upsampling gain up**2 goes there too.
    scale = up ** 2 * gain
    # On the CPU, oneDNN's depthwise convolutions are several times faster in channels-last layout.
    cpu = x.device.type == "cpu"
    if cpu:
        x = x.contiguous(memory_format=torch.channels_last)
    if fu is None and up == 1:  # no upsampling filter (ToRGB): pad/crop and scale only
        x = _window(_window(x, 3, -pad[0], int(x.shape[3]) + pad[0] + pad[1]), 2, -pad[2],
                    int(x.shape[2]) + pad[2] + pad[3])
        fresh = b is not None or scale != 1  # else x may still be (a view of) the caller's tensor
        if scale != 1:
            x = x * scale
    else:
        fresh = True
        if fu is None:
            fu = torch.ones([1, 1], dtype=torch.float32, device=x.device)
        fu = fu * (scale if fu.ndim == 2 else math.sqrt(scale))  # 1-D: split over the two passes
        x = _upfir(x, fu, up, pad, flip_filter)  # [N, C, H*up + py0 + py1 - kh + 1, W*up + ...]
    # x is usually a fresh tensor here (a convolution's output, or a slice/pad of one): then, when no gradient
    # is recorded, activate in place (saves allocating two more full-rate tensors).
    inplace = fresh and not (torch.is_grad_enabled() and x.requires_grad) and not _tracing()
    x = _act(x, 1.0, slope, None if clamp is None else float(clamp), inplace=inplace)
    x = _firdown(x, fd, down, flip_filter)  # [N, C, out_h, out_w]
    return x.contiguous() if cpu else x
