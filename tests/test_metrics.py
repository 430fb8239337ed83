"""Metrics: the mathematics on cases with known answers, the feature networks' layouts, the CLI and the loop."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `training` lives at the repo root, beside the package
    sys.path.insert(0, str(REPO))

import training.metrics.feature_nets as fn  # noqa: E402
from stylegan_sdk import save_checkpoint  # noqa: E402
from stylegan_sdk.config import GeneratorConfig  # noqa: E402
from stylegan_sdk.models import build_generator  # noqa: E402
from training.metrics import MetricError, parse_metric  # noqa: E402
from training.metrics.__main__ import main as metrics_main  # noqa: E402
from training.metrics.fid import FeatureStats, fid_from_features, frechet_distance  # noqa: E402
from training.metrics.ppl import compute_ppl, ppl_from_distances, slerp  # noqa: E402
from training.metrics.precision_recall import precision_recall  # noqa: E402


@pytest.fixture(autouse=True)
def small_inputs(monkeypatch):
    """Run the feature networks at their smallest inputs (75 px Inception, 32 px VGG fc7), on one
    thread: these tests check the plumbing and layouts on a shared CPU in seconds; the standard sizes
    only change the numbers."""
    monkeypatch.setattr(fn, "INCEPTION_SIZE", 75)
    monkeypatch.setattr(fn, "VGG_FC_SIZE", 32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_cov(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ----------------------------------------------------------------------------
# FID


def test_fid_of_identical_statistics_is_zero():
    mu, s = np.arange(6.0), _random_cov(6, 0)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-9
    feats = np.random.default_rng(1).standard_normal((500, 5))
    a, b = FeatureStats(), FeatureStats()
    for chunk in np.array_split(feats, 7):
        a.append(chunk)
    b.append(feats)
    assert abs(fid_from_features(a, b)) < 1e-9
    mean, cov = a.mean_cov()
    assert np.allclose(mean, feats.mean(0)) and np.allclose(cov, np.cov(feats, rowvar=False))


def test_fid_of_two_gaussians_has_the_closed_form():
    # Diagonal covariances: |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2 (per-axis standard deviations).
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.5, 0.5])
    want = np.square(mu1 - mu2).sum() + np.square(sd1 - sd2).sum()
    assert frechet_distance(mu1, np.diag(sd1**2), mu2, np.diag(sd2**2)) == pytest.approx(want, rel=1e-12)
    # Scalar case: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance([2.0], [[4.0]], [-1.0], [[9.0]]) == pytest.approx(9 + 1)
    # Commuting full covariances (same eigenvectors): tr sqrt(S1 S2) = sum sqrt(l1 * l2).
    q, _ = np.linalg.qr(np.random.default_rng(6).standard_normal((5, 5)))
    l1, l2 = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([2.0, 0.5, 1.0, 8.0, 3.0])
    want = np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    assert frechet_distance(np.zeros(5), q @ np.diag(l1) @ q.T, np.zeros(5), q @ np.diag(l2) @ q.T) == \
        pytest.approx(want, rel=1e-9)


def test_fid_with_non_commuting_covariances_matches_scipy_sqrtm():
    """Against the definition with a general matrix square root (the reference implementations' way)."""
    scipy_linalg = pytest.importorskip("scipy.linalg")
    s1, s2 = _random_cov(8, 2), _random_cov(8, 3)
    m1, m2 = np.linspace(0, 1, 8), np.linspace(1, -1, 8)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    want = np.square(m1 - m2).sum() + np.trace(s1 + s2 - 2 * covmean)
    got = frechet_distance(m1, s1, m2, s2)
    assert got == pytest.approx(want, rel=1e-9) and got == pytest.approx(frechet_distance(m2, s2, m1, s1), rel=1e-9)


def test_fid_from_samples_converges_to_the_closed_form():
    rng = np.random.default_rng(0)
    s1, s2 = _random_cov(4, 4), _random_cov(4, 5)
    m1, m2 = np.zeros(4), np.full(4, 0.5)
    a, b = FeatureStats(), FeatureStats()
    for _ in range(10):
        a.append(rng.multivariate_normal(m1, s1, 4000))
        b.append(rng.multivariate_normal(m2, s2, 4000))
    assert fid_from_features(a, b) == pytest.approx(frechet_distance(m1, s1, m2, s2), rel=0.05)


# ----------------------------------------------------------------------------
# PPL


def test_slerp_moves_along_the_great_circle_at_constant_speed():
    torch.manual_seed(0)
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    na, nb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    theta = torch.acos((na * nb).sum(1))
    assert torch.allclose(slerp(a, b, torch.zeros(5, 1)), na, atol=1e-6)
    assert torch.allclose(slerp(a, b, torch.ones(5, 1)), nb, atol=1e-5)
    mid = slerp(a, b, torch.full((5, 1), 0.3))
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(torch.acos((mid * na).sum(1).clamp(-1, 1)), 0.3 * theta, atol=1e-4)


class _IdentityG(torch.nn.Module):
    """mapping: w = z; synthesis: the image is the first ws row (an 8x8 gray image of w_dim 64)."""

    def __init__(self):
        super().__init__()
        self.num_ws = 2
        self.mapping = torch.nn.Module()
        self.mapping.z_dim, self.mapping.c_dim = 64, 0
        self.mapping.forward = lambda z, c: z
        self.cfg = GeneratorConfig(img_resolution=8, use_noise=False, z_dim=64, w_dim=64)

    def synthesis(self, ws, noise_mode="const", noise=None):
        return ws[:, 0].reshape(-1, 1, 8, 8)


def test_ppl_known_answers_with_a_linear_generator():
    """With an identity embedding: W lerp gives |w1 - w0|^2 ~ 2 chi2_64 (mean 128); Z slerp on
    the unit sphere gives the squared angle, about (pi / 2)^2 for independent latents in 64-d."""
    G = _IdentityG()

    def embed(img):
        return img.flatten(1).double()

    def no_labels(n):
        return torch.zeros(n, 0)

    w_end = compute_ppl(G, embed, no_labels, 3000, space="w", sampling="end", batch=500)
    w_full = compute_ppl(G, embed, no_labels, 3000, space="w", sampling="full", batch=500, seed=1)
    assert w_end == pytest.approx(128, rel=0.03) and w_full == pytest.approx(128, rel=0.03)
    z_full = compute_ppl(G, embed, no_labels, 2000, space="z", sampling="full", batch=500)
    assert z_full == pytest.approx(math.pi**2 / 4 + 1 / 64, rel=0.03)
    # The paper's trimming: values outside the 1st-99th percentiles are dropped.
    assert ppl_from_distances(np.r_[np.ones(990), np.full(5, 1e9), np.full(5, -1e9)]) == pytest.approx(1.0)


# ----------------------------------------------------------------------------
# Precision and recall


def test_precision_recall_known_answers():
    rng = np.random.default_rng(0)
    cluster_a = torch.from_numpy(rng.standard_normal((200, 8))).float()
    cluster_b = cluster_a + 100.0
    assert precision_recall(cluster_a, cluster_a) == (1.0, 1.0)
    assert precision_recall(cluster_a, cluster_b) == (0.0, 0.0)
    # Generated samples cover only one of the two real modes: precise, half the recall.
    p, r = precision_recall(torch.cat([cluster_a, cluster_b]), cluster_a[:100])
    assert p == 1.0 and 0.45 <= r <= 0.55


# ----------------------------------------------------------------------------
# Feature networks: layouts of the published weights, loading, offline errors


def test_feature_networks_have_the_published_layouts():
    inception = fn.InceptionV3Features()
    # pytorch-fid's FID Inception less its unused 1008-way logits layer (2048 * 1008 + 1008 parameters)
    assert sum(p.numel() for p in inception.parameters()) == 23_850_960 - 2048 * 1008 - 1008
    keys = inception.state_dict()
    assert keys["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    vgg = fn.VGG16Features()
    tv = {k: v for k, v in vgg.state_dict().items() if not k.startswith("lpips.")}
    assert sum(v.numel() for v in tv.values()) == 138_357_544               # torchvision vgg16
    assert sorted({k.split(".")[1] for k in tv if k.startswith("features.")}, key=int) == \
        ["0", "2", "5", "7", "10", "12", "14", "17", "19", "21", "24", "26", "28"]


def test_missing_weights_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(fn.ENV_VAR, str(tmp_path))
    with pytest.raises(MetricError) as e:
        fn.find_weights("inception", download=False)
    msg = str(e.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in msg and "--feature-weights" in msg and fn.ENV_VAR in msg
    assert "https://github.com/mseitzer/pytorch-fid" in msg and "\n" not in msg
    monkeypatch.setattr(fn, "_download", lambda spec, folder: (_ for _ in ()).throw(OSError("no network")))
    with pytest.raises(MetricError, match="download failed: no network"):
        fn.find_weights("vgg16", str(tmp_path))


def test_download_checks_the_hash_and_is_atomic(tmp_path):
    """The download path (here from a file:// URL): saved under the canonical name only if its SHA-256
    starts with the hash the published file name carries."""
    import hashlib

    src = tmp_path / "published.pth"
    src.write_bytes(b"weights" * 1000)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    good = fn.WeightsFile("test weights", "w-abc.pth", src.as_uri(), digest[:8], ())
    path = fn._download(good, str(tmp_path / "cache"))
    assert Path(path).read_bytes() == src.read_bytes() and Path(path).name == "w-abc.pth"
    bad = fn.WeightsFile("test weights", "w-bad.pth", src.as_uri(), "00000000", ())
    with pytest.raises(ValueError, match="SHA-256"):
        fn._download(bad, str(tmp_path / "cache"))
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["w-abc.pth"]


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A folder with randomly initialised FID Inception weights under the published file name."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    net = fn.InceptionV3Features()
    for m in net.modules():             # activations that keep their scale, non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    sd = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    sd["fc.weight"], sd["fc.bias"] = torch.randn(1008, 2048), torch.randn(1008)   # in the published file, unused
    torch.save(sd, folder / "pt_inception-2015-12-05-6726825d.pth")
    return folder, net


def test_inception_loads_from_the_weights_file(inception_weights):
    folder, ref = inception_weights
    net = fn.load_inception(str(folder), download=False)
    imgs = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        feats = net(imgs)
        assert feats.shape == (2, 2048) and torch.allclose(feats, ref.eval()(imgs), atol=1e-5)
        assert torch.allclose(net(imgs[:, :1]), net(imgs[:, :1].repeat(1, 3, 1, 1)))   # gray = repeated RGB


@pytest.fixture
def vgg_weights(tmp_path, monkeypatch):
    """A weights folder with vgg16-397923af.pth (random weights, served from memory: the real file is
    528 MB) and LPIPS linear layers in the layout of the lpips package's weights/v0.1/vgg.pth."""
    torch.manual_seed(0)
    tv = {k: v for k, v in fn.VGG16Features().state_dict().items() if not k.startswith("lpips.")}
    (tmp_path / "vgg16-397923af.pth").write_bytes(b"")
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(fn.LPIPS_CHANNELS)}
    torch.save(lin, tmp_path / "lpips_vgg-v0.1.pth")
    real_read = fn.read_state_dict
    monkeypatch.setattr(fn, "read_state_dict", lambda p: tv if p.endswith("vgg16-397923af.pth") else real_read(p))
    return tmp_path, lin


def test_vgg16_lpips_distance_is_the_lpips_formula(vgg_weights):
    folder, lin = vgg_weights
    net = fn.load_vgg16(str(folder), download=False)
    assert torch.equal(net.lpips[2].model[1].weight, lin["lin2.model.1.weight"])
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        d_ab, d_ba = fn.lpips_distance(net, a, b), fn.lpips_distance(net, b, a)
        assert torch.all(d_ab > 0) and torch.allclose(d_ab, d_ba) and torch.all(fn.lpips_distance(net, a, a) == 0)
        assert net.fc7(a).shape == (2, 4096)
        # Sum over the five taps of the w-weighted, spatially averaged squared differences of
        # channel-normalised features (16 px images are up-sampled to 32 px first).
        want = torch.zeros(2)
        fa = net._normalise(a).repeat_interleave(2, 2).repeat_interleave(2, 3)
        fb = net._normalise(b).repeat_interleave(2, 2).repeat_interleave(2, 3)
        for i, layer in enumerate(net.features[:30]):
            fa, fb = layer(fa), layer(fb)
            if i in fn.LPIPS_TAPS:
                k = fn.LPIPS_TAPS.index(i)
                na = fa / (fa.square().sum(1, keepdim=True).sqrt() + 1e-10)
                nb = fb / (fb.square().sum(1, keepdim=True).sqrt() + 1e-10)
                want += ((na - nb).square() * lin[f"lin{k}.model.1.weight"]).sum(1).mean([1, 2])
        assert torch.allclose(d_ab, want, rtol=1e-4)


def test_metric_names():
    assert parse_metric("fid50k_full").num_gen == 50000 and parse_metric("fid50k_full").max_real is None
    assert parse_metric("fid10k").max_real == 10000 and parse_metric("fid500").num_gen == 500
    spec = parse_metric("ppl_zfull")
    assert (spec.space, spec.sampling, spec.crop, spec.num_gen) == ("z", "full", True, 50000)
    assert parse_metric("ppl2_wend_2k").crop is False and parse_metric("ppl2_wend_2k").num_gen == 2000
    assert parse_metric("pr50k3_full").kind == "pr" and parse_metric("pr1003").num_gen == 100
    with pytest.raises(MetricError, match="unknown metric"):
        parse_metric("is50k")


class _CollapsingG(torch.nn.Module):
    """Conditional, 3 classes, 8x8 RGB, no noise. Class 0: one gray picture for every z (collapsed).
    Class 1: pixel = 128 + 40 z_pixel, as its real images are drawn. Class 2: 128 + 20 z_pixel (half)."""

    def __init__(self):
        super().__init__()
        self.num_ws = 1
        self.mapping = torch.nn.Module()
        self.mapping.z_dim, self.mapping.c_dim = 192, 3
        self.mapping.forward = lambda z, c: z * (c[:, 1:2] + 0.5 * c[:, 2:3])   # [N, 192]
        self.cfg = GeneratorConfig(img_resolution=8, img_channels=3, use_noise=False, z_dim=192, w_dim=192)

    def synthesis(self, ws, noise_mode="const", noise=None):
        return ws[:, 0].reshape(-1, 3, 8, 8) * 40 / 127.5                     # 128 + 40 w in uint8 values


def test_class_variety_known_answers(tmp_path):
    """cvar: ~0 for a class that gives one picture, ~1 for one that varies as its reals do, ~0.5 for half."""
    from training.dataset import ImageDataset
    from training.metrics import calc_metric
    from training.metrics.variety import pixel_spread

    rng = np.random.default_rng(0)
    labels = []
    for i in range(3 * 150):
        img = np.clip(np.rint(128 + 40 * rng.standard_normal((8, 8, 3))), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        labels.append([f"{i}.png", i % 3])
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": labels, "classes": ["flat", "full", "half"]}))
    ds = ImageDataset(str(tmp_path))
    out = calc_metric("cvar400", _CollapsingG(), ds, batch=100)["results"]
    per = out["cvar400_classes"]
    assert per["flat"] == pytest.approx(0, abs=1e-6) and out["cvar400"] == per["flat"]
    assert per["full"] == pytest.approx(1, abs=0.06) and per["half"] == pytest.approx(0.5, abs=0.03)
    assert pixel_spread([np.array([[[[0.0]]], [[[2.0]]]])]) == pytest.approx(math.sqrt(2))   # ddof 1
    # An unconditional generator, or data without class labels: one clear error.
    with pytest.raises(MetricError, match="class-conditional"):
        calc_metric("cvar10", build_generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=1,
                                                              channel_base=64, channel_max=8)), ds)
    with pytest.raises(MetricError, match="labels"):
        calc_metric("cvar10", _CollapsingG(), ImageDataset(str(tmp_path), use_labels=False))
    assert parse_metric("cvar1k").num_gen == 1000 and parse_metric("cvar256").weights is None


# ----------------------------------------------------------------------------
# The command line and the training loop


@pytest.fixture(scope="module")
def tiny_model_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, mapping_layers=2, channel_base=128, channel_max=16)
    torch.manual_seed(0)
    G = build_generator(cfg)
    ckpt = root / "tiny.safetensors"
    save_checkpoint(ckpt, cfg, G.state_dict())
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(data / f"{i}.png")
    return ckpt, data


