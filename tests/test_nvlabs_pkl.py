"""Tests of the allow-list reader for official NVlabs network pickles."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import subprocess
import sys
import types
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from pickle_crafting import call_pickle, inst_call, stack_global_call

from stylegan_sdk.importers.nvlabs import reader as nvlabs_pkl
from stylegan_sdk.importers.nvlabs.reader import (
    NetworkRecord,
    UnsafePickleError,
    list_network_pickle_keys,
    read_network_pickle,
)

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "nvlabs-stylegan2" / "sg2_skip_32"
SNAPSHOT = FIXTURE_DIR / "network-snapshot.pkl"


# --- Helpers that craft pickles -----------------------------------------------------------------


def _write(tmp_path: Path, data: bytes, name: str = "crafted.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


class _System:
    """Pickles as ``os.system(command)`` (``posix.system`` on Linux)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


@pytest.fixture
def fake_nvlabs(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stand-ins registered as torch_utils.persistence / dnnlib.util, so pickle can write them."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta: dict) -> object:
        raise AssertionError("the reader must never call the real reconstruct function")

    _reconstruct_persistent_obj.__module__ = persistence.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    easy_dict = type("EasyDict", (dict,), {"__module__": util.__name__})
    util.EasyDict = easy_dict
    for name, module in {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": persistence,
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": util,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)

    class Persistent:
        """Pickles exactly like a torch_utils.persistence object."""

        def __init__(self, class_name: str, state: dict, module_src: str) -> None:
            self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)

        def __reduce__(self) -> tuple:
            return (_reconstruct_persistent_obj, (self.meta,))

    return types.SimpleNamespace(Persistent=Persistent, EasyDict=easy_dict)


def _module_state(params: dict, buffers: dict, modules: dict, non_persistent: set, **attrs: object) -> dict:
    state = dict(
        training=False,
        _parameters=params,
        _buffers=buffers,
        _non_persistent_buffers_set=non_persistent,
        _forward_hooks=OrderedDict(),
        _modules=modules,
    )
    state.update(attrs)
    return state


# --- (1) The fixture snapshot -------------------------------------------------------------------


def test_fixture_g_ema_matches_reference_state_dict_and_config() -> None:
    record = read_network_pickle(SNAPSHOT)
    reference = np.load(FIXTURE_DIR / "G_state_dict.npz")
    config = json.loads((FIXTURE_DIR / "config.json").read_text())

    assert isinstance(record, NetworkRecord)
    assert record.class_name == "Generator"
    assert isinstance(record.module_version, int)
    assert record.init_args == ()
    assert record.init_kwargs == config["init_kwargs"]
    assert set(record.state_dict) == set(reference.files)
    for name in reference.files:
        tensor = record.state_dict[name]
        assert type(tensor) is torch.Tensor, name
        assert tensor.numpy().dtype == reference[name].dtype, name
        np.testing.assert_array_equal(tensor.numpy(), reference[name], err_msg=name)
    assert {"mapping.fc0.weight", "mapping.w_avg", "synthesis.b4.conv1.noise_const"} <= set(record.state_dict)
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules


def test_fixture_lists_only_non_none_networks() -> None:
    assert list_network_pickle_keys(SNAPSHOT) == ["G_ema"]
    assert list_network_pickle_keys(str(SNAPSHOT)) == ["G_ema"]


def test_docstring_lists_every_allowed_global() -> None:
    doc = nvlabs_pkl.__doc__ or ""
    for module, name in nvlabs_pkl._ALLOWED:
        assert f"{module}.{name}" in doc or (module in doc and f".{name}``" in doc), (module, name)


# --- (2) Code-running reduce --------------------------------------------------------------------


def test_os_system_reduce_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write(tmp_path, pickle.dumps({"G_ema": _System(f"touch {marker}")}))
    with pytest.raises(
        UnsafePickleError, match=rf"refused to load '{os.system.__module__}\.system' from .*crafted\.pkl"
    ):
        read_network_pickle(path)
    with pytest.raises(UnsafePickleError):
        list_network_pickle_keys(path)
    assert not marker.exists()


# --- (3) Embedded module source is never executed -----------------------------------------------


@pytest.mark.parametrize("protocol", [3, 4])  # official snapshots written by Python 3.7 use protocol 3
def test_persistent_object_module_src_is_never_executed(
    tmp_path: Path, fake_nvlabs: types.SimpleNamespace, protocol: int
) -> None:
    marker = tmp_path / "module_src_ran"
    module_src = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('pwned')\n"
    weight = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    child = fake_nvlabs.Persistent(
        "FullyConnectedLayer",
        _module_state({"bias": torch.nn.Parameter(torch.ones(3))}, {}, {}, set()),
        module_src,
    )
    plist = torch.nn.ParameterList([torch.nn.Parameter(torch.full((2,), 7.0))])
    init_kwargs = fake_nvlabs.EasyDict(
        mapping_kwargs=fake_nvlabs.EasyDict(num_layers=2), gain=np.float64(0.5), sizes=np.arange(3), name="x"
    )
    network = fake_nvlabs.Persistent(
        "Generator",
        _module_state(
            {"weight": torch.nn.Parameter(weight), "absent": None},
            {"kept": torch.zeros(2, dtype=torch.float64), "tmp": torch.ones(1)},
            {"child": child, "plist": plist, "gone": None},
            {"tmp"},
            _init_args=(4,),
            _init_kwargs=init_kwargs,
            weight_gain=np.float32(0.25),
        ),
        module_src,
    )
    path = _write(tmp_path, pickle.dumps({"G": None, "G_ema": network, "augment_pipe": None}, protocol=protocol))

    record = read_network_pickle(path)

    assert not marker.exists()
    assert record.class_name == "Generator" and record.module_version == 6
    assert record.init_args == (4,)
    assert type(record.init_kwargs) is dict and type(record.init_kwargs["mapping_kwargs"]) is dict
    assert record.init_kwargs["mapping_kwargs"] == {"num_layers": 2}
    assert type(record.init_kwargs["gain"]) is float and record.init_kwargs["gain"] == 0.5
    np.testing.assert_array_equal(record.init_kwargs["sizes"], np.arange(3))
    assert list(record.state_dict) == ["weight", "kept", "child.bias", "plist.0"]
    torch.testing.assert_close(record.state_dict["weight"], weight, rtol=0, atol=0)
    assert record.state_dict["kept"].dtype == torch.float64
    torch.testing.assert_close(record.state_dict["plist.0"], torch.full((2,), 7.0), rtol=0, atol=0)
    assert list_network_pickle_keys(path) == ["G_ema"]
    assert not marker.exists()


# --- (4) Dangerous globals, whichever opcode names them -----------------------------------------

DANGEROUS_GLOBALS = [
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("torch", "load"),
    ("torch.serialization", "load"),
    ("numpy", "load"),
    ("subprocess", "Popen"),
    ("posix", "system"),
    ("torch_utils.persistence", "persistent_class"),
    ("copyreg", "_reconstructor"),
]


@pytest.mark.parametrize(("module", "name"), DANGEROUS_GLOBALS)
def test_dangerous_globals_are_refused(tmp_path: Path, module: str, name: str) -> None:
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    payloads = {
        "global": call_pickle(module, name, (code,)),
        "stack_global": stack_global_call(module, name),
        "inst": inst_call(module, name),
    }
    for opcode, payload in payloads.items():
        path = _write(tmp_path, payload, f"{opcode}.pkl")
        with pytest.raises(UnsafePickleError, match=rf"'{module}\.{name}' from .*{opcode}\.pkl: not on the allow-list"):
            read_network_pickle(path)
    assert not marker.exists()


def test_persistent_ids_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\x80\x02X\x01\x00\x00\x00xQ.")  # BINPERSID
    with pytest.raises(UnsafePickleError, match="persistent id"):
        read_network_pickle(path)


def test_build_on_an_allowed_global_is_refused(tmp_path: Path) -> None:
    # BUILD with slot state would otherwise setattr on our helper (e.g. its __defaults__).
    payload = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__)s\x86b."
    with pytest.raises(UnsafePickleError, match=r"BUILD"):
        read_network_pickle(_write(tmp_path, payload))


