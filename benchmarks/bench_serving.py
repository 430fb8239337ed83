"""Serving speed: the gRPC overhead at batch 1, and p50 / p99 latency and throughput of `generate` for
1, 8 and 32 concurrent clients, in-process `Generator` vs the gRPC server (`python -m serving`, its own
process) on the same backend.

    python benchmarks/bench_serving.py [--size 64] [--channel-max 512] [--backend onnxruntime|torch]
                                       [--device cpu|cuda] [--clients 1,8,32] [--requests 128]
                                       [--overhead-calls 300] [--max-batch 32] [--max-delay-ms 2]

The model is a randomly initialised config-f StyleGAN2 generator (as in bench_backends.py; a smaller
--channel-max gives a narrower one), exported once to ONNX (or saved as a checkpoint for torch) in a
cache folder. Each request is one seed, psi 0.7, output uint8 (what a client would turn into a PIL image).

Overhead: one thread alternates in-process `Generator.generate`, `sg.Client.generate` and a bare
GetModelInfo round trip on a stub of its own (interleaved, so all three see the same machine noise) and
reports each p50, the ratio gRPC / in-process, and the GetModelInfo p50: the floor, what any RPC to this
server costs before any work is done, so `sg.Client - in-process - floor` is what the service adds.
Concurrency rows (`--modes none`: skip them): in-process = N threads sharing one Generator (no
batching); gRPC = N threads, each with its own `sg.Client` (own channel), against one server that
batches concurrent requests. `--requests` is the total per row, split evenly between the clients; every
client first makes one untimed warm-up call. Prints markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import grpc
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_backends import exported_folder, machine, random_checkpoint  # noqa: E402

import stylegan_sdk as sg  # noqa: E402
from stylegan_sdk._proto import pb, pb_grpc  # noqa: E402


def model_path(size: int, channel_max: int, backend: str, cache: str) -> str:
    ckpt = random_checkpoint(size, channel_max)
    if backend == "torch":
        path = os.path.join(cache, f"configf_{size}_c{channel_max}.safetensors")
        if not os.path.exists(path):
            sg.save_checkpoint(path, ckpt.config, ckpt.tensors, ckpt.metadata)
        return path
    return exported_folder(ckpt, cache)


def run_clients(make_call: Callable[[], Callable[[int], object]], clients: int, per_client: int
                ) -> tuple[list[float], float]:
    """clients threads, each making per_client timed calls after one warm-up; -> (latencies s, wall s)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    ready = threading.Barrier(clients + 1)
    go = threading.Event()

    def worker(k: int) -> None:
        try:
            call = make_call()
            call(10_000 + k)  # warm-up (and, for gRPC, connect + fetch the model info)
        except BaseException as e:  # reported below
            errors.append(e)
            ready.wait()
            return
        ready.wait()
        go.wait()
        try:
            for i in range(per_client):
                t0 = time.perf_counter()
                call(k * per_client + i)
                latencies[k].append(time.perf_counter() - t0)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    return [x for lat in latencies for x in lat], wall


def overhead(G: sg.Generator, C: sg.Client, target: str, calls: int) -> tuple[float, float, float]:
    """Interleaved batch-1 calls: in-process, gRPC, then a bare GetModelInfo on a channel of its own, `calls`
    of each -> (p50 in-process, p50 gRPC, p50 GetModelInfo) in s."""
    channel = grpc.insecure_channel(target)
    stub = pb_grpc.StyleGANStub(channel)
    request = pb.GetModelInfoRequest(model="bench")

    def floor(i: int, **kw: object) -> None:
        stub.GetModelInfo(request, timeout=600)

    times: list[list[float]] = [[], [], []]
    fns = (G.generate, C.generate, floor)
    try:
        for i in range(5):  # warm-up
            for fn in fns:
                fn(i, psi=0.7, output="uint8")
        for i in range(calls):
            for fn, out in zip(fns, times):
                t0 = time.perf_counter()
                fn(i, psi=0.7, output="uint8")
                out.append(time.perf_counter() - t0)
    finally:
        channel.close()
    local, remote, bare = (float(np.median(t)) for t in times)
    return local, remote, bare


