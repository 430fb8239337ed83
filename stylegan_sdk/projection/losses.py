"""Image distances for projection: LPIPS on a pretrained VGG16 trunk, or the mean squared error.

    loss = make_loss("lpips")                 # or "lpips-vgg16" (vgg16_weights=...), "mse"
    print(loss.name)                          # what is used, to print and record with the result
    with torch.no_grad():
        target = loss.features(target_images)     # once for a fixed target
    d = loss.distance(target, loss.features(synth))   # [N], differentiable with respect to synth

Images are float [N, C, H, W] in [-1, 1], C = 3 or 1 (repeated to 3). In `distance` a batch of one
broadcasts against a batch of N. The weights are never random and never downloaded:

    "lpips"        LPIPS v0.1 on the shift-tolerant VGG16 of ST-LPIPS (Ghildyal & Liu, ECCV 2022), read from
                   the `stlpips-pytorch` wheel (weights/vST0.0/vgg_shift_tolerant.pth: the trained trunk, its
                   blur filters, the input scaling and the five linear heads). The trunk is VGG16 whose max
                   pools are anti-aliased: max pool 2x2 with stride 1, reflect-pad 2, depthwise binomial
                   [1 2 1] x [1 2 1] / 16 blur with stride 2 (Zhang 2019's BlurPool, padded 2 instead of 1).
    "lpips-vgg16"  standard LPIPS v0.1 (Zhang et al. 2018) on torchvision's VGG16: the trunk from a torchvision
                   `vgg16` state file the user has (vgg16_weights=, e.g. vgg16-397923af.pth) and the linear
                   heads from the `lpips` wheel (weights/v0.1/vgg.pth) or lpips_weights=. make_loss("lpips",
                   vgg16_weights=PATH) is this loss too; the name it records says so.
    "mse"          the mean over channels and pixels of the squared difference of the images, [N].

LPIPS (both trunks): x -> (x - shift) / scale with LPIPS' constants; the five taps relu1_2, relu2_2, relu3_3,
relu4_3, relu5_3; each unit-normalised over its channels (eps 1e-10); distance = sum over taps of the spatial
mean of the heads' 1x1 convolution (no bias) of the squared difference. Images with a side over 256 px are
area-downsampled to 256 (the longer side; the aspect kept) before the network, as NVIDIA's StyleGAN2-ADA /
StyleGAN3 projectors do with their target; images with a side under 32 px are repeated up (nearest) to at
least 32, so that the deepest taps exist. "mse" compares the images as given.

Reading the weights: the wheel's file is located with importlib.util.find_spec (nothing of the wheel's code
runs) and checked against the SHA-256 its wheel recorded at install (RECORD); a user's vgg16 file against the
hash prefix its name carries (`vgg16-397923af.pth`: SHA-256 starting 397923af), and its hash is in the name.
Every file is read with torch.load(weights_only=True) (or safetensors): no code from files. Keys, shapes, dtypes
and finiteness are checked against the architecture before use; a file that differs raises ValueError naming
it and the difference. A missing wheel raises ImportError with the pip command (the `projection` extra).

The `lpips` wheel is not in the `projection` extra: it requires torchvision, which pins a torch release, so
installing it can replace the installed torch (pip picks the newest torchvision and the CUDA build of its torch).
Only its 7 KB heads file is read: `pip install --no-deps lpips`.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import importlib.metadata
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..version import install_hint

LOSSES = ("lpips", "lpips-vgg16", "mse")

MAX_SIDE = 256          # longer sides above this are area-downsampled to it (NVIDIA's projectors: 256)
MIN_SIDE = 32           # shorter sides below this are repeated up to at least it (relu5_3 needs 16 or 18 px)
NORM_EPS = 1e-10        # LPIPS' unit normalisation: f / (|f| + eps)

# LPIPS v0.1's input scaling: (x - shift) / scale takes [-1, 1] images to ImageNet-normalised ones.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)

# VGG16's 13 convolutions, as five stages (a pool in front of every stage but the first); each stage ends at
# a tap: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
TAP_CHANNELS = tuple(stage[-1] for stage in VGG16_STAGES)

# Where each convolution sits in the files: torchvision's `features` Sequential (conv, relu, ..., max pool), and
# ST-LPIPS' five slices of its anti-aliased `features` (a pool is max pool + blur: one more index each).
TORCHVISION_CONVS = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
TORCHVISION_CLASSIFIER = {"classifier.0.weight": (4096, 512 * 7 * 7), "classifier.0.bias": (4096,),
                          "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
                          "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)}
STLPIPS_CONVS = ((0, 2), (6, 8), (12, 14, 16), (20, 22, 24), (28, 30, 32))
STLPIPS_BLURS = (None, 5, 11, 19, 27)       # index of the blur in front of stages 2..5 (a fixed filter in the file)
BLUR_PAD = 2                                # reflect padding of the blur (ST-LPIPS' "pad_more": 2 for a 3-tap filter)


@dataclass(frozen=True)
class WheelFile:
    distribution: str   # as pip names it
    package: str        # the import name the file lies under
    path: str           # inside the package, "/"-separated
    what: str           # for messages


STLPIPS_WEIGHTS = WheelFile("stlpips-pytorch", "stlpips_pytorch", "weights/vST0.0/vgg_shift_tolerant.pth",
                            "the trained shift-tolerant VGG16 and LPIPS heads")
LPIPS_HEADS = WheelFile("lpips", "lpips", "weights/v0.1/vgg.pth", "LPIPS v0.1's linear heads for VGG16")

_find_spec = importlib.util.find_spec          # the tests simulate a missing wheel through these two
_distribution = importlib.metadata.distribution


# ----------------------------------------------------------------------------
# The losses


class PerceptualLoss(nn.Module, abc.ABC):
    """A distance between images: features(images) once per image batch, distance(a, b) -> [N]."""

    name: str

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    @abc.abstractmethod
    def features(self, images: torch.Tensor) -> object:
        """float [N, C, H, W] in [-1, 1] (C = 3, or 1: repeated to 3) -> what distance() compares."""

    @abc.abstractmethod
    def distance(self, a_features, b_features) -> torch.Tensor:
        """[N] distance of two feature sets (a batch of one broadcasts against N); differentiable."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(a), self.features(b))

    def extra_repr(self) -> str:
        return self.name


