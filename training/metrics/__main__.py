"""`python -m training.metrics`: evaluate metrics of a model against a data set.

    python -m training.metrics --model network-snapshot-000012800.safetensors --data emoji.zip \\
        --metrics fid50k_full,ppl_wend,pr50k3_full --feature-weights ~/metric-weights
    python -m training.metrics --model a.safetensors --model b.safetensors --data emoji.zip --metrics fid5k_full

--model is anything `sg.load` reads as a file (our checkpoint, an official NVlabs .pkl, a
rosinality v1 checkpoint). The images of --data are brought to the model's resolution and channels
as in training. Weights of the feature networks (read from files only, never pickled code):

    pt_inception-2015-12-05-6726825d.pth   FID      github.com/mseitzer/pytorch-fid releases (fid_weights)
    vgg16-397923af.pth                     PPL, PR  download.pytorch.org/models (torchvision)
    lpips*vgg*.pth (optional)              PPL      LPIPS v0.1 linear layers (the `lpips` package's
                                                    weights/v0.1/vgg.pth; used from an installed
                                                    lpips package automatically)

They are looked up in --feature-weights, else $STYLEGAN_SDK_FEATURE_WEIGHTS, else
~/.cache/stylegan_sdk/metrics (downloaded there when the machine is online). Results are printed as
JSON lines and, with --out, appended to a JSONL file (its missing folders are made). A user error
prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import torch

from stylegan_sdk._cli import OneLineParser, check_output, run_command, writing
from stylegan_sdk.loading import read_model
from stylegan_sdk.models import build_with_weights

from ..dataset import ImageDataset
from . import MetricError, calc_metric, check_metrics, parse_metric


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training.metrics",
                      description="Evaluate FID / PPL / precision-recall / linear separability of a model.")
    p.add_argument("--model", required=True, action="append",
                   help="checkpoint (.safetensors), official .pkl or rosinality .pt; repeat it to evaluate several "
                        "models against one pass over the real images")
    p.add_argument("--data", default=None, help="folder or zip of real images (FID, PR; labels for conditional models)")
    p.add_argument("--metrics", default="fid50k_full",
                   help="comma-separated metric names: fid50k_full, fid50k, pr50k3_full, pr50k3, ppl_zfull, ppl_wfull, "
                        "ppl_zend, ppl_wend, ppl2_wend, ls_z, ls_w, cvar256; the counts are free (fid5k_full, fid500, "
                        "ppl_wend_1k, pr5k3, ls_w_20k, cvar1k)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr (results only)")
    p.add_argument("--feature-weights", default=None, help="folder holding the feature networks' weights")
    p.add_argument("--no-download", action="store_true", help="never download missing weights")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--batch", type=int, default=32, help="images per forward pass")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated latents and noise")
    p.add_argument("--background", default="white", help="colour under transparent pixels of the data")
    p.add_argument("--key", default="G_ema", help="network in an official snapshot (G_ema, G)")
    p.add_argument("--out", default=None, help="append the results to this JSONL file")
    p.add_argument("--classifier", default=None,
                   help="ls_z / ls_w: folder of the attribute classifier (python -m training.metrics.separability)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("training.metrics", lambda: evaluate(args), user_errors=(MetricError,))


def evaluate(args: argparse.Namespace) -> None:
    """Check every argument, then compute each metric: printed and (--out) appended as JSON lines."""
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not names:
        raise MetricError("metrics: give at least one metric name")
    if args.batch < 1:
        raise MetricError(f"batch: must be >= 1, got {args.batch}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise MetricError(f"device: not a device name: {args.device!r}") from None
    if args.out is not None:
        check_output(args.out, "out")
    for name in names:   # the names, the data's path and the models before the weights, which may be downloaded
        parse_metric(name)
    if args.data is not None and not os.path.exists(args.data):
        raise MetricError(f"data: no such file or folder {args.data!r}")
    models = [(path, read_model(path, key=args.key)) for path in args.model]   # all read (and checked) first
    check_metrics(names, args.feature_weights, download=not args.no_download, classifier=args.classifier)
    datasets: dict[tuple, ImageDataset] = {}   # one per image geometry: the real features are computed once
    for path, ckpt in models:
        G = build_with_weights(ckpt.config, ckpt.tensors, path)
        dataset = None
        if args.data is not None:
            cfg = ckpt.config
            geometry = (cfg.img_resolution, cfg.img_channels, cfg.c_dim > 0)
            if geometry not in datasets:
                datasets[geometry] = ImageDataset(args.data, resolution=cfg.img_resolution, channels=cfg.img_channels,
                                                  use_labels=cfg.c_dim > 0, background=args.background)
            dataset = datasets[geometry]
        for name in names:
            result = calc_metric(name, G, dataset, feature_weights=args.feature_weights, device=device,
                                 batch=args.batch, seed=args.seed, download=not args.no_download,
                                 classifier=args.classifier, progress=None if args.quiet else sys.stderr)
            result["model"] = path
            print(json.dumps(result), flush=True)
            if args.out is not None:
                with writing(args.out, "out"), open(args.out, "a") as f:
                    f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    sys.exit(main())
