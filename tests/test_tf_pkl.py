"""Tests of the allow-list reader for NVIDIA TensorFlow (tflib) StyleGAN / StyleGAN2 pickles."""

from __future__ import annotations

import builtins
import hashlib
import json
import pickletools
import random
import re
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import run_without_torch
from pickle_crafting import call_pickle, inst_call, stack_global_call
from tf_pickles import Global, Reduce, TFNet, as_spec, dumps_tf, network, write_tf_pickle

from stylegan_sdk.importers.nvidia_tf import reader as tf_pkl
from stylegan_sdk.importers.nvidia_tf.reader import TFNetwork, UnsafePickleError, is_tf_pickle, read_tf_pickle

FIXTURES = Path(__file__).parent / "fixtures" / "nvidia-tf"
CASES = ["sg1_tf_32", "sg2_tf_32_configf"]
SYNTHESIS_FUNC = {"sg1_tf_32": "G_synthesis", "sg2_tf_32_configf": "G_synthesis_stylegan2"}
NOT_READABLE = "not a readable NVIDIA TensorFlow network pickle"


def _pkl(case: str) -> Path:
    return FIXTURES / case / "network.pkl"


def _write(tmp_path: Path, data: bytes, name: str = "crafted.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _spec(variables: list | None = None, **fields: object) -> dict:
    """A small Gs with mapping and synthesis components."""
    rnd = np.random.RandomState(0)
    synthesis = {"name": "G_synthesis", "version": 4, "build_func_name": "G_synthesis_stylegan2",
                 "static_kwargs": {"resolution": 8}, "components": {},
                 "variables": [("4x4/Const/const", rnd.randn(1, 4, 4, 4).astype(np.float32)),
                               ("4x4/Conv/noise_strength", np.float32(0.25))]}
    mapping = {"name": "G_mapping", "version": 4, "build_func_name": "G_mapping", "static_kwargs": {},
               "components": {}, "variables": [("Dense0/weight", rnd.randn(4, 4).astype(np.float32))]}
    gs = {"name": "Gs", "version": 4, "build_func_name": "G_main",
          "static_kwargs": {"resolution": 8, "truncation_psi": 0.5, "architecture": "skip", "sizes": [1, (2, 3)]},
          "components": {"synthesis": synthesis, "mapping": mapping},
          "variables": variables if variables is not None else [("lod", np.float32(0.0)),
                                                                ("dlatent_avg", rnd.randn(4).astype(np.float32))]}
    gs.update(fields)
    return gs


def _state(spec: dict) -> dict:
    return network(spec).state


def _raises(path: Path, message: str, kind: type[Exception] = ValueError) -> ValueError:
    with pytest.raises(kind, match=message) as info:
        read_tf_pickle(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text, text
    return info.value


# --- (1) The reference fixtures -----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_fixture_gs_matches_config_and_reference(case: str) -> None:
    config = json.loads((FIXTURES / case / "config.json").read_text())
    reference = np.load(FIXTURES / case / "reference.npz")
    gs = read_tf_pickle(_pkl(case))

    assert isinstance(gs, TFNetwork)
    assert (gs.name, gs.version, gs.build_func_name) == ("Gs", 3 if case == "sg1_tf_32" else 4,
                                                         config["build_func"].rsplit(".", 1)[1])
    assert list(gs.components) == ["synthesis", "mapping"]
    synthesis, mapping = gs.components["synthesis"], gs.components["mapping"]
    assert (synthesis.name, synthesis.build_func_name) == ("G_synthesis", SYNTHESIS_FUNC[case])
    assert (mapping.name, mapping.build_func_name) == ("G_mapping", "G_mapping")
    assert synthesis.components == {} and mapping.components == {}
    for net in (gs, synthesis, mapping):
        assert type(net.static_kwargs) is dict
        assert net.static_kwargs == config["Gs_static_kwargs"][net.name], net.name
        assert net.version == gs.version
        assert re.fullmatch(r"[0-9a-f]{64}", net.module_src_sha256)
    assert synthesis.module_src_sha256 == mapping.module_src_sha256 == gs.module_src_sha256

    # config.json names component variables by network name ("G_synthesis/..."), all_variables by key.
    by_name = {c.name: key for key, c in gs.components.items()}
    expected = {re.sub(r"^(G_synthesis|G_mapping)/", lambda m: by_name[m.group(1)] + "/", k): v
                for k, v in config["Gs_vars"].items()}
    flat = gs.all_variables()
    assert list(flat) == list(expected)
    assert {k: list(v.shape) for k, v in flat.items()} == expected
    assert all(type(v) is np.ndarray and v.dtype == np.float32 for v in flat.values())
    assert list(gs.variables) == ["lod", "dlatent_avg"]
    assert "synthesis/4x4/Conv/weight" in flat and "mapping/Dense0/weight" in flat
    np.testing.assert_array_equal(flat["dlatent_avg"], reference["dlatent_avg"])  # G and D would differ
    assert flat["lod"].shape == () and flat["lod"] == 0
    assert flat["mapping/Dense1/bias"] is mapping.variables["Dense1/bias"]


def test_fixture_holds_the_module_source_we_hash_but_never_run() -> None:
    data = _pkl("sg2_tf_32_configf").read_bytes()
    assert b"Network architectures used in the StyleGAN2 paper" in data
    assert read_tf_pickle(_pkl("sg2_tf_32_configf")).module_src_sha256 != hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("case", CASES)
def test_is_tf_pickle(case: str, tmp_path: Path) -> None:
    assert is_tf_pickle(_pkl(case)) and is_tf_pickle(str(_pkl(case)))
    write_tf_pickle(tmp_path / "p3.pkl", _spec())
    assert is_tf_pickle(tmp_path / "p3.pkl")
    nvlabs = Path(__file__).parent / "fixtures" / "nvlabs-stylegan2" / "sg2_skip_32" / "network-snapshot.pkl"
    assert not is_tf_pickle(nvlabs)
    for name, data in {"empty": b"", "text": b"dnnlib.tflib.network", "proto1": b"(dnnlib.tflib.network"}.items():
        assert not is_tf_pickle(_write(tmp_path, data, name))
    assert not is_tf_pickle(tmp_path / "missing.pkl")
    assert not is_tf_pickle(tmp_path)


def test_docstring_lists_exactly_the_allow_list() -> None:
    doc = tf_pkl.__doc__ or ""
    section = doc.split("Allow-list", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"``([A-Za-z_][\w.]*\.\w+)``", section))
    assert listed == {f"{module}.{name}" for module, name in tf_pkl._ALLOWED}


# --- (2) Which network, which spelling ----------------------------------------------------------


def test_gs_is_element_two(tmp_path: Path) -> None:
    gs = _spec()
    g = _spec(variables=[("lod", np.float32(0)), ("dlatent_avg", np.full(4, 1.0, np.float32))], name="G")
    d = _spec(variables=[("lod", np.float32(0)), ("dlatent_avg", np.full(4, 2.0, np.float32))], name="D")
    path = tmp_path / "gdgs.pkl"
    write_tf_pickle(path, gs, g=g, d=d)
    net = read_tf_pickle(path)
    assert net.name == "Gs"
    np.testing.assert_array_equal(net.variables["dlatent_avg"], dict(gs["variables"])["dlatent_avg"])


def test_a_lone_network_is_gs(tmp_path: Path) -> None:
    path = _write(tmp_path, dumps_tf(network(_spec(name="Gs_only"))))
    net = read_tf_pickle(path)
    assert net.name == "Gs_only" and list(net.components) == ["synthesis", "mapping"]


def _first_dtype_flags(data: bytes) -> list[object]:
    """The two arguments pickled right after the first 'f4' (numpy.dtype's align / copy flags)."""
    ops = list(pickletools.genops(data))
    i = next(i for i, (_, arg, _) in enumerate(ops) if arg == "f4")
    return [op.name for op, _, _ in ops[i + 1:i + 4] if op.name not in ("BINPUT", "MEMOIZE")][:2]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("protocol", "numpy_core"), [(3, "numpy.core"), (4, "numpy.core"), (4, "numpy._core")])