class MSELoss(PerceptualLoss):
    """Mean over channels and pixels of the squared difference of the images themselves."""

    def __init__(self) -> None:
        super().__init__("mse")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return _rgb(images)

    def distance(self, a_features: torch.Tensor, b_features: torch.Tensor) -> torch.Tensor:
        _check_pair((a_features,), (b_features,))
        return (a_features - b_features).square().mean(dim=(1, 2, 3))


class VGG16Taps(nn.Module):
    """VGG16's convolutions up to relu5_3 -> the five LPIPS taps. pool: "max" (torchvision's 2x2, stride 2) or
    "blur" (max pool 2x2 with stride 1, then reflect-pad and binomial 3x3 blur with stride 2)."""

    def __init__(self, pool: str) -> None:
        super().__init__()
        if pool not in ("max", "blur"):
            raise ValueError(f"pool: expected 'max' or 'blur', got {pool!r}")
        self.pool = pool
        stages, ch = [], 3
        for stage in VGG16_STAGES:
            convs = []
            for out in stage:
                convs.append(nn.Conv2d(ch, out, kernel_size=3, padding=1))
                ch = out
            stages.append(nn.ModuleList(convs))
        self.stages = nn.ModuleList(stages)
        self.register_buffer("blur", binomial_filter(), persistent=False)

    def _downsample(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool == "max":
            return F.max_pool2d(x, kernel_size=2, stride=2)
        x = F.max_pool2d(x, kernel_size=2, stride=1)
        x = F.pad(x, (BLUR_PAD,) * 4, mode="reflect")
        channels = x.shape[1]
        return F.conv2d(x, self.blur.expand(channels, 1, -1, -1), stride=2, groups=channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, stage in enumerate(self.stages):
            if i:
                x = self._downsample(x)
            for conv in stage:
                x = F.relu(conv(x))
            taps.append(x)
        return taps


class LPIPSLoss(PerceptualLoss):
    """LPIPS v0.1 on a VGG16 trunk: features are the five unit-normalised taps."""

    def __init__(self, name: str, trunk: VGG16Taps, heads: list[torch.Tensor]) -> None:
        super().__init__(name)
        self.trunk = trunk
        for i, w in enumerate(heads):
            self.register_buffer(f"head{i}", w.reshape(1, -1, 1, 1).float().clone())
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).reshape(1, 3, 1, 1))

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (network_size(_rgb(images)) - self.shift) / self.scale
        return tuple(f / (f.square().sum(dim=1, keepdim=True).sqrt() + NORM_EPS) for f in self.trunk(x))

    def distance(self, a_features, b_features) -> torch.Tensor:
        _check_pair(a_features, b_features, len(TAP_CHANNELS))
        total = None
        for i, (fa, fb) in enumerate(zip(a_features, b_features)):
            d = F.conv2d((fa - fb).square(), getattr(self, f"head{i}")).mean(dim=(1, 2, 3))
            total = d if total is None else total + d
        return total


