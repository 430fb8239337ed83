"""gRPC serving of StyleGAN generators: `stylegan serve` / `python -m serving`.

    from serving import create_server, serve_in_thread
"""

from .config import ServerConfig, parse_args
from .server import BackgroundServer, StyleGANServer, create_server, main, serve, serve_in_thread

__all__ = ["BackgroundServer", "ServerConfig", "StyleGANServer", "create_server", "main", "parse_args", "serve",
           "serve_in_thread"]
