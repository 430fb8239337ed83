"""The GAN objective and its regularisers, for both families.

    G main   non-saturating logistic loss        softplus(-D(G(z)))
    G reg    path length regularisation         (|J_w^T y| - a)^2, y ~ N(0, I) / sqrt(H W), lazy
    D main   logistic loss                       softplus(D(G(z))) + softplus(-D(x))
    D reg    R1 on reals                         gamma / 2 * |grad_x D(x)|^2, lazy
    style mixing: with probability p, the ws rows from a random cutoff on come from a second latent

(StyleGAN2 paper, sections 2-4 and appendix B; StyleGAN v1 uses the same losses without path length
regularisation, R1 at every step.) Lazy regularisation runs a reg phase every N steps with its
loss multiplied by N (`gain`).

Every random number the loss needs is drawn by the caller for the *global* batch from one shared
generator (see `GenInputs`), and each process takes its slice: the result does not depend on how
the batch is split over processes or accumulation rounds, and a resumed run draws the same numbers.
Running averages (`w_avg`, the mean path length) are updated from the global batch mean
(w_avg once per phase, `finish_phase`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------
# Distributed helpers (no-ops in a single process)


def world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def process_rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def all_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of x over processes (x itself in a single process)."""
    if world_size() == 1:
        return x
    y = x.detach().clone()
    torch.distributed.all_reduce(y)
    return y / world_size()


# ----------------------------------------------------------------------------
# The randomness of one generator pass


@dataclass
class GenInputs:
    """Latents, labels and noise for N generator samples (first dim of every tensor = N)."""

    z: torch.Tensor                 # [N, z_dim] main latent
    c: torch.Tensor                 # [N, c_dim] labels (c_dim may be 0)
    z_mix: torch.Tensor             # [N, z_dim] second latent for style mixing
    noise: list[torch.Tensor]       # one [N, 1, r, r] unit noise image per active synthesis layer

    def __len__(self) -> int:
        return self.z.shape[0]

    def narrow(self, start: int, length: int) -> GenInputs:
        return GenInputs(self.z.narrow(0, start, length), self.c.narrow(0, start, length),
                         self.z_mix.narrow(0, start, length), [n.narrow(0, start, length) for n in self.noise])

    def to(self, device: torch.device) -> GenInputs:
        return GenInputs(self.z.to(device), self.c.to(device), self.z_mix.to(device),
                         [n.to(device) for n in self.noise])


