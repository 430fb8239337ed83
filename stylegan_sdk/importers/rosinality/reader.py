"""rosinality's PyTorch checkpoints (StyleGAN v1 and StyleGAN2), opened safely.

Every rosinality file is opened by `read_torch_file` and nowhere else: `torch.load(..., weights_only=True)`
with `argparse.Namespace` (the `args` train.py saves) the one class allowed beyond tensors and plain
containers, memory-mapped when the file is a zip archive. No code from the file runs; anything else
the pickle asks for is a ValueError naming it. `rosinality.import_torch_checkpoint` then tells the two
families apart by their keys: a top-level `g_ema`, or a bare state dict with `style.1.weight` and
`input.input`, is rosinality/stylegan2-pytorch (`rosinality.stylegan2`); anything else goes to the v1
importer (`rosinality.stylegan1`).
"""

from __future__ import annotations

import argparse
import os
import re
import zipfile
from typing import Any

# torch.save's legacy (pre-1.6, non-zip) format starts by pickling this magic number (protocol 2).
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
ZIP_MAGIC = b"PK\x03\x04"     # a zip local file header: torch.save's format since 1.6 (torch's own _is_zipfile test)
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
# Lines of torch's weights-only error message that advise rather than say what failed.
_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")


def is_torch_file(path: str | os.PathLike) -> bool:
    """Cheap sniff: a torch.save file (zip archive with a data.pkl, or the legacy pickle format).

    Official NVlabs pickles also start with b"\\x80", so check this before treating a file as one.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(LEGACY_TORCH_MAGIC))
    except OSError:
        return False
    if head.startswith(LEGACY_TORCH_MAGIC):
        return True
    if head[:2] != b"PK":
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(name.endswith("data.pkl") for name in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_torch_file(path: str | os.PathLike) -> Any:
    """The one place rosinality files are opened: weights-only torch.load, argparse.Namespace allowed.

    Zip-format files (torch >= 1.6) are memory-mapped, so entries that are never converted (the
    discriminator, optimiser states) are never read into memory; the legacy format cannot be.
    Raises FileNotFoundError for a missing path, ValueError (naming the file and the reason) otherwise.
    """
    import torch

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such rosinality checkpoint {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"path: {path!r} is a folder; expected a rosinality checkpoint file")
    try:
        with open(path, "rb") as f:
            is_zip = f.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    except OSError as e:
        raise ValueError(f"{path}: cannot read the file ({e.strerror})") from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as e:  # pickle, zip, record-size and weights-only errors all mean "not one of ours to read"
        raise ValueError(f"{path}: not a rosinality checkpoint (torch.load(weights_only=True) failed: "
                         f"{_load_failure(e)})") from None


def _load_failure(e: Exception) -> str:
    """torch.load's error in one line: the global a weights-only load refused, else its first line."""
    text = str(e).strip()
    m = _GLOBAL_RE.search(text)
    if m:
        return (f"the pickle asks for {m.group(1)}, which is not allowed: only tensors, plain containers and "
                f"argparse.Namespace are read, and nothing in the file was run")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):  # torch's advice first, the reason after it
        detail = [line.split("WeightsUnpickler error:")[-1].strip() for line in lines[1:]
                  if not line.startswith(_TORCH_ADVICE)]
        detail = [d for d in detail if d]
        if detail:
            return f"weights-only unpickler: {detail[0][:200]}"
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}"
