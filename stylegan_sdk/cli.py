"""`stylegan` command line: convert, info, generate, mix, export, and commands other packages add (serve).

Thin: parse, check every argument, call the library, then write files. A user error prints one line
and exits 2, before anything is written. Commands from other packages are entry points in the group
`stylegan_sdk.commands`, each `main(argv: list[str], prog: str) -> int` (serving adds `serve`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points

import numpy as np

from ._cli import EXIT_INTERRUPTED, EXIT_USAGE, OneLineParser, UserError, check_output, report, run_command, writing
from .backends.registry import BACKEND_CHOICES
from .config import PRECISIONS, ModelInfo, check_config_weights
from .export import cli as export_cli
from .formats.checkpoint import save_checkpoint
from .formats.exported import read_exported
from .images import display_factor, grid, labelled_grid, save_png, scale_caption, upscale
from .latents import parse_int_list, seed_to_z
from .loading import load, model_kind, read_model
from .version import install_hint, package_version

PLUGIN_GROUP = "stylegan_sdk.commands"
# Commands that come from other packages of the project: listed in --help even when not installed.
KNOWN_PLUGINS = {"serve": "serve models over gRPC (stylegan serve --help)"}


# ----------------------------------------------------------------------------
# Commands


def cmd_convert(args: argparse.Namespace) -> None:
    check_output(args.out, "out")
    ckpt = read_model(args.src, key=args.key)
    # Building the network checks every tensor name and shape before anything is written.
    _check_weights(ckpt, args.src)
    with writing(args.out, "out"):
        save_checkpoint(args.out, ckpt.config, ckpt.tensors, ckpt.metadata)
    print(f"wrote {args.out} ({ckpt.config.arch}, {ckpt.config.img_resolution}px, num_ws={ckpt.config.num_ws})")


def cmd_info(args: argparse.Namespace) -> None:
    kind, path = model_kind(args.model)
    if kind == "exported":  # model.json says it all; the graphs are not read
        model = read_exported(path)
        config, metadata = model.config, model.manifest.get("source_metadata", {})
        extra = {"exported": {k: model.manifest.get(k) for k in ("format_version", "opset", "exporter", "files",
                                                                 "engines", "style_affines", "directions")}}
    elif kind == "triton":
        config, metadata, extra = load(path, backend="triton").config, {}, {"triton": path}
    else:
        ckpt = read_model(path, key=args.key)
        config, metadata = ckpt.config, ckpt.metadata
        extra = {"num_parameters": int(sum(np.asarray(v).size for v in ckpt.tensors.values()))}
    info = ModelInfo.from_config(config).to_dict()
    info.pop("backend")
    info.pop("device")
    # "source": what the weights were converted from (format, file, network); {} for models trained here.
    out = {"source": config.source, "info": info, "config": config.to_dict(), "metadata": metadata, **extra}
    print(json.dumps(out, indent=2, default=str))


def cmd_generate(args: argparse.Namespace) -> None:
    seeds = parse_int_list(args.seeds, "seeds")
    check_output(args.outdir, "outdir", folder=True)
    G = _load(args)
    # The images first: every argument is checked before the folder appears.
    imgs = G.generate(seeds, psi=args.psi, cutoff=args.cutoff, noise_mode=args.noise_mode,
                      c=args.class_idx, output="uint8", noise_seed=args.noise_seed, translate=args.translate,
                      rotate=args.rotate)
    with writing(args.outdir, "outdir", folder=True):
        for seed, img in zip(seeds, imgs):
            save_png(img, os.path.join(args.outdir, f"seed{seed:04d}.png"))
    print(f"wrote {len(seeds)} images to {args.outdir}")


def cmd_mix(args: argparse.Namespace) -> None:
    rows = parse_int_list(args.row_seeds, "row-seeds")
    cols = parse_int_list(args.col_seeds, "col-seeds")
    if not 0 <= args.upscale <= 64:
        raise UserError(f"--upscale: must be in 0..64 (0 = auto), got {args.upscale}")
    check_output(args.out, "out")
    G = _load(args)
    layers = args.layers
    ws = G.map(seed_to_z(rows + cols, G.config.z_dim), c=args.class_idx, psi=args.psi, cutoff=args.cutoff)
    w_rows, w_cols = ws[: len(rows)], ws[len(rows):]
    kw = dict(noise_mode=args.noise_mode, output="uint8", noise_seed=args.noise_seed, translate=args.translate,
              rotate=args.rotate)
    # Row i, column j: row seed i's styles with the listed layers taken from column seed j.
    mixed = G.mix(np.repeat(w_rows, len(cols), axis=0), np.tile(w_cols, (len(rows), 1, 1)), layers, **kw)
    row_imgs = G.synthesize(w_rows, **kw)
    col_imgs = G.synthesize(w_cols, **kw)
    cells: list[np.ndarray | None] = [None, *col_imgs]
    for i in range(len(rows)):
        cells += [row_imgs[i], *mixed[i * len(cols): (i + 1) * len(cols)]]
    factor = args.upscale or display_factor(G.config.img_resolution)
    if args.labels:
        picture = labelled_grid(cells, cols=len(cols) + 1, factor=factor,
                                title=f"style mixing, psi {args.psi:g}: layers {layers} from the column seeds into "
                                      f"the row seeds ({scale_caption(factor)})",
                                col_labels=["row seed", *(f"seed {s}" for s in cols)],
                                row_labels=["", *(f"seed {s}" for s in rows)])
    else:
        picture = upscale(grid(cells, cols=len(cols) + 1), factor)
    with writing(args.out, "out"):
        save_png(picture, args.out)
    print(f"wrote {args.out} ({len(rows)} rows x {len(cols)} columns, layers {layers}, {scale_caption(factor)})")


# ----------------------------------------------------------------------------
# Commands from other packages (entry points)


def plugin_commands() -> dict[str, EntryPoint]:
    """name -> entry point of the installed commands in PLUGIN_GROUP (built-in names win)."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in BUILTIN_COMMANDS}


