"""ADA's augmentation pipe and its p controller (training/augment.py), on small random images, CPU, seeded."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `training` lives at the repo root, beside the package
    sys.path.insert(0, str(REPO))

from training.augment import (  # noqa: E402
    ADA_INTERVAL,
    AdaptiveP,
    AugmentPipe,
    _band_limited,
    _rotate2d,
    _scale2d,
    _translate2d,
    color_matrix,
    geometry_matrix,
    moves_whole_pixels,
    recolor,
    resample,
)


def test_blit_ops_move_pixels_exactly():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    one = torch.ones([2])
    torch.testing.assert_close(resample(x, _scale2d(-one, one)), x.flip(3), rtol=0, atol=0)
    torch.testing.assert_close(resample(x, _rotate2d(one * math.pi / 2)), torch.rot90(x, 1, (2, 3)),
                               rtol=0, atol=1e-5)
    shifted = resample(x, _translate2d(one * 2 * 2 / 8, 0 * one))          # 2 pixels, reflection at the edge
    torch.testing.assert_close(shifted[..., :6], x[..., 2:], rtol=0, atol=0)
    torch.testing.assert_close(shifted[..., 6:], x[..., 6:].flip(3), rtol=0, atol=0)
    assert resample(x, torch.eye(3).repeat(2, 1, 1)) is x


def _waves(size: int, dx: float = 0.0) -> torch.Tensor:
    """[1, 1, size, size] band-limited test image (periods 16 and 11 px), shifted by dx pixels."""
    y, x = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float() + dx, indexing="ij")
    return (torch.cos(2 * math.pi * x / 16) * torch.cos(2 * math.pi * y / 11))[None, None]


def test_whole_pixel_moves_are_told_apart_from_fractional_ones():
    one = torch.ones([1])
    m = torch.cat([torch.eye(3)[None], _translate2d(one * 2 / 8, one * -6 / 8), _rotate2d(one * math.pi / 2),
                   _scale2d(-one, one), _translate2d(one / 8, 0 * one), _rotate2d(one * 0.1),
                   _scale2d(one * 2, one * 2)])
    assert moves_whole_pixels(m, 8).tolist() == [True, True, True, True, False, False, False]


def test_fractional_shifts_are_band_limited_where_bilinear_blurs():
    one = torch.ones([1])
    for dx in (0.5, 1.5):
        m = _translate2d(one * dx * 2 / 32, 0 * one)
        want = _waves(32, dx)[..., 6:-6, 6:-6]                       # away from the reflected border
        assert (resample(_waves(32), m)[..., 6:-6, 6:-6] - want).abs().max() < 1e-4
        assert (resample(_waves(32), m, antialias=False)[..., 6:-6, 6:-6] - want).abs().max() > 1e-2


def test_zooming_out_does_not_alias_the_finest_pattern():
    """A checkerboard (the highest frequency) zoomed out 1.5x: bilinear sampling turns it into a coarse
    moire of amplitude ~0.25; the low-pass removes it."""
    y, x = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = ((-1.0) ** (x + y)).float()[None, None]
    m = _scale2d(torch.full([1], 1.5), torch.full([1], 1.5))
    assert resample(checker, m)[..., 8:-8, 8:-8].abs().mean() < 0.02
    assert resample(checker, m, antialias=False)[..., 8:-8, 8:-8].abs().mean() > 0.2


def test_band_limited_path_is_the_same_as_matrices_and_as_convolutions():
    """Small images filter with dense 1-D matrices, large ones with upfirdn2d: the same linear maps."""
    torch.manual_seed(5)
    x = torch.randn(6, 3, 16, 16)
    m = geometry_matrix(6, 1.0, 16, x.device)
    torch.testing.assert_close(_band_limited(x, m, dense=True), _band_limited(x, m, dense=False),
                               rtol=0, atol=2e-5)


def test_p_zero_is_the_identity_and_p_one_changes_every_sample():
    torch.manual_seed(1)
    x = torch.rand(16, 3, 16, 16) * 2 - 1
    assert AugmentPipe(0.0)(x) is x
    y = AugmentPipe(1.0)(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert ((y - x).abs().flatten(1).amax(1) > 1e-3).all()
    torch.testing.assert_close(geometry_matrix(4, 0.0, 16, x.device), torch.eye(3).repeat(4, 1, 1))
    torch.testing.assert_close(color_matrix(4, 0.0, x.device), torch.eye(4).repeat(4, 1, 1))


def test_colour_ops_keep_gray_gray_and_gray_images_get_brightness_and_contrast():
    torch.manual_seed(2)
    m = color_matrix(64, 1.0, torch.device("cpu"))
    gray = torch.full([64, 3, 2, 2], 0.3)
    out = recolor(gray, m)
    torch.testing.assert_close(out[:, 0], out[:, 1], rtol=0, atol=1e-5)   # every op is symmetric in r, g, b
    torch.testing.assert_close(out[:, 1], out[:, 2], rtol=0, atol=1e-5)
    assert out[:, 0].std() > 0.05                                         # but brightness / contrast moved them
    one_channel = recolor(torch.full([64, 1, 2, 2], 0.3), m)
    torch.testing.assert_close(one_channel[:, 0, 0, 0], 0.3 * m[:, 0, 0] + m[:, 0, 3])


def test_fraction_of_untouched_samples_follows_p():
    """A sample comes out unchanged when no op touches it. Most ops act with probability p; x-flip and luma
    flip act on half of their draws; a 90-degree rotation by 0 and a translation rounding to (0, 0) pixels
    (on 8 px: |u| * 8 < 0.5 in each axis, half the draws each) change nothing; the two arbitrary rotations
    together act with probability p."""
    torch.manual_seed(3)
    p, n = 0.2, 4000
    x = torch.rand(n, 3, 8, 8) * 2 - 1
    untouched = ((AugmentPipe(p)(x) - x).abs().flatten(1).amax(1) < 1e-6).float().mean().item()
    flips = (1 - p / 2) ** 2
    rot90 = 1 - p * 3 / 4
    xint = 1 - p * (1 - 0.5 * 0.5)
    others = (1 - p) ** 8   # scale, the rotation pair, aniso, xfrac, brightness, contrast, hue, saturation
    assert abs(untouched - flips * rot90 * xint * others) < 0.02


def test_r1_gradients_flow_through_the_pipe():
    torch.manual_seed(4)
    pipe = AugmentPipe(0.8)
    conv = torch.nn.Conv2d(3, 1, 3)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    logits = conv(pipe(x)).sum()
    (grad,) = torch.autograd.grad(logits, [x], create_graph=True)
    grad.square().sum().backward()                       # R1: the penalty's gradient reaches D's weights
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_adaptive_p_moves_towards_the_target_every_interval_and_stays_in_range():
    pipe = AugmentPipe(0.0)
    ada = AdaptiveP(pipe, target=0.6, speed_img=1000, batch=10)        # each update moves p by 0.04
    for step in range(ADA_INTERVAL):
        ada.observe(torch.ones(10, 1))                                    # D calls every real real: r_t = 1
        r_t = ada.maybe_update(step)
    assert r_t == 1.0 and float(pipe.p) == pytest.approx(0.04)
    for step in range(ADA_INTERVAL, 3 * ADA_INTERVAL):
        ada.observe(-torch.ones(10, 1))                                   # r_t = -1: p goes down, not below 0
        ada.maybe_update(step)
    assert float(pipe.p) == 0.0
    assert ada.maybe_update(3 * ADA_INTERVAL) is None                     # nothing observed: no update
