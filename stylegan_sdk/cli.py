"""`stylegan` command line: convert, info, generate, mix, directions, edit, project, export, ui, and commands other
packages add (serve).

Thin: parse, check every argument, call the library, then write files. A user error prints one line
and exits 2, before anything is written. Commands from other packages are entry points in the group
`stylegan_sdk.commands`, each `main(argv: list[str], prog: str) -> int` (serving adds `serve`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points

import numpy as np

from ._cli import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    OneLineParser,
    UserError,
    check_output,
    flag_names,
    report,
    run_command,
    writing,
)
from .backends.registry import BACKEND_CHOICES
from .config import PRECISIONS, ModelInfo, check_config_weights
from .editing.directions import MAX_STRENGTH, VALUE_NAME, Directions, load_directions, model_identity
from .editing.ganspace import ganspace
from .editing.sefa import CONVENTIONS, sefa
from .export import cli as export_cli
from .formats.checkpoint import save_checkpoint
from .formats.exported import read_exported
from .formats.fileio import atomic_write_bytes
from .images import animated_gif, display_factor, grid, labelled_grid, save_png, scale_caption, upscale
from .latents import parse_int_list, seed_to_z
from .loading import load, model_kind, read_model
from .progress import Progress
from .projection.options import MAX_STEPS, SPACES, check_seed, check_steps, load_projected_w
from .projection.options import read_target as read_target_bytes
from .ui import cli as ui_cli
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
    print(f"wrote {len(seeds)} image{'s' if len(seeds) != 1 else ''} to {args.outdir}")


def cmd_mix(args: argparse.Namespace) -> None:
    rows = parse_int_list(args.row_seeds, "row-seeds")
    cols = parse_int_list(args.col_seeds, "col-seeds")
    check_upscale(args.upscale)
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
    picture = picture_grid(cells, len(cols) + 1, factor, args.labels,
                           title=f"style mixing, psi {args.psi:g}: layers {layers} from the column seeds into the "
                                 f"row seeds",
                           col_labels=["row seed", *(f"seed {s}" for s in cols)],
                           row_labels=["", *(f"seed {s}" for s in rows)])
    with writing(args.out, "out"):
        save_png(picture, args.out)
    print(f"wrote {args.out} ({len(rows)} rows x {len(cols)} columns, layers {layers}, {scale_caption(factor)})")


def cmd_directions(args: argparse.Namespace) -> None:
    check_output(args.out, "out")
    try:
        if args.method == "sefa":
            # SeFa reads the style affine weights: "default" is the bundled checkpoint (what read_model reads).
            _, path = model_kind(args.model, backend="torch")
            d = sefa(path, k=args.k, layers=args.layers, convention=args.convention, key=args.key)
        else:
            G = _load(args)
            progress = Progress("ganspace: mapped z", total=args.samples, unit="z", stream=sys.stderr)
            d = ganspace(G, k=args.k, samples=args.samples, seed=args.seed,
                         progress=lambda done, total: progress.advance(done - progress.done))
    except ValueError as e:  # the library's argument names -> the flags typed
        text = flag_names(str(e), ("samples", "seed", "layers", "convention", "key"))
        raise UserError("-k" + text[1:] if text.startswith("k:") else text) from None
    with writing(args.out, "out"):
        d.save(args.out)
    print(f"wrote {args.out}: {describe_directions(d)}")


def describe_directions(d: Directions) -> str:
    """One line: kind, K, the ws rows, how it was made and the top values."""
    rows = ws_rows(d.layers)
    if d.kind == "sefa":
        how = f"{d.meta.get('convention')} convention, {len(d.meta.get('affines', []))} style affines"
    elif d.kind == "ganspace":
        how = f"{d.meta.get('samples', 0):,} samples, seed {d.meta.get('seed')}"
    else:
        how = ", ".join(f"{k} {v}" for k, v in d.meta.items() if isinstance(v, (int, float, str)))
    top = ", ".join(f"{v:.3g}" for v in d.values[:5]) + (", ..." if len(d) > 5 else "")
    return (f"{d.kind}, {len(d)} directions ({d.names[0]}{f'..{d.names[-1]}' if len(d) > 1 else ''}), {rows}, "
            f"{how}; {VALUE_NAMES[d.kind]} {top}")


VALUE_NAMES = {"sefa": "eigenvalues", "ganspace": "standard deviations of W", "boundary": "accuracies"}


def cmd_edit(args: argparse.Namespace) -> None:
    seeds = parse_int_list(args.seeds, "seeds")
    strengths = parse_strengths(args.strengths)
    check_upscale(args.upscale)
    check_output(args.out, "out")
    d = _direction_file(args.directions)
    G = _load(args)
    if d is None:   # a set the model carries
        if args.directions not in G.directions:
            have = ", ".join(repr(n) for n in G.directions) or "none"
            raise UserError(f"--directions: no direction set file {args.directions!r}, and the model carries no set "
                            f"of that name (it has {have})")
        d = G.directions[args.directions]
    d.check_for(G.config, name="--directions")
    index = d.index(args.direction, "--direction")
    if d.model.get("w_avg_sha256") not in (None, model_identity(G.config, G.w_avg)["w_avg_sha256"]):
        print(f"stylegan edit: note: {args.directions!r} was computed from another model (its w_avg differs); "
              f"the edits may mean nothing here", file=sys.stderr)
    try:
        ws = G.map(seed_to_z(seeds, G.config.z_dim), c=args.class_idx, psi=args.psi, cutoff=args.cutoff)
        # Row i, column j: seed i moved by strengths[j] along the direction (strength 0: the seed's own picture).
        # One image per call, so that a tile is what generate(seed) / synthesize(edit(...)) give for it alone,
        # whatever else the grid holds (a backend's numbers may differ in the last bit with the batch size).
        cells = [G.synthesize(G.edit(w, d, {index: s}, layers=args.layers), noise_mode=args.noise_mode,
                              output="uint8", noise_seed=args.noise_seed, translate=args.translate, rotate=args.rotate)
                 for w in ws for s in strengths]
    except ValueError as e:  # the library's argument names -> the flags typed
        raise UserError(flag_names(str(e), ("layers", "psi", "cutoff", "noise_seed", "translate", "rotate"))) from None
    factor = args.upscale or display_factor(G.config.img_resolution)
    rows = _edit_rows(d, args.layers, G.config)
    picture = picture_grid(cells, len(strengths), factor, args.labels,
                           title=f"{edit_title(d, index)} on {rows}, psi {args.psi:g}",
                           col_labels=strength_labels(d, index, strengths),
                           row_labels=[f"seed {s}" for s in seeds])
    with writing(args.out, "out"):
        save_png(picture, args.out)
    print(f"wrote {args.out} ({len(seeds)} seeds x {len(strengths)} strengths of {d.kind} direction {index} "
          f"{d.names[index]!r} on {rows}, {scale_caption(factor)})")


def edit_title(d: Directions, index: int) -> str:
    """'sefa direction 0 (sefa0, eigenvalue 57.2)': what an edit grid moves along."""
    value = VALUE_NAME[d.kind]
    return f"{d.kind} direction {index} ({d.names[index]}, {value} {d.values[index]:.3g})"


def strength_labels(d: Directions, index: int, strengths: Sequence[float]) -> list[str]:
    """Column labels of an edit grid: the strengths (W units), and for GANSpace also in standard deviations."""
    def signed(x: float) -> str:
        return "0" if x == 0 else f"{x:+.3g}"

    if d.kind == "ganspace" and d.values[index] > 0:
        return [f"{signed(s)} ({signed(s / float(d.values[index]))} sd)" for s in strengths]
    return [f"strength {signed(s)}" for s in strengths]


def parse_strengths(text: str) -> list[float]:
    """'-3,-1.5,0,1.5,3' -> [-3.0, -1.5, 0.0, 1.5, 3.0]; UserError naming --strengths."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--strengths: expected numbers separated by commas (e.g. -3,-1.5,0,1.5,3), got "
                        f"{text!r}") from None
    if not all(math.isfinite(v) and abs(v) <= MAX_STRENGTH for v in values):
        raise UserError(f"--strengths: each must be a finite number of at most {MAX_STRENGTH:g} in size, got {text!r}")
    if len(values) > MAX_COLUMNS:
        raise UserError(f"--strengths: at most {MAX_COLUMNS} strengths (one column each), got {len(values)}")
    return values


