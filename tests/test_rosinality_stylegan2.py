"""rosinality/stylegan2-pytorch checkpoints against their fixture (tests/fixtures/rosinality-stylegan2).

Both layouts of the same g_ema (train.py's `checkpoint.pt`, convert_weight.py's
`checkpoint_converted_layout.pt`) are imported into our StyleGAN2 and must reproduce every stored
output; then the refusals: SWAGAN, code or unknown classes in the pickle, truncated and lying files,
and malformed state dicts, each a clean ValueError before anything big is allocated.
"""

from __future__ import annotations

import argparse
import fractions
import os
import pickle
import resource
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES

from stylegan_sdk.formats.checkpoint import W_AVG_KEY
from stylegan_sdk.importers.rosinality import import_torch_checkpoint, read_torch_file
from stylegan_sdk.importers.rosinality.stylegan1 import import_checkpoint
from stylegan_sdk.importers.rosinality.stylegan2 import W_AVG_SAMPLES, import_state
from stylegan_sdk.models import build_with_weights

ROS2 = FIXTURES / "rosinality-stylegan2" / "sg2_32"
ROS1 = FIXTURES / "rosinality-stylegan1" / "v1_32" / "checkpoint.model"
FILES = ["checkpoint.pt", "checkpoint_converted_layout.pt"]
IMG_TOL = 1e-4
W_TOL = 1e-5
IMAGES = ["img_const", "img_trunc070_const", "img_zeronoise", "img_trunc070_zeronoise", "img_explicitnoise",
          "img_mix_inject2", "img_mix_inject6", "img_latent_full", "img_latent_full_zeronoise"]


def report(file: str, what: str, err: float) -> None:
    print(f"PARITY rosinality-stylegan2 {file:32s} {what:28s} max_abs_err={err:.3e}")


def raw_file(name: str = "checkpoint.pt") -> dict:
    """The fixture as torch.load gives it (Namespace allowed), for crafting variants."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(ROS2 / name, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return dict(np.load(ROS2 / "reference.npz"))


@pytest.fixture(scope="module")
def ckpts() -> dict:
    return {name: import_torch_checkpoint(ROS2 / name) for name in FILES}


@pytest.fixture(scope="module")
def models(ckpts) -> dict:
    return {name: build_with_weights(c.config, c.tensors, name) for name, c in ckpts.items()}


@pytest.fixture(scope="module")
def g_ema() -> dict[str, torch.Tensor]:
    return raw_file()["g_ema"]


def fixture_case(G, ref: dict[str, np.ndarray], key: str) -> tuple[torch.Tensor, str, list[torch.Tensor] | None]:
    """(ws, noise_mode, noise) reproducing one reference image with our per-layer interface."""
    n = G.num_ws
    ws = G.mapping(torch.from_numpy(ref["z"])).unsqueeze(1).repeat([1, n, 1])          # [N, n_latent, D]
    ws_mix = G.mapping(torch.from_numpy(ref["z_mix"])).unsqueeze(1).repeat([1, n, 1])
    if "trunc070" in key:  # rosinality truncates each style vector toward the stored mean_latent, all rows
        ws = torch.from_numpy(ref["mean_latent"][0]).lerp(ws, 0.7)
    if key.startswith("img_mix_inject"):
        k = int(key[len("img_mix_inject"):])
        ws[:, k:] = ws_mix[:, k:]          # rows < k from z, rows >= k from z_mix
    if key.startswith("img_latent_full"):
        ws = torch.from_numpy(ref["latent_full"])                                    # W+ input, as given
    if key.endswith("zeronoise"):
        return ws, "none", None
    if key == "img_explicitnoise":         # rosinality noise index i = our i-th conv in forward order
        noise = [torch.from_numpy(ref[f"noise_explicit_{i}"]) for i in range(len(G.cfg.noise_resolutions))]
        return ws, "random", noise
    return ws, "const", None


# ----------------------------------------------------------------------------
# Numbers


@pytest.mark.parametrize("file", FILES)
def test_mapping_reproduces_w(models, ref, file):
    G = models[file]
    for z, want in (("z", "w"), ("z_mix", "w_mix")):
        err = float(np.abs(G.mapping(torch.from_numpy(ref[z])).numpy() - ref[want]).max())
        report(file, want, err)
        assert err <= W_TOL


@pytest.mark.parametrize("key", IMAGES)
@pytest.mark.parametrize("file", FILES)
def test_reproduces_reference_image(models, ref, file, key):
    G = models[file]
    ws, noise_mode, noise = fixture_case(G, ref, key)
    img = G.synthesis(ws, noise_mode=noise_mode, noise=noise).numpy()
    want = ref[key]
    err = float(np.abs(img - want).max())
    report(file, key, err)
    assert img.shape == want.shape == (4, 3, 32, 32)
    assert err <= IMG_TOL


@pytest.mark.parametrize("file", FILES)
def test_latents_follow_rosinality_rows(models, ref, file):
    """Our ws rows are rosinality's latent rows: broadcast w, and the inject_index crossover."""
    G = models[file]
    ws, _, _ = fixture_case(G, ref, "img_const")
    assert float(np.abs(ws.numpy() - ref["latent_const"]).max()) <= W_TOL
    for k in (2, 6):
        ws, _, _ = fixture_case(G, ref, f"img_mix_inject{k}")
        assert float(np.abs(ws.numpy() - ref[f"latent_mix_inject{k}"]).max()) <= W_TOL


