"""`stylegan export onnx|tensorrt|triton`: the exporters on the command line (export/to_*.py call the same).

    stylegan export onnx MODEL --out DIR [--opset 18] [--force] [--no-verify] [--directions NAME=FILE ...]
    stylegan export tensorrt DIR --out DIR2 [--fp16] [--min-batch 1] [--opt-batch 8] [--max-batch 32]
                                 [--workspace-gb 4]
    stylegan export triton MODEL --out REPO [--name stylegan] [--max-batch 8] [--instances 1]
                                 [--engine onnx|tensorrt] [--device auto|cpu|gpu] [--max-queue-delay-us 500] [--force]

Every argument is checked before anything is read or written; missing folders above --out are made,
and removed again if the export fails. A user error (or a missing optional package: torch and onnx for
`onnx`, tensorrt and a GPU for `tensorrt`) prints one line and exits 2; a failed TensorRT build exits 1.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._cli import OneLineParser, UserError, check_output, flag_names, report, run_command
from ..backends.tensorrt_runtime import NoGPUError
from ..editing.directions import check_shipped_set_name
from ..formats.fileio import made_parents
from ..version import install_hint
from .tensorrt import build_engines
from .triton import ENGINES, INSTANCE_KINDS, check_repository_args, write_repository

TENSORRT_FIELDS = ("min_batch", "opt_batch", "max_batch", "workspace_gb")
TRITON_FIELDS = ("name", "max_batch", "instances", "engine", "device", "max_queue_delay_us", "force")
ONNX_FIELDS = ("opset", "force", "directions")


# ----------------------------------------------------------------------------
# The three exports: arguments, then the work


def onnx_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model file: our checkpoint (.safetensors), an official .pkl, a rosinality .pt")
    p.add_argument("--out", required=True, help="folder to create (with the missing folders above it)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch comparison")
    p.add_argument("--directions", action="append", default=[], metavar="NAME=FILE",
                   help="ship a direction set (sg.sefa(...).save(FILE)) with the model as NAME; repeatable")


def direction_args(values: Sequence[str]) -> dict[str, str]:
    """--directions NAME=FILE ... -> {NAME: FILE}; UserError for a malformed, badly named or repeated one."""
    sets: dict[str, str] = {}
    for value in values:
        name, sep, file = value.partition("=")
        if not sep or not file:
            raise UserError(f"--directions: expected NAME=FILE, got {value!r}")
        try:
            check_shipped_set_name(name, "--directions")
        except ValueError as e:
            raise UserError(str(e)) from None
        if name in sets:
            raise UserError(f"--directions: the set name {name!r} is given twice")
        sets[name] = file
    return sets


def run_onnx(args: argparse.Namespace, prog: str) -> int:
    directions = direction_args(args.directions)
    try:
        from .onnx import export_onnx  # an optional dependency: torch + onnx + onnxscript
    except ImportError as e:
        raise UserError(f"ONNX export needs torch, onnx and onnxscript ({e}); install them with: "
                        f"{install_hint('export')}") from None
    check_output(args.out, "out", folder=True)
    t0 = time.time()
    try:
        with made_parents(args.out):  # the export writes beside --out, then renames its folder into place
            exported = export_onnx(args.model, args.out, opset=args.opset, force=args.force,
                                   verify=not args.no_verify, directions=directions)
    except ValueError as e:
        raise UserError(flag_names(str(e), ONNX_FIELDS)) from None
    cfg = exported.config
    shipped = f", direction sets {', '.join(directions)}" if directions else ""
    print(f"wrote {exported.folder} ({cfg.arch}, {cfg.img_resolution}px, num_ws={cfg.num_ws}, "
          f"opset {args.opset}{shipped}) in {time.time() - t0:.1f}s")
    return 0


def tensorrt_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="exported folder (stylegan export onnx)")
    p.add_argument("--out", required=True, help="folder for the engines (may be FOLDER itself)")
    p.add_argument("--fp16", action="store_true", help="let layers run in half precision (inputs/outputs stay float32)")
    p.add_argument("--min-batch", type=int, default=1, help="smallest batch the engines accept (default 1)")
    p.add_argument("--opt-batch", type=int, default=8, help="batch TensorRT tunes for (default 8)")
    p.add_argument("--max-batch", type=int, default=32, help="largest batch the engines accept (default 32)")
    p.add_argument("--workspace-gb", type=float, default=4.0, help="TensorRT workspace in GiB (default 4)")


def run_tensorrt(args: argparse.Namespace, prog: str) -> int:
    check_output(args.out, "out", folder=True)
    t0 = time.time()
    try:
        with made_parents(args.out):
            engines = build_engines(args.folder, args.out, fp16=args.fp16, min_batch=args.min_batch,
                                    opt_batch=args.opt_batch, max_batch=args.max_batch,
                                    workspace_gb=args.workspace_gb)
    except (ValueError, FileNotFoundError, NoGPUError) as e:
        raise UserError(flag_names(str(e), TENSORRT_FIELDS)) from None
    except RuntimeError as e:  # TensorRT failed to build (its own messages are above)
        report(prog, str(e))
        return 1
    print(f"wrote {args.out}: {', '.join(engines['plans'].values())} ({'fp16' if engines['fp16'] else 'fp32'}, "
          f"batch {engines['min_batch']}-{engines['max_batch']}, TensorRT {engines['tensorrt']}, {engines['gpu']}) "
          f"in {time.time() - t0:.1f}s")
    return 0


def triton_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="exported folder (stylegan export onnx), checkpoint or official .pkl")
    p.add_argument("--out", required=True, help="the model repository (created with the missing folders above it)")
    p.add_argument("--name", default="stylegan", help="model name prefix: NAME_mapping, NAME_synthesis (default "
                                                       "stylegan)")
    p.add_argument("--max-batch", type=int, default=8, help="max_batch_size: most rows per execution (default 8)")
    p.add_argument("--instances", type=int, default=1, help="instance_group count per device (default 1)")
    p.add_argument("--engine", default="onnx", choices=ENGINES, help="onnx (onnxruntime_onnx) or tensorrt "
                                                                      "(tensorrt_plan, the folder's engines)")
    p.add_argument("--device", default="auto", choices=tuple(INSTANCE_KINDS), help="instance kind (default auto)")
    p.add_argument("--max-queue-delay-us", type=int, default=500,
                   help="dynamic_batching: how long a request waits for others, in microseconds (default 500)")
    p.add_argument("--force", action="store_true", help="replace NAME_mapping / NAME_synthesis if they exist")


def run_triton(args: argparse.Namespace, prog: str) -> int:
    try:
        check_repository_args(args.name, args.max_batch, args.instances, args.engine, args.device,
                              args.max_queue_delay_us)
    except ValueError as e:
        raise UserError(flag_names(str(e), TRITON_FIELDS)) from None
    check_output(args.out, "out", folder=True)
    try:
        with made_parents(args.out):
            folders = write_repository(args.model, args.out, name=args.name, max_batch=args.max_batch,
                                       instances=args.instances, engine=args.engine, device=args.device,
                                       max_queue_delay_us=args.max_queue_delay_us, force=args.force)
    except ValueError as e:
        raise UserError(flag_names(str(e), TRITON_FIELDS)) from None
    print(f"wrote {', '.join(folders.values())} (max_batch_size {args.max_batch}, {args.instances} instance(s), "
          f"{args.engine}); serve with: tritonserver --model-repository {args.out}")
    return 0


@dataclass(frozen=True)
class Target:
    help: str                                                   # one line for --help
    add_args: Callable[[argparse.ArgumentParser], None]         # its arguments
    run: Callable[[argparse.Namespace, str], int]               # the work: (args, prog) -> exit code


TARGETS = {
    "onnx": Target("a model file -> mapping.onnx + synthesis.onnx + model.json, verified on ONNX Runtime",
                   onnx_args, run_onnx),
    "tensorrt": Target("an exported folder -> TensorRT engines (NVIDIA GPU)", tensorrt_args, run_tensorrt),
    "triton": Target("an exported folder or model file -> a Triton Inference Server model repository",
                     triton_args, run_triton),
}


# ----------------------------------------------------------------------------
# Entry points


def build_parser(prog: str = "stylegan export") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description="Export a generator for another runtime.")
    sub = p.add_subparsers(dest="target", required=True, parser_class=OneLineParser)
    for name, target in TARGETS.items():
        target.add_args(sub.add_parser(name, help=target.help, description=target.help))
    return p


def main(argv: Sequence[str] | None = None, prog: str = "stylegan export") -> int:
    """`stylegan export TARGET ...`."""
    args = build_parser(prog).parse_args(argv)
    sub_prog = f"{prog} {args.target}"
    return run_command(sub_prog, lambda: TARGETS[args.target].run(args, sub_prog))


def script_main(target: str, argv: Sequence[str] | None, prog: str, description: str) -> int:
    """One export as its own script (export/to_onnx.py ...): the same arguments and output as `stylegan export`."""
    p = OneLineParser(prog=prog, description=description)
    TARGETS[target].add_args(p)
    args = p.parse_args(argv)
    return run_command(prog, lambda: TARGETS[target].run(args, prog))


__all__ = ["TARGETS", "build_parser", "main", "script_main"]
