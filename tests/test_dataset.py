"""Training data: image modes, crop/resize, labels, unreadable files, dataset_tool, errors, sampling."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `training` lives at the repo root, beside the package
    sys.path.insert(0, str(REPO))

from training import dataset_tool  # noqa: E402
from training.dataset import DatasetError, ImageDataset, convert_image, group_by_class, sample_indices  # noqa: E402

RED = (200, 30, 40)


def _save(folder: Path, name: str, img: Image.Image, **kw) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Nine files in every awkward mode, one unreadable, one not an image, plus class labels."""
    d = tmp_path / "src"
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    rgba.paste(Image.new("RGBA", (16, 16), RED + (255,)), (8, 8))
    _save(d, "a_rgba.png", rgba)
    la = Image.new("LA", (32, 32), (90, 0))
    la.paste(Image.new("LA", (16, 16), (90, 255)), (8, 8))
    _save(d, "b_la.png", la)
    _save(d, "c_gray.png", Image.new("L", (32, 32), 77))
    pal = Image.new("P", (32, 32), 0)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.paste(1, (0, 0, 32, 16))
    _save(d, "d_palette.png", pal, transparency=0)
    _save(d, "sub/e_wide.jpg", Image.new("RGB", (48, 32), (10, 20, 240)), quality=95)
    _save(d, "sub/f_cmyk.jpg", Image.new("CMYK", (32, 32), (0, 255, 255, 0)))
    _save(d, "g_16bit.png", Image.fromarray(np.full((32, 32), 65535, np.uint16)))
    (d / "h_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"")
    names = ["a_rgba.png", "b_la.png", "c_gray.png", "d_palette.png", "sub/e_wide.jpg", "sub/f_cmyk.jpg",
             "g_16bit.png", "h_broken.png"]
    (d / "dataset.json").write_text(json.dumps({"labels": [[n, i % 3] for i, n in enumerate(names)]}))
    return d


def test_convert_image_modes_background_and_crop():
    rgba = Image.new("RGBA", (6, 4), (0, 0, 0, 0))
    out = convert_image(rgba, 4, 3, (255, 255, 255))
    assert out.shape == (3, 4, 4) and out.dtype == np.uint8 and np.all(out == 255)   # transparent -> background
    out = convert_image(rgba, 4, 3, (0, 0, 0))
    assert np.all(out == 0)
    # Centre crop of a wide image: the middle columns survive.
    wide = np.zeros((4, 8, 3), np.uint8)
    wide[:, 2:6] = 255
    out = convert_image(Image.fromarray(wide), 4, 3, (0, 0, 0))
    assert np.all(out == 255)
    # Gray kept (1 channel) or expanded (3 equal channels); 16-bit scaled, not clipped.
    g = convert_image(Image.new("L", (4, 4), 50), 4, 1, (0, 0, 0))
    assert g.shape == (1, 4, 4) and np.all(g == 50)
    g3 = convert_image(Image.new("L", (4, 4), 50), 4, 3, (0, 0, 0))
    assert g3.shape == (3, 4, 4) and np.all(g3 == 50)
    g16 = convert_image(Image.fromarray(np.full((4, 4), 32768, np.uint16)), 4, 1, (0, 0, 0))
    assert abs(int(g16[0, 0, 0]) - 128) <= 1
    with pytest.raises(DatasetError, match="smaller than the resolution"):
        convert_image(Image.new("RGB", (3, 8)), 4, 3, (0, 0, 0))


def test_dataset_tool_converts_every_mode_and_skips_unreadable(mixed_folder, tmp_path, capsys):
    dest = tmp_path / "out.zip"
    assert dataset_tool.main(["--source", str(mixed_folder), "--dest", str(dest), "--resolution", "16",
                              "--background", "black"]) == 0
    err = capsys.readouterr().err
    assert "h_broken.png" in err
    with zipfile.ZipFile(dest) as z:
        names = sorted(z.namelist())
        meta = json.loads(z.read("dataset.json"))
        first = np.asarray(Image.open(io.BytesIO(z.read("00000/img00000000.png"))))
    assert names == [f"00000/img{i:08d}.png" for i in range(7)] + ["dataset.json"]
    # Labels follow their images in sorted-name order (the broken file and its label are gone).
    classes = [0, 1, 2, 0, 0, 1, 2]     # a_rgba b_la c_gray d_palette g_16bit sub/e_wide sub/f_cmyk
    assert meta["labels"] == [[f"00000/img{i:08d}.png", k] for i, k in enumerate(classes)]
    # a_rgba: red square on black, 16x16 RGB.
    assert first.shape == (16, 16, 3)
    assert tuple(first[8, 8]) == RED and tuple(first[0, 0]) == (0, 0, 0)

    ds = ImageDataset(str(dest))
    assert ds.num_images == 7 and ds.resolution == 16 and ds.num_channels == 3
    assert ds.label_dim == 3 and ds.get_label(5).tolist() == [0, 1, 0]
    # The training set reads the raw folder directly and gets the same pixels.
    raw = ImageDataset(str(mixed_folder), resolution=16, background="black")
    assert raw.names[:2] == ["a_rgba.png", "b_la.png"] and len(raw.skipped) == 1
    assert np.array_equal(raw.get_batch(np.arange(7))[0], ds.get_batch(np.arange(7))[0])


def test_grayscale_kept_or_expanded(tmp_path):
    src = tmp_path / "gray"
    for i in range(3):
        _save(src, f"{i}.png", Image.new("L", (8, 8), 40 * i))
    assert ImageDataset(str(src)).num_channels == 1                     # auto: all gray -> 1 channel
    assert ImageDataset(str(src), channels=3).num_channels == 3
    dest = tmp_path / "gray3"
    assert dataset_tool.main(["--source", str(src), "--dest", str(dest), "--channels", "3"]) == 0
    ds = ImageDataset(str(dest))
    assert ds.num_channels == 3 and ds.resolution == 8 and not ds.has_labels
    img = ds.get_image(2)
    assert np.all(img == 80)


def test_xflip_and_vector_labels(tmp_path):
    src = tmp_path / "flip"
    a = np.zeros((4, 4, 3), np.uint8)
    a[:, 0] = 255
    _save(src, "a.png", Image.fromarray(a))
    (src / "dataset.json").write_text(json.dumps({"labels": [["a.png", [0.5, -1.0]]]}))
    ds = ImageDataset(str(src), xflip=True)
    assert len(ds) == 2 and ds.num_images == 1
    assert np.all(ds.get_image(0)[:, :, 0] == 255) and np.all(ds.get_image(1)[:, :, 3] == 255)
    assert ds.get_label(1).tolist() == [0.5, -1.0] and ds.label_dim == 2


@pytest.mark.parametrize("case", ["missing", "empty", "not_pow2", "too_small", "no_dest_folder", "mixed_sizes"])
def test_dataset_tool_errors_exit_2(case, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _save(src, "a.png", Image.new("RGB", (8, 8)))
    args = {"missing": ["--source", str(tmp_path / "nope"), "--dest", str(tmp_path / "o.zip")],
            "empty": ["--source", str(tmp_path), "--dest", str(tmp_path / "o.zip")],
            "not_pow2": ["--source", str(src), "--dest", str(tmp_path / "o.zip"), "--resolution", "6"],
            "too_small": ["--source", str(src), "--dest", str(tmp_path / "o.zip"), "--resolution", "16"],
            "no_dest_folder": ["--source", str(src), "--dest", str(tmp_path / "x" / "o.zip")],
            "mixed_sizes": ["--source", str(src), "--dest", str(tmp_path / "o.zip")]}[case]
    if case == "empty":
        (tmp_path / "empty").mkdir()
        args[1] = str(tmp_path / "empty")
    if case == "mixed_sizes":
        _save(src, "b.png", Image.new("RGB", (12, 12)))
    assert dataset_tool.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dataset_tool: error:")
    assert not (tmp_path / "o.zip").exists()


def test_dataset_tool_command_line(tmp_path):
    src = tmp_path / "src"
    _save(src, "a.png", Image.new("RGB", (8, 8), (1, 2, 3)))
    r = subprocess.run([sys.executable, "-m", "training.dataset_tool", "--source", str(src), "--dest",
                        str(tmp_path / "o.zip"), "--resolution", "5"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "power of two" in r.stderr


def test_sample_indices_is_a_function_of_position():
    a = sample_indices(10, seed=3, start=0, count=25)
    assert sorted(a[:10].tolist()) == list(range(10)) and sorted(a[10:20].tolist()) == list(range(10))
    assert not np.array_equal(a[:10], a[10:20])                         # a fresh permutation each epoch
    b = np.concatenate([sample_indices(10, 3, 0, 7), sample_indices(10, 3, 7, 18)])
    assert np.array_equal(a, b)                                          # resuming mid-epoch continues it
    assert not np.array_equal(a, sample_indices(10, seed=4, start=0, count=25))


def test_group_by_class_fills_each_group_from_the_first_items_class():
    item_class = np.array([0] * 50 + [1] * 30 + [2] * 15 + [3] * 5)     # unequal classes, as the emoji's
    idx = sample_indices(100, seed=1, start=200, count=64)
    out = group_by_class(idx, item_class, group=4, seed=1, start=200)
    groups = item_class[out].reshape(16, 4)
    assert np.array_equal(out[::4], idx[::4])                         # each group's first real keeps its place
    assert np.all(groups == groups[:, :1])                            # ... and sets the group's class
    assert np.array_equal(out, group_by_class(idx, item_class, 4, seed=1, start=200))   # pure
    assert not np.array_equal(out, group_by_class(idx, item_class, 4, seed=1, start=264))
    # Over a long stream classes come as often as in the data (the first items are a permutation).
    long = group_by_class(sample_indices(100, 0, 0, 4000), item_class, 4, 0, 0)
    assert np.allclose(np.bincount(item_class[long], minlength=4) / 4000, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_item_classes_cover_mirrored_copies_and_need_class_labels(mixed_folder):
    ds = ImageDataset(str(mixed_folder), resolution=16, xflip=True)
    classes = ds.item_classes()
    assert len(classes) == len(ds) and np.array_equal(classes[: ds.num_images], classes[ds.num_images:])
    assert all(classes[i] == ds.get_label(i).argmax() for i in range(len(ds)))
    with pytest.raises(DatasetError, match="no class labels"):
        ImageDataset(str(mixed_folder), resolution=16, use_labels=False).item_classes()


def _emoji_like(tmp_path: Path) -> tuple[Path, Path]:
    """Four images in a sub-folder and a labels file with one record per image (emoji64_labels.json's layout)."""
    src = tmp_path / "emoji"
    records = {}
    for i, (cat, tone) in enumerate([("Flags", None), ("Smileys & Emotion", "1F3FB"), ("Flags", None),
                                     ("Animals & Nature", "1F3FF")]):
        _save(src / "noto", f"e{i}.png", Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)))
        records[f"noto/e{i}.png"] = {"name": f"E{i}", "category": cat, "subcategory": "x", "skin_tone": tone}
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"categories": ["Activities", "Animals & Nature", "Flags", "Smileys & Emotion"],
                                  "labels": records}))
    return src, labels