def test_config_comes_from_tensor_shapes(ckpts):
    for name, ckpt in ckpts.items():
        cfg = ckpt.config
        assert cfg.arch == "stylegan2" and cfg.architecture == "skip" and cfg.c_dim == 0
        assert cfg.z_dim == cfg.w_dim == 64 and cfg.mapping_layers == 8 and cfg.mapping_lr_multiplier == 0.01
        assert cfg.img_resolution == 32 and cfg.img_channels == 3 and cfg.num_ws == 8  # = rosinality n_latent
        assert cfg.channels == (48, 48, 32, 16) and cfg.resample_filter == (1, 3, 3, 1) and cfg.conv_clamp is None
        assert cfg.source["format"] == "rosinality-stylegan2" and cfg.source["file"] == name
        assert cfg.source["key"] == "g_ema"
        # Noise buffers go to the layer rosinality's noise index drives.
        assert ckpt.tensors["synthesis.b16.conv0.noise_const"].shape == (16, 16)
        assert ckpt.tensors["synthesis.b4.conv1.noise_strength"].shape == ()


def test_up_conv_weights_are_not_flipped(ckpts, g_ema):
    w = ckpts["checkpoint.pt"].tensors["synthesis.b8.conv0.weight"]
    assert np.array_equal(w, g_ema["convs.0.conv.weight"][0].numpy())


def test_round_trip_through_our_checkpoint_and_sdk_load(tmp_path, ckpts, ref):
    import stylegan_sdk as sg

    ckpt = ckpts["checkpoint.pt"]
    path = tmp_path / "sg2_32.safetensors"
    sg.save_checkpoint(path, ckpt.config, ckpt.tensors, ckpt.metadata)
    G = sg.load(path)
    assert G.info.arch == "stylegan2" and G.info.num_ws == 8
    img = G.synthesize(G.map(ref["z"]), noise_mode="const", output="float")
    err = float(np.abs(img - ref["img_const"]).max())
    report("sg.load(saved checkpoint.pt)", "img_const", err)
    assert err <= IMG_TOL


def test_sdk_load_reads_the_pt_file(ref):
    """sg.load(rosinality StyleGAN2 .pt) goes through import_torch_checkpoint (stylegan_sdk.loading)."""
    import stylegan_sdk as sg

    G = sg.load(ROS2 / "checkpoint.pt")
    assert G.info.arch == "stylegan2" and G.config.source["format"] == "rosinality-stylegan2"
    img = G.synthesize(G.map(ref["z"]), noise_mode="none", output="float")
    err = float(np.abs(img - ref["img_zeronoise"]).max())
    report("sg.load(checkpoint.pt)", "img_zeronoise", err)
    assert err <= IMG_TOL


