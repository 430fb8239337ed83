"""`stylegan serve` / `python -m serving`: the server's command line (options: serving/config.py).

Runs until SIGTERM / SIGINT: the first stops gracefully (--grace seconds for requests in flight), a
second at once. A bad option or a model that fails to load prints one line and exits 2.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from stylegan_sdk._cli import EXIT_USAGE, report, run_command

from .config import ServeConfig, parse_args
from .server import create_server
from .servicer import log


async def serve(cfg: ServeConfig, prog: str = "stylegan serve") -> int:
    """Run until SIGTERM / SIGINT (graceful, cfg.grace seconds; a second signal stops at once)."""
    settings = cfg.settings
    server, port = create_server(cfg.address, cfg.models, settings)
    loop = asyncio.get_running_loop()
    signals = {"count": 0}

    def on_signal(signum: int) -> None:
        signals["count"] += 1
        grace = settings.grace if signals["count"] == 1 else 0.0
        log.info("%s: stopping (grace %.1f s)", signal.Signals(signum).name, grace)
        loop.create_task(server.stop(grace) if signals["count"] == 1 else server.grpc_server.stop(0))

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):  # not the main thread / Windows
            pass
    await server.start()
    scheme = "grpcs" if settings.tls_cert else "grpc"
    print(f"{prog}: listening on {cfg.host}:{port} ({scheme}; models loading: "
          f"{', '.join(name for name, _ in cfg.models)})", file=sys.stderr, flush=True)
    if server.metrics_port:
        print(f"{prog}: metrics on {server.metrics_url}",
              file=sys.stderr, flush=True)
    try:
        await server.wait_until_ready()
    except asyncio.CancelledError:
        pass  # stopped while loading
    except Exception as e:  # the model failed to load: one line, as any user error
        await server.stop(0)
        return report(prog, str(e))
    else:
        print(f"{prog}: ready", file=sys.stderr, flush=True)
    await server.wait_for_termination()
    if server.threads_still_working:  # do not let the interpreter wait for them past the grace period
        print(f"{prog}: stopped (abandoning a model load or backend call still running)", file=sys.stderr,
              flush=True)
        sys.stdout.flush()
        os._exit(0)
    print(f"{prog}: stopped", file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m serving") -> int:
    """Parse, validate, serve; a user error (bad option, unusable address, a model that fails to load) is
    one line and exit 2."""

    def body() -> int:
        cfg = parse_args(argv, prog)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return asyncio.run(serve(cfg, prog))

    try:
        return run_command(prog, body, user_errors=(OSError,))
    except SystemExit as e:  # argparse: --help (0) or a usage error (2, already reported in one line)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
