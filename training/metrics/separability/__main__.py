"""`python -m training.metrics.separability train ...`: train the attribute classifier of the linear
separability metric (the library is the package, training/metrics/separability/__init__.py). A package's
__main__, so running it does not import the same module twice (runpy's warning)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from stylegan_sdk._cli import OneLineParser, run_command

from ...dataset import ImageDataset
from ..feature_nets import MetricError
from . import DEFAULT_ATTRIBUTES, DEFAULT_GROUP_FIELD, attribute_table, save_classifier, train_classifier


def main(argv: Sequence[str] | None = None) -> int:
    p = OneLineParser(prog="python -m training.metrics.separability",
                      description="Train the attribute classifier of the linear separability metric.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on real images and their labels")
    t.add_argument("--data", required=True, help="zip or folder of the real images (e.g. emoji64.zip)")
    t.add_argument("--labels", required=True, help="per-image records: {path: {field: value}} or {\"labels\": ...} "
                                                    "(emoji64_labels.json)")
    t.add_argument("--attributes", default=",".join(DEFAULT_ATTRIBUTES),
                   help="record fields that become the binary attributes: one per value, or one 'has a FIELD' "
                        "when some values are null, or the field itself when true / false")
    t.add_argument("--group-field", default=DEFAULT_GROUP_FIELD,
                   help="images with the same value are held out together (when the records have it)")
    t.add_argument("--resolution", type=int, required=True, help="the generators' resolution")
    t.add_argument("--out", required=True, help="folder for classifier.safetensors + classifier.json")
    t.add_argument("--epochs", type=int, default=12, help="passes over the training images (default 12)")
    t.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    return run_command("training.metrics.separability", lambda: _train(args), user_errors=(MetricError,))


def _train(args: argparse.Namespace) -> None:
    if args.epochs < 1:
        raise MetricError(f"epochs: must be >= 1, got {args.epochs}")
    if not os.path.isfile(args.labels):
        raise MetricError(f"labels: no such file {args.labels!r}")
    t0 = time.time()
    data = ImageDataset(args.data, resolution=args.resolution, use_labels=False, preload=True)
    fields = [f.strip() for f in args.attributes.split(",") if f.strip()]
    if not fields:
        raise MetricError("attributes: give at least one record field")
    attributes, table, groups = attribute_table(args.labels, data.names, fields, args.group_field)
    images = np.stack([data.get_image(i) for i in range(data.num_images)])
    net, info = train_classifier(images, table, attributes, groups, epochs=args.epochs, seed=args.seed)
    save_classifier(net, info, args.out)
    print(json.dumps({"out": args.out, "accuracy": info.accuracy, "balanced_accuracy": info.balanced_accuracy,
                      "base_rate": info.base_rate,
                      "seconds": round(time.time() - t0, 1)}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
