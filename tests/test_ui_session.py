"""The page's work without Gradio (stylegan_sdk.ui.session, issue 36): every Session call gives what the Generator /
Client methods give for the same settings (bit for bit), on the bundled model, a conditional model, StyleGAN3's
view, and a server; uploads are checked from their header; a projection streams its progress and previews and its
result is sg.project's; leaving it early stops the run."""

from __future__ import annotations

import io
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from conftest import ROOT, crafted_png, run_without_torch
from PIL import Image

import stylegan_sdk as sg
from serving import ServerSettings, serve_in_thread
from stylegan_sdk import images
from stylegan_sdk.config import GeneratorConfig
from stylegan_sdk.loading import DEFAULT_EXPORT
from stylegan_sdk.models import build_generator
from stylegan_sdk.ui.session import Latent, Session, View

SG2 = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)


@pytest.fixture(scope="module")
def G():
    return sg.load("default")


@pytest.fixture(scope="module")
def session(G):
    return Session(G, where="default")


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    """A random 16 px StyleGAN2 checkpoint (a projection step takes milliseconds)."""
    torch.manual_seed(0)
    cfg = GeneratorConfig(**SG2)
    state = build_generator(cfg).state_dict()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    sg.save_checkpoint(path, cfg, {k: v.numpy() for k, v in state.items()})
    return path


def z(seed: int, G) -> np.ndarray:
    return sg.seed_to_z(seed, G.config.z_dim)[0]


# ----------------------------------------------------------------------------
# Pictures: the same as the library's calls


@pytest.mark.parametrize("psi,cutoff,noise", [(0.7, None, View()), (-0.5, 3, View("random", 11)),
                                              (1.8, 0, View("none"))])
def test_generate_is_generator_generate(session, G, psi, cutoff, noise):
    p = session.generate(Latent(5, psi, cutoff), noise)
    ref = G.generate(5, psi=psi, cutoff=cutoff, noise_mode=noise.noise_mode, noise_seed=noise.noise_seed,
                     output="uint8")
    np.testing.assert_array_equal(p.image, ref)
    np.testing.assert_array_equal(p.ws, G.map(z(5, G), psi=psi, cutoff=cutoff))
    assert p.ms > 0 and session.last_ms == p.ms


def test_conditional_class_by_index_and_stylegan3_view(cond16_generator, exported_model):
    s = Session(cond16_generator, where="cond16")
    np.testing.assert_array_equal(s.generate(Latent(2, 0.8, None, 3)).image,
                                  cond16_generator.generate(2, psi=0.8, c=3, output="uint8"))
    G3 = sg.load(exported_model("sg3t_32"))
    s3 = Session(G3, where="sg3")
    assert s3.is_stylegan3
    view = View(translate=(0.2, -0.1), rotate=30.0)
    np.testing.assert_array_equal(s3.generate(Latent(4), view).image,
                                  G3.generate(4, psi=0.7, translate=(0.2, -0.1), rotate=30.0, output="uint8"))


def test_mix_is_generator_mix(session, G):
    p = session.mix(Latent(3, 0.6), 9, [0, 1, 2, 3])
    w_a, w_b = G.map(z(3, G), psi=0.6), G.map(z(9, G), psi=0.6)
    np.testing.assert_array_equal(p.image, G.mix(w_a, w_b, [0, 1, 2, 3], output="uint8"))
    np.testing.assert_array_equal(p.ws, sg.mix_ws(w_a, w_b, [0, 1, 2, 3]))
    np.testing.assert_array_equal(session.mix(Latent(3, 0.6), 9, []).image, session.generate(Latent(3, 0.6)).image)


def test_edit_is_generator_edit_from_a_seed_or_ws(session, G):
    p = session.edit(Latent(3), "sefa", {0: 4.0, 2: -2.5}, [0, 1, 2, 3])
    ws = G.edit(G.map(z(3, G), psi=0.7), "sefa", {0: 4.0, 2: -2.5}, layers=[0, 1, 2, 3])
    np.testing.assert_array_equal(p.ws, ws)
    np.testing.assert_array_equal(p.image, G.synthesize(ws, output="uint8"))
    start = G.map(z(8, G))
    np.testing.assert_array_equal(session.edit(start, "ganspace", {1: 2.0}).ws, G.edit(start, "ganspace", {1: 2.0}))
    np.testing.assert_array_equal(session.edit(Latent(3), "sefa", {}).image, session.generate(Latent(3)).image)
    with pytest.raises(ValueError, match=r"direction_set: 'nope' is not one of this model's sets \(sefa, ganspace"):
        session.edit(Latent(3), "nope", {0: 1.0})
    with pytest.raises(ValueError, match="strengths"):
        session.edit(Latent(3), "attributes", {17: 1.0})


