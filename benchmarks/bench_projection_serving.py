"""Generation latency while the server projects: `Client.generate` (one image, back to back) idle and while a
`Project` call runs on the same model, with the projection workers at niceness 0 and at --projection-nice.

    python benchmarks/bench_projection_serving.py [--model sg2_skip_32 | PATH] [--loss mse] [--nice 10]
        [--rounds 3] [--calls 40]

Two servers in this process, the same model on torch (a tests/fixtures NVlabs network by name, or a model file),
one with projection_nice=0 and one with --nice. Each round measures, on each server in turn: --calls generate
calls idle, then --calls while a projection runs (started, first step seen, measured, cancelled, its worker
freed), so drifting machine load hits every row alike. Printed: generate p50 / p90 idle and during, and the
projection's steps per second while generate was hammering the server (what it got of the cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import stylegan_sdk as sg  # noqa: E402
from serving import ServerSettings, serve_in_thread  # noqa: E402


def load(model: str) -> sg.Generator:
    if os.path.exists(model):
        return sg.load(model, backend="torch")
    from conftest import nvlabs_checkpoint

    from stylegan_sdk.backends.torch_backend import TorchBackend

    ckpt = nvlabs_checkpoint(model)
    return sg.Generator(TorchBackend(ckpt.config, ckpt.tensors))


def generate_times(C: sg.Client, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        C.generate(i % 100)
        out.append(time.perf_counter() - t0)
    return out


def during_projection(bg, C: sg.Client, target: np.ndarray, loss: str, calls: int) -> tuple[list[float], float]:
    """Generate times while a projection runs, and the projection's steps per second meanwhile."""
    stop = threading.Event()
    steps: list[float] = []

    def progress(step, total, losses):
        steps.append(time.perf_counter())
        if stop.is_set():
            raise KeyboardInterrupt   # leaves the stream: the call is cancelled, the server stops the run

    def run():
        try:
            C.project(target, loss=loss, steps=5000, progress=progress, progress_every=1, timeout=3600)
        except KeyboardInterrupt:
            pass

    worker = threading.Thread(target=run)
    worker.start()
    while len(steps) < 2:
        time.sleep(0.005)
    n0, t0 = len(steps), time.perf_counter()
    times = generate_times(C, calls)
    rate = (len(steps) - n0) / (time.perf_counter() - t0)
    stop.set()
    worker.join()
    pool = bg.server.servicer.projections
    while pool.admitted:
        time.sleep(0.005)
    return times, rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sg2_skip_32", help="an NVlabs fixture name (tests/fixtures) or a model file")
    p.add_argument("--loss", default="mse", help="the projection's loss (mse, lpips)")
    p.add_argument("--nice", type=int, default=ServerSettings.projection_nice, help="the niceness compared with 0")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=40, help="generate calls per measurement")
    args = p.parse_args()

    G = load(args.model)
    target = np.asarray(G.generate(7))
    nices = (0, args.nice)
    servers = {n: serve_in_thread({"m": G}, settings=ServerSettings(projection_nice=n)) for n in nices}
    clients = {n: sg.Client(servers[n].target, timeout=600) for n in nices}
    idle = {n: [] for n in nices}
    during = {n: [] for n in nices}
    rates = {n: [] for n in nices}
    try:
        for n in nices:   # warm up: w_stats, the loss, torch's threads
            clients[n].project(target, loss=args.loss, steps=2)
            generate_times(clients[n], 5)
        for _ in range(args.rounds):
            for n in nices:
                idle[n] += generate_times(clients[n], args.calls)
                times, rate = during_projection(servers[n], clients[n], target, args.loss, args.calls)
                during[n] += times
                rates[n].append(rate)
    finally:
        for n in nices:
            clients[n].close()
            servers[n].stop()

    def ms(t: list[float]) -> str:
        return f"{np.percentile(t, 50) * 1000:.1f} / {np.percentile(t, 90) * 1000:.1f}"

    print(f"model {args.model} ({G.config.img_resolution} px, torch on {G.backend.device}), projection loss "
          f"{args.loss}, {args.rounds} rounds x {args.calls} calls, {os.cpu_count()} CPUs")
    print("| projection_nice | generate idle p50 / p90 ms | during a projection p50 / p90 ms | projection steps/s |")
    print("| --- | --- | --- | --- |")
    for n in nices:
        print(f"| {n} | {ms(idle[n])} | {ms(during[n])} | {np.mean(rates[n]):.1f} |")


if __name__ == "__main__":
    main()
