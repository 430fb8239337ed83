"""`stylegan directions sefa|ganspace` and `stylegan edit` (issue 34), in process through conftest's stylegan_cli, and
the demo's edit figure on an in-process Generator (the same methods as the client the demo runs on)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import stylegan_cli
from PIL import Image

import stylegan_sdk as sg
from stylegan_sdk import demo
from stylegan_sdk.editing.directions import model_identity
from stylegan_sdk.latents import seed_to_z

RES = 32


def one_line_error(code: int, err: str, prog: str, *words: str) -> str:
    assert code == 2, f"exit {code}, stderr {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def skip32_file(tmp_path_factory) -> Path:
    """sg2_skip_32 as our checkpoint file (torch backend), once for the module."""
    from conftest import nvlabs_checkpoint

    ckpt = nvlabs_checkpoint("sg2_skip_32")
    path = tmp_path_factory.mktemp("model") / "skip32.safetensors"
    sg.save_checkpoint(path, ckpt.config, ckpt.tensors, ckpt.metadata)
    return path


@pytest.fixture(scope="module")
def G(skip32_file):
    return sg.load(skip32_file)


@pytest.fixture(scope="module")
def sefa_file(skip32_file, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sets") / "sefa.safetensors"
    sg.sefa(skip32_file, k=4).save(path)
    return path


# ----------------------------------------------------------------------------
# stylegan directions


def test_directions_sefa_writes_the_set_sg_sefa_computes(skip32_file, tmp_path, capsys):
    out = tmp_path / "a" / "new" / "sefa.safetensors"
    code, stdout, err = stylegan_cli(capsys, "directions", "sefa", skip32_file, "--out", out, "-k", "4",
                                     "--layers", "coarse", "--convention", "rosinality")
    assert code == 0, err
    d = sg.load_directions(out)
    ref = sg.sefa(skip32_file, k=4, layers="0-3", convention="rosinality")
    assert d.kind == "sefa" and len(d) == 4 and d.layers == (0, 1, 2, 3) and d.names == ref.names
    np.testing.assert_array_equal(d.vectors, ref.vectors)
    np.testing.assert_array_equal(d.values, ref.values)
    assert d.meta["convention"] == "rosinality"
    assert stdout.count("\n") == 1 and stdout.startswith(f"wrote {out}: sefa, 4 directions (sefa0..sefa3), ws rows 0-3")
    assert f"eigenvalues {ref.values[0]:.3g}" in stdout


def test_directions_ganspace_writes_the_set_sg_ganspace_computes(skip32_file, G, tmp_path, capsys):
    out = tmp_path / "pcs.safetensors"
    code, stdout, err = stylegan_cli(capsys, "directions", "ganspace", skip32_file, "--out", out, "-k", "3",
                                     "--samples", "600", "--seed", "5")
    assert code == 0, err
    d = sg.load_directions(out)
    ref = sg.ganspace(G, k=3, samples=600, seed=5)
    assert d.kind == "ganspace" and len(d) == 3 and d.layers is None and d.meta["samples"] == 600
    np.testing.assert_allclose(d.vectors, ref.vectors, atol=1e-5)
    np.testing.assert_allclose(d.mean, ref.mean, rtol=1e-6)
    assert "ganspace, 3 directions (pc0..pc2), every ws row, 600 samples, seed 5" in stdout
    assert "ganspace: mapped z 600/600 (100%)" in err     # progress on stderr, the result on stdout


def test_directions_of_the_bundled_model(tmp_path, capsys):
    """'default' as every command resolves it: SeFa reads the bundled checkpoint's affines, GANSpace maps through
    the bundled exported folder; both sets belong to the bundled model (same w_avg as its export)."""
    bundled = sg.load("default")
    identity = model_identity(bundled.config, bundled.w_avg)
    code, stdout, err = stylegan_cli(capsys, "directions", "sefa", "default", "--out", tmp_path / "s.safetensors")
    assert code == 0, err
    sefa = sg.load_directions(tmp_path / "s.safetensors")
    assert len(sefa) == 10 and sefa.layers is None and sefa.model == identity
    assert "sefa, 10 directions" in stdout and "genforce convention, 8 style affines" in stdout
    code, stdout, err = stylegan_cli(capsys, "directions", "ganspace", "default", "--out", tmp_path / "g.safetensors",
                                     "-k", "5", "--samples", "3000")
    assert code == 0, err
    pcs = sg.load_directions(tmp_path / "g.safetensors")
    assert len(pcs) == 5 and pcs.layers is None and pcs.model == identity and pcs.meta["samples"] == 3000
    assert np.all(np.diff(pcs.values) <= 0)


@pytest.mark.parametrize("argv, words", [
    (["sefa", "{model}", "-k", "0"], ["-k: must be an int in 1..64 (w_dim), got 0"]),
    (["sefa", "{model}", "--layers", "0-20"], ["--layers:", "out of range"]),
    (["sefa", "{missing}"], ["no such model file"]),
    (["ganspace", "{model}", "--samples", "5"], ["--samples: must be an int in 11.."]),
    (["ganspace", "{model}", "--seed", "-1"], ["--seed: must be an int in 0..2**32-1"]),
    (["sefa", "{model}", "--out", "{blocked}/x.safetensors"], ["out: cannot create", "is not a folder"]),
])
def test_directions_argument_errors_are_one_line_and_write_nothing(skip32_file, tmp_path, capsys, argv, words):
    (tmp_path / "file").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    fill = {"model": str(skip32_file), "missing": str(tmp_path / "missing.pkl"), "blocked": str(tmp_path / "file")}
    argv = [a.format(**fill) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "new" / "set.safetensors")]
    code, _, err = stylegan_cli(capsys, "directions", *argv)
    one_line_error(code, err, f"stylegan directions {argv[0]}", *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# ----------------------------------------------------------------------------
# stylegan edit


def tiles(picture: np.ndarray, rows: int, cols: int, size: int) -> list[list[np.ndarray]]:
    """The tiles of an unlabelled grid (no padding), each brought back to the model's resolution."""
    f = size // RES
    return [[picture[r * size: (r + 1) * size: f, c * size: (c + 1) * size: f] for c in range(cols)]
            for r in range(rows)]


