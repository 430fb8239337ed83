"""Training end to end on tiny networks (16 px): both families, resume after a kill, DDP on gloo, CLI errors.

The runs use a 256-image, 16x16 subset of ../shared/datasets/emoji64.zip (synthetic shapes when the
shared data set is absent: the code does not depend on it).

Trainings are few and short: a run that several tests inspect is made once per module by a fixture
(`base_run`, `v1_run`, `bars_run`); a test that continues such a run continues a copy of it. Argument
errors run `main(argv)` in this process; a real process is started only where the process itself is
under test (its exit code, SIGKILL, torchrun).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `training` lives at the repo root, beside the package
    sys.path.insert(0, str(REPO))

import stylegan_sdk as sg  # noqa: E402
from training.dataset_tool import convert_dataset  # noqa: E402
from training.loop import training_loop  # noqa: E402
from training.losses import StyleGANLoss  # noqa: E402
from training.run import build_parser, main, setup  # noqa: E402
from training.state import latest_state, list_states, load_training_state  # noqa: E402

EMOJI = REPO.parent / "shared" / "datasets" / "emoji64.zip"
TINY = ["--cfg", "cpu", "--batch", "8", "--cbase", "256", "--cmax", "32", "--z-dim", "32", "--w-dim", "32",
        "--map", "2", "--grid", "4x2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def data16(tmp_path_factory) -> str:
    """256 training images at 16x16 in a zip."""
    root = tmp_path_factory.mktemp("data")
    out = root / "emoji16.zip"
    if EMOJI.exists():
        convert_dataset(str(EMOJI), str(out), resolution=16, max_images=256, log=lambda _m: None)
    else:
        rng = np.random.default_rng(0)
        src = root / "shapes"
        src.mkdir()
        for i in range(256):
            img = np.full((16, 16, 4), 0, np.uint8)
            x, y, s = rng.integers(0, 8, 3)
            img[y: y + s + 4, x: x + s + 4] = [*rng.integers(0, 255, 3), 255]
            Image.fromarray(img, "RGBA").save(src / f"{i:03d}.png")
        convert_dataset(str(src), str(out), resolution=16, log=lambda _m: None)
    return str(out)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train_once(argv: list[str]) -> None:
    """A module fixture's run, on one thread as the tests' own runs (the `one_thread` fixture)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def base_run(data16, tmp_path_factory) -> Path:
    """The smallest StyleGAN2 run (16 images: snapshots at 8 and 16), complete; read it or continue a copy."""
    out = tmp_path_factory.mktemp("base") / "run"
    _train_once(["--data", data16, "--outdir", str(out), *TINY, "--kimg", "0.016", "--tick", "1"])
    return out


def _copy_run(run: Path, tmp_path: Path) -> Path:
    """A copy of a shared run folder, to continue without touching the original."""
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


def _states_equal(path_a: str, path_b: str, rtol: float = 1e-5, atol: float = 1e-6, by_norm: bool = False) -> None:
    """The same counters, random states and tensors; tensors elementwise within rtol / atol, or with by_norm each
    tensor as a whole: ||a - b|| <= rtol * ||a|| + atol (for runs whose sums are ordered differently, where Adam
    turns the rounding of near-zero gradients into elementwise differences that say nothing of the training)."""
    ta, ia = load_training_state(path_a)
    tb, ib = load_training_state(path_b)
    for key in ("cur_nimg", "cur_tick", "batch_idx", "stage_resolution", "stage_alpha"):
        assert ia[key] == ib[key], key
    assert sorted(ta) == sorted(tb)
    assert torch.equal(ta["rng.shared"], tb["rng.shared"]) and torch.equal(ta["rng.torch"], tb["rng.torch"])
    for k in ta:
        if ta[k].dtype.is_floating_point:
            if by_norm:
                a, b = ta[k].double(), tb[k].double()
                assert float((a - b).norm()) <= rtol * float(a.norm()) + atol, k
            else:
                assert torch.allclose(ta[k], tb[k], rtol=rtol, atol=atol), k


