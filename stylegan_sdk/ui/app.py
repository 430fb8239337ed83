"""The page: a Gradio app over a `Session` (`build`), and serving it (`serve`).

Panels: Generate (seed, psi, cutoff, noise, class, StyleGAN3's view), Style mixing, Edit, Interpolate, Project
and Model. Every picture comes from one Session method; the page only turns widget values into its arguments.
The functions are also Gradio API endpoints: /generate, /mix, /edit, /interpolate and /project (gradio_client:
`Client(url).predict(seed=3, psi=0.5, api_name="/generate")`).

Offline by construction: no analytics, no share link, no server-side rendering, the theme's fonts served by this
server; uploads are taken as bytes (no path from the browser is opened) and their size checked from the header.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import numpy as np

from .._cli import import_error_message
from ..editing.directions import VALUE_NAME, Directions
from ..errors import ClientError
from ..formats.fileio import atomic_write_bytes
from ..projection.options import prepare_target, save_projected_w
from .session import MAX_DIRECTIONS, MAX_FRAMES, UI_LOSSES, Latent, Picture, Session, View

SEED_SLIDER_MAX = 999            # the seed slider's range (the number box takes any seed)
STRENGTH_RANGE = 10.0            # edit sliders: -10..10 in W units
CSS = """
.sg-picture img { image-rendering: pixelated; width: 256px !important; height: 256px !important;
                  object-fit: contain; }