# ----------------------------------------------------------------------------
# g_ema, never g; w_avg


def test_g_is_never_loaded(tmp_path, ckpts, ref):
    """The file's g differs from g_ema by ~2%: its images would miss the reference by far more than IMG_TOL."""
    obj = raw_file()
    raw_g = import_state(obj["g"], "g")
    G = build_with_weights(raw_g.config, raw_g.tensors, "g")
    ws, _, _ = fixture_case(G, ref, "img_const")
    assert float(np.abs(G.synthesis(ws, noise_mode="const").numpy() - ref["img_const"]).max()) > 1e-2
    assert "g" in ckpts["checkpoint.pt"].metadata["not_loaded"]
    assert "non-EMA" in ckpts["checkpoint.pt"].metadata["not_loaded"]["g"]
    for key in ("g", "generator", "g_running"):
        with pytest.raises(ValueError, match=r"'g' is the raw \(non-EMA\) generator; only g_ema is loaded"):
            import_torch_checkpoint(ROS2 / "checkpoint.pt", key=key)
    assert import_torch_checkpoint(ROS2 / "checkpoint.pt", key="g_ema").config.source["key"] == "g_ema"
    with pytest.raises(ValueError, match="step"):
        import_torch_checkpoint(ROS2 / "checkpoint.pt", step=2)


def test_latent_avg_is_w_avg_for_converted_layout(models, ckpts, ref):
    ckpt = ckpts["checkpoint_converted_layout.pt"]
    latent_avg = raw_file("checkpoint_converted_layout.pt")["latent_avg"].numpy()
    assert np.array_equal(ckpt.w_avg, latent_avg) and "latent_avg" in ckpt.metadata["w_avg"]
    assert ckpt.metadata["layout"] == "convert_weight.py"
    # So our own truncation (toward w_avg) is rosinality's truncation toward the stored mean_latent.
    G = models["checkpoint_converted_layout.pt"]
    ws = G.mapping(torch.from_numpy(ref["z"])).unsqueeze(1).repeat([1, G.num_ws, 1])
    img = G.synthesis(G.mapping.w_avg.lerp(ws, 0.7), noise_mode="const").numpy()
    assert float(np.abs(img - ref["img_trunc070_const"]).max()) <= IMG_TOL
    # [1, D] is accepted too.
    obj = raw_file("checkpoint_converted_layout.pt")
    again = import_state(obj["g_ema"], "x.pt", latent_avg=obj["latent_avg"][None])
    assert np.array_equal(again.w_avg, latent_avg)


def test_computed_w_avg_is_deterministic_and_stated(ckpts, ref):
    ckpt = ckpts["checkpoint.pt"]
    again = import_torch_checkpoint(ROS2 / "checkpoint.pt")
    assert np.array_equal(ckpt.w_avg, again.w_avg) and ckpt.w_avg.shape == (64,) and ckpt.w_avg.dtype == np.float32
    note = ckpt.metadata["w_avg"]
    assert "not stored" in note and f"RandomState(0).randn({W_AVG_SAMPLES}, 64)" in note
    # The stated recipe, recomputed independently of the importer (float64 mean of the mapping).
    G = build_with_weights(ckpt.config, ckpt.tensors, "x")
    z = np.random.RandomState(0).randn(W_AVG_SAMPLES, 64).astype(np.float32)
    want = G.mapping(torch.from_numpy(z)).double().mean(0).numpy()
    assert float(np.abs(ckpt.w_avg - want).max()) <= 1e-5
    # An estimate of the same mean rosinality's mean_latent(4096) estimates (other draws).
    assert float(np.abs(ckpt.w_avg - ref["mean_latent"][0]).max()) < 0.1 * float(np.abs(ref["mean_latent"]).max())
    # The rest of the file, recorded as information.
    meta = ckpt.metadata
    assert meta["layout"] == "train.py" and meta["ada_aug_p"] == 0.0
    assert meta["args"]["arch"] == "stylegan2" and meta["args"]["latent"] == 64 and meta["args"]["size"] == 32
    assert set(meta["not_loaded"]) == {"g", "d", "g_optim", "d_optim"}


