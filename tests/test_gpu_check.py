"""benchmarks/gpu_check.sh (the one command for a lent GPU machine) and benchmarks/gpu_parity.py, on the CPU:
the dry run ends cleanly with every part skipped, the parity script reproduces the NVlabs fixtures, and the
bench tables are read against the targets."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from conftest import NVLABS_CONFIGS

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
PARITY = REPO / "benchmarks" / "gpu_parity.py"
PARTS = ("part 1: tests", "part 2: parity", "part 3: benchmarks")
NUMBER = r"([0-9.]+e[+-][0-9]+)"


def _parity_module():
    spec = importlib.util.spec_from_file_location("gpu_parity", PARITY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPU_CHECK_", "BENCH_", "PYTEST_ARGS"))}
    env.update(OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    if torch.cuda.is_available():  # keep this test a fast dry run wherever it runs
        env["GPU_CHECK_NO_CUDA"] = "1"
    return env


def test_quick_dry_run_skips_every_part_without_cuda(tmp_path):
    run = subprocess.run(["bash", str(SCRIPT), "--quick"], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    out = tmp_path / "out"
    md = (out / "gpu_check.md").read_text()
    assert "FAILED" not in md, md
    for part in PARTS:
        assert re.search(rf"^\| {part} \| skipped: no CUDA \(.+\) \| - \|", md, re.M), (part, md)
        assert f"== {part}: skipped: no CUDA" in run.stdout
    sections = re.split(r"^## ", md, flags=re.M)
    for title in ("Part 1: CUDA and TensorRT tests", "Part 2: parity", "Part 3: benchmarks"):
        body = next(s for s in sections if s.startswith(title))
        assert "\nskipped: no CUDA (" in body, (title, body)
    # the machine as far as this one has it
    for needle in ("nvidia-smi", "- torch: ", "CUDA available: False" if not torch.cuda.is_available() else "- torch",
                   "- onnxruntime: ", "providers: ", "- tensorrt: ", "- stylegan_sdk: ", "- wheels: ", "- install: ",
                   "targets: >= 1,400 img/s at 1024 px fp16, batch-1 latency < 3 ms"):
        assert needle in md, (needle, md)
    assert "| setup | ok | 0 |" in md
    # what comes back from a device run: at most 8 files, none deeper than the folder itself
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu_check.md", "part1_tests.log", "part2_parity.log", "part3_bench.log", "setup.log"]


def test_bad_argument_exits_2(tmp_path):
    run = subprocess.run(["bash", str(SCRIPT), "--nope"], env=_env(tmp_path), capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and "unknown argument '--nope'" in run.stderr
    assert not (tmp_path / "out").exists()


def test_parity_script_on_cpu_reproduces_the_fixtures():
    run = subprocess.run([sys.executable, str(PARITY), "--device", "cpu"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for name in NVLABS_CONFIGS:
        pattern = (rf"^parity: fixture {name}, torch fp32 on cpu vs stored reference: max\|d\| ws {NUMBER}, "
                   rf"img const {NUMBER}, img none {NUMBER} \(tol 1e-04\) ok$")
        found = [m for m in map(re.compile(pattern).match, lines) if m]
        assert len(found) == 1, (name, run.stdout)
        assert all(float(x) <= 1e-4 for x in found[0].groups()), found[0].group(0)
    ort = [m for m in map(re.compile(rf"^parity: onnxruntime CPU vs torch fp32 on cpu, fixture sg2_skip_32: "
                                     rf"max\|d\| ws {NUMBER}, img const {NUMBER}, img none {NUMBER} "
                                     rf"\(tol 1e-04\) ok$").match, lines) if m]
    assert len(ort) == 1 and all(float(x) <= 1e-4 for x in ort[0].groups()), run.stdout
    assert sum("fp16 vs fp32" in line and "skipped: fp16 needs CUDA" in line for line in lines) == 3, run.stdout
    assert "parity: tensorrt fp32/fp16 vs torch: skipped: TensorRT needs CUDA" in lines
    assert lines[-1] == "parity: all checks within tolerance"
    assert "error" not in run.stdout


def test_bench_tables_against_the_targets():
    check_targets = _parity_module().check_targets
    log = "\n".join([
        "machine: some GPU",
        "| model | backend | batch-1 p50 ms | batch-1 p90 ms | img/s @1 | img/s @32 |",
        "| --- | --- | --- | --- | --- | --- |",
        "| config-f 256px (14 ws) | torch-fp16 | 1.0 | 1.2 | 900.00 | 9000.00 |",
        "| config-f 1024px (18 ws) | torch-fp16 | 2.5 | 2.9 | 390.00 | 1500.00 |",
        "| config-f 1024px (18 ws) | torch | 9.0 | 9.5 | 110.00 | 120.00 |",
        "# tensorrt: skipped (TensorRT is not installed)",
        "| model | backend | batch-1 p50 ms | batch-1 p90 ms | img/s @1 | img/s @32 |",
        "| --- | --- | --- | --- | --- | --- |",
        "| config-f 1024px (18 ws) | torch-fp16-compile | 4.0 | 4.5 | 250.00 | 1,200.50 |",
    ])
    assert check_targets(log) == [
        "target: config-f 1024px (18 ws) torch-fp16: batch-1 p50 2.5 ms (MEETS < 3 ms); "
        "1,500.0 img/s @32 (MEETS >= 1,400 img/s)",
        "target: config-f 1024px (18 ws) torch-fp16-compile: batch-1 p50 4 ms (misses < 3 ms); "
        "1,200.5 img/s @32 (misses >= 1,400 img/s)",
    ]
    assert check_targets("machine: x\n")[0].startswith("target: no 1024 px fp16 row")
