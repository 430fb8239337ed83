"""Write a Triton Inference Server model repository: NAME_mapping and NAME_synthesis (+ NAME.model.json).

    python export/to_triton.py MODEL --out REPO [--name stylegan] [--max-batch 8] [--instances 1]
                               [--engine onnx|tensorrt] [--device auto|cpu|gpu] [--max-queue-delay-us 500]
                               [--force]

MODEL is an exported folder (stylegan export onnx; for --engine tensorrt one with engines from
stylegan export tensorrt) or a model file `stylegan_sdk.load` reads, exported first (needs torch + onnx).
Serve it with `tritonserver --model-repository REPO` and run it with
`stylegan_sdk.load("triton://HOST:8001/NAME")`. Missing folders above REPO are made (and removed
again if the export fails). A user error prints one line and exits 2.

A thin wrapper over `stylegan export triton` (stylegan_sdk/export/cli.py): the same arguments and output.
"""

from __future__ import annotations

import sys

from stylegan_sdk.export.cli import script_main


def main(argv: list[str] | None = None) -> int:
    return script_main("triton", argv, prog="to_triton.py", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