def test_args_namespace_is_allowed_only_inside_read_torch_file():
    obj = read_torch_file(ROS2 / "checkpoint.pt")
    assert isinstance(obj["args"], argparse.Namespace) and obj["args"].size == 32
    with pytest.raises(Exception, match="argparse.Namespace"):
        torch.load(ROS2 / "checkpoint.pt", map_location="cpu", weights_only=True)


def test_bare_state_dict_and_legacy_format(tmp_path, g_ema, ckpts):
    bare = tmp_path / "bare.pt"
    torch.save({f"module.{k}": v for k, v in g_ema.items()}, bare)
    legacy = tmp_path / "legacy.pt"
    torch.save({"g_ema": g_ema}, legacy, _use_new_zipfile_serialization=False)
    want = ckpts["checkpoint.pt"]
    for path in (bare, legacy):
        ckpt = import_torch_checkpoint(path)
        assert ckpt.config == want.config
        assert all(np.array_equal(v, want.tensors[k]) for k, v in ckpt.tensors.items())
    assert import_torch_checkpoint(bare).metadata["layout"] == "state dict"


def test_v1_files_still_go_to_the_v1_importer():
    ckpt = import_torch_checkpoint(ROS1)          # "G_ema" means g_running for v1
    assert ckpt.config.arch == "stylegan1" and ckpt.metadata["key"] == "g_running"
    assert import_torch_checkpoint(ROS1, key="generator", step=1).config.img_resolution == 8
    assert import_checkpoint(ROS1, step=2).config.img_resolution == 16
    from stylegan_sdk.loading import read_model

    assert read_model(ROS1).config.arch == "stylegan1"


# ----------------------------------------------------------------------------
# Refused files


def refuse(path: Path, match: str) -> str:
    with pytest.raises(ValueError, match=match) as info:
        import_torch_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and info.value.__cause__ is None  # one line, no chained traceback
    assert info.value.__context__ is None or info.value.__suppress_context__
    return message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        import_torch_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="folder"):
        read_torch_file(tmp_path)


def test_swagan_is_refused(tmp_path, g_ema):
    obj = raw_file()
    obj["args"].arch = "swagan"
    path = tmp_path / "swagan_args.pt"
    torch.save(obj, path)
    refuse(path, r"a SWAGAN \(wavelet\) generator, not StyleGAN2")
    # A SWAGAN state dict: wavelet buffers and 12-channel ToRGBs (no args to say so).
    sd = dict(g_ema)
    sd["to_rgb1.conv.weight"] = torch.zeros(1, 12, 48, 1, 1)
    sd["to_rgb1.bias"] = torch.zeros(1, 12, 1, 1)
    sd["iwt.ll"] = torch.ones(2, 2) / 2
    with pytest.raises(ValueError, match=r"SWAGAN \(wavelet\)"):
        import_state(sd, "swagan.pt")
    with pytest.raises(ValueError, match="args.arch = 'progan'"):
        import_state(g_ema, "x.pt", args=argparse.Namespace(arch="progan"))


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("payload", ["os.system", "builtins.eval"])
def test_code_in_the_pickle_is_never_run(tmp_path, payload, legacy):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            if payload == "os.system":
                return os.system, (f"touch {marker}",)
            return eval, (f"open({str(marker)!r}, 'w').close()",)

    path = tmp_path / "evil.pt"
    torch.save({"g_ema": Payload()}, path, _use_new_zipfile_serialization=not legacy)
    message = refuse(path, "not allowed")
    assert ("asks for posix.system" if payload == "os.system" else "asks for eval") in message  # torch's naming
    assert not marker.exists()


