"""Direction sets, SeFa, GANSpace and the one edit (stylegan_sdk/editing, calls.Edit / calls.Edits).

SeFa is checked against literal transcriptions of the two published rules on the reference fixtures,
written here from the official weights (not through our importers or our own selection of layers):
genforce/sefa's `factorize_weight` on the NVlabs StyleGAN2 state dict, and rosinality's
`closed_form_factorization.py` on a rosinality checkpoint.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES

import stylegan_sdk as sg
from stylegan_sdk import calls
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.editing.directions import MAX_STRENGTH, Directions

SKIP32 = FIXTURES / "nvlabs-stylegan2" / "sg2_skip_32"
ROSINALITY = FIXTURES / "rosinality-stylegan2" / "sg2_32"


def unit_rows(k: int, w_dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.RandomState(seed).randn(k, w_dim)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def toy_set(cfg: GeneratorConfig, k: int = 3, layers=None) -> Directions:
    return Directions(vectors=unit_rows(k, cfg.w_dim), values=np.arange(k, 0, -1, dtype=np.float32),
                      names=tuple(f"d{i}" for i in range(k)), kind="sefa", layers=layers)


def top_cosines(a: np.ndarray, b: np.ndarray, k: int = 5) -> np.ndarray:
    """|cos| between the first k rows of a and b."""
    a, b = a[:k].astype(np.float64), b[:k].astype(np.float64)
    return np.abs(np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


# ----------------------------------------------------------------------------
# SeFa against the published rules


def genforce_factorize(state: dict[str, np.ndarray], resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """genforce/sefa `factorize_weight` for StyleGAN2, layer_idx 'all': layer i is the i-th conv layer
    (4 px: conv1; every later block conv0, conv1), and the last index is the last ToRGB ('output'); each
    style weight transposed to [w_dim, C], concatenated, columns normalised, eigenvectors of W·Wᵀ."""
    convs = ["synthesis.b4.conv1.affine.weight"]
    res = 8
    while res <= resolution:
        convs += [f"synthesis.b{res}.conv0.affine.weight", f"synthesis.b{res}.conv1.affine.weight"]
        res *= 2
    layers = convs + [f"synthesis.b{resolution}.torgb.affine.weight"]
    weight = np.concatenate([state[name].T for name in layers], axis=1).astype(np.float32)
    weight = weight / np.linalg.norm(weight, axis=0, keepdims=True)
    eigen_values, eigen_vectors = np.linalg.eig(weight.dot(weight.T))
    order = np.argsort(-eigen_values.real)
    return eigen_values.real[order], eigen_vectors.real.T[order]


def test_sefa_genforce_matches_the_published_rule_on_an_nvlabs_pickle():
    state = dict(np.load(SKIP32 / "G_state_dict.npz"))
    values, vectors = genforce_factorize(state, 32)
    d = sg.sefa(SKIP32 / "network-snapshot.pkl", k=5)
    assert d.kind == "sefa" and d.layers is None and d.meta["convention"] == "genforce"
    assert np.all(top_cosines(d.vectors, vectors) >= 0.999), top_cosines(d.vectors, vectors)
    np.testing.assert_allclose(d.values, values[:5], rtol=1e-4)


def test_sefa_rosinality_matches_closed_form_factorization_on_a_rosinality_checkpoint():
    torch = pytest.importorskip("torch")
    ckpt = torch.load(ROSINALITY / "checkpoint_converted_layout.pt", weights_only=True)
    modulate = {k: v for k, v in ckpt["g_ema"].items()
                if "modulation" in k and "to_rgbs" not in k and "weight" in k}
    weight_mat = [v for _, v in modulate.items()]
    W = torch.cat(weight_mat, 0)
    eigvec = torch.svd(W).V.to("cpu")
    reference = eigvec.T.numpy()                       # rows: the script's eigvec[:, i]
    d = sg.sefa(ROSINALITY / "checkpoint.pt", k=5, convention="rosinality")
    assert np.all(top_cosines(d.vectors, reference) >= 0.999), top_cosines(d.vectors, reference)
    singular = torch.svd(W).S.numpy()
    np.testing.assert_allclose(d.values, singular[:5] ** 2, rtol=1e-3)  # values: eigenvalues of WᵀW


@pytest.mark.parametrize("path, arch, affines", [
    (FIXTURES / "rosinality-stylegan1" / "v1_32" / "checkpoint.model", "stylegan1", 8),   # 2 AdaIN per block
    (FIXTURES / "nvlabs-stylegan3" / "sg3t_32" / "network-snapshot.pkl", "stylegan3", 15),  # L0..L14, no input
    (FIXTURES / "nvidia-tf" / "sg2_tf_32_configf" / "network.pkl", "stylegan2", 8),
])
def test_sefa_reads_every_family_and_format(path, arch, affines):
    d = sg.sefa(path, k=4)
    assert d.model["arch"] == arch and len(d.meta["affines"]) == affines
    assert not any("input.affine" in a for a in d.meta["affines"])
    np.testing.assert_allclose(np.linalg.norm(d.vectors, axis=1), 1, atol=1e-5)
    assert np.all(np.diff(d.values) <= 0)


def test_sefa_layers_restrict_the_affines_and_own_the_rows():
    d = sg.sefa(SKIP32 / "network-snapshot.pkl", k=3, layers="0-1")
    assert d.layers == (0, 1)
    assert d.meta["affines"] == ["synthesis.b4.conv1.affine.weight", "synthesis.b8.conv0.affine.weight"]
    with pytest.raises(ValueError, match="^convention:"):
        sg.sefa(SKIP32 / "network-snapshot.pkl", convention="pca")
    with pytest.raises(ValueError, match="^k:"):
        sg.sefa(SKIP32 / "network-snapshot.pkl", k=0)
    with pytest.raises(ValueError, match="^layers:"):
        sg.sefa(SKIP32 / "network-snapshot.pkl", layers="40")
    with pytest.raises(FileNotFoundError, match="^path:"):
        sg.sefa(SKIP32 / "missing.pkl")


# ----------------------------------------------------------------------------
# GANSpace


def test_ganspace_captures_the_variance_of_an_independent_sample(skip32_generator):
    G = skip32_generator
    k = 5
    d = sg.ganspace(G, k=k, samples=20_000, seed=0)
    assert d.kind == "ganspace" and d.mean.shape == (G.config.w_dim,)
    w = G.map(np.random.RandomState(123).randn(20_000, G.config.z_dim))[:, 0].astype(np.float64)
    centred = w - w.mean(axis=0)
    cov = centred.T @ centred / (len(w) - 1)
    top = np.sort(np.linalg.eigvalsh(cov))[::-1][:k].sum()
    captured = np.trace(d.vectors.astype(np.float64) @ cov @ d.vectors.T.astype(np.float64))
    assert captured >= 0.97 * top, captured / top
    np.testing.assert_allclose(d.values ** 2, np.diag(d.vectors @ cov @ d.vectors.T), rtol=0.1)


def test_ganspace_is_deterministic_and_chunked(skip32_generator):
    seen = []
    a = sg.ganspace(skip32_generator, k=3, samples=5000, seed=7, progress=lambda done, total: seen.append(done))
    b = sg.ganspace(skip32_generator, k=3, samples=5000, seed=7)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert seen[-1] == 5000 and len(seen) == 3      # chunks of 2048
    with pytest.raises(ValueError, match="^samples:"):
        sg.ganspace(skip32_generator, k=3, samples=3)


# ----------------------------------------------------------------------------
# The file format


def test_directions_round_trip_and_refuse_what_is_not_one(tmp_path):
    cfg = GeneratorConfig(img_resolution=16, z_dim=8, w_dim=8, channel_base=256, channel_max=16)
    d = Directions(vectors=unit_rows(3, 8), values=[3.0, 2.0, 1.0], names=("a", "b", "c"), kind="ganspace",
                   layers=(0, 2), model={"arch": "stylegan2"}, mean=np.ones(8), meta={"samples": 10})
    d.check_for(cfg)
    d.save(tmp_path / "d.safetensors")
    e = sg.load_directions(tmp_path / "d.safetensors")
    np.testing.assert_array_equal(e.vectors, d.vectors)
    np.testing.assert_array_equal(e.mean, d.mean)
    assert (e.names, e.kind, e.layers, e.model, e.meta) == (d.names, d.kind, d.layers, d.model, d.meta)
    assert not (tmp_path / "d.safetensors").read_bytes().startswith(b"\x80")   # never a pickle
    (tmp_path / "junk").write_bytes(b"\x80\x04junk")
    with pytest.raises(ValueError, match="not a readable direction set"):
        sg.load_directions(tmp_path / "junk")
    sg.save_checkpoint(tmp_path / "ckpt.safetensors", cfg, {"mapping.w_avg": np.zeros(8)})
    with pytest.raises(ValueError, match="not a direction set"):
        sg.load_directions(tmp_path / "ckpt.safetensors")
    with pytest.raises(FileNotFoundError, match="^path:"):
        sg.load_directions(tmp_path / "none")


@pytest.mark.parametrize("change, message", [
    (dict(vectors=np.ones((2, 8), np.float32)), "^vectors: every row must have unit length"),
    (dict(values=[1.0]), "^values:"),
    (dict(names=("a", "a")), "^names: must be unique"),
    (dict(names=("a", "7")), "^names:"),
    (dict(kind="pca"), "^kind:"),
    (dict(layers=(2, 1)), "^layers:"),
    (dict(mean=np.zeros(3)), "^mean:"),
    (dict(vectors=np.full((2, 8), np.nan, np.float32)), "^vectors: contains NaN"),
])
def test_directions_check_their_fields(change, message):
    fields = dict(vectors=unit_rows(2, 8), values=[1.0, 0.5], names=("a", "b"), kind="sefa", layers=None)
    with pytest.raises(ValueError, match=message):
        Directions(**{**fields, **change})


# ----------------------------------------------------------------------------
# The edit


@pytest.fixture(scope="module")
def cfg() -> GeneratorConfig:
    return GeneratorConfig(img_resolution=16, z_dim=8, w_dim=8, channel_base=256, channel_max=16)


def test_edit_adds_strength_times_vector_on_the_chosen_rows_only(cfg):
    d = toy_set(cfg, layers=(1, 2))
    ws = np.random.RandomState(0).randn(2, cfg.num_ws, cfg.w_dim).astype(np.float32)
    out = calls.Edit.check(cfg, ws, d, {0: 2.0, "d2": -0.5}).finish()
    expected = ws.copy()
    expected[:, [1, 2]] += (2.0 * d.vectors[0].astype(np.float64) - 0.5 * d.vectors[2]).astype(np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_array_equal(np.delete(out, [1, 2], axis=1), np.delete(ws, [1, 2], axis=1))
    # names and indices ("2" too) are the same directions; strength 0 changes nothing
    np.testing.assert_array_equal(out, calls.Edit.check(cfg, ws, d, {"d0": 2.0, "2": -0.5}).finish())
    np.testing.assert_array_equal(calls.Edit.check(cfg, ws, d, {0: 0.0, "d1": 0}).finish(), ws)
    # layers overrides the set's rows; one [num_ws, w_dim] in, one out
    one = calls.Edit.check(cfg, ws[0], d, {1: 1.0}, layers="coarse").finish()
    rows = cfg.layers_in_group("coarse")
    assert one.shape == ws[0].shape
    np.testing.assert_allclose(one[rows] - ws[0][rows], np.broadcast_to(d.vectors[1], (len(rows), 8)), atol=1e-6)
    untouched = [i for i in range(cfg.num_ws) if i not in rows]
    np.testing.assert_array_equal(one[untouched], ws[0][untouched])
    # a set with no layers: every row
    every = calls.Edit.check(cfg, ws, toy_set(cfg), {0: 1.0}).finish()
    np.testing.assert_allclose(every - ws, np.broadcast_to(d.vectors[0], ws.shape), atol=1e-6)


@pytest.mark.parametrize("strengths, message", [
    ({3: 1.0}, r"^strengths: direction 3 is out of range"),
    ({"nope": 1.0}, r"^strengths: no direction named 'nope'"),
    ({0: float("nan")}, r"^strengths: the strength of 0 must be finite"),
    ({0: 10 * MAX_STRENGTH}, r"^strengths: the strength of 0 must be finite and at most"),
    ({0: "1"}, r"^strengths: the strength of 0 must be a number"),
    ({0: 1.0, "d0": 2.0}, r"^strengths: direction 0 \('d0'\) is given twice"),
    ([1.0], r"^strengths: expected a map"),
    ({1.5: 1.0}, r"^strengths: directions are chosen by index or name"),
])
def test_edit_names_the_bad_strength(cfg, strengths, message):
    ws = np.zeros((1, cfg.num_ws, cfg.w_dim), np.float32)
    with pytest.raises(ValueError, match=message):
        calls.Edit.check(cfg, ws, toy_set(cfg), strengths)


def test_edit_names_the_bad_directions_and_rows(cfg):
    ws = np.zeros((1, cfg.num_ws, cfg.w_dim), np.float32)
    with pytest.raises(ValueError, match=r"^directions: no direction set named 'x' \(this model has none\)"):
        calls.Edit.check(cfg, ws, "x", {0: 1.0})
    with pytest.raises(ValueError, match=r"^directions: expected a Directions"):
        calls.Edit.check(cfg, ws, unit_rows(2, 8), {0: 1.0})
    wide = Directions(vectors=unit_rows(2, 16), values=[1, 1], names=("a", "b"), kind="sefa", layers=None)
    with pytest.raises(ValueError, match=r"^directions: vectors have w_dim 16"):
        calls.Edit.check(cfg, ws, wide, {0: 1.0})
    with pytest.raises(ValueError, match=r"^directions: layers \[0, 40\] go past"):
        calls.Edit.check(cfg, ws, toy_set(cfg, layers=(0, 40)), {0: 1.0})
    with pytest.raises(ValueError, match=r"^layers:"):
        calls.Edit.check(cfg, ws, toy_set(cfg), {0: 1.0}, layers="99")
    with pytest.raises(ValueError, match=r"^ws:"):
        calls.Edit.check(cfg, ws[:, :2], toy_set(cfg), {0: 1.0})


def test_edits_in_generate_synthesize_and_mix_equal_the_edit_call(tmp_path):
    d = sg.sefa(SKIP32 / "network-snapshot.pkl", k=4, layers="0-3")
    d.save(tmp_path / "sefa.safetensors")
    G = sg.load(SKIP32 / "network-snapshot.pkl", directions={"sefa": tmp_path / "sefa.safetensors"})
    assert list(G.directions) == ["sefa"] and G.directions["sefa"].layers == (0, 1, 2, 3)
    ws = G.map(sg.seed_to_z([3, 4], G.config.z_dim), psi=0.7)
    edited = G.edit(ws, "sefa", {0: 4.0, "sefa2": -2.0})
    np.testing.assert_array_equal(edited, G.edit(ws, G.directions["sefa"], {"sefa0": 4.0, 2: -2.0}))
    edits = {"sefa": {0: 4.0, "sefa2": -2.0}}
    np.testing.assert_array_equal(G.generate([3, 4], psi=0.7, output="float", edits=edits),
                                  G.synthesize(edited))
    np.testing.assert_array_equal(G.synthesize(ws, edits=edits), G.synthesize(edited))
    mixed = calls.Mix.check(G.config, ws, ws[::-1], "coarse").ws
    np.testing.assert_array_equal(G.mix(ws, ws[::-1], "coarse", output="float", edits=edits),
                                  G.synthesize(G.edit(mixed, "sefa", edits["sefa"])))
    # no edits, empty edits and strength 0: the images without edits, exactly
    plain = G.generate([3, 4], psi=0.7, output="float")
    for none in (None, {}, {"sefa": {}}, {"sefa": {0: 0.0}}):
        np.testing.assert_array_equal(G.generate([3, 4], psi=0.7, output="float", edits=none), plain)
    with pytest.raises(ValueError, match=r"^edits: no direction set named 'smile' \(this model has 'sefa'\)"):
        G.generate(3, edits={"smile": {0: 1.0}})
    with pytest.raises(ValueError, match=r"^edits\['sefa'\]: direction 9 is out of range"):
        G.generate(3, edits={"sefa": {9: 1.0}})
    with pytest.raises(ValueError, match=r"^edits: expected a map"):
        G.synthesize(ws, edits=[1.0])


def test_load_refuses_sets_that_do_not_fit(skip32_generator, tmp_path):
    cfg = skip32_generator.config
    wide = Directions(vectors=unit_rows(2, cfg.w_dim + 1), values=[1, 1], names=("a", "b"), kind="sefa",
                      layers=None)
    with pytest.raises(ValueError, match=r"^directions\['wide'\]: vectors have w_dim"):
        sg.load(SKIP32 / "network-snapshot.pkl", directions={"wide": wide})
    with pytest.raises(ValueError, match=r"^directions: expected a map"):
        sg.load(SKIP32 / "network-snapshot.pkl", directions=[wide])


def test_the_bundled_checkpoint_carries_the_sets_of_its_export():
    folder, checkpoint = sg.load("default"), sg.load("default", backend="torch")
    assert list(checkpoint.directions) == list(folder.directions) == ["sefa", "ganspace", "attributes"]
    for name, d in folder.directions.items():
        np.testing.assert_array_equal(checkpoint.directions[name].vectors, d.vectors)
