"""`stylegan ui`: the page in a browser, over a model in this process or a running `stylegan serve`.

    stylegan ui [--model M | --server HOST:PORT] [--host 127.0.0.1] [--port 7860]

Without --model or --server the bundled emoji model is shown. Every setting is checked before the model is
loaded or a port is opened (one line, exit 2); Gradio comes with the `ui` extra and is imported only then.
The page listens on 127.0.0.1 unless --host says otherwise; it has no authentication of its own, so keep it
on loopback (or behind something that authenticates) on shared machines. Ctrl-C stops it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .._cli import TOKEN_ENV, OneLineParser, add_settings, option_name, run_command, setting
from ..backends.registry import BACKEND_CHOICES
from ..config import PRECISIONS
from ..loading import DEFAULT_MODEL, load, model_kind
from .session import Session

MIB = 1 << 20
SERVER_ONLY = ("server_model", "token", "tls_ca")
MODEL_ONLY = ("backend", "device", "precision")


@dataclass(frozen=True)
class UiSettings:
    model: str | None = setting(None, "a model file (.safetensors, .pkl, .pt), an exported folder, "
                                      "triton://HOST:PORT/NAME or 'default' (the bundled emoji model: the default "
                                      "without --server)")
    server: str | None = setting(None, "HOST:PORT of a running `stylegan serve`: the page is its front end")
    server_model: str | None = setting(None, "with --server: the model's name there (default: the server's default)")
    token: str | None = setting(None, f"with --server: its bearer token (default ${TOKEN_ENV})")
    tls_ca: str | None = setting(None, "with --server: the CA certificate (PEM) of a server that uses TLS")
    backend: str = setting("auto", "with --model: auto = torch for model files, the fastest installed runtime for "
                                   "exported folders (projection needs torch)", choices=BACKEND_CHOICES)
    device: str = setting("cpu", "with --model: cpu | cuda | cuda:N | auto")
    precision: str | None = setting(None, "with --model: fp32 (default) | fp16 | bf16", choices=PRECISIONS)
    host: str = setting("127.0.0.1", "address the page listens on (0.0.0.0 exposes it to the network, without "
                                     "authentication)")
    port: int = setting(7860, "HTTP port of the page (0: a free one)", int)
    max_upload_mb: float = setting(16.0, "size of an uploaded target image (MiB)", float)
    max_upload_pixels: int = setting(4096 * 4096, "pixels of an uploaded target image, as its header says (larger "
                                                  "ones are refused before they are decoded)", int)
    max_projection_steps: int = setting(2000, "steps of one projection started from the page", int)

    def validate(self) -> UiSettings:
        """ValueError naming the first bad setting as its option; touches neither the model nor a port."""
        if self.model is not None and self.server is not None:
            raise ValueError("--model, --server: give one of them (a model here, or a running server)")
        given = {f.name for f in dataclasses.fields(self) if getattr(self, f.name) != f.default}
        if self.server is None and given & set(SERVER_ONLY):
            raise ValueError(f"--{option_name(sorted(given & set(SERVER_ONLY))[0])}: only with --server")
        if self.server is not None and given & set(MODEL_ONLY):
            raise ValueError(f"--{option_name(sorted(given & set(MODEL_ONLY))[0])}: only with --model (the server "
                             f"chose how its model runs)")
        if self.server is not None:
            host, sep, port = self.server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"--server: expected HOST:PORT, got {self.server!r}")
        if self.model is not None and self.model != DEFAULT_MODEL:
            model_kind(self.model)   # FileNotFoundError / ValueError naming the path
        if self.tls_ca is not None and not os.path.isfile(self.tls_ca):
            raise ValueError(f"--tls-ca: no such file {self.tls_ca!r}")
        if not 0 <= self.port < 65536:
            raise ValueError(f"--port: must be in [0, 65535], got {self.port}")
        if not 1 / 1024 <= self.max_upload_mb <= 1024:
            raise ValueError(f"--max-upload-mb: must be in [1/1024, 1024], got {self.max_upload_mb}")
        if self.max_upload_pixels < 1:
            raise ValueError(f"--max-upload-pixels: must be >= 1, got {self.max_upload_pixels}")
        if not 1 <= self.max_projection_steps <= 100_000:
            raise ValueError(f"--max-projection-steps: must be in 1..100000, got {self.max_projection_steps}")
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MIB)


def build_parser(prog: str) -> OneLineParser:
    p = OneLineParser(prog=prog, description="An interactive page over a model or a running server: generate, "
                                             "mix, edit, interpolate, project (Gradio; opens no browser itself).")
    add_settings(p, UiSettings)
    return p


def open_session(s: UiSettings) -> Session:
    """The model (loaded here) or a client of the server (its model info fetched: an unreachable server fails
    here, in one line)."""
    limits = dict(max_upload_bytes=s.max_upload_bytes, max_upload_pixels=s.max_upload_pixels,
                  max_projection_steps=s.max_projection_steps)
    if s.server is None:
        model = s.model or DEFAULT_MODEL
        G = load(model, backend=s.backend, device=s.device, precision=s.precision)
        return Session(G, where=model, **limits)
    from ..client import Client  # grpc: only for --server

    token = s.token if s.token is not None else os.environ.get(TOKEN_ENV)
    client = Client(s.server, model=s.server_model, token=token, tls=s.tls_ca, timeout=30.0)
    client.wait_until_ready(timeout=30.0)
    return Session(client, where=f"{s.server}" + (f" ({s.server_model})" if s.server_model else ""), **limits)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, prog: str = "stylegan ui") -> int:
    args = build_parser(prog).parse_args(argv)

    def body() -> int:
        settings = UiSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(UiSettings)}).validate()
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # before gradio is imported
        from .app import serve  # gradio (the ui extra): imported once the settings are checked

        session = open_session(settings)
        port = settings.port or free_port(settings.host)
        demo, url = serve(session, settings.host, port, settings.max_upload_bytes)
        signal.signal(signal.SIGTERM, _interrupt)   # stop as on Ctrl-C: Gradio closes its server, exit 0
        print(f"{prog}: {session.where} ({session.info.arch}, {session.info.backend}) on {url}", file=sys.stderr,
              flush=True)
        try:
            demo.block_thread()
        finally:
            demo.close()
            session.source.close()
        return 0

    return run_command(prog, body)


if __name__ == "__main__":
    sys.exit(main())
