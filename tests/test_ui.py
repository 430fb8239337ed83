"""`stylegan ui` for real (issue 36): the command started as a process on the bundled model, and as the front end of
a real `stylegan serve` process (--server), each on a real port. Through gradio_client, /generate, /mix, /edit and
/interpolate answer with the library's pictures bit for bit; bad values come back as one-line messages and the page
keeps serving; uploads are checked from their header and no path from the browser is opened; a projection runs on a
torch-backed page. A real headless Chromium (Debian's, driven by Playwright) loads the page, and changing the seed
(number box, slider with arrow keys) and psi changes the picture to `Generator.generate`'s for those settings; the
page asks nothing of any other host. Screenshots of every panel go to $STYLEGAN_UI_SCREENSHOTS (default: a
temporary folder).

Command-line arguments are tested in process (tests/conftest.py: stylegan_cli)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from conftest import ROOT, crafted_png, stylegan_cli
from PIL import Image

import stylegan_sdk as sg
from stylegan_sdk import images
from stylegan_sdk.demo import start_server, stop_server

gradio_client = pytest.importorskip("gradio_client", reason="the ui extra is not installed (pip install '.[ui]')")
from gradio_client import Client, handle_file  # noqa: E402

TIMEOUT = 90                                 # seconds: starting a page, a call
URL_LINE = re.compile(r"stylegan ui: .* on (?P<url>http://\S+)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# ----------------------------------------------------------------------------
# The processes: a page on the bundled model, a server, a page in front of it, a page on torch


class Page:
    """`stylegan ui ARGS --port 0` in a process of its own; .url once its line is printed."""

    def __init__(self, mode: str, *args: str) -> None:
        self.mode = mode
        self.proc = subprocess.Popen([sys.executable, "-m", "stylegan_sdk", "ui", *args, "--port", "0"], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        found = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.lines.append(line.rstrip())
                m = URL_LINE.search(line)
                if m:
                    self.url = m.group("url")
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(TIMEOUT) or not hasattr(self, "url"):
            self.proc.kill()
            raise RuntimeError("stylegan ui did not start: " + " | ".join(self.lines[-5:]))

    def stop(self) -> int:
        return stop_server(self.proc)


@pytest.fixture(scope="module")
def G():
    return sg.load("default")


@pytest.fixture(scope="module")
def server():
    proc, port, lines = start_server("default", TIMEOUT)
    yield port
    stop_server(proc)


@pytest.fixture(scope="module", params=["local", "server"])
def page(request, server):
    """The page on the bundled model: in its own process ("local"), or in front of the server ("server")."""
    p = Page("local") if request.param == "local" else Page("server", "--server", f"127.0.0.1:{server}")
    yield p
    assert p.stop() == 0, p.lines[-5:]


@pytest.fixture(scope="module")
def client(page):
    return Client(page.url, verbose=False)


@pytest.fixture(scope="module")
def torch_page():
    p = Page("torch", "--backend", "torch", "--max-upload-mb", "1", "--max-upload-pixels", str(512 * 512))
    yield p
    p.stop()


def picture(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def z(seed: int) -> np.ndarray:
    return sg.seed_to_z(seed, 128)[0]


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value)
    assert "Traceback" not in text and "Error:" not in text.replace("AppError", ""), text
    return text


# ----------------------------------------------------------------------------
# The API endpoints (gradio_client)


def test_the_page_listens_on_loopback_and_names_the_model(page):
    assert page.url.startswith("http://127.0.0.1:")
    assert re.search(r"stylegan ui: (default|127\.0\.0\.1:\d+) \(stylegan2, onnxruntime\)", "\n".join(page.lines))


@pytest.mark.parametrize("kwargs", [dict(seed=3, psi=0.5), dict(seed=12, psi=-0.4, cutoff=2),
                                    dict(seed=7, noise_mode="random", noise_seed=5), dict(seed=2**32 - 1, psi=1.9)])
def test_generate_endpoint_is_generator_generate(client, G, kwargs):
    image, caption = client.predict(**kwargs, api_name="/generate")
    cutoff = kwargs.get("cutoff")
    ref = G.generate(kwargs["seed"], psi=kwargs.get("psi", 0.7), cutoff=cutoff,
                     noise_mode=kwargs.get("noise_mode", "const"), noise_seed=kwargs.get("noise_seed"),
                     output="uint8")
    np.testing.assert_array_equal(picture(image), ref)
    assert caption.startswith(f"seed {kwargs['seed']}, psi") and " ms (onnxruntime)" in caption


def test_mix_and_edit_endpoints_are_the_library_calls(client, G):
    image, caption = client.predict(seed=3, seed_b=9, layers=[0, 1, 2, 3], psi=0.6, api_name="/mix")
    w_a, w_b = G.map(z(3), psi=0.6), G.map(z(9), psi=0.6)
    np.testing.assert_array_equal(picture(image), G.mix(w_a, w_b, [0, 1, 2, 3], output="uint8"))
    image, caption = client.predict(seed=3, psi=0.6, direction_set="ganspace", direction_0=3.0, direction_4=-2.0,
                                    first_layer=2, last_layer=5, api_name="/edit")
    ws = G.edit(w_a, "ganspace", {0: 3.0, 4: -2.0}, layers=[2, 3, 4, 5])
    np.testing.assert_array_equal(picture(image), G.synthesize(ws, output="uint8"))
    assert "pc0 +3, pc4 -2 on ws rows 2-5" in caption


def test_interpolate_endpoint_writes_a_gif_of_the_frames(client, G):
    shown, download, caption = client.predict(keyframes="0,5", num_frames=6, space="w", fps=10,
                                              api_name="/interpolate")
    gif = Image.open(download)
    assert gif.n_frames == 6 and gif.size == (256, 256) and caption.startswith("6 frames through seeds 0,5")
    first = np.asarray(gif.convert("RGB"))[::8, ::8]
    ref = next(G.interpolate("0,5", num_frames=6, psi=0.7, output="uint8"))
    assert np.abs(first.astype(int) - ref).mean() < 12      # GIF's palette quantises the colours


def test_bad_values_come_back_as_one_line_and_the_page_keeps_serving(client, G):
    cases = [(dict(seed=3, direction_set="nope", api_name="/edit"), "nope is not in the list of choices"),
             (dict(seed=3, direction_set="attributes", direction_9=1.0, api_name="/edit"), "strengths"),
             (dict(seed=3, base="projection", api_name="/edit"), "base: no projection yet"),
             (dict(seed=3, first_layer=6, last_layer=2, api_name="/edit"), "first_layer, last_layer"),
             (dict(seed=3, first_layer=1.5, api_name="/edit"), "first_layer: expected a whole number, got 1.5"),
             (dict(seed=3, cutoff=2.5, api_name="/generate"), "cutoff: expected a whole number, got 2.5"),
             (dict(keyframes="0,zz", api_name="/interpolate"), "seeds"),
             (dict(keyframes="0,1", fps=0.5, api_name="/interpolate"), ""),
             (dict(seed=-4, api_name="/generate"), "less than minimum"),
             (dict(image=None, api_name="/project"), "image: upload a target image first")]
    for kwargs, match in cases:
        with pytest.raises(Exception) as excinfo:
            client.predict(**kwargs)
        assert match in one_line_error(excinfo)
    image, _ = client.predict(seed=4, psi=0.7, api_name="/generate")
    np.testing.assert_array_equal(picture(image), G.generate(4, psi=0.7, output="uint8"))


def test_projection_is_refused_with_the_reason_on_onnxruntime(client, tmp_path):
    target = tmp_path / "t.png"
    target.write_bytes(images.encode(np.zeros((32, 32, 3), np.uint8), "png"))
    with pytest.raises(Exception) as excinfo:
        client.predict(image=handle_file(str(target)), steps=5, loss="mse", api_name="/project")
    assert "onnxruntime cannot differentiate" in one_line_error(excinfo)


def test_projection_on_a_torch_page_streams_and_ends_in_the_library_result(torch_page, tmp_path):
    G = sg.load("default", backend="torch")
    target = G.generate(5, output="uint8")
    path = tmp_path / "target.png"
    path.write_bytes(images.encode(target, "png"))
    client = Client(torch_page.url, verbose=False)
    job = client.submit(image=handle_file(str(path)), steps=6, loss="mse", space="w", seed=0, api_name="/project")
    job.result(timeout=TIMEOUT)
    statuses = [out[0] for out in job.outputs()]
    assert any(s.startswith("step ") for s in statuses) and statuses[-1].startswith("done: 6 steps, final mse")
    ref = sg.project(G, target, steps=6, loss="mse", seed=0)      # the same run in this process
    distance = float(re.search(r"distance (\S+);", statuses[-1]).group(1))
    assert abs(distance - float(ref.losses[-1, 0])) < 1e-3
    np.testing.assert_array_equal(picture(job.outputs()[0][1]), ref.targets[0])     # the target as projected
    assert np.abs(picture(job.outputs()[-1][2]).astype(int) - ref.images[0]).max() <= 1


def test_uploads_are_checked_and_no_browser_path_is_opened(torch_page, tmp_path):
    client = Client(torch_page.url, verbose=False)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(crafted_png(5000, 5000))
    with pytest.raises(Exception) as excinfo:
        client.predict(image=handle_file(str(bomb)), steps=5, loss="mse", api_name="/project")
    assert "5000x5000 pixels, more than the limit of 262,144" in one_line_error(excinfo)
    big = tmp_path / "big.png"
    big.write_bytes(images.encode(np.random.RandomState(0).randint(0, 255, (600, 600, 3), np.uint8), "png"))
    r = httpx.post(f"{torch_page.url}gradio_api/upload", files=[("files", ("big.png", big.read_bytes()))],
                   timeout=TIMEOUT)
    assert r.status_code == 413, r.text                     # over --max-upload-mb 1: refused by the server
    # A request naming a file on the server's disk instead of uploading one: refused, never read.
    secret = tmp_path / "secret.png"
    secret.write_bytes(images.encode(np.zeros((8, 8, 3), np.uint8), "png"))
    r = httpx.post(f"{torch_page.url}gradio_api/call/project", timeout=TIMEOUT,
                   json={"data": [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}, 5, "mse", "w", 0]})
    if r.status_code == 200:
        events = httpx.get(f"{torch_page.url}gradio_api/call/project/{r.json()['event_id']}", timeout=TIMEOUT).text
        assert "event: error" in events and "done:" not in events and "step " not in events
    else:
        assert r.status_code in (400, 403, 422)


# ----------------------------------------------------------------------------
# The command line (in process): bad arguments are one line and exit 2, before anything is loaded or opened


@pytest.mark.parametrize("argv,message", [
    (["--port", "70000"], "--port: must be in [0, 65535], got 70000"),
    (["--model", "default", "--server", "h:1"], "--model, --server: give one of them"),
    (["--token", "t"], "--token: only with --server"),
    (["--server", "h:1", "--backend", "torch"], "--backend: only with --model"),
    (["--server", "nohost"], "--server: expected HOST:PORT, got 'nohost'"),
    (["--model", "missing/model.safetensors"], "missing/model.safetensors"),
    (["--max-upload-mb", "0"], "--max-upload-mb"),
    (["--backend", "vulkan"], "--backend: invalid choice"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, message):
    code, out, err = stylegan_cli(capsys, "ui", *argv)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err


def test_an_unreachable_server_is_one_line_and_exit_1(capsys):
    code, out, err = stylegan_cli(capsys, "ui", "--server", "127.0.0.1:1")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "127.0.0.1:1" in err, err


# ----------------------------------------------------------------------------
# A real browser


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make install installs Debian's chromium where it runs as root)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


def shown(page, elem_id: str) -> tuple[str, np.ndarray]:
    """(src, pixels) of the picture in #elem_id, fetched as the browser got it."""
    src = page.get_attribute(f"#{elem_id} img", "src")
    data = page.request.get(src).body()
    return src, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def wait_new_picture(page, elem_id: str, old_src: str) -> tuple[str, np.ndarray]:
    page.wait_for_function("([id, old]) => { const i = document.querySelector(`#${id} img`); "
                           "return i && i.src && i.src !== old; }", arg=[elem_id, old_src], timeout=TIMEOUT * 1000)
    return shown(page, elem_id)