def test_build_on_a_plain_dict_is_rejected(tmp_path: Path) -> None:
    payload = b"\x80\x02ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00aK\x01sb."
    with pytest.raises(ValueError, match="not a readable NVlabs network pickle"):
        read_network_pickle(_write(tmp_path, payload))


# --- (5) Storage payloads go through torch's weights_only loader --------------------------------


def test_malicious_storage_payload_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Explicit weights_only=True must hold even when the environment asks torch for the opposite.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "storage_pwned"
    payload = pickle.dumps(_System(f"touch {marker}"), protocol=2)
    path = _write(tmp_path, call_pickle("torch.storage", "_load_from_bytes", (payload,)))
    with pytest.raises(UnsafePickleError, match=r"refused to load a tensor storage payload from .*crafted\.pkl"):
        read_network_pickle(path)
    assert not marker.exists()


class _OutOfBoundsTensor:
    def __reduce__(self) -> tuple:
        storage = torch.ones(4).storage()  # a TypedStorage of 4 floats, as official pickles hold
        return (torch._utils._rebuild_tensor_v2, (storage, 0, (100,), (1,), False, OrderedDict()))


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_tensor_view_past_its_storage_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, pickle.dumps({"t": _OutOfBoundsTensor()}, protocol=4))
    with pytest.raises(ValueError, match="past the end of its storage"):
        read_network_pickle(path)


