"""Our checkpoint format: round trip, atomic writes, and a clear error for every kind of bad file.

Bad files are crafted with `safetensors.numpy.save_file` from a real checkpoint's tensors and header,
changing one thing at a time, so each test pins one check of `load_checkpoint` / `sg.load`.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import NVLABS, nvlabs_checkpoint

import stylegan_sdk as sg
from stylegan_sdk.formats.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    W_AVG_KEY,
    load_checkpoint,
    read_header,
    save_checkpoint,
)

CONV = "synthesis.b8.conv0.weight"   # a tensor of sg2_skip_32, shape [64, 64, 3, 3]


@pytest.fixture(scope="module")
def skip32():
    """sg2_skip_32 in our format (in memory)."""
    return nvlabs_checkpoint("sg2_skip_32")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(NVLABS / "sg2_skip_32" / "reference.npz"))


def _header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return dict(f.metadata())


def _tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def _write(path: Path, tensors: dict[str, np.ndarray], header: dict[str, str]) -> Path:
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata=header)
    return path


def _variant(src: Path, dst: Path, tensors: dict[str, np.ndarray] | None = None, **header_changes) -> Path:
    """A copy of checkpoint `src` with some tensors and header fields replaced (None removes a field)."""
    header = _header(src)
    for key, value in header_changes.items():
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    return _write(dst, _tensors(src) if tensors is None else tensors, header)


def _config_variant(src: Path, dst: Path, **config_changes) -> Path:
    config = json.loads(_header(src)["config"])
    config.update(config_changes)
    return _variant(src, dst, config=json.dumps(config))


# ----------------------------------------------------------------------------
# Round trip


def test_round_trip_keeps_config_tensors_metadata(skip32, tmp_path):
    path = tmp_path / "model.safetensors"
    metadata = {"kimg": 1234, "fid50k": 3.5, "notes": {"dataset": "emoji64", "tags": ["a", "b"]}}
    save_checkpoint(path, skip32.config, skip32.tensors, metadata)

    back = load_checkpoint(path)
    assert back.config == skip32.config
    assert back.config.to_dict() == skip32.config.to_dict()        # including the (compare=False) source
    assert back.metadata == metadata
    assert set(back.tensors) == set(skip32.tensors)
    for name, value in skip32.tensors.items():
        got = back.tensors[name]
        assert got.dtype == np.float32, name
        assert got.shape == value.shape, name
        assert got.tobytes() == np.asarray(value, np.float32).tobytes(), f"{name} not bit-equal"
    assert back.w_avg.tobytes() == skip32.tensors[W_AVG_KEY].tobytes()


def test_class_names_round_trip_and_are_checked(skip32, tmp_path):
    import dataclasses

    cond = nvlabs_checkpoint("sg2_resnet_16_cond")
    named = dataclasses.replace(cond.config, class_names=("ant", "bee", "cat", "dog"))
    save_checkpoint(tmp_path / "named.safetensors", named, cond.tensors)
    back = load_checkpoint(tmp_path / "named.safetensors")
    assert back.config.class_names == ("ant", "bee", "cat", "dog") and back.config.to_dict()["class_names"][3] == "dog"
    assert "class_names" not in skip32.config.to_dict() and "class_names" not in cond.config.to_dict()
    assert sg.load(tmp_path / "named.safetensors").info.class_names == ("ant", "bee", "cat", "dog")
    import torch

    from stylegan_sdk.config import GeneratorConfig
    from stylegan_sdk.export.onnx import export_onnx
    from stylegan_sdk.models import build_generator

    # model.json carries the names: a named conditional network exported (4 px, the smallest one to export)
    tiny = GeneratorConfig(z_dim=8, w_dim=8, c_dim=4, class_names=named.class_names, img_resolution=4,
                           mapping_layers=1, channel_base=64, channel_max=8)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny_named.safetensors", tiny, build_generator(tiny).state_dict())
    export_onnx(str(tmp_path / "tiny_named.safetensors"), tmp_path / "onnx")
    G = sg.load(tmp_path / "onnx")
    assert G.info.class_names == ("ant", "bee", "cat", "dog")
    np.testing.assert_array_equal(G.generate(1, c="cat", output="float"), G.generate(1, c=2, output="float"))
    for names, match in [(("ant", "bee", "cat"), "3 names for c_dim 4"), (("a", "b", "a", "c"), "'a' appears more"),
                         (("a", "", "b", "c"), "1-200 characters"), (["a", "b", "c", "d"], "must be a tuple")]:
        with pytest.raises(ValueError, match=rf"config\.class_names: .*{match}"):
            dataclasses.replace(cond.config, class_names=names)


def test_header_is_our_format_with_w_avg_and_readable_without_weights(skip32, skip32_path):
    header = _header(skip32_path)
    assert header["format"] == FORMAT
    assert header["format_version"] == FORMAT_VERSION
    assert np.array_equal(np.asarray(json.loads(header["w_avg"]), np.float32), skip32.tensors[W_AVG_KEY])

    config, metadata = read_header(skip32_path)
    assert config == skip32.config
    assert metadata == skip32.metadata


def test_save_accepts_torch_tensors(skip32, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "from_torch.safetensors"
    save_checkpoint(path, skip32.config, {k: torch.from_numpy(np.array(v)) for k, v in skip32.tensors.items()})
    back = load_checkpoint(path)
    assert back.metadata == {}
    for name, value in skip32.tensors.items():
        assert np.array_equal(back.tensors[name], value), name


def test_save_then_sg_load_reproduces_reference_images(skip32_path, reference):
    G = sg.load(skip32_path)
    assert G.config.num_ws == 8 and G.config.img_resolution == 32
    img = G.generate([int(s) for s in reference["seeds"]], psi=1.0, output="float")
    assert img.shape == reference["img_psi100_const"].shape
    np.testing.assert_allclose(img, reference["img_psi100_const"], rtol=0, atol=1e-4)


def test_saved_file_is_readable_like_any_other_new_file(skip32, tmp_path):
    # The temporary file behind an atomic write is created 0600 by mkstemp; once renamed into place the
    # checkpoint should have the permissions of any file the user creates (0666 & ~umask), not 0600.
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, skip32.config, skip32.tensors)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


# ----------------------------------------------------------------------------
# Atomic writes


def test_save_leaves_no_temporary_files(skip32, tmp_path):
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, skip32.config, skip32.tensors)
    assert os.listdir(tmp_path) == ["model.safetensors"]
    save_checkpoint(path, skip32.config, skip32.tensors, {"second": True})    # overwrite
    assert os.listdir(tmp_path) == ["model.safetensors"]
    assert load_checkpoint(path).metadata == {"second": True}


def _fail_writer(monkeypatch):
    def save(*args, **kwargs):
        raise RuntimeError("simulated writer failure")

    monkeypatch.setattr("safetensors.numpy.save", save)
    return RuntimeError


def _fail_fsync(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    return OSError


def _fail_replace(monkeypatch):
    def replace(src, dst):
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(os, "replace", replace)
    return OSError


def _interrupt_write(monkeypatch):
    def fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync)
    return KeyboardInterrupt


@pytest.mark.parametrize("fail", [_fail_writer, _fail_fsync, _fail_replace, _interrupt_write],
                         ids=["writer-raises", "disk-full", "rename-fails", "ctrl-c"])
def test_failed_save_keeps_existing_checkpoint(skip32, tmp_path, monkeypatch, fail):
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, skip32.config, skip32.tensors, {"version": "old"})
    before = path.read_bytes()

    error = fail(monkeypatch)
    changed = {k: np.asarray(v) + 1 for k, v in skip32.tensors.items()}
    with pytest.raises(error):
        save_checkpoint(path, skip32.config, changed, {"version": "new"})
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["model.safetensors"], "a temporary file was left behind"
    assert path.read_bytes() == before
    assert load_checkpoint(path).metadata == {"version": "old"}


def test_save_refuses_nan_and_keeps_existing_checkpoint(skip32, tmp_path):
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, skip32.config, skip32.tensors)
    before = path.read_bytes()

    bad = dict(skip32.tensors)
    bad[CONV] = np.array(bad[CONV])
    bad[CONV][0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=CONV):
        save_checkpoint(path, skip32.config, bad)
    assert os.listdir(tmp_path) == ["model.safetensors"]
    assert path.read_bytes() == before


def test_save_needs_w_avg(skip32, tmp_path):
    tensors = {k: v for k, v in skip32.tensors.items() if k != W_AVG_KEY}
    with pytest.raises(ValueError, match="mapping.w_avg"):
        save_checkpoint(tmp_path / "m.safetensors", skip32.config, tensors)
    assert os.listdir(tmp_path) == []


def test_save_into_missing_folder(skip32, tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        save_checkpoint(tmp_path / "no-such-folder" / "m.safetensors", skip32.config, skip32.tensors)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------
# Bad files: each one a clear error naming the problem


READERS = {
    "load_checkpoint": load_checkpoint,
    "read_header": read_header,
    "sg.load": sg.load,
}


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_missing_file_names_the_path(tmp_path, reader):
    path = tmp_path / "nowhere.safetensors"
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize("keep", ["half", "all-but-one-byte", "100-bytes"])
def test_truncated_file(skip32_path, tmp_path, reader, keep):
    data = skip32_path.read_bytes()
    n = {"half": len(data) // 2, "all-but-one-byte": len(data) - 1, "100-bytes": 100}[keep]
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:n])
    with pytest.raises(ValueError, match="truncated|corrupt") as info:
        reader(path)
    assert "cut.safetensors" in str(info.value)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize("first", [b"", b"\x80", b"{"], ids=["random", "pickle-magic", "brace"])
def test_random_bytes(tmp_path, reader, first):
    path = tmp_path / "noise.bin"
    path.write_bytes(first + np.random.RandomState(7).bytes(4096))
    with pytest.raises(ValueError) as info:
        reader(path)
    assert "noise.bin" in str(info.value)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_empty_file(tmp_path, reader):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.safetensors"):
        reader(path)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises((ValueError, FileNotFoundError), match="folder|no such"):
        sg.load(tmp_path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_plain_safetensors_without_our_header(skip32, tmp_path, reader):
    from safetensors.numpy import save_file

    path = tmp_path / "plain.safetensors"
    save_file({k: np.asarray(v) for k, v in skip32.tensors.items()}, str(path))
    with pytest.raises(ValueError, match="format"):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_other_format_name(skip32_path, tmp_path, reader):
    path = _variant(skip32_path, tmp_path / "other.safetensors", format="somebody-else.v2")
    with pytest.raises(ValueError, match="format"):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_unsupported_format_version(skip32_path, tmp_path, reader):
    path = _variant(skip32_path, tmp_path / "v99.safetensors", format_version="99")
    with pytest.raises(ValueError, match="format_version"):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize("field", ["config", "w_avg"])
def test_header_field_missing(skip32_path, tmp_path, reader, field):
    path = _variant(skip32_path, tmp_path / "nofield.safetensors", **{field: None})
    with pytest.raises(ValueError, match=field):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_header_config_not_json(skip32_path, tmp_path, reader):
    path = _variant(skip32_path, tmp_path / "broken.safetensors", config='{"z_dim": 64, "w_dim": ')
    with pytest.raises(ValueError, match="config") as info:
        reader(path)
    assert "broken.safetensors" in str(info.value)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_header_config_not_an_object(skip32_path, tmp_path, reader):
    path = _variant(skip32_path, tmp_path / "list.safetensors", config="[1, 2, 3]")
    with pytest.raises(ValueError, match="config"):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_header_config_unknown_field(skip32_path, tmp_path, reader):
    path = _config_variant(skip32_path, tmp_path / "unknown.safetensors", pixel_shuffle=True)
    with pytest.raises(ValueError, match="pixel_shuffle"):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize("field, value", [("img_resolution", 48), ("z_dim", -1), ("architecture", "unet"),
                                          ("arch", "stylegan9"), ("w_dim", "64"), ("class_names", ["a"]),
                                          ("class_names", "abc")])
def test_header_config_bad_value(skip32_path, tmp_path, reader, field, value):
    path = _config_variant(skip32_path, tmp_path / "badvalue.safetensors", **{field: value})
    with pytest.raises(ValueError, match=rf"config\.{field}\b"):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_header_metadata_not_json(skip32_path, tmp_path, reader):
    path = _variant(skip32_path, tmp_path / "meta.safetensors", metadata="{kimg: 12")
    with pytest.raises(ValueError, match="meta.safetensors"):
        reader(path)


def test_missing_tensor_named_by_sg_load(skip32_path, tmp_path):
    tensors = _tensors(skip32_path)
    del tensors[CONV]
    path = _variant(skip32_path, tmp_path / "missing.safetensors", tensors)
    with pytest.raises(ValueError, match="missing") as info:
        sg.load(path)
    assert CONV in str(info.value)
    assert "missing.safetensors" in str(info.value)


def test_unexpected_tensor_named_by_sg_load(skip32_path, tmp_path):
    tensors = _tensors(skip32_path)
    tensors["synthesis.b64.conv0.weight"] = np.zeros([4, 4, 3, 3], np.float32)
    path = _variant(skip32_path, tmp_path / "extra.safetensors", tensors)
    with pytest.raises(ValueError, match="synthesis.b64.conv0.weight"):
        sg.load(path)


def test_wrong_shape_names_tensor_and_both_shapes(skip32_path, tmp_path):
    tensors = _tensors(skip32_path)
    assert tensors[CONV].shape == (64, 64, 3, 3)
    tensors[CONV] = np.ascontiguousarray(tensors[CONV][:, :32])
    path = _variant(skip32_path, tmp_path / "shape.safetensors", tensors)
    with pytest.raises(ValueError) as info:
        sg.load(path)
    message = str(info.value)
    assert CONV in message
    assert "[64, 32, 3, 3]" in message and "[64, 64, 3, 3]" in message


@pytest.mark.parametrize("reader", [load_checkpoint, sg.load], ids=["load_checkpoint", "sg.load"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_weight_names_tensor(skip32_path, tmp_path, reader, bad):
    tensors = _tensors(skip32_path)
    tensors[CONV] = tensors[CONV].copy()
    tensors[CONV][3, 2, 1, 0] = bad
    path = _variant(skip32_path, tmp_path / "nan.safetensors", tensors)
    with pytest.raises(ValueError, match="NaN or Inf") as info:
        reader(path)
    assert CONV in str(info.value)


def test_non_float32_tensor_named(skip32_path, tmp_path):
    tensors = _tensors(skip32_path)
    tensors[CONV] = tensors[CONV].astype(np.float16)
    path = _variant(skip32_path, tmp_path / "half.safetensors", tensors)
    with pytest.raises(ValueError, match="float16") as info:
        load_checkpoint(path)
    assert CONV in str(info.value)


def test_missing_w_avg_tensor(skip32_path, tmp_path):
    tensors = _tensors(skip32_path)
    del tensors[W_AVG_KEY]
    path = _variant(skip32_path, tmp_path / "nowavg.safetensors", tensors)
    with pytest.raises(ValueError, match=W_AVG_KEY):
        load_checkpoint(path)


@pytest.mark.parametrize("change", ["values", "length"])
def test_header_w_avg_does_not_match_tensor(skip32_path, tmp_path, change):
    w_avg = json.loads(_header(skip32_path)["w_avg"])
    w_avg = [v + 0.5 for v in w_avg] if change == "values" else w_avg[:-1]
    path = _variant(skip32_path, tmp_path / "wavg.safetensors", w_avg=json.dumps(w_avg))
    with pytest.raises(ValueError, match="w_avg"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="w_avg"):
        sg.load(path)


def test_w_avg_tensor_changed_but_header_not(skip32_path, tmp_path):
    tensors = _tensors(skip32_path)
    tensors[W_AVG_KEY] = tensors[W_AVG_KEY] * 2
    path = _variant(skip32_path, tmp_path / "wavg2.safetensors", tensors)
    with pytest.raises(ValueError, match="w_avg"):
        load_checkpoint(path)


@pytest.mark.parametrize("reader", [load_checkpoint, sg.load], ids=["load_checkpoint", "sg.load"])
@pytest.mark.parametrize("text", ['{"a": 1}', '"abc"', '[1, "x"]', "[[1, 2]]", "null"])
def test_header_w_avg_not_a_list_of_numbers(skip32_path, tmp_path, reader, text):
    # Must be a ValueError that says which field is wrong (and where), not a TypeError from NumPy.
    path = _variant(skip32_path, tmp_path / "wavg3.safetensors", w_avg=text)
    with pytest.raises(ValueError, match="w_avg") as info:
        reader(path)
    assert "wavg3.safetensors" in str(info.value)
