"""The demo: a real server subprocess on a loopback port, pictures written through the client."""

from __future__ import annotations

import numpy as np
from PIL import Image

from stylegan_sdk import demo


def test_demo_writes_raw_and_labelled_pictures_and_stops_the_server(skip32_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert demo.main(["--model", str(skip32_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "server stopped" in text
    assert sorted(p.name for p in out.iterdir()) == ["seed_grid.png", "seed_grid_4x.png", "style_mixing.png",
                                                    "style_mixing_4x.png", "truncation.png", "truncation_4x.png"]
    sizes = {}
    for name in ("seed_grid.png", "truncation.png", "style_mixing.png"):
        img = np.asarray(Image.open(out / name))
        assert img.ndim == 3 and img.shape[2] == 3 and img.std() > 5  # not blank
        sizes[name] = img.shape[:2]
        # The picture for people: the same tiles, 4x (a 32 px model), with text around them.
        shown = np.asarray(Image.open(out / name.replace(".png", "_4x.png")))
        assert shown.shape[0] > 3.5 * img.shape[0] and shown.shape[1] > 3.5 * img.shape[1]
    assert sizes["seed_grid.png"] == (4 * 32 + 3 * 2, 8 * 32 + 7 * 2)          # 8 x 4 seeds
    assert sizes["truncation.png"] == (6 * 32 + 5 * 2, 6 * 32 + 5 * 2)        # 6 seeds x 6 psi
    # 32 px model: coarse and middle bands of 4 row seeds under a header row; 5 column seeds + 1
    assert sizes["style_mixing.png"] == (9 * 32 + 8 * 2, 6 * 32 + 5 * 2)
    # The first raw tile (seed 0) appears in the labelled seed grid as 4x4 blocks.
    raw = np.asarray(Image.open(out / "seed_grid.png"))[:32, :32]
    shown = np.asarray(Image.open(out / "seed_grid_4x.png"))
    tile = raw.repeat(4, axis=0).repeat(4, axis=1)
    assert any(np.array_equal(shown[y: y + 128, x: x + 128], tile)
               for y in range(0, 60) for x in range(0, 20) if shown[y, x, 0] == tile[0, 0, 0])


def test_labels_name_seeds_psi_and_mixed_layers(skip32_dir, tmp_path):
    """The figures' captions, checked on the Figure objects (the text the pictures show)."""
    import stylegan_sdk as sg

    G = sg.load(skip32_dir)
    mixing = demo.style_mixing(G, [2, 5], [3, 9], 0.7)
    assert mixing.col_labels == ["row seed", "seed 3", "seed 9"]
    assert mixing.row_labels == ["", "seed 2 + coarse layers 0-3 (4-8 px)", "seed 5 + coarse layers 0-3 (4-8 px)",
                                 "seed 2 + middle layers 4-7 (16-32 px)", "seed 5 + middle layers 4-7 (16-32 px)"]
    truncation = demo.truncation_sweep(G, [1, 4])
    assert truncation.col_labels == ["psi 1", "psi 0.9", "psi 0.8", "psi 0.7", "psi 0.6", "psi 0.5"]
    assert demo.seed_grid(G, 0.7).cell_labels[:2] == ["seed 0", "seed 1"]
    assert "shown 4x, nearest neighbour" not in demo.seed_grid(G, 0.7).title  # the factor goes in at display


def test_conditional_model_gets_one_row_per_class(exported_model, tmp_path, capsys):
    """The exported sg2_resnet_16_cond (4 classes, no names; 16 px: shown 8x). The demo does the same for any
    conditional model; StyleGAN3 through the server is tests/test_stylegan3_export.py's."""
    model = exported_model("sg2_resnet_16_cond")
    out = tmp_path / "out"
    assert demo.main(["--model", str(model), "--out", str(out)]) == 0
    assert (out / "classes.png").is_file() and (out / "classes_8x.png").is_file()
    import stylegan_sdk as sg

    G = sg.load(model)
    assert G.config.c_dim == 4 and G.config.img_resolution == 16
    figure = demo.class_rows(G, G.config.c_dim, 0.7)
    assert figure.row_labels == [f"class {k}" for k in range(G.config.c_dim)]
    raw = np.asarray(Image.open(out / "classes.png"))
    assert raw.shape[0] == G.config.c_dim * 16 + (G.config.c_dim - 1) * 2  # one row per class


def test_a_class_the_model_does_not_have_is_one_line_and_exit_2(sg3_dirs, tmp_path, capsys):
    out = tmp_path / "out"
    assert demo.main(["--model", str(sg3_dirs["sg3r_32_cond"]), "--out", str(out), "--class", "cat"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["demo: error: --class: this model's classes have no names; give a class index instead of 'cat'"]
    assert not out.exists()  # nothing written
