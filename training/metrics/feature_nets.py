"""Feature networks for the metrics, in plain torch, reading the standard published weights.

    InceptionV3Features   FID. The TensorFlow FID Inception (inception-2015-12-05) in the layout
                          of pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (torchvision's
                          Inception3 names, 1008 classes, no aux head; TF's pooling quirks: average
                          pools exclude padding, Mixed_7c pools with max). uint8 images -> bilinear
                          299x299 -> [-1, 1] -> 2048 pool features.
    VGG16Features         PPL and precision/recall. torchvision's `vgg16` layout
                          (`vgg16-397923af.pth`). `lpips_embedding`: the five LPIPS taps (relu1_2,
                          relu2_2, relu3_3, relu4_3, relu5_3), unit-normalised over channels and
                          weighted by LPIPS' learned linear layers when given (`lin0..4`, the
                          `lpips` package's weights/v0.1/vgg.pth), uniform otherwise, so that the
                          squared L2 distance of two embeddings is their LPIPS distance.
                          `fc7`: the 4096 features of the second dense layer (after ReLU) of
                          224x224 images, as in Kynkäänniemi et al. 2019.

Weights are read only from files (torch.load(weights_only=True) or safetensors): from the folder
given by --feature-weights / $STYLEGAN_SDK_FEATURE_WEIGHTS, else ~/.cache/stylegan_sdk/metrics,
where a missing file is downloaded when the machine is online. Offline without it: one clear error.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_sdk.formats.fileio import atomic_open

ENV_VAR = "STYLEGAN_SDK_FEATURE_WEIGHTS"
INCEPTION_SIZE = 299        # Inception input side (the standard; tests shrink it to run on a CPU in seconds)
VGG_FC_SIZE = 224           # VGG16 input side for fc7 features
INCEPTION_LOGITS = "fc."    # keys of the Inception logits layer, present in pytorch-fid's file, unused
DEFAULT_CACHE = os.path.join("~", ".cache", "stylegan_sdk", "metrics")


class MetricError(ValueError):
    """A metric that cannot run as asked (unknown name, missing weights, no labels): one line."""


@dataclass(frozen=True)
class WeightsFile:
    what: str                   # for messages
    filename: str               # canonical name (downloads are saved under it)
    url: str                    # where to get it
    sha256_prefix: str          # first hex digits of its SHA-256 (as in the file name)
    patterns: tuple[str, ...]   # other names accepted in the folder (e.g. a safetensors copy)


WEIGHTS = {
    "inception": WeightsFile(
        "Inception-v3 FID weights (pytorch-fid)", "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "6726825d", ("pt_inception-2015-12-05*.pth", "pt_inception-2015-12-05*.safetensors"),
    ),
    "vgg16": WeightsFile(
        "VGG16 weights (torchvision)", "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af", ("vgg16-*.pth", "vgg16*.safetensors"),
    ),
}
LPIPS_PATTERNS = ("lpips*vgg*.pth", "lpips*vgg*.safetensors")   # optional LPIPS linear layers


# ----------------------------------------------------------------------------
# Finding (or downloading) and reading weight files


def weights_folder(folder: str | None) -> str:
    return os.path.expanduser(folder or os.environ.get(ENV_VAR) or DEFAULT_CACHE)


def find_weights(kind: str, folder: str | None = None, download: bool = True) -> str:
    """Path of the weights file for `kind` ("inception" | "vgg16"); downloads into the folder if allowed."""
    spec = WEIGHTS[kind]
    where = weights_folder(folder)
    for pattern in (spec.filename, *spec.patterns):
        hits = sorted(glob.glob(os.path.join(glob.escape(where), pattern)))
        if hits:
            return hits[0]
    why = "downloads are off"
    if download:
        try:
            return _download(spec, where)
        except (urllib.error.URLError, OSError, TimeoutError, ValueError) as e:
            why = f"the download failed: {getattr(e, 'reason', e)}"
    raise MetricError(
        f"{spec.what}: {spec.filename} is not in {where!r} (set --feature-weights DIR or ${ENV_VAR}) and {why}; "
        f"get it from {spec.url} and put it in that folder")


def find_lpips_weights(folder: str | None = None) -> str | None:
    """LPIPS linear layers: lpips*vgg*.pth in the folder, else the `lpips` package's own file, else None."""
    where = weights_folder(folder)
    for pattern in LPIPS_PATTERNS:
        hits = sorted(glob.glob(os.path.join(glob.escape(where), pattern)))
        if hits:
            return hits[0]
    spec = importlib.util.find_spec("lpips")
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "weights", "v0.1", "vgg.pth")
        if os.path.isfile(path):
            return path
    return None