def test_metrics_command_line(inception_weights, vgg_weights, tiny_model_and_data, tmp_path, capsys):
    folder, _ = inception_weights
    vgg_folder, _ = vgg_weights
    for f in folder.iterdir():
        (vgg_folder / f.name).symlink_to(f)
    ckpt, data = tiny_model_and_data
    out = tmp_path / "results.jsonl"
    argv = ["--model", str(ckpt), "--data", str(data), "--metrics", "fid8,ppl2_wend_8,pr83", "--feature-weights",
            str(vgg_folder), "--no-download", "--batch", "8", "--out", str(out)]
    assert metrics_main(argv) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    results = {k: v for line in lines for k, v in line["results"].items()}
    assert sorted(results) == ["fid8", "ppl2_wend_8", "pr83_precision", "pr83_recall"]
    assert results["fid8"] > 0 and results["ppl2_wend_8"] > 0 and 0 <= results["pr83_recall"] <= 1
    assert [json.loads(x)["metric"] for x in out.read_text().splitlines()] == ["fid8", "ppl2_wend_8", "pr83"]
    # Without the weights: one line, exit 2.
    (tmp_path / "none").mkdir()
    assert metrics_main([*argv[:6], "--feature-weights", str(tmp_path / "none"), "--no-download"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pt_inception-2015-12-05-6726825d.pth" in err[0]


def test_a_missing_model_or_data_is_named_before_the_weights(tiny_model_and_data, tmp_path, capsys):
    """A wrong --model or --data path is the error, not the feature network weights that would be downloaded
    first (the README's example names a snapshot the user may not have yet)."""
    ckpt, data = tiny_model_and_data
    (tmp_path / "none").mkdir()
    weights = ["--feature-weights", str(tmp_path / "none"), "--no-download"]
    for argv, word in [(["--model", str(tmp_path / "nope.safetensors"), "--data", str(data)], "nope.safetensors"),
                       (["--model", str(ckpt), "--data", str(tmp_path / "nodata.zip")], "nodata.zip")]:
        assert metrics_main([*argv, "--metrics", "fid8", *weights]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0] and "pt_inception" not in err[0], err


def test_several_models_share_one_pass_over_the_reals(inception_weights, tiny_model_and_data, tmp_path, capsys,
                                                     monkeypatch):
    import hashlib

    import training.metrics as metrics
    import training.metrics.fid as fid
    from training.dataset import ImageDataset

    # The Fréchet distance is a function of the two statistics alone (2048-d eigendecompositions: seconds each):
    # asked again for statistics equal to the bit to ones it had (the joint run's, as the separate runs'), it
    # answers as the first time; statistics that differ at all are computed.
    distances: dict[str, float] = {}
    frechet_distance = fid.frechet_distance

    def frechet_once(*stats) -> float:
        key = hashlib.sha256(b"".join(np.ascontiguousarray(s, np.float64).tobytes() for s in stats)).hexdigest()
        if key not in distances:
            distances[key] = frechet_distance(*stats)
        return distances[key]

    monkeypatch.setattr(fid, "frechet_distance", frechet_once)
    folder, _ = inception_weights
    ckpt, data = tiny_model_and_data
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, mapping_layers=2, channel_base=128, channel_max=16)
    torch.manual_seed(1)
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, cfg, build_generator(cfg).state_dict())
    base = ["--data", str(data), "--metrics", "fid8", "--feature-weights", str(folder), "--no-download",
            "--batch", "8"]

    def fids(models: list[str]) -> dict[str, float]:
        monkeypatch.setattr(metrics, "_REAL_CACHE", {})
        assert metrics_main([a for m in models for a in ("--model", m)] + base) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
        return {line["model"]: line["results"]["fid8"] for line in lines}

    alone = {**fids([str(ckpt)]), **fids([str(other)])}
    passes = []
    real_iter = ImageDataset.iter_batches
    monkeypatch.setattr(ImageDataset, "iter_batches", lambda self, *a: passes.append(1) or real_iter(self, *a))
    together = fids([str(ckpt), str(other)])
    assert together == pytest.approx(alone, rel=1e-6) and together[str(ckpt)] != together[str(other)]
    assert len(passes) == 1
    # A missing second model is refused before anything is computed: one line, exit 2.
    assert metrics_main(["--model", str(ckpt), "--model", str(tmp_path / "nope.safetensors"), *base]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "nope.safetensors" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_metrics_in_the_training_loop(inception_weights, tmp_path):
    from training.run import main as run_main

    folder, _ = inception_weights
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(data / f"{i}.png")
    (data / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", i % 2] for i in range(16)]}))
    out = tmp_path / "run"
    assert run_main(["--data", str(data), "--outdir", str(out), "--cfg", "cpu", "--batch", "8", "--kimg", "0.008",
                     "--cbase", "128", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map", "2",
                     "--metrics", "fid8,cvar4", "--feature-weights", str(folder)]) == 0
    lines = [json.loads(x) for x in (out / "metric-fid8.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[-1]["snapshot"] == "network-snapshot-000000008.safetensors"
    assert np.isfinite(lines[-1]["results"]["fid8"])
    cvar = json.loads((out / "metric-cvar4.jsonl").read_text())["results"]
    assert sorted(cvar["cvar4_classes"]) == ["0", "1"] and cvar["cvar4"] == min(cvar["cvar4_classes"].values())
    stats = json.loads((out / "stats.jsonl").read_text().splitlines()[-1])
    assert "Metrics/fid8" in stats and "Metrics/cvar4" in stats and "Metrics/cvar4_classes" not in stats
