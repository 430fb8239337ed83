"""Projection's image distances (stylegan_sdk/projection/losses.py): LPIPS on the shift-tolerant VGG16 of the
stlpips-pytorch wheel, LPIPS on a torchvision VGG16 file with the lpips wheel's heads, and MSE.

The numerics are checked against literal transcriptions of the reference forwards (stlpips_pytorch 0.0.2's
stlpips.LPIPS(net="vgg", variant="shift_tolerant") and lpips 0.1.4's lpips.LPIPS(net="vgg")) on random weights
in the files' own layouts, and against the reference packages themselves where they are installed: stlpips_pytorch
with its real weights (its modules import IPython, torchsummary and torchvision at their top without declaring
them and without using them on this path: stubbed here when absent), lpips when torchvision imports.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import pickle
import shutil
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from stylegan_sdk.projection import losses  # noqa: E402
from stylegan_sdk.projection.losses import LOSSES, PerceptualLoss, make_loss  # noqa: E402

SIZE = 32        # the smallest side the LPIPS losses take without repeating pixels up
VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
LIN_CHANNELS = (64, 128, 256, 512, 512)


def _images(n: int, seed: int, size: int = SIZE, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


# ----------------------------------------------------------------------------
# Random weights in the files' layouts


def _conv_weights(g: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out, ch = [], 3
    for v in VGG_CFG:
        if v != "M":
            w = torch.randn(v, ch, 3, 3, generator=g) * (2 / (ch * 9)) ** 0.5
            out.append((w, torch.randn(v, generator=g) * 0.05))
            ch = v
    return out


def _heads(g: torch.Generator) -> dict[str, torch.Tensor]:
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) * 0.2 for i, c in enumerate(LIN_CHANNELS)}


def _stlpips_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """The layout of stlpips_pytorch's weights/vST0.0/vgg_shift_tolerant.pth, random trunk and heads."""
    g = torch.Generator().manual_seed(seed)
    convs = iter(_conv_weights(g))
    sd = {"scaling_layer.shift": torch.tensor([-.030, -.088, -.188]).reshape(1, 3, 1, 1),
          "scaling_layer.scale": torch.tensor([.458, .448, .450]).reshape(1, 3, 1, 1)}
    a = torch.tensor([1.0, 2.0, 1.0])
    blur = (a[:, None] * a[None, :] / 16)[None, None]
    slice_of = lambda i: 1 + sum(i >= start for start in (4, 10, 18, 26))   # slices [0:4] [4:10] ... [26:34]
    index, ch = 0, 3
    for v in VGG_CFG[:-1]:                                  # the last pool + blur are in no slice
        if v == "M":                                        # max pool (index), blur (index + 1)
            sd[f"net.slice{slice_of(index + 1)}.{index + 1}.filt"] = blur.repeat(ch, 1, 1, 1)
        else:                                               # conv (index), relu (index + 1)
            w, b = next(convs)
            sd[f"net.slice{slice_of(index)}.{index}.weight"], sd[f"net.slice{slice_of(index)}.{index}.bias"] = w, b
            ch = v
        index += 2
    return {**sd, **_heads(g)}


def _torchvision_state(seed: int = 2) -> dict[str, torch.Tensor]:
    """torchvision's vgg16 `features` layout (the classifier, unused by LPIPS, left out: 500 MB)."""
    g = torch.Generator().manual_seed(seed)
    convs = iter(_conv_weights(g))
    sd, index = {}, 0
    for v in VGG_CFG:
        if v == "M":
            index += 1
        else:
            sd[f"features.{index}.weight"], sd[f"features.{index}.bias"] = next(convs)
            index += 2
    return sd


