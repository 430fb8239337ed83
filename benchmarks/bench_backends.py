"""Backend speed: batch-1 latency (p50, p90) and throughput (images/s) per backend and model size.

    python benchmarks/bench_backends.py [--sizes 64,256] [--batches 1,8,32] [--device cpu|cuda]
                                        [--backends torch,torch-compile,onnxruntime,...] [--official PATH]

Models are randomly initialised config-f StyleGAN2 generators (channel_base 32768, channel_max 512,
8 mapping layers; 256 px has 14 ws), exported once to ONNX in a cache folder. Timings cover
`synthesize` (ws -> float images, noise "const"), the part that dominates generation. `--official`
times the official NVlabs generator from a stylegan2-ada-pytorch checkout on the same weights.
Prints a markdown table to paste into benchmarks/RESULTS.md; no assertions.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

import stylegan_sdk as sg
from stylegan_sdk.checkpoint import Checkpoint
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.exported import read_exported
from stylegan_sdk.models import build_generator

BACKENDS = ("torch", "torch-compile", "torch-fp16", "torch-fp16-compile", "onnxruntime", "tensorrt",
            "tensorrt-fp16", "official")


def config_f(resolution: int, channel_max: int = 512) -> GeneratorConfig:
    """Config F (channel_max 512); a smaller channel_max scales channel_base with it (a narrower network)."""
    return GeneratorConfig(z_dim=512, w_dim=512, img_resolution=resolution, channel_base=64 * channel_max,
                           channel_max=channel_max, mapping_layers=8)


def random_checkpoint(resolution: int, channel_max: int = 512) -> Checkpoint:
    torch.manual_seed(0)
    cfg = config_f(resolution, channel_max)
    model = build_generator(cfg)
    return Checkpoint(cfg, {k: v.detach().numpy() for k, v in model.state_dict().items()}, {"random_init": True})


def exported_folder(ckpt: Checkpoint, cache: str) -> str:
    from stylegan_sdk.onnx_export import export_onnx

    cfg = ckpt.config
    suffix = "" if cfg.channel_max == 512 else f"_c{cfg.channel_max}"
    folder = os.path.join(cache, f"configf_{cfg.img_resolution}{suffix}")
    if not os.path.isdir(folder):
        export_onnx(ckpt, folder, verify=False)
    return folder


def make_runner(name: str, ckpt: Checkpoint, device: str, cache: str, args: argparse.Namespace
                ) -> Callable[[np.ndarray], object] | None:
    """A function ws -> images for one backend, or None when it cannot run here (reason printed)."""
    from stylegan_sdk.backends.torch_backend import TorchBackend

    try:
        if name.startswith("torch"):
            backend = TorchBackend(ckpt.config, ckpt.tensors, device=device, fp16="fp16" in name,
                                   compile="compile" in name)
            return lambda ws: backend.synthesize(ws, "const", None)
        if name == "onnxruntime":
            from stylegan_sdk.backends.onnxruntime_backend import OnnxRuntimeBackend

            backend = OnnxRuntimeBackend(read_exported(exported_folder(ckpt, cache)), device=device)
            return lambda ws: backend.synthesize(ws, "const", None)
        if name.startswith("tensorrt"):
            from stylegan_sdk.trt_build import build_engines

            fp16 = name.endswith("fp16")
            src = exported_folder(ckpt, cache)
            out = os.path.join(cache, f"configf_{ckpt.config.img_resolution}_trt{'_fp16' if fp16 else ''}")
            if not os.path.isdir(out):
                build_engines(src, out_dir=out, fp16=fp16, max_batch=max(args.batches))
            G = sg.load(out, backend="tensorrt", device="cuda")
            return lambda ws: G.backend.synthesize(ws, "const", None)
        if name == "official":
            return official_runner(ckpt, device, args.official)
    except (ImportError, ValueError, RuntimeError) as e:
        print(f"# {name}: skipped ({str(e).splitlines()[0]})", file=sys.stderr)
        return None
    raise ValueError(f"backends: unknown backend {name!r}")


def official_runner(ckpt: Checkpoint, device: str, checkout: str | None) -> Callable[[np.ndarray], object] | None:
    """NVlabs stylegan2-ada-pytorch's Generator (from the user's checkout) with our weights."""
    if not checkout:
        raise ValueError("--official PATH not given")
    sys.path.insert(0, os.path.abspath(checkout))
    from training.networks import Generator  # the official module, from the checkout

    cfg = ckpt.config
    G = Generator(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution,
                  img_channels=cfg.img_channels, mapping_kwargs={"num_layers": cfg.mapping_layers},
                  synthesis_kwargs={"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                                    "architecture": cfg.architecture, "num_fp16_res": 0, "conv_clamp": None})
    G.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ckpt.tensors.items()})
    G = G.eval().requires_grad_(False).to(device)

    def run(ws: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return G.synthesis(torch.from_numpy(ws).to(device), noise_mode="const").cpu().numpy()

    return run


def timed(fn: Callable[[np.ndarray], object], ws: np.ndarray, iters: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn(ws)
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn(ws)
        out.append(time.perf_counter() - t0)
    return out


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    desc = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}"
    if device.startswith("cuda"):
        desc += f", GPU {torch.cuda.get_device_name()}"
    try:
        import onnxruntime

        desc += f", onnxruntime {onnxruntime.__version__}"
    except ImportError:
        pass
    return desc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="64,256", help="resolutions (add 1024 where memory allows)")
    p.add_argument("--batches", default="1,8,32", help="batch sizes for throughput")
    p.add_argument("--backends", default="torch,onnxruntime", help=",".join(BACKENDS))
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--iters", type=int, default=10, help="timed batch-1 calls for latency")
    p.add_argument("--throughput-iters", type=int, default=3, help="timed calls per batch size")
    p.add_argument("--official", default=None, help="path of a stylegan2-ada-pytorch checkout")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "stylegan-sdk-bench"))
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    names = args.backends.split(",")
    os.makedirs(args.cache, exist_ok=True)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    print(f"machine: {machine(args.device)}")
    print("| model | backend | batch-1 p50 ms | batch-1 p90 ms | " + " | ".join(f"img/s @{b}" for b in args.batches)
          + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in args.batches) + " |")
    for res in sizes:
        ckpt = random_checkpoint(res)
        rng = np.random.RandomState(0)
        for name in names:
            run = make_runner(name, ckpt, args.device, args.cache, args)
            if run is None:
                continue

            def call(ws: np.ndarray, run=run) -> None:
                run(ws)
                sync()

            ws1 = rng.randn(1, ckpt.config.num_ws, 512).astype(np.float32)
            lat = timed(call, ws1, args.iters, warmup=2)
            p50 = 1000 * statistics.median(lat)
            p90 = 1000 * float(np.percentile(lat, 90))
            rates = []
            for b in args.batches:
                wsb = rng.randn(b, ckpt.config.num_ws, 512).astype(np.float32)
                t = timed(call, wsb, args.throughput_iters, warmup=1)
                rates.append(b / statistics.median(t))
            print(f"| config-f {res}px ({ckpt.config.num_ws} ws) | {name} | {p50:.1f} | {p90:.1f} | "
                  + " | ".join(f"{r:.2f}" for r in rates) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