def _stats(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / "stats.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------
# A short run of each family: outputs, checkpoints load and export


def test_stylegan2_run_writes_loadable_exportable_checkpoints(data16, tmp_path, one_thread):
    from stylegan_sdk.export.onnx import export_onnx

    out = tmp_path / "sg2"
    assert main(["--data", data16, "--outdir", str(out), *TINY, "--kimg", "0.2", "--tick", "0.024", "--snap", "3",
                 "--mirror"]) == 0
    names = sorted(os.listdir(out))
    for want in ("training_options.json", "reals.png", "fakes_init.png", "stats.jsonl"):
        assert want in names
    snaps = [n for n in names if n.startswith("network-snapshot-")]
    # Snapshots at ticks 0 (8 images), 3, 6 (every 3 ticks of 24 images) and the end (tick 8).
    assert snaps == [f"network-snapshot-{n:09d}.safetensors" for n in (8, 80, 152, 200)]
    assert [n for n in names if n.startswith("training-state-")] == \
        [f"training-state-{n:09d}.safetensors" for n in (152, 200)]              # the newest --keep-states 2
    assert len([n for n in names if n.startswith("fakes0")]) == 4
    assert Image.open(out / "fakes000000200.png").size == (4 * 16, 2 * 16)
    stats = _stats(out)
    assert [s["tick"] for s in stats] == list(range(len(stats))) and stats[-1]["nimg"] == 200
    assert all(np.isfinite(s["Loss/G/loss"]) and np.isfinite(s["Loss/D/loss"]) for s in stats)
    opts = json.loads((out / "training_options.json").read_text())
    assert opts["mirror"] is True and opts["z_dim"] == 32 and opts["cfg"] == "cpu"

    G = sg.load(out / snaps[-1])
    assert (G.info.arch, G.info.img_resolution, G.info.z_dim, G.info.img_channels) == ("stylegan2", 16, 32, 3)
    assert G.generate(0).size == (16, 16)
    meta = sg.read_model(out / snaps[-1]).metadata["training"]
    assert meta["nimg"] == 200 and meta["options"]["kimg"] == 0.2
    exported = export_onnx(str(out / snaps[-1]), tmp_path / "onnx")      # verifies ONNX Runtime against torch
    assert exported is not None and (tmp_path / "onnx" / "model.json").is_file()


# StyleGAN v1 growing 4 -> 8 -> 16 (0.05 kimg each fade-in and stage: 32 steps in all), a snapshot every tick
# of 24 images (ticks end at 8, 32, 56, 80, ...: two in each fade-in).
V1 = [*TINY, "--arch", "stylegan1", "--kimg", "0.25", "--tick", "0.024", "--snap", "1",
      "--lod-training-kimg", "0.05", "--lod-transition-kimg", "0.05"]


@pytest.fixture(scope="module")
def v1_run(data16, tmp_path_factory) -> Path:
    """One uninterrupted StyleGAN v1 run through both growth steps, ending at 16x16 (alpha 1)."""
    out = tmp_path_factory.mktemp("v1") / "sg1"
    _train_once(["--data", data16, "--outdir", str(out), *V1])
    return out


def test_stylegan1_grows_progressively_and_exports(v1_run, tmp_path, one_thread):
    out = v1_run
    stats = _stats(out)
    res = [s["Progress/resolution"] for s in stats]
    assert res == sorted(res) and res[0] == 4 and res[-1] == 16 and 8 in res
    assert any(0 < s["Progress/alpha"] < 1 for s in stats)
    assert "Loss/pl_penalty" not in stats[-1] and "Loss/r1_penalty" in stats[-1]      # v1: R1 every step, no PL
    sizes = {}
    for path in sorted(out.glob("network-snapshot-*.safetensors")):
        sizes[path.name] = sg.load(path).info.img_resolution
    assert list(sizes.values())[0] == 4 and list(sizes.values())[-1] == 16 and 8 in sizes.values()
    last = sorted(out.glob("network-snapshot-*.safetensors"))[-1]
    G = sg.load(last)
    assert G.info.arch == "stylegan1" and np.asarray(G.generate(3)).shape == (16, 16, 3)
    from stylegan_sdk.export.onnx import export_onnx

    export_onnx(str(last), tmp_path / "onnx")                            # verifies ONNX Runtime against torch
    onnx_img = sg.load(tmp_path / "onnx").generate(3, output="float")
    assert np.allclose(onnx_img, G.generate(3, output="float"), atol=1e-4)


def test_stylegan1_resume_across_a_growth_step(data16, v1_run, tmp_path, one_thread):
    """Stop inside the 8x8 fade-in (the fourth tick ends at 80 images, alpha 0.6), resume: the same state as one
    uninterrupted run (`v1_run`)."""
    common = ["--data", data16, *V1]
    opts, ds, _ = setup(build_parser().parse_args([*common, "--outdir", str(tmp_path / "b")]), 1)
    ticks = iter(range(100))
    training_loop(opts, ds, torch.device("cpu"), abort_fn=lambda: next(ticks) >= 3, log=lambda _m: None)
    stopped = load_training_state(latest_state(str(tmp_path / "b")))[1]
    assert stopped["stage_resolution"] == 8 and 0 < stopped["stage_alpha"] < 1
    assert main([*common, "--outdir", str(tmp_path / "b"), "--resume", "latest"]) == 0
    _states_equal(latest_state(str(v1_run)), latest_state(str(tmp_path / "b")))


def _bars(tmp_path: Path) -> Path:
    """24 gray 16x16 images in 3 classes (the class shows as the width of a bar), named classes."""
    src = tmp_path / "gray"
    src.mkdir()
    rng = np.random.default_rng(0)
    labels = []
    for i in range(24):
        img = np.full((16, 16), 30, np.uint8)
        img[:, : 4 * (i % 3 + 1)] = 220
        Image.fromarray(np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)).save(src / f"{i}.png")
        labels.append([f"{i}.png", i % 3])
    (src / "dataset.json").write_text(json.dumps({"labels": labels, "classes": ["narrow", "middle", "wide"]}))
    return src


