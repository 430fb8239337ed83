"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", arXiv 2006.06676).

D sees every image, real or generated, through the same random, differentiable augmentations; each one is
applied to a sample with probability p. While p stays below about 0.8 they do not "leak" into what G
learns (the paper's section 2.2), because D still sees un-augmented images often enough to tell which
orientation, colour, ... is the real one. With `--aug ada` p adapts: every ADA_INTERVAL D steps the
overfitting heuristic r_t = E[sign(D(real))] is compared with a target (0.6) and p moves by
batch * ADA_INTERVAL / (ada_kimg * 1000) up or down, so it could go from 0 to 1 in ada_kimg kimg.

The pipeline is the paper's "bgc" set, with its default strengths:

    blit   x-flip, rotation by a multiple of 90 degrees, integer translation (up to 1/8 of the image)
    geom   isotropic scaling (lognormal, std 0.2 octaves), arbitrary rotation (twice, each with
           probability 1 - sqrt(1 - p)), anisotropic scaling (std 0.2 octaves), fractional translation
           (std 1/8 of the image)
    color  brightness (+N(0, 0.2)), contrast (x 2^N(0, 0.5)), luma flip, hue rotation, saturation
           (x 2^N(0, 1)) around the luma axis; gray images get brightness and contrast only

Resampling, as in the paper's code: a sample whose geometric ops move pixel centres onto pixel centres
(no op, or only blits) is moved exactly. Any other sample is resampled band-limited: reflect-padded,
upsampled 2x through the symlet-6 low-pass filter, sampled bilinearly at the doubled resolution, and
filtered down again (the filter flipped, so that its phase cancels). Plain bilinear sampling at the image's
own resolution, which this module used before, skips pixels when it zooms out and blurs by up to half a
pixel when it shifts; it stays available as `resample(..., antialias=False)` for comparison. Unlike NVlabs,
untouched and blit-only samples are not passed through the filter. Random numbers come from torch's
global generator, which the training state saves.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from stylegan_sdk.models.layers import downsample2d, filter_pads, setup_filter, upsample2d

ADA_INTERVAL = 4                     # D steps between p updates (NVlabs' value)

DENSE_FIR_MAX = 128                  # px: the band-limited resampling's filters as matrices up to this size

# Symlet-6 low-pass decomposition filter (12 taps; the standard wavelet coefficients, e.g. PyWavelets'
# 'sym6' dec_lo, in the order of NVlabs' table): the anti-aliasing filter of the geometric ops.
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

# The "bgc" strengths (ADA paper, appendix B; NVlabs' AugmentPipe defaults).
XINT_MAX = 0.125        # integer translation, fraction of the image size
SCALE_STD = 0.2         # isotropic scaling, log2 std
ROTATE_MAX = 1.0        # arbitrary rotation, fraction of a half turn
ANISO_STD = 0.2         # anisotropic scaling, log2 std
XFRAC_STD = 0.125       # fractional translation, fraction of the image size
BRIGHTNESS_STD = 0.2    # added to every channel
CONTRAST_STD = 0.5      # log2 std of the factor
HUE_MAX = 1.0           # hue rotation, fraction of a half turn
SATURATION_STD = 1.0    # log2 std of the factor


# ----------------------------------------------------------------------------
# Small pure helpers: per-sample 3x3 (geometry, normalised coordinates) and 4x4 (colour) matrices


def _gate(n: int, p: float | torch.Tensor, device: torch.device) -> torch.Tensor:
    """[n] bool: which samples get an op applied with probability p."""
    return torch.rand([n], device=device) < p


def _translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=tx.device).repeat(tx.shape[0], 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=sx.device).repeat(sx.shape[0], 1, 1)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=theta.device).repeat(theta.shape[0], 1, 1)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _translate3d(b: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, device=b.device).repeat(b.shape[0], 1, 1)
    m[:, :3, 3] = b[:, None]
    return m


def _scale3d(s: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, device=s.device).repeat(s.shape[0], 1, 1)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    return m