def test_writer_round_trips_the_fixture(case: str, protocol: int, numpy_core: str, tmp_path: Path) -> None:
    """Read the fixture, write it with the 2019 spelling (protocol 3, numpy.core, 0/1 dtype flags), read it back."""
    original = read_tf_pickle(_pkl(case))
    path = tmp_path / "rewritten.pkl"
    write_tf_pickle(path, as_spec(original), protocol=protocol, numpy_core=numpy_core)
    data = path.read_bytes()
    assert data[:2] == bytes([0x80, protocol])
    other = "numpy._core" if numpy_core == "numpy.core" else "numpy.core."
    assert f"{numpy_core}.multiarray".encode() in data and other.encode() not in data
    if protocol == 3:
        assert b"cnumpy.core.multiarray\n_reconstruct\n" in data and b"cnumpy.core.multiarray\nscalar\n" in data
        assert b"cdnnlib.tflib.network\nNetwork\n" in data
    assert _first_dtype_flags(data) == (["BININT1", "BININT1"] if numpy_core == "numpy.core" else
                                        ["NEWFALSE", "NEWTRUE"])

    again = read_tf_pickle(path)

    def same(a: TFNetwork, b: TFNetwork) -> None:
        assert (a.name, a.version, a.build_func_name, a.static_kwargs) == \
               (b.name, b.version, b.build_func_name, b.static_kwargs)
        assert list(a.variables) == list(b.variables) and list(a.components) == list(b.components)
        for k, v in a.variables.items():
            w = b.variables[k]
            assert (v.dtype, v.shape) == (w.dtype, w.shape) and v.tobytes() == w.tobytes(), k
        for k in a.components:
            same(a.components[k], b.components[k])

    same(original, again)
    assert again.module_src_sha256 != original.module_src_sha256  # the writer's stand-in source