def draw_gen_inputs(
    gen: torch.Generator,           # the shared generator (same state in every process)
    n: int,                         # global number of samples
    z_dim: int,                     # latent size
    labels: torch.Tensor,           # [num_items, c_dim] the data set's labels to draw from (c_dim may be 0)
    noise_resolutions: list[int],   # resolution of each active synthesis layer's noise
    label_group: int = 1,           # runs of this many consecutive samples share one label (--mbstd-by-class)
) -> GenInputs:
    assert n % label_group == 0, (n, label_group)
    z = torch.randn([n, z_dim], generator=gen)
    idx = torch.randint(labels.shape[0], [n // label_group], generator=gen).repeat_interleave(label_group)
    z_mix = torch.randn([n, z_dim], generator=gen)
    noise = [torch.randn([n, 1, r, r], generator=gen) for r in noise_resolutions]
    return GenInputs(z, labels[idx], z_mix, noise)


def draw_mixing_cutoff(gen: torch.Generator, num_ws: int, prob: float) -> int:
    """ws rows >= cutoff come from the second latent; num_ws = no mixing (one draw per phase)."""
    cutoff = int(torch.randint(1, max(num_ws, 2), [1], generator=gen))
    mix = float(torch.rand([1], generator=gen)) < prob
    return cutoff if mix and num_ws > 1 else num_ws


# ----------------------------------------------------------------------------
# The loss


class StyleGANLoss:
    def __init__(
        self,
        G: torch.nn.Module,                 # generator (mapping + synthesis); trained
        D: torch.nn.Module,                 # discriminator; trained
        r1_gamma: float = 10.0,             # R1 weight (0 = off)
        pl_weight: float = 2.0,             # path length weight (0 = off)
        pl_decay: float = 0.01,             # decay of the running mean path length
        report: Callable[[str, torch.Tensor], None] | None = None,  # statistics sink (name, values)
        augment_pipe: torch.nn.Module | None = None,                # ADA: what D sees, reals and fakes alike
        observe_real: Callable[[torch.Tensor], None] | None = None,  # ADA: every D(real) logit, for r_t
    ) -> None:
        self.G = G
        self.D = D
        self.r1_gamma = r1_gamma
        self.pl_weight = pl_weight
        self.pl_decay = pl_decay
        self.pl_mean = torch.zeros([])
        self._w_sum: torch.Tensor | None = None    # sum of the phase's w (for w_avg), and their count
        self._w_count = 0
        self.report = report or (lambda name, value: None)
        self.augment_pipe = augment_pipe
        self.observe_real = observe_real
        # Progressive growing (v1): {"resolution": r, "alpha": a} for both networks; {} for StyleGAN2.
        self.stage_kwargs: dict = {}

    # -- the two networks ---------------------------------------------------------------
    def run_G(
        self,
        g: GenInputs,                       # latents, labels and noise of N samples
        cutoff: int,                        # style mixing: ws rows >= cutoff from g.z_mix (num_ws = none)
        num_ws: int,                        # active ws rows (v1: of the current stage)
        track_w: bool = True,               # count these w towards w_avg (see finish_phase)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [N, C, r, r] and the ws [N, G.num_ws, w_dim] that made them (rows >= num_ws unused)."""
        mapping = self.G.mapping
        w = mapping(g.z, g.c)                                           # [N, w_dim]
        if track_w:
            w_sum = w.detach().sum(dim=0)
            self._w_sum = w_sum if self._w_sum is None else self._w_sum + w_sum
            self._w_count += w.shape[0]
        ws = w.unsqueeze(1).expand(-1, self.G.num_ws, -1)               # [N, num_ws, w_dim]
        if cutoff < num_ws:
            w2 = mapping(g.z_mix, g.c).unsqueeze(1)                     # [N, 1, w_dim]
            rows = torch.arange(self.G.num_ws, device=w.device).reshape(1, -1, 1) >= cutoff
            ws = torch.where(rows, w2, ws)
        noise = list(g.noise) + [None] * (len(self.G.cfg.noise_resolutions) - len(g.noise))
        img = self.G.synthesis(ws, noise_mode="random", noise=noise if g.noise else None, **self.stage_kwargs)
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c, **self.stage_kwargs)                      # [N, 1]

    @torch.no_grad()
    def finish_phase(self) -> None:
        """w_avg <- lerp(mean w of the phase's global batch, w_avg, beta): once per phase, so the
        result does not depend on how the batch was split over processes and micro-batches."""
        if self._w_sum is None:
            return
        mapping = self.G.mapping
        packed = torch.cat([self._w_sum, torch.tensor([float(self._w_count)], device=self._w_sum.device)])
        if world_size() > 1:
            torch.distributed.all_reduce(packed)
        batch_mean = packed[:-1] / packed[-1]
        mapping.w_avg.copy_(batch_mean.lerp(mapping.w_avg, mapping.w_avg_beta))
        self._w_sum, self._w_count = None, 0

    # -- the three gradient computations -------------------------------------------------
    def accumulate_G_main(self, gen: GenInputs, cutoff: int, num_ws: int, gain: float) -> None:
        """Non-saturating loss: make D call the fakes real."""
        gen_img, _ = self.run_G(gen, cutoff, num_ws)
        gen_logits = self.run_D(gen_img, gen.c)
        loss_Gmain = F.softplus(-gen_logits)                           # -log(sigmoid(D(G(z))))
        self.report("Loss/scores/fake", gen_logits)
        self.report("Loss/G/loss", loss_Gmain)
        loss_Gmain.mean().mul(gain).backward()

    def accumulate_G_pl(self, gen: GenInputs, pl_noise: torch.Tensor, cutoff: int, num_ws: int, gain: float) -> None:
        """Path length regularisation: |J_w^T y| close to its running mean (y = pl_noise [M, C, r, r])."""
        if self.pl_weight == 0 or len(gen) == 0:
            return
        gen_img, gen_ws = self.run_G(gen, cutoff, num_ws)
        pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                                       create_graph=True, only_inputs=True)[0]      # [M, num_ws, w_dim]
        pl_lengths = pl_grads[:, :num_ws].square().sum(2).mean(1).sqrt()          # [M]
        self.pl_mean = self.pl_mean.to(pl_lengths.device)
        pl_mean = self.pl_mean.lerp(all_mean(pl_lengths.detach().mean()), self.pl_decay)
        self.pl_mean.copy_(pl_mean)
        pl_penalty = (pl_lengths - pl_mean).square()
        self.report("Loss/pl_penalty", pl_penalty)
        loss_Gpl = pl_penalty * self.pl_weight
        self.report("Loss/G/reg", loss_Gpl)
        (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()

    def accumulate_D(
        self,
        real_img: torch.Tensor,             # [N, C, r, r] reals in [-1, 1]
        real_c: torch.Tensor,               # [N, c_dim]
        gen: GenInputs | None,              # fakes' randomness (D main), None for R1 only
        cutoff: int,                        # style-mixing cutoff of the fakes
        num_ws: int,                        # active ws rows
        gain: float,                        # loss multiplier
        do_main: bool,                      # logistic loss on fakes and reals
        do_r1: bool,                        # R1 penalty on reals
    ) -> None:
        do_r1 = do_r1 and self.r1_gamma != 0
        # Fakes are fake.
        loss_Dgen: torch.Tensor | float = 0.0
        if do_main:
            assert gen is not None
            with torch.no_grad():
                gen_img, _ = self.run_G(gen, cutoff, num_ws)
            gen_logits = self.run_D(gen_img, gen.c)
            loss_Dgen = F.softplus(gen_logits)                          # -log(1 - sigmoid(D(G(z))))
            self.report("Loss/scores/fake", gen_logits)
            loss_Dgen.mean().mul(gain).backward()
        if not (do_main or do_r1):
            return
        # Reals are real; R1 penalises D's gradient on them.
        real_img_tmp = real_img.detach().requires_grad_(do_r1)
        real_logits = self.run_D(real_img_tmp, real_c)
        self.report("Loss/scores/real", real_logits)
        if self.observe_real is not None:
            self.observe_real(real_logits)
        loss_Dreal: torch.Tensor | float = 0.0
        if do_main:
            loss_Dreal = F.softplus(-real_logits)                       # -log(sigmoid(D(x)))
            self.report("Loss/D/loss", loss_Dgen + loss_Dreal)
        loss_Dr1: torch.Tensor | float = 0.0
        if do_r1:
            r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp],
                                           create_graph=True, only_inputs=True)[0]  # [N, C, r, r]
            r1_penalty = r1_grads.square().sum([1, 2, 3])
            loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
            self.report("Loss/r1_penalty", r1_penalty)
            self.report("Loss/D/reg", loss_Dr1)
        (real_logits * 0 + loss_Dreal + loss_Dr1).mean().mul(gain).backward()


# ----------------------------------------------------------------------------
# Progressive growing (v1): what D sees at a stage


def progressive_reals(img: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """Reals [N, C, R, R] -> the stage resolution (box filter); while fading in, blended with the
    previous stage's image, nearest up-sampled (ProGAN, section 2), as the generator's output is."""
    if img.shape[-1] != resolution:
        img = F.avg_pool2d(img, img.shape[-1] // resolution)
    if alpha < 1 and resolution > 4:
        low = F.interpolate(F.avg_pool2d(img, 2), scale_factor=2, mode="nearest")
        img = low.lerp(img, alpha)
    return img


def num_active_ws(resolution: int) -> int:
    """ws rows driving resolutions up to `resolution` (two per resolution from 4x4)."""
    return 2 * int(math.log2(resolution)) - 2
