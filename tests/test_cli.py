"""The `stylegan` command line, run in-process through `stylegan_sdk.cli.main` (one test spawns a real process).

User errors must exit 2 with exactly one line on stderr and no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES as FIXTURES_DIR
from conftest import NVLABS, nvlabs_checkpoint, stylegan_cli
from PIL import Image

import stylegan_sdk as sg
from stylegan_sdk.cli import main
from stylegan_sdk.formats.checkpoint import save_checkpoint
from stylegan_sdk.latents import seed_to_z
from stylegan_sdk.version import install_hint

PKL = NVLABS / "sg2_skip_32" / "network-snapshot.pkl"
REF_SEEDS = [0, 1, 42, 1234]
RES = 32


run = stylegan_cli   # main(argv) in process -> (exit code, stdout, stderr)


def assert_user_error(code: int, err: str, *words: str) -> str:
    assert code == 2, f"exit {code}, stderr {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert "Traceback" not in err
    assert lines[0].startswith("stylegan")
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """sg2_skip_32 as our checkpoint, written by the library (independent of the pickle importer)."""
    ckpt = nvlabs_checkpoint("sg2_skip_32")
    path = tmp_path_factory.mktemp("model") / "skip32.safetensors"
    save_checkpoint(path, ckpt.config, ckpt.tensors, ckpt.metadata)
    return path


@pytest.fixture(scope="module")
def G(model_path):
    return sg.load(model_path)


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """The official-format snapshot pickle converted by `stylegan convert`."""
    out = tmp_path_factory.mktemp("convert") / "X.safetensors"
    code = main(["convert", str(PKL), "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(NVLABS / "sg2_skip_32" / "reference.npz"))


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.mode == "RGB"
        return np.asarray(img)


# ----------------------------------------------------------------------------
# convert + info


def test_convert_writes_only_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "X.safetensors"
    code, stdout, err = run(capsys, "convert", PKL, "--out", out)
    assert code == 0, err
    assert err == ""
    assert "X.safetensors" in stdout
    assert os.listdir(tmp_path) == ["X.safetensors"]


def test_info_of_converted_model(converted, capsys):
    code, stdout, err = run(capsys, "info", converted)
    assert code == 0, err
    info = json.loads(stdout)
    assert info["info"]["num_ws"] == 8
    assert info["info"]["img_resolution"] == 32
    assert info["info"]["img_channels"] == 3
    assert info["info"]["z_dim"] == 64 and info["info"]["w_dim"] == 64 and info["info"]["c_dim"] == 0
    assert [row["index"] for row in info["info"]["layers"]] == list(range(8))
    assert info["config"]["architecture"] == "skip"
    assert info["num_parameters"] > 0


def test_info_of_the_pickle_itself(capsys):
    code, stdout, err = run(capsys, "info", PKL)
    assert code == 0, err
    assert json.loads(stdout)["info"]["num_ws"] == 8


def test_converted_weights_equal_the_official_state_dict(converted):
    ckpt = sg.load_checkpoint(converted)
    official = dict(np.load(NVLABS / "sg2_skip_32" / "G_state_dict.npz"))
    assert set(ckpt.tensors) == set(official)
    for name, value in official.items():
        assert np.array_equal(ckpt.tensors[name], value.astype(np.float32)), name


def test_converted_model_reproduces_reference(converted, reference):
    assert [int(s) for s in reference["seeds"]] == REF_SEEDS
    img = sg.load(converted).generate(REF_SEEDS, psi=0.7, output="float")
    np.testing.assert_allclose(img, reference["img_psi070_const"], rtol=0, atol=1e-4)


def test_convert_our_checkpoint_to_a_copy(model_path, tmp_path, capsys):
    out = tmp_path / "copy.safetensors"
    code, _, err = run(capsys, "convert", model_path, "--out", out)
    assert code == 0, err
    a, b = sg.load_checkpoint(model_path), sg.load_checkpoint(out)
    assert a.config == b.config
    assert all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


# ----------------------------------------------------------------------------
# generate


def test_generate_writes_one_png_per_seed(G, model_path, tmp_path, capsys):
    outdir = tmp_path / "images"
    code, stdout, err = run(capsys, "generate", "--model", model_path, "--seeds", "0-2,42", "--psi", "0.7",
                            "--outdir", outdir)
    assert code == 0, err
    assert err == ""
    assert sorted(os.listdir(outdir)) == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0042.png"]
    for seed in [0, 1, 2, 42]:
        img = read_png(outdir / f"seed{seed:04d}.png")
        assert img.shape == (RES, RES, 3)
        np.testing.assert_array_equal(img, G.generate(seed, psi=0.7, output="uint8"))


def test_generate_creates_nested_outdir(model_path, tmp_path, capsys):
    outdir = tmp_path / "a" / "b" / "c"
    code, _, err = run(capsys, "generate", "--model", model_path, "--seeds", "7", "--outdir", outdir)
    assert code == 0, err
    assert os.listdir(outdir) == ["seed0007.png"]


def test_generate_from_the_pickle_directly(reference, tmp_path, capsys):
    code, _, err = run(capsys, "generate", "--model", PKL, "--seeds", "1234", "--psi", "0.7", "--outdir", tmp_path)
    assert code == 0, err
    img = read_png(tmp_path / "seed1234.png")
    expected = np.clip(reference["img_psi070_const"][3] * 127.5 + 128, 0, 255).transpose(1, 2, 0)
    assert np.abs(img.astype(int) - expected.astype(np.uint8).astype(int)).max() <= 1


def test_generate_random_noise_is_reproducible(G, model_path, tmp_path, capsys):
    def images(outdir: Path, noise_seed: int) -> list[np.ndarray]:
        code, _, err = run(capsys, "generate", "--model", model_path, "--seeds", "3,4", "--outdir", outdir,
                           "--noise-mode", "random", "--noise-seed", noise_seed)
        assert code == 0, err
        return [read_png(outdir / f"seed{s:04d}.png") for s in (3, 4)]

    first = images(tmp_path / "one", 5)
    again = images(tmp_path / "two", 5)
    other = images(tmp_path / "three", 6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other))
    expected = G.generate([3, 4], noise_mode="random", noise_seed=5, output="uint8")
    np.testing.assert_array_equal(np.stack(first), expected)
    assert not np.array_equal(np.stack(first), G.generate([3, 4], output="uint8"))


# ----------------------------------------------------------------------------
# mix


def cell(grid: np.ndarray, row: int, col: int) -> np.ndarray:
    return grid[row * RES: (row + 1) * RES, col * RES: (col + 1) * RES]


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_mix_grid(G, model_path, tmp_path, capsys, psi):
    rows, cols, layers = [1, 2, 3], [4, 5], [0, 1, 2, 3]
    out = tmp_path / "grid.png"
    code, stdout, err = run(capsys, "mix", "--model", model_path, "--row-seeds", "1,2,3", "--col-seeds", "4,5",
                            "--layers", "0-3", "--psi", psi, "--out", out, "--upscale", "1", "--no-labels")
    assert code == 0, err
    assert os.listdir(tmp_path) == ["grid.png"]
    grid = read_png(out)
    assert grid.shape == ((1 + len(rows)) * RES, (1 + len(cols)) * RES, 3)

    # The same batches as the command (map all seeds at once, mix all cells at once), so the comparison
    # is exact: a different batch composition may move a pixel by one level of float rounding.
    ws = G.map(seed_to_z(rows + cols, G.config.z_dim), psi=psi)
    ws_rows, ws_cols = ws[: len(rows)], ws[len(rows):]
    mixed = G.mix(np.repeat(ws_rows, len(cols), axis=0), np.tile(ws_cols, (len(rows), 1, 1)), layers, output="uint8")
    # Top row: the column seeds as they are; left column: the row seeds as they are.
    col_imgs, row_imgs = G.synthesize(ws_cols, output="uint8"), G.synthesize(ws_rows, output="uint8")
    for j in range(len(cols)):
        np.testing.assert_array_equal(cell(grid, 0, j + 1), col_imgs[j])
    for i in range(len(rows)):
        np.testing.assert_array_equal(cell(grid, i + 1, 0), row_imgs[i])
    # Cell (i, j): row seed i with layers 0-3 taken from column seed j.
    for i in range(len(rows)):
        for j in range(len(cols)):
            expected = mixed[i * len(cols) + j]
            np.testing.assert_array_equal(cell(grid, i + 1, j + 1), expected, err_msg=f"cell ({i}, {j})")
            # ... which is that mix of the two seeds alone, up to float rounding.
            alone = G.mix(ws_rows[i], ws_cols[j], layers, output="uint8").astype(int)
            assert np.abs(alone - expected.astype(int)).max() <= 1
    # The mixed cells differ from both parents (the layers really were swapped).
    assert not np.array_equal(cell(grid, 1, 1), cell(grid, 1, 0))
    assert not np.array_equal(cell(grid, 1, 1), cell(grid, 0, 1))


def test_mix_random_noise_is_reproducible(model_path, tmp_path, capsys):
    def grid(name: str, noise_seed: int) -> np.ndarray:
        out = tmp_path / name
        code, _, err = run(capsys, "mix", "--model", model_path, "--row-seeds", "1,2", "--col-seeds", "4",
                           "--layers", "4-7", "--out", out, "--noise-mode", "random", "--noise-seed", noise_seed)
        assert code == 0, err
        return read_png(out)

    np.testing.assert_array_equal(grid("a.png", 5), grid("b.png", 5))
    assert not np.array_equal(grid("a.png", 5), grid("c.png", 6))


# ----------------------------------------------------------------------------
# User errors: exit 2, one line on stderr, no traceback


def test_missing_model_file(tmp_path, capsys):
    code, _, err = run(capsys, "generate", "--model", tmp_path / "nope.safetensors", "--seeds", "0",
                       "--outdir", tmp_path / "out")
    assert_user_error(code, err, "nope.safetensors")


@pytest.mark.parametrize("command", ["generate", "mix", "info"])
def test_model_that_is_not_a_model(tmp_path, capsys, command):
    text = tmp_path / "readme.txt"
    text.write_text("this is not a network\n")
    argv = {
        "generate": ["generate", "--model", text, "--seeds", "0", "--outdir", tmp_path / "out"],
        "mix": ["mix", "--model", text, "--row-seeds", "1", "--col-seeds", "2", "--layers", "0",
                "--out", tmp_path / "g.png"],
        "info": ["info", text],
    }[command]
    code, _, err = run(capsys, *argv)
    assert_user_error(code, err, "readme.txt")
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("seeds", ["a-b", "3-1", "", "1,,2", "-5", "4294967296"])
def test_bad_seeds(model_path, tmp_path, capsys, seeds):
    code, _, err = run(capsys, "generate", "--model", model_path, "--seeds", seeds, "--outdir", tmp_path / "out")
    assert_user_error(code, err, "seeds")
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("option, value", [("--row-seeds", "x"), ("--col-seeds", "1-")])
def test_bad_mix_seeds(model_path, tmp_path, capsys, option, value):
    argv = {"--row-seeds": "1", "--col-seeds": "2", option: value}
    code, _, err = run(capsys, "mix", "--model", model_path, "--row-seeds", argv["--row-seeds"],
                       "--col-seeds", argv["--col-seeds"], "--layers", "0-3", "--out", tmp_path / "g.png")
    assert_user_error(code, err, option.lstrip("-"))
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("layers", ["0-99", "8", "x", "3-1"])
def test_layers_out_of_range_or_malformed(model_path, tmp_path, capsys, layers):
    code, _, err = run(capsys, "mix", "--model", model_path, "--row-seeds", "1", "--col-seeds", "2",
                       "--layers", layers, "--out", tmp_path / "g.png")
    assert_user_error(code, err, "layers")
    assert not (tmp_path / "g.png").exists()


def test_unknown_noise_mode(model_path, tmp_path, capsys):
    code, _, err = run(capsys, "generate", "--model", model_path, "--seeds", "0", "--outdir", tmp_path,
                       "--noise-mode", "loud")
    assert_user_error(code, err, "noise-mode", "loud")


@pytest.mark.parametrize("command", ["generate", "mix"])
def test_class_for_unconditional_model(model_path, tmp_path, capsys, command):
    if command == "generate":
        argv = ["generate", "--model", model_path, "--seeds", "0", "--outdir", tmp_path, "--class", "1"]
    else:
        argv = ["mix", "--model", model_path, "--row-seeds", "1", "--col-seeds", "2", "--layers", "0",
                "--out", tmp_path / "g.png", "--class", "1"]
    code, _, err = run(capsys, *argv)
    assert_user_error(code, err, "unconditional")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_outdir_cannot_be_created(model_path, tmp_path, capsys, where):
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    outdir = regular / "images" if where == "under-a-file" else regular
    code, _, err = run(capsys, "generate", "--model", model_path, "--seeds", "0", "--outdir", outdir)
    assert_user_error(code, err, "outdir")
    assert regular.read_text() == "x"


def test_mix_out_in_missing_folders_makes_them(model_path, tmp_path, capsys):
    out = tmp_path / "missing" / "new" / "g.png"
    code, stdout, err = run(capsys, "mix", "--model", model_path, "--row-seeds", "1", "--col-seeds", "2",
                            "--layers", "0", "--out", out)
    assert code == 0, err
    assert err == "" and "g.png" in stdout
    assert os.listdir(out.parent) == ["g.png"]
    labelled = read_png(out)  # the default: tiles shown 4x (32 px model) with a title and seeds
    assert labelled.shape[0] > 2 * 4 * RES and labelled.shape[1] > 2 * 4 * RES
    assert "shown 4x, nearest neighbour" in stdout
    raw = tmp_path / "raw.png"
    assert run(capsys, "mix", "--model", model_path, "--row-seeds", "1", "--col-seeds", "2", "--layers", "0",
               "--out", raw, "--upscale", "1", "--no-labels")[0] == 0
    tiles = read_png(raw)
    assert tiles.shape == (2 * RES, 2 * RES, 3)
    # Somewhere in the labelled picture: the mixed cell, every pixel a 4x4 block.
    mixed = cell(tiles, 1, 1).repeat(4, axis=0).repeat(4, axis=1)
    found = [(y, x) for y in range(labelled.shape[0] - 4 * RES + 1) for x in range(labelled.shape[1] - 4 * RES + 1)
             if labelled[y, x, 0] == mixed[0, 0, 0] and np.array_equal(labelled[y: y + 4 * RES, x: x + 4 * RES], mixed)]
    assert len(found) == 1


@pytest.mark.parametrize("option, value, word", [
    ("--psi", "nan", "psi"),
    ("--psi", "abc", "psi"),
    ("--cutoff", "99", "cutoff"),
    ("--noise-seed", "-1", "noise_seed"),
    ("--backend", "tensorflow", "backend"),
])
def test_bad_option_values(model_path, tmp_path, capsys, option, value, word):
    code, _, err = run(capsys, "generate", "--model", model_path, "--seeds", "0", "--outdir", tmp_path,
                       "--noise-mode", "random", option, value)
    assert_user_error(code, err, word)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv", [
    [],
    ["generate"],
    ["generate", "--seeds", "0", "--outdir", "x"],
    ["mix", "--model", "m.safetensors", "--row-seeds", "1"],
    ["convert", "a.pkl"],
    ["info"],
    ["paint", "--model", "m.safetensors"],
], ids=["no-command", "generate-bare", "generate-no-model", "mix-partial", "convert-no-out", "info-no-model",
        "unknown-command"])
def test_missing_required_args(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert_user_error(code, err)
    assert os.listdir(tmp_path) == []


def _corrupt_sources(model_path: Path, folder: Path) -> dict[str, Path]:
    data = model_path.read_bytes()
    pkl = PKL.read_bytes()
    files = {
        "truncated-checkpoint": data[: len(data) // 2],
        "truncated-pickle": pkl[: len(pkl) // 2],
        "text": b"hello, world\n",
        "random": np.random.RandomState(3).bytes(2048),
        "empty": b"",
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name}.bin"
        paths[name].write_bytes(content)
    return paths


@pytest.mark.parametrize("kind", ["truncated-checkpoint", "truncated-pickle", "text", "random", "empty"])
def test_convert_corrupt_file_writes_nothing(model_path, tmp_path, capsys, kind):
    src = _corrupt_sources(model_path, tmp_path)[kind]
    before = sorted(os.listdir(tmp_path))
    out = tmp_path / "out.safetensors"
    code, _, err = run(capsys, "convert", src, "--out", out)
    assert_user_error(code, err, src.name)
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == before, "convert left a file behind"


def test_convert_keeps_existing_out_when_source_is_bad(model_path, tmp_path, capsys):
    out = tmp_path / "out.safetensors"
    out.write_bytes(model_path.read_bytes())
    src = tmp_path / "bad.pkl"
    src.write_bytes(PKL.read_bytes()[:1000])
    code, _, err = run(capsys, "convert", src, "--out", out)
    assert_user_error(code, err)
    assert out.read_bytes() == model_path.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["bad.pkl", "out.safetensors"]


def test_convert_checkpoint_with_missing_tensor_writes_nothing(model_path, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(model_path), framework="numpy") as f:
        header = f.metadata()
    tensors = load_file(str(model_path))
    del tensors["synthesis.b8.conv0.weight"]
    src = tmp_path / "partial.safetensors"
    save_file(tensors, str(src), metadata=header)
    out = tmp_path / "out.safetensors"
    code, _, err = run(capsys, "convert", src, "--out", out)
    assert_user_error(code, err, "synthesis.b8.conv0.weight")
    assert not out.exists()


def test_convert_missing_source_and_missing_out_folder(model_path, tmp_path, capsys):
    code, _, err = run(capsys, "convert", tmp_path / "nope.pkl", "--out", tmp_path / "o.safetensors")
    assert_user_error(code, err, "nope.pkl")
    code, _, err = run(capsys, "convert", tmp_path / "nope.pkl", "--out", tmp_path / "no-folder" / "o.safetensors")
    assert_user_error(code, err, "nope.pkl")
    assert os.listdir(tmp_path) == []
    # A good source: the missing folders are made, as `generate --outdir` does.
    code, _, err = run(capsys, "convert", model_path, "--out", tmp_path / "no-folder" / "sub" / "o.safetensors")
    assert code == 0, err
    assert os.listdir(tmp_path / "no-folder" / "sub") == ["o.safetensors"]
    assert sg.load_checkpoint(tmp_path / "no-folder" / "sub" / "o.safetensors").config == \
        sg.load_checkpoint(model_path).config


# ----------------------------------------------------------------------------
# The real entry point


def test_python_dash_m_entry_point(model_path, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    ok = subprocess.run([sys.executable, "-m", "stylegan_sdk", "info", str(model_path)],
                        capture_output=True, text=True, timeout=120, env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["info"]["num_ws"] == 8

    bad = subprocess.run([sys.executable, "-m", "stylegan_sdk", "generate", "--model", str(tmp_path / "nope.pkl"),
                          "--seeds", "0", "--outdir", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "Traceback" not in bad.stderr and "nope.pkl" in bad.stderr


def test_stylegan1_through_the_cli(tmp_path):
    """A rosinality StyleGAN v1 checkpoint converts, generates and mixes like a StyleGAN2 one."""
    import stylegan_sdk as sg
    from stylegan_sdk.cli import main as cli_main

    src = FIXTURES_DIR / "rosinality-stylegan1" / "v1_32" / "checkpoint.model"
    out = tmp_path / "v1.safetensors"
    assert cli_main(["convert", str(src), "--out", str(out)]) == 0
    G = sg.load(out)
    assert G.info.arch == "stylegan1" and G.info.img_resolution == 32
    assert cli_main(["generate", "--model", str(out), "--seeds", "0,1", "--psi", "0.7",
                     "--outdir", str(tmp_path / "gen")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "gen" / "seed0001.png")),
                                  G.generate(1, psi=0.7, output="uint8"))
    grid_path = tmp_path / "grid.png"
    assert cli_main(["mix", "--model", str(out), "--row-seeds", "1,2", "--col-seeds", "3,4,5",
                     "--layers", "0-3", "--out", str(grid_path), "--upscale", "1", "--no-labels"]) == 0
    grid = np.asarray(Image.open(grid_path))
    assert grid.shape == (3 * 32, 4 * 32, 3)
    ws = G.map(sg.seed_to_z([1, 2, 3, 4, 5], G.info.z_dim))
    cell = grid[2 * 32: 3 * 32, 3 * 32: 4 * 32]  # row seed 2, column seed 5
    np.testing.assert_array_equal(cell, G.mix(ws[1], ws[4], [0, 1, 2, 3], output="uint8"))


# ----------------------------------------------------------------------------
# Issue 11: every argument checked before the disk is touched; missing folders made; install hints


def run_cli(*argv, prelude: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real `stylegan` command line in a fresh interpreter (`prelude` runs first, e.g. to hide torch)."""
    code = f"import sys\n{prelude}\nfrom stylegan_sdk.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-c", code, *[str(a) for a in argv]], capture_output=True, text=True,
                          timeout=120, env=env, cwd=str(cwd) if cwd else None)


