"""Issue 33: every cost a model file can impose is bounded before the work.

Each hostile case is a small file built here (tests/loader_costs.py) that used to cost gigabytes or
minutes; it is loaded in a fresh interpreter under an address-space limit (a few GB above the
interpreter's own, so a regression fails instead of swapping) and must end within 5 s with a
ValueError naming the problem and under 300 MB of memory growth.
"""

from __future__ import annotations

import glob
import pickle
from pathlib import Path

import numpy as np
import pytest
from loader_costs import (
    COLLIDING_STEP,
    FakeTriton,
    checkpoint_with_config,
    colliding_dict_pickle,
    empty_lists_pickle,
    legacy_torch_file,
    run_bounded,
    torch_zip,
)

from stylegan_sdk.config import GeneratorConfig, check_config_weights, min_weight_count
from stylegan_sdk.formats.checkpoint import load_checkpoint, save_checkpoint
from stylegan_sdk.importers.safe_pickle import MAX_UNSALTED_KEYS, check_pickle_sizes

REPO = Path(__file__).resolve().parent.parent
EMOJI = REPO / "stylegan_sdk" / "default_model" / "emoji.safetensors"
FIXTURES = REPO / "tests" / "fixtures"
SECONDS = 5
GROWTH = 300 << 20

TF = "from stylegan_sdk.importers.nvidia_tf.reader import read_tf_pickle as read"
NVLABS = "from stylegan_sdk.importers.nvlabs.reader import read_network_pickle as read"
ROSINALITY = "import torch; from stylegan_sdk.importers.rosinality.reader import read_torch_file as read"


def _bounded_refusal(setup: str, body: str, match: str) -> str:
    """`body` ends within SECONDS with a ValueError matching `match`, growing memory by under GROWTH."""
    result = run_bounded(setup, body)
    assert result.get("error") is not None, result
    kind, message = result["error"]
    assert kind in ("ValueError", "UnsafePickleError", "InvalidArgumentError"), result  # ValueErrors all
    assert match in message, message
    assert result["seconds"] < SECONDS, result
    assert result["growth"] < GROWTH, result
    assert "\n" not in message
    return message


# --- (1) Our checkpoint: the header's config against the tensors the file holds ---------------------


@pytest.mark.parametrize(("changes", "match"), [
    ({"channel_base": 2**20, "channel_max": 8192}, "the config does not describe the file's tensors"),
    ({"mapping_layers": 10**6}, "config.mapping_layers = 1000000 exceeds the limit of 256"),
    ({"mapping_layers": 200}, "the config does not describe the file's tensors"),
    ({"img_resolution": 8192, "channel_base": 2**20}, "the config does not describe the file's tensors"),
], ids=["channels", "mapping_layers_1e6", "mapping_layers_200", "resolution"])
def test_checkpoint_config_claiming_more_than_its_tensors(tmp_path: Path, changes: dict, match: str) -> None:
    path = checkpoint_with_config(EMOJI, tmp_path / "hostile.safetensors", **changes)
    message = _bounded_refusal("import stylegan_sdk as sg", f"sg.load({str(path)!r}, backend='torch')", match)
    assert str(path) in message


def _fixture_checkpoints() -> list[str]:
    found = [str(EMOJI)]
    for pattern in ("nvidia-tf/*/network.pkl", "nvlabs-*/*/network-snapshot.pkl", "rosinality-*/*/checkpoint.*"):
        found += sorted(glob.glob(str(FIXTURES / pattern)))
    return found


@pytest.mark.parametrize("path", _fixture_checkpoints(), ids=lambda p: "/".join(Path(p).parts[-2:]))
def test_real_files_hold_at_least_the_weights_their_config_needs(path: str) -> None:
    """The bound is a lower bound for every family (StyleGAN1, 2, 3), and not a loose one."""
    from stylegan_sdk.loading import read_model

    ckpt = read_model(path)
    held = sum(int(v.size) for v in ckpt.tensors.values())
    assert min_weight_count(ckpt.config) <= held
    assert min_weight_count(ckpt.config) > held / 8, (min_weight_count(ckpt.config), held)


