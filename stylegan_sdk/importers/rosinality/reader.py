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
import io
import os
import pickle
import re
import zipfile
from typing import Any, BinaryIO

from ..safe_pickle import CORRUPT_ERRORS, check_pickle_sizes

# torch.save's legacy (pre-1.6, non-zip) format starts by pickling this magic number (protocol 2).
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
ZIP_MAGIC = b"PK\x03\x04"     # a zip local file header: torch.save's format since 1.6 (torch's own _is_zipfile test)
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
# Lines of torch's weights-only error message that advise rather than say what failed.
_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")
# Bytes per element of the storage types a legacy file's persistent ids name (others: 1, a lower bound).
_STORAGE_ITEMSIZE = {"DoubleStorage": 8, "LongStorage": 8, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16,
                     "FloatStorage": 4, "IntStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "ShortStorage": 2}


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
        if is_zip:
            _check_zip_pickle(path)
        else:
            _check_legacy_sizes(path)
    except ValueError as e:
        raise ValueError(f"{path}: not a rosinality checkpoint torch.load may open: {e}") from None
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


# --- What a file may cost, checked before torch.load sees it --------------------------------------


def _check_zip_pickle(path: str) -> None:
    """The zip's data.pkl walked by `safe_pickle.check_pickle_sizes` (objects, unsalted keys, lengths).

    torch's weights-only unpickler builds whatever containers the pickle asks for and hashes its keys;
    a small file of empty-list opcodes or colliding int keys would cost gigabytes or minutes there.
    """
    size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [info for info in zf.infolist() if info.filename.endswith("data.pkl")]
            if len(names) != 1:
                raise ValueError(f"the zip archive holds {len(names)} data.pkl entries, not one")
            info = names[0]
            if info.file_size > size:  # torch.save stores entries uncompressed
                raise ValueError(f"{info.filename} claims {info.file_size} bytes, more than the file's {size}")
            with zf.open(info) as entry:
                data = entry.read(info.file_size + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as e:
        raise ValueError(f"unreadable zip archive ({e})") from None
    check_pickle_sizes(io.BytesIO(data), len(data))


class _Stub:
    """What a global of a legacy file's pickle becomes in the dry run: takes any arguments and state, runs nothing."""

    qualname = ""

    def __init__(self, *args: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, value: object) -> None:
        pass

    def extend(self, values: object) -> None:
        pass


class _DryRun(pickle.Unpickler):
    """Unpickles a legacy torch.save pickle into stubs, recording the storages its persistent ids claim."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream)
        self.claims: dict[str, int] = {}     # storage key -> bytes its persistent id claims
        self._stubs: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in self._stubs:
            self._stubs[module, name] = type(name, (_Stub,), {"qualname": f"{module}.{name}"})
        return self._stubs[module, name]

    def persistent_load(self, pid: object) -> object:
        # ('storage', storage type, key, location, element count[, view metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[2], str)
                and type(pid[4]) is int and pid[4] >= 0):
            raise ValueError("a persistent id that is not a tensor storage")
        kind = pid[1].__name__ if isinstance(pid[1], type) else ""
        self.claims[pid[2]] = max(self.claims.get(pid[2], 0), pid[4] * _STORAGE_ITEMSIZE.get(kind, 1))
        return _Stub()


def _check_legacy_sizes(path: str) -> None:
    """A legacy (pre-1.6, non-zip) torch.save file: the storages its pickle claims fit in the bytes after it.

    The format is five pickles (magic number, protocol version, system info, the object, the storage
    keys), then per storage an int64 element count and its bytes; torch.load allocates each storage
    from the count in its persistent id before reading any of it. Each pickle is walked first
    (`check_pickle_sizes`), the object's pickle then run into stubs that only record those counts.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        claims: dict[str, int] = {}
        for i in range(5):
            start = f.tell()
            check_pickle_sizes(f, size)
            f.seek(start)
            try:
                if i == 3:
                    dry = _DryRun(f)
                    dry.load()
                    claims = dry.claims
                else:
                    _DryRun(f).load()
            except CORRUPT_ERRORS as e:
                raise ValueError(f"legacy torch.save pickle {i} is unreadable ({e})") from None
        left = size - f.tell()
    claimed = sum(claims.values()) + 8 * len(claims)
    if claimed > left:
        key = max(claims, key=claims.__getitem__)
        raise ValueError(f"its storages claim {claimed} bytes (storage {key[:40]!r}: {claims[key]}), but only "
                         f"{left} bytes follow the pickles")
