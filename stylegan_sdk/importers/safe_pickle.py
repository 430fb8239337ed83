"""Shared machinery of the allow-list pickle readers (``nvlabs.reader``, ``nvidia_tf.reader``); torch-free.

A restricted ``pickle.Unpickler`` whose ``find_class`` returns entries of an allow-list (inert
stand-ins of ours, never the original globals), the refusal signal it raises and
:class:`UnsafePickleError`, and the size checks that come before anything is allocated:

* :func:`check_pickle_sizes` walks a pickle's opcodes (nothing is built) and checks every length
  an opcode claims (bytes, strings, frames, memo slots; the unpickler allocates those before
  reading them) against the bytes left in the file, counts the objects it would make (at most
  MAX_PICKLE_OBJECTS: a file of one-byte empty-container opcodes would otherwise grow ~80x in
  memory) and the dict keys / set members it would hash that are not strings (at most
  MAX_UNSALTED_KEYS: int keys can be chosen to collide, making the dict quadratic);
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
import io
import math
import mmap
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
    "MAX_PICKLE_OBJECTS",
    "MAX_UNSALTED_KEYS",
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
# Objects, memo entries and container slots one pickle may make (official NVlabs / TF files and
# rosinality data.pkl: < 200_000); bounds what a file of empty-container opcodes can allocate (~60 MB).
MAX_PICKLE_OBJECTS = 1_000_000
# Dict keys and set members a pickle may hash that are not str / bytes (their hashes are not salted,
# so a file can pick keys that all collide: n of them cost n**2 / 2 comparisons). Official files: none
# (TF, NVlabs) or a few hundred (rosinality optimizer states keyed by parameter index).
MAX_UNSALTED_KEYS = 4096
# Opcodes that push a str or bytes: hashed with the per-process salt, so keys made of them cannot be
# chosen to collide.
_SALTED_OPS = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
                         "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"})
# Opcodes that make no new object: memo, stack and framing operations, and the singletons.
_NO_NEW_OBJECT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET", "MARK",
                                "POP", "POP_MARK", "DUP", "FRAME", "PROTO", "STOP", "NONE", "NEWTRUE", "NEWFALSE"})
_MARK = object()  # a MARK on the simulated stack


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
        self.unsalted = MAX_UNSALTED_KEYS  # dict keys / set members not str or bytes, left (plain_dict, set_of)

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
    """read() / readline() of a binary stream that never ask it for more than the bytes left before `end`.

    The position is counted here, not asked of the stream: a buffered file's tell() is a system call,
    and the opcode walk reads a few bytes at a time.
    """

    def __init__(self, stream: BinaryIO, end: int) -> None:
        self._stream = stream
        self._end = end
        self._pos = stream.tell()

    def left(self) -> int:
        return max(self._end - self._pos, 0)

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        left = self._end - self._pos
        if n < 0 or n > left:
            n = left if left > 0 else 0
        data = self._stream.read(n)
        self._pos += len(data)
        return data

    def readline(self) -> bytes:
        data = self._stream.readline(self.left())
        self._pos += len(data)
        return data


_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
# Where the keys that get hashed are among what an opcode pops: "pairs" (every other item of its
# MARK slice), "all" (the whole slice), "setitem" (the second of the three it pops).
_HASHING = {"SETITEMS": "pairs", "DICT": "pairs", "ADDITEMS": "all", "FROZENSET": "all", "SETITEM": "setitem"}


def _op_table() -> dict[str, tuple[bool, int, int, bool, int]]:
    """opcode name -> (pops a MARK slice, items popped besides it, items pushed, pushes a str / bytes,
    objects made: 1 for a new object, 0 for memo / stack / framing opcodes and singletons)."""
    table = {}
    for op in pickletools.opcodes:
        sliced = pickletools.stackslice in op.stack_before
        rest = len(op.stack_before) - (2 if sliced else 0)
        table[op.name] = (sliced, rest, len(op.stack_after), op.name in _SALTED_OPS,
                          0 if op.name in _NO_NEW_OBJECT_OPS else 1)
    return table


_OPS = _op_table()
# Opcodes that push one object and pop nothing (no MARK, no memo): the walk's fast path.
_PLAIN_PUSH = frozenset(name for name, (sliced, rest, pushed, _, _) in _OPS.items()
                        if not sliced and rest == 0 and pushed == 1
                        and name not in _MEMO_PUT | _MEMO_GET | {"MARK", "DUP"})


def _stream_length(stream: io.BytesIO | mmap.mmap) -> int:
    if isinstance(stream, mmap.mmap):
        return len(stream)
    here = stream.tell()
    length = stream.seek(0, io.SEEK_END)
    stream.seek(here)
    return length


class _InMemory:
    """genops' view of an in-memory stream read to its end: its own read / readline / tell, and left()."""

    def __init__(self, stream: io.BytesIO | mmap.mmap, end: int) -> None:
        self.read, self.readline, self.tell = stream.read, stream.readline, stream.tell
        self._end = end

    def left(self) -> int:
        return max(self._end - self.tell(), 0)


