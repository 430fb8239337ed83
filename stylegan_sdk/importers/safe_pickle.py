"""Shared machinery of the allow-list pickle readers (``nvlabs.reader``, ``nvidia_tf.reader``); torch-free.

A restricted ``pickle.Unpickler`` whose ``find_class`` returns entries of an allow-list (inert
stand-ins of ours, never the original globals), the refusal signal it raises and
:class:`UnsafePickleError`, and the size checks that come before anything is allocated:

* :func:`check_pickle_sizes` walks a pickle's opcodes (nothing is built) and checks every length
  an opcode claims (bytes, strings, frames, memo slots; the unpickler allocates those before
  reading them) against the bytes left in the file;
* a :class:`Budget` (reached through :data:`BUDGET` while a file is read) bounds what the file
  turns into by the file's size, so a payload or sub-tree shared through the pickle memo cannot
  be multiplied.

The numpy stand-ins admit plain numeric dtypes (bool / int / uint / float / complex), scalars and
arrays only; arrays are copied from the pickled bytes after their shape and dtype have been
checked against those bytes. :func:`read_pickle` opens a file, checks its header and sizes,
unpickles it with an allow-list and maps every failure to ``FileNotFoundError``, ``ValueError``
or :class:`UnsafePickleError` naming the file.
"""

from __future__ import annotations

import contextvars
import errno
import math
import os
import pickle
import pickletools
import re
import reprlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = [
    "BUDGET",
    "CORRUPT_ERRORS",
    "MAX_ITEMS",
    "NDARRAY",
    "Array",
    "BoundedReader",
    "Budget",
    "Dtype",
    "Inert",
    "Marker",
    "Refused",
    "RestrictedUnpickler",
    "SafeCallable",
    "Scalar",
    "UnsafePickleError",
    "allowed",
    "check_header",
    "check_pickle_sizes",
    "int_tuple",
    "numpy_allowed",
    "numpy_dtype",
    "numpy_reconstruct",
    "numpy_scalar",
    "numpy_scalar_array",
    "plain_dict",
    "read_pickle",
    "set_of",
    "short_repr",
]


# --- Errors -------------------------------------------------------------------------------------


class UnsafePickleError(ValueError):
    """The pickle asked for a global, persistent id or BUILD outside the allow-list."""


class Refused(Exception):
    """Raised inside the unpickler; :func:`read_pickle` re-raises it as UnsafePickleError with the path."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"refused to {what}: {why}")
        self.what = what
        self.why = why


# --- Sizes a file claims, checked against the bytes it has before anything is allocated ----------

MAX_ITEMS = 1_000_000  # entries a reader may build from one file (official files: < 10_000)
_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"})


class Budget:
    """What reading a file may produce, bounded by the file: bytes materialised and entries built.

    Each payload, array or sub-tree costs file bytes once, but the pickle memo can hand the same
    one out many times; without a bound a small file would expand into copies or a huge tree.
    `data_label` names what :class:`Array` spends in messages.
    """

    def __init__(self, size: int, items: int = MAX_ITEMS, data_label: str = "tensor storages and arrays") -> None:
        self.total = size
        self.size = size
        self.max_items = items
        self.items = items
        self.data_label = data_label

    def spend(self, what: str, size: int = 0, items: int = 0) -> None:
        """Take `size` bytes (or elements) and `items` entries; ValueError once either runs out."""
        self.size -= size
        self.items -= items
        if self.size < 0:
            raise ValueError(f"{what} add up to more than the file's {self.total} bytes could hold "
                             f"(one payload or sub-tree used many times through the pickle memo?)")
        if self.items < 0:
            raise ValueError(f"{what} have more than {self.max_items} entries "
                             f"(one sub-tree used many times through the pickle memo?)")


BUDGET: contextvars.ContextVar[Budget] = contextvars.ContextVar("safe_pickle_budget")


class BoundedReader:
    """read() / readline() of a binary stream that never ask it for more than the bytes left before `end`."""

    def __init__(self, stream: BinaryIO, end: int) -> None:
        self._stream = stream
        self._end = end

    def left(self) -> int:
        return max(self._end - self._stream.tell(), 0)

    def tell(self) -> int:
        return self._stream.tell()

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(self.left() if n < 0 else min(n, self.left()))

    def readline(self) -> bytes:
        return self._stream.readline(self.left())


def check_pickle_sizes(stream: BinaryIO, end: int) -> None:
    """Walk one pickle's opcodes (nothing is built) from the stream's position to its STOP.

    Every length an opcode claims must fit in the bytes left before `end`: the unpickler allocates a
    BINBYTES8, a FRAME or a memo table slot before it reads them. ValueError naming the opcode.
    """
    start = stream.tell()
    reader = BoundedReader(stream, end)
    try:
        for op, arg, pos in pickletools.genops(reader):
            if op.name == "FRAME" and arg > reader.left():
                raise ValueError(f"FRAME at byte {pos} claims {arg} bytes, but only {reader.left()} follow")
            if op.name in _MEMO_OPS and arg > pos - start:
                raise ValueError(f"{op.name} at byte {pos} claims memo slot {arg}, past any the pickle could have made")
    except ValueError as exc:  # pickletools: "expected N bytes in a bytes8, but only M remain", unknown opcode
        raise ValueError(f"pickle claims more than it holds: {exc}") from None


# --- Inert stand-ins handed to pickle: no __dict__, BUILD refused unless overridden -------------


class Inert:
    __slots__ = ()
    label = "object"

    def __setstate__(self, state: object) -> None:
        raise Refused(f"apply pickled state (BUILD) to {self.label}", "it takes no state")


class SafeCallable(Inert):
    """An allow-listed global: calling it runs our own helper, never the original function."""

    __slots__ = ("label", "_fn")

    def __init__(self, label: str, fn: Callable[..., object]) -> None:
        self.label = label
        self._fn = fn

    def __call__(self, *args: object) -> object:
        return self._fn(*args)


class Marker(Inert):
    """A global that is only valid as an argument (``numpy.ndarray``)."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label


