"""Long work says how far it is, with an estimate (issue 32): the reporter, and the metrics that use it."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from stylegan_sdk.progress import Progress, duration
from training.metrics.sampling import counted


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_lines_rate_and_estimate():
    clock, out = _Clock(), io.StringIO()
    p = Progress("fid5k: generated images", 1000, every_s=10, stream=out, clock=clock)
    clock.t += 4
    p.advance(100)                       # within every_s of the start: nothing yet
    assert out.getvalue() == ""
    clock.t += 6
    p.advance(100)                       # 200 in 10 s: 20 img/s, 800 left: 40 s
    assert out.getvalue() == "fid5k: generated images 200/1,000 (20%), 20 img/s, 10 s so far, about 40 s left\n"
    clock.t += 1
    p.advance(100)                       # too soon for another line
    assert out.getvalue().count("\n") == 1
    clock.t += 29
    p.advance(700)                       # done: the last line, once
    p.close()
    assert out.getvalue().splitlines()[-1] == "fid5k: generated images 1,000/1,000 (100%), 25 img/s, 40 s so far"
    assert out.getvalue().count("\n") == 2
    assert (duration(42), duration(185), duration(7620)) == ("42 s", "3 min 05 s", "2 h 07 min")


def test_counted_passes_batches_through_and_closes():
    out = io.StringIO()
    p = Progress("x", 5, stream=out, every_s=1e9)
    assert [len(b) for b in counted([[1, 2], [3, 4], [5]], p)] == [2, 2, 1]
    assert out.getvalue().startswith("x 5/5 (100%)")
    assert list(counted(iter([[1]]), None)) == [[1]]          # no reporter: the batches alone


def test_a_metric_reports_its_progress(tmp_path, capsys):
    """cvar on a tiny conditional generator: one line per class count, on the stream given; none without one."""
    from stylegan_sdk.config import GeneratorConfig
    from stylegan_sdk.models import build_generator
    from training.dataset import ImageDataset
    from training.metrics import calc_metric

    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", i % 2] for i in range(8)]}))
    G = build_generator(GeneratorConfig(z_dim=8, w_dim=8, c_dim=2, img_resolution=8, mapping_layers=1,
                                        channel_base=64, channel_max=8))
    out = io.StringIO()
    result = calc_metric("cvar4", G, ImageDataset(str(tmp_path)), batch=4, progress=out)
    assert set(result["results"]["cvar4_classes"]) == {"0", "1"}
    assert out.getvalue().splitlines()[-1].startswith("cvar4: classes 2/2 (100%)")
    capsys.readouterr()
    calc_metric("cvar4", G, ImageDataset(str(tmp_path)), batch=4)   # progress=None (the training loop): quiet
    assert capsys.readouterr() == ("", "")
