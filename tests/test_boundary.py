"""Attribute boundaries (stylegan_sdk/editing/boundary.py, InterFaceGAN) and the bundled model's direction sets.

The known answers come from a small random linear "generator" (LinearBackend: w = z Aᵀ + b with A orthogonal,
pixels = linear in w), so that a scoring function of the pixels is a known linear function of w and the
boundary's true normal is known. The real-network test runs the same steps on an official random StyleGAN2.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import stylegan_sdk as sg
from stylegan_sdk.backends.base import Backend
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.editing.boundary import edit_effect, project_boundary
from stylegan_sdk.editing.directions import Directions, model_identity
from stylegan_sdk.generator import Generator

MODEL = Path(sg.__file__).parent / "default_model"
ATTRIBUTES = ("smiley", "person", "flag", "symbol", "travel", "skin_tone")



def _has_sklearn() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


needs_sklearn = pytest.mark.skipif(not _has_sklearn(),
                                   reason="scikit-learn is not installed (the editing extra: pip install '.[editing]')")


class LinearBackend(Backend):
    """w = z Aᵀ + b (A orthogonal: W is isotropic), image = (mean of the ws rows) Bᵀ, [N, 3, 8, 8]."""

    name = "linear"

    def __init__(self, cfg: GeneratorConfig, seed: int = 0) -> None:
        rng = np.random.RandomState(seed)
        self.A = np.linalg.qr(rng.randn(cfg.w_dim, cfg.z_dim))[0]
        self.b = rng.randn(cfg.w_dim)
        pixels = cfg.img_channels * cfg.img_resolution ** 2
        self.B = rng.randn(pixels, cfg.w_dim) * 0.1
        super().__init__(cfg, self.b.astype(np.float32), "cpu")

    def map(self, z, c):
        return (z @ self.A.T + self.b).astype(np.float32)

    def synthesize(self, ws, noise_mode, noise, transform=None):
        r, ch = self.config.img_resolution, self.config.img_channels
        return (ws.mean(axis=1) @ self.B.T).reshape(len(ws), ch, r, r).astype(np.float32)


@pytest.fixture(scope="module")
def G() -> Generator:
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=8, img_channels=3)
    return Generator(LinearBackend(cfg), batch_size=4096)


def brightness(images: np.ndarray) -> np.ndarray:
    """float images [N, C, H, W] -> their mean: a linear function of w, u . w with u = mean of B's rows."""
    return images.reshape(len(images), -1).astype(np.float64).mean(axis=1)


def red_minus_blue(images: np.ndarray) -> np.ndarray:
    return (images[:, 0] - images[:, 2]).reshape(len(images), -1).astype(np.float64).mean(axis=1)


def truth(G: Generator, weights=None) -> np.ndarray:
    """The unit normal of the score's level sets in W (the score is linear in w)."""
    r = G.config.img_resolution ** 2
    B = G.backend.B.reshape(G.config.img_channels, r, -1)
    u = (B * np.asarray(weights if weights is not None else [1, 1, 1])[:, None, None]).mean(axis=(0, 1))
    return u / np.linalg.norm(u)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


# ----------------------------------------------------------------------------
# Known answers


@needs_sklearn
def test_recovers_the_known_normal_and_points_toward_higher_scores(G):
    d = sg.boundary(G, brightness, name="bright", samples=3000, ratio=0.05, output="float")
    assert d.kind == "boundary" and d.names == ("bright",) and d.layers is None and d.vectors.shape == (1, 16)
    assert cos(d.vectors[0], truth(G)) >= 0.9, cos(d.vectors[0], truth(G))      # signed: toward brighter
    assert d.values[0] >= 0.95                                                     # held-out accuracy
    assert d.model == model_identity(G.config, G.w_avg)
    m = d.meta
    assert (m["samples"], m["seed"], m["ratio"], m["kept"], m["validation"], m["psi"]) == (3000, 0, 0.05, 150, 45, 1.0)
    assert m["attributes"]["bright"]["validation_accuracy"] == pytest.approx(float(d.values[0]))
    # the seeds it reports as brightest are the brightest
    top = m["attributes"]["bright"]["top_seeds"]
    assert brightness(G.generate(top, output="float")).min() >= m["attributes"]["bright"]["scores_kept"][2] - 1e-4
    # deterministic for a seed; another seed gives another sample
    again = sg.boundary(G, brightness, name="bright", samples=3000, ratio=0.05, output="float")
    np.testing.assert_array_equal(again.vectors, d.vectors)