.sg-animation img { image-rendering: pixelated; }
"""


@contextlib.contextmanager
def page_errors() -> Iterator[None]:
    """Bad arguments (ValueError naming them), missing files or packages and server errors reach the page as
    their one-line message (gr.Error), never a traceback or an exception's class name."""
    try:
        yield
    except ImportError as e:
        raise gr.Error(import_error_message(e), print_exception=False) from None
    except (ValueError, FileNotFoundError, ClientError) as e:
        raise gr.Error(str(e), print_exception=False) from None


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn (a function or a generator function) with page_errors around it, keeping its parameter names (the
    API's keyword arguments)."""
    if inspect.isgeneratorfunction(fn):
        def wrapped(*args: Any) -> Any:
            with page_errors():
                yield from fn(*args)
    else:
        def wrapped(*args: Any) -> Any:
            with page_errors():
                return fn(*args)
    wrapped.__signature__ = inspect.signature(fn)
    wrapped.__name__ = fn.__name__
    return wrapped


def with_parameters(fn: Callable[..., Any], names: list[str]) -> Callable[..., Any]:
    """fn(*values) presented with these parameter names (the API's keyword arguments)."""
    fn.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    return fn


def build(session: Session, workdir: str | None = None) -> gr.Blocks:
    """The page over `session`; files it offers for download (GIFs, ws) go to `workdir` (a temporary folder)."""
    info = session.info
    workdir = workdir or tempfile.mkdtemp(prefix="stylegan-ui-")
    num_ws = info.num_ws
    conditional = info.c_dim > 0
    # An unconditional model's class box is hidden and holds "" (so that the API's class_name is optional).
    class_choices: list[tuple[str, Any]] = ([(n, n) for n in info.class_names] if info.class_names
                                            else [(f"class {i}", i) for i in range(info.c_dim)]
                                            if conditional else [("none (unconditional model)", "")])
    row_choices = [(session.layer_label(r), r) for r in range(num_ws)]

    def new_file(suffix: str) -> str:
        """A fresh path in workdir for a download."""
        return os.path.join(workdir, f"{uuid.uuid4().hex[:12]}{suffix}")

    def ws_file(ws: Any) -> str:
        path = new_file(".npz")
        save_projected_w(path, _need_ws(ws))
        return path

    # -- widget values -> the Session's arguments ----------------------------------
    def cut(cutoff: Any) -> int | None:
        """The cutoff slider: num_ws (its right end) truncates every row."""
        rows = whole(cutoff, "cutoff")
        return None if rows >= num_ws else rows

    def klass(class_name: Any) -> int | str | None:
        return class_name if conditional else None

    def latent(seed: Any, psi: Any, cutoff: Any, class_name: Any) -> Latent:
        return Latent(seed, psi, cut(cutoff), klass(class_name))

    def view(noise_mode: Any, noise_seed: Any, tx: Any, ty: Any, rotate: Any) -> View:
        random = noise_mode == "random"
        if session.is_stylegan3:
            return View(noise_mode, noise_seed if random else None, (float(tx or 0), float(ty or 0)),
                        float(rotate or 0))
        return View(noise_mode, noise_seed if random else None)

    def caption(p: Picture, what: str) -> str:
        return f"{what} · {p.ms:.1f} ms ({info.backend})"

    # -- the handlers (the API's endpoints: their parameter names are its keyword arguments) -----
    def generate(seed, psi, cutoff, noise_mode, noise_seed, class_name, translate_x, translate_y, rotate):
        p = session.generate(latent(seed, psi, cutoff, class_name),
                             view(noise_mode, noise_seed, translate_x, translate_y, rotate))
        return p.image, p.ws, caption(p, f"seed {seed}, psi {psi:g}")

    def mix(seed, seed_b, layers, psi, cutoff, noise_mode, noise_seed, class_name, translate_x, translate_y,
            rotate):
        rows = [int(r) for r in (layers or [])]
        p = session.mix(latent(seed, psi, cutoff, class_name), seed_b, rows,
                        view(noise_mode, noise_seed, translate_x, translate_y, rotate))
        return p.image, p.ws, caption(p, f"seed {seed} with rows {rows or 'none'} from seed {seed_b}")

    edit_names = ["seed", "psi", "cutoff", "noise_mode", "noise_seed", "class_name", "translate_x", "translate_y",
                  "rotate", "base", "direction_set", "first_layer", "last_layer",
                  *[f"direction_{i}" for i in range(MAX_DIRECTIONS)], "projected_ws"]

    def edit(*values):
        a = dict(zip(edit_names, values, strict=True))
        strengths = {i: float(a[f"direction_{i}"]) for i in range(MAX_DIRECTIONS) if a[f"direction_{i}"]}
        if a["base"] == "projection":
            if a["projected_ws"] is None:
                raise ValueError("base: no projection yet (run one on the Project panel)")
            base: Latent | np.ndarray = np.asarray(a["projected_ws"], np.float32)
        else:
            base = latent(a["seed"], a["psi"], a["cutoff"], a["class_name"])
        first, last = whole(a["first_layer"], "first_layer"), whole(a["last_layer"], "last_layer")
        if not 0 <= first <= last < num_ws:
            raise ValueError(f"first_layer, last_layer: need 0 <= first <= last < {num_ws}, got {first}, {last}")
        p = session.edit(base, a["direction_set"], strengths, list(range(first, last + 1)),
                         view(a["noise_mode"], a["noise_seed"], a["translate_x"], a["translate_y"], a["rotate"]))
        moved = ", ".join(f"{session.sets[a['direction_set']].names[i]} {s:+g}" for i, s in strengths.items())
        return p.image, p.ws, caption(p, f"{a['base']}: {moved or 'unedited'} on ws rows {first}-{last}")

    def interpolate(keyframes, num_frames, space, fps, psi, cutoff, noise_mode, noise_seed, class_name,
                    translate_x, translate_y, rotate):
        frames, ms = session.interpolate(keyframes, whole(num_frames, "num_frames"), space, psi, cut(cutoff),
                                         klass(class_name), view(noise_mode, noise_seed, translate_x, translate_y,
                                                                 rotate))
        path = new_file(".gif")
        atomic_write_bytes(path, session.animation(frames, float(fps)))
        return path, path, f"{len(frames)} frames through seeds {keyframes} · {ms:.0f} ms ({info.backend})"

    def project(image, steps, loss, space, seed):
        if image is None:
            raise ValueError("image: upload a target image first")
        target = session.read_upload(image, "image")
        seen = prepare_target(target, info.img_resolution, info.img_channels)   # what is projected
        seen = seen[:, :, 0] if seen.shape[2] == 1 else seen
        yield "starting", seen, None, gr.skip(), gr.skip(), gr.skip()
        preview = None
        for ev in session.project(target, whole(steps, "steps"), loss, space, whole(seed, "seed")):
            if ev.preview is not None:
                preview = ev.preview
            if ev.result is None:
                status = f"step {ev.step} / {ev.steps}" + (f" · loss {ev.loss:.4f}" if ev.loss is not None else "")
                yield status, gr.skip(), preview, gr.skip(), gr.skip(), gr.skip()
                continue
            r = ev.result
            done = (f"done: {r.steps} steps, final {r.loss} distance {float(r.losses[-1, 0]):.4f}; "
                    f"opened in Edit (base: projection)")
            yield done, gr.skip(), r.images[0], r.ws[0], "projection", gr.Tabs(selected="edit")

    def ws_download(elem_id: str) -> tuple[gr.Button, gr.File]:
        return (gr.Button("ws of this picture as .npz (NVIDIA's projected_w layout)", size="sm"),
                gr.File(label="ws", interactive=False, elem_id=elem_id, height=70))

    # -- the page -------------------------------------------------------------------
    with gr.Blocks(title=f"stylegan-sdk · {session.where}", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"### stylegan-sdk · {info.arch}, {info.img_resolution} px · {session.where}")
        picture_ws = gr.State(None)        # the ws of the picture last drawn (for the .npz download)
        projected_ws = gr.State(None)      # the last projection's ws (the Edit panel's base "projection")
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column():
                        seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed",
                                         elem_id="seed")
                        seed_slider = gr.Slider(0, SEED_SLIDER_MAX, 0, step=1, label="Seed (arrow keys step it)",
                                                elem_id="seed-slider")
                        psi = gr.Slider(-1, 2, 0.7, step=0.05, label="Truncation psi", elem_id="psi")
                        cutoff = gr.Slider(0, num_ws, num_ws, step=1, elem_id="cutoff",
                                           label=f"Truncation cutoff: ws rows < cutoff truncated ({num_ws}: all)")
                        with gr.Row():
                            noise_mode = gr.Radio(["const", "random", "none"], value="const", label="Noise",
                                                  visible=session.config.use_noise and not session.is_stylegan3)
                            noise_seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1,
                                                   label="Noise seed (random)",
                                                   visible=session.config.use_noise and not session.is_stylegan3)
                        class_name = gr.Dropdown(class_choices, value=class_choices[0][1],
                                                 label="Class", visible=conditional)
                        with gr.Row(visible=session.is_stylegan3):
                            translate_x = gr.Slider(-1, 1, 0, step=0.01, label="Translate x")
                            translate_y = gr.Slider(-1, 1, 0, step=0.01, label="Translate y")
                            rotate = gr.Slider(-180, 180, 0, step=1, label="Rotate (degrees)")
                    with gr.Column():
                        image = gr.Image(format="png", label="Picture", elem_id="generate-image",
                                         elem_classes="sg-picture", interactive=False, buttons=["download"])
                        generate_caption = gr.Markdown(label="caption", elem_id="generate-caption")
                        ws_downloads = [ws_download("ws-file")]
            with gr.Tab("Style mixing", id="mix") as mix_tab:
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("Rows of the Generate panel's seed replaced by those of seed B.")
                        seed_b = gr.Number(1, precision=0, minimum=0, maximum=2**32 - 1, label="Seed B",
                                           elem_id="seed-b")
                        groups = session.layer_groups()
                        layers = gr.CheckboxGroup(row_choices, value=groups.get("coarse", []), elem_id="mix-layers",
                                                  label="ws rows from seed B (row: resolution it drives)")
                        with gr.Row():
                            presets = [(gr.Button(session.group_label(g), size="sm"), rows)
                                       for g, rows in groups.items()]
                    with gr.Column():
                        mix_image = gr.Image(format="png", label="Mixed", elem_id="mix-image",
                                             elem_classes="sg-picture", interactive=False, buttons=["download"])
                        mix_caption = gr.Markdown(label="caption", elem_id="mix-caption")
            with gr.Tab("Edit", id="edit") as edit_tab:
                with gr.Row():
                    with gr.Column():
                        base = gr.Radio(["seed", "projection"], value="seed", elem_id="edit-base",
                                        label="Start from: the Generate panel's seed, or the last projection")
                        set_names = list(session.sets)
                        direction_set = gr.Dropdown(set_names, value=set_names[0] if set_names else None,
                                                    label="Direction set", elem_id="direction-set")
                        sets_note = gr.Markdown("" if set_names else
                                                "This model carries no direction sets: compute one below.")
                        with gr.Row():
                            sefa_button = gr.Button("Compute SeFa", size="sm", visible=session.in_process)
                            ganspace_button = gr.Button("Compute GANSpace", size="sm")
                        with gr.Row():
                            first_layer = gr.Slider(0, num_ws - 1, 0, step=1, label="First ws row")
                            last_layer = gr.Slider(0, num_ws - 1, num_ws - 1, step=1, label="Last ws row")
                        strengths = [gr.Slider(-STRENGTH_RANGE, STRENGTH_RANGE, 0, step=0.1,
                                               elem_id=f"direction-{i}",
                                               **_slider_look(session.sets.get(direction_set.value), i))
                                     for i in range(MAX_DIRECTIONS)]
                        reset = gr.Button("Reset strengths", size="sm")
                    with gr.Column():
                        edit_image = gr.Image(format="png", label="Edited", elem_id="edit-image",
                                              elem_classes="sg-picture", interactive=False, buttons=["download"])
                        edit_caption = gr.Markdown(label="caption", elem_id="edit-caption")
                        ws_downloads.append(ws_download("edit-ws-file"))
            with gr.Tab("Interpolate", id="interpolate"):
                with gr.Row():
                    with gr.Column():
                        keyframes = gr.Textbox("0,1,2,0", label="Keyframe seeds (e.g. 0,1,2,0 loops)")
                        num_frames = gr.Slider(2, MAX_FRAMES, 60, step=1, label="Frames")
                        space = gr.Radio(["w", "z"], value="w", label="Path: lerp in W, or slerp in Z")
                        fps = gr.Slider(1, 60, 24, step=1, label="Frames per second")
                        animate = gr.Button("Make the animation", variant="primary")
                    with gr.Column():
                        animation = gr.Image(label="Animation (GIF)", elem_classes="sg-animation",
                                             interactive=False, elem_id="animation")
                        animation_file = gr.File(label="Download", interactive=False)
                        animation_caption = gr.Markdown(label="caption")
            with gr.Tab("Project", id="project"):
                why_not = session.projection_unavailable()
                gr.Markdown(f"**Projection is not available here:** {why_not}. {_projection_hint(session)}"
                            if why_not else
                            "Find the ws of a real image (NVIDIA's projector); the result opens in Edit.",
                            elem_id="project-note")
                with gr.Row(visible=why_not is None):
                    with gr.Column():
                        target_file = gr.File(type="binary", file_types=[".png", ".jpg", ".jpeg", ".webp"],
                                              elem_id="project-target",
                                              label=f"Target image (PNG, JPEG, WebP; up to "
                                                    f"{session.max_upload_bytes // 2**20} MiB)")
                        steps = gr.Slider(1, session.max_projection_steps, min(200, session.max_projection_steps),
                                          step=1, label="Steps", elem_id="project-steps")
                        loss = gr.Radio(list(UI_LOSSES), value=UI_LOSSES[0], label="Loss", elem_id="project-loss")
                        project_space = gr.Radio(["w", "w+"], value="w", label="Space")
                        project_seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                        with gr.Row():
                            start = gr.Button("Project", variant="primary")
                            stop = gr.Button("Stop")
                    with gr.Column():
                        project_status = gr.Markdown(label="status", elem_id="project-status")
                        with gr.Row():
                            project_target = gr.Image(format="png", label="Target, as the model sees it",
                                                      elem_classes="sg-picture", interactive=False)
                            project_preview = gr.Image(format="png", label="Current ws", elem_classes="sg-picture",
                                                       interactive=False)
            with gr.Tab("Model", id="model") as model_tab:
                model_table = gr.Markdown(_table(session), elem_id="model-table")
                refresh = gr.Button("Refresh", size="sm")

        # -- events ------------------------------------------------------------------------
        shared = [psi, cutoff, noise_mode, noise_seed, class_name, translate_x, translate_y, rotate]
        gen_inputs = [seed, *shared]
        gr.on([demo.load, seed.change, *(c.change for c in shared)], user_errors(generate), gen_inputs,
              [image, picture_ws, generate_caption], api_name="generate", trigger_mode="always_last",
              show_progress="hidden")
        # The slider and the number box are one seed: synced in the browser, no round trip.
        seed_slider.input(None, seed_slider, seed, js="(v) => v", api_visibility="private")
        seed.input(None, seed, seed_slider, js=f"(v) => Math.min(Math.max(v, 0), {SEED_SLIDER_MAX})",
                   api_visibility="private")
        for button, file in ws_downloads:   # the ws of the picture last drawn, on any panel
            button.click(user_errors(ws_file), picture_ws, file,
                         api_visibility="private")

        mix_inputs = [seed, seed_b, layers, *shared]
        gr.on([mix_tab.select, seed_b.change, layers.change], user_errors(mix), mix_inputs,
              [mix_image, picture_ws, mix_caption], api_name="mix", trigger_mode="always_last",
              show_progress="hidden")
        for button, rows in presets:
            button.click(lambda rows=rows: rows, None, layers, api_visibility="private")

        edit_inputs = [seed, *shared, base, direction_set, first_layer, last_layer, *strengths, projected_ws]
        edit_outputs = [edit_image, picture_ws, edit_caption]
        edit_fn = user_errors(with_parameters(edit, edit_names))
        gr.on([edit_tab.select, base.change, first_layer.change, last_layer.change, *(s.change for s in strengths)],
              edit_fn, edit_inputs, edit_outputs, api_name="edit", trigger_mode="always_last", show_progress="hidden")

        def choose_set(name):
            d = session.sets.get(name)
            rows = (d.layers if d is not None else None) or range(num_ws)
            return (*[gr.update(value=0, **_slider_look(d, i)) for i in range(MAX_DIRECTIONS)],
                    gr.update(value=min(rows)), gr.update(value=max(rows)))

        direction_set.change(choose_set, direction_set, [*strengths, first_layer, last_layer],
                             api_visibility="private").then(edit_fn, edit_inputs, edit_outputs,
                                                            api_visibility="private", show_progress="hidden")
        reset.click(lambda: [0.0] * MAX_DIRECTIONS, None, strengths, api_visibility="private")

        def compute(method):
            name = session.compute_directions(method)
            return gr.update(choices=list(session.sets), value=name), f"Computed: {name}."

        for button, method in ((sefa_button, "sefa"), (ganspace_button, "ganspace")):
            button.click(user_errors(lambda m=method: compute(m)), None, [direction_set, sets_note],
                         api_visibility="private")

        animate.click(user_errors(interpolate),
                      [keyframes, num_frames, space, fps, psi, cutoff, noise_mode, noise_seed, class_name,
                       translate_x, translate_y, rotate],
                      [animation, animation_file, animation_caption], api_name="interpolate")

        project_run = start.click(user_errors(project), [target_file, steps, loss, project_space, project_seed],
                                  [project_status, project_target, project_preview, projected_ws, base, tabs],
                                  api_name="project")
        project_run.then(edit_fn, edit_inputs, edit_outputs, api_visibility="private", show_progress="hidden")
        stop.click(None, None, None, cancels=[project_run], api_visibility="private")

        gr.on([model_tab.select, refresh.click], lambda: _table(session), None, model_table,
              api_visibility="private")
    demo.queue(default_concurrency_limit=1)
    return demo


