"""Stopping a training early keeps the work (issue 32): --max-minutes holds inside a tick longer than the budget,
Ctrl-C writes a snapshot and a training state and says how to resume, a second Ctrl-C quits at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.dataset_tool import convert_dataset
from training.loop import StopRequest, human_bytes
from training.run import main
from training.state import latest_state, read_state_info

REPO = Path(__file__).resolve().parents[1]
TINY = ["--cfg", "cpu", "--batch", "8", "--cbase", "256", "--cmax", "32", "--z-dim", "32", "--w-dim", "32",
        "--map", "2", "--grid", "4x2", "--device", "cpu"]


@pytest.fixture(scope="module")
def shapes16(tmp_path_factory) -> str:
    """64 coloured squares at 16x16 in a zip."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for i in range(64):
        img = np.zeros((16, 16, 4), np.uint8)
        x, y, s = rng.integers(0, 8, 3)
        img[y: y + s + 4, x: x + s + 4] = [*rng.integers(0, 255, 3), 255]
        Image.fromarray(img, "RGBA").save(root / f"{i:03d}.png")
    out = root / "shapes16.zip"
    convert_dataset(str(root), str(out), resolution=16, log=lambda _m: None)
    return str(out)


def test_budget_holds_inside_a_long_tick(shapes16, tmp_path, capsys):
    """A tick of 1000 kimg never ends within --kimg 2; the 0.6 s budget stops the run after a step, with a
    snapshot and a training state (before: it ran on to the tick's end, here all 2 kimg)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "run"
        code = main(["--data", shapes16, "--outdir", str(out), *TINY, "--kimg", "2", "--tick", "1000",
                     "--max-minutes", "0.01"])
    finally:
        torch.set_num_threads(before)
    said = capsys.readouterr().out
    assert code == 0
    assert "stopping: --max-minutes 0.01 reached" in said
    assert f"to continue: python -m training.run --outdir {out} --resume latest" in said
    state = latest_state(str(out))
    nimg = read_state_info(state)["cur_nimg"]
    assert 0 < nimg < 2000                           # stopped inside the first real tick
    assert os.path.isfile(out / f"network-snapshot-{nimg:09d}.safetensors")
    assert "first step:" in said and "a tick (1000 kimg)" in said
    assert "snapshot: network-snapshot-" in said and "the newest 2 are kept" in said


def test_ctrl_c_keeps_the_work_and_says_how_to_resume(shapes16, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "training.run", "--data", shapes16, "--outdir", str(out), *TINY,
                             "--kimg", "50", "--tick", "1000"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:               # wait until it trains (the first step is reported)
            lines.append(line)
            if line.startswith("first step:"):
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    said = "".join(lines) + rest
    assert proc.returncode == 130, said + err
    assert "Ctrl-C: stopping after this step" in err
    assert "stopping: Ctrl-C" in said and f"--outdir {out} --resume latest" in said
    assert "Traceback" not in err
    nimg = read_state_info(latest_state(str(out)))["cur_nimg"]
    assert 0 < nimg < 50_000 and f"stopped at {nimg} images" in said


def test_a_second_ctrl_c_quits_at_once(capsys):
    stop = StopRequest()
    with stop.watching():
        assert signal.getsignal(signal.SIGINT) == stop._on_sigint
        stop._on_sigint(signal.SIGINT, None)
        assert stop.asked and "Ctrl-C again to quit at once" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            stop._on_sigint(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # put back
    assert (human_bytes(637_400_000), human_bytes(1_612_345), human_bytes(12_000), human_bytes(5)) == \
        ("637 MB", "1.61 MB", "12 kB", "5 B")
