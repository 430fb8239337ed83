"""Linear separability (training/metrics/separability/): known answers on synthetic cases, the classifier,
and ls_z / ls_w end to end on a generator whose answer is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from stylegan_sdk.config import GeneratorConfig
from training.metrics import MetricError, calc_metric, parse_metric
from training.metrics.separability import (
    ClassifierInfo,
    attribute_table,
    balanced_accuracy,
    compute_separability,
    conditional_entropy,
    fit_linear_svm,
    linear_separability,
    load_classifier,
    most_confident_half,
    save_classifier,
    separability_score,
    train_classifier,
)

LN2 = math.log(2)


def test_conditional_entropy_known_values():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1], bool)
    assert conditional_entropy(y, y) == 0.0                       # the side gives the label
    assert conditional_entropy(y, ~y) == 0.0                      # ... or its opposite
    balanced = np.array([0, 0, 1, 1] * 2, bool)
    assert conditional_entropy(balanced, np.array([0, 1] * 4, bool)) == pytest.approx(LN2)  # independent
    assert conditional_entropy(y, np.zeros(8, bool)) == pytest.approx(LN2)           # one side only: H(Y)
    # p(x=0) = 1/2 with labels 1/4 positive, p(x=1) = 1/2 with labels all positive: H = 1/2 H(1/4).
    y2, x2 = np.array([1, 0, 0, 0, 1, 1, 1, 1], bool), np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    h14 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert conditional_entropy(y2, x2) == pytest.approx(0.5 * h14)
    with pytest.raises(ValueError, match="labels, sides"):
        conditional_entropy(y, y[:3])


def test_score_is_exp_of_the_sum_and_the_half_is_the_most_confident():
    assert separability_score([0.0, 0.0]) == 1.0
    assert separability_score([LN2, LN2, LN2]) == pytest.approx(8.0)
    np.testing.assert_array_equal(most_confident_half(np.array([0.1, 0.5, 0.2, 0.4, 0.3, 0.0])), [1, 3, 4])


def test_linear_svm_separates_what_a_hyperplane_separates_and_nothing_else():
    rng = np.random.RandomState(0)
    x = rng.randn(2000, 16)
    v = rng.randn(16)
    y = x @ v + 0.3 > 0
    w, b = fit_linear_svm(x, y)
    assert ((x @ w + b > 0) == y).mean() > 0.99
    confident = np.ones(len(x))
    assert linear_separability(x, y, confident) < 0.03                            # H ~ 0
    assert linear_separability(x, rng.rand(len(x)) < 0.5, confident) > 0.95 * LN2  # H ~ ln 2
    # A label that is linear only among the confident half: kept half is separable, the rest is noise.
    noisy = y.copy()
    margin = np.abs(x @ v + 0.3)
    flip = margin < np.median(margin)
    noisy[flip] = rng.rand(flip.sum()) < 0.5
    assert linear_separability(x, noisy, margin) < 0.05
    assert linear_separability(x, noisy, np.ones(len(x))) > 0.2
    assert linear_separability(x, np.ones(len(x), bool), confident) == 0.0       # one class: nothing unknown


def _toy_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images: attribute 0 = bright, attribute 1 = red dominant."""
    rng = np.random.RandomState(seed)
    bright, red = rng.rand(n) < 0.5, rng.rand(n) < 0.5
    img = rng.randint(0, 60, [n, 3, 8, 8]) + np.where(bright, 150, 0)[:, None, None, None]
    img[:, 0] += np.where(red, 90, 0)[:, None, None]
    return np.clip(img, 0, 255).astype(np.uint8), np.stack([bright, red], 1)


def test_classifier_learns_easy_attributes_and_round_trips(tmp_path):
    images, targets = _toy_images(600)
    groups = np.arange(600) // 2  # pairs held out together
    net, info = train_classifier(images, targets, ["bright", "red"], groups, width=16, epochs=6, batch=32, lr=3e-3,
                                 log=lambda _: None)
    assert info.training["held_out"] % 2 == 0 and info.width == 16
    assert info.accuracy["bright"] > 0.95 and info.accuracy["red"] > 0.85
    assert info.balanced_accuracy["bright"] > 0.95
    save_classifier(net, info, str(tmp_path / "clf"))
    loaded, info2 = load_classifier(str(tmp_path / "clf"))
    assert info2 == info
    with torch.no_grad():
        x = torch.from_numpy(images[:10])
        torch.testing.assert_close(loaded(x), net(x))
    assert balanced_accuracy(np.zeros(10, bool), np.arange(10) < 2) == 0.5
    with pytest.raises(MetricError, match="no classifier.json"):
        load_classifier(str(tmp_path))


def test_attribute_table_from_emoji_style_records(tmp_path):
    labels = {"categories": ["A", "B"], "labels": {
        "x/1.png": {"category": "A", "skin_tone": None, "name": "one"},
        "x/2.png": {"category": "B", "skin_tone": "1F3FB", "name": "two"},
        "x/3.png": {"category": "B", "skin_tone": None, "name": "one"}}}
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(labels))
    names, table, groups = attribute_table(str(path), ["x/1.png", "x/2.png", "x/3.png"])
    assert names == ["category: A", "category: B", "has a skin tone"]
    assert len(set(groups.tolist())) == 2 and groups[0] == groups[2]  # same emoji name: one group
    np.testing.assert_array_equal(table, [[1, 0, 0], [0, 1, 1], [0, 1, 0]])
    with pytest.raises(MetricError, match="no record"):
        attribute_table(str(path), ["x/4.png"])