@pytest.mark.parametrize("fixture", ["rosinality-stylegan1/v1_32/checkpoint.model",
                                     "nvlabs-stylegan3/sg3t_32/network-snapshot.pkl"])
def test_every_family_checks_its_config_against_its_tensors(fixture: str, tmp_path: Path) -> None:
    from stylegan_sdk.loading import read_model

    ckpt = read_model(FIXTURES / fixture)
    cfg = ckpt.config.to_dict()
    if cfg["channels"] is not None:  # explicit channels per resolution (the v1 importers) override the schedule
        cfg["channels"] = [4096] * len(cfg["channels"])
    blown = GeneratorConfig.from_dict({**cfg, "channel_base": 2**22, "channel_max": 1 << 14})
    save_checkpoint(tmp_path / "blown.safetensors", blown, ckpt.tensors)
    with pytest.raises(ValueError, match="the config does not describe the file's tensors"):
        load_checkpoint(tmp_path / "blown.safetensors")
    with pytest.raises(ValueError, match="needs at least"):
        check_config_weights(blown, sum(int(v.size) for v in ckpt.tensors.values()), "source")


# --- (2) Hash-collision dicts, (3) objects beyond any budget: every pickle reader --------------------


READERS = {"tf": (TF, "pkl"), "nvlabs": (NVLABS, "pkl"), "rosinality": (ROSINALITY, "pt")}


def _hostile(tmp_path: Path, reader: str, pickled: bytes) -> Path:
    if READERS[reader][1] == "pt":
        return torch_zip(tmp_path / "hostile.pt", pickled)
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickled)
    return path


@pytest.mark.parametrize("reader", READERS)
def test_colliding_int_keys_are_refused_before_they_are_hashed(tmp_path: Path, reader: str) -> None:
    path = _hostile(tmp_path, reader, colliding_dict_pickle(60_000))
    _bounded_refusal(READERS[reader][0], f"read({str(path)!r})",
                     f"hashes more than {MAX_UNSALTED_KEYS} dict keys or set members that are not strings")


@pytest.mark.parametrize(("reader", "size"), [("tf", 20 << 20), ("nvlabs", 20 << 20), ("rosinality", 5 << 20)])
def test_millions_of_empty_containers_are_refused_before_they_are_made(tmp_path: Path, reader: str,
                                                                       size: int) -> None:
    path = _hostile(tmp_path, reader, empty_lists_pickle(size))
    _bounded_refusal(READERS[reader][0], f"read({str(path)!r})", "objects, memo entries and container slots")


def test_colliding_keys_through_an_allowed_dict_constructor_are_refused(tmp_path: Path) -> None:
    """collections.OrderedDict([(k, None), ...]) hashes its keys in our own plain_dict: counted there."""
    pairs = b"".join(b"\x8a" + bytes([len(pickle.encode_long(k * COLLIDING_STEP))])
                     + pickle.encode_long(k * COLLIDING_STEP) + b"N\x86" for k in range(1, 20_000))
    path = tmp_path / "ordered.pkl"
    path.write_bytes(b"\x80\x02ccollections\nOrderedDict\n(](" + pairs + b"etR.")
    _bounded_refusal(NVLABS, f"read({str(path)!r})", "keys that are not strings")


def test_string_keys_and_real_pickles_stay_within_the_counts(tmp_path: Path) -> None:
    import io

    many = pickle.dumps({f"k{i}": i for i in range(100_000)}, protocol=4)
    check_pickle_sizes(io.BytesIO(many), len(many))  # str keys: salted hashes, any number
    few_ints = pickle.dumps({i * COLLIDING_STEP: None for i in range(1, 1000)}, protocol=4)
    check_pickle_sizes(io.BytesIO(few_ints), len(few_ints))
    for path in _fixture_checkpoints()[1:]:
        if path.endswith(".pkl"):
            with open(path, "rb") as f:
                check_pickle_sizes(f, Path(path).stat().st_size)