def _record_d_labels(monkeypatch: pytest.MonkeyPatch, seen: list[torch.Tensor]) -> None:
    """Every D pass appends the classes of its batch to `seen`."""
    run_D = StyleGANLoss.run_D
    monkeypatch.setattr(StyleGANLoss, "run_D", lambda self, img, c: (seen.append(c.argmax(1)), run_D(self, img, c))[1])


BARS = [*TINY, "--batch-gpu", "4", "--mbstd-group", "2", "--tick", "1"]


@pytest.fixture(scope="module")
def bars_run(tmp_path_factory) -> tuple[Path, list[torch.Tensor]]:
    """A conditional grayscale run on `_bars` (micro-batches of 4, minibatch-stddev groups of 2, classes mixed):
    its folder and the classes of every batch D saw."""
    root = tmp_path_factory.mktemp("bars")
    out = root / "run"
    seen: list[torch.Tensor] = []
    with pytest.MonkeyPatch.context() as mp:
        _record_d_labels(mp, seen)
        _train_once(["--data", str(_bars(root)), "--outdir", str(out), *BARS, "--kimg", "0.032"])
    return out, seen


def test_conditional_grayscale_run(bars_run, one_thread):
    """Labels in dataset.json -> a class-conditional generator; gray images -> one channel."""
    out = bars_run[0]
    G = sg.load(sorted(out.glob("network-snapshot-*.safetensors"))[-1])
    assert (G.info.c_dim, G.info.img_channels, G.info.class_names) == (3, 1, ("narrow", "middle", "wide"))
    assert np.asarray(G.generate(0, c=2)).shape == (16, 16)
    np.testing.assert_array_equal(G.generate(0, c="wide", output="float"), G.generate(0, c=2, output="float"))
    assert Image.open(out / "fakes_init.png").size == (64, 32) and Image.open(out / "reals.png").mode == "L"


def test_mbstd_by_class_gives_d_one_class_per_group(bars_run, tmp_path, monkeypatch, one_thread):
    """--mbstd-by-class (switched on at resume): every minibatch-stddev group D sees, of reals and of fakes,
    holds one class, also across micro-batches; without it the groups mix classes."""
    out = _copy_run(bars_run[0], tmp_path)
    seen = list(bars_run[1])                  # the classes D saw in the first run (mixed groups)

    def mixed_groups() -> int:
        assert seen and all(len(c) == 4 for c in seen)
        return sum(len(set(c[i: i + 2].tolist())) > 1 for c in seen for i in (0, 2))

    assert mixed_groups() > 0
    seen.clear()
    _record_d_labels(monkeypatch, seen)
    assert main(["--outdir", str(out), "--resume", "latest", "--kimg", "0.064", "--mbstd-by-class"]) == 0
    assert mixed_groups() == 0 and len({int(c[0]) for c in seen}) == 3
    assert json.loads((out / "training_options.json").read_text())["mbstd_by_class"] is True