def _rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta [N] around the unit vector axis [3] (Rodrigues), as 4x4 matrices."""
    x, y, z = axis
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    m = torch.eye(4, device=theta.device).repeat(theta.shape[0], 1, 1)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s
    m[:, 2, 0], m[:, 2, 1], m[:, 2, 2] = z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c
    return m


def geometry_matrix(n: int, p: float, size: int, device: torch.device) -> torch.Tensor:
    """[n, 3, 3] where each output pixel samples the input, in grid_sample's normalised coordinates
    ([-1, 1] across the image). Every op's distribution is symmetric (an op and its inverse are equally
    likely), so each op is drawn directly as a sampling matrix; they compose in the listed order, where
    NVlabs composes the inverses (the same ops, applied in the reverse order)."""
    m = torch.eye(3, device=device).repeat(n, 1, 1)
    one = torch.ones([n], device=device)
    # blit
    flip = torch.where(_gate(n, p, device) & (torch.rand([n], device=device) < 0.5), -one, one)
    m = m @ _scale2d(flip, one)
    quarter = torch.where(_gate(n, p, device), torch.randint(0, 4, [n], device=device), 0)
    m = m @ _rotate2d(quarter * (math.pi / 2))
    shift = (torch.rand([n, 2], device=device) * 2 - 1) * XINT_MAX
    shift = torch.where(_gate(n, p, device)[:, None], torch.round(shift * size) * 2 / size, 0)
    m = m @ _translate2d(shift[:, 0], shift[:, 1])
    # geom
    s = torch.where(_gate(n, p, device), torch.exp2(torch.randn([n], device=device) * SCALE_STD), 1.0)
    m = m @ _scale2d(s, s)
    p_rot = 1 - math.sqrt(max(1 - p, 0.0))  # two rotations: one or both happen with probability p
    theta = torch.where(_gate(n, p_rot, device), (torch.rand([n], device=device) * 2 - 1) * math.pi * ROTATE_MAX, 0)
    m = m @ _rotate2d(theta)
    s = torch.where(_gate(n, p, device), torch.exp2(torch.randn([n], device=device) * ANISO_STD), 1.0)
    m = m @ _scale2d(s, 1 / s)
    theta = torch.where(_gate(n, p_rot, device), (torch.rand([n], device=device) * 2 - 1) * math.pi * ROTATE_MAX, 0)
    m = m @ _rotate2d(theta)
    frac = torch.where(_gate(n, p, device)[:, None], torch.randn([n, 2], device=device) * XFRAC_STD * 2, 0)
    return m @ _translate2d(frac[:, 0], frac[:, 1])


def color_matrix(n: int, p: float, device: torch.device) -> torch.Tensor:
    """[n, 4, 4] acting on (r, g, b, 1) in [-1, 1]."""
    luma = torch.full([3], 1 / math.sqrt(3), device=device)          # the gray axis
    v = torch.cat([luma, torch.zeros([1], device=device)])
    m = torch.eye(4, device=device).repeat(n, 1, 1)
    b = torch.where(_gate(n, p, device), torch.randn([n], device=device) * BRIGHTNESS_STD, 0)
    m = _translate3d(b) @ m
    c = torch.where(_gate(n, p, device), torch.exp2(torch.randn([n], device=device) * CONTRAST_STD), 1.0)
    m = _scale3d(c) @ m
    flip = _gate(n, p, device) & (torch.rand([n], device=device) < 0.5)
    householder = torch.eye(4, device=device) - 2 * torch.outer(v, v)  # mirror the colours across the gray plane
    m = torch.where(flip[:, None, None], householder @ m, m)
    theta = torch.where(_gate(n, p, device), (torch.rand([n], device=device) * 2 - 1) * math.pi * HUE_MAX, 0)
    m = _rotate3d(luma, theta) @ m
    s = torch.where(_gate(n, p, device), torch.exp2(torch.randn([n], device=device) * SATURATION_STD), 1.0)
    gray = torch.outer(v, v)
    saturation = gray + (torch.eye(4, device=device) - gray) * s[:, None, None]
    saturation[:, 3, 3] = 1
    return saturation @ m


def moves_whole_pixels(matrix: torch.Tensor, size: int, tol: float = 1e-4) -> torch.Tensor:
    """[N] bool: matrix [N, 3, 3] (normalised coordinates of a size x size image) maps pixel centres onto
    pixel centres: its linear part is a signed permutation and its shift a whole number of pixels."""
    linear, shift = matrix[:, :2, :2], matrix[:, :2, 2] * (size / 2)
    whole = (linear - linear.round()).abs().amax((1, 2)) < tol
    whole &= (linear.round().abs().sum(1) == 1).all(1) & (linear.round().abs().sum(2) == 1).all(1)
    return whole & ((shift - shift.round()).abs().amax(1) < tol)


def _bilinear(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(matrix[:, :2, :], list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@functools.lru_cache(maxsize=16)
def _fir_matrices(size: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The band-limited path's two 1-D linear maps, as matrices, built once per size (the filtering is
    separable, so each is applied along both axes; matrix products are far faster on a CPU than depthwise
    convolutions):
    up [2(size+2pad), size]: reflect-pad by pad = len(SYM6) // 4, insert zeros, filter with SYM6 (gain 2);
    down [size, 2(size+2pad)]: filter with SYM6 flipped (its phase cancels that of up), keep every second
    sample, crop the padding."""
    f = torch.tensor(SYM6, device=device, dtype=dtype)
    f = f / f.sum()
    pad, taps = f.shape[0] // 4, f.shape[0]
    basis = F.pad(torch.eye(size, dtype=dtype, device=device)[:, None, :], [pad, pad], mode="reflect")
    stuffed = torch.stack([basis, torch.zeros_like(basis)], -1).flatten(-2)      # [size, 1, 2(size+2pad)]
    up = F.conv1d(F.pad(stuffed, list(filter_pads(taps, up=2))), (2 * f).flip(0)[None, None])
    wide = 2 * (size + 2 * pad)
    basis = torch.eye(wide, dtype=dtype, device=device)[:, None, :]
    down = F.conv1d(F.pad(basis, list(filter_pads(taps, down=2))), f[None, None])[..., ::2]
    return up[:, 0, :].T, down[:, 0, pad:pad + size].T