def run_plugin(name: str, argv: Sequence[str], entry: EntryPoint | None) -> int:
    """`stylegan NAME ...` -> the entry point's main(argv, prog); one line and exit 2 when it is not installed."""
    prog = f"stylegan {name}"
    if entry is None:
        return report(prog, f"the {name!r} command is not installed; install it with: {install_hint()}")
    try:
        command = entry.load()
    except ImportError as e:
        return report(prog, f"the {name!r} command cannot be loaded ({e}); install it with: {install_hint()}")
    try:
        code = command(list(argv), prog)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0 if code is None else code


# ----------------------------------------------------------------------------
# Helpers


def _load(args: argparse.Namespace):
    return load(args.model, backend=args.backend, device=args.device, precision=args.precision)


def _check_weights(ckpt, source: str) -> None:
    try:
        from .models import build_generator, check_state_dict
    except ImportError:
        raise ImportError(f"checking weights needs torch: {install_hint('torch')}") from None

    check_config_weights(ckpt.config, sum(int(v.size) for v in ckpt.tensors.values()), source)
    check_state_dict(build_generator(ckpt.config), ckpt.tensors, source)


def class_arg(text: str) -> int | str:
    """--class 3 is an index, --class "Smileys & Emotion" a name (resolved against the model's class_names)."""
    return int(text) if text.strip().lstrip("-").isdigit() else text


