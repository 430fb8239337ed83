"""Safe, allow-list reader for official NVlabs network pickles.

Official stylegan2-ada-pytorch / stylegan3 snapshots (``network-snapshot-*.pkl``) are plain
pickles whose networks are ``torch_utils.persistence`` objects: ``pickle.load`` on one imports
and *executes* the Python source embedded in the file. This module never does. It unpickles with
a restricted ``pickle.Unpickler`` whose ``find_class`` admits only the globals below, each mapped
to an inert stand-in of ours, and turns a network into a :class:`NetworkRecord` (class name,
constructor arguments, flattened ``state_dict``). No network class is ever instantiated.

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
* ``numpy.dtype`` -> a descriptor of a plain bool / int / uint / float / complex dtype.
* ``numpy.core.multiarray.scalar``, ``numpy._core.multiarray.scalar`` -> a Python number.
* ``numpy.core.multiarray._reconstruct``, ``numpy._core.multiarray._reconstruct`` with
  ``numpy.ndarray`` (accepted only as its first argument) -> a numeric ``numpy.ndarray``
  copied from the pickled bytes.

BUILD (``__setstate__``) only ever reaches objects of ours: the numpy dtype and array stand-ins
and the torch container records validate their state and store it as data; every other stand-in
refuses BUILD with UnsafePickleError, and plain dicts have no state to set.
"""

from __future__ import annotations

import errno
import io
import math
import os
import pickle
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "NetworkRecord",
    "UnsafePickleError",
    "list_network_pickle_keys",
    "read_network_pickle",
]


# --- Public error and result types --------------------------------------------------------------


class UnsafePickleError(ValueError):
    """The pickle asked for a global, persistent id or BUILD outside the allow-list."""


@dataclass
class NetworkRecord:
    """One network of an NVlabs pickle, as data; none of the pickled code was run."""

    class_name: str
    module_version: int | None
    init_args: tuple
    init_kwargs: dict
    state_dict: dict[str, torch.Tensor] = field(repr=False)


# --- Refusal signal raised inside the unpickler (re-raised as UnsafePickleError with the path) --


class _Refused(Exception):
    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"refused to {what}: {why}")
        self.what = what
        self.why = why


_ALLOW_LIST_HINT = (
    "not on the allow-list of stylegan_sdk.importers.nvlabs_pkl (NVlabs network pickles only "
    "need torch tensor/storage rebuilders, numpy scalars/arrays, OrderedDict, EasyDict, torch.nn "
    "containers and torch_utils.persistence records)"
)


# --- Inert stand-ins handed to pickle: no __dict__, BUILD refused unless overridden -------------


class _Inert:
    __slots__ = ()
    label = "object"

    def __setstate__(self, state: object) -> None:
        raise _Refused(f"apply pickled state (BUILD) to {self.label}", "it takes no state")


class _SafeCallable(_Inert):
    """An allow-listed global: calling it runs our own helper, never the original function."""

    __slots__ = ("label", "_fn")

    def __init__(self, label: str, fn: Callable[..., object]) -> None:
        self.label = label
        self._fn = fn

    def __call__(self, *args: object) -> object:
        return self._fn(*args)


