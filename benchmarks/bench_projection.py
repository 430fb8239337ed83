"""Projection: NVIDIA's projector and sg.project side by side, in one run, on the bundled model (issue 35).

    python benchmarks/bench_projection.py --official <stylegan2-ada-pytorch checkout> [--steps 1000]
        [--checkpoints 100,300,1000] [--losses mse,lpips] [--configs all] [--out DIR] [--threads N]
        [--target-seed 0] [--psi 0.7] [--seed 303]

Target: the bundled model's image of --target-seed at --psi (its ws are known; noise const, i.e. the
network's trained noise buffers), as uint8, which every row projects; PSNR (dB, 8-bit images, MAX 255)
and LPIPS (make_loss("lpips").forward, images in [-1, 1]) compare each projection with it.

Rows (`--configs` picks by key; "all" by default; `--losses` keeps the rows of those losses):
  nvidia-LOSS          stylegan2-ada-pytorch projector.py's `project()` itself (imported from the checkout,
                       never copied) on the OFFICIAL network (its training.networks.Generator with the bundled
                       model's weights, as bench_backends.official_generator builds it): W, noise buffers
                       optimised from random, its schedule (lr 0.1 ramped, w noise ramped, noise
                       regularisation 1e5). Its TorchScript VGG16 download is replaced by our loss:
                       `projector.project` is called with dnnlib.util.open_url / torch.jit.load patched for
                       that one call to hand it an object with vgg16's call signature, `vgg16(images_0_255,
                       resize_images=False, return_lpips=True)`, whose features F give
                       `(F_target - F_synth).square().sum()` == make_loss(LOSS).distance(...) (images
                       mapped to [-1, 1]); so both sides optimise the same distance. Its projection is
                       rendered with the noise buffers it optimised (taken from the copy of G that
                       project() makes); "PSNR as saved" is the image projector.py itself writes (the
                       original network, whose noise buffers it did not touch).
  ours-SPACE[-noise]-LOSS   sg.project(G, target, space=SPACE, steps=N, loss=LOSS, optimize_noise=...,
                       seed=--seed, autocast=--autocast) on our torch generator (sg.load("default",
                       backend="torch")); SPACE w or w+; "-noise": noise optimised too (from random), else the
                       network's constant noise throughout. Its rendering with the optimised noise:
                       G.backend.synthesize(ws, "random", noise); "as saved": Projection.images.

PSNR / LPIPS columns: the projection rendered with the noise the run ended with (optimised, or the
network's for the rows without "-noise"); the lines under the tables give the PSNR of the image as both
projectors save it (proj.png: the ws with the network's constant noise) and the distance of the found ws
from the target's.

Every checkpoint N is its own run of N steps (both schedules are fractions of the step count: a
100-step run is not the first 100 steps of a 1000-step run); runs go checkpoint by checkpoint, every row
in turn (interleaved). ms/step: the median over every step of a row's runs (pooled), wall and process CPU
time, measured between consecutive per-step calls (NVIDIA: the loss's calls, one per step after the
target's; ours: the progress callback); "s total" is the largest run's wall time including setup (both
map 10,000 z for the W statistics and take the target's features). "x NVIDIA" and "dPSNR": against the
NVIDIA row with the same loss. With other jobs on the machine, --threads 1 keeps the two columns equal
and the figures steady.

Run time (2 vCPU Intel Xeon, --threads 1): a step takes 10-14 ms (ours) and 21 ms (NVIDIA) with mse, 55-70 ms
with lpips on either side; the defaults (10 rows x 1,400 steps) took 601 s with other jobs on the machine
(benchmarks/RESULTS.md, "Projection (issue 35)"). --losses mse alone: about 3 minutes.

Pictures (--out, default /tmp/bench_projection): grid.png (rows: the configurations; columns: the
target, then the projection after each checkpoint's run; 4x nearest-neighbour), and one PNG per run,
ROW_N.png, at the model's 32 px.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import sys
import time
import types
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_backends import NotHere, import_official, machine, official_checkout, official_generator  # noqa: E402

import stylegan_sdk as sg  # noqa: E402
from stylegan_sdk.images import to_uint8  # noqa: E402

MODEL = "default"
SPACES = ("w", "w+")


# ----------------------------------------------------------------------------
# Losses (ours: stylegan_sdk.projection.losses)


def make_loss(name: str) -> torch.nn.Module:
    """Our perceptual loss module (features() / distance() / forward() on images in [-1, 1]); NotHere when the
    SDK has none of that name or it cannot be built here."""
    try:
        from stylegan_sdk.projection.losses import make_loss as _make
    except ImportError as e:
        raise NotHere(f"stylegan_sdk.projection.losses not importable ({e})") from None
    try:
        return _make(name)
    except (ImportError, OSError, RuntimeError, ValueError) as e:
        raise NotHere(f"make_loss({name!r}): {' '.join(str(e).split())[:160]}") from None


# ----------------------------------------------------------------------------
# NVIDIA's side: projector.project() from the checkout, on the official network


def import_projector(checkout: str) -> types.ModuleType:
    """stylegan2-ada-pytorch's projector.py from the checkout (sys.path and import shims as import_official)."""
    import_official(checkout)
    root = os.path.abspath(checkout)
    if not os.path.isfile(os.path.join(root, "projector.py")):
        raise NotHere(f"{checkout!r} has no projector.py (a stylegan2-ada-pytorch checkout has)")
    return importlib.import_module("projector")