def test_edit_grid_rows_seeds_columns_strengths(G, sefa_file, tmp_path, capsys):
    seeds, strengths = [0, 7, 42], [-3.0, -1.5, 0.0, 1.5, 3.0]
    out = tmp_path / "grid" / "edit.png"
    code, stdout, err = stylegan_cli(capsys, "edit", "--model", G.source, "--directions", sefa_file,
                                     "--seeds", "0,7,42", "--direction", "1", "--strengths", "-3,-1.5,0,1.5,3",
                                     "--upscale", "2", "--no-labels", "--out", out)
    assert code == 0, err
    assert stdout.strip() == (f"wrote {out} (3 seeds x 5 strengths of sefa direction 1 'sefa1' on every ws row, "
                              f"shown 2x, nearest neighbour)")
    picture = np.asarray(Image.open(out))
    assert picture.shape == (3 * 2 * RES, 5 * 2 * RES, 3)
    grid = tiles(picture, 3, 5, 2 * RES)
    assert all(np.array_equal(t.repeat(2, 0).repeat(2, 1), picture[r * 64: r * 64 + 64, c * 64: c * 64 + 64])
               for r, row in enumerate(grid) for c, t in enumerate(row))    # nearest neighbour
    d = sg.load_directions(sefa_file)
    ws = G.map(seed_to_z(seeds, G.config.z_dim), psi=0.7)                   # --psi's default: 0.7
    for r, seed in enumerate(seeds):
        np.testing.assert_array_equal(grid[r][2], G.generate(seed, psi=0.7, output="uint8"))  # strength 0
        for c, s in enumerate(strengths):
            np.testing.assert_array_equal(grid[r][c], G.synthesize(G.edit(ws[r], d, {1: s}), output="uint8"))
    assert not np.array_equal(grid[0][0], grid[0][4])