# --- numpy: plain numeric dtypes, scalars and arrays only ---------------------------------------

_NUMERIC_DTYPE = re.compile(r"[biufc][0-9]{1,2}")
_BYTE_ORDERS = ("<", ">", "|", "=")


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def short_repr(value: object) -> str:
    """repr() bounded in depth and length: a pickled value may be a huge tree shared through the memo."""
    return _SHORT.repr(value)


def int_tuple(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"{what} is not a tuple of non-negative ints: {short_repr(value)}")
    return tuple(value)


class Dtype(Inert):
    __slots__ = ("spec", "byteorder")
    label = "a numpy dtype"

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.byteorder = "="

    def __setstate__(self, state: object) -> None:
        # (3, byteorder, subarray, names, fields, elsize, alignment, flags) of a builtin dtype
        if not (
            isinstance(state, tuple)
            and len(state) == 8
            and state[0] == 3
            and state[1] in _BYTE_ORDERS
            and state[2:5] == (None, None, None)
            and state[5:7] == (-1, -1)
            and type(state[7]) is int
        ):
            raise ValueError(f"numpy dtype state {short_repr(state)} is not that of a plain numeric dtype")
        self.byteorder = state[1]

    def resolve(self) -> np.dtype:
        return np.dtype(self.spec).newbyteorder(self.byteorder)


def _flag(value: object) -> bool:
    # numpy >= 1.19 pickles align/copy as False/True; older numpy (2019 TF pickles) as 0/1.
    return type(value) is bool or (type(value) is int and value in (0, 1))


def numpy_dtype(spec: object, align: object = False, copy: object = False) -> Dtype:
    if not isinstance(spec, str) or not _NUMERIC_DTYPE.fullmatch(spec):
        raise ValueError(f"numpy dtype {short_repr(spec)} is not a plain numeric dtype")
    if not _flag(align) or not _flag(copy):
        raise ValueError("numpy dtype align/copy flags are not bools")
    np.dtype(spec)  # raises TypeError for an unknown width such as 'f3'
    return Dtype(spec)


def numpy_scalar_array(dtype: object, data: object = None) -> np.ndarray:
    """A numpy scalar's (numeric dtype, bytes) as a 0-d array of that dtype."""
    if not isinstance(dtype, Dtype) or not isinstance(data, bytes):
        raise ValueError("numpy scalar is not (numeric dtype, bytes)")
    resolved = dtype.resolve()
    if len(data) != resolved.itemsize:
        raise ValueError("numpy scalar bytes do not match its dtype")
    return np.frombuffer(data, dtype=resolved, count=1).reshape(()).copy()


def numpy_scalar(dtype: object, data: object = None) -> bool | int | float | complex:
    """A numpy scalar as the Python number it holds."""
    return numpy_scalar_array(dtype, data).item()


class Scalar(Inert):
    """A numpy scalar kept with its dtype (as a 0-d array); BUILD refused."""

    __slots__ = ("array",)
    label = "a numpy scalar"

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


class Array(Inert):
    __slots__ = ("array",)
    label = "a numpy array"

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        # (1, shape, dtype, is_fortran, raw bytes) of a numeric ndarray
        if self.array is not None:
            raise Refused("apply pickled state (BUILD) twice to a numpy array", "")
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise ValueError("numpy array state is not (1, shape, dtype, is_fortran, bytes)")
        _, shape, dtype, is_fortran, raw = state
        shape = int_tuple(shape, "numpy array shape")
        if not isinstance(dtype, Dtype) or not isinstance(is_fortran, bool):
            raise ValueError("numpy array state has a non-numeric dtype or bad order flag")
        resolved = dtype.resolve()
        if not isinstance(raw, bytes) or len(raw) != math.prod(shape) * resolved.itemsize:
            raise ValueError("numpy array bytes do not match its shape and dtype")
        budget = BUDGET.get()
        budget.spend(budget.data_label, size=len(raw))
        flat = np.frombuffer(raw, dtype=resolved)
        self.array = flat.reshape(shape, order="F" if is_fortran else "C").copy()