# --- (4) A legacy torch.save file's storages are checked before torch.load allocates them -----------


def test_legacy_torch_file_claiming_4_tib_is_refused_before_torch_load(tmp_path: Path) -> None:
    path = legacy_torch_file(tmp_path / "legacy.pt", 2**40)
    message = _bounded_refusal(ROSINALITY, f"read({str(path)!r})", "its storages claim 4398046511112 bytes")
    assert str(path) in message and "only 8 bytes follow" in message


def test_legacy_torch_file_whose_storages_fit_still_reaches_torch_load(tmp_path: Path) -> None:
    """The same file with a storage its bytes hold passes the check (torch.load then reads it)."""
    from stylegan_sdk.importers.rosinality.reader import _check_legacy_sizes

    _check_legacy_sizes(str(legacy_torch_file(tmp_path / "ok.pt", 0)))


# --- (5) triton:// does not trust the remote side ------------------------------------------------------


@pytest.fixture(scope="module")
def triton_repo(tmp_path_factory) -> Path:
    from stylegan_sdk.export.triton import write_repository
    from stylegan_sdk.loading import DEFAULT_EXPORT

    repo = tmp_path_factory.mktemp("triton") / "repo"
    write_repository(DEFAULT_EXPORT, repo, name="emoji")
    return repo


@pytest.mark.parametrize(("mode", "match"), [
    ("ok", None),
    ("big-config", f"answered more than {16 << 20} bytes"),
    ("huge-shape", "answered 'w' as FP32 [2, 1099511627776], expected FP32 [2, 128]"),
    ("nan", "answered NaN or Inf in 'w' (256 of 256 values)"),
])
def test_triton_answers_are_bounded_and_checked(triton_repo: Path, mode: str, match: str | None) -> None:
    fake = FakeTriton(triton_repo, mode=mode, junk_bytes=24 << 20)
    try:
        url = f"triton://127.0.0.1:{fake.port}/emoji"
        body = f"G = sg.load({url!r})\nassert len(G.generate(seeds=[0, 1])) == 2"
        if match is None:
            result = run_bounded("import stylegan_sdk as sg", body)
            assert result["error"] is None and result["seconds"] < SECONDS, result
        else:
            message = _bounded_refusal("import stylegan_sdk as sg", body, match)
            assert "127.0.0.1" in message and "emoji_mapping" in message + url
    finally:
        fake.stop()


@pytest.mark.parametrize(("host", "shown"), [("ho\x00st", r"'ho\x00st'"), ("a" * (1 << 20), "(1048576 characters)"),
                                             ("a" * 300, "(300 characters)"), ("a b", "'a b'")])
def test_triton_url_host_is_validated(host: str, shown: str) -> None:
    from stylegan_sdk.formats.triton import parse_url

    with pytest.raises(ValueError, match="^path: the host ") as info:
        parse_url(f"triton://{host}:8001/emoji")
    assert shown in str(info.value) and len(str(info.value)) < 400


# --- (6) An NVlabs error echoes a bounded part of the file's keys ------------------------------------


def test_missing_network_error_does_not_echo_megabytes_of_keys(tmp_path: Path) -> None:
    from stylegan_sdk.importers.nvlabs.reader import read_network_pickle

    path = tmp_path / "keys.pkl"
    path.write_bytes(pickle.dumps({"x" * 10_000_000: 1, **{f"key{i}": i for i in range(1000)}}, protocol=4))
    with pytest.raises(ValueError, match="no network under key 'G_ema'") as info:
        read_network_pickle(path)
    assert len(str(info.value)) < 1000 and "and 993 more" in str(info.value)


def test_bound_matches_the_bundled_checkpoint() -> None:
    ckpt = load_checkpoint(EMOJI)
    held = sum(int(v.size) for v in ckpt.tensors.values())
    assert min_weight_count(ckpt.config) <= held
    assert np.isfinite(ckpt.w_avg).all()
