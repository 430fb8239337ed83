"""`python -m training.run`: train a StyleGAN2 or StyleGAN v1 generator.

    python -m training.run --data emoji.zip --outdir runs/emoji32 --arch stylegan2 --cfg cpu \\
        --resolution 32 --batch 16 --kimg 200
    python -m training.run --outdir runs/emoji32 --resume latest          # continue a killed run
    python -m training.run --data emoji.zip --outdir runs/more --init-from emoji.safetensors \\
        --d-warmup-kimg 20 --kimg 500                                     # train a finished generator further
    torchrun --nproc_per_node 8 -m training.run --data emoji.zip --outdir runs/emoji32  # data parallel (DDP)

Options left out come from the preset (`--cfg`, training/presets.py), then TrainingOptions'
defaults; the resolved options are saved as training_options.json in the run folder.

The run folder (--outdir):

    training_options.json                     every option of the run
    reals.png, fakes_init.png                 training images; the untrained generator
    fakes000012800.png                        sample grid at each snapshot (cell i = seed i)
    network-snapshot-000012800.safetensors    G_ema in our checkpoint format (sg.load, export)
    training-state-000012800.safetensors      full training state (the newest --keep-states)
    stats.jsonl                               one JSON line of statistics per tick
    metric-<name>.jsonl                       metric results per snapshot (--metrics)
    events.out.tfevents.*                     TensorBoard (when tensorboard is installed)

A user error (missing or empty data, a resolution that is not a power of two, images smaller than
the resolution, an unwritable outdir, a bad option) prints one line and exits 2; every argument is
checked before the run folder is made. `--resume` on a run that reached its --kimg says so and
exits 0 without training (pass a larger --kimg to train further).

Stopping early keeps the work: `--max-minutes` and Ctrl-C both end the run after the step in hand
(a tick may be long), write a snapshot and a training state, and print the `--resume latest` command
that continues it; Ctrl-C exits 130, and a second Ctrl-C quits at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import torch

from stylegan_sdk._cli import EXIT_INTERRUPTED, OneLineParser, UserError, check_output, run_command
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.formats.checkpoint import read_header

from .dataset import DatasetError, ImageDataset
from .presets import ARCHS, AUGS, OPTIONS_FILE, PRESETS, RESUMABLE_CHANGES, TrainingOptions, resolve_options
from .state import StateError, latest_state, list_states, read_state_info

PROG = "training.run"


class RunComplete(Exception):
    """--resume of a run that already reached its --kimg: nothing to train (the message says so)."""


# ----------------------------------------------------------------------------
# Command line -> options


class _Off:
    """'none' on the command line: the option switched off, which an option left out (None) cannot say."""

    def __repr__(self) -> str:
        return "none"


OFF = _Off()


def _float_or_none(text: str) -> float | _Off:
    return OFF if text.lower() in ("none", "off") else float(text)


def _metric_list(text: str) -> list[str]:
    return [] if text.lower() in ("", "none") else [m.strip() for m in text.split(",") if m.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training.run",
                      description="Train a StyleGAN2 / StyleGAN v1 generator. Options left out come from the "
                                  "preset (--cfg, default auto), then training/presets.py's TrainingOptions defaults.")
    # Every option defaults to None = "not given": the preset and TrainingOptions fill it in.
    g = p.add_argument_group("data and output")
    g.add_argument("--data", help="folder or zip of images (+ dataset.json labels)")
    g.add_argument("--outdir", required=True, help="run folder (created; must not hold another run unless --resume)")
    g.add_argument("--resume", default=None, help="'latest' (newest state in --outdir; a new run if there is none) "
                                                  "or a training-state-*.safetensors file")
    g.add_argument("--init-from", help="generator checkpoint (ours, e.g. a network-snapshot) whose weights start G and "
                                       "G_ema; D starts fresh; the network options default to the checkpoint's")
    g.add_argument("--arch", choices=ARCHS, help="network family (default stylegan2)")
    g.add_argument("--cfg", choices=["auto", *PRESETS], help="preset for the defaults (default auto)")
    g.add_argument("--resolution", type=int, help="training resolution, a power of two (default: the images' size)")
    g.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None, help="x-flip augmentation")
    g.add_argument("--aug", choices=AUGS, help="augment what D sees (ADA): noaug (default) | ada (p adapts to hold "
                                               "--ada-target) | fixed (p = --aug-p); may be switched on at --resume")
    g.add_argument("--aug-p", type=float, help="augmentation probability (fixed), or where ada starts (default 0)")
    g.add_argument("--ada-target", type=float, help="ada: the E[sign(D(real))] to hold (default 0.6)")
    g.add_argument("--ada-kimg", type=float, help="ada: kimg over which p could move by 1 (default 500)")
    g.add_argument("--cond", action=argparse.BooleanOptionalAction, default=None,
                   help="class-conditional when the data has labels (default on)")
    g.add_argument("--background", help="colour under transparent pixels: white | black | gray | #rrggbb")
    g.add_argument("--channels", choices=["auto", "1", "3"], help="image channels (auto: 1 if all images are gray)")
    g.add_argument("--max-images", type=int, help="train on the first N images only")
    g = p.add_argument_group("length and batch")
    g.add_argument("--kimg", type=float, help="training length in thousands of real images")
    g.add_argument("--batch", type=int, help="global batch size (all processes)")
    g.add_argument("--batch-gpu", type=int, help="per-process micro-batch (gradients accumulate)")
    g.add_argument("--seed", type=int, help="random seed")
    g.add_argument("--max-minutes", type=_float_or_none, metavar="MIN",
                   help="a time budget: stop after the first step past MIN minutes of training, with a snapshot and "
                        "a training state (--resume latest continues; none = no limit)")
    g = p.add_argument_group("networks")
    g.add_argument("--z-dim", type=int, help="input latent size")
    g.add_argument("--w-dim", type=int, help="intermediate latent size")
    g.add_argument("--map", dest="map_layers", type=int, metavar="N", help="mapping network depth")
    g.add_argument("--cbase", dest="channel_base", type=int, metavar="N", help="channels = cbase / resolution")
    g.add_argument("--cmax", dest="channel_max", type=int, metavar="N", help="max channels per layer")
    g.add_argument("--g-arch", dest="g_architecture", choices=["orig", "skip", "resnet"], help="StyleGAN2 G")
    g.add_argument("--d-arch", dest="d_architecture", choices=["orig", "skip", "resnet"], help="StyleGAN2 D")
    g.add_argument("--mbstd-group", type=int, help="minibatch-stddev group size")
    g.add_argument("--mbstd-by-class", action=argparse.BooleanOptionalAction, default=None,
                   help="conditional runs: each minibatch-stddev group holds one class (reals and fakes), so D "
                        "sees a class that collapsed to one picture (default off; may be switched on at --resume)")
    g.add_argument("--conv-clamp", type=_float_or_none, help="clamp conv outputs (StyleGAN2; 'none' = off)")
    g = p.add_argument_group("losses and optimisers")
    g.add_argument("--glr", type=float, help="G learning rate")
    g.add_argument("--dlr", type=float, help="D learning rate")
    g.add_argument("--gamma", type=float, help="R1 weight")
    g.add_argument("--pl-weight", type=float, help="path length regularisation weight (0 = off)")
    g.add_argument("--style-mixing", type=float, help="style mixing probability")
    g.add_argument("--d-warmup-kimg", type=float, help="kimg at the start in which only D trains, G held "
                                                        "(lets a fresh D catch up with an --init-from G)")
    g.add_argument("--g-reg-interval", type=int, help="lazy G regularisation interval (1 = every step)")
    g.add_argument("--d-reg-interval", type=int, help="lazy R1 interval (1 = every step)")
    g.add_argument("--ema-kimg", type=float, help="G_ema half-life in kimg")
    g.add_argument("--ema-rampup", type=_float_or_none, help="EMA ramp-up ratio ('none' = off)")
    g.add_argument("--lod-training-kimg", type=float, help="v1: kimg per resolution after its fade-in")
    g.add_argument("--lod-transition-kimg", type=float, help="v1: kimg of each fade-in")
    g = p.add_argument_group("snapshots and logs")
    g.add_argument("--tick", dest="kimg_per_tick", type=float, metavar="KIMG", help="kimg per status line")
    g.add_argument("--snap", type=int, help="ticks between snapshots (checkpoint, state, grid, metrics)")
    g.add_argument("--grid", help="sample grid COLSxROWS (cell i = seed i)")
    g.add_argument("--keep-states", type=int, help="training states kept (newest N)")
    g.add_argument("--metrics", type=_metric_list, help="metrics at each snapshot, e.g. fid50k_full,ppl_wend")
    g.add_argument("--feature-weights", help="folder of metric network weights (see python -m training.metrics -h)")
    g.add_argument("--device", help="auto | cpu | cuda")
    return p


GIVEN_FIELDS = [f for f in TrainingOptions.__dataclass_fields__]


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainingOptions fields the user set (None = not given)."""
    return {k: None if v is OFF else v for k, v in vars(args).items() if k in GIVEN_FIELDS and v is not None}


