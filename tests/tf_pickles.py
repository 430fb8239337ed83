"""Write NVIDIA TensorFlow (tflib) network pickles from plain data, without NVIDIA's or TensorFlow's code.

A tflib pickle is ``pickle.dump((G, D, Gs))`` of ``dnnlib.tflib.network.Network`` objects; each is
written as NEWOBJ of that global followed by BUILD with its state dict. Here a :class:`TFNet` holds
such a state and pickles the same way, and the numpy objects inside are written with the numpy 1.x
spelling (``numpy.core.multiarray._reconstruct`` / ``.scalar``, dtype flags 0 / 1: what the 2019
files hold) or the numpy 2.x one (``numpy._core.multiarray``, flags False / True) on request.

    write_tf_pickle(path, {"name": "Gs", "version": 4, "build_func_name": "G_main",
                           "static_kwargs": {...}, "variables": [("dlatent_avg", array), ...],
                           "components": {"mapping": {...}, "synthesis": {...}}})

0-d arrays among the variables are written as numpy scalars, the way ``tflib.run`` returns them.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

NETWORK_GLOBAL = ("dnnlib.tflib.network", "Network")
NUMPY_CORE_SPELLINGS = ("numpy.core", "numpy._core")
DEFAULT_MODULE_SRC = '''"""Stand-in for NVIDIA's network module (tests/tf_pickles.py; never executed)."""\n'''
_STATE_ORDER = ("version", "name", "static_kwargs", "components", "build_module_src", "build_func_name", "variables")


class TFNet:
    """Pickles as ``dnnlib.tflib.network.Network``: NEWOBJ with no arguments, then BUILD with `state`.

    For refusal tests: `state` None writes no BUILD; `args` / `kwargs` go to NEWOBJ / NEWOBJ_EX
    (protocol 4); `call` writes a REDUCE (a call of the class) instead of NEWOBJ.
    """

    def __init__(self, state: Any, args: tuple = (), kwargs: dict | None = None, call: bool = False) -> None:
        self.state = state
        self.args = args
        self.kwargs = kwargs
        self.call = call

    def __reduce_ex__(self, protocol: object) -> tuple:
        if self.call:
            return (TFNet, self.args, self.state)
        if self.kwargs is not None:
            return (copyreg.__newobj_ex__, (TFNet, self.args, self.kwargs), self.state)
        return (copyreg.__newobj__, (TFNet, *self.args), self.state)


class Reduce:
    """Pickles as ``func(*args)``, then BUILD with `state` unless it is None (crafted pickles)."""

    def __init__(self, func: Any, args: tuple = (), state: Any = None) -> None:
        self.func = func
        self.args = args
        self.state = state

    def __reduce__(self) -> tuple:
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


