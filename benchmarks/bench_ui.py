"""Latency of a slider change on `stylegan ui` over the bundled model: the SDK call alone in this process against
the page server's whole answer over HTTP, asked for the way the browser asks, and where the difference goes.

    python benchmarks/bench_ui.py [--calls 50] [--rounds 1] [--pause-ms 20] [--no-call-path] [--no-profiling]

One run starts `python -m stylegan_sdk.ui.cli --port 0` (what `stylegan ui` runs: the bundled model, its own
process, a free port; ready when it prints its `stylegan ui: ... on http://...` line on stderr) and, interleaved
call by call (the order rotated, --pause-ms between calls so the other side's thread pools are idle), measures
--calls slider changes (new seed and psi each time, alternately the seed box and the psi slider as trigger):

- SDK: `Session.generate(Latent(seed, psi), View())` on `Session(sg.load("default"), where="default")` in this
  process: map + synthesize, what the page's handler calls.
- page: the browser's path (Gradio 6's JS client, protocol sse_v3), with a raw httpx client: POST
  /gradio_api/queue/join {data: the 9 inputs, fn_index, trigger_id, session_hash} -> event_id; GET
  /gradio_api/queue/data?session_hash=... (server-sent events) until process_completed (the server then closes
  the stream); GET the PNG at the result's URL (the <img>). Split into those three requests.
- floor: GET /gradio_api/app_id, a bare round trip to the same server (what any request costs).
- call (unless --no-call-path): the documented HTTP API, POST /gradio_api/call/generate -> event_id, GET
  /gradio_api/call/generate/{event_id} until `event: complete`, GET the PNG.

Server side, per request: the `duration` of the handler that process_completed carries, the model time the page
prints in its caption (Session.generate inside the server), and with Gradio's profiling on (GRADIO_PROFILING=1 in
the server's environment; --no-profiling: off) its trace of each event (queue wait, preprocess, handler,
postprocess), read from /gradio_api/profiling/traces at the end. Prints the machine, then a markdown table of
medians and p90s (ms) and the ratio page / SDK of the medians. The server is stopped with SIGINT (its Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import stylegan_sdk as sg  # noqa: E402
from stylegan_sdk.ui.session import Latent, Session, View  # noqa: E402

PSIS = (0.5, 0.7, 0.9, 0.6, 0.8)
CAPTION_MS = re.compile(r"· ([0-9.]+) ms")


# ----------------------------------------------------------------------------
# The server

def start_ui(profiling: bool, timeout: float = 300.0) -> tuple[subprocess.Popen, str]:
    """`stylegan ui` on the bundled model on a free port, in its own process -> (process, its URL)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               GRADIO_ANALYTICS_ENABLED="False")
    if profiling:
        env["GRADIO_PROFILING"] = "1"
    else:
        env.pop("GRADIO_PROFILING", None)
    cmd = [sys.executable, "-m", "stylegan_sdk.ui.cli", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        m = re.match(r"stylegan ui: .* on (http://\S+?)/?$", line.strip())
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep draining
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError(f"stylegan ui did not start:\n{seen}")


def stop_ui(proc: subprocess.Popen) -> int:
    """Ctrl-C (SIGINT), as a person stops it; killed if it has not exited 30 s later."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# ----------------------------------------------------------------------------
# The browser's requests

def sse_messages(response: httpx.Response) -> Any:
    """(event name or None, data string) of each server-sent event of a streamed response."""
    event, data = None, []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


class Page:
    """One open page: the generate event's fn_index, inputs and triggers read from /config, one session hash."""

    def __init__(self, url: str, client: httpx.Client):
        self.url, self.http = url, client
        config = client.get(f"{url}/config").raise_for_status().json()
        self.api = f"{url}{config.get('api_prefix', '/gradio_api')}"
        dep = next(d for d in config["dependencies"] if d.get("api_name") == "generate")
        comps = {c["id"]: c for c in config["components"]}
        self.fn_index = dep["id"]
        self.inputs = dep["inputs"]
        self.defaults = [comps[i]["props"].get("value") for i in self.inputs]
        by_elem = {comps[i]["props"].get("elem_id"): i for i in self.inputs}
        self.seed_id, self.psi_id = by_elem["seed"], by_elem["psi"]
        self.session_hash = uuid.uuid4().hex[:11]

    def data(self, seed: int, psi: float) -> list[Any]:
        values = list(self.defaults)
        values[self.inputs.index(self.seed_id)] = seed
        values[self.inputs.index(self.psi_id)] = psi
        return values

    def change(self, seed: int, psi: float, trigger: str) -> dict[str, Any]:
        """A slider change as the page sends it: queue/join, the queue/data stream, the <img>'s GET."""
        body = {"data": self.data(seed, psi), "event_data": None, "fn_index": self.fn_index,
                "trigger_id": self.seed_id if trigger == "seed" else self.psi_id, "session_hash": self.session_hash}
        t0 = time.perf_counter()
        event_id = self.http.post(f"{self.api}/queue/join", json=body).raise_for_status().json()["event_id"]
        t1 = time.perf_counter()
        done = None
        with self.http.stream("GET", f"{self.api}/queue/data", params={"session_hash": self.session_hash}) as r:
            r.raise_for_status()
            for _, data in sse_messages(r):
                msg = json.loads(data)
                if msg.get("msg") == "process_completed" and msg.get("event_id") == event_id:
                    t2 = time.perf_counter()
                    done = msg
                elif msg.get("msg") == "close_stream":
                    break
        t3 = time.perf_counter()
        if done is None or not done.get("success"):
            raise RuntimeError(f"generate failed: {done}")
        out = done["output"]
        png = self.http.get(out["data"][0]["url"]).raise_for_status().content
        t4 = time.perf_counter()
        return dict(event_id=event_id, whole=t4 - t0, submit=t1 - t0, wait=t2 - t1, drain=t3 - t2, fetch=t4 - t3,
                    handler=out["duration"], caption=caption_ms(out["data"][-1]), png=len(png))

    def call(self, seed: int, psi: float) -> dict[str, Any]:
        """The same change through the documented HTTP API: /call/generate, its event stream, the PNG."""
        t0 = time.perf_counter()
        r = self.http.post(f"{self.api}/call/generate", json={"data": self.data(seed, psi)}).raise_for_status()
        event_id = r.json()["event_id"]
        t1 = time.perf_counter()
        result = None
        with self.http.stream("GET", f"{self.api}/call/generate/{event_id}") as r:
            r.raise_for_status()
            for event, data in sse_messages(r):
                if event == "complete":
                    t2 = time.perf_counter()
                    result = json.loads(data)
                elif event == "error":
                    raise RuntimeError(f"generate failed: {data}")
        t3 = time.perf_counter()
        if result is None:
            raise RuntimeError("generate: the stream ended without a result")
        png = self.http.get(result[0]["url"]).raise_for_status().content
        t4 = time.perf_counter()
        return dict(event_id=event_id, whole=t4 - t0, submit=t1 - t0, wait=t2 - t1, drain=t3 - t2, fetch=t4 - t3,
                    caption=caption_ms(result[-1]), png=len(png))

    def floor(self) -> dict[str, Any]:
        """One bare request to the page's server (GET /gradio_api/app_id): what any HTTP round trip costs."""
        t0 = time.perf_counter()
        self.http.get(f"{self.api}/app_id").raise_for_status()
        return dict(whole=time.perf_counter() - t0)

    def traces(self) -> dict[str, dict[str, Any]]:
        """Gradio's profiling traces by event id ({} when the server runs without GRADIO_PROFILING)."""
        r = self.http.get(f"{self.api}/profiling/traces")
        return {t["event_id"]: t for t in r.json()} if r.status_code == 200 else {}


def caption_ms(caption: str) -> float:
    """The model time the page prints under the picture ("seed 3, psi 0.7 · 5.5 ms (onnxruntime)"), seconds."""
    m = CAPTION_MS.search(caption)
    return float(m.group(1)) / 1000 if m else float("nan")


# ----------------------------------------------------------------------------
# Machine

def machine() -> str:
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get("model name", platform.processor() or platform.machine())
    if "model" in info:
        cpu += f" (family {info.get('cpu family', '?')} model {info['model']})"
    if "hypervisor" in info.get("flags", "").split():
        cpu += ", virtualised"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    out = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for mod in ("onnxruntime", "gradio", "httpx"):
        try:
            out.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    return f"{cpu}, {cores} CPUs{load}; {', '.join(out)}"


# ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=50, help="slider changes measured per round, of each kind")
    p.add_argument("--rounds", type=int, default=1, help="rounds (one server for all of them)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls of each kind first")
    p.add_argument("--pause-ms", type=float, default=20.0, help="idle time before each measured call")
    p.add_argument("--no-call-path", action="store_true", help="skip the /gradio_api/call/generate rows")
    p.add_argument("--no-profiling", action="store_true", help="run the server without GRADIO_PROFILING")
    args = p.parse_args(argv)

    session = Session(sg.load("default"), where="default")
    print(f"machine: {machine()}")
    print(f"model: default ({session.info.arch}, {session.info.img_resolution} px, {session.info.backend} on "
          f"{session.info.device or 'cpu'}) here and in the server")

    t_start = time.perf_counter()
    proc, url = start_ui(profiling=not args.no_profiling)
    print(f"server: python -m stylegan_sdk.ui.cli --port 0 -> {url} in {time.perf_counter() - t_start:.1f} s"
          f"{'' if args.no_profiling else ' (GRADIO_PROFILING=1)'}")
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        with httpx.Client(timeout=60.0) as http:
            page = Page(url, http)
            print(f"request: fn_index {page.fn_index}, data {page.data(0, 0.7)} (seed, psi changed per call)")

            def sdk(seed: int, psi: float) -> dict[str, Any]:
                t0 = time.perf_counter()
                pic = session.generate(Latent(seed, psi), View())
                return dict(whole=time.perf_counter() - t0, caption=pic.ms / 1000)

            kinds: dict[str, Callable[[int, float, str], dict[str, Any]]] = {
                "sdk": lambda s, q, trigger: sdk(s, q),
                "page": page.change,
                "floor": lambda s, q, trigger: page.floor(),
            }
            if not args.no_call_path:
                kinds["call"] = lambda s, q, trigger: page.call(s, q)
            names = list(kinds)
            for i in range(args.warmup):
                for name in names:
                    kinds[name](10_000 + i, 0.7, "seed")
            n = 0
            for _ in range(args.rounds):
                for _ in range(args.calls):
                    seed, psi, trigger = 1 + n, PSIS[n % len(PSIS)], ("seed", "psi")[n % 2]
                    for name in names[n % len(names):] + names[:n % len(names)]:
                        time.sleep(args.pause_ms / 1000)
                        rows[name].append(kinds[name](seed, psi, trigger))
                    n += 1
            traces = page.traces()
    finally:
        code = stop_ui(proc)
    print(f"server stopped (exit {code})")

    for name in ("page", "call"):
        for r in rows.get(name, []):
            t = traces.get(r["event_id"])
            if t is not None:
                r.update(queue_wait=t["queue_wait_ms"] / 1000, preprocess=t["preprocess_ms"] / 1000,
                         postprocess=t["postprocess_ms"] / 1000,
                         png_save=t["postprocess_save_img_array_to_cache_ms"] / 1000,
                         process=(t["queue_wait_ms"] + t["total_ms"]) / 1000)

    def stat(name: str, key: str) -> tuple[float, float] | None:
        values = [r[key] for r in rows.get(name, []) if key in r]
        if not values:
            return None
        return float(np.percentile(values, 50)) * 1000, float(np.percentile(values, 90)) * 1000

    table = [
        ("sdk", "whole", "(a) SDK: Session.generate in this process (map + synthesize), wall"),
        ("sdk", "caption", "    its own timer (Picture.ms)"),
        ("page", "whole", "(b) page: queue/join + queue/data SSE + GET PNG, whole answer seen by the client"),
        ("page", "submit", "    POST /gradio_api/queue/join -> event_id"),
        ("page", "wait", "    GET /gradio_api/queue/data -> process_completed"),
        ("page", "drain", "    -> close_stream (end of the stream)"),
        ("page", "fetch", "    GET the PNG (the <img>)"),
        ("page", "process", "    server: queue wait + process_api (Gradio profiling)"),
        ("page", "queue_wait", "      queue wait (join -> a worker takes the event)"),
        ("page", "preprocess", "      preprocess (9 inputs)"),
        ("page", "handler", "      handler (process_completed's duration; profiling's fn_call)"),
        ("page", "caption", "        of which Session.generate (the caption's ms)"),
        ("page", "postprocess", "      postprocess (outputs, state)"),
        ("page", "png_save", "        of which the PNG into the cache"),
        ("floor", "whole", "HTTP floor: GET /gradio_api/app_id (one bare round trip)"),
        ("call", "whole", "(b') call: POST /call/generate + GET its SSE + GET PNG, whole"),
        ("call", "submit", "    POST /gradio_api/call/generate -> event_id"),
        ("call", "wait", "    GET /gradio_api/call/generate/{event_id} -> complete"),
        ("call", "fetch", "    GET the PNG"),
        ("call", "process", "    its server time: queue wait + process_api (Gradio profiling)"),
        ("call", "caption", "    its Session.generate in the server (the caption's ms)"),
    ]
    total = sum(len(v) for v in rows.values())
    print(f"\n{args.rounds} x {args.calls} slider changes of each kind ({total} measured), interleaved, "
          f"{args.pause_ms:g} ms pause before each; PNG {int(np.median([r['png'] for r in rows['page']]))} bytes")
    print("| what | p50 ms | p90 ms |")
    print("| --- | --- | --- |")
    for name, key, label in table:
        s = stat(name, key)
        if s is not None:
            print(f"| {label} | {s[0]:.1f} | {s[1]:.1f} |")
    a, b = stat("sdk", "whole"), stat("page", "whole")
    page_ms = [r["whole"] * 1000 for r in rows["page"]]
    print(f"\nratio page / SDK (medians): {b[0] / a[0]:.2f}x ({b[0]:.1f} / {a[0]:.1f} ms); page p90 {b[1]:.1f} ms, "
          f"max {max(page_ms):.1f} ms, {sum(t > 100 for t in page_ms)} of {len(page_ms)} over 100 ms")
    c = stat("call", "whole")
    if c is not None:
        print(f"ratio call / SDK (medians): {c[0] / a[0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