def _pair(text: str) -> tuple[float, float]:
    """'0.1,-0.05' -> (0.1, -0.05); argparse reports the error as a one-line usage error."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (two numbers), got {text!r}") from None
    return x, y


BUILTIN_COMMANDS = ("convert", "info", "generate", "mix", "export")
# Built-in commands with sub-commands of their own: main() hands them everything after their name.
NESTED_COMMANDS = {"export": (export_cli.main, "export a model: onnx, tensorrt or triton (stylegan export --help)")}


def build_parser(plugins: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser of the built-in commands; `plugins` (names) are listed for --help only."""
    p = OneLineParser(prog="stylegan", description="StyleGAN generators: convert, inspect, generate, mix, export, "
                                                   "serve.")
    p.add_argument("--version", action="version", version=f"stylegan {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def model_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", required=True, help="a model file (.safetensors, .pkl, .pt), an exported folder or triton://HOST:PORT/NAME")
        sp.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="auto: torch for model files, the fastest installed runtime for exported folders")
        sp.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
        sp.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="fp32 (default) | fp16 (CUDA: torch, TensorRT) | bf16 (CPUs with bf16: OpenVINO)")
        sp.add_argument("--psi", type=float, default=1.0, help="truncation psi (1 = none)")
        sp.add_argument("--cutoff", type=int, default=None, help="truncate only ws rows < cutoff")
        sp.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])
        sp.add_argument("--noise-seed", type=int, default=None, help="seed for --noise-mode random")
        sp.add_argument("--class", dest="class_idx", type=class_arg, default=None, metavar="INDEX|NAME",
                        help="conditional models: a class index or name (`stylegan info` lists the names)")
        sp.add_argument("--translate", type=_pair, default=None, metavar="X,Y",
                        help="StyleGAN3: translate the view (as gen_images.py --translate)")
        sp.add_argument("--rotate", type=float, default=None, metavar="DEG",
                        help="StyleGAN3: rotate the view by DEG degrees (as gen_images.py --rotate)")

    sp = sub.add_parser("convert", help="official .pkl (or our checkpoint) -> our checkpoint")
    sp.add_argument("src")
    sp.add_argument("--out", required=True, help="checkpoint to write (missing folders are made)")
    sp.add_argument("--key", default="G_ema", help="network in a snapshot pickle (G_ema, G)")
    sp.set_defaults(func=cmd_convert)

    sp = sub.add_parser("info", help="print a model's config as JSON")
    sp.add_argument("model")
    sp.add_argument("--key", default="G_ema")
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("generate", help="one PNG per seed")
    model_args(sp)
    sp.add_argument("--seeds", required=True, help="e.g. 0-7,42")
    sp.add_argument("--outdir", required=True, help="folder for the PNGs (made when missing)")
    sp.set_defaults(func=cmd_generate)

    sp = sub.add_parser("mix", help="style-mixing grid (the paper's figure)")
    model_args(sp)
    sp.add_argument("--row-seeds", required=True, help="seeds down the left (styles taken from them)")
    sp.add_argument("--col-seeds", required=True, help="seeds across the top (their listed layers copied in)")
    sp.add_argument("--layers", required=True,
                    help="ws rows taken from the columns: indices (0-3) or style groups (coarse, middle, fine, "
                         "coarse,middle)")
    sp.add_argument("--out", required=True, help="grid PNG path (missing folders are made)")
    sp.add_argument("--upscale", type=int, default=0,
                    help="tile scale for display, nearest neighbour (default 0 = auto: tiles of at least 128 px, "
                         "4x for 32 px; 1 = actual size)")
    sp.add_argument("--labels", action=argparse.BooleanOptionalAction, default=True,
                    help="write the title, seeds and layers on the picture (--no-labels: tiles only)")
    sp.set_defaults(func=cmd_mix)

    # Listed for --help only: main() hands a nested command's or plugin's name and everything after it on.
    for name, (_, text) in NESTED_COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    for name in sorted({*KNOWN_PLUGINS, *plugins}):
        sub.add_parser(name, help=KNOWN_PLUGINS.get(name, f"{name} (stylegan {name} --help)"), add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in NESTED_COMMANDS:
        return NESTED_COMMANDS[argv[0]][0](argv[1:], f"stylegan {argv[0]}")
    plugins = plugin_commands()
    if argv[:1] and argv[0] not in BUILTIN_COMMANDS and argv[0] in {*KNOWN_PLUGINS, *plugins}:
        return run_plugin(argv[0], argv[1:], plugins.get(argv[0]))
    args = build_parser(list(plugins)).parse_args(argv)
    return run_command(f"stylegan {args.command}", lambda: args.func(args))


# Re-exported for the command lines that still import them from here (new code: stylegan_sdk._cli).
__all__ = ["EXIT_USAGE", "OneLineParser", "UserError", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