def _download(spec: WeightsFile, folder: str) -> str:
    """Fetch into folder/filename atomically, checking the SHA-256 prefix the file name promises."""
    path = os.path.join(folder, spec.filename)
    digest = hashlib.sha256()
    with urllib.request.urlopen(spec.url, timeout=30) as r:
        os.makedirs(folder, exist_ok=True)
        with atomic_open(path) as f:
            while chunk := r.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
            if not digest.hexdigest().startswith(spec.sha256_prefix):
                raise ValueError(f"{spec.url}: SHA-256 {digest.hexdigest()[:8]} is not {spec.sha256_prefix}")
    return path


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A plain state dict from a .pth (torch.load, weights_only) or .safetensors file."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types (UnpicklingError, RuntimeError, ...) for bad files
        raise MetricError(f"{path}: not a readable weights file ({type(e).__name__}: {str(e).splitlines()[0]})") \
            from None
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping):
        raise MetricError(f"{path}: expected a state dict of tensors, got {type(sd).__name__}")
    return {str(k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def load_into(module: nn.Module, sd: Mapping[str, torch.Tensor], path: str) -> None:
    """Strict load (BatchNorm's num_batches_tracked may be absent); MetricError naming what differs."""
    expected = module.state_dict()
    sd = {k: v for k, v in sd.items() if not (k.endswith("num_batches_tracked") and k not in expected)}
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = expected[k]
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(sd) & set(expected) if tuple(sd[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        raise MetricError(f"{path}: not the expected {type(module).__name__} weights "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shapes {wrong[:3]})")
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})


# ----------------------------------------------------------------------------
# Inception-v3 (FID)


class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm (eps 0.001) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 3x3 average pool does not count the zero padding.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool(x)),
        ], dim=1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool(x))], dim=1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(nn.Module):
    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        self.pool = pool                # "avg" (Mixed_7b) | "max" (Mixed_7c, a quirk of the TF graph)
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)
        pooled = _avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], dim=1)


class InceptionV3Features(nn.Module):
    """uint8-range images [N, C, H, W] -> [N, 2048] pool features (pytorch-fid's FID Inception)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        # The TF graph's 1008-way logits (`fc.*` in pytorch-fid's file) are not used for FID: not built.

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = _to_rgb(img).float() / 255                                              # [N, 3, H, W] in [0, 1]
        x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))          # [N, 64, 147, 147]
        x = F.max_pool2d(x, kernel_size=3, stride=2)                                 # [N, 64, 73, 73]
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))                                # [N, 192, 71, 71]
        x = F.max_pool2d(x, kernel_size=3, stride=2)                                 # [N, 192, 35, 35]
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)                                     # -> [N, 2048, 8, 8]
        return x.mean(dim=[2, 3])                                                    # [N, 2048]


# ----------------------------------------------------------------------------
# VGG16 (LPIPS for PPL; fc7 for precision / recall)

VGG16_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
LPIPS_TAPS = (3, 8, 15, 22, 29)                  # indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LPIPS_MIN_SIZE = 32                              # smaller images are nearest up-sampled (relu5_3 needs >= 16)


class LPIPSLinear(nn.Module):
    """LPIPS' per-channel weights of one tap (`lin{i}.model.1.weight` [1, C, 1, 1] in the lpips files)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))
        nn.init.ones_(self.model[1].weight)


