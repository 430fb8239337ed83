"""Prometheus metrics of one server, in a registry of its own (several servers can share a process).

    stylegan_requests_total{method, code}          finished RPCs by gRPC status
    stylegan_request_seconds{method}               RPC latency (histogram)
    stylegan_queue_seconds{model, kind}            time a job waited in the batcher before its backend call
    stylegan_batch_rows{model, kind}               rows (latents) per backend call
    stylegan_batch_requests{model, kind}           requests merged into one backend call
    stylegan_backend_seconds{model, kind}          backend call duration
    stylegan_dropped_total{reason}                 jobs dropped before computing (deadline | cancelled)
    stylegan_inflight_requests                     generation RPCs admitted and not yet finished
    stylegan_models_loaded                         models ready to serve
    stylegan_projections{state}                    projections running in a worker | queued for one

`kind` is "map", "synthesize" or "generate" (both networks in one job). Served over HTTP by `start_http`
(text format at any path, e.g. /metrics).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("stylegan_requests", "Finished RPCs by method and gRPC status code",
                                ["method", "code"], registry=r)
        self.latency = Histogram("stylegan_request_seconds", "RPC latency", ["method"], buckets=LATENCY_BUCKETS,
                                 registry=r)
        self.queue_time = Histogram("stylegan_queue_seconds", "Time a job waited in the batcher",
                                    ["model", "kind"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_rows = Histogram("stylegan_batch_rows", "Rows (latents) per backend call", ["model", "kind"],
                                    buckets=SIZE_BUCKETS, registry=r)
        self.batch_requests = Histogram("stylegan_batch_requests", "Requests merged into one backend call",
                                        ["model", "kind"], buckets=SIZE_BUCKETS, registry=r)
        self.backend_time = Histogram("stylegan_backend_seconds", "Backend call duration", ["model", "kind"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.dropped = Counter("stylegan_dropped", "Jobs dropped before they were computed", ["reason"], registry=r)
        self.inflight = Gauge("stylegan_inflight_requests", "Generation RPCs admitted and not yet finished",
                              registry=r)
        self.models_loaded = Gauge("stylegan_models_loaded", "Models ready to serve", registry=r)
        self.projections = Gauge("stylegan_projections", "Projections running in a worker or queued for one",
                                 ["state"], registry=r)
        self._http = None
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}

    def child(self, metric: str, *labels: str) -> Any:
        """`getattr(self, metric).labels(*labels)`, looked up once (labels() costs microseconds per call)."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = getattr(self, metric).labels(*labels)
        return found

    def start_http(self, host: str, port: int) -> int:
        """Serve the registry over HTTP on host:port (0: an ephemeral port); returns the bound port."""
        httpd, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = httpd
        return int(httpd.server_port)

    def stop_http(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
