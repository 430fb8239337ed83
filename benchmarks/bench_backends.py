"""Backend speed: ONE table per run, every backend at every size and batch, interleaved.

    python benchmarks/bench_backends.py [--sizes 64,256,1024] [--batches 1,8] [--repeats 5]
        [--repeats-large 1] [--backends official,torch,onnxruntime,openvino,openvino-bf16]
        [--official PATH] [--device cpu|cuda] [--cache DIR]

Rows, per model size: the official NVlabs generator in eager PyTorch (`official`: from `--official PATH`, a
checkout of NVlabs/stylegan3 (training/networks_stylegan2.py) or stylegan2-ada-pytorch
(training/networks.py), else /tmp/stylegan3-official when it exists; without one, the "x" column is
relative to our torch eager and the table says so), ours through the public API: `sg.load(checkpoint,
backend="torch")`, `sg.load(folder, backend="onnxruntime")`, `sg.load(folder, backend="openvino",
precision="fp32" | "bf16")` (bf16 only on CPUs with bfloat16 instructions; elsewhere its row says so).
On `--device cuda` the rows are torch, torch-fp16, torch-compile, torch-fp16-compile, onnxruntime (CUDA
provider) and tensorrt / tensorrt-fp16 where installed (`--backends` picks; a backend that cannot run
here gets an "n/a" row with the reason).

Models: randomly initialised config-f StyleGAN2 generators (channel_base 32768, channel_max 512, 8
mapping layers), saved once as a checkpoint and exported once to ONNX in `--cache` (delete it after
changing the export code). Timed: `G.synthesize(ws, noise_mode="const")` (ws -> float32 images on the
host; the official generator: `G.synthesis(ws, noise_mode="const")` copied to the host), after one
warm-up call per backend and batch; then `--repeats` rounds (`--repeats-large` from 512 px up), each
round calling every backend at every batch in turn (interleaved, so drifting machine load hits all rows
alike); the figures are medians. Columns per batch B: ms per image (median call time / B), images/s,
speed-up over the official generator at the same batch, achieved GFLOP/s and its share of the measured
fp32 GEMM peak; last column: max / mean |difference| of the uint8 images (clamp(x * 127.5 + 128)) from
our fp32 torch output on the same ws (all batches). On 2 CPU cores the defaults take about 15 minutes:
64 + 256 px ~6 min (measured), 1024 px ~8 min (estimated from its batch-1 figures: a 1024 px image takes
2.7-9 s depending on the backend).

GFLOP per image (synthesis only), counted analytically from the config and printed with the table:
for each block at resolution r with C = channels(r), Cin = channels(r/2), rgb = 3 channels:
    r = 4:  2*9*C*C*r^2 (3x3 conv) + 2*rgb*C*r^2 (toRGB 1x1)
    r > 4:  2*9*Cin*C*(r/2)^2   up-conv: stride-2 transposed 3x3, multiply-adds at the input resolution
          + 2*16*C*r^2          its 4x4 low-pass FIR (depthwise)
          + 2*9*C*C*r^2         3x3 conv
          + 2*rgb*C*r^2         toRGB 1x1
          + 2*16*rgb*r^2        FIR up-sampling of the RGB skip (4x4 on the zero-stuffed grid)
(2 FLOP per multiply-add; the affine layers, demodulation and element-wise ops, < 0.1 %, are left out).
Config-f: 32.27 GFLOP at 64 px, 90.74 at 256 px, 150.76 at 1024 px; torch.utils.flop_counter on our
torch model agrees to 0.04 % (its aten.convolution count is the same number; the rest is the affine mm).
The peak is a large fp32 matmul (torch and numpy, best of a few), measured at the start and at the end
of the run (the higher one is used).

Measured alternatives (2026-11-28, config-f 256 px, batch 1, this 2-core AMD EPYC (Zen 3, AVX2, no
AVX512 / BF16; fp32 GEMM peak ~185-193 GFLOP/s when quiet), torch 2.13, onnxruntime 1.32, OpenVINO
2026.4; interleaved runs with the official generator, also compared by process CPU time because other
jobs shared the machine): ONNX Runtime with the SDK's options (ORT_ENABLE_ALL, default threads) runs the
synthesis at 77-85 % of that peak, 1.4-1.5x the official generator (591 vs 866 ms median in the quietest
run); even 100 % of the peak would be ~1.8x, so fp32 options or graph rewrites cannot go much further
here. Session options: intra_op_num_threads=2 (= cores), allow_spinning=0, set_denormal_as_zero: within
noise (0 to -5 %); ORT_ENABLE_EXTENDED: 10 % slower (no NCHWc convolutions); ORT_PARALLEL: 1.7x
slower; memory pattern + arena off: 15 % slower. OpenVINO (fp32): LATENCY = ONNX Runtime within noise
at 64-256 px, ~1.4x faster at 1024 px; THROUGHPUT (2 streams of 1 thread) halves one call's speed;
NUM_STREAMS=1, INFERENCE_NUM_THREADS, ENABLE_CPU_PINNING, a static batch-1 shape: no gain. Graph
changes (each within 2e-5 of the current graph): the modulated weight at batch 1 (a plain conv with
W * s * d): 4-14 % slower (the weights are no longer pre-packed); the up-sampling conv as four
polyphase convs instead of ConvTranspose: equal on ONNX Runtime (its small kernels run less
efficiently), 7 % slower on OpenVINO; one polyphase conv with 4x the outputs: 20-25 % slower; the 4x4
FIR as two 1-D passes, the activation gain folded into demodulation / noise / bias, or demodulation
deferred into the next layer's style scale: within noise (<= 2 %); Winograd F(2x2,3x3) written as
ONNX ops: no gain (its transforms and layout transposes cost what the 2.25x fewer multiplies save).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

import stylegan_sdk as sg
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.formats.checkpoint import Checkpoint, save_checkpoint
from stylegan_sdk.images import to_uint8
from stylegan_sdk.models import build_generator

CPU_BACKENDS = ("official", "torch", "onnxruntime", "openvino", "openvino-bf16")
CUDA_BACKENDS = ("official", "torch", "torch-fp16", "torch-compile", "torch-fp16-compile", "onnxruntime",
                 "tensorrt", "tensorrt-fp16")
BACKENDS = tuple(dict.fromkeys(CPU_BACKENDS + CUDA_BACKENDS))
DEFAULT_OFFICIAL = "/tmp/stylegan3-official"
LARGE = 512  # sizes from here up use --repeats-large


# ----------------------------------------------------------------------------
# Models


def config_f(resolution: int, channel_max: int = 512) -> GeneratorConfig:
    """Config F (channel_max 512); a smaller channel_max scales channel_base with it (a narrower network)."""
    return GeneratorConfig(z_dim=512, w_dim=512, img_resolution=resolution, channel_base=64 * channel_max,
                           channel_max=channel_max, mapping_layers=8)


def random_checkpoint(resolution: int, channel_max: int = 512) -> Checkpoint:
    torch.manual_seed(0)
    cfg = config_f(resolution, channel_max)
    model = build_generator(cfg)
    return Checkpoint(cfg, {k: v.detach().numpy() for k, v in model.state_dict().items()}, {"random_init": True})


def _name(cfg: GeneratorConfig) -> str:
    suffix = "" if cfg.channel_max == 512 else f"_c{cfg.channel_max}"
    return f"configf_{cfg.img_resolution}{suffix}"


def exported_folder(ckpt: Checkpoint, cache: str) -> str:
    from stylegan_sdk.export.onnx import export_onnx

    folder = os.path.join(cache, _name(ckpt.config))
    if not os.path.isdir(folder):
        export_onnx(ckpt, folder, verify=False)
    return folder


def checkpoint_file(ckpt: Checkpoint, cache: str) -> str:
    """The checkpoint as a .safetensors file (what sg.load reads for the torch backend)."""
    path = os.path.join(cache, _name(ckpt.config) + ".safetensors")
    if not os.path.isfile(path):
        save_checkpoint(path, ckpt.config, ckpt.tensors, ckpt.metadata)
    return path


def gflop_per_image(cfg: GeneratorConfig) -> float:
    """Synthesis GFLOP per image, as the module docstring derives it."""
    total = 0
    rgb = cfg.img_channels
    for r in cfg.block_resolutions:
        c = cfg.channels_at(r)
        if r == 4:
            total += 2 * 9 * c * c * r * r + 2 * rgb * c * r * r
            continue
        ci = cfg.channels_at(r // 2)
        total += (2 * 9 * ci * c * (r // 2) ** 2 + 2 * 16 * c * r * r + 2 * 9 * c * c * r * r
                  + 2 * rgb * c * r * r + 2 * 16 * rgb * r * r)
    return total / 1e9


# ----------------------------------------------------------------------------
# Runners: ws [B, num_ws, w_dim] float32 -> float32 images [B, C, H, W] on the host


class NotHere(Exception):
    """A backend that cannot run on this machine / install (its row says why)."""


def official_checkout(path: str | None) -> str | None:
    if path:
        return path
    return DEFAULT_OFFICIAL if os.path.isdir(DEFAULT_OFFICIAL) else None


def shim_official_imports() -> None:
    """What the official checkouts import that this environment may lack: `pkg_resources` (gone from recent
    setuptools; parse_version only), `requests` (dnnlib's downloads, none made here), and `click` / `imageio`
    (the scripts' command lines and videos, e.g. projector.py's, whose functions are called directly)."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import parse

        shim = types.ModuleType("pkg_resources")
        shim.parse_version = parse  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    try:
        import requests  # noqa: F401
    except ImportError:
        sys.modules["requests"] = types.ModuleType("requests")
    # The command-line halves of the official scripts (projector.py, generate.py): decorators and video output,
    # never called here.
    try:
        import click  # noqa: F401
    except ImportError:
        shim = types.ModuleType("click")
        shim.command = shim.option = lambda *a, **k: (lambda f: f)  # type: ignore[attr-defined]
        sys.modules["click"] = shim
    try:
        import imageio  # noqa: F401
    except ImportError:
        sys.modules["imageio"] = types.ModuleType("imageio")


def import_official(checkout: str) -> tuple[types.ModuleType, bool]:
    """The official StyleGAN2 networks module from a checkout (imported, never copied): NVlabs/stylegan3's
    training.networks_stylegan2, or stylegan2-ada-pytorch's training.networks; (module, is_stylegan3).
    Shims where the checkout's imports need them: `pkg_resources` (gone from recent setuptools;
    parse_version only) and `requests` (dnnlib downloads, none made here)."""
    shim_official_imports()
    root = os.path.abspath(checkout)
    sg3 = os.path.isfile(os.path.join(root, "training", "networks_stylegan2.py"))
    if not sg3 and not os.path.isfile(os.path.join(root, "training", "networks.py")):
        raise NotHere(f"{checkout!r} has neither training/networks_stylegan2.py nor training/networks.py")
    if root not in sys.path:
        sys.path.insert(0, root)
    with contextlib.redirect_stdout(io.StringIO()):
        if sg3:
            from training import networks_stylegan2 as module
        else:
            from training import networks as module
    return module, sg3


def official_generator(ckpt: Checkpoint, device: str, checkout: str | None) -> torch.nn.Module:
    """NVlabs' StyleGAN2 Generator (from the checkout) with the checkpoint's weights (same state-dict names),
    fp32, eval, requires_grad off, on `device`. NotHere without a checkout."""
    checkout = official_checkout(checkout)
    if not checkout:
        raise NotHere(f"no --official checkout given and {DEFAULT_OFFICIAL} does not exist")
    module, sg3 = import_official(checkout)
    cfg = ckpt.config
    syn = {"channel_base": cfg.channel_base, "channel_max": cfg.channel_max, "num_fp16_res": 0,
           "conv_clamp": cfg.conv_clamp, "architecture": cfg.architecture}
    common = dict(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution,
                  img_channels=cfg.img_channels, mapping_kwargs={"num_layers": cfg.mapping_layers})
    with contextlib.redirect_stdout(io.StringIO()):
        G = module.Generator(**common, **syn) if sg3 else module.Generator(**common, synthesis_kwargs=syn)
    G.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ckpt.tensors.items()})
    return G.eval().requires_grad_(False).to(device)


