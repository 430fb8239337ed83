"""Export a generator as ONNX: DIR/mapping.onnx, DIR/synthesis.onnx, DIR/model.json.

    python export/to_onnx.py MODEL --out DIR [--opset 18] [--force] [--no-verify] [--directions NAME=FILE ...]

MODEL is anything `stylegan_sdk.load` reads with torch: our checkpoint, an official NVlabs .pkl.
The graphs are checked (onnx.checker, TensorRT-parsable operators) and compared with the torch
model on ONNX Runtime before the folder appears (missing folders above it are made, and removed
again if the export fails). A user error prints one line and exits 2. Beside the graphs go the style
affine weights (style_affines.safetensors: sg.sefa runs on the folder) and each --directions set as
directions_NAME.safetensors, served with the model (G.directions, edits=...); model.json lists them all
with their sha256.

A thin wrapper over `stylegan export onnx` (stylegan_sdk/export/cli.py): the same arguments and output.
"""

from __future__ import annotations

import sys

from stylegan_sdk.export.cli import script_main


def main(argv: list[str] | None = None) -> int:
    return script_main("onnx", argv, prog="to_onnx.py", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
