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
    _rotate2d,
    _scale2d,
    _translate2d,
    color_matrix,
    geometry_matrix,
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