def official_runner(ckpt: Checkpoint, device: str, checkout: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """NVlabs' StyleGAN2 Generator (official_generator), ws -> float32 images on the host, noise const."""
    G = official_generator(ckpt, device, checkout)

    def run(ws: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return G.synthesis(torch.from_numpy(ws).to(device), noise_mode="const").cpu().numpy()

    return run


def sdk_runner(G: sg.Generator) -> Callable[[np.ndarray], np.ndarray]:
    return lambda ws: G.synthesize(ws, noise_mode="const", output="float")


def make_runner(name: str, ckpt: Checkpoint, args: argparse.Namespace) -> Callable[[np.ndarray], np.ndarray]:
    """A function ws -> images for one backend; NotHere (with the reason) when it cannot run here."""
    device, cache, bs = args.device, args.cache, max(args.batches)
    cuda = device.startswith("cuda")
    try:
        if name == "official":
            return official_runner(ckpt, device, args.official)
        if name.startswith("torch"):
            if "fp16" in name and not cuda:
                raise NotHere("float16 synthesis is a CUDA path")
            G = sg.load(checkpoint_file(ckpt, cache), backend="torch", device=device, batch_size=bs,
                        precision="fp16" if "fp16" in name else "fp32", compile="compile" in name)
            return sdk_runner(G)
        if name == "onnxruntime":
            return sdk_runner(sg.load(exported_folder(ckpt, cache), backend="onnxruntime", device=device,
                                      batch_size=bs))
        if name.startswith("openvino"):
            if cuda:
                raise NotHere("OpenVINO runs on the CPU here")
            precision = "bf16" if name.endswith("bf16") else "fp32"
            if precision == "bf16":
                try:
                    from stylegan_sdk.backends.openvino_backend import cpu_precisions
                except ImportError as e:
                    raise NotHere(f"openvino not installed ({e})") from None
                if "bf16" not in cpu_precisions():
                    raise NotHere("CPU lacks BF16")
            return sdk_runner(sg.load(exported_folder(ckpt, cache), backend="openvino", device=device,
                                      precision=precision, batch_size=bs))
        if name.startswith("tensorrt"):
            if not cuda:
                raise NotHere("TensorRT needs an NVIDIA GPU")
            from stylegan_sdk.export.tensorrt import build_engines

            fp16 = name.endswith("fp16")
            src = exported_folder(ckpt, cache)
            out = os.path.join(cache, f"{_name(ckpt.config)}_trt{'_fp16' if fp16 else ''}_b{bs}")
            if not os.path.isdir(out):
                build_engines(src, out_dir=out, fp16=fp16, max_batch=bs)
            return sdk_runner(sg.load(out, backend="tensorrt", device=device, batch_size=bs))
    except NotHere:
        raise
    except (ImportError, ValueError, RuntimeError, NotImplementedError) as e:
        raise NotHere(" ".join(str(e).split())[:160] or type(e).__name__) from None
    raise ValueError(f"backends: unknown backend {name!r} (choose from {', '.join(BACKENDS)})")


# ----------------------------------------------------------------------------
# Machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The instruction-set flags that matter here (x86 /proc/cpuinfo names), present or absent."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line.split(":", 1)[1].split() for line in f if line.startswith("flags")))
    except (OSError, StopIteration):
        return "flags unknown"
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16")
    have = [f for f in wanted if f in flags]
    lacks = [f for f in wanted if f not in flags]
    return f"flags: {' '.join(have) or '-'}; lacks: {' '.join(lacks) or '-'}"


def versions() -> str:
    out = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"torch {torch.__version__}"]
    for mod in ("onnxruntime", "openvino", "tensorrt"):
        try:
            m = __import__(mod)
            out.append(f"{mod} {getattr(m, '__version__', '?').split('-')[0]}")
        except ImportError:
            pass
    return ", ".join(out)


def machine(device: str) -> str:
    cores = os.cpu_count()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    desc = f"{cpu_model()}, {cores} cores ({cpu_flags()}), {versions()}, torch threads {torch.get_num_threads()}"
    if device.startswith("cuda"):
        desc += f", GPU {torch.cuda.get_device_name()}"
    return desc


def gemm_peak(device: str) -> tuple[float, str]:
    """Measured fp32 GEMM GFLOP/s (best of a few large matmuls) and how it was measured."""
    if device.startswith("cuda"):
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            n = 8192
            a = torch.randn(n, n, device=device)
            b = torch.randn(n, n, device=device)
            best = float("inf")
            for _ in range(6):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                a @ b
                torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old
        return 2 * n**3 / best / 1e9, f"torch fp32 (TF32 off) {n}x{n} matmul on {device}, best of 6"
    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    results = {}
    for lib, fn in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb)):
        fn()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        results[lib] = 2 * n**3 / best / 1e9
    lib = max(results, key=results.get)
    return results[lib], (f"fp32 {n}x{n} matmul, best of 5: numpy {results['numpy']:.0f}, torch "
                          f"{results['torch']:.0f} GFLOP/s")