# ----------------------------------------------------------------------------
# Checks that end in one line and exit 2


def prepare_outdir(path: str) -> None:
    """Make the run folder (once every argument is checked) and check that it takes files."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"outdir: cannot create {path!r}: {e.strerror}") from None
    if not os.path.isdir(path):
        raise UserError(f"outdir: {path!r} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise UserError(f"outdir: {path!r} is not writable: {e.strerror}") from None


def saved_options(outdir: str) -> dict[str, Any] | None:
    path = os.path.join(outdir, OPTIONS_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"resume: cannot read {path!r}: {e}") from None


def check_not_complete(outdir: str, resume_path: str, kimg: float | None) -> None:
    """RunComplete when the training state to resume from already reached `kimg`."""
    nimg = read_state_info(resume_path).get("cur_nimg")
    if not isinstance(nimg, int):
        raise StateError(f"resume: {resume_path!r} has a damaged header (no image count)")
    if kimg is not None and nimg >= kimg * 1000:
        raise RunComplete(f"{PROG}: the run in {outdir!r} is complete (kimg {nimg / 1000:g} of {kimg:g}): "
                          f"nothing to do; pass a larger --kimg to train further")


def merge_resumed(saved: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The saved run's options, with the few that may change on resume taken from the command line."""
    merged = dict(saved)
    for key, value in given.items():
        if key in RESUMABLE_CHANGES:
            merged[key] = value
        elif key != "outdir" and saved.get(key) != value:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{flag}: the run being resumed has {saved.get(key)!r}, not {value!r} "
                            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change on resume)")
    return merged


