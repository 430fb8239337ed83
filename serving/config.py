"""Server settings: one dataclass, filled from the command line (`stylegan serve`, `python -m serving`).

    stylegan serve --model DIR [--model NAME=DIR ...] [--port 50051] [--host [::]]
                   [--backend auto|onnxruntime|tensorrt|torch] [--device cpu]
                   [--max-batch 32] [--max-delay-ms 2] [--max-queue 64] [--max-seeds 256]
                   [--max-message-mb 64] [--metrics-port 0] [--grace 10]
                   [--tls-cert PEM --tls-key PEM] [--token TOKEN]

Without --model the bundled emoji model is served. A model is an exported folder (onnxruntime /
tensorrt, no torch needed) or a model file (torch). Its name
is NAME, or the folder / file name without extension; the first model is the default one (requests that
name no model). The token may also come from the environment variable STYLEGAN_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from stylegan_sdk.cli import OneLineParser
from stylegan_sdk.loading import DEFAULT_MODEL, resolve_model

MIB = 1 << 20
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
TOKEN_ENV = "STYLEGAN_TOKEN"


@dataclass
class ServerConfig:
    models: list[tuple[str, str]] = field(default_factory=list)  # (name, path), first = default
    host: str = "[::]"
    port: int = 50051
    backend: str = "auto"
    device: str = "cpu"
    max_batch: int = 32           # rows per backend call
    max_delay_ms: float = 2.0     # how long the oldest queued job waits for others to batch with
    max_queue: int = 64           # generation requests admitted at once (waiting or computing)
    max_seeds: int = 256          # latents per request
    max_message_mb: int = 64      # gRPC message size limit, both directions
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 0         # Prometheus HTTP port; 0 = off
    grace: float = 10.0           # seconds to finish in-flight requests on SIGTERM / SIGINT
    tls_cert: str | None = None
    tls_key: str | None = None
    token: str | None = None

    def validate(self) -> None:
        if not self.models:
            self.models = [(DEFAULT_MODEL, DEFAULT_MODEL)]  # the bundled emoji model
        names = [name for name, _ in self.models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"model: duplicate model name(s) {dup}; name them with --model NAME=PATH")
        for name, path in self.models:
            if path == DEFAULT_MODEL and not os.path.exists(path):
                try:
                    resolve_model(path, self.backend)
                except FileNotFoundError as e:
                    raise ValueError(f"model: {e}") from None
            elif not os.path.exists(path):
                raise ValueError(f"model: {name}: no such file or folder {path!r}")
        positive = {"max_batch": self.max_batch, "max_queue": self.max_queue, "max_seeds": self.max_seeds,
                    "max_message_mb": self.max_message_mb}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name.replace('_', '-')}: must be >= 1, got {value}")
        if self.max_delay_ms < 0:
            raise ValueError(f"max-delay-ms: must be >= 0, got {self.max_delay_ms}")
        if self.grace < 0:
            raise ValueError(f"grace: must be >= 0, got {self.grace}")
        if not 0 <= self.port < 65536 or not 0 <= self.metrics_port < 65536:
            raise ValueError("port: ports must be in [0, 65535]")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls-cert/tls-key: give both or neither")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"tls: no such file {path!r}")
        if self.token is not None and not self.token.strip():
            raise ValueError("token: must not be empty")


def parse_model_spec(spec: str) -> tuple[str, str]:
    """'NAME=PATH' or 'PATH' (named after the folder / file, without extension)."""
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
    p.add_argument("--host", default="[::]", help="address to listen on (default: all interfaces)")
    p.add_argument("--port", type=int, default=50051, help="gRPC port (0: pick a free one)")
    p.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "tensorrt", "torch"])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    p.add_argument("--max-batch", type=int, default=32, help="rows per backend call")
    p.add_argument("--max-delay-ms", type=float, default=2.0, help="how long a request waits for others to batch with")
    p.add_argument("--max-queue", type=int, default=64,
                   help="generation requests admitted at once; beyond it RESOURCE_EXHAUSTED")
    p.add_argument("--max-seeds", type=int, default=256, help="latents per request")
    p.add_argument("--max-message-mb", type=int, default=64, help="gRPC message size limit (MiB), both directions")
    p.add_argument("--metrics-port", type=int, default=0, help="Prometheus metrics HTTP port (0: off)")
    p.add_argument("--metrics-host", default="0.0.0.0", help="address of the metrics HTTP server")
    p.add_argument("--grace", type=float, default=10.0, help="seconds to finish in-flight requests on SIGTERM")
    p.add_argument("--tls-cert", default=None, help="PEM certificate chain (enables TLS, with --tls-key)")
    p.add_argument("--tls-key", default=None, help="PEM private key")
    p.add_argument("--token", default=None,
                   help=f"require 'authorization: Bearer TOKEN' (health stays open); default ${TOKEN_ENV}")
    return p


def parse_args(argv: Sequence[str] | None = None, prog: str = "python -m serving") -> ServerConfig:
    """Command line -> a validated ServerConfig; ValueError (one line) for a bad value."""
    args = build_parser(prog).parse_args(argv)
    cfg = ServerConfig(
        models=[parse_model_spec(spec) for spec in args.model], host=args.host, port=args.port,
        backend=args.backend, device=args.device, max_batch=args.max_batch, max_delay_ms=args.max_delay_ms,
        max_queue=args.max_queue, max_seeds=args.max_seeds, max_message_mb=args.max_message_mb,
        metrics_host=args.metrics_host, metrics_port=args.metrics_port, grace=args.grace,
        tls_cert=args.tls_cert, tls_key=args.tls_key, token=args.token or os.environ.get(TOKEN_ENV) or None)
    cfg.validate()
    return cfg