class _Marker(_Inert):
    """A global that is only valid as an argument (``numpy.ndarray``)."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label


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


# --- Storages: parsed by torch's weights_only loader, never by torch.storage._load_from_bytes --


def _torch_refusal_reason(exc: Exception) -> str:
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    return " ".join(text.split())[:300]


def _load_storage(payload: object) -> _Storage:
    if not isinstance(payload, bytes):
        raise ValueError("tensor storage payload is not bytes")
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
        return _Storage(loaded._untyped_storage, loaded.dtype)
    if isinstance(loaded, torch.UntypedStorage):
        return _Storage(loaded, torch.uint8)
    raise ValueError(f"tensor storage payload holds a {type(loaded).__name__}, not a storage")


# --- Tensors: bounds-checked views of loaded storages -------------------------------------------


def _int_tuple(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"tensor {what} is not a tuple of non-negative ints: {value!r}")
    return tuple(value)


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
    if 0 not in shape:
        last = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
        if last >= capacity:
            raise ValueError("tensor view runs past the end of its storage")
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


# --- numpy: plain numeric dtypes, scalars and arrays only ---------------------------------------

_NUMERIC_DTYPE = re.compile(r"[biufc][0-9]{1,2}")
_BYTE_ORDERS = ("<", ">", "|", "=")


class _Dtype(_Inert):
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
            raise ValueError(f"numpy dtype state {state!r} is not that of a plain numeric dtype")
        self.byteorder = state[1]

    def resolve(self) -> np.dtype:
        return np.dtype(self.spec).newbyteorder(self.byteorder)


def _numpy_dtype(spec: object, align: object = False, copy: object = False) -> _Dtype:
    if not isinstance(spec, str) or not _NUMERIC_DTYPE.fullmatch(spec):
        raise ValueError(f"numpy dtype {spec!r} is not a plain numeric dtype")
    if not isinstance(align, bool) or not isinstance(copy, bool):
        raise ValueError("numpy dtype align/copy flags are not bools")
    np.dtype(spec)  # raises TypeError for an unknown width such as 'f3'
    return _Dtype(spec)


def _numpy_scalar(dtype: object, data: object = None) -> bool | int | float | complex:
    if not isinstance(dtype, _Dtype) or not isinstance(data, bytes):
        raise ValueError("numpy scalar is not (numeric dtype, bytes)")
    resolved = dtype.resolve()
    if len(data) != resolved.itemsize:
        raise ValueError("numpy scalar bytes do not match its dtype")
    return np.frombuffer(data, dtype=resolved, count=1)[0].item()


class _Array(_Inert):
    __slots__ = ("array",)
    label = "a numpy array"

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        # (1, shape, dtype, is_fortran, raw bytes) of a numeric ndarray
        if self.array is not None:
            raise _Refused("apply pickled state (BUILD) twice to a numpy array", "")
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise ValueError("numpy array state is not (1, shape, dtype, is_fortran, bytes)")
        _, shape, dtype, is_fortran, raw = state
        shape = _int_tuple(shape, "shape")
        if not isinstance(dtype, _Dtype) or not isinstance(is_fortran, bool):
            raise ValueError("numpy array state has a non-numeric dtype or bad order flag")
        resolved = dtype.resolve()
        if not isinstance(raw, bytes) or len(raw) != math.prod(shape) * resolved.itemsize:
            raise ValueError("numpy array bytes do not match its shape and dtype")
        flat = np.frombuffer(raw, dtype=resolved)
        self.array = flat.reshape(shape, order="F" if is_fortran else "C").copy()


_NDARRAY = _Marker("numpy.ndarray")


def _numpy_reconstruct(subtype: object, shape: object, dtype_code: object) -> _Array:
    if subtype is not _NDARRAY:
        raise ValueError("numpy _reconstruct is only supported for numpy.ndarray")
    return _Array()


def _plain_dict(*args: object) -> dict:
    return dict(*args)


def _set_of(kind: type[set] | type[frozenset]) -> Callable[..., set | frozenset]:
    def build(items: object = ()) -> set | frozenset:
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"pickled {kind.__name__} is not built from a list")
        return kind(items)

    return build


# --- The allow-list and the restricted unpickler ------------------------------------------------


def _allowed(module: str, name: str, fn: Callable[..., object]) -> tuple[tuple[str, str], object]:
    return (module, name), _SafeCallable(f"{module}.{name}", fn)


_ALLOWED: dict[tuple[str, str], object] = dict(
    [
        _allowed("torch_utils.persistence", "_reconstruct_persistent_obj", _reconstruct_persistent_obj),
        _allowed("torch.storage", "_load_from_bytes", _load_storage),
        _allowed("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor_v2),
        _allowed("torch._utils", "_rebuild_tensor", _rebuild_tensor),
        _allowed("torch._utils", "_rebuild_parameter", _rebuild_parameter),
        _allowed("collections", "OrderedDict", _plain_dict),
        _allowed("builtins", "set", _set_of(set)),
        _allowed("builtins", "frozenset", _set_of(frozenset)),
        _allowed("numpy", "dtype", _numpy_dtype),
        _allowed("numpy.core.multiarray", "scalar", _numpy_scalar),
        _allowed("numpy._core.multiarray", "scalar", _numpy_scalar),
        _allowed("numpy.core.multiarray", "_reconstruct", _numpy_reconstruct),
        _allowed("numpy._core.multiarray", "_reconstruct", _numpy_reconstruct),
        (("numpy", "ndarray"), _NDARRAY),
        (("dnnlib.util", "EasyDict"), _EasyDict),
        *((("torch.nn.modules.container", n), t) for n, t in _TORCH_CONTAINERS.items()),
    ]
)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise _Refused(f"load '{module}.{name}'", _ALLOW_LIST_HINT)
        return target

    def persistent_load(self, pid: object) -> object:
        raise _Refused(
            "resolve a persistent id (PERSID/BINPERSID opcode)",
            "NVlabs network pickles never use persistent ids",
        )


# --- Reading a file -----------------------------------------------------------------------------

# What a corrupt or truncated pickle makes the unpickler (or our validators) raise.
_CORRUPT_ERRORS = (
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


def _check_header(head: bytes, file: Path) -> None:
    if not head:
        raise ValueError(f"{file} is empty, not a network pickle")
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= pickle.HIGHEST_PROTOCOL:
        hint = " (it looks like a zip archive, e.g. a torch.save checkpoint)" if head == b"PK" else ""
        raise ValueError(f"{file} is not a pickle of protocol 2 or later{hint}")


def _read_pickle(path: str | os.PathLike[str]) -> object:
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(errno.ENOENT, "network pickle not found", str(file))
    if not file.is_file():
        raise ValueError(f"{file} is not a file")
    with file.open("rb") as stream:
        _check_header(stream.read(2), file)
        stream.seek(0)
        try:
            return _RestrictedUnpickler(stream).load()
        except _Refused as exc:
            raise UnsafePickleError(f"refused to {exc.what} from {file}: {exc.why}") from None
        except _CORRUPT_ERRORS as exc:
            raise ValueError(
                f"{file} is not a readable NVlabs network pickle (corrupt or truncated?): {type(exc).__name__}: {exc}"
            ) from exc


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


def _plain(value: object, depth: int = 0) -> object:
    if depth > _MAX_DEPTH:
        raise ValueError("constructor arguments are nested too deeply (cyclic?)")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if isinstance(value, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v, depth + 1) for v in value]
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


def _collect_state_dict(state: dict, prefix: str, out: dict[str, torch.Tensor], depth: int) -> None:
    # Same entries as torch's Module.state_dict(): parameters, persistent buffers, then children.
    if depth > _MAX_DEPTH:
        raise ValueError("module tree is nested too deeply (cyclic?)")
    skipped = _state_field(state, "_non_persistent_buffers_set", set, prefix)
    for field_name in ("_parameters", "_buffers"):
        for name, value in _state_field(state, field_name, dict, prefix).items():
            if value is None or (field_name == "_buffers" and name in skipped):
                continue
            if not isinstance(name, str) or not isinstance(value, _Tensor):
                raise ValueError(f"{prefix}{name}: expected a tensor, found {_describe(value)}")
            out[prefix + name] = value.tensor
    for name, child in _state_field(state, "_modules", dict, prefix).items():
        if child is not None:
            _collect_state_dict(_module_state(child, prefix + name), f"{prefix}{name}.", out, depth + 1)


def _to_record(network: _PersistentObject) -> NetworkRecord:
    state = network.state
    args, kwargs = state.get("_init_args", ()), state.get("_init_kwargs", {})
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
        raise ValueError(f"{network.class_name} has malformed _init_args/_init_kwargs")
    state_dict: dict[str, torch.Tensor] = {}
    _collect_state_dict(state, "", state_dict, 0)
    return NetworkRecord(
        class_name=network.class_name,
        module_version=network.version,
        init_args=tuple(_plain(a) for a in args),
        init_kwargs=_plain(kwargs),
        state_dict=state_dict,
    )


# --- Public API ---------------------------------------------------------------------------------


def list_network_pickle_keys(path: str | os.PathLike[str]) -> list[str]:
    """Top-level keys of an NVlabs snapshot that hold a network (e.g. ``['G', 'D', 'G_ema']``)."""
    return _network_keys(_read_snapshot(path))


def read_network_pickle(path: str | os.PathLike[str], key: str = "G_ema") -> NetworkRecord:
    """Read one network of an NVlabs snapshot pickle without running any of its code."""
    snapshot = _read_snapshot(path)
    network = snapshot.get(key)
    if network is None:
        raise ValueError(
            f"{path}: no network under key {key!r}; networks available: "
            f"{_network_keys(snapshot)} (top-level keys: {list(snapshot)})"
        )
    if not isinstance(network, _PersistentObject):
        raise ValueError(f"{path}: {key!r} holds a {_describe(network)}, not a persistent network")
    try:
        return _to_record(network)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: network {key!r} is malformed: {exc}") from exc
