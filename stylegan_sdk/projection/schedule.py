"""NVIDIA's projection schedule and noise regulariser (stylegan2-ada-pytorch projector.py), as small functions.

Per step t = step / steps (step 0 .. steps-1):
    learning rate  lr0 * (0.5 - 0.5 cos(pi * min(1, (1 - t) / 0.25))) * min(1, t / 0.05)
    w jitter       w_std * 0.05 * max(0, 1 - t / 0.75)**2   (times a unit Gaussian, added to w each step)
The noise regulariser is, per noise image, the squared mean autocorrelation at a shift of one pixel in x
and in y, summed over a pyramid that halves the image (2x2 average) until it is 8 px or smaller; the loss
adds it times 1e5. After each step every noise image is set back to zero mean and unit variance.

Here the regulariser and the renormalisation are per image of a batch ([N] values), so that a batch of N
targets optimises exactly what N single runs would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Schedule:
    """The hyper-parameters of NVIDIA's projector (its `project()` defaults)."""

    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05      # w jitter at t = 0, in units of w_std
    lr_rampdown_length: float = 0.25        # the last quarter of the run: cosine down to 0
    lr_rampup_length: float = 0.05          # the first 5 %: linear up from 0
    noise_ramp_length: float = 0.75         # the jitter falls (quadratically) to 0 at t = 0.75
    regularize_noise_weight: float = 1e5    # weight of the noise regulariser in the loss
    adam_betas: tuple[float, float] = (0.9, 0.999)

    def learning_rate(self, step: int, steps: int) -> float:
        return learning_rate(step, steps, self.initial_learning_rate, self.lr_rampdown_length,
                             self.lr_rampup_length)

    def w_jitter(self, step: int, steps: int, w_std: float) -> float:
        return w_jitter(step, steps, w_std, self.initial_noise_factor, self.noise_ramp_length)


NVIDIA = Schedule()


def learning_rate(step: int, steps: int, initial: float = 0.1, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """Adam's learning rate at `step` of `steps`: cosine ramp-down over the last `rampdown` of the run,
    linear ramp-up over the first `rampup` (so 0 at step 0)."""
    t = step / steps
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial * ramp * min(1.0, t / rampup)


def w_jitter(step: int, steps: int, w_std: float, factor: float = 0.05, ramp: float = 0.75) -> float:
    """Standard deviation of the Gaussian added to w at `step` of `steps` (0 from t = ramp on)."""
    t = step / steps
    return w_std * factor * max(0.0, 1.0 - t / ramp) ** 2


def noise_regularization(noise: Sequence[torch.Tensor]) -> torch.Tensor:
    """Noise images (one [N, 1, r, r] per layer) -> [N]: per image, the sum over layers and pyramid levels of
    the squared mean products with the image rolled by one pixel in x and in y."""
    total = None
    for n in noise:
        while True:
            for dim in (3, 2):
                term = (n * torch.roll(n, shifts=1, dims=dim)).mean(dim=(1, 2, 3)).square()
                total = term if total is None else total + term
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    if total is None:
        raise ValueError("noise: no noise images to regularise")
    return total


@torch.no_grad()
def renormalize_noise(noise: Sequence[torch.Tensor]) -> None:
    """Set every noise image (per layer [N, 1, r, r], per image) to zero mean and unit variance, in place."""
    for n in noise:
        n -= n.mean(dim=(1, 2, 3), keepdim=True)
        n *= n.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