# --- (6) Files that are missing, broken or hold no such network ---------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pkl"
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        read_network_pickle(path)


def test_truncated_file(tmp_path: Path) -> None:
    data = SNAPSHOT.read_bytes()
    path = _write(tmp_path, data[: len(data) // 2], "half.pkl")
    with pytest.raises(ValueError, match=r"half\.pkl is not a readable NVlabs network pickle \(corrupt or truncated"):
        read_network_pickle(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"hello, this is not a pickle", "not a pickle of protocol 2 or later"),
        (b"PK\x03\x04" + bytes(60), "zip archive"),
        (b"\x80\x09junk", "not a pickle of protocol 2 or later"),
    ],
)
def test_non_pickle_bytes(tmp_path: Path, data: bytes, message: str) -> None:
    path = _write(tmp_path, data, "bad.bin")
    with pytest.raises(ValueError, match=rf"bad\.bin.*{message}|{message}") as info:
        read_network_pickle(path)
    assert not isinstance(info.value, UnsafePickleError)
    assert "bad.bin" in str(info.value)


@pytest.mark.parametrize("key", ["G", "D", "nope"])
def test_missing_or_none_key_lists_available_networks(key: str) -> None:
    with pytest.raises(ValueError, match=r"no network under key .*networks available: \['G_ema'\]"):
        read_network_pickle(SNAPSHOT, key=key)


def test_key_that_is_not_a_network() -> None:
    with pytest.raises(ValueError, match="'training_set_kwargs' holds a dict, not a persistent network"):
        read_network_pickle(SNAPSHOT, key="training_set_kwargs")


def test_top_level_not_a_dict(tmp_path: Path) -> None:
    path = _write(tmp_path, pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="not the dict of an NVlabs snapshot"):
        list_network_pickle_keys(path)


# --- (7) Sizes the file claims are checked against the bytes it has, before allocating ----------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER


def _text(value: str) -> bytes:
    return b"X" + struct.pack("<I", len(value)) + value.encode()


