"""Build TensorRT engines for an exported folder: mapping.plan, synthesis.plan, recorded in model.json.

    python export/to_trt.py DIR --out DIR2 [--fp16] [--min-batch 1] [--opt-batch 8] [--max-batch 32]
                            [--workspace-gb 4]

DIR comes from export/to_onnx.py. DIR2 may be DIR itself; otherwise the graphs and model.json are
copied there first. Needs `tensorrt` and an NVIDIA GPU; engines run only on the GPU model and
TensorRT version that built them. Missing folders above DIR2 are made (and removed again if the
build fails). A user error (or no TensorRT / GPU) prints one line and exits 2; a failed TensorRT
build exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time

from stylegan_sdk._cli import OneLineParser, UserError, check_output, flag_names, report, run_command
from stylegan_sdk.fileio import made_parents


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="to_trt.py", description=__doc__.splitlines()[0])
    p.add_argument("folder", help="exported folder (export/to_onnx.py)")
    p.add_argument("--out", required=True, help="folder for the engines (may be FOLDER itself)")
    p.add_argument("--fp16", action="store_true", help="let layers run in half precision (inputs/outputs stay float32)")
    p.add_argument("--min-batch", type=int, default=1, help="smallest batch the engines accept (default 1)")
    p.add_argument("--opt-batch", type=int, default=8, help="batch TensorRT tunes for (default 8)")
    p.add_argument("--max-batch", type=int, default=32, help="largest batch the engines accept (default 32)")
    p.add_argument("--workspace-gb", type=float, default=4.0, help="TensorRT workspace in GiB (default 4)")
    return p


def build(args: argparse.Namespace) -> int:
    from stylegan_sdk.trt_build import NoGPUError, build_engines

    check_output(args.out, "out", folder=True)
    t0 = time.time()
    try:
        with made_parents(args.out):
            engines = build_engines(args.folder, args.out, fp16=args.fp16, min_batch=args.min_batch,
                                    opt_batch=args.opt_batch, max_batch=args.max_batch,
                                    workspace_gb=args.workspace_gb)
    except (ValueError, FileNotFoundError, NoGPUError) as e:
        raise UserError(flag_names(str(e), ("min_batch", "opt_batch", "max_batch", "workspace_gb"))) from None
    except RuntimeError as e:  # TensorRT failed to build (its own messages are above)
        report("to_trt.py", str(e))
        return 1
    print(f"wrote {args.out}: {', '.join(engines['plans'].values())} ({'fp16' if engines['fp16'] else 'fp32'}, "
          f"batch {engines['min_batch']}-{engines['max_batch']}, TensorRT {engines['tensorrt']}, {engines['gpu']}) "
          f"in {time.time() - t0:.1f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("to_trt.py", lambda: build(args))


if __name__ == "__main__":
    sys.exit(main())