def test_interpolate_and_its_animation(session, G):
    frames, ms = session.interpolate("0,4,0", 9, "z", psi=0.5)
    ref = np.stack(list(G.interpolate("0,4,0", num_frames=9, space="z", psi=0.5, output="uint8")))
    np.testing.assert_array_equal(frames, ref)
    gif = Image.open(io.BytesIO(session.animation(frames, 10)))
    assert gif.n_frames == 9 and gif.size == (256, 256) and gif.info["duration"] == 100
    with pytest.raises(ValueError, match="num_frames: must be an int in 2..300"):
        session.interpolate("0,1", 301)
    with pytest.raises(ValueError, match="seeds"):
        session.interpolate("0,x", 10)
    with pytest.raises(ValueError, match="fps"):
        session.animation(frames, 0)


def test_bad_values_are_value_errors_naming_them(session):
    for latent, match in ((Latent(1.5), "seed: expected one int"), (Latent(-1), "seed"),
                          (Latent(2**32), "seed"), (Latent(1, float("nan")), "psi"), (Latent(1, 0.7, 9), "cutoff")):
        with pytest.raises(ValueError, match=match):
            session.generate(latent)
    with pytest.raises(ValueError, match="noise_mode"):
        session.generate(Latent(1), View("loud"))
    with pytest.raises(ValueError, match="layers"):
        session.mix(Latent(1), 2, [8])
    with pytest.raises(ValueError, match="translate"):
        session.generate(Latent(1), View(translate=(0.1, 0.1)))   # not a StyleGAN3 model


def test_directions_computed_on_demand(skip32_path):
    skip32 = sg.load(skip32_path)
    s = Session(skip32, where="skip32")
    assert s.sets == {}
    name = s.compute_directions("sefa")
    assert name == "sefa (computed)"
    np.testing.assert_array_equal(s.sets[name].vectors, sg.sefa(skip32_path, k=10).vectors)
    name = s.compute_directions("ganspace", k=3)
    assert s.sets[name].kind == "ganspace" and len(s.sets[name].names) == 3
    p = s.edit(Latent(1), "sefa (computed)", {0: 3.0})
    np.testing.assert_array_equal(p.ws, skip32.edit(skip32.map(z(1, skip32), psi=0.7), s.sets["sefa (computed)"],
                                                    {0: 3.0}))
    with pytest.raises(ValueError, match="method: must be 'sefa' or 'ganspace'"):
        s.compute_directions("pca")


def test_describe_says_family_backend_precision_and_the_last_call(session):
    session.generate(Latent(0))
    rows = dict(session.describe())
    assert rows["family"] == "stylegan2" and rows["backend"] == "onnxruntime" and rows["precision"] == "fp32"
    assert rows["resolution"] == "32 px" and rows["last call"].endswith(" ms")
    assert rows["direction sets"] == "sefa (10), ganspace (10), attributes (6)"
    assert session.group_label("coarse") == "coarse (4-8 px)" and list(session.layer_groups()) == ["coarse", "middle"]


# ----------------------------------------------------------------------------
# Uploads


def test_uploads_are_checked_from_the_header_before_decoding(session):
    small = session.read_upload(images.encode(np.full((20, 30, 3), 9, np.uint8), "png"))
    assert small.size == (30, 20)
    assert session.read_upload(images.encode(np.full((8, 8, 3), 9, np.uint8), "jpeg")).size == (8, 8)
    for data, match in ((crafted_png(100_000, 100_000), "decompression-bomb limit"),
                        (crafted_png(5000, 5000), "5000x5000 pixels, more than the limit of 16,777,216"),
                        (b"GIF89a" + bytes(40), "not a PNG or JPEG or WEBP file"),
                        (b"x" * (16 * 2**20 + 1), "over the limit of 16,777,216 bytes"),
                        ("/etc/hostname", "expected the bytes of an image file, got str")):
        with pytest.raises(ValueError, match=match):
            session.read_upload(data, "image")


# ----------------------------------------------------------------------------
# Projection: in process and on a server


def test_projection_streams_progress_and_previews_and_equals_sg_project(tiny_file):
    G = sg.load(tiny_file, backend="torch")
    s = Session(G, where="tiny")
    target = G.generate(3, output="uint8")
    events = list(s.project(target, 12, loss="mse", seed=2, preview_every=5))
    steps = [e.step for e in events if e.result is None and e.loss is not None]
    assert steps == list(range(12)) or steps == list(range(1, 13))
    previews = [e for e in events if e.preview is not None]
    assert len(previews) >= 2 and previews[0].preview.shape == (16, 16, 3)
    result = events[-1].result
    ref = sg.project(G, target, steps=12, loss="mse", seed=2)
    np.testing.assert_allclose(result.ws, ref.ws, rtol=0, atol=1e-6)