def _save_named(sd: dict, folder, stem: str) -> str:
    """Saved as STEM-<sha256[:8]>.pth, as torchvision names its files."""
    tmp = os.path.join(folder, f"{stem}.tmp")
    torch.save(sd, tmp)
    with open(tmp, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    path = os.path.join(folder, f"{stem}-{digest[:8]}.pth")
    os.replace(tmp, path)
    return path


class _FakeDist:
    """An installed distribution as importlib.metadata describes it: version and RECORD's file hashes."""

    def __init__(self, version: str, files: dict[str, bytes]) -> None:
        self.version = version
        self.files = []
        for rel, data in files.items():
            p = types.SimpleNamespace(as_posix=lambda rel=rel: rel, hash=types.SimpleNamespace(
                mode="sha256", value=base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()))
            self.files.append(p)


def _fake_wheel(monkeypatch, root, wheel: losses.WheelFile, sd: dict | None, recorded: bytes | None = None) -> str:
    """Install `sd` as `wheel`'s file in a package folder under root, with a RECORD hash of `recorded` (default:
    the file's own bytes); the loss finds it through the same finder as a real wheel."""
    folder = os.path.join(root, wheel.package)
    path = os.path.join(folder, *wheel.path.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if sd is not None:
        torch.save(sd, path)
    with open(path, "rb") as f:
        data = f.read()
    spec = types.SimpleNamespace(submodule_search_locations=[folder])
    monkeypatch.setattr(losses, "_find_spec", lambda name: spec if name == wheel.package else None)
    dist = _FakeDist("9.9.9", {f"{wheel.package}/{wheel.path}": data if recorded is None else recorded})
    monkeypatch.setattr(losses, "_distribution", lambda name: dist)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("loss-weights")
    heads = os.path.join(root, "lpips_vgg_v0.1.pth")
    torch.save(_heads(torch.Generator().manual_seed(3)), heads)
    return types.SimpleNamespace(root=root, vgg16=_save_named(_torchvision_state(), root, "vgg16"), heads=heads,
                                 stlpips=_stlpips_state())


@pytest.fixture(scope="module")
def random_st_loss(files, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        _fake_wheel(mp, tmp_path_factory.mktemp("st-wheel"), losses.STLPIPS_WEIGHTS, files.stlpips)
        return make_loss("lpips")


@pytest.fixture(scope="module")
def tv_loss(files):
    return make_loss("lpips-vgg16", vgg16_weights=files.vgg16, lpips_weights=files.heads)


def _stlpips_installed() -> bool:
    return importlib.util.find_spec("stlpips_pytorch") is not None


@pytest.fixture(scope="module")
def real_loss():
    if not _stlpips_installed():
        pytest.skip("stlpips-pytorch is not installed (the [projection] extra)")
    return make_loss("lpips")


@pytest.fixture(params=["lpips", "lpips-random", "lpips-vgg16", "mse"])
def loss(request) -> PerceptualLoss:
    if request.param == "lpips":
        return request.getfixturevalue("real_loss")
    if request.param == "lpips-random":
        return request.getfixturevalue("random_st_loss")
    if request.param == "lpips-vgg16":
        return request.getfixturevalue("tv_loss")
    return make_loss("mse")


# ----------------------------------------------------------------------------
# Properties


def test_names_say_what_is_used(files, random_st_loss, tv_loss):
    assert LOSSES == ("lpips", "lpips-vgg16", "mse")
    assert make_loss("mse").name == "mse"
    assert random_st_loss.name == "lpips (stlpips-pytorch 9.9.9 shift-tolerant VGG16 + linear heads)"
    digest = os.path.basename(files.vgg16)[6:14]
    heads = hashlib.sha256(Path(files.heads).read_bytes()).hexdigest()[:8]
    assert tv_loss.name == (f"lpips-vgg16 (torchvision vgg16 vgg16-{digest}.pth sha256 {digest} + LPIPS linear heads "
                            f"lpips_vgg_v0.1.pth sha256 {heads})")
    # "lpips" with a torchvision file is LPIPS on torchvision's VGG16, and its name says so
    assert make_loss("lpips", vgg16_weights=files.vgg16, lpips_weights=files.heads).name == tv_loss.name
    if _stlpips_installed():
        from importlib.metadata import version

        assert make_loss().name == (f"lpips (stlpips-pytorch {version('stlpips-pytorch')} shift-tolerant VGG16 "
                                    "+ linear heads)")


def test_identical_images_are_at_zero_and_distance_is_symmetric(loss):
    a, b = _images(2, 0), _images(2, 1)
    assert torch.equal(loss(a, a), torch.zeros(2))
    d_ab, d_ba = loss(a, b), loss(b, a)
    assert d_ab.shape == (2,) and torch.all(d_ab > 0)
    torch.testing.assert_close(d_ab, d_ba, rtol=1e-6, atol=0)


def test_gradient_reaches_the_images_only(loss):
    target = _images(1, 2)
    with torch.no_grad():
        t = loss.features(target)
    x = _images(2, 3).requires_grad_(True)
    d = loss.distance(t, loss.features(x))               # the batch of one broadcasts
    d.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters()) and not loss.training


def test_each_image_is_independent_of_its_batch(loss):
    a, b = _images(3, 4), _images(3, 5)
    batch = loss(a, b)
    single = torch.cat([loss(a[i:i + 1], b[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=1e-5, atol=1e-7)
    broadcast = loss.distance(loss.features(a[:1]), loss.features(b))
    torch.testing.assert_close(broadcast, torch.cat([loss(a[:1], b[i:i + 1]) for i in range(3)]),
                               rtol=1e-5, atol=1e-7)


def test_grey_images_are_repeated_to_rgb(loss):
    a, b = _images(2, 6, channels=1), _images(2, 7, channels=1)
    torch.testing.assert_close(loss(a, b), loss(a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)), rtol=1e-6, atol=0)


def test_network_input_size():
    x = _images(1, 8, size=512)
    torch.testing.assert_close(losses.network_size(x), F.avg_pool2d(x, 2))        # area: 512 -> 256
    assert losses.network_size(_images(1, 8, size=256)).shape[-1] == 256              # kept
    tall = torch.zeros(1, 3, 1024, 512)
    assert losses.network_size(tall).shape[-2:] == (256, 128)                          # longer side, aspect kept
    small = _images(1, 9, size=16)
    torch.testing.assert_close(losses.network_size(small), small.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_large_images_are_compared_at_256(tv_loss):
    """NVIDIA's projectors compare 256 px images: a 512 px pair has the distance of its area-downsampled pair
    (here 64 x 512 -> 32 x 256, the longer side at 256, to keep the test quick)."""
    a, b = _images(1, 10, size=512)[:, :, :64], _images(1, 11, size=512)[:, :, :64]
    torch.testing.assert_close(tv_loss(a, b), tv_loss(F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)))
    torch.testing.assert_close(make_loss("mse")(a, b), ((a - b) ** 2).mean(dim=(1, 2, 3)))  # mse: the images


def test_small_images_work(random_st_loss, tv_loss):
    a, b = _images(1, 12, size=16), _images(1, 13, size=16)
    for loss in (random_st_loss, tv_loss):
        assert loss(a, b).shape == (1,)


# ----------------------------------------------------------------------------
# Numerics against the references


def _stlpips_transcription(sd: dict, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
    """stlpips_pytorch 0.0.2, LPIPS(net="vgg", variant="shift_tolerant", version="0.1").forward, transcribed:
    invariant_networks.vggnet("shift_tolerant") = models_lpf.vgg16(filter_size=3, pad_more=True).features cut
    into slices [0:4] [4:10] [10:18] [18:26] [26:34]; make_layers: "M" -> MaxPool2d(2, stride=1) +
    Downsample(filt_size=3, stride=2, pad_more=True) = ReflectionPad2d([2, 2, 2, 2]) then conv2d(filt, stride 2,
    groups=C); convs 3x3 padding 1 + ReLU; ScalingLayer; utils.normalize_tensor; lins; spatial_average; sum."""
    layers, index = [], 0
    for v in VGG_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=1))
            layers.append(("down", index + 1))
            index += 2
        else:
            layers.append(("conv", index))
            layers.append(nn.ReLU())
            index += 2
    bounds = (0, 4, 10, 18, 26, 34)

    def run(x):
        outs = []
        for s in range(5):
            for i in range(bounds[s], bounds[s + 1]):
                layer = layers[i]
                if isinstance(layer, tuple) and layer[0] == "conv":
                    x = F.conv2d(x, sd[f"net.slice{s + 1}.{i}.weight"], sd[f"net.slice{s + 1}.{i}.bias"], padding=1)
                elif isinstance(layer, tuple):
                    filt = sd[f"net.slice{s + 1}.{i}.filt"]
                    x = F.conv2d(nn.ReflectionPad2d([2, 2, 2, 2])(x), filt, stride=2, groups=x.shape[1])
                else:
                    x = layer(x)
            outs.append(x)
        return outs

    scale = lambda x: (x - sd["scaling_layer.shift"]) / sd["scaling_layer.scale"]
    outs0, outs1 = run(scale(in0)), run(scale(in1))
    normalize = lambda f: f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10)
    val = 0
    for kk in range(5):
        diff = (normalize(outs0[kk]) - normalize(outs1[kk])) ** 2
        val = val + F.conv2d(diff, sd[f"lin{kk}.model.1.weight"]).mean([2, 3], keepdim=True)
    return val.flatten()


def _lpips_transcription(tv: dict, heads: dict, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
    """lpips 0.1.4, LPIPS(net="vgg", version="0.1").forward, transcribed: pretrained_networks.vgg16 = torchvision's
    vgg16().features cut into slices [0:4] [4:9] [9:16] [16:23] [23:30] (convs 3x3 padding 1 + ReLU, MaxPool2d(2, 2));
    ScalingLayer shift [-.030, -.088, -.188], scale [.458, .448, .450]; normalize_tensor; lins; spatial mean; sum."""
    layers, index = [], 0
    for v in VGG_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            index += 1
        else:
            layers += [("conv", index), nn.ReLU()]
            index += 2
    bounds = (0, 4, 9, 16, 23, 30)

    def run(x):
        outs = []
        for s in range(5):
            for i in range(bounds[s], bounds[s + 1]):
                if isinstance(layers[i], tuple):
                    x = F.conv2d(x, tv[f"features.{i}.weight"], tv[f"features.{i}.bias"], padding=1)
                else:
                    x = layers[i](x)
            outs.append(x)
        return outs

    shift = torch.Tensor([-.030, -.088, -.188])[None, :, None, None]
    scale = torch.Tensor([.458, .448, .450])[None, :, None, None]
    outs0, outs1 = run((in0 - shift) / scale), run((in1 - shift) / scale)
    normalize = lambda f: f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10)
    val = 0
    for kk in range(5):
        diff = (normalize(outs0[kk]) - normalize(outs1[kk])) ** 2
        val = val + F.conv2d(diff, heads[f"lin{kk}.model.1.weight"]).mean([2, 3], keepdim=True)
    return val.flatten()


def test_shift_tolerant_lpips_is_the_transcribed_reference(files, random_st_loss):
    a, b = _images(2, 20), _images(2, 21)
    torch.testing.assert_close(random_st_loss(a, b), _stlpips_transcription(files.stlpips, a, b),
                               rtol=1e-5, atol=1e-7)
    # odd sizes go through the reflect padding and the pools' edges the same way
    a, b = _images(1, 22, size=37), _images(1, 23, size=37)
    torch.testing.assert_close(random_st_loss(a, b), _stlpips_transcription(files.stlpips, a, b),
                               rtol=1e-5, atol=1e-7)


def test_torchvision_lpips_is_the_transcribed_reference(files, tv_loss):
    tv = torch.load(files.vgg16, weights_only=True)
    heads = torch.load(files.heads, weights_only=True)
    a, b = _images(2, 24), _images(2, 25)
    torch.testing.assert_close(tv_loss(a, b), _lpips_transcription(tv, heads, a, b), rtol=1e-5, atol=1e-7)


@pytest.fixture
def stlpips_module(monkeypatch):
    """stlpips_pytorch.stlpips, importable: its modules import IPython (embed), torchsummary (summary) and
    torchvision (the vanilla trunks) at their top, none of which it declares or uses on the shift-tolerant path."""
    if not _stlpips_installed():
        pytest.skip("stlpips-pytorch is not installed (the [projection] extra)")
    for name, attr in (("IPython", "embed"), ("torchsummary", "summary")):
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            setattr(stub, attr, lambda *args, **kwargs: None)
            monkeypatch.setitem(sys.modules, name, stub)
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or a build that does not match this torch
        stub = types.ModuleType("torchvision")
        stub.models = types.ModuleType("torchvision.models")
        monkeypatch.setitem(sys.modules, "torchvision", stub)
        monkeypatch.setitem(sys.modules, "torchvision.models", stub.models)
    from stlpips_pytorch import stlpips

    yield stlpips
    for name in [m for m in sys.modules if m.startswith("stlpips_pytorch")]:
        del sys.modules[name]


def test_shift_tolerant_lpips_equals_stlpips_pytorch(stlpips_module, real_loss):
    """The real weights, through the reference package's own LPIPS module (which reads the same file)."""
    ref = stlpips_module.LPIPS(net="vgg", variant="shift_tolerant", verbose=False).eval()
    a, b = _images(2, 30), _images(2, 31)
    with torch.no_grad():
        expected = ref(a, b).flatten()
    torch.testing.assert_close(real_loss(a, b), expected, rtol=1e-5, atol=1e-7)
    grey_a, grey_b = _images(1, 32, size=37, channels=1), _images(1, 33, size=37, channels=1)
    with torch.no_grad():
        expected = ref(grey_a.repeat(1, 3, 1, 1), grey_b.repeat(1, 3, 1, 1)).flatten()
    torch.testing.assert_close(real_loss(grey_a, grey_b), expected, rtol=1e-5, atol=1e-7)


def test_torchvision_lpips_equals_the_lpips_package(files, tv_loss):
    """lpips.LPIPS(net="vgg") with the same random trunk and heads (needs torchvision and lpips)."""
    try:
        import lpips
        import torchvision  # noqa: F401
    except Exception as e:  # absent, or a torchvision build that does not match this torch
        pytest.skip(f"lpips with torchvision is not importable here ({type(e).__name__}: {e})")
    ref = lpips.LPIPS(net="vgg", pnet_rand=True, model_path=files.heads, verbose=False).eval()
    tv = torch.load(files.vgg16, weights_only=True)
    starts = (0, 4, 9, 16, 23)
    ref.net.load_state_dict({f"slice{1 + sum(int(k.split('.')[1]) >= s for s in starts[1:])}.{k[len('features.'):]}": v
                             for k, v in tv.items()})
    a, b = _images(2, 34), _images(2, 35)
    with torch.no_grad():
        expected = ref(a, b).flatten()
    torch.testing.assert_close(tv_loss(a, b), expected, rtol=1e-5, atol=1e-7)


def test_the_lpips_wheel_heads_are_read_when_installed(files):
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed (pip install --no-deps lpips)")
    from importlib.metadata import version

    loss = make_loss("lpips-vgg16", vgg16_weights=files.vgg16)
    assert loss.name.endswith(f"+ lpips {version('lpips')} v0.1 linear heads)")
    wheel = os.path.join(os.path.dirname(importlib.util.find_spec("lpips").origin), "weights", "v0.1", "vgg.pth")
    assert torch.equal(loss.head3, torch.load(wheel, map_location="cpu", weights_only=True)["lin3.model.1.weight"])


# ----------------------------------------------------------------------------
# Safe reading: wrong, damaged or malicious files are refused with the file named


def test_a_changed_wheel_file_is_refused(monkeypatch, tmp_path, files):
    path = _fake_wheel(monkeypatch, tmp_path, losses.STLPIPS_WEIGHTS, files.stlpips, recorded=b"what pip installed")
    with pytest.raises(ValueError, match="SHA-256 is not the one the stlpips-pytorch 9.9.9 wheel recorded") as e:
        make_loss("lpips")
    assert path in str(e.value)


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("net.slice3.14.weight"), "missing net.slice3.14.weight"),
    (lambda sd: sd.update({"net.slice9.0.weight": torch.zeros(1)}), "unexpected net.slice9.0.weight"),
    (lambda sd: sd.update({"lin2.model.1.weight": torch.zeros(1, 128, 1, 1)}), r"wrong shapes: lin2.model.1.weight"),
    (lambda sd: sd["net.slice4.20.bias"].__setitem__(0, float("nan")), "not finite in net.slice4.20.bias"),
    (lambda sd: sd["net.slice2.5.filt"].fill_(1 / 9), "net.slice2.5.filt is not the binomial"),
    (lambda sd: sd["scaling_layer.scale"].fill_(1), "scaling_layer.scale is"),
    (lambda sd: sd.update({"lin0.model.1.weight": sd["lin0.model.1.weight"].long()}), "not floating-point"),
])
def test_a_wrong_stlpips_file_is_refused(monkeypatch, tmp_path, files, change, message):
    sd = {k: v.clone() for k, v in files.stlpips.items()}
    change(sd)
    path = _fake_wheel(monkeypatch, tmp_path, losses.STLPIPS_WEIGHTS, sd)
    with pytest.raises(ValueError, match=message) as e:
        make_loss("lpips")
    assert str(e.value).startswith(path)


