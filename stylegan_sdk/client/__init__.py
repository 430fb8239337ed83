"""The gRPC client: `Client` (blocking) and `AsyncClient` (asyncio), the in-process `Generator`'s API
over the network. They share settings and retry policy (settings.py), request planning with no I/O
(planning.py, on the calls' one definition in stylegan_sdk.calls) and errors (errors.py)."""

from ..errors import (
    AuthenticationError,
    ClientError,
    DeadlineExceededError,
    InvalidArgumentError,
    ModelNotFoundError,
    ServerBusyError,
    ServerError,
    ServerUnavailableError,
    translate_error,
)
from .aio import AsyncClient
from .planning import ProjectionUnavailableError, RemoteModel
from .settings import ClientSettings, RetryPolicy
from .sync import Client

__all__ = ["AsyncClient", "AuthenticationError", "Client", "ClientError", "ClientSettings", "DeadlineExceededError",
           "InvalidArgumentError", "ModelNotFoundError", "ProjectionUnavailableError", "RemoteModel", "RetryPolicy",
           "ServerBusyError", "ServerError", "ServerUnavailableError", "translate_error"]
