"""What both clients share before any call: their settings, the channel they open and the retry policy."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

MIB = 1 << 20
DEFAULT_MAX_MESSAGE_BYTES = 64 * MIB


@dataclass(frozen=True)
class RetryPolicy:
    """Retry UNAVAILABLE (server unreachable, loading, or shutting down) with capped exponential backoff and
    jitter, until the call's deadline: a client rides out a server restart as long as its timeout allows.

    grpc's own service-config `retryPolicy` cannot do this: grpc caps it at 5 attempts whatever the
    deadline, so one restart of a few seconds would still fail. This one object is used by both clients."""

    initial_backoff: float = 0.05       # seconds before the first retry
    max_backoff: float = 1.0            # cap of the delay between attempts
    multiplier: float = 2.0
    max_retries: int | None = None      # None: until the deadline

    def delay(self, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before retry number attempt + 1, or None to give up (retries spent, or the wait
        would reach the deadline). The delay is jittered to [50 %, 100 %] of the backoff."""
        if self.max_retries is not None and attempt >= self.max_retries:
            return None
        backoff = min(self.max_backoff, self.initial_backoff * self.multiplier ** attempt)
        delay = backoff * (0.5 + 0.5 * random.random())
        return delay if time.monotonic() + delay < deadline else None

    def should_retry(self, err: grpc.RpcError, attempt: int, deadline: float) -> float | None:
        """The delay before retrying this error, or None: only UNAVAILABLE is retried."""
        if _code(err) != grpc.StatusCode.UNAVAILABLE:
            return None
        return self.delay(attempt, deadline)


def _code(err: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(err, "code", None)
    return code() if callable(code) else None


@dataclass(frozen=True)
class ClientSettings:
    """A client's settings, checked once (both `Client` and `AsyncClient` take exactly these)."""

    target: str = "localhost:50051"     # host:port of `stylegan serve`
    model: str = ""                     # model name on the server ("": its default model)
    timeout: float = 60.0               # seconds per method call (the deadline of all its RPCs)
    token: str | None = None            # bearer token of a server started with --token
    tls: Any = None                     # None: plaintext; True / PEM bytes / PEM path / grpc.ChannelCredentials
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    options: tuple[tuple[str, Any], ...] = ()   # extra grpc channel options

    @classmethod
    def check(cls, target: str, model: str | None, timeout: float, token: str | None, tls: Any,
              retries: int | None, max_message_bytes: int, options: Sequence[tuple[str, Any]]) -> ClientSettings:
        if not isinstance(target, str) or not target:
            raise ValueError(f"target: expected 'host:port', got {target!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout: must be > 0 seconds, got {timeout!r}")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
            raise ValueError(f"retries: must be an int >= 0 or None (until the deadline), got {retries!r}")
        if isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, int) or max_message_bytes < 1:
            raise ValueError(f"max_message_bytes: must be a positive int, got {max_message_bytes!r}")
        return cls(target=target, model=model or "", timeout=float(timeout), token=token, tls=tls,
                   retry=RetryPolicy(max_retries=retries), max_message_bytes=max_message_bytes,
                   options=tuple(options))

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        return (("authorization", f"Bearer {self.token}"),) if self.token else None

    def credentials(self) -> grpc.ChannelCredentials | None:
        """None / False: plaintext; True: TLS with the system roots; bytes: root certificate(s) PEM;
        a path: a PEM file of root certificates; or ready grpc.ChannelCredentials."""
        tls = self.tls
        if tls is None or tls is False:
            return None
        if tls is True:
            return grpc.ssl_channel_credentials()
        if isinstance(tls, grpc.ChannelCredentials):
            return tls
        if isinstance(tls, bytes):
            return grpc.ssl_channel_credentials(root_certificates=tls)
        if isinstance(tls, (str, os.PathLike)):
            with open(tls, "rb") as f:
                return grpc.ssl_channel_credentials(root_certificates=f.read())
        raise ValueError(f"tls: expected None, True, PEM bytes, a PEM file path or grpc.ChannelCredentials, "
                         f"got {type(tls).__name__}")

    def channel_options(self) -> list[tuple[str, Any]]:
        # Reconnect quickly after a failed connection (grpc's default waits ~1 s and more), so retries of
        # UNAVAILABLE reach a server that has just come up.
        return [("grpc.max_receive_message_length", self.max_message_bytes),
                ("grpc.max_send_message_length", self.max_message_bytes),
                ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000), *self.options]