def assert_one_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    return assert_user_error(proc.returncode, proc.stderr, *words)


# sys.modules[name] = None is what a missing package looks like to `import name` (ModuleNotFoundError).
NO_TORCH = "sys.modules['torch'] = None"


@pytest.mark.parametrize("option, value, word", [
    ("--psi", "nan", "psi"),
    ("--psi", "inf", "psi"),
    ("--cutoff", "99", "cutoff"),
    ("--noise-seed", "-1", "noise_seed"),
    ("--class", "1", "unconditional"),
    ("--backend", "tensorflow", "backend"),
    ("--device", "tpu", "device"),
])
def test_generate_bad_argument_makes_no_outdir(model_path, tmp_path, capsys, option, value, word):
    outdir = tmp_path / "new" / "D"
    code, _, err = run(capsys, "generate", "--model", model_path, "--seeds", "0-3", "--outdir", outdir,
                       "--noise-mode", "random", option, value)
    assert_user_error(code, err, word)
    assert os.listdir(tmp_path) == [], "a folder appeared although nothing was written"


def test_generate_psi_nan_real_process_leaves_no_folder(model_path, tmp_path):
    proc = run_cli("generate", "--model", model_path, "--seeds", "0", "--psi", "nan", "--outdir", "D", cwd=tmp_path)
    assert_one_line(proc, "psi")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv, word", [
    (["--row-seeds", "x", "--col-seeds", "2", "--layers", "0"], "row-seeds"),
    (["--row-seeds", "1", "--col-seeds", "2", "--layers", "0-99"], "layers"),
    (["--row-seeds", "1", "--col-seeds", "2", "--layers", "0", "--psi", "nan"], "psi"),
    (["--row-seeds", "1", "--col-seeds", "2", "--layers", "0", "--class", "3"], "unconditional"),
])
def test_mix_bad_argument_makes_no_folder(model_path, tmp_path, capsys, argv, word):
    code, _, err = run(capsys, "mix", "--model", model_path, *argv, "--out", tmp_path / "a" / "new" / "x.png")
    assert_user_error(code, err, word)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", ["convert", "mix"])