@needs_sklearn
def test_several_attributes_share_one_sample(G):
    calls = []

    def both(images):
        calls.append(len(images))
        return np.stack([brightness(images), red_minus_blue(images)], axis=1)

    d = sg.boundary(G, both, name=["bright", "red"], samples=2500, ratio=0.05, output="float", batch=1000)
    assert calls == [1000, 1000, 500]
    assert d.names == ("bright", "red")
    assert cos(d.vectors[0], truth(G)) >= 0.9
    assert cos(d.vectors[1], truth(G, weights=[3, 0, -3])) >= 0.9
    unnamed = sg.boundary(G, both, samples=1000, ratio=0.05, output="float")
    assert unnamed.names == ("boundary0", "boundary1")


@needs_sklearn
def test_moving_along_the_boundary_moves_the_score_the_right_way(G):
    d = sg.boundary(G, brightness, name="bright", samples=2000, ratio=0.05, output="float")
    effect = edit_effect(G, d, brightness, samples=200, sigmas=3.0, output="float")["bright"]
    assert effect["strength"] == pytest.approx(3 * d.meta["w_std"][0])
    assert effect["minus"] < effect["zero"] < effect["plus"]
    # the score is linear in w: each move changes it by strength * (u . n)
    u = G.backend.B.mean(axis=0)
    expected = effect["strength"] * float(u @ d.vectors[0])
    assert effect["plus"] - effect["zero"] == pytest.approx(expected, rel=1e-3)
    assert effect["zero"] - effect["minus"] == pytest.approx(expected, rel=1e-3)


@needs_sklearn
def test_conditions_are_projected_out(G):
    rng = np.random.RandomState(1)
    c1 = truth(G, weights=[3, 0, -3])                                   # the red-minus-blue normal
    c2 = rng.randn(16)
    c2 /= np.linalg.norm(c2)
    free = sg.boundary(G, brightness, samples=2000, ratio=0.05, output="float")
    for conditions in ([c1], [c1, c2], np.stack([c1, c2]),
                       Directions(vectors=np.stack([c1, c2]), values=[1, 1], names=("a", "b"), kind="boundary",
                                  layers=None)):
        d = sg.boundary(G, brightness, samples=2000, ratio=0.05, output="float", conditions=conditions)
        for c in np.atleast_2d(np.asarray(conditions.vectors if isinstance(conditions, Directions) else conditions)):
            assert abs(float(d.vectors[0].astype(np.float64) @ c)) < 1e-6
        assert np.linalg.norm(d.vectors[0]) == pytest.approx(1, abs=1e-6)
        assert cos(d.vectors[0], free.vectors[0]) > 0                  # still toward brighter
        np.testing.assert_allclose(d.meta["conditions"], np.atleast_2d(
            np.asarray(conditions.vectors if isinstance(conditions, Directions) else conditions)), atol=1e-6)


def interfacegan_project_boundary(primal: np.ndarray, *args: np.ndarray) -> np.ndarray:
    """genforce/interfacegan utils/manipulator.py `project_boundary`, transcribed: rows [1, dim], one or two
    unit conditions (the two-condition case solves for both coefficients at once)."""
    if len(args) == 1:
        cond = args[0]
        new = primal - primal.dot(cond.T) * cond
        return new / np.linalg.norm(new)
    cond_1, cond_2 = args
    primal_cond_1, primal_cond_2 = primal.dot(cond_1.T), primal.dot(cond_2.T)
    cond_1_cond_2 = cond_1.dot(cond_2.T)
    alpha = (primal_cond_1 - primal_cond_2 * cond_1_cond_2) / (1 - cond_1_cond_2 ** 2 + 1e-8)
    beta = (primal_cond_2 - primal_cond_1 * cond_1_cond_2) / (1 - cond_1_cond_2 ** 2 + 1e-8)
    new = primal - alpha * cond_1 - beta * cond_2
    return new / np.linalg.norm(new)