def test_leaving_a_projection_early_stops_it(tiny_file):
    G = sg.load(tiny_file, backend="torch")
    s = Session(G, where="tiny")
    run = s.project(G.generate(3, output="uint8"), 2000, loss="mse")
    for event in run:
        if event.step >= 3:
            break
    run.close()   # what Gradio does when the page's Stop is pressed
    assert not [t for t in threading.enumerate() if t.name == "stylegan-ui-projection"]
    assert s.generate(Latent(1)).image.shape == (16, 16, 3)   # the model's lock was released


def test_projection_is_refused_with_the_reason_where_it_cannot_run(session):
    with pytest.raises(ValueError, match="project: projection needs a model the torch backend runs"):
        next(session.project(np.zeros((32, 32, 3), np.uint8), 10, loss="mse"))


def test_a_session_over_a_server_gives_the_same_pictures_and_projects_there(tiny_file, G):
    settings = ServerSettings(max_delay_ms=1)
    with serve_in_thread({"emoji": DEFAULT_EXPORT, "tiny": str(tiny_file)}, settings=settings) as bg:
        with sg.Client(bg.target, model="emoji") as client:
            s = Session(client, where=bg.target)
            assert not s.in_process and s.sets.keys() == {"sefa", "ganspace", "attributes"}
            np.testing.assert_array_equal(s.generate(Latent(5, 0.4)).image, G.generate(5, psi=0.4, output="uint8"))
            w_a, w_b = G.map(z(5, G), psi=0.4), G.map(z(6, G), psi=0.4)
            np.testing.assert_array_equal(s.mix(Latent(5, 0.4), 6, [4, 5]).image,
                                          G.mix(w_a, w_b, [4, 5], output="uint8"))
            ws = G.edit(w_a, "sefa", {1: -3.0})
            np.testing.assert_array_equal(s.edit(Latent(5, 0.4), "sefa", {1: -3.0}).image,
                                          G.synthesize(ws, output="uint8"))
            with pytest.raises(ValueError, match="SeFa reads the model's weights"):
                s.compute_directions("sefa")
            with pytest.raises(ValueError, match="onnxruntime cannot differentiate"):
                next(s.project(np.zeros((32, 32, 3), np.uint8), 5, loss="mse"))
        with sg.Client(bg.target, model="tiny") as client:
            s = Session(client, where=bg.target)
            G_tiny = sg.load(tiny_file, backend="torch")
            target = G_tiny.generate(3, output="uint8")
            events = list(s.project(target, 10, loss="mse", seed=1, preview_every=5))
            assert [e.step for e in events if e.preview is not None] == [5, 10]
            ref = sg.project(G_tiny, target, steps=10, loss="mse", seed=1)
            np.testing.assert_allclose(events[-1].result.ws, ref.ws, rtol=0, atol=1e-5)


def test_the_page_runs_without_torch():
    """An exported model's page (and a server's) needs no torch: the page is built and draws in a torch-free
    interpreter."""
    run = run_without_torch(
        "import stylegan_sdk as sg\n"
        "from stylegan_sdk.ui.app import build\n"
        "from stylegan_sdk.ui.session import Latent, Session\n"
        "s = Session(sg.load('default'), where='default')\n"
        "demo = build(s)\n"
        "print(s.generate(Latent(1)).image.shape, s.projection_unavailable() is not None, demo.analytics_enabled)\n")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[-2] == "(32, 32, 3) True False"


def test_without_gradio_the_command_says_what_to_install():
    block = ("import sys\n"
             "class _Block:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'gradio' or name.startswith('gradio.'):\n"
             "            raise ModuleNotFoundError(f\"No module named {name!r}\", name=name)\n"
             "sys.meta_path.insert(0, _Block())\n"
             "from stylegan_sdk.cli import main\n"
             "sys.exit(main(['ui', '--port', '0']))\n")
    run = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert run.returncode == 2 and run.stdout == "", run.stderr
    line, = run.stderr.strip().splitlines()
    assert line.startswith("stylegan ui: error: gradio is not installed") and "pip install" in line and "[ui]" in line


def test_the_command_opens_a_session_on_a_server_with_its_token(monkeypatch):
    from stylegan_sdk.errors import AuthenticationError
    from stylegan_sdk.ui.cli import UiSettings, open_session

    with serve_in_thread({"emoji": DEFAULT_EXPORT}, settings=ServerSettings(max_delay_ms=1, token="s3cret")) as bg:
        s = open_session(UiSettings(server=bg.target, token="s3cret").validate())
        assert s.where == bg.target and s.generate(Latent(2)).image.shape == (32, 32, 3)
        monkeypatch.setenv("STYLEGAN_TOKEN", "s3cret")        # the same variable as stylegan serve's
        assert open_session(UiSettings(server=bg.target, server_model="emoji").validate()).where.endswith("(emoji)")
        monkeypatch.delenv("STYLEGAN_TOKEN")
        with pytest.raises(AuthenticationError):
            open_session(UiSettings(server=bg.target).validate())
