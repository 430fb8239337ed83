"""Generate the Python modules for protos/ into stylegan_sdk/_proto/ (committed; a test checks for drift).

    python protos/generate.py              # rewrite stylegan_sdk/_proto/stylegan/v1/*
    python protos/generate.py --out DIR    # write the package tree under DIR instead (the drift test)

Uses grpc_tools.protoc (pip install grpcio-tools; the dev extra pins the version the committed files
came from, because protoc's output differs between versions). protoc writes absolute imports
(`from stylegan.v1 import stylegan_pb2`); they are rewritten to package-relative ones so the modules
live inside `stylegan_sdk._proto` without touching sys.path.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROTOS = ["stylegan/v1/stylegan.proto"]
DEFAULT_OUT = os.path.join(ROOT, "stylegan_sdk", "_proto")
INIT_TEXT = '"""Generated from protos/ by protos/generate.py; do not edit."""\n'


def protoc_version() -> str:
    import grpc_tools

    try:
        from importlib.metadata import version

        return version("grpcio-tools")
    except Exception:  # pragma: no cover - metadata missing
        return getattr(grpc_tools, "__version__", "unknown")


def _relative_imports(text: str, package: str) -> str:
    """`from stylegan.v1 import x_pb2 as y` -> `from . import x_pb2 as y` (same package)."""
    return re.sub(rf"^from {re.escape(package)} import ", "from . import ", text, flags=re.M)


def generate(out_dir: str) -> list[str]:
    """Write the generated modules (and package __init__ files) under out_dir; returns the paths written."""
    from importlib.resources import files

    from grpc_tools import protoc

    include = str(files("grpc_tools") / "_proto")
    written: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"-I{HERE}", f"-I{include}", f"--python_out={tmp}", f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}", *PROTOS]
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"protoc failed with status {rc}: {' '.join(args)}")
        for proto in PROTOS:
            package_dir = os.path.dirname(proto)               # stylegan/v1
            package = package_dir.replace("/", ".")            # stylegan.v1
            stem = os.path.splitext(os.path.basename(proto))[0]
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
                src = os.path.join(tmp, package_dir, stem + suffix)
                with open(src, encoding="utf-8") as f:
                    text = _relative_imports(f.read(), package)
                dst = os.path.join(out_dir, package_dir, stem + suffix)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                with open(dst, "w", encoding="utf-8", newline="\n") as f:
                    f.write(text)
                written.append(dst)
            # Package markers for stylegan/ and stylegan/v1/ (the top _proto/__init__.py is hand-written).
            parts = package_dir.split("/")
            for i in range(1, len(parts) + 1):
                init = os.path.join(out_dir, *parts[:i], "__init__.py")
                with open(init, "w", encoding="utf-8", newline="\n") as f:
                    f.write(INIT_TEXT)
                written.append(init)
    return sorted(set(written))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="package folder to write into (default: stylegan_sdk/_proto)")
    args = p.parse_args(argv)
    for path in generate(args.out):
        print(os.path.relpath(path, ROOT) if path.startswith(ROOT) else path)
    print(f"(grpcio-tools {protoc_version()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
