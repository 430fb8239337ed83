"""Latent math in NumPy: seeds, truncation, mixing, interpolation, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from stylegan_sdk import latents
from stylegan_sdk.latents import mix_ws, parse_int_list, seed_to_z, truncate


def test_seed_to_z_follows_the_official_convention():
    z = seed_to_z([0, 7, 123456], 16)
    assert z.dtype == np.float32 and z.shape == (3, 16)
    for row, seed in zip(z, [0, 7, 123456]):
        np.testing.assert_array_equal(row, np.random.RandomState(seed).randn(16).astype(np.float32))
    np.testing.assert_array_equal(seed_to_z(7, 16), z[1:2])
    np.testing.assert_array_equal(seed_to_z("0,7", 16), z[:2])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0-3,7", [0, 1, 2, 3, 7]), ("5", [5]), (4, [4]), ([2, 1], [2, 1]), (" 1 , 2-3 ", [1, 2, 3])],
)
def test_parse_int_list(spec, expected):
    assert parse_int_list(spec, "seeds") == expected


@pytest.mark.parametrize("spec", ["a-b", "3-1", "1,,2", "-1", [1.5], [True]])
def test_parse_int_list_errors_name_the_argument(spec):
    with pytest.raises(ValueError, match="seeds"):
        parse_int_list(spec, "seeds")


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_range(seed):
    with pytest.raises(ValueError, match="seeds"):
        seed_to_z([seed], 4)


def test_truncate_with_and_without_cutoff():
    rng = np.random.default_rng(0)
    ws = rng.standard_normal((2, 6, 5)).astype(np.float32)
    w_avg = rng.standard_normal(5).astype(np.float32)
    full = truncate(ws, w_avg, 0.5)
    np.testing.assert_allclose(full, w_avg + 0.5 * (ws - w_avg), rtol=1e-6)
    cut = truncate(ws, w_avg, 0.5, cutoff=2)
    np.testing.assert_allclose(cut[:, :2], full[:, :2])
    np.testing.assert_array_equal(cut[:, 2:], ws[:, 2:])
    np.testing.assert_array_equal(truncate(ws, w_avg, 1.0), ws)
    np.testing.assert_allclose(truncate(ws, w_avg, 0.0), np.broadcast_to(w_avg, ws.shape))


@pytest.mark.parametrize(("psi", "cutoff", "match"), [(float("nan"), None, "psi"), (float("inf"), None, "psi"),
                                                      ("0.7", None, "psi"), (0.5, 7, "cutoff"), (0.5, -1, "cutoff")])
def test_truncate_errors(psi, cutoff, match):
    with pytest.raises(ValueError, match=match):
        truncate(np.zeros((1, 6, 3), np.float32), np.zeros(3, np.float32), psi, cutoff)


def test_mix_ws_takes_listed_rows_from_b():
    a = np.zeros((4, 3), np.float32)
    b = np.ones((4, 3), np.float32)
    m = mix_ws(a, b, [1, 3])
    assert m[[1, 3]].min() == 1 and m[[0, 2]].max() == 0
    assert mix_ws(a[None], b[None], "0-1").shape == (1, 4, 3)
    np.testing.assert_array_equal(a, 0)  # inputs untouched


@pytest.mark.parametrize(("layers", "match"), [([4], "layers"), ("0-9", "layers"), ([-1], "layers")])
def test_mix_ws_layer_errors(layers, match):
    with pytest.raises(ValueError, match=match):
        mix_ws(np.zeros((4, 3)), np.ones((4, 3)), layers)


def test_mix_ws_shape_errors():
    with pytest.raises(ValueError, match="w_b"):
        mix_ws(np.zeros((4, 3)), np.ones((5, 3)), [0])
    with pytest.raises(ValueError, match="w_a"):
        mix_ws(np.zeros(3), np.ones(3), [0])
    with pytest.raises(ValueError, match="w_a"):
        mix_ws(np.full((4, 3), np.nan), np.ones((4, 3)), [0])


def test_interpolation_paths():
    a = np.random.RandomState(0).randn(8).astype(np.float32)
    b = np.random.RandomState(1).randn(8).astype(np.float32)
    path = latents.interpolation_path(a, b, 5, mode="slerp")
    assert path.shape == (5, 8)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    # slerp of equal-norm vectors keeps the norm; lerp shrinks it in the middle
    u, v = a / np.linalg.norm(a), b / np.linalg.norm(b)
    mid = latents.interpolation_path(u, v, 3, mode="slerp")[1]
    assert abs(np.linalg.norm(mid) - 1) < 1e-5
    assert np.linalg.norm(latents.interpolation_path(u, v, 3)[1]) < 1 - 1e-3
    with pytest.raises(ValueError, match="num_frames"):
        latents.interpolation_path(a, b, 1)
    with pytest.raises(ValueError, match="mode"):
        latents.interpolation_path(a, b, 3, mode="cubic")


def test_class_vectors():
    c = latents.check_c(2, 4, 3)
    assert c.shape == (3, 4) and (c.argmax(1) == 2).all() and c.sum() == 3
    assert latents.check_c([0, 1], 4, 2).argmax(1).tolist() == [0, 1]
    assert latents.check_c(None, 0, 5) is None
    for bad, match in [(None, "conditional"), (4, "class index"), ([0], "classes")]:
        with pytest.raises(ValueError, match=match):
            latents.check_c(bad, 4, 2)
    with pytest.raises(ValueError, match="unconditional"):
        latents.check_c(1, 0, 1)
    with pytest.raises(ValueError, match="unconditional"):
        latents.check_c(np.ones((1, 3)), 0, 1)


def test_class_names_resolve_to_indices():
    names = ("Flags", "Smileys & Emotion", "Symbols")
    assert latents.check_c("Symbols", 3, 2, names).argmax(1).tolist() == [2, 2]
    assert latents.check_c(["Flags", 1, "Symbols"], 3, 3, names).argmax(1).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"c: no class named 'Food'; this model's classes: 'Flags', 'Smileys & Emo"):
        latents.check_c("Food", 3, 1, names)
    with pytest.raises(ValueError, match=r"conditional; give a class name or index, e.g. c='Flags' \(its classes: 'Fl"):
        latents.check_c(None, 3, 1, names)
    with pytest.raises(ValueError, match="classes have no names; give a class index instead of 'Flags'"):
        latents.check_c("Flags", 3, 1)
    with pytest.raises(ValueError, match="unconditional"):
        latents.check_c("Flags", 0, 1)
