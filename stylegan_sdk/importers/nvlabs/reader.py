"""Safe, allow-list reader for official NVlabs network pickles.

Official stylegan2-ada-pytorch / stylegan3 snapshots (``network-snapshot-*.pkl``) are plain
pickles whose networks are ``torch_utils.persistence`` objects: ``pickle.load`` on one imports
and *executes* the Python source embedded in the file. This module never does. It unpickles with
a restricted ``pickle.Unpickler`` whose ``find_class`` admits only the globals below, each mapped
to an inert stand-in of ours, and turns a network into a :class:`NetworkRecord` (class name,
constructor arguments, flattened ``state_dict``). No network class is ever instantiated. The
generic parts (restricted unpickler, size checks, budget, numpy stand-ins) live in
``stylegan_sdk.importers.safe_pickle``, shared with the TensorFlow pickle reader ``nvidia_tf.reader``.

Allow-list (any other global, any persistent id, raises :class:`UnsafePickleError`):

* ``torch_utils.persistence._reconstruct_persistent_obj`` -> a record of the meta's
  ``class_name``, ``version`` and ``state``; ``module_src`` is never read, imported or executed.
* ``torch.storage._load_from_bytes`` -> the storage parsed by
  ``torch.load(..., weights_only=True, map_location="cpu")``; a payload that loader refuses
  raises UnsafePickleError.
* ``torch._utils._rebuild_tensor_v2``, ``torch._utils._rebuild_tensor`` -> a bounds-checked
  tensor view of such a storage (backward hooks and tensor metadata must be empty).
* ``torch._utils._rebuild_parameter`` -> the same tensor, as a plain tensor (not a Parameter).
* ``collections.OrderedDict`` -> ``dict``.
* ``builtins.set``, ``builtins.frozenset`` (how pickle protocols 2-3, the default of the Python
  3.7 that wrote the official snapshots, encode sets) -> ``set`` / ``frozenset`` of a pickled
  list or tuple.
* ``dnnlib.util.EasyDict`` -> ``dict``.
* ``torch.nn.modules.container.Sequential``, ``.ModuleList``, ``.ModuleDict``,
  ``.ParameterList``, ``.ParameterDict`` -> a generic module record holding the module's
  pickled ``__dict__`` (no torch module is built).
* ``numpy.dtype`` -> a descriptor of a plain bool / int / uint / float / complex dtype (align /
  copy flags as bools, or as 0 / 1 the way numpy < 1.19 wrote them).
* ``numpy.core.multiarray.scalar``, ``numpy._core.multiarray.scalar`` -> a Python number.
* ``numpy.core.multiarray._reconstruct``, ``numpy._core.multiarray._reconstruct`` with
  ``numpy.ndarray`` (accepted only as its first argument) -> a numeric ``numpy.ndarray``
  copied from the pickled bytes.

BUILD (``__setstate__``) only ever reaches objects of ours: the numpy dtype and array stand-ins
and the torch container records validate their state and store it as data; every other stand-in
refuses BUILD with UnsafePickleError, and plain dicts have no state to set.

Sizes are checked against the bytes the file really has before anything is allocated from them
(ValueError naming the problem): every length an opcode claims (bytes, strings, frames, memo slots;
the unpickler allocates those before reading) must fit in what is left of the file; a storage
payload must be a legacy ``torch.save`` stream of exactly one storage whose claimed element count
times element size is the data it carries (checked by our own parse, before torch's loader
allocates the storage); a tensor view must lie inside its storage and hold no more elements than
it; and what the file turns into (storages, arrays, state-dict entries, constructor arguments)
may not add up to more bytes or entries than the file could hold, so a payload or sub-tree shared
through the pickle memo cannot be multiplied.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import torch

# Generic machinery shared with nvidia_tf.reader; the private aliases keep this module's own names.
from ..safe_pickle import BUDGET as _BUDGET
from ..safe_pickle import Array as _Array
from ..safe_pickle import Budget as _Budget
from ..safe_pickle import Inert as _Inert
from ..safe_pickle import Refused as _Refused
from ..safe_pickle import UnsafePickleError, int_tuple, numpy_allowed, plain_dict, read_pickle, set_of, short_repr
from ..safe_pickle import allowed as _allowed
from ..safe_pickle import check_pickle_sizes as _check_pickle_sizes

__all__ = [
    "NetworkRecord",
    "UnsafePickleError",
    "list_network_pickle_keys",
    "read_network_pickle",
]


# --- Public result type ------------------------------------------------------------------------


@dataclass
class NetworkRecord:
    """One network of an NVlabs pickle, as data; none of the pickled code was run."""

    class_name: str
    module_version: int | None
    init_args: tuple
    init_kwargs: dict
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    # Class of every submodule by its path ("synthesis.input" -> "SynthesisInput"; torch containers as
    # "torch.nn.ModuleList"): what tells the official families apart.
    module_classes: dict[str, str] = field(default_factory=dict, repr=False)


_ALLOW_LIST_HINT = (
    "not on the allow-list of stylegan_sdk.importers.nvlabs.reader (NVlabs network pickles only "
    "need torch tensor/storage rebuilders, numpy scalars/arrays, OrderedDict, EasyDict, torch.nn "
    "containers and torch_utils.persistence records)"
)


# --- Inert stand-ins handed to pickle (base classes in safe_pickle): BUILD refused unless overridden


class _PersistentObject(_Inert):
    __slots__ = ("class_name", "version", "state")
    label = "a torch_utils.persistence record"

    def __init__(self, class_name: str, version: int | None, state: dict) -> None:
        self.class_name = class_name
        self.version = version
        self.state = state


class _Storage(_Inert):
    __slots__ = ("untyped", "dtype")
    label = "a tensor storage"

    def __init__(self, untyped: torch.UntypedStorage, dtype: torch.dtype) -> None:
        self.untyped = untyped
        self.dtype = dtype


class _Tensor(_Inert):
    __slots__ = ("tensor",)
    label = "a tensor"

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class _EasyDict(dict):
    """``dnnlib.util.EasyDict`` while loading (NEWOBJ needs a type); a plain dict afterwards."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        if not (isinstance(state, dict) and not state):
            raise _Refused("apply pickled state (BUILD) to dnnlib.util.EasyDict", "it has none")