# ----------------------------------------------------------------------------
# Timing


@dataclass
class Row:
    name: str
    label: str
    run: Callable[[np.ndarray], np.ndarray] | None = None
    note: str = ""                                                  # why there are no figures
    times: dict[int, list[float]] = field(default_factory=dict)     # batch -> call seconds
    diff_max: float = 0.0
    diff_sum: float = 0.0
    diff_n: int = 0


def label_for(name: str, device: str) -> str:
    return {"official": "official eager (NVlabs)", "torch": "ours, torch eager", "onnxruntime": "ours, ONNX Runtime",
            "openvino": "ours, OpenVINO fp32", "openvino-bf16": "ours, OpenVINO bf16"}.get(name, f"ours, {name}") \
        if not device.startswith("cuda") else name


def repeats_for(res: int, batch: int, args: argparse.Namespace) -> int:
    if batch == 1 and args.iters:
        return args.iters
    if batch > 1 and args.throughput_iters:
        return args.throughput_iters
    return args.repeats_large if res >= LARGE else args.repeats


def bench_size(res: int, names: list[str], args: argparse.Namespace) -> tuple[GeneratorConfig, list[Row], str]:
    """Time every backend at every batch for one model size (interleaved); (config, rows, baseline name)."""
    ckpt = random_checkpoint(res)
    cfg = ckpt.config
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    rows = []
    for name in names:
        row = Row(name, label_for(name, args.device))
        try:
            row.run = make_runner(name, ckpt, args)
        except NotHere as e:
            row.note = f"n/a: {e}"
            print(f"# config-f {res}px {name}: {row.note}", file=sys.stderr, flush=True)
        rows.append(row)
    # Reference: our fp32 torch on the same ws (the torch row's own runner when it is there).
    ref_run = next((r.run for r in rows if r.name == "torch" and r.run is not None), None)
    if ref_run is None:
        ref_run = make_runner("torch", ckpt, args)
    bmax = max(args.batches)
    ws_all = np.random.RandomState(res).randn(bmax, cfg.num_ws, cfg.w_dim).astype(np.float32)
    ref = to_uint8(np.asarray(ref_run(ws_all), np.float32))
    live = [r for r in rows if r.run is not None]
    # Warm-up (untimed): one call per backend and batch; its images give the uint8 differences.
    for b in args.batches:
        ws = np.ascontiguousarray(ws_all[:b])
        for r in live:
            out = to_uint8(np.asarray(r.run(ws), np.float32))
            d = np.abs(out.astype(np.int16) - ref[:b].astype(np.int16))
            r.diff_max = max(r.diff_max, float(d.max()))
            r.diff_sum += float(d.sum())
            r.diff_n += d.size
            sync()
    # Timed rounds: every backend at every batch in turn.
    reps = {b: repeats_for(res, b, args) for b in args.batches}
    for k in range(max(reps.values())):
        for b in args.batches:
            if k >= reps[b]:
                continue
            ws = np.ascontiguousarray(ws_all[:b])
            for r in live:
                sync()
                t0 = time.perf_counter()
                r.run(ws)
                sync()
                r.times.setdefault(b, []).append(time.perf_counter() - t0)
    baseline = next((n for n in ("official", "torch") if any(r.name == n and r.run for r in rows)),
                    live[0].name if live else "")
    return cfg, rows, baseline