def test_project_boundary_matches_interfacegan_and_is_orthogonal():
    rng = np.random.RandomState(0)
    unit = [v / np.linalg.norm(v) for v in rng.randn(3, 64)]
    n, c1 = unit[0], unit[1]
    c2 = 0.8 * c1 + 0.6 * unit[2]                                      # correlated with c1
    c2 /= np.linalg.norm(c2)
    for conds in ([c1], [c1, c2]):
        ours = project_boundary(n, conds)
        reference = interfacegan_project_boundary(n[None], *[c[None] for c in conds])[0]
        assert cos(ours, reference) > 1 - 1e-6
        assert max(abs(float(ours @ c)) for c in conds) < 1e-12
    assert project_boundary(n, None) == pytest.approx(n)
    with pytest.raises(ValueError, match="^conditions: the normal of row 0 lies in the span"):
        project_boundary(c1, [c1, c2])


# ----------------------------------------------------------------------------
# Bad arguments


def unit(dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.RandomState(seed).randn(dim)
    return v / np.linalg.norm(v)


@needs_sklearn
@pytest.mark.parametrize("kwargs, message", [
    ({"samples": 10}, "^samples: must be an int"),
    ({"samples": 100.0}, "^samples: must be an int"),
    ({"seed": -1}, "^seed: must be an int"),
    ({"seed": 2**32 - 10}, "^seed: seeds seed .. seed\\+samples-1"),
    ({"psi": float("nan")}, "^psi: must be finite"),
    ({"c": 1}, "^c: this model is unconditional"),
    ({"ratio": 0.0}, "^ratio: must be a number in"),
    ({"ratio": 0.6}, "^ratio: must be a number in"),
    ({"ratio": 0.001}, "^ratio: ratio \\* samples keeps 1 samples"),
    ({"holdout": 1.0}, "^holdout: must be a number in"),
    ({"holdout": 0.01}, "^holdout: keeps 0 of the 50"),
    ({"conditions": [unit(), unit(seed=1), unit(seed=2)]}, "^conditions: at most 2"),
    ({"conditions": np.ones(8)}, "^conditions: expected vectors of w_dim 16"),
    ({"conditions": np.zeros(16)}, "^conditions: a zero vector"),
    ({"conditions": [unit(), -unit()]}, "^conditions: the two condition vectors are parallel"),
    ({"conditions": [np.full(16, np.nan)]}, "^conditions: NaN or Inf"),
    ({"conditions": "up"}, "^conditions: expected vectors"),
    ({"output": "pil"}, "^output: must be 'uint8' or 'float'"),
    ({"output": "png"}, "^output: must be one of"),
    ({"batch": 0}, "^batch: must be an int"),
    ({"name": 3}, "^name: expected a name or a list"),
    ({"name": ["a", "b"]}, "^name: scores gave 1 attribute\\(s\\) per image, got 2 name\\(s\\)"),
])
def test_bad_arguments_name_the_argument(G, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sg.boundary(G, brightness, **{"samples": 1000, "ratio": 0.05, "output": "float", **kwargs})


@needs_sklearn
@pytest.mark.parametrize("scores, message", [
    ("bright", "^scores: expected a function"),
    (lambda images: np.zeros((len(images), 2, 2)), "^scores: expected \\[500\\] or \\[500, A\\]"),
    (lambda images: np.zeros(3), "^scores: expected \\[500\\] or \\[500, A\\]"),
    (lambda images: np.full(len(images), np.nan), "^scores: NaN or Inf"),
    (lambda images: ["a"] * len(images), "^scores: the function must return numbers"),
    (lambda images: np.zeros(len(images)), "^scores: attribute 'boundary' gives the top and bottom 50 samples equal"),
])
def test_bad_scores_name_scores(G, scores, message):
    with pytest.raises(ValueError, match=message):
        sg.boundary(G, scores, samples=1000, ratio=0.05, output="float", batch=500)


def test_refuses_what_is_not_a_generator():
    with pytest.raises(ValueError, match="^G: expected a Generator"):
        sg.boundary("default", brightness)


def test_without_scikit_learn_the_error_says_what_to_install(G, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)          # import sklearn raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.svm", None)
    with pytest.raises(ImportError) as e:
        sg.boundary(G, brightness, samples=1000, ratio=0.05, output="float")
    message = str(e.value)
    assert "\n" not in message and "scikit-learn" in message
    assert "pip install" in message and "[editing]" in message


# ----------------------------------------------------------------------------
# A real network


@needs_sklearn
def test_a_real_network_moves_the_way_its_boundary_says(skip32_generator):
    G = skip32_generator

    def mean_level(images: np.ndarray) -> np.ndarray:                 # uint8 [N, H, W, C]
        return images.reshape(len(images), -1).mean(axis=1)

    d = sg.boundary(G, mean_level, name="bright", samples=400, ratio=0.1, batch=200)
    assert d.values[0] >= 0.8 and d.meta["output"] == "uint8"
    effect = edit_effect(G, d, mean_level, samples=32)["bright"]
    assert effect["minus"] < effect["zero"] < effect["plus"], effect


# ----------------------------------------------------------------------------
# The bundled model's sets


def test_the_bundled_direction_sets_fit_the_bundled_model():
    ckpt = sg.read_model(MODEL / "emoji.safetensors")
    identity = model_identity(ckpt.config, ckpt.w_avg)
    attributes = sg.load_directions(MODEL / "directions" / "attributes.safetensors")
    assert attributes.kind == "boundary" and attributes.names == ATTRIBUTES and attributes.layers is None
    assert attributes.w_dim == ckpt.config.w_dim and attributes.model == identity
    assert np.all(attributes.values >= 0.7)                          # held-out accuracy of each SVM
    check = attributes.meta["check"]["directions"]
    for name in ATTRIBUTES:                                           # each moves its own classifier output up
        minus, zero, plus = check[name]["probability"]
        assert minus < zero < plus, (name, check[name])
    sets = {"attributes": attributes}
    for kind in ("sefa", "ganspace"):
        d = sg.load_directions(MODEL / "directions" / f"{kind}.safetensors")
        assert d.kind == kind and len(d) == 10 and d.model == identity
        sets[kind] = d
    G = sg.load("default")                                            # the bundled export carries the same sets
    assert list(G.directions) == ["sefa", "ganspace", "attributes"]
    for name, d in sets.items():
        np.testing.assert_array_equal(G.directions[name].vectors, d.vectors)
        assert G.directions[name].names == d.names
    ws = G.map(sg.seed_to_z([0], G.config.z_dim))
    moved = G.edit(ws, "attributes", {"smiley": 2.0})
    assert math.isclose(float(np.linalg.norm(moved - ws, axis=-1).max()), 2.0, rel_tol=1e-5)


@needs_sklearn
def test_the_script_makes_the_three_sets(tmp_path):
    pytest.importorskip("torch")
    from training.attribute_directions import main

    out = tmp_path / "directions"
    assert main(["--out", str(out), "--samples", "300", "--ratio", "0.05", "--check-samples", "8",
                 "--ganspace-samples", "2000", "--k", "3"]) == 0
    attributes = sg.load_directions(out / "attributes.safetensors")
    assert attributes.names == ATTRIBUTES and attributes.meta["samples"] == 300
    assert attributes.meta["source"] == "default_model/emoji_onnx"              # no path of the machine
    assert set(attributes.meta["check"]["directions"]) == set(ATTRIBUTES)
    assert len(sg.load_directions(out / "sefa.safetensors")) == 3
    assert sg.load_directions(out / "ganspace.safetensors").meta["samples"] == 2000
    assert main(["--out", str(out), "--only", "colour"]) == 2
