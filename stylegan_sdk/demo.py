"""The one-command demo: serve the bundled model, generate pictures through the gRPC client, stop.

    python -m stylegan_sdk.demo [--out out] [--model default] [--psi 0.7]    (make demo)

Starts `python -m serving` on a free loopback port, waits until its health check says SERVING,
then writes through `sg.Client`:
    out/seed_grid.png        seeds 0-31, psi 0.7
    out/truncation.png       rows: seeds; columns: psi 1.0 -> 0.5
    out/style_mixing.png     the paper's figure: column seeds' coarse / middle / fine styles into row seeds
and stops the server (SIGTERM, graceful). Needs no torch.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from .images import grid, save_png

LISTENING = re.compile(r"listening on (?P<host>\S+):(?P<port>\d+)")
PSIS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def start_server(model: str, timeout: float) -> tuple[subprocess.Popen, int, list[str]]:
    """python -m serving on 127.0.0.1 with a free port; returns (process, port, its stderr lines)."""
    cmd = [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", "0", "--max-delay-ms", "5"]
    if model != "default":
        cmd += ["--model", model]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    found: dict[str, int] = {}
    ready = threading.Event()

    def read() -> None:  # keeps draining stderr for the server's whole life
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip())
            m = LISTENING.search(line)
            if m and "port" not in found:
                found["port"] = int(m.group("port"))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or "port" not in found:
        proc.kill()
        raise RuntimeError("server did not start: " + (" | ".join(lines[-3:]) or "no output"))
    return proc, found["port"], lines


def stop_server(proc: subprocess.Popen, timeout: float = 20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    return proc.returncode


def seed_grid(G, psi: float) -> np.ndarray:
    return grid(G.generate("0-31", psi=psi, output="uint8"), cols=8, pad=2)


def truncation_sweep(G, seeds: list[int]) -> np.ndarray:
    ws = G.map(_z(G, seeds))
    cells = []
    for row in range(len(seeds)):
        for psi in PSIS:
            w = G.w_avg + np.float32(psi) * (ws[row] - G.w_avg)  # same math as G.map(..., psi=psi)
            cells.append(G.synthesize(w, output="uint8"))
    return grid(cells, cols=len(PSIS), pad=2)


def style_mixing(G, row_seeds: list[int], col_seeds: list[int], psi: float) -> np.ndarray:
    """Top row: column seeds (sources A); left column: row seeds (B); for each band of rows, cells take
    the coarse, then middle, then fine styles from their column's seed, the rest from their row's seed."""
    info = G.info
    ws = G.map(_z(G, row_seeds + col_seeds), psi=psi)
    w_rows, w_cols = ws[: len(row_seeds)], ws[len(row_seeds):]
    cells: list[np.ndarray | None] = [None, *G.synthesize(w_cols, output="uint8")]
    for group in ("coarse", "middle", "fine"):
        layers = info.layers_in_group(group)
        if not layers:
            continue
        for w_row in w_rows:
            cells.append(G.synthesize(w_row, output="uint8"))
            mixed = G.mix(np.repeat(w_row[None], len(col_seeds), 0), w_cols, layers, output="uint8")
            cells.extend(mixed)
    return grid(cells, cols=len(col_seeds) + 1, pad=2)


def _z(G, seeds: list[int]) -> np.ndarray:
    from .latents import seed_to_z

    return seed_to_z(seeds, G.info.z_dim)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stylegan_sdk.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out", help="folder for the pictures (default ./out)")
    p.add_argument("--model", default="default", help="model to serve (default: the bundled emoji model)")
    p.add_argument("--psi", type=float, default=0.7, help="truncation for the seed grid and mixing")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server")
    args = p.parse_args(argv)
    from .client import Client

    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        print(f"demo: error: out: cannot create {args.out!r}: {e.strerror}", file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        proc, port, log = start_server(args.model, args.timeout)
    except RuntimeError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    print(f"demo: server on 127.0.0.1:{port} (pid {proc.pid})")
    try:
        with Client(f"127.0.0.1:{port}", timeout=args.timeout) as G:
            G.wait_until_ready(timeout=args.timeout)
            info = G.info
            print(f"demo: model {info.arch} {info.img_resolution}px, num_ws {info.num_ws}, backend {info.backend}")
            outputs = {
                "seed_grid.png": seed_grid(G, args.psi),
                "truncation.png": truncation_sweep(G, [1, 4, 7, 10, 13, 16]),
                "style_mixing.png": style_mixing(G, [2, 5, 11, 23], [3, 9, 17, 29, 31], args.psi),
            }
            for name, img in outputs.items():
                path = os.path.join(args.out, name)
                save_png(img, path)
                print(f"demo: wrote {path} ({img.shape[1]}x{img.shape[0]})")
    finally:
        code = stop_server(proc)
    if code != 0:
        print(f"demo: server exited with status {code}: " + " | ".join(log[-3:]), file=sys.stderr)
        return 1
    print(f"demo: done in {time.time() - t0:.1f}s; server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
