"""Metrics by name, the same from `python -m training.metrics` and from the training loop.

    fid50k_full     FID: 50k generated images against all real images (fid.py, Inception-v3)
    fid50k          FID: 50k generated against at most 50k real
    ppl_zfull, ppl_wfull, ppl_zend, ppl_wend
                    PPL in Z (slerp) / W (lerp), t ~ U(0, 1) ("full") or t = 0 ("end"), epsilon 1e-4,
                    the paper's face crop, 50k paths (ppl.py, VGG16 LPIPS)
    ppl2_wend       the same without the crop (StyleGAN2's PPL)
    pr50k3_full     precision and recall, k = 3: 50k generated against all real (VGG16 fc7)
    pr50k3          ... against at most 50k real
    ls_z, ls_w      linear separability in Z / W (separability.py; the StyleGAN paper's Section 4.2):
                    200k samples, an attribute classifier trained on the real images (--classifier)
    cvar256         within-class variety of a conditional model (variety.py): per class, the pixel spread of
                    256 generated images over that of the class's real images; the value is the lowest class's

Counts are free: `fid10k`, `fid500` (500 images), `ppl_wend_1k` (1000 paths), `pr5k3`, `ls_w_20k`, `cvar1k`. The feature
networks' weights come from feature_nets.find_weights (--feature-weights, the env variable, the
cache, a download when online); without them a metric fails with one line naming what to get.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
import torch

from stylegan_sdk.progress import Progress

from .feature_nets import MetricError, find_weights, load_inception, load_vgg16
from .fid import FeatureStats, dataset_features, fid_from_features
from .ppl import compute_ppl
from .precision_recall import precision_recall
from .sampling import counted, generated_images
from .separability import compute_separability, load_classifier
from .variety import class_variety

__all__ = ["MetricError", "MetricSpec", "parse_metric", "check_metrics", "calc_metric", "report_metric"]

FID_RE = re.compile(r"^fid(\d+)(k?)(_full)?$")
PPL_RE = re.compile(r"^(ppl2?)_([zw])(full|end)(?:_(\d+)(k?))?$")
PR_RE = re.compile(r"^pr(\d+?)(k?)3(_full)?$")
LS_RE = re.compile(r"^ls_([zw])(?:_(\d+)(k?))?$")
CVAR_RE = re.compile(r"^cvar(\d+)(k?)$")
LS_DEFAULT_SAMPLES = 200_000   # the paper's count


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str                       # "fid" | "ppl" | "pr" | "ls" | "cvar"
    num_gen: int                    # generated images (fid, pr; cvar: per class) or paths (ppl)
    max_real: int | None = None     # real images used (None = all)
    space: str = "w"                # ppl, ls: "z" | "w"
    sampling: str = "end"           # ppl: "full" | "end"
    crop: bool = False              # ppl: the paper's face crop

    @property
    def weights(self) -> str | None:
        """The feature network it needs (ls: none, its classifier comes from --classifier; cvar: none)."""
        return {"fid": "inception", "ls": None, "cvar": None}.get(self.kind, "vgg16")


def parse_metric(name: str) -> MetricSpec:
    if m := FID_RE.match(name):
        n = int(m.group(1)) * (1000 if m.group(2) else 1)
        return MetricSpec(name, "fid", n, None if m.group(3) else n)
    if m := PPL_RE.match(name):
        n = 50000 if m.group(4) is None else int(m.group(4)) * (1000 if m.group(5) else 1)
        return MetricSpec(name, "ppl", n, space=m.group(2), sampling=m.group(3), crop=m.group(1) == "ppl")
    if m := PR_RE.match(name):
        n = int(m.group(1)) * (1000 if m.group(2) else 1)
        return MetricSpec(name, "pr", n, None if m.group(3) else n)
    if m := LS_RE.match(name):
        n = LS_DEFAULT_SAMPLES if m.group(2) is None else int(m.group(2)) * (1000 if m.group(3) else 1)
        if n < 2:
            raise MetricError(f"metrics: {name} needs at least 2 samples")
        return MetricSpec(name, "ls", n, space=m.group(1))
    if m := CVAR_RE.match(name):
        n = int(m.group(1)) * (1000 if m.group(2) else 1)
        if n < 2:
            raise MetricError(f"metrics: {name} needs at least 2 images per class")
        return MetricSpec(name, "cvar", n)
    raise MetricError(f"metrics: unknown metric {name!r} (e.g. fid50k_full, fid50k, ppl_wend, ppl_zfull, "
                      f"ppl2_wend, pr50k3_full, ls_z, ls_w, cvar256; counts are free: fid10k, fid500, ppl_wend_1k, "
                      f"ls_w_20k)")


def check_metrics(names: list[str], feature_weights: str | None, download: bool = True,
                  classifier: str | None = None) -> list[MetricSpec]:
    """Parse every name and make sure the weights it needs are at hand (before hours of training)."""
    specs = [parse_metric(n) for n in names]
    for kind in sorted({s.weights for s in specs} - {None}):
        find_weights(kind, feature_weights, download)
    if any(s.kind == "ls" for s in specs):
        if classifier is None:
            raise MetricError("classifier: ls_z / ls_w need the attribute classifier (--classifier DIR; train one "
                              "with python -m training.metrics.separability train)")
        load_classifier(classifier)
    return specs


# ----------------------------------------------------------------------------
# Running a metric on a generator module


def _label_sampler(G: torch.nn.Module, dataset, gen: torch.Generator, device: torch.device):
    c_dim = G.mapping.c_dim
    if c_dim == 0:
        return lambda n: torch.zeros([n, 0], device=device)
    if dataset is None or dataset.label_dim != c_dim:
        have = "no labels" if dataset is None or dataset.label_dim == 0 else f"labels of size {dataset.label_dim}"
        raise MetricError(f"metrics: the generator is conditional (c_dim {c_dim}) but the data has {have}")
    labels = torch.from_numpy(np.stack([dataset.get_label(i) for i in range(dataset.num_images)]))
    return lambda n: labels[torch.randint(len(labels), [n], generator=gen)].to(device)


_REAL_CACHE: dict[tuple, Any] = {}


def _real_count(dataset, max_real: int | None) -> int:
    """How many real images a metric reads (its cap, or the whole data set)."""
    return dataset.num_images if max_real is None else min(max_real, dataset.num_images)


def _real_features(kind: str, dataset, max_real: int | None, net, extract, device, batch: int,
                   progress: Progress | None):
    key = (kind, dataset.path, dataset.resolution, dataset.num_channels, tuple(dataset.background), max_real, id(net))
    if key not in _REAL_CACHE:
        stats = FeatureStats(capture_all=kind == "pr", max_items=max_real)
        batches = counted((imgs for imgs, _ in dataset.iter_batches(batch, max_real)), progress)
        _REAL_CACHE[key] = dataset_features(batches, lambda x: extract(x.to(device)), stats)
    return _REAL_CACHE[key]


def calc_metric(
    name: str,                              # e.g. "fid50k_full"
    G: torch.nn.Module,                     # generator module (eval mode; mapping + synthesis)
    dataset=None,                           # training.dataset.ImageDataset at G's resolution (fid, pr, labels)
    feature_weights: str | None = None,     # folder of the feature networks' weights
    device: torch.device | str = "cpu",
    batch: int = 32,                        # images per forward pass
    seed: int = 0,                          # latents and noise of the generated images
    download: bool = True,                  # fetch missing weights when online
    classifier: str | None = None,          # ls: folder of the attribute classifier (separability.py)
    progress: TextIO | None = None,         # where to say how far it is, with an estimate (None: silent)
) -> dict[str, Any]:
    """{"metric": name, "results": {key: value}, "total_time": seconds}."""
    spec = parse_metric(name)

    def track(what: str, total: int, unit: str = "img") -> Progress | None:
        return None if progress is None else Progress(f"{name}: {what}", total, unit, stream=progress)

    device = torch.device(device)
    start = time.time()
    G = G.eval().to(device)
    gen = torch.Generator().manual_seed(seed)
    sample_c = _label_sampler(G, dataset, gen, device)
    if spec.kind in ("fid", "pr", "cvar") and dataset is None:
        raise MetricError(f"metrics: {name} needs the real images (--data)")

    if spec.kind == "fid":
        net = load_inception(feature_weights, device, download)
        extract = net
        real = _real_features("fid", dataset, spec.max_real, net, extract, device, batch,
                              track("real images", _real_count(dataset, spec.max_real)))
        fake = dataset_features(counted(generated_images(G, spec.num_gen, sample_c, gen, device, batch),
                                        track("generated images", spec.num_gen)),
                                extract, FeatureStats(max_items=spec.num_gen))
        results = {name: fid_from_features(real, fake)}
    elif spec.kind == "pr":
        net = load_vgg16(feature_weights, device, download)

        def extract(x: torch.Tensor) -> torch.Tensor:
            return net.fc7(x.float() / 127.5 - 1)

        real = _real_features("pr", dataset, spec.max_real, net, extract, device, batch,
                              track("real images", _real_count(dataset, spec.max_real)))
        fake = dataset_features(counted(generated_images(G, spec.num_gen, sample_c, gen, device, batch),
                                        track("generated images", spec.num_gen)),
                                extract, FeatureStats(capture_all=True, max_items=spec.num_gen))
        p, r = precision_recall(torch.from_numpy(real.features()).to(device),
                                torch.from_numpy(fake.features()).to(device))
        results = {f"{name}_precision": p, f"{name}_recall": r}
    elif spec.kind == "ls":
        if classifier is None:
            raise MetricError(f"classifier: {name} needs the attribute classifier (--classifier DIR)")
        net, info = load_classifier(classifier)
        out = compute_separability(G, net.to(device), info, spec.num_gen, spec.space, batch=batch, seed=seed,
                                   progress=track("samples", spec.num_gen))
        results = {name: out["score"], f"{name}_entropies": out["entropies"],
                   f"{name}_positive_share": out["positive_share"], f"{name}_left_out": out["left_out"]}
    elif spec.kind == "cvar":
        per_class = class_variety(G, dataset, spec.num_gen, gen, device, batch,
                                  progress=track("classes", dataset.label_dim, "class"))
        results = {name: min(per_class.values()), f"{name}_classes": per_class}
    else:
        net = load_vgg16(feature_weights, device, download)
        results = {name: compute_ppl(G, net.lpips_embedding, sample_c, spec.num_gen, epsilon=1e-4,
                                     space=spec.space, sampling=spec.sampling, crop=spec.crop,
                                     batch=min(batch, 16), seed=seed, progress=track("paths", spec.num_gen, "path"))}
    return {"metric": name, "results": results, "total_time": time.time() - start}


def report_metric(result: dict[str, Any], outdir: str, snapshot: str | None = None) -> None:
    """Append the result to <outdir>/metric-<name>.jsonl."""
    line = dict(result, snapshot=snapshot, timestamp=time.time())
    with open(os.path.join(outdir, f"metric-{result['metric']}.jsonl"), "a") as f:
        f.write(json.dumps(line) + "\n")