class _Features:
    """projector.py's `target_features - synth_features` then `.square().sum()`: our loss's distance."""

    def __init__(self, loss: torch.nn.Module, feats):
        self.loss, self.feats = loss, feats

    def __sub__(self, other: _Features) -> _Features:
        return _Difference(self.loss, self.feats, other.feats)


class _Difference(_Features):
    def __init__(self, loss, a, b):
        self.loss, self.a, self.b = loss, a, b

    def square(self) -> _Difference:
        return self

    def sum(self) -> torch.Tensor:
        return self.loss.distance(self.a, self.b).sum()


class LossAsVGG16:
    """Stands in for projector.py's TorchScript vgg16 (the download): `vgg16(images in [0, 255],
    resize_images=False, return_lpips=True)` -> features of our loss; records when it was called (the first
    call is the target's, then one per step)."""

    def __init__(self, loss: torch.nn.Module):
        self.loss = loss
        self.calls: list[tuple[float, float]] = []     # (wall, process CPU) seconds

    def eval(self) -> LossAsVGG16:
        return self

    def to(self, device) -> LossAsVGG16:
        return self

    def __call__(self, images: torch.Tensor, resize_images: bool = False, return_lpips: bool = False):
        if resize_images or not return_lpips:
            raise AssertionError("projector.py calls vgg16(images, resize_images=False, return_lpips=True)")
        self.calls.append((time.perf_counter(), time.process_time()))
        return _Features(self.loss, self.loss.features(images / 127.5 - 1))


@contextlib.contextmanager
def patched_projector(projector: types.ModuleType, vgg: LossAsVGG16, copies: list):
    """For one project() call: its vgg16 download hands it `vgg`, and the copy of G it optimises (whose noise
    buffers end up optimised) is kept in `copies`."""
    import copy as copy_module

    sentinel = object()
    util = projector.dnnlib.util
    open_url, jit_load, copy_mod = util.open_url, torch.jit.load, projector.copy

    def fake_open_url(url, *a, **k):
        if not url.endswith("/vgg16.pt"):
            raise RuntimeError(f"projector.py opened {url!r}; no downloads here")
        return contextlib.nullcontext(sentinel)

    def fake_jit_load(f, *a, **k):
        return vgg if f is sentinel else jit_load(f, *a, **k)

    def keep_copy(obj):
        out = copy_module.deepcopy(obj)
        copies.append(out)
        return out

    util.open_url = fake_open_url
    torch.jit.load = fake_jit_load
    projector.copy = types.SimpleNamespace(deepcopy=keep_copy)
    try:
        with warnings.catch_warnings():
            # its logprint f-string formats the loss (requires_grad) every step, verbose or not
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
            yield
    finally:
        util.open_url, torch.jit.load, projector.copy = open_url, jit_load, copy_mod