def test_out_that_cannot_be_a_file_is_labelled_out(model_path, tmp_path, capsys, command):
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    (tmp_path / "folder").mkdir()
    mix = ["--model", model_path, "--row-seeds", "1", "--col-seeds", "2", "--layers", "0"]
    for out, word in [(regular / "x", "is not a folder"), (tmp_path / "folder", "is a folder"), ("", "empty")]:
        argv = ["convert", model_path, "--out", out] if command == "convert" else ["mix", *mix, "--out", out]
        code, _, err = run(capsys, *argv)
        line = assert_user_error(code, err, word)
        assert line.startswith(f"stylegan {command}: error: out: "), line
        assert "path:" not in line
    assert regular.read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["file.txt", "folder"] and os.listdir(tmp_path / "folder") == []


def test_outdir_under_a_file_is_refused_before_the_model_loads(tmp_path, capsys):
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    # The model does not exist either: the output is checked first, so the error names --outdir.
    code, _, err = run(capsys, "generate", "--model", tmp_path / "nope.safetensors", "--seeds", "0",
                       "--outdir", regular / "images")
    assert_user_error(code, err, "outdir", "is not a folder")


@pytest.mark.parametrize("argv", [
    ["convert", PKL, "--out", "{tmp}/new/x.safetensors"],
    ["info", PKL],
    ["generate", "--model", PKL, "--seeds", "0", "--outdir", "{tmp}/new"],
], ids=["convert", "info", "generate"])
def test_commands_without_torch_say_what_to_install(tmp_path, argv):
    proc = run_cli(*[str(a).format(tmp=tmp_path) for a in argv], prelude=NO_TORCH)
    line = assert_one_line(proc, "torch")
    assert install_hint("torch") in line, line
    assert os.listdir(tmp_path) == []