def test_dtypes_are_kept_as_stored(tmp_path: Path) -> None:
    variables = [("half", np.arange(3, dtype=np.float16)), ("double", np.arange(3, dtype=np.float64)),
                 ("big_endian", np.arange(3, dtype=">f4")), ("fortran", np.asfortranarray(np.ones((2, 3), "f4"))),
                 ("scalar64", np.float64(1.5)), ("zero_d", np.array(2.5, np.float32)),
                 ("empty", np.zeros((0, 3), "f4"))]
    write_tf_pickle(tmp_path / "d.pkl", _spec(variables=variables))
    got = read_tf_pickle(tmp_path / "d.pkl").variables
    for name, value in variables:
        value = np.asarray(value)
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value)
    assert got["zero_d"].shape == () and got["scalar64"].dtype == np.float64


def test_version_2_needs_no_components_and_numpy_scalars_in_kwargs_become_numbers(tmp_path: Path) -> None:
    spec = _spec(version=2, static_kwargs={"psi": np.float64(0.5), "n": np.int64(3), "flag": np.bool_(True)})
    state = _state(spec)
    del state["components"]
    net = read_tf_pickle(_write(tmp_path, dumps_tf(TFNet(state))))
    assert net.components == {} and net.version == 2
    assert net.static_kwargs == {"psi": 0.5, "n": 3, "flag": True}
    assert [type(v) for v in net.static_kwargs.values()] == [float, int, bool]


def test_static_kwargs_keep_plain_containers(tmp_path: Path) -> None:
    write_tf_pickle(tmp_path / "k.pkl", _spec())
    assert read_tf_pickle(tmp_path / "k.pkl").static_kwargs == {
        "resolution": 8, "truncation_psi": 0.5, "architecture": "skip", "sizes": [1, (2, 3)]}


# --- (3) Nothing in the file runs ---------------------------------------------------------------


