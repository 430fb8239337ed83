"""training/gpu_emoji64.sh, the prepared command for a lent GPU, planned on the CPU (SMOKE=1): the same steps
with a tiny network and a made-up 64 px data set, so that the one call on the device runs what was tested."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import stylegan_sdk as sg

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "gpu_emoji64.sh"


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable, "OUT": str(tmp_path / "out"),
            "DATA": str(tmp_path / "no-data.zip"), **env}
    return subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env=full, capture_output=True, text=True, timeout=300)


def test_smoke_run_leaves_a_loadable_64px_snapshot_and_its_files(tmp_path):
    r = _run(tmp_path, SMOKE="1", MINUTES="0")
    out = tmp_path / "out"
    assert r.returncode == 0, (r.stdout, r.stderr, (out / "run.log").read_text())
    log = (out / "run.log").read_text()
    assert "stopping: --max-minutes 0 reached" in log and "# training exit code 0" in log
    assert {p.name for p in out.iterdir()} == {"run.log", "network-snapshot.safetensors", "fakes.png", "reals.png",
                                               "stats.jsonl", "training_options.json", "training-state.safetensors"}
    opts = json.loads((out / "training_options.json").read_text())
    assert (opts["resolution"], opts["mirror"], opts["cond"], opts["aug"], opts["max_minutes"]) == (64, True, False,
                                                                                                  "ada", 0.0)
    G = sg.load(str(out / "network-snapshot.safetensors"))
    assert [img.size for img in G.generate([0, 1], psi=0.7)] == [(64, 64), (64, 64)]   # PIL images


def test_without_cuda_it_says_so_and_trains_nothing(tmp_path):
    data = tmp_path / "emoji64.zip"
    data.write_bytes(b"")   # present (the data check comes first), never read
    r = _run(tmp_path, DATA=str(data), CUDA_VISIBLE_DEVICES="")   # no GPU visible, on any machine
    assert r.returncode == 1
    assert r.stderr.strip() == "gpu_emoji64.sh: no CUDA device here (SMOKE=1 plans the run on the CPU)"
    assert not list((tmp_path / "out").glob("*.safetensors"))


def test_missing_data_is_one_line_and_exit_2(tmp_path):
    r = _run(tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("gpu_emoji64.sh: error: no data at ")
    assert not (tmp_path / "out").exists()