# ----------------------------------------------------------------------------
# Resume after SIGKILL, in a real process


def test_resume_after_kill_gives_the_uninterrupted_state(data16, tmp_path, capsys, one_thread):
    common = ["--data", data16, *TINY, "--kimg", "0.4", "--tick", "0.024", "--snap", "1", "--keep-states", "3"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main([*common, "--outdir", str(a)]) == 0

    proc = subprocess.Popen([sys.executable, "-m", "training.run", *common, "--outdir", str(b)], cwd=REPO, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(list_states(str(b))) >= 2:       # two snapshots written: kill it in the middle of a step
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = load_training_state(latest_state(str(b)))[1]["cur_nimg"]
    assert 0 < killed_at < 400

    capsys.readouterr()
    assert main(["--outdir", str(b), "--resume", "latest"]) == 0       # (the process that resumes is this one)
    assert f"resumed from {latest_state(str(b)).rsplit('/', 1)[0]}" in capsys.readouterr().out
    _states_equal(latest_state(str(a)), latest_state(str(b)))
    assert [s["nimg"] for s in _stats(b)] == [s["nimg"] for s in _stats(a)]      # ticks past the state are redone
    ga = sg.read_model(a / "network-snapshot-000000400.safetensors").tensors
    gb = sg.read_model(b / "network-snapshot-000000400.safetensors").tensors
    assert all(np.allclose(ga[k], gb[k], rtol=1e-5, atol=1e-6) for k in ga)


def test_micro_batches_equal_the_full_batch(data16, tmp_path, one_thread):
    common = ["--data", data16, *TINY, "--kimg", "0.048", "--tick", "1", "--snap", "1"]
    assert main([*common, "--outdir", str(tmp_path / "full")]) == 0
    assert main([*common, "--outdir", str(tmp_path / "micro"), "--batch-gpu", "4"]) == 0
    _states_equal(latest_state(str(tmp_path / "full")), latest_state(str(tmp_path / "micro")), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------
# Two processes, gloo backend (torchrun on 127.0.0.1)


def test_two_process_gloo_run_matches_one_process(data16, tmp_path, one_thread):
    common = ["--data", data16, *TINY, "--kimg", "0.096", "--tick", "0.05", "--snap", "100", "--device", "cpu"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*common, "--outdir", str(one)]) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", "--max-restarts", "0",
           "-m", "training.run", *common, "--outdir", str(two)]
    r = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "2 processes" in r.stdout and "micro-batch of 4" in r.stdout
    state = load_training_state(latest_state(str(two)))[1]
    assert state["world_size"] == 2 and state["cur_nimg"] == 96
    # The same global batch, latents and noise, split over two processes: the same training, up to rounding.
    # Over 12 Adam steps the two orders of summation drift apart by up to 5e-4 of a tensor's norm (D's 16 px
    # biases, measured on an AMD EPYC); a training that differs (gradients not averaged, other samples) is
    # off by the size of an update, orders of magnitude more.
    _states_equal(latest_state(str(one)), latest_state(str(two)), rtol=2e-3, atol=1e-6, by_norm=True)


# ----------------------------------------------------------------------------
# User errors: one line, exit 2


def _error_cases(tmp_path: Path, data16: str) -> dict[str, list[str]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    small = tmp_path / "small"
    small.mkdir()
    Image.new("RGB", (8, 8)).save(small / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "training_options.json").write_text("{}")
    return {
        "missing data": ["--data", str(tmp_path / "nope.zip"), "--outdir", str(tmp_path / "o1")],
        "empty data": ["--data", str(empty), "--outdir", str(tmp_path / "o2")],
        "resolution not a power of two": ["--data", data16, "--outdir", str(tmp_path / "o3"), "--resolution", "24"],
        "images smaller than the resolution": ["--data", str(small), "--outdir", str(tmp_path / "o4"),
                                               "--resolution", "16"],
        "unwritable outdir": ["--data", data16, "--outdir", str(blocker / "run")],
        "outdir holds a run": ["--data", data16, "--outdir", str(existing)],
        "bad option": ["--data", data16, "--outdir", str(tmp_path / "o5"), "--batch", "0"],
        "fixed augmentation without p": ["--data", data16, "--outdir", str(tmp_path / "o8"), "--aug", "fixed"],
        "ada target out of range": ["--data", data16, "--outdir", str(tmp_path / "o9"), "--aug", "ada",
                                    "--ada-target", "1.5"],
        "class groups without classes": ["--data", data16, "--outdir", str(tmp_path / "o10"), "--mbstd-by-class"],
        "negative time budget": ["--data", data16, "--outdir", str(tmp_path / "o11"), "--max-minutes", "-1"],
        "unknown metric": ["--data", data16, "--outdir", str(tmp_path / "o6"), "--metrics", "fidelity"],
        "metric weights missing offline": ["--data", data16, "--outdir", str(tmp_path / "o7"), "--metrics", "fid50k",
                                           "--feature-weights", str(empty)],
    }


def test_user_errors_are_one_line_and_exit_2(data16, tmp_path, capsys, monkeypatch):
    import training.metrics.feature_nets as fn

    monkeypatch.setattr(fn, "_download", lambda spec, folder: (_ for _ in ()).throw(OSError("offline")))
    for case, argv in _error_cases(tmp_path, data16).items():
        assert main(argv) == 2, case
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("training.run: error:"), (case, err)
    # The same through the real command line.
    r = subprocess.run([sys.executable, "-m", "training.run", "--data", data16, "--outdir", str(tmp_path / "x"),
                        "--resolution", "12"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "training.run: error: --resolution: must be a power of two " \
                                                     ">= 4, got 12"
    assert not (tmp_path / "x").exists() or not os.listdir(tmp_path / "x")


def test_resume_refuses_a_changed_network(base_run, tmp_path, capsys, one_thread):
    out = _copy_run(base_run, tmp_path)
    assert main(["--outdir", str(out), "--resume", "latest", "--z-dim", "64"]) == 2
    assert "--z-dim: the run being resumed has 32, not 64" in capsys.readouterr().err
    # Longer training is allowed: --kimg may change on resume.
    assert main(["--outdir", str(out), "--resume", "latest", "--kimg", "0.032"]) == 0
    assert load_training_state(latest_state(str(out)))[1]["cur_nimg"] == 32


def test_ada_moves_p_saves_it_and_resumes_exactly(data16, tmp_path, one_thread):
    """--aug ada: p starts at --aug-p, moves by batch * 4 / (ada_kimg * 1000) every 4 D steps, is saved in the
    state and picked up on resume (the resumed run ends in the uninterrupted run's state)."""
    common = [*TINY, "--aug", "ada", "--aug-p", "0.3", "--ada-kimg", "1", "--tick", "0.04", "--snap", "1"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["--data", data16, "--outdir", str(a), *common, "--kimg", "0.16"]) == 0
    assert main(["--data", data16, "--outdir", str(b), *common, "--kimg", "0.08"]) == 0
    assert main(["--outdir", str(b), "--resume", "latest", "--kimg", "0.16"]) == 0
    _states_equal(latest_state(str(a)), latest_state(str(b)))
    p = float(load_training_state(latest_state(str(a)))[0]["augment.p"])
    step = 8 * 4 / 1000                                       # 20 steps: 5 updates of +-0.032
    assert p != 0.3 and abs(round((p - 0.3) / step) * step - (p - 0.3)) < 1e-6
    stats = _stats(a)
    assert all("Progress/augment" in line for line in stats)
    assert all("Progress/ada_rt" in line for line in stats[1:])  # tick 0 is the first step, before an update


def test_augmentation_may_be_switched_on_when_resuming(base_run, tmp_path, one_thread):
    out = _copy_run(base_run, tmp_path)
    assert main(["--outdir", str(out), "--resume", "latest", "--kimg", "0.032", "--aug", "fixed",
                 "--aug-p", "0.25"]) == 0
    tensors, info = load_training_state(latest_state(str(out)))
    assert info["options"]["aug"] == "fixed" and "augment.p" not in tensors    # fixed: p is the option
    assert _stats(out)[-1]["Progress/augment"] == pytest.approx(0.25)


# ----------------------------------------------------------------------------
# Issue 11: a finished run is not trained past its goal; nothing is made before every check passes


def test_max_minutes_stops_after_the_first_step_past_it_with_a_snapshot(data16, tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    # A budget of 0 minutes is spent after the first step (tick 0, one batch): the run stops there, far short of
    # --kimg, and writes that step's checkpoint and state as its last snapshot (--snap 100 would not yet).
    assert main(["--data", data16, "--outdir", str(out), *TINY, "--kimg", "1", "--tick", "0.016", "--snap", "100",
                 "--max-minutes", "0"]) == 0
    assert "stopping: --max-minutes 0 reached after " in capsys.readouterr().out
    assert [s["nimg"] for s in _stats(out)] == [8]
    assert load_training_state(latest_state(str(out)))[1]["cur_nimg"] == 8
    assert (out / "network-snapshot-000000008.safetensors").is_file()
    # --resume latest continues with the saved budget (spent again after one step, inside tick 1); `none` lifts
    # it, and the run reaches --kimg.
    assert main(["--outdir", str(out), "--resume", "latest"]) == 0
    assert load_training_state(latest_state(str(out)))[1]["cur_nimg"] == 16
    assert main(["--outdir", str(out), "--resume", "latest", "--max-minutes", "none", "--kimg", "0.04"]) == 0
    assert load_training_state(latest_state(str(out)))[1]["cur_nimg"] == 40


def test_resume_of_a_finished_run_says_so_and_trains_nothing(base_run, tmp_path, capsys, one_thread):
    out = _copy_run(base_run, tmp_path)
    capsys.readouterr()
    before = {name: (out / name).read_bytes() for name in sorted(os.listdir(out))}
    for extra in ([], ["--kimg", "0.016"], ["--kimg", "0.008"]):
        assert main(["--outdir", str(out), "--resume", "latest", *extra]) == 0
        captured = capsys.readouterr()
        lines = captured.out.strip().splitlines()
        assert len(lines) == 1 and "is complete (kimg 0.016 of " in lines[0] and "--kimg" in lines[0], captured
        assert captured.err == ""
        assert {name: (out / name).read_bytes() for name in sorted(os.listdir(out))} == before, extra
    # The real command line says the same, and exits 0.
    r = subprocess.run([sys.executable, "-m", "training.run", "--outdir", str(out), "--resume", "latest"],
                       cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"training.run: the run in {str(out)!r} is complete (kimg 0.016 of 0.016): " \
                               f"nothing to do; pass a larger --kimg to train further"
    # A larger goal continues the run.
    assert main(["--outdir", str(out), "--resume", "latest", "--kimg", "0.024"]) == 0
    assert load_training_state(latest_state(str(out)))[1]["cur_nimg"] == 24
    assert [s["nimg"] for s in _stats(out)][-1] == 24


def test_user_errors_make_no_run_folder(data16, tmp_path, capsys, monkeypatch):
    import training.metrics.feature_nets as fn

    monkeypatch.setattr(fn, "_download", lambda spec, folder: (_ for _ in ()).throw(OSError("offline")))
    for case, argv in _error_cases(tmp_path, data16).items():
        outdir = Path(argv[argv.index("--outdir") + 1])
        existed = outdir.exists()
        assert main(argv) == 2, case
        capsys.readouterr()
        assert outdir.exists() == existed, f"{case}: the run folder was made before the error"
    for argv in (["--data", data16, "--outdir", str(tmp_path / "n1"), "--batch", "0"],
                 ["--data", data16, "--outdir", str(tmp_path / "n2" / "deeper"), "--resolution", "12"],
                 ["--outdir", str(tmp_path / "n3")]):                                       # no --data at all
        assert main(argv) == 2
        assert capsys.readouterr().err.startswith("training.run: error:")
    assert not any((tmp_path / name).exists() for name in ("n1", "n2", "n3"))


def test_readme_placeholder_data_makes_no_folder(tmp_path, capsys, monkeypatch):
    """`--data ... --outdir ...` (the README's old placeholders) must not create a folder named `...`."""
    monkeypatch.chdir(tmp_path)
    assert main(["--data", "...", "--outdir", "..."]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["training.run: error: data: no such file or folder '...'"], err
    assert os.listdir(tmp_path) == []
    readme = (REPO / "README.md").read_text()
    assert "--data ... --outdir ..." not in readme and "--data data/emoji32.zip --outdir runs/emoji" in readme


# ----------------------------------------------------------------------------
# Issue 16: --init-from trains a finished generator further (G and G_ema from it, D fresh, D warm-up)


def _module_weights(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    tensors, _ = load_training_state(str(path))
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def test_init_from_starts_g_from_a_checkpoint_and_warms_d_up(data16, base_run, tmp_path, capsys, one_thread):
    src = base_run
    ckpt = src / "network-snapshot-000000016.safetensors"
    out = tmp_path / "more"
    # The network options come from the checkpoint (none given here); D alone trains for the first 16 images.
    assert main(["--data", data16, "--outdir", str(out), "--cfg", "cpu", "--batch", "8", "--grid", "4x2",
                 "--init-from", str(ckpt), "--d-warmup-kimg", "0.016", "--kimg", "0.032", "--tick", "0.008",
                 "--snap", "1", "--keep-states", "4"]) == 0
    assert "only D until kimg 0.016" in capsys.readouterr().out
    opts = json.loads((out / "training_options.json").read_text())
    assert opts["init_from"] == str(ckpt) and (opts["z_dim"], opts["map_layers"], opts["channel_max"]) == (32, 2, 32)
    # The untrained grid of the new run is the source's last grid: same generator, same seeds.
    assert np.array_equal(np.asarray(Image.open(out / "fakes_init.png")),
                          np.asarray(Image.open(src / "fakes000000016.png")))
    source = sg.read_model(ckpt).tensors
    warm = _module_weights(out / "training-state-000000016.safetensors", "G")
    # G's weights are held while D warms up (w_avg still tracks the mapping's output, as in every D pass).
    assert [k for k in source if not np.array_equal(warm[k].numpy(), source[k])] == ["mapping.w_avg"]
    after = _module_weights(out / "training-state-000000032.safetensors", "G")
    assert any(not np.array_equal(after[k].numpy(), source[k]) for k in source)     # then G trains
    fresh_d = _module_weights(src / "training-state-000000016.safetensors", "D")
    warm_d = _module_weights(out / "training-state-000000016.safetensors", "D")
    assert any(not torch.equal(warm_d[k], fresh_d[k]) for k in fresh_d)
    stats = _stats(out)
    assert [("Loss/G/loss" in s) for s in stats] == [False, False, True, True]
    # A killed run resumes from its state, not from the checkpoint again.
    assert main(["--outdir", str(out), "--resume", "latest", "--kimg", "0.04"]) == 0
    assert load_training_state(latest_state(str(out)))[1]["cur_nimg"] == 40


def test_init_from_errors_are_one_line_and_make_nothing(data16, base_run, tmp_path, capsys, one_thread):
    src = base_run
    ckpt = str(src / "network-snapshot-000000008.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    cases = {
        "no such checkpoint": (["--init-from", str(tmp_path / "nope.safetensors")], "no such checkpoint"),
        "not a checkpoint": (["--init-from", str(junk)], "not a readable stylegan-sdk checkpoint"),
        "a network option that differs": (["--init-from", ckpt, "--z-dim", "64"],
                                          "--z-dim: the --init-from checkpoint has 32, not 64"),
        "another image format": (["--init-from", ckpt, "--channels", "1"], "img_channels 3 (this run: 1)"),
        "warm-up as long as the run": (["--init-from", ckpt, "--d-warmup-kimg", "1", "--kimg", "1"],
                                       "--d-warmup-kimg: must be below --kimg 1"),
        "a v1 run": (["--init-from", ckpt, "--arch", "stylegan1"], "--arch: the --init-from checkpoint has"),
    }
    for i, (case, (extra, message)) in enumerate(cases.items()):
        out = tmp_path / f"o{i}"
        assert main(["--data", data16, "--outdir", str(out), "--cfg", "cpu", *extra]) == 2, case
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (case, err)
        assert not out.exists(), case