def set_number(page, selector: str, value: str) -> None:
    box = page.locator(selector)
    box.fill(value)
    box.press("Enter")


def test_a_real_browser_drives_the_page(browser, page, G, tmp_path):
    screenshots = Path(os.environ.get("STYLEGAN_UI_SCREENSHOTS") or tmp_path)
    screenshots.mkdir(parents=True, exist_ok=True)
    mode = page.mode
    outside: list[str] = []
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.on("request", lambda r: None if r.url.startswith(("data:", "blob:")) or
           urlparse(r.url).hostname in ("127.0.0.1", "localhost") else outside.append(r.url))
    tab.goto(page.url)
    tab.wait_for_selector("#generate-image img", timeout=TIMEOUT * 1000)
    src, pixels = shown(tab, "generate-image")
    np.testing.assert_array_equal(pixels, G.generate(0, psi=0.7, output="uint8"))   # the page's first picture

    set_number(tab, "#seed input", "5")                                              # the seed's number box
    src, pixels = wait_new_picture(tab, "generate-image", src)
    np.testing.assert_array_equal(pixels, G.generate(5, psi=0.7, output="uint8"))
    assert tab.input_value("#seed-slider input[type=number]") == "5"                 # the slider follows

    set_number(tab, "#psi input[type=number]", "0.3")                                # psi
    src, pixels = wait_new_picture(tab, "generate-image", src)
    np.testing.assert_array_equal(pixels, G.generate(5, psi=0.3, output="uint8"))

    tab.locator("#seed-slider input[type=range]").focus()                            # arrow keys step the seed
    tab.keyboard.press("ArrowRight")
    src, pixels = wait_new_picture(tab, "generate-image", src)
    assert tab.input_value("#seed input") == "6"
    np.testing.assert_array_equal(pixels, G.generate(6, psi=0.3, output="uint8"))
    tab.screenshot(path=str(screenshots / f"{mode}-generate.png"), full_page=True)

    tab.get_by_role("button", name=re.compile("ws of this picture")).first.click()   # the ws download
    tab.wait_for_selector("#ws-file a[href*='.npz']", timeout=TIMEOUT * 1000)
    href = tab.get_attribute("#ws-file a[href*='.npz']", "href")
    npz = tab.request.get(href if href.startswith("http") else page.url.rstrip("/") + href).body()
    with np.load(io.BytesIO(npz)) as f:
        np.testing.assert_array_equal(f["w"], G.map(z(6), psi=0.3)[np.newaxis])

    for name, elem_id in (("Style mixing", "mix-image"), ("Edit", "edit-image")):
        tab.get_by_role("tab", name=name).click()
        tab.wait_for_selector(f"#{elem_id} img", timeout=TIMEOUT * 1000)
    edit_src, _ = shown(tab, "edit-image")
    set_number(tab, "#direction-0 input[type=number]", "4")                          # an edit slider
    _, pixels = wait_new_picture(tab, "edit-image", edit_src)
    ws = G.edit(G.map(z(6), psi=0.3), "sefa", {0: 4.0}, layers=list(range(8)))
    np.testing.assert_array_equal(pixels, G.synthesize(ws, output="uint8"))
    for name in ("Style mixing", "Edit", "Interpolate", "Project", "Model"):
        tab.get_by_role("tab", name=name).click()
        tab.wait_for_timeout(500)
        if name == "Interpolate":
            tab.get_by_role("button", name="Make the animation").click()
            tab.wait_for_selector("#animation img", timeout=TIMEOUT * 1000)
        tab.screenshot(path=str(screenshots / f"{mode}-{name.split()[0].lower()}.png"), full_page=True)
    assert "onnxruntime cannot differentiate" in tab.inner_text("#project-note")
    assert "last call" in tab.inner_text("#model-table")
    tab.close()
    assert outside == []


