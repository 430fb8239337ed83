"""GPU parity and GPU-resident speed, one line per check (benchmarks/gpu_check.sh collects them).

    python benchmarks/gpu_parity.py [--device cuda|cpu]                  # parity (default)
    python benchmarks/gpu_parity.py --speed [--speed-res 1024] [--speed-batches 1,32] [--no-compile]
    python benchmarks/gpu_parity.py --targets LOG [LOG ...]              # bench_backends.py tables vs targets

Parity (TF32 off on CUDA, so fp32 means fp32):
  - the NVlabs StyleGAN2 fixtures (tests/fixtures/nvlabs-stylegan2) on the torch backend against their
    stored reference ws and images (psi 0.7, noise const and none), tolerance 1e-4;
  - fp16 against fp32 (CUDA only): the fixtures (tolerance 5e-2 on float images) and a random config-f
    256 px network (reported only), as float max |d| and uint8 mean / max |d|;
  - ONNX Runtime against torch on sg2_skip_32: the CUDA provider on --device cuda (skipped when this
    onnxruntime has none; its CUDA provider may use TF32: tolerance 2e-3), the CPU provider on --device cpu;
  - TensorRT fp32 / fp16 engines against torch on sg2_skip_32 (CUDA and tensorrt only; 1e-3 / 5e-2).
Exit code 1 when a check with a tolerance misses it or fails with an error, else 0 (skips are no failure).

Speed: synthesis of a random config-f network with the input ws and the output images left on the GPU
(no host copies, unlike bench_backends.py, whose figures include downloading float32 images): batch-1
latency (p50, p90) and images/s at the larger batches, for torch fp32, fp16 and fp16 + torch.compile
(mode "max-autotune": CUDA graphs), printed next to the targets (>= 1,400 img/s at 1024 px fp16,
batch-1 latency < 3 ms).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the repo's stylegan_sdk, installed or not

NVLABS = ROOT / "tests" / "fixtures" / "nvlabs-stylegan2"
FIXTURES = ("sg2_skip_32", "sg2_resnet_16_cond", "sg2_orig_16_gray_cut")
FIXTURE_TOL = 1e-4
FP16_TOL = 5e-2
TARGET_IMG_S = 1400.0  # at 1024 px, fp16
TARGET_LATENCY_MS = 3.0  # batch 1
TARGETS = f"targets: >= {TARGET_IMG_S:,.0f} img/s at 1024 px fp16, batch-1 latency < {TARGET_LATENCY_MS:g} ms"


def say(line: str) -> None:
    print(line, flush=True)


def verdict(err: float, tol: float | None) -> str:
    if tol is None:
        return "(report only)"
    return f"(tol {tol:.0e}) {'ok' if err <= tol else 'FAIL'}"


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


# ----------------------------------------------------------------------------
# Parity


def fixture(name: str):
    """(config.json, reference outputs, Checkpoint) of one NVlabs fixture."""
    from stylegan_sdk.importers.nvlabs.convert import import_state

    folder = NVLABS / name
    config = json.loads((folder / "config.json").read_text())
    ref = dict(np.load(folder / "reference.npz"))
    ckpt = import_state(config["init_kwargs"], dict(np.load(folder / "G_state_dict.npz")),
                        str(folder / "G_state_dict.npz"))
    return config, ref, ckpt


class Parity:
    def __init__(self, device: str) -> None:
        self.device = device
        self.failed = 0

    def check(self, what: str, fn) -> None:
        """Run one check; its exception becomes one 'error' line (and a failure), the others still run."""
        try:
            fn()
        except Exception as e:  # every check reports; none stops the rest
            self.failed += 1
            first = (str(e).strip().splitlines() or [""])[0]
            say(f"parity: {what}: error: {type(e).__name__}: {first}")
            traceback.print_exc(file=sys.stderr)

    def record(self, err: float, tol: float | None) -> str:
        if tol is not None and not err <= tol:  # NaN fails too
            self.failed += 1
        return verdict(err, tol)

    def fixtures(self, name: str) -> None:
        import stylegan_sdk as sg
        from stylegan_sdk.backends.torch_backend import TorchBackend

        config, ref, ckpt = fixture(name)
        G = sg.Generator(TorchBackend(ckpt.config, ckpt.tensors, device=self.device))
        ws = G.map(ref["z"], c=ref.get("c"), psi=0.7, cutoff=config["truncation_cutoff"])
        errs = {"ws": max_abs(ws, ref["ws_psi070"])}
        for mode in ("const", "none"):
            errs[f"img {mode}"] = max_abs(G.synthesize(ref["ws_psi070"], noise_mode=mode),
                                          ref[f"img_psi070_{mode}"])
        worst = max(errs.values())
        say(f"parity: fixture {name}, torch fp32 on {self.device}{self.tf32_note()} vs stored reference: max|d| "
            + ", ".join(f"{k} {v:.2e}" for k, v in errs.items()) + f" {self.record(worst, FIXTURE_TOL)}")

    def tf32_note(self) -> str:
        return " (TF32 off)" if self.device.startswith("cuda") else ""

    def fp16(self, name: str) -> None:
        from stylegan_sdk.backends.torch_backend import TorchBackend
        from stylegan_sdk.images import to_uint8

        if not self.device.startswith("cuda"):
            say(f"parity: fp16 vs fp32 ({name}): skipped: fp16 needs CUDA (device {self.device})")
            return
        if name == "random-256":
            ckpt = random_config_f(256)
            ws = np.random.RandomState(0).randn(4, ckpt.config.num_ws, ckpt.config.w_dim).astype(np.float32)
            label, tol = "random config-f 256px, 4 images, ws ~ N(0, 1)", None
        else:
            _, ref, ckpt = fixture(name)
            ws, label, tol = ref["ws_psi070"], f"fixture {name}", FP16_TOL
        a = TorchBackend(ckpt.config, ckpt.tensors, device=self.device).synthesize(ws, "const", None)
        b = TorchBackend(ckpt.config, ckpt.tensors, device=self.device, precision="fp16").synthesize(ws, "const", None)
        ua, ub = to_uint8(a).astype(np.int16), to_uint8(b).astype(np.int16)
        du = np.abs(ua - ub)
        err = max_abs(a, b)
        say(f"parity: fp16 vs fp32 ({label}): float max|d| {err:.2e} (fp32 image std {float(a.std()):.3f}), "
            f"uint8 mean|d| {float(du.mean()):.3f} max|d| {int(du.max())} {self.record(err, tol)}")

    def onnxruntime(self, folder: Path) -> None:
        import onnxruntime as ort

        import stylegan_sdk as sg
        from stylegan_sdk.backends.onnxruntime_backend import OnnxRuntimeBackend

        cuda = self.device.startswith("cuda")
        provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
        if provider not in ort.get_available_providers():
            say(f"parity: onnxruntime {'CUDA' if cuda else 'CPU'} vs torch: skipped: onnxruntime "
                f"{ort.__version__} has no {provider} (providers {ort.get_available_providers()}; "
                f"the CUDA one comes with onnxruntime-gpu)")
            return
        self._vs_torch(f"onnxruntime {'CUDA' if cuda else 'CPU'}", folder,
                       sg.Generator(OnnxRuntimeBackend(folder, device=self.device)), 2e-3 if cuda else FIXTURE_TOL)

    def tensorrt(self, folder: Path, tmp: Path) -> None:
        if not self.device.startswith("cuda"):
            say("parity: tensorrt fp32/fp16 vs torch: skipped: TensorRT needs CUDA")
            return
        try:
            import tensorrt
        except (ImportError, OSError) as e:
            say(f"parity: tensorrt fp32/fp16 vs torch: skipped: tensorrt not installed ({type(e).__name__})")
            return
        import stylegan_sdk as sg
        from stylegan_sdk.export.tensorrt import build_engines

        for precision, tol in (("fp32", 1e-3), ("fp16", FP16_TOL)):
            def one(precision=precision, tol=tol) -> None:
                out = tmp / f"trt_{precision}"
                t0 = time.perf_counter()
                build_engines(folder, out, fp16=precision == "fp16", min_batch=1, opt_batch=4, max_batch=8,
                              workspace_gb=1.0)
                built = time.perf_counter() - t0
                G = sg.load(out, backend="tensorrt", device=self.device)
                try:
                    self._vs_torch(f"tensorrt {tensorrt.__version__} {precision} (built in {built:.0f} s)", folder,
                                   G, tol)
                finally:
                    G.backend.close()
            self.check(f"tensorrt {precision}", one)

    def _vs_torch(self, label: str, folder: Path, G_other, tol: float) -> None:
        """sg2_skip_32 through `G_other` and through torch fp32 on this device: max |d| of ws and images."""
        import stylegan_sdk as sg
        from stylegan_sdk.backends.torch_backend import TorchBackend

        _, ref, ckpt = fixture("sg2_skip_32")
        G = sg.Generator(TorchBackend(ckpt.config, ckpt.tensors, device=self.device))
        errs = {"ws": max_abs(G_other.map(ref["z"], psi=0.7), G.map(ref["z"], psi=0.7))}
        for mode in ("const", "none"):
            errs[f"img {mode}"] = max_abs(G_other.synthesize(ref["ws_psi070"], noise_mode=mode),
                                          G.synthesize(ref["ws_psi070"], noise_mode=mode))
        say(f"parity: {label} vs torch fp32 on {self.device}{self.tf32_note()}, fixture sg2_skip_32: max|d| "
            + ", ".join(f"{k} {v:.2e}" for k, v in errs.items()) + f" {self.record(max(errs.values()), tol)}")


def random_config_f(resolution: int):
    """A randomly initialised config-f StyleGAN2 (as bench_backends.py builds them), seed 0."""
    import torch

    from stylegan_sdk.config import GeneratorConfig
    from stylegan_sdk.formats.checkpoint import Checkpoint
    from stylegan_sdk.models import build_generator

    torch.manual_seed(0)
    cfg = GeneratorConfig(z_dim=512, w_dim=512, img_resolution=resolution, channel_base=32768, channel_max=512,
                          mapping_layers=8)
    model = build_generator(cfg)
    return Checkpoint(cfg, {k: v.detach().numpy() for k, v in model.state_dict().items()}, {"random_init": True})


def parity(device: str) -> int:
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            say(f"parity: skipped: no CUDA (torch {torch.__version__} sees no GPU)")
            return 0
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        say(f"parity: device {device} = {torch.cuda.get_device_name()}, torch {torch.__version__}, TF32 off "
            f"(matmul and cuDNN)")
    p = Parity(device)
    for name in FIXTURES:
        p.check(f"fixture {name}", lambda name=name: p.fixtures(name))
    for name in ("sg2_skip_32", "sg2_resnet_16_cond", "random-256"):
        p.check(f"fp16 vs fp32 ({name})", lambda name=name: p.fp16(name))
    with tempfile.TemporaryDirectory(prefix="gpu-parity-") as tmp:
        folder = Path(tmp) / "sg2_skip_32_onnx"

        def export() -> None:
            from stylegan_sdk.export.onnx import export_onnx

            _, _, ckpt = fixture("sg2_skip_32")
            export_onnx(ckpt, folder, verify=False)

        p.check("ONNX export of sg2_skip_32", export)
        if folder.is_dir():
            p.check("onnxruntime", lambda: p.onnxruntime(folder))
            p.check("tensorrt", lambda: p.tensorrt(folder, Path(tmp)))
    say(f"parity: {'all checks within tolerance' if not p.failed else f'{p.failed} check(s) FAILED'}")
    return 1 if p.failed else 0


# ----------------------------------------------------------------------------
# GPU-resident speed


def speed(resolution: int, batches: list[int], iters: int, compile_: bool) -> int:
    import torch

    if not torch.cuda.is_available():
        say(f"speed: skipped: no CUDA (torch {torch.__version__} sees no GPU)")
        return 0
    from stylegan_sdk.backends.torch_backend import TorchBackend

    say(f"speed: {torch.cuda.get_device_name()}, torch {torch.__version__}, config-f {resolution}px, ws and "
        f"images stay on the GPU (torch defaults: cuDNN TF32 {torch.backends.cudnn.allow_tf32}); {TARGETS}")
    ckpt = random_config_f(resolution)
    cfg = ckpt.config
    variants = [("fp32", False), ("fp16", False)] + ([("fp16", True)] if compile_ else [])
    rc = 0
    for precision, compiled in variants:
        label = f"torch {precision}{' + torch.compile max-autotune (CUDA graphs)' if compiled else ' eager'}"
        try:
            backend = TorchBackend(cfg, ckpt.tensors, device="cuda", precision=precision, compile=compiled)
            net = backend._synthesis  # the (compiled) synthesis network; output left on the GPU

            def call(wt, net=net):
                with torch.no_grad():
                    return net(wt, noise_mode="const", noise=None)

            g = torch.Generator(device="cuda").manual_seed(0)
            ws = {b: torch.randn([b, cfg.num_ws, cfg.w_dim], device="cuda", generator=g).to(backend.dtype)
                  for b in sorted(set([1, *batches]))}
            t0 = time.perf_counter()
            for b in ws:  # first calls: cuDNN autotuning, compiling, CUDA graph recording
                for _ in range(3):
                    call(ws[b])
            torch.cuda.synchronize()
            warm = time.perf_counter() - t0
            lat = []
            for _ in range(iters):
                t = time.perf_counter()
                call(ws[1])
                torch.cuda.synchronize()
                lat.append(1000 * (time.perf_counter() - t))
            p50, p90 = statistics.median(lat), float(np.percentile(lat, 90))
            rates = []
            for b in batches:
                n = max(3, min(iters, int(2048 / b)))
                t = time.perf_counter()
                for _ in range(n):
                    call(ws[b])
                torch.cuda.synchronize()
                rates.append((b, n * b / (time.perf_counter() - t)))
            line = (f"speed: config-f {resolution}px {label}: batch-1 p50 {p50:.2f} ms, p90 {p90:.2f} ms; "
                    + ", ".join(f"{r:,.0f} img/s @{b}" for b, r in rates) + f" (warm-up {warm:.0f} s)")
            if precision == "fp16" and resolution == 1024:
                best = max(r for _, r in rates)
                line += (f" | target >= {TARGET_IMG_S:,.0f} img/s: {'MEETS' if best >= TARGET_IMG_S else 'misses'}"
                         f", target < {TARGET_LATENCY_MS:g} ms: {'MEETS' if p50 < TARGET_LATENCY_MS else 'misses'}")
            say(line)
            del backend, net, ws
            torch.cuda.empty_cache()
        except Exception as e:  # report, then the next variant
            rc = 1
            say(f"speed: config-f {resolution}px {label}: error: {type(e).__name__}: "
                f"{(str(e).strip().splitlines() or [''])[0]}")
            traceback.print_exc(file=sys.stderr)
    return rc


# ----------------------------------------------------------------------------
# bench_backends.py tables against the targets


def check_targets(text: str) -> list[str]:
    """Lines comparing each 1024 px fp16 row of the markdown tables in `text` with the targets."""
    out, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].lower() == "model":
            header = [c.lower() for c in cells]
            continue
        if header is None or set(cells[0]) <= set("-: ") or len(cells) != len(header):
            continue
        row = dict(zip(header, cells))
        backend = row.get("backend", "")
        if "1024" not in cells[0] or "fp16" not in backend:
            continue
        verdicts = []
        p50 = next((v for k, v in row.items() if "p50" in k), None)
        if p50 is not None:
            try:
                ms = float(p50.replace(",", ""))
                verdicts.append(f"batch-1 p50 {ms:g} ms ({'MEETS' if ms < TARGET_LATENCY_MS else 'misses'} "
                                f"< {TARGET_LATENCY_MS:g} ms)")
            except ValueError:
                pass
        rates = []
        for k, v in row.items():
            m = re.search(r"img/s\s*@\s*(\d+)", k)
            if m:
                try:
                    rates.append((int(m.group(1)), float(v.replace(",", ""))))
                except ValueError:
                    pass
        if rates:
            b, r = max(rates)
            verdicts.append(f"{r:,.1f} img/s @{b} ({'MEETS' if r >= TARGET_IMG_S else 'misses'} "
                            f">= {TARGET_IMG_S:,.0f} img/s)")
        out.append(f"target: {cells[0]} {backend}: " + ("; ".join(verdicts) or "no figures found in the row"))
    if not out:
        out.append("target: no 1024 px fp16 row in the bench tables (skipped, timed out, failed, or a new table "
                   "format)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (parity)")
    p.add_argument("--speed", action="store_true", help="GPU-resident speed instead of parity")
    p.add_argument("--speed-res", type=int, default=1024)
    p.add_argument("--speed-batches", default="1,32")
    p.add_argument("--speed-iters", type=int, default=30)
    p.add_argument("--no-compile", action="store_true", help="--speed without the torch.compile variant")
    p.add_argument("--targets", nargs="+", metavar="LOG", help="check bench_backends.py output against the targets")
    args = p.parse_args(argv)
    if args.targets:
        say(TARGETS)
        text = "\n".join(Path(f).read_text(errors="replace") for f in args.targets if Path(f).is_file())
        for line in check_targets(text):
            say(line)
        return 0
    if args.speed:
        return speed(args.speed_res, [int(b) for b in args.speed_batches.split(",")], args.speed_iters,
                     not args.no_compile)
    return parity(args.device)


if __name__ == "__main__":
    sys.exit(main())