def test_edit_labels_upscale_layers_and_direction_names(G, sefa_file, tmp_path, capsys):
    out = tmp_path / "labelled.png"
    code, stdout, err = stylegan_cli(capsys, "edit", "--model", G.source, "--directions", sefa_file, "--seeds", "3-4",
                                     "--direction", "sefa0", "--strengths", "-4,4", "--layers", "coarse",
                                     "--psi", "1", "--out", out)
    assert code == 0, err
    assert "sefa direction 0 'sefa0' on ws rows 0-3, shown 4x" in stdout
    picture = np.asarray(Image.open(out))
    assert picture.shape[0] > 2 * 4 * RES and picture.shape[1] > 2 * 4 * RES     # labels around 4x tiles
    d = sg.load_directions(sefa_file)
    ws = G.map(seed_to_z([3], G.config.z_dim))
    edited = G.edit(ws, d, {"sefa0": 4.0}, layers="coarse")
    tile = G.synthesize(edited, output="uint8")[0].repeat(4, 0).repeat(4, 1)
    found = [(y, x) for y in range(0, 80) for x in range(0, picture.shape[1] - 128)
             if np.array_equal(picture[y: y + 128, x: x + 128], tile)]
    assert found, "the labelled grid shows seed 3 at strength +4 as 4x4 blocks"


def test_strength_labels_say_standard_deviations_for_ganspace():
    from stylegan_sdk.cli import strength_labels

    d = sg.Directions(vectors=np.eye(2, 4, dtype=np.float32), values=np.array([2.0, 1.0]), names=("pc0", "pc1"),
                      kind="ganspace", layers=None)
    assert strength_labels(d, 0, [-4.0, 0.0, 2.0]) == ["-4 (-2 sd)", "0 (0 sd)", "+2 (+1 sd)"]
    d = sg.Directions(vectors=np.eye(1, 4, dtype=np.float32), values=np.array([5.0]), names=("s0",), kind="sefa",
                      layers=None)
    assert strength_labels(d, 0, [-1.5, 0.0]) == ["strength -1.5", "strength 0"]


