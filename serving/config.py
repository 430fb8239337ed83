"""Server settings, defined once: each a dataclass field with its default and help.

`ServerSettings` holds what `create_server`, the servicer and the batchers read; `ServeConfig` adds what
only the command line chooses (the models, host and port). The command line (`stylegan serve`,
`python -m serving`) is built from these fields, so an option exists in exactly one place:

    stylegan serve --model DIR [--model NAME=DIR ...] [--host [::]] [--port 50051] [--max-batch 32] ...

Without --model the bundled emoji model is served. A model is an exported folder (onnxruntime /
tensorrt, no torch needed) or a model file (torch). Its name is NAME, or the folder / file name without
extension; the first model is the default one (requests that name no model). The token may also come
from the environment variable STYLEGAN_TOKEN.

Metrics: off unless --metrics-port is given (0 picks a free port). They are plain HTTP without auth, so
they listen on the gRPC --host by default (loopback stays loopback); to let a Prometheus on another
machine scrape them, pass --metrics-host 0.0.0.0 (or the address of one interface) and keep that port
behind a firewall.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from stylegan_sdk._cli import TOKEN_ENV, OneLineParser, add_settings, option_name, setting
from stylegan_sdk.backends.registry import BACKEND_CHOICES
from stylegan_sdk.config import PRECISIONS
from stylegan_sdk.formats.triton import is_triton_url, parse_url
from stylegan_sdk.loading import DEFAULT_MODEL, resolve_model
from stylegan_sdk.projection.options import MAX_STEPS

MIB = 1 << 20
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ServerSettings:
    backend: str = setting("auto", "backend for models given as paths", choices=BACKEND_CHOICES)
    device: str = setting("cpu", "cpu | cuda | cuda:N | auto")
    precision: str | None = setting(None, "fp32 (default) | fp16 (CUDA: torch, TensorRT) | bf16 (CPUs with bf16: "
                                          "OpenVINO) for models given as paths", choices=PRECISIONS)
    max_batch: int = setting(32, "rows per backend call (the backend's own limit may be lower)", int)
    max_delay_ms: float = setting(2.0, "how long a request waits for others to batch with", float)
    max_queue: int = setting(64, "generation requests admitted at once; beyond it RESOURCE_EXHAUSTED", int)
    max_seeds: int = setting(256, "latents per request", int)
    max_frames: int = setting(100_000, "frames in one Interpolate stream", int)
    max_message_mb: float = setting(64.0, "gRPC message size limit (MiB), both directions", float)
    max_projections: int = setting(1, "projections (Project) computed at once, each in a worker thread of its own, "
                                      "apart from the generation calls' backend thread; 0: none", int)
    max_queued_projections: int = setting(4, "projections waiting for a worker; beyond it RESOURCE_EXHAUSTED", int)
    max_projection_steps: int = setting(5000, "optimisation steps of one projection", int)
    max_projection_targets: int = setting(8, "target images in one projection", int)
    max_projection_pixels: int = setting(4096 * 4096, "pixels of one target image, as its header says (larger "
                                                      "ones are refused before they are decoded)", int)
    max_projection_file_mb: float = setting(16.0, "size of one target image file (MiB)", float)
    projection_nice: int = setting(10, "niceness of the projection worker threads (Linux; 0: as the server), so "
                                       "generation calls keep the CPU while projections run", int)
    metrics_port: int | None = setting(None, "Prometheus metrics HTTP port (0: a free one; default: off)", int)
    metrics_host: str | None = setting(None, "address of the metrics HTTP server (default: the gRPC host; "
                                             "0.0.0.0 exposes it, without auth)")
    grace: float = setting(10.0, "seconds to finish in-flight requests on SIGTERM / SIGINT", float)
    tls_cert: str | None = setting(None, "PEM certificate chain (enables TLS, with --tls-key)")
    tls_key: str | None = setting(None, "PEM private key")
    token: str | None = setting(None, f"require 'authorization: Bearer TOKEN' (health stays open); "
                                      f"default ${TOKEN_ENV}")

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * MIB)

    @property
    def max_projection_file_bytes(self) -> int:
        return int(self.max_projection_file_mb * MIB)

    @property
    def max_delay_s(self) -> float:
        return self.max_delay_ms / 1000.0

    def validate(self) -> ServerSettings:
        """ValueError naming the first bad setting (as its command-line option)."""
        for name in ("max_batch", "max_queue", "max_seeds", "max_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{option_name(name)}: must be >= 1, got {getattr(self, name)}")
        for name in ("max_projections", "max_queued_projections"):
            if getattr(self, name) < 0:
                raise ValueError(f"{option_name(name)}: must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.max_projection_steps <= MAX_STEPS:
            raise ValueError(f"max-projection-steps: must be in [1, {MAX_STEPS}], got {self.max_projection_steps}")
        for name in ("max_projection_targets", "max_projection_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{option_name(name)}: must be >= 1, got {getattr(self, name)}")
        if not self.max_projection_file_bytes >= 1024:
            raise ValueError(f"max-projection-file-mb: must be at least 1 KiB, got {self.max_projection_file_mb}")
        if not 0 <= self.projection_nice <= 19:
            raise ValueError(f"projection-nice: must be in [0, 19], got {self.projection_nice}")
        if not self.max_message_bytes >= 1024:
            raise ValueError(f"max-message-mb: must be at least 1 KiB, got {self.max_message_mb}")
        if self.max_delay_ms < 0:
            raise ValueError(f"max-delay-ms: must be >= 0, got {self.max_delay_ms}")
        if self.grace < 0:
            raise ValueError(f"grace: must be >= 0, got {self.grace}")
        if self.metrics_port is not None and not 0 <= self.metrics_port < 65536:
            raise ValueError(f"metrics-port: must be in [0, 65535], got {self.metrics_port}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls-cert/tls-key: give both or neither")
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{option_name(name)}: no such file {path!r}")
        if self.token is not None and not self.token.strip():
            raise ValueError("token: must not be empty")
        return self


@dataclass(frozen=True)
class ServeConfig:
    """The command line: models, address, and the settings."""

    models: tuple[tuple[str, str], ...] = ()   # (name, path), first = default; none: the bundled model
    host: str = "[::]"
    port: int = 50051
    settings: ServerSettings = field(default_factory=ServerSettings)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def validate(self) -> ServeConfig:
        models = self.models or ((DEFAULT_MODEL, DEFAULT_MODEL),)   # the bundled emoji model
        names = [name for name, _ in models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"model: duplicate model name(s) {dup}; name them with --model NAME=PATH")
        for name, path in models:
            if path == DEFAULT_MODEL and not os.path.exists(path):
                try:
                    resolve_model(path, self.settings.backend)
                except FileNotFoundError as e:
                    raise ValueError(f"model: {e}") from None
            elif is_triton_url(path):
                try:
                    parse_url(path)
                except ValueError as e:
                    raise ValueError(f"model: {name}: {e}") from None
            elif not os.path.exists(path):
                raise ValueError(f"model: {name}: no such file or folder {path!r}")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port: must be in [0, 65535], got {self.port}")
        self.settings.validate()
        return dataclasses.replace(self, models=tuple(models))


def parse_model_spec(spec: str) -> tuple[str, str]:
    """'NAME=PATH' or 'PATH' (named after the folder / file, without extension)."""
    if is_triton_url(spec):  # triton://HOST:PORT/NAME[?timeout=S] is served as NAME
        return parse_url(spec).name, spec
    if "=" in spec and not os.path.exists(spec):
        name, path = spec.split("=", 1)
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"model: bad model name {name!r} (letters, digits, '_', '.', '-')")
        return name, path
    base = os.path.basename(os.path.normpath(spec))
    name = os.path.splitext(base)[0] if os.path.isfile(spec) else base
    if not NAME_RE.fullmatch(name or ""):
        raise ValueError(f"model: cannot name a model after {spec!r}; use --model NAME={spec}")
    return name, spec


def build_parser(prog: str = "python -m serving") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description="Serve StyleGAN generators over gRPC (stylegan.v1.StyleGAN).")
    p.add_argument("--model", action="append", default=[], metavar="[NAME=]PATH",
                   help="exported folder or model file; repeat for several models (the first is the default); "
                        "none: the bundled emoji model")
    p.add_argument("--host", default=ServeConfig.host, help="address to listen on (default: all interfaces)")
    p.add_argument("--port", type=int, default=ServeConfig.port, help="gRPC port (0: pick a free one)")
    add_settings(p, ServerSettings)
    return p


def parse_args(argv: Sequence[str] | None = None, prog: str = "python -m serving") -> ServeConfig:
    """Command line -> a validated ServeConfig; ValueError (one line) for a bad value."""
    args = build_parser(prog).parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(ServerSettings)}
    values["token"] = values["token"] or os.environ.get(TOKEN_ENV) or None
    return ServeConfig(models=tuple(parse_model_spec(spec) for spec in args.model), host=args.host, port=args.port,
                       settings=ServerSettings(**values)).validate()
