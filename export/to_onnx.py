"""Export a generator as ONNX: DIR/mapping.onnx, DIR/synthesis.onnx, DIR/model.json.

    python export/to_onnx.py MODEL --out DIR [--opset 18] [--force] [--no-verify]

MODEL is anything `stylegan_sdk.load` reads with torch: our checkpoint, an official NVlabs .pkl.
The graphs are checked (onnx.checker, TensorRT-parsable operators) and compared with the torch
model on ONNX Runtime before the folder appears. A user error prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="to_onnx.py", description=__doc__.splitlines()[0])
    p.add_argument("model", help="checkpoint (.safetensors) or official .pkl")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch comparison")
    args = p.parse_args(argv)
    try:
        from stylegan_sdk.onnx_export import export_onnx

        t0 = time.time()
        exported = export_onnx(args.model, args.out, opset=args.opset, force=args.force, verify=not args.no_verify)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"to_onnx.py: error: {e}", file=sys.stderr)
        return 2
    cfg = exported.config
    print(f"wrote {exported.folder} ({cfg.arch}, {cfg.img_resolution}px, num_ws={cfg.num_ws}, "
          f"opset {args.opset}) in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