MAX_COLUMNS = 64


def _direction_file(text: str) -> Directions | None:
    """--directions as a file (read now), or None when it names a set the model may carry."""
    if os.path.exists(text):
        if os.path.isdir(text):
            raise UserError(f"--directions: {text!r} is a folder; expected a direction set file "
                            f"(stylegan directions ... --out FILE) or the name of a set the model carries")
        try:
            return load_directions(text)
        except ValueError as e:
            raise UserError(f"--directions: {e}") from None
    if os.sep in text or "/" in text or text.endswith(".safetensors"):
        raise UserError(f"--directions: no such direction set file {text!r}")
    return None


def _edit_rows(d: Directions, layers: str | None, cfg) -> str:
    if layers is not None:
        return ws_rows(sorted(set(parse_int_list(cfg.layer_indices(layers), "layers"))))
    return ws_rows(d.layers)


def ws_rows(rows: Sequence[int] | None) -> str:
    """None -> 'every ws row'; [0, 1, 2, 3, 6] -> 'ws rows 0-3,6'."""
    if rows is None:
        return "every ws row"
    parts: list[str] = []
    for r in rows:
        if parts and r == int(parts[-1].rsplit("-", 1)[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{r}"
        else:
            parts.append(str(r))
    return "ws rows " + ",".join(parts)


# ----------------------------------------------------------------------------
# stylegan project


# stylegan_sdk.projection.losses.LOSSES (that module needs torch, imported once a run is checked; a test keeps
# the two equal).
PROJECTION_LOSSES = ("lpips", "lpips-vgg16", "mse")
MAX_TARGET_PIXELS = 8192 * 8192     # targets whose header claims more are refused before they are decoded
MAX_TARGET_BYTES = 256 * 2**20      # and larger files before they are read whole
VIDEO_FRAMES = 100                  # --video: about this many frames, whatever --steps


def cmd_project(args: argparse.Namespace) -> None:
    try:
        check_steps(args.steps)
        check_seed(args.seed, len(args.target))
        init = None if args.init is None else load_projected_w(args.init, name="init")
    except (ValueError, FileNotFoundError) as e:
        raise UserError("--" + str(e)) from None
    names = target_names(args.target)
    targets = [read_target(path) for path in args.target]
    check_output(args.out, "--out", folder=True)
    kind, path = model_kind(args.model, backend="torch")
    if kind in ("exported", "triton"):
        what = "an exported folder (ONNX graphs)" if kind == "exported" else "a model on a Triton server"
        raise UserError(f"--model: projection needs a model the torch backend runs (a checkpoint or official file); "
                        f"{args.model!r} is {what}, which cannot differentiate")
    # Torch from here on (an optional dependency: ImportError -> one line with the install hint).
    from .projection.losses import make_loss
    from .projection.project import project

    G = load(path, backend="torch", device=args.device, key=args.key)
    try:
        loss = make_loss(args.loss, vgg16_weights=args.vgg16_weights, device=G.backend.device)
    except ValueError as e:
        raise UserError(flag_names(str(e), ("vgg16_weights", "loss"))) from None
    n, steps = len(targets), args.steps
    keep_every = max(1, steps // VIDEO_FRAMES) if args.video else 0
    print(f"stylegan project: {n} target{'s' if n > 1 else ''}, loss {loss.name}, space {args.space.upper()}, "
          f"{steps} steps, seed {args.seed}, noise {'optimised' if args.noise else 'constant'}, {G}",
          file=sys.stderr, flush=True)
    progress = StepProgress("stylegan project: step", total=steps, unit="it", every_s=5.0, stream=sys.stderr)

    def report_step(step: int, total: int, losses: np.ndarray) -> None:
        progress.loss = float(np.mean(losses))
        progress.advance(step - progress.done)

    try:
        p = project(G, targets, space=args.space, steps=steps, loss=loss, init=init, optimize_noise=args.noise,
                    seed=args.seed, progress=report_step, keep_every=keep_every)
    except ValueError as e:  # the library's argument names -> the flags typed
        raise UserError(flag_names(str(e), ("init", "seed", "steps", "space", "loss"))) from None
    progress.close()
    folders = [args.out] if n == 1 else [os.path.join(args.out, name) for name in names]
    with writing(args.out, "--out", folder=True):
        for i, folder in enumerate(folders):
            os.makedirs(folder, exist_ok=True)
            save_png(p.targets[i], os.path.join(folder, "target.png"))
            save_png(p.images[i], os.path.join(folder, "proj.png"))
            p.save_npz(os.path.join(folder, "projected_w.npz"), i)
            if p.history is not None:
                frames = G.synthesize(p.history[:, i], noise_mode="const", output="uint8")
                atomic_write_bytes(os.path.join(folder, "proj.gif"), progress_gif(p.targets[i], frames))
    files = "target.png, proj.png, projected_w.npz" + (", proj.gif" if p.history is not None else "")
    where = args.out if n == 1 else f"{args.out}/<name>/ for {', '.join(names)}"
    final = ", ".join(f"{v:.4g}" for v in p.losses[-1])
    print(f"wrote {files} to {where} ({p.loss} loss, space {p.space.upper()}, {p.steps} steps; final loss {final})")


class StepProgress(Progress):
    """Progress lines with the mean loss of the last step: `... step 100/1,000 (10%), 12.3 it/s, ..., loss 0.2345`."""

    loss: float | None = None

    def line(self) -> str:
        return super().line() + ("" if self.loss is None else f", loss {self.loss:.4f}")


def target_names(paths: Sequence[str]) -> list[str]:
    """The sub-folder of each target when there are several: its file name without the extension (unique)."""
    names = [os.path.splitext(os.path.basename(p))[0] or "target" for p in paths]
    seen: dict[str, str] = {}
    for name, path in zip(names, paths):
        if name in seen and len(paths) > 1:
            raise UserError(f"--target: {seen[name]!r} and {path!r} would both write to <out>/{name}/; rename one")
        seen[name] = path
    return names


def read_target(path: str):
    """A target image file -> a decoded PIL image (projection.options.read_target: the header checked before
    decoding); UserError naming --target for a missing file, something that is not an image, one over
    MAX_TARGET_BYTES, or one whose header claims more than MAX_TARGET_PIXELS."""
    if not os.path.isfile(path):
        raise UserError(f"--target: no such image file {path!r}")
    with open(path, "rb") as f:
        data = f.read(MAX_TARGET_BYTES + 1)
    try:
        return read_target_bytes(data, f"--target: {path!r}", MAX_TARGET_PIXELS, MAX_TARGET_BYTES, formats=None)
    except ValueError as e:
        raise UserError(str(e)) from None


def progress_gif(target: np.ndarray, frames: np.ndarray, ms_per_frame: int = 100) -> bytes:
    """GIF of target | projection side by side (as NVIDIA's proj.mp4), one frame per kept step, looping."""
    return animated_gif([np.concatenate([target, f], axis=1) for f in frames], ms_per_frame)


# ----------------------------------------------------------------------------
# Grids for people (stylegan mix, stylegan edit)


def check_upscale(upscale: int) -> None:
    if not 0 <= upscale <= 64:
        raise UserError(f"--upscale: must be in 0..64 (0 = auto), got {upscale}")


def picture_grid(cells: list[np.ndarray | None], cols: int, factor: int, labels: bool, title: str,
                 col_labels: list[str], row_labels: list[str]) -> np.ndarray:
    """Tiles upscaled `factor` times (nearest neighbour), with the title (+ how they are shown) and the row and
    column labels; labels=False: the tiles only."""
    if not labels:
        return upscale(grid(cells, cols=cols), factor)
    return labelled_grid(cells, cols=cols, factor=factor, title=f"{title} ({scale_caption(factor)})",
                         col_labels=col_labels, row_labels=row_labels)


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


BUILTIN_COMMANDS = ("convert", "info", "generate", "mix", "directions", "edit", "project", "export")
# Built-in commands with sub-commands of their own: main() hands them everything after their name.
NESTED_COMMANDS = {
    "export": (export_cli.main, "export a model: onnx, tensorrt or triton (stylegan export --help)"),
    "ui": (ui_cli.main, "an interactive page in the browser over a model or a server (stylegan ui --help)"),
}


def build_parser(plugins: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser of the built-in commands; `plugins` (names) are listed for --help only."""
    p = OneLineParser(prog="stylegan", description="StyleGAN generators: convert, inspect, generate, mix, edit, "
                                                   "project, export, serve, and a page in the browser (ui).")
    p.add_argument("--version", action="version", version=f"stylegan {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def model_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", required=True, help="a model file (.safetensors, .pkl, .pt), an exported folder or triton://HOST:PORT/NAME")
        runtime_args(sp)
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

    def runtime_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="auto: torch for model files, the fastest installed runtime for exported folders")
        sp.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
        sp.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="fp32 (default) | fp16 (CUDA: torch, TensorRT) | bf16 (CPUs with bf16: OpenVINO)")

    def display_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--upscale", type=int, default=0,
                        help="tile scale for display, nearest neighbour (default 0 = auto: tiles of at least 128 px, "
                             "4x for 32 px; 1 = actual size)")
        sp.add_argument("--labels", action=argparse.BooleanOptionalAction, default=True,
                        help="write the title and the row and column labels on the picture (--no-labels: tiles only)")

    def set_args(sp: argparse.ArgumentParser, model_help: str, ranked_by: str) -> None:
        sp.add_argument("model", help=model_help)
        sp.add_argument("--out", required=True,
                        help="direction set file to write (.safetensors; missing folders are made)")
        sp.add_argument("-k", type=int, default=10, help=f"directions to keep ({ranked_by})")

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
    display_args(sp)
    sp.set_defaults(func=cmd_mix)

    sp = sub.add_parser("directions", help="editing directions of a model: sefa or ganspace (a direction set file)")
    methods = sp.add_subparsers(dest="method", required=True, parser_class=OneLineParser, metavar="sefa|ganspace")
    m = methods.add_parser("sefa", help="SeFa: closed-form factorisation of the style affine weights (no sampling)")
    set_args(m, "a model file or an exported folder with its style affines; default: the bundled model's "
                "checkpoint", "the top k eigenvalues")
    m.add_argument("--layers", default=None,
                   help="factorise only the affines of these ws rows (0-3, coarse, middle, fine); the directions "
                        "then belong to them (default: every row)")
    m.add_argument("--convention", default="genforce", choices=CONVENTIONS,
                   help="genforce: every conv affine + the last ToRGB's, rows normalised; rosinality: + the first "
                        "ToRGB's, not normalised (README, Editing)")
    m.add_argument("--key", default="G_ema", help="network in a snapshot pickle (G_ema, G)")
    m.set_defaults(func=cmd_directions)
    m = methods.add_parser("ganspace", help="GANSpace: principal components of W from sampled z")
    set_args(m, "a model file, an exported folder or triton://HOST:PORT/NAME (default: the bundled model)",
             "the top k components")
    m.add_argument("--samples", type=int, default=100_000, help="z mapped to estimate W's covariance")
    m.add_argument("--seed", type=int, default=0, help="seed of the sampled z")
    runtime_args(m)
    m.set_defaults(func=cmd_directions)

    sp = sub.add_parser("edit", help="edit grid: rows seeds, columns strengths along one direction")
    model_args(sp)
    sp.set_defaults(psi=0.7)
    sp.add_argument("--directions", required=True, metavar="FILE|SET",
                    help="a direction set file (stylegan directions) or the name of a set the model carries")
    sp.add_argument("--direction", required=True, metavar="INDEX|NAME", help="the direction: its index or name")
    sp.add_argument("--seeds", required=True, help="one row each, e.g. 0-5")
    sp.add_argument("--strengths", required=True, metavar="S,S,...",
                    help="one column each, in W units, e.g. -3,-1.5,0,1.5,3 (GANSpace: the set's standard deviations "
                         "are in the column labels)")
    sp.add_argument("--layers", default=None,
                    help="ws rows to edit (0-3, coarse, middle, fine; default: the set's own rows, every row when "
                         "it has none)")
    sp.add_argument("--out", required=True, help="grid PNG path (missing folders are made)")
    display_args(sp)
    sp.set_defaults(func=cmd_edit)

    sp = sub.add_parser("project", help="find the latents of target images (NVIDIA's projector; torch)")
    sp.add_argument("--model", required=True, help="a model file (.safetensors, .pkl, .pt) the torch backend runs, or "
                                                   "'default' (the bundled model)")
    sp.add_argument("--target", required=True, nargs="+", metavar="IMG",
                    help="target images (centre-cropped and LANCZOS-resized to the model's size, as NVIDIA's)")
    sp.add_argument("--out", required=True, help="folder for target.png, proj.png, projected_w.npz (one target); "
                                                 "several targets: one sub-folder each, named after the file")
    sp.add_argument("--space", default="w", choices=SPACES,
                    help="w: one w per target on every ws row (NVIDIA's); w+: every ws row apart")
    sp.add_argument("--steps", type=int, default=1000, help=f"optimisation steps (1..{MAX_STEPS})")
    sp.add_argument("--loss", default="lpips", choices=PROJECTION_LOSSES,
                    help="lpips: LPIPS on the shift-tolerant VGG16 of the stlpips-pytorch wheel (the projection "
                         "extra); lpips-vgg16: LPIPS on torchvision's VGG16 (--vgg16-weights); mse: pixels")
    sp.add_argument("--vgg16-weights", default=None, metavar="FILE",
                    help="a torchvision vgg16 state file (e.g. vgg16-397923af.pth) for LPIPS on torchvision's VGG16")
    sp.add_argument("--seed", type=int, default=0,
                    help="seed of the initial noise and the w jitter (default 0; target i: seed + i)")
    sp.add_argument("--init", default=None, metavar="NPZ",
                    help="start from these ws (a projected_w.npz: one for every target, or one per target) "
                         "instead of the mean w")
    sp.add_argument("--noise", action=argparse.BooleanOptionalAction, default=True,
                    help="optimise the noise inputs too (NVIDIA's); proj.png and projected_w.npz render with the "
                         "model's constant noise either way")
    sp.add_argument("--video", action="store_true",
                    help=f"also write proj.gif: target | projection, about {VIDEO_FRAMES} frames over the run")
    sp.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    sp.add_argument("--key", default="G_ema", help="network in a snapshot pickle (G_ema, G)")
    sp.set_defaults(func=cmd_project)

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
    args = build_parser(list(plugins)).parse_args(glue_values(argv, VALUE_LISTS))
    prog = f"stylegan {args.command}" + (f" {args.method}" if args.command == "directions" else "")
    return run_command(prog, lambda: args.func(args))


VALUE_LISTS = ("--strengths",)   # options whose value may start with a minus: --strengths -3,0,3


def glue_values(argv: list[str], options: Sequence[str]) -> list[str]:
    """['--strengths', '-3,0,3'] -> ['--strengths=-3,0,3'] (argparse takes '-3,0,3' for an option otherwise)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in options and i + 1 < len(argv) and re.match(r"-[\d.]", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


# Re-exported for the command lines that still import them from here (new code: stylegan_sdk._cli).
__all__ = ["EXIT_USAGE", "OneLineParser", "UserError", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
