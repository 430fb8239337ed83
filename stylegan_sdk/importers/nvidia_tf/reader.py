"""Safe, allow-list reader for NVIDIA's TensorFlow StyleGAN / StyleGAN2 network pickles.

NVIDIA's TensorFlow releases (``karras2019stylegan-*.pkl``, ``stylegan2-*-config-*.pkl`` and the
snapshots of their training loops) are ``pickle.dump((G, D, Gs))`` of ``dnnlib.tflib.network.Network``
objects. Each network's state holds NVIDIA's module source (``build_module_src``), which
``Network.__setstate__`` *executes* to rebuild the TensorFlow graph. This module never does: it
unpickles with a restricted ``pickle.Unpickler`` whose ``find_class`` admits only the globals below,
each mapped to an inert stand-in of ours, and returns ``Gs`` (element 2 of the tuple, or a file's lone
network) as a :class:`TFNetwork` of plain data: names, build function names, ``static_kwargs``,
variables as numpy arrays and sub-networks. The module source is only hashed (sha256); it is never
compiled, executed or imported. Neither TensorFlow nor torch is needed.

Allow-list (any other global, any persistent id, raises :class:`UnsafePickleError`):

* ``dnnlib.tflib.network.Network`` -> an inert network record: created by NEWOBJ with no
  arguments only, then given its state by exactly one BUILD with a dict (validated field by field
  once the file is read); any call with arguments, any second BUILD is refused.
* ``numpy.dtype`` -> a descriptor of a plain numeric dtype (its align / copy flags as bools, or as
  0 / 1 the way numpy < 1.19 wrote them).
* ``numpy.core.multiarray.scalar``, ``numpy._core.multiarray.scalar`` (numpy 1.x / 2.x spelling)
  -> the scalar as a 0-d array of its dtype.
* ``numpy.core.multiarray._reconstruct``, ``numpy._core.multiarray._reconstruct`` with
  ``numpy.ndarray`` (accepted only as its first argument) -> a numeric array copied from the
  pickled bytes.

BUILD (``__setstate__``) only ever reaches objects of ours: the network records, the numpy dtype
and the array stand-ins validate their state and store it as data; every other stand-in refuses it
with UnsafePickleError, and plain containers have no state to set.

Sizes are checked against the bytes the file really has before anything is allocated from them:
every length an opcode claims (bytes, strings, frames, memo slots) must fit in what is left of the
file, an array's bytes must be exactly its shape times its item size, and the variables (and
entries) a file turns into may not add up to more than the file could hold, so one array or
sub-network shared through the pickle memo cannot be multiplied.

Validation, each failure a one-line ValueError naming the file and the problem: the top level is a
``(G, D, Gs)`` tuple of networks or a single network; a network's state has exactly the fields
``version`` (an int 2..4), ``name``, ``static_kwargs``, ``components`` (optional in version 2),
``build_module_src``, ``build_func_name`` and ``variables``, each of its type; variable names are
relative paths of ``[A-Za-z0-9_.-]`` segments (no empty, ``.`` or ``..`` segment), unique, and their
values float16 / float32 / float64 arrays or numbers (kept in the stored dtype); ``static_kwargs``
hold plain values (None, bool, int, float, str and lists / tuples / dicts of them), at most 10000
of them nested at most 8 deep; components nest at most 4 deep and never contain themselves.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..safe_pickle import (
    MAX_ITEMS,
    Array,
    Budget,
    Inert,
    Refused,
    Scalar,
    UnsafePickleError,
    numpy_allowed,
    numpy_scalar_array,
    read_pickle,
    short_repr,
)

__all__ = ["TFNetwork", "UnsafePickleError", "is_tf_pickle", "read_tf_pickle"]

_WHAT = "NVIDIA TensorFlow network pickle"
_NETWORK = "dnnlib.tflib.network.Network"
_ALLOW_LIST_HINT = (
    "not on the allow-list of stylegan_sdk.importers.nvidia_tf.reader (NVIDIA TensorFlow network pickles only "
    "need dnnlib.tflib.network.Network and numpy dtypes, scalars and arrays)"
)
_FIELDS = ("version", "name", "static_kwargs", "components", "build_module_src", "build_func_name", "variables")
_VERSIONS = (2, 3, 4)
_MAX_COMPONENT_DEPTH = 4   # Gs -> synthesis is 1; official networks never go past 1
_MAX_KWARGS_DEPTH = 8      # official static_kwargs are flat
_MAX_KWARGS_ITEMS = 10_000  # per network (official: about 10); all networks together stay within MAX_ITEMS
_MAX_NAME = 1024
_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_./-]+")
_NETWORK_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # tflib's own rule for network names (non-empty)
_FLOAT_DTYPES = ("float16", "float32", "float64")


# --- Public result type -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TFNetwork:
    """One ``dnnlib.tflib.network.Network`` of a TensorFlow pickle, as data; none of its code was run.

    ``eq=False``: networks compare by identity (their arrays have no single truth value).
    """

    name: str                                   # "Gs", "G_synthesis", "G_mapping", ...
    version: int                                # tflib Network pickle version (2..4)
    build_func_name: str                        # "G_style", "G_main", "G_synthesis_stylegan2", "G_mapping", ...
    static_kwargs: dict[str, Any]               # plain values only
    variables: dict[str, np.ndarray] = field(repr=False)  # own variables, file order; scalars as 0-d arrays
    components: dict[str, TFNetwork]            # "mapping", "synthesis" for G / Gs; {} for sub-networks
    module_src_sha256: str                      # sha256 of build_module_src (recorded, never run)

    def all_variables(self) -> dict[str, np.ndarray]:
        """Own variables, then each component's as ``"component/name"``, recursively.

        The flat view of NVIDIA's legacy converters: ``"dlatent_avg"``, ``"mapping/Dense0/weight"``,
        ``"synthesis/4x4/Conv/weight"``.
        """
        out = dict(self.variables)
        for key, component in self.components.items():
            for name, value in component.all_variables().items():
                out[f"{key}/{name}"] = value
        return out


# --- Inert stand-in for dnnlib.tflib.network.Network --------------------------------------------

_NO_STATE = object()
_HOW_NETWORKS_ARE_MADE = "NVIDIA's pickles create it by NEWOBJ with no arguments, then BUILD its state"


class _Network(Inert):
    """``dnnlib.tflib.network.Network`` while loading: NEWOBJ without arguments, then one BUILD."""

    __slots__ = ("state",)
    label = _NETWORK

    def __new__(cls, *args: object, **kwargs: object) -> _Network:
        if args or kwargs:
            raise Refused(f"create {_NETWORK} with arguments", _HOW_NETWORKS_ARE_MADE)
        obj = super().__new__(cls)
        obj.state = None
        return obj

    def __init__(self, *args: object, **kwargs: object) -> None:  # only a REDUCE (a call) gets here
        raise Refused(f"call {_NETWORK}", _HOW_NETWORKS_ARE_MADE)

    def __setstate__(self, state: object = _NO_STATE) -> None:
        if state is _NO_STATE or not isinstance(self, _Network):  # BUILD on the class itself
            raise Refused(f"apply pickled state (BUILD) to the class {_NETWORK}", "only its instances take state")
        if self.state is not None:
            raise Refused(f"apply pickled state (BUILD) twice to a {_NETWORK}", "it takes its state once")
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise ValueError(f"{_NETWORK} state is not a dict of fields")
        self.state = state


def _scalar(dtype: object, data: object = None) -> Scalar:
    return Scalar(numpy_scalar_array(dtype, data))


_ALLOWED: dict[tuple[str, str], object] = dict(
    [
        (("dnnlib.tflib.network", "Network"), _Network),
        *numpy_allowed(scalar=_scalar),
    ]
)


# --- Validation: stand-ins -> TFNetwork ---------------------------------------------------------


def _describe(value: object) -> str:
    if isinstance(value, Inert):
        return value.label if value.label.startswith("a ") else f"a {value.label}"
    if isinstance(value, (tuple, list, dict)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _plain(value: object, where: str, budgets: tuple[Budget, ...], depth: int = 0) -> object:
    """A static_kwargs value as plain data (numpy scalars become Python numbers); ValueError otherwise."""
    if depth > _MAX_KWARGS_DEPTH:
        raise ValueError(f"static_kwargs are nested deeper than {_MAX_KWARGS_DEPTH} levels (at {where})")
    for budget in budgets:
        budget.spend("static_kwargs", items=1)
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, Scalar) and value.array.dtype.kind in "biuf":
        return value.array.item()
    # Containers are exact list / tuple / dict here: the allow-list builds no subclass of them.
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]", budgets, depth + 1) for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"static_kwargs key {short_repr(k)} at {where} is not a str")
            out[k] = _plain(v, f"{where}[{short_repr(k)}]", budgets, depth + 1)
        return out
    raise ValueError(f"static_kwargs value {where} is {_describe(value)}, not a plain value "
                     f"(None, bool, int, float, str, or a list / tuple / dict of them)")


def _check_path(name: object, what: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(name, str):
        raise ValueError(f"{what} {short_repr(name)} is {_describe(name)}, not a str")
    if len(name) > _MAX_NAME or not pattern.fullmatch(name) or any(p in ("", ".", "..") for p in name.split("/")):
        raise ValueError(f"{what} {short_repr(name)} is not a relative name of [A-Za-z0-9_.-] segments "
                         f"(no empty, '.' or '..' segment)")
    return name


def _variable(name: str, value: object, budget: Budget, seen: set[int]) -> np.ndarray:
    if isinstance(value, Array):
        array = value.array
        if array is None:
            raise ValueError(f"variable {name!r} is a numpy array that never received its data (no BUILD)")
    elif isinstance(value, Scalar):
        array = value.array
    else:
        raise ValueError(f"variable {name!r} is {_describe(value)}, not a numpy array or number")
    if array.dtype.kind != "f" or array.dtype.itemsize not in (2, 4, 8):
        raise ValueError(f"variable {name!r} has dtype {array.dtype}; expected {' / '.join(_FLOAT_DTYPES)}")
    budget.spend("variables", size=array.nbytes, items=1)
    if id(array) in seen:  # the same pickled array under two names: each gets its own copy
        return array.copy()
    seen.add(id(array))
    return array


def _variables(raw: object, budget: Budget, seen: set[int]) -> dict[str, np.ndarray]:
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"variables are {_describe(raw)}, not a list of (name, value) pairs")
    out: dict[str, np.ndarray] = {}
    for i, pair in enumerate(raw):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"variable {i} is {_describe(pair)}, not a (name, value) pair")
        name = _check_path(pair[0], "variable name", _VARIABLE_NAME)
        if name in out:
            raise ValueError(f"variable {name!r} appears twice")
        out[name] = _variable(name, pair[1], budget, seen)
    return out


def _field(state: dict, key: str, kind: type) -> Any:
    value = state[key]
    if not isinstance(value, kind):
        raise ValueError(f"field {key!r} is {_describe(value)}, not a {kind.__name__}")
    return value


def _to_network(net: object, where: str, depth: int, ancestors: tuple[int, ...], budget: Budget,
                seen: set[int]) -> TFNetwork:
    if not isinstance(net, _Network):
        raise ValueError(f"network {where}: it is {_describe(net)}, not a {_NETWORK}")
    if id(net) in ancestors:
        raise ValueError(f"network {where}: its components are cyclic (it contains itself)")
    if depth > _MAX_COMPONENT_DEPTH:
        raise ValueError(f"network {where}: components are nested deeper than {_MAX_COMPONENT_DEPTH} levels")
    state = net.state
    if state is None:
        raise ValueError(f"network {where}: it never received its state (no BUILD)")
    budget.spend("networks", items=1)
    try:
        version = state.get("version")
        optional = ("components",) if type(version) is int and version == 2 else ()  # tflib: state.get(...)
        missing = [k for k in _FIELDS if k not in state and k not in optional]
        extra = sorted(k for k in state if k not in _FIELDS)
        if missing:
            raise ValueError(f"its state lacks the field(s) {', '.join(missing)}")
        if extra:
            raise ValueError(f"its state has unexpected field(s) {', '.join(short_repr(k) for k in extra[:5])}"
                             + (f" and {len(extra) - 5} more" if len(extra) > 5 else ""))
        if type(version) is not int or version not in _VERSIONS:
            raise ValueError(f"version {short_repr(version)} is not a tflib Network pickle version "
                             f"({', '.join(map(str, _VERSIONS))})")
        name = _field(state, "name", str)
        if len(name) > _MAX_NAME or not _NETWORK_NAME.fullmatch(name):
            raise ValueError(f"name {short_repr(name)} is not a tflib network name ([A-Za-z0-9_.-]+)")
        func = _field(state, "build_func_name", str)
        if not func.isidentifier() or len(func) > _MAX_NAME:
            raise ValueError(f"build_func_name {short_repr(func)} is not a Python identifier")
        src = _field(state, "build_module_src", str)
        kwargs = _field(state, "static_kwargs", dict)
        static_kwargs = _plain(kwargs, "static_kwargs", (Budget(0, items=_MAX_KWARGS_ITEMS), budget))
        variables = _variables(state["variables"], budget, seen)
        raw_components = state.get("components", {})
        if type(raw_components) is not dict:
            raise ValueError(f"field 'components' is {_describe(raw_components)}, not a dict")
    except ValueError as exc:
        raise ValueError(f"network {where}: {exc}") from None
    components: dict[str, TFNetwork] = {}
    for key, child in raw_components.items():
        try:
            _check_path(key, "component key", _NETWORK_NAME)
        except ValueError as exc:
            raise ValueError(f"network {where}: {exc}") from None
        components[key] = _to_network(child, f"{where}/{key}", depth + 1, (*ancestors, id(net)), budget, seen)
    network = TFNetwork(
        name=name,
        version=version,
        build_func_name=func,
        static_kwargs=static_kwargs,  # type: ignore[arg-type]
        variables=variables,
        components=components,
        module_src_sha256=hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest(),
    )
    flat = network.all_variables()
    if len(flat) != len(variables) + sum(len(c.all_variables()) for c in components.values()):
        names = set(variables)
        clash = next(f"{k}/{n}" for k, c in components.items() for n in c.all_variables() if f"{k}/{n}" in names)
        raise ValueError(f"network {where}: variable {clash!r} is both its own and a component's")
    return network


# --- Public API ---------------------------------------------------------------------------------


def read_tf_pickle(path: str | os.PathLike[str]) -> TFNetwork:
    """``Gs`` of an NVIDIA TensorFlow ``(G, D, Gs)`` pickle (or the file's lone network), as data.

    Nothing of the file's code runs. FileNotFoundError if the file is missing; UnsafePickleError
    (a ValueError) for anything outside the allow-list; ValueError for anything else that is wrong.
    """
    file = Path(path)
    data = read_pickle(file, _ALLOWED, _WHAT, _ALLOW_LIST_HINT, data_label="numpy arrays")
    if isinstance(data, _Network):
        gs: object = data
    elif isinstance(data, tuple) and len(data) == 3:
        for i, item in enumerate(data):
            if not isinstance(item, _Network):
                raise ValueError(f"{file}: element {i} of the top-level (G, D, Gs) tuple is {_describe(item)}, "
                                 f"not a {_NETWORK}")
        gs = data[2]
    else:
        raise ValueError(f"{file} holds {_describe(data)}, not a (G, D, Gs) tuple of {_NETWORK} "
                         f"(nor a single one): not an {_WHAT}")
    try:
        return _to_network(gs, "Gs", 0, (), Budget(file.stat().st_size, items=MAX_ITEMS), set())
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from None


def is_tf_pickle(path: str | os.PathLike[str]) -> bool:
    """Cheap sniff: a pickle header (protocol 2+) and ``dnnlib.tflib.network`` in the first 4 KiB."""
    try:
        file = Path(path)
        if not file.is_file():
            return False
        with file.open("rb") as stream:
            head = stream.read(4096)
    except OSError:
        return False
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL
            and b"dnnlib.tflib.network" in head)