def carrying_folder(skip32_dir: Path, tmp_path: Path, sets: dict[str, sg.Directions]) -> Path:
    """A copy of the exported sg2_skip_32 that carries direction sets (model.json "directions", hash-listed)."""
    folder = tmp_path / "carrying"
    shutil.copytree(skip32_dir, folder)
    manifest = json.loads((folder / "model.json").read_text())
    manifest["directions"] = {}
    for name, d in sets.items():
        d.save(folder / f"{name}.safetensors")
        data = (folder / f"{name}.safetensors").read_bytes()
        manifest["files"][f"{name}.safetensors"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        manifest["directions"][name] = f"{name}.safetensors"
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder


def test_edit_with_a_set_the_model_carries(skip32_dir, skip32_file, tmp_path, capsys):
    folder = carrying_folder(skip32_dir, tmp_path, {"sefa": sg.sefa(skip32_file, k=3)})
    G = sg.load(folder)
    assert list(G.directions) == ["sefa"]
    out = tmp_path / "out.png"
    code, _, err = stylegan_cli(capsys, "edit", "--model", folder, "--directions", "sefa", "--direction", "sefa2",
                                "--seeds", "1", "--strengths", "-2,0,2", "--upscale", "1", "--no-labels", "--out", out)
    assert code == 0, err
    row = tiles(np.asarray(Image.open(out)), 1, 3, RES)[0]
    ws = G.map(seed_to_z([1], G.config.z_dim), psi=0.7)
    for tile, s in zip(row, (-2.0, 0.0, 2.0)):
        np.testing.assert_array_equal(tile, G.synthesize(G.edit(ws, "sefa", {2: s}), output="uint8")[0])
    np.testing.assert_array_equal(row[1], G.generate(1, psi=0.7, output="uint8"))
    code, _, err = stylegan_cli(capsys, "edit", "--model", folder, "--directions", "smile", "--direction", "0",
                                "--seeds", "1", "--strengths", "1", "--out", tmp_path / "no.png")
    one_line_error(code, err, "stylegan edit", "--directions: no direction set file 'smile'", "it has 'sefa'")


@pytest.mark.parametrize("change, words", [
    ({"--strengths": "-3,x,3"}, ["--strengths: expected numbers separated by commas"]),
    ({"--strengths": "1,nan"}, ["--strengths: each must be a finite number"]),
    ({"--strengths": "-3,5000"}, ["--strengths:", "at most 1000"]),
    ({"--direction": "9"}, ["--direction: direction 9 is out of range (this set has 4: 0-3)"]),
    ({"--direction": "smile"}, ["--direction: no direction named 'smile'"]),
    ({"--directions": "{tmp}/missing.safetensors"}, ["--directions: no such direction set file"]),
    ({"--directions": "{tmp}/file"}, ["--directions:", "not a readable direction set"]),
    ({"--directions": "sefa"}, ["--directions: no direction set file 'sefa', and the model carries no set", "none"]),
    ({"--out": "{tmp}/file/grid.png"}, ["out: cannot create", "is not a folder"]),
    ({"--layers": "0-20"}, ["--layers:", "out of range for num_ws = 8"]),
    ({"--seeds": "3-1"}, ["seeds: range '3-1' runs backwards"]),
    ({"--upscale": "99"}, ["--upscale: must be in 0..64"]),
])
def test_edit_argument_errors_are_one_line_and_write_nothing(skip32_file, sefa_file, tmp_path, capsys, change, words):
    (tmp_path / "file").write_text("not a direction set")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = {"--model": str(skip32_file), "--directions": str(sefa_file), "--seeds": "0-1", "--direction": "0",
            "--strengths": "-3,0,3", "--out": str(tmp_path / "new" / "grid.png")}
    args.update({k: v.format(tmp=tmp_path) for k, v in change.items()})
    code, _, err = stylegan_cli(capsys, "edit", *(x for kv in args.items() for x in kv))
    one_line_error(code, err, "stylegan edit", *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_edit_notes_directions_from_another_model(G, sefa_file, tmp_path, capsys):
    d = sg.load_directions(sefa_file)
    foreign = sg.Directions(vectors=d.vectors, values=d.values, names=d.names, kind=d.kind, layers=d.layers,
                            model={**d.model, "w_avg_sha256": "0" * 64})
    foreign.save(tmp_path / "foreign.safetensors")
    code, stdout, err = stylegan_cli(capsys, "edit", "--model", G.source, "--directions",
                                     tmp_path / "foreign.safetensors", "--direction", "0", "--seeds", "0",
                                     "--strengths", "1", "--out", tmp_path / "g.png")
    assert code == 0 and stdout.startswith("wrote")
    assert err.strip().startswith("stylegan edit: note:") and "computed from another model" in err
    code, _, err = stylegan_cli(capsys, "edit", "--model", G.source, "--directions", sefa_file, "--direction", "0",
                                "--seeds", "0", "--strengths", "1", "--out", tmp_path / "h.png")
    assert code == 0 and err == ""


# ----------------------------------------------------------------------------
# The demo's edit figure (the demo runs it on sg.Client; the same methods on an in-process Generator)


def test_demo_edit_figure_uses_the_models_sefa_set(skip32_dir, skip32_file, tmp_path):
    folder = carrying_folder(skip32_dir, tmp_path, {"sefa": sg.sefa(skip32_file, k=3)})
    G = sg.load(folder)
    figure = demo.edit_figure(G, 0.7)
    assert figure.name == "edit" and figure.cols == len(demo.EDIT_STRENGTHS)
    assert figure.row_labels == [f"seed {s}" for s in demo.EDIT_SEEDS]
    assert figure.col_labels == [f"strength {s:+g}" if s else "strength 0" for s in demo.EDIT_STRENGTHS]
    assert figure.title.startswith("edit: sefa direction 0 (sefa0, eigenvalue")
    ws = G.map(seed_to_z(demo.EDIT_SEEDS, G.config.z_dim), psi=0.7)
    for c, s in enumerate(demo.EDIT_STRENGTHS):      # a column: one generate(seeds, edits=) call
        column = G.synthesize(G.edit(ws, "sefa", {0: s}), output="uint8")
        for r in range(len(demo.EDIT_SEEDS)):
            np.testing.assert_array_equal(figure.cells[r * figure.cols + c], column[r])
    figures, notes = demo.make_figures(G, 0.7, None)
    assert [f.name for f in figures] == ["seed_grid", "truncation", "style_mixing", "edit"] and notes == []


def test_demo_skips_the_edit_figure_without_a_sefa_set(G_ort):
    assert G_ort.directions == {}
    assert demo.edit_figure(G_ort, 0.7) is None
    figures, notes = demo.make_figures(G_ort, 0.7, None)
    assert [f.name for f in figures] == ["seed_grid", "truncation", "style_mixing"]
    assert notes == ["no edit figure: the model carries no 'sefa' direction set"]
