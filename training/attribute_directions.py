"""The bundled model's direction sets, made with one command (the model card records it):

    python -m training.attribute_directions --out stylegan_sdk/default_model/directions

writes three sets for stylegan_sdk/default_model/ (emoji.safetensors and its export emoji_onnx/, which share
one model identity):

    attributes.safetensors   InterFaceGAN boundaries (sg.boundary) scored by the bundled attribute classifier
                             (attribute_classifier/, training/metrics/separability/): one direction per
                             attribute it tells apart on held-out real images (balanced accuracy >= 0.75, the
                             rule of the separability metric), named as ATTRIBUTES below
    sefa.safetensors         sg.sefa(emoji.safetensors, k=10)
    ganspace.safetensors     sg.ganspace(G, k=10, samples=100000)

Each boundary is then checked: 200 new samples are moved by -3, 0 and +3 standard deviations of W along it
and scored again; the mean classifier outputs are printed, and stored in the set's meta ("check").
The images are made by the exported model on ONNX Runtime (the same model, and 2-6 times faster than torch on
this 2-core CPU); --backend torch uses the checkpoint. About 2 CPU minutes in all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

import stylegan_sdk as sg
from stylegan_sdk._cli import OneLineParser, UserError, run_command
from stylegan_sdk.editing.boundary import edit_effect
from stylegan_sdk.editing.directions import model_identity
from stylegan_sdk.loading import DEFAULT_DIR
from stylegan_sdk.progress import Progress

from .metrics.feature_nets import MetricError
from .metrics.separability import MIN_BALANCED_ACCURACY, AttributeClassifier, load_classifier

# The classifier's attributes that become directions, and their names in the set.
ATTRIBUTES = {
    "category: Smileys & Emotion": "smiley",
    "category: People & Body": "person",
    "category: Flags": "flag",
    "category: Symbols": "symbol",
    "category: Travel & Places": "travel",
    "has a skin tone": "skin_tone",
}


class ClassifierScores:
    """uint8 images [N, H, W, C] -> the classifier's logits (or probabilities) [N, A] for `columns`."""

    def __init__(self, net: AttributeClassifier, columns: Sequence[int], probabilities: bool = False) -> None:
        self.net, self.columns, self.probabilities = net, list(columns), probabilities
        self.__qualname__ = f"attribute classifier {'probabilities' if probabilities else 'logits'}"

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        logits = self.net(x)[:, self.columns]
        return (torch.sigmoid(logits) if self.probabilities else logits).double().numpy()


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training.attribute_directions",
                      description="Compute the bundled model's direction sets: attributes, sefa, ganspace.")
    p.add_argument("--out", default=os.path.join(DEFAULT_DIR, "directions"), help="folder for the three files")
    p.add_argument("--model", default=DEFAULT_DIR, help="the model folder (emoji.safetensors, emoji_onnx/, "
                                                           "attribute_classifier/)")
    p.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime",
                   help="what makes the images: the export on ONNX Runtime or the checkpoint on torch")
    p.add_argument("--samples", type=int, default=20_000, help="samples scored for the boundaries")
    p.add_argument("--ratio", type=float, default=0.02, help="share kept at each end (InterFaceGAN's 0.02)")
    p.add_argument("--seed", type=int, default=0, help="first seed of the boundaries' samples")
    p.add_argument("--check-samples", type=int, default=200, help="samples moved along each boundary to check it")
    p.add_argument("--sigmas", type=float, default=3.0, help="the check's move, in standard deviations of W")
    p.add_argument("--k", type=int, default=10, help="SeFa and GANSpace directions")
    p.add_argument("--ganspace-samples", type=int, default=100_000, help="mapped z for GANSpace")
    p.add_argument("--only", default="attributes,sefa,ganspace", help="comma-separated sets to make")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("training.attribute_directions", lambda: run(args), user_errors=(MetricError,))


