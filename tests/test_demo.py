"""The demo: a real server subprocess on a loopback port, pictures written through the client."""

from __future__ import annotations

import numpy as np
from PIL import Image

from stylegan_sdk import demo


def test_demo_writes_three_pictures_and_stops_the_server(skip32_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert demo.main(["--model", str(skip32_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "server stopped" in text
    sizes = {}
    for name in ("seed_grid.png", "truncation.png", "style_mixing.png"):
        img = np.asarray(Image.open(out / name))
        assert img.ndim == 3 and img.shape[2] == 3 and img.std() > 5  # not blank
        sizes[name] = img.shape[:2]
    assert sizes["seed_grid.png"] == (4 * 32 + 3 * 2, 8 * 32 + 7 * 2)          # 8 x 4 seeds
    assert sizes["truncation.png"] == (6 * 32 + 5 * 2, 6 * 32 + 5 * 2)        # 6 seeds x 6 psi
    # 32 px model: coarse and middle bands of 4 row seeds under a header row; 5 column seeds + 1
    assert sizes["style_mixing.png"] == (9 * 32 + 8 * 2, 6 * 32 + 5 * 2)
