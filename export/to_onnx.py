"""Export a generator as ONNX: DIR/mapping.onnx, DIR/synthesis.onnx, DIR/model.json.

    python export/to_onnx.py MODEL --out DIR [--opset 18] [--force] [--no-verify]

MODEL is anything `stylegan_sdk.load` reads with torch: our checkpoint, an official NVlabs .pkl.
The graphs are checked (onnx.checker, TensorRT-parsable operators) and compared with the torch
model on ONNX Runtime before the folder appears (missing folders above it are made, and removed
again if the export fails). A user error prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
import time

from stylegan_sdk._cli import OneLineParser, check_output, run_command
from stylegan_sdk.fileio import made_parents


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="to_onnx.py", description=__doc__.splitlines()[0])
    p.add_argument("model", help="checkpoint (.safetensors) or official .pkl")
    p.add_argument("--out", required=True, help="folder to create (with the missing folders above it)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch comparison")
    return p


def export(args: argparse.Namespace) -> None:
    from stylegan_sdk.onnx_export import export_onnx

    check_output(args.out, "out", folder=True)
    t0 = time.time()
    with made_parents(args.out):  # the export writes beside --out, then renames its folder into place
        exported = export_onnx(args.model, args.out, opset=args.opset, force=args.force, verify=not args.no_verify)
    cfg = exported.config
    print(f"wrote {exported.folder} ({cfg.arch}, {cfg.img_resolution}px, num_ws={cfg.num_ws}, "
          f"opset {args.opset}) in {time.time() - t0:.1f}s")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("to_onnx.py", lambda: export(args))


if __name__ == "__main__":
    sys.exit(main())
