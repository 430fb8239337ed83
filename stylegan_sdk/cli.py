"""`stylegan` command line: convert, info, generate, mix, serve.

Thin: parse, call the library, write files. A user error prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

EXIT_USAGE = 2


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, exit 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2 (shared by every command line of the project)."""

    def error(self, message: str) -> None:  # one line instead of usage + message
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# ----------------------------------------------------------------------------
# Commands


def cmd_convert(args: argparse.Namespace) -> None:
    from .checkpoint import save_checkpoint
    from .loading import read_model

    ckpt = read_model(args.src, key=args.key)
    # Building the network checks every tensor name and shape before anything is written.
    _check_weights(ckpt, args.src)
    save_checkpoint(args.out, ckpt.config, ckpt.tensors, ckpt.metadata)
    print(f"wrote {args.out} ({ckpt.config.arch}, {ckpt.config.img_resolution}px, num_ws={ckpt.config.num_ws})")


def cmd_info(args: argparse.Namespace) -> None:
    from .config import ModelInfo
    from .loading import read_model

    ckpt = read_model(args.model, key=args.key)
    info = ModelInfo.from_config(ckpt.config).to_dict()
    info.pop("backend")
    info.pop("device")
    out = {"info": info, "config": ckpt.config.to_dict(), "metadata": ckpt.metadata,
           "num_parameters": int(sum(np.asarray(v).size for v in ckpt.tensors.values()))}
    print(json.dumps(out, indent=2, default=str))


def cmd_generate(args: argparse.Namespace) -> None:
    from .images import save_png
    from .latents import parse_int_list

    seeds = parse_int_list(args.seeds, "seeds")
    G = _load(args)
    _make_outdir(args.outdir)
    imgs = G.generate(seeds, psi=args.psi, cutoff=args.cutoff, noise_mode=args.noise_mode,
                      c=args.class_idx, output="uint8", noise_seed=args.noise_seed)
    for seed, img in zip(seeds, imgs):
        save_png(img, os.path.join(args.outdir, f"seed{seed:04d}.png"))
    print(f"wrote {len(seeds)} images to {args.outdir}")


def cmd_mix(args: argparse.Namespace) -> None:
    from .images import grid, save_png
    from .latents import parse_int_list, seed_to_z

    rows = parse_int_list(args.row_seeds, "row-seeds")
    cols = parse_int_list(args.col_seeds, "col-seeds")
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        raise UserError(f"out: folder {folder!r} does not exist")
    G = _load(args)
    layers = args.layers
    ws = G.map(seed_to_z(rows + cols, G.config.z_dim), c=_class_vector(G, args.class_idx, len(rows) + len(cols)),
               psi=args.psi, cutoff=args.cutoff)
    w_rows, w_cols = ws[: len(rows)], ws[len(rows):]
    kw = dict(noise_mode=args.noise_mode, output="uint8", noise_seed=args.noise_seed)
    # Row i, column j: row seed i's styles with the listed layers taken from column seed j.
    mixed = G.mix(np.repeat(w_rows, len(cols), axis=0), np.tile(w_cols, (len(rows), 1, 1)), layers, **kw)
    row_imgs = G.synthesize(w_rows, **kw)
    col_imgs = G.synthesize(w_cols, **kw)
    cells: list[np.ndarray | None] = [None, *col_imgs]
    for i in range(len(rows)):
        cells += [row_imgs[i], *mixed[i * len(cols): (i + 1) * len(cols)]]
    save_png(grid(cells, cols=len(cols) + 1), args.out)
    print(f"wrote {args.out} ({len(rows)} rows x {len(cols)} columns, layers {layers})")


def cmd_serve(argv: Sequence[str]) -> int:
    """`stylegan serve ...` is `python -m serving ...` (its own parser; user errors: one line, exit 2)."""
    try:
        from serving.server import main as serve_main
    except ImportError as e:
        print(f"stylegan serve: error: serving is not available ({e}); install it with: pip install stylegan-sdk",
              file=sys.stderr)
        return EXIT_USAGE
    return serve_main(list(argv), prog="stylegan serve")


# ----------------------------------------------------------------------------
# Helpers


def _load(args: argparse.Namespace):
    from .loading import load

    return load(args.model, backend=args.backend, device=args.device)


def _class_vector(G, class_idx: int | None, n: int):
    from .latents import check_c

    return check_c(class_idx, G.config.c_dim, n)


def _check_weights(ckpt, source: str) -> None:
    try:
        from .models import build_generator, check_state_dict
    except ImportError:
        raise ImportError("checking weights needs torch: pip install 'stylegan-sdk[torch]'") from None

    check_state_dict(build_generator(ckpt.config), ckpt.tensors, source)


def _make_outdir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"outdir: cannot create {path!r}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"outdir: {path!r} is not writable")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="stylegan", description="StyleGAN generators: convert, inspect, generate, mix.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def model_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", required=True, help="checkpoint (.safetensors) or official .pkl")
        sp.add_argument("--backend", default="auto", help="auto | torch")
        sp.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
        sp.add_argument("--psi", type=float, default=1.0, help="truncation psi (1 = none)")
        sp.add_argument("--cutoff", type=int, default=None, help="truncate only ws rows < cutoff")
        sp.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])
        sp.add_argument("--noise-seed", type=int, default=None, help="seed for --noise-mode random")
        sp.add_argument("--class", dest="class_idx", type=int, default=None, help="class index (conditional models)")

    sp = sub.add_parser("convert", help="official .pkl (or our checkpoint) -> our checkpoint")
    sp.add_argument("src")
    sp.add_argument("--out", required=True)
    sp.add_argument("--key", default="G_ema", help="network in a snapshot pickle (G_ema, G)")
    sp.set_defaults(func=cmd_convert)

    sp = sub.add_parser("info", help="print a model's config as JSON")
    sp.add_argument("model")
    sp.add_argument("--key", default="G_ema")
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("generate", help="one PNG per seed")
    model_args(sp)
    sp.add_argument("--seeds", required=True, help="e.g. 0-7,42")
    sp.add_argument("--outdir", required=True)
    sp.set_defaults(func=cmd_generate)

    sp = sub.add_parser("mix", help="style-mixing grid (the paper's figure)")
    model_args(sp)
    sp.add_argument("--row-seeds", required=True, help="seeds down the left (styles taken from them)")
    sp.add_argument("--col-seeds", required=True, help="seeds across the top (their listed layers copied in)")
    sp.add_argument("--layers", required=True, help="ws rows taken from the columns, e.g. 0-3 (coarse)")
    sp.add_argument("--out", required=True, help="grid PNG path")
    sp.set_defaults(func=cmd_mix)

    # Listed for --help only: main() hands `serve` and everything after it to serving (its own options).
    sub.add_parser("serve", help="serve models over gRPC (stylegan serve --help)", add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return cmd_serve(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (UserError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"stylegan {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `stylegan info M | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