def test_a_wrong_vgg16_file_is_refused(tmp_path, files):
    tv = torch.load(files.vgg16, weights_only=True)
    bn = dict(tv, **{"features.1.running_mean": torch.zeros(64)})        # a vgg16_bn-like file
    path = str(tmp_path / "vgg16_bn.pth")
    torch.save(bn, path)
    with pytest.raises(ValueError, match=f"{path}: not the expected weights: missing none, unexpected "
                                         "features.1.running_mean"):
        make_loss("lpips-vgg16", vgg16_weights=path, lpips_weights=files.heads)
    renamed = str(tmp_path / "vgg16-0123abcd.pth")                       # a hash in the name it does not have
    shutil.copy(files.vgg16, renamed)
    with pytest.raises(ValueError, match="not the 0123abcd its name promises"):
        make_loss("lpips-vgg16", vgg16_weights=renamed, lpips_weights=files.heads)
    heads = str(tmp_path / "heads.pth")
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, heads)
    with pytest.raises(ValueError, match=f"{heads}: not the expected weights: missing lin1.model.1.weight"):
        make_loss("lpips-vgg16", vgg16_weights=files.vgg16, lpips_weights=heads)
    with pytest.raises(ValueError, match="vgg16_weights: .*nowhere.pth: no such file"):
        make_loss("lpips-vgg16", vgg16_weights=str(tmp_path / "nowhere.pth"))