# ----------------------------------------------------------------------------
# Rows


@dataclass
class Config:
    key: str
    side: str           # "nvidia" | "ours"
    loss: str
    space: str = "w"
    noise: bool = True

    @property
    def label(self) -> str:
        if self.side == "nvidia":
            return f"NVIDIA project() on official G, W, noise opt., loss {self.loss}"
        noise = "noise opt." if self.noise else "noise fixed"
        return f"ours sg.project, {self.space.upper()}, {noise}, loss {self.loss}"


@dataclass
class Run:
    steps: int
    image: np.ndarray                 # uint8 [H, W, C]
    psnr: float
    lpips: float | None
    step_s: np.ndarray                # [steps - 1, 2]: wall and process CPU seconds of each step after the first
    total_s: float
    extra: dict = field(default_factory=dict)


def all_configs(losses: list[str]) -> list[Config]:
    out = [Config(f"nvidia-{loss}", "nvidia", loss) for loss in losses]
    for loss in losses:
        for space in SPACES:
            for noise in (False, True):
                out.append(Config(f"ours-{space}{'-noise' if noise else ''}-{loss}", "ours", loss, space, noise))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.ckpt = sg.read_model(MODEL)
        self.G = sg.load(MODEL, backend="torch")
        z = sg.seed_to_z(args.target_seed, self.G.info.z_dim)
        self.target_ws = self.G.map(z, psi=args.psi)                                      # [1, num_ws, w_dim]
        self.target = to_uint8(self.G.synthesize(self.target_ws, noise_mode="const", output="float"))[0]
        self.losses: dict[str, torch.nn.Module | None] = {}
        self.loss_notes: dict[str, str] = {}
        self.OG = None
        self.projector = None
        self.official_note = ""

    def loss(self, name: str) -> torch.nn.Module:
        if name not in self.losses:
            try:
                self.losses[name] = make_loss(name).eval()
            except NotHere as e:
                self.losses[name] = None
                self.loss_notes[name] = str(e)
        if self.losses[name] is None:
            raise NotHere(self.loss_notes[name])
        return self.losses[name]

    def lpips(self, image: np.ndarray) -> float | None:
        try:
            loss = self.loss("lpips")
        except NotHere:
            return None
        with torch.no_grad():
            a = torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32)) / 127.5 - 1
            b = torch.from_numpy(self.target.transpose(2, 0, 1)[None].astype(np.float32)) / 127.5 - 1
            return float(loss(a, b).sum())

    # -- official

    def official(self) -> None:
        checkout = official_checkout(self.args.official)
        if not checkout:
            raise NotHere("no --official checkout (stylegan2-ada-pytorch) given")
        self.projector = import_projector(checkout)
        self.OG = official_generator(self.ckpt, "cpu", checkout)

    def parity(self, n: int = 8) -> tuple[float, float]:
        """max / mean |official - ours| of float images for seeds 0..n-1 at --psi (noise const)."""
        z = sg.seed_to_z(range(n), self.G.info.z_dim)
        ws = self.G.map(z, psi=self.args.psi)
        ours = self.G.synthesize(ws, noise_mode="const", output="float")
        with torch.no_grad():
            theirs = self.OG.synthesis(torch.from_numpy(ws), noise_mode="const").numpy()
        d = np.abs(ours - theirs)
        return float(d.max()), float(d.mean())

    def run_nvidia(self, cfg: Config, steps: int) -> Run:
        if self.projector is None:
            raise NotHere(self.official_note or "no official checkout")
        vgg, copies = LossAsVGG16(self.loss(cfg.loss)), []
        target = torch.from_numpy(np.ascontiguousarray(self.target.transpose(2, 0, 1)))
        torch.manual_seed(self.args.seed)
        np.random.seed(self.args.seed)
        t0 = time.perf_counter()
        with patched_projector(self.projector, vgg, copies):
            w_steps = self.projector.project(self.OG, target=target, num_steps=steps, device=torch.device("cpu"))
        total = time.perf_counter() - t0
        step_s = np.diff(np.array(vgg.calls[1:]), axis=0)     # call 0: the target's features; then one per step
        ws = w_steps[-1:].detach()
        with torch.no_grad():
            image = to_uint8(copies[0].synthesis(ws, noise_mode="const").numpy())[0]
            saved = to_uint8(self.OG.synthesis(ws, noise_mode="const").numpy())[0]
        extra = {"psnr_saved": psnr(saved, self.target),
                 "w_error": float(np.linalg.norm(ws[0].numpy() - self.target_ws[0], axis=-1).mean())}
        return Run(steps, image, psnr(image, self.target), self.lpips(image), step_s, total, extra)

    # -- ours

    def run_ours(self, cfg: Config, steps: int) -> Run:
        if not hasattr(sg, "project"):
            raise NotHere("sg.project not in this stylegan_sdk (issue35-core not merged)")
        self.loss(cfg.loss)  # the same availability as the NVIDIA row's
        stamps: list[tuple[float, float]] = []
        autocast = {"auto": None, "on": True, "off": False}[self.args.autocast]
        t0 = time.perf_counter()
        result = sg.project(self.G, self.target, space=cfg.space, steps=steps, loss=cfg.loss,
                            optimize_noise=cfg.noise, seed=self.args.seed, autocast=autocast,
                            progress=lambda *a: stamps.append((time.perf_counter(), time.process_time())))
        total = time.perf_counter() - t0
        saved = np.asarray(result.images)[0]           # ws rendered with the model's constant noise (proj.png)
        image, extra = saved, {}
        if result.noise is not None:                   # rendered with the noise it optimised
            image = to_uint8(self.G.backend.synthesize(result.ws[:1], "random", [n[:1] for n in result.noise]))[0]
            extra["psnr_saved"] = psnr(saved, self.target)
        extra["w_error"] = float(np.linalg.norm(result.ws[0] - self.target_ws[0], axis=-1).mean())
        step_s = np.diff(np.array(stamps), axis=0)     # between consecutive progress calls (after every step)
        return Run(steps, image, psnr(image, self.target), self.lpips(image), step_s, total, extra)

    def run(self, cfg: Config, steps: int) -> Run:
        return self.run_nvidia(cfg, steps) if cfg.side == "nvidia" else self.run_ours(cfg, steps)