def test_a_real_browser_projects_an_upload_and_opens_it_in_edit(browser, torch_page, tmp_path):
    screenshots = Path(os.environ.get("STYLEGAN_UI_SCREENSHOTS") or tmp_path)
    G = sg.load("default", backend="torch")
    target = tmp_path / "target.png"
    target.write_bytes(images.encode(upscale_for_upload(G.generate(9, output="uint8")), "png"))
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.goto(torch_page.url)
    tab.wait_for_selector("#generate-image img", timeout=TIMEOUT * 1000)
    tab.get_by_role("tab", name="Project").click()
    tab.locator("#project-target input[type=file]").set_input_files(str(target))
    set_number(tab, "#project-steps input[type=number]", "40")
    tab.locator("#project-loss").get_by_text("mse").click()
    tab.get_by_role("button", name="Project", exact=True).click()
    tab.wait_for_function("() => (document.querySelector('#project-status') || {}).innerText?.includes('step ')",
                          timeout=TIMEOUT * 1000)
    tab.wait_for_function("() => document.querySelector('#project-status').innerText.includes('done: 40 steps')",
                          timeout=TIMEOUT * 1000)
    assert tab.get_by_role("tab", name="Edit").get_attribute("aria-selected") == "true"   # the result opened in Edit
    assert tab.locator("#edit-base input[value=projection]").is_checked()
    tab.wait_for_selector("#edit-image img", timeout=TIMEOUT * 1000)
    tab.screenshot(path=str(screenshots / "torch-edit-projection.png"), full_page=True)
    tab.get_by_role("tab", name="Project").click()
    tab.screenshot(path=str(screenshots / "torch-project.png"), full_page=True)
    tab.close()


def upscale_for_upload(x: np.ndarray) -> np.ndarray:
    """A target bigger than the model, as a photo would be (the page crops and resizes it)."""
    return images.upscale(x, 3)