def _storage_payload(numel: int, data: bytes, header: int | None = None) -> bytes:
    """What torch.save(FloatStorage, _use_new_zipfile_serialization=False) writes, i.e. the argument of
    torch.storage._load_from_bytes: `numel` floats claimed in the persistent id, `header` (default numel)
    in the data header, then `data`."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    record = (b"\x80\x02(" + _text("storage") + b"ctorch\nFloatStorage\n" + _text("0") + _text("cpu")
              + pickle.dumps(numel, protocol=2)[2:-1] + b"NtQ.")
    head = pickle.dumps(_LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2) + pickle.dumps(sys_info, protocol=2)
    return head + record + pickle.dumps(["0"], protocol=2) + struct.pack("<q", header or numel) + data


class _CraftedStorage:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __reduce__(self) -> tuple:
        return (torch.storage._load_from_bytes, (self.payload,))


class _CraftedTensor:
    def __init__(self, storage: object, shape: tuple, stride: tuple) -> None:
        self.storage, self.shape, self.stride = storage, shape, stride

    def __reduce__(self) -> tuple:
        return (torch._utils._rebuild_tensor_v2, (self.storage, 0, self.shape, self.stride, False, OrderedDict()))


def _network(fake_nvlabs: types.SimpleNamespace, params: dict, modules: dict | None = None, **kwargs: object) -> bytes:
    state = _module_state(params, {}, modules or {}, set(), _init_args=(), _init_kwargs=kwargs)
    return pickle.dumps({"G_ema": fake_nvlabs.Persistent("Generator", state, "")}, protocol=3)


FOUR_FLOATS = np.arange(1, 5, dtype="<f4").tobytes()


def test_crafted_storage_payload_loads(tmp_path: Path, fake_nvlabs: types.SimpleNamespace) -> None:
    """The crafted payloads below are real torch.save streams: with honest sizes they load."""
    weight = _CraftedTensor(_CraftedStorage(_storage_payload(4, FOUR_FLOATS)), (2, 2), (2, 1))
    record = read_network_pickle(_write(tmp_path, _network(fake_nvlabs, {"weight": weight})))
    np.testing.assert_array_equal(record.state_dict["weight"].numpy(), [[1, 2], [3, 4]])


# Runs in a subprocess whose address space is capped at 1 GiB above what it uses after a warm-up
# read: any attempt to allocate what a hostile file claims (8 GiB and up) fails there, so only a
# refusal that comes before allocating gives the expected message.
_LIMITED_READER = """
import json, resource, sys, time
from stylegan_sdk.importers.nvlabs.reader import read_network_pickle

def vm_size():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

read_network_pickle(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (1 << 30),) * 2)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in sys.argv[2:]:
    start = time.perf_counter()
    try:
        read_network_pickle(path)
        outcome = "loaded"
    except ValueError as exc:
        outcome = str(exc)
    print(json.dumps({"path": path, "outcome": outcome, "seconds": time.perf_counter() - start}), flush=True)