# ----------------------------------------------------------------------------
# The table


def table(results: list[tuple[GeneratorConfig, list[Row], str]], batches: list[int], peak: float,
          device: str) -> list[str]:
    baselines = {base for _, _, base in results}
    xname = "official" if baselines == {"official"} else "/".join(sorted(baselines)) or "-"
    head = ["model", "backend"]
    for b in batches:
        head += [f"ms/img @{b} (p50)", f"img/s @{b}", f"x {xname} @{b}", f"GFLOP/s @{b} (% peak)"]
    head.append("uint8 diff max / mean vs ours torch fp32")
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for cfg, rows, base in results:
        gf = gflop_per_image(cfg)
        model = f"config-f {cfg.img_resolution}px ({cfg.num_ws} ws, {gf:.1f} GFLOP)"
        base_row = next((r for r in rows if r.name == base), None)
        for r in rows:
            label = r.label + (" (baseline)" if r.name == base and base != "official" else "")
            cells = [model, label]
            if r.run is None:
                cells += [r.note] + ["-"] * (4 * len(batches))
                lines.append("| " + " | ".join(cells) + " |")
                continue
            for b in batches:
                ts = r.times.get(b)
                if not ts:
                    cells += ["-"] * 4
                    continue
                ms = 1000 * statistics.median(ts) / b
                rate = 1000 / ms
                x = "-"
                if base_row is not None and base_row.times.get(b):
                    x = f"{1000 * statistics.median(base_row.times[b]) / b / ms:.2f}x"
                cells += [f"{ms:,.1f}", f"{rate:,.2f}", x, f"{gf * rate:,.0f} ({100 * gf * rate / peak:.0f}%)"]
            mean = r.diff_sum / r.diff_n if r.diff_n else float("nan")
            cells.append("0 / 0 (reference)" if r.name == "torch" else f"{r.diff_max:.0f} / {mean:.4f}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="64,256,1024", help="resolutions (config-f)")
    p.add_argument("--batches", default="1,8", help="batch sizes")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per size (below 512 px)")
    p.add_argument("--repeats-large", type=int, default=1, help="timed rounds from 512 px up")
    p.add_argument("--backends", default=None,
                   help=f"comma list (default cpu: {','.join(CPU_BACKENDS)}; cuda: "
                        f"official,torch,torch-fp16,torch-fp16-compile,onnxruntime,tensorrt,tensorrt-fp16); "
                        f"known: {','.join(BACKENDS)}")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--official", default=None,
                   help=f"checkout of NVlabs/stylegan3 or stylegan2-ada-pytorch (default {DEFAULT_OFFICIAL} "
                        f"when it exists)")
    p.add_argument("--iters", type=int, default=0, help="timed batch-1 calls (overrides --repeats for batch 1)")
    p.add_argument("--throughput-iters", type=int, default=0,
                   help="timed calls per larger batch (overrides --repeats for batches > 1)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "stylegan-sdk-bench"))
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    cuda = args.device.startswith("cuda")
    default = "official,torch,torch-fp16,torch-fp16-compile,onnxruntime,tensorrt,tensorrt-fp16" if cuda \
        else ",".join(CPU_BACKENDS)
    names = (args.backends or default).split(",")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        p.error(f"--backends: unknown {unknown} (known: {', '.join(BACKENDS)})")
    if args.repeats < 1 or args.repeats_large < 1:
        p.error("--repeats / --repeats-large must be >= 1")
    if cuda and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch sees no CUDA device")
    os.makedirs(args.cache, exist_ok=True)

    print(f"machine: {machine(args.device)}", flush=True)
    peak, how = gemm_peak(args.device)
    print(f"fp32 GEMM peak at the start: {peak:,.0f} GFLOP/s ({how})", flush=True)
    t0 = time.perf_counter()
    results = []
    for res in sizes:
        results.append(bench_size(res, names, args))
        print(f"# config-f {res}px done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    peak_end, how = gemm_peak(args.device)
    print(f"fp32 GEMM peak at the end: {peak_end:,.0f} GFLOP/s ({how}); the table uses the higher one", flush=True)
    peak = max(peak, peak_end)
    bases = {base for _, _, base in results}
    reps = ", ".join(f"{r}px: " + "/".join(str(repeats_for(r, b, args)) for b in args.batches) for r in sizes)
    print(f"\nsynthesis (ws -> float32 images on the host, noise const), {'interleaved rounds'}: {reps} "
          f"(per batch {'/'.join(map(str, args.batches))}), after 1 warm-up call each; medians. "
          f"% peak: of the fp32 GEMM peak above" + (" (fp16/bf16 rows can exceed it)" if cuda else "") + ".")
    if "official" not in bases:
        why = ("not in --backends" if "official" not in names
               else f"no checkout (--official PATH or {DEFAULT_OFFICIAL})")
        print(f"NOTE: official generator {why}: the x column is relative to {', '.join(sorted(bases))} (marked "
              f"baseline).")
    print()
    for line in table(results, args.batches, peak, args.device):
        print(line)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
