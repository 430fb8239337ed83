"""Every install the README documents resolves quickly from the package index, in a fresh virtual environment.

    python3 .ci/check_extras.py [--limit-s 150] [--extras "[triton] [torch]"]

For each of `pip install .`, `.[torch]`, `.[export]`, `.[openvino]`, `.[triton]`, `.[editing]`, `.[projection]`,
`.[ui]`, `.[train]` and `.[torch,export,dev]` it runs `pip install --dry-run` (the resolver, the downloads of metadata, nothing
installed) in one fresh venv and prints one line with the time it took. It fails (exit 1) when one does
not resolve or takes longer than --limit-s: a backtracking resolver (pip trying release after release of
grpcio-reflection and onnxruntime) is a failure here, not a slow pass. `.[tensorrt]` is not tried: the
tensorrt package on PyPI fetches its libraries from NVIDIA's own index, which is reachable from a GPU
machine, not from CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import venv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTRAS = ["", "[torch]", "[export]", "[openvino]", "[triton]", "[editing]", "[projection]", "[ui]", "[train]",
          "[torch,export,dev]"]
NOT_TRIED = {"[tensorrt]": "the tensorrt package fetches its libraries from NVIDIA's index (GPU machines)"}


def resolve(python: str, extra: str, limit_s: float) -> tuple[bool, float, str]:
    """(resolved?, seconds, last line of pip's output) for `pip install --dry-run .EXTRA`."""
    t0 = time.monotonic()
    try:
        run = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--quiet", "--no-input", f".{extra}"],
                             cwd=REPO, capture_output=True, text=True, timeout=limit_s)
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - t0, f"still resolving after {limit_s:.0f} s (pip is backtracking)"
    lines = [line for line in (run.stdout + run.stderr).splitlines()
             if line.strip() and "is ignored: it is neither a file nor a directory" not in line]
    return run.returncode == 0, time.monotonic() - t0, lines[-1] if lines else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="check_extras.py", description=__doc__.splitlines()[0])
    p.add_argument("--limit-s", type=float, default=150.0, help="longest a resolution may take (default 150)")
    p.add_argument("--extras", default=None, help="comma-free list like '[triton] [torch]' (default: all listed)")
    args = p.parse_args(argv)
    extras = EXTRAS if args.extras is None else [e if e != "." else "" for e in args.extras.split()]
    failed = []
    with tempfile.TemporaryDirectory(prefix="stylegan-sdk-extras-") as tmp:
        venv.create(tmp, with_pip=True)
        python = os.path.join(tmp, "bin", "python")
        for extra in extras:
            ok, seconds, last = resolve(python, extra, args.limit_s)
            print(f"pip install '.{extra}': {'resolves' if ok else 'FAILS'} in {seconds:.0f} s"
                  + ("" if ok else f": {last}"), flush=True)
            if not ok:
                failed.append(extra)
    for extra, why in NOT_TRIED.items():
        print(f"pip install '.{extra}': not tried here ({why})")
    if failed:
        print(f"check_extras: {len(failed)} install(s) do not resolve quickly: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
