"""Crafted hostile files for tests/test_loader_costs.py, and a runner that measures what loading one costs.

Each builder writes a small file that used to make a loader spend gigabytes or minutes (issue 33).
`run_bounded` runs a snippet in a fresh interpreter under an address-space limit (RLIMIT_AS, a few GB
above the interpreter's own after its imports) so that a regression fails instead of swapping, and
reports the seconds the snippet took, its peak-RSS growth and the exception it ended with.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
COLLIDING_STEP = 2**61 - 1   # hash(k * (2**61 - 1)) == 0 for every int k: all keys land in one chain


# --- Pickle bytes -----------------------------------------------------------------------------------


def _long1(value: int) -> bytes:
    data = pickle.encode_long(value)
    return b"\x8a" + bytes([len(data)]) + data


def colliding_dict_pickle(n: int) -> bytes:
    """{k * (2**61 - 1): None for k in 1..n}: n int keys with the same hash, set by one SETITEMS."""
    body = b"".join(_long1(k * COLLIDING_STEP) + b"N" for k in range(1, n + 1))
    return b"\x80\x04}(" + body + b"u."


def empty_lists_pickle(size: int) -> bytes:
    """A list of (size - 6) empty lists: one EMPTY_LIST opcode (one byte) each, about 60 bytes of memory;
    EMPTY_LIST MARK ... APPENDS, which torch's weights-only unpickler reads too."""
    return b"\x80\x04](" + b"]" * (size - 6) + b"e."


# --- torch.save containers ----------------------------------------------------------------------------


def torch_zip(path: Path, data_pkl: bytes) -> Path:
    """A torch.save zip archive (stored entries) whose data.pkl is `data_pkl`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    return path


def _binunicode(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text)) + text.encode()


def legacy_torch_file(path: Path, numel: int) -> Path:
    """A legacy (non-zip) torch.save file: {"g_ema": one FloatStorage of `numel` elements} with no data."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    # {"g_ema": persistent id ("storage", torch.FloatStorage, "0", "cpu", numel, None)}, BINPERSID
    pid = (b"(" + _binunicode("storage") + b"ctorch\nFloatStorage\n" + _binunicode("0") + _binunicode("cpu")
           + _long1(numel) + b"NtQ")  # view metadata None
    main = b"\x80\x02}" + _binunicode("g_ema") + pid + b"s."
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps(sys_info, protocol=2), main, pickle.dumps(["0"], protocol=2)]
    path.write_bytes(b"".join(parts) + struct.pack("<q", numel))
    return path


# --- Our checkpoint and exported folders --------------------------------------------------------------


def checkpoint_with_config(src: Path, dst: Path, **changes: object) -> Path:
    """A copy of checkpoint `src` whose header's config has `changes`, the tensors unchanged."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(src), framework="numpy") as f:
        header = dict(f.metadata())
    config = json.loads(header["config"])
    config.update(changes)
    header["config"] = json.dumps(config, sort_keys=True)
    save_file(load_file(str(src)), str(dst), metadata=header)
    return dst


# --- Running a load under limits ----------------------------------------------------------------------

_PRELUDE = """
import json, resource, sys, time, traceback
def _vm():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
def _rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""

_MEASURE = """
_limit = _vm() + {headroom}
resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))
_rss0, _t0 = _rss(), time.perf_counter()
_error = None
try:
{body}
except BaseException as _e:
    _error = (type(_e).__name__, str(_e)[:2000])
print("RESULT " + json.dumps({{"seconds": time.perf_counter() - _t0, "growth": _rss() - _rss0, "error": _error}}))
"""


def run_bounded(setup: str, body: str, timeout: float = 60, headroom: int = 3 << 30,
                pythonpath: str | Path = REPO) -> dict:
    """Run `setup` (imports; not measured), then `body` under RLIMIT_AS = the address space after setup +
    `headroom`, in a fresh interpreter. -> {"seconds", "growth" (peak RSS growth, bytes), "error":
    [exception class, message] or None}; {"timeout": True} if it ran past `timeout` seconds."""
    code = _PRELUDE + textwrap.dedent(setup) + _MEASURE.format(headroom=headroom,
                                                                body=textwrap.indent(textwrap.dedent(body), "    "))
    env = dict(os.environ, PYTHONPATH=str(pythonpath), OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=str(pythonpath))  # -c puts the cwd first on sys.path
    except subprocess.TimeoutExpired:
        return {"timeout": True, "seconds": timeout, "growth": None, "error": None}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"crashed": proc.returncode, "stderr": proc.stderr[-2000:], "seconds": None, "growth": None,
            "error": None}


# --- A fake Triton server: answers from a real exported repository, or hostile ones -------------------


class FakeTriton:
    """Triton's GRPCInferenceService on 127.0.0.1, answering for the models of an export/triton.py repository.

    mode: "ok" (the repository's configs, metadata, and zeros as outputs), "big-config" (a `junk` parameter of
    `junk_bytes` added to every config), "huge-shape" (inference answers claim [n, 2**40] elements), "nan"
    (inference answers of the right shape filled with NaN).
    """

    def __init__(self, repo: Path, mode: str = "ok", junk_bytes: int = 0) -> None:
        import concurrent.futures

        import grpc
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

        self.mode = mode
        self.configs = {}
        for folder in sorted(p for p in Path(repo).iterdir() if (p / "config.pbtxt").is_file()):
            config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
            if mode == "big-config":
                config.parameters["junk"].string_value = "x" * junk_bytes
            self.configs[folder.name] = config
        fake = self

        class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
            def ModelReady(self, request, context):  # noqa: N802 (the proto's names)
                return service_pb2.ModelReadyResponse(ready=request.name in fake.configs)

            def ModelConfig(self, request, context):  # noqa: N802
                if request.name not in fake.configs:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"no model {request.name}")
                return service_pb2.ModelConfigResponse(config=fake.configs[request.name])

            def ModelMetadata(self, request, context):  # noqa: N802
                config = fake.configs[request.name]

                def tensors(entries):
                    return [service_pb2.ModelMetadataResponse.TensorMetadata(
                        name=e.name, datatype="FP32", shape=[-1, *e.dims]) for e in entries]

                return service_pb2.ModelMetadataResponse(name=request.name, platform="onnxruntime_onnx",
                                                         inputs=tensors(config.input), outputs=tensors(config.output))

            def ModelInfer(self, request, context):  # noqa: N802
                config = fake.configs[request.model_name]
                n = int(request.inputs[0].shape[0])
                out = config.output[0]
                shape = [n, *out.dims]
                values = np.zeros(int(np.prod(shape)), np.float32)
                if fake.mode == "nan":
                    values[:] = np.nan
                if fake.mode == "huge-shape":
                    shape = [n, 2**40]
                return service_pb2.ModelInferResponse(
                    model_name=request.model_name, outputs=[service_pb2.ModelInferResponse.InferOutputTensor(
                        name=out.name, datatype="FP32", shape=shape)], raw_output_contents=[values.tobytes()])

        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4),
                                  options=[("grpc.max_send_message_length", 1 << 30)])
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(0)
