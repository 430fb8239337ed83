"""Linear separability (Karras et al. 2019, "A Style-Based Generator Architecture for GANs", Section 4.2).

The question: are the factors of variation of the images laid out linearly in a latent space? For each
binary attribute (here: "is in emoji category K", one per category, and "has a skin tone"):

    1. an attribute classifier trained on real images labels N generated images (sigmoid output p);
    2. keep the half of them the classifier is most sure about (largest |p - 1/2|);
    3. fit a linear SVM that predicts the label Y from the latent X the image came from (z, or w = the
       mapping's output without truncation) and take the side of its hyperplane as X';
    4. H(Y | X') in nats: how much is still unknown about the label once the side is known.

The score is exp(sum over attributes of H(Y | X')) (the paper's 2^(sum of H in bits) is the same number):
1 when every attribute is linearly separable, 2^attributes when the sides say nothing. Lower is more
separable. The paper finds W far more separable than Z (its Table 4, FFHQ: a traditional generator with an
8-layer mapping network scores 170.3 in Z and 6.52 in W; the style-based generator 3.79 in W).

As in the paper: random noise, no truncation, w straight from the mapping, the SVM fitted and scored on the
same kept half, H = 0 for an attribute whose kept half has one class only.

A conditional generator (the paper's were not) draws each sample's class uniformly and feeds its one-hot c to
the mapping. The two sides then get the same class information: Z is the mapping's whole input, [z, c], and W
its output, w = mapping(z, c). An attribute the class decides is separable in both; the comparison is about
what the latent adds on top of the class (e.g. a skin tone within People & Body). Unlike its scikit-learn
LinearSVC on raw latents, ours (`fit_linear_svm`, no scikit-learn here) standardises each latent
coordinate first; a hyperplane is a hyperplane in either coordinates, only the regularisation differs.

The classifier is a small CNN trained here on the real images and their labels (`train_classifier`), saved
as safetensors + a JSON sidecar with the attribute names and its held-out accuracy; no pickles.

    python -m training.metrics.separability train --data emoji64.zip --labels emoji64_labels.json \\
        --resolution 32 --out attribute_classifier
    python -m training.metrics --model emoji.safetensors --metrics ls_z_20k,ls_w_20k --classifier attribute_classifier
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from stylegan_sdk.formats.fileio import atomic_path, atomic_write_bytes
from stylegan_sdk.latents import class_to_c
from stylegan_sdk.progress import Progress

from ...dataset import DatasetError
from ...dataset_tool import labels_by_field, read_labels_doc
from ..feature_nets import MetricError

# Attributes the classifier cannot tell apart on held-out real images (balanced accuracy below this) are left
# out of the score: they would measure the classifier, not the generator. The result lists what was used.
MIN_BALANCED_ACCURACY = 0.75
WEIGHTS_FILE = "classifier.safetensors"
INFO_FILE = "classifier.json"
FORMAT = "stylegan-sdk.attribute-classifier/1"


# ----------------------------------------------------------------------------
# The measure (pure, NumPy)


def conditional_entropy(labels: np.ndarray, sides: np.ndarray) -> float:
    """H(Y | X) in nats of two binary arrays [N]: sum over x of p(x) * H(Y | X = x)."""
    labels, sides = np.asarray(labels, bool), np.asarray(sides, bool)
    if labels.shape != sides.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels, sides: need two equal 1-D arrays, got {labels.shape} and {sides.shape}")
    total = 0.0
    for side in (False, True):
        members = labels[sides == side]
        if members.size == 0:
            continue
        p = members.mean()
        h = -sum(q * math.log(q) for q in (p, 1 - p) if q > 0)
        total += members.size / labels.size * h
    return float(total)


def most_confident_half(confidence: np.ndarray) -> np.ndarray:
    """Indices of the half of the samples with the largest confidence (ties: the earlier sample)."""
    confidence = np.asarray(confidence, np.float64)
    order = np.argsort(-confidence, kind="stable")
    return np.sort(order[: max(1, len(order) // 2)])


def fit_linear_svm(x: np.ndarray, y: np.ndarray, c: float = 1.0, steps: int = 200) -> tuple[np.ndarray, float]:
    """A linear SVM (L2-regularised squared hinge loss, C = c) on standardised features, by L-BFGS in float64;
    returns (weight [D], bias) in the original feature space. Deterministic."""
    x64 = torch.from_numpy(np.asarray(x, np.float64))
    t = torch.from_numpy(np.where(np.asarray(y, bool), 1.0, -1.0))
    mean, std = x64.mean(0), x64.std(0).clamp_min(1e-12)
    xs = (x64 - mean) / std
    w = torch.zeros(x64.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, tolerance_grad=1e-10, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        margin = (1 - t * (xs @ w + b)).clamp_min(0)
        loss = 0.5 * (w @ w) + c * (margin**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        weight = w / std
        bias = b - (weight * mean).sum()
    return weight.numpy(), float(bias)


def linear_separability(latents: np.ndarray, labels: np.ndarray, confidence: np.ndarray) -> float:
    """H(Y | side of a linear SVM's hyperplane), on the most confidently labelled half of the samples."""
    keep = most_confident_half(confidence)
    x, y = np.asarray(latents, np.float64)[keep], np.asarray(labels, bool)[keep]
    if y.all() or not y.any():
        return 0.0  # one class only: the label is known without the latent
    weight, bias = fit_linear_svm(x, y)
    return conditional_entropy(y, x @ weight + bias > 0)


def separability_score(entropies: Sequence[float]) -> float:
    """exp(sum of the attributes' conditional entropies)."""
    return float(math.exp(sum(entropies)))


# ----------------------------------------------------------------------------
# The attribute classifier


class AttributeClassifier(torch.nn.Module):
    """uint8-valued images [N, C, R, R] -> one logit per attribute [N, A]: three conv stages, global average."""

    def __init__(
        self,
        num_attributes: int,     # outputs (independent sigmoids)
        channels: int = 3,       # image channels
        width: int = 32,         # channels of the first stage (doubled per stage)
    ) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        cin = channels
        for k in range(3):
            cout = width << k
            layers += [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.LeakyReLU(0.2),
                       torch.nn.Conv2d(cout, cout, 3, padding=1), torch.nn.LeakyReLU(0.2), torch.nn.AvgPool2d(2)]
            cin = cout
        self.features = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(cin, num_attributes)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.features(img.float() / 127.5 - 1)          # [N, 4w, R/8, R/8]
        return self.head(x.mean(dim=(2, 3)))                 # [N, A]


@dataclass
class ClassifierInfo:
    format: str
    attributes: list[str]            # attribute names, in output order
    resolution: int
    channels: int
    width: int
    accuracy: dict[str, float]       # held-out accuracy per attribute
    balanced_accuracy: dict[str, float]  # held-out mean of the true-positive and true-negative rates
    base_rate: dict[str, float]      # held-out share of positives per attribute (what always-majority scores)
    training: dict                   # settings of the run


DEFAULT_ATTRIBUTES = ("category", "skin_tone")   # emoji64_labels.json's fields
DEFAULT_GROUP_FIELD = "name"                        # emoji64: the Noto and the Twemoji drawing of one emoji


def attribute_table(
    labels_file: str,                                   # per-image records: {"labels": {path: record}} or bare
    names: Sequence[str],                               # the images, as the data set names them
    fields: Sequence[str] = DEFAULT_ATTRIBUTES,         # record fields that become binary attributes
    group_field: str | None = DEFAULT_GROUP_FIELD,      # images with the same value are held out together
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(attribute names, bool [N, A], group [N]) for image `names`. Each field gives attributes by its values:
    true / false -> one attribute, "FIELD"; some values null (none) -> one attribute, "has a FIELD" (not
    null); otherwise one per value, "FIELD: value". `group_field` keeps images with the same value on one
    side of the held-out split; when the records do not have the default group field, each image is its
    own group. MetricError naming what the file lacks."""
    doc = read_labels_doc(labels_file)
    columns, attributes = [], []
    try:
        for field in fields:
            label, classes = labels_by_field(doc, labels_file, field)
            missing = [n for n in names if n not in label]
            if missing:
                raise MetricError(f"labels: {labels_file!r} has no record for {len(missing)} image(s), "
                                  f"e.g. {missing[0]!r}")
            index = np.array([label[n] for n in names])
            shown = field.replace("_", " ")
            if set(classes) <= {"True", "False"}:
                columns.append(index == classes.index("True") if "True" in classes else np.zeros(len(names), bool))
                attributes.append(shown)
            elif "none" in classes:
                columns.append(index != classes.index("none"))
                attributes.append(f"has a {shown}")
            else:
                columns.extend(index == k for k in range(len(classes)))
                attributes.extend(f"{field}: {c}" for c in classes)
        groups = np.arange(len(names))
        if group_field is not None:
            try:
                group, _ = labels_by_field(doc, labels_file, group_field)
                groups = np.array([group[n] for n in names])
            except DatasetError:
                if group_field != DEFAULT_GROUP_FIELD:
                    raise
    except DatasetError as e:
        raise MetricError(str(e)) from None
    return attributes, np.stack(columns, axis=1), groups


def train_classifier(
    images: np.ndarray,              # uint8 [N, C, R, R]
    targets: np.ndarray,             # bool [N, A]
    attributes: Sequence[str],       # A names
    groups: np.ndarray | None = None,  # [N]: images of one group are held out together (None: each its own)
    width: int = 24,                 # channels of the first conv stage
    epochs: int = 12,
    batch: int = 64,
    lr: float = 2e-3,
    holdout: float = 0.15,           # share of images kept out of training to measure accuracy
    seed: int = 0,
    xflip: bool = True,              # mirrored copies as augmentation
    log=print,
) -> tuple[AttributeClassifier, ClassifierInfo]:
    """Train the CNN with a per-attribute binary cross-entropy; deterministic for a seed."""
    if images.ndim != 4 or images.dtype != np.uint8 or targets.shape != (len(images), len(attributes)):
        raise ValueError(f"images, targets: expected uint8 [N, C, R, R] and bool [N, {len(attributes)}], "
                         f"got {images.dtype} {images.shape} and {targets.shape}")
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    groups = np.arange(len(images)) if groups is None else np.asarray(groups)
    unique = rng.permutation(np.unique(groups))
    held = set(unique[: max(1, int(round(holdout * len(unique))))].tolist())
    is_test = np.array([g in held for g in groups])
    test, train = np.flatnonzero(is_test), np.flatnonzero(~is_test)
    n_test = len(test)
    net = AttributeClassifier(len(attributes), images.shape[1], width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x_all = torch.from_numpy(images)
    y_all = torch.from_numpy(targets.astype(np.float32))
    pos = y_all[train].mean(0).clamp(1e-3, 1 - 1e-3)
    pos_weight = ((1 - pos) / pos).sqrt().clamp(1, 10)   # rare attributes: positives count sqrt(neg/pos) times
    for epoch in range(epochs):
        net.train()
        perm = torch.from_numpy(rng.permutation(train))
        total = 0.0
        for start in range(0, len(perm), batch):
            idx = perm[start: start + batch]
            x, y = x_all[idx], y_all[idx]
            if xflip:
                x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x)
            logits = net(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log(f"classifier epoch {epoch + 1}/{epochs}: loss {total / len(train):.4f}")
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x_all[test][s: s + 256]) for s in range(0, n_test, 256)]) > 0
    truth = y_all[test] > 0.5
    accuracy = {a: float((pred[:, k] == truth[:, k]).float().mean()) for k, a in enumerate(attributes)}
    balanced = {a: balanced_accuracy(pred[:, k].numpy(), truth[:, k].numpy()) for k, a in enumerate(attributes)}
    base = {a: float(truth[:, k].float().mean()) for k, a in enumerate(attributes)}
    info = ClassifierInfo(FORMAT, list(attributes), images.shape[2], images.shape[1], width, accuracy, balanced, base,
                          {"images": len(train), "held_out": n_test, "epochs": epochs, "batch": batch, "lr": lr,
                           "seed": seed, "xflip": xflip})
    return net, info


def balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean of the true-positive and true-negative rates (0.5 for a constant guess); NaN-free."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    rates = [float((pred[truth == v] == v).mean()) for v in (True, False) if (truth == v).any()]
    return float(np.mean(rates))


def save_classifier(net: AttributeClassifier, info: ClassifierInfo, folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    with atomic_path(os.path.join(folder, WEIGHTS_FILE)) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp)
    atomic_write_bytes(os.path.join(folder, INFO_FILE), json.dumps(asdict(info), indent=1).encode())


def load_classifier(folder: str) -> tuple[AttributeClassifier, ClassifierInfo]:
    """The classifier in `folder` (safetensors + JSON; never a pickle). MetricError naming what is wrong."""
    info_path, weights_path = os.path.join(folder, INFO_FILE), os.path.join(folder, WEIGHTS_FILE)
    if not (os.path.isfile(info_path) and os.path.isfile(weights_path)):
        raise MetricError(f"classifier: no {INFO_FILE} + {WEIGHTS_FILE} in {folder!r}; train one with "
                          f"python -m training.metrics.separability train --data ... --labels ... --out {folder}")
    try:
        with open(info_path, encoding="utf-8") as f:
            info = ClassifierInfo(**json.load(f))
    except (OSError, ValueError, TypeError) as e:
        raise MetricError(f"classifier: unreadable {info_path!r} ({e})") from None
    if info.format != FORMAT:
        raise MetricError(f"classifier: {info_path!r} is not a {FORMAT} file")
    net = AttributeClassifier(len(info.attributes), info.channels, info.width)
    try:
        net.load_state_dict(load_file(weights_path))
    except (RuntimeError, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MetricError(f"classifier: {weights_path!r} does not fit {info_path!r} ({reason})") from None
    return net.eval(), info


# ----------------------------------------------------------------------------
# The metric on a generator


def _uniform_classes(n: int, c_dim: int, gen: torch.Generator) -> torch.Tensor | None:
    """[n, c_dim] one-hot rows of evenly drawn classes, or None for an unconditional generator."""
    if c_dim == 0:
        return None
    return torch.from_numpy(class_to_c(torch.randint(c_dim, [n], generator=gen).tolist(), c_dim, n))


@torch.no_grad()
def compute_separability(
    G: torch.nn.Module,              # generator module (mapping + synthesis); a conditional one draws classes evenly
    classifier: AttributeClassifier,
    info: ClassifierInfo,
    num_samples: int,
    space: str,                      # "z" | "w"
    batch: int = 64,
    seed: int = 0,
    progress: Progress | None = None,  # counts the samples
) -> dict:
    """{"score": exp(sum H), "entropies": {attribute: H in nats}, "positive_share": {attribute: share of samples
    labelled positive}, "samples": N, "left_out": attributes below MIN_BALANCED_ACCURACY}; the same samples for
    a seed whatever the space, so ls_z and ls_w of one run see the same images."""
    if space not in ("z", "w"):
        raise ValueError(f"space: must be 'z' or 'w', got {space!r}")
    if G.cfg.img_resolution != info.resolution or G.cfg.img_channels != info.channels:
        raise MetricError(f"classifier: trained on {info.resolution} px x{info.channels}, the model makes "
                          f"{G.cfg.img_resolution} px x{G.cfg.img_channels}")
    gen = torch.Generator().manual_seed(seed)
    latents, probs = [], []
    for start in range(0, num_samples, batch):
        b = min(batch, num_samples - start)
        z = torch.randn([b, G.mapping.z_dim], generator=gen)
        c = _uniform_classes(b, G.mapping.c_dim, gen)
        w = G.mapping(z, c)
        ws = w.unsqueeze(1).repeat([1, G.num_ws, 1])
        noise = [torch.randn([b, 1, r, r], generator=gen) for r in G.cfg.noise_resolutions]
        img = (G.synthesis(ws, noise_mode="random", noise=noise or None) * 127.5 + 128).clamp(0, 255)
        probs.append(torch.sigmoid(classifier(img)).numpy())
        latents.append((w if space == "w" else z if c is None else torch.cat([z, c], 1)).numpy())
        if progress is not None:
            progress.advance(b)
    x, p = np.concatenate(latents), np.concatenate(probs)
    used = [k for k, a in enumerate(info.attributes)
            if info.balanced_accuracy.get(a, 1.0) >= MIN_BALANCED_ACCURACY]
    entropies = {info.attributes[k]: linear_separability(x, p[:, k] > 0.5, np.abs(p[:, k] - 0.5)) for k in used}
    positives = {info.attributes[k]: float((p[:, k] > 0.5).mean()) for k in used}
    return {"score": separability_score(list(entropies.values())), "entropies": entropies,
            "positive_share": positives, "samples": num_samples,
            "left_out": [a for k, a in enumerate(info.attributes) if k not in used]}