# Run options that a generator's config fixes: (option, its flag, the GeneratorConfig field).
NETWORK_OPTIONS = [("arch", "--arch", "arch"), ("resolution", "--resolution", "img_resolution"),
                   ("z_dim", "--z-dim", "z_dim"), ("w_dim", "--w-dim", "w_dim"),
                   ("map_layers", "--map", "mapping_layers"), ("channel_base", "--cbase", "channel_base"),
                   ("channel_max", "--cmax", "channel_max"), ("g_architecture", "--g-arch", "architecture"),
                   ("conv_clamp", "--conv-clamp", "conv_clamp")]


def init_config(path: str) -> GeneratorConfig:
    """The config of the --init-from checkpoint (its header only)."""
    if not os.path.isfile(path):
        raise UserError(f"--init-from: no such checkpoint {path!r}")
    try:
        return read_header(path)[0]
    except ValueError as e:
        raise UserError(f"--init-from: {e}") from None


def with_init_network(given: dict[str, Any], cfg: GeneratorConfig) -> dict[str, Any]:
    """--init-from: the network options its checkpoint's config fixes, filled in; one given that differs is an error."""
    merged = dict(given)
    for option, flag, field in NETWORK_OPTIONS:
        value = getattr(cfg, field)
        if given.get(option, value) != value:
            raise UserError(f"{flag}: the --init-from checkpoint has {value!r}, not {given[option]!r}")
        merged[option] = value
    return merged


def check_init_generator(cfg: GeneratorConfig, opts: TrainingOptions, dataset: ImageDataset) -> None:
    """--init-from: the checkpoint's generator must be exactly the one this run trains (labels, channels, ...)."""
    from .loop import generator_config

    run_cfg = generator_config(opts, dataset)
    diff = [f"{f.name} {getattr(cfg, f.name)!r} (this run: {getattr(run_cfg, f.name)!r})"
            for f in dataclasses.fields(cfg) if f.compare and getattr(cfg, f.name) != getattr(run_cfg, f.name)]
    if diff:
        raise UserError(f"--init-from: the checkpoint's generator differs from this run's: {'; '.join(diff)}")


def resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("device: CUDA asked for, but torch sees no CUDA device")
        return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise UserError(f"device: expected auto, cpu or cuda, got {name!r}")


# ----------------------------------------------------------------------------
# Distributed set-up (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)


