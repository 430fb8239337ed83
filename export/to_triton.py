"""Write a Triton Inference Server model repository: NAME_mapping and NAME_synthesis (+ NAME.model.json).

    python export/to_triton.py MODEL --out REPO [--name stylegan] [--max-batch 8] [--instances 1]
                               [--engine onnx|tensorrt] [--device auto|cpu|gpu] [--max-queue-delay-us 500]
                               [--force]

MODEL is an exported folder (export/to_onnx.py; for --engine tensorrt one with engines from
export/to_trt.py) or a model file `stylegan_sdk.load` reads, exported first (needs torch + onnx).
Serve it with `tritonserver --model-repository REPO` and run it with
`stylegan_sdk.load("triton://HOST:8001/NAME")`. Missing folders above REPO are made (and removed
again if the export fails). A user error prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys

from stylegan_sdk._cli import OneLineParser, UserError, check_output, flag_names, run_command
from stylegan_sdk.fileio import made_parents
from stylegan_sdk.triton_repo import ENGINES, INSTANCE_KINDS, check_repository_args, write_repository


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="to_triton.py", description=__doc__.splitlines()[0])
    p.add_argument("model", help="exported folder (export/to_onnx.py), checkpoint or official .pkl")
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
    return p


def export(args: argparse.Namespace) -> None:
    try:
        check_repository_args(args.name, args.max_batch, args.instances, args.engine, args.device,
                              args.max_queue_delay_us)
    except ValueError as e:
        raise UserError(flag_names(str(e), ("name", "max_batch", "instances", "engine", "device",
                                            "max_queue_delay_us"))) from None
    check_output(args.out, "out", folder=True)
    with made_parents(args.out):
        folders = write_repository(args.model, args.out, name=args.name, max_batch=args.max_batch,
                                   instances=args.instances, engine=args.engine, device=args.device,
                                   max_queue_delay_us=args.max_queue_delay_us, force=args.force)
    print(f"wrote {', '.join(folders.values())} (max_batch_size {args.max_batch}, {args.instances} instance(s), "
          f"{args.engine}); serve with: tritonserver --model-repository {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("to_triton.py", lambda: export(args))


if __name__ == "__main__":
    sys.exit(main())