NDARRAY = Marker("numpy.ndarray")


def numpy_reconstruct(subtype: object, shape: object, dtype_code: object) -> Array:
    if subtype is not NDARRAY:
        raise ValueError("numpy _reconstruct is only supported for numpy.ndarray")
    return Array()


# --- Plain containers ---------------------------------------------------------------------------


def plain_dict(*args: object) -> dict:
    return dict(*args)


def set_of(kind: type[set] | type[frozenset]) -> Callable[..., set | frozenset]:
    def build(items: object = ()) -> set | frozenset:
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"pickled {kind.__name__} is not built from a list")
        return kind(items)

    return build


# --- Allow-lists and the restricted unpickler ---------------------------------------------------


def allowed(module: str, name: str, fn: Callable[..., object]) -> tuple[tuple[str, str], object]:
    """An allow-list entry: ``module.name`` resolves to a stand-in that calls `fn`."""
    return (module, name), SafeCallable(f"{module}.{name}", fn)


def numpy_allowed(scalar: Callable[..., object] = numpy_scalar) -> list[tuple[tuple[str, str], object]]:
    """The numpy entries (both the numpy 1.x ``numpy.core`` and the 2.x ``numpy._core`` spellings)."""
    return [
        allowed("numpy", "dtype", numpy_dtype),
        allowed("numpy.core.multiarray", "scalar", scalar),
        allowed("numpy._core.multiarray", "scalar", scalar),
        allowed("numpy.core.multiarray", "_reconstruct", numpy_reconstruct),
        allowed("numpy._core.multiarray", "_reconstruct", numpy_reconstruct),
        (("numpy", "ndarray"), NDARRAY),
    ]


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals through `allowed` only; persistent ids are refused."""

    def __init__(self, stream: BinaryIO, allowed: Mapping[tuple[str, str], object], hint: str, what: str) -> None:
        super().__init__(stream)
        self._allowed = allowed
        self._hint = hint
        self._what = what

    def find_class(self, module: str, name: str) -> object:
        target = self._allowed.get((module, name))
        if target is None:
            raise Refused(f"load '{module}.{name}'", self._hint)
        return target

    def persistent_load(self, pid: object) -> object:
        raise Refused("resolve a persistent id (PERSID/BINPERSID opcode)", f"{self._what}s never use persistent ids")


# --- Reading a file -----------------------------------------------------------------------------

# What a corrupt or truncated pickle makes the unpickler (or our validators) raise.
CORRUPT_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
    RuntimeError,
)


def check_header(head: bytes, file: Path, what: str) -> None:
    """ValueError unless `head` (the first two bytes) opens a pickle of protocol 2 or later."""
    if not head:
        raise ValueError(f"{file} is not a readable {what} (it is empty)")
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= pickle.HIGHEST_PROTOCOL:
        hint = "; it looks like a zip archive, e.g. a torch.save checkpoint" if head == b"PK" else ""
        raise ValueError(f"{file} is not a readable {what} (not a pickle of protocol 2 or later{hint})")


def read_pickle(
    path: str | os.PathLike[str],
    allowed: Mapping[tuple[str, str], object],
    what: str,
    hint: str,
    data_label: str = "tensor storages and arrays",
) -> object:
    """Unpickle `path` with an allow-list; `what` names the format in messages, `hint` the allow-list.

    FileNotFoundError if it is missing; UnsafePickleError for a refused global, persistent id or
    BUILD; ValueError for anything else (not a file, empty, not a pickle, corrupt, truncated, or a
    size that the file cannot hold). Each message names the file.
    """
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(errno.ENOENT, "network pickle not found", str(file))
    if not file.is_file():
        raise ValueError(f"{file} is not a file")
    with file.open("rb") as stream:
        check_header(stream.read(2), file, what)
        stream.seek(0)
        size = os.fstat(stream.fileno()).st_size
        token = BUDGET.set(Budget(size, data_label=data_label))
        try:
            check_pickle_sizes(stream, size)
            stream.seek(0)
            return RestrictedUnpickler(stream, allowed, hint, what).load()
        except Refused as exc:
            raise UnsafePickleError(f"refused to {exc.what} from {file}: {exc.why}") from None
        except CORRUPT_ERRORS as exc:
            raise ValueError(
                f"{file} is not a readable {what} (corrupt or truncated?): {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            BUDGET.reset(token)
