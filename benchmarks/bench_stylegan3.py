"""StyleGAN3 speed on the CPU at batch 1: the official generator (eager, reference ops) vs ours in torch vs
ours on ONNX Runtime, interleaved in one run, on the same random weights.

    python benchmarks/bench_stylegan3.py --official /path/to/NVlabs-stylegan3-checkout \\
        [--cfgs stylegan3-t,stylegan3-r] [--resolution 256] [--iters 7] [--seeds 0,1,2]

Configs are what the official `train.py --cfg stylegan3-t|stylegan3-r --batch 32` passes to the
Generator with its other defaults: cbase 32768, cmax 512, z = w = 512, 2 mapping layers, num_fp16_res 4
and conv_clamp 256 (fp16 is used on CUDA only: on the CPU the official layers run in float32),
magnitude_ema_beta 0.5 ** (32 / 20e3); -r adds conv_kernel 1, doubled channel_base and channel_max and
radial filters. The official Generator is initialised with torch.manual_seed(0); its state dict goes
through our importer (`import_state`) into our model, which is exported to ONNX (cached under `--cache`;
delete that folder after changing the export code; the export's own check is skipped, the agreement check
below covers it).

The official code is imported from the checkout given, at run time (never copied here); on the CPU its
custom ops take their reference paths. Its conv2d_gradfix / grid_sample_gradfix import `pkg_resources`,
which recent setuptools no longer ships: where it is missing the benchmark installs a shim module in
sys.modules (parse_version = packaging.version.parse); likewise an empty `requests` module where that is
not installed (dnnlib.util imports it for downloads, none made here).

First the three are compared on the same ws (max abs image difference; ws from the official mapping for
each of `--seeds`, psi 1, identity transform; then one translated + rotated view, official vs our torch
vs our ONNX Runtime). Timing: synthesis only (ws -> image, ws from one mapping call), batch 1,
torch.no_grad, default thread counts, `--warmup` calls each, then `--iters` rounds of one call per variant
in turn: official, ours torch, ours ONNX Runtime, ours ONNX Runtime with a translate + rotate input
transform. Prints markdown for benchmarks/RESULTS.md; no assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_backends import machine, shim_official_imports  # noqa: E402

from stylegan_sdk.formats.checkpoint import Checkpoint  # noqa: E402
from stylegan_sdk.importers.nvlabs.convert import import_state  # noqa: E402
from stylegan_sdk.latents import input_transform  # noqa: E402
from stylegan_sdk.models import build_with_weights  # noqa: E402

VIEW = ((0.1, -0.05), 10.0)  # translate (x, y), rotate degrees: the non-identity transform timed and checked


def official_kwargs(cfg: str, resolution: int, batch: int = 32) -> dict:
    """Generator(**kwargs) as train.py builds it for --cfg with its defaults (--batch 32)."""
    if cfg not in ("stylegan3-t", "stylegan3-r"):
        raise ValueError(f"cfgs: {cfg!r} is not stylegan3-t or stylegan3-r")
    kwargs = dict(z_dim=512, w_dim=512, c_dim=0, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, channel_base=32768, channel_max=512,
                  num_fp16_res=4, conv_clamp=256, magnitude_ema_beta=0.5 ** (batch / (20 * 1e3)))
    if cfg == "stylegan3-r":
        kwargs.update(conv_kernel=1, channel_base=2 * 32768, channel_max=2 * 512, use_radial_filters=True)
    return kwargs


def import_official(path: str) -> types.ModuleType:
    """training.networks_stylegan3 from the checkout, with the shims its imports need here."""
    shim_official_imports()
    sys.path.insert(0, os.path.abspath(path))
    with contextlib.redirect_stdout(io.StringIO()):
        from training import networks_stylegan3  # the official module, from the checkout

    return networks_stylegan3


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def run_config(name: str, args: argparse.Namespace, official: types.ModuleType) -> tuple[list[str], list[str]]:
    """(table rows, agreement lines) for one config."""
    from stylegan_sdk.backends.onnxruntime_backend import OnnxRuntimeBackend
    from stylegan_sdk.export.onnx import export_onnx

    kwargs = official_kwargs(name, args.resolution)
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        G_off = official.Generator(**{**kwargs, "mapping_kwargs": dict(kwargs["mapping_kwargs"])})
    G_off = G_off.eval().requires_grad_(False)
    state = {k: v.detach().numpy() for k, v in G_off.state_dict().items()}
    ckpt: Checkpoint = import_state(kwargs, state, f"official {name} (random init)")
    ours = build_with_weights(ckpt.config, ckpt.tensors, name)
    folder = os.path.join(args.cache, f"{name}_{args.resolution}_seed0")
    if not os.path.isdir(folder):
        with contextlib.redirect_stdout(io.StringIO()):
            export_onnx(ckpt, folder, verify=False)  # its check runs batch 7 too: > 24 GB for -r at 256 px
    ort = OnnxRuntimeBackend(folder)
    view_np = input_transform(*VIEW)[np.newaxis]                       # [1, 3, 3]
    view = torch.from_numpy(view_np)
    label = f"{name} {args.resolution}px"

    with torch.no_grad():
        # Agreement: same ws (official mapping, psi 1) through all three.
        diffs: dict[str, list[float]] = {"ours, torch": [], "ours, ONNX Runtime": []}
        for seed in args.seeds:
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, 512).astype(np.float32))
            ws = G_off.mapping(z, None, truncation_psi=1)
            ref = G_off.synthesis(ws, noise_mode="const").numpy()
            diffs["ours, torch"].append(max_diff(ours.synthesis(ws).numpy(), ref))
            diffs["ours, ONNX Runtime"].append(max_diff(ort.synthesize(ws.numpy(), "const", None), ref))
        seeds = ",".join(str(s) for s in args.seeds)
        agree = [f"{label}, seeds {seeds}, identity: max |ours torch - official| "
                 f"{max(diffs['ours, torch']):.1e}, max |ours ONNX Runtime - official| "
                 f"{max(diffs['ours, ONNX Runtime']):.1e} (image range about "
                 f"[{ref.min():.2f}, {ref.max():.2f}])"]
        G_off.synthesis.input.transform.copy_(view[0])                  # official: the buffer, as gen_images.py
        ref_view = G_off.synthesis(ws, noise_mode="const").numpy()
        G_off.synthesis.input.transform.copy_(torch.eye(3))
        d_torch = max_diff(ours.synthesis(ws, transform=view).numpy(), ref_view)
        d_ort = max_diff(ort.synthesize(ws.numpy(), "const", None, view_np), ref_view)
        agree.append(f"{label}, seed {args.seeds[-1]}, translate {VIEW[0]} rotate {VIEW[1]} deg: max |ours torch - "
                     f"official| {d_torch:.1e}, max |ours ONNX Runtime - official| {d_ort:.1e}")

        # Timing: ws from one mapping call; one call per variant per round, in turn.
        z = torch.from_numpy(np.random.RandomState(args.seeds[0]).randn(1, 512).astype(np.float32))
        ws = G_off.mapping(z, None, truncation_psi=1)
        ws_np = ws.numpy()
        variants: dict[str, Callable[[], object]] = {
            "official eager": lambda: G_off.synthesis(ws, noise_mode="const"),
            "ours, torch": lambda: ours.synthesis(ws),
            "ours, ONNX Runtime": lambda: ort.synthesize(ws_np, "const", None),
            "ours, ONNX Runtime, translate+rotate": lambda: ort.synthesize(ws_np, "const", None, view_np),
        }
        for fn in variants.values():
            for _ in range(args.warmup):
                fn()
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.iters):
            for k, fn in variants.items():
                times[k].append(timed(fn))
    ort.close()

    base_med = statistics.median(times["official eager"])
    base_min = min(times["official eager"])
    rows = []
    for k, ts in times.items():
        med, best = statistics.median(ts), min(ts)
        diff = f"{max(diffs[k]):.1e}" if k in diffs else ("0 (reference)" if k == "official eager" else "-")
        rows.append(f"| {label} | {k} | {1000 * med:.0f} | {1000 * best:.0f} | {base_med / med:.2f}x | "
                    f"{base_min / best:.2f}x | {diff} |")
    return rows, agree


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", required=True, help="a checkout of NVlabs/stylegan3 (imported, never copied)")
    p.add_argument("--cfgs", default="stylegan3-t,stylegan3-r")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--iters", type=int, default=7, help="timed rounds (one call per variant each)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per variant first")
    p.add_argument("--seeds", default="0,1,2", help="seeds for the agreement check (the first is timed)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "stylegan-sdk-bench"))
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    os.makedirs(args.cache, exist_ok=True)
    official = import_official(args.official)
    print(f"machine: {machine('cpu')}")
    print(f"batch 1 synthesis, {args.iters} interleaved rounds after {args.warmup} warm-up call(s) each; "
          f"speed-up = official "
          f"/ variant (median, min); max abs diff vs official on the same ws, seeds {args.seeds}, identity "
          f"transform\n")
    print("| model | variant | median ms | min ms | speed-up (median) | speed-up (min) | max abs diff |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    agreement = []
    for name in args.cfgs.split(","):
        rows, agree = run_config(name, args, official)
        agreement += agree
        for row in rows:
            print(row, flush=True)
    print("\nagreement (same weights, same ws):")
    for line in agreement:
        print(f"- {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
