"""What a failed remote call raises (our gRPC server through `sg.Client`, or Triton through the `triton`
backend): one exception class per gRPC status a caller can act on.

    ValueError / InvalidArgumentError   bad argument (the text is the in-process Generator's ValueError)
    ModelNotFoundError (LookupError)    the server has no model of that name
    DeadlineExceededError (TimeoutError)  the call took longer than its timeout
    ServerUnavailableError (ConnectionError)  cannot reach the server, or it is loading / stopping
                                        (retried with backoff until the call's deadline first)
    ServerBusyError                     the server's queue is full (RESOURCE_EXHAUSTED)
    AuthenticationError (PermissionError)  missing or wrong token
    ServerError                         anything else (INTERNAL, ...)

All but ValueError derive from `ClientError`, which carries the gRPC `code` and `details`.
"""

from __future__ import annotations

import grpc


class ClientError(Exception):
    """A gRPC call failed; `code` is the grpc.StatusCode, `details` the server's message."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class InvalidArgumentError(ClientError, ValueError):
    """The server refused an argument (INVALID_ARGUMENT); the text is the in-process ValueError's."""


class ModelNotFoundError(ClientError, LookupError):
    """The server serves no model of that name (NOT_FOUND)."""


class DeadlineExceededError(ClientError, TimeoutError):
    """The call did not finish within its timeout (DEADLINE_EXCEEDED)."""


class ServerUnavailableError(ClientError, ConnectionError):
    """The server cannot be reached, or is loading or shutting down (UNAVAILABLE, after the retries)."""


class ServerBusyError(ClientError):
    """The server's queue is full (RESOURCE_EXHAUSTED); retry later or slow down."""


class AuthenticationError(ClientError, PermissionError):
    """Missing or wrong bearer token (UNAUTHENTICATED / PERMISSION_DENIED)."""


class ServerError(ClientError, RuntimeError):
    """Any other failure (INTERNAL, UNKNOWN, CANCELLED, ...)."""


_ERRORS: dict[grpc.StatusCode, type[ClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: ModelNotFoundError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ServerBusyError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: AuthenticationError,
}


def translate_error(err: grpc.RpcError, target: str, method: str) -> ClientError:
    """A grpc.RpcError -> the matching ClientError (INVALID_ARGUMENT keeps the server's text unchanged)."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (err.details() if callable(getattr(err, "details", None)) else "") or ""
    return error_for_status(code, details, target, method)


def error_for_status(code: grpc.StatusCode, details: str, target: str, method: str) -> ClientError:
    """The ClientError for a failed call's status and details (also what the triton backend raises)."""
    cls = _ERRORS.get(code, ServerError)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        # grpc's own message size check (either side), not a busy server.
        return InvalidArgumentError(f"{method}: a message is larger than the gRPC limit ({details}); ask for fewer "
                                    f"images per call or raise max_message_bytes / --max-message-mb", code, details)
    if cls is InvalidArgumentError:
        message = details
    elif cls is DeadlineExceededError:
        message = f"{method} on {target}: no answer within the timeout ({details or code.name})"
    else:
        message = f"{method} on {target}: {code.name}: {details}"
    return cls(message, code, details)