# --- torch.nn containers: generic records filled by BUILD with the module's __dict__ -----------


class _TorchModule:
    __slots__ = ("state",)
    class_name = "Module"

    def __init__(self) -> None:
        self.state: dict | None = None

    def __setstate__(self, state: object) -> None:
        if getattr(self, "state", None) is not None:
            raise _Refused(f"apply pickled state (BUILD) twice to torch.nn.{self.class_name}", "")
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise ValueError(f"torch.nn.{self.class_name} state is not a dict of attributes")
        self.state = state


_TORCH_CONTAINERS: dict[str, type[_TorchModule]] = {
    name: type(name, (_TorchModule,), {"__slots__": (), "class_name": name})
    for name in ("Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict")
}


# --- Persistent objects: keep class name, version and state; module_src is never touched -------


def _reconstruct_persistent_obj(meta: object) -> _PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise ValueError("persistent object meta is not a {'type': 'class', ...} dict")
    class_name, version, state = meta.get("class_name"), meta.get("version"), meta.get("state")
    if not isinstance(class_name, str) or not class_name.isidentifier():
        raise ValueError(f"persistent object has an invalid class_name {class_name!r}")
    if version is not None and (type(version) is not int):
        raise ValueError(f"persistent object {class_name} has a non-integer version")
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError(f"persistent object {class_name} has no attribute dict as its state")
    return _PersistentObject(class_name, version, state)