def start_server(path: str, args: argparse.Namespace, max_queue: int) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "serving", "--model", f"bench={path}", "--host", "127.0.0.1", "--port", "0",
           "--backend", args.backend, "--device", args.device, "--max-batch", str(args.max_batch),
           "--max-delay-ms", str(args.max_delay_ms), "--max-queue", str(max_queue)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    seen = ""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if "ready" in line:
            port = re.search(r"listening on 127\.0\.0\.1:(\d+)", seen).group(1)
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep draining
            return proc, f"127.0.0.1:{port}"
    proc.kill()
    raise RuntimeError(f"server did not start:\n{seen}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64, help="model resolution")
    p.add_argument("--channel-max", type=int, default=512, help="channels per layer at most (512: config F)")
    p.add_argument("--overhead-calls", type=int, default=300, help="interleaved batch-1 calls of each kind")
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch", "tensorrt"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests", type=int, default=128, help="timed requests per row, split between the clients")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-delay-ms", type=float, default=2.0)
    p.add_argument("--modes", default="in-process,grpc", help="concurrency rows: in-process, grpc, or none")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "stylegan-sdk-bench"))
    args = p.parse_args(argv)
    clients_list = [int(c) for c in args.clients.split(",")]
    modes = [] if args.modes == "none" else args.modes.split(",")
    os.makedirs(args.cache, exist_ok=True)
    path = model_path(args.size, args.channel_max, args.backend, args.cache)
    if args.backend == "tensorrt":
        raise SystemExit("build engines first (export/to_trt.py) and pass the engine folder's backend")

    print(f"machine: {machine(args.device)}")
    print(f"model: config-f {args.size}px, channel_max {args.channel_max} (random init), backend {args.backend} "
          f"on {args.device}; request: "
          f"generate(1 seed, psi=0.7, output='uint8'); server --max-batch {args.max_batch} "
          f"--max-delay-ms {args.max_delay_ms}")
    if args.overhead_calls:
        proc, target = start_server(path, args, max_queue=64)
        try:
            G = sg.load(path, backend=args.backend, device=args.device)
            with sg.Client(target, timeout=600) as C:
                local, remote, bare = overhead(G, C, target, args.overhead_calls)
        finally:
            proc.terminate()
            proc.wait(60)
        print(f"\nbatch-1 overhead, {args.overhead_calls} interleaved calls each: "
              f"in-process p50 {1000 * local:.2f} ms, sg.Client p50 {1000 * remote:.2f} ms, "
              f"ratio {remote / local:.3f}x (target <= 1.15x); GetModelInfo round trip (the floor) p50 "
              f"{1000 * bare:.2f} ms; overhead {1000 * (remote - local):.2f} ms, "
              f"{1000 * (remote - local - bare):.2f} ms above the floor\n")
    if modes:
        print("| mode | clients | p50 ms | p99 ms | images/s |")
        print("| --- | --- | --- | --- | --- |")
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    for mode in modes:
        proc = None
        if mode == "in-process":
            G = sg.load(path, backend=args.backend, device=args.device)

            def make_call(G=G) -> Callable[[int], object]:
                return lambda seed: G.generate(seed, psi=0.7, output="uint8")
        else:
            proc, target = start_server(path, args, max_queue=max(64, 2 * max(clients_list)))

            def make_call(target=target) -> Callable[[int], object]:
                C = sg.Client(target, timeout=600)
                return lambda seed: C.generate(seed, psi=0.7, output="uint8")
        try:
            for clients in clients_list:
                per_client = max(1, math.ceil(args.requests / clients))
                lat, wall = run_clients(make_call, clients, per_client)
                p50 = 1000 * float(np.percentile(lat, 50))
                p99 = 1000 * float(np.percentile(lat, 99))
                rate = len(lat) / wall
                results[(mode, clients)] = (p50, p99, rate)
                print(f"| {mode} | {clients} | {p50:.1f} | {p99:.1f} | {rate:.2f} |", flush=True)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(60)
    one, many = min(clients_list), max(clients_list)
    if ("in-process", one) in results and ("grpc", one) in results:
        print(f"\ngRPC / in-process p50 at {one} client: "
              f"{results[('grpc', one)][0] / results[('in-process', one)][0]:.2f}x (target <= 1.2x)")
    if ("grpc", one) in results and ("grpc", many) in results:
        print(f"gRPC throughput {many} clients / {one}: "
              f"{results[('grpc', many)][2] / results[('grpc', one)][2]:.2f}x (target >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