def test_convert_our_checkpoint_without_torch_says_what_to_install(model_path, tmp_path):
    proc = run_cli("convert", model_path, "--out", tmp_path / "x.safetensors", prelude=NO_TORCH)
    assert install_hint("torch") in assert_one_line(proc, "torch")
    assert os.listdir(tmp_path) == []


def test_info_of_our_checkpoint_needs_no_torch(model_path):
    proc = run_cli("info", model_path, prelude=NO_TORCH)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["info"]["num_ws"] == 8


def test_version():
    from importlib.metadata import version

    proc = subprocess.run([sys.executable, "-m", "stylegan_sdk", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"stylegan {version('stylegan-sdk')}"
    assert sg.__version__ == version("stylegan-sdk")


# ----------------------------------------------------------------------------
# Sub-commands from other packages: entry points in the group stylegan_sdk.commands


def _echo_plugin(argv: list[str], prog: str) -> int:
    """A stand-in plugin: prints what it got."""
    print(json.dumps({"argv": argv, "prog": prog}))
    return 7


def _entry(name: str, value: str):
    from importlib.metadata import EntryPoint

    from stylegan_sdk.cli import PLUGIN_GROUP

    return EntryPoint(name=name, value=value, group=PLUGIN_GROUP)


def test_serve_is_an_installed_entry_point():
    from importlib.metadata import entry_points

    serve = [ep for ep in entry_points(group="stylegan_sdk.commands") if ep.name == "serve"]
    assert [ep.value for ep in serve] == ["serving.cli:main"]


def test_help_lists_serve_and_serve_help_works(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "serve" in out and "--version" in out
    code, out, err = run(capsys, "serve", "--help")
    assert code == 0, err
    assert out.startswith("usage: stylegan serve")


def test_library_cli_does_not_import_serving():
    import re

    source = (Path(sg.__file__).parent / "cli.py").read_text() + (Path(sg.__file__).parent / "_cli.py").read_text()
    assert not re.search(r"\bserving\.|(from|import) serving\b", source)
    code = ("import sys\nfrom stylegan_sdk.cli import build_parser, plugin_commands\n"
            "build_parser(list(plugin_commands())).format_help()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'serving'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_plugin_gets_argv_and_prog(capsys, monkeypatch):
    import stylegan_sdk.cli as cli

    monkeypatch.setattr(cli, "plugin_commands", lambda: {"echo": _entry("echo", "test_cli:_echo_plugin")})
    code, out, err = run(capsys, "echo", "--x", "1")
    assert code == 7, err
    assert json.loads(out) == {"argv": ["--x", "1"], "prog": "stylegan echo"}
    code, out, _ = run(capsys, "--help")
    assert "echo" in out


def test_serve_without_the_plugin_says_what_to_install(capsys, monkeypatch):
    import stylegan_sdk.cli as cli

    monkeypatch.setattr(cli, "plugin_commands", lambda: {})
    code, _, err = run(capsys, "serve", "--model", "x")
    line = assert_user_error(code, err, "serve", install_hint())
    assert line.startswith("stylegan serve: error:")
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "serve" in out      # still listed


def test_plugin_that_fails_to_import_is_one_line(capsys, monkeypatch):
    import stylegan_sdk.cli as cli

    monkeypatch.setattr(cli, "plugin_commands", lambda: {"serve": _entry("serve", "no_such_module_xyz:main")})
    code, _, err = run(capsys, "serve")
    assert_user_error(code, err, "no_such_module_xyz", install_hint())
