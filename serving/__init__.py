"""gRPC serving of StyleGAN generators: `stylegan serve` / `python -m serving`.

    from serving import ServerSettings, create_server, serve_in_thread

    servicer.py   the stylegan.v1.StyleGAN servicer (thin: decode, the calls' checks, limits, batcher)
    server.py     lifecycle: create_server(address, models, settings) -> (server, port), loading, stop
    batcher.py    dynamic batching of concurrent requests per model
    auth.py       bearer-token interceptor
    config.py     ServerSettings / ServeConfig: every setting once, with its default and help
    background.py a server on a background thread
    cli.py        the command line
    metrics.py    Prometheus metrics
"""

from .background import BackgroundServer, serve_in_thread
from .cli import main, serve
from .config import ServeConfig, ServerSettings, parse_args
from .server import StyleGANServer, create_server

__all__ = ["BackgroundServer", "ServeConfig", "ServerSettings", "StyleGANServer", "create_server", "main",
           "parse_args", "serve", "serve_in_thread"]