class VGG16Features(nn.Module):
    """torchvision's vgg16 layout; LPIPS embeddings and fc7 features of float images in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = 3
        for v in VGG16_LAYERS:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(ch, int(v), kernel_size=3, padding=1), nn.ReLU()]
                ch = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000))
        # LPIPS linear calibration (not part of the torchvision file): uniform unless loaded.
        self.lpips = nn.ModuleList([LPIPSLinear(c) for c in LPIPS_CHANNELS])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def _normalise(self, img: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images (1 or 3 channels) -> ImageNet-normalised RGB (= LPIPS' scaling layer)."""
        x = (_to_rgb(img).float() + 1) / 2
        return (x - self.mean) / self.std

    def lpips_embedding(self, img: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [-1, 1] -> [N, D]; |e(a) - e(b)|^2 is the LPIPS distance of a and b."""
        x = self._normalise(img)
        if x.shape[-1] < LPIPS_MIN_SIZE:
            factor = -(-LPIPS_MIN_SIZE // x.shape[-1])
            x = x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
        parts = []
        taps = iter(zip(LPIPS_TAPS, self.lpips))
        tap, lin = next(taps)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == tap:
                f = x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)    # unit norm over channels
                w = lin.model[1].weight.reshape(1, -1, 1, 1).clamp(min=0)       # [1, C, 1, 1] >= 0
                parts.append((f * w.sqrt() / (f.shape[2] * f.shape[3]) ** 0.5).flatten(1))
                nxt = next(taps, None)
                if nxt is None:
                    break
                tap, lin = nxt
        return torch.cat(parts, dim=1)

    def fc7(self, img: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [-1, 1] -> [N, 4096] second dense layer after ReLU, on 224x224 images."""
        x = F.interpolate(self._normalise(img), size=(VGG_FC_SIZE, VGG_FC_SIZE), mode="bilinear", align_corners=False)
        x = self.avgpool(self.features(x)).flatten(1)
        return self.classifier[4](self.classifier[3](self.classifier[1](self.classifier[0](x))))


def lpips_distance(vgg: VGG16Features, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N] LPIPS distance of two image batches in [-1, 1]."""
    return (vgg.lpips_embedding(a) - vgg.lpips_embedding(b)).square().sum(dim=1)


def _to_rgb(img: torch.Tensor) -> torch.Tensor:
    if img.shape[1] == 1:
        return img.repeat(1, 3, 1, 1)
    if img.shape[1] != 3:
        raise MetricError(f"images: expected 1 or 3 channels, got {img.shape[1]}")
    return img


# ----------------------------------------------------------------------------
# Loading


_CACHE: dict[tuple[str, str], nn.Module] = {}


def load_inception(folder: str | None = None, device: torch.device | str = "cpu", download: bool = True) -> nn.Module:
    path = find_weights("inception", folder, download)
    key = ("inception", os.path.abspath(path) + str(device))
    if key not in _CACHE:
        net = InceptionV3Features()
        sd = {k: v for k, v in read_state_dict(path).items() if not k.startswith(INCEPTION_LOGITS)}
        load_into(net, sd, path)
        _CACHE[key] = net.eval().requires_grad_(False).to(device)
    return _CACHE[key]


def load_vgg16(folder: str | None = None, device: torch.device | str = "cpu", download: bool = True) -> nn.Module:
    path = find_weights("vgg16", folder, download)
    lpips_path = find_lpips_weights(folder)
    key = ("vgg16", os.path.abspath(path) + str(lpips_path) + str(device))
    if key not in _CACHE:
        net = VGG16Features()
        _load_vgg(net, path, lpips_path)
        _CACHE[key] = net.eval().requires_grad_(False).to(device)
    return _CACHE[key]


def _load_vgg(net: VGG16Features, path: str, lpips_path: str | None) -> None:
    """torchvision's vgg16 state dict into features/classifier; LPIPS' lin0..4 (if any) into net.lpips."""
    torchvision_part = nn.Module()
    torchvision_part.features, torchvision_part.avgpool, torchvision_part.classifier = \
        net.features, net.avgpool, net.classifier
    load_into(torchvision_part, read_state_dict(path), path)
    if lpips_path is not None:
        lin = {k[3:] if k.startswith("lin") else k: v for k, v in read_state_dict(lpips_path).items()}
        load_into(net.lpips, lin, lpips_path)