def init_distributed(device_hint: str | None) -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_nccl = torch.cuda.is_available() and device_hint not in ("cpu",)
    if use_nccl:
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group(backend="nccl" if use_nccl else "gloo",
                                         timeout=datetime.timedelta(minutes=30))
    return rank, world, local_rank


# ----------------------------------------------------------------------------
# Main


def setup(args: argparse.Namespace, world: int) -> tuple[TrainingOptions, ImageDataset, str | None]:
    """Options, data and the state to resume from; UserError / DatasetError / ValueError for bad input,
    RunComplete when there is nothing left to train. The run folder is made last, after every check."""
    given = given_options(args)
    outdir = args.outdir
    check_output(outdir, "outdir", folder=True)
    resume_path = None
    if args.resume is not None:
        saved = saved_options(outdir)
        if args.resume == "latest":
            resume_path = latest_state(outdir)
            if resume_path is None:
                print(f"resume: no training state in {outdir!r} yet: starting a new run", file=sys.stderr)
        else:
            resume_path = args.resume
            if not os.path.isfile(resume_path):
                raise UserError(f"resume: no such training state {resume_path!r}")
        if resume_path is not None and saved is None:
            raise UserError(f"resume: {outdir!r} has no {OPTIONS_FILE}; is it a training run?")
        if saved is not None:   # (a run killed before its first state restarts with its own options)
            given = merge_resumed(saved, given)
        if resume_path is not None:
            check_not_complete(outdir, resume_path, given.get("kimg"))
    elif saved_options(outdir) is not None or list_states(outdir):
        raise UserError(f"outdir: {outdir!r} already holds a training run; "
                        f"use --resume latest to continue it, or another folder")
    if not given.get("data"):
        raise UserError("data: --data is required (a folder or zip of images)")
    init_cfg = None   # the --init-from checkpoint's config, read once
    if resume_path is None and given.get("init_from") is not None:
        init_cfg = init_config(given["init_from"])
        given = with_init_network(given, init_cfg)
    given["outdir"] = outdir
    res = given.get("resolution") or None
    if res is not None and (res < 4 or res & (res - 1)):
        raise UserError(f"--resolution: must be a power of two >= 4, got {res}")
    dataset = ImageDataset(given["data"], resolution=res, xflip=bool(given.get("mirror", False)),
                           use_labels=given.get("cond", True), background=given.get("background", "white"),
                           channels=given.get("channels", "auto"), max_images=given.get("max_images"))
    if dataset.skipped:
        print(f"data: skipped {len(dataset.skipped)} unreadable files (e.g. {dataset.skipped[0][0]}: "
              f"{dataset.skipped[0][1]})", file=sys.stderr)
    opts = resolve_options(given, dataset.resolution, world)
    opts.validate(world)
    if init_cfg is not None:
        check_init_generator(init_cfg, opts, dataset)
    if opts.mbstd_by_class:
        if not (opts.cond and dataset.has_labels):
            raise UserError("--mbstd-by-class: needs a conditional run (class labels in the data, --cond)")
        dataset.item_classes()   # DatasetError unless the labels are classes
    if opts.metrics:
        from .metrics import check_metrics

        check_metrics(opts.metrics, opts.feature_weights)
    prepare_outdir(outdir)
    return opts, dataset, resume_path


def main(argv: Sequence[str] | None = None) -> int:
    from .loop import training_loop
    from .metrics import MetricError

    args = build_parser().parse_args(argv)
    rank, world, local_rank = init_distributed(args.device)
    prepared: dict[str, Any] = {}

    def prepare() -> None:
        try:
            prepared["opts"], prepared["dataset"], prepared["resume_path"] = setup(args, world)
        except RunComplete as e:
            if rank == 0:
                print(e)
            return
        prepared["device"] = resolve_device(prepared["opts"].device, local_rank)

    try:
        code = run_command(PROG, prepare, user_errors=(DatasetError, StateError, MetricError), quiet=rank != 0)
        if code != 0 or "device" not in prepared:
            return code
        if world > 1:
            torch.distributed.barrier()
        result = training_loop(prepared["opts"], prepared["dataset"], prepared["device"],
                               resume_path=prepared["resume_path"])
        if world > 1:
            torch.distributed.barrier()  # every rank done (rank 0 writes last) before the group goes away
        if result["stopped"] == "interrupted":   # stopped by Ctrl-C, the work kept: still "interrupted"
            return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        if world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