# --- Storages: sizes checked by our own parse, then loaded by torch's weights_only loader ---------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001                  # torch.serialization.PROTOCOL_VERSION
_STORAGE_TYPES: dict[tuple[str, str], torch.dtype] = {
    ("torch", "FloatStorage"): torch.float32,
    ("torch", "DoubleStorage"): torch.float64,
    ("torch", "HalfStorage"): torch.float16,
    ("torch", "BFloat16Storage"): torch.bfloat16,
    ("torch", "LongStorage"): torch.int64,
    ("torch", "IntStorage"): torch.int32,
    ("torch", "ShortStorage"): torch.int16,
    ("torch", "CharStorage"): torch.int8,
    ("torch", "ByteStorage"): torch.uint8,
    ("torch", "BoolStorage"): torch.bool,
    ("torch.storage", "UntypedStorage"): torch.uint8,
}
_PAYLOAD_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                   KeyError, OverflowError, struct.error)


class _StorageType(_Inert):
    __slots__ = ("dtype",)
    label = "a torch storage type"

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _StorageRef(_Inert):
    """A storage as a payload's persistent id describes it; nothing allocated."""

    __slots__ = ("key", "dtype", "numel")
    label = "a storage record"

    def __init__(self, key: str, dtype: torch.dtype, numel: int) -> None:
        self.key = key
        self.dtype = dtype
        self.numel = numel


def _storage_ref(pid: object) -> _StorageRef:
    """('storage', storage type, key, location, element count, view) -> a checked _StorageRef."""
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
        raise ValueError("tensor storage payload has a persistent id that is not a storage record")
    _, kind, key, location, numel, view = pid
    if not isinstance(kind, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
        raise ValueError("tensor storage record is not (type, key, location, count, view)")
    if type(numel) is not int or numel < 0:
        raise ValueError(f"tensor storage claims {numel!r} elements")
    if view is not None:
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)
                and all(type(v) is int and v >= 0 for v in view[1:])):
            raise ValueError("tensor storage view is not (key, offset, size)")
        if view[1] + view[2] > numel:
            raise ValueError(f"tensor storage view [{view[1]}, {view[1] + view[2]}) runs past its {numel} elements")
    return _StorageRef(key, kind.dtype, numel)


class _PayloadUnpickler(pickle.Unpickler):
    """One pickle of a legacy torch.save stream: plain data, and (with refs) storage types and ids."""

    def __init__(self, stream: BinaryIO, refs: list[_StorageRef] | None) -> None:
        super().__init__(stream)
        self._refs = refs

    def find_class(self, module: str, name: str) -> object:
        dtype = _STORAGE_TYPES.get((module, name))
        if dtype is None or self._refs is None:
            raise _Refused("load a tensor storage payload", f"it names '{module}.{name}', not a torch storage type")
        return _StorageType(dtype)

    def persistent_load(self, pid: object) -> object:
        if self._refs is None:
            raise _Refused("load a tensor storage payload", "a persistent id outside its storage record")
        ref = _storage_ref(pid)
        self._refs.append(ref)
        return ref


def _payload_parts(payload: bytes) -> tuple[list[object], list[_StorageRef], int]:
    """The five pickles of a legacy torch.save stream, the storage ids met, and where the data begins."""
    stream = io.BytesIO(payload)
    parts: list[object] = []
    refs: list[_StorageRef] = []
    for i in range(5):  # magic number, protocol version, sys info, the object, the storage keys
        start = stream.tell()
        _check_pickle_sizes(stream, len(payload))
        stream.seek(start)
        parts.append(_PayloadUnpickler(stream, refs if i == 3 else None).load())
    return parts, refs, stream.tell()