print(json.dumps({"rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss}))
"""


def _nested(depth: int, leaf: object, make: Callable[[object], object]) -> object:
    for _ in range(depth):
        leaf = make(leaf)
    return leaf


@pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_AS and /proc (Linux)")
def test_hostile_sizes_are_refused_before_allocating(tmp_path: Path, fake_nvlabs: types.SimpleNamespace) -> None:
    huge = 1 << 31  # floats: an 8 GiB storage
    payload = _storage_payload(1 << 16, bytes(1 << 18))  # 256 KiB, pickled once, rebuilt 4096 times
    child = fake_nvlabs.Persistent("Layer", _module_state({"w": torch.nn.Parameter(torch.ones(1))}, {}, {}, set()), "")
    shared_tree = _nested(40, child, lambda c: fake_nvlabs.Persistent("Block", _module_state({}, {}, {"a": c, "b": c},
                                                                                              set()), ""))
    cases = {
        # a ~330-byte pickle whose storage claims 2**31 floats in its id and its data header
        "storage": (_write(tmp_path, pickle.dumps({"w": _CraftedStorage(_storage_payload(huge, FOUR_FLOATS))},
                                                  protocol=3), "storage.pkl"),
                    rf"storage '0' claims {huge} elements of 4 bytes \({4 * huge} bytes\), but only 16 bytes follow"),
        "storage_header": (_write(tmp_path, pickle.dumps({"w": _CraftedStorage(_storage_payload(huge, FOUR_FLOATS, 4))},
                                                         protocol=3), "storage_header.pkl"),
                           rf"storage '0' claims {huge} elements, but its data header says 4"),
        # the unpickler itself allocates a BINBYTES8, a FRAME and a memo slot before reading them
        "bytes8": (_write(tmp_path, b"\x80\x04\x8e" + struct.pack("<Q", 1 << 33) + b"abc.", "bytes8.pkl"),
                   r"expected 8589934592 bytes in a bytes8, but only 4 remain"),
        "frame": (_write(tmp_path, b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"}.", "frame.pkl"),
                  r"FRAME at byte 2 claims 1099511627776 bytes, but only 2 follow"),
        "memo": (_write(tmp_path, b"\x80\x02}r\xff\xff\xff\xff.", "memo.pkl"), r"claims memo slot 4294967295"),
        # one payload, or one sub-tree, handed out many times through the pickle memo
        "shared_payload": (_write(tmp_path, _network(fake_nvlabs, {f"p{i}": _CraftedStorage(payload)
                                                                   for i in range(4096)}), "shared_payload.pkl"),
                           r"tensor storages and arrays add up to more than the file's \d+ bytes could hold"),
        "shared_modules": (_write(tmp_path, _network(fake_nvlabs, {}, {"root": shared_tree}), "shared_modules.pkl"),
                           r"state dict (tensors|entries) (add up to more than the file's|have more than 1000000)"),
        "shared_kwargs": (_write(tmp_path, _network(fake_nvlabs, {}, tree=_nested(40, [], lambda x: [x, x])),
                                 "shared_kwargs.pkl"),
                          r"constructor arguments have more than 1000000 entries"),
    }
    for name, (path, _) in cases.items():
        assert path.stat().st_size < 400_000, name  # 1 GiB in all once the payload is rebuilt 4096 times
    assert cases["storage"][0].stat().st_size < 400
    good_tensor = _CraftedTensor(_CraftedStorage(_storage_payload(4, FOUR_FLOATS)), (4,), (1,))
    good = _write(tmp_path, _network(fake_nvlabs, {"w": good_tensor}), "good.pkl")
    run = subprocess.run([sys.executable, "-c", _LIMITED_READER, str(good), *(str(p) for p, _ in cases.values())],
                         capture_output=True, text=True, timeout=300, cwd=str(Path(__file__).resolve().parents[1]))
    assert run.returncode == 0, run.stderr[-2000:]
    *results, usage = [json.loads(line) for line in run.stdout.splitlines()]
    for (name, (path, message)), result in zip(cases.items(), results, strict=True):
        assert result["path"] == str(path)
        assert re.search(message, result["outcome"]), (name, result["outcome"])
        assert str(path) in result["outcome"] and "\n" not in result["outcome"], name
        assert result["seconds"] < 10, (name, result["seconds"])
    assert usage["rss_growth_kb"] < 100 * 1024, usage


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_overlapping_view_with_more_elements_than_its_storage_is_rejected(tmp_path: Path) -> None:
    """A stride-0 view of 4 floats claiming 2**40 elements: any copy of it would allocate 4 TiB."""
    tensor = _CraftedTensor(_CraftedStorage(_storage_payload(4, FOUR_FLOATS)), (1 << 40,), (0,))
    path = _write(tmp_path, pickle.dumps({"t": tensor}, protocol=4))
    with pytest.raises(ValueError, match=r"shape \(1099511627776,\) claims more elements than its storage holds \(4\)"):
        read_network_pickle(path)


@pytest.mark.parametrize(("payload", "message"), [
    (_storage_payload(4, FOUR_FLOATS + b"\0"), "1 bytes after its data"),
    (_storage_payload(4, FOUR_FLOATS)[:-8], "(16 bytes), but only 8 bytes follow"),
    (_storage_payload(4, FOUR_FLOATS).replace(pickle.dumps(["0"], protocol=2), pickle.dumps(["1"], protocol=2)),
     "list of keys does not match its storages"),
    (pickle.dumps(_LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2)
     + b"\x80\x02cbuiltins\nbytearray\nJ\x00\x00\x00\x40\x85R.", "'builtins.bytearray', not a torch storage type"),
])
def test_storage_payload_structure_is_checked(tmp_path: Path, payload: bytes, message: str) -> None:
    path = _write(tmp_path, pickle.dumps({"w": _CraftedStorage(payload)}, protocol=3))
    with pytest.raises(ValueError, match=re.escape(message)):
        read_network_pickle(path)
