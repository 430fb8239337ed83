"""Latency of `triton://` against the in-process Generator on the same exported graphs, interleaved.

    python benchmarks/bench_triton.py [--size 32] [--channel-max 512] [--batches 1,8] [--reps 40]

--size 32 (default) is the bundled emoji model; other sizes are a randomly initialised config-f
generator (as bench_backends.py; --channel-max narrows it). The exported folder becomes a Triton
repository (stylegan export triton, max_batch_size 8), served by the real tritonserver that `make install`
puts in .venv-triton, on the CPU, with the test harness's python-backend model running each model.onnx
with ONNX Runtime (tests/triton_server.py: the wheel's server has no onnxruntime backend), so the figures
include that backend's extra hop (the server's shared memory to the stub process). In-process: ONNX
Runtime on the same folder. Each rep times one in-process call and one triton:// call back to back
(`generate(seeds, psi=0.7, output="uint8")`), after warm-up; prints markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "tests")]

import triton_server  # noqa: E402
from bench_backends import machine, random_checkpoint  # noqa: E402

import stylegan_sdk as sg  # noqa: E402
from stylegan_sdk.export.triton import write_repository  # noqa: E402
from stylegan_sdk.loading import DEFAULT_EXPORT  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=32, help="32: the bundled emoji model; else a random config-f")
    p.add_argument("--channel-max", type=int, default=512, help="config-f channel cap (random models)")
    p.add_argument("--batches", default="1,8", help="images per call, comma-separated")
    p.add_argument("--reps", type=int, default=40, help="timed calls per row and side")
    args = p.parse_args()
    why = triton_server.missing()
    if why:
        print(f"bench_triton.py: cannot run tritonserver here: {why}", file=sys.stderr)
        return 2
    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-triton-") as tmp:
        work = Path(tmp)
        if args.size == 32:
            folder, what = DEFAULT_EXPORT, "the bundled emoji model (StyleGAN2, 32 px)"
        else:
            from stylegan_sdk.export.onnx import export_onnx

            folder = str(work / "exported")
            export_onnx(random_checkpoint(args.size, args.channel_max), folder, verify=False)
            what = f"random config-f StyleGAN2, {args.size} px, channel_max {args.channel_max}"
        write_repository(folder, work / "repo0", name="bench", max_batch=max(8, *batches), device="cpu")
        repo = triton_server.python_backend_copy(work / "repo0", work / "repo")
        local = sg.load(folder, backend="onnxruntime")
        t0 = time.monotonic()
        with triton_server.tritonserver(repo, work) as (port, _):
            ready = time.monotonic() - t0
            remote = sg.load(f"triton://127.0.0.1:{port}/bench")
            rows = []
            for n in batches:
                seeds = list(range(n))
                for G in (local, remote):  # warm-up
                    for _ in range(3):
                        G.generate(seeds, psi=0.7, output="uint8")
                times: dict[str, list[float]] = {"in-process": [], "triton": []}
                for _ in range(args.reps):
                    for key, G in (("in-process", local), ("triton", remote)):
                        t = time.perf_counter()
                        G.generate(seeds, psi=0.7, output="uint8")
                        times[key].append(time.perf_counter() - t)
                a = np.diff(np.stack([local.generate(seeds, psi=0.7, output="uint8"),
                                      remote.generate(seeds, psi=0.7, output="uint8")]).astype(int), axis=0)
                rows.append((n, times, int(np.abs(a).max())))
            remote.close()
    print(f"Machine: {machine('cpu')}")
    print(f"Model: {what}; tritonserver (nvidia-pytriton 0.7.0) ready {ready:.1f} s after launch; "
          f"{args.reps} interleaved reps per row\n")
    print("| images/call | in-process p50 ms | triton:// p50 ms | in-process p90 ms | triton:// p90 ms | "
          "triton / in-process (p50) | max uint8 diff |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n, times, diff in rows:
        p50 = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        p90 = {k: 1e3 * float(np.percentile(v, 90)) for k, v in times.items()}
        print(f"| {n} | {p50['in-process']:.2f} | {p50['triton']:.2f} | {p90['in-process']:.2f} | "
              f"{p90['triton']:.2f} | {p50['triton'] / p50['in-process']:.2f}x | {diff} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