def test_build_module_src_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "module_src_ran"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('pwned')\nraise SystemExit('executed')\n"
    spec = _spec(build_module_src=src)
    for component in spec["components"].values():
        component["build_module_src"] = src
    path = tmp_path / "src.pkl"
    write_tf_pickle(path, spec)

    def forbidden(name: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            raise AssertionError(f"the reader called {name}")
        return call

    for name in ("exec", "eval", "compile"):
        monkeypatch.setattr(builtins, name, forbidden(name))
    net = read_tf_pickle(path)
    monkeypatch.undo()

    assert not marker.exists()
    assert net.module_src_sha256 == hashlib.sha256(src.encode()).hexdigest()
    assert net.components["synthesis"].module_src_sha256 == net.module_src_sha256
    assert not any(m == "dnnlib" or m.startswith("dnnlib.") for m in sys.modules)


def test_reader_needs_neither_torch_nor_tensorflow() -> None:
    code = (
        "import sys\n"
        "from stylegan_sdk.importers.nvidia_tf.reader import read_tf_pickle\n"
        f"gs = read_tf_pickle({str(_pkl('sg1_tf_32'))!r})\n"
        "assert gs.components['synthesis'].build_func_name == 'G_synthesis'\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'dnnlib')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    run = run_without_torch(code)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


# --- (4) Globals outside the allow-list, persistent ids, BUILD ----------------------------------


DANGEROUS_GLOBALS = [
    ("posix", "system"),
    ("os", "system"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("subprocess", "Popen"),
    ("subprocess", "check_output"),
    ("numpy", "load"),
    ("numpy", "frombuffer"),
    ("numpy", "fromfile"),
    ("numpy.core.multiarray", "frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),   # how numpy pickles arrays with protocol 5
    ("numpy.lib.format", "read_array"),
    ("numpy.testing._private.utils", "runstring"),
    ("dnnlib.tflib.network", "_import_handlers"),
    ("dnnlib.tflib.network", "Network.__setstate__"),
    ("dnnlib.tflib.tfutil", "run"),
    ("dnnlib.util", "EasyDict"),             # allowed for NVlabs PyTorch pickles, never in tflib ones
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch_utils.persistence", "_reconstruct_persistent_obj"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
    ("tensorflow", "load_op_library"),
]


@pytest.mark.parametrize(("module", "name"), DANGEROUS_GLOBALS)
def test_globals_outside_the_allow_list_are_refused(tmp_path: Path, module: str, name: str) -> None:
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    payloads = {"global": call_pickle(module, name, (code,)), "stack_global": stack_global_call(module, name),
                "inst": inst_call(module, name)}
    for opcode, payload in payloads.items():
        path = _write(tmp_path, payload, f"{opcode}.pkl")
        _raises(path, rf"refused to load '{re.escape(module)}\.{re.escape(name)}' from .*{opcode}\.pkl: "
                      r"not on the allow-list of stylegan_sdk\.importers\.nvidia_tf\.reader", UnsafePickleError)
    assert not marker.exists()


def test_a_global_hidden_inside_a_network_is_refused(tmp_path: Path) -> None:
    import os

    marker = tmp_path / "pwned"
    spec = _spec(static_kwargs={"resolution": 8, "evil": Reduce(os.system, (f"touch {marker}",))})
    path = tmp_path / "hidden.pkl"
    write_tf_pickle(path, spec)
    _raises(path, rf"refused to load '{os.system.__module__}\.system'", UnsafePickleError)
    assert not marker.exists()


def test_the_nvlabs_snapshot_is_refused_and_nvlabs_refuses_tf_pickles() -> None:
    snapshot = Path(__file__).parent / "fixtures" / "nvlabs-stylegan2" / "sg2_skip_32" / "network-snapshot.pkl"
    _raises(snapshot, r"refused to load '(torch_utils|dnnlib|collections|builtins|torch)", UnsafePickleError)


@pytest.mark.parametrize("payload", [b"\x80\x02X\x01\x00\x00\x00xQ.", b"\x80\x02Pabc\n."], ids=["BINPERSID", "PERSID"])
def test_persistent_ids_are_refused(tmp_path: Path, payload: bytes) -> None:
    _raises(_write(tmp_path, payload), r"persistent id .*NVIDIA TensorFlow network pickles never use",
            UnsafePickleError)


NET = b"cdnnlib.tflib.network\nNetwork\n"


@pytest.mark.parametrize(("payload", "message"), [
    (b"\x80\x02" + NET + b"}b.", r"BUILD\) to the class dnnlib\.tflib\.network\.Network"),
    (b"\x80\x02" + NET + b")\x81}b}b.", r"BUILD\) twice to a dnnlib\.tflib\.network\.Network"),
    (b"\x80\x02" + NET + b"K\x01\x85\x81.", r"create dnnlib\.tflib\.network\.Network with arguments"),
    (b"\x80\x02" + NET + b")R.", r"call dnnlib\.tflib\.network\.Network"),
    (b"\x80\x02cnumpy\ndtype\n}b.", r"BUILD\) to numpy\.dtype"),
    (b"\x80\x02cnumpy\nndarray\n}b.", r"BUILD\) to numpy\.ndarray"),
], ids=["network_class", "network_twice", "newobj_args", "network_called", "dtype_global", "ndarray_global"])
def test_build_and_creation_outside_the_protocol_are_refused(tmp_path: Path, payload: bytes, message: str) -> None:
    _raises(_write(tmp_path, payload), message, UnsafePickleError)


def test_network_refusals_written_by_pickle_itself(tmp_path: Path) -> None:
    state = _state(_spec())
    cases = {
        "newobj_ex": (TFNet(state, args=(1,), kwargs={"x": 2}), r"create dnnlib\.tflib\.network\.Network with arg"),
        "newobj_kwargs": (TFNet(state, kwargs={"name": "Gs"}), r"create dnnlib\.tflib\.network\.Network with arg"),
        "call": (TFNet(state, call=True), r"call dnnlib\.tflib\.network\.Network"),
        "scalar_build": (Reduce(Global("numpy.core.multiarray", "scalar"), (np.dtype("f4"), b"\0" * 4), ("x",)),
                         r"BUILD\) to a numpy scalar"),
        "array_twice": (Reduce(Global("numpy.core.multiarray", "_reconstruct"), (np.ndarray, (0,), b"b"),
                               (1, (1,), np.dtype("f4"), False, b"\0" * 4)), None),
    }
    for name, (obj, message) in cases.items():
        path = _write(tmp_path, dumps_tf(obj, protocol=4), f"{name}.pkl")
        if message is None:  # an array built once is fine on its own, not a network
            _raises(path, r"holds a numpy array, not a \(G, D, Gs\) tuple")
            data = path.read_bytes()
            _raises(_write(tmp_path, data[:-1] + b"\x8c\x01x\x85b.", "twice.pkl"),
                    r"BUILD\) twice to a numpy array", UnsafePickleError)
        else:
            _raises(path, message, UnsafePickleError)


@pytest.mark.parametrize(("obj", "message"), [
    (Reduce(Global("numpy", "dtype"), ("O8", False, True)), r"numpy dtype 'O8' is not a plain numeric dtype"),
    (Reduce(Global("numpy", "dtype"), ("V8", False, True)), r"numpy dtype 'V8' is not a plain numeric dtype"),
    (Reduce(Global("numpy", "dtype"), ("f8", False, True), (3, "|", None, ("a",), {"a": ("O8", 0)}, 8, 1, 16)),
     r"numpy dtype state .* is not that of a plain numeric dtype"),
    (Reduce(Global("numpy", "dtype"), ("f4", 2, True)), r"align/copy flags are not bools"),
    (Reduce(Global("numpy.core.multiarray", "_reconstruct"), (Global("numpy", "dtype"), (0,), b"b")),
     r"only supported for numpy\.ndarray"),
], ids=["object", "void", "fields", "flags", "subtype"])
def test_non_numeric_dtypes_are_refused(tmp_path: Path, obj: object, message: str) -> None:
    _raises(_write(tmp_path, dumps_tf(obj)), message)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "object.pkl"
    write_tf_pickle(path, _spec(variables=[("x", np.array([1, None], dtype=object))]))
    _raises(path, r"numpy dtype 'O8' is not a plain numeric dtype")


# --- (5) Sizes are checked before anything is allocated -----------------------------------------

SMALL_ARRAY = np.arange(1 << 16, dtype=np.float32)  # 256 KiB, pickled once


def _nested(depth: int, leaf: object, make: Callable[[object], object]) -> object:
    for _ in range(depth):
        leaf = make(leaf)
    return leaf


def _hostile_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    reconstruct = Global("numpy.core.multiarray", "_reconstruct")
    huge_array = Reduce(reconstruct, (np.ndarray, (0,), b"b"), (1, (1 << 40,), np.dtype("f4"), False, b"abcd"))
    shared_net = network({"name": "G_synthesis", "build_func_name": "G_synthesis", "variables": [("w", SMALL_ARRAY)]})
    wide = [list(range(100))] * 200  # one list, 200 references: 20000 entries
    raw = {
        # the unpickler allocates BINBYTES8 / BINUNICODE8 / BINBYTES / a FRAME / a memo slot before reading them
        "bytes8": (b"\x80\x04\x8e" + struct.pack("<Q", 1 << 33) + b"abc.", r"expected 8589934592 bytes in a bytes8"),
        "unicode8": (b"\x80\x04\x8d" + struct.pack("<Q", 1 << 36) + b"abc.", r"expected 68719476736 bytes"),
        "bytes4": (b"\x80\x03B" + struct.pack("<I", 0xFFFFFFF0) + b"abc.", r"expected 4294967280 bytes"),
        "frame": (b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"}.", r"FRAME at byte 2 claims 1099511627776 bytes"),
        "memo": (b"\x80\x02}r\xff\xff\xff\xff.", r"claims memo slot 4294967295"),
        # an array whose shape claims 4 TiB but carries 4 bytes
        "array_shape": (dumps_tf(network(_spec(variables=[("x", huge_array)]))),
                        r"numpy array bytes do not match its shape and dtype"),
        # one array, or one sub-network, handed out many times through the pickle memo
        "shared_array": (dumps_tf(network(_spec(variables=[(f"v{i}", SMALL_ARRAY) for i in range(4096)]))),
                         r"variables add up to more than the file's \d+ bytes could hold"),
        "shared_network": (dumps_tf(network(_spec(components={f"c{i}": shared_net for i in range(2000)}))),
                           r"variables add up to more than the file's \d+ bytes could hold"),
        "shared_kwargs": (dumps_tf(network(_spec(static_kwargs={"x": wide}))),
                          r"static_kwargs have more than 10000 entries"),
        "deep_kwargs": (dumps_tf(network(_spec(static_kwargs={"x": _nested(40, [], lambda x: [x, x])}))),
                        r"static_kwargs are nested deeper than 8 levels"),
    }
    return {name: (_write(tmp_path, data, f"{name}.pkl"), message) for name, (data, message) in raw.items()}


def test_hostile_sizes_are_refused_before_allocating(tmp_path: Path) -> None:
    cases = _hostile_cases(tmp_path)
    for name, (path, _) in cases.items():
        assert path.stat().st_size < 400_000, name
    read_tf_pickle(_pkl("sg1_tf_32"))  # warm-up: imports and caches outside the measurement
    peaks = {}
    tracemalloc.start()
    try:
        for name, (path, message) in cases.items():
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            error = _raises(path, message)
            assert type(error) is ValueError, name
            peaks[name] = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert max(peaks.values()) < 50 << 20, peaks


# Runs the hostile files in a subprocess whose address space is capped at 1 GiB above what it uses
# after a warm-up read: allocating what a file claims (4 GiB and up) fails there, so only a refusal
# that comes before allocating gives the expected message.
_LIMITED_READER = """
import json, resource, sys
from stylegan_sdk.importers.nvidia_tf.reader import read_tf_pickle

def vm_size():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

read_tf_pickle(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (1 << 30),) * 2)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in sys.argv[2:]:
    try:
        read_tf_pickle(path)
        outcome = "loaded"
    except ValueError as exc:
        outcome = str(exc)
    print(json.dumps({"path": path, "outcome": outcome}), flush=True)
print(json.dumps({"rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_AS and /proc (Linux)")
def test_hostile_sizes_under_a_capped_address_space(tmp_path: Path) -> None:
    cases = _hostile_cases(tmp_path)
    run = subprocess.run([sys.executable, "-c", _LIMITED_READER, str(_pkl("sg2_tf_32_configf")),
                          *(str(p) for p, _ in cases.values())],
                         capture_output=True, text=True, timeout=120, cwd=str(Path(__file__).resolve().parents[1]))
    assert run.returncode == 0, run.stderr[-2000:]
    *results, usage = [json.loads(line) for line in run.stdout.splitlines()]
    for (name, (path, message)), result in zip(cases.items(), results, strict=True):
        assert result["path"] == str(path)
        assert re.search(message, result["outcome"]), (name, result["outcome"])
    assert usage["rss_growth_kb"] < 50 * 1024, usage


def test_static_kwargs_of_a_shared_network_stay_within_the_file_budget(tmp_path: Path) -> None:
    """Each network's static_kwargs hold at most 10000 entries; all networks together at most a million."""
    shared = network({"name": "G_mapping", "build_func_name": "G_mapping",
                      "static_kwargs": {"x": [list(range(99))] * 50}})  # 5000 entries, pickled once
    path = _write(tmp_path, dumps_tf(network(_spec(components={f"c{i}": shared for i in range(300)}))))
    assert path.stat().st_size < 10_000
    _raises(path, r"network Gs/c\d+: static_kwargs have more than 1000000 entries")


# --- (6) Files that are missing, broken or not (G, D, Gs) ---------------------------------------


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        read_tf_pickle(tmp_path / "nope.pkl")
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path))} is not a file"):
        read_tf_pickle(tmp_path)


@pytest.mark.parametrize(("data", "message"), [
    (b"", r"\(it is empty\)"),
    (b"hello, this is not a pickle", r"\(not a pickle of protocol 2 or later\)"),
    (b"PK\x03\x04" + bytes(60), r"zip archive"),
    (b"\x80\x09junk", r"\(not a pickle of protocol 2 or later\)"),
    (b"\x80\x02garbage", r"\(corrupt or truncated\?\)"),
])
def test_non_pickle_bytes(tmp_path: Path, data: bytes, message: str) -> None:
    error = _raises(_write(tmp_path, data, "bad.bin"), rf"bad\.bin is {NOT_READABLE} .*{message}|{message}")
    assert type(error) is ValueError and NOT_READABLE in str(error)


@pytest.mark.parametrize("case", CASES)
def test_truncated_files(tmp_path: Path, case: str) -> None:
    data = _pkl(case).read_bytes()
    for cut in (1, 2, 3, 11, 50, 1000, 33_800, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1):
        path = _write(tmp_path, data[:cut], f"cut{cut}.pkl")
        error = _raises(path, rf"cut{cut}\.pkl is {NOT_READABLE} \((corrupt or truncated\?|not a pickle)")
        assert type(error) is ValueError, cut


@pytest.mark.parametrize(("obj", "message"), [
    ({"Gs": network(_spec())}, r"holds a dict of 1 items, not a \(G, D, Gs\) tuple"),
    ([network(_spec())] * 3, r"holds a list of 3 items, not a \(G, D, Gs\) tuple"),
    ((network(_spec()), network(_spec())), r"holds a tuple of 2 items, not a \(G, D, Gs\) tuple"),
    ((network(_spec()),) * 4, r"holds a tuple of 4 items"),
    ((1, 2, 3), r"element 0 of the top-level \(G, D, Gs\) tuple is a int, not a dnnlib\.tflib\.network\.Network"),
    ((network(_spec()), network(_spec()), {"name": "Gs"}), r"element 2 of .* is a dict of 1 items"),
    (None, r"holds a NoneType"),
    (SMALL_ARRAY[:4], r"holds a numpy array"),
])
def test_top_level_must_be_g_d_gs(tmp_path: Path, obj: object, message: str) -> None:
    _raises(_write(tmp_path, dumps_tf(obj)), message)


def _without(key: str) -> Callable[[dict], None]:
    return lambda state: state.pop(key)


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda state: state.__setitem__(key, value)


def _var(name: object, value: object) -> Callable[[dict], None]:
    return lambda state: state["variables"].append((name, value))


def _component(edit: Callable[[dict], None]) -> Callable[[dict], None]:
    return lambda state: edit(state["components"]["synthesis"].state)


def _cyclic(state: dict) -> None:
    state["components"]["synthesis"].state["components"]["loop"] = state["components"]["synthesis"]


def _deep(levels: int) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        net = state["components"]["synthesis"]
        for i in range(levels):
            child = network({"name": f"L{i}", "build_func_name": "f"})
            net.state["components"]["sub"] = child
            net = child
    return edit


STATE_ERRORS: dict[str, tuple[Callable[[dict], None], str]] = {
    "version_1": (_set("version", 1), r"network Gs: version 1 is not a tflib Network pickle version \(2, 3, 4\)"),
    "version_5": (_set("version", 5), r"version 5 is not a tflib"),
    "version_str": (_set("version", "3"), r"version '3' is not a tflib"),
    "version_bool": (_set("version", True), r"version True is not a tflib"),
    "missing_variables": (_without("variables"), r"network Gs: its state lacks the field\(s\) variables"),
    "missing_components_v3": (_without("components"), r"lacks the field\(s\) components"),
    "missing_many": (lambda s: s.clear(), r"lacks the field\(s\) version, name, static_kwargs, components, "),
    "extra_field": (_set("evil", 1), r"its state has unexpected field\(s\) 'evil'"),
    "name_int": (_set("name", 5), r"field 'name' is a int, not a str"),
    "name_path": (_set("name", "../Gs"), r"name '\.\./Gs' is not a tflib network name"),
    "func_dotted": (_set("build_func_name", "os.system"), r"build_func_name 'os\.system' is not a Python identifier"),
    "src_bytes": (_set("build_module_src", b"x"), r"field 'build_module_src' is a bytes, not a str"),
    "kwargs_list": (_set("static_kwargs", [1]), r"field 'static_kwargs' is a list of 1 items, not a dict"),
    "kwargs_array": (_set("static_kwargs", {"a": SMALL_ARRAY[:2]}),
                     r"static_kwargs value static_kwargs\['a'\] is a numpy array, not a plain value"),
    "kwargs_network": (_set("static_kwargs", {"a": [network(_spec())]}),
                       r"static_kwargs\['a'\]\[0\] is a dnnlib\.tflib\.network\.Network, not a plain"),
    "kwargs_bytes": (_set("static_kwargs", {"a": b"x"}), r"is a bytes, not a plain value"),
    "kwargs_complex": (_set("static_kwargs", {"a": np.complex64(1j)}), r"is a numpy scalar, not a plain value"),
    "kwargs_key": (_set("static_kwargs", {"a": {1: 2}}), r"static_kwargs key 1 at static_kwargs\['a'\] is not a str"),
    "variables_dict": (_set("variables", {"a": 1}), r"variables are a dict of 1 items, not a list of \(name, value\)"),
    "variable_not_pair": (lambda s: s["variables"].append(("x",)), r"variable 2 is a tuple of 1 items, not a"),
    "variable_name_int": (_var(5, np.float32(1)), r"variable name 5 is a int, not a str"),
    "variable_dotdot": (_var("../../etc/passwd", np.float32(1)), r"variable name '\.\./\.\./etc/passwd' is not a rel"),
    "variable_absolute": (_var("/abs", np.float32(1)), r"variable name '/abs' is not a relative name"),
    "variable_empty_segment": (_var("a//b", np.float32(1)), r"variable name 'a//b' is not a relative name"),
    "variable_dot": (_var("a/./b", np.float32(1)), r"variable name 'a/\./b' is not a relative name"),
    "variable_empty": (_var("", np.float32(1)), r"variable name '' is not a relative name"),
    "variable_space": (_var("a b", np.float32(1)), r"variable name 'a b' is not a relative name"),
    "variable_newline": (_var("a\nb", np.float32(1)), r"variable name 'a\\nb' is not a relative name"),
    "variable_twice": (_var("lod", np.float32(1)), r"variable 'lod' appears twice"),
    "variable_int_array": (_var("i", np.arange(3)), r"variable 'i' has dtype int64; expected float16 / float32 / flo"),
    "variable_int_scalar": (_var("i", np.int32(3)), r"variable 'i' has dtype int32"),
    "variable_bool": (_var("b", np.ones(2, bool)), r"variable 'b' has dtype bool"),
    "variable_complex": (_var("c", np.ones(2, np.complex64)), r"variable 'c' has dtype complex64"),
    "variable_float": (_var("f", 0.5), r"variable 'f' is a float, not a numpy array or number"),
    "variable_list": (_var("f", [0.5]), r"variable 'f' is a list of 1 items, not a numpy array or number"),
    "variable_unbuilt": (_var("u", Reduce(Global("numpy.core.multiarray", "_reconstruct"), (np.ndarray, (0,), b"b"))),
                         r"variable 'u' is a numpy array that never received its data"),
    "components_list": (_set("components", [1]), r"field 'components' is a list of 1 items, not a dict"),
    "component_key": (lambda s: s["components"].__setitem__("../x", network(_spec())),
                      r"component key '\.\./x' is not a relative name"),
    "component_not_network": (lambda s: s["components"].__setitem__("x", 3),
                              r"network Gs/x: it is a int, not a dnnlib\.tflib\.network\.Network"),
    "component_unbuilt": (lambda s: s["components"].__setitem__("x", TFNet(None)),
                          r"network Gs/x: it never received its state \(no BUILD\)"),
    "component_bad_variable": (_component(_var("../x", np.float32(1))),
                               r"network Gs/synthesis: variable name '\.\./x' is not a relative name"),
    "cyclic": (_cyclic, r"network Gs/synthesis/loop: its components are cyclic"),
    "deep": (_deep(4), r"network Gs/synthesis/sub/sub/sub/sub: components are nested deeper than 4 levels"),
    "flat_clash": (_var("synthesis/4x4/Const/const", np.float32(1)),
                   r"variable 'synthesis/4x4/Const/const' is both its own and a component's"),
}


@pytest.mark.parametrize("case", list(STATE_ERRORS))
def test_malformed_network_states_are_rejected(tmp_path: Path, case: str) -> None:
    edit, message = STATE_ERRORS[case]
    state = _state(_spec())
    edit(state)
    path = _write(tmp_path, dumps_tf((network(_spec()), network(_spec()), TFNet(state))), f"{case}.pkl")
    error = _raises(path, message)
    assert type(error) is ValueError


def test_nesting_up_to_the_limit_reads(tmp_path: Path) -> None:
    state = _state(_spec())
    _deep(3)(state)
    net = read_tf_pickle(_write(tmp_path, dumps_tf(TFNet(state))))
    assert net.components["synthesis"].components["sub"].components["sub"].components["sub"].name == "L2"


def test_one_array_under_two_names_gives_independent_copies(tmp_path: Path) -> None:
    shared = np.arange(4, dtype=np.float32)
    path = _write(tmp_path, dumps_tf(network(_spec(variables=[("a", shared), ("b", shared)]))))
    variables = read_tf_pickle(path).variables
    np.testing.assert_array_equal(variables["a"], variables["b"])
    variables["a"][0] = 9
    assert variables["b"][0] == 0


def test_mutated_pickles_raise_only_value_errors(tmp_path: Path) -> None:
    """Random byte edits of a small valid pickle: it reads, or fails with a ValueError, never anything else."""
    data = bytearray(dumps_tf(network(_spec()), protocol=3))
    rnd = random.Random(1234)
    path = tmp_path / "mutated.pkl"
    outcomes = {"read": 0, "refused": 0, "rejected": 0}
    for _ in range(400):
        mutated = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            mutated[rnd.randrange(2, len(mutated))] = rnd.randrange(256)
        path.write_bytes(bytes(mutated))
        try:
            read_tf_pickle(path)
            outcomes["read"] += 1
        except UnsafePickleError:
            outcomes["refused"] += 1
        except ValueError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 100, outcomes