def test_attribute_table_from_any_records(tmp_path):
    """Not only emoji64's fields (issue 32): true / false fields, fields with nulls, categorical fields; a bare
    {path: record} mapping; no group field -> each image its own group."""
    labels = {"a.png": {"smiling": True, "hair": "black", "hat": None},
              "b.png": {"smiling": False, "hair": "blond", "hat": "cap"},
              "c.png": {"smiling": True, "hair": "blond", "hat": None}}
    path = tmp_path / "faces.json"
    path.write_text(json.dumps(labels))
    names, table, groups = attribute_table(str(path), ["a.png", "b.png", "c.png"], ["smiling", "hair", "hat"])
    assert names == ["smiling", "hair: black", "hair: blond", "has a hat"]
    np.testing.assert_array_equal(table, [[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]])
    assert sorted(groups.tolist()) == [0, 1, 2]
    with pytest.raises(MetricError, match="no field 'mood'"):
        attribute_table(str(path), ["a.png"], ["mood"])
    with pytest.raises(MetricError, match="no field 'person'"):
        attribute_table(str(path), ["a.png"], ["hair"], group_field="person")


class _ThresholdClassifier(torch.nn.Module):
    """Attribute 0: brighter than middle gray. Attribute 1: far from middle gray (either way): two-sided."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        m = img.float().mean(dim=(1, 2, 3))
        return torch.stack([(m - 128) * 10, ((m - 128).abs() - 40) * 10], 1)


class _LinearG(torch.nn.Module):
    """mapping: w = tanh(A z) per coordinate (nonlinear in z); synthesis: a flat image of brightness 128 + 100 w_0."""

    def __init__(self):
        super().__init__()
        self.num_ws = 1
        self.mapping = torch.nn.Module()
        self.mapping.z_dim, self.mapping.c_dim = 8, 0
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(8, 8, generator=gen)
        self.mapping.forward = lambda z, c: torch.tanh(3 * (z @ a) ** 3)
        self.cfg = GeneratorConfig(img_resolution=8, img_channels=3, use_noise=False, z_dim=8, w_dim=8)

    def synthesis(self, ws, noise_mode="const", noise=None):
        level = ws[:, 0, 0].reshape(-1, 1, 1, 1) * 0.78
        return level.expand(-1, 3, 8, 8)


def test_separability_end_to_end_known_answers():
    """Brightness follows sign(w_0): one hyperplane in W, and in Z (w_0 = tanh(3 (a.z)^3) keeps the sign of a
    linear function of z): H ~ 0 in both. "Far from gray" is |w_0| > t, two-sided: no hyperplane separates it,
    H well above 0. The score is exp(H_bright + H_far)."""
    G = _LinearG()
    info = ClassifierInfo("stylegan-sdk.attribute-classifier/1", ["bright", "far"], 8, 3, 32, {}, {}, {}, {})
    for space in ("w", "z"):
        out = compute_separability(G, _ThresholdClassifier(), info, 4000, space, batch=1000)
        assert out["entropies"]["bright"] < 0.05, space
        assert out["entropies"]["far"] > 0.2, space
        assert out["score"] == pytest.approx(math.exp(sum(out["entropies"].values())))
        assert out["samples"] == 4000
    with pytest.raises(ValueError, match="space"):
        compute_separability(G, _ThresholdClassifier(), info, 10, "x")
    # An attribute the classifier cannot tell apart on real images is left out of the score, and said so.
    info.balanced_accuracy = {"bright": 0.9, "far": 0.6}
    out = compute_separability(G, _ThresholdClassifier(), info, 1000, "w", batch=1000)
    assert list(out["entropies"]) == ["bright"] and out["left_out"] == ["far"]
    assert 0.3 < out["positive_share"]["bright"] < 0.7


class _ClassG(_LinearG):
    """Conditional, 2 classes: w_0 = +-0.9 by the class, w_1 = the first z coordinate; the picture shows w_0, so
    "bright" is the class: a hyperplane on the class coordinates of [z, c] separates it, as one on w_0 does."""

    def __init__(self):
        super().__init__()
        self.mapping.c_dim = 2
        # w [N, 8] = [class sign * 0.9, z_0, six zeros]
        self.mapping.forward = lambda z, c: torch.cat([(c[:, :1] - c[:, 1:]) * 0.9, z[:, :1], z[:, 2:] * 0], 1)


def test_separability_of_a_conditional_generator_sees_the_class_in_both_spaces():
    info = ClassifierInfo("stylegan-sdk.attribute-classifier/1", ["bright", "far"], 8, 3, 32, {}, {}, {}, {})
    for space in ("z", "w"):
        out = compute_separability(_ClassG(), _ThresholdClassifier(), info, 2000, space, batch=500)
        assert out["entropies"]["bright"] < 0.02, space
        assert 0.45 < out["positive_share"]["bright"] < 0.55  # classes drawn evenly
        assert out["positive_share"]["far"] == 1.0  # |w_0| = 0.9: always far from gray


def test_metric_names_and_missing_classifier():
    spec = parse_metric("ls_z")
    assert (spec.kind, spec.space, spec.num_gen, spec.weights) == ("ls", "z", 200_000, None)
    assert parse_metric("ls_w_20k").num_gen == 20_000 and parse_metric("ls_w_500").num_gen == 500
    with pytest.raises(MetricError, match="unknown metric"):
        parse_metric("ls_q")
    with pytest.raises(MetricError, match="classifier"):
        calc_metric("ls_w_10", _LinearG())


def test_the_bundled_models_classifier_loads():
    from stylegan_sdk.loading import DEFAULT_DIR

    net, info = load_classifier(f"{DEFAULT_DIR}/attribute_classifier")
    assert info.resolution == 32 and info.channels == 3 and len(info.attributes) == 11
    assert info.attributes[-1] == "has a skin tone" and info.training["held_out"] > 1000
    assert all(0.5 <= v <= 1 for v in info.balanced_accuracy.values())
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 11)