def run(args: argparse.Namespace) -> None:
    sets = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sets) - {"attributes", "sefa", "ganspace"})
    if unknown or not sets:
        raise UserError(f"only: choose from attributes, sefa, ganspace; got {args.only!r}")
    checkpoint = os.path.join(args.model, "emoji.safetensors")
    source = checkpoint if args.backend == "torch" else os.path.join(args.model, "emoji_onnx")
    G = sg.load(source, backend=args.backend)
    reference = sg.read_model(checkpoint)
    if model_identity(G.config, G.w_avg) != model_identity(reference.config, reference.w_avg):
        raise UserError(f"model: {source!r} is not an export of {checkpoint!r} (their sizes or w_avg differ)")
    os.makedirs(args.out, exist_ok=True)
    summary: dict = {"out": args.out, "backend": args.backend}
    t_all = time.time()
    if "attributes" in sets:
        summary["attributes"] = attribute_set(G, args)
    if "sefa" in sets:
        t0 = time.time()
        d = sg.sefa(checkpoint, k=args.k)
        portable(d, args.model).save(os.path.join(args.out, "sefa.safetensors"))
        summary["sefa"] = {"values": [round(float(v), 4) for v in d.values], "seconds": round(time.time() - t0, 1)}
    if "ganspace" in sets:
        t0 = time.time()
        mapped = Progress("ganspace: mapped z", args.ganspace_samples)
        d = sg.ganspace(G, k=args.k, samples=args.ganspace_samples, seed=0,
                        progress=lambda done, total: mapped.advance(done - mapped.done))
        mapped.close()
        portable(d, args.model).save(os.path.join(args.out, "ganspace.safetensors"))
        summary["ganspace"] = {"std": [round(float(v), 4) for v in d.values], "seconds": round(time.time() - t0, 1)}
    summary["seconds"] = round(time.time() - t_all, 1)
    print(json.dumps(summary, indent=1))


def portable(d: sg.Directions, model_folder: str) -> sg.Directions:
    """d with meta["source"] under the model folder written as "default_model/..." (no path of this machine)."""
    source = d.meta.get("source")
    if not isinstance(source, str):
        return d
    relative = os.path.relpath(os.path.abspath(source), os.path.dirname(os.path.abspath(model_folder)))
    if relative.startswith(".."):
        return d
    return dataclasses.replace(d, meta={**d.meta, "source": relative.replace(os.sep, "/")})


def attribute_set(G: sg.Generator, args: argparse.Namespace) -> dict:
    """Fit, check and save attributes.safetensors; -> what to print."""
    net, info = load_classifier(os.path.join(args.model, "attribute_classifier"))
    missing = [a for a in ATTRIBUTES if a not in info.attributes]
    if missing:
        raise UserError(f"classifier: has no attribute {missing[0]!r} (it has {info.attributes})")
    weak = [a for a in ATTRIBUTES if info.balanced_accuracy.get(a, 0.0) < MIN_BALANCED_ACCURACY]
    if weak:
        raise UserError(f"classifier: {weak} are below balanced accuracy {MIN_BALANCED_ACCURACY} on held-out images")
    columns = [info.attributes.index(a) for a in ATTRIBUTES]
    t0 = time.time()
    progress = Progress("boundaries: scored images", args.samples)

    def advance(done: int, total: int) -> None:
        progress.advance(done - progress.done)

    d = sg.boundary(G, ClassifierScores(net, columns), name=list(ATTRIBUTES.values()), samples=args.samples,
                    seed=args.seed, ratio=args.ratio, progress=advance)
    progress.close()
    fitted = time.time() - t0
    check_seed = args.seed + args.samples          # seeds no boundary was fitted on
    check = {}
    for label, scorer in (("logit", ClassifierScores(net, columns)),
                          ("probability", ClassifierScores(net, columns, probabilities=True))):
        for name, row in edit_effect(G, d, scorer, sigmas=args.sigmas, samples=args.check_samples,
                                     seed=check_seed).items():
            check.setdefault(name, {"strength": round(row["strength"], 4)})[label] = \
                [round(row[k], 4) for k in ("minus", "zero", "plus")]
    meta = {**d.meta, "classifier": {"folder": "attribute_classifier", "attributes": dict(ATTRIBUTES),
                                     "scores": "logits"},
            "check": {"samples": args.check_samples, "seeds": f"{check_seed}-{check_seed + args.check_samples - 1}",
                      "sigmas": args.sigmas, "columns": "mean at -s, 0, +s", "directions": check},
            "command": "python -m training.attribute_directions"}
    d = portable(dataclasses.replace(d, meta=meta), args.model)
    d.save(os.path.join(args.out, "attributes.safetensors"))
    wrong = [n for n, c in check.items() if not c["logit"][0] < c["logit"][1] < c["logit"][2]]
    return {"names": list(d.names), "validation_accuracy": [round(float(v), 4) for v in d.values],
            "check": check, "moves_the_wrong_way": wrong, "seconds_fit": round(fitted, 1),
            "seconds": round(time.time() - t0, 1)}


if __name__ == "__main__":
    sys.exit(main())