def _band_limited(images: torch.Tensor, matrix: torch.Tensor, dense: bool | None = None) -> torch.Tensor:
    """Sampling through a 2x-upsampled copy (see the module docstring). The filtering runs as dense matrix
    products up to DENSE_FIR_MAX px (dense=None) and as FIR convolutions above: the same linear maps, one
    fast on small images, the other linear in the image size."""
    n, ch, h, w = images.shape
    pad = len(SYM6) // 4                                     # the filter's reach, in input pixels
    dense = w <= DENSE_FIR_MAX if dense is None else dense
    if dense:
        up, down = _fir_matrices(w, images.device, images.dtype)
        x = up @ images @ up.T                               # [N, C, 2(H+2pad), 2(W+2pad)]
    else:
        f = setup_filter(SYM6).to(images.device, images.dtype)
        x = upsample2d(F.pad(images, [pad] * 4, mode="reflect"), f)
    # matrix maps the image's normalised coordinates; the padded copy spans k times as much.
    k = torch.tensor([(w + 2 * pad) / w, (h + 2 * pad) / h, 1.0], device=matrix.device)
    x = _bilinear(x, matrix * k[None, None, :] / k[None, :, None])     # diag(k)^-1 @ matrix @ diag(k)
    if dense:
        return down @ x @ down.T                             # [N, C, H, W]
    return downsample2d(x, f.flip([0, 1]))[:, :, pad:pad + h, pad:pad + w]