def serve(session: Session, host: str, port: int, max_upload_bytes: int) -> tuple[gr.Blocks, str]:
    """Start the page's HTTP server (in the background) -> (the app, its URL). Nothing in it reaches outside
    this machine: no analytics, no share link, no server-side rendering, no PWA, no MCP."""
    demo = build(session)
    _, url, _ = demo.launch(server_name=host, server_port=port, share=False, quiet=True, prevent_thread_lock=True,
                            max_file_size=max_upload_bytes, ssr_mode=False, pwa=False, mcp_server=False,
                            enable_monitoring=False, show_error=False, css=CSS, footer_links=["api", "settings"])
    return demo, url


# ----------------------------------------------------------------------------
# Small pure helpers

def _slider_look(d: Directions | None, i: int) -> dict[str, Any]:
    """Label and visibility of strength slider i for the direction set d (hidden past its size)."""
    if d is None or i >= len(d.names):
        return {"label": f"direction {i}", "visible": False}
    value = VALUE_NAME[d.kind]
    return {"label": f"{d.names[i]} ({value} {float(d.values[i]):.3g})", "visible": True}


def whole(value: Any, name: str) -> int:
    """A widget's number that must be whole (sliders send floats: 40.0 -> 40); ValueError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ValueError(f"{name}: expected a whole number, got {value!r}")
    return int(value)


def _projection_hint(session: Session) -> str:
    if not session.in_process:
        return "The server decides how its model runs: serve a model file on the torch backend to project."
    return ("Start the page on a model the torch backend runs: `stylegan ui --model FILE` (the bundled model: "
            "`stylegan ui --backend torch`).")


def _need_ws(ws: Any) -> np.ndarray:
    if ws is None:
        raise ValueError("ws: no picture drawn yet")
    return np.asarray(ws, np.float32)


def _table(session: Session) -> str:
    return "| model | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in session.describe())