def _check_storage_payload(payload: bytes) -> int:
    """Check every size a ``torch.storage._load_from_bytes`` payload claims against its bytes; its data size.

    The payload is what torch.save(storage, _use_new_zipfile_serialization=False) writes
    (torch.serialization._legacy_load reads it): five pickles, then per storage key an int64
    element count and count * element size bytes. torch's loader allocates each storage from the
    count in its persistent id before reading any data; here nothing is allocated from a claim.
    """
    try:
        (magic, protocol, sys_info, obj, keys), refs, offset = _payload_parts(payload)
    except _PAYLOAD_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise ValueError(f"tensor storage payload is not a legacy torch.save stream: {reason}") from None
    if type(magic) is not int or magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL \
            or not isinstance(sys_info, dict):
        raise ValueError("tensor storage payload is not a legacy torch.save stream (magic number / protocol)")
    if not isinstance(obj, _StorageRef):
        raise ValueError(f"tensor storage payload holds {_describe(obj)}, not one storage")
    roots: dict[str, tuple[torch.dtype, int]] = {}
    for ref in refs:
        if roots.setdefault(ref.key, (ref.dtype, ref.numel)) != (ref.dtype, ref.numel):
            raise ValueError(f"tensor storage {ref.key!r} is claimed with two different types or sizes")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
            and len(set(keys)) == len(keys) and set(keys) == set(roots)):
        raise ValueError("tensor storage payload's list of keys does not match its storages")
    total = 0
    for key in keys:
        dtype, numel = roots[key]
        if len(payload) - offset < 8:
            raise ValueError(f"tensor storage payload ends before the data of storage {key!r}")
        (count,) = struct.unpack_from("<q", payload, offset)
        nbytes, available = numel * dtype.itemsize, len(payload) - offset - 8
        if count != numel:
            raise ValueError(f"tensor storage {key!r} claims {numel} elements, but its data header says {count}")
        if nbytes > available:
            raise ValueError(f"tensor storage {key!r} claims {numel} elements of {dtype.itemsize} bytes "
                             f"({nbytes} bytes), but only {available} bytes follow")
        offset += 8 + nbytes
        total += nbytes
    if offset != len(payload):
        raise ValueError(f"tensor storage payload has {len(payload) - offset} bytes after its data")
    return total


def _torch_refusal_reason(exc: Exception) -> str:
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    return " ".join(text.split())[:300]


