"""Build TensorRT engines for an exported folder: mapping.plan, synthesis.plan, recorded in model.json.

    python export/to_trt.py DIR --out DIR2 [--fp16] [--min-batch 1] [--opt-batch 8] [--max-batch 32]
                            [--workspace-gb 4]

DIR comes from stylegan export onnx. DIR2 may be DIR itself; otherwise the graphs and model.json are
copied there first. Needs `tensorrt` and an NVIDIA GPU; engines run only on the GPU model and
TensorRT version that built them. Missing folders above DIR2 are made (and removed again if the
build fails). A user error (or no TensorRT / GPU) prints one line and exits 2; a failed TensorRT
build exits 1.

A thin wrapper over `stylegan export tensorrt` (stylegan_sdk/export/cli.py): the same arguments and output.
"""

from __future__ import annotations

import sys

from stylegan_sdk.export.cli import script_main


def main(argv: list[str] | None = None) -> int:
    return script_main("tensorrt", argv, prog="to_trt.py", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
