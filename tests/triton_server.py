"""Run NVIDIA's real `tritonserver` on 127.0.0.1 over a copy of an export/to_triton.py repository.

The server comes from the nvidia-pytriton wheel, which `make install` puts in its own environment,
.venv-triton (with numpy < 2, which the wheel's python-backend stub needs: with numpy 2 its output
tensors come back empty, and onnxruntime). The wheel's server has the python backend but no ONNX
Runtime backend, so in the copy each model's `platform: "onnxruntime_onnx"` line becomes
`backend: "python"` and tests/triton_python_model.py goes next to its model.onnx; the rest of every
config.pbtxt is left as exported. What the binary needs: LD_LIBRARY_PATH with the wheel's
nvidia_pytriton.libs and the Python LIBDIR (the stub embeds libpython), the stub for that Python
version copied into backends/python, and .venv-triton/bin first on PATH: the stub's embedded Python
ignores PYTHONPATH (isolated mode) and finds its prefix from `python3` on PATH, so it imports numpy and
onnxruntime from .venv-triton.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ENV = Path(__file__).resolve().parents[1] / ".venv-triton"   # made by `make install`
PYTHON = ENV / "bin" / "python"
PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")
PLATFORM_LINE = re.compile(r'^platform: "onnxruntime_onnx"$', re.M)
RUNNING: dict[int, subprocess.Popen] = {}   # gRPC port -> the server process (tests stop one early)


@functools.cache
def _env_python() -> dict[str, str]:
    """.venv-triton's Python: version, LIBDIR, shared libpython, and where the wheel's server lies."""
    code = ("import importlib.util, json, sys, sysconfig, pathlib; "
            "pkg = pathlib.Path(importlib.util.find_spec('pytriton').origin).parent; print(json.dumps({"
            "'version': f'{sys.version_info.major}.{sys.version_info.minor}', "
            "'libdir': sysconfig.get_config_var('LIBDIR') or '', "
            "'shared': bool(sysconfig.get_config_var('Py_ENABLE_SHARED')), "
            "'server': str(pkg / 'tritonserver'), 'libs': str(pkg.parent / 'nvidia_pytriton.libs')}))")
    r = subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return {"error": " ".join(r.stderr.split())[-300:]}
    return json.loads(r.stdout)


def missing() -> str | None:
    """Why the server cannot run here (None if it can)."""
    if not PYTHON.is_file():
        return f"no {ENV} (make install creates it with the nvidia-pytriton wheel)"
    info = _env_python()
    if "error" in info:
        return f"{ENV} has no usable nvidia-pytriton ({info['error']})"
    if not (Path(info["server"]) / "bin" / "tritonserver").is_file():
        return f"no tritonserver binary under {info['server']}"
    if not _stub(info).is_file():
        return f"the nvidia-pytriton wheel has no python-backend stub for Python {info['version']}"
    if not info["shared"] or not Path(info["libdir"]).is_dir():
        return "the Python of .venv-triton has no shared libpython, which the python-backend stub loads"
    return None


def _stub(info: dict[str, str]) -> Path:
    return Path(info["server"]) / "python_backend_stubs" / info["version"] / "triton_python_backend_stub"


def python_backend_copy(repo: Path, out: Path) -> Path:
    """A copy of an exported repository whose models run on the python backend (see the module docstring)."""
    shutil.copytree(repo, out)
    for config in sorted(out.glob("*/config.pbtxt")):
        text, swaps = PLATFORM_LINE.subn('backend: "python"', config.read_text())
        assert swaps == 1, f"{config}: expected one onnxruntime_onnx platform line"
        config.write_text(text)
        for version in config.parent.iterdir():
            if version.is_dir() and (version / "model.onnx").is_file():
                shutil.copyfile(PYTHON_MODEL, version / "model.py")
    return out


def _backends(out: Path) -> Path:
    info = _env_python()
    python = out / "python"
    python.mkdir(parents=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        shutil.copyfile(Path(info["server"]) / "backends" / "python" / name, python / name)
    stub = python / "triton_python_backend_stub"
    shutil.copyfile(_stub(info), stub)
    stub.chmod(0o755)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """tritonserver over `repo` (already python-backend) on 127.0.0.1, started by start(); a test may stop it
    (stop(RUNNING[port])), and start() brings it back on a new port. close() stops it for good."""

    def __init__(self, repo: Path, work: Path, ready_timeout: float = 120.0) -> None:
        self.repo, self.work, self.ready_timeout = repo, work, ready_timeout
        self.log = work / "tritonserver.log"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> int:
        """Launch the server and wait until it is ready; returns its gRPC port."""
        import tritonclient.grpc as triton

        self.close()
        info = _env_python()
        backends = self.work / "backends"
        if not backends.is_dir():
            _backends(backends)
        port = free_port()
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (info["libs"], info["libdir"],
                                                             env.get("LD_LIBRARY_PATH")) if p)
        env["PATH"] = os.pathsep.join((str(ENV / "bin"), env.get("PATH", "")))
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(name, None)
        args = [str(Path(info["server"]) / "bin" / "tritonserver"), f"--model-repository={self.repo}",
                f"--backend-directory={backends}",
                "--grpc-address=127.0.0.1", f"--grpc-port={port}", "--allow-http=false", "--allow-metrics=false",
                "--exit-on-error=true", "--strict-readiness=true", "--exit-timeout-secs=10"]
        with open(self.log, "wb") as log_file:
            proc = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        self.proc, self.port, self.starts = proc, port, self.starts + 1
        RUNNING[port] = proc
        try:
            client = triton.InferenceServerClient(f"127.0.0.1:{port}")
            deadline = time.monotonic() + self.ready_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"tritonserver exited with {proc.returncode}:\n{self.log.read_text()[-4000:]}")
                with contextlib.suppress(Exception):
                    if client.is_server_ready(client_timeout=1):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"tritonserver not ready after {self.ready_timeout} s:\n"
                                       f"{self.log.read_text()[-4000:]}")
                time.sleep(0.2)
            client.close()
        except BaseException:
            self.close()
            raise
        return port

    def close(self) -> None:
        if self.proc is not None:
            try:
                stop(self.proc)
            finally:
                RUNNING.pop(self.port, None)
                self.proc = None


@contextlib.contextmanager
def tritonserver(repo: Path, work: Path, ready_timeout: float = 120.0) -> Iterator[tuple[int, Path]]:
    """Serve `repo` (already python-backend) on 127.0.0.1: yields (gRPC port, log file); SIGTERM on exit."""
    server = Server(repo, work, ready_timeout)
    try:
        yield server.start(), server.log
    finally:
        server.close()


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (Triton's graceful stop), then SIGKILL the whole process group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stub processes left behind, if any
    proc.wait(timeout=10)
