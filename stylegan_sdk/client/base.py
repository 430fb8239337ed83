"""What `Client` and `AsyncClient` share: construction from one `ClientSettings`, the model description
fetched once, deadlines, and error translation. They differ only in blocking vs awaiting."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import grpc

from .._proto import codec, pb
from ..config import ModelInfo
from ..errors import DeadlineExceededError, translate_error
from .planning import RemoteModel
from .settings import DEFAULT_MAX_MESSAGE_BYTES, ClientSettings


class ClientBase:
    def __init__(
        self,
        target: str = "localhost:50051",   # host:port of `stylegan serve`
        model: str | None = None,          # model name on the server (None: its default model)
        timeout: float = 60.0,             # seconds per method call (deadline of all its RPCs)
        token: str | None = None,          # bearer token of a server started with --token
        tls: Any = None,                   # None: plaintext; True / PEM bytes / PEM path / ChannelCredentials
        retries: int | None = None,        # retries of UNAVAILABLE with backoff (None: until the deadline)
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, Any]] = (),  # extra grpc channel options
    ) -> None:
        self.settings = ClientSettings.check(target, model, timeout, token, tls, retries, max_message_bytes,
                                             options)
        self._model: RemoteModel | None = None
        self._open()

    def _open(self) -> None:
        """Set up the channel (or what opens it later)."""
        raise NotImplementedError

    @property
    def target(self) -> str:
        return self.settings.target

    @property
    def model(self) -> str:
        return self.settings.model

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r}, model={self.model or None!r})"

    # -- pieces of every RPC ----------------------------------------------------
    def _deadline(self, timeout: float | None = None) -> float:
        return time.monotonic() + (timeout or self.timeout)

    def _remaining(self, method: str, deadline: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceededError(f"{method} on {self.target}: no answer within the timeout",
                                        grpc.StatusCode.DEADLINE_EXCEEDED)
        return remaining

    def _retry_delay(self, err: grpc.RpcError, method: str, attempt: int, deadline: float) -> float:
        """The wait before retrying err, or raise it translated (not retryable, or out of retries / time)."""
        delay = self.settings.retry.should_retry(err, attempt, deadline)
        if delay is None:
            raise translate_error(err, self.target, method) from None
        return delay

    def _stream_retry_delay(self, err: grpc.RpcError, got_any: bool, attempt: int, deadline: float,
                            method: str = "Interpolate") -> float:
        """As _retry_delay, for a stream: once a message has arrived, an error is raised, not retried."""
        if got_any:
            raise translate_error(err, self.target, method) from None
        return self._retry_delay(err, method, attempt, deadline)

    def _remember(self, msg: pb.ModelInfo) -> RemoteModel:
        self._model = RemoteModel.from_pb(msg, self.settings.max_message_bytes)
        return self._model

    @staticmethod
    def _models(msg: pb.ListModelsResponse) -> dict[str, ModelInfo]:
        return codec.list_models_from_pb(msg)