class _Runs:
    def __reduce__(self):
        return (os.system, ("echo ran > ran.txt",))


def test_a_file_with_code_is_refused_without_running_it(tmp_path, monkeypatch, files):
    monkeypatch.chdir(tmp_path)
    evil = str(tmp_path / "vgg16.pth")
    with open(evil, "wb") as f:
        pickle.dump({"features.0.weight": _Runs()}, f, protocol=2)
    with pytest.raises(ValueError, match="not a readable weights file"):
        make_loss("lpips-vgg16", vgg16_weights=evil, lpips_weights=files.heads)
    buf = io.BytesIO()
    torch.save({"features.0.weight": _Runs()}, buf)
    (tmp_path / "vgg16-z.pth").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="not a readable weights file"):
        make_loss("lpips-vgg16", vgg16_weights=str(tmp_path / "vgg16-z.pth"), lpips_weights=files.heads)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a state dict of named tensors, got list"):
        make_loss("lpips-vgg16", vgg16_weights=str(tmp_path / "list.pth"), lpips_weights=files.heads)
    assert not (tmp_path / "ran.txt").exists()


# ----------------------------------------------------------------------------
# Missing wheels, bad arguments


def test_a_missing_wheel_names_the_install(monkeypatch, files):
    from stylegan_sdk.version import install_hint

    monkeypatch.setattr(losses, "_find_spec", lambda name: None)
    with pytest.raises(ImportError) as e:
        make_loss("lpips")
    msg = str(e.value)
    assert "stlpips-pytorch wheel, which is not installed" in msg and install_hint("projection") in msg
    assert "[projection]" in msg and "\n" not in msg and e.value.name == "stlpips_pytorch"
    with pytest.raises(ImportError) as e:
        make_loss("lpips-vgg16", vgg16_weights=files.vgg16)
    msg = str(e.value)
    assert "lpips wheel, which is not installed" in msg and "pip install --no-deps 'lpips>=0.1.4'" in msg
    assert "\n" not in msg
    assert make_loss("mse").name == "mse"                    # needs no wheel