def test_classes_beyond_the_allow_list_are_refused(tmp_path, g_ema):
    # train.py's Namespace carrying a class nothing allows (the allow-list is argparse.Namespace only).
    path = tmp_path / "fraction.pt"
    torch.save({"g_ema": g_ema, "args": argparse.Namespace(arch="stylegan2", lr=fractions.Fraction(1, 500))}, path)
    refuse(path, r"fractions\.Fraction, which is not allowed")
    # collections.Counter is on torch's own weights-only list: it loads, and is then refused as not a tensor.
    path = tmp_path / "counter.pt"
    torch.save({"g_ema": {**g_ema, "style.1.weight": Counter("abc")}}, path)
    refuse(path, "'style.1.weight' is a Counter, not a tensor")


def test_truncated_file_is_refused(tmp_path):
    data = (ROS2 / "checkpoint.pt").read_bytes()
    path = tmp_path / "half.pt"
    path.write_bytes(data[: len(data) // 2])
    refuse(path, "not a rosinality checkpoint")
    path.write_bytes(b"")
    refuse(path, "not a rosinality checkpoint")


def test_storage_bigger_than_its_record_is_refused_without_allocating(tmp_path):
    """data.pkl claims a 256 GiB storage whose zip record holds 3 KB: refused at once, nothing allocated."""
    small = tmp_path / "small.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(777)}}, small)
    numel_777 = pickle.dumps(777, protocol=2)[2:-1]               # BININT2 in the storage key and the size
    huge = pickle.dumps(2**38, protocol=2)[2:-1]
    path = tmp_path / "liar.pt"
    with zipfile.ZipFile(small) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert data.count(numel_777) == 2
                data = data.replace(numel_777, huge)
            zout.writestr(info.filename, data)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    refuse(path, "not a rosinality checkpoint")
    assert time.perf_counter() - t0 < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200_000  # KiB: no 256 GiB allocation
    # Through the non-mmap reader, torch names the lie.
    with pytest.raises(RuntimeError, match="record size"):
        torch.load(path, map_location="cpu", weights_only=True, mmap=False)


def test_broadcast_view_claiming_more_than_its_storage_is_refused(tmp_path, g_ema):
    """A 4-byte storage expanded to a million channels: refused before the copy that would allocate them."""
    path = tmp_path / "expanded.pt"
    torch.save({"g_ema": {**g_ema, "input.input": torch.zeros(1).expand(1, 10**6, 4, 4)}}, path)
    refuse(path, "'input.input' claims 16000000 elements but its storage holds 4 bytes")


def test_huge_claimed_resolution_is_refused_before_allocating(tmp_path, g_ema):
    """30 convs (15 up-sampling blocks = 131072 px) of 1-element tensors: refused by the size limits."""
    sd = dict(g_ema)
    tiny = torch.zeros(1)
    for i in range(6, 30):
        sd[f"convs.{i}.conv.weight"] = tiny
    for k in range(3, 15):
        sd[f"to_rgbs.{k}.bias"] = tiny
    for i in range(7, 31):
        sd[f"noises.noise_{i}"] = tiny
    path = tmp_path / "huge.pt"
    torch.save({"g_ema": sd}, path)
    t0 = time.perf_counter()
    refuse(path, r"config\.img_resolution = 131072 exceeds the limit")
    assert time.perf_counter() - t0 < 5


def test_malformed_state_dicts_are_refused(g_ema):
    sd = dict(g_ema)
    with pytest.raises(ValueError, match=r"missing tensors convs\.3\.noise\.weight"):
        import_state({k: v for k, v in sd.items() if k != "convs.3.noise.weight"}, "x.pt")
    with pytest.raises(ValueError, match=r"wrong shapes convs\.3\.conv\.modulation\.weight \[32, 63\]"):
        import_state({**sd, "convs.3.conv.modulation.weight": torch.zeros(32, 63)}, "x.pt")
    with pytest.raises(ValueError, match=r"unexpected tensors extra\.weight"):
        import_state({**sd, "extra.weight": torch.zeros(2)}, "x.pt")
    with pytest.raises(ValueError, match=r"noises\.noise_ indices"):
        import_state({k: v for k, v in sd.items() if k != "noises.noise_3"}, "x.pt")
    with pytest.raises(ValueError, match=r"style\.\{1\.\.n\} are not contiguous"):
        import_state({k: v for k, v in sd.items() if not k.startswith("style.5.")}, "x.pt")
    with pytest.raises(ValueError, match=r"NaN or Inf in tensor 'conv1\.conv\.weight'"):
        import_state({**sd, "conv1.conv.weight": sd["conv1.conv.weight"].clone().fill_(float("nan"))}, "x.pt")
    with pytest.raises(ValueError, match=r"'noises\.noise_0' has dtype torch\.int64"):
        import_state({**sd, "noises.noise_0": torch.zeros(1, 1, 4, 4, dtype=torch.int64)}, "x.pt")
    with pytest.raises(ValueError, match="to_rgb1.conv.weight makes 1 image channels"):
        import_state({**sd, "to_rgb1.conv.weight": torch.zeros(1, 1, 48, 1, 1)}, "x.pt")
    with pytest.raises(ValueError, match=r"convs\.2\.conv\.blur\.kernel is not rosinality's standard"):
        import_state({**sd, "convs.2.conv.blur.kernel": torch.ones(4, 4) / 4}, "x.pt")
    with pytest.raises(ValueError, match=r"latent_avg has shape \[63\]"):
        import_state(sd, "x.pt", latent_avg=torch.zeros(63))
    with pytest.raises(ValueError, match="NaN or Inf in tensor 'latent_avg'"):
        import_state(sd, "x.pt", latent_avg=torch.full([64], float("inf")))
    with pytest.raises(ValueError, match="StyleGAN v1"):
        import_state(torch.load(ROS1, map_location="cpu", weights_only=True)["g_running"], "v1.model")
    with pytest.raises(ValueError, match="not a rosinality StyleGAN2 Generator state dict"):
        import_state({"fc.weight": torch.zeros(2, 2)}, "x.pt")
    assert W_AVG_KEY in import_state(sd, "x.pt").tensors  # the unmodified dict still imports


# ----------------------------------------------------------------------------
# Through the rest of the product: convert + info, ONNX export, serving


def test_convert_cli_then_info_says_where_it_came_from(tmp_path, ref, capsys):
    """`stylegan convert` then `stylegan info`, in process (the real `stylegan` process is tests/test_cli.py's)."""
    import json

    from conftest import stylegan_cli

    import stylegan_sdk as sg

    out = tmp_path / "ros.safetensors"
    code, _, err = stylegan_cli(capsys, "convert", ROS2 / "checkpoint.pt", "--out", out)
    assert code == 0, err
    code, stdout, err = stylegan_cli(capsys, "info", out)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["source"]["format"] == "rosinality-stylegan2"
    assert doc["metadata"]["imported_from"] == "checkpoint.pt"
    G = sg.load(out)
    img = G.synthesize(ref["latent_const"], noise_mode="const")
    assert np.abs(img - ref["img_const"]).max() <= IMG_TOL


def test_onnx_export_and_serving_match_the_fixture(tmp_path, ckpts, ref):
    import stylegan_sdk as sg
    from serving import serve_in_thread
    from stylegan_sdk.export.onnx import export_onnx

    export_onnx(ckpts["checkpoint_converted_layout.pt"], tmp_path / "onnx")
    G = sg.load(tmp_path / "onnx")
    assert G.info.backend == "onnxruntime"
    err = float(np.abs(G.synthesize(ref["latent_const"], noise_mode="const") - ref["img_const"]).max())
    report("onnx", "img_const", err)
    assert err <= IMG_TOL
    with serve_in_thread({"ros": G}) as bg, sg.Client(bg.target, timeout=60) as C:
        served = C.synthesize(ref["latent_const"], noise_mode="const", output="float")
    assert np.abs(served - ref["img_const"]).max() <= IMG_TOL