def check_pickle_sizes(stream: BinaryIO, end: int) -> None:
    """Walk one pickle's opcodes (nothing is built) from the stream's position to its STOP.

    Every length an opcode claims must fit in the bytes left before `end`: the unpickler allocates a
    BINBYTES8, a FRAME or a memo table slot before it reads them. The objects, memo entries and
    container slots the pickle would make are counted (at most MAX_PICKLE_OBJECTS), and so are the
    dict keys and set members it would hash that are not str or bytes (at most MAX_UNSALTED_KEYS), on
    a simulated stack of what each opcode pushes (True: a str / bytes; False: anything else; _MARK).
    ValueError naming the opcode.
    """
    start = stream.tell()
    # An in-memory stream (bytes, a memory map) read to its own end needs no bound, and its C read() keeps
    # the walk fast; a file is read through BoundedReader.
    in_memory = isinstance(stream, (io.BytesIO, mmap.mmap)) and end == _stream_length(stream)
    reader = _InMemory(stream, end) if in_memory else BoundedReader(stream, end)
    stack: list[object] = []
    memo: dict[int, object] = {}    # memo slot -> what was stored there
    objects = 0
    unsalted = 0
    try:
        for op, arg, pos in pickletools.genops(reader):
            name = op.name
            sliced, rest, pushed, salted, new = _OPS[name]
            if name in _PLAIN_PUSH:  # most opcodes: one new object on the stack, nothing popped
                stack.append(salted)
                objects += new
                if objects > MAX_PICKLE_OBJECTS:
                    raise ValueError(f"it makes more than {MAX_PICKLE_OBJECTS} objects, memo entries and "
                                     f"container slots (by byte {pos}); real model files make far fewer")
                continue
            if name == "FRAME" and arg > reader.left():
                raise ValueError(f"FRAME at byte {pos} claims {arg} bytes, but only {reader.left()} follow")
            if name in _MEMO_PUT:  # the top of the stack is stored, and stays
                if name != "MEMOIZE" and arg > pos - start:
                    raise ValueError(f"{name} at byte {pos} claims memo slot {arg}, "
                                     f"past any the pickle could have made")
                if not stack or stack[-1] is _MARK:
                    raise ValueError(f"{name} at byte {pos} memoizes an empty stack")
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
                objects += 1
                continue
            if name in _MEMO_GET:
                if arg > pos - start:
                    raise ValueError(f"{name} at byte {pos} claims memo slot {arg}, "
                                     f"past any the pickle could have made")
                stack.append(memo.get(arg, False))
                continue
            items: list[object] = []
            if sliced:  # pop down to the last MARK
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i] is _MARK:
                        break
                else:
                    raise ValueError(f"{name} at byte {pos} has no MARK before it")
                items = stack[i + 1:]
                del stack[i:]
                objects += len(items)
            if rest:
                if len(stack) < rest or _MARK in stack[-rest:]:
                    raise ValueError(f"{name} at byte {pos} pops more than the stack holds")
                popped = stack[-rest:]
                del stack[-rest:]
                objects += rest
            else:
                popped = []
            hashing = _HASHING.get(name)
            if hashing is not None:
                keys = items[0::2] if hashing == "pairs" else items if hashing == "all" else popped[1:2]
                unsalted += sum(1 for k in keys if k is not True)
            if name == "MARK":
                stack.append(_MARK)
            elif name == "DUP":
                stack.extend(popped * 2)
            elif pushed:
                stack.extend([salted] * pushed)
            objects += new
            if objects > MAX_PICKLE_OBJECTS:
                raise ValueError(f"it makes more than {MAX_PICKLE_OBJECTS} objects, memo entries and container "
                                 f"slots (by byte {pos}); real model files make far fewer")
            if unsalted > MAX_UNSALTED_KEYS:
                raise ValueError(f"it hashes more than {MAX_UNSALTED_KEYS} dict keys or set members that are not "
                                 f"strings (by {name} at byte {pos}); real model files key their dicts by name")
    except ValueError as exc:  # pickletools: "expected N bytes in a bytes8, but only M remain", unknown opcode
        what = "costs more than a model file may" if "real model files" in str(exc) else "claims more than it holds"
        raise ValueError(f"pickle {what}: {exc}") from None


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


def _spend_unsalted(keys: object, what: str) -> None:
    """Count the keys (or members) of a pickled dict / set argument that are not str or bytes against
    the file's MAX_UNSALTED_KEYS: their hashes are not salted, so a file could make them all collide."""
    if not isinstance(keys, (list, tuple)):
        return
    n = sum(1 for k in keys if not isinstance(k, (str, bytes)))
    budget = BUDGET.get(None)
    if budget is None:
        if n > MAX_UNSALTED_KEYS:
            raise ValueError(f"pickled {what} has more than {MAX_UNSALTED_KEYS} keys that are not strings")
        return
    budget.unsalted -= n
    if budget.unsalted < 0:
        raise ValueError(f"pickled {what}s hash more than {MAX_UNSALTED_KEYS} keys that are not strings "
                         f"(real model files key their dicts by name)")


def plain_dict(*args: object) -> dict:
    for arg in args:
        if isinstance(arg, (list, tuple)):
            _spend_unsalted([p[0] if isinstance(p, (list, tuple)) and p else p for p in arg], "dict")
    return dict(*args)


def set_of(kind: type[set] | type[frozenset]) -> Callable[..., set | frozenset]:
    def build(items: object = ()) -> set | frozenset:
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"pickled {kind.__name__} is not built from a list")
        _spend_unsalted(items, kind.__name__)
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
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped:  # the walk reads it fast
                check_pickle_sizes(mapped, size)
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