def resample(images: torch.Tensor, matrix: torch.Tensor, antialias: bool = True) -> torch.Tensor:
    """images [N, C, H, W] sampled where matrix [N, 3, 3] sends each output pixel (normalised coordinates),
    reflection padding; the images themselves when every matrix is the identity. Samples that move by
    whole pixels are moved exactly; the others are sampled band-limited (`antialias`, see the module
    docstring) or, with antialias=False, plainly bilinear."""
    n, ch, h, w = images.shape
    assert matrix.shape == (n, 3, 3), f"resample: matrix {tuple(matrix.shape)} for {n} images"
    if torch.equal(matrix, torch.eye(3, device=matrix.device).expand(n, 3, 3)):
        return images
    if not antialias:
        return _bilinear(images, matrix)
    whole = moves_whole_pixels(matrix, w)
    if whole.all():
        return _bilinear(images, matrix)
    if not whole.any():
        return _band_limited(images, matrix)
    # Each sample goes through one path: the (costlier) band-limited one only where it is needed.
    w_idx, f_idx = whole.nonzero()[:, 0], (~whole).nonzero()[:, 0]
    out = images.new_empty(images.shape).index_copy(0, w_idx, _bilinear(images[w_idx], matrix[w_idx]))
    return out.index_copy(0, f_idx, _band_limited(images[f_idx], matrix[f_idx]))


def recolor(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """RGB images [N, 3, H, W] times matrix [N, 4, 4] on (r, g, b, 1); gray images [N, 1, H, W] get its
    brightness and contrast only (the first diagonal entry and offset)."""
    n, ch, h, w = images.shape
    if ch == 3:
        return (matrix[:, :3, :3] @ images.reshape(n, 3, h * w) + matrix[:, :3, 3:]).reshape(n, 3, h, w)
    return images * matrix[:, 0, 0].reshape(n, 1, 1, 1) + matrix[:, 0, 3].reshape(n, 1, 1, 1)


# ----------------------------------------------------------------------------
# The pipeline


class AugmentPipe(torch.nn.Module):
    """images [N, C, H, W] in about [-1, 1] -> the same shape, each op applied with probability `p`."""

    def __init__(
        self,
        p: float = 0.0,                 # probability of each op (a buffer: ADA moves it, the state saves it)
    ) -> None:
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, ch, h, w = images.shape
        assert h == w, f"AugmentPipe: square images only, got {h}x{w}"
        p = float(self.p)
        if p <= 0:
            return images
        images = resample(images, geometry_matrix(n, p, w, images.device))
        return recolor(images, color_matrix(n, p, images.device))


class AdaptiveP:
    """ADA's controller: accumulates sign(D(real)) and moves the pipe's p every ADA_INTERVAL D steps."""

    def __init__(
        self,
        pipe: AugmentPipe,
        target: float,                  # the r_t to hold (NVlabs: 0.6)
        speed_img: float,               # images over which p could move by 1 (ada_kimg * 1000)
        batch: int,                     # global batch of one D step
    ) -> None:
        self.pipe = pipe
        self.target = target
        self.step = batch * ADA_INTERVAL / speed_img
        self.signs = torch.zeros([2])   # (sum of sign(D(real)), count) since the last update

    def observe(self, real_logits: torch.Tensor) -> None:
        """Accumulate on the logits' device: no host sync per D pass (maybe_update reads it every 4 steps)."""
        logits = real_logits.detach().float()
        count = logits.new_tensor(logits.numel())
        self.signs = self.signs.to(logits.device) + torch.stack([logits.sign().sum(), count])

    def maybe_update(self, batch_idx: int, reduce=lambda t: t) -> float | None:
        """After D step `batch_idx`: every ADA_INTERVAL steps, p += step * sign(r_t - target); r_t or None."""
        if (batch_idx + 1) % ADA_INTERVAL != 0 or self.signs[1] == 0:
            return None
        total = reduce(self.signs.clone()).cpu()
        r_t = float(total[0] / total[1])
        p = float(self.pipe.p) + self.step * (1.0 if r_t > self.target else -1.0 if r_t < self.target else 0.0)
        self.pipe.p.fill_(min(max(p, 0.0), 1.0))
        self.signs.zero_()
        return r_t
