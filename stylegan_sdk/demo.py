"""The one-command demo: serve the bundled model, generate pictures through the gRPC client, stop.

    python -m stylegan_sdk.demo [--out out] [--model default] [--psi 0.7] [--class NAME]    (make demo)

Starts `python -m serving` on a free loopback port, waits until its health check says SERVING,
then writes through `sg.Client`, each picture twice: NAME_Kx.png for people (tiles upscaled K times,
nearest neighbour, so that a tile is at least 128 px: 4x for a 32 px model; with a title, the seeds,
psi values and mixed layers written on it) and NAME.png (the tiles at the model's size, no text):
    seed_grid        seeds 0-31, psi 0.7
    truncation       rows: seeds; columns: psi 1.0 -> 0.5
    style_mixing     the paper's figure: column seeds' coarse / middle / fine styles into row seeds
    classes          conditional models only: one row per class (at most 16)
    edit             a model that carries a "sefa" direction set: rows: seeds; columns: strengths along its
                     direction 0 (through generate(..., edits=)); skipped with a note otherwise
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
from dataclasses import dataclass

import numpy as np

from .cli import class_arg, edit_title, strength_labels, ws_rows
from .client import Client
from .config import ModelInfo
from .images import display_factor, grid, labelled_grid, save_png, scale_caption
from .latents import check_c, seed_to_z

LISTENING = re.compile(r"listening on (?P<host>\S+):(?P<port>\d+)")
PSIS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
MAX_CLASS_ROWS = 16
EDIT_SET = "sefa"                               # the direction set of the edit figure, and its direction
EDIT_DIRECTION = 0
EDIT_SEEDS = [0, 1, 2, 3, 4, 5]
EDIT_STRENGTHS = (-6.0, -3.0, 0.0, 3.0, 6.0)    # W units: the bundled model's sefa0 changes plainly over this range


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


@dataclass
class Figure:
    """One demo picture: its tiles (row by row) and what to write around them."""

    name: str                                  # file stem
    cells: list[np.ndarray | None]             # uint8 [H, W, C] tiles, None = blank
    cols: int
    title: str
    col_labels: list[str] | None = None
    row_labels: list[str] | None = None
    cell_labels: list[str] | None = None

    def raw(self) -> np.ndarray:
        """The tiles at the model's resolution, 2 px apart, no text."""
        return grid(self.cells, cols=self.cols, pad=2)

    def display(self, factor: int) -> np.ndarray:
        """Tiles upscaled `factor` times (nearest neighbour), with the title and labels."""
        return labelled_grid(self.cells, self.cols, title=f"{self.title} ({scale_caption(factor)})",
                             col_labels=self.col_labels, row_labels=self.row_labels,
                             cell_labels=self.cell_labels, factor=factor)


def seed_grid(G, psi: float, c: int | str | None = None) -> Figure:
    seeds = list(range(32))
    return Figure("seed_grid", list(G.generate(seeds, psi=psi, c=c, output="uint8")), cols=8,
                  title=f"seeds 0-31, psi {psi:g}{_class(c)}", cell_labels=[f"seed {s}" for s in seeds])


def truncation_sweep(G, seeds: list[int], c: int | str | None = None) -> Figure:
    ws = G.map(_z(G, seeds), c=c)
    cells = []
    for row in range(len(seeds)):
        for psi in PSIS:
            w = G.w_avg + np.float32(psi) * (ws[row] - G.w_avg)  # same math as G.map(..., psi=psi)
            cells.append(G.synthesize(w, output="uint8"))
    return Figure("truncation", cells, cols=len(PSIS),
                  title=f"truncation: each row one seed, psi from 1 to 0.5{_class(c)}",
                  col_labels=[f"psi {psi:g}" for psi in PSIS], row_labels=[f"seed {s}" for s in seeds])


def style_mixing(G, row_seeds: list[int], col_seeds: list[int], psi: float, c: int | str | None = None) -> Figure:
    """Top row: column seeds (sources A); left column: row seeds (B); for each band of rows, cells take
    the coarse, then middle, then fine styles from their column's seed, the rest from their row's seed."""
    info = G.info
    ws = G.map(_z(G, row_seeds + col_seeds), c=c, psi=psi)
    w_rows, w_cols = ws[: len(row_seeds)], ws[len(row_seeds):]
    cells: list[np.ndarray | None] = [None, *G.synthesize(w_cols, output="uint8")]
    row_labels = [""]
    for group in ("coarse", "middle", "fine"):
        layers = info.layers_in_group(group)
        if not layers:
            continue
        what = f"{group} {_layer_span(info, layers)}"
        for w_row, seed in zip(w_rows, row_seeds):
            cells.append(G.synthesize(w_row, output="uint8"))
            mixed = G.mix(np.repeat(w_row[None], len(col_seeds), 0), w_cols, layers, output="uint8")
            cells.extend(mixed)
            row_labels.append(f"seed {seed} + {what}")
    return Figure("style_mixing", cells, cols=len(col_seeds) + 1,
                  title=f"style mixing, psi {psi:g}{_class(c)}: each row's seed takes the labelled layers from the "
                        f"column's seed",
                  col_labels=["row seed", *(f"seed {s}" for s in col_seeds)], row_labels=row_labels)