def test_labels_file_becomes_class_labels(tmp_path):
    src, labels = _emoji_like(tmp_path)
    out = tmp_path / "cat.zip"
    summary = dataset_tool.convert_dataset(str(src), str(out), resolution=8, labels_file=str(labels))
    doc = json.loads(zipfile.ZipFile(out).read("dataset.json"))
    # The file's own class list (its order) is kept: Flags = 2, Smileys = 3, Animals = 1; 4 classes.
    assert doc["classes"] == ["Activities", "Animals & Nature", "Flags", "Smileys & Emotion"]
    assert [label for _, label in doc["labels"]] == [2, 3, 2, 1]
    assert summary["labels"] == 4
    ds = ImageDataset(str(out))
    assert ds.label_dim == 4 and ds.get_label(1).tolist() == [0, 0, 0, 1]
    assert ds.class_names == ("Activities", "Animals & Nature", "Flags", "Smileys & Emotion")
    # Converting the converted set again keeps its class names (no class 0 image: still 4 classes).
    again = tmp_path / "again.zip"
    dataset_tool.convert_dataset(str(out), str(again), resolution=4)
    assert ImageDataset(str(again)).class_names == ds.class_names and ImageDataset(str(again)).label_dim == 4
    # Another field, with nulls: the sorted distinct values, null as "none".
    out2 = tmp_path / "tone.zip"
    dataset_tool.convert_dataset(str(src), str(out2), resolution=8, labels_file=str(labels), label_field="skin_tone")
    doc2 = json.loads(zipfile.ZipFile(out2).read("dataset.json"))
    assert doc2["classes"] == ["1F3FB", "1F3FF", "none"]
    assert [label for _, label in doc2["labels"]] == [2, 0, 2, 1]


@pytest.mark.parametrize("classes, match", [
    (["a", "b"], "class label 2 has no name"),
    (["a", "b", "b"], "'classes' names must be distinct"),
    ("abc", "'classes' must be a tuple"),
])
def test_class_names_that_do_not_fit_the_labels_are_refused(tmp_path, classes, match):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        _save(src, f"{i}.png", Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)))
    (src / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", i] for i in range(3)], "classes": classes}))
    with pytest.raises(DatasetError, match=match):
        ImageDataset(str(src))


@pytest.mark.parametrize("args, match", [
    (["--label-field", "colour"], "no field 'colour'"),
    (["--no-labels"], "contradict"),
])
def test_labels_file_errors_are_one_line_before_writing(tmp_path, capsys, args, match):
    src, labels = _emoji_like(tmp_path)
    out = tmp_path / "out.zip"
    code = dataset_tool.main(["--source", str(src), "--dest", str(out), "--resolution", "8", "--labels", str(labels),
                              *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0] and not out.exists()
    code = dataset_tool.main(["--source", str(src), "--dest", str(out), "--labels", str(tmp_path / "nope.json")])
    assert code == 2 and "no such file" in capsys.readouterr().err and not out.exists()