def _load_storage(payload: object) -> _Storage:
    if not isinstance(payload, bytes):
        raise ValueError("tensor storage payload is not bytes")
    nbytes = _check_storage_payload(payload)
    _BUDGET.get().spend("tensor storages and arrays", size=nbytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise _Refused(
            "load a tensor storage payload",
            f"torch.load(weights_only=True) rejected it ({_torch_refusal_reason(exc)})",
        ) from None
    except AssertionError as exc:  # torch's legacy loader asserts on some corrupt payloads
        raise ValueError(f"tensor storage payload is corrupt: {exc}") from exc
    if isinstance(loaded, torch.TypedStorage):
        storage = _Storage(loaded._untyped_storage, loaded.dtype)
    elif isinstance(loaded, torch.UntypedStorage):
        storage = _Storage(loaded, torch.uint8)
    else:
        raise ValueError(f"tensor storage payload holds a {type(loaded).__name__}, not a storage")
    if storage.untyped.nbytes() != nbytes:
        raise ValueError(f"tensor storage loaded as {storage.untyped.nbytes()} bytes, its payload says {nbytes}")
    return storage


# --- Tensors: bounds-checked views of loaded storages -------------------------------------------


def _int_tuple(value: object, what: str) -> tuple[int, ...]:
    return int_tuple(value, f"tensor {what}")


def _require_empty(value: object, what: str) -> None:
    if value is not None and not (isinstance(value, dict) and not value):
        raise ValueError(f"tensors with {what} are not supported")


def _tensor_view(storage: object, offset: object, size: object, stride: object) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise ValueError("tensor rebuilt from something that is not a loaded storage")
    if type(offset) is not int or offset < 0:
        raise ValueError(f"tensor storage offset {offset!r} is not a non-negative int")
    shape, strides = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise ValueError("tensor size and stride have different lengths")
    capacity = storage.untyped.nbytes() // storage.dtype.itemsize
    if offset > capacity:
        raise ValueError(f"tensor storage offset {offset} runs past the end of its storage ({capacity} elements)")
    if 0 not in shape:
        last = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
        if last >= capacity:
            raise ValueError("tensor view runs past the end of its storage")
    if math.prod(shape) > capacity:  # only overlapping (e.g. stride 0) views could; copies would multiply
        raise ValueError(f"tensor of shape {shape} claims more elements than its storage holds ({capacity})")
    return torch.empty(0, dtype=storage.dtype).set_(storage.untyped, offset, shape, strides)


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _Tensor:
    if not isinstance(requires_grad, bool):
        raise ValueError("tensor requires_grad is not a bool")
    _require_empty(backward_hooks, "backward hooks")
    _require_empty(metadata, "extra tensor metadata")
    return _Tensor(_tensor_view(storage, storage_offset, size, stride))


def _rebuild_tensor(storage: object, storage_offset: object, size: object, stride: object) -> _Tensor:
    return _Tensor(_tensor_view(storage, storage_offset, size, stride))


def _rebuild_parameter(data: object, requires_grad: object, backward_hooks: object) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise ValueError("parameter rebuilt from something that is not a tensor")
    if not isinstance(requires_grad, bool):
        raise ValueError("parameter requires_grad is not a bool")
    _require_empty(backward_hooks, "backward hooks")
    return data


# --- The allow-list: numpy entries (safe_pickle) and the torch / NVlabs ones ---------------------


_ALLOWED: dict[tuple[str, str], object] = dict(
    [
        _allowed("torch_utils.persistence", "_reconstruct_persistent_obj", _reconstruct_persistent_obj),
        _allowed("torch.storage", "_load_from_bytes", _load_storage),
        _allowed("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor_v2),
        _allowed("torch._utils", "_rebuild_tensor", _rebuild_tensor),
        _allowed("torch._utils", "_rebuild_parameter", _rebuild_parameter),
        _allowed("collections", "OrderedDict", plain_dict),
        _allowed("builtins", "set", set_of(set)),
        _allowed("builtins", "frozenset", set_of(frozenset)),
        *numpy_allowed(),
        (("dnnlib.util", "EasyDict"), _EasyDict),
        *((("torch.nn.modules.container", n), t) for n, t in _TORCH_CONTAINERS.items()),
    ]
)


# --- Reading a file -----------------------------------------------------------------------------


def _read_pickle(path: str | os.PathLike[str]) -> object:
    return read_pickle(path, _ALLOWED, "NVlabs network pickle", _ALLOW_LIST_HINT)


def _read_snapshot(path: str | os.PathLike[str]) -> dict:
    data = _read_pickle(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {_describe(data)}, not the dict of an NVlabs snapshot")
    return data


def _network_keys(snapshot: dict) -> list[str]:
    return [k for k, v in snapshot.items() if isinstance(k, str) and isinstance(v, _PersistentObject)]


# --- Turning records into plain data ------------------------------------------------------------

_MAX_DEPTH = 64


def _describe(value: object) -> str:
    if isinstance(value, _PersistentObject):
        return f"persistent object {value.class_name}"
    if isinstance(value, _TorchModule):
        return f"torch.nn.{value.class_name}"
    if isinstance(value, _Inert):
        return value.label
    return type(value).__name__


def _plain(value: object, budget: _Budget, depth: int = 0) -> object:
    if depth > _MAX_DEPTH:
        raise ValueError("constructor arguments are nested too deeply (cyclic?)")
    budget.spend("constructor arguments", items=1)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if isinstance(value, dict):
        return {_plain(k, budget, depth + 1): _plain(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v, budget, depth + 1) for v in value]
        return items if isinstance(value, list) else type(value)(items)
    if isinstance(value, _Array) and value.array is not None:
        return value.array
    if isinstance(value, _Tensor):
        return value.tensor
    raise ValueError(f"unexpected {_describe(value)} in constructor arguments")


def _module_state(module: object, name: str) -> dict:
    if isinstance(module, _PersistentObject):
        return module.state
    if isinstance(module, _TorchModule) and getattr(module, "state", None) is not None:
        return module.state
    raise ValueError(f"child module {name!r} is a {_describe(module)}, not a module record")


def _state_field(state: dict, key: str, kind: type, prefix: str) -> dict | set:
    value = state.get(key, kind())
    if not isinstance(value, kind):
        raise ValueError(f"module {prefix or '<root>'!r}: {key} is not a {kind.__name__}")
    return value


def _class_of(module: object) -> str:
    if isinstance(module, _PersistentObject):
        return module.class_name
    return f"torch.nn.{getattr(module, 'class_name', type(module).__name__)}"


def _collect_state_dict(state: dict, prefix: str, out: dict[str, torch.Tensor], depth: int, budget: _Budget,
                        classes: dict[str, str]) -> None:
    # Same entries as torch's Module.state_dict(): parameters, persistent buffers, then children.
    if depth > _MAX_DEPTH:
        raise ValueError("module tree is nested too deeply (cyclic?)")
    budget.spend("state dict entries", items=1)
    skipped = _state_field(state, "_non_persistent_buffers_set", set, prefix)
    for field_name in ("_parameters", "_buffers"):
        for name, value in _state_field(state, field_name, dict, prefix).items():
            if value is None or (field_name == "_buffers" and name in skipped):
                continue
            if not isinstance(name, str) or not isinstance(value, _Tensor):
                raise ValueError(f"{prefix}{name}: expected a tensor, found {_describe(value)}")
            budget.spend("state dict tensors", size=value.tensor.numel(), items=1)
            out[prefix + name] = value.tensor
    for name, child in _state_field(state, "_modules", dict, prefix).items():
        if child is not None:
            classes[prefix + name] = _class_of(child)
            _collect_state_dict(_module_state(child, prefix + name), f"{prefix}{name}.", out, depth + 1, budget,
                                classes)


def _to_record(network: _PersistentObject, file_size: int) -> NetworkRecord:
    """Class name, constructor arguments and state dict; no more elements or entries than the file could hold."""
    state = network.state
    args, kwargs = state.get("_init_args", ()), state.get("_init_kwargs", {})
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
        raise ValueError(f"{network.class_name} has malformed _init_args/_init_kwargs")
    state_dict: dict[str, torch.Tensor] = {}
    classes: dict[str, str] = {"": network.class_name}
    _collect_state_dict(state, "", state_dict, 0, _Budget(file_size), classes)
    arguments = _Budget(0)
    return NetworkRecord(
        class_name=network.class_name,
        module_version=network.version,
        init_args=tuple(_plain(a, arguments) for a in args),
        init_kwargs=_plain(kwargs, arguments),
        state_dict=state_dict,
        module_classes=classes,
    )


# --- Public API ---------------------------------------------------------------------------------


def list_network_pickle_keys(path: str | os.PathLike[str]) -> list[str]:
    """Top-level keys of an NVlabs snapshot that hold a network (e.g. ``['G', 'D', 'G_ema']``)."""
    return _network_keys(_read_snapshot(path))


def _short_keys(keys: list, n: int = 8, width: int = 40) -> str:
    """At most n keys, each cut to `width` characters, and how many more: a file's keys are the file's
    to choose, and one error line must not echo megabytes of them."""
    shown = [short_repr(k)[:width] for k in keys[:n]]
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return "[" + ", ".join(shown) + "]" + more


def read_network_pickle(path: str | os.PathLike[str], key: str = "G_ema") -> NetworkRecord:
    """Read one network of an NVlabs snapshot pickle without running any of its code."""
    snapshot = _read_snapshot(path)
    network = snapshot.get(key)
    if network is None:
        raise ValueError(
            f"{path}: no network under key {key!r}; networks available: "
            f"{_short_keys(_network_keys(snapshot))} (top-level keys: {_short_keys(list(snapshot))})"
        )
    if not isinstance(network, _PersistentObject):
        raise ValueError(f"{path}: {key!r} holds a {_describe(network)}, not a persistent network")
    try:
        return _to_record(network, Path(path).stat().st_size)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: network {key!r} is malformed: {exc}") from exc
