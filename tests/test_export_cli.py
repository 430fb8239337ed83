"""`stylegan export onnx|tensorrt|triton`: the installed command writes what export/to_*.py write, checks its
arguments first, and says in one line what to install when an optional package is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, stylegan_cli

from stylegan_sdk.cli import main as stylegan

PKL = FIXTURES / "nvlabs-stylegan2" / "sg2_skip_32" / "network-snapshot.pkl"




def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _comparable_manifest(folder: Path) -> dict:
    manifest = json.loads((folder / "model.json").read_text())
    manifest.pop("created", None)
    return manifest


def test_export_onnx_writes_what_the_script_writes(tmp_path, capsys, to_onnx_run):
    """`stylegan export onnx` in process, and `python export/to_onnx.py` in a real process (the session's run)."""
    assert stylegan(["export", "onnx", str(PKL), "--out", str(tmp_path / "cmd"), "--no-verify"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {tmp_path / 'cmd'} (stylegan2, 32px, num_ws=8, opset 18)")
    run, script = to_onnx_run
    assert run.returncode == 0 and run.args[2] == str(PKL), run.stderr
    assert run.stdout.startswith(f"wrote {script} (stylegan2, 32px, num_ws=8, opset 18)")
    cmd = tmp_path / "cmd"
    assert sorted(p.name for p in cmd.iterdir()) == sorted(p.name for p in script.iterdir()) == \
        ["mapping.onnx", "model.json", "style_affines.safetensors", "synthesis.onnx"]
    assert _comparable_manifest(cmd) == _comparable_manifest(script)   # the graphs' sha256 sums included


@pytest.mark.parametrize("argv, needle", [
    ([], "the following arguments are required: target"),
    (["pdf"], "invalid choice: 'pdf'"),
    (["onnx", str(PKL)], "the following arguments are required: --out"),
    (["triton", "default", "--out", "{tmp}/repo", "--max-batch", "0"], "--max-batch: must be"),
    (["triton", "default", "--out", "{tmp}/repo", "--name", "a/b"], "--name: 'a/b'"),
    (["tensorrt", "{tmp}", "--out", "{tmp}/e", "--min-batch", "0"], "min-batch"),
    (["onnx", "{tmp}/missing.pkl", "--out", "{tmp}/x"], "no such model file"),
])
def test_export_argument_errors_one_line_exit_2(tmp_path, capsys, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = stylegan_cli(capsys, "export", *argv)
    assert code == 2
    line = _one_line(err)
    assert line.startswith("stylegan export") and needle in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == []            # nothing written


def test_export_is_listed_in_help(capsys):
    with pytest.raises(SystemExit) as e:
        stylegan(["--help"])
    assert e.value.code == 0
    assert "export" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        stylegan(["export", "--help"])
    out = capsys.readouterr().out
    assert all(target in out for target in ("onnx", "tensorrt", "triton"))


def test_export_onnx_without_torch_names_what_to_install(tmp_path):
    """A torch-free install (the core, or the client extra): one line naming the extra, exit 2, nothing written."""
    code = ("import sys\n"
            "sys.modules['torch'] = None  # import torch -> ImportError, whatever is installed\n"
            "from stylegan_sdk.cli import main\n"
            f"sys.exit(main(['export', 'onnx', {str(PKL)!r}, '--out', {str(tmp_path / 'out')!r}]))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    line = _one_line(run.stderr)
    assert line.startswith("stylegan export onnx: error:") and "torch" in line and "[export]" in line, line
    assert not (tmp_path / "out").exists()