def class_rows(G, classes: int, psi: float, seeds: int = 8) -> Figure:
    """A conditional model: one row per class (the same seeds in every row)."""
    cells = []
    for k in range(classes):
        cells.extend(G.generate(list(range(seeds)), psi=psi, c=k, output="uint8"))
    names = G.info.class_names
    return Figure("classes", cells, cols=seeds, title=f"one row per class, seeds 0-{seeds - 1}, psi {psi:g}",
                  col_labels=[f"seed {s}" for s in range(seeds)],
                  row_labels=[names[k] if names else f"class {k}" for k in range(classes)])


def edit_figure(G, psi: float, c: int | str | None = None) -> Figure | None:
    """Rows: EDIT_SEEDS; columns: EDIT_STRENGTHS along direction EDIT_DIRECTION of the model's EDIT_SET set, each
    column one generate(..., edits=) call; None when the model carries no such set."""
    sets = G.directions
    d = sets.get(EDIT_SET)
    if d is None:
        return None
    columns = [G.generate(EDIT_SEEDS, psi=psi, c=c, output="uint8", edits={EDIT_SET: {EDIT_DIRECTION: s}})
               for s in EDIT_STRENGTHS]
    cells = [columns[j][i] for i in range(len(EDIT_SEEDS)) for j in range(len(EDIT_STRENGTHS))]
    return Figure("edit", cells, cols=len(EDIT_STRENGTHS),
                  title=f"edit: {edit_title(d, EDIT_DIRECTION)} on {ws_rows(d.layers)}, psi {psi:g}{_class(c)}",
                  col_labels=strength_labels(d, EDIT_DIRECTION, EDIT_STRENGTHS),
                  row_labels=[f"seed {s}" for s in EDIT_SEEDS])


def make_figures(G, psi: float, c: int | str | None) -> tuple[list[Figure], list[str]]:
    """The demo's figures for a model (G: the client, or anything with the Generator's methods), and notes on
    those it skips."""
    info = G.info
    figures = [seed_grid(G, psi, c), truncation_sweep(G, [1, 4, 7, 10, 13, 16], c),
               style_mixing(G, [2, 5, 11, 23], [3, 9, 17, 29, 31], psi, c)]
    if info.c_dim > 0:
        figures.append(class_rows(G, min(info.c_dim, MAX_CLASS_ROWS), psi))
    notes = []
    edit = edit_figure(G, psi, c)
    if edit is None:
        notes.append(f"no edit figure: the model carries no {EDIT_SET!r} direction set")
    else:
        figures.append(edit)
    return figures, notes


def _picture_class(choice: int | str | None, info: ModelInfo) -> int | str | None:
    """--class, else a conditional model's first class (by name when it has names); ValueError naming the
    model's classes when it has no such class (the check every call's c goes through)."""
    if choice is None and info.c_dim > 0:
        choice = info.class_names[0] if info.class_names else 0
    check_c(choice, info.c_dim, 1, info.class_names)
    return choice


def _class(c: int | str | None) -> str:
    return "" if c is None else f", class {c}"


def _layer_span(info, layers: list[int]) -> str:
    """'layers 0-3 (4-8 px)' from the model's layer table."""
    res = {row["index"]: row["resolution"] for row in info.layers}
    lo, hi = min(layers), max(layers)
    return f"layers {lo}-{hi} ({res[lo]}-{res[hi]} px)"


def _z(G, seeds: list[int]) -> np.ndarray:
    return seed_to_z(seeds, G.info.z_dim)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stylegan_sdk.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out", help="folder for the pictures (default ./out)")
    p.add_argument("--model", default="default", help="model to serve (default: the bundled emoji model)")
    p.add_argument("--psi", type=float, default=0.7, help="truncation for the seed grid and mixing")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server")
    p.add_argument("--class", dest="class_idx", type=class_arg, default=None, metavar="INDEX|NAME",
                   help="conditional models: the class of the seed grid, truncation and mixing pictures "
                        "(default: the first class)")
    args = p.parse_args(argv)
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
            try:
                c = _picture_class(args.class_idx, info)
                os.makedirs(args.out, exist_ok=True)
            except ValueError as e:
                print(f"demo: error: --class: {str(e).removeprefix('c: ')}", file=sys.stderr)
                return 2
            except OSError as e:
                print(f"demo: error: out: cannot create {args.out!r}: {e.strerror}", file=sys.stderr)
                return 2
            figures, notes = make_figures(G, args.psi, c)
            for note in notes:
                print(f"demo: {note}")
            factor = display_factor(info.img_resolution)
            for figure in figures:
                for name, img in ((f"{figure.name}.png", figure.raw()),
                                  (f"{figure.name}_{factor}x.png", figure.display(factor))):
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