class Global:
    """A global written under a spelling of our choice (``module.name``), whatever it refers to here."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, *args: object) -> object:  # pickle wants a callable as a REDUCE function
        raise TypeError(f"{self.module}.{self.name} is a spelling for pickles, not something to call")

    def __reduce__(self) -> str:
        return self.name  # a str: pickle writes a global; our Pickler.save_global picks the spelling


class _Pickler(pickle._Pickler):  # the pure-Python pickler: its save_global can be overridden
    """Writes TFNet as dnnlib.tflib.network.Network and numpy objects with the requested spelling."""

    def __init__(self, file: io.BufferedIOBase, protocol: int, numpy_core: str, dtype_int_flags: bool) -> None:
        super().__init__(file, protocol=protocol)
        if numpy_core not in NUMPY_CORE_SPELLINGS:
            raise ValueError(f"numpy_core must be one of {NUMPY_CORE_SPELLINGS}, not {numpy_core!r}")
        self._reconstruct = Global(f"{numpy_core}.multiarray", "_reconstruct")
        self._scalar = Global(f"{numpy_core}.multiarray", "scalar")
        self._dtype_int_flags = dtype_int_flags

    def reducer_override(self, obj: object) -> object:
        if type(obj) is np.ndarray:
            if obj.ndim == 0:  # tflib.run gives 0-d variables back as numpy scalars
                return self.reducer_override(obj[()])
            _, args, state = obj.__reduce__()
            return (self._reconstruct, args, state)
        if isinstance(obj, np.generic):
            _, args = obj.__reduce__()
            return (self._scalar, args)
        if isinstance(obj, np.dtype):
            cls, (spec, align, copy), state = obj.__reduce__()
            if self._dtype_int_flags:
                align, copy = int(align), int(copy)
            return (cls, (spec, align, copy), state)
        return NotImplemented

    def save_global(self, obj: object, name: str | None = None) -> None:
        if obj is TFNet:
            spelling = NETWORK_GLOBAL
        elif isinstance(obj, Global):
            spelling = (obj.module, obj.name)
        else:
            return super().save_global(obj, name)
        module, qualname = spelling
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
        self.memoize(obj)


def dumps_tf(obj: object, protocol: int = 3, numpy_core: str = "numpy.core",
             dtype_int_flags: bool | None = None) -> bytes:
    """Pickle `obj` (TFNet objects and numpy values anywhere inside) the way tflib pickles are written.

    `dtype_int_flags` (default: True for the numpy 1.x ``numpy.core`` spelling) writes numpy.dtype's
    align / copy flags as 0 / 1, as numpy < 1.19 did.
    """
    if dtype_int_flags is None:
        dtype_int_flags = numpy_core == "numpy.core"
    buffer = io.BytesIO()
    _Pickler(buffer, protocol, numpy_core, dtype_int_flags).dump(obj)
    return buffer.getvalue()


def network(spec: Mapping[str, Any]) -> TFNet:
    """A TFNet from ``{"name", "version", "build_func_name", "static_kwargs", "variables", "components"}``.

    ``components`` values are specs too (or TFNet objects); ``build_module_src`` defaults to a stand-in
    string. The state is written in tflib's field order; keys beyond these pass through unchanged.
    """
    state: dict[str, Any] = {
        "version": spec.get("version", 4),
        "name": spec["name"],
        "static_kwargs": dict(spec.get("static_kwargs", {})),
        "components": {k: v if isinstance(v, TFNet) else network(v) for k, v in spec.get("components", {}).items()},
        "build_module_src": spec.get("build_module_src", DEFAULT_MODULE_SRC),
        "build_func_name": spec["build_func_name"],
        "variables": [(name, value) for name, value in spec.get("variables", [])],
    }
    state.update({k: v for k, v in spec.items() if k not in _STATE_ORDER})
    return TFNet(state)


def write_tf_pickle(
    path: str | os.PathLike[str],
    gs: Mapping[str, Any],
    protocol: int = 3,
    numpy_core: str = "numpy.core",
    g: Mapping[str, Any] | None = None,
    d: Mapping[str, Any] | None = None,
    dtype_int_flags: bool | None = None,
) -> None:
    """Write ``(G, D, Gs)`` as a tflib pickle; G and D default to copies of `gs` named "G" and "D"."""
    g = g if g is not None else {**gs, "name": "G"}
    d = d if d is not None else {**gs, "name": "D", "components": {}}
    data = dumps_tf((network(g), network(d), network(gs)), protocol, numpy_core, dtype_int_flags)
    with open(path, "wb") as f:
        f.write(data)


def as_spec(net: Any) -> dict[str, Any]:
    """A read :class:`~stylegan_sdk.importers.nvidia_tf.reader.TFNetwork` back as a spec for write_tf_pickle."""
    return {
        "name": net.name,
        "version": net.version,
        "build_func_name": net.build_func_name,
        "static_kwargs": dict(net.static_kwargs),
        "variables": list(net.variables.items()),
        "components": {k: as_spec(v) for k, v in net.components.items()},
    }
