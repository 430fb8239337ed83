"""The bundled default model: loads by name on every backend, matches its checkpoint, and is served."""

from __future__ import annotations

import json
import os

import numpy as np

import stylegan_sdk as sg
from stylegan_sdk.loading import DEFAULT_CHECKPOINT, DEFAULT_DIR, DEFAULT_EXPORT


def test_default_model_is_bundled_with_card_and_attribution():
    for path in (DEFAULT_CHECKPOINT, DEFAULT_EXPORT, os.path.join(DEFAULT_DIR, "MODEL_CARD.md"),
                 os.path.join(DEFAULT_DIR, "ATTRIBUTION.md")):
        assert os.path.exists(path), path
    size = os.path.getsize(DEFAULT_CHECKPOINT) + sum(
        os.path.getsize(os.path.join(DEFAULT_EXPORT, f)) for f in os.listdir(DEFAULT_EXPORT))
    assert size < 30e6
    manifest = json.loads(open(os.path.join(DEFAULT_EXPORT, "model.json")).read())
    assert manifest["config"] == sg.read_model(DEFAULT_CHECKPOINT).config.to_dict()


def test_default_loads_on_onnxruntime_and_torch_with_the_same_images():
    G_ort = sg.load("default")
    G_pt = sg.load("default", backend="torch")
    assert G_ort.info.backend == "onnxruntime" and G_pt.info.backend == "torch"
    assert G_ort.info.img_resolution == G_pt.info.img_resolution
    a = G_ort.generate("0-3", psi=0.7, output="float")
    b = G_pt.generate("0-3", psi=0.7, output="float")
    assert float(np.abs(a - b).max()) <= 1e-4
    u8 = G_ort.generate("0-15", psi=0.7, output="uint8")
    assert u8.std() > 10  # a trained model draws varied pictures, not a flat colour
    assert float(np.abs(u8[0].astype(float) - u8[1].astype(float)).mean()) > 5  # seeds differ