def make_loss(name: str = "lpips", *, vgg16_weights: str | os.PathLike | None = None,
              lpips_weights: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> PerceptualLoss:
    """The loss `name` (one of LOSSES), its weights read and checked, frozen, in eval mode, on `device`.

    "lpips": the shift-tolerant VGG16 of the stlpips-pytorch wheel; with vgg16_weights, "lpips-vgg16".
    "lpips-vgg16": torchvision's VGG16 from vgg16_weights (a torchvision `vgg16` state file) + LPIPS' heads
    from the lpips wheel, or from lpips_weights (a file in its layout: lin0..4.model.1.weight).
    ValueError for a bad argument or weights file; ImportError with the pip command for a missing wheel."""
    if name not in LOSSES:
        raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {name!r}")
    if name == "mse":
        if vgg16_weights is not None or lpips_weights is not None:
            raise ValueError("vgg16_weights, lpips_weights: the mse loss uses no network")
        loss: PerceptualLoss = MSELoss()
    elif name == "lpips" and vgg16_weights is None:
        if lpips_weights is not None:
            raise ValueError("lpips_weights: the lpips loss reads its heads from the stlpips-pytorch wheel; "
                             "give vgg16_weights too for LPIPS on torchvision's VGG16")
        loss = _shift_tolerant_lpips()
    else:
        if vgg16_weights is None:
            raise ValueError(f"vgg16_weights: the {name} loss needs a torchvision vgg16 state file "
                             "(e.g. vgg16-397923af.pth)")
        loss = _torchvision_lpips(os.fspath(vgg16_weights), None if lpips_weights is None else os.fspath(lpips_weights))
    return loss.eval().requires_grad_(False).to(device)


# ----------------------------------------------------------------------------
# Building the LPIPS losses from their files


def _shift_tolerant_lpips() -> LPIPSLoss:
    path, version = _wheel_file(STLPIPS_WEIGHTS, "lpips")
    sd = read_weights(path)
    expected: dict[str, tuple[int, ...]] = {"scaling_layer.shift": (1, 3, 1, 1), "scaling_layer.scale": (1, 3, 1, 1)}
    trunk_keys = {}
    ch = 3
    for s, (stage, indices) in enumerate(zip(VGG16_STAGES, STLPIPS_CONVS)):
        if STLPIPS_BLURS[s] is not None:
            expected[f"net.slice{s + 1}.{STLPIPS_BLURS[s]}.filt"] = (ch, 1, 3, 3)
        for j, (out, index) in enumerate(zip(stage, indices)):
            for part, shape in (("weight", (out, ch, 3, 3)), ("bias", (out,))):
                expected[f"net.slice{s + 1}.{index}.{part}"] = shape
                trunk_keys[f"stages.{s}.{j}.{part}"] = f"net.slice{s + 1}.{index}.{part}"
            ch = out
    for i, c in enumerate(TAP_CHANNELS):
        expected[f"lin{i}.model.1.weight"] = (1, c, 1, 1)
    check_state(sd, expected, path)
    # The fixed parts of the file must be those of the architecture built here.
    for key, want in (("scaling_layer.shift", LPIPS_SHIFT), ("scaling_layer.scale", LPIPS_SCALE)):
        if not torch.allclose(sd[key].flatten().double(), torch.tensor(want, dtype=torch.float64), atol=1e-6):
            raise ValueError(f"{path}: {key} is {sd[key].flatten().tolist()}, not LPIPS' {list(want)}")
    blur = binomial_filter()
    for s, index in enumerate(STLPIPS_BLURS):
        if index is not None and not torch.allclose(sd[f"net.slice{s + 1}.{index}.filt"].float(),
                                                    blur.expand(sd[f"net.slice{s + 1}.{index}.filt"].shape),
                                                    atol=1e-6):
            raise ValueError(f"{path}: net.slice{s + 1}.{index}.filt is not the binomial [1 2 1] blur this trunk uses")
    trunk = VGG16Taps("blur")
    trunk.load_state_dict({ours: sd[theirs].float() for ours, theirs in trunk_keys.items()})
    heads = [sd[f"lin{i}.model.1.weight"] for i in range(len(TAP_CHANNELS))]
    return LPIPSLoss(f"lpips (stlpips-pytorch {version} shift-tolerant VGG16 + linear heads)", trunk, heads)


def _torchvision_lpips(vgg16_path: str, heads_path: str | None) -> LPIPSLoss:
    digest = _check_named_hash(_file(vgg16_path, "vgg16_weights"))
    sd = read_weights(vgg16_path)
    expected: dict[str, tuple[int, ...]] = {}
    trunk_keys = {}
    ch = 3
    for s, (stage, indices) in enumerate(zip(VGG16_STAGES, TORCHVISION_CONVS)):
        for j, (out, index) in enumerate(zip(stage, indices)):
            for part, shape in (("weight", (out, ch, 3, 3)), ("bias", (out,))):
                expected[f"features.{index}.{part}"] = shape
                trunk_keys[f"stages.{s}.{j}.{part}"] = f"features.{index}.{part}"
            ch = out
    # torchvision's file also holds the classifier, which LPIPS does not use: allowed, not required.
    check_state(sd, expected, vgg16_path, optional=TORCHVISION_CLASSIFIER, check_values=set(expected))
    trunk = VGG16Taps("max")
    trunk.load_state_dict({ours: sd[theirs].float() for ours, theirs in trunk_keys.items()})
    del sd

    if heads_path is None:
        heads_path, version = _wheel_file(LPIPS_HEADS, "lpips-vgg16")
        heads_from = f"lpips {version} v0.1 linear heads"
    else:
        heads_sha = _sha256(_file(heads_path, "lpips_weights"))
        heads_from = f"LPIPS linear heads {os.path.basename(heads_path)} sha256 {heads_sha[:8]}"
    heads_sd = read_weights(heads_path)
    check_state(heads_sd, {f"lin{i}.model.1.weight": (1, c, 1, 1) for i, c in enumerate(TAP_CHANNELS)}, heads_path)
    heads = [heads_sd[f"lin{i}.model.1.weight"] for i in range(len(TAP_CHANNELS))]
    name = f"lpips-vgg16 (torchvision vgg16 {os.path.basename(vgg16_path)} sha256 {digest[:8]} + {heads_from})"
    return LPIPSLoss(name, trunk, heads)


# ----------------------------------------------------------------------------
# Safe reading


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """A flat state dict from a .pth (torch.load, weights_only: no code runs) or .safetensors file; ValueError."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as e:  # safetensors raises its own error types for every malformed file
            raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types (UnpicklingError, RuntimeError, ...) for bad files
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"{path}: not a readable weights file ({type(e).__name__}: {first})") from None
    if not isinstance(sd, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in sd.items()):
        raise ValueError(f"{path}: expected a state dict of named tensors, got {type(sd).__name__}")
    return dict(sd)


def check_state(sd: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], path: str,
                optional: Mapping[str, tuple[int, ...]] | None = None, check_values: set[str] | None = None) -> None:
    """ValueError naming `path` unless sd has exactly the expected keys (plus any optional ones) with their
    shapes, floating-point, and finite (the keys in check_values; all expected ones by default)."""
    optional = optional or {}
    shapes = {**optional, **expected}
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(shapes))
    if missing or unexpected:
        raise ValueError(f"{path}: not the expected weights: missing {_few(missing)}, unexpected {_few(unexpected)}")
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {shapes[k]})" for k in sd if tuple(sd[k].shape) != shapes[k]]
    if wrong:
        raise ValueError(f"{path}: wrong shapes: {_few(wrong)}")
    not_float = sorted(k for k in sd if not sd[k].is_floating_point())
    if not_float:
        raise ValueError(f"{path}: not floating-point: {_few(not_float)}")
    bad = sorted(k for k in (expected if check_values is None else check_values)
                 if not torch.isfinite(sd[k]).all())
    if bad:
        raise ValueError(f"{path}: values that are not finite in {_few(bad)}")


def _few(names: list[str]) -> str:
    return "none" if not names else ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _wheel_file(wheel: WheelFile, loss: str) -> tuple[str, str]:
    """(path, wheel version) of a file inside an installed wheel, located without importing it, checked
    against the SHA-256 the wheel recorded at install. ImportError with the pip command when missing."""
    spec = _find_spec(wheel.package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        if wheel is STLPIPS_WEIGHTS:
            how = f"{install_hint('projection')} (or give vgg16_weights= for LPIPS on torchvision's VGG16)"
        else:
            how = ("pip install --no-deps 'lpips>=0.1.4' (only its weights file is read; --no-deps keeps its "
                   "torchvision requirement from replacing torch), or give lpips_weights=")
        raise ImportError(f"the {loss} loss reads {wheel.what} from the {wheel.distribution} wheel, which is not "
                          f"installed; install it with: {how}", name=wheel.package)
    path = os.path.join(folders[0], *wheel.path.split("/"))
    if not os.path.isfile(path):
        raise ValueError(f"{path}: not found in the installed {wheel.distribution} package; reinstall it")
    try:
        dist = _distribution(wheel.distribution)
        version = dist.version
        recorded = next((f.hash for f in dist.files or () if f.as_posix() == f"{wheel.package}/{wheel.path}"), None)
    except importlib.metadata.PackageNotFoundError:
        version, recorded = "(version unknown)", None
    if recorded is not None and recorded.mode == "sha256":
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode() != recorded.value:
            raise ValueError(f"{path}: its SHA-256 is not the one the {wheel.distribution} {version} wheel recorded "
                             f"at install: the file was changed; reinstall {wheel.distribution}")
    return path, version


def _file(path: str, argument: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"{argument}: {path}: no such file")
    return path


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_named_hash(path: str) -> str:
    """The file's SHA-256; ValueError when its name carries a hash prefix (torchvision's `name-<sha256[:8]>.pth`)
    that the content does not start with."""
    digest = _sha256(path)
    m = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$", os.path.basename(path))
    if m and not digest.startswith(m.group(1)):
        raise ValueError(f"{path}: its SHA-256 starts {digest[:len(m.group(1))]}, not the {m.group(1)} its name "
                         f"promises: the file is damaged or not the published one")
    return digest


# ----------------------------------------------------------------------------
# Images


def binomial_filter() -> torch.Tensor:
    """[1, 1, 3, 3]: the outer product of [1, 2, 1] with itself, over 16."""
    a = torch.tensor([1.0, 2.0, 1.0])
    return (a[:, None] * a[None, :] / 16).reshape(1, 1, 3, 3)


def _rgb(images: torch.Tensor) -> torch.Tensor:
    """float32 [N, 3, H, W] from float [N, 1 or 3, H, W]; ValueError otherwise."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3) \
            or not images.is_floating_point():
        got = (f"{images.dtype} {list(images.shape)}" if isinstance(images, torch.Tensor)
               else type(images).__name__)
        raise ValueError(f"images: expected a float tensor [N, C, H, W] with C = 1 or 3, got {got}")
    x = images.float()
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def network_size(x: torch.Tensor) -> torch.Tensor:
    """Area-downsample so that the longer side is at most MAX_SIDE (aspect kept), then repeat up (nearest, an
    integer factor) so that the shorter side is at least MIN_SIDE."""
    h, w = x.shape[-2:]
    if max(h, w) > MAX_SIDE:
        s = MAX_SIDE / max(h, w)
        x = F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    short = min(x.shape[-2:])
    if short < MIN_SIDE:
        factor = -(-MIN_SIDE // short)
        x = x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    return x


def _check_pair(a, b, parts: int = 1) -> None:
    """The two feature sets come from images of one size, with batches of equal size or one of them 1."""
    if not (isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b) == parts
            and all(isinstance(t, torch.Tensor) for t in (*a, *b))):
        raise ValueError(f"distance: expected the features() of two image batches ({parts} tensor(s) each)")
    for ta, tb in zip(a, b):
        if ta.shape[1:] != tb.shape[1:] or (ta.shape[0] != tb.shape[0] and 1 not in (ta.shape[0], tb.shape[0])):
            raise ValueError(f"distance: features of images of different sizes or batches "
                             f"({list(ta.shape)} and {list(tb.shape)})")