def test_bad_arguments(files, tv_loss):
    with pytest.raises(ValueError, match="loss: expected one of lpips, lpips-vgg16, mse, got 'l2'"):
        make_loss("l2")
    with pytest.raises(ValueError, match="the mse loss uses no network"):
        make_loss("mse", vgg16_weights=files.vgg16)
    with pytest.raises(ValueError, match="vgg16_weights: the lpips-vgg16 loss needs a torchvision vgg16 state file"):
        make_loss("lpips-vgg16")
    with pytest.raises(ValueError, match="lpips_weights: the lpips loss reads its heads from the stlpips-pytorch"):
        make_loss("lpips", lpips_weights=files.heads)
    for loss in (tv_loss, make_loss("mse")):
        for bad in (torch.zeros(1, 4, 8, 8), torch.zeros(3, 8, 8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8)):
            with pytest.raises(ValueError, match=r"images: expected a float tensor \[N, C, H, W\] with C = 1 or 3"):
                loss.features(bad)
        with pytest.raises(ValueError, match="distance: features of images of different sizes or batches"):
            loss.distance(loss.features(_images(2, 1, size=32)), loss.features(_images(2, 1, size=36)))
        with pytest.raises(ValueError, match="distance: features of images of different sizes or batches"):
            loss.distance(loss.features(_images(2, 1, size=32)), loss.features(_images(3, 1, size=32)))