def auto_precision(G: sg.Generator, autocast: str) -> str:
    """What sg.project's autocast=None picks for G here (its auto_bf16), for the header line."""
    if autocast != "auto":
        return ""
    try:
        from stylegan_sdk.projection.project import auto_bf16
    except ImportError:
        return ""
    return f" (= {'bf16' if auto_bf16(G.config, torch.device('cpu')) else 'float32'} for this model here)"


# ----------------------------------------------------------------------------
# Output


def fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else ("inf" if math.isinf(x) else format(x, spec))


def step_ms(runs: list[Run]) -> tuple[float, float]:
    """Median wall and process-CPU ms per step over every step of these runs (pooled)."""
    steps = np.concatenate([r.step_s for r in runs if len(r.step_s)]) if runs else np.zeros((0, 2))
    if not len(steps):
        return float("nan"), float("nan")
    return 1000 * float(np.median(steps[:, 0])), 1000 * float(np.median(steps[:, 1]))


def tables(configs: list[Config], runs: dict[tuple[str, int], Run], notes: dict[str, str],
           checkpoints: list[int]) -> list[str]:
    """Quality (PSNR, LPIPS, PSNR difference from the NVIDIA row of the same loss) and time."""
    def row(cfg: Config) -> str:
        return f"`{cfg.key}` {cfg.label}"

    def ref(cfg: Config) -> str:
        return f"nvidia-{cfg.loss}"

    head = (["row"] + [f"PSNR dB @{n}" for n in checkpoints] + [f"LPIPS @{n}" for n in checkpoints]
            + [f"dPSNR @{n} vs NVIDIA" for n in checkpoints])
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for cfg in configs:
        if cfg.key in notes:
            lines.append("| " + " | ".join([row(cfg), notes[cfg.key]] + ["-"] * (len(head) - 2)) + " |")
            continue
        got = {n: runs.get((cfg.key, n)) for n in checkpoints}
        cells = [row(cfg)]
        cells += [fmt(r.psnr, ".2f") if r else "-" for r in got.values()]
        cells += [fmt(r.lpips, ".4f") if r else "-" for r in got.values()]
        for n, r in got.items():
            other = runs.get((ref(cfg), n))
            cells.append("(reference)" if cfg.side == "nvidia" else
                         f"{r.psnr - other.psnr:+.2f}" if r and other else "-")
        lines.append("| " + " | ".join(cells) + " |")

    last = max(checkpoints)
    head = ["row", "ms/step wall (p50)", "ms/step CPU (p50)", f"s total @{last}", "wall x NVIDIA", "CPU x NVIDIA"]
    lines += ["", "| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for cfg in configs:
        mine = [r for (k, _), r in runs.items() if k == cfg.key]
        if not mine:
            continue
        theirs = [r for (k, _), r in runs.items() if k == ref(cfg)]
        wall, cpu = step_ms(mine)
        twall, tcpu = step_ms(theirs)
        r = runs.get((cfg.key, last))
        cells = [row(cfg), f"{wall:.1f}", f"{cpu:.1f}", f"{r.total_s:.1f}" if r else "-"]
        cells += (["(reference)"] * 2 if cfg.side == "nvidia" else
                  [f"{wall / twall:.2f}x", f"{cpu / tcpu:.2f}x"] if theirs else ["-"] * 2)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def save_pictures(out: str, configs: list[Config], runs: dict[tuple[str, int], Run], target: np.ndarray,
                  checkpoints: list[int], scale: int = 4) -> str:
    from PIL import Image, ImageDraw

    os.makedirs(out, exist_ok=True)
    Image.fromarray(target).save(os.path.join(out, "target.png"))
    for (key, n), r in runs.items():
        Image.fromarray(r.image).save(os.path.join(out, f"{key}_{n}.png"))
    rows = [c for c in configs if any((c.key, n) in runs for n in checkpoints)]
    h, w = target.shape[0] * scale, target.shape[1] * scale
    pad, label_w, head_h = 4, 200, 16
    grid = Image.new("RGB", (label_w + (1 + len(checkpoints)) * (w + pad), head_h + max(1, len(rows)) * (h + pad)),
                     "white")
    draw = ImageDraw.Draw(grid)
    for j, title in enumerate(["target"] + [f"{n} steps" for n in checkpoints]):
        draw.text((label_w + j * (w + pad), 2), title, fill="black")
    big = lambda a: Image.fromarray(a).resize((w, h), Image.NEAREST)  # noqa: E731
    for i, c in enumerate(rows):
        y = head_h + i * (h + pad)
        draw.text((2, y + h // 2 - 6), c.key, fill="black")
        grid.paste(big(target), (label_w, y))
        for j, n in enumerate(checkpoints):
            if (c.key, n) in runs:
                grid.paste(big(runs[(c.key, n)].image), (label_w + (j + 1) * (w + pad), y))
    path = os.path.join(out, "grid.png")
    grid.save(path)
    return path


# ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", default=None, help="stylegan2-ada-pytorch checkout (the NVIDIA rows; without "
                   "one they are skipped with a note)")
    p.add_argument("--steps", type=int, default=1000, help="the largest step count (checkpoints above it are dropped)")
    p.add_argument("--checkpoints", default="100,300,1000", help="step counts, each its own run")
    p.add_argument("--losses", default="mse,lpips", help="comma list: mse, lpips")
    p.add_argument("--configs", default="all", help="comma list of row keys (see the docstring), or all")
    p.add_argument("--out", default="/tmp/bench_projection", help="folder for the pictures")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--target-seed", type=int, default=0)
    p.add_argument("--psi", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=303, help="torch / numpy seed before every NVIDIA run (projector.py's "
                   "default) and sg.project's seed")
    p.add_argument("--autocast", choices=("auto", "on", "off"), default="auto",
                   help="sg.project's bf16 autocast: auto (its default, autocast=None: bf16 for networks of >= 0.5 "
                        "GMAC on CPUs with AMX / AVX512-BF16, so float32 for the bundled model), on, off")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoints = sorted({int(n) for n in args.checkpoints.split(",") if int(n) <= args.steps}) or [args.steps]
    losses = [s for s in args.losses.split(",") if s]
    configs = all_configs(losses)
    if args.configs != "all":
        keys = args.configs.split(",")
        unknown = [k for k in keys if k not in {c.key for c in configs}]
        if unknown:
            p.error(f"--configs: unknown {unknown} (known: {', '.join(c.key for c in configs)})")
        configs = [c for c in configs if c.key in keys]

    print(f"machine: {machine('cpu')}", flush=True)
    bench = Bench(args)
    notes: dict[str, str] = {}
    if any(c.side == "nvidia" for c in configs):
        try:
            bench.official()
            dmax, dmean = bench.parity()
            print(f"official network ({os.path.abspath(official_checkout(args.official))}) with the bundled weights vs "
                  f"ours, seeds 0-7 at psi {args.psi}, noise const: max |diff| {dmax:.2e}, mean {dmean:.2e}",
                  flush=True)
        except NotHere as e:
            bench.official_note = str(e)
            print(f"NOTE: NVIDIA rows skipped: {e}", flush=True)
    print(f"target: seed {args.target_seed} at psi {args.psi} through the bundled model "
          f"({bench.G.info.img_resolution} px), noise const; runs of {', '.join(map(str, checkpoints))} steps; "
          f"seed {args.seed}; sg.project autocast {args.autocast}{auto_precision(bench.G, args.autocast)}", flush=True)

    runs: dict[tuple[str, int], Run] = {}
    t_all = time.perf_counter()
    for n in checkpoints:
        for cfg in configs:
            if cfg.key in notes:
                continue
            try:
                r = runs[(cfg.key, n)] = bench.run(cfg, n)
            except NotHere as e:
                notes[cfg.key] = f"n/a: {e}"
                print(f"# {cfg.key}: {notes[cfg.key]}", file=sys.stderr, flush=True)
                continue
            extra = "".join(f", {k} {v:.3f}" for k, v in r.extra.items())
            wall, cpu = step_ms([r])
            print(f"# {cfg.key} {n} steps: PSNR {r.psnr:.2f} dB, LPIPS {fmt(r.lpips, '.4f')}, {wall:.1f} ms/step wall, "
                  f"{cpu:.1f} CPU, "
                  f"{r.total_s:.1f} s{extra} ({time.perf_counter() - t_all:.0f} s so far)", file=sys.stderr, flush=True)

    print()
    for line in tables(configs, runs, notes, checkpoints):
        print(line)
    print("\nPSNR dB of the image as saved (proj.png: the ws with the model's constant noise, not the optimised "
          "noise), and the mean |ws row - target ws row| (L2):")
    for c in configs:
        got = [(n, runs[(c.key, n)]) for n in checkpoints if (c.key, n) in runs]
        if got:
            saved = ", ".join(f"{r.extra['psnr_saved']:.2f} @{n}" for n, r in got if "psnr_saved" in r.extra)
            werr = ", ".join(f"{r.extra['w_error']:.2f} @{n}" for n, r in got)
            print(f"  {c.key}: {('as saved ' + saved + '; ') if saved else ''}w error {werr}")
    for name, note in bench.loss_notes.items():
        print(f"NOTE: loss {name}: {note}")
    print(f"\npictures: {save_pictures(args.out, configs, runs, bench.target, checkpoints)} (and one PNG per run in "
          f"{args.out})")
    print(f"total {time.perf_counter() - t_all:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
